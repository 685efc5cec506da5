"""Transaction-level banked DRAM: channels, ranks, bank groups, banks, rows; FR-FCFS; refresh.

Semantics (docs/modelling.md, "DRAM, transaction level"; all times integer DRAM cycles, tCK):

- **Transaction** = (request time, start byte address, nbytes, read/write). It covers the bursts
  ``floor(a / B) .. ceil((a + n) / B) - 1`` (B = bus bytes x BL) and is cut into **row segments**:
  the bursts of one channel inside one *row block* (all bursts sharing the address-map digits above
  ``co``). With fields below ``co`` (e.g. ``bg``) a segment visits m banks in a fixed cycle, each in
  one row, at one column command every ``s`` cycles; with none it is consecutive bursts of one row.
- **Address map**: the fields ``ro ra bg ba ch co`` written most significant first, ``:``-separated;
  the burst index is a mixed-radix number with those digits (bit slicing when counts are powers of
  two). ``co`` counts bursts within a row. A field of count 1 may be omitted; ``ro`` must lie above
  ``co``. Each preset's default interleaves bursts across channels, then bank groups, then columns
  (``ro:ba:ra:co:bg:ch``), so a stream uses every channel and alternates bank groups (tCCD_S).
- **Segment timing (closed form).** Burst j issues its column command at ``c0 + j*s``; its data
  occupy the bus from ``c + CL`` (read) or ``c + CWL`` (write) for nBL cycles. ``s`` is the smallest
  uniform spacing the cycle allows: >= nBL; consecutive bank groups differ: >= tCCD_S, same: tCCD_L;
  same bank group at cyclic distance d: >= ceil(tCCD_L / d); rank switch: nBL + nCS. ``c0`` is the
  largest of: the decision time; the bus (data start >= previous data end); tCCD_L after the last
  column command of each bank group it uses, tCCD_S after the rank's; write->read
  ``CWL + nBL + tWTR_L/S`` and read->write ``CL + nBL + 2 - CWL`` (Ramulator2 DDR4/LPDDR5); for
  each bank it must open, ``ACT + tRCD - j_b*s``.
- **Row state** (open page): a bank whose row is open is a *hit*; a closed bank is *empty*
  (ACT >= max(request, bank ready) ); an open other row is a *conflict* (PRE >= ACT + tRAS, last RD +
  tRTP, last WR data end + tWR; ACT >= PRE + tRP). Every ACT also waits tRC after the bank's last
  ACT, tRRD_S (tRRD_L same bank group) after the rank's last ACT and tFAW after its 4th-last. Row
  commands are issued ahead of the column stream (bank-level parallelism): an ACT may precede the
  segment's decision time, never its request; ACTs of a rank are issued in decision order.
- **Refresh** at fixed times, deterministic: all-bank REF of rank r at ``k*tREFI + r*tREFI/ranks``
  (k >= 1), blocking the rank for tRFC; per-bank REF of bank i at ``(k*banks + i + 1)*tREFIpb``,
  blocking that bank for tRFCpb. Before a refresh at R every touched bank must be precharged:
  column commands <= R - tRP(ab) - tRTP (read) or - (CWL + nBL + tWR) (write), ACTs <= R - tRP - tRAS.
  A segment that crosses that limit is split at its first violating burst; the refresh then closes
  the rows (one PRE per open bank) and the rest follows after R + tRFC with new ACTs.
- **Scheduling**: one controller per channel with a queue of ``queue_depth`` segments (later ones
  wait outside, FIFO, unseen, and become visible when admitted). When the previous segment's last
  column command issues, the controller picks the next segment: ``frfcfs`` = the oldest segment whose
  first bank has its row open, else the oldest; ``fifo`` = the oldest. Age = (request time, order of
  submission): ties are fixed. A segment's PRE/ACT may be issued from its predecessor's decision on
  (one segment of row-command lookahead), so a stream's next row opens while the current one streams.
  A request reaching an idle channel whose command bus is free is timed on arrival.

Why a controller process (not a reservation call like ``Channel.reserve``): a reservation is timed at
the call, in call order, so it cannot let a row hit that arrives later overtake a queued conflict.
The controller decides one segment per SimPy event at the instant the command bus frees, seeing
exactly the requests that have arrived, so two engines' streams contend and FR-FCFS can reorder.
Cost: one decision event per segment that has to wait for the bus, one wake-up when an idle channel
gets work it cannot start at once, and a ``scheduled`` event only for a caller that waits on it (a
transaction timed on arrival needs none). Bursts are never events.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from fractions import Fraction

from archsim.arch.dram import (  # noqa: F401  (the configuration, re-exported for callers of the model)
    DEFAULT_QUEUE_DEPTH,
    FIELDS,
    REFRESH_MODES,
    SCHEDULERS,
    AddressMap,
    BankedDramConfig,
    DramConfigError,
)
from archsim.arch.dram_presets import DramEnergy, DramOrganization, DramTiming
from archsim.sim.kernel import CountingEnvironment, Module

NEVER = -(10**15)  # "no such command yet": far enough in the past that no constraint binds
POSTPONE_INTERVALS = 8  # [I] see _Controller.postpone_limit
COUNTERS = ("reads", "writes", "activates", "precharges", "row_hits", "row_empty", "row_conflicts", "bus")


class DramTransaction:
    """One request. Once timed (``done_ps`` is set; ``scheduled`` fires then): ``data_start_ps`` and
    ``data_end_ps`` (exact ps, on the data bus: first beat and end of the last, over all channels) and
    ``done_ps`` (the integer ps at or after the data end)."""

    __slots__ = (
        "_env",
        "_event",
        "_first",
        "_last",
        "_pending",
        "_tck",
        "address",
        "bursts",
        "done_ps",
        "nbytes",
        "submit_ps",
        "write",
    )

    def __init__(
        self, env, address: int, nbytes: int, write: bool, submit_ps: int, bursts: int, tck: Fraction
    ):
        self._env, self._tck = env, tck
        self.address, self.nbytes, self.write = address, nbytes, write
        self.submit_ps, self.bursts = submit_ps, bursts
        self.done_ps: int | None = None
        self._event = None
        self._pending = 0
        self._first = None
        self._last = None

    @property
    def scheduled(self):
        """SimPy event that fires (value: this transaction) when every segment is timed; created on demand,
        so a transaction timed on arrival costs no event."""
        if self._event is None:
            self._event = self._env.event()
            if self.done_ps is not None:
                self._event.succeed(self)
        return self._event

    @property
    def data_start_ps(self) -> Fraction | None:
        return None if self.done_ps is None else self._first * self._tck

    @property
    def data_end_ps(self) -> Fraction | None:
        return None if self.done_ps is None else self._last * self._tck


class _Segment:
    __slots__ = (
        "bank_off",
        "bg_off",
        "first_bank",
        "group",
        "n",
        "p0",
        "rank_off",
        "row",
        "txn",
        "visible",
        "write",
    )

    def __init__(self, txn, row, n, p0, group, bank_off, bg_off, rank_off, first_bank, visible):
        self.txn, self.row, self.n, self.p0, self.group = txn, row, n, p0, group
        self.bank_off, self.bg_off, self.rank_off = bank_off, bg_off, rank_off
        self.first_bank, self.visible, self.write = first_bank, visible, txn.write


@dataclass(frozen=True)
class DramStats:
    """Counts and times of a banked DRAM up to ``elapsed_ps`` (all channels)."""

    reads: int  # RD column commands (bursts)
    writes: int  # WR column commands
    activates: int
    precharges: int  # includes the banks closed by refresh
    refreshes: int  # REF commands due by elapsed_ps (all-bank: per rank; per-bank: per bank)
    row_hits: int  # column commands that found their row open
    row_empty: int  # column commands that had to open a row in a closed bank
    row_conflicts: int  # column commands that had to close another row first
    bytes_read: int
    bytes_written: int
    bus_busy_ps: Fraction  # data-bus occupancy summed over channels
    refresh_busy_ps: Fraction  # sum of tRFC (or tRFCpb) over the refreshes counted
    elapsed_ps: int
    peak_bandwidth_Bps: Fraction
    per_bank_refresh: bool = False  # REF counts per-bank commands (each refreshes one bank)

    @property
    def row_hit_rate(self) -> float:
        total = self.reads + self.writes
        return self.row_hits / total if total else 0.0

    @property
    def achieved_bandwidth_Bps(self) -> Fraction:
        moved = self.bytes_read + self.bytes_written
        return Fraction(moved * 10**12, self.elapsed_ps) if self.elapsed_ps > 0 else Fraction(0)

    def to_dict(self) -> dict:
        """The ``dram`` statistics of a result (issue 10 item 6); units in the key names."""
        return {
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "achieved_bandwidth_Bps": float(self.achieved_bandwidth_Bps),
            "peak_bandwidth_Bps": float(self.peak_bandwidth_Bps),
            "row_hit_rate": self.row_hit_rate,
            "commands": {
                "ACT": self.activates,
                "PRE": self.precharges,
                "RD": self.reads,
                "WR": self.writes,
                "REF": self.refreshes,
            },
            "row_hits": self.row_hits,
            "row_empty": self.row_empty,
            "row_conflicts": self.row_conflicts,
            "refresh_s": float(self.refresh_busy_ps) / 1e12,
            "bus_busy_s": float(self.bus_busy_ps) / 1e12,
            "elapsed_s": self.elapsed_ps / 1e12,
        }


def command_energy_j(stats: DramStats, energy: DramEnergy, organization: DramOrganization) -> dict:
    """E = N_ACT*E_ACT+PRE + N_RD*E_RD + N_WR*E_WR + N_REF*E_REF + P_bg * T * (ranks or channels).

    A component whose coefficient is missing (``None``) is ``None`` when it would be non-zero, so a
    caller reports it as not modelled rather than as 0 J. A per-bank REF is charged E_REF / banks per
    rank [I] (it refreshes one bank's share of the rows)."""
    refresh_j = energy.refresh_j
    if stats.per_bank_refresh and refresh_j is not None:
        refresh_j /= organization.banks_per_rank
    scope = organization.channels * (organization.ranks if energy.background_scope == "rank" else 1)

    def term(count, coefficient):
        if not count:
            return 0.0
        return None if coefficient is None else count * coefficient

    return {
        "act_pre": term(stats.activates, energy.act_pre_j),
        "read": term(stats.reads, energy.read_burst_j),
        "write": term(stats.writes, energy.write_burst_j),
        "refresh": term(stats.refreshes, refresh_j),
        "background": term(
            stats.elapsed_ps * scope, None if energy.background_w is None else energy.background_w / 1e12
        ),
    }


class BankedDram(Module):
    """The banked DRAM (``top.dram``) with one controller process per channel (``top.dram.ch0`` ...)."""

    def __init__(
        self,
        env: CountingEnvironment,
        config: BankedDramConfig,
        parent: Module | None = None,
        name: str = "dram",
    ):
        problems = config.problems()
        if problems:
            raise DramConfigError(problems)
        super().__init__(env, name, parent)
        self.config = config
        self.org = config.preset.organization
        self.timing = config.preset.timing
        self.map = AddressMap(config.map_text, self.org)
        self._tck_num = self.timing.tck_ps.numerator
        self._tck_den = self.timing.tck_ps.denominator
        self._build_groups()
        self.channels = [_Controller(self, c) for c in range(self.org.channels)]
        self._high_cache: dict[int, tuple[int, int, int, int, int]] = {}

    # -- address decomposition ----------------------------------------------------------------
    def _build_groups(self) -> None:
        """Per value k of the low channel digit: the cycle of low combinations and its spacing."""
        org, amap = self.org, self.map
        bpr = org.banks_per_rank
        strides = {"ra": (bpr, org.bank_groups, 1), "bg": (org.banks_per_group, 1, 0), "ba": (1, 0, 0)}
        groups: dict[int, list[tuple[int, int, int, int]]] = {}
        for v in range(amap.low_size):
            rest, digit = v, {}
            for f in reversed(amap.low):
                digit[f] = rest % amap.radix[f]
                rest //= amap.radix[f]
            bank = sum(digit.get(f, 0) * strides[f][0] for f in strides)
            bgi = sum(digit.get(f, 0) * strides[f][1] for f in strides)
            rank = digit.get("ra", 0)
            groups.setdefault(digit.get("ch", 0), []).append((v, bank, bgi, rank))
        self._groups = []
        for ch_low in sorted(groups):
            members = groups[ch_low]
            prefix = [0] * (amap.low_size + 1)
            vs = {v for v, *_ in members}
            for x in range(amap.low_size):
                prefix[x + 1] = prefix[x] + (x in vs)
            banks = tuple(b for _, b, _, _ in members)
            bgs = tuple(g for _, _, g, _ in members)
            ranks = tuple(r for _, _, _, r in members)
            self._groups.append(
                (
                    ch_low,
                    prefix,
                    banks,
                    bgs,
                    ranks,
                    _spacing(bgs, ranks, self.timing),
                    _first_uses(bgs),
                    _first_uses(ranks),
                )
            )
        self._strides = strides

    def _high(self, h: int) -> tuple[int, int, int, int, int]:
        """Row-block index -> (channel, row, bank offset, bank-group offset, rank offset)."""
        amap = self.map
        digit = {}
        for f in reversed(amap.high):
            digit[f] = h % amap.radix[f]
            h //= amap.radix[f]
        s = self._strides
        bank = sum(digit.get(f, 0) * s[f][0] for f in s)
        bgi = sum(digit.get(f, 0) * s[f][1] for f in s)
        return digit.get("ch", 0), digit.get("ro", 0), bank, bgi, digit.get("ra", 0)

    # -- requests ---------------------------------------------------------------------------
    def bursts(self, address: int, nbytes: int) -> int:
        """Bursts a transaction of ``nbytes`` at ``address`` occupies (an unaligned one may need one more)."""
        bb = self.org.burst_bytes
        return -(-(address + nbytes) // bb) - address // bb

    def submit(self, address: int, nbytes: int, write: bool = False) -> DramTransaction:
        """Queue a transaction at ``env.now``; its ``scheduled`` event fires when it is fully timed."""
        if not isinstance(address, int) or address < 0:
            raise ValueError(f"{self.path}: address {address!r} must be an integer >= 0")
        if not isinstance(nbytes, int) or nbytes < 1:
            raise ValueError(f"{self.path}: nbytes {nbytes!r} must be an integer >= 1")
        bb = self.org.burst_bytes
        b0, b1 = address // bb, -(-(address + nbytes) // bb)
        if b1 > self.map.capacity_bursts:
            raise ValueError(
                f"{self.path}: [{address}, {address + nbytes}) exceeds the capacity "
                f"{self.org.capacity_bytes} B of {self.config.preset.name}"
            )
        now = self.env.now
        txn = DramTransaction(self.env, address, nbytes, write, now, b1 - b0, self.timing.tck_ps)
        visible = -(-now * self._tck_den // self._tck_num)
        block, low = self.map.block, self.map.low_size
        touched = []
        for h in range(b0 // block, (b1 - 1) // block + 1):
            base = h * block
            lo, hi = max(b0 - base, 0), min(b1 - base, block)
            high = self._high_cache.get(h)
            if high is None:
                high = self._high_cache[h] = self._high(h)
            ch_high, row, bank_off, bg_off, rank_off = high
            for gi, (ch_low, prefix, banks, *_) in enumerate(self._groups):
                m = len(banks)
                qa = (lo // low) * m + prefix[lo % low]
                qb = (hi // low) * m + prefix[hi % low]
                if qb > qa:
                    p0 = qa % m
                    seg = _Segment(
                        txn, row, qb - qa, p0, gi, bank_off, bg_off, rank_off, banks[p0] + bank_off, visible
                    )
                    ctrl = self.channels[ch_low + ch_high]
                    ctrl.enqueue(seg)
                    txn._pending += 1
                    touched.append(ctrl)
        for ctrl in touched:
            ctrl.kick(visible)
        return txn

    def transfer(self, address: int, nbytes: int, write: bool = False):
        """SimPy process body: submit, wait until the data have left the bus; returns the transaction."""
        txn = self.submit(address, nbytes, write)
        if txn.done_ps is None:
            yield txn.scheduled
        if txn.done_ps > self.env.now:
            yield self.env.timeout(txn.done_ps - self.env.now)
        return txn

    def _finish_segment(self, txn: DramTransaction, first: int, last: int) -> None:
        txn._first = first if txn._first is None else min(txn._first, first)
        txn._last = last if txn._last is None else max(txn._last, last)
        txn._pending -= 1
        if txn._pending == 0:
            txn.done_ps = -(-txn._last * self._tck_num // self._tck_den)
            if txn._event is not None:
                txn._event.succeed(txn)

    # -- statistics ---------------------------------------------------------------------------
    def stats(self, until_ps: int | None = None) -> DramStats:
        """Statistics up to ``until_ps`` (default ``env.now``); refreshes are counted as due by then."""
        until = self.env.now if until_ps is None else until_ps
        until_ck = until * self._tck_den // self._tck_num
        t = self.timing
        tot = dict.fromkeys((*COUNTERS, "refreshes"), 0)
        for ctrl in self.channels:
            for key, value in ctrl.counts(until_ck).items():
                tot[key] += value
        bb = self.org.burst_bytes
        rfc = t.nRFCpb if self.config.refresh == "per_bank" else t.nRFC
        return DramStats(
            reads=tot["reads"],
            writes=tot["writes"],
            activates=tot["activates"],
            precharges=tot["precharges"],
            refreshes=tot["refreshes"],
            row_hits=tot["row_hits"],
            row_empty=tot["row_empty"],
            row_conflicts=tot["row_conflicts"],
            bytes_read=tot["reads"] * bb,
            bytes_written=tot["writes"] * bb,
            bus_busy_ps=tot["bus"] * t.tck_ps,
            refresh_busy_ps=tot["refreshes"] * rfc * t.tck_ps,
            elapsed_ps=until,
            peak_bandwidth_Bps=self.config.preset.peak_bandwidth_bytes_per_s,
            per_bank_refresh=self.config.refresh == "per_bank",
        )


def _first_uses(labels: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per start position p0 of a cycle: ((j, label), ...) for the first burst j using each label."""
    m = len(labels)
    out = []
    for p0 in range(m):
        seen, firsts = set(), []
        for j in range(m):
            label = labels[(p0 + j) % m]
            if label not in seen:
                seen.add(label)
                firsts.append((j, label))
        out.append(tuple(firsts))
    return tuple(out)


def _spacing(bgs: tuple[int, ...], ranks: tuple[int, ...], t: DramTiming) -> int:
    """Smallest uniform column-command spacing for a cycle of banks (bank-group and rank labels)."""
    m = len(bgs)
    s = t.nBL
    for p in range(m):
        for d in range(1, m + 1):  # d = m: the same bank again
            q = (p + d) % m
            if ranks[p] != ranks[q]:
                if d == 1:
                    s = max(s, t.nBL + t.nCS)
            elif bgs[p] == bgs[q]:
                s = max(s, -(-t.nCCDL // d))
            else:
                s = max(s, -(-t.nCCDS // d))
    return s


class _Controller(Module):
    """One channel: bank/rank state, the segment queue, and the process that times segments."""

    def __init__(self, dram: BankedDram, index: int):
        super().__init__(dram.env, f"ch{index}", dram)
        self.dram = dram
        org, t = dram.org, dram.timing
        nbanks = org.ranks * org.banks_per_rank
        nbgs = org.ranks * org.bank_groups
        self.open_row = [-1] * nbanks
        self.act_t = [NEVER] * nbanks
        self.act_ok = [0] * nbanks  # earliest ACT: last PRE + tRP, or refresh end
        self.rd_t = [NEVER] * nbanks
        self.wr_t = [NEVER] * nbanks
        self.bg_col = [NEVER] * nbgs
        self.bg_wr = [NEVER] * nbgs
        self.bg_act = [NEVER] * nbgs
        self.rk_col = [NEVER] * org.ranks
        self.rk_rd = [NEVER] * org.ranks
        self.rk_wr = [NEVER] * org.ranks
        self.rk_act = [NEVER] * org.ranks
        self.rk_faw = [[NEVER] * 4 for _ in range(org.ranks)]
        self.rd2wr = t.nCL + t.nBL + 2 - t.nCWL  # RD -> WR, same rank (Ramulator2, tWPRE = 1 tCK)
        self.wr2rd_s = t.nCWL + t.nBL + t.nWTRS  # WR -> RD, other bank group
        self.wr2rd_l = t.nCWL + t.nBL + t.nWTRL  # WR -> RD, same bank group
        self.wr2pre = t.nCWL + t.nBL + t.nWR  # WR -> PRE, same bank (write recovery)
        self.per_bank = dram.config.refresh == "per_bank"
        if self.per_bank:
            self.ref_period = org.banks_per_rank * t.nREFIpb
            self.ref_first = [
                (b % org.banks_per_rank + 1) * t.nREFIpb
                + (b // org.banks_per_rank) * (t.nREFIpb // org.ranks)
                for b in range(nbanks)
            ]
            self.ref_rfc, self.ref_rp = t.nRFCpb, t.nRP
            # [I] a per-bank REF may wait for a visible access to its bank for up to 8 intervals, by
            # analogy with JEDEC's up-to-8 postponed REF commands (JESD79-4 / JESD209-4)
            self.postpone_limit = POSTPONE_INTERVALS * t.nREFIpb
        else:
            self.ref_period = t.nREFI
            self.ref_first = [t.nREFI + r * (t.nREFI // org.ranks) for r in range(org.ranks)]
            self.ref_rfc, self.ref_rp = t.nRFC, t.nRPab
        self.ref_next = list(self.ref_first)  # next refresh not yet applied, per rank or per bank
        self.bus_free = NEVER
        self.last_col = NEVER
        self.last_rank = -1
        self.last_write = False
        self.next_decision = 0
        self.row_floor = 0  # decision time of the last segment placed: the next one's PRE/ACT may start then
        self.queue: list[_Segment] = []
        self.waiting: deque[_Segment] = deque()
        self.depth = dram.config.queue_depth
        self.fifo = dram.config.scheduler == "fifo"
        self.wake = None
        self.n = dict.fromkeys(COUNTERS, 0)
        self.env.process(self._run())

    # -- queue ------------------------------------------------------------------------------------
    def enqueue(self, seg: _Segment) -> None:
        (self.queue if len(self.queue) < self.depth else self.waiting).append(seg)

    def kick(self, now_ck: int) -> None:
        """New segments were queued at ``now_ck``. An idle channel whose command bus is free decides at
        once (the instant its process would decide); the process is woken for whatever remains."""
        if self.wake is None or self.wake.triggered:
            return
        if self.next_decision <= now_ck:
            self._decide(now_ck)
        if self.queue:
            self.wake.succeed()

    def _run(self):
        env, d = self.env, self.dram
        num, den = d._tck_num, d._tck_den
        while True:
            if not self.queue:
                self.wake = env.event()
                yield self.wake
                self.wake = None
            now_ck = -(-env.now * den // num)
            decide = max(self.next_decision, now_ck)
            at = -(-decide * num // den)
            if at > env.now:
                yield env.timeout(at - env.now)
            self._decide(decide)

    def _decide(self, decide: int) -> None:
        """Pick one queued segment (FR-FCFS or FIFO), admit the oldest waiting one, time it."""
        seg = self._pick()
        self.queue.remove(seg)
        if self.waiting:
            late = self.waiting.popleft()
            late.visible = max(late.visible, decide)
            self.queue.append(late)
        first, last = self._place(seg, decide)
        self.row_floor = decide
        self.dram._finish_segment(seg.txn, first, last)

    def _pick(self) -> _Segment:
        if not self.fifo:
            open_row = self.open_row
            for seg in self.queue:
                if open_row[seg.first_bank] == seg.row:
                    return seg
        return self.queue[0]

    # -- closed-form timing ---------------------------------------------------------------------
    def _plan(self, seg: _Segment, p0: int, n: int, decide: int):
        """Tentative timing of ``n`` bursts of ``seg`` from cycle position ``p0``: (c0, s, m, banks), banks =
        [(j, bank, bank group, rank, kind 0 hit / 1 empty / 2 conflict, ACT time or None)] in burst order."""
        t = self.dram.timing
        _, _, gbank, gbg, grank, s, bg_firsts, rank_firsts = self.dram._groups[seg.group]
        m = len(gbank)
        write = seg.write
        bank_off, bg_off, rank_off = seg.bank_off, seg.bg_off, seg.rank_off
        c0 = max(seg.visible, decide)
        x = self.bus_free - (t.nCWL if write else t.nCL)  # data start >= the bus's last data end
        c0 = max(c0, x)
        first_rank = grank[p0] + rank_off
        if self.last_rank >= 0 and first_rank != self.last_rank:  # rank switch (Ramulator2 sibling rules)
            if not self.last_write:
                c0 = max(c0, self.last_col + t.nBL + t.nCS)
            elif not write:
                c0 = max(c0, self.last_col + t.nCL + t.nBL + t.nCS - t.nCWL)
        for j, g in bg_firsts[p0]:  # tCCD_L and write->read (tWTR_L) per bank group
            if j >= n:
                break
            g += bg_off
            x = self.bg_col[g] + t.nCCDL - j * s
            if not write:
                x = max(x, self.bg_wr[g] + self.wr2rd_l - j * s)
            c0 = max(c0, x)
        for j, r in rank_firsts[p0]:  # tCCD_S and the rank's turnarounds
            if j >= n:
                break
            r += rank_off
            x = self.rk_col[r] + t.nCCDS - j * s
            y = self.rk_rd[r] + self.rd2wr if write else self.rk_wr[r] + self.wr2rd_s
            x = max(y - j * s, x)
            c0 = max(c0, x)
        row, open_row = seg.row, self.open_row
        early = max(self.row_floor, seg.visible)  # row commands from here
        rk_act = bg_act = faw = None  # tentative ACT history, copied on the first ACT
        banks = []
        p = p0
        for j in range(min(m, n)):
            b, g, r = gbank[p] + bank_off, gbg[p] + bg_off, grank[p] + rank_off
            p = p + 1 if p + 1 < m else 0
            old = open_row[b]
            if old == row:
                banks.append((j, b, g, r, 0, None))
                continue
            if old >= 0:
                pre = max(early, self.act_t[b] + t.nRAS, self.rd_t[b] + t.nRTP, self.wr_t[b] + self.wr2pre)
                ready, kind = max(pre + t.nRP, self.act_ok[b]), 2
            else:
                ready, kind = max(early, self.act_ok[b]), 1
            if rk_act is None:
                rk_act, bg_act, faw = self.rk_act[:], self.bg_act[:], [w[:] for w in self.rk_faw]
            window = faw[r]
            act = max(
                ready, self.act_t[b] + t.nRC, rk_act[r] + t.nRRDS, bg_act[g] + t.nRRDL, window[0] + t.nFAW
            )
            rk_act[r] = bg_act[g] = act
            window.pop(0)
            window.append(act)
            banks.append((j, b, g, r, kind, act))
            x = act + t.nRCD - j * s
            c0 = max(c0, x)
        return c0, s, m, banks

    def _refresh_cut(self, seg: _Segment, c0: int, s: int, m: int, n: int, banks):
        """How the piece meets the next due refreshes of the ranks (all-bank) or banks (per-bank) it touches.

        Returns (before, cut, keys, postponed): ``before`` = keys whose refresh is issued before the piece
        uses them (apply, then re-plan); else ``cut`` = the first burst that runs into a refresh (n if
        none) with the ``keys`` due there, and ``postponed`` = per-bank refreshes issued after the piece."""
        t = self.dram.timing
        guard_col = self.ref_rp + (t.nCWL + t.nBL + t.nWR if seg.write else t.nRTP)
        guard_act = self.ref_rp + t.nRAS
        soonest = min(self.ref_next)
        if c0 + (n - 1) * s <= soonest - guard_col and all(
            a is None or a <= soonest - guard_act for *_, a in banks
        ):
            return [], n, [], []  # the whole piece ends before any refresh falls due
        precedes, start, first_cut, last_use, last_act = {}, {}, {}, {}, {}
        for j, b, _g, r, _kind, act in banks:
            key = b if self.per_bank else r
            due = self.ref_next[key]
            limit = due - guard_col
            if (act is not None and act > due - guard_act) or c0 + j * s > limit:
                j_cut = j
            else:
                j_cut = j + ((limit - c0 - j * s) // (m * s) + 1) * m  # bursts of this bank before the limit
            precedes[key] = precedes.get(key, False) or j_cut > j
            start[key] = min(start.get(key, -NEVER), c0 + j * s if act is None else act)
            if j_cut < n:
                first_cut[key] = min(first_cut.get(key, n), j_cut)
                last_use[key] = max(last_use.get(key, NEVER), c0 + (j + (n - j - 1) // m * m) * s)
                last_act[key] = max(last_act.get(key, NEVER), NEVER if act is None else act)
        before, cut, keys, postponed = [], n, [], []
        for key, j_cut in first_cut.items():
            due = self.ref_next[key]
            if self.per_bank and start[key] < due + self.ref_rfc and (precedes[key] or seg.visible <= due):
                # the bank is busy, or its access already queued, when the refresh falls due: refresh it
                # right after this piece's accesses to it (postponed at most postpone_limit)
                at = max(due, last_use[key] + guard_col, last_act[key] + guard_act)
                if at <= due + self.postpone_limit:
                    postponed.append((key, at))
                    continue
            if not precedes[key]:
                before.append(key)
            elif j_cut < cut:
                cut, keys = j_cut, [key]
            elif j_cut == cut:
                keys.append(key)
        if before:
            return before, n, [], []
        return [], cut, keys, postponed

    def _apply_refresh(self, key: int, not_before: int, at: int | None = None) -> None:
        """Apply the due refresh of ``key`` (rank or bank), issued at ``at`` (default: when due), and
        every later one that ends by ``not_before``."""
        org = self.dram.org
        due = self.ref_next[key]
        later = max(0, (not_before - self.ref_rfc - due) // self.ref_period)
        due += later * self.ref_period
        end = (due if at is None or later else at) + self.ref_rfc
        banks = [key] if self.per_bank else range(key * org.banks_per_rank, (key + 1) * org.banks_per_rank)
        for b in banks:
            if self.open_row[b] >= 0:
                self.open_row[b] = -1
                self.n["precharges"] += 1
            self.act_ok[b] = max(self.act_ok[b], end)
        self.ref_next[key] = due + self.ref_period

    def _place(self, seg: _Segment, decide: int) -> tuple[int, int]:
        """Time every burst of ``seg`` (split around refreshes); returns (first data, last data end), tCK."""
        t = self.dram.timing
        lat = t.nCWL if seg.write else t.nCL
        p0, left, first = seg.p0, seg.n, None
        while left:
            c0, s, m, banks = self._plan(seg, p0, left, decide)
            before, cut, keys, postponed = self._refresh_cut(seg, c0, s, m, left, banks)
            if before:
                for key in before:
                    starts = [
                        c0 + j * s if a is None else a
                        for j, b, _g, r, _k, a in banks
                        if (b if self.per_bank else r) == key
                    ]
                    self._apply_refresh(key, min(starts))
                continue
            if cut < left:
                # a postponed per-bank refresh whose bank goes on after the cut is decided again later
                goes_on = {b for j, b, *_ in banks if j + (left - 1 - j) // m * m >= cut}
                postponed = [(key, at) for key, at in postponed if key not in goes_on]
                c0, s, m, banks = self._plan(seg, p0, cut, decide)
            self._commit(seg, p0, c0, s, m, cut, banks)
            first = c0 + lat if first is None else first
            for key, at in postponed:
                self._apply_refresh(key, NEVER, at)
            for key in keys:
                self._apply_refresh(key, NEVER)
            p0 = (p0 + cut) % m
            left -= cut
        return first, self.bus_free

    def _commit(self, seg: _Segment, p0: int, c0: int, s: int, m: int, n: int, banks) -> None:
        t, cnt = self.dram.timing, self.n
        write, row = seg.write, seg.row
        hits = 0
        for j, b, g, r, kind, act in banks:
            if j >= n:
                break
            nb = (n - j + m - 1) // m  # bursts of this bank
            c_last = c0 + (j + (nb - 1) * m) * s  # its last column command
            hits += nb if act is None else nb - 1
            if act is not None:
                cnt["activates"] += 1
                if kind == 2:
                    cnt["precharges"] += 1
                    cnt["row_conflicts"] += 1
                else:
                    cnt["row_empty"] += 1
                self.act_t[b] = act
                self.open_row[b] = row
                self.rk_act[r] = max(self.rk_act[r], act)
                self.bg_act[g] = max(self.bg_act[g], act)
                window = self.rk_faw[r]
                window.pop(0)
                window.append(act)
            if write:
                self.wr_t[b] = c_last
                self.bg_wr[g] = max(self.bg_wr[g], c_last)
                self.rk_wr[r] = max(self.rk_wr[r], c_last)
            else:
                self.rd_t[b] = c_last
                self.rk_rd[r] = max(self.rk_rd[r], c_last)
            self.bg_col[g] = max(self.bg_col[g], c_last)
            self.rk_col[r] = max(self.rk_col[r], c_last)
        cnt["row_hits"] += hits
        c_end = c0 + (n - 1) * s
        self.bus_free = c_end + (t.nCWL if write else t.nCL) + t.nBL
        self.last_col = c_end
        self.last_rank = self.dram._groups[seg.group][4][(p0 + n - 1) % m] + seg.rank_off
        self.last_write = write
        self.next_decision = c_end
        cnt["writes" if write else "reads"] += n
        cnt["bus"] += n * t.nBL

    # -- statistics -------------------------------------------------------------------------------
    def counts(self, until_ck: int) -> dict:
        out = dict(self.n)
        refs = 0
        for key, first in enumerate(self.ref_first):
            if until_ck >= first:
                refs += (until_ck - first) // self.ref_period + 1
            nxt = self.ref_next[key]
            if until_ck >= nxt:  # the due refresh closes the rows left open
                banks = (
                    [key]
                    if self.per_bank
                    else range(key * self.dram.org.banks_per_rank, (key + 1) * self.dram.org.banks_per_rank)
                )
                out["precharges"] += sum(self.open_row[b] >= 0 for b in banks)
        out["refreshes"] = refs
        return out
