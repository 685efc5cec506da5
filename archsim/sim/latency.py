"""Closed-form engine cycles per layer or tile (pure functions; formulas in docs/modelling.md).

An engine has R rows and, in a mode, L lanes. Work is described by :class:`WorkDims`,
derived from a layer's shapes alone (never from ``layer.macs``, so mapping, timing,
energy and bounds all use one consistent count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archsim.graph.ir import VECTOR_KINDS, Layer, OpKind

# Vector-unit operations per element, per kind [choice, documented in docs/modelling.md]:
# add/div/activation one op per output element; pool one add per *input* element;
# layer norm ~5 ops per element (mean, subtract, square-accumulate, scale, shift).
VECTOR_OPS_PER_ELEMENT = {
    OpKind.ADD: 1,
    OpKind.DIV: 1,
    OpKind.POOL: 1,
    OpKind.NORM: 5,
    OpKind.ACTIVATION: 1,
}

CONV_LIKE = frozenset({OpKind.CONV_DENSE, OpKind.CONV_POINTWISE, OpKind.CONV_GROUPED, OpKind.LINEAR, OpKind.MATMUL})


@dataclass(frozen=True)
class WorkDims:
    """The loop bounds the closed forms need.

    conv-like: groups G, output positions P, filters per group F, reduction length K.
    depthwise: channels = F (G = 1), positions P, K = kh*kw.
    vector: P = elements the vector unit touches, ops_per_element; F = K = G = 1.
    """

    kind: OpKind
    groups: int
    positions: int
    filters: int  # per group
    reduction: int
    ops_per_element: int = 1

    @property
    def total_filters(self) -> int:
        return self.groups * self.filters

    @property
    def ops(self) -> int:
        """MACs (MAC kinds) or vector ops (vector kinds)."""
        if self.kind in VECTOR_KINDS:
            return self.positions * self.ops_per_element
        return self.groups * self.positions * self.filters * self.reduction


def work_dims(layer: Layer) -> WorkDims:
    """Derive the closed-form loop bounds from a layer's shapes; clear error on bad shapes."""
    k = layer.kind
    try:
        if k in VECTOR_KINDS:
            src = layer.in_shapes[0] if k == OpKind.POOL else layer.out_shape
            return WorkDims(k, 1, math.prod(src), 1, 1, VECTOR_OPS_PER_ELEMENT[k])
        if k in (OpKind.LINEAR, OpKind.MATMUL):
            positions = math.prod(layer.out_shape[:-1])
            return WorkDims(k, 1, positions, layer.out_shape[-1], layer.in_shapes[0][-1])
        n, c_out, h_out, w_out = layer.out_shape
        c_in = layer.in_shapes[0][1]
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"{layer.name}: shapes {layer.in_shapes} -> {layer.out_shape} do not fit kind {k.value}") from exc
    kh, kw = layer.kernel
    positions = n * h_out * w_out
    if k == OpKind.CONV_DEPTHWISE:
        if c_in != c_out:
            raise ValueError(f"{layer.name}: depthwise conv needs in channels == out channels, got {c_in} -> {c_out}")
        return WorkDims(k, 1, positions, c_out, kh * kw)
    if k in CONV_LIKE:
        g = layer.groups
        if g < 1 or c_in % g or c_out % g:
            raise ValueError(f"{layer.name}: groups={g} must divide in channels {c_in} and out channels {c_out}")
        return WorkDims(k, g, positions, c_out // g, (c_in // g) * kh * kw)
    raise ValueError(f"{layer.name}: no closed form for kind {k.value}")


def mac_array_cycles(groups: int, positions: int, filters: int, reduction: int, rows: int, lanes: int) -> int:
    """conv/linear/matmul: G * P * ceil(F/R) * ceil(K/L) (filters across rows, reduction across lanes)."""
    if positions == 0 or filters == 0 or groups == 0:
        return 0
    return groups * positions * math.ceil(filters / rows) * math.ceil(reduction / lanes)


def depthwise_cycles(channels: int, positions: int, kernel_area: int, rows: int, lanes: int) -> int:
    """Depthwise (R-PE-like): channels across lanes, output pixels across rows: ceil(C/L)*ceil(P/R)*kh*kw."""
    if channels == 0 or positions == 0:
        return 0
    return math.ceil(channels / lanes) * math.ceil(positions / rows) * kernel_area


def vector_cycles(elements: int, ops_per_element: int, lanes: int) -> int:
    """Vector kinds: ceil(elements * ops_per_element / L)."""
    return math.ceil(elements * ops_per_element / lanes)


def compute_cycles(dims: WorkDims, rows: int, lanes: int, pipeline_cycles: int = 0) -> int:
    """Cycles for ``dims`` (a whole layer, one stream or one tile) plus the per-tile pipeline fill."""
    if dims.kind in VECTOR_KINDS:
        core = vector_cycles(dims.positions, dims.ops_per_element, lanes)
    elif dims.kind == OpKind.CONV_DEPTHWISE:
        core = depthwise_cycles(dims.filters, dims.positions, dims.reduction, rows, lanes)
    else:
        core = mac_array_cycles(dims.groups, dims.positions, dims.filters, dims.reduction, rows, lanes)
    return core + pipeline_cycles if core else 0
