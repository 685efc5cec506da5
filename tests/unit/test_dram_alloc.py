"""DRAM address allocator (archsim/sim/dram_alloc.py) and DRAM presets (archsim/sim/dram_presets.py)."""

from __future__ import annotations

import itertools
from dataclasses import fields
from fractions import Fraction

import pytest

from archsim.arch.dram_presets import DDR4_2400_X64, PRESETS, get_preset
from archsim.sim.dram_alloc import allocate
from archsim.sim.dram_banked import AddressMap

TENSORS = [
    ("x", 150_528, "activation"),
    ("w1", 864, "weights"),
    ("y1", 401_408, "activation"),
    ("w2", 5000, "weights"),
    ("y2", 1, "activation"),
]


def test_weights_then_activations_aligned_in_input_order():
    layout = allocate(TENSORS)
    assert list(layout) == ["w1", "w2", "x", "y1", "y2"]
    assert [(a.base, a.size) for a in layout.values()] == [
        (0, 864),
        (4096, 5000),  # w2 at the next 4 KiB after w1
        (1 << 20, 150_528),  # activations from the next 1 MiB boundary
        ((1 << 20) + 151_552, 401_408),  # 150528 rounded up to 4 KiB = 151552
        ((1 << 20) + 151_552 + 401_408, 1),  # 401408 is already a multiple of 4096
    ]
    ends = sorted((a.base, a.end) for a in layout.values())
    assert all(e <= b for (_, e), (b, _) in itertools.pairwise(ends))  # no two tensors overlap


def test_layout_is_deterministic_and_tensors_start_in_different_columns():
    assert allocate(TENSORS) == allocate(list(TENSORS))
    amap = AddressMap(DDR4_2400_X64.default_address_map, DDR4_2400_X64.organization)
    # 4 KiB-aligned tensors start in column 16*k of their row block: not all in the same place
    starts = {amap.decode(a.base)["co"] for a in allocate(TENSORS).values()}
    assert len(starts) > 1


@pytest.mark.parametrize(
    "tensors, message",
    [
        ([("a", 10, "weights"), ("a", 10, "activation")], "'a' is listed twice"),
        ([("a", 0, "weights")], "size 0"),
        ([("a", 10, "bias")], "kind 'bias'"),
    ],
)
def test_bad_tensors_are_named(tensors, message):
    with pytest.raises(ValueError, match=message):
        allocate(tensors)


def test_capacity_overflow_names_the_tensor():
    with pytest.raises(ValueError, match="'y1'.*beyond the DRAM capacity of 1048576 B"):
        allocate([("w1", 10, "weights"), ("y1", 10, "activation")], capacity=1 << 20)


# -- presets -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_value_has_a_tagged_source(name):
    preset = PRESETS[name]
    sources = dict(preset.sources)
    for part in (preset.organization, preset.timing, preset.energy):
        for f in fields(part):
            assert f.name in sources, f"{name}: {f.name} has no source"
            text = sources[f.name]
            assert text.startswith(("[S]", "[C]", "[I]", "[choice]", "missing")), (f.name, text)
            if getattr(part, f.name) is None and part is preset.energy:
                assert text.startswith("missing"), (f.name, text)
    assert set(preset.energy.missing()) == {f for f, t in sources.items() if t.startswith("missing")}


def test_preset_peaks_bursts_rows_and_refresh_tax():
    expected = {  # (peak B/s, burst B, row B, tRFC/tREFI)
        "ddr4_2400_x64": (19_200_000_000, 64, 8192, Fraction(420, 9360)),
        "lpddr4_3200": (12_800_000_000, 32, 2048, Fraction(448, 6246)),
        "lpddr5_6400": (12_800_000_000, 32, 2048, Fraction(168, 3124)),
        "hbm2": (256_000_000_000, 64, 1024, Fraction(260, 3900)),
    }
    for name, (peak, burst, row, tax) in expected.items():
        p = PRESETS[name]
        assert p.peak_bandwidth_bytes_per_s == peak
        assert (p.organization.burst_bytes, p.organization.row_bytes) == (burst, row)
        assert Fraction(p.timing.nRFC, p.timing.nREFI) == tax
        assert p.timing.nRC >= p.timing.nRAS + p.timing.nRP  # LPDDR5 preset quirk (tRC < tRAS) corrected
    assert float(Fraction(420, 9360)) == pytest.approx(0.045, abs=5e-4)  # the reference's 4.5 %
    assert DDR4_2400_X64.timing.tck_ps * 1200 == 10**6  # 1200 MHz exactly
    assert DDR4_2400_X64.organization.capacity_bytes == 8 << 30  # 8 x 8 Gb


def test_default_map_interleaves_bursts_over_channels_then_bank_groups():
    lp4 = PRESETS["lpddr4_3200"]
    amap = AddressMap(lp4.default_address_map, lp4.organization)
    assert [amap.decode(32 * k)["ch"] for k in range(4)] == [0, 1, 0, 1]
    ddr4 = AddressMap(DDR4_2400_X64.default_address_map, DDR4_2400_X64.organization)
    assert [ddr4.decode(64 * k)["bg"] for k in range(5)] == [0, 1, 2, 3, 0]
    assert ddr4.decode(256) == {"ro": 0, "ra": 0, "bg": 0, "ba": 0, "ch": 0, "co": 1}
    assert ddr4.decode(32 * 1024)["ba"] == 1 and ddr4.decode(128 * 1024)["ro"] == 1
    assert ddr4.encode(ro=1, ba=2, co=3, bg=1) == ((1 * 4 + 2) * 128 + 3) * 4 * 64 + 64


def test_unknown_preset_lists_the_allowed_names():
    with pytest.raises(ValueError, match="ddr4_2400_x64, hbm2, lpddr4_3200, lpddr5_6400"):
        get_preset("ddr3")
