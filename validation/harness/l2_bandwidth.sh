#!/bin/bash
# L2 read bandwidth probe (l2_bandwidth.py) under Nsight Compute: --cache-control none (the
# buffer stays in L2 from the warm-up), --clock-control none. Also asks ncu for the L2's peak
# sector rate. Results in $OUT: l2_bandwidth_raw.csv, l2_bandwidth.json (parse_ncu.py --all) and
# l2_bandwidth_committed.json (memsim/validation/data/<device>/l2_bandwidth.json).
. "$(dirname "$0")/env.sh"
M="gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sectors_srcunit_tex_op_read.sum"
M="$M,lts__t_sectors.avg.pct_of_peak_sustained_elapsed,lts__t_sectors.sum.peak_sustained"
M="$M,lts__cycles_elapsed.avg.per_second,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum"
M="$M,sm__cycles_elapsed.avg.per_second"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/l2bw_gpu.txt"
timeout ${L2BW_TIMEOUT:-200} ncu --clock-control none --cache-control none \
  --profile-from-start off --nvtx --metrics "$M" -f -o /tmp/l2bw \
  $PY "$H/l2_bandwidth.py" 2>&1 | grep -v "^==PROF==" | tail -8
ncu -i /tmp/l2bw.ncu-rep --csv --page details --print-units base --print-kernel-base demangled \
  > "$OUT/l2_bandwidth_raw.csv"
$PY "$H/parse_ncu.py" --all "$OUT/l2_bandwidth_raw.csv" "$OUT/l2_bandwidth.json"
$PY "$H/l2_bandwidth_json.py" "$OUT/l2_bandwidth.json" "$OUT/l2bw_gpu.txt" \
  "$OUT/l2_bandwidth_committed.json" "$(date -u +%F)"
