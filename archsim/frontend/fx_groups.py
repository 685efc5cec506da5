"""Group the nodes of a torch.fx graph into archsim layers.

A *group* is one future graph node: an anchor (conv, linear, matmul, add, div, pool, norm or
an unfusable activation) plus the epilogue folded into it (batch norm, activation; the
requantization is implicit). Layout ops (reshape, view, permute, transpose, flatten, cat,
pad, slices, chunk/split, contiguous, dropout, identity, dtype casts) are not groups: a
label propagation pass runs them on tensors filled with producer ids, so every anchor
operand is traced back to the group(s) that produced its elements, with one part shape
per producer (a concatenation of two producers gives two parts, in order).

Two folds that are not layout:
- an activation applied to a slice (ReLU on q and k in linear attention) is not a group: it
  becomes a step of its consumer's access program (archsim.frontend.access);
- adding a Python scalar (``den + eps``) is folded into the consumer (``attrs["eps"]``).

Both quantization (activation observers sit on group outputs) and extraction use this
module, so they agree on what a layer is.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from archsim.graph.ir import OpKind

CONST_LABEL = -1.0  # elements created by padding with a constant (v padded with ones)
INPUT_LABEL_BASE = -1000.0  # graph input i gets label INPUT_LABEL_BASE - i

ACT_MODULES = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.Hardswish: "hardswish",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
}
ACT_FUNCTIONS = {
    F.relu: "relu",
    torch.relu: "relu",
    F.relu6: "relu6",
    F.hardswish: "hardswish",
    F.gelu: "gelu",
    F.silu: "silu",
}
ACT_METHODS = {"relu": "relu", "relu_": "relu"}
LAYOUT_MODULES = (nn.Identity, nn.Dropout, nn.Flatten)
LAYOUT_FUNCTIONS = {
    torch.cat,
    torch.concat,
    torch.reshape,
    torch.flatten,
    torch.transpose,
    torch.permute,
    torch.chunk,
    torch.split,
    operator.getitem,
    F.pad,
    torch.squeeze,
    torch.unsqueeze,
    F.dropout,
    torch.narrow,
    getattr,
    torch.t,
    torch.swapaxes,
}
LAYOUT_METHODS = {
    "view",
    "reshape",
    "permute",
    "transpose",
    "flatten",
    "contiguous",
    "chunk",
    "split",
    "size",
    "float",
    "to",
    "type_as",
    "squeeze",
    "unsqueeze",
    "narrow",
    "t",
    "double",
    "half",
    "dim",
}
MATMUL_FUNCTIONS = {operator.matmul, torch.matmul, torch.bmm}
ADD_FUNCTIONS = {operator.add, torch.add, operator.iadd}
DIV_FUNCTIONS = {operator.truediv, torch.div, torch.true_divide}


class ExtractionError(ValueError):
    """The trace holds a form the graph cannot express; the message names the layer and the fx node."""


@dataclass
class Group:
    name: str
    kind: OpKind
    anchor: fx.Node
    output: fx.Node  # the node whose value is the layer's output tensor
    members: list[fx.Node]  # anchor + epilogue nodes
    epilogue: list[str] = field(default_factory=list)
    module_path: str | None = None  # anchor module (conv, linear, norm, pool)
    role: str | None = None  # weighted layers: depthwise / pointwise / dense / classifier
    operands: list[fx.Node] = field(default_factory=list)  # tensor arguments of the anchor
    attrs: dict = field(default_factory=dict)


@dataclass
class OperandPart:
    producer: str | None  # group name, or None for a graph input
    shape: tuple[int, ...]
    operand: int  # which operand of the anchor this part belongs to


@dataclass
class GroupedGraph:
    gm: fx.GraphModule
    groups: list[Group]  # in execution order
    parts: dict[str, list[OperandPart]]  # group name -> its input parts (ports, in order)
    shapes: dict[str, tuple[int, ...]]  # fx node name -> output shape (tensor nodes)
    input_names: list[str]  # placeholders

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)


# -- node classification ---------------------------------------------------------------
def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _is_scalar(a) -> bool:
    return isinstance(a, (int, float))


def activation_name(gm: fx.GraphModule, node: fx.Node) -> str | None:
    if node.op == "call_module":
        return next((n for t, n in ACT_MODULES.items() if isinstance(_module(gm, node), t)), None)
    if node.op == "call_function":
        return ACT_FUNCTIONS.get(node.target)
    if node.op == "call_method":
        return ACT_METHODS.get(node.target)
    return None


def _is_layout(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(_module(gm, node), LAYOUT_MODULES)
    if node.op == "call_function":
        return node.target in LAYOUT_FUNCTIONS
    if node.op == "call_method":
        return node.target in LAYOUT_METHODS
    return False


def _is_scalar_add(node: fx.Node) -> bool:
    is_add = (node.op == "call_function" and node.target in ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target == "add"
    )
    return is_add and any(_is_scalar(a) for a in node.args[:2])


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    out: list[fx.Node] = []
    for a in node.args:
        if isinstance(a, fx.Node):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(x for x in a if isinstance(x, fx.Node))
    return out


def _anchor_kind(gm: fx.GraphModule, node: fx.Node, shapes) -> OpKind | None:
    """The OpKind a node anchors, or None if it is folded / layout / not a tensor op."""
    if node.op == "call_module":
        m = _module(gm, node)
        if isinstance(m, nn.Conv2d):
            return conv_kind(m)
        if isinstance(m, nn.Linear):
            return OpKind.LINEAR
        if isinstance(m, nn.LayerNorm):
            return OpKind.NORM
        if isinstance(m, (nn.AdaptiveAvgPool2d,)):
            return OpKind.POOL
        if isinstance(m, (nn.BatchNorm2d,)) or isinstance(m, LAYOUT_MODULES) or activation_name(gm, node):
            return None
        raise ValueError(f"fx node {node.name}: unsupported module {type(m).__name__} at {node.target}")
    if node.op in ("call_function", "call_method"):
        t = node.target
        if t in MATMUL_FUNCTIONS or t in ("matmul", "bmm"):
            return OpKind.MATMUL
        if (t in ADD_FUNCTIONS or t == "add") and not _is_scalar_add(node):
            return OpKind.ADD
        if t in DIV_FUNCTIONS or t == "div":
            if isinstance(node.args[1], fx.Node):
                return OpKind.DIV
            raise ValueError(f"fx node {node.name}: division by a constant is not supported")
        if t in (F.adaptive_avg_pool2d, torch.mean, "mean"):
            return OpKind.POOL
        if t in (F.layer_norm,):
            return OpKind.NORM
        if _is_layout(gm, node) or _is_scalar_add(node) or activation_name(gm, node):
            return None
        if node.name not in shapes:  # pure shape arithmetic (ints), not tensors
            return None
        raise ValueError(f"fx node {node.name}: unsupported operation {t!r}")
    return None


def conv_kind(conv: nn.Conv2d) -> OpKind:
    if conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1:
        return OpKind.CONV_DEPTHWISE
    if conv.groups > 1:
        return OpKind.CONV_GROUPED
    if tuple(conv.kernel_size) == (1, 1):
        return OpKind.CONV_POINTWISE
    return OpKind.CONV_DENSE


def conv_role(conv: nn.Conv2d) -> str:
    kind = conv_kind(conv)
    if kind == OpKind.CONV_DEPTHWISE:
        return "depthwise"
    if tuple(conv.kernel_size) == (1, 1):
        return "pointwise"
    return "dense"


# -- naming ------------------------------------------------------------------------------
def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def layer_name(node: fx.Node, counts: dict[str, int] | None = None) -> str:
    """Module path for modules (a ConvNormAct's ``.conv`` is named by the block).

    Functions: "<enclosing module path>.<op>" numbered within that module ("...main.matmul",
    "...main.matmul_1"), so names do not depend on fx's global counters. ``counts`` carries
    the per-scope numbering across calls.
    """
    if node.op == "call_module":
        path = str(node.target)
        return path[: -len(".conv")] if path.endswith(".conv") else path
    base = re.sub(r"_\d+$", "", node.name)
    scope = _scope(node)
    stem = f"{scope}.{base}" if scope else base
    if counts is None:
        return stem
    k = counts.get(stem, 0)
    counts[stem] = k + 1
    return stem if k == 0 else f"{stem}_{k}"


# -- grouping ----------------------------------------------------------------------------
def _absorb_epilogue(gm, anchor: fx.Node, kind: OpKind) -> tuple[list[fx.Node], list[str]]:
    members, epilogue, cur = [anchor], [], anchor
    while len(cur.users) == 1:
        user = next(iter(cur.users))
        m = _module(gm, user)
        if isinstance(m, nn.BatchNorm2d) and kind in (
            OpKind.CONV_DENSE,
            OpKind.CONV_POINTWISE,
            OpKind.CONV_DEPTHWISE,
            OpKind.CONV_GROUPED,
        ):
            epilogue.append("bn_folded")
        elif isinstance(m, (nn.Identity, nn.Dropout)):
            pass
        elif (act := activation_name(gm, user)) is not None:
            epilogue.append(act)
        else:
            break
        members.append(user)
        cur = user
    return members, epilogue


def group_graph(gm: fx.GraphModule, example_inputs: tuple[torch.Tensor, ...]) -> GroupedGraph:
    """Shape-propagate ``gm`` on ``example_inputs`` and split it into layer groups."""
    # One real forward on a batch-1 example: cheaper than fake tensors here, whose set-up
    # (importing dynamo, deep-copying the module to fake parameters) costs ~2.5 s per call.
    with torch.no_grad():
        ShapeProp(gm).propagate(*example_inputs)
    shapes = {
        n.name: tuple(n.meta["tensor_meta"].shape)
        for n in gm.graph.nodes
        if isinstance(n.meta.get("tensor_meta"), torch.fx.passes.shape_prop.TensorMetadata)
    }
    groups: list[Group] = []
    taken: set[fx.Node] = set()
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node in taken:
            continue
        kind = _anchor_kind(gm, node, shapes)
        if kind is None:
            act = activation_name(gm, node)
            src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
            # an activation on a producer's whole output that could not be fused stays a node;
            # one on a slice (ReLU on q/k) becomes its consumer's prologue
            if act is None or (src is not None and src.op != "placeholder" and _is_layout(gm, src)):
                continue
            kind = OpKind.ACTIVATION
        members, epilogue = ([node], []) if kind == OpKind.ACTIVATION else _absorb_epilogue(gm, node, kind)
        if kind == OpKind.ACTIVATION:
            epilogue = [activation_name(gm, node)]
        taken.update(members)
        m = _module(gm, node)
        g = Group(
            name=layer_name(node, counts),
            kind=kind,
            anchor=node,
            output=members[-1],
            members=members,
            epilogue=epilogue,
            module_path=str(node.target) if m is not None else None,
            operands=_tensor_args(node) if kind != OpKind.POOL else _tensor_args(node)[:1],
        )
        if isinstance(m, nn.Conv2d):
            g.role = conv_role(m)
            if m.bias is not None or "bn_folded" in epilogue:
                g.epilogue.insert(0, "bias")
        elif isinstance(m, nn.Linear):
            g.role = "pointwise"
            if m.bias is not None:
                g.epilogue.insert(0, "bias")
        groups.append(g)
    linears = [g for g in groups if g.kind == OpKind.LINEAR]
    if linears:
        linears[-1].role = "classifier"
    parts = _trace_operands(gm, groups, shapes)
    inputs = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError("duplicate layer names in the traced graph")
    return GroupedGraph(gm, groups, parts, shapes, inputs)


# -- label propagation -------------------------------------------------------------------
class _LabelInterpreter(fx.Interpreter):
    """Runs layout ops on tensors of producer labels to find where each operand comes from."""

    def __init__(self, gm, groups: list[Group], shapes):
        super().__init__(gm)
        self.shapes = shapes
        self.by_anchor = {g.anchor: (i, g) for i, g in enumerate(groups)}
        self.by_output = {g.output: i for i, g in enumerate(groups)}
        self.internal = {n for g in groups for n in g.members}
        self.names = [g.name for g in groups]
        self.parts: dict[str, list[OperandPart]] = {}
        self.prologue: dict[fx.Node, str] = {}
        self.n_inputs = 0

    def run_node(self, n: fx.Node):
        if n.op == "placeholder":
            shape = self.shapes[n.name]
            label = INPUT_LABEL_BASE - self.n_inputs
            self.n_inputs += 1
            return _constant(shape, label)
        if n in self.by_anchor:
            i, g = self.by_anchor[n]
            self.parts[g.name] = self._operand_parts(g)
        if n in self.by_output:
            return _constant(self.shapes[n.name], float(self.by_output[n]))
        if n in self.internal:
            return _constant(self.shapes[n.name], 0.0) if n.name in self.shapes else None
        if _is_scalar_add(n):
            return self.env[next(a for a in n.args if isinstance(a, fx.Node))]
        if activation_name(self.module, n) is not None:  # prologue activation: labels pass through
            return self.env[n.args[0]]
        if n.op == "call_function" and n.target is F.pad:
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
            if mode != "constant":
                consumers = ", ".join(sorted(u.name for u in n.users))
                raise ExtractionError(
                    f"fx node {n.name} (read by {consumers}): padding mode {mode!r}: "
                    "only constant padding is supported"
                )
            kwargs = dict(kwargs)
            kwargs["value"] = CONST_LABEL
            if len(args) > 3:
                args = args[:3]
            return F.pad(*args, **kwargs)
        return super().run_node(n)

    def _operand_parts(self, g: Group) -> list[OperandPart]:
        parts: list[OperandPart] = []
        for index, op in enumerate(g.operands):
            labels = self.env[op]
            if not isinstance(labels, torch.Tensor):
                raise ValueError(f"{g.name}: operand {op.name} is not a tensor")
            flat = labels.reshape(-1)
            if all(st == 0 for st in labels.stride()):  # the common case: one producer, whole tensor
                v = float(flat[0])
                producer = None if v <= INPUT_LABEL_BASE else self.names[int(v)]
                parts.append(OperandPart(producer, tuple(labels.shape), index))
                flat = flat[:0]
            seen: list[float] = []
            for v in torch.unique_consecutive(flat).tolist():
                if v != CONST_LABEL and v not in seen:
                    seen.append(v)
            for v in seen:
                where = (labels == v).nonzero()  # the part's shape: bounding box of its elements
                shape = tuple(int(e) for e in where.amax(0) - where.amin(0) + 1)
                producer = None if v <= INPUT_LABEL_BASE else self.names[int(v)]
                parts.append(OperandPart(producer, shape, index))
            eps = _scalar_add_constant(op)
            if eps is not None:
                g.attrs["eps"] = eps
        return parts


def _constant(shape, label: float) -> torch.Tensor:
    """A label tensor without memory: one element broadcast (stride 0) to ``shape``."""
    return torch.full((), label, dtype=torch.float32).expand(shape)


def _scalar_add_constant(node: fx.Node) -> float | None:
    while True:
        if _is_scalar_add(node):
            return float(next(a for a in node.args if _is_scalar(a)))
        tensor_args = _tensor_args(node)
        if node.op == "call_module" or len(tensor_args) != 1 or node.op == "placeholder":
            return None
        if node.op == "call_method" and node.target not in LAYOUT_METHODS:
            return None
        if node.op == "call_function" and node.target not in LAYOUT_FUNCTIONS:
            return None
        node = tensor_args[0]


def _trace_operands(gm, groups, shapes) -> dict[str, list[OperandPart]]:
    interp = _LabelInterpreter(gm, groups, shapes)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    with torch.no_grad():
        interp.run(*[torch.zeros(shapes[p.name]) for p in placeholders])
    return interp.parts
