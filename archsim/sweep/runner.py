"""Running a sweep: plan every point, build each distinct graph once, run the rest, record each.

1. **Plan** (this process, no torch): every point's workload and architecture are loaded with its
   overrides through the normal loaders (:mod:`archsim.overrides`). A point whose values are
   invalid is recorded as failed with the loader's message; the others go on. Each point gets its
   hash: the sha256 of its parameters, the ``values`` switch, archsim's version, the workload's
   identity (names and sha256 of every input file) and the architecture file's sha256.
2. **Resume**: a point whose ``points/<hash>.json`` records a success is not run again (failed
   points are). Editing a workload or architecture file changes the hashes of its points.
3. **Graphs**: points are grouped by graph (the cache key of their workload,
   :mod:`archsim.cache`); each group's graph comes from the graph cache or is built once here, and
   its file is shipped to the workers.
4. **Run** on the executor (:mod:`archsim.sweep.executors`); each finished point is written at
   once (:mod:`archsim.sweep.store`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import archsim
from archsim import overrides as ov
from archsim.sweep.derived import DerivedError, evaluate, names
from archsim.sweep.executors import InProcess, executor_for
from archsim.sweep.expand import Point, expand
from archsim.sweep.metrics import extract, is_metric, unit_of
from archsim.sweep.spec import REFS, Sweep, load_sweep
from archsim.sweep.store import FIXED_COLUMNS, FIXED_UNITS, Store, cell, read_table
from archsim.sweep.worker import FAILED, OK, Task, failure

ORIGIN = "sweep"  # how a sweep's overrides are named in messages: "m2vit.yaml: sweep engines.sat.rows: ..."
PARAM_UNIT = "parameter, as written in the sweep (a quantity carries its unit)"
NO_PROGRESS_ENV = "ARCHSIM_NO_PROGRESS"  # the variable archsim/workload/images.py reads too


@dataclass
class Planned:
    """A point with its loaded inputs (or the error that stopped them) and its hash."""

    point: Point
    hash: str = ""
    workload: Any = None  # archsim.workload.config.Workload
    spec: Any = None  # archsim.arch.spec.ArchSpec
    arch_path: Path | None = None
    arch_overrides: list = field(default_factory=list)
    graph_key: str | None = None
    error: str | None = None


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _workload_ref(sweep: Sweep, ref: str) -> str:
    from archsim import resources

    path = Path(ref).expanduser()
    if resources.looks_like_path(ref) and not path.is_absolute():
        return str(sweep.folder / path)
    return ref


def _as_written(err, point: Point):
    """``err`` naming its file as the point does (``m2vit``), not by where it is on this machine."""
    for ref in (point.params[ov.ARCH], point.params[ov.WORKLOAD]):
        if err.file is not None and Path(err.file).stem == Path(str(ref)).stem:
            return type(err)(str(ref), err.problems)
    return err


def plan(sweep: Sweep, points: list[Point] | None = None) -> list[Planned]:
    """Every point loaded and hashed (no simulation, no torch)."""
    from archsim import cache
    from archsim.arch.loader import resolve_arch
    from archsim.configfile import ConfigFileError
    from archsim.errors import ConfigError

    workloads: dict[str, Any] = {}
    out = []
    for point in points if points is not None else expand(sweep):
        entry = Planned(point)
        sets = [ov.Override(k, v, ORIGIN) for k, v in point.params.items() if k not in REFS]
        entry.arch_overrides, workload_sets = ov.split(sets)
        try:
            ref = point.params[ov.WORKLOAD]
            wl_key = _canonical([ref, [(o.key, o.value) for o in workload_sets]]).decode()
            if wl_key not in workloads:
                workloads[wl_key] = ov.load_workload(_workload_ref(sweep, ref), workload_sets, sweep.search)
            entry.workload = workloads[wl_key]
            entry.arch_path = resolve_arch(point.params[ov.ARCH], base=sweep.folder, search=sweep.search)
            spec = ov.load_arch(entry.arch_path, entry.arch_overrides, sweep.search)
            # messages (and so the table) name the architecture as the sweep does, not by this machine's path
            entry.spec = spec.with_changes(source_file=str(point.params[ov.ARCH]))
            entry.graph_key = cache.cache_key(cache.key_material(entry.workload))
        except ConfigFileError as err:
            entry.error = str(_as_written(err, point))
        except ConfigError as err:
            entry.error = str(err)
        identity = entry.workload.identity() if entry.workload is not None else None
        entry.hash = hashlib.sha256(
            _canonical(
                {
                    "params": point.params,
                    "values": sweep.values,
                    "archsim_version": archsim.__version__,
                    "workload": identity,
                    "arch_sha256": entry.spec.source_sha256 if entry.spec is not None else None,
                }
            )
        ).hexdigest()
        out.append(entry)
    return out


def _matches(column: str, metric: str) -> bool:
    parts, pattern = column.split("."), metric.split(".")
    return len(parts) == len(pattern) and all(p == q or q == "*" for p, q in zip(parts, pattern))


# -- rows ---------------------------------------------------------------------------------------


class Rows:
    """The table's rows by point, computed from each point's record (metrics, derived columns)."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.rows: dict[int, dict] = {}
        self._docs: dict[Path, dict] = {}

    def _arch_data(self, entry: Planned) -> dict:
        from archsim.arch.errors import ArchConfigError
        from archsim.configfile import read_document

        if entry.arch_path not in self._docs:
            self._docs[entry.arch_path] = read_document(entry.arch_path, ArchConfigError).data
        return ov.applied(self._docs[entry.arch_path], entry.arch_overrides)

    def add(self, entry: Planned, record: dict) -> dict:
        point = entry.point
        row = {
            "point": point.index,
            "block": point.block,
            "hash": entry.hash,
            "status": record["status"],
            "error": record.get("error") or "",
        }
        row.update({key: cell(value) for key, value in point.params.items()})
        result = record.get("result")
        if record["status"] == OK and result is not None:
            block = next(b for b in self.sweep.blocks if b.name == point.block)
            variables = names(self._arch_data(entry), entry.workload.identity(), result)
            for name, formula in block.derived.items():
                try:
                    row[name] = evaluate(name, formula.expr, variables)
                except DerivedError as err:
                    row["status"], row["error"] = FAILED, str(err)
            row.update(extract(result, self.sweep.metrics))
        self.rows[point.index] = row
        return row

    def columns(self) -> list[str]:
        params: dict[str, None] = {}
        metrics: dict[str, None] = {}
        derived = self.sweep.derived_names()
        for index in sorted(self.rows):
            row = self.rows[index]
            for key in row:
                if key in FIXED_COLUMNS or key in derived:
                    continue
                if key not in metrics and key not in params:
                    (metrics if is_metric(key) else params)[key] = None
        # metric columns grouped by the metric they expand (engines.*.utilization of every arch together)
        source = {c: next(i for i, m in enumerate(self.sweep.metrics) if _matches(c, m)) for c in metrics}
        return [*FIXED_COLUMNS, *params, *derived, *sorted(metrics, key=lambda c: source[c])]

    def units(self, columns: list[str]) -> dict[str, str]:
        derived = set(self.sweep.derived_names())
        out = {}
        for column in columns:
            if column in FIXED_UNITS:
                out[column] = FIXED_UNITS[column]
            elif column in derived:
                out[column] = self.sweep.derived_unit(column)
            else:
                out[column] = unit_of(column) if is_metric(column) else PARAM_UNIT
        return out

    def in_order(self) -> list[dict]:
        return [self.rows[i] for i in sorted(self.rows)]


# -- running ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a run of a sweep did."""

    folder: Path
    points: int  # in the sweep
    ran: int = 0  # points run now
    skipped: int = 0  # already finished before this run
    failed: list[int] = field(default_factory=list)  # point numbers failed now or before
    left: int = 0  # not run (--limit)

    def summary(self) -> str:
        ok = self.points - len(self.failed) - self.left
        text = (
            f"{self.points} points: {ok} ok, {len(self.failed)} failed, {self.left} not run; "
            f"{self.ran} run now, {self.skipped} finished before"
        )
        if self.failed:
            shown = ", ".join(map(str, self.failed[:10])) + (" ..." if len(self.failed) > 10 else "")
            text += f"\nfailed points: {shown} (why: the error column of {self.folder / 'results.csv'})"
        return text + f"\ntable: {self.folder / 'results.csv'}; full results: {self.folder / 'points'}/"


GraphSource = Callable[[Any], Any]


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def execute(
    sweep: Sweep,
    out: str | Path,
    executor=None,
    *,
    limit: int | None = None,
    progress: bool = False,
    cache: bool = True,
    graphs: GraphSource | None = None,
) -> Outcome:
    """Run every point of ``sweep`` not yet finished in ``out``; see the module docstring.

    ``graphs(workload) -> graph`` replaces the graph cache and the build (tests give small graphs).
    """
    from tqdm import tqdm

    from archsim import flow
    from archsim.cache import describe
    from archsim.graph.io import SUFFIX, save_graph

    executor = executor or InProcess()
    store = Store(out)
    store.copy_sweep(Path(sweep.file).read_bytes() if sweep.file else None)
    planned = plan(sweep)
    rows = Rows(sweep)
    by_hash: dict[str, list[Planned]] = {}
    for entry in planned:
        by_hash.setdefault(entry.hash, []).append(entry)
    todo: list[Planned] = []
    outcome = Outcome(folder=store.folder, points=len(planned))
    for point_hash, entries in by_hash.items():
        record = store.load(point_hash)
        if record is not None and record.get("status") == OK:
            for entry in entries:
                rows.add(entry, record)
            outcome.skipped += len(entries)
        else:
            todo.append(entries[0])
    if limit is not None:
        outcome.left = sum(len(by_hash[e.hash]) for e in todo[limit:])
        todo = todo[:limit]

    def rewrite() -> None:
        columns = rows.columns()
        store.write_table(rows.in_order(), columns, rows.units(columns))

    rewrite()
    # the bar only on a terminal, and not under ARCHSIM_NO_PROGRESS=1 (as calibration's, workload/images.py)
    bar_on = progress and sys.stderr.isatty() and os.environ.get(NO_PROGRESS_ENV, "") != "1"
    bar = tqdm(
        total=len(todo),
        desc=sweep.name,
        unit="point",
        disable=not bar_on,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def done(entry: Planned, result: dict) -> None:
        record = {
            "hash": entry.hash,
            "params": entry.point.params,
            "status": result["status"],
            "error": result.get("error"),
            "archsim_version": archsim.__version__,
            "result": result.get("result"),
        }
        store.save(record)
        for each in by_hash[entry.hash]:
            row = rows.add(each, record)
            if not store.append(row):
                rewrite()
        outcome.ran += len(by_hash[entry.hash])
        bar.update(1)

    tasks_by_hash = {}
    try:
        pending = []
        for entry in todo:
            if entry.error is not None:
                done(entry, {"status": FAILED, "error": entry.error})
            else:
                pending.append(entry)
        groups: dict[str, list[Planned]] = {}
        for entry in pending:
            groups.setdefault(entry.graph_key, []).append(entry)
        with tempfile.TemporaryDirectory(prefix="archsim-sweep-") as folder:
            files, tasks = {}, []
            for i, (key, entries) in enumerate(groups.items(), 1):
                workload = entries[0].workload
                t = time.perf_counter()
                try:
                    graph = graphs(workload) if graphs else flow.workload_graph(workload, cache=cache)
                except Exception as err:  # noqa: BLE001 - a graph that cannot be built fails its points only
                    for entry in entries:
                        done(entry, failure(err))
                    continue
                files[key] = save_graph(graph, Path(folder) / f"{key}{SUFFIX}")
                if progress:
                    bar.write(
                        f"graph {i}/{len(groups)} ({describe(workload)}): ready in "
                        f"{time.perf_counter() - t:.1f} s",
                        file=sys.stderr,
                    )
                meta = flow.workload_meta(workload)
                meta["quantization"] = graph.graph.get("quant_summary", {})
                for entry in entries:
                    task = Task(
                        entry.hash, key, entry.spec, meta, sweep.values, ov.as_text(entry.arch_overrides)
                    )
                    tasks_by_hash[entry.hash] = entry
                    tasks.append(task)
            if tasks:
                executor.run(tasks, files, lambda task, result: done(tasks_by_hash[task.hash], result))
    except KeyboardInterrupt:
        _say(
            f"\ninterrupted: {len(rows.rows)} of {len(planned)} points are recorded in {store.folder}; "
            "run the same command again to go on"
        )
        raise
    finally:
        bar.close()
        rewrite()
    outcome.failed = [i for i, row in sorted(rows.rows.items()) if row["status"] != OK]
    return outcome


def run(
    sweep: Sweep | str | Path | dict,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    dask_local: int | None = None,
    limit: int | None = None,
    progress: bool = False,
    cache: bool = True,
    graphs: GraphSource | None = None,
    search=(),
):
    """Run a sweep (a :class:`Sweep`, a sweep YAML path or a mapping of its fields) into ``out`` and
    return its table as a pandas DataFrame (one row per finished point; ``read_table(out)`` later).

    Executors as on the command line: ``workers`` local processes (default: one per core; 1 runs
    in this process), or Dask (``scheduler`` address or a ``dask_local`` LocalCluster size).
    """
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep, search=search)
    execute(
        sweep,
        out,
        executor_for(workers, scheduler, dask_local),
        limit=limit,
        progress=progress,
        cache=cache,
        graphs=graphs,
    )
    return read_table(out)
