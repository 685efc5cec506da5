"""Speed benchmark: simulate a synthetic EfficientViT-B2-like graph (~150 layers) at 224x224.

Run: .venv/bin/python benchmarks/bench_sim.py  (prints layers, events, latency, wall time).
The graph is shaped like EfficientViT-B2 (widths 24,48,96,192,384; depths 1,3,4,4,6; head dim 32)
with 4-bit depthwise weights and every third pointwise filter APoT; numbers are synthetic.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from sim_fixtures import conv, depthwise, eltwise, m2vit_spec, pointwise  # noqa: E402

from archsim.graph.ir import Layer, OpKind, add_layer  # noqa: E402
from archsim.sim import simulate  # noqa: E402


class Builder:
    def __init__(self) -> None:
        self.g = nx.DiGraph(model="synthetic-efficientvit-b1", resolution=224, batch=1)
        self.n = 0

    def add(self, layer: Layer, inputs) -> str:
        add_layer(self.g, layer, inputs)
        return layer.name

    def name(self, what: str) -> str:
        self.n += 1
        return f"{what}{self.n}"

    def pw(self, x, cin, cout, hw, act=True):
        mask = np.arange(cout) % 3 == 0
        return self.add(
            pointwise(
                self.name("pw"),
                cin,
                cout,
                hw,
                apot_mask=mask,
                epilogue=("bias", "hardswish") if act else ("bias",),
            ),
            [x],
        )

    def dw(self, x, c, hw, k=3):
        return self.add(depthwise(self.name("dw"), c, hw, k=k, epilogue=("bias", "hardswish")), [x])

    def residual(self, x, y, c, hw):
        return self.add(eltwise(self.name("add"), OpKind.ADD, (1, c, hw, hw), 2), [x, y])

    def mbconv(self, x, cin, cout, hw, residual):
        y = self.dw(self.pw(x, cin, 4 * cin, hw), 4 * cin, hw)
        y = self.pw(y, 4 * cin, cout, hw, act=False)
        return self.residual(x, y, cout, hw) if residual else y

    def lite_mla(self, x, c, hw, dim=16):
        heads = c // dim
        qkv = self.pw(x, c, 3 * c, hw, act=False)
        agg = self.dw(qkv, 3 * c, hw, k=5)
        agg = self.add(conv(self.name("grp"), OpKind.CONV_GROUPED, 3 * c, 3 * c, hw, groups=3 * heads), [agg])
        n_tok, h2 = hw * hw, 2 * heads
        kv = self.add(
            Layer(
                self.name("kv"),
                OpKind.MATMUL,
                ((1, h2, dim, n_tok), (1, h2, n_tok, dim + 1)),
                (1, h2, dim, dim + 1),
            ),
            [qkv, agg],
        )
        out = self.add(
            Layer(
                self.name("qkv"),
                OpKind.MATMUL,
                ((1, h2, n_tok, dim), (1, h2, dim, dim + 1)),
                (1, h2, n_tok, dim + 1),
            ),
            [qkv, kv],
        )
        div = self.add(eltwise(self.name("div"), OpKind.DIV, (1, h2, n_tok, dim)), [out])
        proj = self.add(
            Layer(
                self.name("proj"),
                OpKind.CONV_POINTWISE,
                ((1, 2 * c, hw, hw),),
                (1, c, hw, hw),
                weight_shape=(c, 2 * c, 1, 1),
                weight_bits=8,
            ),
            [div],
        )
        return self.residual(x, proj, c, hw)


B1 = dict(widths=(16, 32, 64, 128, 256), depths=(1, 2, 3, 3, 4), dim=16, head=(1536, 1600))
B2 = dict(widths=(24, 48, 96, 192, 384), depths=(1, 3, 4, 4, 6), dim=32, head=(2304, 2560))


def build_efficientvit_like(widths, depths, dim, head) -> nx.DiGraph:
    b = Builder()
    hw = 112
    x = b.add(conv("stem", OpKind.CONV_DENSE, 3, widths[0], hw, k=3, epilogue=("bias", "hardswish")), [None])
    for _ in range(depths[0]):  # DSConv
        y = b.pw(b.dw(x, widths[0], hw), widths[0], widths[0], hw, act=False)
        x = b.residual(x, y, widths[0], hw)
    cin = widths[0]
    for stage in range(1, 5):
        c = widths[stage]
        hw //= 2
        x = b.mbconv(x, cin, c, hw, residual=False)
        for _ in range(depths[stage] - 1):
            if stage >= 3:
                x = b.lite_mla(x, c, hw, dim)
            x = b.mbconv(x, c, c, hw, residual=True)
        cin = c
    h0, h1 = head
    x = b.pw(x, cin, h0, hw)
    x = b.add(Layer("gap", OpKind.POOL, ((1, h0, hw, hw),), (1, h0, 1, 1)), [x])
    x = b.add(Layer("fc1", OpKind.LINEAR, ((1, h0),), (1, h1), weight_shape=(h1, h0), weight_bits=8), [x])
    x = b.add(eltwise("ln", OpKind.NORM, (1, h1)), [x])
    b.add(Layer("fc2", OpKind.LINEAR, ((1, h1),), (1, 1000), weight_shape=(1000, h1), weight_bits=8), [x])
    return b.g


def main() -> None:
    graph = build_efficientvit_like(**B2)
    spec = m2vit_spec()
    t0 = time.perf_counter()
    result = simulate(graph, spec)
    wall = time.perf_counter() - t0
    macs = sum(layer.macs for layer in result.layers)
    print(
        f"layers {graph.number_of_nodes()}  MACs {macs / 1e6:.1f} M  events {result.events}  "
        f"tiles {sum(layer.tiles for layer in result.layers)}"
    )
    print(
        f"latency {result.latency_s * 1e3:.3f} ms  energy {result.energy_j * 1e3:.3f} mJ  "
        f"EDP {result.edp_js:.3e} J*s  "
        f"DRAM {(result.dram['bytes_read'] + result.dram['bytes_written']) / 1e6:.2f} MB"
    )
    print("utilization", {k: round(v.utilization, 3) for k, v in result.engines.items()})
    print(f"wall time {wall:.3f} s")


if __name__ == "__main__":
    main()
