/* load.c — a model's load and unload: the placement on a fresh snapshot
 * with eviction of idle models (gw_pool_decide), the reservation, the
 * child's command line and environment, and the wait for /health.
 * pool.h has the invariants this keeps (1, 2, 3, 5) and the lock order. */
#include "pool/pool_impl.h"

#include "core/array.h"
#include "core/util.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PORT_RETRIES 2

/* gw_place_refine_fn over the model's own: the memo first (pool.h). */
static int memo_refine(void *ctx, const gw_place_device *devs, const gw_plan *plan,
                       uint64_t *bytes, gw_error *err)
{
    gw_pool_model *m = ctx;
    if (plan->n_used == 0 || plan->n_used > GW_POOL_REFINE_GPUS)
        return m->base_refine(m->base_refine_ctx, devs, plan, bytes, err);
    for (size_t k = 0; k < m->n_memo; k++) {
        const gw_pool_refine_memo *e = &m->memo[k];
        bool same = e->n_used == plan->n_used && e->ngl == plan->ngl;
        for (size_t i = 0; same && i < plan->n_used; i++)
            same = e->units[i] == plan->used[i].n_units;
        if (same) {
            memcpy(bytes, e->bytes, plan->n_used * sizeof *bytes);
            return GW_OK;
        }
    }
    int rc = m->base_refine(m->base_refine_ctx, devs, plan, bytes, err);
    if (rc != GW_OK)
        return rc;
    gw_pool_refine_memo *e = &m->memo[m->memo_next];
    m->memo_next = (m->memo_next + 1) % GW_POOL_REFINE_MEMO;
    m->n_memo += m->n_memo < GW_POOL_REFINE_MEMO;
    e->n_used = (uint32_t)plan->n_used;
    e->ngl = plan->ngl;
    for (size_t i = 0; i < plan->n_used; i++) {
        e->units[i] = plan->used[i].n_units;
        e->bytes[i] = bytes[i];
    }
    return GW_OK;
}

void gw__pool_prepare(gw_pool *p, gw_pool_model *m)
{
    gw_place_request *r = &m->req;
    r->model = m->cfg.path;
    r->ctx = m->cfg.ctx;
    r->parallel = m->cfg.parallel;
    r->opts.policy = p->cfg.policy;
    r->policy_set = true;
    r->opts.margin = p->cfg.margin;
    r->margin_set = true;
    r->no_partial = m->cfg.allow_partial <= 0;
    gw_error err;
    gw_error_clear(&err);
    if (gw_place_request_prepare_need(r, &err) == GW_OK) {
        m->req_ready = true;
        if (r->need.refine) {
            m->base_refine = r->need.refine;
            m->base_refine_ctx = r->need.refine_ctx;
            r->need.refine = memo_refine;
            r->need.refine_ctx = m;
        }
        return;
    }
    m->broken = true;
    m->state = GW_PM_FAILED;
    m->retry_at_ns = INT64_MAX;
    gw__strlcpy(m->last_error, err.message, sizeof m->last_error);
    gw__pool_log("%s: cannot be estimated, it will not load: %s", m->cfg.name, err.message);
}

void gw__pool_release_reservation(gw_pool *p, gw_pool_model *m)
{
    int64_t id = m->res_id;
    if (id) {
        gw_error err;
        pthread_mutex_lock(&p->ledger_lock);
        int rc = gw_ledger_release(p->ledger, id, &err);
        pthread_mutex_unlock(&p->ledger_lock);
        if (rc != GW_OK && rc != GW_ENOENT)
            gw__pool_log("%s: releasing reservation %lld: %s", m->cfg.name, (long long)id,
                         err.message);
    }
    pthread_mutex_lock(&p->lock);
    m->res_id = 0;
    gw_reservation_clear(&m->res);
    pthread_mutex_unlock(&p->lock);
}

void gw__pool_unload(gw_pool *p, gw_pool_model *m, uint64_t *counter)
{
    pthread_mutex_lock(&p->lock);
    assert(m->state == GW_PM_UNLOADING);
    gw_child *c = m->child;
    gw__pool_close_idle(m);
    pthread_mutex_unlock(&p->lock);
    if (c)
        gw_child_stop(c, p->cfg.stop_grace_s * 1000);
    gw__pool_release_reservation(p, m);
    pthread_mutex_lock(&p->lock);
    m->state = GW_PM_UNLOADED;
    (*counter)++;
    gw__pool_wake(p);
    pthread_mutex_unlock(&p->lock);
}

bool gw__pool_child_healthy(uint32_t port, int timeout_ms, char *why, size_t cap)
{
    gw_error err;
    gw_error_clear(&err);
    int fd;
    if (gw_upstream_connect(port, timeout_ms, &fd, &err) != GW_OK) {
        gw__strlcpy(why, err.message, cap);
        return false;
    }
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    gw_upstream_answer a;
    memset(&a, 0, sizeof a);
    bool ok = gw_upstream_send(fd, req, sizeof req - 1, NULL, 0, timeout_ms, &err) == GW_OK &&
              gw_upstream_read_head(&a, fd, timeout_ms, &err) == GW_OK;
    if (ok && a.head.status != 200) {
        snprintf(why, cap, "/health answered %d", a.head.status);
        ok = false;
    } else if (!ok) {
        gw__strlcpy(why, err.message, cap);
    }
    gw_upstream_answer_release(&a);
    close(fd);
    return ok;
}

/* ------------------------------------------------------------- decide */

/* What unloading candidate c would give back on each device of sim: its
 * reservation's bytes, or what its process is seen using when more. */
static void add_back(gw_place_device *sim, size_t n, const gw_pool_model *c,
                     const gw_place_seen *seen, size_t n_seen)
{
    for (size_t k = 0; k < c->res.n_devices; k++)
        for (size_t d = 0; d < n; d++) {
            if (strcmp(sim[d].uuid, c->res.devices[k].uuid) != 0)
                continue;
            uint64_t used = 0;
            for (size_t s = 0; s < n_seen; s++)
                if (c->child && seen[s].pid == (uint32_t)c->child->pid && seen[s].device == d)
                    used += seen[s].bytes;
            uint64_t gain = c->res.devices[k].bytes > used ? c->res.devices[k].bytes : used;
            /* the reservation's pending part leaves `pending`, its used part `free` */
            uint64_t pend = gain - used < sim[d].pending ? gain - used : sim[d].pending;
            sim[d].pending -= pend;
            sim[d].free += gain - pend;
            if (sim[d].total && sim[d].free > sim[d].total)
                sim[d].free = sim[d].total;
        }
}

/* Whether the GPUs of sim cannot possibly hold the whole need: even all
 * their usable memory after each one's overhead is less than the layers
 * (a plan must fit by the profile before the estimator refines it, so
 * this never rules out a plan that fits). Skips the planner, and the
 * reason text it writes, for the hopeless steps of an eviction search. */
static bool surely_short(const gw_pool_model *m, const gw_place_device *sim, size_t n)
{
    const gw_place_need *need = &m->req.need;
    if (need->allow_partial || !need->n_units)
        return false;
    uint64_t units = 0, room = 0;
    for (size_t u = 0; u < need->n_units; u++)
        units += need->unit_bytes[u];
    for (size_t d = 0; d < n; d++) {
        uint64_t usable = gw_place_usable(&sim[d], m->req.opts.margin);
        room += usable > need->overhead ? usable - need->overhead : 0;
    }
    return room < units;
}

/* Plans model m on devs with the candidates set[k] given back; unless
 * exact, a hopeless case is only marked as not fitting and the planner
 * writes no reason (a search step's is never shown). */
static int plan_with(gw_pool *p, const gw_pool_model *m, const gw_place_device *devs,
                     gw_place_device *sim, size_t n, const size_t *set, size_t n_set,
                     const gw_place_seen *seen, size_t n_seen, bool exact, gw_plan *plan,
                     gw_error *err)
{
    memcpy(sim, devs, n * sizeof *sim);
    for (size_t k = 0; k < n_set; k++)
        add_back(sim, n, &p->models[set[k]], seen, n_seen);
    if (!exact && surely_short(m, sim, n)) {
        plan->fits = false;
        return GW_OK;
    }
    gw_plan_release(plan);
    gw_plan_init(plan);
    gw_place_opts opts = m->req.opts;
    opts.terse = !exact; /* a search step's reason is never shown */
    return gw_place(sim, n, &m->req.need, &opts, plan, err);
}

int gw_pool_decide(gw_pool *p, size_t i, gw_place_device *devs, size_t n_devs,
                   const size_t *cand, size_t n_cand, const gw_place_seen *seen, size_t n_seen,
                   gw_plan *plan, size_t *evict, size_t *n_evict, gw_error *err)
{
    const gw_pool_model *m = &p->models[i];
    *n_evict = 0;
    gw_place_device stack[16];
    gw_place_device *sim = n_devs <= 16 ? stack : malloc(n_devs * sizeof *sim);
    if (!sim)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    int rc = plan_with(p, m, devs, sim, n_devs, NULL, 0, seen, n_seen, n_cand == 0, plan, err);
    size_t k = 0;
    /* the shortest least-recently-used prefix that makes it fit (the last
     * step planned exactly: its reason is the answer when nothing fits) */
    while (rc == GW_OK && !plan->fits && k < n_cand) {
        evict[k] = cand[k];
        k++;
        rc = plan_with(p, m, devs, sim, n_devs, evict, k, seen, n_seen, k == n_cand, plan, err);
    }
    if (rc == GW_OK && plan->fits && k > 1) {
        /* then keep any of it that turns out not to be needed, most recent first */
        bool plan_is_final = true;
        for (size_t j = k - 1; j-- > 0;) {
            size_t keep = evict[j];
            memmove(&evict[j], &evict[j + 1], (k - j - 1) * sizeof *evict);
            rc = plan_with(p, m, devs, sim, n_devs, evict, k - 1, seen, n_seen, false, plan,
                           err);
            if (rc == GW_OK && plan->fits) {
                k--;
                plan_is_final = true;
                continue;
            }
            memmove(&evict[j + 1], &evict[j], (k - j - 1) * sizeof *evict);
            evict[j] = keep;
            plan_is_final = false;
            if (rc != GW_OK)
                break;
        }
        if (rc == GW_OK && !plan_is_final)
            rc = plan_with(p, m, devs, sim, n_devs, evict, k, seen, n_seen, true, plan, err);
    }
    *n_evict = rc == GW_OK && plan->fits ? k : 0;
    if (sim != stack)
        free(sim);
    return rc;
}

/* --------------------------------------------------------------- place */

typedef struct placement {
    gw_snapshot *snap;
    gw_place_device *devs;
    size_t n_devs;
    gw_place_seen *seen;
    size_t n_seen;
    gw_plan plan;
    bool cpu_only;
} placement;

static void placement_release(placement *pl)
{
    gw_plan_release(&pl->plan);
    free(pl->devs);
    free(pl->seen);
    gw_snapshot_release(pl->snap);
    memset(pl, 0, sizeof *pl);
}

/* A fresh sample and its devices with the ledger's pending bytes. */
static int sample(gw_pool *p, placement *pl, gw_error *err)
{
    free(pl->devs);
    free(pl->seen);
    gw_snapshot_release(pl->snap);
    pl->devs = NULL;
    pl->seen = NULL;
    pl->snap = NULL;
    int rc = gw_monitor_sample(p->mon, &pl->snap, err);
    if (rc != GW_OK)
        return rc;
    pl->n_devs = pl->snap->n_devices;
    pl->devs = calloc(pl->n_devs ? pl->n_devs : 1, sizeof *pl->devs);
    pl->seen = calloc(pl->snap->n_processes ? pl->snap->n_processes : 1, sizeof *pl->seen);
    if (!pl->devs || !pl->seen)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    gw_place_devices_from_snapshot(pl->snap, pl->devs);
    pl->n_seen = gw_place_seen_from_snapshot(pl->snap, pl->seen);
    pthread_mutex_lock(&p->ledger_lock);
    rc = gw_ledger_apply_pending(p->ledger, pl->devs, pl->n_devs, pl->seen, pl->n_seen, err);
    pthread_mutex_unlock(&p->ledger_lock);
    return rc;
}

/* Models that may be evicted for m, least recently used first (under
 * p->lock): idle ones, or with busy also those with requests in flight or
 * queued and those loading (to learn whether waiting for them would help). Never pinned ones
 * (invariant 3). Returns how many were written to cand. */
static size_t candidates(gw_pool *p, const gw_pool_model *m, bool busy, size_t *cand)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *c = &p->models[i];
        bool loading = c->state == GW_PM_LOADING;
        if (c == m || (c->state != GW_PM_READY && !(busy && loading)) || c->cfg.pinned ||
            !c->res_id || (!busy && (c->in_flight || c->queued || c->unload_pending)))
            continue;
        size_t k = n++;
        while (k > 0 && p->models[cand[k - 1]].last_used_ns > c->last_used_ns) {
            cand[k] = cand[k - 1];
            k--;
        }
        cand[k] = i;
    }
    return n;
}

/* Whether no GPU can take anything: none read, or none working with a
 * memory reading (lost, stale, in error). A full GPU is usable: a model
 * that does not fit gets 507, not the CPU. */
static bool no_usable_gpu(const placement *pl)
{
    for (size_t i = 0; i < pl->n_devs; i++)
        if (pl->devs[i].state == GW_DEVICE_OK && pl->devs[i].has_free)
            return false;
    return true;
}

/* Unloads the chosen models (marked UNLOADING by the caller). */
static void evict_all(gw_pool *p, const gw_pool_model *for_m, const size_t *evict, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        gw_pool_model *c = &p->models[evict[k]];
        gw__pool_log("%s: unloading to make room for %s", c->cfg.name, for_m->cfg.name);
        gw__pool_unload(p, c, &c->unloads_evicted);
        pthread_mutex_lock(&p->lock);
        p->evictions++;
        pthread_mutex_unlock(&p->lock);
    }
}

/* Plans m, evicting what it needs; on return pl->plan fits, or *why says
 * why not (507). Under place_lock. */
static int plan_and_evict(gw_pool *p, gw_pool_model *m, placement *pl, bool *wait_out,
                          gw_pool_refusal *why)
{
    bool wait = false;
    size_t i = (size_t)(m - p->models);
    size_t *cand = calloc(p->n_models + 1, sizeof *cand);
    size_t *evict = calloc(p->n_models + 1, sizeof *evict);
    gw_error err;
    gw_error_clear(&err);
    int rc = cand && evict ? GW_OK : gw__error_set(&err, GW_ENOMEM, "out of memory");
    /* every round samples afresh, so a round after an eviction plans on
     * what the GPUs say once the evicted servers are gone; the last round
     * may not evict any more */
    for (int round = 0; rc == GW_OK && round < 5; round++) {
        rc = sample(p, pl, &err);
        if (rc != GW_OK)
            break;
        size_t n_evict = 0;
        pthread_mutex_lock(&p->lock);
        size_t n_cand = candidates(p, m, false, cand);
        rc = gw_pool_decide(p, i, pl->devs, pl->n_devs, cand, n_cand, pl->seen, pl->n_seen,
                            &pl->plan, evict, &n_evict, &err);
        if (rc == GW_OK && !pl->plan.fits && !no_usable_gpu(pl)) {
            /* would it fit once busy models finish? then the load waits */
            gw_plan busy_plan;
            gw_plan_init(&busy_plan);
            size_t n_busy = candidates(p, m, true, cand), n_ev = 0;
            if (n_busy > n_cand &&
                gw_pool_decide(p, i, pl->devs, pl->n_devs, cand, n_busy, pl->seen, pl->n_seen,
                               &busy_plan, evict, &n_ev, &err) == GW_OK && busy_plan.fits)
                wait = true;
            gw_plan_release(&busy_plan);
            n_evict = 0;
        }
        bool still_idle = true;
        for (size_t k = 0; k < n_evict; k++) {
            const gw_pool_model *c = &p->models[evict[k]];
            still_idle = still_idle && c->state == GW_PM_READY && !c->in_flight && !c->queued;
        }
        if (rc == GW_OK && n_evict && round == 4) {
            pl->plan.fits = false; /* the GPUs keep changing under us: wait, try again */
            n_evict = 0;
            wait = true;
        }
        if (rc == GW_OK && still_idle)
            for (size_t k = 0; k < n_evict; k++)
                p->models[evict[k]].state = GW_PM_UNLOADING;
        pthread_mutex_unlock(&p->lock);
        if (rc != GW_OK || !pl->plan.fits || n_evict == 0)
            break;
        if (!still_idle)
            continue;
        evict_all(p, m, evict, n_evict);
        /* and plan again on what the GPUs now say */
    }
    free(cand);
    free(evict);
    *wait_out = wait;
    if (rc != GW_OK) {
        gw__strlcpy(why->message, err.message, sizeof why->message);
        why->status = 500;
        why->type = "server_error";
        return rc;
    }
    return GW_OK;
}

static void no_fit_refusal(gw_pool *p, const gw_pool_model *m, const placement *pl,
                           gw_pool_refusal *why)
{
    uint64_t busy = 0;
    unsigned n_busy = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *c = &p->models[i];
        if (c == m || !c->res_id)
            continue;
        n_busy++;
        for (size_t k = 0; k < c->res.n_devices; k++)
            busy += c->res.devices[k].bytes;
    }
    pthread_mutex_unlock(&p->lock);
    char a[32];
    why->status = 507;
    why->retry_after_s = 0;
    why->type = "insufficient_storage";
    snprintf(why->message, sizeof why->message,
             "model '%s' (context %u x %u slots) fits on no GPU of this pool, even after "
             "unloading every idle model: %.400s; %u loaded model%s in use or pinned hold %s",
             m->cfg.name, m->cfg.ctx, m->cfg.parallel, pl->plan.reason, n_busy,
             n_busy == 1 ? "" : "s", gw_place_format_size(busy, a, sizeof a));
}

/* Reserves pl->plan's placement for m (gw_ledger_reserve plans again inside
 * its transaction, so what it books always fits: invariant 2). */
static int reserve(gw_pool *p, gw_pool_model *m, placement *pl, gw_pool_refusal *why)
{
    char owner[160], note[256];
    snprintf(owner, sizeof owner, "pool:%s", m->cfg.name);
    snprintf(note, sizeof note, "gpuwatch pool model %s (%.100s)", m->cfg.name, m->cfg.path);
    gw_reserve_req req = {.owner = owner, .pid = (uint32_t)getpid(), .note = note};
    gw_reservation res;
    memset(&res, 0, sizeof res);
    bool existed = false;
    gw_error err;
    gw_error_clear(&err);
    gw_plan_release(&pl->plan);
    gw_plan_init(&pl->plan);
    pthread_mutex_lock(&p->ledger_lock);
    int rc = gw_ledger_reserve(p->ledger, pl->devs, pl->n_devs, pl->seen, pl->n_seen,
                               &m->req.need, &m->req.opts, &req, &pl->plan, &res, &existed, &err);
    pthread_mutex_unlock(&p->ledger_lock);
    if (rc != GW_OK) {
        why->status = 500;
        why->type = "server_error";
        snprintf(why->message, sizeof why->message, "model '%s': reservation failed: %s",
                 m->cfg.name, err.message);
        return rc;
    }
    if (!pl->plan.fits) {
        no_fit_refusal(p, m, pl, why);
        return GW_ERANGE;
    }
    pthread_mutex_lock(&p->lock);
    m->res_id = res.id;
    gw_reservation_clear(&m->res);
    m->res = res;
    pthread_mutex_unlock(&p->lock);
    return GW_OK;
}

/* Decides where m goes and reserves it; pl->cpu_only when no GPU.
 * PLACE_WAIT: it fits only once busy models finish. */
#define PLACE_WAIT 1
static int place(gw_pool *p, gw_pool_model *m, placement *pl, gw_pool_refusal *why)
{
    gw_plan_init(&pl->plan);
    if (!p->mon) {
        pl->cpu_only = true;
        return GW_OK;
    }
    bool wait = false;
    int rc = plan_and_evict(p, m, pl, &wait, why);
    if (rc != GW_OK)
        return rc;
    if (wait)
        return PLACE_WAIT;
    if (!pl->plan.fits && no_usable_gpu(pl)) {
        pl->cpu_only = true;
        return GW_OK;
    }
    if (!pl->plan.fits) {
        no_fit_refusal(p, m, pl, why);
        return GW_ERANGE;
    }
    return reserve(p, m, pl, why);
}

/* ---------------------------------------------------------------- spawn */

static void placement_words(const gw_pool_model *m, const placement *pl, char **out,
                            size_t *n, char *summary, size_t cap)
{
    char num[32];
    uint32_t ngl = pl->cpu_only ? 0 : pl->plan.ngl;
    snprintf(num, sizeof num, "%u", ngl);
    out[(*n)++] = strdup("-ngl");
    out[(*n)++] = strdup(num);
    snprintf(summary, cap, pl->cpu_only ? "cpu (-ngl 0)" : "-ngl %u", ngl);
    if (!pl->cpu_only && pl->plan.n_used > 1) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        for (size_t i = 0; i < pl->plan.n_used; i++)
            gw__strbuf_printf(&sb, "%s%u", i ? "," : "", pl->plan.used[i].n_units);
        out[(*n)++] = strdup("--tensor-split");
        out[(*n)++] = gw__strbuf_detach(&sb, NULL);
        size_t l = strlen(summary);
        snprintf(summary + l, cap - l, " --tensor-split %s", out[*n - 1] ? out[*n - 1] : "");
        gw__strbuf_release(&sb);
    }
    (void)m;
}

/* One word with its placeholders replaced. */
static char *substitute(const char *w, const gw_pool_model *m, const placement *pl,
                        uint32_t port)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    while (*w) {
        char num[32];
        const char *val = NULL;
        size_t skip = 0;
        if (*w == '{') {
            static const char *const names[] = {"{model}", "{name}", "{host}", "{port}",
                                                "{ctx}", "{parallel}", "{ngl}"};
            for (size_t i = 0; i < GW__ARRAY_LEN(names) && !val; i++)
                if (strncmp(w, names[i], strlen(names[i])) == 0) {
                    skip = strlen(names[i]);
                    uint32_t v = i == 3 ? port : i == 4 ? m->cfg.ctx : i == 5 ? m->cfg.parallel
                                 : pl->cpu_only ? 0 : pl->plan.ngl;
                    snprintf(num, sizeof num, "%u", v);
                    val = i == 0 ? m->cfg.path : i == 1 ? m->cfg.name : i == 2 ? "127.0.0.1" : num;
                }
        }
        if (val) {
            gw__strbuf_puts(&sb, val);
            w += skip;
        } else {
            gw__strbuf_putc(&sb, *w++);
        }
    }
    char *s = gw__strbuf_detach(&sb, NULL);
    gw__strbuf_release(&sb);
    return s;
}

static void free_words(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
}

/* argv from the template (heap strings into argv, NULL-terminated). */
static int build_argv(const gw_pool_model *m, const placement *pl, uint32_t port, char **argv,
                      size_t *argc, char *summary, size_t cap, gw_error *err)
{
    char buf[sizeof m->cfg.command];
    char *words[GW_POOL_MAX_WORDS];
    gw__strlcpy(buf, m->cfg.command, sizeof buf);
    int n = gw_pool_template_split(buf, words, err);
    if (n < 0)
        return n;
    *argc = 0;
    summary[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(words[i], "{placement}") == 0)
            placement_words(m, pl, argv, argc, summary, cap);
        else
            argv[(*argc)++] = substitute(words[i], m, pl, port);
    }
    if (!summary[0])
        snprintf(summary, cap, pl->cpu_only ? "cpu (-ngl 0)" : "-ngl %u", pl->plan.ngl);
    argv[*argc] = NULL;
    for (size_t i = 0; i < *argc; i++)
        if (!argv[i]) {
            free_words(argv, *argc);
            return gw__error_set(err, GW_ENOMEM, "out of memory");
        }
    return GW_OK;
}

/* The environment: the plan's device selection, or no GPU at all. */
static size_t build_env(const gw_pool_model *m, const placement *pl, char **env)
{
    size_t n = 0;
    if (pl->cpu_only) {
        env[n++] = strdup("CUDA_VISIBLE_DEVICES=");
        env[n++] = strdup("HIP_VISIBLE_DEVICES=");
    } else {
        n = gw_place_plan_env(&pl->plan, pl->devs, env);
    }
    char s[256];
    snprintf(s, sizeof s, "GPUWATCH_RESERVATION=%lld", (long long)m->res_id);
    env[n++] = strdup(s);
    snprintf(s, sizeof s, "GPUWATCH_POOL_MODEL=%s", m->cfg.name);
    env[n++] = strdup(s);
    size_t k = 0; /* a variable that could not be made is left out */
    for (size_t i = 0; i < n; i++)
        if (env[i])
            env[k++] = env[i];
    return k;
}

/* A port no process binds now and no other live model was given (its
 * child may not have bound it yet); recorded in m->port at once, under
 * p->lock, so concurrent loads never share one. */
static int pick_port(gw_pool *p, gw_pool_model *m, uint32_t *port, gw_error *err)
{
    pthread_mutex_lock(&p->lock);
    int rc = GW_OK;
    for (int tries = 0; tries < 256; tries++) {
        rc = gw_child_pick_port(p->cfg.port_lo, p->cfg.port_hi, &p->next_port, port, err);
        bool taken = false;
        for (size_t i = 0; rc == GW_OK && i < p->n_models && !taken; i++) {
            const gw_pool_model *o = &p->models[i];
            taken = o != m && o->port == *port &&
                    (o->state == GW_PM_LOADING || o->state == GW_PM_READY ||
                     o->state == GW_PM_UNLOADING);
        }
        if (rc != GW_OK || !taken)
            break;
        rc = gw__error_set(err, GW_ERANGE, "every free port is given to another model");
    }
    if (rc == GW_OK)
        m->port = *port;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Starts m's child on a free port; its old child (if any) is freed. */
static int spawn(gw_pool *p, gw_pool_model *m, const placement *pl, gw_pool_refusal *why)
{
    gw_error err;
    gw_error_clear(&err);
    uint32_t port;
    char *argv[GW_POOL_MAX_WORDS * 4 + 1], *env[8];
    size_t argc = 0, n_env = 0;
    char summary[sizeof m->placement];
    int rc = pick_port(p, m, &port, &err);
    if (rc == GW_OK)
        rc = build_argv(m, pl, port, argv, &argc, summary, sizeof summary, &err);
    gw_child *c = NULL;
    if (rc == GW_OK) {
        n_env = build_env(m, pl, env);
        rc = gw_child_launch(p->launcher, &c, argv, env, n_env, p->cfg.log_bytes, &err);
        free_words(argv, argc);
        free_words(env, n_env);
    }
    if (rc != GW_OK) {
        why->status = 500;
        why->type = "server_error";
        snprintf(why->message, sizeof why->message, "model '%s': cannot start its server: %s",
                 m->cfg.name, err.message);
        return rc;
    }
    if (m->res_id) {
        pthread_mutex_lock(&p->ledger_lock);
        if (gw_ledger_set_pid(p->ledger, m->res_id, (uint32_t)c->pid, &err) != GW_OK)
            gw__pool_log("%s: reservation %lld stays with the pool's pid: %s", m->cfg.name,
                         (long long)m->res_id, err.message);
        pthread_mutex_unlock(&p->ledger_lock);
    }
    pthread_mutex_lock(&p->lock);
    gw_child *old = m->child;
    m->child = c;
    m->port = port;
    m->generation++;
    m->cpu_only = pl->cpu_only;
    m->ngl = pl->cpu_only ? 0 : pl->plan.ngl;
    m->n_gpus = pl->cpu_only ? 0 : (uint32_t)pl->plan.n_used;
    gw__strlcpy(m->placement, summary, sizeof m->placement);
    pthread_mutex_unlock(&p->lock);
    gw_child_free(old);
    gw__pool_log("%s: started pid %d on port %u (%s)", m->cfg.name, (int)c->pid, port, summary);
    return GW_OK;
}

/* ------------------------------------------------------------ readiness */

typedef enum { READY_OK, READY_EXITED, READY_TIMEOUT, READY_STOPPING } ready_result;

static ready_result wait_ready(gw_pool *p, gw_child *c, uint32_t port, int64_t deadline)
{
    int64_t start = gw__now_mono_ns();
    for (;;) {
        if (gw_child_poll(c))
            return READY_EXITED;
        char why[128];
        if (gw__pool_child_healthy(port, 1000, why, sizeof why))
            return READY_OK;
        if (p->stopping)
            return READY_STOPPING;
        int64_t now = gw__now_mono_ns();
        if (now >= deadline)
            return READY_TIMEOUT;
        /* 2 ms while a quick start is likely, then 25 ms */
        struct timespec ts = {0, now - start < 2000000000 ? 2000000 : 25000000};
        nanosleep(&ts, NULL);
    }
}

static bool log_says_port_taken(gw_child *c)
{
    char tail[2048];
    gw_child_log_tail(c, tail, sizeof tail);
    return strcasestr(tail, "bind") || strcasestr(tail, "address already in use");
}

/* Spawns and waits; retries on another port when the child could not bind. */
static int start_and_wait(gw_pool *p, gw_pool_model *m, const placement *pl, gw_pool_refusal *why)
{
    int64_t deadline = m->load_started_ns + (int64_t)p->cfg.load_timeout_s * 1000000000;
    for (int attempt = 0;; attempt++) {
        int rc = spawn(p, m, pl, why);
        if (rc != GW_OK)
            return rc;
        gw_child *c = m->child;
        ready_result r = wait_ready(p, c, m->port, deadline);
        if (r == READY_OK)
            return GW_OK;
        char line[1024], how[128];
        if (r == READY_EXITED && attempt < PORT_RETRIES && log_says_port_taken(c)) {
            gw__pool_log("%s: port %u was taken: trying another", m->cfg.name, m->port);
            continue;
        }
        if (r != READY_EXITED)
            gw_child_stop(c, p->cfg.stop_grace_s * 1000);
        why->status = 503;
        why->type = "unavailable_error";
        why->retry_after_s = 1;
        if (r == READY_EXITED)
            snprintf(why->message, sizeof why->message,
                     "model '%s': its server %s before it was ready (last log lines: %.300s)",
                     m->cfg.name, gw_child_describe_exit(c->status, how, sizeof how),
                     gw_child_log_last_lines(c, 3, line, sizeof line));
        else if (r == READY_TIMEOUT)
            snprintf(why->message, sizeof why->message,
                     "model '%s': its server was not ready within load_timeout_s = %u and was "
                     "stopped (last log lines: %.300s)", m->cfg.name, p->cfg.load_timeout_s,
                     gw_child_log_last_lines(c, 3, line, sizeof line));
        else
            snprintf(why->message, sizeof why->message, "the pool is shutting down");
        return GW_EIO;
    }
}

/* place(), waiting while the model fits only once busy models finish
 * (each release wakes it), at most until the load deadline. */
static int place_or_wait(gw_pool *p, gw_pool_model *m, placement *pl, gw_pool_refusal *why)
{
    int64_t deadline = m->load_started_ns + (int64_t)p->cfg.load_timeout_s * 1000000000;
    for (;;) {
        pthread_mutex_lock(&p->place_lock);
        int rc = place(p, m, pl, why);
        if (rc == GW_OK && pl->cpu_only)
            gw__pool_log("%s: no usable GPU: loading on the CPU", m->cfg.name);
        pthread_mutex_unlock(&p->place_lock);
        if (rc != PLACE_WAIT)
            return rc;
        placement_release(pl);
        if (gw__now_mono_ns() >= deadline || p->stopping) {
            why->status = 503;
            why->retry_after_s = 1;
            why->type = "unavailable_error";
            snprintf(why->message, sizeof why->message,
                     "model '%s' fits only once models with requests in flight finish, and "
                     "they stayed busy for load_timeout_s = %u", m->cfg.name,
                     p->cfg.load_timeout_s);
            return GW_EIO;
        }
        pthread_mutex_lock(&p->lock);
        gw__pool_wait_ms(p, 200);
        pthread_mutex_unlock(&p->lock);
    }
}

int gw__pool_load(gw_pool *p, gw_pool_model *m, bool take_slot, gw_pool_refusal *why)
{
    m->load_started_ns = gw__now_mono_ns();
    memset(why, 0, sizeof *why);
    if (!m->req_ready) { /* a broken model never gets here; be sure */
        pthread_mutex_lock(&p->lock);
        m->state = GW_PM_FAILED;
        gw__pool_wake(p);
        pthread_mutex_unlock(&p->lock);
        why->status = 500;
        why->type = "server_error";
        snprintf(why->message, sizeof why->message, "model '%s' cannot be loaded: %.400s",
                 m->cfg.name, m->last_error);
        return GW_EIO;
    }
    placement pl;
    memset(&pl, 0, sizeof pl);
    int rc = place_or_wait(p, m, &pl, why);
    if (rc == GW_OK)
        rc = start_and_wait(p, m, &pl, why);
    placement_release(&pl);
    if (rc != GW_OK)
        gw__pool_release_reservation(p, m);
    pthread_mutex_lock(&p->lock);
    if (rc == GW_OK) {
        int64_t now = gw__now_mono_ns();
        m->state = GW_PM_READY;
        m->in_flight += take_slot;
        m->ready_ns = m->last_used_ns = m->last_health_ns = now;
        m->health_failures = 0;
        m->loads++;
        m->last_load_seconds = (double)(now - m->load_started_ns) / 1e9;
        m->load_seconds_sum += m->last_load_seconds;
        gw__pool_log("%s: ready in %.3fs", m->cfg.name, m->last_load_seconds);
    } else if (why->status == 507) {
        m->state = GW_PM_UNLOADED; /* memory may free up: the next request tries again */
        p->no_fit++;
        gw__pool_log("%s: %s", m->cfg.name, why->message);
    } else {
        m->load_failures++;
        gw__pool_fail(p, m, why->status ? why->status : 503, "%s", why->message);
    }
    gw__pool_wake(p);
    pthread_mutex_unlock(&p->lock);
    return rc == GW_OK ? GW_OK : GW_EIO;
}
