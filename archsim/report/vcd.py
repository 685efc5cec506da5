"""VCD (value change dump) of a traced run for waveform viewers (``archsim run ... --vcd run.vcd``).

Written and read with pyvcd (the maintained VCD library for Python: writer with value and
timestamp checks, a tokenizer for reading; no dependencies). Timescale 1 ps: every change is at the
integer picosecond of simulation time where it happened (DRAM and link reservations, exact
rationals, rounded to the nearest ps). Scopes follow the module tree (``top.mpma``, ``top.dma``, ...):

- ``top.<engine>.busy`` (wire): 1 while the engine runs a tile (any mode); ``.layer`` (string, as
  GTKWave shows them): the layer of that tile, empty when idle;
- ``top.dma.read_active`` / ``write_active`` (wire): at least one transfer in flight;
  ``reads_in_flight`` / ``writes_in_flight`` (integer): how many;
- ``top.dram.ch<k>.busy``, ``top.noc.link<k>.busy`` (wire): the channel carries a reservation's data;
- ``top.<buffer>.<region>`` (integer, bytes: ``weights``, ``resident``, ``staging``) and
  ``top.<activation buffer>.tile_slots`` (integer, slots in use): the buffer counters.

The header's ``$date`` is fixed text, never the wall time, so identical runs give identical files.
"""

from __future__ import annotations

import io
from pathlib import Path

from vcd import VCDWriter
from vcd.reader import TokenKind, tokenize

import archsim
from archsim.report import trace_layout as tl
from archsim.report.writers import write_text
from archsim.sim.trace import Tracer

DATE = "not recorded (archsim writes no wall time into its outputs)"
TIMESCALE = "1 ps"


def _level_changes(intervals) -> list[tuple[int, int]]:
    """(ps, how many intervals are open just after it) at each time the count changes."""
    deltas: dict[int, int] = {}
    for iv in intervals:
        start, end = tl.round_ps(iv[0]), tl.round_ps(iv[1])
        if end > start:
            deltas[start] = deltas.get(start, 0) + 1
            deltas[end] = deltas.get(end, 0) - 1
    out, level = [], 0
    for t in sorted(deltas):
        if deltas[t]:
            level += deltas[t]
            out.append((t, level))
    return out


def _label_changes(intervals) -> list[tuple[int, str]]:
    """(ps, layer) for a track whose intervals never overlap: the layer at each start, '' at each end
    not followed at once by another start."""
    points: dict[int, str] = {}
    for iv in sorted(intervals, key=lambda iv: (tl.round_ps(iv[0]), tl.round_ps(iv[1]))):
        start, end = tl.round_ps(iv[0]), tl.round_ps(iv[1])
        if end > start:
            points[start] = iv[3]
            points.setdefault(end, "")
    return sorted(points.items())


def vcd_signals(tracer: Tracer) -> dict[str, tuple[str, int, list]]:
    """Signal name -> (var type, size in bits, [(ps, value), ...] in time order), in display order."""
    out: dict[str, tuple[str, int, list]] = {}
    for engine, info in tracer.engines.items():
        intervals = [iv for mode in info["modes"] for iv in tracer.intervals.get(f"{engine}.{mode}", ())]
        out[f"{engine}.busy"] = ("wire", 1, [(t, int(n > 0)) for t, n in _level_changes(intervals)])
        out[f"{engine}.layer"] = ("string", 1, _label_changes(intervals))
    kinds = tracer.track_kind
    for track in tl.tracks(tracer):
        kind = kinds.get(track)
        changes = _level_changes(tracer.intervals.get(track, ()))
        process, activity = tl.split_track(track)
        if kind == "dma":
            out[f"{process}.{activity}_active"] = ("wire", 1, [(t, int(n > 0)) for t, n in changes])
            size = max([n for _, n in changes], default=0).bit_length() or 1
            out[f"{process}.{activity}s_in_flight"] = ("integer", size, changes)
        elif kind == "channel":
            out[f"{track}.busy"] = ("wire", 1, [(t, int(n > 0)) for t, n in changes])
    for track, points in tracer.levels.items():
        size = max([v for _, v in points], default=0).bit_length() or 1
        out[track] = ("integer", size, list(points))
    return out


def to_vcd(tracer: Tracer, comment: str = "") -> str:
    """The VCD text (pyvcd's writer)."""
    signals = vcd_signals(tracer)
    buf = io.StringIO()
    with VCDWriter(
        buf, timescale=TIMESCALE, date=DATE, version=f"archsim {archsim.__version__}", comment=comment
    ) as writer:
        variables = {}
        for name, (var_type, size, _) in signals.items():
            scope, _, var = name.rpartition(".")
            variables[name] = writer.register_var(
                scope, var, var_type, size=size, init="" if var_type == "string" else 0
            )
        changes = sorted(
            (t, order, name, value)
            for order, (name, (_, _, points)) in enumerate(signals.items())
            for t, value in points
        )
        for t, _, name, value in changes:
            writer.change(variables[name], t, value)
        writer.close(tracer.latency_ps)
    return buf.getvalue()


def write_vcd(tracer: Tracer, path: str | Path, comment: str = "") -> Path:
    """Write the VCD atomically; ``comment`` (names, no paths) goes in its header."""
    return write_text(to_vcd(tracer, comment), path)


def read_vcd(path: str | Path) -> dict[str, list[tuple[int, int | str]]]:
    """Signal name (``top.mpma.busy``) -> [(ps, value), ...], read back with pyvcd's tokenizer.

    Wires and integers come back as ints, strings as str; the initial values (``$dumpvars``) at time 0.
    A timescale other than 1 ps is refused (the times would not be picoseconds).
    """
    names: dict[str, str] = {}
    scope: list[str] = []
    changes: dict[str, list] = {}
    now = 0
    with open(path, "rb") as f:
        for token in tokenize(f):
            kind = token.kind
            if kind is TokenKind.TIMESCALE:
                ts = token.timescale
                magnitude = int(getattr(ts.magnitude, "value", ts.magnitude))  # an enum before pyvcd 0.5
                if (magnitude, ts.unit.value) != (1, "ps"):
                    raise ValueError(f"{path}: timescale {magnitude} {ts.unit.value}, expected 1 ps")
            elif kind is TokenKind.SCOPE:
                scope.append(token.scope.ident)
            elif kind is TokenKind.UPSCOPE:
                scope.pop()
            elif kind is TokenKind.VAR:
                name = ".".join([*scope, token.var.reference])
                names[token.var.id_code] = name
                changes[name] = []
            elif kind is TokenKind.CHANGE_TIME:
                now = token.time_change
            elif kind is TokenKind.CHANGE_SCALAR:
                changes[names[token.scalar_change.id_code]].append((now, int(token.scalar_change.value)))
            elif kind is TokenKind.CHANGE_VECTOR:
                changes[names[token.vector_change.id_code]].append((now, token.vector_change.value))
            elif kind is TokenKind.CHANGE_STRING:
                changes[names[token.string_change.id_code]].append((now, token.string_change.value))
    return changes


def high_intervals(changes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, end) ps where a wire was 1, from its changes (consecutive 1s merged)."""
    out, start = [], None
    for t, v in changes:
        if v and start is None:
            start = t
        elif not v and start is not None:
            if t > start:
                out.append((start, t))
            start = None
    return out
