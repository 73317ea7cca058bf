#!/usr/bin/env bash
# fuzz-cgroup.sh — the cgroup owner parser's libFuzzer target
# (fuzz/fuzz_cgroup.c) on its seed corpus tests/core/corpus/fuzz_cgroup
# (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-cgroup.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_cgroup "${1:-60}" "$top/tests/core/corpus/fuzz_cgroup" 4096 \
  "$top/src/backends/cgroup.c" "$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/array.c"
