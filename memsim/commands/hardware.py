"""``memsim hardware list|show`` and ``memsim validate``.

``validate_file`` is the single place that decides what kind of document a YAML file is: run
configurations (a top-level ``workload`` key) go to ``memsim.config``, everything else is read
as a hardware description. Add new document kinds there.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from ..hardware import hardware_to_dict, load_hardware, preset_names
from ..hardware.loader import hardware_from_document
from ..hardware.summary import hardware_table, summary_line
from ..spec import load_document

__all__ = ["hardware", "validate", "validate_file"]


@click.group()
def hardware() -> None:
    """List and show hardware descriptions (presets or YAML files)."""


@hardware.command("list")
def list_presets() -> None:
    """List the shipped hardware presets: name, kind, one-line summary."""
    rows = []
    for name in preset_names():
        hw = load_hardware(name)
        rows.append((name, hw.kind, summary_line(hw)))
    width_name = max(len(r[0]) for r in rows)
    width_kind = max(len(r[1]) for r in rows)
    for name, kind, summary in rows:
        click.echo(f"{name.ljust(width_name)}  {kind.ljust(width_kind)}  {summary}")


@hardware.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json", "table"]), default="yaml",
              show_default=True,
              help="yaml: canonical YAML with units; json: SI base units (bytes, bytes/s, "
                   "FLOP/s, s, Hz); table: a readable summary.")
def show(name: str, fmt: str) -> None:
    """Show one hardware description: a preset NAME or a YAML FILE."""
    hw = load_hardware(name)
    if fmt == "yaml":
        click.echo(hw.to_yaml(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(hardware_to_dict(hw), indent=2))
    else:
        click.echo(hardware_table(hw))


def validate_file(path: str | Path) -> str:
    """Validate one YAML file; return a short description of what it is.

    Dispatches on the top-level keys: a mapping with ``workload`` is a run configuration
    (``memsim.config.validate_run_config``); anything else must be a hardware description.
    Raises ``InputError`` (a located ``SpecError``) on the first problem.
    """
    doc = load_document(path)
    if isinstance(doc.data, dict) and "workload" in doc.data:
        from ..config import validate_run_config
        validate_run_config(path)
        return "run configuration"
    hw = hardware_from_document(doc)
    return f"hardware {hw.name!r}"


@click.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Check hardware descriptions and run configurations; exit 2 if any file is bad.

    Every file is checked; each bad one gets one line on stderr.
    """
    failed = 0
    for file in files:
        try:
            what = validate_file(file)
        except InputError as exc:
            failed += 1
            click.echo(f"memsim: error: {' '.join(str(exc).split())}", err=True)
            continue
        click.echo(f"{file}: ok ({what})")
    if failed:
        raise click.exceptions.Exit(2)
