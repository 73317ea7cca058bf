// oracle.mjs — real llama.cpp (node-llama-cpp's CPU build) as the ground truth
// for the estimator.
//
// Owns: loading a GGUF with llama.cpp's no_alloc dry run (nothing is
// allocated, so a 70B-shaped sparse file costs nothing) for given context
// parameters and reporting the bytes llama.cpp itself computed:
//   model    exact: llama_model::memory_breakdown() (sum over buffer types)
//   kv       exact sum kv+compute (llama_context::memory_breakdown()) minus
//            the compute figure below
//   compute  llama.cpp's "compute buffer size = X MiB" log line (2 decimals:
//            +-0.005 MiB, reported as "resolution")
//   output   llama.cpp's "output buffer size = X MiB" log line (same)
// Invariant: no number here comes from gpuwatch; everything is llama.cpp's.
//
// Usage: node oracle.mjs NODE_MODULES_DIR < jobs.jsonl > results.jsonl
// One job per line: {"model": PATH, "n_ctx": 4096, "n_batch": 512,
//   "n_seq": 1, "type_k": "f16", "type_v": "f16", "flash_attn": false,
//   "swa_full": false}. Jobs on the same model reuse the loaded model.
// Note: node-llama-cpp's binding sets n_ubatch = n_batch and a non-unified
// KV cache, so the oracle covers exactly those settings.
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";

const modulesDir = path.resolve(process.argv[2] || "node_modules");
const require = createRequire(path.join(modulesDir, "noop.js"));
const nlc = await import(require.resolve("node-llama-cpp"));

const GGML = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, q8_0: 8, bf16: 30, iq4_nl: 20 };

let lines = [];
const llama = await nlc.getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
    logLevel: nlc.LlamaLogLevel.info,
    logger: (level, message) => { lines.push(message); },
});

const MiB = 1024 * 1024;
function grab(re) {
    let v = null;
    for (const l of lines) {
        const m = l.match(re);
        if (m) v = (v || 0) + Math.round(parseFloat(m[1]) * MiB);
    }
    return v;
}

let current = { path: null, model: null, modelBytes: null };

async function loadModel(p) {
    if (current.path === p) return current;
    if (current.model) await current.model.dispose();
    lines = [];
    const m = new llama._bindings.AddonModel(p, { gpuLayers: 0, noAlloc: true, useMmap: false, useMlock: false });
    if (!(await m.init())) {
        await new Promise((r) => setTimeout(r, 50)); // let the log lines arrive
        throw new Error("llama.cpp failed to load the model: " + lines.filter((l) => /error|fail|wrong|missing/i.test(l)).slice(-3).join(" | "));
    }
    if (false) throw new Error("llama.cpp failed to load the model: " + lines.slice(-3).join(" | "));
    const bd = m.getMemoryBreakdown();
    current = { path: p, model: m, modelBytes: bd.cpuRam + bd.gpuVram, modelLog: grab(/model buffer size =\s*([\d.]+) MiB/) };
    return current;
}

async function run(job) {
    const t0 = performance.now();
    const cur = await loadModel(job.model);
    lines = [];
    const opts = {
        contextSize: job.n_ctx, batchSize: job.n_batch ?? 512, sequences: job.n_seq ?? 1,
        flashAttention: !!job.flash_attn, swaFullCache: !!job.swa_full,
        kvCacheKeyType: GGML[(job.type_k ?? "f16").toLowerCase()],
        kvCacheValueType: GGML[(job.type_v ?? "f16").toLowerCase()],
        threads: 1,
    };
    const ctx = new llama._bindings.AddonContext(cur.model, opts);
    let ok = false;
    try {
        ok = await ctx.init();
    } catch (e) {
        return { job, error: String(e && e.message || e), log: lines.slice(-4) };
    }
    if (!ok) return { job, error: "context init failed", log: lines.slice(-4) };
    // llama.cpp's log lines reach JS asynchronously: wait for both figures
    for (let i = 0; i < 400; i++) {
        if (grab(/compute buffer size =\s*([\d.]+) MiB/) !== null && grab(/output buffer size =\s*([\d.]+) MiB/) !== null)
            break;
        await new Promise((r) => setTimeout(r, 5));
    }
    const bd = ctx.getMemoryBreakdown();
    const ctxTotal = bd.cpuRam + bd.gpuVram; // kv + compute, exact
    const compute = grab(/compute buffer size =\s*([\d.]+) MiB/);
    const output = grab(/output buffer size =\s*([\d.]+) MiB/);
    const nctx = lines.map((l) => l.match(/n_ctx\s+=\s*(\d+)/)).filter(Boolean).map((m) => +m[1]);
    const nctxSeq = lines.map((l) => l.match(/n_ctx_seq\s+=\s*(\d+)/)).filter(Boolean).map((m) => +m[1]);
    const ubatch = lines.map((l) => l.match(/n_ubatch\s+=\s*(\d+)/)).filter(Boolean).map((m) => +m[1]);
    const fa = lines.map((l) => l.match(/flash_attn\s+=\s*(\S+)/)).filter(Boolean).map((m) => m[1]);
    await ctx.dispose();
    return {
        job,
        model: cur.modelBytes,
        kv: ctxTotal - compute,
        compute,
        output,
        kv_plus_compute: ctxTotal,
        resolution: Math.round(0.005 * MiB),
        n_ctx: nctx.length ? nctx[nctx.length - 1] : null,
        n_ctx_seq: nctxSeq.length ? nctxSeq[nctxSeq.length - 1] : null,
        n_ubatch: ubatch.length ? ubatch[ubatch.length - 1] : null,
        flash_attn: fa.length ? fa[fa.length - 1] : null,
        ms: performance.now() - t0,
    };
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
    if (!line.trim()) continue;
    let res;
    try {
        res = await run(JSON.parse(line));
    } catch (e) {
        res = { job: line, error: String(e && e.message || e), log: lines.slice(-4) };
    }
    if (process.env.ORACLE_LOG) res.log = lines;
    process.stdout.write(JSON.stringify(res) + "\n");
}
if (current.model) await current.model.dispose();
await llama.dispose();
