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
    def __init__(
        self,
        env: CountingEnvironment,
        dram: Dram | BankedDram,
        noc: Interconnect,
        parent: Module | None = None,
    ) -> None:
        super().__init__(env, "dma", parent)
        self.dram = dram
        self.noc = noc
        self.banked = isinstance(dram, BankedDram)
        self.weight_node = self.act_node = (
            None  # the buffers' node names on a routed interconnect (set by Top)
        )
        self.noc_energy_j: dict[str | None, float] = {}  # per layer, routed interconnects only
        # per layer, routed interconnects only: (byte-hops over mesh / ring links, bytes x bus / crossbar
        # traversals), the counts archsim.energy.accounting prices
        self.noc_counts: dict[str | None, tuple[int, int]] = {}

    def transfer(
        self,
        nbytes: int,
        write: bool = False,
        tag: tuple | None = None,
        address: int = 0,
        buffer: str | None = None,
        legs: list | None = None,
    ):
        """SimPy process body: move ``nbytes`` at DRAM byte ``address`` (0 bytes is a no-op) between DRAM and
        the on-chip ``buffer`` (default: the activation buffer; the weight buffer for a tag of weights);
        returns the bytes moved on the DRAM bus (whole bursts). The simple DRAM ignores the address; a bus
        interconnect ignores the buffer (one link), a crossbar / mesh / ring routes to it.

        ``tag`` = (layer, tile, data) names the transfer for the tracer (``top.dma.read`` / ``.write``,
        and each leg's channel track); it does not change the transfer. ``legs``, when given, receives
        the ps at which the DRAM leg ended (a read's last beat left the controller), for stall attribution.
        """
        if nbytes <= 0:
            return 0
        node = buffer or (self.weight_node if tag is not None and tag[2] == "weights" else self.act_node)
        if self.banked:
            return (yield from self._banked(nbytes, write, address, tag, node, legs))
        rounded = self.dram.burst_round(nbytes)
        if self.noc.network is not None:
            return (yield from self._routed(rounded, write, tag, node, legs))
        self.dram.record(rounded, write)
        channels = (self.noc.channel, self.dram.channel) if write else (self.dram.channel, self.noc.channel)
        tracer, requested = self.tracer, self.env.now
        earliest, upstream_end = Fraction(self.env.now), None
        for leg in channels:
            start, upstream_end = leg.reserve(earliest, rounded, upstream_end)
            if tracer is not None:
                tracer.channel(leg.name, start, upstream_end, rounded, write, tag)
            if legs is not None and leg is self.dram.channel:
                legs.append(ceil_ps(upstream_end))
            earliest = start  # the next leg's head follows this leg's head
        yield self.env.timeout(ceil_ps(upstream_end) - self.env.now)
        if tracer is not None:
            tracer.dma(f"{self.path}.{'write' if write else 'read'}", requested, self.env.now, rounded, tag)
        return rounded

    def _routed(self, rounded: int, write: bool, tag: tuple | None, node: str, legs: list | None = None):
        """Simple DRAM over a routed interconnect: a read's route cuts through behind the DRAM leg; a write's
        route runs first and the DRAM leg cuts through behind its arrival at the controller."""
        self.dram.record(rounded, write)
        net, now, tracer, requested = self.noc.network, Fraction(self.env.now), self.tracer, self.env.now
        if write:
            res = net.reserve(now, node, "dram", rounded)
            arrival = res.delivery("dram")
            start, end = self.dram.channel.reserve(arrival.start, rounded, arrival.end)
            dram_leg = (start, end)
        else:
            dram_leg = self.dram.channel.reserve(now, rounded)
            res = net.reserve(now, "dram", node, rounded, upstream=dram_leg)
            end = res.end
        self._charge(tag, net.energy_j(res), res)
        if legs is not None:
            legs.append(ceil_ps(dram_leg[1]))
        if tracer is not None:
            tracer.channel(self.dram.channel.name, dram_leg[0], dram_leg[1], rounded, write, tag)
            tracer.channel(f"{self.noc.path}.route", res.start, res.end, rounded, write, tag)
        yield self.env.timeout(ceil_ps(end) - self.env.now)
        if tracer is not None:
            tracer.dma(f"{self.path}.{'write' if write else 'read'}", requested, self.env.now, rounded, tag)
        return rounded

    def _charge(self, tag: tuple | None, joules: float | None, res) -> None:
        """Per-layer interconnect energy and counts of a routed transfer (byte-hops and crossings)."""
        key = None if tag is None else tag[0]
        self.noc_energy_j[key] = self.noc_energy_j.get(key, 0.0) + (joules or 0.0)
        hops, bus = self.noc_counts.get(key, (0, 0))
        self.noc_counts[key] = (hops + res.nbytes * res.link_hops, bus + res.nbytes * res.bus_crossings)

    def _banked(
        self, nbytes: int, write: bool, address: int, tag: tuple | None, node: str, legs: list | None = None
    ):
        """Banked DRAM: a read is timed by the controller, then cut through the link (its head follows the
        first data beat, its tail cannot pass the last beat plus the link latency); a write crosses the link
        first (buffered at the controller), then is queued at the DRAM (docs/modelling.md, "DRAM, transaction
        level")."""
        moved = self.dram.bursts(address, nbytes) * self.dram.org.burst_bytes
        tracer, requested = self.tracer, self.env.now
        link, net = self.noc.channel, self.noc.network
        if write:
            if net is not None:
                res = net.reserve(Fraction(self.env.now), node, "dram", moved)
                self._charge(tag, net.energy_j(res), res)
                start, end = res.start, res.delivery("dram").end
            else:
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
            if net is not None:
                res = net.reserve(
                    txn.data_start_ps, "dram", node, moved, upstream=(txn.data_start_ps, txn.data_end_ps)
                )
                self._charge(tag, net.energy_j(res), res)
                start, end = res.start, res.end
            else:
                start, end = link.reserve(txn.data_start_ps, moved, txn.data_end_ps)
            if tracer is not None:
                tracer.channel(link.name, start, end, moved, write, tag)
            if legs is not None:
                legs.append(txn.done_ps)
            yield self.env.timeout(max(ceil_ps(end), txn.done_ps) - self.env.now)
        if tracer is not None:  # the DRAM leg: the transaction's data on the bus (all its channels)
            tracer.channel(f"{self.dram.path}.bus", txn.data_start_ps, txn.data_end_ps, moved, write, tag)
            tracer.dma(f"{self.path}.{'write' if write else 'read'}", requested, self.env.now, moved, tag)
        return moved
