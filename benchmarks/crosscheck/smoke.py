"""Check that ZigZag and SCALE-Sim import and run here (setup.sh calls this): one 32->32 pointwise conv on an
8x8 map, one weight fold, through both tools' peer32_ws. Fails if either cannot run or answers fewer cycles
than the ideal MACs / 1024."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run_scalesim
import run_zigzag

LAYER = {
    "role": "smoke",
    "name": "smoke",
    "kind": "conv_pointwise",
    "N": 1,
    "C": 32,
    "K": 32,
    "OX": 8,
    "OY": 8,
    "FX": 1,
    "FY": 1,
    "IX": 8,
    "IY": 8,
    "stride": 1,
    "padding": 0,
    "groups": 1,
    "weight_bits": 8,
    "act_bits": 8,
    "out_bits": 8,
    "macs": 32 * 32 * 64,
}


def main() -> int:
    logging.disable(logging.WARNING)
    ideal = LAYER["macs"] // (32 * 32)
    ok = True
    for tool, run in (
        ("zigzag", run_zigzag.run_layer),
        ("scalesim", lambda lay: run_scalesim.run_layer("smoke", lay)),
    ):
        r = run(LAYER)
        good = r["cycles"] >= ideal and r["energy_j"] > 0
        ok &= good
        print(
            f"{tool:9s} {'ok' if good else 'FAILED'}: {r['cycles']} cycles (ideal {ideal}), "
            f"{r['energy_j'] * 1e9:.1f} nJ"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
