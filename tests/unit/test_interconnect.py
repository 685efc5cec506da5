"""Interconnect topologies (archsim/sim/interconnect.py): every number below is derived by hand.

Unless a test says otherwise: 1 GHz clock (period 1000 ps), 64 B/cycle links, 2 cycles per hop
(t = 2000 ps), 0.5 pJ per byte-hop; 6400 B take D = 6400 / 64 = 100 cycles = 100 000 ps on a link.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from archsim.sim.channel import Channel
from archsim.sim.interconnect import (
    PRESETS,
    InterconnectConfig,
    InterconnectConfigError,
    InterconnectError,
    Network,
)

PERIOD = 1000  # ps
BW = 64  # B/cycle
HOP = 2  # cycles
T = HOP * PERIOD  # 2000 ps per hop
E_HOP = 0.5e-12  # J/B per hop
E_BUS = 1.0e-12  # J/B
D = 100_000  # ps: 6400 B at 64 B/cycle


def mesh(nodes, shape=(4, 4), bw=BW, hop=HOP):
    return Network(InterconnectConfig("mesh", nodes, bw, hop, shape, energy_per_byte_hop_j=E_HOP), PERIOD)


def crossbar(nodes, ports=4):
    config = InterconnectConfig("crossbar", nodes, BW, HOP, (ports,), energy_per_byte_bus_j=E_BUS)
    return Network(config, PERIOD)


def bus(names, bw=BW, hop=HOP):
    config = InterconnectConfig("bus", {n: None for n in names}, bw, hop, energy_per_byte_bus_j=E_BUS)
    return Network(config, PERIOD)


# ---- mesh: one transfer ------------------------------------------------------------------


def test_mesh_transfer_latency_and_energy_equal_the_formula():
    net = mesh({"dram": (0, 0), "mpma": (2, 3)})
    # XY: along row 0 to column 3 (3 links), then down column 3 to row 2 (2 links): 5 hops
    assert net.route("dram", "mpma") == (
        "dram.out",
        "(0,0)->(0,1)",
        "(0,1)->(0,2)",
        "(0,2)->(0,3)",
        "(0,3)->(1,3)",
        "(1,3)->(2,3)",
        "mpma.in",
    )
    assert net.hops("dram", "mpma") == 5
    r = net.reserve(1234, "dram", "mpma", 6400)
    d = r.delivery("mpma")
    # latency = hops x hop latency + bytes / bandwidth = 5 x 2000 + 100 000 ps
    assert (d.hops, d.start, d.end) == (5, 1234 + 10_000, 1234 + 110_000)
    # energy = bytes x hops x E = 6400 x 5 x 0.5 pJ = 16 nJ
    assert (r.link_hops, r.byte_hops, r.bus_bytes) == (5, 32_000, 0)
    assert net.energy_j(r) == pytest.approx(16e-9, rel=1e-12)


def test_mesh_transfer_with_a_fractional_serialisation_is_exact():
    net = mesh({"dram": (0, 0), "mpma": (2, 3)})
    # 100 B at 64 B/cycle: 100/64 cycles = 1562.5 ps, never rounded
    assert net.reserve(0, "dram", "mpma", 100).end == 10_000 + Fraction(3125, 2)


def test_nodes_on_one_router_are_zero_hops_apart():
    net = mesh({"act_buffer": (1, 1), "mpma": (1, 1)})
    assert net.route("act_buffer", "mpma") == ("act_buffer.out", "mpma.in")
    r = net.reserve(0, "act_buffer", "mpma", 6400)
    assert (r.end, r.link_hops, net.energy_j(r)) == (D, 0, 0.0)


# ---- mesh: contention --------------------------------------------------------------------


def test_transfers_on_disjoint_routes_run_concurrently():
    net = mesh({"a0": (0, 0), "a2": (0, 2), "x0": (1, 0), "x2": (1, 2)})
    first = net.reserve(0, "a0", "a2", 6400)
    second = net.reserve(0, "x0", "x2", 6400)
    assert first.end == second.end == 2 * T + D == 104_000


def test_transfers_sharing_a_link_serialise_and_a_waiting_head_holds_its_route():
    net = mesh({"a0": (0, 0), "a2": (0, 2), "b1": (0, 1), "b3": (0, 3), "c": (1, 1)})
    a = net.reserve(0, "a0", "a2", 6400)  # links (0,0)->(0,1), (0,1)->(0,2)
    assert a.end == 2 * T + D == 104_000
    # B's route (0,1)->(0,2)->(0,3) shares (0,1)->(0,2) with A, whose tail leaves it at D + 2t = 104 000;
    # B's head takes it then and needs one more hop: data at b3 over [106 000, 206 000]
    b = net.reserve(0, "b1", "b3", 6400)
    assert (b.delivery("b3").start, b.end) == (104_000 + T, 104_000 + T + D)
    # meanwhile B's worm holds its injection port b1.out: its body leaves b1 at 102 000 (the shared
    # link minus one hop) and its tail at 202 000, so C from b1 (down column 1, free) starts after that
    c = net.reserve(0, "b1", "c", 6400)
    assert (c.delivery("c").start, c.end) == (202_000 + T, 202_000 + T + D)
    held = {s.name: s.held_ps for s in net.link_stats()}
    assert held["b1.out"] == 202_000 + (302_000 - 202_000)  # B: [0, 202 000], C: [202 000, 302 000]
    # the shared link: A over [2t, 104 000], B over [104 000, 204 000] (it leads B's route: off = t)
    assert held["(0,1)->(0,2)"] == (104_000 - 2 * T) + (204_000 - 104_000)


def test_link_statistics_count_bytes_and_busy_time_per_link():
    net = mesh({"dram": (0, 0), "mpma": (0, 1), "sat": (1, 1)})
    net.reserve(0, "dram", "mpma", 6400)
    net.reserve(0, "dram", "sat", 3200)
    stats = {s.name: s for s in net.link_stats(used_only=True)}
    assert list(stats) == ["dram.out", "mpma.in", "sat.in", "(0,0)->(0,1)", "(0,1)->(1,1)"]
    shared = stats["(0,0)->(0,1)"]
    assert (shared.bytes, shared.transfers, shared.busy_ps) == (9600, 2, 150_000)  # 9600 / 64 cycles
    assert stats["(0,1)->(1,1)"].bytes == 3200
    assert all(s.held_ps >= s.busy_ps for s in stats.values())
    assert (net.transfers, net.bytes, net.byte_hops) == (2, 9600, 6400 * 1 + 3200 * 2)


# ---- crossbar and bus --------------------------------------------------------------------

XBAR = {"dram": 0, "a": 1, "b": 2, "c": 3}


def test_crossbar_lets_disjoint_pairs_run_concurrently():
    net = crossbar(XBAR)
    assert net.route("dram", "a") == ("dram.out", "a.in")
    first = net.reserve(0, "dram", "a", 6400)
    second = net.reserve(0, "b", "c", 6400)
    assert first.end == second.end == T + D  # one hop each
    assert (first.bus_bytes, first.byte_hops, net.energy_j(first)) == (6400, 0, 6400 * E_BUS)


@pytest.mark.parametrize("second", [("b", "a"), ("dram", "b")], ids=["shared destination", "shared source"])
def test_crossbar_serialises_a_shared_port(second):
    net = crossbar(XBAR)
    net.reserve(0, "dram", "a", 6400)
    r = net.reserve(0, *second, 6400)
    # the second waits for the first to release the shared port (t + D), then streams: t + 2D
    assert (r.start, r.end) == (T + D, T + 2 * D)


def test_bus_serialises_everything():
    net = bus(["dram", "a", "b", "c"])
    ends = [net.reserve(0, src, dst, 6400).end for src, dst in (("dram", "a"), ("b", "c"), ("c", "dram"))]
    assert ends == [T + D, T + 2 * D, T + 3 * D]
    assert (net.bus_bytes, net.byte_hops, net.energy_j()) == (3 * 6400, 0, 3 * 6400 * E_BUS)


def test_bus_reproduces_the_single_channel_exactly():
    """The default topology keeps today's link: same start and end as archsim/sim/channel.Channel."""
    net = bus(["dram", "buf"], bw=128, hop=2)
    channel = Channel("noc", Fraction(128, PERIOD), 2 * PERIOD)
    requests = [
        (0, 4096, None),
        (0, 100, (Fraction(7, 3), Fraction(90_001, 7))),
        (50_000, 64, None),
        (51_000, 9000, (Fraction(60_000), Fraction(400_000))),
    ]
    for earliest, nbytes, upstream in requests:
        start = earliest if upstream is None else max(earliest, upstream[0])
        expected = channel.reserve(start, nbytes, None if upstream is None else upstream[1])
        r = net.reserve(earliest, "dram", "buf", nbytes, upstream)
        assert (r.start, r.end) == expected


# ---- multicast ---------------------------------------------------------------------------


def test_multicast_counts_each_tree_link_once():
    net = mesh({"dram": (0, 0), "a": (0, 3), "b": (2, 3), "c": (3, 0)})
    r = net.reserve(0, "dram", ["a", "b", "c"], 6400)
    # XY tree: row 0 to column 3 (3 links, shared by a and b), column 3 down to row 2 (2), column 0
    # down to row 3 (3): 8 links, not the 3 + 5 + 3 = 11 of three unicasts
    assert r.link_hops == 8
    assert sum(net.hops("dram", d) for d in "abc") == 11
    assert net.energy_j(r) == pytest.approx(6400 * 8 * 0.5e-12, rel=1e-12)  # 25.6 nJ
    # idle network: each destination gets the data over [hops x t, hops x t + D]
    assert [(d.node, d.hops, d.start, d.end) for d in r.deliveries] == [
        ("a", 3, 3 * T, 3 * T + D),
        ("b", 5, 5 * T, 5 * T + D),
        ("c", 3, 3 * T, 3 * T + D),
    ]
    carried = {s.name: s.bytes for s in net.link_stats(used_only=True) if s.kind == "link"}
    assert len(carried) == 8 and set(carried.values()) == {6400}


def test_multicast_to_two_nodes_on_one_router_shares_every_link():
    net = mesh({"dram": (0, 0), "a": (2, 3), "b": (2, 3)})
    r = net.reserve(0, "dram", ["a", "b"], 6400)
    assert (r.link_hops, [d.end for d in r.deliveries]) == (5, [5 * T + D, 5 * T + D])


def test_a_stalled_branch_holds_the_whole_multicast_tree():
    net = mesh({"dram": (0, 0), "a": (0, 1), "b": (1, 0), "x": (1, 1)})
    net.reserve(0, "x", "b", 6400)  # (1,1)->(1,0): tail leaves at t + D = 102 000
    r = net.reserve(0, "dram", ["a", "b"], 6400)
    # branch b: head at (0,0)->(1,0) at t, at b.in at t (ejection has no latency) but b.in is held by
    # x's transfer until t + D; the body leaves the source at D, so a's data end at D + t + D too
    assert [(d.start, d.end) for d in r.deliveries] == [(T, T + 2 * D), (T + D, T + 2 * D)]


def test_crossbar_and_bus_multicast_energy():
    xbar = crossbar(XBAR)
    r = xbar.reserve(0, "dram", ["a", "b", "c"], 6400)
    assert (r.bus_crossings, r.bus_bytes, r.end) == (3, 3 * 6400, T + D)  # one traversal per output port
    one = bus(["dram", "a", "b", "c"])
    r = one.reserve(0, "dram", ["a", "b", "c"], 6400)
    assert (r.bus_crossings, r.bus_bytes, r.end) == (1, 6400, T + D)  # a bus broadcasts once


# ---- cut-through with the DRAM leg -------------------------------------------------------


def dram_channel():
    # DDR4-2400 x64: 19.2 GB/s = 12/625 B/ps, 60 ns latency (the test fixture's DRAM)
    return Channel("dram", Fraction(12, 625), 60_000)


def test_read_chain_finishes_at_the_dram_end_plus_the_mesh_hops():
    dram, net = dram_channel(), mesh({"dram": (0, 0), "mpma": (2, 3)})
    up = dram.reserve(Fraction(0), 6400)
    assert up == (60_000, 60_000 + Fraction(1_000_000, 3))  # 6400 B x 625/12 ps/B
    r = net.reserve(0, "dram", "mpma", 6400, upstream=up)
    # the mesh (0.064 B/ps) is faster than DRAM: head at DRAM start + 5t, tail at DRAM end + 5t
    assert (r.start, r.end) == (60_000 + 5 * T, Fraction(1_180_000, 3) + 5 * T)


def test_read_chain_through_a_slower_mesh_is_bound_by_the_mesh():
    dram, net = dram_channel(), mesh({"dram": (0, 0), "mpma": (2, 3)}, bw=4)
    r = net.reserve(0, "dram", "mpma", 6400, upstream=dram.reserve(Fraction(0), 6400))
    assert r.end == 60_000 + 5 * T + 1_600_000  # 6400 B at 4 B/cycle = 1600 cycles


def test_write_chain_hands_the_mesh_interval_to_dram():
    dram, net = dram_channel(), mesh({"dram": (0, 0), "mpma": (2, 3)})
    r = net.reserve(0, "mpma", "dram", 6400)
    d = r.delivery("dram")
    assert (d.start, d.end) == (5 * T, 5 * T + D)
    start, end = dram.reserve(d.start, 6400, d.end)
    assert (start, end) == (5 * T + 60_000, 5 * T + 60_000 + Fraction(1_000_000, 3))


# ---- ring --------------------------------------------------------------------------------


def test_ring_takes_the_shorter_way_and_a_tie_goes_clockwise():
    nodes = {"dram": 0, "a": 2, "b": 3, "c": 5}
    net = Network(InterconnectConfig("ring", nodes, BW, HOP, (6,), E_HOP), PERIOD)
    assert net.route("dram", "a") == ("dram.out", "0->1", "1->2", "a.in")
    assert net.route("dram", "b") == ("dram.out", "0->1", "1->2", "2->3", "b.in")  # 3 either way
    assert net.route("dram", "c") == ("dram.out", "0->5", "c.in")
    r = net.reserve(0, "dram", ["a", "c"], 6400)
    assert (r.link_hops, r.end) == (3, 2 * T + D)


# ---- presets, determinism, errors --------------------------------------------------------


def test_preset_asic28_bypass_prices_a_2x2_mesh_transfer():
    config = PRESETS["asic28_bypass"].config("mesh", {"dram": (0, 0), "mpma": (1, 1)}, 64, (2, 2))
    net = Network(config, 2000)  # 500 MHz
    r = net.reserve(0, "dram", "mpma", 1024)
    # 2 hops x 1 cycle x 2000 ps + 1024 / 64 = 16 cycles x 2000 ps; 1024 B x 2 hops x 0.5 pJ = 1.024 nJ
    assert r.end == 4000 + 32_000
    assert net.energy_j(r) == pytest.approx(1.024e-9, rel=1e-12)


def test_missing_energy_coefficient_gives_none_not_zero():
    net = Network(InterconnectConfig("mesh", {"dram": (0, 0), "mpma": (0, 1)}, BW, HOP, (1, 2)), PERIOD)
    r = net.reserve(0, "dram", "mpma", 64)
    assert net.energy_j(r) is None


def _load(net):
    out = []
    for i in range(40):
        src, dst = ("dram", "mpma") if i % 3 else ("sat", ["act", "dram"])
        out.append(
            net.reserve(
                i * 997,
                src,
                dst,
                64 + 977 * i,
                (Fraction(i * 1000, 3), Fraction(i * 9000 + 1, 7)) if i % 4 == 0 else None,
            )
        )
    return out, net.to_dict()


def test_identical_inputs_give_identical_outputs_in_any_node_order():
    nodes = {"dram": (0, 0), "mpma": (1, 2), "sat": (2, 1), "act": (0, 2)}
    shuffled = dict(reversed(list(nodes.items())))
    first = _load(mesh(nodes, shape=(3, 3)))
    assert _load(mesh(nodes, shape=(3, 3))) == first
    assert _load(mesh(shuffled, shape=(3, 3))) == first


def _problems(**kw):
    base = dict(
        topology="mesh",
        nodes={"dram": (0, 0)},
        link_bandwidth_bytes_per_cycle=BW,
        hop_latency_cycles=HOP,
        shape=(2, 2),
    )
    base.update(kw)
    with pytest.raises(InterconnectConfigError) as err:
        Network(InterconnectConfig(**base), PERIOD)
    return err.value


def test_a_node_off_the_mesh_is_an_error_naming_it():
    err = _problems(nodes={"dram": (0, 0), "mpma": (4, 0)})
    assert err.problems == [("nodes.mpma", "[4, 0] is off the 2 x 2 mesh (rows 0..1, cols 0..1)")]


def test_two_nodes_on_one_crossbar_port_is_an_error_naming_both():
    err = _problems(topology="crossbar", shape=(4,), nodes={"dram": 1, "act_buffer": 1})
    assert err.problems == [
        ("nodes.dram", "port 1 is already taken by node 'act_buffer' (one node per crossbar port)")
    ]


def test_every_configuration_problem_is_reported_at_once():
    err = _problems(
        topology="ring",
        shape=(2,),
        nodes={"dram": 0, "mpma": (1, 1)},
        link_bandwidth_bytes_per_cycle=0,
        hop_latency_cycles=1.5,
    )
    assert [name for name, _ in err.problems] == [
        "shape",
        "link_bandwidth_bytes_per_cycle",
        "hop_latency_cycles",
        "nodes.mpma",
    ]
    assert "ring" in str(err) and "routers >= 3" in str(err)
    assert _problems(topology="torus").problems == [
        ("topology", "'torus' is not one of bus, crossbar, mesh, ring")
    ]
    assert _problems(topology="bus", shape=(), nodes={"dram": 3}).problems == [
        ("nodes.dram", "position [3]: a bus has no positions (give null)")
    ]
    assert _problems(link_bandwidth_bytes_per_cycle=64.0).problems[0][0] == "link_bandwidth_bytes_per_cycle"


@pytest.mark.parametrize(
    "src, dsts, nbytes, message",
    [
        ("gpu", "mpma", 64, "unknown node 'gpu': the interconnect's nodes are dram, mpma"),
        ("dram", ["mpma", "tpu"], 64, "unknown node 'tpu'"),
        ("dram", ["mpma", "mpma"], 64, "destination 'mpma' is listed more than once"),
        ("dram", ["dram"], 64, "node 'dram' is both the source and a destination"),
        ("dram", [], 64, "needs at least one destination"),
        ("dram", "mpma", 0, "nbytes 0 must be a positive int"),
    ],
)
def test_bad_transfers_are_clear_errors(src, dsts, nbytes, message):
    net = mesh({"dram": (0, 0), "mpma": (1, 1)}, shape=(2, 2))
    with pytest.raises(InterconnectError, match=message):
        net.reserve(0, src, dsts, nbytes)
    assert net.transfers == 0 and all(s.transfers == 0 for s in net.link_stats())
