#!/usr/bin/env bash
# fuzz-prom-vector.sh — the decoder of Prometheus's instant-query answers
# (fuzz/fuzz_prom_vector.c, checked against the jansson decoder it
# replaced) on its seed corpus tests/fleet/corpus/fuzz_prom_vector
# (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-prom-vector.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_prom_vector "${1:-60}" "$top/tests/fleet/corpus/fuzz_prom_vector" 65536 \
  "$top/src/fleet/prom_vector.c" \
  "$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/array.c" "$top/src/core/parse.c" \
  -ljansson
