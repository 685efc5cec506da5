"""The result of one simulation: what reports, JSON and sweeps read.

All times are integer picoseconds inside the simulator; results give seconds and cycles.
Energies are joules. Every field name ends in its unit where it is not obvious.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class LayerResult:
    name: str
    kind: str
    engines: list[str]  # engines that computed it (two for a split pointwise layer)
    mode: str  # engine mode(s), e.g. "merged+shift_add"
    start_cycle: int
    end_cycle: int
    macs: int
    elements: int
    dram_read_bytes: int
    dram_write_bytes: int
    buffer_bytes: int  # on-chip buffer reads + writes
    energy_j: float
    energy_breakdown_j: dict[str, float]
    apot_fraction: float = 0.0
    tiles: int = 0
    mapping: str = ""  # why the mapper chose these engines and this split (archsim.sim.mapping)
    # engine name -> busy cycles of this layer's tiles on it; below end - start when the engine stalls
    # inside the layer (waiting for DMA, a tile slot, or the other half of a split layer)
    engine_busy_cycles: dict[str, int] = field(default_factory=dict)
    output: str = ""  # where its output went: on_chip (the activation buffer) or dram
    placement: str = ""  # why (archsim.sim.scheduler: the residency policy's reason, or what spilled it)
    # the resource it kept busiest (archsim.sim.stalls.bound): compute, dram, interconnect or buffer; and the
    # time of its busiest stream by cause over the layer's span (busy + causes = the layer's duration)
    bound: str = ""
    stall_s: dict[str, float] = field(default_factory=dict)
    fusion: str = ""  # a DW->PW pair's member (memory.fusion on): fused with whom, or why not

    @property
    def cycles(self) -> int:
        return self.end_cycle - self.start_cycle


@dataclass
class EngineResult:
    name: str
    busy_cycles: int
    utilization: float  # busy cycles / total cycles
    macs: int  # MACs, shift-adds or vector ops executed
    peak_ops_per_cycle: int
    achieved_ops_per_cycle: float  # over its busy time
    # the run's latency split (archsim.sim.stalls): busy plus the stall of each cause sum to latency_s
    stall_s: dict[str, float] = field(default_factory=dict)


@dataclass
class SimResult:
    workload: dict
    arch: dict
    archsim_version: str
    clock_hz: float
    latency_cycles: int
    latency_s: float
    energy_j: float
    edp_js: float
    energy_breakdown_j: dict[str, float]  # by component: engines, buffers, dram, noc, static
    engines: dict[str, EngineResult]
    layers: list[LayerResult]
    dram: dict = field(default_factory=dict)  # bytes read/written, achieved bandwidth
    # buffer -> capacity, each region's capacity and peak occupancy, the whole buffer's peak (bytes)
    buffers: dict = field(default_factory=dict)
    events: int = 0  # SimPy events processed
    checks: dict = field(default_factory=dict)  # lower bounds and whether they held
    provenance: dict = field(default_factory=dict)  # energy entry -> source
    # functional compute: {"computed": bool, "input", "outputs" (the model's output integers),
    # "layers_sha256", "macs"}; `values` (every layer's integers, not serialized) is set by simulate
    functional: dict = field(default_factory=dict)
    # the counted energy events and their totals (archsim.energy.report.energy_block): by component, engine,
    # layer, op kind; per inference and per MAC; EDP; every coefficient with its unit and source
    energy: dict = field(default_factory=dict)
    # lower bounds no run may beat (archsim.energy.bounds): latency_s, energy_j, edp_js with their terms
    bounds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["units"] = {
            "latency_s": "s",
            "latency_cycles": "cycles of the accelerator clock",
            "energy_j": "J",
            "edp_js": "J*s",
            "energy_breakdown_j": "J",
            "layers.start_cycle": "cycles",
            "layers.engine_busy_cycles": "cycles",
            "layers.energy_j": "J",
            "engines.busy_cycles": "cycles",
            "engines.stall_s": "s",
            "layers.stall_s": "s",
            "buffers": "B",
            "energy": "J unless a key or its unit field says otherwise",
            "bounds": "each entry's unit field",
        }
        return d
