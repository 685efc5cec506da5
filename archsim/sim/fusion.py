"""DW->PW fusion: which producer / consumer pairs run as one pipeline, and the window between them (pure).

With ``memory.fusion: on`` (archsim.arch.schema.MemoryModel) a depthwise conv and the 1x1 conv that alone
reads it run as one pipeline, as in Trio-ViT's DW->PW fusion ("depthwise runs on the R-PE while the MAT starts
the following pointwise on finished pixels"; block time max(DW, PW + setup)) and M2-ViT's fused pipeline.

**Eligible pair** (:func:`fused_pairs`): producer kind ``conv_depthwise``; consumer ``conv_pointwise`` or
``conv_grouped`` with a 1x1 kernel, stride 1, no padding or dilation, so that its output position p reads
exactly the producer's position p; the consumer reads only the producer, through one operand with no access
program; the producer has no other reader and is not a graph output; residency is not ``layer_by_layer``.

**Decision** (archsim.sim.scheduler), as the producer starts; the pair runs unfused, and the result says why,
unless all of:

- both fit one filter chunk (their weights at most half the weight region), so the producer's tiles run
  position by position and the consumer's weights stay resident across them;
- the window fits the resident region's free bytes: the producer is cut into as many whole-row position
  tiles as that needs (every output row its own tile at most);
- fusing is estimated faster (:func:`estimate`): on an engine the two layers share, or on a buffer port
  both use, their busy times add; the pipeline lag is one producer tile. A pair on one engine therefore
  fuses only to keep an intermediate that would spill out of DRAM.

Fused:

- the producer is cut into at least ``params.min_tiles`` position tiles (whole output rows); the consumer
  uses the same position tiles, so consumer tile i reads exactly producer tile i's output;
- the intermediate never goes whole to the buffer or to DRAM: it lives in a **window** of
  ``FUSED_WINDOW_TILES`` (2) producer tiles' outputs [choice: double buffering, the producer computes tile
  i+1 while the consumer reads tile i], reserved in the resident region from the producer's start to the
  consumer's end;
- producer tile i takes its output bytes from the window before it loads (it waits while the consumer is
  two tiles behind: backpressure); consumer tile i waits until producer tile i has retired (the
  ``fused_producer`` stall), and gives the bytes back when it retires;
- the consumer avoids the producer's engines when the remaining engines can run all of its filters
  (archsim.sim.mapping; Trio-ViT: the pointwise on the MAT while the R-PE runs the depthwise).

No deadlock: a producer tile waits only for window bytes, held by producer tiles whose consumer tiles need
nothing from a later producer tile; a consumer tile waits for its producer tile before taking anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from archsim.arch.spec import ArchSpec
from archsim.graph.ir import Layer, OpKind, graph_outputs

FUSED_WINDOW_TILES = 2  # producer tiles' outputs the window holds [choice: double buffering]
CONSUMER_KINDS = (OpKind.CONV_POINTWISE, OpKind.CONV_GROUPED)


def _reads_pixel_for_pixel(layer: Layer) -> bool:
    return (
        tuple(layer.kernel) == (1, 1)
        and tuple(layer.stride) == (1, 1)
        and tuple(layer.dilation) == (1, 1)
        and not any(layer.padding)
    )


def fused_pairs(graph: nx.DiGraph, spec: ArchSpec) -> dict[str, str]:
    """Consumer -> producer of every eligible pair (see the module docstring); empty when fusion is off."""
    if spec.memory.fusion != "on" or spec.memory.residency == "layer_by_layer":
        return {}
    outputs = set(graph_outputs(graph))
    pairs = {}
    for name in graph.graph["order"]:
        consumer = graph.nodes[name]["layer"]
        producers = list(graph.predecessors(name))
        if consumer.kind not in CONSUMER_KINDS or len(producers) != 1 or consumer.external_ports:
            continue
        (producer,) = producers
        if graph.nodes[producer]["layer"].kind != OpKind.CONV_DEPTHWISE:
            continue
        if producer in outputs or graph.out_degree(producer) != 1:
            continue
        if (
            len(consumer.operands) != 1
            or consumer.operands[0].program
            or not _reads_pixel_for_pixel(consumer)
        ):
            continue
        pairs[name] = producer
    return pairs


@dataclass(frozen=True)
class Estimate:
    """Closed-form spans (cycles) of a pair: ``unfused`` = the producer's busiest resource + the consumer's
    (+ the spill's DRAM write and read); ``fused`` = the busiest resource of the two together (busy times
    add where they share an engine or a port) + one producer tile of pipeline lag."""

    unfused: float
    fused: float

    @property
    def fuse(self) -> bool:
        return self.fused < self.unfused


def busy(plan, spec: ArchSpec) -> dict[str, float]:
    """Cycles each resource of a plan is busy: every engine its tiles' compute cycles, every buffer port its
    tiles' port bytes / the port's bytes per cycle."""
    out: dict[str, float] = {}
    widths = {b.name: b.bandwidth_bytes_per_cycle for b in spec.buffers}
    for tile in plan.tiles:
        for s, stream in enumerate(plan.mapping.streams):
            out[stream.engine] = out.get(stream.engine, 0.0) + tile.cycles[s]
            for buffer, reads, writes in tile.port[s] if tile.port else ():
                out[f"{buffer}.port"] = out.get(f"{buffer}.port", 0.0) + (reads + writes) / widths[buffer]
    return out


def estimate(unfused: tuple, fused: tuple, spec: ArchSpec, spill_bytes: int = 0) -> Estimate:
    """Estimate both schedules of a pair from its (producer, consumer) plans either way. ``spill_bytes``: the
    intermediate's bytes when it would not stay on chip unfused, written to and read back from DRAM at its
    peak bandwidth."""
    (p_unf, c_unf), (p_f, c_f) = [(busy(p, spec), busy(c, spec)) for p, c in (unfused, fused)]
    spill = 2 * spill_bytes / (spec.dram.peak_bandwidth_bytes_per_s / spec.clock_hz)
    serial = max(p_unf.values(), default=0.0) + max(c_unf.values(), default=0.0) + spill
    shared = {r: p_f.get(r, 0.0) + c_f.get(r, 0.0) for r in p_f.keys() | c_f.keys()}
    lag = max(p_f.values(), default=0.0) / max(1, len(fused[0].tiles))
    return Estimate(serial, max(shared.values(), default=0.0) + lag)


def window_bytes(producer_tile_outputs: list[int]) -> int:
    """The window of a fused pair: ``FUSED_WINDOW_TILES`` of the producer's largest tile outputs."""
    return FUSED_WINDOW_TILES * max(producer_tile_outputs, default=0)


def tile_outputs(layer: Layer, position_ranges: list[tuple[int, int]]) -> list[int]:
    """The output bytes of each position tile of ``layer`` (all its channels), exact: they sum to its
    output."""
    from archsim.sim.plan import apportion

    return apportion(layer.output_bytes, [b - a for a, b in position_ranges])
