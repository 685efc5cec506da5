"""The interconnect's configuration: topology, shape, node placement, bandwidth, hop latency, energy.

Part of the architecture description (the simulator's model is archsim.sim.interconnect); problems are
(field, message) pairs so the YAML loader reports them at their lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Real

TOPOLOGIES = ("bus", "crossbar", "mesh", "ring")
PS_PER_S = 10**12

# Defaults with sources (copied from the reference energy.md §4.1 and §7; tags as in docs/modelling.md).
# [S] Park et al., DAC 2012, 4x4 mesh NoC chip (45 nm SOI, 1 GHz): 1-cycle router+link latency per hop, with
# bypass. http://people.csail.mit.edu/tushar/papers/abstracts/noc4x4_dac2012_abstract.html
HOP_LATENCY_BYPASS_CYCLES = 1
# [I] energy.md §4.1: 2-3 cycles/hop for conventional pipelined virtual-channel routers; 2 is the low end
# (and the value of today's m2vit.yaml interconnect latency).
HOP_LATENCY_CONVENTIONAL_CYCLES = 2
# [I] energy.md §4.1: router + link per byte per hop at 28 nm / 0.9 V: Park DAC 2012 0.60 pJ/bit delivered
# (45 nm SOI, 1.1 V) / ~3.5 router traversals (2.5 hops + eject) x0.51 x (0.9/1.1)^2 = ~0.06 pJ/bit
# = ~0.5 pJ/B.
ENERGY_PER_BYTE_HOP_28NM_J = 0.5e-12
# [I] energy.md §7, Default B (ZCU102): on-chip AXI interconnect 1.0 pJ per byte moved.
ENERGY_PER_BYTE_AXI_J = 1.0e-12


class InterconnectConfigError(ValueError):
    """An interconnect that cannot be built; ``problems`` = [(field, message)], all of them."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


class InterconnectError(ValueError):
    """A transfer the interconnect cannot carry (unknown node, empty or repeated destinations, ...)."""


def _position(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class InterconnectConfig:
    """One interconnect: topology, shape, node placement, link bandwidth, hop latency, energy per byte.

    - ``shape``: ``()`` bus, ``(ports,)`` crossbar, ``(rows, cols)`` mesh, ``(routers,)`` ring (>= 3).
    - ``nodes``: name -> position (``None`` on a bus, a port or router index, ``[row, col]`` on a mesh);
      stored sorted by name, so the order they were given in changes nothing.
    - ``link_bandwidth_bytes_per_cycle``: bytes per accelerator cycle of every link and port (int or
      Fraction: exact).
    - ``hop_latency_cycles``: router + link cycles per hop (``t_hop``).
    - ``energy_per_byte_hop_j`` (J/B per mesh/ring link), ``energy_per_byte_bus_j`` (J/B per bus
      transfer or per crossbar destination port); ``None`` = not given.
    """

    topology: str
    nodes: tuple[tuple[str, tuple], ...]
    link_bandwidth_bytes_per_cycle: int | Fraction
    hop_latency_cycles: int
    shape: tuple[int, ...] = ()
    energy_per_byte_hop_j: float | None = None
    energy_per_byte_bus_j: float | None = None

    def __post_init__(self):
        nodes = self.nodes.items() if isinstance(self.nodes, Mapping) else self.nodes
        pairs = ((name, _position(pos)) for name, pos in nodes)
        canonical = tuple(sorted(pairs, key=lambda item: str(item[0])))
        object.__setattr__(self, "nodes", canonical)
        object.__setattr__(self, "shape", _position(self.shape))

    def problems(self) -> list[tuple[str, str]]:
        """Every reason this configuration cannot be built, as (field, message); empty when it can."""
        out: list[tuple[str, str]] = []
        topo = self.topology
        if topo not in TOPOLOGIES:
            return [("topology", f"{topo!r} is not one of {', '.join(TOPOLOGIES)}")]
        shape = self.shape
        dims = {"bus": 0, "crossbar": 1, "mesh": 2, "ring": 1}[topo]
        minimum = 3 if topo == "ring" else 1
        shape_ok = len(shape) == dims and all(_is_int(n) and n >= minimum for n in shape)
        if not shape_ok:
            wanted = {
                "bus": "[] (a bus has no shape)",
                "crossbar": "[ports] with ports >= 1",
                "mesh": "[rows, cols], each >= 1",
                "ring": "[routers] with routers >= 3",
            }[topo]
            out.append(("shape", f"{list(shape)} is not a {topo} shape: give {wanted}"))
        bw = self.link_bandwidth_bytes_per_cycle
        if not (isinstance(bw, (int, Fraction)) and not isinstance(bw, bool)) or bw <= 0:
            out.append(
                ("link_bandwidth_bytes_per_cycle", f"{bw!r} must be a positive int or Fraction (B/cycle)")
            )
        if not _is_int(self.hop_latency_cycles) or self.hop_latency_cycles < 0:
            out.append(("hop_latency_cycles", f"{self.hop_latency_cycles!r} must be an int >= 0 (cycles)"))
        for name in ("energy_per_byte_hop_j", "energy_per_byte_bus_j"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, Real)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                out.append((name, f"{value!r} must be a finite number >= 0 (J/B) or None"))
        if not self.nodes:
            out.append(("nodes", "no nodes: place at least the DRAM controller and one buffer"))
        names = [name for name, _ in self.nodes]
        for name in sorted({n for n in names if names.count(n) > 1}, key=str):
            out.append((f"nodes.{name}", "listed more than once"))
        taken: dict[tuple, str] = {}
        for name, pos in self.nodes:
            where = f"nodes.{name}"
            if not isinstance(name, str) or not name:
                out.append((where, "a node name must be a non-empty string"))
                continue
            if not all(_is_int(p) for p in pos):
                out.append((where, f"position {list(pos)} must be integers"))
                continue
            if topo == "bus":
                if pos:
                    out.append((where, f"position {list(pos)}: a bus has no positions (give null)"))
                continue
            if len(pos) != dims:
                form = {"mesh": "[row, col]", "crossbar": "a port index", "ring": "a router index"}[topo]
                out.append((where, f"position {list(pos)} must be {form} on a {topo}"))
                continue
            if not shape_ok:
                continue
            if not all(0 <= p < n for p, n in zip(pos, shape)):
                if topo == "mesh":
                    out.append(
                        (
                            where,
                            f"{list(pos)} is off the {shape[0]} x {shape[1]} mesh "
                            f"(rows 0..{shape[0] - 1}, cols 0..{shape[1] - 1})",
                        )
                    )
                else:
                    kind = "port" if topo == "crossbar" else "router"
                    out.append(
                        (where, f"{kind} {pos[0]} does not exist (a {topo} of {shape[0]}: 0..{shape[0] - 1})")
                    )
                continue
            if topo == "crossbar":
                if pos in taken:
                    out.append(
                        (
                            where,
                            f"port {pos[0]} is already taken by node {taken[pos]!r} "
                            "(one node per crossbar port)",
                        )
                    )
                else:
                    taken[pos] = name
        return out


@dataclass(frozen=True)
class InterconnectPreset:
    """Hop latency and energy defaults with sources; ``config()`` adds topology, placement, bandwidth."""

    name: str
    hop_latency_cycles: int
    energy_per_byte_hop_j: float | None
    energy_per_byte_bus_j: float | None
    sources: Mapping[str, str] = field(default_factory=dict)

    def config(self, topology: str, nodes, link_bandwidth_bytes_per_cycle, shape=()) -> InterconnectConfig:
        return InterconnectConfig(
            topology,
            nodes,
            link_bandwidth_bytes_per_cycle,
            self.hop_latency_cycles,
            shape,
            self.energy_per_byte_hop_j,
            self.energy_per_byte_bus_j,
        )


_PARK = "[S] Park et al., DAC 2012: 1-cycle router+link per hop with bypass (4x4 mesh, 45 nm SOI)"
_CONVENTIONAL = "[I] 2-3 cycles/hop for conventional pipelined VC routers (energy.md §4.1); low end"
_HOP_28 = (
    "[I] 0.5 pJ/B per router+link hop at 28 nm: Park DAC 2012 0.60 pJ/bit / ~3.5 router traversals "
    "x0.51 x (0.9/1.1)^2 (energy.md §4.1)"
)
_AXI = "[I] on-chip AXI interconnect 1.0 pJ per byte moved (energy.md §7, Default B, ZCU102)"

PRESETS: dict[str, InterconnectPreset] = {
    "asic28_bypass": InterconnectPreset(
        "asic28_bypass",
        HOP_LATENCY_BYPASS_CYCLES,
        ENERGY_PER_BYTE_HOP_28NM_J,
        None,
        {"hop_latency_cycles": _PARK, "energy_per_byte_hop_j": _HOP_28},
    ),
    "asic28_conventional": InterconnectPreset(
        "asic28_conventional",
        HOP_LATENCY_CONVENTIONAL_CYCLES,
        ENERGY_PER_BYTE_HOP_28NM_J,
        None,
        {"hop_latency_cycles": _CONVENTIONAL, "energy_per_byte_hop_j": _HOP_28},
    ),
    "fpga_axi": InterconnectPreset(
        "fpga_axi",
        HOP_LATENCY_CONVENTIONAL_CYCLES,
        None,
        ENERGY_PER_BYTE_AXI_J,
        {"hop_latency_cycles": _CONVENTIONAL, "energy_per_byte_bus_j": _AXI},
    ),
}
