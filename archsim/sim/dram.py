"""The DRAM: one shared channel (``top.dram``, its data bus ``top.dram.ch0``); transfers rounded up to
whole bursts."""

from __future__ import annotations

import math
from fractions import Fraction

from archsim.arch.spec import DramSpec
from archsim.sim.channel import Channel
from archsim.sim.kernel import CountingEnvironment, Module, bytes_per_ps, ceil_ps, seconds_to_ps


class Dram(Module):
    def __init__(self, env: CountingEnvironment, spec: DramSpec, parent: Module | None = None) -> None:
        super().__init__(env, "dram", parent)
        if spec.burst_bytes <= 0:
            raise ValueError(f"{spec.name}: burst_bytes must be positive")
        self.spec = spec
        self.latency_ps = seconds_to_ps(spec.latency_s)
        self.channel = Channel(
            f"{self.path}.ch0", bytes_per_ps(spec.peak_bandwidth_bytes_per_s), self.latency_ps
        )
        self.read_bytes = 0
        self.write_bytes = 0

    def burst_round(self, nbytes: int) -> int:
        return math.ceil(nbytes / self.spec.burst_bytes) * self.spec.burst_bytes

    def record(self, nbytes: int, write: bool) -> None:
        if write:
            self.write_bytes += nbytes
        else:
            self.read_bytes += nbytes

    def transfer(self, nbytes: int, write: bool = False):
        """SimPy process body: one DRAM-only transfer (no interconnect); returns bytes moved."""
        rounded = self.burst_round(nbytes)
        self.record(rounded, write)
        _, end = self.channel.reserve(Fraction(self.env.now), rounded)
        yield self.env.timeout(ceil_ps(end) - self.env.now)
        return rounded
