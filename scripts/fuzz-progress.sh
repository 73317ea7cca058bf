#!/usr/bin/env bash
# fuzz-progress.sh — builds the job progress JSON parser's libFuzzer target
# (fuzz/fuzz_progress.c) with clang (-fsanitize=fuzzer,address,undefined)
# and runs it on its seed corpus:
#   scripts/fuzz-progress.sh [SECONDS]   default 60 s; 0 = build only
# Environment: FUZZ_DIR (work folder, default build-fuzz-progress), CC (clang).
# New inputs go to $FUZZ_DIR/fuzz_progress-corpus (the seed corpus
# tests/progress/corpus/fuzz_progress is read, never written); a crash is
# written as $FUZZ_DIR/fuzz_progress-crash-* and the script exits non-zero.
# Copy a fixed crash into the seed corpus so the test suite replays it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
dir=${FUZZ_DIR:-$top/build-fuzz-progress}
cc=${CC:-clang}
t=fuzz_progress
mkdir -p "$dir"
"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$top/include" -I"$top/src" \
  "$top/fuzz/$t.c" "$top/src/progress/progress.c" "$top/src/progress/table.c" \
  "$top/src/progress/store.c" "$top/src/core/util.c" "$top/src/core/names.c" \
  "$top/src/core/array.c" -ljansson -lm -lpthread -o "$dir/$t"
echo "fuzz-progress: built $dir/$t" >&2
[ "$secs" -gt 0 ] || exit 0
mkdir -p "$dir/$t-corpus"
cd "$dir" && "./$t" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$dir/$t-" "$t-corpus" "$top/tests/progress/corpus/$t"
