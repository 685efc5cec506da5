"""Calibration/evaluation data: ImageFolder trees read with Pillow, .npy/.pt tensor files, synthetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from archsim.workload import images as images_mod
from archsim.workload.data import (
    calibration_batches,
    choose_indices,
    labelled_batches,
    synthetic_batches,
)
from archsim.workload.images import center_crop_box, index_image_folder, load_image, resize_size

RES = 32
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
# (c/255 - mean) / std by hand, ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
RED_NORMALISED = (2.248908, -2.035714, -1.804444)  # (1-0.485)/0.229, -0.456/0.224, -0.406/0.225
BLUE_NORMALISED = (-2.117904, -2.035714, 2.640000)  # -0.485/0.229, -0.456/0.224, (1-0.406)/0.225


def _solid(path, colour, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def folder(tmp_path):
    """2 classes x 3 solid images; class 'b_blue' sorts after 'a_red' -> labels 0 (red), 1 (blue)."""
    root = tmp_path / "imgs"
    for i in range(3):
        _solid(root / "a_red" / f"r{i}.png", RED)
        _solid(root / "b_blue" / f"b{i}.png", BLUE)
    (root / "a_red" / "notes.txt").write_text("not an image")  # ignored by extension
    return root


def test_folder_index_sorts_classes_and_files_like_imagefolder(folder):
    index = index_image_folder(folder)
    assert index.classes == ("a_red", "b_blue")
    assert [f.name for f in index.files] == ["r0.png", "r1.png", "r2.png", "b0.png", "b1.png", "b2.png"]
    assert index.labels == (0, 0, 0, 1, 1, 1)


def test_folder_batches_shapes_and_normalised_values(folder):
    batches = calibration_batches(str(folder), n_samples=6, batch_size=4, resolution=RES, seed=0)
    assert [tuple(b.shape) for b in batches] == [(4, 3, RES, RES), (2, 3, RES, RES)]
    assert all(b.dtype == torch.float32 for b in batches)
    x = torch.cat(batches)
    for c in range(3):  # a solid image stays solid through bicubic resize and crop
        assert torch.allclose(x[0, c], torch.full((RES, RES), RED_NORMALISED[c]), atol=1e-5)
        assert torch.allclose(x[5, c], torch.full((RES, RES), BLUE_NORMALISED[c]), atol=1e-5)


def test_labelled_batches_pair_images_with_class_indices(folder):
    pairs = labelled_batches(folder, n_samples=6, batch_size=6, resolution=RES, seed=0)
    assert len(pairs) == 1
    images, labels = pairs[0]
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    # label 0 is the red class: channel 0 is high, channel 2 low
    assert bool((images[labels == 0, 0] > 2.0).all()) and bool((images[labels == 1, 2] > 2.0).all())


def test_sample_choice_is_seeded_sorted_and_capped():
    first = choose_indices(100, 10, seed=3)
    assert np.array_equal(first, choose_indices(100, 10, seed=3))
    assert list(first) == sorted(first) and len(set(first)) == 10
    assert any(not np.array_equal(first, choose_indices(100, 10, seed=s)) for s in range(4, 8))
    assert list(choose_indices(4, 10, seed=0)) == [0, 1, 2, 3]  # fewer than asked: all, in order


def test_folder_choice_is_deterministic_and_depends_on_seed(folder):
    def labels(seed):
        return labelled_batches(folder, n_samples=3, batch_size=3, resolution=RES, seed=seed)[0][1].tolist()

    assert labels(1) == labels(1)
    assert {tuple(labels(s)) for s in range(6)} != {tuple(labels(1))}


def test_resize_and_center_crop_geometry_match_torchvision():
    # Resize(34): shorter side -> 34, longer -> int(34 * long / short); CenterCrop rounds the offset
    assert resize_size(40, 30, 34) == (45, 34)
    assert resize_size(30, 60, 34) == (34, 68)
    assert resize_size(50, 50, 34) == (34, 34)
    assert center_crop_box(45, 34, 32) == (6, 1, 38, 33)  # round(6.5) = 6, round(1.0) = 1
    with pytest.raises(ValueError, match="larger than the image"):
        center_crop_box(20, 40, 32)


def test_center_crop_keeps_the_middle_of_a_wide_image(tmp_path):
    # 64x32, left half red, right half blue: resized to 68x34 (side ceil(32/0.95)=34), cropped 18..50
    img = Image.new("RGB", (64, 32), RED)
    img.paste(Image.new("RGB", (32, 32), BLUE), (32, 0))
    img.save(tmp_path / "half.png")
    x = load_image(tmp_path / "half.png", RES)
    assert x.shape == (3, RES, RES)
    assert x[0, 16, 0] == pytest.approx(RED_NORMALISED[0], abs=1e-4)  # far left of the crop: red
    assert x[2, 16, RES - 1] == pytest.approx(BLUE_NORMALISED[2], abs=1e-4)
    assert RED_NORMALISED[0] > x[0, 16, 16] > BLUE_NORMALISED[0]  # the edge sits in the middle


def test_folder_errors_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        calibration_batches(str(missing), 4, 2, RES, 0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty.*no class subdirectories"):
        calibration_batches(str(empty), 4, 2, RES, 0)
    (empty / "cls").mkdir()
    (empty / "cls" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="empty.*no images"):
        calibration_batches(str(empty), 4, 2, RES, 0)
    (empty / "cls" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png.*Pillow"):
        calibration_batches(str(empty), 4, 2, RES, 0)
    with pytest.raises(ValueError, match="not a directory"):
        labelled_batches(empty / "cls" / "a.txt", 4, 2, RES, 0)


def test_npy_file_gives_the_seeded_rows(tmp_path):
    data = np.arange(5 * 3 * RES * RES, dtype=np.float64).reshape(5, 3, RES, RES)
    np.save(tmp_path / "x.npy", data)
    batches = calibration_batches(str(tmp_path / "x.npy"), 3, 2, RES, seed=7)
    assert [tuple(b.shape) for b in batches] == [(2, 3, RES, RES), (1, 3, RES, RES)]
    assert batches[0].dtype == torch.float32
    rows = choose_indices(5, 3, seed=7)
    assert torch.equal(torch.cat(batches), torch.from_numpy(data[rows]).float())


def test_tensor_file_shape_dtype_and_resolution_errors(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((5, RES, RES), np.float32))
    with pytest.raises(ValueError, match=r"flat\.npy.*shape \(5, 32, 32\)"):
        calibration_batches(str(tmp_path / "flat.npy"), 2, 2, RES, 0)
    np.save(tmp_path / "ints.npy", np.zeros((2, 3, RES, RES), np.uint8))
    with pytest.raises(ValueError, match=r"ints\.npy.*dtype uint8"):
        calibration_batches(str(tmp_path / "ints.npy"), 2, 2, RES, 0)
    np.save(tmp_path / "small.npy", np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"small\.npy.*16x16.*32x32"):
        calibration_batches(str(tmp_path / "small.npy"), 2, 2, RES, 0)
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"x\.csv.*not allowed"):
        calibration_batches(str(tmp_path / "x.csv"), 2, 2, RES, 0)


def test_pt_file_tensor_or_dict(tmp_path):
    x = torch.randn(4, 3, RES, RES, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "t.pt")
    torch.save({"images": x.double(), "labels": torch.arange(4)}, tmp_path / "d.pt")
    torch.save({"x": x[:2]}, tmp_path / "short.pt")
    assert torch.equal(torch.cat(calibration_batches(str(tmp_path / "t.pt"), 4, 3, RES, 0)), x)
    assert torch.equal(torch.cat(calibration_batches(str(tmp_path / "d.pt"), 4, 4, RES, 0)), x)
    assert torch.cat(calibration_batches(str(tmp_path / "short.pt"), 4, 4, RES, 0)).shape[0] == 2
    torch.save({"weights": x}, tmp_path / "nokey.pt")
    with pytest.raises(ValueError, match=r"nokey\.pt.*'images' or 'x'"):
        calibration_batches(str(tmp_path / "nokey.pt"), 4, 4, RES, 0)


class _Payload:  # an arbitrary pickled object: weights_only loading must refuse it
    pass


def test_pt_file_is_loaded_weights_only(tmp_path):
    torch.save({"images": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt.*weights_only=True"):
        calibration_batches(str(tmp_path / "evil.pt"), 2, 2, RES, 0)


def test_synthetic_source_is_unchanged():
    a = calibration_batches("synthetic", 5, 2, RES, 11)
    b = synthetic_batches(5, 2, RES, 11)
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and len(a) == 3


def test_progress_bar_only_on_a_terminal_and_not_when_switched_off(monkeypatch):
    monkeypatch.setattr(images_mod.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("ARCHSIM_NO_PROGRESS", raising=False)
    assert images_mod.progress_enabled()
    monkeypatch.setenv("ARCHSIM_NO_PROGRESS", "1")
    assert not images_mod.progress_enabled()
    monkeypatch.delenv("ARCHSIM_NO_PROGRESS")
    monkeypatch.setattr(images_mod.sys.stderr, "isatty", lambda: False, raising=False)
    assert not images_mod.progress_enabled()
