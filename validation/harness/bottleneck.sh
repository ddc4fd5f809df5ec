#!/bin/bash
# SM bottleneck counters of a few attention kernels (bottleneck.py), main-run ncu settings.
# Results in $OUT: bottleneck_raw.csv and bottleneck.json ({case: [{metric: value}]}).
. "$(dirname "$0")/env.sh"
P=".avg.pct_of_peak_sustained_active"
S="_per_issue_active.ratio"
M="gpu__time_duration.sum,sm__cycles_elapsed.avg,smsp__inst_executed.sum,sm__warps_active$P"
M="$M,smsp__issue_active$P,sm__pipe_tensor_op_hmma_cycles_active$P,sm__pipe_shared_cycles_active$P"
M="$M,sm__pipe_fma_cycles_active$P,sm__pipe_alu_cycles_active$P,sm__inst_executed_pipe_xu.sum"
M="$M,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum"
M="$M,sm__throughput.avg.pct_of_peak_sustained_elapsed,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
for r in long_scoreboard short_scoreboard mio_throttle math_pipe_throttle barrier wait not_selected selected lg_throttle gmma dispatch_stall no_instruction; do
  M="$M,smsp__average_warps_issue_stalled_${r}$S"
done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/bottleneck_gpu.txt"
timeout ${BN_TIMEOUT:-400} ncu --clock-control none --cache-control all --profile-from-start off \
  --nvtx --metrics "$M" -f -o /tmp/bn $PY "$H/bottleneck.py" 2>&1 | grep -v "^==PROF==" | tail -4
ncu -i /tmp/bn.ncu-rep --csv --page details --print-units base --print-kernel-base demangled \
  > "$OUT/bottleneck_raw.csv"
$PY "$H/parse_ncu.py" --all "$OUT/bottleneck_raw.csv" "$OUT/bottleneck.json"
$PY - "$OUT/bottleneck.json" <<'PYEOF'
import json, sys
short = lambda n: (n.replace("smsp__average_warps_issue_stalled_", "stall_")
                   .replace("_per_issue_active.ratio", "").replace(".avg.pct_of_peak_sustained_active", "%")
                   .replace(".avg.pct_of_peak_sustained_elapsed", "%").replace("sm__pipe_", "")
                   .replace("_cycles_active", ""))
for cid, kl in json.load(open(sys.argv[1])).items():
    k = max(kl, key=lambda x: x.get("gpu__time_duration.sum", 0))
    print(cid, k["kernel"][:50])
    print("   " + "  ".join(f"{short(n)}={v:.3g}" for n, v in k.items() if n != "kernel"))
PYEOF
