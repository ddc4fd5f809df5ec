"""Grouped-query decode attention through PyTorch's flash backend (Llama-3-8B's shape: 32 query
heads over 8 K/V heads, d = 128, one query per sequence), plus one MHA control that the main
run measured too.

Why: with GQA and one query, FlashAttention-2 runs the group's queries as the query rows of
their K/V head (flash_api.cpp's seqlenq_ngroups_swapped); memsim's LLM path models that. The
kernel grid shows it (the heads dimension is 8, not 32) and the times test the model.

    python3 gqa_decode.py time OUT_JSON       # do_bench per case (L2 flushed), provenance
    ncu ... python3 gqa_decode.py profile     # one profiled call per case (NVTX range = id)
    python3 gqa_decode.py condense TIMING_JSON NCU_JSON GRID_CSV OUT_JSON DATE   # no torch

``condense`` joins the timing, the ``parse_ncu.py --all`` output of the profile (metrics
dram__bytes_read/write.sum, lts__t_sectors_srcunit_tex_op_read.sum, gpu__time_duration.sum)
and the kernels' grid dimensions (``ncu --page raw --metrics launch__grid_dim_x,y,z`` as
CSV) into the committed ``gqa_decode.json``. The ``api`` of every case is the SDPA call with
the ``enable_gqa`` argument (False for the MHA control).
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from condense import write_doc  # noqa: E402
from profiled import profiled  # noqa: E402

D = 128
CASES = [{"id": f"gqa_decode_b{b}h32kv8k{k}d{D}", "batch": b, "heads": 32, "kv_heads": 8,
          "seq_k": k, "head_dim": D} for b in (1, 8, 32) for k in (1024, 4096, 16384)]
CASES.append({"id": f"mha_decode_b8h32kv32k4096d{D}", "batch": 8, "heads": 32, "kv_heads": 32,
              "seq_k": 4096, "head_dim": D})


def build(c, seed=0):
    """(callable, api): SDPA's flash backend with enable_gqa, else the aten flash op."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    g = torch.Generator(device="cuda").manual_seed(seed)
    b, hq, hk, n, d = c["batch"], c["heads"], c["kv_heads"], c["seq_k"], c["head_dim"]
    q = torch.randn(b, hq, 1, d, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(b, hk, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(b, hk, n, d, device="cuda", dtype=torch.bfloat16, generator=g)

    def sdpa():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=hq != hk)
    try:
        sdpa()
        torch.cuda.synchronize()
        return sdpa, "sdpa flash enable_gqa"
    except Exception as e:  # noqa: BLE001
        print(f"{c['id']}: SDPA flash refused ({e!r:.120}); aten._flash_attention_forward",
              flush=True)
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))   # (b, s, h, d)

    def aten():
        return torch.ops.aten._flash_attention_forward(qt, kt, vt, None, None, 1, n, 0.0,
                                                       False, False)
    return aten, "aten._flash_attention_forward"


def condense(timing_path, ncu_path, grid_csv, out_path, date) -> int:
    import csv
    with open(timing_path) as f:
        timing = json.load(f)
    with open(ncu_path) as f:
        ncu = json.load(f)
    grids: dict = {}
    with open(grid_csv) as f:
        for row in csv.DictReader(f):
            rng = next((v for k, v in row.items() if k and k.startswith("thread Domain")), "")
            if ":" not in rng:
                continue
            case = rng.split(":")[1]
            grids.setdefault(case, []).append(
                [int(row[f"launch__grid_dim_{a}"]) for a in "xyz"])
    cases = []
    for c in timing["cases"]:
        ks = ncu[c["id"]]
        if len(grids.get(c["id"], [])) != len(ks):
            raise SystemExit(f"{c['id']}: {len(ks)} kernels but {len(grids.get(c['id'], []))} "
                             f"grid rows")
        cases.append({**c, "kernels": [
            {"name": k["kernel"][:120], "grid": g,
             "dram_read_bytes": int(float(k["dram__bytes_read.sum"])),
             "dram_write_bytes": int(float(k["dram__bytes_write.sum"])),
             "l2_read_bytes": int(float(k["lts__t_sectors_srcunit_tex_op_read.sum"])) * 32,
             "gpu_time_s": float(k["gpu__time_duration.sum"]) * 1e-9}
            for k, g in zip(ks, grids[c["id"]])]})
    prov = timing["provenance"]
    doc = {"schema": "memsim.validation.gqa_decode/1",
           "provenance": {k: prov[k] for k in ("gpu_name", "sm_count", "driver", "torch",
                                                "cuda_runtime", "triton") if k in prov},
           "date": date, "method": timing["method"],
           "ncu": "ncu --clock-control none --cache-control all --profile-from-start off "
                  "--nvtx, one profiled call per case",
           "cases": cases}
    return write_doc(out_path, doc, "cases")


def main(argv):
    if argv[:1] == ["condense"] and len(argv) == 6:
        return condense(*argv[1:])
    import torch
    if argv[:1] == ["profile"]:
        for c in CASES:
            fn, _ = build(c)
            fn()
            fn()
            profiled(c["id"], fn)
            del fn
            torch.cuda.empty_cache()
        return 0
    if len(argv) != 2 or argv[0] != "time":
        print(__doc__, file=sys.stderr)
        return 2
    import triton.testing
    import provenance
    out = []
    for c in CASES:
        fn, api = build(c)
        med, p20, p80 = triton.testing.do_bench(fn, warmup=50, rep=200, quantiles=[.5, .2, .8])
        out.append({**c, "api": api, "median_s": med * 1e-3, "p20_s": p20 * 1e-3,
                    "p80_s": p80 * 1e-3})
        print(f"{c['id']:32s} {med * 1e3:9.1f} us  ({api})", flush=True)
        del fn
        torch.cuda.empty_cache()
    with open(argv[1], "w") as f:
        json.dump({"provenance": provenance.collect(),
                   "method": "triton.testing.do_bench(warmup=50ms, rep=200ms), CUDA events, "
                             "L2 flushed", "cases": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
