"""`archsim run` computes values by default;
--check, --dump-values and --no-functional behave as documented."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archsim.cli import main
from archsim.functional.arithmetic import ShiftAddArithmetic

RUN = ["run", "efficientvit_b0", "m2vit", "--no-baseline"]


def test_check_is_bit_exact_and_dump_has_every_layer(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main([*RUN, "--check", "--dump-values", str(tmp_path / "vals"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 mismatches (bit-exact)" in printed
    result = json.loads(out.read_text())
    check = result["checks"]["functional"]
    assert check["layers_checked"] == 78 and check["mismatches"] == 0 and check["held"]
    assert len(check["layers"]) == 78 and all(row["mismatches"] == 0 for row in check["layers"])
    logits = result["functional"]["outputs"]["head.classifier.4"]
    dump = np.load(tmp_path / "vals" / "efficientvit_b0_m2vit_m2q.npz")
    assert len(dump.files) == 78  # the input codes and every layer
    assert dump["head.classifier.4"].reshape(-1).tolist() == logits["values"]


def test_a_wrong_sat_shift_fails_the_check_at_the_first_apot_layer(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        ShiftAddArithmetic, "shift", lambda self, v, e: np.left_shift(v, e + 1 if e == 3 else e)
    )
    out = tmp_path / "r.json"
    assert main([*RUN, "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    check = json.loads(out.read_text())["checks"]["functional"]  # written before failing: nothing is lost
    assert check["mismatches"] > 0 and not check["held"]
    first = check["first_mismatching_layer"]
    assert f"first at layer {first}" in err
    assert all(
        row["mismatches"] == 0
        for row in check["layers"][: [r["layer"] for r in check["layers"]].index(first)]
    )


def test_no_functional_gives_the_same_result_without_values(tmp_path):
    with_values, without = tmp_path / "a.json", tmp_path / "b.json"
    assert main([*RUN, "--out", str(with_values)]) == 0
    assert main([*RUN, "--no-functional", "--out", str(without)]) == 0
    a, b = json.loads(with_values.read_text()), json.loads(without.read_text())
    assert a.pop("functional")["computed"] and b.pop("functional") == {
        "computed": False,
        "reason": "values off (--no-functional)",
    }
    assert a == b


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--no-functional", "--check"], "not allowed with argument"),
        (["--no-functional", "--dump-values", "d"], "--dump-values needs values"),
    ],
)
def test_contradictory_value_options_are_usage_errors(argv, message, capsys):
    code = None
    try:
        code = main([*RUN, *argv])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
