"""Integer-only LayerNorm over the last axis (I-BERT style): the NORM rule of docs/quantization.md.

numpy int64 only (no torch, no float in the kernel); :func:`layer_norm_params` turns the float
gamma, beta, eps and scales into integers once (float64, deterministic), :func:`layer_norm_int`
computes output codes from 8-bit input codes with integer arithmetic.

Derivation. With x_i = c_i - zp_in (|x_i| <= 255) over N features:

- S1 = sum x_i, S2 = sum x_i^2, d_i = N x_i - S1 (= N (x_i - mean), exact),
  V = N S2 - S1^2 (= N^2 var in units of s_in^2, exact, >= 0).
- The normalised value is (x - mean) / sqrt(var + eps) = d_i / sqrt(V + eps N^2 / s_in^2), scale-free.
  eps enters with ``eps_frac_bits`` = e fraction bits: W0 = V * 4^e + eps_int,
  eps_int = max(1, RHAZ(eps N^2 / s_in^2 * 4^e)) [choice: >= 1, so a constant row never divides by 0].
- [choice] Per row, W0 is shifted left by an even amount 2t so W = W0 * 4^t lies in [2^53, 2^55):
  the square root then always has 26.5-27.5 significant bits, whatever the row's variance.
  r = round(sqrt(W)) exactly (integer Newton floor square root plus an exact rounding test;
  no ties exist for an integer W), so r ~= sqrt(V + eps N^2 / s_in^2) * 2^k with k = e + t.
- Output: with G_i = gamma_i / s_out and B_i = beta_i / s_out carried as g_i = RHAZ(G_i 2^F),
  b_i = RHAZ(B_i 2^F) (F = ``frac_bits``), the code is one RHAZ of one integer fraction:
  ``q_i = RHAZ((d_i 2^k g_i + b_i r) / (r 2^F))``, ``code_i = clamp(zp_out + q_i, 0, 2^bits - 1)``.

No int64 overflow for N <= 4096 and 8-bit codes (every bound is checked on construction / input):

- |S1| <= 255 N < 2^20, S2 <= 255^2 N < 2^28, V <= N S2 <= 255^2 N^2 < 2^40, so V * 4^e < 2^54 (e <= 7);
  eps_int < 2^54, so W0 < 2^55 and W < 2^55, r < 2^27.5 + 1/2 < 2^28.
- |d_i| <= sqrt((N - 1) V) (Cauchy-Schwarz on the deviations, which sum to 0), so
  |d_i 2^k| <= sqrt(N - 1) sqrt(V 4^k) <= 64 sqrt(W) < 2^33.5 (so the shift d_i << k itself cannot overflow).
- |g_i| <= 2^26, |b_i| <= 2^32, F <= 32: |d_i 2^k g_i| < 2^59.5, |b_i r| < 2^60, |numerator| < 2^61,
  denominator r 2^F < 2^60, and the rounding's 2 |num| + den < 2^63.

Accuracy against the float64 reference ``quantize_real((x - mean) / sqrt(var + eps) * gamma + beta,
s_out, zp_out, bits)``: the error in output codes is at most |normalised| 2^-(F+1) (g_i) + 2^-(F+1) (b_i)
+ |(y - beta) / s_out| (2^-27.5 (r) + 2^-15 / (N - 1) (eps_int's rounding)); with N >= 1600 and
|gamma|, |beta|, |y| < 2^16 s_out that is below 0.1 code, so codes differ by at most 1, and only where the
real value lies near a rounding boundary (measured: within ~1e-4 code). Measured on seeded random rows
(N = 1600 and 2560, 8-bit codes with per-row spread 3-40 codes and 1 % outliers; gamma ~ N(1, 0.3),
N(0, 2), N(1, 0.05) with beta ~ N(0, 0.5 | 2 | 0.1); eps 1e-5 | 1e-6; 8.0 M codes per grid):
max |diff| = 1; identical: 8-bit output grid 100 % (0 differ), 12-bit LUT input grid 99.9996 %
(30 differ), 16-bit grid 99.997 % (242 differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archsim.numerics.integer import code_range, round_half_away

MAX_N = 4096  # features; the overflow bounds above assume it
IN_CODE_MAX = 255  # 8-bit input codes and zero point
EPS_FRAC_BITS = 7  # default e: V * 4^7 < 2^54 still holds at N = 4096
MAX_EPS_FRAC_BITS = 7
EPS_INT_LIMIT = 2**54  # eps_int < 2^54 keeps W0 < 2^55
SQRT_ARG_BITS = 55  # W is normalised to [2^(55-2), 2^55)
GAMMA_LIMIT = 2**26  # |g_i| <= 2^26
BETA_LIMIT = 2**32  # |b_i| <= 2^32
MAX_FRAC_BITS = 32
MIN_FRAC_BITS = 8  # [choice] below this, gamma / s_out or beta / s_out is absurd for any output grid
MAX_OUT_BITS = 16


@dataclass(frozen=True, eq=False)
class LayerNormParams:
    """Integer parameters of one LayerNorm over the last axis (ints and read-only int64 arrays only).

    - ``n``: N, the normalised axis length (1 .. 4096).
    - ``frac_bits``: F, fraction bits of gamma_fp and beta_fp, one per layer (0 .. 32;
      layer_norm_params picks >= 8).
    - ``gamma_fp``: int64[N], g_i = RHAZ(gamma_i / s_out_i * 2^F), |g_i| <= 2^26.
    - ``beta_fp``: int64[N], b_i = RHAZ(beta_i / s_out_i * 2^F), |b_i| <= 2^32.
    - ``eps_int``: eps in units of 4^-e of V (= N^2 var / s_in^2): max(1, RHAZ(eps N^2 / s_in^2 * 4^e)),
      1 <= eps_int < 2^54.
    - ``eps_frac_bits``: e (0 .. 7), the fraction bits of the square root's argument, V * 4^e + eps_int.
    """

    n: int
    frac_bits: int
    gamma_fp: np.ndarray
    beta_fp: np.ndarray
    eps_int: int
    eps_frac_bits: int = EPS_FRAC_BITS

    def __post_init__(self) -> None:
        for name in ("n", "frac_bits", "eps_int", "eps_frac_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"LayerNormParams.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        _check_n(self.n)
        _check_range("frac_bits", self.frac_bits, 0, MAX_FRAC_BITS)
        _check_range("eps_frac_bits", self.eps_frac_bits, 0, MAX_EPS_FRAC_BITS)
        _check_range("eps_int", self.eps_int, 1, EPS_INT_LIMIT - 1)
        object.__setattr__(self, "gamma_fp", _int_vector("gamma_fp", self.gamma_fp, self.n, GAMMA_LIMIT))
        object.__setattr__(self, "beta_fp", _int_vector("beta_fp", self.beta_fp, self.n, BETA_LIMIT))


def _check_n(n: int) -> None:
    if not 1 <= n <= MAX_N:
        raise ValueError(f"LayerNorm over N = {n} features: the int64 bounds hold for 1 <= N <= {MAX_N}")


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise OverflowError(f"LayerNormParams.{name} = {value} outside [{lo}, {hi}] (int64 bounds)")


def _int_vector(name: str, values, n: int, limit: int) -> np.ndarray:
    """A read-only int64[n] copy; rejects floats (the executor must never see one) and |v| > limit."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"LayerNormParams.{name} must hold integers, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"LayerNormParams.{name} must have shape ({n},), got {arr.shape}")
    arr = arr.astype(np.int64)
    if np.abs(arr).max(initial=0) > limit:
        raise OverflowError(f"LayerNormParams.{name}: |value| exceeds {limit} (int64 bounds)")
    arr.setflags(write=False)
    return arr


# -- parameters (float64 -> integers, once per layer) ------------------------------------
def layer_norm_params(
    gamma, beta, eps: float, s_in: float, s_out, n: int, eps_frac_bits: int = EPS_FRAC_BITS
) -> LayerNormParams:
    """Integer parameters of LayerNorm(gamma, beta, eps) from an 8-bit grid s_in to an output grid s_out.

    ``gamma``, ``beta``: N values (or scalars, broadcast; None means 1 resp. 0); ``s_out``: scalar, or
    N values for a per-feature output grid (e.g. per-channel LUT input grids). Deterministic float64.
    """
    _check_n(n)
    if not (s_in > 0 and math.isfinite(s_in)):
        raise ValueError(f"s_in must be positive and finite, got {s_in!r}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be >= 0 and finite, got {eps!r}")
    s_out = np.broadcast_to(np.asarray(s_out, dtype=np.float64), (n,))
    if not np.all((s_out > 0) & np.isfinite(s_out)):
        raise ValueError("s_out must be positive and finite")
    gain = np.broadcast_to(np.asarray(1.0 if gamma is None else gamma, dtype=np.float64), (n,)) / s_out
    offset = np.broadcast_to(np.asarray(0.0 if beta is None else beta, dtype=np.float64), (n,)) / s_out
    frac_bits = _frac_bits(gain, offset)
    eps_scaled = eps * float(n) ** 2 / s_in**2 * 4.0**eps_frac_bits
    if not eps_scaled < EPS_INT_LIMIT - 1:
        raise OverflowError(f"eps * N^2 / s_in^2 = {eps * n**2 / s_in**2:.3g} too large for the int64 bounds")
    return LayerNormParams(
        n=n,
        frac_bits=frac_bits,
        gamma_fp=round_half_away(np.ldexp(gain, frac_bits)),
        beta_fp=round_half_away(np.ldexp(offset, frac_bits)),
        eps_int=max(1, int(round_half_away(eps_scaled))),
        eps_frac_bits=eps_frac_bits,
    )


def _frac_bits(gain: np.ndarray, offset: np.ndarray) -> int:
    """[choice] The largest F <= 32 with max|G| 2^F < 2^26 and max|B| 2^F < 2^32 (one F per layer)."""
    if not (np.all(np.isfinite(gain)) and np.all(np.isfinite(offset))):
        raise ValueError("gamma / s_out and beta / s_out must be finite")
    frac = MAX_FRAC_BITS
    for values, limit_bits in ((gain, 26), (offset, 32)):
        peak = float(np.abs(values).max(initial=0.0))
        if peak > 0:  # peak = f 2^p, f in [0.5, 1): peak 2^F < 2^limit iff F <= limit - p
            frac = min(frac, limit_bits - math.frexp(peak)[1])
    if frac < MIN_FRAC_BITS:
        raise OverflowError(
            f"gamma / s_out or beta / s_out too large ({frac} fraction bits "
            f"< {MIN_FRAC_BITS}); "
            "is s_out the output grid's scale?"
        )
    return frac


# -- integer square root -------------------------------------------------------------------
def bit_length(values) -> np.ndarray:
    """Elementwise int.bit_length() of non-negative int64 values (binary search on shifts)."""
    v = np.asarray(values, dtype=np.int64).copy()
    length = np.zeros(v.shape, dtype=np.int64)
    for step in (32, 16, 8, 4, 2, 1):
        high = np.right_shift(v, step) > 0
        length += np.where(high, step, 0)
        v = np.where(high, np.right_shift(v, step), v)
    return length + (v > 0)


def isqrt_floor(values) -> np.ndarray:
    """Elementwise floor(sqrt(w)) for int64 0 <= w < 2^62, exactly (integer Newton from above)."""
    w = np.asarray(values, dtype=np.int64)
    if w.size and (w.min() < 0 or w.max() >= 2**62):
        raise OverflowError("isqrt_floor: values must lie in [0, 2^62)")
    work = np.maximum(w, 1)  # w = 0 would reach x = 0 and divide by it
    x = np.left_shift(np.int64(1), (bit_length(work) + 1) // 2)  # 2^ceil(L/2) >= sqrt(w)
    while True:  # decreases strictly until x = floor(sqrt(w)) (at most ~6 steps from this start)
        y = np.right_shift(x + work // x, 1)
        smaller = y < x
        if not smaller.any():
            return np.where(w == 0, 0, x)
        x = np.where(smaller, y, x)


def isqrt_nearest(values) -> np.ndarray:
    """Elementwise round(sqrt(w)), exactly: s + 1 iff w > s^2 + s (sqrt(w) = s + 1/2 is impossible)."""
    w = np.asarray(values, dtype=np.int64)
    s = isqrt_floor(w)
    return s + (w - s * s > s)


# -- the kernel ----------------------------------------------------------------------------
def _check_codes(codes, zp_in: int, n: int) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"layer_norm_int: codes must be integers, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] != n:
        raise ValueError(f"layer_norm_int: last axis {arr.shape[-1:] or ()} != params.n = {n}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() > IN_CODE_MAX):
        raise OverflowError(f"layer_norm_int: input codes must be 8-bit, in [0, {IN_CODE_MAX}]")
    if not 0 <= int(zp_in) <= IN_CODE_MAX:
        raise OverflowError(f"layer_norm_int: zp_in = {zp_in} outside [0, {IN_CODE_MAX}]")
    return arr


def _normalised_sqrt(v: np.ndarray, params: LayerNormParams) -> tuple[np.ndarray, np.ndarray]:
    """(r, k): r = round(sqrt((V 4^e + eps_int) 4^t)) with the argument in [2^53, 2^55), k = e + t."""
    w0 = np.left_shift(v, 2 * params.eps_frac_bits) + params.eps_int  # >= 1, < 2^55
    t = (SQRT_ARG_BITS - bit_length(w0)) // 2  # even shift: keeps 26.5-27.5 bits in r
    return isqrt_nearest(np.left_shift(w0, 2 * t)), params.eps_frac_bits + t


def _round_fraction(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """RHAZ(num / den) for den > 0, exactly: floor((2|num| + den) / (2 den)) with num's sign."""
    return np.sign(num) * ((2 * np.abs(num) + den) // (2 * den))


def layer_norm_int(codes, zp_in: int, params: LayerNormParams, zp_out, bits: int = 8) -> np.ndarray:
    """LayerNorm over the last axis on 8-bit codes -> int64 codes in [0, 2^bits - 1], integers only.

    ``zp_out``: the output grid's zero point (scalar or per feature), on the grid whose scale was
    given to :func:`layer_norm_params`; ``bits`` <= 16 (e.g. a Hardswish LUT input grid).
    """
    x = _check_codes(codes, zp_in, params.n) - int(zp_in)
    if not 1 <= bits <= MAX_OUT_BITS:
        raise ValueError(f"layer_norm_int: output bits must be in [1, {MAX_OUT_BITS}], got {bits}")
    lo, hi = code_range(bits)
    zp_out = np.asarray(zp_out)
    if zp_out.dtype.kind not in "iu" or zp_out.size == 0 or zp_out.min() < lo or zp_out.max() > hi:
        raise ValueError(f"layer_norm_int: zp_out must be integer code(s) in [{lo}, {hi}]")
    n = params.n
    s1 = x.sum(axis=-1, keepdims=True)
    v = n * (x * x).sum(axis=-1, keepdims=True) - s1 * s1  # N^2 var / s_in^2, exact
    d = n * x - s1  # N (x - mean) / s_in, exact
    r, k = _normalised_sqrt(v, params)
    num = np.left_shift(d, k) * params.gamma_fp + params.beta_fp * r
    den = np.left_shift(r, params.frac_bits)
    return np.clip(zp_out.astype(np.int64) + _round_fraction(num, den), lo, hi)
