"""BN folding is exact; policies and the per-filter uniform/APoT choice."""

import numpy as np
import pytest
import torch
from torch import nn

from archsim.quant.fold import fold_batchnorm, fold_conv_bn
from archsim.quant.policy import POLICIES, WeightRule, get_policy
from archsim.quant.quantize import quantize_weights


def _random_bn(channels: int, gen: torch.Generator) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    bn.running_mean = torch.randn(channels, generator=gen)
    bn.running_var = torch.rand(channels, generator=gen) + 0.1
    bn.weight.data = torch.randn(channels, generator=gen)
    bn.bias.data = torch.randn(channels, generator=gen)
    return bn.eval()


@pytest.mark.parametrize("groups,bias", [(1, False), (4, True), (8, False)])
def test_fold_conv_bn_matches_conv_then_bn(groups, bias):
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=bias)
    bn = _random_bn(8, gen)
    x = torch.randn(2, 8, 6, 6, generator=gen)
    with torch.no_grad():
        expected = bn(conv(x))
        got = fold_conv_bn(conv, bn)(x)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_fold_batchnorm_replaces_norm_in_conv_norm_act():
    gen = torch.Generator().manual_seed(1)

    class ConvNormAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm, self.act = (
                nn.Conv2d(4, 6, 1, bias=False),
                _random_bn(6, gen),
                nn.Hardswish(),
            )

        def forward(self, x):
            return self.act(self.norm(self.conv(x)))

    model = nn.Sequential(ConvNormAct()).eval()
    folded, paths = fold_batchnorm(model)
    assert paths == ["0.conv"]
    assert isinstance(folded[0].norm, nn.Identity) and isinstance(model[0].norm, nn.BatchNorm2d)  # copy
    x = torch.randn(1, 4, 5, 5, generator=gen)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5)


def test_fold_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="cannot fold"):
        fold_conv_bn(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(4))


def test_get_policy_known_and_unknown():
    assert get_policy("m2q").depthwise.bits == 4
    m2q = get_policy("m2q").pointwise
    assert m2q.mixed_apot and (m2q.bits, m2q.apot_bits, m2q.select_bits) == (8, 4, 4)
    literal = get_policy("m2q_apot8").pointwise
    assert (literal.bits, literal.apot_bits, literal.select_bits) == (8, 8, 8)
    assert not get_policy("uniform_w8a8").pointwise.mixed_apot
    assert not get_policy("fp32").quantized
    with pytest.raises(ValueError) as err:
        get_policy("int3")
    for name in POLICIES:
        assert name in str(err.value)


def test_mixed_scheme_picks_lower_mse_per_filter():
    gen = torch.Generator().manual_seed(2)
    flat = torch.rand(1, 64, generator=gen) * 2 - 1  # uniform spread: uniform quantization wins
    spiky = torch.randn(1, 64, generator=gen) * 1e-3  # one outlier, the rest far below one uniform step
    spiky[0, 0] = 1.0
    w = torch.cat([flat, spiky]).reshape(2, 64, 1, 1)
    deq, fields = quantize_weights(w, WeightRule(bits=8, mixed_apot=True, apot_bits=8))
    assert fields["apot_mask"].tolist() == [False, True]
    assert (fields["apot_mask"] == (fields["mse_apot"] <= fields["mse_uniform"])).all()
    # integer codes times per-filter scales reproduce the dequantized weights
    recon = torch.as_tensor(fields["weight_int"]).double() * torch.as_tensor(fields["scale"]).reshape(
        -1, 1, 1, 1
    )
    assert torch.allclose(recon.float(), deq)
    # a tolerance that accepts any APoT error sends every filter to APoT
    _, all_apot = quantize_weights(w, WeightRule(bits=8, mixed_apot=True), tolerance=1e9)
    assert all_apot["apot_mask"].all()


def test_select_bits_compares_schemes_at_low_bits_and_stores_each_at_its_own():
    gen = torch.Generator().manual_seed(5)
    flat = torch.rand(1, 256, generator=gen) * 2 - 1  # flat spread: a uniform grid fits better
    bell = torch.randn(1, 256, generator=gen)  # bell-shaped: APoT's dense small levels fit better at 4 bits
    w = torch.cat([flat, bell]).reshape(2, 256, 1, 1)
    rule = WeightRule(bits=8, mixed_apot=True, apot_bits=4, select_bits=4)
    _, fields = quantize_weights(w, rule)
    assert fields["apot_mask"].tolist() == [False, True]
    # compared at 8 bits, uniform wins both filters: the choice really is made at select_bits
    _, at8 = quantize_weights(w, WeightRule(bits=8, mixed_apot=True, apot_bits=8, select_bits=8))
    assert not at8["apot_mask"].any()
    # the uniform filter keeps 8-bit codes, the APoT filter holds 4-bit APoT codes
    assert np.abs(fields["weight_int"][0]).max() == 127
    assert np.abs(fields["weight_int"][1]).max() <= 10  # largest 4-bit level 5/8 = 10/16


def test_uniform_rule_has_no_apot_and_respects_bits():
    w = torch.randn(3, 5, generator=torch.Generator().manual_seed(3))
    _, fields = quantize_weights(w, WeightRule(bits=4))
    assert fields["apot_bits"] is None and not fields["apot_mask"].any()
    assert fields["weight_int"].min() >= -8 and fields["weight_int"].max() <= 7
