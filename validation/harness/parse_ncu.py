"""Parse `ncu -i REPORT --csv --print-units base` (details page) into per-case kernel records.

Pure Python (no torch): runs on the GPU machine or here. Each CSV row is one metric of one
kernel; rows of one kernel share the "ID" column. The NVTX push/pop column names the case.

Usage: python3 parse_ncu.py NCU_CSV OUT_JSON
"""
from __future__ import annotations

import csv
import json
import re
import sys

NVTX_COL = "thread Domain:Push/Pop_Range:PL_Type:PL_Value:CLR_Type:Color:Msg_Type:Msg"

# metric name -> (record key, multiplier to bytes / seconds / plain)
METRICS = {
    "dram__bytes_read.sum": ("dram_read_bytes", 1),
    "dram__bytes_write.sum": ("dram_write_bytes", 1),
    "lts__t_sectors_srcunit_tex_op_read.sum": ("l2_read_sectors", 1),
    "lts__t_sectors_srcunit_tex_op_write.sum": ("l2_write_sectors", 1),
    "gpu__time_duration.sum": ("gpu_time_ns", 1),
    "launch__grid_size": ("grid_size", 1),
    "launch__block_size": ("block_size", 1),
    "launch__registers_per_thread": ("registers_per_thread", 1),
    "launch__shared_mem_per_block_dynamic": ("smem_dynamic_bytes", 1),
    "launch__shared_mem_per_block_static": ("smem_static_bytes", 1),
    # l2_delivered.sh: bytes L2 delivers to the SMs and the L2 Request Coalescer's merges
    "l1tex__m_xbar2l1tex_read_sectors.sum": ("l2_delivered_sectors", 1),
    "l1tex__m_xbar2l1tex_read_sectors_mem_global_op_tma_ld_dest_multicast.sum":
        ("l2_multicast_delivered_sectors", 1),
    "lrc__request_sectors_op_read_coalescing_achieved_type_hardware.sum":
        ("l2_coalesced_sectors", 1),
}
SECTOR_BYTES = 32


def _num(text):
    t = text.replace(",", "").strip()
    if t in ("", "n/a"):
        return None
    v = float(t)
    return int(v) if v.is_integer() else v


def case_from_nvtx(text):
    """The innermost NVTX push/pop range name, e.g. '560 "<default domain>:attn_x:none..."'."""
    m = re.findall(r"<default domain>:([^:\"]+)", text or "")
    return m[-1] if m else None


def short_name(demangled):
    """Function name without return type, template arguments or parameters.

    'void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, ...>, true>(Flash_fwd_params)'
    -> 'flash::flash_fwd_kernel'.
    """
    s = demangled.strip().replace("(anonymous namespace)", "{anon}").replace("<unnamed>", "{anon}")
    if s.endswith(")"):  # drop the parameter list: the last top-level (...)
        depth = 0
        for i in range(len(s) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(s[i], 0)
            if depth == 0:
                s = s[:i]
                break
    tokens, depth, cur = [], 0, ""
    for ch in s:  # split at spaces outside template brackets; the name is the last token
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == " " and depth == 0:
            tokens.append(cur)
            cur = ""
        else:
            cur += ch
    tokens.append(cur)
    name, depth, out = tokens[-1], 0, ""
    for ch in name:  # drop template arguments
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out += ch
    return out or demangled


def _by_case(rows, head, add):
    """{case_id: [kernel dict, ...]} in launch order: a kernel's dict is ``head(row)`` of its
    first row, then ``add(kernel, metric name, value)`` for each of its rows."""
    kernels = {}
    for r in rows:
        k = kernels.get(r["ID"])
        if k is None:
            k = kernels[r["ID"]] = {"case": case_from_nvtx(r.get(NVTX_COL, "")), **head(r)}
        add(k, r.get("Metric Name"), _num(r.get("Metric Value", "")))
    by_case = {}
    for k in kernels.values():
        by_case.setdefault(k.pop("case") or "_unlabelled", []).append(k)
    return by_case


def _csv_rows(path):
    with open(path, newline="") as f:
        # ncu may print ==PROF== lines before the header when it is not quiet
        return list(csv.DictReader(ln for ln in f if ln.startswith('"')))


def parse_rows(rows):
    """Return {case_id: [kernel dict, ...]} in launch order (the METRICS of the main run)."""
    def head(r):
        return {"ncu_id": int(r["ID"]), "name": short_name(r["Kernel Name"]),
                "demangled": r["Kernel Name"], "grid": r.get("Grid Size"),
                "block": r.get("Block Size"), "stream": _num(r.get("Stream", ""))}

    def add(k, name, v):
        if name in METRICS:
            key, mult = METRICS[name]
            k[key] = None if v is None else v * mult
    by_case = _by_case(rows, head, add)
    for ks in by_case.values():
        for k in ks:
            for what in ("read", "write"):
                if k.get(f"l2_{what}_sectors") is not None:
                    k[f"l2_{what}_bytes"] = k[f"l2_{what}_sectors"] * SECTOR_BYTES
    return by_case


def parse_file(path):
    return parse_rows(_csv_rows(path))


def parse_all(path):
    """Every numeric metric of every kernel: {case: [{"kernel": demangled name, metric: value,
    ...}, ...]} (for the probe runs, whose metric lists differ from the main run's)."""
    def add(k, name, v):
        if isinstance(v, (int, float)):
            k[name] = v
    return _by_case(_csv_rows(path), lambda r: {"kernel": r["Kernel Name"]}, add)


if __name__ == "__main__":
    if sys.argv[1] == "--all":       # parse_ncu.py --all NCU_CSV OUT_JSON: every metric
        with open(sys.argv[3], "w") as f:
            json.dump(parse_all(sys.argv[2]), f, indent=1)
        sys.exit(0)
    res = parse_file(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        json.dump(res, f, indent=1)
    print(f"parse_ncu: {sum(len(v) for v in res.values())} kernels in {len(res)} cases")
