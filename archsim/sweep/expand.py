"""The points of a sweep: grid, zip and seeded random expansion of each block.

A block's points are every combination of its ``grid`` lists (the first key varies slowest),
times its ``zip`` rows (the i-th values of every list together), times its ``random`` draws; an
absent part contributes one empty combination. Each point's parameters are, in this order: the
base ``workload`` and ``arch``, the sweep's ``set``, the block's ``set``, then the block's axes;
a later entry of the same key wins.

Random draws use Python's ``random.Random(seed).random()``, whose sequence Python guarantees for
a given seed across versions and machines (numpy's Generator streams carry no such promise):
a list axis takes ``values[floor(u * len)]``, a range ``low + u * (high - low)`` (in log space for
``scale: log``), rounded to an integer when asked, else to :data:`RANGE_DIGITS` significant
digits, and written with its ``unit`` when it has one.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from archsim.overrides import ARCH, WORKLOAD
from archsim.sweep.spec import Block, RandomAxes, Range, Sweep

RANGE_DIGITS = 6  # [choice] significant digits of a drawn real value: readable, far finer than any knob


@dataclass(frozen=True)
class Point:
    """One point: its index in the sweep, its block and its parameters (key -> value)."""

    index: int
    block: str
    params: dict[str, Any]


def _grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _zip(columns: dict[str, list]) -> list[dict[str, Any]]:
    if not columns:
        return [{}]
    keys = list(columns)
    return [dict(zip(keys, row)) for row in zip(*(columns[k] for k in keys))]


def draw(axis: list | Range, u: float) -> Any:
    """The value of ``axis`` for the uniform number ``u`` in [0, 1)."""
    if isinstance(axis, list):
        return axis[min(int(u * len(axis)), len(axis) - 1)]
    if axis.scale == "log":
        x = math.exp(math.log(axis.low) + u * (math.log(axis.high) - math.log(axis.low)))
    else:
        x = axis.low + u * (axis.high - axis.low)
    x = min(max(x, axis.low), axis.high)
    value: int | float = round(x) if axis.integer else float(f"{x:.{RANGE_DIGITS}g}")
    return f"{value} {axis.unit}" if axis.unit else value


def _random(spec: RandomAxes | None) -> list[dict[str, Any]]:
    if spec is None:
        return [{}]
    rng = random.Random(spec.seed)
    return [{key: draw(axis, rng.random()) for key, axis in spec.axes.items()} for _ in range(spec.points)]


def block_points(block: Block) -> list[dict[str, Any]]:
    """The axis values of each point of ``block`` (without the base and fixed parameters)."""
    return [
        {**g, **z, **r} for g in _grid(block.grid) for z in _zip(block.zip) for r in _random(block.random)
    ]


def expand(sweep: Sweep) -> list[Point]:
    """Every point of ``sweep``, numbered from 0 in block order."""
    points = []
    for block in sweep.blocks:
        for axes in block_points(block):
            params = {WORKLOAD: sweep.workload, ARCH: sweep.arch, **sweep.fixed, **block.fixed, **axes}
            points.append(Point(len(points), block.name, params))
    return points


def axis_keys(sweep: Sweep) -> list[str]:
    """The keys the sweep varies (grid, zip and random axes of every block), in order of appearance."""
    keys: dict[str, None] = {}
    for block in sweep.blocks:
        keys.update(dict.fromkeys(block.grid))
        keys.update(dict.fromkeys(block.zip))
        if block.random is not None:
            keys.update(dict.fromkeys(block.random.axes))
    return list(keys)
