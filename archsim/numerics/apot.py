"""The APoT level set, in pure Python (no torch): shared by the torch quantizers and the
numpy integer reference (:mod:`archsim.numerics.integer`).

APoT (additive powers of two, Li et al., ICLR 2020; reference code yhhhli/APoT_Quantization):
each magnitude level is a sum of at most two powers of two. Codes are levels in units of the
smallest power 2^-E, so a shift-add tree computes ``x * code`` as ``(x << e1) + (x << e2)``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache


def _check_apot_bits(bits: int) -> None:
    if not isinstance(bits, int) or not 3 <= bits <= 12:
        raise ValueError(f"APoT bits must be an integer in [3, 12], got {bits!r}")


@cache
def apot_terms(bits: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Exponents (levels 2^-e) of the two additive terms for a ``bits``-bit APoT code.

    m = bits - 1 magnitude bits split into n0 = ceil(m/2) and n1 = floor(m/2) bits, so the
    terms have 2^n0 - 1 and 2^n1 - 1 non-zero powers of two (plus zero each). Exponents
    1..E (E = total non-zero powers) are dealt from the smallest power upwards, alternating
    between the larger and the smaller term; once the smaller term is full the larger one
    takes the rest. This reproduces the reference construction for 4 and 5 bits
    (yhhhli/APoT_Quantization ``build_power_value`` with B = 3 and B = 4).
    [choice] It departs from the reference elsewhere: at 3 bits (B = 2) the reference is
    plain PoT {0, 1/8, 1/4, 1/2} (here {0, 1/4, 1/2, 3/4}; PoT is :func:`pot_quantize`), and at
    6-7 bits (B = 5, 6) it adds a third term (6 bit: {0,1/2,1/8,1/64} + {0,1/4,1/16,1/128} +
    {0,1/32}); archsim keeps at most two terms so a level costs at most two shifts.
    """
    _check_apot_bits(bits)
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


@cache
def apot_levels_exact(bits: int) -> tuple[Fraction, ...]:
    """Sorted APoT magnitude levels as exact fractions (before normalising by the max)."""
    big, small = apot_terms(bits)
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
    big, small = apot_terms(bits)
    return max(big + small)


def apot_code_terms(code: int) -> tuple[int, ...]:
    """The shift amounts of a non-negative APoT code magnitude: code = sum(1 << e)."""
    code = abs(int(code))
    shifts = tuple(e for e in range(code.bit_length()) if code >> e & 1)
    if len(shifts) > 2:
        raise ValueError(f"{code} is not a sum of at most two powers of two")
    return shifts


def apot_level_codes(bits: int) -> list[int]:
    """Sorted non-negative APoT code magnitudes (levels * 2^E): 4 bits -> 0, 1, 2, 3, 4, 6, 8, 10."""
    unit = apot_unit_exponent(bits)
    return [int(level * 2**unit) for level in apot_levels_exact(bits)]
