"""Apply a quantization policy to a model: fold BN, quantize weights, calibrate activations.

The result, :class:`QuantizedModel`, holds the per-layer integer decisions (keyed by layer
name = module path, see :func:`archsim.frontend.fx_groups.layer_name`) and a fake-quant torch
module that computes what the integer datapath computes, up to float rounding: weights are
replaced by their dequantized values and every 8-bit tensor (layer outputs, network input)
is quantize-dequantized. Tensors kept wide (attention matmul outputs, logits) are not.
A policy's Trio-ViT refinements (:mod:`archsim.quant.transforms`) are applied to the float
model first; what they did per layer is in ``QuantizedModel.layer_attrs``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from archsim.frontend.fx_groups import GroupedGraph, group_graph
from archsim.frontend.integer_params import operand_scale_maps
from archsim.graph.ir import OpKind
from archsim.quant.adaround import AdaRoundSettings, adaround_layer, capture_samples, grid_neighbours
from archsim.quant.calibrate import INPUT_KEY_PREFIX, ActQuant, calibrate, insert_quantizers
from archsim.quant.fold import fold_batchnorm
from archsim.quant.policy import QuantPolicy, WeightRule, get_policy
from archsim.quant.quantizers import QuantizedTensor, apot_quantize, per_channel_mse, uniform_quantize
from archsim.quant.transforms import apply_refinements, compensate_shift


@dataclass
class WeightQuant:
    """Integer weights of one layer: weight_int * scale (per output filter) = dequantized weight."""

    name: str
    module_path: str
    role: str
    bits: int  # uniform filters
    apot_bits: int | None  # APoT filters (None: the layer has no APoT option)
    apot_mask: np.ndarray  # bool[out]
    weight_int: np.ndarray  # int64, weight shape, zero point removed
    scale: np.ndarray  # float64[out]
    zero_point: np.ndarray  # int64[out]
    bias: np.ndarray | None  # float64[out], folded BN included
    # Per-filter MSE of each scheme at the policy's select_bits: what the scheme choice compared.
    mse_uniform: np.ndarray | None = None  # float64[out]
    mse_apot: np.ndarray | None = None
    # AdaRound (policy weight_rounding: adaround): sampled output MSE with nearest and learned rounding
    adaround: dict | None = None

    def dequantized(self) -> np.ndarray:
        shape = (-1,) + (1,) * (self.weight_int.ndim - 1)
        return self.weight_int.astype(np.float64) * self.scale.reshape(shape)


@dataclass
class QuantizedModel:
    policy: QuantPolicy
    folded: nn.Module  # fp32 model with BN folded (what extraction traces)
    module: nn.Module  # fake-quant model (fx GraphModule), or the folded model for fp32
    weights: dict[str, WeightQuant] = field(default_factory=dict)  # layer name -> weights
    activations: dict[str, ActQuant] = field(default_factory=dict)  # layer name / "input:x" -> output quant
    wide: set[str] = field(default_factory=set)  # layers whose output is kept wide
    # Per-layer facts of the policy's graph refinements (archsim/quant/transforms.py ATTR_* keys):
    # migration divisors, shifts, "denominator": "log2" on DIV layers. Layer name -> dict.
    layer_attrs: dict[str, dict] = field(default_factory=dict)
    # activation key (layer name / "input:x") -> the submodule of ``module`` that fake-quantizes it
    quantizer_modules: dict[str, str] = field(default_factory=dict)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def activation_codes(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """The fake-quant model's 8-bit codes at every activation point on input ``x``
        (key as in ``activations``).

        A producer refined for its consumer (Trio-ViT) is observed where its quantizer sits: after
        the per-channel shift / division, in the consumer's layout.
        """
        seen: dict[str, np.ndarray] = {}
        hooks = []
        for key, sub in self.quantizer_modules.items():
            q = self.activations[key]

            def hook(_m, _i, out, key=key, q=q):
                seen[key] = (
                    np.rint(out.detach().to(torch.float64).numpy() / q.scale).astype(np.int64) + q.zero_point
                )

            hooks.append(self.module.get_submodule(sub).register_forward_hook(hook))
        try:
            with torch.no_grad():
                self.module(x)
        finally:
            for h in hooks:
                h.remove()
        return seen

    def apot_share(self) -> float:
        """Fraction of mixed-scheme filters (over all layers that had the choice) that chose APoT."""
        mixed = [w for w in self.weights.values() if w.apot_bits is not None]
        total = sum(w.apot_mask.size for w in mixed)
        return 0.0 if total == 0 else sum(int(w.apot_mask.sum()) for w in mixed) / total


def apot_penalty(mse_apot: torch.Tensor, mse_uniform: torch.Tensor) -> torch.Tensor:
    """Relative MSE penalty of APoT per filter: mse_apot / mse_uniform (0/0 -> 1, x/0 -> inf)."""
    ratio = mse_apot / mse_uniform
    return torch.where((mse_apot == 0) & (mse_uniform == 0), torch.ones_like(ratio), ratio)


def balanced_apot_mask(mse_apot: torch.Tensor, mse_uniform: torch.Tensor, fraction: float) -> torch.Tensor:
    """Exactly round(fraction * filters) APoT filters: those with the smallest mse_apot/mse_uniform.

    [choice] rounding half up (floor(f*F + 0.5)); ties in the penalty go to the lower filter
    index (stable sort), so the split is deterministic.
    """
    filters = mse_apot.numel()
    count = min(filters, math.floor(fraction * filters + 0.5))
    order = torch.sort(apot_penalty(mse_apot, mse_uniform), stable=True).indices
    mask = torch.zeros(filters, dtype=torch.bool)
    mask[order[:count]] = True
    return mask


def quantize_weights(
    weight: torch.Tensor, rule: WeightRule, tolerance: float = 1.0, target_fraction: float | None = None
):
    """Quantize a weight tensor (filters along dim 0) by ``rule``.

    Returns (dequantized float tensor, WeightQuant fields as a dict). With ``mixed_apot``
    each filter is quantized both ways; it takes APoT when mse_apot <= tolerance * mse_uniform,
    or, with ``target_fraction``, when it is among the round(fraction * filters) filters of
    smallest mse_apot/mse_uniform (see :func:`balanced_apot_mask`). With ``apot_only`` every
    filter is APoT.
    """
    axis = 0 if rule.per_channel else None
    uni: QuantizedTensor = uniform_quantize(
        weight, rule.bits, symmetric=rule.symmetric, axis=axis, range_method=rule.range
    )
    out = weight.shape[0]
    scale = uni.scale.expand(out) if uni.scale.dim() == 0 else uni.scale
    zp = uni.zero_point.expand(out) if uni.zero_point.dim() == 0 else uni.zero_point
    zp_b = zp.reshape((-1,) + (1,) * (weight.dim() - 1))
    weight_int = uni.codes - zp_b
    deq = uni.dequantize()
    fields = dict(bits=rule.bits, apot_bits=None, apot_mask=np.zeros(out, dtype=bool))
    if rule.has_apot:
        if not rule.per_channel:
            raise ValueError("mixed uniform/APoT needs per-channel (per-filter) quantization")
        apot = apot_quantize(weight, rule.apot_bits, axis=0)
        deq_apot = apot.dequantize()
        if rule.apot_only:
            choose = torch.ones(out, dtype=torch.bool)
            mse_fields = {}
        else:
            # The scheme is chosen by comparing both schemes at one bit-width (select_bits):
            # at 8 bits a two-term APoT grid never beats a uniform one on MSE, see docs/quantization.md.
            sel_bits = rule.select_bits or rule.apot_bits
            sel_uniform = (
                deq
                if sel_bits == rule.bits
                else uniform_quantize(
                    weight, sel_bits, symmetric=rule.symmetric, axis=0, range_method=rule.range
                ).dequantize()
            )
            sel_apot = (
                deq_apot
                if sel_bits == rule.apot_bits
                else apot_quantize(weight, sel_bits, axis=0).dequantize()
            )
            sel_u, sel_a = per_channel_mse(weight, sel_uniform), per_channel_mse(weight, sel_apot)
            if target_fraction is None:
                choose = sel_a <= tolerance * sel_u
            else:
                choose = balanced_apot_mask(sel_a, sel_u, target_fraction)
            mse_fields = dict(mse_uniform=sel_u.numpy().copy(), mse_apot=sel_a.numpy().copy())
        sel = choose.reshape((-1,) + (1,) * (weight.dim() - 1))
        weight_int = torch.where(sel, apot.codes, weight_int)
        deq = torch.where(sel, deq_apot, deq)
        scale = torch.where(choose, apot.scale, scale)
        zp = torch.where(choose, torch.zeros_like(zp), zp)
        fields.update(apot_bits=rule.apot_bits, apot_mask=choose.numpy().copy(), **mse_fields)
    fields.update(
        weight_int=weight_int.numpy().copy(),
        scale=scale.numpy().astype(np.float64).copy(),
        zero_point=zp.numpy().astype(np.int64).copy(),
    )
    return deq.to(weight.dtype), fields


def _example_input(batches: list[torch.Tensor]) -> torch.Tensor:
    return batches[0][:1]


def quantize_model(
    model: nn.Module, policy: str | QuantPolicy, calib_batches: Iterable[torch.Tensor]
) -> QuantizedModel:
    """Fold BN, quantize weights by ``policy`` and calibrate 8-bit activations on ``calib_batches``."""
    policy = get_policy(policy)
    batches = list(calib_batches)
    if not batches:
        raise ValueError("quantize_model needs at least one calibration batch")
    folded, _ = fold_batchnorm(model)
    folded.eval()
    if not policy.quantized:
        return QuantizedModel(policy, folded, folded)
    fq = copy.deepcopy(folded)
    gm = fx.symbolic_trace(fq)
    grouped: GroupedGraph = group_graph(gm, (_example_input(batches),))
    qm = QuantizedModel(policy, folded, gm)
    qm.wide = wide_layers(grouped, policy)
    # Trio-ViT refinements change float weights/biases and insert per-channel scale/shift nodes;
    # exact in float, so they run before weight quantization (transforms.py).
    refinements = apply_refinements(gm, grouped, policy, batches[0], qm.wide)
    qm.layer_attrs = refinements.layer_attrs
    samples, adaround = {}, adaround_settings(policy)
    if policy.weight_rounding == "adaround":  # float inputs / outputs of every weighted layer, one pass
        samples = capture_samples(
            gm, {g.name: g.module_path for g in grouped.groups if g.kind.has_weights}, batches, adaround
        )
    for g in grouped.groups:
        if not g.kind.has_weights:
            continue
        module = gm.get_submodule(g.module_path)
        rule = policy.rule(g.role)
        with torch.no_grad():
            deq, fields = quantize_weights(
                module.weight.detach(),
                rule,
                policy.apot_mse_tolerance,
                policy.apot_target_fraction if rule.mixed_apot else None,
            )
            if g.name in samples:
                deq = apply_adaround(module, fields, samples.pop(g.name), adaround, rule.symmetric)
            module.weight.copy_(deq)
            if g.name in refinements.shifts:  # shifted input: bias compensated with the quantized weights
                _, z, bias0 = refinements.shifts[g.name]
                compensate_shift(module, z, bias0)
        bias = None if module.bias is None else module.bias.detach().to(torch.float64).numpy().copy()
        qm.weights[g.name] = WeightQuant(
            name=g.name, module_path=g.module_path, role=g.role, bias=bias, **fields
        )
    points = {
        g.name: refinements.quant_points.get(g.name, g.output)
        for g in grouped.groups
        if g.name not in qm.wide
    }
    for name in grouped.input_names:
        points[INPUT_KEY_PREFIX + name] = next(n for n in gm.graph.nodes if n.name == name)
    names = insert_quantizers(gm, points, policy.act_bits, policy.act_symmetric, policy.act_range)
    qm.activations = calibrate(gm, names, batches)
    qm.quantizer_modules = names
    if refinements.log2_modules:  # the power-of-two denominator is rounded in integer units from now on
        den_maps = operand_scale_maps(group_graph(fx.symbolic_trace(folded), (_example_input(batches),)), qm)
        for name, path in refinements.log2_modules.items():
            gm.get_submodule(path).set_scale(den_maps[name][1])
    return qm


def adaround_settings(policy: QuantPolicy) -> AdaRoundSettings:
    return AdaRoundSettings(
        iterations=policy.adaround_iterations,
        rows=policy.adaround_rows,
        reg_lambda=policy.adaround_lambda,
        lr=policy.adaround_lr,
        images=policy.adaround_images,
    )


def apply_adaround(
    module: nn.Module, fields: dict, samples, settings: AdaRoundSettings, symmetric: bool = True
) -> torch.Tensor:
    """Replace round-to-nearest codes in ``fields`` by AdaRound's; returns the dequantized weight."""
    weight = module.weight.detach()
    scale = torch.from_numpy(fields["scale"])
    lo, hi = grid_neighbours(
        weight,
        scale,
        fields["apot_mask"],
        fields["bits"],
        fields["apot_bits"],
        fields["zero_point"],
        symmetric,
    )
    nearest = torch.from_numpy(fields["weight_int"]).to(torch.float64)
    codes, stats = adaround_layer(weight, scale, lo, hi, module.bias, samples, settings, nearest)
    fields["weight_int"] = codes.to(torch.int64).numpy().copy()
    fields["adaround"] = stats
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return (codes * scale.reshape(shape)).to(weight.dtype)


def wide_layers(grouped: GroupedGraph, policy: QuantPolicy) -> set[str]:
    """Layers whose output is kept at accumulator width (not requantized to 8 bit)."""
    wide = set()
    for g in grouped.groups:
        if g.kind == OpKind.MATMUL and policy.wide_attention:
            wide.add(g.name)
        if g.role == "classifier" and policy.classifier_output_wide:
            wide.add(g.name)
    return wide


def compare_outputs(fp32_model: nn.Module, candidate, batches: Iterable[torch.Tensor]) -> dict:
    """Output quality of ``candidate`` (a callable: the integer model, or a fake-quant model) against fp32.

    Returns output SQNR (dB), mean cosine similarity and top-1 agreement over the batches.
    """
    fp32_model = fp32_model.eval()
    refs, outs = [], []
    with torch.no_grad():
        for batch in batches:
            refs.append(fp32_model(batch).to(torch.float64))
            outs.append(candidate(batch).to(torch.float64))
    if not refs:
        raise ValueError("compare_outputs needs at least one batch")
    ref, out = torch.cat(refs), torch.cat(outs)
    noise = float(((ref - out) ** 2).sum())
    signal = float((ref**2).sum())
    sqnr = math.inf if noise == 0 else 10 * math.log10(signal / noise)
    cosine = float(torch.nn.functional.cosine_similarity(ref.flatten(1), out.flatten(1), dim=1).mean())
    agree = float((ref.argmax(-1) == out.argmax(-1)).to(torch.float64).mean())
    return {"sqnr_db": sqnr, "cosine": cosine, "top1_agreement": agree, "samples": int(ref.shape[0])}
