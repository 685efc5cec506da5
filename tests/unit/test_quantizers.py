"""Uniform (min-max, percentile, Lp search), APoT, PoT and log2 quantizers on known inputs."""

import itertools
import math
from fractions import Fraction as Fr

import pytest
import torch

from archsim.quant.quantizers import (
    apot_code_terms,
    apot_levels,
    apot_levels_exact,
    apot_quantize,
    apot_unit_exponent,
    log2_dequantize,
    log2_quantize,
    lp_error,
    per_channel_mse,
    pot_levels,
    pot_quantize,
    quantize_with,
    tensor_range,
    uniform_quantize,
)


def test_apot_4bit_table_matches_reference():
    assert list(apot_levels_exact(4)) == [
        Fr(0),
        Fr(1, 16),
        Fr(1, 8),
        Fr(3, 16),
        Fr(1, 4),
        Fr(3, 8),
        Fr(1, 2),
        Fr(5, 8),
    ]


def test_apot_5bit_table_matches_reference():
    expected = [
        0,
        Fr(1, 64),
        Fr(1, 32),
        Fr(3, 64),
        Fr(1, 16),
        Fr(3, 32),
        Fr(1, 8),
        Fr(9, 64),
        Fr(3, 16),
        Fr(1, 4),
        Fr(9, 32),
        Fr(3, 8),
        Fr(1, 2),
        Fr(33, 64),
        Fr(9, 16),
        Fr(3, 4),
    ]
    assert list(apot_levels_exact(5)) == [Fr(v) for v in expected]


@pytest.mark.parametrize("bits", [3, 4, 5, 6, 7, 8])
def test_apot_levels_are_sums_of_at_most_two_powers_of_two(bits):
    levels = apot_levels_exact(bits)
    assert len(levels) == 2 ** (bits - 1) and levels[0] == 0
    for level in levels[1:]:
        # a dyadic fraction: its numerator's popcount is the number of power-of-two terms
        assert level.denominator & (level.denominator - 1) == 0
        assert 1 <= level.numerator.bit_count() <= 2
    assert apot_levels(bits) == sorted(apot_levels(bits))


def test_apot_nearest_level_rounding_and_codes():
    w = torch.tensor([[0.625, 0.3, -0.1, 0.0, -0.625]])  # max |w| = max level 5/8: scale 1 per level
    q = apot_quantize(w, 4)
    # 0.3 -> 1/4 (not 3/8); -0.1 -> -1/8 (not -1/16); codes in units of 1/16
    assert q.codes.tolist() == [[10, 4, -2, 0, -10]]
    assert torch.allclose(
        q.dequantize(), torch.tensor([[0.625, 0.25, -0.125, 0.0, -0.625]], dtype=torch.float64)
    )
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
    assert torch.equal(
        apot_quantize(torch.zeros(2, 2), 4).dequantize(), torch.zeros(2, 2, dtype=torch.float64)
    )


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


# -- uniform: rounding, zero points, per tensor vs per channel ----------------------------
def test_uniform_ties_round_half_to_even():
    # scale 1 (max 7 at 4 bits): 2.5 -> 2, -2.5 -> -2, 3.5 -> 4
    q = uniform_quantize(torch.tensor([7.0, 2.5, -2.5, 3.5]), 4, symmetric=True)
    assert float(q.scale) == 1.0
    assert q.codes.tolist() == [7, 2, -2, 4]


def test_symmetric_vs_asymmetric_zero_point():
    x = torch.tensor([-0.5, 1.0])
    asym = uniform_quantize(x, 2, symmetric=False)
    # scale 1.5 / 3 = 0.5, zero point round(0.5 / 0.5) = 1; codes -1 + 1 = 0 and 2 + 1 = 3
    assert float(asym.scale) == 0.5 and int(asym.zero_point) == 1
    assert asym.codes.tolist() == [0, 3]
    assert asym.dequantize().tolist() == [-0.5, 1.0]
    sym = uniform_quantize(x, 2, symmetric=True)
    # qmax 1, scale max|x| = 1; -0.5 is a tie and rounds to (negative) zero
    assert float(sym.scale) == 1.0 and int(sym.zero_point) == 0
    assert sym.codes.tolist() == [0, 1]


def test_per_tensor_shares_one_scale():
    w = torch.tensor([[1.0, -0.5], [0.1, 0.05]])
    q = uniform_quantize(w, 4, symmetric=True)
    assert q.scale.shape == () and float(q.scale) == pytest.approx(1 / 7)
    assert q.codes.tolist() == [[7, -4], [1, 0]]  # 0.7 -> 1, 0.35 -> 0 (per channel they were 7, 4)


def test_asymmetric_clamps_at_code_limits():
    q = quantize_with(
        torch.tensor([-1.0, 0.0, 300.0]), torch.tensor(1.0), torch.tensor(3), 8, symmetric=False
    )
    assert q.codes.tolist() == [2, 3, 255]


# -- percentile range ----------------------------------------------------------------------
def test_percentile_interpolates_between_sorted_values():
    x = torch.tensor([[40.0, 0.0, 20.0, 10.0, 30.0], [0.0, -1.0, -2.0, -3.0, -4.0]])
    lo, hi = tensor_range(x, axis=0, method="percentile", percentile=90)
    # position 0.9 * 4 = 3.6: 30 + 0.6 * 10 = 36; position 0.4: 0 + 0.4 * 10 = 4
    assert torch.allclose(hi, torch.tensor([36.0, -0.4], dtype=torch.float64))
    assert torch.allclose(lo, torch.tensor([4.0, -3.6], dtype=torch.float64))
    assert torch.allclose(hi, torch.quantile(x.double(), 0.9, dim=1))
    lo_t, hi_t = tensor_range(x, method="percentile", percentile=90)  # per tensor: 10 values
    assert float(hi_t) == pytest.approx(30 + 0.1 * 10) and float(lo_t) == pytest.approx(-3 - 0.1)


def test_percentile_clips_an_outlier():
    x = torch.cat([torch.arange(100.0), torch.tensor([1000.0])])  # 101 values: 0..99 and 1000
    lo, hi = tensor_range(x, method="percentile", percentile=99)
    assert (float(lo), float(hi)) == (1.0, 99.0)  # positions 1 and 99 of the sorted values
    q = uniform_quantize(x, 8, symmetric=False, range_method="percentile", percentile=99)
    assert float(q.scale) == pytest.approx(99 / 255)  # lo widened to 0
    assert int(q.codes[-1]) == 255 and float(q.dequantize()[-1]) == pytest.approx(99.0)
    minmax = uniform_quantize(x, 8, symmetric=False)
    assert float(minmax.scale) == pytest.approx(1000 / 255)


def test_percentile_100_is_minmax():
    x = torch.tensor([[3.0, -1.0, 2.0], [5.0, 4.0, -7.0]])
    for axis in (None, 0, 1):
        got, want = tensor_range(x, axis, "percentile", percentile=100), tensor_range(x, axis)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


# -- Lp range search (Trio-ViT) ----------------------------------------------------------------
OUTLIER_ROW = [0.0, 1.5, 1.5, 1.5, 1.5, 3.0]


def test_lp_search_with_p1_finds_the_hand_computed_range():
    # 2-bit asymmetric on [0, 3s]: levels 0, s, 2s, 3s. Min-max (s = 1): each 1.5 is a tie -> 2,
    # error 0.5 x 4, mean L1 2/6. At s = 0.75 the 1.5s are exact and 3 clips to 2.25 (error
    # 0.75): mean 0.75/6; the L1 error 4|1.5 - 2s| + 3 - 3s has slope 5 above and -11 below.
    x = torch.tensor(OUTLIER_ROW)
    q = uniform_quantize(x, 2, symmetric=False, range_method="lp", p=1.0)
    assert float(q.scale) == pytest.approx(0.75) and int(q.zero_point) == 0
    assert q.codes.tolist() == [0, 2, 2, 2, 2, 3]
    assert float(lp_error(x, q.dequantize(), p=1.0)) == pytest.approx(0.125)
    minmax = uniform_quantize(x, 2, symmetric=False)
    assert float(lp_error(x, minmax.dequantize(), p=1.0)) == pytest.approx(1 / 3)


def test_lp_search_default_p_reduces_lp_error_against_minmax():
    # L2.4 error 4|1.5 - 2s|^2.4 + (3 - 3s)^2.4 is smallest at s = 0.857 (8(2s-1.5)^1.4 =
    # 3(3-3s)^1.4); of the candidates 1 - 0.01 i, s = 0.86 is lower than 0.85
    x = torch.tensor(OUTLIER_ROW)
    q = uniform_quantize(x, 2, symmetric=False, range_method="lp")
    assert float(q.scale) == pytest.approx(0.86)
    expected = (4 * 0.22**2.4 + 0.42**2.4) / 6
    assert float(lp_error(x, q.dequantize())) == pytest.approx(expected)
    minmax = uniform_quantize(x, 2, symmetric=False)
    assert float(lp_error(x, minmax.dequantize())) == pytest.approx(4 * 0.5**2.4 / 6)


def test_lp_search_keeps_minmax_when_the_grid_is_already_exact():
    x = torch.arange(16.0)  # on the 4-bit min-max grid: zero error, any shrink clips 15
    q = uniform_quantize(x, 4, symmetric=False, range_method="lp")
    assert float(q.scale) == 1.0 and q.codes.tolist() == list(range(16))
    sym = uniform_quantize(torch.arange(-7.0, 8.0), 4, symmetric=True, range_method="lp")
    assert float(sym.scale) == 1.0


def test_lp_search_is_per_channel():
    # row 0 is the outlier row (s = 0.75 at p = 1), row 1 lies on its min-max grid (s = 1)
    w = torch.tensor([OUTLIER_ROW, [0.0, 1.0, 2.0, 3.0, 1.0, 2.0]])
    q = uniform_quantize(w, 2, symmetric=False, axis=0, range_method="lp", p=1.0)
    assert torch.allclose(q.scale, torch.tensor([0.75, 1.0], dtype=torch.float64))
    _, hi = tensor_range(w.t(), axis=1, method="lp", bits=2, p=1.0)  # channel axis last
    assert torch.allclose(hi, torch.tensor([2.25, 3.0], dtype=torch.float64))


def test_range_method_errors():
    with pytest.raises(ValueError, match="bits"):
        tensor_range(torch.ones(3), method="lp")
    with pytest.raises(ValueError, match="unknown range method"):
        tensor_range(torch.ones(3), method="mse")
    with pytest.raises(ValueError, match="percentile"):
        tensor_range(torch.ones(3), method="percentile", percentile=40)


# -- PoT ---------------------------------------------------------------------------------------
def test_pot_levels():
    assert pot_levels(2) == [0.0, 1.0]
    assert pot_levels(3) == [0.0, 0.25, 0.5, 1.0]  # = the APoT reference 3-bit table / its max
    assert pot_levels(4) == [0.0] + [2.0**-k for k in range(6, -1, -1)]


def test_pot_nearest_level_in_linear_domain():
    w = torch.tensor([[1.0, 0.3, -0.2, 0.05, 0.375], [2.0, -2.0, 1.6, 0.0, 0.5]])
    q = pot_quantize(w, 3)
    # row 0, scale 1: 0.3 -> 1/4; -0.2 -> -1/4 (midpoint 1/8); 0.05 -> 0; 0.375 is the 1/4..1/2 tie -> 1/4
    # row 1, scale 2: 1.6/2 = 0.8 -> 1 (midpoint 0.75); 0.5/2 = 1/4
    assert q.codes.tolist() == [[4, 1, -1, 0, 1], [4, -4, 4, 0, 1]]
    assert torch.allclose(q.scale, torch.tensor([0.25, 0.5], dtype=torch.float64))
    assert q.dequantize()[0].tolist() == [1.0, 0.25, -0.25, 0.0, 0.25]
    assert q.scheme == "pot"


def test_pot_7_bits_fits_int64_and_8_bits_is_rejected():
    q = pot_quantize(torch.tensor([[1.0, 2.0**-62, -(2.0**-61)]]), 7)
    assert q.codes.tolist() == [[2**62, 1, -2]]
    with pytest.raises(ValueError, match="bits"):
        pot_quantize(torch.ones(1, 2), 8)


# -- APoT 3 and 6 bits, MSE clipping ----------------------------------------------------------
def test_apot_3bit_levels():
    # one exponent per term: {0, 1/4} + {0, 1/2}
    assert list(apot_levels_exact(3)) == [Fr(0), Fr(1, 4), Fr(1, 2), Fr(3, 4)]
    assert apot_unit_exponent(3) == 2


def test_apot_6bit_levels():
    levels = apot_levels_exact(6)
    # terms: 2^-{1,2,3,4,6,8,10} and 2^-{5,7,9}
    assert len(levels) == 32
    assert levels[1] == Fr(1, 1024) and levels[-1] == Fr(1, 2) + Fr(1, 32)
    assert levels[-2] == Fr(1, 2) + Fr(1, 128)
    assert all(a < b for a, b in itertools.pairwise(levels))
    assert apot_unit_exponent(6) == 10


def test_apot_mse_clip_picks_the_hand_computed_alpha():
    # 4-bit levels / (5/8) = {0, .1, .2, .3, .4, .6, .8, 1}. Clip at a: MSE * 9 is
    # (1 - a)^2 + 8 (0.48 - 0.6 a)^2: 0.0297 at a = 0.85, 0.0300 at 0.86, 0.0302 at 0.84;
    # max scaling (a = 1) puts 0.48 on 0.4: 8 * 0.08^2 = 0.0512
    w = torch.tensor([[1.0] + [0.48] * 8])
    q = apot_quantize(w, 4, clip="mse")
    assert float(q.scale[0]) == pytest.approx(1.6 * 0.85 / 16)
    assert q.codes.tolist() == [[10] + [6] * 8]
    assert float(per_channel_mse(w, q.dequantize())[0]) == pytest.approx(0.0297 / 9)
    assert float(per_channel_mse(w, apot_quantize(w, 4).dequantize())[0]) == pytest.approx(0.0512 / 9)


def test_apot_mse_clip_keeps_max_scaling_when_it_is_exact():
    w = torch.tensor([[1.0, 0.6, 0.4, -0.2], [0.0, 0.0, 0.0, 0.0]])  # row 0 on the a = 1 levels
    clipped, plain = apot_quantize(w, 4, clip="mse"), apot_quantize(w, 4)
    assert torch.equal(clipped.codes, plain.codes) and torch.equal(clipped.scale, plain.scale)
    with pytest.raises(ValueError, match="clip"):
        apot_quantize(w, 4, clip="percentile")


# -- log2 ----------------------------------------------------------------------------------------
def f64(values):
    return torch.tensor(values, dtype=torch.float64)


def test_log2_exact_powers():
    e = log2_quantize(f64([1.0, 2.0, 0.5, 2.0**-10, 1024.0]), 8)
    assert e.tolist() == [0, 1, -1, -10, 10]
    assert log2_dequantize(e).tolist() == [1.0, 2.0, 0.5, 2.0**-10, 1024.0]


def test_log2_rounds_in_the_log_domain():
    below = math.nextafter(math.sqrt(2), 0)  # just under the irrational midpoint sqrt(2)
    e = log2_quantize(f64([1.41 * 8, 1.42 * 8, math.sqrt(2) * 4, below * 4, 1.45, 0.75]), 8)
    # 0.75 = 1.5 * 2^-1 -> 0 (log2 1.5 = 0.585); 1.45 -> 1 in the log domain
    assert e.tolist() == [3, 4, 3, 2, 1, 0]


def test_log2_linear_and_ceil_rounding():
    x = f64([1.45, 1.5, 1.51, 1.0, 1.01])
    assert log2_quantize(x, 8, rounding="linear").tolist() == [0, 0, 1, 0, 0]  # 1.5 * 2^k ties down
    assert log2_quantize(x, 8, rounding="ceil").tolist() == [1, 1, 1, 0, 1]


def test_log2_clamps_to_signed_bits_range_and_uses_unit():
    assert log2_quantize(f64([2.0**10, 2.0**-10, 8.0]), 3).tolist() == [3, -4, 3]  # range [-4, 3]
    assert log2_quantize(f64([0.75, 3.0]), 4, unit=0.375).tolist() == [1, 3]
    assert log2_dequantize(torch.tensor([-2, 3]), unit=0.5).tolist() == [0.125, 4.0]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_log2_rejects_non_positive_or_non_finite(bad):
    with pytest.raises(ValueError, match="positive"):
        log2_quantize(f64([1.0, bad]), 8)
