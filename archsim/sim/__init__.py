"""The SimPy accelerator model: mapping, memory plan, per-tile simulation, checks.

Public entry point: :func:`simulate`.
"""

from archsim.sim.errors import InvariantError, MappingError
from archsim.sim.simulate import simulate

__all__ = ["simulate", "MappingError", "InvariantError"]
