"""L2 read bandwidth: many CTAs re-read their own chunk of an L2-resident buffer with L1
bypassed (``ld.global.cg``), 16-byte vector loads, several in flight per thread. Run under
Nsight Compute with ``--cache-control none`` (l2_bandwidth.sh) after a warm-up call, so the
profiled call reads L2 only; ncu also reports the L2's own peak sector rate.

Usage (under ncu, see l2_bandwidth.sh): python3 l2_bandwidth.py
"""
from __future__ import annotations

import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profiled import profiled  # noqa: E402


@triton.jit
def _reread(x_ptr, out_ptr, chunk, reps, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    base = pid.to(tl.int64) * chunk
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for _ in range(reps):
        for off in range(0, chunk, BLOCK):
            acc += tl.load(x_ptr + base + off + tl.arange(0, BLOCK),
                           cache_modifier=".cg").to(tl.float32)
    tl.store(out_ptr + pid * BLOCK + tl.arange(0, BLOCK), acc)


# (id, CTAs per SM, chunk elements (bf16) per CTA, loads per iteration (BLOCK), warps, reps)
CONFIGS = [("cta4_w8", 4, 16384, 4096, 8, 40), ("cta8_w8", 8, 8192, 4096, 8, 40),
           ("cta8_w4", 8, 8192, 2048, 4, 40), ("cta16_w4", 16, 4096, 2048, 4, 40),
           ("cta8_w8_big", 8, 16384, 4096, 8, 20)]


def main() -> int:
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    for cid, per_sm, chunk, block, warps, reps in CONFIGS:
        ctas = sms * per_sm
        x = torch.randn(ctas * chunk, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(ctas * block, device="cuda", dtype=torch.float32)

        def fn():
            _reread[(ctas,)](x, out, chunk, reps, BLOCK=block, num_warps=warps)
        fn()
        fn()                                   # warm: the buffer is now in L2
        torch.cuda.synchronize()
        mb = x.numel() * 2 / 1e6
        print(f"{cid}: {ctas} CTAs, buffer {mb:.1f} MB, reads {mb * reps:.0f} MB", flush=True)
        profiled(f"l2bw_{cid}_{int(mb)}MB_x{reps}", fn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
