#!/bin/bash
# L2 read sectors per source unit for a few TMA / cp.async kernels (l2_sources.py), with the
# same ncu settings as the main run (--cache-control all --clock-control none). Results in $OUT.
. "$(dirname "$0")/env.sh"
ncu --query-metrics --chip gh100 > "$OUT/ncu_query_metrics.txt" 2>&1
grep -oE "^lts__t_sectors_srcunit_[a-z0-9]+_op_read\b" "$OUT/ncu_query_metrics.txt" | sort -u \
  > "$OUT/lts_srcunits.txt"
[ -s "$OUT/lts_srcunits.txt" ] || printf "lts__t_sectors_srcunit_tex_op_read\nlts__t_sectors_srcunit_ltcfabric_op_read\n" > "$OUT/lts_srcunits.txt"
grep -c . "$OUT/ncu_query_metrics.txt"; grep -E "^lts__t_sectors_srcunit" "$OUT/ncu_query_metrics.txt" | head -20
cat "$OUT/lts_srcunits.txt"
M="lts__t_sectors_op_read.sum,dram__bytes_read.sum,gpu__time_duration.sum"
for u in $(cat "$OUT/lts_srcunits.txt"); do M="$M,${u}.sum"; done
echo "metrics: $M"
timeout ${SRC_TIMEOUT:-300} ncu --clock-control none --cache-control all --profile-from-start off \
  --nvtx --metrics "$M" -f -o /tmp/l2src $PY "$H/l2_sources.py" 2>&1 | tail -30
ncu -i /tmp/l2src.ncu-rep --csv --page details --print-units base --print-kernel-base demangled \
  > "$OUT/l2_sources_raw.csv"
$PY - "$OUT/l2_sources_raw.csv" > "$OUT/l2_sources_table.txt" <<'PYEOF'
import csv, sys, collections
lines = [ln for ln in open(sys.argv[1]) if ln.startswith('"')]
rows = list(csv.DictReader(lines))
col = "thread Domain:Push/Pop_Range:PL_Type:PL_Value:CLR_Type:Color:Msg_Type:Msg"
k = collections.defaultdict(dict)
for r in rows:
    k[(r.get(col, "")[-48:], r["ID"], r["Kernel Name"][:40])][r["Metric Name"]] = r["Metric Value"]
for key, m in k.items():
    print(key)
    for name, v in sorted(m.items()):
        try:
            v = float(v)
        except ValueError:
            continue
        if v:
            print(f"   {name:60s} {v:16.0f}")
PYEOF
cat "$OUT/l2_sources_table.txt" | head -150
