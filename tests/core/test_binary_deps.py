#!/usr/bin/env python3
"""The gpuwatch binary does not link libmicrohttpd (nor GnuTLS behind it):
`serve` loads it at run time, so one-shot commands stay small and fast
(src/http/mhd_lib.h). And when the library cannot be loaded, `serve` says
which library, and exits 1 instead of crashing."""
import os, subprocess, sys

BIN = os.environ["GPUWATCH_BIN"]
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)

dyn = subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True, check=True).stdout
needed = [l.split("[")[1].rstrip("]") for l in dyn.splitlines() if "(NEEDED)" in l]
print("NEEDED:", " ".join(needed))
for lib in ("libmicrohttpd", "libgnutls", "libcurl"):
    check(not any(n.startswith(lib) for n in needed), f"{lib} is not linked")

env = dict(os.environ, GPUWATCH_MHD_LIBRARY="/nonexistent/libmicrohttpd.so.12")
r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--sources", "host"],
                   capture_output=True, text=True, env=env, timeout=30)
check(r.returncode == 1, f"serve without libmicrohttpd exits 1 (got {r.returncode})")
check("/nonexistent/libmicrohttpd.so.12" in r.stderr, f"the message names the library: {r.stderr!r}")

print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
