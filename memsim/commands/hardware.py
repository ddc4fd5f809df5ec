"""``memsim hardware list|show`` and ``memsim validate`` (placeholder until the foundation lands)."""
from __future__ import annotations

import click

from ..hardware import load_hardware, preset_names


@click.group()
def hardware() -> None:
    """List and show hardware descriptions."""


@hardware.command("list")
def list_presets() -> None:
    """List the shipped hardware presets."""
    for name in preset_names():
        hw = load_hardware(name)
        click.echo(f"{name}\t{hw.kind}\t{hw.description}")


@hardware.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show one hardware description (preset name or YAML file)."""
    click.echo(repr(load_hardware(name)))


@click.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Validate hardware YAML files."""
    for file in files:
        load_hardware(file)
        click.echo(f"{file}: ok")
