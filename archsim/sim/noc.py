"""The interconnect (``top.noc``): one bandwidth-shared link (``top.noc.link0``) between DRAM and the
buffers."""

from __future__ import annotations

from fractions import Fraction

from archsim.arch.spec import InterconnectSpec
from archsim.sim.channel import Channel
from archsim.sim.interconnect import Network
from archsim.sim.kernel import CountingEnvironment, Module


class Interconnect(Module):
    def __init__(
        self,
        env: CountingEnvironment,
        spec: InterconnectSpec,
        clock_period_ps: int,
        parent: Module | None = None,
    ) -> None:
        super().__init__(env, "noc", parent)
        if spec.bandwidth_bytes_per_cycle <= 0:
            raise ValueError(f"{spec.name}: bandwidth_bytes_per_cycle must be positive")
        self.spec = spec
        self.channel = Channel(
            f"{self.path}.link0",
            Fraction(spec.bandwidth_bytes_per_cycle, clock_period_ps),
            spec.latency_cycles * clock_period_ps,
        )
        # crossbar, mesh, ring: the topology's reservation tables (a bus is the one link above, exactly)
        self.network = None if spec.topology == "bus" else Network(spec.config(), clock_period_ps)
