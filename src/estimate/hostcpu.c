/* hostcpu.c — which ggml CPU backend variant llama.cpp loads on a host, and
 * the extra weight buffer types that variant brings (AMX, CPU_REPACK).
 *
 * Owns: the table of ggml's CPU variants (libggml-cpu-<name>.so of a
 * GGML_CPU_ALL_VARIANTS build: the features each is compiled for and the
 * score its ggml_backend_score gives), the detection of this host's features
 * (cpuid on x86-64, HWCAP on arm64) and the variant the backend loader picks
 * from them, and the buffer-type rules used for host-resident weights:
 *   - AMX (variants compiled with AMX_INT8 + AVX512_VNNI): takes a MUL_MAT
 *     weight of type Q4_0/Q4_1/Q8_0 (ne0 % 32 == 0), Q4_K/Q5_K/Q6_K/IQ4_XS
 *     (ne0 % 256 == 0) or F16 (ne0 % 16 == 0) whose ne1 is a multiple of 32;
 *     its allocation is ne1 * packed_row(ne0) for the quantized types (Q8_0
 *     rows carry an int32 per block, Q4_K/Q5_K 4 bytes, IQ4_XS 2 bytes more)
 *     and the plain size for F16;
 *   - CPU_REPACK: takes a 2-D MUL_MAT (or 3-D MUL_MAT_ID) weight whose type
 *     has a repacked kernel for the variant's instruction set and whose ne1
 *     divides by that kernel's interleave; the allocation is the plain size.
 * llama.cpp offers a weight to the buffer types in the order AMX, REPACK,
 * plain CPU and takes the first that accepts it; a tied output (no
 * output.weight) is a second copy of token_embd exactly when the output's
 * buffer type differs from token_embd's (plain CPU: GET_ROWS is taken by no
 * extra type).
 *
 * Invariants:
 *  1. variants[] is indexed by gw_est_cpu_variant, every entry is named,
 *     and no two variants of one architecture share a score, so the
 *     loader's pick never depends on directory order
 *     (gw__est_cpu_table_check).
 *  2. Detection is a pure function of the CPU (cpuid / HWCAP): the same
 *     machine always gives the same variant; no global state is kept.
 *  3. The acceptance rules read only (type, shape, op, variant).
 */
#include "estimate/estimate_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

/* Feature bits: x86 (ggml's GGML_* compile definitions of a variant). */
enum {
    F_FMA = 1u << 0, F_F16C = 1u << 1, F_SSE42 = 1u << 2, F_BMI2 = 1u << 3, F_AVX = 1u << 4,
    F_AVX2 = 1u << 5, F_AVX_VNNI = 1u << 6, F_AVX512 = 1u << 7, F_AVX512_VBMI = 1u << 8,
    F_AVX512_BF16 = 1u << 9, F_AVX512_VNNI = 1u << 10, F_AMX_INT8 = 1u << 11,
};
/* arm64 (GGML_USE_*). */
enum {
    A_DOTPROD = 1u << 1, A_FP16 = 1u << 2, A_SVE = 1u << 3, A_I8MM = 1u << 4, A_SVE2 = 1u << 5,
    A_SME = 1u << 6,
};

typedef struct cpu_variant {
    const char *name;
    bool arm;
    unsigned feats; /* the features it is compiled for (and requires) */
} cpu_variant;

#define X86_HASWELL (F_SSE42 | F_AVX | F_F16C | F_FMA | F_AVX2 | F_BMI2)
#define X86_SKX (X86_HASWELL | F_AVX512)
#define ARM_82 (A_DOTPROD | A_FP16)

static const cpu_variant variants[GW_EST_CPUV_COUNT] = {
    [GW_EST_CPUV_NONE] = {"none", false, 0},
    [GW_EST_CPUV_X64] = {"x64", false, 0},
    [GW_EST_CPUV_SSE42] = {"sse42", false, F_SSE42},
    [GW_EST_CPUV_SANDYBRIDGE] = {"sandybridge", false, F_SSE42 | F_AVX},
    [GW_EST_CPUV_IVYBRIDGE] = {"ivybridge", false, F_SSE42 | F_AVX | F_F16C},
    [GW_EST_CPUV_PILEDRIVER] = {"piledriver", false, F_SSE42 | F_AVX | F_F16C | F_FMA},
    [GW_EST_CPUV_HASWELL] = {"haswell", false, X86_HASWELL},
    [GW_EST_CPUV_SKYLAKEX] = {"skylakex", false, X86_SKX},
    [GW_EST_CPUV_CANNONLAKE] = {"cannonlake", false, X86_SKX | F_AVX512_VBMI},
    [GW_EST_CPUV_CASCADELAKE] = {"cascadelake", false, X86_SKX | F_AVX512_VNNI},
    [GW_EST_CPUV_ICELAKE] = {"icelake", false, X86_SKX | F_AVX512_VBMI | F_AVX512_VNNI},
    [GW_EST_CPUV_COOPERLAKE] = {"cooperlake", false, X86_SKX | F_AVX512_VNNI | F_AVX512_BF16},
    [GW_EST_CPUV_ZEN4] = {"zen4", false,
                          X86_SKX | F_AVX512_VBMI | F_AVX512_VNNI | F_AVX512_BF16},
    [GW_EST_CPUV_ALDERLAKE] = {"alderlake", false, X86_HASWELL | F_AVX_VNNI},
    [GW_EST_CPUV_SAPPHIRERAPIDS] = {"sapphirerapids", false,
                                    X86_SKX | F_AVX512_VBMI | F_AVX512_VNNI | F_AVX512_BF16 |
                                        F_AMX_INT8},
    [GW_EST_CPUV_ARMV8_0_1] = {"armv8.0_1", true, 0},
    [GW_EST_CPUV_ARMV8_2_1] = {"armv8.2_1", true, A_DOTPROD},
    [GW_EST_CPUV_ARMV8_2_2] = {"armv8.2_2", true, ARM_82},
    [GW_EST_CPUV_ARMV8_2_3] = {"armv8.2_3", true, ARM_82 | A_SVE},
    [GW_EST_CPUV_ARMV8_6_1] = {"armv8.6_1", true, ARM_82 | A_SVE | A_I8MM},
    [GW_EST_CPUV_ARMV8_6_2] = {"armv8.6_2", true, ARM_82 | A_SVE | A_I8MM | A_SVE2},
    [GW_EST_CPUV_ARMV9_2_1] = {"armv9.2_1", true, ARM_82 | A_SVE | A_I8MM | A_SME},
    [GW_EST_CPUV_ARMV9_2_2] = {"armv9.2_2", true, ARM_82 | A_SVE | A_I8MM | A_SVE2 | A_SME},
};

/* ggml_backend_score of a variant on a CPU that has it: 1 plus the weight
 * of every feature (ggml's x86 and aarch64 cpu-feats use the bit value of
 * the enums above as the weight). */
static unsigned variant_score(const cpu_variant *v)
{
    return 1u + v->feats;
}

bool gw__est_cpu_table_check(void)
{
    for (int i = 0; i < GW_EST_CPUV_COUNT; i++) {
        if (!variants[i].name)
            return false;
        for (int j = 0; j < i; j++)
            if (variants[j].arm == variants[i].arm && i != GW_EST_CPUV_NONE &&
                j != GW_EST_CPUV_NONE && variant_score(&variants[j]) == variant_score(&variants[i]))
                return false; /* the loader's choice would depend on directory order */
    }
    return true;
}

const char *gw_est_cpu_variant_name(gw_est_cpu_variant v)
{
    return (unsigned)v < GW_EST_CPUV_COUNT ? variants[v].name : "unknown";
}

int gw_est_cpu_variant_parse(const char *name, gw_est_cpu_variant *out, gw_error *err)
{
    if (strcmp(name, "host") == 0) {
        *out = gw_est_cpu_variant_host();
        return GW_OK;
    }
    for (int i = 0; i < GW_EST_CPUV_COUNT; i++)
        if (strcmp(name, variants[i].name) == 0) {
            *out = (gw_est_cpu_variant)i;
            return GW_OK;
        }
    char list[400] = "host";
    for (int i = 0; i < GW_EST_CPUV_COUNT; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, ", %s", variants[i].name);
    }
    return gw__error_set(err, GW_EINVAL, "unknown CPU variant '%s' (one of: %s)", name, list);
}

/* ------------------------------------------------------------ detection */

#if defined(__x86_64__)
static unsigned host_features(void)
{
    unsigned a, b, c, d, max = __get_cpuid_max(0, NULL);
    unsigned f = 0;
    if (max < 1)
        return 0;
    __cpuid(1, a, b, c, d);
    f |= (c >> 12 & 1) ? F_FMA : 0;
    f |= (c >> 20 & 1) ? F_SSE42 : 0;
    f |= (c >> 28 & 1) ? F_AVX : 0;
    f |= (c >> 29 & 1) ? F_F16C : 0;
    if (max < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    f |= (b >> 5 & 1) ? F_AVX2 : 0;
    f |= (b >> 8 & 1) ? F_BMI2 : 0;
    /* AVX512 = F, CD, VL, DQ and BW together */
    unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
    f |= (b & avx512) == avx512 ? F_AVX512 : 0;
    f |= (c >> 1 & 1) ? F_AVX512_VBMI : 0;
    f |= (c >> 11 & 1) ? F_AVX512_VNNI : 0;
    f |= (d >> 25 & 1) ? F_AMX_INT8 : 0;
    __cpuid_count(7, 1, a, b, c, d);
    f |= (a >> 4 & 1) ? F_AVX_VNNI : 0;
    f |= (a >> 5 & 1) ? F_AVX512_BF16 : 0;
    return f;
}
#elif defined(__aarch64__) && defined(__linux__)
static unsigned host_features(void)
{
    unsigned long h = getauxval(AT_HWCAP), h2 = getauxval(AT_HWCAP2);
    unsigned f = 0;
    f |= (h >> 20 & 1) ? A_DOTPROD : 0;              /* HWCAP_ASIMDDP */
    f |= (h >> 9 & 1) && (h >> 10 & 1) ? A_FP16 : 0; /* HWCAP_FPHP, HWCAP_ASIMDHP */
    f |= (h >> 22 & 1) ? A_SVE : 0;                  /* HWCAP_SVE */
    f |= (h2 >> 1 & 1) ? A_SVE2 : 0;                 /* HWCAP2_SVE2 */
    f |= (h2 >> 13 & 1) ? A_I8MM : 0;                /* HWCAP2_I8MM */
    f |= (h2 >> 23 & 1) ? A_SME : 0;                 /* HWCAP2_SME */
    return f;
}
#endif

gw_est_cpu_variant gw__est_cpu_variant_for(bool arm, unsigned feats)
{
    gw_est_cpu_variant best = GW_EST_CPUV_NONE;
    unsigned best_score = 0;
    for (int i = GW_EST_CPUV_NONE + 1; i < GW_EST_CPUV_COUNT; i++) {
        const cpu_variant *v = &variants[i];
        if (v->arm != arm || (v->feats & ~feats) != 0)
            continue;
        if (variant_score(v) > best_score) { /* the loader keeps the first best */
            best_score = variant_score(v);
            best = (gw_est_cpu_variant)i;
        }
    }
    return best;
}

gw_est_cpu_variant gw_est_cpu_variant_host(void)
{
#if defined(__x86_64__)
    return gw__est_cpu_variant_for(false, host_features());
#elif defined(__aarch64__) && defined(__linux__)
    return gw__est_cpu_variant_for(true, host_features());
#else
    return GW_EST_CPUV_NONE; /* no CPU variants built for this architecture */
#endif
}

/* ------------------------------------------------------------ buffer types */

#define T_F16 1u
#define T_Q4_0 2u
#define T_Q4_1 3u
#define T_Q8_0 8u
#define T_Q2_K 10u
#define T_Q4_K 12u
#define T_Q5_K 13u
#define T_Q6_K 14u
#define T_IQ4_NL 20u
#define T_IQ4_XS 23u
#define T_MXFP4 39u
#define T_Q1_0 41u

/* The AMX buffer type exists where the variant is compiled with AMX_INT8
 * and AVX512_VNNI. (ggml also asks the kernel for the tile data permission,
 * arch_prctl ARCH_REQ_XCOMP_PERM; Linux grants it since 5.16, which is
 * assumed.) */
static bool variant_has_amx(gw_est_cpu_variant v)
{
    return (unsigned)v < GW_EST_CPUV_COUNT && !variants[v].arm &&
           (variants[v].feats & (F_AMX_INT8 | F_AVX512_VNNI)) == (F_AMX_INT8 | F_AVX512_VNNI);
}

/* ne1 interleave a repacked kernel needs for a weight of type, on variant
 * v; 0: no repacked kernel (ggml_repack_get_optimal_repack_type). */
static unsigned repack_interleave(gw_est_cpu_variant v, uint32_t type)
{
    if ((unsigned)v >= GW_EST_CPUV_COUNT || v == GW_EST_CPUV_NONE)
        return 0;
    unsigned f = variants[v].feats;
    if (!variants[v].arm) {
        if (f & F_AVX2)
            switch (type) {
            case T_Q4_0: case T_Q4_K: case T_IQ4_NL: case T_MXFP4:
                return 8;
            case T_Q2_K:
                return (f & F_AVX512) ? 8 : 0;
            default:
                return 0;
            }
        return 0;
    }
    if (!(f & A_DOTPROD))
        return 0; /* SVE + i8mm variants all have dotprod */
    switch (type) {
    case T_Q4_0: case T_IQ4_NL: case T_MXFP4: case T_Q8_0: case T_Q1_0:
        return 4;
    case T_Q4_K: case T_Q5_K: case T_Q6_K:
        return 8;
    default:
        return 0;
    }
}

unsigned gw_est_cpu_variant_buffer_types(gw_est_cpu_variant v)
{
    unsigned b = 0;
    if (variant_has_amx(v))
        b |= GW_EST_BUFT_AMX;
    if (repack_interleave(v, T_Q4_0) || repack_interleave(v, T_Q4_K))
        b |= GW_EST_BUFT_REPACK;
    return b;
}

char *gw_est_buffer_types_str(unsigned bufts, const char *sep, char *buf, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{GW_EST_BUFT_AMX, "AMX"}, {GW_EST_BUFT_REPACK, "CPU_REPACK"}};
    if (n == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < GW__ARRAY_LEN(names); i++) {
        if (!(bufts & names[i].bit))
            continue;
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", len ? sep : "", names[i].name);
    }
    return buf;
}

bool gw__est_amx_size(uint32_t type, uint64_t ne0, uint64_t ne1, uint64_t nbytes, uint64_t *out)
{
    uint64_t align, block, per_block;
    switch (type) {
    case T_Q4_0: align = block = 32; per_block = 18; break;
    case T_Q4_1: align = block = 32; per_block = 20; break;
    case T_Q8_0: align = block = 32; per_block = 34 + 4; break;   /* + int32 compensation */
    case T_Q4_K: align = block = 256; per_block = 144 + 4; break; /* + packed scales */
    case T_Q5_K: align = block = 256; per_block = 176 + 4; break;
    case T_Q6_K: align = block = 256; per_block = 210; break;
    case T_IQ4_XS: align = block = 256; per_block = 136 + 2; break;
    case T_F16: align = 16; block = 0; per_block = 0; break;
    default:
        return false;
    }
    if (ne1 % 32 != 0 || ne0 % align != 0)
        return false;
    if (block == 0) { /* F16: not packed */
        *out = nbytes;
        return true;
    }
    /* ggml sizes the packed tensor from ne0 and ne1 alone */
    return gw__mul_u64(ne0 / block * per_block, ne1, out);
}

bool gw__est_repack_takes(gw_est_cpu_variant v, uint32_t type, uint64_t ne1, uint32_t n_dims,
                          gw_est_weight_op op)
{
    unsigned il = repack_interleave(v, type);
    if (il == 0 || ne1 % il != 0)
        return false;
    return (op == GW_EST_OP_MUL_MAT && n_dims == 2) || (op == GW_EST_OP_MUL_MAT_ID && n_dims == 3);
}

bool gw__est_amx_takes(uint32_t type, const uint64_t ne[4], uint64_t nbytes, gw_est_weight_op op,
                       uint64_t *size)
{
    uint64_t s;
    if (op != GW_EST_OP_MUL_MAT || !gw__est_amx_size(type, ne[0], ne[1], nbytes, &s))
        return false;
    if (size)
        *size = s;
    return true;
}

/* ------------------------------------------------------------ weight ops */

/* Weights llama.cpp multiplies with GGML_OP_MUL_MAT (llama-arch.cpp's tensor
 * info table), by name without "blk.N." and ".weight"; sorted for bsearch. */
static const char *const mul_mat_names[] = {
    "altup_correct_coef", "altup_predict_coef", "altup_proj", "altup_router",
    "altup_unembd_proj", "attn_compressor_gate", "attn_compressor_kv", "attn_conv_proj",
    "attn_gate", "attn_k", "attn_k_b", "attn_kv", "attn_kv_a_mqa", "attn_kv_b", "attn_output",
    "attn_output_a", "attn_output_b", "attn_q", "attn_q_a", "attn_q_b", "attn_qkv", "attn_v",
    "attn_v_b", "channel_mix_key", "channel_mix_receptance", "channel_mix_value", "cls",
    "cls.output", "conf_proj", "dense_2", "dense_3", "fc", "ffn_conv_proj", "ffn_down",
    "ffn_down_shexp", "ffn_gate", "ffn_gate_inp", "ffn_gate_inp_shexp", "ffn_gate_shexp",
    "ffn_latent_down", "ffn_latent_up", "ffn_routed_down", "ffn_routed_up", "ffn_up",
    "ffn_up_shexp", "hc_attn_down", "hc_attn_fn", "hc_attn_inject", "hc_attn_up", "hc_ffn_down",
    "hc_ffn_fn", "hc_ffn_inject", "hc_ffn_up", "indexer.attn_k", "indexer.attn_q_b",
    "indexer.k_proj", "indexer.proj", "indexer.q_proj", "indexer_compressor_gate",
    "indexer_compressor_kv", "inp_gate", "laurel_l", "laurel_r", "markov_w2", "nextn.eh_proj",
    "nextn.post_projection", "nextn.pre_projection", "nextn.shared_head_head", "output",
    "output_hc_down", "output_hc_fn", "output_hc_up", "per_layer_model_proj", "ple_key",
    "ple_value", "proj", "selector_hidden", "shortconv.in_proj", "shortconv.out_proj",
    "ssm_alpha", "ssm_ba", "ssm_beta", "ssm_dt", "ssm_f_a", "ssm_f_b", "ssm_g", "ssm_g_a",
    "ssm_g_b", "ssm_in", "ssm_out", "ssm_x", "time_mix_a1", "time_mix_a2", "time_mix_decay_w1",
    "time_mix_decay_w2", "time_mix_g1", "time_mix_g2", "time_mix_gate", "time_mix_key",
    "time_mix_output", "time_mix_receptance", "time_mix_v1", "time_mix_v2", "time_mix_value",
    "time_mix_w1", "time_mix_w2", "vis_attn_output", "vis_attn_qkv", "vis_down", "vis_gate",
    "vis_up",
};

typedef struct name_key {
    const char *p;
    size_t n;
} name_key;

static int cmp_name(const void *k, const void *e)
{
    const name_key *key = k;
    const char *s = *(const char *const *)e;
    size_t sl = strlen(s);
    int c = memcmp(key->p, s, key->n < sl ? key->n : sl);
    if (c != 0)
        return c;
    return key->n < sl ? -1 : key->n > sl ? 1 : 0;
}

bool gw__est_weight_names_sorted(void)
{
    for (size_t i = 1; i < GW__ARRAY_LEN(mul_mat_names); i++)
        if (strcmp(mul_mat_names[i - 1], mul_mat_names[i]) >= 0)
            return false;
    return true;
}

static bool ends_with(const char *p, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    return n >= sl && memcmp(p + n - sl, suffix, sl) == 0;
}

gw_est_weight_op gw__est_weight_op(const char *name, size_t len)
{
    if (!ends_with(name, len, ".weight"))
        return GW_EST_OP_OTHER; /* biases are added, scales multiplied */
    len -= 7;
    if (len > 4 && memcmp(name, "blk.", 4) == 0) {
        size_t i = 4;
        while (i < len && name[i] >= '0' && name[i] <= '9')
            i++;
        if (i == 4 || i >= len || name[i] != '.')
            return GW_EST_OP_OTHER;
        name += i + 1;
        len -= i + 1;
    }
    if (ends_with(name, len, "_exps") || ends_with(name, len, "_chexps"))
        return GW_EST_OP_MUL_MAT_ID;
    name_key key = {name, len};
    return bsearch(&key, mul_mat_names, GW__ARRAY_LEN(mul_mat_names), sizeof mul_mat_names[0],
                   cmp_name)
               ? GW_EST_OP_MUL_MAT
               : GW_EST_OP_OTHER;
}
