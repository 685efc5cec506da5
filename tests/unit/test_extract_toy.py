"""Extraction on a small model built from the EfficientViT blocks (same module and op patterns)."""


import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from archsim.graph.extract import extract_graph
from archsim.graph.ir import OpKind, graph_outputs, layers, total_macs
from archsim.quant.quantize import quantize_model
from archsim.workload.efficientvit import ClassifierHead, ConvNormAct, DSConv, EfficientVitBlock, ResidualBlock

RES = 32
META = dict(model="toy", resolution=RES, batch=1, policy="fp32", seed=0)


class Toy(nn.Module):
    """stem conv -> residual DSConv -> EfficientViT block (LiteMLA + MBConv) -> classifier head."""

    def __init__(self):
        super().__init__()
        self.stem = ConvNormAct(3, 16, 3, stride=2)
        self.ds = ResidualBlock(DSConv(16, 16), nn.Identity())
        self.down = ConvNormAct(16, 32, 3, stride=2)
        self.block = EfficientVitBlock(32, head_dim=8)
        self.head = ClassifierHead(32, (48, 40), num_classes=10)

    def forward(self, x):
        return self.head(self.block(self.down(self.ds(self.stem(x)))))


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    model = Toy().eval()
    with torch.no_grad():  # non-trivial BN statistics so folding matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def fp32_graph(toy):
    return extract_graph(toy, None, (1, 3, RES, RES), META)


def by_name(graph):
    return {layer.name: layer for layer in layers(graph)}


def test_node_kinds_and_names(fp32_graph):
    L = by_name(fp32_graph)
    mla = "block.context_module.main"
    assert L["stem"].kind == OpKind.CONV_DENSE
    assert L["ds.main.depth_conv"].kind == OpKind.CONV_DEPTHWISE
    assert L["ds.main.point_conv"].kind == OpKind.CONV_POINTWISE
    assert L[f"{mla}.qkv"].kind == OpKind.CONV_POINTWISE
    assert L[f"{mla}.aggreg.0.0"].kind == OpKind.CONV_DEPTHWISE
    assert L[f"{mla}.aggreg.0.1"].kind == OpKind.CONV_GROUPED
    assert L["head.global_pool"].kind == OpKind.POOL
    assert L["head.classifier.1"].kind == OpKind.NORM
    assert L["head.classifier.4"].kind == OpKind.LINEAR
    kinds = [layer.kind for layer in layers(fp32_graph)]
    assert kinds.count(OpKind.MATMUL) == 2 and kinds.count(OpKind.DIV) == 1
    assert kinds.count(OpKind.ADD) == 3  # DSConv, LiteMLA and MBConv residuals
    assert OpKind.ACTIVATION not in kinds  # every activation fused (epilogue or prologue)


def test_epilogues_fold_bn_activation_and_prologue_relu(fp32_graph):
    L = by_name(fp32_graph)
    assert L["stem"].epilogue == ("bias", "bn_folded", "hardswish")
    assert L["ds.main.point_conv"].epilogue == ("bias", "bn_folded")
    assert L["head.classifier.1"].epilogue == ("hardswish",)  # LayerNorm + Hardswish
    mm = [layer for layer in layers(fp32_graph) if layer.kind == OpKind.MATMUL]
    assert all(layer.epilogue == ("relu_in0",) for layer in mm)  # ReLU on k (first) and q (second)
    div = next(layer for layer in layers(fp32_graph) if layer.kind == OpKind.DIV)
    assert div.attrs["eps"] == pytest.approx(1e-5)


def test_edges_skip_layout_ops_and_split_concatenated_operands(fp32_graph):
    G = fp32_graph
    mla = "block.context_module.main"
    div = next(layer for layer in layers(G) if layer.kind == OpKind.DIV)
    mm = [layer for layer in layers(G) if layer.kind == OpKind.MATMUL]
    kv, out = mm
    # k^T [v|1]: k and v each concatenated from the qkv conv and the aggregation: 4 parts
    heads, n, d = 4, 64, 8  # 32 channels / dim 8 per scale; 8x8 tokens
    assert kv.in_shapes == ((1, heads, d, n), (1, heads, d, n), (1, heads, n, d), (1, heads, n, d))
    assert G.edges[f"{mla}.qkv", kv.name]["ports"] == [0, 2]
    assert G.edges[f"{mla}.aggreg.0.1", kv.name]["ports"] == [1, 3]
    qkv_bytes = G.nodes[f"{mla}.qkv"]["layer"].output_bytes
    assert G.edges[f"{mla}.qkv", kv.name]["read_bytes"] * 3 == qkv_bytes * 2  # k and v of [q|k|v]
    assert G.edges[f"{mla}.qkv", out.name]["read_bytes"] * 3 == qkv_bytes  # q
    assert G.edges[f"{mla}.proj", "block.context_module.add"]["read_bytes"] == G.edges[f"{mla}.proj", "block.context_module.add"]["bytes"]
    assert out.in_shapes[-1] == (1, 2 * heads, d, d + 1)  # kv from the first matmul
    assert list(G.predecessors(div.name)) == [out.name]
    assert G.edges[out.name, div.name]["ports"] == [0, 1]
    assert div.in_shapes == ((1, 2 * heads, n, d), (1, 2 * heads, n, 1))
    assert list(G.predecessors(f"{mla}.proj")) == [div.name]
    assert list(G.predecessors("head.classifier.0")) == ["head.global_pool"]  # flatten folded
    assert set(G.predecessors("block.context_module.add")) == {f"{mla}.proj", "down"}


def test_mac_counts_follow_the_formulas(fp32_graph, toy):
    L = by_name(fp32_graph)
    assert L["stem"].macs == 1 * 16 * 16 * 16 * 3 * 3 * 3
    assert L["ds.main.depth_conv"].macs == 16 * 16 * 16 * 1 * 9
    assert L["block.context_module.main.aggreg.0.1"].macs == 96 * 8 * 8 * (96 // 12)
    assert L["block.context_module.main.aggreg.0.0"].macs == 96 * 8 * 8 * 25
    heads, n, d = 8, 64, 8
    mm = [layer for layer in layers(fp32_graph) if layer.kind == OpKind.MATMUL]
    assert [layer.macs for layer in mm] == [heads * d * n * (d + 1), heads * n * d * (d + 1)]
    assert L["head.classifier.4"].macs == 40 * 10
    conv_lin = sum(
        (m.weight.numel() * (L[name].out_shape[2] * L[name].out_shape[3] if isinstance(m, nn.Conv2d) else 1))
        for name, m in ((n.removesuffix(".conv"), m) for n, m in toy.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    )
    assert total_macs(fp32_graph) == conv_lin + sum(layer.macs for layer in mm)


def test_graph_is_dag_from_input_to_classifier(fp32_graph):
    G = fp32_graph
    assert nx.is_directed_acyclic_graph(G)
    order = G.graph["order"]
    assert order[0] == "stem" and G.nodes["stem"]["layer"].attrs["external_inputs"] == [0]
    assert graph_outputs(G) == ["head.classifier.4"]
    assert all(G.graph[k] == v for k, v in META.items())
    assert all(layer.out_bits == 32 and layer.act_bits == 32 for layer in layers(G))
    assert [layer.name for layer in layers(G)] == order


@pytest.fixture(scope="module")
def m2q_graph(toy):
    gen = torch.Generator().manual_seed(5)
    batches = [torch.randn(2, 3, RES, RES, generator=gen) for _ in range(2)]
    q = quantize_model(toy, "m2q", batches)
    return q, extract_graph(toy, q, (1, 3, RES, RES), dict(META, policy="m2q"))


def test_quantized_graph_carries_quant_info(m2q_graph):
    q, G = m2q_graph
    L = by_name(G)
    for layer in layers(G):
        assert layer.quant is not None
        if layer.kind.has_weights:
            info = layer.quant
            assert info.weight_int.shape == layer.weight_shape
            deq = info.weight_int * info.weight_scale.reshape((-1,) + (1,) * (info.weight_int.ndim - 1))
            assert np.allclose(deq, q.weights[layer.name].dequantized())
            expected_bits = 4 if layer.kind == OpKind.CONV_DEPTHWISE else 8
            assert layer.weight_bits == info.weight_bits == expected_bits
            assert np.abs(info.weight_int[~info.apot_mask] if layer.kind != OpKind.CONV_DEPTHWISE else info.weight_int).max() <= 2 ** (expected_bits - 1)
    mm = [layer for layer in layers(G) if layer.kind == OpKind.MATMUL]
    assert all(layer.out_bits == 32 and "requant" not in layer.epilogue for layer in mm)
    assert L["head.classifier.4"].out_bits == 32 and L["head.classifier.4"].quant.out_scale is None
    assert L["stem"].out_bits == 8 and L["stem"].quant.out_scale > 0 and "requant" in L["stem"].epilogue
    assert L["stem"].quant.in_scales[0] == pytest.approx(q.activations["input:x"].scale)
    proj = L["block.context_module.main.proj"]
    div = next(layer for layer in layers(G) if layer.kind == OpKind.DIV)
    assert proj.quant.in_scales == (pytest.approx(div.quant.out_scale),)
    assert div.act_bits == 32 and div.out_bits == 8
    assert q.policy.name == "m2q" and G.graph["policy"] == "m2q"


def test_fake_quant_model_tracks_fp32(m2q_graph, toy):
    q, _ = m2q_graph
    x = torch.randn(2, 3, RES, RES, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ref, out = toy(x), q(x)
    assert out.shape == ref.shape
    assert torch.nn.functional.cosine_similarity(ref.flatten(), out.flatten(), dim=0) > 0.9
    assert not torch.equal(ref, out)  # quantization did change something


def test_meta_is_required(toy):
    with pytest.raises(ValueError, match="meta lacks"):
        extract_graph(toy, None, (1, 3, RES, RES), {"model": "toy"})


def test_unsupported_module_is_a_clear_error():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.MaxPool2d(2)).eval()
    with pytest.raises(ValueError, match="unsupported module MaxPool2d"):
        extract_graph(model, None, (1, 3, 8, 8), META)
