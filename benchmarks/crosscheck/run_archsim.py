"""archsim's column of the cross-tool check: each layer of layers.json run alone on peer32_ws.

Run with the project's virtual environment, after extract_layers.py:

    .venv/bin/python benchmarks/crosscheck/run_archsim.py

Each layer is taken from archsim's own B1 graph (policy uniform_w8a8_plain, as extract_layers.py builds it)
and simulated alone: its inputs read from DRAM, its weights from DRAM, its output written to DRAM (peer32_ws
has memory.residency layer_by_layer and no static power), values off. Writes results/archsim.json in the
format compare.py reads: name -> {cycles, energy_j, by_component_j, dram_bytes, mode, tiles}. ``energy_j``
excludes nothing: peer32_ws has no static or interconnect energy, so it is the layer's dynamic energy.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peer32  # noqa: E402

ARCH = "peer32_ws"


def main() -> None:
    from archsim import flow
    from archsim.graph.ir import add_layer, new_graph
    from archsim.sim import simulate

    layers = peer32.load_layers()
    workload = flow.load_workload("efficientvit_b1", policy="uniform_w8a8_plain")
    graph = flow.build_workload_graph(workload)
    spec = flow.load_arch(ARCH)
    out = {}
    for entry in layers:
        name = entry["name"]
        layer = copy.deepcopy(graph.nodes[name]["layer"])
        alone = new_graph(
            model=graph.graph["model"],
            resolution=graph.graph["resolution"],
            batch=1,
            policy=graph.graph["policy"],
            seed=graph.graph["seed"],
        )
        add_layer(alone, layer, [None] * len(layer.in_shapes))  # every input read from DRAM
        result = simulate(alone, spec, values=False)
        record = result.layers[0]
        out[name] = {
            "role": entry["role"],
            "cycles": result.latency_cycles,
            "energy_j": result.energy_j,
            "by_component_j": {k: v for k, v in sorted(result.energy_breakdown_j.items()) if v},
            "dram_bytes": result.dram["bytes_read"] + result.dram["bytes_written"],
            "mode": record.mode,
            "tiles": record.tiles,
            "engine_cycles": result.engines["array"].busy_cycles,
            "lower_bound_cycles": math.ceil(
                max(
                    record.macs / (peer32.ROWS * peer32.COLS),
                    (result.dram["bytes_read"] + result.dram["bytes_written"]) / peer32.DRAM_BYTES_PER_CYCLE,
                )
            ),
        }
        print(
            f"{entry['role']:>24} {name:<52} {result.latency_cycles:>9,} cycles "
            f"{result.energy_j * 1e6:9.2f} uJ"
        )
    path = peer32.write_result("archsim", {"config": ARCH, "layers": out})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
