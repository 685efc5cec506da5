"""Speed benchmark of the banked DRAM model on a synthetic EfficientViT-B1-like DMA trace.

Run: .venv/bin/python benchmarks/bench_dram.py [--preset ddr4_2400_x64] [--scheduler frfcfs]

The trace (seeded, synthetic) has ~10k transactions: 150 layers alternating between two engines that
run concurrently; each layer streams its weights in 64 KiB filter chunks and, per tile, reads an input
tile and writes an output tile (double-buffered: tile i+1 loads while tile i computes), with tensors
placed by archsim/sim/dram_alloc.py. The same trace runs on the simple one-channel DRAM (today's
archsim/sim/dram.py) for comparison. Printed: transactions, bytes, simulated time, events, events per
transaction, wall time and transactions per second (wall times vary by machine; figures go in notes).
"""

from __future__ import annotations

import argparse
import random
import time

from archsim.arch.dram_presets import get_preset
from archsim.arch.spec import DramSpec, EnergyEntry
from archsim.sim.dram import Dram
from archsim.sim.dram_alloc import allocate
from archsim.sim.dram_banked import BankedDram, BankedDramConfig
from archsim.sim.kernel import CountingEnvironment

LAYERS = 150
TILES = 32  # tiles per layer
CHUNK = 64 * 1024  # weight filter chunk, bytes
COMPUTE_PS_PER_BYTE = 40  # synthetic compute time per output byte: keeps the trace partly compute-bound


def synthetic_layers(seed: int = 0):
    rng = random.Random(seed)
    layers, prev = [], "input"
    for i in range(LAYERS):
        weights = int(2 ** rng.uniform(10, 19.2))  # 1 KiB .. 600 KiB, ~8 MB in total
        act = int(2 ** rng.uniform(12, 19))  # output activation: 4 KiB .. 512 KiB
        layers.append((f"L{i}", f"w{i}", weights, prev, f"a{i}", act))
        prev = f"a{i}"
    return layers


def tensors(layers):
    out = [("input", 150_528, "activation")]
    for _, w, wb, _, a, ab in layers:
        out += [(w, wb, "weights"), (a, ab, "activation")]
    return out


def run(dram_factory, layers):
    env = CountingEnvironment()
    dram = dram_factory(env)
    layout = allocate(tensors(layers))
    sizes = {name: alloc.size for name, alloc in layout.items()}
    count = [0]

    def transfer(address, nbytes, write):
        count[0] += 1
        if isinstance(dram, BankedDram):
            return dram.transfer(address, nbytes, write)
        return dram.transfer(nbytes, write)

    def layer(name, w, inp, out):
        wbase, ibase, obase = layout[w].base, layout[inp].base, layout[out].base
        wsize, isize, osize = sizes[w], sizes[inp], sizes[out]
        chunks = -(-wsize // CHUNK)
        per_chunk = max(1, TILES // chunks)
        writes = []
        for t in range(TILES):
            loads = []
            c = t // per_chunk
            if t % per_chunk == 0 and c < chunks:
                nbytes = min(CHUNK, wsize - c * CHUNK)
                loads.append(env.process(transfer(wbase + c * CHUNK, nbytes, False)))
            lo, hi = isize * t // TILES, isize * (t + 1) // TILES
            if hi > lo:
                loads.append(env.process(transfer(ibase + lo, hi - lo, False)))
            for p in loads:
                yield p
            olo, ohi = osize * t // TILES, osize * (t + 1) // TILES
            yield env.timeout(COMPUTE_PS_PER_BYTE * (ohi - olo))
            if ohi > olo:
                writes.append(env.process(transfer(obase + olo, ohi - olo, True)))
        for p in writes:
            yield p

    def engine(mine):
        for name, w, _, inp, out, _ in mine:
            yield env.process(layer(name, w, inp, out))

    env.process(engine(layers[0::2]))
    env.process(engine(layers[1::2]))
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    return env, dram, count[0], wall


def simple_dram(env):
    spec = DramSpec(
        name="ddr4_simple",
        peak_bandwidth_bytes_per_s=19.2e9,
        latency_s=60e-9,
        read_energy=EnergyEntry("r", 160e-12, "pJ/B", "assumed: benchmark"),
        write_energy=EnergyEntry("w", 150e-12, "pJ/B", "assumed: benchmark"),
    )
    return Dram(env, spec)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="ddr4_2400_x64")
    ap.add_argument("--scheduler", default="frfcfs", choices=["frfcfs", "fifo"])
    ap.add_argument("--refresh", default="all_bank", choices=["all_bank", "per_bank"])
    args = ap.parse_args()
    layers = synthetic_layers()
    config = BankedDramConfig(get_preset(args.preset), scheduler=args.scheduler, refresh=args.refresh)
    for label, factory in (
        ("simple", simple_dram),
        (f"banked {args.preset} {args.scheduler} {args.refresh}", lambda env: BankedDram(env, config)),
    ):
        env, dram, n, wall = run(factory, layers)
        line = (
            f"{label:45s} transactions {n}  simulated {env.now / 1e6:.1f} us  "
            f"events {env.events_processed}  events/txn {env.events_processed / n:.2f}  "
            f"wall {wall:.3f} s  txn/s {n / wall:,.0f}"
        )
        print(line)
        if isinstance(dram, BankedDram):
            s = dram.stats().to_dict()
            print(
                f"{'':45s} {(s['bytes_read'] + s['bytes_written']) / 1e6:.2f} MB  row hit rate "
                f"{s['row_hit_rate']:.3f}  achieved {s['achieved_bandwidth_Bps'] / 1e9:.2f} GB/s of "
                f"{s['peak_bandwidth_Bps'] / 1e9:.1f}  commands {s['commands']}"
            )


if __name__ == "__main__":
    main()
