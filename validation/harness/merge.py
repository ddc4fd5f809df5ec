"""Merge the outputs of measurement runs into the committed data files. Pure Python, no torch.

Usage: python3 merge.py DEVICE_DIR MAIN_RUN_DIR [FOLLOWUP_RUN_DIR ...]

Each run directory holds what run_all.sh wrote to $OUT (timing.json, ncu_kernels.json, and for
the main run disk_curve.json and sdpa_bf16_numerics.npz). The first run's measurement of a case
is kept; a later run fills in cases the earlier ones lack, and where it re-timed a case, its
median goes to the case's `time_repeat_median_s` (run-to-run spread). Writes into DEVICE_DIR:
gpu_cases.json, disk_curve.json, sdpa_bf16_numerics.npz.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

SCHEMA = "memsim.validation.gpu_cases/1"
KERNEL_KEYS = ("registers_per_thread", "smem_dynamic_bytes", "smem_static_bytes",
               "dram_read_bytes", "dram_write_bytes", "l2_read_bytes", "l2_write_bytes")
NCU_OPTIONS = ("ncu --clock-control none --cache-control all --profile-from-start off --nvtx "
               "(one profiled call per case between cudaProfilerStart/Stop, inside an NVTX range "
               "named by the case id; caches flushed and invalidated before every kernel)")
NCU_METRICS = ["dram__bytes_read.sum", "dram__bytes_write.sum",
               "lts__t_sectors_srcunit_tex_op_read.sum", "lts__t_sectors_srcunit_tex_op_write.sum",
               "gpu__time_duration.sum", "launch__grid_size", "launch__block_size",
               "launch__registers_per_thread", "launch__shared_mem_per_block_dynamic",
               "launch__shared_mem_per_block_static"]


def _sig(x, digits=5):
    """Round a float to `digits` significant digits (timings are not more precise than that)."""
    return float(f"{x:.{digits - 1}e}") if isinstance(x, float) else x


def _compact_time(t):
    if not t:
        return t
    t = {k: _sig(v) for k, v in t.items()}
    if str(t.get("method", "")).startswith("triton.testing.do_bench"):
        del t["method"]  # stated once, in the top-level timing_method
    return t


def _dim3(text):
    return [int(v) for v in text.strip("() ").split(",")] if text else None


def _load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def merge(device_dir, run_dirs):
    os.makedirs(device_dir, exist_ok=True)
    names = []  # demangled kernel names, referenced by index
    name_idx = {}
    runs, cases, by_id = [], [], {}
    for r, rd in enumerate(run_dirs):
        run_name = "main" if r == 0 else f"followup{r}"
        timing = _load(os.path.join(rd, "timing.json")) or {"records": []}
        ncu = _load(os.path.join(rd, "ncu_kernels.json")) or {}
        prov = dict(timing.get("provenance", {}))
        runs.append({"run": run_name, "provenance": prov, "elapsed_s": timing.get("elapsed_s"),
                     "skipped_for_time": timing.get("skipped_for_time", []),
                     "ncu_cases": sorted(ncu)})
        for rec in timing["records"]:
            cid = rec["id"]
            if cid in by_id:
                old = by_id[cid]
                if "time" in rec and "time" in old:
                    old["time_repeat_median_s"] = _sig(rec["time"]["median_s"])
                    old["time_repeat_run"] = run_name
                continue
            case = {k: rec[k] for k in ("id", "family", "params") if k in rec}
            case["flops"] = rec.get("flops", 0)
            case["ideal_bytes"] = rec.get("ideal_bytes", 0)
            case["run"] = run_name
            case["time"] = _compact_time(rec.get("time"))
            if "error" in rec:
                case["error"] = rec["error"]
            case["kernels"] = None
            by_id[cid] = case
            cases.append(case)
        for cid, kernels in ncu.items():
            if cid not in by_id or by_id[cid]["kernels"] is not None:
                continue
            out = []
            for k in kernels:
                dem = k["demangled"]
                if dem not in name_idx:
                    name_idx[dem] = len(names)
                    names.append(dem)
                rec = {"name": k["name"], "demangled_index": name_idx[dem],
                       "grid": _dim3(k.get("grid")), "block": _dim3(k.get("block"))}
                rec.update({key: k.get(key) for key in KERNEL_KEYS})
                rec["gpu_time_s"] = _sig(k["gpu_time_ns"] * 1e-9) if k.get("gpu_time_ns") is not None else None
                out.append(rec)
            by_id[cid]["kernels"] = out
            by_id[cid]["ncu_run"] = run_name
    for c in cases:
        ks = c["kernels"]
        if ks:
            c["ncu_totals"] = {key: sum(k[key] or 0 for k in ks) for key in
                               ("dram_read_bytes", "dram_write_bytes", "l2_read_bytes",
                                "l2_write_bytes", "gpu_time_s")}
            c["ncu_totals"]["gpu_time_s"] = _sig(c["ncu_totals"]["gpu_time_s"])
            c["ncu_totals"]["kernel_count"] = len(ks)
    main_prov = runs[0]["provenance"]
    doc = {"schema": SCHEMA,
           "device": os.path.basename(os.path.normpath(device_dir)),
           "gpu_name": main_prov.get("gpu_name"),
           "harness": "validation/harness (run_all.sh); see validation/README.md",
           "ncu": {"options": NCU_OPTIONS, "metrics": NCU_METRICS, "l2_sector_bytes": 32,
                   "version": main_prov.get("ncu_version")},
           "timing_method": "triton.testing.do_bench(warmup=50 ms, rep=200 ms): CUDA events around "
                            "each call, L2 flushed (256 MB buffer write) before each call, "
                            "median and quantiles in seconds",
           "runs": runs, "kernel_demangled_names": names, "cases": cases}
    path = os.path.join(device_dir, "gpu_cases.json")
    with open(path, "w") as f:
        # one case per line: small, and diffs stay readable
        head = {k: v for k, v in doc.items() if k != "cases"}
        text = json.dumps(head, indent=1)[:-2]
        f.write(text + ',\n "cases": [\n')
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        f.write("\n ]\n}\n")
    json.load(open(path))  # must parse
    disk = _load(os.path.join(run_dirs[0], "disk_curve.json"))
    if disk is not None:
        disk["provenance"] = {k: main_prov.get(k) for k in
                              ("date_utc", "os_kernel", "cpu_model", "cpu_count", "gpu_name")}
        disk["provenance"]["script_sha256"] = main_prov.get("harness_sha256", {}).get("run_disk.py")
        disk["provenance"]["machine"] = ("device machine of kind nvidia-h100-x1 (Firecracker VM); "
                                         "the disk is the VM's virtio block device")
        with open(os.path.join(device_dir, "disk_curve.json"), "w") as f:
            json.dump(disk, f, indent=1)
    npz = os.path.join(run_dirs[0], "sdpa_bf16_numerics.npz")
    if os.path.exists(npz):
        dst = os.path.join(device_dir, "sdpa_bf16_numerics.npz")
        shutil.copyfile(npz, dst)
        os.chmod(dst, 0o644)
    return doc


if __name__ == "__main__":
    d = merge(sys.argv[1], sys.argv[2:])
    n_k = sum(len(c["kernels"] or []) for c in d["cases"])
    print(f"merge: {len(d['cases'])} cases, {n_k} kernels, {len(d['kernel_demangled_names'])} names")
