"""Benchmark: the cost of tracing on EfficientViT-B1's simulation, and the size of the trace files.

Run: .venv/bin/python benchmarks/bench_trace.py [--model efficientvit_b1] [--arch m2vit] [--repeat 5]
Builds the workload's graph once (torch), then simulates it without a tracer, and with a tracer
(values off: the timing model alone, where the tracer's share is largest; and values on, the default
run), and prints the median wall time of each and the overhead; then the time to write the trace
(per tile and aggregated: one slice per layer and engine) and the VCD, and their sizes. Figures go
in notes (docs/traces.md), never in assertions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from archsim import flow
from archsim.report.trace_json import write_trace_json
from archsim.report.vcd import write_vcd
from archsim.sim import simulate
from archsim.sim.trace import Tracer


def timed(fn, repeat: int) -> tuple[float, object]:
    walls, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", default="efficientvit_b1")
    parser.add_argument("--arch", default="m2vit")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workload = flow.load_workload(args.model)
    spec = flow.load_arch(args.arch)
    graph = flow.build_workload_graph(workload)
    print(f"{args.model} on {args.arch}: {graph.number_of_nodes()} layers, median of {args.repeat} runs")
    for values in (False, True):
        base, result = timed(lambda values=values: simulate(graph, spec, values=values), args.repeat)
        wall, tracer = timed(lambda values=values: _traced(graph, spec, values), args.repeat)
        print(
            f"\nvalues {'on' if values else 'off'}: no tracer {base * 1e3:.1f} ms "
            f"({result.events} events, {sum(layer.tiles for layer in result.layers)} tiles); "
            f"tracer {wall * 1e3:.1f} ms: overhead {(wall - base) * 1e3:.1f} ms "
            f"({(wall / base - 1) * 100:.1f} %)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = (
            ("trace JSON, tiles", write_trace_json, "json"),
            ("trace JSON, aggregate", lambda t, p: write_trace_json(t, p, aggregate=True), "agg.json"),
            ("VCD", write_vcd, "vcd"),
        )
        for what, write, suffix in files:
            path = Path(tmp) / f"t.{suffix}"
            wall_w, _ = timed(lambda write=write, path=path: write(tracer, path), max(1, args.repeat // 2))
            print(f"{what:22s} written in {wall_w * 1e3:6.1f} ms, {path.stat().st_size / 1e6:6.2f} MB")


def _traced(graph, spec, values: bool) -> Tracer:
    tracer = Tracer()
    simulate(graph, spec, values=values, tracer=tracer)
    return tracer


if __name__ == "__main__":
    main()
