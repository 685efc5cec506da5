"""The `archsim` command line: run, validate, list."""

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
