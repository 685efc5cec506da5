"""Memory plan: the buffer regions, which tensors go through DRAM, and how each layer is cut into tiles.

Pure functions of (graph, spec, mappings); docs/modelling.md "Memory model" states the rules:
- the activation buffer is split into a *resident* region (tensors kept on chip between layers) and a
  *staging* region (tiles in flight: their DRAM-streamed inputs and the outputs awaiting write-back); the
  weight buffer holds weight chunks (:func:`regions`, the named shares below);
- which outputs go to DRAM is decided by ``memory.residency``: ``live`` at run time by the scheduler
  (archsim.sim.scheduler), ``fit`` and ``layer_by_layer`` by the static rule of :func:`spilled_tensors`;
- weights stream from DRAM once per layer, cut into filter chunks of at most half the weight region (double
  buffering); output positions are cut so a tile's DRAM-streamed bytes fit its share of the staging region;
- every tensor has a home address in DRAM (:func:`dram_layout`), so a layer planned at run time knows where a
  spilled input lives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import networkx as nx

from archsim.arch.spec import ArchSpec
from archsim.graph.ir import CONV_KINDS, VECTOR_KINDS, Layer, OpKind, graph_outputs, layers
from archsim.graph.opkinds import rule
from archsim.sim.dram_alloc import allocate
from archsim.sim.latency import compute_cycles, spatial_unit
from archsim.sim.mapping import LayerMapping, Stream
from archsim.sim.traffic import matmul_b_bytes, tile_accesses, tile_port

DEFAULT_MIN_TILES = 4  # [choice] enough tiles to overlap DMA with compute
DEFAULT_MAX_TILES = 16  # [choice] bounds events per layer (simulation speed)
# Buffer shares [choice, docs/modelling.md "Memory model"]; double buffering as in Trio-ViT's ping-pong
# activation buffers and every tiled accelerator since (one half computes while the other loads):
RESIDENT_SHARE = (
    2  # 1/2 of the activation buffer holds resident tensors; the other half stages tiles in flight
)
WEIGHT_CHUNK_SHARE = (
    2  # a weight chunk is at most 1/2 of the weight region: the next loads while this computes
)
TILES_IN_FLIGHT = 2  # tile slots per layer (ping-pong): tile i+1 loads while tile i computes
# a tile streams at most 1/3 of the staging region: two tiles in flight and the outputs of the previous one
# still being written back, so a DRAM-bound layer's loads never wait for its own write-backs [choice]
TILES_STAGED = TILES_IN_FLIGHT + 1
# One buffer holding weights and activations: its non-resident half is split into a weight region and a
# staging region, this share for the weights [choice]: fixed regions, so weight chunks and tiles never wait
# on each other
UNIFIED_WEIGHT_SHARE = 2


@dataclass(frozen=True)
class Regions:
    """The on-chip capacity each role may use, in bytes (:func:`regions`)."""

    resident: int  # activation tensors kept on chip between layers
    staging: int  # tiles in flight: DRAM-streamed inputs, outputs awaiting write-back
    weights: int  # weight chunks
    unified: bool  # one buffer holds weights and activations

    @property
    def tile_stream(self) -> int:
        """The most DRAM-streamed bytes one tile may stage: its slot's share of the staging region."""
        return self.staging // TILES_STAGED


def regions(spec: ArchSpec) -> Regions:
    """The resident, staging and weight regions of ``spec``'s buffers (docs/modelling.md "Memory model")."""
    act, wb = spec.buffer_for("activations"), spec.buffer_for("weights")
    resident = act.capacity_bytes // RESIDENT_SHARE
    rest = act.capacity_bytes - resident
    if act.name == wb.name:
        weights = rest // UNIFIED_WEIGHT_SHARE
        return Regions(resident, rest - weights, weights, True)
    return Regions(resident, rest, wb.capacity_bytes, False)


class TileFitError(ValueError):
    """A layer's smallest tile does not fit its buffer region (a configuration the schedule cannot run)."""


@dataclass(frozen=True)
class Tile:
    """One tile: a filter chunk x a position chunk, with the extents the functional compute needs.

    ``positions`` is [p0, p1) of the layer's position domain (conv: output pixels n*Ho*Wo + ho*Wo + wo;
    linear / matmul: output rows; vector kinds: the elements the vector unit touches, pool: input
    elements); ``filters[s]`` is [f0, f1) of stream s's filter list (its filters in channel order,
    archsim.sim.mapping.stream_filters; (0, 0) for vector kinds).
    """

    positions: tuple[int, int]
    filters: tuple[tuple[int, int], ...]  # per stream
    weight_load_bytes: int  # weights DMA'd in before this tile (first tile of a filter chunk)
    weight_release_bytes: int  # weight-buffer space freed when this tile retires (last of its chunk)
    input_bytes: int  # activations read from DRAM for this tile
    output_bytes: int  # activations written to DRAM after this tile
    cycles: tuple[int, ...]  # per stream, closed form incl. pipeline fill (0: no work)
    ops: tuple[int, ...]  # per stream
    # DRAM byte addresses (archsim.sim.dram_alloc): the weight chunk, the input reads (one per tensor the
    # tile reads from DRAM, their bytes summing to input_bytes) and the output write; the simple DRAM
    # model ignores them, the banked one is driven by them
    weight_address: int = 0
    input_reads: tuple[tuple[int, int], ...] = ()
    output_address: int = 0
    # per stream: (buffer, reads, writes) of its engine through that buffer's engine port in this tile
    # (archsim.sim.traffic.tile_port: the dataflow's reuse)
    port: tuple[tuple[tuple[str, int, int], ...], ...] = ()
    # per stream: its engine's access streams (archsim.sim.traffic.tile_accesses: the port bytes by operand,
    # how many streams they form, and the partial sums), what the energy model prices
    accesses: tuple[tuple, ...] = ()


@dataclass(frozen=True)
class LayerPlan:
    name: str
    index: int  # deterministic topological index = engine priority
    mapping: LayerMapping
    dram_input_bytes: int  # per filter pass (the whole input set read from DRAM)
    output_to_dram: bool
    tiles: tuple[Tile, ...]

    @property
    def weight_bytes(self) -> int:
        return sum(s.weight_bytes for s in self.mapping.streams)


def split(total: int, parts: int) -> list[int]:
    """``total`` cut into ``parts`` near-equal integers, larger ones first (deterministic)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def working_set_bytes(layer: Layer) -> int:
    return layer.input_bytes + layer.output_bytes


def spilled_tensors(graph: nx.DiGraph, spec: ArchSpec) -> set[str]:
    """Producers whose output does not stay in the activation buffer (every one under ``layer_by_layer``)."""
    if spec.memory.residency == "layer_by_layer":
        return {u for u in graph.nodes if graph.out_degree(u)}
    usable = regions(spec).resident
    ws = {n: working_set_bytes(graph.nodes[n]["layer"]) for n in graph.nodes}
    return {
        u
        for u in graph.nodes
        if graph.out_degree(u) and (ws[u] > usable or any(ws[v] > usable for v in graph.successors(u)))
    }


def dram_input_bytes(graph: nx.DiGraph, layer: Layer, spilled: set[str]) -> int:
    ports = list(layer.external_ports)
    for u in sorted(graph.predecessors(layer.name)):
        if u in spilled:
            ports.extend(graph.edges[u, layer.name]["ports"])
    return sum(layer.port_bytes(p) for p in ports)


def compulsory_dram_bytes(graph: nx.DiGraph) -> tuple[int, int]:
    """(read, write) bytes no schedule avoids: weights + graph inputs; graph outputs."""
    read = 0
    for layer in layers(graph):
        read += layer.weight_bytes
        read += sum(layer.port_bytes(p) for p in layer.external_ports)
    write = sum(graph.nodes[n]["layer"].output_bytes for n in graph_outputs(graph))
    return read, write


def _param(spec: ArchSpec, key: str, default: int) -> int:
    value = spec.params.get(key, default)
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{spec.name}: params.{key} must be an integer >= 1, got {value!r}")
    return value


def split_units(total: int, parts: int, unit: int) -> list[int]:
    """``total`` cut into ``parts`` chunks that are whole multiples of ``unit`` (the last one
    clipped), so no chunk leaves an engine's rows or lanes idle that a coarser cut would fill;
    falls back to :func:`split` when there are fewer units than parts."""
    blocks = math.ceil(total / unit)
    if parts > blocks:
        return split(total, parts)
    sizes = [b * unit for b in split(blocks, parts)]
    sizes[-1] -= sum(sizes) - total
    return sizes


def _filter_unit(layer: Layer, stream: Stream, spec: ArchSpec) -> int:
    """Filters (depthwise: channels) one pass of the engine covers: its rows or lanes when the mode's
    dataflow unrolls them there, else 1 (archsim.sim.latency.spatial_unit)."""
    return _unit(layer, stream, spec, "G" if layer.kind == OpKind.CONV_DEPTHWISE else "F")


def _unit(layer: Layer, stream: Stream, spec: ArchSpec, dim: str) -> int:
    engine = spec.engine(stream.engine)
    mode = engine.mode(stream.mode)
    return spatial_unit(mode.dataflow, rule(layer.kind).family, dim, engine.rows, mode.lanes)


def _filter_blocks(layer: Layer, mapping: LayerMapping, spec: ArchSpec) -> int:
    if layer.kind in VECTOR_KINDS or layer.kind == OpKind.MATMUL:
        return 1
    if mapping.streams[0].dims.groups > 1:
        return mapping.streams[0].dims.groups
    return max(1, min(math.ceil(s.n_filters / _filter_unit(layer, s, spec)) for s in mapping.streams))


def _most_chunks(layer: Layer, mapping: LayerMapping) -> int:
    """The most filter chunks a layer can be cut into: one group, or one filter (channel), per chunk."""
    if layer.kind in VECTOR_KINDS or layer.kind == OpKind.MATMUL:
        return 1
    if mapping.streams[0].dims.groups > 1:
        return mapping.streams[0].dims.groups
    return max(1, min(s.n_filters for s in mapping.streams))


def plan_layer(
    layer: Layer,
    index: int,
    mapping: LayerMapping,
    spec: ArchSpec,
    dram_in: int,
    output_to_dram: bool,
    fused: str | None = None,
    position_ranges: list[tuple[int, int]] | None = None,
    at_least: int = 1,
) -> LayerPlan:
    """The tiles of one layer. ``fused`` (archsim.sim.fusion): ``producer`` or ``consumer`` of a fused pair,
    whose weights must fit one filter chunk. A producer runs as one filter chunk cut into at least
    ``min_tiles`` and ``at_least`` position tiles (whole output rows); a consumer takes its producer's
    ``position_ranges`` in order, each cut into up to ``min_tiles`` filter chunks whose weights load during
    the first position tile and stay resident (positions outer, filters inner: its first tile waits for one
    chunk of weights, not all)."""
    min_tiles = _param(spec, "min_tiles", DEFAULT_MIN_TILES)
    max_tiles = _param(spec, "max_tiles", DEFAULT_MAX_TILES)
    region = regions(spec)
    wcap = region.weights
    streams = mapping.streams
    depthwise = layer.kind == OpKind.CONV_DEPTHWISE
    weights = sum(s.weight_bytes for s in streams)

    # filter chunks: at least enough to fit half the weight region (double buffering); up to
    # min_tiles whole row blocks to overlap weight loading with compute when that costs no
    # extra DRAM reads of the inputs (inputs on-chip, or depthwise: channels split the input)
    fit = math.ceil(weights / max(1, wcap // WEIGHT_CHUNK_SHARE)) if weights else 1
    n_f = fit
    if fused:
        if weights > wcap // WEIGHT_CHUNK_SHARE:
            raise ValueError(f"{layer.name}: a fused layer must fit one filter chunk")
        n_f = (
            1 if fused == "producer" or not weights else min(min_tiles, _filter_blocks(layer, mapping, spec))
        )
    elif weights and (dram_in == 0 or depthwise):
        n_f = max(fit, min(min_tiles, _filter_blocks(layer, mapping, spec)))
    stream_chunks, chunk_bytes = _filter_chunks(layer, streams, spec, n_f)
    # chunks of whole row blocks are unequal: add chunks until the largest fits the half (double buffering),
    # past one row block a chunk if need be (its fold leaves rows idle; a stall on every chunk costs more)
    most = _most_chunks(layer, mapping) if weights else 1
    while not fused and weights and max(chunk_bytes) > wcap // WEIGHT_CHUNK_SHARE and n_f < most:
        n_f += 1
        stream_chunks, chunk_bytes = _filter_chunks(layer, streams, spec, n_f)
    if max(chunk_bytes) > wcap:
        raise TileFitError(
            f"{layer.name}: a weight chunk of {max(chunk_bytes)} B exceeds the {wcap} B weight region of "
            f"buffer {spec.buffer_for('weights').name}; the layer cannot be tiled (allowed: a larger weight "
            f"buffer)"
        )

    # position chunks: as many as max_tiles allows when activations stream through DRAM (so
    # loads and write-backs overlap compute), more only if a tile's share of the staging region
    # cannot hold its streamed bytes; depthwise chunks are whole row blocks of pixels
    positions = streams[0].dims.positions
    in_per_pass = dram_in // n_f if depthwise else dram_in
    out_per_pass = layer.output_bytes // n_f if output_to_dram else 0
    streamed = in_per_pass + out_per_pass
    n_p = 1
    if streamed:
        n_p = max(max_tiles // n_f, math.ceil(streamed / max(1, region.tile_stream)))
    if (
        fused == "producer"
    ):  # enough tiles to pipeline with its consumer (as many as overlap DMA with compute)
        n_p = max(n_p, min_tiles, at_least)
    n_p = max(1, min(n_p, positions))
    pos_unit = 1 if layer.kind in VECTOR_KINDS else _unit(layer, streams[0], spec, "P")
    if layer.kind in CONV_KINDS:  # whole output rows, so a tile's input rows (with their halo) are exact
        row = layer.out_shape[3]
        rows = positions // row
        pos_unit = math.lcm(pos_unit, row) if math.lcm(pos_unit, row) * n_p <= positions else row
        n_p = min(n_p, rows)
    args = (
        layer,
        streams,
        stream_chunks,
        chunk_bytes,
        spec,
        dram_in,
        output_to_dram,
        n_f,
        positions,
        pos_unit,
    )
    tiles = _tiles(*args, n_p, ranges=position_ranges, positions_outer=fused == "consumer")
    if (
        streamed
        and not fused
        and any(spec.engine(s.engine).mode(s.mode).dataflow.weight_load for s in streams)
    ):
        # an array that loads weights per fold reloads them in every position tile: choose the position
        # tiling with the shortest estimated time (docs/modelling.md "Memory model"), ties to more tiles
        least = max(1, math.ceil(streamed / max(1, region.tile_stream)))
        options = sorted({n_p, least} | {c for c in (2**k for k in range(8)) if least < c < n_p})
        estimates = {c: _estimate(_tiles(*args, c) if c != n_p else tiles, spec) for c in options}
        best = min(options, key=lambda c: (estimates[c], -c))
        if best != n_p:
            tiles = _tiles(*args, best)
    largest = max(tiles, key=lambda t: t.input_bytes + t.output_bytes)
    if largest.input_bytes + largest.output_bytes > region.staging:
        raise TileFitError(
            f"{layer.name}: its smallest tile streams {largest.input_bytes + largest.output_bytes} B through "
            f"buffer {spec.buffer_for('activations').name}, more than its {region.staging} B staging region "
            f"(the buffer less its 1/{RESIDENT_SHARE} resident share); allowed: a larger activation buffer, "
            f"or more tiles (params.max_tiles)"
        )
    return LayerPlan(layer.name, index, mapping, dram_in, output_to_dram, tuple(tiles))


def _filter_chunks(layer: Layer, streams, spec: ArchSpec, n_f: int):
    """(per stream its (dims, filters) per chunk, bytes per chunk): each stream's weights split in proportion
    to the chunk's filters (channels, groups' filters)."""
    stream_chunks = [_stream_chunks(layer, s, spec, n_f) for s in streams]
    stream_weights = [apportion(s.weight_bytes, [f for _, f in c]) for s, c in zip(streams, stream_chunks)]
    return stream_chunks, [sum(w[j] for w in stream_weights) for j in range(n_f)]


def _tiles(
    layer,
    streams,
    stream_chunks,
    chunk_bytes,
    spec,
    dram_in,
    output_to_dram,
    n_f,
    positions,
    pos_unit,
    n_p,
    ranges=None,
    positions_outer: bool = False,
) -> list[Tile]:
    """The n_f x n_p tiles: per filter chunk, its position chunks (whole units of ``pos_unit``, or the given
    position ``ranges``); ``positions_outer``: ordered by position chunk, then filter chunk (chunk j's
    weights still load before its first tile and free after its last)."""
    depthwise = layer.kind == OpKind.CONV_DEPTHWISE
    in_chunks = split(dram_in, n_f) if depthwise else [dram_in] * n_f
    out_chunks = split(layer.output_bytes if output_to_dram else 0, n_f)
    if ranges is not None:
        pos_chunks = [b - a for a, b in ranges]
    else:
        pos_chunks = split_units(positions, n_p, pos_unit)
    n_p = len(pos_chunks)
    pos_ranges = _ranges(pos_chunks)
    filter_ranges = [_ranges([f for _, f in chunks]) for chunks in stream_chunks]
    rows_exact = layer.kind in CONV_KINDS and _rows_exact(layer, pos_ranges)
    # the inputs the engines read from the buffer: a matmul's first operand (the second is the weights' role)
    engine_in = layer.operand_bytes(0) if layer.kind == OpKind.MATMUL else layer.input_bytes
    engine_in_chunks = split(engine_in, n_f) if depthwise else [engine_in] * n_f
    layer_ops = sum(s.ops for s in streams) or 1
    tiles = []
    for j in range(n_f):
        outs = apportion(out_chunks[j], pos_chunks)
        ins = _input_shares(layer, in_chunks[j], pos_chunks, pos_ranges, rows_exact and dram_in, fresh=True)
        engine_ins = _input_shares(layer, engine_in_chunks[j], pos_chunks, pos_ranges, rows_exact)
        for i, p in enumerate(pos_chunks):
            cycles, ops, port, accesses = [], [], [], []
            for s, chunks in zip(streams, stream_chunks):
                dims_j, filters_j = chunks[j]
                engine = spec.engine(s.engine)
                mode = engine.mode(s.mode)
                tile_dims = replace(dims_j, positions=p)
                cycles.append(
                    compute_cycles(
                        tile_dims,
                        engine.rows,
                        mode.lanes,
                        engine.pipeline_cycles,
                        mode.dataflow,
                        first_tile=(j, i) == (0, 0),
                    )
                )
                ops.append(tile_dims.ops if layer.kind in VECTOR_KINDS else filters_j * p * dims_j.reduction)
                if layer.kind == OpKind.MATMUL:  # B: the batches (heads) the tile's rows span, its columns
                    rows = layer.out_shape[-2]
                    p0, p1 = pos_ranges[i]
                    spanned = (p1 - 1) // rows - p0 // rows + 1
                    per_batch = matmul_b_bytes(layer) * rows // positions
                    weight_share = per_batch * spanned * filters_j // max(1, layer.out_shape[-1])
                else:
                    weight_share = apportion(s.weight_bytes, [f for _, f in chunks])[j]
                outputs = layer.output_bytes * ops[-1] // layer_ops
                port.append(tile_port(layer, spec, s, tile_dims, weight_share, engine_ins[i], outputs))
                accesses.append(
                    tile_accesses(layer, spec, s, tile_dims, weight_share, engine_ins[i], outputs)
                )
            tiles.append(
                Tile(
                    pos_ranges[i],
                    tuple(r[j] for r in filter_ranges),
                    chunk_bytes[j] if i == 0 else 0,
                    chunk_bytes[j] if i == n_p - 1 else 0,
                    ins[i],
                    outs[i],
                    tuple(cycles),
                    tuple(ops),
                    port=tuple(port),
                    accesses=tuple(accesses),
                )
            )
    if positions_outer:
        tiles = [tiles[j * n_p + i] for i in range(n_p) for j in range(n_f)]
    return tiles


def _input_shares(
    layer: Layer, total: int, pos_chunks, pos_ranges, by_rows: bool, fresh: bool = False
) -> list[int]:
    """``total`` input bytes per position tile: the input rows its output rows read, halo included, when
    ``by_rows``, else in proportion to its positions. ``fresh`` (DRAM reads): only the rows the previous tile
    did not read; the halo rows it shares with that tile stay staged [choice: a line buffer of the halo]."""
    if not by_rows:
        return apportion(total, pos_chunks)
    n, _, height, _ = layer.in_shapes[0]
    out, previous = [], (0, 0)
    for r in pos_ranges:
        rows = halo_rows(layer, r)
        if fresh:
            rows -= _shared_rows(layer, previous, r)
            previous = r
        out.append(math.ceil(rows * total / n / height))
    return out


def _shared_rows(layer: Layer, a: tuple[int, int], b: tuple[int, int]) -> int:
    """Input rows tiles of output positions ``a`` and ``b`` both read (within one image; 0 across images)."""
    if a == (0, 0):
        return 0
    _, _, ho, wo = layer.out_shape
    image_a, image_b = (a[1] - 1) // (ho * wo), b[0] // (ho * wo)
    if image_a != image_b:
        return 0
    base = image_a * ho * wo
    ra = input_rows(layer, max(a[0] - base, 0) // wo, -(-(a[1] - base) // wo))
    rb = input_rows(layer, (b[0] - base) // wo, -(-min(b[1] - base, ho * wo) // wo))
    return max(0, min(ra[1], rb[1]) - max(ra[0], rb[0]))


def apportion(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders first, deterministic); sums to
    total."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _rows_exact(layer: Layer, ranges: list[tuple[int, int]]) -> bool:
    """True when every tile covers whole output rows and the conv reads one input as it is (no access
    program)."""
    width = layer.out_shape[3]
    return (
        len(layer.operands[0].ports) == 1
        and not layer.operands[0].program
        and len(layer.in_shapes) == 1
        and all(a % width == 0 and b % width == 0 for a, b in ranges)
    )


def input_rows(layer: Layer, out_r0: int, out_r1: int) -> tuple[int, int]:
    """Input rows [a, b) of one image that output rows [out_r0, out_r1) read: kernel, stride, dilation,
    padding."""
    (kh, _), (sh, _), (dh, _) = layer.kernel, layer.stride, layer.dilation
    top = layer.padding[0]
    height = layer.in_shapes[0][2]
    return max(0, out_r0 * sh - top), min(height, (out_r1 - 1) * sh + dh * (kh - 1) - top + 1)


def halo_rows(layer: Layer, positions: tuple[int, int]) -> int:
    """Input rows (summed over the images it spans) a tile of output positions [p0, p1) reads."""
    n, _, ho, wo = layer.out_shape
    p0, p1 = positions
    rows = 0
    for image in range(p0 // (ho * wo), (p1 - 1) // (ho * wo) + 1):
        r0 = max(p0 - image * ho * wo, 0) // wo
        r1 = -(-min(p1 - image * ho * wo, ho * wo) // wo)
        a, b = input_rows(layer, r0, r1)
        rows += max(0, b - a)
    return rows


def _estimate(tiles: list[Tile], spec: ArchSpec) -> float:
    """Estimated cycles of a layer's tiles with double buffering: the first tile's load, then the larger of
    the compute (its streams concurrent) and the remaining DRAM traffic, then the last tile's write-back."""
    per_cycle = spec.dram.peak_bandwidth_bytes_per_s / spec.clock_hz
    first = (tiles[0].weight_load_bytes + tiles[0].input_bytes) / per_cycle
    last = tiles[-1].output_bytes / per_cycle
    total = sum(t.weight_load_bytes + t.input_bytes + t.output_bytes for t in tiles) / per_cycle
    compute = sum(max(t.cycles, default=0) for t in tiles)
    return first + max(compute, total - first - last) + last


def _ranges(sizes: list[int]) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges of the given sizes, from 0."""
    out, start = [], 0
    for size in sizes:
        out.append((start, start + size))
        start += size
    return out


def _stream_chunks(layer: Layer, stream: Stream, spec: ArchSpec, n_f: int) -> list[tuple]:
    """(dims, filters) per filter chunk of a stream: groups are split when G > 1, else filters
    in whole row (depthwise: lane) blocks."""
    d = stream.dims
    if d.kind in VECTOR_KINDS:
        return [(d, 0)] * n_f
    if d.groups > 1:
        return [(replace(d, groups=g), f) for g, f in zip(split(d.groups, n_f), split(stream.n_filters, n_f))]
    sizes = split_units(stream.n_filters, n_f, _filter_unit(layer, stream, spec))
    return [(replace(d, filters=f), f) for f in sizes]


class Planner:
    """Plans layers on demand, against one DRAM layout: all at once before the run (static residency,
    :func:`plan_graph`) or each as it starts, once its inputs' places are known (live residency, the
    scheduler)."""

    def __init__(self, graph: nx.DiGraph, spec: ArchSpec, mappings: dict[str, LayerMapping]) -> None:
        self.graph, self.spec, self.mappings = graph, spec, mappings
        self.index = {layer.name: i for i, layer in enumerate(layers(graph))}
        self.layout = dram_layout(graph, mappings)
        self.outputs = set(graph_outputs(graph))

    def plan(
        self,
        name: str,
        spilled: set[str],
        output_to_dram: bool,
        fused: str | None = None,
        position_ranges: list[tuple[int, int]] | None = None,
        at_least: int = 1,
        mapping: LayerMapping | None = None,
    ) -> LayerPlan:
        """Layer ``name`` with the producers in ``spilled`` read from DRAM and its output to DRAM or not
        (``fused``, ``position_ranges``, ``at_least``: :func:`plan_layer`), on its mapping or ``mapping``."""
        layer = self.graph.nodes[name]["layer"]
        dram_in = dram_input_bytes(self.graph, layer, spilled)
        plan = plan_layer(
            layer,
            self.index[name],
            mapping or self.mappings[name],
            self.spec,
            dram_in,
            output_to_dram,
            fused,
            position_ranges,
            at_least,
        )
        return with_addresses(self.graph, plan, self.layout, spilled)


def plan_graph(graph: nx.DiGraph, spec: ArchSpec, mappings: dict[str, LayerMapping]) -> dict[str, LayerPlan]:
    """Every layer planned before the run by the static rule of :func:`spilled_tensors` (under ``live``
    residency: the fit rule, the plan a static tool would make; the run decides its own)."""
    planner = Planner(graph, spec, mappings)
    spilled = spilled_tensors(graph, spec)
    return {
        layer.name: planner.plan(layer.name, spilled, layer.name in spilled or layer.name in planner.outputs)
        for layer in layers(graph)
    }


INPUT_TENSOR = "input"  # the graph input's name in the DRAM layout


def dram_layout(graph: nx.DiGraph, mappings: dict[str, LayerMapping]) -> dict:
    """Every tensor's home in DRAM, laid out by archsim.sim.dram_alloc in graph order: each layer's weights,
    the graph input, every layer's output (an output that stays on chip never touches its home: every tensor
    has one, so a layer planned at run time finds any spilled input)."""
    tensors = []
    for name in graph.graph["order"]:
        weight_bytes = sum(s.weight_bytes for s in mappings[name].streams)
        if weight_bytes:
            tensors.append((f"weights:{name}", weight_bytes, "weights"))
    external = [layer.port_bytes(p) for layer in layers(graph) for p in layer.external_ports]
    if external:
        tensors.append((INPUT_TENSOR, max(external), "activation"))
    tensors += [
        (name, graph.nodes[name]["layer"].output_bytes, "activation")
        for name in graph.graph["order"]
        if graph.nodes[name]["layer"].output_bytes
    ]
    return allocate(tensors)


def with_addresses(graph: nx.DiGraph, plan: LayerPlan, layout: dict, spilled: set[str]) -> LayerPlan:
    """``plan`` with DRAM addresses on its tiles: the weight chunk, one read per DRAM-read tensor, the
    output."""
    layer = graph.nodes[plan.name]["layer"]
    sources = [layout[INPUT_TENSOR].base] * len(layer.external_ports)  # the ports read from DRAM, in order
    for u in sorted(graph.predecessors(layer.name)):
        if u in spilled and u in layout:
            sources += [layout[u].base] * len(graph.edges[u, layer.name]["ports"])
    weights = layout.get(f"weights:{layer.name}")
    output = layout.get(layer.name)
    w_cursor, o_cursor, i_cursor = 0, 0, [0] * len(sources)
    repass = layer.kind != OpKind.CONV_DEPTHWISE  # depthwise filter chunks read other channels
    tiles = []
    for t in plan.tiles:
        reads = []
        if t.input_bytes and sources:
            shares = split(t.input_bytes, len(sources))
            for k, (base, share) in enumerate(zip(sources, shares)):
                if share:
                    reads.append((base + i_cursor[k], share))
                    i_cursor[k] += share
        tiles.append(
            replace(
                t,
                weight_address=(weights.base if weights else 0) + w_cursor,
                input_reads=tuple(reads),
                output_address=(output.base if output else 0) + o_cursor,
            )
        )
        w_cursor += t.weight_load_bytes
        o_cursor += t.output_bytes
        if repass and t.positions[1] == plan.tiles[-1].positions[1]:  # a filter pass ends: the next re-reads
            i_cursor = [0] * len(sources)
    return replace(plan, tiles=tuple(tiles))
