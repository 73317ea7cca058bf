#!/usr/bin/env bash
# Runs the whole suite (scripts/test.sh) on one busy CPU: the suite and a
# CPU burner are pinned to the same core, so every test process gets a
# fraction of one core and a sanitizer build crawls. A test that passes only
# on a fast or idle machine (a timing threshold, a fixed sleep standing in
# for "it has happened by now") fails here. Ends, like scripts/test.sh, with
# the line "N passed, N failed" and exits with scripts/test.sh's status.
#   scripts/test-stressed.sh                    every build test.sh runs
#   GW_TEST_BUILDS=plain scripts/test-stressed.sh   only the normal build
#   GW_STRESS_BURNERS=3 ...   three busy loops beside the suite (default 1)
#   GW_STRESS_CPU=2 ...       the core to use (default: the first one this
#                             process may run on)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

command -v taskset >/dev/null || { echo "taskset not found (util-linux)"; echo "0 passed, 1 failed"; exit 1; }
cpu=${GW_STRESS_CPU:-$(python3 -c 'import os; print(min(os.sched_getaffinity(0)))')}
burners=${GW_STRESS_BURNERS:-1}

pids=()
stop_burners() {
  for p in "${pids[@]+"${pids[@]}"}"; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  pids=()
}
trap stop_burners EXIT
trap 'stop_burners; exit 130' INT
trap 'stop_burners; exit 143' TERM HUP

# A busy loop that also ends by itself once this script is gone (even after
# a SIGKILL, which no trap sees).
parent=$$
for _ in $(seq "$burners"); do
  taskset -c "$cpu" bash -c 'while kill -0 '"$parent"' 2>/dev/null; do :; done' &
  pids+=($!)
done
echo "== stressed: the suite and $burners CPU burner(s) share core $cpu"

taskset -c "$cpu" scripts/test.sh
status=$?
stop_burners
exit $status
