"""Calibrate a GPU preset ONCE from measured ceilings of the calibration split.

Every constant comes from a ceiling, never from fitting a case's error:

* ``hbm`` achievable bandwidth (the datasheet peak stays ``bandwidth``) and the per-kernel fixed cost (``gpu.launch_overhead``): a least-squares
  fit (relative errors) of ``t = a + 2B / BW`` over the device copies (cudaMemcpy and the
  copy kernel) of the calibration split;
* ``pcie`` achievable bandwidth and per-copy overhead: the same fit of ``t = a + B / BW`` over the pinned
  host<->device copies (``overhead = a - latency``);
* ``bf16_wgmma`` achievable: the best calibration GEMM (cuBLAS nvjet, wgmma) as
  ``flops / (t - launch_overhead)``;
* ``fp16_wgmma`` achievable: the best fp16 GEMM of ``gemm_rates.json`` (a separate run with
  the same timing protocol, which also re-times bf16 as a check) as ``flops / (t - launch)``;
* ``bf16_mma`` achievable: the rate at which memsim reproduces the fastest calibration FA2
  prefill case (the only mma.sync ceiling in the data: cuBLAS uses wgmma), found by bisection;
* ``fp32_fma`` achievable: the best FFMA GEMM kernel of the math backend
  (``flops / gpu__time_duration``) in the calibration split;
* ``math_kernel_bandwidth`` (``math_backend.KERNEL_BANDWIDTH``): per ATen kernel template, the
  median of (bytes the op reads + writes, from the shapes) / Nsight kernel time over its
  launches moving >= 8 MB in the calibration split's math cases;
* ``l2_dirty_after_flush`` (a property of the timing protocol, not of the GPU; used as
  ``simulation.l2_dirty_at_start`` by :mod:`.mapping`): do_bench writes a 256 MB buffer
  before each call, so a kernel starts with L2 full of it, partly dirty, and pays the
  write-back of what it evicts; Nsight (which flushes L2 itself) does not. Measured as the
  extra event time over Nsight kernel time of the short (<= 200 us) read-only memory-bound
  calibration cases with footprints >= 2x L2 (median, beyond the median gap of the cases
  with footprints <= L2/4), times the HBM bandwidth.

* ``gemm_swizzle`` (``mapping.GEMM_SWIZZLE``, the nvjet mappings' ``swizzle``): of the widths
  1, 2, 4, 8 and 16, the one whose predicted HBM bytes reproduce the calibration split's GEMMs
  with m >= 1024 best (least sum of absolute relative errors); the kernel names do not give it.

From the L2 probes (``data/<device>/l2_probes.json``, independent of the split):

* ``l2_reuse_capacity`` (the L2's ``cache.reuse_capacity``): the size of a buffer, re-read by
  other SMs, of which half misses on the second read (linear interpolation between probes).
  A fully associative LRU of that capacity keeps what the measured L2 keeps, on balance;
* ``l2_dirty_measured``: the write-back a read of 256 MB causes right after do_bench's flush
  (``mapping.L2_DIRTY_AFTER_FLUSH``); ``l2_dirty_after_flush`` above checks it from timing.

From the mma.sync probe (``data/<device>/mma_probe.json``, independent of the split):

* ``bf16_mma_peak`` and ``fp16_mma_peak`` (the ``peak`` of those rates): the best throughput
  of register-only ``mma.sync.m16n8k16`` chains over the probe's occupancies.

From the pointer chase (``data/<device>/latency_probe.json``, independent of the split):

* ``l2_latency`` and ``hbm_latency`` (the ``latency`` of the ``l2`` and ``hbm`` levels): ns
  per dependent load of an L2-resident 4 MiB chain, and what an L2-missing 512 MiB chain adds
  to it (memsim charges a miss both).

A GPU measured for its ceilings only (``data/<device>/ceilings.json``, e.g. ``h200``):
:func:`ceilings` gives HBM achievable bandwidth, launch overhead, wgmma rates, the reported
L2 capacity and the latencies, by the same rules.

``python -m memsim.validation.calibrate`` prints the values and their sources as YAML.
"""
from __future__ import annotations

import json

import numpy as np

from .compare import load_split, predict_case
from .data import DATA_DIR, load_gpu_cases, load_l2_probes
from .mapping import map_case

__all__ = ["calibrate", "fit_linear", "gemm_swizzle", "mma_ceilings"]


def fit_linear(x, t):
    """``t = a + x / bw`` by least squares on relative error; returns (a, bw)."""
    x, t = np.asarray(x, float), np.asarray(t, float)
    w = 1.0 / t
    A = np.stack([np.ones_like(x), x], 1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(A, t * w, rcond=None)
    return float(a), float(1.0 / b)


def _with(hw, **rates):
    over = {f"compute.tensor.rates.{k}.achievable": v for k, v in rates.items()}
    over.update({f"compute.tensor.rates.{k}.achievable_source": "calibration" for k in rates})
    return hw.with_overrides(over)


def calibrate(device: str = "h100", hw=None) -> dict:
    """Calibration values (SI units) with the case ids they came from."""
    from ..hardware import load_hardware
    hw = hw or load_hardware("h100-sxm")
    ds = load_gpu_cases(device)
    cal = set(load_split()["calibration"])
    cases = [c for c in ds.cases if c.id in cal and c.time_s]
    out = {}
    copies = [c for c in cases if c.family in ("copy_d2d", "copy_d2d_kernel")]
    a, bw = fit_linear([2 * c.params["bytes"] for c in copies], [c.time_s for c in copies])
    out["hbm_bandwidth"] = (bw, [c.id for c in copies])
    out["launch_overhead"] = (a, [c.id for c in copies])
    pcie = [c for c in cases if c.family in ("copy_h2d", "copy_d2h")]
    a_p, bw_p = fit_linear([c.params["bytes"] for c in pcie], [c.time_s for c in pcie])
    link = hw.link_between("host", "hbm")
    out["pcie_bandwidth"] = (bw_p, [c.id for c in pcie])
    out["pcie_overhead"] = (a_p - link.latency_s, [c.id for c in pcie])
    gemms = [c for c in cases if c.family == "gemm" and c.kernels and len(c.kernels) == 1]
    best = max(gemms, key=lambda c: c.flops / c.time_s)
    out["bf16_wgmma"] = (best.flops / (best.time_s - a), [best.id])
    ffma = []
    for c in cases:
        if c.params.get("backend") == "math" and c.kernels:
            p = c.params
            f = 2.0 * p["batch"] * p["heads"] * p["seq_q"] * p["seq_k"] * p["head_dim"]
            for k in c.kernels:
                if "ffma" in k.name or "sgemm" in k.name:
                    ffma.append((f / k.gpu_time_s, c.id, k.name))
    if ffma:
        r, cid, _ = max(ffma)
        out["fp32_fma"] = (r, [cid])
    flash = [c for c in cases if c.family == "attention_prefill"
             and c.params["backend"] == "flash"]
    fbest = max(flash, key=lambda c: c.flops / c.time_s)
    base = hw.with_overrides({"gpu.launch_overhead": a, "memories.hbm.achievable_bandwidth": bw,
                              "memories.hbm.achievable_source": "calibration"})
    model = map_case(fbest)
    lo, hi = 50e12, hw.find_rate("bf16_mma")[1].peak
    for _ in range(18):
        mid = (lo * hi) ** 0.5
        t = predict_case(model, _with(base, bf16_mma=mid))[0]
        lo, hi = (mid, hi) if t > fbest.time_s else (lo, mid)
    out["bf16_mma"] = ((lo * hi) ** 0.5, [fbest.id])
    out["l2_dirty_after_flush"] = _dirty_after_flush(cases, hw.memory("l2").capacity_bytes, bw)
    out.update(rates_by_dtype(device, a, ds))
    out.update(l2_from_probes(device))
    out.update(latency_from_probe(device))
    out.update(mma_ceilings(device))
    out["math_kernel_bandwidth"] = math_kernel_bandwidth(cases)
    return out


def math_kernel_bandwidth(cases, min_bytes: float = 8e6) -> tuple[dict, list]:
    """({kernel template: median bytes/s}, case ids) over the math-backend memory kernels."""
    from .math_backend import aligned_ops, kernel_class
    rates: dict[str, list] = {}
    ids = set()
    for c in cases:
        if c.params.get("backend") != "math" or not c.kernels:
            continue
        for op, ks in aligned_ops(c):
            if op.gemm is not None:
                continue
            nb = (sum(b for _, b in op.reads) + sum(b for _, b in op.writes)) / len(ks)
            if nb < min_bytes:
                continue
            for k in ks:
                rates.setdefault(kernel_class(k), []).append(nb / k.gpu_time_s)
                ids.add(c.id)
    return {name: float(np.median(v)) for name, v in sorted(rates.items())}, sorted(ids)


def _best_net_rate(gemms, launch: float) -> tuple:
    """The fastest of GEMM records ``{id, flops, median_s}``, as FLOP/s net of the per-kernel
    fixed cost ``launch``, with its id."""
    best = max(gemms, key=lambda c: c["flops"] / c["median_s"])
    return best["flops"] / (best["median_s"] - launch), [best["id"]]


def rates_by_dtype(device: str, launch: float, ds) -> dict:
    """``fp16_wgmma`` from ``gemm_rates.json``; ``bf16_retime``: its bf16 re-timing over the
    committed median of the same shape (the two runs' agreement)."""
    with open(DATA_DIR / device / "gemm_rates.json") as f:
        doc = json.load(f)
    ratios = []
    for c in doc["cases"]:
        if c["dtype"] == "bf16":
            twin = f"gemm_m{c['m']}n{c['n']}k{c['k']}"
            ratios.append((c["median_s"] / ds.case(twin).time_s, twin))
    return {"fp16_wgmma": _best_net_rate([c for c in doc["cases"] if c["dtype"] == "fp16"],
                                         launch),
            "bf16_retime": (max(ratios, key=lambda r: abs(r[0] - 1))[0], [r[1] for r in ratios])}


def gemm_swizzle(device: str = "h100", widths=(1, 2, 4, 8, 16)) -> tuple[int, list, dict]:
    """(best width, calibration case ids, {width: sum of |HBM error|}): see the docstring."""
    import dataclasses
    ds = load_gpu_cases(device)
    cal = set(load_split(device)["calibration"])
    cases = [c for c in ds.family("gemm") if c.id in cal and c.params["m"] >= 1024]
    score = {}
    for s in widths:
        err = 0.0
        for c in cases:
            model = map_case(c, device=device)
            cfg = dict(model.config)
            cfg["schedule"] = {**cfg["schedule"], "swizzle": s}
            _, hbm, _, _ = predict_case(dataclasses.replace(model, config=cfg))
            err += abs(hbm / c.hbm_bytes - 1)
        score[s] = err
    return min(score, key=score.get), [c.id for c in cases], score


def mma_ceilings(device: str = "h100") -> dict:
    """``bf16_mma_peak`` and ``fp16_mma_peak`` from ``mma_probe.json`` (module docstring)."""
    with open(DATA_DIR / device / "mma_probe.json") as f:
        doc = json.load(f)
    out = {}
    for dtype in ("bf16", "fp16"):
        cases = [c for c in doc["cases"] if c["dtype"] == dtype]
        best = max(cases, key=lambda c: c["tflops"])
        out[f"{dtype}_mma_peak"] = (best["flops"] / best["median_s"],
                                    [f"mma_probe:{dtype}:{best['blocks_per_sm']}/SM"])
    return out


def l2_from_probes(device: str = "h100") -> dict:
    """``l2_reuse_capacity`` and ``l2_dirty_measured`` from the L2 probes (module docstring)."""
    probes, _ = load_l2_probes(device)
    rr = sorted((p for p in probes if p.experiment == "reread" and p.mode == "other"),
                key=lambda p: p.bytes)
    frac = [p.dram_read_bytes / p.bytes for p in rr]
    cap = None
    for (a, fa), (b, fb) in zip(zip(rr, frac), zip(rr[1:], frac[1:])):
        if fa < 0.5 <= fb:
            cap = a.bytes + (b.bytes - a.bytes) * (0.5 - fa) / (fb - fa)
            ids = [a.id, b.id]
            break
    if cap is None:
        raise ValueError("the re-read probes never cross a 50% miss rate")
    flush = max((p for p in probes if p.experiment == "after_flush"), key=lambda p: p.bytes)
    return {"l2_reuse_capacity": (cap, ids),
            "l2_dirty_measured": (float(flush.dram_write_bytes), [flush.id])}


L2_LATENCY_BUFFER = 4 << 20       # an L2-resident chain (the near partition's copies)
HBM_LATENCY_BUFFER = 512 << 20    # every load misses L2; 2 GiB (more TLB misses) is +0.5%


def latency_from_probe(device: str = "h100") -> dict:
    """``l2_latency`` and ``hbm_latency`` from the pointer chase (``latency_probe.json``): the
    ns per dependent load of a 4 MiB chain, and what a 512 MiB chain adds to it (memsim adds
    the HBM latency to the L2 latency on a miss)."""
    path = DATA_DIR / device / "latency_probe.json"
    with open(path) as f:
        doc = json.load(f)
    pts = {p["buffer_bytes"]: p["ns_per_load"] * 1e-9 for p in doc["points"]}
    l2, miss = pts[L2_LATENCY_BUFFER], pts[HBM_LATENCY_BUFFER]
    return {"l2_latency": (l2, ["latency_probe:4MiB"]),
            "hbm_latency": (miss - l2, ["latency_probe:512MiB", "latency_probe:4MiB"])}


def ceilings(device: str) -> dict:
    """Preset values of a GPU measured only for its ceilings (``data/<device>/ceilings.json``
    from validation/harness/ceilings.py, no validation cases): HBM achievable bandwidth and the
    per-kernel fixed cost from the device copies (the fit used for h100-sxm), the best
    bf16/fp16 GEMM rate net of that cost, the L2 capacity the device reports, and the
    pointer-chase latencies (:func:`latency_from_probe`)."""
    with open(DATA_DIR / device / "ceilings.json") as f:
        doc = json.load(f)
    cases = doc["cases"]
    copies = [c for c in cases if c["kind"] == "copy_d2d"]
    a, bw = fit_linear([2 * c["bytes"] for c in copies], [c["median_s"] for c in copies])
    ids = [c["id"] for c in copies]
    out = {"hbm_bandwidth": (bw, ids), "launch_overhead": (a, ids),
           "l2_capacity": (float(doc["provenance"]["l2_bytes"]), ["provenance:l2_bytes"])}
    for dtype in ("bf16", "fp16"):
        out[f"{dtype}_wgmma"] = _best_net_rate(
            [c for c in cases if c["kind"] == "gemm" and c["dtype"] == dtype], a)
    out.update(latency_from_probe(device))
    out.update(mma_ceilings(device))
    return out


def _dirty_after_flush(cases, l2: float, bw: float):
    """Bytes of the flush buffer dirty in L2 when a timed call starts (see the docstring)."""
    timed = [c for c in cases if c.kernels and c.params.get("backend") != "math"
             and c.family not in ("copy_h2d", "copy_d2h")]
    gap_cases = [c for c in timed if c.dram_read_bytes <= l2 / 4]
    gap = float(np.median([c.time_s - c.kernel_time_s for c in gap_cases]))
    big = [c for c in timed if c.dram_read_bytes >= 2 * l2 and c.kernel_time_s <= 200e-6
           and c.dram_write_bytes <= 0.05 * c.dram_read_bytes
           and c.hbm_bytes / c.kernel_time_s >= 0.8 * bw]
    extra = float(np.median([c.time_s - c.kernel_time_s - gap for c in big]))
    return extra * bw, [c.id for c in gap_cases + big]


if __name__ == "__main__":       # pragma: no cover
    for key, (value, ids) in calibrate().items():
        values = value.items() if isinstance(value, dict) else [(key, value)]
        for name, v in values:
            label = name if name == key else f"{key}.{name}"
            print(f"{label}: {v:.6g}   # from {len(ids)} cases: {', '.join(ids[:4])}"
                  f"{' ...' if len(ids) > 4 else ''}")
