"""Hand-derived cycles and energy of the cross-check layers on a real 32x32 weight-stationary INT8 array
(peer32_ws); writes results/hand.json. Plain Python, runs in either environment:

    python3 benchmarks/crosscheck/hand_ws.py

This is the reference the peer tools are judged against (NOTES.md), so every assumption is written here.

Mapping (the classic WS array, as peer32_ws asks):
  rows    = the flattened reduction of one group, Cg*FY*FX (im2col), cut into row folds of 32;
  columns = the filters of one group, Kg, cut into column folds of 32;
  depthwise: one channel at a time on FY*FX rows of one column (Cg = Kg = 1, G = C);
  grouped: one group at a time; matmul: per head, B (K x N) stationary, A's M rows streamed;
  FC: a GEMM with M = 1 streamed row.
  folds = G * ceil(Cg*FY*FX / 32) * ceil(Kg / 32); each fold streams T = N*OY*OX positions (matmul: M).

Array timing of one fold, by the systolic wavefront (inputs skewed one cycle per row, moving one column per
cycle; partial sums moving down one row per cycle and leaving at the bottom of the 32 rows):
  weight shift-in R cycles (one row per cycle), then the last of T inputs enters the last row R - 1 cycles
  after the first, crosses C - 1 columns and its sum leaves R rows down: R + (R - 1) + T + (C - 1) ... the
  familiar 2R + C + T - 2 (SCALE-Sim's per-fold count; R = C = 32, the physical array, because partial
  sums leave at the bottom row and weights shift in from the top whatever part of the array is used).
Two designs:
  serial   : each fold pays the full 2R + C + T - 2 (weights not double-buffered: SCALE-Sim's model);
  pipelined: weights double-buffered in the PEs (TPU v1: "the matrix unit holds one 64 KiB tile of weights
             plus one for double-buffering, to hide the 256 cycles it takes to shift a tile in" [S, Jouppi
             et al., ISCA 2017, sec. 2]; Gemmini's WS PEs likewise hold two weight registers [S, Genc et
             al., DAC 2021]): the next fold's weights shift in while this fold streams, and folds follow
             each other without draining, so a fold costs max(T, R) and the fill/drain 2R + C - 2 is paid
             once per layer.
  The reference ("hand") is the pipelined design: that is how real WS arrays are built.

Memory, same on both: a 256 KiB weight buffer and a 256 KiB activation buffer, one 16 B/cycle DRAM port, all
transfers double-buffered against compute. Every layer here can be tiled so each byte crosses DRAM once
(inputs, weights, final outputs; the FC's and head's weights larger than the buffer simply stream), so
  DRAM cycles = (inputs + weights + outputs) B / 16 B/cycle,
  layer cycles = max(array cycles, DRAM cycles) + prologue + epilogue,
  prologue = the first fold's weights and its first 32 positions' inputs (rows-used x cols-used + 32 x
  rows-used bytes) / 16 B/cycle (the wavefront cannot start before them; later inputs stream behind it),
  epilogue = the last 32 positions' outputs / 16 B/cycle (written after the array finishes).
  Inputs are the padded extent the outputs touch, (O - 1) * S + F per side, as in SCALE-Sim.

Energy (pJ): MAC 0.2 per MAC; SRAM 1 per byte read or written; DRAM 100 per byte. Counted bytes:
  weight buffer: each weight read once into the array (it stays for all T positions of its fold), plus its
  DRAM fill write;
  activation buffer: im2col input reads, one per (output position, kernel tap, channel) that lands on a
  real pixel, repeated for each column fold (no sliding-window reuse in a WS array's input path);
  partial sums: with more than one row fold each output's int32 partial sum is written after
  every row fold but the last and read back before every row fold but the first (4 B each); final outputs
  written once at out_bits; plus DRAM fills (inputs) and drains (outputs);
  the PE registers are part of the MAC price (peer32_ws gives no register energy).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer32 as P

PSUM_BYTES = 4  # int32 partial sums [choice: the standard INT8 accumulator width]


def loop_nest(layer: dict) -> dict:
    """groups, reduction per group, filters per group, positions T, and the DRAM bytes of the layer."""
    if layer["kind"] == "matmul":
        g, red, filt, t = layer["B"], layer["K"], layer["N"], layer["M"]
        in_b = g * t * red * layer["operand_bits"]["A"] // 8
        w_b = g * red * filt * layer["operand_bits"]["B"] // 8
        out_b = g * t * filt * layer["out_bits"] // 8
        in_reads = g * t * red * math.ceil(filt / P.COLS)
        return {
            "G": g,
            "red": red,
            "filt": filt,
            "T": t,
            "in_b": in_b,
            "w_b": w_b,
            "out_b": out_b,
            "in_reads": in_reads,
        }
    g = layer["groups"]
    cg, kg = layer["C"] // g, layer["K"] // g
    red = cg * layer["FY"] * layer["FX"]
    t = layer["N"] * layer["OY"] * layer["OX"]
    in_b = (
        layer["N"] * layer["C"] * layer["IY"] * layer["IX"] * layer["act_bits"] // 8
    )  # padding is not stored
    w_b = layer["K"] * red * layer["weight_bits"] // 8
    out_b = t * layer["K"] * layer["out_bits"] // 8
    # im2col taps that land on a real (not padding) pixel: the array reads those; zeros are injected
    taps = _taps(layer["OY"], layer["FY"], layer["stride"], layer["padding"], layer["IY"]) * _taps(
        layer["OX"], layer["FX"], layer["stride"], layer["padding"], layer["IX"]
    )
    in_reads = layer["N"] * layer["C"] * taps * math.ceil(kg / P.COLS)
    return {
        "G": g,
        "red": red,
        "filt": kg,
        "T": t,
        "in_b": in_b,
        "w_b": w_b,
        "out_b": out_b,
        "in_reads": in_reads,
    }


def _taps(out: int, f: int, s: int, p: int, size: int) -> int:
    """Output-position x kernel-tap pairs along one axis that read a real input pixel (not padding)."""
    return sum(1 for o in range(out) for k in range(f) if 0 <= o * s + k - p < size)


def folds(n: dict) -> list[tuple[int, int]]:
    """(rows used, columns used) of every fold, in order."""
    rows = [min(P.ROWS, n["red"] - i * P.ROWS) for i in range(math.ceil(n["red"] / P.ROWS))]
    cols = [min(P.COLS, n["filt"] - j * P.COLS) for j in range(math.ceil(n["filt"] / P.COLS))]
    return [(r, c) for _ in range(n["G"]) for c in cols for r in rows]


def evaluate(layer: dict) -> dict:
    n = loop_nest(layer)
    fl = folds(n)
    R, C, T = P.ROWS, P.COLS, n["T"]
    fill_drain = 2 * R + C - 2
    serial = len(fl) * (fill_drain + T)
    pipelined = len(fl) * max(T, R) + fill_drain
    dram_b = n["in_b"] + n["w_b"] + n["out_b"]
    dram_cc = math.ceil(dram_b / P.DRAM_BYTES_PER_CYCLE)
    r0, c0 = fl[0]
    out_bytes = layer["out_bits"] / 8
    head = min(
        T, R
    )  # the first / last R positions: what the wavefront needs before it runs / leaves after it
    prologue = math.ceil((r0 * c0 + head * r0) / P.DRAM_BYTES_PER_CYCLE)
    epilogue = math.ceil(head * fl[-1][1] * out_bytes / P.DRAM_BYTES_PER_CYCLE)
    row_folds = math.ceil(n["red"] / R)
    outputs = n["G"] * n["filt"] * T
    psum_b = outputs * (row_folds - 1) * 2 * PSUM_BYTES
    in_reads = n["in_reads"]
    sram_b = (n["w_b"] + n["w_b"]) + (in_reads + n["in_b"]) + (psum_b + outputs * out_bytes + n["out_b"])
    e_mac = layer["macs"] * P.MAC_PJ * 1e-12
    e_sram = sram_b * P.SRAM_PJ_PER_B * 1e-12
    e_dram = dram_b * P.DRAM_PJ_PER_B * 1e-12
    cycles = max(pipelined, dram_cc) + prologue + epilogue
    return {
        "cycles": cycles,
        "energy_j": e_mac + e_sram + e_dram,
        "energy_breakdown_j": {"mac": e_mac, "sram": e_sram, "dram": e_dram},
        "utilization": layer["macs"] / (cycles * R * C),
        "folds": len(fl),
        "T": T,
        "array_cycles_pipelined": pipelined,
        "array_cycles_serial": serial,
        "cycles_serial_design": max(serial, dram_cc) + prologue + epilogue,
        "dram_cycles": dram_cc,
        "prologue_cycles": prologue,
        "epilogue_cycles": epilogue,
        "bytes": {
            "dram": dram_b,
            "inputs": n["in_b"],
            "weights": n["w_b"],
            "outputs": n["out_b"],
            "sram": sram_b,
            "sram_input_reads": in_reads,
            "sram_psum": psum_b,
        },
    }


def main() -> int:
    results = {}
    for layer in P.load_layers():
        r = evaluate(layer)
        results[layer["name"]] = r | {"role": layer["role"]}
        print(
            f"{layer['role']:24s} cycles {r['cycles']:>9d} (array {r['array_cycles_pipelined']}, "
            f"serial design {r['cycles_serial_design']}, DRAM {r['dram_cycles']}, "
            f"folds {r['folds']} x T {r['T']})  "
            f"energy {r['energy_j'] * 1e6:8.3f} uJ"
        )
    model = (
        "hand-derived 32x32 WS array (hand_ws.py): double-buffered weights, folds pipelined, DRAM overlapped"
    )
    path = P.write_result("hand", {"tool": model, "config": P.common_config(), "layers": results})
    print(f"wrote {path.relative_to(P.HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
