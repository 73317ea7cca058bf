/* test_recurrent_rules.c — llama.cpp's recurrent-state rules (mamba2,
 * granitehybrid, lfm2, qwen3next) on worked examples computed by hand from
 * llama.cpp's source: llama_hparams::n_embd_r() / n_embd_s(), the
 * llama_memory_recurrent cache (F32, max(1, n_seq_max) rows per layer), the
 * per-arch rule for which layer is recurrent, and the buffer alignment.
 * Each model is a tiny GGUF built in memory here; every expected number is
 * derived in the comment next to it, never taken from gpuwatch. */
#include "estimate/estimate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* --------------------------------------------- a tiny GGUF writer */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *x, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_u32(buf *b, const char *k, uint32_t v)
{
    str(b, k);
    u32(b, 4);
    u32(b, v);
}
static void kv_str(buf *b, const char *k, const char *v)
{
    str(b, k);
    u32(b, 8);
    str(b, v);
}
static void kv_u32_arr(buf *b, const char *k, const uint32_t *v, uint32_t n)
{
    str(b, k);
    u32(b, 9);
    u32(b, 4);
    u64(b, n);
    for (uint32_t i = 0; i < n; i++)
        u32(b, v[i]);
}

/* A model with one F32 tensor, token_embd [n_embd, 32] (32-token vocab),
 * and with q8 a Q8_0 blk.0.ffn_down.weight [32, 1] that makes Q8_0 the
 * block matrices' type; the metadata comes from add(b, arch) and counts
 * nkv keys. */
static gw_est_model *load_ex(const char *arch, uint32_t n_embd, uint32_t nkv,
                             void (*add)(buf *, const char *), bool q8)
{
    buf b = {0};
    put(&b, "GGUF", 4);
    u32(&b, 3);
    u64(&b, q8 ? 2 : 1);
    u64(&b, nkv + 2);
    kv_str(&b, "general.architecture", arch);
    char key[96];
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    kv_u32(&b, key, n_embd);
    add(&b, arch);
    str(&b, "token_embd.weight");
    u32(&b, 2);
    u64(&b, n_embd);
    u64(&b, 32);
    u32(&b, 0); /* F32 */
    u64(&b, 0);
    size_t data = (size_t)n_embd * 32 * 4;
    if (q8) { /* one Q8_0 block (34 bytes), after token_embd padded to 32 */
        str(&b, "blk.0.ffn_down.weight");
        u32(&b, 2);
        u64(&b, 32);
        u64(&b, 1);
        u32(&b, 8); /* Q8_0 */
        u64(&b, data);
        data += 64;
    }
    static const unsigned char zero[32];
    put(&b, zero, (32 - b.n % 32) % 32);
    unsigned char *z = calloc(1, data);
    assert_non_null(z);
    put(&b, z, data);
    free(z);
    gw_gguf *g = NULL;
    gw_error err = {0};
    assert_int_equal(gw_gguf_open_memory(&g, b.p, b.n, &err), GW_OK);
    gw_est_model *m = NULL;
    int rc = gw_est_model_read(g, &m, &err);
    gw_gguf_close(g);
    free(b.p);
    return rc == GW_OK ? m : NULL;
}

static gw_est_model *load(const char *arch, uint32_t n_embd, uint32_t nkv,
                          void (*add)(buf *, const char *))
{
    return load_ex(arch, n_embd, nkv, add, false);
}

static void key(char *out, const char *arch, const char *suffix)
{
    snprintf(out, 96, "%s.%s", arch, suffix);
}

/* ----------------------------------------------------------- mamba2 */

/* 3 layers, d_conv 4, d_inner 2048, d_state 128, 8 groups, 32 heads; no
 * attention keys at all (9 keys here + architecture + embedding_length). */
static void add_mamba2(buf *b, const char *a)
{
    char k[96];
    key(k, a, "block_count"), kv_u32(b, k, 3);
    key(k, a, "context_length"), kv_u32(b, k, 4096);
    key(k, a, "vocab_size"), kv_u32(b, k, 32);
    key(k, a, "ssm.conv_kernel"), kv_u32(b, k, 4);
    key(k, a, "ssm.inner_size"), kv_u32(b, k, 2048);
    key(k, a, "ssm.state_size"), kv_u32(b, k, 128);
    key(k, a, "ssm.time_step_rank"), kv_u32(b, k, 32);
    key(k, a, "ssm.group_count"), kv_u32(b, k, 8);
    kv_str(b, "tokenizer.ggml.model", "none");
}

static void test_mamba2_state(void **state)
{
    (void)state;
    gw_est_model *m = load("mamba2", 1024, 9, add_mamba2);
    assert_non_null(m);
    assert_false(m->approximate);
    /* n_embd_r = (d_conv - 1) * (d_inner + 2 * n_group * d_state)
     *          = 3 * (2048 + 2 * 8 * 128) = 3 * 4096 = 12288 floats;
     * n_embd_s = d_state * d_inner = 128 * 2048 = 262144 floats */
    assert_int_equal(m->n_embd_r, 12288);
    assert_int_equal(m->n_embd_s, 262144);
    for (uint32_t il = 0; il < 3; il++)
        assert_true(m->recr_layer[il]);
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 4096;
    p.n_seq = 2;
    p.flash_attn = GW_EST_FA_OFF;
    gw_est_result r;
    gw_error err = {0};
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    /* 2 sequences = 2 cells; per layer r = 12288 * 4 * 2 = 98304 and
     * s = 262144 * 4 * 2 = 2097152 bytes (both multiples of 32): 3 layers
     * = 3 * 2195456 = 6586368 bytes; no KV cache at all */
    assert_int_equal(r.host.kv, 6586368);
    assert_int_equal(r.kv_k + r.kv_v, 0);
    /* -np 0 still keeps one cell: max(1, n_seq_max) */
    uint64_t sr, ss;
    assert_true(gw__est_state_bytes(m, 0, 1, false, &sr, &ss));
    assert_int_equal(sr, 12288 * 4);
    assert_int_equal(ss, 262144 * 4);
    gw_est_model_free(m);
}

/* Quantized block matrices, partial offload to one GPU: the host layers'
 * SSM parameters (A, D, conv kernels: F32 in GGUF files, [1, n_head] for
 * A and D) are copied to the GPU by the scheduler; sizing them as the
 * quantized matrix type would be a row of 1 element in 32-element blocks,
 * which is no size at all. The estimate must succeed. */
static void test_mamba2_partial_offload_quantized(void **state)
{
    (void)state;
    gw_est_model *m = load_ex("mamba2", 1024, 9, add_mamba2, true);
    assert_non_null(m);
    assert_int_equal(m->mat_type, 8);
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 4096;
    p.n_devices = 1;
    p.device_free[0] = 24ull << 30;
    p.n_gpu_layers = 2; /* layers 2 and the output on the GPU, 0 and 1 on the host */
    gw_est_result r;
    gw_error err = {0};
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    /* the state follows its layer: 1 cell, (12288 + 262144) * 4 = 1097728
     * bytes per layer, one layer on the GPU and two on the host */
    assert_int_equal(r.device[0].kv, 1097728);
    assert_int_equal(r.host.kv, 2 * 1097728);
    gw_est_model_free(m);
}

/* A mamba2 file without its ssm.* keys is refused. */
static void add_mamba2_no_ssm(buf *b, const char *a)
{
    char k[96];
    key(k, a, "block_count"), kv_u32(b, k, 3);
    key(k, a, "vocab_size"), kv_u32(b, k, 32);
}

static void test_mamba2_missing_keys(void **state)
{
    (void)state;
    assert_null(load("mamba2", 1024, 2, add_mamba2_no_ssm));
}

/* ------------------------------------------------------------- lfm2 */

/* 4 layers, head_count_kv [0, 2, 0, 0]: layers 0, 2, 3 are short-conv
 * layers (l_cache 3), layer 1 attention with 2 KV heads of 50. */
static void add_lfm2(buf *b, const char *a)
{
    char k[96];
    static const uint32_t hkv[4] = {0, 2, 0, 0};
    key(k, a, "block_count"), kv_u32(b, k, 4);
    key(k, a, "context_length"), kv_u32(b, k, 4096);
    key(k, a, "vocab_size"), kv_u32(b, k, 32);
    key(k, a, "attention.head_count"), kv_u32(b, k, 2);
    key(k, a, "attention.head_count_kv"), kv_u32_arr(b, k, hkv, 4);
    key(k, a, "shortconv.l_cache"), kv_u32(b, k, 3);
    kv_str(b, "tokenizer.ggml.model", "none");
}

static void test_lfm2_state_and_kv(void **state)
{
    (void)state;
    gw_est_model *m = load("lfm2", 100, 7, add_lfm2);
    assert_non_null(m);
    assert_true(m->recr_layer[0] && !m->recr_layer[1] && m->recr_layer[2] && m->recr_layer[3]);
    /* n_embd_r = n_embd * (l_cache - 1) = 100 * 2 = 200; n_embd_s = 0 */
    assert_int_equal(m->n_embd_r, 200);
    assert_int_equal(m->n_embd_s, 0);
    uint64_t sr, ss;
    /* one sequence: r = 200 * 4 = 800 bytes: a multiple of 32 on the CPU,
     * padded to 128 in a CUDA buffer: 896 */
    assert_true(gw__est_state_bytes(m, 1, 0, false, &sr, &ss));
    assert_int_equal(sr, 800);
    assert_int_equal(ss, 0);
    assert_true(gw__est_state_bytes(m, 1, 0, true, &sr, &ss));
    assert_int_equal(sr, 896);
    /* the attention layer has no state */
    assert_true(gw__est_state_bytes(m, 1, 1, false, &sr, &ss));
    assert_int_equal(sr + ss, 0);
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 256;
    p.flash_attn = GW_EST_FA_ON;
    gw_est_result r;
    gw_error err = {0};
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    /* head size 100 / 2 = 50; layer 1: K = V = F16 [2 * 50, 256] = 100 * 2
     * * 256 = 51200 bytes each; 3 short-conv layers of 800 bytes: total
     * 2 * 51200 + 3 * 800 = 104800 */
    assert_int_equal(r.kv_k, 51200);
    assert_int_equal(r.kv_v, 51200);
    assert_int_equal(r.host.kv, 104800);
    gw_est_model_free(m);
}

/* -------------------------------------------------------- qwen3next */

/* 8 layers, full_attention_interval 4: layers 3 and 7 attention, the rest
 * gated delta net (d_conv 4, d_inner 512, d_state 128, 2 K heads, 4 V
 * heads). */
static void add_qwen3next(buf *b, const char *a)
{
    char k[96];
    key(k, a, "block_count"), kv_u32(b, k, 8);
    key(k, a, "context_length"), kv_u32(b, k, 4096);
    key(k, a, "vocab_size"), kv_u32(b, k, 32);
    key(k, a, "attention.head_count"), kv_u32(b, k, 4);
    key(k, a, "attention.head_count_kv"), kv_u32(b, k, 1);
    key(k, a, "attention.key_length"), kv_u32(b, k, 256);
    key(k, a, "attention.value_length"), kv_u32(b, k, 256);
    key(k, a, "expert_count"), kv_u32(b, k, 4);
    key(k, a, "expert_used_count"), kv_u32(b, k, 2);
    key(k, a, "full_attention_interval"), kv_u32(b, k, 4);
    key(k, a, "ssm.conv_kernel"), kv_u32(b, k, 4);
    key(k, a, "ssm.inner_size"), kv_u32(b, k, 512);
    key(k, a, "ssm.state_size"), kv_u32(b, k, 128);
    key(k, a, "ssm.time_step_rank"), kv_u32(b, k, 4);
    key(k, a, "ssm.group_count"), kv_u32(b, k, 2);
    kv_str(b, "tokenizer.ggml.model", "none");
}

static void test_qwen3next_layers(void **state)
{
    (void)state;
    gw_est_model *m = load("qwen3next", 256, 16, add_qwen3next);
    assert_non_null(m);
    /* is_recr(il) = (il + 1) % 4 != 0 */
    for (uint32_t il = 0; il < 8; il++)
        assert_int_equal(m->recr_layer[il], (il + 1) % 4 != 0);
    /* n_embd_r = 3 * (512 + 2 * 2 * 128) = 3 * 1024 = 3072;
     * n_embd_s = 128 * 512 = 65536 */
    assert_int_equal(m->n_embd_r, 3072);
    assert_int_equal(m->n_embd_s, 65536);
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 512;
    p.flash_attn = GW_EST_FA_ON;
    gw_est_result r;
    gw_error err = {0};
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    /* attention layers 3 and 7: K = V = F16 [256 * 1, 512] = 262144 bytes
     * each, per layer; 6 recurrent layers of (3072 + 65536) * 4 = 274432:
     * 4 * 262144 + 6 * 274432 = 1048576 + 1646592 = 2695168 */
    assert_int_equal(r.kv_k, 2 * 262144);
    assert_int_equal(r.host.kv, 2695168);
    gw_est_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mamba2_state),
        cmocka_unit_test(test_mamba2_partial_offload_quantized),
        cmocka_unit_test(test_mamba2_missing_keys),
        cmocka_unit_test(test_lfm2_state_and_kv),
        cmocka_unit_test(test_qwen3next_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
