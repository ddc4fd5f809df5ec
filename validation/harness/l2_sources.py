"""Which source units' L2 reads Nsight counts, for TMA kernels (run by l2_sources.sh).

The comparable L2 figure is ``lts__t_sectors_srcunit_tex_op_read`` (reads the SMs' TEX/LSU path
sends to L2). sm90 kernels (cuBLAS nvjet, cuDNN) load through TMA, partly multicast over a
cluster, and H100's L2 has two partitions joined by a fabric. This program profiles a few
measured cases once each (the same builders as ncu_target.py) so that l2_sources.sh can read
every ``lts__t_sectors_srcunit_*_op_read`` counter and the all-source total of each kernel.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402
from profiled import profiled  # noqa: E402

IDS = ["gemm_m2048n2048k2048", "gemm_m4096n4096k4096", "gemm_m64n8192k8192",
       "gemm_m256n16384k4096", "attn_cudnn_b4h16n2048d128", "attn_flash_b4h16n2048d128",
       "attn_efficient_b4h16n2048d64", "attn_flash_b4h16n512d128",
       "attn_flash_b4h16n8192d128_causal"]


def main():
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    by_id = {c["id"]: c for c in C.all_cases()}
    for cid in IDS:
        fn = C.build(by_id[cid])
        fn()
        fn()
        profiled(cid, fn)
        del fn
        print("profiled", cid, flush=True)


if __name__ == "__main__":
    main()
