"""Physical-limit checks every run must pass; a failure is a simulator bug (InvariantError).

- latency >= roofline bound: max(max over engines of sum(ops / peak ops per cycle of the
  mode used) cycles, compulsory DRAM bytes / peak bandwidth) (Williams et al., CACM 2009);
- achieved DRAM bandwidth (bytes moved / latency) <= peak;
- each engine's ops per busy cycle <= its peak;
- energy >= sum(ops x per-op energy) + compulsory DRAM bytes x per-byte energy.
"""

from __future__ import annotations

from fractions import Fraction

from archsim.sim.errors import InvariantError

REL_TOL = 1e-9  # float-summation slack for the energy comparison only


def check(name: str, value: float, bound: float, unit: str, *, upper: bool = False, tol: float = 0.0) -> dict:
    """One record {value, bound, unit, held}; lower bound unless ``upper``."""
    slack = tol * abs(bound)
    held = value <= bound + slack if upper else value >= bound - slack
    return {"value": float(value), "bound": float(bound), "unit": unit, "held": bool(held)}


def roofline_bound_ps(
    engine_work_cycles: dict[str, Fraction], compulsory_bytes: int, bytes_per_ps: Fraction, period_ps: int
) -> Fraction:
    compute = max(engine_work_cycles.values(), default=Fraction(0)) * period_ps
    return max(compute, Fraction(compulsory_bytes) / bytes_per_ps)


def raise_on_violation(checks: dict[str, dict]) -> None:
    bad = {k: v for k, v in checks.items() if not v["held"]}
    if bad:
        raise InvariantError(f"simulator invariant(s) violated (a bug, please report): {bad}")
