"""What a sweep worker runs: one point's simulation from a graph file and a validated spec.

Torch-free (a worker never builds a graph: the parent ships it). A task carries everything the
simulation needs as plain picklable data (the spec, the workload's identity), so a worker on
another machine needs archsim installed but none of the sweep's files.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from archsim.arch.spec import ArchSpec
from archsim.graph.io import SUFFIX, load_graph
from archsim.report.writers import to_json

GRAPH_MEMO = 4  # [choice] graphs a worker keeps loaded (a B1 graph is tens of MB; sweeps have few workloads)
_GRAPHS: OrderedDict[str, nx.DiGraph] = OrderedDict()

OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class Task:
    """One simulation: ``hash`` names the point, ``graph_key`` the graph (cache key of its workload)."""

    hash: str
    graph_key: str
    spec: ArchSpec
    meta: dict  # what the result records about the workload (identity, quantization summary)
    values: bool = False
    arch_overrides: dict[str, Any] = field(default_factory=dict)


def ignore_interrupts() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it waits for the points in flight)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def graph_for(key: str, source: str | os.PathLike | bytes) -> nx.DiGraph:
    """The graph ``key``, loaded once per process from a graph file or its bytes."""
    graph = _GRAPHS.get(key)
    if graph is None:
        if isinstance(source, bytes):
            with tempfile.TemporaryDirectory(prefix="archsim-graph-") as folder:
                path = Path(folder) / f"{key}{SUFFIX}"
                path.write_bytes(source)
                graph = load_graph(path)
        else:
            graph = load_graph(source)
        _GRAPHS[key] = graph
        while len(_GRAPHS) > GRAPH_MEMO:
            _GRAPHS.popitem(last=False)
    else:
        _GRAPHS.move_to_end(key)
    return graph


def failure(err: BaseException) -> dict:
    """A point's outcome for an error: its message (a config error's message is the whole story)."""
    from archsim.errors import ConfigError

    message = str(err) if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
    return {"status": FAILED, "error": message, "result": None}


def point_result(result) -> dict:
    """A point's result JSON: the run's, without the energy event list (about a thousand records per
    EfficientViT run; the totals by component, engine, layer and kind stay) [choice: sweep folders of
    thousands of points stay small; `archsim run` the point's config for its events]."""
    d = result.to_dict()
    if isinstance(d.get("energy"), dict) and "events" in d["energy"]:
        d["energy"]["events"] = None
        d["energy"]["events_note"] = "omitted in sweep points; archsim run the point for the event list"
    return d


def run_task(task: Task, source: str | os.PathLike | bytes) -> dict:
    """Simulate one point; ``{"status", "error", "result"}`` (the result JSON data), never raises."""
    from archsim import flow

    try:
        graph = graph_for(task.graph_key, source)
        flow.check_arch_supports_graph(graph, task.spec)
        result = flow.simulate(graph, task.spec, dict(task.meta), values=task.values)
        if task.arch_overrides:
            result.arch["overrides"] = dict(task.arch_overrides)
        # as the point's JSON file holds it (plain types), so fresh and resumed rows are alike
        return {"status": OK, "error": None, "result": json.loads(to_json(point_result(result)))}
    except Exception as err:  # noqa: BLE001 - recorded as the point's error; the sweep goes on
        return failure(err)
