"""Result files: deterministic JSON (sorted keys, fixed float formatting by json)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "value") and hasattr(obj, "name"):  # enums
        return obj.value
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def to_json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n"


def write_json(data: dict, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so an interrupted run never leaves half a file."""
    return write_text(to_json(data), path)


def write_text(text: str | bytes, path: str | Path) -> Path:
    """Write ``text`` (str as UTF-8, or bytes) atomically: temp file + rename, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
