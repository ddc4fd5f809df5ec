"""SDPA bf16 outputs on small shapes, for comparison with memsim's numerics (issue 4 item 5).

Inputs are drawn with numpy from a fixed seed, cast to bf16 by torch; q, k, v and the output are
saved as float32 arrays holding exactly the bf16 values.

Usage: python3 run_numerics.py OUT_NPZ
"""
from __future__ import annotations

import json
import sys

import numpy as np

SEED = 20261121
# (B, H, N, d, causal): N not a multiple of common block sizes where possible
SHAPES = [(1, 2, 128, 64, False), (1, 2, 257, 64, True), (1, 2, 200, 128, False),
          (1, 2, 512, 64, True)]


def main(out):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    rng = np.random.default_rng(SEED)
    arrays = {}
    for n, (b, h, s, d, causal) in enumerate(SHAPES):
        qkv = [rng.standard_normal((b, h, s, d)).astype(np.float32) for _ in range(3)]
        tq, tk, tv = (torch.from_numpy(a).to("cuda").to(torch.bfloat16) for a in qkv)
        backend = "flash"
        try:
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                o = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        except RuntimeError:
            backend = "default"
            o = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        torch.cuda.synchronize()
        # float64 reference on the same bf16 inputs, to state the GPU's own error
        q64, k64, v64 = (t.double() for t in (tq, tk, tv))
        sc = (q64 @ k64.transpose(-1, -2)) / d ** 0.5
        if causal:
            sc = sc.masked_fill(torch.ones(s, s, dtype=torch.bool, device="cuda").triu(1),
                                float("-inf"))
        ref = torch.softmax(sc, -1) @ v64
        rel = float((o.double() - ref).norm() / ref.norm())
        for name, t in zip(("q", "k", "v", "out"), (tq, tk, tv, o)):
            arrays[f"case{n}_{name}"] = t.float().cpu().numpy()
        arrays[f"case{n}_meta"] = np.array(json.dumps({
            "shape": [b, h, s, d], "causal": causal, "backend": backend, "scale": 1 / d ** 0.5,
            "dtype": "bf16", "seed": SEED, "draw": "numpy default_rng(seed).standard_normal, "
            "q then k then v per case in order, float32 then torch .to(bfloat16) (round to nearest)",
            "causal_alignment": "top-left (torch is_causal)",
            "rel_err_vs_float64_on_bf16_inputs": rel}))
        print(f"numerics case{n} {b, h, s, d, causal} backend={backend} rel_err_vs_fp64={rel:.2e}",
              flush=True)
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
