"""DRAM organisation, timing and per-command energy presets for the banked DRAM model.

Every value carries its provenance in the preset's ``sources`` (tags as in docs/modelling.md:
[S] sourced, [C] computed from sourced inputs with the stated formula, [I] inferred or estimated,
[choice] an archsim default). Timings are integers in DRAM clock cycles (tCK), named as in
Ramulator2 (``nRCD`` = tRCD in cycles), so a value can be checked against its source at a glance.
Sources (all public):

- Ramulator2 DDR4: github.com/CMU-SAFARI/ramulator2 src/dram/impl/DDR4.cpp, preset ``DDR4_2400R``
  and its JEDEC JESD79-4C tables for nRRDS/nRRDL/nFAW by device width.
- Ramulator2 LPDDR5: src/dram/impl/LPDDR5.cpp, preset ``LPDDR5_6400``, organisation ``LPDDR5_8Gb_x16``,
  its tRFCab/tRFCpb tables (ns) and tREFI base 3906 ns.
- DRAMsim3 DDR4: github.com/umd-memsys/DRAMsim3 configs/DDR4_8Gb_x8_2400.ini (Micron MT40A1G8 IDDs).
- DRAMsim3 HBM2: configs/HBM2_8Gb_x128.ini (timing, organisation, IDDs); tRFCb is DRAMsim3's built-in
  default (src/configuration.cc, 20 tCK) because the .ini does not set it.
- DRAMPower LPDDR4: github.com/tukl-msd/DRAMPower memspecs/MICRON_6Gb_LPDDR4-3200_32bit_A.json.
- Per-command energies: Micron's method as used by DRAMPower/DRAMsim3, E = dI * V * t (IDD currents of
  the configs above); each entry states its formula and inputs. Energies are core energies unless
  ``io_included`` says otherwise (docs/modelling.md, "DRAM, transaction level").

A value the sources leave open is marked [I] or [choice] with the reason. Energies that no source
gives are ``None`` and listed by :meth:`DramEnergy.missing`: the energy model must report them as
not modelled, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction


@dataclass(frozen=True)
class DramOrganization:
    channels: int
    ranks: int  # per channel
    bank_groups: int  # per rank (1 where the standard has no bank groups)
    banks_per_group: int
    rows: int  # per bank
    columns: int  # per row, in device columns of ``bus_bits`` each across the channel
    bus_bits: int  # data-bus width of one channel
    burst_length: int  # beats per burst (BL)

    @property
    def burst_bytes(self) -> int:
        """Bytes one column command moves: bus width x burst length."""
        return self.bus_bits * self.burst_length // 8

    @property
    def bursts_per_row(self) -> int:
        return self.columns // self.burst_length

    @property
    def row_bytes(self) -> int:
        return self.columns * self.bus_bits // 8

    @property
    def banks_per_rank(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def capacity_bytes(self) -> int:
        return self.channels * self.ranks * self.banks_per_rank * self.rows * self.row_bytes


@dataclass(frozen=True)
class DramTiming:
    """Timing constraints in tCK (integers); ``tck_ps`` is exact (DDR4-2400: 2500/3 ps)."""

    tck_ps: Fraction
    nBL: int  # data-bus cycles of one burst
    nCL: int  # read latency, column command -> first data (RL)
    nCWL: int  # write latency (WL)
    nRCD: int  # ACT -> column command
    nRP: int  # PRE (one bank) -> ACT
    nRPab: int  # PRE all banks -> REF / ACT
    nRAS: int  # ACT -> PRE, same bank
    nRC: int  # ACT -> ACT, same bank
    nCCDS: int  # column -> column, different bank group
    nCCDL: int  # column -> column, same bank group
    nRRDS: int  # ACT -> ACT, different bank group
    nRRDL: int  # ACT -> ACT, same bank group
    nFAW: int  # window holding at most 4 ACTs per rank
    nWTRS: int  # end of write data -> RD, different bank group
    nWTRL: int  # end of write data -> RD, same bank group
    nWR: int  # end of write data -> PRE (write recovery)
    nRTP: int  # RD -> PRE
    nCS: int  # extra bus cycles when consecutive column commands go to different ranks
    nRFC: int  # all-bank refresh duration
    nREFI: int  # all-bank refresh interval
    nRFCpb: int | None = None  # per-bank refresh duration (None: the standard has no per-bank refresh)
    nREFIpb: int | None = None  # interval between per-bank refresh commands (to successive banks)

    @property
    def per_bank_refresh(self) -> bool:
        return self.nRFCpb is not None and self.nREFIpb is not None


@dataclass(frozen=True)
class DramEnergy:
    """Per-command energy; ``None`` = not available from any source (see ``missing``)."""

    act_pre_j: float | None  # one ACT + its PRE
    read_burst_j: float | None  # one RD burst (burst_bytes)
    write_burst_j: float | None  # one WR burst
    refresh_j: float | None  # one all-bank REF of a rank
    background_w: float | None  # active-standby power of one ``background_scope``
    background_scope: str  # "rank" or "channel"
    io_included: bool  # whether RD/WR include I/O (VDDQ/termination) energy

    def missing(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is None)


@dataclass(frozen=True)
class DramPreset:
    name: str
    standard: str
    organization: DramOrganization
    timing: DramTiming
    energy: DramEnergy
    default_address_map: str  # most significant field first (see archsim/sim/dram_banked.py)
    sources: tuple[tuple[str, str], ...]  # (field, provenance) for every field of the three parts

    @property
    def peak_bandwidth_bytes_per_s(self) -> Fraction:
        """channels x burst bytes per nBL cycles: exact (DDR4-2400 x64: 19.2e9 B/s)."""
        org, t = self.organization, self.timing
        return Fraction(org.channels * org.burst_bytes * 10**12) / (t.nBL * t.tck_ps)

    def source(self, field: str) -> str:
        return dict(self.sources)[field]


def _sources(**entries: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(entries.items()))


_R2_DDR4 = "[S] Ramulator2 DDR4.cpp preset DDR4_2400R"
_R2_DDR4_X8 = "[S] Ramulator2 DDR4.cpp JEDEC JESD79-4C table, x8 at 2400"
_DS3_DDR4 = "[S] DRAMsim3 DDR4_8Gb_x8_2400.ini (Micron MT40A1G8)"
_REF_DDR4 = "[C] Micron method dI*V*t on DRAMsim3 DDR4_8Gb_x8_2400.ini IDDs, 8 x8 chips"

DDR4_2400_X64 = DramPreset(
    name="ddr4_2400_x64",
    standard="DDR4",
    organization=DramOrganization(
        channels=1,
        ranks=1,
        bank_groups=4,
        banks_per_group=4,
        rows=65536,
        columns=1024,
        bus_bits=64,
        burst_length=8,
    ),
    timing=DramTiming(
        tck_ps=Fraction(10**6, 1200),
        nBL=4,
        nCL=16,
        nCWL=12,
        nRCD=16,
        nRP=16,
        nRPab=16,
        nRAS=39,
        nRC=55,
        nCCDS=4,
        nCCDL=6,
        nRRDS=4,
        nRRDL=6,
        nFAW=26,
        nWTRS=3,
        nWTRL=9,
        nWR=18,
        nRTP=9,
        nCS=2,
        nRFC=420,
        nREFI=9360,
    ),
    energy=DramEnergy(
        act_pre_j=3.35e-9,
        read_burst_j=2.94e-9,
        write_burst_j=2.56e-9,
        refresh_j=0.70e-6,
        background_w=0.413,
        background_scope="rank",
        io_included=False,
    ),
    default_address_map="ro:ba:ra:co:bg:ch",
    sources=_sources(
        channels="[choice] one x64 channel (ZCU102 PS DDR4 class: 64-bit, DDR4-2400)",
        ranks="[choice] one rank of 8 x8 chips (the DDR4-2400 x64 configuration of issue 10)",
        bank_groups=_DS3_DDR4 + " (bankgroups = 4)",
        banks_per_group=_DS3_DDR4 + " (banks_per_group = 4)",
        rows=_DS3_DDR4 + " (rows = 65536)",
        columns=_DS3_DDR4 + " (columns = 1024)",
        bus_bits="[S] 8 chips x device_width 8 (DRAMsim3 bus_width = 64)",
        burst_length=_DS3_DDR4 + " (BL = 8)",
        tck_ps="[C] 2400 MT/s, DDR: tCK = 1 / 1200 MHz = 833.33 ps (exact 2500/3)",
        nBL="[C] BL8 on a DDR bus = 4 tCK (Ramulator2 nBL = 4)",
        nCL=_R2_DDR4,
        nCWL=_R2_DDR4 + " (DRAMsim3 uses 16; 12 is JEDEC CWL for 1 tCK preamble)",
        nRCD=_R2_DDR4,
        nRP=_R2_DDR4,
        nRPab="[S] DDR4 PREA uses tRP (Ramulator2 PREA -> ACT = nRP)",
        nRAS=_R2_DDR4,
        nRC=_R2_DDR4,
        nCCDS=_R2_DDR4,
        nCCDL=_R2_DDR4,
        nRRDS=_R2_DDR4_X8,
        nRRDL=_R2_DDR4_X8,
        nFAW=_R2_DDR4_X8,
        nWTRS=_R2_DDR4,
        nWTRL=_R2_DDR4,
        nWR=_R2_DDR4,
        nRTP=_R2_DDR4,
        nCS=_R2_DDR4 + " (rank-switch cycles; unused with one rank)",
        nRFC=_DS3_DDR4 + " (tRFC = 420 = 350 ns, 8 Gb)",
        nREFI="[C] tREFI 7.8 us (JEDEC, <= 85 C) x 1.2 GHz = 9360 (DRAMsim3 rounds to 9364)",
        nRFCpb="[S] none: JESD79-4 DDR4 has all-bank refresh only",
        nREFIpb="[S] none (as nRFCpb)",
        act_pre_j=_REF_DDR4 + ": (IDD0*tRC - IDD3N*tRAS - IDD2N*(tRC-tRAS)) * VDD = 3.35 nJ",
        read_burst_j=_REF_DDR4 + ": (IDD4R - IDD3N) * VDD * 4 tCK = 2.94 nJ per 64 B",
        write_burst_j=_REF_DDR4 + ": (IDD4W - IDD3N) * VDD * 4 tCK = 2.56 nJ per 64 B (5.0 pJ/bit)",
        refresh_j=_REF_DDR4 + ": (IDD5AB - IDD3N) * VDD * tRFC = 0.70 uJ",
        background_w=_REF_DDR4 + ": IDD3N * VDD = 413 mW per rank (active standby)",
        background_scope="[C] per rank (8 chips)",
        io_included="[S] core only (IDD currents); I/O, ODT and PHY add ~5-10 pJ/bit [I]",
    ),
)

_MEMSPEC = "[S] DRAMPower MICRON_6Gb_LPDDR4-3200_32bit_A.json"
_LP4_E = "[C] Micron method dI*V*t on the DRAMPower LPDDR4 memspec IDDs (VDD2, VDDQ 1.1 V), per x16 channel"

LPDDR4_3200 = DramPreset(
    name="lpddr4_3200",
    standard="LPDDR4",
    organization=DramOrganization(
        channels=2,
        ranks=1,
        bank_groups=1,
        banks_per_group=8,
        rows=49152,
        columns=1024,
        bus_bits=16,
        burst_length=16,
    ),
    timing=DramTiming(
        tck_ps=Fraction(625),
        nBL=8,
        nCL=28,
        nCWL=14,
        nRCD=29,
        nRP=29,
        nRPab=34,
        nRAS=68,
        nRC=97,
        nCCDS=8,
        nCCDL=8,
        nRRDS=16,
        nRRDL=16,
        nFAW=64,
        nWTRS=16,
        nWTRL=16,
        nWR=29,
        nRTP=12,
        nCS=2,
        nRFC=448,
        nREFI=6246,
        nRFCpb=224,
        nREFIpb=780,
    ),
    energy=DramEnergy(
        act_pre_j=1.2e-9,
        read_burst_j=2.18e-9,
        write_burst_j=1.28e-9,
        refresh_j=None,
        background_w=0.037,
        background_scope="channel",
        io_included=True,
    ),
    default_address_map="ro:ba:ra:co:ch",
    sources=_sources(
        channels="[choice] a x32 package = 2 x16 channels: 12.8 GB/s [C: 3200 MT/s x 4 B]",
        ranks=_MEMSPEC + " (nbrOfRanks 1)",
        bank_groups="[S] LPDDR4 has no bank groups",
        banks_per_group=_MEMSPEC + " (nbrOfBanks 8)",
        rows=_MEMSPEC + " (nbrOfRows 49152)",
        columns=_MEMSPEC + " (nbrOfColumns 1024)",
        bus_bits=_MEMSPEC + " (width 16)",
        burst_length=_MEMSPEC + " (burstLength 16)",
        tck_ps=_MEMSPEC + " (clkMhz 1600)",
        nBL="[C] BL16 on a DDR bus = 8 tCK",
        nCL=_MEMSPEC + " (RL 28)",
        nCWL=_MEMSPEC + " (WL 14)",
        nRCD=_MEMSPEC + " (RCD 29)",
        nRP=_MEMSPEC + " (RPPB 29)",
        nRPab=_MEMSPEC + " (RPAB 34)",
        nRAS=_MEMSPEC + " (RAS 68)",
        nRC=_MEMSPEC + " (RC 97)",
        nCCDS=_MEMSPEC + " (CCD 8; no bank groups: S = L)",
        nCCDL=_MEMSPEC + " (CCD 8)",
        nRRDS=_MEMSPEC + " (RRD 16)",
        nRRDL=_MEMSPEC + " (RRD 16)",
        nFAW=_MEMSPEC + " (FAW 64)",
        nWTRS=_MEMSPEC + " (WTR 16)",
        nWTRL=_MEMSPEC + " (WTR 16)",
        nWR=_MEMSPEC + " (WR 29)",
        nRTP=_MEMSPEC + " (RTP 12)",
        nCS="[I] 2 as Ramulator2 DDR4/LPDDR5 nCS (unused with one rank)",
        nRFC=_MEMSPEC + " (RFCAB 448 = 280 ns)",
        nREFI=_MEMSPEC + " (REFIAB 6246 = 3.9 us)",
        nRFCpb=_MEMSPEC + " (RFCPB 224 = 140 ns)",
        nREFIpb=_MEMSPEC + " (REFIPB 780)",
        act_pre_j=_LP4_E + ": (IDD0*tRC - IDD3N*tRAS - IDD2N*(tRC-tRAS)) on VDD2 and VDD1 = 1.06 + 0.15 "
        "= 1.2 nJ (2 KiB row)",
        read_burst_j=_LP4_E + ": 1.35 nJ core ((IDD4R2-IDD3N2)*VDD2*tBurst) + 0.83 nJ VDDQ I/O per 32 B",
        write_burst_j=_LP4_E + ": ((IDD4W2 - IDD3N2) * VDD2 + IDD4WQ * VDDQ) * tBurst = (180 + 55) mA "
        "* 1.1 V * 5 ns = 1.29 nJ; 1.28 nJ = 5.0 pJ/bit per 32 B",
        refresh_j="missing: no sourced LPDDR4 REF energy (the memspec's IDD5AB2 equals IDD3N2, giving 0)",
        background_w=_LP4_E + ": VDD2*IDD3N2 + VDD1*IDD3N = 37 mW per channel",
        background_scope="[C] per x16 channel",
        io_included="[S] RD includes 0.83 nJ VDDQ I/O",
    ),
)

_R2_LP5 = "[S] Ramulator2 LPDDR5.cpp preset LPDDR5_6400"
_R2_LP5_ORG = "[S] Ramulator2 LPDDR5.cpp organisation LPDDR5_8Gb_x16"
_LP5_E = "[I] LPDDR4 value x 0.8: no verified LPDDR5 per-command energy was found; scale LPDDR4 until sourced"

LPDDR5_6400 = DramPreset(
    name="lpddr5_6400",
    standard="LPDDR5",
    organization=DramOrganization(
        channels=1,
        ranks=1,
        bank_groups=4,
        banks_per_group=4,
        rows=32768,
        columns=1024,
        bus_bits=16,
        burst_length=16,
    ),
    timing=DramTiming(
        tck_ps=Fraction(1250),
        nBL=2,
        nCL=20,
        nCWL=11,
        nRCD=15,
        nRP=15,
        nRPab=17,
        nRAS=34,
        nRC=49,
        nCCDS=2,
        nCCDL=4,
        nRRDS=4,
        nRRDL=4,
        nFAW=16,
        nWTRS=5,
        nWTRL=10,
        nWR=28,
        nRTP=4,
        nCS=2,
        nRFC=168,
        nREFI=3124,
        nRFCpb=96,
        nREFIpb=195,
    ),
    energy=DramEnergy(
        act_pre_j=0.96e-9,
        read_burst_j=1.744e-9,
        write_burst_j=1.024e-9,
        refresh_j=None,
        background_w=0.0296,
        background_scope="channel",
        io_included=True,
    ),
    default_address_map="ro:ba:ra:co:bg:ch",
    sources=_sources(
        channels="[choice] one x16 channel: 12.8 GB/s [C: 6400 MT/s x 2 B]",
        ranks=_R2_LP5_ORG + " (Ra 1)",
        bank_groups=_R2_LP5_ORG + " (Bg 4, BG mode)",
        banks_per_group=_R2_LP5_ORG + " (Ba 4)",
        rows=_R2_LP5_ORG + " (Ro 1<<15)",
        columns=_R2_LP5_ORG + " (Co 1<<10)",
        bus_bits=_R2_LP5_ORG + " (DQ 16)",
        burst_length="[S] Ramulator2 LPDDR5 RD16/WR16 commands (BL16)",
        tck_ps=_R2_LP5 + " (tCK_ps 1250, CK = 800 MHz)",
        nBL="[C] 16 beats at 6400 MT/s = 2.5 ns = 2 tCK (Ramulator2's nBL16 = 4 would halve the 12.8 GB/s "
        "peak)",
        nCL=_R2_LP5,
        nCWL=_R2_LP5,
        nRCD=_R2_LP5,
        nRP=_R2_LP5 + " (nRPpb 15)",
        nRPab=_R2_LP5 + " (nRPab 17)",
        nRAS=_R2_LP5,
        nRC="[choice] nRAS + nRPpb = 49: the preset's nRC 30 < nRAS 34 is a quirk (JEDEC: tRC >= tRAS + tRP)",
        nCCDS="[I] = nBL: BG mode, BL16 column commands to different bank groups back to back",
        nCCDL=_R2_LP5 + " (nCCD 4, same bank group)",
        nRRDS=_R2_LP5 + " (nRRD 4)",
        nRRDL=_R2_LP5 + " (nRRD 4)",
        nFAW=_R2_LP5,
        nWTRS=_R2_LP5,
        nWTRL=_R2_LP5,
        nWR=_R2_LP5,
        nRTP=_R2_LP5,
        nCS=_R2_LP5,
        nRFC="[S] Ramulator2 LPDDR5 tRFCab table, 8 Gb: 210 ns = 168 tCK",
        nREFI="[C] Ramulator2 tREFI base 3906 ns / 1.25 ns = 3124.8, rounded down (an interval is a maximum)",
        nRFCpb="[S] Ramulator2 LPDDR5 tRFCpb table, 8 Gb: 120 ns = 96 tCK",
        nREFIpb="[I] nREFI / 16 banks, rounded down: every bank refreshed once per tREFI",
        act_pre_j=_LP5_E + " (1.2 nJ)",
        read_burst_j=_LP5_E + " (2.18 nJ per 32 B)",
        write_burst_j=_LP5_E + " (1.28 nJ per 32 B)",
        refresh_j="missing: no LPDDR5 REF energy in any source",
        background_w=_LP5_E + " (37 mW)",
        background_scope="[I] per x16 channel as LPDDR4",
        io_included="[I] as LPDDR4",
    ),
)

_DS3_HBM = "[S] DRAMsim3 HBM2_8Gb_x128.ini"
_HBM_E = "[C] Micron method dI*V*t on DRAMsim3 HBM2_8Gb_x128.ini IDDs (VDD 1.2 V), per channel"

HBM2 = DramPreset(
    name="hbm2",
    standard="HBM2",
    organization=DramOrganization(
        channels=8,
        ranks=1,
        bank_groups=4,
        banks_per_group=4,
        rows=32768,
        columns=64,
        bus_bits=128,
        burst_length=4,
    ),
    timing=DramTiming(
        tck_ps=Fraction(1000),
        nBL=2,
        nCL=14,
        nCWL=4,
        nRCD=14,
        nRP=14,
        nRPab=14,
        nRAS=34,
        nRC=48,
        nCCDS=1,
        nCCDL=2,
        nRRDS=4,
        nRRDL=6,
        nFAW=30,
        nWTRS=6,
        nWTRL=8,
        nWR=16,
        nRTP=6,
        nCS=2,
        nRFC=260,
        nREFI=3900,
        nRFCpb=20,
        nREFIpb=128,
    ),
    energy=DramEnergy(
        act_pre_j=0.83e-9,
        read_burst_j=0.80e-9,
        write_burst_j=1.07e-9,
        refresh_j=60.8e-9,
        background_w=0.066,
        background_scope="channel",
        io_included=False,
    ),
    default_address_map="ro:ba:ra:co:bg:ch",
    sources=_sources(
        channels=_DS3_HBM + " (channels = 8)",
        ranks="[S] HBM2 has no ranks (one per channel)",
        bank_groups=_DS3_HBM + " (bankgroups = 4)",
        banks_per_group=_DS3_HBM + " (banks_per_group = 4)",
        rows=_DS3_HBM + " (rows = 32768)",
        columns=_DS3_HBM + " (columns = 64)",
        bus_bits=_DS3_HBM + " (bus_width = 128)",
        burst_length=_DS3_HBM + " (BL = 4)",
        tck_ps=_DS3_HBM + " (tCK = 1 ns)",
        nBL="[C] BL4 on a DDR bus = 2 tCK",
        nCL=_DS3_HBM,
        nCWL=_DS3_HBM,
        nRCD=_DS3_HBM + " (tRCDRD = tRCDWR = 14)",
        nRP=_DS3_HBM,
        nRPab=_DS3_HBM + " (tRP; HBM2 has no separate all-bank tRP)",
        nRAS=_DS3_HBM,
        nRC="[C] DRAMsim3 tRC = tRAS + tRP = 48",
        nCCDS=_DS3_HBM,
        nCCDL=_DS3_HBM,
        nRRDS=_DS3_HBM,
        nRRDL=_DS3_HBM,
        nFAW=_DS3_HBM,
        nWTRS=_DS3_HBM,
        nWTRL=_DS3_HBM,
        nWR=_DS3_HBM,
        nRTP=_DS3_HBM + " (tRTP_L 6, the same-bank value)",
        nCS="[I] 2 as Ramulator2 (unused with one rank)",
        nRFC=_DS3_HBM + " (tRFC 260)",
        nREFI=_DS3_HBM + " (tREFI 3900)",
        nRFCpb="[S] DRAMsim3 built-in default tRFCb = 20 (the HBM2 .ini does not set it); [I] not checked "
        "against JEDEC",
        nREFIpb=_DS3_HBM + " (tREFIb 128)",
        act_pre_j=_HBM_E + ": (IDD0*tRC - IDD3N*tRAS - IDD2N*(tRC-tRAS)) * VDD = (65*48 - 55*34 - 40*14) "
        "mA*ns * 1.2 V = 0.83 nJ",
        read_burst_j=_HBM_E + ": (IDD4R - IDD3N) * VDD * 2 tCK = 0.80 nJ per 64 B",
        write_burst_j=_HBM_E + ": (IDD4W 500 - IDD3N 55 mA) * 1.2 V * 2 ns = 1.07 nJ per 64 B",
        refresh_j=_HBM_E + ": (IDD5AB 250 - IDD3N 55 mA) * 1.2 V * 260 ns = 60.8 nJ",
        background_w=_HBM_E + ": IDD3N 55 mA * 1.2 V = 66 mW",
        background_scope="[C] per channel",
        io_included="[S] core only (DRAMsim3 IDDs); Li, Reddy & Jacob find I/O dominates: add it",
    ),
)

PRESETS: dict[str, DramPreset] = {p.name: p for p in (DDR4_2400_X64, LPDDR4_3200, LPDDR5_6400, HBM2)}


def get_preset(name: str) -> DramPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown DRAM preset {name!r}; allowed: {', '.join(sorted(PRESETS))}") from None
