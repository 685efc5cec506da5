"""Per-layer table of cycles and energy: archsim against ZigZag, SCALE-Sim and the hand-derived WS array.

    python3 benchmarks/crosscheck/compare.py [--archsim results/archsim.json] [--markdown]

Reads results/zigzag.json, results/scalesim.json and results/hand.json (whichever exist) and the archsim
results file. The archsim file is JSON mapping each layer name (as in layers.json) to
{"cycles": <int, 1 GHz cycles>, "energy_j": <float, joules>}; the mapping may also sit under a "layers" key.
With the archsim file present every ratio is tool / archsim; without it the peer tools are printed side by
side with ratios to the hand-derived array (hand_ws.py). A "!" marks cycles below the layer's lower bound,
max(MACs / 1024, compulsory DRAM bytes / 16 B/cycle): a figure no 32x32 array on one 16 B/cycle port
can reach.

Plain Python (json only): runs in either environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = ("zigzag", "scalesim", "hand")


def load(path: Path) -> dict[str, dict] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    layers = data.get("layers", data)
    return {name: {"cycles": rec["cycles"], "energy_j": rec["energy_j"]} for name, rec in layers.items()}


def layer_order() -> list[tuple[str, str]]:
    path = HERE / "layers.json"
    if not path.exists():
        return []
    return [(rec["role"], rec["name"]) for rec in json.loads(path.read_text())["layers"]]


def lower_bounds(results: Path) -> dict[str, int]:
    """Per layer, the cycles no design can beat: max(MACs / 1024, compulsory DRAM bytes / 16 B/cycle), from
    hand.json (which records both terms); empty when hand.json is missing."""
    path = results / "hand.json"
    if not path.exists():
        return {}
    layers = json.loads(path.read_text())["layers"]
    macs = (
        {rec["name"]: rec["macs"] for rec in json.loads((HERE / "layers.json").read_text())["layers"]}
        if (HERE / "layers.json").exists()
        else {}
    )
    return {name: max(rec["dram_cycles"], -(-macs.get(name, 0) // 1024)) for name, rec in layers.items()}


def table(
    sources: dict[str, dict],
    ref: str,
    order: list[tuple[str, str]],
    markdown: bool,
    bounds: dict[str, int] | None = None,
) -> str:
    names = [n for _, n in order] or sorted({n for s in sources.values() for n in s})
    roles = {n: r for r, n in order}
    cols = list(sources)
    head = ["layer"] + [f"{c} cycles" for c in cols] + [f"{c} uJ" for c in cols]
    rows = []
    for name in names:
        row = [roles.get(name, name)]
        for metric, fmt in (("cycles", "{:.0f}"), ("energy_j", "{:.2f}")):
            for c in cols:
                rec = sources[c].get(name)
                if rec is None:
                    row.append("-")
                    continue
                value = rec[metric] * (1e6 if metric == "energy_j" else 1)
                cell = fmt.format(value)
                base = sources[ref].get(name)
                if c != ref and base and base[metric]:
                    cell += f" ({rec[metric] / base[metric]:.2f}x)"
                if metric == "cycles" and bounds and rec["cycles"] < bounds.get(name, 0):
                    cell += " !"
                row.append(cell)
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def fmt_row(r):
        return "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt_row(head), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--archsim",
        type=Path,
        default=HERE / "results" / "archsim.json",
        help="archsim results: {layer name: {cycles, energy_j}} (default results/archsim.json)",
    )
    ap.add_argument("--results", type=Path, default=HERE / "results", help="folder of <tool>.json files")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    sources: dict[str, dict] = {}
    archsim = load(args.archsim)
    if archsim is not None:
        sources["archsim"] = archsim
    for tool in PEERS:
        got = load(args.results / f"{tool}.json")
        if got is not None:
            sources[tool] = got
    if not sources:
        print(
            f"no results in {args.results}: run run_zigzag.py, run_scalesim.py and hand_ws.py first",
            file=sys.stderr,
        )
        return 1
    ref = "archsim" if archsim is not None else ("hand" if "hand" in sources else next(iter(sources)))
    if archsim is None:
        print(f"(no archsim results at {args.archsim.name}: peer tools side by side, ratios to {ref})")
    else:
        print("(ratios to archsim)")
    bounds = lower_bounds(args.results)
    print(table(sources, ref, layer_order(), args.markdown, bounds))
    if bounds:
        print(
            "! = below the layer's lower bound max(MACs / 1024, compulsory DRAM bytes / 16 B/cycle): "
            "impossible"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
