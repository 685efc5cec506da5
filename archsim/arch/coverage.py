"""Can an architecture run a workload? Checked before simulating, with messages for humans.

A *need* is ``(OpKind, weight_bits | None, act_bits, Scheme)``: one kind of work a graph
contains. A mode supports it under the contract of :class:`archsim.arch.spec.EngineMode`:
kind listed, weight bits <= mode weight_bits (None counts as 0), act bits <= act_bits,
scheme listed.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from archsim.arch.spec import ArchSpec, EngineMode, EngineSpec
from archsim.graph.ir import OpKind, Scheme, layers

Need = tuple[OpKind, "int | None", int, Scheme]

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

FLOAT_BITS = 32  # a weight or activation this wide (or wider) is floating point, not an integer code


def mode_supports(mode: EngineMode, need: Need) -> bool:
    kind, weight_bits, act_bits, scheme = need
    return (
        kind in mode.op_kinds
        and (weight_bits or 0) <= mode.weight_bits
        and act_bits <= mode.act_bits
        and scheme in mode.schemes
    )


def modes_for(spec: ArchSpec, need: Need) -> list[tuple[EngineSpec, EngineMode]]:
    """Every (engine, mode) that can run ``need``, in YAML order."""
    return [(e, m) for e in spec.engines for m in e.modes if mode_supports(m, need)]


def describe_need(need: Need) -> str:
    kind, weight_bits, act_bits, scheme = need
    scheme_text = {Scheme.APOT: "APoT", Scheme.UNIFORM: "uniform", Scheme.FLOAT: "float"}[scheme]
    if weight_bits is None:
        return f"{kind.value} with {act_bits}-bit {scheme_text} operands"
    return f"{kind.value} with {weight_bits}-bit {scheme_text} filters and {act_bits}-bit activations"


def _describe_mode(engine: EngineSpec, mode: EngineMode) -> str:
    schemes = ", ".join(sorted(s.value for s in mode.schemes))
    return f"{engine.name}.{mode.name} [{schemes}; weights <= {mode.weight_bits} bit, acts <= {mode.act_bits} bit]"


def check_supports(spec: ArchSpec, needs: Iterable[Need]) -> list[str]:
    """One problem message per need no engine mode supports; empty when all are supported."""
    problems = []
    for need in dict.fromkeys(needs):  # dedupe, keep order
        if modes_for(spec, need):
            continue
        listing = [_describe_mode(e, m) for e in spec.engines for m in e.modes if need[0] in m.op_kinds]
        if listing:
            detail = f"modes for {need[0].value}: " + ", ".join(listing)
        else:
            detail = f"no mode lists {need[0].value}"
        problems.append(f"{describe_need(need)}: no engine mode supports it ({detail})")
    return problems


def layer_needs(layer) -> list[Need]:
    """The needs of one IR layer; the same rules as the simulator's mapper (archsim.sim.mapping).

    - Weighted layer with ``quant.apot_mask``: one need per scheme present; APoT filters at
      ``quant.apot_bits`` (else the layer's weight bits), uniform filters at ``weight_bits``.
    - Any other layer: uniform when its activation bits and weight bits (if any) are all
      below 32, else float. A vector op on int32 tensors (kept wide before the division)
      therefore counts as float: the IR cannot tell int32 from fp32, so vector modes list both.
    """
    kind, act_bits = layer.kind, layer.act_bits
    q = layer.quant
    if layer.weight_bits is not None and q is not None and q.apot_mask is not None and q.apot_mask.size:
        needs: list[Need] = []
        if q.apot_filters < q.apot_mask.size:
            needs.append((kind, layer.weight_bits, act_bits, Scheme.UNIFORM))
        if q.apot_filters:
            needs.append((kind, q.apot_bits or layer.weight_bits, act_bits, Scheme.APOT))
        return needs
    widest = max(act_bits, layer.weight_bits or 0)
    return [(kind, layer.weight_bits, act_bits, Scheme.UNIFORM if widest < FLOAT_BITS else Scheme.FLOAT)]


def graph_needs(graph: nx.DiGraph) -> list[Need]:
    """The distinct needs of every layer of an IR graph, in topological order."""
    return list(dict.fromkeys(need for layer in layers(graph) for need in layer_needs(layer)))


def missing_kinds(spec: ArchSpec, kinds: Iterable[OpKind] = EFFICIENTVIT_KINDS) -> list[OpKind]:
    """Op kinds no engine mode lists at all."""
    listed = {k for e in spec.engines for m in e.modes for k in m.op_kinds}
    return [k for k in kinds if k not in listed]
