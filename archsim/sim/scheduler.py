"""Layer scheduling: one SimPy process per layer, dataflow-ordered, tiles double-buffered, buffers live.

A layer starts when all its predecessors have finished. It then decides where its output goes
(:meth:`Scheduler._place`, by ``memory.residency``: ``live`` reserves it in the activation buffer's resident
region if it fits now, else spills it to DRAM and says why; ``fit`` and ``layer_by_layer`` follow the static
rule of archsim.sim.plan) and is planned against the places of its inputs (archsim.sim.plan.Planner).

Per tile: a loader takes one of two tile slots (double buffering), at the first tile of a filter chunk the
chunk's weight-region bytes, then the tile's staging bytes (its DRAM-streamed inputs and the outputs it will
write back), and DMAs the weights chunk and the tile's DRAM inputs in; each stream's compute process waits for
the tile, then holds its engine for the tile's closed-form time, or longer while the buffer ports it uses are
busy (streams of a split layer run concurrently on their engines); with values on it computes the tile's
outputs on that engine's arithmetic (archsim.sim.values). When every stream has finished the tile it retires:
the slot, the input staging bytes and (after the chunk's last tile) the chunk's weight bytes are freed, and
the write-back starts; its staging bytes are freed when it completes. A resident tensor is freed when its last
reader finishes. Every step is timestamped (archsim.sim.stalls) so stalls can be attributed to their causes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import simpy

from archsim.sim.kernel import CountingEnvironment
from archsim.sim.plan import TILES_IN_FLIGHT, LayerPlan, Planner, spilled_tensors
from archsim.sim.stalls import LayerTimes, TileTimes
from archsim.sim.top import Top
from archsim.sim.values import TileValues


@dataclass
class LayerRecord:
    start_ps: int = 0
    end_ps: int = 0
    dram_read_bytes: int = 0  # burst-rounded
    dram_write_bytes: int = 0
    weight_load_bytes: int = 0  # burst-rounded bytes written into the weight buffer
    dram_input_bytes: int = 0  # burst-rounded activation bytes read in
    stream_busy_ps: list[int] = field(default_factory=list)
    output_on_chip: bool = False  # its output stayed in the activation buffer
    placement: str = ""  # why its output went where it did
    times: LayerTimes | None = None


class Scheduler:
    def __init__(
        self,
        env: CountingEnvironment,
        top: Top,
        graph: nx.DiGraph,
        planner: Planner,
        values: TileValues | None = None,
    ) -> None:
        self.env, self.top, self.graph, self.planner = env, top, graph, planner
        self.values = values  # functional compute per tile (archsim.sim.values), or None for timing only
        self.policy = top.spec.memory.residency
        self.static_spilled = spilled_tensors(graph, top.spec) if self.policy != "live" else set()
        self.plans: dict[str, LayerPlan] = {}  # each layer's plan, made as it starts
        names = sorted(planner.index, key=planner.index.get)
        self.done = {name: env.event() for name in names}
        self.records = {name: LayerRecord() for name in names}
        self.readers_left = {name: graph.out_degree(name) for name in names}
        self.tracer = top.tracer  # archsim.sim.trace.Tracer, or None: one `if` per traced activity
        self.abuf, self.wbuf = top.act_buffer, top.weight_buffer
        self.slots_track = f"{self.abuf.path}.tile_slots"

    def start(self) -> None:
        for name in self.done:
            self.env.process(self._layer(name))

    # -- where a layer's output goes -------------------------------------------------------------------

    def _place(self, name: str) -> tuple[bool, str]:
        """(output to DRAM, why), decided as the layer starts; an on-chip output is reserved now."""
        nbytes = self.graph.nodes[name]["layer"].output_bytes
        if name in self.planner.outputs:
            return True, "graph output: written to DRAM"
        if self.policy == "layer_by_layer":
            return True, "memory.residency layer_by_layer: every output goes to DRAM"
        share = self.abuf.capacity["resident"]
        if self.policy == "fit":
            if name in self.static_spilled:
                return True, (
                    f"fit rule: its or a consumer's working set (inputs + output) exceeds the {share} B "
                    f"resident share of {self.abuf.spec.name}"
                )
            self.abuf.place(name, nbytes)
            return False, "fit rule: it and its consumers' working sets fit the resident share"
        free = self.abuf.resident_free()
        if self.abuf.allocate(name, nbytes):
            return False, f"resident: {nbytes} B reserved, {free} B of the {share} B resident share were free"
        if nbytes > share:
            return True, f"spilled: {nbytes} B exceed the {share} B resident share of {self.abuf.spec.name}"
        held = ", ".join(f"{t} {n} B" for t, n in self.abuf.holders())
        return True, (
            f"spilled: {nbytes} B needed, {free} B of the {share} B resident share of {self.abuf.spec.name} "
            f"free (largest held: {held})"
        )

    # -- one layer ---------------------------------------------------------------------------------------

    def _layer(self, name: str):
        env, tracer = self.env, self.tracer
        producers = sorted(self.graph.predecessors(name))
        if producers:
            yield env.all_of([self.done[p] for p in producers])
        rec = self.records[name]
        rec.start_ps = env.now
        to_dram, rec.placement = self._place(name)
        rec.output_on_chip = not to_dram
        spilled = {u for u in producers if not self.records[u].output_on_chip}
        plan = self.plans[name] = self.planner.plan(name, spilled, to_dram)
        streams = plan.mapping.streams
        rec.stream_busy_ps = [0] * len(streams)
        rec.times = LayerTimes(env.now, env.now, tuple(s.engine for s in streams), [])
        if self.values is not None:
            self.values.begin(plan)
        n = len(plan.tiles)
        loaded = [env.event() for _ in range(n)]
        computed = [[env.event() for _ in streams] for _ in range(n)]
        slots = simpy.Container(env, capacity=TILES_IN_FLIGHT, init=TILES_IN_FLIGHT)
        env.process(self._loader(plan, rec, slots, loaded))
        for s in range(len(streams)):
            env.process(self._compute(plan, rec, s, loaded, computed))
        writes = []
        for t, tile in enumerate(plan.tiles):
            yield env.all_of(computed[t])
            yield slots.put(1)
            if tracer is not None:
                tracer.occupy(self.slots_track, env.now, -1, "slots")
            if tile.weight_release_bytes:
                yield self.wbuf.weights.put(tile.weight_release_bytes)
                self.wbuf.gave("weights", tile.weight_release_bytes)
            if tile.input_bytes:
                yield self.abuf.staging.put(tile.input_bytes)
                self.abuf.gave("staging", tile.input_bytes)
            if tile.output_bytes:
                writes.append(env.process(self._write_back(plan, t)))
        for w in writes:
            rec.dram_write_bytes += yield w
        rec.end_ps = rec.times.end = env.now
        for u in producers:  # its inputs: a resident tensor is freed after its last reader
            self.readers_left[u] -= 1
            if self.readers_left[u] == 0 and u in self.abuf.held:
                self.abuf.release(u)
        if tracer is not None:
            tracer.layer(plan, rec.start_ps, rec.end_ps, producers)
        if self.values is not None:
            self.values.end(plan)
        self.done[name].succeed()

    def _write_back(self, plan: LayerPlan, t: int):
        tile = plan.tiles[t]
        moved = yield self.env.process(
            self.top.dma.transfer(
                tile.output_bytes, True, (plan.name, t, "outputs"), address=tile.output_address
            )
        )
        yield self.abuf.staging.put(tile.output_bytes)
        self.abuf.gave("staging", tile.output_bytes)
        return moved

    def _loader(self, plan: LayerPlan, rec: LayerRecord, slots, loaded):
        env, dma, tracer = self.env, self.top.dma, self.tracer
        n_streams = len(plan.mapping.streams)
        for t, tile in enumerate(plan.tiles):
            times = TileTimes(
                env.now, env.now, 0, 0, 0, [None] * n_streams, [None] * n_streams, [None] * n_streams
            )
            rec.times.tiles.append(times)
            yield slots.get(1)
            if tracer is not None:
                tracer.occupy(self.slots_track, env.now, 1, "slots")
            if tile.weight_load_bytes:
                yield self.wbuf.weights.get(tile.weight_load_bytes)
                self.wbuf.took("weights", tile.weight_load_bytes)
            staged = tile.input_bytes + tile.output_bytes
            if staged:  # last: every holder of staging bytes holds all else it needs (no deadlock)
                yield self.abuf.staging.get(staged)
                self.abuf.took("staging", staged)
            times.space = env.now
            requests, legs = [], []
            if tile.weight_load_bytes:
                tag = (plan.name, t, "weights")
                transfer = dma.transfer(
                    tile.weight_load_bytes, False, tag, address=tile.weight_address, legs=legs
                )
                requests.append(("w", env.process(transfer)))
            if tile.input_bytes:
                tag = (plan.name, t, "inputs")
                if dma.banked:  # one transaction per tensor the tile reads, at its address
                    requests += [
                        ("a", env.process(dma.transfer(n, False, tag, address=a, legs=legs)))
                        for a, n in tile.input_reads
                    ]
                else:
                    requests.append(("a", env.process(dma.transfer(tile.input_bytes, False, tag, legs=legs))))
            for what, req in requests:
                moved = yield req
                rec.dram_read_bytes += moved
                if what == "w":
                    rec.weight_load_bytes += moved
                else:
                    rec.dram_input_bytes += moved
            times.loaded = env.now
            times.dram = min(max(legs, default=times.space), times.loaded)
            loaded[t].succeed()

    def _compute(self, plan: LayerPlan, rec: LayerRecord, s: int, loaded, computed):
        engine = self.top.engines[plan.mapping.streams[s].engine]
        period, tracer = self.top.period_ps, self.tracer
        buffers = self.top.buffers
        for t, tile in enumerate(plan.tiles):
            yield loaded[t]
            if tile.cycles[s]:
                ready = self.env.now
                port = [(buffers[b], r + w) for b, r, w in tile.port[s]] if tile.port else ()
                grant, compute_end, release = yield from engine.run_tile(
                    plan.index, tile.cycles[s] * period, tile.ops[s], port
                )
                times = rec.times.tiles[t]
                times.grant[s], times.compute_end[s], times.release[s] = grant, compute_end, release
                rec.stream_busy_ps[s] += tile.cycles[s] * period
                if tracer is not None:
                    tracer.compute(plan, s, t, ready, grant, compute_end, release)
            if self.values is not None:  # the tile's values, on this engine's arithmetic, as it completes
                self.values.tile(plan, s, t)
            computed[t][s].succeed()
