"""Static memory plan: which tensors stay on-chip, and how each layer is cut into tiles.

Pure functions of (graph, spec, mappings); docs/modelling.md "Memory model" states the rules:
- a tensor stays in the activation buffer when the working set (inputs + output bytes) of
  its producer and of each consumer fits in half the activation buffer (the other half is
  the ping-pong half for tiles in flight); otherwise it is spilled: written to DRAM once,
  read back by every consumer. Graph inputs come from DRAM, graph outputs go to DRAM.
- weights stream from DRAM once per layer; they are cut into filter chunks of at most half
  the weight buffer (double buffering); output positions are cut so a tile's DRAM-streamed
  bytes fit a quarter of the activation buffer.
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

DEFAULT_MIN_TILES = 4  # [choice] enough tiles to overlap DMA with compute
DEFAULT_MAX_TILES = 16  # [choice] bounds events per layer (simulation speed)
# Buffer shares [choice, docs/modelling.md "Memory model"]; double buffering as in Trio-ViT's ping-pong
# activation buffers and every tiled accelerator since (one half computes while the other loads):
RESIDENT_SHARE = (
    2  # a tensor stays on chip when working sets fit 1/2 of the activation buffer (the rest: tiles in flight)
)
WEIGHT_CHUNK_SHARE = (
    2  # a weight chunk is at most 1/2 of the weight buffer: the next chunk loads while this one computes
)
TILE_STREAM_SHARE = (
    4  # a tile streams at most 1/4 of the activation buffer: two tiles in flight in the other half
)


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
    usable = spec.buffer_for("activations").capacity_bytes // RESIDENT_SHARE
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


def plan_layer(
    layer: Layer, index: int, mapping: LayerMapping, spec: ArchSpec, dram_in: int, output_to_dram: bool
) -> LayerPlan:
    min_tiles = _param(spec, "min_tiles", DEFAULT_MIN_TILES)
    max_tiles = _param(spec, "max_tiles", DEFAULT_MAX_TILES)
    wcap = spec.buffer_for("weights").capacity_bytes
    acap = spec.buffer_for("activations").capacity_bytes
    streams = mapping.streams
    depthwise = layer.kind == OpKind.CONV_DEPTHWISE
    weights = sum(s.weight_bytes for s in streams)

    # filter chunks: at least enough to fit half the weight buffer (double buffering); up to
    # min_tiles whole row blocks to overlap weight loading with compute when that costs no
    # extra DRAM reads of the inputs (inputs on-chip, or depthwise: channels split the input)
    fit = math.ceil(weights / max(1, wcap // WEIGHT_CHUNK_SHARE)) if weights else 1
    n_f = fit
    if weights and (dram_in == 0 or depthwise):
        n_f = max(fit, min(min_tiles, _filter_blocks(layer, mapping, spec)))
    stream_chunks = [_stream_chunks(layer, s, spec, n_f) for s in streams]
    chunk_bytes = [sum(split(s.weight_bytes, n_f)[j] for s in streams) for j in range(n_f)]
    if max(chunk_bytes) > wcap:
        raise ValueError(
            f"{layer.name}: a weight chunk of {max(chunk_bytes)} B exceeds buffer "
            f"{spec.buffer_for('weights').name} ({wcap} B); the layer cannot be tiled"
        )

    # position chunks: as many as max_tiles allows when activations stream through DRAM (so
    # loads and write-backs overlap compute), more only if a quarter activation buffer
    # cannot hold a tile's streamed bytes; depthwise chunks are whole row blocks of pixels
    positions = streams[0].dims.positions
    in_per_pass = dram_in // n_f if depthwise else dram_in
    out_per_pass = layer.output_bytes // n_f if output_to_dram else 0
    streamed = in_per_pass + out_per_pass
    n_p = 1
    if streamed:
        n_p = max(max_tiles // n_f, math.ceil(streamed / max(1, acap // TILE_STREAM_SHARE)))
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
    tiles = _tiles(*args, n_p)
    if streamed and any(spec.engine(s.engine).mode(s.mode).dataflow.weight_load for s in streams):
        # an array that loads weights per fold reloads them in every position tile: choose the position
        # tiling with the shortest estimated time (docs/modelling.md "Memory model"), ties to more tiles
        least = max(1, math.ceil(streamed / max(1, acap // TILE_STREAM_SHARE)))
        options = sorted({n_p, least} | {c for c in (2**k for k in range(8)) if least < c < n_p})
        estimates = {c: _estimate(_tiles(*args, c) if c != n_p else tiles, spec) for c in options}
        best = min(options, key=lambda c: (estimates[c], -c))
        if best != n_p:
            tiles = _tiles(*args, best)
    return LayerPlan(layer.name, index, mapping, dram_in, output_to_dram, tuple(tiles))


def _tiles(
    layer, streams, stream_chunks, chunk_bytes, spec, dram_in, output_to_dram, n_f, positions, pos_unit, n_p
) -> list[Tile]:
    """The n_f x n_p tiles: per filter chunk, its position chunks (whole units of ``pos_unit``)."""
    depthwise = layer.kind == OpKind.CONV_DEPTHWISE
    in_chunks = split(dram_in, n_f) if depthwise else [dram_in] * n_f
    out_chunks = split(layer.output_bytes if output_to_dram else 0, n_f)
    pos_chunks = split_units(positions, n_p, pos_unit)
    n_p = len(pos_chunks)
    pos_ranges = _ranges(pos_chunks)
    filter_ranges = [_ranges([f for _, f in chunks]) for chunks in stream_chunks]
    halo = layer.kind in CONV_KINDS and dram_in and _rows_exact(layer, pos_ranges)
    tiles = []
    for j in range(n_f):
        outs = apportion(out_chunks[j], pos_chunks)
        if halo:  # each tile reads the input rows its output rows need, halo included (neighbours re-read it)
            ins = [
                math.ceil(halo_rows(layer, r) * in_chunks[j] / layer.in_shapes[0][0] / layer.in_shapes[0][2])
                for r in pos_ranges
            ]
        else:
            ins = apportion(in_chunks[j], pos_chunks)
        for i, p in enumerate(pos_chunks):
            cycles, ops = [], []
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
                )
            )
    return tiles


def apportion(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders first, deterministic); sums to total."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _rows_exact(layer: Layer, ranges: list[tuple[int, int]]) -> bool:
    """True when every tile covers whole output rows and the conv reads one input as it is (no access program)."""
    width = layer.out_shape[3]
    return (
        len(layer.operands[0].ports) == 1
        and not layer.operands[0].program
        and len(layer.in_shapes) == 1
        and all(a % width == 0 and b % width == 0 for a, b in ranges)
    )


def input_rows(layer: Layer, out_r0: int, out_r1: int) -> tuple[int, int]:
    """Input rows [a, b) of one image that output rows [out_r0, out_r1) read: kernel, stride, dilation, padding."""
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


def plan_graph(graph: nx.DiGraph, spec: ArchSpec, mappings: dict[str, LayerMapping]) -> dict[str, LayerPlan]:
    spilled = spilled_tensors(graph, spec)
    outputs = set(graph_outputs(graph))
    plans = {}
    for index, layer in enumerate(layers(graph)):
        plans[layer.name] = plan_layer(
            layer,
            index,
            mappings[layer.name],
            spec,
            dram_input_bytes(graph, layer, spilled),
            layer.name in spilled or layer.name in outputs,
        )
    return _with_addresses(graph, plans, spilled | outputs)


INPUT_TENSOR = "input"  # the graph input's name in the DRAM layout


def dram_layout(graph: nx.DiGraph, plans: dict[str, LayerPlan], to_dram: set[str]) -> dict:
    """Every tensor that lives in DRAM, laid out by archsim.sim.dram_alloc in graph order: each layer's weights,
    the graph input, every output written to DRAM."""
    tensors = [
        (f"weights:{name}", plans[name].weight_bytes, "weights")
        for name in graph.graph["order"]
        if plans[name].weight_bytes
    ]
    external = [layer.port_bytes(p) for layer in layers(graph) for p in layer.external_ports]
    if external:
        tensors.append((INPUT_TENSOR, max(external), "activation"))
    tensors += [
        (name, graph.nodes[name]["layer"].output_bytes, "activation")
        for name in graph.graph["order"]
        if name in to_dram and graph.nodes[name]["layer"].output_bytes
    ]
    return allocate(tensors)


def _with_addresses(
    graph: nx.DiGraph, plans: dict[str, LayerPlan], to_dram: set[str]
) -> dict[str, LayerPlan]:
    layout = dram_layout(graph, plans, to_dram)
    out = {}
    for layer in layers(graph):
        plan = plans[layer.name]
        sources = [layout[INPUT_TENSOR].base] * len(
            layer.external_ports
        )  # the ports read from DRAM, in order
        for u in sorted(graph.predecessors(layer.name)):
            if u in to_dram and u in layout:
                sources += [layout[u].base] * len(graph.edges[u, layer.name]["ports"])
        weights = layout.get(f"weights:{layer.name}")
        output = layout.get(layer.name)
        w_cursor, o_cursor, i_cursor = 0, 0, [0] * len(sources)
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
            repass = layer.kind != OpKind.CONV_DEPTHWISE  # depthwise filter chunks read other channels
            if (
                repass and t.positions[1] == plan.tiles[-1].positions[1]
            ):  # a filter pass ends: the next re-reads
                i_cursor = [0] * len(sources)
        out[layer.name] = replace(plan, tiles=tuple(tiles))
    return out
