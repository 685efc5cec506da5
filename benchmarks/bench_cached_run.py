"""Whole-process wall time of a cached `archsim run`, where torch cannot be imported.

    .venv/bin/python benchmarks/bench_cached_run.py [efficientvit_b1] [arch_configs/m2vit.yaml] [--repeat 5]

Fills the graph cache first (a normal run, not timed), then times `archsim run WORKLOAD ARCH` with
and without the baseline and with and without values (--no-functional), each --repeat times as a
new process with torch blocked (an import of torch fails the run), and prints the median and the
--timing breakdown of the last run. Figures go in notes, not in assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked by benchmarks/bench_cached_run.py")
sys.meta_path.insert(0, NoTorch())
from archsim.cli import main
sys.exit(main(sys.argv[1:]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("workload", nargs="?", default="efficientvit_b1")
    parser.add_argument("arch", nargs="?", default=str(REPO / "arch_configs" / "m2vit.yaml"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "archsim-bench-cache"))
    args = parser.parse_args()
    env = {**os.environ, "ARCHSIM_CACHE_DIR": args.cache}
    base = [args.workload, args.arch, "--top", "1"]
    subprocess.run(
        [sys.executable, "-m", "archsim.cli", "run", *base], env=env, check=True, capture_output=True
    )  # fills the cache (both graphs of a run with its baseline)
    for extra in (["--no-baseline", "--no-functional"], ["--no-functional"], ["--no-baseline"], []):
        times, timing = [], ""
        for _ in range(args.repeat):
            t = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", NO_TORCH, "run", *base, *extra, "--timing"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            times.append(time.perf_counter() - t)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            timing = done.stderr.strip().splitlines()[-1]
        label = " ".join(extra) or "(baseline, values)"
        print(f"{label:>32}: median {statistics.median(times):.2f} s, min {min(times):.2f} s  [{timing}]")


if __name__ == "__main__":
    main()
