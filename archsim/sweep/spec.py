"""Sweep files: the YAML schema and its loader (the :mod:`archsim.configfile` style).

A sweep file names a base workload and architecture, the points to run and what to collect::

    name: sweep_b1                     # optional, default: the file name
    workload: efficientvit_b1          # base workload: a name or a path (relative to this file)
    arch: m2vit                        # base architecture: a name or a path (relative to this file)
    set: {workload.calibration.samples: 32}   # fixed overrides of every point (optional)
    values: false                      # compute every tile's values (default false: timing and energy)
    metrics: [latency_s, energy_j, edp_js, engines.*.utilization, dram.bytes_read]
    derived:                           # columns computed from each point (archsim/sweep/derived.py)
      budget: {expr: "arch.engines.mpma.rows * 32", unit: "8x8 multipliers"}
    blocks:                            # the points are every block's points, in order
      - name: m2vit
        grid: {engines.sat.rows: [16, 32, 64]}       # every combination of the lists
        zip: {dram.peak_bandwidth: ["9.6 GB/s", "19.2 GB/s"], dram.latency: ["80 ns", "60 ns"]}  # paired
      - name: baseline
        set: {arch: uniform_int8, workload.policy: uniform_w8a8}
        random: {points: 4, seed: 0, axes: {buffers.act_buffer.capacity: ["256 KiB", "1 MiB"]}}

Without ``blocks`` the top level's ``grid`` / ``zip`` / ``random`` / ``derived`` form the one block.
Keys are the override keys of :mod:`archsim.overrides` (``workload.*`` or architecture fields), plus
``workload`` and ``arch`` themselves (another workload or architecture file). docs/sweeps.md has the
semantics of every field.
"""

from __future__ import annotations

import ast
import os
import re
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
    boolean,
    choice,
    dotted,
    integer,
    nonempty_text,
    number,
    read_document,
    show,
    text,
    validate_document,
)
from archsim.errors import ConfigError
from archsim.overrides import ARCH, WORKLOAD, check_key
from archsim.sweep.metrics import DEFAULT_METRICS, check_metric

SCALES = ("linear", "log")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REFS = (WORKLOAD, ARCH)  # keys whose value is a file reference, not a field value


class SweepError(ConfigFileError):
    """A sweep file that cannot be used; every problem as ``file:line: field: value: what is allowed``."""

    what = "sweep"


def _expression(value: object) -> str:
    expr = nonempty_text(value)
    try:
        ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise ValueError(
            f"must be an expression (a formula of names, numbers, + - * / ** and functions); "
            f"{err.msg} at column {err.offset}"
        ) from None
    return expr


def _metric(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a metric name such as latency_s or engines.*.utilization")  # noqa: TRY004
    check_metric(value)  # ValueError saying what is allowed
    return value


def _values(value: object) -> list:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of values like [16, 32, 64]")
    return value


NonEmpty = Annotated[str, BeforeValidator(nonempty_text)]
Values = Annotated[list, BeforeValidator(_values)]


class RangeModel(StrictModel):
    low: Annotated[float, number()] = Field(description="smallest value")
    high: Annotated[float, number()] = Field(description="largest value")
    scale: Annotated[str, choice(SCALES, "scale")] = Field(
        "linear", description="linear: uniform in [low, high]; log: uniform in log (low > 0) (default linear)"
    )
    integer: Annotated[bool, boolean()] = Field(False, description="round to an integer (default false)")
    unit: NonEmpty | None = Field(
        None, description="unit written after the number, e.g. 'GB/s' (default none)"
    )


class RandomModel(StrictModel):
    points: Annotated[int, integer(1)] = Field(description="how many points to draw, an integer >= 1")
    seed: Annotated[int, integer(0)] = Field(0, description="seed of the draws, an integer >= 0 (default 0)")
    axes: dict[str, Values | RangeModel] = Field(
        min_length=1, description="key -> a list to draw from, or a range {low, high, scale, integer, unit}"
    )


class DerivedModel(StrictModel):
    expr: Annotated[str, BeforeValidator(_expression)] = Field(
        description="formula over arch.*, workload.* and the metrics (docs/sweeps.md)"
    )
    unit: NonEmpty = Field(description="unit of the value, e.g. '8x8 multipliers' or 'J*s'")


class BlockModel(StrictModel):
    name: NonEmpty | None = Field(None, description="name of the block (default: block1, block2, ...)")
    set: dict[str, Any] = Field(default_factory=dict, description="fixed overrides of this block's points")
    grid: dict[str, Values] = Field(default_factory=dict, description="key -> values; every combination")
    zip: dict[str, Values] = Field(
        default_factory=dict, description="key -> values, all lists of one length, taken side by side"
    )
    random: RandomModel | None = Field(None, description="seeded random draws: {points, seed, axes}")
    derived: dict[str, DerivedModel] = Field(
        default_factory=dict,
        description="name -> {expr, unit}; replaces the sweep's formula of the same name for this block",
    )


class SweepModel(StrictModel):
    name: NonEmpty | None = Field(None, description="sweep name (default: the file name without .yaml)")
    description: Annotated[str, BeforeValidator(text)] = Field("", description="free text")
    workload: NonEmpty = Field(description="base workload: a name (`archsim list`) or a YAML path")
    arch: NonEmpty = Field(description="base architecture: a name (`archsim list`) or a YAML path")
    set: dict[str, Any] = Field(default_factory=dict, description="fixed overrides of every point")
    values: Annotated[bool, boolean()] = Field(
        False, description="compute every tile's values (default false)"
    )
    metrics: list[Annotated[str, BeforeValidator(_metric)]] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        min_length=1,
        description="result fields collected as columns (default: " + ", ".join(DEFAULT_METRICS) + ")",
    )
    derived: dict[str, DerivedModel] = Field(default_factory=dict, description="name -> {expr, unit}")
    grid: dict[str, Values] = Field(default_factory=dict, description="key -> values; every combination")
    zip: dict[str, Values] = Field(default_factory=dict, description="key -> values taken side by side")
    random: RandomModel | None = Field(None, description="seeded random draws: {points, seed, axes}")
    blocks: list[BlockModel] | None = Field(
        None, min_length=1, description="blocks of points (instead of top-level grid/zip/random)"
    )


# -- the validated sweep ------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    scale: str = "linear"
    integer: bool = False
    unit: str | None = None


@dataclass(frozen=True)
class RandomAxes:
    points: int
    seed: int
    axes: dict[str, list | Range]


@dataclass(frozen=True)
class Derived:
    expr: str
    unit: str


@dataclass(frozen=True)
class Block:
    name: str
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    random: RandomAxes | None = None
    derived: dict[str, Derived] = field(default_factory=dict)  # the sweep's formulas with the block's own


@dataclass(frozen=True)
class Sweep:
    """A validated sweep. ``folder`` is where relative workload and architecture paths start."""

    name: str
    workload: str
    arch: str
    blocks: tuple[Block, ...]
    metrics: tuple[str, ...] = DEFAULT_METRICS
    values: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    folder: Path = field(default_factory=Path.cwd)
    file: str | None = None
    sha256: str | None = None
    search: tuple[str, ...] = ()

    def derived_names(self) -> list[str]:
        names: dict[str, None] = {}
        for block in self.blocks:
            names.update(dict.fromkeys(block.derived))
        return list(names)

    def derived_unit(self, name: str) -> str:
        return next(b.derived[name].unit for b in self.blocks if name in b.derived)


def _random(model: RandomModel | None) -> RandomAxes | None:
    if model is None:
        return None
    axes = {
        k: (Range(**v.model_dump()) if isinstance(v, RangeModel) else list(v)) for k, v in model.axes.items()
    }
    return RandomAxes(model.points, model.seed, axes)


def _derived(items: dict[str, DerivedModel]) -> dict[str, Derived]:
    return {k: Derived(v.expr, v.unit) for k, v in items.items()}


# -- cross-checks -------------------------------------------------------------------------------


def _key_problems(doc: Document, loc: tuple, keys: Sequence[str], refs_allowed: bool = True) -> list[Problem]:
    problems = []
    for key in keys:
        if refs_allowed and key in REFS:
            continue
        try:
            check_key(key, "key")
        except ConfigError as err:
            problems.append(
                Problem(doc.line_of(loc + (key,)), dotted(loc + (key,)), str(err).split(": ", 1)[1])
            )
    return problems


def _ref_problems(
    doc: Document, loc: tuple, key: str, value: object, folder: Path, search: Sequence
) -> list[Problem]:
    where = (doc.line_of(loc), dotted(loc))
    if not isinstance(value, str) or not value.strip():
        return [Problem(*where, "must be a name (`archsim list`) or a YAML path", show(value))]
    try:
        resources.resolve("arch" if key == ARCH else "workload", value, base=folder, extra=search)
    except resources.ResourceError as err:
        return [Problem(*where, err.reason, show(value))]
    return []


def _block_problems(
    doc: Document, loc: tuple, block: BlockModel | SweepModel, folder: Path, search: Sequence
) -> list[Problem]:
    problems = []
    parts = {
        "set": block.set,
        "grid": block.grid,
        "zip": block.zip,
        "random.axes": block.random.axes if block.random else {},
    }
    seen: dict[str, str] = {}
    for part, mapping in parts.items():
        ploc = loc + tuple(part.split("."))
        problems += _key_problems(doc, ploc, list(mapping))
        for key in mapping:
            if key in seen:
                problems.append(
                    Problem(
                        doc.line_of(ploc + (key,)),
                        dotted(ploc + (key,)),
                        f"also in {seen[key]} of this block; give each key once",
                    )
                )
            seen.setdefault(key, part)
            if key in REFS:
                values = mapping[key]
                if part == "set":
                    values = [values]
                elif isinstance(values, RangeModel) or not isinstance(values, list):
                    problems.append(
                        Problem(
                            doc.line_of(ploc + (key,)),
                            dotted(ploc + (key,)),
                            "a workload or architecture is drawn from a list, not a range",
                        )
                    )
                    continue
                for i, value in enumerate(values):
                    vloc = ploc + (key,) if part == "set" else ploc + (key, i)
                    problems += _ref_problems(doc, vloc, key, value, folder, search)
    lengths = {k: len(v) for k, v in block.zip.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        problems.append(
            Problem(
                doc.line_of(loc + ("zip",)),
                dotted(loc + ("zip",)),
                f"the lists of a zip must have one length (found {listed})",
            )
        )
    if block.random is not None:
        for key, axis in block.random.axes.items():
            aloc = loc + ("random", "axes", key)
            if isinstance(axis, RangeModel):
                if axis.high < axis.low:
                    problems.append(Problem(doc.line_of(aloc), dotted(aloc), "high must be >= low"))
                if axis.scale == "log" and axis.low <= 0:
                    problems.append(Problem(doc.line_of(aloc), dotted(aloc), "a log scale needs low > 0"))
    for name in block.derived:
        if not _NAME.match(name):
            dloc = loc + ("derived", name)
            problems.append(
                Problem(
                    doc.line_of(dloc),
                    dotted(dloc),
                    "a derived column's name must be an identifier (letters, digits, _)",
                )
            )
    return problems


def _problems(model: SweepModel, doc: Document, folder: Path, search: Sequence) -> list[Problem]:
    problems = []
    for key in (WORKLOAD, ARCH):
        problems += _ref_problems(doc, (key,), key, getattr(model, key), folder, search)
    if model.blocks is not None:
        for part in ("grid", "zip", "random"):
            if getattr(model, part):
                problems.append(
                    Problem(
                        doc.line_of((part,)), part, "with blocks, put grid, zip and random inside the blocks"
                    )
                )
        problems += _key_problems(doc, ("set",), list(model.set))
        for key in (k for k in model.set if k in REFS):
            problems += _ref_problems(doc, ("set", key), key, model.set[key], folder, search)
        for i, block in enumerate(model.blocks):
            problems += _block_problems(doc, ("blocks", i), block, folder, search)
        names = [b.name for b in model.blocks if b.name]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(Problem(doc.line_of(("blocks",)), "blocks", f"block name {name!r} is used twice"))
    else:
        problems += _block_problems(doc, (), model, folder, search)
    return problems


def load_sweep(source: str | os.PathLike | dict, *, search: Sequence[str | os.PathLike] = ()) -> Sweep:
    """Read and validate a sweep file, or a mapping of the same fields (a sweep script's; relative
    paths in it start at the current directory); :class:`SweepError` listing every problem."""
    if isinstance(source, dict):
        doc = Document(file="sweep", path=Path.cwd() / "sweep.yaml", sha256=None, data=source)
        return _load(doc, Path.cwd(), "sweep", search)
    doc = read_document(source, SweepError, "a sweep YAML file")
    return _load(doc, Path(source).resolve().parent, Path(source).stem, search)


def _load(doc: Document, folder: Path, default_name: str, search: Sequence) -> Sweep:
    model, problems = validate_document(doc, SweepModel, SweepError, "a sweep file")
    problems += _problems(model, doc, folder, search)
    if problems:
        raise SweepError(doc.file, problems)
    top_derived = _derived(model.derived)
    if model.blocks is None:
        blocks = (Block("all", {}, dict(model.grid), dict(model.zip), _random(model.random), top_derived),)
        fixed = dict(model.set)
    else:
        blocks = tuple(
            Block(
                b.name or f"block{i + 1}",
                dict(b.set),
                dict(b.grid),
                dict(b.zip),
                _random(b.random),
                {**top_derived, **_derived(b.derived)},
            )
            for i, b in enumerate(model.blocks)
        )
        fixed = dict(model.set)
    return Sweep(
        name=model.name or default_name,
        workload=model.workload,
        arch=model.arch,
        blocks=blocks,
        metrics=tuple(dict.fromkeys(model.metrics)),
        values=model.values,
        fixed=fixed,
        description=model.description.strip(),
        folder=folder,
        file=str(doc.path) if doc.lines is not None else None,
        sha256=doc.sha256,
        search=tuple(str(s) for s in search),
    )
