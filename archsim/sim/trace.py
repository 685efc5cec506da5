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

**Counters**: ``occupy`` keeps a running level per track: ``top.<buffer>.<region>`` (bytes held in
each region of archsim.sim.buffers: ``weights``, ``resident``, ``staging``) and
``top.<activation buffer>.tile_slots`` (tile slots in use, all layers).

**Time** is integer picoseconds (simulation time). Channel reservations are exact rationals
(bytes / bandwidth); they are kept exact here and rounded to the nearest ps only by writers.

**Cost**: a call appends one tuple (the plan, times and byte counts it was given); slices, args
and intervals are built only when a writer asks (:meth:`Tracer.slices`, :attr:`Tracer.intervals`).
``slices(aggregate=True)`` gives one slice per (track, layer) instead of one per tile: the layer's
first to last activity on that track, with the tile count and the summed busy time in its args.

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

    def __init__(self) -> None:
        self.levels: dict[str, list[tuple[int, int]]] = {}  # counter track -> (ps, level after the change)
        self.units: dict[str, str] = {}  # counter track -> unit
        self.layers: dict[str, LayerInfo] = {}
        self.engines: dict[str, dict] = {}  # engine path -> {kind, op, modes}
        self.meta: dict = {}
        self.latency_ps = 0
        self._tiles: list[tuple] = []  # (plan, stream, tile, ready, start, end, release)
        self._transfers: list[tuple] = []  # (track, kind, start, end, bytes, write, tag)
        self._spans: list[tuple] = []  # (plan, start, end)
        self._level: dict[str, int] = {}
        self._intervals: dict | None = None

    # -- set-up and end, called by simulate() ----------------------------------------------------

    def start(self, top, graph, mappings, index) -> None:
        """Before the run: the module tree, engine kinds and each layer's mapping (plain data); ``index``:
        layer -> topological index. A layer's tile count is known once it is planned, as it starts."""
        spec = top.spec
        self.meta = {
            "arch": spec.name,
            "clock_hz": spec.clock_hz,
            "clock_period_ps": spec.clock_period_ps,
            "dram_peak_bytes_per_s": spec.dram.peak_bandwidth_bytes_per_s,
        }
        for engine in top.engines.values():
            kind = engine.spec.kind.value
            self.engines[engine.path] = {
                "kind": kind,
                "op": OP_NAMES.get(kind, "ops"),
                "modes": [m.name for m in engine.spec.modes],
            }
        for name in sorted(mappings, key=index.get):
            mapping = mappings[name]
            self.layers[name] = LayerInfo(
                name,
                graph.nodes[name]["layer"].kind.value,
                index[name],
                tuple(top.engines[s.engine].path for s in mapping.streams),
                mapping.mode_label,
                0,
            )

    def finish(self, latency_ps: int) -> None:
        """After the run: its latency (the end of the last activity)."""
        self.latency_ps = latency_ps
        self._intervals = None

    # -- called by the modules as activities end -----------------------------------------------

    def compute(
        self, plan, stream: int, tile: int, ready_ps: int, start_ps: int, end_ps: int, release_ps: int
    ) -> None:
        """A stream's tile computed on its engine over [start, end) and held it until ``release`` (waiting for
        a buffer port); it was loaded and waiting from ``ready``."""
        self._tiles.append((plan, stream, tile, ready_ps, start_ps, end_ps, release_ps))

    def dma(self, track: str, start_ps: int, end_ps: int, nbytes: int, tag) -> None:
        """A DMA transfer from request to completion; ``nbytes`` burst-rounded; tag = (layer, tile, data)."""
        self._transfers.append((track, "dma", start_ps, end_ps, nbytes, None, tag))

    def channel(self, track: str, start: Fraction, end: Fraction, nbytes: int, write: bool, tag) -> None:
        """A transfer's data on a DRAM channel or link over [start, end) (exact rational ps)."""
        self._transfers.append((track, "channel", start, end, nbytes, write, tag))

    def occupy(self, track: str, time_ps: int, delta: int, unit: str) -> None:
        """A buffer's occupancy changed by ``delta`` (``unit``: B or slots) at ``time_ps``."""
        level = self._level.get(track, 0) + delta
        self._level[track] = level
        if track not in self.levels:
            self.levels[track] = []
            self.units[track] = unit
        self.levels[track].append((time_ps, level))

    def remap(self, name: str, mapping, top) -> None:
        """A layer's engines changed before it started (a fused consumer avoids its producer's engines)."""
        info = self.layers[name]
        info.engines = tuple(top.engines[s.engine].path for s in mapping.streams)
        info.mode = mapping.mode_label

    def layer(self, plan, start_ps: int, end_ps: int, producers) -> None:
        """A layer ran from ``start`` (its producers done) to ``end`` (its last write-back done)."""
        self.layers[plan.name].producers = tuple(producers)
        self.layers[plan.name].tiles = len(plan.tiles)
        self._spans.append((plan, start_ps, end_ps))

    # -- what writers read ------------------------------------------------------------------------

    @property
    def intervals(self) -> dict[str, list[tuple[Time, Time, int, str]]]:
        """Track -> (start, end, amount, layer) of every activity (amount: ops of a tile, bytes of a
        transfer, 0 for a layer span), in the order they ended."""
        if self._intervals is None:
            out: dict[str, list] = {}
            for plan, s, t, _, start, end, _ in self._tiles:
                track = self._engine_track(plan, s)
                out.setdefault(track, []).append((start, end, plan.tiles[t].ops[s], plan.name))
            for track, _, start, end, nbytes, _, tag in self._transfers:
                out.setdefault(track, []).append((start, end, nbytes, tag[0]))
            for plan, start, end in self._spans:
                out.setdefault(LAYERS_TRACK, []).append((start, end, 0, plan.name))
            self._intervals = out
        return self._intervals

    @property
    def track_kind(self) -> dict[str, str]:
        """Track -> engine, dma, channel or layer."""
        kinds = {self._engine_track(plan, s): "engine" for plan, s, *_ in self._tiles}
        kinds.update({track: kind for track, kind, *_ in self._transfers})
        if self._spans:
            kinds[LAYERS_TRACK] = "layer"
        return kinds

    def slices(self, aggregate: bool = False) -> list[Slice]:
        """Named slices with their args: one per tile, transfer and layer, or with ``aggregate`` one per
        (track, layer) for tiles and transfers (layer spans stay one per layer)."""
        out = [self._tile_slice(*r) for r in self._tiles]
        out += [self._transfer_slice(*r) for r in self._transfers]
        if aggregate:
            out = _aggregate(out)
        for plan, start, end in self._spans:
            info = self.layers[plan.name]
            args = {
                "kind": info.kind,
                "engines": ", ".join(info.engines),
                "mode": info.mode,
                "tiles": info.tiles,
            }
            out.append(Slice(LAYERS_TRACK, "layer", plan.name, plan.name, start, end, args))
        return out

    def _engine_track(self, plan, stream: int) -> str:
        return f"{self.layers[plan.name].engines[stream]}.{plan.mapping.streams[stream].mode}"

    def _tile_slice(self, plan, s: int, t: int, ready: int, start: int, end: int, release: int) -> Slice:
        mode, tile = plan.mapping.streams[s].mode, plan.tiles[t]
        op = self.engines[self.layers[plan.name].engines[s]]["op"]
        args = {
            "layer": plan.name,
            "tile": t,
            "stream": s,
            "mode": mode,
            "cycles": tile.cycles[s],
            op: tile.ops[s],
            "busy_ps": end - start,
            "port_wait_ps": release - end,
            "wait_ps": start - ready,
            "tiles": 1,
            "positions": list(tile.positions),
            "filters": list(tile.filters[s]),
            "dram_read_bytes": tile.weight_load_bytes + tile.input_bytes,
            "dram_write_bytes": tile.output_bytes,
        }
        return Slice(self._engine_track(plan, s), "compute", f"{plan.name}[{t}]", plan.name, start, end, args)

    def _transfer_slice(self, track, kind, start, end, nbytes, write, tag) -> Slice:
        layer, tile, data = tag
        args = {
            "layer": layer,
            "tile": tile,
            "data": data,
            "bytes": nbytes,
            "busy_ps": end - start,
            "tiles": 1,
        }
        if kind == "channel":
            args["direction"] = "write" if write else "read"
        return Slice(track, "transfer", f"{layer}[{tile}] {data}", layer, start, end, args)


SUMMED = (
    "cycles",
    "macs",
    "shift_adds",
    "vector_ops",
    "ops",
    "busy_ps",
    "port_wait_ps",
    "wait_ps",
    "tiles",
    "bytes",
    "dram_read_bytes",
    "dram_write_bytes",
)


def _aggregate(slices: list[Slice]) -> list[Slice]:
    """One slice per (track, layer): first start to last end; summed counts; the layer's mode kept."""
    groups: dict[tuple[str, str], Slice] = {}
    for s in slices:
        key = (s.track, s.layer)
        agg = groups.get(key)
        if agg is None:
            args = {k: v for k, v in s.args.items() if k in SUMMED or k in ("layer", "mode")}
            groups[key] = Slice(s.track, s.category, s.layer, s.layer, s.start, s.end, args)
            continue
        agg.start, agg.end = min(agg.start, s.start), max(agg.end, s.end)
        for k in SUMMED:
            if k in s.args:
                agg.args[k] += s.args[k]
    return list(groups.values())
