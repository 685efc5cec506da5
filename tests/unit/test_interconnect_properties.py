"""Property tests of the interconnect over random topologies, placements and transfers (hypothesis)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from archsim.sim.channel import Channel
from archsim.sim.interconnect import InterconnectConfig, Network

PERIOD = 1000  # ps


@st.composite
def networks(draw):
    topology = draw(st.sampled_from(["bus", "crossbar", "mesh", "ring"]))
    count = draw(st.integers(2, 6))
    names = [f"n{i}" for i in range(count)]
    if topology == "bus":
        shape, places = (), [None] * count
    elif topology == "crossbar":
        ports = draw(st.integers(count, count + 2))
        shape, places = (ports,), draw(st.permutations(range(ports)))[:count]
    elif topology == "mesh":
        shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        places = [(draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1))) for _ in names]
    else:
        shape = (draw(st.integers(3, 7)),)
        places = [draw(st.integers(0, shape[0] - 1)) for _ in names]
    bw = draw(st.sampled_from([1, 3, 16, 64, Fraction(5, 2)]))
    hop = draw(st.integers(0, 3))
    return topology, dict(zip(names, places)), bw, hop, shape


@st.composite
def transfers(draw, names):
    src = draw(st.sampled_from(names))
    others = [n for n in names if n != src]
    dsts = draw(st.lists(st.sampled_from(others), min_size=1, max_size=min(3, len(others)), unique=True))
    earliest = draw(st.integers(0, 300_000))
    nbytes = draw(st.integers(1, 20_000))
    upstream = None
    if draw(st.booleans()):
        start = draw(st.integers(0, 300_000))
        upstream = (Fraction(start), Fraction(start) + Fraction(draw(st.integers(0, 2_000_000)), 3))
    return earliest, src, dsts, nbytes, upstream


@st.composite
def scenarios(draw):
    net = draw(networks())
    seq = draw(st.lists(transfers(sorted(net[1])), min_size=1, max_size=20))
    return net, seq


def build(topology, nodes, bw, hop, shape):
    return Network(InterconnectConfig(topology, nodes, bw, hop, shape, 0.5e-12, 1e-12), PERIOD)


def run(params, seq):
    net = build(*params)
    return net, [net.reserve(*t) for t in seq]


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_latency_is_never_below_hops_times_latency_plus_bytes_over_bandwidth(scenario):
    params, seq = scenario
    net, results = run(params, seq)
    for (earliest, _, _, nbytes, upstream), r in zip(seq, results):
        t0 = earliest if upstream is None else max(earliest, upstream[0])
        for d in r.deliveries:
            head = t0 + d.hops * net.hop_ps
            assert d.start >= head
            assert d.end >= head + nbytes / net.bytes_per_ps
            if upstream is not None:
                # cut-through: never before the upstream tail
                assert d.end >= upstream[1] + d.hops * net.hop_ps


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_each_resource_carries_one_transfer_at_a_time_and_never_beats_its_bandwidth(scenario):
    params, seq = scenario
    net, results = run(params, seq)
    last_end: dict[str, Fraction] = {}
    for (_, _, _, nbytes, _), r in zip(seq, results):
        names = [name for name, _, _ in r.segments]
        assert len(names) == len(set(names))  # a tree holds each resource once
        for name, start, end in r.segments:
            assert start >= last_end.get(name, 0)  # FIFO: no overlap with the previous holder
            assert end - start >= nbytes / net.bytes_per_ps
            last_end[name] = end
    elapsed = max(r.end for r in results)
    for s in net.link_stats():
        assert s.busy_ps <= s.held_ps <= elapsed


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.sampled_from([2, 3, Fraction(3, 2)]))
def test_more_bandwidth_never_makes_any_delivery_later(scenario, factor):
    params, seq = scenario
    topology, nodes, bw, hop, shape = params
    _, slow = run(params, seq)
    _, fast = run((topology, nodes, bw * factor, hop, shape), seq)
    for a, b in zip(slow, fast):
        for da, db in zip(a.deliveries, b.deliveries):
            assert db.start <= da.start and db.end <= da.end


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_a_multicast_costs_the_union_of_its_unicast_routes_once(scenario):
    params, seq = scenario
    net = build(*params)
    for _, src, dsts, nbytes, _ in seq:
        routes = [net.route(src, d) for d in dsts]
        union = {name for route in routes for name in route}
        links = {name for name in union if "->" in name}
        r = net.reserve(0, src, dsts, nbytes)
        assert {name for name, _, _ in r.segments} == union
        assert r.link_hops == len(links) <= sum(net.hops(src, d) for d in dsts)
        assert r.byte_hops == nbytes * len(links)
        assert r.bus_bytes == nbytes * {"bus": 1, "crossbar": len(dsts)}.get(params[0], 0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 100_000),
            st.integers(1, 9000),
            st.booleans(),
            st.integers(0, 100_000),
            st.integers(0, 500_000),
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([1, 7, 128, Fraction(9, 4)]),
    st.integers(0, 4),
)
def test_a_bus_is_the_single_channel(requests, bw, hop):
    net = build("bus", {"dram": None, "buf": None}, bw, hop, ())
    channel = Channel("noc", Fraction(bw) / PERIOD, hop * PERIOD)
    for earliest, nbytes, chained, up_start, up_len in requests:
        upstream = (Fraction(up_start), Fraction(up_start + up_len)) if chained else None
        start = earliest if upstream is None else max(earliest, upstream[0])
        expected = channel.reserve(Fraction(start), nbytes, None if upstream is None else upstream[1])
        r = net.reserve(earliest, "dram", "buf", nbytes, upstream)
        assert (r.start, r.end) == expected
