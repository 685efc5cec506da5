"""Where a sweep's points run: this process, a local process pool, or a Dask cluster.

Every executor takes the tasks and the graph file of each graph key, calls ``done(task, outcome)``
in the calling thread as each point finishes (so the caller writes it at once), and on Ctrl-C
stops handing out points, lets the ones in flight finish and report, then raises
``KeyboardInterrupt``.

- :class:`InProcess` (``--workers 1``): no pool, points one after the other.
- :class:`LocalPool` (default, ``--workers N``): ``concurrent.futures.ProcessPoolExecutor`` with
  the *spawn* start method (workers start clean: no torch, no threads inherited from a parent that
  built graphs); each worker loads a graph once from its file. A worker that dies (killed, out of
  memory) breaks the pool: the points that were in flight run again one by one, the others go on in
  a new pool; a point whose worker dies :data:`MAX_ATTEMPTS` times on its own is recorded as failed.
- :class:`DaskExecutor` (``--scheduler tcp://host:port`` or ``--dask-local N``): dask.distributed;
  each graph file's bytes are scattered to every worker once and tasks refer to them, so a remote
  worker needs archsim but no file of the sweep. Dask re-runs the tasks of a lost worker itself.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from archsim.sweep.worker import Task, failure, ignore_interrupts, run_task

Done = Callable[[Task, dict], None]
MAX_ATTEMPTS = 3  # [choice] runs of a point whose worker dies alone before it is recorded as failed
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
    """``function(task, graph_file)`` runs each point (:func:`run_task`; tests give one that dies).

    At most ``workers`` points are in flight at a time, so when a worker dies the points that may
    have killed it are known: they run again one at a time, each in a pool of its own, while the
    points not yet started go on in a new pool; only a point that kills its worker by itself is
    charged an attempt.
    """

    def __init__(self, workers: int, function: Callable[[Task, str], dict] = run_task):
        self.workers = workers
        self.function = function
        self.name = f"{workers} local worker processes"

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(START_METHOD),
            initializer=ignore_interrupts,
        )

    def run(self, tasks: Sequence[Task], graphs: dict[str, Path], done: Done) -> None:
        queue = deque(tasks)
        suspects: deque[Task] = deque()
        attempts: dict[str, int] = {}
        while queue or suspects:
            if suspects:
                task = suspects.popleft()
                attempts[task.hash] = attempts.get(task.hash, 0) + 1
                if not self._alone(task, graphs, done):
                    if attempts[task.hash] < MAX_ATTEMPTS:
                        suspects.append(task)
                    else:
                        done(
                            task,
                            {
                                "status": "failed",
                                "result": None,
                                "error": f"its worker process died each of the {MAX_ATTEMPTS} times it "
                                "ran alone (killed, or out of memory)",
                            },
                        )
            else:
                suspects.extend(self._parallel(queue, graphs, done))

    def _submit(self, pool: ProcessPoolExecutor, task: Task, graphs: dict[str, Path]):
        return pool.submit(self.function, task, str(graphs[task.graph_key]))

    def _parallel(self, queue: deque, graphs: dict[str, Path], done: Done) -> list[Task]:
        """Run the queue on a pool; the points in flight when a worker died (the queue keeps the rest)."""
        pool = self._pool(min(self.workers, len(queue)))
        flight: dict = {}
        try:
            while queue or flight:
                while queue and len(flight) < self.workers:
                    task = queue.popleft()
                    try:
                        flight[self._submit(pool, task, graphs)] = task
                    except BrokenProcessPool:  # a worker died before its future said so
                        queue.appendleft(task)  # never ran
                        return list(flight.values())
                finished, _ = wait(list(flight), return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        return list(flight.values())
                    except Exception as err:  # noqa: BLE001 - a task that could not be sent or received
                        outcome = failure(err)
                    done(flight.pop(future), outcome)
            return []
        except KeyboardInterrupt:
            self._finish_running(flight, done)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _alone(self, task: Task, graphs: dict[str, Path], done: Done) -> bool:
        """Run one point in a pool of its own; False when its worker died."""
        pool = self._pool(1)
        future = self._submit(pool, task, graphs)
        try:
            outcome = future.result()
        except BrokenProcessPool:
            return False
        except KeyboardInterrupt:
            self._finish_running({future: task}, done)
            raise
        except Exception as err:  # noqa: BLE001 - a task that could not be sent or received
            outcome = failure(err)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        done(task, outcome)
        return True

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

            raise ConfigError(
                "Dask is not installed: pip install 'archsim[dask]' (dask and distributed)"
            ) from None
        if self.address is not None:
            try:
                return Client(self.address, timeout="10s"), None
            except OSError as err:
                from archsim.errors import RunError

                raise RunError(f"cannot reach the Dask scheduler {self.address}: {err}") from err
        import logging

        cluster = LocalCluster(
            n_workers=self.local,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster

    def run(self, tasks: Sequence[Task], graphs: dict[str, Path], done: Done) -> None:
        from distributed import as_completed

        client, cluster = self._client()
        try:
            blobs = {
                key: client.scatter(path.read_bytes(), broadcast=True, hash=False)
                for key, path in graphs.items()
                if any(t.graph_key == key for t in tasks)
            }
            futures = {
                client.submit(
                    run_task, task, blobs[task.graph_key], key=f"archsim-point-{task.hash}", pure=False
                ): task
                for task in tasks
            }
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
