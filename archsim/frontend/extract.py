"""torch.fx extraction: a (quantized) torch model -> the dataflow graph of archsim.graph.ir.

One Layer per conv / linear / matmul with its BN, activation and requantization in the
epilogue; vector nodes for residual adds, the attention division, global pooling, layer
norm and activations that could not be fused. Layout ops are not nodes: each operand carries
the access program that assembles it from its producers (:mod:`archsim.frontend.access`), so
the graph can be executed from itself alone (docs/architecture.md, "Layout ops").
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch
from torch import fx, nn

from archsim.frontend.access import ExtractionError, operand_programs
from archsim.frontend.fx_groups import Group, GroupedGraph, OperandPart, group_graph
from archsim.frontend.integer_params import fill_integer_params, operand_scale_maps
from archsim.frontend.scale_maps import to_producer_layout, trace_index_maps
from archsim.graph.ir import (
    FLOAT_BITS,
    Denominator,
    DivAttrs,
    Layer,
    NormAttrs,
    Operand,
    OpKind,
    OutputRefinement,
    QuantInfo,
    Role,
    add_layer,
    check_operands,
    new_graph,
)
from archsim.quant.calibrate import input_key
from archsim.quant.quantize import QuantizedModel
from archsim.quant.transforms import (
    ATTR_DENOMINATOR,
    ATTR_OUTPUT_CONSUMER,
    ATTR_OUTPUT_SCALE,
    ATTR_OUTPUT_SHIFT,
)

META_KEYS = ("model", "resolution", "batch", "policy", "seed")


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def compute_macs(kind: OpKind, out_shape, module: nn.Module | None, operand_shapes) -> int:
    """Exact multiply-accumulates: conv N*Cout*Ho*Wo*(Cin/g)*kh*kw; linear rows*in*out; matmul batch*M*K*N."""
    if kind in (OpKind.CONV_DENSE, OpKind.CONV_POINTWISE, OpKind.CONV_DEPTHWISE, OpKind.CONV_GROUPED):
        kh, kw = _pair(module.kernel_size)
        n, cout, ho, wo = out_shape
        return n * cout * ho * wo * (module.in_channels // module.groups) * kh * kw
    if kind == OpKind.LINEAR:
        return math.prod(out_shape[:-1]) * module.in_features * module.out_features
    if kind == OpKind.MATMUL:
        a, b = operand_shapes
        if len(a) < 2 or len(b) < 2:
            raise ValueError(f"matmul operands must be at least 2-d, got {a} and {b}")
        batch = math.prod(torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
        return batch * a[-2] * a[-1] * b[-1]
    return 0


def _bits(quantized: QuantizedModel | None, wide: bool) -> int:
    if quantized is None or not quantized.policy.quantized or wide:
        return FLOAT_BITS
    return quantized.policy.act_bits


def extract_graph(model: nn.Module, quantized: QuantizedModel | None, input_shape, meta: dict) -> nx.DiGraph:
    """The dataflow graph of ``model`` on an input of ``input_shape`` (batch included).

    With ``quantized`` the BN-folded model it holds is traced and each layer carries its
    QuantInfo; without, the model is traced as is (fp32, BN shown folded in the epilogue).
    ``meta`` supplies the graph attributes model, resolution, batch, policy, seed.
    A form the graph cannot express (a padding mode, a layout op, an activation) raises
    :class:`~archsim.frontend.access.ExtractionError` naming the layer.
    """
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"extract_graph: meta lacks {', '.join(missing)}")
    source_model = quantized.folded if quantized is not None else model
    source_model.eval()
    gm = fx.symbolic_trace(source_model)
    example = torch.zeros(tuple(input_shape))
    grouped = group_graph(gm, (example,))
    policy_quantized = quantized is not None and quantized.policy.quantized
    wide = quantized.wide if policy_quantized else set()
    operand_maps = operand_scale_maps(grouped, quantized) if policy_quantized else {}
    refinements = _output_refinements(grouped, quantized.layer_attrs) if policy_quantized else {}

    graph = new_graph(**{k: meta[k] for k in META_KEYS})
    graph.graph.update({k: v for k, v in meta.items() if k not in META_KEYS})
    graph.graph["input_shape"] = tuple(int(d) for d in input_shape)
    out_bits: dict[str, int] = {}
    for g in grouped.groups:
        layer = _make_layer(gm, grouped, g, quantized if policy_quantized else None, wide, out_bits)
        layer.refinement = refinements.get(g.name)
        parts = grouped.parts[g.name]
        if layer.quant is not None:  # the integer-path parameters (docs/quantization.md)
            out_q = quantized.activations.get(g.name)
            norm = _norm_module(gm, g)
            fill_integer_params(
                layer,
                layer.quant,
                operand_maps[g.name],
                [p.operand for p in parts],
                [p.producer in wide for p in parts],
                None if out_q is None else (out_q.lo, out_q.hi),
                norm_affine=norm,
            )
        out_bits[g.name] = layer.out_bits
        add_layer(graph, layer, [p.producer for p in parts])
    if not nx.is_directed_acyclic_graph(graph):
        raise AssertionError("extracted graph has a cycle")
    check_operands(graph)
    return graph


def _norm_module(gm, g: Group) -> tuple[np.ndarray, np.ndarray] | None:
    """(gamma, beta) of a LayerNorm group in float64, None when it has no affine part or is no norm."""
    module = gm.get_submodule(g.module_path) if g.module_path else None
    if not isinstance(module, nn.LayerNorm) or module.weight is None:
        return None
    return (
        module.weight.detach().to(torch.float64).numpy().copy(),
        module.bias.detach().to(torch.float64).numpy().copy(),
    )


def _output_refinements(grouped: GroupedGraph, layer_attrs: dict[str, dict]) -> dict[str, OutputRefinement]:
    """Producer -> its refinement's divisor / shift maps in its own output layout
    (the lists index the consumer)."""
    producers = {name: a for name, a in layer_attrs.items() if ATTR_OUTPUT_CONSUMER in a}
    if not producers:
        return {}
    index_maps = trace_index_maps(grouped, set(producers))
    out: dict[str, OutputRefinement] = {}
    for name, attrs in producers.items():
        consumer = attrs[ATTR_OUTPUT_CONSUMER]
        index = index_maps[consumer][0]
        shape = grouped.shapes[grouped.group(name).output.name]
        divisor = shift = None
        if ATTR_OUTPUT_SCALE in attrs:
            divisor = to_producer_layout(index, shape, attrs[ATTR_OUTPUT_SCALE])
        if ATTR_OUTPUT_SHIFT in attrs:
            shift = to_producer_layout(index, shape, attrs[ATTR_OUTPUT_SHIFT])
        out[name] = OutputRefinement(consumer, divisor, shift)
    return out


def _conv_padding(layer_name: str, conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a Conv2d's zero padding in every form torch accepts."""
    if conv.padding_mode != "zeros":
        raise ExtractionError(
            f"layer {layer_name}: padding_mode {conv.padding_mode!r} is not supported (zeros only)"
        )
    if conv.padding == "valid":
        return (0, 0, 0, 0)
    if conv.padding == "same":  # torch: total = dilation * (kernel - 1), the extra one after (bottom / right)
        out = []
        for k, d in zip(_pair(conv.kernel_size), _pair(conv.dilation)):
            total = d * (k - 1)
            out.extend((total // 2, total - total // 2))
        return tuple(out)
    if isinstance(conv.padding, str):
        raise ExtractionError(f"layer {layer_name}: padding {conv.padding!r} is not supported")
    ph, pw = _pair(conv.padding)
    return (ph, ph, pw, pw)


def _make_layer(
    gm,
    grouped: GroupedGraph,
    g: Group,
    quantized: QuantizedModel | None,
    wide: set[str],
    out_bits: dict[str, int],
) -> Layer:
    parts = grouped.parts[g.name]
    in_shapes = tuple(p.shape for p in parts)
    out_shape = grouped.shapes[g.output.name]
    module = gm.get_submodule(g.module_path) if g.module_path else None
    operand_shapes = [grouped.shapes[o.name] for o in g.operands]
    in_bits = [
        out_bits[p.producer]
        if p.producer is not None
        else (FLOAT_BITS if quantized is None else quantized.policy.act_bits)
        for p in parts
    ]
    is_wide = g.name in wide
    layer_out_bits = _bits(quantized, is_wide)
    epilogue = list(g.epilogue)
    if quantized is not None and not is_wide:
        epilogue.append("requant")
    programs = operand_programs(grouped, g)
    operands = tuple(
        Operand(tuple(shape), tuple(p for p, part in enumerate(parts) if part.operand == i), program)
        for i, (shape, program) in enumerate(zip(operand_shapes, programs))
    )
    layer = Layer(
        name=g.name,
        kind=g.kind,
        in_shapes=in_shapes,
        out_shape=out_shape,
        macs=compute_macs(g.kind, out_shape, module, operand_shapes),
        elements=math.prod(out_shape),
        epilogue=tuple(epilogue),
        act_bits=max(in_bits) if in_bits else _bits(quantized, False),
        in_bits=tuple(in_bits),
        out_bits=layer_out_bits,
        operands=operands,
        source=_provenance(g),
    )
    if isinstance(module, nn.Conv2d):
        layer.weight_shape = tuple(module.weight.shape)
        layer.kernel, layer.stride = _pair(module.kernel_size), _pair(module.stride)
        layer.padding = _conv_padding(g.name, module)
        layer.dilation = _pair(module.dilation)
        layer.groups = module.groups
    elif isinstance(module, nn.Linear):
        layer.weight_shape = tuple(module.weight.shape)
    if g.kind.has_weights:
        layer.role = Role(g.role)
        layer.weight_bits = FLOAT_BITS if quantized is None else quantized.weights[g.name].bits
    if isinstance(module, nn.LayerNorm):
        layer.norm = NormAttrs(eps=float(module.eps))
    refinement_attrs = getattr(quantized, "layer_attrs", {}).get(g.name, {}) if quantized is not None else {}
    if g.kind == OpKind.DIV:
        layer.div = DivAttrs(
            eps=float(g.attrs.get("eps", 0.0)),
            denominator=Denominator(refinement_attrs.get(ATTR_DENOMINATOR, "exact")),
        )
    if quantized is not None:
        layer.quant = _quant_info(quantized, g, parts, layer)
    return layer


def _quant_info(quantized: QuantizedModel, g: Group, parts: list[OperandPart], layer: Layer) -> QuantInfo:
    acts = quantized.activations

    def act_of(producer: str | None):
        key = producer if producer is not None else input_key(acts)
        return acts.get(key)

    in_q = [act_of(p.producer) for p in parts]
    out_q = acts.get(g.name)
    info = QuantInfo(
        act_bits=layer.act_bits,
        in_scales=tuple(float("nan") if q is None else q.scale for q in in_q),
        in_zero_points=tuple(0 if q is None else q.zero_point for q in in_q),
        out_bits=layer.out_bits,
        out_scale=None if out_q is None else out_q.scale,
        out_zero_point=0 if out_q is None else out_q.zero_point,
    )
    w = quantized.weights.get(g.name)
    if w is not None:
        info.weight_bits, info.apot_bits, info.apot_mask = w.bits, w.apot_bits, w.apot_mask
        info.weight_scale, info.weight_zero_point, info.weight_int = w.scale, w.zero_point, w.weight_int
        info.bias = w.bias
    return info


def _provenance(g: Group) -> str:
    anchor = g.anchor
    what = (
        g.module_path if g.module_path else f"{anchor.op}:{getattr(anchor.target, '__name__', anchor.target)}"
    )
    return f"torch.fx node {anchor.name} ({what})"


def quant_share_summary(graph: nx.DiGraph) -> dict:
    """APoT share over the mixed-scheme layers of a graph (for reports and tests)."""
    total = apot = 0
    for n in graph.nodes:
        q = graph.nodes[n]["layer"].quant
        if q is not None and q.apot_bits is not None and q.apot_mask is not None:
            total += q.apot_mask.size
            apot += int(np.count_nonzero(q.apot_mask))
    return {"apot_filters": apot, "mixed_filters": total, "apot_share": 0.0 if total == 0 else apot / total}
