"""Speed of the integer model (a benchmark script, not a test).

    .venv/bin/python benchmarks/bench_integer_model.py efficientvit_b1 [--policy P] [--batch 1] [--repeat 3]

Builds the workload's quantized graph once, then prints the best of --repeat runs of: the
integer model's set-up (fx trace and grouping), one forward of --batch images, the same
forward of the float fake-quant model, and the per-layer agreement pass.
"""

from __future__ import annotations

import argparse
import time

import torch

from archsim.frontend.extract import extract_graph
from archsim.quant.integer_model import IntegerModel, layer_agreement
from archsim.quant.quantize import quantize_model
from archsim.workload.config import load_workload
from archsim.workload.data import calibration_batches, synthetic_batches
from archsim.workload.efficientvit import build_model


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--policy")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    workload = load_workload(args.workload, **({"policy": args.policy} if args.policy else {}))
    res = workload.resolution
    model = build_model(workload.model, seed=workload.seed, resolution=res)
    cal = workload.calibration
    quantized = quantize_model(
        model,
        workload.policy,
        calibration_batches(cal.source, cal.samples, cal.batch_size, res, workload.seed),
    )
    meta = {
        "model": workload.model,
        "resolution": res,
        "batch": 1,
        "policy": quantized.policy.name,
        "seed": workload.seed,
    }
    t = time.perf_counter()
    graph = extract_graph(model, quantized, (1, 3, res, res), meta)
    extract_s = time.perf_counter() - t
    (x,) = synthetic_batches(args.batch, args.batch, res, workload.seed + 1)
    integer_model = IntegerModel(quantized.folded, graph)
    print(
        f"{workload.model} at {res}, policy {quantized.policy.name}, batch {args.batch}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"extract graph            {extract_s:.3f} s (once)")
    print(
        f"integer model set-up     "
        f"{best_of(args.repeat, lambda: IntegerModel(quantized.folded, graph)):.3f} s"
    )
    print(f"integer model forward    {best_of(args.repeat, lambda: integer_model(x)):.3f} s")
    with torch.no_grad():
        print(f"fake-quant forward       {best_of(args.repeat, lambda: quantized(x)):.3f} s")
    print(
        f"layer agreement (1 img)  "
        f"{best_of(args.repeat, lambda: layer_agreement(quantized, integer_model, x[:1])):.3f} s"
    )


if __name__ == "__main__":
    main()
