"""Sweeps, the graph cache and overrides as a user runs them, on a small real workload (EfficientViT-B0
at 64 px, two calibration images): its graphs are built once for the whole session (the session's cache)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest
from torchless import BLOCK_TORCH

from archsim import cache, flow
from archsim.cli import main

TINY = "model: efficientvit_b0\nresolution: 64\ncalibration: {samples: 2, batch_size: 2}\n"
RUN_CLI = BLOCK_TORCH + textwrap.dedent("""
    from archsim.cli import main

    code = main(sys.argv[1:])
    loaded = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
    assert not loaded, f"torch got imported: {loaded[:3]}"
    sys.exit(code)
""")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY)
    return folder / "tiny.yaml"


@pytest.fixture(scope="module")
def first_run(tiny, tmp_path_factory):
    """A run with its baseline: builds (or finds) both graphs of the tiny workload."""
    out = tmp_path_factory.mktemp("first") / "r.json"
    assert main(["run", str(tiny), "m2vit", "--out", str(out), "--top", "1"]) == 0
    return out


def test_a_cached_run_works_where_torch_cannot_be_imported(tiny, first_run, tmp_path):
    for policy in ("m2q", "uniform_w8a8"):
        assert cache.lookup(flow.load_workload(str(tiny), policy=policy)) is not None
    script = tmp_path / "run.py"
    script.write_text(RUN_CLI)
    out = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, str(script), "run", str(tiny), "m2vit", "--out", str(out), "--top", "1", "--timing"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == first_run.read_bytes()  # the same result, values and baseline included
    assert "graph (cache)" in done.stderr and "model+quantize+extract" not in done.stderr


def test_a_corrupted_entry_is_rebuilt_by_the_next_run(tiny, first_run, tmp_path, capsys):
    workload = flow.load_workload(str(tiny))
    path = cache.graph_file(workload)
    path.write_bytes(path.read_bytes()[:-50])
    out = tmp_path / "r.json"
    assert main(["run", str(tiny), "m2vit", "--no-baseline", "--out", str(out), "--top", "1"]) == 0
    err = capsys.readouterr().err
    assert "graph cache: entry" in err and "is corrupted" in err and "deleted, rebuilding it" in err
    assert cache.lookup(workload) is not None
    before = json.loads(first_run.read_text())
    before.pop("baseline"), before.pop("comparison")
    assert json.loads(out.read_text()) == before


def test_no_cache_builds_and_check_builds_the_model(tiny, first_run, tmp_path, monkeypatch):
    def no_lookup(*args, **kwargs):
        raise AssertionError("the cache was read")

    monkeypatch.setattr(cache, "lookup", no_lookup)
    out = tmp_path / "r.json"
    assert (
        main(["run", str(tiny), "m2vit", "--no-baseline", "--no-cache", "--out", str(out), "--top", "1"]) == 0
    )
    assert main(["run", str(tiny), "m2vit", "--no-baseline", "--check", "--top", "1"]) == 0


SWEEP = """\
workload: tiny.yaml
arch: m2vit
metrics: [latency_s, energy_j, edp_js, engines.*.utilization]
grid:
  engines.sat.rows: [16, -1, 32]
"""


def test_the_sweep_command_records_resumes_and_plots(tiny, first_run, capsys):
    folder = tiny.parent
    (folder / "s.yaml").write_text(SWEEP)
    out = folder / "out"
    argv = ["sweep", str(folder / "s.yaml"), "--out", str(out), "--no-progress"]
    assert main([*argv, "--workers", "2"]) == 1  # one point failed: the sweep says so by its exit code
    text = capsys.readouterr().out
    assert text.startswith("3 points: 2 ok, 1 failed, 0 not run; 3 run now, 0 finished before")
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "m2vit: sweep engines.sat.rows: -1: must be a positive integer"
    assert float(rows[2]["latency_s"]) <= float(rows[0]["latency_s"])  # a larger SAT is never slower
    assert main(argv) == 1
    assert capsys.readouterr().out.startswith(
        "3 points: 2 ok, 1 failed, 0 not run; 1 run now, 2 finished before"
    )
    assert main(["plot", str(out), "--format", "svg"]) == 0
    assert (out / "plots" / "pareto_latency_energy.svg").exists()
    assert (out / "plots" / "sensitivity_engines.sat.rows.svg").exists()


def test_a_bad_sweep_file_exits_2_with_every_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "workload: efficientvit_b0\narch: m2vit\nvalues: yes please\ngrid: {engines.sat.rows: 16}\n"
    )
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "2 problems in sweep" in err and "bad.yaml:3: values: 'yes please': must be true or false" in err
    assert "bad.yaml:4: grid.engines.sat.rows: 16: must be a non-empty list" in err and "Traceback" not in err
    bad.write_text("workload: efficientvit_b0\narch: m2vitt\ngrid: {engines.sat.rows: [16]}\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.yaml:2: arch: 'm2vitt': unknown name; did you mean 'm2vit'?" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written for a sweep that cannot start
