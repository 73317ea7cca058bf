/* plan.c — the fit planner: which layout of a model fits the given GPUs.
 *
 * Owns: the order in which layouts are tried (one GPU, largest free first;
 * layer split proportional to free memory over all GPUs; partial offload
 * with the largest -ngl that fits; full offload with the largest context
 * that fits; CPU only) and the llama.cpp command-line flags of the plan.
 * Invariants: every candidate is measured with gw_est_estimate (never a
 * shortcut formula); the plan's params are a copy the caller owns.
 */
#include "estimate/estimate_impl.h"

#include <stdio.h>
#include <string.h>

const char *gw_est_plan_kind_name(gw_est_plan_kind k)
{
    switch (k) {
    case GW_EST_PLAN_ONE_GPU:
        return "one-gpu";
    case GW_EST_PLAN_SPLIT:
        return "split";
    case GW_EST_PLAN_PARTIAL:
        return "partial";
    case GW_EST_PLAN_REDUCED_CTX:
        return "reduced-context";
    case GW_EST_PLAN_CPU:
        return "cpu";
    case GW_EST_PLAN_AS_GIVEN:
        return "as-given";
    }
    return "?";
}

static const char *type_flag(uint32_t t)
{
    const gw_ggml_type_info *i = gw_ggml_type(t);
    static const char *names[] = {"f32", "f16", "q4_0", "q4_1", "", "", "q5_0", "q5_1", "q8_0"};
    if (t < GW__ARRAY_LEN(names) && names[t][0])
        return names[t];
    if (t == 30)
        return "bf16";
    if (t == 20)
        return "iq4_nl";
    return i ? i->name : "?";
}

static void make_flags(const gw_est_model *m, gw_est_plan *pl)
{
    const gw_est_params *p = &pl->params;
    const gw_est_result *r = &pl->result;
    char *b = pl->flags;
    size_t cap = sizeof pl->flags, n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(b + n, n < cap ? cap - n : 0, __VA_ARGS__);                               \
        if (w_ > 0)                                                                                \
            n += (size_t)w_;                                                                       \
    } while (0)
    int32_t ngl = r->n_gpu_layers;
    PUT("-c %u", r->n_ctx);
    if (p->n_devices > 0)
        PUT(" -ngl %d", ngl > (int32_t)m->n_layer ? 999 : ngl);
    else
        PUT(" -ngl 0");
    if (p->n_batch != 2048)
        PUT(" -b %u", p->n_batch);
    if (p->n_ubatch != 512)
        PUT(" -ub %u", p->n_ubatch);
    if (p->n_seq > 1)
        PUT(" -np %u", p->n_seq);
    if (p->kv_unified)
        PUT(" --kv-unified");
    PUT(" -fa %s", r->flash_attn ? "on" : "off");
    if (p->type_k != 1)
        PUT(" -ctk %s", type_flag(p->type_k));
    if (p->type_v != 1)
        PUT(" -ctv %s", type_flag(p->type_v));
    if (pl->kind == GW_EST_PLAN_ONE_GPU && p->n_devices > 1) {
        PUT(" -sm none -mg %u", p->main_gpu);
    } else if (p->n_devices > 1 && p->split_mode == GW_EST_SPLIT_LAYER) {
        PUT(" -sm layer -ts ");
        for (uint32_t d = 0; d < p->n_devices; d++) {
            double v = p->tensor_split[d];
            bool all_zero = true;
            for (uint32_t e = 0; e < p->n_devices; e++)
                all_zero &= p->tensor_split[e] <= 0;
            if (all_zero)
                v = (double)(p->device_free[d] >> 20);
            PUT("%s%.0f", d ? "," : "", v);
        }
    }
#undef PUT
}

static int try_layout(const gw_est_model *m, const gw_est_params *p, gw_est_result *r, bool *fits,
                      gw_error *err)
{
    int rc = gw_est_estimate(m, p, r, err);
    if (rc != GW_OK)
        return rc;
    *fits = r->fits;
    return GW_OK;
}

int gw_est_plan_fit(const gw_est_model *m, const gw_est_params *p, gw_est_plan *pl, gw_error *err)
{
    memset(pl, 0, sizeof *pl);
    gw_est_params q = *p;
    bool fits = false;
    int rc;
    if (p->n_devices > GW_EST_MAX_DEVICES) /* order[] below holds that many */
        return gw__error_set(err, GW_EINVAL, "estimate: %u devices: at most %d", p->n_devices,
                             GW_EST_MAX_DEVICES);
    if (p->n_devices == 0) {
        pl->kind = GW_EST_PLAN_CPU;
        pl->params = q;
        rc = gw_est_estimate(m, &q, &pl->result, err);
        if (rc == GW_OK)
            make_flags(m, pl);
        return rc;
    }
    /* 1. one GPU, largest free first */
    uint32_t order[GW_EST_MAX_DEVICES];
    for (uint32_t i = 0; i < p->n_devices; i++)
        order[i] = i;
    for (uint32_t i = 0; i < p->n_devices; i++)
        for (uint32_t j = i + 1; j < p->n_devices; j++)
            if (p->device_free[order[j]] > p->device_free[order[i]]) {
                uint32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    if (p->n_gpu_layers < 0 || p->n_gpu_layers > (int32_t)m->n_layer) {
        for (uint32_t k = 0; k < p->n_devices; k++) {
            q = *p;
            q.split_mode = GW_EST_SPLIT_NONE;
            q.main_gpu = order[k];
            if ((rc = try_layout(m, &q, &pl->result, &fits, err)) != GW_OK)
                return rc;
            if (fits) {
                pl->kind = GW_EST_PLAN_ONE_GPU;
                pl->params = q;
                make_flags(m, pl);
                return GW_OK;
            }
        }
        /* 2. layer split proportional to free memory (after overhead+margin) */
        if (p->n_devices > 1) {
            q = *p;
            q.split_mode = GW_EST_SPLIT_LAYER;
            for (uint32_t d = 0; d < p->n_devices; d++) {
                uint64_t res = p->overhead + p->margin;
                q.tensor_split[d] =
                    p->device_free[d] > res ? (double)((p->device_free[d] - res) >> 20) : 0.0;
            }
            if ((rc = try_layout(m, &q, &pl->result, &fits, err)) != GW_OK)
                return rc;
            if (fits) {
                pl->kind = GW_EST_PLAN_SPLIT;
                pl->params = q;
                make_flags(m, pl);
                return GW_OK;
            }
        }
    }
    /* 3. partial offload: largest -ngl that fits (binary search) */
    gw_est_params base = *p;
    if (p->n_devices > 1) {
        base.split_mode = GW_EST_SPLIT_LAYER;
        for (uint32_t d = 0; d < p->n_devices; d++) {
            uint64_t res = p->overhead + p->margin;
            if (p->tensor_split[d] <= 0)
                base.tensor_split[d] =
                    p->device_free[d] > res ? (double)((p->device_free[d] - res) >> 20) : 0.0;
        }
    }
    int32_t lo = 0, hi = (int32_t)m->n_layer + 1, best = -1;
    if (p->n_gpu_layers >= 0 && p->n_gpu_layers < hi)
        hi = p->n_gpu_layers;
    gw_est_result rr;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        q = base;
        q.n_gpu_layers = mid;
        if ((rc = try_layout(m, &q, &rr, &fits, err)) != GW_OK)
            return rc;
        if (fits) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (best > 0) {
        q = base;
        q.n_gpu_layers = best;
        gw_est_estimate(m, &q, &pl->result, err);
        pl->kind = best > (int32_t)m->n_layer ? GW_EST_PLAN_AS_GIVEN : GW_EST_PLAN_PARTIAL;
        pl->params = q;
        make_flags(m, pl);
        return GW_OK;
    }
    /* 4. full offload with the largest context that fits */
    uint32_t c_hi = (p->n_ctx ? p->n_ctx : m->n_ctx_train) / 256, c_lo = 1, c_best = 0;
    while (c_lo <= c_hi) {
        uint32_t mid = c_lo + (c_hi - c_lo) / 2;
        q = base;
        q.n_gpu_layers = -1;
        q.n_ctx = mid * 256;
        if ((rc = try_layout(m, &q, &rr, &fits, err)) != GW_OK)
            return rc;
        if (fits) {
            c_best = mid;
            c_lo = mid + 1;
        } else {
            c_hi = mid - 1;
        }
    }
    if (c_best > 0) {
        q = base;
        q.n_gpu_layers = -1;
        q.n_ctx = c_best * 256;
        gw_est_estimate(m, &q, &pl->result, err);
        pl->kind = GW_EST_PLAN_REDUCED_CTX;
        pl->params = q;
        make_flags(m, pl);
        return GW_OK;
    }
    /* 5. nothing fits on the GPUs: CPU only */
    q = *p;
    q.n_gpu_layers = 0;
    rc = gw_est_estimate(m, &q, &pl->result, err);
    pl->result.fits = false;
    pl->kind = GW_EST_PLAN_CPU;
    pl->params = q;
    make_flags(m, pl);
    return rc;
}
