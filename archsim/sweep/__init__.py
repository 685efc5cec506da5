"""Design-space sweeps: a sweep YAML (or a mapping) -> every point simulated -> one table.

Public API::

    from archsim import sweep

    table = sweep.run("examples/sweep_b1.yaml", "out/b1", workers=2)   # a pandas DataFrame
    spec = sweep.load_sweep("examples/sweep_b1.yaml")                  # validated, SweepError if not
    points = sweep.expand(spec)                                        # the points, no simulation
    table = sweep.read_table("out/b1")                                 # results.csv of a sweep folder

Modules: :mod:`~archsim.sweep.spec` (the YAML schema), :mod:`~archsim.sweep.expand` (grid, zip,
random), :mod:`~archsim.sweep.derived` (formulas), :mod:`~archsim.sweep.metrics` (columns and
units), :mod:`~archsim.sweep.runner` (plan, resume, graphs, recording),
:mod:`~archsim.sweep.executors` (this process, local pool, Dask), :mod:`~archsim.sweep.worker`
(one point, torch-free), :mod:`~archsim.sweep.store` (the output folder). docs/sweeps.md.
"""

from archsim.sweep.executors import DaskExecutor, InProcess, LocalPool, executor_for
from archsim.sweep.expand import Point, expand
from archsim.sweep.runner import Outcome, execute, plan, run
from archsim.sweep.spec import Block, Derived, RandomAxes, Range, Sweep, SweepError, load_sweep
from archsim.sweep.store import read_table

__all__ = [
    "Block",
    "DaskExecutor",
    "Derived",
    "InProcess",
    "LocalPool",
    "Outcome",
    "Point",
    "RandomAxes",
    "Range",
    "Sweep",
    "SweepError",
    "execute",
    "executor_for",
    "expand",
    "load_sweep",
    "plan",
    "read_table",
    "run",
]
