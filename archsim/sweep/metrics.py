"""Metrics: the result fields a sweep collects as columns, each with its unit.

A metric is a dotted path into the result JSON (``SimResult.to_dict()``); ``*`` stands for every
key at that place (``engines.*.utilization`` is one column per engine of the point's
architecture). Only the fields of :data:`UNITS` can be collected, so every column has a unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

WILDCARD = "*"

# the collectable fields of a result and their units (the result's own field names say the unit)
UNITS: dict[str, str] = {
    "latency_s": "s",
    "latency_cycles": "cycles of the accelerator clock",
    "energy_j": "J",
    "edp_js": "J*s",
    "events": "SimPy events processed",
    "clock_hz": "Hz",
    "energy_breakdown_j.*": "J",
    "engines.*.utilization": "busy cycles / total cycles",
    "engines.*.busy_cycles": "cycles",
    "engines.*.macs": "ops (MACs, shift-adds or vector ops)",
    "engines.*.peak_ops_per_cycle": "ops/cycle",
    "engines.*.achieved_ops_per_cycle": "ops/cycle (over the busy cycles)",
    "dram.bytes_read": "B",
    "dram.bytes_written": "B",
    "dram.achieved_bandwidth_Bps": "B/s",
    "dram.peak_bandwidth_Bps": "B/s",
    "dram.bus_busy_s": "s",
    "energy.per_inference_j": "J per inference",
    "energy.per_mac_j": "J per MAC",
    "energy.by_engine_j.*": "J",
    "energy.by_op_kind_j.*": "J",
    "energy.by_event_kind_j.*": "J",
    "bounds.latency_s.value": "s",
    "bounds.energy_j.value": "J",
    "bounds.edp_js.value": "J*s",
}
# [choice] what a sweep collects unless its file says otherwise
DEFAULT_METRICS = (
    "latency_s",
    "latency_cycles",
    "energy_j",
    "edp_js",
    "engines.*.utilization",
    "dram.bytes_read",
    "dram.bytes_written",
)


def _pattern(name: str) -> str | None:
    """The :data:`UNITS` entry ``name`` (a metric or a column) falls under, or None."""
    parts = name.split(".")
    for pattern in UNITS:
        pparts = pattern.split(".")
        if len(pparts) == len(parts) and all(p == q or q == WILDCARD for p, q in zip(parts, pparts)):
            return pattern
    return None


def check_metric(name: str) -> str:
    """``name`` if it can be collected; ValueError saying what can otherwise."""
    if _pattern(name) is None:
        raise ValueError(
            "unknown metric; allowed: " + ", ".join(UNITS) + " (* or one name, e.g. engines.sat.utilization)"
        )
    return name


def is_metric(column: str) -> bool:
    return _pattern(column) is not None


def unit_of(column: str) -> str:
    pattern = _pattern(column)
    if pattern is None:
        raise KeyError(column)
    return UNITS[pattern]


def _expand(node: Any, parts: Sequence[str], prefix: str, out: dict[str, Any]) -> None:
    if not parts:
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            out[prefix] = node
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    keys = list(node) if head == WILDCARD else [head]
    for key in keys:
        if key in node:
            _expand(node[key], rest, f"{prefix}.{key}" if prefix else key, out)


def extract(result: dict, metrics: Iterable[str]) -> dict[str, Any]:
    """The metric columns of one result: column name -> number, wildcards expanded in the result's
    own key order; a field the result lacks (an engine another architecture has) is left out."""
    out: dict[str, Any] = {}
    for metric in metrics:
        _expand(result, metric.split("."), "", out)
    return out
