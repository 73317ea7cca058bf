/* pool_decide.c — what one placement decision of `gpuwatch pool` costs.
 *
 *   pool_decide [--quick] --ledger-dir DIR MODEL.gguf
 *
 * Opens a real pool (gw_pool_open: the model's exact GGUF estimate is
 * prepared once per model there, as in `gpuwatch pool`) with 7 models of
 * MODEL.gguf: "target" (the one being loaded) and c1..c6 (idle, loaded
 * models the decision may evict). Then times gw_pool_decide (pool.h: the
 * plan on a fresh device array, the eviction choice among the idle
 * candidates, no I/O) on 8 GPUs of 80 GiB:
 *
 *   fits      the target fits as is (6 idle candidates offered, none needed)
 *   evict 2   the GPUs are full: 2 of the 6 candidates (the 1st and 2nd
 *             least recently used, both on GPU 0) must go
 *   evict 2t  the LRU prefix takes 3 and the trim gives one back (c2's
 *             memory is on a GPU that does not help): c1 and c3 go
 *
 * and, for comparison, gw_place alone (one plan) for the same need on the
 * same devices, and the decision without the estimator's refine step (the
 * exact per-split estimate gw_place asks for every fitting plan) to show
 * its share. Each figure: ns per call, median and best of 15 batches of
 * about 20 ms (wall clock and this thread's CPU clock: on a shared machine
 * the wall clock also counts waiting for a core).
 *
 * The models' reservations are set directly in the pool's private model
 * table (pool/pool_impl.h, not installed): a benchmark-only shortcut that
 * avoids starting 6 model servers; gw_pool_decide reads only m->res and
 * m->child (NULL here: no process seen using memory).
 * Target (issue: gpuwatch pool): <= 10 us per placement decision.
 * GPUs: the pool opens its monitor as configured (pool_bench.py sets the
 * fake NVML through GPUWATCH_NVML_LIBRARY / GPUWATCH_FAKE_NVML_SCENARIO);
 * the decisions themselves use the synthetic device arrays below.
 */
#include "pool/pool_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GIB (1ull << 30)
#define MIB (1ull << 20)
#define N_GPUS 8
#define N_CAND 6
#define BATCHES 15

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const gw_error *err)
{
    fprintf(stderr, "pool_decide: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* 8 GPUs of 80 GiB, each with free = free_b[i] (+ margin) and pending
 * reservations on some. */
static void make_devices(gw_place_device *d, const uint64_t *free_b, uint64_t margin)
{
    for (size_t i = 0; i < N_GPUS; i++) {
        memset(&d[i], 0, sizeof d[i]);
        snprintf(d[i].uuid, sizeof d[i].uuid, "GPU-bench-%02zu-0000-0000-0000-000000000000", i);
        snprintf(d[i].name, sizeof d[i].name, "NVIDIA H100 80GB HBM3");
        d[i].vendor = GW_VENDOR_NVIDIA;
        d[i].index = d[i].source_index = (uint32_t)i;
        d[i].state = GW_DEVICE_OK;
        d[i].has_free = true;
        d[i].total = 80 * GIB;
        d[i].free = free_b[i] + margin;
        d[i].pending = 0;
        d[i].has_temp = true;
        d[i].temp_mc = 55000;
        d[i].has_temp_limit = true;
        d[i].temp_limit_mc = 87000;
    }
}

/* Gives model m a reservation of bytes on GPU gpu (heap devices: the pool
 * frees them with gw_reservation_clear). */
static void set_res(gw_pool_model *m, int64_t id, const gw_place_device *devs, size_t gpu,
                    uint64_t bytes)
{
    gw_reservation_clear(&m->res);
    m->res.id = id;
    m->res.n_devices = 1;
    m->res.devices = calloc(1, sizeof *m->res.devices);
    if (!m->res.devices)
        die("reservation", NULL);
    _Static_assert(sizeof m->res.devices[0].uuid == sizeof devs[gpu].uuid, "uuid sizes");
    memcpy(m->res.devices[0].uuid, devs[gpu].uuid, sizeof m->res.devices[0].uuid);
    m->res.devices[0].bytes = bytes;
}

typedef struct timing {
    double wall_med, wall_best, cpu_med;
    long per_batch;
} timing;

typedef struct decide_case {
    gw_pool *p;
    size_t target;
    const gw_place_device *devs;
    const size_t *cand;
    size_t n_cand;
    const gw_place_seen *seen;
    size_t n_seen;
    gw_plan plan;
    size_t evict[N_CAND];
    size_t n_evict;
    bool place_only; /* gw_place on devs instead of gw_pool_decide */
} decide_case;

static void run_once(decide_case *c)
{
    gw_error err;
    gw_place_device *work = (gw_place_device *)c->devs; /* read only by both */
    int rc;
    if (c->place_only) {
        const gw_pool_model *m = &c->p->models[c->target];
        rc = gw_place(work, N_GPUS, &m->req.need, &m->req.opts, &c->plan, &err);
    } else {
        rc = gw_pool_decide(c->p, c->target, work, N_GPUS, c->cand, c->n_cand, c->seen, c->n_seen,
                            &c->plan, c->evict, &c->n_evict, &err);
    }
    if (rc != GW_OK)
        die("decide", &err);
}

static timing time_case(decide_case *c, bool quick)
{
    /* calibrate: a batch of about 20 ms (2 ms with --quick) */
    run_once(c);
    long n = 1;
    int64_t target_ns = quick ? 2000000 : 20000000;
    for (;;) {
        int64_t t0 = clock_ns(CLOCK_MONOTONIC);
        for (long k = 0; k < n; k++)
            run_once(c);
        int64_t dt = clock_ns(CLOCK_MONOTONIC) - t0;
        if (dt >= target_ns / 4 || n >= (1L << 24)) {
            n = dt > 0 ? (long)((double)n * (double)target_ns / (double)dt) : n * 4;
            if (n < 1)
                n = 1;
            break;
        }
        n *= 4;
    }
    double wall[BATCHES], cpu[BATCHES];
    int batches = quick ? 5 : BATCHES;
    for (int b = 0; b < batches; b++) {
        int64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (long k = 0; k < n; k++)
            run_once(c);
        wall[b] = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / (double)n;
        cpu[b] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
    }
    qsort(wall, (size_t)batches, sizeof *wall, cmp_double);
    qsort(cpu, (size_t)batches, sizeof *cpu, cmp_double);
    timing t = {wall[batches / 2], wall[0], cpu[batches / 2], n};
    return t;
}

/* The estimator's refine step, counted (only in the untimed call that
 * reports how many a decision makes). */
static gw_place_refine_fn refine_inner;
static void *refine_inner_ctx;
static unsigned refine_calls;

static int refine_counted(void *ctx, const gw_place_device *devs, const gw_plan *plan,
                          uint64_t *bytes, gw_error *err)
{
    (void)ctx;
    refine_calls++;
    return refine_inner(refine_inner_ctx, devs, plan, bytes, err);
}

static void report(const char *label, decide_case *c, const timing *t, unsigned refines)
{
    char ev[64] = "";
    size_t l = 0;
    for (size_t k = 0; k < c->n_evict && !c->place_only; k++)
        l += (size_t)snprintf(ev + l, sizeof ev - l, "%s%s", k ? "," : "",
                              c->p->models[c->evict[k]].cfg.name);
    char used[64] = "";
    l = 0;
    for (size_t k = 0; k < c->plan.n_used && l < sizeof used - 8; k++)
        l += (size_t)snprintf(used + l, sizeof used - l, "%s%u", k ? "," : "",
                              c->plan.used[k].device);
    /* one line per case; pool_bench.py reads the key=value fields */
    printf("case=%-22s median_ns=%-9.0f best_ns=%-9.0f cpu_median_ns=%-9.0f fits=%d gpus=%s "
           "evicted=%zu(%s) refines=%u batch=%ld\n",
           label, t->wall_med, t->wall_best, t->cpu_med, c->plan.fits, used[0] ? used : "-",
           c->place_only ? 0 : c->n_evict, ev[0] ? ev : "-", refines, t->per_batch);
    fflush(stdout);
}

/* Times a case, then runs it once more counting the refine calls. */
static void measure(const char *label, decide_case *c, bool quick)
{
    timing t = time_case(c, quick);
    gw_place_need *need = &c->p->models[c->target].req.need;
    unsigned refines = 0;
    if (need->refine) {
        need->refine = refine_counted;
        refine_calls = 0;
        run_once(c);
        refines = refine_calls;
        need->refine = refine_inner;
    }
    report(label, c, &t, refines);
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *ledger_dir = NULL, *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--ledger-dir") && i + 1 < argc)
            ledger_dir = argv[++i];
        else if (argv[i][0] != '-' && !model)
            model = argv[i];
        else {
            fprintf(stderr, "usage: pool_decide [--quick] --ledger-dir DIR MODEL.gguf\n");
            return 2;
        }
    }
    if (!ledger_dir || !model) {
        fprintf(stderr, "usage: pool_decide [--quick] --ledger-dir DIR MODEL.gguf\n");
        return 2;
    }
    gw_error err;
    gw_error_clear(&err);
    gw_pool_config cfg;
    gw_pool_config_default(&cfg);
    char ledger[1024];
    snprintf(ledger, sizeof ledger, "%s/pool_decide-ledger.db", ledger_dir);
    if (gw_pool_config_set(&cfg, "ledger", ledger, &err) != GW_OK ||
        gw_pool_config_set(&cfg, "idle_ttl_s", "0", &err) != GW_OK ||
        gw_pool_config_set(&cfg, "health_interval_s", "0", &err) != GW_OK)
        die("config", &err);
    static const char *const names[1 + N_CAND] = {"target", "c1", "c2", "c3", "c4", "c5", "c6"};
    cfg.models = calloc(1 + N_CAND, sizeof *cfg.models);
    if (!cfg.models)
        die("config", NULL);
    for (size_t i = 0; i < 1 + N_CAND; i++) {
        gw_pool_model_config *m = &cfg.models[cfg.n_models++];
        snprintf(m->name, sizeof m->name, "%s", names[i]);
        snprintf(m->path, sizeof m->path, "%s", model);
        m->ctx = 32768;
        m->parallel = 4;
        m->idle_ttl_s = -1;
        m->allow_partial = -1;
    }
    if (gw_pool_config_finish(&cfg, &err) != GW_OK)
        die("config", &err);
    gw_pool *p = NULL;
    int64_t t_open = clock_ns(CLOCK_MONOTONIC);
    if (gw_pool_open(&p, &cfg, &err) != GW_OK)
        die("gw_pool_open", &err);
    t_open = clock_ns(CLOCK_MONOTONIC) - t_open;
    gw_pool_model *target = &p->models[0];
    if (!target->req_ready)
        die("the model's estimate", NULL);
    const gw_place_need *need = &target->req.need;
    uint64_t margin = target->req.opts.margin;

    /* The target's exact footprint on one GPU: plan it on empty GPUs. */
    uint64_t roomy[N_GPUS];
    for (size_t i = 0; i < N_GPUS; i++)
        roomy[i] = 70 * GIB;
    gw_place_device devs[N_GPUS];
    make_devices(devs, roomy, margin);
    gw_plan probe;
    gw_plan_init(&probe);
    if (gw_place(devs, N_GPUS, need, &target->req.opts, &probe, &err) != GW_OK || !probe.fits ||
        probe.n_used != 1)
        die("probe plan (does the model fit one empty 80 GiB GPU?)", &err);
    uint64_t B = probe.gpu_bytes;
    gw_plan_release(&probe);
    printf("model: %s\n  %s; %zu units, overhead %.1f MiB, one-GPU footprint %.1f MiB, "
           "margin %.0f MiB; pool opened (estimates prepared) in %.1f ms\n",
           model, target->req.model_note, need->n_units, (double)need->overhead / MIB,
           (double)B / MIB, (double)margin / MIB, (double)t_open / 1e6);

    /* Processes the snapshot saw (none of them a candidate's child). */
    gw_place_seen seen[8];
    for (size_t i = 0; i < 8; i++)
        seen[i] = (gw_place_seen){.pid = 40000 + (uint32_t)i, .device = (uint32_t)i,
                                  .bytes = (i + 1) * GIB};
    size_t cand[N_CAND];
    for (size_t k = 0; k < N_CAND; k++)
        cand[k] = 1 + k; /* c1 least recently used ... c6 most */

    decide_case c;
    memset(&c, 0, sizeof c);
    gw_plan_init(&c.plan);
    c.p = p;
    c.target = 0;
    c.devs = devs;
    c.cand = cand;
    c.n_cand = N_CAND;
    c.seen = seen;
    c.n_seen = 8;
    refine_inner = target->req.need.refine;
    refine_inner_ctx = target->req.need.refine_ctx;
    gw_place_device after[N_GPUS];
    /* Pass 0 as the pool runs; pass 1 without the estimator's refine step
     * (the layer profile's figures taken as final): its share of a decision. */
    for (int pass = 0; pass < 2; pass++) {
        const char *sfx = pass ? "/no-refine" : "";
        target->req.need.refine = pass ? NULL : refine_inner;
        char label[64];

        /* 1. fits: mixed free memory, reservations pending on three GPUs;
         * the candidates' reservations elsewhere (not needed). */
        pthread_mutex_lock(&p->lock);
        {
            uint64_t fr[N_GPUS] = {B / 2, 3 * B / 4, 40 * GIB, B / 3, 60 * GIB, B / 5, 20 * GIB,
                                   B / 4};
            make_devices(devs, fr, margin);
            devs[2].pending = 10 * GIB;
            devs[4].pending = 30 * GIB;
            devs[6].pending = 2 * GIB;
            for (size_t k = 0; k < N_CAND; k++)
                set_res(&p->models[1 + k], 100 + (int64_t)k, devs, k, B / 3);
        }
        pthread_mutex_unlock(&p->lock);
        snprintf(label, sizeof label, "fits%s", sfx);
        measure(label, &c, quick);
        snprintf(label, sizeof label, "fits/gw_place-only%s", sfx);
        c.place_only = true;
        measure(label, &c, quick);
        c.place_only = false;

        /* 2. evict 2: GPU 0 has 0.45 B free, the others nearly nothing
         * (under the overhead: excluded); c1 and c2 hold 0.3 B each on
         * GPU 0, c3..c6 hold 0.1 B on GPUs 1..4. */
        pthread_mutex_lock(&p->lock);
        {
            uint64_t fr[N_GPUS];
            for (size_t i = 0; i < N_GPUS; i++)
                fr[i] = 2 * MIB;
            fr[0] = B * 45 / 100;
            make_devices(devs, fr, margin);
            set_res(&p->models[1], 201, devs, 0, B * 3 / 10);
            set_res(&p->models[2], 202, devs, 0, B * 3 / 10);
            for (size_t k = 2; k < N_CAND; k++)
                set_res(&p->models[1 + k], 200 + (int64_t)k, devs, k - 1, B / 10);
        }
        pthread_mutex_unlock(&p->lock);
        snprintf(label, sizeof label, "evict2%s", sfx);
        measure(label, &c, quick);
        /* the one plan that decision ends with: gw_place on the devices
         * with c1's and c2's memory given back */
        memcpy(after, devs, sizeof after);
        after[0].free += 2 * (B * 3 / 10);
        c.devs = after;
        c.place_only = true;
        snprintf(label, sizeof label, "evict2/gw_place-only%s", sfx);
        measure(label, &c, quick);
        c.devs = devs;
        c.place_only = false;

        /* 3. evict 2 with a trim: the LRU prefix c1,c2,c3 fits, then c2
         * (0.1 B on GPU 5, which does not help) is given back. */
        pthread_mutex_lock(&p->lock);
        set_res(&p->models[2], 302, devs, 5, B / 10);
        set_res(&p->models[3], 303, devs, 0, B * 3 / 10);
        pthread_mutex_unlock(&p->lock);
        snprintf(label, sizeof label, "evict2-trim%s", sfx);
        measure(label, &c, quick);
    }
    target->req.need.refine = refine_inner;

    gw_plan_release(&c.plan);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_models; i++)
        gw_reservation_clear(&p->models[i].res); /* never in the ledger: nothing to release */
    pthread_mutex_unlock(&p->lock);
    gw_pool_close(p);
    return 0;
}
