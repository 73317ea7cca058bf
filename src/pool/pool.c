/* pool.c — the pool's model table: opening and closing, handing children
 * to requests (acquire / release, the per-model queue), and the
 * supervisor thread (reaping, health checks, idle TTL). pool.h has the
 * state machine, the invariants and the lock order; load.c does loads. */
#include "pool/pool_impl.h"

#include "core/util.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUPERVISE_MS 100
#define WAIT_SLICE_MS 100

const double gw_pool_latency_bounds[GW_POOL_LATENCY_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

const char *gw_pool_state_name(gw_pool_state s)
{
    switch (s) {
    case GW_PM_UNLOADED: return "unloaded";
    case GW_PM_LOADING: return "loading";
    case GW_PM_READY: return "loaded";
    case GW_PM_UNLOADING: return "unloading";
    case GW_PM_FAILED: return "failed";
    }
    return "unknown";
}

void gw__pool_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
    fprintf(stderr, "%sZ gpuwatch pool: %s\n", when, line);
}

/* Whether model m satisfies pool.h invariant 4 (under p->lock). */
static __attribute__((unused)) bool model_check(const gw_pool_model *m)
{
    return m->in_flight <= m->cfg.parallel && m->queued <= m->cfg.queue_max &&
           (m->res_id == 0 || m->state == GW_PM_LOADING || m->state == GW_PM_READY ||
            m->state == GW_PM_UNLOADING) &&
           m->n_idle <= GW_POOL_IDLE_CONNS;
}

void gw__pool_close_idle(gw_pool_model *m)
{
    for (size_t i = 0; i < m->n_idle; i++)
        close(m->idle_fds[i]);
    m->n_idle = 0;
}

void gw__pool_fail(gw_pool *p, gw_pool_model *m, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->last_error, sizeof m->last_error, fmt, ap);
    va_end(ap);
    m->fail_status = status;
    m->failures++;
    unsigned shift = m->failures > 7 ? 6 : m->failures - 1;
    m->retry_at_ns = gw__now_mono_ns() + ((int64_t)1000000000 << shift);
    m->state = GW_PM_FAILED;
    gw__pool_close_idle(m);
    gw__pool_wake(p);
    gw__pool_log("%s: %s (next try in %ds)", m->cfg.name, m->last_error, 1 << shift);
}

static void refuse(gw_pool_refusal *why, int status, unsigned retry, const char *type,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(gw_pool_refusal *why, int status, unsigned retry, const char *type,
                   const char *fmt, ...)
{
    why->status = status;
    why->retry_after_s = retry;
    why->type = type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
}

static gw_pool_model *find(gw_pool *p, const char *name)
{
    for (size_t i = 0; i < p->n_models; i++)
        if (strcmp(p->models[i].cfg.name, name) == 0)
            return &p->models[i];
    return NULL;
}

/* The model called name, or NULL with a 404 refusal. */
static gw_pool_model *find_or_refuse(gw_pool *p, const char *name, gw_pool_refusal *why)
{
    gw_pool_model *m = find(p, name);
    if (!m)
        refuse(why, 404, 0, "invalid_request_error", "model '%s' does not exist in this pool", name);
    return m;
}

bool gw_pool_has_model(gw_pool *p, const char *name)
{
    return find(p, name) != NULL;
}

const gw_pool_config *gw_pool_config_of(const gw_pool *p)
{
    return &p->cfg;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += (long)ms * 1000000;
    ts->tv_sec += ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

void gw__pool_wait_ms(gw_pool *p, int ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    p->waiting++;
    pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    p->waiting--;
}

void gw__pool_wake(gw_pool *p)
{
    if (p->waiting)
        pthread_cond_broadcast(&p->cond);
}

static bool client_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd q = {.fd = fd, .events = POLLRDHUP};
    return poll(&q, 1, 0) > 0 && (q.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* A failed or unloaded model that may start: back to UNLOADED. Answers a
 * refusal while its back-off runs. Under p->lock. */
static bool may_restart(gw_pool_model *m, gw_pool_refusal *why)
{
    if (m->broken) {
        refuse(why, 500, 0, "server_error", "model '%s' cannot be loaded: %s", m->cfg.name,
               m->last_error);
        return false;
    }
    if (m->state != GW_PM_FAILED)
        return true;
    int64_t now = gw__now_mono_ns();
    if (now < m->retry_at_ns) {
        unsigned s = (unsigned)((m->retry_at_ns - now + 999999999) / 1000000000);
        refuse(why, m->fail_status == 507 ? 507 : 503, s, "unavailable_error",
               "model '%s' is not available: %s; the pool tries again in %us", m->cfg.name,
               m->last_error, s);
        return false;
    }
    m->state = GW_PM_UNLOADED;
    return true;
}

/* Gives a lease m's most recent kept-alive connection, if any (under
 * p->lock); else l->fd stays -1 and the front connects. One the child has
 * closed meanwhile is found out by the front, which then connects anew. */
static void lease_take_idle(gw_pool_model *m, gw_pool_lease *l)
{
    if (m->n_idle) {
        l->fd = m->idle_fds[--m->n_idle];
        l->reused = true;
    }
}

/* Fills a lease for a slot of m just taken (under p->lock). */
static void lease_fill(gw_pool_model *m, gw_pool_lease *l)
{
    l->m = m;
    l->generation = m->generation;
    l->port = m->port;
}

/* The acquire loop for m under p->lock; see gw_pool_acquire. Without
 * may_wait it answers 1 where it would load or wait for a slot. */
static int acquire_locked(gw_pool *p, gw_pool_model *m, int watch_fd, bool may_wait,
                          gw_pool_lease *l, gw_pool_refusal *why)
{
    bool counted = false; /* in m->queued */
    int rc = GW_EIO;
    for (;;) {
        if (p->stopping) {
            refuse(why, 503, 5, "unavailable_error", "the pool is shutting down");
            break;
        }
        if ((m->broken || m->state == GW_PM_FAILED) && !may_restart(m, why))
            break;
        /* a request that could wait never passes the ones already waiting */
        if (m->state == GW_PM_READY && !m->unload_pending && m->in_flight < m->cfg.parallel &&
            (may_wait || !m->queued)) {
            m->in_flight++;
            lease_fill(m, l);
            rc = GW_OK;
            break;
        }
        if (!may_wait) {
            rc = 1;
            break;
        }
        if (m->state == GW_PM_UNLOADED) {
            /* this request loads it, holding the first slot as it becomes ready */
            m->state = GW_PM_LOADING;
            if (counted)
                m->queued--;
            counted = false;
            pthread_mutex_unlock(&p->lock);
            int lrc = gw__pool_load(p, m, true, why);
            pthread_mutex_lock(&p->lock);
            if (lrc == GW_OK) {
                lease_fill(m, l);
                rc = GW_OK;
            }
            break;
        }
        if (!counted) {
            if (m->queued >= m->cfg.queue_max) {
                refuse(why, 429, 1, "rate_limit_error",
                       "model '%s': %u requests are already waiting (queue_max); try again",
                       m->cfg.name, m->queued);
                break;
            }
            m->queued++;
            counted = true;
        }
        if (client_gone(watch_fd)) {
            refuse(why, 499, 0, "client_closed", "the client disconnected while waiting");
            break;
        }
        gw__pool_wait_ms(p, WAIT_SLICE_MS);
    }
    if (counted)
        m->queued--;
    assert(model_check(m));
    return rc;
}

/* The model a lease is asked for; a 404 refusal when there is none. */
static gw_pool_model *lease_begin(gw_pool *p, const char *name, gw_pool_lease *l,
                                  gw_pool_refusal *why)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    l->start_ns = gw__now_mono_ns();
    return find_or_refuse(p, name, why);
}

/* gw_pool_acquire (may_wait) and gw_pool_try_acquire. */
static int acquire(gw_pool *p, const char *name, int watch_fd, bool may_wait, gw_pool_lease *l,
                   gw_pool_refusal *why)
{
    gw_pool_model *m = lease_begin(p, name, l, why);
    if (!m)
        return GW_EIO;
    pthread_mutex_lock(&p->lock);
    int rc = acquire_locked(p, m, watch_fd, may_wait, l, why);
    if (rc == GW_OK)
        lease_take_idle(m, l);
    pthread_mutex_unlock(&p->lock);
    if (rc != GW_OK)
        l->m = NULL;
    return rc;
}

int gw_pool_acquire(gw_pool *p, const char *name, int watch_fd, gw_pool_lease *l,
                    gw_pool_refusal *why)
{
    return acquire(p, name, watch_fd, true, l, why);
}

int gw_pool_try_acquire(gw_pool *p, const char *name, gw_pool_lease *l, gw_pool_refusal *why)
{
    return acquire(p, name, -1, false, l, why);
}

static void record_latency(gw_pool_model *m, double s)
{
    for (size_t b = 0; b < GW_POOL_LATENCY_BUCKETS; b++)
        if (s <= gw_pool_latency_bounds[b])
            m->latency_buckets[b]++;
    m->latency_count++;
    m->latency_sum += s;
}

void gw_pool_release(gw_pool *p, gw_pool_lease *l, int keep_fd, int status)
{
    gw_pool_model *m = l->m;
    if (!m)
        return;
    double s = (double)(gw__now_mono_ns() - l->start_ns) / 1e9;
    pthread_mutex_lock(&p->lock);
    if (keep_fd >= 0 && m->generation == l->generation && m->state == GW_PM_READY &&
        m->n_idle < GW_POOL_IDLE_CONNS)
        m->idle_fds[m->n_idle++] = keep_fd;
    else if (keep_fd >= 0)
        close(keep_fd);
    m->in_flight--;
    m->last_used_ns = gw__now_mono_ns();
    m->requests[status >= 100 && status < 600 ? status / 100 : 0]++;
    record_latency(m, s);
    if (status >= 200 && status < 500 && m->generation == l->generation)
        m->failures = 0;
    assert(model_check(m));
    gw__pool_wake(p);
    pthread_mutex_unlock(&p->lock);
    l->m = NULL;
}

void gw_pool_upstream_failed(gw_pool *p, const gw_pool_lease *l, const char *err_text,
                             gw_pool_refusal *why)
{
    gw_pool_model *m = l->m;
    pthread_mutex_lock(&p->lock);
    int64_t end = gw__now_mono_ns() + 1000000000;
    /* the supervisor needs a moment to see the exit (or finish the kill of
     * a hung child): wait for the state to settle */
    while (gw__now_mono_ns() < end && m->generation == l->generation &&
           (m->state == GW_PM_UNLOADING ||
            (m->state == GW_PM_READY && m->child && !m->child->exited)))
        gw__pool_wait_ms(p, 20);
    bool ended = m->generation != l->generation || m->state == GW_PM_FAILED;
    if (ended && m->last_error[0])
        refuse(why, m->fail_status ? m->fail_status : 502, 0, "server_error",
               "model '%s': its server failed during this request: %s", m->cfg.name,
               m->last_error);
    else
        refuse(why, 502, 0, "server_error", "model '%s': bad answer from its server: %s",
               m->cfg.name, err_text);
    pthread_mutex_unlock(&p->lock);
}

int gw_pool_load(gw_pool *p, const char *name, gw_pool_refusal *why)
{
    gw_pool_model *m = find_or_refuse(p, name, why);
    if (!m)
        return GW_EIO;
    /* like a request, but it takes no slot: a loaded model is done at once */
    pthread_mutex_lock(&p->lock);
    int rc = GW_EIO;
    for (;;) {
        if (p->stopping) {
            refuse(why, 503, 5, "unavailable_error", "the pool is shutting down");
            break;
        }
        if ((m->broken || m->state == GW_PM_FAILED) && !may_restart(m, why))
            break;
        if (m->state == GW_PM_READY) {
            rc = GW_OK;
            break;
        }
        if (m->state == GW_PM_UNLOADED) {
            m->state = GW_PM_LOADING;
            pthread_mutex_unlock(&p->lock);
            rc = gw__pool_load(p, m, false, why);
            pthread_mutex_lock(&p->lock);
            break;
        }
        gw__pool_wait_ms(p, WAIT_SLICE_MS);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int gw_pool_unload(gw_pool *p, const char *name, gw_pool_refusal *why)
{
    gw_pool_model *m = find_or_refuse(p, name, why);
    if (!m)
        return GW_EIO;
    pthread_mutex_lock(&p->lock);
    /* new requests queue meanwhile (they take no slot), so this ends */
    m->unload_pending = true;
    while ((m->state == GW_PM_LOADING || m->in_flight || m->state == GW_PM_UNLOADING) &&
           !p->stopping)
        gw__pool_wait_ms(p, WAIT_SLICE_MS);
    bool go = m->state == GW_PM_READY && !p->stopping;
    if (go)
        m->state = GW_PM_UNLOADING;
    else if (m->state == GW_PM_FAILED && !m->broken)
        m->state = GW_PM_UNLOADED, m->retry_at_ns = 0, m->failures = 0;
    m->unload_pending = false;
    pthread_mutex_unlock(&p->lock);
    if (go)
        gw__pool_unload(p, m, &m->unloads_asked);
    if (p->stopping) {
        refuse(why, 503, 5, "unavailable_error", "the pool is shutting down");
        return GW_EIO;
    }
    return GW_OK;
}

/* ----------------------------------------------------------- supervisor */

/* A READY model whose child exited: release, FAILED. Under p->lock. */
static void on_crash(gw_pool *p, gw_pool_model *m)
{
    char how[128], tail[512];
    gw_child_describe_exit(m->child->status, how, sizeof how);
    gw_child_log_last_lines(m->child, 3, tail, sizeof tail);
    m->crashes++;
    m->state = GW_PM_UNLOADING; /* nobody reads its reservation now */
    pthread_mutex_unlock(&p->lock);
    gw__pool_release_reservation(p, m);
    pthread_mutex_lock(&p->lock);
    gw__pool_fail(p, m, 502, "its server %s (last log lines: %s)", how, tail);
}

/* Health-checks a READY model (the check itself outside the lock). */
static void check_health(gw_pool *p, gw_pool_model *m, int64_t now)
{
    if (!p->cfg.health_interval_s ||
        now - m->last_health_ns < (int64_t)p->cfg.health_interval_s * 1000000000)
        return;
    m->last_health_ns = now;
    uint32_t port = m->port;
    uint64_t gen = m->generation;
    char why[256];
    pthread_mutex_unlock(&p->lock);
    bool ok = gw__pool_child_healthy(port, 2000, why, sizeof why);
    pthread_mutex_lock(&p->lock);
    if (m->generation != gen || m->state != GW_PM_READY)
        return;
    m->health_failures = ok ? 0 : m->health_failures + 1;
    if (m->health_failures < 2)
        return;
    /* it stopped answering: kill it so requests waiting on it end now */
    gw__pool_log("%s: stopped answering /health (%s): killing pid %d", m->cfg.name, why,
                 (int)m->child->pid);
    m->state = GW_PM_UNLOADING;
    gw_child *c = m->child;
    pthread_mutex_unlock(&p->lock);
    gw_child_stop(c, 0);
    gw__pool_release_reservation(p, m);
    pthread_mutex_lock(&p->lock);
    m->crashes++;
    gw__pool_fail(p, m, 503, "its server stopped answering /health (%s) and was killed", why);
}

static void supervise_model(gw_pool *p, gw_pool_model *m, int64_t now)
{
    if (m->state != GW_PM_READY || !m->child)
        return;
    if (gw_child_poll(m->child)) {
        on_crash(p, m);
        return;
    }
    int64_t ttl = m->cfg.idle_ttl_s;
    if (!m->cfg.pinned && ttl > 0 && !m->in_flight && !m->queued && !m->unload_pending &&
        now - m->last_used_ns > ttl * 1000000000) {
        gw__pool_log("%s: idle for %llds: unloading", m->cfg.name, (long long)ttl);
        m->state = GW_PM_UNLOADING;
        pthread_mutex_unlock(&p->lock);
        gw__pool_unload(p, m, &m->unloads_idle);
        pthread_mutex_lock(&p->lock);
        return;
    }
    check_health(p, m, now);
}

static void *supervisor_main(void *arg)
{
    gw_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        int64_t now = gw__now_mono_ns();
        for (size_t i = 0; i < p->n_models && !p->stopping; i++)
            supervise_model(p, &p->models[i], now);
        struct timespec ts;
        deadline_in(&ts, SUPERVISE_MS);
        pthread_cond_timedwait(&p->sup_cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* -------------------------------------------------------------- lifecycle */

static int open_parts(gw_pool *p, gw_error *err)
{
    if (p->cfg.gpu_monitoring) {
        int rc = gw_monitor_open(&p->mon, &p->cfg.source, err);
        if (rc != GW_OK)
            return rc;
    }
    char def[1024];
    const char *path = p->cfg.ledger[0] ? p->cfg.ledger : gw_ledger_default_path(def, sizeof def);
    if (!path)
        return gw__error_set(err, GW_EINVAL, "no ledger path: set ledger = PATH "
                                             "(or GPUWATCH_LEDGER)");
    gw_ledger_opts lo;
    gw_ledger_opts_init(&lo);
    lo.path = path;
    lo.proc_root = p->cfg.source.proc_root;
    int rc = gw_ledger_open(&p->ledger, &lo, err);
    if (rc != GW_OK)
        return rc;
    return gw_child_launcher_start(&p->launcher, err);
}

int gw_pool_open(gw_pool **out, gw_pool_config *cfg, gw_error *err)
{
    *out = NULL;
    gw_pool *p = calloc(1, sizeof *p);
    if (!p) {
        gw_pool_config_release(cfg);
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    p->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->place_lock, NULL);
    pthread_mutex_init(&p->ledger_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_cond_init(&p->sup_cond, &ca);
    pthread_condattr_destroy(&ca);
    p->models = calloc(p->cfg.n_models ? p->cfg.n_models : 1, sizeof *p->models);
    if (!p->models) {
        gw_pool_close(p);
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    p->n_models = p->cfg.n_models;
    for (size_t i = 0; i < p->n_models; i++) {
        p->models[i].cfg = p->cfg.models[i];
        gw_place_request_init(&p->models[i].req);
    }
    int rc = open_parts(p, err);
    if (rc != GW_OK) {
        gw_pool_close(p);
        return rc;
    }
    for (size_t i = 0; i < p->n_models; i++)
        gw__pool_prepare(p, &p->models[i]);
    if (pthread_create(&p->supervisor, NULL, supervisor_main, p) != 0) {
        gw_pool_close(p);
        return gw__error_set(err, GW_EIO, "cannot start the supervisor thread");
    }
    p->supervisor_started = true;
    for (size_t i = 0; i < p->n_models; i++) {
        gw_pool_refusal why;
        if (p->models[i].cfg.preload && gw_pool_load(p, p->models[i].cfg.name, &why) != GW_OK)
            gw__pool_log("%s: preload failed: %s", p->models[i].cfg.name, why.message);
    }
    *out = p;
    return GW_OK;
}

void gw_pool_begin_stop(gw_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_cond_broadcast(&p->sup_cond);
    pthread_mutex_unlock(&p->lock);
}

void gw_pool_close(gw_pool *p)
{
    if (!p)
        return;
    gw_pool_begin_stop(p);
    if (p->supervisor_started)
        pthread_join(p->supervisor, NULL);
    for (size_t i = 0; i < p->n_models; i++) /* all stop at once, then each is waited for */
        if (p->models[i].child && !p->models[i].child->exited)
            kill(p->models[i].child->pid, SIGTERM);
    for (size_t i = 0; i < p->n_models; i++) {
        gw_pool_model *m = &p->models[i];
        if (m->child && (m->state == GW_PM_READY || m->state == GW_PM_LOADING)) {
            m->state = GW_PM_UNLOADING;
            gw__pool_unload(p, m, &m->unloads_asked);
        }
        gw__pool_close_idle(m);
        gw_child_free(m->child);
        m->child = NULL;
        gw_reservation_clear(&m->res);
        gw_place_request_release(&m->req);
    }
    gw_child_launcher_stop(p->launcher);
    gw_ledger_close(p->ledger);
    gw_monitor_close(p->mon);
    free(p->models);
    gw_pool_config_release(&p->cfg);
    pthread_cond_destroy(&p->cond);
    pthread_cond_destroy(&p->sup_cond);
    pthread_mutex_destroy(&p->ledger_lock);
    pthread_mutex_destroy(&p->place_lock);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
