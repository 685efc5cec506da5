"""save_graph / load_graph: a graph survives a file bit for bit and simulates identically."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from toy_fixtures import toy_build

from archsim.arch.loader import load_arch
from archsim.graph import io as gio
from archsim.graph.ir import layers
from archsim.sim import simulate

M2VIT = Path(__file__).resolve().parents[2] / "arch_configs" / "m2vit.yaml"


def _same(a, b, where=""):
    """Deep equality of IR values: dataclasses field by field, arrays by dtype and value."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b and type(a) is type(b), (where, a, b)


@pytest.mark.parametrize("policy", ["m2q", "uniform_w8a8", "fp32"])
def test_round_trip_is_exact_and_byte_identical(policy, tmp_path):
    _, graph = toy_build(policy)
    first = gio.save_graph(graph, tmp_path / "a.archsim-graph")
    loaded = gio.load_graph(first)
    second = gio.save_graph(loaded, tmp_path / "b.archsim-graph")
    assert first.read_bytes() == second.read_bytes()
    assert list(loaded.graph["order"]) == list(graph.graph["order"])
    assert {k: v for k, v in loaded.graph.items() if k != "order"} == {
        k: v for k, v in graph.graph.items() if k != "order"
    }
    for a, b in zip(layers(graph), layers(loaded)):
        _same(a, b, a.name)
    assert sorted(loaded.edges(data=True)) == sorted(graph.edges(data=True))


def test_weight_codes_are_stored_at_their_real_width(tmp_path):
    _, graph = toy_build("m2q")
    path = gio.save_graph(graph, tmp_path / "g.archsim-graph")
    with zipfile.ZipFile(path) as zf:
        header = {
            name: np.lib.format.read_array_header_1_0(_npy(zf, name))[2]
            for name in zf.namelist()
            if name.startswith("arrays/")
        }
    widths = {str(dtype) for dtype in header.values()}
    assert "int8" in widths  # weight codes (4-bit depthwise, 8-bit uniform, APoT codes)
    stem = next(layer for layer in layers(gio.load_graph(path)) if layer.name == "stem")
    assert stem.quant.weight_int.dtype == np.int64  # restored to the IR's dtype


def _npy(zf, name):
    import io

    f = io.BytesIO(zf.read(name))
    np.lib.format.read_magic(f)
    return f


def test_loaded_graph_simulates_identically(tmp_path):
    _, graph = toy_build("m2q")
    loaded = gio.load_graph(gio.save_graph(graph, tmp_path / "g.archsim-graph"))
    spec = load_arch(M2VIT)
    assert simulate(loaded, spec).to_dict() == simulate(graph, spec).to_dict()


def test_wrong_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.archsim-graph"
    junk.write_text("not a zip")
    with pytest.raises(gio.GraphFileError, match="junk.archsim-graph: not a readable archsim graph file"):
        gio.load_graph(junk)
    _, graph = toy_build("m2q")
    path = gio.save_graph(graph, tmp_path / "g.archsim-graph")
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    doc = json.loads(entries["graph.json"])
    doc["schema_version"] = 1
    entries["graph.json"] = json.dumps(doc).encode()
    old = tmp_path / "old.archsim-graph"
    with zipfile.ZipFile(old, "w") as zf:
        for n, data in entries.items():
            zf.writestr(n, data)
    with pytest.raises(gio.GraphFileError, match="schema version 1; this archsim reads version 2"):
        gio.load_graph(old)
