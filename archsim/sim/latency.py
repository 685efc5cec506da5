"""Closed-form engine cycles per layer or tile (pure functions; formulas in docs/modelling.md).

An engine has R rows and, in a mode, L lanes. Work is described by
:class:`archsim.graph.opkinds.WorkDims`, derived from a layer's shapes alone by the op-kind
rule table (never from ``layer.macs``, so mapping, timing, energy and bounds all use one
consistent count). How a MAC family's loops map onto the array is the mode's dataflow
(:mod:`archsim.arch.dataflow`); the cycles follow from it here:

    folds  = ceil(prod(rows dims) / R) * ceil(prod(lanes dims) / L) * prod(outer dims)
    stream = prod(stream dims)
    core   = folds * stream                                        (no weight load declared)
           = w + (folds - 1) * max(stream, w) + stream             (weights prefetched, w cycles per fold)
           = folds * (w + stream)                                  (weights loaded inside each fold)
    cycles = core + fill * (1 per tile | folds | 1 on the layer's first tile)
"""

from __future__ import annotations

import math

from archsim.arch.dataflow import DEFAULT, FAMILY_DIMS, Dataflow, Unrolling, evaluate
from archsim.graph.opkinds import Family, WorkDims, rule


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


def compute_cycles(
    dims: WorkDims,
    rows: int,
    lanes: int,
    pipeline_cycles: int = 0,
    dataflow: Dataflow = DEFAULT,
    first_tile: bool = True,
) -> int:
    """Cycles for ``dims`` (a whole layer, one stream or one tile) on R ``rows`` and L ``lanes``.

    MAC kinds follow the mode's ``dataflow`` (:func:`mac_cycles`; the default ``mat`` preset is
    :func:`mac_array_cycles` / :func:`depthwise_cycles` plus one pipeline fill per tile); vector kinds
    take :func:`vector_cycles` plus one pipeline fill. ``first_tile``: the layer's first tile (a
    dataflow that fills once per layer pays it there).
    """
    family = rule(dims.kind).family
    if family == Family.VECTOR:
        core = vector_cycles(dims.positions, dims.ops_per_element, lanes)
        return core + pipeline_cycles if core else 0
    return mac_cycles(dims, family, dataflow, rows, lanes, pipeline_cycles, first_tile)


# -- dataflow-driven cycles (archsim.arch.dataflow declares the unrolling) ----------------
def loop_bounds(dims: WorkDims, family: Family) -> dict[str, int]:
    """The G, P, F, C, T bounds of ``dims`` (see the module docstring)."""
    if family == Family.DEPTHWISE:
        return {"G": dims.filters, "P": dims.positions, "F": 1, "C": 1, "T": dims.reduction}
    if family == Family.CONV:
        taps = dims.taps
        return {
            "G": dims.groups,
            "P": dims.positions,
            "F": dims.filters,
            "C": dims.reduction // taps,
            "T": taps,
        }
    return {"G": 1, "P": dims.positions, "F": dims.filters, "C": dims.reduction, "T": 1}


def folds_and_stream(
    dims: WorkDims, family: Family, unrolling: Unrolling, rows: int, lanes: int
) -> tuple[int, int]:
    bounds = loop_bounds(dims, family)
    spatial = set(unrolling.rows) | set(unrolling.lanes) | set(unrolling.stream)
    outer = math.prod(bounds[d] for d in FAMILY_DIMS[family] if d not in spatial)
    folds = (
        math.ceil(math.prod(bounds[d] for d in unrolling.rows) / rows)
        * math.ceil(math.prod(bounds[d] for d in unrolling.lanes) / lanes)
        * outer
    )
    return folds, math.prod(bounds[d] for d in unrolling.stream)


def mac_cycles(
    dims: WorkDims,
    family: Family,
    dataflow: Dataflow,
    rows: int,
    lanes: int,
    pipeline: int,
    first_tile: bool = True,
) -> int:
    """Cycles of one tile of a MAC family under ``dataflow`` (0 when the tile has no work)."""
    if dims.positions == 0 or dims.filters == 0 or dims.groups == 0:
        return 0
    folds, stream = folds_and_stream(dims, family, dataflow.unrolling(family), rows, lanes)
    if folds == 0 or stream == 0:
        return 0
    if dataflow.weight_load is None:
        core = folds * stream
    else:
        w = evaluate(dataflow.weight_load.cycles, rows, lanes, pipeline)
        core = (
            w + (folds - 1) * max(stream, w) + stream
            if dataflow.weight_load.prefetch
            else folds * (w + stream)
        )
    fill = evaluate(dataflow.fill_cycles, rows, lanes, pipeline)
    fills = {"tile": 1, "fold": folds, "layer": 1 if first_tile else 0}[dataflow.fill]
    return core + fills * fill


def spatial_unit(dataflow: Dataflow, family: Family, dim: str, rows: int, lanes: int) -> int:
    """Elements of ``dim`` one pass of the array covers: R if it is on the rows, L on the lanes, else 1
    (a chunk of whole units never leaves rows or lanes idle that a coarser cut would fill)."""
    unrolling = dataflow.unrolling(family)
    if unrolling.rows == (dim,):
        return rows
    if unrolling.lanes == (dim,):
        return lanes
    return 1
