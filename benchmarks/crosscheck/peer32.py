"""The peer32_ws configuration, once, for every script of the cross-check (no archsim import: the peer tools'
environment has no archsim and no torch).

Every value is the issue's definition of peer32_ws ("a configuration ZigZag, SCALE-Sim and Stream can all
express"); they are [choice]s of that issue, not measured figures.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAYERS_JSON = HERE / "layers.json"
RESULTS = HERE / "results"

ROWS = 32  # PE rows: the reduction (C/groups * FY * FX, flattened) is unrolled down them [choice, issue]
COLS = 32  # PE columns: output channels K (filters) across them [choice, issue]
CLOCK_HZ = 1e9  # 1 GHz [choice, issue]
BYTES_PER_WORD = 1  # INT8 operands [choice, issue]

# On-chip buffers. peer32_ws says "256 KiB buffers"; the split used in every tool here is one 256 KiB weight
# buffer and one 256 KiB activation buffer shared by inputs and outputs [choice]: archsim's presets have
# exactly these two (weight_buffer, act_buffer), ZigZag expresses it directly (one SRAM for W, one for I
# and O), and SCALE-Sim, which has three SRAMs (ifmap, filter, ofmap), gets filter 256 KiB and the
# activation 256 KiB split 128 KiB ifmap + 128 KiB ofmap.
WEIGHT_BUFFER_B = 256 * 1024
ACT_BUFFER_B = 256 * 1024

DRAM_BYTES_PER_CYCLE = 16  # one 16 B/cycle DRAM port = 16 GB/s at 1 GHz [choice, issue]

# Energy coefficients [choice, issue]. Per byte, for reads and writes alike.
MAC_PJ = 0.2  # one INT8 multiply-accumulate
SRAM_PJ_PER_B = 1.0  # on-chip buffer access
DRAM_PJ_PER_B = 100.0  # DRAM access, I/O included


def load_layers() -> list[dict]:
    if not LAYERS_JSON.exists():
        raise SystemExit(f"{LAYERS_JSON} is missing: run extract_layers.py with the project's .venv first")
    return json.loads(LAYERS_JSON.read_text())["layers"]


def write_result(tool: str, payload: dict) -> Path:
    """results/<tool>.json, sorted keys, no paths, hosts or times: identical inputs give identical files."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{tool}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def common_config() -> dict:
    return {
        "array": f"{ROWS}x{COLS} weight-stationary INT8",
        "clock_hz": CLOCK_HZ,
        "weight_buffer_bytes": WEIGHT_BUFFER_B,
        "act_buffer_bytes": ACT_BUFFER_B,
        "dram_bytes_per_cycle": DRAM_BYTES_PER_CYCLE,
        "mac_pj": MAC_PJ,
        "sram_pj_per_byte": SRAM_PJ_PER_B,
        "dram_pj_per_byte": DRAM_PJ_PER_B,
    }
