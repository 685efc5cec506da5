"""Banked DRAM (archsim/sim/dram_banked.py): closed forms derived by hand from its docstring rules.

DDR4-2400 x64 numbers used below (tCK = 2500/3 ps): CL 16, CWL 12, tRCD 16, tRP 16, tRAS 39,
tRC 55, nBL 4, tCCD_S/L 4/6, tRRD_S/L 4/6, tFAW 26, tWTR_S/L 3/9, tRTP 9, tRFC 420, tREFI 9360.
Default map ro:ba:ra:co:bg:ch: 64 B bursts rotate over the 4 bank groups, a row block is 32 KiB.
"""

from __future__ import annotations

import dataclasses
import math
import random
from fractions import Fraction

import pytest

from archsim.arch.dram_presets import DDR4_2400_X64, LPDDR4_3200, PRESETS
from archsim.sim.dram_banked import (
    AddressMap,
    BankedDram,
    BankedDramConfig,
    DramConfigError,
    command_energy_j,
)
from archsim.sim.kernel import CountingEnvironment

T = DDR4_2400_X64.timing
TCK = T.tck_ps


def make(preset=DDR4_2400_X64, **config):
    env = CountingEnvironment()
    return env, BankedDram(env, BankedDramConfig(preset, **config))


def ck(txn) -> Fraction:
    """A transaction's data end in DRAM cycles."""
    return txn.data_end_ps / TCK


def run_at(env, dram, requests):
    """requests: [(time_ps, address, nbytes, write)], each issued at its time; returns the transactions."""
    out = [None] * len(requests)

    def issue(i, at, address, nbytes, write):
        if at > env.now:
            yield env.timeout(at - env.now)
        out[i] = yield env.process(dram.transfer(address, nbytes, write))

    for i, req in enumerate(requests):
        env.process(issue(i, *req))
    env.run()
    return out


def addr(preset=DDR4_2400_X64, **digits) -> int:
    return AddressMap(preset.default_address_map, preset.organization).encode(**digits)


# -- latency of one access: empty, hit, conflict -----------------------------------------------
def test_isolated_accesses_pay_empty_hit_and_conflict_latency():
    env, dram = make()
    row0, row1 = addr(ro=0), addr(ro=1)  # same bank (bg0, ba0), rows 0 and 1
    at1, at2 = 10**6, 2 * 10**6  # 1 us = exactly 1200 tCK, 2 us = 2400 tCK
    reqs = [(0, row0, 64, False), (at1, row1, 64, False), (at2, row1, 64, False)]
    first, conflict, hit = run_at(env, dram, reqs)
    assert ck(first) == T.nRCD + T.nCL + T.nBL == 36  # empty: ACT at 0
    assert ck(conflict) - 1200 == T.nRP + T.nRCD + T.nCL + T.nBL == 52  # tRP + tRCD + CL + tBurst = 43.3 ns
    assert ck(hit) - 2400 == T.nCL + T.nBL == 20
    assert conflict.done_ps == math.ceil((1200 + 52) * TCK) == 1043334
    s = dram.stats()
    assert (s.row_empty, s.row_conflicts, s.row_hits, s.activates, s.precharges) == (1, 1, 1, 2, 1)


def test_random_reads_each_pay_the_latency_of_their_row_state():
    rng = random.Random(7)
    env, dram = make()
    amap = dram.map
    gap = 200_000  # 240 tCK apart: no access waits for another's; all 36 end before the REF at 9360
    reqs, open_rows, expected = [], {}, []
    for k in range(36):
        bg, ba, ro = rng.randrange(4), rng.randrange(4), rng.randrange(3)
        reqs.append(((k + 1) * gap, amap.encode(bg=bg, ba=ba, ro=ro, co=rng.randrange(128)), 64, False))
        state = open_rows.get((bg, ba))
        expected.append(T.nCL + T.nBL + (0 if state == ro else T.nRCD + (0 if state is None else T.nRP)))
        open_rows[(bg, ba)] = ro
    txns = run_at(env, dram, reqs)
    assert [ck(x) - (k + 1) * 240 for k, x in enumerate(txns)] == expected
    assert dram.stats().row_conflicts == sum(e == 52 for e in expected) > 10


def test_reads_to_one_bank_in_different_rows_serialise_at_trc():
    env, dram = make()
    n = 6
    txns = run_at(env, dram, [(0, addr(ro=k), 64, False) for k in range(n)])
    # ACT k at k*tRC (PRE at ACT + tRAS = 39, ACT at PRE + tRP = 55 = tRC); data end = ACT + tRCD + CL + nBL
    assert [ck(x) for x in txns] == [k * T.nRC + 36 for k in range(n)]


# -- streaming and refresh -----------------------------------------------------------------
def test_stream_across_one_refresh_has_the_hand_derived_end_time():
    # 4096 bursts from address 0: c_j = 16 + 4j. The REF at 9360 allows reads up to 9360 - tRP - tRTP
    # = 9335, i.e. j <= 2329 (2330 bursts). The rest (1766 bursts) restart with ACTs at 9360 + 420 = 9780
    # (tRRD_S = 4 apart, bank j used 4j later): c0' = 9780 + tRCD = 9796; end = 9796 + 1765*4 + CL + nBL.
    env, dram = make()
    (txn,) = run_at(env, dram, [(0, 0, 4096 * 64, False)])
    assert ck(txn) == 9796 + 1765 * 4 + 20 == 16876
    s = dram.stats()
    assert s.refreshes == 1 and s.reads == 4096
    # blocks 0-3 open 16 banks (16 empty), block 4 reopens ba0's 4 banks in row 1 (4 conflicts), the REF
    # closes all 16 rows; after it blocks 4-7 open 16 banks again (16 empty)
    assert (s.activates, s.precharges, s.row_empty, s.row_conflicts) == (36, 4 + 16, 32, 4)


def test_stream_across_one_refresh_lpddr4_one_bank_at_a_time():
    # LPDDR4 map ro:ba:ra:co:ch: 32 B bursts alternate 2 channels; per channel one bank per 64 bursts,
    # s = nBL = 8, c_j = tRCD + 8j = 29 + 8j. REF at 6246: last read <= 6246 - tRPab 34 - tRTP 12 = 6200,
    # j <= 771 (772 bursts); restart: ACT at 6246 + 448, c0' = 6694 + 29 = 6723.
    t = LPDDR4_3200.timing
    env, dram = make(LPDDR4_3200)
    per_channel = 1024
    (txn,) = run_at(env, dram, [(0, 0, 2 * per_channel * 32, False)])
    assert txn.data_end_ps / t.tck_ps == 6723 + (per_channel - 772 - 1) * 8 + t.nCL + t.nBL


def test_long_stream_achieves_peak_times_one_minus_refresh_tax_within_1_percent():
    env, dram = make()
    size, n = 128 * 1024, 256  # 32 MiB: ~235 refresh intervals
    run_at(env, dram, [(0, k * size, size, False) for k in range(n)])
    s = dram.stats()
    expected = s.peak_bandwidth_Bps * (1 - Fraction(T.nRFC, T.nREFI))
    assert s.peak_bandwidth_Bps == 19_200_000_000
    assert abs(s.achieved_bandwidth_Bps / expected - 1) < Fraction(1, 100)
    assert s.achieved_bandwidth_Bps < expected  # refresh costs at least tRFC per tREFI
    assert s.row_hit_rate > 0.99


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_streams_between_the_refresh_tax_and_2_percent_below(name):
    preset = PRESETS[name]
    env, dram = make(preset)
    size = 64 * 1024
    run_at(env, dram, [(0, k * size, size, False) for k in range(64)])
    s = dram.stats()
    ceiling = s.peak_bandwidth_Bps * (1 - Fraction(preset.timing.nRFC, preset.timing.nREFI))
    assert ceiling * Fraction(98, 100) < s.achieved_bandwidth_Bps < ceiling


@pytest.mark.parametrize("name", ["lpddr4_3200", "lpddr5_6400", "hbm2"])
def test_per_bank_refresh_hides_refresh_from_a_stream(name):
    preset = PRESETS[name]
    env, dram = make(preset, refresh="per_bank")
    size = 64 * 1024
    run_at(env, dram, [(0, k * size, size, False) for k in range(64)])
    s = dram.stats()
    all_bank_ceiling = s.peak_bandwidth_Bps * (1 - Fraction(preset.timing.nRFC, preset.timing.nREFI))
    assert all_bank_ceiling < s.achieved_bandwidth_Bps <= s.peak_bandwidth_Bps
    assert s.refreshes > 0 and s.per_bank_refresh


def test_per_bank_refresh_due_on_an_idle_bank_delays_a_later_access():
    # LPDDR4, per-bank: bank 0 is refreshed at nREFIpb = 780 for nRFCpb = 224. A read to bank 0
    # arriving at 800 tCK finds it refreshing: ACT at 780 + 224 = 1004, data end 1004 + 29 + 28 + 8.
    t = LPDDR4_3200.timing
    env, dram = make(LPDDR4_3200, refresh="per_bank")
    (txn,) = run_at(env, dram, [(800 * 625, 0, 32, False)])
    assert txn.data_end_ps / t.tck_ps == 780 + 224 + t.nRCD + t.nCL + t.nBL


# -- turnaround -------------------------------------------------------------------------------
@pytest.mark.parametrize("write_bg, period", [(0, 10 + 25), (1, 10 + 19)])
def test_read_write_alternation_pays_the_turnaround(write_bg, period):
    # one open row; RD (bg0) and WR (bg0 or bg1) alternate. RD->WR = CL + nBL + 2 - CWL = 10;
    # WR->RD = CWL + nBL + tWTR_L = 25 (same bank group) or + tWTR_S = 19 (other bank group).
    env, dram = make(scheduler="fifo")
    pairs = 6
    reqs = []
    for k in range(pairs):
        reqs.append((0, addr(bg=0, co=2 * k), 64, False))
        reqs.append((0, addr(bg=write_bg, co=2 * k + 1), 64, True))
    txns = run_at(env, dram, reqs)
    last_write_cmd = 16 + (pairs - 1) * period + 10  # first RD command at tRCD = 16
    assert ck(txns[-1]) == last_write_cmd + T.nCWL + T.nBL
    # without turnaround the same 12 bursts in one bank group would stream at tCCD_L
    env2, dram2 = make(scheduler="fifo")
    reads = run_at(env2, dram2, [(0, addr(bg=0, co=k), 64, False) for k in range(2 * pairs)])
    assert ck(reads[-1]) == 16 + (2 * pairs - 1) * T.nCCDL + 20


# -- contention ------------------------------------------------------------------------------
def test_two_streams_share_the_bus_half_each_while_both_run():
    # A: 24 x 2 KiB from 0 (blocks ba0, ba1), B: 8 x 2 KiB in block ba2; issued alternately at t = 0.
    # Rows open once per bank and the ACTs are hidden, so the bus carries one 2 KiB segment (32 bursts x
    # 4 tCK) after another. FIFO alternates: B's 8th request is the 16th segment, so B ends at
    # 16 + (16*32 - 1)*4 + 20 = 2080 (half the bus while both run) and A at 16 + (32*32 - 1)*4 + 20 = 4128.
    # FR-FCFS serves A's row hits first (B is not yet open), so B ends later; the bus never idles either way.
    kib2 = 2048
    reqs = []
    for k in range(24):
        reqs.append((0, k * kib2, kib2, False))
        if k < 8:
            reqs.append((0, addr(ba=2) + k * kib2, kib2, False))
    ends = {}
    for sched in ("fifo", "frfcfs"):
        env, dram = make(scheduler=sched)
        txns = run_at(env, dram, reqs)
        ends[sched] = (
            max(ck(x) for x in txns if x.address >= addr(ba=2)),
            max(ck(x) for x in txns if x.address < addr(ba=2)),
        )
        assert dram.stats().row_hit_rate == Fraction(1024 - 12, 1024)  # 12 first touches (3 blocks x 4 banks)
    assert ends["fifo"] == (2080, 4128)
    assert ends["frfcfs"][1] == 4128 and ends["frfcfs"][0] > 2080


def test_fr_fcfs_serves_a_queued_row_hit_before_an_older_conflict():
    # X opens bank (bg0,ba0) row 0; Y wants row 1, Z row 0, all queued at t = 0.
    # FR-FCFS: X, Z (hit: tCCD_L after X -> cmd 22, end 42), Y (PRE 39, ACT 55 = tRC, cmd 71, end 91).
    # FIFO: X, Y (end 91), Z conflicts again: PRE = max(ACT 55 + tRAS, RD 71 + tRTP) = 94, ACT 110, end 146.
    reqs = [(0, addr(ro=0), 64, False), (0, addr(ro=1), 64, False), (0, addr(ro=0, co=1), 64, False)]
    ends = {}
    for sched, depth in (("frfcfs", 16), ("fifo", 16), ("frfcfs", 1)):
        env, dram = make(scheduler=sched, queue_depth=depth)
        txns = run_at(env, dram, reqs)
        ends[sched, depth] = [ck(x) for x in txns], dram.stats().row_conflicts
    assert ends["frfcfs", 16] == ([36, 91, 42], 1)
    assert ends["fifo", 16] == ([36, 91, 146], 2)
    assert ends["frfcfs", 1] == ends["fifo", 16]  # a queue of one segment cannot reorder


# -- counts, energy, statistics ---------------------------------------------------------------
def test_command_counts_of_a_hand_built_pattern():
    env, dram = make()
    row1 = addr(ro=1)
    run_at(env, dram, [(0, 0, 256, False), (10**6, 0, 64, False), (2 * 10**6, row1, 128, True)])
    s = dram.stats()
    # 256 B = 4 bursts over bg0..3 (4 ACT, empty); 64 B again: hit; 128 B write to row 1 of bg0, bg1:
    # 2 conflicts (2 PRE + 2 ACT)
    assert (s.activates, s.precharges, s.reads, s.writes, s.refreshes) == (6, 2, 5, 2, 0)
    assert (s.row_hits, s.row_empty, s.row_conflicts) == (1, 4, 2)
    assert (s.bytes_read, s.bytes_written) == (320, 128)
    later = dram.stats(until_ps=math.ceil(T.nREFI * TCK))  # the first REF is due: it closes the 4 open rows
    assert (later.refreshes, later.precharges) == (1, 6)
    assert later.refresh_busy_ps == T.nRFC * TCK
    energy = command_energy_j(later, DDR4_2400_X64.energy, DDR4_2400_X64.organization)
    assert energy["act_pre"] == pytest.approx(6 * 3.35e-9)
    assert energy["read"] == pytest.approx(5 * 2.94e-9) and energy["write"] == pytest.approx(2 * 2.56e-9)
    assert energy["refresh"] == pytest.approx(0.70e-6)
    assert energy["background"] == pytest.approx(0.413 * later.elapsed_ps / 1e12)
    d = later.to_dict()
    assert d["commands"] == {"ACT": 6, "PRE": 6, "RD": 5, "WR": 2, "REF": 1}
    assert d["peak_bandwidth_Bps"] == 19.2e9 and d["row_hit_rate"] == pytest.approx(1 / 7)


def test_missing_energy_coefficients_come_back_as_none_not_zero():
    env, dram = make(LPDDR4_3200)
    run_at(env, dram, [(0, 0, 64, False)])
    s = dram.stats(until_ps=10**7)  # 10 us: REFs are due, LPDDR4 has no REF energy
    energy = command_energy_j(s, LPDDR4_3200.energy, LPDDR4_3200.organization)
    assert s.refreshes > 0 and energy["refresh"] is None
    assert energy["read"] == pytest.approx(2 * 2.18e-9) and energy["write"] == 0.0


def test_events_are_per_segment_not_per_burst():
    def events(nbytes):
        env, dram = make()
        run_at(env, dram, [(0, 0, nbytes, False)])
        return env.events_processed

    # 128 KiB = 2048 bursts = 4 row blocks (segments), 1 MiB = 32; the 14336 extra bursts cost one
    # decision event per extra segment and nothing per burst
    assert events(1 << 20) - events(128 * 1024) == 32 - 4
    assert events(64) <= 8  # a lone burst: process starts and ends, the controller, one completion


def test_identical_runs_give_identical_results():
    def trace(sched):
        rng = random.Random(3)
        reqs = [
            (
                rng.randrange(0, 5 * 10**6),
                rng.randrange(0, 1 << 28) // 64 * 64 - rng.randrange(2) * 7,
                rng.choice([7, 64, 300, 4096, 70000]),
                rng.random() < 0.4,
            )
            for _ in range(150)
        ]
        reqs = [(t, max(a, 0), n, w) for t, a, n, w in reqs]
        env, dram = make(scheduler=sched)
        txns = run_at(env, dram, reqs)
        return [(x.data_start_ps, x.data_end_ps, x.done_ps) for x in txns], dram.stats().to_dict()

    assert trace("frfcfs") == trace("frfcfs")
    assert trace("fifo") == trace("fifo")


# -- configuration errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"address_map": "ro:ba:co:ch"}, "address_map", ["'bg'", "bank_groups = 4", "missing"]),
        ({"address_map": "ro:ba:rk:co:bg"}, "address_map", ["unknown field 'rk'", "allowed"]),
        ({"address_map": "ro:ba:co:bg:ba"}, "address_map", ["'ba' appears 2 times"]),
        ({"address_map": "co:ro:ba:bg"}, "address_map", ["'ro' must be more significant than 'co'"]),
        ({"scheduler": "lifo"}, "scheduler", ["frfcfs, fifo"]),
        ({"queue_depth": 0}, "queue_depth", [">= 1"]),
        ({"refresh": "per_bank"}, "refresh", ["DDR4", "no per-bank refresh"]),
        ({"refresh": "sometimes"}, "refresh", ["all_bank, per_bank"]),
    ],
)
def test_bad_configuration_is_a_clear_error(changes, field, words):
    with pytest.raises(DramConfigError) as err:
        make(**changes)
    fields = [f for f, _ in err.value.problems]
    assert field in fields
    message = str(err.value)
    for word in words:
        assert word in message


def test_all_problems_are_reported_at_once_and_requests_are_checked():
    config = BankedDramConfig(DDR4_2400_X64, address_map="ro:co", scheduler="x", queue_depth=-1)
    assert [f for f, _ in config.problems()] == ["address_map"] * 2 + ["scheduler", "queue_depth"]
    _env, dram = make()
    with pytest.raises(ValueError, match="exceeds the capacity"):
        dram.submit(DDR4_2400_X64.organization.capacity_bytes - 32, 64)
    with pytest.raises(ValueError, match="nbytes"):
        dram.submit(0, 0)


def test_interleaving_two_ranks_pays_the_rank_switch_on_every_burst():
    # a custom organisation: DDR4 with 2 ranks, ranks interleaved below the bank groups. Consecutive
    # bursts switch rank: spacing nBL + nCS = 6 tCK instead of 4 (Ramulator2 sibling-rank RD -> RD).
    two_ranks = dataclasses.replace(
        DDR4_2400_X64, organization=dataclasses.replace(DDR4_2400_X64.organization, ranks=2)
    )
    env, dram = make(two_ranks, address_map="ro:ba:co:bg:ra:ch")
    (txn,) = run_at(env, dram, [(0, 0, 512 * 64, False)])
    assert ck(txn) == 16 + 511 * (T.nBL + T.nCS) + 20 == 3102
    assert dram.stats().activates == 8  # 4 bank groups x 2 ranks
