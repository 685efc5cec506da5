"""Access programs from the fx trace: the layout ops between producers and an operand, as typed steps.

For every operand of a layer group, walk back from the operand's fx node through layout nodes
(cat, reshape / view / flatten / squeeze / unsqueeze, transpose / permute / t, basic slicing,
constant pad, contiguous / dropout / identity / dtype casts) and prologue activations (ReLU)
to the group outputs or graph inputs it reads, and record each node as a step of
:mod:`archsim.graph.access`. Every step's output shape is checked against the shape
propagation of the trace. A node this translation cannot express (an advanced index, a
non-constant pad, a prologue activation other than ReLU, a slice with a traced bound) is an
:class:`ExtractionError` naming the layer and the node, never a silent default.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from archsim.frontend.fx_groups import (
    LAYOUT_MODULES,
    ExtractionError,
    Group,
    GroupedGraph,
    OperandPart,
    _is_layout,
    _is_scalar_add,
    activation_name,
)
from archsim.frontend.scale_maps import PAD_SCALE
from archsim.graph.access import Concat, Pad, Permute, Relu, Reshape, Slice, Step

PASS_THROUGH_METHODS = {"contiguous", "float", "double", "half", "to", "type_as"}
PASS_THROUGH_FUNCTIONS = {F.dropout}
RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze"}
RESHAPE_FUNCTIONS = {torch.reshape, torch.flatten, torch.squeeze, torch.unsqueeze}
TRANSPOSE_FUNCTIONS = {torch.transpose, torch.swapaxes, torch.t}


def operand_programs(grouped: GroupedGraph, g: Group) -> list[tuple[Step, ...]]:
    """One access program per operand of ``g`` (its ports: the group's parts of that operand, in order)."""
    parts = grouped.parts[g.name]
    return [
        _Walker(grouped, g, [p for p in parts if p.operand == i]).program(op)
        for i, op in enumerate(g.operands)
    ]


class _Walker:
    def __init__(self, grouped: GroupedGraph, g: Group, parts: list[OperandPart]):
        self.gm, self.shapes, self.g = grouped.gm, grouped.shapes, g
        self.output_of = {grp.output: grp.name for grp in grouped.groups}
        self.internal = {n for grp in grouped.groups for n in grp.members} - set(self.output_of)
        self.source_index = {part.producer: i for i, part in enumerate(parts)}
        placeholder = next(n for n in grouped.gm.graph.nodes if n.op == "placeholder")
        # value i < len(parts): the whole output of port i's producer; then one value per step
        self.value_shapes: list[tuple[int, ...]] = [
            tuple(self.shapes[(placeholder if p.producer is None else grouped.group(p.producer).output).name])
            for p in parts
        ]
        self.steps: list[Step] = []
        self.memo: dict[fx.Node, int] = {}

    def error(self, node: fx.Node, what: str) -> ExtractionError:
        return ExtractionError(
            f"layer {self.g.name}: fx node {node.name} ({node.op} {_target_name(node)}): {what}"
        )

    def program(self, operand: fx.Node) -> tuple[Step, ...]:
        last = self.value(operand)
        if not self.steps:
            if last != 0 or len(self.source_index) != 1:
                raise self.error(operand, "the operand is one source of several")
            return ()
        if last != len(self.value_shapes) - 1:
            raise self.error(operand, "the operand is not the program's last value")
        return tuple(self.steps)

    def emit(self, node: fx.Node, step: Step, check: bool = True) -> int:
        """Append ``step``; its output shape must be the trace's shape of ``node`` (unless check is off)."""
        try:
            shape = tuple(step.out_shape(self.value_shapes))
        except ValueError as exc:
            raise self.error(node, str(exc)) from exc
        expected = self.shapes.get(node.name)
        if check and expected is not None and shape != tuple(expected):
            raise self.error(node, f"the recorded step gives shape {shape}, the trace has {tuple(expected)}")
        self.steps.append(step)
        self.value_shapes.append(shape)
        return len(self.value_shapes) - 1

    def value(self, node: fx.Node) -> int:
        if node not in self.memo:
            self.memo[node] = self._value(node)
        return self.memo[node]

    def _value(self, node: fx.Node) -> int:
        if node.op == "placeholder" or node in self.output_of:
            producer = None if node.op == "placeholder" else self.output_of[node]
            if producer not in self.source_index:
                raise self.error(node, "the operand reads this tensor but none of its elements (no port)")
            return self.source_index[producer]
        if node in self.internal:
            raise self.error(node, "reads an internal value of another layer")
        if _is_scalar_add(node):  # den + eps: the division adds eps itself
            return self.value(next(a for a in node.args if isinstance(a, fx.Node)))
        act = activation_name(self.gm, node)
        if act is not None:
            if act != "relu":
                raise self.error(node, f"a {act} on an operand (only ReLU can be applied while loading)")
            return self.emit(node, Relu(self.value(node.args[0])))
        if not _is_layout(self.gm, node):
            raise self.error(node, "is neither a layer nor a layout op")
        return self._layout(node)

    def _layout(self, node: fx.Node) -> int:
        target, out_shape = node.target, self.shapes.get(node.name)
        if node.op == "call_module":
            module = self.gm.get_submodule(target)
            if isinstance(module, nn.Flatten):
                return self.emit(node, Reshape(self.value(node.args[0]), tuple(out_shape)))
            if isinstance(module, LAYOUT_MODULES):
                return self.value(node.args[0])
        if (node.op == "call_method" and target in PASS_THROUGH_METHODS) or target in PASS_THROUGH_FUNCTIONS:
            return self.value(node.args[0])
        if (node.op == "call_method" and target in RESHAPE_METHODS) or target in RESHAPE_FUNCTIONS:
            return self.emit(node, Reshape(self.value(node.args[0]), tuple(out_shape)))
        if target in (torch.cat, torch.concat):
            tensors = node.args[0] if node.args else node.kwargs["tensors"]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            inputs = tuple(self.value(t) for t in tensors)
            return self.emit(node, Concat(inputs, _axis(dim, len(out_shape))))
        if (
            (node.op == "call_method" and target in ("transpose", "permute", "t"))
            or target in TRANSPOSE_FUNCTIONS
            or target is torch.permute
        ):
            src = node.args[0]
            return self.emit(node, Permute(self.value(src), self._perm(node, len(self.shapes[src.name]))))
        if target is operator.getitem:
            src, index = node.args
            if not isinstance(src, fx.Node) or src.name not in self.shapes:
                raise self.error(node, "indexes something that is not a traced tensor (chunk / split)")
            in_shape = self.shapes[src.name]
            bounds = _slice_bounds(index, in_shape, lambda what: self.error(node, what))
            v = self.value(src)
            if any(b != (0, n, 1) for b, n in zip(bounds, in_shape)):
                v = self.emit(node, Slice(v, tuple(bounds)), check=False)
            if self.value_shapes[v] != tuple(out_shape):  # an int or None index changed the rank
                v = self.emit(node, Reshape(v, tuple(out_shape)))
            return v
        if target is F.pad:
            return self._pad(node)
        raise self.error(node, "this layout op cannot be expressed as an access-program step")

    def _perm(self, node: fx.Node, ndim: int) -> tuple[int, ...]:
        if node.target in ("t", torch.t):
            return tuple(range(ndim))[::-1]
        if node.target in ("permute", torch.permute):
            dims = node.args[1:] if node.op == "call_method" else node.args[1]
            if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                dims = dims[0]
            return tuple(_axis(d, ndim) for d in dims)
        d0, d1 = (_axis(d, ndim) for d in node.args[1:3])
        perm = list(range(ndim))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return tuple(perm)

    def _pad(self, node: fx.Node) -> int:
        src = node.args[0]
        pad = node.args[1] if len(node.args) > 1 else node.kwargs["pad"]
        mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
        value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value", None)
        value = 0.0 if value is None else value
        if (
            mode != "constant"
            or not all(isinstance(p, int) for p in pad)
            or not isinstance(value, (int, float))
        ):
            raise self.error(node, f"only constant padding with literal widths is supported (mode {mode!r})")
        integer = value / PAD_SCALE  # the padded elements carry scale PAD_SCALE (archsim.frontend.scale_maps)
        if integer != round(integer):
            raise self.error(node, f"pad value {value} is not an integer at scale {PAD_SCALE}")
        ndim = len(self.shapes[src.name])
        widths = [(0, 0)] * ndim
        for k in range(len(pad) // 2):  # F.pad lists (before, after) from the last axis backwards
            widths[ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
        return self.emit(node, Pad(self.value(src), tuple(widths), int(round(integer))))


def _target_name(node: fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target))


def _axis(dim, ndim: int) -> int:
    if not isinstance(dim, int):
        raise ExtractionError(f"a traced dimension {dim!r} where a constant axis is needed")
    return dim + ndim if dim < 0 else dim


def _slice_bounds(index, shape, error) -> list[tuple[int, int, int]]:
    """Per input axis (start, stop, step) of a basic index (slices, ints, None, Ellipsis)."""
    items = index if isinstance(index, tuple) else (index,)
    real = [i for i in items if i is not None and i is not Ellipsis]
    if sum(i is Ellipsis for i in items) > 1 or len(real) > len(shape):
        raise error(f"index {index!r} does not fit a {len(shape)}-d tensor")
    bounds: list[tuple[int, int, int]] = []
    axis = 0
    for item in items:
        if item is None:
            continue
        if item is Ellipsis:
            for _ in range(len(shape) - len(real)):
                bounds.append((0, shape[axis], 1))
                axis += 1
            continue
        n = shape[axis]
        if isinstance(item, bool) or not isinstance(item, (int, slice)):
            raise error(f"index {item!r} is not a constant slice or integer (advanced indexing)")
        if isinstance(item, int):
            i = item + n if item < 0 else item
            if not 0 <= i < n:
                raise error(f"index {item} is outside an axis of {n}")
            bounds.append((i, i + 1, 1))
        else:
            if any(isinstance(v, fx.Node) for v in (item.start, item.stop, item.step)):
                raise error(f"slice {item} has a traced bound")
            start, stop, step = item.indices(n)
            if step < 1:
                raise error(f"slice {item} has a negative step")
            bounds.append((start, max(start, stop), step))
        axis += 1
    bounds.extend((0, shape[a], 1) for a in range(axis, len(shape)))
    return bounds
