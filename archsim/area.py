"""A small, exact area model: per-unit silicon areas and an architecture's estimated area.

Used by ``archsim compare`` to size the uniform baseline at *equal estimated area* with M2-ViT
(:func:`equal_area_mat_rows`) and to report areas; the simulator never reads it. Every per-unit
area below is built from cited component areas (Aladdin's 40 nm library, as reproduced in
../shared/reference/energy.md section 1.2) by a stated rule, or is marked ``[choice]``/``[I]``.
docs/modelling.md "Area model" has the table and the reasoning.

All areas are in um^2 at 40 nm (the node of the Aladdin library). Only *ratios* matter for the
equal-area rule, so no node scaling is applied; :data:`SCALE_40_TO_28` converts for display.

Units counted per architecture (:func:`arch_area`):

- ``mac_array`` engines: ``rows x lanes`` processing elements (PEs), ``lanes`` of the engine's
  widest-weight 8-bit mode. A PE is a plain 8x8 MAC lane (one 8x8 multiplier + one adder-tree
  adder), unless the engine also has a mode with 4-bit weights and twice the lanes (the MPMA's
  single mode): then a PE is a *mergeable* lane (two 4x8 multipliers + the adder merging them +
  the tree adder).
- ``shift_add_tree`` engines: ``rows x lanes`` SAT lanes.
- ``vector`` engines: ``rows x lanes`` vector lanes.
- buffers: capacity in KiB x the SRAM area per KiB.
DRAM, the interconnect and control are not counted ([choice]: they are the same on both designs
compared, so they cancel in the equal-area rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archsim.arch.spec import ArchSpec, EngineKind, EngineSpec

# -- cited component areas (40 nm, Aladdin library via energy.md section 1.2) -------------------------
ALADDIN_MULT32_UM2 = 6350.0  # [S] 32x32 multiplier, 1 stage, 1 ns (Aladdin multiplier.csv)
ALADDIN_ADD32_UM2 = 278.0  # [S] 32-bit adder
ALADDIN_SHIFT32_UM2 = 250.0  # [S] 32-bit shifter, 1 stage (5-bit shift amount)

# -- rules and choices -------------------------------------------------------------------------------
TREE_ADDER_BITS = 20  # [choice] one adder-tree (or accumulate) adder per lane, ~20 bits wide
MERGE_ADDER_BITS = 12  # [choice] adder that merges two 4x8 products (or a SAT lane's two shifts)
SAT_SHIFT_BITS = 2  # [S, m2vit.yaml] 4-bit APoT code: shifts of <= 3 positions, a 2-bit amount
VECTOR_MULT_BITS = 16  # [choice] requantize multiplier of a vector lane (16 x 16)
# [I] 6T high-density SRAM bitcell at 40 nm: 0.242 um^2 (TSMC N40 HD cell, as published by the foundry)
SRAM_BITCELL_UM2 = 0.242
SRAM_ARRAY_EFFICIENCY = 0.7  # [choice] bitcells / macro area (decoders, sense amps, I/O); 0.6-0.8 typical
SCALE_40_TO_28 = (28 / 40) ** 2  # [I] ideal area scaling, for display only (cancels in every ratio)


def multiplier_um2(a_bits: int, b_bits: int) -> float:
    """An a x b array multiplier: the 32x32 area x (a b) / (32 32) [I: area ~ product of the widths,
    the rule Aladdin applies to multiplier energy (quadratic in width)]."""
    return ALADDIN_MULT32_UM2 * a_bits * b_bits / (32 * 32)


def adder_um2(bits: int) -> float:
    """A ripple/carry adder: linear in width (Aladdin's adder scaling rule) [C]."""
    return ALADDIN_ADD32_UM2 * bits / 32


def shifter_um2(data_bits: int, shift_bits: int) -> float:
    """A barrel shifter: ~ width x log2(shift range) stages [C/I], from the 32-bit, 5-stage shifter."""
    return ALADDIN_SHIFT32_UM2 * data_bits * shift_bits / (32 * 5)


@dataclass(frozen=True)
class UnitAreas:
    """Per-unit areas, um^2 at 40 nm. Defaults from the rules above; every field can be replaced."""

    mult8x8: float = multiplier_um2(8, 8)  # 396.9 [C/I]
    mult4x8: float = multiplier_um2(4, 8)  # 198.4 [C/I]
    tree_adder: float = adder_um2(TREE_ADDER_BITS)  # 173.8 [C]
    merge_adder: float = adder_um2(MERGE_ADDER_BITS)  # 104.3 [C]
    sat_shifter: float = shifter_um2(8, SAT_SHIFT_BITS)  # 25.0 [C/I]
    vector_lane: float = (
        adder_um2(32) + multiplier_um2(VECTOR_MULT_BITS, VECTOR_MULT_BITS) + ALADDIN_SHIFT32_UM2
    )  # 2115.5 [choice]: int32 add + 16x16 requantize multiply + 32-bit shift
    sram_per_kib: float = 8192 * SRAM_BITCELL_UM2 / SRAM_ARRAY_EFFICIENCY  # 2832.1 [I]

    @property
    def mac_lane(self) -> float:
        """A plain 8x8 MAC lane: 8x8 multiplier + tree adder."""
        return self.mult8x8 + self.tree_adder

    @property
    def mpma_lane(self) -> float:
        """A mergeable lane: two 4x8 multipliers + their merge adder + tree adder."""
        return 2 * self.mult4x8 + self.merge_adder + self.tree_adder

    @property
    def sat_lane(self) -> float:
        """A SAT lane: two small barrel shifts + the adder of the two terms + tree adder."""
        return 2 * self.sat_shifter + self.merge_adder + self.tree_adder

    @property
    def sat_lane_in_mult8(self) -> float:
        """A SAT lane's area in plain 8x8 MAC lanes: the area model's own ``sat_lane_area_in_mult8``."""
        return self.sat_lane / self.mac_lane


DEFAULT_UNITS = UnitAreas()


def _pe_lanes(engine: EngineSpec) -> tuple[int, bool]:
    """(lanes per row of 8x8-equivalent PEs, whether they are mergeable 2 x 4x8 PEs)."""
    wide = [m for m in engine.modes if m.weight_bits >= 8]
    lanes = max((m.lanes for m in wide), default=max(m.lanes for m in engine.modes))
    mergeable = any(0 < m.weight_bits <= 4 and m.lanes >= 2 * lanes for m in engine.modes)
    return lanes, mergeable


def engine_area(engine: EngineSpec, units: UnitAreas = DEFAULT_UNITS) -> float:
    """An engine's estimated area, um^2 (module docstring for what is counted)."""
    if engine.kind == EngineKind.SHIFT_ADD_TREE:
        return engine.rows * max(m.lanes for m in engine.modes) * units.sat_lane
    if engine.kind == EngineKind.VECTOR:
        return engine.rows * max(m.lanes for m in engine.modes) * units.vector_lane
    lanes, mergeable = _pe_lanes(engine)
    return engine.rows * lanes * (units.mpma_lane if mergeable else units.mac_lane)


def arch_area(spec: ArchSpec, units: UnitAreas = DEFAULT_UNITS) -> dict[str, float]:
    """Estimated area per engine and buffer, and ``total``, um^2 at 40 nm."""
    out = {e.name: engine_area(e, units) for e in spec.engines}
    for buf in spec.buffers:
        out[buf.name] = buf.capacity_bytes / 1024 * units.sram_per_kib
    out["total"] = sum(out.values())
    return out


def mat_row_area(spec: ArchSpec, engine: str = "mat", units: UnitAreas = DEFAULT_UNITS) -> float:
    """The area of one row of ``engine`` (the baseline's MAT), um^2."""
    eng = next(e for e in spec.engines if e.name == engine)
    return engine_area(eng, units) / eng.rows


def equal_area_mat_rows(
    target: ArchSpec, baseline: ArchSpec, engine: str = "mat", units: UnitAreas = DEFAULT_UNITS
) -> int:
    """MAT rows that make ``baseline``'s estimated area closest to ``target``'s.

    Rule: rows = round((A_target - A_baseline_without_the_MAT) / A_MAT_row), at least 1; every other
    unit of the baseline keeps its size. The areas then differ by at most half a MAT row.
    """
    eng = next(e for e in baseline.engines if e.name == engine)
    rest = arch_area(baseline, units)["total"] - engine_area(eng, units)
    row = engine_area(eng, units) / eng.rows
    return max(1, math.floor((arch_area(target, units)["total"] - rest) / row + 0.5))


def equal_budget_mat_rows(
    mpma_mult8: int, sat_lanes: int, rpe_mult8: int, mat_lanes: int, sat_lane_area_in_mult8: float
) -> int:
    """MAT rows at equal 8x8-multiplier budget: (MPMA + f x SAT lanes - R-PE) / MAT lanes, rounded
    (docs/configs.md: 1024 + 0.5 x 4096 - 256 = 2816 = 88 x 32)."""
    budget = mpma_mult8 + sat_lane_area_in_mult8 * sat_lanes - rpe_mult8
    return max(1, math.floor(budget / mat_lanes + 0.5))


def multiplier_counts(spec: ArchSpec) -> dict[str, int]:
    """Per engine: its PEs (mac_array), SAT lanes or vector lanes."""
    out = {}
    for e in spec.engines:
        if e.kind == EngineKind.MAC_ARRAY:
            out[e.name] = e.rows * _pe_lanes(e)[0]
        else:
            out[e.name] = e.rows * max(m.lanes for m in e.modes)
    return out
