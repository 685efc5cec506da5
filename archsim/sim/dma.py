"""The DMA (``top.dma``): moves bytes DRAM <-> on-chip buffers across the interconnect.

A read reserves the DRAM channel, then the interconnect cut-through (the link can start
once the DRAM data start, plus its latency, and cannot finish before the DRAM data end
plus its latency); a write goes the other way. Requests are rounded to DRAM bursts.
"""

from __future__ import annotations

from fractions import Fraction

from archsim.sim.dram import Dram
from archsim.sim.kernel import CountingEnvironment, Module, ceil_ps
from archsim.sim.noc import Interconnect


class Dma(Module):
    def __init__(self, env: CountingEnvironment, dram: Dram, noc: Interconnect, parent: Module | None = None) -> None:
        super().__init__(env, "dma", parent)
        self.dram = dram
        self.noc = noc

    def transfer(self, nbytes: int, write: bool = False, tag: tuple | None = None):
        """SimPy process body: move ``nbytes`` (0 is a no-op); returns the burst-rounded bytes.

        ``tag`` = (layer, tile, data) names the transfer for the tracer (``top.dma.read`` / ``.write``,
        and each leg's channel track); it does not change the transfer.
        """
        if nbytes <= 0:
            return 0
        rounded = self.dram.burst_round(nbytes)
        self.dram.record(rounded, write)
        legs = (self.noc.channel, self.dram.channel) if write else (self.dram.channel, self.noc.channel)
        tracer, requested = self.tracer, self.env.now
        earliest, upstream_end = Fraction(self.env.now), None
        for leg in legs:
            start, upstream_end = leg.reserve(earliest, rounded, upstream_end)
            if tracer is not None:
                tracer.channel(leg.name, start, upstream_end, rounded, write, tag)
            earliest = start  # the next leg's head follows this leg's head
        yield self.env.timeout(ceil_ps(upstream_end) - self.env.now)
        if tracer is not None:
            tracer.dma(f"{self.path}.{'write' if write else 'read'}", requested, self.env.now, rounded, tag)
        return rounded
