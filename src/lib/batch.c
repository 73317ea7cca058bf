/* batch.c — the adaptive batch-size finder (gw_find_batch_size).
 *
 * Owns: one search: the bracket (largest batch that ran, smallest that ran
 * out of memory), the memory model fitted from the trials, the choice of
 * the next trial, and the use of the cache (batch_cache.c).
 *
 * The search:
 *  - a trial at lo (out of memory there: GW_ERANGE);
 *  - while no trial has run out of memory: the model's predicted limit
 *    when it lies above the largest batch that ran; when the model says the
 *    limit is already reached yet the next batch runs, steps of 1, 2, 4, ...
 *    above it; without a model, doubling;
 *  - then, between the bracket's ends, the model's prediction when it lies
 *    inside, once the batch just above the largest that ran when the model
 *    puts the limit there, else the middle; a model step that did not
 *    halve the bracket is followed by a middle step (so a wrong model costs
 *    at most one extra trial per halving).
 * The model: memory held after a trial (read fresh before the cleanup hook,
 * while a framework's cache still holds the step's memory) minus what was
 * held before the first trial -- this process's own memory where the source
 * lists it, else the device's used memory (invariant 4) -- as fixed +
 * slope x batch by least squares over the trials that ran (one trial:
 * slope only), plus a quadratic term once three trials over a 4x range
 * show memory growing faster than the batch. Its limit is the largest batch
 * whose need fits the memory free at that moment, measured after the
 * previous cleanup, so a neighbour that takes or gives back memory moves
 * the prediction. A bracket wider than 4x is halved in log space.
 *
 * Invariants:
 *  1. ok < oom whenever both are set; every trial lies strictly between.
 *  2. cleanup runs after every trial, whatever it answered.
 *  3. The answer is max(lo, floor(largest_ok * (1 - margin))) and
 *     largest_ok ran without running out of memory.
 *  4. The model measures what the job itself holds when the source lists
 *     this process's memory on the device (NVML's process list), so a
 *     neighbour's memory moving between trials does not bend it; else the
 *     device's used memory. The limit is always predicted from the memory
 *     free at that moment, and a search whose bracket is narrower than the
 *     spread of the used memory seen between trials (the neighbour's noise,
 *     in batch sizes) stops there.
 */
#include "backends/monitor.h"
#include "core/model.h"
#include "core/util.h"
#include "lib/batch.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_POINTS 64

typedef struct search {
    const gw_batch_options *o;
    gw_batch_result *r;
    uint64_t ok, oom;      /* 0: none yet */
    bool measure;          /* memory can be read */
    uint64_t base_used;    /* device memory used before the first trial */
    bool own;              /* the job's own process memory is readable (model
                              invariant 4); false: device-level */
    uint64_t own_base;     /* the job's own memory before the first trial */
    double b[MAX_POINTS], need[MAX_POINTS];
    size_t n;
    double fixed, slope, quad; /* the model; slope and quad 0: none */
    uint64_t idle_min, idle_max; /* used memory seen between trials */
    uint64_t gallop;       /* step up from ok while the model says "here" */
    bool last_model;       /* the last two-sided step was the model's */
    uint64_t last_width;   /* the bracket's width before that step */
    bool crept;            /* ok + 1 was tried on the model's word */
    bool stepped;          /* the top less the noise band was tried */
} search;

void gw_batch_options_init_size(gw_batch_options *o, size_t size)
{
    gw_batch_options d;
    memset(&d, 0, sizeof d);
    d.lo = 1;
    d.hi = 65536;
    d.margin = 0.05;
    d.device = -1;
    d.use_model = true;
    d.max_trials = 64;
    if (size > sizeof d)
        size = sizeof d;
    d.size = (uint32_t)size;
    memcpy(o, &d, size);
}

__attribute__((unused)) static bool search_check(const search *s)
{
    return (!s->ok || !s->oom || s->ok < s->oom) && s->n <= MAX_POINTS;
}

static bool used_now(const search *s, uint64_t *used, uint64_t *freeb)
{
    uint64_t f, t;
    if (gw_mem_get_info(s->o->monitor, (uint32_t)s->o->device, GW_READ_FRESH, &f, &t, NULL) !=
        GW_OK || f > t)
        return false;
    *used = t - f;
    if (freeb)
        *freeb = f;
    return true;
}

/* The memory this process holds on the device now: 1 read, 0 not listed
 * there (no context yet, or another pid namespace), -1 not readable. */
static int own_now(const search *s, uint64_t *bytes)
{
    gw_snapshot *snap = gw_monitor_latest(s->o->monitor);
    int rc = GW_ENODEV;
    *bytes = 0;
    if (snap && (size_t)s->o->device < gw_snapshot_device_count(snap))
        rc = gw__monitor_read_process_memory(s->o->monitor, gw_snapshot_device(snap,
                                             (size_t)s->o->device), (uint32_t)getpid(), bytes,
                                             NULL);
    gw_snapshot_release(snap);
    return rc == GW_OK ? 1 : rc == GW_ENOENT ? 0 : -1;
}

/* Least squares of need = fixed + slope b over the trials that ran (one
 * trial: through the origin). */
static void fit_line(search *s)
{
    s->slope = s->fixed = s->quad = 0;
    if (s->n == 1) {
        s->slope = s->need[0] / s->b[0];
        return;
    }
    double sb = 0, sn = 0, sbb = 0, sbn = 0, k = (double)s->n;
    for (size_t i = 0; i < s->n; i++) {
        sb += s->b[i];
        sn += s->need[i];
        sbb += s->b[i] * s->b[i];
        sbn += s->b[i] * s->need[i];
    }
    double den = k * sbb - sb * sb;
    if (den > 0) {
        s->slope = (k * sbn - sb * sn) / den;
        s->fixed = (sn - s->slope * sb) / k;
    }
}

/* Least squares of need = fixed + slope b + quad b^2 (b scaled to 0..1 for
 * conditioning); false when the system is singular. */
static bool fit_quadratic(search *s, double *f, double *k, double *q)
{
    double bmax = 0, m[3][4] = {{0}};
    for (size_t i = 0; i < s->n; i++)
        bmax = s->b[i] > bmax ? s->b[i] : bmax;
    for (size_t i = 0; i < s->n; i++) {
        double x = s->b[i] / bmax, p[3] = {1, x, x * x};
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++)
                m[r][c] += p[r] * p[c];
            m[r][3] += p[r] * s->need[i];
        }
    }
    for (int c = 0; c < 3; c++) { /* Gauss-Jordan with partial pivoting */
        int piv = c;
        for (int r = c + 1; r < 3; r++)
            if (fabs(m[r][c]) > fabs(m[piv][c]))
                piv = r;
        if (fabs(m[piv][c]) < 1e-12)
            return false;
        for (int j = 0; j < 4; j++) {
            double t = m[c][j];
            m[c][j] = m[piv][j];
            m[piv][j] = t;
        }
        for (int r = 0; r < 3; r++) {
            if (r == c)
                continue;
            double factor = m[r][c] / m[c][c];
            for (int j = c; j < 4; j++)
                m[r][j] -= factor * m[c][j];
        }
    }
    *f = m[0][3] / m[0][0];
    *k = m[1][3] / m[1][1] / bmax;
    *q = m[2][3] / m[2][2] / (bmax * bmax);
    return true;
}

/* The model: a line, or with three trials or more over a range of at least
 * 4x a parabola when its curvature is positive (memory that grows faster
 * than the batch, e.g. attention over the batch). */
static void fit(search *s)
{
    fit_line(s);
    double lo = s->b[0], hi = s->b[0];
    for (size_t i = 1; i < s->n; i++) {
        lo = s->b[i] < lo ? s->b[i] : lo;
        hi = s->b[i] > hi ? s->b[i] : hi;
    }
    double f, k, q;
    if (s->n >= 3 && hi >= 4 * lo && fit_quadratic(s, &f, &k, &q) && q > 0 && k + 2 * q * hi > 0) {
        s->fixed = f;
        s->slope = k;
        s->quad = q;
    }
    if (!(s->slope > 0 || s->quad > 0)) /* memory did not grow with the batch: no model */
        s->slope = s->fixed = s->quad = 0;
}

/* The model's limit given the memory free now; 0 when there is none. The
 * reading also widens the noise band (the spread of the used memory seen
 * between trials, when nothing of ours is allocated). */
static uint64_t predict(search *s)
{
    uint64_t used, freeb;
    if (!s->o->use_model || (s->slope <= 0 && s->quad <= 0) || !used_now(s, &used, &freeb))
        return 0;
    s->idle_min = used < s->idle_min ? used : s->idle_min;
    s->idle_max = used > s->idle_max ? used : s->idle_max;
    /* a trial may use what is free now, plus what this process holds above
     * its base between trials (measured with the model: invariant 4) */
    double room = (double)freeb - s->fixed, b;
    uint64_t own;
    if (s->own && own_now(s, &own) == 1 && own > s->own_base)
        room += (double)(own - s->own_base);
    else if (!s->own && used > s->base_used) /* what the job keeps between trials (a */
        room += (double)(used - s->base_used);  /* context) is in fixed and not free */
    if (room <= 0)
        return 1;
    if (s->quad > 0)
        b = floor((-s->slope + sqrt(s->slope * s->slope + 4 * s->quad * room)) / (2 * s->quad));
    else
        b = floor(room / s->slope);
    return b >= (double)UINT64_MAX ? UINT64_MAX : b < 1 ? 1 : (uint64_t)b;
}

/* How many batch sizes the memory noise spans at b: the spread of the idle
 * used memory over the model's bytes per sample there. 0 without noise. */
static uint64_t noise_band(const search *s, uint64_t b)
{
    double per = s->slope + 2 * s->quad * (double)b;
    if (s->idle_max <= s->idle_min || per <= 0)
        return 0;
    double band = (double)(s->idle_max - s->idle_min) / per;
    return band >= 1e18 ? (uint64_t)1e18 : (uint64_t)band;
}

/* Adds what the trial at b that just ran needs to the model: the growth of
 * this process's own memory when the source lists it (invariant 4), else
 * of the device's used memory. */
static void record(search *s, uint64_t b)
{
    uint64_t used;
    if (s->own) {
        int seen = own_now(s, &used);
        if (seen == 1) {
            s->b[s->n] = (double)b;
            s->need[s->n++] = used > s->own_base ? (double)(used - s->own_base) : 0;
            fit(s);
            return;
        }
        s->own = false; /* the job is not visible (a container's pids): device level */
        s->n = 0;
    }
    if (used_now(s, &used, NULL)) {
        s->b[s->n] = (double)b;
        s->need[s->n++] = used > s->base_used ? (double)(used - s->base_used) : 0;
        fit(s);
    }
}

/* Runs one trial; records it. Returns its answer. */
static gw_trial trial(search *s, uint64_t b)
{
    const gw_batch_options *o = s->o;
    gw_trial t = o->try_fn(b, o->user);
    s->r->trials++;
    if (t == GW_TRIAL_OK && s->measure && s->n < MAX_POINTS)
        record(s, b);
    if (o->cleanup)
        o->cleanup(o->user);
    if (t == GW_TRIAL_OK && b > s->ok)
        s->ok = b;
    else if (t == GW_TRIAL_OOM) {
        s->r->ooms++;
        if (!s->oom || b < s->oom)
            s->oom = b;
    }
    assert(search_check(s));
    return t;
}

/* The next batch to try, or 0 when the search is over (see the header's
 * search rules). */
static uint64_t next_trial(search *s)
{
    const gw_batch_options *o = s->o;
    uint64_t top = s->oom ? s->oom - 1 : o->hi; /* largest still possible */
    if (s->ok >= top)
        return 0;
    uint64_t pred = predict(s), width = top - s->ok;
    if (s->oom && width < noise_band(s, s->ok)) /* narrower than the noise: done */
        return 0;
    bool model_before = s->last_model;
    s->last_model = false;
    if (!s->oom) {
        uint64_t band = noise_band(s, s->ok);
        if (pred > s->ok + (s->gallop > band ? s->gallop : band)) { /* jump to the limit */
            s->gallop = 1;
            return pred > top ? top : pred;
        }
        if (pred) { /* the model says the limit is here, and it ran: gallop up, in steps
                       of at least what the noise spans */
            uint64_t step = s->gallop > band ? s->gallop : band > 0 ? band : 1;
            s->gallop = step * 2;
            return width > step ? s->ok + step : top;
        }
        return s->ok > top / 2 ? top : s->ok * 2; /* no model: doubling */
    }
    if (pred > s->ok && pred <= top && !(model_before && width * 2 > s->last_width)) {
        s->last_model = true;
        s->last_width = width;
        return pred;
    }
    if (pred && pred <= s->ok && !s->crept) { /* the model puts the limit just here */
        s->crept = true;
        return s->ok + 1;
    }
    uint64_t band = noise_band(s, top);
    if (pred > top && band && top > s->ok + band && !s->stepped) { /* the neighbour moved */
        s->stepped = true; /* the limit: once, the top less what the noise spans */
        return top - band;
    }
    if (top / 4 > s->ok) /* a bracket over a wide ratio: halve it in log space */
        return (uint64_t)sqrt((double)s->ok * (double)top);
    return s->ok + (width + 1) / 2; /* bisection */
}

static int run_search(search *s, gw_error *err)
{
    const gw_batch_options *o = s->o;
    gw_trial t = trial(s, o->lo);
    if (t == GW_TRIAL_OOM)
        return gw__error_set(err, GW_ERANGE, "batch size %llu (lo) is already out of memory",
                             (unsigned long long)o->lo);
    if (t != GW_TRIAL_OK)
        return gw__error_set(err, GW_EIO, "the trial at batch size %llu failed (not out of "
                             "memory)", (unsigned long long)o->lo);
    uint64_t b;
    while (s->r->trials < o->max_trials && (b = next_trial(s)) != 0) {
        t = trial(s, b);
        if (t != GW_TRIAL_OK && t != GW_TRIAL_OOM)
            return gw__error_set(err, GW_EIO, "the trial at batch size %llu failed (not out "
                                 "of memory)", (unsigned long long)b);
    }
    return GW_OK;
}

/* Checks o, which is this library's copy of the caller's options (the
 * caller's struct is read only up to its size, once, by the caller of
 * this). */
static int check_options(const gw_batch_options *o, gw_error *err)
{
    if (!o->try_fn)
        return gw__error_set(err, GW_EINVAL, "batch: no trial function");
    if (o->lo < 1 || o->hi < o->lo)
        return gw__error_set(err, GW_EINVAL, "batch: range %llu..%llu: need 1 <= lo <= hi",
                             (unsigned long long)o->lo, (unsigned long long)o->hi);
    if (!(o->margin >= 0 && o->margin < 1))
        return gw__error_set(err, GW_EINVAL, "batch: margin %g is not in [0, 1)", o->margin);
    if (o->max_trials < 1)
        return gw__error_set(err, GW_EINVAL, "batch: max_trials is 0");
    if (o->cache_key && !o->cache_key[0])
        return gw__error_set(err, GW_EINVAL, "batch: empty cache key");
    return GW_OK;
}

/* The device's UUID (or "cpu" / "device N") for the cache key. */
static void device_key(const gw_batch_options *o, char *out, size_t cap)
{
    gw__strlcpy(out, "cpu", cap);
    if (!o->monitor || o->device < 0)
        return;
    snprintf(out, cap, "device %d", (int)o->device);
    gw_snapshot *s = gw_monitor_latest(o->monitor);
    if (s && (size_t)o->device < s->n_devices && s->devices[o->device].info.uuid[0])
        gw__strlcpy(out, s->devices[o->device].info.uuid, cap);
    gw_snapshot_release(s);
}

static void finish(const search *s, gw_batch_result *r)
{
    const gw_batch_options *o = s->o;
    double b = floor((double)s->ok * (1.0 - o->margin));
    r->largest_ok = s->ok;
    r->smallest_oom = s->oom;
    r->batch = b < (double)o->lo ? o->lo : (uint64_t)b;
    r->bytes_per_sample = s->slope + 2 * s->quad * (double)s->ok;
    r->measured = !s->measure ? GW_BATCH_MEASURED_NONE
                  : s->own    ? GW_BATCH_MEASURED_PROCESS
                              : GW_BATCH_MEASURED_DEVICE;
    r->fixed_bytes = s->fixed > 0 ? (uint64_t)s->fixed : 0;
}

/* Answers from the cache when it holds an entry the device can still run. */
static bool from_cache(const gw_batch_options *o, const char *path, const char *dev,
                       uint64_t free_now, gw_batch_result *r)
{
    gw__batch_entry e;
    int got = gw__batch_cache_get(path, o->cache_key, dev, o->dtype ? o->dtype : "", &e,
                                  r->note, sizeof r->note);
    if (got != 1)
        return false;
    if (e.largest_ok < o->lo || e.largest_ok > o->hi || (!e.smallest_oom && o->hi > e.hi)) {
        snprintf(r->note, sizeof r->note,
                 "cached answer (largest %llu, searched up to %llu) is not one for %llu..%llu: "
                 "searched again", (unsigned long long)e.largest_ok, (unsigned long long)e.hi,
                 (unsigned long long)o->lo, (unsigned long long)o->hi);
        return false;
    }
    if (free_now && e.free_bytes && free_now < e.free_bytes - e.free_bytes / 100) {
        snprintf(r->note, sizeof r->note,
                 "cached answer %llu found with %llu bytes free, %llu free now: searched again",
                 (unsigned long long)e.batch, (unsigned long long)e.free_bytes,
                 (unsigned long long)free_now);
        return false;
    }
    double b = floor((double)e.largest_ok * (1.0 - o->margin)); /* this call's margin */
    r->batch = b < (double)o->lo ? o->lo : (uint64_t)b;
    r->largest_ok = e.largest_ok;
    r->smallest_oom = e.smallest_oom;
    r->from_cache = true;
    return true;
}

int gw_find_batch_size(const gw_batch_options *opts, gw_batch_result *res, gw_error *err)
{
    if (!opts || opts->size < offsetof(gw_batch_options, try_fn) + sizeof opts->try_fn)
        return gw__error_set(err, GW_EINVAL, "batch: options not set up with "
                                             "gw_batch_options_init");
    if (!res || res->size < offsetof(gw_batch_result, note))
        return gw__error_set(err, GW_EINVAL, "batch: result size not set");
    gw_batch_options o; /* the caller's first opts->size bytes over the defaults */
    gw_batch_options_init(&o);
    memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    o.size = sizeof o;
    int rc = check_options(&o, err);
    if (rc)
        return rc;
    gw_batch_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    search s = {.o = &o, .r = &r, .gallop = 1, .idle_min = UINT64_MAX};
    uint64_t free_now = 0;
    s.measure = o.monitor && o.device >= 0 && used_now(&s, &s.base_used, &free_now);
    s.own = s.measure && own_now(&s, &s.own_base) >= 0;

    char path[4096] = "", dev[128];
    bool cache = o.cache_key && gw__batch_cache_path(&o, path, sizeof path, r.note,
                                                     sizeof r.note);
    device_key(&o, dev, sizeof dev);
    if (cache && !o.refresh && from_cache(&o, path, dev, free_now, &r)) {
        rc = GW_OK;
        goto out;
    }
    rc = run_search(&s, err);
    finish(&s, &r);
    if (rc == GW_OK && cache) {
        gw__batch_entry e = {.batch = r.batch, .largest_ok = r.largest_ok,
                             .smallest_oom = r.smallest_oom, .hi = o.hi, .free_bytes = free_now,
                             .at_s = (int64_t)time(NULL)};
        char note[256] = "";
        if (!gw__batch_cache_put(path, o.cache_key, dev, o.dtype ? o.dtype : "", &e, note,
                                 sizeof note))
            gw__strlcpy(r.note, note, sizeof r.note);
    }
out:
    memcpy(res, &r, res->size < sizeof r ? res->size : sizeof r);
    res->size = res->size < sizeof r ? res->size : (uint32_t)sizeof r;
    return rc;
}
