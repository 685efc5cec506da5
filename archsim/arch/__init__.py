"""Architecture front end: YAML schema, units, loading with file:line errors, coverage checks.

Submodules are imported on first use so that ``import archsim.arch`` stays fast (pint and
pydantic are only loaded when a YAML is actually parsed).
"""

_EXPORTS = {
    "load_arch": "archsim.arch.loader",
    "ArchConfigError": "archsim.arch.errors",
    "check_supports": "archsim.arch.coverage",
    "graph_needs": "archsim.arch.coverage",
    "parse_quantity": "archsim.arch.units",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'archsim.arch' has no attribute {name!r}")
