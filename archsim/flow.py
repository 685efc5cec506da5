"""The end-to-end flow: workload -> graph -> (arch spec) -> simulation -> result.

Each stage is its own function so a test, a sweep or a notebook can call any one alone.
Torch is imported only by :func:`build_workload_graph` (through archsim.frontend.build).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from archsim.arch.spec import ArchSpec
from archsim.report.result import SimResult


@dataclass
class StageTimes:
    """Wall-clock seconds per stage; printed on request, never written into results."""

    seconds: dict[str, float] = field(default_factory=dict)

    def record(self, stage: str, start: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def format(self) -> str:
        parts = [f"{k} {v:.2f} s" for k, v in self.seconds.items()]
        return "wall time: " + ", ".join(parts) + f" (total {sum(self.seconds.values()):.2f} s)"


def load_workload(name_or_path: str, **overrides):
    from archsim.workload.config import load_workload as _load

    return _load(name_or_path, **overrides)


def build_workload_graph(workload) -> nx.DiGraph:
    """The workload's quantized graph; quality against fp32 is `archsim quantize`'s job, not run's."""
    from archsim.frontend.build import build_graph

    return build_graph(workload, quality_samples=0)


def load_arch(path: str | Path) -> ArchSpec:
    from archsim.arch.loader import load_arch as _load

    return _load(path)


def check_arch_supports_graph(graph: nx.DiGraph, spec: ArchSpec) -> None:
    """Raise a clear error when the architecture cannot run some layer of the graph."""
    from archsim.arch.coverage import check_supports, graph_needs

    problems = check_supports(spec, graph_needs(graph))
    if problems:
        where = spec.source_file or spec.name
        raise UnsupportedWorkloadError(
            f"{where}: architecture {spec.name!r} cannot run workload "
            f"{graph.graph.get('model', '?')} ({graph.graph.get('policy', '?')}):\n  " + "\n  ".join(problems)
        )


def simulate(graph: nx.DiGraph, spec: ArchSpec, workload_meta: dict) -> SimResult:
    from archsim.sim import simulate as _simulate

    return _simulate(graph, spec, workload=workload_meta)


def workload_meta(workload) -> dict:
    return {
        "name": workload.name,
        "model": workload.model,
        "resolution": workload.resolution,
        "batch": workload.batch,
        "policy": workload.policy,
        "seed": workload.seed,
        "source_file": str(workload.source_file) if workload.source_file else None,
    }


def run(workload, spec: ArchSpec, times: StageTimes | None = None, graph: nx.DiGraph | None = None) -> SimResult:
    """Quantize + extract ``workload`` (unless ``graph`` is given) and simulate it on ``spec``."""
    times = times or StageTimes()
    if graph is None:
        t = time.perf_counter()
        graph = build_workload_graph(workload)
        times.record("model+quantize+extract", t)
    check_arch_supports_graph(graph, spec)
    t = time.perf_counter()
    meta = workload_meta(workload)
    meta["quantization"] = graph.graph.get("quant_summary", {})  # APoT share: what the SAT receives
    result = simulate(graph, spec, meta)
    times.record("simulate", t)
    return result


def resolve_baseline(spec: ArchSpec) -> tuple[Path, str] | None:
    """The (arch YAML, policy) a config names as its default comparison point, if any."""
    if not spec.baseline:
        return None
    arch = Path(spec.baseline["arch"])
    if not arch.is_absolute() and spec.source_file:
        arch = Path(spec.source_file).parent / arch
    return arch, spec.baseline.get("policy", "uniform_w8a8")


class UnsupportedWorkloadError(ValueError):
    """The architecture has no engine mode for some layer of the workload."""
