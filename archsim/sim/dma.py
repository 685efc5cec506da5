"""The DMA (``top.dma``): moves bytes DRAM <-> on-chip buffers across the interconnect.

A read reserves the DRAM channel, then the interconnect cut-through (the link can start
once the DRAM data start, plus its latency, and cannot finish before the DRAM data end
plus its latency); a write goes the other way. Requests are rounded to DRAM bursts.
"""

from __future__ import annotations

from fractions import Fraction

from archsim.sim.dram import Dram
from archsim.sim.dram_banked import BankedDram
from archsim.sim.kernel import CountingEnvironment, Module, ceil_ps
from archsim.sim.noc import Interconnect


class Dma(Module):
    def __init__(self, env: CountingEnvironment, dram: Dram | BankedDram, noc: Interconnect,
                 parent: Module | None = None) -> None:
        super().__init__(env, "dma", parent)
        self.dram = dram
        self.noc = noc
        self.banked = isinstance(dram, BankedDram)

    def transfer(self, nbytes: int, write: bool = False, tag: tuple | None = None, address: int = 0):
        """SimPy process body: move ``nbytes`` at DRAM byte ``address`` (0 bytes is a no-op); returns the bytes
        moved on the DRAM bus (whole bursts). The simple DRAM ignores the address.

        ``tag`` = (layer, tile, data) names the transfer for the tracer (``top.dma.read`` / ``.write``,
        and each leg's channel track); it does not change the transfer.
        """
        if nbytes <= 0:
            return 0
        if self.banked:
            return (yield from self._banked(nbytes, write, address, tag))
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

    def _banked(self, nbytes: int, write: bool, address: int, tag: tuple | None):
        """Banked DRAM: a read is timed by the controller, then cut through the link (its head follows the first
        data beat, its tail cannot pass the last beat plus the link latency); a write crosses the link first
        (buffered at the controller), then is queued at the DRAM (docs/modelling.md, "DRAM, transaction level")."""
        moved = self.dram.bursts(address, nbytes) * self.dram.org.burst_bytes
        tracer, requested = self.tracer, self.env.now
        link = self.noc.channel
        if write:
            start, end = link.reserve(Fraction(self.env.now), moved)
            if tracer is not None:
                tracer.channel(link.name, start, end, moved, write, tag)
            yield self.env.timeout(ceil_ps(end) - self.env.now)
            txn = self.dram.submit(address, nbytes, True)
            if txn.done_ps is None:
                yield txn.scheduled
            if txn.done_ps > self.env.now:
                yield self.env.timeout(txn.done_ps - self.env.now)
        else:
            txn = self.dram.submit(address, nbytes, False)
            if txn.done_ps is None:
                yield txn.scheduled
            start, end = link.reserve(txn.data_start_ps, moved, txn.data_end_ps)
            if tracer is not None:
                tracer.channel(link.name, start, end, moved, write, tag)
            yield self.env.timeout(max(ceil_ps(end), txn.done_ps) - self.env.now)
        if tracer is not None:  # the DRAM leg: the transaction's data on the bus (all its channels)
            tracer.channel(f"{self.dram.path}.bus", txn.data_start_ps, txn.data_end_ps, moved, write, tag)
            tracer.dma(f"{self.path}.{'write' if write else 'read'}", requested, self.env.now, moved, tag)
        return moved
