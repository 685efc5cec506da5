"""The graph cache: keyed by what determines a graph, atomic, and never trusting a damaged or stale entry."""

from __future__ import annotations

import dataclasses
import json

import pytest
from toy_fixtures import toy_build

from archsim import cache, flow
from archsim.graph.io import save_graph
from archsim.workload.config import Calibration, Workload


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "c"))
    return tmp_path / "c" / cache.GRAPHS


@pytest.fixture
def graph():
    return toy_build("m2q")[1]


WORKLOAD = Workload(
    name="toy",
    model="efficientvit_b0",
    resolution=64,
    policy="m2q",
    calibration=Calibration(samples=2, batch_size=2),
)


def _graph_bytes(g, tmp_path) -> bytes:
    return save_graph(g, tmp_path / "ref.archsim-graph").read_bytes()


def test_the_folder_follows_the_environment_variable_then_the_platform(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine" / "graphs"
    monkeypatch.delenv(cache.CACHE_ENV)
    from platformdirs import user_cache_path

    assert cache.cache_dir() == user_cache_path("archsim", appauthor=False) / "graphs"


def test_the_key_changes_with_what_determines_the_graph_and_not_with_the_name():
    key = cache.cache_key(cache.key_material(WORKLOAD))
    changed = [
        dataclasses.replace(WORKLOAD, resolution=96),
        dataclasses.replace(WORKLOAD, policy="uniform_w8a8"),
        dataclasses.replace(WORKLOAD, seed=1),
        dataclasses.replace(WORKLOAD, batch=2),
        dataclasses.replace(WORKLOAD, calibration=Calibration(samples=4, batch_size=2)),
        dataclasses.replace(WORKLOAD, model="efficientvit_b1"),
    ]
    keys = {cache.cache_key(cache.key_material(w)) for w in changed}
    assert len(keys) == len(changed) and key not in keys
    renamed = dataclasses.replace(WORKLOAD, name="another_name", description="other words")
    assert cache.cache_key(cache.key_material(renamed)) == key
    material = cache.key_material(WORKLOAD)
    assert material["graph_schema"] == 2 and material["workload"]["policy_files"][0]["name"] == "m2q.yaml"
    assert len(material["builder_sha256"]) == 64 and "archsim_version" in material


def test_the_key_follows_the_policy_files_contents(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("base: m2q\ndescription: one\n")
    one = cache.cache_key(cache.key_material(dataclasses.replace(WORKLOAD, policy=str(policy))))
    policy.write_text("base: m2q\ndescription: two\n")
    two = cache.cache_key(cache.key_material(dataclasses.replace(WORKLOAD, policy=str(policy))))
    assert one != two


def test_store_then_lookup_gives_the_same_graph(cache_dir, graph, tmp_path):
    assert cache.lookup(WORKLOAD) is None
    path = cache.store(WORKLOAD, graph)
    assert path.parent == cache_dir and path.name.endswith(".archsim-graph")
    got = cache.lookup(WORKLOAD)
    assert _graph_bytes(got, tmp_path) == _graph_bytes(graph, tmp_path)
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["material"] == cache.key_material(WORKLOAD)
    assert (
        manifest["graph_sha256"] == cache._sha256_file(path)
        and manifest["graph_bytes"] == path.stat().st_size
    )
    assert not list(cache_dir.glob("*.tmp")) and not list(cache_dir.glob(".*"))


def _corrupt(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda g, m: _corrupt(g), "corrupted (the graph file's sha256 differs from its manifest)"),
        (lambda g, m: g.write_bytes(g.read_bytes()[:100]), "corrupted"),
        (lambda g, m: m.write_text("{not json"), "unreadable manifest"),
        (lambda g, m: g.unlink(), "the graph file is missing"),
        (
            lambda g, m: m.write_text(
                json.dumps({**json.loads(m.read_text()), "versions": {"torch": "0.1"}})
            ),
            "stale (built with torch 0.1",
        ),
        (
            lambda g, m: m.write_text(
                json.dumps({**json.loads(m.read_text()), "material": {"graph_schema": 1}})
            ),
            "stale (its key material differs)",
        ),
    ],
)
def test_a_damaged_or_stale_entry_is_reported_deleted_and_never_used(cache_dir, graph, damage, reason):
    path = cache.store(WORKLOAD, graph)
    manifest = path.with_suffix(".json")
    damage(path, manifest)
    said = []
    assert cache.lookup(WORKLOAD, report=said.append) is None
    assert len(said) == 1 and reason in said[0] and "deleted, rebuilding it" in said[0]
    assert not path.exists() and not manifest.exists()
    assert cache.lookup(WORKLOAD, report=said.append) is None and len(said) == 1  # now simply absent


def test_a_graph_whose_file_reads_but_does_not_load_is_rebuilt(cache_dir, graph):
    path = cache.store(WORKLOAD, graph)
    path.write_bytes(b"PK not a zip")
    manifest = path.with_suffix(".json")
    data = json.loads(manifest.read_text())
    data.update(graph_sha256=cache._sha256_file(path), graph_bytes=path.stat().st_size)
    manifest.write_text(json.dumps(data))
    said = []
    assert cache.lookup(WORKLOAD, report=said.append) is None and "unreadable" in said[0]


def test_a_write_that_never_finished_leaves_nothing_to_read(cache_dir, graph, monkeypatch):
    def killed(graph, path):
        path.write_bytes(b"half a graph")
        raise KeyboardInterrupt  # the process dies while writing

    monkeypatch.setattr(cache, "save_graph", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.store(WORKLOAD, graph)
    assert list(cache_dir.iterdir()) == []  # the temporary file is gone, no entry appeared
    monkeypatch.undo()
    path = cache.store(WORKLOAD, graph)
    path.with_suffix(".json").unlink()  # a graph renamed into place, its manifest never written
    assert cache.lookup(WORKLOAD) is None and not path.exists()


def test_an_unwritable_cache_is_reported_and_the_run_goes_on(tmp_path, monkeypatch, graph):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker))
    said = []
    assert cache.store(WORKLOAD, graph, report=said.append) is None
    assert "cannot write" in said[0] and cache.CACHE_ENV in said[0]


def test_workload_graph_builds_once_then_reads_the_cache_and_rebuilds_a_corrupted_entry(
    cache_dir, graph, monkeypatch, tmp_path
):
    builds = []

    def build(workload):
        builds.append(workload)
        return graph

    monkeypatch.setattr(flow, "build_workload_graph", build)
    times = flow.StageTimes()
    first = flow.workload_graph(WORKLOAD, times)
    second = flow.workload_graph(WORKLOAD, times)
    assert len(builds) == 1 and set(times.seconds) == {"model+quantize+extract", "graph (cache)"}
    assert _graph_bytes(second, tmp_path) == _graph_bytes(first, tmp_path)
    _corrupt(cache.graph_file(WORKLOAD))
    third = flow.workload_graph(WORKLOAD)
    assert len(builds) == 2 and _graph_bytes(third, tmp_path) == _graph_bytes(graph, tmp_path)
    assert cache.lookup(WORKLOAD) is not None  # the rebuilt entry is sound
    flow.workload_graph(WORKLOAD, cache=False)
    assert len(builds) == 3  # --no-cache builds


def test_entries_and_clear(cache_dir, graph):
    cache.store(WORKLOAD, graph)
    other = dataclasses.replace(WORKLOAD, seed=5)
    cache.store(other, graph)
    _corrupt(cache.graph_file(other))
    found = {e.key: e for e in cache.entries()}
    assert len(found) == 2
    good = found[cache.cache_key(cache.key_material(WORKLOAD))]
    assert good.problem is None and good.description == "efficientvit_b0 64 px, batch 1, policy m2q, seed 0"
    assert good.bytes == good.graph_path.stat().st_size
    assert "corrupted" in found[cache.cache_key(cache.key_material(other))].problem
    (cache_dir / "unrelated.txt").write_text("not ours")
    count, size = cache.clear()
    assert count == 2 and size > 0 and [p.name for p in cache_dir.iterdir()] == ["unrelated.txt"]


def test_cache_command_lists_and_clears(cache_dir, graph, capsys):
    from archsim.cli import main

    cache.store(WORKLOAD, graph)
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"graph cache: {cache_dir} (1 entry, ")
    assert cache.cache_key(cache.key_material(WORKLOAD))[:12] in out and "efficientvit_b0 64 px" in out
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 1 cached graph(s)")
    assert list(cache.entries()) == []
