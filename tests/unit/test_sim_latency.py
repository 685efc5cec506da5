"""Closed-form cycles per op kind (archsim.sim.latency), checked against hand arithmetic."""

import itertools
import math

import pytest
from sim_fixtures import conv, depthwise, eltwise, pointwise

from archsim.graph.ir import Layer, OpKind
from archsim.graph.opkinds import work_dims
from archsim.sim.latency import compute_cycles, depthwise_cycles, mac_array_cycles, vector_cycles


def test_mac_array_formula_by_hand():
    # G*P*ceil(F/R)*ceil(K/L): 196 positions, 40 filters on 32 rows -> 2, K=72 on 32 lanes -> 3
    assert mac_array_cycles(1, 196, 40, 72, 32, 32) == 196 * 2 * 3
    assert mac_array_cycles(3, 10, 16, 16, 32, 32) == 3 * 10 * 1 * 1


def test_depthwise_formula_by_hand():
    # ceil(C/L)*ceil(P/R)*kh*kw: 100 channels on 64 lanes -> 2, 50 pixels on 32 rows -> 2, 3x3
    assert depthwise_cycles(100, 50, 9, 32, 64) == 2 * 2 * 9


def test_vector_formula_by_hand():
    assert vector_cycles(1000, 5, 64) == math.ceil(5000 / 64)


def test_pipeline_fill_added_once():
    dims = work_dims(pointwise("pw", 64, 64, 8))
    assert compute_cycles(dims, 32, 32, 7) == compute_cycles(dims, 32, 32) + 7


def test_work_dims_per_kind():
    pw = work_dims(pointwise("pw", 48, 96, 7))
    assert (pw.groups, pw.positions, pw.filters, pw.reduction) == (1, 49, 96, 48)
    grouped = work_dims(conv("g", OpKind.CONV_GROUPED, 96, 96, 7, groups=12))
    assert (grouped.groups, grouped.filters, grouped.reduction) == (12, 8, 8)
    dense = work_dims(conv("stem", OpKind.CONV_DENSE, 3, 16, 10, k=3))
    assert dense.reduction == 27 and dense.ops == 100 * 16 * 27
    dw = work_dims(depthwise("dw", 32, 5, k=5))
    assert (dw.filters, dw.positions, dw.reduction) == (32, 25, 25)
    lin = Layer("fc", OpKind.LINEAR, ((2, 5, 64),), (2, 5, 10), weight_shape=(10, 64), weight_bits=8)
    assert (work_dims(lin).positions, work_dims(lin).filters, work_dims(lin).reduction) == (10, 10, 64)
    mm = Layer("mm", OpKind.MATMUL, ((1, 4, 49, 16), (1, 4, 16, 17)), (1, 4, 49, 17))
    assert (work_dims(mm).positions, work_dims(mm).filters, work_dims(mm).reduction) == (4 * 49, 17, 16)
    pool = Layer("pool", OpKind.POOL, ((1, 64, 7, 7),), (1, 64, 1, 1))
    assert work_dims(pool).positions == 64 * 49  # one op per input element
    norm = eltwise("ln", OpKind.NORM, (1, 100))
    assert work_dims(norm).ops == 500


def test_bad_groups_raise():
    with pytest.raises(ValueError, match="groups=5"):
        work_dims(conv("g", OpKind.CONV_GROUPED, 96, 96, 7, groups=5))


@pytest.mark.parametrize("rows,lanes", [(32, 32), (16, 32), (32, 64), (7, 13)])
def test_cycles_never_beat_ideal_bound(rows, lanes):
    for g, p, f, k in itertools.product([1, 3], [1, 7, 50], [1, 31, 33, 96], [1, 9, 64, 130]):
        assert mac_array_cycles(g, p, f, k, rows, lanes) >= g * p * f * k / (rows * lanes)
    for c, p, kk in itertools.product([1, 63, 65, 200], [1, 31, 33], [9, 25]):
        assert depthwise_cycles(c, p, kk, rows, lanes) >= c * p * kk / (rows * lanes)
