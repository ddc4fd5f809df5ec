"""Click commands of the memsim CLI, one module per command (group)."""
from __future__ import annotations

import click

__all__ = ["InputFailure", "NullFile", "save_plot"]


class InputFailure(click.ClickException):
    """An ``InputError`` raised inside a command: one line on stderr, exit code 2 (also under
    click's ``CliRunner``, which does not go through ``memsim.cli.main``)."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"memsim: error: {' '.join(self.message.splitlines())}", err=True)


class NullFile:
    """A file that discards writes (a progress bar that is off)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def save_plot(fig, path) -> None:
    """Write ``fig`` to ``path`` (a ``--plot`` option) in the format its extension names: png
    (also without an extension), pdf or svg; other extensions are a clear error."""
    from pathlib import Path

    from ..errors import InputError
    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    if suffix not in ("png", "pdf", "svg"):
        raise InputError(f"--plot {path!r}: expected a .png, .pdf or .svg file name")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=suffix, dpi=120)
