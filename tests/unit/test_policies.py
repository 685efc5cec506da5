"""Policies as YAML data; the balanced / all-APoT / 3-bit-depthwise variants; Trio-ViT refinements."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.fx as fx
from torch import nn

from archsim.frontend.fx_groups import group_graph
from archsim.quant.calibrate import ActivationQuantizer
from archsim.quant.fold import fold_batchnorm
from archsim.quant.policy import POLICIES, QuantPolicy, WeightRule, get_policy
from archsim.quant.policy_loader import BUNDLED_DIR, PolicyError, load_policy_file
from archsim.quant.quantize import balanced_apot_mask, quantize_model, quantize_weights
from archsim.quant.quantizers import RANGE_METHODS
from archsim.quant.transforms import apply_refinements
from archsim.workload.config import WorkloadError, load_workload
from archsim.workload.efficientvit import (
    ClassifierHead,
    ConvNormAct,
    DSConv,
    EfficientVitBlock,
    MBConv,
    ResidualBlock,
)

BUNDLED = (
    "m2q",
    "m2q_apot8",
    "uniform_w8a8",
    "fp32",
    "uniform_w8a8_plain",
    "m2q_dw3",
    "m2q_balanced",
    "all_apot",
    "m2q_adaround",
    "m2q_apot8w",  # attribution variants of `archsim compare` (archsim/compare_study.py)
    "m2q_dw8",
    "m2q_dw8_apot8w",
)


# -- loading -----------------------------------------------------------------------------
def test_every_bundled_file_loads_with_a_header_and_its_name():
    assert tuple(POLICIES) == BUNDLED
    for name in BUNDLED:
        path = BUNDLED_DIR / f"{name}.yaml"
        assert path.read_text().startswith("#"), f"{path} lacks a header comment"
        assert load_policy_file(path) == POLICIES[name].with_changes()  # same values when re-read
        assert POLICIES[name].description


def test_reference_policies_keep_their_values():
    m2q = get_policy("m2q")
    assert m2q.depthwise == WeightRule(bits=4)
    assert m2q.pointwise == WeightRule(bits=8, mixed_apot=True, apot_bits=4, select_bits=4)
    assert (m2q.act_bits, m2q.act_symmetric, m2q.act_range, m2q.apot_target_fraction) == (
        8,
        False,
        "minmax",
        None,
    )
    assert not (m2q.channel_migration or m2q.filter_shifting) and m2q.attention_denominator == "exact"
    plain = get_policy("uniform_w8a8_plain")
    assert all(plain.rule(r) == WeightRule() for r in ("depthwise", "pointwise", "dense", "classifier"))
    assert not (plain.channel_migration or plain.filter_shifting) and plain.attention_denominator == "exact"
    trio = get_policy("uniform_w8a8")
    assert trio.channel_migration and trio.filter_shifting and trio.attention_denominator == "log2"
    assert (
        trio.with_changes(
            channel_migration=False,
            filter_shifting=False,
            attention_denominator="exact",
            name=plain.name,
            description=plain.description,
            source_file=plain.source_file,
        )
        == plain
    )
    fp32 = get_policy("fp32")
    assert not fp32.quantized and fp32.act_bits == 32
    assert get_policy("m2q_dw3").depthwise.bits == 3
    assert get_policy("m2q_balanced").apot_target_fraction == 0.8
    assert get_policy("all_apot").pointwise.apot_only and get_policy("all_apot").depthwise.bits == 4


VALID = """# test policy
name: mine
quantized: true
act_bits: 8
depthwise: {bits: 4}
pointwise: {bits: 8, mixed_apot: true, apot_bits: 4, select_bits: 4}
"""


@pytest.mark.parametrize(
    "old,new,expected",
    [
        (
            "act_bits: 8",
            "act_bits: 8\ncolour: red",
            ":5: colour: unknown key; allowed: base, name, description,",
        ),
        (
            "act_bits: 8",
            "act_bits: 8\nact_bit: 6",
            ":5: act_bit: unknown key; did you mean 'act_bits'? allowed: base,",
        ),
        ("act_bits: 8", "act_bits: eight", ":4: act_bits: 'eight': must be an integer in [2, 16]"),
        ("act_bits: 8", "act_bits: 1", ":4: act_bits: 1: must be an integer in [2, 16]"),
        ("{bits: 4}", "{bits: 9}", ":5: depthwise.bits: 9: must be an integer in [2, 8]"),
        (
            "{bits: 4}",
            "{bits: 4, shape: x}",
            ":5: depthwise.shape: unknown key; allowed: bits, symmetric, per_channel,",
        ),
        ("{bits: 4}", "{bits: true}", ":5: depthwise.bits: True: must be an integer in [2, 8]"),
        ("quantized: true", "quantized: yes please", ":3: quantized: 'yes please': must be true or false"),
        (
            "act_bits: 8",
            "act_range: mse",
            ":4: act_range: 'mse': unknown range method; allowed: minmax, percentile, lp",
        ),
        (
            "act_bits: 8",
            "attention_denominator: ln",
            ":4: attention_denominator: 'ln': unknown attention denominator; allowed: exact, log2",
        ),
        (
            "act_bits: 8",
            "attention_denominator: exakt",
            ":4: attention_denominator: 'exakt': unknown attention "
            "denominator; did you mean 'exact'? allowed: exact, log2",
        ),
        (
            "act_bits: 8",
            "apot_target_fraction: 1.5",
            ":4: apot_target_fraction: 1.5: must be a number >= 0 and <= 1",
        ),
        (
            "apot_bits: 4,",
            "apot_bits: 4, apot_only: true,",
            ":6: pointwise: mixed_apot and apot_only exclude each other (allowed: at most one of them true)",
        ),
        (
            "mixed_apot: true,",
            "mixed_apot: true, per_channel: false,",
            ":6: pointwise.per_channel: False: APoT filters need per-channel scales "
            "(allowed: true when mixed_apot or apot_only)",
        ),
        (
            "act_bits: 8",
            "base: m3q",
            ":4: base: 'm3q': unknown name; did you mean 'm2q'? known: all_apot, fp32, m2q,",
        ),
        ("act_bits: 8", "act_bits: [8", ":5: invalid YAML: while parsing a flow sequence"),
        (
            "act_bits: 8",
            "act_bits: 8\nact_bits: 6",
            ":5: act_bits: duplicated key (first at line 4); YAML would",
        ),
    ],
)
def test_bad_policy_files_name_file_line_field_value_and_allowed(tmp_path, old, new, expected):
    assert old in VALID
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace(old, new))
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert str(err.value).startswith(f"{path}{expected}"), str(err.value)


def test_policy_file_errors_are_reported_together(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        VALID.replace("act_bits: 8", "act_bits: 99\nact_range: mse").replace("{bits: 4}", "{bits: 1}")
    )
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}: 3 problems in quantization policy:"
    assert [line.split(": ")[1] for line in lines[1:]] == ["act_bits", "act_range", "depthwise.bits"]


def test_policy_file_must_be_a_mapping_and_exist(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- m2q\n")
    with pytest.raises(
        PolicyError, match=r"list\.yaml:1: a policy file must be a mapping with keys base, name,"
    ):
        load_policy_file(path)
    with pytest.raises(PolicyError, match="missing.yaml: file not found"):
        load_policy_file(tmp_path / "missing.yaml")
    with pytest.raises(
        PolicyError, match=r"unknown quantization policy 'int3'; known: all_apot.*give a YAML path"
    ):
        get_policy("int3")


def test_user_policy_by_path_through_a_workload_override(tmp_path):
    path = tmp_path / "dw3_tolerant.yaml"
    path.write_text("# user policy\nbase: m2q\ndepthwise: {bits: 3}\napot_mse_tolerance: 1.5\n")
    workload = load_workload("efficientvit_b0", policy=str(path))
    assert workload.policy == str(path.resolve())
    policy = get_policy(workload.policy)
    assert (policy.name, policy.depthwise.bits, policy.apot_mse_tolerance) == ("dw3_tolerant", 3, 1.5)
    assert policy.pointwise == get_policy("m2q").pointwise  # inherited from the base
    with pytest.raises(WorkloadError, match=r"policy.*does not exist"):
        load_workload("efficientvit_b0", policy=str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("act_bits: 99\n")
    with pytest.raises(
        WorkloadError,
        match=r"policy: .*the policy file has problems: .*bad\.yaml:1: act_bits: 99: "
        r"must be an integer in \[2, 16\]",
    ):
        load_workload("efficientvit_b0", policy=str(bad))


# -- weight variants ---------------------------------------------------------------------
def _filters(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), -1, 1, 1)


def test_balanced_mask_takes_smallest_relative_penalty_with_index_tie_break():
    mse_apot = torch.tensor([2.0, 1.0, 3.0, 1.0, 0.5], dtype=torch.float64)
    mse_uniform = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    # penalties 2, 1, 3, 1, 0.5 -> order 4, 1, 3 (tie 1 vs 3: lower index first), 0, 2
    assert balanced_apot_mask(mse_apot, mse_uniform, 0.4).tolist() == [False, True, False, False, True]
    assert balanced_apot_mask(mse_apot, mse_uniform, 0.6).tolist() == [False, True, False, True, True]
    assert balanced_apot_mask(mse_apot, mse_uniform, 0.5).sum() == 3  # round half up: 2.5 -> 3
    assert balanced_apot_mask(mse_apot, mse_uniform, 0.0).sum() == 0
    assert balanced_apot_mask(mse_apot, mse_uniform, 1.0).all()
    zero = torch.zeros(2, dtype=torch.float64)  # 0/0 counts as penalty 1, x/0 as infinite
    assert balanced_apot_mask(torch.tensor([1.0, 0.0], dtype=torch.float64), zero, 0.5).tolist() == [
        False,
        True,
    ]


def test_balanced_fraction_is_exact_on_a_hand_made_layer():
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(10, 16, 1, 1, generator=gen)
    w[3, 0] = 8.0  # an outlier filter: APoT's dense small levels fit it far better
    rule = WeightRule(bits=8, mixed_apot=True, apot_bits=4, select_bits=4)
    _, by_mse = quantize_weights(w, rule)
    _, fields = quantize_weights(w, rule, target_fraction=0.8)
    assert fields["apot_mask"].sum() == 8
    penalty = fields["mse_apot"] / fields["mse_uniform"]
    rejected = np.flatnonzero(~fields["apot_mask"])
    assert penalty[rejected].min() >= penalty[fields["apot_mask"]].max()  # the two worst stay uniform
    assert fields["apot_mask"][3]
    np.testing.assert_array_equal(by_mse["mse_apot"], fields["mse_apot"])  # same MSEs, other selection rule


def test_apot_only_makes_every_filter_apot():
    w = _filters([1.0, -0.5, 0.25, 0.1], [0.3, 0.3, -0.3, 0.3], [0.0, 0.0, 0.0, 0.0])
    deq, fields = quantize_weights(w, get_policy("all_apot").pointwise)
    assert fields["apot_mask"].all() and fields["apot_bits"] == 4
    assert "mse_apot" not in fields
    # 4-bit APoT levels {0, 1/16, 1/8, 3/16, 1/4, 3/8, 1/2, 5/8} scaled so 5/8 -> max|w| = 1:
    # 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0; midpoints 0.5 and 0.25 go to the lower level
    assert torch.allclose(deq[0].flatten(), torch.tensor([1.0, -0.4, 0.2, 0.1]), atol=1e-6)
    assert (deq[2] == 0).all()


def test_depthwise_3_bit_codes():
    gen = torch.Generator().manual_seed(6)
    w = torch.randn(4, 1, 3, 3, generator=gen)
    _, fields = quantize_weights(w, get_policy("m2q_dw3").depthwise)
    assert fields["bits"] == 3
    codes = fields["weight_int"]
    assert codes.min() >= -3 and codes.max() <= 3  # symmetric 3-bit: max|w| -> code 3
    assert (np.abs(codes).reshape(4, -1).max(axis=1) == 3).all()


# -- activation range methods --------------------------------------------------------------
@pytest.mark.skipif("percentile" not in RANGE_METHODS, reason="percentile range not in quantizers.py yet")
def test_percentile_activation_range_clips_a_rare_outlier():
    x = torch.linspace(0.0, 1.0, 100_001)
    x[0] = 100.0
    minmax, pct = ActivationQuantizer(8, False, "minmax"), ActivationQuantizer(8, False, "percentile")
    minmax(x), pct(x)
    assert minmax.freeze().hi == 100.0
    assert 0.99 < pct.freeze().hi < 1.0001


@pytest.mark.skipif("lp" not in RANGE_METHODS, reason="lp range not in quantizers.py yet")
def test_lp_activation_range_shrinks_below_the_max():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(50_000, generator=gen)
    q = ActivationQuantizer(4, False, "lp")
    q(x)
    params = q.freeze()
    assert params.range_method == "lp" and params.hi < float(x.max()) and params.lo > float(x.min())


# -- Trio-ViT refinements --------------------------------------------------------------------
class Toy(nn.Module):
    """stem -> residual DSConv -> MBConv (stride 2) -> EfficientViT block -> head."""

    def __init__(self):
        super().__init__()
        self.stem = ConvNormAct(3, 16, 3, stride=2)
        self.ds = ResidualBlock(DSConv(16, 16), nn.Identity())
        self.down = ResidualBlock(MBConv(16, 32, stride=2), None)
        self.block = EfficientVitBlock(32, head_dim=8)
        self.head = ClassifierHead(32, (48, 40), num_classes=10)

    def forward(self, x):
        return self.head(self.block(self.down(self.ds(self.stem(x)))))


def _toy():
    torch.manual_seed(0)
    model = Toy().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)  # off-centre channels: the shift does something
    return model


def _refined(model, batch, policy):
    folded, _ = fold_batchnorm(model)
    gm = fx.symbolic_trace(copy.deepcopy(folded))
    grouped = group_graph(gm, (batch[:1],))
    return folded, gm, apply_refinements(gm, grouped, policy, batch, set())


def test_migration_and_shifting_are_exact_in_float_on_a_toy():
    batch = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    policy = get_policy("uniform_w8a8").with_changes(attention_denominator="exact")
    folded, gm, ref = _refined(_toy(), batch, policy)
    attrs = ref.layer_attrs
    assert "input_channel_divisor" in attrs["down.main.depth_conv"]  # MBConv depthwise: sole reader
    assert "input_channel_divisor" in attrs["block.local_module.main.depth_conv"]
    assert "input_channel_divisor" not in attrs.get(
        "ds.main.depth_conv", {}
    )  # residual stream: also read by the add
    for name in ("ds.main.point_conv", "down.main.point_conv", "block.context_module.main.proj"):
        assert "input_channel_shift" in attrs[name], name
    s = torch.tensor(attrs["down.main.depth_conv"]["input_channel_divisor"])
    assert s.min() >= 0.1 and s.max() <= 64 and not torch.allclose(s, torch.ones_like(s))
    assert not torch.equal(
        gm.get_submodule("down.main.depth_conv.conv").weight,
        folded.get_submodule("down.main.depth_conv.conv").weight,
    )
    with torch.no_grad():
        for x in (batch, torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(9))):
            assert torch.allclose(gm(x), folded(x), atol=1e-4, rtol=0)


def test_shift_centres_the_stored_tensor_and_migration_balances_channels():
    batch = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    q = quantize_model(_toy(), "uniform_w8a8", [batch])
    plain = quantize_model(_toy(), "uniform_w8a8_plain", [batch])
    # the producer of ds.main.point_conv (the DSConv depthwise) now stores x - z: a centred range
    key = "ds.main.depth_conv"
    z = np.array(q.layer_attrs[key]["output_channel_shift"])
    a, b = q.activations[key], plain.activations[key]
    assert a.hi - a.lo <= b.hi - b.lo + 1e-6
    assert abs(a.hi + a.lo) < abs(b.hi + b.lo) + 1e-6
    assert z.shape == (16,)
    # compensated bias with the *quantized* weights (as Trio-ViT): b' = b + W_q z
    w = q.weights["ds.main.point_conv"]
    folded_conv = q.folded.get_submodule("ds.main.point_conv.conv")
    expected = (
        folded_conv.bias.detach().double().numpy() + w.dequantized().reshape(w.weight_int.shape[0], -1) @ z
    )
    np.testing.assert_allclose(w.bias, expected, rtol=1e-5, atol=1e-5)
    float_compensated = (
        folded_conv.bias.detach().double().numpy()
        + folded_conv.weight.detach().double().flatten(1).numpy() @ z
    )
    assert not np.allclose(
        w.bias, float_compensated, rtol=0, atol=1e-7
    )  # the weight rounding is accounted for


def test_log2_denominator_in_the_fake_quant_division():
    """After calibration the denominator is rounded to a power of two in its integer units
    (the spec's rule)."""
    from archsim.quant.transforms import Log2Denominator

    batch = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(10))
    q = quantize_model(_toy(), "uniform_w8a8", [batch])
    divs = {k: v for k, v in q.layer_attrs.items() if v.get("denominator") == "log2"}
    assert list(divs) == ["block.context_module.main.truediv"]
    (module,) = [m for m in q.module.modules() if isinstance(m, Log2Denominator)]
    assert module.scale is not None and module.scale.shape == (1, 8, 1, 1)  # s_q s_k per head
    seen = []
    hook = module.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
    with torch.no_grad():
        q(batch)
    hook.remove()
    ((den, rounded),) = seen
    units = rounded.double() / module.scale
    exps = torch.log2(units)
    assert torch.allclose(exps, exps.round(), atol=1e-9)  # powers of two of the integer unit
    integer_den = torch.round((den.double() - module.eps) / module.scale) + module.eps_int / 256
    ratio = units / integer_den
    assert ratio.min() >= 2**-0.5 and ratio.max() <= 2**0.5


def test_refinements_exact_on_b0():
    from archsim.workload.efficientvit import build_model

    batch = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(12))
    policy = get_policy("uniform_w8a8").with_changes(attention_denominator="exact")
    folded, gm, ref = _refined(build_model("b0", seed=0), batch, policy)
    migrated = [k for k, v in ref.layer_attrs.items() if "input_channel_divisor" in v]
    shifted = [k for k, v in ref.layer_attrs.items() if "input_channel_shift" in v]
    assert len(migrated) == 10 and len(shifted) == 20
    with torch.no_grad():
        a, b = folded(batch), gm(batch)
    assert (a - b).abs().max() < 1e-4


def test_policy_object_passes_through():
    p = QuantPolicy(name="x")
    assert get_policy(p) is p
    assert not math.isnan(p.apot_mse_tolerance)


def test_weight_lp_range_shrinks_a_heavy_tailed_filter():
    gen = torch.Generator().manual_seed(13)
    w = torch.randn(2, 256, 1, 1, generator=gen)
    w[:, 0] = 12.0  # one outlier per filter: the L2.4 search clips it for a finer step on the rest
    _, minmax = quantize_weights(w, WeightRule(bits=4))
    _, lp = quantize_weights(w, WeightRule(bits=4, range="lp"))
    assert (lp["scale"] < minmax["scale"]).all()
    assert np.allclose(minmax["scale"], 12.0 / 7)  # symmetric 4-bit min-max: max|w| / 7


def test_policy_act_range_reaches_every_activation_quantizer(tmp_path):
    path = tmp_path / "pct.yaml"
    path.write_text("# percentile activations\nbase: uniform_w8a8_plain\nact_range: percentile\n")
    batch = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(14))
    q = quantize_model(_toy(), path, [batch])
    assert q.policy.name == "pct" and q.activations
    assert {a.range_method for a in q.activations.values()} == {"percentile"}
    assert q.layer_attrs == {}  # the plain baseline has no refinements
