"""Read and validate quantization policy YAML files into :class:`QuantPolicy` objects.

A policy file is a flat mapping of :class:`QuantPolicy` fields; the four role fields
(``depthwise``, ``pointwise``, ``dense``, ``classifier``) are mappings of
:class:`WeightRule` fields. ``base: <policy>`` (a bundled or search-path name, or a path
relative to the file) starts from that policy and overrides only the fields given (role
mappings are merged key by key). The schema is :class:`PolicyFileModel` (one pydantic model
per YAML mapping, :mod:`archsim.configfile`): every error names the file, the line, the field,
the value and what is allowed, all errors at once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from archsim import resources
from archsim.configfile import (
    ConfigFileError,
    Document,
    Problem,
    StrictModel,
    boolean,
    choice,
    integer,
    nonempty_text,
    number,
    read_document,
    show,
    text,
    validate_document,
)
from archsim.quant.policy import (
    ACT_BITS,
    ACT_RANGE_METHODS,
    APOT_BITS,
    ATTENTION_DENOMINATORS,
    FLOAT_BITS,
    ROLES,
    WEIGHT_BITS,
    WEIGHT_RANGE_METHODS,
    WEIGHT_ROUNDINGS,
    QuantPolicy,
)

BUNDLED_DIR = resources.bundled_dir("policy")
POLICY_SUFFIXES = resources.SUFFIXES
# Listing order of the bundled policies (error messages, `archsim list`): the reference
# pair first, then the variants.
BUNDLED_ORDER = (
    "m2q",
    "m2q_apot8",
    "uniform_w8a8",
    "fp32",
    "uniform_w8a8_plain",
    "m2q_dw3",
    "m2q_balanced",
    "all_apot",
    "m2q_adaround",
)
ADAROUND_MAX_ITERATIONS = 1_000_000  # [choice] bounds that keep a typo (1e9) from running for days
ADAROUND_MAX_ROWS = 1_000_000  # [choice]
ADAROUND_MAX_IMAGES = 100_000  # [choice]

looks_like_path = resources.looks_like_path


class PolicyError(ConfigFileError):
    """A policy file is missing, malformed or has an invalid field."""

    what = "quantization policy"


# -- schema ------------------------------------------------------------------------------------

Bool = Annotated[bool, boolean()]
Denominator = Annotated[str, choice(ATTENTION_DENOMINATORS, "attention denominator")]
Text = Annotated[str, BeforeValidator(text)]


class RuleModel(StrictModel):
    """How the weights of one layer role are quantized; a field not given keeps the base's value."""

    bits: Annotated[int, integer(*WEIGHT_BITS)] | None = Field(
        None,
        description=f"uniform weight bits, an integer in [{WEIGHT_BITS[0]}, {WEIGHT_BITS[1]}] (default 8)",
    )
    symmetric: Bool | None = Field(None, description="symmetric weights, zero point 0 (default true)")
    per_channel: Bool | None = Field(None, description="one scale per output filter (default true)")
    mixed_apot: Bool | None = Field(
        None, description="per filter uniform or APoT, by MSE or target fraction (default false)"
    )
    apot_only: Bool | None = Field(None, description="every filter APoT at apot_bits (default false)")
    apot_bits: Annotated[int, integer(*APOT_BITS)] | None = Field(
        None, description=f"APoT code bits, an integer in [{APOT_BITS[0]}, {APOT_BITS[1]}] (default 8)"
    )
    select_bits: Annotated[int, integer(*APOT_BITS)] | None = Field(
        None,
        description="bits at which uniform and APoT MSE are compared, an integer in "
        f"[{APOT_BITS[0]}, {APOT_BITS[1]}], or null for apot_bits (default null)",
    )
    range: Annotated[str, choice(WEIGHT_RANGE_METHODS, "range method")] | None = Field(
        None, description=f"uniform range method: {', '.join(WEIGHT_RANGE_METHODS)} (default minmax)"
    )


class PolicyFileModel(StrictModel):
    """A policy YAML file; a field not given keeps the value of ``base`` (or the QuantPolicy default)."""

    base: Annotated[str, BeforeValidator(nonempty_text)] | None = Field(
        None,
        description="policy to start from: a bundled or search-path name, or a path relative to this file",
    )
    name: Annotated[str, BeforeValidator(nonempty_text)] | None = Field(
        None, description="policy name (default: the file name without .yaml)"
    )
    description: Text | None = Field(
        None, description="free text; its first line is what `archsim list` shows"
    )
    quantized: Bool | None = Field(None, description="false: nothing quantized, fp32 (default true)")
    act_bits: Annotated[int, integer(*ACT_BITS)] | None = Field(
        None,
        description=f"activation bits, an integer in [{ACT_BITS[0]}, {ACT_BITS[1]}] "
        f"({FLOAT_BITS} or omitted when quantized is false; default 8)",
    )
    act_symmetric: Bool | None = Field(None, description="symmetric activations (default false)")
    act_range: Annotated[str, choice(ACT_RANGE_METHODS, "range method")] | None = Field(
        None, description=f"activation range method: {', '.join(ACT_RANGE_METHODS)} (default minmax)"
    )
    depthwise: RuleModel | None = Field(None, description="weights of depthwise convs (groups == channels)")
    pointwise: RuleModel | None = Field(None, description="weights of 1x1 convs and hidden Linear layers")
    dense: RuleModel | None = Field(None, description="weights of k x k convs with groups == 1 (the stem)")
    classifier: RuleModel | None = Field(None, description="weights of the last Linear layer")
    wide_attention: Bool | None = Field(
        None, description="k^T v and q (k^T v) kept int32 until the division (default true)"
    )
    classifier_output_wide: Bool | None = Field(None, description="logits not requantized (default true)")
    apot_mse_tolerance: Annotated[float, number(0, lo_open=True)] | None = Field(
        None, description="APoT wins when mse_apot <= tolerance x mse_uniform, a number > 0 (default 1.0)"
    )
    apot_target_fraction: Annotated[float, number(0, 1)] | None = Field(
        None,
        description="exact APoT share per mixed layer, a number in [0, 1], or null to choose by MSE "
        "(needs a role with mixed_apot: true; default null)",
    )
    channel_migration: Bool | None = Field(
        None, description="Trio-ViT channel-wise migration (default false)"
    )
    filter_shifting: Bool | None = Field(None, description="Trio-ViT filter-wise shifting (default false)")
    attention_denominator: Denominator | None = Field(
        None, description=f"attention division: {', '.join(ATTENTION_DENOMINATORS)} (default exact)"
    )
    weight_rounding: Annotated[str, choice(WEIGHT_ROUNDINGS, "weight rounding")] | None = Field(
        None, description=f"weight rounding: {', '.join(WEIGHT_ROUNDINGS)} (default nearest)"
    )
    adaround_iterations: Annotated[int, integer(1, ADAROUND_MAX_ITERATIONS)] | None = Field(
        None,
        description=f"AdaRound steps per layer, an integer in [1, {ADAROUND_MAX_ITERATIONS}] (default 300)",
    )
    adaround_rows: Annotated[int, integer(1, ADAROUND_MAX_ROWS)] | None = Field(
        None,
        description=f"AdaRound sampled output positions, an integer in [1, {ADAROUND_MAX_ROWS}] "
        "(default 1024)",
    )
    adaround_images: Annotated[int, integer(1, ADAROUND_MAX_IMAGES)] | None = Field(
        None,
        description=f"AdaRound calibration images, an integer in [1, {ADAROUND_MAX_IMAGES}] (default 16)",
    )
    adaround_lambda: Annotated[float, number(0, lo_open=True)] | None = Field(
        None, description="AdaRound rounding regulariser weight, a number > 0 (default 0.01)"
    )
    adaround_lr: Annotated[float, number(0, lo_open=True)] | None = Field(
        None, description="AdaRound learning rate, a number > 0 (default 0.01)"
    )


# -- building a QuantPolicy ---------------------------------------------------------------------


def _given(model: StrictModel) -> dict[str, Any]:
    """The fields written in the file (an explicit null included), by name."""
    return {k: getattr(model, k) for k in model.model_fields_set}


def _apply(model: PolicyFileModel, policy: QuantPolicy) -> QuantPolicy:
    changes: dict[str, Any] = {}
    for key, value in _given(model).items():
        if key == "base":
            continue
        if key in ROLES:
            if value is None:  # `pointwise:` with nothing under it: keep the base's rule
                continue
            changes[key] = dataclasses.replace(getattr(policy, key), **_given(value))
        elif key == "description":
            changes[key] = (value or "").strip()
        else:
            changes[key] = value
    policy = dataclasses.replace(policy, **changes)
    if not policy.quantized:
        policy = dataclasses.replace(policy, act_bits=FLOAT_BITS)
    return policy


def _cross_checks(model: PolicyFileModel, policy: QuantPolicy, doc: Document) -> list[Problem]:
    problems = []
    for role in ROLES:
        rule = policy.rule(role)
        if rule.mixed_apot and rule.apot_only:
            problems.append(
                Problem(
                    doc.line_of((role,)),
                    role,
                    "mixed_apot and apot_only exclude each other (allowed: at most one of them true)",
                )
            )
        if rule.has_apot and not rule.per_channel:
            problems.append(
                Problem(
                    doc.line_of((role, "per_channel")),
                    f"{role}.per_channel",
                    "APoT filters need per-channel scales (allowed: true when mixed_apot or apot_only)",
                    show(rule.per_channel),
                )
            )
    given_act = model.act_bits
    if not policy.quantized and given_act is not None and given_act != FLOAT_BITS:
        problems.append(
            Problem(
                doc.line_of(("act_bits",)),
                "act_bits",
                f"an unquantized policy (quantized: "
                f"false) has {FLOAT_BITS}-bit activations (allowed: {FLOAT_BITS} or omitted)",
                show(given_act),
            )
        )
    if policy.apot_target_fraction is not None and not any(policy.rule(r).mixed_apot for r in ROLES):
        problems.append(
            Problem(
                doc.line_of(("apot_target_fraction",)),
                "apot_target_fraction",
                "needs a role with mixed_apot: true (allowed: null otherwise)",
                show(policy.apot_target_fraction),
            )
        )
    return problems


def _base_policy(
    model: PolicyFileModel, doc: Document, search: Sequence[str | os.PathLike], chain: tuple[Path, ...]
) -> tuple[QuantPolicy | None, list[Problem]]:
    """The policy named by ``base:`` (None and a problem when it cannot be used)."""
    ref = model.base
    where = (doc.line_of(("base",)), "base")
    try:
        path = resources.resolve("policy", ref, base=doc.path.parent, extra=search)
    except resources.ResourceError as err:
        return None, [Problem(*where, err.reason, show(ref))]
    if path.resolve() in chain:
        return None, [
            Problem(
                *where,
                "the base chain comes back to this file (allowed: a policy that does not build on this one)",
                show(ref),
            )
        ]
    if not looks_like_path(ref):
        found = resources.find("policy", ref, search)
        bundled = bundled_policies()
        if found is not None and found.bundled and ref in bundled:
            return bundled[ref], []
    try:
        return load_policy_file(path, search=search, _chain=chain), []
    except PolicyError as err:
        return None, [Problem(*where, f"the base policy has problems: {err}", show(ref))]


def load_policy_file(
    path: str | os.PathLike, *, search: Sequence[str | os.PathLike] = (), _chain: tuple[Path, ...] = ()
) -> QuantPolicy:
    """Read and validate one policy YAML file (every problem at once, as :class:`PolicyError`)."""
    doc = read_document(path, PolicyError, "a policy YAML file")
    return _policy_from_document(doc, Path(path).stem, search, _chain)


def _policy_from_document(
    doc: Document, default_name: str, search: Sequence[str | os.PathLike], chain: tuple[Path, ...]
) -> QuantPolicy:
    model, problems = validate_document(doc, PolicyFileModel, PolicyError, "a policy file")
    base = QuantPolicy(name=default_name)
    inputs: tuple[tuple[str, str], ...] = ()
    if model.base is not None:
        chain = chain + (doc.path.resolve(),)
        found, base_problems = _base_policy(model, doc, search, chain)
        if found is None:
            raise PolicyError(doc.file, problems + base_problems)
        inputs = found.inputs
        base = dataclasses.replace(found, name=default_name, description="")
    policy = _apply(model, base)
    problems += _cross_checks(model, policy, doc)
    if problems:
        raise PolicyError(doc.file, problems)
    own = (doc.path.name, doc.sha256)
    return dataclasses.replace(policy, source_file=str(doc.path), inputs=(own,) + inputs)


def policy_from_dict(data: Any, where: str, default_name: str) -> QuantPolicy:
    """Validate an already parsed policy mapping; ``where`` names its source in errors (no lines)."""
    doc = Document(file=where, path=Path(where), sha256="", data=data)
    policy = _policy_from_document(doc, default_name, (), ())
    return dataclasses.replace(policy, source_file=None, inputs=())


_BUNDLED: dict[str, QuantPolicy] | None = None


def bundled_policies() -> dict[str, QuantPolicy]:
    """Every policy in archsim/quant/policies/, by name (read once, on first use)."""
    global _BUNDLED
    if _BUNDLED is None:
        rank = {name: i for i, name in enumerate(BUNDLED_ORDER)}
        paths = sorted(BUNDLED_DIR.glob("*.yaml"), key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
        found: dict[str, QuantPolicy] = {}
        _BUNDLED = found  # a bundled file may name another one as its base
        try:
            for path in paths:
                policy = load_policy_file(path)
                if policy.name != path.stem:
                    raise PolicyError(
                        str(path),
                        [
                            Problem(
                                1,
                                "name",
                                f"must equal the file name (allowed: {path.stem!r})",
                                show(policy.name),
                            )
                        ],
                    )
                found[policy.name] = policy
        except BaseException:
            _BUNDLED = None
            raise
    return _BUNDLED


load_bundled_policies = bundled_policies  # the former name
