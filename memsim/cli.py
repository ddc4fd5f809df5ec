"""The ``memsim`` command line: a thin layer over the library.

Each command lives in its own module under ``memsim/commands/`` and is registered below.
Bad input (``InputError``) prints one line on stderr and exits 2; internal errors exit 1.
"""
from __future__ import annotations

import sys

import click

from . import __version__
from .commands import InputFailure
from .errors import InputError


class _Group(click.Group):
    """The command group: an ``InputError`` from any command (or its argument parsing)
    becomes :class:`InputFailure`, so every command reports bad input the same way."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            raise InputFailure(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memsim")
def cli() -> None:
    """memsim: how many bytes move between which memory levels, how long it takes, and how far
    that is from the physical limit."""


def _register() -> None:
    # one line per command module; each module defines a click command or group
    from .commands import hardware as _hardware
    cli.add_command(_hardware.hardware)
    cli.add_command(_hardware.validate)
    from .commands import run as _run
    cli.add_command(_run.run)
    from .commands import report as _report
    cli.add_command(_report.report)
    from .commands import validate_gpu as _validate_gpu
    cli.add_command(_validate_gpu.validate_gpu)
    from .commands import validate_llm as _validate_llm
    cli.add_command(_validate_llm.validate_llm)
    from .commands import sweep as _sweep
    cli.add_command(_sweep.sweep)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: maps errors to exit codes."""
    try:
        # with standalone_mode=False click *returns* the code of a raised Exit (e.g. exit 2)
        code = cli.main(args=argv, prog_name="memsim", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            return code
    except click.exceptions.Abort:
        click.echo("memsim: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
