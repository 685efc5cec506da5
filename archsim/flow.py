"""The end-to-end flow: workload -> graph -> (arch spec) -> simulation -> result.

Each stage is its own function so a test, a sweep or a notebook can call any one alone.
Torch is imported only by :func:`build_workload_graph` (through archsim.frontend.build), which
:func:`workload_graph` calls only when the graph cache (:mod:`archsim.cache`) has no entry.

Results identify their inputs by name and sha256 content digest (:meth:`Workload.identity`,
``SimResult.arch``), never by location: identical inputs give byte-identical result JSON in any
checkout and working directory. Machine paths and host data go only into the optional block
:func:`metadata` builds (``archsim run --metadata``).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from archsim.arch.spec import ArchSpec
from archsim.errors import ConfigError
from archsim.report.result import SimResult

Search = Sequence[str | os.PathLike]


@dataclass
class StageTimes:
    """Wall-clock seconds per stage; printed on request, never written into results."""

    seconds: dict[str, float] = field(default_factory=dict)

    def record(self, stage: str, start: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def format(self) -> str:
        parts = [f"{k} {v:.2f} s" for k, v in self.seconds.items()]
        return "wall time: " + ", ".join(parts) + f" (total {sum(self.seconds.values()):.2f} s)"


def load_workload(name_or_path: str, search: Search = (), overrides: Sequence = (), **fields):
    """A workload by name (``efficientvit_b1``) or YAML path
    (:func:`archsim.workload.config.load_workload`); ``fields`` replace fields (``resolution=256``),
    ``overrides`` are ``workload.*`` :class:`archsim.overrides.Override` s (``--set``)."""
    from archsim.overrides import load_workload as _load

    return _load(name_or_path, list(overrides), search, **fields)


def build_workload_graph(workload) -> nx.DiGraph:
    """The workload's quantized graph; quality against fp32 is `archsim quantize`'s job, not run's."""
    return build_workload(workload).graph


def build_workload(workload):
    """The workload's graph with the torch models behind it (archsim.frontend.build.Built)."""
    from archsim.frontend.build import build_workload as _build

    return _build(workload, quality_samples=0)


def load_arch(name_or_path: str | Path, search: Search = (), overrides: Sequence = ()) -> ArchSpec:
    """An architecture by name (``m2vit``) or YAML path, validated (:func:`archsim.arch.loader.load_arch`),
    with architecture :class:`archsim.overrides.Override` s (``--set``) applied first."""
    from archsim.arch.loader import resolve_arch
    from archsim.overrides import load_arch as _load

    return _load(resolve_arch(name_or_path, search=search), list(overrides), search)


def workload_graph(workload, times: StageTimes | None = None, *, cache: bool = True) -> nx.DiGraph:
    """The workload's graph: from the graph cache when it holds a sound entry (no torch), else built
    (torch) and, with ``cache``, stored for the next run (:mod:`archsim.cache`)."""
    from archsim import cache as graph_cache

    times = times or StageTimes()
    t = time.perf_counter()
    if cache:
        graph = graph_cache.lookup(workload)
        if graph is not None:
            times.record("graph (cache)", t)
            return graph
    graph = build_workload_graph(workload)
    times.record("model+quantize+extract", t)
    if cache:
        graph_cache.store(workload, graph)
    return graph


class UnsupportedWorkloadError(ConfigError):
    """The architecture has no engine mode for some layer of the workload.

    ``runnable`` names the bundled policies predicted to run on the architecture
    (:mod:`archsim.advice`), so the command line can say how to run one.
    """

    def __init__(self, message: str, runnable: list[str]):
        super().__init__(message)
        self.runnable = runnable


def check_arch_supports_graph(graph: nx.DiGraph, spec: ArchSpec, policy=None, workload=None) -> None:
    """Raise :class:`UnsupportedWorkloadError` when the architecture cannot run some layer of the graph.

    ``policy`` (the graph's QuantPolicy) lets the message name the bundled policies that would run
    (:mod:`archsim.advice`); with ``workload`` too, a policy of another activation side (a
    quantized one when the graph is fp32) is checked on its own graph, built once.
    """
    from archsim.advice import runnable_policies
    from archsim.arch.coverage import check_supports, graph_needs

    problems = check_supports(spec, graph_needs(graph))
    if not problems:
        return
    build = None
    if workload is not None:

        def build(name: str) -> nx.DiGraph:
            return workload_graph(dataclasses.replace(workload, policy=name))

    runnable = runnable_policies(spec, graph, policy, build=build) if policy is not None else []
    if runnable:
        advice = (
            f"bundled policies that run on {spec.name!r}: {', '.join(runnable)} "
            f"(choose one with --policy {runnable[0]})"
        )
    else:
        advice = (
            f"no bundled policy is known to run on {spec.name!r}; give it engine modes for the needs "
            "above (docs/configs.md) or try another architecture (`archsim list`)"
        )
    where = spec.source_file or spec.name
    raise UnsupportedWorkloadError(
        f"{where}: architecture {spec.name!r} cannot run workload "
        f"{graph.graph.get('model', '?')} (policy {graph.graph.get('policy', '?')}):\n  "
        + "\n  ".join(problems)
        + f"\n{advice}",
        runnable,
    )


def simulate(
    graph: nx.DiGraph, spec: ArchSpec, workload_meta: dict, values: bool = True, tracer=None
) -> SimResult:
    from archsim.sim import simulate as _simulate

    return _simulate(graph, spec, workload=workload_meta, values=values, tracer=tracer)


def workload_meta(workload) -> dict:
    """What a result records about the workload: names and content digests (:meth:`Workload.identity`)."""
    return workload.identity()


def run(
    workload,
    spec: ArchSpec,
    times: StageTimes | None = None,
    graph: nx.DiGraph | None = None,
    *,
    values: bool = True,
    check: bool = False,
    tracer=None,
    cache: bool = True,
    advise: bool = True,
) -> SimResult:
    """Simulate ``workload`` on ``spec``: its graph is ``graph`` if given, else the cached one or a new
    build (:func:`workload_graph`; ``cache=False`` builds and stores nothing).

    ``values``: compute every tile's values on its engine (the default); ``check``: also compute
    every layer with the torch oracle and record the comparison as ``result.checks["functional"]``
    (needs the quantized model: the graph is always built then, and stored in the cache, never read
    from it; it cannot be combined with a given ``graph``). ``advise``: when the architecture cannot
    run the graph, name the bundled policies that would (may build graphs; sweeps turn it off).
    ``tracer`` (an :class:`archsim.sim.trace.Tracer`) records the simulation (docs/traces.md).
    """
    from archsim.quant.policy import get_policy

    times = times or StageTimes()
    policy = get_policy(workload.policy)
    built = None
    if graph is not None and check:
        raise ValueError("run: check=True needs the quantized model; do not pass a graph")
    if check:
        t = time.perf_counter()
        built = build_workload(workload)
        graph = built.graph
        times.record("model+quantize+extract", t)
        if cache:
            from archsim import cache as graph_cache

            graph_cache.store(workload, graph)
    elif graph is None:
        graph = workload_graph(workload, times, cache=cache)
    check_arch_supports_graph(graph, spec, policy, workload if advise else None)
    t = time.perf_counter()
    meta = workload_meta(workload)
    meta["quantization"] = graph.graph.get("quant_summary", {})  # APoT share: what the SAT receives
    result = simulate(graph, spec, meta, values=values or check, tracer=tracer)
    times.record("simulate", t)
    if check:
        t = time.perf_counter()
        result.checks["functional"] = check_functional(result, built)
        times.record("check (torch oracle)", t)
    return result


def check_functional(result: SimResult, built) -> dict:
    """``checks.functional``: the run's values against the torch oracle, layer by layer."""
    if result.values is None:
        reason = result.functional.get("reason", "values were not computed")
        return {"held": True, "layers_checked": 0, "mismatches": 0, "skipped": reason, "layers": []}
    from archsim.frontend.oracle import check_values

    return check_values(result.values, built.quantized, built.graph)


def resolve_baseline(spec: ArchSpec, search: Search = ()) -> tuple[Path, str] | None:
    """The (arch YAML, policy) a config names as its default comparison point, if any.

    ``baseline.arch`` and ``baseline.policy`` are names (``uniform_int8``, ``uniform_w8a8``) or paths
    relative to the config's YAML; a policy path comes back absolute.
    """
    from archsim import resources
    from archsim.arch.loader import DEFAULT_BASELINE_POLICY, resolve_arch

    if not spec.baseline:
        return None
    base = Path(spec.source_file).parent if spec.source_file else None
    arch = resolve_arch(spec.baseline["arch"], base=base, search=search)
    policy = spec.baseline.get("policy", DEFAULT_BASELINE_POLICY)
    if resources.looks_like_path(policy):
        policy = str(resources.resolve("policy", policy, base=base, extra=search).resolve())
    return arch, policy


def metadata(argv: Sequence[str], inputs: dict[str, dict]) -> dict:
    """Where the inputs are on this machine and what ran them: for a result only on request.

    Never part of a result by default: it differs between checkouts and machines.
    """
    import archsim

    return {
        "note": "machine-specific: paths and host of this run; omitted unless --metadata is given",
        "command": ["archsim", *argv],
        "cwd": os.getcwd(),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "archsim_package": str(Path(archsim.__file__).resolve().parent),
        "inputs": inputs,
    }
