/* sampler.c — see sampler.h for the design (a ticker, a worker per source,
 * a deadline per source's read, stale copies of a hung source's part).
 *
 * Owns: the slots (one per source: its worker thread, the read in flight,
 * the part it last returned), the round (ticker), publication, counters.
 *
 * State machine of a slot (transitions under s->lock):
 *   idle --ticker: dispatch (monitor, earlier devices)--> requested
 *   requested --worker: picks it up--> running
 *   running --worker: the read returned--> done
 *   done --ticker: takes the part (in the round, or the next one when it
 *     came after the deadline)--> idle
 *   requested/running past the deadline: overdue (hung); rounds copy its
 *     last part stale and do not dispatch it until it is done.
 *
 * Invariants:
 *  1. Only the ticker dispatches or takes a slot's part, and only the
 *     ticker reads or writes a slot's `last` (no lock needed for it).
 *  2. A slot's ctx belongs to the worker from pickup on (it frees it); one
 *     never picked up is freed by gw__sampler_stop.
 *  3. A round waits for one source at most deadline_ms after dispatching
 *     it; a slot that is not idle when its turn comes is not waited for.
 *  4. Every slot that went overdue adds one sampling_stalled event and one
 *     overrun; its late answer adds one sampling_resumed event.
 */
#include "sampler/sampler.h"
#include "backends/monitor.h"
#include "core/array.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000ll

typedef enum slot_state { SLOT_IDLE, SLOT_REQUESTED, SLOT_RUNNING, SLOT_DONE } slot_state;

typedef struct slot {
    gw__sampler *s;
    size_t index;
    char name[16];
    pthread_t thread;
    bool started, exited;
    bool abandoned;         /* still blocked when the sampler stopped */
    pthread_cond_t wake;

    slot_state state;
    gw_monitor *mon;        /* requested/running: the monitor read */
    bool full;              /* ... which is the process monitor */
    gw_device *ctx;         /* requested: earlier sources' devices (inv. 2) */
    size_t n_ctx;
    int64_t started_mono;   /* when dispatched */
    int64_t started_real;
    bool overdue;           /* past its deadline: hung */
    gw__collect result;     /* done: the part */
    int result_rc;
    char result_msg[256];

    /* ticker only (inv. 1) */
    gw__collect last;       /* the part last returned */
    bool have_last;
    int64_t last_taken;     /* CLOCK_REALTIME when that read began */
    gw__collect copy;       /* this round's stale copy of last */
    const gw__collect *use; /* this round's part: &last or &copy */
    bool own;               /* use's processes are this round's list */
} slot;

struct gw__sampler {
    pthread_mutex_t lock;
    pthread_cond_t wake_ticker;
    pthread_t ticker;
    bool ticker_started;
    bool stopping;

    gw__sampler_config cfg;
    gw_monitor *mon;
    gw_monitor *pmon;       /* with processes; NULL: mon has them (or none) */
    gw__log *log;
    gw__sampler_listener listener;
    void *listener_ctx;

    slot *slots;
    size_t n_slots;
    const gw__collect **use; /* ticker only: the round's parts, in order */
    gw_device *ctx;          /* ticker only: the round's devices so far */
    size_t n_ctx, cap_ctx;

    int64_t round_started_mono;
    bool reschedule;        /* interval changed: recompute the next tick */
    uint64_t seq;           /* of the last assembled snapshot */
    gw_snapshot *current;   /* published (owned reference) */
    gw_snapshot *last_full; /* last round of pmon: its processes carry forward */

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
    slot *sl = arg;
    gw__sampler *s = sl->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (sl->state != SLOT_REQUESTED && !s->stopping)
            pthread_cond_wait(&sl->wake, &s->lock);
        if (s->stopping)
            break;
        sl->state = SLOT_RUNNING;
        gw_monitor *m = sl->mon;
        gw_device *ctx = sl->ctx;
        size_t n_ctx = sl->n_ctx;
        sl->ctx = NULL;
        pthread_mutex_unlock(&s->lock);

        gw__collect part;
        gw__collect_init(&part);
        gw_error err;
        gw_error_clear(&err);
        int rc = gw__monitor_sample_source(m, sl->index, ctx, n_ctx, &part, &err);
        free(ctx);

        pthread_mutex_lock(&s->lock);
        sl->result = part;
        sl->result_rc = rc;
        gw__strlcpy(sl->result_msg, err.message, sizeof sl->result_msg);
        sl->state = SLOT_DONE;
        pthread_cond_broadcast(&s->wake_ticker);
    }
    sl->exited = true;
    pthread_cond_broadcast(&s->wake_ticker);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ------------------------------------------------------- snapshot pieces */

int gw__part_stale_copy(const gw__collect *last, const char *name, double hung_seconds,
                        unsigned deadline_ms, int64_t last_taken_ns, bool keep_processes,
                        gw__collect *out)
{
    gw__collect_release(out);
    size_t n_dev = last ? last->n_devices : 0;
    for (size_t i = 0; i < n_dev; i++) {
        gw_device *d = gw__collect_add_device(out);
        if (!d)
            goto fail;
        *d = last->devices[i];
        if (!d->sampled_at_ns)
            d->sampled_at_ns = last_taken_ns;
        if (d->state != GW_DEVICE_LOST) {
            d->state = GW_DEVICE_STALE;
            snprintf(d->state_reason, sizeof d->state_reason,
                     "source '%s' has not answered for %.1f s (deadline %u ms); showing the "
                     "last sample",
                     name, hung_seconds, deadline_ms);
        }
    }
    for (size_t i = 0; keep_processes && last && i < last->n_processes; i++) {
        gw_process *p = gw__collect_add_process(out);
        if (!p)
            goto fail;
        *p = last->processes[i];
    }
    gw_source_status *st = gw__collect_add_source(out);
    if (!st)
        goto fail;
    if (last && last->n_sources)
        *st = last->sources[0];
    gw__strlcpy(st->name, name, sizeof st->name);
    st->state = GW_SOURCE_FAILED;
    st->error = GW_ETIMEDOUT;
    st->device_count = (uint32_t)n_dev;
    snprintf(st->message, sizeof st->message, "%s: has not answered for %.1f s (deadline %u ms)",
             name, hung_seconds, deadline_ms);
    if (last)
        out->host = last->host;
    return GW_OK;
fail:
    gw__collect_release(out);
    return GW_ENOMEM;
}

gw_snapshot *gw__snapshot_with_processes(const gw_snapshot *cheap, const gw_snapshot *full,
                                         const bool *keep_own)
{
    gw__collect c;
    gw__collect_init(&c);
    for (size_t i = 0; i < cheap->n_devices; i++) {
        gw_device *d = gw__collect_add_device(&c);
        if (!d)
            goto fail;
        *d = cheap->devices[i];
    }
    for (size_t i = 0; keep_own && i < cheap->n_processes; i++) {
        const gw_process *p = &cheap->processes[i];
        if (p->device_index >= cheap->n_devices || !keep_own[p->device_index])
            continue;
        gw_process *q = gw__collect_add_process(&c);
        if (!q)
            goto fail;
        *q = *p;
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
        if (j == cheap->n_devices || cheap->devices[j].state == GW_DEVICE_LOST ||
            (keep_own && keep_own[j]))
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

/* ----------------------------------------------------------------- round */

/* source_turn's answer when the sampler stops (error codes are negative) */
#define TURN_STOPPED 1

/* Hands sl a read of m with the devices the round holds so far. Locked. */
static int dispatch(gw__sampler *s, slot *sl, gw_monitor *m, bool full)
{
    gw_device *ctx = NULL;
    if (s->n_ctx) {
        ctx = malloc(s->n_ctx * sizeof *ctx); /* n_ctx fitted in s->ctx: no overflow */
        if (!ctx)
            return GW_ENOMEM;
        memcpy(ctx, s->ctx, s->n_ctx * sizeof *ctx);
    }
    sl->ctx = ctx;
    sl->n_ctx = s->n_ctx;
    sl->mon = m;
    sl->full = full;
    sl->started_mono = gw__now_mono_ns();
    sl->started_real = gw__now_real_ns();
    sl->state = SLOT_REQUESTED;
    pthread_cond_signal(&sl->wake);
    return GW_OK;
}

/* Waits, locked, until sl is done, past its deadline, or the sampler stops. */
static void wait_slot(gw__sampler *s, slot *sl)
{
    int64_t until = sl->started_mono + (int64_t)s->cfg.deadline_ms * NS_PER_MS;
    while (sl->state != SLOT_DONE && !s->stopping && gw__now_mono_ns() < until) {
        struct timespec ts;
        abs_deadline(&ts, until);
        pthread_cond_timedwait(&s->wake_ticker, &s->lock, &ts);
    }
}

static void add_event(gw__sampler *s, gw__event_type type, gw__event_severity sev, double value,
                      const char *msg)
{
    uint64_t before = gw__events_last_seq(s->events);
    gw__events_add(s->events, type, sev, value, msg);
    log_event_range(s, before);
}

/* sl answered (in time or late): its part becomes the round's. Called
 * locked with sl done; returns unlocked. */
static int take_answer(gw__sampler *s, slot *sl)
{
    gw__collect part = sl->result;
    gw__collect_init(&sl->result);
    int rc = sl->result_rc;
    char msg[sizeof sl->result_msg];
    memcpy(msg, sl->result_msg, sizeof msg);
    bool was_overdue = sl->overdue, full = sl->full;
    double secs = (double)(gw__now_mono_ns() - sl->started_mono) / 1e9;
    int64_t taken = sl->started_real;
    sl->overdue = false;
    sl->state = SLOT_IDLE;
    pthread_mutex_unlock(&s->lock);
    if (was_overdue) {
        char m[256];
        snprintf(m, sizeof m, "source '%s' answered again after %.1f s", sl->name, secs);
        add_event(s, GW__EV_SAMPLING_RESUMED, GW__SEV_INFO, secs, m);
    }
    if (rc != GW_OK) {
        gw__collect_release(&part);
        gw__logf(s->log, GW__LOG_ERROR, "sampling source '%s' failed: %s", sl->name, msg);
        return rc;
    }
    gw__collect_release(&sl->last);
    sl->last = part;
    sl->have_last = true;
    sl->last_taken = taken;
    sl->use = &sl->last;
    sl->own = !s->pmon || full;
    return GW_OK;
}

/* sl has not answered by its deadline (now or in an earlier round): the
 * round uses a stale copy of its last part. Called locked; returns
 * unlocked. */
static int take_stale(gw__sampler *s, slot *sl)
{
    bool first = !sl->overdue;
    if (first) {
        sl->overdue = true;
        s->stats.overruns++;
    }
    double hung = (double)(gw__now_mono_ns() - sl->started_mono) / 1e9;
    unsigned deadline = s->cfg.deadline_ms;
    pthread_mutex_unlock(&s->lock);
    if (first) {
        char m[256];
        snprintf(m, sizeof m,
                 "source '%s' has not answered within its %u ms deadline; serving its last "
                 "sample as stale (the other sources stay fresh)",
                 sl->name, deadline);
        add_event(s, GW__EV_SAMPLING_STALLED, GW__SEV_WARNING, hung, m);
    }
    sl->use = &sl->copy;
    sl->own = !s->pmon;
    return gw__part_stale_copy(sl->have_last ? &sl->last : NULL, sl->name, hung, deadline,
                               sl->last_taken, !s->pmon, &sl->copy);
}

/* Source sl's turn in a round reading m: ask it and wait for it when it is
 * idle, else take what it has. Sets *stale when the round uses a stale
 * copy. Returns GW_OK, GW_ENOMEM, or TURN_STOPPED when the sampler stops.
 * Unlocked. */
static int source_turn(gw__sampler *s, slot *sl, gw_monitor *m, bool full, bool *stale)
{
    pthread_mutex_lock(&s->lock);
    if (sl->state == SLOT_IDLE) {
        if (dispatch(s, sl, m, full) != GW_OK) {
            pthread_mutex_unlock(&s->lock);
            return GW_ENOMEM;
        }
        wait_slot(s, sl);
    }
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return TURN_STOPPED;
    }
    if (sl->state == SLOT_DONE)
        return take_answer(s, sl);
    *stale = true;
    return take_stale(s, sl);
}

/* Appends part p's devices to the round's (what later sources see). */
static int add_ctx(gw__sampler *s, const gw__collect *p)
{
    if (p->n_devices == 0)
        return GW_OK; /* (devices may be NULL) */
    if (GW__ARRAY_RESERVE(s->ctx, s->cap_ctx, s->n_ctx + p->n_devices, GW__ARRAY_UNBOUNDED))
        return GW_ENOMEM;
    memcpy(s->ctx + s->n_ctx, p->devices, p->n_devices * sizeof *p->devices);
    s->n_ctx += p->n_devices;
    return GW_OK;
}

/* With a process monitor: the devices of parts that bring no process list
 * this round (read by the cheap monitor, or a hung source's copy) take
 * theirs from the last full round. Returns snap or its replacement. */
static gw_snapshot *carry_processes(gw__sampler *s, gw_snapshot *snap)
{
    if (!s->pmon || !s->last_full) /* only the ticker thread writes last_full */
        return snap;
    bool all_own = true, none_own = true;
    for (size_t i = 0; i < s->n_slots; i++) {
        all_own = all_own && s->slots[i].own;
        none_own = none_own && !s->slots[i].own;
    }
    if (all_own)
        return snap;
    bool *keep = NULL;
    if (!none_own) {
        keep = calloc(snap->n_devices ? snap->n_devices : 1, sizeof *keep);
        if (!keep)
            return snap;
        size_t k = 0;
        for (size_t i = 0; i < s->n_slots; i++)
            for (size_t j = 0; j < s->slots[i].use->n_devices && k < snap->n_devices; j++)
                keep[k++] = s->slots[i].own;
    }
    gw_snapshot *merged = gw__snapshot_with_processes(snap, s->last_full, keep);
    free(keep);
    if (!merged)
        return snap;
    merged->seq = snap->seq;
    gw_snapshot_release(snap);
    return merged;
}

/* A round was assembled (snap) or failed (NULL): account, update
 * history/events, publish. Unlocked. */
static void finish_round(gw__sampler *s, gw_snapshot *snap, int64_t started, bool full,
                         bool stale)
{
    double secs = (double)(gw__now_mono_ns() - started) / 1e9;
    if (snap) {
        snap = carry_processes(s, snap);
        if (full) {
            pthread_mutex_lock(&s->lock);
            gw_snapshot *old = s->last_full;
            s->last_full = gw_snapshot_acquire(snap);
            s->stats.process_rounds++;
            pthread_mutex_unlock(&s->lock);
            gw_snapshot_release(old);
        }
        if (s->cfg.annotate)
            s->cfg.annotate(s->cfg.annotate_ctx, snap); /* not yet published */
    }
    pthread_mutex_lock(&s->lock);
    s->stats.rounds++;
    s->stats.last_round_seconds = secs;
    if (!snap)
        s->stats.failures++;
    pthread_mutex_unlock(&s->lock);
    if (!snap) {
        gw__logf(s->log, GW__LOG_ERROR, "sampling round failed: out of memory");
        return;
    }
    count_source_errors(s, snap);
    uint64_t before = gw__events_last_seq(s->events);
    gw__events_observe(s->events, snap);
    if (gw__history_record(s->history, snap) != GW_OK)
        gw__logf(s->log, GW__LOG_WARNING, "history: out of memory; some GPUs not recorded");
    log_event_range(s, before);
    publish(s, snap, stale);
}

/* One round: every source's part in source order, assembled and
 * published. Unlocked. */
static void run_round(gw__sampler *s, int64_t started, bool full)
{
    int64_t taken = gw__now_real_ns();
    gw_monitor *m = full ? s->pmon : s->mon;
    s->n_ctx = 0;
    bool stale = false;
    int rc = GW_OK;
    for (size_t i = 0; i < s->n_slots && rc == GW_OK; i++) {
        rc = source_turn(s, &s->slots[i], m, full, &stale);
        if (rc == GW_OK)
            rc = add_ctx(s, s->slots[i].use);
        if (rc == GW_OK)
            s->use[i] = s->slots[i].use;
    }
    if (rc == TURN_STOPPED) {
        for (size_t i = 0; i < s->n_slots; i++)
            gw__collect_release(&s->slots[i].copy);
        return;
    }
    gw_snapshot *snap = NULL;
    if (rc == GW_OK) {
        snap = gw__snapshot_assemble(s->use, s->n_slots, taken, gw__now_mono_ns() - started);
        if (snap)
            snap->seq = ++s->seq;
    }
    for (size_t i = 0; i < s->n_slots; i++)
        gw__collect_release(&s->slots[i].copy);
    finish_round(s, snap, started, full, stale);
}

/* True when a source answered after its deadline and its part waits for a
 * round. Locked. */
static bool late_answer(const gw__sampler *s)
{
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_DONE)
            return true;
    return false;
}

static void *ticker_main(void *arg)
{
    gw__sampler *s = arg;
    int64_t next_tick = gw__now_mono_ns();
    int64_t next_full = 0; /* the first round reads processes */
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = gw__now_mono_ns();
        int64_t interval = (int64_t)s->cfg.interval_ms * NS_PER_MS;
        if (s->reschedule) {
            s->reschedule = false;
            if (s->round_started_mono + interval < next_tick)
                next_tick = s->round_started_mono + interval;
        }
        bool due = now >= next_tick;
        if (due || late_answer(s)) {
            bool full = s->pmon && now >= next_full;
            if (full)
                next_full = now + (int64_t)s->cfg.process_interval_ms * NS_PER_MS;
            if (due) {
                /* Keep the cadence; after a long round, restart it from now. */
                next_tick += interval;
                if (next_tick <= now)
                    next_tick = now + interval;
            }
            s->round_started_mono = now;
            pthread_mutex_unlock(&s->lock);
            run_round(s, now, full);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        struct timespec ts;
        abs_deadline(&ts, next_tick);
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

/* Sets up one slot per source of mon, checking pmon reads the same ones. */
static int make_slots(gw__sampler *s, gw_error *err)
{
    size_t n = gw__monitor_source_count(s->mon);
    if (s->pmon && gw__monitor_source_count(s->pmon) != n)
        return gw__error_set(err, GW_EINVAL, "sampler: the process monitor reads other sources");
    s->slots = calloc(n ? n : 1, sizeof *s->slots); /* n: at most the built-in backends */
    s->use = calloc(n ? n : 1, sizeof *s->use);
    if (!s->slots || !s->use)
        return gw__error_set(err, GW_ENOMEM, "sampler: out of memory");
    for (size_t i = 0; i < n; i++) {
        slot *sl = &s->slots[i];
        const char *name = gw__monitor_source_name(s->mon, i);
        if (s->pmon && strcmp(name, gw__monitor_source_name(s->pmon, i)) != 0)
            return gw__error_set(err, GW_EINVAL, "sampler: the process monitor reads other sources");
        sl->s = s;
        sl->index = i;
        gw__strlcpy(sl->name, name, sizeof sl->name);
        pthread_cond_init(&sl->wake, NULL);
        gw__collect_init(&sl->result);
        gw__collect_init(&sl->last);
        gw__collect_init(&sl->copy);
        s->n_slots = i + 1;
    }
    return GW_OK;
}

static int start_threads(gw__sampler *s, gw_error *err)
{
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (pthread_create(&sl->thread, NULL, worker_main, sl) != 0)
            return gw__error_set(err, GW_EIO, "sampler: cannot start a thread");
        sl->started = true;
    }
    if (pthread_create(&s->ticker, NULL, ticker_main, s) != 0)
        return gw__error_set(err, GW_EIO, "sampler: cannot start a thread");
    s->ticker_started = true;
    return GW_OK;
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
    cond_init_mono(&s->wake_ticker);
    s->cfg = *cfg;
    s->mon = mon;
    s->log = log;
    s->listener = listener;
    s->listener_ctx = listener_ctx;
    uint64_t rows = (uint64_t)cfg->history_seconds * 1000 / cfg->interval_ms;
    if (rows == 0)
        rows = 1;
    rc = make_slots(s, err);
    if (rc == GW_OK)
        rc = gw__history_create(&s->history, (size_t)rows, err);
    if (rc == GW_OK)
        rc = gw__events_create(&s->events, &cfg->thresholds, err);
    if (rc == GW_OK)
        rc = start_threads(s, err);
    if (rc != GW_OK) {
        gw__sampler_stop(s, 0);
        return rc;
    }
    *out = s;
    return GW_OK;
}

/* Waits up to wait_ms for every worker to exit; returns how many are still
 * blocked and names them in names[cap]. */
static size_t wait_workers(gw__sampler *s, unsigned wait_ms, char *names, size_t cap)
{
    int64_t until = gw__now_mono_ns() + (int64_t)wait_ms * NS_PER_MS;
    size_t blocked;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        blocked = 0;
        for (size_t i = 0; i < s->n_slots; i++)
            blocked += s->slots[i].started && !s->slots[i].exited;
        if (!blocked || gw__now_mono_ns() >= until)
            break;
        struct timespec ts;
        abs_deadline(&ts, until);
        pthread_cond_timedwait(&s->wake_ticker, &s->lock, &ts);
    }
    names[0] = '\0';
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->abandoned = sl->started && !sl->exited;
        if (sl->abandoned)
            snprintf(names + strlen(names), cap - strlen(names), "%s'%s'", names[0] ? ", " : "",
                     sl->name);
    }
    pthread_mutex_unlock(&s->lock);
    return blocked;
}

void gw__sampler_stop(gw__sampler *s, unsigned wait_ms)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    for (size_t i = 0; i < s->n_slots; i++)
        pthread_cond_broadcast(&s->slots[i].wake);
    pthread_cond_broadcast(&s->wake_ticker);
    pthread_mutex_unlock(&s->lock);
    if (s->ticker_started)
        pthread_join(s->ticker, NULL);
    char names[256];
    size_t blocked = wait_workers(s, wait_ms, names, sizeof names);
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->abandoned)
            pthread_detach(sl->thread);
        else if (sl->started)
            pthread_join(sl->thread, NULL);
    }
    if (blocked) {
        gw__logf(s->log, GW__LOG_WARNING,
                 "source %s still blocked in a driver call after %u ms; exiting without "
                 "closing the GPU sources",
                 names, wait_ms);
        return; /* the blocked workers still use s and the monitors */
    }
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        gw__collect_release(&sl->result);
        gw__collect_release(&sl->last);
        gw__collect_release(&sl->copy);
        free(sl->ctx);
        pthread_cond_destroy(&sl->wake);
    }
    free(s->slots);
    free(s->use);
    free(s->ctx);
    gw_snapshot_release(s->current);
    gw_snapshot_release(s->last_full);
    gw_monitor_close(s->mon);
    gw_monitor_close(s->pmon);
    gw__history_free(s->history);
    gw__events_free(s->events);
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
    out->stalled = false;
    out->stalled_seconds = 0;
    int64_t now = gw__now_mono_ns();
    out->cpu_seconds = thread_cpu(s->ticker);
    for (size_t i = 0; i < s->n_slots; i++) {
        const slot *sl = &s->slots[i];
        out->cpu_seconds += thread_cpu(sl->thread);
        if (!sl->overdue)
            continue;
        double hung = (double)(now - sl->started_mono) / 1e9;
        out->stalled = true;
        if (hung > out->stalled_seconds)
            out->stalled_seconds = hung;
    }
    out->interval_ms = s->cfg.interval_ms;
    out->history_seconds = s->cfg.history_seconds;
    pthread_mutex_unlock(&s->lock);
    out->history_bytes = gw__history_bytes(s->history);
}

gw__history *gw__sampler_history(gw__sampler *s) { return s->history; }
gw__events *gw__sampler_events(gw__sampler *s) { return s->events; }
