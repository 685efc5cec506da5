"""The architecture YAML schema: one pydantic model per YAML mapping, unknown keys rejected.

Models hold already-parsed SI numbers (quantity strings go through :mod:`archsim.arch.units`)
and energy *references* (names into the ``energy:`` table), checked against the table passed
in the validation context as ``{"energy_dims": {name: dimension name or None}}``.
Every validator raises ValueError with a message that completes "<file>:<line>: <field>: ...";
the loader adds the file, line and field path. See docs/configs.md for the format.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from archsim.arch.spec import EngineKind
from archsim.arch.units import DIMENSIONS, parse_any, parse_quantity, whole
from archsim.graph.ir import OpKind, Scheme

ENERGY_DIMENSIONS = ("energy", "energy per byte", "power")  # what an energy-table entry may be
HOLDABLE = ("weights", "activations")  # what a buffer may hold
_SOURCE_TAG = re.compile(r"^\s*(\[(S|C|I)(/(S|C|I))*\]|assumed\b)")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- scalar checks ------------------------------------------------------------------------


def _int_at_least(minimum: int, what: str, maximum: int | None = None):
    def check(value: object) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        if ok and maximum is not None and value > maximum:
            ok = False
        if not ok:
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"must be {what}{upper}, got {_show(value)}")
        return value

    return BeforeValidator(check)


PositiveInt = Annotated[int, _int_at_least(1, "a positive integer")]
NonNegativeInt = Annotated[int, _int_at_least(0, "a non-negative integer")]
WeightBits = Annotated[int, _int_at_least(0, "a bit width (0 for engines without weights)", 32)]
ActBits = Annotated[int, _int_at_least(1, "a positive bit width", 32)]


def _nonempty_string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {_show(value)}")
    return value


NonEmptyStr = Annotated[str, BeforeValidator(_nonempty_string)]


def _source(value: object) -> str:
    text = _nonempty_string(value)
    if not _SOURCE_TAG.match(text):
        raise ValueError(
            "must start with a provenance tag [S] (from a source), [C] (computed), [I] (inferred), "
            f"e.g. '[C/I]', or with 'assumed: <why>'; got {_show(value)}"
        )
    return text


def _quantity(expected: str, *, positive: bool = True, whole_of: str | None = None):
    """A field holding a quantity string of dimension ``expected``; stored as an SI number."""

    def check(value: object):
        number = parse_quantity(value, expected)
        if positive and number <= 0:
            raise ValueError(f"must be positive, got {_show(value)}")
        if number < 0:
            raise ValueError(f"must not be negative, got {_show(value)}")
        return whole(number, whole_of, value) if whole_of else number

    return BeforeValidator(check)


def _clock(value: object) -> float:
    hz = parse_quantity(value, "frequency")
    if hz <= 0:
        raise ValueError(f"must be positive, got {_show(value)}")
    period_ps = 1e12 / hz
    if abs(period_ps - round(period_ps)) > 1e-6 * period_ps:
        raise ValueError(
            f"{value!r} has a period of {period_ps:.4g} ps, not a whole number of picoseconds "
            "(archsim's time unit); pick e.g. 200 MHz (5000 ps), 250 MHz (4000 ps) or 500 MHz (2000 ps)"
        )
    return hz


Frequency = Annotated[float, BeforeValidator(_clock)]
Time = Annotated[float, _quantity("time", positive=False)]
Bandwidth = Annotated[float, _quantity("bandwidth")]
SizeBytes = Annotated[int, _quantity("size", whole_of="bytes")]
BytesPerCycle = Annotated[int, _quantity("bytes per cycle", whole_of="bytes per cycle")]
Cycles = Annotated[int, _quantity("cycles", positive=False, whole_of="cycles")]


def _choice(enum_or_values, what: str):
    values = [e.value for e in enum_or_values] if not isinstance(enum_or_values, tuple) else list(enum_or_values)

    def check(value: object):
        if not isinstance(value, str) or value not in values:
            raise ValueError(f"unknown {what} {_show(value)}; allowed: {', '.join(values)}")
        return value

    return BeforeValidator(check)


OpKindName = Annotated[OpKind, _choice(OpKind, "op kind")]
SchemeName = Annotated[Scheme, _choice(Scheme, "scheme")]
EngineKindName = Annotated[EngineKind, _choice(EngineKind, "engine kind")]
HoldName = Annotated[str, _choice(HOLDABLE, "buffer content")]


def _energy_ref(expected: str):
    """A field naming an ``energy:`` entry whose dimension must be ``expected``."""

    def check(value: object, info: ValidationInfo) -> str:
        table: dict[str, str | None] = (info.context or {}).get("energy_dims", {})
        if not isinstance(value, str):
            raise ValueError(f"must name an entry of the energy table, got {_show(value)}")
        if value not in table:
            defined = ", ".join(sorted(table)) or "none"
            raise ValueError(f"energy reference {value!r} is not defined in energy: (defined: {defined})")
        actual = table[value]
        if actual is not None and actual != expected:
            example = DIMENSIONS[expected].example
            raise ValueError(f"energy entry {value!r} is {_a(actual)} but this field needs {_a(expected)} like {example!r}")
        return value

    return BeforeValidator(check)


def _a(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


EnergyPerOpRef = Annotated[str, _energy_ref("energy")]
EnergyPerByteRef = Annotated[str, _energy_ref("energy per byte")]
PowerRef = Annotated[str, _energy_ref("power")]


def _energy_value(value: object) -> str:
    number, _dim, _unit = parse_any(value, ENERGY_DIMENSIONS)
    if number < 0:
        raise ValueError(f"must not be negative, got {_show(value)}")
    return value


# -- models -------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnergyEntryModel(_Model):
    value: Annotated[str, BeforeValidator(_energy_value)] = Field(
        description="an energy per operation ('0.14 pJ'), per byte ('68 pJ/B') or a power ('37 mW')"
    )
    source: Annotated[str, BeforeValidator(_source)] = Field(
        description="provenance: '[S]'/'[C]'/'[I]' tag and citation, or 'assumed: <why>'"
    )


class ModeModel(_Model):
    op_kinds: list[OpKindName] = Field(min_length=1, description="op kinds this mode runs")
    schemes: list[SchemeName] = Field(min_length=1, description="filter schemes accepted: uniform, apot, float")
    weight_bits: WeightBits = Field(description="widest weight code accepted (0: no weights)")
    act_bits: ActBits = Field(description="widest input activation accepted")
    lanes: PositiveInt = Field(description="parallel MACs/ops per row per cycle in this mode")
    energy_per_op: EnergyPerOpRef = Field(description="energy-table entry: J per MAC / shift-add / vector op")


class EngineModel(_Model):
    kind: EngineKindName = Field(description="mac_array, shift_add_tree or vector")
    rows: PositiveInt = Field(description="parallel rows (output filters or pixels); 1 for vector units")
    pipeline_cycles: NonNegativeInt = Field(0, description="fill/drain latency per tile, cycles")
    leakage: PowerRef | None = Field(None, description="energy-table entry: leakage power, W")
    modes: dict[str, ModeModel] = Field(min_length=1, description="operating modes by name")


class BufferModel(_Model):
    capacity: SizeBytes = Field(description="capacity, e.g. '256 KiB'")
    bandwidth: BytesPerCycle = Field(description="port width, e.g. '64 B/cycle'")
    holds: list[HoldName] = Field(min_length=1, description="what it stores: weights, activations")
    read_energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte read")
    write_energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte written")
    leakage: PowerRef | None = Field(None, description="energy-table entry: leakage power, W")


class DramModel(_Model):
    peak_bandwidth: Bandwidth = Field(description="peak bandwidth, e.g. '19.2 GB/s'")
    latency: Time = Field(description="first-access latency, e.g. '60 ns'")
    read_energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte read, I/O included")
    write_energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte written")
    background_power: PowerRef | None = Field(None, description="energy-table entry: background power, W")
    burst: SizeBytes = Field(64, description="burst size, e.g. '64 B'")


class InterconnectModel(_Model):
    bandwidth: BytesPerCycle = Field(description="bytes per cycle, e.g. '64 B/cycle'")
    latency: Cycles = Field(description="latency per transfer, e.g. '2 cycles'")
    energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte moved")


class BaselineModel(_Model):
    arch: NonEmptyStr = Field(description="architecture YAML to compare against, relative to this file")
    policy: NonEmptyStr | None = Field(None, description="quantization policy of the comparison run")


class ArchModel(_Model):
    name: NonEmptyStr = Field(description="architecture name")
    description: str = Field("", description="free text")
    clock: Frequency = Field(description="accelerator clock, e.g. '200 MHz' (whole ps period)")
    static_power: PowerRef | None = Field(None, description="energy-table entry: device static power, W")
    energy: dict[str, EnergyEntryModel] = Field(min_length=1, description="the energy table")
    engines: dict[str, EngineModel] = Field(min_length=1, description="compute engines by name")
    buffers: dict[str, BufferModel] = Field(min_length=1, description="on-chip buffers by name")
    dram: DramModel = Field(description="off-chip memory")
    interconnect: InterconnectModel = Field(description="on-chip interconnect")
    params: dict[str, Any] = Field(default_factory=dict, description="free-form documented knobs")
    baseline: BaselineModel | None = Field(None, description="default comparison point: {arch, policy}")


def energy_dims(raw: object) -> dict[str, str | None]:
    """The energy table of raw YAML data: entry name -> its dimension (None if unparseable).

    Computed before validation so that references can be checked in the same pass as
    everything else (all errors reported at once).
    """
    table = raw.get("energy") if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        return {}
    dims: dict[str, str | None] = {}
    for name, entry in table.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        try:
            dims[str(name)] = parse_any(value, ENERGY_DIMENSIONS)[1]
        except ValueError:
            dims[str(name)] = None  # its own error is reported at the entry
    return dims
