"""Measured GPU and disk data, as plain frozen dataclasses (no torch needed).

The files live in ``memsim/validation/data/<device>/`` and are written by the measurement
harness in ``validation/harness`` (see ``validation/README.md`` for the schema and provenance):

- ``gpu_cases.json``: kernel times (CUDA events, median, L2 flushed) and Nsight Compute bytes
  per kernel for attention, GEMM and copy cases, plus launch and latency figures;
- ``disk_curve.json``: O_DIRECT read throughput over chunk size x threads, sequential rates and
  a 4 KiB latency histogram of the device machine's disk;
- ``sdpa_bf16_numerics.npz``: PyTorch SDPA inputs and bf16 outputs on small shapes;
- ``rechecks.json``: cases re-profiled several times (``validation/harness/recheck.py``), whose
  medians replace the first record's counters (kept as ``original_kernels``);
- ``l2_probes.json``: DRAM counters of read-only probe kernels after a set-up L2 state (how much
  re-read data L2 keeps; what do_bench's flush leaves dirty), from ``validation/harness/l2_probe.sh``.

Example::

    from memsim.validation.data import load_gpu_cases
    ds = load_gpu_cases("h100")
    for case in ds.family("gemm"):
        print(case.id, case.time_s, case.hbm_bytes)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from memsim.errors import InputError

__all__ = ["DATA_DIR", "devices", "Kernel", "GpuCase", "GpuDataset", "DiskPoint", "DiskCurve",
           "NumericsCase", "L2Requests", "load_gpu_cases", "load_disk_curve", "load_sdpa_numerics",
           "L2Probe", "load_l2_probes"]

DATA_DIR = Path(__file__).resolve().parent / "data"
GPU_SCHEMA = "memsim.validation.gpu_cases/1"
DISK_SCHEMA = "memsim.validation.disk/1"
L2_SCHEMA = "memsim.validation.l2_probes/1"
RECHECK_SCHEMA = "memsim.validation.rechecks/1"
L2_REQUESTS_SCHEMA = "memsim.l2_requests/1"


def devices() -> list[str]:
    """Names of the devices with committed measurements (subdirectories of ``DATA_DIR``)."""
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def _file(device: str, name: str) -> Path:
    path = DATA_DIR / device / name
    if not path.is_file():
        raise InputError(f"no measured data {name!r} for device {device!r}; "
                         f"devices with data: {', '.join(devices()) or 'none'}")
    return path


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Kernel:
    """One kernel launch profiled by Nsight Compute (bytes in B, time in s)."""

    name: str                   # function name without template arguments
    demangled: str              # full demangled name: template arguments reveal tile sizes
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    registers_per_thread: int
    smem_dynamic_bytes: int
    smem_static_bytes: int
    dram_read_bytes: int        # dram__bytes_read.sum
    dram_write_bytes: int       # dram__bytes_write.sum
    l2_read_bytes: int          # lts__t_sectors_srcunit_tex_op_read.sum x 32
    l2_write_bytes: int         # lts__t_sectors_srcunit_tex_op_write.sum x 32
    gpu_time_s: float           # gpu__time_duration.sum under ncu (caches flushed before it)

    @property
    def hbm_bytes(self) -> int:
        return self.dram_read_bytes + self.dram_write_bytes

    @property
    def blocks(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]


@dataclass(frozen=True)
class L2Requests:
    """One kernel's L2 read traffic from a second profiled call (``l2_requests.json``), bytes.

    H100's L2 Request Coalescer merges concurrent reads of one sector by several SMs into one
    L2 lookup, so ``lookup_bytes`` (the main run's ``lts__t_sectors_srcunit_tex_op_read``)
    falls short of what the thread blocks load wherever they read shared data in lockstep.
    ``requested_bytes`` = lookups + coalesced sectors is what the SMs asked L2 for (it equals
    the bytes L2 delivered, less the extra copies of TMA multicasts, within 0.6% on every
    profiled kernel)."""

    kernel: str
    lookup_bytes: int
    coalesced_bytes: int
    delivered_bytes: int
    multicast_delivered_bytes: int

    @property
    def requested_bytes(self) -> int:
        return self.lookup_bytes + self.coalesced_bytes


@dataclass(frozen=True)
class GpuCase:
    """One measured configuration. ``kernels`` is None where Nsight Compute did not profile it
    (host copies, cudaMemcpy device copies, launch/latency records)."""

    id: str
    family: str
    params: Mapping[str, Any]
    flops: int
    ideal_bytes: int
    time: Mapping[str, Any]           # median_s, p20_s, p80_s, min_s (+ extra keys for launch)
    kernels: tuple[Kernel, ...] | None
    run: str
    error: str | None = None
    time_repeat_s: float | None = None  # median of a second run, where one was made
    original_kernels: tuple[Kernel, ...] | None = None   # first record, where re-profiled
    recheck_repeats: int = 0            # re-profiled calls behind ``kernels``' counters
    l2_requests: tuple[L2Requests, ...] | None = None   # per kernel, from l2_requests.json

    @property
    def time_s(self) -> float | None:
        """Median time in seconds, or None if the case failed to run (see ``error``)."""
        return self.time.get("median_s") if self.time else None

    def _sum(self, attr: str):
        return None if self.kernels is None else sum(getattr(k, attr) for k in self.kernels)

    @property
    def dram_read_bytes(self) -> int | None:
        return self._sum("dram_read_bytes")

    @property
    def dram_write_bytes(self) -> int | None:
        return self._sum("dram_write_bytes")

    @property
    def hbm_bytes(self) -> int | None:
        """HBM bytes read + written, summed over the case's kernels."""
        return self._sum("hbm_bytes")

    @property
    def l2_read_bytes(self) -> int | None:
        return self._sum("l2_read_bytes")

    @property
    def l2_write_bytes(self) -> int | None:
        return self._sum("l2_write_bytes")

    @property
    def l2_requested_bytes(self) -> int | None:
        """L2 read bytes the SMs requested (lookups + coalesced), where measured."""
        if self.l2_requests is None:
            return None
        return sum(r.requested_bytes for r in self.l2_requests)

    @property
    def kernel_time_s(self) -> float | None:
        return self._sum("gpu_time_s")


@dataclass(frozen=True)
class GpuDataset:
    """All GPU cases of one device, with the provenance of the runs that measured them."""

    device: str
    gpu_name: str
    provenance: Mapping[str, Any]     # of the main run: GPU, driver, CUDA, torch, triton, date
    runs: tuple[Mapping[str, Any], ...]
    cases: tuple[GpuCase, ...]
    ncu: Mapping[str, Any] = field(default_factory=dict)
    timing_method: str = ""

    def families(self) -> list[str]:
        return sorted({c.family for c in self.cases})

    def family(self, name: str) -> tuple[GpuCase, ...]:
        """The cases of one family (e.g. 'gemm', 'attention_prefill'), in measurement order."""
        if name not in self.families():
            raise InputError(f"no family {name!r} in {self.device} data; "
                             f"expected one of {', '.join(self.families())}")
        return tuple(c for c in self.cases if c.family == name)

    def case(self, case_id: str) -> GpuCase:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise InputError(f"no case {case_id!r} in {self.device} data")


def _kernel(rec: Mapping[str, Any], names: list[str]) -> Kernel:
    return Kernel(name=rec["name"], demangled=names[rec["demangled_index"]],
                  grid=tuple(rec["grid"]), block=tuple(rec["block"]),
                  registers_per_thread=rec["registers_per_thread"],
                  smem_dynamic_bytes=rec["smem_dynamic_bytes"],
                  smem_static_bytes=rec["smem_static_bytes"],
                  dram_read_bytes=rec["dram_read_bytes"], dram_write_bytes=rec["dram_write_bytes"],
                  l2_read_bytes=rec["l2_read_bytes"], l2_write_bytes=rec["l2_write_bytes"],
                  gpu_time_s=rec["gpu_time_s"])


def _apply_side_file(cases: list[GpuCase], path: Path, schema: str, update) -> list[GpuCase]:
    """Cases with the records of a per-case side file (``{"schema", "cases": {id: record}}``)
    applied by ``update(case, record)``; a record for an unknown case is an error."""
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != schema:
        raise InputError(f"{path}: schema {doc.get('schema')!r}, expected {schema!r}")
    recs = doc["cases"]
    missing = set(recs) - {c.id for c in cases}
    if missing:
        raise InputError(f"{path}: re-profiled cases not in the data: {sorted(missing)}")
    return [c if c.id not in recs else update(c, recs[c.id]) for c in cases]


def _apply_rechecks(cases: list[GpuCase], path: Path) -> list[GpuCase]:
    """Counters of re-profiled cases: the median of the repeats replaces the first record's
    DRAM and L2 read bytes and kernel time, kernel by kernel (checked by name)."""
    import dataclasses

    def update(c, rec):
        if c.kernels is None or len(c.kernels) != len(rec["kernels"]):
            raise InputError(f"{path}: {c.id!r} has {len(rec['kernels'])} re-profiled kernels, "
                             f"the case {0 if c.kernels is None else len(c.kernels)}")
        ks = []
        for k, r in zip(c.kernels, rec["kernels"]):
            if not k.demangled.startswith(r["name_contains"]):
                raise InputError(f"{path}: {c.id!r}: re-profiled kernel {r['name_contains']!r}"
                                 f" is not {k.name!r}")
            ks.append(dataclasses.replace(k, dram_read_bytes=r["dram_read_bytes"],
                                          dram_write_bytes=r["dram_write_bytes"],
                                          l2_read_bytes=r["l2_read_bytes"],
                                          gpu_time_s=r["gpu_time_s"]))
        return dataclasses.replace(c, kernels=tuple(ks), original_kernels=c.kernels,
                                   recheck_repeats=int(rec["repeats"]))
    return _apply_side_file(cases, path, RECHECK_SCHEMA, update)


def _apply_l2_requests(cases: list[GpuCase], path: Path) -> list[GpuCase]:
    """Attach each case's re-profiled L2 read traffic (kernel by kernel, checked by name)."""
    import dataclasses

    def update(c, rec):
        names = [k.name for k in c.kernels or ()]
        if names != [r["kernel"] for r in rec]:
            raise InputError(f"{path}: {c.id!r} was re-profiled as "
                             f"{[r['kernel'] for r in rec]}, measured as {names}")
        reqs = tuple(L2Requests(r["kernel"], int(r["lookup_bytes"]), int(r["coalesced_bytes"]),
                                int(r["delivered_bytes"]), int(r["multicast_delivered_bytes"]))
                     for r in rec)
        return dataclasses.replace(c, l2_requests=reqs)
    return _apply_side_file(cases, path, L2_REQUESTS_SCHEMA, update)


def load_gpu_cases(device: str = "h100") -> GpuDataset:
    """Load ``data/<device>/gpu_cases.json``; ``device`` may also be a path to such a file or
    to a directory holding one (data measured elsewhere)."""
    path = Path(device)
    if path.is_dir() and (path / "gpu_cases.json").is_file():
        path = path / "gpu_cases.json"
    if not path.is_file():
        path = _file(device, "gpu_cases.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if doc.get("schema") != GPU_SCHEMA:
        raise InputError(f"gpu_cases.json of {device!r}: schema {doc.get('schema')!r}, "
                         f"expected {GPU_SCHEMA!r}")
    names = doc["kernel_demangled_names"]
    cases = []
    for c in doc["cases"]:
        ks = c.get("kernels")
        cases.append(GpuCase(
            id=c["id"], family=c["family"], params=_frozen(c.get("params")),
            flops=c.get("flops", 0), ideal_bytes=c.get("ideal_bytes", 0),
            time=_frozen(c.get("time")),
            kernels=None if ks is None else tuple(_kernel(k, names) for k in ks),
            run=c.get("run", "main"), error=c.get("error"),
            time_repeat_s=c.get("time_repeat_median_s")))
    recheck = path.parent / "rechecks.json"
    if recheck.is_file():
        cases = _apply_rechecks(cases, recheck)
    requests = path.parent / "l2_requests.json"
    if requests.is_file():
        cases = _apply_l2_requests(cases, requests)
    runs = tuple(_frozen(r) for r in doc["runs"])
    return GpuDataset(device=doc["device"], gpu_name=doc["gpu_name"],
                      provenance=_frozen(doc["runs"][0]["provenance"]), runs=runs,
                      cases=tuple(cases), ncu=_frozen(doc.get("ncu")),
                      timing_method=doc.get("timing_method", ""))


@dataclass(frozen=True)
class DiskPoint:
    """Random O_DIRECT reads of ``chunk_bytes`` by ``threads`` threads, each one request deep."""

    chunk_bytes: int
    threads: int
    bytes_per_s: float
    iops: float
    mean_latency_s: float
    seconds: float


@dataclass(frozen=True)
class DiskCurve:
    """The disk measurements of one device machine."""

    device_info: Mapping[str, Any]     # block device, filesystem, sysfs queue settings, model
    file_bytes: int
    page_cache_dropped: bool
    seq_write_bytes_per_s: float
    seq_read_bytes_per_s: Mapping[int, float]   # threads -> bytes/s (16 MiB requests)
    latency_4k: Mapping[str, float]             # median, p90, p99, p999, min, max (s), n
    latency_4k_histogram: Mapping[str, Any]     # edges_s, counts
    points: tuple[DiskPoint, ...]
    provenance: Mapping[str, Any]

    def point(self, chunk_bytes: int, threads: int) -> DiskPoint:
        for p in self.points:
            if p.chunk_bytes == chunk_bytes and p.threads == threads:
                return p
        raise InputError(f"no disk point with chunk {chunk_bytes} B and {threads} threads")


def load_disk_curve(device: str = "h100") -> DiskCurve:
    """Load ``data/<device>/disk_curve.json``."""
    with open(_file(device, "disk_curve.json")) as f:
        doc = json.load(f)
    if doc.get("schema") != DISK_SCHEMA:
        raise InputError(f"disk_curve.json of {device!r}: schema {doc.get('schema')!r}, "
                         f"expected {DISK_SCHEMA!r}")
    seq = doc["sequential"]
    reads = {int(k.split("_")[1].rstrip("t")): v["bytes_per_s"]
             for k, v in seq.items() if k.startswith("read_")}
    lat = doc["latency_4k_qd1"]
    points = tuple(DiskPoint(p["chunk_bytes"], p["threads"], p["bytes_per_s"], p["iops"],
                             p["mean_latency_s"], p["seconds"]) for p in doc["points"])
    return DiskCurve(device_info=_frozen(doc["device"]), file_bytes=doc["file_bytes"],
                     page_cache_dropped=bool(doc.get("page_cache_dropped")),
                     seq_write_bytes_per_s=seq["write_bytes_per_s"],
                     seq_read_bytes_per_s=_frozen(reads), latency_4k=_frozen(lat["latency_s"]),
                     latency_4k_histogram=_frozen(lat["latency_histogram"]), points=points,
                     provenance=_frozen(doc.get("provenance")))


@dataclass(frozen=True)
class NumericsCase:
    """Inputs and output of one PyTorch SDPA call in bf16 (float32 arrays of bf16 values)."""

    index: int
    q: np.ndarray       # (B, H, N, d)
    k: np.ndarray
    v: np.ndarray
    out: np.ndarray
    causal: bool        # torch's is_causal: top-left aligned (square here)
    backend: str
    scale: float
    meta: Mapping[str, Any]


def load_sdpa_numerics(device: str = "h100") -> list[NumericsCase]:
    """Load ``data/<device>/sdpa_bf16_numerics.npz`` as a list of cases in order."""
    with np.load(_file(device, "sdpa_bf16_numerics.npz")) as z:
        out = []
        n = 0
        while f"case{n}_meta" in z.files:
            meta = json.loads(str(z[f"case{n}_meta"]))
            out.append(NumericsCase(index=n, q=z[f"case{n}_q"], k=z[f"case{n}_k"],
                                    v=z[f"case{n}_v"], out=z[f"case{n}_out"],
                                    causal=bool(meta["causal"]), backend=meta["backend"],
                                    scale=float(meta["scale"]), meta=_frozen(meta)))
            n += 1
    return out


@dataclass(frozen=True)
class L2Probe:
    """One profiled probe kernel (l2_probe.py): ``experiment`` is ``reread`` (a buffer of
    ``bytes`` read a second time; ``mode`` ``other``: by CTAs elsewhere in the grid, ``same``:
    in the same grid order), ``after_flush`` (a read of ``bytes`` right after do_bench's
    256 MB ``zero_()``) or ``clean_control`` (the same read with nothing written before)."""

    id: str
    experiment: str
    bytes: int
    dram_read_bytes: int
    dram_write_bytes: int
    l2_read_bytes: int
    gpu_time_s: float
    mode: str | None = None


def load_l2_probes(device: str = "h100") -> tuple[tuple[L2Probe, ...], Mapping[str, Any]]:
    """Load ``data/<device>/l2_probes.json``: (probes, provenance)."""
    with open(_file(device, "l2_probes.json")) as f:
        doc = json.load(f)
    if doc.get("schema") != L2_SCHEMA:
        raise InputError(f"l2_probes.json of {device!r}: schema {doc.get('schema')!r}, "
                         f"expected {L2_SCHEMA!r}")
    probes = tuple(L2Probe(p["id"], p["experiment"], int(p["bytes"]), int(p["dram_read_bytes"]),
                           int(p["dram_write_bytes"]), int(p["l2_read_bytes"]),
                           float(p["gpu_time_s"]), p.get("mode")) for p in doc["probes"])
    return probes, _frozen(doc.get("provenance"))
