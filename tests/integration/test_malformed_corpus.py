"""The malformed corpus: every file in tests/corpus/malformed/ gives its intended message and exit code.

Each file names, in its header, the exit code (``# exit: N``) and every line of the message it
must produce (``# expect: ...``; ``{file}`` is the path as given, ``{dir}`` its folder). The
expectations were written by hand for the defect each file carries, not recorded from archsim.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from archsim.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "malformed"
FILES = sorted(CORPUS.glob("*/*.yaml"))
KINDS = ("arch", "workload", "policy")


def expectations(path: Path) -> tuple[int, list[str]]:
    header = [
        line
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines()
        if line.startswith("# ")
    ]
    code = next(int(line.split(":", 1)[1]) for line in header if line.startswith("# exit:"))
    lines = [line.split(": ", 1)[1] for line in header if line.startswith("# expect:")]
    return code, [line.replace("{file}", str(path)).replace("{dir}", str(path.parent)) for line in lines]


def message_lines(stderr: str) -> list[str]:
    assert stderr.startswith("error: "), stderr
    return [line.strip() for line in stderr[len("error: ") :].splitlines()]


def test_the_corpus_is_large_and_covers_every_kind():
    assert len(FILES) >= 40
    for kind in KINDS:
        assert len(list((CORPUS / kind).glob("*.yaml"))) >= 15, kind
    for path in FILES:
        code, lines = expectations(path)
        assert code == 2 and lines, path


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_validate_gives_exactly_the_intended_message(path, capsys):
    code, expected = expectations(path)
    assert main(["validate", "--kind", path.parent.name, str(path)]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message_lines(captured.err) == expected


def _run_argv(path: Path, out: Path) -> list[str]:
    kind = path.parent.name
    if kind == "sweep":
        return ["sweep", str(path), "--out", str(out)]
    if kind == "arch":
        return ["run", "efficientvit_b0", str(path), "--no-baseline"]
    if kind == "workload":
        return ["run", str(path), "m2vit", "--no-baseline"]
    return ["run", "efficientvit_b0", "m2vit", "--no-baseline", "--policy", str(path)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_run_stops_before_any_work_with_the_same_message(path, capsys, tmp_path):
    code, expected = expectations(path)
    assert main(_run_argv(path, tmp_path / "out")) == code
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    if path.parent.name == "policy":  # reported through the workload override, problems on one line
        for line in expected:
            if "problems in" not in line:
                assert line in err, (line, err)
    else:
        assert message_lines(err) == expected


@pytest.mark.parametrize("kind", (*KINDS, "sweep"))
def test_a_real_process_exits_2_without_a_traceback(kind, tmp_path):
    path = sorted((CORPUS / kind).glob("*.yaml"))[0]
    code, expected = expectations(path)
    proc = subprocess.run(
        [sys.executable, "-m", "archsim.cli", *_run_argv(path, tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
    assert expected[-1] in proc.stderr
