"""A sweep's output folder: nothing finished is ever lost.

Layout of ``DIR``:

- ``points/<hash>.json``: one file per finished point, written atomically (temporary name, then
  rename) as it finishes: its parameters, status, error and the full result (the JSON of
  ``archsim run --out``). These files are the record; everything else is derived from them.
- ``results.csv``: one row per finished point (point number, block, hash, status, error, the
  parameters, the derived columns, the metrics). A row is appended (and flushed) as each point
  finishes; the file is rewritten in point order from the point files at the start and at the end
  of every run, and whenever a new column appears (always atomically).
- ``columns.json``: the unit or meaning of every column.
- ``sweep.yaml``: a copy of the sweep file last run here.

Why CSV and not Parquet: a row can be appended the moment a point finishes (a Parquet file is
written whole), any tool reads it, and a sweep's table is small (thousands of rows); the full
results are in the JSON files anyway. pandas reads it back (:func:`read_table`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from archsim.report.writers import write_json

POINTS = "points"
TABLE = "results.csv"
COLUMNS = "columns.json"
SWEEP_COPY = "sweep.yaml"
FIXED_COLUMNS = ("point", "block", "hash", "status", "error")
FIXED_UNITS = {
    "point": "index of the point in the sweep (from 0)",
    "block": "the sweep block the point belongs to",
    "hash": "sha256 of the point's parameters and input digests (its file is points/<hash>.json)",
    "status": "ok, or failed (see error)",
    "error": "why the point failed (empty when ok)",
}


def cell(value: Any) -> Any:
    """A parameter value as a CSV cell: strings and numbers as they are, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return value
    return json.dumps(value, sort_keys=True)


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """The output folder of one sweep (created if absent)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.points = self.folder / POINTS
        self.table = self.folder / TABLE
        self.columns: list[str] = []
        try:
            self.points.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            from archsim.errors import RunError

            raise RunError(
                f"cannot create {self.points}: {err.strerror or err}; choose another --out"
            ) from err

    def point_file(self, point_hash: str) -> Path:
        return self.points / f"{point_hash}.json"

    def load(self, point_hash: str) -> dict | None:
        """The record of a finished point, or None (absent; a damaged file is deleted: run it again)."""
        path = self.point_file(point_hash)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or record.get("hash") != point_hash:
                raise ValueError("not a point record")
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        return record

    def save(self, record: dict) -> Path:
        return write_json(record, self.point_file(record["hash"]))

    def copy_sweep(self, data: bytes | None) -> None:
        if data is not None:
            (self.folder / SWEEP_COPY).write_bytes(data)

    def write_table(self, rows: Iterable[dict], columns: Sequence[str], units: dict[str, str]) -> None:
        """Rewrite results.csv with ``rows`` (already in point order) and columns.json."""
        self.columns = list(columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="raise", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        _atomic_text(self.table, buffer.getvalue())
        _atomic_text(
            self.folder / COLUMNS, json.dumps({c: units.get(c, "") for c in self.columns}, indent=1) + "\n"
        )

    def append(self, row: dict) -> bool:
        """Append one row (flushed to disk); False when it has a column the table lacks (rewrite it)."""
        if not set(row) <= set(self.columns) or not self.table.exists():
            return False
        with open(self.table, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, lineterminator="\n").writerow(row)
            f.flush()
            os.fsync(f.fileno())
        return True


def read_table(folder: str | os.PathLike):
    """results.csv of a sweep folder as a pandas DataFrame (hash and error as text)."""
    import pandas

    path = Path(folder) / TABLE
    if not path.is_file():
        from archsim.errors import ConfigError

        raise ConfigError(
            f"{folder}: not a sweep folder (no {TABLE}; `archsim sweep SWEEP.yaml --out {folder}` writes one)"
        )
    return pandas.read_csv(
        path,
        dtype={"hash": str, "error": str, "block": str, "status": str},
        keep_default_na=False,
        na_values=[""],
    )
