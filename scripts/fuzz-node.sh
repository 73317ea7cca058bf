#!/usr/bin/env bash
# fuzz-node.sh — the cluster view's decoders of a peer's /health and
# Ollama's /api/ps (fuzz/fuzz_node.c) on its seed corpus
# tests/fleet/corpus/fuzz_node (scripts/fuzz-lib.sh builds and runs it):
#   scripts/fuzz-node.sh [SECONDS]   default 60 s; 0 = build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/fuzz-lib.sh"
fuzz_target fuzz_node "${1:-60}" "$top/tests/fleet/corpus/fuzz_node" 65536 \
  "$top/src/fleet/node.c" "$top/src/models/servers.c" "$top/src/place/daemon_client.c" \
  "$top/src/place/plan.c" \
  "$top/src/render/json_writer.c" "$top/src/render/json_read.c" \
  "$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/array.c" "$top/src/core/parse.c" \
  -ljansson
