"""Access programs: how a layer's operand is assembled from its producers' tensors (layout ops).

A layer reads each operand through a small program of layout steps, the address pattern its
loader (DMA / AGU) follows: concatenation, reshape, permutation, slicing, constant padding
and a ReLU on the loaded values. A program is a tuple of steps in SSA form: value ``i`` for
``i < n_sources`` is the whole output tensor of the operand's i-th source (a producer layer or
the graph input), and every step appends one value; the operand is the last value. Layout
steps move no data of their own: the consumer reads the producer's buffer in this order,
so timing and energy charge the bytes the consumer reads (its ports), not the steps.

Semantics are numpy's (and torch's, from which extraction records them): ``Reshape`` is
row-major, ``Permute(perm)`` is ``np.transpose(x, perm)``, ``Slice`` is basic slicing with
non-negative, already-clipped ``(start, stop, step)`` per axis, ``Pad`` pads each axis by
``(before, after)`` with ``value``. Values are integers in the zero-point-free domain of the
integer spec (``code - zero_point`` for 8-bit tensors, the accumulator for wide ones), so
a constant pad ``value`` is the integer it stands for (the ones column of linear attention
is 1 at scale 1) and ``Relu`` is ``max(x, 0)`` exactly.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Concat:
    inputs: tuple[int, ...]
    axis: int

    def apply(self, values: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([values[i] for i in self.inputs], axis=self.axis)

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        first = list(shapes[self.inputs[0]])
        first[self.axis] = sum(shapes[i][self.axis] for i in self.inputs)
        return tuple(first)


@dataclass(frozen=True)
class Reshape:
    input: int
    shape: tuple[int, ...]

    def apply(self, values: list[np.ndarray]) -> np.ndarray:
        return values[self.input].reshape(self.shape)

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if math.prod(shapes[self.input]) != math.prod(self.shape):
            raise ValueError(f"reshape of {shapes[self.input]} to {self.shape} changes the element count")
        return self.shape


@dataclass(frozen=True)
class Permute:
    input: int
    perm: tuple[int, ...]

    def apply(self, values: list[np.ndarray]) -> np.ndarray:
        return np.transpose(values[self.input], self.perm)

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        shape = shapes[self.input]
        if sorted(self.perm) != list(range(len(shape))):
            raise ValueError(f"permutation {self.perm} does not fit a {len(shape)}-d tensor")
        return tuple(shape[p] for p in self.perm)


@dataclass(frozen=True)
class Slice:
    input: int
    bounds: tuple[
        tuple[int, int, int], ...
    ]  # per axis: (start, stop, step), 0 <= start <= stop <= size, step >= 1

    def apply(self, values: list[np.ndarray]) -> np.ndarray:
        return values[self.input][tuple(slice(a, b, s) for a, b, s in self.bounds)]

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        shape = shapes[self.input]
        if len(self.bounds) != len(shape):
            raise ValueError(f"slice bounds {self.bounds} do not fit a {len(shape)}-d tensor")
        for (a, b, s), n in zip(self.bounds, shape):
            if not (0 <= a <= b <= n and s >= 1):
                raise ValueError(f"slice ({a}, {b}, {s}) is outside an axis of {n}")
        return tuple(len(range(a, b, s)) for a, b, s in self.bounds)


@dataclass(frozen=True)
class Pad:
    input: int
    widths: tuple[tuple[int, int], ...]  # per axis: (before, after), >= 0
    value: int  # the pad constant as an integer of the operand's zero-point-free domain

    def apply(self, values: list[np.ndarray]) -> np.ndarray:
        return np.pad(values[self.input], self.widths, mode="constant", constant_values=self.value)

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        shape = shapes[self.input]
        if len(self.widths) != len(shape) or any(a < 0 or b < 0 for a, b in self.widths):
            raise ValueError(f"pad widths {self.widths} do not fit a {len(shape)}-d tensor")
        return tuple(n + a + b for n, (a, b) in zip(shape, self.widths))


@dataclass(frozen=True)
class Relu:
    """max(x, 0) on the loaded values (the ReLU kernel on q and k of linear attention)."""

    input: int

    def apply(self, values: list[np.ndarray]) -> np.ndarray:
        return np.maximum(values[self.input], 0)

    def out_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        return shapes[self.input]


Step = Concat | Reshape | Permute | Slice | Pad | Relu
STEP_TYPES: tuple[type, ...] = (Concat, Reshape, Permute, Slice, Pad, Relu)


def step_inputs(step: Step) -> tuple[int, ...]:
    return step.inputs if isinstance(step, Concat) else (step.input,)


def run_program(program: tuple[Step, ...], sources: list[np.ndarray]) -> np.ndarray:
    """The operand: ``program`` applied to the whole tensors of its sources (the last value)."""
    values = list(sources)
    for step in program:
        values.append(step.apply(values))
    return values[-1]


def program_shape(program: tuple[Step, ...], source_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The operand's shape; raises ValueError when a step does not fit its inputs."""
    shapes = [tuple(s) for s in source_shapes]
    for k, step in enumerate(program):
        if any(not 0 <= i < len(shapes) for i in step_inputs(step)):
            raise ValueError(f"step {k} ({type(step).__name__}) reads a value that does not exist yet")
        shapes.append(step.out_shape(shapes))
    return shapes[-1]


def relu_steps(program: tuple[Step, ...]) -> int:
    """How many ReLU steps a program applies (each one vector op per element it touches)."""
    return sum(isinstance(s, Relu) for s in program)
