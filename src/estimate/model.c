/* model.c — reads what the estimator needs from a GGUF header.
 *
 * Owns: the mapping from GGUF metadata (llama.cpp's key names) to
 * gw_est_model, the per-architecture flags that shape the compute graph,
 * and the per-layer weight bytes (CPU-aligned, CUDA-padded, and as an AMX
 * host lays them out; hostcpu.c has the buffer-type rules).
 * Invariants: a model is either fully read or not returned at all; every
 * sum is overflow-checked; nothing of the gw_gguf handle is kept.
 */
#include "estimate/estimate_impl.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    gw_est_arch arch;
} arch_names[] = {
    {"llama", GW_EST_ARCH_LLAMA},       {"mistral", GW_EST_ARCH_LLAMA},
    {"qwen2", GW_EST_ARCH_QWEN2},       {"qwen3", GW_EST_ARCH_QWEN3},
    {"qwen3moe", GW_EST_ARCH_QWEN3MOE}, {"gemma2", GW_EST_ARCH_GEMMA2},
    {"gemma3", GW_EST_ARCH_GEMMA3},     {"phi3", GW_EST_ARCH_PHI3},
    {"command-r", GW_EST_ARCH_COMMAND_R}, {"deepseek2", GW_EST_ARCH_DEEPSEEK2},
    {"gpt-oss", GW_EST_ARCH_GPT_OSS},   {"mamba2", GW_EST_ARCH_MAMBA2},
    {"granitehybrid", GW_EST_ARCH_GRANITE_HYBRID}, {"lfm2", GW_EST_ARCH_LFM2},
    {"qwen3next", GW_EST_ARCH_QWEN3NEXT},
};

static bool get_u32(const gw_gguf *g, gw_gguf_str arch, const char *suffix, uint32_t *out)
{
    char key[160];
    return gw_gguf_get_u32(g, gw_gguf_key(key, sizeof key, arch, suffix), out);
}

/* A per-layer u32 (scalar, or array with one entry per layer). */
static bool get_per_layer(const gw_gguf *g, gw_gguf_str arch, const char *suffix, uint32_t n_layer,
                          uint32_t *out, bool *found)
{
    char key[160];
    gw_gguf_key(key, sizeof key, arch, suffix);
    *found = false;
    uint32_t v;
    if (gw_gguf_get_u32(g, key, &v)) {
        for (uint32_t i = 0; i < n_layer; i++)
            out[i] = v;
        *found = true;
        return true;
    }
    uint64_t count;
    const gw_gguf_kv *kv = gw_gguf_get_array(g, key, NULL, &count);
    if (!kv)
        return true;
    if (count != n_layer)
        return false;
    gw_gguf_iter it;
    gw_gguf_value val;
    gw_gguf_iter_init(&it, kv);
    for (uint32_t i = 0; gw_gguf_iter_next(&it, &val); i++)
        if (!gw_gguf_value_u32(&val, &out[i]))
            return false;
    *found = true;
    return true;
}

int gw__est_layer_flags(const gw_gguf *g, const char *key, uint32_t n_layer, bool *flags)
{
    uint64_t cnt;
    const gw_gguf_kv *kv = gw_gguf_get_array(g, key, NULL, &cnt);
    if (!kv)
        return 0;
    if (cnt != n_layer)
        return -1;
    gw_gguf_iter it;
    gw_gguf_value v;
    gw_gguf_iter_init(&it, kv);
    for (uint32_t i = 0; i < n_layer && gw_gguf_iter_next(&it, &v); i++) {
        bool b = false;
        uint32_t u = 0;
        flags[i] = gw_gguf_value_bool(&v, &b) ? b : gw_gguf_value_u32(&v, &u) && u;
    }
    return 1;
}

/* Layer slot of a tensor: 0 input, 1 + il block il, 1 + n_layer output. */
static uint32_t layer_slot(gw_gguf_str name, uint32_t n_layer)
{
    if (name.len > 4 && memcmp(name.ptr, "blk.", 4) == 0) {
        uint64_t il = 0;
        size_t i = 4;
        while (i < name.len && name.ptr[i] >= '0' && name.ptr[i] <= '9' && il < 100000)
            il = il * 10 + (uint64_t)(name.ptr[i++] - '0');
        if (i > 4 && il < n_layer)
            return (uint32_t)il + 1;
        return n_layer + 1; /* extra blocks (MTP/nextn): counted with the output */
    }
    if (name.len >= 10 && memcmp(name.ptr, "token_embd", 10) == 0)
        return 0;
    return n_layer + 1;
}

uint64_t gw__est_cuda_tensor_size(const gw_ggml_type_info *t, const uint64_t ne[4], uint64_t nbytes)
{
    uint64_t size = nbytes, extra;
    if (t->quantized && ne[0] % GW__EST_ROW_PAD != 0 &&
        gw_ggml_row_bytes(t, GW__EST_ROW_PAD - ne[0] % GW__EST_ROW_PAD, &extra) == GW_OK)
        size += extra;
    return size;
}

/* CPU-aligned bytes of tensor t in an AMX variant's weight buffers: AMX's
 * own size when AMX takes it (a MUL_MAT weight of a type and shape it
 * packs), else plain_padded; false on overflow. */
static bool amx_bytes(const gw_gguf_tensor *t, gw_est_weight_op op, uint64_t plain_padded,
                      uint64_t *out)
{
    uint64_t size;
    if (!gw__est_amx_takes(t->type, t->ne, t->nbytes, op, &size)) {
        *out = plain_padded;
        return true;
    }
    return gw__est_pad(size, GW__EST_CPU_ALIGN, out);
}

static int fail(gw_est_model *m, gw_error *err, int code, const char *fmt, const char *what)
{
    /* format first: what may point into m */
    int rc = gw__error_set(err, code, fmt, what);
    gw_est_model_free(m);
    return rc;
}

int gw_est_model_read(const gw_gguf *g, gw_est_model **out, gw_error *err)
{
    assert(gw__est_weight_names_sorted() && gw__est_cpu_table_check());
    *out = NULL;
    gw_est_model *m = calloc(1, sizeof *m);
    if (!m)
        return gw__error_set(err, GW_ENOMEM, "estimate: out of memory");
    gw_gguf_str arch;
    if (!gw_gguf_get_str(g, "general.architecture", &arch))
        return fail(m, err, GW_ENOTSUP, "%s: no general.architecture: not a model file",
                    "estimate");
    if (arch.len == 0 || arch.len >= sizeof m->arch_name || memchr(arch.ptr, 0, arch.len))
        return fail(m, err, GW_ENOTSUP,
                    "%s: bad general.architecture (empty, over 31 bytes or with a NUL)", "estimate");
    memcpy(m->arch_name, arch.ptr, arch.len);
    m->arch = GW_EST_ARCH_GENERIC;
    for (size_t i = 0; i < GW__ARRAY_LEN(arch_names); i++)
        if (gw_gguf_str_eq(arch, arch_names[i].name))
            m->arch = arch_names[i].arch;
    m->approximate = m->arch == GW_EST_ARCH_GENERIC;

    if (!get_u32(g, arch, "block_count", &m->n_layer) || m->n_layer == 0)
        return fail(m, err, GW_ENOTSUP,
                    "estimate: architecture '%s' has no <arch>.block_count: not a language model "
                    "gpuwatch can estimate",
                    m->arch_name);
    if (m->n_layer > GW_EST_MAX_LAYERS)
        return fail(m, err, GW_ENOTSUP, "estimate: %s: more than 1024 layers", m->arch_name);
    if (!get_u32(g, arch, "embedding_length", &m->n_embd) || m->n_embd == 0)
        return fail(m, err, GW_EPARSE, "estimate: missing %s.embedding_length", m->arch_name);
    uint32_t heads[GW_EST_MAX_LAYERS];
    bool found;
    /* attention-free (mamba2): no head counts, no KV cache */
    bool no_attn = m->arch == GW_EST_ARCH_MAMBA2;
    if (!get_per_layer(g, arch, "attention.head_count", m->n_layer, heads, &found) ||
        (!no_attn && (!found || heads[0] == 0)))
        return fail(m, err, GW_EPARSE, "estimate: missing or bad %s.attention.head_count",
                    m->arch_name);
    m->n_head = found ? heads[0] : 0;
    if (no_attn)
        m->n_head = 0;
    for (uint32_t i = 0; i < m->n_layer; i++)
        m->n_head_kv[i] = m->n_head;
    if (!get_per_layer(g, arch, "attention.head_count_kv", m->n_layer, m->n_head_kv, &found))
        return fail(m, err, GW_EPARSE, "estimate: bad %s.attention.head_count_kv", m->arch_name);
    get_u32(g, arch, "feed_forward_length", &m->n_ff);
    if (!get_u32(g, arch, "context_length", &m->n_ctx_train))
        m->n_ctx_train = 4096;
    m->head_k = m->head_v = m->n_head ? m->n_embd / m->n_head : 0;
    get_u32(g, arch, "attention.key_length", &m->head_k);
    get_u32(g, arch, "attention.value_length", &m->head_v);
    get_u32(g, arch, "expert_count", &m->n_expert);
    get_u32(g, arch, "expert_used_count", &m->n_expert_used);
    if (!get_u32(g, arch, "expert_feed_forward_length", &m->n_ff_exp))
        m->n_ff_exp = m->n_expert_used ? m->n_ff / m->n_expert_used : m->n_ff;
    if (m->arch == GW_EST_ARCH_LLAMA)
        m->n_ff_exp = m->n_ff;
    get_u32(g, arch, "expert_shared_count", &m->n_expert_shared);
    get_u32(g, arch, "leading_dense_block_count", &m->n_dense_lead);
    get_u32(g, arch, "attention.kv_lora_rank", &m->kv_lora_rank);
    get_u32(g, arch, "attention.q_lora_rank", &m->q_lora_rank);
    get_u32(g, arch, "rope.dimension_count", &m->rope_dim);
    get_u32(g, arch, "attention.key_length_mla", &m->head_k_mla);
    get_u32(g, arch, "attention.value_length_mla", &m->head_v_mla);

    /* sliding window: gemma2 defaults to 4096, pattern 2; gemma3 pattern 6
     * when the window is given; gpt-oss pattern 2. */
    uint32_t pattern = 0;
    bool swa_arch = false;
    switch (m->arch) {
    case GW_EST_ARCH_GEMMA2:
        m->n_swa = 4096;
        pattern = 2;
        swa_arch = true;
        break;
    case GW_EST_ARCH_GEMMA3:
        pattern = 6;
        swa_arch = true;
        break;
    case GW_EST_ARCH_GPT_OSS:
        pattern = 2;
        swa_arch = true;
        break;
    default:
        break;
    }
    if (swa_arch) {
        uint32_t w;
        if (get_u32(g, arch, "attention.sliding_window", &w))
            m->n_swa = w;
        if (m->n_swa > 0) {
            char key[160];
            gw_gguf_key(key, sizeof key, arch, "attention.sliding_window_pattern");
            if (gw__est_layer_flags(g, key, m->n_layer, m->swa_layer) <= 0) {
                gw_gguf_get_u32(g, key, &pattern);
                for (uint32_t il = 0; il < m->n_layer; il++)
                    m->swa_layer[il] = pattern == 0 || (il % pattern < pattern - 1);
            }
        }
    }

    /* bounds: every product the graph simulation forms stays inside 63 bits
     * (llama.cpp's own limits are lower: 512 layers, 1024 experts) */
    const struct {
        const char *what;
        uint32_t v, max;
    } lim[] = {
        {"embedding_length", m->n_embd, 1u << 20},   {"attention.head_count", m->n_head, 1u << 16},
        {"attention.key_length", m->head_k, 1u << 16}, {"attention.value_length", m->head_v, 1u << 16},
        {"feed_forward_length", m->n_ff, 1u << 24},  {"expert_feed_forward_length", m->n_ff_exp, 1u << 24},
        {"expert_count", m->n_expert, 1024},          {"expert_used_count", m->n_expert_used, 256},
        {"expert_shared_count", m->n_expert_shared, 1024},
        {"attention.kv_lora_rank", m->kv_lora_rank, 1u << 16},
        {"attention.q_lora_rank", m->q_lora_rank, 1u << 16},
        {"rope.dimension_count", m->rope_dim, 1u << 16},
        {"attention.key_length_mla", m->head_k_mla, 1u << 16},
        {"attention.value_length_mla", m->head_v_mla, 1u << 16},
        {"attention.sliding_window", m->n_swa, 1u << 30},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(lim); i++)
        if (lim[i].v > lim[i].max) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s.%s = %u is out of range (at most %u)", m->arch_name,
                     lim[i].what, lim[i].v, lim[i].max);
            return fail(m, err, GW_EPARSE, "estimate: %s", msg);
        }
    for (uint32_t il = 0; il < m->n_layer; il++)
        if (m->n_head_kv[il] > m->n_head || m->n_head_kv[il] > (1u << 16))
            return fail(m, err, GW_EPARSE, "estimate: %s.attention.head_count_kv larger than head_count",
                        m->arch_name);
    if (m->n_expert_used > m->n_expert)
        return fail(m, err, GW_EPARSE, "estimate: %s.expert_used_count larger than expert_count",
                    m->arch_name);
    if (m->n_expert > 0 && m->n_expert_used == 0)
        return fail(m, err, GW_EPARSE, "estimate: %s.expert_used_count missing or 0", m->arch_name);
    if (!no_attn && (m->head_k == 0 || m->head_v == 0))
        return fail(m, err, GW_EPARSE, "estimate: %s: zero attention key/value length", m->arch_name);
    if (m->arch == GW_EST_ARCH_DEEPSEEK2 && m->head_k_mla && m->head_v_mla &&
        (m->rope_dim >= m->head_k_mla || m->head_k != m->kv_lora_rank + m->rope_dim))
        return fail(m, err, GW_EPARSE, "estimate: %s: inconsistent MLA dimensions", m->arch_name);

    int rc = gw__est_recr_read(g, m, err);
    if (rc != GW_OK) {
        gw_est_model_free(m);
        return rc;
    }

    /* deepseek2 without MLA tensors (legacy wkv_b files) has no exact graph here */
    if (m->arch == GW_EST_ARCH_DEEPSEEK2 && !(m->head_k_mla && m->head_v_mla && m->kv_lora_rank))
        m->approximate = true;
    bool norm_w = false;
    char key[160];
    if (gw_gguf_get_bool(g, gw_gguf_key(key, sizeof key, arch, "expert_weights_norm"), &norm_w))
        m->expert_weights_norm = norm_w;
    else
        m->expert_weights_norm = m->arch != GW_EST_ARCH_DEEPSEEK2;

    /* graph shape flags */
    m->qkv_bias = m->arch == GW_EST_ARCH_QWEN2 || m->arch == GW_EST_ARCH_GPT_OSS;
    m->qk_norm = m->arch == GW_EST_ARCH_QWEN3 || m->arch == GW_EST_ARCH_QWEN3MOE ||
                 m->arch == GW_EST_ARCH_GEMMA3;
    m->post_norms = m->arch == GW_EST_ARCH_GEMMA2 || m->arch == GW_EST_ARCH_GEMMA3;
    m->attn_softcap = m->arch == GW_EST_ARCH_GEMMA2;
    m->parallel_ffn = m->arch == GW_EST_ARCH_COMMAND_R;
    m->sinks = m->arch == GW_EST_ARCH_GPT_OSS;

    /* tensors */
    size_t nt = gw_gguf_tensor_count(g);
    uint32_t slots = m->n_layer + 2;
    m->layer_bytes = calloc(slots, sizeof *m->layer_bytes);
    m->layer_bytes_cuda = calloc(slots, sizeof *m->layer_bytes_cuda);
    m->layer_tensors = calloc(slots, sizeof *m->layer_tensors);
    m->layer_bytes_amx = calloc(slots, sizeof *m->layer_bytes_amx);
    if (!m->layer_bytes || !m->layer_bytes_cuda || !m->layer_tensors || !m->layer_bytes_amx)
        return fail(m, err, GW_ENOMEM, "%s: out of memory", "estimate");
    bool has_embd = false;
    for (size_t i = 0; i < nt; i++) {
        const gw_gguf_tensor *t = gw_gguf_tensor_at(g, i);
        uint32_t slot = layer_slot(t->name, m->n_layer);
        uint64_t cpu, cuda, amx;
        if (!gw__est_pad(t->nbytes, GW__EST_CPU_ALIGN, &cpu) ||
            !gw__est_pad(gw__est_cuda_tensor_size(t->info, t->ne, t->nbytes), GW__EST_CUDA_ALIGN,
                         &cuda) ||
            !amx_bytes(t, gw__est_weight_op(t->name.ptr, t->name.len), cpu, &amx) ||
            !gw__add_u64(m->layer_bytes[slot], cpu, &m->layer_bytes[slot]) ||
            !gw__add_u64(m->layer_bytes_cuda[slot], cuda, &m->layer_bytes_cuda[slot]) ||
            !gw__add_u64(m->layer_bytes_amx[slot], amx, &m->layer_bytes_amx[slot]))
            return fail(m, err, GW_ERANGE, "%s: weight bytes overflow", "estimate");
        m->layer_tensors[slot]++;
        if (gw_gguf_str_eq(t->name, "token_embd.weight")) {
            has_embd = true;
            m->embd_bytes = cpu;
            m->embd_bytes_cuda = cuda;
            m->embd_rows = t->n_dims >= 2 ? t->ne[1] : 1;
            /* the tied output is this tensor multiplied (MUL_MAT) */
            if (!amx_bytes(t, GW_EST_OP_MUL_MAT, 0, &m->embd_bytes_amx))
                return fail(m, err, GW_ERANGE, "%s: weight bytes overflow", "estimate");
            m->embd_type = t->type;
            if (m->n_vocab == 0 && t->n_dims >= 2) /* too wide: refused below */
                m->n_vocab = t->ne[1] > UINT32_MAX ? UINT32_MAX : (uint32_t)t->ne[1];
        }
        if (gw_gguf_str_eq(t->name, "output.weight")) {
            m->has_output = true;
            m->output_type = t->type;
            if (t->n_dims >= 2)
                m->n_vocab = t->ne[1] > UINT32_MAX ? UINT32_MAX : (uint32_t)t->ne[1];
        }
        if (t->name.len > 4 && t->name.len >= 15 &&
            memcmp(t->name.ptr + t->name.len - 15, ".attn_qkv.weight", 15) == 0)
            m->fused_qkv = true;
    }
    {
        const gw_gguf_tensor *q = gw_gguf_find_tensor(g, "blk.0.attn_qkv.weight");
        m->fused_qkv = q != NULL;
    }
    uint32_t nv;
    if (get_u32(g, arch, "vocab_size", &nv))
        m->n_vocab = nv;
    else {
        uint64_t cnt;
        if (gw_gguf_get_array(g, "tokenizer.ggml.tokens", NULL, &cnt) && cnt <= UINT32_MAX)
            m->n_vocab = (uint32_t)cnt;
    }
    if (!has_embd)
        return fail(m, err, GW_ENOTSUP, "%s: no token_embd.weight: not a language model",
                    "estimate");
    if (m->n_vocab == 0 || m->n_vocab > (1u << 24))
        return fail(m, err, GW_EPARSE, "estimate: %s: vocabulary size missing or out of range",
                    m->arch_name);
    if (!m->has_output)
        m->output_type = m->embd_type;
    m->mat_type = 1; /* F16 */
    static const char *const mats[] = {"blk.0.attn_output.weight", "blk.0.ffn_down.weight",
                                       "blk.0.attn_qkv.weight"};
    for (size_t i = 0; i < GW__ARRAY_LEN(mats); i++) {
        const gw_gguf_tensor *t = gw_gguf_find_tensor(g, mats[i]);
        if (t) {
            m->mat_type = t->type;
            break;
        }
    }
    m->file_size = gw_gguf_file_size(g);
    *out = m;
    return GW_OK;
}

void gw_est_model_free(gw_est_model *m)
{
    if (!m)
        return;
    free(m->layer_bytes);
    free(m->layer_bytes_cuda);
    free(m->layer_tensors);
    free(m->layer_bytes_amx);
    free(m);
}
