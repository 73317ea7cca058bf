#!/usr/bin/env bash
# fuzz-smi.sh — builds the backends' text parsers' libFuzzer targets with
# clang (-fsanitize=fuzzer,address,undefined) and runs each on its seed corpus:
#   fuzz_smi_csv    nvidia-smi --query-gpu / --query-compute-apps CSV
#   fuzz_rocm_json  rocm-smi --json, amd-smi metric/list --json
#   fuzz_drm_text   DRM fdinfo and debugfs dri/N/clients (corpus under
#                   tests/amd/corpus)
#   scripts/fuzz-smi.sh [SECONDS [TARGET]]   default 60 s each, every target;
#                                            0 = build only
# Environment: FUZZ_DIR (work folder, default build-fuzz-smi), CC (clang).
# New inputs go to $FUZZ_DIR/<target>-corpus (the seed corpus under
# tests/smi/corpus/<target> or tests/amd/corpus/<target> is read, never
# written); a crash is written as
# $FUZZ_DIR/<target>-crash-* and the script exits non-zero. Copy a fixed
# crash into that seed corpus folder so the test suite replays it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
only=${2:-}
dir=${FUZZ_DIR:-$top/build-fuzz-smi}
cc=${CC:-clang}
mkdir -p "$dir"
libs=("$top/src/core/util.c" "$top/src/core/names.c" "$top/src/core/snapshot.c"
      "$top/src/backends/procinfo.c" "$top/src/backends/subprocess.c"
      "$top/src/backends/smi_common.c")
for t in fuzz_smi_csv fuzz_rocm_json fuzz_drm_text; do
  [ -n "$only" ] && [ "$only" != "$t" ] && continue
  case $t in
    fuzz_smi_csv) src=("$top/src/backends/nvidia_smi.c"); seeds=$top/tests/smi/corpus/$t ;;
    fuzz_rocm_json) src=("$top/src/backends/rocm_smi.c"); seeds=$top/tests/smi/corpus/$t ;;
    fuzz_drm_text) src=("$top/src/backends/fdinfo.c" "$top/src/backends/drm_clients.c")
                   seeds=$top/tests/amd/corpus/$t ;;
  esac
  "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$top/include" -I"$top/src" \
    "$top/fuzz/$t.c" "${src[@]}" "${libs[@]}" -ljansson -lpthread \
    -o "$dir/$t"
  echo "fuzz-smi: built $dir/$t" >&2
  [ "$secs" -gt 0 ] || continue
  mkdir -p "$dir/$t-corpus"
  (cd "$dir" && "./$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/$t-" "$t-corpus" "$seeds")
done
