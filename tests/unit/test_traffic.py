"""Operand reuse from the dataflow (archsim.sim.traffic.revisits) against hand counts."""

from __future__ import annotations

import pytest

from archsim.arch.dataflow import PRESETS
from archsim.graph.ir import OpKind
from archsim.graph.opkinds import Family, WorkDims

PW = WorkDims(OpKind.CONV_POINTWISE, groups=1, positions=100, filters=64, reduction=64)  # C 64, T 1
DW = WorkDims(OpKind.CONV_DEPTHWISE, groups=1, positions=100, filters=48, reduction=9)  # 48 channels, 3x3
FC = WorkDims(OpKind.LINEAR, groups=1, positions=1, filters=1000, reduction=1600)


@pytest.mark.parametrize(
    "dataflow,family,dims,operand,expected",
    [
        # mat: filters on the rows, the reduction on the lanes, positions streamed
        ("mat", Family.CONV, PW, "weights", 1),  # stationary while positions stream
        ("mat", Family.CONV, PW, "inputs", 2),  # once per 32-filter row fold
        # ws_systolic: the reduction down the rows, filters across the columns, positions streamed
        ("ws_systolic", Family.CONV, PW, "weights", 1),
        ("ws_systolic", Family.CONV, PW, "inputs", 2),  # once per 32-filter column fold
        # os: positions on the rows, filters on the lanes, the reduction streamed
        ("os", Family.CONV, PW, "weights", 4),  # once per 32-position row fold: ceil(100 / 32)
        ("os", Family.CONV, PW, "inputs", 2),
        # depthwise on mat (Trio-ViT's R-PE): pixels on the rows, channels on the lanes, taps streamed
        ("mat", Family.DEPTHWISE, DW, "weights", 4),
        ("mat", Family.DEPTHWISE, DW, "inputs", 1),
        # depthwise on ws_systolic: taps on the rows, pixels streamed, channels an outer loop
        ("ws_systolic", Family.DEPTHWISE, DW, "weights", 1),
        ("ws_systolic", Family.DEPTHWISE, DW, "inputs", 1),
        # a batch-1 FC on ws: every weight once, the input vector once per column fold of filters
        ("ws_systolic", Family.LINEAR, FC, "weights", 1),
        ("ws_systolic", Family.LINEAR, FC, "inputs", 32),  # ceil(1000 / 32)
    ],
)
def test_revisits_by_hand(dataflow, family, dims, operand, expected):
    from archsim.sim.traffic import revisits

    unrolling = PRESETS[dataflow].unrolling(family)
    assert revisits(dims, family, unrolling, 32, 32, operand) == expected
