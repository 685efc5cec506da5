"""Sweep files: validation in the one YAML style, and the points of grid, zip and seeded random blocks."""

from __future__ import annotations

import math
import random

import pytest

from archsim.sweep import SweepError, expand, load_sweep
from archsim.sweep.expand import draw
from archsim.sweep.spec import Range

EXAMPLE = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "sweep_b1.yaml"


def _sweep(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_sweep(path)


def _axes(points):
    return [{k: v for k, v in p.params.items() if k not in ("workload", "arch")} for p in points]


def test_grid_is_every_combination_first_key_slowest(tmp_path):
    s = _sweep(
        tmp_path,
        "workload: efficientvit_b0\narch: m2vit\n"
        "grid: {engines.sat.rows: [16, 32], dram.latency: ['40 ns', '60 ns', '80 ns']}\n",
    )
    points = expand(s)
    assert [p.index for p in points] == list(range(6))
    assert _axes(points) == [
        {"engines.sat.rows": r, "dram.latency": lat} for r in (16, 32) for lat in ("40 ns", "60 ns", "80 ns")
    ]
    assert all(p.params["workload"] == "efficientvit_b0" and p.params["arch"] == "m2vit" for p in points)


def test_zip_pairs_the_lists_and_crosses_with_the_grid(tmp_path):
    s = _sweep(
        tmp_path,
        "workload: efficientvit_b0\narch: m2vit\nset: {params.min_tiles: 2}\n"
        "grid: {engines.sat.rows: [16, 32]}\n"
        "zip: {buffers.weight_buffer.capacity: ['128 KiB', '256 KiB'],"
        " buffers.act_buffer.capacity: ['256 KiB', '512 KiB']}\n",
    )
    assert _axes(expand(s)) == [
        {
            "params.min_tiles": 2,
            "engines.sat.rows": r,
            "buffers.weight_buffer.capacity": w,
            "buffers.act_buffer.capacity": a,
        }
        for r in (16, 32)
        for w, a in (("128 KiB", "256 KiB"), ("256 KiB", "512 KiB"))
    ]


def test_blocks_concatenate_and_their_sets_replace_the_base(tmp_path):
    s = _sweep(
        tmp_path,
        """
workload: efficientvit_b0
arch: m2vit
set: {dram.latency: 60 ns}
blocks:
  - grid: {engines.sat.rows: [16, 32]}
  - name: base
    set: {arch: uniform_int8, workload.policy: uniform_w8a8, dram.latency: 80 ns}
""",
    )
    points = expand(s)
    assert [(p.block, p.params["arch"], p.params["dram.latency"]) for p in points] == [
        ("block1", "m2vit", "60 ns"),
        ("block1", "m2vit", "60 ns"),
        ("base", "uniform_int8", "80 ns"),
    ]
    assert points[2].params["workload.policy"] == "uniform_w8a8"


def test_random_draws_are_seeded_and_follow_python_random(tmp_path):
    text = """
workload: efficientvit_b0
arch: m2vit
random:
  points: 5
  seed: {seed}
  axes:
    engines.sat.rows: {{low: 8, high: 128, scale: log, integer: true}}
    dram.peak_bandwidth: {{low: 9.6, high: 38.4, unit: GB/s}}
    buffers.act_buffer.capacity: ['256 KiB', '512 KiB', '1 MiB']
"""
    a = _axes(expand(_sweep(tmp_path, text.format(seed=7))))
    assert a == _axes(expand(_sweep(tmp_path, text.format(seed=7))))
    assert a != _axes(expand(_sweep(tmp_path, text.format(seed=8))))
    rng = random.Random(7)  # the same draws by hand: one u per axis per point, in axis order
    expected = []
    for _ in range(5):
        u1, u2, u3 = rng.random(), rng.random(), rng.random()
        rows = round(math.exp(math.log(8) + u1 * (math.log(128) - math.log(8))))
        bw = float(f"{9.6 + u2 * (38.4 - 9.6):.6g}")
        expected.append(
            {
                "engines.sat.rows": rows,
                "dram.peak_bandwidth": f"{bw} GB/s",
                "buffers.act_buffer.capacity": ["256 KiB", "512 KiB", "1 MiB"][int(u3 * 3)],
            }
        )
    assert a == expected
    assert all(8 <= p["engines.sat.rows"] <= 128 and isinstance(p["engines.sat.rows"], int) for p in a)


def test_draw_edges():
    assert draw([1, 2, 3], 0.0) == 1 and draw([1, 2, 3], 0.999999) == 3
    assert draw(Range(1.0, 4.0), 0.5) == 2.5
    assert draw(Range(1.0, 100.0, scale="log"), 0.5) == pytest.approx(10.0)
    assert draw(Range(2.0, 3.0, integer=True, unit="cycles"), 0.9) == "3 cycles"


def test_random_crosses_with_grid(tmp_path):
    s = _sweep(
        tmp_path,
        "workload: efficientvit_b0\narch: m2vit\ngrid: {engines.sat.rows: [16, 32]}\n"
        "random: {points: 3, axes: {dram.latency: {low: 40, high: 80, unit: ns}}}\n",
    )
    points = _axes(expand(s))
    assert len(points) == 6 and [p["engines.sat.rows"] for p in points] == [16, 16, 16, 32, 32, 32]
    assert [p["dram.latency"] for p in points[:3]] == [p["dram.latency"] for p in points[3:]]


def test_the_example_is_about_fifty_points_over_both_configurations():
    s = load_sweep(EXAMPLE)
    points = expand(s)
    assert len(points) == 54
    assert {p.params["arch"] for p in points} == {"m2vit", "uniform_int8"}
    assert sum(p.params.get("workload.policy") == "uniform_w8a8" for p in points) == 9
    assert {p.params["engines.sat.rows"] for p in points if "engines.sat.rows" in p.params} == {
        16,
        32,
        64,
        96,
        128,
    }
    assert s.values is False and s.derived_names() == ["on_chip_kib", "mult8_budget"]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "grid: {engines.sat.rows: [16, 32]}\nzip: {a.b: [1, 2], c.d: [1]}\n",
            "s.yaml:4: zip: the lists of a zip must have one length (found a.b: 2, c.d: 1)",
        ),
        ("grid: {engines.sat.rows: []}\n", "s.yaml:3: grid.engines.sat.rows: []: must be a non-empty list"),
        ("grid: {'engines..rows': [1]}\n", "s.yaml:3: grid.engines..rows: not a key"),
        (
            "metrics: [latency_s, energy]\n",
            "s.yaml:3: metrics[1]: 'energy': unknown metric; allowed: latency_s",
        ),
        ("derived: {b: {expr: '1 +', unit: x}}\n", "s.yaml:3: derived.b.expr: '1 +': must be an expression"),
        ("derived: {b: {expr: '1'}}\n", "s.yaml:3: derived.b.unit: missing required field"),
        (
            "grid: {arch: [m2vit, m2vti]}\n",
            "s.yaml:3: grid.arch[1]: 'm2vti': unknown name; did you mean 'm2vit'?",
        ),
        (
            "set: {engines.sat.rows: 1}\ngrid: {engines.sat.rows: [1, 2]}\n",
            "grid.engines.sat.rows: also in set of this block; give each key once",
        ),
        ("random: {points: 2, axes: {a.b: {low: 0, high: 1, scale: log}}}\n", "a log scale needs low > 0"),
        ("grids: {a.b: [1]}\n", "s.yaml:3: grids: unknown key; did you mean 'grid'?"),
        (
            "blocks: [{grid: {a.b: [1]}}]\ngrid: {c.d: [1]}\n",
            "grid: with blocks, put grid, zip and random inside",
        ),
    ],
)
def test_problems_are_reported_with_file_and_line(tmp_path, body, message):
    with pytest.raises(SweepError) as err:
        _sweep(tmp_path, "workload: efficientvit_b0\narch: m2vit\n" + body)
    assert message in str(err.value)


def test_a_mapping_is_a_sweep_too(tmp_path):
    s = load_sweep({"workload": "efficientvit_b0", "arch": "m2vit", "grid": {"engines.sat.rows": [16, 32]}})
    assert len(expand(s)) == 2 and s.name == "sweep" and s.file is None
    with pytest.raises(SweepError, match="sweep: arch: missing required field"):
        load_sweep({"workload": "efficientvit_b0"})
