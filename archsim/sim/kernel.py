"""SystemC-style helpers on SimPy: a counting environment, named modules, integer time.

Simulation time is integer picoseconds. Conversions from seconds or byte counts round
*up* (a transfer never finishes early); values that are integers up to float noise
(60e-9 s -> 60000 ps) round to that integer instead of being pushed one ps up.
"""

from __future__ import annotations

import math
from fractions import Fraction

import simpy

PS_PER_S = 10**12


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (reported as SimResult.events)."""

    def __init__(self) -> None:
        super().__init__(initial_time=0)
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


class Module:
    """A named node of the module hierarchy (``top.mpma``), owning its SimPy resources."""

    def __init__(self, env: CountingEnvironment, name: str, parent: Module | None = None) -> None:
        self.env = env
        self.parent = parent
        self.path = name if parent is None else f"{parent.path}.{name}"
        self.children: dict[str, Module] = {}
        # the run's archsim.sim.trace.Tracer, inherited from the parent (Top sets it); None: not tracing
        self.tracer = parent.tracer if parent is not None else None
        if parent is not None:
            parent.children[name] = self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


def seconds_to_ps(seconds: float) -> int:
    """Seconds -> integer ps, rounded up unless the value is an integer up to float noise."""
    exact = seconds * PS_PER_S
    nearest = round(exact)
    if abs(exact - nearest) <= 1e-9 * max(1.0, abs(exact)):
        return int(nearest)
    return math.ceil(exact)


def bytes_per_ps(bandwidth_bytes_per_s: float) -> Fraction:
    """Exact rational bandwidth in bytes per ps (the float is taken at its exact binary value,
    after snapping to an integer B/s when it is one up to float noise)."""
    nearest = round(bandwidth_bytes_per_s)
    if abs(bandwidth_bytes_per_s - nearest) <= 1e-9 * bandwidth_bytes_per_s:
        return Fraction(int(nearest), PS_PER_S)
    return Fraction(bandwidth_bytes_per_s) / PS_PER_S


def ceil_ps(t: Fraction) -> int:
    """Exact rational time -> the integer ps at or after it."""
    return math.ceil(t)
