/* test_cuda_rules.c — the CUDA buffer and placement rules of llama.cpp,
 * checked on worked examples computed by hand from llama.cpp's source
 * (ggml-cuda.cu get_alloc_size, llama-model.cpp load_tensors). Each number
 * below is derived in the comment next to it, not taken from gpuwatch. */
#include "estimate/estimate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define H UINT32_MAX

/* MATRIX_ROW_PADDING = 512: a quantized tensor whose ne0 % 512 != 0 gets
 * row_size(type, 512 - ne0 % 512) extra bytes, once per tensor. */
static void test_row_padding(void **state)
{
    (void)state;
    const gw_ggml_type_info *q4 = gw_ggml_type(2);   /* Q4_0: 32 elems / 18 bytes */
    const gw_ggml_type_info *q8 = gw_ggml_type(8);   /* Q8_0: 32 / 34 */
    const gw_ggml_type_info *f16 = gw_ggml_type(1);
    /* ne0 = 4096 (multiple of 512): no padding. 4096/32*18 = 2304 per row. */
    uint64_t ne_a[4] = {4096, 4096, 1, 1};
    assert_int_equal(gw__est_cuda_tensor_size(q4, ne_a, 2304ull * 4096), 2304ull * 4096);
    /* ne0 = 2880 (gpt-oss): 2880 % 512 = 320, pad 192 elements = 6 blocks of
     * Q8_0 = 6 * 34 = 204 bytes added to 2880/32*34*ne1 = 3060*ne1. */
    uint64_t ne_b[4] = {2880, 100, 1, 1};
    assert_int_equal(gw__est_cuda_tensor_size(q8, ne_b, 3060ull * 100), 3060ull * 100 + 204);
    /* F16 is not quantized: never padded. */
    uint64_t ne_c[4] = {2880, 100, 1, 1};
    assert_int_equal(gw__est_cuda_tensor_size(f16, ne_c, 5760ull * 100), 5760ull * 100);
}

/* i_gpu_start = max(n_layer + 1 - ngl, 0); act = min(ngl, n_layer + 1);
 * device = upper_bound(cum, (il - start) / act). */
static void test_placement_full_one_gpu(void **state)
{
    (void)state;
    double cum[1] = {1.0};
    uint32_t dev[33];
    /* 32 layers, -ngl 99: start = max(33 - 99, 0) = 0, act = 33: all 33
     * (32 blocks + output) on GPU 0. */
    gw__est_place_layers(32, 99, 1, cum, dev);
    for (int i = 0; i <= 32; i++)
        assert_int_equal(dev[i], 0);
}

static void test_placement_partial(void **state)
{
    (void)state;
    double cum[1] = {1.0};
    uint32_t dev[33];
    /* 32 layers, -ngl 10: start = 33 - 10 = 23; layers 23..32 (incl. the
     * output layer 32) on the GPU, 0..22 on the host. */
    gw__est_place_layers(32, 10, 1, cum, dev);
    for (int i = 0; i < 23; i++)
        assert_int_equal(dev[i], H);
    for (int i = 23; i <= 32; i++)
        assert_int_equal(dev[i], 0);
    /* -ngl 32 keeps exactly one block (layer 0) on the host: start = 1. */
    gw__est_place_layers(32, 32, 1, cum, dev);
    assert_int_equal(dev[0], H);
    assert_int_equal(dev[1], 0);
    assert_int_equal(dev[32], 0);
}

static void test_placement_split(void **state)
{
    (void)state;
    /* two GPUs with 24 GiB and 8 GiB free: splits 24/32 = 0.75, 1.0.
     * 32 layers, full offload: act = 33; layer il goes to GPU 0 while
     * il/33 < 0.75, i.e. il <= 24 (24/33 = 0.727), GPU 1 from il = 25
     * (25/33 = 0.758). */
    double cum[2] = {0.75, 1.0};
    uint32_t dev[33];
    gw__est_place_layers(32, 99, 2, cum, dev);
    for (int i = 0; i <= 24; i++)
        assert_int_equal(dev[i], 0);
    for (int i = 25; i <= 32; i++)
        assert_int_equal(dev[i], 1);
}

/* A 2-layer model held in memory, to check the per-device sums. */
static gw_est_model *tiny_model(void)
{
    static gw_est_model m;
    static uint64_t lb[4], lbc[4], lt[4];
    m = (gw_est_model){0};
    m.arch = GW_EST_ARCH_LLAMA;
    m.n_layer = 2;
    m.n_embd = 256;
    m.n_head = 4;
    m.n_ff = 512;
    m.n_vocab = 1000;
    m.n_ctx_train = 4096;
    m.n_head_kv[0] = m.n_head_kv[1] = 2;
    m.head_k = m.head_v = 64;
    m.embd_type = 8;
    m.output_type = 8;
    m.has_output = false; /* tied */
    lb[0] = 1000;  /* input layer */
    lb[1] = lb[2] = 5000;
    lb[3] = 300;   /* output_norm only: tied output */
    lbc[0] = 1024;
    lbc[1] = lbc[2] = 5120;
    lbc[3] = 384;
    m.layer_bytes = lb;
    m.layer_bytes_amx = lb; /* no AMX-packed weights */
    m.layer_bytes_cuda = lbc;
    m.layer_tensors = lt;
    m.embd_bytes = 1000;
    m.embd_bytes_cuda = 1024;
    return &m;
}

static void test_weights_per_device(void **state)
{
    (void)state;
    gw_est_model *m = tiny_model();
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 512;
    p.n_devices = 1;
    p.device_free[0] = 1ull << 34;
    gw_est_result r;
    gw_error err;
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    /* input layer always on the host: 1000 B; GPU: CUDA-padded blocks
     * 2 * 5120 + output 384 + tied copy of token_embd 1024 = 11648 */
    assert_int_equal(r.host.weights, 1000);
    assert_int_equal(r.device[0].weights, 11648);
    /* logits buffer stays on the host: 4 * n_vocab * n_seq = 4000 */
    assert_int_equal(r.host.output, 4000);
    assert_int_equal(r.device[0].output, 0);
    /* KV on the GPU: 2 layers * (K + V) * 512 cells * 2*64 * 2 bytes
     * = 2 * 2 * 512 * 256 = 524288 (each tensor a multiple of 128) */
    assert_int_equal(r.device[0].kv, 524288);
    assert_int_equal(r.host.kv, 0);
    /* per-GPU overhead is an explicit input */
    assert_int_equal(r.device[0].overhead, GW_EST_DEFAULT_OVERHEAD);
}

static void test_context_rules(void **state)
{
    (void)state;
    gw_est_model *m = tiny_model();
    gw_est_params p;
    gw_est_params_init(&p);
    gw_est_result r;
    gw_error err;
    /* n_ctx 3000 with 3 sequences: PAD(3000,256) = 3072; per sequence
     * PAD(3072/3, 256) = 1024; n_ctx = 1024 * 3 = 3072. */
    p.n_ctx = 3000;
    p.n_seq = 3;
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    assert_int_equal(r.n_ctx, 3072);
    assert_int_equal(r.n_ctx_seq, 1024);
    assert_int_equal(r.n_stream, 3);
    /* batch clamps: n_batch = min(n_ctx, 2048) = 2048, ubatch 512 */
    assert_int_equal(r.n_batch, 2048);
    assert_int_equal(r.n_ubatch, 512);
    /* a quantized V cache without flash attention is refused */
    p.type_v = 8;
    p.flash_attn = GW_EST_FA_OFF;
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_EINVAL);
}

/* -ts unset: the split is proportional to each GPU's FREE memory. With 24 GiB
 * and 8 GiB free, cum = {0.75, 1.0}; 32 layers + output fully offloaded:
 * layers 0..24 on GPU 0 (24/33 = 0.727 < 0.75), 25..31 and the output on
 * GPU 1. With -ts 1,1 instead: cum = {0.5, 1}: 0..16 on GPU 0 (16/33 =
 * 0.485), 17.. on GPU 1. */
static void test_split_by_free_memory(void **state)
{
    (void)state;
    static gw_est_model m;
    static uint64_t lb[34], lbc[34], lt[34];
    m = (gw_est_model){0};
    m.arch = GW_EST_ARCH_LLAMA;
    m.n_layer = 32;
    m.n_embd = 256;
    m.n_head = 4;
    m.n_ff = 512;
    m.n_vocab = 1000;
    m.n_ctx_train = 4096;
    for (int i = 0; i < 32; i++)
        m.n_head_kv[i] = 2;
    m.head_k = m.head_v = 64;
    m.embd_type = m.output_type = m.mat_type = 8;
    m.has_output = true;
    for (int i = 0; i < 34; i++)
        lb[i] = lbc[i] = 1024;
    m.layer_bytes = lb;
    m.layer_bytes_amx = lb; /* no AMX-packed weights */
    m.layer_bytes_cuda = lbc;
    m.layer_tensors = lt;
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 512;
    p.n_devices = 2;
    p.device_free[0] = 24ull << 30;
    p.device_free[1] = 8ull << 30;
    gw_est_result r;
    gw_error err;
    assert_int_equal(gw_est_estimate(&m, &p, &r, &err), GW_OK);
    assert_int_equal(r.layer_device[0], UINT32_MAX); /* input layer: host */
    for (int il = 0; il <= 24; il++)
        assert_int_equal(r.layer_device[il + 1], 0);
    for (int il = 25; il <= 32; il++)
        assert_int_equal(r.layer_device[il + 1], 1);
    /* weights follow: 25 blocks on GPU 0, 7 blocks + output on GPU 1 */
    assert_int_equal(r.device[0].weights, 25 * 1024);
    assert_int_equal(r.device[1].weights, 8 * 1024);
    assert_int_equal(r.host.weights, 1024);
    p.tensor_split[0] = 1;
    p.tensor_split[1] = 1;
    assert_int_equal(gw_est_estimate(&m, &p, &r, &err), GW_OK);
    assert_int_equal(r.layer_device[16 + 1], 0);
    assert_int_equal(r.layer_device[17 + 1], 1);
    /* -sm none: everything on the main GPU */
    p.split_mode = GW_EST_SPLIT_NONE;
    p.main_gpu = 1;
    assert_int_equal(gw_est_estimate(&m, &p, &r, &err), GW_OK);
    assert_int_equal(r.device[0].weights, 0);
    assert_int_equal(r.device[1].weights, 33 * 1024);
}

/* The backend scheduler rules behind the per-GPU compute buffers
 * (ggml-backend.cpp, ggml-cuda.cu offload_op): */
static void test_scheduler_rules(void **state)
{
    (void)state;
    gw_est_model *m = tiny_model();
    m->mat_type = 8; /* Q8_0 blocks: a host weight copied to the GPU costs
                        ne1 * ne0/32*34 bytes */
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 1024;
    p.n_ubatch = 512;
    p.n_devices = 1;
    p.device_free[0] = 1ull << 34;
    gw_est_result full, part, one, two;
    gw_error err;
    assert_int_equal(gw_est_estimate(m, &p, &full, &err), GW_OK);
    /* full offload: the GPU runs the graph, the host keeps the inputs and
     * the token_embd lookup ([n_embd, 512] F32 = 512 KiB at least) */
    assert_true(full.device[0].compute > 0);
    assert_true(full.host.compute >= 256ull * 512 * 4);
    /* -ngl 1 (only the output layer on the GPU): the host layers' ops on
     * host weights run on GPU 0 (op offload, batch 512 >= 32), so the GPU
     * buffer also holds copies of those weights: the FFN up matrix alone is
     * 512 rows of 256/32*34 = 272 bytes = 139264 bytes */
    p.n_gpu_layers = 1;
    assert_int_equal(gw_est_estimate(m, &p, &part, &err), GW_OK);
    assert_true(part.device[0].compute >= 139264);
    /* --no-op-offload keeps them on the host: the GPU buffer shrinks */
    p.no_op_offload = true;
    gw_est_result nooff;
    assert_int_equal(gw_est_estimate(m, &p, &nooff, &err), GW_OK);
    assert_true(nooff.device[0].compute < part.device[0].compute);
    assert_true(nooff.host.compute > part.host.compute);
    /* pipeline parallelism (2 GPUs, full offload, layer split): 4 copies of
     * every graph input, so the host buffer grows against one GPU */
    p.no_op_offload = false;
    p.n_gpu_layers = -1;
    assert_int_equal(gw_est_estimate(m, &p, &one, &err), GW_OK);
    p.n_devices = 2;
    p.device_free[1] = 1ull << 34;
    assert_int_equal(gw_est_estimate(m, &p, &two, &err), GW_OK);
    assert_true(two.device[0].compute > 0 && two.device[1].compute > 0);
    assert_true(two.host.compute > one.host.compute);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_padding),
        cmocka_unit_test(test_placement_full_one_gpu),
        cmocka_unit_test(test_placement_partial),
        cmocka_unit_test(test_placement_split),
        cmocka_unit_test(test_weights_per_device),
        cmocka_unit_test(test_context_rules),
        cmocka_unit_test(test_scheduler_rules),
        cmocka_unit_test(test_split_by_free_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
