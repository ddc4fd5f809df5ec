#!/bin/bash
# One command that runs every measurement section, each under its own time budget; a failing or
# slow section leaves the others' results intact. Results go to $OUT (default ./out).
#   PYTHONUNBUFFERED=1 bash validation/harness/run_all.sh
# Sections (set SECTIONS to a subset, e.g. SECTIONS="timing ncu"): numerics timing ncu disk.
set -u
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
H=$(cd "$(dirname "$0")" && pwd)
SECTIONS=${SECTIONS:-"numerics timing ncu disk"}
PY=${PY:-python3}
exec > >(tee -a "$OUT/run.log") 2>&1
T0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - T0 )) s] $*"; }

METRICS=dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_op_read.sum,\
lts__t_sectors_srcunit_tex_op_write.sum,gpu__time_duration.sum,launch__grid_size,\
launch__block_size,launch__registers_per_thread,launch__shared_mem_per_block_dynamic,\
launch__shared_mem_per_block_static

for s in $SECTIONS; do
  case $s in
    numerics)
      stamp "numerics"
      timeout 60 $PY "$H/run_numerics.py" "$OUT/sdpa_bf16_numerics.npz" || stamp "numerics FAILED rc=$?"
      ;;
    timing)
      stamp "timing"
      timeout ${TIMING_TIMEOUT:-215} $PY "$H/run_timing.py" "$OUT/timing.json" \
        --budget ${TIMING_BUDGET:-190} ${TIMING_ONLY:+--only $TIMING_ONLY} || stamp "timing FAILED rc=$?"
      ;;
    ncu)
      stamp "ncu"
      rm -f /tmp/memsim_ncu_done.txt
      # --cache-control all (the default, stated here): ncu flushes and invalidates caches
      # before every profiled kernel. --clock-control none: the card's own clocks.
      timeout ${NCU_TIMEOUT:-210} ncu --clock-control none --cache-control all \
        --profile-from-start off --nvtx --metrics "$METRICS" -f -o /tmp/memsim_ncu \
        $PY "$H/ncu_target.py" --budget ${NCU_BUDGET:-170} --done-file /tmp/memsim_ncu_done.txt \
        ${NCU_ONLY:+--only $NCU_ONLY} || stamp "ncu FAILED rc=$?"
      stamp "ncu export"
      timeout 60 ncu -i /tmp/memsim_ncu.ncu-rep --csv --page details --print-units base \
        --print-kernel-base demangled > "$OUT/ncu_raw.csv" || stamp "ncu export FAILED rc=$?"
      $PY "$H/parse_ncu.py" "$OUT/ncu_raw.csv" "$OUT/ncu_kernels.json" || stamp "parse FAILED"
      cp /tmp/memsim_ncu.ncu-rep "$OUT/" 2>/dev/null
      ;;
    disk)
      stamp "disk"
      timeout ${DISK_TIMEOUT:-100} $PY "$H/run_disk.py" "$OUT/disk_curve.json" \
        --dir ${DISK_DIR:-/root} --size-gib ${DISK_GIB:-8} --budget ${DISK_BUDGET:-75} \
        || stamp "disk FAILED rc=$?"
      ;;
  esac
done
stamp "done"
ls -la "$OUT"
