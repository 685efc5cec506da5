"""Run the cross-check layers on ZigZag's equivalent of peer32_ws; write results/zigzag.json.

Run with the cross-check's own environment (setup.sh):

    benchmarks/crosscheck/.venv/bin/python benchmarks/crosscheck/run_zigzag.py

How peer32_ws is written in ZigZag's input format (zigzag-dse 3.9.1; formats read from its source:
zigzag/parser/accelerator_validator.py, mapping_validator.py, workload_validator.py, and its bundled
inputs/hardware/tpu_like.yaml, a 32x32 weight-stationary systolic array):

- hardware YAML (written to work/zigzag/peer32_ws.yaml):
  - operational array D1 x D2 = 32 x 32, MAC 0.2 pJ, systolic_dimensions [D1, D2] (ZigZag then adds
    (unrolling - 1) drain cycles per systolic dimension, once per layer);
  - per PE: two 1 B weight registers (I2: double-buffered, so ZigZag lets the next fold's weights load while
    this fold computes, as TPU v1 and Gemmini do) and a 4 B partial-sum register (O), served_dimensions []
    (one per PE), 0 pJ per access [choice: peer32_ws prices a MAC at 0.2 pJ with its operand registers];
  - weight_sram 256 KiB for I2 and act_sram 256 KiB shared by I1 and O, both serving D1 and D2, 1 pJ/B;
    act_sram has one read and one write port for inputs and another pair for partial sums (a real array's
    input buffer and accumulators are separate paths; on one shared port ZigZag rounds each operand's
    transfer up to a whole cycle per period and serialises them: see NOTES.md);
  - dram, one read_write port of 16 B/cycle for all three operands, 100 pJ/B.
  Port widths: ZigZag charges r_cost per access of bandwidth_max bits and rounds each transfer up to
  bandwidth_min bits (cost_model.py, _calc_memory_access). bandwidth_min = 8 bits and r_cost = w_cost =
  (bandwidth_max / 8) x the per-byte price make that exactly the per-byte price on every useful byte.
  SRAM port widths [choice, peer32_ws gives none]: weight_sram 32 B/cycle (one row of 32 weights per cycle,
  the WS preload rate), act_sram 128 B/cycle read and write (32 int32 partial sums per cycle), so neither
  buffer throttles the array and only DRAM can.
- mapping YAML: spatial mapping D1 (columns) = K, 32; D2 (rows) = the reduction: C, 32 for pointwise, dense
  layers with C < 32 as the mixed C x FY x FX unrolling (stem: C 3, FY 3, FX 3 = 27 rows), depthwise as a
  classic WS array runs it (one channel at a time: D1 = K, 1; D2 = FY, FX: 9 or 25 rows), grouped convs one
  group at a time (D1 = K/G, D2 = C/G). Temporal mapping: searched by LOMA, minimum latency.
- workload: one layer per run, ZigZag's conv equation O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c]
  [iy][ix] with padding; the matmul as a 1x1 "conv" with G = batch x heads, C = K (reduction), K = N,
  OY = M (W = the B operand, stationary; I = A, streamed); the FC as a 1x1 conv on a 1x1 map.
  Precisions: W and I 8 bits, O (partial sums) 32 bits, O_final the layer's out_bits.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
import sys
from pathlib import Path

import peer32 as P
import yaml

WORK = P.HERE / "work" / "zigzag"
TOOL_VERSION = "zigzag-dse 3.9.1"
PSUM_BITS = 32  # int32 accumulation of int8 x int8 products [choice: standard INT8 accumulator width]
WEIGHT_SRAM_BITS_PER_CYCLE = 32 * 8  # [choice] see the module docstring
ACT_SRAM_BITS_PER_CYCLE = 128 * 8  # [choice] see the module docstring


def _ports(read_alloc: list[str], write_alloc: list[str], bw_bits: int) -> list[dict]:
    return [
        {
            "name": "r_port_1",
            "type": "read",
            "bandwidth_min": 8,
            "bandwidth_max": bw_bits,
            "allocation": read_alloc,
        },
        {
            "name": "w_port_1",
            "type": "write",
            "bandwidth_min": 8,
            "bandwidth_max": bw_bits,
            "allocation": write_alloc,
        },
    ]


def hardware() -> dict:
    def per_b(pj_per_b, bw_bits):  # pJ per access of bw_bits
        return pj_per_b * bw_bits / 8

    dram_bits = P.DRAM_BYTES_PER_CYCLE * 8
    return {
        "name": "peer32_ws",
        "memories": {
            # two 8-bit weight registers: double-buffered, the next fold's weight shifts in meanwhile
            "reg_w": {
                "size": 2 * 8,
                "r_cost": 0,
                "w_cost": 0,
                "area": 0,
                "latency": 1,
                "operands": ["I2"],
                "ports": _ports(["I2, tl"], ["I2, fh"], 8),
                "served_dimensions": [],
            },
            "reg_o": {
                "size": PSUM_BITS,
                "r_cost": 0,
                "w_cost": 0,
                "area": 0,
                "latency": 1,
                "operands": ["O"],
                "ports": [
                    {
                        "name": "r_port_1",
                        "type": "read",
                        "bandwidth_min": PSUM_BITS,
                        "bandwidth_max": PSUM_BITS,
                        "allocation": ["O, tl"],
                    },
                    {
                        "name": "r_port_2",
                        "type": "read",
                        "bandwidth_min": PSUM_BITS,
                        "bandwidth_max": PSUM_BITS,
                        "allocation": ["O, th"],
                    },
                    {
                        "name": "w_port_1",
                        "type": "write",
                        "bandwidth_min": PSUM_BITS,
                        "bandwidth_max": PSUM_BITS,
                        "allocation": ["O, fh"],
                    },
                    {
                        "name": "w_port_2",
                        "type": "write",
                        "bandwidth_min": PSUM_BITS,
                        "bandwidth_max": PSUM_BITS,
                        "allocation": ["O, fl"],
                    },
                ],
                "served_dimensions": [],
            },
            "weight_sram": {
                "size": P.WEIGHT_BUFFER_B * 8,
                "r_cost": per_b(P.SRAM_PJ_PER_B, WEIGHT_SRAM_BITS_PER_CYCLE),
                "w_cost": per_b(P.SRAM_PJ_PER_B, WEIGHT_SRAM_BITS_PER_CYCLE),
                "area": 0,
                "latency": 1,
                "operands": ["I2"],
                "ports": _ports(["I2, tl"], ["I2, fh"], WEIGHT_SRAM_BITS_PER_CYCLE),
                "served_dimensions": ["D1", "D2"],
            },
            "act_sram": {
                "size": P.ACT_BUFFER_B * 8,
                "r_cost": per_b(P.SRAM_PJ_PER_B, ACT_SRAM_BITS_PER_CYCLE),
                "w_cost": per_b(P.SRAM_PJ_PER_B, ACT_SRAM_BITS_PER_CYCLE),
                "area": 0,
                "latency": 1,
                "operands": ["I1", "O"],
                # inputs and partial sums on separate ports, as a real array's
                # input buffer and accumulators are
                "ports": _ports(["I1, tl"], ["I1, fh"], ACT_SRAM_BITS_PER_CYCLE)
                + [
                    dict(p, name=p["name"].replace("_1", "_2"))
                    for p in _ports(["O, tl", "O, th"], ["O, fh", "O, fl"], ACT_SRAM_BITS_PER_CYCLE)
                ],
                "served_dimensions": ["D1", "D2"],
            },
            "dram": {
                "size": 10**10,
                "r_cost": per_b(P.DRAM_PJ_PER_B, dram_bits),
                "w_cost": per_b(P.DRAM_PJ_PER_B, dram_bits),
                "area": 0,
                "latency": 1,
                "operands": ["I1", "I2", "O"],
                "ports": [
                    {
                        "name": "rw_port_1",
                        "type": "read_write",
                        "bandwidth_min": 8,
                        "bandwidth_max": dram_bits,
                        "allocation": [
                            "I1, fh",
                            "I1, tl",
                            "I2, fh",
                            "I2, tl",
                            "O, fh",
                            "O, tl",
                            "O, fl",
                            "O, th",
                        ],
                    }
                ],
                "served_dimensions": ["D1", "D2"],
            },
        },
        "operational_array": {
            "unit_energy": P.MAC_PJ,
            "unit_area": 1,
            "dimensions": ["D1", "D2"],
            "sizes": [P.COLS, P.ROWS],
            "systolic_dimensions": ["D1", "D2"],
        },
    }


def workload_and_mapping(layer: dict) -> tuple[dict, dict]:
    """One ZigZag workload layer and its mapping entry (see the module docstring)."""
    kind = layer["kind"]
    name = layer["role"]
    prec = {"W": 8, "I": 8, "O": PSUM_BITS, "O_final": layer["out_bits"]}
    if kind == "matmul":
        g, c, k, oy, ox, fy, fx, s, pad, n = layer["B"], layer["K"], layer["N"], layer["M"], 1, 1, 1, 1, 0, 1
    else:
        g = layer["groups"]
        c, k = layer["C"] // g, layer["K"] // g
        oy, ox, fy, fx, s, pad, n = (
            layer["OY"],
            layer["OX"],
            layer["FY"],
            layer["FX"],
            layer["stride"],
            layer["padding"],
            layer["N"],
        )
    # the stored input (padding is declared separately, not stored): matmul and FC read an M x 1 / 1 x 1 map
    iy, ix = (oy, ox) if kind == "matmul" else (layer["IY"], layer["IX"])
    wl = {
        "id": 0,
        "name": name,
        "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [n, k, g, ox, oy, c, fx, fy],
        "operand_precision": prec,
        "operand_source": {"I": 0, "W": 0},
        "pr_loop_dims": ["IX", "IY"],
        "pr_loop_sizes": [ix, iy],
        "padding": [[pad, pad], [pad, pad]],
    }
    if kind == "conv_depthwise":
        rows = [f"FY, {fy}", f"FX, {fx}"]  # one channel at a time on FY*FX PEs of one column
        cols = ["K, 1"]
    else:
        cols = [f"K, {min(k, P.COLS)}"]
        if c >= P.ROWS or fy * fx == 1:
            rows = [f"C, {min(c, P.ROWS)}"]
        else:  # dense conv with C < 32: C x FY x FX (flattened reduction) down the rows
            rows = (
                [f"C, {c}"]
                + ([f"FY, {fy}"] if c * fy <= P.ROWS else [])
                + ([f"FX, {fx}"] if c * fy * fx <= P.ROWS else [])
            )
    mapping = {
        "name": name,
        "spatial_mapping": {"D1": cols, "D2": rows},
        "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
    }
    return wl, mapping


def _write_inputs(layer: dict) -> tuple[Path, Path, dict]:
    d = WORK / layer["role"]
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    acc = WORK / "peer32_ws.yaml"
    acc.write_text(yaml.safe_dump(hardware(), sort_keys=False))
    wl, mapping = workload_and_mapping(layer)
    mp = d / "mapping.yaml"
    default = dict(mapping, name="default")
    mp.write_text(yaml.safe_dump([mapping, default], sort_keys=False))
    (d / "workload.yaml").write_text(yaml.safe_dump([wl], sort_keys=False))
    return acc, mp, wl


def run_layer(layer: dict) -> dict:
    from zigzag.api import get_hardware_performance_zigzag

    acc, mp, wl = _write_inputs(layer)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        energy_pj, latency_cc, cmes = get_hardware_performance_zigzag(
            workload=[wl],
            accelerator=str(acc),
            mapping=str(mp),
            opt="latency",
            dump_folder=str(WORK / layer["role"] / "out"),
            loma_show_progress_bar=False,
            nb_spatial_mappings_generated=1,
        )
    cme = _layer_cme(cmes)
    if cme.layer.total_mac_count != layer["macs"]:
        raise RuntimeError(
            f"{layer['name']}: ZigZag ran {cme.layer.total_mac_count} MACs, the layer has {layer['macs']}"
        )
    by_mem: dict[str, float] = {}
    for op, per_level in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(op)
        for level, e in zip(cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op), per_level):
            by_mem[level.name] = by_mem.get(level.name, 0.0) + e * 1e-12
    return {
        "cycles": math.ceil(cme.latency_total2),
        "energy_j": cme.energy_total * 1e-12,
        "energy_breakdown_j": {"mac": cme.mac_energy * 1e-12} | dict(sorted(by_mem.items())),
        "utilization": float(cme.mac_utilization2),
        "latency_parts_cycles": {
            "ideal": float(cme.ideal_cycle),
            "ideal_temporal": float(cme.ideal_temporal_cycle),
            "stall_slack": float(cme.stall_slack_comb),
            "onloading": float(cme.data_onloading_cycle),
            "offloading": float(cme.data_offloading_cycle),
            "systolic_drain": float(cme.systolic_drain_cycle),
        },
        "spatial_mapping": {str(dim): str(v) for dim, v in cme.layer.spatial_mapping.items()},
        "temporal_mapping": str(cme.temporal_mapping),
        "summary_pj_cc": [float(energy_pj), float(latency_cc)],
    }


def _layer_cme(cmes):
    """The one layer's CostModelEvaluation out of what the API returns (nested (cme, extra) lists)."""
    from zigzag.cost_model.cost_model import CostModelEvaluation

    stack = list(cmes)
    while stack:
        item = stack.pop(0)
        if isinstance(item, CostModelEvaluation):
            return item
        if isinstance(item, (list, tuple)):
            stack = list(item) + stack
    raise RuntimeError("no CostModelEvaluation in ZigZag's answer")


def main(argv: list[str]) -> int:
    logging.disable(logging.WARNING)  # ZigZag logs every stage at INFO through the root logger
    layers = P.load_layers()
    only = set(argv)
    results = {}
    for layer in layers:
        if only and layer["role"] not in only:
            continue
        r = run_layer(layer)
        results[layer["name"]] = r | {"role": layer["role"]}
        lp = r["latency_parts_cycles"]
        print(
            f"{layer['role']:24s} cycles {r['cycles']:>9d} (temporal {lp['ideal_temporal']:.0f}, stall "
            f"{lp['stall_slack']:.0f}, on {lp['onloading']:.0f}, off {lp['offloading']:.0f}, drain "
            f"{lp['systolic_drain']:.0f})  energy {r['energy_j'] * 1e6:9.3f} uJ  util {r['utilization']:.3f}",
            flush=True,
        )
    path = P.write_result("zigzag", {"tool": TOOL_VERSION, "config": P.common_config(), "layers": results})
    print(f"wrote {path.relative_to(P.HERE)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(sys.argv[1:]))
