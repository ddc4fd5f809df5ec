"""Tensor-core GEMM throughput per input dtype (fp16 and bf16), with the timing protocol of
run_timing.py (triton.testing.do_bench: CUDA events, L2 flushed before every call).

The committed GEMM cases are bf16 only; this gives the fp16 ceiling (the h100-sxm preset's
``fp16_wgmma`` achievable rate) and re-times bf16 in the same run as a check.
Usage: python3 run_rates.py OUT_JSON
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402

SHAPES = [(4096, 4096, 4096), (8192, 8192, 8192)]
QUANTILES = [0.5, 0.2, 0.8]


def main(out_path: str) -> int:
    import torch
    import triton.testing
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for dtype in ("fp16", "bf16"):
        tdt = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        for m, n, k in SHAPES:
            g = torch.Generator(device="cuda").manual_seed(0)
            a = torch.randn(m, k, device="cuda", dtype=tdt, generator=g)
            b = torch.randn(k, n, device="cuda", dtype=tdt, generator=g)
            fn = lambda: torch.matmul(a, b)  # noqa: E731
            for _ in range(3):
                fn()
            torch.cuda.synchronize()
            med, p20, p80 = triton.testing.do_bench(fn, warmup=50, rep=200, quantiles=QUANTILES)
            rows.append({"id": f"gemm_{dtype}_m{m}n{n}k{k}", "dtype": dtype, "m": m, "n": n,
                         "k": k, "flops": 2 * m * n * k, "median_s": med * 1e-3,
                         "p20_s": p20 * 1e-3, "p80_s": p80 * 1e-3})
            print(f"{rows[-1]['id']:28s} {med * 1e3:9.1f} us  "
                  f"{2 * m * n * k / (med * 1e-3) / 1e12:7.1f} TFLOP/s", flush=True)
            del a, b
    doc = {"schema": "memsim.validation.gemm_rates/1", "provenance": provenance.collect(),
           "method": "triton.testing.do_bench(warmup=50ms, rep=200ms), CUDA events, L2 flushed",
           "cases": rows}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
