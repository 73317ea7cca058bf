#!/usr/bin/env bash
# Installs everything gpuwatch needs to build and test on Debian 12, and fetches
# NVIDIA's non-free test inputs (nvml.h, the real libnvidia-ml.so.1, nvidia-smi)
# into .deps/ WITHOUT changing the machine's apt sources.
#   scripts/deps.sh build   -> build dependencies only
#   scripts/deps.sh test    -> build + test dependencies + NVIDIA inputs
#   scripts/deps.sh package -> build dependencies + what scripts/test-package.sh
#                              uses to build and check the .deb (no NVIDIA inputs)
set -euo pipefail
mode=${1:-test}
top=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

build_pkgs="gcc pkg-config meson ninja-build libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev libncurses-dev zlib1g-dev libcrypt-dev libjs-dygraphs"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev g++ git python3 python3-yaml python3-pytest abigail-tools binutils prometheus wrk prometheus-node-exporter time openssl tmux chromium"
# scripts/test-package.sh: dpkg-buildpackage, lintian, man page and unit checks
pkg_pkgs="dpkg-dev debhelper dh-python fakeroot lintian groff-base man-db systemd bash-completion python3"
case $mode in
  build) want="$build_pkgs" ;;
  package) want="$build_pkgs $pkg_pkgs" ;;
  *) want="$build_pkgs $test_pkgs $pkg_pkgs" ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
case $mode in build | package) exit 0 ;; esac

# NVIDIA non-free packages, unpacked under .deps/nvidia (never installed
# system-wide); with them contrib's python3-pynvml, the peer bench/lib_bench.py
# compares the Python binding with (pure Python: on PYTHONPATH from there).
nv="$top/.deps/nvidia"
if [ ! -f "$nv/root/usr/include/nvml.h" ] || [ ! -x "$nv/root/usr/lib/nvidia/current/nvidia-smi" ] ||
   [ ! -f "$nv/root/usr/lib/python3/dist-packages/pynvml.py" ]; then
  rm -rf "$nv"; mkdir -p "$nv/lists/partial" "$nv/debs" "$nv/root"
  uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  printf 'Types: deb\nURIs: %s\nSuites: bookworm\nComponents: non-free contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$nv/nf.sources"
  O="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$nv -o Dir::State::Lists=$nv/lists -o Dir::Cache=$nv/cache"
  apt-get $O update -qq >/dev/null
  (cd "$nv/debs" && apt-get $O download libnvidia-ml-dev libnvidia-ml1 nvidia-smi python3-pynvml >/dev/null)
  for d in "$nv"/debs/*.deb; do dpkg -x "$d" "$nv/root"; done
  rm -rf "$nv/lists" "$nv/cache"
fi
echo "deps: ok" >&2
