"""Lower bounds no run may beat (energy.md section 6; Williams, Waterman & Patterson, CACM 2009 [S]).

- latency: T_min = max(T_compute, T_dram), T_compute = max over engines of sum(stream ops / peak ops per
  cycle of the stream's mode) cycles (engines run in parallel), T_dram = compulsory DRAM bytes / peak
  bandwidth (weights + graph inputs + graph outputs, unrounded; peak, not derated);
- energy: E_min = sum over streams of ops x the cheapest J per op any mode listing the layer's kind has
  + compulsory bytes read x the cheapest DRAM J per byte read (+ written) (banked: a row-hit RD / WR burst
  over its bytes, no ACT) + static power x T_min;
- EDP: E_min x T_min (both factors are lower bounds of positive quantities).
"""

from __future__ import annotations

from fractions import Fraction

from archsim.arch.spec import ArchSpec
from archsim.energy import accounting
from archsim.graph.ir import OpKind
from archsim.sim.kernel import PS_PER_S


def compute_work_cycles(plans, spec: ArchSpec) -> dict[str, Fraction]:
    """Engine -> sum over its streams of ops / peak ops per cycle of the stream's mode (exact)."""
    work: dict[str, Fraction] = {}
    for plan in plans.values():
        for s in plan.mapping.streams:
            peak = spec.engine(s.engine).peak_ops_per_cycle(s.mode)
            work[s.engine] = work.get(s.engine, Fraction(0)) + Fraction(s.ops, peak)
    return work


def min_op_energy_j(spec: ArchSpec, kind: OpKind) -> float:
    """The cheapest J per op of ``kind`` over every mode of every engine that lists it."""
    prices = [m.op_energy(kind.value).value for e in spec.engines for m in e.modes if kind in m.op_kinds]
    return min(prices, default=0.0)


def min_dram_j_per_byte(spec: ArchSpec) -> tuple[float, float]:
    """(read, write) J per byte of DRAM traffic at its cheapest: the simple model's entries; banked: a RD or
    WR burst (row hit: no ACT, no refresh) over its bytes, 0 where no source gives the coefficient."""
    if spec.dram.model == "banked" and spec.dram.banked is not None:
        entries = accounting.banked_entries(spec)
        burst = spec.dram.burst_bytes
        return tuple(0.0 if entries[k] is None else entries[k].value / burst for k in ("RD", "WR"))  # type: ignore[return-value]
    return spec.dram.read_energy.value, spec.dram.write_energy.value


def static_power_bound_w(spec: ArchSpec) -> float:
    """Power drawn whatever the run does: leakage, device static, DRAM background (banked: the preset's
    background x its ranks or channels)."""
    banked = spec.dram.model == "banked" and spec.dram.banked is not None
    watts = accounting.static_power_w(spec, banked)
    if banked:
        entry = accounting.banked_entries(spec)["background"]
        if entry is not None:
            preset = spec.dram.banked.preset
            org = preset.organization
            scope = org.channels * (org.ranks if preset.energy.background_scope == "rank" else 1)
            watts += entry.value * scope
    return watts


def bounds(graph, spec: ArchSpec, plans, compulsory_read: int, compulsory_write: int) -> dict:
    """The ``bounds`` block of a result: latency_s, energy_j and edp_js, each with its terms and unit."""
    from archsim.graph.ir import layers

    period = spec.clock_period_ps
    work = compute_work_cycles(plans, spec)
    compute_s = float(max(work.values(), default=Fraction(0)) * period) / PS_PER_S
    dram_s = (compulsory_read + compulsory_write) / spec.dram.peak_bandwidth_bytes_per_s
    latency_s = max(compute_s, dram_s)
    ops_j = 0.0
    for layer in layers(graph):
        price = min_op_energy_j(spec, layer.kind)
        ops_j += sum(s.ops for s in plans[layer.name].mapping.streams) * price
    read_j, write_j = min_dram_j_per_byte(spec)
    dram_j = compulsory_read * read_j + compulsory_write * write_j
    static_j = static_power_bound_w(spec) * latency_s
    energy_j = ops_j + dram_j + static_j
    return {
        "latency_s": {
            "value": latency_s,
            "unit": "s",
            "compute_s": compute_s,
            "dram_s": dram_s,
            "rule": "max(max over engines of sum(ops / peak ops per cycle) / clock, "
            "compulsory DRAM bytes / peak bandwidth)",
        },
        "energy_j": {
            "value": energy_j,
            "unit": "J",
            "ops_j": ops_j,
            "dram_j": dram_j,
            "static_j": static_j,
            "rule": "ops x cheapest J per op of their kind + compulsory DRAM bytes x cheapest J/B "
            "+ static power x latency bound",
        },
        "edp_js": {"value": energy_j * latency_s, "unit": "J*s"},
        "compulsory_dram_bytes": {"read": compulsory_read, "write": compulsory_write, "unit": "B"},
    }
