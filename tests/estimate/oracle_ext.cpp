// oracle_ext.cpp — a second way into real llama.cpp: the prebuilt libllama
// shipped in node-llama-cpp's CPU package, driven through llama.cpp's own C
// API (llama.h) and its exported llama_get_memory_breakdown (llama-ext.h).
//
// Owns: loading a GGUF with llama.cpp's no_alloc dry run and creating a
// context with ANY of llama.cpp's context parameters (unlike the
// node-llama-cpp binding, which forces n_ubatch = n_batch and a non-unified
// KV cache), then printing the exact bytes llama.cpp computed, per component
// and summed over buffer types: model, context (KV cache), compute. The
// output buffer comes from llama.cpp's "output buffer size" log line.
// Invariant: no number here comes from gpuwatch.
//
// Built by tests/estimate/matrix.py at test time against the headers of the
// same llama.cpp release (extracted from node-llama-cpp's source bundle).
// Usage: oracle_ext BINS_DIR < jobs > results; one job per line:
//   MODEL N_CTX N_BATCH N_UBATCH N_SEQ UNIFIED(0/1) FA(0/1) TYPE_K TYPE_V SWA_FULL(0/1)
//   [EMBEDDINGS(0/1)]
// one JSON object per line back.
#include "llama-ext.h"
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static double g_output_mib = -1;

static void log_cb(ggml_log_level level, const char *text, void *user)
{
    (void)level;
    (void)user;
    const char *p = strstr(text, "output buffer size =");
    if (p)
        g_output_mib = atof(p + strlen("output buffer size ="));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: oracle_ext BINS_DIR < jobs\n");
        return 2;
    }
    llama_log_set(log_cb, nullptr);
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    char line[4096];
    std::string cur_path;
    llama_model *model = nullptr;
    size_t model_bytes = 0;
    while (fgets(line, sizeof line, stdin)) {
        char path[2048];
        unsigned n_ctx, n_batch, n_ubatch, n_seq, unified, fa, tk, tv, swa_full, embd = 0;
        int got = sscanf(line, "%2047s %u %u %u %u %u %u %u %u %u %u", path, &n_ctx, &n_batch,
                         &n_ubatch, &n_seq, &unified, &fa, &tk, &tv, &swa_full, &embd);
        if (got != 10 && got != 11) {
            printf("{\"error\": \"bad job line\"}\n");
            fflush(stdout);
            continue;
        }
        if (cur_path != path) {
            if (model)
                llama_model_free(model);
            llama_model_params mp = llama_model_default_params();
            mp.n_gpu_layers = 0;
            mp.load_mode = LLAMA_LOAD_MODE_NONE; // no mmap, as the no_alloc estimate does
            mp.no_alloc = true;
            model = llama_model_load_from_file(path, mp);
            cur_path = model ? path : "";
            model_bytes = 0;
        }
        if (!model) {
            printf("{\"error\": \"model load failed\"}\n");
            fflush(stdout);
            continue;
        }
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = n_ctx;
        cp.n_batch = n_batch;
        cp.n_ubatch = n_ubatch;
        cp.n_seq_max = n_seq;
        cp.kv_unified = unified != 0;
        cp.flash_attn_type = fa ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        cp.type_k = (ggml_type)tk;
        cp.type_v = (ggml_type)tv;
        cp.swa_full = swa_full != 0;
        cp.embeddings = embd != 0;
        cp.n_threads = 1;
        cp.n_threads_batch = 1;
        g_output_mib = -1;
        llama_context *ctx = llama_init_from_model(model, cp);
        if (!ctx) {
            printf("{\"error\": \"context init failed\"}\n");
            fflush(stdout);
            continue;
        }
        size_t m = 0, c = 0, k = 0;
        for (const auto &it : llama_get_memory_breakdown(ctx)) {
            m += it.second.model;
            k += it.second.context;
            c += it.second.compute;
        }
        model_bytes = m;
        printf("{\"model\": %zu, \"kv\": %zu, \"compute\": %zu, \"output_mib\": %.2f, \"n_ctx\": %u}\n",
               model_bytes, k, c, g_output_mib, llama_n_ctx(ctx));
        fflush(stdout);
        llama_free(ctx);
    }
    if (model)
        llama_model_free(model);
    llama_backend_free();
    return 0;
}
