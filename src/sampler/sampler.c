/* sampler.c — see sampler.h for the design (ticker + worker threads, the
 * deadline and stale copies).
 *
 * State machine of a round (all transitions under s->lock):
 *   idle --ticker: tick due--> requested --worker: picks it up--> running
 *   running --worker: monitor returned--> done --ticker: publishes--> idle
 *   running past deadline: ticker publishes a stale copy each tick, round
 *   stays running; the worker's eventual result moves it to done.
 */
#include "sampler/sampler.h"
#include "core/snapshot_build.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000ll

typedef enum round_state { ROUND_IDLE, ROUND_REQUESTED, ROUND_RUNNING, ROUND_DONE } round_state;

struct gw__sampler {
    pthread_mutex_t lock;
    pthread_cond_t wake_worker, wake_ticker;
    pthread_t worker, ticker;
    bool worker_started, ticker_started;
    bool stopping;
    bool worker_exited;

    gw__sampler_config cfg;
    gw_monitor *mon;
    gw_monitor *pmon;       /* with processes; NULL: mon has them (or none) */
    gw__log *log;
    gw__sampler_listener listener;
    void *listener_ctx;

    round_state round;
    bool round_full;        /* this round samples pmon */
    gw_monitor *running;    /* the monitor of the round in progress, or NULL */
    int64_t round_started_mono;
    gw_snapshot *result; /* ROUND_DONE: the worker's snapshot (owned) */
    int result_rc;
    char result_msg[512];

    bool reschedule;        /* interval changed: recompute the next tick */
    gw_snapshot *current;   /* published (owned reference) */
    gw_snapshot *last_good; /* last real round (owned reference) */
    gw_snapshot *last_full; /* last round of pmon: its processes carry forward */
    bool stalled;

    gw__history *history;
    gw__events *events;
    gw__sampler_stats stats;
};

void gw__sampler_config_default(gw__sampler_config *c)
{
    memset(c, 0, sizeof *c);
    c->interval_ms = 1000;
    c->deadline_ms = 2000;
    c->history_seconds = 3600;
    c->process_interval_ms = 5000;
    gw__event_thresholds_default(&c->thresholds);
}

static void abs_deadline(struct timespec *ts, int64_t mono_ns)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000);
    ts->tv_nsec = (long)(mono_ns % 1000000000);
}

/* ---------------------------------------------------------------- worker */

static void *worker_main(void *arg)
{
    gw__sampler *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->round != ROUND_REQUESTED && !s->stopping)
            pthread_cond_wait(&s->wake_worker, &s->lock);
        if (s->stopping)
            break;
        s->round = ROUND_RUNNING;
        gw_monitor *m = s->round_full && s->pmon ? s->pmon : s->mon;
        s->running = m;
        pthread_mutex_unlock(&s->lock);

        gw_snapshot *snap = NULL;
        gw_error err;
        gw_error_clear(&err);
        int rc = gw_monitor_sample(m, &snap, &err);

        pthread_mutex_lock(&s->lock);
        s->running = NULL;
        s->result = snap;
        s->result_rc = rc;
        gw__strlcpy(s->result_msg, err.message, sizeof s->result_msg);
        s->round = ROUND_DONE;
        pthread_cond_signal(&s->wake_ticker);
    }
    s->worker_exited = true;
    pthread_cond_broadcast(&s->wake_ticker);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---------------------------------------------------------------- ticker */

gw_snapshot *gw__snapshot_stale_copy(const gw_snapshot *snap, const char *hung_source,
                                     double hung_seconds, unsigned deadline_ms,
                                     int64_t now_real_ns)
{
    if (hung_source && !*hung_source)
        hung_source = NULL;
    gw__collect c;
    gw__collect_init(&c);
    for (size_t i = 0; i < snap->n_devices; i++) {
        gw_device *d = gw__collect_add_device(&c);
        if (!d)
            goto fail;
        *d = snap->devices[i];
        if (!d->sampled_at_ns)
            d->sampled_at_ns = snap->taken_ns;
        if (d->state != GW_DEVICE_LOST) {
            d->state = GW_DEVICE_STALE;
            if (!hung_source)
                snprintf(d->state_reason, sizeof d->state_reason,
                         "sampling has not returned for %.1f s (deadline %u ms); showing the "
                         "last sample",
                         hung_seconds, deadline_ms);
            else if (strcmp(d->info.source, hung_source) == 0)
                snprintf(d->state_reason, sizeof d->state_reason,
                         "source '%s' has not answered for %.1f s (deadline %u ms); showing "
                         "the last sample",
                         hung_source, hung_seconds, deadline_ms);
            else
                snprintf(d->state_reason, sizeof d->state_reason,
                         "not refreshed for %.1f s: the sampling round is blocked by source "
                         "'%s'; showing the last sample",
                         hung_seconds, hung_source);
        }
    }
    for (size_t i = 0; i < snap->n_processes; i++) {
        gw_process *p = gw__collect_add_process(&c);
        if (!p)
            goto fail;
        *p = snap->processes[i];
    }
    for (size_t i = 0; i < snap->n_sources; i++) {
        gw_source_status *st = gw__collect_add_source(&c);
        if (!st)
            goto fail;
        *st = snap->sources[i];
        bool hung = hung_source && strcmp(st->name, hung_source) == 0;
        if (hung || (!hung_source && st->device_count > 0)) {
            st->state = GW_SOURCE_FAILED;
            st->error = GW_ETIMEDOUT;
            snprintf(st->message, sizeof st->message,
                     "%s: %s for %.1f s (deadline %u ms)", st->name,
                     hung ? "has not answered" : "sampling has not returned", hung_seconds,
                     deadline_ms);
        } else if (hung_source && st->device_count > 0) {
            st->state = GW_SOURCE_DEGRADED;
            snprintf(st->message, sizeof st->message,
                     "%s: not refreshed for %.1f s, the round is blocked by source '%s'",
                     st->name, hung_seconds, hung_source);
        }
    }
    *gw__collect_host(&c) = snap->host;
    gw_snapshot *out = gw__collect_finish(&c);
    if (!out)
        goto fail;
    out->seq = snap->seq;
    out->taken_ns = now_real_ns;
    out->duration_ns = snap->duration_ns;
    out->cpu_only = snap->cpu_only;
    memcpy(out->cpu_only_reason, snap->cpu_only_reason, sizeof out->cpu_only_reason);
    return out;
fail:
    gw__collect_release(&c);
    return NULL;
}

gw_snapshot *gw__snapshot_with_processes(const gw_snapshot *cheap, const gw_snapshot *full)
{
    gw__collect c;
    gw__collect_init(&c);
    for (size_t i = 0; i < cheap->n_devices; i++) {
        gw_device *d = gw__collect_add_device(&c);
        if (!d)
            goto fail;
        *d = cheap->devices[i];
    }
    for (size_t i = 0; i < full->n_processes; i++) {
        const gw_process *p = &full->processes[i];
        if (p->device_index >= full->n_devices)
            continue;
        char key[96], k2[96];
        gw__history_key(&full->devices[p->device_index], key, sizeof key);
        size_t j = 0;
        for (; j < cheap->n_devices; j++) {
            gw__history_key(&cheap->devices[j], k2, sizeof k2);
            if (strcmp(key, k2) == 0)
                break;
        }
        if (j == cheap->n_devices || cheap->devices[j].state == GW_DEVICE_LOST)
            continue;
        gw_process *q = gw__collect_add_process(&c);
        if (!q)
            goto fail;
        *q = *p;
        q->device_index = (uint32_t)j;
    }
    for (size_t i = 0; i < cheap->n_sources; i++) {
        gw_source_status *st = gw__collect_add_source(&c);
        if (!st)
            goto fail;
        *st = cheap->sources[i];
    }
    *gw__collect_host(&c) = cheap->host;
    gw_snapshot *out = gw__collect_finish(&c);
    if (!out)
        goto fail;
    out->seq = cheap->seq;
    out->taken_ns = cheap->taken_ns;
    out->duration_ns = cheap->duration_ns;
    out->cpu_only = cheap->cpu_only;
    memcpy(out->cpu_only_reason, cheap->cpu_only_reason, sizeof out->cpu_only_reason);
    return out;
fail:
    gw__collect_release(&c);
    return NULL;
}

/* Publishes snap (takes over the caller's reference). Called unlocked. */
static void publish(gw__sampler *s, gw_snapshot *snap, bool stale)
{
    pthread_mutex_lock(&s->lock);
    gw_snapshot *old = s->current;
    s->current = snap;
    s->stats.publications++;
    if (stale)
        s->stats.stale_publications++;
    pthread_mutex_unlock(&s->lock);
    gw_snapshot_release(old);
    if (s->listener)
        s->listener(s->listener_ctx, snap, stale);
}

static void log_event_range(gw__sampler *s, uint64_t after)
{
    gw__event evs[16];
    size_t n;
    while ((n = gw__events_since(s->events, after, evs, GW__ARRAY_LEN(evs))) > 0) {
        for (size_t i = 0; i < n; i++) {
            gw__log_level lv = evs[i].severity == GW__SEV_CRITICAL  ? GW__LOG_ERROR
                               : evs[i].severity == GW__SEV_WARNING ? GW__LOG_WARNING
                               : evs[i].type == GW__EV_PROCESS_STARTED ||
                                       evs[i].type == GW__EV_PROCESS_EXITED
                                   ? GW__LOG_DEBUG
                                   : GW__LOG_NOTICE;
            gw__logf(s->log, lv, "event %s: %s", gw__event_type_name(evs[i].type), evs[i].message);
        }
        if (evs[n - 1].seq <= after)
            break; /* never loop on a ring that does not advance */
        after = evs[n - 1].seq;
    }
}

/* Counts, per source name, the rounds in which it reported an error. */
static void count_source_errors(gw__sampler *s, const gw_snapshot *snap)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < snap->n_sources; i++) {
        const gw_source_status *st = &snap->sources[i];
        size_t k = 0;
        while (k < s->stats.n_sources && strcmp(s->stats.sources[k].name, st->name) != 0)
            k++;
        if (k == s->stats.n_sources) {
            if (k == GW__ARRAY_LEN(s->stats.sources))
                continue;
            gw__strlcpy(s->stats.sources[k].name, st->name, sizeof s->stats.sources[k].name);
            s->stats.sources[k].errors = 0;
            s->stats.n_sources++;
        }
        if (st->state == GW_SOURCE_FAILED)
            s->stats.sources[k].errors++;
    }
    pthread_mutex_unlock(&s->lock);
}

/* A round returned: account, update history/events, publish. Unlocked. */
static void finish_round(gw__sampler *s, gw_snapshot *snap, int rc, const char *msg,
                         int64_t started, int64_t now, bool full)
{
    double secs = (double)(now - started) / 1e9;
    if (rc == GW_OK && snap && s->pmon) {
        if (full) {
            pthread_mutex_lock(&s->lock);
            gw_snapshot *old = s->last_full;
            s->last_full = gw_snapshot_acquire(snap);
            s->stats.process_rounds++;
            pthread_mutex_unlock(&s->lock);
            gw_snapshot_release(old);
        } else if (s->last_full) { /* only the ticker thread writes last_full */
            gw_snapshot *merged = gw__snapshot_with_processes(snap, s->last_full);
            if (merged) {
                gw_snapshot_release(snap);
                snap = merged;
            }
        }
    }
    if (rc == GW_OK && snap && s->cfg.annotate)
        s->cfg.annotate(s->cfg.annotate_ctx, snap); /* not yet published */
    pthread_mutex_lock(&s->lock);
    s->stats.rounds++;
    s->stats.last_round_seconds = secs;
    if (rc != GW_OK)
        s->stats.failures++;
    bool was_stalled = s->stalled;
    s->stalled = false;
    pthread_mutex_unlock(&s->lock);
    uint64_t before = gw__events_last_seq(s->events);
    if (was_stalled) {
        char m[256];
        snprintf(m, sizeof m, "sampling resumed after a round of %.1f s", secs);
        gw__events_add(s->events, GW__EV_SAMPLING_RESUMED, GW__SEV_INFO, secs, m);
    }
    if (rc != GW_OK || !snap) {
        gw__logf(s->log, GW__LOG_ERROR, "sampling round failed: %s", msg);
        log_event_range(s, before);
        return;
    }
    count_source_errors(s, snap);
    gw__events_observe(s->events, snap);
    if (gw__history_record(s->history, snap) != GW_OK)
        gw__logf(s->log, GW__LOG_WARNING, "history: out of memory; some GPUs not recorded");
    log_event_range(s, before);
    pthread_mutex_lock(&s->lock);
    gw_snapshot *old_good = s->last_good;
    s->last_good = gw_snapshot_acquire(snap);
    pthread_mutex_unlock(&s->lock);
    gw_snapshot_release(old_good);
    publish(s, snap, false);
}

/* The running round overran: publish a stale copy of the last good
 * snapshot. Unlocked. */
static void publish_stale(gw__sampler *s, int64_t started, int64_t now)
{
    double hung = (double)(now - started) / 1e9;
    pthread_mutex_lock(&s->lock);
    bool first = !s->stalled;
    s->stalled = true;
    if (first)
        s->stats.overruns++;
    gw_snapshot *good = gw_snapshot_acquire(s->last_good);
    unsigned deadline = s->cfg.deadline_ms;
    /* which source the stuck round is in (gw_monitor_busy_source is the one
     * monitor call allowed while another thread samples) */
    const char *busy = s->running ? gw_monitor_busy_source(s->running) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (first) {
        char m[256];
        snprintf(m, sizeof m, "sampling round has not returned within its %u ms deadline%s%s%s; "
                 "serving the last sample as stale", deadline, busy ? " (source '" : "",
                 busy ? busy : "", busy ? "' has not answered)" : "");
        uint64_t before = gw__events_last_seq(s->events);
        gw__events_add(s->events, GW__EV_SAMPLING_STALLED, GW__SEV_WARNING, hung, m);
        log_event_range(s, before);
    }
    if (!good) {
        /* Nothing was ever sampled: publish an empty snapshot that says so,
         * so readers can answer instead of waiting. */
        gw__collect c;
        gw__collect_init(&c);
        gw_snapshot *empty = gw__collect_finish(&c);
        if (!empty)
            return;
        empty->taken_ns = gw__now_real_ns();
        empty->cpu_only = true;
        snprintf(empty->cpu_only_reason, sizeof empty->cpu_only_reason,
                 "the first sampling round has not returned for %.1f s (deadline %u ms)", hung,
                 deadline);
        publish(s, empty, true);
        return;
    }
    gw_snapshot *copy = gw__snapshot_stale_copy(good, busy, hung, deadline, gw__now_real_ns());
    gw_snapshot_release(good);
    if (copy)
        publish(s, copy, true);
}

static void *ticker_main(void *arg)
{
    gw__sampler *s = arg;
    int64_t next_tick = gw__now_mono_ns();
    int64_t next_stale = 0;
    int64_t next_full = 0; /* the first round reads processes */
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = gw__now_mono_ns();
        int64_t interval = (int64_t)s->cfg.interval_ms * NS_PER_MS;
        int64_t deadline = (int64_t)s->cfg.deadline_ms * NS_PER_MS;
        if (s->reschedule) {
            s->reschedule = false;
            if (s->round_started_mono + interval < next_tick)
                next_tick = s->round_started_mono + interval;
        }
        if (s->round == ROUND_DONE) {
            gw_snapshot *snap = s->result;
            int rc = s->result_rc;
            char msg[512];
            memcpy(msg, s->result_msg, sizeof msg);
            int64_t started = s->round_started_mono;
            bool full = s->round_full;
            s->result = NULL;
            s->round = ROUND_IDLE;
            pthread_mutex_unlock(&s->lock);
            finish_round(s, snap, rc, msg, started, now, full);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        if (s->round == ROUND_IDLE && now >= next_tick) {
            s->round = ROUND_REQUESTED;
            s->round_full = s->pmon && now >= next_full;
            if (s->round_full)
                next_full = now + (int64_t)s->cfg.process_interval_ms * NS_PER_MS;
            s->round_started_mono = now;
            next_stale = now + deadline;
            /* Keep the cadence; after a long stall, restart it from now. */
            next_tick += interval;
            if (next_tick <= now)
                next_tick = now + interval;
            pthread_cond_signal(&s->wake_worker);
        }
        if (s->round != ROUND_IDLE && now >= next_stale) {
            int64_t started = s->round_started_mono;
            next_stale = now + interval;
            pthread_mutex_unlock(&s->lock);
            publish_stale(s, started, now);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        int64_t wake = s->round == ROUND_IDLE ? next_tick : next_stale;
        struct timespec ts;
        abs_deadline(&ts, wake);
        pthread_cond_timedwait(&s->wake_ticker, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ------------------------------------------------------------- lifecycle */

static int check_config(const gw__sampler_config *c, gw_error *err)
{
    if (c->interval_ms < 10 || c->interval_ms > 3600000)
        return gw__error_set(err, GW_EINVAL, "interval %u ms is out of range (10..3600000)",
                             c->interval_ms);
    if (c->process_interval_ms > 86400000)
        return gw__error_set(err, GW_EINVAL, "process interval %u ms is out of range (0..86400000)",
                             c->process_interval_ms);
    if (c->deadline_ms < 10 || c->deadline_ms > 3600000)
        return gw__error_set(err, GW_EINVAL, "deadline %u ms is out of range (10..3600000)",
                             c->deadline_ms);
    const gw__event_thresholds *t = &c->thresholds;
    if (!(t->memory_warn > 0 && t->memory_warn <= t->memory_critical && t->memory_critical <= 1 &&
          t->memory_hysteresis >= 0 && t->memory_hysteresis < t->memory_warn &&
          t->thermal_hysteresis_celsius >= 0))
        return gw__error_set(err, GW_EINVAL,
                             "memory thresholds must satisfy 0 < warn (%g) <= critical (%g) <= 1 and "
                             "0 <= hysteresis (%g) < warn",
                             t->memory_warn, t->memory_critical, t->memory_hysteresis);
    return GW_OK;
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

int gw__sampler_start(gw__sampler **out, gw_monitor *mon, gw_monitor *process_mon,
                      const gw__sampler_config *cfg, gw__sampler_listener listener,
                      void *listener_ctx, gw__log *log, gw_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc) {
        gw_monitor_close(mon);
        gw_monitor_close(process_mon);
        return rc;
    }
    gw__sampler *s = calloc(1, sizeof *s);
    if (!s) {
        gw_monitor_close(mon);
        gw_monitor_close(process_mon);
        return gw__error_set(err, GW_ENOMEM, "sampler: out of memory");
    }
    s->pmon = process_mon;
    pthread_mutex_init(&s->lock, NULL);
    cond_init_mono(&s->wake_worker);
    cond_init_mono(&s->wake_ticker);
    s->cfg = *cfg;
    s->mon = mon;
    s->log = log;
    s->listener = listener;
    s->listener_ctx = listener_ctx;
    uint64_t rows = (uint64_t)cfg->history_seconds * 1000 / cfg->interval_ms;
    if (rows == 0)
        rows = 1;
    rc = gw__history_create(&s->history, (size_t)rows, err);
    if (rc == GW_OK)
        rc = gw__events_create(&s->events, &cfg->thresholds, err);
    if (rc == GW_OK && pthread_create(&s->worker, NULL, worker_main, s) != 0)
        rc = gw__error_set(err, GW_EIO, "sampler: cannot start a thread");
    s->worker_started = rc == GW_OK;
    if (rc == GW_OK && pthread_create(&s->ticker, NULL, ticker_main, s) != 0)
        rc = gw__error_set(err, GW_EIO, "sampler: cannot start a thread");
    s->ticker_started = rc == GW_OK;
    if (rc != GW_OK) {
        gw__sampler_stop(s, 0);
        return rc;
    }
    *out = s;
    return GW_OK;
}

void gw__sampler_stop(gw__sampler *s, unsigned wait_ms)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->wake_worker);
    pthread_cond_broadcast(&s->wake_ticker);
    pthread_mutex_unlock(&s->lock);
    if (s->ticker_started)
        pthread_join(s->ticker, NULL);
    bool abandoned = false;
    if (s->worker_started) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t until = gw__now_mono_ns() + (int64_t)wait_ms * NS_PER_MS;
        pthread_mutex_lock(&s->lock);
        while (!s->worker_exited && gw__now_mono_ns() < until) {
            abs_deadline(&ts, until);
            pthread_cond_timedwait(&s->wake_ticker, &s->lock, &ts);
        }
        abandoned = !s->worker_exited;
        pthread_mutex_unlock(&s->lock);
        if (abandoned) {
            gw__logf(s->log, GW__LOG_WARNING,
                     "a sampling round is still blocked in a driver call after %u ms; "
                     "exiting without closing the GPU sources",
                     wait_ms);
            pthread_detach(s->worker);
            return; /* the worker still uses s and the monitor */
        }
        pthread_join(s->worker, NULL);
    }
    gw_snapshot_release(s->result);
    gw_snapshot_release(s->current);
    gw_snapshot_release(s->last_good);
    gw_snapshot_release(s->last_full);
    gw_monitor_close(s->mon);
    gw_monitor_close(s->pmon);
    gw__history_free(s->history);
    gw__events_free(s->events);
    pthread_cond_destroy(&s->wake_worker);
    pthread_cond_destroy(&s->wake_ticker);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

gw_snapshot *gw__sampler_current(gw__sampler *s)
{
    pthread_mutex_lock(&s->lock);
    gw_snapshot *snap = gw_snapshot_acquire(s->current);
    pthread_mutex_unlock(&s->lock);
    return snap;
}

void gw__sampler_reconfigure(gw__sampler *s, const gw__sampler_config *cfg)
{
    gw_error err;
    if (check_config(cfg, &err) != GW_OK) {
        gw__logf(s->log, GW__LOG_ERROR, "sampler: keeping the old settings: %s", err.message);
        return;
    }
    pthread_mutex_lock(&s->lock);
    unsigned keep = s->cfg.history_seconds;
    s->cfg = *cfg;
    s->cfg.history_seconds = keep;
    s->reschedule = true;
    pthread_cond_broadcast(&s->wake_ticker);
    pthread_mutex_unlock(&s->lock);
    gw__events_set_thresholds(s->events, &cfg->thresholds);
}

static double thread_cpu(pthread_t t)
{
    clockid_t cid;
    struct timespec ts;
    if (pthread_getcpuclockid(t, &cid) != 0 || clock_gettime(cid, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void gw__sampler_stats_get(gw__sampler *s, gw__sampler_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    out->stalled = s->stalled;
    out->stalled_seconds =
        s->stalled ? (double)(gw__now_mono_ns() - s->round_started_mono) / 1e9 : 0.0;
    out->interval_ms = s->cfg.interval_ms;
    out->cpu_seconds = thread_cpu(s->ticker) + thread_cpu(s->worker);
    pthread_mutex_unlock(&s->lock);
    out->history_bytes = gw__history_bytes(s->history);
}

gw__history *gw__sampler_history(gw__sampler *s) { return s->history; }
gw__events *gw__sampler_events(gw__sampler *s) { return s->events; }
