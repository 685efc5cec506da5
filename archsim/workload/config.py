"""Workload YAMLs: what to run (model, input, batch, quantization policy, seed, calibration).

A workload file is a YAML mapping; every key but ``model`` has a default::

    model: efficientvit_b1        # efficientvit_b0..b3 (or b0..b3)
    resolution: 224               # input side in pixels, multiple of 32 in [64, 1024]
    batch: 1                      # images per inference, >= 1
    policy: m2q                   # quantization policy: a name (`archsim list`) or a policy YAML path
    seed: 0                       # weights (when no checkpoint) and synthetic data, int >= 0
    calibration:
      samples: 32                 # calibration images, >= 1
      batch_size: 8               # images per calibration forward, >= 1
      source: synthetic           # "synthetic" or a path (relative to this file)
    checkpoint: null              # local weights file (relative to this file), or null
    name: efficientvit_b1         # optional, defaults to the file name without .yaml
    description: "..."            # optional free text

The schema is :class:`WorkloadModel` (one pydantic model per mapping, :mod:`archsim.configfile`):
unknown keys are errors with the nearest valid key suggested (a typo must not silently fall back
to a default); every error is ``file:line: field: value: what is allowed``, all at once, as a
:class:`WorkloadError` (a ValueError).

A bundled name such as "efficientvit_b1" is looked up as :mod:`archsim.resources` describes:
the ``--path`` folders, then ``ARCHSIM_PATH``, then the workloads bundled in the package.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from archsim import resources
from archsim.configfile import (
    ConfigFileError,
    Document,
    Problem,
    StrictModel,
    did_you_mean,
    integer,
    nonempty_text,
    read_document,
    show,
    text,
    validate_document,
)

from .zoo import MODEL_NAMES, canonical_model_name

RESOLUTION_MIN, RESOLUTION_MAX, RESOLUTION_STEP = 64, 1024, 32  # [choice] EfficientViT downsamples by 32
SEED_MAX = 2**63 - 1 - 10_000_000  # leaves room for derived seeds (seed + offset) in int64
SYNTHETIC = "synthetic"
DEFAULT_POLICY = "m2q"  # [choice] the reference case's policy (M2Q)


class WorkloadError(ConfigFileError):
    """A workload file or override is missing, malformed or has an invalid field."""

    what = "workload"


def known_policies(search: Sequence[str | os.PathLike] = ()) -> tuple[str, ...]:
    """Names a workload's ``policy`` may take: bundled ones and those of the search folders."""
    return tuple(resources.names("policy", search))


# -- the validated workload ----------------------------------------------------------------------


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
    """A validated workload. Paths (``checkpoint``, a non-synthetic calibration source, a policy
    file) are absolute; ``source_file`` is the YAML it came from (None when built in code).
    ``policy`` is a bundled policy name or the absolute path of a policy YAML."""

    name: str
    model: str
    resolution: int = 224
    batch: int = 1
    policy: str = DEFAULT_POLICY
    seed: int = 0
    calibration: Calibration = field(default_factory=Calibration)
    checkpoint: str | None = None
    source_file: Path | None = None
    description: str = ""

    def identity(self) -> dict[str, Any]:
        """The workload as results record it: names and sha256 digests of every input file, no paths."""
        from archsim.quant.policy import get_policy

        policy = get_policy(self.policy).identity()
        cal = self.calibration
        return {
            "name": self.name,
            "sha256": resources.sha256_file(self.source_file) if self.source_file is not None else None,
            "model": self.model,
            "resolution": self.resolution,
            "batch": self.batch,
            "seed": self.seed,
            "policy": policy["name"],
            "policy_files": policy["files"],
            "calibration": {
                "samples": cal.samples,
                "batch_size": cal.batch_size,
                "source": SYNTHETIC if cal.is_synthetic else resources.identity(cal.source),
            },
            "checkpoint": resources.identity(self.checkpoint) if self.checkpoint is not None else None,
        }

    def paths(self) -> dict[str, str | None]:
        """Where each input file is on this machine (only for an explicitly requested metadata block)."""
        from archsim.quant.policy import get_policy

        return {
            "workload": str(self.source_file) if self.source_file is not None else None,
            "policy": get_policy(self.policy).source_file,
            "calibration": None if self.calibration.is_synthetic else self.calibration.source,
            "checkpoint": self.checkpoint,
        }

    def to_dict(self) -> dict[str, Any]:
        """Same as :meth:`identity` (reports never carry machine paths)."""
        return self.identity()


# -- schema ----------------------------------------------------------------------------------------


def _model_name(value: object) -> str:
    try:
        return canonical_model_name(value)
    except KeyError:
        raise ValueError(
            f"unknown model; {did_you_mean(value, MODEL_NAMES)}allowed: {', '.join(MODEL_NAMES)}, or b0..b3"
        ) from None


RESOLUTIONS = f"an integer multiple of {RESOLUTION_STEP} in [{RESOLUTION_MIN}, {RESOLUTION_MAX}]"


def _resolution(value: object) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not RESOLUTION_MIN <= value <= RESOLUTION_MAX or value % RESOLUTION_STEP:
        raise ValueError(f"must be {RESOLUTIONS}")
    return value


NonEmpty = Annotated[str, BeforeValidator(nonempty_text)]
Count = Annotated[int, integer(1)]


class CalibrationModel(StrictModel):
    samples: Count = Field(32, description="calibration images, an integer >= 1 (default 32)")
    batch_size: Count = Field(8, description="images per calibration forward, an integer >= 1 (default 8)")
    source: NonEmpty = Field(
        SYNTHETIC,
        description="'synthetic' (seeded N(0,1) images), an ImageFolder "
        "directory or a .npy/.pt file, relative to this file (default synthetic)",
    )


class WorkloadModel(StrictModel):
    name: NonEmpty | None = Field(None, description="workload name (default: the file name without .yaml)")
    description: Annotated[str, BeforeValidator(text)] = Field(
        "", description="free text; its first line is what `archsim list` shows"
    )
    model: Annotated[str, BeforeValidator(_model_name)] = Field(
        description=f"the network: {', '.join(MODEL_NAMES)} (or b0..b3)"
    )
    resolution: Annotated[int, BeforeValidator(_resolution)] = Field(
        224, description=f"input side, pixels: {RESOLUTIONS} (default 224)"
    )
    batch: Count = Field(1, description="images per inference, an integer >= 1 (default 1)")
    policy: NonEmpty = Field(
        DEFAULT_POLICY,
        description="quantization policy: a name (`archsim list`) or a "
        f"policy YAML path relative to this file (default {DEFAULT_POLICY})",
    )
    seed: Annotated[int, integer(0, SEED_MAX)] = Field(
        0, description="seed of the stand-in weights and synthetic data, an integer >= 0 (default 0)"
    )
    calibration: CalibrationModel = Field(
        default_factory=CalibrationModel, description="calibration data: samples, batch_size, source"
    )
    checkpoint: NonEmpty | None = Field(
        None,
        description="local weights file (timm names, loaded "
        "weights_only), relative to this file; null: seeded stand-in weights",
    )


# -- validation ------------------------------------------------------------------------------------


def _existing(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _policy(
    ref: str, doc: Document, base: Path, search: Sequence[str | os.PathLike], problems: list[Problem]
) -> str:
    """A bundled policy name as is; anything else the absolute path of its validated YAML."""
    from archsim.quant.policy_loader import PolicyError, load_policy_file

    where = (doc.line_of(("policy",)), "policy")
    known = known_policies(search)
    found = resources.find("policy", ref, search) if ref in known else None
    if ref in known and (found is None or found.bundled):
        return ref
    if found is None and not resources.looks_like_path(ref):
        problems.append(
            Problem(
                *where,
                f"unknown policy; {did_you_mean(ref, known)}allowed: "
                f"{', '.join(known)}, or a path to a policy YAML file",
                show(ref),
            )
        )
        return ref
    path = found.path if found is not None else _existing(ref, base)
    if not path.is_file():
        problems.append(
            Problem(
                *where,
                f"policy file {path} does not exist (allowed: a policy name from "
                "`archsim list` or an existing policy YAML file)",
                show(ref),
            )
        )
        return ref
    try:
        load_policy_file(path, search=search)
    except PolicyError as exc:
        problems.append(
            Problem(
                *where,
                "the policy file has problems: " + "; ".join(p.render(exc.file) for p in exc.problems),
                show(ref),
            )
        )
    return str(path.resolve())


def _check_paths(
    model: WorkloadModel, doc: Document, base: Path, problems: list[Problem]
) -> tuple[str, str | None]:
    source = model.calibration.source
    if source != SYNTHETIC:
        path = _existing(source, base)
        if path.exists():
            source = str(path.resolve())
        else:
            problems.append(
                Problem(
                    doc.line_of(("calibration", "source")),
                    "calibration.source",
                    f"does not exist (resolved to {path}; allowed: 'synthetic', an "
                    "ImageFolder directory or a .npy/.pt file)",
                    show(model.calibration.source),
                )
            )
    checkpoint = model.checkpoint
    if checkpoint is not None:
        path = _existing(checkpoint, base)
        if path.is_file():
            checkpoint = str(path.resolve())
        else:
            what = "is not a file" if path.exists() else "does not exist"
            problems.append(
                Problem(
                    doc.line_of(("checkpoint",)),
                    "checkpoint",
                    f"{what} (resolved to {path}; allowed: a local weights file, or null)",
                    show(model.checkpoint),
                )
            )
    return source, checkpoint


def _validate(
    doc: Document,
    base: Path,
    default_name: str,
    source_file: Path | None,
    search: Sequence[str | os.PathLike],
) -> Workload:
    model, problems = validate_document(doc, WorkloadModel, WorkloadError, "a workload file")
    policy = _policy(model.policy, doc, base, search, problems)
    source, checkpoint = _check_paths(model, doc, base, problems)
    if problems:
        raise WorkloadError(doc.file, problems)
    cal = model.calibration
    return Workload(
        name=model.name or default_name,
        model=model.model,
        resolution=model.resolution,
        batch=model.batch,
        policy=policy,
        seed=model.seed,
        calibration=Calibration(samples=cal.samples, batch_size=cal.batch_size, source=source),
        checkpoint=checkpoint,
        source_file=source_file,
        description=model.description.strip(),
    )


# -- locating and loading --------------------------------------------------------------------------


def list_workloads(search: Sequence[str | os.PathLike] = ()) -> list[str]:
    """Names of the workloads a name can reach (search folders and the bundled ones), sorted."""
    return resources.names("workload", search)


def resolve_workload_file(name_or_path: str | os.PathLike, search: Sequence[str | os.PathLike] = ()) -> Path:
    """The YAML file a workload name or path refers to; WorkloadError if there is none."""
    try:
        return resources.resolve("workload", name_or_path, extra=search).resolve()
    except resources.ResourceError as err:
        raise WorkloadError(None, str(err)) from None


def _override_text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(overrides.items()))


def load_workload(
    name_or_path: str | os.PathLike, *, search: Sequence[str | os.PathLike] = (), **overrides: Any
) -> Workload:
    """Load, validate and return a workload; ``overrides`` replace fields after loading.

    ``name_or_path``: a name ("efficientvit_b1", see :mod:`archsim.resources`) or a YAML path.
    ``search``: user folders searched before ``ARCHSIM_PATH`` and the bundled files.
    ``overrides``: any field (``resolution=256``, ``policy="fp32"``, ``seed=3``,
    ``checkpoint="w.pth"``, ``calibration={"samples": 64}`` merges into the calibration
    section). Overrides whose value is None are ignored. Relative paths in overrides are
    relative to the current directory; in the file, relative to the file's directory.
    """
    path = resolve_workload_file(name_or_path, search)
    doc = read_document(path, WorkloadError, "a workload YAML file")
    # Validate the file as written first, so a bad file is reported as such even when an override
    # would have masked the bad value.
    workload = _validate(doc, path.parent, path.stem, path, search)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return workload
    merged = {k: v for k, v in dataclasses.asdict(workload).items() if k in WorkloadModel.model_fields}
    if isinstance(overrides.get("calibration"), Calibration):
        overrides["calibration"] = dataclasses.asdict(overrides["calibration"])
    if isinstance(overrides.get("calibration"), dict):
        overrides = {**overrides, "calibration": {**merged["calibration"], **overrides["calibration"]}}
    merged.update(overrides)
    where = Document(
        file=f"{path} (with overrides {_override_text(overrides)})", path=path, sha256=doc.sha256, data=merged
    )
    return _validate(where, Path.cwd(), path.stem, path, search)
