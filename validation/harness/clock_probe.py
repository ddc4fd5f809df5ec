"""SM clock and board power while do_bench times a case (the timing protocol of run_timing.py).

Why: compute-bound cases take longer under do_bench (back-to-back calls for 200 ms, a 256 MB
L2 flush between them) than their single profiled call under Nsight Compute (the 16384^3 GEMM
1.20x, cuDNN d=128 1.14x), while memory-bound ones do not. If the board's 700 W power limit
lowers the SM clock during the timed loop, the sampled clock shows it.

A thread samples ``torch.cuda.clock_rate()`` (MHz) and ``torch.cuda.power_draw()`` (mW) through
NVML every 10 ms while do_bench runs each case; the script prints and writes (JSON) the median
and the 10th percentile of the clock and the median power per case, with the case's median time.

Usage: python3 clock_probe.py OUT_JSON [CASE_ID ...]   (default: the cases of DEFAULT)
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402
import provenance  # noqa: E402

DEFAULT = ["gemm_m4096n4096k4096", "gemm_m8192n8192k8192", "gemm_m16384n16384k16384",
           "attn_cudnn_b4h16n8192d128", "attn_flash_b4h16n8192d128",
           "attn_efficient_b4h16n8192d128", "decode_flash_b32h32k32768d128",
           "d2dk_1073741824"]


def sample(stop: threading.Event, out: list) -> None:
    import torch
    while not stop.is_set():
        out.append((time.monotonic(), torch.cuda.clock_rate(), torch.cuda.power_draw()))
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    import torch
    import triton.testing
    out_path, ids = argv[0], argv[1:] or DEFAULT
    by_id = {c["id"]: c for c in C.all_cases()}
    results = []
    for cid in ids:
        fn = C.build(by_id[cid])
        fn()
        torch.cuda.synchronize()
        samples: list = []
        stop = threading.Event()
        th = threading.Thread(target=sample, args=(stop, samples))
        th.start()
        med = triton.testing.do_bench(fn, warmup=50, rep=200, quantiles=[0.5])
        stop.set()
        th.join()
        clocks = sorted(s[1] for s in samples)
        rec = {"id": cid, "median_s": med * 1e-3, "samples": len(samples),
               "clock_median_mhz": statistics.median(clocks),
               "clock_p10_mhz": clocks[len(clocks) // 10],
               "power_median_w": statistics.median(s[2] for s in samples) / 1e3}
        results.append(rec)
        print(f"{cid:36s} {rec['median_s'] * 1e6:10.1f} us  clock median "
              f"{rec['clock_median_mhz']:6.0f} p10 {rec['clock_p10_mhz']:6.0f} MHz  "
              f"power {rec['power_median_w']:5.0f} W  ({len(samples)} samples)", flush=True)
        del fn
        torch.cuda.empty_cache()
        time.sleep(1.0)          # let the board cool between cases
    doc = {"schema": "memsim.validation.clock_probe/1", "provenance": provenance.collect(),
           "method": "do_bench(warmup=50ms, rep=200ms) per case; NVML clock and power "
                     "sampled every 10 ms during it (torch.cuda.clock_rate / power_draw)",
           "cases": results}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
