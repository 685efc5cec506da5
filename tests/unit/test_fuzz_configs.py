"""Fuzzing (hypothesis) of the architecture, workload and policy YAML loaders.

Properties:
- any document (a bundled file mutated at random: values replaced, keys deleted, added or
  renamed, text corrupted) either loads or raises the loader's own error, whose message starts
  with the file's path; never another exception;
- documents varied only within the documented ranges always load, with the values given;
- ``archsim validate`` on any of them exits 0 or 2, never 1 (an internal error).

CI runs a bounded, derandomized number of examples; ARCHSIM_FUZZ_EXAMPLES=N runs N per test
with fresh randomness (the larger run reported in the change that added this file).
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from archsim import resources
from archsim.arch.errors import ArchConfigError
from archsim.arch.loader import load_arch
from archsim.cli import main
from archsim.quant.policy import POLICIES
from archsim.quant.policy_loader import PolicyError, load_policy_file
from archsim.workload.config import WorkloadError, load_workload

LONG = int(os.environ.get("ARCHSIM_FUZZ_EXAMPLES", "0"))
EXAMPLES = LONG or 120  # [choice] per property in CI: a few seconds each
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not LONG,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)

BUNDLED = {kind: resources.bundled_dir(kind) for kind in resources.KINDS}
BASES = {
    "arch": yaml.safe_load((BUNDLED["arch"] / "m2vit.yaml").read_text()),
    "workload": yaml.safe_load((BUNDLED["workload"] / "efficientvit_b1.yaml").read_text()),
    "policy": yaml.safe_load((BUNDLED["policy"] / "m2q.yaml").read_text()),
}
LOADERS = {
    "arch": (load_arch, ArchConfigError),
    "workload": (load_workload, WorkloadError),
    "policy": (load_policy_file, PolicyError),
}
WORDS = [
    "200 MHz",
    "300 MHz",
    "64 KiB",
    "19.2 GB/s",
    "1 pJ",
    "2 cycles",
    "-3 pJ/B",
    "5 furlong",
    "1e400 Hz",
    "m2q",
    "uniform_w8a8",
    "uniform",
    "apot",
    "float",
    "conv_pointwise",
    "mac_array",
    "synthetic",
    "b1",
    "mac_int8",
    "bram_read",
    "[I] sourced",
    "assumed: x",
    "../x.yaml",
    "/",
    "uniform_int8.yaml",
    "",
]
KEYS = sorted(
    {k for base in BASES.values() for k in base}
    | {"rows", "lanes", "modes", "bits", "samples", "min_tiles", "max_tiles", "<<"}
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.sampled_from(KEYS), st.integers()), inner, max_size=4
        ),
    ),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _parent(doc: Any, path: tuple):
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw, kind: str) -> str:
    """A bundled document with 0-4 random mutations, as YAML text (sometimes corrupted)."""
    doc = copy.deepcopy(BASES[kind])
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add", "rename"]))
        if not path:
            if op == "replace":
                doc = draw(values)
            continue
        parent = _parent(doc, path)
        if op == "replace":
            parent[path[-1]] = draw(values)
        elif op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = draw(values)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = parent.pop(path[-1])
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()) and text:
        at = draw(st.integers(0, len(text)))
        junk = draw(
            st.one_of(
                st.text(max_size=6),
                st.sampled_from(
                    ["\n", ": ", "- ", "{", "[", "&a ", "*a", "!!python/object ", "\t", "'", "\n  x: 1"]
                ),
            )
        )
        text = text[:at] + junk + text[at + draw(st.integers(0, 3)) :]
    if draw(st.booleans()):  # a duplicated line (duplicated keys)
        lines = text.splitlines(keepends=True)
        if lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: i + 1] + lines[i:])
    return text


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    shutil.copy(BUNDLED["arch"] / "uniform_int8.yaml", path)  # the baseline m2vit.yaml names
    return path


def _write(folder: Path, text: str) -> Path:
    path = folder / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def _load_or_own_error(kind: str, path: Path) -> None:
    load, error = LOADERS[kind]
    try:
        load(path)
        event("loaded")  # hypothesis statistics show the share of valid and invalid documents
    except error as err:
        assert str(err).startswith(str(path)), str(err)
        assert "Traceback" not in str(err)
        event(
            f"{error.__name__}: {len(err.problems)} problem(s)"
            if len(err.problems) < 4
            else f"{error.__name__}: 4+ problems"
        )


@pytest.mark.parametrize("kind", resources.KINDS)
@FUZZ
@given(data=st.data())
def test_mutated_documents_load_or_raise_the_loaders_error(kind, folder, data):
    _load_or_own_error(kind, _write(folder, data.draw(mutated(kind))))


@pytest.mark.parametrize("kind", resources.KINDS)
@FUZZ
@given(doc=values)
def test_any_yaml_value_as_a_whole_document(kind, folder, doc):
    _load_or_own_error(kind, _write(folder, yaml.safe_dump(doc, allow_unicode=True)))


CLOCKS = ["100 MHz", "200 MHz", "250 MHz", "500 MHz", "1 GHz", "125 MHz"]


@FUZZ
@given(
    rows=st.integers(1, 4096),
    lanes=st.integers(1, 512),
    fill=st.integers(0, 64),
    clock=st.sampled_from(CLOCKS),
    kib=st.integers(1, 1 << 16),
    min_tiles=st.integers(1, 64),
)
def test_architectures_varied_within_range_always_load(folder, rows, lanes, fill, clock, kib, min_tiles):
    doc = copy.deepcopy(BASES["arch"])
    doc["engines"]["sat"].update(rows=rows, pipeline_cycles=fill)
    doc["engines"]["mpma"]["modes"]["merged"]["lanes"] = lanes
    doc["clock"] = clock
    doc["buffers"]["act_buffer"]["capacity"] = f"{kib} KiB"
    doc["params"] = {"min_tiles": min_tiles}
    spec = load_arch(_write(folder, yaml.safe_dump(doc)))
    assert spec.engine("sat").rows == rows and spec.engine("sat").pipeline_cycles == fill
    assert spec.engine("mpma").mode("merged").lanes == lanes
    assert spec.buffer_for("activations").capacity_bytes == kib * 1024
    assert spec.params.min_tiles == min_tiles and spec.clock_period_ps * spec.clock_hz == pytest.approx(1e12)


@FUZZ
@given(
    resolution=st.integers(2, 32).map(lambda n: 32 * n),
    batch=st.integers(1, 256),
    seed=st.integers(0, 2**62),
    policy=st.sampled_from(sorted(POLICIES)),
    samples=st.integers(1, 512),
    model=st.sampled_from(["b0", "B3", "efficientvit-b2", "EfficientViT_B1"]),
)
def test_workloads_varied_within_range_always_load(folder, resolution, batch, seed, policy, samples, model):
    doc = {
        "model": model,
        "resolution": resolution,
        "batch": batch,
        "seed": seed,
        "policy": policy,
        "calibration": {"samples": samples},
    }
    wl = load_workload(_write(folder, yaml.safe_dump(doc)))
    assert (wl.resolution, wl.batch, wl.seed, wl.policy, wl.calibration.samples) == (
        resolution,
        batch,
        seed,
        policy,
        samples,
    )
    assert wl.model.startswith("efficientvit_b") and wl.model[-1] == model[-1]


@FUZZ
@given(
    act_bits=st.integers(2, 16),
    dw=st.integers(2, 8),
    apot=st.integers(3, 8),
    tolerance=st.floats(1e-6, 1e6),
    fraction=st.none() | st.floats(0, 1),
    base=st.none() | st.sampled_from(sorted(POLICIES)),
)
def test_policies_varied_within_range_always_load(folder, act_bits, dw, apot, tolerance, fraction, base):
    doc = {
        "act_bits": act_bits,
        "depthwise": {"bits": dw},
        "pointwise": {"mixed_apot": True, "apot_only": False, "per_channel": True, "apot_bits": apot},
        "apot_mse_tolerance": tolerance,
        "apot_target_fraction": fraction,
        "quantized": True,
    }
    if base is not None:
        doc["base"] = base
    policy = load_policy_file(_write(folder, yaml.safe_dump(doc)))
    assert (policy.act_bits, policy.depthwise.bits, policy.pointwise.apot_bits) == (act_bits, dw, apot)
    assert policy.apot_mse_tolerance == tolerance and policy.apot_target_fraction == fraction


@pytest.mark.parametrize("kind", resources.KINDS)
@settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
@given(data=st.data())
def test_validate_never_fails_internally(kind, folder, capsys, data):
    path = _write(folder, data.draw(mutated(kind)))
    assert main(["validate", "--kind", kind, str(path)]) in (0, 2)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err
