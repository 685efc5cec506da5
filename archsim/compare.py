"""`archsim compare`: M2-ViT (policy m2q) against the uniform 8-bit baseline (uniform_w8a8).

For every (model, resolution) and energy table (the FPGA table: m2vit.yaml / uniform_int8.yaml; the
28 nm table: m2vit_asic28.yaml / uniform_int8_asic28.yaml) the baseline is sized twice:

- **equal multiplier budget** (``budget = "multiplier"``): MAT rows = round((MPMA 8x8 multipliers +
  f x SAT lanes - R-PE multipliers) / MAT lanes) with f = ``sat_lane_area`` (default m2vit's
  ``params.sat_lane_area_in_mult8``, 0.5: 1024 + 0.5 x 4096 - 256 = 2816 = 88 x 32);
- **equal estimated area** (``budget = "area"``): MAT rows such that the baseline's estimated area
  (:mod:`archsim.area`) is the closest to M2-ViT's (:func:`archsim.area.equal_area_mat_rows`).

Where an engine has a leakage entry (the 28 nm table), the resized engine's leakage is scaled with
its rows (leakage proportional to area). Every point runs through the sweep machinery
(:mod:`archsim.sweep`: plan, graph cache, local process pool): each (model, resolution, policy)
graph is built once. ``edp_saving = 1 - EDP_m2vit / EDP_baseline``, computed from the rows' own
numbers. ``--attribution`` and ``--sensitivity`` are in :mod:`archsim.compare_study`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsim.errors import ConfigError, RunError

MODELS = ("b1", "b2", "b3")
RESOLUTIONS = (224, 256, 288)
TABLES = {"fpga": ("m2vit", "uniform_int8"), "asic28": ("m2vit_asic28", "uniform_int8_asic28")}
BUDGETS = ("multiplier", "area")
BUDGET_TEXT = {"multiplier": "8x8-multiplier budget", "area": "estimated area"}
M2VIT_POLICY, BASELINE_POLICY = "m2q", "uniform_w8a8"
MAT, RPE, MPMA, SAT = "mat", "rpe", "mpma", "sat"
METRICS = ["latency_s", "latency_cycles", "energy_j", "edp_js", "energy_breakdown_j.*"]
CSV_COLUMNS = (
    "model",
    "resolution",
    "budget",
    "table",
    "latency_s",
    "energy_j",
    "edp_js",
    "baseline_latency_s",
    "baseline_energy_j",
    "baseline_edp_js",
    "edp_ratio",
    "edp_saving",
    "baseline_mat_rows",
    "m2vit_area_mm2_40nm",
    "baseline_area_mm2_40nm",
    "m2vit_arch",
    "baseline_arch",
)


def workload_name(model: str) -> str:
    return f"efficientvit_{model}"


# -- options ------------------------------------------------------------------------------------


def parse_models(text: str | None) -> tuple[str, ...]:
    """``"b1,b3"`` (or ``efficientvit_b1``) -> ("b1", "b3"); ConfigError naming the allowed values."""
    if text is None:
        return MODELS
    out = []
    for part in _parts(text, "--models"):
        name = part.lower().removeprefix("efficientvit_")
        if name not in MODELS:
            raise ConfigError(f"--models {part!r}: unknown model; allowed: {', '.join(MODELS)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_resolutions(text: str | None) -> tuple[int, ...]:
    if text is None:
        return RESOLUTIONS
    out = []
    for part in _parts(text, "--resolutions"):
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(f"--resolutions {part!r}: not an integer; e.g. 224,256,288") from None
        if value < 32 or value % 32:
            raise ConfigError(f"--resolutions {part!r}: must be a multiple of 32, at least 32 (e.g. 224)")
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_choice(text: str | None, option: str, allowed: Sequence[str]) -> tuple[str, ...]:
    if text is None:
        return tuple(allowed)
    out = []
    for part in _parts(text, option):
        if part not in allowed:
            raise ConfigError(f"{option} {part!r}: unknown; allowed: {', '.join(allowed)}")
        if part not in out:
            out.append(part)
    return tuple(out)


def _parts(text: str, option: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ConfigError(f"{option} {text!r}: give a comma-separated list without empty items")
    return parts


def check_sat_lane_area(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ConfigError(
            f"--sat-lane-area {value!r}: must be a number >= 0 (8x8 multipliers per SAT lane; 0: the SAT "
            "costs no multipliers, e.g. LUT shift-adders against a DSP budget on an FPGA)"
        )
    return value


# -- overrides of one design --------------------------------------------------------------------


def arch_document(name: str) -> tuple[Path, dict]:
    """The bundled (or search-path) architecture ``name``: its path and parsed YAML document."""
    from archsim.arch.errors import ArchConfigError
    from archsim.arch.loader import resolve_arch
    from archsim.configfile import read_document

    path = resolve_arch(name)
    return path, read_document(path, ArchConfigError).data


def scaled_value(text: str, factor: float) -> str:
    """``"11.3 mW"`` x 2 -> ``"22.6 mW"`` (the unit as written)."""
    from archsim.arch.units import split_number_unit

    number, unit = split_number_unit(str(text))
    return f"{number * factor:.6g} {unit}".strip()


def energy_value(doc: dict, name: str) -> str:
    """The value, as written, of energy entry ``name`` of an architecture document: its ``energy:`` or
    ``energy_overrides:`` entry, else its ``energy_table``'s (the order the loader resolves them in)."""
    for key in ("energy", "energy_overrides"):
        entry = (doc.get(key) or {}).get(name)
        if entry is not None:
            return str(entry["value"])
    from archsim.energy.tables import written_entries

    return written_entries(doc["energy_table"])[name][0]


def energy_sets(doc: dict, names: Iterable[str], factor: float) -> dict[str, str]:
    """Overrides scaling the energy entries ``names`` of an architecture document by ``factor``."""
    out = {}
    for name in dict.fromkeys(n for n in names if n):
        out[f"energy.{name}.value"] = scaled_value(energy_value(doc, name), factor)
    return out


def rows_sets(doc: dict, engine: str, rows: int) -> dict[str, Any]:
    """``engines.<engine>.rows = rows``, and its leakage entry (if any) scaled with the rows."""
    eng = doc["engines"][engine]
    out: dict[str, Any] = {f"engines.{engine}.rows": int(rows)}
    if eng.get("leakage"):
        out.update(energy_sets(doc, [eng["leakage"]], rows / eng["rows"]))
    return out


def lanes_of(doc: dict, engine: str, mode: str | None = None) -> int:
    modes = doc["engines"][engine]["modes"]
    return int(modes[mode]["lanes"] if mode else max(m["lanes"] for m in modes.values()))


def budget_mat_rows(m2_doc: dict, base_doc: dict, sat_lane_area: float, sat_rows: int | None = None) -> int:
    """MAT rows at equal 8x8-multiplier budget (module docstring)."""
    from archsim.area import equal_budget_mat_rows

    mp = m2_doc["engines"][MPMA]
    mpma = mp["rows"] * min(m["lanes"] for m in mp["modes"].values() if m.get("weight_bits", 0) >= 8)
    sat = (sat_rows or m2_doc["engines"][SAT]["rows"]) * lanes_of(m2_doc, SAT)
    rpe = base_doc["engines"][RPE]["rows"] * lanes_of(base_doc, RPE, "int8")
    return equal_budget_mat_rows(mpma, sat, rpe, lanes_of(base_doc, MAT, "int8"), sat_lane_area)


def default_sat_lane_area(m2_doc: dict) -> float:
    return float((m2_doc.get("params") or {}).get("sat_lane_area_in_mult8", 0.5))


def area_mat_rows(m2_arch: str, base_arch: str, m2_sets: dict | None = None) -> int:
    """MAT rows at equal estimated area (:func:`archsim.area.equal_area_mat_rows`)."""
    from archsim import area, flow, overrides

    m2 = flow.load_arch(
        m2_arch, overrides=[overrides.Override(k, v, "compare") for k, v in (m2_sets or {}).items()]
    )
    return area.equal_area_mat_rows(m2, flow.load_arch(base_arch))


def estimated_area_mm2(arch: str, sets: dict) -> float:
    from archsim import area, flow, overrides

    spec = flow.load_arch(arch, overrides=[overrides.Override(k, v, "compare") for k, v in sets.items()])
    return area.arch_area(spec)["total"] / 1e6


# -- points and the sweep that runs them ----------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """One architecture + policy + overrides; ``label`` names it (the sweep block)."""

    label: str
    arch: str
    policy: str
    sets: tuple[tuple[str, Any], ...] = ()

    @property
    def set_dict(self) -> dict[str, Any]:
        return dict(self.sets)


def design(label: str, arch: str, policy: str, sets: dict | None = None) -> Design:
    return Design(label, arch, policy, tuple(sorted((sets or {}).items())))


@dataclass
class Runner:
    """Runs designs on (model, resolution) pairs through one sweep folder (resumable), graphs built once."""

    folder: Path
    workers: int | None = None
    cache: bool = True
    progress: bool = True
    # overrides of every workload (tests: ``{"workload.calibration.samples": 4}``); part of each graph's key
    workload_sets: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def say(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    def run(self, designs: Sequence[Design], pairs: Sequence[tuple[str, int]], name: str) -> dict:
        """{(design label, model, resolution): result row (latency_s, energy_j, edp_js, breakdown)}."""
        from archsim import sweep

        designs = list(dict.fromkeys(designs))
        labels = [d.label for d in designs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"compare: design labels must be unique, got {labels}")
        t = time.perf_counter()
        self.prebuild({(m, r, d.policy) for d in designs for m, r in pairs})
        self.timings[f"{name}: graphs"] = self.timings.get(f"{name}: graphs", 0.0) + time.perf_counter() - t
        blocks = [
            {
                "name": d.label,
                "set": {"arch": d.arch, "workload.policy": d.policy, **self.workload_sets, **d.set_dict},
                "zip": {
                    "workload": [workload_name(m) for m, _ in pairs],
                    "workload.resolution": [r for _, r in pairs],
                },
            }
            for d in designs
        ]
        spec = sweep.load_sweep(
            {
                "name": name,
                "workload": workload_name(pairs[0][0]),
                "arch": designs[0].arch,
                "metrics": METRICS,
                "blocks": blocks,
            }
        )
        out = self.folder / name
        t = time.perf_counter()
        executor = sweep.executor_for(workers=self.workers)
        outcome = sweep.execute(spec, out, executor, cache=self.cache, progress=False)
        self.timings[f"{name}: simulate"] = time.perf_counter() - t
        table = sweep.read_table(out)
        failed = table[table.status != "ok"]
        if len(failed):
            lines = [
                f"  {r.block} {r.workload}@{r['workload.resolution']}: {r.error}"
                for _, r in failed.iterrows()
            ]
            raise RunError(f"compare: {len(failed)} of {outcome.points} runs failed:\n" + "\n".join(lines))
        rows = {}
        for _, r in table.iterrows():
            model = str(r["workload"]).removeprefix("efficientvit_")
            key = (str(r["block"]), model, int(r["workload.resolution"]))
            rows[key] = {
                "latency_s": float(r["latency_s"]),
                "latency_cycles": int(r["latency_cycles"]),
                "energy_j": float(r["energy_j"]),
                "edp_js": float(r["edp_js"]),
                "breakdown": {
                    c.split(".", 1)[1]: float(r[c])
                    for c in table.columns
                    if c.startswith("energy_breakdown_j.") and not _isnan(r[c])
                },
            }
        return rows

    def prebuild(self, graphs: set[tuple[str, int, str]]) -> None:
        """Build the graphs the cache lacks, in parallel (spawned processes), before the sweep runs."""
        from archsim import cache as graph_cache

        if not self.cache:
            return
        missing = []
        sets = tuple(sorted(self.workload_sets.items()))
        for model, res, policy in sorted(graphs):
            if graph_cache.graph_file(_workload(model, res, policy, sets)) is None:
                missing.append((model, res, policy, sets))
        if not missing:
            return
        workers = max(1, min(self.workers or os.cpu_count() or 1, len(missing)))
        self.say(
            f"compare: building {len(missing)} graph(s) on {workers} process(es) (cached for the next run)"
        )
        if workers == 1:
            for item in missing:
                self.say(_build_one(*item))
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_build_one, *item) for item in missing]
            for fut in as_completed(futures):
                self.say(fut.result())


def _isnan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def _workload(model: str, resolution: int, policy: str, sets: tuple = ()):
    from archsim import flow, overrides

    ov = [overrides.Override(k, v, "compare") for k, v in sets]
    return flow.load_workload(workload_name(model), overrides=ov, resolution=resolution, policy=policy)


def _build_one(model: str, resolution: int, policy: str, sets: tuple = ()) -> str:
    from archsim import flow

    t = time.perf_counter()
    flow.workload_graph(_workload(model, resolution, policy, sets))
    return f"  graph {model}@{resolution} {policy}: {time.perf_counter() - t:.1f} s"


# -- the comparison -----------------------------------------------------------------------------


@dataclass
class Setup:
    """The designs of one energy table: M2-ViT and the baseline at each budget."""

    table: str
    m2vit: Design
    baselines: dict[str, Design]  # budget -> design
    mat_rows: dict[str, int]
    areas_mm2: dict[str, float]  # design label -> estimated area (40 nm)


def setup(table: str, budgets: Sequence[str], sat_lane_area: float | None = None) -> Setup:
    m2_arch, base_arch = TABLES[table]
    _, m2_doc = arch_document(m2_arch)
    _, base_doc = arch_document(base_arch)
    f = sat_lane_area if sat_lane_area is not None else default_sat_lane_area(m2_doc)
    m2 = design(f"m2vit_{table}", m2_arch, M2VIT_POLICY)
    rows = {}
    for budget in budgets:
        rows[budget] = (
            budget_mat_rows(m2_doc, base_doc, f)
            if budget == "multiplier"
            else area_mat_rows(m2_arch, base_arch)
        )
    bases = {
        b: design(f"baseline_{table}_{b}", base_arch, BASELINE_POLICY, rows_sets(base_doc, MAT, rows[b]))
        for b in budgets
    }
    areas = {m2.label: estimated_area_mm2(m2_arch, {})}
    for d in bases.values():
        areas[d.label] = estimated_area_mm2(d.arch, d.set_dict)
    return Setup(table, m2, bases, rows, areas)


def compare_rows(
    models: Sequence[str] = MODELS,
    resolutions: Sequence[int] = RESOLUTIONS,
    tables: Sequence[str] = tuple(TABLES),
    budgets: Sequence[str] = BUDGETS,
    sat_lane_area: float | None = None,
    runner: Runner | None = None,
) -> list[dict]:
    """One row per (model, resolution, budget, table); see :data:`CSV_COLUMNS`. ``latency_s``,
    ``energy_j`` and ``edp_js`` are M2-ViT's, ``baseline_*`` the baseline's at that budget."""
    runner = runner or Runner(Path(tempfile.mkdtemp(prefix="archsim-compare-")))
    pairs = [(m, r) for m in models for r in resolutions]
    setups = [setup(t, budgets, sat_lane_area) for t in tables]
    designs = [d for s in setups for d in (s.m2vit, *s.baselines.values())]
    results = runner.run(designs, pairs, "compare")
    out = []
    for m, r in pairs:
        for budget in budgets:
            for s in setups:
                base = s.baselines[budget]
                mine, theirs = results[(s.m2vit.label, m, r)], results[(base.label, m, r)]
                ratio = mine["edp_js"] / theirs["edp_js"]
                out.append(
                    {
                        "model": m,
                        "resolution": r,
                        "budget": budget,
                        "table": s.table,
                        "latency_s": mine["latency_s"],
                        "energy_j": mine["energy_j"],
                        "edp_js": mine["edp_js"],
                        "baseline_latency_s": theirs["latency_s"],
                        "baseline_energy_j": theirs["energy_j"],
                        "baseline_edp_js": theirs["edp_js"],
                        "edp_ratio": ratio,
                        "edp_saving": 1.0 - ratio,
                        "baseline_mat_rows": s.mat_rows[budget],
                        "m2vit_area_mm2_40nm": s.areas_mm2[s.m2vit.label],
                        "baseline_area_mm2_40nm": s.areas_mm2[base.label],
                        "m2vit_arch": s.m2vit.arch,
                        "baseline_arch": base.arch,
                    }
                )
    return out


def averages(rows: Iterable[dict]) -> dict[tuple[str, str], float]:
    """Mean EDP saving per (table, budget) (arithmetic mean of the rows' savings)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r["table"], r["budget"]), []).append(r["edp_saving"])
    return {k: sum(v) / len(v) for k, v in groups.items()}


def geomean_ratios(rows: Iterable[dict]) -> dict[tuple[str, str], float]:
    """1 - geometric mean of the EDP ratios per (table, budget): the saving of the 'average' model."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r["table"], r["budget"]), []).append(math.log(r["edp_ratio"]))
    return {k: 1.0 - math.exp(sum(v) / len(v)) for k, v in groups.items()}


def _fmt(value: Any) -> str:
    """Floats as Python's shortest round-trip text: the CSV's numbers are the rows' own, bit for bit."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _fmt(r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def format_table(rows: Sequence[dict]) -> str:
    """The text table: per (table, budget), one line per model and resolution, then the averages."""
    lines = []
    rows = list(rows)
    keys = list(dict.fromkeys((r["table"], r["budget"]) for r in rows))
    avg, geo = averages(rows), geomean_ratios(rows)
    head = (
        f"{'model':<6}{'res':>5}  {'latency m2vit':>14}{'latency base':>14}  "
        f"{'energy m2vit':>13}{'energy base':>13}"
        f"  {'EDP m2vit':>11}{'EDP base':>11}  {'EDP saving':>10}"
    )
    for table, budget in keys:
        mine = [r for r in rows if (r["table"], r["budget"]) == (table, budget)]
        lines.append(
            f"table {table}, equal {BUDGET_TEXT[budget]} (baseline MAT rows {mine[0]['baseline_mat_rows']}; "
            f"estimated area m2vit {mine[0]['m2vit_area_mm2_40nm']:.3f} mm^2, baseline "
            f"{mine[0]['baseline_area_mm2_40nm']:.3f} mm^2 at 40 nm)"
        )
        lines.append(head)
        for r in mine:
            lines.append(
                f"{r['model']:<6}{r['resolution']:>5}  "
                f"{r['latency_s'] * 1e3:>11.3f} ms{r['baseline_latency_s'] * 1e3:>11.3f} ms"
                f"  {r['energy_j'] * 1e3:>10.3f} mJ{r['baseline_energy_j'] * 1e3:>10.3f} mJ"
                f"  {r['edp_js']:>11.4e}{r['baseline_edp_js']:>11.4e}  {r['edp_saving'] * 100:>9.1f} %"
            )
        lines.append(
            f"average EDP saving: {avg[(table, budget)] * 100:.1f} % (mean of the savings); "
            f"{geo[(table, budget)] * 100:.1f} % (1 - geometric mean of the EDP ratios)"
        )
        lines.append("")
    lines.append("paper's claim (M2-ViT abstract): ~80 % average EDP saving versus Trio-ViT")
    return "\n".join(lines)
