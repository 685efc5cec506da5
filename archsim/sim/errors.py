"""Errors the simulator raises: bad mapping input, and broken invariants (simulator bugs)."""


class MappingError(ValueError):
    """A layer cannot run on any engine mode the architecture offers."""


class InvariantError(AssertionError):
    """A physical lower bound was beaten: this is a simulator bug, never a valid result."""
