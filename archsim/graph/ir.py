"""The dataflow-graph IR: the contract between the torch side and the simulator.

A workload graph is a ``networkx.DiGraph`` whose nodes are layer names and whose node
attribute ``"layer"`` holds a :class:`Layer`. An edge ``u -> v`` means v reads the tensor u
produces; its attribute ``"bytes"`` is that tensor's size at u's output bit-width and
``"ports"`` lists which of v's inputs (indices into ``in_shapes``) it feeds.
Graph-level attributes (``G.graph``) carry ``model``, ``resolution``, ``batch``,
``policy`` and ``seed`` of the workload that produced it.

Nothing here imports torch: the simulator and the functional executor depend only on this
module, numpy and networkx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import networkx as nx
import numpy as np


class OpKind(str, Enum):
    """What a layer computes; the mapper routes layers to engines by this."""

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


WEIGHTED_KINDS = frozenset(
    {OpKind.CONV_DENSE, OpKind.CONV_POINTWISE, OpKind.CONV_DEPTHWISE, OpKind.CONV_GROUPED, OpKind.LINEAR}
)
MAC_KINDS = WEIGHTED_KINDS | {OpKind.MATMUL}
VECTOR_KINDS = frozenset({OpKind.ADD, OpKind.DIV, OpKind.POOL, OpKind.NORM, OpKind.ACTIVATION})


class Scheme(str, Enum):
    """How one output filter's weights are quantized."""

    UNIFORM = "uniform"
    APOT = "apot"
    FLOAT = "float"  # not quantized (fp32 policy, unquantized classifier)


@dataclass
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
    in_scales: tuple[float, ...] = ()  # per input tensor
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
    bias_int: np.ndarray | None = None  # int64[out]: round(bias / (s_in s_w)) - zp_in * sum_k w_int
    acc_scale: np.ndarray | None = None  # MAC layers: real = acc * acc_scale; float64[out] (weighted) or a map broadcastable to the output (matmul)
    in_acc_scales: tuple[np.ndarray | None, ...] = ()  # per input: the scale map of a wide input (None: 8-bit)
    lut_in_bits: int | None = None  # fused Hardswish: bits of the LUT input grid (table of 2^bits entries)
    lut_in_scale: np.ndarray | None = None  # float64[out]: the LUT input grid per output channel
    lut_in_zero_point: np.ndarray | None = None  # int64[out] (the LUT output grid is out_scale / out_zero_point)
    eps_int: np.ndarray | None = None  # div: eps in units of s_den / 2^8 (>= 1), per head
    # norm: the integer LayerNorm's parameters (archsim.numerics.integer_norm.LayerNormParams: fixed-point
    # gamma / beta on the output grid, or on the LUT input grid when a Hardswish follows; eps_int)
    norm_params: object | None = None

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


@dataclass
class Layer:
    """One node of the dataflow graph: a compute layer with its fused epilogue.

    Shapes include the batch dimension. Convolutions use NCHW; matmul operands are
    (..., M, K) x (..., K, N); linear is (..., K) x weight (N, K).
    """

    name: str
    kind: OpKind
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, ...] | None = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    macs: int = 0  # multiply-accumulates (MAC kinds)
    elements: int = 0  # output elements (vector kinds); also the epilogue's work
    epilogue: tuple[str, ...] = ()  # folded ops, e.g. ("bias", "hardswish", "requant")
    weight_bits: int | None = None  # None when the layer has no weights
    act_bits: int = 8  # bits per input activation element
    out_bits: int = 8  # bits per output element as stored
    quant: QuantInfo | None = None
    source: str = ""  # provenance: the torch module path or fx node it came from
    attrs: dict = field(default_factory=dict)  # op-specific extras (e.g. eps of a division)

    # -- sizes ------------------------------------------------------------------------
    @property
    def out_channels(self) -> int:
        if self.kind == OpKind.LINEAR or self.kind == OpKind.MATMUL:
            return self.out_shape[-1]
        return self.out_shape[1]

    @property
    def input_bytes(self) -> int:
        return sum(tensor_bytes(s, self.act_bits) for s in self.in_shapes)

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


def tensor_bytes(shape: tuple[int, ...], bits: int) -> int:
    """Bytes to store a dense tensor of ``shape`` at ``bits`` per element (packed)."""
    return math.ceil(math.prod(shape) * bits / 8)


def layers(graph: nx.DiGraph) -> list[Layer]:
    """The graph's layers in a deterministic topological order."""
    return [graph.nodes[n]["layer"] for n in nx.lexicographical_topological_sort(graph, key=_order_key(graph))]


def _order_key(graph: nx.DiGraph):
    order = graph.graph.get("order")
    if order is None:
        return str
    index = {name: i for i, name in enumerate(order)}
    return lambda n: (index.get(n, len(index)), n)


def total_macs(graph: nx.DiGraph) -> int:
    return sum(graph.nodes[n]["layer"].macs for n in graph.nodes)


def add_layer(graph: nx.DiGraph, layer: Layer, inputs: list[str | None] = ()) -> None:
    """Add ``layer`` with one entry of ``inputs`` per entry of ``layer.in_shapes``.

    A name is the producing layer (an edge with ``ports`` = the input indices it feeds and ``bytes`` = the
    producer's output size); None marks a graph input, read from DRAM
    (recorded in ``layer.attrs["external_inputs"]`` as a list of ports).
    """
    if len(inputs) != len(layer.in_shapes):
        raise ValueError(f"{layer.name}: {len(inputs)} inputs for {len(layer.in_shapes)} input shapes")
    graph.add_node(layer.name, layer=layer)
    graph.graph.setdefault("order", []).append(layer.name)
    for port, src in enumerate(inputs):
        if src is None:
            layer.attrs.setdefault("external_inputs", []).append(port)
            continue
        if graph.has_edge(src, layer.name):  # two operands sliced from one tensor (k and v)
            graph.edges[src, layer.name]["ports"].append(port)
            continue
        producer = graph.nodes[src]["layer"]
        graph.add_edge(src, layer.name, bytes=producer.output_bytes, ports=[port])


def graph_outputs(graph: nx.DiGraph) -> list[str]:
    """Layers whose output leaves the accelerator (written to DRAM): those with no consumer."""
    return [n for n in graph.graph.get("order", graph.nodes) if graph.out_degree(n) == 0]
