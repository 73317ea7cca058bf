"""test_abi.py — libgpuwatch's ABI as built: exports, SONAME, symbol
versions, the installed header's self-containment, abidiff against the
committed 1.0 baseline, and a program built against the frozen 1.0 header
run against this library.

Usage: test_abi.py CASE   (exports | abidiff | old-binary)
Environment (meson): GPUWATCH_BUILD_ROOT, GPUWATCH_SOURCE_ROOT; the fake
NVML library under the build tree. Regenerate the baseline (only when a
release deliberately changes the ABI, with a new SONAME or version node):
  abidw --headers-dir include --no-corpus-path \
      build/src/lib/libgpuwatch.so.1 > tests/lib/abi/libgpuwatch-1.abi
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, failures, finish, run  # noqa: E402

BUILD = os.environ["GPUWATCH_BUILD_ROOT"]
SOURCE = os.environ["GPUWATCH_SOURCE_ROOT"]
LIB = os.path.join(BUILD, "src", "lib", "libgpuwatch.so.1")
HEADER = os.path.join(SOURCE, "include", "gpuwatch.h")
MAP = os.path.join(SOURCE, "src", "lib", "libgpuwatch.map")
ABI_DIR = os.path.join(SOURCE, "tests", "lib", "abi")


def header_api():
    text = open(HEADER).read()
    return set(re.findall(r"GW_API[^;(]*?\b(gw_[a-z0-9_]+)\s*\(", text))


def case_exports():
    api = header_api()
    check(len(api) > 40, "header: %d GW_API functions found" % len(api))
    out = run(["nm", "-D", "--defined-only", LIB]).stdout
    exported = {ln.split()[-1].split("@")[0] for ln in out.splitlines() if ln.strip()}
    exported.discard("GPUWATCH_1")
    check(exported == api, "exports vs GW_API: only exported %s; only declared %s" % (
        sorted(exported - api), sorted(api - exported)))
    mapped = set(re.findall(r"^\s+(gw_[a-z0-9_]+);", open(MAP).read(), re.M))
    check(mapped == api, "map vs GW_API: only mapped %s; only declared %s" % (
        sorted(mapped - api), sorted(api - mapped)))
    vers = run(["objdump", "-T", LIB]).stdout
    for name in sorted(api):
        check(re.search(r"GPUWATCH_1\s+%s$" % name, vers, re.M),
              "%s is not versioned GPUWATCH_1" % name)
    dyn = run(["readelf", "-d", LIB]).stdout
    check("Library soname: [libgpuwatch.so.1]" in dyn, "SONAME: %s" % dyn)
    # the installed header stands alone: C standard headers only, and it
    # compiles by itself as C and as C++
    incs = re.findall(r'#include\s+([<"][^>"]+[>"])', open(HEADER).read())
    check(set(incs) <= {"<stdbool.h>", "<stddef.h>", "<stdint.h>"}, "header includes %s" % incs)
    with tempfile.TemporaryDirectory() as tmp:
        for lang, comp in (("c", "cc"), ("c++", "c++")):
            src = os.path.join(tmp, "h." + ("c" if lang == "c" else "cc"))
            open(src, "w").write('#include "gpuwatch.h"\nint main(void) { return 0; }\n')
            r = run([comp, "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", os.path.dirname(HEADER),
                     "-c", src, "-o", os.path.join(tmp, "h.o")])
            check(r.returncode == 0, "header alone as %s: %s" % (lang, r.stderr))


def case_abidiff():
    base = os.path.join(ABI_DIR, "libgpuwatch-1.abi")
    r = run(["abidiff", "--headers-dir2", os.path.dirname(HEADER), "--no-added-syms", base, LIB])
    print(r.stdout[-4000:], r.stderr[-2000:])
    # abidiff's status bits: 1 error, 2 usage error, 4 an ABI change, 8 an
    # incompatible change. Added functions are fine; any change to what the
    # baseline has is not.
    check(r.returncode & 3 == 0, "abidiff failed to run (status %d)" % r.returncode)
    check(r.returncode & 12 == 0, "the ABI changed against the 1.0 baseline (status %d)"
          % r.returncode)


def case_old_binary():
    fake = os.path.join(BUILD, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
    scn = os.path.join(SOURCE, "tests", "nvml", "scenarios", "two.scn")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "old_client")
        r = run(["cc", "-Wall", "-Werror", "-I", ABI_DIR, os.path.join(ABI_DIR, "old_client.c"),
                 "-o", exe, "-L", os.path.dirname(LIB), "-l:libgpuwatch.so.1"])
        check(r.returncode == 0, "old client builds: %s" % r.stderr)
        if r.returncode:
            return
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(LIB), GPUWATCH_NVML_LIBRARY=fake,
                   GPUWATCH_FAKE_NVML_SCENARIO=scn, GPUWATCH_SYS_ROOT=tmp,
                   GPUWATCH_PROC_ROOT=tmp)
        out = run([exe], env=env)
        print(out.stdout, out.stderr)
        check(out.returncode == 0, "old client exit %d" % out.returncode)
        kv = [dict(w.split("=", 1) for w in ln.split() if "=" in w) for ln in out.stdout.splitlines()]
        check(kv and kv[0].get("devices") == "2", "devices: %s" % out.stdout)
        uuids = re.findall(r"^uuid (.+)$", open(scn).read(), re.M)
        totals = re.findall(r"^memory.total (\d+)$", open(scn).read(), re.M)
        frees = re.findall(r"^memory.free (\d+)$", open(scn).read(), re.M)
        gpus = [x for x in kv if "gpu" in x]
        check([g.get("uuid") for g in gpus] == uuids, "uuids %s" % gpus)
        check([g.get("total") for g in gpus] == totals, "totals %s" % gpus)
        check([g.get("free") for g in gpus] == frees, "frees %s" % gpus)
        last = kv[-1]
        check(last.get("batch_rc") == "0" and last.get("batch") == "99" and
              last.get("oom") == "100", "batch finder: %s" % last)


CASES = {"exports": case_exports, "abidiff": case_abidiff, "old-binary": case_old_binary}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    finish()
