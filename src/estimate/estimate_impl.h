/* estimate_impl.h — what the estimator's files share (gw__ tier).
 * Owns nothing by itself: it includes the public header and the internal
 * utilities so graph.c, model.c, kv.c, estimate.c and plan.c agree. */
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

#endif
