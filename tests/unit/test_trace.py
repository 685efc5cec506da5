"""Traces of a simulated run (archsim.sim.trace, archsim.report.trace_json, archsim.report.vcd).

The trace is checked as a viewer would read it: required fields per event phase, timestamps that
are exact picoseconds and monotonic per track, balanced B/E slices, numeric counters, every layer,
both ends of every flow bound to a slice; and against the result: slice durations on each engine
sum exactly to the engine's busy time, per layer to the layer's engine_busy_cycles.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
from sim_fixtures import KIB, depthwise, eltwise, m2vit_spec, pointwise

from archsim.graph.ir import OpKind, add_layer
from archsim.report import trace_layout as tl
from archsim.report.plots import _union as merged  # the union of intervals the plots use
from archsim.report.trace_json import to_trace_json, us
from archsim.report.vcd import high_intervals, read_vcd, to_vcd, vcd_signals, write_vcd
from archsim.report.writers import to_json
from archsim.sim import simulate
from archsim.sim.trace import LayerInfo, Slice, Tracer

PERIOD_PS = 5000  # 200 MHz fixture clock


def residual_graph() -> nx.DiGraph:
    """pw1 (split: every third filter APoT) -> dw -> pw2 (split) -> add(pw1, pw2): four layers, four edges."""
    g = nx.DiGraph(model="test", resolution=16, batch=1)
    mask = np.arange(64) % 3 == 0
    add_layer(g, pointwise("pw1", 32, 64, 16, apot_mask=mask), [None])
    add_layer(g, depthwise("dw", 64, 16), ["pw1"])
    add_layer(g, pointwise("pw2", 64, 64, 16, apot_mask=mask), ["dw"])
    add_layer(g, eltwise("add", OpKind.ADD, (1, 64, 16, 16), 2), ["pw1", "pw2"])
    return g


def small_buffers():
    """The fixture with a 64 KiB activation buffer: every intermediate spills to DRAM."""
    spec = m2vit_spec()
    act = spec.buffer_for("activations").name
    return spec.with_changes(
        buffers=tuple(replace(b, capacity_bytes=64 * KIB) if b.name == act else b for b in spec.buffers)
    )


def traced(graph=None, spec=None):
    graph = residual_graph() if graph is None else graph
    spec = small_buffers() if spec is None else spec
    tracer = Tracer()
    result = simulate(graph, spec, values=False, tracer=tracer)
    return result, tracer


def parse(text: str) -> dict:
    """The trace file, numbers as Decimal (exact: the ps behind every ts)."""
    return json.loads(text, parse_float=Decimal)


def ps(ts) -> int:
    value = Decimal(ts) * 10**6
    assert value == value.to_integral_value(), f"ts {ts} is not a whole picosecond"
    return int(value)


def names(events):
    """pid -> process name, (pid, tid) -> thread name."""
    procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    return procs, threads


def slices_by_thread(events) -> dict[tuple[int, int], list[tuple[int, int, dict]]]:
    """(pid, tid) -> [(start ps, end ps, B event)], checking balance and monotonic time on the way."""
    out: dict[tuple[int, int], list] = defaultdict(list)
    open_: dict[tuple[int, int], dict] = {}
    last: dict[tuple[int, int], int] = {}
    for e in events:
        if e["ph"] not in ("B", "E"):
            continue
        key, t = (e["pid"], e["tid"]), ps(e["ts"])
        assert t >= last.get(key, 0), f"time goes back on thread {key}: {e}"
        last[key] = t
        if e["ph"] == "B":
            assert key not in open_, f"slice {e['name']} opens inside {open_.get(key)} on {key}"
            open_[key] = e
        else:
            begin = open_.pop(key)
            assert (begin["name"], begin["cat"]) == (e["name"], e["cat"])
            out[key].append((ps(begin["ts"]), t, begin))
    assert not open_, f"unbalanced slices: {list(open_.values())[:3]}"
    return out


REQUIRED = {
    "M": {"ph", "pid", "name", "args"},
    "B": {"ph", "pid", "tid", "ts", "name", "cat", "args"},
    "E": {"ph", "pid", "tid", "ts", "name", "cat"},
    "C": {"ph", "pid", "ts", "name", "args"},
    "s": {"ph", "pid", "tid", "ts", "name", "cat", "id"},
    "f": {"ph", "pid", "tid", "ts", "name", "cat", "id", "bp"},
}


def check_structure(doc: dict, graph: nx.DiGraph) -> None:
    events = doc["traceEvents"]
    assert set(doc) == {"traceEvents", "otherData"}
    for e in events:
        assert e["ph"] in REQUIRED, e
        assert REQUIRED[e["ph"]] <= e.keys(), e
        if "ts" in e:
            ps(e["ts"])
    procs, threads = names(events)
    pids = set(procs)
    assert all(e["pid"] in pids for e in events)
    assert all((e["pid"], e["tid"]) in threads for e in events if "tid" in e and e["ph"] != "M")
    assert not set(tid for _, tid in threads) & pids, "a tid equal to a pid reads as a process's main thread"
    # counters: numeric values, time monotonic per counter
    last: dict = {}
    for e in events:
        if e["ph"] == "C":
            assert e["args"] and all(isinstance(v, (int, Decimal)) for v in e["args"].values()), e
            key = (e["pid"], e["name"])
            assert ps(e["ts"]) >= last.get(key, 0)
            last[key] = ps(e["ts"])
    by_thread = slices_by_thread(events)
    # every layer: one span on the layers track, and its tiles on an engine
    layer_thread = [k for k, name in threads.items() if procs[k[0]] == "top" and name.startswith("layers")]
    spans = [b["name"] for k in layer_thread for _, _, b in by_thread[k]]
    assert sorted(spans) == sorted(graph.nodes)
    computed = {b["args"]["layer"] for k, sl in by_thread.items() for _, _, b in sl if b["cat"] == "compute"}
    assert computed == set(graph.nodes)
    # flows: one per graph edge, each end at a time inside a slice of its thread
    ends: dict[int, dict] = defaultdict(dict)
    for e in events:
        if e["ph"] in "sf":
            assert e["ph"] not in ends[e["id"]], f"flow {e['id']} has two {e['ph']} events"
            ends[e["id"]][e["ph"]] = e
            t = ps(e["ts"])
            assert any(s <= t < end or s == t == end for s, end, _ in by_thread[(e["pid"], e["tid"])]), e
    assert len(ends) == graph.number_of_edges()
    assert all(set(v) == {"s", "f"} for v in ends.values())
    for v in ends.values():
        assert ps(v["s"]["ts"]) <= ps(v["f"]["ts"])


def engine_busy_ps(doc: dict) -> dict[str, dict[str, int]]:
    """engine process -> layer -> summed slice durations (ps) on its threads."""
    procs, _ = names(doc["traceEvents"])
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (pid, _), sl in slices_by_thread(doc["traceEvents"]).items():
        for start, end, b in sl:
            if b["cat"] == "compute":
                out[procs[pid]][b["args"]["layer"]] += end - start
    return out


# -- the tracer changes nothing ------------------------------------------------------------------


def test_results_are_byte_identical_with_and_without_a_tracer():
    graph, spec = residual_graph(), small_buffers()
    plain = simulate(graph, spec, values=False)
    result, tracer = traced(graph, spec)
    assert to_json(plain.to_dict()) == to_json(result.to_dict())
    assert tracer.slices() and tracer.intervals and tracer.levels


def test_engine_busy_cycles_per_layer_hand_derived():
    """pw1 32->64 on 16x16 (P = 256), filters % 3 == 0 APoT: 22 on the SAT (16 rows, 32 lanes), 42 on the
    MPMA (32 rows, merged 32 lanes); weights 2 KiB fit one chunk, its input comes from DRAM, so 16
    position tiles (max_tiles). SAT: 256 x ceil(22/16) x ceil(32/32) = 512 + 16 tiles x 3 fill = 560;
    MPMA: 256 x ceil(42/32) x 1 = 512 + 16 x 4 fill = 576. Both are below the layer's 614 cycles: the
    engines stall inside it."""
    result, _ = traced(spec=m2vit_spec())
    pw1 = result.layers[0]
    assert pw1.name == "pw1" and pw1.tiles == 16
    assert pw1.engine_busy_cycles == {"mpma": 576, "sat": 560}
    assert pw1.end_cycle - pw1.start_cycle > 576
    for layer in result.layers:  # the per-layer records add up to each engine's busy time
        assert set(layer.engine_busy_cycles) == set(layer.engines)
    for name, engine in result.engines.items():
        assert sum(layer.engine_busy_cycles.get(name, 0) for layer in result.layers) == engine.busy_cycles


# -- the Perfetto / Chrome JSON ------------------------------------------------------------------


@pytest.mark.parametrize("aggregate", [False, True])
def test_trace_json_structure(aggregate):
    result, tracer = traced()
    doc = parse(to_trace_json(tracer, {"workload": "residual"}, aggregate))
    check_structure(doc, residual_graph())
    other = doc["otherData"]
    assert other["aggregate"] is aggregate and other["workload"] == "residual"
    assert other["latency_ps"] >= result.latency_cycles * PERIOD_PS - PERIOD_PS


@pytest.mark.parametrize("aggregate", [False, True])
def test_engine_slices_sum_exactly_to_busy_time(aggregate):
    result, tracer = traced()
    doc = parse(to_trace_json(tracer, aggregate=aggregate))
    procs, _ = names(doc["traceEvents"])
    busy = defaultdict(lambda: defaultdict(int))  # from the slices' args: closed-form compute
    port = defaultdict(int)  # ps tiles held their engine waiting for a buffer port
    for (pid, _), sl in slices_by_thread(doc["traceEvents"]).items():
        for _, _, b in sl:
            if b["cat"] == "compute":
                busy[procs[pid]][b["args"]["layer"]] += int(b["args"]["busy_ps"])
                port[procs[pid]] += int(b["args"]["port_wait_ps"])
    if not aggregate:  # a tile's slice is its compute (aggregate spans cover the stalls between tiles)
        assert engine_busy_ps(doc) == busy
    for name, engine in result.engines.items():
        assert sum(busy[f"top.{name}"].values()) == engine.busy_cycles * PERIOD_PS
        assert port[f"top.{name}"] == round(engine.stall_s["buffer_port"] * 1e12)
    for layer in result.layers:
        for engine, cycles in layer.engine_busy_cycles.items():
            assert busy[f"top.{engine}"][layer.name] == cycles * PERIOD_PS


def test_tile_slices_name_layer_and_tile_and_carry_work_and_bytes():
    result, tracer = traced()
    doc = parse(to_trace_json(tracer))
    procs, threads = names(doc["traceEvents"])
    by_thread = slices_by_thread(doc["traceEvents"])
    sat = [b for (pid, tid), sl in by_thread.items() if procs[pid] == "top.sat" for _, _, b in sl]
    assert [b["name"] for b in sat if b["args"]["layer"] == "pw1"] == [f"pw1[{t}]" for t in range(16)]
    first = sat[0]["args"]
    assert first["mode"] == "shift_add" and first["cycles"] == 35  # 512 / 16 + 3 fill
    assert first["shift_adds"] == 22 * 16 * 32  # filters x positions x reduction
    assert first["dram_read_bytes"] > 0 and first["positions"] == [0, 16] and first["filters"] == [0, 22]
    mpma_threads = {threads[k] for k in threads if procs[k[0]] == "top.mpma"}
    assert mpma_threads == {"merged", "single"}  # a track per mode; the 4-bit depthwise runs single
    dma = [b for (pid, tid), sl in by_thread.items() if procs[pid] == "top.dma" for _, _, b in sl]
    assert {b["args"]["data"] for b in dma} == {"weights", "inputs", "outputs"}
    moved = sum(int(b["args"]["bytes"]) for b in dma)
    assert moved == result.dram["bytes_read"] + result.dram["bytes_written"]
    dram = [b for (pid, tid), sl in by_thread.items() if procs[pid] == "top.dram" for _, _, b in sl]
    assert {threads[k] for k in threads if procs[k[0]] == "top.dram"} == {"ch0"}
    assert sum(int(b["args"]["bytes"]) for b in dram) == moved


def test_aggregate_has_one_slice_per_layer_and_engine_mode():
    _, tracer = traced()
    tiles = parse(to_trace_json(tracer))["traceEvents"]
    doc = parse(to_trace_json(tracer, aggregate=True))
    procs, _ = names(doc["traceEvents"])
    compute = [
        (procs[pid], b)
        for (pid, _), sl in slices_by_thread(doc["traceEvents"]).items()
        for _, _, b in sl
        if b["cat"] == "compute"
    ]
    keys = [(proc, b["args"]["layer"], b["args"]["mode"]) for proc, b in compute]
    assert len(keys) == len(set(keys))
    assert ("top.sat", "pw1", "shift_add") in keys and ("top.mpma", "dw", "single") in keys
    pw1_sat = next(b for proc, b in compute if proc == "top.sat" and b["name"] == "pw1")
    assert pw1_sat["args"]["tiles"] == 16 and pw1_sat["args"]["cycles"] == 560

    def begins(events):
        return sum(e["ph"] == "B" for e in events)

    assert begins(doc["traceEvents"]) < begins(tiles) / 4


def test_counters_buffer_occupancy_bandwidth_and_utilisation():
    result, tracer = traced()
    doc = parse(to_trace_json(tracer))
    procs, _ = names(doc["traceEvents"])
    series = defaultdict(list)
    for e in doc["traceEvents"]:
        if e["ph"] == "C":
            ((key, value),) = e["args"].items()
            series[(procs[e["pid"]], e["name"], key)].append((ps(e["ts"]), value))
    wbuf = series[("top.weight_buffer", "weights", "bytes")]
    assert wbuf[-1][1] == 0 and max(v for _, v in wbuf) <= 256 * KIB and max(v for _, v in wbuf) > 0
    for region in ("resident", "staging"):  # live regions: within their capacity, empty at the end
        level = series[("top.act_buffer", region, "bytes")]
        capacity = result.buffers["act_buffer"]["regions"][region]["capacity_bytes"]
        assert level[-1][1] == 0 and 0 < max(v for _, v in level) <= capacity, region
        assert max(v for _, v in level) == result.buffers["act_buffer"]["regions"][region]["peak_bytes"]
    slots = series[("top.act_buffer", "tile_slots", "slots")]
    assert slots[-1][1] == 0 and max(v for _, v in slots) <= 2 * 2  # two slots a layer, <= 2 layers at once
    width, latency = doc["otherData"]["counter_bin_ps"], doc["otherData"]["latency_ps"]
    assert width == tl.bin_width_ps(latency)

    def integral(points):  # sum of value x duration of a step counter, in value x ps
        return sum(v * (t1 - t0) for (t0, v), (t1, _) in zip(points, points[1:]))

    bandwidth = series[("top.dram", "ch0 bandwidth", "GB/s")]
    assert max(v for _, v in bandwidth) <= Decimal("19.2") * (1 + Decimal("1e-6"))
    moved = integral(bandwidth) / 1000  # GB/s x ps -> bytes
    assert float(moved) == pytest.approx(result.dram["bytes_read"] + result.dram["bytes_written"], rel=1e-5)
    for name, engine in result.engines.items():
        util = series[(f"top.{name}", "utilization", "percent")]
        assert all(0 <= v <= 100 for _, v in util)
        assert float(integral(util) / 100) == pytest.approx(engine.busy_cycles * PERIOD_PS, rel=1e-5, abs=1)


def test_trace_files_are_deterministic_and_name_no_paths(tmp_path):
    texts = [to_trace_json(traced()[1]) for _ in range(2)]
    assert texts[0] == texts[1]
    assert "/" not in json.dumps(json.loads(texts[0])["otherData"]["arch"])


def test_lanes_keep_overlapping_activities_apart():
    s = [
        Slice("top.dma.read", "transfer", n, n, a, b)
        for n, a, b in (("a", 0, 10), ("b", 5, 15), ("c", 10, 20), ("d", 12, 13), ("e", 15, 16))
    ]
    lanes = tl.assign_lanes(s)
    assert [[x.name for x in lane] for lane in lanes] == [["a", "c"], ["b", "e"], ["d"]]


def test_exact_time_conversion():
    assert repr(us(1_925_600_001)) == "1925.600001"
    assert repr(us(999_999_999_999_999)) == "999999999.999999"
    with pytest.raises(ValueError, match="not be exact"):
        us(10**15)
    assert tl.round_ps(Fraction(460000, 3)) == 153333 and tl.round_ps(Fraction(5, 2)) == 3
    assert tl.bin_width_ps(1_925_600_000) == 2_000_000 and tl.bin_width_ps(6_690_001) == 10_000
    assert tl.bin_width_ps(1) == 1 and tl.bin_width_ps(3_000_000) == 5_000


class HandTracer(Tracer):
    """A tracer with hand-made records (no simulation): only what the writers read."""

    def __init__(self, slices, intervals, kinds, latency_ps):
        super().__init__()
        self._slices, self._hand_intervals, self._kinds = slices, intervals, kinds
        self.latency_ps = latency_ps

    def slices(self, aggregate=False):
        return list(self._slices)

    @property
    def intervals(self):
        return self._hand_intervals

    @property
    def track_kind(self):
        return self._kinds


def test_a_layer_without_compute_slices_anchors_its_flows_on_its_span():
    """Layer b ran no tile on any engine (no work), so the flow from a ends on b's span."""
    tracer = HandTracer(
        [
            Slice("top.e.m", "compute", "a[0]", "a", 0, 10, {"layer": "a", "busy_ps": 10}),
            Slice("top.layers", "layer", "a", "a", 0, 10),
            Slice("top.layers", "layer", "b", "b", 10, 12),
        ],
        {"top.e.m": [(0, 10, 1, "a")], "top.layers": [(0, 10, 0, "a"), (10, 12, 0, "b")]},
        {"top.e.m": "engine", "top.layers": "layer"},
        12,
    )
    tracer.engines = {"top.e": {"kind": "vector", "op": "vector_ops", "modes": ["m"]}}
    tracer.layers = {
        n: LayerInfo(n, "add", i, ("top.e",), "m", 1, p)
        for i, (n, p) in enumerate((("a", ()), ("b", ("a",))))
    }
    events = parse(to_trace_json(tracer))["traceEvents"]
    procs, threads = names(events)
    flow = {e["ph"]: e for e in events if e["ph"] in "sf"}
    assert threads[(flow["s"]["pid"], flow["s"]["tid"])] == "m" and ps(flow["s"]["ts"]) == 0
    assert threads[(flow["f"]["pid"], flow["f"]["tid"])] == "layers" and ps(flow["f"]["ts"]) == 10
    slices_by_thread(events)


# -- VCD -----------------------------------------------------------------------------------------


def test_vcd_reads_back_with_pyvcd_and_its_busy_intervals_equal_the_trace(tmp_path):
    _, tracer = traced()
    doc = parse(to_trace_json(tracer))  # the tile-level trace: what the VCD must match
    procs, _ = names(doc["traceEvents"])
    json_busy = defaultdict(list)
    for (pid, _), sl in slices_by_thread(doc["traceEvents"]).items():
        json_busy[procs[pid]] += [(start, end) for start, end, b in sl if b["cat"] == "compute"]
    path = write_vcd(tracer, tmp_path / "run.vcd", comment="residual")
    back = read_vcd(path)
    for engine in ("top.mpma", "top.sat", "top.vector"):
        assert high_intervals(back[f"{engine}.busy"]) == merged(json_busy[engine]), engine
    # DMA active: the union of the transfers on the read (write) threads
    dma = defaultdict(list)
    _, threads = names(doc["traceEvents"])
    for (pid, tid), sl in slices_by_thread(doc["traceEvents"]).items():
        if procs[pid] == "top.dma":
            dma[threads[(pid, tid)].split(" ")[0]] += [(s, e) for s, e, _ in sl]
    assert high_intervals(back["top.dma.read_active"]) == merged(dma["read"])
    assert high_intervals(back["top.dma.write_active"]) == merged(dma["write"])
    layers = [v for _, v in back["top.sat.layer"] if v]
    assert list(dict.fromkeys(layers)) == ["pw1", "pw2"]
    occupancy = back["top.weight_buffer.weights"]
    assert occupancy[-1][1] == 0 and max(v for _, v in occupancy) > 0
    assert back["top.act_buffer.tile_slots"][-1][1] == 0
    assert set(back) == set(vcd_signals(tracer))


def test_vcd_is_deterministic_and_has_no_wall_time():
    texts = [to_vcd(traced()[1]) for _ in range(2)]
    assert texts[0] == texts[1]
    assert "$date not recorded" in texts[0] and "$timescale 1 ps $end" in texts[0]


def test_read_vcd_refuses_another_timescale(tmp_path):
    path = tmp_path / "ns.vcd"
    path.write_text(to_vcd(traced()[1]).replace("$timescale 1 ps $end", "$timescale 1 ns $end"))
    with pytest.raises(ValueError, match="expected 1 ps"):
        read_vcd(path)
