"""Figures of a sweep folder (``archsim sweep --out DIR``): Pareto fronts and one-axis sensitivity.

Read from ``DIR/results.csv`` and ``DIR/columns.json`` alone, in the style of
:mod:`archsim.report.plots` (same fonts, sizes, saving and determinism; docs/plots.md):

- ``pareto_latency_energy``: every finished point, latency (x) against energy (y), one colour per
  sweep block; the Pareto front over all points (no other point is both faster and cheaper) is
  the black staircase, its points ringed.
- ``edp_vs_<column>``: EDP against each derived column (a multiplier budget, an area), with the
  front of the points no other beats on both (smaller column value and smaller EDP).
- ``sensitivity_<key>``: for each swept key with two or more values, latency, energy and EDP
  against it: a thin line per combination of the other keys' values (in its block's colour),
  the bold line the median over those combinations. Quantity values ("19.2 GB/s") are placed by
  their SI value and labelled as written.

matplotlib is imported only inside the drawing functions; the numbers behind the figures
(:func:`read_sweep`, :func:`pareto_front`, :func:`sensitivity_lines`) are plain functions.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archsim.report.plots import _figure, _slug, _style, save_figure, si_prefix

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

# Okabe-Ito order (colour-blind safe), one colour per block
BLOCK_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#e69f00", "#56b4e9", "#cc79a7", "#000000", "#f0e442")
REFS = ("workload", "arch")  # whole-file parameters: categories, not a sensitivity axis
PARAM_PREFIX = "parameter"  # columns.json describes parameter columns starting with this word
FIGURE_WIDTH_IN = 7.0  # the width of docs/plots.md's figures: a two-column paper's full width
METRICS = (("latency_s", "latency", "s"), ("energy_j", "energy", "J"), ("edp_js", "EDP", "J·s"))


class SweepFolderError(ValueError):
    """A folder that holds no readable sweep table."""


@dataclass
class SweepTable:
    name: str
    rows: list[dict[str, str]]  # the finished points whose status is ok
    units: dict[str, str]  # column -> unit (columns.json)
    params: list[str]  # parameter columns, in table order
    derived: list[str]  # derived columns (numbers with a declared unit)


def read_sweep(folder: str | Path) -> SweepTable:
    """The ok rows and the column units of a sweep folder."""
    folder = Path(folder)
    table, columns = folder / "results.csv", folder / "columns.json"
    if not table.is_file() or not columns.is_file():
        raise SweepFolderError(
            f"{folder}: not a sweep folder (no results.csv and columns.json; "
            f"`archsim sweep SWEEP.yaml --out {folder}` writes them)"
        )
    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    units = json.loads(columns.read_text(encoding="utf-8"))
    fixed = ("point", "block", "hash", "status", "error")
    params = [c for c, u in units.items() if u.startswith(PARAM_PREFIX)]
    from archsim.sweep.metrics import is_metric

    derived = [c for c in units if c not in fixed and c not in params and not is_metric(c)]
    copy = folder / "sweep.yaml"
    name = folder.name
    if copy.is_file():
        match = re.search(r"^name:\s*(\S+)", copy.read_text(encoding="utf-8"), re.MULTILINE)
        name = match.group(1) if match else name
    return SweepTable(name, [r for r in rows if r.get("status") == "ok"], units, params, derived)


def as_number(text: str) -> float | None:
    """A cell as a number: a plain number, or a quantity string in SI units; None otherwise."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    from archsim.arch.units import DIMENSIONS, classify, parse_quantity

    dim = classify(text)
    return parse_quantity(text, dim) if dim in DIMENSIONS else None


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (both minimised), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    front, best_y = [], float("inf")
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def _blocks(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["block"] for r in rows))


def sensitivity_lines(
    rows: list[dict], key: str, others: Sequence[str], metric: str
) -> list[tuple[str, list[tuple[str, float]]]]:
    """(block, [(value as written, metric)] ordered by value) per combination of the ``others``'
    values in each block: the thin lines of a sensitivity plot."""
    groups: dict[tuple, list[tuple[str, float]]] = {}
    for row in rows:
        y = as_number(row.get(metric, ""))
        if y is None or row.get(key, "") == "":
            continue
        groups.setdefault((row["block"], *(row.get(o, "") for o in others)), []).append((row[key], y))
    out = []
    for group, values in groups.items():
        out.append((group[0], sorted(values, key=lambda v: _position(v[0]))))
    return out


def _position(text: str) -> tuple[int, float, str]:
    number = as_number(text)
    return (0, number, text) if number is not None else (1, 0.0, text)


def axes_of(table: SweepTable) -> list[str]:
    """Parameter columns that take two or more values among the finished points (a key set in one
    block only, such as that block's policy, is not an axis)."""
    return [p for p in table.params if p not in REFS and len({r.get(p, "") for r in table.rows} - {""}) > 1]


# -- figures --------------------------------------------------------------------------------------


def _points(n: int) -> str:
    return f"{n} point" + ("" if n == 1 else "s")


def _colours(blocks: Sequence[str]) -> dict[str, str]:
    return {b: BLOCK_COLOURS[i % len(BLOCK_COLOURS)] for i, b in enumerate(blocks)}


def _scaled(values: Sequence[float], unit: str) -> tuple[list[float], str]:
    scale, prefix = si_prefix(max((abs(v) for v in values), default=1.0) or 1.0)
    return [v / scale for v in values], f"{prefix}{unit}"


def _front_figure(
    table: SweepTable,
    x_col: str,
    y_col: str,
    x_label: str,
    y_label: str,
    x_unit: str,
    y_unit: str,
    title: str,
) -> Figure:
    rows = [
        r
        for r in table.rows
        if as_number(r.get(x_col, "")) is not None and as_number(r.get(y_col, "")) is not None
    ]
    xs = [as_number(r[x_col]) for r in rows]
    ys = [as_number(r[y_col]) for r in rows]
    sx, ux = _scaled(xs, x_unit) if x_unit else (xs, "")
    sy, uy = _scaled(ys, y_unit)
    colours = _colours(_blocks(rows))
    with _style():
        return _draw_front(rows, xs, ys, sx, sy, ux, uy, x_label, y_label, title, colours)


def _draw_front(rows, xs, ys, sx, sy, ux, uy, x_label, y_label, title, colours) -> Figure:
    fig = _figure(FIGURE_WIDTH_IN, 4.2)
    ax = fig.add_subplot()
    for block, colour in colours.items():
        idx = [i for i, r in enumerate(rows) if r["block"] == block]
        ax.scatter(
            [sx[i] for i in idx],
            [sy[i] for i in idx],
            s=22,
            color=colour,
            alpha=0.85,
            linewidths=0,
            label=f"{block} ({_points(len(idx))})",
        )
    front = pareto_front(list(zip(xs, ys)))
    if front:
        fx, fy = [sx[i] for i in front], [sy[i] for i in front]
        ax.step(
            fx, fy, where="post", color="black", linewidth=1.0, label=f"Pareto front ({_points(len(front))})"
        )
        ax.scatter(fx, fy, s=60, facecolors="none", edgecolors="black", linewidths=1.0)
    ax.set_xlabel(f"{x_label} ({ux})" if ux else x_label)
    ax.set_ylabel(f"{y_label} ({uy})")
    ax.set_title(title)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def pareto_figure(table: SweepTable) -> Figure:
    return _front_figure(
        table,
        "latency_s",
        "energy_j",
        "latency",
        "energy",
        "s",
        "J",
        f"Pareto front, latency vs energy: sweep {table.name}, {_points(len(table.rows))}",
    )


def edp_figure(table: SweepTable, column: str) -> Figure:
    unit = table.units.get(column, "")
    return _front_figure(
        table,
        column,
        "edp_js",
        f"{column} ({unit})" if unit else column,
        "EDP",
        "",
        "J·s",
        f"EDP vs {column}: sweep {table.name}",
    )


def sensitivity_figure(table: SweepTable, key: str) -> Figure:
    others = [a for a in axes_of(table) if a != key] + [r for r in REFS if r in table.params]
    values = sorted({r[key] for r in table.rows if r.get(key, "") != ""}, key=_position)
    numeric = all(as_number(v) is not None for v in values)
    place = {v: (as_number(v) if numeric else float(i)) for i, v in enumerate(values)}
    colours = _colours(_blocks(table.rows))
    with _style():
        return _draw_sensitivity(table, key, others, values, numeric, place, colours)


def _draw_sensitivity(table, key, others, values, numeric, place, colours) -> Figure:
    from matplotlib.lines import Line2D

    fig = _figure(FIGURE_WIDTH_IN, 3.2)
    panels = fig.subplots(1, len(METRICS))
    for ax, (metric, label, unit) in zip(panels, METRICS):
        lines = sensitivity_lines(table.rows, key, others, metric)
        every = [y for _, line in lines for _, y in line]
        scale, prefix = si_prefix(max(every, default=1.0) or 1.0)
        for block, line in lines:
            ax.plot(
                [place[v] for v, _ in line],
                [y / scale for _, y in line],
                color=colours[block],
                linewidth=0.6,
                alpha=0.45,
                marker="o",
                markersize=2,
            )
        for block, colour in colours.items():
            at = {}
            for b, line in lines:
                if b == block:
                    for v, y in line:
                        at.setdefault(v, []).append(y)
            if at:
                xs = sorted(at, key=_position)
                ax.plot(
                    [place[v] for v in xs],
                    [statistics.median(at[v]) / scale for v in xs],
                    color=colour,
                    linewidth=2.0,
                    label=f"{block}: median",
                )
        ax.set_xticks(
            [place[v] for v in values],
            values,
            rotation=30 if len(values) > 3 else 0,
            ha="right" if len(values) > 3 else "center",
        )
        if (
            numeric
            and len(values) > 2
            and min(place.values()) > 0
            and max(place.values()) / min(place.values()) >= 8
        ):
            ax.set_xscale("log")
            ax.set_xticks([place[v] for v in values], values)
            ax.minorticks_off()
        ax.set_ylabel(f"{label} ({prefix}{unit})")
        ax.grid(True, linewidth=0.4, alpha=0.5)
    panels[len(panels) // 2].set_xlabel(key)
    fig.suptitle(f"Sensitivity to {key}: sweep {table.name}")
    handles, labels = panels[0].get_legend_handles_labels()
    thin = Line2D(
        [],
        [],
        color="grey",
        linewidth=0.6,
        alpha=0.6,
        marker="o",
        markersize=2,
        label="one setting of the other keys",
    )
    fig.legend(
        [*handles, thin],
        [*labels, thin.get_label()],
        loc="outside lower center",
        ncols=min(len(handles) + 1, 4),
        frameon=False,
    )
    return fig


def plot_sweep(
    folder: str | Path, out_dir: str | Path, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Every figure of the sweep in ``folder`` into ``out_dir``; the files written, in a fixed order."""
    table = read_sweep(folder)
    if not table.rows:
        raise SweepFolderError(f"{folder}: no finished point to plot (every point failed or none ran)")
    out_dir = Path(out_dir)
    paths = save_figure(pareto_figure(table), out_dir / "pareto_latency_energy", formats)
    for column in table.derived:
        if any(as_number(r.get(column, "")) is not None for r in table.rows):
            paths += save_figure(edp_figure(table, column), out_dir / f"edp_vs_{_slug(column)}", formats)
    for key in axes_of(table):
        paths += save_figure(sensitivity_figure(table, key), out_dir / f"sensitivity_{_slug(key)}", formats)
    return paths
