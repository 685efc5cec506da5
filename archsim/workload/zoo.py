"""The EfficientViT B-series model table (no torch import: config validation uses it).

Architecture hyper-parameters are those of timm's ``efficientvit_b0..b3`` registrations
(``timm/models/efficientvit_mit.py``, the ``model_args`` of each ``@register_model``
function), which are the ones of the official mit-han-lab code. Published figures
(parameters, GMACs, top-1) are from the EfficientViT paper (Cai et al., ICCV 2023) and
the mit-han-lab model zoo; they are metadata for tests and reports, never used to build.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EfficientViTConfig:
    """One EfficientViT-B variant.

    widths: channels of [stem, stage1, stage2, stage3, stage4].
    depths: [stem DSConv blocks, stage1..stage4 depth]. For stages 1-2 the depth counts
        all MBConv blocks including the stride-2 one; for stages 3-4 it counts the
        EfficientViT blocks that follow the stride-2 MBConv (timm/mit-han-lab convention).
    head_dim: channels per linear-attention head (heads = width // head_dim).
    head_widths: (1x1 conv width, hidden Linear width) of the classifier head.
    expand_ratio: MBConv expansion (4 in every B variant).
    published_params_m: published parameter count in millions (1000 classes).
    published_gmacs_224: published GMACs at 224x224.
    """

    name: str
    widths: tuple[int, int, int, int, int]
    depths: tuple[int, int, int, int, int]
    head_dim: int
    head_widths: tuple[int, int]
    expand_ratio: int
    published_params_m: float
    published_gmacs_224: float


_C = EfficientViTConfig
MODEL_CONFIGS: dict[str, EfficientViTConfig] = {
    c.name: c
    for c in (
        #  name              widths                    depths           hdim head widths  exp  Mparam GMAC
        _C("efficientvit_b0", (8, 16, 32, 64, 128), (1, 2, 2, 2, 2), 16, (1024, 1280), 4, 3.4, 0.10),
        _C("efficientvit_b1", (16, 32, 64, 128, 256), (1, 2, 3, 3, 4), 16, (1536, 1600), 4, 9.1, 0.52),
        _C("efficientvit_b2", (24, 48, 96, 192, 384), (1, 3, 4, 4, 6), 32, (2304, 2560), 4, 24.0, 1.6),
        _C("efficientvit_b3", (32, 64, 128, 256, 512), (1, 4, 6, 6, 9), 32, (2304, 2560), 4, 49.0, 4.0),
    )
}
del _C

MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CONFIGS)


def canonical_model_name(name: str) -> str:
    """Map "b1", "B1", "efficientvit-b1", "EfficientViT_B1", "efficientvit_b1" to "efficientvit_b1".

    Raises KeyError (with the allowed names) for anything else.
    """
    if not isinstance(name, str):
        raise KeyError(f"model name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key.startswith("efficientvit_"):
        key = key[len("efficientvit_") :]
    full = f"efficientvit_{key}"
    if full not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)} (or b0..b3)")
    return full


def get_config(name: str) -> EfficientViTConfig:
    """The :class:`EfficientViTConfig` of a model name (aliases as in :func:`canonical_model_name`)."""
    return MODEL_CONFIGS[canonical_model_name(name)]
