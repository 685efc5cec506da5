"""The `archsim` command line as a user runs it: output files, comparison, error messages."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from archsim import resources
from archsim.cli import main

REPO = Path(__file__).resolve().parents[2]
M2VIT = REPO / "arch_configs" / "m2vit.yaml"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


REQUIRED_KEYS = {
    "latency_s",
    "latency_cycles",
    "energy_j",
    "edp_js",
    "energy_breakdown_j",
    "engines",
    "layers",
    "workload",
    "arch",
    "archsim_version",
}
LAYER_KEYS = {"name", "engines", "start_cycle", "end_cycle", "macs", "dram_read_bytes", "energy_j"}


@pytest.fixture(scope="module")
def b0_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "b0.json"
    assert main(["run", "efficientvit_b0", str(M2VIT), "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


def test_run_writes_the_result_json_with_the_baseline_comparison(b0_run, capsys):
    data, _ = b0_run
    assert REQUIRED_KEYS <= data.keys()
    assert data["workload"]["model"] == "efficientvit_b0" and data["workload"]["policy"] == "m2q"
    assert data["arch"]["name"] == "m2vit"
    # the scheme split the SAT receives is recorded with the result; the uniform baseline has none
    quant = data["workload"]["quantization"]
    assert 0 < quant["apot_share"] < 1
    assert quant["apot_filters"] == round(quant["apot_share"] * quant["mixed_filters"])
    assert all(LAYER_KEYS <= layer.keys() for layer in data["layers"])
    assert all({"busy_cycles", "utilization", "macs"} <= e.keys() for e in data["engines"].values())
    # m2vit.yaml names its baseline: the same model in uniform 8 bit on uniform_int8.yaml
    base = data["baseline"]
    assert base["arch"]["name"] == "uniform_int8" and base["workload"]["policy"] == "uniform_w8a8"
    assert base["workload"]["quantization"]["apot_share"] == 0
    assert data["comparison"]["edp_ratio"] == pytest.approx(data["edp_js"] / base["edp_js"])


def test_result_identifies_inputs_by_name_and_digest_never_by_path(b0_run):
    data, path = b0_run
    text = path.read_text()
    assert str(REPO) not in text and str(path.parent) not in text and "source_file" not in text
    bundled = resources.bundled_dir
    wl = data["workload"]
    assert wl["name"] == "efficientvit_b0" and wl["sha256"] == sha256(
        bundled("workload") / "efficientvit_b0.yaml"
    )
    assert wl["policy_files"] == [{"name": "m2q.yaml", "sha256": sha256(bundled("policy") / "m2q.yaml")}]
    assert wl["checkpoint"] is None and wl["calibration"] == {
        "samples": 32,
        "batch_size": 8,
        "source": "synthetic",
    }
    assert data["arch"] == {"name": "m2vit", "sha256": sha256(M2VIT), "clock_hz": 200e6}
    base = data["baseline"]
    assert base["arch"]["sha256"] == sha256(bundled("arch") / "uniform_int8.yaml")
    assert base["workload"]["policy_files"][0]["name"] == "uniform_w8a8.yaml"


def test_identical_inputs_give_identical_json(b0_run, tmp_path):
    _, first = b0_run
    second = tmp_path / "again.json"
    assert main(["run", "efficientvit_b0", "m2vit", "--out", str(second)]) == 0  # by name: the same file
    assert second.read_bytes() == first.read_bytes()


def test_no_baseline_and_overrides(tmp_path):
    out = tmp_path / "b0_256.json"
    assert (
        main(
            [
                "run",
                "efficientvit_b0",
                str(M2VIT),
                "--no-baseline",
                "--resolution",
                "256",
                "--policy",
                "uniform_w8a8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert "baseline" not in data
    assert data["workload"]["resolution"] == 256 and data["workload"]["policy"] == "uniform_w8a8"


def _bad_arch(tmp_path: Path, old: str, new: str) -> Path:
    text = M2VIT.read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("clock: 200 MHz", "clock: 200 GB/s", "clock"),
        ("kind: mac_array", "kind: systolic_dream", "mac_array"),
        ("peak_bandwidth: 19.2 GB/s", "peak_bandwidth: 19.2", "peak_bandwidth"),
    ],
)
def test_bad_arch_yaml_is_a_one_line_error_not_a_traceback(tmp_path, old, new, expected):
    bad = _bad_arch(tmp_path, old, new)
    proc = subprocess.run(
        [sys.executable, "-m", "archsim.cli", "run", "efficientvit_b0", str(bad), "--no-baseline"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and expected in proc.stderr


def test_validate_reports_ok_and_errors(tmp_path, capsys):
    assert main(["validate", str(M2VIT)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = _bad_arch(tmp_path, "lanes: 64", "lanes: -4")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:" in err and "lanes" in err


def test_unknown_workload_is_a_clear_error(capsys):
    assert main(["run", "efficientvit_b9", str(M2VIT)]) == 2
    assert "efficientvit_b9" in capsys.readouterr().err


def test_a_policy_the_arch_cannot_run_gives_a_way_forward_that_works(tmp_path, capsys):
    argv = ["run", "efficientvit_b0", "uniform_int8", "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "architecture 'uniform_int8' cannot run workload efficientvit_b0 (policy m2q):" in err
    assert "conv_pointwise with 4-bit APoT filters and 8-bit activations: no engine mode supports it" in err
    assert "bundled policies that run on 'uniform_int8': uniform_w8a8, uniform_w8a8_plain" in err
    command = err.strip().splitlines()[-1]
    assert (
        command == f"run one: archsim run efficientvit_b0 uniform_int8 --out {tmp_path / 'r.json'} "
        "--policy uniform_w8a8"
    )
    assert main(command.split()[3:]) == 0  # the suggested command runs
    assert json.loads((tmp_path / "r.json").read_text())["workload"]["policy"] == "uniform_w8a8"
