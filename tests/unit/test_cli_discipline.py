"""The command line's rules: no abbreviated options, help with examples, exit codes, no tracebacks,
a way forward in errors. Runs are replaced by a small simulated graph where the model build would
only cost time (the real runs are in tests/integration/test_cli.py)."""

from __future__ import annotations

import argparse
import json

import pytest
from sim_fixtures import chain, m2vit_spec, pointwise

from archsim import cli, flow, resources
from archsim.cli import build_parser, main, with_option
from archsim.errors import RunError
from archsim.sim import simulate

COMMANDS = ("run", "sweep", "plot", "quantize", "validate", "list", "cache", "compare")


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_no_parser_accepts_abbreviations():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) == 1 + len(COMMANDS)
    assert all(p.allow_abbrev is False for p in parsers)


@pytest.mark.parametrize(
    "argv",
    [
        [
            "run",
            "efficientvit_b1",
            "m2vit",
            "--chec",
        ],  # a prefix of --check and of --checkpoint: never either
        ["run", "efficientvit_b1", "m2vit", "--dump", "d"],
        ["run", "efficientvit_b1", "m2vit", "--checkpo", "w.pth"],
        ["run", "efficientvit_b1", "m2vit", "--no-base"],
        ["run", "efficientvit_b1", "m2vit", "--res", "256"],
        ["quantize", "efficientvit_b1", "--quality", "4"],
    ],
)
def test_prefixes_of_long_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    option = next(a for a in argv if a.startswith("--"))
    assert f"unrecognized arguments: {option}" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"  archsim {command}" in out
    assert "--debug" in out and "--path DIR" in out


def test_main_help_lists_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert (
        all(c in out for c in COMMANDS)
        and "exit codes: 0 ok, 1 a run failed, 2 a usage or config error" in out
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "efficientvit_b0", "m2vit", "--top", "0"],
        ["run", "efficientvit_b0", "m2vit", "--baseline", "uniform_int8", "--no-baseline"],
        ["validate", "--kind", "sweeps", "x.yaml"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_config_errors_exit_2_without_a_traceback(capsys, tmp_path):
    assert main(["run", "efficientvit_b0", str(tmp_path / "nope.yaml"), "--no-baseline"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: architecture config '{tmp_path / 'nope.yaml'}': file not found\n"
    assert main(["run", "efficientvit_b0", "m2vi", "--no-baseline"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: unknown architecture config 'm2vi'; did you mean 'm2vit'?")
        and "Traceback" not in err
    )


def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path):
    from archsim.arch.errors import ArchConfigError

    for argv in (
        ["--debug", "validate", str(tmp_path / "x.yaml")],
        ["validate", str(tmp_path / "x.yaml"), "--debug"],
        ["run", "efficientvit_b0", str(tmp_path / "x.yaml"), "--debug"],
    ):
        with pytest.raises((ArchConfigError, ValueError)):
            main(argv)


def _small_result(workload, spec, times=None, graph=None, **options):
    graph = chain(pointwise("pw", 64, 64, 8))
    return simulate(graph, m2vit_spec(), workload=flow.workload_meta(workload))


@pytest.fixture
def fake_run(monkeypatch):
    monkeypatch.setattr(flow, "run", _small_result)


def test_a_run_that_cannot_write_its_output_exits_1(fake_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", "efficientvit_b0", "m2vit", "--no-baseline", "--out", str(blocker / "r.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {blocker / 'r.json'}: ") and "choose another --out" in err
    assert "the run failed (--debug shows the traceback)" in err and "Traceback" not in err


def test_an_internal_error_exits_1_and_says_so(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(flow, "run", boom)
    assert main(["run", "efficientvit_b0", "m2vit", "--no-baseline"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: internal error: KeyError: 'a bug'") and "Traceback" not in err
    with pytest.raises(KeyError):
        main(["run", "efficientvit_b0", "m2vit", "--no-baseline", "--debug"])


def test_run_failures_with_valid_inputs_exit_1(monkeypatch, capsys):
    def fails(*args, **kwargs):
        raise RunError("the disk is full")

    monkeypatch.setattr(flow, "run", fails)
    assert main(["run", "efficientvit_b0", "m2vit", "--no-baseline"]) == 1
    assert (
        capsys.readouterr().err == "error: the disk is full\nthe run failed (--debug shows the traceback)\n"
    )


def test_unsupported_policy_names_the_policies_that_run_and_the_command(monkeypatch, capsys):
    def unsupported(*args, **kwargs):
        raise flow.UnsupportedWorkloadError(
            "uniform_int8 cannot run it", ["uniform_w8a8", "uniform_w8a8_plain"]
        )

    monkeypatch.setattr(flow, "run", unsupported)
    assert main(["run", "efficientvit_b1", "uniform_int8", "--policy=m2q", "--top", "3"]) == 2
    assert capsys.readouterr().err == (
        "error: uniform_int8 cannot run it\n"
        "run one: archsim run efficientvit_b1 uniform_int8 --top 3 --policy uniform_w8a8\n"
    )


def test_an_unsupported_baseline_says_how_to_change_or_skip_it(monkeypatch, capsys):
    calls = []

    def second_fails(workload, spec, times=None, graph=None, **options):
        calls.append(spec.name)
        if len(calls) == 2:
            raise flow.UnsupportedWorkloadError("uniform_int8 cannot run m2q", ["uniform_w8a8"])
        return _small_result(workload, spec)

    monkeypatch.setattr(flow, "run", second_fails)
    assert main(["run", "efficientvit_b0", "m2vit", "--baseline-policy", "m2q"]) == 2
    assert calls == ["m2vit", "uniform_int8"]
    err = capsys.readouterr().err
    assert err.endswith(
        "error: uniform_int8 cannot run m2q\n"
        "run one: archsim run efficientvit_b0 m2vit --baseline-policy uniform_w8a8\n"
        "or skip the comparison: archsim run efficientvit_b0 m2vit --baseline-policy m2q --no-baseline\n"
    )


def test_with_option_replaces_every_spelling():
    assert with_option(["a", "--policy", "x", "b", "--policy=y"], "--policy", "z") == [
        "a",
        "b",
        "--policy",
        "z",
    ]
    assert with_option(["a"], "--no-baseline", None) == ["a", "--no-baseline"]


def test_metadata_only_on_request(fake_run, tmp_path):
    plain, meta = tmp_path / "plain.json", tmp_path / "meta.json"
    assert main(["run", "efficientvit_b0", "m2vit", "--no-baseline", "--out", str(plain)]) == 0
    assert main(["run", "efficientvit_b0", "m2vit", "--no-baseline", "--out", str(meta), "--metadata"]) == 0
    plain_data, meta_data = json.loads(plain.read_text()), json.loads(meta.read_text())
    assert "metadata" not in plain_data and str(tmp_path) not in plain.read_text()
    block = meta_data.pop("metadata")
    assert meta_data == plain_data  # the block is the only difference
    assert block["command"][:3] == ["archsim", "run", "efficientvit_b0"]
    assert block["inputs"]["run"]["arch"] == str((resources.bundled_dir("arch") / "m2vit.yaml").resolve())
    assert block["inputs"]["run"]["workload"]["workload"].endswith("efficientvit_b0.yaml")
    assert block["inputs"]["run"]["workload"]["policy"].endswith("m2q.yaml")
    assert {"host", "platform", "python", "cwd", "archsim_package"} <= block.keys()


def test_list_shows_user_folders_and_what_they_hide(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ARCHSIM_PATH", raising=False)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "m2q.yaml").write_text("description: my own m2q\nbase: uniform_w8a8\n")
    (tmp_path / "mine.yaml").write_text("description: a workload of mine\nmodel: b0\n")
    assert main(["list", "--path", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"  mine             a workload of mine  [{tmp_path}]" in out
    assert f"  m2q                 my own m2q  [{tmp_path}]" in out
    assert "(hidden: " in out and "m2q.yaml, the name m2q is taken by an earlier folder)" in out
    assert out.rstrip().endswith(f"search folders: {tmp_path}")


def test_validate_takes_names_and_every_kind(tmp_path, capsys):
    assert main(["validate", "m2vit", "efficientvit_b1", "m2q_adaround"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(
        "m2vit.yaml: ok: architecture m2vit, clock 200 MHz, engines: mpma (mac_array), "
        "sat (shift_add_tree), vector (vector)"
    )
    assert out[1].endswith(
        "efficientvit_b1.yaml: ok: workload efficientvit_b1, efficientvit_b1 at 224, batch 1, policy m2q"
    )
    assert out[2].endswith("m2q_adaround.yaml: ok: policy m2q_adaround, 8-bit activations")
    odd = tmp_path / "odd.yaml"
    odd.write_text("colour: red\n")
    good = tmp_path / "wl.yaml"
    good.write_text("model: b0\n")
    assert main(["validate", str(odd), str(good), "nothing_by_this_name"]) == 2
    captured = capsys.readouterr()
    assert captured.out == f"{good}: ok: workload wl, efficientvit_b0 at 224, batch 1, policy m2q\n"
    assert (
        f"error: {odd}:1: cannot tell what this file is" in captured.err
        and "give --kind arch" in captured.err
    )
    assert (
        "error: 'nothing_by_this_name': no workload, architecture config or policy has this name"
        in captured.err
    )


def test_exit_code_constants_match_argparse():
    assert (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_CONFIG) == (0, 1, 2)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run"])
    assert exit_.value.code == cli.EXIT_CONFIG


def test_bad_input_loses_nothing(tmp_path, capsys):
    out = tmp_path / "result.json"
    out.write_text('{"kept": true}\n')
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    for argv in (
        ["run", "efficientvit_b0", str(bad), "--out", str(out)],
        ["run", "efficientvit_b0", "m2vit", "--policy", "nope", "--out", str(out)],
    ):
        assert main(argv) == 2
    assert out.read_text() == '{"kept": true}\n'  # every input is checked before anything is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "result.json"]  # no temp files left
