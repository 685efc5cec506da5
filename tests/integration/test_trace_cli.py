"""`archsim run ... --trace / --trace-aggregate / --vcd / --plots` on EfficientViT-B0, as a user runs it."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from archsim.cli import main
from archsim.report.plots import _union as union  # the union of intervals the plots use
from archsim.report.vcd import high_intervals, read_vcd


@pytest.fixture(scope="module")
def traced_b0(tmp_path_factory):
    folder = tmp_path_factory.mktemp("traced")
    argv = ["run", "efficientvit_b0", "m2vit", "--no-baseline", "--out", str(folder / "r.json")]
    assert main(argv + ["--trace", str(folder / "t.json"), "--vcd", str(folder / "v.vcd")]) == 0
    assert main(argv[:-1] + [str(folder / "plain.json")]) == 0
    return folder


def _slices(events):
    """(process, thread) -> [(start ps, end ps, B event)] from balanced B/E pairs."""
    procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    open_, out = {}, defaultdict(list)
    for e in events:
        if e["ph"] == "B":
            open_[(e["pid"], e["tid"])] = e
        elif e["ph"] == "E":
            b = open_.pop((e["pid"], e["tid"]))
            out[(procs[e["pid"]], threads[(e["pid"], e["tid"])])].append(
                (int(b["ts"] * 10**6), int(e["ts"] * 10**6), b)
            )
    assert not open_
    return out


def test_result_is_byte_identical_with_and_without_trace_and_vcd(traced_b0):
    assert (traced_b0 / "r.json").read_bytes() == (traced_b0 / "plain.json").read_bytes()


def test_b0_trace_has_every_layer_and_engine_busy_time(traced_b0):
    result = json.loads((traced_b0 / "r.json").read_text())
    doc = json.loads((traced_b0 / "t.json").read_text(), parse_float=Decimal)
    slices = _slices(doc["traceEvents"])
    spans = sorted(b["name"] for (proc, thread), sl in slices.items() if proc == "top" for _, _, b in sl)
    assert spans == sorted(layer["name"] for layer in result["layers"])
    period = round(1e12 / result["clock_hz"])
    for name, engine in result["engines"].items():
        busy = sum(
            end - start for (proc, _), sl in slices.items() if proc == f"top.{name}" for start, end, _ in sl
        )
        assert busy == engine["busy_cycles"] * period
    ends = defaultdict(set)
    for e in doc["traceEvents"]:
        if e["ph"] in ("s", "f"):
            ends[e["id"]].add(e["ph"])
    assert all(v == {"s", "f"} for v in ends.values())
    assert len(ends) >= len(result["layers"]) - 1  # every layer but the first has a producer
    # the VCD's engine busy wires are the union of the trace's engine slices
    back = read_vcd(traced_b0 / "v.vcd")
    for name in result["engines"]:
        intervals = [(s, e) for (proc, _), sl in slices.items() if proc == f"top.{name}" for s, e, _ in sl]
        assert high_intervals(back[f"top.{name}.busy"]) == union(intervals)


def test_trace_aggregate_writes_one_slice_per_layer_and_engine(tmp_path):
    path = tmp_path / "agg.json"
    assert (
        main(
            [
                "run",
                "efficientvit_b0",
                "m2vit",
                "--no-baseline",
                "--no-functional",
                "--trace",
                str(path),
                "--trace-aggregate",
            ]
        )
        == 0
    )
    doc = json.loads(path.read_text(), parse_float=Decimal)
    assert doc["otherData"]["aggregate"] is True
    compute = [
        (proc, b["args"]["layer"], thread.split(" ")[0])
        for (proc, thread), sl in _slices(doc["traceEvents"]).items()
        for _, _, b in sl
        if b["cat"] == "compute"
    ]
    assert len(compute) == len(set(compute)) > 0


def test_trace_aggregate_without_trace_is_a_usage_error(capsys):
    assert main(["run", "efficientvit_b0", "m2vit", "--trace-aggregate"]) == 2
    assert "--trace-aggregate shapes the --trace file" in capsys.readouterr().err


def test_an_unwritable_trace_is_a_failed_run_with_the_option_named(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(
        [
            "run",
            "efficientvit_b0",
            "m2vit",
            "--no-baseline",
            "--no-functional",
            "--trace",
            str(blocker / "t.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "choose another --trace" in err and "Traceback" not in err


def test_plots_writes_the_runs_baseline_and_comparison_figures(tmp_path, capsys):
    folder = tmp_path / "figs"
    assert main(["run", "efficientvit_b0", "m2vit", "--no-functional", "--plots", str(folder)]) == 0
    pngs = sorted(folder.glob("*.png"))
    stems = {p.stem for p in pngs}
    for figure in ("gantt", "utilisation", "energy", "roofline"):
        assert f"efficientvit_b0_m2vit_m2q_{figure}" in stems
        assert f"efficientvit_b0_uniform_int8_uniform_w8a8_{figure}" in stems
    assert any(s.startswith("compare_efficientvit_b0_m2vit_m2q_vs_") for s in stems)
    for png in pngs:
        with Image.open(png) as im:
            assert im.width > 500 and im.height > 300
            colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is None or len(colours) > 10, f"{png.name} is blank"
    assert f"wrote {len(list(folder.iterdir()))} figures to {folder}" in capsys.readouterr().out
    assert all(Path(p).stat().st_size > 0 for p in folder.iterdir())
