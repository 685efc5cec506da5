"""The architecture YAML schema: one pydantic model per YAML mapping, unknown keys rejected.

Models hold already-parsed SI numbers (quantity strings go through :mod:`archsim.arch.units`)
and energy *references* (names into the ``energy:`` table), checked against the table passed
in the validation context as ``{"energy_dims": {name: dimension name or None}}``.
Every validator raises ValueError saying what is allowed; :mod:`archsim.configfile` renders it
as ``<file>:<line>: <field>: <value>: <what is allowed>``. See docs/configs.md for the format.

**Adding an architecture parameter** (``params:``): add one field to :class:`ParamsModel` with a
validator, ``None`` as its default and a description naming the reader's default; the
reader keeps ``spec.params.get("name", DEFAULT)`` (or ``spec.params.name`` when it is set);
document it in docs/configs.md. A misspelt key is then an error that suggests the field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo

from archsim.arch.dataflow import DIMS, FILL_WHEN, PRESETS, FormulaError, check_formula
from archsim.arch.dram import DEFAULT_QUEUE_DEPTH, REFRESH_MODES, SCHEDULERS
from archsim.arch.dram_presets import PRESETS as DRAM_PRESETS
from archsim.arch.interconnect import TOPOLOGIES
from archsim.arch.spec import MAPPING_SPLITS, RESIDENCY_POLICIES, EngineKind
from archsim.arch.units import DIMENSIONS, UnitError, parse_any, parse_quantity, whole
from archsim.configfile import (
    StrictModel,
    choice,
    did_you_mean,
    integer,
    nonempty_text,
    number,
    switch,
    text,
)
from archsim.graph.ir import Epilogue, OpKind, Scheme

ENERGY_DIMENSIONS = ("energy", "energy per byte", "power")  # what an energy-table entry may be
HOLDABLE = ("weights", "activations")  # what a buffer may hold
_SOURCE_TAG = re.compile(r"^\s*(\[(S|C|I)(/(S|C|I))*\]|assumed\b)")
# [choice] relative slack for "a whole number of picoseconds": 200 MHz = 5000.000000000001 ps in
# float64 passes, 300 MHz = 3333.33 ps does not
PERIOD_REL_TOL = 1e-6
MAX_BITS = 32  # widest weight or activation code a mode may accept (int32 / fp32 tensors)
DRAM_MODELS = ("simple", "banked")


# -- scalar checks ------------------------------------------------------------------------


PositiveInt = Annotated[int, integer(1, what="a positive integer")]
NonNegativeInt = Annotated[int, integer(0, what="a non-negative integer")]
WeightBits = Annotated[
    int, integer(0, MAX_BITS, what=f"a bit width in [0, {MAX_BITS}] (0 for engines without weights)")
]
ActBits = Annotated[int, integer(1, MAX_BITS, what=f"a bit width in [1, {MAX_BITS}]")]
NonEmptyStr = Annotated[str, BeforeValidator(nonempty_text)]
Text = Annotated[str, BeforeValidator(text)]


def _source(value: object) -> str:
    text_ = nonempty_text(value)
    if not _SOURCE_TAG.match(text_):
        raise ValueError(
            "must start with a provenance tag [S] (from a source), [C] (computed), [I] (inferred), "
            "e.g. '[C/I]', or with 'assumed: <why>'"
        )
    return text_


def _allowed(err: UnitError) -> ValueError:
    return ValueError(err.allowed)


def _quantity(expected: str, *, positive: bool = True, whole_of: str | None = None):
    """A field holding a quantity string of dimension ``expected``; stored as an SI number."""

    def check(value: object):
        try:
            number_ = parse_quantity(value, expected)
            if positive and number_ <= 0:
                raise ValueError("must be positive")
            if number_ < 0:
                raise ValueError("must not be negative")
            return whole(number_, whole_of, value) if whole_of else number_
        except UnitError as err:
            raise _allowed(err) from None

    return BeforeValidator(check)


def _clock(value: object) -> float:
    try:
        hz = parse_quantity(value, "frequency")
    except UnitError as err:
        raise _allowed(err) from None
    if hz <= 0:
        raise ValueError("must be positive")
    period_ps = 1e12 / hz
    if abs(period_ps - round(period_ps)) > PERIOD_REL_TOL * period_ps:
        raise ValueError(
            f"has a period of {period_ps:.4g} ps, not a whole number of picoseconds "
            "(archsim's time unit); allowed: e.g. 200 MHz (5000 ps), 250 MHz (4000 ps) or 500 MHz (2000 ps)"
        )
    return hz


Frequency = Annotated[float, BeforeValidator(_clock)]
Time = Annotated[float, _quantity("time", positive=False)]
Bandwidth = Annotated[float, _quantity("bandwidth")]
SizeBytes = Annotated[int, _quantity("size", whole_of="bytes")]
BytesPerCycle = Annotated[int, _quantity("bytes per cycle", whole_of="bytes per cycle")]
Cycles = Annotated[int, _quantity("cycles", positive=False, whole_of="cycles")]

OpKindName = Annotated[OpKind, choice([k.value for k in OpKind], "op kind")]
SchemeName = Annotated[Scheme, choice([s.value for s in Scheme], "scheme")]
EngineKindName = Annotated[EngineKind, choice([k.value for k in EngineKind], "engine kind")]
HoldName = Annotated[str, choice(HOLDABLE, "buffer content")]


def _energy_ref(expected: str):
    """A field naming an ``energy:`` entry whose dimension must be ``expected``."""

    def check(value: object, info: ValidationInfo) -> str:
        table: dict[str, str | None] = (info.context or {}).get("energy_dims", {})
        if not isinstance(value, str):
            raise ValueError("must name an entry of the energy table")
        if value not in table:
            defined = ", ".join(sorted(table)) or "none"
            raise ValueError(f"not defined in energy:; {did_you_mean(value, table)}defined: {defined}")
        actual = table[value]
        if actual is not None and actual != expected:
            example = DIMENSIONS[expected].example
            raise ValueError(f"is {_a(actual)} entry but this field needs {_a(expected)} like {example!r}")
        return value

    return BeforeValidator(check)


def _a(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


EnergyPerOpRef = Annotated[str, _energy_ref("energy")]
EnergyPerByteRef = Annotated[str, _energy_ref("energy per byte")]
PowerRef = Annotated[str, _energy_ref("power")]


def _energy_value(value: object) -> str:
    try:
        number_, _dim, _unit = parse_any(value, ENERGY_DIMENSIONS)
    except UnitError as err:
        raise _allowed(err) from None
    if number_ < 0:
        raise ValueError("must not be negative")
    return value


# -- models -------------------------------------------------------------------------------


class EnergyEntryModel(StrictModel):
    value: Annotated[str, BeforeValidator(_energy_value)] = Field(
        description="an energy per operation ('0.14 pJ'), per byte ('68 pJ/B') or a power ('37 mW')"
    )
    source: Annotated[str, BeforeValidator(_source)] = Field(
        description="provenance: '[S]'/'[C]'/'[I]' tag and citation, or 'assumed: <why>'"
    )


def _formula(value: object) -> str:
    try:
        check_formula(value)
    except FormulaError as err:
        raise ValueError(str(err)) from None
    return str(value)


def _preset_or_mapping(value: object) -> object:
    return {"preset": value} if isinstance(value, str) else value


Formula = Annotated[str, BeforeValidator(_formula)]
DimName = Annotated[str, choice(DIMS, "loop dim")]


class UnrollingModel(StrictModel):
    rows: list[DimName] = Field(
        default_factory=list,
        description="loop dims spread over the engine's rows "
        "(G groups, P positions, F filters, C input channels, T kernel taps)",
    )
    lanes: list[DimName] = Field(default_factory=list, description="loop dims spread over the mode's lanes")
    stream: list[DimName] = Field(
        default_factory=list,
        description="loop dims streamed within one fold "
        "(the others are outer loops: each iteration is a new fold)",
    )


class WeightLoadModel(StrictModel):
    cycles: Formula = Field(
        description="cycles to load one fold's weights, a formula of R, L, pipeline (e.g. 'R')"
    )
    prefetch: bool = Field(
        True, description="loaded under the previous fold's compute (double-buffered weights)"
    )


class DataflowModel(StrictModel):
    """A mode's spatial unrolling (docs/modelling.md, "Dataflow"); a preset name or a preset with changes."""

    preset: Annotated[str, choice(list(PRESETS), "dataflow preset")] = Field(
        "mat", description=f"base declaration: {', '.join(PRESETS)} (default mat, archsim's original model)"
    )
    conv: UnrollingModel | None = Field(None, description="dense / pointwise / grouped conv loops")
    depthwise: UnrollingModel | None = Field(None, description="depthwise conv loops (G = channels)")
    linear: UnrollingModel | None = Field(None, description="fully connected loops (C = in features)")
    matmul: UnrollingModel | None = Field(None, description="activation x activation loops (C = inner dim)")
    fill: Annotated[str, choice(FILL_WHEN, "fill rule")] | None = Field(
        None, description="when the pipeline fill/drain is paid: tile, fold or layer"
    )
    fill_cycles: Formula | None = Field(None, description="fill/drain cycles, a formula of R, L, pipeline")
    weight_load: WeightLoadModel | None = Field(
        None, description="per-fold weight load, if the array loads weights into its PEs"
    )


PricedKind = Annotated[
    str, choice([k.value for k in OpKind] + [e.value for e in Epilogue], "op kind or epilogue op")
]


def _energy_table_name(value: object) -> str:
    from archsim.energy.tables import table_names

    names = table_names()
    if not isinstance(value, str) or value not in names:
        raise ValueError(f"unknown energy table; {did_you_mean(value, names)}allowed: {', '.join(names)}")
    return value


class ModeModel(StrictModel):
    op_kinds: list[OpKindName] = Field(min_length=1, description="op kinds this mode runs")
    schemes: list[SchemeName] = Field(
        min_length=1, description="filter schemes accepted: uniform, apot, float"
    )
    weight_bits: WeightBits = Field(description="widest weight code accepted, bits (0: no weights)")
    act_bits: ActBits = Field(description="widest input activation accepted, bits")
    lanes: PositiveInt = Field(description="parallel MACs/ops per row per cycle in this mode")
    energy_per_op: EnergyPerOpRef = Field(description="energy-table entry: J per MAC / shift-add / vector op")
    energy_by_kind: dict[PricedKind, EnergyPerOpRef] = Field(
        default_factory=dict,
        description="op kind or fused epilogue op (bias, requant, hardswish, ...) -> energy-table entry "
        "pricing one such op in this mode (default: energy_per_op for every kind)",
    )
    dataflow: Annotated[DataflowModel | None, BeforeValidator(_preset_or_mapping)] = Field(
        None,
        description="spatial unrolling: a preset name or {preset, conv, depthwise, linear, matmul, fill, "
        "fill_cycles, weight_load} (default: the mat preset)",
    )


class EngineModel(StrictModel):
    kind: EngineKindName = Field(description="mac_array, shift_add_tree or vector")
    rows: PositiveInt = Field(description="parallel rows (output filters or pixels); 1 for vector units")
    pipeline_cycles: NonNegativeInt = Field(0, description="fill/drain latency per tile, cycles (default 0)")
    leakage: PowerRef | None = Field(None, description="energy-table entry: leakage power, W")
    leakage_units: PositiveInt | None = Field(
        None,
        description="instead of leakage: MAC units that each leak the energy table's mac_unit_leakage "
        "(leakage = units x mac_unit_leakage)",
    )
    register_energy: EnergyPerByteRef | None = Field(
        None,
        description="energy-table entry: J per byte of PE register read or written (operands, "
        "accumulators); omit when the op energy includes the registers",
    )
    modes: dict[str, ModeModel] = Field(min_length=1, description="operating modes by name")


class BufferModel(StrictModel):
    capacity: SizeBytes = Field(description="capacity, e.g. '256 KiB' (KB = 1000 B, KiB = 1024 B)")
    bandwidth: BytesPerCycle = Field(description="port width, e.g. '64 B/cycle'")
    holds: list[HoldName] = Field(min_length=1, description="what it stores: weights, activations")
    read_energy: EnergyPerByteRef | None = Field(
        None,
        description="energy-table entry: J per byte read at this port width (default: the energy_table's "
        "SRAM class for the capacity and port width)",
    )
    write_energy: EnergyPerByteRef | None = Field(
        None, description="energy-table entry: J per byte written (default: as read_energy)"
    )
    leakage: PowerRef | None = Field(
        None,
        description="energy-table entry: leakage power, W (default: capacity in KiB x the energy_table's "
        "sram_leakage_per_kib when it has one, else none)",
    )


class DramModel(StrictModel):
    model: Annotated[str, choice(DRAM_MODELS, "DRAM model")] = Field(
        "simple",
        description="simple: one channel with a fixed latency; banked: channels, banks, rows, refresh "
        "and a scheduler from a preset (docs/modelling.md)",
    )
    preset: Annotated[str, choice(list(DRAM_PRESETS), "DRAM preset")] | None = Field(
        None, description=f"banked: the device and its timing, one of {', '.join(DRAM_PRESETS)}"
    )
    address_map: NonEmptyStr | None = Field(
        None,
        description="banked: the address map, most significant field "
        "first, e.g. 'ro:ba:ra:co:bg:ch' (default: the preset's)",
    )
    scheduler: Annotated[str, choice(SCHEDULERS, "DRAM scheduler")] = Field(
        "frfcfs", description="banked: frfcfs (row hits first, then oldest) or fifo"
    )
    queue_depth: PositiveInt = Field(
        DEFAULT_QUEUE_DEPTH,
        description="banked: row segments each channel's "
        "controller sees at once (default 16, DRAMsim3's queue size)",
    )
    refresh: Annotated[str, choice(REFRESH_MODES, "refresh mode")] = Field(
        "all_bank", description="banked: all_bank or per_bank (LPDDR4, LPDDR5, HBM2)"
    )
    peak_bandwidth: Bandwidth | None = Field(
        None,
        description="simple: peak bandwidth, e.g. '19.2 GB/s' "
        "(1 GB/s = 1e9 B/s); banked: the preset's (omit, or give the same)",
    )
    latency: Time | None = Field(
        None, description="simple: first-access latency, e.g. '60 ns' (banked: timed by the model)"
    )
    read_energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte read, I/O included")
    write_energy: EnergyPerByteRef = Field(description="energy-table entry: J per byte written")
    background_power: PowerRef | None = Field(None, description="energy-table entry: background power, W")
    act_energy: EnergyPerOpRef | None = Field(
        None, description="banked: energy-table entry, J per ACT + PRE (default: the preset's)"
    )
    read_burst_energy: EnergyPerOpRef | None = Field(
        None, description="banked: energy-table entry, J per RD burst (default: the preset's)"
    )
    write_burst_energy: EnergyPerOpRef | None = Field(
        None, description="banked: energy-table entry, J per WR burst (default: the preset's)"
    )
    refresh_energy: EnergyPerOpRef | None = Field(
        None, description="banked: energy-table entry, J per all-bank REF (default: the preset's)"
    )
    burst: SizeBytes | None = Field(
        None,
        description="simple: burst size, e.g. '64 B' (default 64 B); banked: "
        "the preset's bus width x burst length",
    )


Position = Annotated[list[NonNegativeInt] | NonNegativeInt | None, Field()]


class InterconnectModel(StrictModel):
    topology: Annotated[str, choice(TOPOLOGIES, "topology")] = Field(
        "bus", description="bus (one shared link, the default), crossbar, mesh or ring (docs/modelling.md)"
    )
    shape: list[PositiveInt] = Field(
        default_factory=list, description="crossbar [ports], mesh [rows, cols], ring [routers]; bus: omit"
    )
    bandwidth: BytesPerCycle = Field(description="bytes per cycle of every link, e.g. '64 B/cycle'")
    latency: Cycles = Field(description="latency per hop (router + link), e.g. '2 cycles'; a bus is one hop")
    energy: EnergyPerByteRef = Field(
        description="energy-table entry: J per byte moved over the bus (or per crossbar traversal)"
    )
    energy_per_byte_hop: EnergyPerByteRef | None = Field(
        None, description="mesh / ring: energy-table entry, J per byte per link"
    )
    placement: dict[str, Position] = Field(
        default_factory=dict,
        description="mesh [row, col], crossbar port or "
        "ring router of dram and every buffer (engines optional)",
    )


class BaselineModel(StrictModel):
    arch: NonEmptyStr = Field(
        description="architecture to compare against: a bundled or search-path name "
        "(uniform_int8) or a YAML path relative to this file"
    )
    policy: NonEmptyStr | None = Field(
        None, description="quantization policy of the comparison run (default uniform_w8a8)"
    )


class ParamsModel(StrictModel):
    """Documented knobs; None means "not set": the reader's default applies (named in each description)."""

    min_tiles: Annotated[int, integer(1)] | None = Field(
        None,
        description="filter chunks per layer when inputs are on chip or the layer is depthwise, an "
        "integer >= 1 (read by archsim/sim/plan.py; default 4 [choice], docs/modelling.md)",
    )
    max_tiles: Annotated[int, integer(1)] | None = Field(
        None,
        description="tiles per layer when activations stream through DRAM, an integer >= 1 "
        "(read by archsim/sim/plan.py; default 16 [choice], docs/modelling.md)",
    )
    sat_lane_area_in_mult8: Annotated[float, number(0, lo_open=True)] | None = Field(
        None,
        description="area of one SAT lane in 8x8-multiplier equivalents, a number > 0; sizes the "
        "equal-budget baseline only, the simulator does not read it (docs/configs.md)",
    )


class MappingOverrideModel(StrictModel):
    layer: NonEmptyStr | None = Field(
        None, description="layer name or glob pattern (fnmatch), e.g. 'stages.0.*'"
    )
    op_kind: OpKindName | None = Field(None, description="every layer of this op kind")
    engines: list[NonEmptyStr] = Field(min_length=1, description="the engines that may run it (names)")


class MappingModel(StrictModel):
    split: Annotated[str, choice(MAPPING_SPLITS, "split rule")] = Field(
        "balanced",
        description="balanced: a splittable layer's filters go to every engine that can run them, in "
        "the proportions with the fewest cycles (the Trio-ViT 'use all PEs' and M2-ViT scheme splits are "
        "special cases); by_scheme: each scheme's filters on its one fastest mode",
    )
    overrides: list[MappingOverrideModel] = Field(
        default_factory=list,
        description="pinned mappings, the first that matches a layer wins: {layer | op_kind, engines}",
    )


class MemoryModel(StrictModel):
    residency: Annotated[str, choice(RESIDENCY_POLICIES, "residency policy")] = Field(
        "live",
        description="live: a layer's output is reserved in the activation buffer's resident half as "
        "the layer starts if it fits then, and freed after its last reader; otherwise it spills to DRAM "
        "(the result says why); fit: the static rule (a tensor stays on chip when its producer's and "
        "consumers' working sets fit the resident half, ignoring what else is live); layer_by_layer: every "
        "layer reads its inputs from DRAM and writes its output to DRAM (the schedule other tools assume)",
    )
    fusion: Annotated[str, switch("fusion")] = Field(
        "off",
        description="on: a depthwise conv and the 1x1 conv that alone reads it run as one pipeline (DW->PW "
        "fusion, Trio-ViT / M2-ViT) where that is estimated faster: the pointwise starts on finished rows, "
        "the intermediate lives in a two-tile window of the resident share instead of whole in the buffer "
        'or DRAM, and each run says per pair whether it fused and why (docs/modelling.md "DW->PW '
        'fusion"); off: a layer waits for its producer to finish',
    )


class ArchModel(StrictModel):
    name: NonEmptyStr = Field(description="architecture name")
    description: Text = Field("", description="free text; its first line is what `archsim list` shows")
    clock: Frequency = Field(description="accelerator clock, e.g. '200 MHz' (whole ps period)")
    static_power: PowerRef | None = Field(None, description="energy-table entry: device static power, W")
    energy_table: Annotated[str, BeforeValidator(_energy_table_name)] | None = Field(
        None,
        description="a named energy table (archsim/data/energy: asic28, fpga_zcu102) whose entries the "
        'fields below may name (docs/configs.md "Energy tables")',
    )
    energy_overrides: dict[str, EnergyEntryModel] = Field(
        default_factory=dict, description="entries of energy_table replaced: name -> {value, source}"
    )
    energy: dict[str, EnergyEntryModel] = Field(
        default_factory=dict,
        description="the inline energy table, or with energy_table the entries it lacks: "
        "name -> {value, source}",
    )
    engines: dict[str, EngineModel] = Field(min_length=1, description="compute engines by name")
    buffers: dict[str, BufferModel] = Field(min_length=1, description="on-chip buffers by name")
    dram: DramModel = Field(description="off-chip memory")
    interconnect: InterconnectModel = Field(description="on-chip interconnect")
    mapping: MappingModel = Field(default_factory=MappingModel, description="mapping rules: split, overrides")
    memory: MemoryModel = Field(default_factory=MemoryModel, description="memory policies: residency")
    params: ParamsModel = Field(
        default_factory=ParamsModel,
        description="documented knobs: min_tiles, max_tiles, sat_lane_area_in_mult8",
    )
    baseline: BaselineModel | None = Field(None, description="default comparison point: {arch, policy}")


def energy_dims(raw: object) -> dict[str, str | None]:
    """The energy table of raw YAML data: entry name -> its dimension (None if unparseable): the named
    ``energy_table``'s entries, then ``energy_overrides`` and ``energy`` (which win).

    Computed before validation so that references can be checked in the same pass as
    everything else (all errors reported at once).
    """
    from archsim.energy.tables import table_dims

    if not isinstance(raw, dict):
        return {}
    dims: dict[str, str | None] = table_dims(raw.get("energy_table"))
    named = set(dims)
    for key in ("energy_overrides", "energy"):
        table = raw.get(key)
        if isinstance(table, dict):
            # an override keeps the table entry's dimension for the references (a different one is
            # reported at the override itself, archsim.arch.loader)
            found = _inline_dims(table)
            dims.update({k: v for k, v in found.items() if key == "energy" or k not in named})
    return dims


def _inline_dims(table: dict) -> dict[str, str | None]:
    dims: dict[str, str | None] = {}
    for name, entry in table.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        try:
            dims[str(name)] = parse_any(value, ENERGY_DIMENSIONS)[1]
        except ValueError:
            dims[str(name)] = None  # its own error is reported at the entry
    return dims
