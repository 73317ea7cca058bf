"""test_install.py — what `meson install` puts on a machine for
applications, used the way an application uses it: the build installed
into a scratch DESTDIR, examples/c built with the installed gpuwatch.pc and
header, examples/python run with the installed package, all against the
fake NVML library. Values are compared with the scenario file.

Usage: test_install.py [MESON]   (the meson command; default "meson")
Environment (meson): GPUWATCH_BUILD_ROOT, GPUWATCH_SOURCE_ROOT.
"""
import glob
import os
import re
import shlex
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, failures, finish, run  # noqa: E402

BUILD = os.environ["GPUWATCH_BUILD_ROOT"]
SOURCE = os.environ["GPUWATCH_SOURCE_ROOT"]
FAKE = os.path.join(BUILD, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
SCN = os.path.join(SOURCE, "tests", "nvml", "scenarios", "two.scn")


def scenario_gpus():
    gpus, cur = [], None
    for ln in open(SCN):
        k, _, v = ln.strip().partition(" ")
        if k == "gpu":
            cur = {}
            gpus.append(cur)
        elif cur is not None and k in ("name", "uuid", "memory.total", "memory.free", "cc.major"):
            cur[k] = v
    return gpus


def main():
    meson = [sys.argv[1]] if len(sys.argv) > 1 else ["meson"]
    with tempfile.TemporaryDirectory() as dest:
        r = run(meson + ["install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", dest])
        check(r.returncode == 0, "meson install")
        if r.returncode:
            return
        pcs = glob.glob(dest + "/**/pkgconfig/gpuwatch.pc", recursive=True)
        sos = glob.glob(dest + "/**/libgpuwatch.so.1", recursive=True)
        hdrs = glob.glob(dest + "/**/include/gpuwatch.h", recursive=True)
        pkgs = glob.glob(dest + "/**/gpuwatch/__init__.py", recursive=True)
        check(len(pcs) == len(sos) == len(hdrs) == len(pkgs) == 1,
              "installed: pc %s so %s header %s python %s" % (pcs, sos, hdrs, pkgs))
        if failures:
            return
        libdir = os.path.dirname(sos[0])
        check(os.path.dirname(os.path.dirname(pcs[0])) == libdir, "gpuwatch.pc beside the library")
        check(os.path.islink(os.path.join(libdir, "libgpuwatch.so")), "the dev link libgpuwatch.so")
        check(os.path.exists(os.path.join(libdir, "libgpuwatch.a")), "the static archive")
        paths = open(os.path.join(os.path.dirname(pkgs[0]), "_paths.py")).read()
        check('LIBDIR = "%s"' % libdir[len(dest):] in paths, "_paths.py names %s: %s" % (
            libdir[len(dest):], paths))
        no_internal = [p for p in glob.glob(dest + "/**/include/**/*.h", recursive=True)
                       if not p.endswith("/gpuwatch.h")]
        check(not no_internal, "internal headers installed: %s" % no_internal)

        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                   PKG_CONFIG_SYSROOT_DIR=dest)
        flags = run(["pkg-config", "--cflags", "--libs", "gpuwatch"], env=env)
        check(flags.returncode == 0, "pkg-config: %s" % flags.stderr)
        exe = os.path.join(dest, "gpu_memory")
        r = run(["cc", "-Wall", "-Wextra", "-Werror", os.path.join(SOURCE, "examples", "c",
                 "gpu_memory.c"), "-o", exe] + shlex.split(flags.stdout), env=env)
        check(r.returncode == 0, "examples/c/gpu_memory.c builds with pkg-config")
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir, GPUWATCH_NVML_LIBRARY=FAKE,
                       GPUWATCH_FAKE_NVML_SCENARIO=SCN, GPUWATCH_SYS_ROOT=dest,
                       GPUWATCH_PROC_ROOT=dest)
        run_env.pop("GPUWATCH_LIBRARY", None)
        gpus = scenario_gpus()
        if r.returncode == 0:
            out = run([exe], env=run_env)
            check(out.returncode == 0, "gpu_memory runs")
            rows = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', ln)) for ln in out.stdout.splitlines()
                    if ln.startswith("gpu=")]
            check(len(rows) == len(gpus) == 2, "gpu_memory rows: %s" % out.stdout)
            for row, g in zip(rows, gpus):
                check(row.get("name") == '"%s"' % g["name"] and row.get("uuid") == g["uuid"],
                      "identity %s vs %s" % (row, g))
                check(row.get("total") == g["memory.total"] and row.get("free") == g["memory.free"]
                      and row.get("fresh_free") == g["memory.free"], "memory %s vs %s" % (row, g))
                cc = g.get("cc.major")  # bf16 from compute capability 8.0 on
                want = "unknown" if cc is None else "yes" if int(cc) >= 8 else "no"
                check(row.get("bf16") == want, "bf16 %s vs cc %s" % (row, g.get("cc.major")))
        py_env = dict(run_env, PYTHONPATH=os.path.dirname(os.path.dirname(pkgs[0])),
                      GPUWATCH_LIBRARY=sos[0])
        out = run([sys.executable, os.path.join(SOURCE, "examples", "python", "memory_and_bf16.py")],
                  env=py_env)
        check(out.returncode == 0, "memory_and_bf16.py runs")
        rows = [dict(re.findall(r"(\w+)=('[^']*'|\S+)", ln)) for ln in out.stdout.splitlines()]
        check([r.get("name") for r in rows] == ["'%s'" % g["name"] for g in gpus] and
              [r.get("free") for r in rows] == [g["memory.free"] for g in gpus],
              "memory_and_bf16.py: %s" % out.stdout)
        out = run([sys.executable, os.path.join(SOURCE, "examples", "python", "batch_size.py"),
                   "0"], env=py_env)
        check(out.returncode == 0, "batch_size.py runs")
        check("batch=1425 largest_ok=1500 smallest_oom=1501" in out.stdout,
              "batch_size.py: %s" % out.stdout)


if __name__ == "__main__":
    main()
    finish()
