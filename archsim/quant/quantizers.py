"""Tensor quantizers: uniform (symmetric/asymmetric, per tensor/per channel) and APoT.

Every quantizer returns a :class:`QuantizedTensor` whose integer ``codes`` satisfy
``(codes - zero_point) * scale == dequantized`` (per channel along ``axis`` when given).
Symmetric quantizers have zero_point 0, so ``codes * scale`` is the dequantized tensor,
which is what the integer datapath multiplies with.

APoT (additive powers of two, Li et al., ICLR 2020; reference code yhhhli/APoT_Quantization):
each magnitude level is a sum of at most two powers of two. ``codes`` of an APoT tensor are
the signed level in units of the smallest power of two used by the level set, so a
shift-add tree computes ``x * code`` as ``(x << e1) + (x << e2)`` (see :func:`apot_code_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import torch

RANGE_METHODS = ("minmax",)  # room for "percentile" / "mse" search later


@dataclass(frozen=True)
class QuantizedTensor:
    codes: torch.Tensor  # int64, same shape as the input
    scale: torch.Tensor  # float64; shape () per tensor, (C,) per channel along ``axis``
    zero_point: torch.Tensor  # int64; same shape as scale
    bits: int
    axis: int | None  # channel axis of per-channel parameters, None = per tensor
    scheme: str = "uniform"  # "uniform" or "apot"

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


def tensor_range(x: torch.Tensor, axis: int | None = None, method: str = "minmax"):
    """(min, max) of ``x``, per channel along ``axis`` or over the whole tensor."""
    if method not in RANGE_METHODS:
        raise ValueError(f"unknown range method {method!r}; known: {', '.join(RANGE_METHODS)}")
    dims = _reduce_dims(x, axis)
    x64 = x.detach().to(torch.float64)
    if not dims:
        return x64.clone(), x64.clone()
    return x64.amin(dim=dims), x64.amax(dim=dims)


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
    x: torch.Tensor, bits: int, *, symmetric: bool, axis: int | None = None, range_method: str = "minmax"
) -> QuantizedTensor:
    """Uniform quantization with the range found by ``range_method`` (min-max for now)."""
    lo, hi = tensor_range(x, axis, range_method)
    scale, zero_point = uniform_params(lo, hi, bits, symmetric)
    return quantize_with(x, scale, zero_point, bits, symmetric, axis)


def fake_quantize(x: torch.Tensor, scale: float, zero_point: int, bits: int, symmetric: bool = False):
    """Quantize-dequantize in the tensor's own dtype (used on activations in the fake-quant model)."""
    lo, hi = code_limits(bits, symmetric)
    q = torch.clamp(torch.round(x / scale) + zero_point, lo, hi)
    return (q - zero_point) * scale


# -- APoT ------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _apot_terms(bits: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Exponents (levels 2^-e) of the two additive terms for a ``bits``-bit APoT code.

    m = bits - 1 magnitude bits split into n0 = ceil(m/2) and n1 = floor(m/2) bits, so the
    terms have 2^n0 - 1 and 2^n1 - 1 non-zero powers of two (plus zero each). Exponents
    1..E (E = total non-zero powers) are dealt from the smallest power upwards, alternating
    between the larger and the smaller term; once the smaller term is full the larger one
    takes the rest. This reproduces the reference construction for 4 and 5 bits
    (yhhhli/APoT_Quantization ``build_power_value`` with B = 3 and B = 4).
    """
    _check_bits(bits, 3, 12)
    m = bits - 1
    need0, need1 = 2 ** math.ceil(m / 2) - 1, 2 ** (m // 2) - 1
    total = need0 + need1
    big: list[int] = []
    small: list[int] = []
    turn_big = True
    for e in range(total, 0, -1):
        if (turn_big and len(big) < need0) or len(small) >= need1:
            big.append(e)
        else:
            small.append(e)
        turn_big = not turn_big
    return tuple(sorted(big)), tuple(sorted(small))


@lru_cache(maxsize=None)
def apot_levels_exact(bits: int) -> tuple[Fraction, ...]:
    """Sorted APoT magnitude levels as exact fractions (before normalising by the max)."""
    big, small = _apot_terms(bits)
    terms0 = [Fraction(0)] + [Fraction(1, 2**e) for e in big]
    terms1 = [Fraction(0)] + [Fraction(1, 2**e) for e in small]
    levels = sorted({a + b for a in terms0 for b in terms1})
    if len(levels) != 2 ** (bits - 1):  # distinct exponents make every sum distinct
        raise AssertionError(f"APoT {bits}-bit: {len(levels)} levels, expected {2 ** (bits - 1)}")
    return tuple(levels)


def apot_levels(bits: int) -> list[float]:
    """Sorted APoT magnitude levels (0 first), un-normalised: e.g. 4 bit -> 0 ... 5/8."""
    return [float(v) for v in apot_levels_exact(bits)]


def apot_unit_exponent(bits: int) -> int:
    """E such that every level is an integer multiple of 2^-E (the smallest power of two)."""
    big, small = _apot_terms(bits)
    return max(big + small)


def apot_code_terms(code: int) -> tuple[int, ...]:
    """The shift amounts of a non-negative APoT code magnitude: code = sum(1 << e)."""
    code = abs(int(code))
    shifts = tuple(e for e in range(code.bit_length()) if code >> e & 1)
    if len(shifts) > 2:
        raise ValueError(f"{code} is not a sum of at most two powers of two")
    return shifts


def apot_quantize(w: torch.Tensor, bits: int, axis: int | None = 0) -> QuantizedTensor:
    """Nearest-level APoT quantization with scale = max|w| / max level per filter (along ``axis``).

    Returns integer codes (signed level in units of 2^-E) and scale (per filter) such that
    ``codes * scale`` is the dequantized weight.
    """
    levels = torch.tensor(apot_levels(bits), dtype=torch.float64)
    unit_exp = apot_unit_exponent(bits)
    level_codes = torch.round(levels * 2**unit_exp).to(torch.int64)
    dims = _reduce_dims(w, axis)
    w64 = w.detach().to(torch.float64)
    absmax = w64.abs().amax(dim=dims) if dims else w64.abs()
    alpha = absmax / levels[-1]  # scale of a normalised level
    alpha = torch.where(alpha > 0, alpha, torch.ones_like(alpha))
    normalised = w64.abs() / _bcast(alpha, w.dim(), axis)
    midpoints = (levels[1:] + levels[:-1]) / 2
    index = torch.bucketize(normalised, midpoints)  # nearest level (ties go to the lower level)
    codes = torch.sign(w64).to(torch.int64) * level_codes[index]
    scale = alpha / 2**unit_exp
    return QuantizedTensor(codes, scale, torch.zeros_like(codes.new_zeros(scale.shape)), bits, axis, "apot")


def per_channel_mse(x: torch.Tensor, dequantized: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Mean squared error per channel along ``axis`` (float64)."""
    err = (x.detach().to(torch.float64) - dequantized.to(torch.float64)) ** 2
    dims = _reduce_dims(x, axis)
    return err.mean(dim=dims) if dims else err
