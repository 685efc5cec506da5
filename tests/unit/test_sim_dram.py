"""DRAM channel semantics: burst rounding, pipelined latency, FIFO serialisation (REQUIRED test)."""

from sim_fixtures import m2vit_spec

from archsim.sim.dma import Dma
from archsim.sim.dram import Dram
from archsim.sim.kernel import CountingEnvironment, seconds_to_ps
from archsim.sim.noc import Interconnect

SPEC = m2vit_spec()


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _bandwidth_and_latency():
    bw = SPEC.dram.peak_bandwidth_bytes_per_s
    assert bw == int(bw)  # the expression below uses exact integer arithmetic
    latency_ps = round(SPEC.dram.latency_s * 10**12)
    return int(bw), latency_ps


def _burst(n: int) -> int:
    return ceil_div(n, SPEC.dram.burst_bytes) * SPEC.dram.burst_bytes


def _run_streams(env, transfer, streams):
    """Each stream issues all its requests at t=0 (outstanding DMA requests), then waits."""
    finish = {}

    def stream(name, sizes):
        procs = [env.process(transfer(n)) for n in sizes]
        for p in procs:
            yield p
        finish[name] = env.now

    for name, sizes in streams.items():
        env.process(stream(name, sizes))
    env.run()
    return finish


def test_two_concurrent_streams_finish_at_latency_plus_total_over_bandwidth():
    env = CountingEnvironment()
    dram = Dram(env, SPEC.dram)
    streams = {"a": [1000, 3000, 64], "b": [640, 7]}
    finish = _run_streams(env, dram.transfer, streams)
    bw, latency_ps = _bandwidth_and_latency()
    total = sum(_burst(n) for sizes in streams.values() for n in sizes)
    # latency is pipelined (paid once), data serialise on one bus: L + ceil(total / bw)
    assert max(finish.values()) == latency_ps + ceil_div(total * 10**12, bw)
    assert dram.read_bytes == total


def test_single_transfer_rounds_to_bursts():
    env = CountingEnvironment()
    dram = Dram(env, SPEC.dram)
    finish = _run_streams(env, dram.transfer, {"a": [1]})
    bw, latency_ps = _bandwidth_and_latency()
    assert finish["a"] == latency_ps + ceil_div(SPEC.dram.burst_bytes * 10**12, bw)


def test_streams_through_dma_add_the_interconnect_latency_once():
    # interconnect (128 B/cycle @ 200 MHz = 25.6 GB/s) is faster than DRAM, so cut-through
    # only adds its head latency to the DRAM-bound finish time
    env = CountingEnvironment()
    dram = Dram(env, SPEC.dram)
    noc = Interconnect(env, SPEC.interconnect, SPEC.clock_period_ps)
    dma = Dma(env, dram, noc)
    streams = {"a": [4096, 100], "b": [2048]}
    finish = _run_streams(env, dma.transfer, streams)
    bw, latency_ps = _bandwidth_and_latency()
    total = sum(_burst(n) for sizes in streams.values() for n in sizes)
    noc_latency_ps = SPEC.interconnect.latency_cycles * SPEC.clock_period_ps
    assert max(finish.values()) == latency_ps + ceil_div(total * 10**12, bw) + noc_latency_ps


def test_seconds_to_ps_snaps_float_noise_and_rounds_up_otherwise():
    assert seconds_to_ps(60e-9) == 60000
    assert seconds_to_ps(1.0000005e-12) == 2
