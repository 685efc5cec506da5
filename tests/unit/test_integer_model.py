"""The integer model: the quantized graph computed by its integer rules, checked against independent paths."""

import numpy as np
import pytest
import torch
from test_extract_toy import META, RES, Toy

from archsim.frontend.extract import extract_graph
from archsim.graph.ir import OpKind, layers
from archsim.numerics import integer as qi
from archsim.quant.integer_model import IntegerModel, IntegerRecoveryError, layer_agreement
from archsim.quant.quantize import quantize_model


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    model = Toy().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def _build(toy, policy):
    gen = torch.Generator().manual_seed(5)
    q = quantize_model(toy, policy, [torch.randn(2, 3, RES, RES, generator=gen) for _ in range(2)])
    graph = extract_graph(toy, q, (1, 3, RES, RES), dict(META, policy=policy))
    return q, graph, IntegerModel(q.folded, graph)


@pytest.fixture(scope="module", params=["m2q", "uniform_w8a8"])
def built(toy, request):
    return _build(toy, request.param)


def _input(seed=11):
    return torch.randn(1, 3, RES, RES, generator=torch.Generator().manual_seed(seed))


def test_every_layer_within_one_code_of_the_fake_quant_model_on_the_same_inputs(built):
    q, graph, model = built
    agreement = layer_agreement(q, model, _input())
    eight_bit = [layer.name for layer in layers(graph) if layer.quant.out_scale is not None]
    assert sorted(agreement) == sorted(eight_bit)  # every 8-bit layer compared
    for name, a in agreement.items():
        assert a["max_diff"] <= 1, name
        # measured (seed 11): lowest 0.934 (m2q) / 0.896 (uniform_w8a8), both MBConv depthwise
        assert a["identical"] >= 0.85, name
    # the refined producers (shift / division for their consumer) agree too: add, division, convs
    if q.policy.name == "uniform_w8a8":
        refined = [
            n for n in graph.nodes if getattr(graph.nodes[n]["layer"].refinement, "shift", None) is not None
        ]
        kinds = {graph.nodes[n]["layer"].kind for n in refined}
        assert {OpKind.ADD, OpKind.DIV} <= kinds
        assert all(
            agreement[n]["identical"] >= 0.99
            for n in refined
            if graph.nodes[n]["layer"].kind in (OpKind.ADD, OpKind.DIV)
        )


def test_conv_matches_an_independent_codes_and_padding_computation(built):
    """Codes padded with the input zero point, conv with weight_int, + bias_int, requantize
    (the spec as written)."""
    q, graph, model = built
    reference = q.activation_codes(_input())
    forced = {k: v for k, v in reference.items() if k in model.layers}
    _, integers = model.run(_input(), forced=forced)
    for name in ("down", "block.context_module.main.qkv", "block.context_module.main.aggreg.0.0"):
        layer = graph.nodes[name]["layer"]
        info = layer.quant
        producer = next(iter(graph.predecessors(name)))
        x = torch.tensor(model.producer_layout(producer, reference[producer]), dtype=torch.float64)
        top, bottom, left, right = layer.padding
        x = torch.nn.functional.pad(x, [left, right, top, bottom], value=float(info.in_zero_points[0]))
        acc = (
            torch.nn.functional.conv2d(
                x, torch.tensor(info.weight_int, dtype=torch.float64), None, layer.stride, 0, 1, layer.groups
            )
            .numpy()
            .astype(np.int64)
        )
        acc = acc + info.bias_int.reshape(1, -1, 1, 1)
        if info.lut_in_bits is None:
            expected = qi.requantize(acc, info.requant_m0, info.requant_shift, info.out_zero_point, 8, axis=1)
            assert np.array_equal(integers[name], expected), name
        else:  # Hardswish: the LUT input codes, then every channel's table
            pre = qi.requantize(
                acc, info.requant_m0, info.requant_shift, info.lut_in_zero_point, info.lut_in_bits, axis=1
            )
            tables = [
                qi.hardswish_lut(
                    info.lut_in_scale[c],
                    info.lut_in_zero_point[c],
                    info.out_scale,
                    info.out_zero_point,
                    8,
                    in_bits=info.lut_in_bits,
                )
                for c in range(pre.shape[1])
            ]
            expected = np.stack([tables[c][pre[:, c]] for c in range(pre.shape[1])], axis=1)
            if layer.refinement is None:
                assert np.array_equal(integers[name], expected), name


def test_logits_track_the_fake_quant_model_and_runs_are_deterministic(built):
    q, _, model = built
    x = torch.randn(3, 3, RES, RES, generator=torch.Generator().manual_seed(12))
    logits, integers = model.run(x)
    again, integers_again = model.run(x)
    assert logits.dtype == torch.float64 and logits.shape == (3, 10)
    assert torch.equal(logits, again)
    assert all(np.array_equal(integers[k], integers_again[k]) for k in integers)
    with torch.no_grad():
        fake = q(x).double()
    cosine = torch.nn.functional.cosine_similarity(logits, fake, dim=1)
    assert cosine.min() > 0.99  # measured 0.9995..0.9999: the two drift apart by rounding ties only


def test_wide_layers_return_integer_accumulators(built):
    _, graph, model = built
    _, integers = model.run(_input())
    for layer in layers(graph):
        if layer.quant.out_scale is None:  # attention matmuls and the classifier
            assert integers[layer.name].dtype == np.int64
            assert np.abs(integers[layer.name]).max() > 255  # accumulators, not codes
        else:
            codes = integers[layer.name]
            assert codes.min() >= 0 and codes.max() <= 255


def test_a_wrong_scale_is_caught_not_rounded_away(toy):
    _, graph, model = _build(toy, "m2q")
    info = graph.nodes["ds.main.point_conv"]["layer"].quant
    info.in_scales = (info.in_scales[0] * 1.37,) + info.in_scales[1:]
    with pytest.raises(IntegerRecoveryError, match="ds.main.point_conv input"):
        model.run(_input())


def test_needs_a_quantized_graph(toy):
    graph = extract_graph(toy, None, (1, 3, RES, RES), META)
    with pytest.raises(ValueError, match="quantized graph"):
        IntegerModel(toy, graph)


def test_agreement_on_a_batch(toy):
    q, _, model = _build(toy, "uniform_w8a8")  # the division's stored tensor is reordered for its consumer
    x = torch.randn(2, 3, RES, RES, generator=torch.Generator().manual_seed(13))
    agreement = layer_agreement(q, model, x)
    assert agreement["block.context_module.main.truediv"]["elements"] == 2 * 8 * 64 * 8
    assert max(a["max_diff"] for a in agreement.values()) <= 1


def test_eight_bit_apot_layers_need_and_get_int64_accumulators(toy, tmp_path):
    """8-bit APoT codes reach 2^21 + 2^13: a pointwise sum exceeds int32; requantization stays exact."""
    path = tmp_path / "apot8.yaml"
    path.write_text("base: all_apot\nname: apot8\npointwise: {bits: 8, apot_only: true, apot_bits: 8}\n")
    q, graph, model = _build(toy, str(path))
    x = _input()
    _, integers = model.run(x)
    widest = 0
    for layer in layers(graph):
        info = layer.quant
        producers = list(graph.predecessors(layer.name))
        if (
            info.apot_bits == 8
            and layer.kind == OpKind.CONV_POINTWISE
            and len(producers) == 1
            and integers[producers[0]].shape == tuple(layer.in_shapes[0])
        ):
            # the accumulator behind this layer's codes, recomputed from its input codes
            producer = producers[0]
            xi = torch.tensor(integers[producer] - info.in_zero_points[0], dtype=torch.float64)
            acc = torch.nn.functional.conv2d(
                xi,
                torch.tensor(info.weight_int, dtype=torch.float64),
                None,
                layer.stride,
                layer.padding[::2],
                1,
                layer.groups,
            )
            widest = max(widest, float(acc.abs().max()))
    assert widest >= 2**31  # an int32 accumulator would overflow
    agreement = layer_agreement(q, model, x)
    assert max(a["max_diff"] for a in agreement.values()) <= 1


class _Branchy(torch.nn.Module):
    """A conv output read twice (so its ReLU6 stands alone) and a ReLU fused after a residual add."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = self.conv1(x)
        y = torch.relu(self.conv2(torch.nn.functional.relu6(x)) + x)
        return self.fc(self.pool(y).flatten(1))


def test_standalone_activation_and_relu_after_an_add():
    torch.manual_seed(3)
    model = _Branchy().eval()
    batches = [torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    q = quantize_model(model, "uniform_w8a8_plain", batches)
    graph = extract_graph(model, q, (1, 3, 16, 16), dict(META, resolution=16, policy="uniform_w8a8_plain"))
    kinds = {layer.name: (layer.kind, layer.epilogue) for layer in layers(graph)}
    assert (OpKind.ACTIVATION, ("relu6", "requant")) in kinds.values()
    assert any(kind == OpKind.ADD and "relu" in epilogue for kind, epilogue in kinds.values())
    integer_model = IntegerModel(model, graph)
    agreement = layer_agreement(q, integer_model, batches[0][:1])
    assert len(agreement) == 5 and max(a["max_diff"] for a in agreement.values()) <= 1
    _, integers = integer_model.run(batches[0][:1])
    add = next(name for name, (kind, _) in kinds.items() if kind == OpKind.ADD)
    assert integers[add].min() >= graph.nodes[add]["layer"].quant.out_zero_point  # ReLU on codes


def test_layer_output_sqnr_against_the_float_model(built):
    """Per-layer SQNR of the integer model's outputs, refinements undone (measured 14-47 dB on this toy)."""
    from archsim.quant.integer_model import layer_output_sqnr

    q, graph, model = built
    sqnr = layer_output_sqnr(model, _input())
    assert set(sqnr) == set(graph.nodes)
    assert sqnr["stem"] > 35  # one 8-bit conv from an 8-bit input: measured 37.5 dB
    assert min(sqnr.values()) > 10  # measured 14.05 (uniform_w8a8's log2 division), 21.3 (m2q)
    if q.policy.name == "uniform_w8a8":  # stored (y - shift) / divisor: the reals undo it
        for name in ("block.local_module.main.inverted_conv", "block.local_module.main.depth_conv"):
            assert graph.nodes[name]["layer"].refinement is not None
            assert sqnr[name] > 25, name  # measured 30.8 and 46.2 dB


def test_asymmetric_weights_run_exactly(toy, tmp_path):
    path = tmp_path / "asym.yaml"
    path.write_text(
        "base: uniform_w8a8_plain\nname: asym\npointwise: {bits: 8, symmetric: false}\n"
        "depthwise: {bits: 8, symmetric: false}\n"
    )
    q, _, model = _build(toy, str(path))
    w = q.weights["ds.main.point_conv"]
    assert np.any(w.zero_point != 0) and (
        w.weight_int.min() < -128 or w.weight_int.max() > 127
    )  # 9-bit codes
    agreement = layer_agreement(q, model, _input())
    assert max(a["max_diff"] for a in agreement.values()) <= 1  # measured: 1, >= 90 % identical
