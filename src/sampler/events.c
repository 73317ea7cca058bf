/* events.c — see events.h. The detector keeps, per device key, the last
 * pressure level, thermal flag and lost flag, and the (device, pid) set of
 * the previous snapshot; each observe() diffs the new snapshot against it. */
#include "sampler/events.h"
#include "core/pressure.h"
#include "sampler/history.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRACKED 64

typedef struct dev_state {
    char key[96];
    int pressure; /* 0 normal, 1 warning, 2 critical */
    bool hot;
    bool lost;
    bool present; /* in the last snapshot */
    uint64_t xid_events, ecc_uncorrected; /* last observed counters */
    int remap; /* 0 none, 1 pending, 2 failure */
} dev_state;

typedef struct proc_key {
    char dev[96];
    uint32_t pid;
    int gpu;
    char name[64];
} proc_key;

struct gw__events {
    pthread_mutex_t lock;
    gw__event_thresholds th;
    gw__event ring[GW__EVENTS_RING];
    uint64_t seq; /* of the newest event */
    uint64_t counts[GW__EV_COUNT];
    dev_state devs[MAX_TRACKED];
    size_t n_devs;
    proc_key *procs;
    size_t n_procs;
    bool seen_first;
};

static const char *const type_names[] = {
#define GW__EV_NAME(id, name) [id] = name,
    GW__EVENT_TYPES(GW__EV_NAME)
#undef GW__EV_NAME
};

const char *gw__event_type_name(gw__event_type t)
{
    return t < GW__EV_COUNT ? type_names[t] : "unknown";
}

const char *gw__event_severity_name(gw__event_severity s)
{
    switch (s) {
    case GW__SEV_INFO: return "info";
    case GW__SEV_WARNING: return "warning";
    case GW__SEV_CRITICAL: return "critical";
    }
    return "unknown";
}

void gw__event_thresholds_default(gw__event_thresholds *t)
{
    t->memory_warn = 0.90;
    t->memory_critical = 0.97;
    t->memory_hysteresis = 0.05;
    t->thermal_hysteresis_celsius = 2.0;
}

int gw__events_create(gw__events **out, const gw__event_thresholds *t, gw_error *err)
{
    *out = NULL;
    gw__events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return gw__error_set(err, GW_ENOMEM, "events: out of memory");
    pthread_mutex_init(&ev->lock, NULL);
    if (t)
        ev->th = *t;
    else
        gw__event_thresholds_default(&ev->th);
    *out = ev;
    return GW_OK;
}

void gw__events_free(gw__events *ev)
{
    if (!ev)
        return;
    free(ev->procs);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

void gw__events_set_thresholds(gw__events *ev, const gw__event_thresholds *t)
{
    pthread_mutex_lock(&ev->lock);
    ev->th = *t;
    pthread_mutex_unlock(&ev->lock);
}

/* Appends an event; the caller holds the lock. Returns it for the caller to
 * fill gpu/uuid/pid. */
static gw__event *push(gw__events *ev, gw__event_type type, gw__event_severity sev, double value,
                       int64_t t)
{
    gw__event *e = &ev->ring[ev->seq % GW__EVENTS_RING];
    memset(e, 0, sizeof *e);
    e->seq = ++ev->seq;
    e->time_ns = t;
    e->type = type;
    e->severity = sev;
    e->gpu = -1;
    e->value = value;
    ev->counts[type]++;
    return e;
}

static void about(gw__event *e, const gw_device *d)
{
    e->gpu = (int)d->info.index;
    gw__strlcpy(e->uuid, d->info.uuid, sizeof e->uuid);
}

uint64_t gw__events_add(gw__events *ev, gw__event_type type, gw__event_severity sev, double value,
                        const char *message)
{
    pthread_mutex_lock(&ev->lock);
    gw__event *e = push(ev, type, sev, value, gw__now_real_ns());
    gw__strlcpy(e->message, message, sizeof e->message);
    uint64_t seq = e->seq;
    pthread_mutex_unlock(&ev->lock);
    return seq;
}

static dev_state *dev_find(gw__events *ev, const char *key, bool create)
{
    for (size_t i = 0; i < ev->n_devs; i++)
        if (strcmp(ev->devs[i].key, key) == 0)
            return &ev->devs[i];
    if (!create || ev->n_devs >= MAX_TRACKED)
        return NULL;
    dev_state *d = &ev->devs[ev->n_devs++];
    memset(d, 0, sizeof *d);
    gw__strlcpy(d->key, key, sizeof d->key);
    return d;
}

static const char *label(const gw_device *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "GPU %u (%s)", d->info.index,
             d->info.uuid[0] ? d->info.uuid : d->info.name[0] ? d->info.name : "no uuid");
    return buf;
}

static size_t observe_pressure(gw__events *ev, const gw_device *d, dev_state *st, int64_t t)
{
    const gw_sample *x = &d->sample;
    if (d->state != GW_DEVICE_OK || !gw_sample_has(x, GW_METRIC_MEM_USED) ||
        !gw_sample_has(x, GW_METRIC_MEM_TOTAL) || x->mem_total == 0)
        return 0;
    double r = (double)x->mem_used / (double)x->mem_total;
    const gw__event_thresholds *th = &ev->th;
    int level = gw__pressure_next(st->pressure, r, th->memory_warn, th->memory_critical,
                                  th->memory_hysteresis);
    if (level == st->pressure)
        return 0;
    st->pressure = level;
    char name[160];
    gw__event *e;
    if (level == 2) {
        e = push(ev, GW__EV_MEMORY_CRITICAL, GW__SEV_CRITICAL, r, t);
        snprintf(e->message, sizeof e->message, "%s memory %.1f%% used (critical at %.0f%%)",
                 label(d, name, sizeof name), r * 100, th->memory_critical * 100);
    } else if (level == 1) {
        e = push(ev, GW__EV_MEMORY_WARNING, GW__SEV_WARNING, r, t);
        snprintf(e->message, sizeof e->message, "%s memory %.1f%% used (warning at %.0f%%)",
                 label(d, name, sizeof name), r * 100, th->memory_warn * 100);
    } else {
        e = push(ev, GW__EV_MEMORY_NORMAL, GW__SEV_INFO, r, t);
        snprintf(e->message, sizeof e->message, "%s memory back to %.1f%% used",
                 label(d, name, sizeof name), r * 100);
    }
    about(e, d);
    return 1;
}

static size_t observe_thermal(gw__events *ev, const gw_device *d, dev_state *st, int64_t t)
{
    if (d->state != GW_DEVICE_OK || !gw_sample_has(&d->sample, GW_METRIC_TEMP) ||
        !gw_info_has(&d->info, GW_INFO_TEMP_SLOWDOWN))
        return 0;
    double c = d->sample.temp_mc / 1000.0, slow = d->info.temp_slowdown_mc / 1000.0;
    bool hot = c >= slow || (st->hot && c > slow - ev->th.thermal_hysteresis_celsius);
    if (hot == st->hot)
        return 0;
    st->hot = hot;
    char name[160];
    gw__event *e = push(ev, hot ? GW__EV_THERMAL_SLOWDOWN : GW__EV_THERMAL_NORMAL,
                        hot ? GW__SEV_WARNING : GW__SEV_INFO, c, t);
    snprintf(e->message, sizeof e->message, "%s temperature %.0f C %s slowdown threshold %.0f C",
             label(d, name, sizeof name), c, hot ? "at or over" : "back under", slow);
    about(e, d);
    return 1;
}

/* New critical Xids, new uncorrected ECC errors, a row remap that became
 * pending or failed: one event each. */
static size_t observe_health(gw__events *ev, const gw_device *d, dev_state *st, int64_t t)
{
    const gw_sample *x = &d->sample;
    if (d->state == GW_DEVICE_LOST)
        return 0;
    size_t n = 0;
    char name[160];
    if (gw_sample_has(x, GW_METRIC_XID)) {
        if (x->xid_events > st->xid_events) {
            /* NVML reports every Xid as "critical"; those an application
             * causes (13 graphics engine exception, 31 memory page fault,
             * 43 stopped processing, 45 preemptive cleanup) do not mean the
             * GPU is failing */
            bool app = x->xid_last == 13 || x->xid_last == 31 || x->xid_last == 43 ||
                       x->xid_last == 45;
            gw__event *e = push(ev, GW__EV_XID_ERROR, app ? GW__SEV_WARNING : GW__SEV_CRITICAL,
                                (double)x->xid_last, t);
            snprintf(e->message, sizeof e->message, "%s critical Xid %u (%llu new)",
                     label(d, name, sizeof name), x->xid_last,
                     (unsigned long long)(x->xid_events - st->xid_events));
            about(e, d);
            n++;
        }
        st->xid_events = x->xid_events;
    }
    if (gw_sample_has(x, GW_METRIC_ECC_ERRORS)) {
        if (x->ecc_uncorrected > st->ecc_uncorrected) {
            gw__event *e = push(ev, GW__EV_ECC_UNCORRECTED, GW__SEV_CRITICAL,
                                (double)x->ecc_uncorrected, t);
            snprintf(e->message, sizeof e->message,
                     "%s %llu new uncorrected ECC errors (%llu since the driver loaded)",
                     label(d, name, sizeof name),
                     (unsigned long long)(x->ecc_uncorrected - st->ecc_uncorrected),
                     (unsigned long long)x->ecc_uncorrected);
            about(e, d);
            n++;
        }
        st->ecc_uncorrected = x->ecc_uncorrected;
    }
    if (gw_sample_has(x, GW_METRIC_ROW_REMAP)) {
        int remap = x->remap_failure ? 2 : x->remap_pending ? 1 : 0;
        if (remap > st->remap) {
            gw__event *e = push(ev, GW__EV_ROW_REMAP, remap == 2 ? GW__SEV_CRITICAL : GW__SEV_WARNING,
                                (double)(x->remap_correctable + x->remap_uncorrectable), t);
            snprintf(e->message, sizeof e->message, "%s %s", label(d, name, sizeof name),
                     remap == 2 ? "row remap failed: the GPU needs service"
                                : "row remap pending: reset the GPU to apply it");
            about(e, d);
            n++;
        }
        st->remap = remap;
    }
    return n;
}

static int proc_cmp(const void *a, const void *b)
{
    const proc_key *x = a, *y = b;
    int c = strcmp(x->dev, y->dev);
    return c ? c : (x->pid > y->pid) - (x->pid < y->pid);
}

static size_t observe_processes(gw__events *ev, const gw_snapshot *s, int64_t t, bool announce)
{
    proc_key *cur = s->n_processes ? calloc(s->n_processes, sizeof *cur) : NULL;
    if (s->n_processes && !cur)
        return 0;
    for (size_t i = 0; i < s->n_processes; i++) {
        const gw_process *p = &s->processes[i];
        if (p->device_index < s->n_devices)
            gw__history_key(&s->devices[p->device_index], cur[i].dev, sizeof cur[i].dev);
        cur[i].pid = p->pid;
        cur[i].gpu = (int)p->device_index;
        if (gw_process_has(p, GW_PROC_NAME))
            gw__strlcpy(cur[i].name, p->name, sizeof cur[i].name);
    }
    if (cur)
        qsort(cur, s->n_processes, sizeof *cur, proc_cmp);
    size_t n = 0;
    if (announce) {
        size_t i = 0, j = 0;
        while (i < ev->n_procs || j < s->n_processes) {
            int c = i >= ev->n_procs       ? 1
                    : j >= s->n_processes ? -1
                                          : proc_cmp(&ev->procs[i], &cur[j]);
            if (c == 0) {
                i++, j++;
                continue;
            }
            const proc_key *k = c < 0 ? &ev->procs[i++] : &cur[j++];
            gw__event *e = push(ev, c < 0 ? GW__EV_PROCESS_EXITED : GW__EV_PROCESS_STARTED,
                                GW__SEV_INFO, NAN, t);
            e->gpu = k->gpu;
            gw__strlcpy(e->uuid, strncmp(k->dev, "index:", 6) ? k->dev : "", sizeof e->uuid);
            e->pid = k->pid;
            snprintf(e->message, sizeof e->message, "process %u%s%s%s %s GPU %d", k->pid,
                     k->name[0] ? " (" : "", k->name, k->name[0] ? ")" : "",
                     c < 0 ? "no longer uses" : "started using", k->gpu);
            n++;
        }
    }
    free(ev->procs);
    ev->procs = cur;
    ev->n_procs = s->n_processes;
    return n;
}

size_t gw__events_observe(gw__events *ev, const gw_snapshot *s)
{
    pthread_mutex_lock(&ev->lock);
    int64_t t = s->taken_ns;
    size_t n = 0;
    for (size_t i = 0; i < ev->n_devs; i++)
        ev->devs[i].present = false;
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        char key[96];
        gw__history_key(d, key, sizeof key);
        dev_state *st = dev_find(ev, key, true);
        if (!st)
            continue;
        bool was_present_lost = st->lost;
        st->present = true;
        bool lost = d->state == GW_DEVICE_LOST;
        char name[160];
        if (lost && !was_present_lost) {
            gw__event *e = push(ev, GW__EV_GPU_LOST, GW__SEV_CRITICAL, NAN, t);
            snprintf(e->message, sizeof e->message, "%s lost%s%s", label(d, name, sizeof name),
                     d->state_reason[0] ? ": " : "", d->state_reason);
            about(e, d);
            n++;
        } else if (!lost && was_present_lost) {
            gw__event *e = push(ev, GW__EV_GPU_RECOVERED, GW__SEV_INFO, NAN, t);
            snprintf(e->message, sizeof e->message, "%s recovered", label(d, name, sizeof name));
            about(e, d);
            n++;
        }
        st->lost = lost;
        n += observe_pressure(ev, d, st, t);
        n += observe_thermal(ev, d, st, t);
        n += observe_health(ev, d, st, t);
    }
    /* A device that vanished from its source is lost too. */
    for (size_t i = 0; i < ev->n_devs; i++) {
        dev_state *st = &ev->devs[i];
        if (st->present || st->lost)
            continue;
        st->lost = true;
        gw__event *e = push(ev, GW__EV_GPU_LOST, GW__SEV_CRITICAL, NAN, t);
        snprintf(e->message, sizeof e->message, "GPU %s is no longer reported by any source", st->key);
        gw__strlcpy(e->uuid, strncmp(st->key, "index:", 6) ? st->key : "", sizeof e->uuid);
        n++;
    }
    n += observe_processes(ev, s, t, ev->seen_first);
    ev->seen_first = true;
    pthread_mutex_unlock(&ev->lock);
    return n;
}

size_t gw__events_since(gw__events *ev, uint64_t after_seq, gw__event *out, size_t max)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t oldest = ev->seq > GW__EVENTS_RING ? ev->seq - GW__EVENTS_RING + 1 : 1;
    uint64_t from = after_seq + 1 > oldest ? after_seq + 1 : oldest;
    size_t n = 0;
    for (uint64_t q = from; q <= ev->seq && n < max; q++)
        out[n++] = ev->ring[(q - 1) % GW__EVENTS_RING];
    pthread_mutex_unlock(&ev->lock);
    return n;
}

uint64_t gw__events_last_seq(gw__events *ev)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t s = ev->seq;
    pthread_mutex_unlock(&ev->lock);
    return s;
}

uint64_t gw__events_count(gw__events *ev, gw__event_type t)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t c = t < GW__EV_COUNT ? ev->counts[t] : 0;
    pthread_mutex_unlock(&ev->lock);
    return c;
}
