"""Dataflow as data: hand-derived closed forms of each unrolling equal the simulated time; the mapper's
splits; per-port bit widths; the residency policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sim_fixtures import chain, depthwise, m2vit_spec, pointwise

from archsim.arch.dataflow import PRESETS, FormulaError, evaluate
from archsim.arch.spec import EngineMode, MappingOverride, MappingSpec, MemorySpec
from archsim.graph.ir import Layer, Operand, OpKind
from archsim.sim import simulate
from archsim.sim.mapping import map_layer

ONE_TILE = {"min_tiles": 1, "max_tiles": 1}
MAC_KINDS = frozenset(
    {
        OpKind.CONV_POINTWISE,
        OpKind.CONV_DENSE,
        OpKind.CONV_GROUPED,
        OpKind.MATMUL,
        OpKind.LINEAR,
        OpKind.CONV_DEPTHWISE,
    }
)
PIPE = 4  # the fixture MPMA's pipeline_cycles


def _spec(dataflow: str, **params):
    """The fixture with one 32x32 MPMA mode running every MAC kind under ``dataflow``."""
    spec = m2vit_spec(params={**ONE_TILE, **params})
    mpma = spec.engine("mpma")
    merged = mpma.mode("merged")
    mode = replace(merged, op_kinds=MAC_KINDS, dataflow=PRESETS[dataflow])
    engines = tuple(replace(e, modes=(mode,)) if e.name == "mpma" else e for e in spec.engines)
    # a 1 MiB activation buffer: one tile's DRAM-streamed bytes fit a third of its staging half
    mib = 1024 * 1024
    buffers = tuple(replace(b, capacity_bytes=mib) if b.name == "act_buffer" else b for b in spec.buffers)
    return spec.with_changes(engines=engines, buffers=buffers)


def _busy(layer: Layer, dataflow: str) -> int:
    result = simulate(chain(layer), _spec(dataflow))
    assert result.layers[0].tiles == 1
    return result.engines["mpma"].busy_cycles


def _dw_strided() -> Layer:
    """5x5 depthwise, stride 2, 64 channels, 28x28 -> 14x14."""
    return Layer(
        "dw",
        OpKind.CONV_DEPTHWISE,
        ((1, 64, 28, 28),),
        (1, 64, 14, 14),
        weight_shape=(64, 1, 5, 5),
        kernel=(5, 5),
        stride=(2, 2),
        padding=(2, 2),
        groups=64,
        weight_bits=8,
        macs=64 * 14 * 14 * 25,
    )


def _matmul() -> Layer:
    return Layer("mm", OpKind.MATMUL, ((1, 4, 49, 16), (1, 4, 16, 17)), (1, 4, 49, 17), macs=4 * 49 * 16 * 17)


# Hand derivations (R = L = 32, fill formulas of the presets):
# pointwise 64 -> 96 on 14x14: G 1, P 196, F 96, C 64, T 1.
#   mat: ceil(F/R) ceil(CT/L) G P + fill = 3*2*196 + 4                            = 1180
#   ws_systolic: folds ceil(CT/R) ceil(F/L) = 6, stream P = 196, weights R = 32 per fold, prefetched:
#        32 + 5*max(196, 32) + 196 + (2R + L - 2 = 94, once per layer)          = 1302
#   ws_systolic_unbuffered: 6*196 + 6*94                                         = 1740
#   os: folds ceil(P/R) ceil(F/L) = 7*3 = 21, stream CT = 64: 21*64 + 21*(R+L-2)  = 2646
#   rpe: the same folds and stream, one pipeline fill per tile: 21*64 + 4        = 1348
# depthwise 3x3 stride 1, 64 channels on 28x28 (P 784, T 9):
#   mat / rpe: ceil(P/R) ceil(G/L) T + 4 = 25*2*9 + 4                             = 454
#   ws_systolic (one channel at a time on the 9 taps): folds ceil(T/R) * G = 64, stream P 784:
#        32 + 63*784 + 784 + 94                                                   = 50302
# depthwise 5x5 stride 2 (P 196, T 25): mat: 7*2*25 + 4 = 354;
#   ws_systolic: 32 + 63*196 + 196 + 94                                           = 12670
# matmul (4 heads, 49 x 16 @ 16 x 17): P 196, F 17, C 16:
#   mat: ceil(17/32) ceil(16/32) 196 + 4 = 200; ws_systolic: 32 + 196 + 94 = 322;
#   os: 7*1 folds * 16 + 7*62 = 546
CASES = [
    ("pointwise", "mat", 1180),
    ("pointwise", "ws_systolic", 1302),
    ("pointwise", "ws_systolic_unbuffered", 1740),
    ("pointwise", "os", 2646),
    ("pointwise", "rpe", 1348),
    ("dw3", "mat", 454),
    ("dw3", "rpe", 454),
    ("dw3", "ws_systolic", 50302),
    ("dw5s2", "mat", 354),
    ("dw5s2", "ws_systolic", 12670),
    ("matmul", "mat", 200),
    ("matmul", "ws_systolic", 322),
    ("matmul", "os", 546),
]
LAYERS = {
    "pointwise": lambda: pointwise("pw", 64, 96, 14),
    "dw3": lambda: depthwise("dw", 64, 28, weight_bits=8),
    "dw5s2": _dw_strided,
    "matmul": _matmul,
}


@pytest.mark.parametrize("layer,dataflow,cycles", CASES, ids=[f"{a}-{b}" for a, b, _ in CASES])
def test_hand_closed_forms_equal_the_simulated_engine_time(layer, dataflow, cycles):
    assert _busy(LAYERS[layer](), dataflow) == cycles


def test_ws_pointwise_end_to_end_latency_is_the_closed_form():
    spec = _spec("ws_systolic")
    layer = pointwise("pw", 64, 96, 14)
    result = simulate(chain(layer), spec)
    period, bw = spec.clock_period_ps, int(spec.dram.peak_bandwidth_bytes_per_s)
    dram, noc = round(spec.dram.latency_s * 10**12), spec.interconnect.latency_cycles * period
    load = dram + -(-(layer.weight_bytes + layer.input_bytes) * 10**12 // bw) + noc
    expected = load + 1302 * period + noc + dram + -(-layer.output_bytes * 10**12 // bw)
    assert result.latency_s * 10**12 == pytest.approx(expected, abs=0.5)


def test_fill_per_fold_and_per_layer_count_folds_across_tiles():
    layer = pointwise("pw", 64, 96, 14)
    tiles = simulate(
        chain(layer), _spec("ws_systolic", min_tiles=1, max_tiles=2)
    )  # outputs stream: 2 position tiles
    assert tiles.layers[0].tiles == 2
    # positions 98 + 98: each tile 32 + 5*98 + 98 = 620; the 94-cycle fill once (first tile only)
    assert tiles.engines["mpma"].busy_cycles == 2 * 620 + 94
    unbuffered = simulate(chain(layer), _spec("ws_systolic_unbuffered", min_tiles=1, max_tiles=2))
    assert unbuffered.engines["mpma"].busy_cycles == 2 * (6 * 98 + 6 * 94)


def test_formulas_are_checked():
    assert evaluate("2*R + L - 2", 32, 16, 0) == 78 and evaluate("max(R, pipeline)", 4, 1, 9) == 9
    for bad in ("R**2", "max", "open('x')", "R + x", "1.5"):
        with pytest.raises(FormulaError):
            evaluate(bad, 1, 1, 1)


# -- the mapper's splits ------------------------------------------------------------------------
def _two_arrays(second_rows: int = 32, second_lanes: int = 32, split: str = "balanced", overrides=()):
    """The fixture plus a second uniform array 'rpe' that also runs pointwise layers."""
    spec = m2vit_spec(params=ONE_TILE)
    mpma = spec.engine("mpma")
    merged = mpma.mode("merged")
    rpe = replace(
        mpma,
        name="rpe",
        rows=second_rows,
        leakage_power=None,
        modes=(
            EngineMode(
                "pw",
                frozenset({OpKind.CONV_POINTWISE}),
                merged.schemes,
                8,
                8,
                second_lanes,
                merged.energy_per_op,
            ),
        ),
    )
    return spec.with_changes(engines=spec.engines + (rpe,), mapping=MappingSpec(split, tuple(overrides)))


def test_balanced_split_of_a_two_engine_layer_is_the_hand_optimum():
    # 96 filters, K 64, P 196 on two 32x32 arrays: alone 3*2*196 + 4 = 1180 cycles; split 32 / 64 filters:
    # 1*2*196 + 4 = 396 and 2*2*196 + 4 = 788, the layer takes 788 (no split at whole row blocks is faster)
    layer = pointwise("pw", 64, 96, 14)
    mapping = map_layer(layer, _two_arrays())
    assert [(s.engine, s.n_filters, s.cycles) for s in mapping.streams] == [
        ("mpma", 32, 396),
        ("rpe", 64, 788),
    ]
    assert mapping.reason.startswith("balanced: balanced, 788 cy") and "1,180 cy" in mapping.reason
    result = simulate(chain(layer), _two_arrays())
    assert (result.engines["mpma"].busy_cycles, result.engines["rpe"].busy_cycles) == (396, 788)
    assert map_layer(layer, _two_arrays(split="by_scheme")).engines == ["mpma"]


@pytest.mark.parametrize("rows,lanes,filters", [(16, 16, 96), (8, 32, 40), (32, 8, 130), (64, 64, 33)])
def test_a_split_is_never_slower_than_either_engine_alone(rows, lanes, filters):
    layer = pointwise("pw", 48, filters, 10)
    spec = _two_arrays(rows, lanes)
    split = map_layer(layer, spec)
    time = max(sum(s.cycles for s in split.streams if s.engine == e) for e in split.engines)
    for engine in ("mpma", "rpe"):
        alone = map_layer(layer, _two_arrays(rows, lanes, overrides=(MappingOverride((engine,), "pw"),)))
        assert alone.engines == [engine]
        assert time <= alone.streams[0].cycles
    assert sum(s.n_filters for s in split.streams) == filters


def test_split_values_are_computed_on_both_engines():
    """uniform_int8's R-PE also runs pointwise layers (Trio-ViT "use all PEs"):
    each array computes its filters."""
    from toy_fixtures import toy_build

    from archsim.arch.loader import load_arch
    from archsim.functional.executor import Executor

    _, graph = toy_build("uniform_w8a8")
    result = simulate(
        graph, load_arch(Path(__file__).resolve().parents[2] / "arch_configs" / "uniform_int8.yaml")
    )
    split = [r for r in result.layers if sorted(r.engines) == ["mat", "rpe"]]
    assert split, "some pointwise layer uses both arrays"
    reference = Executor(graph).run(result.values["input"])
    assert all(np.array_equal(result.values[k], reference[k]) for k in reference)


def test_an_override_pins_the_engines():
    layer = pointwise("pw", 64, 96, 14)
    pinned = map_layer(
        layer, _two_arrays(overrides=(MappingOverride(("rpe",), op_kind=OpKind.CONV_POINTWISE),))
    )
    assert pinned.engines == ["rpe"]


# -- per-port widths and residency -------------------------------------------------------------
def test_each_port_is_charged_at_its_own_width():
    # q (k^T v): q from two producers (8-bit codes), kv from the first matmul (int32)
    q_part, kv = (1, 2, 49, 16), (1, 4, 16, 17)
    layer = Layer(
        "mm",
        OpKind.MATMUL,
        (q_part, q_part, kv),
        (1, 4, 49, 17),
        in_bits=(8, 8, 32),
        act_bits=32,
        operands=(Operand((1, 4, 49, 16), (0, 1)), Operand(kv, (2,))),
    )
    assert layer.input_bytes == 2 * (2 * 49 * 16) + 4 * 16 * 17 * 4 == 7488  # not 16,896 at 32 bit throughout
    assert (layer.operand_bytes(0), layer.operand_bytes(1)) == (3136, 4352)


def test_layer_by_layer_residency_sends_every_tensor_through_dram():
    a, b = pointwise("a", 64, 64, 8), pointwise("b", 64, 64, 8)
    fit = simulate(chain(a, b), m2vit_spec())
    lbl = simulate(
        chain(pointwise("a", 64, 64, 8), pointwise("b", 64, 64, 8)),
        m2vit_spec(memory=MemorySpec("layer_by_layer")),
    )
    assert lbl.dram["bytes_written"] - fit.dram["bytes_written"] == a.output_bytes
    assert lbl.dram["bytes_read"] - fit.dram["bytes_read"] == a.output_bytes


def test_tiles_cover_whole_rows_and_read_their_halo():
    """A 3x3 stride-1 depthwise conv on 16 channels of 8x8 (padding 1), inputs from DRAM, two tiles of 4
    output rows: rows [0, 4) read input rows [0, 5) and rows [4, 8) read [3, 8): the engine reads 10 input
    rows of 8 x 16 B from the buffer, not 8; from DRAM the second tile reads only rows [5, 8), the halo rows
    [3, 5) staying staged from the first."""
    from archsim.sim.mapping import map_layer as _map
    from archsim.sim.plan import halo_rows, plan_layer

    layer = depthwise("dw", 16, 8, weight_bits=4)
    spec = m2vit_spec(params={"min_tiles": 1, "max_tiles": 2})
    plan = plan_layer(layer, 0, _map(layer, spec), spec, dram_in=layer.input_bytes, output_to_dram=True)
    assert [t.positions for t in plan.tiles] == [(0, 32), (32, 64)]  # whole rows of 8 pixels
    assert [halo_rows(layer, t.positions) for t in plan.tiles] == [5, 5]
    assert [t.input_bytes for t in plan.tiles] == [5 * 8 * 16, 3 * 8 * 16]  # every DRAM byte once
    engine_reads = [dict((b, r) for b, r, _ in t.port[0])["act_buffer"] for t in plan.tiles]
    assert engine_reads == [5 * 8 * 16, 5 * 8 * 16]  # the halo, re-read from the buffer
    assert sum(t.output_bytes for t in plan.tiles) == layer.output_bytes
    strided = Layer(
        "s2",
        OpKind.CONV_DEPTHWISE,
        ((1, 16, 8, 8),),
        (1, 16, 4, 4),
        weight_shape=(16, 1, 3, 3),
        kernel=(3, 3),
        stride=(2, 2),
        padding=(1, 1),
        groups=16,
        weight_bits=4,
    )
    # output rows [0, 2) of a stride-2 3x3 read input rows 0-1-... [max(0, -1), 2*1 + 2 - 1 + 1) = [0, 4)
    assert halo_rows(strided, (0, 8)) == 4 and halo_rows(strided, (8, 16)) == 5  # [3, 8)
