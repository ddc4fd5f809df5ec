"""Design-space sweeps: one run configuration, many ``--set`` overrides, one table of results.

    from memsim.sweep import grid_points, run_sweep
    points = grid_points([("workload.seq_q", [1024, 2048]), ("schedule.kind", ["flash1",
                                                                                 "flash2"])])
    table = run_sweep("examples/attention-flash2-h100.yaml", points, jobs=2)
    table.write("results.csv")

A point is a mapping ``{override path: value}`` (the ``--set`` paths). Each row of the table has
``index``, the point's values as ``param.<path>``, ``error`` (empty when the point ran) and the
flat result (``Result.to_flat()``: ``time_s``, ``levels.hbm.read_bytes`` ...). A point that
fails keeps its row with the error message and empty result columns; the others are unaffected.

Points run in worker processes (``concurrent.futures``) or on a Dask cluster (``dask=ADDRESS``,
optional extra ``memsim[dask]``). They are sent in chunks together with the base configuration
as plain data; a hardware preset is parsed once, in the parent, and sent inline, so workers do
not re-read YAML for every point. Traces are never recorded in sweeps.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .config import parse_override
from .errors import InputError

__all__ = ["parse_grid", "grid_points", "read_points_csv", "SweepTable", "run_sweep",
           "prepare_base", "run_points"]

Point = Mapping[str, Any]


def parse_grid(text: str) -> tuple[str, list]:
    """``"workload.seq_q=1024,2048"`` -> ``("workload.seq_q", [1024, 2048])`` (values parsed as
    YAML scalars, as ``--set``)."""
    path, sep, values = text.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise InputError(f"--grid {text!r}: expected PATH=V1,V2,..., e.g. "
                         "workload.seq_q=1024,2048")
    parsed = [parse_override(f"{path.strip()}={v.strip()}")[1] for v in values.split(",")]
    if any(v is None for v in parsed):
        raise InputError(f"--grid {text!r}: empty value in the list")
    return path.strip(), parsed


def grid_points(grids: Sequence[tuple[str, Sequence[Any]]]) -> list[dict]:
    """Cartesian product of ``(path, values)`` pairs, the last path varying fastest."""
    paths = [p for p, _ in grids]
    if len(set(paths)) != len(paths):
        raise InputError(f"--grid: a path is given twice ({', '.join(paths)})")
    return [dict(zip(paths, combo)) for combo in itertools.product(*[v for _, v in grids])]


def read_points_csv(path: "str | Path") -> list[dict]:
    """Points from a CSV whose header names override paths; an empty cell leaves that path at
    the configuration's value."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise InputError(f"{path}: empty points file, expected a header of override "
                                 "paths (e.g. workload.seq_q,schedule.kind)")
            return [{k.strip(): parse_override(f"{k.strip()}={v}")[1] for k, v in row.items()
                     if k and v is not None and v.strip() != ""} for row in reader]
    except FileNotFoundError:
        raise InputError(f"--points {path}: no such file") from None


# -- running ------------------------------------------------------------------------------------

def prepare_base(config: Any, overrides: Iterable[tuple[str, Any]] = ()) -> dict:
    """The base configuration as plain data, validated once (bad input fails here, not in
    every point), with a hardware preset inlined when that leaves the result unchanged."""
    from .config import load_run_config
    cfg = load_run_config(config, list(overrides))
    data = json.loads(json.dumps(dict(cfg.data), default=str))
    data.setdefault("simulation", {})
    data["simulation"]["trace"] = False
    ref = data.get("hardware")
    if isinstance(ref, str) and not data.get("hardware_overrides") and \
            cfg.hardware.name == ref == cfg.hardware_name:
        data["hardware"] = cfg.hardware.to_dict()     # same name: the result is unchanged
    data["_source"] = cfg.source
    return data


def _apply(base: dict, point: Point) -> tuple[dict, list]:
    data = dict(base)
    overrides = []
    for path, value in point.items():
        if path.startswith("hardware.") and isinstance(data.get("hardware"), dict):
            hw = dict(data.get("hardware_overrides") or {})
            hw[path[len("hardware."):]] = value
            data["hardware_overrides"] = hw
        else:
            overrides.append((path, value))
    return data, overrides


def _row(index: int, point: Point, error: str, flat: Mapping[str, Any]) -> dict:
    row = {"index": index}
    row.update({f"param.{k}": v for k, v in point.items()})
    row["error"] = error
    row.update(flat)
    return row


def run_points(base: dict, chunk: Sequence[tuple[int, Point]]) -> list[dict]:
    """Run ``(index, point)`` pairs against ``base`` (from :func:`prepare_base`); never raises
    for a failing point: its row carries the error."""
    from .config import load_run_config
    from .simulate import simulate
    rows = []
    source = base.get("_source")
    clean = {k: v for k, v in base.items() if k != "_source"}
    for index, point in chunk:
        try:
            data, overrides = _apply(clean, point)
            result = simulate(load_run_config(data, overrides, name=source or "<sweep>"))
            rows.append(_row(index, point, "", result.to_flat()))
        except Exception as exc:  # noqa: BLE001  any failure belongs to this point only
            msg = " ".join(str(exc).split()) or type(exc).__name__
            rows.append(_row(index, point, f"{type(exc).__name__}: {msg}", {}))
    return rows


def _chunks(points: Sequence[Point], size: int) -> list[list[tuple[int, Point]]]:
    items = list(enumerate(points))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _failed(chunk, exc) -> list[dict]:
    return [_row(i, p, f"{type(exc).__name__}: worker failed: {exc}", {}) for i, p in chunk]


def _run_local(base, chunks, jobs, progress) -> list[dict]:
    rows = []
    if jobs <= 1:
        for chunk in chunks:
            rows += run_points(base, chunk)
            progress(len(chunk))
        return rows
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_points, base, chunk): chunk for chunk in chunks}
        for fut in as_completed(futures):
            chunk = futures[fut]
            try:
                rows += fut.result()
            except Exception as exc:  # noqa: BLE001  e.g. a worker killed by the OS
                rows += _failed(chunk, exc)
            progress(len(chunk))
    return rows


def _run_dask(base, chunks, address, progress, timeout) -> list[dict]:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise InputError("--dask needs the optional Dask extra: pip install 'memsim[dask]' "
                         "(dask[distributed])") from None
    own = not isinstance(address, Client)
    try:
        client = Client(address, timeout=timeout) if own else address
    except OSError as exc:
        raise InputError(f"--dask {address}: cannot connect to the scheduler ({exc})") from None
    rows = []
    try:
        [base_future] = client.scatter([base], broadcast=True)
        futures = client.map(run_points, [base_future] * len(chunks), chunks, pure=False)
        chunk_of = {f.key: c for f, c in zip(futures, chunks)}
        for fut in dask_completed(futures):
            chunk = chunk_of[fut.key]
            try:
                rows += fut.result()
            except Exception as exc:  # noqa: BLE001
                rows += _failed(chunk, exc)
            progress(len(chunk))
    finally:
        if own:
            client.close()
    return rows


@dataclass(frozen=True)
class SweepTable:
    """The rows of a sweep in point order, and the column names (union, first-seen order)."""

    rows: tuple[dict, ...]
    columns: tuple[str, ...]
    config: str = ""

    @property
    def failed(self) -> tuple[dict, ...]:
        return tuple(r for r in self.rows if r.get("error"))

    def to_csv(self) -> str:
        import io
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows:
            w.writerow([_cell(r.get(c)) for c in self.columns])
        return buf.getvalue()

    def to_json(self) -> str:
        from . import __version__
        return json.dumps(_finite({"memsim_version": __version__, "config": self.config,
                                   "points": len(self.rows), "failed": len(self.failed),
                                   "columns": list(self.columns), "rows": list(self.rows)}),
                          indent=1)

    def write(self, path: "str | Path") -> Path:
        """Write CSV or JSON, chosen by the file extension (.csv / .json)."""
        p = Path(path)
        if p.suffix.lower() not in (".csv", ".json"):
            raise InputError(f"--out {path}: expected a .csv or .json file name")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_csv() if p.suffix.lower() == ".csv" else self.to_json() + "\n",
                     encoding="utf-8")
        return p


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def run_sweep(config: Any, points: Sequence[Point], *, overrides: Iterable = (),
              jobs: int | None = None, dask: Any = None, chunk_size: int | None = None,
              progress: Callable[[int], None] | None = None,
              dask_timeout: float = 10.0) -> SweepTable:
    """Run every point of ``points`` on ``config`` (path, mapping or RunConfig; ``overrides``
    apply to all points). ``jobs``: local worker processes (default: all cores; 1 = in this
    process). ``dask``: a scheduler address or a ``distributed.Client`` instead of local
    processes (``dask_timeout``: seconds to wait for it). ``progress(n)`` is called as chunks
    of n points finish."""
    if not points:
        raise InputError("the sweep has no points (give --grid or --points)")
    base = prepare_base(config, overrides)
    jobs = jobs or os.cpu_count() or 1
    workers = jobs if dask is None else 16
    size = chunk_size or max(1, min(256, math.ceil(len(points) / (workers * 8))))
    chunks = _chunks(points, size)
    progress = progress or (lambda n: None)
    if dask is not None:
        rows = _run_dask(base, chunks, dask, progress, dask_timeout)
    else:
        rows = _run_local(base, chunks, jobs, progress)
    rows.sort(key=lambda r: r["index"])
    columns = list(dict.fromkeys(["index", *[f"param.{k}" for p in points for k in p],
                                  "error"]))
    seen = set(columns)
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    return SweepTable(tuple(rows), tuple(columns), str(base.get("_source") or ""))
