// llama_double.mjs — a stand-in for llama.cpp's llama-server for the pool's
// tests: the same command line, routes, JSON shapes and log lines, with REAL
// llama.cpp inference underneath (node-llama-cpp's CPU build).
//
// Owns: parsing llama-server's command line (unknown flags are ignored with
// a note), listening BEFORE the model loads (GET /health answers 503
// "Loading model" until it is ready, as llama-server does), the OpenAI
// routes (chat completions, completions, embeddings, models) and
// llama-server's /props, -np slots (requests beyond them wait in order),
// cancelling a generation when its client goes away, and a clean exit on
// SIGTERM/SIGINT.
//
// Usage: GW_NODE_MODULES=DIR node llama_double.mjs -m PATH --port N
//   [--host 127.0.0.1] [-c N] [-np N] [-ngl N] [--tensor-split a,b]
//   [--alias NAME] [--embeddings] [--api-key KEY] [-v]
// Long forms: --model, --ctx-size, --parallel, --n-gpu-layers/--gpu-layers,
// -ts, --embedding, --verbose; "--flag=value" works too. Other llama-server
// flags are ignored (a note on stderr each). DIR holds node-llama-cpp.
// GW_DOUBLE_THREADS: llama.cpp threads (default 1: a tiny model runs fastest
// on one; -t/--threads is accepted and ignored).
//
// Invariants: only node: built-ins and node-llama-cpp; greedy decoding unless
// the request asks for a temperature; every error body is OpenAI's
// {"error": {"code", "message", "type"}}; the response "model" is the
// request's model field (as llama-server), the double's own id is in
// "system_fingerprint" (llama_double/<id>/<pid>) and the X-Double-Model
// header, so a proxy test can tell which child answered.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const t_start = performance.now();
function log(msg) {
    process.stderr.write(msg + "\n");
}

// ---------------------------------------------------------------- arguments

const VALUE_FLAGS = {
    "-m": "model", "--model": "model",
    "--port": "port", "--host": "host",
    "-c": "ctx", "--ctx-size": "ctx",
    "-np": "parallel", "--parallel": "parallel",
    "-ngl": "ngl", "--n-gpu-layers": "ngl", "--gpu-layers": "ngl",
    "-ts": "tensor_split", "--tensor-split": "tensor_split",
    "-a": "alias", "--alias": "alias",
    "--api-key": "api_key",
    "-t": "threads", "--threads": "threads",
    "-n": "n_predict", "--n-predict": "n_predict", "--predict": "n_predict",
};
const BOOL_FLAGS = {
    "--embeddings": "embeddings", "--embedding": "embeddings",
    "-v": "verbose", "--verbose": "verbose", "--log-verbose": "verbose",
};

function usage(msg) {
    if (msg) log(`error: ${msg}`);
    log("usage: node llama_double.mjs -m PATH --port N [--host 127.0.0.1] [-c N] [-np N] [-ngl N]\n" +
        "       [--tensor-split a,b] [--alias NAME] [--embeddings] [--api-key KEY] [-v]\n" +
        "       (GW_NODE_MODULES=DIR: the node_modules holding node-llama-cpp)");
    process.exit(1);
}

function parseArgs(argv) {
    const o = { host: "127.0.0.1", port: 8080, ctx: 0, parallel: 1, ngl: null, tensor_split: null,
        alias: null, embeddings: false, api_key: null, verbose: false, n_predict: null, model: null };
    for (let i = 0; i < argv.length; i++) {
        let a = argv[i];
        let inline = null;
        const eq = a.indexOf("=");
        if (a.startsWith("--") && eq > 0) {
            inline = a.slice(eq + 1);
            a = a.slice(0, eq);
        }
        if (a === "-h" || a === "--help") usage();
        if (VALUE_FLAGS[a]) {
            const v = inline ?? argv[++i];
            if (v === undefined) usage(`${a} needs a value`);
            o[VALUE_FLAGS[a]] = v;
        } else if (BOOL_FLAGS[a]) {
            o[BOOL_FLAGS[a]] = true;
        } else if (a.startsWith("-")) {
            // an unknown llama-server flag: takes the next word as its value
            // unless that is another flag (a negative number is a value)
            let v = inline;
            if (v === null && i + 1 < argv.length && (!argv[i + 1].startsWith("-") || /^-\d/.test(argv[i + 1])))
                v = argv[++i];
            log(`main: note: ignoring unsupported llama-server option ${a}${v !== null ? " " + v : ""}`);
        } else {
            usage(`unexpected argument '${a}'`);
        }
    }
    if (!o.model) usage("no model: -m PATH");
    const int = (k, min) => {
        const n = Number(o[k]);
        if (!Number.isInteger(n) || n < min) usage(`${k}: '${o[k]}' is not an integer >= ${min}`);
        o[k] = n;
    };
    int("port", 0);
    int("ctx", 0);
    int("parallel", -1);
    if (o.parallel <= 0) o.parallel = 1; // -np -1 (auto) as one slot
    if (o.n_predict !== null) int("n_predict", -1);
    if (o.tensor_split !== null && !/^[\d.]+([,/][\d.]+)*$/.test(o.tensor_split))
        usage(`--tensor-split: '${o.tensor_split}' is not a list of numbers`);
    return o;
}

const args = parseArgs(process.argv.slice(2));
const modelId = args.alias || path.basename(args.model);
const threads = Math.max(1, Number(process.env.GW_DOUBLE_THREADS) || 1);

const modulesDir = process.env.GW_NODE_MODULES;
if (!modulesDir) {
    log("error: GW_NODE_MODULES is not set: it must name the node_modules folder holding node-llama-cpp");
    process.exit(1);
}
let nlc;
try {
    const require = createRequire(path.join(path.resolve(modulesDir), "noop.js"));
    nlc = await import(require.resolve("node-llama-cpp"));
} catch (e) {
    log(`error: cannot load node-llama-cpp from GW_NODE_MODULES=${modulesDir}: ${e.message}`);
    process.exit(1);
}

// ---------------------------------------------------------------- state

const state = {
    ready: false, llama: null, model: null, ctx: null, embCtx: null,
    nCtxSlot: 0, freeSeqs: [], waiting: [], nextTask: 0, closing: false, active: new Set(),
};

function errBody(code, message, type) {
    return { error: { code, message, type } };
}

function send(res, code, body, extra = {}) {
    const text = JSON.stringify(body);
    res.writeHead(code, {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": Buffer.byteLength(text),
        "X-Double-Model": modelId,
        ...extra,
    });
    res.end(text);
}

function sendErr(res, code, message, type) {
    send(res, code, errBody(code, message, type));
}

// -np slots: a free sequence each; the rest wait in arrival order
function acquireSlot(cancelled) {
    if (state.freeSeqs.length > 0 && state.waiting.length === 0)
        return Promise.resolve(state.freeSeqs.shift());
    return new Promise((resolve) => state.waiting.push({ resolve, cancelled }));
}

function releaseSlot(slot) {
    while (state.waiting.length > 0) {
        const w = state.waiting.shift();
        if (w.cancelled()) {
            w.resolve(null);
            continue;
        }
        w.resolve(slot);
        return;
    }
    state.freeSeqs.push(slot);
    state.freeSeqs.sort((a, b) => a.id - b.id);
    if (state.freeSeqs.length === args.parallel) log("srv  update_slots: all slots are idle");
}

// ---------------------------------------------------------------- inference

function contentText(c) {
    if (typeof c === "string") return c;
    if (Array.isArray(c)) return c.map((p) => (typeof p === "string" ? p : p && p.type === "text" ? p.text ?? "" : "")).join("");
    if (c == null) return "";
    throw new BadRequest("message content must be a string or an array of parts");
}

class BadRequest extends Error {
    constructor(message, type = "invalid_request_error", code = 400) {
        super(message);
        this.type = type;
        this.code = code;
    }
}

function chatPrompt(messages) {
    if (!Array.isArray(messages) || messages.length === 0)
        throw new BadRequest("'messages' is required and must be a non-empty array");
    let p = "";
    for (const m of messages) {
        if (!m || typeof m !== "object" || typeof m.role !== "string")
            throw new BadRequest("each message needs a string 'role'");
        p += `<|im_start|>${m.role}\n${contentText(m.content)}<|im_end|>\n`;
    }
    return p + "<|im_start|>assistant\n";
}

function checkContext(tokens) {
    if (tokens.length >= state.nCtxSlot)
        throw new BadRequest(`the request exceeds the available context size (${tokens.length} tokens, context ${state.nCtxSlot}), try increasing it`,
            "exceed_context_size_error");
}

function maxTokensOf(body) {
    let n = body.max_completion_tokens ?? body.max_tokens ?? body.n_predict ?? args.n_predict ?? 16;
    if (n === null) n = 16;
    if (!Number.isInteger(n) || n < -1) throw new BadRequest("'max_tokens' must be a positive integer");
    return n === -1 ? Infinity : n;
}

// Generates on one slot. onText(delta) gets decoded text as it arrives;
// isCancelled() is polled per token. Returns the counts and finish reason.
async function generate(slot, promptTokens, body, onText, isCancelled, taskId) {
    const model = state.model;
    const seq = slot.seq;
    const maxTokens = maxTokensOf(body);
    checkContext(promptTokens);
    await seq.clearHistory();
    log(`slot launch_slot_: id ${String(slot.id).padStart(2)} | task ${taskId} | processing task`);
    const t0 = performance.now();
    let tFirst = null;
    const out = [];
    let sent = "";
    let finish = "stop";
    const temperature = typeof body.temperature === "number" ? body.temperature : 0;
    const opts = { temperature };
    if (temperature > 0 && Number.isInteger(body.seed)) opts.seed = body.seed;
    if (maxTokens === 0) {
        finish = "length";
    } else {
        const it = seq.evaluate(promptTokens, opts);
        for await (const tok of it) {
            if (tFirst === null) tFirst = performance.now();
            if (isCancelled()) {
                finish = "cancelled";
                break;
            }
            out.push(tok);
            const text = model.detokenize(out);
            // hold back an incomplete UTF-8 sequence
            if (!text.endsWith("\uFFFD") && text.length > sent.length) {
                const delta = text.slice(sent.length);
                sent = text;
                await onText(delta);
            }
            if (out.length >= maxTokens) {
                finish = "length";
                break;
            }
            if (promptTokens.length + out.length >= state.nCtxSlot - 1) {
                finish = "length";
                break;
            }
        }
    }
    const text = model.detokenize(out);
    if (text.length > sent.length && finish !== "cancelled") await onText(text.slice(sent.length));
    const t1 = performance.now();
    const pMs = (tFirst ?? t1) - t0, gMs = t1 - (tFirst ?? t1);
    log(`slot print_timing: id ${String(slot.id).padStart(2)} | task ${taskId} | prompt eval time = ${pMs.toFixed(2)} ms / ${promptTokens.length} tokens, ` +
        `eval time = ${gMs.toFixed(2)} ms / ${out.length} tokens`);
    log(`slot      release: id ${String(slot.id).padStart(2)} | task ${taskId} | stop processing: n_tokens = ${promptTokens.length + out.length}, truncated = 0`);
    return { text, promptTokens: promptTokens.length, completionTokens: out.length, finish,
        timings: { prompt_n: promptTokens.length, prompt_ms: pMs, predicted_n: out.length, predicted_ms: gMs } };
}

// ---------------------------------------------------------------- routes

function now() {
    return Math.floor(Date.now() / 1000);
}

function randomId(prefix) {
    return prefix + Math.random().toString(36).slice(2, 12) + Math.random().toString(36).slice(2, 12);
}

const fingerprint = `llama_double/${modelId}/${process.pid}`;

// Runs fn(slot) on a free slot, watching the client: a client gone before or
// during the work cancels it (logged "client disconnected").
async function withSlot(req, res, taskId, fn) {
    let gone = false;
    const onClose = () => {
        if (!res.writableFinished) {
            gone = true;
            log(`srv  cancel_tasks: client disconnected, cancel task ${taskId}`);
        }
    };
    res.on("close", onClose);
    const cancelled = () => gone || state.closing;
    const slot = await acquireSlot(cancelled);
    if (slot === null) return;
    if (cancelled()) {
        releaseSlot(slot);
        return;
    }
    state.active.add(taskId);
    try {
        await fn(slot, cancelled);
    } finally {
        state.active.delete(taskId);
        releaseSlot(slot);
    }
}

function tokenizePrompt(prompt) {
    if (Array.isArray(prompt) && prompt.every((t) => Number.isInteger(t))) return prompt;
    if (typeof prompt !== "string") throw new BadRequest("'prompt' must be a string, an array of strings or an array of token ids");
    return state.model.tokenize(prompt, true);
}

async function chatCompletions(req, res, body) {
    const promptTokens = state.model.tokenize(chatPrompt(body.messages), true);
    maxTokensOf(body); // validate before any answer starts
    checkContext(promptTokens);
    const id = randomId("chatcmpl-");
    const created = now();
    const model = typeof body.model === "string" ? body.model : modelId;
    const taskId = state.nextTask++;
    await withSlot(req, res, taskId, async (slot, cancelled) => {
        if (!body.stream) {
            const r = await generate(slot, promptTokens, body, async () => {}, cancelled, taskId);
            if (cancelled()) return;
            send(res, 200, {
                choices: [{ finish_reason: r.finish, index: 0, message: { role: "assistant", content: r.text } }],
                created, model, system_fingerprint: fingerprint, object: "chat.completion",
                usage: { completion_tokens: r.completionTokens, prompt_tokens: r.promptTokens,
                    total_tokens: r.promptTokens + r.completionTokens },
                id, timings: r.timings,
            });
            return;
        }
        const chunk = (choice, extra = {}) => `data: ${JSON.stringify({
            choices: [choice], created, id, model, system_fingerprint: fingerprint,
            object: "chat.completion.chunk", ...extra })}\n\n`;
        const write = (s) => new Promise((resolve) => {
            if (cancelled() || res.destroyed) return resolve();
            if (res.write(s)) resolve();
            else {
                const done = () => { res.off("drain", done); res.off("close", done); resolve(); };
                res.on("drain", done);
                res.on("close", done);
            }
        });
        let headerSent = false;
        const start = async () => {
            if (headerSent) return;
            headerSent = true;
            res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "Connection": "keep-alive", "X-Double-Model": modelId });
            await write(chunk({ finish_reason: null, index: 0, delta: { role: "assistant", content: null } }));
        };
        try {
            await start();
            const r = await generate(slot, promptTokens, body,
                (delta) => write(chunk({ finish_reason: null, index: 0, delta: { content: delta } })),
                cancelled, taskId);
            if (cancelled()) return;
            const usage = { completion_tokens: r.completionTokens, prompt_tokens: r.promptTokens,
                total_tokens: r.promptTokens + r.completionTokens };
            await write(chunk({ finish_reason: r.finish, index: 0, delta: {} }, { usage, timings: r.timings }));
            await write("data: [DONE]\n\n");
            res.end();
        } catch (e) {
            if (!headerSent) throw e;
            // llama-server reports errors inside the stream
            await write(`error: ${JSON.stringify(errBody(e.code || 500, e.message, e.type || "server_error"))}\n\n`);
            res.end();
        }
    });
}

async function completions(req, res, body) {
    let prompts = body.prompt;
    if (prompts === undefined) throw new BadRequest("'prompt' is required");
    if (!Array.isArray(prompts) || prompts.every((t) => Number.isInteger(t))) prompts = [prompts];
    if (prompts.length === 0) throw new BadRequest("'prompt' is empty");
    const tokenLists = prompts.map(tokenizePrompt);
    maxTokensOf(body);
    tokenLists.forEach(checkContext);
    const id = randomId("cmpl-");
    const created = now();
    const model = typeof body.model === "string" ? body.model : modelId;
    const taskId = state.nextTask++;
    await withSlot(req, res, taskId, async (slot, cancelled) => {
        const base = { created, model, system_fingerprint: fingerprint, object: "text_completion", id };
        if (!body.stream) {
            const choices = [];
            let pt = 0, ct = 0;
            for (let i = 0; i < tokenLists.length; i++) {
                const r = await generate(slot, tokenLists[i], body, async () => {}, cancelled, taskId);
                if (cancelled()) return;
                choices.push({ text: r.text, index: i, logprobs: null, finish_reason: r.finish });
                pt += r.promptTokens;
                ct += r.completionTokens;
            }
            send(res, 200, { choices, ...base,
                usage: { completion_tokens: ct, prompt_tokens: pt, total_tokens: pt + ct } });
            return;
        }
        res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "Connection": "keep-alive", "X-Double-Model": modelId });
        const write = (s) => { if (!cancelled() && !res.destroyed) res.write(s); };
        const chunk = (choice, extra = {}) => write(`data: ${JSON.stringify({ choices: [choice], ...base, ...extra })}\n\n`);
        try {
            let pt = 0, ct = 0;
            for (let i = 0; i < tokenLists.length; i++) {
                const r = await generate(slot, tokenLists[i], body,
                    async (delta) => chunk({ text: delta, index: i, logprobs: null, finish_reason: null }),
                    cancelled, taskId);
                if (cancelled()) return;
                pt += r.promptTokens;
                ct += r.completionTokens;
                chunk({ text: "", index: i, logprobs: null, finish_reason: r.finish },
                    i === tokenLists.length - 1 ? { usage: { completion_tokens: ct, prompt_tokens: pt, total_tokens: pt + ct } } : {});
            }
            write("data: [DONE]\n\n");
            res.end();
        } catch (e) {
            write(`error: ${JSON.stringify(errBody(e.code || 500, e.message, e.type || "server_error"))}\n\n`);
            res.end();
        }
    });
}

async function embeddings(req, res, body) {
    if (!state.embCtx)
        throw new BadRequest("This server does not support embeddings. Start it with `--embeddings`",
            "not_supported_error", 501);
    let inputs = body.input ?? body.content;
    if (inputs === undefined) throw new BadRequest("'input' is required");
    if (!Array.isArray(inputs) || inputs.every((t) => Number.isInteger(t))) inputs = [inputs];
    if (inputs.length === 0) throw new BadRequest("'input' is empty");
    const tokenLists = inputs.map((x) => {
        const t = tokenizePrompt(x);
        if (t.length === 0) throw new BadRequest("input content cannot be empty");
        if (t.length >= state.nCtxSlot)
            throw new BadRequest(`input (${t.length} tokens) is too large to process. increase the physical batch size`,
                "exceed_context_size_error");
        return t;
    });
    const model = typeof body.model === "string" ? body.model : modelId;
    const taskId = state.nextTask++;
    await withSlot(req, res, taskId, async (slot, cancelled) => {
        const data = [];
        let pt = 0;
        for (let i = 0; i < tokenLists.length; i++) {
            const e = await state.embCtx.getEmbeddingFor(tokenLists[i]);
            if (cancelled()) return;
            // llama-server normalizes (Euclidean) by default
            const v = Array.from(e.vector);
            const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
            data.push({ object: "embedding", index: i, embedding: v.map((x) => x / norm) });
            pt += tokenLists[i].length;
        }
        log(`slot      release: id ${String(slot.id).padStart(2)} | task ${taskId} | embeddings: ${data.length} inputs, ${pt} tokens`);
        send(res, 200, { object: "list", data, model, usage: { prompt_tokens: pt, total_tokens: pt } });
    });
}

function modelsList() {
    const m = state.model;
    return {
        models: [{ name: modelId, model: modelId, modified_at: "", size: "", digest: "", type: "model",
            description: "", tags: [""], capabilities: ["completion"], parameters: "", details: {} }],
        object: "list",
        data: [{ id: modelId, object: "model", created: now(), owned_by: "llamacpp",
            meta: { vocab_type: 2, n_vocab: nVocab(), n_ctx_train: m.trainContextSize,
                n_embd: m.embeddingVectorSize, n_params: m.fileInsights.totalParameters, size: m.size } }],
    };
}

function nVocab() {
    try {
        return state.model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    } catch {
        return null;
    }
}

function props() {
    return {
        default_generation_settings: {
            id: 0, id_task: -1, n_ctx: state.nCtxSlot, speculative: false, is_processing: false,
            params: { n_predict: args.n_predict ?? -1, temperature: 0, seed: -1, stream: false },
            prompt: "", next_token: { has_next_token: true, n_remain: -1, n_decoded: 0 },
        },
        total_slots: args.parallel,
        model_alias: modelId,
        model_path: args.model,
        modalities: { vision: false, audio: false },
        chat_template: "chatml",
        bos_token: "<|endoftext|>", eos_token: "<|im_end|>",
        build_info: `llama_double (node-llama-cpp ${nlcVersion()})`,
        n_gpu_layers: args.ngl, tensor_split: args.tensor_split, embeddings: args.embeddings,
    };
}

let nlcVersionText = null;
function nlcVersion() {
    if (nlcVersionText === null) {
        try {
            const pj = path.join(path.resolve(modulesDir), "node-llama-cpp", "package.json");
            nlcVersionText = JSON.parse(fs.readFileSync(pj, "utf8")).version;
        } catch {
            nlcVersionText = "?";
        }
    }
    return nlcVersionText;
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const parts = [];
        req.on("data", (c) => parts.push(c));
        req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
        req.on("error", reject);
    });
}

const POST_ROUTES = {
    "/v1/chat/completions": chatCompletions, "/chat/completions": chatCompletions,
    "/v1/completions": completions, "/completions": completions,
    "/v1/embeddings": embeddings, "/embeddings": embeddings,
};
const PUBLIC = new Set(["/health", "/v1/health", "/models", "/v1/models"]);

async function handle(req, res) {
    const url = new URL(req.url, "http://x");
    const p = url.pathname;
    res.on("finish", () => {
        if (!(p === "/health" && !state.ready && !args.verbose))
            log(`srv  log_server_r: request: ${req.method} ${p} ${req.socket.remoteAddress} ${res.statusCode}`);
    });
    if (state.closing) return sendErr(res, 503, "Server is shutting down", "unavailable_error");
    if (p === "/health" || p === "/v1/health") {
        if (req.method !== "GET") return sendErr(res, 404, "File Not Found", "not_found_error");
        if (!state.ready) return sendErr(res, 503, "Loading model", "unavailable_error");
        return send(res, 200, { status: "ok" });
    }
    if (args.api_key && !PUBLIC.has(p)) {
        const auth = req.headers["authorization"] || "";
        const key = auth.startsWith("Bearer ") ? auth.slice(7) : req.headers["x-api-key"];
        if (key !== args.api_key) return sendErr(res, 401, "Invalid API Key", "authentication_error");
    }
    const known = (req.method === "GET" && ["/models", "/v1/models", "/props"].includes(p)) ||
        (req.method === "POST" && POST_ROUTES[p]);
    if (!known) return sendErr(res, 404, "File Not Found", "not_found_error");
    if (!state.ready) return sendErr(res, 503, "Loading model", "unavailable_error");
    if (req.method === "GET") return send(res, 200, p === "/props" ? props() : modelsList());
    const raw = await readBody(req);
    let body;
    try {
        body = JSON.parse(raw);
    } catch (e) {
        return sendErr(res, 400, `Failed to parse JSON: ${e.message}`, "invalid_request_error");
    }
    if (!body || typeof body !== "object" || Array.isArray(body))
        return sendErr(res, 400, "the request body must be a JSON object", "invalid_request_error");
    try {
        await POST_ROUTES[p](req, res, body);
    } catch (e) {
        if (res.headersSent) {
            res.destroy();
            return;
        }
        if (e instanceof BadRequest) return sendErr(res, e.code, e.message, e.type);
        log(`srv  operator(): error: ${e.stack || e}`);
        return sendErr(res, 500, String(e.message || e), "server_error");
    }
}

// ---------------------------------------------------------------- main

const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
        log(`srv  operator(): error: ${e.stack || e}`);
        if (!res.headersSent) sendErr(res, 500, String(e.message || e), "server_error");
        else res.destroy();
    });
});
server.keepAliveTimeout = 5000;

let signals = 0;
async function shutdown(sig) {
    if (++signals > 1) {
        log("Received second interrupt, terminating immediately.");
        process.exit(1);
    }
    log(`srv    operator(): operator(): cleaning up before exit... (${sig})`);
    state.closing = true;
    setTimeout(() => {
        log("main: cleanup took too long, exiting");
        process.exit(0);
    }, 3000).unref();
    server.close();
    server.closeAllConnections();
    for (const w of state.waiting.splice(0)) w.resolve(null);
    // let in-flight generations see `closing` and stop
    for (let i = 0; i < 100 && state.active.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    try {
        if (state.embCtx) await state.embCtx.dispose();
        if (state.ctx) await state.ctx.dispose();
        if (state.model) await state.model.dispose();
        if (state.llama) await state.llama.dispose();
    } catch (e) {
        log(`main: dispose: ${e.message}`);
    }
    process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

if (args.ngl !== null || args.tensor_split !== null)
    log(`main: note: CPU-only double: -ngl ${args.ngl ?? "-"} --tensor-split ${args.tensor_split ?? "-"} accepted, not applied`);
log(`build: llama_double (node-llama-cpp ${nlcVersion()}), pid ${process.pid}`);
log(`system info: n_threads = ${threads}, n_parallel = ${args.parallel}`);

await new Promise((resolve) => {
    server.once("error", (e) => {
        log(`main: couldn't bind HTTP server socket, hostname: ${args.host}, port: ${args.port}: ${e.message}`);
        process.exit(1);
    });
    server.listen(args.port, args.host, resolve);
});
const port = server.address().port;
log(`main: HTTP server is listening, hostname: ${args.host}, port: ${port}, http threads: 1`);
log("main: loading model");
log(`srv    load_model: loading model '${args.model}'`);

try {
    const level = args.verbose ? nlc.LlamaLogLevel.info : nlc.LlamaLogLevel.warn;
    state.llama = await nlc.getLlama({
        gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false,
        logLevel: level, logger: (lv, message) => log(String(message).replace(/\n$/, "")),
    });
    state.model = await state.llama.loadModel({ modelPath: path.resolve(args.model), gpuLayers: 0 });
    const total = args.ctx > 0 ? args.ctx : state.model.trainContextSize;
    state.nCtxSlot = Math.max(8, Math.floor(total / args.parallel));
    state.ctx = await state.model.createContext({
        contextSize: state.nCtxSlot, sequences: args.parallel, threads, flashAttention: false,
        ignoreMemorySafetyChecks: true,
    });
    state.nCtxSlot = state.ctx.contextSize;
    for (let i = 0; i < args.parallel; i++) state.freeSeqs.push({ id: i, seq: state.ctx.getSequence() });
    if (args.embeddings)
        state.embCtx = await state.model.createEmbeddingContext({ contextSize: state.nCtxSlot, threads,
            ignoreMemorySafetyChecks: true });
} catch (e) {
    log(`srv    load_model: failed to load model, '${args.model}': ${e.message}`);
    log("main: exiting due to model loading error");
    process.exit(1);
}
if (state.closing) await new Promise(() => {}); // a signal came while loading: shutdown() exits
log(`srv    load_model: initializing slots, n_slots = ${args.parallel}, n_ctx_slot = ${state.nCtxSlot}`);
log("main: model loaded");
log(`main: chat template, chat_template: chatml`);
state.ready = true;
log(`main: model ready in ${((performance.now() - t_start) / 1000).toFixed(2)} s`);
log(`main: server is listening on http://${args.host}:${port} - starting the main loop`);
log("srv  update_slots: all slots are idle");
