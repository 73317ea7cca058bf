#!/usr/bin/env bash
# Checks what gpuwatch installs (docs/packaging.md): builds the .deb with
# `dpkg-buildpackage -us -uc -b` in a copy of the working tree (the tree
# itself stays clean), checks its file list and relations, runs lintian
# (any E: fails), `systemd-analyze verify` on the unit as installed (the
# .deb unpacked into a scratch root), the `meson install --destdir` file
# list, `groff -ww` / `man --warnings` on every page, the bash completion,
# and that the documentation has not drifted from the program: every option
# each command's --help prints is in gpuwatch.1, every key
# `serve --print-config` prints is in gpuwatch.conf.5 and the sample config
# with the program's default.
#   scripts/test-package.sh [--build DIR] [--results FILE] [--keep]
#     --build DIR     a configured meson build folder to `meson install
#                     --destdir` from (default: a fresh one in the copy)
#     --results FILE  also write one JSON line per check (meson's testlog
#                     format: name, result OK/FAIL) for scripts/test.sh
#     --keep          keep the scratch folder and print its path
# Installs its tools first (scripts/deps.sh package). Ends with
# "package: N passed, N failed" and exits non-zero when a check failed.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="" results="" keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --results) results=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--build DIR] [--results FILE] [--keep]" >&2; exit 2 ;;
  esac
done
[ -z "$results" ] || : > "$results"

passed=0 failed=0
# record NAME STATUS [DETAIL...]: one check's result (STATUS 0: passed)
record() {
  local name=$1 ok=$2; shift 2
  if [ "$ok" = 0 ]; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"
    local d; for d in "$@"; do [ -z "$d" ] || printf '     %s\n' "$d"; done
  fi
  [ -z "$results" ] || python3 -c 'import json,sys; print(json.dumps({"name": "package: " + sys.argv[1], "result": "OK" if sys.argv[2] == "0" else "FAIL"}))' "$name" "$ok" >> "$results"
}
finish() {
  echo "package: $passed passed, $failed failed"
  [ $keep = 1 ] && echo "scratch: $work" || rm -rf "$work"
  [ $failed = 0 ]
  exit
}

work=$(mktemp -d /tmp/gpuwatch-package.XXXXXX)
log=$work/log; mkdir -p "$log"

if ! "$top/scripts/deps.sh" package >"$log/deps" 2>&1; then
  record "tools installed (scripts/deps.sh package)" 1 "$(tail -5 "$log/deps")"
  finish
fi

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -1)
deb_version=$(cd "$top" && dpkg-parsechangelog -S Version 2>/dev/null)
th1=$(sed -n 's/^\.TH GPUWATCH 1 [^"]*"gpuwatch \([^"]*\)".*/\1/p' "$top/man/gpuwatch.1")
th5=$(sed -n 's/^\.TH GPUWATCH.CONF 5 [^"]*"gpuwatch \([^"]*\)".*/\1/p' "$top/man/gpuwatch.conf.5")
[ -n "$version" ] && [ "${deb_version%%-*}" = "$version" ] && [ "$th1" = "$version" ] && [ "$th5" = "$version" ]
record "one version: meson.build, debian/changelog, man pages" $? \
  "meson $version, debian/changelog $deb_version, gpuwatch.1 $th1, gpuwatch.conf.5 $th5"

# ---- the .deb, built in a copy of the working tree (tracked + untracked,
# not ignored; .deps is the NVIDIA test inputs' symlink)
src=$work/gpuwatch-$version
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # (a tracked file deleted in the working tree is left out, not an error)
  (cd "$top" && git ls-files -co --exclude-standard -z | grep -zv '^\.deps$' |
     tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | (cd "$src" && tar xf -)
else # an unpacked source tarball
  (cd "$top" && tar --exclude='./build*' --exclude=./.deps --exclude='./obj-*' -cf - .) | (cd "$src" && tar xf -)
fi
# debian/control's Build-Depends is the list: install what is missing of it
if ! (cd "$src" && dpkg-checkbuilddeps) >"$log/checkbuilddeps" 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  (cd "$src" && DEBIAN_FRONTEND=noninteractive $SUDO apt-get build-dep -y -qq ./) >>"$log/checkbuilddeps" 2>&1
fi
jobs=$(nproc 2>/dev/null || echo 2)
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" nice dpkg-buildpackage -us -uc -b) >"$log/dpkg-buildpackage" 2>&1
rc=$?
deb=$(ls "$work"/gpuwatch_*.deb 2>/dev/null | head -1)
[ $rc = 0 ] && [ -n "$deb" ]
record "dpkg-buildpackage -us -uc -b" $? "$(tail -20 "$log/dpkg-buildpackage")"
[ -n "$deb" ] || finish

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$log/deb-files"
dpkg-deb -c "$deb" | awk '{print $1, $6}' >"$log/deb-modes"
missing=()
for want in /usr/bin/gpuwatch /usr/share/man/man1/gpuwatch.1.gz /usr/share/man/man5/gpuwatch.conf.5.gz \
            '(/usr)?/lib/systemd/system/gpuwatch.service' /usr/share/bash-completion/completions/gpuwatch \
            /usr/share/doc/gpuwatch/examples/gpuwatch.conf /usr/share/doc/gpuwatch/copyright \
            /usr/share/doc/gpuwatch/changelog.gz; do
  grep -qxE -- "$want" "$log/deb-files" || missing+=("$want")
done
for f in grafana/gpuwatch.json prometheus/gpuwatch-rules.yml kubernetes/gpuwatch.yaml; do   # when the tree has them
  [ ! -f "$top/contrib/$f" ] || grep -qx "/usr/share/doc/gpuwatch/examples/$f" "$log/deb-files" ||
    missing+=("/usr/share/doc/gpuwatch/examples/$f")
done
grep -qE '^-rwxr-xr-x \./usr/bin/gpuwatch$' "$log/deb-modes" || missing+=("/usr/bin/gpuwatch mode 0755")
[ ${#missing[@]} = 0 ]
record ".deb file list (binary, both man pages, unit, completion, sample config, copyright, changelog)" $? \
  "missing: ${missing[*]-}"

depends=$(dpkg-deb -f "$deb" Depends)
suggests=$(dpkg-deb -f "$deb" Suggests)
[[ $depends == *libmicrohttpd12* ]] && [[ $depends == *libjansson* ]] && [[ $suggests == *libnvidia-ml1* ]]
record ".deb relations: Depends libmicrohttpd (dlopen'd), Suggests NVML" $? "Depends: $depends" "Suggests: $suggests"

# libgpuwatch: the library, its development files and the Python package
libdeb=$(ls "$work"/libgpuwatch1_*.deb 2>/dev/null | head -1)
devdeb=$(ls "$work"/libgpuwatch-dev_*.deb 2>/dev/null | head -1)
pydeb=$(ls "$work"/python3-gpuwatch_*.deb 2>/dev/null | head -1)
# (listings into files first: grep -q on a pipe would stop dpkg-deb early)
[ -n "$libdeb" ] && dpkg-deb -c "$libdeb" >"$log/deb-lib-files"
[ -n "$devdeb" ] && dpkg-deb -c "$devdeb" >"$log/deb-dev-files"
[ -n "$pydeb" ] && dpkg-deb -c "$pydeb" >"$log/deb-py-files"
[ -n "$libdeb" ] && [ -n "$devdeb" ] && [ -n "$pydeb" ] &&
  grep -qE '/usr/lib/[^/]+/libgpuwatch\.so\.1\.0\.0$' "$log/deb-lib-files" &&
  grep -qE '/usr/include/gpuwatch\.h$' "$log/deb-dev-files" &&
  grep -qE '/usr/lib/[^/]+/pkgconfig/gpuwatch\.pc$' "$log/deb-dev-files" &&
  grep -qE '/usr/lib/python3[^/]*/(dist|site)-packages/gpuwatch/__init__\.py$' "$log/deb-py-files" &&
  [[ $(dpkg-deb -f "$pydeb" Depends) == *libgpuwatch1* ]] &&
  ! grep -qE 'libgpuwatch|gpuwatch\.h|-packages/' "$log/deb-files"
record "libgpuwatch1 / libgpuwatch-dev / python3-gpuwatch .debs (library, header + .pc, package depending on both), none of it in gpuwatch" $? \
  "lib: ${libdeb:-missing}; dev: ${devdeb:-missing}; python: ${pydeb:-missing}"

dpkg-deb -e "$deb" "$work/control"
grep -q "deb-systemd-helper enable 'gpuwatch.service'" "$work/control/postinst" 2>/dev/null
record ".deb enables the unit (dh_installsystemd)" $?

# ---- lintian: any error fails; warnings are listed (justify them in
# debian/gpuwatch.lintian-overrides or docs/packaging.md)
changes=$(ls "$work"/gpuwatch_*.changes | head -1)
nice lintian --pedantic --display-info "$changes" >"$log/lintian" 2>"$log/lintian.err"
nerr=$(grep -c '^E: ' "$log/lintian"); nwarn=$(grep -c '^W: ' "$log/lintian")
echo "     lintian: $nerr errors, $nwarn warnings, $(grep -c '^[IPX]: ' "$log/lintian") other tags"
sed 's/^/     /' "$log/lintian"
[ "$nerr" = 0 ] && ! grep -qv 'running with root privileges' "$log/lintian.err"
record "lintian: no errors" $? "$(grep -v 'running with root' "$log/lintian.err" | head -5)"

# ---- the unit as installed: the .deb unpacked into a scratch root that
# also holds systemd's own units (sysinit.target, ...) and /bin/kill, so
# every path the unit names resolves inside the root; man pages from there.
root=$work/root
dpkg -x "$deb" "$root"
gw_pkg=$root/usr/bin/gpuwatch
unit=$(cd "$root" && ls -d lib/systemd/system/gpuwatch.service usr/lib/systemd/system/gpuwatch.service 2>/dev/null | head -1)
verify_unit() { # verify_unit ROOT UNITPATH-IN-ROOT MANPATH LOG
  local r=$1 u=$2 mp=$3 out=$4
  mkdir -p "$r/lib/systemd/system" "$r/bin"
  cp -rn /lib/systemd/system/. "$r/lib/systemd/system/" 2>/dev/null
  cp -n /bin/kill "$r/bin/kill"
  MANPATH=$mp SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$r" "/$u" >"$out" 2>&1 && [ ! -s "$out" ]
}
verify_unit "$root" "$unit" "$root/usr/share/man" "$log/verify-deb"
record "systemd-analyze verify on the .deb's unit (--root, binary and man pages resolved there)" $? \
  "$(head -10 "$log/verify-deb")"

u=$root/$unit
problems=()
grep -qx 'ExecStart=/usr/bin/gpuwatch serve' "$u" || problems+=("ExecStart is not /usr/bin/gpuwatch serve")
grep -qx 'DynamicUser=yes' "$u" || problems+=("no DynamicUser=yes")
grep -qx 'StateDirectory=gpuwatch' "$u" || problems+=("no StateDirectory=gpuwatch")
grep -qx 'Environment=GPUWATCH_LEDGER=/var/lib/gpuwatch/ledger.db' "$u" || problems+=("ledger not in the StateDirectory")
grep -qx 'ProtectSystem=strict' "$u" || problems+=("no ProtectSystem=strict")
grep -qE '^ExecReload=.*kill -HUP \$MAINPID$' "$u" || problems+=("no ExecReload sending SIGHUP")
grep -qE '^[^#]*Environment=.*CREDENTIALS_DIRECTORY' "$u" && problems+=("\${CREDENTIALS_DIRECTORY} in Environment= (systemd does not expand it there)")
grep -qE '^#.*Environment=.*CREDENTIALS_DIRECTORY' "$u" && problems+=("a comment suggests \${CREDENTIALS_DIRECTORY} in Environment=")
grep -q '19400' "$u" || problems+=("unit does not name port 19400")
[ ${#problems[@]} = 0 ]
record "unit: DynamicUser, StateDirectory + ledger, ProtectSystem=strict, ExecReload, credentials" $? "${problems[@]-}"

# The unit's Environment= as its DynamicUser sees it: not root, HOME=/, only
# the StateDirectory writable. The packaged binary's daemon must open its
# ledger there (without GPUWATCH_LEDGER it would try //.local/state and the
# placement API would answer 503). Needs root to switch to an unprivileged
# user (setpriv); otherwise the check is left out, saying so.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  state=$(mktemp -d /tmp/gpuwatch-state.XXXXXX)
  chmod 755 "$state" && chown 65534:65534 "$state"
  install -m 0755 "$gw_pkg" "$state/gpuwatch"   # the scratch folder is 0700
  mapfile -t envs < <(sed -n 's/^Environment=//p' "$u" | sed "s|/var/lib/gpuwatch/|$state/|g")
  setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME=/ PATH=/usr/bin:/bin "${envs[@]}" \
    "$state/gpuwatch" serve --config /dev/null --listen 127.0.0.1:0 --sources host >"$state/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$state/log" && break; sleep 0.1; done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  grep -q "placement API: ledger $state/ledger.db" "$state/log" && [ "$(stat -c %u "$state/ledger.db" 2>/dev/null)" = 65534 ]
  record "unit environment: an unprivileged daemon with HOME=/ keeps its ledger in the StateDirectory" $? \
    "$(head -5 "$state/log")"
  rm -rf "$state"
else
  echo "     (not root: the unit-environment ledger check needs setpriv as root; left out)"
fi

# ---- meson install --destdir
if [ -z "$build" ]; then
  build=$work/meson-build
  (cd "$src" && nice meson setup "$build" -Dtests=false && nice ninja -C "$build") >"$log/meson-build" 2>&1 ||
    { record "meson build for the install check" 1 "$(tail -10 "$log/meson-build")"; build=""; }
fi
if [ -n "$build" ]; then
  dest=$work/destdir
  meson install -C "$build" --destdir "$dest" --no-rebuild >"$log/meson-install" 2>&1
  rc=$?
  prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
  (cd "$dest" && find . -type f | sed 's|^\.||' | sort) >"$log/meson-files"
  missing=()
  for want in "$prefix/bin/gpuwatch" "$prefix/share/man/man1/gpuwatch.1" "$prefix/share/man/man5/gpuwatch.conf.5" \
              '(/usr)?/lib/systemd/system/gpuwatch.service' '.*/bash-completion/completions/gpuwatch' \
              "$prefix/share/doc/gpuwatch/examples/gpuwatch.conf" \
              "$prefix/lib/.*libgpuwatch\.so\.1\.0\.0" "$prefix/lib/.*libgpuwatch\.a" \
              "$prefix/include/gpuwatch\.h" "$prefix/lib/.*pkgconfig/gpuwatch\.pc" \
              "$prefix/lib/python3.*/gpuwatch/__init__\.py"; do
    grep -qxE -- "$want" "$log/meson-files" || missing+=("$want")
  done
  # and nothing else (a test or bench program marked install : true, say)
  # (libgpuwatch: the library, its header, gpuwatch.pc and the Python package)
  unexpected=$(grep -vxE "$prefix/bin/gpuwatch|$prefix/share/man/man[15]/gpuwatch(\.conf)?\.[15]|(/usr)?/lib/systemd/system/gpuwatch\.service|.*/bash-completion/completions/gpuwatch|$prefix/share/doc/gpuwatch/examples/.*|$prefix/lib/[^/]*/?libgpuwatch\.(so\.1\.0\.0|a)|$prefix/include/gpuwatch\.h|$prefix/lib/[^/]*/?pkgconfig/gpuwatch\.pc|$prefix/lib/python3[^/]*/(dist|site)-packages/gpuwatch/(__init__|_native|_paths|batch|dashboard)\.py" \
    "$log/meson-files")
  [ $rc = 0 ] && [ ${#missing[@]} = 0 ] && [ -z "$unexpected" ]
  record "meson install --destdir: binary, man pages, unit, completion, sample config, libgpuwatch, nothing else" $? \
    "missing: ${missing[*]-}" "${unexpected:+unexpected: $unexpected}" "$(tail -5 "$log/meson-install")"
  munit=$(cd "$dest" && ls -d lib/systemd/system/gpuwatch.service usr/lib/systemd/system/gpuwatch.service 2>/dev/null | head -1)
  if [ -n "$munit" ]; then
    grep -qx "ExecStart=$prefix/bin/gpuwatch serve" "$dest/$munit" &&
      verify_unit "$dest" "$munit" "$dest$prefix/share/man" "$log/verify-meson"
    record "systemd-analyze verify on the meson-installed unit (ExecStart=$prefix/bin/gpuwatch)" $? \
      "$(grep ExecStart= "$dest/$munit" | head -1)" "$(head -10 "$log/verify-meson" 2>/dev/null)"
  fi
fi

# ---- man pages render without a warning: the sources with groff -ww, the
# packaged ones the way man-db (and lintian) format them
bad=()
for page in "$top"/man/*.[1-8]; do
  out=$(groff -ww -man -Tutf8 -z "$page" 2>&1) || bad+=("$page: groff failed")
  [ -z "$out" ] || bad+=("$page: $out")
done
for page in "$root"/usr/share/man/man*/*.gz; do
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null) || bad+=("$page: man failed")
  [ -z "$out" ] || bad+=("$page: $out")
done
[ ${#bad[@]} = 0 ]
record "man pages render without warnings (groff -ww, man --warnings -l)" $? "${bad[@]-}"

# dcgm-exporter's port must not come back: gpuwatch's is 19400
old_port=$(cd "$root" && zgrep -nE '(^|[^0-9])9400([^0-9]|$)' usr/share/man/man*/*.gz usr/share/doc/gpuwatch/examples/* \
  "$unit" usr/share/bash-completion/completions/gpuwatch 2>/dev/null)
[ -z "$old_port" ]
record "installed pages, unit, sample and completion name port 19400, never 9400" $? "$old_port"

# ---- documentation against the program (the packaged binary)
gw=$gw_pkg
# the commands `gpuwatch --help` lists
help_commands() { env -i "$gw" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }'; }
# roff source with font escapes removed and \- as -, to search for options
roff_text() { sed -e 's/\\f[BIRP]//g' -e 's/\\[c&:]//g' -e 's/\\-/-/g' -e 's/\\(aq/'"'"'/g' "$1"; }
roff_text "$top/man/gpuwatch.1" >"$work/gpuwatch.1.txt"
missing=()
for cmd in "" $(help_commands); do
  help=$(env -i PATH=/usr/bin:/bin "$gw" $cmd --help 2>&1)
  opts=$( { grep -oE -- '--[a-z][-a-z0-9]*' <<<"$help"
            grep -oE -- '^ +-[a-z]+,' <<<"$help" | tr -d ' ,'; } | sort -u)
  for o in $opts; do
    grep -qE -- "(^|[^-a-z0-9])$o([^-a-z0-9]|\$)" "$work/gpuwatch.1.txt" || missing+=("${cmd:-gpuwatch} $o")
  done
done
documented=$(awk '/^\.SH / { on = ($2 == "COMMANDS") } on && prev == ".TP" && /^\.B / { print $2 } { prev = $0 }' \
  "$top/man/gpuwatch.1" | sort | tr '\n' ' ')
commands=$(help_commands |
  sort | tr '\n' ' ')
[ "$documented" = "$commands" ] || missing+=("COMMANDS section: '$documented', gpuwatch --help lists '$commands'")
[ ${#missing[@]} = 0 ]
record "gpuwatch.1 describes every command and names every option of every command's --help" $? \
  "missing: ${missing[*]-}"

conf=$work/print-config
env -i PATH=/usr/bin:/bin "$gw" serve --config /dev/null --print-config >"$conf" 2>"$log/print-config.err"
rc=$?
roff_text "$top/man/gpuwatch.conf.5" >"$work/gpuwatch.conf.5.txt"
sample=$root/usr/share/doc/gpuwatch/examples/gpuwatch.conf
bad=() nkeys=0
while IFS= read -r line; do
  [[ $line =~ ^([a-z_0-9]+)\ *=\ *(.*)$ ]] || continue
  key=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
  nkeys=$((nkeys + 1))
  doc=$(grep -E "^$key = ?" "$work/gpuwatch.conf.5.txt" | head -1)
  if [ -z "$doc" ]; then
    bad+=("gpuwatch.conf.5: no entry '$key = ...'")
  else
    d=${doc#"$key ="}; d=${d# }
    [ "$d" = "$val" ] || { [ -z "$val" ] && [ "$d" = "(empty)" ]; } ||
      bad+=("gpuwatch.conf.5: $key = '$d', the program's default is '$val'")
  fi
  s=$(grep -E "^#$key = ?" "$sample" | head -1)
  if [ -z "$s" ]; then
    bad+=("sample config: no '#$key = ...'")
  else
    s=${s#"#$key ="}; s=${s# }
    [ "$s" = "$val" ] || bad+=("sample config: $key = '$s', the program's default is '$val'")
  fi
done <"$conf"
[ $rc = 0 ] && [ $nkeys -gt 20 ] && [ ${#bad[@]} = 0 ]
record "gpuwatch.conf.5 and the sample config list every key of serve --print-config with its default" $? "$nkeys keys printed" \
  "${bad[@]-}" "$(head -3 "$log/print-config.err")"

# ---- bash completion (the packaged file, the packaged binary on PATH)
comp=$root/usr/share/bash-completion/completions/gpuwatch
mkdir -p "$work/cwd/dir" && touch "$work/cwd/model.gguf" "$work/cwd/notes.txt"
complete_words() { # complete_words WORD... (the last is the one being completed)
  (cd "$work/cwd" && PATH="$root/usr/bin:$PATH" bash -c '
    source /usr/share/bash-completion/bash_completion
    source "$0"
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _gpuwatch gpuwatch "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
    [ ${#COMPREPLY[@]} = 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort' "$comp" gpuwatch "$@" 2>/dev/null)
}
bad=()
got=$(complete_words "" | tr '\n' ' ')
want=$(help_commands |
  sort | tr '\n' ' ')
for c in fit gguf place report run serve; do [[ " $want" == *" $c "* ]] || bad+=("gpuwatch --help lacks command $c"); done
[ "$got" = "$want" ] || bad+=("commands: '$got', gpuwatch --help lists '$want'")
got=$(complete_words serve --)
for o in $(env -i "$gw" serve --help | grep -oE -- '--[a-z][-a-z0-9]*' | sort -u); do
  grep -qx -- "$o" <<<"$got" || bad+=("serve --<TAB> lacks $o")
done
got=$(complete_words fit -- | tr '\n' ' ')
[[ $got == *"--mmproj "* && $got == *"--no-host "* ]] || bad+=("fit --<TAB>: '$got'")
got=$(complete_words fit --mmproj "" | tr '\n' ' ')
[[ $got == *model.gguf* ]] || bad+=("fit --mmproj <TAB>: '$got'")
got=$(complete_words place --model= | tr '\n' ' ')
[[ $got == *model.gguf* ]] || bad+=("place --model=<TAB>: '$got'")
got=$(complete_words serve -c "" | tr '\n' ' ')
[[ $got == *notes.txt* ]] || bad+=("serve -c <TAB> (a file): '$got'")
got=$(complete_words fit -c "" | tr '\n' ' ')
[ -z "$got" ] || bad+=("fit -c <TAB> (a context size, not a file): '$got'")
got=$(complete_words place --policy "" | tr '\n' ' ')
[ "$got" = "best-fit list pack spread " ] || bad+=("place --policy <TAB>: '$got'")
got=$(complete_words run --mem 1GiB -- bas | tr '\n' ' ')
[[ $got == *bash* ]] || bad+=("run ... -- bas<TAB> (a command): '$got'")
[ ${#bad[@]} = 0 ]
record "bash completion: commands, options from --help, files, values, run -- CMD" $? "${bad[@]-}"

finish
