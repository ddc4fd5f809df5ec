#!/bin/bash
# L2 state probes (l2_probe.py) under Nsight Compute. --cache-control none: the probes set up
# the L2 state themselves; --clock-control none: the card's own clocks. Results in $OUT.
#   OUT=out bash validation/harness/l2_probe.sh
. "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/probe_gpu.txt"
timeout ${PROBE_TIMEOUT:-400} ncu --clock-control none --cache-control none \
  --profile-from-start off --nvtx \
  --metrics dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_op_read.sum,gpu__time_duration.sum \
  -f -o /tmp/l2probe $PY "$H/l2_probe.py" 2>&1 | tail -60
ncu -i /tmp/l2probe.ncu-rep --csv --page details --print-units base \
  --print-kernel-base demangled > "$OUT/l2_probe_raw.csv"
$PY "$H/parse_ncu.py" "$OUT/l2_probe_raw.csv" "$OUT/l2_probe_kernels.json"
$PY - "$OUT/l2_probe_kernels.json" <<'PYEOF'
import json, sys
for case, ks in json.load(open(sys.argv[1])).items():
    for k in ks:
        print(f"{case:28s} rd {k.get('dram_read_bytes', 0)/1e6:9.2f} MB  wr {k.get('dram_write_bytes', 0)/1e6:9.2f} MB"
              f"  l2rd {k.get('l2_read_bytes', 0)/1e6:9.2f} MB  t {k.get('gpu_time_ns', 0)/1e3:8.1f} us")
PYEOF
