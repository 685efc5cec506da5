"""Trio-ViT's graph-level refinements for uniform 8-bit quantization, on the BN-folded fx model.

Source: github.com/shihuihong214/Trio-ViT, quant/quant_layer.py (commit c212eda,
``QuantModule_Scaled.get_ratio`` / ``forward`` and ``QuantModule_Shifted.forward``) and
quant/quant_block.py (which convs use them) [code]. Applied to the traced, BN-folded model
*before* weight quantization and activation calibration; each is exact in float:

- **Channel-wise migration** (depthwise inputs): per input channel c of a depthwise conv,
  ``s_c = clamp(max_c / max(q99(x), mean_c(max_c)), 0.1, 64)`` (Trio-ViT's rule: ``max_c``
  the channel's maximum, ``q99`` the 0.99 quantile of the whole input tensor, "version 1"
  clamps). The input is divided by s (x / s) and filter c multiplied by s: conv(x/s, W*s) = conv(x, W).
- **Filter-wise shifting** (inputs of dense 1x1 convs, e.g. the MBConv/DSConv projection and
  LiteMLA's proj): ``z_c = (max_c + min_c) / 2`` (Trio-ViT's rule), the input becomes x - z
  and the bias b' = b + W z (sum over input channels): conv(x - z, W) + W z = conv(x, W). After
  weight quantization the bias is recomputed with the quantized W (as Trio-ViT does), so the
  weight rounding error does not turn into a bias error (W_q - W) z.

Where the scale/offset is applied: Hardswish is not scale- or shift-equivariant, so nothing
is pushed back into the producer's weights. Instead [choice, correct for every path] an
explicit per-channel division / subtraction is inserted right before the consumer and the
producer's per-tensor activation quantizer moves after it: the 8-bit tensor stored between
the two layers is the migrated / shifted one. In the integer datapath that is the producer's
requantization with a per-channel multiplier (1/s_c) or per-channel offset (z_c); the
consumer reads an ordinary 8-bit tensor. Applied only where the consumer is the *only* reader
of the producer's output, through layout ops only (reshape, transpose, ...), so no other
reader sees the changed tensor: in EfficientViT that is every MBConv depthwise conv
(migration) and every MBConv/DSConv point conv and LiteMLA proj (shifting); DSConv and
LiteMLA depthwise inputs (the residual stream, the qkv map) are also read elsewhere and are
left alone. [choice] The statistics come from the first calibration batch, as Trio-ViT
initialises them on its first forward.

- **log2 denominator** (attention division): the denominator is rounded to a power of two
  (``log2_quantize``, log-domain rounding) in the fake-quant model, so the division is a
  shift. Not exact: it is a quantization, recorded in the layer attributes.

Per-layer records go into ``layer_attrs`` (layer name -> dict), see :func:`apply_refinements`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from archsim.frontend.fx_groups import Group, GroupedGraph
from archsim.graph.ir import OpKind
from archsim.numerics import integer as qi
from archsim.quant.policy import ROLE_DEPTHWISE, QuantPolicy

MIGRATION_QUANTILE = 0.99  # Trio-ViT get_ratio: percentile_alpha = 0.99
MIGRATION_CLAMP = (0.1, 64.0)  # Trio-ViT get_ratio "version 1": div[div > 64] = 64, div[div < 1/10] = 1/10
LOG2_DENOMINATOR_BITS = 8  # [choice] signed exponent range [-128, 127]: never clamps a float32 denominator
# Layout ops a refinement may look through between producer and consumer (single tensor input first).
_LAYOUT_METHODS = {"view", "reshape", "permute", "transpose", "flatten", "contiguous"}
_LAYOUT_FUNCTIONS = {torch.reshape, torch.flatten, torch.transpose, torch.permute}

# layer_attrs keys (what extraction may carry into the graph)
ATTR_INPUT_SCALE = "input_channel_divisor"  # consumer: its input was divided by these (per channel)
ATTR_INPUT_SHIFT = "input_channel_shift"  # consumer: its input had these subtracted (per channel)
ATTR_OUTPUT_SCALE = "output_channel_divisor"  # producer: requantized with a per-channel 1/s
ATTR_OUTPUT_SHIFT = "output_channel_shift"  # producer: requantized with a per-channel offset
ATTR_OUTPUT_CONSUMER = "output_channel_consumer"  # producer: the layer whose input channels the lists index
ATTR_DENOMINATOR = "denominator"  # DIV layer: "log2" when the denominator is a power of two


@dataclass
class Refinements:
    """What :func:`apply_refinements` changed."""

    layer_attrs: dict[str, dict] = field(default_factory=dict)
    # producer group name -> node whose output the producer's activation quantizer observes
    quant_points: dict[str, fx.Node] = field(default_factory=dict)
    # shifted consumer name -> (module path, offset z, bias before compensation), for recompensation
    shifts: dict[str, tuple[str, torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    # DIV layer name -> submodule path of its Log2Denominator (its scale is set after calibration)
    log2_modules: dict[str, str] = field(default_factory=dict)

    def attrs(self, name: str) -> dict:
        return self.layer_attrs.setdefault(name, {})


def _is_layout(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _LAYOUT_METHODS
    if node.op == "call_function":
        return node.target in _LAYOUT_FUNCTIONS
    return False


def sole_producer(grouped: GroupedGraph, consumer: Group) -> Group | None:
    """The group whose output only ``consumer`` reads (through layout ops), or None."""
    by_output = {g.output: g for g in grouped.groups}
    node = consumer.anchor.args[0]
    while isinstance(node, fx.Node):
        if len(node.users) != 1:
            return None
        if node in by_output:
            return by_output[node]
        if not _is_layout(node):
            return None
        node = node.args[0]
    return None


def _input_stats(gm: fx.GraphModule, consumers: list[Group], batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel input max/min (and the whole-input 0.99 quantile) of each consumer conv, one batch."""
    stats: dict[str, dict] = {}
    hooks = []
    for g in consumers:

        def hook(_module, args, name=g.name):
            x = args[0].detach().to(torch.float64)
            dims = [d for d in range(x.dim()) if d != 1]
            flat = x.flatten()
            position = MIGRATION_QUANTILE * (flat.numel() - 1)  # linear interpolation as torch.quantile
            below = math.floor(position)
            lo_v = flat.kthvalue(below + 1).values
            hi_v = flat.kthvalue(min(below + 2, flat.numel())).values
            stats[name] = dict(
                max=x.amax(dim=dims), min=x.amin(dim=dims), quantile=lo_v + (position - below) * (hi_v - lo_v)
            )

        hooks.append(gm.get_submodule(g.module_path).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            gm(batch)
    finally:
        for h in hooks:
            h.remove()
    return stats


def migration_scales(channel_max: torch.Tensor, quantile: torch.Tensor) -> torch.Tensor:
    """Trio-ViT's per-channel migration factor s = clamp(max_c / max(q99, mean(max_c)), 0.1, 64)."""
    reference = torch.maximum(quantile, channel_max.mean())
    ratio = channel_max / reference if float(reference) > 0 else torch.ones_like(channel_max)
    return ratio.clamp(*MIGRATION_CLAMP)


def _insert_before(gm: fx.GraphModule, consumer: Group, fn, constant: torch.Tensor, tag: str) -> fx.Node:
    """Insert ``fn(input, constant)`` between the consumer's input and the consumer; returns the new node."""
    buffer = f"_{tag}_{consumer.name.replace('.', '_')}"
    gm.register_buffer(buffer, constant.to(torch.float32).reshape(1, -1, 1, 1))
    source = consumer.anchor.args[0]
    with gm.graph.inserting_before(consumer.anchor):
        const = gm.graph.get_attr(buffer)
        node = gm.graph.call_function(fn, (source, const))
    consumer.anchor.replace_input_with(source, node)
    return node


def _candidates(grouped: GroupedGraph, gm: fx.GraphModule, wide: set[str], want) -> list[tuple[Group, Group]]:
    pairs = []
    for g in grouped.groups:
        if g.module_path is None or not want(g, gm.get_submodule(g.module_path)):
            continue
        producer = sole_producer(grouped, g)
        if producer is not None and producer.name not in wide:
            pairs.append((g, producer))
    return pairs


def _is_depthwise(g: Group, m: nn.Module) -> bool:
    return g.role == ROLE_DEPTHWISE and isinstance(m, nn.Conv2d)


def _is_dense_1x1(g: Group, m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1


def apply_channel_migration(gm, grouped, batch, wide: set[str], out: Refinements) -> None:
    pairs = [
        (c, p) for c, p in _candidates(grouped, gm, wide, _is_depthwise) if p.name not in out.quant_points
    ]
    stats = _input_stats(gm, [c for c, _ in pairs], batch)
    for consumer, producer in pairs:
        s = migration_scales(stats[consumer.name]["max"], stats[consumer.name]["quantile"])
        conv = gm.get_submodule(consumer.module_path)
        with torch.no_grad():
            conv.weight.mul_(s.to(conv.weight.dtype).reshape(-1, 1, 1, 1))
        out.quant_points[producer.name] = _insert_before(gm, consumer, operator.truediv, s, "migrate")
        out.attrs(consumer.name)[ATTR_INPUT_SCALE] = s.tolist()
        out.attrs(producer.name)[ATTR_OUTPUT_SCALE] = s.tolist()
        out.attrs(producer.name)[ATTR_OUTPUT_CONSUMER] = consumer.name
    gm.recompile()


def apply_filter_shifting(gm, grouped, batch, wide: set[str], out: Refinements) -> None:
    pairs = [
        (c, p) for c, p in _candidates(grouped, gm, wide, _is_dense_1x1) if p.name not in out.quant_points
    ]
    stats = _input_stats(gm, [c for c, _ in pairs], batch)
    for consumer, producer in pairs:
        z = (stats[consumer.name]["max"] + stats[consumer.name]["min"]) / 2
        conv = gm.get_submodule(consumer.module_path)
        rows = conv.weight.shape[0]
        bias = (
            torch.zeros(rows, dtype=torch.float64)
            if conv.bias is None
            else conv.bias.detach().to(torch.float64)
        )
        out.shifts[consumer.name] = (consumer.module_path, z, bias.clone())
        compensate_shift(conv, z, bias)
        out.quant_points[producer.name] = _insert_before(gm, consumer, operator.sub, z, "shift")
        out.attrs(consumer.name)[ATTR_INPUT_SHIFT] = z.tolist()
        out.attrs(producer.name)[ATTR_OUTPUT_SHIFT] = z.tolist()
        out.attrs(producer.name)[ATTR_OUTPUT_CONSUMER] = consumer.name
    gm.recompile()


def compensate_shift(conv: nn.Conv2d, z: torch.Tensor, bias: torch.Tensor) -> None:
    """Set the bias of a 1x1 conv whose input is shifted by -z: b' = b + W z, with W as it is now.

    Called on the float weights (exact in float) and again after weight quantization with the
    dequantized weights, as Trio-ViT computes the shifted bias from the quantized weight: the
    integer conv then computes W_q (x - z) + b + W_q z = W_q x + b, with no bias error (W_q - W) z.
    """
    w = conv.weight.detach().to(torch.float64).flatten(1)  # (out, in) for a 1x1 conv
    conv.bias = nn.Parameter((bias + w @ z).to(conv.weight.dtype))


def log2_round(x: torch.Tensor) -> torch.Tensor:
    """x rounded to the nearest power of two in the log domain (x > 0), in x's dtype."""
    from archsim.quant.quantizers import log2_dequantize, log2_quantize

    return log2_dequantize(log2_quantize(x, LOG2_DENOMINATOR_BITS)).to(x.dtype)


class Log2Denominator(nn.Module):
    """The attention denominator ``den + eps`` rounded to a power of two, as the integer spec rounds it.

    The spec rounds the *integer* denominator: D = den_int + eps (eps with 8 fraction bits) ->
    2^round(log2 D) in units of the denominator's scale s_den (per head), so the division is a
    shift. That scale is known only after calibration (it is s_q s_k); until :meth:`set_scale`,
    while calibrating, the real value is rounded instead (same power-of-two rounding, in real units).
    """

    def __init__(self, eps: float):
        super().__init__()
        self.eps = float(eps)
        self.scale: torch.Tensor | None = None
        self.eps_int: torch.Tensor | None = None

    def set_scale(self, den_scale) -> None:
        """Round in units of ``den_scale`` (the denominator's scale map, broadcastable to it) from now on."""
        den_scale = np.asarray(den_scale, dtype=np.float64)
        self.scale = torch.from_numpy(den_scale)
        self.eps_int = torch.from_numpy(qi.division_eps_int(self.eps, den_scale))

    def forward(self, den_plus_eps: torch.Tensor) -> torch.Tensor:
        if self.scale is None:
            return log2_round(den_plus_eps)
        den = torch.round((den_plus_eps.detach().to(torch.float64) - self.eps) / self.scale).clamp(min=0)
        exponent = qi.log2_round(qi.fixed_denominator(den.to(torch.int64).numpy(), self.eps_int.numpy()))
        power = torch.from_numpy(np.exp2(exponent.astype(np.float64) - qi.EPS_FRACTION_BITS))
        return (power * self.scale).to(den_plus_eps.dtype)


def apply_log2_denominator(gm: fx.GraphModule, grouped: GroupedGraph, out: Refinements) -> None:
    """Round every attention division's denominator to a power of two (a :class:`Log2Denominator` module)."""
    for g in grouped.groups:
        if g.kind != OpKind.DIV:
            continue
        den = g.anchor.args[1]
        path = f"_log2_{g.name.replace('.', '_')}"
        gm.add_submodule(path, Log2Denominator(g.attrs.get("eps", 0.0)))
        with gm.graph.inserting_before(g.anchor):
            rounded = gm.graph.call_module(path, (den,))
        g.anchor.replace_input_with(den, rounded)
        out.attrs(g.name)[ATTR_DENOMINATOR] = "log2"
        out.log2_modules[g.name] = path


def apply_refinements(
    gm: fx.GraphModule, grouped: GroupedGraph, policy: QuantPolicy, batch: torch.Tensor, wide: set[str]
) -> Refinements:
    """Apply the policy's Trio-ViT refinements to ``gm`` in place (float weights, before quantization).

    ``grouped`` must be the grouping of ``gm`` before this call; ``batch`` is the first
    calibration batch; ``wide`` the layers whose outputs are not requantized (never shifted).
    """
    out = Refinements()
    if policy.channel_migration:
        apply_channel_migration(gm, grouped, batch, wide, out)
    if policy.filter_shifting:
        apply_filter_shifting(gm, grouped, batch, wide, out)
    if policy.attention_denominator == "log2":
        apply_log2_denominator(gm, grouped, out)
    gm.graph.lint()
    gm.recompile()
    return out
