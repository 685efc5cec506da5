"""Tensor quantizers: uniform (symmetric/asymmetric, per tensor/per channel), APoT, PoT, log2.

Every quantizer returns a :class:`QuantizedTensor` whose integer ``codes`` satisfy
``(codes - zero_point) * scale == dequantized`` (per channel along ``axis`` when given).
Symmetric quantizers have zero_point 0, so ``codes * scale`` is the dequantized tensor,
which is what the integer datapath multiplies with.

APoT (additive powers of two, Li et al., ICLR 2020; reference code yhhhli/APoT_Quantization):
each magnitude level is a sum of at most two powers of two. ``codes`` of an APoT tensor are
the signed level in units of the smallest power of two used by the level set, so a
shift-add tree computes ``x * code`` as ``(x << e1) + (x << e2)`` (see :func:`apot_code_terms`).
PoT (:func:`pot_quantize`) is the one-term case; :func:`log2_quantize` turns a positive tensor
into power-of-two exponents (Trio-ViT's linear-attention denominator, so the division is a shift).

Uniform range methods (:data:`RANGE_METHODS`): ``minmax``; ``percentile`` (clip to the q-th and
(100-q)-th percentiles); ``lp``, the Trio-ViT search (github.com/shihuihong214/Trio-ViT,
quant/quant_layer.py, ``UniformAffineQuantizer.init_quantization_scale`` with scale_method
"mse"): candidate i = 0..79 shrinks [min, max] to [min*(1-0.01 i), max*(1-0.01 i)] and the
candidate with the lowest mean |x - Q(x)|^2.4 (``lp_loss(..., p=2.4, reduction='all')``,
"L_p norm minimization as described in LAPQ") wins, the first one on ties (strict ``<``).
Trio-ViT loops over channels; here the search is vectorised over channels. Deviation: Trio-ViT
does not widen the searched range to include 0 (an all-positive channel gets a negative zero
point); archsim always widens it (:func:`uniform_params`) so 0 (padding) is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# The level construction is pure Python, shared with the numpy integer reference.
from archsim.numerics.apot import (  # noqa: F401  (re-exported: callers import them from here)
    apot_code_terms,
    apot_level_codes,
    apot_levels,
    apot_levels_exact,
    apot_terms,
    apot_unit_exponent,
)

RANGE_METHODS = ("minmax", "percentile", "lp")
DEFAULT_PERCENTILE = 99.99  # [choice] clip 0.01 % per side; a parameter of every caller
LP_NORM_P = 2.4  # Trio-ViT quant/quant_layer.py: lp_loss(x, x_q, p=2.4)
LP_CANDIDATES = 80  # Trio-ViT: for i in range(80)
LP_SHRINK_STEP = 0.01  # Trio-ViT: new_max = x_max * (1.0 - i * 0.01), same for the min
# [choice] APoT/PoT clipping grid for clip="mse": alpha = a * max|w| for a = 1.00, 0.99, ..., 0.50
# (APoT learns its clipping threshold in training; a PTQ flow has to search it)
CLIP_GRID = tuple(1.0 - 0.01 * i for i in range(51))
CLIP_METHODS = ("max", "mse")


@dataclass(frozen=True)
class QuantizedTensor:
    codes: torch.Tensor  # int64, same shape as the input
    scale: torch.Tensor  # float64; shape () per tensor, (C,) per channel along ``axis``
    zero_point: torch.Tensor  # int64; same shape as scale
    bits: int
    axis: int | None  # channel axis of per-channel parameters, None = per tensor
    scheme: str = "uniform"  # "uniform", "apot" or "pot"

    def dequantize(self) -> torch.Tensor:
        zp = _bcast(self.zero_point, self.codes.dim(), self.axis)
        return (self.codes - zp).to(torch.float64) * _bcast(self.scale, self.codes.dim(), self.axis)


def _bcast(t: torch.Tensor, ndim: int, axis: int | None) -> torch.Tensor:
    """Reshape per-channel parameters to broadcast along ``axis`` of an ``ndim``-d tensor."""
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def _check_bits(bits: int, low: int = 2, high: int = 16) -> None:
    if not isinstance(bits, int) or not low <= bits <= high:
        raise ValueError(f"bits must be an integer in [{low}, {high}], got {bits!r}")


def _reduce_dims(x: torch.Tensor, axis: int | None) -> list[int]:
    if axis is None:
        return list(range(x.dim()))
    if not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis {axis} out of range for a {x.dim()}-d tensor")
    axis %= x.dim()
    return [d for d in range(x.dim()) if d != axis]


def tensor_range(
    x: torch.Tensor,
    axis: int | None = None,
    method: str = "minmax",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    p: float = LP_NORM_P,
    bits: int | None = None,
    symmetric: bool = False,
):
    """(min, max) of ``x`` by ``method``, per channel along ``axis`` or over the whole tensor.

    ``percentile`` is q for method "percentile"; ``p``, ``bits`` and ``symmetric`` configure
    the quantizer whose Lp error method "lp" minimises (``bits`` is required there).
    """
    if method not in RANGE_METHODS:
        raise ValueError(f"unknown range method {method!r}; known: {', '.join(RANGE_METHODS)}")
    dims = _reduce_dims(x, axis)
    x64 = x.detach().to(torch.float64)
    if not dims:
        return x64.clone(), x64.clone()
    if method == "minmax":
        return x64.amin(dim=dims), x64.amax(dim=dims)
    rows = _channel_rows(x64, axis)
    if method == "percentile":
        lo, hi = _percentile_range(rows, percentile)
    else:
        if bits is None:
            raise ValueError("range method 'lp' needs the quantizer's bits")
        lo, hi = _lp_search_range(rows, bits, symmetric, p)
    return (lo[0], hi[0]) if axis is None else (lo, hi)


def _channel_rows(x64: torch.Tensor, axis: int | None) -> torch.Tensor:
    """``x`` as a (channels, elements) matrix; one row when per tensor."""
    if axis is None:
        return x64.reshape(1, -1)
    return x64.movedim(axis, 0).reshape(x64.shape[axis], -1)


def _row_quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """q-quantile (q in [0, 1]) of each row, linear interpolation as torch.quantile.

    Sorting instead of torch.quantile, which refuses inputs over 16M elements.
    """
    ordered = rows.sort(dim=1).values
    position = q * (rows.shape[1] - 1)
    below = math.floor(position)
    above = min(below + 1, rows.shape[1] - 1)
    weight = position - below
    return ordered[:, below] * (1 - weight) + ordered[:, above] * weight


def _row_lp_error(rows, scale, zero_point, bits: int, symmetric: bool, p: float) -> torch.Tensor:
    """Mean |x - Q(x)|^p per row; the arithmetic of :func:`quantize_with` in place, in float
    (one buffer instead of int64 codes and a dequantized copy: 80 passes over a weight)."""
    lo, hi = code_limits(bits, symmetric)
    scale, zero_point = scale.unsqueeze(1), zero_point.to(torch.float64).unsqueeze(1)
    err = torch.round(rows / scale)
    err.add_(zero_point).clamp_(lo, hi).sub_(zero_point).mul_(scale).sub_(rows).abs_().pow_(p)
    return err.mean(dim=1)


def _percentile_range(rows: torch.Tensor, percentile: float):
    if not 50.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [50, 100], got {percentile!r}")
    # (100 - q) / 100 rather than 1 - q / 100: exact for integer q (1 - 0.99 is 0.01000...0009)
    return _row_quantile(rows, (100.0 - percentile) / 100.0), _row_quantile(rows, percentile / 100.0)


def _lp_search_range(rows: torch.Tensor, bits: int, symmetric: bool, p: float):
    """Trio-ViT's search: the shrunk [min, max] with the lowest mean |x - Q(x)|^p, per row.

    Candidate 0 is min-max itself; strict ``<`` keeps the least-shrunk candidate on ties.
    """
    lo0, hi0 = rows.amin(dim=1), rows.amax(dim=1)
    best_lo, best_hi = lo0.clone(), hi0.clone()
    best_err = torch.full_like(lo0, math.inf)
    for i in range(LP_CANDIDATES):
        shrink = 1.0 - LP_SHRINK_STEP * i
        lo, hi = lo0 * shrink, hi0 * shrink
        err = _row_lp_error(rows, *uniform_params(lo, hi, bits, symmetric), bits, symmetric, p)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_lo, best_hi = torch.where(better, lo, best_lo), torch.where(better, hi, best_hi)
    return best_lo, best_hi


def uniform_params(lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool):
    """Scale and zero point covering [lo, hi] (which is widened to include 0).

    Symmetric: signed codes in [-(2^(b-1)-1), 2^(b-1)-1], zero point 0, scale = max|x| / (2^(b-1)-1).
    Asymmetric: unsigned codes in [0, 2^b-1], scale = (hi - lo) / (2^b - 1), zero point = round(-lo/scale).
    A range of zero width gets scale 1 so that the zeros it holds still quantize exactly.
    """
    _check_bits(bits)
    lo = torch.minimum(lo.to(torch.float64), torch.zeros_like(lo, dtype=torch.float64))
    hi = torch.maximum(hi.to(torch.float64), torch.zeros_like(hi, dtype=torch.float64))
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = torch.maximum(hi, -lo) / qmax
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return scale, torch.zeros_like(scale, dtype=torch.int64)
    scale = (hi - lo) / (2**bits - 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.round(-lo / scale).to(torch.int64).clamp(0, 2**bits - 1)
    return scale, zero_point


def code_limits(bits: int, symmetric: bool) -> tuple[int, int]:
    if symmetric:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def quantize_with(x: torch.Tensor, scale, zero_point, bits: int, symmetric: bool, axis: int | None = None):
    """Codes of ``x`` for given parameters: round half to even, clamp to the code range."""
    scale = torch.as_tensor(scale, dtype=torch.float64)
    zero_point = torch.as_tensor(zero_point, dtype=torch.int64)
    lo, hi = code_limits(bits, symmetric)
    x64 = x.detach().to(torch.float64)
    codes = torch.round(x64 / _bcast(scale, x.dim(), axis)) + _bcast(zero_point, x.dim(), axis)
    return QuantizedTensor(codes.clamp(lo, hi).to(torch.int64), scale, zero_point, bits, axis)


def uniform_quantize(
    x: torch.Tensor,
    bits: int,
    *,
    symmetric: bool,
    axis: int | None = None,
    range_method: str = "minmax",
    percentile: float = DEFAULT_PERCENTILE,
    p: float = LP_NORM_P,
) -> QuantizedTensor:
    """Uniform quantization with the range found by ``range_method`` (see :func:`tensor_range`)."""
    lo, hi = tensor_range(x, axis, range_method, percentile=percentile, p=p, bits=bits, symmetric=symmetric)
    scale, zero_point = uniform_params(lo, hi, bits, symmetric)
    return quantize_with(x, scale, zero_point, bits, symmetric, axis)


def fake_quantize(x: torch.Tensor, scale: float, zero_point: int, bits: int, symmetric: bool = False):
    """Quantize-dequantize in the tensor's own dtype (used on activations in the fake-quant model)."""
    lo, hi = code_limits(bits, symmetric)
    q = torch.clamp(torch.round(x / scale) + zero_point, lo, hi)
    return (q - zero_point) * scale


# -- APoT ------------------------------------------------------------------------------
def apot_quantize(w: torch.Tensor, bits: int, axis: int | None = 0, *, clip: str = "max") -> QuantizedTensor:
    """Nearest-level APoT quantization, one scale per filter (along ``axis``).

    clip "max": scale = max|w| / max level, the largest weight lands on the largest level.
    clip "mse": the largest level sits at a * max|w| with a from :data:`CLIP_GRID`, the a with
    the lowest MSE per filter (weights above it clip to the largest level).
    Returns integer codes (signed level in units of 2^-E) and scale (per filter) such that
    ``codes * scale`` is the dequantized weight.
    """
    levels = torch.tensor(apot_levels(bits), dtype=torch.float64)
    return _level_quantize(w, levels, apot_unit_exponent(bits), bits, axis, clip, "apot")


def pot_levels(bits: int) -> list[float]:
    """Sorted PoT magnitude levels, normalised to a largest level of 1: {0} U {2^-k, k = 0..2^(b-1)-2}.

    Sign + (bits-1)-bit exponent code, one code kept for zero. Same set as the APoT reference's
    non-additive mode (yhhhli/APoT_Quantization ``build_power_value(B=bits-1, additive=False)``:
    2^-(i+1), i < 2^B - 1, normalised by its max) and as its additive 3-bit table.
    """
    _check_bits(bits, 2, 7)  # 7 bits: smallest level 2^-62, the last whose code fits int64
    return [0.0] + [2.0**-k for k in range(_pot_unit_exponent(bits), -1, -1)]


def _pot_unit_exponent(bits: int) -> int:
    return 2 ** (bits - 1) - 2


def pot_quantize(w: torch.Tensor, bits: int, axis: int | None = 0, *, clip: str = "max") -> QuantizedTensor:
    """Nearest-level power-of-two quantization, scale per filter as in :func:`apot_quantize`.

    Nearest in the linear domain (midpoint between neighbouring levels, ties to the lower
    level), which minimises each weight's squared error. Codes are in units of the smallest
    power 2^-(2^(b-1)-2), so ``codes * scale`` is the dequantized weight and every non-zero
    code is a single power of two (one shift).
    """
    levels = torch.tensor(pot_levels(bits), dtype=torch.float64)
    return _level_quantize(w, levels, _pot_unit_exponent(bits), bits, axis, clip, "pot")


def _level_quantize(w, levels, unit_exp: int, bits: int, axis, clip: str, scheme: str) -> QuantizedTensor:
    """Sign-magnitude nearest-level quantization onto ``levels`` (sorted, 0 first) per filter."""
    if clip not in CLIP_METHODS:
        raise ValueError(f"unknown clip method {clip!r}; known: {', '.join(CLIP_METHODS)}")
    if unit_exp > 62:  # codes are integers in units of 2^-unit_exp and must fit int64
        raise ValueError(f"{bits}-bit {scheme} codes need 2^{unit_exp} and do not fit int64")
    level_codes = torch.round(levels * 2**unit_exp).to(torch.int64)
    dims = _reduce_dims(w, axis)
    w64 = w.detach().to(torch.float64)
    absmax = w64.abs().amax(dim=dims) if dims else w64.abs()
    alpha = absmax / levels[-1]  # scale of a normalised level
    alpha = torch.where(alpha > 0, alpha, torch.ones_like(alpha))
    if clip == "mse":
        alpha = _mse_clipped_alpha(w64, alpha, levels, dims, axis)
    index = _nearest_level_index(w64.abs() / _bcast(alpha, w.dim(), axis), levels)
    codes = torch.sign(w64).to(torch.int64) * level_codes[index]
    scale = alpha / 2**unit_exp
    return QuantizedTensor(codes, scale, torch.zeros_like(codes.new_zeros(scale.shape)), bits, axis, scheme)


def _nearest_level_index(normalised: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the nearest level; ties go to the lower level, values past the top clip to it."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return torch.bucketize(normalised, midpoints)


def _mse_clipped_alpha(w64, alpha_max, levels, dims, axis) -> torch.Tensor:
    """Per filter, the a * alpha_max (a in CLIP_GRID) with the lowest MSE; a = 1 wins ties."""
    best_alpha, best_err = alpha_max.clone(), torch.full_like(alpha_max, math.inf)
    magnitude = w64.abs()  # the sign is kept exactly, so the error is the magnitude's error
    for a in CLIP_GRID:  # vectorised over filters, a loop over the 51 candidates
        alpha = _bcast(alpha_max * a, w64.dim(), axis)
        err = levels[_nearest_level_index(magnitude / alpha, levels)].mul_(alpha).sub_(magnitude).square_()
        err = err.mean(dim=dims) if dims else err
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_alpha = torch.where(better, alpha_max * a, best_alpha)
    return best_alpha


# -- log2 (Trio-ViT's linear-attention denominator) ---------------------------------------
LOG2_ROUNDINGS = ("log", "linear", "ceil")
# log-domain rounding threshold on the mantissa m in [1, 2): up iff log2(m) >= 1/2, i.e. m >= sqrt(2).
# The float64 nearest sqrt(2) lies above the irrational midpoint (its square exceeds 2, checked
# with fractions), so no float is a true tie and math.sqrt(2) * 2^k itself rounds up.
_LOG_MIDPOINT = math.sqrt(2.0)


def log2_quantize(x: torch.Tensor, bits: int, *, unit: float = 1.0, rounding: str = "log") -> torch.Tensor:
    """Integer exponents e (int64) with x ~ 2^e * unit, clamped to the signed ``bits``-bit range.

    rounding "log" (default): e = round(log2(x/unit)), computed exactly from the float's
    exponent and mantissa (threshold sqrt(2)). "linear": the nearer power in the linear
    domain (threshold 1.5 * 2^k, ties down), what Trio-ViT's LogQuantizer compares.
    "ceil": e = ceil(log2(x/unit)), what that code computes in effect (quant/quant_layer.py,
    commit c212eda: y = ceil(log2 x), then y += (x - 2^y > 2^(y+1) - x), never true as
    2^y >= x; clamp(y, -12, 11)). Inputs must be positive and finite.
    """
    _check_bits(bits)
    if rounding not in LOG2_ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; known: {', '.join(LOG2_ROUNDINGS)}")
    if not unit > 0:
        raise ValueError(f"unit must be positive, got {unit!r}")
    ratio = x.detach().to(torch.float64) / unit
    if not bool(torch.isfinite(ratio).all()) or bool((ratio <= 0).any()):
        raise ValueError("log2_quantize needs positive finite inputs")
    mantissa, exponent = torch.frexp(ratio)  # ratio = mantissa * 2^exponent, mantissa in [0.5, 1)
    floor_e, m = exponent.to(torch.int64) - 1, mantissa * 2  # m in [1, 2)
    if rounding == "log":
        up = m >= _LOG_MIDPOINT
    elif rounding == "linear":
        up = m > 1.5
    else:
        up = m > 1.0
    lo, hi = code_limits(bits, symmetric=True)
    return (floor_e + up.to(torch.int64)).clamp(lo, hi)


def log2_dequantize(exponents: torch.Tensor, unit: float = 1.0) -> torch.Tensor:
    """2^e * unit (float64)."""
    return torch.pow(2.0, exponents.to(torch.float64)) * unit


def per_channel_mse(x: torch.Tensor, dequantized: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Mean squared error per channel along ``axis`` (float64)."""
    err = (x.detach().to(torch.float64) - dequantized.to(torch.float64)) ** 2
    dims = _reduce_dims(x, axis)
    return err.mean(dim=dims) if dims else err


def lp_error(x: torch.Tensor, dequantized: torch.Tensor, p: float = LP_NORM_P, axis: int | None = None):
    """Mean |x - dequantized|^p, per channel along ``axis`` or over the tensor (float64)."""
    err = (x.detach().to(torch.float64) - dequantized.to(torch.float64)).abs().pow(p)
    dims = _reduce_dims(x, axis)
    return err.mean(dim=dims) if dims else err
