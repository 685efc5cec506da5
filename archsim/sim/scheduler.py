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

import math
from dataclasses import dataclass, field

import networkx as nx
import simpy

from archsim.sim.fusion import FUSED_WINDOW_TILES, estimate, fused_pairs, tile_outputs, window_bytes
from archsim.sim.kernel import CountingEnvironment
from archsim.sim.mapping import map_layer
from archsim.sim.plan import TILES_IN_FLIGHT, WEIGHT_CHUNK_SHARE, LayerPlan, Planner, spilled_tensors
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
    fusion: str = ""  # a DW->PW pair's member: fused or not, and why (archsim.sim.fusion)
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
        # DW->PW fusion (archsim.sim.fusion): consumer -> producer; decided as the producer starts
        self.fused = fused_pairs(graph, top.spec)
        self.consumer_of = {p: c for c, p in self.fused.items()}
        self.decided = {c: env.event() for c in self.fused}
        self.window: dict[
            str, tuple[simpy.Container, list[int], str]
        ] = {}  # producer -> (bytes, shares, key)
        self.tile_done: dict[str, list] = {}  # fused producer -> an event per tile, as it retires
        self.fused_ranges: dict[str, list[tuple[int, int]]] = {}  # fused consumer -> its producer's tiles

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

    def _fuse(self, name: str, consumer: str, spilled: set[str]) -> tuple[LayerPlan | None, str]:
        """Decide a fused pair as its producer ``name`` starts: (the producer's fused plan, why) or (None,
        why). The producer is cut into as many position tiles as its window needs to fit the resident share's
        free bytes (whole output rows at most)."""
        half = self.top.regions.weights // WEIGHT_CHUNK_SHARE
        for layer in (name, consumer):
            weights = sum(s.weight_bytes for s in self.planner.mappings[layer].streams)
            if weights > half:
                return (
                    None,
                    f"unfused with {consumer}: {layer}'s {weights} B of weights exceed one {half} B chunk",
                )
        producer = self.graph.nodes[name]["layer"]
        rows = producer.out_shape[0] * producer.out_shape[2]  # whole output rows: the finest tiling
        free, at_least = self.abuf.resident_free(), 1
        while True:
            plan = self.planner.plan(name, spilled, False, fused="producer", at_least=at_least)
            ranges = [t.positions for t in plan.tiles]
            shares = tile_outputs(producer, ranges)
            window = window_bytes(shares)
            if window <= free or len(ranges) < at_least or at_least >= rows:
                break  # fits, or no finer tiling exists
            need = math.ceil(FUSED_WINDOW_TILES * producer.output_bytes / max(1, free))
            at_least = min(rows, max(len(ranges) + 1, need))
        if window > free:
            return (
                None,
                f"unfused with {consumer}: its smallest window ({FUSED_WINDOW_TILES} of {len(ranges)} tiles' "
                f"outputs, {window} B) exceeds the {free} B resident share free",
            )
        # faster? (archsim.sim.fusion.estimate; unfused, the intermediate spills if it cannot stay;
        # fused, the consumer avoids its producer's engines where the others can run it)
        spills = name in self.static_spilled if self.policy == "fit" else producer.output_bytes > free
        unfused = (
            self.planner.plan(name, spilled, spills),
            self.planner.plan(consumer, {name} if spills else set(), False),
        )
        avoid = frozenset(s.engine for s in plan.mapping.streams)
        remapped = map_layer(self.graph.nodes[consumer]["layer"], self.top.spec, avoid)
        fused = (
            plan,
            self.planner.plan(
                consumer, set(), False, fused="consumer", position_ranges=ranges, mapping=remapped
            ),
        )
        guess = estimate(unfused, fused, self.top.spec, producer.output_bytes if spills else 0)
        if not guess.fuse:
            return (
                None,
                f"unfused with {consumer}: not estimated faster (fused {guess.fused:,.0f} cy >= unfused "
                f"{guess.unfused:,.0f} cy: archsim.sim.fusion.estimate)",
            )
        key = f"{name} -> {consumer} (window)"
        self.abuf.allocate(key, window)
        self.planner.mappings[consumer] = remapped
        if self.tracer is not None:
            self.tracer.remap(consumer, remapped, self.top)
        self.window[name] = (simpy.Container(self.env, capacity=window, init=window), shares, key)
        self.tile_done[name] = [self.env.event() for _ in plan.tiles]
        self.fused_ranges[consumer] = ranges
        return plan, (
            f"fused into {consumer}: a {window} B window of {FUSED_WINDOW_TILES} of its {len(ranges)} tiles' "
            f"outputs in the resident share"
        )

    def _layer(self, name: str):
        env, tracer = self.env, self.tracer
        producers = sorted(self.graph.predecessors(name))
        fused_from = None
        if name in self.fused and (yield self.decided[name]):
            fused_from = self.fused[name]  # starts with its producer, tile by tile
        elif producers:
            yield env.all_of([self.done[p] for p in producers])
        rec = self.records[name]
        rec.start_ps = env.now
        spilled = {u for u in producers if not self.records[u].output_on_chip and u != fused_from}
        plan, consumer = None, self.consumer_of.get(name)
        if consumer is not None:
            plan, why = self._fuse(name, consumer, spilled)
            self.decided[consumer].succeed(plan is not None)
            rec.fusion = why
            self.records[consumer].fusion = (
                f"fused with its producer {name}"
                if plan is not None
                else why.replace(f"unfused with {consumer}", f"unfused with its producer {name}", 1)
            )
            if plan is not None:
                rec.placement, rec.output_on_chip = f"on_chip: a window to {consumer} (fused)", True
        if plan is None:
            to_dram, rec.placement = self._place(name)
            rec.output_on_chip = not to_dram
            role = "consumer" if fused_from else None
            ranges = self.fused_ranges.get(name) if fused_from else None
            plan = self.planner.plan(name, spilled, to_dram, fused=role, position_ranges=ranges)
        self.plans[name] = plan
        streams = plan.mapping.streams
        rec.stream_busy_ps = [0] * len(streams)
        rec.times = LayerTimes(env.now, env.now, tuple(s.engine for s in streams), [])
        if self.values is not None:
            self.values.begin(plan, frozenset({fused_from}) if fused_from else frozenset())
        n = len(plan.tiles)
        loaded = [env.event() for _ in range(n)]
        computed = [[env.event() for _ in streams] for _ in range(n)]
        slots = simpy.Container(env, capacity=TILES_IN_FLIGHT, init=TILES_IN_FLIGHT)
        env.process(self._loader(plan, rec, slots, loaded, fused_from))
        for s in range(len(streams)):
            env.process(self._compute(plan, rec, s, loaded, computed))
        writes = []
        for t, tile in enumerate(plan.tiles):
            yield env.all_of(computed[t])
            if name in self.tile_done:  # a fused producer: its consumer's tile t may start
                self.tile_done[name][t].succeed()
            last_of_rows = t + 1 == n or plan.tiles[t + 1].positions != tile.positions
            if fused_from and last_of_rows:  # the producer tile's rows are consumed: back to the window
                window, shares, _ = self.window[fused_from]
                yield window.put(shares[self._row_tile(fused_from, tile)])
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
        if fused_from:
            self.abuf.release(self.window[fused_from][2])
        if tracer is not None:
            tracer.layer(plan, rec.start_ps, rec.end_ps, producers)
        if self.values is not None:
            self.values.end(plan)
        self.done[name].succeed()

    def _row_tile(self, producer: str, tile) -> int:
        """The index of the fused producer's tile whose output rows a consumer tile reads (the same
        positions)."""
        return self.fused_ranges[self.consumer_of[producer]].index(tile.positions)

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

    def _loader(self, plan: LayerPlan, rec: LayerRecord, slots, loaded, fused_from: str | None):
        env, dma, tracer = self.env, self.top.dma, self.tracer
        n_streams = len(plan.mapping.streams)
        window = self.window.get(plan.name)
        for t, tile in enumerate(plan.tiles):
            none = [None] * n_streams
            times = TileTimes(env.now, env.now, 0, 0, 0, list(none), list(none), list(none))
            rec.times.tiles.append(times)
            if fused_from:  # the rows it reads: its producer's tile with the same positions
                yield self.tile_done[fused_from][self._row_tile(fused_from, tile)]
                times.producer = env.now
            if window is not None:  # a fused producer: room in the window for its outputs (backpressure)
                yield window[0].get(window[1][t])
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
