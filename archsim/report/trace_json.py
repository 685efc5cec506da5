"""Perfetto / Chrome trace-event JSON of a traced run (``archsim run ... --trace trace.json``).

The file is the trace-event format's JSON object form, ``{"traceEvents": [...], "otherData": {...}}``,
which ui.perfetto.dev and chrome://tracing both open. docs/traces.md says what each track, slice,
counter and flow means. The choices that make it load the same way in both viewers:

- **Processes and threads**: each module is a process (``top.mpma``, ``top.dma``, ``top.dram``, ...)
  and each of its activities a thread (``merged``, ``read``, ``ch0``, ...); pid and tid are small
  integers in a fixed order, tids unique across processes and never equal to a pid, named by ``M``
  (metadata) events with sort indices so both viewers show the same order.
- **Slices** are ``B`` / ``E`` pairs, not ``X`` events: a viewer converts each timestamp once, so a
  slice that ends when the next begins keeps the same boundary (an ``X``'s ts + dur is rounded
  twice and can overlap its successor by a nanosecond, which viewers report as mis-nesting).
  Overlapping activities of one track are put on lanes (threads ``read``, ``read (2)``, ...).
- **Flows** are version-1 flow events: ``s`` at the start of the producer's last tile, ``f`` with
  ``"bp": "e"`` (bind to the enclosing slice) at the start of the consumer's first tile, each written
  right after the ``B`` it binds to.
- **Counters** are ``C`` events of their module's process.
- **Time**: ``ts`` is in microseconds, the format's unit, written as ``ps / 10**6``: 6 decimals, so
  exactly the integer picoseconds of simulation time (a float with at most 15 significant digits,
  which Python prints exactly, for runs below 1000 s). Channel reservations (exact rationals) are
  rounded to the nearest ps. No ``displayTimeUnit`` is written: Perfetto reads ``"ns"`` there as the
  unit of ``ts`` and chrome://tracing as a display setting only.
- **Determinism**: events are ordered by time (ties in a fixed order), keys sorted, no wall time,
  host or path: identical runs give byte-identical files.
"""

from __future__ import annotations

import heapq
import json
from fractions import Fraction
from pathlib import Path

import archsim
from archsim.report import trace_layout as tl
from archsim.report.writers import write_text
from archsim.sim.trace import LAYERS_TRACK, Tracer

FLOW_NAME = "dependency"
TOP_PROCESS = "top"


def us(ps: int) -> float:
    """Integer ps -> us as a float whose shortest repr is the exact 6-decimal value."""
    if abs(ps) >= tl.MAX_EXACT_PS:
        raise ValueError(
            f"trace time {ps} ps is beyond {tl.MAX_EXACT_PS} ps: microseconds would not be exact"
        )
    return ps / 10**6


def _arg(value):
    if isinstance(value, Fraction):
        return float(value)
    return value


def _anchors(threads: list[tl.Thread]) -> tuple[dict, dict]:
    """Per layer, where its flows attach: its first and its last tile slice, each (thread index, slice).

    A layer with no compute slice (no work on any engine) attaches to its span on the layers track."""
    first: dict[str, tuple] = {}
    last: dict[str, tuple] = {}

    def visit(category: str, skip) -> None:
        for i, th in enumerate(threads):
            for s in th.slices:
                if s.category != category or s.layer in skip:
                    continue
                start, end = tl.round_ps(s.start), tl.round_ps(s.end)
                if s.layer not in first or (start, i) < first[s.layer][0]:
                    first[s.layer] = ((start, i), i, s)
                if s.layer not in last or (end, start, i) > last[s.layer][0]:
                    last[s.layer] = ((end, start, i), i, s)

    visit("compute", ())
    visit("layer", set(first))
    return ({k: v[1:] for k, v in first.items()}, {k: v[1:] for k, v in last.items()})


def _flows(tracer: Tracer, threads: list[tl.Thread]) -> dict[int, list[tuple]]:
    """slice id -> flow events (phase, flow id) to write after its B: one flow per graph edge."""
    first, last = _anchors(threads)
    out: dict[int, list[tuple]] = {}
    flow_id = 0
    for info in sorted(tracer.layers.values(), key=lambda i: i.index):
        for producer in info.producers:
            if producer not in last or info.name not in first:
                continue
            flow_id += 1
            out.setdefault(id(last[producer][1]), []).append(("s", flow_id))
            out.setdefault(id(first[info.name][1]), []).append(("f", flow_id))
    return out


def _thread_events(th: tl.Thread, pid: int, tid: int, flows: dict) -> list[tuple[int, dict]]:
    events = []
    for s in th.slices:
        start, end = tl.round_ps(s.start), tl.round_ps(s.end)
        events.append(
            (
                start,
                {
                    "ph": "B",
                    "pid": pid,
                    "tid": tid,
                    "ts": us(start),
                    "name": s.name,
                    "cat": s.category,
                    "args": {k: _arg(v) for k, v in s.args.items()},
                },
            )
        )
        for phase, fid in flows.get(id(s), ()):
            ev = {
                "ph": phase,
                "pid": pid,
                "tid": tid,
                "ts": us(start),
                "name": FLOW_NAME,
                "cat": FLOW_NAME,
                "id": fid,
            }
            if phase == "f":
                ev["bp"] = "e"
            events.append((start, ev))
        events.append(
            (end, {"ph": "E", "pid": pid, "tid": tid, "ts": us(end), "name": s.name, "cat": s.category})
        )
    return events


def _counter(pid: int, name: str, key: str, points) -> list[tuple[int, dict]]:
    """C events at each time the value changes (the last value at a time wins)."""
    out: list[tuple[int, dict]] = []
    last = None
    dedup: dict[int, float] = {}
    for t, v in points:
        dedup[t] = v
    for t in sorted(dedup):
        if dedup[t] == last:
            continue
        last = dedup[t]
        out.append((t, {"ph": "C", "pid": pid, "ts": us(t), "name": name, "args": {key: last}}))
    return out


def _binned_points(values: list[Fraction], scale: float, latency_ps: int, width_ps: int):
    starts = tl.bin_starts(latency_ps, width_ps)
    points = [(s, round(float(v) * scale, 6)) for s, v in zip(starts, values)]
    return points + [(latency_ps, 0.0)]


def trace_document(
    tracer: Tracer, metadata: dict | None = None, aggregate: bool = False
) -> tuple[dict, list[dict]]:
    """(otherData, events): the trace's header and its events in file order; ``aggregate``: one slice
    per layer and track (engine mode, DMA direction, channel) instead of one per tile."""
    processes, threads = tl.layout(tracer, tracer.slices(aggregate))
    pids = {p: i + 1 for i, p in enumerate(processes)}
    meta_events: list[dict] = []
    for p, pid in pids.items():
        meta_events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": p}})
        meta_events.append({"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}})
    flows = _flows(tracer, threads)
    streams: list[list[tuple[int, dict]]] = []
    for k, th in enumerate(threads):
        pid, tid = pids[th.process], len(pids) + 1 + k
        meta_events.append(
            {"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": th.name}}
        )
        meta_events.append(
            {"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": k + 1}}
        )
        streams.append(_thread_events(th, pid, tid, flows))

    width = tl.bin_width_ps(tracer.latency_ps)
    latency = tracer.latency_ps
    for engine in tracer.engines:
        values = tl.engine_utilisation(tracer, engine, width)
        streams.append(
            _counter(pids[engine], "utilization", "percent", _binned_points(values, 100.0, latency, width))
        )
    for track in tl.channel_tracks(tracer):
        process, activity = tl.split_track(track)
        values = tl.channel_bandwidth(tracer, track, width)  # B/ps; x 1000 = GB/s
        streams.append(
            _counter(
                pids[process], f"{activity} bandwidth", "GB/s", _binned_points(values, 1000.0, latency, width)
            )
        )
    for track, points in tracer.levels.items():
        process, activity = tl.split_track(track)
        key = {"B": "bytes"}.get(tracer.units[track], tracer.units[track])
        streams.append(_counter(pids[process], activity, key, [(0, 0)] + points))

    events = meta_events + [ev for _, ev in heapq.merge(*streams, key=lambda e: e[0])]
    other = {
        "generator": f"archsim {archsim.__version__}",
        **{k: v for k, v in sorted(tracer.meta.items())},
        "latency_ps": latency,
        "aggregate": aggregate,
        "counter_bin_ps": width,
        "time": "ts in microseconds with 6 decimals: exactly the integer picoseconds of simulation time; "
        "DRAM channel and link reservations rounded to the nearest ps",
        "tracks": "one process per module (top.<engine>, top.dma, top.dram, top.noc, buffers), one thread "
        "per activity (engine mode, DMA direction, channel, link); docs/traces.md",
        **(metadata or {}),
    }
    return other, events


def to_trace_json(tracer: Tracer, metadata: dict | None = None, aggregate: bool = False) -> str:
    """The file's text: one event per line, keys sorted (small, diffable, deterministic)."""
    other, events = trace_document(tracer, metadata, aggregate)
    lines = [json.dumps(e, sort_keys=True, separators=(",", ":")) for e in events]
    return (
        '{"otherData":'
        + json.dumps(other, sort_keys=True, separators=(",", ":"))
        + ',"traceEvents":[\n'
        + ",\n".join(lines)
        + "\n]}\n"
    )


def write_trace_json(
    tracer: Tracer, path: str | Path, metadata: dict | None = None, aggregate: bool = False
) -> Path:
    """Write the trace atomically; ``metadata`` (names and digests, nothing machine-specific) goes in
    otherData."""
    return write_text(to_trace_json(tracer, metadata, aggregate), path)


__all__ = ["LAYERS_TRACK", "to_trace_json", "trace_document", "write_trace_json", "us"]
