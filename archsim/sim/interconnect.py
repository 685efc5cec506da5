"""Interconnect topologies as exact reservation tables: bus, crossbar, 2-D mesh and ring.

Semantics (docs/modelling.md, "Interconnect topologies (archsim/sim/interconnect.py)"); times are
exact rational ps, bandwidth is bytes per cycle at the accelerator clock, latency whole cycles:

- **Nodes** are named endpoints (``dram``, each buffer, each engine) placed at a *position*:
  nothing on a bus, a port index on a crossbar, ``(row, col)`` on a mesh, a router index on a ring.
  Several nodes may share a mesh or ring router (each has its own local port); a crossbar port
  holds one node.
- **Resources.** Every transfer reserves a tree of resources, each a FIFO reservation table (like
  :class:`archsim.sim.channel.Channel`): its *latency* ``lam`` is the pipelined head delay paid
  before it, its bandwidth is the link bandwidth ``beta = B / period`` (bytes/ps), the same for all.

  | topology | resources of a unicast src -> dst, in order | lam |
  |---|---|---|
  | bus | ``bus`` (one shared medium) | t_hop |
  | crossbar | ``src.out`` (src's output port), ``dst.in`` (dst's input port) | t_hop, 0 |
  | mesh, ring | ``src.out`` (injection), the links of the route, ``dst.in`` (ejection) | 0, t_hop each, 0 |

  ``t_hop`` = hop latency cycles x period (router + link). A route's *hops* = the t_hop stages it
  pays: 1 on a bus or crossbar, its link count on a mesh or ring (Manhattan distance; XY routing:
  along the row to the destination column first, then along the column) or ring (the shorter way
  round; a tie goes clockwise, i -> i+1). Two nodes on one router are 0 hops apart.
- **Multicast** (one source, k destinations): the union of the unicast routes, a tree (XY and
  ring routes from one source never rejoin); each tree resource is reserved and counted once, so a
  link shared by several destinations carries the bytes once. A bus is one broadcast.
- **Timing (wormhole, lockstep).** With ``off_k`` = the sum of ``lam`` from the root to resource k
  (inclusive), ``t0 = max(earliest, upstream start)`` and ``D = nbytes / beta``:

  * head: ``s_k = max(s_parent + lam_k, free_k)`` (root: ``t0 + lam_root``), i.e. the head advances
    one hop latency per hop and waits where a resource is still held;
  * body: it leaves the source at ``T0 = max_k (s_k - off_k)``, once every resource of the tree has
    taken the head, and moves through the tree in lockstep, serialised at ``beta``;
  * tail: ``T_end = max(T0 + D, upstream end)``; resource k carries data until ``e_k = T_end + off_k``
    and is held over ``[s_k, e_k]``; then ``free_k = e_k``.

  So a stalled head keeps every resource behind it (and, in a multicast, every sibling branch)
  reserved until the tail has passed, as a wormhole with flit-sized buffers does; nothing is
  buffered in routers. On an idle network a destination d receives data over
  ``[t0 + hops_d * t_hop, t0 + hops_d * t_hop + D]``; with an upstream leg (cut-through) its end is
  ``hops_d * t_hop + max(t0 + D, upstream end)``. Reservations are made in call order: a later
  call never takes an earlier gap (the Channel rule), which keeps every result deterministic.
  A bus reproduces Channel exactly (same start, end and free time).
- **Energy** (counts recorded, priced by :func:`energy_j`): ``byte_hops`` = bytes x mesh/ring links
  of the tree, ``bus_bytes`` = bytes x 1 on a bus, bytes x k (one crossbar traversal per
  destination port) on a crossbar. E = byte_hops x E_hop + bus_bytes x E_bus; a missing coefficient
  for a non-zero count gives ``None``, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from archsim.arch.interconnect import (  # noqa: F401  (the configuration, re-exported for the model's callers)
    ENERGY_PER_BYTE_AXI_J,
    ENERGY_PER_BYTE_HOP_28NM_J,
    HOP_LATENCY_BYPASS_CYCLES,
    HOP_LATENCY_CONVENTIONAL_CYCLES,
    PRESETS,
    PS_PER_S,
    TOPOLOGIES,
    InterconnectConfig,
    InterconnectConfigError,
    InterconnectError,
    InterconnectPreset,
    _is_int,
    _position,
)


@dataclass(frozen=True)
class Delivery:
    """What one destination receives: its hop count and the data start / end there (exact ps)."""

    node: str
    hops: int
    start: Fraction
    end: Fraction


@dataclass(frozen=True)
class Reservation:
    """One reserved transfer (unicast or multicast): deliveries in the order the destinations were given."""

    src: str
    nbytes: int
    deliveries: tuple[Delivery, ...]
    link_hops: int  # mesh / ring links in the tree, each once
    bus_crossings: int  # 1 on a bus, one per destination port on a crossbar, 0 on a mesh / ring
    segments: tuple[tuple[str, Fraction, Fraction], ...]  # (resource, held from, held until), tree order

    @property
    def dsts(self) -> tuple[str, ...]:
        return tuple(d.node for d in self.deliveries)

    @property
    def start(self) -> Fraction:
        """The earliest data start over the destinations."""
        return min(d.start for d in self.deliveries)

    @property
    def end(self) -> Fraction:
        """When the last destination has all the data."""
        return max(d.end for d in self.deliveries)

    @property
    def byte_hops(self) -> int:
        return self.nbytes * self.link_hops

    @property
    def bus_bytes(self) -> int:
        return self.nbytes * self.bus_crossings

    def delivery(self, node: str) -> Delivery:
        for d in self.deliveries:
            if d.node == node:
                return d
        raise InterconnectError(f"{node!r} is not a destination of this transfer ({', '.join(self.dsts)})")


@dataclass(frozen=True)
class LinkStats:
    """One resource's totals: bytes carried, transfers, data time (bytes / bandwidth) and held time, ps."""

    name: str
    kind: str  # "port", "link" or "bus"
    bytes: int
    transfers: int
    busy_ps: Fraction  # time carrying data: bytes / bandwidth
    held_ps: Fraction  # time reserved, including a head waiting downstream or a slower upstream leg

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "bytes": self.bytes,
            "transfers": self.transfers,
            "busy_s": float(self.busy_ps) / PS_PER_S,
            "held_s": float(self.held_ps) / PS_PER_S,
        }


def energy_j(config: InterconnectConfig, byte_hops: int, bus_bytes: int) -> float | None:
    """byte_hops x E_hop + bus_bytes x E_bus (J); ``None`` when a non-zero count has no coefficient."""
    total = 0.0
    terms = ((byte_hops, config.energy_per_byte_hop_j), (bus_bytes, config.energy_per_byte_bus_j))
    for count, coefficient in terms:
        if count:
            if coefficient is None:
                return None
            total += count * coefficient
    return total


@dataclass(frozen=True)
class _Tree:
    entries: tuple[tuple[int, int, int, int], ...]  # (resource, parent position or -1, lam ps, offset ps)
    leaves: tuple[int, ...]  # tree position of each destination's last resource
    hops: tuple[int, ...]
    link_hops: int
    bus_crossings: int


class Network:
    """The reservation tables of one interconnect; see the module docstring for the semantics."""

    def __init__(self, config: InterconnectConfig, clock_period_ps: int) -> None:
        problems = config.problems()
        if not _is_int(clock_period_ps) or clock_period_ps <= 0:
            problems.append(("clock_period_ps", f"{clock_period_ps!r} must be a positive int (ps)"))
        if problems:
            raise InterconnectConfigError(problems)
        self.config = config
        self.clock_period_ps = clock_period_ps
        self.bytes_per_ps = Fraction(config.link_bandwidth_bytes_per_cycle) / clock_period_ps
        self.hop_ps = config.hop_latency_cycles * clock_period_ps
        self.positions = dict(config.nodes)
        self._names: list[str] = []
        self._kinds: list[str] = []
        self._lam: list[int] = []
        self._index: dict[str, int] = {}
        self._build()
        n = len(self._names)
        self._free: list[Fraction] = [Fraction(0)] * n
        self._bytes = [0] * n
        self._transfers = [0] * n
        self._held: list[Fraction] = [Fraction(0)] * n
        self._trees: dict[tuple[str, tuple[str, ...]], _Tree] = {}
        self.transfers = 0
        self.bytes = 0  # payload bytes injected (once per transfer, multicast included)
        self.byte_hops = 0
        self.bus_bytes = 0

    # ---- construction -------------------------------------------------------------------
    def _add(self, name: str, kind: str, lam: int) -> None:
        self._index[name] = len(self._names)
        self._names.append(name)
        self._kinds.append(kind)
        self._lam.append(lam)

    def _build(self) -> None:
        topo, hop = self.config.topology, self.hop_ps
        if topo == "bus":
            self._add("bus", "bus", hop)
            return
        for name in self.positions:  # sorted by name (InterconnectConfig)
            self._add(f"{name}.out", "port", hop if topo == "crossbar" else 0)
            self._add(f"{name}.in", "port", 0)
        if topo == "mesh":
            rows, cols = self.config.shape
            for r in range(rows):
                for c in range(cols):
                    # east, west, south, north
                    for nr, nc in ((r, c + 1), (r, c - 1), (r + 1, c), (r - 1, c)):
                        if 0 <= nr < rows and 0 <= nc < cols:
                            self._add(_mesh_link((r, c), (nr, nc)), "link", hop)
        elif topo == "ring":
            (n,) = self.config.shape
            for i in range(n):
                self._add(f"{i}->{(i + 1) % n}", "link", hop)  # clockwise
                self._add(f"{i}->{(i - 1) % n}", "link", hop)  # counter-clockwise

    # ---- routing ------------------------------------------------------------------------
    def _node(self, name: str) -> tuple:
        try:
            return self.positions[name]
        except (KeyError, TypeError):
            known = ", ".join(self.positions)
            raise InterconnectError(f"unknown node {name!r}: the interconnect's nodes are {known}") from None

    def _links(self, a: tuple, b: tuple) -> list[str]:
        """Links from router a to b: XY on a mesh, the shorter way on a ring, none on a bus or crossbar."""
        topo = self.config.topology
        if topo == "mesh":
            (r, c), (r1, c1) = a, b
            out = []
            while c != c1:
                nc = c + (1 if c1 > c else -1)
                out.append(_mesh_link((r, c), (r, nc)))
                c = nc
            while r != r1:
                nr = r + (1 if r1 > r else -1)
                out.append(_mesh_link((r, c), (nr, c)))
                r = nr
            return out
        if topo == "ring":
            (n,), (i,), (j,) = self.config.shape, a, b
            step = 1 if (j - i) % n <= (i - j) % n else -1  # a tie goes clockwise [choice]
            out = []
            while i != j:
                k = (i + step) % n
                out.append(f"{i}->{k}")
                i = k
            return out
        return []

    def route(self, src: str, dst: str) -> tuple[str, ...]:
        """The resources a unicast src -> dst reserves, in order."""
        tree = self._tree(src, (dst,))
        return tuple(self._names[entry[0]] for entry in tree.entries)

    def hops(self, src: str, dst: str) -> int:
        """Hop-latency stages of the unicast route: 1 on a bus or crossbar, its links on a mesh or ring."""
        return self._tree(src, (dst,)).hops[0]

    def _tree(self, src: str, dsts: tuple[str, ...]) -> _Tree:
        key = (src, dsts)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        source = self._node(src)
        if not dsts:
            raise InterconnectError(f"a transfer from {src!r} needs at least one destination")
        for i, d in enumerate(dsts):
            self._node(d)
            if d == src:
                raise InterconnectError(f"node {src!r} is both the source and a destination")
            if d in dsts[:i]:
                raise InterconnectError(f"destination {d!r} is listed more than once")
        entries: list[list[int]] = []
        where: dict[int, int] = {}

        def add(name: str, parent: int) -> int:
            r = self._index[name]
            if r in where:
                assert entries[where[r]][1] == parent, "routes from one source form a tree"
                return where[r]
            lam = self._lam[r]
            off = lam + (entries[parent][3] if parent >= 0 else 0)
            where[r] = len(entries)
            entries.append([r, parent, lam, off])
            return where[r]

        topo = self.config.topology
        leaves, hops = [], []
        if topo == "bus":
            root = add("bus", -1)
            leaves, hops = [root] * len(dsts), [1] * len(dsts)
        else:
            root = add(f"{src}.out", -1)
            for d in dsts:
                p = root
                links = self._links(source, self.positions[d])
                for link in links:
                    p = add(link, p)
                leaves.append(add(f"{d}.in", p))
                hops.append(1 if topo == "crossbar" else len(links))
        link_hops = sum(1 for e in entries if self._kinds[e[0]] == "link")
        crossings = {"bus": 1, "crossbar": len(dsts)}.get(topo, 0)
        tree = _Tree(tuple(tuple(e) for e in entries), tuple(leaves), tuple(hops), link_hops, crossings)
        self._trees[key] = tree
        return tree

    # ---- reservation --------------------------------------------------------------------
    def reserve(
        self,
        earliest,
        src: str,
        dsts: str | Sequence[str],
        nbytes: int,
        upstream: tuple[Fraction, Fraction] | None = None,
    ) -> Reservation:
        """Reserve ``nbytes`` from ``src`` to ``dsts`` (one node or several: a multicast).

        ``earliest`` (ps): when the source can start. ``upstream = (start, end)``: the data arrive at the
        source over that interval (the DRAM leg of a read): the head starts no earlier than ``start``
        and the tail cannot leave the source before ``end`` (cut-through). Returns each destination's
        data start and end, exact.
        """
        if isinstance(dsts, str):
            dsts = (dsts,)
        if not _is_int(nbytes) or nbytes <= 0:
            raise InterconnectError(
                f"transfer {src!r} -> {', '.join(map(str, dsts))}: nbytes {nbytes!r} must be a positive int"
            )
        tree = self._tree(src, tuple(dsts))
        t0 = Fraction(earliest)
        up_end = None
        if upstream is not None:
            up_start, up_end = Fraction(upstream[0]), Fraction(upstream[1])
            if up_end < up_start:
                raise InterconnectError(f"upstream end {up_end} is before its start {up_start}")
            t0 = max(t0, up_start)
        free, entries = self._free, tree.entries
        heads: list[Fraction] = []
        body = t0  # T0: when the body leaves the source
        for r, parent, lam, off in entries:
            head = (t0 if parent < 0 else heads[parent]) + lam
            if free[r] > head:
                head = free[r]
            heads.append(head)
            if head - off > body:
                body = head - off
        tail = body + nbytes / self.bytes_per_ps
        if up_end is not None and up_end > tail:
            tail = up_end
        segments = []
        for (r, _, _, off), head in zip(entries, heads):
            end = tail + off
            free[r] = end
            self._bytes[r] += nbytes
            self._transfers[r] += 1
            self._held[r] += end - head
            segments.append((self._names[r], head, end))
        deliveries = tuple(
            Delivery(d, h, heads[leaf], tail + entries[leaf][3])
            for d, h, leaf in zip(dsts, tree.hops, tree.leaves)
        )
        self.transfers += 1
        self.bytes += nbytes
        self.byte_hops += nbytes * tree.link_hops
        self.bus_bytes += nbytes * tree.bus_crossings
        return Reservation(src, nbytes, deliveries, tree.link_hops, tree.bus_crossings, tuple(segments))

    # ---- statistics ---------------------------------------------------------------------
    def energy_j(self, item=None) -> float | None:
        """Energy (J) of a Reservation, or of everything reserved so far when ``item`` is None."""
        item = self if item is None else item
        return energy_j(self.config, item.byte_hops, item.bus_bytes)

    def link_stats(self, used_only: bool = False) -> tuple[LinkStats, ...]:
        """Per-resource totals in a fixed order (ports by node name, then links router by router)."""
        rows = zip(self._names, self._kinds, self._bytes, self._transfers, self._held)
        return tuple(
            LinkStats(name, kind, b, n, b / self.bytes_per_ps, held)
            for name, kind, b, n, held in rows
            if n or not used_only
        )

    def to_dict(self) -> dict:
        return {
            "topology": self.config.topology,
            "transfers": self.transfers,
            "bytes": self.bytes,
            "byte_hops": self.byte_hops,
            "bus_bytes": self.bus_bytes,
            "energy_j": self.energy_j(),
            "links": [s.to_dict() for s in self.link_stats(used_only=True)],
        }


def _mesh_link(a: tuple[int, int], b: tuple[int, int]) -> str:
    return f"({a[0]},{a[1]})->({b[0]},{b[1]})"
