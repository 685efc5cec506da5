"""Calibration and test inputs.

Only synthetic data exists for now: seeded standard-normal tensors. An ImageNet image after
the usual preprocessing (scale to [0, 1], subtract the per-channel mean (0.485, 0.456,
0.406), divide by the std (0.229, 0.224, 0.225)) has roughly zero mean and unit variance
per channel, so N(0, 1) noise exercises the model at the input scale it was trained for.
It has none of natural images' spatial correlation: activation statistics and therefore
quantization ranges are those of noise, not of photographs. Numbers computed on it
characterise the hardware and the quantizer's arithmetic, not ImageNet accuracy.

Extension point: :func:`calibration_batches` dispatches on the workload's
``calibration.source``. "synthetic" is implemented; a path (an ImageFolder tree or a
``.npy`` array) is accepted by the workload schema and is where a real-data loader plugs in.
"""

from __future__ import annotations

from pathlib import Path

import torch

SYNTHETIC = "synthetic"

# Keep the streams of different consumers apart: the BN-statistics re-estimation of an
# uncheckpointed model must not see the very tensors a quantizer calibrates on.
BN_STATS_SEED_OFFSET = 1_000_003


def synthetic_batches(n_samples: int, batch_size: int, resolution: int, seed: int) -> list[torch.Tensor]:
    """``n_samples`` images of shape (3, resolution, resolution) drawn from N(0, 1), float32.

    Returned as a list of (b, 3, R, R) batches of ``batch_size`` (the last one smaller when
    ``batch_size`` does not divide ``n_samples``). A private ``torch.Generator`` seeded with
    ``seed`` draws them in order, so the same arguments give bit-identical tensors and the
    global torch RNG is left untouched. The first k samples do not depend on ``batch_size``.
    """
    for label, v in (("n_samples", n_samples), ("batch_size", batch_size), ("resolution", resolution)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"synthetic_batches: {label} must be an integer >= 1, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"synthetic_batches: seed must be an integer, got {seed!r}")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    batches = []
    remaining = n_samples
    while remaining > 0:
        b = min(batch_size, remaining)
        batches.append(torch.randn((b, 3, resolution, resolution), generator=gen, dtype=torch.float32))
        remaining -= b
    return batches


def calibration_batches(source: str | Path, n_samples: int, batch_size: int, resolution: int, seed: int
                        ) -> list[torch.Tensor]:
    """Calibration inputs for a workload's ``calibration`` section.

    ``source == "synthetic"`` -> :func:`synthetic_batches`. Any other value is a path to real
    data, which is not supported yet (NotImplementedError names the path).
    """
    if str(source) == SYNTHETIC:
        return synthetic_batches(n_samples, batch_size, resolution, seed)
    raise NotImplementedError(
        f"calibration source {str(source)!r}: only 'synthetic' is implemented so far "
        "(ImageFolder / .npy loading is a planned extension of archsim.workload.data)"
    )
