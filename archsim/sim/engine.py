"""A compute engine (``top.mpma``, ``top.sat``, ``top.vector``): one tile at a time.

A tile holds the engine for max(its closed-form time, the time its bytes need on the engine ports of the
buffers it reads and writes); the ports are shared with the other engines (archsim.sim.buffers).

Capacity-1 PriorityResource: waiting tiles are served by their layer's topological index
(lower first), FIFO among equals, so contention resolves deterministically.
"""

from __future__ import annotations

from fractions import Fraction

import simpy

from archsim.arch.spec import EngineSpec
from archsim.sim.kernel import CountingEnvironment, Module, ceil_ps


class Engine(Module):
    def __init__(self, env: CountingEnvironment, spec: EngineSpec, parent: Module | None = None) -> None:
        super().__init__(env, spec.name, parent)
        if spec.rows <= 0 or not spec.modes or any(m.lanes <= 0 for m in spec.modes):
            raise ValueError(f"engine {spec.name}: rows and every mode's lanes must be positive")
        self.spec = spec
        self.resource = simpy.PriorityResource(env, capacity=1)
        self.busy_ps = 0  # computing (closed-form tile times)
        self.held_ps = 0  # held: computing, or waiting for a buffer port
        self.ops = 0

    def run_tile(self, priority: int, duration_ps: int, ops: int, port_use=()):
        """SimPy process body: hold the engine for one tile: its closed-form time, or longer when the buffer
        ports it reads and writes (``port_use``: (Buffer, bytes) pairs, reserved as the tile starts) are still
        busy; returns (grant, compute end, release) in ps."""
        with self.resource.request(priority=priority) as grant:
            yield grant
            start = self.env.now
            hold = duration_ps
            for buffer, nbytes in port_use:
                _, end = buffer.port.reserve(Fraction(start), nbytes)
                hold = max(hold, ceil_ps(end) - start)
            yield self.env.timeout(hold)
        self.busy_ps += duration_ps
        self.held_ps += hold
        self.ops += ops
        return start, start + duration_ps, start + hold
