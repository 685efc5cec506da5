"""End-to-end behaviour of simulate() on tiny hand-built graphs."""

import math

import networkx as nx
import numpy as np
import pytest
from sim_fixtures import KIB, chain, depthwise, eltwise, m2vit_spec, pointwise

from archsim.graph.ir import OpKind, add_layer
from archsim.graph.opkinds import work_dims
from archsim.sim import simulate
from archsim.sim.latency import compute_cycles

ONE_TILE = {"min_tiles": 1, "max_tiles": 1}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def test_single_uncontended_layer_matches_closed_form_exactly():
    """REQUIRED: input + weights from DRAM, compute, output to DRAM, one tile, no contention."""
    spec = m2vit_spec(params=ONE_TILE)
    layer = pointwise("pw", 64, 64, 8)
    result = simulate(chain(layer), spec)

    period = spec.clock_period_ps
    bw = int(spec.dram.peak_bandwidth_bytes_per_s)
    dram_latency = round(spec.dram.latency_s * 10**12)
    noc_latency = spec.interconnect.latency_cycles * period
    w_bytes, in_bytes, out_bytes = layer.weight_bytes, layer.input_bytes, layer.output_bytes
    assert all(b % spec.dram.burst_bytes == 0 for b in (w_bytes, in_bytes, out_bytes))
    # load: weights then input requested together; pipelined DRAM latency, FIFO bus, NoC cut-through
    load_done = dram_latency + ceil_div((w_bytes + in_bytes) * 10**12, bw) + noc_latency
    # compute: G*P*ceil(F/R)*ceil(K/L) + pipeline fill, merged mode (32 rows x 32 lanes)
    mpma = spec.engine("mpma")
    cycles = 1 * 64 * ceil_div(64, mpma.rows) * ceil_div(64, mpma.mode("merged").lanes) + mpma.pipeline_cycles
    compute_done = load_done + cycles * period
    # write-back: NoC head latency, then DRAM latency, then the data on the DRAM bus
    expected_ps = compute_done + noc_latency + dram_latency + ceil_div(out_bytes * 10**12, bw)

    assert result.latency_s * 10**12 == pytest.approx(expected_ps, abs=0.5)
    assert result.latency_cycles == ceil_div(expected_ps, period)
    assert result.layers[0].tiles == 1
    assert result.dram["bytes_read"] == w_bytes + in_bytes
    assert result.dram["bytes_written"] == out_bytes
    assert result.engines["mpma"].busy_cycles == cycles


def _independent_pair():
    g = nx.DiGraph()
    add_layer(g, pointwise("pw", 128, 128, 14), [None])
    add_layer(g, eltwise("act", OpKind.ACTIVATION, (1, 256, 14, 14)), [None])
    return g


def test_independent_layers_on_different_engines_overlap():
    spec = m2vit_spec()
    both = simulate(_independent_pair(), spec)
    alone = [
        simulate(chain(pointwise("pw", 128, 128, 14)), spec),
        simulate(chain(eltwise("act", OpKind.ACTIVATION, (1, 256, 14, 14))), spec),
    ]
    assert both.latency_cycles < sum(r.latency_cycles for r in alone)
    assert both.layers[0].start_cycle == both.layers[1].start_cycle == 0


def test_chain_does_not_overlap():
    spec = m2vit_spec()
    a, b = pointwise("a", 64, 64, 14), pointwise("b", 64, 64, 14)
    result = simulate(chain(a, b), spec)
    first, second = result.layers
    assert second.start_cycle >= first.end_cycle - 1  # start floors, end ceils to cycles
    mpma = spec.engine("mpma")
    ideal = sum(compute_cycles(work_dims(x), mpma.rows, 32) for x in (a, b))
    assert result.latency_cycles > ideal


def test_mixed_layer_runs_both_engines_concurrently():
    mask = np.array([i % 2 == 0 for i in range(128)])
    result = simulate(chain(pointwise("pw", 128, 128, 14, apot_mask=mask)), m2vit_spec())
    layer = result.layers[0]
    assert layer.engines == ["mpma", "sat"] and layer.mode == "merged+shift_add"
    busy = result.engines["mpma"].busy_cycles + result.engines["sat"].busy_cycles
    assert result.engines["mpma"].busy_cycles > 0 and result.engines["sat"].busy_cycles > 0
    assert layer.cycles < busy  # the two streams overlapped in time
    assert result.engines["mpma"].macs + result.engines["sat"].macs == 128 * 128 * 196


def test_spilling_an_intermediate_adds_its_write_and_read_back():
    a, b = pointwise("a", 64, 64, 8), pointwise("b", 64, 64, 8)
    onchip = simulate(chain(a, b), m2vit_spec())
    small = m2vit_spec(
        buffers=(
            m2vit_spec().buffers[0],
            m2vit_spec()
            .buffers[1]
            .__class__(**{**m2vit_spec().buffers[1].__dict__, "capacity_bytes": 6 * KIB}),
        )
    )
    spilled = simulate(chain(pointwise("a", 64, 64, 8), pointwise("b", 64, 64, 8)), small)
    intermediate = a.output_bytes  # 4 KiB: a multiple of the burst, more than the 3 KiB resident half
    assert spilled.dram["bytes_written"] - onchip.dram["bytes_written"] == intermediate
    assert spilled.dram["bytes_read"] - onchip.dram["bytes_read"] == intermediate
    assert spilled.layers[0].output == "dram" and onchip.layers[0].output == "on_chip"
    assert spilled.layers[0].placement == ("spilled: 4096 B exceed the 3072 B resident share of act_buffer")


def _mid_graph():
    layers_ = [
        pointwise("pw1", 32, 128, 28, epilogue=("bias", "hardswish")),
        depthwise("dw", 128, 28),
        pointwise("pw2", 128, 32, 28, apot_mask=np.arange(32) % 3 == 0),
        eltwise("add", OpKind.ADD, (1, 32, 28, 28), 2),
        pointwise("pw3", 32, 256, 28),
        eltwise("pool", OpKind.POOL, (1, 256, 28, 28)),
    ]
    return chain(*layers_)


def test_runs_are_deterministic():
    spec = m2vit_spec()
    assert simulate(_mid_graph(), spec).to_dict() == simulate(_mid_graph(), spec).to_dict()


def test_result_fields_and_energy_breakdown_sum():
    spec = m2vit_spec()
    r = simulate(_mid_graph(), spec, workload={"model": "mid"})
    assert r.workload == {"model": "mid"}
    assert r.arch == {"name": spec.name, "sha256": None, "clock_hz": spec.clock_hz}  # built in code: no YAML
    assert set(r.energy_breakdown_j) == {
        "mpma",
        "sat",
        "vector",
        "weight_buffer",
        "act_buffer",
        "dram",
        "interconnect",
        "static",
    }
    assert math.isclose(sum(r.energy_breakdown_j.values()), r.energy_j, rel_tol=1e-12)
    assert math.isclose(
        sum(layer.energy_j for layer in r.layers) + r.energy_breakdown_j["static"], r.energy_j, rel_tol=1e-12
    )
    assert r.edp_js == pytest.approx(r.energy_j * r.latency_s)
    assert r.events > 0 and all(c["held"] for c in r.checks.values())
    assert {"latency_ge_roofline", "dram_bandwidth_le_peak", "energy_ge_lower_bound"} <= set(r.checks)
    assert "mac_int8" in r.provenance and r.provenance["dram_read"]["unit"] == "pJ/B"
    assert simulate(_mid_graph(), spec).workload["model"] == "test"  # graph metadata by default


def test_epilogue_energy_charged_to_vector_unit():
    spec = m2vit_spec()
    plain = simulate(chain(pointwise("pw", 32, 32, 7)), spec)
    fused = simulate(chain(pointwise("pw", 32, 32, 7, epilogue=("bias", "hardswish"))), spec)
    vector_op_j = spec.engine("vector").mode("simd").energy_per_op.value
    extra = fused.energy_breakdown_j["vector"] - plain.energy_breakdown_j["vector"]
    assert extra == pytest.approx(32 * 49 * 2 * vector_op_j)
    assert fused.latency_cycles == plain.latency_cycles  # epilogue time hidden in the pipeline


def test_static_energy_is_power_times_latency():
    spec = m2vit_spec()
    r = simulate(_mid_graph(), spec)
    watts = (
        sum(e.leakage_power.value for e in spec.engines)
        + sum(b.leakage_power.value for b in spec.buffers)
        + spec.dram.background_power.value
    )
    assert r.energy_breakdown_j["static"] == pytest.approx(watts * r.latency_s)


def test_latency_non_increasing_in_dram_bandwidth_and_buffer_size():
    spec = m2vit_spec()
    base = simulate(_mid_graph(), spec).latency_cycles
    faster = simulate(
        _mid_graph(),
        spec.with_changes(
            dram=spec.dram.__class__(**{**spec.dram.__dict__, "peak_bandwidth_bytes_per_s": 38.4e9})
        ),
    ).latency_cycles
    act = spec.buffers[1]
    for small_kib, big_kib in [(64, 128), (128, 512), (512, 2048)]:
        small = simulate(
            _mid_graph(),
            spec.with_changes(
                buffers=(
                    spec.buffers[0],
                    act.__class__(**{**act.__dict__, "capacity_bytes": small_kib * KIB}),
                )
            ),
        )
        big = simulate(
            _mid_graph(),
            spec.with_changes(
                buffers=(spec.buffers[0], act.__class__(**{**act.__dict__, "capacity_bytes": big_kib * KIB}))
            ),
        )
        assert big.latency_cycles <= small.latency_cycles
    assert faster <= base


def test_bad_graph_raises_clear_error():
    with pytest.raises(ValueError, match="no layers"):
        simulate(nx.DiGraph(), m2vit_spec())
