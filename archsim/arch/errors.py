"""The one error type of the architecture front end: every problem with file, line and field.

:class:`Problem` and the rendering ``file:line: field: value: what is allowed`` are shared by
every archsim YAML loader (:mod:`archsim.configfile`).
"""

from __future__ import annotations

from archsim.configfile import ConfigFileError, Problem

__all__ = ["ArchConfigError", "Problem"]


class ArchConfigError(ConfigFileError):
    """An architecture YAML that cannot be loaded; ``problems`` lists every problem found."""

    what = "architecture config"
