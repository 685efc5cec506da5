"""EfficientViT B0-B3 (Cai et al., ICCV 2023) for archsim: timm-compatible and torch.fx-traceable.

Parameter and buffer names and shapes are exactly those of timm's ``efficientvit_b0..b3``
(``timm/models/efficientvit_mit.py``), so a timm state_dict loads strictly. Examples::

    stem.in_conv.conv.weight                                   3x3 s2 conv (dense)
    stem.res0.main.depth_conv.conv.weight / .norm.*            DSConv depthwise 3x3
    stem.res0.main.point_conv.conv.weight / .norm.*            DSConv pointwise
    stages.0.blocks.0.main.inverted_conv.conv.weight           MBConv expand 1x1
    stages.0.blocks.0.main.depth_conv.conv.weight              MBConv depthwise 3x3
    stages.0.blocks.0.main.point_conv.conv.weight              MBConv project 1x1
    stages.2.blocks.0.main.inverted_conv.conv.bias             stride-2 MBConv of a ViT stage: bias, no BN
    stages.2.blocks.1.context_module.main.qkv.conv.weight      LiteMLA qkv 1x1 (C -> 3C)
    stages.2.blocks.1.context_module.main.aggreg.0.0.weight    multi-scale aggregation: depthwise 5x5
    stages.2.blocks.1.context_module.main.aggreg.0.1.weight    multi-scale aggregation: grouped 1x1
    stages.2.blocks.1.context_module.main.proj.conv.weight     LiteMLA projection 1x1 (2C -> C) + BN
    stages.2.blocks.1.local_module.main.inverted_conv.conv.*   MBConv of the EfficientViT block
    head.in_conv.conv.weight / .norm.*                         head 1x1 conv + BN + Hardswish
    head.classifier.0.weight                                   Linear (no bias)
    head.classifier.1.weight / .bias                           LayerNorm
    head.classifier.4.weight / .bias                           Linear -> num_classes

Differences from timm, none of which touches the state_dict:

* LiteMLA.forward is plain float32 math with no autocast/device branch (timm's forward
  branches on ``v.device.type`` under ``torch.autocast`` and timm registers LiteMLA as
  not-traceable). The math is identical: ReLU on q and k, v padded with a column of ones,
  ``kv = k^T [v|1]``, ``out = q kv``, first ``dim`` columns divided by the last (+ eps).
  It runs in the input's dtype (timm casts to float32 for the attention).
* No ``nn.Dropout`` inside ConvNormAct and no ``pre_norm`` Identity in ResidualBlock (timm
  has both, with p=0 / Identity in every B variant). ``head.classifier.3`` (timm's
  Dropout) is an ``nn.Identity`` placeholder so the final Linear keeps the index 4.
  The head's global pool is ``nn.AdaptiveAvgPool2d(1)`` + flatten (timm:
  SelectAdaptivePool2d('avg', flatten=True), same math).
* Activations are not in-place (timm: ``inplace=True``), so hooks and fx see clean values.

Module layout for graph passes: every conv that timm wraps is a ``ConvNormAct`` with
``.conv`` (nn.Conv2d), ``.norm`` (nn.BatchNorm2d or nn.Identity), ``.act`` (nn.Hardswish
or nn.Identity), so BN folding and activation fusion are local to one module. The two
aggregation convs of LiteMLA are bare nn.Conv2d (as in timm). ``ResidualBlock.shortcut``
is ``nn.Identity`` (residual) or ``None`` (the stride-2 first block of each stage).

Resolution: the network is fully convolutional with a global pool; LiteMLA reads H and W
from the input, so any input whose side is a multiple of 32 works (224, 256, 288, ...).

``build_model`` without a checkpoint gives a deterministic, seeded stand-in for a trained
network (see its docstring for the procedure and why BN statistics are re-estimated).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import BN_STATS_SEED_OFFSET, synthetic_batches
from .zoo import MODEL_CONFIGS, MODEL_NAMES, EfficientViTConfig, canonical_model_name, get_config

__all__ = [
    "MODEL_NAMES",
    "MODEL_CONFIGS",
    "CheckpointError",
    "ConvNormAct",
    "DSConv",
    "MBConv",
    "LiteMLA",
    "ResidualBlock",
    "EfficientVitBlock",
    "Stem",
    "EfficientVitStage",
    "ClassifierHead",
    "EfficientVit",
    "create_model",
    "init_weights",
    "reestimate_bn_stats",
    "build_model",
    "load_checkpoint",
    "mit_to_timm_key",
    "count_parameters",
]

# timm LiteMLA default (mit-han-lab's own code uses 1e-15; timm's converted weights go with 1e-5).
LITEMLA_EPS = 1e-5
# mit-han-lab init_modules default: nn.init.trunc_normal_(std=0.02) with the default
# truncation a=-2, b=2 (absolute values, i.e. effectively untruncated at std 0.02).
INIT_STD = 0.02
# BN-statistics re-estimation for uncheckpointed models: batches x batch size, N(0,1) inputs.
BN_REESTIMATE_BATCHES = 1
BN_REESTIMATE_BATCH_SIZE = 8


class CheckpointError(ValueError):
    """A checkpoint file could not be read or does not match the model's state_dict.

    A ValueError, so the CLI reports it as a user error (one message, no traceback).
    """


# --------------------------------------------------------------------------------------
# Building blocks (names and nesting follow timm so state_dict keys match)
# --------------------------------------------------------------------------------------


class ConvNormAct(nn.Module):
    """Conv2d -> BatchNorm2d (or Identity) -> Hardswish (or Identity).

    Padding is ``((stride - 1) + (kernel_size - 1)) // 2`` as timm's create_conv2d gives for
    odd kernels (k // 2 for every kernel used here).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        norm: bool = True,
        act: bool = True,
    ):
        super().__init__()
        padding = ((stride - 1) + (kernel_size - 1)) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias
        )
        self.norm = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.act = nn.Hardswish() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class DSConv(nn.Module):
    """Depthwise-separable conv of the stem: DW 3x3 + BN + Hardswish, PW 1x1 + BN."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.depth_conv = ConvNormAct(in_channels, in_channels, kernel_size, stride, groups=in_channels)
        self.point_conv = ConvNormAct(in_channels, out_channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class MBConv(nn.Module):
    """Inverted residual: PW expand (+Hardswish), DW kxk (+Hardswish), PW project + BN.

    ``fewer_norm`` (stride-2 block of a ViT stage and the EfficientViT block's local module):
    the expand and depthwise convs carry a bias and no BN; only the projection has BN.
    Otherwise all three have BN and no bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        expand_ratio: float = 4,
        fewer_norm: bool = False,
    ):
        super().__init__()
        mid = round(in_channels * expand_ratio)
        self.inverted_conv = ConvNormAct(in_channels, mid, 1, bias=fewer_norm, norm=not fewer_norm)
        self.depth_conv = ConvNormAct(
            mid, mid, kernel_size, stride, groups=mid, bias=fewer_norm, norm=not fewer_norm
        )
        self.point_conv = ConvNormAct(mid, out_channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class LiteMLA(nn.Module):
    """Lightweight multi-scale linear attention (ReLU kernel), as timm's LiteMLA with scales=(5,).

    qkv: 1x1 conv C -> 3*heads*dim (no bias, no norm); aggreg[0]: depthwise 5x5 on the 3*heads*dim
    channels then a 1x1 conv with groups = 3*heads (both bare Conv2d, no bias); the qkv map and
    its aggregated copy are concatenated (2*heads heads); proj: 1x1 conv 2*heads*dim -> C + BN.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dim: int = 8,
        heads_ratio: float = 1.0,
        scales: tuple[int, ...] = (5,),
        eps: float = LITEMLA_EPS,
    ):
        super().__init__()
        heads = int(in_channels // dim * heads_ratio)
        total_dim = heads * dim
        self.dim = dim
        self.heads = heads
        self.eps = eps
        self.qkv = ConvNormAct(in_channels, 3 * total_dim, 1, norm=False, act=False)
        self.aggreg = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(
                        3 * total_dim,
                        3 * total_dim,
                        scale,
                        padding=scale // 2,
                        groups=3 * total_dim,
                        bias=False,
                    ),
                    nn.Conv2d(3 * total_dim, 3 * total_dim, 1, groups=3 * heads, bias=False),
                )
                for scale in scales
            ]
        )
        self.kernel_func = nn.ReLU()
        self.proj = ConvNormAct(total_dim * (1 + len(scales)), out_channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Shapes are read as values (fx records them as size() nodes); no branch depends on them.
        batch = x.size(0)
        height = x.size(2)
        width = x.size(3)
        dim = self.dim

        qkv = self.qkv(x)
        multi_scale = [qkv]
        for op in self.aggreg:
            multi_scale.append(op(qkv))
        qkv = torch.cat(multi_scale, dim=1)
        # (B, heads', 3*dim, N) -> (B, heads', N, 3*dim); channel order per head is [q | k | v].
        qkv = qkv.reshape(batch, -1, 3 * dim, height * width).transpose(-1, -2)
        q = qkv[..., 0:dim]
        k = qkv[..., dim : 2 * dim]
        v = qkv[..., 2 * dim : 3 * dim]

        q = self.kernel_func(q)
        k = self.kernel_func(k)
        v = F.pad(v, (0, 1), mode="constant", value=1.0)  # (B, h, N, dim + 1), last column ones

        kv = torch.matmul(k.transpose(-1, -2), v)  # (B, h, dim, dim + 1)
        out = torch.matmul(q, kv)  # (B, h, N, dim + 1)
        out = out[..., :-1] / (out[..., -1:] + self.eps)  # (B, h, N, dim)

        out = out.transpose(-1, -2).reshape(batch, -1, height, width)
        return self.proj(out)


class ResidualBlock(nn.Module):
    """``main(x) + shortcut(x)``, or ``main(x)`` alone when ``shortcut`` is None."""

    def __init__(self, main: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.main(x)
        if self.shortcut is not None:  # a module attribute, fixed at construction: fx-safe
            res = res + self.shortcut(x)
        return res


class EfficientVitBlock(nn.Module):
    """context_module = LiteMLA + residual, then local_module = MBConv(fewer_norm) + residual."""

    def __init__(self, in_channels: int, head_dim: int, expand_ratio: float = 4, heads_ratio: float = 1.0):
        super().__init__()
        self.context_module = ResidualBlock(
            LiteMLA(in_channels, in_channels, dim=head_dim, heads_ratio=heads_ratio), nn.Identity()
        )
        self.local_module = ResidualBlock(
            MBConv(in_channels, in_channels, expand_ratio=expand_ratio, fewer_norm=True), nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_module(self.context_module(x))


class Stem(nn.Sequential):
    """``in_conv`` (3x3 s2 conv + BN + Hardswish) then ``res0..`` residual DSConv blocks."""

    def __init__(self, in_chs: int, out_chs: int, depth: int):
        super().__init__()
        self.stride = 2
        self.add_module("in_conv", ConvNormAct(in_chs, out_chs, kernel_size=3, stride=2))
        for i in range(depth):
            self.add_module(f"res{i}", ResidualBlock(DSConv(out_chs, out_chs), nn.Identity()))


class EfficientVitStage(nn.Module):
    """``blocks.0``: stride-2 MBConv, no residual. Then, for a ViT stage, ``depth`` EfficientViT
    blocks; otherwise ``depth - 1`` residual MBConvs (timm's counting)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        depth: int,
        expand_ratio: float,
        head_dim: int,
        vit_stage: bool = False,
    ):
        super().__init__()
        blocks: list[nn.Module] = [
            ResidualBlock(
                MBConv(in_chs, out_chs, stride=2, expand_ratio=expand_ratio, fewer_norm=vit_stage), None
            )
        ]
        if vit_stage:
            blocks += [EfficientVitBlock(out_chs, head_dim, expand_ratio) for _ in range(depth)]
        else:
            blocks += [
                ResidualBlock(MBConv(out_chs, out_chs, expand_ratio=expand_ratio), nn.Identity())
                for _ in range(1, depth)
            ]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class ClassifierHead(nn.Module):
    """1x1 conv + BN + Hardswish, global average pool, Linear + LayerNorm + Hardswish, Linear."""

    def __init__(self, in_channels: int, widths: tuple[int, int], num_classes: int = 1000):
        super().__init__()
        self.in_conv = ConvNormAct(in_channels, widths[0], 1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(widths[0], widths[1], bias=False),
            nn.LayerNorm(widths[1], eps=1e-5),
            nn.Hardswish(),
            nn.Identity(),  # timm: Dropout(p=0); kept so the last Linear is classifier.4
            nn.Linear(widths[1], num_classes, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        x = torch.flatten(self.global_pool(x), 1)
        return self.classifier(x)


class EfficientVit(nn.Module):
    """EfficientViT-B classification network: ``stem``, ``stages.0..3``, ``head``."""

    def __init__(self, config: EfficientViTConfig, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        self.config = config
        self.num_classes = num_classes
        widths, depths = config.widths, config.depths
        self.stem = Stem(in_chans, widths[0], depths[0])
        stages = []
        in_ch = widths[0]
        for i, (w, d) in enumerate(zip(widths[1:], depths[1:])):
            stages.append(
                EfficientVitStage(in_ch, w, d, config.expand_ratio, config.head_dim, vit_stage=i >= 2)
            )
            in_ch = w
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(in_ch, config.head_widths, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


# --------------------------------------------------------------------------------------
# Construction, initialisation, checkpoints
# --------------------------------------------------------------------------------------


def create_model(name: str, num_classes: int = 1000, *, seed: int | None = None) -> EfficientVit:
    """The bare architecture in training mode, without BN-statistics re-estimation.

    ``seed=None``: torch's default initialisation; the global torch RNG is saved and restored
    around construction, so building a model never perturbs the caller's random stream.
    ``seed=int``: built on the meta device and materialised once by :func:`init_weights`
    (faster for B2/B3: no default init to overwrite); BN statistics are the init values
    (mean 0, var 1). Most callers want :func:`build_model`.
    """
    config = get_config(name)
    if seed is None:
        with torch.random.fork_rng(devices=[]):
            return EfficientVit(config, num_classes=num_classes)
    with torch.device("meta"):
        model = EfficientVit(config, num_classes=num_classes)
    model.to_empty(device="cpu")
    init_weights(model, seed)  # writes every parameter and every BN buffer
    return model


def _unnormalised_convs(model: nn.Module) -> set[int]:
    """ids of the Conv2d modules whose output reaches no BatchNorm before being used: the convs of
    ConvNormAct with norm=Identity (LiteMLA qkv, the biased expand/depthwise convs of fewer-norm
    MBConvs) and LiteMLA's two aggregation convs."""
    ids: set[int] = set()
    for m in model.modules():
        if isinstance(m, ConvNormAct) and isinstance(m.norm, nn.Identity):
            ids.add(id(m.conv))
        elif isinstance(m, LiteMLA):
            ids.update(id(c) for seq in m.aggreg for c in seq if isinstance(c, nn.Conv2d))
    return ids


def init_weights(
    model: nn.Module, seed: int, std: float = INIT_STD, *, fan_in_unnormalised: bool = True
) -> None:
    """mit-han-lab ``init_modules(model, "trunc_normal")`` with a private, seeded generator,
    plus one documented deviation for convs that have no norm after them.

    As in efficientvit/apps/utils/init.py of mit-han-lab/efficientvit: Conv2d and Linear
    weights ~ ``nn.init.trunc_normal_(std=0.02)`` (default bounds a=-2, b=2), their biases 0;
    BatchNorm and LayerNorm weight 1, bias 0.

    Deviation (``fan_in_unnormalised=True``, the default): a conv with no BatchNorm after it
    (see :func:`_unnormalised_convs`) draws its weights with the variance-preserving
    ``std = 1/sqrt(fan_in)`` instead. With std 0.02 such a conv scales its input by about
    0.02*sqrt(fan_in), and nothing renormalises it: LiteMLA's aggregated branch (a depthwise
    5x5 then a grouped 1x1, both unnormalised) comes out ~130x smaller than the qkv branch it is
    concatenated with, so one per-tensor 8-bit scale over q/k/v would round almost all of the
    aggregated half to zero, an artefact no trained network has. A training run learns
    comparable scales; the fan-in rule gives them without inventing anything data-dependent.
    Pass ``fan_in_unnormalised=False`` for the pure init_modules draw.

    Modules are visited in ``model.modules()`` order, so the result depends only on the
    architecture and ``seed``.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    fan_in_ids = _unnormalised_convs(model) if fan_in_unnormalised else set()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w_std = 1.0 / math.sqrt(m.weight[0].numel()) if id(m) in fan_in_ids else std
                # default bounds a=-2, b=2 as init_modules: >= 6 sigma even for the largest fan-in std (1/3)
                nn.init.trunc_normal_(m.weight, std=w_std, generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
                m.weight.fill_(1.0)
                m.bias.zero_()
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()


def reestimate_bn_stats(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Replace every BatchNorm's running mean/var by their average over ``batches``.

    Each BN's statistics are reset and its momentum set to None (cumulative moving average);
    the model runs the batches in training mode under ``torch.no_grad()`` (only BN buffers
    change; no parameter does), then the momenta are restored and the model is put in eval
    mode. ``num_batches_tracked`` ends equal to ``len(batches)``.
    """
    if not batches:
        raise ValueError("reestimate_bn_stats needs at least one batch")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()


_MIT_PATTERNS = (
    # mit-han-lab/efficientvit EfficientViTCls names (efficientvit/models/efficientvit/{backbone,cls}.py,
    # efficientvit/models/nn/ops.py: OpSequential keeps its ops in .op_list, LinearLayer has .linear/.norm)
    (re.compile(r"^backbone\.input_stem\.op_list\.0\."), lambda m: "stem.in_conv."),
    (re.compile(r"^backbone\.input_stem\.op_list\.(\d+)\."), lambda m: f"stem.res{int(m.group(1)) - 1}."),
    (
        re.compile(r"^backbone\.stages\.(\d+)\.op_list\.(\d+)\."),
        lambda m: f"stages.{m.group(1)}.blocks.{m.group(2)}.",
    ),
    (re.compile(r"^head\.op_list\.0\."), lambda m: "head.in_conv."),
    (re.compile(r"^head\.op_list\.2\.linear\."), lambda m: "head.classifier.0."),
    (re.compile(r"^head\.op_list\.2\.norm\."), lambda m: "head.classifier.1."),
    (re.compile(r"^head\.op_list\.3\.linear\."), lambda m: "head.classifier.4."),
)


def mit_to_timm_key(key: str) -> str:
    """Rename one mit-han-lab EfficientViTCls state_dict key to the timm/archsim name (others unchanged).

    The module trees are the same; only containers are named differently
    (``backbone.input_stem.op_list.0`` = ``stem.in_conv``, ``...op_list.i`` = ``stem.res{i-1}``,
    ``backbone.stages.s.op_list.j`` = ``stages.s.blocks.j``, ``head.op_list.0/2/3`` =
    ``head.in_conv`` / ``head.classifier.0,1`` / ``head.classifier.4``).
    """
    for pattern, repl in _MIT_PATTERNS:
        new, n = pattern.subn(repl, key, count=1)
        if n:
            return new
    return key


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, non-tensor pickle payload, ...
        raise CheckpointError(
            f"checkpoint {path.name!r} ({path}): cannot be read by torch.load(weights_only=True): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(
            f"checkpoint {path.name!r} ({path}): expected a state_dict (a mapping of names to tensors), "
            f"or a dict holding one under 'state_dict' or 'model'; got {type(obj).__name__}"
        )
    state = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(
                f"checkpoint {path.name!r} ({path}): entry {k!r} is a {type(v).__name__}, not a tensor"
            )
        state[k[len("module.") :] if k.startswith("module.") else k] = v
    if any(k.startswith("backbone.") for k in state):  # a mit-han-lab EfficientViTCls checkpoint
        state = {mit_to_timm_key(k): v for k, v in state.items()}
    return state


def _key_list(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_checkpoint(model: nn.Module, checkpoint: str | Path) -> None:
    """Load a checkpoint file strictly into ``model``.

    Reads with ``torch.load(path, map_location="cpu", weights_only=True)`` (no arbitrary
    pickle code runs). Accepts a raw state_dict or a dict holding one under "state_dict" or
    "model"; strips a "module." (DataParallel) prefix. timm names load as they are;
    mit-han-lab names (keys under ``backbone.``) are renamed by :func:`mit_to_timm_key`
    (note: mit-han-lab's LiteMLA uses eps 1e-15, this model timm's 1e-5). Every model key must be present with
    the same shape and no extra key may exist, except that BN ``num_batches_tracked``
    counters (unused in eval) may be absent. Any failure raises :class:`CheckpointError`
    naming the file and the first offending keys.
    """
    path = Path(checkpoint)
    state = _read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [
            f"checkpoint {path.name!r} ({path}) does not match {type(model).__name__}"
            + (f" '{model.config.name}'" if isinstance(model, EfficientVit) else "")
            + ":"
        ]
        if missing:
            parts.append(f"  {len(missing)} missing key(s): {_key_list(missing)}")
        if unexpected:
            parts.append(f"  {len(unexpected)} unexpected key(s): {_key_list(unexpected)}")
        if mismatched:
            parts.append(f"  {len(mismatched)} shape mismatch(es): {_key_list(mismatched, 4)}")
        raise CheckpointError("\n".join(parts))
    for k, v in own.items():  # keep the model's own counter where the file has none
        if k not in state:
            state[k] = v
    model.load_state_dict(state, strict=True)


def build_model(
    name: str,
    *,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    num_classes: int = 1000,
    resolution: int = 224,
) -> EfficientVit:
    """An EfficientViT-B model in eval mode, float32, on the CPU.

    name: "efficientvit_b0".."efficientvit_b3" (or "b0".."b3").

    With ``checkpoint``: the file is loaded strictly (see :func:`load_checkpoint`); ``seed``
    and ``resolution`` are unused.

    Without a checkpoint, a deterministic stand-in for a trained network:

    1. weights drawn as mit-han-lab's ``init_modules`` does (trunc_normal std 0.02 for
       Conv2d/Linear weights, zero biases), except that convs with no BatchNorm after them use
       the variance-preserving std 1/sqrt(fan_in) (see :func:`init_weights` for why), from a
       generator seeded with ``seed``;
    2. BN affine parameters left at gamma = 1, beta = 0 (init_modules' values; no
       perturbation, so nothing beyond the published init is invented);
    3. BN running statistics re-estimated (:func:`reestimate_bn_stats`) on
       ``BN_REESTIMATE_BATCHES`` x ``BN_REESTIMATE_BATCH_SIZE`` synthetic N(0, 1) images of
       side ``resolution``, seeded with ``seed + BN_STATS_SEED_OFFSET``.

    Why step 3: with init-time statistics (mean 0, var 1) and std-0.02 weights, each conv
    scales its input by roughly 0.02*sqrt(fan_in) and activations shrink or blow up
    geometrically with depth, so every quantization range and error downstream would be
    meaningless. With re-estimated statistics every BN output is ~N(0, 1) per channel on
    ImageNet-normalised-like inputs, as in a trained network, and the fan-in rule of step 1
    keeps the unnormalised convs (LiteMLA qkv and aggregation, the biased expand/depthwise
    convs of ViT-stage MBConvs) at their input's scale, so tensors that share one
    quantization scale (the concatenated qkv/aggregated map) hold comparable magnitudes.

    The same (name, seed, num_classes, resolution) gives a bit-identical state_dict; the
    global torch RNG is not touched.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 32 or resolution % 32:
        raise ValueError(f"resolution must be a positive multiple of 32, got {resolution!r}")
    name = canonical_model_name(name)
    if checkpoint is not None:
        model = create_model(name, num_classes=num_classes)
        load_checkpoint(model, checkpoint)
        return model.eval()
    model = create_model(name, num_classes=num_classes, seed=seed)
    batches = synthetic_batches(
        BN_REESTIMATE_BATCHES * BN_REESTIMATE_BATCH_SIZE,
        BN_REESTIMATE_BATCH_SIZE,
        resolution,
        seed + BN_STATS_SEED_OFFSET,
    )
    reestimate_bn_stats(model, batches)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (not buffers)."""
    return sum(p.numel() for p in model.parameters())
