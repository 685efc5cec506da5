"""The integer-path parameters a layer's QuantInfo carries (docs/quantization.md, "Integer semantics").

From the float scales that quantization chose, derive what the functional executor needs to
run a layer in integers: accumulator scale, fixed-point requantization multipliers, the
bias with the input zero-point correction folded in, Hardswish LUT grids, division eps.
No torch: inputs are numpy scale maps (see :mod:`archsim.frontend.scale_maps`).
"""

from __future__ import annotations

import math

import numpy as np

from archsim.frontend.fx_groups import Group, GroupedGraph
from archsim.frontend.scale_maps import matmul_acc_scale, trace_scale_maps
from archsim.graph.ir import Layer, OpKind, QuantInfo, output_affine_maps, output_channel_affine
from archsim.numerics import integer as qi
from archsim.numerics.integer_norm import layer_norm_params
from archsim.quant.calibrate import input_key


def weighted_acc_scale(in_map: np.ndarray, weight_scale: np.ndarray) -> np.ndarray | None:
    """s_in * s_w[o] per output channel; None when the input has more than one scale."""
    in_map = np.asarray(in_map)
    if in_map.size != 1:
        return None
    return float(in_map.reshape(-1)[0]) * np.asarray(weight_scale, dtype=np.float64)


def channel_broadcast(per_channel: np.ndarray, kind: OpKind, ndim: int) -> np.ndarray:
    """A per-output-channel vector shaped to broadcast over a layer output (NCHW: axis 1; linear: last)."""
    shape = [1] * ndim
    shape[-1 if kind == OpKind.LINEAR else 1] = -1
    return np.asarray(per_channel).reshape(shape)


def mac_acc_scale(
    kind: OpKind, operand_maps: list[np.ndarray], weight_scale: np.ndarray | None
) -> np.ndarray | None:
    """Accumulator scale of a MAC layer: per output channel (weighted)
    or a map broadcastable to the output (matmul)."""
    if kind == OpKind.MATMUL:
        return matmul_acc_scale(*operand_maps)
    if kind.has_weights and weight_scale is not None:
        return weighted_acc_scale(operand_maps[0], weight_scale)
    return None


def operand_scale_maps(grouped: GroupedGraph, quantized) -> dict[str, list[np.ndarray]]:
    """Per group, the scale of every element of each operand
    (8-bit: the producer's scale; wide: its acc scale).

    ``quantized``: a QuantizedModel (its ``activations``, ``weights`` and ``wide``); ``grouped``
    must be a trace without inserted quantizers (extraction's, or a fresh trace of the folded model).
    """
    acts = quantized.activations

    def output_scale(g: Group, maps: list[np.ndarray]):
        if g.name not in quantized.wide:
            q = acts.get(g.name)
            return float("nan") if q is None else q.scale
        w = quantized.weights.get(g.name)
        acc = mac_acc_scale(g.kind, maps, None if w is None else w.scale)
        if acc is None:
            return float("nan")
        return (
            acc
            if g.kind == OpKind.MATMUL
            else channel_broadcast(acc, g.kind, len(grouped.shapes[g.output.name]))
        )

    input_q = acts.get(input_key(acts))
    operand_maps, _ = trace_scale_maps(
        grouped, output_scale, float("nan") if input_q is None else input_q.scale
    )
    return operand_maps


# [choice] bits of a fused Hardswish's LUT input grid (a 2^bits-entry table). Measured on the
# toy model (docs/quantization.md): 8 bits lands up to 4 codes (m2q) / 11 codes (uniform_w8a8
# with per-channel refinements) off the fake-quant model, 12 bits within 1 code.
LUT_IN_BITS = 12


def fill_integer_params(
    layer: Layer,
    info: QuantInfo,
    operand_maps: list[np.ndarray],
    operand_of_port: list[int],
    wide_ports: list[bool],
    out_range: tuple[float, float] | None,
    norm_affine: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Add requant_m0/shift, bias_int, acc_scale, lut_in_*, in_acc_scales, eps_int to ``info`` in place.

    ``operand_maps``: compressed scale map of each anchor operand; ``operand_of_port``:
    which operand each input port belongs to; ``wide_ports``: ports read at accumulator
    width; ``out_range``: calibrated (min, max) of the stored 8-bit output (Hardswish LUT grids);
    ``norm_affine``: a LayerNorm's (gamma, beta) in float64.
    """
    info.in_acc_scales = tuple(
        operand_maps[op] if wide else None for op, wide in zip(operand_of_port, wide_ports)
    )
    wide_out = info.out_scale is None
    if layer.kind.is_mac:
        acc = mac_acc_scale(layer.kind, operand_maps, info.weight_scale)
        info.acc_scale = acc
        if acc is not None and layer.kind.has_weights and info.weight_int is not None:
            info.bias_int = qi.fold_bias(
                info.bias,
                float(np.asarray(operand_maps[0]).reshape(-1)[0]),
                info.weight_scale,
                info.in_zero_points[0],
                info.weight_int,
            )
        if acc is None or wide_out:
            return
        target = info.out_scale
        if "hardswish" in layer.epilogue and out_range is not None and layer.kind.has_weights:
            # One LUT input grid per output channel, from that channel's pre-refinement output
            # range (y = stored * divisor + shift); without refinements all channels share one.
            divisor, shift = output_channel_affine(layer, acc.size)
            grids = [
                qi.asymmetric_params(
                    *qi.hardswish_input_range(out_range[1] * d + z, out_range[0] * d + z), LUT_IN_BITS
                )
                for d, z in zip(divisor, shift)
            ]
            info.lut_in_bits = LUT_IN_BITS
            info.lut_in_scale = np.array([g[0] for g in grids], dtype=np.float64)
            info.lut_in_zero_point = np.array([g[1] for g in grids], dtype=np.int64)
            target = info.lut_in_scale
        elif layer.kind.has_weights:
            # no activation: divisor and shift fold into the multiplier and the bias
            divisor, shift = output_channel_affine(layer, acc.size)
            target = info.out_scale * divisor
            if info.bias_int is not None and np.any(shift != 0):
                info.bias_int = info.bias_int - qi.round_half_away(shift / acc)
        info.requant_m0, info.requant_shift = qi.requant_multipliers(acc / target)
        return
    if wide_out:
        return
    if layer.kind == OpKind.NORM and not any(wide_ports):
        target = info.out_scale
        if "hardswish" in layer.epilogue and out_range is not None:  # LayerNorm writes the LUT input grid
            scale, zero_point = qi.asymmetric_params(
                *qi.hardswish_input_range(out_range[1], out_range[0]), LUT_IN_BITS
            )
            info.lut_in_bits = LUT_IN_BITS
            info.lut_in_scale = np.array([scale])
            info.lut_in_zero_point = np.array([zero_point], dtype=np.int64)
            target = scale
        if norm_affine is None:
            raise ValueError(f"{layer.name}: a LayerNorm without an affine part has no integer rule")
        info.norm_params = layer_norm_params(
            norm_affine[0], norm_affine[1], layer.norm.eps, info.in_scales[0], target, layer.in_shapes[0][-1]
        )
    elif layer.kind == OpKind.POOL and not any(wide_ports):
        hw = math.prod(layer.in_shapes[0][-2:])
        info.requant_m0, info.requant_shift = qi.requant_multipliers(
            np.array([info.in_scales[0] / (hw * info.out_scale)])
        )
    elif layer.kind == OpKind.ADD and len(info.in_scales) == 2 and not any(wide_ports):
        divisor, shift = output_affine_maps(layer)
        m_a, m_b, common_shift, offset = qi.add_channel_params(
            info.in_scales[0], info.in_scales[1], info.out_scale, divisor, shift
        )
        info.requant_m0 = np.stack([m_a, m_b])  # port order; each broadcastable to the output
        info.requant_shift = np.stack([common_shift, common_shift])
        info.requant_offset = offset if np.any(offset != 0) else None
    elif layer.kind == OpKind.DIV and len(operand_maps) == 2:
        num, den = (np.asarray(m) for m in operand_maps)
        divisor, shift = output_affine_maps(layer)
        info.requant_m0, info.requant_shift = qi.requant_multipliers(num / (den * info.out_scale * divisor))
        info.eps_int = qi.division_eps_int(layer.div.eps, den)
        if np.any(shift != 0):  # in output codes with OFFSET_FRACTION_BITS fraction bits
            info.requant_offset = qi.offset_fixed(shift / divisor, info.out_scale)
