"""Load an architecture YAML into a validated :class:`archsim.arch.spec.ArchSpec`.

Steps: read the file -> compose the YAML node tree with the *safe* loader (we keep the nodes
to know each field's line and to catch duplicated keys, which PyYAML silently overwrites)
-> construct plain data -> validate with the pydantic schema (all errors at once) ->
cross-checks the schema cannot express -> build the frozen spec. Any problem raises
:class:`ArchConfigError` whose lines read ``file:line: field.path: what is wrong``.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from archsim.arch.coverage import EFFICIENTVIT_KINDS, missing_kinds
from archsim.arch.errors import ArchConfigError, Problem
from archsim.arch.schema import HOLDABLE, ArchModel, energy_dims
from archsim.arch.spec import (
    ArchSpec,
    BufferSpec,
    DramSpec,
    EnergyEntry,
    EngineKind,
    EngineMode,
    EngineSpec,
    InterconnectSpec,
)
from archsim.arch.units import parse_any
from archsim.graph.ir import OpKind

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Loc = tuple  # a field path: keys (str) and list indices (int)


def load_arch(path: str | Path) -> ArchSpec:
    """Parse, validate and build the architecture described by the YAML file at ``path``."""
    file = str(path)
    text = _read(Path(path), file)
    root, data = _parse_yaml(text, file)
    lines, problems = _index_lines(root)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        keys = ", ".join(ArchModel.model_fields)
        raise ArchConfigError(file, [Problem(1, "", f"top level must be a mapping with keys {keys}; got {got}")])

    try:
        model = ArchModel.model_validate(data, context={"energy_dims": energy_dims(data)})
    except ValidationError as err:
        problems += [_translate(e, lines) for e in err.errors(include_url=False)]
        raise ArchConfigError(file, problems) from None

    spec = _build(model, file)
    problems += _cross_checks(model, spec, Path(path), lines)
    if problems:
        raise ArchConfigError(file, problems)
    return spec


# -- reading and YAML --------------------------------------------------------------------


def _read(path: Path, file: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArchConfigError(file, [Problem(None, "", "file not found")]) from None
    except IsADirectoryError:
        raise ArchConfigError(file, [Problem(None, "", "is a directory, expected an architecture YAML file")]) from None
    except UnicodeDecodeError as err:
        raise ArchConfigError(file, [Problem(None, "", f"not UTF-8 text ({err.reason})")]) from None
    except OSError as err:
        raise ArchConfigError(file, [Problem(None, "", f"cannot read: {err.strerror}")]) from None


def _parse_yaml(text: str, file: str):
    # safe: no arbitrary Python objects from a config file; libyaml's C loader when present (10x faster)
    loader = _SAFE_LOADER(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        detail = err.problem or "syntax error"
        if err.context:
            detail = f"{err.context}, {detail}"
        raise ArchConfigError(file, [Problem(line, "", f"invalid YAML: {detail}")]) from None
    except yaml.YAMLError as err:  # reader errors (bad characters) carry no mark
        raise ArchConfigError(file, [Problem(None, "", f"invalid YAML: {err}")]) from None
    finally:
        loader.dispose()
    return root, data


def _index_lines(root) -> tuple[dict[Loc, int], list[Problem]]:
    """Map every field path to its 1-based line; report duplicated mapping keys."""
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []

    def walk(node, loc: Loc, active: set[int]) -> None:
        if id(node) in active:  # a recursive alias; nothing more to index
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in first_line:
                    problems.append(
                        Problem(line, _dotted(loc + (key,)), f"duplicated key {key!r} (first at line "
                                f"{first_line[key]}); YAML would silently keep only the last one")
                    )
                else:
                    first_line[key] = line
                lines[loc + (key,)] = line
                walk(value_node, loc + (key,), active)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[loc + (i,)] = item.start_mark.line + 1
                walk(item, loc + (i,), active)

    if root is not None:
        walk(root, (), set())
    return lines, problems


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- pydantic errors -> problems ---------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _translate(error: dict, lines: dict[Loc, int]) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        field = _field_info(loc)
        what = f" ({field.description})" if field is not None and field.description else ""
        return Problem(_line_for(loc[:-1], lines), _dotted(loc), f"missing required field{what}")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f"; allowed: {', '.join(model.model_fields)}" if model else ""
        return Problem(_line_for(loc, lines), _dotted(loc), f"unknown field {loc[-1]!r}{allowed}")
    if kind == "value_error":
        message = str(error["ctx"]["error"])
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        message = f"must be a mapping of keys to values, got {_show(value)}"
    elif kind == "list_type":
        message = f"must be a list like [a, b], got {_show(value)}"
    elif kind == "string_type":
        message = f"must be a string, got {_show(value)}"
    elif kind == "too_short":
        message = f"must not be empty, got {_show(value)}"
    else:
        message = f"{error['msg']}, got {_show(value)}"
    return Problem(_line_for(loc, lines), _dotted(loc), message)


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


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema model describing the mapping at ``loc`` (None if it is not a model)."""
    current = ArchModel
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


def _field_info(loc: Loc):
    model = _model_at(loc[:-1])
    return model.model_fields.get(loc[-1]) if model is not None else None


# -- building the spec -------------------------------------------------------------------


def _build(model: ArchModel, file: str) -> ArchSpec:
    table: dict[str, EnergyEntry] = {}
    for name, entry in model.energy.items():
        value, _dim, unit = parse_any(entry.value, ("energy", "energy per byte", "power"))
        table[name] = EnergyEntry(name=name, value=value, unit=unit, source=entry.source)

    def ref(name: str | None) -> EnergyEntry | None:
        return None if name is None else table[name]

    engines = tuple(
        EngineSpec(
            name=engine_name,
            kind=EngineKind(engine.kind),
            rows=engine.rows,
            pipeline_cycles=engine.pipeline_cycles,
            leakage_power=ref(engine.leakage),
            modes=tuple(
                EngineMode(
                    name=mode_name,
                    op_kinds=frozenset(OpKind(k) for k in mode.op_kinds),
                    schemes=frozenset(mode.schemes),
                    weight_bits=mode.weight_bits,
                    act_bits=mode.act_bits,
                    lanes=mode.lanes,
                    energy_per_op=table[mode.energy_per_op],
                )
                for mode_name, mode in engine.modes.items()
            ),
        )
        for engine_name, engine in model.engines.items()
    )
    buffers = tuple(
        BufferSpec(
            name=name,
            capacity_bytes=b.capacity,
            bandwidth_bytes_per_cycle=b.bandwidth,
            holds=frozenset(b.holds),
            read_energy=table[b.read_energy],
            write_energy=table[b.write_energy],
            leakage_power=ref(b.leakage),
        )
        for name, b in model.buffers.items()
    )
    d = model.dram
    dram = DramSpec(
        name="dram",
        peak_bandwidth_bytes_per_s=d.peak_bandwidth,
        latency_s=d.latency,
        read_energy=table[d.read_energy],
        write_energy=table[d.write_energy],
        background_power=ref(d.background_power),
        burst_bytes=d.burst,
    )
    n = model.interconnect
    noc = InterconnectSpec(name="noc", bandwidth_bytes_per_cycle=n.bandwidth, latency_cycles=n.latency,
                           energy=table[n.energy])
    baseline = None
    if model.baseline is not None:
        baseline = {"arch": model.baseline.arch}
        if model.baseline.policy is not None:
            baseline["policy"] = model.baseline.policy
    return ArchSpec(
        name=model.name,
        clock_hz=model.clock,
        engines=engines,
        buffers=buffers,
        dram=dram,
        interconnect=noc,
        energy_table=tuple(table.values()),
        description=model.description.strip(),
        source_file=file,
        params=dict(model.params),
        static_power=ref(model.static_power),
        baseline=baseline,
    )


def _cross_checks(model: ArchModel, spec: ArchSpec, path: Path, lines: dict[Loc, int]) -> list[Problem]:
    problems = []
    for what in HOLDABLE:
        holders = [b.name for b in spec.buffers if what in b.holds]
        if len(holders) != 1:
            found = ", ".join(holders) if holders else "none"
            problems.append(Problem(_line_for(("buffers",), lines), "buffers",
                                    f"exactly one buffer must hold {what} (holds: [{what}]); found: {found}"))
    missing = missing_kinds(spec, EFFICIENTVIT_KINDS)
    if missing:
        names = ", ".join(k.value for k in missing)
        problems.append(Problem(
            _line_for(("engines",), lines), "engines",
            f"no engine mode lists op kind(s) {names}, which EfficientViT graphs contain; add each to some "
            f"mode's op_kinds (op kinds: {', '.join(k.value for k in OpKind)})",
        ))
    if model.baseline is not None:
        target = Path(model.baseline.arch)
        if not target.is_absolute():
            target = path.parent / target
        if not target.is_file():
            problems.append(Problem(_line_for(("baseline", "arch"), lines), "baseline.arch",
                                    f"baseline architecture {model.baseline.arch!r} not found (looked for {target})"))
    return problems

