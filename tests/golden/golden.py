"""Golden metrics: latency, energy and EDP pinned per (model, arch, policy), with provenance.

``golden_metrics.json`` holds one entry per case. A change to any number must be deliberate:
regenerate with ``python tests/golden/golden.py "why the numbers changed"`` and explain the
change in the commit that updates the file (the note is stored with the entry).
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOLDEN_FILE = Path(__file__).with_name("golden_metrics.json")

# (model, arch YAML, policy): the bundled reference runs of both designs and both energy tables
CASES = [
    (model, arch, policy)
    for model in ("efficientvit_b0", "efficientvit_b1")
    for arch, policy in (
        ("m2vit", "m2q"),
        ("uniform_int8", "uniform_w8a8"),
        ("m2vit_asic28", "m2q"),
        ("uniform_int8_asic28", "uniform_w8a8"),
    )
]
ENERGY_RTOL = 1e-9  # float sums in a fixed order; only a model change moves them beyond this


def case_key(model: str, arch: str, policy: str) -> str:
    return f"{model}/{arch}/{policy}"


def arch_path(arch: str) -> Path:
    return REPO / "arch_configs" / f"{arch}.yaml"


@lru_cache(maxsize=None)
def _graph(model: str, policy: str):
    from archsim import flow

    workload = flow.load_workload(model, policy=policy)
    return workload, flow.build_workload_graph(workload)


def measure(model: str, arch: str, policy: str) -> dict:
    """The pinned numbers of one case, measured now."""
    from archsim import flow

    workload, graph = _graph(model, policy)
    result = flow.run(workload, flow.load_arch(arch_path(arch)), graph=graph)
    return {
        "latency_cycles": result.latency_cycles,
        "latency_s": result.latency_s,
        "energy_j": result.energy_j,
        "edp_js": result.edp_js,
        "events": result.events,
    }


def load() -> dict:
    return json.loads(GOLDEN_FILE.read_text())


def regenerate(note: str) -> None:
    old = load() if GOLDEN_FILE.exists() else {}
    cases = {}
    for model, arch, policy in CASES:
        key = case_key(model, arch, policy)
        now = measure(model, arch, policy)
        previous = old.get("cases", {}).get(key)
        changed = previous is None or any(previous["metrics"][k] != v for k, v in now.items())
        cases[key] = {"metrics": now, "note": note if changed else previous["note"]}
    doc = {
        "about": "latency/energy/EDP of the bundled reference runs (seeded weights, synthetic calibration); "
        "regenerate with tests/golden/golden.py and explain every change in its commit",
        "units": {
            "latency_cycles": "cycles",
            "latency_s": "s",
            "energy_j": "J",
            "edp_js": "J*s",
            "events": "SimPy events",
        },
        "cases": cases,
    }
    GOLDEN_FILE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit('usage: python tests/golden/golden.py "why the numbers changed"')
    regenerate(sys.argv[1])
