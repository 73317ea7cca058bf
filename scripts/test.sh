#!/usr/bin/env bash
# Runs every test of gpuwatch twice: in a normal build and in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (leak detection on);
# then the threaded code's tests (meson suite 'threads': sampler, HTTP
# server, run through the daemon, report's deadline worker) a third time in
# a ThreadSanitizer build. With the normal build it also checks the
# packaging (scripts/test-package.sh: the .deb, lintian, the systemd unit,
# meson install, man pages, completion, docs against --help), each check
# counted in the summary. Installs what it needs first (scripts/deps.sh
# test). Ends with the line "N passed, N failed" and exits non-zero when
# anything failed. docs/testing.md says more.
#   scripts/test.sh            all three builds
#   GW_TEST_BUILDS=plain scripts/test.sh   only the normal build
#   GW_TEST_BUILDS="plain tsan" ...        any subset of plain, asan, tsan
#   GW_TEST_DIR_PREFIX=build-mine ...      build folders build-mine-plain, ...
#                                          (default build-test-*)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh test || { echo "0 passed, 1 failed"; exit 1; }

builds=${GW_TEST_BUILDS:-"plain asan tsan"}
prefix=${GW_TEST_DIR_PREFIX:-build-test}
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"
# A data race, lock-order inversion or thread leak fails the process at once.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

status=0
logs=()
for b in $builds; do
  dir="$prefix-$b"
  opts=()
  tests=()
  case $b in
    plain) ;;
    asan) opts=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug) ;;
    tsan) opts=(-Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug); tests=(--suite threads) ;;
    *) echo "unknown build '$b' in GW_TEST_BUILDS (plain, asan, tsan)"; echo "0 passed, 1 failed"; exit 1 ;;
  esac
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${opts[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "0 passed, 1 failed"; exit 1; }
  else
    meson setup --reconfigure "$dir" "${opts[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "0 passed, 1 failed"; exit 1; }
  fi
  echo "== build ($b)"
  if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
    tail -50 "$dir.build.log"; echo "0 passed, 1 failed"; exit 1
  fi
  echo "== test ($b)"
  meson test -C "$dir" --print-errorlogs --timeout-multiplier 3 ${tests[@]+"${tests[@]}"} || status=1
  logs+=("$dir/meson-logs/testlog.json")
done

# Packaging (once, with the normal build): the .deb built in a copy of the
# tree, lintian, systemd-analyze verify, meson install --destdir from the
# plain build, man pages, completion, and docs against the program.
if [ -f "$prefix-plain/build.ninja" ] && [[ " $builds " == *" plain "* ]]; then
  echo "== package"
  scripts/test-package.sh --build "$prefix-plain" --results "$prefix-package.result.json" || status=1
  [ -s "$prefix-package.result.json" ] ||
    echo '{"name": "package: scripts/test-package.sh ran", "result": "FAIL"}' > "$prefix-package.result.json"
  logs+=("$prefix-package.result.json")
fi

# The README's first command builds a release (-O3) binary: warnings that only
# the optimiser sees must fail here too, not on a user's machine.
echo "== build (release, no tests)"
release_ok=1
if [ ! -f "$prefix-release"/build.ninja ]; then
  meson setup "$prefix-release" -Dbuildtype=release -Dtests=false >"$prefix-release".setup.log 2>&1 || release_ok=0
fi
if [ $release_ok = 1 ] && ! ninja -C "$prefix-release" >"$prefix-release".build.log 2>&1; then
  release_ok=0
fi
[ $release_ok = 1 ] || { tail -30 "$prefix-release".build.log "$prefix-release".setup.log 2>/dev/null; status=1; }
echo "{\"name\": \"release build compiles with -Werror\", \"result\": \"$([ $release_ok = 1 ] && echo OK || echo FAIL)\"}" > "$prefix-release".result.json
logs+=("$prefix-release.result.json")

python3 - "$prefix" "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
prefix = sys.argv[1]
for path in sys.argv[2:]:
    build = path.split("/")[0].replace(prefix + "-", "").split(".")[0]
    for line in open(path):
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"FAILED [{build}] {t.get('name')}: {r}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
py=$?
[ $py -ne 0 ] && status=1
exit $status
