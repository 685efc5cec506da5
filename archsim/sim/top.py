"""The module tree ``top`` built from an ArchSpec: engines, buffers, DRAM, interconnect, DMA."""

from __future__ import annotations

from archsim.arch.spec import ArchSpec
from archsim.sim.buffers import Buffer
from archsim.sim.dma import Dma
from archsim.sim.dram import Dram
from archsim.sim.dram_banked import BankedDram
from archsim.sim.engine import Engine
from archsim.sim.kernel import CountingEnvironment, Module
from archsim.sim.noc import Interconnect
from archsim.sim.plan import regions


class Top(Module):
    def __init__(self, env: CountingEnvironment, spec: ArchSpec, tracer=None) -> None:
        super().__init__(env, "top")
        self.tracer = tracer  # every module below inherits it (archsim.sim.trace.Tracer or None)
        self.spec = spec
        self.period_ps = spec.clock_period_ps
        names = [e.name for e in spec.engines] + [b.name for b in spec.buffers]
        if len(set(names)) != len(names) or {"dram", "noc", "dma"} & set(names):
            raise ValueError(
                f"{spec.name}: engine and buffer names must be unique and not dram/noc/dma: {names}"
            )
        self.engines = {e.name: Engine(env, e, self) for e in spec.engines}
        self.regions = regions(spec)
        act, wb = spec.buffer_for("activations").name, spec.buffer_for("weights").name
        capacities = {b.name: {} for b in spec.buffers}
        capacities[act].update(resident=self.regions.resident, staging=self.regions.staging)
        capacities[wb]["weights"] = self.regions.weights
        self.buffers = {
            b.name: Buffer(env, b, capacities[b.name], self.period_ps, self) for b in spec.buffers
        }
        self.dram = (
            BankedDram(env, spec.dram.banked, self)
            if spec.dram.model == "banked"
            else Dram(env, spec.dram, self)
        )
        self.noc = Interconnect(env, spec.interconnect, self.period_ps, self)
        self.dma = Dma(env, self.dram, self.noc, self)
        self.weight_buffer = self.buffers[wb]
        self.act_buffer = self.buffers[act]
        self.dma.weight_node = spec.buffer_for("weights").name
        self.dma.act_node = spec.buffer_for("activations").name
