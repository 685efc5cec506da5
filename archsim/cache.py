"""The graph cache: a workload's quantized, extracted graph on disk, keyed by what determines it.

Building a graph (model, calibration, quantization, torch.fx extraction) costs about 10 s for
EfficientViT-B1; simulating it costs a fraction of a second. ``archsim run`` and sweeps therefore
read the graph from this cache when an entry for the workload exists, and write one after a
build. A cache hit never imports torch: this module and :mod:`archsim.graph.io` are torch-free.

**Key** (:func:`key_material`, :func:`cache_key`): the sha256 of a JSON document holding

- the workload's fields after overrides (:meth:`Workload.identity` without the workload file's
  own name and digest, which do not change the graph): model, resolution, batch, seed, the
  policy's name and the sha256 of its YAML and bases, the calibration settings and the sha256 of
  real calibration data, the checkpoint's sha256;
- archsim's version and the graph schema version (:data:`archsim.graph.ir.SCHEMA_VERSION`);
- the sha256 of the source code that builds graphs (:func:`builder_digest`: the ``workload``,
  ``quant``, ``frontend``, ``numerics`` and ``graph`` packages), so that an edited quantizer in a
  development checkout never meets a graph of the old code.

The torch and numpy versions the graph was built with are recorded in the entry's manifest, not in
the key, so that a graph can be used where torch is not installed (the point of a torch-free
graph); where torch is installed and its version differs, the entry is stale and rebuilt.

**Location**: ``$ARCHSIM_CACHE_DIR`` when set, else the platform's user cache folder for
``archsim`` (``platformdirs``: ``~/.cache/archsim`` on Linux, ``~/Library/Caches/archsim`` on
macOS, ``%LOCALAPPDATA%\\archsim\\Cache`` on Windows), subfolder ``graphs/``. One entry is two
files: ``<key>.archsim-graph`` (:func:`archsim.graph.io.save_graph`) and ``<key>.json``, the
manifest (key material, the graph file's sha256 and size, versions, a one-line description).

**Atomic writes**: each file is written under a temporary name in the same folder and renamed
(``os.replace``), the graph first and the manifest last; an entry counts only when its manifest
exists, so a process killed mid-write leaves no entry that could be read.

**Checks on every read**: the manifest parses and its key material equals the expected one; the
graph file's sha256 equals the manifest's; the file loads (format, schema version); the torch
version matches where torch is installed. An entry failing any check is reported (one line on
stderr, or the ``report`` callable), deleted and rebuilt by the caller, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import networkx as nx

import archsim
from archsim.graph import ir
from archsim.graph.io import SUFFIX, GraphFileError, load_graph, save_graph

CACHE_ENV = "ARCHSIM_CACHE_DIR"
APP_NAME = "archsim"  # the platformdirs application name
GRAPHS = "graphs"  # subfolder of the cache folder holding graph entries
MANIFEST_SUFFIX = ".json"
TEMP_SUFFIX = ".tmp"
LAYOUT_VERSION = 1  # [choice] version of the entry layout (manifest fields); part of the key
# the packages whose code decides a graph's contents (everything on the torch side, and the IR)
BUILDER_PACKAGES = ("workload", "quant", "frontend", "numerics", "graph")
_HASH_CHUNK = 1 << 20  # [choice] bytes read at a time when hashing a graph file

Report = Callable[[str], None]


def cache_dir() -> Path:
    """The folder of the graph entries: ``$ARCHSIM_CACHE_DIR/graphs`` or the platform cache folder's."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser() / GRAPHS
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME, appauthor=False) / GRAPHS


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# -- the key ------------------------------------------------------------------------------------

_BUILDER_DIGEST: str | None = None


def builder_digest() -> str:
    """sha256 over the source files of :data:`BUILDER_PACKAGES` (relative path and bytes, sorted)."""
    global _BUILDER_DIGEST
    if _BUILDER_DIGEST is None:
        root = Path(archsim.__file__).resolve().parent
        digest = hashlib.sha256()
        for package in BUILDER_PACKAGES:
            for path in sorted((root / package).rglob("*.py")):
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        _BUILDER_DIGEST = digest.hexdigest()
    return _BUILDER_DIGEST


def key_material(workload) -> dict[str, Any]:
    """Everything that determines the graph of ``workload`` (a :class:`Workload`), as JSON data."""
    identity = workload.identity()
    fields = {k: v for k, v in identity.items() if k not in ("name", "sha256")}
    return {
        "layout": LAYOUT_VERSION,
        "workload": fields,
        "archsim_version": archsim.__version__,
        "graph_schema": ir.SCHEMA_VERSION,
        "builder_sha256": builder_digest(),
    }


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def cache_key(material: dict[str, Any]) -> str:
    """The entry name: sha256 of the canonical JSON of ``material``."""
    return hashlib.sha256(_canonical(material)).hexdigest()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def build_versions() -> dict[str, str | None]:
    """The library versions recorded with an entry (read without importing torch)."""
    import numpy

    return {"torch": _package_version("torch"), "numpy": numpy.__version__}


# -- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One cache entry as listed: its key, what it holds, its size, and whether it reads back."""

    key: str
    description: str
    bytes: int
    problem: str | None  # None: the manifest and the file agree (the file is not loaded here)
    graph_path: Path
    manifest_path: Path


def _paths(folder: Path, key: str) -> tuple[Path, Path]:
    return folder / f"{key}{SUFFIX}", folder / f"{key}{MANIFEST_SUFFIX}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(workload) -> str:
    """One line naming the workload of an entry (for ``archsim cache list``)."""
    identity = workload.identity()
    return (
        f"{identity['model']} {identity['resolution']} px, batch {identity['batch']}, policy "
        f"{identity['policy']}, seed {identity['seed']}"
    )


def _delete(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _manifest_problem(
    manifest_path: Path, graph_path: Path, material: dict | None
) -> tuple[str | None, dict]:
    """Why the entry cannot be used without loading its graph (None when it can), and its manifest."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"unreadable manifest ({type(err).__name__})", {}
    if not isinstance(manifest, dict):
        return "unreadable manifest (not a JSON object)", {}
    if material is not None and manifest.get("material") != material:
        return "stale (its key material differs)", manifest
    if manifest.get("material", {}).get("graph_schema") != ir.SCHEMA_VERSION:
        return f"stale (graph schema {manifest.get('material', {}).get('graph_schema')!r})", manifest
    if not graph_path.is_file():
        return "the graph file is missing", manifest
    if graph_path.stat().st_size != manifest.get("graph_bytes") or _sha256_file(graph_path) != manifest.get(
        "graph_sha256"
    ):
        return "corrupted (the graph file's sha256 differs from its manifest)", manifest
    return None, manifest


def lookup(workload, report: Report | None = None) -> nx.DiGraph | None:
    """The cached graph of ``workload``, or None (no entry, or one that failed a check: reported and
    deleted, so the caller rebuilds it)."""
    report = report or _stderr
    material = key_material(workload)
    key = cache_key(material)
    graph_path, manifest_path = _paths(cache_dir(), key)
    if not manifest_path.exists():
        if graph_path.exists():  # a write that never finished: no manifest, never used
            _delete(graph_path)
        return None
    problem, manifest = _manifest_problem(manifest_path, graph_path, material)
    graph = None
    if problem is None:
        torch_now = _package_version("torch")
        built_with = manifest.get("versions", {}).get("torch")
        if torch_now is not None and built_with != torch_now:
            problem = f"stale (built with torch {built_with}, this is torch {torch_now})"
    if problem is None:
        try:
            graph = load_graph(graph_path)
        except GraphFileError as err:
            problem = f"unreadable ({err})"
    if problem is not None:
        report(f"graph cache: entry {key[:12]} ({describe(workload)}) is {problem}; deleted, rebuilding it")
        _delete(manifest_path, graph_path)
        return None
    return graph


def _atomic_write(folder: Path, final: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{final.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, final)
    except BaseException:
        _delete(tmp_path)
        raise


def store(workload, graph: nx.DiGraph, report: Report | None = None) -> Path | None:
    """Write ``graph`` as the entry of ``workload``; returns the graph file, or None when the cache
    cannot be written (reported; a run never fails because of its cache)."""
    report = report or _stderr
    material = key_material(workload)
    key = cache_key(material)
    folder = cache_dir()
    graph_path, manifest_path = _paths(folder, key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder, graph_path, lambda tmp: save_graph(graph, tmp))
        manifest = {
            "key": key,
            "material": material,
            "graph_sha256": _sha256_file(graph_path),
            "graph_bytes": graph_path.stat().st_size,
            "versions": build_versions(),
            "description": describe(workload),
        }
        _atomic_write(
            folder,
            manifest_path,
            lambda tmp: tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n"),
        )
    except OSError as err:
        report(
            f"graph cache: cannot write {folder} ({err.strerror or err}); the graph is not cached "
            f"(set {CACHE_ENV} to a writable folder)"
        )
        return None
    return graph_path


def graph_file(workload) -> Path | None:
    """The graph file of ``workload``'s entry if its manifest is present (not checked: see lookup)."""
    graph_path, manifest_path = _paths(cache_dir(), cache_key(key_material(workload)))
    return graph_path if manifest_path.exists() and graph_path.exists() else None


def entries() -> Iterator[Entry]:
    """Every entry of the cache folder, by key; each is checked against its manifest (not loaded)."""
    folder = cache_dir()
    if not folder.is_dir():
        return
    for manifest_path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")):
        key = manifest_path.name[: -len(MANIFEST_SUFFIX)]
        graph_path, _ = _paths(folder, key)
        problem, manifest = _manifest_problem(manifest_path, graph_path, None)
        size = graph_path.stat().st_size if graph_path.is_file() else 0
        yield Entry(
            key=key,
            description=str(manifest.get("description", "?")),
            bytes=size,
            problem=problem,
            graph_path=graph_path,
            manifest_path=manifest_path,
        )


def clear() -> tuple[int, int]:
    """Delete every entry and leftover temporary file; returns (entries, bytes) removed."""
    folder = cache_dir()
    if not folder.is_dir():
        return 0, 0
    count = sum(1 for _ in folder.glob(f"*{MANIFEST_SUFFIX}"))
    removed = 0
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.suffix in (SUFFIX, MANIFEST_SUFFIX) or path.name.endswith(TEMP_SUFFIX)):
            removed += path.stat().st_size
            _delete(path)
    return count, removed
