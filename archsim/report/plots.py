"""Figures of simulation results: Gantt chart, utilisation, energy, roofline, layer comparison.

Input is the result dictionary that ``archsim run ... --out r.json`` writes (``SimResult.to_dict()``,
plus an optional ``"baseline"`` entry holding a second result). Every figure is drawn from the
fields of that dictionary alone; docs/plots.md explains each one, its units and how to read it.

matplotlib is imported lazily, inside the functions that draw, so ``import archsim.report`` (and
this module) never pulls it in. Figures are ``matplotlib.figure.Figure`` objects on the Agg canvas,
never pyplot's global state, so nothing here opens a window or changes a caller's backend.

Determinism: the style (fonts, sizes, colours) is fixed in :data:`STYLE` and applied through
``matplotlib.rc_context``; SVG ids are hashed with a fixed salt (``svg.hashsalt``) and the SVG/PDF
date metadata are removed, so identical results give byte-identical files with the same matplotlib.

Per-layer engine busy time: a layer record may carry ``engine_busy_cycles`` (engine name -> that
layer's busy cycles on that engine). Where it is absent, a layer is taken to occupy each of its
engines for its whole ``[start_cycle, end_cycle)`` interval.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    ValidationError,
)

from archsim.graph.ir import MAC_KINDS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")
PNG_DPI = 300
MIN_FONT_PT = 9

# Fixed font (matplotlib ships DejaVu Sans, so no system font changes the output) and sizes >= 9 pt.
# svg.fonttype "none" keeps text as <text> elements: searchable and editable in a paper's figure.
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "archsim",
    "pdf.fonttype": 42,
    "path.simplify": False,
}

# Okabe-Ito colours (readable by colour-blind readers). The bundled architectures' engines have fixed
# colours; any other engine takes the next spare colour in alphabetical order of such names.
ENGINE_COLOURS = {
    "mpma": "#0072b2",
    "sat": "#d55e00",
    "vector": "#009e73",
    "mat": "#56b4e9",
    "rpe": "#e69f00",
}
SPARE_COLOURS = (
    "#cc79a7",
    "#332288",
    "#999933",
    "#882255",
    "#44aa99",
    "#aa4499",
    "#117733",
    "#ddcc77",
    "#000000",
    "#88ccee",
)
RESULT_COLOURS = ("#333333", "#aaaaaa")  # the two results of a comparison (not engine colours)

# Op kinds computed as multiply-accumulates; every other kind runs on a vector unit, and its result
# record carries macs == 0.
MAC_KIND_NAMES = frozenset(k.value for k in MAC_KINDS)


class ResultFileError(ValueError):
    """A file or dictionary that is not an archsim simulation result; the message names it and the problem."""


# -- the part of a result the plots read ----------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class LayerView(_Model):
    name: str
    kind: str
    engines: list[str] = Field(min_length=1)
    start_cycle: NonNegativeInt
    end_cycle: NonNegativeInt
    macs: NonNegativeInt
    elements: NonNegativeInt
    dram_read_bytes: NonNegativeInt
    dram_write_bytes: NonNegativeInt
    energy_j: NonNegativeFloat
    engine_busy_cycles: dict[str, NonNegativeInt] | None = None

    @property
    def cycles(self) -> int:
        return self.end_cycle - self.start_cycle

    def busy_cycles(self) -> dict[str, int]:
        """Busy cycles per engine: ``engine_busy_cycles`` if recorded, else the whole interval on each."""
        if self.engine_busy_cycles is None:
            return {e: self.cycles for e in self.engines}
        out = {e: self.engine_busy_cycles.get(e, 0) for e in self.engines}
        out.update({e: c for e, c in sorted(self.engine_busy_cycles.items()) if e not in out})
        return out


class EngineView(_Model):
    busy_cycles: NonNegativeInt
    utilization: NonNegativeFloat
    peak_ops_per_cycle: NonNegativeInt


class DramView(_Model):
    peak_bandwidth_Bps: PositiveFloat


class ResultView(_Model):
    workload: dict[str, Any]
    arch: dict[str, Any]
    clock_hz: PositiveFloat
    latency_cycles: NonNegativeInt
    latency_s: NonNegativeFloat
    energy_j: NonNegativeFloat
    energy_breakdown_j: dict[str, float]
    engines: dict[str, EngineView]
    layers: list[LayerView] = Field(min_length=1)
    dram: DramView

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def engine_names(self) -> list[str]:
        """Engines in the result's order, then any engine named only by a layer (alphabetically)."""
        names = list(self.engines)
        extra = {e for layer in self.layers for e in layer.busy_cycles()} - set(names)
        return names + sorted(extra)

    @property
    def label(self) -> str:
        return f"{self.arch.get('name', '?')} ({self.workload.get('policy', 'no policy')})"

    def title(self, what: str) -> str:
        wl = self.workload
        name = wl.get("name", wl.get("model", "?"))
        res = f" {wl['resolution']} px" if wl.get("resolution") else ""
        return f"{what}: {name}{res} on {self.arch.get('name', '?')}, policy {wl.get('policy', 'n/a')}"


_KEY_FIELDS = ("layers", "engines", "latency_cycles", "clock_hz")
_MAX_PROBLEMS = 5


def parse_result(data: Any, source: str) -> ResultView:
    """Validate ``data`` as a simulation result; ``source`` (a file name) starts every error message."""
    if not isinstance(data, dict):
        raise ResultFileError(
            f"{source}: expected a JSON object (the result of `archsim run --out`), "
            f"found {type(data).__name__}"
        )
    if not any(k in data for k in _KEY_FIELDS):
        raise ResultFileError(
            f"{source}: not an archsim simulation result (none of {', '.join(_KEY_FIELDS)}; "
            "expected the JSON written by `archsim run --out`)"
        )
    try:
        view = ResultView.model_validate(data)
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        more = f"; and {len(problems) - _MAX_PROBLEMS} more" if len(problems) > _MAX_PROBLEMS else ""
        raise ResultFileError(
            f"{source}: not a valid archsim simulation result: " + "; ".join(problems[:_MAX_PROBLEMS]) + more
        ) from None
    for i, layer in enumerate(view.layers):
        if layer.end_cycle < layer.start_cycle:
            raise ResultFileError(
                f"{source}: layers.{i} ({layer.name}): end_cycle {layer.end_cycle} "
                f"is before start_cycle {layer.start_cycle}"
            )
    return view


def load_result(path: str | Path) -> dict:
    """Read an ``archsim run --out`` JSON file, check it (and its baseline) and return the dictionary."""
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    if path.is_dir():
        raise ResultFileError(f"{path}: is a directory, not a result file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ResultFileError(
            f"{path}: not a text file (expected the JSON written by `archsim run --out`)"
        ) from None
    except json.JSONDecodeError as e:
        raise ResultFileError(
            f"{path}: not JSON ({e.msg} at line {e.lineno} column {e.colno}); "
            "expected the JSON written by `archsim run --out`"
        ) from None
    parse_result(data, str(path))
    if "baseline" in data:
        parse_result(data["baseline"], f"{path}: baseline")
    return data


def expand_results(results: Sequence[dict], sources: Sequence[str] | None = None) -> list[ResultView]:
    """Checked views of ``results``; a result holding a ``"baseline"`` counts as two (itself, then it)."""
    sources = list(sources) if sources is not None else [f"results[{i}]" for i in range(len(results))]
    if len(sources) != len(results):
        raise ValueError("expand_results: one source name per result")
    views = []
    for data, source in zip(results, sources):
        views.append(parse_result(data, source))
        if isinstance(data, dict) and "baseline" in data:
            views.append(parse_result(data["baseline"], f"{source}: baseline"))
    return views


def _view(result: dict | ResultView) -> ResultView:
    return result if isinstance(result, ResultView) else parse_result(result, "result")


# -- units and colours -----------------------------------------------------------------------------

_PREFIXES = (
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "µ"),
    (1e-9, "n"),
    (1e-12, "p"),
)


def si_prefix(value: float) -> tuple[float, str]:
    """The engineering prefix that puts ``value`` in [1, 1000): 1.9e-3 -> (1e-3, 'm')."""
    value = abs(value)
    for scale, prefix in _PREFIXES:
        if value >= scale:
            return scale, prefix
    return _PREFIXES[-1]


def format_si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` with its own engineering prefix and ``digits`` significant digits: 1.29e-4 s -> '129 µs'."""
    if value == 0:
        return f"0 {unit}"
    scale, prefix = si_prefix(value)
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def engine_colours(views: Iterable[ResultView]) -> dict[str, str]:
    """One colour per engine name, the same in every figure drawn from these results."""
    names = sorted({e for v in views for e in v.engine_names()})
    colours = {n: ENGINE_COLOURS[n] for n in names if n in ENGINE_COLOURS}
    others = [n for n in names if n not in ENGINE_COLOURS]
    colours.update({n: SPARE_COLOURS[i % len(SPARE_COLOURS)] for i, n in enumerate(others)})
    return colours


# -- the numbers behind the figures (no matplotlib) -------------------------------------------------


@dataclass(frozen=True)
class GanttBar:
    layer: str
    engine: str
    start_cycle: int
    end_cycle: int
    busy_cycles: int  # the layer's busy cycles on this engine (the whole interval when not recorded)
    lane: int  # sub-row of the engine's row, so layers overlapping in time on one engine stay visible


def gantt_bars(result: dict | ResultView) -> list[GanttBar]:
    """One bar per (layer, engine) the layer occupies; a split layer has a bar on each of its engines.

    Layers that overlap in time on one engine go on separate lanes (greedy, in start order). Starts are
    floored and ends ceiled to whole cycles, so a layer that starts in the cycle its predecessor ends
    shares the lane (a 1-cycle overlap is rounding, not concurrency).
    """
    view = _view(result)
    per_engine: dict[str, list[tuple[int, int, int, int, str]]] = {}
    for index, layer in enumerate(view.layers):
        for engine, busy in layer.busy_cycles().items():
            per_engine.setdefault(engine, []).append(
                (layer.start_cycle, layer.end_cycle, index, busy, layer.name)
            )
    bars = []
    for engine in view.engine_names():
        lane_free: list[int] = []  # cycle at which each lane's last bar ends
        for start, end, _, busy, name in sorted(per_engine.get(engine, [])):
            lane = next((i for i, free in enumerate(lane_free) if free <= start + 1), len(lane_free))
            if lane == len(lane_free):
                lane_free.append(end)
            lane_free[lane] = end
            bars.append(GanttBar(name, engine, start, end, busy, lane))
    return bars


def _overlap(starts, ends, edges):
    """(intervals x bins) overlap lengths of [start, end) intervals with the bins between ``edges``."""
    lo, hi = edges[:-1][None, :], edges[1:][None, :]
    s, e = np.asarray(starts, float)[:, None], np.asarray(ends, float)[:, None]
    return np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0.0, None)


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def utilisation_bins(result: dict | ResultView, bins: int = 100):
    """Per-engine busy fraction of each of ``bins`` equal time bins over the run.

    Returns ``(edges_cycles, {engine: fractions})``, fractions in [0, 1]. A layer with
    ``engine_busy_cycles`` spreads its busy cycles evenly over its interval (the result records no
    finer timing); a layer without it makes the engine busy over its whole interval, and overlapping
    such layers count once (the union of their intervals). The even spread can stack two overlapping
    layers above 1 locally; that is capped at 1 (the engine runs one tile at a time).
    """
    if bins < 1:
        raise ValueError(f"utilisation_bins: bins must be >= 1, got {bins}")
    view = _view(result)
    total = max(view.latency_cycles, max(layer.end_cycle for layer in view.layers), 1)
    edges = np.linspace(0.0, float(total), bins + 1)
    width = edges[1] - edges[0]
    out = {}
    for engine in view.engine_names():
        whole, spread = [], []
        for layer in view.layers:
            busy = layer.busy_cycles()
            if engine not in busy or layer.cycles == 0:
                continue
            if layer.engine_busy_cycles is None:
                whole.append((layer.start_cycle, layer.end_cycle))
            else:
                spread.append((layer.start_cycle, layer.end_cycle, busy[engine] / layer.cycles))
        frac = np.zeros(bins)
        merged = _union(whole)
        if merged:
            frac += _overlap([s for s, _ in merged], [e for _, e in merged], edges).sum(axis=0) / width
        if spread:
            density = np.array([d for _, _, d in spread])[:, None]
            frac += (density * _overlap([s for s, _, _ in spread], [e for _, e, _ in spread], edges)).sum(
                axis=0
            ) / width
        out[engine] = np.minimum(frac, 1.0)
    return edges, out


STATIC_LABEL = "not per layer (static)"


def energy_by_component(result: dict | ResultView) -> list[tuple[str, float]]:
    """``energy_breakdown_j`` as (component, J), largest first (ties by name)."""
    view = _view(result)
    return sorted(view.energy_breakdown_j.items(), key=lambda kv: (-kv[1], kv[0]))


def energy_by_kind(result: dict | ResultView) -> list[tuple[str, float]]:
    """Σ layer energy by op kind (J), largest first, then the energy no layer carries (static) if any."""
    view = _view(result)
    kinds: dict[str, float] = {}
    for layer in view.layers:
        kinds[layer.kind] = kinds.get(layer.kind, 0.0) + layer.energy_j
    out = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    rest = view.energy_j - sum(kinds.values())
    if rest > 1e-9 * view.energy_j:
        out.append((STATIC_LABEL, rest))
    return out


@dataclass(frozen=True)
class RooflinePoint:
    layer: str
    kind: str
    engines: tuple[str, ...]
    ops: int  # MACs (MAC arrays), shift-adds (SAT), or output elements for vector layers
    vector: bool  # ops are output elements, not MACs
    dram_bytes: int
    seconds: float

    @property
    def intensity(self) -> float:
        """Ops per DRAM byte; ``math.inf`` for a layer that moves no DRAM bytes."""
        return self.ops / self.dram_bytes if self.dram_bytes else math.inf

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds


def roofline_points(result: dict | ResultView) -> tuple[list[RooflinePoint], list[str]]:
    """Per-layer roofline points, and the names of layers left out (no ops or no duration).

    A MAC layer's ops are its ``macs`` (shift-adds on the SAT; a split layer's are both engines'
    together). A vector layer has ``macs == 0``; its ops are taken as its output ``elements``, one per
    element, which is at most the vector ops it runs (add, div: 1; norm: 5; pool: per input element),
    so its point is a lower bound of its vector throughput.
    """
    view = _view(result)
    points, skipped = [], []
    for layer in view.layers:
        vector = layer.kind not in MAC_KIND_NAMES
        ops = layer.elements if vector else layer.macs
        if ops == 0 or layer.cycles == 0:
            skipped.append(layer.name)
            continue
        points.append(
            RooflinePoint(
                layer.name,
                layer.kind,
                tuple(layer.engines),
                ops,
                vector,
                layer.dram_read_bytes + layer.dram_write_bytes,
                view.seconds(layer.cycles),
            )
        )
    return points, skipped


def engine_peaks_ops_per_s(result: dict | ResultView) -> dict[str, float]:
    """Each engine's peak: ``peak_ops_per_cycle`` (its fastest used mode) x ``clock_hz``."""
    view = _view(result)
    return {
        name: e.peak_ops_per_cycle * view.clock_hz for name, e in view.engines.items() if e.peak_ops_per_cycle
    }


@dataclass(frozen=True)
class LayerPair:
    name: str
    seconds_a: float | None  # None: the layer is not in result A
    seconds_b: float | None


def match_layers(a: dict | ResultView, b: dict | ResultView) -> list[LayerPair]:
    """Layers matched by name, in A's order then B-only layers in B's order; latencies in seconds."""
    va, vb = _view(a), _view(b)
    sa = {layer.name: va.seconds(layer.cycles) for layer in va.layers}
    sb = {layer.name: vb.seconds(layer.cycles) for layer in vb.layers}
    names = list(sa) + [n for n in sb if n not in sa]
    return [LayerPair(n, sa.get(n), sb.get(n)) for n in names]


# -- drawing ---------------------------------------------------------------------------------------


def _figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style():
    import matplotlib

    return matplotlib.rc_context(STYLE)


def _time_axis(seconds: float) -> tuple[float, str]:
    scale, prefix = si_prefix(seconds)
    return scale, f"{prefix}s"


def gantt_figure(
    result: dict | ResultView, colours: dict[str, str] | None = None, label_top: int = 8
) -> Figure:
    """Layers on engines over time: a row per engine, a bar per layer on each engine it occupies.

    A bar spans the layer's [start, end); its filled height is the share of that interval the engine
    was busy for the layer (``engine_busy_cycles``; full when not recorded). The ``label_top`` longest
    layers are numbered on their bars, with a key below the chart.
    """
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    view = _view(result)
    colours = colours or engine_colours([view])
    bars = gantt_bars(view)
    scale, unit = _time_axis(view.latency_s)
    engines = view.engine_names()
    lanes = {e: 1 + max((b.lane for b in bars if b.engine == e), default=0) for e in engines}
    gap = 0.4
    bottom, y = {}, 0.0
    for e in reversed(engines):  # first engine at the top
        bottom[e] = y
        y += lanes[e] + gap
    ranked = sorted(view.layers, key=lambda layer: (-layer.cycles, layer.name))[:label_top]
    number = {layer.name: i + 1 for i, layer in enumerate(ranked)}

    with _style():
        fig = _figure(7.0, 1.6 + 0.45 * sum(lanes.values()) + 0.2 * math.ceil(len(ranked) / 2))
        ax = fig.add_subplot()
        for e in engines:
            mine = [b for b in bars if b.engine == e]
            if not mine:
                continue
            left = [view.seconds(b.start_cycle) / scale for b in mine]
            width = [view.seconds(b.end_cycle - b.start_cycle) / scale for b in mine]
            base = [bottom[e] + lanes[e] - 1 - b.lane + 0.1 for b in mine]
            frac = [
                min(1.0, b.busy_cycles / (b.end_cycle - b.start_cycle))
                if b.end_cycle > b.start_cycle
                else 0.0
                for b in mine
            ]
            ax.barh(
                base,
                width,
                left=left,
                height=0.8,
                align="edge",
                color=to_rgba(colours[e], 0.25),
                edgecolor=colours[e],
                linewidth=0.4,
            )
            ax.barh(
                base,
                width,
                left=left,
                height=[0.8 * f for f in frac],
                align="edge",
                color=colours[e],
                edgecolor="white",
                linewidth=0.3,
            )
            for b, x0, w, y0 in zip(mine, left, width, base):
                if b.layer in number:
                    ax.text(
                        x0 + w / 2,
                        y0 + 0.4,
                        str(number[b.layer]),
                        ha="center",
                        va="center",
                        fontsize=9,
                        bbox={
                            "boxstyle": "round,pad=0.15",
                            "facecolor": "white",
                            "edgecolor": "none",
                            "alpha": 0.85,
                        },
                    )
        ax.set_yticks(
            [bottom[e] + lanes[e] / 2 for e in engines],
            [
                f"{e}\n{100 * view.engines[e].utilization:.0f} % busy" if e in view.engines else e
                for e in engines
            ],
        )
        ax.set_ylim(-gap / 2, y - gap / 2)
        ax.set_xlim(0, view.latency_s / scale)
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel("engine")
        ax.set_title(view.title("Layers on engines"))
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
        if ranked:
            handles = [Patch(visible=False)] * len(ranked)
            labels = [
                f"{number[layer.name]}  {layer.name}  {format_si(view.seconds(layer.cycles), 's')} "
                f"({'+'.join(layer.engines)})"
                for layer in ranked
            ]
            fig.legend(
                handles,
                labels,
                loc="outside lower center",
                ncols=2,
                handlelength=0,
                handletextpad=0,
                frameon=False,
                title=f"longest layers (filled height: share of the bar's time the engine "
                f"was busy{'' if _has_busy(view) else '; not recorded, taken as all'})",
            )
    return fig


def _has_busy(view: ResultView) -> bool:
    return any(layer.engine_busy_cycles is not None for layer in view.layers)


def utilisation_figure(
    result: dict | ResultView, colours: dict[str, str] | None = None, bins: int = 100
) -> Figure:
    """Per-engine utilisation over time in ``bins`` equal bins (see :func:`utilisation_bins`)."""
    view = _view(result)
    colours = colours or engine_colours([view])
    edges, util = utilisation_bins(view, bins)
    scale, unit = _time_axis(view.latency_s)
    t = [view.seconds(x) / scale for x in edges]
    with _style():
        fig = _figure(7.0, 1.3 + 0.95 * len(util))
        axes = fig.subplots(len(util), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (engine, frac) in zip(axes, util.items()):
            ax.stairs(100 * frac, t, fill=True, color=colours[engine], alpha=0.85)
            overall = view.engines[engine].utilization if engine in view.engines else None
            if overall is not None:
                ax.axhline(100 * overall, color="black", linestyle="--", linewidth=0.8)
            ax.set_ylim(0, 105)
            ax.set_yticks([0, 50, 100])
            ax.set_ylabel(engine)
            ax.text(
                1.0,
                1.0,
                f"overall {100 * overall:.1f} %" if overall is not None else "",
                fontsize=9,
                transform=ax.transAxes,
                ha="right",
                va="bottom",
            )
        axes[-1].set_xlim(t[0], t[-1])
        axes[-1].set_xlabel(f"time ({unit})")
        fig.supylabel("busy share of each bin (%)", fontsize=9)
        width = view.seconds(edges[1] - edges[0]) / scale
        fig.suptitle(
            view.title("Engine utilisation") + f"\n{bins} bins of {width:.3g} {unit}; dashed: whole run"
        )
    return fig


def energy_figure(result: dict | ResultView, colours: dict[str, str] | None = None) -> Figure:
    """Energy by component (``energy_breakdown_j``) and by op kind (Σ layers' energy_j), in one unit.

    Engine components take their engine's colour; other components and op kinds are dark grey, and
    the static energy (attributed to no layer) light grey.
    """
    view = _view(result)
    colours = colours or engine_colours([view])
    parts = [("by component", energy_by_component(view)), ("by op kind", energy_by_kind(view))]
    scale, prefix = si_prefix(max((v for _, rows in parts for _, v in rows), default=view.energy_j) or 1.0)
    total = view.energy_j or 1.0
    rows = max(len(r) for _, r in parts)
    with _style():
        fig = _figure(7.0, 1.3 + 0.24 * rows)
        axes = fig.subplots(1, 2, squeeze=False)[0]
        for ax, (what, items) in zip(axes, parts):
            names = [n for n, _ in items][::-1]
            values = [v / scale for _, v in items][::-1]
            shades = [
                "#bbbbbb"
                if n in (STATIC_LABEL, "static")
                else colours.get(n, "#555555")
                if what == "by component"
                else "#555555"
                for n in names
            ]
            bars = ax.barh(names, values, color=shades)
            ax.bar_label(
                bars,
                [f"{format_si(v * scale, 'J')} ({100 * v * scale / total:.1f} %)" for v in values],
                padding=2,
                fontsize=9,
            )
            ax.set_xlim(0, 1.6 * (max(values, default=0.0) or 1.0))
            ax.set_xlabel(f"energy ({prefix}J)")
            ax.set_title(what)
        fig.suptitle(view.title("Energy") + f"\ntotal {view.energy_j / scale:.4g} {prefix}J")
    return fig


def _log_bounds(values: Iterable[float], pad: float = 1.0) -> tuple[float, float]:
    """The decades enclosing ``values`` (positive; none: 1 to 10), the top one widened by ``pad``."""
    values = list(values)
    if not values:
        return 1.0, 10.0
    return 10.0 ** math.floor(math.log10(min(values))), 10.0 ** math.ceil(math.log10(max(values) * pad))


def _roofline_marker(p: RooflinePoint, colours: dict[str, str]) -> dict:
    """Marker style: filled in the engine's colour, half and half when split, hollow for a vector layer."""
    c0 = colours[p.engines[0]]
    if p.vector:
        return {
            "marker": "o",
            "markersize": 5,
            "markerfacecolor": "none",
            "markeredgecolor": c0,
            "markeredgewidth": 1.0,
        }
    style = {
        "marker": "o",
        "markersize": 5.5,
        "markerfacecolor": c0,
        "markeredgecolor": "black",
        "markeredgewidth": 0.4,
    }
    if len(p.engines) > 1:
        style.update(fillstyle="left", markerfacecoloralt=colours[p.engines[1]])
    return style


def roofline_figure(result: dict | ResultView, colours: dict[str, str] | None = None) -> Figure:
    """Per-layer roofline, log-log: ops per DRAM byte against achieved ops/s (see :func:`roofline_points`).

    Ceilings: each engine's peak (horizontal, solid, from its ridge point), the sum of the peaks of the
    engines a split layer runs on (dashed in both colours) and the DRAM bandwidth (diagonal, black).
    Markers: filled in the engine's colour for MAC layers (a split layer half in each engine's colour),
    hollow for vector layers. Layers that move no DRAM bytes (infinite intensity) sit in a narrow panel
    marked "∞" at the right, one column per engine.
    """
    from matplotlib.lines import Line2D

    view = _view(result)
    colours = colours or engine_colours([view])
    points, skipped = roofline_points(view)
    if not points:
        raise ValueError(f"roofline: no layer of {view.label} has ops and a duration")
    peaks = engine_peaks_ops_per_s(view)
    combos = sorted({p.engines for p in points if len(p.engines) > 1 and all(e in peaks for e in p.engines)})
    roofs = [(e, (e,), peak) for e, peak in peaks.items()] + [
        ("+".join(c), c, sum(peaks[e] for e in c)) for c in combos
    ]
    bw = view.dram.peak_bandwidth_Bps
    finite = [p for p in points if math.isfinite(p.intensity)]
    infinite = [p for p in points if not math.isfinite(p.intensity)]
    ridges = [peak / bw for _, _, peak in roofs]
    x_lo, x_hi = _log_bounds([p.intensity for p in finite] + ridges, pad=1.5)
    x_hi = max(x_hi, 10 * x_lo)
    y_lo, y_hi = _log_bounds([p.ops_per_s for p in points] + [peak for _, _, peak in roofs], pad=1.5)
    giga = 1e9

    with _style():
        fig = _figure(7.0, 5.2)
        if infinite:
            ax, ax_inf = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [8, 1], "wspace": 0.02})
        else:
            ax, ax_inf = fig.add_subplot(), None
        ax.set_xscale("log")
        ax.set_yscale("log")
        grid = np.logspace(math.log10(x_lo), math.log10(x_hi), 64)
        handles = [
            ax.plot(
                grid,
                bw * grid / giga,
                color="black",
                linewidth=1.0,
                label=f"DRAM ceiling {format_si(bw, 'B/s')}",
            )[0]
        ]
        for name, engines, peak in roofs:
            style = {"color": colours[engines[0]], "linewidth": 1.4}
            if len(engines) > 1:
                style.update(linestyle=(0, (4, 4)), gapcolor=colours[engines[1]])
            handles += ax.plot(
                [max(peak / bw, x_lo), x_hi],
                [peak / giga] * 2,
                **style,
                label=f"{name} peak {format_si(peak, 'op/s', 4)}",
            )
            if ax_inf is not None:
                ax_inf.axhline(peak / giga, **style)
        for p in finite:
            ax.plot([p.intensity], [p.ops_per_s / giga], linestyle="none", **_roofline_marker(p, colours))
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo / giga, y_hi / giga)
        ax.set_xlabel("arithmetic intensity (ops per DRAM byte)")
        ax.set_ylabel("achieved throughput (Gop/s)")
        ax.grid(which="major", linewidth=0.3, alpha=0.5)
        if ax_inf is not None:
            cols = sorted({p.engines[0] for p in infinite}, key=view.engine_names().index)
            for p in infinite:
                ax_inf.plot(
                    [cols.index(p.engines[0])],
                    [p.ops_per_s / giga],
                    linestyle="none",
                    **_roofline_marker(p, colours),
                )
            ax_inf.set_xlim(-0.8, len(cols) - 0.2)
            ax_inf.set_xticks([(len(cols) - 1) / 2], ["∞"])
            ax_inf.set_xlabel("no DRAM\nbytes")
            ax_inf.tick_params(axis="y", which="both", left=False, labelleft=False)
            ax_inf.spines["left"].set_visible(False)
        used = [
            e
            for e in view.engine_names()
            if any(p.engines[0] == e and len(p.engines) == 1 and not p.vector for p in points)
        ]
        markers = [
            Line2D(
                [],
                [],
                linestyle="none",
                **_roofline_marker(RooflinePoint("", "", (e,), 1, False, 1, 1.0), colours),
                label=f"{e} layer",
            )
            for e in used
        ]
        markers += [
            Line2D(
                [],
                [],
                linestyle="none",
                **_roofline_marker(RooflinePoint("", "", c, 1, False, 1, 1.0), colours),
                label=f"split {'+'.join(c)} layer",
            )
            for c in sorted({p.engines for p in points if len(p.engines) > 1})
        ]
        markers += [
            Line2D(
                [],
                [],
                linestyle="none",
                **_roofline_marker(RooflinePoint("", "", (e,), 1, True, 1, 1.0), colours),
                label=f"vector-unit layer ({e})",
            )
            for e in view.engine_names()
            if any(p.vector and p.engines[0] == e for p in points)
        ]
        note = "op: MAC on a MAC array, shift-add on a shift-add engine, output element on a vector unit"
        if skipped:
            note += f"\n{len(skipped)} layer(s) with no ops or no duration left out"
        fig.legend(handles=markers + handles, loc="outside lower center", ncols=2, frameon=False, title=note)
        fig.suptitle(view.title("Per-layer roofline"))
    return fig


def comparison_figure(a: dict | ResultView, b: dict | ResultView, max_layers: int = 20) -> Figure:
    """Per-layer latency of two results side by side, matched by layer name (see :func:`match_layers`).

    Shows the ``max_layers`` layers with the largest latency in either result, in execution order
    (A's, then B-only layers); the remaining layers' sums are given in the legend. A layer present in
    only one result has a hatched bar and the words "only in A" / "only in B" where the other bar
    would be; the right column gives the latency ratio A/B of each layer.
    """
    from matplotlib.patches import Patch

    va, vb = _view(a), _view(b)
    pairs = match_layers(va, vb)
    order = {p.name: i for i, p in enumerate(pairs)}
    top = sorted(pairs, key=lambda p: (-max(p.seconds_a or 0.0, p.seconds_b or 0.0), order[p.name]))[
        :max_layers
    ]
    shown = sorted(top, key=lambda p: order[p.name])
    rest = [p for p in pairs if p not in top]
    vmax = max(max(p.seconds_a or 0.0, p.seconds_b or 0.0) for p in shown) or 1.0
    scale, unit = _time_axis(vmax)
    h = 0.38
    with _style():
        fig = _figure(7.0, 1.9 + 0.3 * len(shown))
        ax = fig.add_subplot()
        ys = list(range(len(shown)))[::-1]
        for y, p in zip(ys, shown):
            for offset, s, other, colour, absent in (
                (h / 2, p.seconds_a, p.seconds_b, RESULT_COLOURS[0], "A"),
                (-h / 2, p.seconds_b, p.seconds_a, RESULT_COLOURS[1], "B"),
            ):
                if s is None:
                    ax.text(
                        0,
                        y + offset,
                        f" only in {'B' if absent == 'A' else 'A'}",
                        va="center",
                        ha="left",
                        fontsize=9,
                        style="italic",
                    )
                else:
                    ax.barh(
                        y + offset,
                        s / scale,
                        height=h,
                        color=colour,
                        hatch="///" if other is None else None,
                        edgecolor="white",
                        linewidth=0.0,
                    )
            if p.seconds_a and p.seconds_b:
                ax.text(
                    1.01,
                    y,
                    f"{p.seconds_a / p.seconds_b:.2f}",
                    transform=ax.get_yaxis_transform(),
                    ha="left",
                    va="center",
                    fontsize=9,
                )
        ax.text(
            1.01,
            len(shown) - 0.5,
            "A/B",
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="bottom",
            fontsize=9,
        )
        ax.set_yticks(ys, [p.name for p in shown])
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.set_xlim(0, 1.03 * vmax / scale)
        ax.set_xlabel(f"layer latency, end - start ({unit})")
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
        handles = [
            Patch(color=c, label=f"{tag}: {v.label}, run {format_si(v.latency_s, 's')}")
            for tag, v, c in (("A", va, RESULT_COLOURS[0]), ("B", vb, RESULT_COLOURS[1]))
        ]
        only_a = sum(1 for p in pairs if p.seconds_b is None)
        only_b = sum(1 for p in pairs if p.seconds_a is None)
        note = f"{len(pairs)} layers matched by name: {only_a} only in A, {only_b} only in B (hatched)"
        if rest:
            note += (
                f"\n{len(rest)} shorter layers not shown: "
                f"A {format_si(sum(p.seconds_a or 0 for p in rest), 's')}, "
                f"B {format_si(sum(p.seconds_b or 0 for p in rest), 's')} in sum"
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=1, frameon=False, title=note)
        wl = va.workload.get("name", va.workload.get("model", "?"))
        fig.suptitle(f"Per-layer latency: {wl}, A = {va.label} vs B = {vb.label}")
    return fig


# -- saving ----------------------------------------------------------------------------------------


def _metadata(fmt: str) -> dict | None:
    import matplotlib

    creator = f"archsim (Matplotlib {matplotlib.__version__})"
    if fmt == "svg":
        return {"Date": None, "Creator": creator}
    if fmt == "pdf":
        return {"CreationDate": None, "ModDate": None, "Creator": creator, "Producer": None}
    return {"Software": creator}


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format (PNG at 300 dpi); returns the paths written."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unsupported plot format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with _style():
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            fig.savefig(
                path,
                format=fmt,
                dpi=PNG_DPI,
                metadata=_metadata(fmt),
                bbox_inches="tight",
                pad_inches=0.03,
                facecolor="white",
            )
            paths.append(path)
    return paths


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "result"


def _stems(views: Sequence[ResultView]) -> list[str]:
    stems, seen = [], {}
    for v in views:
        wl = v.workload
        base = _slug(
            f"{wl.get('name', wl.get('model', 'workload'))}_{v.arch.get('name', 'arch')}_"
            f"{wl.get('policy', 'nopolicy')}"
        )
        seen[base] = seen.get(base, 0) + 1
        stems.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return stems


def plot_results(
    results: Sequence[dict],
    out_dir: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    sources: Sequence[str] | None = None,
) -> list[Path]:
    """Draw every figure for ``results`` into ``out_dir``; returns the files written, in a fixed order.

    Each result (a result holding a ``"baseline"`` counts as itself then its baseline) gets
    ``<stem>_gantt``, ``<stem>_utilisation``, ``<stem>_energy`` and ``<stem>_roofline``, where stem is
    ``<workload>_<arch>_<policy>`` (``_2``, ``_3`` on repeats). With two or more results the first is
    compared with each other one: ``compare_<stemA>_vs_<stemB>``. ``sources`` name the results in
    error messages (e.g. their file names).
    """
    views = expand_results(results, sources)
    if not views:
        raise ValueError("plot_results: no results to plot")
    colours = engine_colours(views)
    out_dir = Path(out_dir)
    stems = _stems(views)
    paths: list[Path] = []
    for view, stem in zip(views, stems):
        for what, fig in (
            ("gantt", gantt_figure(view, colours)),
            ("utilisation", utilisation_figure(view, colours)),
            ("energy", energy_figure(view, colours)),
            ("roofline", roofline_figure(view, colours)),
        ):
            paths += save_figure(fig, out_dir / f"{stem}_{what}", formats)
    for view, stem in zip(views[1:], stems[1:]):
        paths += save_figure(
            comparison_figure(views[0], view), out_dir / f"compare_{stems[0]}_vs_{stem}", formats
        )
    return paths
