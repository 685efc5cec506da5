"""Run the cross-check layers on SCALE-Sim's equivalent of peer32_ws; write results/scalesim.json.

Run with the cross-check's own environment (setup.sh):

    benchmarks/crosscheck/.venv/bin/python benchmarks/crosscheck/run_scalesim.py

How peer32_ws is written in SCALE-Sim's input format (scalesim 3.0.0; read from its source,
scalesim/scale_config.py, topology_utils.py, single_layer_sim.py, compute/systolic_compute_ws.py):

- config .cfg: ArrayHeight = ArrayWidth = 32, Dataflow = ws, filter SRAM 256 KiB, ifmap 128 KiB + ofmap
  128 KiB (the 256 KiB activation buffer split in two: SCALE-Sim has three SRAMs), InterfaceBandwidth = USER.
  In 3.0.0 the DRAM side of the ifmap and filter SRAMs runs at [layout] IfmapSRAMBankBandwidth and
  FilterSRAMBankBandwidth words/cycle and only the ofmap side at [architecture_presets] Bandwidth
  (single_layer_sim.py, "if self.config.use_user_dram_bandwidth()"); all three are set to 16 words/cycle
  (1 B words: word_size = 1 is fixed in single_layer_sim.py). Each SRAM has its own port, so the tool's
  DRAM can move up to 48 B/cycle in total where peer32_ws has one 16 B/cycle port: SCALE-Sim cannot express
  one shared port (see NOTES.md).
- topology CSV (conv form: name, IFMAP height, IFMAP width, filter height, filter width, channels, filters,
  stride). SCALE-Sim has no padding field: its ofmap is ceil((H - F + S) / S), so the ifmap extent given is
  the padded input the outputs actually touch, (O - 1) * S + F, which gives the layer's exact O and MACs.
  - depthwise: a layer whose name contains "DP" is split by SCALE-Sim into one layer per channel (channels
    = 1, filters = 1): one channel at a time on FY*FX PEs of one column, as peer32_ws asks;
  - grouped conv: one topology row per group (C/G channels, K/G filters); SCALE-Sim has no groups;
  - matmul A[b](MxK) B[b](KxN): one row per b as a 1x1 conv on an M x 1 map with K channels and N filters
    (the same Sr = K, Sc = N, T = M that SCALE-Sim's own GEMM input mode builds);
  - FC: a 1x1 conv on a 1x1 map, C = in features, K = out features.
- energy: SCALE-Sim has no energy model. Energy here = MACs x 0.2 pJ + SRAM bytes x 1 pJ + DRAM bytes x 100 pJ
  from SCALE-Sim's reported access counts: SRAM bytes = array-side reads and writes it reports (ifmap reads,
  filter reads, ofmap writes) + DRAM-side fills and drains (each DRAM byte read is written into an SRAM, each
  DRAM byte written is read out of one); DRAM bytes = its DRAM read and write counts. Outputs wider than
  8 bits (int32 for the matmul and the FC) scale the ofmap counts by out_bits / 8; SCALE-Sim's timing is
  for 1 B words.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

import peer32 as P

WORK = P.HERE / "work" / "scalesim"
TOOL_VERSION = "scalesim 3.0.0"


def cfg_text(run_name: str) -> str:
    bw = P.DRAM_BYTES_PER_CYCLE // P.BYTES_PER_WORD
    return f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight : {P.ROWS}
ArrayWidth : {P.COLS}
IfmapSramSzkB : {P.ACT_BUFFER_B // 2 // 1024}
FilterSramSzkB : {P.WEIGHT_BUFFER_B // 1024}
OfmapSramSzkB : {P.ACT_BUFFER_B // 2 // 1024}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {bw}
Dataflow : ws
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {bw}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {bw}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : USER
UseRamulatorTrace : False
"""


def topology_rows(layer: dict) -> list[list]:
    """SCALE-Sim conv topology rows for one layer (see the module docstring)."""
    kind = layer["kind"]
    if kind == "matmul":
        return [[f"b{b}", layer["M"], 1, 1, 1, layer["K"], layer["N"], 1] for b in range(layer["B"])]
    s = layer["stride"]
    ih = (layer["OY"] - 1) * s + layer["FY"]
    iw = (layer["OX"] - 1) * s + layer["FX"]
    if layer["N"] != 1 and kind != "linear":
        raise ValueError(f"{layer['name']}: batch {layer['N']} > 1 is not expressed here")
    if kind == "linear":
        # N positions of an FC: a 1x1 conv on an N x 1 map
        return [["fc", layer["N"], 1, 1, 1, layer["C"], layer["K"], 1]]
    if kind == "conv_depthwise":
        return [["DP", ih, iw, layer["FY"], layer["FX"], layer["C"], 1, s]]
    g = layer["groups"]
    return [
        [f"g{i}", ih, iw, layer["FY"], layer["FX"], layer["C"] // g, layer["K"] // g, s] for i in range(g)
    ]


def write_inputs(role: str, layer: dict) -> tuple[Path, Path, Path]:
    d = WORK / role
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    cfg = d / "peer32_ws.cfg"
    cfg.write_text(cfg_text(role))
    topo = d / "topology.csv"
    header = (
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    )
    topo.write_text(header + "".join(", ".join(map(str, r)) + ",\n" for r in topology_rows(layer)))
    layout = (
        d / "layout.csv"
    )  # SCALE-Sim opens a layout file even with custom layouts off; a header is enough
    layout.write_text("Layer name,\n")
    return cfg, topo, layout


def run_layer(role: str, layer: dict) -> dict:
    from scalesim.scale_sim import scalesim

    cfg, topo, layout = write_inputs(role, layer)
    sim = scalesim(
        save_disk_space=True,
        verbose=False,
        config=str(cfg),
        topology=str(topo),
        layout=str(layout),
        input_type_gemm=False,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress even when not verbose
        sim.run_scale(top_path=str(cfg.parent / "out"))
    per = sim.runner.single_layer_sim_object_list
    out_scale = layer["out_bits"] / 8
    tot = {
        k: 0
        for k in (
            "overall_cycles",
            "compute_cycles",
            "stall_cycles",
            "ifmap_sram_reads",
            "filter_sram_reads",
            "ofmap_sram_writes",
            "ifmap_dram_reads",
            "filter_dram_reads",
            "ofmap_dram_writes",
            "macs",
        )
    }
    for s in per:
        overall, compute, stall, _util, _map_eff, _comp_util = s.get_compute_report_items()
        d = s.get_detail_report_items()
        tot["overall_cycles"] += int(overall)
        tot["compute_cycles"] += int(compute) - int(stall)  # SCALE-Sim's "Total Cycles" include its stalls
        tot["stall_cycles"] += int(stall)
        tot["ifmap_sram_reads"] += int(d[2])
        tot["filter_sram_reads"] += int(d[5])
        tot["ofmap_sram_writes"] += int(d[8])
        tot["ifmap_dram_reads"] += int(d[11])
        tot["filter_dram_reads"] += int(d[14])
        tot["ofmap_dram_writes"] += int(d[17])
        tot["macs"] += int(s.num_compute)
    if tot["macs"] != layer["macs"]:
        raise RuntimeError(
            f"{layer['name']}: SCALE-Sim ran {tot['macs']} MACs, the layer has {layer['macs']}"
        )
    ofmap_sram_b = tot["ofmap_sram_writes"] * out_scale
    ofmap_dram_b = tot["ofmap_dram_writes"] * out_scale
    dram_b = tot["ifmap_dram_reads"] + tot["filter_dram_reads"] + ofmap_dram_b
    sram_b = tot["ifmap_sram_reads"] + tot["filter_sram_reads"] + ofmap_sram_b + dram_b  # + fills and drains
    e_mac = layer["macs"] * P.MAC_PJ * 1e-12
    e_sram = sram_b * P.SRAM_PJ_PER_B * 1e-12
    e_dram = dram_b * P.DRAM_PJ_PER_B * 1e-12
    # Layers run back to back (SCALE-Sim simulates the split layers one after another, each with its own
    # prefetch), so the layer's cycles are the sum of SCALE-Sim's "Total Cycles (incl. prefetch)".
    cycles = tot["overall_cycles"]
    return {
        "cycles": cycles,
        "compute_cycles": tot["compute_cycles"],  # the array's folds with fill/drain, no memory stall
        "stall_cycles": tot["stall_cycles"],  # waiting for DRAM after the first prefetch
        "prefetch_cycles": cycles - tot["compute_cycles"] - tot["stall_cycles"],  # initial fill + last drain
        "energy_j": e_mac + e_sram + e_dram,
        "energy_breakdown_j": {"mac": e_mac, "sram": e_sram, "dram": e_dram},
        "energy_derived": "SCALE-Sim access counts x peer32_ws coefficients (SCALE-Sim has no energy model)",
        "utilization": layer["macs"] / (cycles * P.ROWS * P.COLS),
        "sub_layers": len(per),
        "accesses": tot | {"ofmap_bytes_scale": out_scale, "sram_bytes": sram_b, "dram_bytes": dram_b},
    }


def main(argv: list[str]) -> int:
    layers = P.load_layers()
    only = set(argv)
    results = {}
    for layer in layers:
        if only and layer["role"] not in only:
            continue
        r = run_layer(layer["role"], layer)
        results[layer["name"]] = r | {"role": layer["role"]}
        print(
            f"{layer['role']:24s} cycles {r['cycles']:>9d} (compute {r['compute_cycles']}, stall "
            f"{r['stall_cycles']})  energy {r['energy_j'] * 1e6:9.3f} uJ  util {r['utilization']:.3f}",
            flush=True,
        )
    path = P.write_result("scalesim", {"tool": TOOL_VERSION, "config": P.common_config(), "layers": results})
    print(f"wrote {path.relative_to(P.HERE)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(sys.argv[1:]))
