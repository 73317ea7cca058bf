/* recurrent.c — the recurrent state of Mamba-2, Granite-hybrid, LFM2 and
 * Qwen3-Next models: which layers keep one, its hyper-parameters, and its
 * bytes.
 *
 * Owns: reading the <arch>.ssm.* / <arch>.shortconv.* keys, the per-arch
 * rule that marks a layer recurrent, the state widths llama.cpp derives
 * from them (llama_hparams::n_embd_r / n_embd_s) and the size of the state
 * cache (llama_memory_recurrent: one F32 row per cell, max(1, n_seq_max)
 * cells, r and s per recurrent layer, each tensor padded to the buffer's
 * alignment).
 *
 * Worked example (mamba2, d_conv 4, d_inner 2048, d_state 128, 8 groups,
 * 2 sequences, CPU): n_embd_r = (4 - 1) * (2048 + 2 * 8 * 128) = 12288
 * floats, n_embd_s = 128 * 2048 = 262144 floats; per layer r = 12288 * 4 *
 * 2 = 98304 bytes and s = 262144 * 4 * 2 = 2097152 bytes.
 *
 * Invariants:
 *  1. After gw__est_recr_read, recr_layer[il] is true exactly for the
 *     layers llama.cpp gives a recurrent state (hparams.is_recr), and
 *     has_recr says whether any layer is.
 *  2. n_embd_r and n_embd_s are computed with overflow checks; keys out of
 *     range are GW_EPARSE, never a wrapped width.
 *  3. gw__est_state_bytes is pure and overflow-checked (false on overflow).
 */
#include "estimate/estimate_impl.h"

#include <stdio.h>

static bool key_u32(const gw_gguf *g, const char *arch, const char *suffix, uint32_t *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gw_gguf_get_u32(g, key, out);
}

/* qwen3next: <arch>.attention.recurrent_layers (one bool or u32 per layer)
 * when present, else every full_attention_interval-th layer (default 4) is
 * attention and the others recurrent. */
static bool qwen3next_layers(const gw_gguf *g, gw_est_model *m)
{
    char key[160];
    snprintf(key, sizeof key, "%s.attention.recurrent_layers", m->arch_name);
    int found = gw__est_layer_flags(g, key, m->n_layer, m->recr_layer);
    if (found != 0)
        return found > 0;
    uint32_t interval = 4;
    key_u32(g, m->arch_name, "full_attention_interval", &interval);
    if (interval == 0)
        return false;
    for (uint32_t il = 0; il < m->n_layer; il++)
        m->recr_layer[il] = (il + 1) % interval != 0;
    return true;
}

int gw__est_recr_read(const gw_gguf *g, gw_est_model *m, gw_error *err)
{
    const char *a = m->arch_name;
    bool ssm = m->arch == GW_EST_ARCH_MAMBA2 || m->arch == GW_EST_ARCH_GRANITE_HYBRID ||
               m->arch == GW_EST_ARCH_QWEN3NEXT;
    if (ssm && !(key_u32(g, a, "ssm.conv_kernel", &m->ssm_d_conv) &&
                 key_u32(g, a, "ssm.inner_size", &m->ssm_d_inner) &&
                 key_u32(g, a, "ssm.state_size", &m->ssm_d_state) &&
                 key_u32(g, a, "ssm.time_step_rank", &m->ssm_dt_rank) &&
                 key_u32(g, a, "ssm.group_count", &m->ssm_n_group)))
        return gw__error_set(err, GW_EPARSE, "estimate: %s: missing %s.ssm.* keys", a, a);
    if (m->arch == GW_EST_ARCH_LFM2 && !key_u32(g, a, "shortconv.l_cache", &m->shortconv_l_cache))
        return gw__error_set(err, GW_EPARSE, "estimate: %s: missing %s.shortconv.l_cache", a, a);
    /* llama.cpp's own limits are far lower; these keep every width below
     * 2^32 and every graph product inside 63 bits */
    if (m->ssm_d_conv > 64 || m->ssm_d_inner > (1u << 20) || m->ssm_d_state > (1u << 12) ||
        m->ssm_n_group > (1u << 12) || m->ssm_dt_rank > (1u << 16) || m->shortconv_l_cache > 64)
        return gw__error_set(err, GW_EPARSE, "estimate: %s: %s.ssm / shortconv sizes out of range",
                             a, a);
    if (ssm && (m->ssm_d_conv == 0 || m->ssm_dt_rank == 0 || m->ssm_n_group == 0 ||
                m->ssm_d_inner % m->ssm_dt_rank != 0 || m->ssm_d_inner % m->ssm_n_group != 0))
        return gw__error_set(err, GW_EPARSE, "estimate: %s: inconsistent %s.ssm.* sizes", a, a);
    if (m->arch == GW_EST_ARCH_LFM2 && m->shortconv_l_cache < 2)
        return gw__error_set(err, GW_EPARSE, "estimate: %s: %s.shortconv.l_cache below 2", a, a);

    switch (m->arch) {
    case GW_EST_ARCH_MAMBA2:
        for (uint32_t il = 0; il < m->n_layer; il++)
            m->recr_layer[il] = true;
        break;
    case GW_EST_ARCH_GRANITE_HYBRID:
    case GW_EST_ARCH_LFM2: /* a layer is recurrent iff head_count_kv(il) == 0 */
        for (uint32_t il = 0; il < m->n_layer; il++)
            m->recr_layer[il] = m->n_head_kv[il] == 0;
        break;
    case GW_EST_ARCH_QWEN3NEXT:
        key_u32(g, a, "expert_shared_feed_forward_length", &m->n_ff_shexp);
        if (m->n_ff_shexp > (1u << 24))
            return gw__error_set(err, GW_EPARSE, "estimate: %s: shared expert width out of range", a);
        if (m->ssm_d_state == 0 || m->ssm_d_inner / m->ssm_dt_rank != m->ssm_d_state ||
            m->ssm_dt_rank % m->ssm_n_group != 0)
            return gw__error_set(err, GW_EPARSE, "estimate: %s: inconsistent gated delta net sizes", a);
        if (!qwen3next_layers(g, m))
            return gw__error_set(err, GW_EPARSE, "estimate: %s: bad recurrent layer pattern", a);
        break;
    default:
        return GW_OK;
    }
    for (uint32_t il = 0; il < m->n_layer; il++)
        m->has_recr |= m->recr_layer[il];

    /* n_embd_r: lfm2 n_embd * (l_cache - 1); the SSM archs (d_conv - 1) *
     * (d_inner + 2 * n_group * d_state). n_embd_s: d_state * d_inner (0 for
     * lfm2). Bounded above, so these products fit in 64 bits. */
    uint64_t r, s;
    if (m->arch == GW_EST_ARCH_LFM2) {
        r = (uint64_t)m->n_embd * (m->shortconv_l_cache - 1);
        s = 0;
    } else {
        r = (uint64_t)(m->ssm_d_conv - 1) *
            ((uint64_t)m->ssm_d_inner + 2ull * m->ssm_n_group * m->ssm_d_state);
        s = (uint64_t)m->ssm_d_state * m->ssm_d_inner;
    }
    if (r > UINT32_MAX || s > UINT32_MAX)
        return gw__error_set(err, GW_EPARSE, "estimate: %s: recurrent state too wide", a);
    m->n_embd_r = (uint32_t)r;
    m->n_embd_s = (uint32_t)s;
    return GW_OK;
}

bool gw__est_state_bytes(const gw_est_model *m, uint32_t n_seq, uint32_t il, bool cuda, uint64_t *r,
                         uint64_t *s)
{
    *r = *s = 0;
    if (il >= m->n_layer || !m->recr_layer[il])
        return true;
    uint64_t cells = n_seq > 0 ? n_seq : 1; /* mem_size = max(1, n_seq_max) */
    uint64_t align = cuda ? GW__EST_CUDA_ALIGN : GW__EST_CPU_ALIGN;
    uint64_t br, bs;
    return gw__mul_u64(4ull * m->n_embd_r, cells, &br) && gw__est_pad(br, align, r) &&
           gw__mul_u64(4ull * m->n_embd_s, cells, &bs) && gw__est_pad(bs, align, s);
}
