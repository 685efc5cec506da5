"""Bundled inputs by name from anywhere; user folders; digests; the top-level folders are the same files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from archsim import resources

REPO = Path(__file__).resolve().parents[2]
BUNDLED_NAMES = {
    "workload": ["efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "efficientvit_b3"],
    "arch": ["m2vit", "m2vit_asic28", "peer32_ws", "uniform_int8", "uniform_int8_asic28"],
    "policy": [
        "all_apot",
        "fp32",
        "m2q",
        "m2q_adaround",
        "m2q_apot8",
        "m2q_apot8w",
        "m2q_balanced",
        "m2q_dw3",
        "m2q_dw8",
        "m2q_dw8_apot8w",
        "uniform_w8a8",
        "uniform_w8a8_plain",
    ],
}
ARCH = "name: mine\nclock: 100 MHz\n"  # enough for kind_of; not a valid architecture


@pytest.fixture(autouse=True)
def _no_user_path(monkeypatch):
    monkeypatch.delenv(resources.PATH_ENV, raising=False)


@pytest.mark.parametrize("kind", resources.KINDS)
def test_bundled_files_live_inside_the_package(kind):
    folder = resources.bundled_dir(kind)
    assert folder.is_dir() and folder.resolve().is_relative_to((REPO / "archsim").resolve())
    assert resources.names(kind) == BUNDLED_NAMES[kind]
    assert all(r.bundled and r.path.parent == folder for r in resources.available(kind))


def test_package_data_ships_every_bundled_folder():
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "archsim"
    ]
    for kind in resources.KINDS:
        rel = resources.bundled_dir(kind).resolve().relative_to((REPO / "archsim").resolve()).as_posix()
        assert f"{rel}/*.yaml" in globs, (kind, globs)


@pytest.mark.parametrize("top, kind", [("arch_configs", "arch"), ("workloads", "workload")])
def test_top_level_folders_are_links_to_the_bundled_files_not_copies(top, kind):
    links = sorted((REPO / top).iterdir())
    assert [p.stem for p in links] == BUNDLED_NAMES[kind]
    for link in links:
        assert link.is_symlink(), f"{link} must be a symlink to the bundled file, not a copy"
        assert link.resolve() == (resources.bundled_dir(kind) / link.name).resolve()


def test_names_resolve_from_any_directory(tmp_path):
    code = (
        "from archsim import resources as r; "
        "print(r.resolve('arch', 'm2vit').resolve(), r.resolve('workload', 'efficientvit_b0').resolve(), "
        "r.resolve('policy', 'm2q').resolve())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    arch, workload, policy = out.stdout.split()
    assert arch == str((resources.bundled_dir("arch") / "m2vit.yaml").resolve())
    assert workload == str((resources.bundled_dir("workload") / "efficientvit_b0.yaml").resolve())
    assert policy == str((resources.bundled_dir("policy") / "m2q.yaml").resolve())


def test_paths_are_relative_to_cwd_or_to_a_base(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(ARCH)
    monkeypatch.chdir(tmp_path)
    assert resources.resolve("arch", "a.yaml") == Path("a.yaml")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.yaml").write_text(ARCH)
    assert resources.resolve("arch", "b.yaml", base=sub) == sub / "b.yaml"


def test_user_folders_come_first_by_subfolder_or_by_kind(tmp_path, monkeypatch):
    (tmp_path / "arch_configs").mkdir()
    (tmp_path / "arch_configs" / "m2vit.yaml").write_text(ARCH)  # shadows the bundled m2vit
    (tmp_path / "direct.yaml").write_text(ARCH)  # a YAML directly in the folder, told by its keys
    (tmp_path / "other.yaml").write_text("model: b0\n")  # a workload: not an arch
    found = resources.find("arch", "m2vit", [tmp_path])
    assert found.path == tmp_path / "arch_configs" / "m2vit.yaml" and found.origin == str(tmp_path)
    assert resources.find("arch", "direct", [tmp_path]).path == tmp_path / "direct.yaml"
    assert resources.find("arch", "other", [tmp_path]) is None
    assert resources.find("workload", "other", [tmp_path]).path == tmp_path / "other.yaml"
    assert [r.path for r in resources.shadowed("arch", [tmp_path])] == [
        resources.bundled_dir("arch") / "m2vit.yaml"
    ]
    assert resources.find("arch", "m2vit").bundled  # without the folder: the bundled one
    monkeypatch.setenv(resources.PATH_ENV, f"{tmp_path}{resources.os.pathsep}/no/such/folder")
    assert resources.find("arch", "direct").path == tmp_path / "direct.yaml"  # ARCHSIM_PATH


def test_unknown_name_says_what_is_known_and_how_to_add_one(tmp_path):
    with pytest.raises(resources.ResourceError) as err:
        resources.resolve("arch", "m2vitt")
    assert str(err.value) == (
        "unknown architecture config 'm2vitt'; did you mean 'm2vit'? known: m2vit, m2vit_asic28, peer32_ws, "
        "uniform_int8, uniform_int8_asic28 (bundled only; `archsim list` describes each; add a folder with "
        "--path DIR or ARCHSIM_PATH, or give a YAML path)"
    )
    with pytest.raises(resources.ResourceError) as err:
        resources.resolve("arch", "nowhere", extra=[tmp_path])
    assert f"(searched {tmp_path}, then the bundled ones;" in str(err.value)


def test_a_missing_path_whose_name_exists_points_at_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(resources.ResourceError) as err:
        resources.resolve("arch", "m2vit.yaml")
    assert str(err.value) == (
        "architecture config 'm2vit.yaml': file not found; an architecture config named "
        "'m2vit' exists: give the name m2vit instead of a path"
    )


@pytest.mark.parametrize(
    "text, kind",
    [
        (ARCH, "arch"),
        ("engines: {}\n", "arch"),
        ("model: b1\n", "workload"),
        ("base: m2q\n", "policy"),
        ("quantized: false\n", "policy"),
        ("- a\n", None),
        ("just: keys\n", None),
        ("key: [unclosed\n", None),
    ],
)
def test_kind_of_a_file_by_its_top_level_keys(tmp_path, text, kind):
    path = tmp_path / "f.yaml"
    path.write_text(text)
    assert resources.kind_of(path) == kind


def test_one_line_descriptions(tmp_path):
    assert resources.one_line("a  b\n c") == "a b c"
    long = "word " * 40
    cut = resources.one_line(long)
    assert len(cut) <= resources.DESCRIPTION_CHARS and cut.endswith("...") and cut.startswith("word word")
    (tmp_path / "x.yaml").write_text("description: >\n  two\n  lines\n")
    assert resources.description(tmp_path / "x.yaml") == "two lines"
    (tmp_path / "y.yaml").write_text("name: y\n")
    assert resources.description(tmp_path / "y.yaml") == "(no description)"
    (tmp_path / "z.yaml").write_text("a: [\n")
    assert "cannot be read" in resources.description(tmp_path / "z.yaml")


def test_identity_is_name_and_content_digest_never_the_location(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two" / "deeper"
    for folder in (one, two):
        (folder / "imgs" / "cat").mkdir(parents=True)
        (folder / "w.pth").write_bytes(b"weights")
        (folder / "imgs" / "cat" / "0.png").write_bytes(b"png")
    assert resources.identity(one / "w.pth") == {
        "name": "w.pth",
        "sha256": hashlib.sha256(b"weights").hexdigest(),
    }
    assert resources.identity(one / "w.pth") == resources.identity(two / "w.pth")
    assert resources.identity(one / "imgs") == resources.identity(two / "imgs")
    (two / "imgs" / "cat" / "0.png").write_bytes(b"other")
    assert resources.identity(one / "imgs") != resources.identity(two / "imgs")
    before = resources.sha256_tree(one / "imgs")
    (one / "imgs" / "cat" / "0.png").rename(
        one / "imgs" / "cat" / "1.png"
    )  # names are part of a folder's content
    assert resources.sha256_tree(one / "imgs") != before
