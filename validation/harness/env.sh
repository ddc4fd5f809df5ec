# Shared preamble of the probe scripts (source it): $OUT (default ./out, created, exported),
# $H (this folder), $PY (python3 with torch), unbuffered Python output.
set -u
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
H=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PY:-python3}
