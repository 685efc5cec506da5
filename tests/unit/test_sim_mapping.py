"""Mapping decisions (archsim.sim.mapping): engine/mode per layer, APoT split, errors."""

from dataclasses import replace

import numpy as np
import pytest
from sim_fixtures import depthwise, eltwise, m2vit_spec, pointwise

from archsim.graph.ir import Layer, OpKind
from archsim.sim import MappingError
from archsim.sim.mapping import map_layer

SPEC = m2vit_spec()


def test_4bit_depthwise_runs_on_mpma_single_mode():
    m = map_layer(depthwise("dw", 64, 14, weight_bits=4), SPEC)
    assert [(s.engine, s.mode) for s in m.streams] == [("mpma", "single")]


def test_8bit_depthwise_runs_on_mpma_merged_mode():
    m = map_layer(depthwise("dw", 64, 14, weight_bits=8), SPEC)
    assert [(s.engine, s.mode) for s in m.streams] == [("mpma", "merged")]


def test_fastest_eligible_mode_wins():
    # a 4-bit depthwise fits both modes; single (64 lanes) needs fewer cycles than merged (32)
    layer = depthwise("dw", 128, 14, weight_bits=4)
    single = map_layer(layer, SPEC).streams[0].cycles
    mpma = SPEC.engines[0]
    merged_only = m2vit_spec(engines=(replace(mpma, modes=mpma.modes[:1]),) + SPEC.engines[1:])
    merged = map_layer(layer, merged_only).streams[0].cycles
    assert single < merged


def test_mixed_pointwise_splits_filters_between_mpma_and_sat():
    mask = np.array([i % 4 == 0 for i in range(96)])  # 24 APoT, 72 uniform filters
    m = map_layer(pointwise("pw", 64, 96, 14, apot_mask=mask), SPEC)
    assert [(s.engine, s.mode, s.n_filters) for s in m.streams] == [
        ("mpma", "merged", 72),
        ("sat", "shift_add", 24),
    ]
    positions, k = 14 * 14, 64
    assert [s.ops for s in m.streams] == [72 * positions * k, 24 * positions * k]
    # weights as stored: uniform at 8 bits, APoT at 5 bits per code
    assert [s.weight_bytes for s in m.streams] == [72 * 64, 24 * 64 * 5 // 8]


def test_all_apot_pointwise_runs_on_sat_only():
    m = map_layer(pointwise("pw", 32, 32, 7, apot_mask=np.ones(32, bool)), SPEC)
    assert m.engines == ["sat"]


@pytest.mark.parametrize("kind", [OpKind.ADD, OpKind.DIV, OpKind.NORM, OpKind.ACTIVATION])
def test_vector_kinds_go_to_vector_unit(kind):
    m = map_layer(eltwise("v", kind, (1, 64, 7, 7)), SPEC)
    assert m.engines == ["vector"]


def test_matmul_runs_on_merged_mode():
    mm = Layer("mm", OpKind.MATMUL, ((1, 4, 49, 16), (1, 4, 16, 17)), (1, 4, 49, 17))
    assert [(s.engine, s.mode) for s in map_layer(mm, SPEC).streams] == [("mpma", "merged")]


def test_unsupported_layer_names_layer_bits_and_offered_modes():
    with pytest.raises(MappingError) as err:
        map_layer(pointwise("wide_pw", 16, 16, 4, weight_bits=16), SPEC)
    msg = str(err.value)
    for needle in (
        "wide_pw",
        "conv_pointwise",
        "16",
        "uniform",
        "mpma.merged",
        "sat.shift_add",
        "vector.simd",
    ):
        assert needle in msg


def test_apot_filters_on_arch_without_apot_mode_fail():
    no_sat = m2vit_spec(engines=(SPEC.engines[0], SPEC.engines[2]))
    with pytest.raises(MappingError, match="apot"):
        map_layer(pointwise("pw", 16, 16, 4, apot_mask=np.arange(16) % 2 == 0), no_sat)


def test_matmul_ignores_weight_bits_and_checks_act_bits():
    wide = Layer("mm32", OpKind.MATMUL, ((1, 2, 49, 16), (1, 2, 16, 17)), (1, 2, 49, 17), act_bits=16)
    with pytest.raises(MappingError, match="mm32"):
        map_layer(wide, SPEC)  # merged mode takes 8-bit activations only
