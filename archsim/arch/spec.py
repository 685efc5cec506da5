"""The validated architecture spec: what the simulator builds its modules from.

Every quantity is a plain number in SI base units (Hz, bytes, bytes/s, s, J, W) after
parsing; each energy coefficient is an :class:`EnergyEntry` that keeps its provenance.
The YAML front end (:mod:`archsim.arch.loader`) produces these objects; tests and sweeps
may also build them directly.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from archsim.arch.dataflow import DEFAULT as DEFAULT_DATAFLOW
from archsim.arch.dataflow import Dataflow
from archsim.arch.dram import BankedDramConfig
from archsim.arch.interconnect import InterconnectConfig
from archsim.graph.ir import OpKind, Scheme


class EngineKind(str, Enum):
    MAC_ARRAY = "mac_array"  # multiplier array (MPMA, MAT, systolic-like)
    SHIFT_ADD_TREE = "shift_add_tree"  # shifter-and-adder tree for power-of-two weights (SAT)
    VECTOR = "vector"  # SIMD lanes for elementwise ops, pooling, norms, division


@dataclass(frozen=True)
class EnergyEntry:
    """One energy coefficient: value in joules (per op, per byte) or watts, and where it came from."""

    name: str
    value: float  # J per unit of work, or W for power entries
    unit: str  # as written in the YAML, e.g. "pJ", "pJ/B", "mW"
    source: str  # citation, or "assumed: <why>"
    # where the arch took it from: "inline" (its energy:), "table asic28", "override of table asic28",
    # "table asic28 (sram)" (a buffer priced by the table's SRAM classes), "" when built in code
    origin: str = ""


MAPPING_SPLITS = ("balanced", "by_scheme")
RESIDENCY_POLICIES = ("live", "fit", "layer_by_layer")


@dataclass(frozen=True)
class EngineMode:
    """One operating mode of an engine: which work it accepts and how fast.

    ``lanes`` is the parallelism along the reduction dimension (input channels x kernel
    window) per row, in this mode; rows x lanes = peak MACs (or shift-adds) per cycle.
    A layer runs in a mode when its kind is in ``op_kinds``, its weight bits <=
    ``weight_bits``, its activation bits <= ``act_bits`` and its filter scheme is in
    ``schemes``. Vector engines: ``lanes`` elementwise ops per cycle, ``weight_bits`` 0.
    """

    name: str
    op_kinds: frozenset[OpKind]
    schemes: frozenset[Scheme]
    weight_bits: int
    act_bits: int
    lanes: int
    energy_per_op: EnergyEntry  # per MAC / shift-add / vector op
    dataflow: Dataflow = DEFAULT_DATAFLOW  # how MAC families unroll on rows x lanes (archsim.arch.dataflow)
    # op kind or epilogue tag (e.g. "norm", "requant") -> its own J per op; others cost energy_per_op
    energy_by_kind: tuple[tuple[str, EnergyEntry], ...] = ()

    def op_energy(self, kind: str) -> EnergyEntry:
        """The entry pricing one op of ``kind`` (an op kind or epilogue tag value) in this mode."""
        for k, entry in self.energy_by_kind:
            if k == kind:
                return entry
        return self.energy_per_op


@dataclass(frozen=True)
class EngineSpec:
    name: str
    kind: EngineKind
    rows: int  # parallel output filters (or output pixels, depthwise); 1 for vector units
    modes: tuple[EngineMode, ...]
    pipeline_cycles: int = 0  # fill/drain latency added once per tile
    leakage_power: EnergyEntry | None = None  # W while the accelerator is on
    # J per byte of PE register read / written (operands and accumulators); None: included in the op energy
    register_energy: EnergyEntry | None = None

    def peak_ops_per_cycle(self, mode: str) -> int:
        return self.rows * self.mode(mode).lanes

    def mode(self, name: str) -> EngineMode:
        for m in self.modes:
            if m.name == name:
                return m
        raise KeyError(f"engine {self.name} has no mode {name!r}")


@dataclass(frozen=True)
class BufferSpec:
    name: str
    capacity_bytes: int
    bandwidth_bytes_per_cycle: int  # port width, per accelerator clock cycle
    holds: frozenset[str]  # subset of {"weights", "activations"}
    read_energy: EnergyEntry  # J per byte
    write_energy: EnergyEntry  # J per byte
    leakage_power: EnergyEntry | None = None  # W


@dataclass(frozen=True)
class DramSpec:
    name: str
    peak_bandwidth_bytes_per_s: float
    latency_s: float  # first-access latency of a transfer (row activation + CAS + controller)
    read_energy: EnergyEntry  # J per byte, I/O included
    write_energy: EnergyEntry  # J per byte
    background_power: EnergyEntry | None = None  # W
    burst_bytes: int = 64  # transfers are rounded up to whole bursts
    # "simple": one FIFO channel with a fixed head latency (archsim.sim.dram); "banked": the transaction-level
    # model of ``banked`` (archsim.sim.dram_banked; peak bandwidth and burst are the preset's)
    model: str = "simple"
    banked: BankedDramConfig | None = None
    # banked: J per command (ACT+PRE, RD burst, WR burst, all-bank REF); None: the preset's own coefficient
    act_energy: EnergyEntry | None = None
    read_burst_energy: EnergyEntry | None = None
    write_burst_energy: EnergyEntry | None = None
    refresh_energy: EnergyEntry | None = None


@dataclass(frozen=True)
class InterconnectSpec:
    name: str
    bandwidth_bytes_per_cycle: int  # per link (and port)
    latency_cycles: int  # per hop (bus and crossbar: one hop)
    energy: EnergyEntry  # J per byte moved over the bus, or per crossbar traversal
    topology: str = "bus"  # bus | crossbar | mesh | ring (archsim.arch.interconnect)
    shape: tuple[int, ...] = ()  # crossbar (ports,), mesh (rows, cols), ring (routers,)
    energy_per_byte_hop: EnergyEntry | None = None  # J per byte per mesh / ring link
    placement: tuple[tuple[str, tuple], ...] = ()  # node name -> position (dram, buffers, engines)

    def config(self) -> InterconnectConfig:
        """The topology as archsim.sim.interconnect builds it."""
        return InterconnectConfig(
            self.topology,
            self.placement,
            self.bandwidth_bytes_per_cycle,
            self.latency_cycles,
            self.shape,
            None if self.energy_per_byte_hop is None else self.energy_per_byte_hop.value,
            self.energy.value,
        )


class ArchParams(Mapping):
    """The ``params:`` of an architecture YAML, validated (:class:`archsim.arch.schema.ParamsModel`).

    A read-only mapping of the params that were *set* (``spec.params.get("min_tiles", 4)``
    keeps working, and the reader's default applies when a param is not set) that also allows
    attribute access (``spec.params.min_tiles``). Hashable, like the rest of the spec.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None):
        object.__setattr__(self, "_values", dict(values or {}))

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"params has no {name!r} set (set: {', '.join(self._values) or 'none'})"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ArchParams is read-only")

    def __reduce__(self):  # pickling (sweep workers receive specs): rebuild through __init__
        return ArchParams, (self._values,)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"ArchParams({self._values!r})"


@dataclass(frozen=True)
class MappingOverride:
    """Pin the engines of matching layers: ``layer`` (a name or fnmatch glob) or ``op_kind``."""

    engines: tuple[str, ...]
    layer: str | None = None
    op_kind: OpKind | None = None

    def matches(self, name: str, kind: OpKind) -> bool:
        if self.layer is not None:
            return fnmatch.fnmatchcase(name, self.layer)
        return self.op_kind == kind


@dataclass(frozen=True)
class MappingSpec:
    split: str = "balanced"  # MAPPING_SPLITS
    overrides: tuple[MappingOverride, ...] = ()

    def engines_for(self, name: str, kind: OpKind) -> tuple[str, ...] | None:
        """The pinned engines of a layer (the first matching override), or None."""
        for o in self.overrides:
            if o.matches(name, kind):
                return o.engines
        return None


@dataclass(frozen=True)
class MemorySpec:
    residency: str = "live"  # RESIDENCY_POLICIES
    fusion: str = "off"  # on | off: DW->PW fusion (archsim.sim.fusion)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    clock_hz: float
    engines: tuple[EngineSpec, ...]
    buffers: tuple[BufferSpec, ...]
    dram: DramSpec
    interconnect: InterconnectSpec
    energy_table: tuple[EnergyEntry, ...] = ()
    # the named table (energy_table: asic28) the entries start from, "" for an inline table
    energy_table_name: str = ""
    description: str = ""
    source_file: str = ""  # the YAML it was loaded from, for messages (never written into results)
    params: Mapping = field(default_factory=ArchParams)  # validated knobs (ArchParams when loaded from YAML)
    static_power: EnergyEntry | None = (
        None  # W the whole device draws while on (FPGA static), beyond component leakage
    )
    # The design this one is compared against by default: {"arch": path relative to this
    # YAML, "policy": quantization policy name}; None when the YAML names none.
    baseline: dict | None = None
    mapping: MappingSpec = MappingSpec()
    memory: MemorySpec = MemorySpec()
    source_sha256: str = (
        ""  # sha256 of the YAML's bytes: how results identify the config ("" when built in code)
    )

    @property
    def clock_period_ps(self) -> int:
        """Clock period in integer picoseconds (simulation time unit); must divide exactly."""
        period = 1e12 / self.clock_hz
        rounded = round(period)
        if abs(period - rounded) > 1e-6 * period:
            raise ValueError(f"{self.name}: clock {self.clock_hz} Hz has no integer period in ps")
        return rounded

    def engine(self, name: str) -> EngineSpec:
        for e in self.engines:
            if e.name == name:
                return e
        raise KeyError(f"no engine {name!r} in {self.name}")

    def buffer_for(self, what: str) -> BufferSpec:
        for b in self.buffers:
            if what in b.holds:
                return b
        raise KeyError(f"no buffer holds {what!r} in {self.name}")

    def with_changes(self, **changes) -> ArchSpec:
        return replace(self, **changes)
