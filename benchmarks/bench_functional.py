"""What functional compute costs: simulation with and without values, and functional MACs per second.

    .venv/bin/python benchmarks/bench_functional.py efficientvit_b1 arch_configs/m2vit.yaml [--policy P]
        [--resolution R] [--repeat 3] [--blas-threads 1]

Builds the workload's graph once (not timed), then reports the best of --repeat runs of
``simulate(values=False)`` and ``simulate(values=True)``, the difference (what functional compute
adds), the functional MACs per second over that difference, and ``Executor.run`` alone (the whole
graph as one tile per layer and scheme). ``--blas-threads`` sets the BLAS threads during the run
(archsim.sim.simulate.FUNCTIONAL_BLAS_THREADS, default 1) to measure the choice.
"""

from __future__ import annotations

import argparse
import time

from archsim import flow
from archsim.frontend.build import build_graph
from archsim.functional.executor import Executor, default_input, quantize_input
from archsim.sim import simulate


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("arch")
    parser.add_argument("--policy")
    parser.add_argument("--resolution", type=int)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args()
    overrides = {k: v for k, v in (("policy", args.policy), ("resolution", args.resolution)) if v is not None}
    workload = flow.load_workload(args.workload, **overrides)
    spec = flow.load_arch(args.arch)
    graph = build_graph(workload, quality_samples=0)

    import archsim.sim.simulate as sim_mod

    sim_mod.FUNCTIONAL_BLAS_THREADS = args.blas_threads
    timing_s, _ = best(lambda: simulate(graph, spec, values=False), args.repeat)
    values_s, result = best(lambda: simulate(graph, spec, values=True), args.repeat)
    image, _ = default_input(graph)
    codes = quantize_input(graph, image)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        alone_s, _ = best(lambda: Executor(graph).run(codes), args.repeat)
    macs = result.functional["macs"]
    added = values_s - timing_s
    print(
        f"{workload.model} @ {workload.resolution}, policy {workload.policy}, arch {spec.name}, "
        f"BLAS threads {args.blas_threads} (best of {args.repeat})"
    )
    print(f"  simulate, timing only      {timing_s:8.3f} s  ({result.events:,} events)")
    print(f"  simulate, with values      {values_s:8.3f} s")
    print(
        f"  functional compute adds    {added:8.3f} s  ({macs / 1e6:,.0f} M MACs, "
        f"{macs / added / 1e9 if added > 0 else float('inf'):.2f} G functional MACs/s)"
    )
    print(f"  Executor.run alone         {alone_s:8.3f} s  ({macs / alone_s / 1e9:.2f} G MACs/s)")


if __name__ == "__main__":
    main()
