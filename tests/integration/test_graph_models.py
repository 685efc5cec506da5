"""Whole EfficientViT models through quantization and extraction."""

import math

import networkx as nx
import numpy as np
import pytest

from archsim.frontend.build import build_graph
from archsim.frontend.extract import extract_graph, quant_share_summary
from archsim.graph.ir import OpKind, graph_outputs, layers, total_macs
from archsim.quant.quantize import quantize_model
from archsim.quant.quantizers import apot_levels, apot_unit_exponent
from archsim.workload.config import Calibration, Workload
from archsim.workload.data import synthetic_batches
from archsim.workload.efficientvit import build_model, create_model

# Published GMACs at 224x224 (mit-han-lab/efficientvit README and timm model cards), given to
# two significant digits. They include the attention matmuls: without them B2 would be 3 % low.
PUBLISHED_GMACS = {"b0": 0.10, "b1": 0.52, "b2": 1.6, "b3": 4.0}


def _meta(name, policy):
    return dict(model=name, resolution=224, batch=1, policy=policy, seed=0)


def _published_tolerance(published: float) -> float:
    """1 %, or half a unit of the last published digit when the rounding is coarser (B3: 4.0 -> +-0.05)."""
    digits = 2 - 1 - math.floor(math.log10(published))  # decimals of a 2-significant-digit number
    return max(0.01 * published, 0.5 * 10 ** (-digits))


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_mac_totals_match_published(name):
    graph = extract_graph(create_model(name).eval(), None, (1, 3, 224, 224), _meta(name, "fp32"))
    gmacs = total_macs(graph) / 1e9
    published = PUBLISHED_GMACS[name]
    assert abs(gmacs - published) <= _published_tolerance(published), (
        f"{name}: {gmacs:.4f} G vs {published} G"
    )
    assert all(layer.macs > 0 for layer in layers(graph) if layer.kind.is_mac)


@pytest.fixture(scope="module")
def b1_model():
    return build_model("b1", seed=0)


@pytest.fixture(scope="module")
def b1_calibration():
    return synthetic_batches(4, 2, 224, seed=11)


@pytest.fixture(scope="module")
def b1_m2q(b1_model, b1_calibration):
    q = quantize_model(b1_model, "m2q", b1_calibration)
    return q, extract_graph(b1_model, q, (1, 3, 224, 224), _meta("b1", "m2q"))


def test_m2q_b1_bit_widths_and_schemes(b1_m2q):
    q, graph = b1_m2q
    weighted = [layer for layer in layers(graph) if layer.kind.has_weights]
    depthwise = [layer for layer in weighted if layer.kind == OpKind.CONV_DEPTHWISE]
    assert len(depthwise) == 22  # 15 MBConv/DSConv 3x3 + 7 LiteMLA 5x5 aggregations
    for layer in depthwise:
        assert layer.weight_bits == 4 and layer.quant.apot_bits is None
        assert -8 <= layer.quant.weight_int.min() and layer.quant.weight_int.max() <= 7
    mixed = [layer for layer in weighted if layer.quant.apot_bits is not None]
    # every 1x1 (pointwise, qkv, proj, grouped aggregation) and the hidden Linear has the choice
    assert {layer.kind for layer in mixed} == {OpKind.CONV_POINTWISE, OpKind.CONV_GROUPED, OpKind.LINEAR}
    assert "head.classifier.4" not in {layer.name for layer in mixed}
    assert "stem.in_conv" not in {layer.name for layer in mixed}
    for w in q.weights.values():  # the choice is exactly the per-filter MSE rule
        if w.apot_bits is not None:
            assert np.array_equal(w.apot_mask, w.mse_apot <= w.mse_uniform)
            assert (w.mse_uniform > 0).all()
    share = quant_share_summary(graph)
    assert share["mixed_filters"] == sum(layer.out_channels for layer in mixed)
    assert share["apot_share"] == pytest.approx(q.apot_share())
    # m2q compares the schemes at 4 bits: a non-trivial share of filters goes to APoT, not all
    assert 0.2 < share["apot_share"] < 1.0
    levels = {int(round(v * 2 ** apot_unit_exponent(4))) for v in apot_levels(4)}  # 4-bit APoT codes
    for layer in mixed:
        q_info = layer.quant
        assert q_info.apot_bits == 4 and layer.weight_bits == 8
        apot_codes = np.abs(q_info.weight_int[q_info.apot_mask])
        assert set(np.unique(apot_codes).tolist()) <= levels
    print(f"\nB1 m2q APoT share (APoT-4 vs uniform at 4 bits, pure MSE rule): {share}")


def test_m2q_b1_wide_tensors_and_io(b1_m2q):
    _, graph = b1_m2q
    assert nx.is_directed_acyclic_graph(graph)
    first = graph.graph["order"][0]
    assert first == "stem.in_conv" and graph.nodes[first]["layer"].external_ports == [0]
    assert graph_outputs(graph) == ["head.classifier.4"]
    L = {layer.name: layer for layer in layers(graph)}
    assert L["head.classifier.4"].out_bits == 32
    for layer in layers(graph):
        assert layer.out_bits == (
            32 if layer.kind == OpKind.MATMUL or layer.name == "head.classifier.4" else 8
        )
    assert sum(layer.kind == OpKind.MATMUL for layer in layers(graph)) == 14  # 7 LiteMLA x 2


def test_uniform_w8a8_b1_has_no_apot(b1_model, b1_calibration):
    q = quantize_model(b1_model, "uniform_w8a8", b1_calibration)
    graph = extract_graph(b1_model, q, (1, 3, 224, 224), _meta("b1", "uniform_w8a8"))
    for layer in layers(graph):
        if layer.kind.has_weights:
            assert layer.weight_bits == 8 and layer.quant.apot_filters == 0 and layer.quant.apot_bits is None
        assert layer.act_bits in (8, 32)
    assert quant_share_summary(graph)["apot_share"] == 0.0
    # Trio-ViT refinements recorded per layer (B1: 14 MBConvs, 7 LiteMLAs, 1 DSConv): every division
    # gets a power-of-two denominator, every MBConv depthwise conv a migration, every
    # MBConv/DSConv point conv and LiteMLA proj a shift
    attrs = q.layer_attrs
    assert sum(a.get("denominator") == "log2" for a in attrs.values()) == 7
    assert sum("input_channel_divisor" in a for a in attrs.values()) == 14
    projections = [
        layer.name for layer in layers(graph) if layer.name.endswith(("main.proj", "main.point_conv"))
    ]
    assert len(projections) == 22 and all("input_channel_shift" in attrs[name] for name in projections)


def test_m2q_balanced_b1_fraction_exact_per_layer(b1_model, b1_calibration):
    q = quantize_model(b1_model, "m2q_balanced", b1_calibration)
    mixed = [w for w in q.weights.values() if w.apot_bits is not None]
    assert len(mixed) > 0 and all(w.role == "pointwise" for w in mixed)
    for w in mixed:
        filters = w.apot_mask.size
        assert int(w.apot_mask.sum()) == math.floor(0.8 * filters + 0.5), w.name
        penalty = w.mse_apot / w.mse_uniform
        if 0 < w.apot_mask.sum() < filters:
            assert penalty[~w.apot_mask].min() >= penalty[w.apot_mask].max(), w.name
    assert q.apot_share() == pytest.approx(0.8, abs=0.002)


def test_build_graph_end_to_end():
    workload = Workload(
        name="b0", model="efficientvit_b0", policy="m2q", calibration=Calibration(samples=2, batch_size=2)
    )
    graph = build_graph(workload, quality_samples=2)
    assert {k: graph.graph[k] for k in ("model", "resolution", "batch", "policy", "seed")} == dict(
        model="efficientvit_b0", resolution=224, batch=1, policy="m2q", seed=0
    )
    summary = graph.graph["quant_summary"]
    assert summary["samples"] == 2 and -1.0 <= summary["cosine"] <= 1.0 and math.isfinite(summary["sqnr_db"])
    assert 0.0 <= summary["apot_share"] <= 1.0
    assert abs(total_macs(graph) / 1e9 - 0.10) < 0.01
