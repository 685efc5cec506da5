"""The bundled reference runs give exactly their pinned numbers (tests/golden/golden_metrics.json)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
import golden  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", golden.CASES, ids=[golden.case_key(*c) for c in golden.CASES])
def test_reference_run_matches_golden_metrics(case):
    pinned = golden.load()["cases"][golden.case_key(*case)]["metrics"]
    now = golden.measure(*case)
    assert now["latency_cycles"] == pinned["latency_cycles"]
    assert now["events"] == pinned["events"]
    for key in ("latency_s", "energy_j", "edp_js"):
        assert now[key] == pytest.approx(pinned[key], rel=golden.ENERGY_RTOL), key
