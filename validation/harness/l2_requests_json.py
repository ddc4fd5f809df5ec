"""Condense the l2_delivered.sh / l2_merge.sh outputs into the committed data files.

    python3 l2_requests_json.py requests RAW_CSV GPU_TXT OUT_JSON   # l2_requests.json
    python3 l2_requests_json.py merge MERGE_JSON NCU_JSON OUT_JSON   # l2_merge.json

Pure Python (no torch): runs on the GPU machine or here. Bytes are sectors x 32.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parse_ncu import SECTOR_BYTES, parse_file  # noqa: E402

NCU = "ncu --clock-control none --cache-control all --profile-from-start off --nvtx"


def _b(k, key):
    v = k.get(key)
    return None if v is None else int(v) * SECTOR_BYTES


def requests(raw_csv, gpu_txt, out):
    gpu, driver = (x.strip() for x in open(gpu_txt).read().split(",")[:2])
    cases = {}
    for cid, ks in parse_file(raw_csv).items():
        cases[cid] = [{"kernel": k["name"], "lookup_bytes": _b(k, "l2_read_sectors"),
                       "coalesced_bytes": _b(k, "l2_coalesced_sectors"),
                       "delivered_bytes": _b(k, "l2_delivered_sectors"),
                       "multicast_delivered_bytes": _b(k, "l2_multicast_delivered_sectors")}
                      for k in ks]
    doc = {"schema": "memsim.l2_requests/1",
           "provenance": {
               "gpu": gpu, "driver": driver, "date": "2026-11-21",
               "harness": f"validation/harness/l2_delivered.sh ({NCU}), one profiled call per "
                          "case, same builders as the main run",
               "fields": {
                   "lookup_bytes": "lts__t_sectors_srcunit_tex_op_read.sum x 32 (the main "
                                   "run's L2 figure: sectors looked up in L2)",
                   "coalesced_bytes": "lrc__request_sectors_op_read_coalescing_achieved_type_"
                                      "hardware.sum x 32 (read sectors the L2 Request "
                                      "Coalescer merged into another SM's request)",
                   "delivered_bytes": "l1tex__m_xbar2l1tex_read_sectors.sum x 32 (bytes L2 "
                                      "sent to the SMs; a TMA multicast counts at each "
                                      "receiving SM)",
                   "multicast_delivered_bytes": "l1tex__m_xbar2l1tex_read_sectors_mem_global_"
                                                "op_tma_ld_dest_multicast.sum x 32"},
               "why": "the main run's L2 lookups fall short of what the kernels load wherever "
                      "thread blocks read shared data in lockstep; l2_merge.json isolates the "
                      "cause (the L2 Request Coalescer)"},
           "cases": cases}
    with open(out, "w") as f:
        json.dump(doc, f, indent=0, separators=(",", ":"))
    print(f"{len(cases)} cases -> {out}")


def merge(merge_json, ncu_json, out):
    """``merge_json``: l2_merge.py's record; ``ncu_json``: ``parse_ncu.py --all`` of its ncu
    run (the first kernel of each case)."""
    rec = json.load(open(merge_json))
    by = {case: ks[0] for case, ks in json.load(open(ncu_json)).items()}
    reads = []
    for x in rec["reads"]:
        k = by.get(x["id"], {})
        sec = {m: int(k[m]) * SECTOR_BYTES for m in k
               if m.endswith(".sum") and "sectors" in m}
        reads.append({**x, "lookup_bytes": sec.get("lts__t_sectors_srcunit_tex_op_read.sum"),
                      "delivered_bytes": sec.get("l1tex__m_xbar2l1tex_read_sectors.sum"),
                      "gpu_time_ns": k.get("gpu__time_duration.sum")})
    attn = []
    for x in rec.get("attention", []):
        k = by.get(x["id"], {})
        attn.append({**x, "kernel": k.get("kernel", "")[:60],
                     "lookup_bytes": int(k.get("lts__t_sectors_srcunit_tex_op_read.sum", 0)) * 32,
                     "lookup_hit_bytes": int(k.get(
                         "lts__t_sectors_srcunit_tex_op_read_lookup_hit.sum", 0)) * 32,
                     "delivered_bytes": int(k.get("l1tex__m_xbar2l1tex_read_sectors.sum", 0)) * 32})
    doc = {"schema": "memsim.l2_merge/1",
           "provenance": {"gpu": rec.get("gpu"), "sms": rec["sms"], "torch": rec.get("torch"),
                          "date": "2026-11-21",
                          "harness": f"validation/harness/l2_merge.sh ({NCU}); synthetic "
                                     "kernels compiled by NVRTC (CuPy), 128 threads, 128 KiB "
                                     "read per thread block, 16 B per thread per load"},
           "placement": {key: {"blocks_per_sm": p["blocks_per_sm"], "grid": p["grid"],
                               "smid": p["smid"]} for key, p in rec["placement"].items()},
           "reads": reads, "attention": attn}
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"{len(reads)} synthetic reads, {len(attn)} attention kernels -> {out}")


if __name__ == "__main__":
    if sys.argv[1] == "requests":
        requests(*sys.argv[2:5])
    else:
        merge(*sys.argv[2:5])
