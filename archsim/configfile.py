"""One validation style for every archsim YAML file: architecture, workload, policy (sweeps next).

A loader reads, validates and cross-checks in three calls and raises one error listing every
problem, each as ``file:line: field: value: what is allowed``::

    doc = read_document(path, MyError)                 # bytes (sha256), safe YAML, lines, duplicate keys
    model, problems = validate(MyModel, doc, context)  # pydantic: every error at once, translated
    problems += my_cross_checks(model, doc)            # what a schema cannot say, at doc.line_of(loc)
    if problems:
        raise MyError(doc.file, problems)

Rules for a schema (the architecture's, :mod:`archsim.arch.schema`, is the model to copy):

- one :class:`StrictModel` subclass per YAML mapping (unknown keys are errors, with the nearest
  valid key suggested; models are frozen);
- every field has ``Field(description=...)``: it is shown when the field is missing, and
  documents the format (docs/configs.md);
- scalar fields use the validators below (quantities: :mod:`archsim.arch.units`), each raising
  ``ValueError`` whose text says only what is allowed: the renderer adds the value, so pydantic's
  own wording never reaches a user.

Why pydantic + PyYAML's node tree: pydantic reports every error with its location at once and
is well kept; the composed node tree gives each location its line and shows duplicated keys,
which a plain ``safe_load`` silently overwrites. Only the *safe* loader is used.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from archsim.errors import ConfigError

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's C loader when present (10x faster)
# [choice] YAML nodes after alias expansion: ~100x the largest bundled file; stops alias bombs
MAX_NODES = 100_000
SHOW_CHARS = 60  # [choice] longest value echoed in a message
MERGE_KEY = "<<"  # YAML merge key (tag:yaml.org,2002:merge): its entries are merged, not a field

Loc = tuple  # a field path: keys (str) and list indices (int)


# -- problems and the error ------------------------------------------------------------------


def show(value: object) -> str:
    """A value as a message shows it: its repr, cut to SHOW_CHARS."""
    text = repr(value)
    return text if len(text) <= SHOW_CHARS else text[: SHOW_CHARS - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, rendered ``file:line: field: value: message``."""

    line: int | None  # 1-based; None when there is no line to point at (file not found)
    field: str  # dotted path, e.g. "engines.mpma.modes.single.lanes"; "" for the whole file
    message: str  # what is allowed (and the next step, when there is an obvious one)
    value: str | None = None  # the offending value as shown (see show()); None when there is none

    def render(self, file: str | None) -> str:
        parts = [f"{file}:{self.line}" if file and self.line else (file or "")]
        parts += [p for p in (self.field, self.value) if p]
        parts.append(self.message)
        return ": ".join(p for p in parts if p)


class ConfigFileError(ConfigError):
    """A config file (or a name or override standing for one) that cannot be used.

    ``problems`` lists every problem found; ``str()`` renders them one per line with a count
    header when there are several. Subclasses set ``what`` (the kind of file, for the header).
    """

    what = "config file"

    def __init__(self, file: str | None, problems: Sequence[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(None, "", problems)]
        self.file = file
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.field))
        lines = [p.render(file) for p in self.problems]
        if len(lines) > 1:
            head = f"{file or 'input'}: {len(lines)} problems in {self.what}:"
            lines = [head] + ["  " + line for line in lines]
        super().__init__("\n".join(lines))


# -- reading ----------------------------------------------------------------------------------


@dataclass
class Document:
    """A YAML file read and parsed: its data, the line of every field, problems found so far."""

    file: str  # as given (messages name the file the way the user wrote it)
    path: Path
    sha256: str  # of the file's bytes
    data: Any
    lines: dict[Loc, int] | None = None  # None: data not from a file (overrides), no lines to show
    problems: list[Problem] = field(default_factory=list)  # duplicated keys

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that has one (1 for the top level)."""
        if self.lines is None:
            return None
        for n in range(len(loc), 0, -1):
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 1


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path, file: str, error: type[ConfigFileError], what: str) -> bytes:
    """The file's bytes, or ``error`` saying why they cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(file, "file not found") from None
    except IsADirectoryError:
        raise error(file, f"is a directory, expected {what}") from None
    except OSError as err:
        raise error(file, f"cannot read: {err.strerror or err}") from None


def read_document(path: str | Path, error: type[ConfigFileError], what: str = "a YAML file") -> Document:
    """Read ``path`` with the safe loader; ``error`` for unreadable files and invalid YAML.

    The returned document's ``problems`` already hold duplicated keys (YAML would keep only the
    last); the caller adds schema and cross-check problems and raises them all together.
    """
    file = str(path)
    raw = read_bytes(Path(path), file, error, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(file, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    root = _compose(text, file, error)
    lines, problems = index_lines(root, file, error)
    data = _construct(text, file, error) if root is not None else None
    return Document(
        file=file, path=Path(path), sha256=sha256_bytes(raw), data=data, lines=lines, problems=problems
    )


def _yaml_problem(err: yaml.YAMLError, text: str) -> Problem:
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text.count("\n", 0, err.position) + 1
        return Problem(
            line,
            "",
            f"invalid YAML: character {err.character:#06x} is not allowed in YAML "
            "(allowed: printable Unicode, tab, line breaks)",
        )
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        detail = err.problem or "syntax error"
        if err.context:
            detail = f"{err.context}, {detail}"
        return Problem(mark.line + 1 if mark else None, "", f"invalid YAML: {detail}")
    return Problem(None, "", f"invalid YAML: {err}")  # reader errors (bad characters) carry no mark


def _load(text: str, file: str, error: type[ConfigFileError], step: str):
    """``step`` ("get_single_node" or "get_single_data") of the safe loader; ``error`` for invalid YAML.

    On an error the text is parsed again by PyYAML's pure-Python loader, whose wording and line are
    what the message shows: libyaml (used when present, for speed) words errors differently, and a
    message must not depend on how PyYAML was built.
    """
    for loader_class in dict.fromkeys((_SAFE_LOADER, yaml.SafeLoader)):
        loader = None
        try:
            loader = loader_class(text)  # the Python reader checks the characters here
            return getattr(loader, step)()
        except yaml.YAMLError as err:
            problem = _yaml_problem(err, text)
        except RecursionError:
            raise error(file, "invalid YAML: nested too deeply") from None
        finally:
            if loader is not None:
                loader.dispose()
    raise error(file, [problem])


def _compose(text: str, file: str, error: type[ConfigFileError]):
    return _load(text, file, error, "get_single_node")


def _construct(text: str, file: str, error: type[ConfigFileError]):
    # composed again: construction flattens merge keys in place, and the line index must see
    # the file as written; errors here are tags the safe loader refuses (!!python/object)
    return _load(text, file, error, "get_single_data")


def index_lines(root, file: str, error: type[ConfigFileError]) -> tuple[dict[Loc, int], list[Problem]]:
    """The 1-based line of every field path, and a problem per duplicated mapping key.

    Raises ``error`` for a recursive alias (a document that contains itself) and for documents
    of more than MAX_NODES nodes after alias expansion (an "alias bomb").
    """
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    count = 0

    def walk(node, loc: Loc, active: frozenset[int]) -> None:
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise error(
                file,
                f"invalid YAML: more than {MAX_NODES} nodes after expanding aliases "
                "(allowed: a document of that size or less)",
            )
        if id(node) in active:
            raise error(
                file,
                [
                    Problem(
                        node.start_mark.line + 1,
                        dotted(loc),
                        "invalid YAML: a recursive alias (the node contains itself)",
                    )
                ],
            )
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line = key_node.start_mark.line + 1
                if key == MERGE_KEY and key_node.tag == "tag:yaml.org,2002:merge":
                    walk(value_node, loc, active)  # merged entries belong to this mapping
                    continue
                if key in first_line:
                    problems.append(
                        Problem(
                            line,
                            dotted(loc + (key,)),
                            f"duplicated key (first at line "
                            f"{first_line[key]}); YAML would silently keep only the last "
                            "one",
                        )
                    )
                else:
                    first_line[key] = line
                lines[loc + (key,)] = line  # the last occurrence: the value YAML keeps
                walk(value_node, loc + (key,), active)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[loc + (i,)] = item.start_mark.line + 1
                walk(item, loc + (i,), active)

    if root is not None:
        try:
            walk(root, (), frozenset())
        except RecursionError:
            raise error(file, "invalid YAML: nested too deeply") from None
    return lines, problems


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- validation -------------------------------------------------------------------------------


class StrictModel(BaseModel):
    """Base of every schema model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def top_level_problem(doc: Document, model: type[BaseModel], what: str) -> Problem | None:
    """A problem when the document is not a mapping (the first thing every loader checks)."""
    if isinstance(doc.data, dict):
        return None
    got = "an empty file" if doc.data is None else f"a {type(doc.data).__name__}"
    keys = ", ".join(model.model_fields)
    return Problem(1, "", f"{what} must be a mapping with keys {keys}; got {got}")


def validate(
    model: type[BaseModel], doc: Document, context: dict | None = None, data: Any = None
) -> tuple[BaseModel | None, list[Problem]]:
    """Validate ``data`` (default: the document's) against ``model``; (instance or None, problems)."""
    data = doc.data if data is None else data
    try:
        return model.model_validate(data, context=context), []
    except ValidationError as err:
        return None, [translate(e, doc, model) for e in err.errors(include_url=False)]
    except RecursionError:
        return None, [Problem(1, "", "nested too deeply to validate")]


def validate_document(
    doc: Document,
    model: type[BaseModel],
    error: type[ConfigFileError],
    what: str,
    context: dict | None = None,
) -> tuple[BaseModel, list[Problem]]:
    """The steps every loader starts with: a mapping at the top, then the schema.

    Raises ``error`` with every problem when either fails; else returns the instance and the
    problems found so far (duplicated keys), to which the loader adds its cross-checks.
    """
    top = top_level_problem(doc, model, what)
    if top is not None:
        raise error(doc.file, [top])
    instance, problems = validate(model, doc, context)
    problems = doc.problems + problems
    if instance is None:
        raise error(doc.file, problems)
    return instance, problems


def suggest(word: object, options: Iterable[str]) -> str | None:
    """The option closest to ``word`` (difflib), or None when nothing is close."""
    hits = difflib.get_close_matches(str(word), list(options), n=1)
    if not hits and isinstance(word, str):
        hits = difflib.get_close_matches(word.lower(), list(options), n=1)
    return hits[0] if hits else None


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """'did you mean 'x'? ' or '' (a prefix for an 'allowed: ...' list)."""
    hit = suggest(word, options)
    return f"did you mean {hit!r}? " if hit is not None and hit != word else ""


def translate(error: dict, doc: Document, root: type[BaseModel]) -> Problem:
    """One pydantic error as a Problem: line, dotted field, value shown, what is allowed."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    value = show(error.get("input"))
    if kind == "missing":
        info = field_info(root, loc)
        what = f" ({info.description})" if info is not None and info.description else ""
        return Problem(doc.line_of(loc[:-1]), dotted(loc), f"missing required field{what}")
    if kind == "extra_forbidden":
        allowed = list(model_at(root, loc[:-1]).model_fields) if model_at(root, loc[:-1]) else []
        hint = did_you_mean(loc[-1], allowed)
        return Problem(doc.line_of(loc), dotted(loc), f"unknown key; {hint}allowed: {', '.join(allowed)}")
    if kind == "value_error":
        message = str(error["ctx"]["error"])
    elif kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        message = "must be a mapping of keys to values"
    elif kind == "list_type":
        message = "must be a list like [a, b]"
    elif kind == "string_type":
        message = "must be a string"
    elif kind == "too_short":
        message = "must not be empty"
    elif kind == "recursion_loop":
        message = "refers to itself"
    else:  # pydantic's own wording: only for types the validators above do not cover
        message = error["msg"][0].lower() + error["msg"][1:]
    return Problem(doc.line_of(loc), dotted(loc), message, value)


def _unwrap(annotation):
    """Strip Annotated[...] and Optional[...] to the underlying type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The schema model describing the mapping at ``loc`` (None if it is not a model)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if inspect.isclass(current) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if inspect.isclass(current) and issubclass(current, BaseModel) else None


def field_info(root: type[BaseModel], loc: Loc):
    model = model_at(root, loc[:-1])
    return model.model_fields.get(loc[-1]) if model is not None and loc else None


def models_of(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every model reachable from its fields (for checks over a whole schema)."""
    seen: list[type[BaseModel]] = []

    def visit(annotation) -> None:
        annotation = _unwrap(annotation)
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.append(annotation)
                for info in annotation.model_fields.values():
                    visit(info.annotation)
        elif typing.get_origin(annotation) in (dict, list, tuple):
            for arg in typing.get_args(annotation):
                visit(arg)

    visit(root)
    return seen


# -- scalar validators (messages say what is allowed; the value is added by translate) ---------


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(lo: int | None = None, hi: int | None = None, what: str | None = None):
    """An int (not a bool, not a float) in [lo, hi]; ``what`` replaces the generic wording."""
    if what is None:
        if lo is not None and hi is not None:
            what = f"an integer in [{lo}, {hi}]"
        elif lo is not None:
            what = f"an integer >= {lo}"
        else:
            what = "an integer"

    def check(value: object) -> int:
        if not is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"must be {what}")
        return value

    return BeforeValidator(check)


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """An int or float (not a bool) in [lo, hi] (lo excluded when ``lo_open``); returned as float."""
    parts = []
    if lo is not None:
        parts.append(f"> {lo:g}" if lo_open else f">= {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    what = "a number" + (" " + " and ".join(parts) if parts else "")

    def check(value: object) -> float:
        ok = is_number(value) and value == value  # NaN is not a number here
        if ok and lo is not None:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value <= hi
        if not ok:
            raise ValueError(f"must be {what}")
        return float(value)

    return BeforeValidator(check)


def boolean():
    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    return BeforeValidator(check)


def choice(values: Sequence[str], what: str):
    """One of ``values`` (strings); the message suggests the nearest and lists them all."""
    allowed = list(values)

    def check(value: object) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"unknown {what}; {did_you_mean(value, allowed)}allowed: {', '.join(allowed)}")
        return value

    return BeforeValidator(check)


def switch(what: str):
    """``on`` or ``off``; YAML's unquoted on / off / true / false (read as booleans) are accepted."""

    def check(value: object) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        if value in ("on", "off"):
            return value
        raise ValueError(f"{what} must be on or off (allowed: on, off; YAML true / false mean on / off)")

    return BeforeValidator(check)


def nonempty_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value
