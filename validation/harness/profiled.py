"""One profiled call: the only work between cudaProfilerStart/Stop, inside an NVTX range that
names it (ncu runs with --profile-from-start off --nvtx; parse_ncu.py reads the range)."""
from __future__ import annotations


def profiled(name: str, fn) -> None:
    import torch
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_push(name)
    torch.cuda.profiler.start()
    fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    torch.cuda.nvtx.range_pop()
