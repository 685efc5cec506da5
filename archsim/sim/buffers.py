"""On-chip buffers (``top.<name>``): regions with capacity enforced at run time, occupancy, engine ports.

Each buffer's capacity is divided into the regions of archsim.sim.plan.regions (docs/modelling.md "Memory
model"): the activation buffer's *resident* region (tensors kept on chip between layers), its *staging* region
(tiles in flight) and the *weight* region (a separate weight buffer's whole capacity, or a share of a unified
buffer). Semantics:

- resident: :meth:`Buffer.allocate` either reserves a tensor's bytes at once (when its producer starts
  writing) or refuses, and the caller spills the tensor to DRAM; :meth:`Buffer.release` frees it after its
  last reader. It never waits, so it cannot deadlock.
- staging and weights: ``simpy.Container`` of free bytes, served first come first served; a tile takes its
  bytes before its DMA and gives them back when they are consumed (inputs), written back (outputs) or no
  longer needed (a weight chunk after its last tile). A tile's staging bytes are taken last, after its slot
  and weights, and every holder of staging bytes already holds everything else it needs, so waits always
  resolve.
- occupancy: the bytes held per region over time; ``peak`` per region and for the whole buffer, and a counter
  track per region when a tracer records.
- port: the engine-side port (``bandwidth`` per accelerator cycle) is an exact reservation table
  (archsim.sim.channel) that every engine reading or writing this buffer shares; the DMA uses a second port
  [choice: dual-ported buffers, the DMA beside the engines] and is not limited here.
"""

from __future__ import annotations

from fractions import Fraction

import simpy

from archsim.arch.spec import BufferSpec
from archsim.sim.channel import Channel
from archsim.sim.kernel import CountingEnvironment, Module

REGIONS = ("resident", "staging", "weights")


class Buffer(Module):
    def __init__(
        self,
        env: CountingEnvironment,
        spec: BufferSpec,
        capacities: dict[str, int],
        period_ps: int,
        parent: Module | None = None,
    ) -> None:
        super().__init__(env, spec.name, parent)
        if spec.capacity_bytes <= 0:
            raise ValueError(f"buffer {spec.name}: capacity must be positive")
        if spec.bandwidth_bytes_per_cycle <= 0:
            raise ValueError(f"buffer {spec.name}: bandwidth must be positive")
        self.spec = spec
        self.capacity = dict(capacities)  # region -> bytes (only the regions this buffer has)
        self.level = {r: 0 for r in self.capacity}
        self.peak = {r: 0 for r in self.capacity}
        self.peak_total = 0
        self.held: dict[str, int] = {}  # resident tensor -> bytes
        self.containers = {
            r: simpy.Container(env, capacity=n, init=n) for r, n in self.capacity.items() if r != "resident"
        }
        self.port = Channel(f"{self.path}.port", Fraction(spec.bandwidth_bytes_per_cycle, period_ps), 0)

    @property
    def staging(self) -> simpy.Container:
        return self.containers["staging"]

    @property
    def weights(self) -> simpy.Container:
        return self.containers["weights"]

    # -- the resident region -----------------------------------------------------------------------

    def resident_free(self) -> int:
        return self.capacity["resident"] - self.level["resident"]

    def allocate(self, tensor: str, nbytes: int) -> bool:
        """Reserve ``nbytes`` for ``tensor`` if they fit now (True), else nothing (False: the caller
        spills)."""
        if nbytes > self.resident_free():
            return False
        self.held[tensor] = nbytes
        self.took("resident", nbytes)
        return True

    def place(self, tensor: str, nbytes: int) -> None:
        """Record a tensor kept on chip by a static rule (``fit``): held even beyond the region, so the peak
        shows it."""
        self.held[tensor] = nbytes
        self.took("resident", nbytes)

    def release(self, tensor: str) -> None:
        """Free a resident tensor after its last reader."""
        self.gave("resident", self.held.pop(tensor))

    def holders(self, limit: int = 3) -> list[tuple[str, int]]:
        """The largest resident tensors (name, bytes), largest first, names breaking ties."""
        return sorted(self.held.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    # -- occupancy ---------------------------------------------------------------------------------

    def took(self, region: str, nbytes: int) -> None:
        """``nbytes`` of ``region`` became occupied now (after a container get, or an allocation)."""
        self._change(region, nbytes)

    def gave(self, region: str, nbytes: int) -> None:
        self._change(region, -nbytes)

    def _change(self, region: str, delta: int) -> None:
        if not delta:
            return
        self.level[region] += delta
        self.peak[region] = max(self.peak[region], self.level[region])
        self.peak_total = max(self.peak_total, sum(self.level.values()))
        if self.tracer is not None:
            self.tracer.occupy(f"{self.path}.{region}", self.env.now, delta, "B")
