/* watcher.c — a thread that samples a monitor and calls the application
 * back when a device's memory pressure level changes (gw_watcher_*).
 *
 * Owns: the thread, its stop flag and condition variable, the level per
 * device index, and the sample count.
 *
 * Invariants:
 *  1. Levels follow core/pressure.h's rule; a callback is made exactly when
 *     a device's level changes, on the watcher thread, with no lock held
 *     (a callback may call any other function of the library, including
 *     gw_watcher_level and gw_mem_get_info on the same monitor).
 *  2. A device that is not ok or gives no used/total keeps its level.
 *  3. gw_watcher_stop returns only after the thread has ended: no callback
 *     runs after it. Called from the watcher's own callback it cannot wait
 *     for itself: it marks the watcher stopped, detaches the thread, and
 *     the thread frees the watcher as it ends (no callback after that one).
 */
#include "core/model.h"
#include "core/pressure.h"
#include "core/util.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_MAX_DEVICES 256

struct gw_watcher {
    gw_monitor *m;
    unsigned interval_ms;
    double warn, critical, hysteresis;
    gw_pressure_fn fn;
    void *user;
    pthread_t thread;
    pthread_mutex_t lock;  /* guards stop, levels, samples */
    pthread_cond_t wake;
    bool stop;
    bool self_stop;  /* stopped from its own callback: the thread frees w */
    uint64_t samples;
    unsigned char levels[WATCH_MAX_DEVICES];
};

const char *gw_pressure_name(gw_pressure p)
{
    switch (p) {
    case GW_PRESSURE_NORMAL: return "normal";
    case GW_PRESSURE_WARNING: return "warning";
    case GW_PRESSURE_CRITICAL: return "critical";
    }
    return "unknown";
}

/* The watcher's own invariants: thresholds as gw_watcher_start checked
 * them, and every level one of the three (caller holds the lock). */
__attribute__((unused)) static bool watcher_check(const gw_watcher *w)
{
    if (!(w->warn > 0 && w->warn <= w->critical && w->critical <= 1 && w->hysteresis >= 0 &&
          w->hysteresis < w->warn && w->interval_ms >= 10))
        return false;
    for (size_t i = 0; i < WATCH_MAX_DEVICES; i++)
        if (w->levels[i] > GW_PRESSURE_CRITICAL)
            return false;
    return true;
}

/* Applies one snapshot: new levels under the lock, callbacks after it. */
static void observe(gw_watcher *w, const gw_snapshot *s)
{
    gw_pressure_event ev[WATCH_MAX_DEVICES];
    size_t n_ev = 0, n = s->n_devices < WATCH_MAX_DEVICES ? s->n_devices : WATCH_MAX_DEVICES;
    pthread_mutex_lock(&w->lock);
    w->samples++;
    for (size_t i = 0; i < n; i++) {
        const gw_device *d = &s->devices[i];
        const gw_sample *x = &d->sample;
        if (d->state != GW_DEVICE_OK || !gw_sample_has(x, GW_METRIC_MEM_USED) ||
            !gw_sample_has(x, GW_METRIC_MEM_TOTAL) || x->mem_total == 0)
            continue;
        double r = (double)x->mem_used / (double)x->mem_total;
        int before = w->levels[i];
        int after = gw__pressure_next(before, r, w->warn, w->critical, w->hysteresis);
        if (after == before)
            continue;
        w->levels[i] = (unsigned char)after;
        ev[n_ev++] = (gw_pressure_event){
            .device = (uint32_t)i, .uuid = d->info.uuid, .level = (gw_pressure)after,
            .previous = (gw_pressure)before, .used_bytes = x->mem_used,
            .total_bytes = x->mem_total, .ratio = r, .at_ns = d->sampled_at_ns};
    }
    assert(watcher_check(w));
    pthread_mutex_unlock(&w->lock);
    for (size_t k = 0; k < n_ev; k++) {
        pthread_mutex_lock(&w->lock);
        bool stopped = w->stop; /* by an earlier callback of this round */
        pthread_mutex_unlock(&w->lock);
        if (stopped)
            break;
        w->fn(&ev[k], w->user);
    }
}

static void destroy(gw_watcher *w)
{
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static void *watch_loop(void *arg)
{
    gw_watcher *w = arg;
    for (;;) {
        gw_snapshot *s = NULL;
        gw_error err;
        if (gw_monitor_sample(w->m, &s, &err) == GW_OK) {
            observe(w, s); /* s keeps the device uuids alive for the callbacks */
            gw_snapshot_release(s);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)w->interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_mutex_lock(&w->lock);
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT) {
        }
        bool stop = w->stop, self_stop = w->self_stop;
        pthread_mutex_unlock(&w->lock);
        if (self_stop)
            destroy(w);
        if (stop)
            return NULL;
    }
}

int gw_watcher_start(gw_watcher **out, gw_monitor *m, unsigned interval_ms, double warn,
                     double critical, double hysteresis, gw_pressure_fn fn, void *user,
                     gw_error *err)
{
    *out = NULL;
    if (!m || !fn)
        return gw__error_set(err, GW_EINVAL, "watcher: %s is NULL", m ? "callback" : "monitor");
    if (interval_ms < 10 || interval_ms > 86400000u)
        return gw__error_set(err, GW_EINVAL, "watcher: interval %u ms is not in 10..86400000",
                             interval_ms);
    if (!(warn > 0 && warn <= critical && critical <= 1))
        return gw__error_set(err, GW_EINVAL,
                             "watcher: thresholds warn %g, critical %g: need 0 < warn <= "
                             "critical <= 1", warn, critical);
    if (!(hysteresis >= 0 && hysteresis < warn))
        return gw__error_set(err, GW_EINVAL, "watcher: hysteresis %g is not in [0, warn %g)",
                             hysteresis, warn);
    gw_watcher *w = calloc(1, sizeof *w);
    if (!w)
        return gw__error_set(err, GW_ENOMEM, "watcher: out of memory");
    *w = (gw_watcher){.m = m, .interval_ms = interval_ms, .warn = warn, .critical = critical,
                      .hysteresis = hysteresis, .fn = fn, .user = user};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    int e = pthread_create(&w->thread, NULL, watch_loop, w);
    if (e) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return gw__error_set(err, GW_EIO, "watcher: no thread: %s", strerror(e));
    }
    *out = w;
    return GW_OK;
}

gw_pressure gw_watcher_level(gw_watcher *w, uint32_t device)
{
    if (!w || device >= WATCH_MAX_DEVICES)
        return GW_PRESSURE_NORMAL;
    pthread_mutex_lock(&w->lock);
    gw_pressure p = (gw_pressure)w->levels[device];
    pthread_mutex_unlock(&w->lock);
    return p;
}

uint64_t gw_watcher_samples(gw_watcher *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    uint64_t n = w->samples;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void gw_watcher_stop(gw_watcher *w)
{
    if (!w)
        return;
    bool own_thread = pthread_equal(pthread_self(), w->thread);
    if (own_thread) /* from its callback (invariant 3) */
        pthread_detach(w->thread);
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    w->self_stop = own_thread;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (own_thread)
        return;
    pthread_join(w->thread, NULL);
    destroy(w);
}
