"""Time every GPU case (median of many runs, L2 flushed before each) and the launch overheads.

Usage: python3 run_timing.py OUT_JSON [--budget SECONDS] [--only FAMILY,...]

Writes OUT_JSON after every case, so a crash or a time-out loses nothing measured before it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402
import provenance  # noqa: E402

QUANTILES = [0.5, 0.2, 0.8, 0.0]


def _save(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)


def time_case(case):
    import torch
    import triton.testing

    fn = C.build(case)
    for _ in range(3):  # warm-up: module load, cuDNN plan, cuBLAS heuristics
        fn()
    torch.cuda.synchronize()
    # do_bench flushes L2 (writes a 256 MB buffer) before every timed call and times with events
    med, p20, p80, mn = triton.testing.do_bench(fn, warmup=50, rep=200, quantiles=QUANTILES)
    del fn
    return {"median_s": med * 1e-3, "p20_s": p20 * 1e-3, "p80_s": p80 * 1e-3, "min_s": mn * 1e-3,
            "method": "triton.testing.do_bench(warmup=50ms, rep=200ms), CUDA events, L2 flushed"}


def _wall_stats(samples):
    s = sorted(samples)
    return {"median_s": statistics.median(s), "p20_s": s[int(0.2 * (len(s) - 1))],
            "p80_s": s[int(0.8 * (len(s) - 1))], "p99_s": s[int(0.99 * (len(s) - 1))],
            "min_s": s[0], "n": len(s)}


def launch_records():
    """Launch overhead of an empty/tiny kernel, several ways; one record per way."""
    import torch
    recs = []
    x = torch.zeros(1, device="cuda")
    n = 2000

    def back_to_back(launch, label, note):
        for _ in range(100):
            launch()
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        per = []
        for _rep in range(5):
            e0.record()
            t0 = time.perf_counter()
            for _ in range(n):
                launch()
            t1 = time.perf_counter()
            e1.record()
            torch.cuda.synchronize()
            t2 = time.perf_counter()
            per.append(((t1 - t0) / n, e0.elapsed_time(e1) * 1e-3 / n, (t2 - t0) / n))
        host = statistics.median(p[0] for p in per)
        recs.append({"id": f"launch_{label}_back_to_back", "family": "launch",
                     "params": {"kernel": label, "launches": n, "note": note},
                     "time": {"median_s": statistics.median(p[2] for p in per),
                              "host_enqueue_per_launch_s": host,
                              "gpu_events_per_launch_s": statistics.median(p[1] for p in per),
                              "method": f"{n} back-to-back launches, 5 repeats, median; "
                                        "median_s is wall time per launch incl. final sync"}})

    back_to_back(lambda: x.add_(1), "torch_add_1elem", "x.add_(1) on a 1-element fp32 tensor")
    try:
        import cupy as cp
        k = cp.RawKernel('extern "C" __global__ void empty_kernel() {}', "empty_kernel")
        back_to_back(lambda: k((1,), (32,), ()), "cupy_empty", "empty __global__ via cupy RawKernel")
    except Exception as e:  # noqa: BLE001
        recs.append({"id": "launch_cupy_empty_back_to_back", "family": "launch", "params": {},
                     "error": repr(e)})

    # CUDA graph: the device-side cost per kernel without host launch overhead
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                x.add_(1)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        ng = 1000
        with torch.cuda.graph(g):
            for _ in range(ng):
                x.add_(1)
        g.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(20):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            g.replay()
            e1.record()
            torch.cuda.synchronize()
            times.append(e0.elapsed_time(e1) * 1e-3 / ng)
        st = _wall_stats(times)
        st["method"] = f"CUDA graph of {ng} x.add_(1), 20 replays timed by events, per kernel"
        recs.append({"id": "launch_graph_torch_add_1elem", "family": "launch",
                     "params": {"kernel": "torch_add_1elem", "graph_nodes": ng}, "time": st})
    except Exception as e:  # noqa: BLE001
        recs.append({"id": "launch_graph_torch_add_1elem", "family": "launch", "params": {},
                     "error": repr(e)})

    # single launch + synchronize round trip, and synchronize alone
    def roundtrip(op, label, note, reps=500):
        for _ in range(20):
            op()
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            op()
            samples.append(time.perf_counter() - t0)
        st = _wall_stats(samples)
        st["method"] = f"host wall clock, {reps} repeats"
        recs.append({"id": f"latency_{label}", "family": "latency", "params": {"note": note},
                     "time": st})

    roundtrip(torch.cuda.synchronize, "sync_idle", "torch.cuda.synchronize() on an idle device")
    roundtrip(lambda: (x.add_(1), torch.cuda.synchronize()), "launch_sync",
              "x.add_(1) then synchronize")
    for nbytes in (8, 4096, 65536):
        h = torch.ones(nbytes, dtype=torch.uint8, pin_memory=True)
        d = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        roundtrip(lambda: (d.copy_(h, non_blocking=True), torch.cuda.synchronize()),
                  f"h2d_pinned_{nbytes}", f"{nbytes} B pinned host->device copy then synchronize")
        roundtrip(lambda: (h.copy_(d, non_blocking=True), torch.cuda.synchronize()),
                  f"d2h_pinned_{nbytes}", f"{nbytes} B device->pinned host copy then synchronize")
    return recs


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--budget", type=float, default=1e9, help="seconds for this section")
    ap.add_argument("--only", default="", help="comma-separated families")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    doc = {"schema": "memsim.validation.timing/1", "provenance": provenance.collect(),
           "records": [], "skipped_for_time": []}
    _save(args.out, doc)
    cases = C.all_cases()
    if args.only:
        fams = set(args.only.split(","))
        cases = [c for c in cases if c["family"] in fams]
    try:
        doc["records"].extend(launch_records())
    except Exception:  # noqa: BLE001
        doc["records"].append({"id": "launch", "family": "launch", "error": traceback.format_exc()})
    _save(args.out, doc)
    for i, case in enumerate(cases):
        if time.monotonic() - t_start > args.budget:
            doc["skipped_for_time"] = [c["id"] for c in cases[i:]]
            print(f"budget spent: skipped {len(cases) - i} cases", flush=True)
            break
        rec = {k: case[k] for k in ("id", "family", "params", "flops", "ideal_bytes")}
        try:
            rec["time"] = time_case(case)
            t = rec["time"]["median_s"]
            extra = ""
            if case["flops"]:
                extra = f"{case['flops'] / t / 1e12:8.1f} TFLOP/s"
            if case["family"].startswith("copy"):
                extra = f"{case['ideal_bytes'] / t / 1e9:8.1f} GB/s"
            print(f"[{i + 1}/{len(cases)}] {case['id']:48s} {t * 1e6:12.2f} us {extra}", flush=True)
        except Exception as e:  # noqa: BLE001 - one failing backend must not lose the rest
            rec["error"] = repr(e)[:500]
            print(f"[{i + 1}/{len(cases)}] {case['id']:48s} ERROR {repr(e)[:160]}", flush=True)
        finally:
            torch.cuda.empty_cache()
        doc["records"].append(rec)
        _save(args.out, doc)
    doc["provenance"]["nvidia_smi_after"] = provenance.gpu_smi()
    doc["elapsed_s"] = time.monotonic() - t_start
    _save(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
