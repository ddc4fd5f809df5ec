"""``memsim run FILE.yaml``: simulate one run configuration and print its result."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from ..config import GRANULARITIES, load_run_config, parse_override

__all__ = ["run"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a field, e.g. --set workload.batch=8 "
                   "--set hardware.memories.sram.capacity=128KiB (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format; json is the result contract.")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default=None,
              help="Simulation granularity (default: the config's, else tile).")
@click.option("--trace", "trace_file", type=click.Path(dir_okay=False, path_type=str),
              default=None, help="Record the event trace and write it to this JSON file.")
@click.option("--check-numerics", is_flag=True,
              help="Also run the schedule's tiling on real numbers (numba) and add the error "
                   "against a float64 reference to the result (attention workloads).")
def run(file: str, sets: tuple[str, ...], fmt: str, granularity: str | None,
        trace_file: str | None, check_numerics: bool) -> None:
    """Simulate the run configuration FILE and print the result."""
    from ..simulate import simulate
    overrides = [parse_override(text) for text in sets]
    if granularity is not None:
        overrides.append(("simulation.granularity", granularity))
    if trace_file is not None:
        overrides.append(("simulation.trace", True))
    config = load_run_config(file, overrides)
    result = simulate(config, check_numerics=check_numerics)
    if trace_file is not None:
        events = [dict(e) for e in (result.trace or ())]
        Path(trace_file).write_text(json.dumps(events) + "\n", encoding="utf-8")
        result = dataclasses.replace(result, trace=None)   # the trace went to the file
    if fmt == "json":
        click.echo(result.to_json())
    elif fmt == "csv":
        click.echo(result.to_csv(), nl=False)
    else:
        click.echo(result.to_table())
