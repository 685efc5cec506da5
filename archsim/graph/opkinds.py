"""One table of rules per op kind, read by every stage (mapping, coverage, planning, energy, execution).

For each :class:`OpKind` the table says which family of loops it is, whether its filters may be
split across engines by scheme, how many vector-unit operations one element costs, which
integer rule of docs/quantization.md computes it, and what one counted op is. From a layer's
shapes alone it derives the closed-form work (:func:`work_dims`) and the *needs* an engine
mode must accept to run it (:func:`filter_groups`, :func:`layer_needs`), so the mapper
(archsim.sim.mapping) and the coverage check (archsim.arch.coverage) cannot drift apart.
The functional executor registers one kernel per kind (archsim.functional.kernels) and a
test checks the two tables cover the same kinds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from archsim.graph.ir import FLOAT_BITS, Layer, OpKind, Scheme


class Family(str, Enum):
    CONV = "conv"  # G groups x F filters x P positions x K = (Cin/G) kh kw
    DEPTHWISE = "depthwise"  # C channels x P positions x kh kw taps
    LINEAR = "linear"  # F filters x P rows x K in features
    MATMUL = "matmul"  # F = N columns x P = batch M rows x K inner
    VECTOR = "vector"  # elementwise / reductions on the vector unit


@dataclass(frozen=True)
class OpRule:
    kind: OpKind
    family: Family
    splittable: bool  # filters of different schemes may run concurrently on different engines
    vector_ops_per_element: (
        int  # vector kinds: ops per counted element [choice, docs/modelling.md]; 0 for MACs
    )
    counts_input_elements: bool  # vector kinds: the work is per input element (pool) instead of per output
    op_unit: str  # what one counted op is (energy is priced per op of the mode that runs it)
    integer_rule: str  # the rule of docs/quantization.md ("Integer semantics") that computes it

    @property
    def weighted(self) -> bool:
        return self.kind.has_weights


_CONV_RULE = (
    "sum of code x weight + bias_int, requantize (multiplier, shift), fused ReLU on codes or Hardswish LUT"
)
RULES: dict[OpKind, OpRule] = {
    r.kind: r
    for r in (
        OpRule(OpKind.CONV_DENSE, Family.CONV, False, 0, False, "MAC", _CONV_RULE),
        OpRule(
            OpKind.CONV_POINTWISE,
            Family.CONV,
            True,
            0,
            False,
            "MAC (shift-add on APoT filters)",
            _CONV_RULE + "; APoT filters as shift-add of the codes",
        ),
        OpRule(OpKind.CONV_DEPTHWISE, Family.DEPTHWISE, False, 0, False, "MAC", _CONV_RULE),
        OpRule(
            OpKind.CONV_GROUPED,
            Family.CONV,
            True,
            0,
            False,
            "MAC (shift-add on APoT filters)",
            _CONV_RULE + "; APoT filters as shift-add of the codes",
        ),
        OpRule(
            OpKind.LINEAR,
            Family.LINEAR,
            True,
            0,
            False,
            "MAC (shift-add on APoT filters)",
            "as a 1x1 conv; the classifier's accumulators stay wide (the logits)",
        ),
        OpRule(
            OpKind.MATMUL,
            Family.MATMUL,
            False,
            0,
            False,
            "MAC",
            "integer matmul of zero-point-free operands, int64 accumulators (kept wide or requantized)",
        ),
        # vector ops per element [choice]: add/div/activation one op per output element; pool one add
        # per input element; layer norm ~5 (mean, subtract, square-accumulate, scale, shift)
        OpRule(
            OpKind.ADD,
            Family.VECTOR,
            False,
            1,
            False,
            "vector op",
            "two multipliers on one shift, one rounding (add_requant_fixed)",
        ),
        OpRule(
            OpKind.DIV,
            Family.VECTOR,
            False,
            1,
            False,
            "vector op",
            "num * m0 / ((den + eps) 2^shift), one rounding (divide_requant), or the log2 shift",
        ),
        OpRule(
            OpKind.POOL,
            Family.VECTOR,
            False,
            1,
            True,
            "vector op",
            "sum of zero-point-free codes, requantize (global_avg_pool)",
        ),
        OpRule(
            OpKind.NORM,
            Family.VECTOR,
            False,
            5,
            False,
            "vector op",
            "integer LayerNorm: exact statistics, integer square root, one rounding (layer_norm_int)",
        ),
        OpRule(OpKind.ACTIVATION, Family.VECTOR, False, 1, False, "vector op", "a 256-entry table of codes"),
    )
}


def rule(kind: OpKind) -> OpRule:
    return RULES[kind]


@dataclass(frozen=True)
class WorkDims:
    """The loop bounds the closed forms need.

    conv-like: groups G, output positions P, filters per group F, reduction length K.
    depthwise: channels = F (G = 1), positions P, K = kh*kw.
    vector: P = elements the vector unit touches, ops_per_element; F = K = G = 1.
    """

    kind: OpKind
    groups: int
    positions: int
    filters: int  # per group
    reduction: int
    ops_per_element: int = 1
    taps: int = 1  # kernel taps kh*kw of a conv's reduction (reduction = in channels per group x taps)

    @property
    def total_filters(self) -> int:
        return self.groups * self.filters

    @property
    def ops(self) -> int:
        """MACs (MAC kinds) or vector ops (vector kinds)."""
        if RULES[self.kind].family == Family.VECTOR:
            return self.positions * self.ops_per_element
        return self.groups * self.positions * self.filters * self.reduction


def work_dims(layer: Layer) -> WorkDims:
    """Derive the closed-form loop bounds from a layer's shapes; clear error on bad shapes."""
    k = layer.kind
    r = RULES[k]
    try:
        if r.family == Family.VECTOR:
            src = layer.in_shapes[0] if r.counts_input_elements else layer.out_shape
            return WorkDims(k, 1, math.prod(src), 1, 1, r.vector_ops_per_element)
        if r.family in (Family.LINEAR, Family.MATMUL):
            positions = math.prod(layer.out_shape[:-1])
            return WorkDims(k, 1, positions, layer.out_shape[-1], layer.operands[0].shape[-1])
        n, c_out, h_out, w_out = layer.out_shape
        c_in = layer.operands[0].shape[1]
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(
            f"{layer.name}: shapes {layer.in_shapes} -> {layer.out_shape} do not fit kind {k.value}"
        ) from exc
    kh, kw = layer.kernel
    positions = n * h_out * w_out
    if r.family == Family.DEPTHWISE:
        if c_in != c_out:
            raise ValueError(
                f"{layer.name}: depthwise conv needs in channels == out channels, got {c_in} -> {c_out}"
            )
        return WorkDims(k, 1, positions, c_out, kh * kw)
    g = layer.groups
    if g < 1 or c_in % g or c_out % g:
        raise ValueError(f"{layer.name}: groups={g} must divide in channels {c_in} and out channels {c_out}")
    return WorkDims(k, g, positions, c_out // g, (c_in // g) * kh * kw, taps=kh * kw)


# -- needs: what an engine mode must accept ---------------------------------------------
class Need(NamedTuple):
    """One kind of work a layer contains; an engine mode runs it when
    kind in op_kinds, scheme in schemes, act_bits <= mode act_bits and
    (weight_bits is None or weight_bits <= mode weight_bits) (archsim.arch.coverage.mode_supports)."""

    kind: OpKind
    weight_bits: int | None  # None: no weights (matmul operands are both activations; vector kinds)
    act_bits: int
    scheme: Scheme


@dataclass(frozen=True)
class FilterGroup:
    """The filters of a layer that share one need (one scheme at one width)."""

    need: Need
    n_filters: int  # 0 for vector kinds
    stored_bits: int  # bits per weight as stored (weight bytes); 0 without weights


def layer_scheme(layer: Layer) -> Scheme:
    """Scheme of a layer without per-filter quant info: integer widths -> UNIFORM, else FLOAT.

    A vector op on int32 tensors (kept wide before the division) counts as FLOAT: the IR cannot
    tell int32 from fp32, so vector modes list both.
    """
    bits = [layer.act_bits] + ([layer.weight_bits] if layer.weight_bits is not None else [])
    return Scheme.UNIFORM if max(bits) < FLOAT_BITS else Scheme.FLOAT


def filter_groups(layer: Layer, dims: WorkDims | None = None) -> list[FilterGroup]:
    """The layer's filters grouped by need, uniform first.

    - vector kinds: one group without filters; matmul: one group without weights;
    - a weighted layer with ``quant.apot_mask``: its uniform filters at ``weight_bits`` and its
      APoT filters at ``quant.apot_bits`` (else the layer's weight bits);
    - any other weighted layer: all filters at its weight bits (fp32 when it has none).
    """
    dims = dims or work_dims(layer)
    r = RULES[layer.kind]
    act = layer.act_bits
    if r.family == Family.VECTOR:
        return [FilterGroup(Need(layer.kind, None, act, layer_scheme(layer)), 0, 0)]
    total = dims.total_filters
    if r.family == Family.MATMUL:
        return [FilterGroup(Need(layer.kind, None, act, layer_scheme(layer)), total, 0)]
    q = layer.quant
    if q is not None and q.apot_mask is not None:
        if q.apot_mask.size != total:
            raise ValueError(f"{layer.name}: apot_mask has {q.apot_mask.size} entries for {total} filters")
        n_apot = q.apot_filters
        uni_bits = layer.weight_bits if layer.weight_bits is not None else q.weight_bits
        apot_bits = q.apot_bits if q.apot_bits is not None else uni_bits
        groups = []
        if total - n_apot:
            groups.append(
                FilterGroup(Need(layer.kind, uni_bits, act, Scheme.UNIFORM), total - n_apot, uni_bits)
            )
        if n_apot:
            groups.append(FilterGroup(Need(layer.kind, apot_bits, act, Scheme.APOT), n_apot, apot_bits))
        return groups
    bits = layer.weight_bits if layer.weight_bits is not None else FLOAT_BITS
    return [FilterGroup(Need(layer.kind, bits, act, layer_scheme(layer)), total, bits)]


def layer_needs(layer: Layer) -> list[Need]:
    """The distinct needs of one layer (what the coverage check asks of an architecture)."""
    return list(dict.fromkeys(g.need for g in filter_groups(layer)))
