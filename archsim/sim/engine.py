"""A compute engine (``top.mpma``, ``top.sat``, ``top.vector``): one tile at a time.

Capacity-1 PriorityResource: waiting tiles are served by their layer's topological index
(lower first), FIFO among equals, so contention resolves deterministically.
"""

from __future__ import annotations

import simpy

from archsim.arch.spec import EngineSpec
from archsim.sim.kernel import CountingEnvironment, Module


class Engine(Module):
    def __init__(self, env: CountingEnvironment, spec: EngineSpec, parent: Module | None = None) -> None:
        super().__init__(env, spec.name, parent)
        if spec.rows <= 0 or not spec.modes or any(m.lanes <= 0 for m in spec.modes):
            raise ValueError(f"engine {spec.name}: rows and every mode's lanes must be positive")
        self.spec = spec
        self.resource = simpy.PriorityResource(env, capacity=1)
        self.busy_ps = 0
        self.ops = 0

    def run_tile(self, priority: int, duration_ps: int, ops: int):
        """SimPy process body: hold the engine for one tile's closed-form time."""
        with self.resource.request(priority=priority) as grant:
            yield grant
            yield self.env.timeout(duration_ps)
        self.busy_ps += duration_ps
        self.ops += ops
