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
    # CPU buffer-type rules (AMX sizes, CPU_REPACK, the tied-output copy):
    # every type AMX packs, a Q2_K tied output (AVX-512 repack), shapes AMX
    # refuses (ne1 % 32, ne0 % 256) beside ones it takes
    "llama-kquants": {"arch": "llama", "n_layer": 2, "n_embd": 768, "n_head": 12, "n_head_kv": 4,
                      "n_ff": 2304, "n_vocab": 32008, "wtype": "Q5_K", "embd_type": "Q2_K",
                      "tied": True,
                      "tensor_types": {"attn_q": "IQ4_XS", "attn_k": "Q4_1", "attn_v": "Q4_K",
                                       "ffn_down": "Q6_K"}},
    "qwen2-q40": {"arch": "qwen2", "n_layer": 2, "n_embd": 1024, "n_head": 16, "n_head_kv": 4,
                  "n_ff": 2816, "n_vocab": 50000, "wtype": "Q4_0", "tied": True,
                  "tensor_types": {"ffn_down": "IQ4_NL", "ffn_gate": "Q8_0"}},
    "deepseek2": {"arch": "deepseek2", "n_layer": 3, "n_embd": 1024, "n_head": 8, "n_head_kv": 1,
                  "n_ff": 2048, "n_ff_exp": 256, "n_expert": 8, "n_expert_used": 2,
                  "n_vocab": 32000, "wtype": "Q8_0", "kv_lora_rank": 512, "rope_dim": 64,
                  "head_k_mla": 192, "head_v_mla": 128, "q_lora_rank": 384},
    # recurrent and hybrid: ratios of Mamba-Codestral (8 groups, 64-wide SSM
    # heads), Granite-4.0-H (Mamba-2 + GQA attention), LFM2-350M (short
    # convolutions + attention)
    "mamba2": {"arch": "mamba2", "n_layer": 3, "n_embd": 1024, "n_head": 1, "n_head_kv": 0,
               "n_vocab": 32000, "wtype": "F16", "ssm_d_inner": 2048, "ssm_d_state": 128,
               "ssm_n_group": 8, "ssm_dt_rank": 32},
    "granitehybrid": {"arch": "granitehybrid", "n_layer": 4, "n_embd": 1024, "n_head": 8,
                      "n_head_kv": [0, 0, 2, 0], "head_dim": 128, "n_ff": 4096, "n_vocab": 49160,
                      "wtype": "Q8_0", "ssm_d_inner": 2048, "ssm_d_state": 128, "ssm_n_group": 1,
                      "ssm_dt_rank": 32},
    "lfm2": {"arch": "lfm2", "n_layer": 6, "n_embd": 1024, "n_head": 16,
             "n_head_kv": [0, 0, 8, 0, 8, 0], "n_ff": 4608, "n_vocab": 65536, "wtype": "F16",
             "tied": True, "shortconv_l_cache": 3},
    # Qwen3-Next-80B-A3B ratios: 256-wide gated attention every 4th layer,
    # gated delta net with 2x as many V heads as K heads, routed + shared experts
    "qwen3next": {"arch": "qwen3next", "n_layer": 4, "n_embd": 1024, "n_head": 8, "n_head_kv": 2,
                  "head_dim": 256, "n_ff": 1024, "n_ff_exp": 256, "n_expert": 16,
                  "n_expert_used": 4, "n_vocab": 32000, "wtype": "Q8_0", "ssm_d_inner": 1024,
                  "ssm_d_state": 128, "ssm_n_group": 4, "ssm_dt_rank": 8},
    "qwen3next-ssm-in": {"arch": "qwen3next", "n_layer": 4, "n_embd": 1024, "n_head": 8,
                         "n_head_kv": 2, "head_dim": 256, "n_ff": 1024, "n_ff_exp": 256,
                         "n_expert": 16, "n_expert_used": 4, "n_vocab": 32000, "wtype": "F16",
                         "ssm_d_inner": 1024, "ssm_d_state": 128, "ssm_n_group": 4,
                         "ssm_dt_rank": 8, "ssm_in_legacy": True},
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


def run_resilient(cmd, lines):
    """Feeds lines (one job each) to cmd, which answers one JSON line per job,
    in order. When llama.cpp kills the process (a GGML_ASSERT aborts it), the
    job it died on gets {"error": "llama.cpp aborts: ...", "aborted": True}
    and a new process takes the jobs after it. Returns one dict per line."""
    out = []
    while len(out) < len(lines):
        rest = lines[len(out):]
        r = subprocess.run(cmd, input="".join(rest), capture_output=True, text=True)
        got = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        out.extend(got[:len(rest)])
        if len(got) >= len(rest):
            break
        if r.returncode == 0:
            raise RuntimeError(f"{cmd[0]}: {len(got)} results for {len(rest)} jobs, exit 0: "
                               f"{r.stderr[-1000:]}")
        why = [x[x.index("GGML_"):] if "GGML_" in x else x for x in r.stderr.splitlines()
               if "GGML_ASSERT" in x or "GGML_ABORT" in x or "error" in x.lower()]
        out.append({"error": "llama.cpp aborts: " + (why[-1].strip() if why else
                                                     f"exit {r.returncode}"), "aborted": True})
    return out


def cpu_variants(bins):
    """ggml's CPU backend variants shipped in bins: [(name, score)], score
    from the library's own ggml_backend_score (0: this CPU cannot run it).
    Each library is scored in its own process, as a library built for
    instructions the CPU lacks must not take the caller down."""
    out = []
    base = os.path.join(bins, "libggml-base.so")
    for f in sorted(os.listdir(bins)):
        if not (f.startswith("libggml-cpu-") and f.endswith(".so")):
            continue
        code = ("import ctypes,sys; ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL); "
                "print(ctypes.CDLL(sys.argv[2]).ggml_backend_score())")
        r = subprocess.run([sys.executable, "-c", code, base, os.path.join(bins, f)],
                           capture_output=True, text=True)
        score = int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() else 0
        out.append((f[len("libggml-cpu-"):-len(".so")], score))
    return out


def pin_variant(bins, variant, workdir):
    """A folder holding only libggml-cpu-VARIANT.so (a link), so that the
    backend loader, pointed at it, can load no other CPU variant."""
    d = os.path.join(os.path.abspath(workdir), "cpu-" + variant)
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, f"libggml-cpu-{variant}.so")
    if not os.path.islink(link):
        os.symlink(os.path.join(bins, f"libggml-cpu-{variant}.so"), link)
    return d


def run_oracle_ext(oracle, jobs, backend_dir=None):
    """Runs oracle_ext on jobs; backend_dir: where the loader looks for the
    CPU backend (a pin_variant folder), default every variant of the package."""
    exe, bins = oracle
    lines = [f"{j['model']} {j['n_ctx']} {j['n_batch']} {j['n_ubatch']} {j['n_seq']} "
             f"{int(j['unified'])} {int(j['flash_attn'])} {GGML_ID[j['type_k']]} "
             f"{GGML_ID[j['type_v']]} {int(j['swa_full'])} {int(j.get('embeddings', False))}\n"
             for j in jobs]
    return run_resilient([exe, backend_dir or bins], lines)


def fit_args(gpuwatch, job, host_cpu=None):
    """`gpuwatch fit --cpu --json` with the job's context settings."""
    args = [gpuwatch, "fit", job["model"], "--cpu", "--json", "-c", str(job["n_ctx"]),
            "-b", str(job["n_batch"]), "-ub", str(job.get("n_ubatch", job["n_batch"])),
            "-np", str(job["n_seq"]), "-ctk", job["type_k"], "-ctv", job["type_v"],
            "-fa", "on" if job["flash_attn"] else "off"]
    if job.get("unified"):
        args.append("--kv-unified")
    if job.get("swa_full"):
        args.append("--swa-full")
    if job.get("embeddings"):
        args.append("--embeddings")
    if host_cpu:
        args += ["--host-cpu", host_cpu]
    return args


def aborted_row(job, o, g):
    """A configuration llama.cpp aborts on: its message and gpuwatch's answer."""
    row = dict(job=job, error=o["error"], aborted=True, gw_refused=g.returncode != 0)
    if g.returncode == 0:
        row["gpuwatch"] = json.loads(g.stdout)["requested"]["host"]
    else:
        row["gpuwatch_error"] = g.stderr.strip()
    return row


def compare_ext(gpuwatch, oracle, models, cfgs, variant=None, backend_dir=None):
    """Like compare(), with the direct oracle: model, KV and compute bytes are
    exact on llama.cpp's side; output comes from its 0.01 MiB log line.
    variant: the CPU variant llama.cpp is pinned to (backend_dir) and that
    gpuwatch is told (--host-cpu); None: the loader's choice and gpuwatch's
    detection."""
    jobs = [dict(c, model=path, name=name) for name, path in models.items() for c in cfgs]
    res = run_oracle_ext(oracle, jobs, backend_dir)
    rows = []
    for job, o in zip(jobs, res):
        g = subprocess.run(fit_args(gpuwatch, job, variant), capture_output=True, text=True)
        if o.get("aborted"):
            rows.append(aborted_row(job, o, g))
            continue
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
    """Runs oracle.mjs on jobs (list of dicts); returns results in order (a
    job llama.cpp aborted on is marked, see run_resilient)."""
    return run_resilient(["node", os.path.join(HERE, "oracle.mjs"), node_modules],
                         [json.dumps(j) + "\n" for j in jobs])


def run_gpuwatch(gpuwatch, job):
    args = fit_args(gpuwatch, job)
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
        if o.get("aborted"):
            rows.append(aborted_row(job, o, subprocess.run(fit_args(gpuwatch, job),
                                                           capture_output=True, text=True)))
            continue
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
        if r.get("aborted"):
            gw = r.get("gpuwatch")
            ans = (f"gpuwatch: weights {gw['weights']} kv {gw['kv']} compute {gw['compute']}"
                   if gw else "gpuwatch refuses it too")
            lines.append(f"{j['name']:<11} {j['n_ctx']:>6} {j['n_batch']:>5} {j['n_seq']:>3} "
                         f"{j['type_k'] + '/' + j['type_v']:>10} {'on' if j['flash_attn'] else 'off':>3} "
                         f"llama.cpp aborts ({r['error'][len('llama.cpp aborts: '):][:60]}); {ans}")
            continue
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
