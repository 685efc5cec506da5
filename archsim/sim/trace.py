"""The tracer: what the simulated modules did, and when, recorded as the simulation runs.

One optional :class:`Tracer` is passed to ``simulate(graph, spec, tracer=...)``. The modules call it
as activities end (each call site is one ``if tracer is not None`` line; with no tracer nothing is
recorded and results are byte-identical, tested). It keeps plain data; writers turn it into files
(archsim.report.trace_json: Perfetto / Chrome trace-event JSON; archsim.report.vcd: VCD).

**Tracks** are named by module path plus the activity, the last component naming the activity
within its module (a writer shows the module as a process and the activity as a thread):

- ``top.<engine>.<mode>``: one engine's tiles in one mode (``top.mpma.merged``, ``top.sat.shift_add``);
- ``top.dma.read`` / ``top.dma.write``: DMA transfers, request to completion (they overlap);
- ``top.dram.ch<k>``: the data bus of DRAM channel k (``.bank<b>`` below it once banks are wired),
  ``top.noc.link<k>``: interconnect link k: the reservation of each transfer's data (never overlap);
- ``top.layers``: every layer from its start (all producers done) to its end (last write-back done).

**Counters**: ``occupy`` keeps a running level per track: ``top.<weight buffer>.occupancy`` (bytes
held by weight chunks) and ``top.<activation buffer>.tile_slots`` (tile slots in use, all layers).

**Time** is integer picoseconds (simulation time). Channel reservations are exact rationals
(bytes / bandwidth); they are kept exact here and rounded to the nearest ps only by writers.

**Aggregate mode** (``Tracer(aggregate=True)``): named slices are one per (track, layer), spanning
the layer's first to last activity on that track, with the tile count and the summed busy time in
their args, instead of one per tile. The busy intervals behind counters and VCD signals are kept per
activity in both modes (a tuple each), so counters and waveforms are the same in both.

Semantics of each record: docs/traces.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

Time = int | Fraction  # ps

LAYERS_TRACK = "top.layers"
OP_NAMES = {"mac_array": "macs", "shift_add_tree": "shift_adds", "vector": "vector_ops"}


@dataclass(slots=True)
class Slice:
    """A named activity on a track: [start, end) ps, with its args (numbers and short strings)."""

    track: str
    category: str  # compute, transfer, layer
    name: str
    layer: str
    start: Time
    end: Time
    args: dict = field(default_factory=dict)


@dataclass
class LayerInfo:
    name: str
    kind: str
    index: int  # topological index (engine priority)
    engines: tuple[str, ...]  # engine module paths, one per stream
    mode: str
    tiles: int
    producers: tuple[str, ...] = ()


class Tracer:
    """Records what the simulated modules did; see the module docstring for tracks and units."""

    def __init__(self, aggregate: bool = False) -> None:
        self.aggregate = aggregate
        self.slices: list[Slice] = []  # in the order activities ended
        # track -> (start, end, amount, layer) of every activity, in both modes
        self.intervals: dict[str, list[tuple[Time, Time, int, str]]] = {}
        self.track_kind: dict[str, str] = {}  # track -> engine, dma, channel, layer
        self.levels: dict[str, list[tuple[int, int]]] = {}  # counter track -> (ps, level after the change)
        self.units: dict[str, str] = {}  # counter track -> unit
        self.layers: dict[str, LayerInfo] = {}
        self.engines: dict[str, dict] = {}  # engine path -> {kind, op, modes}
        self.meta: dict = {}
        self.latency_ps = 0
        self._level: dict[str, int] = {}
        self._agg: dict[tuple[str, str], Slice] = {}

    # -- set-up and end, called by simulate() ----------------------------------------------------

    def start(self, top, graph, plans) -> None:
        """Before the run: the module tree, engine kinds and each layer's mapping (plain data)."""
        spec = top.spec
        self.meta = {"arch": spec.name, "clock_hz": spec.clock_hz, "clock_period_ps": spec.clock_period_ps}
        self.meta["dram_peak_bytes_per_s"] = spec.dram.peak_bandwidth_bytes_per_s
        for engine in top.engines.values():
            kind = engine.spec.kind.value
            self.engines[engine.path] = {"kind": kind, "op": OP_NAMES.get(kind, "ops"),
                                         "modes": [m.name for m in engine.spec.modes]}
        for name, plan in sorted(plans.items(), key=lambda kv: kv[1].index):
            streams = plan.mapping.streams
            self.layers[name] = LayerInfo(
                name, graph.nodes[name]["layer"].kind.value, plan.index,
                tuple(top.engines[s.engine].path for s in streams), plan.mapping.mode_label, len(plan.tiles))

    def finish(self, latency_ps: int) -> None:
        """After the run: the latency, and aggregated slices in a fixed order."""
        self.latency_ps = latency_ps
        if self.aggregate:
            self.slices.extend(self._agg.values())
            self._agg = {}

    # -- called by the modules as activities end -----------------------------------------------

    def compute(self, plan, stream: int, tile: int, ready_ps: int, start_ps: int, end_ps: int) -> None:
        """A stream's tile held its engine over [start, end); it was loaded and waiting from ``ready``."""
        s = plan.mapping.streams[stream]
        info = self.layers[plan.name]
        engine = info.engines[stream]
        track = f"{engine}.{s.mode}"
        t = plan.tiles[tile]
        self._interval(track, "engine", start_ps, end_ps, t.ops[stream], plan.name)
        args = {"layer": plan.name, "mode": s.mode, "cycles": t.cycles[stream],
                self.engines[engine]["op"]: t.ops[stream], "busy_ps": end_ps - start_ps,
                "wait_ps": start_ps - ready_ps, "tiles": 1}
        if not self.aggregate:
            args.update({"tile": tile, "stream": stream, "positions": list(t.positions),
                         "filters": list(t.filters[stream]),
                         "dram_read_bytes": t.weight_load_bytes + t.input_bytes,
                         "dram_write_bytes": t.output_bytes})
        self._slice(Slice(track, "compute", f"{plan.name}[{tile}]", plan.name, start_ps, end_ps, args))

    def dma(self, track: str, start_ps: int, end_ps: int, nbytes: int, tag) -> None:
        """A DMA transfer from its request to its completion; ``nbytes`` burst-rounded."""
        layer, tile, what = tag
        self._interval(track, "dma", start_ps, end_ps, nbytes, layer)
        args = {"layer": layer, "bytes": nbytes, "busy_ps": end_ps - start_ps, "tiles": 1}
        if not self.aggregate:
            args.update({"tile": tile, "data": what})
        self._slice(Slice(track, "transfer", f"{layer}[{tile}] {what}", layer, start_ps, end_ps, args))

    def channel(self, track: str, start: Fraction, end: Fraction, nbytes: int, write: bool, tag) -> None:
        """A transfer's data on a DRAM channel or link over [start, end) (exact rational ps)."""
        layer, tile, what = tag
        self._interval(track, "channel", start, end, nbytes, layer)
        args = {"layer": layer, "bytes": nbytes, "busy_ps": end - start, "tiles": 1}
        if not self.aggregate:
            args.update({"tile": tile, "data": what, "direction": "write" if write else "read"})
        self._slice(Slice(track, "transfer", f"{layer}[{tile}] {what}", layer, start, end, args))

    def occupy(self, track: str, time_ps: int, delta: int, unit: str) -> None:
        """A buffer's occupancy changed by ``delta`` (``unit``: B or slots) at ``time_ps``."""
        level = self._level.get(track, 0) + delta
        self._level[track] = level
        self.units[track] = unit
        self.levels.setdefault(track, []).append((time_ps, level))

    def layer(self, plan, start_ps: int, end_ps: int, producers) -> None:
        """A layer ran from ``start`` (its producers done) to ``end`` (its last write-back done)."""
        info = self.layers[plan.name]
        info.producers = tuple(producers)
        self._interval(LAYERS_TRACK, "layer", start_ps, end_ps, 0, plan.name)
        args = {"kind": info.kind, "engines": ", ".join(info.engines), "mode": info.mode, "tiles": info.tiles}
        self.slices.append(Slice(LAYERS_TRACK, "layer", plan.name, plan.name, start_ps, end_ps, args))

    # -- internals --------------------------------------------------------------------------------

    def _interval(self, track: str, kind: str, start: Time, end: Time, amount: int, layer: str) -> None:
        if track not in self.intervals:
            self.intervals[track] = []
            self.track_kind[track] = kind
        self.intervals[track].append((start, end, amount, layer))

    def _slice(self, s: Slice) -> None:
        if not self.aggregate:
            self.slices.append(s)
            return
        key = (s.track, s.layer)
        agg = self._agg.get(key)
        if agg is None:
            s.name = s.layer
            self._agg[key] = s
            return
        agg.start, agg.end = min(agg.start, s.start), max(agg.end, s.end)
        for k, v in s.args.items():
            if k not in ("layer", "mode"):
                agg.args[k] += v
