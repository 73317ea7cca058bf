#!/usr/bin/env bash
# fuzz-progress.sh — the job progress JSON parser's libFuzzer target
# (fuzz/fuzz_progress.c) on its seed corpus tests/progress/corpus/fuzz_progress
# (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-progress.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_progress "${1:-60}" "$top/tests/progress/corpus/fuzz_progress" 8192 \
  "$top/src/progress/progress.c" "$top/src/progress/table.c" "$top/src/progress/store.c" \
  "$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/array.c" -ljansson
