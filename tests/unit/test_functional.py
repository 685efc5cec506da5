"""The functional executor and the values computed by the simulated hardware, against the torch oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from toy_fixtures import toy_build

from archsim.arch.loader import load_arch
from archsim.functional.arithmetic import Arithmetic, DatapathError, ShiftAddArithmetic, exact_matmul
from archsim.functional.compare import compare_values
from archsim.functional.executor import (
    Executor,
    FunctionalError,
    default_input,
    missing_integer_parameters,
    quantize_input,
)
from archsim.graph.ir import layers
from archsim.numerics import integer as qi
from archsim.quant.integer_model import IntegerModel
from archsim.sim import simulate

CONFIGS = Path(__file__).resolve().parents[2] / "arch_configs"
ARCH_OF = {
    "m2q": "m2vit",
    "all_apot": "m2vit",
    "m2q_apot8": None,
    "uniform_w8a8": "uniform_int8",
    "uniform_w8a8_plain": "uniform_int8",
}


def _oracle(policy: str, image: np.ndarray) -> dict[str, np.ndarray]:
    q, graph = toy_build(policy)
    _, integers = IntegerModel(q.folded, graph).run(torch.from_numpy(image))
    return integers


def _order(graph) -> list[str]:
    return [layer.name for layer in layers(graph)]


@pytest.mark.parametrize("policy", sorted(ARCH_OF))
def test_executor_equals_the_torch_oracle_on_every_layer(policy):
    _, graph = toy_build(policy)
    image, _ = default_input(graph)
    values = Executor(graph).run(quantize_input(graph, image))
    check = compare_values(values, _oracle(policy, image), ["input"] + _order(graph), "IntegerModel")
    assert check["mismatches"] == 0 and check["layers_checked"] == graph.number_of_nodes() + 1


@pytest.mark.parametrize("policy", [p for p, a in sorted(ARCH_OF.items()) if a])
def test_simulated_tiles_compute_the_oracles_values(policy):
    _, graph = toy_build(policy)
    spec = load_arch(CONFIGS / f"{ARCH_OF[policy]}.yaml")
    result = simulate(graph, spec)
    image, _ = default_input(graph)
    check = compare_values(result.values, _oracle(policy, image), _order(graph), "IntegerModel")
    assert check["mismatches"] == 0
    assert result.functional["computed"] and result.functional["macs"] == sum(
        layer.macs for layer in layers(graph)
    )
    logits = result.functional["outputs"]["head.classifier.4"]
    assert logits["kind"] == "accumulators" and logits["shape"] == [1, 10]
    assert logits["values"] == result.values["head.classifier.4"].reshape(-1).tolist()
    if policy == "m2q":  # the split layers really ran on both engines
        split = [r for r in result.layers if sorted(r.engines) == ["mpma", "sat"]]
        assert split


def test_values_do_not_depend_on_the_tiling_and_timing_does_not_depend_on_values():
    _, graph = toy_build("m2q")
    spec = load_arch(CONFIGS / "m2vit.yaml")
    digests = set()
    for tiles in (
        {"min_tiles": 1, "max_tiles": 1},
        {"min_tiles": 4, "max_tiles": 16},
        {"min_tiles": 3, "max_tiles": 7},
    ):
        with_values = simulate(graph, spec.with_changes(params={**spec.params, **tiles}))
        digests.add(tuple(sorted(with_values.functional["layers_sha256"].items())))
        timing = simulate(graph, spec.with_changes(params={**spec.params, **tiles}), values=False).to_dict()
        assert timing.pop("functional") == {"computed": False, "reason": "values off (--no-functional)"}
        d = with_values.to_dict()
        d.pop("functional")
        assert d == timing
    assert len(digests) == 1


def test_a_wrong_apot_shift_on_the_sat_is_caught_at_the_first_apot_layer():
    _, graph = toy_build("m2q")
    spec = load_arch(CONFIGS / "m2vit.yaml")

    class WrongShift(ShiftAddArithmetic):
        def shift(self, values, exponent):  # the barrel shifter drops its largest position
            return np.left_shift(values, exponent - 1 if exponent == 3 else exponent)

    result = simulate(graph, spec, arithmetic={"sat": WrongShift()})
    check = compare_values(
        result.values, Executor(graph).run(result.values["input"]), _order(graph), "reference"
    )
    first_apot = next(
        layer.name
        for layer in layers(graph)
        if layer.quant.apot_mask is not None and _uses_exponent(layer, 3)
    )
    assert check["first_mismatching_layer"] == first_apot
    row = next(r for r in check["layers"] if r["layer"] == first_apot)
    assert row["mismatches"] > 0 and row["first_mismatch"] is not None
    assert all(r["mismatches"] == 0 for r in check["layers"][: _order(graph).index(first_apot)])


def _uses_exponent(layer, e) -> bool:
    w = layer.quant.weight_int[layer.quant.apot_mask]
    return bool(((np.abs(w) >> e) & 1).any())


def test_a_wrong_requantization_shift_on_the_vector_unit_is_caught_at_the_first_vector_layer():
    _, graph = toy_build("m2q")
    spec = load_arch(CONFIGS / "m2vit.yaml")

    class OffByOne(Arithmetic):
        def requant_shift(self, shift):
            return shift + 1

    result = simulate(graph, spec, arithmetic={"vector": OffByOne()})
    check = compare_values(
        result.values, Executor(graph).run(result.values["input"]), _order(graph), "reference"
    )
    first_vector = next(r.name for r in result.layers if r.engines == ["vector"])
    assert first_vector == "ds.add"  # the DSConv residual: not the first layer
    assert check["first_mismatching_layer"] == first_vector


def test_incomplete_or_premature_tiles_are_errors_naming_the_layer():
    _, graph = toy_build("m2q")
    image, _ = default_input(graph)
    ex = Executor(graph)
    ex.set_input(quantize_input(graph, image))
    with pytest.raises(FunctionalError, match="ds.main.depth_conv: operand 0 reads 'stem'"):
        ex.begin_layer("ds.main.depth_conv")  # its producer has not run
    stem = next(layer for layer in layers(graph) if layer.name == "stem")
    ex.compute("stem", Arithmetic(), np.arange(8), (0, 256))  # half the filters
    with pytest.raises(FunctionalError, match="stem: a tile recomputes"):
        ex.compute("stem", Arithmetic(), np.arange(4, 6), (0, 10))
    with pytest.raises(FunctionalError, match=r"stem: 2048 of 4096 output elements were never computed"):
        ex.end_layer("stem")
    assert stem.out_shape == (1, 16, 16, 16)


def test_shift_add_equals_multiplication_on_apot_codes_and_refuses_other_codes():
    codes = np.array([qi.apot_level_codes(4)[i] * s for i in range(8) for s in (1, -1)]).reshape(2, 8)
    x = np.random.default_rng(0).integers(0, 256, size=(8, 5))
    sat, mac = ShiftAddArithmetic(), Arithmetic()
    assert np.array_equal(
        sat.dot(sat.load_weights(codes), x.astype(np.float32), 255),
        mac.dot(mac.load_weights(codes), x.astype(np.float32), 255),
    )
    assert np.array_equal(mac.dot(mac.load_weights(codes), x.astype(np.float32), 255), codes @ x)
    with pytest.raises(DatapathError, match="more than two set bits"):
        sat.load_weights(np.array([[7]]))  # 0b111: not an APoT level
    with pytest.raises(DatapathError, match="needs multipliers"):
        sat.matmul(np.ones((2, 2), int), np.ones((2, 2), int))


def test_exact_matmul_stays_exact_beyond_float_precision():
    a = np.array([[2**40 + 1, 3]], dtype=np.int64)
    b = np.array([[2**20 + 7], [5]], dtype=np.int64)  # the product needs 61 bits: float64 would round
    assert exact_matmul(a, b)[0, 0] == (2**40 + 1) * (2**20 + 7) + 15
    f32 = exact_matmul(np.array([[127] * 64]), np.full((64, 1), 255))  # 2^21: float32 path, exact
    assert f32[0, 0] == 127 * 255 * 64


def test_fp32_graphs_are_timing_only_with_the_reason():
    _, graph = toy_build("fp32")
    assert (
        missing_integer_parameters(graph)
        == "layer stem is not quantized (an fp32 policy has no integer datapath)"
    )
    with pytest.raises(
        FunctionalError, match="needs every layer's integer parameters: layer stem is not quantized"
    ):
        Executor(graph)
