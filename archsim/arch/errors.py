"""The one error type of the architecture front end: every problem with file, line and field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based; None when the file has no line to point at (not found)
    field: str  # dotted path, e.g. "engines.mpma.modes.single.lanes"; "" for the whole file
    message: str

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ArchConfigError(ValueError):
    """An architecture YAML that cannot be loaded; ``problems`` lists every problem found."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.field))
        lines = [p.render(file) for p in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{file}: {len(lines)} problems in architecture config:")
            lines[1:] = ["  " + line for line in lines[1:]]
        super().__init__("\n".join(lines))
