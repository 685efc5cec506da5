"""The banked DRAM's configuration: a preset, its address map, scheduler, queue and refresh, validated.

Part of the architecture description (the simulator's model is archsim.sim.dram_banked); every
problem is a (field, message) pair so the YAML loader reports it at its line.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.arch.dram_presets import DramOrganization, DramPreset, DramTiming

FIELDS = ("ro", "ra", "bg", "ba", "ch", "co")
SCHEDULERS = ("frfcfs", "fifo")
REFRESH_MODES = ("all_bank", "per_bank")
# [S] DRAMsim3 DDR4_8Gb_x8_2400.ini queue_size = 16 (its HBM2 config: cmd_queue_size 32); here an entry
# is a row segment, not a 64 B request.
DEFAULT_QUEUE_DEPTH = 16


class DramConfigError(ValueError):
    """A banked-DRAM configuration that cannot be built; ``problems`` = [(field, message)], all of them."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


@dataclass(frozen=True)
class BankedDramConfig:
    preset: DramPreset
    address_map: str | None = None  # None: the preset's default
    scheduler: str = "frfcfs"
    queue_depth: int = DEFAULT_QUEUE_DEPTH
    refresh: str = "all_bank"

    @property
    def map_text(self) -> str:
        return self.preset.default_address_map if self.address_map is None else self.address_map

    def problems(self) -> list[tuple[str, str]]:
        found = _organization_problems(self.preset.organization) + _timing_problems(self.preset.timing)
        if not found:
            found += AddressMap.problems_of(self.map_text, self.preset.organization)
        if self.scheduler not in SCHEDULERS:
            found.append(("scheduler", f"{self.scheduler!r} is not one of {', '.join(SCHEDULERS)}"))
        depth = self.queue_depth
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            found.append(("queue_depth", f"{self.queue_depth!r} must be an integer >= 1"))
        if self.refresh not in REFRESH_MODES:
            found.append(("refresh", f"{self.refresh!r} is not one of {', '.join(REFRESH_MODES)}"))
        elif self.refresh == "per_bank" and not self.preset.timing.per_bank_refresh:
            found.append(
                (
                    "refresh",
                    (
                        f"per_bank: {self.preset.standard} ({self.preset.name}) has no "
                        "per-bank "
                        "refresh (nRFCpb/nREFIpb); use all_bank"
                    ),
                )
            )
        return found


def _organization_problems(org: DramOrganization) -> list[tuple[str, str]]:
    found = []
    for name in (
        "channels",
        "ranks",
        "bank_groups",
        "banks_per_group",
        "rows",
        "columns",
        "bus_bits",
        "burst_length",
    ):
        value = getattr(org, name)
        if not isinstance(value, int) or value < 1:
            found.append((f"organization.{name}", f"{value!r} must be an integer >= 1"))
    if not found:
        if org.columns % org.burst_length:
            found.append(
                (
                    "organization.columns",
                    (f"{org.columns} is not a multiple of burst_length {org.burst_length}"),
                )
            )
        if org.bus_bits * org.burst_length % 8:
            found.append(("organization.bus_bits", "bus_bits x burst_length must be whole bytes"))
    return found


def _timing_problems(t: DramTiming) -> list[tuple[str, str]]:
    found = []
    if not t.tck_ps > 0:
        found.append(("timing.tck_ps", f"{t.tck_ps!r} must be > 0"))
    for name in (
        "nBL",
        "nCL",
        "nCWL",
        "nRCD",
        "nRP",
        "nRPab",
        "nRAS",
        "nRC",
        "nCCDS",
        "nCCDL",
        "nRRDS",
        "nRRDL",
        "nFAW",
        "nWTRS",
        "nWTRL",
        "nWR",
        "nRTP",
        "nCS",
        "nRFC",
        "nREFI",
    ):
        value = getattr(t, name)
        if not isinstance(value, int) or value < (1 if name in ("nBL", "nREFI") else 0):
            least = 1 if name in ("nBL", "nREFI") else 0
            found.append((f"timing.{name}", f"{value!r} must be an integer >= {least}"))
    if not found and t.nREFI <= t.nRFC + t.nRPab:
        found.append(("timing.nREFI", f"{t.nREFI} must exceed nRFC + nRPab = {t.nRFC + t.nRPab}"))
    if t.per_bank_refresh and not (isinstance(t.nREFIpb, int) and t.nREFIpb >= 1 and t.nRFCpb >= 0):
        found.append(("timing.nREFIpb", "per-bank refresh needs integers nREFIpb >= 1 and nRFCpb >= 0"))
    return found


class AddressMap:
    """A parsed address map: burst index -> (channel, rank, bank group, bank, row, column) digits."""

    def __init__(self, text: str, org: DramOrganization):
        problems = self.problems_of(text, org)
        if problems:
            raise DramConfigError(problems)
        self.text = text
        self.org = org
        counts = _field_counts(org)
        tokens = text.split(":")
        # omitted fields have count 1: placing them on top changes no digit
        self.order = tuple([f for f in FIELDS if f not in tokens] + tokens)  # most significant first
        co = self.order.index("co")
        self.high = self.order[:co]
        self.low = self.order[co + 1 :]
        self.radix = {f: counts[f] for f in FIELDS}
        self.low_size = 1
        for f in self.low:
            self.low_size *= counts[f]
        self.block = counts["co"] * self.low_size  # bursts per row block
        self.capacity_bursts = 1
        for f in FIELDS:
            self.capacity_bursts *= counts[f]

    @staticmethod
    def problems_of(text: str, org: DramOrganization) -> list[tuple[str, str]]:
        where = "address_map"
        if not isinstance(text, str) or not text:
            return [(where, f"{text!r} must be a string of fields such as 'ro:ba:ra:co:bg:ch'")]
        tokens = text.split(":")
        counts = _field_counts(org)
        found = []
        for tok in tokens:
            if tok not in FIELDS:
                found.append(
                    (
                        where,
                        (
                            f"{text!r}: unknown field {tok!r}; allowed: {', '.join(FIELDS)} "
                            "(row, rank, bank group, bank, channel, column), most significant "
                            "first"
                        ),
                    )
                )
        for f in FIELDS:
            if tokens.count(f) > 1:
                found.append(
                    (where, (f"{text!r}: field {f!r} appears {tokens.count(f)} times; each field once"))
                )
        for f in FIELDS:
            if f not in tokens and (counts[f] > 1 or f in ("ro", "co")):
                found.append(
                    (
                        where,
                        (
                            f"{text!r} does not cover the organisation: field {f!r} "
                            f"({_FIELD_NAMES[f]} = {counts[f]}) is missing"
                        ),
                    )
                )
        if not found and tokens.index("ro") > tokens.index("co"):
            found.append(
                (
                    where,
                    (
                        f"{text!r}: 'ro' must be more significant than 'co' (a row segment is "
                        "consecutive columns of one row)"
                    ),
                )
            )
        return found

    def digits(self, burst: int) -> dict[str, int]:
        """The field digits of a burst index (most significant field holds the quotient)."""
        out = {}
        for f in reversed(self.order):
            out[f] = burst % self.radix[f]
            burst //= self.radix[f]
        return out

    def encode(self, **digits: int) -> int:
        """Byte address of the burst with these field digits (omitted fields are 0)."""
        unknown = set(digits) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown address-map fields {sorted(unknown)}; allowed: {', '.join(FIELDS)}")
        burst = 0
        for f in self.order:
            value = digits.get(f, 0)
            if not 0 <= value < self.radix[f]:
                raise ValueError(f"{f} = {value} is outside [0, {self.radix[f]})")
            burst = burst * self.radix[f] + value
        return burst * self.org.burst_bytes

    def decode(self, address: int) -> dict[str, int]:
        """Byte address -> {'ch', 'ra', 'bg', 'ba', 'ro', 'co'} (``co`` in bursts within the row)."""
        return self.digits(address // self.org.burst_bytes)


_FIELD_NAMES = {
    "ro": "rows",
    "ra": "ranks",
    "bg": "bank_groups",
    "ba": "banks_per_group",
    "ch": "channels",
    "co": "bursts per row",
}


def _field_counts(org: DramOrganization) -> dict[str, int]:
    return {
        "ro": org.rows,
        "ra": org.ranks,
        "bg": org.bank_groups,
        "ba": org.banks_per_group,
        "ch": org.channels,
        "co": org.columns // max(org.burst_length, 1),
    }
