"""AdaRound: learn, per weight, whether to round down or up, so a layer's output error is smallest.

Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020
(arXiv 2004.10568); the loss, rectified sigmoid and annealing follow the authors' public
re-implementation in BRECQ (github.com/yhhhli/BRECQ, ``quant/adaptive_rounding.py`` and
``quant/layer_recon.py``) [code]. Behind a policy switch (``weight_rounding: adaround``);
the default is round-to-nearest.

Per weighted layer (conv of any groups, or Linear), after the policy chose each filter's
scheme and scale:

- every weight w lies between two neighbouring codes of its filter's grid, lo <= w / s <= hi
  (uniform: consecutive integers in the clamp range; APoT: consecutive levels; outside the
  grid lo = hi = the end), and is written ``w_q = s * (lo + h(V) * (hi - lo))`` with the
  rectified sigmoid ``h(V) = clamp(sigmoid(V) * (ZETA - GAMMA) + GAMMA, 0, 1)``, V initialised so
  h = the fractional position (round-to-nearest at the start);
- V minimises ``sum_out (W_q x + b - y_fp)^2`` (mean over sampled output positions) plus, after a
  warm-up, ``lambda * sum (1 - |2 h - 1|^beta)`` with beta annealed linearly from 20 to 2, which
  drives every h to 0 or 1; the final code is hi where h >= 0.5, else lo. Adam on V.

[choice] Layer inputs and targets both come from the float model (the paper's "symmetric"
variant; BRECQ feeds the quantized model's inputs), captured once in one pass over the
calibration images at ``rows`` sampled output positions per layer (seeded), so every layer is
optimised independently. A Trio-ViT-shifted conv is optimised with its float compensated bias
held fixed; quantization recomputes that bias with the rounded weights afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn

from archsim.numerics.apot import apot_level_codes

ZETA, GAMMA = 1.1, -0.1  # stretch of the rectified sigmoid (paper, BRECQ)
BETA_RANGE = (20.0, 2.0)  # annealing of the rounding regulariser's exponent (BRECQ b_range)
WARMUP = 0.2  # fraction of iterations without the regulariser (BRECQ warmup)


@dataclass(frozen=True)
class AdaRoundSettings:
    """Policy parameters of AdaRound (all [choice]; BRECQ defaults where they exist)."""

    iterations: int = 300  # BRECQ: 20000 on a GPU; fewer, with a larger step, on a CPU
    rows: int = 1024  # sampled output positions per layer
    reg_lambda: float = 0.01  # BRECQ weight of the rounding loss
    lr: float = 0.01  # Adam step (BRECQ: 1e-3 over 20000 iterations)
    images: int = 16  # calibration images the samples are drawn from (at most)
    seed: int = 0


@dataclass
class LayerSamples:
    """Sampled inputs and float outputs of one layer: patches (R, groups, K/groups), target (R, out)."""

    patches: torch.Tensor
    target: torch.Tensor


def _sample_conv(module: nn.Conv2d, x: torch.Tensor, y: torch.Tensor, rows: int, gen: torch.Generator):
    """Input patches and outputs at ``rows`` random output positions of a conv."""
    n, _, ho, wo = y.shape
    pick = torch.randint(0, n * ho * wo, (rows,), generator=gen)
    b, rest = pick // (ho * wo), pick % (ho * wo)
    oy, ox = rest // wo, rest % wo
    (ph, pw), (sh, sw), (dh, dw) = module.padding, module.stride, module.dilation
    xp = nn.functional.pad(x, (pw, pw, ph, ph))
    kh, kw = module.kernel_size
    taps = [
        xp[b, :, oy * sh + i * dh, ox * sw + j * dw] for i in range(kh) for j in range(kw)
    ]  # each (R, Cin)
    patches = torch.stack(taps, dim=-1)  # (R, Cin, kh*kw): channel-major like the weight's flattening
    groups = module.groups
    patches = patches.reshape(rows, groups, -1)
    target = y[b, :, oy, ox]
    return patches, target


def _sample_linear(x: torch.Tensor, y: torch.Tensor, rows: int, gen: torch.Generator):
    xf, yf = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    pick = torch.randint(0, xf.shape[0], (rows,), generator=gen)
    return xf[pick].unsqueeze(1), yf[pick]


def capture_samples(
    gm: fx.GraphModule, module_paths: dict[str, str], batches: list[torch.Tensor], settings: AdaRoundSettings
) -> dict[str, LayerSamples]:
    """One float forward of (at most ``settings.images``) calibration images; sampled rows per layer."""
    images = torch.cat(batches)[: settings.images]
    gen = torch.Generator().manual_seed(settings.seed)
    found: dict[str, LayerSamples] = {}
    hooks = []
    for name, path in module_paths.items():

        def hook(m, args, out, name=name):
            x, y = args[0].detach().float(), out.detach().float()
            sample = (
                _sample_conv(m, x, y, settings.rows, gen)
                if isinstance(m, nn.Conv2d)
                else _sample_linear(x, y, settings.rows, gen)
            )
            found[name] = LayerSamples(*sample)

        hooks.append(gm.get_submodule(path).register_forward_hook(hook))
    try:
        with torch.no_grad():
            gm(images)
    finally:
        for h in hooks:
            h.remove()
    return found


def grid_neighbours(
    weight: torch.Tensor,
    scale: torch.Tensor,
    apot_mask: np.ndarray,
    bits: int,
    apot_bits: int | None,
    zero_point: np.ndarray | None = None,
    symmetric: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (lo, hi) around each weight / scale on its filter's grid, zero point removed.

    Uniform filters: floor(w / s) and floor(w / s) + 1 clipped to the code range ([-2^(b-1),
    2^(b-1) - 1], or [-zp, 2^b - 1 - zp] for asymmetric weights); APoT filters: the levels at and
    above w / s (outside the level range both are the end level).
    """
    out = weight.shape[0]
    t = weight.detach().double().reshape(out, -1) / scale.double().reshape(out, 1)
    zp = (
        torch.zeros(out, 1, dtype=torch.float64)
        if zero_point is None
        else torch.as_tensor(np.asarray(zero_point, dtype=np.float64)).reshape(out, 1)
    )
    lower = torch.full_like(zp, -(2.0 ** (bits - 1))) if symmetric else -zp
    upper = torch.full_like(zp, 2.0 ** (bits - 1) - 1) if symmetric else 2.0**bits - 1 - zp
    # as the paper: clip(floor(w / s) + h, lower, upper), h in {0, 1}
    lo = torch.minimum(torch.maximum(torch.floor(t), lower), upper)
    hi = torch.minimum(torch.maximum(torch.floor(t) + 1, lower), upper)
    if apot_mask.any():
        magnitudes = torch.tensor(apot_level_codes(apot_bits), dtype=torch.float64)
        levels = torch.unique(torch.cat([-magnitudes, magnitudes]))
        mask = torch.from_numpy(np.asarray(apot_mask))
        lo_a, hi_a = _neighbours(t[mask], levels)
        lo[mask], hi[mask] = lo_a, hi_a
    return lo.reshape(weight.shape), hi.reshape(weight.shape)


def _neighbours(t: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.searchsorted(levels, t.contiguous(), right=True) - 1  # -1 below the first level
    last = levels.numel() - 1
    return levels[index.clamp(0, last)], levels[(index + 1).clamp(0, last)]


def _rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _layer_output(patches: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    groups = patches.shape[1]
    w = weight.reshape(groups, weight.shape[0] // groups, -1)  # (g, out/g, K/g)
    y = torch.einsum("rgk,gok->rgo", patches, w).reshape(patches.shape[0], -1)
    return y if bias is None else y + bias


class _OutputError:
    """mean_rows sum_out (P w + b - y)^2 as a function of the weight.

    With fewer inputs per group than rows it uses the Gram form
    (w G w^T - 2 w C + const) / R, G = P^T P, C = P^T (y - b): the same quadratic, exact up to
    float rounding, at a cost independent of the number of rows (a depthwise layer's
    25 x 25 Gram matrices instead of 1024 rows).
    """

    def __init__(self, samples: LayerSamples, bias: torch.Tensor | None, out_channels: int):
        p, y = samples.patches, samples.target
        self.rows, self.groups = p.shape[0], p.shape[1]
        self.per_group = out_channels // self.groups
        residual = y if bias is None else y - bias
        self.gram_form = p.shape[2] < self.rows
        if self.gram_form:
            r = residual.reshape(self.rows, self.groups, self.per_group)
            self.gram = torch.einsum("rgk,rgl->gkl", p, p)  # (g, K, K)
            self.cross = torch.einsum("rgk,rgo->gok", p, r)  # (g, out/g, K)
            self.const = float((r.double() ** 2).sum())
        else:
            self.patches, self.residual = p, residual

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        w = weight.reshape(self.groups, self.per_group, -1)
        if self.gram_form:
            quadratic = (torch.matmul(w, self.gram) * w).sum()
            return (quadratic - 2 * (w * self.cross).sum() + self.const) / self.rows
        error = torch.einsum("rgk,gok->rgo", self.patches, w).reshape(self.rows, -1) - self.residual
        return (error**2).sum() / self.rows


def adaround_layer(
    weight: torch.Tensor,
    scale: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    bias: torch.Tensor | None,
    samples: LayerSamples,
    settings: AdaRoundSettings,
    nearest: torch.Tensor,
) -> tuple[torch.Tensor, dict]:
    """Optimised codes (the weight's shape) and the sampled output MSE with ``nearest`` codes
    and with them."""
    s = scale.float().reshape((-1,) + (1,) * (weight.dim() - 1))
    w = weight.detach().float()
    lo_f, step = lo.float(), (hi - lo).float()
    frac = torch.where(step > 0, (w / s - lo_f) / torch.where(step > 0, step, 1.0), torch.zeros_like(w))
    frac = frac.clamp(0.01, 0.99)  # keeps V finite (an exact grid point starts just above its lower code)
    v = nn.Parameter(-torch.log((ZETA - GAMMA) / (frac - GAMMA) - 1))
    b = None if bias is None else bias.detach().float()
    target = samples.target

    def mse(codes: torch.Tensor) -> float:  # always on the rows themselves (the report's figure)
        with torch.no_grad():
            return float(((_layer_output(samples.patches, codes * s, b) - target) ** 2).sum(1).mean())

    before = mse(nearest.float())
    with torch.enable_grad():  # callers quantize under no_grad
        _optimise(v, lo_f, step, s, _OutputError(samples, b, weight.shape[0]), settings)
    with torch.no_grad():
        up = _rectified_sigmoid(v) >= 0.5
        codes = torch.where(up, hi, lo)
    after = mse(codes.float())
    return codes, {"mse_nearest": before, "mse_adaround": after, "rows": int(target.shape[0])}


def _optimise(v: nn.Parameter, lo_f, step, s, output_error: _OutputError, settings: AdaRoundSettings) -> None:
    optimiser = torch.optim.Adam([v], lr=settings.lr)
    warm = int(WARMUP * settings.iterations)
    for it in range(settings.iterations):
        h = _rectified_sigmoid(v)
        w_q = (lo_f + h * step) * s
        loss = output_error(w_q)
        if it >= warm:
            progress = (it - warm) / max(1, settings.iterations - warm)
            beta = BETA_RANGE[1] + (BETA_RANGE[0] - BETA_RANGE[1]) * (1 - progress)
            loss = loss + settings.reg_lambda * (1 - (2 * h - 1).abs().pow(beta)).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
