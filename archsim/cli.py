"""The `archsim` command line: run, sweep, compare, plot, quantize, validate, list, cache.

Exit codes: 0 success; 1 a run that failed although its inputs were accepted (an output that
cannot be written, a simulator failure, an internal error); 2 a usage or config error (bad
option, bad YAML, unknown name, unreadable input data, a workload the architecture cannot run);
130 interrupted.
No error shows a traceback unless --debug is given. Long options are never abbreviated
(``--check`` is not ``--checkpoint``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from archsim import __version__
from archsim.errors import ConfigError, RunError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130  # 2 = argparse's usage-error code
# [choice] images for the fp32-vs-quantized comparison: enough for SQNR/cosine, fast on B1
QUALITY_SAMPLES = 8
EVAL_SAMPLES = 100  # [choice] labelled images drawn from --eval
TOP_LAYERS = 8  # [choice] slowest layers listed by `archsim run`
NO_CHECKPOINT_EVAL_WARNING = (
    "warning: --eval without a checkpoint: the model has seeded random weights, so its top-1 accuracy is "
    "chance level and says nothing about the quantization; pass --checkpoint (or set it in the workload)"
)
DEBUG_HINT = "(--debug shows the traceback)"
METADATA_HELP = (
    "add a 'metadata' block to --out: input paths, host, command (machine-specific; not written by default)"
)


# -- parsing ------------------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1")
    return value


def _common() -> argparse.ArgumentParser:
    """Options every command takes (after the command name as well as before it)."""
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
    )
    common.add_argument(
        "--path",
        action="append",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="also look up names in DIR (DIR/workloads/, DIR/arch_configs/, DIR/policies/ or "
        "YAMLs in DIR), before ARCHSIM_PATH and the bundled files; repeatable",
    )
    return common


RUN_EXAMPLES = """\
examples:
  archsim run efficientvit_b1 m2vit                    # M2Q on M2-ViT, compared with m2vit's baseline
  archsim run efficientvit_b0 m2vit --no-baseline --out b0.json
  archsim run efficientvit_b2 uniform_int8 --policy uniform_w8a8
  archsim run my_workload.yaml arch_configs/m2vit.yaml --resolution 288 --metadata --out r.json
  archsim run efficientvit_b1 mine --path ~/archs      # ~/archs/arch_configs/mine.yaml or ~/archs/mine.yaml
  archsim run efficientvit_b1 m2vit --check             # every layer's codes against the torch oracle
  archsim run efficientvit_b1 m2vit --dump-values vals/  # every layer's integers, one .npz per run
  archsim run efficientvit_b3 m2vit --no-functional     # timing and energy only (no values)
  archsim run efficientvit_b1 m2vit --trace b1.json --vcd b1.vcd  # open in ui.perfetto.dev / GTKWave
  archsim run efficientvit_b3 m2vit --trace b3.json --trace-aggregate  # one slice per layer and engine
  archsim run efficientvit_b1 m2vit --plots figures/    # Gantt, utilisation, energy, roofline, comparison
  archsim run efficientvit_b1 m2vit --set dram.peak_bandwidth="38.4 GB/s" --set engines.sat.rows=32
  archsim run efficientvit_b1 m2vit --set workload.resolution=256 --no-baseline

WORKLOAD and ARCH are names (`archsim list`) or YAML paths. The result JSON names every input
by name and sha256; --metadata adds where they are on this machine. Every tile's values are
computed on the engine that runs it (the logits are part of the result); --check compares every
layer with the torch oracle and exits 1 on any mismatch. --trace and --vcd record the run under
study (not the baseline) as it happens, tile by tile; the result is the same with or without them
(docs/traces.md). --plots draws the run's figures, the baseline's and their comparison (docs/plots.md).

--set KEY=VALUE changes one field as if written in the YAML (the value is YAML, validated with
the file's own schema and units): KEY is a dotted path into the architecture (engines.sat.rows)
or, prefixed workload., into the workload (workload.policy). Architecture keys change the run's
architecture, not its baseline's; workload keys change both runs (but the baseline keeps its own
policy). The graph of a workload is cached (`archsim cache list`; built without torch only once):
--no-cache builds it afresh and stores nothing; --check always builds it (the oracle needs the
torch model) and refreshes the cache.
"""
QUANTIZE_EXAMPLES = """\
examples:
  archsim quantize efficientvit_b1                      # the workload's policy (m2q) against fp32
  archsim quantize efficientvit_b1 --policy uniform_w8a8 --out q.json
  archsim quantize efficientvit_b1 --checkpoint w.pth --calibration imgs/ --eval val/
"""
VALIDATE_EXAMPLES = """\
examples:
  archsim validate arch_configs/*.yaml workloads/*.yaml   # every problem of every file, file:line: field
  archsim validate m2vit efficientvit_b1 m2q               # bundled names
  archsim validate --kind policy my_policy.yaml
  archsim validate examples/sweep_b1.yaml                  # a sweep file: its points are counted

The kind of a path is told from its top-level keys (engines/clock: architecture, model:
workload, policy fields: policy, workload and arch: sweep) unless --kind is given.
"""
LIST_EXAMPLES = """\
examples:
  archsim list                        # every bundled workload, architecture config and policy
  archsim list --path ~/my_configs    # and those of a user folder (also: ARCHSIM_PATH)
"""
SWEEP_EXAMPLES = """\
examples:
  archsim sweep examples/sweep_b1.yaml --out sweeps/b1          # local processes, one per core
  archsim sweep examples/sweep_b1.yaml --out sweeps/b1 --workers 2
  archsim sweep examples/sweep_b1.yaml --out sweeps/b1 --dask-local 2   # a Dask LocalCluster
  archsim sweep examples/sweep_b1.yaml --out sweeps/b1 --scheduler tcp://10.0.0.5:8786
  archsim sweep examples/sweep_b1.yaml --out sweeps/try --limit 3      # the first 3 points only

Every finished point is written at once: a row of DIR/results.csv and its full result in
DIR/points/<hash>.json. Running the same command again resumes: finished points are skipped,
failed ones are tried again. A point that fails (a bad value, a mapping error) records its
error and the others go on; Ctrl-C loses only the points in flight. Each distinct workload's
graph is built once (graph cache) and shipped to the workers. docs/sweeps.md has the format.
Exit code 0 when every point ran, 1 when some point failed (the summary names them), 2 for a bad
sweep file.
"""
PLOT_EXAMPLES = """\
examples:
  archsim plot sweeps/b1                     # a sweep DIR: Pareto fronts, EDP vs derived columns, sensitivity
  archsim plot r.json --out figures/         # one result (and its baseline): gantt, utilisation, \
energy, roofline
  archsim plot a.json b.json --format svg    # two results: also their per-layer comparison

A sweep's figures go to DIR/plots/ unless --out is given; result figures go to --out (default
plots/). docs/plots.md and docs/sweeps.md say how to read each figure.
"""
CACHE_EXAMPLES = """\
examples:
  archsim cache list                 # every cached graph: key, workload, size
  archsim cache clear                # delete them all (they are rebuilt on the next run)
  ARCHSIM_CACHE_DIR=/tmp/c archsim run efficientvit_b1 m2vit   # a cache folder of your own

The cache folder is $ARCHSIM_CACHE_DIR/graphs, else the platform's user cache folder for archsim
(~/.cache/archsim/graphs on Linux).
"""
MAIN_EXAMPLES = """\
examples:
  archsim list
  archsim run efficientvit_b1 m2vit
  archsim validate arch_configs/m2vit.yaml
  archsim sweep examples/sweep_b1.yaml --out sweeps/b1
  archsim plot sweeps/b1
  archsim run --help                  # each command has its own help with examples

exit codes: 0 ok, 1 a run failed, 2 a usage or config error.
"""


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="archsim",
        description=__doc__.splitlines()[0],
        epilog=MAIN_EXAMPLES,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"archsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=examples,
            parents=[common],
            formatter_class=_Formatter,
            allow_abbrev=False,
        )

    run = command("run", "simulate a workload on an architecture", RUN_EXAMPLES)
    run.add_argument("workload", help="workload name (`archsim list`) or YAML path")
    run.add_argument("arch", help="architecture config name (`archsim list`) or YAML path")
    run.add_argument("--out", help="write the full result as JSON to this file")
    base = run.add_mutually_exclusive_group()
    base.add_argument(
        "--baseline",
        metavar="ARCH",
        help="compare with this architecture (name or path) instead of the config's own baseline",
    )
    base.add_argument("--no-baseline", action="store_true", help="skip the comparison run")
    run.add_argument(
        "--baseline-policy",
        metavar="POLICY",
        help="policy of the comparison run (default: the config's baseline policy, or uniform_w8a8)",
    )
    run.add_argument(
        "--top", type=_positive_int, default=TOP_LAYERS, help="how many layers to list (default %(default)s)"
    )
    run.add_argument("--timing", action="store_true", help="print wall time per stage to stderr")
    run.add_argument("--metadata", action="store_true", help=METADATA_HELP)
    run.add_argument("--policy", help="override the workload's quantization policy (name or YAML path)")
    run.add_argument("--resolution", type=int, help="override the input resolution (pixels)")
    run.add_argument("--batch", type=int, help="override the batch size")
    run.add_argument("--seed", type=int, help="override the seed of weights and calibration data")
    run.add_argument("--checkpoint", help="load model weights from this local file (weights_only)")
    values = run.add_mutually_exclusive_group()
    values.add_argument(
        "--no-functional",
        action="store_true",
        help="do not compute values (timing and energy only; results are otherwise identical)",
    )
    values.add_argument(
        "--check",
        action="store_true",
        help="compare every layer's integers with the torch oracle (IntegerModel); exit 1 on a mismatch",
    )
    run.add_argument(
        "--dump-values",
        metavar="DIR",
        help="write every layer's integers of each run to DIR/<workload>_<arch>_<policy>.npz",
    )
    run.add_argument(
        "--trace",
        metavar="FILE",
        help="write a Perfetto / Chrome trace-event JSON of the run (ui.perfetto.dev, chrome://tracing)",
    )
    run.add_argument(
        "--trace-aggregate",
        action="store_true",
        help="in --trace, one slice per layer and engine instead of one per tile (large runs)",
    )
    run.add_argument(
        "--vcd",
        metavar="FILE",
        help="write engine-busy, DMA-active and buffer-occupancy "
        "signals as a VCD for waveform viewers (GTKWave)",
    )
    run.add_argument("--plots", metavar="DIR", help="write the run's figures (PNG and SVG) to DIR")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="sets",
        help="change a field: engines.sat.rows=32, dram.peak_bandwidth='38.4 GB/s', "
        "workload.resolution=256 (repeatable; see below)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="build the workload's graph (torch) instead of reading the graph cache; store nothing",
    )
    run.set_defaults(func=cmd_run)

    _add_sweep_commands(command)
    _add_compare_command(command)

    cache = command(
        "cache", "list or clear the graph cache (quantized, extracted graphs by content hash)", CACHE_EXAMPLES
    )
    cache.add_argument(
        "action", choices=("list", "clear"), help="list: every entry and its size; clear: delete them all"
    )
    cache.set_defaults(func=cmd_cache)

    quant = command(
        "quantize", "quantize a workload's model and report the quality per layer", QUANTIZE_EXAMPLES
    )
    quant.add_argument("workload", help="workload name (`archsim list`) or YAML path")
    quant.add_argument("--policy", help="quantization policy (default: the workload's): name or YAML path")
    quant.add_argument("--out", help="write the report as JSON to this file")
    quant.add_argument("--checkpoint", help="load model weights from this local file (weights_only)")
    quant.add_argument(
        "--calibration",
        help="calibration data: 'synthetic', an ImageFolder directory, "
        "or a .npy/.pt file of (N, 3, R, R) preprocessed images (default: the workload's)",
    )
    quant.add_argument(
        "--samples", type=_positive_int, help="number of calibration images (default: the workload's)"
    )
    quant.add_argument(
        "--quality-samples",
        type=_positive_int,
        default=QUALITY_SAMPLES,
        help="held-out images for the fp32 comparison (default %(default)s)",
    )
    quant.add_argument(
        "--eval",
        metavar="DIR",
        help="labelled ImageFolder: also report real top-1 accuracy (meaningful only with a checkpoint)",
    )
    quant.add_argument(
        "--eval-samples",
        type=_positive_int,
        default=EVAL_SAMPLES,
        help="images drawn from --eval (default %(default)s)",
    )
    quant.add_argument("--metadata", action="store_true", help=METADATA_HELP)
    quant.set_defaults(func=cmd_quantize)

    val = command(
        "validate", "check workload, architecture and policy YAMLs; report every problem", VALIDATE_EXAMPLES
    )
    val.add_argument("files", nargs="+", metavar="FILE", help="YAML path or name")
    val.add_argument(
        "--kind",
        choices=("auto", "arch", "workload", "policy", "sweep"),
        default="auto",
        help="what the files are (default %(default)s: told by their keys)",
    )
    val.set_defaults(func=cmd_validate)

    lst = command(
        "list", "list the workloads, architecture configs and policies names can reach", LIST_EXAMPLES
    )
    lst.set_defaults(func=cmd_list)
    return parser


COMPARE_EXAMPLES = """\
examples:
  archsim compare                                   # B1-B3 x 224/256/288, FPGA and 28 nm tables, both budgets
  archsim compare --models b1 --resolutions 224 --tables fpga --out cmp/
  archsim compare --out cmp/ --workers 2 --sat-lane-area 0.25
  archsim compare --models b1 --resolutions 224 --attribution --sensitivity --out cmp/

M2-ViT (m2vit*.yaml, policy m2q) against the uniform baseline (uniform_int8*.yaml, policy
uniform_w8a8), sized at equal 8x8-multiplier budget (MAT rows = (MPMA + f x SAT lanes - R-PE) / 32,
f = --sat-lane-area) and at equal estimated area (archsim/area.py). edp_saving = 1 - EDP_m2vit /
EDP_baseline. --out DIR writes DIR/compare.csv, DIR/savings.png/.svg and the sweep folders (resumed
by the next run). --attribution splits ln(EDP ratio) into causes (Shapley values over controlled
variants) for --study MODEL@RES; --sensitivity varies one parameter at a time (tornado). Each graph
is built once (graph cache). docs/m2vit-study.md reads the results.
"""


def _add_compare_command(command) -> None:
    cmp = command("compare", "M2-ViT vs the uniform baseline: latency, energy, EDP saving", COMPARE_EXAMPLES)
    cmp.add_argument("--models", metavar="LIST", help="comma-separated subset of b1,b2,b3 (default all)")
    cmp.add_argument(
        "--resolutions", metavar="LIST", help="comma-separated input resolutions (default 224,256,288)"
    )
    cmp.add_argument("--tables", metavar="LIST", help="energy tables: fpga,asic28 (default both)")
    cmp.add_argument("--budgets", metavar="LIST", help="baseline sizing: multiplier,area (default both)")
    cmp.add_argument(
        "--sat-lane-area",
        type=float,
        metavar="F",
        help="8x8 multipliers per SAT lane for the equal-budget baseline (default: m2vit's "
        "params.sat_lane_area_in_mult8, 0.5; 0: the SAT costs no multipliers, an equal-DSP budget)",
    )
    cmp.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="local worker processes (default: the number of cores; 1 runs in this process)",
    )
    cmp.add_argument("--out", metavar="DIR", help="write compare.csv, the plots and the run folders here")
    cmp.add_argument("--attribution", action="store_true", help="attribute the EDP difference to its causes")
    cmp.add_argument("--sensitivity", action="store_true", help="one-at-a-time sensitivity study (tornado)")
    cmp.add_argument(
        "--study",
        metavar="MODEL@RES",
        default="b1@224",
        help="the model and resolution of --attribution and --sensitivity (default %(default)s)",
    )
    cmp.add_argument("--no-progress", action="store_true", help="no progress messages on stderr")
    cmp.add_argument(
        "--no-cache",
        action="store_true",
        help="build every graph (torch) instead of reading the graph cache; store nothing",
    )
    cmp.set_defaults(func=cmd_compare)


def cmd_compare(args, argv: Sequence[str]) -> int:
    from archsim import compare_cli

    return compare_cli.main(args)


def _add_sweep_commands(command) -> None:
    sweep = command(
        "sweep", "run a design-space sweep: every point of a sweep YAML, resumable", SWEEP_EXAMPLES
    )
    sweep.add_argument("sweep", metavar="SWEEP.yaml", help="the sweep file (docs/sweeps.md)")
    sweep.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder of results.csv and points/ (an existing one is resumed)",
    )
    where = sweep.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="local worker processes (default: the number of cores; 1 runs in this process)",
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on the Dask cluster of this scheduler (tcp://host:port)"
    )
    where.add_argument(
        "--dask-local",
        type=_positive_int,
        metavar="N",
        help="run on a Dask LocalCluster of N single-threaded worker processes",
    )
    sweep.add_argument(
        "--limit", type=_positive_int, metavar="N", help="run at most N of the points still to do"
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument(
        "--no-cache",
        action="store_true",
        help="build every workload's graph (torch) instead of reading the graph cache; store nothing",
    )
    sweep.set_defaults(func=cmd_sweep)

    plot = command("plot", "draw the figures of result JSON files or of a sweep folder", PLOT_EXAMPLES)
    plot.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="result JSON files (`archsim run --out`), or one sweep folder (`archsim sweep --out`)",
    )
    plot.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the figures (default: DIR/plots for a sweep, plots for results)",
    )
    plot.add_argument(
        "--format",
        action="append",
        choices=("png", "svg", "pdf"),
        dest="formats",
        help="file format, repeatable (default: png and svg)",
    )
    plot.set_defaults(func=cmd_plot)


def _search(args) -> list[str]:
    return list(getattr(args, "path", None) or [])


# -- run ----------------------------------------------------------------------------------------


def _sets(args) -> tuple[list, list]:
    """The --set overrides: (architecture ones, workload ones)."""
    from archsim import overrides

    return overrides.split(overrides.parse_set(text) for text in getattr(args, "sets", []))


def _overrides(args) -> dict:
    keys = ("policy", "resolution", "batch", "seed", "checkpoint")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def with_option(argv: Sequence[str], option: str, value: str | None) -> list[str]:
    """``argv`` with every ``option VALUE`` (or ``option=VALUE``) removed, then ``option value`` added."""
    out, skip = [], False
    flag = value is None
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = not flag
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out + ([option] if flag else [option, value])


def _command(argv: Sequence[str], option: str, value: str | None = None) -> str:
    return shlex.join(["archsim", *with_option(argv, option, value)])


def _run_one(workload, spec, times, argv, args, *, baseline: bool, tracer=None):
    from archsim import flow

    try:
        return flow.run(
            workload,
            spec,
            times,
            values=not args.no_functional,
            check=args.check,
            tracer=tracer,
            cache=not args.no_cache,
        )
    except flow.UnsupportedWorkloadError as err:
        lines = [str(err)]
        option = "--baseline-policy" if baseline else "--policy"
        if err.runnable:
            lines.append(f"run one: {_command(argv, option, err.runnable[0])}")
        if baseline:
            lines.append(f"or skip the comparison: {_command(argv, '--no-baseline')}")
        raise ConfigError("\n".join(lines)) from err


def _paths(workload, spec) -> dict:
    return {"workload": workload.paths(), "arch": str(Path(spec.source_file).resolve())}


def cmd_run(args, argv: Sequence[str]) -> int:
    from archsim import flow
    from archsim.arch.loader import DEFAULT_BASELINE_POLICY
    from archsim.report.summary import compare, summarize, summarize_comparison

    t0 = time.perf_counter()
    search = _search(args)
    times = flow.StageTimes()
    arch_sets, workload_sets = _sets(args)
    # every input is read and validated before the slow model build
    workload = flow.load_workload(args.workload, search, workload_sets, **_overrides(args))
    spec = flow.load_arch(args.arch, search, arch_sets)
    baseline = None
    if args.baseline:
        baseline = (args.baseline, args.baseline_policy or DEFAULT_BASELINE_POLICY)
    elif not args.no_baseline:
        baseline = flow.resolve_baseline(spec, search)
        if baseline and args.baseline_policy:
            baseline = (baseline[0], args.baseline_policy)
    base_workload = base_spec = None
    if baseline is not None:
        base_overrides = {**_overrides(args), "policy": baseline[1]}
        base_sets = [o for o in workload_sets if o.path[0] != "policy"]  # the baseline keeps its policy
        base_workload = flow.load_workload(args.workload, search, base_sets, **base_overrides)
        base_spec = flow.load_arch(baseline[0], search)

    if args.dump_values and args.no_functional:
        raise ConfigError("--dump-values needs values: drop --no-functional")
    if args.trace_aggregate and not args.trace:
        raise ConfigError("--trace-aggregate shapes the --trace file: give --trace FILE as well")
    tracer = None
    if args.trace or args.vcd:
        from archsim.sim.trace import Tracer

        tracer = Tracer()
    result = _run_one(workload, spec, times, argv, args, baseline=False, tracer=tracer)
    if arch_sets:  # the result names the architecture file by digest: say what was changed in it
        from archsim.overrides import as_text

        result.arch["overrides"] = as_text(arch_sets)
    out = result.to_dict()
    print(summarize(result, top_layers=args.top))
    results = [result]
    inputs = {"run": _paths(workload, spec)}
    if base_spec is not None:
        base_result = _run_one(base_workload, base_spec, times, argv, args, baseline=True)
        results.append(base_result)
        print("\n" + "=" * 72 + "\nbaseline\n" + "=" * 72)
        print(summarize(base_result, top_layers=args.top))
        cmp = compare(result, base_result)
        print("\n" + summarize_comparison(cmp))
        out["baseline"] = base_result.to_dict()
        out["comparison"] = cmp
        inputs["baseline"] = _paths(base_workload, base_spec)
    _write(out, args, argv, inputs)
    if tracer is not None:
        _write_traces(tracer, result, args, times)
    if args.plots:
        _write_plots(out, args.plots, times)
    if args.dump_values:
        for r in results:
            print(f"wrote {_dump_values(r, args.dump_values)}")
    if args.timing:
        print(times.format() + f"; command {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    failed = [r for r in results if not r.checks.get("functional", {"held": True})["held"]]
    if failed:
        check = failed[0].checks["functional"]
        raise RunError(
            f"functional check failed for {failed[0].arch['name']}: {check['mismatches']:,} mismatching "
            f"elements, first at layer {check['first_mismatching_layer']}"
        )
    return EXIT_OK


def _trace_names(result) -> dict:
    """What a trace file says about its run: names, never paths (trace files are reproducible too)."""
    w = result.workload
    return {
        "workload": {k: w.get(k) for k in ("name", "model", "resolution", "batch", "policy")},
        "arch_sha256": result.arch.get("sha256"),
    }


def _write_traces(tracer, result, args, times) -> None:
    """--trace (Perfetto / Chrome JSON) and --vcd of the traced run."""
    from archsim.report.trace_json import write_trace_json
    from archsim.report.vcd import write_vcd

    names = _trace_names(result)
    writers = (
        ("--trace", args.trace, lambda p: write_trace_json(tracer, p, names, args.trace_aggregate)),
        ("--vcd", args.vcd, lambda p: write_vcd(tracer, p, _vcd_comment(names))),
    )
    for option, path, write in writers:
        if not path:
            continue
        t = time.perf_counter()
        try:
            written = write(path)
        except OSError as err:
            raise RunError(f"cannot write {path}: {err.strerror or err}; choose another {option}") from err
        times.record(f"write {option[2:]}", t)
        print(f"wrote {written}")


def _vcd_comment(names: dict) -> str:
    w = names["workload"]
    return (
        f"archsim run {w.get('name')} ({w.get('model')}, {w.get('resolution')} px, policy {w.get('policy')})"
    )


def _write_plots(out: dict, folder: str, times) -> None:
    """--plots: every figure of the run (and its baseline and their comparison) via plot_results."""
    from archsim.report.plots import plot_results

    t = time.perf_counter()
    try:
        paths = plot_results([out], folder)
    except OSError as err:
        raise RunError(
            f"cannot write the figures to {folder}: {err.strerror or err}; choose another --plots"
        ) from err
    times.record("plots", t)
    print(f"wrote {len(paths)} figures to {folder}")


def _dump_values(result, folder: str) -> Path:
    """Every layer's integers (and the input codes) of one run, as one .npz keyed by layer name."""
    import numpy as np

    if result.values is None:
        raise RunError(f"--dump-values: no values were computed ({result.functional.get('reason')})")
    path = (
        Path(folder)
        / f"{result.workload.get('name')}_{result.arch.get('name')}_{result.workload.get('policy')}.npz"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **result.values)
    except OSError as err:
        raise RunError(f"cannot write {path}: {err.strerror or err}; choose another --dump-values") from err
    return path


def _write(out: dict, args, argv: Sequence[str], inputs: dict) -> None:
    from archsim import flow
    from archsim.report.writers import write_json

    if args.metadata:
        if not args.out:
            print("warning: --metadata has no effect without --out", file=sys.stderr)
        out["metadata"] = flow.metadata(argv, inputs)
    if args.out:
        try:
            path = write_json(out, args.out)
        except OSError as err:
            raise RunError(f"cannot write {args.out}: {err.strerror or err}; choose another --out") from err
        print(f"\nwrote {path}")


# -- quantize -----------------------------------------------------------------------------------


def cmd_quantize(args, argv: Sequence[str]) -> int:
    from archsim import resources
    from archsim.frontend.build import QUALITY_SEED_OFFSET, graph_meta
    from archsim.frontend.extract import extract_graph
    from archsim.quant.integer_model import IntegerModel
    from archsim.quant.quantize import quantize_model
    from archsim.quant.report import format_report, quality_report
    from archsim.workload.config import load_workload
    from archsim.workload.data import calibration_batches, labelled_batches
    from archsim.workload.efficientvit import build_model

    calibration = {
        k: v for k, v in (("source", args.calibration), ("samples", args.samples)) if v is not None
    }
    workload = load_workload(
        args.workload,
        search=_search(args),
        policy=args.policy,
        checkpoint=args.checkpoint,
        calibration=calibration or None,
    )
    # Read every input before the slow model build, so a bad path fails at once.
    cal = workload.calibration
    batches = calibration_batches(cal.source, cal.samples, cal.batch_size, workload.resolution, workload.seed)
    # Held-out comparison images from the same kind of source (synthetic: a separate seeded stream).
    quality = calibration_batches(
        cal.source,
        args.quality_samples,
        cal.batch_size,
        workload.resolution,
        workload.seed + QUALITY_SEED_OFFSET,
    )
    eval_batches = None
    if args.eval:
        eval_batches = labelled_batches(
            args.eval, args.eval_samples, cal.batch_size, workload.resolution, workload.seed
        )
        if workload.checkpoint is None:
            print(NO_CHECKPOINT_EVAL_WARNING, file=sys.stderr)

    model = build_model(
        workload.model, seed=workload.seed, checkpoint=workload.checkpoint, resolution=workload.resolution
    )
    quantized = quantize_model(model, workload.policy, batches)
    integer_model = None
    if quantized.policy.quantized:  # report what the integer datapath computes
        graph = extract_graph(
            model,
            quantized,
            (1, 3, workload.resolution, workload.resolution),
            graph_meta(workload, quantized.policy.name, batch=1),
        )
        integer_model = IntegerModel(quantized.folded, graph)
    report = quality_report(model, quantized, quality, eval_batches=eval_batches, integer_model=integer_model)
    identity = workload.identity()  # names and digests; a calibration folder is hashed once
    out = {
        "workload": identity,
        "calibration": {
            "source": identity["calibration"]["source"],
            "samples": sum(int(b.shape[0]) for b in batches),
        },
        "quality_data": {
            "source": identity["calibration"]["source"],
            "samples": sum(int(b.shape[0]) for b in quality),
            "seed": workload.seed + QUALITY_SEED_OFFSET,
        },
        "eval_data": None,
        **report,
    }
    if args.eval:
        out["eval_data"] = {"folder": resources.identity(args.eval), "seed": workload.seed}
    print(
        f"{workload.name}: {workload.model} at {workload.resolution}x{workload.resolution}, "
        f"calibrated on {out['calibration']['samples']} image(s) from {cal.source}"
    )
    print(format_report(report))
    inputs = {"workload": workload.paths(), "eval": str(Path(args.eval).resolve()) if args.eval else None}
    _write(out, args, argv, inputs)
    return EXIT_OK


# -- sweep, plot, cache ---------------------------------------------------------------------------


def cmd_sweep(args, argv: Sequence[str]) -> int:
    from archsim import sweep

    spec = sweep.load_sweep(args.sweep, search=_search(args))
    executor = sweep.executor_for(workers=args.workers, scheduler=args.scheduler, dask_local=args.dask_local)
    outcome = sweep.execute(
        spec, args.out, executor, limit=args.limit, progress=not args.no_progress, cache=not args.no_cache
    )
    print(outcome.summary())
    return EXIT_FAILED if outcome.failed else EXIT_OK


def cmd_plot(args, argv: Sequence[str]) -> int:
    formats = tuple(dict.fromkeys(args.formats or ("png", "svg")))
    folders = [p for p in args.inputs if Path(p).is_dir()]
    if folders:
        if len(args.inputs) > 1:
            raise ConfigError(
                f"{folders[0]}: a sweep folder is plotted alone (got {len(args.inputs)} inputs)"
            )
        from archsim.report.sweep_plots import plot_sweep

        paths = plot_sweep(folders[0], args.out or Path(folders[0]) / "plots", formats)
    else:
        from archsim.report.plots import load_result, plot_results

        results = [load_result(p) for p in args.inputs]
        paths = plot_results(results, args.out or "plots", formats, sources=list(args.inputs))
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK


def cmd_cache(args, argv: Sequence[str]) -> int:
    from archsim import cache

    folder = cache.cache_dir()
    if args.action == "clear":
        count, size = cache.clear()
        print(f"removed {count} cached graph(s), {size / 1e6:.1f} MB, from {folder}")
        return EXIT_OK
    found = list(cache.entries())
    print(
        f"graph cache: {folder} ({len(found)} entr{'y' if len(found) == 1 else 'ies'}, "
        f"{sum(e.bytes for e in found) / 1e6:.1f} MB)"
    )
    for entry in found:
        state = "" if entry.problem is None else f"  [{entry.problem}: rebuilt on next use]"
        print(f"  {entry.key[:12]}  {entry.bytes / 1e6:6.1f} MB  {entry.description}{state}")
    return EXIT_OK


# -- validate and list --------------------------------------------------------------------------


def _validate_one(kind: str, path: Path, search: list[str]) -> str:
    """One line saying what the valid file is; the loader's error otherwise."""
    if kind == "arch":
        from archsim.arch.loader import load_arch

        spec = load_arch(path, search=search)
        engines = ", ".join(f"{e.name} ({e.kind.value})" for e in spec.engines)
        return f"ok: architecture {spec.name}, clock {spec.clock_hz / 1e6:g} MHz, engines: {engines}"
    if kind == "workload":
        from archsim.workload.config import load_workload

        wl = load_workload(path, search=search)
        policy = wl.identity()["policy"]
        return f"ok: workload {wl.name}, {wl.model} at {wl.resolution}, batch {wl.batch}, policy {policy}"
    if kind == "sweep":
        from archsim.sweep import expand, load_sweep

        spec = load_sweep(path, search=search)
        return f"ok: sweep {spec.name}, {len(expand(spec))} points in {len(spec.blocks)} block(s)"
    from archsim.quant.policy_loader import load_policy_file

    policy = load_policy_file(path, search=search)
    bits = " (fp32)" if not policy.quantized else f", {policy.act_bits}-bit activations"
    return f"ok: policy {policy.name}{bits}"


def _targets(ref: str, kind: str, search: list[str]) -> list[tuple[str, Path]]:
    from archsim import resources

    if kind == "sweep":
        return [(kind, Path(ref))]  # sweeps are given by path
    kinds = resources.KINDS if kind == "auto" else (kind,)
    if resources.looks_like_path(ref):
        path = Path(ref)
        if kind != "auto":
            return [(kind, path)]
        from archsim.configfile import ConfigFileError, read_document

        doc = read_document(path, ConfigFileError)  # not found, unreadable, invalid YAML: said with the line
        found = resources.kind_of(doc.path)
        if found is None and isinstance(doc.data, dict) and {"workload", "arch"} <= doc.data.keys():
            found = "sweep"  # a sweep names a workload and an architecture (and has no engines or model)
        if found is None:
            raise ConfigFileError(ref, [_unknown_kind()])
        return [(found, path)]
    hits = [(k, res.path) for k in kinds if (res := resources.find(k, ref, search)) is not None]
    if not hits:
        raise (
            resources.unknown(kinds[0], ref, search)
            if len(kinds) == 1
            else ConfigError(
                f"{ref!r}: no workload, architecture config or policy has this name "
                "(`archsim list` shows them)"
            )
        )
    return hits


def _unknown_kind():
    from archsim.configfile import Problem

    return Problem(
        1,
        "",
        "cannot tell what this file is (no engines/clock: architecture, no model: "
        "workload, no policy fields); give --kind arch, --kind workload or --kind policy",
    )


def cmd_validate(args, argv: Sequence[str]) -> int:
    search = _search(args)
    status = EXIT_OK
    for ref in args.files:
        try:
            for kind, path in _targets(ref, args.kind, search):
                print(f"{path}: {_validate_one(kind, path, search)}")
        except ConfigError as err:
            if getattr(args, "debug", False):
                raise
            print(f"error: {err}", file=sys.stderr)
            status = EXIT_CONFIG
    return status


def cmd_list(args, argv: Sequence[str]) -> int:
    from archsim import resources

    search = _search(args)
    titles = {"workload": "workloads", "arch": "architecture configs", "policy": "quantization policies"}
    for kind in resources.KINDS:
        entries = resources.available(kind, search)
        print(f"{titles[kind]}:")
        width = max((len(r.name) for r in entries), default=0)
        for res in entries:
            origin = "" if res.bundled else f"  [{res.origin}]"
            print(f"  {res.name.ljust(width)}  {resources.description(res.path)}{origin}")
        for res in resources.shadowed(kind, search):
            print(f"  (hidden: {res.path}, the name {res.name} is taken by an earlier folder)")
    folders = resources.user_folders(search)
    none = f"none (add with --path DIR or {resources.PATH_ENV}); names above are bundled"
    print("search folders: " + (", ".join(str(f) for f in folders) if folders else none))
    return EXIT_OK


# -- main ---------------------------------------------------------------------------------------


def _run_failures() -> tuple[type[BaseException], ...]:
    """Errors of a run whose inputs were valid: RunError, and the simulator's own failures (looked
    up only when the simulator was loaded, so that `archsim list` does not import it)."""
    sim_errors = sys.modules.get("archsim.sim.errors")
    if sim_errors is None:
        return (RunError,)
    return RunError, sim_errors.MappingError, sim_errors.InvariantError


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints them and exits with code 2
    debug = getattr(args, "debug", False)
    try:
        return args.func(args, argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _run_failures() as err:  # the inputs were accepted, the run could not finish
        if debug:
            raise
        return _fail(f"{err}\nthe run failed {DEBUG_HINT}", EXIT_FAILED)
    except (ValueError, OSError) as err:  # bad input (ConfigError, unreadable data): the message names it
        if debug:
            raise
        return _fail(str(err), EXIT_CONFIG)
    except Exception as err:  # a bug: say so, briefly
        if debug:
            raise
        return _fail(
            f"internal error: {type(err).__name__}: {err}\nplease report it with the command line "
            f"{DEBUG_HINT}",
            EXIT_FAILED,
        )


if __name__ == "__main__":
    sys.exit(main())
