"""`archsim quantize` end to end on EfficientViT-B0: the report JSON, real-data sources, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from archsim import resources
from archsim.cli import main
from archsim.workload.efficientvit import build_model

FAST = ["--samples", "8", "--quality-samples", "2"]
SMALL_WORKLOAD = """model: efficientvit_b0
resolution: 64   # keeps the extra runs to a second or two
calibration: {samples: 8, batch_size: 4}
"""


@pytest.fixture(scope="module")
def b0_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("quantize") / "b0.json"
    assert main(["quantize", "efficientvit_b0", "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """2 classes x 3 small solid-colour PNGs."""
    root = tmp_path_factory.mktemp("imgs")
    colours = {
        "cls_a": [(250, 10, 10), (200, 30, 30), (240, 60, 0)],
        "cls_b": [(10, 10, 250), (30, 30, 200), (0, 60, 240)],
    }
    for cls, cs in colours.items():
        (root / cls).mkdir()
        for i, c in enumerate(cs):
            Image.new("RGB", (24, 20), c).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def small_workload(tmp_path_factory):
    path = tmp_path_factory.mktemp("workload") / "b0_64.yaml"
    path.write_text(SMALL_WORKLOAD)
    return str(path)


@pytest.fixture(scope="module")
def b0_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "b0_seed1.pth"
    torch.save(build_model("efficientvit_b0", seed=1).state_dict(), path)
    return path


def test_report_json_has_model_layer_and_activation_sections(b0_report):
    assert {"workload", "calibration", "quality_data", "model", "layers", "activations"} <= b0_report.keys()
    m = b0_report["model"]
    assert m["policy"] == "m2q" and m["samples"] == 8
    assert m["computed_by"] == "integer model"  # the quantized numbers are the integer datapath's
    assert b0_report["calibration"] == {"source": "synthetic", "samples": 32}
    assert 0 < m["cosine"] <= 1
    assert m["output_sqnr_db"] is not None and math.isfinite(m["output_sqnr_db"])
    assert 0 <= m["top1_agreement"] <= 1 and 0 < m["apot_share"] < 1
    assert "eval" not in m


def test_integer_and_fake_quant_models_agree_per_layer(b0_report):
    outputs = b0_report["layer_outputs"]
    agreement = [r for r in outputs if r["max_diff"] is not None]
    stored = [a for a in b0_report["activations"] if not a["name"].startswith("input:")]
    assert len(agreement) == len(stored) == 68  # every 8-bit layer output of B0
    assert all(r["max_diff"] <= 1 for r in agreement)
    assert min(r["identical"] for r in agreement) > 0.9  # measured on B1: >= 97.8 %
    # every layer (wide ones too) has an output SQNR against fp32; the stem's 8-bit error is small
    assert len(outputs) == len(agreement) + 9  # + the wide ones: 4 LiteMLA blocks x 2 matmuls, the classifier
    assert outputs[0]["name"] == "stem.in_conv" and outputs[0]["output_sqnr_db"] > 25


def test_m2q_layers_depthwise_4_bit_and_scheme_counts_add_up(b0_report):
    layers = b0_report["layers"]
    depthwise = [r for r in layers if r["role"] == "depthwise"]
    assert depthwise and all(r["bits"] == 4 and r["schemes"]["apot"] == 0 for r in depthwise)
    for r in layers:
        assert r["schemes"]["uniform"] + r["schemes"]["apot"] == r["filters"]
        assert 0 <= r["apot_fraction"] <= 1
        assert r["apot_fraction"] == pytest.approx(r["schemes"]["apot"] / r["filters"])
        assert r["weight_sqnr_db"] is not None and 10 < r["weight_sqnr_db"] < 80
    pointwise = [r for r in layers if r["role"] == "pointwise"]
    assert all(r["bits"] == 8 and r["apot_bits"] == 4 for r in pointwise)
    # the model-level APoT share is the filter-weighted mean over the mixed-scheme layers
    apot = sum(r["schemes"]["apot"] for r in pointwise)
    assert b0_report["model"]["apot_share"] == pytest.approx(apot / sum(r["filters"] for r in pointwise))


def test_activation_points_have_consistent_ranges(b0_report):
    acts = b0_report["activations"]
    assert any(a["name"].startswith("input:") for a in acts)
    for a in acts:
        assert a["bits"] == 8 and a["min"] <= a["max"]
        assert 0 <= a["zero_point"] <= 255 and a["scale"] > 0
        # asymmetric 8 bit: the range is spread over 255 steps (widened to include 0)
        assert a["scale"] == pytest.approx((max(a["max"], 0) - min(a["min"], 0)) / 255, rel=1e-5)


def test_text_report_deterministic_json_and_no_checkpoint_warning(
    small_workload, tiny_folder, tmp_path, capsys
):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    args = [
        "quantize",
        small_workload,
        "--policy",
        "uniform_w8a8",
        "--quality-samples",
        "2",
        "--eval",
        str(tiny_folder),
        "--eval-samples",
        "4",
    ]
    assert main([*args, "--out", str(first)]) == 0
    captured = capsys.readouterr()
    assert "output SQNR" in captured.out and "weight SQNR [dB]" in captured.out and "APoT [%]" in captured.out
    assert "warning: --eval without a checkpoint" in captured.err  # random weights: top-1 means nothing
    assert main([*args, "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    data = json.loads(first.read_text())
    assert data["model"]["apot_share"] == 0 and all(r["schemes"]["apot"] == 0 for r in data["layers"])
    # 8-bit per-channel weights: >= ~40 dB each; migrated depthwise filters are compared with the
    # migrated float weights they were quantized from (comparing with the unmigrated ones gives ~15 dB)
    assert all(r["weight_sqnr_db"] is None or r["weight_sqnr_db"] > 35 for r in data["layers"])
    assert data["calibration"]["samples"] == 8 and data["model"]["samples"] == 2
    assert data["model"]["eval"]["samples"] == 4


def test_eval_on_a_labelled_folder_with_a_checkpoint(
    small_workload, tmp_path, tiny_folder, b0_checkpoint, capsys
):
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "quantize",
                small_workload,
                *FAST,
                "--checkpoint",
                str(b0_checkpoint),
                "--calibration",
                str(tiny_folder),
                "--eval",
                str(tiny_folder),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert "top-1 accuracy" in captured.out
    data = json.loads(out.read_text())
    ev = data["model"]["eval"]
    assert ev["samples"] == 6  # fewer images than --eval-samples: all of them
    assert 0 <= ev["top1_fp32"] <= 1 and 0 <= ev["top1_quantized"] <= 1
    assert ev["top1_fp32"] * 6 == pytest.approx(round(ev["top1_fp32"] * 6))  # a count of 6
    # inputs by name and content digest, never by path
    assert data["calibration"] == {"source": resources.identity(tiny_folder), "samples": 6}
    assert data["workload"]["checkpoint"] == {
        "name": b0_checkpoint.name,
        "sha256": resources.sha256_file(b0_checkpoint),
    }
    assert data["eval_data"]["folder"] == resources.identity(tiny_folder)
    assert str(tmp_path) not in out.read_text() and str(tiny_folder) not in out.read_text()


@pytest.mark.parametrize("flag", ["--calibration", "--eval", "--checkpoint"])
def test_bad_paths_exit_2_naming_the_path(tmp_path, flag, capsys):
    missing = tmp_path / f"missing{flag.strip('-')}"
    assert main(["quantize", "efficientvit_b0", flag, str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing.name) in err and err.count("\n") == 1


def test_bad_tensor_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "calib.npy"
    import numpy as np

    np.save(bad, np.zeros((4, 3, 64, 64), np.float32))  # the workload is at 224
    assert main(["quantize", "efficientvit_b0", "--calibration", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "calib.npy" in err and "64x64" in err and "224x224" in err
