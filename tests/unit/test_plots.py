"""Figures of results (archsim.report.plots): the numbers behind them and the files, drawn headless."""

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from sim_fixtures import chain, depthwise, eltwise, m2vit_spec, pointwise

from archsim.graph.ir import OpKind
from archsim.report import plots
from archsim.sim import simulate

SVG_NS = "{http://www.w3.org/2000/svg}"


def _layer(name, kind, engines, start, end, macs=0, elements=100, read=0, write=0, energy=1e-6, **extra):
    return {
        "name": name,
        "kind": kind,
        "engines": engines,
        "mode": "m",
        "start_cycle": start,
        "end_cycle": end,
        "macs": macs,
        "elements": elements,
        "dram_read_bytes": read,
        "dram_write_bytes": write,
        "buffer_bytes": 0,
        "energy_j": energy,
        "energy_breakdown_j": {},
        **extra,
    }


def hand_result(layers=None, arch="hand", policy="m2q"):
    """100 MHz (10 ns cycles), 1000 cycles = 10 us; MPMA 1024, SAT 512, vector 64 ops/cycle; DRAM 10 GB/s."""
    if layers is None:
        layers = [
            _layer("conv", "conv_pointwise", ["mpma"], 0, 400, macs=409_600, read=4096, energy=2e-6),
            _layer("split", "conv_pointwise", ["mpma", "sat"], 400, 800, macs=800_000, energy=3e-6),
            _layer("act", "add", ["vector"], 800, 1000, elements=6400, read=1024, write=256, energy=0.5e-6),
        ]
    return {
        "workload": {"name": "tiny", "model": "tiny", "resolution": 32, "batch": 1, "policy": policy},
        "arch": {"name": arch, "clock_hz": 100e6},
        "clock_hz": 100e6,
        "latency_cycles": 1000,
        "latency_s": 1e-5,
        "energy_j": 6.5e-6,
        "edp_js": 6.5e-11,
        "energy_breakdown_j": {"mpma": 2e-6, "sat": 1e-6, "vector": 0.5e-6, "dram": 2e-6, "static": 1e-6},
        "engines": {
            "mpma": {
                "name": "top.mpma",
                "busy_cycles": 800,
                "utilization": 0.8,
                "macs": 1,
                "peak_ops_per_cycle": 1024,
                "achieved_ops_per_cycle": 1.0,
            },
            "sat": {
                "name": "top.sat",
                "busy_cycles": 400,
                "utilization": 0.4,
                "macs": 1,
                "peak_ops_per_cycle": 512,
                "achieved_ops_per_cycle": 1.0,
            },
            "vector": {
                "name": "top.vector",
                "busy_cycles": 200,
                "utilization": 0.2,
                "macs": 1,
                "peak_ops_per_cycle": 64,
                "achieved_ops_per_cycle": 1.0,
            },
        },
        "layers": layers,
        "dram": {
            "bytes_read": 5120,
            "bytes_written": 256,
            "peak_bandwidth_Bps": 10e9,
            "achieved_bandwidth_Bps": 1.0,
        },
    }


@pytest.fixture(scope="module")
def sim_result():
    """A real simulation: a mixed (APoT/uniform) pointwise split over MPMA+SAT, a depthwise, an add."""
    mask = np.array([i % 4 != 0 for i in range(64)])
    graph = chain(
        pointwise("pw", 64, 64, 14, apot_mask=mask),
        depthwise("dw", 64, 14),
        eltwise("act", OpKind.ACTIVATION, (1, 64, 14, 14)),
    )
    main = simulate(graph, m2vit_spec(), workload={"name": "tiny", "policy": "m2q"}).to_dict()
    uniform = chain(pointwise("pw", 64, 64, 14), depthwise("dw", 64, 14), pointwise("extra", 64, 64, 14))
    main["baseline"] = simulate(
        uniform, m2vit_spec(), workload={"name": "tiny", "policy": "uniform"}
    ).to_dict()
    return json.loads(json.dumps(main))  # as read back from `archsim run --out`


# -- the numbers behind the figures ---------------------------------------------------------------


def test_gantt_bars_put_a_split_layer_on_each_engine_and_overlaps_on_lanes():
    bars = plots.gantt_bars(hand_result())
    assert [(b.layer, b.engine, b.start_cycle, b.end_cycle, b.lane) for b in bars] == [
        ("conv", "mpma", 0, 400, 0),
        ("split", "mpma", 400, 800, 0),
        ("split", "sat", 400, 800, 0),
        ("act", "vector", 800, 1000, 0),
    ]
    overlapping = hand_result(
        [
            _layer("a", "conv_pointwise", ["mpma"], 0, 500, macs=1),
            _layer("b", "conv_pointwise", ["mpma"], 100, 300, macs=1),
            _layer("c", "conv_pointwise", ["mpma"], 499, 600, macs=1),
        ]
    )  # 1 cycle: rounding
    assert [(b.layer, b.lane) for b in plots.gantt_bars(overlapping)] == [("a", 0), ("b", 1), ("c", 0)]


def test_busy_cycles_default_to_the_whole_interval_and_use_engine_busy_cycles_when_recorded():
    plain = plots.gantt_bars(hand_result())
    assert {(b.layer, b.engine): b.busy_cycles for b in plain}[("split", "sat")] == 400
    layers = hand_result()["layers"]
    layers[1]["engine_busy_cycles"] = {"mpma": 100, "sat": 300}
    recorded = plots.gantt_bars(hand_result(layers))
    assert {(b.layer, b.engine): b.busy_cycles for b in recorded} == {
        ("conv", "mpma"): 400,
        ("split", "mpma"): 100,
        ("split", "sat"): 300,
        ("act", "vector"): 200,
    }


def test_utilisation_bins_whole_intervals_union_and_spread_busy_cycles():
    edges, util = plots.utilisation_bins(hand_result(), bins=10)
    assert list(edges) == [100.0 * i for i in range(11)]
    assert list(util["mpma"]) == [1.0] * 8 + [0.0] * 2
    assert list(util["sat"]) == [0.0] * 4 + [1.0] * 4 + [0.0] * 2
    assert list(util["vector"]) == [0.0] * 8 + [1.0] * 2

    layers = hand_result()["layers"]
    layers[1]["engine_busy_cycles"] = {"mpma": 200, "sat": 100}  # spread evenly over [400, 800)
    _, util = plots.utilisation_bins(hand_result(layers), bins=10)
    assert util["mpma"][4:8] == pytest.approx([0.5] * 4)
    assert util["sat"][4:8] == pytest.approx([0.25] * 4)

    # two overlapping layers without busy records count once; half-covered bins are half busy
    both = hand_result(
        [
            _layer("a", "conv_pointwise", ["mpma"], 0, 450, macs=1),
            _layer("b", "conv_pointwise", ["mpma"], 100, 250, macs=1),
        ]
    )
    _, util = plots.utilisation_bins(both, bins=10)
    assert list(util["mpma"]) == pytest.approx([1, 1, 1, 1, 0.5, 0, 0, 0, 0, 0])
    assert list(util["sat"]) == [0.0] * 10
    with pytest.raises(ValueError, match="bins"):
        plots.utilisation_bins(hand_result(), bins=0)


def test_energy_by_component_and_by_kind_with_the_static_remainder():
    assert plots.energy_by_component(hand_result()) == [
        ("dram", 2e-6),
        ("mpma", 2e-6),
        ("sat", 1e-6),
        ("static", 1e-6),
        ("vector", 0.5e-6),
    ]
    by_kind = plots.energy_by_kind(hand_result())
    assert [k for k, _ in by_kind] == ["conv_pointwise", "add", plots.STATIC_LABEL]
    assert [v for _, v in by_kind] == pytest.approx([5e-6, 0.5e-6, 1e-6])
    assert sum(v for _, v in by_kind) == pytest.approx(hand_result()["energy_j"])


def test_roofline_points_intensity_throughput_and_vector_ops():
    points, skipped = plots.roofline_points(hand_result())
    assert skipped == []
    conv, split, act = points
    assert conv.intensity == pytest.approx(100.0)  # 409600 MACs / 4096 B
    assert conv.ops_per_s == pytest.approx(409_600 / 4e-6)  # 400 cycles at 100 MHz
    assert math.isinf(split.intensity) and split.engines == ("mpma", "sat")
    assert act.vector and act.ops == 6400 and act.intensity == pytest.approx(6400 / 1280)
    assert plots.engine_peaks_ops_per_s(hand_result()) == {"mpma": 1024e8, "sat": 512e8, "vector": 64e8}
    empty = hand_result([_layer("none", "conv_pointwise", ["mpma"], 0, 10, macs=0), *hand_result()["layers"]])
    assert plots.roofline_points(empty)[1] == ["none"]


def test_match_layers_by_name_and_latency_in_seconds():
    a = hand_result()
    b = hand_result(
        [
            _layer("conv", "conv_pointwise", ["mat"], 0, 200, macs=1),
            _layer("new", "conv_pointwise", ["mat"], 200, 300, macs=1),
        ]
    )
    b["clock_hz"] = 200e6  # latencies compare in seconds, not cycles
    pairs = plots.match_layers(a, b)
    assert [(p.name, p.seconds_a, p.seconds_b) for p in pairs] == [
        ("conv", pytest.approx(4e-6), pytest.approx(1e-6)),
        ("split", pytest.approx(4e-6), None),
        ("act", pytest.approx(2e-6), None),
        ("new", None, pytest.approx(0.5e-6)),
    ]


def test_engine_colours_are_fixed_for_bundled_engines_and_distinct_for_others():
    a, b = plots.parse_result(hand_result(), "a"), plots.parse_result(hand_result(), "b")
    b.engines["zeta"] = b.engines["mpma"]
    b.engines["alpha"] = b.engines["sat"]
    alone, together = plots.engine_colours([a]), plots.engine_colours([a, b])
    assert alone["mpma"] == together["mpma"] == plots.ENGINE_COLOURS["mpma"]
    assert together["alpha"] == plots.SPARE_COLOURS[0] and together["zeta"] == plots.SPARE_COLOURS[1]
    assert len(set(together.values())) == len(together)


# -- input checking ------------------------------------------------------------------------------


def test_load_result_reads_a_result_and_names_the_file_and_problem_otherwise(tmp_path):
    good = tmp_path / "r.json"
    good.write_text(json.dumps(hand_result()))
    assert plots.load_result(good)["latency_cycles"] == 1000

    def error(text, name="bad.json"):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(plots.ResultFileError) as e:
            plots.load_result(path)
        assert str(e.value).startswith(f"{path}: ")
        return str(e.value)

    assert "no such file" in str(
        pytest.raises(plots.ResultFileError, plots.load_result, tmp_path / "none.json").value
    )
    assert "not JSON" in error("{\n  'layers': 1}") and "line 2 column 3" in error("{\n  'layers': 1}")
    assert "expected a JSON object" in error("[1, 2]")
    assert "not an archsim simulation result" in error(json.dumps({"fp32": {}, "layers_report": []}))
    broken = hand_result()
    del broken["layers"][1]["start_cycle"]
    broken["engines"]["sat"]["peak_ops_per_cycle"] = -1
    message = error(json.dumps(broken))
    assert "layers.1.start_cycle: Field required" in message and "engines.sat.peak_ops_per_cycle" in message
    backwards = hand_result()
    backwards["layers"][0]["end_cycle"] = 0
    backwards["layers"][0]["start_cycle"] = 5
    assert "layers.0 (conv): end_cycle 0 is before start_cycle 5" in error(json.dumps(backwards))
    with_bad_baseline = hand_result()
    with_bad_baseline["baseline"] = {"layers": []}
    assert "baseline: not a valid archsim simulation result" in error(json.dumps(with_bad_baseline))
    # the CLI prints ValueErrors as one line without a traceback
    assert issubclass(plots.ResultFileError, ValueError)


def test_import_does_not_pull_in_matplotlib():
    code = (
        "import sys, archsim, archsim.report, archsim.report.plots, archsim.report.result, "
        "archsim.report.summary; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- files ---------------------------------------------------------------------------------------


def _png_check(path, colour=None):
    """Decode: paper size at 300 dpi, mostly white background but a real share of ink; optional colour."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        rgb = np.asarray(im.convert("RGB")).astype(int)
    h, w, _ = rgb.shape
    assert w >= 1500 and h >= 600  # >= 5 x 2 inches at 300 dpi
    ink = np.any(rgb < 240, axis=2).mean()
    assert 0.01 < ink < 0.9
    if colour is not None:
        target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert np.sum(np.all(np.abs(rgb - target) <= 3, axis=2)) > 500


def _svg_texts(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def test_plot_results_one_result_writes_four_figures_as_png_and_svg(tmp_path):
    paths = plots.plot_results([hand_result()], tmp_path / "out")
    names = [p.name for p in paths]
    stem = "tiny_hand_m2q"
    assert names == [
        f"{stem}_{what}.{fmt}"
        for what in ("gantt", "utilisation", "energy", "roofline")
        for fmt in ("png", "svg")
    ]
    for p in paths:
        assert p.stat().st_size > 5000
        if p.suffix == ".png":
            _png_check(p, plots.ENGINE_COLOURS["mpma"] if "gantt" in p.name else None)
    gantt = _svg_texts(tmp_path / "out" / f"{stem}_gantt.svg")
    assert "time (µs)" in gantt and "engine" in gantt
    assert any(t.startswith("Layers on engines: tiny 32 px on hand, policy m2q") for t in gantt)
    assert any("split  4 µs (mpma+sat)" in t for t in gantt)  # the longest layers' key
    assert "busy share of each bin (%)" in _svg_texts(tmp_path / "out" / f"{stem}_utilisation.svg")
    energy = _svg_texts(tmp_path / "out" / f"{stem}_energy.svg")
    assert "energy (µJ)" in energy and "by op kind" in energy and plots.STATIC_LABEL in energy
    roof = _svg_texts(tmp_path / "out" / f"{stem}_roofline.svg")
    assert "arithmetic intensity (ops per DRAM byte)" in roof and "achieved throughput (Gop/s)" in roof
    assert "∞" in roof and "DRAM ceiling 10 GB/s" in roof and "mpma+sat peak 153.6 Gop/s" in roof


def test_every_text_is_at_least_9_points_and_titles_name_the_run():
    view = plots.parse_result(hand_result(), "hand")
    figures = [
        plots.gantt_figure(view),
        plots.utilisation_figure(view),
        plots.energy_figure(view),
        plots.roofline_figure(view),
        plots.comparison_figure(view, view),
    ]
    from matplotlib.text import Text

    for fig in figures:
        fig.canvas.draw()
        texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
        assert texts and min(t.get_fontsize() for t in texts) >= plots.MIN_FONT_PT
        assert any("tiny" in t.get_text() and "hand" in t.get_text() for t in texts)


def test_roofline_of_layers_that_move_no_dram_bytes_uses_the_infinity_panel_only():
    layers = hand_result()["layers"]
    for layer in layers:
        layer["dram_read_bytes"] = layer["dram_write_bytes"] = 0
    fig = plots.roofline_figure(hand_result(layers))
    main, infinity = fig.axes[:2]
    assert [t.get_text() for t in infinity.get_xticklabels()] == ["∞"]
    markers = [line for line in infinity.get_lines() if line.get_marker() == "o"]
    assert len(markers) == 3 and not [line for line in main.get_lines() if line.get_marker() == "o"]


def test_gantt_bars_share_the_engine_colours_with_the_roofline():
    from matplotlib.colors import to_hex

    view = plots.parse_result(hand_result(), "hand")
    gantt = plots.gantt_figure(view)
    filled = {to_hex(p.get_facecolor()) for p in gantt.axes[0].patches if p.get_facecolor()[3] == 1.0}
    assert {plots.ENGINE_COLOURS[e] for e in ("mpma", "sat", "vector")} <= filled
    roof = plots.roofline_figure(view)
    faces = {
        to_hex(line.get_markerfacecolor())
        for ax in roof.axes
        for line in ax.get_lines()
        if line.get_marker() == "o" and line.get_markerfacecolor() != "none"
    }
    assert plots.ENGINE_COLOURS["mpma"] in faces


def test_comparison_shows_layers_present_in_only_one_result():
    a = hand_result()
    b = hand_result(
        [
            _layer("conv", "conv_pointwise", ["mat"], 0, 200, macs=1),
            _layer("new", "conv_pointwise", ["mat"], 200, 300, macs=1),
        ],
        arch="base",
        policy="w8",
    )
    fig = plots.comparison_figure(a, b)
    from matplotlib.text import Text

    texts = [t.get_text() for t in fig.findobj(Text)]
    assert texts.count(" only in A") == 2  # split and act: no B bar
    assert texts.count(" only in B") == 1  # new: no A bar
    assert "2.00" in texts  # conv: 4 us / 2 us
    assert (
        "4 layers matched by name: 2 only in A, 1 only in B (hatched)"
        in fig.legends[0].get_title().get_text()
    )
    hatched = [p for p in fig.axes[0].patches if p.get_hatch()]
    assert len(hatched) == 3


def test_simulated_result_with_baseline_counts_as_two(sim_result, tmp_path):
    points, _ = plots.roofline_points(sim_result)
    assert [p.engines for p in points if p.layer == "pw"] == [("mpma", "sat")]
    bars = plots.gantt_bars(sim_result)
    assert {b.engine for b in bars if b.layer == "pw"} == {"mpma", "sat"}

    paths = plots.plot_results([sim_result], tmp_path, formats=("png", "svg"))
    assert len(paths) == 2 * (4 + 4 + 1)
    compare = tmp_path / "compare_tiny_m2vit-test_m2q_vs_tiny_m2vit-test_uniform.svg"
    assert compare in paths
    texts = _svg_texts(compare)
    assert {"pw", "dw", "act", "extra"} <= set(texts) and "only in A" in " ".join(texts)
    for p in paths:
        if p.suffix == ".png":
            _png_check(p)
    baseline_gantt = _svg_texts(tmp_path / "tiny_m2vit-test_uniform_gantt.svg")
    assert any("policy uniform" in t for t in baseline_gantt)


def test_identical_results_give_identical_files(tmp_path):
    def draw(out):
        paths = plots.plot_results([hand_result()], out)
        compare = plots.comparison_figure(hand_result(), hand_result(arch="other"))
        return paths + plots.save_figure(compare, out / "compare", ("png", "svg", "pdf"))

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second] and len(first) == 11
    assert first[-1].read_bytes().startswith(b"%PDF") and b"CreationDate" not in first[-1].read_bytes()
    for x, y in zip(first, second):
        assert x.read_bytes() == y.read_bytes(), x.name
    svg = first[1].read_text()
    assert "<dc:date>" not in svg and "archsim (Matplotlib" in svg


def test_save_figure_rejects_unknown_formats_and_repeated_names_get_numbers(tmp_path):
    fig = plots.energy_figure(hand_result())
    with pytest.raises(ValueError, match="unsupported plot format.*jpg.*png, svg, pdf"):
        plots.save_figure(fig, tmp_path / "x", ("jpg",))
    paths = plots.plot_results([hand_result(), hand_result()], tmp_path, formats=("svg",))
    assert tmp_path / "tiny_hand_m2q_2_gantt.svg" in paths
    assert paths[-1].name == "compare_tiny_hand_m2q_vs_tiny_hand_m2q_2.svg"
    with pytest.raises(ValueError, match="no results"):
        plots.plot_results([], tmp_path)
