"""Per-element scale maps of layer operands: which real scale each integer element carries.

Needed where a tensor does not have one scale: the linear-attention operands are
concatenations of two producers (qkv conv and multi-scale aggregation, one scale each),
v is padded with a constant ones column (integer 1 at scale 1), and the wide matmul outputs
carry a product of input scales per head and per column. The pass reuses the label
propagation of :mod:`archsim.frontend.fx_groups` (layout ops run on the maps as they are)
with scale values instead of producer labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx

from archsim.frontend.fx_groups import Group, GroupedGraph, _is_scalar_add, _LabelInterpreter, activation_name

PAD_SCALE = 1.0  # the padded ones column: integer 1 at scale 1.0 (real 1 exactly)


def compress(scale_map) -> np.ndarray:
    """The smallest broadcastable form of a scale map: size 1 along every axis where it is constant."""
    if isinstance(scale_map, torch.Tensor):
        if all(st == 0 for st in scale_map.stride()):  # one value broadcast: no scan needed
            return np.full((1,) * scale_map.dim(), float(scale_map.reshape(-1)[0]))
        scale_map = scale_map.numpy()
    m = np.asarray(scale_map, dtype=np.float64)
    for axis in range(m.ndim):
        first = np.take(m, [0], axis=axis)
        if np.array_equal(np.broadcast_to(first, m.shape), m):
            m = first
    return m


def _full(shape, value) -> torch.Tensor:
    """A scale map without memory when the value is a scalar; expanded when it is an array."""
    t = torch.as_tensor(np.asarray(value, dtype=np.float64))
    return t.expand(tuple(shape)) if t.dim() <= len(shape) else t


class _ScaleInterpreter(_LabelInterpreter):
    def __init__(self, gm, grouped: GroupedGraph, output_scale: Callable, input_scale: float):
        super().__init__(gm, grouped.groups, grouped.shapes)
        self.groups = grouped.groups
        self.output_scale = output_scale
        self.input_scale = input_scale
        self.operand_maps: dict[str, list[np.ndarray]] = {}
        self.out_maps: dict[str, np.ndarray] = {}

    def run_node(self, n: fx.Node):
        if n.op == "placeholder":
            return _full(self.shapes[n.name], self.input_scale)
        if n in self.by_anchor:
            _, g = self.by_anchor[n]
            maps = [compress(self.env[op]) for op in g.operands]
            self.operand_maps[g.name] = maps
            self.out_maps[g.name] = compress(self.output_scale(g, maps))
        if n in self.by_output:
            g = self.groups[self.by_output[n]]
            return _full(self.shapes[n.name], self.out_maps[g.name])
        if n in self.internal:
            return _full(self.shapes[n.name], 0.0) if n.name in self.shapes else None
        if _is_scalar_add(n):
            return self.env[next(a for a in n.args if isinstance(a, fx.Node))]
        if activation_name(self.module, n) is not None:  # prologue ReLU keeps the scale
            return self.env[n.args[0]]
        if n.op == "call_function" and n.target is F.pad:
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            kwargs = dict(kwargs, value=PAD_SCALE)
            return F.pad(*args[:3], **kwargs)
        return fx.Interpreter.run_node(self, n)


def trace_scale_maps(
    grouped: GroupedGraph, output_scale: Callable[[Group, list[np.ndarray]], object], input_scale: float
) -> tuple[dict[str, list[np.ndarray]], dict[str, np.ndarray]]:
    """Operand scale maps (compressed, per anchor operand) and output scale maps of every group.

    ``output_scale(group, operand_maps)`` gives a group's output scale: the activation
    scale of an 8-bit output, the accumulator scale of a wide one.
    """
    interp = _ScaleInterpreter(grouped.gm, grouped, output_scale, input_scale)
    placeholders = [n for n in grouped.gm.graph.nodes if n.op == "placeholder"]
    with torch.no_grad():
        interp.run(*[_full(grouped.shapes[p.name], input_scale) for p in placeholders])
    return interp.operand_maps, interp.out_maps


def trace_index_maps(grouped: GroupedGraph, producers: set[str]) -> dict[str, list[np.ndarray]]:
    """For every group, per operand: the flat index into a ``producers`` output of each element
    (NaN elsewhere).

    The same propagation as the scale maps, with a producer's output numbered 0..n-1 instead of
    filled with its scale: it tells where a consumer's input element sits in its producer's
    output through any chain of layout ops (the linear attention's transpose and reshape).
    """

    def numbering(g: Group, _maps):
        if g.name not in producers:
            return float("nan")
        shape = grouped.shapes[g.output.name]
        return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)

    operand_maps, _ = trace_scale_maps(grouped, numbering, float("nan"))
    return operand_maps


def to_producer_layout(index_map: np.ndarray, producer_shape, per_channel, axis: int = 1) -> np.ndarray:
    """Per-channel values of a consumer's input, placed where each element sits in the producer's output.

    ``index_map``: the consumer operand's index map (:func:`trace_index_maps`); ``per_channel``:
    one value per consumer input channel (along ``axis``). Returns the compressed map over the
    producer's output; every producer element must reach the consumer.
    """
    index_map = np.asarray(index_map)
    values = np.asarray(per_channel, dtype=np.float64)
    shape = [1] * index_map.ndim
    shape[axis] = -1
    values = np.broadcast_to(values.reshape(shape), index_map.shape)
    out = np.full(int(np.prod(producer_shape)), np.nan)
    if np.isnan(index_map).any():
        raise ValueError("to_producer_layout: the consumer operand mixes producers")
    out[index_map.reshape(-1).astype(np.int64)] = values.reshape(-1)
    if np.isnan(out).any():
        raise ValueError("to_producer_layout: some producer elements never reach the consumer")
    return compress(out.reshape(tuple(producer_shape)))


def matmul_acc_scale(a_map: np.ndarray, b_map: np.ndarray) -> np.ndarray | None:
    """Scale of (..., M, K) @ (..., K, N) accumulators: s_a[..., m] * s_b[..., n].

    None when a scale varies along the reduction axis K (the integer sum would mix scales).
    """
    a, b = np.asarray(a_map), np.asarray(b_map)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != 1 or b.shape[-2] != 1:
        return None
    return a * b  # (..., M, 1) * (..., 1, N) broadcasts to (..., M, N)
