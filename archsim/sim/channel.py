"""A bandwidth channel as an exact reservation table (the DRAM bus, the interconnect link).

Semantics (docs/modelling.md, "DRAM and interconnect"): a transfer asks for the channel at
time ``earliest``; its data occupy the channel from ``start = max(earliest + latency,
free)`` for ``bytes / bandwidth`` ps, served FIFO in request order. The latency is a
pipelined head delay: it overlaps earlier transfers' data time and is paid once per request.
Reservation times are exact rationals; only the event that ends a transfer is rounded
up to an integer ps, so back-to-back transfers add no rounding error.
"""

from __future__ import annotations

from fractions import Fraction


class Channel:
    def __init__(self, name: str, bytes_per_ps: Fraction, latency_ps: int) -> None:
        if bytes_per_ps <= 0:
            raise ValueError(f"{name}: bandwidth must be positive")
        if latency_ps < 0:
            raise ValueError(f"{name}: latency must be >= 0")
        self.name = name
        self.bytes_per_ps = bytes_per_ps
        self.latency_ps = latency_ps
        self.free = Fraction(0)  # when the last reservation releases the data path
        self.data_time = Fraction(0)  # total ps the channel carried data
        self.bytes = 0

    def reserve(
        self, earliest: Fraction, nbytes: int, upstream_end: Fraction | None = None
    ) -> tuple[Fraction, Fraction]:
        """Book ``nbytes``; returns (start, end) of its data on this channel.

        ``upstream_end`` (cut-through from a previous leg): the tail cannot pass this
        channel before it left the previous one plus this channel's latency.
        """
        start = max(earliest + self.latency_ps, self.free)
        end = start + Fraction(nbytes) / self.bytes_per_ps
        if upstream_end is not None:
            end = max(end, upstream_end + self.latency_ps)
        self.free = end
        self.data_time += Fraction(nbytes) / self.bytes_per_ps
        self.bytes += nbytes
        return start, end
