"""The dataflow-graph IR: the contract between the torch side and the simulator (schema version 2).

A workload graph is a ``networkx.DiGraph`` whose nodes are layer names and whose node
attribute ``"layer"`` holds a :class:`Layer`. The graph carries everything needed to *execute*
it as well as to time it: every layer's integer parameters (:class:`QuantInfo`), its
convolution geometry, its typed per-kind attributes, and for each operand the access program
(:mod:`archsim.graph.access`) that assembles it from its producers' tensors.

Ports and operands: a layer's *ports* are its input streams, one per producer it reads
(``in_shapes[p]`` is the bounding box of the elements port p reads, ``in_bits[p]`` their
width as the producer stores them, ``producers[p]`` the producing layer or None for the graph
input). Its *operands* are the tensor arguments of its operation; each is built from one or
more ports by an access program (a concatenation of two producers is one operand of two
ports). An edge ``u -> v`` means v reads u's output: ``bytes`` is the size of u's output,
``read_bytes`` what v reads of it, ``ports`` which of v's ports it feeds.

Graph-level attributes (``G.graph``): ``schema_version``, ``model``, ``resolution``,
``batch``, ``policy``, ``seed``, ``input_shape``, ``order`` (execution order), and optional
reports (``quant_summary``).

Nothing here imports torch: the simulator and the functional executor depend only on this
package, :mod:`archsim.numerics`, numpy and networkx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import networkx as nx
import numpy as np

from archsim.graph.access import Step, program_shape
from archsim.numerics.integer import Rounding
from archsim.numerics.integer_norm import LayerNormParams

SCHEMA_VERSION = 2
FLOAT_BITS = (
    32  # a width at or above this is floating point (fp32 tensors), or an int32+ accumulator kept wide
)


class OpKind(str, Enum):
    """What a layer computes; the per-kind rules are in :mod:`archsim.graph.opkinds`."""

    CONV_DENSE = "conv_dense"  # groups == 1, kernel > 1x1 (the stem)
    CONV_POINTWISE = "conv_pointwise"  # 1x1, groups == 1
    CONV_DEPTHWISE = "conv_depthwise"  # groups == in channels == out channels
    CONV_GROUPED = "conv_grouped"  # 1 < groups < in channels (LiteMLA's grouped 1x1)
    MATMUL = "matmul"  # activation x activation (linear attention)
    LINEAR = "linear"  # activation x weight, fully connected (classifier head)
    ADD = "add"  # elementwise sum of two tensors (residuals)
    DIV = "div"  # elementwise division (linear-attention normalisation)
    POOL = "pool"  # global average pooling
    NORM = "norm"  # layer norm
    ACTIVATION = "activation"  # a standalone activation that could not be fused

    @property
    def has_weights(self) -> bool:
        return self in WEIGHTED_KINDS

    @property
    def is_mac(self) -> bool:
        return self in MAC_KINDS


CONV_KINDS = frozenset({OpKind.CONV_DENSE, OpKind.CONV_POINTWISE, OpKind.CONV_DEPTHWISE, OpKind.CONV_GROUPED})
WEIGHTED_KINDS = CONV_KINDS | {OpKind.LINEAR}
MAC_KINDS = WEIGHTED_KINDS | {OpKind.MATMUL}
VECTOR_KINDS = frozenset({OpKind.ADD, OpKind.DIV, OpKind.POOL, OpKind.NORM, OpKind.ACTIVATION})


class Scheme(str, Enum):
    """How one output filter's weights are quantized."""

    UNIFORM = "uniform"
    APOT = "apot"
    FLOAT = "float"  # not quantized (fp32 policy, unquantized classifier)


class Epilogue(str, Enum):
    """An operation fused after a layer's main computation, in order."""

    BIAS = "bias"  # add the (BN-folded) bias to the accumulator
    BN_FOLDED = "bn_folded"  # bookkeeping: a BatchNorm was folded into weights and bias (no op of its own)
    RELU = "relu"
    RELU6 = "relu6"
    HARDSWISH = "hardswish"
    GELU = "gelu"
    SILU = "silu"
    REQUANT = "requant"  # accumulator -> 8-bit codes (multiplier and shift)


ACTIVATION_EPILOGUES = frozenset(
    {Epilogue.RELU, Epilogue.RELU6, Epilogue.HARDSWISH, Epilogue.GELU, Epilogue.SILU}
)


class Role(str, Enum):
    """What a weighted layer is for (the quantization policy picks its weight rule by role)."""

    DENSE = "dense"
    POINTWISE = "pointwise"
    DEPTHWISE = "depthwise"
    CLASSIFIER = "classifier"


class Denominator(str, Enum):
    """How the linear-attention division treats its denominator."""

    EXACT = "exact"  # integer division with rounding (numerics.integer.divide_requant)
    LOG2 = "log2"  # rounded to a power of two, the division becomes a shift (Trio-ViT; divide_log2_requant)


@dataclass(frozen=True)
class Operand:
    """One tensor argument of a layer: ``program`` applied to the whole tensors of ``ports``' producers."""

    shape: tuple[int, ...]
    ports: tuple[int, ...]
    program: tuple[Step, ...] = ()  # empty: the single port's producer tensor as it is


@dataclass(frozen=True)
class DivAttrs:
    eps: float = 0.0  # added to the denominator, in real units
    denominator: Denominator = Denominator.EXACT


@dataclass(frozen=True)
class NormAttrs:
    # LayerNorm's epsilon, in real units (the integer rule carries it as QuantInfo.norm_params.eps_int)
    eps: float


@dataclass(eq=False)
class OutputRefinement:
    """A producer whose stored 8-bit tensor is ``(y - shift) / divisor`` (Trio-ViT channel migration /
    filter shifting of its consumer's input). Maps broadcast to the producer's own output layout;
    ``consumer`` is the layer whose input channels the policy's per-channel lists indexed."""

    consumer: str
    divisor: np.ndarray | None = None  # float64, broadcastable to the output; None: 1
    shift: np.ndarray | None = None  # float64, broadcastable to the output; None: 0

    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        divisor = np.asarray(1.0 if self.divisor is None else self.divisor, dtype=np.float64)
        shift = np.asarray(0.0 if self.shift is None else self.shift, dtype=np.float64)
        return divisor, shift


@dataclass(eq=False)
class QuantInfo:
    """The quantization decisions for one layer, enough to compute it in integers.

    Weighted layers: ``weight_int`` holds the integer weight codes with the layer's weight
    shape (uniform: signed integers in [-(2^(b-1)), 2^(b-1)-1] after zero-point removal;
    APoT: the signed level value in units of ``apot_unit`` so that
    ``weight_int * weight_scale`` is the dequantized weight). ``apot_mask[f]`` is True when
    output filter f uses APoT. Scales are per output channel (length = out channels).
    """

    weight_bits: int | None = None  # bits per weight code (uniform filters)
    apot_bits: int | None = None  # bits per weight code (APoT filters)
    apot_mask: np.ndarray | None = None  # bool[out_channels]
    weight_scale: np.ndarray | None = None  # float64[out_channels]
    weight_zero_point: np.ndarray | None = None  # int64[out_channels], 0 if symmetric
    weight_int: np.ndarray | None = None  # int64, weight shape
    bias: np.ndarray | None = None  # float64[out_channels] (folded BN included)
    act_bits: int = 8  # bits of each input activation
    in_scales: tuple[float, ...] = ()  # per input port
    in_zero_points: tuple[int, ...] = ()
    out_bits: int = 8  # bits of the output after requantization (32 = kept wide)
    out_scale: float | None = None
    out_zero_point: int = 0
    # Integer-path parameters (docs/quantization.md "Integer semantics"; archsim.numerics.integer).
    # requant: real multiplier ~= requant_m0 * 2^-requant_shift. MAC layers: per output channel,
    # s_in * s_w / s_target (s_target = lut_in_scale when a Hardswish LUT follows, else
    # out_scale); pool: one entry; add: one m0 per input with a common shift; div: per head.
    requant_m0: np.ndarray | None = None  # int64; None for wide outputs
    requant_shift: np.ndarray | None = None  # int64, same shape as requant_m0
    # add / div whose stored output is shifted for its consumer (Trio-ViT filter shifting): the
    # offset in output codes, add: on the common shift (2^-S units), div: with
    # integer.OFFSET_FRACTION_BITS fraction bits; broadcastable to the output. None: no offset.
    requant_offset: np.ndarray | None = None
    rounding: Rounding = Rounding.HALF_AWAY_FROM_ZERO  # of every requantization of this layer
    bias_int: np.ndarray | None = None  # int64[out]: round(bias / (s_in s_w)) - zp_in * sum_k w_int
    # MAC layers: real = acc * acc_scale; float64[out] (weighted) or a map broadcastable to the
    # output (matmul)
    acc_scale: np.ndarray | None = None
    in_acc_scales: tuple[
        np.ndarray | None, ...
    ] = ()  # per input port: the scale map of a wide input (None: 8-bit)
    lut_in_bits: int | None = None  # fused Hardswish: bits of the LUT input grid (table of 2^bits entries)
    lut_in_scale: np.ndarray | None = None  # float64[out]: the LUT input grid per output channel
    lut_in_zero_point: np.ndarray | None = (
        None  # int64[out] (the LUT output grid is out_scale / out_zero_point)
    )
    eps_int: np.ndarray | None = None  # div: eps in units of s_den / 2^8 (>= 1), per head
    # norm: the integer LayerNorm's parameters (fixed-point gamma / beta on the output grid, or on the
    # LUT input grid when a Hardswish follows; eps_int)
    norm_params: LayerNormParams | None = None

    @property
    def apot_filters(self) -> int:
        return 0 if self.apot_mask is None else int(np.count_nonzero(self.apot_mask))

    @property
    def apot_fraction(self) -> float:
        if self.apot_mask is None or self.apot_mask.size == 0:
            return 0.0
        return self.apot_filters / self.apot_mask.size

    def filter_schemes(self) -> list[Scheme]:
        if self.apot_mask is None:
            return []
        return [Scheme.APOT if m else Scheme.UNIFORM for m in self.apot_mask]


@dataclass(eq=False)
class Layer:
    """One node of the dataflow graph: a compute layer with its fused epilogue.

    Shapes include the batch dimension. Convolutions use NCHW; matmul operands are
    (..., M, K) x (..., K, N); linear is (..., K) x weight (N, K). ``padding`` is
    (top, bottom, left, right) of the zero (real 0) padding a convolution applies; a 2-tuple
    (ph, pw) is read as symmetric.
    """

    name: str
    kind: OpKind
    in_shapes: tuple[tuple[int, ...], ...]  # per port: the bounding box of the elements it reads
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, ...] | None = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, ...] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    macs: int = 0  # multiply-accumulates (MAC kinds)
    elements: int = 0  # output elements (vector kinds); also the epilogue's work
    epilogue: tuple[Epilogue, ...] = ()  # fused ops in order, e.g. (BIAS, HARDSWISH, REQUANT)
    weight_bits: int | None = None  # None when the layer has no weights
    act_bits: int = 8  # bits per input activation element: the widest port
    out_bits: int = 8  # bits per output element as stored
    in_bits: tuple[int, ...] = ()  # per port; () means act_bits for every port
    operands: tuple[Operand, ...] = ()  # () means one operand per port, read as it is
    producers: tuple[str | None, ...] = ()  # per port (set by add_layer); None: the graph input
    role: Role | None = None  # weighted layers
    div: DivAttrs | None = None  # DIV layers
    norm: NormAttrs | None = None  # NORM layers
    refinement: OutputRefinement | None = None  # producers refined for their consumer (Trio-ViT)
    quant: QuantInfo | None = None
    source: str = ""  # provenance: the torch module path or fx node it came from

    def __post_init__(self) -> None:
        self.in_shapes = tuple(tuple(int(d) for d in s) for s in self.in_shapes)
        self.out_shape = tuple(int(d) for d in self.out_shape)
        if len(self.padding) == 2:
            ph, pw = self.padding
            self.padding = (ph, ph, pw, pw)
        if len(self.padding) != 4:
            raise ValueError(f"{self.name}: padding must be (top, bottom, left, right), got {self.padding}")
        self.epilogue = tuple(Epilogue(e) for e in self.epilogue)
        if not self.in_bits:
            self.in_bits = (self.act_bits,) * len(self.in_shapes)
        if len(self.in_bits) != len(self.in_shapes):
            raise ValueError(f"{self.name}: {len(self.in_bits)} port widths for {len(self.in_shapes)} ports")
        if not self.operands:
            self.operands = tuple(Operand(s, (p,)) for p, s in enumerate(self.in_shapes))

    # -- ports ------------------------------------------------------------------------
    @property
    def external_ports(self) -> list[int]:
        """Ports that read the graph input (from DRAM)."""
        return [p for p, src in enumerate(self.producers) if src is None]

    # -- sizes ------------------------------------------------------------------------
    @property
    def out_channels(self) -> int:
        if self.kind == OpKind.LINEAR or self.kind == OpKind.MATMUL:
            return self.out_shape[-1]
        return self.out_shape[1]

    def port_bytes(self, port: int) -> int:
        """Bytes port ``port`` reads, at its own width (an 8-bit q beside an int32 kv is read as 8 bit)."""
        return tensor_bytes(self.in_shapes[port], self.in_bits[port])

    @property
    def input_bytes(self) -> int:
        return sum(self.port_bytes(p) for p in range(len(self.in_shapes)))

    def operand_bytes(self, operand: int) -> int:
        """Bytes an operand's ports read."""
        return sum(self.port_bytes(p) for p in self.operands[operand].ports)

    @property
    def output_bytes(self) -> int:
        return tensor_bytes(self.out_shape, self.out_bits)

    @property
    def weight_bytes(self) -> int:
        """Weight storage at the stored bit-width of each filter (APoT filters at apot_bits)."""
        if self.weight_shape is None or self.weight_bits is None:
            return 0
        per_filter = math.prod(self.weight_shape[1:])
        q = self.quant
        if q is not None and q.apot_mask is not None and q.apot_bits is not None:
            n_apot = q.apot_filters
            n_uni = self.weight_shape[0] - n_apot
            bits = per_filter * (n_uni * self.weight_bits + n_apot * q.apot_bits)
            return math.ceil(bits / 8)
        return tensor_bytes(self.weight_shape, self.weight_bits)

    @property
    def apot_fraction(self) -> float:
        return 0.0 if self.quant is None else self.quant.apot_fraction

    def activation(self) -> Epilogue | None:
        """The fused activation of the epilogue, if any (at most one)."""
        acts = [e for e in self.epilogue if e in ACTIVATION_EPILOGUES]
        if len(acts) > 1:
            raise ValueError(f"{self.name}: more than one fused activation: {[a.value for a in acts]}")
        return acts[0] if acts else None


def output_affine_maps(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """(divisor, shift) maps of the stored output, broadcastable to it; (1, 0) without refinements."""
    if layer.refinement is None:
        return np.asarray(1.0), np.asarray(0.0)
    return layer.refinement.maps()


def output_channel_affine(layer: Layer, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(divisor, shift) per output channel of a weighted layer's stored tensor; (1, 0) without refinements."""
    axis = -1 if layer.kind == OpKind.LINEAR else 1
    ndim = len(layer.out_shape)

    def per_channel(m: np.ndarray) -> np.ndarray:
        full_shape = [1] * ndim
        full_shape[axis] = channels
        m = np.broadcast_to(
            m.reshape((1,) * (ndim - m.ndim) + m.shape), full_shape
        )  # varies along the channel only
        return np.asarray(m, dtype=np.float64).reshape(channels)

    return tuple(per_channel(m) for m in output_affine_maps(layer))


def tensor_bytes(shape: tuple[int, ...], bits: int) -> int:
    """Bytes to store a dense tensor of ``shape`` at ``bits`` per element (packed)."""
    return math.ceil(math.prod(shape) * bits / 8)


def new_graph(**attrs) -> nx.DiGraph:
    """An empty graph of the current schema version with the given graph attributes."""
    return nx.DiGraph(schema_version=SCHEMA_VERSION, **attrs)


def layers(graph: nx.DiGraph) -> list[Layer]:
    """The graph's layers in a deterministic topological order."""
    return [
        graph.nodes[n]["layer"] for n in nx.lexicographical_topological_sort(graph, key=_order_key(graph))
    ]


def _order_key(graph: nx.DiGraph):
    order = graph.graph.get("order")
    if order is None:
        return str
    index = {name: i for i, name in enumerate(order)}
    return lambda n: (index.get(n, len(index)), n)


def total_macs(graph: nx.DiGraph) -> int:
    return sum(graph.nodes[n]["layer"].macs for n in graph.nodes)


def add_layer(graph: nx.DiGraph, layer: Layer, inputs: list[str | None] = ()) -> None:
    """Add ``layer`` with one entry of ``inputs`` per port (``layer.in_shapes``).

    A name is the producing layer (an edge with ``ports`` = the ports it feeds, ``bytes`` = the
    producer's output size and ``read_bytes`` = what the ports read of it at their widths);
    None marks the graph input, read from DRAM. Sets ``layer.producers``.
    """
    if len(inputs) != len(layer.in_shapes):
        raise ValueError(f"{layer.name}: {len(inputs)} inputs for {len(layer.in_shapes)} input shapes")
    if layer.name in graph:
        raise ValueError(f"{layer.name}: a layer of that name is already in the graph")
    layer.producers = tuple(inputs)
    graph.add_node(layer.name, layer=layer)
    graph.graph.setdefault("order", []).append(layer.name)
    for port, src in enumerate(inputs):
        if src is None:
            continue
        read = tensor_bytes(layer.in_shapes[port], layer.in_bits[port])
        if graph.has_edge(src, layer.name):  # two ports read one producer (num and den of a division)
            edge = graph.edges[src, layer.name]
            edge["ports"].append(port)
            edge["read_bytes"] += read
            continue
        if src not in graph:
            raise ValueError(f"{layer.name}: producer {src!r} is not in the graph (add producers first)")
        producer = graph.nodes[src]["layer"]
        graph.add_edge(src, layer.name, bytes=producer.output_bytes, ports=[port], read_bytes=read)


def graph_outputs(graph: nx.DiGraph) -> list[str]:
    """Layers whose output leaves the accelerator (written to DRAM): those with no consumer."""
    return [n for n in graph.graph.get("order", graph.nodes) if graph.out_degree(n) == 0]


def input_shape(graph: nx.DiGraph) -> tuple[int, ...]:
    """The shape of the graph input (``G.graph["input_shape"]``, else the first port that reads it as is)."""
    shape = graph.graph.get("input_shape")
    if shape is not None:
        return tuple(shape)
    for layer in layers(graph):
        for operand in layer.operands:
            if not operand.program and layer.producers[operand.ports[0]] is None:
                return operand.shape
    raise ValueError("the graph has no input shape and no layer reads the input as it is")


def check_operands(graph: nx.DiGraph) -> None:
    """Raise ValueError naming the layer when an operand's program does not produce its declared shape."""
    in_shape = None
    for layer in layers(graph):
        for k, operand in enumerate(layer.operands):
            sources = []
            for p in operand.ports:
                src = layer.producers[p]
                if src is None:
                    in_shape = in_shape or input_shape(graph)
                    sources.append(in_shape)
                else:
                    sources.append(graph.nodes[src]["layer"].out_shape)
            try:
                shape = program_shape(operand.program, sources) if operand.program else sources[0]
            except ValueError as exc:
                raise ValueError(f"{layer.name}: operand {k}: {exc}") from exc
            if tuple(shape) != tuple(operand.shape):
                raise ValueError(
                    f"{layer.name}: operand {k}: its program gives shape {tuple(shape)}, "
                    f"the layer declares {operand.shape}"
                )
