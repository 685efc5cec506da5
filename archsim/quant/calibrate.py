"""Activation calibration: per-tensor observers that can switch to fake quantization.

An :class:`ActivationQuantizer` is inserted after every tensor that is stored at 8 bit (a
layer's output, the network input). In ``observe`` mode it records the running min/max over
all calibration batches (and, for the "percentile" and "lp" range methods, a subsample of
the values); after :meth:`freeze` it fake-quantizes (quantize-dequantize).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from archsim.quant.quantizers import fake_quantize, tensor_range, uniform_params

# [choice] values kept per calibration batch for the percentile / lp range search: an evenly
# strided subsample (the global min/max are always kept), bounding memory on large maps.
SAMPLES_PER_BATCH = 1 << 16
INPUT_KEY_PREFIX = "input:"  # activation key of a graph input: "input:<placeholder name>"


def input_key(activations) -> str:
    """The activation key of the (first) graph input among ``activations``' keys ("input:x" if none)."""
    return next((k for k in activations if k.startswith(INPUT_KEY_PREFIX)), INPUT_KEY_PREFIX + "x")


@dataclass(frozen=True)
class ActQuant:
    """Per-tensor activation quantization of one tensor: (code - zero_point) * scale."""

    bits: int
    scale: float
    zero_point: int
    lo: float  # range used: observed minimum (minmax) or the searched lower bound
    hi: float  # range used: observed maximum (minmax) or the searched upper bound
    symmetric: bool = False
    range_method: str = "minmax"


class ActivationQuantizer(nn.Module):
    def __init__(self, bits: int = 8, symmetric: bool = False, range_method: str = "minmax"):
        super().__init__()
        self.bits, self.symmetric, self.range_method = bits, symmetric, range_method
        self.lo, self.hi = float("inf"), float("-inf")
        self.samples: list[torch.Tensor] = []
        self.params: ActQuant | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.params is None:
            self.lo = min(self.lo, float(x.detach().min()))
            self.hi = max(self.hi, float(x.detach().max()))
            if self.range_method != "minmax":
                flat = x.detach().flatten()
                step = max(1, flat.numel() // SAMPLES_PER_BATCH)
                self.samples.append(flat[::step].to(torch.float64))
            return x
        p = self.params
        return fake_quantize(x, p.scale, p.zero_point, p.bits, p.symmetric)

    def freeze(self) -> ActQuant:
        if self.lo > self.hi:
            raise RuntimeError("activation quantizer saw no calibration data")
        lo, hi = torch.tensor(self.lo, dtype=torch.float64), torch.tensor(self.hi, dtype=torch.float64)
        if self.range_method != "minmax":
            values = torch.cat([*self.samples, lo.reshape(1), hi.reshape(1)])
            lo, hi = tensor_range(values, None, self.range_method, bits=self.bits, symmetric=self.symmetric)
            self.samples = []
        scale, zp = uniform_params(lo, hi, self.bits, self.symmetric)
        self.params = ActQuant(
            self.bits, float(scale), int(zp), float(lo), float(hi), self.symmetric, self.range_method
        )
        return self.params


def insert_quantizers(
    gm: fx.GraphModule, points: dict[str, fx.Node], bits: int, symmetric: bool, range_method: str = "minmax"
) -> dict[str, str]:
    """Insert an ActivationQuantizer after each node of ``points`` (key -> node).

    Returns key -> submodule name. Every user of the node (except the quantizer) reads the
    quantized value.
    """
    names: dict[str, str] = {}
    for i, (key, node) in enumerate(points.items()):
        sub = f"_actq_{i}"
        gm.add_submodule(sub, ActivationQuantizer(bits, symmetric, range_method))
        with gm.graph.inserting_after(node):
            q = gm.graph.call_module(sub, (node,))
        node.replace_all_uses_with(q, delete_user_cb=lambda user, q=q: user is not q)
        names[key] = sub
    gm.recompile()
    return names


def calibrate(
    gm: fx.GraphModule, names: dict[str, str], batches: Iterable[torch.Tensor]
) -> dict[str, ActQuant]:
    """Run the calibration batches through ``gm`` and freeze every inserted quantizer."""
    gm.eval()
    seen = 0
    with torch.no_grad():
        for batch in batches:
            gm(batch)
            seen += 1
    if seen == 0:
        raise ValueError("calibration needs at least one batch")
    return {key: gm.get_submodule(sub).freeze() for key, sub in names.items()}
