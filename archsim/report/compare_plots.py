"""Figures of `archsim compare`: EDP savings per model, the attribution of the EDP ratio, the tornado.

Same style and deterministic output as :mod:`archsim.report.plots` (fixed fonts, hashed SVG ids,
no dates). matplotlib is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from archsim.report.plots import _figure, _style, save_figure

PAPER_CLAIM = 0.80  # [paper] M2-ViT abstract: on average 80 % EDP saving versus Trio-ViT
SERIES_COLOURS = ("#0072b2", "#56b4e9", "#d55e00", "#e69f00", "#009e73", "#cc79a7")


def savings_figure(rows: Sequence[dict]):
    """Grouped bars: EDP saving (%) per model@resolution, one bar per (table, budget)."""
    mine = list(rows)
    series = list(dict.fromkeys((r["table"], r["budget"]) for r in mine))
    cases = list(dict.fromkeys((r["model"], r["resolution"]) for r in mine))
    value = {(r["table"], r["budget"], r["model"], r["resolution"]): r["edp_saving"] for r in mine}
    with _style():
        fig = _figure(max(4.5, 0.3 * len(cases) * max(1, len(series)) / 2 + 2.5), 3.4)
        ax = fig.add_subplot()
        width = 0.8 / max(1, len(series))
        for i, (table, budget) in enumerate(series):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(cases))]
            ys = [100 * value[(table, budget, m, r)] for m, r in cases]
            ax.bar(
                xs, ys, width, label=f"{table}, equal {budget}", color=SERIES_COLOURS[i % len(SERIES_COLOURS)]
            )
        ax.axhline(100 * PAPER_CLAIM, color="black", linestyle="--", linewidth=1)
        ax.text(len(cases) - 0.5, 100 * PAPER_CLAIM, "paper's claim (average)", ha="right", va="bottom")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(cases)), [f"{m.upper()}@{r}" for m, r in cases])
        ax.set_ylabel("EDP saving vs baseline (%)")
        ax.set_ylim(min(0, *(100 * v for v in value.values())) - 5, 112)
        ax.set_title("M2-ViT (m2q) vs uniform W8A8 baseline: EDP saving = 1 - EDP ratio")
        ax.legend(loc="upper left", ncols=2, frameon=False)
    return fig


def attribution_figure(parts: Sequence[tuple[str, float]], total: float, title: str):
    """Horizontal bars: each cause's share of ln(EDP ratio) (negative = lowers M2-ViT's EDP)."""
    with _style():
        fig = _figure(6.0, 0.35 * (len(parts) + 1) + 1.2)
        ax = fig.add_subplot()
        labels = [p[0] for p in parts] + ["total ln(EDP ratio)"]
        values = [p[1] for p in parts] + [total]
        colours = ["#009e73" if v < 0 else "#d55e00" for v in values[:-1]] + ["#000000"]
        ys = list(range(len(values)))[::-1]
        ax.barh(ys, values, color=colours)
        for y, v in zip(ys, values):
            ax.text(v, y, f" {v:+.3f}", va="center", ha="left" if v >= 0 else "right")
        ax.set_yticks(ys, labels)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlabel("contribution to ln(EDP_m2vit / EDP_baseline) (Shapley value)")
        ax.set_title(title)
        lo, hi = min(0, *values), max(0, *values)
        pad = 0.25 * (hi - lo or 1)
        ax.set_xlim(lo - pad, hi + pad)
    return fig


def tornado_figure(entries: Sequence[dict], base: float, title: str):
    """Tornado: per parameter, the EDP saving at its low and high value around the base saving.

    ``entries``: dicts with ``parameter``, ``low_label``, ``high_label``, ``saving_low``, ``saving_high``
    (fractions), drawn widest swing on top.
    """
    order = sorted(entries, key=lambda e: abs(e["saving_high"] - e["saving_low"]))
    with _style():
        fig = _figure(6.5, 0.42 * len(order) + 1.3)
        ax = fig.add_subplot()
        for y, e in enumerate(order):
            for key, colour, label in (
                ("saving_low", "#56b4e9", "low_label"),
                ("saving_high", "#d55e00", "high_label"),
            ):
                v = 100 * e[key]
                ax.barh(y, v - 100 * base, left=100 * base, color=colour, height=0.6)
                ax.text(
                    v,
                    y,
                    f" {e[label]} " if v >= 100 * base else f" {e[label]} ",
                    va="center",
                    ha="left" if v >= 100 * base else "right",
                    fontsize=9,
                )
        ax.axvline(100 * base, color="black", linewidth=1)
        ax.set_yticks(range(len(order)), [e["parameter"] for e in order])
        ax.set_xlabel(f"EDP saving (%); base {100 * base:.1f} %; blue: low value, orange: high value")
        ax.set_title(title)
        values = [100 * e[k] for e in order for k in ("saving_low", "saving_high")] + [100 * base]
        lo, hi = min(values), max(values)
        pad = 0.35 * (hi - lo or 1)
        ax.set_xlim(lo - pad, hi + pad)
    return fig


def write(fig, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    return save_figure(fig, stem, formats)
