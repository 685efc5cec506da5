"""Derived columns: formulas evaluated for each point (a multiplier budget, an area, a figure of merit).

A formula is an expression of Python syntax evaluated by ``simpleeval`` (a small, well-kept
evaluator with no access to builtins, attributes of Python objects, imports or assignments; never
``eval``). The names it can use:

- ``arch``: the point's architecture document after its overrides, as written in the YAML, with
  every quantity string in SI units (``arch.dram.peak_bandwidth`` is 1.92e10 B/s for
  "19.2 GB/s", ``arch.buffers.act_buffer.capacity`` 524288 B for "512 KiB");
- ``workload``: the workload's fields (``workload.resolution``, ``workload.policy``, ...);
- the result's fields: ``latency_s``, ``energy_j``, ``edp_js``, ``latency_cycles``, ``engines``,
  ``dram``, ``energy_breakdown_j`` (``engines.sat.utilization``);
- functions: ``min max abs round sqrt log log2 log10 exp ceil floor``.

A formula that fails (a name the point's architecture lacks, a division by zero) makes its point's
row say so; a formula's value must be a number.
"""

from __future__ import annotations

import math
from typing import Any

FUNCTIONS = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "sqrt": math.sqrt,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "exp": math.exp,
    "ceil": math.ceil,
    "floor": math.floor,
}
RESULT_FIELDS = (
    "latency_s",
    "latency_cycles",
    "energy_j",
    "edp_js",
    "events",
    "clock_hz",
    "engines",
    "dram",
    "energy_breakdown_j",
)


class DerivedError(ValueError):
    """A derived column's formula that cannot be evaluated for a point."""


class Fields:
    """A read-only view of a mapping whose keys are attributes (``arch.engines.sat.rows``) and items
    (``arch.energy["mac_int8"].value``); only the mapping's keys are reachable."""

    __slots__ = ("_data", "_where")

    def __init__(self, data: dict, where: str):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_where", where)

    def __getattr__(self, name: str) -> Any:
        try:
            return wrap(self._data[name], f"{self._where}.{name}")
        except KeyError:
            keys = ", ".join(map(str, self._data)) or "none"
            raise DerivedError(f"{self._where} has no {name!r} (it has: {keys})") from None

    __getitem__ = __getattr__

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only")


def wrap(value: Any, where: str) -> Any:
    return Fields(value, where) if isinstance(value, dict) else value


def si_values(value: Any) -> Any:
    """``value`` with every quantity string ("19.2 GB/s") replaced by its SI number."""
    from archsim.arch.units import DIMENSIONS, classify, parse_quantity

    if isinstance(value, dict):
        return {k: si_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [si_values(v) for v in value]
    if isinstance(value, str) and any(c.isdigit() for c in value):
        dim = classify(value)
        if dim in DIMENSIONS:
            return parse_quantity(value, dim)
    return value


def names(arch_data: dict, workload: dict, result: dict | None) -> dict[str, Any]:
    """The names a formula sees for one point."""
    out: dict[str, Any] = {"arch": wrap(si_values(arch_data), "arch"), "workload": wrap(workload, "workload")}
    for key in RESULT_FIELDS:
        if result is not None and key in result:
            out[key] = wrap(result[key], key)
    return out


def evaluate(name: str, expr: str, variables: dict[str, Any]) -> float:
    """The value of ``expr``; :class:`DerivedError` naming the column when it cannot be computed."""
    from simpleeval import SimpleEval

    evaluator = SimpleEval(functions=FUNCTIONS, names=variables)
    try:
        value = evaluator.eval(expr)
    except DerivedError as err:
        raise DerivedError(f"derived {name}: {err}") from None
    except Exception as err:  # noqa: BLE001 - simpleeval's errors (unknown name, feature), arithmetic
        raise DerivedError(f"derived {name}: {type(err).__name__}: {err}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DerivedError(
            f"derived {name}: the formula gives {type(value).__name__} {value!r}, not a number"
        )
    return value
