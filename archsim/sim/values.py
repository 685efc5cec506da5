"""Values computed by the simulated hardware: each tile's outputs on the arithmetic of its engine.

:class:`TileValues` connects the scheduler to the functional executor (archsim.functional):
when a layer starts its operands are assembled from its producers' finished outputs; when a
stream's tile completes on its engine, that tile's filters x positions are computed by the
engine's arithmetic (``ARITHMETIC[engine.kind]``: a multiplier array, the SAT's shift-add, the
vector unit); when the layer ends, every output element must have been computed exactly once.
A split pointwise layer's uniform filters are therefore computed by the MPMA and its APoT
filters by the SAT, and merged; a wrong split, tiling or engine gives wrong values (or an
error naming the layer). Values do not feed back into timing: results are identical with
values on or off.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from archsim.arch.spec import ArchSpec
from archsim.functional.arithmetic import Arithmetic, arithmetic_for
from archsim.functional.executor import Executor
from archsim.graph.ir import layers
from archsim.sim.mapping import LayerMapping, stream_filters
from archsim.sim.plan import LayerPlan


class TileValues:
    def __init__(
        self,
        graph: nx.DiGraph,
        spec: ArchSpec,
        mappings: dict[str, LayerMapping],
        input_codes: np.ndarray,
        arithmetic: dict[str, Arithmetic] | None = None,
    ):
        self.executor = Executor(graph)
        self.executor.set_input(input_codes)
        self.arithmetic = {e.name: arithmetic_for(e.kind) for e in spec.engines}
        self.arithmetic.update(arithmetic or {})
        self.layers = {layer.name: layer for layer in layers(graph)}
        self.filters: dict[
            str, list
        ] = {}  # per layer, as it starts: its streams' filters (its plan's mapping)

    def begin(self, plan: LayerPlan, live: frozenset[str] = frozenset()) -> None:
        """The layer starts; ``live``: fused producers still running, whose rows each tile reads as it
        starts."""
        layer = self.layers[plan.name]
        self.filters[plan.name] = [stream_filters(layer, s) for s in plan.mapping.streams]
        self.executor.begin_layer(plan.name, live)

    def tile(self, plan: LayerPlan, stream: int, tile: int) -> None:
        t = plan.tiles[tile]
        f0, f1 = t.filters[stream]
        index = self.filters[plan.name][stream]
        engine = plan.mapping.streams[stream].engine
        self.executor.feed(plan.name, t.positions)  # a fused consumer: its producer's rows, checked finished
        self.executor.compute(
            plan.name, self.arithmetic[engine], None if index is None else index[f0:f1], t.positions
        )

    def end(self, plan: LayerPlan) -> None:
        self.executor.end_layer(plan.name)

    @property
    def values(self) -> dict[str, np.ndarray]:
        return self.executor.values
