"""Energy accounting: dynamic energy per layer from counted work and traffic, plus static.

Formulas (docs/modelling.md, "Energy"):
- engines: ops x the mode's energy_per_op (MACs on the MAC array, shift-adds on the SAT,
  vector ops on the vector unit); a layer's fused epilogue costs 1 vector op per output
  element per epilogue op, charged to the vector engine's energy entry (its time is
  hidden in the producing engine's pipeline);
- buffers: bytes x read/write J/B, the bytes of archsim.sim.traffic (each tile's engine-side reads and
  writes under its dataflow's reuse, plus the DMA's);
- DRAM: bytes read/written (burst-rounded) x J/B; interconnect: bytes moved x J/B;
- static: (engine + buffer leakage + DRAM background + device static power) x total latency.
"""

from __future__ import annotations

import math

from archsim.arch.spec import ArchSpec, EnergyEntry, EngineKind, EngineMode
from archsim.graph.access import relu_steps
from archsim.graph.ir import Layer, OpKind
from archsim.sim.traffic import BufferTraffic

STATIC_KEY = "static"
DRAM_KEY = "dram"
NOC_KEY = "interconnect"


def epilogue_mode(spec: ArchSpec) -> EngineMode | None:
    """The vector mode whose energy_per_op prices fused epilogue ops (activation mode first)."""
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


def layer_energy(
    layer: Layer,
    streams,
    spec: ArchSpec,
    traffic: BufferTraffic,
    dram_read_bytes: int,
    dram_write_bytes: int,
    noc_bytes: int,
    noc_energy_j: float | None = None,
) -> dict[str, float]:
    """Dynamic energy of one layer by component (J); keys are engine/buffer names, dram, interconnect."""
    out: dict[str, float] = {}

    def add(key: str, joules: float) -> None:
        out[key] = out.get(key, 0.0) + joules

    for s in streams:
        add(s.engine, s.ops * spec.engine(s.engine).mode(s.mode).energy_per_op.value)
    if epilogue_ops(layer):
        mode = epilogue_mode(spec)
        key = epilogue_engine(spec)
        if mode is None:  # no vector unit: the producing engine's own op energy prices it
            key, mode = streams[0].engine, spec.engine(streams[0].engine).mode(streams[0].mode)
        add(key, epilogue_ops(layer) * mode.energy_per_op.value)
    for buf in spec.buffers:
        reads, writes = traffic.reads.get(buf.name, 0), traffic.writes.get(buf.name, 0)
        if reads or writes:
            add(buf.name, reads * buf.read_energy.value + writes * buf.write_energy.value)
    add(
        DRAM_KEY,
        dram_read_bytes * spec.dram.read_energy.value + dram_write_bytes * spec.dram.write_energy.value,
    )
    # a bus: every byte once x J/B; a routed interconnect: its byte-hops and crossings, priced by the DMA
    add(NOC_KEY, noc_bytes * spec.interconnect.energy.value if noc_energy_j is None else noc_energy_j)
    return out


def epilogue_ops(layer: Layer) -> int:
    """1 vector op per output element per fused epilogue op (every epilogue entry, and every ReLU of an
    operand's access program: the ReLU on q and k of linear attention)."""
    relus = sum(relu_steps(op.program) for op in layer.operands)
    return math.prod(layer.out_shape) * (len(layer.epilogue) + relus)


def static_power_w(spec: ArchSpec) -> float:
    watts = sum(e.leakage_power.value for e in spec.engines if e.leakage_power is not None)
    watts += sum(b.leakage_power.value for b in spec.buffers if b.leakage_power is not None)
    if spec.dram.background_power is not None:
        watts += spec.dram.background_power.value
    device = getattr(spec, "static_power", None)  # whole-device static (FPGA), beyond component leakage
    if device is not None:
        watts += device.value
    return watts


def breakdown_keys(spec: ArchSpec) -> list[str]:
    return [e.name for e in spec.engines] + [b.name for b in spec.buffers] + [DRAM_KEY, NOC_KEY, STATIC_KEY]


def energy_entries(spec: ArchSpec) -> list[EnergyEntry]:
    """Every energy coefficient of the spec (per op, per byte, power), in spec order."""
    entries: list[EnergyEntry] = []
    for e in spec.engines:
        entries.extend(m.energy_per_op for m in e.modes)
        if e.leakage_power is not None:
            entries.append(e.leakage_power)
    for b in spec.buffers:
        entries.extend([b.read_energy, b.write_energy] + ([b.leakage_power] if b.leakage_power else []))
    entries.extend([spec.dram.read_energy, spec.dram.write_energy])
    if spec.dram.background_power is not None:
        entries.append(spec.dram.background_power)
    entries.append(spec.interconnect.energy)
    if getattr(spec, "static_power", None) is not None:
        entries.append(spec.static_power)
    return entries


def provenance(spec: ArchSpec) -> dict[str, dict]:
    """Energy entry name -> {value, unit, source}; value in SI (J per unit, or W)."""
    return {e.name: {"value_si": e.value, "unit": e.unit, "source": e.source} for e in energy_entries(spec)}
