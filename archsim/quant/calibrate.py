"""Activation calibration: per-tensor min-max observers that can switch to fake quantization.

An :class:`ActivationQuantizer` is inserted after every tensor that is stored at 8 bit (a
layer's output, the network input). In ``observe`` mode it records the running min/max over
all calibration batches; after :meth:`freeze` it fake-quantizes (quantize-dequantize).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from archsim.quant.quantizers import fake_quantize, uniform_params


@dataclass(frozen=True)
class ActQuant:
    """Per-tensor activation quantization of one tensor: (code - zero_point) * scale."""

    bits: int
    scale: float
    zero_point: int
    lo: float  # observed minimum over the calibration set
    hi: float  # observed maximum
    symmetric: bool = False


class ActivationQuantizer(nn.Module):
    def __init__(self, bits: int = 8, symmetric: bool = False):
        super().__init__()
        self.bits, self.symmetric = bits, symmetric
        self.lo, self.hi = float("inf"), float("-inf")
        self.params: ActQuant | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.params is None:
            self.lo = min(self.lo, float(x.detach().min()))
            self.hi = max(self.hi, float(x.detach().max()))
            return x
        p = self.params
        return fake_quantize(x, p.scale, p.zero_point, p.bits, p.symmetric)

    def freeze(self) -> ActQuant:
        if self.lo > self.hi:
            raise RuntimeError("activation quantizer saw no calibration data")
        scale, zp = uniform_params(torch.tensor(self.lo), torch.tensor(self.hi), self.bits, self.symmetric)
        self.params = ActQuant(self.bits, float(scale), int(zp), self.lo, self.hi, self.symmetric)
        return self.params


def insert_quantizers(gm: fx.GraphModule, points: dict[str, fx.Node], bits: int, symmetric: bool) -> dict[str, str]:
    """Insert an ActivationQuantizer after each node of ``points`` (key -> node).

    Returns key -> submodule name. Every user of the node (except the quantizer) reads the
    quantized value.
    """
    names: dict[str, str] = {}
    for i, (key, node) in enumerate(points.items()):
        sub = f"_actq_{i}"
        gm.add_submodule(sub, ActivationQuantizer(bits, symmetric))
        with gm.graph.inserting_after(node):
            q = gm.graph.call_module(sub, (node,))
        node.replace_all_uses_with(q, delete_user_cb=lambda user, q=q: user is not q)
        names[key] = sub
    gm.recompile()
    return names


def calibrate(gm: fx.GraphModule, names: dict[str, str], batches: Iterable[torch.Tensor]) -> dict[str, ActQuant]:
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
