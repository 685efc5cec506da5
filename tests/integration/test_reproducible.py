"""Identical inputs give byte-identical results in any checkout and any working directory.

Two copies of the checkout at different paths; one run by names from an unrelated folder, the
other by relative paths (through the top-level symlinks) from inside its copy; each process
imports the archsim of its own copy. The result JSON (with the baseline comparison) must be the
same bytes and name no path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

RUN = """\
import sys, archsim
from pathlib import Path
assert Path(archsim.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), archsim.__file__
from archsim.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _checkout(dest: Path) -> Path:
    shutil.copytree(REPO / "archsim", dest / "archsim", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for top in ("arch_configs", "workloads"):  # the symlinks into archsim/data, as in a checkout
        shutil.copytree(REPO / top, dest / top, symlinks=True)
    return dest


def _run(checkout: Path, cwd: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ARCHSIM_PATH",)}
    env["PYTHONPATH"] = str(checkout)
    env["ARCHSIM_NO_PROGRESS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(checkout), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_two_checkouts_two_working_directories_same_bytes(tmp_path):
    one = _checkout(tmp_path / "one" / "archsim")
    two = _checkout(tmp_path / "second" / "place" / "archsim-copy")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(one, elsewhere, ["run", "efficientvit_b0", "m2vit", "--out", str(tmp_path / "a.json")])
    _run(
        two,
        two,
        [
            "run",
            "workloads/efficientvit_b0.yaml",
            "arch_configs/m2vit.yaml",
            "--out",
            str(tmp_path / "b.json"),
        ],
    )
    a, b = (tmp_path / "a.json").read_bytes(), (tmp_path / "b.json").read_bytes()
    assert a == b
    text = a.decode()
    for where in (tmp_path, one, two, elsewhere, REPO):
        assert str(where) not in text
    data = json.loads(text)
    assert data["baseline"]["arch"]["name"] == "uniform_int8"  # the relative baseline resolved in each copy
    assert "metadata" not in data
