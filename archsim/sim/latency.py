"""Closed-form engine cycles per layer or tile (pure functions; formulas in docs/modelling.md).

An engine has R rows and, in a mode, L lanes. Work is described by
:class:`archsim.graph.opkinds.WorkDims`, derived from a layer's shapes alone by the op-kind
rule table (never from ``layer.macs``, so mapping, timing, energy and bounds all use one
consistent count).
"""

from __future__ import annotations

import math

from archsim.graph.ir import VECTOR_KINDS, OpKind
from archsim.graph.opkinds import WorkDims



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
