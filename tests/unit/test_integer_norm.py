"""Integer LayerNorm (archsim.numerics.integer_norm): a hand-worked example, the float64 reference, guards."""

import math

import numpy as np
import pytest

from archsim.numerics import integer as qi
from archsim.numerics.integer_norm import (
    LayerNormParams,
    isqrt_floor,
    isqrt_nearest,
    layer_norm_int,
    layer_norm_params,
)


def float_reference(codes, zp_in, s_in, gamma, beta, eps, s_out, zp_out, bits):
    """The float64 rule the kernel approximates: quantize_real(LayerNorm((c - zp_in) s_in))."""
    x = (np.asarray(codes, dtype=np.int64) - zp_in) * s_in
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return qi.quantize_real((x - mean) / np.sqrt(var + eps) * gamma + beta, s_out, zp_out, bits)


# -- hand-worked ---------------------------------------------------------------------------
def test_hand_worked_n4():
    # codes 101, 103, 105, 107 with zp_in 100, s_in 0.5: x = 1, 3, 5, 7 (codes), mean 4, deviations
    # -3, -1, 1, 3 -> var = 5 codes^2 = 1.25 real; eps 0.3125 -> sqrt(1.5625) = 1.25, so the normalised
    # values are (-1.5, -0.5, 0.5, 1.5) / 1.25 = -1.2, -0.4, 0.4, 1.2.
    # Integers: S1 = 16, S2 = 84, d = 4 x - 16 = -12, -4, 4, 12, V = 4 * 84 - 16^2 = 80,
    # eps_int = 0.3125 * 16 / 0.25 * 4^7 = 20 * 4^7, V 4^7 + eps_int = 100 * 4^7 -> sqrt = 10 * 2^7 (exact),
    # so d / sqrt = -1.2, -0.4, 0.4, 1.2 exactly.
    # Output grid s_out = 1/8, zp_out = 10 (y / s_out = 8 y):
    #   f0 gamma  2,    beta  0:      -2.4           -> -19.2 -> -19 -> -9 -> clamped to 0
    #   f1 gamma  1.25, beta  0.1875: -0.5 + 0.1875  -> -2.5  -> -3 (tie, away from zero) -> 7
    #   f2 gamma -0.5,  beta  0.5:    -0.2 + 0.5     ->  2.4  ->  2  -> 12
    #   f3 gamma  0.75, beta -0.25:    0.9 - 0.25    ->  5.2  ->  5  -> 15
    params = layer_norm_params([2.0, 1.25, -0.5, 0.75], [0.0, 0.1875, 0.5, -0.25], 0.3125, 0.5, 0.125, 4)
    # G = gamma / s_out = 16, 10, -4, 6 (largest 16 = 0.5 * 2^5 -> F = 26 - 5 = 21); B = 0, 1.5, 4, -2
    assert params.frac_bits == 21
    assert params.gamma_fp.tolist() == [16 * 2**21, 10 * 2**21, -4 * 2**21, 6 * 2**21]
    assert params.beta_fp.tolist() == [0, 3 * 2**20, 4 * 2**21, -2 * 2**21]
    assert params.eps_int == 20 * 4**7
    codes = np.array([[101, 103, 105, 107], [107, 105, 103, 101]])
    # reversed row: normalised 1.2, 0.4, -0.4, -1.2 -> y = 2.4, 0.5 + 0.1875, 0.2 + 0.5, -0.9 - 0.25
    #   -> 8 y = 19.2, 5.5, 5.6, -9.2 -> 19, 6 (tie), 6, -9 -> 29, 16, 16, 1
    assert layer_norm_int(codes, 100, params, 10).tolist() == [[0, 7, 12, 15], [29, 16, 16, 1]]


def test_constant_row_gives_the_quantized_beta():
    # zero variance: d = 0 and V = 0, eps alone sets the square root; output zp_out + RHAZ(beta / s_out)
    beta = [0.3, -0.25, 1.0, 0.0625]  # / 0.125 = 2.4, -2, 8, 0.5 -> 2, -2, 8, 1 (tie away from zero)
    params = layer_norm_params([3.0, -1.0, 0.5, 2.0], beta, 1e-5, 0.02, 0.125, 4)
    codes = np.full((2, 4), 200)
    assert layer_norm_int(codes, 128, params, 100).tolist() == [[102, 98, 108, 101]] * 2
    # a 12-bit grid, s_out = 2^-10: 307.2 -> 307, -256, 1024, 64 around zp_out 2048
    params12 = layer_norm_params([3.0, -1.0, 0.5, 2.0], beta, 1e-5, 0.02, 2.0**-10, 4)
    assert layer_norm_int(codes[:1], 128, params12, 2048, bits=12).tolist() == [[2355, 1792, 3072, 2112]]


def test_constant_rows_at_full_width_match_quantize_real():
    rng = np.random.default_rng(3)
    beta = rng.normal(0, 0.5, 1600)
    params = layer_norm_params(rng.normal(1, 0.3, 1600), beta, 1e-5, 0.03, 0.02, 1600)
    codes = np.stack([np.full(1600, c) for c in (0, 77, 255)])
    expected = qi.quantize_real(beta, 0.02, 128, 8)
    assert (layer_norm_int(codes, 77, params, 128) == expected).all()


# -- against the float64 reference ---------------------------------------------------------
def random_codes(rng, rows, n):
    """Rows of 8-bit codes around a zero point with per-row spread and 1 % uniform outliers."""
    zp_in = int(rng.integers(60, 200))
    spread = rng.uniform(3, 40, size=(rows, 1))
    values = zp_in + rng.normal(0, 1, (rows, n)) * spread
    values = np.where(rng.random((rows, n)) < 0.01, rng.integers(0, 256, (rows, n)), values)
    return np.clip(np.rint(values), 0, 255).astype(np.int64), zp_in


SETTINGS = [  # (gamma mean, gamma std, beta std, eps)
    (1.0, 0.3, 0.5, 1e-5),
    (0.0, 2.0, 2.0, 1e-5),
    (1.0, 0.05, 0.1, 1e-6),
]


@pytest.mark.parametrize("n", [1600, 2560])
@pytest.mark.parametrize("setting", SETTINGS)
def test_within_one_code_of_float64_and_almost_always_identical(n, setting):
    g_mean, g_std, b_std, eps = setting
    rng = np.random.default_rng(n + int(10 * g_std))
    total = same = 0
    for _trial in range(4):
        codes, zp_in = random_codes(rng, 16, n)
        s_in = float(rng.uniform(0.005, 0.2))
        gamma, beta = rng.normal(g_mean, g_std, n), rng.normal(0, b_std, n)
        x = (codes - zp_in) * s_in
        y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta
        grids = [
            (8, (y.min(), y.max())),  # the calibrated 8-bit output grid
            (12, qi.hardswish_input_range(max(y.max(), 0.1))),  # a fused Hardswish's LUT input grid
            (16, (y.min(), y.max())),
        ]
        for bits, (lo, hi) in grids:
            s_out, zp_out = qi.asymmetric_params(lo, hi, bits)
            params = layer_norm_params(gamma, beta, eps, s_in, s_out, n)
            got = layer_norm_int(codes, zp_in, params, zp_out, bits)
            ref = float_reference(codes, zp_in, s_in, gamma, beta, eps, s_out, zp_out, bits)
            assert np.abs(got - ref).max() <= 1
            total += got.size
            same += int((got == ref).sum())
    # measured: 28 of the 2.40 M codes of all 6 cases differ (8-bit 0, 12-bit 2, 16-bit 26), each by 1;
    # the worst case (N = 1600, gamma ~ N(1, 0.3)) is 99.9977 % identical. Threshold with margin:
    assert same / total >= 0.9999


def test_per_feature_output_grid():
    # s_out per feature (e.g. per-channel LUT input grids): same as running each feature's grid separately
    rng = np.random.default_rng(7)
    codes, zp_in = random_codes(rng, 8, 1600)
    gamma, beta = rng.normal(1, 0.3, 1600), rng.normal(0, 0.5, 1600)
    s_out = rng.uniform(0.01, 0.05, 1600)
    zp_out = rng.integers(100, 156, 1600)
    got = layer_norm_int(codes, zp_in, layer_norm_params(gamma, beta, 1e-5, 0.04, s_out, 1600), zp_out)
    ref = float_reference(codes, zp_in, 0.04, gamma, beta, 1e-5, s_out, zp_out, 8)
    assert np.abs(got - ref).max() <= 1
    assert (got == ref).mean() >= 0.9999


def test_worst_case_rows_at_n4096_do_not_overflow():
    # largest variance (codes 0 / 255 alternating), largest |d| / sqrt(V) (one outlier, sqrt(N - 1) = 64),
    # smallest nonzero variance (one code off by 1), with gamma / s_out = 2^17 (F = 8, g = 2^25) on a
    # 16-bit grid: the products reach 2^58-2^59; a wrapped int64 would land on the wrong side of the clamp.
    n = 4096
    rows = np.zeros((4, n), dtype=np.int64)
    rows[0, ::2] = 255
    rows[1, 0] = 255
    rows[2, :] = 255
    rows[2, 0] = 0
    rows[3, 0] = 1
    s_out = 2.0**-17
    params = layer_norm_params(1.0, 0.0, 1e-12, 1.0, s_out, n)
    assert params.frac_bits == 8 and params.gamma_fp.max() == 2**25
    for zp_in in (0, 255):
        got = layer_norm_int(rows, zp_in, params, 32768, bits=16)
        ref = float_reference(rows, zp_in, 1.0, 1.0, 0.0, 1e-12, s_out, 32768, 16)
        assert (got == ref).all()


# -- square root ------------------------------------------------------------------------------
def test_integer_square_roots_against_math_isqrt():
    s = np.arange(1, 3000, dtype=np.int64)
    rng = np.random.default_rng(0)
    w = np.concatenate(
        [
            np.arange(0, 100),
            s * s - 1,
            s * s,
            s * s + s,
            s * s + s + 1,
            rng.integers(2**53, 2**55, 2000),
            [2**62 - 1],
        ]
    ).astype(np.int64)
    floors = [math.isqrt(int(v)) for v in w]
    assert isqrt_floor(w).tolist() == floors
    # round(sqrt(w)) = f + 1 iff sqrt(w) > f + 1/2 iff 4 w > (2 f + 1)^2
    assert isqrt_nearest(w).tolist() == [f + (4 * int(v) > (2 * f + 1) ** 2) for f, v in zip(floors, w)]
    assert isqrt_nearest([6, 7, 12, 13]).tolist() == [2, 3, 3, 4]  # 2.449, 2.646, 3.464, 3.606


# -- parameters are integers; guards -------------------------------------------------------
def test_params_hold_only_integers():
    params = layer_norm_params(np.linspace(0.5, 1.5, 1600), np.linspace(-1, 1, 1600), 1e-5, 0.03, 0.05, 1600)
    for name in ("n", "frac_bits", "eps_int", "eps_frac_bits"):
        assert type(getattr(params, name)) is int
    for arr in (params.gamma_fp, params.beta_fp):
        assert arr.dtype == np.int64 and arr.shape == (1600,) and not arr.flags.writeable
    # eps_int = RHAZ(1e-5 * 1600^2 / 0.03^2 * 4^7) = RHAZ(28 444.44 * 16 384) = RHAZ(466 033 777.8)
    assert params.eps_int == 466_033_778
    with pytest.raises(TypeError):
        LayerNormParams(
            n=2, frac_bits=8, gamma_fp=np.array([1.0, 2.0]), beta_fp=np.zeros(2, np.int64), eps_int=1
        )
    with pytest.raises(TypeError):
        LayerNormParams(
            n=2, frac_bits=8.0, gamma_fp=np.ones(2, np.int64), beta_fp=np.zeros(2, np.int64), eps_int=1
        )


def test_overflow_guards():
    with pytest.raises(ValueError, match="N = 4097"):
        layer_norm_params(1.0, 0.0, 1e-5, 0.03, 0.05, 4097)
    with pytest.raises(ValueError):
        LayerNormParams(
            n=5000, frac_bits=8, gamma_fp=np.ones(5000, np.int64), beta_fp=np.zeros(5000, np.int64), eps_int=1
        )
    with pytest.raises(OverflowError):  # |g| > 2^26
        LayerNormParams(n=1, frac_bits=8, gamma_fp=np.array([2**26 + 1]), beta_fp=np.array([0]), eps_int=1)
    with pytest.raises(OverflowError):  # eps * N^2 / s_in^2 * 4^7 >= 2^54
        layer_norm_params(1.0, 0.0, 1.0, 1e-3, 0.05, 4096)
    with pytest.raises(OverflowError):  # gamma / s_out = 10^6: fewer than 8 fraction bits
        layer_norm_params(1.0, 0.0, 1e-5, 0.03, 1e-6, 16)
    params = layer_norm_params(1.0, 0.0, 1e-5, 0.03, 0.05, 4)
    with pytest.raises(OverflowError):
        layer_norm_int([[0, 1, 2, 256]], 0, params, 128)
    with pytest.raises(OverflowError):
        layer_norm_int([[0, 1, 2, -1]], 0, params, 128)
    with pytest.raises(OverflowError):
        layer_norm_int([[0, 1, 2, 3]], 300, params, 128)
    with pytest.raises(ValueError):  # last axis is not N
        layer_norm_int([[0, 1, 2]], 0, params, 128)
    with pytest.raises(ValueError):  # more than 16 output bits
        layer_norm_int([[0, 1, 2, 3]], 0, params, 128, bits=17)
    with pytest.raises(TypeError):  # float codes
        layer_norm_int([[0.0, 1.0, 2.0, 3.0]], 0, params, 128)
