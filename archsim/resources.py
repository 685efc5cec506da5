"""Inputs by name or by path: workloads, architecture configs, quantization policies.

Three *kinds* of input, each with a folder of bundled YAML files shipped inside the package:

=========  ==========================  ====================  ===========================
kind       bundled folder              user subfolder        example name
=========  ==========================  ====================  ===========================
workload   archsim/data/workloads/     workloads/            efficientvit_b1
arch       archsim/data/arch/          arch_configs/         m2vit
policy     archsim/quant/policies/     policies/             m2q
=========  ==========================  ====================  ===========================

A reference is a **path** when it ends in ``.yaml``/``.yml`` or contains a directory separator
(relative paths are relative to the current directory, or to the YAML file that names them),
otherwise a **name**, looked up in order in:

1. the folders given on the command line (``--path DIR``, repeatable), then
2. the folders of the ``ARCHSIM_PATH`` environment variable (``os.pathsep``-separated), then
3. the bundled folder.

In a user folder, ``<folder>/<user subfolder>/NAME.yaml`` is found (the repository's own
layout, so a checkout is a valid user folder), and so is ``<folder>/NAME.yaml`` when its top-level
keys show it is of the kind looked for (:func:`kind_of`). The first match wins, so a user file
can stand in for a bundled one of the same name; results identify inputs by name *and* sha256
content digest, so the two are never confused. The current directory is not searched for
names: a command means the same in every folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from archsim.configfile import did_you_mean
from archsim.errors import ConfigError

PATH_ENV = "ARCHSIM_PATH"
KINDS = ("workload", "arch", "policy")
WHAT = {"workload": "workload", "arch": "architecture config", "policy": "quantization policy"}
SUBDIRS = {"workload": "workloads", "arch": "arch_configs", "policy": "policies"}
SUFFIXES = (".yaml", ".yml")
BUNDLED = "bundled"  # the origin of a bundled resource
DESCRIPTION_CHARS = 100  # [choice] one-line description shown by `archsim list`
_CHUNK = 1 << 20  # [choice] bytes read at a time when hashing a file (memory, not results, depends on it)


class ResourceError(ConfigError):
    """A name that no search folder holds, or a path that does not exist.

    ``reason`` is the message without the reference (for ``file:line: field: value: reason``).
    """

    def __init__(self, kind: str, ref: object, reason: str, message: str | None = None):
        super().__init__(message or f"{WHAT[kind]} {str(ref)!r}: {reason}")
        self.kind, self.ref, self.reason = kind, ref, reason


def _package_dir(*parts: str) -> Path:
    # importlib.resources finds the installed package wherever it is; archsim is installed as
    # plain files (wheel or editable), so the traversable is a real folder
    return Path(str(files("archsim").joinpath(*parts)))


def bundled_dir(kind: str) -> Path:
    """The folder of the bundled files of ``kind``."""
    return {
        "workload": lambda: _package_dir("data", "workloads"),
        "arch": lambda: _package_dir("data", "arch"),
        "policy": lambda: _package_dir("quant", "policies"),
    }[kind]()


@dataclass(frozen=True)
class Resource:
    """One named input: its kind, name, file and where it was found ("bundled" or the folder)."""

    kind: str
    name: str
    path: Path
    origin: str

    @property
    def bundled(self) -> bool:
        return self.origin == BUNDLED


def looks_like_path(ref: object) -> bool:
    """True for a path reference (a .yaml/.yml name or anything with a directory part)."""
    if isinstance(ref, os.PathLike):
        return True
    return isinstance(ref, str) and (ref.endswith(SUFFIXES) or "/" in ref or os.sep in ref)


def user_folders(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The user folders searched before the bundled ones: ``extra`` (--path) then ARCHSIM_PATH."""
    found = [Path(p).expanduser() for p in extra]
    found += [Path(p).expanduser() for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p.strip()]
    out, seen = [], set()
    for folder in found:
        key = folder.resolve() if folder.exists() else folder
        if key not in seen:
            seen.add(key)
            out.append(folder)
    return out


def kind_of(path: Path) -> str | None:
    """The kind of a YAML file from its top-level keys (None when it is none of them or unreadable)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    if "engines" in data or "clock" in data:
        return "arch"
    if "model" in data:
        return "workload"
    if {"quantized", "base", "act_bits", "depthwise", "pointwise"} & data.keys():
        return "policy"
    return None


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def _candidates(kind: str, extra: Sequence[str | os.PathLike]) -> Iterable[Resource]:
    """Every file of ``kind`` in search order (a name may come more than once)."""
    for folder in user_folders(extra):
        for path in _yaml_files(folder / SUBDIRS[kind]):
            yield Resource(kind, path.stem, path, str(folder))
        for path in _yaml_files(folder):
            if kind_of(path) == kind:
                yield Resource(kind, path.stem, path, str(folder))
    for path in _yaml_files(bundled_dir(kind)):
        yield Resource(kind, path.stem, path, BUNDLED)


def available(kind: str, extra: Sequence[str | os.PathLike] = ()) -> list[Resource]:
    """The resources of ``kind`` a name can reach, the first of each name (search order, then name)."""
    first: dict[str, Resource] = {}
    for res in _candidates(kind, extra):
        first.setdefault(res.name, res)
    return list(first.values())


def shadowed(kind: str, extra: Sequence[str | os.PathLike] = ()) -> list[Resource]:
    """Files that a name cannot reach because an earlier folder has the same name."""
    seen: set[str] = set()
    hidden = []
    for res in _candidates(kind, extra):
        if res.name in seen:
            hidden.append(res)
        seen.add(res.name)
    return hidden


def names(kind: str, extra: Sequence[str | os.PathLike] = ()) -> list[str]:
    return sorted(r.name for r in available(kind, extra))


def find(kind: str, name: str, extra: Sequence[str | os.PathLike] = ()) -> Resource | None:
    """The resource a name refers to, or None."""
    for res in _candidates(kind, extra):
        if res.name == name:
            return res
    return None


def unknown(kind: str, name: str, extra: Sequence[str | os.PathLike] = ()) -> ResourceError:
    """The error for a name no folder holds: the nearest name, every known name, where to add one."""
    known = names(kind, extra)
    folders = [str(f) for f in user_folders(extra)]
    where = f"searched {', '.join(folders)}, then the bundled ones" if folders else "bundled only"
    reason = (
        f"{did_you_mean(name, known)}known: {', '.join(known) or 'none'} ({where}; `archsim list` "
        f"describes each; add a folder with --path DIR or {PATH_ENV}, or give a YAML path)"
    )
    return ResourceError(kind, name, "unknown name; " + reason, f"unknown {WHAT[kind]} {name!r}; {reason}")


def resolve(
    kind: str, ref: str | os.PathLike, *, base: Path | None = None, extra: Sequence[str | os.PathLike] = ()
) -> Path:
    """The file ``ref`` (a name or a path) refers to; :class:`ResourceError` when there is none.

    A relative path is relative to ``base`` (the folder of the YAML that names it) or, without
    ``base``, to the current directory. The returned path is as found (not resolved), so messages
    can name it the way the user wrote it.
    """
    if looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if path.is_file():
            return path
        stem = Path(ref).stem if Path(str(ref)).suffix in SUFFIXES else None
        hint = ""
        if stem and find(kind, stem, extra):
            article = "an" if WHAT[kind][0] in "aeiou" else "a"
            hint = f"; {article} {WHAT[kind]} named {stem!r} exists: give the name {stem} instead of a path"
        what = "is a directory, not a YAML file" if path.is_dir() else "file not found"
        looked = f" (looked for {path})" if str(path) != str(ref) else ""
        raise ResourceError(kind, ref, f"{what}{looked}{hint}")
    if not isinstance(ref, str) or not ref.strip():
        raise ResourceError(kind, ref, "not a name or a path")
    res = find(kind, ref, extra)
    if res is None:
        raise unknown(kind, ref, extra)
    return res.path


# -- descriptions and digests -----------------------------------------------------------------


def one_line(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text or "").strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 3].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "..."


def description(path: Path) -> str:
    """The one-line description of a YAML file (its ``description:``), or why it has none."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "(cannot be read as YAML: `archsim validate` says why)"
    value = data.get("description") if isinstance(data, dict) else None
    return one_line(value) if isinstance(value, str) and value.strip() else "(no description)"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(folder: str | os.PathLike) -> str:
    """sha256 over every file below ``folder``: relative path and content digest, in sorted order."""
    root = Path(folder)
    manifest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        manifest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return manifest.hexdigest()


def identity(path: str | os.PathLike) -> dict:
    """How a result names an input file or folder: its base name and sha256 (never its location)."""
    p = Path(path)
    return {"name": p.name, "sha256": sha256_tree(p) if p.is_dir() else sha256_file(p)}
