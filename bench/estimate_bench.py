#!/usr/bin/env python3
"""estimate_bench.py — speed and accuracy of `gpuwatch fit` against
node-llama-cpp (real llama.cpp), in the same run on the same files.

Speed: parse + estimate of a 70B-shaped (llama, 80 layers, Q4_K) and a
30B-MoE-shaped (qwen3moe, 48 layers, 128 experts) sparse GGUF:
  - whole process: `gpuwatch fit FILE --cpu --json` (best and median of N),
    plus `estimate_inproc FILE 1` (the estimator in a process that links
    nothing else) and `/bin/true` / `gpuwatch --version` as floors;
  - in process: bench/estimate_inproc (best and mean per round);
  - node-llama-cpp's `inspect estimate` on the same file (best of 3).
Accuracy: the matrix of tests/estimate/matrix.py ("big" configurations)
against llama.cpp's no_alloc dry run, with the worst error per component;
then the direct oracle once per ggml CPU variant this machine can run
(llama.cpp pinned to it, gpuwatch told --host-cpu), worst error per variant.

Usage: estimate_bench.py --build BUILD_DIR [--rounds N] [--quick]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "estimate"))
import matrix  # noqa: E402
import model_writer  # noqa: E402


def timed(cmd, n, env=None):
    """Wall time of a whole process (posix_spawn + wait, output to
    /dev/null): best and median of n runs, in ms."""
    ts = []
    fa = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
          (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    exe = cmd[0] if os.path.isabs(cmd[0]) else shutil.which(cmd[0])
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.posix_spawn(exe, cmd, env if env is not None else os.environ, file_actions=fa)
        _, status = os.waitpid(pid, 0)
        ts.append((time.perf_counter() - t0) * 1000)
        rc = os.waitstatus_to_exitcode(status)
        if rc not in (0, 1):
            raise RuntimeError(f"{cmd}: exit {rc}")
    return min(ts), statistics.median(ts)


def per_variant(gw, oracle, models, a):
    """The direct oracle (prebuilt libllama via llama.h: exact model/KV/compute
    bytes; -ub < -b, --kv-unified, --swa-full) once per ggml CPU variant this
    machine can run, llama.cpp pinned to it and gpuwatch given --host-cpu;
    worst error per component and variant."""
    print("\n== accuracy per CPU variant, direct oracle (exact model/KV/compute bytes)")
    workdir = os.path.join(a.build, "tests", "estimate", "oracle")
    cfgs = matrix.configs_ext("small" if a.quick else "big")
    print(f"{len(models)} models x {len(cfgs)} configurations per variant")
    print(f"{'variant':<15} {'score':>5} {'compared':>8} {'aborts':>6} {'exact':>6} "
          f"{'weights%':>9} {'kv%':>8} {'compute%':>9} {'output B':>9} {'total%':>8} {'s':>6}")
    for v, score in matrix.cpu_variants(oracle[1]):
        if score == 0:
            print(f"{v:<15} {score:>5} not checked: this CPU cannot run it")
            continue
        t0 = time.perf_counter()
        rows = matrix.compare_ext(gw, oracle, models, cfgs, variant=v,
                                  backend_dir=matrix.pin_variant(oracle[1], v, workdir))
        ok = [r for r in rows if "error" not in r]
        aborts = [r for r in rows if r.get("aborted")]
        disagree = [r for r in rows if "error" in r and not r.get("aborted") and
                    (r.get("oracle_ok") or not r.get("gw_refused"))]
        exact = sum(1 for r in ok if all(r[k][0] == r[k][1] for k in ("weights", "kv", "compute")))
        w = {k: max((matrix.rel_err(r[k]) for r in ok), default=0.0)
             for k in ("weights", "kv", "compute")}
        w["total"] = max((matrix.rel_err(r["total"], r["resolution"]) for r in ok), default=0.0)
        out_b = max((abs(r["output"][0] - r["output"][1]) for r in ok), default=0)
        print(f"{v:<15} {score:>5} {len(ok):>8} {len(aborts):>6} {exact:>6} "
              f"{100 * w['weights']:>9.4f} {100 * w['kv']:>8.4f} {100 * w['compute']:>9.4f} "
              f"{out_b:>9} {100 * w['total']:>8.4f} {time.perf_counter() - t0:>6.1f}"
              + (f"  {len(disagree)} DISAGREEMENTS" if disagree else ""))
        for r in aborts[:1]:
            print(f"{'':<15} llama.cpp aborts on {len(aborts)} ({r['job']['name']} ...: "
                  f"{r['error'][len('llama.cpp aborts: '):][:70]})")
    print("(output: llama.cpp's 0.01 MiB log figure, so up to 5243 bytes is its rounding, "
          "which total% does not count)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="small accuracy matrix")
    a = ap.parse_args()
    gw = os.path.join(a.build, "src", "cli", "gpuwatch")
    inproc = os.path.join(a.build, "bench", "estimate_inproc")
    nm = matrix.ensure_oracle(os.path.join(a.build, "tests", "estimate", "oracle"))
    nlc_cli = os.path.join(nm, "node-llama-cpp", "dist", "cli", "cli.js")
    env = dict(os.environ, NODE_LLAMA_CPP_SKIP_DOWNLOAD="true")

    with tempfile.TemporaryDirectory() as tmp:
        print("== speed: parse + estimate (ms)")
        floor = timed(["/bin/true"], a.rounds)
        ver = timed([gw, "--version"], a.rounds)
        print(f"process floor: /bin/true best {floor[0]:.2f} median {floor[1]:.2f}; "
              f"gpuwatch --version best {ver[0]:.2f} median {ver[1]:.2f}")
        for preset in ("llama-70b", "qwen3moe-30b"):
            path = os.path.join(tmp, preset + ".gguf")
            size = model_writer.write_model(path, model_writer.PRESETS[preset])
            whole = timed([gw, "fit", path, "--cpu", "--json", "-c", "8192"], a.rounds)
            lean = timed([inproc, path, "1", "8192"], a.rounds)
            r = subprocess.run([inproc, path, str(a.rounds * 5), "8192"], capture_output=True,
                               text=True, check=True)
            ip = json.loads(r.stdout)
            nlc = timed(["node", nlc_cli, "inspect", "estimate", path, "--gpu", "false", "-c", "8192"],
                        3, env=env)
            print(f"{preset:<13} ({size / 2**30:.1f} GiB shaped): "
                  f"gpuwatch fit whole process best {whole[0]:.2f} median {whole[1]:.2f}; "
                  f"estimator-only process best {lean[0]:.2f} median {lean[1]:.2f}; "
                  f"in process best {ip['total_best_us'] / 1000:.3f} mean {ip['total_mean_us'] / 1000:.3f} "
                  f"(open {ip['open_us']:.0f} us, model {ip['model_us']:.0f} us, estimate {ip['estimate_us']:.0f} us); "
                  f"node-llama-cpp inspect estimate best {nlc[0]:.0f} median {nlc[1]:.0f}; "
                  f"speedup whole-process {nlc[0] / whole[0]:.0f}x, in-process {nlc[0] / (ip['total_best_us'] / 1000):.0f}x")

        print("\n== accuracy: gpuwatch (CPU backend) vs llama.cpp no_alloc dry run")
        models = matrix.write_models(os.path.join(tmp, "m"))
        cfgs = matrix.configs("small" if a.quick else "big")
        t0 = time.perf_counter()
        rows = matrix.compare(gw, nm, models, cfgs)
        print(matrix.table(rows))
        ok = [r for r in rows if "error" not in r]
        aborts = [r for r in rows if r.get("aborted")]
        print(f"\n{len(ok)} configurations compared, {len(rows) - len(ok) - len(aborts)} refused by "
              f"llama.cpp itself, {len(aborts)} where llama.cpp aborts, in "
              f"{time.perf_counter() - t0:.1f} s")
        print("worst relative error per component (llama.cpp's 0.01 MiB log resolution "
              "for compute/output/kv not counted as error):")
        for k, (e, name, cfg) in sorted(matrix.summarize(ok).items()):
            print(f"  {k:<16} {100 * e:9.4f}%  {name} {cfg}")
        print("largest raw byte difference per component (no slack; kv+compute is exact "
              "on llama.cpp's side, compute/output are 0.01 MiB log figures):")
        for k in ("weights", "kv", "compute", "output", "kv_plus_compute", "total"):
            worst = max(ok, key=lambda r: abs(r[k][0] - r[k][1]))
            d = worst[k][0] - worst[k][1]
            print(f"  {k:<16} {d:+12d} bytes ({100 * abs(d) / worst[k][1]:.5f}%)  {worst['job']['name']}")
        oracle = matrix.ensure_oracle_ext(os.path.join(a.build, "tests", "estimate", "oracle"), nm)
        if oracle:
            per_variant(gw, oracle, models, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
