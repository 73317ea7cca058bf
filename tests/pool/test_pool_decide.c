/* test_pool_decide.c — the pool's placement decision (gw_pool_decide)
 * against the rule written out plainly, on random GPUs and candidates.
 *
 *   test_pool_decide --ledger-dir DIR MODEL.gguf   (test_pool_decide.py runs it)
 *
 * gw_pool_decide takes shortcuts for speed: the estimator's figures are
 * memoised per split, hopeless search steps skip the planner, and search
 * steps plan without reason texts. None of that may change a decision.
 * The reference here plans every step with gw_place and the model's own
 * (unmemoised) refine step, and applies docs/pool.md's rule: the shortest
 * least-recently-used prefix of the idle candidates after which the model
 * fits, then each of it that is not needed given back, most recent first.
 * Both must agree on whether it fits, which candidates go, and the plan
 * (devices, layers per device, -ngl), for 3,000 random cases.
 *
 * Candidates' reservations are set in the pool's private table
 * (pool/pool_impl.h): no model server runs. Each reservation's bytes are
 * also in its GPU's `pending` (as the ledger puts them), so giving a
 * candidate back frees exactly its bytes there.
 */
#include "pool/pool_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1ull << 30)
#define MIB (1ull << 20)
#define MAX_GPUS 8
#define N_CAND 6
#define CASES 3000

static unsigned failures;

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t n) /* xorshift64*, uniform enough for a test */
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return (rnd_state * 0x2545f4914f6cdd1dull) % n;
}

static void die(const char *what, const gw_error *err)
{
    fprintf(stderr, "test_pool_decide: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static gw_pool *open_pool(const char *dir, const char *model)
{
    gw_error err;
    gw_error_clear(&err);
    gw_pool_config cfg;
    gw_pool_config_default(&cfg);
    char ledger[1024];
    snprintf(ledger, sizeof ledger, "%s/test_pool_decide.db", dir);
    if (gw_pool_config_set(&cfg, "ledger", ledger, &err) != GW_OK ||
        gw_pool_config_set(&cfg, "idle_ttl_s", "0", &err) != GW_OK ||
        gw_pool_config_set(&cfg, "health_interval_s", "0", &err) != GW_OK ||
        gw_pool_config_set(&cfg, "enable_gpu_monitoring", "false", &err) != GW_OK ||
        gw_pool_config_set(&cfg, "margin", "64MiB", &err) != GW_OK)
        die("config", &err);
    cfg.models = calloc(1 + N_CAND, sizeof *cfg.models);
    if (!cfg.models)
        die("config", NULL);
    for (size_t i = 0; i < 1 + N_CAND; i++) {
        gw_pool_model_config *m = &cfg.models[cfg.n_models++];
        snprintf(m->name, sizeof m->name, "m%zu", i);
        snprintf(m->path, sizeof m->path, "%s", model);
        m->ctx = 16384;
        m->parallel = 2;
        m->idle_ttl_s = -1;
        m->allow_partial = -1;
    }
    gw_pool *p = NULL;
    if (gw_pool_config_finish(&cfg, &err) != GW_OK || gw_pool_open(&p, &cfg, &err) != GW_OK)
        die("pool", &err);
    if (!p->models[0].req_ready || !p->models[0].base_refine)
        die("the model's estimate", NULL);
    return p;
}

/* Random GPUs, and the candidates' reservations on them (also pending). */
static size_t make_case(gw_pool *p, gw_place_device *d, uint64_t footprint)
{
    size_t n = 1 + (size_t)rnd(MAX_GPUS);
    for (size_t i = 0; i < n; i++) {
        memset(&d[i], 0, sizeof d[i]);
        snprintf(d[i].uuid, sizeof d[i].uuid, "GPU-test-%02zu", i);
        d[i].vendor = GW_VENDOR_NVIDIA;
        d[i].index = d[i].source_index = (uint32_t)i;
        d[i].state = rnd(20) ? GW_DEVICE_OK : GW_DEVICE_LOST;
        d[i].has_free = true;
        d[i].total = footprint / 2 + rnd(footprint * 3); /* sized around the model */
        d[i].free = rnd(d[i].total);
    }
    for (size_t c = 1; c <= N_CAND; c++) {
        gw_pool_model *m = &p->models[c];
        gw_reservation_clear(&m->res);
        size_t g = (size_t)rnd(n);
        /* sizes around the model's footprint, so that evictions matter */
        uint64_t bytes = footprint / 8 + rnd(footprint);
        m->res.id = (int64_t)c;
        m->res.n_devices = 1;
        m->res.devices = calloc(1, sizeof *m->res.devices);
        if (!m->res.devices)
            die("reservation", NULL);
        memcpy(m->res.devices[0].uuid, d[g].uuid, sizeof d[g].uuid);
        m->res.devices[0].bytes = bytes;
        d[g].pending += bytes;
        d[g].free = d[g].free > d[g].pending ? d[g].free : d[g].pending;
        d[g].total = d[g].total > d[g].free ? d[g].total : d[g].free;
    }
    return n;
}

/* gw_place on devs with the candidates of set given back, unmemoised. */
static bool ref_plan(gw_pool *p, const gw_place_device *devs, size_t n, const size_t *set,
                     size_t n_set, gw_plan *plan)
{
    gw_place_device sim[MAX_GPUS];
    memcpy(sim, devs, n * sizeof *sim);
    for (size_t k = 0; k < n_set; k++) {
        const gw_reservation *r = &p->models[set[k]].res;
        for (size_t g = 0; g < n; g++)
            if (!strcmp(sim[g].uuid, r->devices[0].uuid))
                sim[g].pending -= r->devices[0].bytes;
    }
    gw_place_need need = p->models[0].req.need;
    need.refine = p->models[0].base_refine;
    need.refine_ctx = p->models[0].base_refine_ctx;
    gw_error err;
    gw_plan_release(plan);
    gw_plan_init(plan);
    if (gw_place(sim, n, &need, &p->models[0].req.opts, plan, &err) != GW_OK)
        die("reference plan", &err);
    return plan->fits;
}

/* docs/pool.md's rule, written out: returns how many go (into set). */
static size_t reference(gw_pool *p, const gw_place_device *devs, size_t n, const size_t *cand,
                        size_t n_cand, size_t *set, gw_plan *plan)
{
    size_t k = 0;
    bool fits = ref_plan(p, devs, n, set, 0, plan);
    while (!fits && k < n_cand) {
        set[k] = cand[k];
        k++;
        fits = ref_plan(p, devs, n, set, k, plan);
    }
    if (!fits)
        return 0;
    for (size_t j = k - 1; k > 1 && j-- > 0;) {
        size_t trial[N_CAND], t = 0;
        for (size_t i = 0; i < k; i++)
            if (i != j)
                trial[t++] = set[i];
        if (ref_plan(p, devs, n, trial, t, plan)) {
            memcpy(set, trial, t * sizeof *set);
            k = t;
        }
    }
    ref_plan(p, devs, n, set, k, plan);
    return k;
}

static bool same_plan(const gw_plan *a, const gw_plan *b)
{
    if (a->fits != b->fits || (a->fits && (a->n_used != b->n_used || a->ngl != b->ngl)))
        return false;
    for (size_t i = 0; a->fits && i < a->n_used; i++)
        if (a->used[i].device != b->used[i].device || a->used[i].n_units != b->used[i].n_units ||
            a->used[i].bytes != b->used[i].bytes)
            return false;
    return true;
}

static void check_case(gw_pool *p, unsigned no, uint64_t footprint, unsigned *evictions)
{
    gw_place_device devs[MAX_GPUS];
    size_t n = make_case(p, devs, footprint);
    size_t cand[N_CAND], n_cand = 0;
    for (size_t c = 1; c <= N_CAND; c++) /* a random LRU order of a random subset */
        if (rnd(4))
            cand[n_cand++] = c;
    for (size_t i = n_cand; i > 1; i--) {
        size_t j = (size_t)rnd(i), t = cand[i - 1];
        cand[i - 1] = cand[j];
        cand[j] = t;
    }
    gw_plan got, want;
    gw_plan_init(&got);
    gw_plan_init(&want);
    size_t evict[N_CAND + 1], n_evict = 0, set[N_CAND];
    gw_error err;
    if (gw_pool_decide(p, 0, devs, n, cand, n_cand, NULL, 0, &got, evict, &n_evict, &err) != GW_OK)
        die("gw_pool_decide", &err);
    size_t k = reference(p, devs, n, cand, n_cand, set, &want);
    bool same = got.fits == want.fits && n_evict == k && same_plan(&got, &want);
    for (size_t i = 0; same && i < k; i++)
        same = evict[i] == set[i];
    if (!same && getenv("DECIDE_DEBUG") && failures < 2) {
        for (size_t g = 0; g < n; g++)
            fprintf(stderr, "  gpu %zu: state %d total %llu free %llu pending %llu usable %llu\n", g,
                    devs[g].state, (unsigned long long)devs[g].total,
                    (unsigned long long)devs[g].free, (unsigned long long)devs[g].pending,
                    (unsigned long long)gw_place_usable(&devs[g], p->models[0].req.opts.margin));
        for (size_t i = 0; i < n_cand; i++)
            fprintf(stderr, "  cand %zu: %s %llu\n", cand[i], p->models[cand[i]].res.devices[0].uuid,
                    (unsigned long long)p->models[cand[i]].res.devices[0].bytes);
        uint64_t u = 0;
        for (size_t i = 0; i < p->models[0].req.need.n_units; i++)
            u += p->models[0].req.need.unit_bytes[i];
        fprintf(stderr, "  units %llu overhead %llu; want reason: %s; got reason: %s\n",
                (unsigned long long)u, (unsigned long long)p->models[0].req.need.overhead,
                want.reason, got.reason);
    }
    if (!same && failures++ < 10)
        fprintf(stderr, "case %u (%zu GPUs, %zu candidates): decide fits=%d evicts %zu, the "
                        "rule fits=%d evicts %zu\n", no, n, n_cand, got.fits, n_evict, want.fits, k);
    *evictions += (unsigned)n_evict;
    gw_plan_release(&got);
    gw_plan_release(&want);
}

int main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "--ledger-dir") != 0) {
        fprintf(stderr, "usage: test_pool_decide --ledger-dir DIR MODEL.gguf\n");
        return 2;
    }
    gw_pool *p = open_pool(argv[2], argv[3]);
    /* the model's footprint on one empty GPU, to size the cases */
    gw_place_device roomy = {.state = GW_DEVICE_OK, .has_free = true, .total = 80 * GIB,
                             .free = 80 * GIB};
    snprintf(roomy.uuid, sizeof roomy.uuid, "GPU-roomy");
    gw_plan probe;
    gw_plan_init(&probe);
    gw_error err;
    if (gw_place(&roomy, 1, &p->models[0].req.need, &p->models[0].req.opts, &probe, &err) !=
            GW_OK || !probe.fits)
        die("probe", &err);
    uint64_t footprint = probe.gpu_bytes;
    gw_plan_release(&probe);
    unsigned evictions = 0;
    for (unsigned i = 0; i < CASES; i++)
        check_case(p, i, footprint, &evictions);
    printf("%u cases, %u evictions chosen, %u disagreements\n", CASES, evictions, failures);
    gw_pool_close(p);
    if (evictions == 0) {
        fprintf(stderr, "no case needed an eviction: the cases test nothing\n");
        return 1;
    }
    return failures ? 1 : 0;
}
