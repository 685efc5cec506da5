"""Save a graph to one file and load it back, without torch, bit for bit.

Format (``.archsim-graph``, a zip archive): ``graph.json`` holds the graph attributes and the
layers in execution order, every IR object tagged with its type (``{"$type": "Layer", ...}``),
enums as ``{"$enum": "OpKind", "value": "conv_dense"}``, tuples as ``{"$tuple": [...]}`` and
arrays as references ``{"$array": "a12", "dtype": "int64"}`` to ``arrays/a12.npy``. Integer
arrays are stored at the narrowest width that holds their values (weight codes as int8,
APoT codes as int8 or int32) and restored to their original dtype on load. Floats keep their
exact value (JSON ``repr`` round trip, ``.npy`` bytes). Entries are written in a fixed order
with fixed timestamps, so saving a loaded graph gives the same bytes again. Edges are not
stored: they are rebuilt from each layer's ``producers`` by :func:`archsim.graph.ir.add_layer`.

The reader refuses a file of another format or schema version with a clear error
(:class:`GraphFileError`) instead of guessing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from enum import Enum
from pathlib import Path

import networkx as nx
import numpy as np

from archsim.graph import access, ir
from archsim.numerics.integer import Rounding
from archsim.numerics.integer_norm import LayerNormParams

FORMAT = "archsim-graph"
SUFFIX = ".archsim-graph"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # [choice] fixed entry timestamps: identical graphs give identical files
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 1  # [choice] fast; weight codes still shrink (4-bit values in int8 bytes)

_DATACLASSES = {
    cls.__name__: cls
    for cls in (
        ir.Layer,
        ir.QuantInfo,
        ir.Operand,
        ir.DivAttrs,
        ir.NormAttrs,
        ir.OutputRefinement,
        LayerNormParams,
        *access.STEP_TYPES,
    )
}
_ENUMS = {cls.__name__: cls for cls in (ir.OpKind, ir.Scheme, ir.Epilogue, ir.Role, ir.Denominator, Rounding)}
_NARROW = (np.int8, np.int16, np.int32, np.int64)


class GraphFileError(ValueError):
    """A graph file that is not an archsim graph of this schema version, or is damaged."""


def save_graph(graph: nx.DiGraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path``; returns the path."""
    path = Path(path)
    arrays: list[tuple[str, np.ndarray]] = []
    doc = {
        "format": FORMAT,
        "schema_version": ir.SCHEMA_VERSION,
        "graph": _encode({k: v for k, v in sorted(graph.graph.items()) if k != "order"}, arrays),
        "layers": [_encode(layer, arrays) for layer in ir.layers(graph)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=COMPRESSION, compresslevel=COMPRESS_LEVEL) as zf:
        _write(zf, "graph.json", json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
        for key, array in arrays:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            _write(zf, f"arrays/{key}.npy", buffer.getvalue())
    return path


def load_graph(path: str | Path) -> nx.DiGraph:
    """Read a graph written by :func:`save_graph`."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            doc = json.loads(zf.read("graph.json"))
            arrays = {
                name[len("arrays/") : -len(".npy")]: np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
                for name in zf.namelist()
                if name.startswith("arrays/")
            }
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise GraphFileError(f"{path}: not a readable archsim graph file ({exc})") from exc
    if doc.get("format") != FORMAT:
        raise GraphFileError(f"{path}: format {doc.get('format')!r} is not {FORMAT!r}")
    if doc.get("schema_version") != ir.SCHEMA_VERSION:
        raise GraphFileError(
            f"{path}: graph schema version {doc.get('schema_version')!r}; this archsim reads "
            f"version {ir.SCHEMA_VERSION} (rebuild the graph)"
        )
    try:
        attrs = _decode(doc["graph"], arrays)
        graph = ir.new_graph(**{k: v for k, v in attrs.items() if k != "schema_version"})
        for entry in doc["layers"]:
            layer = _decode(entry, arrays)
            ir.add_layer(graph, layer, list(layer.producers))
    except (KeyError, TypeError, ValueError) as exc:
        raise GraphFileError(f"{path}: damaged graph file ({exc})") from exc
    return graph


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = COMPRESSION
    info.external_attr = 0o644 << 16
    zf.writestr(info, data, compress_type=COMPRESSION, compresslevel=COMPRESS_LEVEL)


def _narrowest(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in "iu" or array.size == 0:
        return array
    lo, hi = int(array.min()), int(array.max())
    for dtype in _NARROW:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return array.astype(dtype)
    return array


def _encode(value, arrays: list):
    if isinstance(value, Enum):
        return {"$enum": type(value).__name__, "value": value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in _DATACLASSES:
            raise TypeError(f"save_graph: no encoding for {name}")
        out = {"$type": name}
        for f in dataclasses.fields(value):
            out[f.name] = _encode(getattr(value, f.name), arrays)
        return out
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays.append((key, np.ascontiguousarray(_narrowest(value))))
        return {"$array": key, "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("save_graph: dictionary keys must be strings")
        return {k: _encode(v, arrays) for k, v in sorted(value.items())}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_graph: no encoding for {type(value).__name__}")


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "$enum" in value:
        return _ENUMS[value["$enum"]](value["value"])
    if "$array" in value:
        array = arrays[value["$array"]].astype(np.dtype(value["dtype"]), copy=False)
        return array
    if "$tuple" in value:
        return tuple(_decode(v, arrays) for v in value["$tuple"])
    if "$type" in value:
        cls = _DATACLASSES[value["$type"]]
        fields = {k: _decode(v, arrays) for k, v in value.items() if k != "$type"}
        return cls(**fields)
    return {k: _decode(v, arrays) for k, v in value.items()}
