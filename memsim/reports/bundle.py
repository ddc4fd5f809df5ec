"""Report bundles: figures (PNG + SVG), a self-contained HTML page and a Markdown summary.

    from memsim.reports import write_report
    bundle = write_report(result, "out/", config=cfg)     # cfg: the RunConfig, if at hand
    bundle.html, bundle.markdown, bundle.figures

The HTML embeds every figure as a base64 PNG, so the single file can be mailed or attached to
an issue; the Markdown links the PNG files next to it.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from .. import __version__
from ..errors import InputError
from ..units import format_quantity
from ._common import FORMATS, describe_run, format_bytes, save_figure
from .figures import bytes_per_level_figure, roofline_figure
from .sram import traffic_vs_sram_figure
from .timeline import timeline_figure
from .validation import as_points, error_summary, predicted_vs_measured_figure

__all__ = ["ReportBundle", "FigureFile", "write_report", "provenance", "summary_rows"]


@dataclass(frozen=True)
class FigureFile:
    """One figure of a bundle: short name, caption and the files written (by format)."""

    name: str
    caption: str
    files: dict


@dataclass(frozen=True)
class ReportBundle:
    """Paths written by :func:`write_report` and the figures skipped (name -> reason)."""

    directory: Path
    html: Path
    markdown: Path
    figures: tuple[FigureFile, ...]
    skipped: dict = field(default_factory=dict)


def provenance(result: Any, hardware: Any = None, measured_source: str | None = None
               ) -> list[tuple[str, str]]:
    """(key, value) rows: memsim version, date, hardware preset and origin, its sources, the
    calibration (achievable rates with their sources) of the instruction classes the run used,
    the sources of the levels that moved bytes, and the measured data used (if any)."""
    rows = [("memsim version", str(result.memsim_version)),
            ("report written by", f"memsim {__version__}, Python {platform.python_version()}, "
                                  f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC"),
            ("hardware", str(result.hardware))]
    if result.simulation:
        sim = result.simulation
        rows.append(("simulation", f"granularity {sim.get('granularity')}, "
                                   f"{sim.get('events')} events"))
    if hardware is None:
        rows.append(("hardware sources", "(hardware description not available: the result "
                                         "was loaded without its run configuration)"))
    else:
        rows.append(("hardware origin", str(getattr(hardware, "origin", None) or "inline")))
        if hardware.description:
            rows.append(("hardware description", hardware.description))
        for i, src in enumerate(hardware.sources):
            rows.append((f"hardware source {i + 1}", src))
        for name in result.flops_by_class:
            try:
                unit, rate = hardware.find_rate(name)
            except InputError:
                continue
            text = f"{unit.name}: peak {format_quantity(rate.peak, 'rate')}"
            if rate.achievable is not None:
                text += (f", achievable {format_quantity(rate.achievable, 'rate')} "
                         f"(calibration: {rate.achievable_source or 'source not given'})")
            else:
                text += " (no calibration: peak used)"
            if rate.source:
                text += f"; source: {rate.source}"
            rows.append((f"rate {name}", text))
        for name, t in result.levels.items():
            if (t.read_bytes or t.write_bytes) and hardware.has_memory(name):
                src = hardware.memory(name).source
                if src:
                    rows.append((f"level {name}", src))
    if measured_source:
        rows.append(("measured data", measured_source))
    return rows


def summary_rows(result: Any) -> list[tuple[str, str]]:
    """(quantity, value) rows: time, FLOPs, roofline, lower bound, kernels."""
    rows = [("run", describe_run(result)),
            ("simulated time", format_quantity(result.time_s, "time")),
            ("FLOPs", f"{result.flops:.4g}")]
    if result.time_s > 0 and result.flops:
        rows.append(("achieved", f"{result.flops / result.time_s / 1e12:.4g} TFLOP/s"))
    if result.roofline is not None:
        rl = result.roofline
        rows.append(("roofline", f"{format_quantity(rl.time_s, 'time')}, bound by {rl.bound}"
                     + (f" ({rl.resource})" if rl.resource and rl.resource != rl.bound else "")))
        if rl.time_s > 0:
            rows.append(("simulated / roofline", f"{result.time_s / rl.time_s:.3g}"))
    if result.lower_bound is not None:
        lb = result.lower_bound
        rows.append((f"I/O lower bound ({lb.level})", f"{format_bytes(lb.io_bytes)}; "
                                                      f"simulated / bound = {lb.ratio:.4g}"))
    for k in result.kernels:
        rows.append((f"kernel {k.get('name', '?')}",
                     f"{format_quantity(float(k.get('time_s', 0.0)), 'time')}, grid "
                     f"{k.get('grid', '?')}, {k.get('waves', '?')} waves"))
    return rows


def _level_rows(result: Any) -> list[list[str]]:
    return [[name, format_bytes(t.read_bytes), format_bytes(t.write_bytes),
             format_bytes(t.peak_bytes), format_bytes(t.capacity_bytes)]
            for name, t in result.levels.items()]


def _figures(result, config, measured, sram_source) -> list[tuple[str, str, Callable]]:
    figs = [("bytes_per_level", "Bytes read from and written into each memory level.",
             lambda: bytes_per_level_figure(result)),
            ("roofline", "Hierarchical roofline: one roof per memory level; the run placed at "
                         "its arithmetic intensity against each level.",
             lambda: roofline_figure(result))]
    figs.append(("timeline", "Timeline of the event trace: memory, links, compute units.",
                 lambda: timeline_figure(result)))      # skipped (InputError) without a trace
    if result.workload.get("kind") == "attention":
        figs.append(("traffic_vs_sram", "Closed-form SRAM-boundary traffic vs SRAM size per "
                                        "attention schedule, with the Saha & Ye lower bound "
                                        "and the M = d² crossover.",
                     lambda: traffic_vs_sram_figure(sram_source)))
    if measured:
        figs.append(("predicted_vs_measured", "Predicted vs measured (GPU validation data).",
                     lambda: predicted_vs_measured_figure(measured)))
    return figs


def write_report(result: Any, out_dir: "str | Path", *, config: Any = None,
                 measured: Iterable[Any] | None = None, measured_source: str | None = None,
                 formats: Sequence[str] = FORMATS, config_text: str | None = None,
                 title: str | None = None) -> ReportBundle:
    """Write figures, ``report.html`` (self-contained) and ``report.md`` into ``out_dir``.

    ``config``: the RunConfig that produced ``result`` (for provenance and the SRAM-size
    figure; without it the preset named in the result is used). ``measured``: validation points
    (see :mod:`.validation`) for the predicted-vs-measured figure. A figure that does not apply
    to the result (no trace, not attention, no roofline) is skipped and listed in the report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = tuple(dict.fromkeys(("png",) + tuple(formats)))   # the HTML embeds the PNG
    hardware = getattr(config, "hardware", None)
    if hardware is None:
        try:
            from ..hardware import load_hardware
            hardware = load_hardware(result.hardware)
        except Exception:  # noqa: BLE001  a result from a custom file: provenance says so
            hardware = None
    points = as_points(measured) if measured is not None else []
    figures, skipped = [], {}
    for name, caption, make in _figures(result, config, points, config or result):
        try:
            fig = make()
        except InputError as exc:
            skipped[name] = str(exc)
            continue
        paths = save_figure(fig, out, name, formats)
        figures.append(FigureFile(name, caption, {p.suffix[1:]: p for p in paths}))
    if config_text is None:
        data = getattr(config, "data", None)
        config_text = yaml.safe_dump(dict(data), sort_keys=False) if data else yaml.safe_dump(
            {"hardware": result.hardware, "workload": dict(result.workload),
             "schedule": dict(result.schedule)}, sort_keys=False)
    prov = provenance(result, hardware, measured_source)
    summary = summary_rows(result)
    levels = _level_rows(result)
    val = error_summary(points) if points else {}
    title = title or f"memsim report: {describe_run(result)}"
    html_path = out / "report.html"
    html_path.write_text(_html(title, config_text, prov, summary, levels, figures, skipped,
                               val), encoding="utf-8")
    md_path = out / "report.md"
    md_path.write_text(_markdown(title, config_text, prov, summary, levels, figures, skipped,
                                 val), encoding="utf-8")
    return ReportBundle(out, html_path, md_path, tuple(figures), skipped)


# -- rendering ----------------------------------------------------------------------------------

_LEVEL_HEAD = ["level", "read from", "written into", "peak", "capacity"]
_CSS = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}figure{margin:1.5em 0}
img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}"""


def _table_html(head: list[str], rows: Iterable[Sequence[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _val_rows(val: dict) -> list[list[str]]:
    return [[k, str(v["n"]), f"{v['median_rel_error']:.1%}", f"{v['max_rel_error']:.1%}"]
            for k, v in val.items()]


def _html(title, config_text, prov, summary, levels, figures, skipped, val) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             "<h2>Summary</h2>", _table_html(["quantity", "value"], summary),
             "<h2>Traffic per memory level</h2>", _table_html(_LEVEL_HEAD, levels)]
    if val:
        parts += ["<h2>Validation</h2>", _table_html(
            ["family", "cases", "median |error|", "max |error|"], _val_rows(val))]
    parts.append("<h2>Figures</h2>")
    for f in figures:
        data = base64.b64encode(Path(f.files["png"]).read_bytes()).decode("ascii")
        parts.append(f"<figure id='fig-{f.name}'><img alt='{html.escape(f.name)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>"
                     f"{html.escape(f.caption)}</figcaption></figure>")
    if skipped:
        parts.append("<p>Figures not drawn: " + "; ".join(
            f"{html.escape(k)} ({html.escape(v)})" for k, v in skipped.items()) + "</p>")
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_text)}</pre>",
              "<h2>Provenance</h2>", _table_html(["item", "value"], prov),
              "</body></html>"]
    return "\n".join(parts) + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table_md(head: list[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _markdown(title, config_text, prov, summary, levels, figures, skipped, val) -> str:
    parts = [f"# {title}", "", "## Summary", "", _table_md(["quantity", "value"], summary), "",
             "## Traffic per memory level", "", _table_md(_LEVEL_HEAD, levels), ""]
    if val:
        parts += ["## Validation", "", _table_md(["family", "cases", "median |error|",
                                                  "max |error|"], _val_rows(val)), ""]
    parts += ["## Figures", ""]
    for f in figures:
        alt = f.name.replace("_", " ")
        parts += [f"![{alt}]({Path(f.files['png']).name})", "", f"*{f.caption}*", ""]
    if skipped:
        parts += ["Figures not drawn: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()),
                  ""]
    parts += ["## Configuration", "", "```yaml", config_text.rstrip(), "```", "",
              "## Provenance", "", _table_md(["item", "value"], prov), ""]
    return "\n".join(parts)
