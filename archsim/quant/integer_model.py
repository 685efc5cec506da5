"""The quantized model as the integer spec computes it: every layer from the graph's integer parameters.

:class:`IntegerModel` runs a quantized graph (``archsim.graph``) on the torch.fx trace of the
BN-folded model: torch executes the layout ops (reshape, transpose, slicing, concatenation,
the ones column of v) and the prologue ReLUs, and every layer is replaced by its integer rule
from docs/quantization.md ("Integer semantics"), computed from its ``QuantInfo`` alone
(``weight_int``, ``bias_int``, ``requant_m0``/``shift``/``offset``, LUT grids, ``eps_int``,
``acc_scale``) with the numpy reference functions of :mod:`archsim.numerics.integer`. No float
weight, scale product or activation of the fake-quant model enters, so its outputs are the
quantized model's numbers bit for bit; the float fake-quant module
(``QuantizedModel.module``) only serves calibration and stays within a code of it.

Between layers a tensor travels as float64 reals ``(code - z) * s`` (a wide tensor as
``acc * acc_scale``) so that torch's layout ops and the padded ones column (real 1 = integer 1
at scale 1) need no special cases; each layer turns its operands back into integers by
dividing by their scale map and rounding. That is exact, and checked: the relative error of
one float64 product is 2^-53, so an operand is within 2^-40 of its integer; a conv / linear
sums products of integers, exact in float32 when every partial sum is below 2^24 (bounded
per call by max|x| * max_o sum_k |w[o, k]|) and in float64 otherwise (below 2^53); the
attention matmuls multiply reals in float64 (``q (k^T [v|1])``, up to 2^37 in the worst case,
carries at most K * 2^-53 relative error, 1e-4 of a unit). A value further than
``RECOVERY_TOLERANCE`` from an integer raises :class:`IntegerRecoveryError` instead of
rounding silently.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from archsim.frontend.fx_groups import Group, _is_scalar_add, group_graph
from archsim.frontend.scale_maps import trace_index_maps
from archsim.graph.ir import (
    Denominator,
    Epilogue,
    Layer,
    OpKind,
    QuantInfo,
    output_affine_maps,
    output_channel_affine,
)
from archsim.numerics import integer as qi
from archsim.numerics.integer_norm import layer_norm_int

FLOAT32_EXACT = 2**24  # integers below this are exact in float32
RECOVERY_TOLERANCE = 1e-3  # largest distance from an integer accepted when turning a real back into one
# dtype conversions in the traced model (EfficientViT's attention casts to float32) keep float64 here
DTYPE_METHODS = {"float", "double", "half", "to", "type_as"}
CONV_KINDS = (OpKind.CONV_DENSE, OpKind.CONV_POINTWISE, OpKind.CONV_DEPTHWISE, OpKind.CONV_GROUPED)


class IntegerRecoveryError(ArithmeticError):
    """A tensor that should hold integers times its scale map does not (a scale map or layout mismatch)."""


def recover_integers(real: torch.Tensor, scale, what: str) -> np.ndarray:
    """int64 integers of ``real / scale``; raises when any is further than RECOVERY_TOLERANCE from one."""
    ratio = real.detach().to(torch.float64).numpy() / np.asarray(scale, dtype=np.float64)
    integers = np.rint(ratio)
    if ratio.size:
        error = float(np.abs(ratio - integers).max())
        if not error <= RECOVERY_TOLERANCE:
            raise IntegerRecoveryError(
                f"{what}: values are {error:.3g} away from integers (tolerance {RECOVERY_TOLERANCE})"
            )
    return integers.astype(np.int64)


def _reals(codes: np.ndarray, scale, zero_point) -> torch.Tensor:
    return torch.from_numpy(
        (codes - np.asarray(zero_point)).astype(np.float64) * np.asarray(scale, dtype=np.float64)
    )


def _channel_shape(kind: OpKind, ndim: int) -> list[int]:
    shape = [1] * ndim
    shape[-1 if kind == OpKind.LINEAR else 1] = -1
    return shape


class IntegerModel:
    """``model(x)`` -> logits (float64) of the integer datapath;
    ``run(x)`` also returns every layer's integers.

    ``folded``: the BN-folded float model the graph was extracted from (only its structure is
    used: the fx trace and the conv geometry); ``graph``: the quantized graph
    (``extract_graph`` with a quantized model).
    """

    def __init__(self, folded: nn.Module, graph: nx.DiGraph):
        self.graph = graph
        self.layers: dict[str, Layer] = {n: graph.nodes[n]["layer"] for n in graph.nodes}
        if any(layer.quant is None for layer in self.layers.values()):
            raise ValueError("IntegerModel needs a quantized graph (every layer with QuantInfo)")
        res = int(graph.graph["resolution"])
        folded.eval()
        self.gm = fx.symbolic_trace(folded)
        self.grouped = group_graph(self.gm, (torch.zeros(1, 3, res, res),))
        missing = [g.name for g in self.grouped.groups if g.name not in self.layers]
        if missing:
            raise ValueError(f"IntegerModel: the graph lacks layers of the traced model: {missing[:3]}")
        self._luts: dict[str, np.ndarray] = {}
        self._weights: dict[str, tuple[int, np.ndarray]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]

    def run(
        self, x: torch.Tensor, forced: dict[str, np.ndarray] | None = None
    ) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
        """(output, integers): per layer its output codes (8-bit) or accumulators (wide), plus "input".

        ``forced`` (layer name -> 8-bit codes, e.g. the fake-quant model's, see
        :func:`layer_agreement`): after computing such a layer, its consumers read these codes
        instead, so each layer can be compared on the same inputs. Codes of a producer refined for
        its consumer may be given in the consumer's layout.
        """
        interp = _IntegerInterpreter(self, forced or {})
        with torch.no_grad():
            out = interp.run(x)
        return out, interp.integers

    def producer_layout(self, name: str, codes: np.ndarray) -> np.ndarray:
        """Codes of layer ``name`` given in its consumer's layout (a refined producer's stored tensor)
        -> its own."""
        codes = np.asarray(codes)
        shape = (codes.shape[0],) + self.grouped.shapes[self.grouped.group(name).output.name][
            1:
        ]  # traced at batch 1
        if codes.shape == shape:
            return codes
        refinement = self.layers[name].refinement
        consumer = None if refinement is None else refinement.consumer
        if consumer is None:
            raise ValueError(f"{name}: codes of shape {codes.shape} for an output of shape {shape}")
        index = trace_index_maps(self.grouped, {name})[consumer][0].reshape(-1).astype(np.int64)
        out = np.empty((shape[0], index.size), dtype=codes.dtype)
        out[:, index] = codes.reshape(shape[0], -1)
        return out.reshape(shape)

    def layer_reals(self, integers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The real values the integers of :meth:`run` stand for, per layer (float64).

        8-bit codes: (c - z) s, undoing a Trio-ViT refinement of the stored tensor (y = stored *
        divisor + shift), so they compare with the float model's layer outputs; wide
        accumulators: acc * acc_scale.
        """
        reals = {}
        for name, values in integers.items():
            if name not in self.layers:
                continue
            layer, q = self.layers[name], self.layers[name].quant
            if q.out_scale is None:
                scale = (
                    q.acc_scale
                    if layer.kind == OpKind.MATMUL
                    else np.asarray(q.acc_scale).reshape(_channel_shape(layer.kind, values.ndim))
                )
                reals[name] = values * scale
                continue
            stored = (values - q.out_zero_point) * q.out_scale
            divisor, shift = output_affine_maps(layer)
            reals[name] = stored * divisor + shift
        return reals

    def float_outputs(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """Every layer's output in the float (BN-folded, unquantized) model on ``x`` (float64)."""
        outputs: dict[str, np.ndarray] = {}
        by_output = {g.output: g.name for g in self.grouped.groups}

        class _Recorder(fx.Interpreter):
            def run_node(self, n):
                value = super().run_node(n)
                if n in by_output:
                    outputs[by_output[n]] = value.detach().to(torch.float64).numpy()
                return value

        with torch.no_grad():
            _Recorder(self.gm).run(x)
        return outputs

    # -- per layer ---------------------------------------------------------------------
    def compute(self, g: Group, operands: list[torch.Tensor]) -> tuple[torch.Tensor, np.ndarray]:
        layer = self.layers[g.name]
        q = layer.quant
        if layer.kind in CONV_KINDS or layer.kind == OpKind.LINEAR:
            return self._weighted(g, layer, q, operands[0])
        if layer.kind == OpKind.MATMUL:
            return self._matmul(layer, q, operands)
        if layer.kind == OpKind.DIV:
            return self._divide(layer, q, operands)
        if layer.kind == OpKind.ADD:
            return self._add(layer, q, operands)
        if layer.kind == OpKind.POOL:
            codes = qi.global_avg_pool(
                self._codes(operands[0], q, 0, layer),
                q.in_zero_points[0],
                q.requant_m0,
                q.requant_shift,
                q.out_zero_point,
                q.out_bits,
            )
            codes = self._fused_activation(layer, q, codes)
            codes = codes.reshape(
                codes.shape[:1] + self.grouped.shapes[g.output.name][1:]
            )  # traced at batch 1
            return _reals(codes, q.out_scale, q.out_zero_point), codes
        if layer.kind == OpKind.NORM:
            return self._norm(layer, q, operands[0])
        if layer.kind == OpKind.ACTIVATION:
            return self._activation(layer, q, operands[0])
        raise NotImplementedError(f"{layer.name}: no integer rule for {layer.kind.value}")

    def _codes(self, real: torch.Tensor, q: QuantInfo, port: int, layer: Layer) -> np.ndarray:
        """The 8-bit codes of an operand from its reals (in_scales / in_zero_points of ``port``)."""
        return (
            recover_integers(real, q.in_scales[port], f"{layer.name} input {port}") + q.in_zero_points[port]
        )

    def _weighted(self, g: Group, layer: Layer, q: QuantInfo, x: torch.Tensor):
        xi = recover_integers(
            x, q.in_scales[0], f"{layer.name} input"
        )  # zero point removed: padding is real 0
        # Every partial sum is at most max|x| * max_o sum_k |w[o, k]|: below 2^24 float32 holds
        # them all exactly (a direct / GEMM convolution sums products only), else float64 (2^53).
        l1, bias = self._weight_facts(layer.name, q)
        bound = int(np.abs(xi).max(initial=0)) * l1
        dtype = np.float32 if bound < FLOAT32_EXACT else np.float64
        w = torch.from_numpy(q.weight_int.astype(dtype))
        module = self.gm.get_submodule(g.module_path)
        xt = torch.from_numpy(xi.astype(dtype))
        if layer.kind == OpKind.LINEAR:
            sums = xt @ w.T
        else:
            sums = F.conv2d(xt, w, None, module.stride, module.padding, module.dilation, module.groups)
        acc = recover_integers(sums, 1.0, f"{layer.name} accumulator")
        shape = _channel_shape(layer.kind, acc.ndim)
        acc = acc + bias.reshape(shape)
        if q.out_scale is None:  # wide output (the classifier's logits)
            return torch.from_numpy(acc * np.asarray(q.acc_scale).reshape(shape)), acc
        m0, shift = q.requant_m0.reshape(shape), q.requant_shift.reshape(shape)
        if q.lut_in_bits is not None:
            pre = qi.requantize(acc, m0, shift, q.lut_in_zero_point.reshape(shape), q.lut_in_bits)
            codes = self._lookup(layer, q, pre)
        else:
            codes = qi.requantize(acc, m0, shift, q.out_zero_point, q.out_bits)
            codes = self._fused_activation(layer, q, codes)
        return _reals(codes, q.out_scale, q.out_zero_point), codes

    def _weight_facts(self, name: str, q: QuantInfo) -> tuple[int, np.ndarray]:
        """(max over filters of sum_k |w[o, k]|, the bias of a zero-point-free input sum), cached per layer.

        ``bias_int`` holds -z_x sum_k w; the layer sums (x - z_x) w, so that term is added back.
        """
        if name not in self._weights:
            w = q.weight_int.reshape(q.weight_int.shape[0], -1)
            self._weights[name] = (
                int(np.abs(w).sum(axis=1).max()),
                q.bias_int + q.in_zero_points[0] * w.sum(axis=1),
            )
        return self._weights[name]

    def _fused_activation(self, layer: Layer, q: QuantInfo, codes: np.ndarray) -> np.ndarray:
        acts = [e for e in layer.epilogue if e in ("relu", "relu6", "hardswish", "gelu", "silu")]
        if not acts:
            return codes
        if acts == ["relu"]:  # exact on codes: real 0 is the zero point
            return qi.relu_codes(codes, q.out_zero_point)
        raise NotImplementedError(
            f"{layer.name}: a fused {'/'.join(acts)} after a {layer.kind.value} "
            "has no integer rule "
            "(supported: ReLU on codes, Hardswish through a LUT grid on conv / linear / norm)"
        )

    def _lookup(self, layer: Layer, q: QuantInfo, pre: np.ndarray) -> np.ndarray:
        """Fused Hardswish: index the per-channel table (one shared table when all channels agree)."""
        table = self._luts.get(layer.name)
        if table is None:
            table = self._luts[layer.name] = self._hardswish_tables(layer, q)
        channels = pre.shape[-1 if layer.kind == OpKind.LINEAR else 1]
        if table.shape[0] == 1:
            return table[0][pre].astype(np.int64)  # tables are stored as uint8: codes leave as int64
        index = np.arange(channels).reshape(_channel_shape(layer.kind, pre.ndim))
        return table[index, pre].astype(np.int64)

    @staticmethod
    def _hardswish_tables(layer: Layer, q: QuantInfo) -> np.ndarray:
        divisor, shift = output_channel_affine(layer, q.lut_in_scale.size)
        table = qi.hardswish_tables(
            q.lut_in_scale,
            q.lut_in_zero_point,
            divisor,
            shift,
            q.out_scale,
            q.out_zero_point,
            q.out_bits,
            q.lut_in_bits,
        )
        return table.astype(np.uint8 if q.out_bits <= 8 else np.int64)

    def _matmul(self, layer: Layer, q: QuantInfo, operands: list[torch.Tensor]):
        # operands are reals with per-element scales; their exact product over acc_scale is the integer sum
        acc = recover_integers(
            torch.matmul(operands[0], operands[1]), q.acc_scale, f"{layer.name} accumulator"
        )
        if q.out_scale is None:  # kept wide until the division
            return torch.from_numpy(acc * np.asarray(q.acc_scale)), acc
        codes = qi.requantize(acc, q.requant_m0, q.requant_shift, q.out_zero_point, q.out_bits)
        return _reals(codes, q.out_scale, q.out_zero_point), codes

    def _divide(self, layer: Layer, q: QuantInfo, operands: list[torch.Tensor]):
        num = recover_integers(operands[0], q.in_acc_scales[0], f"{layer.name} numerator")
        den = recover_integers(operands[1], q.in_acc_scales[1], f"{layer.name} denominator")
        rule = qi.divide_log2_requant if layer.div.denominator == Denominator.LOG2 else qi.divide_requant
        codes = rule(
            num,
            den,
            q.requant_m0,
            q.requant_shift,
            q.eps_int,
            q.out_zero_point,
            q.out_bits,
            offset_int=q.requant_offset,
        )
        codes = self._fused_activation(layer, q, codes)
        return _reals(codes, q.out_scale, q.out_zero_point), codes

    def _add(self, layer: Layer, q: QuantInfo, operands: list[torch.Tensor]):
        a, b = (self._codes(operands[i], q, i, layer) for i in range(2))
        offset = 0 if q.requant_offset is None else q.requant_offset
        codes = qi.add_requant_fixed(
            a,
            q.in_zero_points[0],
            b,
            q.in_zero_points[1],
            q.requant_m0[0],
            q.requant_m0[1],
            q.requant_shift[0],
            offset,
            q.out_zero_point,
            q.out_bits,
        )
        codes = self._fused_activation(layer, q, codes)
        return _reals(codes, q.out_scale, q.out_zero_point), codes

    def _norm(self, layer: Layer, q: QuantInfo, x: torch.Tensor):
        codes = self._codes(x, q, 0, layer)
        if q.lut_in_bits is not None:  # LayerNorm onto the LUT input grid, then the Hardswish table
            pre = layer_norm_int(
                codes, q.in_zero_points[0], q.norm_params, int(q.lut_in_zero_point[0]), q.lut_in_bits
            )
            codes = self._lookup(layer, q, pre)
        else:
            codes = layer_norm_int(codes, q.in_zero_points[0], q.norm_params, q.out_zero_point, q.out_bits)
            codes = self._fused_activation(layer, q, codes)
        return _reals(codes, q.out_scale, q.out_zero_point), codes

    def _activation(self, layer: Layer, q: QuantInfo, x: torch.Tensor):
        """A standalone activation on an 8-bit tensor: a 256-entry table, exact (none in EfficientViT)."""
        (name,) = [e.value for e in layer.epilogue if e != Epilogue.REQUANT]
        table = qi.activation_lut(
            name, q.in_scales[0], q.in_zero_points[0], q.out_scale, q.out_zero_point, q.out_bits
        )
        codes = table[self._codes(x, q, 0, layer)]
        return _reals(codes, q.out_scale, q.out_zero_point), codes


class _IntegerInterpreter(fx.Interpreter):
    """Runs the folded model's trace with every layer group replaced by :meth:`IntegerModel.compute`."""

    def __init__(self, model: IntegerModel, forced: dict[str, np.ndarray]):
        super().__init__(model.gm)
        self.model = model
        self.forced = forced
        self.by_anchor = {g.anchor: g for g in model.grouped.groups}
        self.member_of = {n: g.name for g in model.grouped.groups for n in g.members if n is not g.anchor}
        self.values: dict[str, torch.Tensor] = {}
        self.integers: dict[str, np.ndarray] = {}
        self.input_quant = self._input_quant()

    def _input_quant(self) -> tuple[float, int]:
        for g in self.model.grouped.groups:
            for port, part in enumerate(self.model.grouped.parts[g.name]):
                if part.producer is None:
                    q = self.model.layers[g.name].quant
                    return q.in_scales[port], q.in_zero_points[port]
        raise ValueError("no layer reads the graph input")

    def run_node(self, n: fx.Node):
        if n.op == "placeholder":
            x = super().run_node(n)
            scale, zero_point = self.input_quant
            codes = qi.quantize_real(x.detach().to(torch.float64).numpy(), scale, zero_point, 8)
            self.integers["input"] = codes
            return _reals(codes, scale, zero_point)
        if n in self.by_anchor:
            g = self.by_anchor[n]
            value, integers = self.model.compute(g, [self.env[op] for op in g.operands])
            self.integers[g.name] = integers
            if g.name in self.forced:
                q = self.model.layers[g.name].quant
                value = _reals(
                    self.model.producer_layout(g.name, self.forced[g.name]), q.out_scale, q.out_zero_point
                )
            self.values[g.name] = value
            return value
        if n in self.member_of:  # epilogue nodes: the group's output
            return self.values[self.member_of[n]]
        if _is_scalar_add(n):  # den + eps: the division adds eps_int itself
            return self.env[next(a for a in n.args if isinstance(a, fx.Node))]
        if n.op == "call_method" and n.target in DTYPE_METHODS:
            return self.env[n.args[0]]
        return super().run_node(n)


def layer_agreement(quantized, model: IntegerModel, x: torch.Tensor) -> dict[str, dict]:
    """Per 8-bit layer: how the integer model's codes compare with the fake-quant model's on the same inputs.

    ``quantized``: the :class:`~archsim.quant.quantize.QuantizedModel` the graph came from. Every
    layer reads the fake-quant model's codes of its producers (``forced``), so a difference is
    that layer's own: float sums, ties, the fixed-point multiplier, the Hardswish LUT grid.
    Returns name -> {"max_diff": codes, "identical": share, "elements": n}.
    """
    reference = quantized.activation_codes(x)
    layer_codes = {k: v for k, v in reference.items() if k in model.layers}
    _, integers = model.run(x, forced=layer_codes)
    out = {}
    for name, ref in layer_codes.items():
        mine = integers[name]
        ref = model.producer_layout(name, ref)
        diff = np.abs(mine - ref)
        out[name] = {
            "max_diff": int(diff.max()),
            "identical": float((diff == 0).mean()),
            "elements": int(diff.size),
        }
    return out


def layer_output_sqnr(model: IntegerModel, x: torch.Tensor) -> dict[str, float | None]:
    """Per layer: SQNR (dB) of the integer model's output against the float model's, both run freely on ``x``.

    Shows where quantization error enters and how it builds up through the network; None when
    the two are identical.
    """
    _, integers = model.run(x)
    reals = model.layer_reals(integers)
    reference = model.float_outputs(x)
    out = {}
    for name, ref in reference.items():
        noise = float(((ref - reals[name]) ** 2).sum())
        signal = float((ref**2).sum())
        out[name] = None if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else -np.inf)
    return out
