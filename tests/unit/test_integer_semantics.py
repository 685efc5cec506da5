"""The integer semantics of archsim.numerics.integer, on examples computed by hand."""

import numpy as np
import pytest

from archsim.numerics import integer as qi


# -- rounding and requantization -------------------------------------------------------
def test_round_half_away_from_zero():
    assert qi.round_half_away([2.5, -2.5, 0.5, -0.5, 1.49, -1.51]).tolist() == [3, -3, 1, -1, 1, -2]


def test_rounding_right_shift_ties_and_left_shift():
    # 5/2 = 2.5 -> 3, -5/2 -> -3, 6/4 = 1.5 -> 2, 5/4 = 1.25 -> 1, shift -2 multiplies by 4
    assert qi.rounding_right_shift([5, -5, 6, 5, 3], [1, 1, 2, 2, -2]).tolist() == [3, -3, 2, 1, 12]


def test_requant_multiplier_by_hand():
    assert qi.requant_multiplier(0.5) == (2**30, 31)
    assert qi.requant_multiplier(0.75) == (3 * 2**29, 31)
    assert qi.requant_multiplier(1.0) == (2**30, 30)
    assert qi.requant_multiplier(1 / 3) == (1431655765, 32)  # round(2^32 / 3)
    assert qi.requant_multiplier(3.0) == (3 * 2**29, 29)
    with pytest.raises(ValueError):
        qi.requant_multiplier(0.0)


def test_requant_multiplier_relative_error_and_range():
    scales = np.array([1e-6, 3.7e-4, 0.0123, 0.999999999, 7.5])
    m0, shift = qi.requant_multipliers(scales)
    assert np.all((m0 >= 2**30) & (m0 < 2**31))
    rel = np.abs(m0 * np.exp2(-shift.astype(float)) - scales) / scales
    assert rel.max() <= 2.0**-31


def test_requantize_ties_zero_point_and_clamp():
    m0, shift = qi.requant_multiplier(0.5)
    # acc * 0.5: 3 -> 1.5 -> 2, -3 -> -1.5 -> -2, 1 -> 0.5 -> 1; + zp 10
    assert qi.requantize([3, -3, 1, -1], m0, shift, 10, 8).tolist() == [12, 8, 11, 9]
    # clamps: 600 * 0.5 + 10 = 310 -> 255; -100 * 0.5 + 10 = -40 -> 0; signed 4-bit -> [-8, 7]
    assert qi.requantize([600, -100], m0, shift, 10, 8).tolist() == [255, 0]
    assert qi.requantize([600, -100], m0, shift, 0, 4, symmetric=True).tolist() == [7, -8]


def test_requantize_per_channel():
    m0, shift = qi.requant_multipliers([0.5, 0.25])
    acc = np.array([[[4, 6]], [[4, 6]]])  # (C=2, 1, 2)
    assert qi.requantize(acc, m0, shift, 0, 8, axis=0).tolist() == [[[2, 3]], [[1, 2]]]  # 6*0.25 = 1.5 -> 2


def test_requantize_wide_accumulators_exactly():
    # 8-bit APoT filters need int64 accumulators: acc * m0 no longer fits int64, the rounding stays exact.
    m0, shift = 3 * 2**29, 40  # 1.5 * 2^30 * 2^-40 = 1.5 * 2^-10
    acc = [2**40 + 2**9, -(2**40 + 2**9), 2**41 + 3]
    # 2^40 * 1.5 * 2^-10 = 1.5 * 2^30 = 1610612736; 2^9 * 1.5 * 2^-10 = 0.75 -> 1610612737 (sign symmetric);
    # (2^41 + 3) * 1.5 * 2^-10 = 3 * 2^30 + 0.0044 -> 3221225472 (a 34-bit code range keeps it unclamped)
    assert qi.requantize(acc, m0, shift, 0, 34, symmetric=True).tolist() == [
        1610612737,
        -1610612737,
        3221225472,
    ]
    # the same rounding as the int64 fast path where both apply: ties away from zero
    assert qi.requantize([2**31, 2**31 + 2**9], 2**30, 40, 0, 32, symmetric=True).tolist() == [
        2**21,
        2**21 + 1,
    ]


# -- accumulators, bias ----------------------------------------------------------------
def test_accumulator_bits_worst_case():
    # one 8x8 product: 255 * 128 = 32640 -> 15 magnitude bits + sign
    assert qi.accumulator_bits(8, 8, 1) == 16
    # K = 2^16: 32640 * 65536 = 2139095040 < 2^31 -> int32 fits
    assert qi.accumulator_bits(8, 8, 2**16) == 32
    assert qi.max_terms(32, 8, 8) == 65793  # (2^31 - 1) // 32640
    assert qi.accumulator_bits(8, 8, 65794) == 33
    # 4-bit depthwise weights: 255 * 8 * 9 = 18360 -> 16 bits
    assert qi.accumulator_bits(4, 8, 9) == 16
    # 4-bit APoT: codes <= 10 -> 255 * 10 = 2550 -> 13 bits; 1536 terms: 3916800 -> 23 bits
    assert qi.accumulator_bits(4, 8, 1, apot=True) == 13
    assert qi.accumulator_bits(4, 8, 1536, apot=True) == 23
    # 8-bit APoT: codes up to 2^21 + 2^13 = 2105344; 255 * 2105344 = 536862720 (30 bits signed);
    # 4 terms still fit int32 (2147450880), 5 do not
    assert qi.apot_level_codes(8)[-1] == 2**21 + 2**13
    assert qi.accumulator_bits(8, 8, 1, apot=True) == 30
    assert qi.accumulator_bits(8, 8, 4, apot=True) == 32
    assert qi.accumulator_bits(8, 8, 5, apot=True) == 33
    assert qi.max_terms(32, 8, 8, apot=True) == 4  # (2^31 - 1) // (255 * 2105344)


def test_attention_matmul_widths():
    # B1 stage 3 at 224: N = 14 * 14 = 196 tokens, head dim d = 16; q, k >= 0 after ReLU (<= 255), |v| <= 255
    kv_bits = qi.dot_product_bits(255, 255, 196)  # k^T v: 196 * 65025 = 12744900 -> 24 bits + sign
    assert kv_bits == 25
    # q (k^T [v|1]): 17 terms of q (<= 255) times kv (<= 12744900): 55249141500 -> 36 bits + sign
    assert qi.dot_product_bits(255, 196 * 255 * 255, 17) == 37


def test_fold_bias_by_hand():
    w_int = np.array([[1, -2, 3], [4, 0, -1]])  # row sums 2 and 3
    s_w = np.array([0.5, 0.25])
    # bias / (s_x s_w): 1.0 / (0.1 * 0.5) = 20, -0.3 / (0.1 * 0.25) = -12; minus zp 7 * row sum
    assert qi.fold_bias([1.0, -0.3], 0.1, s_w, 7, w_int).tolist() == [20 - 14, -12 - 21]
    assert qi.fold_bias(None, 0.1, s_w, 7, w_int).tolist() == [-14, -21]


def test_folded_bias_equals_zero_point_removed_sum():
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(4, 16))
    x = rng.integers(0, 256, size=16)
    zp, s_x, s_w, bias = 37, 0.02, np.full(4, 0.01), rng.normal(size=4)
    lhs = w @ x + qi.fold_bias(bias, s_x, s_w, zp, w)
    rhs = w @ (x - zp) + qi.round_half_away(bias / (s_x * s_w))
    assert np.array_equal(lhs, rhs)


# -- APoT ------------------------------------------------------------------------------
def test_apot_codes_are_the_reference_levels_in_units_of_the_smallest_power():
    # reference tables (yhhhli/APoT_Quantization) times 2^E: 4 bit x16, 5 bit x64
    assert qi.apot_unit_exponent(4) == 4
    assert qi.apot_level_codes(4) == [0, 1, 2, 3, 4, 6, 8, 10]
    assert qi.apot_unit_exponent(5) == 6
    assert qi.apot_level_codes(5) == [0, 1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 33, 36, 48]


def test_apot_shift_add_equals_multiplication():
    assert qi.apot_code_terms(10) == (1, 3) and qi.apot_code_terms(-3) == (0, 1)
    assert qi.apot_shift_add(7, -10).tolist() == -70
    codes = np.array([s * c for c in qi.apot_level_codes(4) for s in (1, -1)])
    x = np.random.default_rng(1).integers(-255, 256, size=(64, 1))
    assert np.array_equal(qi.apot_shift_add(x, codes), x * codes)
    codes8 = np.array(qi.apot_level_codes(8))
    assert np.array_equal(qi.apot_shift_add(x, codes8), x * codes8)
    with pytest.raises(ValueError):
        qi.apot_shift_add(1, 7)  # three set bits is not an APoT code


# -- ReLU, Hardswish -------------------------------------------------------------------
def test_relu_codes():
    assert qi.relu_codes([3, 10, 200], 10).tolist() == [10, 10, 200]


def test_hardswish_lut_by_hand():
    s_in, zp_in, s_out, zp_out = 0.05, 60, 0.025, 15
    lut = qi.hardswish_lut(s_in, zp_in, s_out, zp_out)
    assert lut.shape == (256,)
    assert lut[0] == 15  # x = -3 -> 0 -> zp_out
    assert lut[30] == 0  # x = -1.5 -> -0.375 -> -15 + 15
    assert lut[90] == 60  # x = 1.5 -> 1.125 -> 45 + 15
    assert lut[120] == 135  # x = 3 -> 3 -> 120 + 15
    assert lut[255] == 255  # x = 9.75 -> 390 + 15 clamps
    # tie: x = (64 - 60) * 0.05 = 0.2 -> 0.2 * 3.2 / 6 = 0.10666 -> 4.27 -> 4 (+15)
    assert lut[64] == 19


def test_hardswish_lut_within_one_lsb_of_float():
    s_in, zp_in = 0.04, 100
    s_out, zp_out = 0.025, 15  # covers [-0.375, 6.0]
    lut = qi.hardswish_lut(s_in, zp_in, s_out, zp_out)
    codes = np.arange(256)
    ref = qi.hardswish((codes - zp_in) * s_in)
    inside = (ref >= (0 - zp_out) * s_out) & (ref <= (255 - zp_out) * s_out)
    err = np.abs((lut - zp_out) * s_out - ref)[inside]
    assert err.max() <= 0.5 * s_out + 1e-12  # within half an LSB (so within 1 LSB)
    assert np.array_equal(lut, np.clip(qi.round_half_away(ref / s_out) + zp_out, 0, 255))


def test_hardswish_input_range():
    assert qi.hardswish_input_range(5.0) == (-3.0, 5.0)
    lo, hi = qi.hardswish_input_range(2.0)  # hardswish(x) = 2: x (x + 3) = 12 -> x = (-3 + sqrt 57) / 2
    assert lo == -3.0 and hi == pytest.approx((-3 + 57**0.5) / 2) and qi.hardswish(hi) == pytest.approx(2.0)
    assert qi.asymmetric_params(-3.0, 2.1, 8) == (pytest.approx(0.02), 150)
    assert qi.hardswish_input_range(5.0, 2.0)[0] == pytest.approx(hi)  # a range above 0 starts at hs^-1(lo)


def test_hardswish_lut_wide_input_and_per_channel_refinement():
    lut = qi.hardswish_lut(0.01, 300, 0.05, 10, 8, out_offset=0.5, out_divisor=2.0, in_bits=12)
    assert lut.shape == (4096,)
    assert lut[300] == 5  # x = 0 -> (0 - 0.5) / 2 = -0.25 -> -5 codes (+10)
    assert lut[900] == 65  # x = 6 -> (6 - 0.5) / 2 = 2.75 -> 55 codes (+10)


# -- residual add, division, pooling, LayerNorm ------------------------------------------
def test_add_requant_by_hand():
    sa, za, sb, zb, s_out, z_out = 0.125, 10, 0.0625, 20, 0.25, 5
    assert qi.add_multipliers(sa, sb, s_out) == (2**30, 2**29, 31)
    # a = 26 -> 2.0, b = 52 -> 2.0: 4.0 / 0.25 = 16 + 5 = 21
    assert qi.add_requant(26, sa, za, 52, sb, zb, s_out, z_out).tolist() == 21
    # tie: a = 11 -> 0.125, b = 20 -> 0: 0.5 code -> 1 (+5); a = 9, b = 20: -0.5 -> -1 (+5)
    assert qi.add_requant([11, 9], sa, za, [20, 20], sb, zb, s_out, z_out).tolist() == [6, 4]
    # (245 * 0.125 + 235 * 0.0625) / 0.25 = 122.5 + 58.75 = 181.25 -> 181 (+5)
    assert qi.add_requant(255, sa, za, 255, sb, zb, s_out, z_out).tolist() == 186
    assert (
        qi.add_requant(0, sa, za, 0, sb, zb, s_out, z_out).tolist() == 0
    )  # (-1.25 - 1.25) / 0.25 + 5 = -5 -> 0


def test_add_requant_within_one_lsb_of_float():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 256, 500), rng.integers(0, 256, 500)
    sa, za, sb, zb, s_out, z_out = 0.0371, 101, 0.0129, 17, 0.041, 60
    out = qi.add_requant(a, sa, za, b, sb, zb, s_out, z_out)
    ref = (a - za) * sa + (b - zb) * sb
    inside = (ref / s_out + z_out >= 0) & (ref / s_out + z_out <= 255)
    assert np.abs((out - z_out) * s_out - ref)[inside].max() <= s_out


ONE = 2**qi.EPS_FRACTION_BITS  # eps_int of eps = one denominator unit


def test_divide_requant_by_hand():
    m0, shift = qi.requant_multiplier(1.0)
    # 7 / 2 = 3.5 -> 4; -7 / 2 -> -4; 6 / 4 = 1.5 -> 2; 0 / (0 + eps 1) -> 0; all + zp 100
    assert qi.divide_requant([7, -7, 6, 0], [1, 1, 3, 0], m0, shift, ONE, 100).tolist() == [104, 96, 102, 100]
    m0, shift = qi.requant_multiplier(0.5)
    assert qi.divide_requant([5], [1], m0, shift, ONE, 0).tolist() == [1]  # 5 / 2 * 0.5 = 1.25 -> 1
    m0, shift = qi.requant_multiplier(40.0)
    assert qi.divide_requant([3], [9], m0, shift, ONE, 0).tolist() == [12]  # 3 / 10 * 40
    # a fraction of a unit: eps 1/4 -> 7 / 1.25 = 5.6 -> 6 (the eps_int >= 1 unit rule gave 3.5 -> 4)
    assert qi.divide_requant([7], [1], *qi.requant_multiplier(1.0), ONE // 4, 0).tolist() == [6]
    # eps in units of s_den / 256: 1e-5 / 1e-3 * 256 = 2.56 -> 3; 1e-5 / 1e-7 * 256 = 25600; tiny -> 1
    assert qi.division_eps_int(1e-5, [1e-3, 1e-7, 1e3]).tolist() == [3, 25600, 1]


def test_add_with_per_channel_divisor_and_offset_by_hand():
    # stored output (y - offset_c) / divisor_c: channel 0 plain, channel 1 shifted by 1.0 and halved
    sa, za, sb, zb, s_out, z_out = 0.125, 10, 0.0625, 20, 0.25, 5
    m_a, m_b, shift, off = qi.add_channel_params(sa, sb, s_out, divisor=[1.0, 2.0], offset=[0.0, 1.0])
    assert m_a.tolist() == [2**30, 2**30] and m_b.tolist() == [2**29, 2**29] and shift.tolist() == [31, 32]
    assert off.tolist() == [0, 2 * 2**32]  # 1.0 / (0.25 * 2) = 2 codes on the shift 2^32
    # a = 26 (2.0), b = 52 (2.0): y = 4.0 -> ch0 16 codes, ch1 (4 - 1) / 2 = 1.5 / 0.25 = 6 codes (+5)
    out = qi.add_requant_fixed([26, 26], za, [52, 52], zb, m_a, m_b, shift, off, z_out)
    assert out.tolist() == [21, 11]
    # no refinement: identical to add_requant
    m_a, m_b, shift, off = qi.add_channel_params(sa, sb, s_out)
    assert qi.add_requant_fixed(255, za, 255, zb, m_a, m_b, shift, off, z_out).tolist() == 186


def test_division_with_output_offset_by_hand():
    m0, shift = qi.requant_multiplier(1.0)  # m0 2^30, shift 30
    off = qi.offset_fixed([0.5, -0.25], 0.5)  # 1 code and -0.5 code, 16 fraction bits
    assert off.tolist() == [2**16, -(2**15)]
    # 7 / (1 + 1) = 3.5: minus 1 -> 2.5 -> 3; minus -0.5 -> 4.0 -> 4 (+ zp 100)
    out = qi.divide_requant([7, 7], [1, 1], m0, shift, ONE, 100, offset_int=off)
    assert out.tolist() == [103, 104]
    # without offsets the two-step path equals the one-step one
    num, den = np.arange(-50, 50), np.arange(100) * 3
    assert np.array_equal(
        qi.divide_requant(num, den, m0, shift, ONE, 0, offset_int=0),
        qi.divide_requant(num, den, m0, shift, ONE, 0),
    )
    # log2 variant: 40 / 8 = 5, minus 1 code -> 4
    assert qi.divide_log2_requant([40], [5], m0, shift, ONE, 0, offset_int=[2**16]).tolist() == [4]


def test_divide_requant_tracks_float():
    rng = np.random.default_rng(3)
    num, den = rng.integers(-(2**20), 2**20, 300), rng.integers(0, 2**22, 300)
    real = 0.0173
    m0, shift = qi.requant_multiplier(real)
    out = qi.divide_requant(num, den, m0, shift, ONE, 128)
    ref = num / (den + 1) * real
    inside = np.abs(ref) < 120
    assert np.abs(out - 128 - ref)[inside].max() <= 0.5 + 1e-6


def test_log2_division_variant():
    assert qi.log2_round([1, 2, 3, 5, 6, 11, 12]).tolist() == [0, 1, 2, 2, 3, 3, 4]  # 11 < 8 sqrt2 = 11.31
    m0, shift = qi.requant_multiplier(1.0)
    # 40 / (5 + 1): 6 -> 2^3, 40 / 8 = 5
    assert qi.divide_log2_requant([40], [5], m0, shift, ONE, 0).tolist() == [5]


def test_global_avg_pool_by_hand():
    codes = np.array([[[[10, 12], [14, 20]]]])  # zp 10: sum 0 + 2 + 4 + 10 = 16
    m0, shift = qi.requant_multiplier(0.5 / 4 / 0.25)  # s_in 0.5, H W = 4, s_out 0.25: 16 * 0.5 = 8
    assert qi.global_avg_pool(codes, 10, m0, shift, 3).tolist() == [[[[11]]]]


def test_activation_lut_by_hand():
    # s_in 0.5, zp_in 4: codes 0..7 are -2 .. 1.5; relu6 onto s_out 0.25, zp_out 0
    table = qi.activation_lut("relu6", 0.5, 4, 0.25, 0, bits=3)
    assert table.tolist() == [0, 0, 0, 0, 0, 2, 4, 6]
    relu = qi.activation_lut("relu", 0.5, 4, 0.5, 4, bits=3)
    assert relu.tolist() == [4, 4, 4, 4, 4, 5, 6, 7]  # max(code, zp) when the grids agree
    with pytest.raises(NotImplementedError, match="gelu"):
        qi.activation_lut("gelu", 0.5, 4, 0.5, 4)
