/* estimate_impl.h — what the estimator's files share (gw__ tier).
 * Owns nothing by itself: it includes the public header and the internal
 * utilities so graph.c, model.c, recurrent.c, estimate.c and plan.c agree. */
#ifndef GW_ESTIMATE_IMPL_H
#define GW_ESTIMATE_IMPL_H

#include "core/util.h"
#include "estimate/estimate.h"

/* CPU and CUDA buffer alignments (ggml's TENSOR_ALIGNMENT, CUDA's 128). */
#define GW__EST_CPU_ALIGN 32u
#define GW__EST_CUDA_ALIGN 128u
/* CUDA's MATRIX_ROW_PADDING (ggml-cuda/common.cuh). */
#define GW__EST_ROW_PAD 512u

/* PAD(x, a) with overflow check; false on overflow. */
static inline bool gw__est_pad(uint64_t x, uint64_t a, uint64_t *out)
{
    uint64_t y;
    if (!gw__add_u64(x, a - 1, &y))
        return false;
    *out = y / a * a;
    return true;
}

/* model.c: a per-layer flag array key (one bool or u32 per layer) into
 * flags[0..n_layer): 1 read, 0 the key is absent (flags untouched), -1 it
 * has another length than n_layer. */
int gw__est_layer_flags(const gw_gguf *g, const char *key, uint32_t n_layer, bool *flags);

/* How llama.cpp uses a weight (its tensor info table): the op decides
 * which extra buffer types may take it. */
typedef enum gw_est_weight_op {
    GW_EST_OP_OTHER = 0, /* get_rows, add, mul, ssm_conv...: plain buffer */
    GW_EST_OP_MUL_MAT,
    GW_EST_OP_MUL_MAT_ID,
} gw_est_weight_op;

/* hostcpu.c: the op of a weight named name[0..len) ("blk.3.attn_q.weight");
 * biases and unknown names are GW_EST_OP_OTHER. */
gw_est_weight_op gw__est_weight_op(const char *name, size_t len);

/* AMX's allocation size of a weight (type, ne0 x ne1, plain size nbytes):
 * true and *out when AMX can hold the type and shape, false otherwise. */
bool gw__est_amx_size(uint32_t type, uint64_t ne0, uint64_t ne1, uint64_t nbytes, uint64_t *out);

/* Whether the AMX buffer (on a variant that has one) takes the weight, and
 * its allocation size in *size when size is not NULL. */
bool gw__est_amx_takes(uint32_t type, const uint64_t ne[4], uint64_t nbytes, gw_est_weight_op op,
                       uint64_t *size);

/* Whether variant v's CPU_REPACK buffer takes the weight. */
bool gw__est_repack_takes(gw_est_cpu_variant v, uint32_t type, uint64_t ne1, uint32_t n_dims,
                          gw_est_weight_op op);

/* The variant ggml's loader picks for a CPU with features feats (arm: the
 * arm64 table, else x86); exposed for tests. */
gw_est_cpu_variant gw__est_cpu_variant_for(bool arm, unsigned feats);

/* Invariant checks (hostcpu.c invariant 1; the op table is sorted). */
bool gw__est_cpu_table_check(void);
bool gw__est_weight_names_sorted(void);

/* Reads the recurrent-state keys of m's architecture from g (recurrent.c)
 * and marks its recurrent layers; m's arch, n_layer, n_embd and n_head_kv
 * must be set. GW_OK (nothing to do for other archs) or GW_EPARSE. */
int gw__est_recr_read(const gw_gguf *g, gw_est_model *m, gw_error *err);

#endif
