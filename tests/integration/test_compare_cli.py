"""`archsim compare` as a user runs it on a real workload (EfficientViT-B1 at 224, both tables, both
budgets), with --attribution and --sensitivity: the files, their rows, the attribution's sum and the
averages printed. Slow (whole-model graphs of four policies, ~150 simulations): marked slow."""

from __future__ import annotations

import csv
import math

import pytest

from archsim.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    argv = ["compare", "--models", "b1", "--resolutions", "224", "--out", str(folder), "--workers", "2"]
    assert main([*argv, "--attribution", "--sensitivity", "--no-progress"]) == 0
    return folder


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_compare_csv(out):
    rows = _read(out / "compare.csv")
    keys = [(r["model"], r["resolution"], r["budget"], r["table"]) for r in rows]
    assert sorted(keys) == sorted(
        ("b1", "224", b, t) for b in ("multiplier", "area") for t in ("fpga", "asic28")
    )
    for r in rows:
        assert float(r["edp_saving"]) == 1.0 - float(r["edp_js"]) / float(r["baseline_edp_js"])
        assert 0.0 < float(r["edp_saving"]) < 1.0  # M2-ViT wins, by less than everything
    for stem in ("savings", "attribution_fpga", "attribution_asic28", "tornado_fpga", "tornado_asic28"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.svg").stat().st_size > 0


def test_attribution_sums_to_the_measured_ratio(out):
    rows = _read(out / "attribution.csv")
    compare_rows = {r["table"]: r for r in _read(out / "compare.csv") if r["budget"] == "multiplier"}
    for table in ("fpga", "asic28"):
        mine = [r for r in rows if r["table"] == table]
        total = next(float(r["log_edp_ratio_part"]) for r in mine if r["factor"] == "total")
        parts = [float(r["log_edp_ratio_part"]) for r in mine if r["factor"] != "total"]
        assert math.fsum(parts) == pytest.approx(total, abs=1e-9)
        assert total == pytest.approx(math.log(float(compare_rows[table]["edp_ratio"])), abs=1e-9)


def test_sensitivity_rows(out):
    rows = _read(out / "sensitivity.csv")
    assert len(rows) == 2 * 8
    base = {r["table"]: float(r["saving_base"]) for r in rows}
    compare_rows = {r["table"]: r for r in _read(out / "compare.csv") if r["budget"] == "multiplier"}
    for table, saving in base.items():
        assert saving == pytest.approx(float(compare_rows[table]["edp_saving"]), abs=1e-12)
