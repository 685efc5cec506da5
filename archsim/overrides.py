"""Overrides: one syntax for changing any architecture or workload field, from the command line
(``archsim run ... --set KEY=VALUE``) and from sweep files (axes over the same keys).

**Keys** are dotted paths into the YAML document:

- ``workload.<field>`` changes the workload: ``workload.resolution``, ``workload.policy``,
  ``workload.seed``, ``workload.calibration.samples``, ... (every field of a workload YAML);
- any other key changes the architecture: ``engines.sat.rows``, ``dram.peak_bandwidth``,
  ``buffers.act_buffer.capacity``, ``energy.mac_int8.value`` (an entry of a named ``energy_table``
  becomes an ``energy_overrides`` entry: :func:`table_entry_overrides`), ``params.min_tiles``, ...; an
  explicit ``arch.`` prefix is accepted too (``arch.engines.sat.rows``). No architecture YAML has a
  top-level ``workload`` key, so the two never clash.

**Values** are YAML, read as if written in the file: ``32`` is an integer, ``38.4 GB/s`` a
quantity string, ``[uniform, apot]`` a list, ``null`` nothing (quote in the shell as needed:
``--set dram.peak_bandwidth="38.4 GB/s"``).

**Validation is the loaders' own**: the override is applied to the *parsed document* and the
result goes through the normal loader (:func:`archsim.arch.loader.load_arch_document`,
:func:`archsim.workload.config.load_workload`), so units, ranges and cross-checks are exactly
those of the YAML, and an error names the override instead of a line:
``arch_configs/m2vit.yaml: --set engines.sat.rows: 0: must be a positive integer``.
A key that does not exist (in the file or, for a field with a default, in the schema) is an
error naming it and the nearest valid keys; an override never creates an engine, buffer or
energy entry of its own.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from archsim.configfile import ConfigFileError, Document, Problem, dotted, model_at, read_document, show
from archsim.errors import ConfigError

WORKLOAD = "workload"
ARCH = "arch"
CLI_ORIGIN = "--set"  # how a command-line override is named in messages
SUGGESTIONS = 3  # [choice] nearest valid keys named for an unknown key
_KEY = re.compile(r"^[A-Za-z0-9_][\w-]*(\.[A-Za-z0-9_][\w-]*)*$")


@dataclass(frozen=True)
class Override:
    """One ``KEY=VALUE``: ``key`` as written, ``value`` parsed, ``origin`` names it in messages."""

    key: str
    value: Any
    origin: str = CLI_ORIGIN

    @property
    def target(self) -> str:
        return WORKLOAD if self.key.split(".", 1)[0] == WORKLOAD else ARCH

    @property
    def path(self) -> tuple[str, ...]:
        parts = tuple(self.key.split("."))
        return parts[1:] if parts[0] in (WORKLOAD, ARCH) else parts

    @property
    def label(self) -> str:
        return f"{self.origin} {self.key}"


def check_key(key: str, origin: str = CLI_ORIGIN) -> str:
    """``key`` if it is a dotted key with at least one field (ConfigError otherwise)."""
    if not isinstance(key, str) or not _KEY.match(key) or key in (WORKLOAD, ARCH):
        raise ConfigError(
            f"{origin} {key!r}: not a key; allowed: a dotted field path such as "
            "engines.sat.rows, dram.peak_bandwidth or workload.resolution"
        )
    return key


def parse_set(text: str) -> Override:
    """``KEY=VALUE`` as given to ``--set``; the value is read as YAML (ConfigError when it is not)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set engines.sat.rows=32")
    check_key(key)
    if not raw.strip():
        raise ConfigError(f"--set {key}: missing value after '=' (write null for no value)")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        detail = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--set {key}: {show(raw)}: not a YAML value ({detail})") from None
    return Override(key, value)


def split(overrides: Iterable[Override]) -> tuple[list[Override], list[Override]]:
    """(architecture overrides, workload overrides), each in the order given."""
    items = list(overrides)
    return [o for o in items if o.target == ARCH], [o for o in items if o.target == WORKLOAD]


# -- applying to a document ----------------------------------------------------------------------


def _nearest(word: str, options: Sequence[str]) -> str:
    hits = difflib.get_close_matches(word, options, n=SUGGESTIONS)
    return f"did you mean {', '.join(repr(h) for h in hits)}? " if hits else ""


def key_problems(data: Any, overrides: Iterable[Override], root: type[BaseModel]) -> list[Problem]:
    """A problem for every override whose key does not exist: each step must be a key of the
    document or a field of the schema at that place (a field with a default)."""
    problems = []
    for o in overrides:
        node: Any = data
        for i, part in enumerate(o.path):
            here = o.path[:i]
            model = model_at(root, here)
            options = list(node) if isinstance(node, dict) else []
            options += [f for f in (model.model_fields if model is not None else ()) if f not in options]
            if part not in options:
                where = f" in {dotted(here)}" if here else ""
                allowed = ", ".join(str(x) for x in options) or "none"
                problems.append(
                    Problem(
                        None,
                        o.label,
                        f"unknown key {part!r}{where}; {_nearest(part, options)}allowed: {allowed}",
                    )
                )
                break
            node = node.get(part) if isinstance(node, dict) else None
            if i < len(o.path) - 1 and node is not None and not isinstance(node, dict):
                problems.append(
                    Problem(
                        None,
                        o.label,
                        f"{dotted(o.path[: i + 1])} is a value ({show(node)}), not a mapping with keys",
                    )
                )
                break
    return problems


def applied(data: dict, overrides: Iterable[Override]) -> dict:
    """A deep copy of ``data`` with every override set (later ones win)."""
    out = copy.deepcopy(data)
    for o in overrides:
        node = out
        for part in o.path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[o.path[-1]] = copy.deepcopy(o.value)
    return out


def _relabel(problem: Problem, overrides: Sequence[Override]) -> Problem:
    for o in reversed(overrides):  # the last override of a key is the one in force
        prefix = dotted(o.path)
        if problem.field == prefix or problem.field.startswith((prefix + ".", prefix + "[")):
            return Problem(None, o.label + problem.field[len(prefix) :], problem.message, problem.value)
    return problem


def relabel(err: ConfigFileError, overrides: Sequence[Override], file: str | None = None) -> ConfigFileError:
    """``err`` with every problem at an overridden field named by its override (no line)."""
    out = type(err)(file or err.file, [_relabel(p, overrides) for p in err.problems])
    return out


def overridden(
    doc: Document, overrides: Sequence[Override], root: type[BaseModel], error: type[ConfigFileError]
) -> Document:
    """``doc`` with the overrides applied to its data; ``error`` listing every unknown key."""
    if not overrides or not isinstance(doc.data, dict):
        return doc  # a document that is not a mapping: the loader says so
    data, overrides = table_entry_overrides(doc.data, overrides)
    problems = key_problems(data, overrides, root)
    if problems:
        raise error(doc.file, problems)
    return Document(
        file=doc.file,
        path=doc.path,
        sha256=doc.sha256,
        data=applied(data, overrides),
        lines=doc.lines,
        problems=list(doc.problems),
    )


def table_entry_overrides(data: dict, overrides: Sequence[Override]) -> tuple[dict, list[Override]]:
    """``energy.<name>.<field>`` of an entry the document's named ``energy_table`` holds (and its own
    ``energy:`` does not) is an ``energy_overrides.<name>.<field>`` of a copy of the table's entry: a
    value set alone gets the source 'assumed: set by an override (the table's value and source)'."""
    table_name = data.get("energy_table")
    inline = data.get("energy") if isinstance(data.get("energy"), dict) else {}
    wanted = [o for o in overrides if len(o.path) == 3 and o.path[0] == "energy" and o.path[1] not in inline]
    if not isinstance(table_name, str) or not wanted:
        return data, list(overrides)
    from archsim.energy.tables import table_names, written_entries

    if table_name not in table_names():
        return data, list(overrides)  # the loader reports the unknown table
    table = written_entries(table_name)
    data = copy.deepcopy(data)
    out = []
    for o in overrides:
        name = o.path[1] if o in wanted else None
        if name is None or name not in table:
            out.append(o)
            continue
        entries = data.setdefault("energy_overrides", {})
        if not isinstance(entries, dict):
            out.append(o)
            continue
        if name not in entries:
            value, source = table[name]
            entries[name] = {
                "value": value,
                "source": f"assumed: set by an override (table {table_name}: {value}, {source})",
            }
        out.append(Override(".".join(("energy_overrides",) + o.path[1:]), o.value, o.origin))
    return data, out


# -- loading with overrides ----------------------------------------------------------------------


def load_arch(path: str | os.PathLike, overrides: Sequence[Override] = (), search: Sequence = ()):
    """The architecture YAML at ``path`` with ``overrides`` (architecture keys) applied, validated by
    the loader; :class:`ArchConfigError` naming each override at fault."""
    from archsim.arch.errors import ArchConfigError
    from archsim.arch.loader import load_arch_document
    from archsim.arch.schema import ArchModel

    overrides = list(overrides)
    doc = read_document(path, ArchConfigError, "an architecture YAML file")
    doc = overridden(doc, overrides, ArchModel, ArchConfigError)
    try:
        return load_arch_document(doc, search=search)
    except ArchConfigError as err:
        if not overrides:
            raise
        raise relabel(err, overrides) from None


def nested(overrides: Iterable[Override]) -> dict[str, Any]:
    """Workload overrides as the keyword arguments of ``load_workload`` (``calibration`` a dict)."""
    return applied({}, overrides)


def load_workload(
    name_or_path: str | os.PathLike, overrides: Sequence[Override] = (), search: Sequence = (), **options: Any
):
    """The workload ``name_or_path`` with ``options`` (``resolution=...``, as the command line's own
    options give them) and ``overrides`` (workload keys) applied; :class:`WorkloadError` naming each
    override at fault. A field set both ways is an error."""
    from archsim.workload.config import WorkloadError, WorkloadModel, resolve_workload_file
    from archsim.workload.config import load_workload as _load

    overrides = list(overrides)
    options = {k: v for k, v in options.items() if v is not None}
    if not overrides:
        return _load(name_or_path, search=search, **options)
    path = resolve_workload_file(name_or_path, search)
    doc = read_document(path, WorkloadError, "a workload YAML file")
    problems = key_problems(doc.data, overrides, WorkloadModel) if isinstance(doc.data, dict) else []
    twice = sorted({o.path[0] for o in overrides} & set(options))
    problems += [
        Problem(
            None, next(o.label for o in overrides if o.path[0] == k), f"also given as --{k}; give it once"
        )
        for k in twice
    ]
    if problems:
        raise WorkloadError(str(path), problems)
    try:
        return _load(path, search=search, **options, **nested(overrides))
    except WorkloadError as err:
        if err.file == str(path):  # the file itself is at fault, overrides aside
            raise
        raise relabel(err, overrides, str(path)) from None


def as_text(overrides: Iterable[Override]) -> dict[str, Any]:
    """The overrides as a result records them: key -> value, in the order given (later ones win)."""
    return {o.key: o.value for o in overrides}
