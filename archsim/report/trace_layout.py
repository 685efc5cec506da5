"""What the trace writers share: exact time, lanes, the order of tracks, binned counters.

A tracer (archsim.sim.trace.Tracer) holds integer-ps times and, for DRAM channel and link
reservations, exact rational ps. Writers need integers and non-overlapping slices per track:

- :func:`round_ps`: a rational time to the nearest integer ps (halves up). The same monotone
  function on every boundary keeps back-to-back reservations back to back (never overlapping).
- :func:`assign_lanes`: slices of one track that overlap in time (DMA transfers in flight together,
  concurrent layers, aggregated slices of interleaved layers) go on separate lanes, greedily: each
  to the lowest lane whose last slice has ended, in order of (start, end, record order).
- :func:`layout`: processes (modules) and their threads (activities x lanes) in a fixed order: the
  layers, the engines in spec order (modes in spec order), the DMA, the channels, the buffers.
- :func:`bin_width_ps` and the binned counters (engine utilisation, channel bandwidth): averages
  over equal bins, computed exactly with rationals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from archsim.sim.trace import LAYERS_TRACK, Slice, Tracer

COUNTER_BINS = 1000  # [choice] at most this many bins per binned counter: fine enough, small files
BIN_STEPS = (1, 2, 5)  # [choice] bin widths are 1, 2 or 5 x 10^k ps, so axis ticks stay round
MAX_EXACT_PS = 10**15  # 1000 s: below it a ps time in us has <= 15 significant digits (exact as a float)


def round_ps(t: int | Fraction) -> int:
    """Exact ps time -> integer ps (nearest, halves up); integers pass unchanged."""
    if isinstance(t, int):
        return t
    return math.floor(t + Fraction(1, 2))


def split_track(track: str) -> tuple[str, str]:
    """``top.mpma.merged`` -> (``top.mpma``, ``merged``): the module (process) and the activity (thread)."""
    process, _, thread = track.rpartition(".")
    return process, thread


def assign_lanes(slices: list[Slice]) -> list[list[Slice]]:
    """Non-overlapping lanes (in integer ps) of one track's slices; see the module docstring."""
    order = sorted(range(len(slices)), key=lambda i: (round_ps(slices[i].start), round_ps(slices[i].end), i))
    lanes: list[list[Slice]] = []
    ends: list[int] = []
    for i in order:
        s = slices[i]
        start = round_ps(s.start)
        # k is used after the loop (the first free lane, else a new one), so B007 does not apply
        for k, end in enumerate(ends):  # noqa: B007
            if end <= start:
                break
        else:
            k = len(lanes)
            lanes.append([])
            ends.append(0)
        lanes[k].append(s)
        ends[k] = round_ps(s.end)
    return lanes


@dataclass
class Thread:
    process: str
    track: str
    name: str  # activity, with " (k)" for lane k > 1
    slices: list[Slice]


def _track_rank(tracer: Tracer, kinds: dict[str, str], track: str) -> tuple:
    """Sort key of a track: layers, engines (spec order, modes in spec order), DMA, channels, rest."""
    if track == LAYERS_TRACK:
        return (0, 0, 0, track)
    process, activity = split_track(track)
    engines = list(tracer.engines)
    if process in tracer.engines:
        modes = tracer.engines[process]["modes"]
        return (1, engines.index(process), modes.index(activity) if activity in modes else len(modes), track)
    order = {"dma": 2, "channel": 3}.get(kinds.get(track), 4)
    return (order, 0, {"read": 0, "write": 1}.get(activity, 2), track)


def tracks(tracer: Tracer) -> list[str]:
    """Every track with activities or a counter, in display order; every engine has one (its first
    mode's, empty when it never ran), so an idle engine shows."""
    kinds = tracer.track_kind
    names = set(tracer.intervals) | set(tracer.levels)
    names |= {f"{engine}.{mode}" for engine, info in tracer.engines.items() for mode in info["modes"][:1]}
    return sorted(names, key=lambda t: _track_rank(tracer, kinds, t))


def layout(tracer: Tracer, slices: list[Slice]) -> tuple[list[str], list[Thread]]:
    """(processes, threads) in display order; threads carry their lane's ``slices`` sorted by time."""
    by_track: dict[str, list[Slice]] = {}
    for s in slices:
        by_track.setdefault(s.track, []).append(s)
    processes: list[str] = []
    threads: list[Thread] = []
    for track in tracks(tracer):
        process, activity = split_track(track)
        if process not in processes:
            processes.append(process)
        if track in tracer.levels:
            continue  # a counter of its process, not a thread
        lanes = assign_lanes(by_track.get(track, [])) or [[]]
        for k, lane in enumerate(lanes):
            threads.append(Thread(process, track, activity if k == 0 else f"{activity} ({k + 1})", lane))
    return processes, threads


def bin_width_ps(latency_ps: int, bins: int = COUNTER_BINS) -> int:
    """The smallest 1, 2 or 5 x 10^k ps giving at most ``bins`` bins over the latency (>= 1 ps)."""
    target = max(1, math.ceil(latency_ps / bins))
    power = 1
    while True:
        for step in BIN_STEPS:
            if step * power >= target:
                return step * power
        power *= 10


def binned(intervals, latency_ps: int, width_ps: int, weight) -> list[Fraction]:
    """Per bin [k w, (k+1) w): the sum over intervals of ``weight(interval)`` x its overlap with the bin
    / its duration (the interval's amount spread evenly over it); zero-length intervals count whole in
    the bin of their start."""
    n = len(bin_starts(latency_ps, width_ps))
    out = [Fraction(0)] * n
    for iv in intervals:
        start, end = Fraction(iv[0]), Fraction(iv[1])
        amount = Fraction(weight(iv))
        if end <= start:
            out[min(n - 1, int(start // width_ps))] += amount
            continue
        first, last = min(n - 1, int(start // width_ps)), min(n - 1, int(end // width_ps))
        for k in range(first, last + 1):
            lo, hi = max(start, Fraction(k * width_ps)), min(end, Fraction((k + 1) * width_ps))
            if hi > lo:
                out[k] += amount * (hi - lo) / (end - start)
    return out


def bin_starts(latency_ps: int, width_ps: int) -> list[int]:
    """Start (ps) of each bin; the last bin ends at the latency (it may be shorter than the others)."""
    return list(range(0, max(1, latency_ps), width_ps))


def _per_bin_time(sums: list[Fraction], latency_ps: int, width_ps: int) -> list[Fraction]:
    starts = bin_starts(latency_ps, width_ps)
    return [v / max(1, min(width_ps, latency_ps - s)) for v, s in zip(sums, starts)]


def engine_utilisation(tracer: Tracer, engine: str, width_ps: int) -> list[Fraction]:
    """Busy share (0..1) of ``engine`` per bin, over all its modes' tiles."""
    intervals = [
        iv for mode in tracer.engines[engine]["modes"] for iv in tracer.intervals.get(f"{engine}.{mode}", ())
    ]
    busy = binned(intervals, tracer.latency_ps, width_ps, lambda iv: Fraction(iv[1]) - Fraction(iv[0]))
    return _per_bin_time(busy, tracer.latency_ps, width_ps)


def channel_bandwidth(tracer: Tracer, track: str, width_ps: int) -> list[Fraction]:
    """Bytes per ps carried by a channel track per bin (each reservation's bytes spread over its time)."""
    moved = binned(tracer.intervals.get(track, ()), tracer.latency_ps, width_ps, lambda iv: iv[2])
    return _per_bin_time(moved, tracer.latency_ps, width_ps)


def channel_tracks(tracer: Tracer) -> list[str]:
    kinds = tracer.track_kind
    return [t for t in tracks(tracer) if kinds.get(t) == "channel"]
