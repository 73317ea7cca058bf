#!/usr/bin/env bash
# Runs every test of gpuwatch twice: in a normal build and in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (leak detection on).
# Installs what it needs first (scripts/deps.sh test). Ends with the line
# "N passed, N failed" and exits non-zero when anything failed.
#   scripts/test.sh            both builds
#   GW_TEST_BUILDS=plain scripts/test.sh   only the normal build
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh test || { echo "0 passed, 1 failed"; exit 1; }

builds=${GW_TEST_BUILDS:-"plain asan"}
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"

status=0
logs=()
for b in $builds; do
  dir="build-test-$b"
  opts=()
  [ "$b" = asan ] && opts=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug)
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
  meson test -C "$dir" --print-errorlogs --timeout-multiplier 3 || status=1
  logs+=("$dir/meson-logs/testlog.json")
done

# The README's first command builds a release (-O3) binary: warnings that only
# the optimiser sees must fail here too, not on a user's machine.
echo "== build (release, no tests)"
release_ok=1
if [ ! -f build-test-release/build.ninja ]; then
  meson setup build-test-release -Dbuildtype=release -Dtests=false >build-test-release.setup.log 2>&1 || release_ok=0
fi
if [ $release_ok = 1 ] && ! ninja -C build-test-release >build-test-release.build.log 2>&1; then
  release_ok=0
fi
[ $release_ok = 1 ] || { tail -30 build-test-release.build.log build-test-release.setup.log 2>/dev/null; status=1; }
echo "{\"name\": \"release build compiles with -Werror\", \"result\": \"$([ $release_ok = 1 ] && echo OK || echo FAIL)\"}" > build-test-release.result.json
logs+=(build-test-release.result.json)

python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    build = path.split("/")[0].replace("build-test-", "").split(".")[0]
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
