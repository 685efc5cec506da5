"""Quantization policies: which layer gets which bit-width and scheme.

A policy is data: a frozen dataclass (:class:`QuantPolicy`, one :class:`WeightRule` per
layer role) read from a YAML file by :mod:`archsim.quant.policy_loader`. The bundled
policies live in ``archsim/quant/policies/*.yaml``; a user policy is any YAML file with the
same fields. :mod:`archsim.quant.quantize` applies a policy. Layer roles (depthwise,
pointwise, stem, classifier) are decided from the module's shape and position, see
:func:`archsim.frontend.fx_groups.conv_role`. Every default that is not published is a
[choice], marked in the YAML files and in docs/quantization.md.

This module imports no torch, so workload validation can list the policies cheaply; the
bundled files are read on first use of :data:`POLICIES` (not at import).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

# Roles a weighted layer can play (decided from the module, not its name).
ROLE_DEPTHWISE = "depthwise"  # groups == in == out channels
ROLE_POINTWISE = "pointwise"  # 1x1 convs (dense or grouped) and hidden Linear layers
ROLE_DENSE = "dense"  # k x k conv with groups == 1 (the stem)
ROLE_CLASSIFIER = "classifier"  # the last Linear of the network
ROLES = (ROLE_DEPTHWISE, ROLE_POINTWISE, ROLE_DENSE, ROLE_CLASSIFIER)

# Allowed values of the enumerated fields (the loader reports these in its errors).
WEIGHT_RANGE_METHODS = ("minmax", "lp")  # lp: Trio-ViT's 80-candidate L2.4 search
ACT_RANGE_METHODS = ("minmax", "percentile", "lp")
ATTENTION_DENOMINATORS = ("exact", "log2")  # log2: the division becomes a shift (Trio-ViT)
WEIGHT_ROUNDINGS = ("nearest", "adaround")  # adaround: learned up/down rounding (archsim/quant/adaround.py)
WEIGHT_BITS = (2, 8)  # inclusive range of uniform weight bits
APOT_BITS = (3, 8)  # inclusive range of APoT bits (sign + at least two magnitude bits)
ACT_BITS = (2, 16)  # inclusive range of activation bits when quantized
FLOAT_BITS = 32  # act_bits of an unquantized (fp32) policy


@dataclass(frozen=True)
class WeightRule:
    """How the weights of one role are quantized."""

    bits: int = 8
    symmetric: bool = True  # [choice] symmetric weights: zero point 0, codes*scale = weight
    per_channel: bool = True
    mixed_apot: bool = False  # per filter: uniform or APoT (by MSE, or by a target fraction)
    apot_only: bool = False  # every filter APoT at apot_bits (policy all_apot)
    apot_bits: int = 8
    # Bits at which the per-filter MSE of uniform vs APoT is compared (None: apot_bits).
    select_bits: int | None = None
    range: str = "minmax"  # uniform range method, one of WEIGHT_RANGE_METHODS

    @property
    def has_apot(self) -> bool:
        return self.mixed_apot or self.apot_only


@dataclass(frozen=True)
class QuantPolicy:
    name: str
    quantized: bool = True  # False: fp32, nothing quantized
    act_bits: int = 8  # per-tensor asymmetric activations at layer outputs
    act_symmetric: bool = False
    act_range: str = "minmax"  # activation range method, one of ACT_RANGE_METHODS
    depthwise: WeightRule = WeightRule()
    pointwise: WeightRule = WeightRule()
    dense: WeightRule = WeightRule()
    classifier: WeightRule = WeightRule()
    wide_attention: bool = True  # k^T v and q (k^T v) stay int32 until the division
    classifier_output_wide: bool = True  # logits are not requantized
    apot_mse_tolerance: float = 1.0  # APoT wins when mse_apot <= tolerance * mse_uniform
    # Mixed layers: None = choose each filter by MSE; a number in [0, 1] = exactly
    # round(fraction * filters) APoT filters per layer, those with the smallest mse_apot/mse_uniform.
    apot_target_fraction: float | None = None
    # Trio-ViT refinements (archsim/quant/transforms.py), exact in float:
    channel_migration: bool = False  # per-channel scale moved from depthwise inputs into their weights
    filter_shifting: bool = False  # per-channel offset removed from 1x1 conv inputs, bias compensated
    attention_denominator: str = "exact"  # one of ATTENTION_DENOMINATORS
    # Weight rounding after the scheme and scale are chosen (one of WEIGHT_ROUNDINGS) and the
    # AdaRound parameters ([choice], see archsim/quant/adaround.py AdaRoundSettings).
    weight_rounding: str = "nearest"
    adaround_iterations: int = 300
    adaround_rows: int = 1024
    adaround_images: int = 16
    adaround_lambda: float = 0.01
    adaround_lr: float = 0.01
    description: str = ""
    source_file: str | None = None  # the YAML file the policy was read from (messages only, never results)
    # What results identify the policy by: (file name, sha256) of its YAML, then of each base it
    # builds on (``base:``), nearest first; () when built in code. Not part of equality.
    inputs: tuple[tuple[str, str], ...] = field(default=(), compare=False)

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

    def identity(self) -> dict:
        """How a result names this policy: name, and the file name and sha256 of its YAML and bases."""
        files = [{"name": n, "sha256": d} for n, d in self.inputs]
        return {"name": self.name, "files": files}


class _BundledPolicies(Mapping):
    """The bundled policies by name, read from archsim/quant/policies/*.yaml on first use."""

    def _all(self) -> dict[str, QuantPolicy]:
        from archsim.quant.policy_loader import bundled_policies

        return bundled_policies()

    def __getitem__(self, name: str) -> QuantPolicy:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"POLICIES({', '.join(self)})"


# Bundled policies by name (loaded on first access, not at import).
POLICIES: Mapping[str, QuantPolicy] = _BundledPolicies()


def get_policy(name_or_path, search: Sequence = ()) -> QuantPolicy:
    """A policy by name (user folders of ``search`` and ARCHSIM_PATH first, then the bundled ones), or
    from a YAML path; a policy object is returned unchanged."""
    from archsim import resources
    from archsim.quant.policy_loader import PolicyError, load_policy_file

    if isinstance(name_or_path, QuantPolicy):
        return name_or_path
    if resources.looks_like_path(name_or_path):
        return load_policy_file(name_or_path, search=search)
    found = resources.find("policy", str(name_or_path), search)
    if found is None:
        raise PolicyError(None, str(resources.unknown("policy", str(name_or_path), search)))
    if found.bundled:
        return POLICIES[found.name]
    return load_policy_file(found.path, search=search)
