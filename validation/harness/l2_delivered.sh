#!/bin/bash
# L2 lookups vs bytes delivered to the SMs for every attention and GEMM case (l2_delivered.py),
# with the main run's ncu settings (--cache-control all --clock-control none). Results in $OUT:
# l2_delivered_raw.csv (ncu) and l2_delivered.json (per case, per kernel).
. "$(dirname "$0")/env.sh"
M="lts__t_sectors_srcunit_tex_op_read.sum,l1tex__m_xbar2l1tex_read_sectors.sum"
M="$M,l1tex__m_xbar2l1tex_read_sectors_mem_global_op_tma_ld_dest_multicast.sum"
M="$M,lrc__request_sectors_op_read_coalescing_achieved_type_hardware.sum,gpu__time_duration.sum"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/delivered_gpu.txt"
timeout ${DELIVERED_TIMEOUT:-480} ncu --clock-control none --cache-control all \
  --profile-from-start off --nvtx --metrics "$M" \
  -f -o /tmp/l2del $PY "$H/l2_delivered.py" 2>&1 | grep -v "^==PROF==" | tail -5
ncu -i /tmp/l2del.ncu-rep --csv --page details --print-units base --print-kernel-base demangled \
  > "$OUT/l2_delivered_raw.csv"
$PY "$H/parse_ncu.py" --all "$OUT/l2_delivered_raw.csv" "$OUT/l2_delivered.json"
$PY - "$OUT/l2_delivered.json" <<'PYEOF'
import json, sys
M = {"look": "lts__t_sectors_srcunit_tex_op_read.sum", "dl": "l1tex__m_xbar2l1tex_read_sectors.sum",
     "mc": "l1tex__m_xbar2l1tex_read_sectors_mem_global_op_tma_ld_dest_multicast.sum",
     "co": "lrc__request_sectors_op_read_coalescing_achieved_type_hardware.sum"}
for cid, kl in json.load(open(sys.argv[1])).items():
    v = {key: sum(k.get(m, 0) for k in kl) * 32 / 1e6 for key, m in M.items()}
    print(f"{cid:40s} lookups {v['look']:10.1f} delivered {v['dl']:10.1f} multicast {v['mc']:9.1f}"
          f" coalesced {v['co']:9.1f} MB ({len(kl)} kernels)")
PYEOF
$PY "$H/l2_requests_json.py" requests "$OUT/l2_delivered_raw.csv" "$OUT/delivered_gpu.txt" \
  "$OUT/l2_requests.json"     # the committed memsim/validation/data/h100/l2_requests.json
