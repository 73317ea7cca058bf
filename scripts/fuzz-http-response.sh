#!/usr/bin/env bash
# fuzz-http-response.sh — the HTTP response grammar's libFuzzer target
# (fuzz/fuzz_http_response.c: the head parser and body framing that the
# daemon client and the fleet's plain HTTP client share) on its seed corpus
# tests/place/corpus/fuzz_http_response (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-http-response.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_http_response "${1:-60}" "$top/tests/place/corpus/fuzz_http_response" 8192 \
  "$top/src/place/daemon_client.c" "$top/src/core/util.c" "$top/src/core/names.c" \
  "$top/src/core/array.c" "$top/src/core/parse.c"
