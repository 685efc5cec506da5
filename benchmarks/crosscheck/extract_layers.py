"""Write layers.json: the EfficientViT-B1 (224 px) layers of the cross-tool check, from archsim's own graph.

Run with the project's virtual environment (it needs torch and archsim), not the cross-check one:

    .venv/bin/python benchmarks/crosscheck/extract_layers.py

The graph is built exactly as `archsim run efficientvit_b1 ... --policy uniform_w8a8_plain` builds it
(archsim/flow.py: load_workload, then build_graph with quality_samples=0). Every loop bound below is read
from the graph's Layer (shapes, kernel, stride, padding, groups); nothing is typed in by hand except which
layers to pick (LAYERS) and why.

Loop-dimension names follow ZigZag's convention (N batch, C input channels per group... see `dims`):
  conv:   O[n][g][k][oy][ox] += W[g][k][c][fy][fx] * I[n][g][c][oy*s+fy-p][ox*s+fx-p]
          C and K are the *total* in/out channels; per group they are C/groups and K/groups.
  matmul: O[b][m][n] += A[b][m][k] * B[b][k][n]  (b = batch x heads)
  linear (FC) is recorded both ways: as a 1x1 conv on a 1x1 map (C = in features, K = out features) and
  as a GEMM with M = batch positions.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "layers.json"

WORKLOAD = "efficientvit_b1"
POLICY = "uniform_w8a8_plain"  # uniform 8-bit weights and activations, no Trio-ViT refinements

# (role, layer name, why it was picked). The roles are the list; the reasons use a 32x32 INT8 array
# at 1 GHz with one 16 B/cycle DRAM port, each layer run alone (inputs and weights read from DRAM, outputs
# written back): compute = MACs / 1024 cycles, DRAM = (inputs + weights + outputs) B / 16 cycles.
LAYERS = [
    ("stem", "stem.in_conv", "3x3 s2 dense conv on the 3-channel image: reduction C*FY*FX = 27 < 32 rows"),
    (
        "pointwise_compute_bound",
        "stages.2.blocks.1.local_module.main.point_conv",
        (
            "512->128 at 14x14: the pointwise conv with the highest MACs per DRAM byte "
            "(67 MAC/B > the 64 MAC/B ridge of 1024 MAC/cycle over 16 B/cycle); "
            "64 weight folds of 196 positions each"
        ),
    ),
    (
        "pointwise_dram_bound",
        "head.in_conv",
        (
            "256->1536 at 7x7: 384 KiB of weights (more than the 256 KiB weight buffer) for 49 positions, "
            "40 MAC/B: DRAM-bound"
        ),
    ),
    ("depthwise_3x3", "stages.1.blocks.1.main.depth_conv", "3x3 s1 depthwise, 256 channels at 28x28"),
    (
        "depthwise_5x5",
        "stages.2.blocks.1.context_module.main.aggreg.0.0",
        "5x5 depthwise of the LiteMLA multi-scale aggregation, 384 channels at 14x14",
    ),
    (
        "grouped_1x1",
        "stages.2.blocks.1.context_module.main.aggreg.0.1",
        "grouped 1x1 of the aggregation: 24 groups of 16->16 at 14x14",
    ),
    (
        "attention_matmul",
        "stages.2.blocks.1.context_module.main.matmul",
        "ReLU linear attention k^T v (v padded with a ones row): "
        "16 heads of (16x196)(196x17), int8 in, int32 out",
    ),
    ("fc", "head.classifier.4", "the classifier 1600->1000 for one image: every weight used once"),
]


def _build_graph():
    from archsim.workload.config import load_workload

    try:  # the lead is moving build_graph to archsim.frontend.build
        from archsim.frontend.build import build_graph
    except ImportError:
        from archsim.graph.build import build_graph  # before the frontend move  # noqa: F401
    workload = load_workload(WORKLOAD, policy=POLICY)
    return workload, build_graph(workload, quality_samples=0)


def conv_dims(layer) -> dict:
    n, k, oy, ox = layer.out_shape
    _, c, iy, ix = layer.in_shapes[0]
    fy, fx = layer.kernel
    sy, sx = layer.stride
    top, bottom, left, right = layer.padding  # (top, bottom, left, right) since graph schema 2
    px = left
    if sy != sx or len({top, bottom, left, right}) != 1:
        raise ValueError(f"{layer.name}: non-square stride/padding {layer.stride}/{layer.padding}")
    g = layer.groups
    if layer.kind.name == "CONV_DEPTHWISE":
        g = c  # archsim keeps depthwise as its own kind; as a loop nest it is groups = C, one channel each
    return {
        "N": n,
        "C": c,
        "K": k,
        "OX": ox,
        "OY": oy,
        "FX": fx,
        "FY": fy,
        "IX": ix,
        "IY": iy,
        "stride": sx,
        "padding": px,
        "groups": g,
    }


def matmul_dims(layer) -> dict:
    """(..., M, K) x (..., K, N): batch dims, M and N from the output; K from the MAC count (checked)."""
    *batch, m, n = layer.out_shape
    b = math.prod(batch)
    k, rem = divmod(layer.macs, b * m * n)
    if rem or k != layer.in_shapes[0][-1]:
        raise ValueError(
            f"{layer.name}: MACs {layer.macs} do not factor as B*M*K*N with K = in_shapes[0][-1]"
        )
    return {"B": b, "M": m, "K": k, "N": n}


def describe(role: str, layer, why: str) -> dict:
    kind = layer.kind.name.lower()
    rec = {
        "role": role,
        "name": layer.name,
        "kind": kind,
        "why": why,
        "weight_bits": layer.weight_bits,
        "act_bits": layer.act_bits,
        "out_bits": layer.out_bits,
        "macs": layer.macs,
    }
    if kind == "matmul":
        rec.update(matmul_dims(layer))
        rec["operand_bits"] = {"A": layer.act_bits, "B": layer.act_bits, "O": layer.out_bits}
    elif kind == "linear":
        m_pos = math.prod(layer.in_shapes[0][:-1])  # positions (batch and any leading dims)
        k_in, n_out = layer.in_shapes[0][-1], layer.out_shape[-1]
        # as a conv: N = positions, on a 1x1 map
        rec.update(
            {
                "N": m_pos,
                "C": k_in,
                "K": n_out,
                "OX": 1,
                "OY": 1,
                "FX": 1,
                "FY": 1,
                "IX": 1,
                "IY": 1,
                "stride": 1,
                "padding": 0,
                "groups": 1,
            }
        )
        rec["gemm"] = {"B": 1, "M": m_pos, "K": k_in, "N": n_out}
    else:
        rec.update(conv_dims(layer))
    rec["check_macs"] = _macs(rec)
    if rec["check_macs"] != layer.macs:
        raise ValueError(
            f"{layer.name}: loop bounds give {rec['check_macs']} MACs, the graph says {layer.macs}"
        )
    return rec


def _macs(rec: dict) -> int:
    if rec["kind"] == "matmul":
        return rec["B"] * rec["M"] * rec["K"] * rec["N"]
    return rec["N"] * rec["K"] * rec["OX"] * rec["OY"] * (rec["C"] // rec["groups"]) * rec["FX"] * rec["FY"]


def main() -> int:
    from archsim.graph.ir import layers as ordered_layers

    workload, graph = _build_graph()
    by_name = {layer.name: layer for layer in ordered_layers(graph)}
    missing = [name for _, name, _ in LAYERS if name not in by_name]
    if missing:
        print(f"layers not in the graph: {missing}", file=sys.stderr)
        return 1
    out = {
        "workload": WORKLOAD,
        "policy": POLICY,
        "resolution": workload.resolution,
        "batch": workload.batch,
        "source": (
            "archsim graph (build_graph on load_workload(efficientvit_b1, policy=uniform_w8a8_plain))"
        ),
        "conventions": {
            "conv": "O[n][g][k][oy][ox] += W[g][k][c][fy][fx] * "
            "I[n][g][c][oy*stride+fy-padding][ox*stride+fx-padding];"
            " C and K are total channels (per group: C/groups, K/groups); IX, IY unpadded input size",
            "matmul": "O[b][m][n] += A[b][m][k] * B[b][k][n]; b = batch x heads",
            "linear": "a 1x1 conv on a 1x1 map (C in features, K out features, N positions) = GEMM M=N",
        },
        "layers": [describe(role, by_name[name], why) for role, name, why in LAYERS],
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    for rec in out["layers"]:
        print(f"{rec['role']:24s} {rec['name']:50s} {rec['kind']:15s} MACs {rec['macs']}")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
