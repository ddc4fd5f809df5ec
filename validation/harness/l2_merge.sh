#!/bin/bash
# Concurrent same-data reads (l2_merge.py) under Nsight Compute: L2 sectors read per kernel,
# with extra L1/L2 counters. --cache-control all (L2 flushed before each profiled kernel, as
# in the main run); --clock-control none. Results in $OUT.
#   OUT=out bash validation/harness/l2_merge.sh
. "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/merge_gpu.txt"
WANT="dram__bytes_read.sum lts__t_sectors_srcunit_tex_op_read.sum lts__t_requests_srcunit_tex_op_read.sum lts__t_sectors_srcunit_tex_op_read_lookup_hit.sum l1tex__m_xbar2l1tex_read_sectors.sum l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum l1tex__t_sectors_pipe_lsu_mem_global_op_ldgsts.sum gpu__time_duration.sum"
ncu --query-metrics --chip gh100 > "$OUT/metrics_gh100.txt" 2>&1
M=""
for m in $WANT; do
  base=${m%.sum}
  if grep -q "^$base " "$OUT/metrics_gh100.txt"; then M="$M,$m"; else echo "metric not available: $m"; fi
done
M=${M#,}
[ -z "$M" ] && M="dram__bytes_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,gpu__time_duration.sum"
echo "metrics: $M"
timeout ${PROBE_TIMEOUT:-420} ncu --clock-control none --cache-control all \
  --profile-from-start off --nvtx --metrics "$M" \
  -f -o /tmp/l2merge $PY "$H/l2_merge.py" 2>&1 | grep -v "^==PROF==" | tail -30
ncu -i /tmp/l2merge.ncu-rep --csv --page details --print-units base \
  --print-kernel-base demangled > "$OUT/l2_merge_raw.csv"
$PY "$H/parse_ncu.py" --all "$OUT/l2_merge_raw.csv" "$OUT/l2_merge_ncu.json"
$PY - "$OUT/l2_merge.json" "$OUT/l2_merge_ncu.json" <<'PYEOF'
import json, sys
rec, by = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
S, X = "lts__t_sectors_srcunit_tex_op_read.sum", "l1tex__m_xbar2l1tex_read_sectors.sum"
for x in rec["reads"]:
    k = by.get(x["id"], [{}])[0]
    l2 = k.get(S, 0) * 32
    print(f'{x["id"]:44s} loaded {x["loaded_bytes"]/1e6:7.1f} distinct {x["distinct_bytes"]/1e6:7.1f} '
          f'L2rd {l2/1e6:7.1f} MB ratio {l2/x["loaded_bytes"]:.3f} xbar2l1 {k.get(X, 0)*32/1e6:7.1f}')
for x in rec.get("attention", []):
    for k in by.get(x["id"], []):
        print(f'{x["id"]:36s} {k["kernel"][:40]:40s} L2rd {k.get(S, 0)*32/1e6:8.1f} MB '
              f'hit {k.get(S[:-4] + "_lookup_hit.sum", 0)*32/1e6:8.1f} xbar2l1 {k.get(X, 0)*32/1e6:8.1f}')
for key, p in rec["placement"].items():
    s = p["smid"]
    same_next = sum(1 for i in range(len(s) - 1) if s[i] == s[i + 1])
    print(key, "first 16 blocks on SMs", s[:16], "consecutive pairs on one SM:", same_next, "of", len(s) - 1)
PYEOF
$PY "$H/l2_requests_json.py" merge "$OUT/l2_merge.json" "$OUT/l2_merge_ncu.json" \
  "$OUT/l2_merge_condensed.json"
# the committed memsim/validation/data/h100/l2_merge.json is l2_merge_condensed.json
