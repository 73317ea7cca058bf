#!/usr/bin/env bash
# fuzz-ollama.sh — the model-server decoders' libFuzzer target
# (fuzz/fuzz_ollama.c) on its seed corpus tests/models/corpus/fuzz_ollama
# (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-ollama.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_ollama "${1:-60}" "$top/tests/models/corpus/fuzz_ollama" 65536 \
  "$top/src/models/servers.c" "$top/src/place/daemon_client.c" "$top/src/render/json_writer.c" \
  "$top/src/render/json_read.c" \
  "$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/array.c" "$top/src/core/parse.c" \
  -ljansson
