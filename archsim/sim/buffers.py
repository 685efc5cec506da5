"""On-chip buffers (``top.weight_buffer``, ``top.act_buffer``).

The weight buffer is a simpy.Container of bytes: a tile's weights take space before
their DMA starts and give it back when the last tile using them retires, so a layer
waits when concurrent layers fill the buffer. The activation buffer's capacity is used by
the static residency plan (archsim.sim.plan); its traffic is counted for energy.
"""

from __future__ import annotations

import simpy

from archsim.arch.spec import BufferSpec
from archsim.sim.kernel import CountingEnvironment, Module


class Buffer(Module):
    def __init__(self, env: CountingEnvironment, spec: BufferSpec, parent: Module | None = None) -> None:
        super().__init__(env, spec.name, parent)
        if spec.capacity_bytes <= 0:
            raise ValueError(f"buffer {spec.name}: capacity must be positive")
        self.spec = spec
        self.space = simpy.Container(env, capacity=spec.capacity_bytes, init=spec.capacity_bytes)
