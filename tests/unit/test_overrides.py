"""Overrides (--set and sweep keys): parsed as YAML, applied to the parsed document and validated by the
loaders with the YAML's own schema and units; unknown keys name the nearest valid ones."""

from __future__ import annotations

import json

import pytest

from archsim import flow, resources
from archsim.arch.errors import ArchConfigError
from archsim.cli import main
from archsim.errors import ConfigError
from archsim.overrides import Override, parse_set, split
from archsim.workload.config import WorkloadError

BUNDLED_ARCH = resources.bundled_dir("arch")
BUNDLED_WORKLOAD = resources.bundled_dir("workload")


def _arch(*sets: str):
    return flow.load_arch("m2vit", (), [parse_set(s) for s in sets])


def _workload(*sets: str, **fields):
    return flow.load_workload("efficientvit_b1", (), [parse_set(s) for s in sets], **fields)


def test_values_are_yaml_and_reach_the_spec_in_si_units():
    spec = _arch(
        "engines.sat.rows=32",
        "dram.peak_bandwidth=38.4 GB/s",
        "buffers.act_buffer.capacity=1 MiB",
        "params.min_tiles=2",
        "arch.dram.latency=80 ns",
    )
    assert spec.engine("sat").rows == 32
    assert spec.dram.peak_bandwidth_bytes_per_s == 38.4e9
    assert spec.buffer_for("activations").capacity_bytes == 1 << 20
    assert spec.dram.latency_s == pytest.approx(80e-9)
    assert (
        spec.params["min_tiles"] == 2 and spec.params["sat_lane_area_in_mult8"] == 0.5
    )  # merged, not replaced
    assert spec.engine("mpma").rows == 32  # untouched fields keep the file's values
    assert parse_set("engines.sat.modes.shift_add.schemes=[apot, uniform]").value == ["apot", "uniform"]
    assert parse_set("params.min_tiles=null").value is None


def test_the_last_of_two_overrides_of_a_key_wins():
    assert _arch("engines.sat.rows=32", "engines.sat.rows=16").engine("sat").rows == 16


@pytest.mark.parametrize(
    "setting, message",
    [
        ("engines.sat.rows=0", "m2vit.yaml: --set engines.sat.rows: 0: must be a positive integer"),
        (
            "dram.peak_bandwidth=38.4 GB",
            "m2vit.yaml: --set dram.peak_bandwidth: '38.4 GB': expected a bandwidth like "
            "'19.2 GB/s', not a size",
        ),
        ("dram.peak_bandwidth=38.4", "m2vit.yaml: --set dram.peak_bandwidth: 38.4: "),
        ("clock=300 MHz", "m2vit.yaml: --set clock: '300 MHz': has a period of 3333 ps, not a whole number"),
        (
            "buffers.act_buffer.capacity=1.5 B",
            "m2vit.yaml: --set buffers.act_buffer.capacity: '1.5 B': must be a whole number of bytes",
        ),
    ],
)
def test_a_bad_value_is_the_schemas_error_naming_the_override(setting, message):
    with pytest.raises(ArchConfigError) as err:
        _arch(setting)
    # the file, then the override instead of a line: the value is not in the file
    assert str(err.value).startswith(f"{BUNDLED_ARCH}/{message}")


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "engines.sta.rows=32",
            "--set engines.sta.rows: unknown key 'sta' in engines; did you mean 'sat'? allowed: "
            "mpma, sat, vector",
        ),
        (
            "engines.sat.rwos=32",
            "--set engines.sat.rwos: unknown key 'rwos' in engines.sat; did you mean 'rows'?",
        ),
        (
            "dram.bandwidth=1 GB/s",
            "--set dram.bandwidth: unknown key 'bandwidth' in dram; did you mean 'peak_bandwidth'?",
        ),
        ("engines.sat.rows.x=1", "--set engines.sat.rows.x: engines.sat.rows is a value (64), not a mapping"),
        ("dramm.latency=1 ns", "--set dramm.latency: unknown key 'dramm'; did you mean 'dram'?"),
    ],
)
def test_a_key_that_does_not_exist_names_the_nearest_valid_keys(setting, message):
    with pytest.raises(ArchConfigError) as err:
        _arch(setting)
    assert message in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ArchConfigError) as err:
        _arch("engines.sat.rows=0", "dram.latency=fast")
    text = str(err.value)
    assert "2 problems in architecture config" in text
    assert "--set engines.sat.rows: 0:" in text and "--set dram.latency: 'fast':" in text


def test_a_field_with_a_default_can_be_set_although_the_file_omits_it():
    assert "min_tiles" not in flow.load_arch("m2vit").params
    assert _arch("params.max_tiles=8").params["max_tiles"] == 8
    assert _arch("dram.burst=128 B").dram.burst_bytes == 128


def test_workload_keys_change_the_workload_only():
    w = _workload("workload.resolution=256", "workload.calibration.samples=4", "workload.policy=uniform_w8a8")
    assert (w.resolution, w.calibration.samples, w.calibration.batch_size, w.policy) == (
        256,
        4,
        8,
        "uniform_w8a8",
    )
    arch_sets, workload_sets = split([parse_set("workload.seed=3"), parse_set("engines.sat.rows=1")])
    assert [o.key for o in arch_sets] == ["engines.sat.rows"] and [o.key for o in workload_sets] == [
        "workload.seed"
    ]
    assert workload_sets[0].path == ("seed",) and Override("arch.dram.latency", 1).path == ("dram", "latency")


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "workload.resolution=255",
            "efficientvit_b1.yaml: --set workload.resolution: 255: must be an integer multiple "
            "of 32 in [64, 1024]",
        ),
        (
            "workload.resolutoin=256",
            "efficientvit_b1.yaml: --set workload.resolutoin: unknown key 'resolutoin'; did you "
            "mean 'resolution'?",
        ),
        (
            "workload.policy=m2",
            "efficientvit_b1.yaml: --set workload.policy: 'm2': unknown policy; did you mean 'm2q'?",
        ),
        (
            "workload.calibration.sample=4",
            "--set workload.calibration.sample: unknown key 'sample' in calibration; did you mean 'samples'?",
        ),
    ],
)
def test_workload_errors_name_the_override(setting, message):
    with pytest.raises(WorkloadError) as err:
        _workload(setting)
    assert message in str(err.value) and str(err.value).startswith(str(BUNDLED_WORKLOAD))


def test_a_field_given_by_option_and_by_set_is_an_error():
    with pytest.raises(
        WorkloadError, match="--set workload.resolution: also given as --resolution; give it once"
    ):
        _workload("workload.resolution=256", resolution=288)


@pytest.mark.parametrize(
    "text, message",
    [
        ("engines.sat.rows", "--set 'engines.sat.rows': expected KEY=VALUE"),
        ("engines.sat.rows=", "--set engines.sat.rows: missing value after '=' (write null for no value)"),
        ("engines..rows=1", "--set 'engines..rows': not a key"),
        ("workload=b0", "--set 'workload': not a key"),
        ("engines.sat.rows=[1,", "--set engines.sat.rows: '[1,': not a YAML value"),
    ],
)
def test_malformed_settings(text, message):
    with pytest.raises(ConfigError) as err:
        parse_set(text)
    assert str(err.value).startswith(message)


def test_run_rejects_a_bad_override_before_building_anything(capsys, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(flow, "run", no_build)
    assert main(["run", "efficientvit_b0", "m2vit", "--no-baseline", "--set", "engines.sat.rows=-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.rstrip().endswith(
        "m2vit.yaml: --set engines.sat.rows: -1: must be a positive integer"
    )
    assert "Traceback" not in err


def test_run_applies_overrides_and_records_them(monkeypatch, tmp_path):
    from sim_fixtures import chain, pointwise

    from archsim.sim import simulate

    seen = {}

    def fake(workload, spec, times=None, graph=None, **options):
        seen.update(spec=spec, workload=workload, cache=options.get("cache"))
        return simulate(chain(pointwise("pw", 64, 64, 8)), spec, workload=flow.workload_meta(workload))

    monkeypatch.setattr(flow, "run", fake)
    out = tmp_path / "r.json"
    argv = [
        "run",
        "efficientvit_b0",
        "m2vit",
        "--no-baseline",
        "--set",
        "dram.peak_bandwidth=38.4 GB/s",
        "--set",
        "workload.resolution=256",
        "--no-cache",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert seen["spec"].dram.peak_bandwidth_bytes_per_s == 38.4e9 and seen["workload"].resolution == 256
    assert seen["cache"] is False
    data = json.loads(out.read_text())
    assert data["arch"]["overrides"] == {"dram.peak_bandwidth": "38.4 GB/s"}
    assert data["arch"]["sha256"] == flow.load_arch("m2vit").source_sha256  # the file; overrides said apart
    assert data["workload"]["resolution"] == 256


def test_workload_overrides_reach_the_baseline_but_not_its_policy(monkeypatch):
    from sim_fixtures import chain, pointwise

    from archsim.sim import simulate

    runs = []

    def fake(workload, spec, times=None, graph=None, **options):
        runs.append((spec.name, workload.policy, workload.resolution, spec.dram.latency_s))
        return simulate(chain(pointwise("pw", 64, 64, 8)), spec, workload=flow.workload_meta(workload))

    monkeypatch.setattr(flow, "run", fake)
    assert (
        main(
            [
                "run",
                "efficientvit_b0",
                "m2vit",
                "--set",
                "workload.resolution=128",
                "--set",
                "workload.policy=m2q_balanced",
                "--set",
                "dram.latency=90 ns",
            ]
        )
        == 0
    )
    assert runs[0][:3] == ("m2vit", "m2q_balanced", 128) and runs[0][3] == pytest.approx(90e-9)
    assert runs[1][:3] == ("uniform_int8", "uniform_w8a8", 128) and runs[1][3] == pytest.approx(60e-9)
