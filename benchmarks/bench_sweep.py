"""Wall time of a whole sweep: the example over B1 on each executor, graphs cached.

    .venv/bin/python benchmarks/bench_sweep.py [examples/sweep_b1.yaml] [--cold]
        [--executors "--workers 1" "--workers 2" "--dask-local 2"]

Each measurement is the whole `archsim sweep SWEEP --out FRESH_DIR --no-progress` process (imports,
planning, graph files, every point, the table), into a new output folder so nothing is resumed.
The graph cache is a folder of this benchmark (ARCHSIM_CACHE_DIR): it is filled first by a run
of one point (timed and reported as the cold start when --cold clears it first), so the figures
are those of a sweep whose workloads were built before; the builds themselves are the cold figure.
Prints one line per executor; figures go in notes, not in assertions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHSIM = [sys.executable, "-m", "archsim.cli"]


def timed(argv: list[str], env: dict) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    if done.returncode not in (0, 1):  # 1: some point failed, still a finished sweep
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("sweep", nargs="?", default=str(REPO / "examples" / "sweep_b1.yaml"))
    parser.add_argument("--cold", action="store_true", help="clear the benchmark's graph cache first")
    parser.add_argument("--executors", nargs="+", default=["--workers 1", "--workers 2", "--dask-local 2"])
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "archsim-bench-cache"))
    args = parser.parse_args()

    env = {**os.environ, "ARCHSIM_CACHE_DIR": args.cache}
    if args.cold:
        shutil.rmtree(args.cache, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="archsim-bench-sweep-") as root:
        warm = timed(
            [
                *ARCHSIM,
                "sweep",
                args.sweep,
                "--out",
                f"{root}/warm",
                "--no-progress",
                "--workers",
                "1",
                "--limit",
                "1",
            ],
            env,
        )
        print(f"first point, graphs {'built' if args.cold else 'from the cache or built'}: {warm:.1f} s")
        for i, option in enumerate(args.executors):
            elapsed = timed(
                [*ARCHSIM, "sweep", args.sweep, "--out", f"{root}/run{i}", "--no-progress", *option.split()],
                env,
            )
            rows = sum(1 for _ in open(f"{root}/run{i}/results.csv")) - 1
            print(f"{option:>16}: {elapsed:6.1f} s for {rows} points ({elapsed / rows:.2f} s per point)")


if __name__ == "__main__":
    main()
