"""DW->PW fusion (archsim.sim.fusion, memory.fusion: on): which pairs are eligible, the fused pipeline's
hand-derived busy times, backpressure through the window, the decisions that decline a pair (and say why),
the consumer's remapping, and the YAML switch."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from sim_fixtures import KIB, chain, depthwise, eltwise, m2vit_spec, pointwise

from archsim.arch.loader import load_arch
from archsim.arch.spec import MemorySpec
from archsim.graph.ir import OpKind, add_layer
from archsim.sim import simulate
from archsim.sim.fusion import busy, fused_pairs
from archsim.sim.mapping import map_layer
from archsim.sim.plan import Planner

M2VIT = Path(__file__).resolve().parents[2] / "archsim" / "data" / "arch" / "m2vit.yaml"


def apot_pointwise(name, cin, cout, hw):
    """A pointwise layer whose filters are all 4-bit APoT: the SAT alone runs it on the M2-ViT fixture."""
    return pointwise(name, cin, cout, hw, weight_bits=4, apot_mask=np.ones(cout), apot_bits=4)


def spec_with(fusion: str, wide_ports: bool = False, act_kib: float | None = None):
    spec = m2vit_spec()
    buffers = spec.buffers
    if wide_ports:  # ports that never bind: the pipeline's timing is its engines'
        buffers = tuple(replace(b, bandwidth_bytes_per_cycle=1 << 20) for b in buffers)
    if act_kib is not None:
        buffers = (buffers[0], replace(buffers[1], capacity_bytes=int(act_kib * KIB)))
    return spec.with_changes(buffers=buffers, memory=MemorySpec(fusion=fusion))


def dw_sat_pair() -> nx.DiGraph:
    """graph input -> dw (64 ch, 16 x 16, 3x3, on the MPMA) -> pw (64 -> 64 APoT, on the SAT) -> output."""
    return chain(depthwise("dw", 64, 16), apot_pointwise("pw", 64, 64, 16))


def by_name(result):
    return {layer.name: layer for layer in result.layers}


# -- eligibility ----------------------------------------------------------------------------------------


def test_only_a_depthwise_read_by_one_pixel_for_pixel_conv_is_a_pair():
    spec = spec_with("on")
    assert fused_pairs(dw_sat_pair(), spec) == {"pw": "dw"}
    assert fused_pairs(dw_sat_pair(), spec_with("off")) == {}
    assert fused_pairs(dw_sat_pair(), spec.with_changes(memory=MemorySpec("layer_by_layer", "on"))) == {}
    # a depthwise with a second reader (a residual add) keeps its output whole: no pair
    g = chain(depthwise("dw", 64, 16), apot_pointwise("pw", 64, 64, 16))
    add_layer(g, eltwise("add", OpKind.ADD, (1, 64, 16, 16), 2), ["pw", "dw"])
    assert fused_pairs(g, spec) == {}
    # a pointwise after a pointwise, or a 3x3 conv after a depthwise: not pixel for pixel / not DW
    assert fused_pairs(chain(pointwise("a", 64, 64, 16), pointwise("b", 64, 64, 16)), spec) == {}
    g = chain(depthwise("dw", 64, 16), pointwise("c3", 64, 64, 16, k=3))
    assert fused_pairs(g, spec) == {}


# -- the fused pipeline ---------------------------------------------------------------------------------


def test_a_fused_pair_on_two_engines_pipelines_at_the_hand_derived_busy_times():
    off = simulate(dw_sat_pair(), spec_with("off", wide_ports=True), values=False)
    on = simulate(dw_sat_pair(), spec_with("on", wide_ports=True), values=False)
    dw, pw = by_name(on)["dw"], by_name(on)["pw"]
    assert dw.fusion.startswith("fused into pw: a 2048 B window of 2 of its 16 tiles' outputs")
    assert pw.fusion == "fused with its producer dw"
    # producer: 16 one-row tiles; MPMA single mode, lanes = 64 channels, rows = 32 pixels: a 16-pixel row is
    # one fold streaming the 9 taps, + a 4-cycle fill per tile = 13 cycles, 16 x 13 = 208
    assert dw.engine_busy_cycles == {"mpma": 16 * 13}
    # consumer: its producer's 16 row tiles x 4 filter chunks of 16 (one per SAT row block); a tile's 16
    # filters on the 16 rows, Cin 64 on 32 lanes = 2 folds streaming 16 pixels, + a 3-cycle fill: 35 cycles
    assert pw.tiles == 64 and pw.engine_busy_cycles == {"sat": 64 * 35}
    # both start at once; the SAT then never waits mid-run: the consumer's span is its busy time plus the
    # start-up waits (the producer's first row, the first weight chunk and its DMA)
    assert dw.start_cycle == pw.start_cycle == 0
    assert set(pw.stall_s) <= {"busy", "fused_producer", "data", "interconnect"}
    startup = sum(v for k, v in pw.stall_s.items() if k != "busy") * on.clock_hz
    assert startup < 16 * 13  # less than the whole producer, which unfused precedes the consumer
    assert on.latency_cycles == pytest.approx(64 * 35 + startup, abs=1)
    assert on.latency_cycles < off.latency_cycles
    # the finish time by hand (cycles of 5 ns; DRAM: 60 ns = 12 cycles head latency, 96 B/cycle, 64 B bursts;
    # one 2-cycle interconnect hop). dw tile 0 reads its 288 B of 4-bit weights (5 bursts, 320 B) and its two
    # input rows (2 x 16 x 64 B = 2048 B), then computes 13 cycles. pw's loader asks for its first weight
    # chunk (16 filters x 64 x 4 bit = 512 B) as dw tile 0 retires (the DRAM has finished dw tile 1's row by
    # then); the SAT then runs 64 tiles of 35 cycles back to back, and the last tile's 16 x 16 outputs (256 B)
    # go to DRAM.
    dw_tile0 = Fraction(12) + Fraction(320 + 2048, 96) + 2 + 13
    pw_start = dw_tile0 + 12 + Fraction(512, 96) + 2
    finish = pw_start + 64 * 35 + 12 + Fraction(256, 96) + 2
    assert pw_start == 71 and on.latency_cycles == math.ceil(finish) == 2328
    # the intermediate never reaches DRAM, and its window is two rows of 16 pixels x 64 channels
    assert dw.dram_write_bytes == 0 and dw.output == "on_chip"
    assert by_name(off)["pw"].dram_read_bytes == pw.dram_read_bytes  # the pw reads only its weights


def test_the_window_holds_the_producer_back_and_never_deadlocks():
    on = simulate(dw_sat_pair(), spec_with("on", wide_ports=True), values=False)
    dw = by_name(on)["dw"]
    # the consumer (140 cycles a row) is slower than the producer (13 a row): the producer waits for
    # window space most of its span, and ends two row tiles before the consumer's last
    assert dw.stall_s["buffer_space"] > 0.5 * (dw.end_cycle - dw.start_cycle) / on.clock_hz
    assert dw.end_cycle <= on.latency_cycles - 2 * 4 * 35 + 35
    assert on.buffers["act_buffer"]["regions"]["resident"]["peak_bytes"] >= 2048


def test_a_pair_on_one_engine_is_declined_unless_it_saves_a_spill():
    # uniform pointwise -> depthwise -> uniform pointwise: the MPMA runs both members, so fusing would only
    # interleave them on one engine; the intermediate fits on chip: declined, the run is the unfused one
    g = chain(pointwise("a", 32, 128, 28), depthwise("dw", 128, 28), pointwise("b", 128, 32, 28))
    off = simulate(g, spec_with("off"), values=False)
    on = simulate(g, spec_with("on"), values=False)
    layers = by_name(on)
    assert layers["dw"].fusion.startswith("unfused with b: not estimated faster (fused ")
    assert layers["b"].fusion.startswith("unfused with its producer dw: not estimated faster")
    assert on.latency_cycles == off.latency_cycles and on.energy_j == off.energy_j
    assert layers["b"].mapping == by_name(off)["b"].mapping  # not remapped


def test_a_window_that_cannot_fit_declines_the_pair_and_says_so():
    # a's 16 KiB output stays resident until the residual add; a 35 KiB activation buffer leaves 1.5 KiB of
    # its 17.5 KiB resident share free: not even two output rows of the depthwise (2 x 1 KiB) fit
    g = chain(pointwise("a", 64, 64, 16), depthwise("dw", 64, 16), apot_pointwise("pw", 64, 64, 16))
    add_layer(g, eltwise("add", OpKind.ADD, (1, 64, 16, 16), 2), ["pw", "a"])
    on = simulate(g, spec_with("on", act_kib=35), values=False)
    off = simulate(g, spec_with("off", act_kib=35), values=False)
    dw = by_name(on)["dw"]
    assert dw.fusion == (
        "unfused with pw: its smallest window (2 of 16 tiles' outputs, 2048 B) exceeds the 1536 B resident "
        "share free"
    )
    assert dw.output == "dram" and on.latency_cycles == off.latency_cycles


def test_the_estimate_adds_busy_times_on_shared_resources():
    spec = spec_with("on", wide_ports=True)
    g = dw_sat_pair()
    planner = Planner(g, spec, {n: map_layer(g.nodes[n]["layer"], spec) for n in g.graph["order"]})
    plan = planner.plan("dw", set(), False, fused="producer")
    assert len(plan.tiles) == 16 and busy(plan, spec)["mpma"] == 16 * 13


def test_a_fused_consumer_avoids_its_producers_engines_only_when_it_can():
    spec = m2vit_spec()
    uniform = pointwise("u", 64, 64, 16)  # uniform filters: only the MPMA runs them
    assert map_layer(uniform, spec, frozenset({"mpma"})).reason.startswith("fused: cannot avoid mpma")
    apot = apot_pointwise("p", 64, 64, 16)
    mapping = map_layer(apot, spec, frozenset({"mpma"}))
    assert mapping.reason.startswith("fused: avoids mpma") and mapping.engines == ["sat"]


# -- the switch -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("written,read", [("on", "on"), ("off", "off"), ("true", "on"), ('"off"', "off")])
def test_memory_fusion_reads_on_off_and_yaml_booleans(tmp_path, written, read):
    text = M2VIT.read_text().replace("baseline: {arch: uniform_int8.yaml", "baseline: {arch: uniform_int8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("memory:"))
    path = tmp_path / "m2vit.yaml"
    path.write_text(text + f"\nmemory:\n  fusion: {written}\n")
    assert load_arch(path).memory.fusion == read
