"""The toy EfficientViT (tests/unit/test_extract_toy.py) quantized and extracted once per policy,
shared by tests."""

from __future__ import annotations

from functools import lru_cache

import torch
from test_extract_toy import META, RES, Toy

from archsim.frontend.extract import extract_graph
from archsim.quant.quantize import quantize_model


@lru_cache(maxsize=None)
def toy_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = Toy().eval()
    with torch.no_grad():  # non-trivial BN statistics so folding matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


@lru_cache(maxsize=None)
def toy_build(policy: str, batch: int = 1):
    """(QuantizedModel, graph) of the toy under ``policy`` (a bundled name or a policy YAML path)."""
    model = toy_model()
    gen = torch.Generator().manual_seed(5)
    q = quantize_model(model, policy, [torch.randn(2, 3, RES, RES, generator=gen) for _ in range(2)])
    return q, extract_graph(model, q, (batch, 3, RES, RES), dict(META, policy=policy, batch=batch))
