"""Where M2-ViT's EDP saving comes from: the attribution and the sensitivity study of `archsim compare`.

**Attribution** (:func:`attribution`). Six causes, each a feature of the comparison that a
controlled variant *neutralises* (sets to the baseline's value, or removes on both sides):

=========  ==============================================  =============================================
factor     cause                                           neutralised by
=========  ==============================================  =============================================
dw4        4-bit depthwise weights (MPMA single mode)      policy m2q_dw8 (8-bit depthwise, merged mode)
weights    smaller weight traffic (4-bit APoT codes)       policy m2q_apot8w: the same filters stored as
                                                           8-bit codes (SAT weight_bits 8)
sat        SAT parallelism (a lane costs f multipliers)    SAT rows x f: as many lanes as 8x8 multipliers
                                                           its budget buys (64 -> 32 rows at f = 0.5)
shiftadd   cheaper shift-add                               apot_shift_add priced as the int8 MAC
static     static power (device static, leakage)           zero, on both designs
dram       DRAM energy (per byte and background)           zero, on both designs
=========  ==============================================  =============================================

The baseline is the equal-multiplier-budget one. With ``u(P) = ln(EDP_m2vit / EDP_baseline)`` when
the factors in ``P`` are present and the others neutralised, the parts are the **Shapley values**
of ``u`` over the six factors (every one of the 2^6 subsets is run) plus a **residual**
``u(empty set)``: the log ratio left when every factor is neutralised (engine organisation, mapping,
fusion and everything else that differs). Shapley values sum to ``u(all) - u(empty)``, so parts +
residual = ln(EDP ratio) exactly. Shapley rather than a sequential decomposition: the factors
interact (DRAM energy decides how much weight traffic matters; static power, how much a latency
gain is worth), and a sequential split credits each interaction to whichever factor comes later in
an arbitrary order; Shapley averages over every order and is order-free. 64 runs of one model cost
about a minute.

**Sensitivity** (:func:`sensitivity`): one parameter at a time set to a documented low and high value
(:data:`SENSITIVITY`), the EDP saving at equal multiplier budget recorded for each, drawn as a tornado.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from archsim import compare as cmp
from archsim.compare import Design, Runner, arch_document, design, energy_sets, rows_sets, scaled_value

FACTORS = (
    ("dw4", "4-bit depthwise weights"),
    ("weights", "smaller weight traffic (4-bit APoT codes)"),
    ("sat", "SAT parallelism (cheap lanes)"),
    ("shiftadd", "cheaper shift-add"),
    ("static", "static power"),
    ("dram", "DRAM energy"),
)
RESIDUAL = "residual (engine organisation, mapping, the rest)"
POLICIES = {  # (dw4 neutralised, weights neutralised) -> policy
    (False, False): "m2q",
    (True, False): "m2q_dw8",
    (False, True): "m2q_apot8w",
    (True, True): "m2q_dw8_apot8w",
}


def _energy_of_mode(doc: dict, engine: str, mode: str) -> str:
    return doc["engines"][engine]["modes"][mode]["energy_per_op"]


def static_names(doc: dict) -> list[str]:
    """Energy entries of static power: the device's static power, every engine's and buffer's leakage."""
    names = [doc.get("static_power")]
    names += [e.get("leakage") for e in doc["engines"].values()]
    names += [b.get("leakage") for b in doc["buffers"].values()]
    return [n for n in names if n]


def dram_names(doc: dict) -> list[str]:
    d = doc["dram"]
    return [n for n in (d.get("read_energy"), d.get("write_energy"), d.get("background_power")) if n]


def mac_names(doc: dict) -> list[str]:
    out = []
    for e in doc["engines"].values():
        if e["kind"] == "mac_array":
            out += [m["energy_per_op"] for m in e["modes"].values()]
    return list(dict.fromkeys(out))


def sat_rows_neutral(m2_doc: dict, sat_lane_area: float) -> int:
    return max(1, math.floor(m2_doc["engines"][cmp.SAT]["rows"] * sat_lane_area + 0.5))


def _m2vit_variant(table: str, m2_doc: dict, neutral: frozenset, f: float) -> Design:
    m2_arch, _ = cmp.TABLES[table]
    policy = POLICIES[("dw4" in neutral, "weights" in neutral)]
    sets: dict = {}
    if "weights" in neutral:
        sets["engines.sat.modes.shift_add.weight_bits"] = 8
    if "sat" in neutral:
        sets.update(rows_sets(m2_doc, cmp.SAT, sat_rows_neutral(m2_doc, f)))
    if "shiftadd" in neutral:
        mac = _energy_of_mode(m2_doc, cmp.MPMA, "merged")
        sets[f"energy.{_energy_of_mode(m2_doc, cmp.SAT, 'shift_add')}.value"] = cmp.energy_value(m2_doc, mac)
    if "static" in neutral:
        sets.update(energy_sets(m2_doc, static_names(m2_doc), 0.0))
    if "dram" in neutral:
        sets.update(energy_sets(m2_doc, dram_names(m2_doc), 0.0))
    tag = "".join(sorted(k[0:2] for k in neutral)) or "none"
    return design(f"attr_{table}_m2vit_{tag}", m2_arch, policy, sets)


def _baseline_variant(table: str, base_doc: dict, rows: int, neutral: frozenset) -> Design:
    _, base_arch = cmp.TABLES[table]
    sets = rows_sets(base_doc, cmp.MAT, rows)
    if "static" in neutral:
        sets.update(energy_sets(base_doc, static_names(base_doc), 0.0))
    if "dram" in neutral:
        sets.update(energy_sets(base_doc, dram_names(base_doc), 0.0))
    tag = "".join(sorted(k[0:2] for k in neutral & {"static", "dram"})) or "none"
    return design(f"attr_{table}_base_{tag}", base_arch, cmp.BASELINE_POLICY, sets)


def shapley(u: dict[frozenset, float], players: Sequence[str]) -> dict[str, float]:
    """Shapley values of the game ``u`` (present set -> value) over ``players``."""
    n = len(players)
    out = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for k in range(n):
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for subset in itertools.combinations(others, k):
                s = frozenset(subset)
                total += weight * (u[s | {p}] - u[s])
        out[p] = total
    return out


@dataclass
class Attribution:
    table: str
    model: str
    resolution: int
    log_ratio: float  # ln(EDP_m2vit / EDP_baseline), both as compared
    parts: dict[str, float]  # factor -> Shapley value (ln units)
    residual: float  # u(no factor present)
    u: dict[frozenset, float]  # the game, for the record

    def rows(self) -> list[dict]:
        out = []
        for key, label in FACTORS:
            out.append(self._row(key, label, self.parts[key]))
        out.append(self._row("residual", RESIDUAL, self.residual))
        out.append(self._row("total", "total ln(EDP ratio)", self.log_ratio))
        return out

    def _row(self, key: str, label: str, value: float) -> dict:
        return {
            "table": self.table,
            "model": self.model,
            "resolution": self.resolution,
            "factor": key,
            "cause": label,
            "log_edp_ratio_part": value,
            "share_of_log_ratio": value / self.log_ratio if self.log_ratio else float("nan"),
            # the EDP ratio this part alone would give: exp(part); the product of all is the ratio
            "edp_ratio_factor": math.exp(value),
        }


def attribution(
    table: str, model: str, resolution: int, runner: Runner, sat_lane_area: float | None = None
) -> Attribution:
    _, m2_doc = arch_document(cmp.TABLES[table][0])
    _, base_doc = arch_document(cmp.TABLES[table][1])
    f = sat_lane_area if sat_lane_area is not None else cmp.default_sat_lane_area(m2_doc)
    rows = cmp.budget_mat_rows(m2_doc, base_doc, f)
    keys = [k for k, _ in FACTORS]
    variants = {}
    for k in range(len(keys) + 1):
        for neutral in itertools.combinations(keys, k):
            n = frozenset(neutral)
            variants[n] = (_m2vit_variant(table, m2_doc, n, f), _baseline_variant(table, base_doc, rows, n))
    designs = [d for pair in variants.values() for d in pair]
    results = runner.run(designs, [(model, resolution)], f"attribution_{table}_{model}_{resolution}")
    u = {}
    for n, (m2, base) in variants.items():
        present = frozenset(keys) - n
        mine, theirs = results[(m2.label, model, resolution)], results[(base.label, model, resolution)]
        u[present] = math.log(mine["edp_js"] / theirs["edp_js"])
    parts = shapley(u, keys)
    return Attribution(table, model, resolution, u[frozenset(keys)], parts, u[frozenset()], u)


# -- sensitivity ---------------------------------------------------------------------------------

# (parameter, what, low, high, provenance) per table; factors multiply the YAML value unless noted.
MAC_BAND = {"fpga": (0.5, 2.0), "asic28": (0.04 / 0.14, 0.56 / 0.14)}
STATIC_BAND = {"fpga": (0.5, 2.0), "asic28": (0.2, 5.0)}
SENSITIVITY_DOC = {
    "MAC energy": "all MAC entries (int8, 4x8, 8x32) x low/high on both designs; fpga x0.5 / x2 [choice]; "
    "asic28 0.04 pJ (Stream example) / 0.56 pJ (Aladdin-scaled) per int8 MAC (energy.md 1.4)",
    "shift-add energy": "apot_shift_add = 0.25 x / 1.0 x the int8 MAC (energy.md: PoT shift-add ~0.25-0.5x; "
    "1.0 = priced as a MAC)",
    "SAT lane area": "f = 0.25 / 1.0 multipliers per SAT lane: the equal-budget baseline's MAT rows follow",
    "SAT size": "SAT rows 32 / 128 (2048 / 8192 lanes); the equal-budget baseline follows",
    "DRAM bandwidth": "9.6 / 38.4 GB/s on both designs (x0.5 / x2 of DDR4-2400 x64)",
    "DRAM energy": "read, write and background x0.5 / x2 on both "
    "(~LPDDR4 68 pJ/B .. Horowitz's upper 325 pJ/B)",
    "static power": "fpga device static x0.5 / x2 [choice]; "
    "asic28 every leakage x0.2 / x5 (CACTI LOP vs HP ~5x)",
    "buffer sizes": "weight and activation buffers x0.5 / x2 on both (their leakage scaled with capacity)",
}
PARAMETERS = tuple(SENSITIVITY_DOC)


def _sensitivity_sets(
    table: str, choices: Sequence[tuple[str, str]], m2_doc: dict, base_doc: dict, f: float
) -> tuple[dict, dict]:
    """(m2vit sets, baseline sets) with each ``(parameter, "low" | "high")`` of ``choices`` applied.

    Energy entries touched by several choices (a leakage scaled by a resize and by the static-power
    band) get the product of their factors; the baseline's MAT rows follow the equal-budget rule
    with the chosen SAT lane area and SAT size. The shift-add values are relative to the YAML's MAC.
    """
    fac: tuple[dict, dict] = ({}, {})  # per design: energy entry -> factor
    direct: tuple[dict, dict] = ({}, {})
    docs = (m2_doc, base_doc)
    sat_rows = None

    def scale(which: int, names: Sequence[str], k: float) -> None:
        for n in names:
            fac[which][n] = fac[which].get(n, 1.0) * k

    for param, side in choices:
        i = 0 if side == "low" else 1
        if param == "MAC energy":
            for w in (0, 1):
                scale(w, mac_names(docs[w]), MAC_BAND[table][i])
        elif param == "shift-add energy":
            mac = _energy_of_mode(m2_doc, cmp.MPMA, "merged")
            key = f"energy.{_energy_of_mode(m2_doc, cmp.SAT, 'shift_add')}.value"
            direct[0][key] = scaled_value(cmp.energy_value(m2_doc, mac), (0.25, 1.0)[i])
        elif param == "SAT lane area":
            f = (0.25, 1.0)[i]
        elif param == "SAT size":
            sat_rows = (32, 128)[i]
            direct[0][f"engines.{cmp.SAT}.rows"] = sat_rows
            leak = m2_doc["engines"][cmp.SAT].get("leakage")
            scale(0, [leak] if leak else [], sat_rows / m2_doc["engines"][cmp.SAT]["rows"])
        elif param == "DRAM bandwidth":
            for w in (0, 1):
                direct[w]["dram.peak_bandwidth"] = scaled_value(
                    docs[w]["dram"]["peak_bandwidth"], (0.5, 2.0)[i]
                )
        elif param == "DRAM energy":
            for w in (0, 1):
                scale(w, dram_names(docs[w]), (0.5, 2.0)[i])
        elif param == "static power":
            for w in (0, 1):
                scale(w, static_names(docs[w]), STATIC_BAND[table][i])
        elif param == "buffer sizes":
            for w in (0, 1):
                for name, buf in docs[w]["buffers"].items():
                    direct[w][f"buffers.{name}.capacity"] = scaled_value(buf["capacity"], (0.5, 2.0)[i])
                    scale(w, [buf["leakage"]] if buf.get("leakage") else [], (0.5, 2.0)[i])
        else:
            raise ValueError(f"unknown sensitivity parameter {param!r}")
    rows = cmp.budget_mat_rows(m2_doc, base_doc, f, sat_rows)
    direct[1][f"engines.{cmp.MAT}.rows"] = rows
    leak = base_doc["engines"][cmp.MAT].get("leakage")
    scale(1, [leak] if leak else [], rows / base_doc["engines"][cmp.MAT]["rows"])
    out = []
    for w in (0, 1):
        sets = dict(direct[w])
        for name, k in fac[w].items():
            sets.update(energy_sets(docs[w], [name], k))
        out.append(sets)
    return out[0], out[1]


LABELS = {
    "MAC energy": {"fpga": ("1.25 pJ", "5 pJ"), "asic28": ("0.04 pJ", "0.56 pJ")},
    "shift-add energy": ("0.25x MAC", "1x MAC"),
    "SAT lane area": ("f 0.25", "f 1.0"),
    "SAT size": ("2048 lanes", "8192 lanes"),
    "DRAM bandwidth": ("9.6 GB/s", "38.4 GB/s"),
    "DRAM energy": ("x0.5", "x2"),
    "static power": {"fpga": ("1.25 W", "5 W"), "asic28": ("x0.2", "x5")},
    "buffer sizes": ("x0.5", "x2"),
}


def _labels(param: str, table: str) -> tuple[str, str]:
    value = LABELS[param]
    return value[table] if isinstance(value, dict) else value


def sensitivity(
    table: str, model: str, resolution: int, runner: Runner, sat_lane_area: float | None = None
) -> tuple[float, list[dict]]:
    """(base EDP saving, one dict per parameter with the saving at its low and high value)."""
    m2_arch, base_arch = cmp.TABLES[table]
    _, m2_doc = arch_document(m2_arch)
    _, base_doc = arch_document(base_arch)
    f = sat_lane_area if sat_lane_area is not None else cmp.default_sat_lane_area(m2_doc)
    pairs = {}
    base_rows = cmp.budget_mat_rows(m2_doc, base_doc, f)
    pairs["base"] = (
        design(f"sens_{table}_base_m2vit", m2_arch, cmp.M2VIT_POLICY),
        design(
            f"sens_{table}_base_baseline",
            base_arch,
            cmp.BASELINE_POLICY,
            rows_sets(base_doc, cmp.MAT, base_rows),
        ),
    )
    for j, param in enumerate(PARAMETERS):
        for side in ("low", "high"):
            m2_sets, base_sets = _sensitivity_sets(table, [(param, side)], m2_doc, base_doc, f)
            pairs[(param, side)] = (
                design(f"sens_{table}_{j}_{side}_m2vit", m2_arch, cmp.M2VIT_POLICY, m2_sets),
                design(f"sens_{table}_{j}_{side}_baseline", base_arch, cmp.BASELINE_POLICY, base_sets),
            )
    designs = [d for pair in pairs.values() for d in pair]
    results = runner.run(designs, [(model, resolution)], f"sensitivity_{table}_{model}_{resolution}")

    def saving(key) -> tuple[float, float, float]:
        m2, base = pairs[key]
        mine, theirs = results[(m2.label, model, resolution)], results[(base.label, model, resolution)]
        return 1.0 - mine["edp_js"] / theirs["edp_js"], mine["edp_js"], theirs["edp_js"]

    base_saving = saving("base")[0]
    entries = []
    for param in PARAMETERS:
        lo, hi = saving((param, "low")), saving((param, "high"))
        low_label, high_label = _labels(param, table)
        entries.append(
            {
                "table": table,
                "model": model,
                "resolution": resolution,
                "parameter": param,
                "low_label": low_label,
                "high_label": high_label,
                "saving_base": base_saving,
                "saving_low": lo[0],
                "saving_high": hi[0],
                "edp_m2vit_low_js": lo[1],
                "edp_baseline_low_js": lo[2],
                "edp_m2vit_high_js": hi[1],
                "edp_baseline_high_js": hi[2],
                "values": SENSITIVITY_DOC[param],
            }
        )
    return base_saving, entries


def favourable_corner(
    table: str, model: str, resolution: int, entries: Sequence[dict], runner: Runner, sat_lane_area=None
) -> dict:
    """Every parameter at the end of its band that gave M2-ViT the larger saving, all at once: how far
    the documented bands can move the saving together (one run per design)."""
    m2_arch, base_arch = cmp.TABLES[table]
    _, m2_doc = arch_document(m2_arch)
    _, base_doc = arch_document(base_arch)
    f = sat_lane_area if sat_lane_area is not None else cmp.default_sat_lane_area(m2_doc)
    choices = [(e["parameter"], "low" if e["saving_low"] >= e["saving_high"] else "high") for e in entries]
    m2_sets, base_sets = _sensitivity_sets(table, choices, m2_doc, base_doc, f)
    m2 = design(f"corner_{table}_m2vit", m2_arch, cmp.M2VIT_POLICY, m2_sets)
    base = design(f"corner_{table}_baseline", base_arch, cmp.BASELINE_POLICY, base_sets)
    results = runner.run([m2, base], [(model, resolution)], f"corner_{table}_{model}_{resolution}")
    mine, theirs = results[(m2.label, model, resolution)], results[(base.label, model, resolution)]
    labels = {e["parameter"]: (e["low_label"], e["high_label"]) for e in entries}
    return {
        "table": table,
        "model": model,
        "resolution": resolution,
        "choices": "; ".join(f"{p} {labels[p][0 if side == 'low' else 1]}" for p, side in choices),
        "edp_m2vit_js": mine["edp_js"],
        "edp_baseline_js": theirs["edp_js"],
        "edp_saving": 1.0 - mine["edp_js"] / theirs["edp_js"],
    }
