"""Errors the twin raises; each names where the bad input is and what was expected."""

from __future__ import annotations

from dataclasses import dataclass


class TwinError(Exception):
    """Base class of every error the twin raises on purpose."""


class InvalidInputError(TwinError):
    """An input the twin cannot honour (a file, field or value); the CLI exits 2 on it.

    Other :class:`TwinError` (a ledger that does not balance, a harness that failed) exit 1.
    """


@dataclass(frozen=True)
class FieldProblem:
    """One problem found in an input file.

    Attributes
    ----------
    field : str
        Dotted path of the field, e.g. ``fleet.racks`` or ``workloads.0.model``.
    message : str
        What was expected and what was found.
    line : int | None
        1-based line in the file where the field is, when known.
    """

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.field}{where}: {self.message}"


class ScenarioError(InvalidInputError, ValueError):
    """A scenario (or sweep spec) file is invalid; lists every problem with its field path."""

    def __init__(self, source: str, problems: list[FieldProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class ConsistencyError(InvalidInputError, ValueError):
    """A facility built from a valid scenario is physically inconsistent (e.g. undersized UPS)."""


class TraceFormatError(InvalidInputError, ValueError):
    """A trace file is malformed; names the file, the line and the field."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path = path
        self.line = line
        self.field = field
        where = path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class UnknownNameError(InvalidInputError, KeyError):
    """A name (accelerator, model, curve, ...) is not in its catalog; lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = valid
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")

    def __str__(self) -> str:
        return str(self.args[0])


class OutputPathError(InvalidInputError):
    """An output path a command cannot write: a folder given for a file, a file for a folder, a file on its way."""
