"""Batch-norm folding: Conv2d followed by BatchNorm2d becomes one Conv2d with a bias.

Exact in real arithmetic (eval-mode BN is affine per channel):
    y = gamma * (W x + b - mean) / sqrt(var + eps) + beta
      = (W * s) x + (b - mean) * s + beta,   s = gamma / sqrt(var + eps).
Computed in float64 and stored back in the conv's dtype.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d equal to ``bn(conv(x))`` in eval mode."""
    if conv.out_channels != bn.num_features:
        raise ValueError(
            f"cannot fold BatchNorm2d({bn.num_features}) into a conv with {conv.out_channels} outputs"
        )
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError("cannot fold a BatchNorm2d without running statistics")
    folded = copy.deepcopy(conv)
    w = conv.weight.detach().to(torch.float64)
    b = (
        conv.bias.detach().to(torch.float64)
        if conv.bias is not None
        else torch.zeros(conv.out_channels, dtype=torch.float64)
    )
    gamma = bn.weight.detach().to(torch.float64) if bn.affine else torch.ones_like(b)
    beta = bn.bias.detach().to(torch.float64) if bn.affine else torch.zeros_like(b)
    s = gamma / torch.sqrt(bn.running_var.detach().to(torch.float64) + bn.eps)
    folded.weight = nn.Parameter((w * s.reshape(-1, 1, 1, 1)).to(conv.weight.dtype))
    folded.bias = nn.Parameter(
        ((b - bn.running_mean.detach().to(torch.float64)) * s + beta).to(conv.weight.dtype)
    )
    return folded


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, list[str]]:
    """Fold every BatchNorm2d that directly follows a Conv2d in its parent's child order.

    Matches the ConvNormAct pattern (children ``conv`` then ``norm``) and plain Sequential
    (conv, bn) pairs. The BN is replaced by ``nn.Identity``. Returns the model and the
    paths of the folded convs. The model is put in eval mode (BN statistics are frozen).
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    folded: list[str] = []
    for parent_path, parent in list(model.named_modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fold_conv_bn(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                folded.append(f"{parent_path}.{conv_name}" if parent_path else conv_name)
    return model, folded
