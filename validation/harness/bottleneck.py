"""Which SM resource bounds each attention kernel (bottleneck.sh): pipe utilizations,
shared-memory wavefronts and bank conflicts, issue activity and warp stall reasons, for the
kernels whose time memsim misses (cutlass fmha prefill/decode, cuDNN sm90 prefill) next to
FA2, which it predicts. Same builders as the main run; one profiled call per case."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402
from profiled import profiled  # noqa: E402

IDS = ["attn_flash_b4h16n4096d64", "attn_flash_b4h16n4096d128",
       "attn_efficient_b4h16n4096d64", "attn_efficient_b4h16n4096d128",
       "attn_cudnn_b4h16n4096d64", "attn_cudnn_b4h16n4096d128",
       "decode_efficient_b1h32k16384d128", "decode_efficient_b8h32k16384d128",
       "decode_flash_b8h32k16384d128", "decode_cudnn_b8h32k16384d128"]


def main():
    import torch
    by_id = {c["id"]: c for c in C.all_cases()}
    for cid in IDS:
        fn = C.build(by_id[cid])
        fn()
        profiled(cid, fn)
        del fn
        torch.cuda.empty_cache()
        print("profiled", cid, flush=True)


if __name__ == "__main__":
    main()
