#!/usr/bin/env python3
"""matrix.py — compares gpuwatch's CPU-backend estimate with real llama.cpp.

Owns: the model shapes of every architecture under test, the context
configurations (n_ctx x cache types x flash attention x sequences x batch),
installing node-llama-cpp (the oracle) when it is missing, running the
oracle and `gpuwatch fit --cpu --json` on the same files, and the error
table. Ground truth is llama.cpp's own byte counts (oracle.mjs); nothing is
copied from gpuwatch.

Used by test_matrix.py (small matrix, asserts the targets) and by
bench/estimate_bench.py (bigger matrix, prints the table).
"""
import itertools
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_writer  # noqa: E402

NLC = "node-llama-cpp@3.22.1"
NLC_BIN = "@node-llama-cpp/linux-x64@3.22.1"

# Small but realistic-ratio shapes: head dims and GQA as the real models.
MODELS = {
    "llama": {"arch": "llama", "n_layer": 4, "n_embd": 1024, "n_head": 16, "n_head_kv": 4,
              "n_ff": 2816, "n_vocab": 32000, "wtype": "Q8_0", "embd_type": "Q4_0", "out_type": "Q6_K"},
    "llama-tied": {"arch": "llama", "n_layer": 3, "n_embd": 768, "n_head": 12, "n_head_kv": 12,
                   "n_ff": 2048, "n_vocab": 49152, "wtype": "F16", "tied": True},
    "mixtral": {"arch": "llama", "n_layer": 3, "n_embd": 512, "n_head": 8, "n_head_kv": 2,
                "n_ff": 1024, "n_expert": 8, "n_expert_used": 2, "n_vocab": 32000, "wtype": "Q4_0"},
    "qwen2": {"arch": "qwen2", "n_layer": 3, "n_embd": 896, "n_head": 14, "n_head_kv": 2,
              "n_ff": 4864, "n_vocab": 151936, "wtype": "Q8_0", "tied": True},
    "qwen3": {"arch": "qwen3", "n_layer": 3, "n_embd": 1024, "n_head": 16, "n_head_kv": 8,
              "head_dim": 128, "n_ff": 3072, "n_vocab": 151936, "wtype": "Q4_K", "tied": True},
    "qwen3moe": {"arch": "qwen3moe", "n_layer": 3, "n_embd": 1024, "n_head": 16, "n_head_kv": 4,
                 "head_dim": 128, "n_ff": 3072, "n_ff_exp": 256, "n_expert": 16, "n_expert_used": 4,
                 "n_vocab": 32000, "wtype": "Q4_K"},
    "gemma2": {"arch": "gemma2", "n_layer": 4, "n_embd": 1152, "n_head": 8, "n_head_kv": 4,
               "head_dim": 256, "n_ff": 4608, "n_vocab": 32000, "wtype": "Q8_0", "n_swa": 1024},
    "gemma3": {"arch": "gemma3", "n_layer": 6, "n_embd": 1152, "n_head": 4, "n_head_kv": 1,
               "head_dim": 256, "n_ff": 2304, "n_vocab": 32000, "wtype": "Q4_0", "n_swa": 512},
    "phi3": {"arch": "phi3", "n_layer": 3, "n_embd": 1536, "n_head": 16, "n_head_kv": 16,
             "n_ff": 4096, "n_vocab": 32064, "wtype": "F16"},
    "command-r": {"arch": "command-r", "n_layer": 3, "n_embd": 1024, "n_head": 8, "n_head_kv": 8,
                  "n_ff": 2816, "n_vocab": 32000, "wtype": "Q8_0"},
    "gpt-oss": {"arch": "gpt-oss", "n_layer": 4, "n_embd": 1024, "n_head": 16, "n_head_kv": 4,
                "head_dim": 64, "n_ff": 1024, "n_ff_exp": 512, "n_expert": 8, "n_expert_used": 2,
                "n_vocab": 32000, "wtype": "Q8_0", "n_swa": 128},
    "deepseek2": {"arch": "deepseek2", "n_layer": 3, "n_embd": 1024, "n_head": 8, "n_head_kv": 1,
                  "n_ff": 2048, "n_ff_exp": 256, "n_expert": 8, "n_expert_used": 2,
                  "n_vocab": 32000, "wtype": "Q8_0", "kv_lora_rank": 512, "rope_dim": 64,
                  "head_k_mla": 192, "head_v_mla": 128, "q_lora_rank": 384},
}


def configs(size="small"):
    """Context configurations. small: for the test suite; big: the bench."""
    if size == "small":
        base = [
            dict(n_ctx=4096, n_batch=512, n_seq=1, type_k="f16", type_v="f16", flash_attn=False),
            dict(n_ctx=4096, n_batch=512, n_seq=1, type_k="f16", type_v="f16", flash_attn=True),
            dict(n_ctx=8192, n_batch=256, n_seq=2, type_k="q8_0", type_v="q8_0", flash_attn=True),
            dict(n_ctx=3000, n_batch=1024, n_seq=3, type_k="q4_0", type_v="f16", flash_attn=False),
        ]
        return base
    out = []
    for n_ctx, fa, (tk, tv), n_seq, nb in itertools.product(
            [2048, 8192, 20000], [False, True], [("f16", "f16"), ("q8_0", "q8_0"), ("q4_0", "f16")],
            [1, 4], [256, 512, 2048]):
        if tv != "f16" and not fa:
            continue
        out.append(dict(n_ctx=n_ctx, n_batch=nb, n_seq=n_seq, type_k=tk, type_v=tv, flash_attn=fa))
    return out


def ensure_oracle(workdir):
    """Installs node-llama-cpp under workdir (once); returns its node_modules."""
    workdir = os.path.abspath(workdir)
    nm = os.path.join(workdir, "node_modules")
    if os.path.isdir(os.path.join(nm, "node-llama-cpp")) and \
            os.path.isdir(os.path.join(nm, "@node-llama-cpp", "linux-x64")):
        return nm
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, NODE_LLAMA_CPP_SKIP_DOWNLOAD="true")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=optional",
                    "--prefix", workdir, NLC, NLC_BIN],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return nm


GGML_ID = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "bf16": 30}


def configs_ext(size="small"):
    """Configurations only the direct oracle (oracle_ext) can run: -ub below
    -b, a unified KV cache, --swa-full."""
    if size == "small":
        return [
            dict(n_ctx=4096, n_batch=2048, n_ubatch=512, n_seq=3, unified=False, flash_attn=False,
                 type_k="f16", type_v="f16", swa_full=False),  # 512 tokens round up to 513
            dict(n_ctx=8192, n_batch=1024, n_ubatch=256, n_seq=4, unified=True, flash_attn=True,
                 type_k="q8_0", type_v="q8_0", swa_full=False),
            dict(n_ctx=6000, n_batch=512, n_ubatch=128, n_seq=2, unified=False, flash_attn=True,
                 type_k="q4_0", type_v="q4_0", swa_full=True),
            dict(n_ctx=3000, n_batch=3000, n_ubatch=3000, n_seq=3, unified=True, flash_attn=False,
                 type_k="f16", type_v="f16", swa_full=False),
            dict(n_ctx=2048, n_batch=1024, n_ubatch=512, n_seq=2, unified=False, flash_attn=True,
                 type_k="f16", type_v="f16", swa_full=False, embeddings=True),
        ]
    out = []
    for n_ctx, (nb, nub), n_seq, unified, fa, (tk, tv), swa_full in itertools.product(
            [4096, 16384], [(2048, 512), (512, 128), (4096, 4096)], [1, 3], [False, True],
            [False, True], [("f16", "f16"), ("q8_0", "q8_0")], [False, True]):
        if tv != "f16" and not fa:
            continue
        out.append(dict(n_ctx=n_ctx, n_batch=nb, n_ubatch=nub, n_seq=n_seq, unified=unified,
                        flash_attn=fa, type_k=tk, type_v=tv, swa_full=swa_full,
                        embeddings=swa_full and unified))
    return out


def ensure_oracle_ext(workdir, node_modules):
    """Builds oracle_ext against the prebuilt libllama of node-llama-cpp and
    the headers of the same llama.cpp release (from the package's source
    bundle). Returns (binary, bins_dir), or None when git or a C++ compiler
    is missing."""
    import shutil
    workdir, node_modules = os.path.abspath(workdir), os.path.abspath(node_modules)
    cxx = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    git = shutil.which("git")
    bins = os.path.join(node_modules, "@node-llama-cpp", "linux-x64", "bins", "linux-x64")
    bundle = os.path.join(node_modules, "node-llama-cpp", "llama", "gitRelease.bundle")
    if not cxx or not git or not os.path.isdir(bins) or not os.path.exists(bundle):
        return None
    exe = os.path.join(workdir, "oracle_ext")
    src = os.path.join(HERE, "oracle_ext.cpp")
    stamp = exe + ".rpath"
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src) and \
            os.path.exists(stamp) and open(stamp).read() == bins:
        return exe, bins
    hdr = os.path.join(workdir, "llama-src")
    if not os.path.isdir(os.path.join(hdr, "include")):
        subprocess.run([git, "clone", "-q", "--no-checkout", bundle, hdr], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([git, "-C", hdr, "checkout", "-q", "HEAD", "--", "include", "ggml/include",
                        "src/llama-ext.h"], check=True)
    libs = [os.path.join(bins, n) for n in ("libllama.v0.5.0.so", "libggml.v0.5.0.so", "libggml-base.so")]
    subprocess.run([cxx, "-std=c++17", "-O1", "-I", os.path.join(hdr, "include"), "-I",
                    os.path.join(hdr, "ggml", "include"), "-I", os.path.join(hdr, "src"), src, "-o", exe,
                    *libs, "-Wl,-rpath," + bins], check=True)
    with open(stamp, "w") as f:
        f.write(bins)
    return exe, bins


def run_oracle_ext(oracle, jobs):
    exe, bins = oracle
    lines = "".join(f"{j['model']} {j['n_ctx']} {j['n_batch']} {j['n_ubatch']} {j['n_seq']} "
                    f"{int(j['unified'])} {int(j['flash_attn'])} {GGML_ID[j['type_k']]} "
                    f"{GGML_ID[j['type_v']]} {int(j['swa_full'])} {int(j.get('embeddings', False))}\n"
                    for j in jobs)
    r = subprocess.run([exe, bins], input=lines, capture_output=True, text=True, check=True)
    res = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    if len(res) != len(jobs):
        raise RuntimeError(f"oracle_ext: {len(res)} results for {len(jobs)} jobs: {r.stderr[-1000:]}")
    return res


def compare_ext(gpuwatch, oracle, models, cfgs):
    """Like compare(), with the direct oracle: model, KV and compute bytes are
    exact on llama.cpp's side; output comes from its 0.01 MiB log line."""
    jobs = [dict(c, model=path, name=name) for name, path in models.items() for c in cfgs]
    res = run_oracle_ext(oracle, jobs)
    rows = []
    for job, o in zip(jobs, res):
        args = [gpuwatch, "fit", job["model"], "--cpu", "--json", "-c", str(job["n_ctx"]),
                "-b", str(job["n_batch"]), "-ub", str(job["n_ubatch"]), "-np", str(job["n_seq"]),
                "-ctk", job["type_k"], "-ctv", job["type_v"], "-fa", "on" if job["flash_attn"] else "off"]
        if job["unified"]:
            args.append("--kv-unified")
        if job["swa_full"]:
            args.append("--swa-full")
        if job.get("embeddings"):
            args.append("--embeddings")
        g = subprocess.run(args, capture_output=True, text=True)
        if "error" in o:
            rows.append(dict(job=job, error="oracle: " + o["error"], gw_refused=g.returncode != 0))
            continue
        if g.returncode != 0:
            rows.append(dict(job=job, error="gpuwatch: " + g.stderr.strip(), gw_refused=True,
                             oracle_ok=True))
            continue
        h = json.loads(g.stdout)["requested"]["host"]
        out_truth = round(o["output_mib"] * 1024 * 1024)
        row = dict(job=job, resolution=round(0.005 * 1024 * 1024))
        row["weights"] = (h["weights"], o["model"])
        row["kv"] = (h["kv"], o["kv"])
        row["compute"] = (h["compute"], o["compute"])
        row["output"] = (h["output"], out_truth)
        row["total"] = (h["weights"] + h["kv"] + h["compute"] + h["output"],
                        o["model"] + o["kv"] + o["compute"] + out_truth)
        row["kv_plus_compute"] = (h["kv"] + h["compute"], o["kv"] + o["compute"])
        row["n_ctx"] = (json.loads(g.stdout)["requested"]["n_ctx"], o["n_ctx"])
        rows.append(row)
    return rows


def write_models(outdir, names=None):
    os.makedirs(outdir, exist_ok=True)
    paths = {}
    for name, spec in MODELS.items():
        if names and name not in names:
            continue
        p = os.path.join(outdir, f"{name}.gguf")
        model_writer.write_model(p, spec)
        paths[name] = p
    return paths


def run_oracle(node_modules, jobs):
    """Runs oracle.mjs on jobs (list of dicts); returns results in order."""
    inp = "".join(json.dumps(j) + "\n" for j in jobs)
    r = subprocess.run(["node", os.path.join(HERE, "oracle.mjs"), node_modules], input=inp,
                       capture_output=True, text=True, check=True)
    res = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    if len(res) != len(jobs):
        raise RuntimeError(f"oracle returned {len(res)} results for {len(jobs)} jobs: {r.stderr[-2000:]}")
    return res


def run_gpuwatch(gpuwatch, job):
    args = [gpuwatch, "fit", job["model"], "--cpu", "--json", "-c", str(job["n_ctx"]),
            "-b", str(job["n_batch"]), "-ub", str(job["n_batch"]), "-np", str(job["n_seq"]),
            "-ctk", job["type_k"], "-ctv", job["type_v"], "-fa", "on" if job["flash_attn"] else "off"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)["requested"]


def compare(gpuwatch, node_modules, models, cfgs):
    """Runs the matrix; returns rows with per-component errors."""
    jobs = []
    for name, path in models.items():
        for c in cfgs:
            jobs.append(dict(c, model=path, name=name))
    oracle = run_oracle(node_modules, [{k: v for k, v in j.items() if k != "name"} for j in jobs])
    rows = []
    for job, o in zip(jobs, oracle):
        if "error" in o:
            try:
                run_gpuwatch(gpuwatch, job)
                refused = False
            except RuntimeError:
                refused = True
            rows.append(dict(job=job, error="oracle: " + o["error"], gw_refused=refused))
            continue
        g = run_gpuwatch(gpuwatch, job)
        h = g["host"]
        res = o["resolution"]
        row = dict(job=job, resolution=res)
        truth = {"weights": o["model"], "kv": o["kv"], "compute": o["compute"],
                 "output": o["output"]}
        truth["total"] = sum(truth.values())
        est = {"weights": h["weights"], "kv": h["kv"], "compute": h["compute"], "output": h["output"]}
        est["total"] = sum(est.values())
        for k in truth:
            row[k] = (est[k], truth[k])
        # kv and compute come from a 0.01 MiB log figure: +-res is not an error
        row["kv_plus_compute"] = (h["kv"] + h["compute"], o["kv_plus_compute"])
        row["n_ctx"] = (g["n_ctx"], o["n_ctx"])
        rows.append(row)
    return rows


def rel_err(pair, slack=0):
    est, truth = pair
    d = abs(est - truth)
    d = max(0, d - slack)
    return d / truth if truth else (0.0 if d == 0 else float("inf"))


def summarize(rows):
    """Worst relative error per component (log-resolution slack applied to
    kv/compute/output, which llama.cpp reports in 0.01 MiB)."""
    worst = {}
    for r in rows:
        if "error" in r:
            continue
        res = r["resolution"]
        for k, slack in (("weights", 0), ("kv", res), ("compute", res), ("output", res),
                         ("total", 2 * res), ("kv_plus_compute", 0)):
            e = rel_err(r[k], slack)
            if k not in worst or e > worst[k][0]:
                worst[k] = (e, r["job"]["name"], {x: r["job"][x] for x in r["job"] if x not in ("model", "name")})
    return worst


def table(rows):
    lines = [f"{'model':<11} {'ctx':>6} {'b':>5} {'np':>3} {'k/v':>10} {'fa':>3} "
             f"{'weights%':>9} {'kv%':>8} {'compute%':>9} {'total%':>8}"]
    for r in rows:
        j = r["job"]
        if "error" in r:
            lines.append(f"{j['name']:<11} {j['n_ctx']:>6} {j['n_batch']:>5} {j['n_seq']:>3} "
                         f"{j['type_k'] + '/' + j['type_v']:>10} {'on' if j['flash_attn'] else 'off':>3} "
                         f"refused by llama.cpp; gpuwatch {'refuses too' if r.get('gw_refused') else 'ACCEPTS'}")
            continue
        res = r["resolution"]
        lines.append(
            f"{j['name']:<11} {j['n_ctx']:>6} {j['n_batch']:>5} {j['n_seq']:>3} "
            f"{j['type_k'] + '/' + j['type_v']:>10} {'on' if j['flash_attn'] else 'off':>3} "
            f"{100 * rel_err(r['weights']):>9.4f} {100 * rel_err(r['kv'], res):>8.4f} "
            f"{100 * rel_err(r['compute'], res):>9.3f} {100 * rel_err(r['total'], 2 * res):>8.4f}")
    return "\n".join(lines)
