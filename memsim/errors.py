"""Errors that memsim reports to users.

``InputError`` and its subclasses mean *bad input*: the CLI prints the message on one line and
exits with code 2. Anything else escaping the library is an internal error (exit code 1).
"""
from __future__ import annotations

__all__ = ["InputError", "SpecError", "CapacityError", "ScheduleError"]


class InputError(Exception):
    """Bad user input: a malformed file, an impossible configuration, a model that does not fit."""


class SpecError(InputError):
    """A YAML document (hardware, run config, model) that does not follow its schema.

    The message names the file, the line, the YAML path, what was found and what was expected.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: str | None = None):
        self.file = file
        self.line = line
        self.path = path
        # one line on the terminal: YAML parser problems and repr()s may carry newlines
        message = " ".join(str(message).split())
        self.detail = message
        where = []
        if file:
            where.append(f"{file}:{line}" if line else file)
        elif line:
            where.append(f"line {line}")
        prefix = ": ".join(where + ([path] if path else []))
        super().__init__(f"{prefix}: {message}" if prefix else message)


class CapacityError(InputError):
    """A buffer, tensor or model that does not fit in a memory level."""


class ScheduleError(InputError):
    """A schedule that cannot run on the given hardware or workload."""


class SramFitError(ScheduleError):
    """A schedule's block (its tiles and pipeline stages) that does not fit in SRAM."""
