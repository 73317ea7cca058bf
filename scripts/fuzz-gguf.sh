#!/usr/bin/env bash
# fuzz-gguf.sh — builds the GGUF reader's libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined) and runs it on the seed corpus.
#   scripts/fuzz-gguf.sh [SECONDS]     default 60; 0 = build only
# Environment: FUZZ_DIR (work folder, default build-fuzz-gguf), FUZZ_JOBS
# (parallel fuzzing processes, default 1), CC (default clang).
# New interesting inputs go to $FUZZ_DIR/corpus (the seed corpus in
# tests/gguf/corpus is read, never written); a crash is written as
# $FUZZ_DIR/crash-* and the script exits non-zero. Copy a fixed crash into
# tests/gguf/corpus/fuzz/ so the test suite replays it. To refresh that folder
# with what a run found (only inputs that add coverage over the seeds):
#   mkdir m && cp tests/gguf/corpus/*.gguf m/ && $FUZZ_DIR/fuzz_gguf -merge=1 m $FUZZ_DIR/corpus
#   then copy the new (hash-named) files of m/ into tests/gguf/corpus/fuzz/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
dir=${FUZZ_DIR:-$top/build-fuzz-gguf}
cc=${CC:-clang}
mkdir -p "$dir/corpus"
"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$top/include" -I"$top/src" \
  "$top/fuzz/fuzz_gguf.c" "$top/src/gguf/gguf.c" "$top/src/gguf/ggml_types.c" \
  "$top/src/core/util.c" "$top/src/core/names.c" \
  -o "$dir/fuzz_gguf"
echo "fuzz-gguf: built $dir/fuzz_gguf" >&2
[ "$secs" -gt 0 ] || exit 0
cd "$dir"
jobs=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
exec ./fuzz_gguf -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  "${jobs[@]}" -print_final_stats=1 -artifact_prefix="$dir/" corpus "$top/tests/gguf/corpus" \
  "$top/tests/gguf/corpus/fuzz"
