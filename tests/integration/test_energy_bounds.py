"""Every bundled workload on every bundled config: energy and latency at or above their lower bounds, and
energy the sum of its counted events (archsim/energy; docs/modelling.md "Energy")."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pytest

from archsim import flow

REPO = Path(__file__).resolve().parents[2]
MODELS = ["efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "efficientvit_b3"]
CONFIGS = {  # config -> the policy it is run with (its own, or the uniform 8-bit one)
    "m2vit": "m2q",
    "m2vit_asic28": "m2q",
    "uniform_int8": "uniform_w8a8",
    "uniform_int8_asic28": "uniform_w8a8",
    "peer32_ws": "uniform_w8a8",
}


@lru_cache(maxsize=None)
def _graph(model: str, policy: str):
    workload = flow.load_workload(model, policy=policy)
    return workload, flow.workload_graph(workload)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_bounds_hold_on_every_config(model):
    for arch, policy in CONFIGS.items():
        workload, graph = _graph(model, policy)
        result = flow.run(
            workload, flow.load_arch(REPO / "arch_configs" / f"{arch}.yaml"), graph=graph, values=False
        )
        b = result.bounds
        assert result.latency_s >= b["latency_s"]["value"] > 0, arch
        assert result.energy_j >= b["energy_j"]["value"] > 0, arch
        assert result.edp_js >= b["edp_js"]["value"], arch
        assert result.checks["energy_ge_lower_bound"]["held"] and result.checks["latency_ge_roofline"]["held"]
        events = result.energy["events"]
        assert result.energy_j == pytest.approx(
            math.fsum(e["count"] * e["joules_per_event"] for e in events), rel=1e-9
        )
