/* estimate.c — the breakdown of one layout: context resolution, layer
 * placement, weights / KV / compute / output per device and for the host.
 *
 * Owns: llama.cpp's context rules (n_ctx padding to 256, per-sequence
 * context, batch clamps, SWA cache size), its layer placement rule, the KV
 * cache sizes, the CUDA buffer rules, which buffer types hold host weights
 * (a GPU's pinned host buffer first unless no_host, else the CPU variant's
 * AMX / CPU_REPACK; hostcpu.c), and the assembly of gw_est_result
 * (the recurrent state of recurrent.c counts as KV, on the layer's device).
 * Invariants: gw_est_estimate reads only its inputs and writes only *r;
 * byte sums are overflow-checked (GW_ERANGE); on error *r is zeroed.
 */
#include "estimate/estimate_impl.h"

#include <stdio.h>
#include <string.h>

#define HOST UINT32_MAX

void gw_est_params_init(gw_est_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = 0;
    p->n_batch = 2048;
    p->n_ubatch = 512;
    p->n_seq = 1;
    p->type_k = 1; /* F16 */
    p->type_v = 1;
    p->flash_attn = GW_EST_FA_AUTO;
    p->n_gpu_layers = -1;
    p->split_mode = GW_EST_SPLIT_LAYER;
    p->backend = GW_EST_CUDA;
    p->overhead = GW_EST_DEFAULT_OVERHEAD;
    p->margin = GW_EST_DEFAULT_MARGIN;
    p->host_cpu = gw_est_cpu_variant_host();
}

static uint32_t pad256(uint32_t x)
{
    return (uint32_t)(((uint64_t)x + 255) / 256 * 256);
}

void gw__est_place_layers(uint32_t n_layer, int32_t ngl, uint32_t n_dev, const double *cum,
                          uint32_t *dev)
{
    int32_t n_all = (int32_t)n_layer;
    int32_t start = n_all + 1 - ngl;
    if (start < 0)
        start = 0;
    int32_t act = n_dev == 0 ? 0 : (ngl < n_all + 1 ? ngl : n_all + 1);
    for (int32_t il = 0; il <= n_all; il++) {
        if (il < start || il - start >= act) {
            dev[il] = HOST;
            continue;
        }
        /* llama.cpp compares floats: upper_bound(splits, float(il - start) / act) */
        float x = (float)(il - start) / (float)act;
        uint32_t d = 0;
        while (d < n_dev && !(x < (float)cum[d]))
            d++;
        dev[il] = d < n_dev ? d : n_dev - 1;
    }
}

static bool add_to(uint64_t *acc, uint64_t v)
{
    return gw__add_u64(*acc, v, acc);
}

/* Bytes of one KV tensor [width, size, n_stream] of type, padded to align,
 * with CUDA's row padding when cuda. */
static bool kv_tensor(uint32_t type, uint64_t width, uint64_t size, uint64_t n_stream, bool cuda,
                      uint64_t *out)
{
    const gw_ggml_type_info *t = gw_ggml_type(type);
    uint64_t row, n;
    if (!t || gw_ggml_row_bytes(t, width, &row) != GW_OK || !gw__mul_u64(row, size, &n) ||
        !gw__mul_u64(n, n_stream, &n))
        return false;
    if (cuda) {
        uint64_t ne[4] = {width, size, n_stream, 1};
        n = gw__est_cuda_tensor_size(t, ne, n);
    }
    return gw__est_pad(n, cuda ? GW__EST_CUDA_ALIGN : GW__EST_CPU_ALIGN, out);
}

static bool is_mla(const gw_est_model *m)
{
    return m->head_k_mla != 0 && m->head_v_mla != 0;
}

/* KV bytes of layer il (K and V), for the given backend. */
static bool kv_layer(const gw_est_model *m, const gw_est_params *p, const gw_est_result *c,
                     uint32_t il, bool cuda, uint64_t *k, uint64_t *v)
{
    *k = *v = 0;
    if (m->n_head_kv[il] == 0 || m->recr_layer[il]) /* recurrent: state, no KV */
        return true;
    uint64_t size = m->swa_layer[il] ? c->kv_size_swa : c->kv_size;
    uint64_t wk = (uint64_t)m->head_k * m->n_head_kv[il];
    if (!kv_tensor(p->type_k, wk, size, c->n_stream, cuda, k))
        return false;
    if (is_mla(m))
        return true;
    uint64_t wv = (uint64_t)m->head_v * m->n_head_kv[il];
    if (!c->flash_attn)
        for (uint32_t j = 0; j < m->n_layer; j++)
            if ((uint64_t)m->head_v * m->n_head_kv[j] > wv)
                wv = (uint64_t)m->head_v * m->n_head_kv[j];
    return kv_tensor(p->type_v, wv, size, c->n_stream, cuda, v);
}

int gw__est_kv_bytes(const gw_est_model *m, const gw_est_params *p, const gw_est_result *c,
                     uint64_t *k, uint64_t *v, gw_error *err)
{
    uint64_t sk = 0, sv = 0;
    for (uint32_t il = 0; il < m->n_layer; il++) {
        uint64_t a, b;
        if (!kv_layer(m, p, c, il, false, &a, &b) || !add_to(&sk, a) || !add_to(&sv, b))
            return gw__error_set(err, GW_ERANGE, "estimate: KV cache bytes overflow");
    }
    if (k)
        *k = sk;
    if (v)
        *v = sv;
    return GW_OK;
}

/* Bytes of a tied output's own copy of token_embd on the host: token_embd
 * (GET_ROWS) always sits in the plain CPU buffer, the output (MUL_MAT) in
 * the first of AMX, CPU_REPACK, CPU that takes it; a copy exists exactly
 * when that is not the plain buffer. bufts: the layout's host buffer types. */
static uint64_t tied_output_copy(const gw_est_model *m, const gw_est_params *p, unsigned bufts)
{
    if ((bufts & GW_EST_BUFT_AMX) && m->embd_bytes_amx)
        return m->embd_bytes_amx;
    if ((bufts & GW_EST_BUFT_REPACK) &&
        gw__est_repack_takes(p->host_cpu, m->embd_type, m->embd_rows, 2, GW_EST_OP_MUL_MAT))
        return m->embd_bytes;
    return 0;
}

/* Resolves the context parameters as llama_context's constructor does. */
static int resolve_ctx(const gw_est_model *m, const gw_est_params *p, gw_est_result *r,
                       gw_error *err)
{
    if (p->n_seq > 256)
        return gw__error_set(err, GW_EINVAL, "estimate: -np %u: at most 256 sequences", p->n_seq);
    if (p->n_batch == 0 || p->n_ubatch == 0)
        return gw__error_set(err, GW_EINVAL, "estimate: -b and -ub must be at least 1");
    if (!gw_ggml_type(p->type_k) || !gw_ggml_type(p->type_v))
        return gw__error_set(err, GW_EINVAL, "estimate: unknown KV cache type");
    uint32_t n_seq = p->n_seq ? p->n_seq : 1;
    uint32_t n_ctx = p->n_ctx ? p->n_ctx : m->n_ctx_train;
    if (n_ctx > (1u << 30))
        return gw__error_set(err, GW_EINVAL, "estimate: context %u is too large (%s)", n_ctx,
                             p->n_ctx ? "-c" : "the model's training context; give -c");
    n_ctx = pad256(n_ctx);
    uint32_t n_ctx_seq;
    if (p->kv_unified) {
        n_ctx_seq = n_ctx;
    } else {
        n_ctx_seq = pad256(n_ctx / n_seq);
        if (n_ctx_seq == 0)
            return gw__error_set(err, GW_EINVAL, "estimate: context too small for %u sequences",
                                 n_seq);
        n_ctx = n_ctx_seq * n_seq;
    }
    r->n_ctx = n_ctx;
    r->n_ctx_seq = n_ctx_seq;
    r->n_seq = n_seq;
    r->n_stream = p->kv_unified ? 1 : n_seq;
    r->n_batch = p->n_batch < n_ctx ? p->n_batch : n_ctx;
    r->n_ubatch = p->n_ubatch < r->n_batch ? p->n_ubatch : r->n_batch;
    r->kv_size = n_ctx_seq;
    r->kv_size_swa = r->kv_size;
    if (m->n_swa && !p->swa_full) {
        uint64_t w = (uint64_t)m->n_swa * (p->kv_unified ? n_seq : 1) + r->n_ubatch;
        if (w > r->kv_size)
            w = r->kv_size;
        r->kv_size_swa = pad256((uint32_t)w);
    }
    r->flash_attn = p->flash_attn != GW_EST_FA_OFF;
    const gw_ggml_type_info *tv = gw_ggml_type(p->type_v);
    if (!r->flash_attn && tv->quantized)
        return gw__error_set(err, GW_EINVAL,
                             "estimate: a quantized V cache (-ctv %s) needs flash attention (-fa on)",
                             tv->name);
    if (is_mla(m) && p->type_k != p->type_v)
        return gw__error_set(err, GW_EINVAL,
                             "estimate: %s (MLA) needs the same K and V cache types (-ctk %s, -ctv %s)",
                             m->arch_name, gw_ggml_type(p->type_k)->name, tv->name);
    const gw_ggml_type_info *tk = gw_ggml_type(p->type_k);
    if (r->flash_attn && tk->quantized && m->head_k % tk->block_elems != 0)
        return gw__error_set(err, GW_EINVAL,
                             "estimate: K cache type %s (block %u) does not divide the head size %u",
                             tk->name, tk->block_elems, m->head_k);
    return GW_OK;
}

/* The projector goes where mtmd puts it: the first GPU (llama.cpp's
 * mmproj_use_gpu, whatever -ngl and -mg say), or the host without GPUs or
 * with --no-mmproj-offload. Its compute buffer is clip.cpp's warm-up
 * reserve: the GPU part there, graph inputs on the host. */
static int place_mmproj(const gw_est_params *p, gw_est_result *r, uint32_t n_dev, bool cuda,
                        gw_error *err)
{
    bool gpu = n_dev > 0 && !p->no_mmproj_offload;
    gw_est_mem *at = gpu ? &r->device[0] : &r->host;
    at->mmproj = p->mmproj_bytes;
    if (!p->mmproj)
        return GW_OK;
    uint64_t c[2];
    int rc = gw_est_mmproj_compute(p->mmproj, r->flash_attn, gpu, cuda, c, err);
    if (rc != GW_OK)
        return rc;
    if (gpu)
        r->device[0].mmproj_compute = c[0];
    r->host.mmproj_compute = c[1];
    r->mmproj_approximate = p->mmproj->approximate;
    return GW_OK;
}

int gw_est_estimate(const gw_est_model *m, const gw_est_params *p, gw_est_result *r,
                    gw_error *err)
{
    memset(r, 0, sizeof *r);
    uint32_t n_dev = p->n_devices;
    if (n_dev > GW_EST_MAX_DEVICES) /* before anything is written to *r */
        return gw__error_set(err, GW_EINVAL, "estimate: %u devices: at most %d", n_dev,
                             GW_EST_MAX_DEVICES);
    int rc = resolve_ctx(m, p, r, err);
    if (rc != GW_OK) {
        memset(r, 0, sizeof *r);
        return rc;
    }
    r->approximate = m->approximate;
    bool cuda = n_dev > 0 && p->backend == GW_EST_CUDA;
    int32_t ngl = p->n_gpu_layers < 0 ? (int32_t)m->n_layer + 1 : p->n_gpu_layers;
    if (n_dev == 0)
        ngl = 0;
    r->n_gpu_layers = ngl;
    r->n_devices = n_dev;

    /* split points: -ts, or free memory; split mode none: main GPU only */
    double cum[GW_EST_MAX_DEVICES] = {0};
    uint32_t place_dev = n_dev;
    if (p->split_mode == GW_EST_SPLIT_NONE && n_dev > 0) {
        place_dev = 1;
        cum[0] = 1.0;
    } else if (n_dev > 0) {
        bool all_zero = true;
        for (uint32_t i = 0; i < n_dev; i++)
            if (p->tensor_split[i] > 0)
                all_zero = false;
        float sum = 0;
        for (uint32_t i = 0; i < n_dev; i++) {
            sum += all_zero ? (float)p->device_free[i] : (float)p->tensor_split[i];
            cum[i] = sum;
        }
        for (uint32_t i = 0; i < n_dev; i++)
            cum[i] = sum > 0 ? (double)((float)cum[i] / sum) : (double)(i + 1) / n_dev;
    }
    uint32_t dev[GW_EST_MAX_LAYERS + 1];
    gw__est_place_layers(m->n_layer, ngl, place_dev, cum, dev);
    if (p->split_mode == GW_EST_SPLIT_NONE && n_dev > 0)
        for (uint32_t il = 0; il <= m->n_layer; il++)
            if (dev[il] != HOST)
                dev[il] = p->main_gpu < n_dev ? p->main_gpu : 0;
    r->layer_device[0] = HOST;
    for (uint32_t il = 0; il <= m->n_layer; il++)
        r->layer_device[il + 1] = dev[il];

    bool ok = true;
    /* weights: host layers in the host buffer types of this layout */
    r->host_cpu = p->host_cpu;
    r->host_buffer_types = n_dev > 0 && !p->no_host ? 0 : gw_est_cpu_variant_buffer_types(p->host_cpu);
    bool amx = r->host_buffer_types & GW_EST_BUFT_AMX;
    ok &= add_to(&r->host.weights, amx ? m->layer_bytes_amx[0] : m->layer_bytes[0]);
    for (uint32_t il = 0; il <= m->n_layer; il++) {
        uint32_t d = dev[il];
        uint32_t slot = il + 1;
        if (d == HOST) {
            ok &= add_to(&r->host.weights, amx ? m->layer_bytes_amx[slot] : m->layer_bytes[slot]);
            if (il == m->n_layer && !m->has_output)
                ok &= add_to(&r->host.weights, tied_output_copy(m, p, r->host_buffer_types));
        } else {
            ok &= add_to(&r->device[d].weights, cuda ? m->layer_bytes_cuda[slot] : m->layer_bytes[slot]);
            if (il == m->n_layer && !m->has_output) /* tied output: a copy of token_embd */
                ok &= add_to(&r->device[d].weights, cuda ? m->embd_bytes_cuda : m->embd_bytes);
        }
    }
    /* KV: on the layer's device (offload_kqv) */
    for (uint32_t il = 0; il < m->n_layer; il++) {
        uint32_t d = dev[il];
        uint64_t k, v;
        ok &= kv_layer(m, p, r, il, d != HOST && cuda, &k, &v);
        ok &= add_to(d == HOST ? &r->host.kv : &r->device[d].kv, k);
        ok &= add_to(d == HOST ? &r->host.kv : &r->device[d].kv, v);
        uint64_t k0, v0;
        ok &= kv_layer(m, p, r, il, false, &k0, &v0);
        ok &= add_to(&r->kv_k, k0) && add_to(&r->kv_v, v0);
        /* recurrent layers: the conv / SSM state rows, beside the KV */
        uint64_t sr, ss;
        ok &= gw__est_state_bytes(m, r->n_seq, il, d != HOST && cuda, &sr, &ss);
        ok &= add_to(d == HOST ? &r->host.kv : &r->device[d].kv, sr);
        ok &= add_to(d == HOST ? &r->host.kv : &r->device[d].kv, ss);
    }
    if (!ok) {
        memset(r, 0, sizeof *r);
        return gw__error_set(err, GW_ERANGE, "estimate: byte count overflow");
    }
    /* compute: the simulated worst-case graph, per backend */
    uint64_t compute[GW_EST_MAX_DEVICES + 1] = {0};
    rc = gw__est_compute_bytes(m, r, p, err, compute);
    if (rc != GW_OK) {
        memset(r, 0, sizeof *r);
        return rc;
    }
    for (uint32_t d = 0; d < n_dev; d++)
        r->device[d].compute = compute[d];
    r->host.compute = compute[n_dev];
    /* output buffer: host */
    uint64_t outs = r->n_seq;
    r->host.output = 4 * outs * ((uint64_t)m->n_vocab + (p->embeddings ? m->n_embd : 0));
    /* projector and per-GPU overhead */
    rc = place_mmproj(p, r, n_dev, cuda, err);
    if (rc != GW_OK) {
        memset(r, 0, sizeof *r);
        return rc;
    }
    for (uint32_t d = 0; d < n_dev; d++)
        r->device[d].overhead = p->overhead;
    r->fits = true;
    for (uint32_t d = 0; d <= n_dev; d++) {
        gw_est_mem *x = d < n_dev ? &r->device[d] : &r->host;
        uint64_t t = 0;
        ok &= add_to(&t, x->weights) && add_to(&t, x->kv) && add_to(&t, x->compute) &&
              add_to(&t, x->output) && add_to(&t, x->mmproj) && add_to(&t, x->overhead) &&
              add_to(&t, x->mmproj_compute);
        x->total = t;
        if (d < n_dev) {
            uint64_t need;
            ok &= gw__add_u64(t, p->margin, &need);
            if (need > p->device_free[d])
                r->fits = false;
        }
    }
    if (!ok) {
        memset(r, 0, sizeof *r);
        return gw__error_set(err, GW_ERANGE, "estimate: byte count overflow");
    }
    return GW_OK;
}
