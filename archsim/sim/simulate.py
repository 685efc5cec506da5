"""``simulate(graph, spec)``: map, plan, run the SimPy model, account energy, check bounds."""

from __future__ import annotations

import math
from fractions import Fraction

import networkx as nx
import numpy as np
from threadpoolctl import threadpool_limits

import archsim
from archsim.arch.spec import ArchSpec
from archsim.energy import accounting
from archsim.energy import bounds as energy_bounds
from archsim.energy import report as energy_report
from archsim.functional.executor import default_input, digest, missing_integer_parameters, quantize_input
from archsim.graph.ir import graph_outputs, layers
from archsim.report.result import EngineResult, LayerResult, SimResult
from archsim.sim import checks as chk
from archsim.sim.dram_banked import BankedDram
from archsim.sim.kernel import PS_PER_S, CountingEnvironment, bytes_per_ps
from archsim.sim.mapping import map_graph
from archsim.sim.plan import Planner, compulsory_dram_bytes
from archsim.sim.scheduler import Scheduler
from archsim.sim.stalls import CAUSES, engine_stalls, layer_stalls
from archsim.sim.stalls import bound as stalls_bound
from archsim.sim.top import Top
from archsim.sim.traffic import layer_traffic
from archsim.sim.values import TileValues

# [choice] BLAS threads while tiles compute their values: the per-tile products are small, and on this
# 2-core machine one thread runs them 4-10x faster than two competing with the simulator (measured:
# benchmarks/bench_functional.py; docs/architecture.md "Functional execution")
FUNCTIONAL_BLAS_THREADS = 1


def simulate(
    graph: nx.DiGraph,
    spec: ArchSpec,
    *,
    workload: dict | None = None,
    values: bool = True,
    image: np.ndarray | None = None,
    arithmetic: dict | None = None,
    tracer=None,
) -> SimResult:
    """Simulate one inference of ``graph`` on ``spec``; deterministic for identical inputs.

    With ``values`` (and a quantized graph) every tile's outputs are computed on its engine's
    arithmetic as it completes (archsim.sim.values) from ``image`` (float, the graph's input shape;
    default :func:`archsim.functional.executor.default_input`); ``result.values`` then holds every
    layer's integers and ``result.functional`` the model outputs and per-layer digests.
    ``arithmetic`` replaces the arithmetic of named engines (tests corrupt one). Timing, energy and
    checks do not depend on ``values``.

    ``tracer`` (an :class:`archsim.sim.trace.Tracer`) records every tile, transfer, buffer occupancy
    and layer as the run goes (docs/traces.md); the result is byte-identical with or without it.
    """
    if graph.number_of_nodes() == 0:
        raise ValueError("simulate: the graph has no layers")
    if not nx.is_directed_acyclic_graph(graph):
        raise ValueError("simulate: the graph has a cycle; a dataflow graph must be acyclic")
    period = spec.clock_period_ps
    mappings = map_graph(graph, spec)
    planner = Planner(graph, spec, mappings)

    tile_values, functional = None, {"computed": False, "reason": "values off (--no-functional)"}
    why_not = missing_integer_parameters(graph) if values else None
    if why_not is not None:
        functional = {"computed": False, "reason": why_not}
    elif values:
        input_desc = {"source": "given"}
        if image is None:
            image, input_desc = default_input(graph)
        codes = quantize_input(graph, image)
        tile_values = TileValues(graph, spec, mappings, codes, arithmetic)
        functional = {
            "computed": True,
            "input": {**input_desc, "shape": list(codes.shape), "sha256": digest(codes)},
        }

    env = CountingEnvironment()
    top = Top(env, spec, tracer)
    if tracer is not None:
        tracer.start(top, graph, mappings, planner.index)
    scheduler = Scheduler(env, top, graph, planner, tile_values)
    scheduler.start()
    with threadpool_limits(limits=FUNCTIONAL_BLAS_THREADS, user_api="blas"):
        env.run()
    unfinished = [n for n, ev in scheduler.done.items() if not ev.triggered]
    if unfinished:
        raise chk.InvariantError(f"simulation stalled with unfinished layers: {unfinished[:5]}")
    plans = scheduler.plans

    latency_ps = max(r.end_ps for r in scheduler.records.values())
    latency_s = latency_ps / PS_PER_S
    latency_cycles = math.ceil(latency_ps / period)
    if tracer is not None:
        tracer.finish(latency_ps)

    banked = isinstance(top.dram, BankedDram)
    layer_results, events = _layer_results(graph, spec, plans, scheduler, period, banked)
    stalls = engine_stalls({n: r.times for n, r in scheduler.records.items()}, latency_ps, list(top.engines))
    events += accounting.static_events(spec, latency_s, banked)
    not_modelled: list[str] = []
    if banked:
        dram_events, not_modelled = accounting.banked_dram_events(
            spec, top.dram.stats(until_ps=latency_ps), latency_s
        )
        events += dram_events
    breakdown = {key: 0.0 for key in accounting.breakdown_keys(spec)}
    breakdown.update(accounting.group(events, lambda e: e.component))
    energy = accounting.total(events)

    engines = _engine_results(top, plans, latency_cycles, period, stalls)
    dram = _dram_stats(top, spec, latency_ps)
    comp_read, comp_write = compulsory_dram_bytes(graph)
    lower = energy_bounds.bounds(graph, spec, plans, comp_read, comp_write)
    checks = _checks(spec, plans, top, latency_ps, energy, lower, comp_read + comp_write, period)
    checks.update(_time_checks(stalls, latency_ps))
    chk.raise_on_violation(checks)
    if tile_values is not None:
        functional.update(_functional_summary(graph, tile_values))
    result = SimResult(
        workload=dict(workload) if workload is not None else _graph_workload(graph),
        arch={"name": spec.name, "sha256": spec.source_sha256 or None, "clock_hz": spec.clock_hz},
        archsim_version=archsim.__version__,
        clock_hz=spec.clock_hz,
        latency_cycles=latency_cycles,
        latency_s=latency_s,
        energy_j=energy,
        edp_js=energy * latency_s,
        energy_breakdown_j=breakdown,
        engines=engines,
        layers=layer_results,
        dram=dram,
        buffers=_buffer_stats(top),
        events=env.events_processed,
        checks=checks,
        provenance=accounting.provenance(spec),
        functional=functional,
        energy=energy_report.energy_block(
            events, spec, graph, layer_results, energy, latency_s, not_modelled
        ),
        bounds=lower,
    )
    result.values = tile_values.values if tile_values is not None else None
    return result


def _functional_summary(graph: nx.DiGraph, tile_values: TileValues) -> dict:
    """The model outputs (every integer) and a digest of every layer's values."""
    values = tile_values.values
    outputs = {}
    for name in graph_outputs(graph):
        v = values[name]
        kind = "codes" if graph.nodes[name]["layer"].quant.out_scale is not None else "accumulators"
        outputs[name] = {
            "shape": list(v.shape),
            "kind": kind,
            "values": v.reshape(-1).astype(np.int64).tolist(),
        }
    return {
        "outputs": outputs,
        "macs": tile_values.executor.macs,
        "layers_sha256": {layer.name: digest(values[layer.name]) for layer in layers(graph)},
    }


def dram_moved_bytes(top: Top) -> int:
    if isinstance(top.dram, BankedDram):
        stats = top.dram.stats()
        return stats.bytes_read + stats.bytes_written
    return top.dram.read_bytes + top.dram.write_bytes


def _dram_stats(top: Top, spec: ArchSpec, latency_ps: int) -> dict:
    """The result's ``dram`` block: bytes, bandwidth, and with the banked model row hits, commands,
    refresh."""
    latency_s = latency_ps / PS_PER_S
    if isinstance(top.dram, BankedDram):
        out = top.dram.stats(until_ps=latency_ps).to_dict()
        out.pop("elapsed_s")
        return {"model": "banked", "preset": spec.dram.banked.preset.name, **out}
    moved = top.dram.read_bytes + top.dram.write_bytes
    return {
        "model": "simple",
        "bytes_read": top.dram.read_bytes,
        "bytes_written": top.dram.write_bytes,
        "achieved_bandwidth_Bps": moved / latency_s if latency_s else 0.0,
        "peak_bandwidth_Bps": spec.dram.peak_bandwidth_bytes_per_s,
        "bus_busy_s": float(top.dram.channel.data_time) / PS_PER_S,
        "row_hit_rate": None,
        "commands": None,
        "refresh_s": None,  # the simple channel has no rows or refresh
    }


def _graph_workload(graph: nx.DiGraph) -> dict:
    return {k: v for k, v in sorted(graph.graph.items()) if k != "order"}


def _layer_results(graph, spec, plans, scheduler, period, banked: bool):
    results, all_events = [], []
    routed = scheduler.top.noc.network is not None
    for layer in layers(graph):
        plan, rec = plans[layer.name], scheduler.records[layer.name]
        streams = plan.mapping.streams
        by_cause = layer_stalls(rec.times)
        bound = stalls_bound(_demands(spec, plan, rec))
        traffic = layer_traffic(plan, spec, rec.dram_input_bytes, rec.dram_write_bytes, rec.weight_load_bytes)
        if routed:  # a routed interconnect: the DMA's counted byte-hops and bus / crossbar traversals
            byte_hops, bus_bytes = scheduler.top.dma.noc_counts.get(layer.name, (0, 0))
        else:  # a bus: every DMA byte once
            byte_hops, bus_bytes = 0, rec.dram_read_bytes + rec.dram_write_bytes
        events = accounting.layer_events(
            layer,
            plan,
            spec,
            rec.dram_input_bytes,
            rec.dram_write_bytes,
            rec.weight_load_bytes,
            rec.dram_read_bytes,
            rec.dram_write_bytes,
            bus_bytes,
            byte_hops,
            banked,
        )
        all_events += events
        parts = accounting.group(events, lambda e: e.component)
        macs = 0 if layer.kind.is_mac is False else sum(s.ops for s in streams)
        results.append(
            LayerResult(
                name=layer.name,
                kind=layer.kind.value,
                engines=plan.mapping.engines,
                mode=plan.mapping.mode_label,
                start_cycle=rec.start_ps // period,
                end_cycle=math.ceil(rec.end_ps / period),
                macs=macs,
                elements=math.prod(layer.out_shape),
                dram_read_bytes=rec.dram_read_bytes,
                dram_write_bytes=rec.dram_write_bytes,
                buffer_bytes=traffic.total,
                energy_j=accounting.total(events),
                energy_breakdown_j=parts,
                apot_fraction=layer.apot_fraction,
                tiles=len(plan.tiles),
                mapping=plan.mapping.reason,
                engine_busy_cycles=_engine_busy_cycles(streams, rec.stream_busy_ps, period),
                output="on_chip" if rec.output_on_chip else "dram",
                placement=rec.placement,
                fusion=rec.fusion,
                bound=bound,
                stall_s={cause: ps / PS_PER_S for cause, ps in by_cause.items()},
            )
        )
    return results, all_events


def _engine_busy_cycles(streams, stream_busy_ps: list[int], period: int) -> dict[str, int]:
    """Engine name -> the layer's busy cycles on it (its streams' tiles; exact: whole cycles per tile)."""
    out: dict[str, int] = {}
    for stream, busy_ps in zip(streams, stream_busy_ps):
        out[stream.engine] = out.get(stream.engine, 0) + busy_ps // period
    return out


def _demands(spec: ArchSpec, plan, rec) -> dict[str, float]:
    """Seconds each resource needed for one layer: compute (its busiest stream), DRAM and interconnect (its
    bytes at peak bandwidth), buffer (its busiest engine port's bytes at the port width)."""
    moved = rec.dram_read_bytes + rec.dram_write_bytes
    port: dict[str, int] = {}
    for tile in plan.tiles:
        for stream_port in tile.port:
            for buffer, reads, writes in stream_port:
                port[buffer] = port.get(buffer, 0) + reads + writes
    clock = spec.clock_hz
    widths = {b.name: b.bandwidth_bytes_per_cycle for b in spec.buffers}
    return {
        "compute": max(rec.stream_busy_ps, default=0) / PS_PER_S,
        "dram": moved / spec.dram.peak_bandwidth_bytes_per_s,
        "interconnect": moved / (spec.interconnect.bandwidth_bytes_per_cycle * clock),
        "buffer": max((n / (widths[b] * clock) for b, n in port.items()), default=0.0),
    }


def _buffer_stats(top: Top) -> dict:
    """Buffer -> its capacity, each region's capacity and peak occupancy, and the whole buffer's peak (B)."""
    out = {}
    for name, buf in sorted(top.buffers.items()):
        out[name] = {
            "capacity_bytes": buf.spec.capacity_bytes,
            "peak_occupancy_bytes": buf.peak_total,
            "regions": {
                r: {"capacity_bytes": buf.capacity[r], "peak_bytes": buf.peak[r]}
                for r in sorted(buf.capacity)
            },
        }
    return out


def _time_checks(stalls: dict, latency_ps: int) -> dict:
    """Every engine's busy time plus its stalls by cause is the run's latency, exactly."""
    out = {}
    for engine, parts in stalls.items():
        total = sum(parts.values())
        out[f"{engine}_time_accounted"] = {
            "value": total / PS_PER_S,
            "bound": latency_ps / PS_PER_S,
            "unit": "s",
            "held": total == latency_ps,
        }
    return out


def _engine_results(top, plans, latency_cycles, period, stalls) -> dict[str, EngineResult]:
    out = {}
    for name, engine in top.engines.items():
        used = {s.mode for p in plans.values() for s in p.mapping.streams if s.engine == name}
        peak = max(
            (engine.spec.peak_ops_per_cycle(m) for m in used),
            default=engine.spec.peak_ops_per_cycle(engine.spec.modes[0].name),
        )
        busy_cycles = engine.busy_ps // period
        out[name] = EngineResult(
            name=engine.path,
            busy_cycles=busy_cycles,
            utilization=busy_cycles / latency_cycles if latency_cycles else 0.0,
            macs=engine.ops,
            peak_ops_per_cycle=peak,
            achieved_ops_per_cycle=engine.ops / busy_cycles if busy_cycles else 0.0,
            stall_s={c: stalls[name][c] / PS_PER_S for c in CAUSES},
        )
    return out


def _checks(spec, plans, top, latency_ps, energy, lower: dict, compulsory: int, period) -> dict:
    work = energy_bounds.compute_work_cycles(plans, spec)
    bw = bytes_per_ps(spec.dram.peak_bandwidth_bytes_per_s)
    bound = chk.roofline_bound_ps(work, compulsory, bw, period)
    moved = dram_moved_bytes(top)
    out = {
        "latency_ge_roofline": chk.check(
            "latency_ge_roofline", latency_ps / PS_PER_S, float(bound) / PS_PER_S, "s"
        ),
        "dram_bandwidth_le_peak": chk.check(
            "dram_bandwidth_le_peak",
            float(Fraction(moved) / latency_ps * PS_PER_S),
            spec.dram.peak_bandwidth_bytes_per_s,
            "B/s",
            upper=True,
        ),
        "energy_ge_lower_bound": chk.check(
            "energy_ge_lower_bound", energy, lower["energy_j"]["value"], "J", tol=chk.REL_TOL
        ),
    }
    if Fraction(latency_ps) < bound:  # exact comparison; the float record above is for reports
        out["latency_ge_roofline"]["held"] = False
    for name, engine in top.engines.items():
        peak = max(engine.spec.peak_ops_per_cycle(m.name) for m in engine.spec.modes)
        busy_cycles = Fraction(engine.busy_ps, period)
        out[f"{name}_ops_per_cycle_le_peak"] = chk.check(
            name, float(engine.ops / busy_cycles) if busy_cycles else 0.0, peak, "ops/cycle", upper=True
        )
    return out
