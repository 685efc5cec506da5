"""Integer semantics of the quantized datapath: the arithmetic the functional executor follows.

numpy int64 only (no torch), deterministic. Every function is the executable form of one
rule of docs/quantization.md ("Integer semantics"); the graph carries the parameters
(QuantInfo ``requant_m0``, ``requant_shift``, ``bias_int``, ``acc_scale``, ``lut_in_*``, ``eps_int``).

Conventions:
- A code c of an 8-bit activation with scale s and zero point z means the real (c - z) * s;
  activations are asymmetric, codes in [0, 2^b - 1].
- Weights are symmetric (zero point 0): ``w_int * s_w`` is the weight, uniform and APoT alike.
- A real multiplier M > 0 is carried as ``M ~= m0 * 2^-shift`` with m0 in [2^30, 2^31)
  (the gemmlowp / TFLite fixed-point multiplier: gemmlowp ``OutputStageQuantizeDownInt32ByFixedPoint``,
  TFLite ``QuantizeMultiplier``), so requantization is one int64 multiply and one rounding shift.
- [choice] Rounding is half away from zero everywhere (requantization, bias, LUT building,
  float->code), with a single rounding per requantization (TFLite rounds twice: a
  doubling high multiply, then a rounding shift; the two can differ by one code on ties).
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

# The APoT level set is shared with the torch quantizers (pure Python, no torch import).
from archsim.numerics.apot import apot_code_terms, apot_level_codes, apot_unit_exponent  # noqa: F401


class Rounding(str, Enum):
    """The rounding rule of a requantizer, named in the graph (QuantInfo.rounding)
    and in docs/quantization.md."""

    HALF_AWAY_FROM_ZERO = (
        "half_away_from_zero"  # [choice] every requantizer: one rounding, ties away from zero
    )
    LOG2_NEAREST = "log2_nearest"  # the log2 denominator: p = round(log2 D) in the log domain (log2_round)


M0_BITS = 31  # m0 is a 31-bit magnitude: 2^30 <= m0 < 2^31 (a positive int32)
REQUANT_ACC_LIMIT = 2**31  # int32 accumulators: acc * m0 fits int64 (the fast path of requantize)
DIVIDE_NUM_LIMIT = 2**32  # the division's wide numerator: |num| * m0 < 2^63
# [choice] fraction bits of the quotient before a per-channel output offset is subtracted
# (a Trio-ViT-shifted division output): the offset then costs a second rounding of at most 2^-17 code.
OFFSET_FRACTION_BITS = 16


# -- rounding --------------------------------------------------------------------------
def round_half_away(x) -> np.ndarray:
    """Float -> int64, ties away from zero (2.5 -> 3, -2.5 -> -3)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def rounding_right_shift(x, shift) -> np.ndarray:
    """round(x / 2^shift), ties away from zero, exactly in int64; shift <= 0 shifts left."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    right = np.maximum(shift, 0)
    left = np.maximum(-shift, 0)
    half = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
    magnitude = np.right_shift(np.abs(x) + half, right)
    return np.sign(x) * np.left_shift(magnitude, left)


def code_range(bits: int, symmetric: bool = False) -> tuple[int, int]:
    """Code limits: signed [-2^(b-1), 2^(b-1)-1] or unsigned [0, 2^b-1]."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2**bits - 1)


def quantize_real(x, scale: float, zero_point: int, bits: int, symmetric: bool = False) -> np.ndarray:
    """Codes of real values: clamp(round(x / scale) + zero_point); used where the spec stays in float."""
    lo, hi = code_range(bits, symmetric)
    return np.clip(round_half_away(np.asarray(x, dtype=np.float64) / scale) + zero_point, lo, hi)


# -- fixed-point multipliers -----------------------------------------------------------
def requant_multiplier(real_scale: float) -> tuple[int, int]:
    """(m0, shift) with real_scale ~= m0 * 2^-shift, 2^30 <= m0 < 2^31 (relative error <= 2^-31)."""
    if not (real_scale > 0 and math.isfinite(real_scale)):
        raise ValueError(f"requant multiplier must be positive and finite, got {real_scale!r}")
    fraction, exponent = math.frexp(real_scale)  # real = fraction * 2^exponent, fraction in [0.5, 1)
    m0 = math.floor(fraction * 2**M0_BITS + 0.5)
    shift = M0_BITS - exponent
    if m0 == 2**M0_BITS:  # the fraction rounded up to 1.0
        m0, shift = m0 // 2, shift - 1
    return m0, shift


def requant_multipliers(real_scales) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel :func:`requant_multiplier`: int64 arrays m0 and shift of the input's shape."""
    scales = np.asarray(real_scales, dtype=np.float64)
    pairs = [requant_multiplier(float(s)) for s in scales.reshape(-1)]
    m0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(scales.shape)
    shift = np.array([p[1] for p in pairs], dtype=np.int64).reshape(scales.shape)
    return m0, shift


def _along(param, ndim: int, axis: int | None):
    """Reshape a 1-d per-channel parameter to broadcast along ``axis`` of an ``ndim``-d tensor."""
    param = np.asarray(param)
    if axis is None or param.ndim == 0:
        return param
    shape = [1] * ndim
    shape[axis] = -1
    return param.reshape(shape)


def requantize(
    acc, m0, shift, zero_point, bits: int, symmetric: bool = False, axis: int | None = None
) -> np.ndarray:
    """Output codes: clamp(round(acc * m0 / 2^shift) + zero_point) to the code range.

    ``m0`` / ``shift`` / ``zero_point`` are scalars or per-channel arrays (along ``axis`` of ``acc``, or
    already broadcastable when axis is None). Accumulators within int32 take the int64 fast path;
    wider ones (int64, e.g. 8-bit APoT filters) are requantized with the same rounding in exact
    Python integers, so the result never depends on the accumulator's width.
    """
    acc = np.asarray(acc, dtype=np.int64)
    m0 = _along(np.asarray(m0, dtype=np.int64), acc.ndim, axis)
    shift = _along(np.asarray(shift, dtype=np.int64), acc.ndim, axis)
    zero_point = _along(np.asarray(zero_point, dtype=np.int64), acc.ndim, axis)
    lo, hi = code_range(bits, symmetric)
    if acc.size and np.abs(acc).max() >= REQUANT_ACC_LIMIT:
        scaled = _exact_rounding_shift(acc, m0, shift)
    else:
        scaled = rounding_right_shift(acc * m0, shift)
    return np.clip(scaled + zero_point, lo, hi)


def _exact_rounding_shift(acc: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """round(acc * m0 / 2^shift), ties away from zero, in Python integers (products beyond int64)."""
    acc, m0, shift = np.broadcast_arrays(acc, m0, shift)
    out = []
    for a, m, s in zip(acc.reshape(-1).tolist(), m0.reshape(-1).tolist(), shift.reshape(-1).tolist()):
        product = a * m
        magnitude = (abs(product) + (1 << (s - 1))) >> s if s > 0 else abs(product) << -s
        out.append(magnitude if product >= 0 else -magnitude)
    return np.array(out, dtype=np.int64).reshape(acc.shape)


# -- accumulators ----------------------------------------------------------------------
def accumulator_bits(
    weight_bits: int, act_bits: int, K: int, apot: bool = False, apot_code_max: int | None = None
) -> int:
    """Worst-case signed bits of a K-term dot product (bias not included).

    Activation magnitude after zero-point removal <= 2^a - 1; a uniform symmetric weight
    code's magnitude <= 2^(b-1); an APoT weight code's <= ``apot_code_max`` (default: the
    largest code of a ``weight_bits``-bit APoT level set, 10 at 4 bits, 2^21 + 2^13 at 8 bits).
    """
    if apot:
        w_max = apot_code_max if apot_code_max is not None else apot_level_codes(weight_bits)[-1]
    else:
        w_max = 2 ** (weight_bits - 1)
    return dot_product_bits(2**act_bits - 1, w_max, K)


def dot_product_bits(a_max: int, b_max: int, K: int) -> int:
    """Signed bits of the worst case of sum_k a_k b_k with |a| <= a_max, |b| <= b_max (K terms)."""
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    return (K * a_max * b_max).bit_length() + 1  # + sign bit


def max_terms(
    acc_bits: int, weight_bits: int, act_bits: int, apot: bool = False, apot_code_max: int | None = None
) -> int:
    """Largest K whose worst-case dot product fits a signed ``acc_bits`` accumulator."""
    w_max = (
        (apot_code_max if apot_code_max is not None else apot_level_codes(weight_bits)[-1])
        if apot
        else 2 ** (weight_bits - 1)
    )
    return (2 ** (acc_bits - 1) - 1) // ((2**act_bits - 1) * w_max)


def fold_bias(bias, s_x: float, s_w, zp_x: int, w_int) -> np.ndarray:
    """bias_int[o] = round(bias[o] / (s_x * s_w[o])) - zp_x * sum_k w_int[o, k].

    With it, sum_k x_code * w_int + bias_int equals sum_k (x_code - zp_x) * w_int +
    round(bias / (s_x s_w)) exactly: the input zero point never enters the MAC array.
    Padding must then be filled with zp_x (the code of real 0). ``bias`` None means 0.
    """
    w_int = np.asarray(w_int, dtype=np.int64)
    out = w_int.shape[0]
    s_w = np.broadcast_to(np.asarray(s_w, dtype=np.float64), (out,))
    b = np.zeros(out) if bias is None else np.asarray(bias, dtype=np.float64)
    return round_half_away(b / (s_x * s_w)) - zp_x * w_int.reshape(out, -1).sum(axis=1)


# -- APoT as shift-add -----------------------------------------------------------------
def apot_shift_add(x_int, code) -> np.ndarray:
    """x * code computed as sign(code) * ((x << e1) + (x << e2)): what the SAT does, elementwise."""
    x = np.asarray(x_int, dtype=np.int64)
    code = np.asarray(code, dtype=np.int64)
    magnitude = np.abs(code)
    x, magnitude = np.broadcast_arrays(x, magnitude)
    total = np.zeros(x.shape, dtype=np.int64)
    terms = np.zeros(x.shape, dtype=np.int64)
    for e in range(int(magnitude.max(initial=0)).bit_length()):
        bit = (magnitude >> e) & 1
        total += np.where(bit == 1, np.left_shift(x, e), 0)
        terms += bit
    if terms.size and terms.max() > 2:
        raise ValueError("apot_shift_add: a code has more than two set bits")
    return np.sign(np.broadcast_to(code, x.shape)) * total


# -- elementwise ops -------------------------------------------------------------------
def relu_codes(codes, zero_point: int) -> np.ndarray:
    """ReLU on codes: max(code, zp) (real 0 is the code zp); exact, scale unchanged."""
    return np.maximum(np.asarray(codes, dtype=np.int64), zero_point)


def hardswish(x) -> np.ndarray:
    """x * relu6(x + 3) / 6 in float64 (the reference the LUT is built from)."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def hardswish_inverse(y: float) -> float:
    """The pre-image of y >= 0 on Hardswish's increasing branch (x >= -1.5)."""
    y = max(float(y), 0.0)
    return y if y >= 3.0 else (-3.0 + math.sqrt(9.0 + 24.0 * y)) / 2.0


def hardswish_input_range(out_hi: float, out_lo: float | None = None) -> tuple[float, float]:
    """[choice] Pre-activation range of a fused Hardswish, from the calibrated output range.

    Below -3 Hardswish is 0 = hardswish(-3), so clamping the input at -3 loses nothing; the
    top is the pre-image of out_hi on the increasing branch (x = out_hi for out_hi >= 3).
    An output range that starts above 0 starts at the pre-image of out_lo instead.
    """
    lo = -3.0 if out_lo is None or out_lo <= 0 else hardswish_inverse(out_lo)
    return lo, hardswish_inverse(out_hi)


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "hardswish": hardswish,
}


def activation_lut(
    name: str, s_in: float, zp_in: int, s_out: float, zp_out: int, bits: int = 8
) -> np.ndarray:
    """int64[2^bits]: the codes of ``name`` applied to every input code,
    f((c - zp_in) s_in) quantized (exact)."""
    if name not in ACTIVATIONS:
        raise NotImplementedError(
            f"no integer rule for activation {name!r} (supported: {', '.join(ACTIVATIONS)})"
        )
    codes = np.arange(2**bits, dtype=np.int64)
    return quantize_real(ACTIVATIONS[name]((codes - zp_in) * s_in), s_out, zp_out, bits)


def asymmetric_params(lo: float, hi: float, bits: int) -> tuple[float, int]:
    """Scale and zero point of an asymmetric b-bit grid over [lo, hi] widened to include 0."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (2**bits - 1) if hi > lo else 1.0
    zero_point = int(np.clip(round_half_away(-lo / scale), 0, 2**bits - 1))
    return scale, zero_point


def hardswish_lut(
    s_in: float,
    zp_in: int,
    s_out: float,
    zp_out: int,
    bits: int = 8,
    out_offset: float = 0.0,
    out_divisor: float = 1.0,
    in_bits: int | None = None,
) -> np.ndarray:
    """int64[2^in_bits]:
    lut[c] = clamp(round((hardswish((c - zp_in) s_in) - out_offset) / out_divisor / s_out) + zp_out).

    ``bits``: output code bits (and input bits unless ``in_bits`` is given).
    ``out_offset`` / ``out_divisor``: one channel's Trio-ViT filter shift / channel migration
    when the stored tensor is (y - offset) / divisor (one LUT per channel then).
    """
    return hardswish_codes(
        np.arange(2 ** (in_bits or bits), dtype=np.int64),
        s_in,
        zp_in,
        s_out,
        zp_out,
        bits,
        out_offset,
        out_divisor,
    )


def hardswish_codes(
    pre, s_in, zp_in, s_out: float, zp_out: int, bits: int = 8, out_offset=0.0, out_divisor=1.0
) -> np.ndarray:
    """The table's entries for the given input codes: :func:`hardswish_lut` evaluated elementwise at ``pre``.

    ``s_in`` / ``zp_in`` / ``out_offset`` / ``out_divisor`` broadcast against ``pre`` (per channel), so a
    table row and a direct evaluation give the same codes (the same float64 operations per element).
    """
    y = (hardswish((np.asarray(pre, dtype=np.int64) - zp_in) * s_in) - out_offset) / out_divisor
    return quantize_real(y, s_out, zp_out, bits)


def hardswish_tables(
    lut_in_scale,
    lut_in_zero_point,
    divisor,
    shift,
    s_out: float,
    zp_out: int,
    out_bits: int,
    lut_in_bits: int,
) -> np.ndarray:
    """A fused Hardswish's tables, one row of 2^lut_in_bits output codes per output channel
    (int64[C or 1, 2^b]).

    Channel c reads its pre-activation on its own input grid (``lut_in_scale[c]``, ``lut_in_zero_point[c]``)
    and writes the stored tensor ``(hardswish(x) - shift[c]) / divisor[c]`` on the output grid
    (:func:`hardswish_lut`); when every channel has the same grid and refinement one shared row is returned.
    """
    params = np.stack(
        [
            np.asarray(lut_in_scale, dtype=np.float64),
            np.asarray(lut_in_zero_point, dtype=np.float64),
            np.asarray(divisor, dtype=np.float64),
            np.asarray(shift, dtype=np.float64),
        ],
        axis=1,
    )
    if np.all(params == params[:1]):  # no refinement: every channel has the same grid and table
        params = params[:1]
    col = [params[:, i : i + 1] for i in range(4)]
    return hardswish_lut(
        col[0], col[1], s_out, zp_out, out_bits, out_offset=col[3], out_divisor=col[2], in_bits=lut_in_bits
    )


def add_multipliers(sa: float, sb: float, s_out: float) -> tuple[int, int, int]:
    """(m_a, m_b, shift): sa/s_out ~= m_a 2^-shift, sb/s_out ~= m_b 2^-shift, one shift set by the larger."""
    big_m0, shift = requant_multiplier(max(sa, sb) / s_out)
    small = int(round_half_away(min(sa, sb) / s_out * 2.0**shift))
    return (big_m0, small, shift) if sa >= sb else (small, big_m0, shift)


def add_requant(a, sa, za, b, sb, zb, s_out, z_out, bits: int = 8) -> np.ndarray:
    """Residual add: clamp(z_out + round(((a - za) m_a + (b - zb) m_b) / 2^shift)), one rounding."""
    m_a, m_b, shift = add_multipliers(sa, sb, s_out)
    return add_requant_fixed(a, za, b, zb, m_a, m_b, shift, 0, z_out, bits)


def add_channel_params(sa: float, sb: float, s_out: float, divisor=1.0, offset=0.0):
    """Fixed-point parameters of an add whose stored output is (y - offset_c) / divisor_c per element.

    Returns int64 arrays (m_a, m_b, shift, offset_int) of the broadcast shape of ``divisor`` and
    ``offset`` (a Trio-ViT refinement of the add's consumer; scalars 1 and 0 without one):
    per element the multipliers of sa / (s_out d) and sb / (s_out d) on one shift S, and the
    offset in output codes on the same shift, offset_int = round(offset / (s_out d) * 2^S).
    """
    divisor, offset = np.broadcast_arrays(
        np.asarray(divisor, dtype=np.float64), np.asarray(offset, dtype=np.float64)
    )
    params = [add_multipliers(sa, sb, s_out * d) for d in divisor.reshape(-1)]
    m_a, m_b, shift = (
        np.array([p[i] for p in params], dtype=np.int64).reshape(divisor.shape) for i in range(3)
    )
    offset_int = round_half_away(offset / (s_out * divisor) * np.exp2(shift.astype(np.float64)))
    return m_a, m_b, shift, offset_int


def add_requant_fixed(a, za, b, zb, m_a, m_b, shift, offset_int, z_out, bits: int = 8) -> np.ndarray:
    """clamp(z_out + round(((a - za) m_a + (b - zb) m_b - offset_int) / 2^shift)):
    the add from graph parameters.

    Parameters broadcast against the codes (per element maps from :func:`add_channel_params`).
    |terms| < 2^9 * 2^31 and |offset_int| < 2^50 for offsets below 2^18 codes: int64 throughout.
    """
    a = np.asarray(a, dtype=np.int64) - za
    b = np.asarray(b, dtype=np.int64) - zb
    m_a, m_b, offset_int = (np.asarray(v, dtype=np.int64) for v in (m_a, m_b, offset_int))
    total = a * m_a + b * m_b - offset_int
    lo, hi = code_range(bits)
    return np.clip(rounding_right_shift(total, shift) + z_out, lo, hi)


# -- linear-attention division -----------------------------------------------------------
# [choice] fraction bits of the division's denominator: eps (1e-5 in real units) is usually far
# below one denominator unit s_den = s_q s_k, so it is carried as eps_int in units of
# s_den / 2^EPS_FRACTION_BITS and the denominator as D = den * 2^EPS_FRACTION_BITS + eps_int.
EPS_FRACTION_BITS = 8


def division_eps_int(eps: float, den_scale) -> np.ndarray:
    """eps in units of s_den / 2^EPS_FRACTION_BITS,
    at least 1 so a zero denominator never divides [choice]."""
    return np.maximum(
        round_half_away(eps / np.asarray(den_scale, dtype=np.float64) * 2.0**EPS_FRACTION_BITS), 1
    )


def fixed_denominator(den, eps_int) -> np.ndarray:
    """D = den * 2^EPS_FRACTION_BITS + eps_int (> 0): den + eps with EPS_FRACTION_BITS fraction bits."""
    divisor = np.left_shift(np.asarray(den, dtype=np.int64), EPS_FRACTION_BITS) + np.asarray(
        eps_int, dtype=np.int64
    )
    if divisor.size and divisor.min() <= 0:
        raise ValueError("division: denominator + eps must be positive")
    return divisor


def offset_fixed(offset, s_out: float, fraction_bits: int = OFFSET_FRACTION_BITS) -> np.ndarray:
    """A real output offset in output codes with ``fraction_bits`` fraction bits:
    round(offset / s_out * 2^F)."""
    return round_half_away(np.asarray(offset, dtype=np.float64) / s_out * 2.0**fraction_bits)


def _subtract_offset(quotient, offset_int, fraction_bits: int) -> np.ndarray:
    """round((quotient - offset_int) / 2^F): a fixed-point quotient minus an offset, back to codes."""
    return rounding_right_shift(
        np.asarray(quotient, dtype=np.int64) - np.asarray(offset_int, dtype=np.int64), fraction_bits
    )


def divide_requant(
    num,
    den,
    m0,
    shift,
    eps_int,
    zero_point: int,
    bits: int = 8,
    offset_int=None,
    fraction_bits: int = OFFSET_FRACTION_BITS,
) -> np.ndarray:
    """clamp(zp + round(num * m0 / ((den + eps) * 2^shift))), ties away from zero, exact in int64.

    num, den: wide accumulators (int64; num at scale s_num, den >= 0 at s_den); the real multiplier
    m0 * 2^-shift is s_num / (s_den * s_out); eps is ``eps_int`` / 2^EPS_FRACTION_BITS denominator
    units, so with D = :func:`fixed_denominator` the value is num * m0 / (D * 2^(shift - EPS_FRACTION_BITS)).
    Uses round(a / (D 2^s)) = (floor(2a / 2^s) + D) // (2D) for a >= 0, D > 0.
    With ``offset_int`` (the stored output is y - offset per element, a Trio-ViT shift of the
    consumer's input; :func:`offset_fixed`) the quotient is first rounded to ``fraction_bits``
    fraction bits, the offset subtracted there, and the difference rounded to codes [choice].
    """
    divisor = fixed_denominator(den, eps_int)
    shift = np.asarray(shift, dtype=np.int64) - EPS_FRACTION_BITS
    lo, hi = code_range(bits)
    if offset_int is not None:
        quotient = _divide_round(num, divisor, m0, shift - fraction_bits)
        return np.clip(_subtract_offset(quotient, offset_int, fraction_bits) + zero_point, lo, hi)
    return np.clip(_divide_round(num, divisor, m0, shift) + zero_point, lo, hi)


def _divide_round(num, divisor, m0, shift) -> np.ndarray:
    """round(num * m0 / (divisor 2^shift)) in int64, ties away from zero (divisor > 0, shift >= 1)."""
    num = np.asarray(num, dtype=np.int64)
    if num.size and np.abs(num).max() >= DIVIDE_NUM_LIMIT:
        raise OverflowError("divide_requant: |numerator| must be < 2^32 so num * m0 fits int64")
    m0 = np.asarray(m0, dtype=np.int64)
    if shift.size and shift.min() < 1:
        raise OverflowError(
            "divide_requant: shift must be >= 1 (a smaller one would overflow the int64 product)"
        )
    twice = np.right_shift(np.abs(num) * m0, shift - 1)
    return np.sign(num) * ((twice + divisor) // (2 * divisor))


def log2_round(den) -> np.ndarray:
    """p = round(log2(den)) in the log domain, in integers: p + 1 when den^2 >= 2^(2p + 1)."""
    den = np.asarray(den, dtype=np.int64)
    if den.size and den.min() <= 0:
        raise ValueError("log2_round: values must be positive")
    floor_log2 = np.array([int(d).bit_length() - 1 for d in den.reshape(-1)], dtype=np.int64).reshape(
        den.shape
    )
    return floor_log2 + (den * den >= np.left_shift(np.int64(1), 2 * floor_log2 + 1))


def divide_log2_requant(
    num,
    den,
    m0,
    shift,
    eps_int,
    zero_point: int,
    bits: int = 8,
    offset_int=None,
    fraction_bits: int = OFFSET_FRACTION_BITS,
) -> np.ndarray:
    """Trio-ViT variant: the denominator rounded to a power of two, so the division is a shift.

    D = :func:`fixed_denominator` is rounded to 2^p (log domain); the value is
    num * m0 / 2^(shift + p - EPS_FRACTION_BITS). ``offset_int`` as in :func:`divide_requant`.
    """
    p = log2_round(fixed_denominator(den, eps_int)) - EPS_FRACTION_BITS
    num = np.asarray(num, dtype=np.int64)
    if num.size and np.abs(num).max() >= DIVIDE_NUM_LIMIT:
        raise OverflowError("divide_log2_requant: |numerator| must be < 2^32 so num * m0 fits int64")
    product = num * np.asarray(m0, dtype=np.int64)
    lo, hi = code_range(bits)
    if offset_int is None:
        return np.clip(rounding_right_shift(product, np.asarray(shift) + p) + zero_point, lo, hi)
    quotient_shift = np.asarray(shift) + p - fraction_bits
    if quotient_shift.size and quotient_shift.min() < 0:
        raise OverflowError("divide_log2_requant: shift + p must be >= fraction_bits")
    quotient = rounding_right_shift(product, quotient_shift)
    return np.clip(_subtract_offset(quotient, offset_int, fraction_bits) + zero_point, lo, hi)


# -- pooling ---------------------------------------------------------
def global_avg_pool(codes, zp_in: int, m0, shift, zp_out: int, bits: int = 8) -> np.ndarray:
    """(N, C, H, W) codes -> (N, C, 1, 1): sum_hw (x - zp_in), requantized by s_in / (H W s_out)."""
    x = np.asarray(codes, dtype=np.int64) - zp_in
    acc = x.sum(axis=(-2, -1), keepdims=True)
    return requantize(acc, m0, shift, zp_out, bits)
