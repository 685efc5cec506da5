"""Speed benchmark of the interconnect reservation tables on a synthetic EfficientViT-B1-like load.

Run: .venv/bin/python benchmarks/bench_interconnect.py [--transfers 10000] [--repeat 3]

The load (seeded, synthetic): ~10k transfers of 64 B to 200 KB (log-uniform) between the DRAM
controller, two buffers and three engines, issued at an advancing request time (1 ns to 2 us apart):
DRAM reads into the buffers chained to a 19.2 GB/s DRAM channel (cut-through), buffer -> engine
loads (a quarter of the weight loads multicast to the MPMA and the SAT), engine -> activation
buffer stores and write-backs to DRAM. The same load runs on a bus (today's single link), a
crossbar, a 2x2 mesh and a 4x4 mesh. Printed: transfers, simulated end, byte-hops, busiest link
utilisation, wall time and reservations per second (the best of --repeat runs; wall times vary by
machine, figures go in notes, never in assertions).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from fractions import Fraction

from archsim.sim.channel import Channel
from archsim.sim.interconnect import InterconnectConfig, Network

PERIOD_PS = 5000  # 200 MHz, as m2vit.yaml
BW = 128  # B/cycle, as m2vit.yaml's interconnect
HOP = 2  # cycles, as m2vit.yaml's interconnect latency
NODES = ("dram", "weight_buffer", "act_buffer", "mpma", "sat", "vector")
PLACEMENTS = {
    "bus": ((), {n: None for n in NODES}),
    "crossbar": ((6,), {n: i for i, n in enumerate(NODES)}),
    "mesh 2x2": (
        (2, 2),
        {
            "dram": (0, 0),
            "weight_buffer": (0, 1),
            "act_buffer": (1, 0),
            "mpma": (1, 1),
            "sat": (1, 1),
            "vector": (0, 1),
        },
    ),
    "mesh 4x4": (
        (4, 4),
        {
            "dram": (0, 0),
            "weight_buffer": (0, 3),
            "act_buffer": (3, 0),
            "mpma": (3, 3),
            "sat": (1, 2),
            "vector": (2, 1),
        },
    ),
}


def synthetic_load(count: int, seed: int = 0):
    """(request ps, src, dsts, bytes, via_dram) tuples in request order."""
    rng = random.Random(seed)
    now, out = 0, []
    kinds = [
        ("dram", ("weight_buffer",), True),
        ("dram", ("act_buffer",), True),
        ("weight_buffer", ("mpma",), False),
        ("weight_buffer", ("mpma", "sat"), False),
        ("act_buffer", ("mpma",), False),
        ("act_buffer", ("sat",), False),
        ("act_buffer", ("vector",), False),
        ("mpma", ("act_buffer",), False),
        ("sat", ("act_buffer",), False),
        ("vector", ("act_buffer",), False),
        ("act_buffer", ("dram",), False),
    ]
    for _ in range(count):
        src, dsts, via_dram = kinds[rng.randrange(len(kinds))]
        nbytes = int(2 ** rng.uniform(6, math.log2(200_000)))
        out.append((now, src, dsts, nbytes, via_dram))
        now += rng.randrange(1000, 2_000_000)
    return out


def run(label: str, load):
    shape, nodes = PLACEMENTS[label]
    topology = label.split()[0]
    net = Network(InterconnectConfig(topology, nodes, BW, HOP, shape, 0.5e-12, 1.0e-12), PERIOD_PS)
    dram = Channel("dram", Fraction(12, 625), 60_000)  # DDR4-2400 x64: 19.2 GB/s, 60 ns
    t0 = time.perf_counter()
    end = Fraction(0)
    for now, src, dsts, nbytes, via_dram in load:
        upstream = dram.reserve(Fraction(now), nbytes) if via_dram else None
        r = net.reserve(now, src, dsts, nbytes, upstream)
        if dsts == ("dram",):  # a write-back: the DRAM leg follows the interconnect leg
            d = r.delivery("dram")
            _, tail = dram.reserve(d.start, nbytes, d.end)
            end = max(end, tail)
        end = max(end, r.end)
    wall = time.perf_counter() - t0
    busiest = max(net.link_stats(), key=lambda s: s.busy_ps)
    return net, end, busiest, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transfers", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    load = synthetic_load(args.transfers)
    total = sum(n for _, _, _, n, _ in load)
    print(f"load: {len(load)} transfers, {total / 1e6:.1f} MB, 64 B .. 200 KB")
    for label in PLACEMENTS:
        runs = [run(label, load) for _ in range(args.repeat)]
        net, end, busiest, _ = runs[0]
        wall = min(w for *_, w in runs)
        print(
            f"{label:9s} simulated {float(end) / 1e6:9.1f} us  byte-hops {net.byte_hops / 1e6:7.1f} M  "
            f"bus bytes {net.bus_bytes / 1e6:6.1f} M  busiest {busiest.name} "
            f"{float(busiest.busy_ps / end):.2f}  wall {wall:.3f} s  "
            f"reservations/s {len(load) / wall:,.0f}"
        )


if __name__ == "__main__":
    main()
