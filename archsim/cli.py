"""The `archsim` command line: run, quantize, validate, list."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from archsim import __version__

# Errors a user can cause with bad input: printed as one clear message, no traceback.
USER_ERRORS = (ValueError, FileNotFoundError)


def _add_workload_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", help="override the workload's quantization policy (e.g. m2q, uniform_w8a8)")
    p.add_argument("--resolution", type=int, help="override the input resolution (pixels)")
    p.add_argument("--batch", type=int, help="override the batch size")
    p.add_argument("--seed", type=int, help="override the seed of weights and calibration data")
    p.add_argument("--checkpoint", help="load model weights from this local file (weights_only)")


def _overrides(args) -> dict:
    keys = ("policy", "resolution", "batch", "seed", "checkpoint")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def cmd_run(args) -> int:
    from archsim import flow
    from archsim.report.summary import compare, summarize, summarize_comparison
    from archsim.report.writers import write_json

    t0 = time.perf_counter()
    times = flow.StageTimes()
    workload = flow.load_workload(args.workload, **_overrides(args))
    spec = flow.load_arch(args.arch)
    result = flow.run(workload, spec, times)
    out = result.to_dict()
    print(summarize(result, top_layers=args.top))

    baseline = None
    if args.baseline:
        baseline = (Path(args.baseline), args.baseline_policy or "uniform_w8a8")
    elif not args.no_baseline:
        baseline = flow.resolve_baseline(spec)
        if baseline and args.baseline_policy:
            baseline = (baseline[0], args.baseline_policy)
    if baseline is not None:
        base_arch, base_policy = baseline
        base_workload = flow.load_workload(args.workload, **{**_overrides(args), "policy": base_policy})
        base_spec = flow.load_arch(base_arch)
        base_result = flow.run(base_workload, base_spec, times)
        print("\n" + "=" * 72 + "\nbaseline\n" + "=" * 72)
        print(summarize(base_result, top_layers=args.top))
        cmp = compare(result, base_result)
        print("\n" + summarize_comparison(cmp))
        out["baseline"] = base_result.to_dict()
        out["comparison"] = cmp

    if args.out:
        path = write_json(out, args.out)
        print(f"\nwrote {path}")
    if args.timing:
        print(times.format() + f"; command {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0


QUALITY_SAMPLES = 8  # [choice] images for the fp32-vs-quantized comparison: enough for SQNR/cosine, fast on B1
NO_CHECKPOINT_EVAL_WARNING = (
    "warning: --eval without a checkpoint: the model has seeded random weights, so its top-1 accuracy is "
    "chance level and says nothing about the quantization; pass --checkpoint (or set it in the workload)")


def cmd_quantize(args) -> int:
    from archsim.frontend.build import QUALITY_SEED_OFFSET, graph_meta
    from archsim.frontend.extract import extract_graph
    from archsim.quant.integer_model import IntegerModel
    from archsim.quant.quantize import quantize_model
    from archsim.quant.report import format_report, quality_report
    from archsim.report.writers import write_json
    from archsim.workload.config import load_workload
    from archsim.workload.data import calibration_batches, labelled_batches
    from archsim.workload.efficientvit import build_model

    calibration = {k: v for k, v in (("source", args.calibration), ("samples", args.samples)) if v is not None}
    workload = load_workload(args.workload, policy=args.policy, checkpoint=args.checkpoint,
                             calibration=calibration or None)
    for flag, value in (("--quality-samples", args.quality_samples), ("--eval-samples", args.eval_samples)):
        if value < 1:
            raise ValueError(f"{flag}: {value} is not allowed (allowed: an integer >= 1)")
    # Read every input before the slow model build, so a bad path fails at once.
    cal = workload.calibration
    batches = calibration_batches(cal.source, cal.samples, cal.batch_size, workload.resolution, workload.seed)
    # Held-out comparison images from the same kind of source (synthetic: a separate seeded stream).
    quality = calibration_batches(cal.source, args.quality_samples, cal.batch_size, workload.resolution,
                                  workload.seed + QUALITY_SEED_OFFSET)
    eval_batches = None
    if args.eval:
        eval_batches = labelled_batches(args.eval, args.eval_samples, cal.batch_size, workload.resolution,
                                        workload.seed)
        if workload.checkpoint is None:
            print(NO_CHECKPOINT_EVAL_WARNING, file=sys.stderr)

    model = build_model(workload.model, seed=workload.seed, checkpoint=workload.checkpoint,
                        resolution=workload.resolution)
    quantized = quantize_model(model, workload.policy, batches)
    integer_model = None
    if quantized.policy.quantized:  # report what the integer datapath computes
        graph = extract_graph(model, quantized, (1, 3, workload.resolution, workload.resolution),
                              graph_meta(workload, quantized.policy.name, batch=1))
        integer_model = IntegerModel(quantized.folded, graph)
    report = quality_report(model, quantized, quality, eval_batches=eval_batches, integer_model=integer_model)
    out = {
        "workload": workload.to_dict(),
        "calibration": {"source": cal.source, "samples": sum(int(b.shape[0]) for b in batches)},
        "quality_data": {"source": cal.source, "samples": sum(int(b.shape[0]) for b in quality),
                         "seed": workload.seed + QUALITY_SEED_OFFSET},
        "eval_data": None,
        **report,
    }
    if args.eval:
        out["eval_data"] = {"folder": str(Path(args.eval).resolve()), "seed": workload.seed}
    print(f"{workload.name}: {workload.model} at {workload.resolution}x{workload.resolution}, "
          f"calibrated on {out['calibration']['samples']} image(s) from {cal.source}")
    print(format_report(report))
    if args.out:
        path = write_json(out, args.out)
        print(f"\nwrote {path}")
    return 0


def cmd_validate(args) -> int:
    from archsim.arch.loader import load_arch

    status = 0
    for path in args.arch:
        try:
            spec = load_arch(path)
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
            continue
        engines = ", ".join(f"{e.name} ({e.kind.value})" for e in spec.engines)
        print(f"{path}: ok: {spec.name}, clock {spec.clock_hz / 1e6:g} MHz, engines: {engines}")
    return status


def cmd_list(args) -> int:
    from archsim.workload.config import list_workloads

    print("workloads:")
    for name in list_workloads():
        print(f"  {name}")
    configs = sorted(Path("arch_configs").glob("*.yaml")) if Path("arch_configs").is_dir() else []
    if not configs:
        repo_configs = Path(__file__).resolve().parent.parent / "arch_configs"
        configs = sorted(repo_configs.glob("*.yaml"))
    print("architecture configs:")
    for path in configs:
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archsim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"archsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate a workload on an architecture")
    run.add_argument("workload", help="bundled workload name (see `archsim list`) or a workload YAML path")
    run.add_argument("arch", help="architecture YAML")
    run.add_argument("--out", help="write the full result as JSON to this file")
    run.add_argument("--baseline", help="also run this architecture YAML and compare (default: the YAML's own)")
    run.add_argument("--baseline-policy", help="policy for the baseline run (default: the YAML's, or uniform_w8a8)")
    run.add_argument("--no-baseline", action="store_true", help="skip the comparison run")
    run.add_argument("--top", type=int, default=8, help="how many layers to list (default 8)")
    run.add_argument("--timing", action="store_true", help="print wall time per stage to stderr")
    _add_workload_overrides(run)
    run.set_defaults(func=cmd_run)

    quant = sub.add_parser("quantize", help="quantize a workload's model and report the quality per layer")
    quant.add_argument("workload", help="bundled workload name (see `archsim list`) or a workload YAML path")
    quant.add_argument("--policy", help="quantization policy (default: the workload's), e.g. m2q, uniform_w8a8")
    quant.add_argument("--out", help="write the report as JSON to this file")
    quant.add_argument("--checkpoint", help="load model weights from this local file (weights_only)")
    quant.add_argument("--calibration", help="calibration data: 'synthetic', an ImageFolder directory, "
                       "or a .npy/.pt file of (N, 3, R, R) preprocessed images (default: the workload's)")
    quant.add_argument("--samples", type=int, help="number of calibration images (default: the workload's)")
    quant.add_argument("--quality-samples", type=int, default=QUALITY_SAMPLES,
                       help=f"held-out images for the fp32 comparison (default {QUALITY_SAMPLES})")
    quant.add_argument("--eval", metavar="DIR", help="labelled ImageFolder: also report real top-1 accuracy "
                       "(meaningful only with a checkpoint)")
    quant.add_argument("--eval-samples", type=int, default=100,
                       help="images drawn from --eval (default 100)")
    quant.set_defaults(func=cmd_quantize)

    val = sub.add_parser("validate", help="check architecture YAMLs and report every error")
    val.add_argument("arch", nargs="+")
    val.set_defaults(func=cmd_validate)

    lst = sub.add_parser("list", help="list bundled workloads and architecture configs")
    lst.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
