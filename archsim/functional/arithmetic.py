"""The arithmetic of each engine kind: how an engine turns codes and weights into accumulators and codes.

One class per engine kind, registered in :data:`ARITHMETIC` (a new engine kind plugs in here
without edits elsewhere). The executor (archsim.functional.executor) hands every tile to the
arithmetic of the engine the mapping chose, so a wrong split or a wrong engine gives wrong
values:

- :class:`Arithmetic` (``mac_array``, ``vector``): an integer multiplier datapath. A dot product
  of 8-bit codes with integer weight codes is an exact integer sum (computed in float32 BLAS
  when a bound on every partial sum is below 2^24, float64 below 2^53, else int64 loops,
  checked per call); requantization by multiplier and shift; the vector rules.
- :class:`ShiftAddArithmetic` (``shift_add_tree``, the SAT): no multipliers. An APoT weight
  code is sign x (2^e1 + 2^e2); the filter's dot product is computed as shifts and adds of the
  activation codes, ``sum_e (sum_k s_ke x_k) << e`` with s_ke in {-1, 0, 1} selecting the
  terms with exponent e (the adder tree sums the selected codes, the shifter aligns each
  exponent plane). A code with more than two set bits is not an APoT code and is refused.

Every requantization shift passes :meth:`Arithmetic.requant_shift` (the output stage's
shifter); tests corrupt it, or :meth:`ShiftAddArithmetic.shift`, to prove a wrong engine gives
wrong numbers. Torch-free: numpy only.
"""

from __future__ import annotations

import numpy as np

from archsim.arch.spec import EngineKind
from archsim.numerics import integer as qi

FLOAT32_EXACT = 2**24  # every integer of magnitude below this is exact in float32
FLOAT64_EXACT = 2**53
APOT_MAX_TERMS = 2  # an APoT level is a sum of at most two powers of two (docs/quantization.md)


class DatapathError(ArithmeticError):
    """An engine asked to compute what its datapath cannot (e.g. a uniform 8-bit weight on the SAT)."""


def _exact_product(a, b: np.ndarray, bound: int, batched: bool = False) -> np.ndarray:
    """a @ b of integers (float arrays holding exact integers, or ints), exactly, as int64.

    ``bound`` bounds every partial sum: below 2^24 float32 BLAS is exact, below 2^53 float64,
    else int64 loops (never beyond 2^63). ``a`` may be a :class:`_Weights` (its cached copies).
    """
    if bound >= 2**63:
        raise OverflowError(f"partial sums up to {bound} do not fit int64")
    for limit, dtype in ((FLOAT32_EXACT, np.float32), (FLOAT64_EXACT, np.float64)):
        if bound < limit:
            left = a.as_type(dtype) if isinstance(a, _Weights) else a.astype(dtype, copy=False)
            return np.matmul(left, b.astype(dtype, copy=False)).astype(np.int64)
    left = a.as_type(np.int64) if isinstance(a, _Weights) else a.astype(np.int64, copy=False)
    return np.matmul(left, b.astype(np.int64, copy=False))


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (F, K) @ b (K, P) of integers, exactly, as int64 (bound: max|b| * max_f sum_k |a[f, k]|)."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
    return _exact_product(a, b, int(np.abs(b).max()) * int(np.abs(a).sum(axis=1).max()))


class _Weights:
    """Integer weights loaded into an engine (one filter chunk): kept with float copies for BLAS."""

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, dtype=np.int64)
        self.l1 = int(np.abs(self.values).sum(axis=-1).max(initial=0))  # max over filters of sum_k |w|
        self._copies: dict = {}

    def as_type(self, dtype) -> np.ndarray:
        if dtype not in self._copies:
            self._copies[dtype] = self.values.astype(dtype)
        return self._copies[dtype]


class Arithmetic:
    """A multiplier datapath (MAC array) with its output stage; also the vector unit's rules."""

    kind = "multiply"

    # -- the output stage ---------------------------------------------------------------
    def requant_shift(self, shift):
        """The shift the output stage applies (identity; a test corrupts it)."""
        return shift

    def requantize(self, acc, m0, shift, zero_point, bits: int) -> np.ndarray:
        return qi.requantize(acc, m0, self.requant_shift(np.asarray(shift)), zero_point, bits)

    # -- MACs ---------------------------------------------------------------------------
    def load_weights(self, weights: np.ndarray):
        """(F, K) integer weight codes of one filter chunk,
        as the engine holds them while positions stream."""
        return _Weights(weights)

    def dot(self, loaded, columns: np.ndarray, column_max: int) -> np.ndarray:
        """Loaded (F, K) weights x (K, P) activation codes (|code| <= column_max)
        -> (F, P) int64 accumulators."""
        return _exact_product(loaded, columns, column_max * loaded.l1)

    def channel_dot(self, loaded, windows: np.ndarray, column_max: int) -> np.ndarray:
        """Depthwise: loaded (C, T) weights x (C, T, P) windows -> (C, P), one dot product per channel."""
        weights = loaded.values[:, None, :]  # (C, 1, T) @ (C, T, P): a batched product per channel
        out = _exact_product(weights, windows, column_max * loaded.l1)
        return out[:, 0, :]

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Activation x activation: (M, K) @ (K, N) of zero-point-free integers -> (M, N) int64."""
        return exact_matmul(a, b)

    # -- vector rules (docs/quantization.md; archsim.numerics.integer) -------------------
    def add(self, a, b, m_a, m_b, shift, offset, zp_out: int, bits: int) -> np.ndarray:
        return qi.add_requant_fixed(
            a, 0, b, 0, m_a, m_b, self.requant_shift(np.asarray(shift)), offset, zp_out, bits
        )

    def divide(self, num, den, m0, shift, eps_int, zp_out: int, bits: int, offset, log2: bool) -> np.ndarray:
        rule = qi.divide_log2_requant if log2 else qi.divide_requant
        return rule(
            num, den, m0, self.requant_shift(np.asarray(shift)), eps_int, zp_out, bits, offset_int=offset
        )


class _Planes:
    """APoT weights as exponent planes: ``selectors`` (E, F, K) in {-1, 0, 1}, one plane per exponent."""

    def __init__(self, exponents: list[int], selectors: np.ndarray, reduction: int):
        self.exponents = exponents
        self.selectors = selectors
        self.stacked = selectors.reshape(-1, selectors.shape[-1]).astype(
            np.float32
        )  # one GEMM for all planes
        self.bound_per_code = reduction  # |sum_k s_k x_k| <= K max|x|


class ShiftAddArithmetic(Arithmetic):
    """The SAT: APoT filters as shifts and adds of the activation codes, no multiplier."""

    kind = "shift_add"

    def shift(self, values: np.ndarray, exponent: int) -> np.ndarray:
        """The barrel shifter: values << exponent (a test corrupts it)."""
        return np.left_shift(values, exponent)

    @staticmethod
    def planes(weights: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """[(e, S_e)]: S_e[f, k] in {-1, 0, 1} is sign(w) where |w| has bit e set;
        at most two bits per code."""
        w = np.asarray(weights, dtype=np.int64)
        magnitude = np.abs(w)
        bits = np.zeros(w.shape, dtype=np.int64)
        out = []
        for e in range(int(magnitude.max(initial=0)).bit_length()):
            bit = (magnitude >> e) & 1
            if bit.any():
                out.append((e, (np.sign(w) * bit).astype(np.int8)))
                bits += bit
        if bits.size and bits.max() > APOT_MAX_TERMS:
            raise DatapathError(
                "shift-add: a weight code has more than two set bits (not an APoT code); "
                "the SAT cannot compute it"
            )
        return out

    def load_weights(self, weights: np.ndarray) -> _Planes:
        planes = self.planes(weights)
        w = np.asarray(weights)
        selectors = np.stack([s for _, s in planes]) if planes else np.zeros((0,) + w.shape, dtype=np.int8)
        return _Planes([e for e, _ in planes], selectors, w.shape[-1])

    def _accumulate(self, loaded: _Planes, sums: np.ndarray) -> np.ndarray:
        """sum over planes of (the adder tree's signed sum) << its exponent."""
        acc = np.zeros(sums.shape[1:], dtype=np.int64)
        for e, plane in zip(loaded.exponents, sums):
            acc += self.shift(plane, e)
        return acc

    def dot(self, loaded: _Planes, columns: np.ndarray, column_max: int) -> np.ndarray:
        n_planes, filters = loaded.selectors.shape[:2]
        if n_planes == 0:
            return np.zeros((filters, columns.shape[1]), dtype=np.int64)
        sums = _exact_product(loaded.stacked, columns, column_max * loaded.bound_per_code)
        return self._accumulate(loaded, sums.reshape(n_planes, filters, -1))

    def channel_dot(self, loaded: _Planes, windows: np.ndarray, column_max: int) -> np.ndarray:
        n_planes, channels = loaded.selectors.shape[:2]
        if n_planes == 0:
            return np.zeros((channels, windows.shape[2]), dtype=np.int64)
        sums = np.stack(
            [
                _exact_product(s[:, None, :], windows, column_max * loaded.bound_per_code)[:, 0, :]
                for s in loaded.selectors
            ]
        )
        return self._accumulate(loaded, sums)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise DatapathError("shift-add: an activation x activation matmul needs multipliers")


ARITHMETIC: dict[EngineKind, type[Arithmetic]] = {
    EngineKind.MAC_ARRAY: Arithmetic,
    EngineKind.VECTOR: Arithmetic,
    EngineKind.SHIFT_ADD_TREE: ShiftAddArithmetic,
}


def arithmetic_for(kind: EngineKind) -> Arithmetic:
    try:
        return ARITHMETIC[kind]()
    except KeyError:
        raise ValueError(
            f"no functional arithmetic for engine kind {kind.value!r}; "
            f"known: {', '.join(k.value for k in ARITHMETIC)}"
        ) from None
