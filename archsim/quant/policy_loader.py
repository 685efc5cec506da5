"""Read and validate quantization policy YAML files into :class:`QuantPolicy` objects.

A policy file is a flat mapping of :class:`QuantPolicy` fields; the four role fields
(``depthwise``, ``pointwise``, ``dense``, ``classifier``) are mappings of
:class:`WeightRule` fields. ``base: <bundled name>`` starts from a bundled policy and
overrides only the fields given (role mappings are merged key by key). Files are read with
``yaml.safe_load``; every error names the file, the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from archsim.quant.policy import (
    ACT_BITS,
    ACT_RANGE_METHODS,
    APOT_BITS,
    ATTENTION_DENOMINATORS,
    WEIGHT_ROUNDINGS,
    FLOAT_BITS,
    ROLES,
    WEIGHT_BITS,
    WEIGHT_RANGE_METHODS,
    QuantPolicy,
    WeightRule,
)

BUNDLED_DIR = Path(__file__).resolve().parent / "policies"
POLICY_SUFFIXES = (".yaml", ".yml")
# Listing order of the bundled policies (error messages, `archsim policies`): the reference
# pair first, then the variants.
BUNDLED_ORDER = ("m2q", "m2q_apot8", "uniform_w8a8", "fp32", "uniform_w8a8_plain", "m2q_dw3", "m2q_balanced",
                 "all_apot", "m2q_adaround")


class PolicyError(ValueError):
    """A policy file is missing, malformed or has an invalid field."""


# field -> (kind, allowed) ; kind: "bool", "int", "float", "str", "enum", "rule"
_RULE_FIELDS: dict[str, tuple[str, Any]] = {
    "bits": ("int", WEIGHT_BITS),
    "symmetric": ("bool", None),
    "per_channel": ("bool", None),
    "mixed_apot": ("bool", None),
    "apot_only": ("bool", None),
    "apot_bits": ("int", APOT_BITS),
    "select_bits": ("int?", APOT_BITS),
    "range": ("enum", WEIGHT_RANGE_METHODS),
}
_POLICY_FIELDS: dict[str, tuple[str, Any]] = {
    "name": ("str", None),
    "description": ("str", None),
    "quantized": ("bool", None),
    "act_bits": ("int", ACT_BITS),
    "act_symmetric": ("bool", None),
    "act_range": ("enum", ACT_RANGE_METHODS),
    **{role: ("rule", None) for role in ROLES},
    "wide_attention": ("bool", None),
    "classifier_output_wide": ("bool", None),
    "apot_mse_tolerance": ("float", (0.0, None)),  # > 0
    "apot_target_fraction": ("float?", (0.0, 1.0)),
    "channel_migration": ("bool", None),
    "filter_shifting": ("bool", None),
    "attention_denominator": ("enum", ATTENTION_DENOMINATORS),
    "weight_rounding": ("enum", WEIGHT_ROUNDINGS),
    "adaround_iterations": ("int", (1, 1_000_000)),
    "adaround_rows": ("int", (1, 1_000_000)),
    "adaround_images": ("int", (1, 100_000)),
    "adaround_lambda": ("float", (0.0, None)),
    "adaround_lr": ("float", (0.0, None)),
}
_TOP_LEVEL = ("base", *_POLICY_FIELDS)


def looks_like_path(value) -> bool:
    """True for a path-like policy reference (a .yaml/.yml name or anything with a directory part)."""
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and (value.endswith(POLICY_SUFFIXES) or "/" in value or os.sep in value)


def _check(value, kind: str, allowed, where: str):
    """Validate one scalar field; returns the value (ints accepted for floats)."""
    if value is None and kind.endswith("?"):
        return None
    kind = kind.rstrip("?")
    if kind == "bool":
        if not isinstance(value, bool):
            raise PolicyError(f"{where}: expected true or false, got {value!r}")
    elif kind == "int":
        lo, hi = allowed
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise PolicyError(f"{where}: {value!r} is not allowed (allowed: an integer in [{lo}, {hi}])")
    elif kind == "float":
        lo, hi = allowed
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and hi is None:
            ok = value > lo
            text = f"a number > {lo}"
        elif ok:
            ok = lo <= value <= hi
            text = f"a number in [{lo}, {hi}]"
        else:
            text = "a number" if hi is None else f"a number in [{lo}, {hi}]"
        if not ok:
            raise PolicyError(f"{where}: {value!r} is not allowed (allowed: {text}{' or null' if allowed and hi else ''})")
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise PolicyError(f"{where}: expected a string, got {value!r}")
    elif kind == "enum":
        if value not in allowed:
            raise PolicyError(f"{where}: {value!r} is not allowed (allowed: {', '.join(allowed)})")
    return value


def _unknown(data: dict, known, where: str) -> None:
    extra = sorted(str(k) for k in data if k not in known)
    if extra:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(extra)} (allowed: {', '.join(known)})")


def _rule(data, base: WeightRule, where: str) -> WeightRule:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected a mapping of weight-rule fields ({', '.join(_RULE_FIELDS)}), got {data!r}")
    _unknown(data, _RULE_FIELDS, where)
    values = {k: _check(v, *_RULE_FIELDS[k], f"{where}.{k}") for k, v in data.items()}
    rule = dataclasses.replace(base, **values)
    if rule.mixed_apot and rule.apot_only:
        raise PolicyError(f"{where}: mixed_apot and apot_only exclude each other (allowed: at most one true)")
    if rule.has_apot and not rule.per_channel:
        raise PolicyError(f"{where}.per_channel: APoT filters need per-channel scales (allowed: true when "
                          "mixed_apot or apot_only)")
    return rule


def policy_from_dict(data: dict, where: str, default_name: str) -> QuantPolicy:
    """Validate a parsed policy mapping; ``where`` names the source in errors."""
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: a policy file must be a YAML mapping of fields ({', '.join(_TOP_LEVEL)}), "
                          f"got {type(data).__name__}")
    _unknown(data, _TOP_LEVEL, where)
    base_name = data.get("base")
    if base_name is None:
        policy = QuantPolicy(name=default_name)
    else:
        bundled = load_bundled_policies()
        if base_name not in bundled:
            raise PolicyError(f"{where}: field 'base': {base_name!r} is not a bundled policy "
                              f"(allowed: {', '.join(sorted(bundled))})")
        policy = dataclasses.replace(bundled[base_name], name=default_name, description="")
    changes = {}
    for key, value in data.items():
        if key == "base":
            continue
        kind, allowed = _POLICY_FIELDS[key]
        field_where = f"{where}: field '{key}'"
        if kind == "rule":
            changes[key] = _rule(value, getattr(policy, key), field_where)
        else:
            changes[key] = _check(value, kind, allowed, field_where)
    policy = dataclasses.replace(policy, **changes)
    if not policy.quantized:
        if data.get("act_bits", FLOAT_BITS) != FLOAT_BITS:
            raise PolicyError(f"{where}: field 'act_bits': an unquantized policy (quantized: false) has "
                              f"{FLOAT_BITS}-bit activations (allowed: {FLOAT_BITS} or omitted)")
        policy = dataclasses.replace(policy, act_bits=FLOAT_BITS)
    if policy.apot_target_fraction is not None and not any(policy.rule(r).mixed_apot for r in ROLES):
        raise PolicyError(f"{where}: field 'apot_target_fraction' needs a role with mixed_apot: true "
                          "(allowed: null otherwise)")
    return policy


def load_policy_file(path) -> QuantPolicy:
    """Read and validate one policy YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise PolicyError(f"{loc}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    policy = policy_from_dict(data, str(path), path.stem)
    return dataclasses.replace(policy, source_file=str(path))


_BUNDLED: dict[str, QuantPolicy] | None = None


def load_bundled_policies() -> dict[str, QuantPolicy]:
    """Every policy in archsim/quant/policies/, by name (read once)."""
    global _BUNDLED
    if _BUNDLED is None:
        found: dict[str, QuantPolicy] = {}
        _BUNDLED = found  # a bundled file may name another one as its base
        rank = {name: i for i, name in enumerate(BUNDLED_ORDER)}
        paths = sorted(BUNDLED_DIR.glob("*.yaml"), key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
        for path in paths:
            policy = load_policy_file(path)
            if policy.name != path.stem:
                _BUNDLED = None
                raise PolicyError(f"{path}: field 'name': {policy.name!r} must equal the file name "
                                  f"(allowed: {path.stem!r})")
            found[policy.name] = policy
    return _BUNDLED
