"""Can an architecture run a workload? Checked before simulating, with messages for humans.

A *need* (:class:`archsim.graph.opkinds.Need`) is one kind of work a graph contains, derived by
the op-kind rule table (:func:`archsim.graph.opkinds.layer_needs`), the same table the
simulator's mapper reads. :func:`mode_supports` is the one acceptance rule both use: kind
listed, scheme listed, act bits <= the mode's act_bits, weight bits (when the work has
weights) <= its weight_bits.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from archsim.arch.spec import ArchSpec, EngineMode, EngineSpec
from archsim.graph.ir import OpKind, Scheme, layers
from archsim.graph.opkinds import Need, layer_needs

# Every op kind an EfficientViT graph contains; load_arch requires each to be listed by some mode.
EFFICIENTVIT_KINDS: tuple[OpKind, ...] = (
    OpKind.CONV_DENSE,
    OpKind.CONV_POINTWISE,
    OpKind.CONV_DEPTHWISE,
    OpKind.CONV_GROUPED,
    OpKind.MATMUL,
    OpKind.LINEAR,
    OpKind.ADD,
    OpKind.DIV,
    OpKind.POOL,
    OpKind.NORM,
    OpKind.ACTIVATION,
)


def mode_supports(mode: EngineMode, need: Need) -> bool:
    return (
        need.kind in mode.op_kinds
        and need.scheme in mode.schemes
        and need.act_bits <= mode.act_bits
        and (need.weight_bits is None or need.weight_bits <= mode.weight_bits)
    )


def modes_for(spec: ArchSpec, need: Need) -> list[tuple[EngineSpec, EngineMode]]:
    """Every (engine, mode) that can run ``need``, in YAML order."""
    return [(e, m) for e in spec.engines for m in e.modes if mode_supports(m, need)]


def describe_need(need: Need) -> str:
    scheme_text = {Scheme.APOT: "APoT", Scheme.UNIFORM: "uniform", Scheme.FLOAT: "float"}[need.scheme]
    if need.weight_bits is None:
        return f"{need.kind.value} with {need.act_bits}-bit {scheme_text} operands"
    return (
        f"{need.kind.value} with {need.weight_bits}-bit {scheme_text} filters "
        f"and {need.act_bits}-bit activations"
    )


def _describe_mode(engine: EngineSpec, mode: EngineMode) -> str:
    schemes = ", ".join(sorted(s.value for s in mode.schemes))
    return (
        f"{engine.name}.{mode.name} [{schemes}; "
        f"weights <= {mode.weight_bits} bit, acts <= {mode.act_bits} bit]"
    )


def check_supports(spec: ArchSpec, needs: Iterable[Need]) -> list[str]:
    """One problem message per need no engine mode supports; empty when all are supported."""
    problems = []
    for need in dict.fromkeys(needs):  # dedupe, keep order
        if modes_for(spec, need):
            continue
        listing = [_describe_mode(e, m) for e in spec.engines for m in e.modes if need.kind in m.op_kinds]
        if listing:
            detail = f"modes for {need.kind.value}: " + ", ".join(listing)
        else:
            detail = f"no mode lists {need.kind.value}"
        problems.append(f"{describe_need(need)}: no engine mode supports it ({detail})")
    return problems


def graph_needs(graph: nx.DiGraph) -> list[Need]:
    """The distinct needs of every layer of an IR graph, in topological order."""
    return list(dict.fromkeys(need for layer in layers(graph) for need in layer_needs(layer)))


def missing_kinds(spec: ArchSpec, kinds: Iterable[OpKind] = EFFICIENTVIT_KINDS) -> list[OpKind]:
    """Op kinds no engine mode lists at all."""
    listed = {k for e in spec.engines for m in e.modes for k in m.op_kinds}
    return [k for k in kinds if k not in listed]
