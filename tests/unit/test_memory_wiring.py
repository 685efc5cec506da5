"""The banked DRAM and the routed interconnects wired into the simulator, and their YAML."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sim_fixtures import chain, m2vit_spec, pointwise

from archsim.arch.dram import BankedDramConfig
from archsim.arch.dram_presets import PRESETS
from archsim.arch.errors import ArchConfigError
from archsim.arch.loader import load_arch
from archsim.arch.spec import EnergyEntry
from archsim.sim import simulate

M2VIT = Path(__file__).resolve().parents[2] / "arch_configs" / "m2vit.yaml"
ONE_TILE = {"min_tiles": 1, "max_tiles": 1}


def _banked(spec, preset="ddr4_2400_x64", **config):
    p = PRESETS[preset]
    return spec.with_changes(
        dram=replace(
            spec.dram,
            model="banked",
            banked=BankedDramConfig(p, **config),
            peak_bandwidth_bytes_per_s=float(p.peak_bandwidth_bytes_per_s),
            burst_bytes=p.organization.burst_bytes,
            latency_s=0.0,
        )
    )


def test_banked_run_reports_commands_and_never_beats_peak():
    spec = _banked(m2vit_spec())
    layer = pointwise("pw", 128, 128, 28)
    result = simulate(chain(layer), spec)
    d = result.dram
    assert d["model"] == "banked" and d["preset"] == "ddr4_2400_x64"
    assert d["bytes_read"] == layer.weight_bytes + layer.input_bytes  # 64 B aligned tensors: no extra bursts
    assert d["bytes_written"] == layer.output_bytes
    assert d["commands"]["RD"] * 64 == d["bytes_read"] and d["commands"]["WR"] * 64 == d["bytes_written"]
    assert d["row_hit_rate"] > 0.9  # streaming tensors: a few ACTs per 8 KiB row
    assert d["achieved_bandwidth_Bps"] <= d["peak_bandwidth_Bps"]
    assert result.checks["dram_bandwidth_le_peak"]["held"]


def test_banked_fifo_and_frfcfs_are_both_deterministic():
    for scheduler in ("fifo", "frfcfs"):
        spec = _banked(m2vit_spec(), scheduler=scheduler)
        graph = chain(pointwise("a", 64, 64, 14), pointwise("b", 64, 96, 14))
        assert (
            simulate(graph, spec).to_dict()
            == simulate(chain(pointwise("a", 64, 64, 14), pointwise("b", 64, 96, 14)), spec).to_dict()
        )


def _mesh(spec, hop_pj=0.5, hop_cycles=1):
    noc = replace(
        spec.interconnect,
        topology="mesh",
        shape=(2, 2),
        latency_cycles=hop_cycles,
        energy_per_byte_hop=EnergyEntry("hop", hop_pj * 1e-12, "pJ/B", "assumed: test"),
        placement=(("act_buffer", (1, 1)), ("dram", (0, 0)), ("weight_buffer", (0, 1))),
    )
    return spec.with_changes(interconnect=noc)


def test_a_mesh_charges_bytes_times_hops():
    # dram at (0,0); weights to (0,1): 1 hop; inputs to and outputs from (1,1): 2 hops each
    spec = _mesh(m2vit_spec(params=ONE_TILE))
    layer = pointwise("pw", 64, 64, 8)
    result = simulate(chain(layer), spec)
    hops = layer.weight_bytes * 1 + layer.input_bytes * 2 + layer.output_bytes * 2
    assert result.energy_breakdown_j["interconnect"] == pytest.approx(hops * 0.5e-12, rel=1e-12)
    bus = simulate(chain(pointwise("pw", 64, 64, 8)), m2vit_spec(params=ONE_TILE))
    assert result.layers[0].dram_read_bytes == bus.layers[0].dram_read_bytes


def test_more_hop_latency_never_helps():
    base = simulate(chain(pointwise("pw", 64, 64, 8)), _mesh(m2vit_spec(params=ONE_TILE), hop_cycles=1))
    slow = simulate(chain(pointwise("pw", 64, 64, 8)), _mesh(m2vit_spec(params=ONE_TILE), hop_cycles=20))
    assert slow.latency_cycles > base.latency_cycles


def _yaml(tmp_path, old: str, new: str) -> Path:
    text = M2VIT.read_text().replace("baseline: {arch: uniform_int8.yaml", "baseline: {arch: uniform_int8")
    assert old in text
    path = tmp_path / "m2vit.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_dram_and_interconnect_yaml_errors_name_the_field(tmp_path):
    banked = _yaml(tmp_path, "  peak_bandwidth: 19.2 GB/s", "  model: banked\n  peak_bandwidth: 19.2 GB/s")
    with pytest.raises(
        ArchConfigError, match=r"dram.preset: required with model: banked; allowed: ddr4_2400_x64"
    ):
        load_arch(banked)
    ok = _yaml(tmp_path, "  peak_bandwidth: 19.2 GB/s", "  model: banked\n  preset: ddr4_2400_x64")
    spec = load_arch(ok)
    assert spec.dram.model == "banked" and spec.dram.peak_bandwidth_bytes_per_s == pytest.approx(19.2e9)
    wrong_map = _yaml(
        tmp_path,
        "  peak_bandwidth: 19.2 GB/s",
        "  model: banked\n  preset: ddr4_2400_x64\n  address_map: ro:co:ba",
    )
    with pytest.raises(ArchConfigError, match="dram.address_map: .*does not cover the organisation"):
        load_arch(wrong_map)
    mesh = _yaml(
        tmp_path,
        "  bandwidth: 128 B/cycle # chosen",
        "  topology: mesh\n  shape: [2, 2]\n"
        "  placement: {dram: [0, 0], act_buffer: [1, 1], weigth_buffer: [0, 1]}\n  bandwidth: 128 B/cycle #",
    )
    with pytest.raises(ArchConfigError) as err:
        load_arch(mesh)
    text = str(err.value)
    assert "interconnect.placement.weigth_buffer: not a node; did you mean 'weight_buffer'?" in text
    assert "interconnect.placement: place weight_buffer" in text
