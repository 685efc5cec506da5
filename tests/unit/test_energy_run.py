"""A run's energy from its counted events: the sum, the groupings, one coefficient at a time, the bounds."""

import math
from dataclasses import replace

import pytest
from sim_fixtures import PJ, chain, depthwise, eltwise, m2vit_spec, pointwise

from archsim.arch.dram import BankedDramConfig
from archsim.arch.dram_presets import PRESETS
from archsim.arch.spec import EnergyEntry
from archsim.energy import accounting
from archsim.graph.ir import OpKind
from archsim.sim import simulate

SPEC = m2vit_spec()


def graph():
    return chain(
        pointwise("pw1", 32, 64, 14, epilogue=("bias", "hardswish", "requant")),
        depthwise("dw", 64, 14, epilogue=("bias", "requant")),
        pointwise("pw2", 64, 32, 14, epilogue=("bias", "requant")),
        eltwise("act", OpKind.ACTIVATION, (1, 32, 14, 14)),
    )


def run(spec=SPEC):
    return simulate(graph(), spec, values=False)


def test_energy_equals_the_sum_of_counted_events():
    r = run()
    events = r.energy["events"]
    expected = math.fsum(e["count"] * e["joules_per_event"] for e in events)
    assert r.energy_j == pytest.approx(expected, rel=1e-9)
    assert all(e["joules"] == e["count"] * e["joules_per_event"] for e in events)
    for key in ("by_component_j", "by_engine_j", "by_layer_j", "by_op_kind_j", "by_event_kind_j"):
        if key == "by_engine_j":  # events no engine caused: DMA, DRAM, interconnect, buffer leakage
            rest = math.fsum(e["joules"] for e in events if not e["engine"])
            assert math.fsum(r.energy[key].values()) + rest == pytest.approx(expected, rel=1e-9)
        else:
            assert math.fsum(r.energy[key].values()) == pytest.approx(expected, rel=1e-9), key
    assert r.energy_breakdown_j == {
        **dict.fromkeys(accounting.breakdown_keys(SPEC), 0.0),
        **r.energy["by_component_j"],
    }
    assert math.fsum(lr.energy_j for lr in r.layers) + r.energy["by_layer_j"]["(run)"] == pytest.approx(
        r.energy_j, rel=1e-9
    )
    assert r.energy["per_mac_j"] == pytest.approx(r.energy_j / sum(lr.macs for lr in r.layers))
    assert r.energy["edp_js"] == pytest.approx(r.energy_j * r.latency_s) == pytest.approx(r.edp_js)
    assert set(r.energy["coefficients"]) == {e["coefficient"] for e in events}
    assert all(c["source"] and c["unit"] for c in r.energy["coefficients"].values())


def scaled(spec, name: str, factor: float):
    """``spec`` with the entry ``name`` x ``factor`` wherever it is used."""

    def swap(entry):
        return (
            replace(entry, value=entry.value * factor) if entry is not None and entry.name == name else entry
        )

    engines = tuple(
        replace(
            e,
            leakage_power=swap(e.leakage_power),
            modes=tuple(replace(m, energy_per_op=swap(m.energy_per_op)) for m in e.modes),
        )
        for e in spec.engines
    )
    buffers = tuple(
        replace(
            b,
            read_energy=swap(b.read_energy),
            write_energy=swap(b.write_energy),
            leakage_power=swap(b.leakage_power),
        )
        for b in spec.buffers
    )
    dram = replace(
        spec.dram, read_energy=swap(spec.dram.read_energy), write_energy=swap(spec.dram.write_energy)
    )
    noc = replace(spec.interconnect, energy=swap(spec.interconnect.energy))
    return spec.with_changes(engines=engines, buffers=buffers, dram=dram, interconnect=noc)


@pytest.mark.parametrize(
    "entry, component",
    [
        ("mac_int8", "mpma"),
        ("mac_int4", "mpma"),
        ("vector_op", "vector"),
        ("wbuf_read", "weight_buffer"),
        ("abuf_write", "act_buffer"),
        ("dram_read", "dram"),
        ("noc", "interconnect"),
        ("sat_leak", "static"),
    ],
)
def test_one_coefficient_changes_exactly_its_component(entry, component):
    base = run()
    changed = run(scaled(SPEC, entry, 3.0))
    assert changed.latency_cycles == base.latency_cycles
    own = math.fsum(e["joules"] for e in base.energy["events"] if e["coefficient"] == entry)
    assert own > 0
    for key, joules in base.energy_breakdown_j.items():
        if key == component:
            assert changed.energy_breakdown_j[key] == pytest.approx(joules + 2 * own, rel=1e-12)
        else:
            assert changed.energy_breakdown_j[key] == joules, key
    assert changed.energy_j == pytest.approx(base.energy_j + 2 * own, rel=1e-12)


def test_bounds_by_hand_and_checked():
    """One 8-bit pointwise conv, 64 -> 64 at 14 x 14, everything from / to DRAM."""
    layer = pointwise("pw", 64, 64, 14)
    r = simulate(chain(layer), SPEC, values=False)
    macs = 196 * 64 * 64
    compulsory_read = layer.weight_bytes + layer.input_bytes  # 4096 + 12544
    compulsory_write = layer.output_bytes  # 12544
    b = r.bounds
    compute_s = macs / 1024 / 200e6  # on the MPMA's 32 x 32 merged mode
    dram_s = (compulsory_read + compulsory_write) / 19.2e9
    assert b["latency_s"]["compute_s"] == pytest.approx(compute_s)
    assert b["latency_s"]["dram_s"] == pytest.approx(dram_s)
    assert b["latency_s"]["value"] == pytest.approx(max(compute_s, dram_s))
    static_w = 0.05 + 0.02 + 0.01 + 0.03 + 0.06 + 0.413
    # the cheapest engine listing conv_pointwise: the SAT's shift-add, 1.0 pJ (a bound, whatever the scheme)
    energy = macs * 1.0 * PJ + compulsory_read * 160 * PJ + compulsory_write * 150 * PJ
    energy += static_w * max(compute_s, dram_s)
    assert b["energy_j"]["value"] == pytest.approx(energy)
    assert r.checks["energy_ge_lower_bound"]["bound"] == pytest.approx(energy)
    assert r.checks["energy_ge_lower_bound"]["held"] and r.checks["latency_ge_roofline"]["held"]
    assert r.energy_j >= b["energy_j"]["value"] and r.latency_s >= b["latency_s"]["value"]
    assert b["edp_js"]["value"] == pytest.approx(energy * max(compute_s, dram_s))


def banked(spec, preset="ddr4_2400_x64"):
    p = PRESETS[preset]
    return spec.with_changes(
        dram=replace(
            spec.dram,
            model="banked",
            banked=BankedDramConfig(p),
            peak_bandwidth_bytes_per_s=float(p.peak_bandwidth_bytes_per_s),
            burst_bytes=p.organization.burst_bytes,
            latency_s=0.0,
        )
    )


def test_banked_dram_is_priced_per_command():
    spec = banked(SPEC)
    r = simulate(chain(pointwise("pw", 128, 128, 28)), spec, values=False)
    cmd = r.dram["commands"]
    dram = [e for e in r.energy["events"] if e["component"] == "dram"]
    assert {e["layer"] for e in dram} == {"(run)"}
    got = {e["kind"]: (e["count"], e["joules_per_event"]) for e in dram}
    assert got["ACT+PRE"] == (cmd["ACT"], pytest.approx(3.35e-9))
    assert got["RD"] == (cmd["RD"], pytest.approx(2.94e-9))
    assert got["WR"] == (cmd["WR"], pytest.approx(2.56e-9))
    # the arch's background power entry (0.413 W, one rank) wins over the preset's; counted once, as a DRAM
    # event (not again as static power)
    assert got["background"] == (pytest.approx(r.latency_s), pytest.approx(0.413))
    users = [e["component"] for e in r.energy["events"] if e["coefficient"] == "dram_background"]
    assert users == ["dram"]
    expected = cmd["ACT"] * 3.35e-9 + cmd["RD"] * 2.94e-9 + cmd["WR"] * 2.56e-9 + cmd["REF"] * 0.70e-6
    expected += 0.413 * r.latency_s
    assert r.energy_breakdown_j["dram"] == pytest.approx(expected, rel=1e-9)
    # an arch entry replaces the preset's coefficient for one command
    act = EnergyEntry("my_act", 1e-9, "nJ", "assumed: test")
    r2 = simulate(
        chain(pointwise("pw", 128, 128, 28)),
        spec.with_changes(dram=replace(spec.dram, act_energy=act)),
        values=False,
    )
    assert r2.energy_breakdown_j["dram"] == pytest.approx(expected - cmd["ACT"] * (3.35e-9 - 1e-9), rel=1e-9)
