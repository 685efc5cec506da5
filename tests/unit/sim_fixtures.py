"""Hand-built M2-ViT-like ArchSpec and tiny graphs for the simulator's unit tests.

The spec is a test double: the numbers follow the project's documented defaults
(docs/modelling.md) but are typed here so the simulator tests do not depend on the YAML loader.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from archsim.arch.spec import (
    ArchSpec,
    BufferSpec,
    DramSpec,
    EnergyEntry,
    EngineKind,
    EngineMode,
    EngineSpec,
    InterconnectSpec,
)
from archsim.graph.ir import Layer, OpKind, QuantInfo, Scheme, add_layer

PJ = 1e-12
KIB = 1024


def _e(name: str, pj: float, unit: str = "pJ", source: str = "assumed: test fixture") -> EnergyEntry:
    return EnergyEntry(name, pj * PJ, unit, source)


def m2vit_spec(**changes) -> ArchSpec:
    """MPMA (merged 8-bit / single 4-bit) + SAT (APoT) + vector unit, 200 MHz, DDR4-2400 x64."""
    mac_kinds = frozenset(
        {
            OpKind.CONV_POINTWISE,
            OpKind.CONV_DENSE,
            OpKind.CONV_GROUPED,
            OpKind.MATMUL,
            OpKind.LINEAR,
            OpKind.CONV_DEPTHWISE,
        }
    )
    mpma = EngineSpec(
        name="mpma",
        kind=EngineKind.MAC_ARRAY,
        rows=32,
        pipeline_cycles=4,
        modes=(
            EngineMode(
                "merged",
                mac_kinds,
                frozenset({Scheme.UNIFORM}),
                8,
                8,
                32,
                _e("mac_int8", 2.5, source="[I] DSP48E2 2xINT8 packing (Xilinx WP486)"),
            ),
            EngineMode(
                "single",
                frozenset({OpKind.CONV_DEPTHWISE}),
                frozenset({Scheme.UNIFORM}),
                4,
                8,
                64,
                _e("mac_int4", 1.2, source="[I] 4-bit MAC on packed DSP/LUT"),
            ),
        ),
        leakage_power=EnergyEntry("mpma_leak", 0.05, "W", "assumed: test fixture"),
    )
    sat = EngineSpec(
        name="sat",
        kind=EngineKind.SHIFT_ADD_TREE,
        rows=16,
        pipeline_cycles=3,
        modes=(
            EngineMode(
                "shift_add",
                frozenset({OpKind.CONV_POINTWISE, OpKind.CONV_GROUPED, OpKind.LINEAR}),
                frozenset({Scheme.APOT}),
                8,
                8,
                32,
                _e("apot_shift_add", 1.0, source="[I] PoT shift-add on LUTs"),
            ),
        ),
        leakage_power=EnergyEntry("sat_leak", 0.02, "W", "assumed: test fixture"),
    )
    vector = EngineSpec(
        name="vector",
        kind=EngineKind.VECTOR,
        rows=1,
        pipeline_cycles=2,
        modes=(
            EngineMode(
                "simd",
                frozenset({OpKind.ADD, OpKind.DIV, OpKind.POOL, OpKind.NORM, OpKind.ACTIVATION}),
                frozenset({Scheme.UNIFORM, Scheme.FLOAT}),
                0,
                32,
                64,
                _e("vector_op", 1.0),
            ),
        ),
        leakage_power=EnergyEntry("vector_leak", 0.01, "W", "assumed: test fixture"),
    )
    spec = ArchSpec(
        name="m2vit-test",
        clock_hz=200e6,
        engines=(mpma, sat, vector),
        buffers=(
            BufferSpec(
                "weight_buffer",
                256 * KIB,
                64,
                frozenset({"weights"}),
                _e("wbuf_read", 1.5, "pJ/B", "[I] BRAM"),
                _e("wbuf_write", 1.5, "pJ/B", "[I] BRAM"),
                EnergyEntry("wbuf_leak", 0.03, "W", "assumed: test fixture"),
            ),
            BufferSpec(
                "act_buffer",
                512 * KIB,
                64,
                frozenset({"activations"}),
                _e("abuf_read", 1.5, "pJ/B", "[I] BRAM"),
                _e("abuf_write", 1.5, "pJ/B", "[I] BRAM"),
                EnergyEntry("abuf_leak", 0.06, "W", "assumed: test fixture"),
            ),
        ),
        dram=DramSpec(
            "dram",
            19.2e9,
            60e-9,
            _e("dram_read", 160, "pJ/B", "[I] DDR4 incl. I/O"),
            _e("dram_write", 150, "pJ/B", "[I] DDR4 incl. I/O"),
            EnergyEntry("dram_background", 0.413, "W", "[C] DDR4-2400 rank active standby"),
        ),
        interconnect=InterconnectSpec("noc", 128, 2, _e("noc", 1.0, "pJ/B", "[I] AXI interconnect")),
        source_file="<tests/unit/sim_fixtures.py>",
    )
    return spec.with_changes(**changes) if changes else spec


# -- layers --------------------------------------------------------------------------------


def conv(
    name: str,
    kind: OpKind,
    cin: int,
    cout: int,
    hw: int,
    k: int = 1,
    groups: int = 1,
    weight_bits: int = 8,
    apot_mask: np.ndarray | None = None,
    apot_bits: int = 5,
    epilogue: tuple[str, ...] = (),
) -> Layer:
    """A stride-1 'same' convolution on an N=1, hw x hw map."""
    quant = None
    if apot_mask is not None:
        quant = QuantInfo(weight_bits=weight_bits, apot_bits=apot_bits, apot_mask=np.asarray(apot_mask, bool))
    return Layer(
        name=name,
        kind=kind,
        in_shapes=((1, cin, hw, hw),),
        out_shape=(1, cout, hw, hw),
        weight_shape=(cout, cin // groups, k, k),
        kernel=(k, k),
        padding=(k // 2, k // 2),
        groups=groups,
        macs=hw * hw * cout * (cin // groups) * k * k,
        weight_bits=weight_bits,
        quant=quant,
        epilogue=epilogue,
    )


def pointwise(name, cin, cout, hw, **kw) -> Layer:
    return conv(name, OpKind.CONV_POINTWISE, cin, cout, hw, **kw)


def depthwise(name, c, hw, k=3, weight_bits=4, **kw) -> Layer:
    return conv(name, OpKind.CONV_DEPTHWISE, c, c, hw, k=k, groups=c, weight_bits=weight_bits, **kw)


def eltwise(name: str, kind: OpKind, shape: tuple[int, ...], n_inputs: int = 1) -> Layer:
    return Layer(
        name=name, kind=kind, in_shapes=(shape,) * n_inputs, out_shape=shape, elements=math.prod(shape)
    )


def chain(*layers_: Layer) -> nx.DiGraph:
    """A graph where each layer reads the previous one (the first reads the graph input)."""
    g = nx.DiGraph(model="test", resolution=0, batch=1)
    prev = None
    for layer in layers_:
        add_layer(g, layer, [prev] + [None] * (len(layer.in_shapes) - 1))
        prev = layer.name
    return g
