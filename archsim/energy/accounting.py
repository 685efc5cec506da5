"""Energy accounting from what the simulation did: a list of counted events, energy = sum(count x J/event).

Every event (:class:`EnergyEvent`) is (layer, component, engine, kind, count, coefficient, J per event); a
run's energy is the sum of count x J per event over its events, exactly, and every total the result reports
(by component, engine, layer, op kind) is a sum over the same list. One function per rule
(docs/modelling.md "Energy" gives each formula):

- :func:`engine_op_events`: ops x the mode's J per op for the layer's kind (MACs, shift-adds, vector ops);
- :func:`epilogue_events`: 1 vector op per output element per fused epilogue op that is an op (bias, the
  activation, requant, the ReLUs of an access program; ``bn_folded`` is bookkeeping: the BatchNorm is in the
  weights and the bias, so it costs nothing of its own), each priced by the vector mode's entry for its tag;
- :func:`register_events`: PE register bits: operands per op, the accumulator read and written per adder-tree
  output, for engines whose ``register_energy`` is given (else the op energy includes them);
- :func:`buffer_events`: buffer port accesses, each of the port's full width: ceil(bytes / port width) per
  access stream (archsim.sim.traffic.tile_accesses: weights and inputs one stream per fold, outputs one per
  output block, the partial sums of split reductions) plus the DMA's fills and drains in whole words;
- :func:`dram_events`: the simple model's burst-rounded bytes x J/B; :func:`banked_dram_events`: the banked
  model's commands (ACT+PRE, RD, WR, REF) x J per command and its background power x time;
- :func:`interconnect_events`: bytes x J/B on a bus (or per crossbar traversal), byte-hops x J/B on a mesh or
  ring;
- :func:`static_events`: leakage and background power x the run's latency (component ``static``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from archsim.arch.spec import ArchSpec, EnergyEntry, EngineKind, EngineMode
from archsim.graph.access import relu_steps
from archsim.graph.ir import VECTOR_KINDS, Epilogue, Layer, OpKind
from archsim.sim.traffic import ACC_BITS, AccessStream, BufferTraffic

__all__ = ["BufferTraffic", "EnergyEvent"]

STATIC_KEY = "static"
DRAM_KEY = "dram"
NOC_KEY = "interconnect"
RUN = "(run)"  # the layer of run-level events: static power, the banked DRAM's commands
# fused epilogue tags that are not an op of their own: the BatchNorm folded into the weights and the bias
# (its add is the bias entry's)
BOOKKEEPING_EPILOGUES = frozenset({Epilogue.BN_FOLDED})


@dataclass(frozen=True)
class EnergyEvent:
    """``count`` events of one kind on one component, each costing ``joules_per_event`` (J)."""

    layer: str  # the layer name, or RUN
    op_kind: str  # the layer's op kind ("" for run-level events)
    component: str  # engine or buffer name, dram, interconnect, static
    engine: str  # the engine it serves ("" when none: DMA, DRAM, interconnect, non-engine static)
    kind: str  # e.g. mac, shift_add, vector_op, epilogue:requant, pe_register, inputs_read, ACT+PRE, leakage
    count: float  # events (ops, accesses, bits, bytes, byte-hops, commands, seconds)
    count_unit: str
    coefficient: str  # the energy entry's name
    joules_per_event: float

    @property
    def joules(self) -> float:
        return self.count * self.joules_per_event

    def to_dict(self) -> dict:
        d = asdict(self)
        d["joules"] = self.joules
        return d


def _event(layer: Layer | None, component, engine, kind, count, unit, entry: EnergyEntry, scale=1.0):
    return EnergyEvent(
        layer=RUN if layer is None else layer.name,
        op_kind="" if layer is None else layer.kind.value,
        component=component,
        engine=engine,
        kind=kind,
        count=count,
        count_unit=unit,
        coefficient=entry.name,
        joules_per_event=entry.value * scale,
    )


# -- engines ------------------------------------------------------------------------------------------


def op_event_kind(spec: ArchSpec, engine: str, layer: Layer) -> str:
    kind = spec.engine(engine).kind
    if layer.kind in VECTOR_KINDS or kind == EngineKind.VECTOR:
        return "vector_op"
    return "shift_add" if kind == EngineKind.SHIFT_ADD_TREE else "mac"


def engine_op_events(layer: Layer, streams, spec: ArchSpec) -> list[EnergyEvent]:
    """Per stream: its ops x its mode's J per op for the layer's kind (EngineMode.op_energy)."""
    out = []
    for s in streams:
        entry = spec.engine(s.engine).mode(s.mode).op_energy(layer.kind.value)
        out.append(
            _event(layer, s.engine, s.engine, op_event_kind(spec, s.engine, layer), s.ops, "ops", entry)
        )
    return out


def epilogue_mode(spec: ArchSpec) -> EngineMode | None:
    """The vector mode whose entries price fused epilogue ops (activation mode first)."""
    for engine in spec.engines:
        if engine.kind == EngineKind.VECTOR:
            for mode in engine.modes:
                if OpKind.ACTIVATION in mode.op_kinds:
                    return mode
            return engine.modes[0]
    return None


def epilogue_engine(spec: ArchSpec) -> str | None:
    for engine in spec.engines:
        if engine.kind == EngineKind.VECTOR:
            return engine.name
    return None


def epilogue_counts(layer: Layer) -> dict[str, int]:
    """Epilogue tag -> vector ops: one per output element per fused op (bookkeeping tags excluded), and one
    per output element per ReLU of an operand's access program (the ReLU on q and k of linear attention)."""
    elements = math.prod(layer.out_shape)
    counts: dict[str, int] = {}
    for tag in layer.epilogue:
        if tag not in BOOKKEEPING_EPILOGUES:
            counts[tag.value] = counts.get(tag.value, 0) + elements
    relus = sum(relu_steps(op.program) for op in layer.operands)
    if relus:
        counts[Epilogue.RELU.value] = counts.get(Epilogue.RELU.value, 0) + elements * relus
    return counts


def epilogue_ops(layer: Layer) -> int:
    """All fused epilogue vector ops of a layer (:func:`epilogue_counts` summed)."""
    return sum(epilogue_counts(layer).values())


def epilogue_events(layer: Layer, streams, spec: ArchSpec) -> list[EnergyEvent]:
    """Each fused epilogue op priced once, on the vector engine (its time is hidden in the producer's
    pipeline); without a vector unit, by the producing mode's entries."""
    counts = epilogue_counts(layer)
    if not counts:
        return []
    mode, key = epilogue_mode(spec), epilogue_engine(spec)
    if mode is None:
        key, mode = streams[0].engine, spec.engine(streams[0].engine).mode(streams[0].mode)
    return [
        _event(layer, key, key, f"epilogue:{tag}", n, "ops", mode.op_energy(tag)) for tag, n in counts.items()
    ]


REDUCTION_DIMS = frozenset("CT")  # the reduction's loop dims (input channels, kernel taps); depthwise: T


def tree_reduction(layer: Layer, stream, spec: ArchSpec) -> int:
    """Products one adder tree sums per cycle: the extent of the reduction dims on the lanes
    (min(lanes, their bound)); 1 when the reduction runs down the rows (systolic: partial sums pass PE to
    PE through registers) or is streamed (output stationary: each PE accumulates locally)."""
    from archsim.graph.opkinds import rule
    from archsim.sim.latency import loop_bounds

    engine = spec.engine(stream.engine)
    mode = engine.mode(stream.mode)
    family = rule(layer.kind).family
    unrolling = mode.dataflow.unrolling(family)
    bounds = loop_bounds(stream.dims, family)
    dims = [d for d in unrolling.lanes if d in REDUCTION_DIMS]
    return min(mode.lanes, math.prod(bounds[d] for d in dims)) if dims else 1


def register_bits(layer: Layer, stream, spec: ArchSpec) -> int:
    """PE register bits a stream reads and writes: per op its weight and activation operands (the mode's
    widths); per accumulation, the accumulator read and written (ACC_BITS each), one accumulation per
    adder-tree output (ops / :func:`tree_reduction`, rounded up) [choice: ZigZag's register accesses]."""
    mode = spec.engine(stream.engine).mode(stream.mode)
    accumulations = -(-stream.ops // tree_reduction(layer, stream, spec))
    return stream.ops * (mode.weight_bits + mode.act_bits) + accumulations * 2 * ACC_BITS


def register_events(layer: Layer, streams, spec: ArchSpec) -> list[EnergyEvent]:
    """Per stream on an engine with ``register_energy``: its register bits (:func:`register_bits`), at J/B / 8
    per bit."""
    out = []
    for s in streams:
        engine = spec.engine(s.engine)
        if engine.register_energy is None or layer.kind in VECTOR_KINDS:
            continue
        bits = register_bits(layer, s, spec)
        entry = engine.register_energy
        out.append(_event(layer, s.engine, s.engine, "pe_register", bits, "bits", entry, 1 / 8))
    return out


# -- buffers ------------------------------------------------------------------------------------------


def access_counts(plan, streams) -> dict[tuple[str, str, str], int]:
    """(engine, buffer, kind) -> port accesses of the layer's tiles (kind: <operand>_read / _write)."""
    out: dict[tuple[str, str, str], int] = {}
    for tile in plan.tiles:
        for stream, accesses in zip(streams, tile.accesses):
            for a in accesses:
                a: AccessStream
                key = (stream.engine, a.buffer, f"{a.operand}_{'write' if a.write else 'read'}")
                out[key] = out.get(key, 0) + a.accesses()
    return out


def dma_accesses(nbytes: int, port_bytes: int) -> int:
    """Port accesses of a DMA fill or drain: whole port words, ceil(bytes / width) [choice]."""
    return -(-nbytes // port_bytes) if nbytes else 0


def buffer_events(
    layer: Layer, plan, streams, spec: ArchSpec, dram_in: int, dram_out: int, weight_load: int
) -> list[EnergyEvent]:
    """Every port access of the layer's buffers at the port's full width: J per access = width x J/B."""
    buffers = {b.name: b for b in spec.buffers}
    out = []

    def price(engine: str, buffer: str, kind: str, n: int) -> None:
        if not n:
            return
        b = buffers[buffer]
        entry = b.write_energy if kind.endswith("_write") else b.read_energy
        out.append(_event(layer, buffer, engine, kind, n, "accesses", entry, b.bandwidth_bytes_per_cycle))

    for (engine, buffer, kind), n in sorted(access_counts(plan, streams).items()):
        price(engine, buffer, kind, n)
    abuf, wbuf = spec.buffer_for("activations"), spec.buffer_for("weights")
    price("", abuf.name, "dma_write", dma_accesses(dram_in, abuf.bandwidth_bytes_per_cycle))
    price("", abuf.name, "dma_read", dma_accesses(dram_out, abuf.bandwidth_bytes_per_cycle))
    price("", wbuf.name, "dma_write", dma_accesses(weight_load, wbuf.bandwidth_bytes_per_cycle))
    return out


# -- DRAM, interconnect, static -----------------------------------------------------------------------


def dram_events(layer: Layer, spec: ArchSpec, read_bytes: int, write_bytes: int) -> list[EnergyEvent]:
    """The simple model: burst-rounded bytes x J/B (I/O included in the entries)."""
    out = []
    for kind, n, entry in (
        ("read_byte", read_bytes, spec.dram.read_energy),
        ("write_byte", write_bytes, spec.dram.write_energy),
    ):
        if n:
            out.append(_event(layer, DRAM_KEY, "", kind, n, "bytes", entry))
    return out


def preset_entry(spec: ArchSpec, field: str) -> EnergyEntry | None:
    """The banked preset's coefficient ``field`` (archsim.arch.dram_presets.DramEnergy) as an entry."""
    preset = spec.dram.banked.preset
    value = getattr(preset.energy, field)
    if value is None:
        return None
    unit = "W" if field == "background_w" else "J"
    source = dict(preset.sources).get(field, "")
    return EnergyEntry(f"{preset.name}.{field}", value, unit, source, origin=f"dram preset {preset.name}")


def banked_entries(spec: ArchSpec) -> dict[str, EnergyEntry | None]:
    """Command -> its entry: the arch's (act_energy, ...) where given, else the preset's."""
    d = spec.dram
    return {
        "ACT+PRE": d.act_energy or preset_entry(spec, "act_pre_j"),
        "RD": d.read_burst_energy or preset_entry(spec, "read_burst_j"),
        "WR": d.write_burst_energy or preset_entry(spec, "write_burst_j"),
        "REF": d.refresh_energy or preset_entry(spec, "refresh_j"),
        "background": d.background_power or preset_entry(spec, "background_w"),
    }


def banked_dram_events(spec: ArchSpec, stats, elapsed_s: float) -> tuple[list[EnergyEvent], list[str]]:
    """The banked model: N_ACT x E_ACT+PRE + N_RD x E_RD + N_WR x E_WR + N_REF x E_REF (a per-bank REF is
    E_REF / banks per rank [I]) + P_bg x T x (ranks or channels); commands whose coefficient no source gives
    are listed as not modelled (second value)."""
    org = spec.dram.banked.preset.organization
    entries = banked_entries(spec)
    scope = org.channels * (org.ranks if spec.dram.banked.preset.energy.background_scope == "rank" else 1)
    ref_scale = 1 / org.banks_per_rank if stats.per_bank_refresh else 1.0
    counts = (
        ("ACT+PRE", stats.activates, "commands", 1.0),
        ("RD", stats.reads, "commands", 1.0),
        ("WR", stats.writes, "commands", 1.0),
        ("REF", stats.refreshes, "commands", ref_scale),
        ("background", elapsed_s * scope, "s", 1.0),
    )
    out, missing = [], []
    for kind, n, unit, scale in counts:
        if not n:
            continue
        entry = entries[kind]
        if entry is None:
            missing.append(f"dram {kind}: no sourced coefficient ({n} {unit} not priced)")
            continue
        out.append(_event(None, DRAM_KEY, "", kind, n, unit, entry, scale))
    return out, missing


def interconnect_events(
    layer: Layer, spec: ArchSpec, bus_bytes: int, byte_hops: int = 0
) -> list[EnergyEvent]:
    """Bytes x J/B over a bus (per traversal on a crossbar) and byte-hops x J/B on mesh / ring links."""
    noc = spec.interconnect
    out = []
    if bus_bytes:
        out.append(_event(layer, NOC_KEY, "", "bus_byte", bus_bytes, "bytes", noc.energy))
    if byte_hops and noc.energy_per_byte_hop is not None:
        out.append(
            _event(layer, NOC_KEY, "", "link_byte_hop", byte_hops, "byte-hops", noc.energy_per_byte_hop)
        )
    return out


def static_sources(spec: ArchSpec, banked: bool = False) -> list[tuple[str, EnergyEntry]]:
    """(engine or "", power entry) of everything drawing power while on: engine and buffer leakage, the
    simple DRAM's background power (the banked model prices its own), the device's static power."""
    out = [(e.name, e.leakage_power) for e in spec.engines if e.leakage_power is not None]
    out += [("", b.leakage_power) for b in spec.buffers if b.leakage_power is not None]
    if spec.dram.background_power is not None and not banked:
        out.append(("", spec.dram.background_power))
    if spec.static_power is not None:
        out.append(("", spec.static_power))
    return out


def static_events(spec: ArchSpec, latency_s: float, banked: bool = False) -> list[EnergyEvent]:
    """Each power entry x the run's latency (static energy is not attributed to layers)."""
    return [
        _event(None, STATIC_KEY, engine, "leakage", latency_s, "s", entry)
        for engine, entry in static_sources(spec, banked)
    ]


def static_power_w(spec: ArchSpec, banked: bool = False) -> float:
    return sum(entry.value for _, entry in static_sources(spec, banked))


# -- one layer, totals ----------------------------------------------------------------------------------


def layer_events(
    layer: Layer,
    plan,
    spec: ArchSpec,
    dram_in: int,
    dram_out: int,
    weight_load: int,
    dram_read_bytes: int,
    dram_write_bytes: int,
    bus_bytes: int,
    byte_hops: int = 0,
    banked: bool = False,
) -> list[EnergyEvent]:
    """Every energy event of one layer (the banked DRAM's are run-level: :func:`banked_dram_events`)."""
    streams = plan.mapping.streams
    events = engine_op_events(layer, streams, spec)
    events += epilogue_events(layer, streams, spec)
    events += register_events(layer, streams, spec)
    events += buffer_events(layer, plan, streams, spec, dram_in, dram_out, weight_load)
    if not banked:
        events += dram_events(layer, spec, dram_read_bytes, dram_write_bytes)
    events += interconnect_events(layer, spec, bus_bytes, byte_hops)
    return events


def total(events: Iterable[EnergyEvent]) -> float:
    """sum(count x J per event): math.fsum, so every grouping of the same events sums the same to 1 ulp."""
    return math.fsum(e.joules for e in events)


def group(events: Iterable[EnergyEvent], key) -> dict[str, float]:
    """Energy by ``key(event)`` (J), keys sorted."""
    parts: dict[str, list[float]] = {}
    for e in events:
        parts.setdefault(key(e), []).append(e.joules)
    return {k: math.fsum(v) for k, v in sorted(parts.items())}


def breakdown_keys(spec: ArchSpec) -> list[str]:
    return [e.name for e in spec.engines] + [b.name for b in spec.buffers] + [DRAM_KEY, NOC_KEY, STATIC_KEY]


def energy_entries(spec: ArchSpec) -> list[EnergyEntry]:
    """Every energy coefficient of the spec (per op, per byte, power), in spec order, each once."""
    entries: list[EnergyEntry] = []
    for e in spec.engines:
        for m in e.modes:
            entries.append(m.energy_per_op)
            entries.extend(entry for _, entry in m.energy_by_kind)
        entries.extend(x for x in (e.leakage_power, e.register_energy) if x is not None)
    for b in spec.buffers:
        entries.extend([b.read_energy, b.write_energy] + ([b.leakage_power] if b.leakage_power else []))
    d = spec.dram
    entries.extend([d.read_energy, d.write_energy])
    entries.extend(
        x
        for x in (
            d.background_power,
            d.act_energy,
            d.read_burst_energy,
            d.write_burst_energy,
            d.refresh_energy,
        )
        if x is not None
    )
    if d.model == "banked" and d.banked is not None:
        entries.extend(x for x in banked_entries(spec).values() if x is not None)
    entries.append(spec.interconnect.energy)
    if spec.interconnect.energy_per_byte_hop is not None:
        entries.append(spec.interconnect.energy_per_byte_hop)
    if spec.static_power is not None:
        entries.append(spec.static_power)
    seen, out = set(), []
    for e in entries:
        if e.name not in seen:
            seen.add(e.name)
            out.append(e)
    return out


def provenance(spec: ArchSpec) -> dict[str, dict]:
    """Energy entry name -> {value_si, unit, source, origin}; value in SI (J per unit, or W)."""
    return {
        e.name: {"value_si": e.value, "unit": e.unit, "source": e.source, "origin": e.origin}
        for e in energy_entries(spec)
    }
