"""Bytes L2 delivers to the SMs, next to the L2 lookups the main run compared (l2_delivered.sh).

The main run's L2 figure is ``lts__t_sectors_srcunit_tex_op_read``: sectors looked up in L2.
H100's L2 Request Coalescer (LRC) merges concurrent reads of one sector by several SMs into
one lookup before L2 (l2_merge.py measured it: two thread blocks reading the same data in
lockstep cost one lookup per sector). memsim's ``l2.read_bytes`` counts what each thread block
loads from L2, i.e. what L2 delivers over the crossbar: ``l1tex__m_xbar2l1tex_read_sectors``
(LSU, LDGSTS and TMA paths; a TMA multicast counts at every receiving SM, so its share is
recorded apart). This program profiles every attention and GEMM case of the main run once
(the same builders as ncu_target.py), largest-evidence families first.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402
from profiled import profiled  # noqa: E402

ORDER = ("attention_prefill", "gemm", "attention_decode")


def main():
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    cases = [c for c in C.all_cases() if c["family"] in ORDER]
    # math backend last (many kernels, large intermediates): the rest first
    cases.sort(key=lambda c: (c["params"].get("backend") == "math", ORDER.index(c["family"])))
    for case in cases:
        fn = C.build(case)
        fn()
        profiled(case["id"], fn)
        del fn
        torch.cuda.empty_cache()
        print("profiled", case["id"], flush=True)


if __name__ == "__main__":
    main()
