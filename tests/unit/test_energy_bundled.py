"""EfficientViT-B0 on the bundled configs (64 px, graph cache): energy at or above its bound and equal to its
counted events; an energy_overrides entry moves exactly its component. B0-B3 at 224 px on every config:
tests/integration/test_energy_bounds.py."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pytest

from archsim import flow
from archsim.arch.loader import load_arch

CONFIGS = Path(__file__).resolve().parents[2] / "arch_configs"
POLICY = {
    "m2vit": "m2q",
    "m2vit_asic28": "m2q",
    "uniform_int8": "uniform_w8a8",
    "uniform_int8_asic28": "uniform_w8a8",
    "peer32_ws": "uniform_w8a8",
}
RESOLUTION = 64  # [choice] small maps: the whole graph in seconds, every layer kind still there


@lru_cache(maxsize=None)
def graph(model: str, policy: str):
    workload = flow.load_workload(model, policy=policy, resolution=RESOLUTION)
    return workload, flow.workload_graph(workload)


@pytest.mark.parametrize("arch", sorted(POLICY))
def test_bounds_hold_and_energy_is_its_events(arch):
    workload, g = graph("efficientvit_b0", POLICY[arch])
    r = flow.run(workload, load_arch(CONFIGS / f"{arch}.yaml"), graph=g, values=False, advise=False)
    assert r.latency_s >= r.bounds["latency_s"]["value"] > 0
    assert r.energy_j >= r.bounds["energy_j"]["value"] > 0
    assert r.checks["energy_ge_lower_bound"]["held"] and r.checks["latency_ge_roofline"]["held"]
    events = r.energy["events"]
    assert r.energy_j == pytest.approx(
        math.fsum(e["count"] * e["joules_per_event"] for e in events), rel=1e-9
    )
    assert r.energy["per_mac_j"] == pytest.approx(r.energy_j / sum(lr.macs for lr in r.layers))


def test_an_override_moves_exactly_its_component(tmp_path):
    """m2vit_asic28 with ddr4_read x 2 through energy_overrides: only the DRAM's energy changes, by its read
    bytes x 138 pJ/B."""
    workload, g = graph("efficientvit_b0", "m2q")
    text = (CONFIGS / "m2vit_asic28.yaml").read_text()
    changed = text.replace(
        "energy:                 #",
        'energy_overrides:\n  ddr4_read: {value: 276 pJ/B, source: "assumed: 2 x ddr4_read"}\nenergy:  #',
    )
    (tmp_path / "uniform_int8_asic28.yaml").write_text((CONFIGS / "uniform_int8_asic28.yaml").read_text())
    (tmp_path / "m2vit_asic28.yaml").write_text(changed)
    base = flow.run(workload, load_arch(CONFIGS / "m2vit_asic28.yaml"), graph=g, values=False, advise=False)
    new = flow.run(workload, load_arch(tmp_path / "m2vit_asic28.yaml"), graph=g, values=False, advise=False)
    read_bytes = sum(lr.dram_read_bytes for lr in base.layers)
    for key, joules in base.energy_breakdown_j.items():
        if key == "dram":
            assert new.energy_breakdown_j[key] == pytest.approx(joules + read_bytes * 138e-12, rel=1e-9)
        else:
            assert new.energy_breakdown_j[key] == joules, key
    assert new.latency_cycles == base.latency_cycles
