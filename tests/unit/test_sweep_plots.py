"""Sweep figures (archsim/report/sweep_plots.py) and the plot command for sweep folders and result files."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import Counting, toy_graphs
from toy_fixtures import toy_build

from archsim import flow
from archsim.cli import main
from archsim.report.sweep_plots import (
    SweepFolderError,
    as_number,
    axes_of,
    pareto_front,
    plot_sweep,
    read_sweep,
    sensitivity_lines,
)
from archsim.report.writers import write_json
from archsim.sim import simulate
from archsim.sweep import execute, load_sweep

SWEEP = """\
workload: efficientvit_b0
arch: m2vit
derived: {budget: {expr: "1024 + 0.5 * 64 * arch.engines.sat.rows", unit: 8x8-multiplier equivalents}}
grid:
  engines.sat.rows: [16, 64]
  dram.peak_bandwidth: ["4.8 GB/s", "9.6 GB/s", "19.2 GB/s"]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    (root / "s.yaml").write_text(SWEEP)
    execute(load_sweep(root / "s.yaml"), root / "out", Counting(), graphs=toy_graphs())
    return root / "out"


def test_pareto_front_keeps_the_points_nothing_beats_on_both():
    points = [(1, 5), (2, 3), (3, 4), (4, 1), (2, 3.5), (4, 1)]
    assert pareto_front(points) == [0, 1, 3]  # (3, 4), (2, 3.5) and the repeat of (4, 1) are dominated
    assert pareto_front([]) == [] and pareto_front([(1, 1)]) == [0]


def test_cells_become_numbers_in_si_units():
    assert as_number("19.2 GB/s") == 19.2e9 and as_number("512 KiB") == 524288 and as_number("32") == 32
    assert as_number("m2vit") is None and as_number("") is None


def test_sensitivity_lines_are_one_per_setting_of_the_other_keys(folder):
    table = read_sweep(folder)
    assert axes_of(table) == ["engines.sat.rows", "dram.peak_bandwidth"] and table.derived == ["budget"]
    lines = sensitivity_lines(table.rows, "dram.peak_bandwidth", ["engines.sat.rows"], "latency_s")
    assert len(lines) == 2 and all(block == "all" for block, _ in lines)
    for _, line in lines:
        assert [v for v, _ in line] == ["4.8 GB/s", "9.6 GB/s", "19.2 GB/s"]  # by value, not as text
        latencies = [y for _, y in line]
        assert latencies == sorted(latencies, reverse=True)  # more bandwidth, never slower


def test_plot_sweep_writes_every_figure_deterministically(folder, tmp_path):
    paths = plot_sweep(folder, tmp_path / "a", ("png", "svg"))
    assert [p.name for p in paths] == [
        "pareto_latency_energy.png",
        "pareto_latency_energy.svg",
        "edp_vs_budget.png",
        "edp_vs_budget.svg",
        "sensitivity_engines.sat.rows.png",
        "sensitivity_engines.sat.rows.svg",
        "sensitivity_dram.peak_bandwidth.png",
        "sensitivity_dram.peak_bandwidth.svg",
    ]
    again = plot_sweep(folder, tmp_path / "b", ("png", "svg"))
    for path in again:  # identical tables give identical files (for the same formats: docs/plots.md)
        assert path.read_bytes() == (tmp_path / "a" / path.name).read_bytes()
    svg = (tmp_path / "a" / "pareto_latency_energy.svg").read_text()
    assert "Pareto front" in svg and "latency (µs)" in svg and "energy (µJ)" in svg


def test_plot_command_takes_a_sweep_folder_or_result_files(folder, tmp_path, capsys):
    assert main(["plot", str(folder), "--format", "svg"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"wrote {folder / 'plots' / 'pareto_latency_energy.svg'}" and len(out) == 4
    result = simulate(toy_build("m2q")[1], flow.load_arch("m2vit"), values=False)
    a = write_json(result.to_dict(), tmp_path / "a.json")
    b = write_json(result.to_dict(), tmp_path / "b.json")
    assert main(["plot", str(a), str(b), "--out", str(tmp_path / "figs"), "--format", "png"]) == 0
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert len(names) == 9 and any(n.startswith("compare_") for n in names)
    assert any(n.endswith("_gantt.png") for n in names) and any(n.endswith("_roofline.png") for n in names)


def test_plot_errors_exit_2(folder, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 2
    assert "not a sweep folder (no results.csv" in capsys.readouterr().err
    assert main(["plot", str(folder), str(tmp_path / "x.json")]) == 2
    assert "a sweep folder is plotted alone" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nothing": 1}))
    assert main(["plot", str(bad)]) == 2
    assert "not an archsim simulation result" in capsys.readouterr().err
    with pytest.raises(SweepFolderError):
        read_sweep(empty)
