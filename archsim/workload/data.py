"""Calibration and evaluation inputs: synthetic noise, an image folder, or a tensor file.

``calibration_batches(source, ...)`` dispatches on the workload's ``calibration.source``:

* ``"synthetic"``: seeded standard-normal tensors. An ImageNet image after the usual
  preprocessing (scale to [0, 1], subtract the per-channel mean (0.485, 0.456, 0.406),
  divide by the std (0.229, 0.224, 0.225)) has roughly zero mean and unit variance per
  channel, so N(0, 1) noise exercises the model at the input scale it was trained for. It
  has none of natural images' spatial correlation: activation statistics and therefore
  quantization ranges are those of noise, not of photographs.
* a directory: an ImageFolder tree of .jpg/.jpeg/.png/.bmp/.webp files, read and
  preprocessed as the EfficientViT authors evaluate (see :mod:`archsim.workload.images`).
* a ``.npy`` or ``.pt`` file: already preprocessed images, float, shape (N, 3, R, R) with R
  the workload's resolution (a ``.pt`` may also hold a dict with the tensor under "images"
  or "x"; it is read with ``torch.load(weights_only=True)``, so no pickled code runs).

When the source holds more than ``n_samples`` images, a seeded choice of ``n_samples`` is
taken and kept in the source's order (so the same seed gives the same images in the same
order); when it holds fewer, all are used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .images import index_image_folder, load_images

SYNTHETIC = "synthetic"
TENSOR_SUFFIXES = (".npy", ".pt", ".pth")
TENSOR_DICT_KEYS = ("images", "x")

# Keep the streams of different consumers apart: the BN-statistics re-estimation of an
# uncheckpointed model must not see the very tensors a quantizer calibrates on.
BN_STATS_SEED_OFFSET = 1_000_003


def _check_counts(where: str, n_samples: int, batch_size: int, resolution: int) -> None:
    for label, v in (("n_samples", n_samples), ("batch_size", batch_size), ("resolution", resolution)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{where}: {label} must be an integer >= 1, got {v!r}")


def split_batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """(N, ...) -> list of (b, ...) chunks of ``batch_size`` (the last one smaller)."""
    return [x[i : i + batch_size] for i in range(0, x.shape[0], batch_size)]


def choose_indices(total: int, n_samples: int, seed: int) -> np.ndarray:
    """Indices of a seeded choice of ``min(n_samples, total)`` items without replacement, ascending."""
    if total <= n_samples:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=n_samples, replace=False))


def synthetic_batches(n_samples: int, batch_size: int, resolution: int, seed: int) -> list[torch.Tensor]:
    """``n_samples`` images of shape (3, resolution, resolution) drawn from N(0, 1), float32.

    Returned as a list of (b, 3, R, R) batches of ``batch_size`` (the last one smaller when
    ``batch_size`` does not divide ``n_samples``). A private ``torch.Generator`` seeded with
    ``seed`` draws them in order, so the same arguments give bit-identical tensors and the
    global torch RNG is left untouched. The first k samples do not depend on ``batch_size``.
    """
    _check_counts("synthetic_batches", n_samples, batch_size, resolution)
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


def _read_tensor_file(path: Path) -> torch.Tensor:
    """The (N, 3, H, W) float tensor stored in a .npy / .pt file (not yet checked against a resolution)."""
    if path.suffix == ".npy":
        try:
            obj = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(
                f"tensor file {str(path)!r}: cannot be read by numpy.load(allow_pickle=False): {exc}"
            ) from exc
        if not np.issubdtype(obj.dtype, np.floating):
            raise ValueError(
                f"tensor file {str(path)!r}: dtype {obj.dtype} is not allowed (allowed: a float "
                "array of preprocessed images)"
            )
        x = torch.from_numpy(np.ascontiguousarray(obj))
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt file, or a pickle with objects weights_only refuses
            raise ValueError(
                f"tensor file {str(path)!r}: cannot be read by torch.load(weights_only=True): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        if isinstance(obj, dict):
            key = next((k for k in TENSOR_DICT_KEYS if k in obj), None)
            if key is None:
                raise ValueError(
                    f"tensor file {str(path)!r}: a dict without the key "
                    f"{' or '.join(map(repr, TENSOR_DICT_KEYS))} (keys: {sorted(map(str, obj))})"
                )
            obj = obj[key]
        if not isinstance(obj, torch.Tensor):
            raise ValueError(f"tensor file {str(path)!r}: holds a {type(obj).__name__}, not a tensor")
        if not obj.is_floating_point():
            raise ValueError(
                f"tensor file {str(path)!r}: dtype {obj.dtype} is not allowed (allowed: a float "
                "tensor of preprocessed images)"
            )
        x = obj
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f"tensor file {str(path)!r}: shape {tuple(x.shape)} is not allowed "
            "(allowed: (N, 3, H, W) preprocessed RGB images)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"tensor file {str(path)!r}: holds no images (N = 0)")
    return x


def tensor_file_images(path: str | os.PathLike, n_samples: int, resolution: int, seed: int) -> torch.Tensor:
    """A seeded choice of ``n_samples`` images of a .npy/.pt file, float32 (N, 3, R, R)."""
    path = Path(path)
    x = _read_tensor_file(path)
    if x.shape[2] != resolution or x.shape[3] != resolution:
        raise ValueError(
            f"tensor file {str(path)!r}: images are {x.shape[2]}x{x.shape[3]}, the workload's "
            f"resolution is {resolution}x{resolution} (resize them before saving, or change "
            "the resolution)"
        )
    return x[torch.from_numpy(choose_indices(x.shape[0], n_samples, seed))].to(torch.float32).contiguous()


def _existing(source: str | os.PathLike, what: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(source)!r}: no such file or directory")
    return path


def calibration_batches(
    source: str | Path, n_samples: int, batch_size: int, resolution: int, seed: int
) -> list[torch.Tensor]:
    """Calibration inputs for a workload's ``calibration`` section: a list of (b, 3, R, R) batches.

    ``source``: "synthetic", an ImageFolder directory, or a .npy/.pt file (module docstring).
    """
    if str(source) == SYNTHETIC:
        return synthetic_batches(n_samples, batch_size, resolution, seed)
    _check_counts(f"calibration source {str(source)!r}", n_samples, batch_size, resolution)
    path = _existing(source, "calibration source")
    if path.is_dir():
        images, _ = _folder_images(path, n_samples, resolution, seed, "calibration images")
    elif path.suffix.lower() in TENSOR_SUFFIXES:
        images = tensor_file_images(path, n_samples, resolution, seed)
    else:
        raise ValueError(
            f"calibration source {str(source)!r}: not allowed (allowed: 'synthetic', an image "
            f"folder, or a tensor file ending in {', '.join(TENSOR_SUFFIXES)})"
        )
    return split_batches(images, batch_size)


def _folder_images(
    root: Path, n_samples: int, resolution: int, seed: int, desc: str
) -> tuple[torch.Tensor, torch.Tensor]:
    index = index_image_folder(root)
    chosen = choose_indices(len(index.files), n_samples, seed)
    images = load_images([index.files[i] for i in chosen], resolution, desc=desc)
    labels = torch.tensor([index.labels[i] for i in chosen], dtype=torch.int64)
    return images, labels


def labelled_batches(
    folder: str | os.PathLike, n_samples: int, batch_size: int, resolution: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches of a seeded choice of ``n_samples`` images of an ImageFolder tree.

    Labels are indices into the sorted class-folder names, as torchvision's ImageFolder.
    """
    _check_counts(f"image folder {str(folder)!r}", n_samples, batch_size, resolution)
    path = _existing(folder, "image folder")
    if not path.is_dir():
        raise ValueError(
            f"image folder {str(folder)!r}: not a directory (labelled evaluation needs an "
            "ImageFolder tree ROOT/<class>/<image>)"
        )
    images, labels = _folder_images(path, n_samples, resolution, seed, "evaluation images")
    return list(zip(split_batches(images, batch_size), split_batches(labels, batch_size)))
