"""archsim is a package: a wheel built from the checkout, installed into a fresh virtual environment,
runs from a folder outside the checkout with its bundled workloads, configs and policies.

The fresh environment gets archsim *only* from the wheel. Its dependencies (torch, numpy, ...)
come from the running environment's site-packages through a path entry, which Python adds as a
plain folder: the .pth files there (among them the editable install's finder) are not run, so
the checkout is not importable from the fresh environment; the test checks that too. Building
and installing the wheel needs no network (``--no-build-isolation --no-index``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "archsim"
BUNDLED = {
    "arch": sorted(p.stem for p in (PACKAGE / "data" / "arch").glob("*.yaml")),
    "workload": sorted(p.stem for p in (PACKAGE / "data" / "workloads").glob("*.yaml")),
    "policy": sorted(p.stem for p in (PACKAGE / "quant" / "policies").glob("*.yaml")),
}

pytestmark = [pytest.mark.slow, pytest.mark.wheel]


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(fresh venv, its environment, a working folder outside the checkout, the wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO.resolve())
    src = root / "src"  # a clean copy: the build writes build/ and *.egg-info next to the sources
    shutil.copytree(PACKAGE, src / "archsim", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            root / "dist",
            src,
        ]
    )
    (wheel,) = (root / "dist").glob("archsim-*.whl")

    fresh = root / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", fresh])
    python = fresh / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "archsim_test_dependencies.pth").write_text("".join(f"{d}\n" for d in deps))

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ARCHSIM_PATH")
    }
    env["PATH"] = f"{fresh / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["ARCHSIM_NO_PROGRESS"] = "1"
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return fresh, env, elsewhere, wheel


def test_the_wheel_carries_the_package_and_its_data(installed):
    *_, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    for kind, folder in (
        ("arch", "archsim/data/arch"),
        ("workload", "archsim/data/workloads"),
        ("policy", "archsim/quant/policies"),
    ):
        assert BUNDLED[kind], kind
        for name in BUNDLED[kind]:
            assert f"{folder}/{name}.yaml" in names, (kind, name)
    assert not any(n.startswith(("tests/", "arch_configs/", "workloads/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "archsim = archsim.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_fresh_environment_imports_archsim_only_from_the_wheel(installed):
    fresh, env, elsewhere, _ = installed
    code = (
        "import archsim, importlib.metadata as m, sys; print(archsim.__file__); "
        "print(m.distribution('archsim').locate_file('archsim')); "
        "print(any(p.rstrip('/') == sys.argv[1] for p in sys.path))"
    )
    out = _run([fresh / "bin" / "python", "-c", code, REPO], cwd=elsewhere, env=env).stdout.split()
    assert Path(out[0]).resolve().is_relative_to(fresh.resolve()), out
    assert Path(out[1]).resolve().is_relative_to(fresh.resolve()), out
    assert out[2] == "False"  # the checkout is not on sys.path


def test_archsim_list_from_outside_the_checkout_shows_every_bundled_input(installed):
    fresh, env, elsewhere, _ = installed
    out = _run([fresh / "bin" / "archsim", "list"], cwd=elsewhere, env=env).stdout
    listed = {
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and not line.startswith("  (")
    }
    for kind in BUNDLED:
        assert set(BUNDLED[kind]) <= listed, (kind, out)
    assert "M2-ViT reconstruction" in out and "search folders: none" in out


def test_archsim_run_by_name_from_outside_the_checkout(installed):
    fresh, env, elsewhere, _ = installed
    _run(
        [fresh / "bin" / "archsim", "run", "efficientvit_b0", "m2vit", "--no-baseline", "--out", "r.json"],
        cwd=elsewhere,
        env=env,
    )
    result = json.loads((elsewhere / "r.json").read_text())
    assert result["workload"]["name"] == "efficientvit_b0" and result["workload"]["policy"] == "m2q"
    assert result["arch"]["name"] == "m2vit" and result["latency_cycles"] > 0 and result["energy_j"] > 0
    # the installed data is the checkout's: same content digests
    digest = hashlib.sha256((PACKAGE / "data" / "arch" / "m2vit.yaml").read_bytes()).hexdigest()
    assert result["arch"]["sha256"] == digest
    digest = hashlib.sha256(
        (PACKAGE / "data" / "workloads" / "efficientvit_b0.yaml").read_bytes()
    ).hexdigest()
    assert result["workload"]["sha256"] == digest
    assert str(fresh) not in (elsewhere / "r.json").read_text()
