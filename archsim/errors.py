"""The error classes the command line tells apart.

- :class:`ConfigError`: bad user input (a config file, a name, an option value). The command
  line prints its message and exits with code 2, like a usage error; no traceback unless
  ``--debug``.
- :class:`RunError`: the input was accepted but the run could not finish (an output file that
  cannot be written). Exit code 1, no traceback unless ``--debug``; so are the simulator's
  ``MappingError`` and ``InvariantError`` and any unexpected exception (an internal error).

Other ``ValueError``/``OSError`` (data files that turn out unreadable) count as bad input (2).

Every loader's error derives from :class:`ConfigError` (``ArchConfigError``, ``WorkloadError``,
``PolicyError``, ``ResourceError``, ``UnsupportedWorkloadError``); each is also a ``ValueError``
so callers that catch ``ValueError`` keep working.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input: a config file, a bundled name or an option value (exit code 2)."""


class RunError(RuntimeError):
    """A run that could not finish although its inputs were valid (exit code 1)."""
