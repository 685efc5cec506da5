"""Energy accounting (archsim.energy.accounting) on hand-computed cases."""

import math
from dataclasses import replace

import pytest
from sim_fixtures import PJ, depthwise, eltwise, m2vit_spec, pointwise

from archsim.arch.spec import EnergyEntry
from archsim.energy import accounting
from archsim.graph.ir import OpKind
from archsim.sim import InvariantError
from archsim.sim.checks import check, raise_on_violation
from archsim.sim.mapping import map_layer
from archsim.sim.plan import plan_layer, split_units
from archsim.sim.traffic import AccessStream, layer_traffic

SPEC = m2vit_spec()


def pw_events(spec=SPEC, **kw):
    """The 64 -> 64 pointwise conv at 8 x 8 as one tile, inputs from DRAM, output to DRAM."""
    layer = pointwise("pw", 64, 64, 8, **kw)
    tiled = spec.with_changes(params={"min_tiles": 1, "max_tiles": 1})
    mapping = map_layer(layer, tiled)
    plan = plan_layer(layer, 0, mapping, tiled, dram_in=4096, output_to_dram=True)
    assert len(plan.tiles) == 1 and [s.engine for s in mapping.streams] == ["mpma"]
    events = accounting.layer_events(layer, plan, spec, 4096, 4096, 4096, 8192, 4096, 12288)
    return layer, plan, events


def by_kind(events):
    return {(e.component, e.kind): (e.count, e.joules_per_event) for e in events}


def test_layer_events_by_hand():
    """mat dataflow on 32 rows x 32 lanes (filters on the rows, the reduction on the lanes, positions
    streamed); 64 B ports at 1.5 pJ/B, so one access costs 64 x 1.5 = 96 pJ whatever its useful bytes."""
    layer, plan, events = pw_events()
    traffic = layer_traffic(plan, SPEC, dram_in_bytes=4096, dram_out_bytes=4096, weight_load_bytes=4096)
    assert traffic.reads["weight_buffer"] == 4096 and traffic.reads["act_buffer"] == 4096 * 2 + 4096
    access = 64 * 1.5 * PJ
    assert by_kind(events) == {
        ("mpma", "mac"): (64 * 64 * 64, 2.5 * PJ),
        # 4 folds (2 of 32 filters x 2 of 32 reduction lanes), one stream per operand each, in 64 B words:
        # weights 4096 B read once (stationary while the positions stream): 4 x 1024 B = 4 x 16 accesses
        ("weight_buffer", "weights_read"): (4 * 16, access),
        # inputs read once per 32-filter fold (2): 8192 B, 4 x 2048 B
        ("act_buffer", "inputs_read"): (4 * 32, access),
        # outputs stored once per output block (4 folds / 2 reduction folds): 2 x 2048 B
        ("act_buffer", "outputs_write"): (2 * 32, access),
        # the reduction (64) spans 2 lane folds: each output's int32 partial sum written and read back once,
        # 4096 x 4 B each way
        ("act_buffer", "psums_write"): (4096 * 4 // 64, access),
        ("act_buffer", "psums_read"): (4096 * 4 // 64, access),
        # the DMA fills and drains in whole port words
        ("act_buffer", "dma_write"): (4096 // 64, access),
        ("act_buffer", "dma_read"): (4096 // 64, access),
        ("weight_buffer", "dma_write"): (4096 // 64, access),
        ("dram", "read_byte"): (8192, 160 * PJ),
        ("dram", "write_byte"): (4096, 150 * PJ),
        ("interconnect", "bus_byte"): (12288, 1.0 * PJ),
    }
    assert {e.coefficient for e in events if e.component == "act_buffer"} == {"abuf_read", "abuf_write"}


def test_an_access_stream_rounds_up_to_whole_port_words():
    """A 9-byte block on a 64 B port is a whole 64 B access: ten such streams are ten accesses."""
    assert AccessStream("b", "weights", False, 90, 10, 64).accesses() == 10
    assert AccessStream("b", "inputs", False, 4096, 1, 64).accesses() == 64
    assert AccessStream("b", "inputs", False, 4097, 1, 64).accesses() == 65
    assert AccessStream("b", "inputs", False, 100, 3, 64).accesses() == 3  # 34 B each (the largest share)
    assert AccessStream("b", "inputs", False, 0, 3, 64).accesses() == 0


def test_energy_is_the_sum_of_counts_times_coefficients():
    _, _, events = pw_events()
    expected = math.fsum(e.count * e.joules_per_event for e in events)
    assert accounting.total(events) == pytest.approx(expected, rel=1e-12)
    assert sum(accounting.group(events, lambda e: e.component).values()) == pytest.approx(expected, rel=1e-12)


def test_depthwise_in_single_mode_is_priced_per_4bit_mac():
    layer = depthwise("dw", 64, 8)
    streams = map_layer(layer, SPEC).streams
    (event,) = accounting.engine_op_events(layer, streams, SPEC)
    assert (event.kind, event.count, event.joules_per_event) == ("mac", 64 * 64 * 9, 1.2 * PJ)
    assert event.coefficient == "mac_int4"


def test_conv_bn_hardswish_epilogue_ops_pinned_by_hand():
    """A conv + BN + Hardswish as the extractor tags it (quantized: bias, bn_folded, hardswish, requant):
    the folded BN is the bias's add, so 3 vector ops per output element, not 4."""
    layer = pointwise("pw", 16, 32, 7, epilogue=("bias", "bn_folded", "hardswish", "requant"))
    counts = accounting.epilogue_counts(layer)
    assert counts == {"bias": 32 * 7 * 7, "hardswish": 32 * 7 * 7, "requant": 32 * 7 * 7}
    assert accounting.epilogue_ops(layer) == 3 * 1568 == 4704
    streams = map_layer(layer, SPEC).streams
    events = accounting.epilogue_events(layer, streams, SPEC)
    assert [(e.component, e.kind, e.count) for e in events] == [
        ("vector", "epilogue:bias", 1568),
        ("vector", "epilogue:hardswish", 1568),
        ("vector", "epilogue:requant", 1568),
    ]
    assert accounting.total(events) == pytest.approx(4704 * 1.0 * PJ)


def test_vector_ops_priced_by_kind():
    vector = SPEC.engine("vector")
    simd = vector.modes[0]
    norm_entry = EnergyEntry("vec_nonlinear", 1.0e-12 * 4, "pJ", "assumed: test")
    add_entry = EnergyEntry("vec_add", 0.5e-12, "pJ", "assumed: test")
    simd2 = replace(simd, energy_by_kind=(("norm", norm_entry), ("requant", add_entry)))
    spec = SPEC.with_changes(
        engines=tuple(replace(e, modes=(simd2,)) if e.name == "vector" else e for e in SPEC.engines)
    )
    norm = eltwise("ln", OpKind.NORM, (1, 196, 64))
    (event,) = accounting.engine_op_events(norm, map_layer(norm, spec).streams, spec)
    assert event.coefficient == "vec_nonlinear" and event.joules_per_event == pytest.approx(4e-12)
    layer = pointwise("pw", 16, 32, 7, epilogue=("bias", "requant"))
    events = accounting.epilogue_events(layer, map_layer(layer, spec).streams, spec)
    assert [(e.kind, e.coefficient) for e in events] == [
        ("epilogue:bias", "vector_op"),
        ("epilogue:requant", "vec_add"),
    ]


def test_register_bits_follow_the_adder_tree():
    """Operands per MAC (8 + 8 bits); the accumulator read + written once per adder-tree output: the mat
    dataflow sums 32 products on the lanes per cycle."""
    layer = pointwise("pw", 64, 64, 8)
    reg = EnergyEntry("pe_register", 0.04e-12, "pJ/B", "assumed: test")
    mpma = replace(SPEC.engine("mpma"), register_energy=reg)
    spec = SPEC.with_changes(engines=tuple(mpma if e.name == "mpma" else e for e in SPEC.engines))
    streams = map_layer(layer, spec).streams
    (event,) = accounting.register_events(layer, streams, spec)
    macs = 64 * 64 * 64
    assert event.count == macs * 16 + (macs // 32) * 2 * 32
    assert event.joules_per_event == pytest.approx(0.04e-12 / 8)
    assert accounting.register_events(layer, streams, SPEC) == []  # no register_energy: in the MAC price


def test_provenance_lists_every_entry_with_unit_and_source():
    prov = accounting.provenance(SPEC)
    assert prov["mac_int4"]["unit"] == "pJ" and "4-bit" in prov["mac_int4"]["source"]
    assert prov["dram_background"]["unit"] == "W"
    assert len(prov) == len(accounting.energy_entries(SPEC))


def test_check_records_and_violation_raises():
    ok = check("x", 2.0, 1.0, "s")
    assert ok == {"value": 2.0, "bound": 1.0, "unit": "s", "held": True}
    assert check("bw", 3.0, 2.0, "B/s", upper=True)["held"] is False
    with pytest.raises(InvariantError, match="latency"):
        raise_on_violation({"latency": check("latency", 0.5, 1.0, "s")})


def test_split_units_keeps_whole_blocks():
    assert split_units(72, 2, 32) == [64, 8]
    assert split_units(100, 3, 32) == [64, 32, 4]
    assert split_units(5, 4, 32) == [2, 1, 1, 1]  # fewer blocks than parts
    assert sum(split_units(1000, 7, 16)) == 1000
