"""Live on-chip buffers: residency decided at run time, freed after the last reader, staging waits,
the engine ports, the smallest-tile error, unified buffers, and the worst case for deadlock."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import pytest
from sim_fixtures import KIB, chain, eltwise, m2vit_spec, pointwise

from archsim.arch.spec import ArchParams, MemorySpec
from archsim.graph.ir import OpKind, add_layer
from archsim.sim import simulate
from archsim.sim.plan import TileFitError, regions

PERIOD = 5e-9  # 200 MHz


def spec_with(act_kib: float | None = None, residency: str = "live", params=None, unified: bool = False):
    spec = m2vit_spec()
    wbuf, abuf = spec.buffers
    if act_kib is not None:
        abuf = replace(abuf, capacity_bytes=int(act_kib * KIB))
    buffers = (wbuf, abuf)
    if unified:
        buffers = (replace(abuf, name="buffer", holds=frozenset({"weights", "activations"})),)
    spec = spec.with_changes(buffers=buffers, memory=MemorySpec(residency=residency))
    return spec.with_changes(params=ArchParams(params)) if params else spec


def residual() -> nx.DiGraph:
    """a -> b -> c -> add(c, a): a's output stays live while b and c run. Every output is 4 KiB."""
    g = chain(pointwise("a", 64, 64, 8), pointwise("b", 64, 64, 8), pointwise("c", 64, 64, 8))
    add_layer(g, eltwise("add", OpKind.ADD, (1, 64, 8, 8), 2), ["c", "a"])
    return g


def by_name(result):
    return {layer.name: layer for layer in result.layers}


def test_live_keeps_what_fits_at_the_time_and_says_why_the_rest_spilled():
    r = simulate(residual(), spec_with(act_kib=16), values=False)  # resident half: 8 KiB
    layers = by_name(r)
    assert [layers[n].output for n in ("a", "b", "c", "add")] == ["on_chip", "on_chip", "dram", "dram"]
    assert layers["c"].placement == (
        "spilled: 4096 B needed, 0 B of the 8192 B resident share of act_buffer free "
        "(largest held: a 4096 B, b 4096 B)"
    )
    assert layers["add"].placement == "graph output: written to DRAM"
    assert r.buffers["act_buffer"]["regions"]["resident"] == {"capacity_bytes": 8192, "peak_bytes": 8192}
    # the spilled c is written once and read back once; graph input and output as always
    assert layers["c"].dram_write_bytes == 4096 and layers["add"].dram_read_bytes == 4096


def test_the_static_fit_rule_ignores_liveness():
    r = simulate(residual(), spec_with(act_kib=16, residency="fit"), values=False)
    layers = by_name(r)
    # a's consumer add has a 12 KiB working set (two inputs + output) > 8 KiB: a spills, though it would fit
    assert [layers[n].output for n in ("a", "b", "c")] == ["dram", "on_chip", "dram"]
    assert layers["a"].placement.startswith("fit rule: its or a consumer's working set")


def test_a_tensor_is_freed_after_its_last_reader():
    g = chain(*(pointwise(n, 64, 64, 8) for n in "abcde"))
    r = simulate(g, spec_with(act_kib=16), values=False)
    # at most two 4 KiB tensors are live at once (a layer's input and its output): all stay on chip
    assert [layer.output for layer in r.layers] == ["on_chip"] * 4 + ["dram"]
    assert r.buffers["act_buffer"]["regions"]["resident"]["peak_bytes"] == 8192


def test_more_buffer_never_spills_more_and_never_slows_down():
    small = simulate(residual(), spec_with(act_kib=16), values=False)
    large = simulate(residual(), spec_with(act_kib=64), values=False)
    assert all(layer.output == "on_chip" for layer in large.layers[:-1])
    assert large.latency_cycles <= small.latency_cycles
    assert large.dram["bytes_read"] < small.dram["bytes_read"]


def test_a_layer_whose_smallest_tile_cannot_fit_is_an_error_naming_layer_and_buffer():
    g = chain(pointwise("wide", 512, 16, 8))  # one output row reads 8 x 512 B = 4 KiB from DRAM
    with pytest.raises(
        TileFitError,
        match=r"^wide: its smallest tile streams \d+ B through buffer act_buffer, "
        r"more than its 1024 B staging region",
    ):
        simulate(g, spec_with(act_kib=2), values=False)


def test_a_unified_buffer_is_split_into_fixed_regions():
    spec = spec_with(unified=True)
    region = regions(spec)
    assert (region.resident, region.staging, region.weights, region.unified) == (
        256 * KIB,
        128 * KIB,
        128 * KIB,
        True,
    )
    r = simulate(residual(), spec, values=False)
    assert set(r.buffers) == {"buffer"}
    assert set(r.buffers["buffer"]["regions"]) == {"resident", "staging", "weights"}
    for part in r.buffers["buffer"]["regions"].values():
        assert part["peak_bytes"] <= part["capacity_bytes"]


def test_the_engine_port_holds_a_port_bound_tile_exactly_its_bytes_over_the_port_width():
    # a 2-input add of 4,096 elements in one tile: the vector unit computes ceil(4096 / 64) + 2 cycles, but
    # reads 2 x 4 KiB and writes 4 KiB through the 64 B/cycle act_buffer port: 12,288 / 64 = 192 cycles
    g = nx.DiGraph(model="test", resolution=0, batch=1)
    add_layer(g, eltwise("add", OpKind.ADD, (1, 64, 8, 8), 2), [None, None])
    r = simulate(g, spec_with(params={"max_tiles": 1}), values=False)
    (layer,) = r.layers
    assert layer.tiles == 1 and layer.engine_busy_cycles == {"vector": 66}
    assert r.engines["vector"].stall_s["buffer_port"] == pytest.approx((192 - 66) * PERIOD, rel=1e-12)
    assert layer.stall_s["buffer_port"] == pytest.approx((192 - 66) * PERIOD, rel=1e-12)


def test_two_engines_share_the_port():
    # the same add beside an independent pointwise layer: both read the act_buffer port at once
    alone, both = (nx.DiGraph(model="test", resolution=0, batch=1) for _ in range(2))
    for g in (alone, both):
        add_layer(g, pointwise("pw", 64, 64, 8), [None])
    add_layer(both, eltwise("add", OpKind.ADD, (1, 64, 8, 8), 2), [None, None])
    spec = spec_with(params={"max_tiles": 1})
    pw_alone = by_name(simulate(alone, spec, values=False))["pw"]
    pw_both = by_name(simulate(both, spec, values=False))["pw"]
    assert pw_both.stall_s.get("buffer_port", 0) > pw_alone.stall_s.get("buffer_port", 0)


def test_worst_case_for_deadlock_finishes_within_every_region():
    # eight branches from the graph input at once, each streaming from DRAM through a staging region that
    # holds one tile of each at most, weight chunks that fill the weight region, all converging in adds
    g = nx.DiGraph(model="test", resolution=0, batch=1)
    for i in range(8):
        add_layer(g, pointwise(f"p{i}", 64, 256, 8), [None])
    for i in range(0, 8, 2):
        add_layer(g, eltwise(f"s{i}", OpKind.ADD, (1, 256, 8, 8), 2), [f"p{i}", f"p{i + 1}"])
    add_layer(g, eltwise("t0", OpKind.ADD, (1, 256, 8, 8), 2), ["s0", "s2"])
    add_layer(g, eltwise("t1", OpKind.ADD, (1, 256, 8, 8), 2), ["s4", "s6"])
    spec = spec_with(act_kib=8)
    spec = spec.with_changes(buffers=(replace(spec.buffers[0], capacity_bytes=32 * KIB), spec.buffers[1]))
    r = simulate(g, spec, values=False)  # raises InvariantError if any layer were left unfinished
    assert len(r.layers) == 14
    for buf in r.buffers.values():
        for region, part in buf["regions"].items():
            if region != "resident":
                assert 0 < part["peak_bytes"] <= part["capacity_bytes"], region
    assert sum(e.stall_s["buffer_space"] for e in r.engines.values()) > 0  # they did wait for space
