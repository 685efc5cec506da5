"""Execute a quantized graph in integers, tile by tile, from the graph alone (numpy only, no torch).

:class:`Executor` holds every layer's output tensor (8-bit codes, or int64 accumulators for the
wide layers: the attention matmuls and the logits). A layer is computed by *tiles*: a tile is
a set of the layer's output filters and a range of its output positions, computed by the
arithmetic of one engine (:mod:`archsim.functional.arithmetic`). The simulator calls
:meth:`Executor.compute` as each stream's tile completes on its engine; :meth:`Executor.run`
executes the whole graph alone (one tile per layer and scheme: uniform filters on a multiplier
datapath, APoT filters on a shift-add one), the reference the simulated run must equal.

Semantics (docs/quantization.md, "Integer semantics"; every rule is a function of
:mod:`archsim.numerics`):

- An operand is assembled by its access program (:mod:`archsim.graph.access`) from the
  zero-point-free integers of its ports' producers: ``code - zp`` for 8-bit tensors (zp the
  consumer's ``in_zero_points[port]``), the accumulator itself for wide ones.
- Convolutions and linear layers compute on the *codes* as the datapath does: the input is
  padded with its zero point (the code of real 0), ``acc = sum code x w + bias_int``
  (``bias_int`` folds ``-zp sum w``), then requantization (multiplier, shift, rounding half
  away from zero), a fused ReLU on codes or a per-channel Hardswish table.
- Matmuls multiply zero-point-free operands exactly (int64 accumulators); the division, the
  residual add, pooling, LayerNorm and standalone activations follow their integer rules.

Tile domains (the plan's position ranges): conv / depthwise: output pixels ``n*Ho*Wo + ho*Wo + wo``;
linear / matmul: output rows (every leading index flattened); vector kinds: output elements
(pool: input elements, mapped to the output channels they complete). Every output element must
be computed exactly once: :meth:`Executor.end_layer` raises :class:`FunctionalError` naming the
layer otherwise, and an operand may only be read once its producers have ended (a schedule
that reads an unfinished tensor is an error, not a silent zero).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from archsim.functional.arithmetic import FLOAT32_EXACT, Arithmetic, ShiftAddArithmetic
from archsim.graph.access import run_program
from archsim.graph.ir import (
    CONV_KINDS,
    Denominator,
    Epilogue,
    Layer,
    OpKind,
    QuantInfo,
    input_shape,
    layers,
    output_channel_affine,
)
from archsim.graph.opkinds import Family, rule
from archsim.numerics import integer as qi
from archsim.numerics.integer_norm import layer_norm_int

INPUT = "input"  # the name of the graph input's codes in Executor.values
INPUT_BITS = 8  # [choice] the graph input is quantized to 8-bit codes (the first layer's input grid)
# [choice] the default image of a run: N(0, 1) noise (the synthetic calibration's distribution,
# archsim.workload.data) from numpy's PCG64 seeded with the workload seed plus this offset, so it
# is neither a calibration nor a quality-check image and needs no torch
DEFAULT_INPUT_SEED_OFFSET = 3_000_017


class FunctionalError(RuntimeError):
    """The functional execution cannot proceed: a missing or incomplete tensor, an unsupported rule."""


def missing_integer_parameters(graph: nx.DiGraph) -> str | None:
    """Why the graph cannot be executed in integers (None when it can): fp32 graphs and hand-built
    timing-only graphs carry no (or partial) integer parameters."""
    for layer in layers(graph):
        q = layer.quant
        if q is None:
            return f"layer {layer.name} is not quantized (an fp32 policy has no integer datapath)"
        if len(q.in_zero_points) != len(layer.in_shapes) or (layer.kind.has_weights and q.weight_int is None):
            return f"layer {layer.name} carries no integer parameters (a timing-only graph)"
    return None


def is_executable(graph: nx.DiGraph) -> bool:
    """True when every layer carries its integer parameters (a quantized, extracted graph)."""
    return missing_integer_parameters(graph) is None


def input_grid(graph: nx.DiGraph) -> tuple[float, int]:
    """(scale, zero point) the graph input is quantized with: the grid every reader of the input expects."""
    grids = set()
    for layer in layers(graph):
        for port in layer.external_ports:
            grids.add((float(layer.quant.in_scales[port]), int(layer.quant.in_zero_points[port])))
    if len(grids) != 1:
        raise FunctionalError(f"the graph input is read on {len(grids)} different grids: {sorted(grids)}")
    return grids.pop()


def quantize_input(graph: nx.DiGraph, image: np.ndarray) -> np.ndarray:
    """The 8-bit codes of a float image (N, 3, R, R) on the graph's input grid (round half away from zero)."""
    scale, zero_point = input_grid(graph)
    expected = input_shape(graph)
    if tuple(image.shape) != tuple(expected):
        raise FunctionalError(f"input of shape {tuple(image.shape)}; the graph expects {tuple(expected)}")
    return qi.quantize_real(np.asarray(image, dtype=np.float64), scale, zero_point, INPUT_BITS)


def default_input(graph: nx.DiGraph) -> tuple[np.ndarray, dict]:
    """(float32 image, its description) of a run without an input of its own
    (see DEFAULT_INPUT_SEED_OFFSET)."""
    seed = int(graph.graph.get("seed", 0)) + DEFAULT_INPUT_SEED_OFFSET
    image = np.random.default_rng(seed).standard_normal(input_shape(graph)).astype(np.float32)
    return image, {"source": "synthetic", "distribution": "N(0, 1), numpy PCG64", "seed": seed}


def digest(values: np.ndarray) -> str:
    """sha256 of a tensor's integers (shape and int64 little-endian values): equal values, equal digest."""
    h = hashlib.sha256(repr(tuple(int(d) for d in values.shape)).encode())
    h.update(np.ascontiguousarray(values, dtype="<i8").tobytes())
    return h.hexdigest()


def _contiguous(index: np.ndarray) -> slice | np.ndarray:
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return slice(int(index[0]), int(index[0]) + index.size)
    return index


@dataclass
class _LayerState:
    layer: Layer
    operands: list[np.ndarray]
    out2d: np.ndarray  # the canonical (filters, positions) layout of the output
    done: np.ndarray  # bool, same shape: computed
    cache: dict = field(default_factory=dict)
    feeds: list = field(default_factory=list)  # (operand, fused producer's state, zero point)


class Executor:
    """Integer execution of ``graph``; ``values[name]`` is each finished layer's output
    (and ``values["input"]``)."""

    def __init__(self, graph: nx.DiGraph):
        why = missing_integer_parameters(graph)
        if why is not None:
            raise FunctionalError(
                f"functional execution needs every layer's integer parameters: {why}; "
                "run it without values (--no-functional)"
            )
        self.graph = graph
        self.layers = {layer.name: layer for layer in layers(graph)}
        self.values: dict[str, np.ndarray] = {}
        self.states: dict[str, _LayerState] = {}
        self.macs = 0  # multiply-accumulates (or shift-add taps) computed

    # -- input ----------------------------------------------------------------------------
    def set_input(self, codes: np.ndarray) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if tuple(codes.shape) != tuple(input_shape(self.graph)):
            raise FunctionalError(
                f"input codes of shape {codes.shape}; the graph expects {input_shape(self.graph)}"
            )
        self.values[INPUT] = codes

    # -- layers ---------------------------------------------------------------------------
    def begin_layer(self, name: str, live: frozenset[str] = frozenset()) -> None:
        """Assemble the layer's operands from its (finished) producers; a producer in ``live`` (fused, still
        running) is read tile by tile as its rows are needed (:meth:`feed`)."""
        layer = self.layers[name]
        q = layer.quant
        operands, feeds = [], []
        for k, operand in enumerate(layer.operands):
            sources = []
            for p in operand.ports:
                producer = layer.producers[p]
                key = INPUT if producer is None else producer
                if key in live:
                    if operand.program or len(operand.ports) != 1:
                        raise FunctionalError(f"{name}: a fused operand must read its producer as it is")
                    zero_point = q.in_zero_points[p]
                    feeds.append((k, self.states[key], int(zero_point)))
                    sources.append(np.zeros(self.layers[key].out_shape, dtype=np.int64))
                    continue
                if key not in self.values:
                    raise FunctionalError(
                        f"{name}: operand {k} reads {key!r}, which has not been computed "
                        "(the schedule reads an unfinished tensor)"
                    )
                zero_point = 0 if q.in_acc_scales and q.in_acc_scales[p] is not None else q.in_zero_points[p]
                sources.append(self.values[key].astype(np.int64) - zero_point)
            operands.append(run_program(operand.program, sources) if operand.program else sources[0])
        filters, positions = _canonical_shape(layer)
        self.states[name] = _LayerState(
            layer,
            operands,
            np.zeros((filters, positions), dtype=np.int64),
            np.zeros((filters, positions), dtype=bool),
            feeds=feeds,
        )

    def feed(self, name: str, positions: tuple[int, int]) -> None:
        """Copy the rows positions [p0, p1) read from each fused producer (a 1x1 stride-1 conv reads the same
        positions of its producer), after checking the producer computed them all."""
        state = self.states.get(name)
        if state is None or not state.feeds:
            return
        p0, p1 = positions
        for k, producer, zero_point in state.feeds:
            if not producer.done[:, p0:p1].all():
                raise FunctionalError(
                    f"{name}: reads positions [{p0}, {p1}) of {producer.layer.name} before they were "
                    f"computed "
                    "(the fused schedule ran ahead of its producer)"
                )
            n, c, h, w = producer.layer.out_shape
            operand, plane = state.operands[k], h * w
            for image in range(p0 // plane, (p1 - 1) // plane + 1):
                a, b = max(p0, image * plane), min(p1, (image + 1) * plane)
                rows = operand[image].reshape(c, plane)  # a view: operand[image] is contiguous
                rows[:, a - image * plane : b - image * plane] = producer.out2d[:, a:b] - zero_point
        state.cache.pop("padded", None)  # built from the operand: rebuilt with the new rows by the next tile
        state.cache.pop("column_max", None)

    def compute(
        self, name: str, arithmetic: Arithmetic, filters: np.ndarray | None, positions: tuple[int, int]
    ) -> None:
        """One tile: output ``filters`` (None: all) x ``positions`` [p0, p1)
        of the plan's domain, on ``arithmetic``."""
        state = self.states.get(name)
        if state is None:
            self.begin_layer(name)
            state = self.states[name]
        layer = state.layer
        family = rule(layer.kind).family
        if family == Family.VECTOR:
            e0, e1 = self._vector_range(layer, positions)
            rows = np.arange(1)
            block = self._vector(state, arithmetic, e0, e1)
            cols = slice(e0, e1)
        else:
            rows = np.arange(state.out2d.shape[0]) if filters is None else np.asarray(filters, dtype=np.int64)
            p0, p1 = positions
            cols = slice(p0, p1)
            if rows.size == 0 or p1 <= p0:
                return
            if family == Family.MATMUL:
                block = self._matmul(state, arithmetic, rows, p0, p1)
            else:
                block = self._weighted(state, arithmetic, rows, p0, p1)
        where = (_contiguous(rows), cols)
        if state.done[where].any():
            raise FunctionalError(f"{name}: a tile recomputes outputs another tile already computed")
        state.out2d[where] = block
        state.done[where] = True

    def end_layer(self, name: str) -> np.ndarray:
        """Check every output element was computed once; store the output in its layout; return it."""
        state = self.states.pop(name)
        missing = int(state.done.size - np.count_nonzero(state.done))
        if missing:
            raise FunctionalError(
                f"{name}: {missing} of {state.done.size} output elements were never computed "
                "(the mapping or the tiling misses filters or positions)"
            )
        out = _from_canonical(state.layer, state.out2d)
        self.values[name] = _narrow(out)
        return self.values[name]

    # -- whole graph ------------------------------------------------------------------------
    def run(
        self, input_codes: np.ndarray, multiply: Arithmetic | None = None, shift_add: Arithmetic | None = None
    ) -> dict[str, np.ndarray]:
        """Every layer in graph order, one tile per scheme: uniform filters (and everything else) on
        ``multiply``, APoT filters on ``shift_add``. Returns ``values``."""
        multiply = multiply or Arithmetic()
        shift_add = shift_add or ShiftAddArithmetic()
        self.set_input(input_codes)
        for layer in layers(self.graph):
            positions = (0, _domain_positions(layer))
            q = layer.quant
            if layer.kind.has_weights and q.apot_mask is not None and q.apot_mask.any():
                self.compute(layer.name, shift_add, np.flatnonzero(q.apot_mask), positions)
                if not q.apot_mask.all():
                    self.compute(layer.name, multiply, np.flatnonzero(~q.apot_mask), positions)
            else:
                self.compute(layer.name, multiply, None, positions)
            self.end_layer(layer.name)
        return self.values

    # -- MAC kinds -----------------------------------------------------------------------------
    def _weighted(
        self, state: _LayerState, arith: Arithmetic, rows: np.ndarray, p0: int, p1: int
    ) -> np.ndarray:
        layer, q = state.layer, state.layer.quant
        w = q.weight_int
        zp = int(q.in_zero_points[0])
        if layer.kind == OpKind.LINEAR:
            x = state.operands[0]
            columns = (x.reshape(-1, x.shape[-1])[p0:p1] + zp).T
            acc = arith.dot(self._loaded(state, arith, rows), columns, int(np.abs(columns).max(initial=0)))
        elif layer.kind == OpKind.CONV_DEPTHWISE:
            windows, column_max = self._windows(state, rows, p0, p1)  # (C_sel, T, P)
            acc = arith.channel_dot(self._loaded(state, arith, rows), windows, column_max)
        else:  # dense, pointwise, grouped: per group, (F_g, Cg*T) @ (Cg*T, P)
            acc = np.empty((rows.size, p1 - p0), dtype=np.int64)
            per_group = w.shape[0] // layer.groups
            cg = w.shape[1]
            group_of = rows // per_group
            for g in np.unique(group_of):
                mine = np.flatnonzero(group_of == g)
                windows, column_max = self._windows(
                    state, np.arange(g * cg, (g + 1) * cg), p0, p1
                )  # (Cg, T, P)
                acc[mine] = arith.dot(
                    self._loaded(state, arith, rows[mine]), windows.reshape(-1, p1 - p0), column_max
                )
        self.macs += int(acc.size) * int(np.prod(w.shape[1:]))
        acc = acc + q.bias_int[rows][:, None]
        if q.out_scale is None:  # kept wide (the logits)
            return acc
        m0, shift = q.requant_m0[rows][:, None], q.requant_shift[rows][:, None]
        if q.lut_in_bits is not None:
            pre = arith.requantize(acc, m0, shift, q.lut_in_zero_point[rows][:, None], q.lut_in_bits)
            return self._hardswish(state, rows, pre)
        codes = arith.requantize(acc, m0, shift, q.out_zero_point, q.out_bits)
        return _fused_activation(layer, q, codes)

    @staticmethod
    def _loaded(state: _LayerState, arith: Arithmetic, rows: np.ndarray):
        """The filter chunk's weights as ``arith`` holds them (loaded once, reused by every position tile)."""
        key = ("weights", id(arith), rows.tobytes())
        loaded = state.cache.get(key)
        if loaded is None:
            w = state.layer.quant.weight_int
            loaded = state.cache[key] = arith.load_weights(w[rows].reshape(rows.size, -1))
        return loaded

    def _windows(self, state: _LayerState, channels: np.ndarray, p0: int, p1: int) -> tuple[np.ndarray, int]:
        """(len(channels), kh*kw, p1 - p0) input codes under each kernel tap, for output pixels [p0, p1),
        and the largest code magnitude (float32 when every code is exact in it)."""
        layer, q = state.layer, state.layer.quant
        padded = state.cache.get("padded")
        if padded is None:
            top, bottom, left, right = layer.padding
            codes = state.operands[0] + int(q.in_zero_points[0])  # zero points back: the datapath sees codes
            padded = np.pad(
                codes,
                ((0, 0), (0, 0), (top, bottom), (left, right)),
                constant_values=int(q.in_zero_points[0]),
            )  # padding is real 0: the zero point's code
            state.cache["column_max"] = int(np.abs(padded).max(initial=0))
            if state.cache["column_max"] < FLOAT32_EXACT:
                padded = padded.astype(np.float32)
            state.cache["padded"] = padded
        _, _, ho_n, wo_n = layer.out_shape
        (kh, kw), (sh, sw), (dh, dw) = layer.kernel, layer.stride, layer.dilation
        taps = [(i, j) for i in range(kh) for j in range(kw)]
        ch = _contiguous(channels)
        out = np.empty((channels.size, len(taps), p1 - p0), dtype=padded.dtype)
        per_image = ho_n * wo_n
        written = 0
        for n in range(p0 // per_image, (p1 - 1) // per_image + 1):
            q0, q1 = max(p0, n * per_image) - n * per_image, min(p1, (n + 1) * per_image) - n * per_image
            r0, r1 = q0 // wo_n, -(-q1 // wo_n)
            for t, (i, j) in enumerate(taps):
                h0, w0 = i * dh + r0 * sh, j * dw
                block = padded[
                    n, ch, h0 : h0 + (r1 - r0 - 1) * sh + 1 : sh, w0 : w0 + (wo_n - 1) * sw + 1 : sw
                ]
                out[:, t, written : written + q1 - q0] = block.reshape(channels.size, -1)[
                    :, q0 - r0 * wo_n : q1 - r0 * wo_n
                ]
            written += q1 - q0
        return out, state.cache["column_max"]

    def _hardswish(self, state: _LayerState, rows: np.ndarray, pre: np.ndarray) -> np.ndarray:
        """The fused Hardswish tables of ``rows`` at ``pre`` (LUT input codes): one shared table indexed, or,
        when every channel has its own grid and refinement (Trio-ViT), the same entries evaluated directly
        (numerics.integer.hardswish_codes) instead of building a 2^12-entry table per channel."""
        layer, q = state.layer, state.layer.quant
        affine = state.cache.get("hardswish")
        if affine is None:
            divisor, shift = output_channel_affine(layer, q.lut_in_scale.size)
            params = np.stack([q.lut_in_scale, q.lut_in_zero_point, divisor, shift], axis=1)
            shared = bool(np.all(params == params[:1]))
            table = (
                qi.hardswish_tables(
                    q.lut_in_scale[:1],
                    q.lut_in_zero_point[:1],
                    divisor[:1],
                    shift[:1],
                    q.out_scale,
                    q.out_zero_point,
                    q.out_bits,
                    q.lut_in_bits,
                )
                if shared
                else None
            )
            affine = state.cache["hardswish"] = (table, divisor, shift)
        table, divisor, shift = affine
        if table is not None:
            return table[0][pre]
        column = (slice(None), None)
        return qi.hardswish_codes(
            pre,
            q.lut_in_scale[rows][column],
            q.lut_in_zero_point[rows][column],
            q.out_scale,
            q.out_zero_point,
            q.out_bits,
            shift[rows][column],
            divisor[rows][column],
        )

    def _matmul(
        self, state: _LayerState, arith: Arithmetic, columns: np.ndarray, p0: int, p1: int
    ) -> np.ndarray:
        """Output rows [p0, p1) and ``columns`` of (..., M, K) @ (..., K, N) -> (len(columns), p1 - p0)."""
        layer, q = state.layer, state.layer.quant
        a, b = state.operands
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, *a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:]).reshape(-1, *b.shape[-2:])
        m = a.shape[1]
        cols = _contiguous(columns)
        out = np.empty((columns.size, p1 - p0), dtype=np.int64)
        for bi in range(p0 // m, (p1 - 1) // m + 1):
            r0, r1 = max(p0, bi * m) - bi * m, min(p1, (bi + 1) * m) - bi * m
            out[:, bi * m + r0 - p0 : bi * m + r1 - p0] = arith.matmul(a[bi, r0:r1], b[bi][:, cols]).T
        self.macs += int(out.size) * int(a.shape[2])
        if q.out_scale is None:  # kept wide until the division
            return out
        m0 = _canonical_map(layer, q.requant_m0)[cols, p0:p1]
        shift = _canonical_map(layer, q.requant_shift)[cols, p0:p1]
        return arith.requantize(out, m0, shift, q.out_zero_point, q.out_bits)

    # -- vector kinds ----------------------------------------------------------------------------
    @staticmethod
    def _vector_range(layer: Layer, positions: tuple[int, int]) -> tuple[int, int]:
        """Output elements [e0, e1) a vector tile completes (pool tiles count input elements)."""
        p0, p1 = positions
        if not rule(layer.kind).counts_input_elements:
            return p0, p1
        total_in, total_out = math.prod(layer.in_shapes[0]), math.prod(layer.out_shape)
        return p0 * total_out // total_in, p1 * total_out // total_in

    def _vector(self, state: _LayerState, arith: Arithmetic, e0: int, e1: int) -> np.ndarray:
        layer, q = state.layer, state.layer.quant
        out_shape = layer.out_shape

        def flat(value) -> np.ndarray:  # an operand or parameter map over the output, elements [e0, e1)
            return np.broadcast_to(np.asarray(value), out_shape).reshape(-1)[e0:e1]

        if layer.kind == OpKind.ADD:
            offset = 0 if q.requant_offset is None else flat(q.requant_offset)
            codes = arith.add(
                flat(state.operands[0]),
                flat(state.operands[1]),
                flat(q.requant_m0[0]),
                flat(q.requant_m0[1]),
                flat(q.requant_shift[0]),
                offset,
                q.out_zero_point,
                q.out_bits,
            )
        elif layer.kind == OpKind.DIV:
            offset = None if q.requant_offset is None else flat(q.requant_offset)
            codes = arith.divide(
                flat(state.operands[0]),
                flat(state.operands[1]),
                flat(q.requant_m0),
                flat(q.requant_shift),
                flat(q.eps_int),
                q.out_zero_point,
                q.out_bits,
                offset,
                log2=layer.div.denominator == Denominator.LOG2,
            )
        elif layer.kind == OpKind.POOL:
            x = state.operands[0]
            sums = x.reshape(-1, math.prod(x.shape[2:]))[e0:e1].sum(
                axis=1
            )  # (N*C) outputs, each a sum over H*W
            codes = arith.requantize(sums, q.requant_m0, q.requant_shift, q.out_zero_point, q.out_bits)
        elif layer.kind == OpKind.NORM:
            x = state.operands[0]
            features = x.shape[-1]
            r0, r1 = e0 // features, -(-e1 // features)
            rows = x.reshape(-1, features)[r0:r1] + int(q.in_zero_points[0])
            if q.lut_in_bits is not None:  # LayerNorm onto the Hardswish LUT's input grid, then the table
                pre = layer_norm_int(
                    rows, q.in_zero_points[0], q.norm_params, int(q.lut_in_zero_point[0]), q.lut_in_bits
                )
                codes = self._hardswish(state, np.zeros(1, dtype=np.int64), pre)
            else:
                codes = layer_norm_int(rows, q.in_zero_points[0], q.norm_params, q.out_zero_point, q.out_bits)
            codes = codes.reshape(-1)[e0 - r0 * features : e1 - r0 * features]
        elif layer.kind == OpKind.ACTIVATION:
            (name,) = [e.value for e in layer.epilogue if e != Epilogue.REQUANT]
            table = qi.activation_lut(
                name, q.in_scales[0], q.in_zero_points[0], q.out_scale, q.out_zero_point, q.out_bits
            )
            return table[flat(state.operands[0]) + int(q.in_zero_points[0])]
        else:
            raise FunctionalError(f"{layer.name}: no integer rule for {layer.kind.value}")
        if layer.kind != OpKind.NORM:
            codes = _fused_activation(layer, q, codes)
        return codes


def _fused_activation(layer: Layer, q: QuantInfo, codes: np.ndarray) -> np.ndarray:
    act = layer.activation()
    if act is None:
        return codes
    if act == Epilogue.RELU:  # exact on codes: real 0 is the zero point
        return qi.relu_codes(codes, q.out_zero_point)
    raise FunctionalError(
        f"{layer.name}: a fused {act.value} after a {layer.kind.value} has no integer rule "
        "(supported: ReLU on codes, Hardswish through a LUT grid on conv / linear / norm)"
    )


def _canonical_shape(layer: Layer) -> tuple[int, int]:
    family = rule(layer.kind).family
    if family == Family.VECTOR:
        return 1, math.prod(layer.out_shape)
    if family in (Family.CONV, Family.DEPTHWISE):
        n, c, h, w = layer.out_shape
        return c, n * h * w
    return layer.out_shape[-1], math.prod(layer.out_shape[:-1])


def _domain_positions(layer: Layer) -> int:
    """Positions of the plan's tile domain (pool: input elements)."""
    if rule(layer.kind).counts_input_elements:
        return math.prod(layer.in_shapes[0])
    return _canonical_shape(layer)[1]


def _from_canonical(layer: Layer, out2d: np.ndarray) -> np.ndarray:
    family = rule(layer.kind).family
    if family == Family.VECTOR:
        return out2d.reshape(layer.out_shape)
    if family in (Family.CONV, Family.DEPTHWISE):
        n, c, h, w = layer.out_shape
        return out2d.reshape(c, n, h, w).transpose(1, 0, 2, 3)
    return out2d.T.reshape(layer.out_shape)


def _canonical_map(layer: Layer, value) -> np.ndarray:
    """A parameter map broadcastable to a matmul's output, in the (columns, rows) canonical layout."""
    full = np.broadcast_to(np.asarray(value), layer.out_shape)
    return full.reshape(-1, layer.out_shape[-1]).T


def _narrow(values: np.ndarray) -> np.ndarray:
    """Store codes compactly (uint8 / int16 / int32 where they fit); accumulators stay int64."""
    if values.size == 0:
        return values
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.ascontiguousarray(values.astype(dtype))
    return np.ascontiguousarray(values)


def conv_kinds() -> frozenset:
    return CONV_KINDS
