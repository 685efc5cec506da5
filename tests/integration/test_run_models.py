"""End to end: every bundled EfficientViT on both reference configs,
through the same flow as `archsim run`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from archsim import flow
from archsim.graph.ir import OpKind, layers

REPO = Path(__file__).resolve().parents[2]
M2VIT = REPO / "arch_configs" / "m2vit.yaml"
UNIFORM = REPO / "arch_configs" / "uniform_int8.yaml"
MODELS = ["efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "efficientvit_b3"]


@lru_cache(maxsize=None)
def _graph(model: str, policy: str):
    workload = flow.load_workload(model, policy=policy)
    return workload, flow.build_workload_graph(workload)


@lru_cache(maxsize=None)
def _spec(path: Path):
    return flow.load_arch(path)


@pytest.mark.parametrize("model", MODELS)
def test_m2q_on_m2vit_and_w8a8_on_baseline_complete(model):
    for policy, arch in (("m2q", M2VIT), ("uniform_w8a8", UNIFORM)):
        workload, graph = _graph(model, policy)
        result = flow.run(workload, _spec(arch), graph=graph)
        assert result.latency_cycles > 0 and result.energy_j > 0
        assert result.edp_js == pytest.approx(result.energy_j * result.latency_s)
        # time is kept in picoseconds (DRAM timing is not cycle-aligned); cycles round it up
        period_s = 1 / result.clock_hz
        assert result.latency_s <= result.latency_cycles * period_s < result.latency_s + period_s
        assert sum(result.energy_breakdown_j.values()) == pytest.approx(result.energy_j)
        assert all(check["held"] for check in result.checks.values())
        # every MAC of the graph is executed by some engine exactly once
        graph_macs = sum(layer.macs for layer in layers(graph))
        assert sum(layer.macs for layer in result.layers) == graph_macs
        assert len(result.layers) == graph.number_of_nodes()


def test_b1_on_m2vit_maps_depthwise_to_mpma_and_splits_pointwise_with_sat():
    workload, graph = _graph("efficientvit_b1", "m2q")
    result = flow.run(workload, _spec(M2VIT), graph=graph)
    by_name = {layer.name: layer for layer in result.layers}
    split = 0
    for layer in layers(graph):
        record = by_name[layer.name]
        if layer.kind == OpKind.CONV_DEPTHWISE:
            assert record.engines == ["mpma"] and record.mode == "single", layer.name
        if layer.kind == OpKind.CONV_POINTWISE and 0 < layer.quant.apot_filters < layer.out_channels:
            assert sorted(record.engines) == ["mpma", "sat"], layer.name
            split += 1
    assert split > 0
    engines = {name.split(".")[-1]: e for name, e in result.engines.items()}
    assert engines["sat"].macs > 0 and engines["mpma"].macs > 0
    # the SAT does exactly the APoT filters' MACs
    apot_macs = sum(
        layer.macs * layer.quant.apot_filters // layer.out_channels
        for layer in layers(graph)
        if layer.quant is not None and layer.quant.apot_mask is not None
    )
    assert engines["sat"].macs == apot_macs


def test_uniform_graph_runs_on_m2vit_without_the_sat():
    workload, graph = _graph("efficientvit_b0", "uniform_w8a8")
    result = flow.run(workload, _spec(M2VIT), graph=graph)
    engines = {name.split(".")[-1]: e for name, e in result.engines.items()}
    assert engines["sat"].macs == 0
    depthwise = [r for r in result.layers if r.kind == OpKind.CONV_DEPTHWISE.value]
    assert depthwise and all(r.mode == "merged" for r in depthwise)  # 8-bit weights: no single mode


def test_m2q_graph_is_rejected_by_the_uniform_baseline_with_a_clear_error():
    workload, graph = _graph("efficientvit_b0", "m2q")
    with pytest.raises(flow.UnsupportedWorkloadError, match="APoT filters.*no engine mode supports it"):
        flow.run(workload, _spec(UNIFORM), graph=graph)
