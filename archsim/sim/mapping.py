"""Mapping: which engine(s) and mode run each layer (a pure function of layer + spec).

Rules (docs/modelling.md, "Mapping"):
- a mode is eligible when the layer's kind is in its ``op_kinds``, the layer's weight bits
  <= ``weight_bits`` (vector kinds and matmuls have no weights and ignore weight bits; a
  matmul's operands are both activations, checked by act bits), act bits <= ``act_bits`` and the
  filters' scheme is in ``schemes``;
- among eligible modes the fastest (fewest closed-form cycles incl. one pipeline fill)
  wins; among equally fast modes the one with the lower energy per op (a 4-bit depthwise
  layer too narrow to use the single mode's extra lanes still runs in single mode), then
  the engine (then mode) listed first in the spec;
- a pointwise/grouped/linear layer whose filters mix APoT and uniform is split: each
  scheme's filters form their own stream on their own fastest mode, run concurrently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from archsim.arch.coverage import mode_supports
from archsim.arch.spec import ArchSpec, EngineMode, EngineSpec
from archsim.graph.ir import VECTOR_KINDS, Layer, OpKind, Scheme, layers
from archsim.graph.opkinds import FilterGroup, WorkDims, filter_groups, rule, work_dims
from archsim.sim.errors import MappingError
from archsim.sim.latency import compute_cycles


@dataclass(frozen=True)
class Stream:
    """One engine's share of a layer: a set of filters with one scheme, on one mode."""

    engine: str
    mode: str
    scheme: Scheme
    dims: WorkDims  # this stream's loop bounds (filters = its filters per group)
    n_filters: int  # its filters in total (0 for vector kinds)
    ops: int  # MACs, shift-adds or vector ops it executes
    cycles: int  # closed form for the whole stream as one tile (incl. one pipeline fill)
    weight_bytes: int  # its weights as stored


@dataclass(frozen=True)
class LayerMapping:
    layer: str
    streams: tuple[Stream, ...]

    @property
    def engines(self) -> list[str]:
        return [s.engine for s in self.streams]

    @property
    def mode_label(self) -> str:
        return "+".join(s.mode for s in self.streams)


def _group_dims(dims: WorkDims, n_filters: int) -> WorkDims:
    if dims.kind in VECTOR_KINDS:
        return dims
    return replace(dims, filters=math.ceil(n_filters / dims.groups))


def mode_accepts(mode: EngineMode, group: FilterGroup) -> bool:
    """The coverage check's rule (archsim.arch.coverage.mode_supports) on one filter group's need."""
    return mode_supports(mode, group.need)


def _fastest(spec: ArchSpec, layer: Layer, dims: WorkDims, groups: list[FilterGroup]):
    """The (engine, mode, cycles) accepting every group with the fewest cycles.

    Ties: lower energy per op, then spec order (the first of equal keys is kept).
    """
    best, best_key = None, None
    for engine in spec.engines:
        for mode in engine.modes:
            if all(mode_accepts(mode, g) for g in groups):
                cycles = compute_cycles(dims, engine.rows, mode.lanes, engine.pipeline_cycles)
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
            out.append(f"{e.name}.{m.name}(kinds={kinds}; weight_bits<={m.weight_bits}; "
                       f"act_bits<={m.act_bits}; schemes={schemes})")
    return "; ".join(out) or "none"


def _no_mode(spec: ArchSpec, layer: Layer, groups: list[FilterGroup]) -> MappingError:
    needs = ", ".join(f"{g.n_filters} {g.need.scheme.value} filters at {g.need.weight_bits} bits" for g in groups)
    return MappingError(
        f"layer {layer.name!r} (kind {layer.kind.value}, weight_bits {layer.weight_bits}, act_bits {layer.act_bits}, "
        f"needs {needs}) fits no engine mode of {spec.name!r}; the arch offers: {_describe_modes(spec)}"
    )


def _stream(layer: Layer, dims: WorkDims, engine: EngineSpec, mode: EngineMode, g: FilterGroup, cycles: int) -> Stream:
    if layer.kind in VECTOR_KINDS:
        return Stream(engine.name, mode.name, g.need.scheme, dims, 0, dims.ops, cycles, 0)
    ops = g.n_filters * dims.positions * dims.reduction
    weight_bytes = 0
    if layer.kind != OpKind.MATMUL:
        per_filter = math.prod(layer.weight_shape[1:]) if layer.weight_shape else dims.reduction
        weight_bytes = math.ceil(g.n_filters * per_filter * g.stored_bits / 8)
    return Stream(engine.name, mode.name, g.need.scheme, _group_dims(dims, g.n_filters), g.n_filters, ops, cycles,
                  weight_bytes)


def map_layer(layer: Layer, spec: ArchSpec) -> LayerMapping:
    """Choose engine(s) and mode(s) for one layer; raise MappingError when nothing fits."""
    dims = work_dims(layer)
    try:
        groups = filter_groups(layer, dims)
    except ValueError as exc:
        raise MappingError(str(exc)) from exc
    if len(groups) > 1 and rule(layer.kind).splittable:
        streams = []
        for g in groups:
            gdims = _group_dims(dims, g.n_filters)
            best = _fastest(spec, layer, gdims, [g])
            if best is None:
                raise _no_mode(spec, layer, [g])
            streams.append(_stream(layer, dims, best[0], best[1], g, best[2]))
        return LayerMapping(layer.name, tuple(streams))
    best = _fastest(spec, layer, dims, groups)
    if best is None:
        raise _no_mode(spec, layer, groups)
    engine, mode, cycles = best
    if len(groups) == 1:
        return LayerMapping(layer.name, (_stream(layer, dims, engine, mode, groups[0], cycles),))
    # one mode handles every scheme: a single stream carrying all filters
    merged = FilterGroup(replace(groups[0].need, weight_bits=max(g.need.weight_bits or 0 for g in groups)),
                         dims.total_filters, max(g.stored_bits for g in groups))
    stream = _stream(layer, dims, engine, mode, merged, cycles)
    return LayerMapping(layer.name, (replace(stream, weight_bytes=layer.weight_bytes),))


def stream_filters(layer: Layer, stream: Stream) -> np.ndarray | None:
    """The output filters a stream computes, in channel order (None for vector kinds: every element).

    A stream that carries every filter of the layer takes them all; a scheme stream of a split
    layer takes the filters whose ``quant.apot_mask`` says that scheme.
    """
    if layer.kind in VECTOR_KINDS:
        return None
    mask = None if layer.quant is None else layer.quant.apot_mask
    if mask is None or stream.n_filters == mask.size:
        return np.arange(stream.n_filters)
    selected = np.flatnonzero(mask) if stream.scheme == Scheme.APOT else np.flatnonzero(~mask)
    if selected.size != stream.n_filters:
        raise MappingError(f"{layer.name}: stream {stream.engine}.{stream.mode} has {stream.n_filters} filters, "
                           f"the layer has {selected.size} {stream.scheme.value} filters")
    return selected


def map_graph(graph: nx.DiGraph, spec: ArchSpec) -> dict[str, LayerMapping]:
    """Map every layer, in the graph's deterministic topological order."""
    return {layer.name: map_layer(layer, spec) for layer in layers(graph)}
