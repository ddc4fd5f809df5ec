"""Ceilings of a GPU for a preset that has no validation data yet (run on an H200 for ``h200``):
device copies over sizes (HBM achievable bandwidth and the per-kernel fixed cost, fitted as
for ``h100-sxm``), bf16/fp16 GEMMs (wgmma achievable rate) with run_timing.py's protocol
(do_bench: CUDA events, L2 flushed before every call), then the pointer-chase latencies
(latency_probe.py). Writes ``ceilings.json`` (and ``latency_probe.json``) to $OUT.
Usage: OUT=out python3 ceilings.py
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402

COPY_BYTES = [1 << 20, 4 << 20, 16 << 20, 64 << 20, 128 << 20, 256 << 20, 512 << 20,
              1 << 30]
GEMMS = [(4096, 4096, 4096), (8192, 8192, 8192)]
QUANTILES = [0.5, 0.2, 0.8]


def main() -> int:
    import torch
    import triton.testing
    torch.backends.cuda.matmul.allow_tf32 = False
    out = os.environ.get("OUT", ".")
    rows = []
    g = torch.Generator(device="cuda").manual_seed(0)
    for nbytes in COPY_BYTES:
        src = torch.randn(nbytes // 2, device="cuda", dtype=torch.bfloat16, generator=g)
        dst = torch.empty_like(src)
        fn = lambda: dst.copy_(src)  # noqa: E731
        med, p20, p80 = triton.testing.do_bench(fn, warmup=50, rep=200, quantiles=QUANTILES)
        rows.append({"id": f"d2d_{nbytes}", "kind": "copy_d2d", "bytes": nbytes,
                     "median_s": med * 1e-3, "p20_s": p20 * 1e-3, "p80_s": p80 * 1e-3})
        print(f"{rows[-1]['id']:24s} {med * 1e3:9.1f} us", flush=True)
        del src, dst
    for dtype in ("bf16", "fp16"):
        tdt = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        for m, n, k in GEMMS:
            a = torch.randn(m, k, device="cuda", dtype=tdt, generator=g)
            b = torch.randn(k, n, device="cuda", dtype=tdt, generator=g)
            fn = lambda: torch.matmul(a, b)  # noqa: E731
            med, p20, p80 = triton.testing.do_bench(fn, warmup=50, rep=200, quantiles=QUANTILES)
            rows.append({"id": f"gemm_{dtype}_m{m}n{n}k{k}", "kind": "gemm", "dtype": dtype,
                         "m": m, "n": n, "k": k, "flops": 2 * m * n * k,
                         "median_s": med * 1e-3, "p20_s": p20 * 1e-3, "p80_s": p80 * 1e-3})
            print(f"{rows[-1]['id']:24s} {med * 1e3:9.1f} us  "
                  f"{2 * m * n * k / (med * 1e-3) / 1e12:6.0f} TFLOP/s", flush=True)
    with open(os.path.join(out, "ceilings.json"), "w") as f:
        json.dump({"provenance": provenance.collect(), "method": "triton.testing.do_bench("
                   "warmup=50 ms, rep=200 ms), quantiles .5/.2/.8, random inputs",
                   "cases": rows}, f, indent=1)
    import latency_probe
    return latency_probe.main()


if __name__ == "__main__":
    sys.exit(main())
