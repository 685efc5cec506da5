"""Workload YAMLs: what to run (model, input, batch, quantization policy, seed, calibration).

A workload file is a YAML mapping; every key but ``model`` has a default::

    model: efficientvit_b1        # efficientvit_b0..b3 (or b0..b3)
    resolution: 224               # input side in pixels, multiple of 32 in [64, 1024]
    batch: 1                      # images per inference, >= 1
    policy: m2q                   # quantization policy, see known_policies()
    seed: 0                       # weights (when no checkpoint) and synthetic data, int >= 0
    calibration:
      samples: 32                 # calibration images, >= 1
      batch_size: 8               # images per calibration forward, >= 1
      source: synthetic           # "synthetic" or a path (relative to this file)
    checkpoint: null              # local weights file (relative to this file), or null
    name: efficientvit_b1         # optional, defaults to the file name without .yaml
    description: "..."            # optional free text

Unknown keys are errors (a typo must not silently fall back to a default). Errors are
:class:`WorkloadError` (a ValueError) naming the file, the line, the field and what is allowed.

A bundled name such as "efficientvit_b1" is looked up, in order, as:
(a) the path as given; (b) ``NAME.yaml`` in each directory of the ``ARCHSIM_WORKLOAD_PATH``
environment variable (os.pathsep-separated); (c) ``workloads/NAME.yaml`` under the current
directory; (d) ``workloads/NAME.yaml`` of the source tree this package lives in (an editable
install or a checkout), where the canonical bundled YAMLs are kept.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .zoo import MODEL_NAMES, canonical_model_name


def known_policies() -> tuple[str, ...]:
    """Names a workload's ``policy`` may take: those of the policy registry (no torch import)."""
    from archsim.quant.policy import POLICIES

    return tuple(POLICIES)


def _policy_path_like(policy) -> bool:
    from archsim.quant.policy_loader import looks_like_path

    return looks_like_path(policy)


def _policy_file(policy, where, base: Path) -> str:
    """A user policy file: resolved like other paths, must exist and validate (errors name the file)."""
    from archsim.quant.policy_loader import PolicyError, load_policy_file

    path = _path(policy, "policy", where, base)
    if not Path(path).is_file():
        raise WorkloadError(f"{where('policy')}: policy file {path} does not exist "
                            "(allowed: a bundled policy name or an existing policy YAML file)")
    try:
        load_policy_file(path)
    except PolicyError as exc:
        raise WorkloadError(f"{where('policy')}: {exc}") from exc
    return path


RESOLUTION_MIN, RESOLUTION_MAX, RESOLUTION_STEP = 64, 1024, 32
SEED_MAX = 2**63 - 1 - 10_000_000  # leaves room for derived seeds (seed + offset) in int64
SYNTHETIC = "synthetic"
WORKLOAD_PATH_ENV = "ARCHSIM_WORKLOAD_PATH"
_REPO_WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


class WorkloadError(ValueError):
    """A workload file or override is missing, malformed or has an invalid field."""


@dataclass(frozen=True)
class Calibration:
    """Calibration data: ``samples`` images in batches of ``batch_size`` from ``source``
    ("synthetic", or an absolute path to real data)."""

    samples: int = 32
    batch_size: int = 8
    source: str = SYNTHETIC

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC


@dataclass(frozen=True)
class Workload:
    """A validated workload. Paths (``checkpoint``, a non-synthetic calibration source) are
    absolute; ``source_file`` is the YAML it came from (None when built in code)."""

    name: str
    model: str
    resolution: int = 224
    batch: int = 1
    policy: str = "m2q"
    seed: int = 0
    calibration: Calibration = field(default_factory=Calibration)
    checkpoint: str | None = None
    source_file: Path | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["source_file"] = str(self.source_file) if self.source_file is not None else None
        return d


_FIELDS = (
    "name", "description", "model", "resolution", "batch", "policy", "seed", "calibration", "checkpoint",
)
_CAL_FIELDS = ("samples", "batch_size", "source")
_REQUIRED = ("model",)


# ---------------------------------------------------------------------------------------------
# Locating files
# ---------------------------------------------------------------------------------------------


def workload_search_dirs() -> list[Path]:
    """Directories searched for bundled names, in order (see the module docstring)."""
    dirs = [Path(p).expanduser() for p in os.environ.get(WORKLOAD_PATH_ENV, "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "workloads", _REPO_WORKLOADS]
    seen, out = set(), []
    for d in dirs:
        key = d.resolve() if d.exists() else d
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def list_workloads() -> list[str]:
    """Names of the workloads found in :func:`workload_search_dirs`, sorted."""
    names = set()
    for d in workload_search_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return sorted(names)


def resolve_workload_file(name_or_path: str | os.PathLike) -> Path:
    """The YAML file a workload name or path refers to; WorkloadError if there is none."""
    given = Path(name_or_path).expanduser()
    if given.is_file():
        return given.resolve()
    text = str(name_or_path)
    looks_like_path = given.suffix in (".yaml", ".yml") or "/" in text or os.sep in text
    if looks_like_path:
        raise WorkloadError(f"workload file {text!r}: no such file")
    for d in workload_search_dirs():
        for suffix in (".yaml", ".yml"):
            cand = d / f"{text}{suffix}"
            if cand.is_file():
                return cand.resolve()
    known = list_workloads()
    hint = difflib.get_close_matches(text, known, n=1)
    raise WorkloadError(
        f"unknown workload {text!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + f"; known: {', '.join(known) or 'none'}"
        + f"; searched {', '.join(str(d) for d in workload_search_dirs())}"
    )


# ---------------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------------


class _Where:
    """Formats error locations: 'file:line: field 'x'' or 'override x'."""

    def __init__(self, source: str, lines: dict[str, int] | None = None):
        self.source = source
        self.lines = lines or {}

    def __call__(self, fld: str) -> str:
        line = self.lines.get(fld)
        return f"{self.source}:{line}: field '{fld}'" if line else f"{self.source}: field '{fld}'"


def _key_lines(node: yaml.Node, source: str, prefix: str = "") -> dict[str, int]:
    """1-based line of every mapping key (nested keys as 'calibration.samples'); rejects duplicates."""
    lines: dict[str, int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        if key in lines:
            raise WorkloadError(f"{source}:{key_node.start_mark.line + 1}: field '{key}' appears twice "
                                f"(first at line {lines[key]})")
        lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode) and not prefix:
            lines.update(_key_lines(value_node, source, prefix=f"{key}."))
    return lines


def _unknown(keys, allowed, where: _Where, what: str) -> None:
    for k in keys:
        if k not in allowed:
            hint = difflib.get_close_matches(str(k), allowed, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise WorkloadError(f"{where(what + str(k))}: unknown key{did_you_mean}; "
                                f"allowed: {', '.join(allowed)}")


def _int(value, fld: str, where: _Where, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkloadError(f"{where(fld)}: {value!r} is not an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise WorkloadError(f"{where(fld)}: {value} is out of range (allowed: an integer {rng})")
    return value


def _path(value, fld: str, where: _Where, base: Path) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise WorkloadError(f"{where(fld)}: {value!r} is not a path")
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        raise WorkloadError(f"{where(fld)}: {str(value)!r} does not exist (resolved to {p})")
    return str(p.resolve())


def _validate(data: dict[str, Any], where: _Where, base: Path, default_name: str,
              source_file: Path | None) -> Workload:
    _unknown(data, _FIELDS, where, "")
    for req in _REQUIRED:
        if req not in data or data[req] is None:
            raise WorkloadError(f"{where.source}: missing required field '{req}' "
                                f"(allowed: {', '.join(MODEL_NAMES)})")

    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise WorkloadError(f"{where('name')}: {name!r} is not a non-empty string")
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        raise WorkloadError(f"{where('description')}: {description!r} is not a string")

    try:
        model = canonical_model_name(data["model"])
    except KeyError:
        raise WorkloadError(f"{where('model')}: {data['model']!r} is not a known model "
                            f"(allowed: {', '.join(MODEL_NAMES)}, or b0..b3)") from None

    resolution = _int(data.get("resolution", 224), "resolution", where)
    if not (RESOLUTION_MIN <= resolution <= RESOLUTION_MAX) or resolution % RESOLUTION_STEP:
        raise WorkloadError(f"{where('resolution')}: {resolution} is not allowed (allowed: a multiple of "
                            f"{RESOLUTION_STEP} in [{RESOLUTION_MIN}, {RESOLUTION_MAX}])")
    batch = _int(data.get("batch", 1), "batch", where, lo=1)
    seed = _int(data.get("seed", 0), "seed", where, lo=0, hi=SEED_MAX)

    policy = data.get("policy", "m2q")
    allowed = known_policies()
    if policy not in allowed and _policy_path_like(policy):
        policy = _policy_file(policy, where, base)
    elif policy not in allowed:
        hint = difflib.get_close_matches(str(policy).lower(), allowed, n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise WorkloadError(f"{where('policy')}: {policy!r} is not a known policy{did_you_mean}; "
                            f"allowed: {', '.join(allowed)}, or a path to a policy YAML file")

    cal = data.get("calibration")
    if cal is None:
        cal = {}
    if isinstance(cal, Calibration):
        cal = dataclasses.asdict(cal)
    if not isinstance(cal, dict):
        raise WorkloadError(f"{where('calibration')}: expected a mapping with keys {', '.join(_CAL_FIELDS)}, "
                            f"got {cal!r}")
    _unknown(cal, _CAL_FIELDS, where, "calibration.")
    source = cal.get("source", SYNTHETIC)
    if source != SYNTHETIC:
        source = _path(source, "calibration.source", where, base)
    calibration = Calibration(
        samples=_int(cal.get("samples", 32), "calibration.samples", where, lo=1),
        batch_size=_int(cal.get("batch_size", 8), "calibration.batch_size", where, lo=1),
        source=source,
    )

    checkpoint = data.get("checkpoint")
    if checkpoint is not None:
        checkpoint = _path(checkpoint, "checkpoint", where, base)
        if not Path(checkpoint).is_file():
            raise WorkloadError(f"{where('checkpoint')}: {checkpoint} is not a file")

    return Workload(name=name, model=model, resolution=resolution, batch=batch, policy=policy, seed=seed,
                    calibration=calibration, checkpoint=checkpoint, source_file=source_file,
                    description=description.strip())


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise WorkloadError(f"{loc}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise WorkloadError(f"{path}: a workload file must be a YAML mapping of fields "
                            f"({', '.join(_FIELDS)}), got {type(data).__name__}")
    return data, _key_lines(node, str(path))


def load_workload(name_or_path: str | os.PathLike, **overrides: Any) -> Workload:
    """Load, validate and return a workload; ``overrides`` replace fields after loading.

    ``name_or_path``: a bundled name ("efficientvit_b1") or a YAML path.
    ``overrides``: any field (``resolution=256``, ``policy="fp32"``, ``seed=3``,
    ``checkpoint="w.pth"``, ``calibration={"samples": 64}`` merges into the calibration
    section). Overrides whose value is None are ignored. Relative paths in overrides are
    relative to the current directory; in the file, relative to the file's directory.
    """
    path = resolve_workload_file(name_or_path)
    data, lines = _read_yaml(path)
    where = _Where(str(path), lines)
    # Validate the file as written first, so a bad file is reported as such even when an override
    # would have masked the bad value.
    workload = _validate(data, where, path.parent, path.stem, path)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return workload
    _unknown(overrides, _FIELDS, _Where(f"{path} (override)"), "")
    merged = {k: v for k, v in dataclasses.asdict(workload).items() if k in _FIELDS}
    if "calibration" in overrides:
        cal = overrides["calibration"]
        if isinstance(cal, Calibration):
            cal = dataclasses.asdict(cal)
        if isinstance(cal, dict):
            overrides = {**overrides, "calibration": {**merged["calibration"], **cal}}
    merged.update(overrides)
    where = _Where(f"{path} (with overrides {sorted(overrides)})")
    return _validate(merged, where, Path.cwd(), path.stem, path)
