# fuzz-lib.sh — sourced by scripts/fuzz-progress.sh and fuzz-sse.sh: builds
# one libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) and
# runs it on its seed corpus.
#   fuzz_target NAME SECONDS SEEDS MAX_LEN SOURCE... [-lLIB...]
# NAME is fuzz/NAME.c; SOURCE are the project files it needs; SECONDS 0
# builds only. Environment: FUZZ_DIR (work folder, default build-NAME with
# '_' as '-'), CC (clang). New inputs go to $FUZZ_DIR/NAME-corpus (SEEDS is
# read, never written); a crash is written as $FUZZ_DIR/NAME-crash-* and the
# run fails. Copy a fixed crash into SEEDS so the test suite replays it.
fuzz_target() {
  local t=$1 secs=$2 seeds=$3 max_len=$4
  shift 4
  local top dir cc
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  dir=${FUZZ_DIR:-$top/build-${t//_/-}}
  cc=${CC:-clang}
  mkdir -p "$dir"
  "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$top/include" -I"$top/src" "$top/fuzz/$t.c" "$@" -lm -lpthread -o "$dir/$t"
  echo "$t: built $dir/$t" >&2
  [ "$secs" -gt 0 ] || return 0
  mkdir -p "$dir/$t-corpus"
  (cd "$dir" && "./$t" -max_total_time="$secs" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/$t-" "$t-corpus" "$seeds")
}
