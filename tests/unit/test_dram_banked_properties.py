"""Property tests of the banked DRAM over random small traces and configurations (hypothesis)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from archsim.arch.dram_presets import PRESETS
from archsim.sim.dram_banked import BankedDram, BankedDramConfig, _Controller
from archsim.sim.kernel import CountingEnvironment

REQUEST = st.tuples(
    st.one_of(
        st.integers(0, 40_000), st.integers(0, 40_000_000)
    ),  # request time, ps: bunched or spread over refreshes
    st.integers(0, 1 << 20),  # start address: 1 MiB, so rows collide
    st.integers(1, 9000),  # bytes
    st.booleans(),  # write
)


@st.composite
def configs(draw):
    preset = PRESETS[draw(st.sampled_from(sorted(PRESETS)))]
    modes = ["all_bank", "per_bank"] if preset.timing.per_bank_refresh else ["all_bank"]
    refresh = draw(st.sampled_from(modes))
    return BankedDramConfig(
        preset,
        scheduler=draw(st.sampled_from(["frfcfs", "fifo"])),
        queue_depth=draw(st.integers(1, 8)),
        refresh=refresh,
    )


def simulate(config, requests):
    env = CountingEnvironment()
    dram = BankedDram(env, config)
    txns = [None] * len(requests)

    def issue(i, at, address, nbytes, write):
        yield env.timeout(at)
        txns[i] = yield env.process(dram.transfer(address, nbytes, write))

    for i, req in enumerate(requests):
        env.process(issue(i, *req))
    env.run()
    return dram, txns


@settings(max_examples=60, deadline=None)
@given(configs(), st.lists(REQUEST, min_size=1, max_size=25))
def test_bounds_and_conservation_hold_for_any_trace(config, requests):
    dram, txns = simulate(config, requests)
    org, t = config.preset.organization, config.preset.timing
    s = dram.stats()
    # achieved bandwidth never exceeds peak: the buses carried data at most elapsed x channels
    assert s.bus_busy_ps <= s.elapsed_ps * org.channels
    assert s.achieved_bandwidth_Bps <= s.peak_bandwidth_Bps
    # every burst is one column command, classified once
    bursts = sum(x.bursts for x in txns)
    assert s.reads + s.writes == bursts == s.row_hits + s.row_empty + s.row_conflicts
    assert s.bytes_read + s.bytes_written == bursts * org.burst_bytes
    assert s.activates == s.row_empty + s.row_conflicts
    assert s.precharges <= s.activates
    for x in txns:
        latency = t.nCWL if x.write else t.nCL
        assert x.data_start_ps >= x.submit_ps + latency * t.tck_ps  # no access beats its CAS latency
        busiest = math.ceil(x.bursts / org.channels)  # some channel carries at least this many bursts
        assert x.data_end_ps - x.data_start_ps >= busiest * t.nBL * t.tck_ps
        assert x.done_ps == math.ceil(x.data_end_ps)


@settings(max_examples=30, deadline=None)
@given(st.lists(REQUEST, min_size=2, max_size=20), st.integers(1, 8))
def test_fifo_on_one_channel_serves_transactions_in_arrival_order(requests, depth):
    config = BankedDramConfig(PRESETS["ddr4_2400_x64"], scheduler="fifo", queue_depth=depth)
    _, txns = simulate(config, requests)
    order = sorted(range(len(txns)), key=lambda i: (txns[i].submit_ps, i))
    for a, b in itertools.pairwise(order):
        assert txns[b].data_start_ps >= txns[a].data_end_ps


@settings(max_examples=20, deadline=None)
@given(configs(), st.lists(REQUEST, min_size=1, max_size=15))
def test_identical_inputs_give_identical_outputs(config, requests):
    def run():
        dram, txns = simulate(config, requests)
        return [(x.data_start_ps, x.data_end_ps, x.done_ps) for x in txns], dram.stats()

    assert run() == run()


@settings(max_examples=60, deadline=None)
@given(configs(), st.lists(REQUEST, min_size=1, max_size=25))
def test_committed_commands_respect_bus_tccd_trrd_and_tfaw(config, requests):
    """Every timed piece, as committed: data never overlap on a channel's bus, column commands keep
    tCCD_S, a rank's ACTs are ordered and keep tRRD_S and tFAW."""
    t = config.preset.timing
    log = []
    original = _Controller._commit

    def spy(self, seg, p0, c0, s, m, n, banks):
        lat = t.nCWL if seg.write else t.nCL
        acts = [(r, act) for j, _b, _g, r, _k, act in banks if j < n and act is not None]
        log.append((self.path, c0, c0 + (n - 1) * s, c0 + lat, c0 + (n - 1) * s + lat + t.nBL, acts))
        return original(self, seg, p0, c0, s, m, n, banks)

    _Controller._commit = spy
    try:
        simulate(config, requests)
    finally:
        _Controller._commit = original
    last, act_times = {}, {}
    for path, first_cmd, last_cmd, data_start, data_end, acts in log:
        if path in last:
            prev_cmd, prev_end = last[path]
            assert data_start >= prev_end
            assert first_cmd >= prev_cmd + t.nCCDS
        last[path] = (last_cmd, data_end)
        for r, act in acts:
            seq = act_times.setdefault((path, r), [])
            if seq:
                assert act >= seq[-1] + t.nRRDS
            if len(seq) >= 4:
                assert act >= seq[-4] + t.nFAW
            seq.append(act)
