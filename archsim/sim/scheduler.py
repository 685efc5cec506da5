"""Layer scheduling: one SimPy process per layer, dataflow-ordered, tiles double-buffered.

A layer starts when all its predecessors have finished. Per tile: a loader takes one of
two tile slots (double buffering) and, at the first tile of a filter chunk, weight-buffer
space; it DMAs the weights chunk and the tile's DRAM inputs in; each stream's compute
process waits for the tile, then holds its engine for the tile's closed-form time
(streams of a split layer run concurrently on their engines) and, when values are on,
computes the tile's outputs on that engine's arithmetic (archsim.sim.values); when every
stream has finished the tile it retires: the slot (and the chunk's weight space after its last tile)
is freed and a DRAM write-back is started when the output leaves the chip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import simpy

from archsim.sim.kernel import CountingEnvironment
from archsim.sim.plan import LayerPlan
from archsim.sim.top import Top
from archsim.sim.values import TileValues

TILE_SLOTS = 2  # ping-pong: tile i+1 loads while tile i computes


@dataclass
class LayerRecord:
    start_ps: int = 0
    end_ps: int = 0
    dram_read_bytes: int = 0  # burst-rounded
    dram_write_bytes: int = 0
    weight_load_bytes: int = 0  # burst-rounded bytes written into the weight buffer
    dram_input_bytes: int = 0  # burst-rounded activation bytes read in
    stream_busy_ps: list[int] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        env: CountingEnvironment,
        top: Top,
        graph: nx.DiGraph,
        plans: dict[str, LayerPlan],
        values: TileValues | None = None,
    ) -> None:
        self.env, self.top, self.graph, self.plans = env, top, graph, plans
        self.values = values  # functional compute per tile (archsim.sim.values), or None for timing only
        self.done = {name: env.event() for name in plans}
        self.records = {name: LayerRecord() for name in plans}
        self.tracer = top.tracer  # archsim.sim.trace.Tracer, or None: one `if` per traced activity
        self.slots_track = f"{top.buffers[top.spec.buffer_for('activations').name].path}.tile_slots"

    def start(self) -> None:
        for name in sorted(self.plans, key=lambda n: self.plans[n].index):
            self.env.process(self._layer(self.plans[name]))

    def _layer(self, plan: LayerPlan):
        env, tracer, wbuf = self.env, self.tracer, self.top.weight_buffer
        producers = sorted(self.graph.predecessors(plan.name))
        preds = [self.done[p] for p in producers]
        if preds:
            yield env.all_of(preds)
        rec = self.records[plan.name]
        rec.start_ps = env.now
        rec.stream_busy_ps = [0] * len(plan.mapping.streams)
        if self.values is not None:
            self.values.begin(plan)
        n = len(plan.tiles)
        loaded = [env.event() for _ in range(n)]
        computed = [[env.event() for _ in plan.mapping.streams] for _ in range(n)]
        slots = self._slots()
        env.process(self._loader(plan, rec, slots, loaded))
        for s in range(len(plan.mapping.streams)):
            env.process(self._compute(plan, rec, s, loaded, computed))
        writes = []
        for t, tile in enumerate(plan.tiles):
            yield env.all_of(computed[t])
            yield slots.put(1)
            if tracer is not None:
                tracer.occupy(self.slots_track, env.now, -1, "slots")
            if tile.weight_release_bytes:
                yield wbuf.space.put(tile.weight_release_bytes)
                if tracer is not None:
                    tracer.occupy(f"{wbuf.path}.occupancy", env.now, -tile.weight_release_bytes, "B")
            if tile.output_bytes:
                tag = (plan.name, t, "outputs")
                writes.append(
                    env.process(
                        self.top.dma.transfer(tile.output_bytes, True, tag, address=tile.output_address)
                    )
                )
        for w in writes:
            rec.dram_write_bytes += yield w
        rec.end_ps = env.now
        if tracer is not None:
            tracer.layer(plan, rec.start_ps, rec.end_ps, producers)
        if self.values is not None:
            self.values.end(plan)
        self.done[plan.name].succeed()

    def _slots(self) -> simpy.Container:
        return simpy.Container(self.env, capacity=TILE_SLOTS, init=TILE_SLOTS)

    def _loader(self, plan: LayerPlan, rec: LayerRecord, slots, loaded):
        env, dma, tracer, wbuf = self.env, self.top.dma, self.tracer, self.top.weight_buffer
        for t, tile in enumerate(plan.tiles):
            yield slots.get(1)
            if tracer is not None:
                tracer.occupy(self.slots_track, env.now, 1, "slots")
            requests = []
            if tile.weight_load_bytes:
                yield wbuf.space.get(tile.weight_load_bytes)
                if tracer is not None:
                    tracer.occupy(f"{wbuf.path}.occupancy", env.now, tile.weight_load_bytes, "B")
                tag = (plan.name, t, "weights")
                requests.append(
                    (
                        "w",
                        env.process(
                            dma.transfer(tile.weight_load_bytes, False, tag, address=tile.weight_address)
                        ),
                    )
                )
            if tile.input_bytes:
                tag = (plan.name, t, "inputs")
                if dma.banked:  # one transaction per tensor the tile reads, at its address
                    requests += [
                        ("a", env.process(dma.transfer(n, False, tag, address=a)))
                        for a, n in tile.input_reads
                    ]
                else:
                    requests.append(("a", env.process(dma.transfer(tile.input_bytes, False, tag))))
            for what, req in requests:
                moved = yield req
                rec.dram_read_bytes += moved
                if what == "w":
                    rec.weight_load_bytes += moved
                else:
                    rec.dram_input_bytes += moved
            loaded[t].succeed()

    def _compute(self, plan: LayerPlan, rec: LayerRecord, s: int, loaded, computed):
        engine = self.top.engines[plan.mapping.streams[s].engine]
        period, tracer = self.top.period_ps, self.tracer
        for t, tile in enumerate(plan.tiles):
            yield loaded[t]
            if tile.cycles[s]:
                ready = self.env.now
                yield from engine.run_tile(plan.index, tile.cycles[s] * period, tile.ops[s])
                rec.stream_busy_ps[s] += tile.cycles[s] * period
                if tracer is not None:  # run_tile returns as the tile's closed-form time ends
                    tracer.compute(plan, s, t, ready, self.env.now - tile.cycles[s] * period, self.env.now)
            if self.values is not None:  # the tile's values, on this engine's arithmetic, as it completes
                self.values.tile(plan, s, t)
            computed[t][s].succeed()
