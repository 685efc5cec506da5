"""Helpers of the sweep tests: a small graph for every workload, executors that count or stop, and a
point function that kills its worker process (importable by spawned workers)."""

from __future__ import annotations

import os
from pathlib import Path

from archsim.sweep.executors import InProcess
from archsim.sweep.worker import run_task

KILL_ENV = "ARCHSIM_TEST_KILL"  # "<hash prefix>:<marker folder>:<times>"


def toy_graphs(calls: list | None = None):
    """A graph source giving the toy EfficientViT (tests/unit/test_extract_toy.py) for any workload."""
    from toy_fixtures import toy_build

    def source(workload):
        if calls is not None:
            calls.append(workload)
        return toy_build("m2q")[1]

    return source


class Counting(InProcess):
    """Runs in this process and remembers the hashes it ran; raises KeyboardInterrupt after ``stop``."""

    def __init__(self, stop: int | None = None):
        self.ran: list[str] = []
        self.stop = stop

    def run(self, tasks, graphs, done):
        for task in tasks:
            if self.stop is not None and len(self.ran) == self.stop:
                raise KeyboardInterrupt
            self.ran.append(task.hash)
            done(task, run_task(task, str(graphs[task.graph_key])))


def dying(task, graph_file):
    """run_task, but the worker process dies (os._exit) on the chosen point the first ``times`` times."""
    prefix, folder, times = os.environ[KILL_ENV].split(":")
    if task.hash.startswith(prefix):
        marks = sorted(Path(folder).glob("kill-*"))
        if len(marks) < int(times):
            (Path(folder) / f"kill-{len(marks)}").write_text("")
            os._exit(1)
    return run_task(task, graph_file)
