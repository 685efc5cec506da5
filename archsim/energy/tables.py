"""Named energy tables: package data (archsim/data/energy/<name>.yaml) an architecture selects by name.

An architecture YAML chooses one with ``energy_table: asic28`` (docs/configs.md "Energy tables"); its
``energy_overrides:`` replace single entries of the table, its ``energy:`` adds entries of its own. A table
file is loaded like every archsim YAML (:mod:`archsim.configfile`: safe loader, pydantic schema, every
problem as ``file:line: field: value: what is allowed``) and holds:

- ``entries``: name -> {value, source}, the same entries an inline ``energy:`` table has (a quantity of
  energy, energy per byte or power, and a provenance tag [S]/[C]/[I] or 'assumed: <why>');
- ``sram`` (optional): SRAM read energy per byte by capacity class at a 64-bit port, a factor per port width
  and a write/read ratio: what a buffer that names no read_energy / write_energy costs (:func:`sram_entries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from archsim import resources
from archsim.arch.spec import EnergyEntry
from archsim.arch.units import parse_any
from archsim.configfile import (
    ConfigFileError,
    StrictModel,
    integer,
    nonempty_text,
    number,
    read_document,
    text,
    validate_document,
)

SUFFIX = ".yaml"
# [C] the CACTI runs of energy.md 2.1 price a 64-bit port; the width factors are relative to it
BASE_PORT_BITS = 64


class EnergyTableError(ConfigFileError):
    """An energy table file (or name) that cannot be used."""

    what = "energy table"


def table_dir() -> Path:
    """The folder of the bundled tables."""
    return resources._package_dir("data", "energy")


def table_names() -> list[str]:
    """The bundled tables' names, sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in table_dir().glob("*" + SUFFIX))


# -- schema --------------------------------------------------------------------------------


def _entry_model():
    from archsim.arch.schema import EnergyEntryModel

    return EnergyEntryModel


def _quantities():
    from archsim.arch.schema import _quantity, _source

    return _quantity, _source


_quantity, _source = _quantities()
Source = Annotated[str, BeforeValidator(_source)]
PortBits = Annotated[int, integer(8, what="a port width in bits, >= 8")]


class SramClassModel(StrictModel):
    up_to: Annotated[int, _quantity("size", whole_of="bytes")] = Field(
        description="largest capacity of the class (inclusive), e.g. '256 KiB'"
    )
    read: Annotated[float, _quantity("energy per byte")] = Field(
        description="read energy per byte at a 64-bit port, e.g. '1.30 pJ/B'"
    )
    source: Source = Field(description="provenance: '[S]'/'[C]'/'[I]' tag and citation, or 'assumed: <why>'")


class WidthFactorsModel(StrictModel):
    factors: dict[PortBits, Annotated[float, number(0, lo_open=True)]] = Field(
        min_length=1, description="port width in bits -> factor on the 64-bit per-byte read energy"
    )
    source: Source = Field(description="provenance of the factors")


class RatioModel(StrictModel):
    value: Annotated[float, number(0, lo_open=True)] = Field(description="a number > 0")
    source: Source = Field(description="provenance of the ratio")


class SramModel(StrictModel):
    classes: list[SramClassModel] = Field(min_length=1, description="capacity classes, smallest first")
    width_factors: WidthFactorsModel = Field(description="{factors: {bits: factor}, source}")
    write_over_read: RatioModel = Field(description="write energy / read energy, {value, source}")


class EnergyTableModel(StrictModel):
    name: Annotated[str, BeforeValidator(nonempty_text)] = Field(description="table name (= the file's stem)")
    description: Annotated[str, BeforeValidator(text)] = Field("", description="free text")
    entries: dict[str, _entry_model()] = Field(min_length=1, description="entry name -> {value, source}")
    sram: SramModel | None = Field(None, description="SRAM per byte by capacity class and port width")


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SramClass:
    up_to_bytes: int
    read_j_per_byte: float  # at a 64-bit port
    source: str


@dataclass(frozen=True)
class EnergyTable:
    """A loaded table: its entries (EnergyEntry, origin ``table <name>``) and its SRAM classes."""

    name: str
    description: str
    entries: tuple[EnergyEntry, ...]
    sram_classes: tuple[SramClass, ...] = ()
    width_factors: tuple[tuple[int, float], ...] = ()  # (port bits, factor), ascending bits
    width_source: str = ""
    write_over_read: float = 1.0
    write_source: str = ""

    def entry(self, name: str) -> EnergyEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]


def width_factor(table: EnergyTable, port_bits: int) -> tuple[int, float]:
    """(width used, factor) for a port of ``port_bits``: the widest tabulated width <= port_bits (a wider
    port is tabulated-width banks side by side [choice]); narrower than every width: the narrowest."""
    usable = [(bits, f) for bits, f in table.width_factors if bits <= port_bits]
    return usable[-1] if usable else table.width_factors[0]


def sram_entries(table: EnergyTable, buffer: str, capacity_bytes: int, port_bytes: int):
    """The (read, write) J/B entries of a buffer of ``capacity_bytes`` with a ``port_bytes`` port, from the
    table's SRAM classes: read = class(capacity) 64-bit read x width factor, write = read x write/read.
    Raises ValueError saying what is allowed when no class holds the capacity."""
    if not table.sram_classes:
        raise ValueError(f"energy table {table.name} has no sram classes; give read_energy and write_energy")
    fits = [c for c in table.sram_classes if capacity_bytes <= c.up_to_bytes]
    if not fits:
        largest = table.sram_classes[-1].up_to_bytes
        raise ValueError(
            f"{capacity_bytes} B is above the largest SRAM class of energy table {table.name} "
            f"({largest} B); give read_energy and write_energy"
        )
    cls = fits[0]
    bits, factor = width_factor(table, port_bytes * 8)
    read = cls.read_j_per_byte * factor
    where = f"energy table {table.name} sram class <= {cls.up_to_bytes} B, {bits}-bit factor {factor:g}"
    read_entry = EnergyEntry(
        name=f"{buffer}.sram_read",
        value=read,
        unit="J/B",
        source=f"[C] {where}: {cls.source}; width: {table.width_source}",
        origin=f"table {table.name} (sram)",
    )
    write_entry = EnergyEntry(
        name=f"{buffer}.sram_write",
        value=read * table.write_over_read,
        unit="J/B",
        source=f"[C] {table.write_over_read:g} x {buffer}.sram_read: {table.write_source}",
        origin=f"table {table.name} (sram)",
    )
    return read_entry, write_entry


def resolve_table(name: str) -> Path:
    """The file of a bundled table; EnergyTableError listing the names when there is none."""
    path = table_dir() / (name + SUFFIX)
    if not path.is_file():
        raise EnergyTableError(None, f"unknown energy table {name!r}; allowed: {', '.join(table_names())}")
    return path


def load_table(name: str) -> EnergyTable:
    """A bundled table by name (cached: tables are package data)."""
    return load_table_file(resolve_table(name))


@lru_cache(maxsize=32)
def load_table_file(path: Path) -> EnergyTable:
    """Parse and validate the table at ``path``; EnergyTableError with every problem at file:line."""
    doc = read_document(path, EnergyTableError, "an energy table YAML file")
    model, problems = validate_document(doc, EnergyTableModel, EnergyTableError, "top level")
    from archsim.configfile import Problem

    if model.name != path.name[: -len(SUFFIX)]:
        problems.append(
            Problem(
                doc.line_of(("name",)), "name", f"must be the file's stem, {path.stem!r}", repr(model.name)
            )
        )
    if model.sram is not None:
        sizes = [c.up_to for c in model.sram.classes]
        if sizes != sorted(set(sizes)):
            problems.append(
                Problem(
                    doc.line_of(("sram", "classes")),
                    "sram.classes",
                    "up_to must increase from class to class",
                )
            )
        if BASE_PORT_BITS not in model.sram.width_factors.factors:
            problems.append(
                Problem(
                    doc.line_of(("sram", "width_factors")),
                    "sram.width_factors.factors",
                    f"must give the {BASE_PORT_BITS}-bit factor (the classes' reference width)",
                )
            )
    if problems:
        raise EnergyTableError(doc.file, problems)
    entries = []
    for entry_name, entry in model.entries.items():
        value, _dim, unit = parse_any(entry.value, ("energy", "energy per byte", "power"))
        entries.append(EnergyEntry(entry_name, value, unit, entry.source, origin=f"table {model.name}"))
    sram = model.sram
    return EnergyTable(
        name=model.name,
        description=model.description.strip(),
        entries=tuple(entries),
        sram_classes=tuple(SramClass(c.up_to, c.read, c.source) for c in sram.classes) if sram else (),
        width_factors=tuple(sorted(sram.width_factors.factors.items())) if sram else (),
        width_source=sram.width_factors.source if sram else "",
        write_over_read=sram.write_over_read.value if sram else 1.0,
        write_source=sram.write_over_read.source if sram else "",
    )


@lru_cache(maxsize=32)
def written_entries(name: str) -> dict[str, tuple[str, str]]:
    """Entry name -> (value as written, source) of the bundled table ``name``."""
    doc = read_document(resolve_table(name), EnergyTableError, "an energy table YAML file")
    entries = doc.data.get("entries", {}) if isinstance(doc.data, dict) else {}
    return {k: (str(v.get("value")), str(v.get("source"))) for k, v in entries.items() if isinstance(v, dict)}


def table_dims(name: object) -> dict[str, str | None]:
    """Entry name -> dimension of the bundled table ``name``; {} when it is not a table's name (the schema
    reports that at the ``energy_table`` field)."""
    if not isinstance(name, str) or name not in table_names():
        return {}
    return {
        e.name: parse_any(e.unit and f"1 {e.unit}", ("energy", "energy per byte", "power"))[1]
        for e in load_table(name).entries
    }
