"""Bit-exact functional execution of whole EfficientViTs: every layer the simulated hardware computes
equals the torch oracle (issue: "0 mismatching elements at every layer")."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pytest

from archsim import flow
from archsim.frontend.build import build_workload
from archsim.frontend.oracle import check_values
from archsim.sim import simulate

CONFIGS = Path(__file__).resolve().parents[2] / "arch_configs"
CASES = [("m2q", "m2vit"), ("uniform_w8a8", "uniform_int8"), ("all_apot", "m2vit")]
B0_ONLY = [("uniform_w8a8_plain", "peer32_ws")]  # a weight-stationary array, layer by layer


@lru_cache(maxsize=None)
def _built(model: str, policy: str):
    return build_workload(flow.load_workload(model, policy=policy), quality_samples=0)


def _check(model: str, policy: str, arch: str, fusion: str | None = None) -> dict:
    built = _built(model, policy)
    spec = flow.load_arch(CONFIGS / f"{arch}.yaml")
    if fusion is not None:
        spec = spec.with_changes(memory=replace(spec.memory, fusion=fusion))
    result = simulate(built.graph, spec)
    return check_values(result.values, built.quantized, built.graph)


@pytest.mark.parametrize("policy,arch", CASES + B0_ONLY)
def test_b0_every_layer_bit_exact(policy, arch):
    check = _check("efficientvit_b0", policy, arch)
    assert check["layers_checked"] == 78  # the input codes and 77 layers
    assert check["mismatches"] == 0, check["first_mismatching_layer"]
    assert all(row["mismatches"] == 0 and row["elements"] > 0 for row in check["layers"])


@pytest.mark.parametrize("policy,arch", CASES[:2])
def test_b0_bit_exact_with_and_without_fusion(policy, arch):
    # the bundled configs fuse DW->PW pairs; the unfused schedule computes the same integers
    assert flow.load_arch(CONFIGS / f"{arch}.yaml").memory.fusion == "on"
    check = _check("efficientvit_b0", policy, arch, fusion="off")
    assert check["layers_checked"] == 78 and check["mismatches"] == 0, check["first_mismatching_layer"]


@pytest.mark.slow
@pytest.mark.parametrize("policy,arch", CASES)
def test_b1_every_layer_bit_exact(policy, arch):
    check = _check("efficientvit_b1", policy, arch)
    assert check["layers_checked"] == 118
    assert check["mismatches"] == 0, check["first_mismatching_layer"]
