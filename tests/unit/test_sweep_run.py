"""Running sweeps: every point recorded as it finishes, failures recorded and the rest going on, resume,
interruption, one graph per workload, and the same rows from this process, a local pool and Dask."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import KILL_ENV, Counting, dying, toy_graphs
from toy_fixtures import toy_build

from archsim import flow, overrides, sweep
from archsim.sim import simulate
from archsim.sweep import LocalPool, execute, load_sweep, read_table

BASE = "workload: efficientvit_b0\narch: m2vit\n"
GRID = (
    BASE
    + """\
metrics: [latency_s, energy_j, edp_js, engines.*.utilization, dram.bytes_read]
derived:
  budget: {expr: "arch.engines.mpma.rows * arch.engines.mpma.modes.merged.lanes
    + arch.params.sat_lane_area_in_mult8 * arch.engines.sat.rows * arch.engines.sat.modes.shift_add.lanes",
    unit: 8x8-multiplier equivalents}
  gbps: {expr: arch.dram.peak_bandwidth / 1e9, unit: GB/s}
grid:
  engines.sat.rows: [16, 32]
  dram.peak_bandwidth: ["4.8 GB/s", "19.2 GB/s"]
"""
)


def _sweep(tmp_path, text=GRID, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_sweep(path)


def _rows(folder):
    import csv

    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_point_is_recorded_with_its_metrics_and_derived_columns(tmp_path):
    out = tmp_path / "out"
    outcome = execute(_sweep(tmp_path), out, Counting(), graphs=toy_graphs())
    assert (outcome.points, outcome.ran, outcome.skipped, outcome.failed) == (4, 4, 0, [])
    rows = _rows(out)
    assert [(int(r["engines.sat.rows"]), r["dram.peak_bandwidth"]) for r in rows] == [
        (16, "4.8 GB/s"),
        (16, "19.2 GB/s"),
        (32, "4.8 GB/s"),
        (32, "19.2 GB/s"),
    ]
    graph = toy_build("m2q")[1]
    for row in rows:
        assert row["status"] == "ok" and row["error"] == ""
        assert float(row["budget"]) == 32 * 32 + 0.5 * int(row["engines.sat.rows"]) * 64
        assert float(row["gbps"]) == pytest.approx(float(row["dram.peak_bandwidth"].split()[0]))
        record = json.loads((out / "points" / f"{row['hash']}.json").read_text())
        assert record["params"]["engines.sat.rows"] == int(row["engines.sat.rows"])
        result = record["result"]
        assert result["arch"]["overrides"] == {
            "engines.sat.rows": int(row["engines.sat.rows"]),
            "dram.peak_bandwidth": row["dram.peak_bandwidth"],
        }
        assert float(row["latency_s"]) == result["latency_s"] and float(row["edp_js"]) == result["edp_js"]
        assert float(row["engines.sat.utilization"]) == result["engines"]["sat"]["utilization"]
        assert int(row["dram.bytes_read"]) == result["dram"]["bytes_read"]
        # the same numbers as simulating the overridden architecture directly
        spec = flow.load_arch(
            "m2vit",
            (),
            [
                overrides.parse_set(f"engines.sat.rows={row['engines.sat.rows']}"),
                overrides.parse_set(f"dram.peak_bandwidth={row['dram.peak_bandwidth']}"),
            ],
        )
        assert simulate(graph, spec, values=False).latency_cycles == result["latency_cycles"]
    # more DRAM bandwidth never makes a point slower (a modelling invariant, docs/modelling.md)
    assert float(rows[1]["latency_s"]) <= float(rows[0]["latency_s"])
    assert float(rows[3]["latency_s"]) <= float(rows[2]["latency_s"])
    units = json.loads((out / "columns.json").read_text())
    assert units["latency_s"] == "s" and units["budget"] == "8x8-multiplier equivalents"
    assert (
        units["engines.mpma.utilization"] == "busy cycles / total cycles" and units["dram.bytes_read"] == "B"
    )
    assert (out / "sweep.yaml").read_text() == GRID


def test_a_point_with_an_invalid_value_is_recorded_as_failed_and_the_others_complete(tmp_path):
    s = _sweep(tmp_path, BASE + "grid: {engines.sat.rows: [16, 0, 32], dram.burst: [64 B]}\n")
    out = tmp_path / "out"
    outcome = execute(s, out, Counting(), graphs=toy_graphs())
    assert outcome.failed == [1] and outcome.ran == 3
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "m2vit: sweep engines.sat.rows: 0: must be a positive integer"
    assert rows[1]["latency_s"] == "" and rows[0]["latency_s"] != ""
    record = json.loads((out / "points" / f"{rows[1]['hash']}.json").read_text())
    assert record["status"] == "failed" and record["result"] is None
    assert "failed points: 1 (why: the error column" in outcome.summary()


def test_a_failing_simulation_and_a_failing_formula_are_recorded(tmp_path):
    s = _sweep(
        tmp_path,
        BASE + "derived: {x: {expr: arch.engines.nope.rows, unit: rows}}\ngrid: {engines.sat.rows: [16]}\n",
    )
    out = tmp_path / "out"
    assert execute(s, out, Counting(), graphs=toy_graphs()).failed == [0]
    (row,) = _rows(out)
    assert row["error"] == "derived x: arch.engines has no 'nope' (it has: mpma, sat, vector)"
    assert row["latency_s"] != ""  # the simulation itself finished and is kept

    s = _sweep(tmp_path, BASE + "grid: {engines.sat.modes.shift_add.op_kinds: [[linear]]}\n")
    execute(s, tmp_path / "out2", Counting(), graphs=toy_graphs())
    (row,) = _rows(tmp_path / "out2")
    assert row["status"] == "failed" and "cannot run workload" in row["error"]
    assert row["error"].startswith("m2vit: architecture 'm2vit' cannot run")  # named as the sweep names it


def test_resume_skips_finished_points(tmp_path):
    s, out = _sweep(tmp_path), tmp_path / "out"
    first = Counting()
    outcome = execute(s, out, first, graphs=toy_graphs(), limit=3)
    assert len(first.ran) == 3 and outcome.left == 1 and len(_rows(out)) == 3
    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    second = Counting()
    outcome = execute(s, out, second, graphs=toy_graphs())
    assert len(second.ran) == 1 and second.ran[0] not in first.ran
    assert (outcome.ran, outcome.skipped, outcome.left) == (1, 3, 0)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir() if p.name in before} == before
    assert [int(r["point"]) for r in _rows(out)] == [0, 1, 2, 3]
    third = Counting()
    assert execute(s, out, third, graphs=toy_graphs()).skipped == 4 and third.ran == []


def test_an_interrupted_sweep_keeps_its_finished_points_and_goes_on_when_run_again(tmp_path, capsys):
    s, out = _sweep(tmp_path), tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        execute(s, out, Counting(stop=2), graphs=toy_graphs())
    assert "interrupted: 2 of 4 points are recorded" in capsys.readouterr().err
    assert len(list((out / "points").iterdir())) == 2 and len(_rows(out)) == 2
    again = Counting()
    assert execute(s, out, again, graphs=toy_graphs()).skipped == 2 and len(again.ran) == 2
    assert len(_rows(out)) == 4


def test_failed_points_run_again_and_each_workload_is_built_once(tmp_path):
    s = _sweep(tmp_path, BASE + "grid: {workload.seed: [0, 1], engines.sat.rows: [16, 32]}\n")
    out = tmp_path / "out"

    def broken(workload):
        raise RuntimeError("no graph today")

    assert execute(s, out, Counting(), graphs=broken).failed == [0, 1, 2, 3]
    assert {r["error"] for r in _rows(out)} == {"RuntimeError: no graph today"}
    calls = []
    assert execute(s, out, Counting(), graphs=toy_graphs(calls)).failed == []
    assert sorted(w.seed for w in calls) == [0, 1]  # two workloads, two graphs, four points


def test_the_api_returns_the_table_as_a_dataframe(tmp_path):
    df = sweep.run(
        tmp_path / "s.yaml" if (tmp_path / "s.yaml").write_text(GRID) else None,
        tmp_path / "out",
        workers=1,
        graphs=toy_graphs(),
    )
    assert list(df["point"]) == [0, 1, 2, 3] and df["latency_s"].dtype == float
    assert df.equals(read_table(tmp_path / "out"))
    assert list(df.columns[:9]) == [
        "point",
        "block",
        "hash",
        "status",
        "error",
        "workload",
        "arch",
        "engines.sat.rows",
        "dram.peak_bandwidth",
    ]


def test_a_local_pool_and_a_dask_local_cluster_give_the_rows_of_this_process(tmp_path):
    s = _sweep(tmp_path)
    execute(s, tmp_path / "here", Counting(), graphs=toy_graphs())
    execute(s, tmp_path / "pool", LocalPool(2), graphs=toy_graphs())
    execute(s, tmp_path / "dask", sweep.DaskExecutor(local=2), graphs=toy_graphs())
    table = (tmp_path / "here" / "results.csv").read_bytes()
    assert (tmp_path / "pool" / "results.csv").read_bytes() == table
    assert (tmp_path / "dask" / "results.csv").read_bytes() == table
    for other in ("pool", "dask"):
        for point in (tmp_path / "here" / "points").iterdir():
            assert (tmp_path / other / "points" / point.name).read_bytes() == point.read_bytes()


def test_an_existing_dask_scheduler_is_reached_by_its_address(tmp_path):
    from distributed import LocalCluster

    s = _sweep(tmp_path, BASE + "grid: {engines.sat.rows: [16, 32]}\n")
    execute(s, tmp_path / "here", Counting(), graphs=toy_graphs())
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        executor = sweep.executor_for(scheduler=cluster.scheduler_address)
        assert executor.name == f"Dask scheduler {cluster.scheduler_address}"
        execute(s, tmp_path / "there", executor, graphs=toy_graphs())
    assert (tmp_path / "there" / "results.csv").read_bytes() == (
        tmp_path / "here" / "results.csv"
    ).read_bytes()


def test_a_killed_worker_loses_only_the_point_it_ran(tmp_path, monkeypatch):
    s = _sweep(tmp_path)
    target = sweep.plan(s)[2].hash
    monkeypatch.setenv(KILL_ENV, f"{target[:16]}:{tmp_path}:1")
    outcome = execute(s, tmp_path / "out", LocalPool(2, function=dying), graphs=toy_graphs())
    assert outcome.failed == [] and len(list(tmp_path.glob("kill-*"))) == 1  # died once, then ran
    monkeypatch.setenv(KILL_ENV, f"{target[:16]}:{tmp_path}:99")
    outcome = execute(s, tmp_path / "out2", LocalPool(2, function=dying), graphs=toy_graphs())
    assert outcome.failed == [2]
    row = _rows(tmp_path / "out2")[2]
    assert (
        row["error"] == "its worker process died each of the 3 times it ran alone (killed, or out of memory)"
    )
    assert (
        len(list(tmp_path.glob("kill-*"))) == 1 + 1 + 3
    )  # the first test's, in the pool, then alone 3 times
