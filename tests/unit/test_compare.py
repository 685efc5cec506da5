"""`archsim compare`: the area model against hand-computed areas, the equal-budget and equal-area
sizing rules, the CSV's columns and rows, the saving from the rows' own numbers, the Shapley
attribution summing to the total, option errors (exit 2), and a small real compare (EfficientViT-B1
at 64 px, two calibration images, one table)."""

from __future__ import annotations

import csv
import io
import itertools
import math

import pytest

from archsim import area, compare, compare_study, flow
from archsim.cli import main

TINY_SETS = {"workload.calibration.samples": 2, "workload.calibration.batch_size": 2}


# -- the area model -------------------------------------------------------------------------------


def test_unit_areas_from_the_cited_components():
    u = area.DEFAULT_UNITS
    assert u.mult8x8 == pytest.approx(6350 * 64 / 1024)  # 396.875 um^2
    assert u.mult4x8 == pytest.approx(6350 * 32 / 1024)  # 198.4375
    assert u.tree_adder == pytest.approx(278 * 20 / 32)  # 173.75
    assert u.merge_adder == pytest.approx(278 * 12 / 32)  # 104.25
    assert u.sat_shifter == pytest.approx(250 * 8 * 2 / 160)  # 25.0
    assert u.sat_lane == pytest.approx(2 * 25 + 104.25 + 173.75)  # 328
    assert u.mac_lane == pytest.approx(396.875 + 173.75)  # 570.625
    assert u.mpma_lane == pytest.approx(2 * 198.4375 + 104.25 + 173.75)  # 674.875
    assert u.sram_per_kib == pytest.approx(8192 * 0.242 / 0.7)


def test_m2vit_area_by_hand():
    """m2vit.yaml: 1024 mergeable MPMA lanes, 4096 SAT lanes, 64 vector lanes, 256 + 512 KiB SRAM."""
    a = area.arch_area(flow.load_arch("m2vit"))
    assert a["mpma"] == pytest.approx(1024 * 674.875)  # 691,072 um^2
    assert a["sat"] == pytest.approx(4096 * 328.0)  # 1,343,488
    assert a["vector"] == pytest.approx(64 * (278 + 6350 * 256 / 1024 + 250))  # 64 x 2115.5
    assert a["weight_buffer"] + a["act_buffer"] == pytest.approx(768 * 8192 * 0.242 / 0.7)
    assert a["total"] == pytest.approx(691_072 + 1_343_488 + 135_392 + 768 * 8192 * 0.242 / 0.7)
    assert a["total"] == pytest.approx(4_344_998.217, abs=1e-2)


def test_baseline_area_by_hand():
    a = area.arch_area(flow.load_arch("uniform_int8"))
    assert a["mat"] == pytest.approx(88 * 32 * 570.625)  # plain 8x8 MAC lanes
    assert a["rpe"] == pytest.approx(16 * 16 * 570.625)
    assert area.multiplier_counts(flow.load_arch("uniform_int8")) == {"mat": 2816, "rpe": 256, "vector": 64}


@pytest.mark.parametrize("table", ["fpga", "asic28"])
def test_equal_area_within_one_mat_row(table):
    m2_name, base_name = compare.TABLES[table]
    m2, base = flow.load_arch(m2_name), flow.load_arch(base_name)
    rows = area.equal_area_mat_rows(m2, base)
    row = area.mat_row_area(base)
    target = area.arch_area(m2)["total"]

    def area_at(r):
        return area.arch_area(flow.load_arch(base_name, overrides=[_ov("engines.mat.rows", r)]))["total"]

    assert abs(area_at(rows) - target) <= row / 2 + 1e-6
    gap = abs(area_at(rows) - target)
    assert gap <= min(abs(area_at(rows - 1) - target), abs(area_at(rows + 1) - target))
    assert rows == 103  # (4,344,998 - (4,063,398 - 88 x 18,260)) / 18,260 = 103.4


def _ov(key, value):
    from archsim.overrides import Override

    return Override(key, value, "test")


def test_equal_budget_rows():
    _, m2 = compare.arch_document("m2vit")
    _, base = compare.arch_document("uniform_int8")
    assert compare.budget_mat_rows(m2, base, 0.5) == 88  # (1024 + 2048 - 256) / 32, the bundled value
    assert compare.budget_mat_rows(m2, base, 1.0) == 152  # (1024 + 4096 - 256) / 32
    assert compare.budget_mat_rows(m2, base, 0.25) == 56  # (1024 + 1024 - 256) / 32
    assert compare.budget_mat_rows(m2, base, 0.0) == 24  # equal DSPs: (1024 - 256) / 32


def test_resized_engine_leakage_scales_with_rows():
    _, base = compare.arch_document("uniform_int8_asic28")
    sets = compare.rows_sets(base, "mat", 103)
    assert sets["engines.mat.rows"] == 103
    assert sets["energy.mat_leak.value"] == f"{11.3 * 103 / 88:.6g} mW"
    _, fpga = compare.arch_document("uniform_int8")
    assert compare.rows_sets(fpga, "mat", 103) == {"engines.mat.rows": 103}  # device static: no entry


# -- attribution rule ------------------------------------------------------------------------------


def test_shapley_sums_to_the_difference_and_splits_interactions_evenly():
    players = ["a", "b", "c"]
    value = {"a": -0.3, "b": -0.1, "c": 0.05}

    def u(s):
        return sum(value[p] for p in s) + (0.2 if {"a", "b"} <= s else 0.0)  # an a-b interaction

    game = {frozenset(s): u(set(s)) for k in range(4) for s in itertools.combinations(players, k)}
    phi = compare_study.shapley(game, players)
    assert sum(phi.values()) == pytest.approx(game[frozenset(players)] - game[frozenset()], abs=1e-15)
    assert phi["a"] == pytest.approx(-0.3 + 0.1)
    assert phi["b"] == pytest.approx(-0.1 + 0.1)
    assert phi["c"] == pytest.approx(0.05)


def test_attribution_parts_sum_to_the_total():
    game = {}
    keys = [k for k, _ in compare_study.FACTORS]
    for k in range(len(keys) + 1):
        for s in itertools.combinations(keys, k):
            game[frozenset(s)] = -0.07 * len(s) + (0.01 * len(s) ** 2 if "static" in s else 0.0) + 0.05
    phi = compare_study.shapley(game, keys)
    att = compare_study.Attribution("fpga", "b1", 224, game[frozenset(keys)], phi, game[frozenset()], game)
    rows = att.rows()
    parts = [r["log_edp_ratio_part"] for r in rows if r["factor"] != "total"]
    assert math.fsum(parts) == pytest.approx(att.log_ratio, abs=1e-12)
    assert math.prod(r["edp_ratio_factor"] for r in rows if r["factor"] != "total") == pytest.approx(
        math.exp(att.log_ratio)
    )


def test_attribution_variants_are_the_documented_controls():
    _, m2 = compare.arch_document("m2vit_asic28")
    all_off = frozenset(k for k, _ in compare_study.FACTORS)
    d = compare_study._m2vit_variant("asic28", m2, all_off, 0.5)
    sets = d.set_dict
    assert d.policy == "m2q_dw8_apot8w"
    assert sets["engines.sat.rows"] == 32 and sets["engines.sat.modes.shift_add.weight_bits"] == 8
    assert sets["energy.apot_shift_add.value"] == "0.14 pJ"  # the asic28 table's mac_int8
    assert compare.energy_value(m2, "mac_int8") == "0.14 pJ"
    assert sets["energy.sat_leak.value"] == "0 mW" and sets["energy.ddr4_read.value"] == "0 pJ/B"
    assert compare_study._m2vit_variant("asic28", m2, frozenset(), 0.5).sets == ()
    flow.load_arch("m2vit_asic28", overrides=[_ov(k, v) for k, v in sets.items()])  # valid overrides


# -- options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--models", "b7"], "--models 'b7': unknown model"),
        (["--resolutions", "225"], "multiple of 32"),
        (["--resolutions", "x"], "not an integer"),
        (["--tables", "fpga,gpu"], "--tables 'gpu': unknown"),
        (["--budgets", ""], "comma-separated"),
        (["--sat-lane-area", "-0.5"], "must be a number >= 0"),
        (["--sat-lane-area", "nan"], "must be a number >= 0"),
        (["--study", "b1"], "MODEL@RESOLUTION"),
    ],
)
def test_bad_options_exit_2(argv, message, capsys):
    assert main(["compare", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_worker_count_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--workers", "0"])
    assert info.value.code == 2


# -- a small real compare --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    runner = compare.Runner(folder / "runs", workers=1, progress=False, workload_sets=TINY_SETS)
    rows = compare.compare_rows(["b1"], [64], ["fpga"], compare.BUDGETS, None, runner)
    return rows, runner


def test_small_compare_rows_and_csv(small):
    rows, _ = small
    assert [(r["model"], r["resolution"], r["budget"], r["table"]) for r in rows] == [
        ("b1", 64, "multiplier", "fpga"),
        ("b1", 64, "area", "fpga"),
    ]
    text = compare.csv_text(rows)
    table = list(csv.DictReader(io.StringIO(text)))
    required = {"model", "resolution", "budget", "table", "latency_s", "energy_j", "edp_js", "edp_saving"}
    assert required <= set(table[0])
    assert len({(r["model"], r["resolution"], r["budget"], r["table"]) for r in table}) == len(table) == 2
    for r in table:
        # the saving from the row's own numbers, exactly (floats written round-trip)
        assert float(r["edp_saving"]) == 1.0 - float(r["edp_js"]) / float(r["baseline_edp_js"])
        assert float(r["edp_js"]) == pytest.approx(float(r["latency_s"]) * float(r["energy_j"]), rel=1e-12)
        assert float(r["latency_s"]) > 0 and float(r["energy_j"]) > 0
    assert [int(r["baseline_mat_rows"]) for r in table] == [88, 103]
    assert "/" not in text and "tmp" not in text  # no paths in the CSV
    assert compare.csv_text(rows) == text  # deterministic


def test_small_compare_resumes_without_rerunning(small, tmp_path):
    rows, runner = small
    again = compare.compare_rows(["b1"], [64], ["fpga"], compare.BUDGETS, None, runner)
    assert compare.csv_text(again) == compare.csv_text(rows)


def test_averages_are_the_mean_of_the_rows(small):
    rows, _ = small
    avg = compare.averages(rows)
    assert avg[("fpga", "multiplier")] == rows[0]["edp_saving"]
    text = compare.format_table(rows)
    assert "average EDP saving" in text and "80 %" in text


def test_savings_figure_writes_png_and_svg(small, tmp_path):
    from archsim.report import compare_plots

    rows, _ = small
    paths = compare_plots.write(compare_plots.savings_figure(rows), tmp_path / "savings")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_sensitivity_sets_compose_factors():
    _, m2 = compare.arch_document("m2vit_asic28")
    _, base = compare.arch_document("uniform_int8_asic28")
    choices = [("SAT size", "high"), ("static power", "high"), ("SAT lane area", "high")]
    m2_sets, base_sets = compare_study._sensitivity_sets("asic28", choices, m2, base, 0.5)
    assert m2_sets["engines.sat.rows"] == 128
    assert m2_sets["energy.sat_leak.value"] == f"{8.2 * 2 * 5:.6g} mW"  # resize x static band, multiplied
    assert m2_sets["energy.mpma_leak.value"] == f"{4.1 * 5:.6g} mW"
    rows = (1024 + 1.0 * 128 * 64 - 256) // 32  # f = 1 with 8192 SAT lanes: 280
    assert base_sets["engines.mat.rows"] == rows
    assert base_sets["energy.mat_leak.value"] == f"{11.3 * rows / 88 * 5:.6g} mW"
    one_m2, one_base = compare_study._sensitivity_sets("asic28", [("DRAM bandwidth", "low")], m2, base, 0.5)
    assert one_m2 == {"dram.peak_bandwidth": "9.6 GB/s"}
    assert one_base == {
        "dram.peak_bandwidth": "9.6 GB/s",
        "engines.mat.rows": 88,
        "energy.mat_leak.value": "11.3 mW",
    }


class FakeRunner:
    """Stands in for compare.Runner: every design gets an EDP derived from its contents (no simulation)."""

    def __init__(self):
        self.calls = []

    def run(self, designs, pairs, name):
        import hashlib

        self.calls.append((name, list(designs)))
        out = {}
        for d in designs:
            digest = hashlib.sha256(repr((d.arch, d.policy, d.sets)).encode()).digest()
            edp = 1e-5 * (1 + digest[0] / 255)
            for m, r in pairs:
                out[(d.label, m, r)] = {"latency_s": 1e-3, "energy_j": edp / 1e-3, "edp_js": edp}
        return out


@pytest.mark.parametrize("table", ["fpga", "asic28"])
def test_attribution_plumbing_with_a_fake_runner(table):
    runner = FakeRunner()
    att = compare_study.attribution(table, "b1", 224, runner)
    ((name, designs),) = runner.calls
    assert len({d.label for d in designs}) == 64 + 4  # 2^6 M2-ViT variants, 4 baselines (static x dram)
    parts = [r["log_edp_ratio_part"] for r in att.rows() if r["factor"] != "total"]
    assert math.fsum(parts) == pytest.approx(att.log_ratio, abs=1e-12)
    m2 = next(d for d in designs if d.label.endswith("m2vit_none"))
    base = next(d for d in designs if d.label.endswith("base_none"))
    assert m2.policy == "m2q" and m2.sets == ()
    assert dict(base.sets)["engines.mat.rows"] == 88


@pytest.mark.parametrize("table", ["fpga", "asic28"])
def test_sensitivity_plumbing_with_a_fake_runner(table):
    runner = FakeRunner()
    base, entries = compare_study.sensitivity(table, "b1", 224, runner)
    assert [e["parameter"] for e in entries] == list(compare_study.PARAMETERS)
    for e in entries:
        assert 0 < abs(e["saving_low"]) + abs(e["saving_high"]) < 2
    corner = compare_study.favourable_corner(table, "b1", 224, entries, runner)
    assert corner["edp_saving"] == 1 - corner["edp_m2vit_js"] / corner["edp_baseline_js"]
    assert corner["choices"].count(";") == len(entries) - 1
