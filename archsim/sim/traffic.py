"""Buffer traffic: the bytes each tile's engines read from and write to each buffer, from the dataflow.

One rule for timing and energy [choice, docs/modelling.md "Memory model"]: the engine-side bytes of a tile
pass the buffers' engine ports (archsim.sim.buffers) and are priced by the energy model, together with the
DMA's bytes (:func:`layer_traffic`).

**Reuse from the unrolling** (archsim.arch.dataflow). A fold maps blocks of the ``rows`` and ``lanes`` dims
onto the array and streams the ``stream`` dims through it; the other dims are outer loops. Within a fold an
operand element is fetched once: one that is not indexed by a stream dim stays in the PEs while the stream
passes (weights in a weight- or MAT-stationary array), one that is not indexed by a spatial dim is broadcast
across it. An operand is fetched again for every fold that revisits it, so per tile::

    reads(operand) = bytes(operand's share of the tile) x prod over the rows group, the lanes group and the
                     outer dims that do not index it of their fold counts (ceil(prod / R), ceil(prod / L),
                     the bound)

with the operands indexed by: weights (G, F, C, T), inputs (G, P, C, T), outputs (G, P, F) for convs;
weights (G, T), inputs (G, P, T), outputs (G, P) for depthwise; B (F, C), A (P, C), outputs (P, F) for linear
and matmul (a matmul's B plays the weights' role and lives in the activation buffer). Outputs are written once
per tile (port time); the partial sums of a reduction split over folds are energy-only accesses
(:func:`tile_accesses`, docs/modelling.md "Energy").
A tile's input share is the input rows its output rows read (the halo included) for a conv, else its share
of positions; its weight share is its filter chunk's; its output share is in proportion to its ops. Vector
kinds read their inputs and write their outputs once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archsim.arch.dataflow import FAMILY_DIMS
from archsim.arch.spec import ArchSpec
from archsim.graph.ir import Layer, OpKind
from archsim.graph.opkinds import Family, WorkDims, rule
from archsim.sim.latency import loop_bounds

OPERAND_DIMS: dict[Family, dict[str, frozenset[str]]] = {
    Family.CONV: {
        "weights": frozenset("GFCT"),
        "inputs": frozenset("GPCT"),
        "outputs": frozenset("GPF"),
    },
    Family.DEPTHWISE: {"weights": frozenset("GT"), "inputs": frozenset("GPT"), "outputs": frozenset("GP")},
    Family.LINEAR: {"weights": frozenset("FC"), "inputs": frozenset("PC"), "outputs": frozenset("PF")},
    Family.MATMUL: {"weights": frozenset("FC"), "inputs": frozenset("PC"), "outputs": frozenset("PF")},
}


@dataclass
class BufferTraffic:
    """Bytes read from / written to each buffer by one layer."""

    reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)

    def add(self, buffer: str, reads: int = 0, writes: int = 0) -> None:
        self.reads[buffer] = self.reads.get(buffer, 0) + reads
        self.writes[buffer] = self.writes.get(buffer, 0) + writes

    @property
    def total(self) -> int:
        return sum(self.reads.values()) + sum(self.writes.values())


def revisits(dims: WorkDims, family: Family, unrolling, rows: int, lanes: int, operand: str) -> int:
    """How many folds of one tile fetch each element of ``operand`` (see the module docstring)."""
    bounds = loop_bounds(dims, family)
    indexed = OPERAND_DIMS[family][operand]
    n = 1
    for group, width in ((unrolling.rows, rows), (unrolling.lanes, lanes)):
        if group and not set(group) & indexed:
            n *= math.ceil(math.prod(bounds[d] for d in group) / width)
    placed = set(unrolling.rows) | set(unrolling.lanes) | set(unrolling.stream)
    for d in FAMILY_DIMS[family]:
        if d not in placed and d not in indexed:
            n *= bounds[d]
    return n


def tile_port(
    layer: Layer,
    spec: ArchSpec,
    stream,
    dims: WorkDims,
    weight_bytes: int,
    input_bytes: int,
    output_bytes: int,
) -> tuple[tuple[str, int, int], ...]:
    """(buffer, reads, writes) of one stream's engine in one tile: ``dims`` is the tile's work, the byte
    arguments its shares of the weights (the filter chunk), the inputs and the outputs."""
    abuf = spec.buffer_for("activations").name
    family = rule(layer.kind).family
    out: dict[str, list[int]] = {}

    def add(buffer: str, reads: int = 0, writes: int = 0) -> None:
        entry = out.setdefault(buffer, [0, 0])
        entry[0] += reads
        entry[1] += writes

    if family == Family.VECTOR:
        add(abuf, reads=input_bytes, writes=output_bytes)
    else:
        engine = spec.engine(stream.engine)
        mode = engine.mode(stream.mode)
        unrolling = mode.dataflow.unrolling(family)
        again = {
            op: revisits(dims, family, unrolling, engine.rows, mode.lanes, op) for op in ("weights", "inputs")
        }
        wbuf = spec.buffer_for("weights").name if layer.kind.has_weights else abuf
        add(wbuf, reads=weight_bytes * again["weights"])
        add(abuf, reads=input_bytes * again["inputs"], writes=output_bytes)
    return tuple((b, r, w) for b, (r, w) in sorted(out.items()) if r or w)


def matmul_b_bytes(layer: Layer) -> int:
    """A matmul's second operand (the weights' role), read from the activation buffer."""
    return layer.operand_bytes(1) if layer.kind == OpKind.MATMUL else 0


def layer_traffic(plan, spec: ArchSpec, dram_in_bytes: int, dram_out_bytes: int, weight_load_bytes: int):
    """A layer's buffer traffic: its tiles' engine-side bytes, plus the DMA's (data arriving is written,
    data leaving is read)."""
    t = BufferTraffic()
    for tile in plan.tiles:
        for stream_port in tile.port:
            for buffer, reads, writes in stream_port:
                t.add(buffer, reads=reads, writes=writes)
    abuf = spec.buffer_for("activations").name
    t.add(abuf, writes=dram_in_bytes, reads=dram_out_bytes)
    if weight_load_bytes:
        t.add(spec.buffer_for("weights").name, writes=weight_load_bytes)
    return t


# -- port accesses, as a real array makes them (energy only; docs/modelling.md "Energy") ---------------

# [S] int32 partial sums between the array and the buffer (ZigZag and the hand model, benchmarks/crosscheck)
ACC_BITS = 32


@dataclass(frozen=True)
class AccessStream:
    """One operand's traffic through one buffer port in one tile: ``nbytes`` moved as ``streams`` access
    streams of equal size (one per fold that fetches or stores it), each rounded up to whole port words:
    a port access reads or writes the whole port, however few of its bytes are useful."""

    buffer: str
    operand: str  # weights | inputs | outputs | psums (partial sums)
    write: bool
    nbytes: int
    streams: int  # >= 1
    port: int  # the buffer's port width, bytes

    def accesses(self) -> int:
        """streams x ceil(ceil(bytes / streams) / port width) (an upper bound when the bytes do not split
        evenly: each stream is counted at the largest one's size)."""
        if not self.nbytes:
            return 0
        per_stream = -(-self.nbytes // self.streams)
        return self.streams * -(-per_stream // self.port)


def psum_folds(dims: WorkDims, family: Family, unrolling, rows: int, lanes: int) -> int:
    """Folds that revisit each output: > 1 when the reduction is split over folds (its partial sums leave the
    array and come back, :func:`tile_accesses`)."""
    return revisits(dims, family, unrolling, rows, lanes, "outputs")


def tile_accesses(
    layer: Layer,
    spec: ArchSpec,
    stream,
    dims: WorkDims,
    weight_bytes: int,
    input_bytes: int,
    output_bytes: int,
) -> tuple[AccessStream, ...]:
    """The access streams of one stream's engine in one tile (the bytes of :func:`tile_port`, split by
    operand, plus the partial sums). Each fold of the tile (archsim.sim.latency.folds_and_stream) fetches
    its block of the weights and the inputs: one stream each per fold; the outputs are stored once per
    output block (folds / f, f = the folds that revisit an output); a reduction split over f > 1 folds
    writes and reads back each output's int32 partial sum f - 1 times, one stream per fold that does
    (ZigZag and the hand model of benchmarks/crosscheck count the same partial sums). Vector kinds: one
    stream per operand per tile."""
    from archsim.sim.latency import folds_and_stream

    abuf = spec.buffer_for("activations")
    family = rule(layer.kind).family
    width = {b.name: b.bandwidth_bytes_per_cycle for b in spec.buffers}
    out: list[AccessStream] = []

    def add(buffer: str, operand: str, write: bool, nbytes: int, streams: int) -> None:
        if nbytes:
            out.append(AccessStream(buffer, operand, write, nbytes, max(1, streams), width[buffer]))

    if family == Family.VECTOR:
        add(abuf.name, "inputs", False, input_bytes, 1)
        add(abuf.name, "outputs", True, output_bytes, 1)
        return tuple(out)
    engine = spec.engine(stream.engine)
    mode = engine.mode(stream.mode)
    unrolling = mode.dataflow.unrolling(family)
    rows, lanes = engine.rows, mode.lanes
    folds, _ = folds_and_stream(dims, family, unrolling, rows, lanes)
    wbuf = spec.buffer_for("weights").name if layer.kind.has_weights else abuf.name
    for operand, buffer, nbytes in (("weights", wbuf, weight_bytes), ("inputs", abuf.name, input_bytes)):
        add(buffer, operand, False, nbytes * revisits(dims, family, unrolling, rows, lanes, operand), folds)
    f = psum_folds(dims, family, unrolling, rows, lanes)
    blocks = max(1, folds // f)
    add(abuf.name, "outputs", True, output_bytes, blocks)
    if f > 1 and output_bytes:
        elements = math.ceil(output_bytes * 8 / layer.out_bits)
        psum = elements * (f - 1) * ACC_BITS // 8
        add(abuf.name, "psums", True, psum, blocks * (f - 1))
        add(abuf.name, "psums", False, psum, blocks * (f - 1))
    return tuple(out)
