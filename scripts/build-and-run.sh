#!/usr/bin/env bash
# Installs the build dependencies, builds gpuwatch (release) and runs its main
# job: `gpuwatch report` of this machine. Extra arguments go to report
# (e.g. --json).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh build
[ -f build-release/build.ninja ] || meson setup build-release -Dbuildtype=release -Dtests=false >/dev/null
ninja -C build-release >/dev/null
exec build-release/src/cli/gpuwatch report "$@"
