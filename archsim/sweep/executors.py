"""Where a sweep's points run: this process, a local process pool, or a Dask cluster.

Every executor takes the tasks and the graph file of each graph key, calls ``done(task, outcome)``
in the calling thread as each point finishes (so the caller writes it at once), and on Ctrl-C
stops handing out points, lets the ones in flight finish and report, then raises
``KeyboardInterrupt``.

- :class:`InProcess` (``--workers 1``): no pool, points one after the other.
- :class:`LocalPool` (default, ``--workers N``): ``concurrent.futures.ProcessPoolExecutor`` with
  the *spawn* start method (workers start clean: no torch, no threads inherited from a parent that
  built graphs); each worker loads a graph once from its file. A worker that dies (killed, out of
  memory) breaks the pool: a new pool takes the unfinished points, each point at most
  :data:`MAX_ATTEMPTS` times, then it is recorded as failed.
- :class:`DaskExecutor` (``--scheduler tcp://host:port`` or ``--dask-local N``): dask.distributed;
  each graph file's bytes are scattered to every worker once and tasks refer to them, so a remote
  worker needs archsim but no file of the sweep. Dask re-runs the tasks of a lost worker itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from archsim.sweep.worker import Task, failure, ignore_interrupts, run_task

Done = Callable[[Task, dict], None]
MAX_ATTEMPTS = 3  # [choice] runs of a point whose worker died before it is recorded as failed
START_METHOD = "spawn"  # [choice] clean workers on every platform (fork after torch can deadlock)


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InProcess:
    name = "this process"

    def run(self, tasks: Sequence[Task], graphs: dict[str, Path], done: Done) -> None:
        for task in tasks:
            done(task, run_task(task, str(graphs[task.graph_key])))


class LocalPool:
    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"{workers} local worker processes"

    def run(self, tasks: Sequence[Task], graphs: dict[str, Path], done: Done) -> None:
        import multiprocessing

        pending = list(tasks)
        attempts = {t.hash: 0 for t in tasks}
        while pending:
            context = multiprocessing.get_context(START_METHOD)
            pool = ProcessPoolExecutor(max_workers=min(self.workers, len(pending)), mp_context=context,
                                       initializer=ignore_interrupts)
            futures = {}
            for task in pending:
                attempts[task.hash] += 1
                futures[pool.submit(run_task, task, str(graphs[task.graph_key]))] = task
            pending = []
            try:
                pending = self._collect(futures, attempts, done)
            except KeyboardInterrupt:
                for future in futures:
                    future.cancel()
                self._finish_running(futures, done)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _collect(futures: dict, attempts: dict, done: Done) -> list[Task]:
        """Report each finished point; the tasks of a broken pool that may run again."""
        retry = []
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in finished:
                task = futures.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    if attempts[task.hash] < MAX_ATTEMPTS:
                        retry.append(task)
                        continue
                    outcome = {"status": "failed", "result": None,
                               "error": f"its worker process died {attempts[task.hash]} times "
                                        "(killed, or out of memory)"}
                except Exception as err:  # noqa: BLE001 - a task that could not be sent or received
                    outcome = failure(err)
                done(task, outcome)
        return retry

    @staticmethod
    def _finish_running(futures: dict, done: Done) -> None:
        """After Ctrl-C: wait for the points in flight and report them (a second Ctrl-C gives up)."""
        for future, task in futures.items():
            if future.cancelled():
                continue
            try:
                outcome = future.result()
            except Exception:  # noqa: BLE001, S112 - a pool broken while stopping: the point is not recorded
                continue
            done(task, outcome)


class DaskExecutor:
    """A dask.distributed cluster: an existing one (``address``) or a LocalCluster of ``local`` workers."""

    def __init__(self, address: str | None = None, local: int | None = None):
        if (address is None) == (local is None):
            raise ValueError("DaskExecutor: give either a scheduler address or a LocalCluster size")
        self.address, self.local = address, local
        self.name = f"Dask scheduler {address}" if address else f"a Dask LocalCluster of {local} workers"

    def _client(self):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            from archsim.errors import ConfigError

            raise ConfigError("Dask is not installed: pip install 'archsim[dask]' (dask and distributed)") \
                from None
        if self.address is not None:
            try:
                return Client(self.address, timeout="10s"), None
            except OSError as err:
                from archsim.errors import RunError

                raise RunError(f"cannot reach the Dask scheduler {self.address}: {err}") from err
        import logging

        cluster = LocalCluster(n_workers=self.local, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster

    def run(self, tasks: Sequence[Task], graphs: dict[str, Path], done: Done) -> None:
        from distributed import as_completed

        client, cluster = self._client()
        try:
            blobs = {key: client.scatter(path.read_bytes(), broadcast=True, hash=False)
                     for key, path in graphs.items() if any(t.graph_key == key for t in tasks)}
            futures = {client.submit(run_task, task, blobs[task.graph_key], key=f"archsim-point-{task.hash}",
                                     pure=False): task for task in tasks}
            try:
                for future in as_completed(futures):
                    task = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as err:  # noqa: BLE001 - KilledWorker after retries, lost link
                        outcome = failure(err)
                    done(task, outcome)
            except KeyboardInterrupt:
                client.cancel([f for f in futures if not f.done()])
                raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def executor_for(workers: int | None = None, scheduler: str | None = None, dask_local: int | None = None):
    """The executor the command-line options name (at most one of them)."""
    if scheduler is not None:
        return DaskExecutor(address=scheduler)
    if dask_local is not None:
        return DaskExecutor(local=dask_local)
    workers = workers or default_workers()
    return InProcess() if workers == 1 else LocalPool(workers)
