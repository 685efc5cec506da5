"""Quantization policies: which layer gets which bit-width and scheme.

A policy is data (a frozen dataclass); :mod:`archsim.quant.quantize` applies it. Layer roles
(depthwise, pointwise, stem, classifier ...) are decided by the caller from the module's
shape and position, see :func:`weight_role`. Every default that is not published is a
[choice], listed in docs/quantization.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# Roles a weighted layer can play (decided from the module, not its name).
ROLE_DEPTHWISE = "depthwise"  # groups == in == out channels
ROLE_POINTWISE = "pointwise"  # 1x1 convs (dense or grouped) and hidden Linear layers
ROLE_DENSE = "dense"  # k x k conv with groups == 1 (the stem)
ROLE_CLASSIFIER = "classifier"  # the last Linear of the network
ROLES = (ROLE_DEPTHWISE, ROLE_POINTWISE, ROLE_DENSE, ROLE_CLASSIFIER)


@dataclass(frozen=True)
class WeightRule:
    """How the weights of one role are quantized."""

    bits: int = 8
    symmetric: bool = True  # [choice] symmetric weights: zero point 0, codes*scale = weight
    per_channel: bool = True
    mixed_apot: bool = False  # per filter: uniform or APoT, whichever has the lower MSE
    apot_bits: int = 8
    # Bits at which the per-filter MSE of uniform vs APoT is compared (None: apot_bits).
    select_bits: int | None = None


@dataclass(frozen=True)
class QuantPolicy:
    name: str
    quantized: bool = True  # False: fp32, nothing quantized
    act_bits: int = 8  # per-tensor asymmetric activations at layer outputs
    act_symmetric: bool = False
    depthwise: WeightRule = WeightRule()
    pointwise: WeightRule = WeightRule()
    dense: WeightRule = WeightRule()
    classifier: WeightRule = WeightRule()
    wide_attention: bool = True  # k^T v and q (k^T v) stay int32 until the division
    classifier_output_wide: bool = True  # logits are not requantized
    apot_mse_tolerance: float = 1.0  # APoT wins when mse_apot <= tolerance * mse_uniform
    description: str = ""

    def rule(self, role: str) -> WeightRule:
        if role not in ROLES:
            raise ValueError(f"unknown layer role {role!r}; known: {', '.join(ROLES)}")
        return getattr(self, role)

    @property
    def wide_bits(self) -> int:
        """Bits of a tensor kept wide (accumulator width) or unquantized (fp32)."""
        return 32

    def with_changes(self, **changes) -> QuantPolicy:
        return replace(self, **changes)


_M2Q = QuantPolicy(
    name="m2q",
    depthwise=WeightRule(bits=4),
    pointwise=WeightRule(bits=8, mixed_apot=True, apot_bits=4, select_bits=4),
    dense=WeightRule(bits=8),
    classifier=WeightRule(bits=8),
    description="M2Q: 4-bit depthwise weights; pointwise filters uniform 8-bit, or APoT 4-bit where APoT "
    "fits the filter better than a uniform grid at 4 bits (lower MSE); "
    "8-bit per-tensor activations; attention matmul outputs and logits kept wide",
)

_UNIFORM_W8A8 = QuantPolicy(
    name="uniform_w8a8",
    description="Trio-ViT-like baseline: uniform 8-bit per-channel weights, 8-bit per-tensor activations",
)

_FP32 = QuantPolicy(name="fp32", quantized=False, act_bits=32, description="no quantization (32-bit floats)")

# The literal reading: uniform-8 vs APoT-8 by MSE. A two-term APoT grid at 8 bits never has
# the lower MSE, so no filter goes to the SAT; kept to make that finding reproducible.
_M2Q_APOT8 = _M2Q.with_changes(
    name="m2q_apot8",
    pointwise=WeightRule(bits=8, mixed_apot=True, apot_bits=8, select_bits=8),
    description="M2Q variant: per-filter uniform-8 or APoT-8, whichever has the lower MSE at 8 bits",
)

POLICIES: dict[str, QuantPolicy] = {p.name: p for p in (_M2Q, _M2Q_APOT8, _UNIFORM_W8A8, _FP32)}


def get_policy(name: str | QuantPolicy) -> QuantPolicy:
    """The policy registered under ``name`` (a policy object is returned unchanged)."""
    if isinstance(name, QuantPolicy):
        return name
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown quantization policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None
