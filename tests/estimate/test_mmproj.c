/* test_mmproj.c — the projector's compute buffer (clip.cpp's warm-up
 * reserve), checked on worked examples computed by hand from clip.cpp's
 * graphs and ggml-alloc's rules. Each number is derived in the comment
 * next to it, not taken from gpuwatch; bench/mmproj_oracle.sh confirmed
 * them against libmtmd (56608 and 68736 bytes on the CPU).
 *
 * Shapes shared by the examples: a 56x56 warm-up image, 14-pixel patches
 * (4x4 = 16 patches), n_embd 64, 4 heads of 16, text width 96, F16
 * matrices. inp_raw is F32 [56, 56, 3] = 37632 bytes; im2col is F16
 * [3*14*14 = 588, 4, 4] = 18816 bytes. */
#include "estimate/estimate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void slot(gw_est_mmproj *mp, gw_est_mm_slot s, uint32_t type, int64_t n0, int64_t n1,
                 int64_t n2, int64_t n3)
{
    mp->t[s].present = true;
    mp->t[s].type = type;
    mp->t[s].ne[0] = n0;
    mp->t[s].ne[1] = n1;
    mp->t[s].ne[2] = n2;
    mp->t[s].ne[3] = n3;
}

/* The common vision tower: patch conv (+ bias), one block's tensors. */
static void tower(gw_est_mmproj *mp, gw_est_proj kind, uint32_t n_layer)
{
    memset(mp, 0, sizeof *mp);
    strcpy(mp->projector, "test");
    mp->kind = kind;
    mp->vision = true;
    mp->image_size = mp->warmup_size = 56;
    mp->patch_size = 14;
    mp->n_embd = 64;
    mp->n_head = mp->n_head_kv = 4;
    mp->head_dim = 16;
    mp->n_ff = 128;
    mp->n_layer = n_layer;
    mp->n_merge = kind == GW_EST_PROJ_GEMMA3 ? 4 : 1;
    slot(mp, GW_EST_MM_PATCH, 1, 14, 14, 3, 64);
    slot(mp, GW_EST_MM_PATCH_B, 0, 64, 1, 1, 1);
    gw_est_mm_slot vec[] = {GW_EST_MM_LN1, GW_EST_MM_LN1_B, GW_EST_MM_LN2, GW_EST_MM_LN2_B,
                            GW_EST_MM_Q_B, GW_EST_MM_K_B, GW_EST_MM_V_B, GW_EST_MM_O_B,
                            GW_EST_MM_DOWN_B};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
        slot(mp, vec[i], 0, 64, 1, 1, 1);
    slot(mp, GW_EST_MM_Q, 1, 64, 64, 1, 1);
    slot(mp, GW_EST_MM_K, 1, 64, 64, 1, 1);
    slot(mp, GW_EST_MM_V, 1, 64, 64, 1, 1);
    slot(mp, GW_EST_MM_O, 1, 64, 64, 1, 1);
    slot(mp, GW_EST_MM_UP, 1, 64, 128, 1, 1);
    slot(mp, GW_EST_MM_UP_B, 0, 128, 1, 1, 1);
    slot(mp, GW_EST_MM_DOWN, 1, 128, 64, 1, 1);
}

static void gemma3(gw_est_mmproj *mp, uint32_t n_layer)
{
    tower(mp, GW_EST_PROJ_GEMMA3, n_layer);
    slot(mp, GW_EST_MM_POS, 0, 64, 16, 1, 1);
    slot(mp, GW_EST_MM_POST_LN, 0, 64, 1, 1, 1);
    slot(mp, GW_EST_MM_POST_LN_B, 0, 64, 1, 1, 1);
    slot(mp, GW_EST_MM_INP_PROJ, 1, 96, 64, 1, 1);
    slot(mp, GW_EST_MM_SOFT_EMB_NORM, 0, 64, 1, 1, 1);
}

static void llava(gw_est_mmproj *mp, uint32_t n_layer)
{
    tower(mp, GW_EST_PROJ_MLP, n_layer);
    slot(mp, GW_EST_MM_CLASS, 0, 64, 1, 1, 1);
    slot(mp, GW_EST_MM_POS, 0, 64, 17, 1, 1);
    slot(mp, GW_EST_MM_PRE_LN, 0, 64, 1, 1, 1);
    slot(mp, GW_EST_MM_PRE_LN_B, 0, 64, 1, 1, 1);
    slot(mp, GW_EST_MM_0, 1, 64, 96, 1, 1);
    slot(mp, GW_EST_MM_0_B, 0, 96, 1, 1, 1);
    slot(mp, GW_EST_MM_2, 1, 96, 96, 1, 1);
    slot(mp, GW_EST_MM_2_B, 0, 96, 1, 1, 1);
}

/* gemma3 without blocks. The only expand is the final projection
 * mul_mat(cont(transpose(mm.input_projection)), x): ggml visits src0
 * first, so the F16 copy of the transposed projection (64*96*2 = 12288)
 * is allocated right after the input (inp_raw, 0..37632), then im2col
 * (49920..68736). inp_raw is freed after im2col; everything later (at most
 * 64*16*4 = 4096 bytes) fits in its hole. Peak 37632 + 12288 + 18816. */
static void test_gemma3_no_blocks(void **state)
{
    (void)state;
    gw_est_mmproj mp;
    gemma3(&mp, 0);
    uint64_t out[2];
    assert_int_equal(gw_est_mmproj_compute(&mp, false, false, false, out, NULL), GW_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 68736);
    /* no attention: flash attention changes nothing */
    assert_int_equal(gw_est_mmproj_compute(&mp, true, false, false, out, NULL), GW_OK);
    assert_int_equal(out[1], 68736);
}

/* llava "mlp" with block_count 1: clip.cpp runs n_layer - 1 = 0 blocks.
 * Leafs first: inp_raw 0..37632, positions I32[17] 37632..37728 (68 -> 96),
 * patches I32[16] 37728..37792; then im2col 37792..56608 is the peak; every
 * later tensor ([64,17] F32 = 4352 at most, [96,16] = 6144) reuses freed
 * space below it. Peak 37632 + 96 + 64 + 18816 = 56608. */
static void test_llava_no_blocks(void **state)
{
    (void)state;
    gw_est_mmproj mp;
    llava(&mp, 1);
    uint64_t out[2];
    assert_int_equal(gw_est_mmproj_compute(&mp, false, false, false, out, NULL), GW_OK);
    assert_int_equal(out[1], 56608);
}

/* With a GPU, graph inputs stay in the CPU buffer (ggml_backend_sched puts
 * ggml_set_input tensors on the last backend) and are copied to the GPU:
 * host = 37632 + 96 + 64 = 37792; the GPU holds the copies padded to
 * CUDA's 128 bytes (37632 + 128 + 128) and im2col: 56704. */
static void test_llava_gpu(void **state)
{
    (void)state;
    gw_est_mmproj mp;
    llava(&mp, 1);
    uint64_t out[2];
    assert_int_equal(gw_est_mmproj_compute(&mp, false, true, true, out, NULL), GW_OK);
    assert_int_equal(out[0], 56704);
    assert_int_equal(out[1], 37792);
}

/* Without flash attention each block materialises KQ = F32 [P, P, H]; with
 * it, only [D, H, P] outputs and F16 copies of K and V. With a 224-pixel
 * image (P = 256, H = 4) KQ alone is 256*256*4*4 = 1 MiB: the FA-off
 * buffer holds it, the FA-on buffer stays well below it. */
static void test_flash_attention(void **state)
{
    (void)state;
    gw_est_mmproj mp;
    gemma3(&mp, 2);
    mp.warmup_size = 224;
    mp.t[GW_EST_MM_POS].ne[1] = 256;
    uint64_t off[2], on[2];
    assert_int_equal(gw_est_mmproj_compute(&mp, false, false, false, off, NULL), GW_OK);
    assert_int_equal(gw_est_mmproj_compute(&mp, true, false, false, on, NULL), GW_OK);
    assert_true(off[1] >= (1u << 20));
    assert_true(on[1] < (1u << 20));
}

/* An audio-only projector has no vision graph: 0 and 0. */
static void test_audio_only(void **state)
{
    (void)state;
    gw_est_mmproj mp;
    memset(&mp, 0, sizeof mp);
    uint64_t out[2] = {1, 1};
    assert_int_equal(gw_est_mmproj_compute(&mp, true, true, true, out, NULL), GW_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemma3_no_blocks), cmocka_unit_test(test_llava_no_blocks),
        cmocka_unit_test(test_llava_gpu),        cmocka_unit_test(test_flash_attention),
        cmocka_unit_test(test_audio_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
