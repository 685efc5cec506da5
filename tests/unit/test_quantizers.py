"""Uniform and APoT quantizers on known inputs."""

from fractions import Fraction as Fr

import pytest
import torch

from archsim.quant.quantizers import (
    apot_code_terms,
    apot_levels,
    apot_levels_exact,
    apot_quantize,
    per_channel_mse,
    quantize_with,
    uniform_quantize,
)


def test_apot_4bit_table_matches_reference():
    assert list(apot_levels_exact(4)) == [Fr(0), Fr(1, 16), Fr(1, 8), Fr(3, 16), Fr(1, 4), Fr(3, 8), Fr(1, 2), Fr(5, 8)]


def test_apot_5bit_table_matches_reference():
    expected = [0, Fr(1, 64), Fr(1, 32), Fr(3, 64), Fr(1, 16), Fr(3, 32), Fr(1, 8), Fr(9, 64), Fr(3, 16),
                Fr(1, 4), Fr(9, 32), Fr(3, 8), Fr(1, 2), Fr(33, 64), Fr(9, 16), Fr(3, 4)]
    assert list(apot_levels_exact(5)) == [Fr(v) for v in expected]


@pytest.mark.parametrize("bits", [3, 4, 5, 6, 7, 8])
def test_apot_levels_are_sums_of_at_most_two_powers_of_two(bits):
    levels = apot_levels_exact(bits)
    assert len(levels) == 2 ** (bits - 1) and levels[0] == 0
    for level in levels[1:]:
        # a dyadic fraction: its numerator's popcount is the number of power-of-two terms
        assert level.denominator & (level.denominator - 1) == 0
        assert 1 <= bin(level.numerator).count("1") <= 2
    assert apot_levels(bits) == sorted(apot_levels(bits))


def test_apot_nearest_level_rounding_and_codes():
    w = torch.tensor([[0.625, 0.3, -0.1, 0.0, -0.625]])  # max |w| = max level 5/8: scale 1 per level
    q = apot_quantize(w, 4)
    # 0.3 -> 1/4 (not 3/8); -0.1 -> -1/8 (not -1/16); codes in units of 1/16
    assert q.codes.tolist() == [[10, 4, -2, 0, -10]]
    assert torch.allclose(q.dequantize(), torch.tensor([[0.625, 0.25, -0.125, 0.0, -0.625]], dtype=torch.float64))
    assert float(q.scale[0]) == pytest.approx(1 / 16)
    for code in q.codes.flatten().tolist():
        assert len(apot_code_terms(code)) <= 2


def test_apot_scale_is_per_filter_max_over_max_level():
    w = torch.tensor([[2.0, -1.0], [0.5, 0.25]])
    q = apot_quantize(w, 5, axis=0)
    assert torch.allclose(q.dequantize().abs().amax(1), torch.tensor([2.0, 0.5], dtype=torch.float64))
    assert torch.equal(q.codes * q.scale.reshape(-1, 1), q.dequantize())


def test_apot_code_terms_rejects_three_terms():
    assert apot_code_terms(10) == (1, 3)
    with pytest.raises(ValueError):
        apot_code_terms(7)


def test_uniform_symmetric_known_values():
    q = uniform_quantize(torch.tensor([-1.0, 0.5, 0.25]), 8, symmetric=True)
    assert float(q.scale) == pytest.approx(1 / 127)
    assert q.codes.tolist() == [-127, 64, 32]  # 63.5 and 31.75 round to 64 and 32
    assert int(q.zero_point) == 0


def test_uniform_asymmetric_per_tensor_range_and_error():
    x = torch.linspace(-1.0, 3.0, 101)
    q = uniform_quantize(x, 8, symmetric=False)
    assert float(q.scale) == pytest.approx(4.0 / 255)
    assert int(q.zero_point) == round(1.0 / (4.0 / 255))
    assert q.codes.min() >= 0 and q.codes.max() <= 255
    assert (q.dequantize() - x.double()).abs().max() <= float(q.scale) / 2 + 1e-12


def test_uniform_per_channel_scales_and_clamping():
    w = torch.tensor([[1.0, -0.5], [0.1, 0.05]])
    q = uniform_quantize(w, 4, symmetric=True, axis=0)
    assert torch.allclose(q.scale, torch.tensor([1 / 7, 0.1 / 7], dtype=torch.float64))
    assert q.codes.tolist() == [[7, -4], [7, 4]]  # -3.5 -> -4, 3.5 -> 4 (half to even)
    clamped = quantize_with(torch.tensor([5.0, -5.0]), torch.tensor(0.1), torch.tensor(0), 4, symmetric=True)
    assert clamped.codes.tolist() == [7, -8]


def test_zero_tensor_quantizes_exactly():
    q = uniform_quantize(torch.zeros(3, 2), 8, symmetric=True, axis=0)
    assert torch.equal(q.dequantize(), torch.zeros(3, 2, dtype=torch.float64))
    assert torch.equal(apot_quantize(torch.zeros(2, 2), 4).dequantize(), torch.zeros(2, 2, dtype=torch.float64))


def test_per_channel_mse():
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    assert per_channel_mse(x, torch.zeros(2, 2)).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("bits", [1, 0, 17, 2.5])
def test_bad_bits_rejected(bits):
    with pytest.raises(ValueError, match="bits"):
        uniform_quantize(torch.ones(2), bits, symmetric=True)


def test_bad_axis_rejected():
    with pytest.raises(ValueError, match="axis"):
        uniform_quantize(torch.ones(2, 2), 8, symmetric=True, axis=3)


def test_apot_beats_uniform_on_gaussian_filters_at_4_bits_but_not_at_8():
    # APoT's levels crowd near zero: a win at low bit-width, a loss against 127 uniform steps
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))

    def mses(bits):
        uni = per_channel_mse(w, uniform_quantize(w, bits, symmetric=True, axis=0).dequantize())
        apot = per_channel_mse(w, apot_quantize(w, bits).dequantize())
        return uni, apot

    uni4, apot4 = mses(4)
    uni8, apot8 = mses(8)
    assert (apot4 < uni4).all()
    assert (apot8 > uni8).all()
