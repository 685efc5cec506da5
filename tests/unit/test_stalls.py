"""Stall attribution (archsim.sim.stalls) against hand-derived numbers, and its invariant in real runs."""

from __future__ import annotations

import pytest
from sim_fixtures import chain, depthwise, m2vit_spec, pointwise

from archsim.sim import simulate
from archsim.sim.stalls import CAUSES, LayerTimes, TileTimes, bound, engine_stalls, layer_stalls


def _tile(begin, space, dram, loaded, grant, compute_end, release, producer=None):
    producer = begin if producer is None else producer
    return TileTimes(begin, producer, space, dram, loaded, list(grant), list(compute_end), list(release))


def _two_layers():
    """A (two tiles) then B (one tile), both on engine e; engine f runs nothing; latency 330 ps."""
    a = LayerTimes(
        0,
        210,
        ("e",),
        [
            _tile(0, 10, 50, 60, [60], [100], [110]),  # 10 buffer, 40 DRAM, 10 link; 40 busy then 10 port
            _tile(60, 60, 120, 130, [130], [170], [170]),
        ],
    )
    b = LayerTimes(210, 310, ("e",), [_tile(210, 210, 260, 260, [260], [310], [310])])
    return {"A": a, "B": b}


def test_engine_view_by_hand():
    out = engine_stalls(_two_layers(), 330, ["e", "f"])
    # gaps of e: [0, 60) by tile A0's chain; [110, 130) by A1's (its DRAM leg from 110, then the link);
    # [170, 260): A still draining (B's dependency) to 210, then B0's DRAM; after 310: nothing left
    assert out["e"] == {
        "busy": 130,
        "buffer_port": 10,
        "buffer_space": 10,
        "data": 100,
        "interconnect": 20,
        "dependency": 40,
        "fused_producer": 0,
        "engine": 0,
        "idle": 20,
    }
    assert out["f"] == {"busy": 0, **{c: 0 for c in CAUSES if c != "idle"}, "idle": 330}
    assert all(sum(parts.values()) == 330 for parts in out.values())


def test_layer_view_by_hand():
    parts = layer_stalls(_two_layers()["A"])
    # A's span [0, 210): 80 busy, 10 port, 10 buffer space, 40 + 10 DRAM before its tiles and 40 draining
    # its write-backs after them, 20 link
    assert parts == {"busy": 80, "buffer_port": 10, "buffer_space": 10, "data": 90, "interconnect": 20}
    assert sum(parts.values()) == 210


def test_the_bound_is_the_busiest_resource_ties_in_order():
    assert bound({"compute": 1.0, "dram": 2.0, "buffer": 1.5}) == "dram"
    assert bound({"compute": 1.0, "dram": 1.0}) == "compute"
    assert bound({"interconnect": 3, "buffer": 3}) == "interconnect"
    assert bound({}) == "compute"


def test_split_layer_waits_for_its_partner_then_write_backs():
    c = LayerTimes(0, 120, ("e", "f"), [_tile(0, 0, 0, 0, [0, 0], [100, 40], [100, 40])])
    assert layer_stalls(c) == {"busy": 100, "data": 20}  # the busiest stream, e
    out = engine_stalls({"C": c}, 120, ["e", "f"])
    assert out["f"]["busy"] == 40 and out["f"]["idle"] == 80


def test_fused_producer_wait_is_its_own_cause():
    d = LayerTimes(0, 100, ("e",), [_tile(0, 40, 40, 50, [50], [100], [100], producer=30)])
    assert layer_stalls(d) == {"busy": 50, "fused_producer": 30, "buffer_space": 10, "interconnect": 10}


@pytest.mark.parametrize("residency", ["live", "fit", "layer_by_layer"])
def test_every_engine_s_time_is_accounted_exactly_in_a_run(residency):
    spec = m2vit_spec()
    spec = spec.with_changes(memory=spec.memory.__class__(residency=residency))
    graph = chain(pointwise("a", 32, 128, 28), depthwise("dw", 128, 28), pointwise("b", 128, 32, 28))
    r = simulate(graph, spec, values=False)
    for name, engine in r.engines.items():
        assert r.checks[f"{name}_time_accounted"]["held"], name
        assert set(engine.stall_s) == set(CAUSES)
        total = engine.busy_cycles * 5e-9 + sum(engine.stall_s.values())
        assert total == pytest.approx(r.latency_s, rel=1e-12)
    for layer in r.layers:
        assert layer.bound in ("compute", "dram", "interconnect", "buffer")
        span = (layer.end_cycle - layer.start_cycle) * 5e-9  # whole cycles, rounded outwards
        assert span - 10e-9 < sum(layer.stall_s.values()) <= span
