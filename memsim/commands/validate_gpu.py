"""``memsim validate-gpu [DATA]``: predicted vs measured on committed GPU measurements.

Prints, per case, measured vs predicted kernel time, HBM bytes (read + written) and L2 read
bytes (requested by the SMs) with the relative error, and the error against the L2 lookups
alone (fewer where H100's L2 Request Coalescer merged concurrent reads), then the error
summary per kernel family for the held-out cases and for all cases. ``--plot FILE`` writes a
predicted-vs-measured figure of the times.
"""
from __future__ import annotations

import json
import sys

import click

from ..errors import InputError
from . import NullFile, save_plot

__all__ = ["validate_gpu"]


def _q(x, unit):
    if x is None:
        return "-"
    if unit == "s":
        return f"{x * 1e6:.1f}us"
    return f"{x / 1e6:.1f}MB"


def _e(x):
    return "-" if x is None else f"{x * 100:+.1f}%"


def _pct(x):
    return "-" if x is None else f"{x * 100:.1f}%"


def _summary_rows(summaries):
    head = (f"{'family':18s} {'n':>3s} {'time MAPE':>10s} {'median':>8s} {'HBM max':>9s} "
            f"{'HBM med':>8s} {'L2 max':>8s} {'L2 med':>8s} {'L2lk max':>8s}  targets met")
    lines = [head]
    for s in summaries:
        met = s.meets()
        ok = ",".join(k for k, v in met.items() if v) or "-"
        miss = ",".join(k for k, v in met.items() if v is False)
        lines.append(f"{s.family:18s} {s.n:3d} {_pct(s.time_mape):>10s} {_pct(s.time_median):>8s} "
                     f"{_pct(s.hbm_max):>9s} {_pct(s.hbm_median):>8s} {_pct(s.l2_max):>8s} "
                     f"{_pct(s.l2_median):>8s} {_pct(s.l2_lookup_max):>8s}  {ok}"
                     + (f" (miss: {miss})" if miss else ""))
    return lines


@click.command("validate-gpu")
@click.argument("data", required=False, default="h100")
@click.option("--split", "which", type=click.Choice(["all", "held-out", "calibration"]),
              default="all", show_default=True, help="Which cases to predict.")
@click.option("--family", "families", multiple=True,
              help="Only these families (e.g. prefill_flash, gemm); repeatable.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None,
              help="Write a predicted-vs-measured time plot (png, pdf or svg by extension).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--hardware", default=None,
              help="Preset name or hardware YAML to predict with (default: the measured "
                   "device's preset, e.g. h100-sxm for h100, h200 for h200).")
@click.option("--speedup-vs", "other", default=None, metavar="DATA2",
              help="Also predict DATA2 (another device's data, e.g. h100) and compare the "
                   "measured speedup DATA2 -> DATA of every case both measured with memsim's.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def validate_gpu(data, which, families, plot, fmt, hardware, other, progress):
    """Compare memsim's predictions with GPU measurements: DATA is a device with committed
    data (h100 or h200; default h100), or a gpu_cases.json file or its directory."""
    from ..validation.compare import compare_cases, predictable, split_for, summarize
    from ..validation.data import load_gpu_cases
    ds = load_gpu_cases(data)
    split = split_for(ds)
    held = set(split["held_out"])
    ids = None
    if which == "held-out":
        ids = held
    elif which == "calibration":
        ids = set(split["calibration"])
    if families:
        from ..validation.mapping import model_family
        known = sorted({model_family(c) for c in ds.cases
                        if c.family not in ("launch", "latency")})
        unknown = [f for f in families if f not in known]
        if unknown:
            raise InputError(f"--family: unknown {', '.join(repr(f) for f in unknown)}; "
                             f"expected one of {', '.join(known)}")
    show = sys.stderr.isatty() if progress is None else progress
    n = len(predictable(ds, ids=ids, families=families or None, hardware=hardware))
    with click.progressbar(length=n * (2 if other else 1), label=f"predicting {n} cases",
                           file=sys.stderr if show else NullFile()) as bar:
        results = compare_cases(ds, ids=ids, held_out=sorted(held),
                                families=families or None, hardware=hardware,
                                progress=lambda _r: bar.update(1))
        if other is not None:
            ds2 = load_gpu_cases(other)
            res2 = compare_cases(ds2, ids={r.case_id for r in results},
                                 families=families or None, progress=lambda _r: bar.update(1))
    if not results:
        raise InputError(f"no predictable cases in {data!r} for split {which!r}"
                         + (f" and families {', '.join(families)}" if families else ""))
    held_res = [r for r in results if r.held_out]
    speed = None
    if other is not None:
        from ..validation.compare import speedups
        speed = speedups(res2, results)
        if not speed[0]:
            raise InputError(f"--speedup-vs {other!r}: no case of {data!r} was measured there")
    if fmt == "json":
        doc = {"cases": [{"id": r.case_id, "family": r.family, "held_out": r.held_out,
                          "time_measured_s": r.time_meas, "time_predicted_s": r.time_pred,
                          "hbm_measured_bytes": r.hbm_meas, "hbm_predicted_bytes": r.hbm_pred,
                          "l2_read_measured_bytes": r.l2_meas,
                          "l2_read_predicted_bytes": r.l2_pred,
                          "l2_lookup_measured_bytes": r.l2_lookup_meas,
                          "schedule": r.model.config["schedule"] if r.model.config else None,
                          "evidence": r.model.evidence} for r in results],
               "summary_held_out": [s.__dict__ for s in summarize(held_res)] if held_res else [],
               "summary_all": [s.__dict__ for s in summarize(results)]}
        if speed is not None:
            doc["speedup_vs"] = {
                "device": ds2.device,
                "cases": [{"id": i, "family": f, "measured": m, "predicted": p}
                          for i, f, m, p in speed[0]],
                "summary": [s.__dict__ for s in speed[1]]}
        click.echo(json.dumps(doc, indent=1))
    else:
        click.echo(f"{'case':38s} {'fam':17s} s {'time meas':>10s} {'pred':>10s} {'err':>7s} "
                   f"{'HBM meas':>10s} {'pred':>10s} {'err':>7s} {'L2rd meas':>10s} {'pred':>10s} "
                   f"{'err':>7s} {'lookups':>10s} {'err':>7s}")
        for r in results:
            click.echo(f"{r.case_id:38s} {r.family:17s} {'H' if r.held_out else 'C'} "
                       f"{_q(r.time_meas, 's'):>10s} {_q(r.time_pred, 's'):>10s} "
                       f"{_e(r.time_err):>7s} {_q(r.hbm_meas, 'B'):>10s} "
                       f"{_q(r.hbm_pred, 'B'):>10s} {_e(r.hbm_err):>7s} "
                       f"{_q(r.l2_meas, 'B'):>10s} {_q(r.l2_pred, 'B'):>10s} {_e(r.l2_err):>7s} "
                       f"{_q(r.l2_lookup_meas, 'B'):>10s} {_e(r.l2_lookup_err):>7s}")
        click.echo("")
        click.echo("s: H = held-out case, C = calibration case. Errors are (pred - meas) / meas;"
                   " HBM = read + written while the kernels run; L2rd = bytes the SMs requested"
                   " (L2 lookups + reads the L2 Request Coalescer merged); lookups = L2 lookups"
                   " alone, L2lk max their largest error (validation/README.md).")
        if held_res:
            click.echo("\nError summary, held-out cases (targets: time MAPE <= 15%, median <= "
                       "10%; HBM <= 10% and L2 read <= 15% per case):")
            summ = summarize(held_res)
            for line in _summary_rows(summ):
                click.echo(line)
            verdicts = [v for x in summ if x.family != "all" for v in x.meets().values()
                        if v is not None]
            click.echo(f"targets met (per family, held out): {sum(verdicts)} of {len(verdicts)}")
        click.echo("\nError summary, all listed cases:")
        for line in _summary_rows(summarize(results)):
            click.echo(line)
        if speed is not None:
            click.echo(f"\nSpeedup {ds2.device} -> {ds.device} (time on {ds2.device} / time on "
                       f"{ds.device}), cases measured on both, each predicted on its own "
                       f"device's preset:")
            click.echo(f"{'family':18s} {'n':>3s} {'measured':>9s} {'predicted':>9s} "
                       f"{'err med':>8s} {'err max':>8s}")
            for s in speed[1]:
                click.echo(f"{s.family:18s} {s.n:3d} {s.measured_median:8.3f}x "
                           f"{s.predicted_median:8.3f}x {_pct(s.err_median):>8s} "
                           f"{_pct(s.err_max):>8s}")
    if plot:
        _plot(results, plot, ds.gpu_name)
        if fmt == "table":
            click.echo(f"\nwrote {plot}")


def _plot(results, path, gpu_name):
    from ..reports.validation import predicted_vs_measured_figure
    pts = [{"predicted": r.time_pred, "measured": r.time_meas, "family": r.family,
            "id": r.case_id} for r in results if r.time_meas]
    save_plot(predicted_vs_measured_figure(pts, quantity="time", unit="s",
                                           title=f"memsim vs {gpu_name} (CUDA events)"), path)
