"""Extraction on a small model built from the EfficientViT blocks (same module and op patterns)."""

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from archsim.frontend.extract import extract_graph
from archsim.graph.access import Concat, Permute, Relu, Reshape, Slice
from archsim.graph.ir import (
    Denominator,
    NormAttrs,
    OpKind,
    OutputRefinement,
    graph_outputs,
    layers,
    total_macs,
)
from archsim.quant.quantize import quantize_model
from archsim.workload.efficientvit import (
    ClassifierHead,
    ConvNormAct,
    DSConv,
    EfficientVitBlock,
    ResidualBlock,
)

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
    assert all(layer.epilogue == () for layer in mm)
    # the ReLU on k (first matmul) and q (second) is a step of their first operand's access program
    kv, out = mm
    assert [type(s) for s in kv.operands[0].program] == [Concat, Reshape, Permute, Slice, Relu, Permute]
    assert [type(s) for s in out.operands[0].program] == [Concat, Reshape, Permute, Slice, Relu]
    assert not any(isinstance(s, Relu) for s in kv.operands[1].program)  # v is not rectified
    div = next(layer for layer in layers(fp32_graph) if layer.kind == OpKind.DIV)
    assert div.div.eps == pytest.approx(1e-5)


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
    assert (
        G.edges[f"{mla}.proj", "block.context_module.add"]["read_bytes"]
        == G.edges[f"{mla}.proj", "block.context_module.add"]["bytes"]
    )
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
        for name, m in (
            (n.removesuffix(".conv"), m)
            for n, m in toy.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))
        )
    )
    assert total_macs(fp32_graph) == conv_lin + sum(layer.macs for layer in mm)


def test_graph_is_dag_from_input_to_classifier(fp32_graph):
    G = fp32_graph
    assert nx.is_directed_acyclic_graph(G)
    order = G.graph["order"]
    assert order[0] == "stem" and G.nodes["stem"]["layer"].external_ports == [0]
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
            assert np.abs(
                info.weight_int[~info.apot_mask] if layer.kind != OpKind.CONV_DEPTHWISE else info.weight_int
            ).max() <= 2 ** (expected_bits - 1)
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


# -- integer-path parameters (docs/quantization.md, "Integer semantics") ----------------------
def _real(m0, shift):
    return np.asarray(m0, dtype=np.float64) * np.exp2(-np.asarray(shift, dtype=np.float64))


def test_requant_multipliers_reproduce_the_float_scales(m2q_graph):
    _, G = m2q_graph
    checked = 0
    for layer in layers(G):
        info = layer.quant
        if not layer.kind.has_weights or info.out_scale is None:
            continue
        s_in = info.in_scales[0]
        target = info.lut_in_scale if "hardswish" in layer.epilogue else info.out_scale
        expected = s_in * info.weight_scale / target
        assert info.requant_m0.shape == info.requant_shift.shape == info.weight_scale.shape
        assert np.all((info.requant_m0 >= 2**30) & (info.requant_m0 < 2**31))
        assert np.all(np.abs(_real(info.requant_m0, info.requant_shift) - expected) <= expected * 2.0**-30)
        assert np.allclose(info.acc_scale, s_in * info.weight_scale, rtol=0, atol=0)
        checked += 1
    assert checked == 13  # every weighted layer but the (wide) classifier


def test_bias_int_folds_the_input_zero_point(m2q_graph):
    _, G = m2q_graph
    for name in ("stem", "ds.main.point_conv", "block.context_module.main.proj", "head.classifier.4"):
        info = by_name(G)[name].quant
        ratio = info.bias / (info.in_scales[0] * info.weight_scale)
        rounded = np.sign(ratio) * np.floor(np.abs(ratio) + 0.5)  # ties away from zero
        row_sums = info.weight_int.reshape(info.weight_int.shape[0], -1).sum(axis=1)
        assert info.bias_int.dtype == np.int64
        assert np.array_equal(info.bias_int, rounded.astype(np.int64) - info.in_zero_points[0] * row_sums)
    assert by_name(G)["stem"].quant.in_zero_points[0] != 0  # the correction is not vacuous


def test_wide_layers_carry_their_accumulator_scale(m2q_graph):
    _, G = m2q_graph
    L = by_name(G)
    mla = "block.context_module.main"
    s1 = L[f"{mla}.qkv"].quant.out_scale  # heads 0-3: q, k, v from the qkv conv
    s2 = L[f"{mla}.aggreg.0.1"].quant.out_scale  # heads 4-7: from the multi-scale aggregation
    kv, out = L[f"{mla}.matmul"].quant, L[f"{mla}.matmul_1"].quant
    assert kv.requant_m0 is None and kv.acc_scale.shape == (1, 8, 1, 9)
    # k^T [v|1]: columns of v at s_k s_v, the ones column (integer 1 at scale 1) at s_k
    assert kv.acc_scale[0, 0, 0, 0] == s1 * s1 and kv.acc_scale[0, 0, 0, 8] == s1
    assert kv.acc_scale[0, 4, 0, 0] == s2 * s2 and kv.acc_scale[0, 7, 0, 8] == s2
    assert out.acc_scale[0, 0, 0, 0] == pytest.approx(s1**3, rel=1e-15)
    assert out.acc_scale[0, 5, 0, 8] == pytest.approx(s2**2, rel=1e-15)
    assert np.array_equal(out.in_acc_scales[-1], kv.acc_scale) and out.in_acc_scales[0] is None
    cls = L["head.classifier.4"].quant
    assert cls.out_scale is None and cls.requant_m0 is None
    assert np.array_equal(cls.acc_scale, cls.in_scales[0] * cls.weight_scale)


def test_division_requantizes_num_over_den_per_head(m2q_graph):
    _, G = m2q_graph
    L = by_name(G)
    mla = "block.context_module.main"
    s1, s2 = L[f"{mla}.qkv"].quant.out_scale, L[f"{mla}.aggreg.0.1"].quant.out_scale
    div = next(layer for layer in layers(G) if layer.kind == OpKind.DIV)
    info = div.quant
    # num at s_q s_k s_v, den at s_q s_k: the quotient's scale is s_v, so the multiplier is s_v / s_out
    real = _real(info.requant_m0, info.requant_shift)
    assert real.shape == (1, 8, 1, 1)
    assert real[0, 0, 0, 0] == pytest.approx(s1 / info.out_scale, rel=2.0**-30)
    assert real[0, 6, 0, 0] == pytest.approx(s2 / info.out_scale, rel=2.0**-30)
    eps_units = div.div.eps / (s1 * s1) * 256  # eps with 8 fraction bits of a denominator unit
    assert info.eps_int[0, 0, 0, 0] == max(1, int(np.floor(eps_units + 0.5)))


def test_vector_layers_pool_add_and_hardswish_lut(m2q_graph):
    q, G = m2q_graph
    L = by_name(G)
    pool = L["head.global_pool"]
    hw = pool.in_shapes[0][2] * pool.in_shapes[0][3]
    expected = pool.quant.in_scales[0] / (hw * pool.quant.out_scale)
    assert _real(pool.quant.requant_m0, pool.quant.requant_shift)[0] == pytest.approx(expected, rel=2.0**-30)
    add = L["block.local_module.add"].quant
    assert add.requant_shift[0] == add.requant_shift[1]
    assert np.allclose(
        _real(add.requant_m0, add.requant_shift), np.array(add.in_scales) / add.out_scale, rtol=2.0**-29
    )
    stem = L["stem"].quant
    hi = q.activations["stem"].hi
    pre_hi = hi if hi >= 3 else (-3 + np.sqrt(9 + 24 * hi)) / 2  # hardswish(pre_hi) = hi
    assert stem.lut_in_scale.shape == (16,) and np.all(
        stem.lut_in_scale == stem.lut_in_scale[0]
    )  # no refinements
    assert stem.lut_in_bits == 12
    assert stem.lut_in_scale[0] == pytest.approx((pre_hi + 3) / 4095, rel=1e-12)
    assert stem.lut_in_zero_point[0] == int(np.floor(3 / stem.lut_in_scale[0] + 0.5))
    assert L["ds.main.point_conv"].quant.lut_in_scale is None  # no activation: requant to out_scale


def test_fp32_graph_has_no_integer_parameters(fp32_graph):
    assert all(layer.quant is None for layer in layers(fp32_graph))


def _integer_layer_vs_fake_quant(q, layer):
    """Run one weighted layer in integers from the graph's parameters;
    return (integer codes, fake-quant codes)."""
    from archsim.numerics import integer as qi

    info = layer.quant
    module = q.module.get_submodule(q.weights[layer.name].module_path)
    seen = {}
    hook = module.register_forward_hook(lambda m, i, o: seen.update(x=i[0].double(), y=o.double()))
    with torch.no_grad():
        q(torch.randn(1, 3, RES, RES, generator=torch.Generator().manual_seed(11)))
    hook.remove()
    s_in, zp_in = info.in_scales[0], info.in_zero_points[0]
    x_codes = torch.round(seen["x"] / s_in) + zp_in  # the input is fake-quantized: exact codes
    x_codes = torch.nn.functional.pad(x_codes, [module.padding[1]] * 2 + [module.padding[0]] * 2, value=zp_in)
    w = torch.tensor(info.weight_int, dtype=torch.float64)
    acc = torch.nn.functional.conv2d(x_codes, w, None, module.stride, 0, 1, module.groups)  # exact in float64
    acc = acc.numpy().astype(np.int64) + info.bias_int.reshape(1, -1, 1, 1)
    if "hardswish" in layer.epilogue:  # one LUT per channel (its own input grid, refinement divisor / shift)
        channels = acc.shape[1]
        refined = q.layer_attrs.get(layer.name, {})  # the policy's per-channel lists (consumer channels)
        divisor = np.asarray(refined.get("output_channel_divisor", np.ones(channels)))
        shift = np.asarray(refined.get("output_channel_shift", np.zeros(channels)))
        pre = qi.requantize(
            acc, info.requant_m0, info.requant_shift, info.lut_in_zero_point, info.lut_in_bits, axis=1
        )
        codes = np.stack(
            [
                qi.hardswish_lut(
                    info.lut_in_scale[c],
                    info.lut_in_zero_point[c],
                    info.out_scale,
                    info.out_zero_point,
                    8,
                    shift[c],
                    divisor[c],
                    info.lut_in_bits,
                )[pre[:, c]]
                for c in range(channels)
            ],
            axis=1,
        )
        y = (torch.nn.functional.hardswish(seen["y"]).numpy() - shift.reshape(1, -1, 1, 1)) / divisor.reshape(
            1, -1, 1, 1
        )
        ref = qi.quantize_real(y, info.out_scale, info.out_zero_point, 8)
    else:
        codes = qi.requantize(acc, info.requant_m0, info.requant_shift, info.out_zero_point, 8, axis=1)
        ref = qi.quantize_real(seen["y"].numpy(), info.out_scale, info.out_zero_point, 8)
    return codes, ref


def test_integer_conv_from_graph_parameters_tracks_the_fake_quant_model(m2q_graph):
    q, G = m2q_graph
    L = by_name(G)
    codes, ref = _integer_layer_vs_fake_quant(q, L["block.context_module.main.qkv"])
    assert np.array_equal(codes, ref)  # measured: identical on this input (no rounding tie hit)
    for name in ("stem", "head.in_conv"):  # Hardswish via the 12-bit LUT input grid: one extra rounding
        codes, ref = _integer_layer_vs_fake_quant(q, L[name])
        diff = np.abs(codes - ref)
        assert diff.max() == 1 and (diff == 0).mean() > 0.85  # measured 98.4 % and 90 % identical


def test_refined_layers_use_per_channel_lut_grids(toy):
    """uniform_w8a8: channel migration / filter shifting make the stored tensor (y - z_c) / s_c."""
    gen = torch.Generator().manual_seed(5)
    q = quantize_model(toy, "uniform_w8a8", [torch.randn(2, 3, RES, RES, generator=gen) for _ in range(2)])
    G = extract_graph(toy, q, (1, 3, RES, RES), dict(META, policy="uniform_w8a8"))
    L = by_name(G)
    migrated = L["block.local_module.main.inverted_conv"].refinement  # channel migration
    assert migrated.consumer == "block.local_module.main.depth_conv" and migrated.divisor is not None
    shifted = L["block.local_module.main.depth_conv"].refinement  # filter shifting
    assert shifted.consumer == "block.local_module.main.point_conv" and shifted.shift is not None
    assert L["block.context_module.main.truediv"].div.denominator == Denominator.LOG2
    grids = L["block.local_module.main.inverted_conv"].quant.lut_in_scale
    assert grids.shape == (128,) and len(np.unique(grids)) > 1
    for name in ("block.local_module.main.inverted_conv", "block.local_module.main.depth_conv"):
        codes, ref = _integer_layer_vs_fake_quant(q, L[name])
        assert np.abs(codes - ref).max() <= 1  # measured: 1 (95 % / 84 % identical)


def test_layer_norm_parameters_are_in_the_graph(fp32_graph, m2q_graph, toy):
    assert by_name(fp32_graph)["head.classifier.1"].norm == NormAttrs(eps=toy.head.classifier[1].eps)
    params = by_name(m2q_graph[1])["head.classifier.1"].quant.norm_params  # the integer rule's gamma / beta
    assert params.n == 40 and params.gamma_fp.shape == params.beta_fp.shape == (40,)


def test_refinement_divisor_and_shift_fold_into_multiplier_and_bias():
    """A conv without activation whose stored output is (y - 0.5) / 2 (hand-computed)."""
    from archsim.frontend.integer_params import fill_integer_params
    from archsim.graph.ir import Layer, QuantInfo

    layer = Layer(
        "c",
        OpKind.CONV_POINTWISE,
        ((1, 1, 1, 1),),
        (1, 1, 1, 1),
        epilogue=("bias", "requant"),
        refinement=OutputRefinement("next", np.full((1, 1, 1, 1), 2.0), np.full((1, 1, 1, 1), 0.5)),
    )
    info = QuantInfo(
        weight_scale=np.array([0.5]),
        weight_int=np.array([[[[1]]]]),
        bias=np.array([1.0]),
        in_scales=(0.1,),
        in_zero_points=(3,),
        out_scale=0.25,
        out_zero_point=0,
    )
    fill_integer_params(layer, info, [np.full((1, 1, 1, 1), 0.1)], [0], [False], (0.0, 1.0))
    assert info.acc_scale == pytest.approx([0.05])
    # round(1.0 / 0.05) - 3 * 1 = 17, minus the shift in accumulator units round(0.5 / 0.05) = 10
    assert info.bias_int.tolist() == [7]
    assert _real(info.requant_m0, info.requant_shift)[0] == pytest.approx(0.05 / (0.25 * 2.0), rel=2.0**-30)


def test_attention_acc_scale_turns_the_fake_quant_product_into_integers(m2q_graph):
    """k^T [v|1] of the fake-quant model is an integer sum times acc_scale (per head, per column)."""
    q, G = m2q_graph
    kv = by_name(G)["block.context_module.main.matmul"]
    seen = {}

    class Capture(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.op == "call_function" and n.name == "matmul":
                seen["kv"] = out.detach().double().numpy()
            return out

    with torch.no_grad():
        Capture(q.module).run(torch.randn(1, 3, RES, RES, generator=torch.Generator().manual_seed(11)))
    units = seen["kv"] / kv.quant.acc_scale
    assert np.abs(units).max() > 1000  # not trivially small
    assert np.abs(units - np.round(units)).max() < 0.15  # float32 summation error only (measured 0.04)
    wrong = seen["kv"] / kv.quant.acc_scale[:, :1, :, :1]  # one scale for every head and column
    assert np.abs(wrong - np.round(wrong)).max() > 0.3  # measured 0.5


def test_access_programs_reproduce_the_traced_layout(toy):
    """Each operand's program, run on numbered producer outputs, picks exactly the elements the fx
    trace's own layout ops deliver (the label propagation of archsim.frontend.scale_maps)."""
    from archsim.frontend.fx_groups import group_graph
    from archsim.frontend.scale_maps import trace_scale_maps
    from archsim.graph.access import run_program

    G = extract_graph(toy, None, (1, 3, RES, RES), META)
    grouped = group_graph(torch.fx.symbolic_trace(toy.eval()), (torch.zeros(1, 3, RES, RES),))
    names = [g.name for g in grouped.groups]

    def numbering(g, _maps):  # producer k's output numbered k * 10^6 + flat index (exact in float64)
        shape = grouped.shapes[g.output.name]
        return names.index(g.name) * 1e6 + np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)

    traced, _ = trace_scale_maps(grouped, numbering, 7.0)
    programs = 0
    for layer in layers(G):
        for k, operand in enumerate(layer.operands):
            if layer.producers[operand.ports[0]] is None:  # the stem reads the image as it is
                assert not operand.program and operand.shape == (1, 3, RES, RES)
                continue
            sources = []
            for p in operand.ports:
                src = G.nodes[layer.producers[p]]["layer"]
                sources.append(
                    names.index(src.name) * 1e6
                    + np.arange(int(np.prod(src.out_shape))).reshape(src.out_shape)
                )
            if not operand.program:
                assert len(sources) == 1 and sources[0].shape == operand.shape
                continue
            got = run_program(operand.program, sources)
            assert got.shape == operand.shape
            assert np.array_equal(got, np.broadcast_to(traced[layer.name][k], operand.shape)), (layer.name, k)
            programs += 1
    assert programs == 7  # k, v, q of the attention, num and den of the division, proj's input, the flatten


class _Sliced(nn.Module):
    """A 1x1 conv whose output is read through a layout op the graph must express, or refuse."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 8, 1)
        self.proj = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        if self.how == "gelu_on_slice":
            y = torch.nn.functional.gelu(y[:, :4])
        elif self.how == "advanced_index":
            y = y[:, [0, 2, 4, 6]]
        elif self.how == "reflect_pad":
            y = torch.nn.functional.pad(y[:, :4], (1, 1, 1, 1), mode="reflect")
        else:  # "slice": a plain channel slice is an access program
            y = y[:, 4:]
        return self.proj(y)


@pytest.mark.parametrize(
    "how,message",
    [
        ("gelu_on_slice", "layer proj: fx node gelu .*a gelu on an operand"),
        ("advanced_index", "layer proj: fx node getitem .*advanced indexing"),
        ("reflect_pad", "fx node pad .*padding mode 'reflect': only constant padding"),
    ],
)
def test_forms_the_graph_cannot_express_are_errors_naming_the_layer(how, message):
    from archsim.frontend.access import ExtractionError

    with pytest.raises(ExtractionError, match=message):
        extract_graph(_Sliced(how).eval(), None, (1, 3, 8, 8), META)


def test_a_channel_slice_is_an_access_program():
    G = extract_graph(_Sliced("slice").eval(), None, (1, 3, 8, 8), META)
    proj = by_name(G)["proj"]
    assert proj.operands[0].program == (Slice(0, ((0, 1, 1), (4, 8, 1), (0, 8, 1), (0, 8, 1))),)
    assert (
        proj.in_shapes == ((1, 4, 8, 8),)
        and G.edges["conv", "proj"]["read_bytes"] * 2 == G.edges["conv", "proj"]["bytes"]
    )


def test_conv_padding_in_every_form_and_dilation_are_recorded():
    from archsim.frontend.access import ExtractionError

    class Convs(nn.Module):
        def __init__(self):
            super().__init__()
            self.same = nn.Conv2d(
                3, 4, (3, 4), padding="same"
            )  # even kernel width: one extra column on the right
            self.valid = nn.Conv2d(4, 4, 3, padding="valid", dilation=2)
            self.explicit = nn.Conv2d(4, 4, 3, padding=(1, 2))

        def forward(self, x):
            return self.explicit(self.valid(self.same(x)))

    L = by_name(extract_graph(Convs().eval(), None, (1, 3, 16, 16), META))
    assert L["same"].padding == (1, 1, 1, 2)
    assert L["valid"].padding == (0, 0, 0, 0) and L["valid"].dilation == (2, 2)
    assert L["explicit"].padding == (1, 1, 2, 2)
    circular = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")).eval()
    with pytest.raises(ExtractionError, match="layer 0: padding_mode 'circular' is not supported"):
        extract_graph(circular, None, (1, 3, 8, 8), META)


def test_conv_bn_hardswish_costs_one_vector_op_per_element_per_real_op(fp32_graph, m2q_graph):
    """The stem (3x3 conv + BN + Hardswish, 16 x 16 x 16 out): fp32 tags (bias, bn_folded, hardswish) are 2
    ops per element (the folded BN is the bias's add, not a third op); quantized (bias, hardswish, requant)
    3 ops: 16 x 16 x 16 x 3."""
    from archsim.energy.accounting import epilogue_counts, epilogue_ops

    fp32 = {layer.name: layer for layer in layers(fp32_graph)}["stem"]
    assert fp32.out_shape == (1, 16, 16, 16)
    assert epilogue_counts(fp32) == {"bias": 4096, "hardswish": 4096}
    _, graph = m2q_graph
    stem = {layer.name: layer for layer in layers(graph)}["stem"]
    assert [e.value for e in stem.epilogue] == ["bias", "hardswish", "requant"]  # BN folded before tracing
    assert epilogue_ops(stem) == 16 * 16 * 16 * 3 == 12288
