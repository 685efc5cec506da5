"""Compare two runs' integers layer by layer (the simulated hardware's values against a reference).

The reference is normally the torch oracle (archsim.quant.integer_model.IntegerModel), which
computes the same quantized graph independently of the executor; any other tool's per-layer
codes (an ``--dump-values`` file) compare the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def compare_layer(values: np.ndarray, reference: np.ndarray) -> dict:
    """elements, mismatches, max_diff and the first mismatching index (row-major, as a list) of one layer."""
    ours, ref = np.asarray(values, dtype=np.int64), np.asarray(reference, dtype=np.int64)
    if ours.shape != ref.shape:
        return {
            "elements": int(ref.size),
            "mismatches": int(ref.size),
            "max_diff": None,
            "first_mismatch": None,
            "shape_mismatch": [list(ours.shape), list(ref.shape)],
        }
    diff = np.abs(ours - ref)
    wrong = np.flatnonzero(diff)
    first = None if wrong.size == 0 else [int(i) for i in np.unravel_index(wrong[0], ref.shape)]
    return {
        "elements": int(ref.size),
        "mismatches": int(wrong.size),
        "max_diff": int(diff.max(initial=0)),
        "first_mismatch": first,
    }


def compare_values(
    values: dict[str, np.ndarray], reference: dict[str, np.ndarray], order: Iterable[str], reference_name: str
) -> dict:
    """``checks.functional`` of a result: per layer (in ``order``) the comparison, and the totals.

    ``first_mismatching_layer`` is the first layer in order with a mismatch (None when all agree);
    a layer missing from either side counts as entirely mismatched.
    """
    layers, mismatches, first_layer = [], 0, None
    for name in order:
        if name not in values or name not in reference:
            size = int(np.asarray(values.get(name, reference.get(name, np.zeros(0)))).size)
            row = {
                "layer": name,
                "elements": size,
                "mismatches": size,
                "max_diff": None,
                "first_mismatch": None,
                "missing_in": "run" if name not in values else "reference",
            }
        else:
            row = {"layer": name, **compare_layer(values[name], reference[name])}
        layers.append(row)
        mismatches += row["mismatches"]
        if row["mismatches"] and first_layer is None:
            first_layer = name
    return {
        "reference": reference_name,
        "layers_checked": len(layers),
        "elements_checked": sum(r["elements"] for r in layers),
        "mismatches": mismatches,
        "first_mismatching_layer": first_layer,
        "held": mismatches == 0,
        "layers": layers,
    }


def format_check(check: dict, limit: int = 10) -> str:
    """A terminal table: every mismatching layer (up to ``limit``), else one line of agreement."""
    head = (
        f"values    {check['layers_checked']} layers, {check['elements_checked']:,} elements checked "
        f"against {check['reference']}: {check['mismatches']:,} mismatches"
    )
    bad = [r for r in check["layers"] if r["mismatches"]]
    if not bad:
        return head + " (bit-exact)"
    lines = [
        head,
        f"first mismatch at layer {check['first_mismatching_layer']}",
        f"{'layer':<48} {'elements':>10} {'mismatches':>10} {'max diff':>8}  first index",
    ]
    for r in bad[:limit]:
        lines.append(
            f"{r['layer']:<48} {r['elements']:>10,} {r['mismatches']:>10,} "
            f"{'-' if r['max_diff'] is None else r['max_diff']:>8}  {r['first_mismatch']}"
        )
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more layers")
    return "\n".join(lines)
