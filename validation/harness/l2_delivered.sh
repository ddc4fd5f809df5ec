#!/bin/bash
# L2 lookups vs bytes delivered to the SMs for every attention and GEMM case (l2_delivered.py),
# with the main run's ncu settings (--cache-control all --clock-control none). Results in $OUT:
# l2_delivered_raw.csv (ncu) and l2_delivered.json (per case, per kernel).
set -u
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
H=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python3}
M="lts__t_sectors_srcunit_tex_op_read.sum,l1tex__m_xbar2l1tex_read_sectors.sum"
M="$M,l1tex__m_xbar2l1tex_read_sectors_mem_global_op_tma_ld_dest_multicast.sum"
M="$M,lrc__request_sectors_op_read_coalescing_achieved_type_hardware.sum,gpu__time_duration.sum"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/delivered_gpu.txt"
timeout ${DELIVERED_TIMEOUT:-480} ncu --clock-control none --cache-control all \
  --profile-from-start off --nvtx --metrics "$M" \
  -f -o /tmp/l2del $PY "$H/l2_delivered.py" 2>&1 | grep -v "^==PROF==" | tail -5
ncu -i /tmp/l2del.ncu-rep --csv --page details --print-units base --print-kernel-base demangled \
  > "$OUT/l2_delivered_raw.csv"
$PY - "$OUT/l2_delivered_raw.csv" "$OUT/l2_delivered.json" <<'PYEOF'
import csv, json, re, sys
lines = [ln for ln in open(sys.argv[1]) if ln.startswith('"')]
rows = list(csv.DictReader(lines))
nv = [c for c in (rows[0].keys() if rows else []) if "Push/Pop" in c]
ks = {}
for r in rows:
    m = re.findall(r"<default domain>:([^:\"]+)", r.get(nv[0], "") if nv else "")
    k = ks.setdefault(r["ID"], {"case": m[-1] if m else None, "name": r["Kernel Name"]})
    try:
        k[r["Metric Name"]] = float(r["Metric Value"].replace(",", ""))
    except ValueError:
        pass
cases = {}
for k in ks.values():
    cases.setdefault(k["case"], []).append(k)
json.dump(cases, open(sys.argv[2], "w"))
for cid, kl in cases.items():
    look = sum(k.get("lts__t_sectors_srcunit_tex_op_read.sum", 0) for k in kl) * 32
    dl = sum(k.get("l1tex__m_xbar2l1tex_read_sectors.sum", 0) for k in kl) * 32
    mc = sum(k.get("l1tex__m_xbar2l1tex_read_sectors_mem_global_op_tma_ld_dest_multicast.sum", 0) for k in kl) * 32
    co = sum(k.get("lrc__request_sectors_op_read_coalescing_achieved_type_hardware.sum", 0) for k in kl) * 32
    print(f"{cid:40s} lookups {look/1e6:10.1f} delivered {dl/1e6:10.1f} multicast {mc/1e6:9.1f} coalesced {co/1e6:9.1f} MB ({len(kl)} kernels)")
PYEOF
$PY "$H/l2_requests_json.py" requests "$OUT/l2_delivered_raw.csv" "$OUT/delivered_gpu.txt" \
  "$OUT/l2_requests.json"     # the committed memsim/validation/data/h100/l2_requests.json
