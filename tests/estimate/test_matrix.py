#!/usr/bin/env python3
"""test_matrix.py — gpuwatch's CPU-backend estimate against real llama.cpp.

Installs node-llama-cpp (CPU build only) under the build directory when it is
missing, writes one sparse GGUF per architecture (model_writer.py), runs
llama.cpp's no_alloc dry run on every (model x context configuration) and
`gpuwatch fit --cpu --json` on the same, and checks the issue's targets:
weights and KV within 0.1%, compute within 5%, total within 1% (llama.cpp's
log figures have 0.01 MiB resolution, which is not counted as error).
A context llama.cpp refuses (e.g. MLA with different K and V cache types)
must be refused by gpuwatch too. No number here comes from gpuwatch itself.
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix  # noqa: E402

APPROX = set()  # every architecture of the matrix has exact rules


def main():
    gpuwatch = os.environ.get("GPUWATCH_BIN")
    build = os.environ.get("GPUWATCH_BUILD_ROOT", tempfile.gettempdir())
    if not gpuwatch or not os.path.exists(gpuwatch):
        print("GPUWATCH_BIN not set", file=sys.stderr)
        return 1
    if not shutil.which("node") or not shutil.which("npm"):
        print("SKIP: node/npm not installed (needed for the llama.cpp oracle)")
        return 77
    import subprocess
    ver = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    try:
        major = int(ver.lstrip("v").split(".")[0])
    except ValueError:
        major = 0
    if major < 20:
        print(f"SKIP: node-llama-cpp 3.22.1 needs Node.js >= 20 (found {ver or 'none'})")
        return 77
    nm = matrix.ensure_oracle(os.path.join(build, "tests", "estimate", "oracle"))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        models = matrix.write_models(tmp)
        rows = matrix.compare(gpuwatch, nm, models, matrix.configs("small"))
        print("== node-llama-cpp's loader choice (gpuwatch: the variant it detects)")
        print(matrix.table(rows))
        check_binding_rows(rows, failures)
        ext_rows = per_variant(gpuwatch, nm, build, models, failures)
    all_rows = rows + ext_rows
    worst = matrix.summarize(all_rows)
    for k, (e, name, cfg) in sorted(worst.items()):
        print(f"worst {k:<16} {100 * e:8.4f}%  {name} {cfg}")
    ok_rows = [r for r in all_rows if "error" not in r]
    aborted = [r for r in all_rows if r.get("aborted")]
    if len(ok_rows) + len(aborted) < len(all_rows) * 0.8:
        failures.append(f"only {len(ok_rows)}/{len(all_rows)} oracle runs succeeded")
    if failures:
        print("\n".join(["FAIL:"] + failures))
        return 1
    print(f"ok: {len(ok_rows)} configurations compared, {len(aborted)} where llama.cpp aborts")
    return 0


def check_binding_rows(rows, failures):
    """Targets for the node-llama-cpp rows (KV/compute/output split by
    0.01 MiB log figures: that resolution is not error)."""
    for r in rows:
        j = r["job"]
        name = j["name"]
        if r.get("aborted"):
            print(f"note: llama.cpp aborts on {name} {cfg_text(j)}: {r['error'][:160]}")
            continue
        if "error" in r:
            # llama.cpp itself refuses some combinations (e.g. MLA with a
            # quantized K cache and no flash attention): not our error
            print(f"note: {name} {j}: {r['error'][:200]}")
            if not r.get("gw_refused"):
                failures.append(f"{name} {j}: llama.cpp refuses this context, gpuwatch accepts it")
            continue
        res = r["resolution"]
        checks = [("weights", matrix.rel_err(r["weights"]), 0.001),
                  ("kv", matrix.rel_err(r["kv"], res), 0.001),
                  ("output", matrix.rel_err(r["output"], res), 0.001),
                  ("compute", matrix.rel_err(r["compute"], res), 0.10 if name in APPROX else 0.05),
                  ("total", matrix.rel_err(r["total"], 2 * res), 0.03 if name in APPROX else 0.01)]
        if r["n_ctx"][0] != r["n_ctx"][1]:
            failures.append(f"{name} {j}: n_ctx {r['n_ctx'][0]} != llama.cpp {r['n_ctx'][1]}")
        for comp, err, limit in checks:
            if err > limit:
                failures.append(f"{name} {cfg_text(j)}: {comp} off by {100 * err:.3f}% "
                                f"(gpuwatch {r[comp][0]}, llama.cpp {r[comp][1]})")


def cfg_text(j):
    return (f"{j['n_ctx']}/{j['n_batch']}/{j.get('n_ubatch', j['n_batch'])}/{j['n_seq']}/"
            f"{j['type_k']}/{j['type_v']}/fa={j['flash_attn']}")


def check_ext_rows(rows, label, failures):
    """Targets for the direct oracle's rows: model, KV and compute bytes are
    exact on llama.cpp's side. Returns how many matched to the byte."""
    exact = 0
    for r in rows:
        j = r["job"]
        if r.get("aborted"):
            continue
        if "error" in r:
            if r.get("oracle_ok") or not r.get("gw_refused"):
                failures.append(f"{label} {j['name']} {cfg_text(j)}: {r['error'][:200]}")
            continue
        if all(r[k][0] == r[k][1] for k in ("weights", "kv", "compute")):
            exact += 1
        for comp, limit, slack in (("weights", 0.001, 0), ("kv", 0.001, 0), ("compute", 0.05, 0),
                                   ("output", 0.001, r["resolution"]),
                                   ("total", 0.01, r["resolution"])):
            err = matrix.rel_err(r[comp], slack)
            if err > limit:
                failures.append(f"{label} {j['name']} {cfg_text(j)}: {comp} off by {100 * err:.3f}% "
                                f"(gpuwatch {r[comp][0]}, llama.cpp {r[comp][1]})")
        if r["n_ctx"][0] != r["n_ctx"][1]:
            failures.append(f"{label} {j['name']}: n_ctx {r['n_ctx']}")
    return exact


def per_variant(gpuwatch, nm, build, models, failures):
    """The direct oracle once per ggml CPU variant this machine can run,
    llama.cpp pinned to it and gpuwatch told it (--host-cpu); the variants it
    cannot run are listed as not checked. Also checks that gpuwatch detects
    the variant llama.cpp's loader picks here. Returns the compared rows."""
    workdir = os.path.join(build, "tests", "estimate", "oracle")
    try:
        oracle = matrix.ensure_oracle_ext(workdir, nm)
    except Exception as e:  # a missing compiler or git is not a gpuwatch failure
        print(f"note: direct oracle not built: {e}")
        oracle = None
    if not oracle:
        print("note: direct oracle unavailable (needs git and a C++ compiler); per-variant "
              "rules, -ub/--kv-unified/--swa-full not compared")
        return []
    variants = matrix.cpu_variants(oracle[1])
    runnable = [(v, sc) for v, sc in variants if sc > 0]
    best = max(runnable, key=lambda x: x[1])[0] if runnable else None
    import json
    import subprocess
    any_model = next(iter(models.values()))
    g = subprocess.run([gpuwatch, "fit", any_model, "--cpu", "--json"], capture_output=True,
                       text=True)
    detected = json.loads(g.stdout)["host_cpu"]["variant"] if g.returncode == 0 else None
    print(f"== CPU variants: llama.cpp's loader picks {best}; gpuwatch detects {detected}")
    if detected != best:
        failures.append(f"gpuwatch detects CPU variant {detected}, llama.cpp's loader picks {best}")
    summary, out = [], []
    cfgs = matrix.configs_ext("small")
    for v, score in variants:
        if score == 0:
            summary.append(f"  {v:<15} not checked: this CPU cannot run it")
            continue
        rows = matrix.compare_ext(gpuwatch, oracle, models, cfgs, variant=v,
                                  backend_dir=matrix.pin_variant(oracle[1], v, workdir))
        print(f"== direct oracle pinned to {v} (score {score})")
        print(matrix.table(rows))
        n_fail = len(failures)
        exact = check_ext_rows(rows, v, failures)
        ok = [r for r in rows if "error" not in r]
        ab = [r for r in rows if r.get("aborted")]
        worst = matrix.summarize(rows)
        wtxt = ", ".join(f"{k} {100 * worst[k][0]:.4f}%" for k in ("weights", "kv", "compute", "total")
                         if k in worst)
        summary.append(f"  {v:<15} {'checked' if len(failures) == n_fail else 'FAILED':<8} "
                       f"{len(ok)} configurations ({exact} byte-exact), {len(ab)} llama.cpp aborts; "
                       f"worst {wtxt}")
        out += ok + ab
    print("== per CPU variant (direct oracle: -ub < -b, --kv-unified, --swa-full included)")
    print("\n".join(summary))
    return out


if __name__ == "__main__":
    sys.exit(main())
