"""Mapping: which engine(s) and mode run each layer, and which filters each one takes (pure functions).

Rules (docs/modelling.md, "Mapping"):

- **Eligibility.** A mode can run a group of filters when it accepts their need
  (:func:`archsim.arch.coverage.mode_supports`: kind listed, scheme listed, act bits and weight
  bits within the mode's); the filter groups come from the op-kind rule table
  (:func:`archsim.graph.opkinds.filter_groups`: uniform filters, APoT filters). An override of
  the architecture's ``mapping:`` pins the engines a layer may use.
- **Closed-form estimate.** A stream's time is its filters as one tile of the mode's dataflow
  (:func:`archsim.sim.latency.compute_cycles`, one fill); an engine's time is the sum of its
  streams; a layer's time is its slowest engine. Ties: lower energy per op, then the engine and
  mode listed first.
- **Not splittable** (dense, depthwise, matmul, vector kinds): the fastest single mode that accepts
  every filter group.
- **Splittable** (pointwise, grouped, linear; the rule table's ``splittable``), ``split: by_scheme``:
  each scheme's filters on its one fastest mode, run concurrently (the M2-ViT scheme split: uniform
  filters on the MPMA, APoT filters on the SAT). ``split: balanced`` (the default): the candidates
  are that by-scheme mapping, every single mode that accepts all the filters, and a balanced split
  in which each group's filters are shared by every engine that can run them (for each group in
  turn, every split at whole row blocks is tried when two engines can take it, a greedy block
  assignment when more can); the fewest cycles win (ties: fewer streams, then the order above), so
  a split is never slower than either engine alone. The Trio-ViT "use all PEs" rule (pointwise on
  the MAT and the R-PE together) is the balanced split of a layer two engines accept. Filters are
  assigned in channel order: each engine takes a contiguous run of each group's filter list, in
  spec order. Two groups on one engine and mode form one stream.
- Every mapping records why it was chosen (``LayerMapping.reason``, in the result).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from archsim.arch.coverage import mode_supports
from archsim.arch.spec import ArchSpec, EngineMode, EngineSpec
from archsim.graph.ir import VECTOR_KINDS, Layer, Scheme, layers
from archsim.graph.opkinds import FilterGroup, WorkDims, filter_groups, rule, work_dims
from archsim.sim.errors import MappingError
from archsim.sim.latency import compute_cycles, spatial_unit


@dataclass(frozen=True)
class Stream:
    """One engine's share of a layer: a set of filters on one mode."""

    engine: str
    mode: str
    scheme: Scheme  # the scheme of its filters (the first group's when a mode takes several)
    dims: WorkDims  # this stream's loop bounds (filters = its filters per group)
    n_filters: int  # its filters in total (0 for vector kinds)
    ops: int  # MACs, shift-adds or vector ops it executes
    cycles: int  # closed form for the whole stream as one tile (incl. one pipeline fill)
    weight_bytes: int  # its weights as stored
    filters: tuple[int, ...] | None = (
        None  # the output filters it computes, in channel order (None: all / vector)
    )


@dataclass(frozen=True)
class LayerMapping:
    layer: str
    streams: tuple[Stream, ...]
    reason: str = ""  # why this mapping (the rule and the alternatives' cycles)

    @property
    def engines(self) -> list[str]:
        return [s.engine for s in self.streams]

    @property
    def mode_label(self) -> str:
        return "+".join(s.mode for s in self.streams)


def mode_accepts(mode: EngineMode, group: FilterGroup) -> bool:
    """The coverage check's rule (archsim.arch.coverage.mode_supports) on one filter group's need."""
    return mode_supports(mode, group.need)


def _group_dims(dims: WorkDims, n_filters: int) -> WorkDims:
    if dims.kind in VECTOR_KINDS:
        return dims
    return replace(dims, filters=math.ceil(n_filters / dims.groups))


def _cycles(engine: EngineSpec, mode: EngineMode, dims: WorkDims) -> int:
    return compute_cycles(dims, engine.rows, mode.lanes, engine.pipeline_cycles, mode.dataflow)


def _engines(spec: ArchSpec, layer: Layer) -> list[EngineSpec]:
    pinned = spec.mapping.engines_for(layer.name, layer.kind)
    if pinned is None:
        return list(spec.engines)
    return [e for e in spec.engines if e.name in pinned]


def _fastest(
    engines: list[EngineSpec], dims: WorkDims, groups: list[FilterGroup], n_filters: int | None = None
):
    """The (engine, mode, cycles) accepting every group with the fewest cycles for ``n_filters``
    (default all).

    Ties: lower energy per op, then spec order (the first of equal keys is kept).
    """
    best, best_key = None, None
    gdims = dims if n_filters is None else _group_dims(dims, n_filters)
    for engine in engines:
        for mode in engine.modes:
            if all(mode_accepts(mode, g) for g in groups):
                cycles = _cycles(engine, mode, gdims)
                key = (cycles, mode.energy_per_op.value)
                if best_key is None or key < best_key:
                    best, best_key = (engine, mode, cycles), key
    return best


def _describe_modes(spec: ArchSpec) -> str:
    out = []
    for e in spec.engines:
        for m in e.modes:
            kinds = ",".join(sorted(k.value for k in m.op_kinds))
            schemes = ",".join(sorted(s.value for s in m.schemes))
            out.append(
                f"{e.name}.{m.name}(kinds={kinds}; weight_bits<={m.weight_bits}; "
                f"act_bits<={m.act_bits}; schemes={schemes})"
            )
    return "; ".join(out) or "none"


def _no_mode(spec: ArchSpec, layer: Layer, groups: list[FilterGroup], pinned: bool) -> MappingError:
    needs = ", ".join(
        f"{g.n_filters} {g.need.scheme.value} filters at {g.need.weight_bits} bits" for g in groups
    )
    where = " among the engines its mapping override allows" if pinned else ""
    return MappingError(
        f"layer {layer.name!r} (kind {layer.kind.value}, weight_bits {layer.weight_bits}, "
        f"act_bits {layer.act_bits}, needs {needs}) fits no engine mode of {spec.name!r}{where}; "
        f"the arch offers: {_describe_modes(spec)}"
    )


# -- building streams ----------------------------------------------------------------------------
def _group_filters(layer: Layer, groups: list[FilterGroup]) -> list[np.ndarray]:
    """Each group's filters in channel order (uniform / APoT by the layer's apot_mask)."""
    q = layer.quant
    mask = None if q is None else q.apot_mask
    if len(groups) == 1 or mask is None:
        return [np.arange(groups[0].n_filters)] if groups[0].n_filters else [np.zeros(0, dtype=np.int64)]
    return [np.flatnonzero(mask) if g.need.scheme == Scheme.APOT else np.flatnonzero(~mask) for g in groups]


def _stream(
    layer: Layer,
    dims: WorkDims,
    engine: EngineSpec,
    mode: EngineMode,
    parts: list[tuple[FilterGroup, np.ndarray]],
) -> Stream:
    """A stream of ``engine``/``mode`` computing the given (group, filters) parts."""
    if layer.kind in VECTOR_KINDS:
        group = parts[0][0]
        return Stream(
            engine.name, mode.name, group.need.scheme, dims, 0, dims.ops, _cycles(engine, mode, dims), 0
        )
    filters = np.sort(np.concatenate([f for _, f in parts])) if parts else np.zeros(0, dtype=np.int64)
    n = int(filters.size)
    gdims = _group_dims(dims, n)
    per_filter = math.prod(layer.weight_shape[1:]) if layer.weight_shape else dims.reduction
    weight_bytes = 0
    if layer.weight_shape is not None:  # matmuls have no weights
        weight_bytes = math.ceil(sum(f.size * g.stored_bits for g, f in parts) * per_filter / 8)
    scheme = parts[0][0].need.scheme
    every = n == dims.total_filters
    return Stream(
        engine.name,
        mode.name,
        scheme,
        gdims,
        n,
        n * dims.positions * dims.reduction,
        _cycles(engine, mode, gdims),
        weight_bytes,
        None if every else tuple(int(f) for f in filters),
    )


def _streams(
    layer: Layer,
    dims: WorkDims,
    assignment: dict[tuple[str, str], list[tuple[FilterGroup, np.ndarray]]],
    engines: list[EngineSpec],
) -> tuple[Stream, ...]:
    """Streams of an assignment {(engine, mode): [(group, filters)]}, in spec order, empty parts dropped."""
    out = []
    for engine in engines:
        for mode in engine.modes:
            parts = [(g, f) for g, f in assignment.get((engine.name, mode.name), []) if f.size]
            if parts:
                out.append(_stream(layer, dims, engine, mode, parts))
    return tuple(out)


def _layer_time(streams: tuple[Stream, ...]) -> int:
    per_engine: dict[str, int] = {}
    for s in streams:
        per_engine[s.engine] = per_engine.get(s.engine, 0) + s.cycles
    return max(per_engine.values(), default=0)


# -- candidates of a splittable layer -------------------------------------------------------------
def _by_scheme(layer, dims, groups, filters, engines) -> tuple[Stream, ...] | None:
    assignment: dict = {}
    for g, f in zip(groups, filters):
        best = _fastest(engines, dims, [g], g.n_filters)
        if best is None:
            return None
        assignment.setdefault((best[0].name, best[1].name), []).append((g, f))
    return _streams(layer, dims, assignment, engines)


def _candidates(
    engines: list[EngineSpec], dims: WorkDims, group: FilterGroup
) -> list[tuple[EngineSpec, EngineMode]]:
    """Per engine, its fastest mode for ``group`` alone (engines in spec order)."""
    out = []
    for engine in engines:
        best = _fastest([engine], dims, [group], group.n_filters)
        if best is not None:
            out.append((best[0], best[1]))
    return out


def _unit(layer: Layer, dims: WorkDims, engine: EngineSpec, mode: EngineMode) -> int:
    """Filters one pass of the engine covers in this layer (a row / lane block, times the groups)."""
    family = rule(layer.kind).family
    dim = "G" if family.value == "depthwise" else "F"
    return max(1, spatial_unit(mode.dataflow, family, dim, engine.rows, mode.lanes)) * dims.groups


def _balanced(layer, dims, groups, filters, engines) -> tuple[Stream, ...] | None:
    """Each group's filters shared by every engine that can run them (see the module docstring)."""
    cands = [_candidates(engines, dims, g) for g in groups]
    if any(not c for c in cands):
        return None
    counts = [[0] * len(c) for c in cands]  # filters of group i on its candidate j
    for i, g in enumerate(groups):  # start: every group on its first candidate
        counts[i][0] = g.n_filters

    def assignment() -> dict:
        out: dict = {}
        for i, g in enumerate(groups):
            start = 0
            for (engine, mode), n in zip(cands[i], counts[i]):
                out.setdefault((engine.name, mode.name), []).append((g, filters[i][start : start + n]))
                start += n
        return out

    def time() -> int:
        return _layer_time(_streams(layer, dims, assignment(), engines))

    for _ in range(2):  # coordinate descent over the groups: a second pass sees the others' final split
        for i, g in enumerate(groups):
            n_total, c = g.n_filters, cands[i]
            units = [_unit(layer, dims, e, m) for e, m in c]
            if len(c) == 1:
                continue
            if len(c) == 2:
                splits = sorted(
                    {min(n_total, k * units[0]) for k in range(n_total // units[0] + 2)}
                    | {max(0, n_total - k * units[1]) for k in range(n_total // units[1] + 2)}
                )
                best = None
                for n0 in splits:
                    counts[i] = [n0, n_total - n0]
                    key = (time(), n0 != n_total)  # ties: everything on the first candidate
                    if best is None or key < best[0]:
                        best = (key, n0)
                counts[i] = [best[1], n_total - best[1]]
                continue
            counts[i] = [0] * len(c)
            remaining = n_total
            while remaining:  # greedy: the next block to the candidate that then finishes first
                trials = []
                for j in range(len(c)):
                    block = min(units[j], remaining)
                    counts[i][j] += block
                    trials.append((time(), j, block))
                    counts[i][j] -= block
                _, j, block = min(trials)
                counts[i][j] += block
                remaining -= block
    return _streams(layer, dims, assignment(), engines)


def _describe(streams: tuple[Stream, ...]) -> str:
    return ", ".join(f"{s.engine}.{s.mode} {s.n_filters} filters {s.cycles:,} cy" for s in streams)


def map_layer(layer: Layer, spec: ArchSpec, avoid: frozenset[str] = frozenset()) -> LayerMapping:
    """Choose engine(s), mode(s) and filters for one layer; raise MappingError when nothing fits.

    ``avoid``: engines to leave out when the others can run the whole layer (a fused consumer avoids its
    producer's engines, archsim.sim.fusion); otherwise they are used as usual, and the reason says so."""
    if avoid:
        kept = [e.name for e in _engines(spec, layer) if e.name not in avoid]
        if kept:
            try:
                mapping = _map_layer(layer, spec, kept)
            except MappingError:
                mapping = None
            if mapping is not None:
                why = f"fused: avoids {'+'.join(sorted(avoid))} (its producer's); "
                return LayerMapping(mapping.layer, mapping.streams, why + mapping.reason)
        mapping = _map_layer(layer, spec)
        why = f"fused: cannot avoid {'+'.join(sorted(avoid))} (its producer's); "
        return LayerMapping(mapping.layer, mapping.streams, why + mapping.reason)
    return _map_layer(layer, spec)


def _map_layer(layer: Layer, spec: ArchSpec, only: list[str] | None = None) -> LayerMapping:
    dims = work_dims(layer)
    try:
        groups = filter_groups(layer, dims)
    except ValueError as exc:
        raise MappingError(str(exc)) from exc
    engines = _engines(spec, layer)
    if only is not None:
        engines = [e for e in engines if e.name in only]
    pinned = spec.mapping.engines_for(layer.name, layer.kind) is not None
    if not rule(layer.kind).splittable:
        best = _fastest(engines, dims, groups)
        if best is None:
            raise _no_mode(spec, layer, groups, pinned)
        engine, mode, _ = best
        parts = list(zip(groups, _group_filters(layer, groups)))
        stream = _stream(layer, dims, engine, mode, parts)
        return LayerMapping(layer.name, (stream,), f"not splittable: fastest mode {engine.name}.{mode.name}")
    filters = _group_filters(layer, groups)
    options: list[tuple[str, tuple[Stream, ...]]] = []
    by_scheme = _by_scheme(layer, dims, groups, filters, engines)
    if by_scheme is not None:
        options.append(("by scheme", by_scheme))
    if spec.mapping.split == "balanced":
        single = _fastest(engines, dims, groups)
        if single is not None:
            options.append(
                (
                    f"alone on {single[0].name}.{single[1].name}",
                    _streams(
                        layer, dims, {(single[0].name, single[1].name): list(zip(groups, filters))}, engines
                    ),
                )
            )
        balanced = _balanced(layer, dims, groups, filters, engines)
        if balanced is not None:
            options.append(("balanced", balanced))
    if not options:
        raise _no_mode(spec, layer, groups, pinned)
    ranked = sorted(range(len(options)), key=lambda k: (_layer_time(options[k][1]), len(options[k][1]), k))
    label, streams = options[ranked[0]]
    others = "; ".join(
        f"{options[k][0]} {_layer_time(options[k][1]):,} cy" for k in ranked[1:] if options[k][1] != streams
    )
    reason = f"{spec.mapping.split}: {label}, {_layer_time(streams):,} cy ({_describe(streams)})"
    return LayerMapping(layer.name, streams, reason + (f"; vs {others}" if others else ""))


def stream_filters(layer: Layer, stream: Stream) -> np.ndarray | None:
    """The output filters a stream computes, in channel order (None for vector kinds: every element)."""
    if layer.kind in VECTOR_KINDS:
        return None
    if stream.filters is None:
        return np.arange(stream.n_filters)
    return np.asarray(stream.filters, dtype=np.int64)


def map_graph(graph: nx.DiGraph, spec: ArchSpec) -> dict[str, LayerMapping]:
    """Map every layer, in the graph's deterministic topological order (a fused consumer is remapped as its
    pair is decided, archsim.sim.scheduler)."""
    return {layer.name: map_layer(layer, spec) for layer in layers(graph)}
