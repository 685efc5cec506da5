"""Workload YAMLs: bundled files, name resolution, overrides, every validation error; synthetic data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from archsim import resources
from archsim.workload import config
from archsim.workload.config import (
    Calibration,
    Workload,
    WorkloadError,
    known_policies,
    list_workloads,
    load_workload,
)
from archsim.workload.data import calibration_batches, synthetic_batches

REPO_WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"
BUNDLED = ["efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "efficientvit_b3"]

VALID = """\
model: efficientvit_b1
resolution: 224
batch: 1
policy: m2q
seed: 0
calibration:
  samples: 32
  batch_size: 8
  source: synthetic
"""


def write(tmp_path: Path, text: str, name: str = "wl.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path_or_name, **overrides) -> str:
    with pytest.raises(WorkloadError) as exc:
        load_workload(str(path_or_name), **overrides)
    return str(exc.value)


# ----------------------------------------------------------------------------- bundled files


def test_bundled_workloads_listed():
    assert set(BUNDLED) <= set(list_workloads())


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_workload_contents(name):
    wl = load_workload(name)
    assert isinstance(wl, Workload)
    assert (wl.name, wl.model, wl.resolution, wl.batch, wl.policy, wl.seed) == (name, name, 224, 1, "m2q", 0)
    assert wl.calibration == Calibration(samples=32, batch_size=8, source="synthetic")
    assert wl.checkpoint is None
    assert wl.source_file == (REPO_WORKLOADS / f"{name}.yaml").resolve()
    assert wl.description
    text = wl.source_file.read_text()
    assert text.startswith("#")  # a comment header describing the workload


def test_load_by_path_relative_to_cwd(tmp_path, monkeypatch):
    path = write(tmp_path, VALID, "mine.yaml")
    assert load_workload(str(path)).name == "mine"
    monkeypatch.chdir(tmp_path)
    assert load_workload("mine.yaml").name == "mine"  # a path, relative to cwd


def test_names_are_not_looked_up_in_cwd_but_in_search_folders(tmp_path, monkeypatch):
    (tmp_path / "workloads").mkdir()
    write(tmp_path / "workloads", VALID.replace("efficientvit_b1", "b2"), "local_wl.yaml")
    monkeypatch.chdir(tmp_path)
    assert "unknown workload 'local_wl'" in error_of("local_wl")  # same meaning in every folder
    wl = load_workload("local_wl", search=[tmp_path])  # --path DIR: DIR/workloads/NAME.yaml
    assert wl.model == "efficientvit_b2" and wl.name == "local_wl"
    assert "local_wl" in list_workloads([tmp_path]) and "local_wl" not in list_workloads()


def test_search_path_env(tmp_path, monkeypatch):
    write(tmp_path, VALID, "from_env.yaml")  # a workload YAML directly in the folder counts too
    monkeypatch.setenv(resources.PATH_ENV, str(tmp_path))
    assert load_workload("from_env").source_file == (tmp_path / "from_env.yaml").resolve()
    assert "from_env" in list_workloads()


def test_a_user_folder_shadows_a_bundled_name(tmp_path):
    (tmp_path / "workloads").mkdir()
    write(tmp_path / "workloads", VALID.replace("resolution: 224", "resolution: 256"), "efficientvit_b1.yaml")
    assert load_workload("efficientvit_b1", search=[tmp_path]).resolution == 256
    assert load_workload("efficientvit_b1").resolution == 224


def test_bundled_names_resolve_from_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundled = resources.bundled_dir("workload") / "efficientvit_b0.yaml"
    assert load_workload("efficientvit_b0").source_file == bundled.resolve()
    assert (REPO_WORKLOADS / "efficientvit_b0.yaml").resolve() == bundled.resolve()  # the same file


def test_name_and_defaults(tmp_path):
    wl = load_workload(write(tmp_path, "model: b3\n", "minimal.yaml"))
    assert (wl.name, wl.model, wl.resolution, wl.batch, wl.policy, wl.seed) == (
        "minimal",
        "efficientvit_b3",
        224,
        1,
        "m2q",
        0,
    )
    assert wl.calibration == Calibration() and wl.checkpoint is None
    named = load_workload(write(tmp_path, "name: custom\nmodel: EfficientViT-B0\n"))
    assert named.name == "custom" and named.model == "efficientvit_b0"
    assert named.to_dict()["calibration"] == {"samples": 32, "batch_size": 8, "source": "synthetic"}


def test_paths_relative_to_the_file(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    (sub / "weights.pth").write_bytes(b"x")
    (sub / "images").mkdir()
    wl = load_workload(
        write(sub, VALID.replace("source: synthetic", "source: images") + "checkpoint: weights.pth\n")
    )
    assert wl.checkpoint == str((sub / "weights.pth").resolve())
    assert wl.calibration.source == str((sub / "images").resolve()) and not wl.calibration.is_synthetic


# ----------------------------------------------------------------------------- overrides


def test_overrides():
    wl = load_workload("efficientvit_b1", resolution=256, policy="uniform_w8a8", seed=3, batch=4)
    assert (wl.resolution, wl.policy, wl.seed, wl.batch) == (256, "uniform_w8a8", 3, 4)
    assert wl.model == "efficientvit_b1" and wl.source_file.name == "efficientvit_b1.yaml"
    cal = load_workload("efficientvit_b1", calibration={"samples": 64}).calibration
    assert cal == Calibration(samples=64, batch_size=8, source="synthetic")
    assert load_workload("efficientvit_b1", resolution=None).resolution == 224  # None = not given
    assert load_workload("efficientvit_b1", model="b0").model == "efficientvit_b0"


def test_checkpoint_override_relative_to_cwd(tmp_path, monkeypatch):
    (tmp_path / "w.pth").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    wl = load_workload("efficientvit_b0", checkpoint="w.pth")
    assert wl.checkpoint == str((tmp_path / "w.pth").resolve())


def test_override_errors():
    msg = error_of("efficientvit_b1", resolution=250)
    assert msg.endswith(
        "efficientvit_b1.yaml (with overrides resolution=250): resolution: 250: must be an integer "
        "multiple of 32 in [64, 1024]"
    ), msg
    msg = error_of("efficientvit_b1", resoluton=256)
    assert msg.endswith(
        "(with overrides resoluton=256): resoluton: unknown key; did you mean 'resolution'? allowed: "
        "name, description, model, resolution, batch, policy, seed, calibration, checkpoint"
    ), msg
    msg = error_of("efficientvit_b1", calibration={"sample": 3})
    assert "calibration.sample: unknown key; did you mean 'samples'?" in msg


# ----------------------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "model: efficientvit_b1",
            "model: efficientvit_b7",
            "1: model: 'efficientvit_b7': unknown model; did you mean 'efficientvit_b3'? "
            "allowed: efficientvit_b0, efficientvit_b1, efficientvit_b2, efficientvit_b3, or b0..b3",
        ),
        (
            "resolution: 224",
            "resolution: 250",
            "2: resolution: 250: must be an integer multiple of 32 in [64, 1024]",
        ),
        (
            "resolution: 224",
            "resolution: 32",
            "2: resolution: 32: must be an integer multiple of 32 in [64, 1024]",
        ),
        ("resolution: 224", "resolution: 2048", "2: resolution: 2048: must be an integer multiple of 32"),
        ("resolution: 224", "resolution: '224'", "2: resolution: '224': must be an integer multiple of 32"),
        ("resolution: 224", "resolution: 224.0", "2: resolution: 224.0: must be an integer multiple of 32"),
        ("batch: 1", "batch: 0", "3: batch: 0: must be an integer >= 1"),
        ("batch: 1", "batch: true", "3: batch: True: must be an integer >= 1"),
        (
            "policy: m2q",
            "policy: m2qq",
            "4: policy: 'm2qq': unknown policy; did you mean 'm2q'? allowed: all_apot, "
            "fp32, m2q, m2q_adaround",
        ),
        ("policy: m2q", "policy: M2Q", "4: policy: 'M2Q': unknown policy; did you mean 'm2q'?"),
        ("seed: 0", "seed: -1", "5: seed: -1: must be an integer in [0, 9223372036844775807]"),
        ("seed: 0", "seed: 1.5", "5: seed: 1.5: must be an integer in [0, "),
        ("samples: 32", "samples: 0", "7: calibration.samples: 0: must be an integer >= 1"),
        ("batch_size: 8", "batch_size: x", "8: calibration.batch_size: 'x': must be an integer >= 1"),
        (
            "source: synthetic",
            "source: no/such/dir",
            "9: calibration.source: 'no/such/dir': does not exist (resolved to ",
        ),
        (
            "seed: 0",
            "seed: 0\nresoluton: 256",
            "6: resoluton: unknown key; did you mean 'resolution'? allowed: name, ",
        ),
        (
            "samples: 32",
            "samples: 32\n  sampels: 3",
            "8: calibration.sampels: unknown key; did you mean 'samples'? "
            "allowed: samples, batch_size, source",
        ),
        (
            "seed: 0",
            "seed: 0\ncheckpoint: missing.pth",
            "6: checkpoint: 'missing.pth': does not exist (resolved to ",
        ),
        (
            "seed: 0",
            "seed: 0\nseed: 1",
            "6: seed: duplicated key (first at line 5); YAML would silently keep only",
        ),
    ],
)
def test_validation_errors_name_file_line_field_value_allowed(tmp_path, old, new, expected):
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new), "bad.yaml")
    msg = error_of(path)
    assert msg.startswith(f"{path}:{expected}"), msg


def test_every_problem_at_once(tmp_path):
    path = write(tmp_path, VALID.replace("batch: 1", "batch: 0").replace("seed: 0", "seed: x\ncolour: red"))
    lines = error_of(path).splitlines()
    assert lines[0] == f"{path}: 3 problems in workload:"
    assert [line.split(": ")[1] for line in lines[1:]] == ["batch", "seed", "colour"]


def test_line_numbers_point_at_the_field(tmp_path):
    path = write(tmp_path, VALID.replace("policy: m2q", "policy: int4"))
    assert error_of(path).startswith(f"{path}:4: policy: 'int4': unknown policy")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("resolution: 224\n", ":1: model: missing required field (the network: efficientvit_b0,"),
        ("- model: b1\n", ":1: a workload file must be a mapping with keys name, description, model,"),
        ("", ":1: a workload file must be a mapping with keys"),
        ("model: [b1\n", ":2: invalid YAML: while parsing a flow sequence"),
        ("model: b1\ncalibration: 32\n", ":2: calibration: 32: must be a mapping of keys to values"),
        ("model: b1\nname: ''\n", ":2: name: '': must be a non-empty string"),
    ],
)
def test_malformed_files(tmp_path, text, expected):
    path = write(tmp_path, text, "malformed.yaml")
    msg = error_of(path)
    assert msg.startswith(f"{path}{expected}"), msg


def test_unknown_workload_and_missing_path(tmp_path):
    msg = error_of("efficientvit_b11")
    assert "unknown workload 'efficientvit_b11'" in msg and "did you mean 'efficientvit_b1'" in msg
    assert "efficientvit_b0" in msg  # lists what is known
    assert error_of(tmp_path / "absent.yaml") == f"workload {str(tmp_path / 'absent.yaml')!r}: file not found"
    msg = error_of("efficientvit_b9.yaml")
    assert "file not found" in msg and "archsim list" not in msg


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "model: !!python/object/apply:os.system ['echo pwned']\n")
    assert "invalid YAML" in error_of(path)


def test_policy_list_has_one_replaceable_source(tmp_path, monkeypatch):
    assert {"m2q", "uniform_w8a8", "fp32"} <= set(known_policies())
    path = write(tmp_path, VALID.replace("policy: m2q", "policy: w4a8_custom"))
    assert "w4a8_custom" in error_of(path)
    monkeypatch.setattr(config, "known_policies", lambda search=(): ("m2q", "w4a8_custom"))
    assert load_workload(path).policy == "w4a8_custom"


def test_errors_are_value_errors():
    assert issubclass(WorkloadError, ValueError)  # the CLI prints ValueErrors without a traceback


def test_config_does_not_import_torch():
    code = (
        "import sys; from archsim.workload import load_workload; "
        "load_workload('efficientvit_b1'); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_WORKLOADS.parent)


# ----------------------------------------------------------------------------- synthetic data


def test_synthetic_batches_shapes_and_seed():
    rng_before = torch.get_rng_state()
    batches = synthetic_batches(20, 8, 64, seed=0)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert [tuple(b.shape) for b in batches] == [(8, 3, 64, 64), (8, 3, 64, 64), (4, 3, 64, 64)]
    assert all(b.dtype == torch.float32 for b in batches)
    again = synthetic_batches(20, 8, 64, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    other = synthetic_batches(20, 8, 64, seed=1)
    assert not torch.equal(batches[0], other[0])
    # the samples do not depend on how they are batched
    assert torch.equal(torch.cat(batches), torch.cat(synthetic_batches(20, 5, 64, seed=0)))
    allx = torch.cat(batches)
    assert abs(allx.mean().item()) < 0.02 and abs(allx.std().item() - 1) < 0.02


@pytest.mark.parametrize(
    "args", [(0, 8, 64, 0), (8, 0, 64, 0), (8, 8, 0, 0), (8, 8, 64, 1.0), (True, 8, 64, 0)]
)
def test_synthetic_batches_argument_errors(args):
    with pytest.raises(ValueError):
        synthetic_batches(*args)


def test_calibration_batches_dispatch(tmp_path):
    got = calibration_batches("synthetic", 4, 2, 32, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(got, synthetic_batches(4, 2, 32, 5)))
    # a path is read as an image folder (or tensor file); an empty folder is a clear error
    with pytest.raises(ValueError, match="no class subdirectories"):
        calibration_batches(tmp_path, 4, 2, 32, seed=5)
