"""cuBLAS's choice and time for the GEMMs of an LLM's linear layers: Llama-3-8B's projections
(q/o 4096x4096, k/v 1024x4096, gate/up 14336x4096, down 4096x14336) at token counts from a
decode batch to a long prefill, bf16, ``x @ W.t()`` as the LLM step harness runs them.

Per shape: the median time by ``triton.testing.do_bench`` (L2 flushed, so the weights stream
from HBM as in a step), and the kernels cuBLAS launches with their grids (torch.profiler's
chrome trace). memsim's ``tiling: library`` rule predicts both the tile and the time from the
shape alone (``memsim.schedulers.gemm.library_tiles``); this data checks that rule where the
committed GPU cases have no shape (m from 64 to 16384 at the LLM's n and k).

    python3 gemm_library.py OUT_JSON        # needs torch with CUDA and triton; ~1 min
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TOKENS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
LAYERS = {"q_proj": (4096, 4096), "k_proj": (1024, 4096), "gate_proj": (14336, 4096),
          "down_proj": (4096, 14336)}          # (n, k): C[m, n] = x[m, k] @ W[n, k].t()


def main(out_path: str) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile
    from triton.testing import do_bench

    from provenance import collect
    dev, bf = "cuda", torch.bfloat16
    cases = []
    for name, (n, k) in LAYERS.items():
        w = torch.empty(n, k, device=dev, dtype=bf).normal_(0, 0.02)
        for m in TOKENS:
            x = torch.empty(m, k, device=dev, dtype=bf).normal_()
            fn = lambda: x @ w.t()          # noqa: E731
            out = fn()
            assert torch.isfinite(out).all()
            t = do_bench(fn, warmup=25, rep=100, return_mode="median") * 1e-3
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                fn()
                torch.cuda.synchronize()
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                path = f.name
            prof.export_chrome_trace(path)
            with open(path) as f:
                trace = json.load(f)
            os.unlink(path)
            kernels = [{"name": e["name"][:160], "grid": e.get("args", {}).get("grid"),
                        "block": e.get("args", {}).get("block"), "dur_s": e["dur"] * 1e-6}
                       for e in trace.get("traceEvents", [])
                       if e.get("cat") == "kernel" and e.get("ph") == "X"]
            cases.append({"id": f"{name}_m{m}", "layer": name, "m": m, "n": n, "k": k,
                          "time_s": t, "kernels": kernels})
            print(f"{name:10s} m={m:6d} {t * 1e6:9.2f} us  "
                  + " + ".join(f"{kk['name'][:44]} {kk['grid']}" for kk in kernels), flush=True)
            del x, out
        del w
        torch.cuda.empty_cache()
    doc = {"schema": "memsim.gemm_library/1",
           "provenance": {**collect(), "harness": "validation/harness/gemm_library.py "
                          "(x @ W.t(), bf16, do_bench median with L2 flush; kernels and grids "
                          "from torch.profiler's chrome trace)"},
           "cases": cases}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "gemm_library.json"))
