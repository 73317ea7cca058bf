#!/usr/bin/env bash
# fuzz-estimate.sh — builds the estimator's libFuzzer target (fuzz/
# fuzz_estimate.c: model and projector readers, the estimate, the planner
# and the projector graph) with clang (-fsanitize=fuzzer,address,undefined)
# and runs it on the seed corpus.
#   scripts/fuzz-estimate.sh [SECONDS]     default 60; 0 = build only
# Environment: FUZZ_DIR (work folder, default build-fuzz-estimate), FUZZ_JOBS
# (parallel fuzzing processes, default 1), CC (default clang).
# Seeds: tests/estimate/corpus (GGUF headers of every architecture and
# projector type, written by tests/estimate/make_corpus.py), its fuzz/
# folder (fixed crashes, coverage keepers) and tests/gguf/corpus; all are
# read, never written. New interesting inputs go to $FUZZ_DIR/corpus; a
# crash is written as $FUZZ_DIR/crash-* (a unit slower than 10 s as
# timeout-*) and the script exits non-zero. Copy a fixed crash into
# tests/estimate/corpus/fuzz/ so the test suite replays it. To keep what a
# run found (only inputs that add coverage edges over the seeds):
#   mkdir m && cp tests/estimate/corpus/*.gguf tests/estimate/corpus/fuzz/* \
#     tests/gguf/corpus/*.gguf tests/gguf/corpus/fuzz/* m/
#   $FUZZ_DIR/fuzz_estimate -merge=1 -use_counters=0 m $FUZZ_DIR/corpus
#   then copy the new (hash-named) files of m/ into tests/estimate/corpus/fuzz/
#   (a run of half an hour gave 88; the dozen kept were picked greedily by the
#   edges each adds, the same merge run on one file at a time).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
dir=${FUZZ_DIR:-$top/build-fuzz-estimate}
cc=${CC:-clang}
mkdir -p "$dir/corpus"
flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined
       -I"$top/include" -I"$top/src")
# graph.c (the allocator simulation) without comparison tracing: its loops
# compare tensor indices, not input bytes, and tracing them made a large
# graph 20 times slower; it keeps edge coverage and both sanitizers.
"$cc" "${flags[@]}" -fsanitize=fuzzer-no-link,address,undefined \
  -fno-sanitize-coverage=trace-cmp -c "$top/src/estimate/graph.c" -o "$dir/graph.o"
"$cc" "${flags[@]}" -fsanitize=fuzzer,address,undefined \
  "$top/fuzz/fuzz_estimate.c" "$top"/src/estimate/{model,recurrent,mmproj,estimate,plan,hostcpu}.c \
  "$dir/graph.o" "$top/src/gguf/gguf.c" "$top/src/gguf/ggml_types.c" \
  "$top/src/core/util.c" "$top/src/core/names.c" -lm \
  -o "$dir/fuzz_estimate"
echo "fuzz-estimate: built $dir/fuzz_estimate" >&2
[ "$secs" -gt 0 ] || exit 0
cd "$dir"
jobs=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
exec ./fuzz_estimate -max_total_time="$secs" -max_len=65536 -timeout=10 -report_slow_units=1 \
  -rss_limit_mb=2048 "${jobs[@]}" -print_final_stats=1 -artifact_prefix="$dir/" corpus \
  "$top/tests/estimate/corpus" "$top/tests/estimate/corpus/fuzz" "$top/tests/gguf/corpus"
