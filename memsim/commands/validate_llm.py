"""``memsim validate-llm [DEVICE]``: whole LLM steps measured on a GPU vs memsim's LLM path.

Prints, per measured step (Llama-3-8B shape, bf16, CUDA graphs), the measured time of the
plain PyTorch step ("eager") and, where measured, of the torch.compile one ("compiled"),
memsim's simulated time and the errors; then the error per stage and implementation and,
per operator class, memsim's operator against the eager operator timed on its own
(``memsim.validation.llm_steps``).
"""
from __future__ import annotations

import json

import click

from . import save_plot

__all__ = ["validate_llm"]


def _gemms(device, hardware):
    """The projection-GEMM comparison of ``device`` where it has that data, else []."""
    from ..validation.data import DATA_DIR
    from ..validation.gemm_library import compare_gemm_library
    if not (DATA_DIR / device / "gemm_library.json").is_file():
        return []
    return compare_gemm_library(device, hardware)


def _plot(cases, path, device):
    from ..reports.validation import predicted_vs_measured_figure
    pts = [{"predicted": c.predicted_s, "measured": m, "family": f"{c.stage} {impl}", "id": c.id}
           for c in cases for impl, m in (("eager", c.eager_s), ("compiled", c.compiled_s))
           if m]
    save_plot(predicted_vs_measured_figure(pts, quantity="step time", unit="s",
                                           title=f"memsim vs whole LLM steps on {device} "
                                                 "(CUDA graphs)"), path)


def _ms(x):
    return "-" if x is None else f"{x * 1e3:.3f}"


def _e(x):
    return "-" if x is None else f"{x * 100:+.1f}%"


@click.command("validate-llm")
@click.argument("device", required=False, default="h100")
@click.option("--data", "path", type=click.Path(), default=None,
              help="An llm_steps.json file (or its folder) instead of DEVICE's committed one.")
@click.option("--hardware", default=None,
              help="Preset name or hardware YAML to predict with (default: DEVICE's preset, "
                   "e.g. h100-sxm for h100).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None,
              help="Write a predicted-vs-measured step-time plot (png, pdf or svg by "
                   "extension): eager and compiled steps, decode and prefill.")
def validate_llm(device, path, hardware, fmt, plot):
    """Compare memsim's LLM step predictions with whole steps measured on a GPU: DEVICE is a
    device with committed data (h100 or h200; default h100)."""
    from ..validation.llm_steps import compare_llm_steps, llm_step_summary
    cases = compare_llm_steps(device, hardware=hardware, path=path)
    summary = llm_step_summary(cases)
    gemms = _gemms(device, hardware) if path is None else []
    if plot:
        _plot(cases, plot, device)
    if fmt == "json":
        click.echo(json.dumps({
            "cases": [{"id": c.id, "stage": c.stage, "batch": c.batch, "context": c.context,
                       "new_tokens": c.new_tokens, "eager_measured_s": c.eager_s,
                       "compiled_measured_s": c.compiled_s, "predicted_s": c.predicted_s,
                       "ops_measured_s": dict(c.ops_measured_s),
                       "ops_predicted_s": dict(c.ops_predicted_s)} for c in cases],
            "summary_steps": [{"stage": s, "implementation": i, **v}
                              for (s, i), v in summary["steps"].items()],
            "summary_ops": [{"stage": s, "op": o, **v}
                            for (s, o), v in summary["ops"].items()],
            "projection_gemms": [{"id": g.id, "m": g.m, "n": g.n, "k": g.k,
                                  "measured_s": g.measured_s, "predicted_s": g.predicted_s,
                                  "cublas_tile": g.cublas_tile, "memsim_tile": g.memsim_tile}
                                 for g in gemms]}, indent=1))
        return
    click.echo(f"{'step':22s} {'eager ms':>9s} {'compiled':>9s} {'memsim':>9s} "
               f"{'vs eager':>9s} {'vs compiled':>11s}")
    for c in cases:
        click.echo(f"{c.id:22s} {_ms(c.eager_s):>9s} {_ms(c.compiled_s):>9s} "
                   f"{_ms(c.predicted_s):>9s} {_e(c.eager_err):>9s} {_e(c.compiled_err):>11s}")
    click.echo("\nError per stage and implementation (memsim - measured) / measured:")
    click.echo(f"{'stage':8s} {'implementation':15s} {'n':>3s} {'MAPE':>7s} {'worst':>7s}")
    for (stage, impl), v in summary["steps"].items():
        click.echo(f"{stage:8s} {impl:15s} {v['n']:3d} {v['mape'] * 100:6.1f}% "
                   f"{_e(v['max']):>7s}")
    click.echo("\nPer operator class, memsim's operator vs the eager operator timed alone "
               "(all 32 layers):")
    click.echo(f"{'stage':8s} {'operator':20s} {'n':>3s} {'MAPE':>7s} {'worst':>8s}")
    for (stage, op), v in summary["ops"].items():
        click.echo(f"{stage:8s} {op:20s} {v['n']:3d} {v['mape'] * 100:6.1f}% "
                   f"{_e(v['max']):>8s}")
    if gemms:
        import statistics
        errs = [abs(g.err) for g in gemms]
        click.echo(f"\nProjection GEMMs alone ({len(gemms)} shapes, m 64-16384, do_bench): "
                   f"tiling: library vs cuBLAS, MAPE {sum(errs) / len(errs) * 100:.1f}%, "
                   f"median {statistics.median(errs) * 100:.1f}%, worst "
                   f"{max((g.err for g in gemms), key=abs) * 100:+.1f}%; cuBLAS's tile in "
                   f"{sum(g.same_tile for g in gemms)} of {len(gemms)}")
    if plot:
        click.echo(f"\nwrote {plot}")
    click.echo("\nmemsim runs each operator as one kernel (rotary, norms, adds and the "
               "activation fused); eager PyTorch runs rotary as 10 kernels and the activation "
               "as 2; kv_write has no memsim operator (its k/v projections write the cache).")
