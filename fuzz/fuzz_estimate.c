/* fuzz_estimate.c — libFuzzer target for the estimator's readers of
 * untrusted GGUF headers and everything they feed.
 *
 * Owns: one entry point, LLVMFuzzerTestOneInput, that parses the input with
 * gw_gguf_open_memory_ex and then
 *   - reads it as a model (gw_est_model_read: model.c, recurrent.c's
 *     recurrent keys, hostcpu.c's weight-op table) and, when accepted,
 *     closes the GGUF handle (a model borrows nothing from it) and runs
 *     gw_est_estimate and gw_est_plan_fit under a fixed list of layouts:
 *     CPU only (host CPU none / haswell / sapphirerapids), one and two GPUs
 *     with partial and full offload, flash attention off and on, small and
 *     large contexts, and two layouts that must be refused;
 *   - reads it as a vision projector (gw_est_mmproj_read) and, when
 *     accepted, simulates its compute graph (gw_est_mmproj_compute) with
 *     and without flash attention, on the host, a CUDA GPU and a CPU GPU.
 * Every result is checked against the invariants estimate.h promises (each
 * gw_est_mem total is the sum of its parts, errors are the documented codes
 * with a message and a zeroed result, the functions are pure...); a
 * violation traps, so the fuzzer reports it.
 *
 * Sparse files: llama.cpp models are big and model_writer.py writes them
 * sparse, but the estimator reads only the header. An input whose header
 * parses completely but whose tensor data lies past its end
 * (GW_GGUF_FAULT_OUT_OF_FILE) is parsed again as the start of a 1 TiB file
 * of zeros, as gw_gguf_open would see a sparse file on disk; so a seed can
 * be a header alone, and the fuzzer can grow tensor shapes freely.
 *
 * Built two ways: with clang -fsanitize=fuzzer (scripts/fuzz-estimate.sh)
 * and, with fuzz/replay.c as main, as a plain program that replays the
 * corpus (tests/estimate/corpus) in the normal test suite. */
#include "core/util.h"
#include "estimate/estimate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                  \
    do {                          \
        if (!(c))                 \
            __builtin_trap();     \
    } while (0)

#define HOST UINT32_MAX
#define GIB (1ull << 30)
#define SPARSE_SIZE (1ull << 40)

/* A read-write anonymous reservation that stands for a sparse file: the
 * input at its start, zeros after it (pages never written cost nothing). */
static const uint8_t *as_sparse(const uint8_t *data, size_t size)
{
    static uint8_t *region;
    static size_t dirty; /* bytes written by earlier inputs */
    if (!region) {
        void *p = mmap(NULL, SPARSE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        region = p;
    }
    memcpy(region, data, size);
    if (dirty > size)
        memset(region + size, 0, dirty - size);
    dirty = size;
    return region;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void check_error(int rc, const gw_error *err)
{
    CHECK(err->code == rc && err->message[0] != '\0');
    CHECK(memchr(err->message, 0, sizeof err->message) != NULL);
}

/* ------------------------------------------------------------ the model */

static void check_model(const gw_est_model *m, size_t n_tensors)
{
    CHECK(m->n_layer >= 1 && m->n_layer <= GW_EST_MAX_LAYERS);
    CHECK(memchr(m->arch_name, 0, sizeof m->arch_name) && m->arch_name[0]);
    CHECK(m->approximate || m->arch != GW_EST_ARCH_GENERIC);
    CHECK(m->n_embd > 0 && m->n_vocab > 0);
    CHECK(m->n_expert_used <= m->n_expert);
    bool recr = false;
    uint64_t tensors = 0;
    for (uint32_t il = 0; il < m->n_layer; il++) {
        CHECK(m->n_head_kv[il] <= m->n_head);
        recr |= m->recr_layer[il];
    }
    CHECK(recr == m->has_recr);
    for (uint32_t s = 0; s < m->n_layer + 2; s++) {
        CHECK(m->layer_bytes[s] <= m->layer_bytes_cuda[s]);
        CHECK(m->layer_bytes[s] % 32 == 0 && m->layer_bytes_cuda[s] % 128 == 0);
        tensors += m->layer_tensors[s];
    }
    CHECK(tensors == n_tensors);
}

/* Layouts estimated for every model. ngl < -1 means "n_layer / -ngl". */
typedef struct layout {
    uint32_t n_dev;
    gw_est_backend backend;
    uint64_t free0, free1;
    int32_t ngl;
    gw_est_fa fa;
    uint32_t n_ctx, n_seq;
    gw_est_cpu_variant cpu;
    gw_est_split split;
    uint32_t main_gpu;
    uint32_t type_k, type_v;
    bool unified, swa_full, embeddings, no_host, no_op_offload;
    bool plan;    /* also run the planner */
    bool refused; /* must be GW_EINVAL */
} layout;

static const layout layouts[] = {
    /* CPU only, each buffer-type family */
    {.cpu = GW_EST_CPUV_NONE, .fa = GW_EST_FA_OFF, .n_ctx = 512, .plan = true},
    {.cpu = GW_EST_CPUV_HASWELL, .fa = GW_EST_FA_AUTO, .n_ctx = 0},
    {.cpu = GW_EST_CPUV_SAPPHIRERAPIDS, .fa = GW_EST_FA_ON, .n_ctx = 32768, .n_seq = 4},
    {.cpu = GW_EST_CPUV_ARMV8_2_2, .fa = GW_EST_FA_OFF, .n_ctx = 256, .n_seq = 2, .unified = true},
    /* one GPU: half the layers, then full offload with no host buffer */
    {.n_dev = 1, .backend = GW_EST_CUDA, .free0 = 24 * GIB, .ngl = -2, .fa = GW_EST_FA_ON,
     .n_ctx = 4096, .cpu = GW_EST_CPUV_HASWELL, .plan = true},
    {.n_dev = 1, .backend = GW_EST_CUDA, .free0 = 4 * GIB, .ngl = -1, .fa = GW_EST_FA_OFF,
     .n_ctx = 1u << 20, .cpu = GW_EST_CPUV_SAPPHIRERAPIDS, .no_host = true, .embeddings = true},
    /* two GPUs: partial (every layer but the output), full (pipeline
     * parallel), one GPU by -sm none, a CPU-backend pair */
    {.n_dev = 2, .backend = GW_EST_CUDA, .free0 = 16 * GIB, .free1 = 8 * GIB, .ngl = -3,
     .fa = GW_EST_FA_OFF, .n_ctx = 8192, .cpu = GW_EST_CPUV_HASWELL, .plan = true},
    {.n_dev = 2, .backend = GW_EST_CUDA, .free0 = 80 * GIB, .free1 = 80 * GIB, .ngl = -1,
     .fa = GW_EST_FA_ON, .n_ctx = 131072, .n_seq = 3, .type_k = 8, .type_v = 8,
     .cpu = GW_EST_CPUV_ZEN4, .swa_full = true},
    {.n_dev = 2, .backend = GW_EST_CUDA, .free0 = 2 * GIB, .free1 = 2 * GIB, .ngl = -1,
     .fa = GW_EST_FA_ON, .n_ctx = 2048, .split = GW_EST_SPLIT_NONE, .main_gpu = 1,
     .no_op_offload = true},
    {.n_dev = 2, .backend = GW_EST_CPU, .free0 = 8 * GIB, .free1 = 8 * GIB, .ngl = -2,
     .fa = GW_EST_FA_ON, .n_ctx = 1024, .type_k = 2, .type_v = 1},
    /* refused: a quantized V cache without flash attention; 17 devices */
    {.n_dev = 1, .backend = GW_EST_CUDA, .free0 = 8 * GIB, .ngl = -1, .fa = GW_EST_FA_OFF,
     .n_ctx = 1024, .type_k = 1, .type_v = 8, .refused = true},
    {.n_dev = GW_EST_MAX_DEVICES + 1, .backend = GW_EST_CUDA, .ngl = -1, .fa = GW_EST_FA_ON,
     .n_ctx = 1024, .plan = true, .refused = true},
};

static void make_params(const gw_est_model *m, const layout *l, gw_est_params *p)
{
    gw_est_params_init(p);
    p->n_ctx = l->n_ctx;
    p->n_seq = l->n_seq ? l->n_seq : 1;
    p->kv_unified = l->unified;
    p->swa_full = l->swa_full;
    p->embeddings = l->embeddings;
    p->flash_attn = l->fa;
    if (l->type_k || l->type_v) {
        p->type_k = l->type_k;
        p->type_v = l->type_v;
    }
    p->n_gpu_layers = l->ngl >= -1 ? l->ngl : (int32_t)(m->n_layer / (uint32_t)-l->ngl);
    p->split_mode = l->split;
    p->main_gpu = l->main_gpu;
    p->n_devices = l->n_dev;
    p->backend = l->backend;
    for (uint32_t d = 0; d < l->n_dev && d < GW_EST_MAX_DEVICES; d++)
        p->device_free[d] = d == 0 ? l->free0 : l->free1;
    p->host_cpu = l->cpu;
    p->no_host = l->no_host;
    p->no_op_offload = l->no_op_offload;
}

static void check_mem(const gw_est_mem *x)
{
    uint64_t t = 0;
    CHECK(gw__add_u64(t, x->weights, &t) && gw__add_u64(t, x->kv, &t) &&
          gw__add_u64(t, x->compute, &t) && gw__add_u64(t, x->output, &t) &&
          gw__add_u64(t, x->mmproj, &t) && gw__add_u64(t, x->overhead, &t) &&
          gw__add_u64(t, x->mmproj_compute, &t));
    CHECK(t == x->total);
}

static void check_result(const gw_est_model *m, const gw_est_params *p, const gw_est_result *r)
{
    uint32_t n_dev = p->n_devices;
    CHECK(r->n_devices == n_dev);
    CHECK(r->n_ctx >= 256 && r->n_ctx % 256 == 0 && r->n_ctx_seq % 256 == 0);
    CHECK(r->n_ctx == (p->kv_unified ? r->n_ctx_seq : r->n_ctx_seq * r->n_seq));
    CHECK(r->n_seq == (p->n_seq ? p->n_seq : 1));
    CHECK(r->n_stream == (p->kv_unified ? 1 : r->n_seq));
    CHECK(r->n_ubatch >= 1 && r->n_ubatch <= r->n_batch && r->n_batch <= r->n_ctx);
    CHECK(r->kv_size == r->n_ctx_seq && r->kv_size_swa <= r->kv_size);
    CHECK(r->flash_attn == (p->flash_attn != GW_EST_FA_OFF));
    CHECK(r->approximate == m->approximate && r->host_cpu == p->host_cpu);
    CHECK(r->n_gpu_layers >= 0 && (n_dev > 0 || r->n_gpu_layers == 0));
    CHECK(r->layer_device[0] == HOST);
    for (uint32_t il = 0; il <= m->n_layer; il++)
        CHECK(r->layer_device[il + 1] == HOST || r->layer_device[il + 1] < n_dev);
    CHECK(all_zero(&r->layer_device[m->n_layer + 2],
                   (GW_EST_MAX_LAYERS - m->n_layer) * sizeof r->layer_device[0]));
    bool fits = true;
    uint64_t kv = 0, kv_kv;
    for (uint32_t d = 0; d < GW_EST_MAX_DEVICES; d++) {
        const gw_est_mem *x = &r->device[d];
        if (d >= n_dev) {
            CHECK(all_zero(x, sizeof *x));
            continue;
        }
        check_mem(x);
        CHECK(x->overhead == p->overhead && x->output == 0);
        uint64_t need;
        if (!gw__add_u64(x->total, p->margin, &need) || need > p->device_free[d])
            fits = false;
        CHECK(gw__add_u64(kv, x->kv, &kv));
    }
    check_mem(&r->host);
    CHECK(gw__add_u64(kv, r->host.kv, &kv));
    CHECK(fits == r->fits);
    /* the K/V split is the CPU-aligned cache; devices pad it, states add to it */
    CHECK(gw__add_u64(r->kv_k, r->kv_v, &kv_kv) && kv_kv <= kv);
    if (!p->mmproj) {
        CHECK(r->host.mmproj_compute == 0 && !r->mmproj_approximate);
        for (uint32_t d = 0; d < n_dev; d++)
            CHECK(r->device[d].mmproj_compute == 0);
    }
}

/* One estimate: the documented codes only; a zeroed result on error. */
static int estimate(const gw_est_model *m, const gw_est_params *p, gw_est_result *r)
{
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_est_estimate(m, p, r, &err);
    if (rc == GW_OK) {
        check_result(m, p, r);
        return rc;
    }
    CHECK(rc == GW_EINVAL || rc == GW_ERANGE);
    check_error(rc, &err);
    CHECK(all_zero(r, sizeof *r));
    return rc;
}

static void plan(const gw_est_model *m, const gw_est_params *p)
{
    gw_est_plan *pl = malloc(sizeof *pl);
    gw_est_result *again = malloc(sizeof *again);
    CHECK(pl && again);
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_est_plan_fit(m, p, pl, &err);
    if (rc != GW_OK) {
        CHECK(rc == GW_EINVAL || rc == GW_ERANGE);
        check_error(rc, &err);
    } else {
        CHECK(pl->kind <= GW_EST_PLAN_AS_GIVEN);
        CHECK(memchr(pl->flags, 0, sizeof pl->flags) && pl->flags[0]);
        CHECK(pl->kind == GW_EST_PLAN_CPU || pl->result.fits);
        CHECK(p->n_devices > 0 || pl->kind == GW_EST_PLAN_CPU);
        /* the plan's result is what its own parameters estimate to */
        CHECK(estimate(m, &pl->params, again) == GW_OK);
        if (pl->kind == GW_EST_PLAN_CPU)
            again->fits = pl->result.fits;
        CHECK(memcmp(again, &pl->result, sizeof *again) == 0);
    }
    free(again);
    free(pl);
}

static void run_model(const gw_est_model *m, const gw_est_mmproj *mp)
{
    gw_est_result *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    CHECK(r && r2);
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        gw_est_params p;
        make_params(m, &layouts[i], &p);
        int rc = estimate(m, &p, r);
        if (layouts[i].refused)
            CHECK(rc == GW_EINVAL);
        if (i == 4) { /* pure: the same inputs give the same bytes */
            CHECK(estimate(m, &p, r2) == rc);
            CHECK(memcmp(r, r2, sizeof *r) == 0);
        }
        if (layouts[i].plan)
            plan(m, &p);
        if (mp && i == 4) { /* a projector beside the model */
            p.mmproj = mp;
            p.mmproj_bytes = mp->weight_bytes;
            if (estimate(m, &p, r) == GW_OK) {
                CHECK(r->device[0].mmproj == mp->weight_bytes);
                CHECK(r->mmproj_approximate == mp->approximate);
            }
        }
    }
    free(r2);
    free(r);
}

/* ------------------------------------------------------- the projector */

static void run_mmproj(const gw_est_mmproj *mp)
{
    CHECK(mp->projector[0] && memchr(mp->projector, 0, sizeof mp->projector));
    if (mp->vision) {
        CHECK(mp->patch_size > 0 && mp->warmup_size >= mp->patch_size);
        CHECK(mp->n_embd > 0 && mp->n_head > 0 && mp->head_dim > 0 && mp->n_head_kv > 0);
        CHECK(mp->n_layer <= GW_EST_MAX_LAYERS && mp->n_merge > 0);
        CHECK(mp->t[GW_EST_MM_PATCH].present);
    }
    static const struct {
        bool gpu, cuda;
    } at[] = {{false, false}, {true, true}, {true, false}};
    for (int fa = 0; fa < 2; fa++)
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            uint64_t out[2] = {1, 1}, again[2];
            gw_error err;
            gw_error_clear(&err);
            int rc = gw_est_mmproj_compute(mp, fa, at[i].gpu, at[i].cuda, out, &err);
            if (rc != GW_OK) {
                CHECK(rc == GW_ERANGE || rc == GW_ENOMEM);
                check_error(rc, &err);
                CHECK(out[0] == 0 && out[1] == 0);
                continue;
            }
            CHECK(at[i].gpu || out[0] == 0);
            CHECK(mp->vision || (out[0] == 0 && out[1] == 0));
            if (fa == 1 && i == 1) { /* pure */
                CHECK(gw_est_mmproj_compute(mp, fa, at[i].gpu, at[i].cuda, again, &err) == GW_OK);
                CHECK(again[0] == out[0] && again[1] == out[1]);
            }
        }
}

/* ------------------------------------------------------------ the entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_gguf *g = NULL;
    gw_error err;
    gw_gguf_fault fault;
    int rc = gw_gguf_open_memory_ex(&g, data, size, NULL, &fault, &err);
    if (rc != GW_OK && fault == GW_GGUF_FAULT_OUT_OF_FILE) {
        const uint8_t *sparse = as_sparse(data, size);
        if (!sparse)
            return 0;
        rc = gw_gguf_open_memory_ex(&g, sparse, SPARSE_SIZE, NULL, &fault, &err);
    }
    if (rc != GW_OK)
        return 0; /* the GGUF reader's own target checks its refusals */

    gw_est_mmproj *mp = malloc(sizeof *mp);
    CHECK(mp);
    gw_error_clear(&err);
    rc = gw_est_mmproj_read(g, mp, &err);
    if (rc != GW_OK) {
        CHECK(rc == GW_EPARSE);
        check_error(rc, &err);
        CHECK(all_zero(mp, sizeof *mp));
    }
    bool have_mp = rc == GW_OK;

    gw_est_model *m = (gw_est_model *)1;
    gw_error_clear(&err);
    rc = gw_est_model_read(g, &m, &err);
    size_t n_tensors = gw_gguf_tensor_count(g);
    gw_gguf_close(g); /* neither reader keeps anything of the handle */
    if (rc != GW_OK) {
        CHECK(m == NULL);
        CHECK(rc == GW_ENOTSUP || rc == GW_EPARSE || rc == GW_ERANGE || rc == GW_ENOMEM);
        check_error(rc, &err);
    } else {
        CHECK(m != NULL);
        check_model(m, n_tensors);
        run_model(m, have_mp ? mp : NULL);
        gw_est_model_free(m);
    }
    if (have_mp)
        run_mmproj(mp);
    free(mp);
    return 0;
}
