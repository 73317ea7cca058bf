/* test_host_cpu.c — the host CPU model of the estimator: which ggml CPU
 * variant llama.cpp's loader picks for a set of CPU features, and the rules
 * of the extra buffer types that variant brings (AMX sizes, CPU_REPACK, the
 * tied-output copy). Every expected number is worked out in the comment
 * beside it from llama.cpp's source (release v0.5.0: ggml/src/CMakeLists.txt
 * variants, ggml-cpu/arch/x86/cpu-feats.cpp scores, ggml-cpu/amx/{amx,mmq}.cpp,
 * ggml-cpu/repack.cpp, src/llama-model-loader.cpp), never from gpuwatch. */
#include "estimate/estimate_impl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* x86 feature bits as hostcpu.c numbers them (the score weights of
 * cpu-feats.cpp: FMA 1, F16C 2, SSE42 4, BMI2 8, AVX 16, AVX2 32, AVX_VNNI
 * 64, AVX512 128, VBMI 256, BF16 512, AVX512_VNNI 1024, AMX_INT8 2048). */
#define FMA 1u
#define F16C 2u
#define SSE42 4u
#define BMI2 8u
#define AVX 16u
#define AVX2 32u
#define AVX_VNNI 64u
#define AVX512 128u
#define VBMI 256u
#define BF16 512u
#define VNNI 1024u
#define AMX 2048u
#define HSW (FMA | F16C | SSE42 | BMI2 | AVX | AVX2)
/* arm64: dotprod 2, fp16 4, sve 8, i8mm 16, sve2 32, sme 64 */

static void test_loader_pick(void **state)
{
    (void)state;
    /* Sapphire Rapids: every x86 feature -> sapphirerapids (score 4032) */
    assert_int_equal(gw__est_cpu_variant_for(false, HSW | AVX_VNNI | AVX512 | VBMI | BF16 | VNNI | AMX),
                     GW_EST_CPUV_SAPPHIRERAPIDS);
    /* EPYC Genoa (Zen 4): AVX-512 with VBMI, VNNI, BF16, no AMX, no AVX-VNNI
     * -> zen4 (1984) beats cooperlake (1728) and icelake (1472) */
    assert_int_equal(gw__est_cpu_variant_for(false, HSW | AVX512 | VBMI | BF16 | VNNI),
                     GW_EST_CPUV_ZEN4);
    /* EPYC Milan (Zen 3): AVX2 but no AVX-VNNI, no AVX-512 -> haswell (64);
     * alderlake needs AVX_VNNI */
    assert_int_equal(gw__est_cpu_variant_for(false, HSW), GW_EST_CPUV_HASWELL);
    /* Alder Lake: AVX2 + AVX-VNNI -> alderlake (128) */
    assert_int_equal(gw__est_cpu_variant_for(false, HSW | AVX_VNNI), GW_EST_CPUV_ALDERLAKE);
    /* Cascade Lake: AVX-512 + VNNI, no VBMI -> cascadelake (1216) */
    assert_int_equal(gw__est_cpu_variant_for(false, HSW | AVX512 | VNNI), GW_EST_CPUV_CASCADELAKE);
    /* Sandy Bridge: SSE4.2 + AVX -> sandybridge (21); nothing: x64 (1) */
    assert_int_equal(gw__est_cpu_variant_for(false, SSE42 | AVX), GW_EST_CPUV_SANDYBRIDGE);
    assert_int_equal(gw__est_cpu_variant_for(false, 0), GW_EST_CPUV_X64);
    /* AVX2 without FMA (no such CPU, but the rule): haswell requires FMA,
     * so the best is ivybridge (SSE42 | AVX | F16C, 23) */
    assert_int_equal(gw__est_cpu_variant_for(false, SSE42 | AVX | AVX2 | BMI2 | F16C),
                     GW_EST_CPUV_IVYBRIDGE);
    /* Graviton 3: dotprod, fp16, SVE, i8mm, no SVE2 -> armv8.6_1 */
    assert_int_equal(gw__est_cpu_variant_for(true, 2 | 4 | 8 | 16), GW_EST_CPUV_ARMV8_6_1);
    /* Graviton 4 / Grace: + SVE2 -> armv8.6_2 */
    assert_int_equal(gw__est_cpu_variant_for(true, 2 | 4 | 8 | 16 | 32), GW_EST_CPUV_ARMV8_6_2);
    /* Ampere Altra (Neoverse N1): dotprod + fp16 -> armv8.2_2 */
    assert_int_equal(gw__est_cpu_variant_for(true, 2 | 4), GW_EST_CPUV_ARMV8_2_2);
    assert_int_equal(gw__est_cpu_variant_for(true, 0), GW_EST_CPUV_ARMV8_0_1);
    assert_true(gw__est_cpu_table_check());
}

static void test_names(void **state)
{
    (void)state;
    gw_est_cpu_variant v = GW_EST_CPUV_NONE;
    gw_error err;
    for (int i = 0; i < GW_EST_CPUV_COUNT; i++) {
        assert_int_equal(gw_est_cpu_variant_parse(gw_est_cpu_variant_name((gw_est_cpu_variant)i), &v,
                                                  &err),
                         GW_OK);
        assert_int_equal(v, i);
    }
    assert_string_equal(gw_est_cpu_variant_name(GW_EST_CPUV_SAPPHIRERAPIDS), "sapphirerapids");
    assert_string_equal(gw_est_cpu_variant_name(GW_EST_CPUV_ARMV8_2_1), "armv8.2_1");
    assert_int_equal(gw_est_cpu_variant_parse("host", &v, &err), GW_OK);
    assert_int_equal(v, gw_est_cpu_variant_host());
    v = GW_EST_CPUV_ZEN4;
    assert_int_equal(gw_est_cpu_variant_parse("skylake", &v, &err), GW_EINVAL);
    assert_int_equal(v, GW_EST_CPUV_ZEN4); /* untouched */
    assert_non_null(strstr(err.message, "'skylake'"));
    assert_non_null(strstr(err.message, "skylakex"));
    char b[64];
    assert_string_equal(gw_est_buffer_types_str(gw_est_cpu_variant_buffer_types(GW_EST_CPUV_SAPPHIRERAPIDS),
                                                ", ", b, sizeof b),
                        "AMX, CPU_REPACK");
    /* haswell: AVX2 repack, no AMX; sse42: no kernel for any type; none */
    assert_int_equal(gw_est_cpu_variant_buffer_types(GW_EST_CPUV_HASWELL), GW_EST_BUFT_REPACK);
    assert_int_equal(gw_est_cpu_variant_buffer_types(GW_EST_CPUV_SSE42), 0);
    assert_int_equal(gw_est_cpu_variant_buffer_types(GW_EST_CPUV_NONE), 0);
    assert_int_equal(gw_est_cpu_variant_buffer_types(GW_EST_CPUV_ARMV8_2_1), GW_EST_BUFT_REPACK);
    assert_int_equal(gw_est_cpu_variant_buffer_types(GW_EST_CPUV_ARMV8_0_1), 0);
}

static void test_amx_sizes(void **state)
{
    (void)state;
    uint64_t s = 0;
    /* Q8_0 4096 x 4096: 128 blocks of 34 bytes per row + an int32
     * compensation per block = 128 * 38 = 4864 bytes/row; x 4096 rows =
     * 19922944 (plain: 128 * 34 * 4096 = 17825792) */
    assert_true(gw__est_amx_size(8, 4096, 4096, 17825792, &s));
    assert_int_equal(s, 19922944);
    /* Q4_K 4096 x 11008: 16 super-blocks of 144 + 4 bytes = 2368/row,
     * x 11008 = 26066944 (plain 16 * 144 * 11008 = 25362432) */
    assert_true(gw__est_amx_size(12, 4096, 11008, 25362432, &s));
    assert_int_equal(s, 26066944);
    /* Q5_K 2048 x 512: 8 * (176 + 4) * 512 = 737280 */
    assert_true(gw__est_amx_size(13, 2048, 512, 8 * 176 * 512, &s));
    assert_int_equal(s, 737280);
    /* IQ4_XS 1024 x 64: 4 * (136 + 2) * 64 = 35328 */
    assert_true(gw__est_amx_size(23, 1024, 64, 4 * 136 * 64, &s));
    assert_int_equal(s, 35328);
    /* Q4_0, Q4_1, Q6_K: packed at their plain size: 1024 x 32 Q4_0 =
     * 32 * 18 * 32 = 18432 */
    assert_true(gw__est_amx_size(2, 1024, 32, 18432, &s));
    assert_int_equal(s, 18432);
    /* F16 is taken (ne0 % 16 == 0) but not packed: its own size */
    assert_true(gw__est_amx_size(1, 4096, 4096, 4096ull * 4096 * 2, &s));
    assert_int_equal(s, 4096ull * 4096 * 2);
    /* refused: ne1 % 32 != 0 (output ne0 must be a multiple of 2 * TILE_N);
     * F16 with ne0 % 16 != 0; a type without AMX kernels (Q2_K, Q5_0, F32) */
    assert_false(gw__est_amx_size(8, 4096, 50000, 1, &s));
    assert_false(gw__est_amx_size(1, 2056, 64, 1, &s));
    assert_false(gw__est_amx_size(10, 4096, 4096, 1, &s));
    assert_false(gw__est_amx_size(6, 4096, 4096, 1, &s));
    assert_false(gw__est_amx_size(0, 4096, 4096, 1, &s));
    /* only MUL_MAT weights: experts (MUL_MAT_ID) and get_rows never */
    uint64_t ne[4] = {4096, 4096, 1, 1};
    assert_true(gw__est_amx_takes(8, ne, 17825792, GW_EST_OP_MUL_MAT, NULL));
    assert_false(gw__est_amx_takes(8, ne, 17825792, GW_EST_OP_MUL_MAT_ID, NULL));
    assert_false(gw__est_amx_takes(8, ne, 17825792, GW_EST_OP_OTHER, NULL));
}

static void test_repack(void **state)
{
    (void)state;
    /* x86 AVX2: Q4_0, Q4_K, IQ4_NL, MXFP4 with ne1 % 8 == 0 */
    assert_true(gw__est_repack_takes(GW_EST_CPUV_HASWELL, 2, 32000, 2, GW_EST_OP_MUL_MAT));
    assert_false(gw__est_repack_takes(GW_EST_CPUV_HASWELL, 2, 32004, 2, GW_EST_OP_MUL_MAT));
    assert_true(gw__est_repack_takes(GW_EST_CPUV_HASWELL, 39, 2880, 3, GW_EST_OP_MUL_MAT_ID));
    assert_false(gw__est_repack_takes(GW_EST_CPUV_HASWELL, 2, 32000, 3, GW_EST_OP_MUL_MAT));
    assert_false(gw__est_repack_takes(GW_EST_CPUV_HASWELL, 8, 32000, 2, GW_EST_OP_MUL_MAT));
    /* Q2_K needs AVX-512 */
    assert_false(gw__est_repack_takes(GW_EST_CPUV_HASWELL, 10, 32000, 2, GW_EST_OP_MUL_MAT));
    assert_true(gw__est_repack_takes(GW_EST_CPUV_SKYLAKEX, 10, 32000, 2, GW_EST_OP_MUL_MAT));
    /* without AVX2 nothing is repacked */
    assert_false(gw__est_repack_takes(GW_EST_CPUV_PILEDRIVER, 2, 32000, 2, GW_EST_OP_MUL_MAT));
    assert_false(gw__est_repack_takes(GW_EST_CPUV_NONE, 2, 32000, 2, GW_EST_OP_MUL_MAT));
    /* arm64 dotprod: Q8_0 and Q4_0 at ne1 % 4, K-quants at ne1 % 8 */
    assert_true(gw__est_repack_takes(GW_EST_CPUV_ARMV8_2_1, 8, 32004, 2, GW_EST_OP_MUL_MAT));
    assert_false(gw__est_repack_takes(GW_EST_CPUV_ARMV8_2_1, 12, 32004, 2, GW_EST_OP_MUL_MAT));
    assert_true(gw__est_repack_takes(GW_EST_CPUV_ARMV8_6_1, 14, 32000, 2, GW_EST_OP_MUL_MAT));
    assert_false(gw__est_repack_takes(GW_EST_CPUV_ARMV8_0_1, 2, 32000, 2, GW_EST_OP_MUL_MAT));
}

static void test_weight_ops(void **state)
{
    (void)state;
#define OP(s) gw__est_weight_op(s, strlen(s))
    assert_int_equal(OP("blk.3.attn_q.weight"), GW_EST_OP_MUL_MAT);
    assert_int_equal(OP("blk.12.ffn_down.weight"), GW_EST_OP_MUL_MAT);
    assert_int_equal(OP("output.weight"), GW_EST_OP_MUL_MAT);
    assert_int_equal(OP("blk.0.attn_k_b.weight"), GW_EST_OP_MUL_MAT);
    assert_int_equal(OP("blk.1.shortconv.in_proj.weight"), GW_EST_OP_MUL_MAT);
    assert_int_equal(OP("blk.0.ffn_gate_exps.weight"), GW_EST_OP_MUL_MAT_ID);
    assert_int_equal(OP("blk.0.ffn_down_chexps.weight"), GW_EST_OP_MUL_MAT_ID);
    assert_int_equal(OP("blk.3.attn_q.bias"), GW_EST_OP_OTHER);    /* add */
    assert_int_equal(OP("token_embd.weight"), GW_EST_OP_OTHER);    /* get_rows */
    assert_int_equal(OP("output_norm.weight"), GW_EST_OP_OTHER);   /* mul */
    assert_int_equal(OP("blk.2.ssm_conv1d.weight"), GW_EST_OP_OTHER);
    assert_int_equal(OP("blk.x.attn_q.weight"), GW_EST_OP_OTHER);
    assert_int_equal(OP("blk.3.attn_qq.weight"), GW_EST_OP_OTHER);
    assert_int_equal(OP("blk.3.attn_.weight"), GW_EST_OP_OTHER);
    assert_int_equal(OP(".weight"), GW_EST_OP_OTHER);
#undef OP
    assert_true(gw__est_weight_names_sorted());
}

/* A tied model as llama.cpp lays it out on the host (CPU only):
 * input layer token_embd 1000 B, blocks 5000 B each (AMX: 5400 B), output
 * layer output_norm 300 B; token_embd has 32000 rows of a Q4_0-like type. */
static gw_est_model *tied_model(uint32_t embd_type, uint64_t embd_amx)
{
    static gw_est_model m;
    static uint64_t lb[4], lbc[4], lba[4], lt[4];
    m = (gw_est_model){0};
    m.arch = GW_EST_ARCH_LLAMA;
    m.n_layer = 2;
    m.n_embd = 256;
    m.n_head = 4;
    m.n_ff = 512;
    m.n_vocab = 32000;
    m.n_ctx_train = 4096;
    m.n_head_kv[0] = m.n_head_kv[1] = 2;
    m.head_k = m.head_v = 64;
    m.embd_type = m.output_type = embd_type;
    lb[0] = 1000, lb[1] = lb[2] = 5000, lb[3] = 300;
    lba[0] = 1000, lba[1] = lba[2] = 5400, lba[3] = 300;
    lbc[0] = 1024, lbc[1] = lbc[2] = 5120, lbc[3] = 384;
    m.layer_bytes = lb;
    m.layer_bytes_amx = lba;
    m.layer_bytes_cuda = lbc;
    m.layer_tensors = lt;
    m.embd_bytes = 1000;
    m.embd_bytes_cuda = 1024;
    m.embd_bytes_amx = embd_amx;
    m.embd_rows = 32000;
    return &m;
}

static uint64_t host_weights(gw_est_model *m, gw_est_cpu_variant v, uint32_t n_dev, bool no_host)
{
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = 512;
    p.host_cpu = v;
    p.no_host = no_host;
    p.n_devices = n_dev;
    p.n_gpu_layers = 0; /* everything on the host */
    p.device_free[0] = 1ull << 34;
    gw_est_result r;
    gw_error err;
    assert_int_equal(gw_est_estimate(m, &p, &r, &err), GW_OK);
    assert_int_equal(r.host_cpu, v);
    return r.host.weights;
}

static void test_tied_output_copy(void **state)
{
    (void)state;
    /* Q4_0 token_embd (type 2), AMX takes it (1000 B in AMX layout):
     * none / sse42: no extra type takes the output -> it shares token_embd:
     *   1000 + 5000 + 5000 + 300 = 11300
     * haswell: CPU_REPACK takes the Q4_0 output (32000 % 8 == 0), a copy at
     *   the plain size: 11300 + 1000 = 12300
     * sapphirerapids: AMX layout of the blocks (5400 each) and the output
     *   copy in AMX: 1000 + 5400 + 5400 + 300 + 1000 = 13100 */
    gw_est_model *m = tied_model(2, 1000);
    assert_int_equal(host_weights(m, GW_EST_CPUV_NONE, 0, false), 11300);
    assert_int_equal(host_weights(m, GW_EST_CPUV_SSE42, 0, false), 11300);
    assert_int_equal(host_weights(m, GW_EST_CPUV_HASWELL, 0, false), 12300);
    assert_int_equal(host_weights(m, GW_EST_CPUV_SAPPHIRERAPIDS, 0, false), 13100);
    /* Q8_0 token_embd that AMX does not take (embd_bytes_amx 0): x86 has no
     * Q8_0 repack, so sapphirerapids has no copy: 1000 + 5400*2 + 300 */
    m = tied_model(8, 0);
    assert_int_equal(host_weights(m, GW_EST_CPUV_SAPPHIRERAPIDS, 0, false), 12100);
    assert_int_equal(host_weights(m, GW_EST_CPUV_HASWELL, 0, false), 11300);
    /* arm64 dotprod repacks Q8_0 (32000 % 4 == 0): a copy */
    assert_int_equal(host_weights(m, GW_EST_CPUV_ARMV8_2_1, 0, false), 12300);
    /* with a GPU, host weights go to its pinned host buffer first (no AMX
     * layout, no copy) unless --no-host */
    m = tied_model(2, 1000);
    assert_int_equal(host_weights(m, GW_EST_CPUV_SAPPHIRERAPIDS, 1, false), 11300);
    assert_int_equal(host_weights(m, GW_EST_CPUV_SAPPHIRERAPIDS, 1, true), 13100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_pick),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_amx_sizes),
        cmocka_unit_test(test_repack),
        cmocka_unit_test(test_weight_ops),
        cmocka_unit_test(test_tied_output_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
