#!/usr/bin/env bash
# fuzz-chunked.sh — the chunked transfer coding decoder's libFuzzer target
# (fuzz/fuzz_chunked.c: src/pool/chunked.c, which the pool reads its
# children's streamed answers with) on its seed corpus
# tests/pool/corpus/fuzz_chunked (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-chunked.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_chunked "${1:-60}" "$top/tests/pool/corpus/fuzz_chunked" 16384 \
  "$top/src/pool/chunked.c" "$top/src/core/util.c" "$top/src/core/names.c" \
  "$top/src/core/array.c" "$top/src/core/parse.c"
