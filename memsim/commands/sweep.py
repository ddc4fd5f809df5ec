"""``memsim sweep FILE --grid PATH=V1,V2 ... [--points CSV] [--out results.csv|json]``."""
from __future__ import annotations

import sys

import click

from ..config import GRANULARITIES, parse_override
from . import NullFile

__all__ = ["sweep"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...",
              help="Values of one field; the sweep runs the cartesian product of all --grid "
                   "options (repeatable).")
@click.option("--points", "points_file", type=click.Path(dir_okay=False, path_type=str),
              default=None, help="CSV of points: header = override paths, one point a row "
                                 "(combined with --grid as a product).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a field for every point (repeatable).")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default=None,
              help="Simulation granularity for every point (block/wave: coarse and fast).")
@click.option("--out", "outs", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="Write the table to a .csv or .json file (repeatable; default: CSV on "
                   "stdout).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores; 1 = no subprocess).")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="Send the points to a Dask distributed scheduler (e.g. tcp://host:8786) "
                   "instead of local processes; needs memsim[dask].")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def sweep(file: str, grids: tuple[str, ...], points_file: str | None, sets: tuple[str, ...],
          granularity: str | None, outs: tuple[str, ...], jobs: int | None,
          dask_address: str | None, progress: bool | None) -> None:
    """Run the configuration FILE at every point of a grid (or a CSV of points)."""
    from ..errors import InputError
    from ..sweep import grid_points, parse_grid, read_points_csv, run_sweep
    points = grid_points([parse_grid(g) for g in grids]) if grids else [{}]
    if points_file:
        listed = read_points_csv(points_file)
        points = [{**p, **q} for q in listed for p in points]
    elif not grids:
        raise InputError("memsim sweep needs --grid PATH=V1,V2,... or --points FILE.csv")
    overrides = [parse_override(s) for s in sets]
    if granularity:
        overrides.append(("simulation.granularity", granularity))
    for out in outs:
        if not out.lower().endswith((".csv", ".json")):
            raise InputError(f"--out {out}: expected a .csv or .json file name")
    show = sys.stderr.isatty() if progress is None else progress
    with click.progressbar(length=len(points), label=f"{len(points)} points",
                           file=sys.stderr if show else NullFile()) as bar:
        table = run_sweep(file, points, overrides=overrides, jobs=jobs,
                          dask=dask_address, progress=bar.update)
    for out in outs:
        click.echo(f"wrote {table.write(out)}", err=True)
    if not outs:
        click.echo(table.to_csv(), nl=False)
    failed = table.failed
    if failed:
        click.echo(f"memsim sweep: {len(failed)} of {len(table.rows)} points failed (see the "
                   "'error' column); first: point {i}: {e}".format(
                       i=failed[0]["index"], e=failed[0]["error"]), err=True)
        if len(failed) == len(table.rows):
            raise click.exceptions.Exit(2)
