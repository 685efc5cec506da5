"""End-to-end wall time of `archsim run` stages (a benchmark script, not a test).

    .venv/bin/python benchmarks/bench_run.py efficientvit_b1 arch_configs/m2vit.yaml [--repeat 3] [--policy P]

Prints, per stage, the best of --repeat runs: model build + quantization + extraction,
simulation alone, and the simulator's event count and events per second.
"""

from __future__ import annotations

import argparse
import time

from archsim import flow


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("arch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policy", help="override the workload's quantization policy")
    args = parser.parse_args()

    t = time.perf_counter()
    workload = flow.load_workload(args.workload, **({"policy": args.policy} if args.policy else {}))
    spec = flow.load_arch(args.arch)
    load_s = time.perf_counter() - t

    build = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        graph = flow.build_workload_graph(workload)
        build.append(time.perf_counter() - t)
    sim = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        result = flow.simulate(graph, spec, flow.workload_meta(workload))
        sim.append(time.perf_counter() - t)
    best = min(sim)
    print(f"load workload+arch      {load_s:.3f} s")
    print(f"model+quantize+extract  {min(build):.3f} s (best of {args.repeat})")
    print(
        f"simulate                {best:.3f} s (best of {args.repeat}), {result.events:,} events, "
        f"{result.events / best:,.0f} events/s, {len(result.layers)} layers"
    )


if __name__ == "__main__":
    main()
