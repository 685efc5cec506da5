"""Real images for calibration and evaluation: an ImageFolder tree read with Pillow.

Layout and label order are those of torchvision's ``datasets.ImageFolder`` (torchvision is
not a dependency here): ``ROOT/<class>/**/<image>``; class names are the sorted names of
ROOT's subdirectories and a class's label is its index in that list; files are found by
extension (case-insensitive), walked in sorted order.

Preprocessing is the evaluation transform of the EfficientViT authors
(mit-han-lab/efficientvit, ``applications/efficientvit_cls/eval_efficientvit_cls_model.py``,
``--crop_ratio 0.95`` default, used for B0/B1)::

    Resize(ceil(resolution / crop_ratio), BICUBIC) -> CenterCrop(resolution) -> ToTensor()
    -> Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

with torchvision's geometry: ``Resize(int)`` scales the shorter side to that size and the
longer one to ``int(size * long / short)``; ``CenterCrop`` starts at
``int(round((side - crop) / 2))``. Images are converted to RGB first (ImageFolder's loader).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_RATIO = 0.95  # mit-han-lab eval default; B2/B3 were evaluated with 1.0 (we keep one value)
NO_PROGRESS_ENV = "ARCHSIM_NO_PROGRESS"


@dataclass(frozen=True)
class ImageFolderIndex:
    """The files of an ImageFolder tree: ``files[i]`` has label ``labels[i]`` (index into ``classes``)."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    labels: tuple[int, ...]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def index_image_folder(root: str | os.PathLike) -> ImageFolderIndex:
    """Scan an ImageFolder tree. FileNotFoundError / ValueError name the folder and what is wrong."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {str(root)!r}: no such directory")
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r}: not a directory")
    classes = tuple(sorted(e.name for e in os.scandir(root) if e.is_dir()))
    if not classes:
        raise ValueError(
            f"image folder {str(root)!r}: no class subdirectories "
            "(expected ROOT/<class>/<image>, as torchvision's ImageFolder)"
        )
    files, labels = [], []
    for label, cls in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / cls, followlinks=True):
            dirnames.sort()  # os.walk visits subdirectories in this list's order
            for name in sorted(filenames):
                if _is_image(name):
                    files.append(Path(dirpath) / name)
                    labels.append(label)
    if not files:
        raise ValueError(
            f"image folder {str(root)!r}: no images in its {len(classes)} class folder(s) "
            f"(allowed extensions: {', '.join(IMAGE_EXTENSIONS)})"
        )
    return ImageFolderIndex(root, classes, tuple(files), tuple(labels))


def resize_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after torchvision ``Resize(size)``: shorter side -> size, aspect kept."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def center_crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """PIL crop box (left, top, right, bottom) of torchvision ``CenterCrop(crop)``."""
    if width < crop or height < crop:
        raise ValueError(f"center crop {crop} is larger than the image ({width}x{height})")
    left = round((width - crop) / 2.0)
    top = round((height - crop) / 2.0)
    return left, top, left + crop, top + crop


def load_image(path: str | os.PathLike, resolution: int, crop_ratio: float = CROP_RATIO) -> torch.Tensor:
    """One image file -> normalised float32 tensor (3, resolution, resolution)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"image {str(path)!r}: cannot be read by Pillow: {exc}") from exc
    side = math.ceil(resolution / crop_ratio)
    img = img.resize(resize_size(*img.size, side), Image.Resampling.BICUBIC)
    img = img.crop(center_crop_box(*img.size, resolution))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return ((x - mean) / std).contiguous()


def progress_enabled() -> bool:
    """Progress bars only for a person watching: stderr is a terminal and not switched off."""
    return sys.stderr.isatty() and os.environ.get(NO_PROGRESS_ENV, "") != "1"


def load_images(files: list[Path], resolution: int, desc: str = "reading images") -> torch.Tensor:
    """Load ``files`` in order into one (N, 3, resolution, resolution) tensor, with a progress bar."""
    from tqdm import tqdm

    images = [
        load_image(f, resolution)
        for f in tqdm(files, desc=desc, unit="img", disable=not progress_enabled(), file=sys.stderr)
    ]
    return torch.stack(images)
