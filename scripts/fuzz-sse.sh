#!/usr/bin/env bash
# fuzz-sse.sh — the Server-Sent Events parser's libFuzzer target
# (fuzz/fuzz_sse.c: whole and piecewise feeds must agree) on its seed corpus
# tests/core/corpus/fuzz_sse (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-sse.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_sse "${1:-60}" "$top/tests/core/corpus/fuzz_sse" 4096 \
  "$top/src/core/sse.c" "$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/array.c"
