"""check_supports / graph_needs: which layers an architecture can run, and the messages."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from archsim.arch.coverage import check_supports, graph_needs, modes_for
from archsim.arch.loader import load_arch
from archsim.graph.ir import Layer, OpKind, QuantInfo, Scheme, add_layer
from archsim.graph.opkinds import Need, layer_needs

CONFIGS = Path(__file__).resolve().parents[2] / "arch_configs"


@pytest.fixture(scope="module")
def m2vit():
    return load_arch(CONFIGS / "m2vit.yaml")


@pytest.fixture(scope="module")
def baseline():
    return load_arch(CONFIGS / "uniform_int8.yaml")


def _pointwise(name, weight_bits=8, apot=None, apot_bits=8):
    quant = (
        None
        if apot is None
        else QuantInfo(weight_bits=weight_bits, apot_bits=apot_bits, apot_mask=np.array(apot, dtype=bool))
    )
    return Layer(
        name,
        OpKind.CONV_POINTWISE,
        ((1, 4, 8, 8),),
        (1, len(apot or [0] * 4), 8, 8),
        weight_shape=(4, 4, 1, 1),
        weight_bits=weight_bits,
        quant=quant,
    )


def _m2q_graph():
    g = nx.DiGraph()
    dw = Layer(
        "dw",
        OpKind.CONV_DEPTHWISE,
        ((1, 4, 8, 8),),
        (1, 4, 8, 8),
        weight_shape=(4, 1, 3, 3),
        kernel=(3, 3),
        groups=4,
        weight_bits=4,
    )
    add_layer(g, dw, [None])
    # m2q: pointwise filters uniform 8-bit or APoT 4-bit (sign + 3 magnitude bits)
    add_layer(g, _pointwise("pw", apot=[True, False, True, False], apot_bits=4), ["dw"])
    add_layer(
        g, Layer("div", OpKind.DIV, ((1, 4, 8, 8), (1, 1, 8, 8)), (1, 4, 8, 8), act_bits=32), ["pw", "pw"]
    )
    return g


def test_graph_needs_split_mixed_pointwise_by_scheme():
    needs = graph_needs(_m2q_graph())
    assert needs == [
        (OpKind.CONV_DEPTHWISE, 4, 8, Scheme.UNIFORM),
        (OpKind.CONV_POINTWISE, 8, 8, Scheme.UNIFORM),
        (OpKind.CONV_POINTWISE, 4, 8, Scheme.APOT),
        (OpKind.DIV, None, 32, Scheme.FLOAT),  # int32 and fp32 look alike in the IR
    ]


def test_all_apot_or_all_uniform_masks_give_one_need():
    assert layer_needs(_pointwise("a", apot=[True] * 4)) == [(OpKind.CONV_POINTWISE, 8, 8, Scheme.APOT)]
    assert layer_needs(_pointwise("u", apot=[False] * 4)) == [(OpKind.CONV_POINTWISE, 8, 8, Scheme.UNIFORM)]
    assert layer_needs(_pointwise("f", weight_bits=32)) == [(OpKind.CONV_POINTWISE, 32, 8, Scheme.FLOAT)]
    matmul = Layer("mm", OpKind.MATMUL, ((1, 4, 8), (1, 8, 4)), (1, 4, 4), act_bits=8)
    assert layer_needs(matmul) == [(OpKind.MATMUL, None, 8, Scheme.UNIFORM)]


def test_m2vit_runs_the_m2q_graph_with_depthwise_in_single_mode(m2vit):
    assert check_supports(m2vit, graph_needs(_m2q_graph())) == []
    chosen = [
        (e.name, m.name) for e, m in modes_for(m2vit, Need(OpKind.CONV_DEPTHWISE, 4, 8, Scheme.UNIFORM))
    ]
    assert ("mpma", "single") in chosen
    assert [
        (e.name, m.name) for e, m in modes_for(m2vit, Need(OpKind.CONV_POINTWISE, 4, 8, Scheme.APOT))
    ] == [("sat", "shift_add")]
    # the SAT takes 4-bit APoT codes only; 8-bit APoT filters have no mode
    assert modes_for(m2vit, Need(OpKind.CONV_POINTWISE, 8, 8, Scheme.APOT)) == []


def test_baseline_rejects_apot_filters_naming_its_modes(baseline):
    problems = check_supports(baseline, graph_needs(_m2q_graph()))
    assert problems == [
        "conv_pointwise with 4-bit APoT filters and 8-bit activations: no engine mode supports it "
        "(modes for conv_pointwise: mat.int8 [uniform; weights <= 8 bit, acts <= 8 bit], "
        "rpe.pw [uniform; weights <= 8 bit, acts <= 8 bit])"
    ]


def test_float_layers_are_reported_clearly(m2vit):
    problems = check_supports(
        m2vit,
        [
            Need(OpKind.CONV_POINTWISE, 32, 32, Scheme.FLOAT),
            Need(OpKind.CONV_POINTWISE, 32, 32, Scheme.FLOAT),
        ],
    )
    assert len(problems) == 1  # duplicates collapse
    assert problems[0].startswith(
        "conv_pointwise with 32-bit float filters and 32-bit activations: no engine mode"
    )
    assert "mpma.merged [uniform; weights <= 8 bit, acts <= 8 bit]" in problems[0]
    assert "sat.shift_add [apot; weights <= 4 bit, acts <= 8 bit]" in problems[0]


def test_kind_no_mode_lists(m2vit):
    spec = m2vit.with_changes(engines=tuple(e for e in m2vit.engines if e.name != "vector"))
    assert check_supports(spec, [Need(OpKind.ADD, None, 8, Scheme.UNIFORM)]) == [
        "add with 8-bit uniform operands: no engine mode supports it (no mode lists add)"
    ]
