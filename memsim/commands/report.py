"""``memsim report FILE --out DIR``: figures, a self-contained HTML page and a Markdown summary
of one run (a run configuration, which is simulated, or a result JSON from ``memsim run
--format json``)."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import GRANULARITIES, load_run_config, parse_override

__all__ = ["report"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=str),
              required=True, help="Directory for the figures, report.html and report.md.")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a field of the run configuration (repeatable).")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default=None,
              help="Simulation granularity (default: tile with --timeline, else the "
                   "config's).")
@click.option("--timeline/--no-timeline", default=True, show_default=True,
              help="Record the event trace (tile granularity) for the timeline figure.")
@click.option("--measured", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="CSV with predicted,measured[,family] columns for the predicted-vs-"
                   "measured figure.")
@click.option("--format", "formats", default="png,svg", show_default=True,
              help="Figure file formats, comma-separated (png, svg).")
def report(file: str, out_dir: str, sets: tuple[str, ...], granularity: str | None,
           timeline: bool, measured: str | None, formats: str) -> None:
    """Write a report of FILE (run configuration YAML or result JSON) into --out DIR."""
    from ..reports import load_result_json, read_points_csv, write_report
    from ..simulate import simulate
    config, text = None, None
    if file.endswith(".json"):
        if sets:
            raise click.UsageError("--set applies to run configurations, not result JSON")
        result = load_result_json(file)
    else:
        overrides = [parse_override(t) for t in sets]
        if timeline:
            overrides.append(("simulation.trace", True))
            overrides.append(("simulation.granularity", granularity or "tile"))
        elif granularity is not None:
            overrides.append(("simulation.granularity", granularity))
        config = load_run_config(file, overrides)
        result = simulate(config)
        text = Path(file).read_text(encoding="utf-8")
        if sets:
            text += "\n# overrides (--set)\n" + "".join(f"# {s}\n" for s in sets)
    points = read_points_csv(measured) if measured else None
    bundle = write_report(result, out_dir, config=config, measured=points,
                          measured_source=measured, config_text=text,
                          formats=[f.strip() for f in formats.split(",") if f.strip()])
    click.echo(f"wrote {bundle.html}")
    click.echo(f"wrote {bundle.markdown}")
    for f in bundle.figures:
        click.echo(f"wrote {', '.join(str(p) for p in f.files.values())}")
    for name, why in bundle.skipped.items():
        click.echo(f"skipped {name}: {why}", err=True)
