/* unit_test.c — unit tests of the serve modules: history rings, the event
 * detector (hysteresis, lost/recovered, processes), a hung source's stale
 * part, parts assembly, the Prometheus renderer and its OpenMetrics rewrite,
 * the Accept-Encoding / Accept parsers and gzip, GPU id parsing, the config
 * parser, a sampler lifecycle on the host source, and a sampler with a hung
 * source (fake NVML) beside a healthy one (amdgpu fixture). Snapshots are built here from values the
 * test chooses, so every expectation is independent of the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backends/monitor.h"
#include "core/snapshot_build.h"
#include "http/api.h"
#include "http/assets.h"
#include "http/config.h"
#include "http/negotiate.h"
#include "http/prom.h"
#include "sampler/log.h"

#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define GIB (1024ull * 1024 * 1024)

typedef struct tdev {
    const char *uuid, *name;
    gw_device_state state;
    uint64_t total, used; /* used == UINT64_MAX: memory not valid */
    int temp_c, slowdown_c;
    bool health; /* the health counters below are valid */
    uint32_t xid_last;
    uint64_t xid_events, ecc_uncorrected;
    bool remap_pending, remap_failure;
} tdev;

typedef struct tproc {
    uint32_t dev, pid;
} tproc;

static gw_snapshot *snap(int64_t t_ns, const tdev *d, size_t nd, const tproc *p, size_t np)
{
    gw__collect c;
    gw__collect_init(&c);
    for (size_t i = 0; i < nd; i++) {
        gw_device *x = gw__collect_add_device(&c);
        assert_non_null(x);
        gw__strlcpy(x->info.uuid, d[i].uuid, sizeof x->info.uuid);
        gw__strlcpy(x->info.name, d[i].name ? d[i].name : "GPU", sizeof x->info.name);
        gw__strlcpy(x->info.source, "nvml", sizeof x->info.source);
        x->info.vendor = GW_VENDOR_NVIDIA;
        x->state = d[i].state;
        x->sampled_at_ns = t_ns;
        if (d[i].used != UINT64_MAX) {
            x->sample.mem_total = d[i].total;
            x->sample.mem_used = d[i].used;
            x->sample.mem_free = d[i].total - d[i].used;
            x->sample.valid |= 1u << GW_METRIC_MEM_TOTAL | 1u << GW_METRIC_MEM_USED |
                               1u << GW_METRIC_MEM_FREE;
        }
        if (d[i].temp_c) {
            x->sample.temp_mc = d[i].temp_c * 1000;
            x->sample.valid |= 1u << GW_METRIC_TEMP;
        }
        if (d[i].health) {
            x->sample.xid_last = d[i].xid_last;
            x->sample.xid_events = d[i].xid_events;
            x->sample.ecc_uncorrected = d[i].ecc_uncorrected;
            x->sample.remap_pending = d[i].remap_pending;
            x->sample.remap_failure = d[i].remap_failure;
            x->sample.valid |= 1ull << GW_METRIC_XID | 1ull << GW_METRIC_ECC_ERRORS |
                               1ull << GW_METRIC_ROW_REMAP;
        }
        if (d[i].slowdown_c) {
            x->info.temp_slowdown_mc = d[i].slowdown_c * 1000;
            x->info.valid |= 1u << GW_INFO_TEMP_SLOWDOWN;
        }
    }
    for (size_t i = 0; i < np; i++) {
        gw_process *x = gw__collect_add_process(&c);
        assert_non_null(x);
        x->device_index = p[i].dev;
        x->pid = p[i].pid;
    }
    gw_source_status *st = gw__collect_add_source(&c);
    gw__strlcpy(st->name, "nvml", sizeof st->name);
    st->device_count = (uint32_t)nd;
    for (size_t i = 0; i < nd; i++)
        c.devices[i].info.index = (uint32_t)i;
    gw_snapshot *s = gw__collect_finish(&c);
    assert_non_null(s);
    s->taken_ns = t_ns;
    return s;
}

/* ---------------------------------------------------------------- history */

static void test_history_ring(void **state)
{
    (void)state;
    gw__history *h;
    assert_int_equal(gw__history_create(&h, 3, NULL), GW_OK);
    for (int i = 1; i <= 5; i++) {
        tdev d = {"GPU-a", NULL, GW_DEVICE_OK, 16 * GIB, (uint64_t)i * GIB, 0, 0};
        gw_snapshot *s = snap((int64_t)i * 1000000000, &d, 1, NULL, 0);
        assert_int_equal(gw__history_record(h, s), GW_OK);
        assert_int_equal(gw__history_record(h, s), GW_OK); /* same sample again: ignored */
        gw_snapshot_release(s);
    }
    gw__history_point *p;
    size_t n;
    assert_int_equal(gw__history_query(h, "GPU-a", GW_METRIC_MEM_USED, INT64_MIN, INT64_MAX, 0, &p,
                                       &n, NULL),
                     GW_OK);
    assert_int_equal(n, 3); /* capacity */
    for (size_t i = 0; i < 3; i++) {
        assert_true(p[i].valid);
        assert_true(p[i].t == (double)(i + 3));
        assert_true(p[i].v == (double)((i + 3) * GIB));
    }
    free(p);
    /* since: only the last two; step of 2 s: buckets [2,4) and [4,6) */
    assert_int_equal(gw__history_query(h, "GPU-a", GW_METRIC_MEM_USED, 4000000000, INT64_MAX, 0, &p,
                                       &n, NULL),
                     GW_OK);
    assert_int_equal(n, 2);
    free(p);
    assert_int_equal(gw__history_query(h, "GPU-a", GW_METRIC_MEM_USED, INT64_MIN, INT64_MAX,
                                       2000000000, &p, &n, NULL),
                     GW_OK);
    assert_int_equal(n, 2);
    assert_true(p[0].t == 2.0 && p[0].v == 3.0 * GIB);           /* only t=3 in [2,4) */
    assert_true(p[1].t == 4.0 && p[1].v == (4.0 + 5.0) / 2 * GIB); /* mean of 4 and 5 */
    free(p);
    /* invalid values are null, never 0 */
    assert_int_equal(gw__history_query(h, "GPU-a", GW_METRIC_TEMP, INT64_MIN, INT64_MAX, 0, &p, &n,
                                       NULL),
                     GW_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_false(p[i].valid);
    free(p);
    assert_int_equal(gw__history_query(h, "GPU-b", GW_METRIC_MEM_USED, INT64_MIN, INT64_MAX, 0, &p,
                                       &n, NULL),
                     GW_ENOENT);
    assert_int_equal(gw__history_query(h, "GPU-a", GW_METRIC_PSTATE, INT64_MIN, INT64_MAX, 0, &p,
                                       &n, NULL),
                     GW_EINVAL);
    gw__history_free(h);
    assert_int_equal(gw__history_create(&h, 0, NULL), GW_EINVAL);
}

/* ----------------------------------------------------------------- events */

static gw__event_type observe_one(gw__events *ev, int64_t t, const tdev *d, size_t nd,
                                  const tproc *p, size_t np, size_t *count)
{
    uint64_t before = gw__events_last_seq(ev);
    gw_snapshot *s = snap(t, d, nd, p, np);
    *count = gw__events_observe(ev, s);
    gw_snapshot_release(s);
    gw__event e[8];
    size_t n = gw__events_since(ev, before, e, 8);
    assert_int_equal(n, *count);
    return n ? e[n - 1].type : GW__EV_COUNT;
}

static void test_events_pressure_hysteresis(void **state)
{
    (void)state;
    gw__event_thresholds th;
    gw__event_thresholds_default(&th); /* warn 0.90, critical 0.97, hysteresis 0.05 */
    gw__events *ev;
    assert_int_equal(gw__events_create(&ev, &th, NULL), GW_OK);
    static const struct {
        unsigned permille;
        gw__event_type want; /* GW__EV_COUNT: none */
    } steps[] = {
        {500, GW__EV_COUNT},
        {910, GW__EV_MEMORY_WARNING},
        {920, GW__EV_COUNT},
        {880, GW__EV_COUNT},          /* above 0.85: stays warning */
        {840, GW__EV_MEMORY_NORMAL},
        {980, GW__EV_MEMORY_CRITICAL},
        {950, GW__EV_COUNT},          /* above 0.92: stays critical */
        {910, GW__EV_MEMORY_WARNING}, /* under 0.92: back to warning */
        {990, GW__EV_MEMORY_CRITICAL},
        {500, GW__EV_MEMORY_NORMAL},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(steps); i++) {
        tdev d = {"GPU-a", NULL, GW_DEVICE_OK, 1000000, steps[i].permille * 1000ull, 0, 0};
        size_t n;
        gw__event_type t = observe_one(ev, (int64_t)(i + 1) * 1000000000, &d, 1, NULL, 0, &n);
        if (steps[i].want == GW__EV_COUNT) {
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, 1);
            assert_int_equal(t, steps[i].want);
        }
    }
    assert_int_equal(gw__events_count(ev, GW__EV_MEMORY_WARNING), 2);
    assert_int_equal(gw__events_count(ev, GW__EV_MEMORY_CRITICAL), 2);
    assert_int_equal(gw__events_count(ev, GW__EV_MEMORY_NORMAL), 2);
    gw__events_free(ev);
}

static void test_events_lost_thermal_processes(void **state)
{
    (void)state;
    gw__events *ev;
    assert_int_equal(gw__events_create(&ev, NULL, NULL), GW_OK);
    tdev two[2] = {{"GPU-a", NULL, GW_DEVICE_OK, 100, 10, 80, 90},
                   {"GPU-b", NULL, GW_DEVICE_OK, 100, 10, 40, 90}};
    tproc p1[] = {{0, 100}, {1, 200}};
    size_t n;
    observe_one(ev, 1, two, 2, p1, 2, &n);
    assert_int_equal(n, 0); /* processes already running are not announced */
    tproc p2[] = {{0, 100}, {1, 300}};
    observe_one(ev, 2, two, 2, p2, 2, &n);
    assert_int_equal(n, 2);
    assert_int_equal(gw__events_count(ev, GW__EV_PROCESS_STARTED), 1);
    assert_int_equal(gw__events_count(ev, GW__EV_PROCESS_EXITED), 1);
    two[0].temp_c = 90; /* at slowdown */
    assert_int_equal(observe_one(ev, 3, two, 2, p2, 2, &n), GW__EV_THERMAL_SLOWDOWN);
    two[0].temp_c = 89; /* within 2 C hysteresis: still hot */
    observe_one(ev, 4, two, 2, p2, 2, &n);
    assert_int_equal(n, 0);
    two[0].temp_c = 87;
    assert_int_equal(observe_one(ev, 5, two, 2, p2, 2, &n), GW__EV_THERMAL_NORMAL);
    assert_int_equal(observe_one(ev, 6, two, 2, p1, 1, &n), GW__EV_PROCESS_EXITED);
    two[1].state = GW_DEVICE_LOST;
    two[1].used = UINT64_MAX;
    assert_int_equal(observe_one(ev, 7, two, 2, p1, 1, &n), GW__EV_GPU_LOST);
    observe_one(ev, 8, two, 2, p1, 1, &n);
    assert_int_equal(n, 0); /* still lost: no repeat */
    two[1].state = GW_DEVICE_OK;
    two[1].used = 10;
    assert_int_equal(observe_one(ev, 9, two, 2, p1, 1, &n), GW__EV_GPU_RECOVERED);
    /* the device vanishes from the source: lost too */
    assert_int_equal(observe_one(ev, 10, two, 1, p1, 1, &n), GW__EV_GPU_LOST);
    gw__event e;
    assert_int_equal(gw__events_since(ev, gw__events_last_seq(ev) - 1, &e, 1), 1);
    assert_string_equal(e.uuid, "GPU-b");
    assert_int_equal(gw__events_count(ev, GW__EV_GPU_LOST), 2);
    gw__events_free(ev);
}

static void test_events_health(void **state)
{
    (void)state;
    gw__events *ev;
    assert_int_equal(gw__events_create(&ev, NULL, NULL), GW_OK);
    tdev d = {"GPU-a", NULL, GW_DEVICE_OK, 100, 10, 0, 0, true, 0, 0, 0, false, false};
    size_t n;
    observe_one(ev, 1, &d, 1, NULL, 0, &n);
    assert_int_equal(n, 0); /* healthy */
    d.xid_last = 79;
    d.xid_events = 1;
    assert_int_equal(observe_one(ev, 2, &d, 1, NULL, 0, &n), GW__EV_XID_ERROR);
    gw__event e;
    assert_int_equal(gw__events_since(ev, gw__events_last_seq(ev) - 1, &e, 1), 1);
    assert_int_equal(e.severity, GW__SEV_CRITICAL);
    assert_true(e.value == 79);
    assert_non_null(strstr(e.message, "Xid 79"));
    d.xid_last = 31; /* a page fault an application caused: a warning */
    d.xid_events = 2;
    assert_int_equal(observe_one(ev, 2, &d, 1, NULL, 0, &n), GW__EV_XID_ERROR);
    assert_int_equal(gw__events_since(ev, gw__events_last_seq(ev) - 1, &e, 1), 1);
    assert_int_equal(e.severity, GW__SEV_WARNING);
    observe_one(ev, 3, &d, 1, NULL, 0, &n);
    assert_int_equal(n, 0); /* the same count: no repeat */
    d.ecc_uncorrected = 2;
    assert_int_equal(observe_one(ev, 4, &d, 1, NULL, 0, &n), GW__EV_ECC_UNCORRECTED);
    d.remap_pending = true;
    assert_int_equal(observe_one(ev, 5, &d, 1, NULL, 0, &n), GW__EV_ROW_REMAP);
    assert_int_equal(gw__events_since(ev, gw__events_last_seq(ev) - 1, &e, 1), 1);
    assert_int_equal(e.severity, GW__SEV_WARNING);
    d.remap_failure = true;
    assert_int_equal(observe_one(ev, 6, &d, 1, NULL, 0, &n), GW__EV_ROW_REMAP);
    assert_int_equal(gw__events_since(ev, gw__events_last_seq(ev) - 1, &e, 1), 1);
    assert_int_equal(e.severity, GW__SEV_CRITICAL);
    observe_one(ev, 7, &d, 1, NULL, 0, &n);
    assert_int_equal(n, 0);
    /* the driver reloads: volatile counters restart lower, no event */
    d.ecc_uncorrected = 0;
    observe_one(ev, 8, &d, 1, NULL, 0, &n);
    assert_int_equal(n, 0);
    d.ecc_uncorrected = 1;
    assert_int_equal(observe_one(ev, 9, &d, 1, NULL, 0, &n), GW__EV_ECC_UNCORRECTED);
    assert_int_equal(gw__events_count(ev, GW__EV_ECC_UNCORRECTED), 2);
    gw__events_free(ev);
    /* a first snapshot that already has them announces them */
    assert_int_equal(gw__events_create(&ev, NULL, NULL), GW_OK);
    observe_one(ev, 1, &d, 1, NULL, 0, &n);
    assert_int_equal(n, 3);
    gw__events_free(ev);
}

static void test_events_ring_wraps(void **state)
{
    (void)state;
    gw__events *ev;
    assert_int_equal(gw__events_create(&ev, NULL, NULL), GW_OK);
    for (int i = 0; i < GW__EVENTS_RING + 10; i++)
        gw__events_add(ev, GW__EV_SAMPLING_STALLED, GW__SEV_WARNING, i, "x");
    gw__event *buf = calloc(GW__EVENTS_RING, sizeof *buf);
    size_t n = gw__events_since(ev, 0, buf, GW__EVENTS_RING);
    assert_int_equal(n, GW__EVENTS_RING);
    assert_int_equal(buf[0].seq, 11);
    assert_int_equal(buf[n - 1].seq, GW__EVENTS_RING + 10);
    assert_true(buf[n - 1].value == GW__EVENTS_RING + 9);
    free(buf);
    gw__events_free(ev);
}

/* ------------------------------------------------- a hung source's copy */

/* The part a hung source last returned: devices (one lost, one without a
 * sample time), a process, its status with versions. */
static void last_part(gw__collect *c)
{
    gw__collect_init(c);
    gw_device *d = gw__collect_add_device(c);
    gw__strlcpy(d->info.uuid, "GPU-a", sizeof d->info.uuid);
    d->sampled_at_ns = 5000000000;
    d->sample.mem_used = 10;
    d = gw__collect_add_device(c);
    gw__strlcpy(d->info.uuid, "GPU-b", sizeof d->info.uuid);
    d->state = GW_DEVICE_LOST;
    d = gw__collect_add_device(c);
    gw__strlcpy(d->info.uuid, "GPU-c", sizeof d->info.uuid);
    gw_process *p = gw__collect_add_process(c);
    p->pid = 42;
    p->device_index = 2;
    gw_source_status *st = gw__collect_add_source(c);
    gw__strlcpy(st->name, "nvml", sizeof st->name);
    gw__strlcpy(st->driver_version, "550.1", sizeof st->driver_version);
    st->device_count = 3;
}

static void test_part_stale_copy(void **state)
{
    (void)state;
    gw__collect last, c;
    last_part(&last);
    gw__collect_init(&c);
    assert_int_equal(gw__part_stale_copy(&last, "nvml", 3.5, 2000, 4000000000, true, &c), GW_OK);
    assert_int_equal(c.n_devices, 3);
    assert_int_equal(c.devices[0].state, GW_DEVICE_STALE);
    assert_int_equal(c.devices[0].sampled_at_ns, 5000000000); /* its own time kept */
    assert_int_equal(c.devices[0].sample.mem_used, 10);
    assert_non_null(strstr(c.devices[0].state_reason,
                           "source 'nvml' has not answered for 3.5 s (deadline 2000 ms)"));
    assert_int_equal(c.devices[1].state, GW_DEVICE_LOST); /* lost stays lost */
    assert_int_equal(c.devices[2].state, GW_DEVICE_STALE);
    assert_int_equal(c.devices[2].sampled_at_ns, 4000000000); /* the read's time */
    assert_int_equal(c.n_processes, 1);
    assert_int_equal(c.processes[0].pid, 42);
    assert_int_equal(c.processes[0].device_index, 2);
    assert_int_equal(c.n_sources, 1);
    assert_int_equal(c.sources[0].state, GW_SOURCE_FAILED);
    assert_int_equal(c.sources[0].error, GW_ETIMEDOUT);
    assert_int_equal(c.sources[0].device_count, 3);
    assert_string_equal(c.sources[0].driver_version, "550.1");
    assert_non_null(strstr(c.sources[0].message, "nvml: has not answered for 3.5 s"));
    assert_int_equal(last.devices[0].state, GW_DEVICE_OK); /* original untouched */
    /* without processes (a process monitor carries them), reusing out */
    assert_int_equal(gw__part_stale_copy(&last, "nvml", 4.0, 2000, 4000000000, false, &c), GW_OK);
    assert_int_equal(c.n_devices, 3);
    assert_int_equal(c.n_processes, 0);
    /* a source hung before it ever answered: no devices, status says why */
    assert_int_equal(gw__part_stale_copy(NULL, "amdgpu", 1.0, 500, 0, true, &c), GW_OK);
    assert_int_equal(c.n_devices, 0);
    assert_int_equal(c.n_sources, 1);
    assert_string_equal(c.sources[0].name, "amdgpu");
    assert_int_equal(c.sources[0].state, GW_SOURCE_FAILED);
    assert_int_equal(c.sources[0].error, GW_ETIMEDOUT);
    gw__collect_release(&c);
    gw__collect_release(&last);
}

/* Parts in source order make one snapshot: indexes 0..n-1 across parts,
 * processes re-pointed, one status per part, the host part's figures. */
static void test_assemble_parts(void **state)
{
    (void)state;
    gw__collect nv, amd, host;
    last_part(&nv);
    gw__collect_init(&amd);
    gw_device *d = gw__collect_add_device(&amd);
    gw__strlcpy(d->info.uuid, "GPU-amd", sizeof d->info.uuid);
    gw_process *p = gw__collect_add_process(&amd);
    p->pid = 7;
    p->device_index = 0;
    gw__strlcpy(gw__collect_add_source(&amd)->name, "amdgpu", 16);
    gw__collect_init(&host);
    gw__strlcpy(gw__collect_add_source(&host)->name, "host", 16);
    gw__collect_host(&host)->cpu_count = 12;
    gw__collect_host(&host)->valid = 1;
    const gw__collect *parts[] = {&nv, &amd, &host};
    gw_snapshot *s = gw__snapshot_assemble(parts, 3, 9000000000, 5);
    assert_non_null(s);
    assert_int_equal(s->taken_ns, 9000000000);
    assert_int_equal(s->duration_ns, 5);
    assert_false(s->cpu_only);
    assert_int_equal(s->n_devices, 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(s->devices[i].info.index, i);
    assert_string_equal(s->devices[3].info.uuid, "GPU-amd");
    assert_int_equal(s->n_processes, 2);
    assert_int_equal(s->processes[0].pid, 42);
    assert_int_equal(s->processes[0].device_index, 2);
    assert_int_equal(s->processes[1].pid, 7);
    assert_int_equal(s->processes[1].device_index, 3);
    assert_int_equal(s->n_sources, 3);
    assert_string_equal(s->sources[1].name, "amdgpu");
    assert_int_equal(s->host.cpu_count, 12);
    gw_snapshot_release(s);
    /* no device anywhere: CPU-only, with a reason */
    const gw__collect *only_host[] = {&host};
    s = gw__snapshot_assemble(only_host, 1, 1, 1);
    assert_non_null(s);
    assert_true(s->cpu_only);
    assert_true(s->cpu_only_reason[0] != '\0');
    gw_snapshot_release(s);
    gw__collect_release(&nv);
    gw__collect_release(&amd);
    gw__collect_release(&host);
}

/* ------------------------------------------------ process carry-forward */

static void test_with_processes(void **state)
{
    (void)state;
    /* the full round saw GPUs a, b, c with processes 10 (a), 20 (b), 30 (c) */
    tdev full_d[3] = {{"GPU-a", NULL, GW_DEVICE_OK, 100, 1, 0, 0},
                      {"GPU-b", NULL, GW_DEVICE_OK, 100, 1, 0, 0},
                      {"GPU-c", NULL, GW_DEVICE_OK, 100, 1, 0, 0}};
    tproc full_p[] = {{0, 10}, {1, 20}, {2, 30}};
    gw_snapshot *full = snap(1, full_d, 3, full_p, 3);
    /* the cheap round lists c, a (reordered), b is gone, and a is fine */
    tdev cheap_d[2] = {{"GPU-c", NULL, GW_DEVICE_OK, 100, 7, 0, 0},
                       {"GPU-a", NULL, GW_DEVICE_OK, 100, 8, 0, 0}};
    gw_snapshot *cheap = snap(2, cheap_d, 2, NULL, 0);
    gw_snapshot *m = gw__snapshot_with_processes(cheap, full, NULL);
    assert_non_null(m);
    assert_int_equal(m->taken_ns, 2);
    assert_int_equal(m->n_devices, 2);
    assert_int_equal(m->devices[0].sample.mem_used, 7); /* cheap's figures */
    assert_int_equal(m->n_processes, 2);                /* b's process dropped */
    /* sorted by device index: pid 30 on c (now index 0), pid 10 on a (1) */
    assert_int_equal(m->processes[0].pid, 30);
    assert_int_equal(m->processes[0].device_index, 0);
    assert_int_equal(m->processes[1].pid, 10);
    assert_int_equal(m->processes[1].device_index, 1);
    gw_snapshot_release(m);
    /* a lost device keeps no processes */
    cheap_d[1].state = GW_DEVICE_LOST;
    gw_snapshot *cheap2 = snap(3, cheap_d, 2, NULL, 0);
    m = gw__snapshot_with_processes(cheap2, full, NULL);
    assert_int_equal(m->n_processes, 1);
    assert_int_equal(m->processes[0].pid, 30);
    gw_snapshot_release(m);
    /* keep_own: c (0) brings its own list this round (pid 99), a (1) takes
     * the full round's (pid 10) */
    tproc own_p[] = {{0, 99}, {1, 98}};
    cheap_d[1].state = GW_DEVICE_STALE;
    gw_snapshot *cheap3 = snap(4, cheap_d, 2, own_p, 2);
    bool keep[2] = {true, false};
    m = gw__snapshot_with_processes(cheap3, full, keep);
    assert_non_null(m);
    assert_int_equal(m->n_processes, 2);
    assert_int_equal(m->processes[0].pid, 99);
    assert_int_equal(m->processes[0].device_index, 0);
    assert_int_equal(m->processes[1].pid, 10);
    assert_int_equal(m->processes[1].device_index, 1);
    gw_snapshot_release(m);
    gw_snapshot_release(cheap3);
    gw_snapshot_release(cheap2);
    gw_snapshot_release(cheap);
    gw_snapshot_release(full);
}

/* ------------------------------------------------------------- prometheus */

static void test_prom_render(void **state)
{
    (void)state;
    tdev d[2] = {{"GPU-a", "Quote\"Back\\slash\nNL", GW_DEVICE_OK, 8 * GIB, 3 * GIB, 70, 0},
                 {"GPU-b", "Lost one", GW_DEVICE_LOST, 0, UINT64_MAX, 0, 0}};
    gw_snapshot *s = snap(1700000000000000000, d, 2, NULL, 0);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__render_prometheus(&sb, s, NULL, GW__PROM_NATIVE);
    assert_false(sb.failed);
    if (getenv("SERVE_UNIT_DUMP"))
        fputs(sb.data, stderr);
    const char *t = sb.data;
    assert_non_null(strstr(t, "name=\"Quote\\\"Back\\\\slash\\nNL\""));
    assert_non_null(strstr(t, "gpuwatch_gpu_memory_used_bytes{gpu=\"0\",uuid=\"GPU-a\"} 3221225472\n"));
    assert_null(strstr(t, "gpuwatch_gpu_memory_used_bytes{gpu=\"1\""));
    assert_non_null(strstr(t, "gpuwatch_gpu_state{gpu=\"1\",uuid=\"GPU-b\",state=\"lost\"} 1\n"));
    assert_non_null(strstr(t, "gpuwatch_gpu_state{gpu=\"1\",uuid=\"GPU-b\",state=\"ok\"} 0\n"));
    assert_non_null(strstr(t, "gpuwatch_gpu_temperature_celsius{gpu=\"0\",uuid=\"GPU-a\"} 70\n"));
    /* each family's HELP appears exactly once */
    const char *fam = "# HELP gpuwatch_gpu_state ";
    const char *first = strstr(t, fam);
    assert_non_null(first);
    assert_null(strstr(first + 1, fam));
    assert_int_equal(t[sb.len - 1], '\n');
    gw__strbuf_release(&sb);
    gw__strbuf_init(&sb, 0);
    gw__render_prometheus(&sb, s, NULL, GW__PROM_DCGM);
    assert_non_null(strstr(sb.data, "DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-a\""));
    assert_non_null(strstr(sb.data, "} 3072\n"));
    assert_null(strstr(sb.data, "gpuwatch_"));
    gw__strbuf_release(&sb);
    gw_snapshot_release(s);
}

/* ------------------------------------------------------------ negotiation */

static void test_negotiate_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *h;
        gw__encoding want;
    } cases[] = {
        {NULL, GW__ENC_IDENTITY},
        {"", GW__ENC_IDENTITY},
        {"gzip", GW__ENC_GZIP},
        {"GZIP", GW__ENC_GZIP},
        {"x-gzip", GW__ENC_GZIP},
        {"gzip, deflate, br", GW__ENC_GZIP}, /* curl --compressed */
        {"br, deflate", GW__ENC_IDENTITY},
        {"gzip;q=0", GW__ENC_IDENTITY},
        {"gzip;q=0.000", GW__ENC_IDENTITY},
        {"gzip;q=0.001", GW__ENC_GZIP},
        {"gzip ; q=0.5", GW__ENC_GZIP},      /* implicit identity ranks last */
        {"gzip;q=0.5, identity;q=0.6", GW__ENC_IDENTITY},
        {"gzip;q=0.6, identity;q=0.6", GW__ENC_GZIP}, /* a tie goes to gzip */
        {"identity;q=0", GW__ENC_NONE},
        {"identity;q=0, gzip", GW__ENC_GZIP},
        {"*", GW__ENC_GZIP},
        {"*;q=0", GW__ENC_NONE},
        {"*;q=0, gzip", GW__ENC_GZIP},
        {"*;q=0, identity", GW__ENC_IDENTITY},
        {"*;q=0.2, gzip;q=0.1", GW__ENC_IDENTITY},
        {"gzip;q=0, *", GW__ENC_IDENTITY},   /* named gzip wins over * */
        {"deflate;q=1, *;q=0", GW__ENC_NONE},
        {"gzip;q=1.0", GW__ENC_GZIP},
        {"gzip;q=1.001", GW__ENC_IDENTITY},  /* bad q: the element is skipped */
        {"gzip;q=2", GW__ENC_IDENTITY},
        {"gzip;q=", GW__ENC_IDENTITY},
        {"gzip;q=0.5000", GW__ENC_IDENTITY},
        {"gzip;q=-1", GW__ENC_IDENTITY},
        {"gzip;q=\"0.5\"", GW__ENC_GZIP},   /* quoted-string q */
        {"gzip;level=\"a,b\";q=0, identity", GW__ENC_IDENTITY},
        {"gzip;q=0 x, gzip", GW__ENC_GZIP},  /* garbage element skipped, next counts */
        {",,, gzip ,,", GW__ENC_GZIP},
        {"gzip;", GW__ENC_IDENTITY},
        {";q=1", GW__ENC_IDENTITY},
        {"\"gzip\"", GW__ENC_IDENTITY},
        {"gzip;q=0, gzip;q=1", GW__ENC_IDENTITY}, /* the first naming counts */
        {"identity;q=0, *;q=0.5", GW__ENC_GZIP},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(cases); i++) {
        gw__encoding got = gw__negotiate_encoding(cases[i].h);
        if (got != cases[i].want)
            fail_msg("Accept-Encoding %s: got %d, want %d", cases[i].h ? cases[i].h : "(none)",
                     got, cases[i].want);
    }
}

static void test_negotiate_format(void **state)
{
    (void)state;
    static const struct {
        const char *h;
        gw__format want;
    } cases[] = {
        {NULL, GW__FMT_PROMETHEUS},
        {"", GW__FMT_PROMETHEUS},
        {"*/*", GW__FMT_PROMETHEUS},
        {"application/json", GW__FMT_PROMETHEUS}, /* nothing we have: the default */
        {"application/openmetrics-text", GW__FMT_OPENMETRICS},
        {"Application/OpenMetrics-Text; version=1.0.0", GW__FMT_OPENMETRICS},
        /* Prometheus 2.42's scrape Accept header */
        {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
         GW__FMT_OPENMETRICS},
        /* Prometheus 2.49+ with the protobuf format first */
        {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
         "q=0.7,application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.5",
         GW__FMT_OPENMETRICS},
        {"text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", GW__FMT_PROMETHEUS},
        {"application/openmetrics-text;version=2.0.0", GW__FMT_PROMETHEUS},
        {"application/openmetrics-text;q=0", GW__FMT_PROMETHEUS},
        {"application/openmetrics-text;version=\"1.0.0\"", GW__FMT_OPENMETRICS},
        {"application/openmetrics-text, text/plain", GW__FMT_OPENMETRICS}, /* tie: first */
        {"text/plain, application/openmetrics-text", GW__FMT_PROMETHEUS},
        {"text/*;q=0.3, application/openmetrics-text;q=0.2", GW__FMT_PROMETHEUS},
        {"application/openmetrics-text;q=abc", GW__FMT_PROMETHEUS},
        {"application/openmetrics-text;version", GW__FMT_PROMETHEUS},
        {"application/, application/openmetrics-text", GW__FMT_OPENMETRICS},
        {"/openmetrics-text, */*", GW__FMT_PROMETHEUS},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(cases); i++) {
        gw__format got = gw__negotiate_format(cases[i].h);
        if (got != cases[i].want)
            fail_msg("Accept %s: got %d, want %d", cases[i].h ? cases[i].h : "(none)", got,
                     cases[i].want);
    }
}

/* "/" answers the page to a browser, JSON to everyone else. */
static void test_negotiate_html(void **state)
{
    (void)state;
    static const struct {
        const char *h;
        bool want;
    } cases[] = {
        {NULL, false},
        {"", false},
        {"*/*", false}, /* curl */
        {"application/json", false},
        {"text/*", false},
        /* Chromium and Firefox navigating */
        {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
         "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
         true},
        {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
        {"application/xhtml+xml", true},
        {"text/html;q=0", false},
        {"text/html, application/json", false}, /* a tie: the script named JSON */
        {"text/html;q=0.9, application/json;q=0.5", true},
        {"application/json;q=0.9, text/html;q=0.5", false},
        {"TEXT/HTML", true},
        {"text/html;q=x", false},
        {"text/htmlx", false},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(cases); i++)
        if (gw__negotiate_html(cases[i].h) != cases[i].want)
            fail_msg("Accept %s: got %d", cases[i].h ? cases[i].h : "(none)", !cases[i].want);
}

/* If-None-Match against an ETag: lists, weak tags, "*", garbage. */
static void test_etag_matches(void **state)
{
    (void)state;
    const char *etag = "\"0123abcd\"";
    assert_false(gw__etag_matches(NULL, etag));
    assert_false(gw__etag_matches("", etag));
    assert_true(gw__etag_matches("\"0123abcd\"", etag));
    assert_true(gw__etag_matches("W/\"0123abcd\"", etag));
    assert_true(gw__etag_matches("\"x\", \"0123abcd\"", etag));
    assert_true(gw__etag_matches("*", etag));
    assert_false(gw__etag_matches("\"0123abc\"", etag));
    assert_false(gw__etag_matches("\"0123abcde\"", etag));
    assert_false(gw__etag_matches("0123abcd", etag)); /* unquoted: garbage */
    assert_false(gw__etag_matches("\"0123abcd", etag));
    assert_false(gw__etag_matches("\"x\" junk \"0123abcd\"", etag));
}

/* The embedded files: the table holds (invariant 1) and the page's files
 * are there, with their types; every ETag differs (the bytes do). */
static void test_assets_table(void **state)
{
    (void)state;
    assert_true(gw__assets_check());
    static const struct {
        const char *name, *type;
    } want[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"app.css", "text/css; charset=utf-8"},
        {"dygraph.min.js", "text/javascript; charset=utf-8"},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(want); i++) {
        const gw__asset *a = gw__asset_find(want[i].name, strlen(want[i].name));
        assert_non_null(a);
        assert_string_equal(a->type, want[i].type);
        assert_true(a->len > 0);
    }
    assert_null(gw__asset_find("app.j", 5));
    assert_null(gw__asset_find("", 0));
    assert_null(gw__asset_find("../app.js", 9));
    for (size_t i = 0; i < gw__n_assets; i++)
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(gw__assets[i].etag, gw__assets[k].etag);
}

/* Every prefix of hostile headers, and pseudo-random bytes: the parsers
 * return one of their values and read nothing past the NUL (ASan). */
static void test_negotiate_garbage(void **state)
{
    (void)state;
    static const char *const hostile[] = {
        "gzip;q=\"0.5\\\"\", identity;q=0",
        "application/openmetrics-text;version=\"1.0.0;q=0.5",
        "\"\\",
        ";;;===,,,\"\"\"",
        "gzip\t;\tq=0.5\t,\tidentity;q=0",
        "*/*;q=0.1;q=0.2;version=;",
        "text/html;q=\"1\", application/json;q=",
        "W/\"abc\", \"", /* If-None-Match */
        "W/W/\"\"\"*",
    };
    char buf[256];
    for (size_t h = 0; h < GW__ARRAY_LEN(hostile); h++) {
        size_t n = strlen(hostile[h]);
        for (size_t k = 0; k <= n; k++) {
            char *p = malloc(k + 1); /* exact size: ASan sees any overread */
            assert_non_null(p);
            memcpy(p, hostile[h], k);
            p[k] = '\0';
            gw__encoding e = gw__negotiate_encoding(p);
            assert_true(e == GW__ENC_IDENTITY || e == GW__ENC_GZIP || e == GW__ENC_NONE);
            gw__format f = gw__negotiate_format(p);
            assert_true(f == GW__FMT_PROMETHEUS || f == GW__FMT_OPENMETRICS);
            (void)gw__negotiate_html(p); /* any answer; no overread */
            (void)gw__etag_matches(p, "\"0123abcd\"");
            free(p);
        }
    }
    uint32_t x = 12345;
    static const char alphabet[] =
        "gzip;q=0.1,*/\" \\\tidentityapplication/openmetrics-texthtmljsonW\x01\xff";
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % (int)(sizeof buf - 1));
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        buf[n] = '\0';
        gw__encoding e = gw__negotiate_encoding(buf);
        assert_true(e == GW__ENC_IDENTITY || e == GW__ENC_GZIP || e == GW__ENC_NONE);
        gw__format f = gw__negotiate_format(buf);
        assert_true(f == GW__FMT_PROMETHEUS || f == GW__FMT_OPENMETRICS);
        (void)gw__negotiate_html(buf);
        (void)gw__etag_matches(buf, "\"0123abcd\"");
    }
}

static void test_gzip_roundtrip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 70000};
    for (size_t t = 0; t < GW__ARRAY_LEN(sizes); t++) {
        size_t n = sizes[t];
        char *in = malloc(n + 1);
        assert_non_null(in);
        for (size_t i = 0; i < n; i++)
            in[i] = (char)("metric{gpu=\"0\"} 1\n"[i % 18] + (i % 7 == 0));
        gw_strbuf z;
        gw__strbuf_init(&z, 0);
        assert_int_equal(gw__gzip(&z, in, n), GW_OK);
        assert_true(z.len >= 18); /* gzip header + trailer */
        assert_int_equal((unsigned char)z.data[0], 0x1f);
        assert_int_equal((unsigned char)z.data[1], 0x8b);
        char *out = malloc(n + 16);
        assert_non_null(out);
        z_stream s;
        memset(&s, 0, sizeof s);
        assert_int_equal(inflateInit2(&s, 15 + 16), Z_OK);
        s.next_in = (Bytef *)z.data;
        s.avail_in = (uInt)z.len;
        s.next_out = (Bytef *)out;
        s.avail_out = (uInt)(n + 16);
        assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
        assert_int_equal(s.total_out, n);
        assert_int_equal(s.avail_in, 0);
        assert_memory_equal(out, in, n);
        inflateEnd(&s);
        free(out);
        free(in);
        gw__strbuf_release(&z);
    }
    /* a buffer too small for the result is marked failed, not overrun */
    gw_strbuf z;
    gw__strbuf_init(&z, 8);
    assert_int_equal(gw__gzip(&z, "0123456789abcdef", 16), GW_ENOMEM);
    assert_true(z.failed);
    gw__strbuf_release(&z);
}

static void test_openmetrics_rewrite(void **state)
{
    (void)state;
    static const char prom[] =
        "# HELP a_bytes Memory \"used\" in bytes.\n"
        "# TYPE a_bytes gauge\n"
        "a_bytes{gpu=\"0\"} 5\n"
        "# HELP b_joules_total Energy \\ since load.\n"
        "# TYPE b_joules_total counter\n"
        "b_joules_total{gpu=\"0\"} 7.5\n"
        "# HELP DCGM_X_COUNTER Replays.\n"
        "# TYPE DCGM_X_COUNTER counter\n"
        "DCGM_X_COUNTER{gpu=\"0\"} 3\n";
    static const char want[] =
        "# HELP a_bytes Memory \\\"used\\\" in bytes.\n"
        "# TYPE a_bytes gauge\n"
        "a_bytes{gpu=\"0\"} 5\n"
        "# HELP b_joules Energy \\ since load.\n"
        "# TYPE b_joules counter\n"
        "b_joules_total{gpu=\"0\"} 7.5\n"
        "# HELP DCGM_X_COUNTER Replays.\n"
        "# TYPE DCGM_X_COUNTER unknown\n"
        "DCGM_X_COUNTER{gpu=\"0\"} 3\n"
        "# EOF\n";
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__prom_to_openmetrics(&sb, prom, strlen(prom));
    assert_false(sb.failed);
    assert_string_equal(sb.data, want);
    gw__strbuf_reset(&sb);
    gw__prom_to_openmetrics(&sb, "", 0);
    assert_string_equal(sb.data, "# EOF\n");
    gw__strbuf_release(&sb);
}

/* ----------------------------------------------------------------- ids */

static void test_find_device(void **state)
{
    (void)state;
    tdev d[2] = {{"GPU-aaaa-1111", NULL, GW_DEVICE_OK, 1, 0, 0, 0},
                 {"GPU-bbbb-2222", NULL, GW_DEVICE_OK, 1, 0, 0, 0}};
    gw_snapshot *s = snap(1, d, 2, NULL, 0);
    size_t i = 99;
    assert_int_equal(gw__api_find_device(s, "1", &i), 200);
    assert_int_equal(i, 1);
    assert_int_equal(gw__api_find_device(s, "gpu-AAAA-1111", &i), 200);
    assert_int_equal(i, 0);
    assert_int_equal(gw__api_find_device(s, "2", &i), 404);
    assert_int_equal(gw__api_find_device(s, "12345678901234", &i), 404);
    assert_int_equal(gw__api_find_device(s, "GPU-cccc", &i), 404);
    assert_int_equal(gw__api_find_device(s, "", &i), 400);
    assert_int_equal(gw__api_find_device(s, "-1", &i), 400);
    assert_int_equal(gw__api_find_device(s, "a b", &i), 400);
    assert_int_equal(gw__api_find_device(s, "%", &i), 400);
    /* could be an AMD unique_id (hex): well-formed, unknown */
    assert_int_equal(gw__api_find_device(s, "1x", &i), 404);
    gw_snapshot_release(s);
    /* AMD's unique_id is hex: it may start with a digit, or be all digits
     * (then it wins over the index it also spells) */
    tdev a[2] = {{"5a1c0e2fb8e31d2a", NULL, GW_DEVICE_OK, 1, 0, 0, 0},
                 {"0", NULL, GW_DEVICE_OK, 1, 0, 0, 0}};
    s = snap(1, a, 2, NULL, 0);
    assert_int_equal(gw__api_find_device(s, "5A1C0E2FB8E31D2A", &i), 200);
    assert_int_equal(i, 0);
    assert_int_equal(gw__api_find_device(s, "0", &i), 200);
    assert_int_equal(i, 1);
    assert_int_equal(gw__api_find_device(s, "1", &i), 200);
    assert_int_equal(i, 1);
    gw_snapshot_release(s);
}

/* ----------------------------------------------------------------- config */

/* Prints c into path; returns the text (static buffer). */
static const char *print_to(const gw__serve_config *c, const char *path)
{
    static char text[8192];
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    gw__serve_config_print(f, c);
    fclose(f);
    f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* --print-config's output, loaded as a config file, never makes its token
 * placeholder the token (issue 12: "token = (set)" became the token
 * "(set)"), and prints the same again. */
static void test_print_config_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/gw-serve-print-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gw_error err;
    gw__serve_config c, back;
    gw__serve_config_default(&c);
    assert_int_equal(gw__serve_config_set(&c, "token", "s3cret", &err), GW_OK);
    assert_int_equal(gw__serve_config_set(&c, "interval_ms", "250", &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&c, &err), GW_OK);
    char first[8192];
    snprintf(first, sizeof first, "%s", print_to(&c, path));
    assert_null(strstr(first, "s3cret"));
    gw__serve_config_default(&back);
    assert_int_equal(gw__serve_config_load_file(&back, path, &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&back, &err), GW_OK);
    assert_string_equal(back.http.token, ""); /* not "(set)" */
    assert_int_equal(back.sampler.interval_ms, 250);

    /* from token_file: the same configuration, the same text again */
    char tok[] = "/tmp/gw-serve-token-XXXXXX";
    fd = mkstemp(tok);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    gw__serve_config_default(&c);
    assert_int_equal(gw__serve_config_set(&c, "token_file", tok, &err), GW_OK);
    assert_int_equal(gw__serve_config_set(&c, "listen", "0.0.0.0:19400", &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&c, &err), GW_OK);
    snprintf(first, sizeof first, "%s", print_to(&c, path));
    gw__serve_config_default(&back);
    assert_int_equal(gw__serve_config_load_file(&back, path, &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&back, &err), GW_OK);
    assert_string_equal(back.http.token, "s3cret");
    assert_string_equal(print_to(&back, path), first);

    /* token_file and peer_token_file: the first line, never truncated:
     * empty or over 255 characters is refused naming the key and file */
    static const char *const keys[] = {"token_file", "peer_token_file"};
    char line[301];
    memset(line, 'x', 300);
    line[300] = '\n';
    for (size_t k = 0; k < 2; k++) {
        for (int bad = 0; bad < 3; bad++) {
            fd = open(tok, O_WRONLY | O_TRUNC);
            assert_true(fd >= 0);
            if (bad == 0)
                assert_int_equal(write(fd, "peer-s3cret\r\nnext\n", 19), 19);
            else if (bad == 1)
                assert_int_equal(write(fd, "\nsecond\n", 8), 8);
            else
                assert_int_equal(write(fd, line, sizeof line), (ssize_t)sizeof line);
            close(fd);
            gw__serve_config_default(&c);
            assert_int_equal(gw__serve_config_set(&c, keys[k], tok, &err), GW_OK);
            int rc = gw__serve_config_finish(&c, &err);
            if (bad == 0) {
                assert_int_equal(rc, GW_OK);
                assert_string_equal(k ? c.peer_token : c.http.token, "peer-s3cret");
            } else {
                assert_int_equal(rc, GW_EINVAL);
                assert_non_null(strstr(err.message, keys[k]));
                assert_non_null(strstr(err.message, "first line must hold 1..255 characters"));
            }
        }
    }
    unlink(tok);
    gw__serve_config_default(&c);
    assert_int_equal(gw__serve_config_set(&c, "peer_token_file", tok, &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&c, &err), GW_EIO); /* gone */
    assert_non_null(strstr(err.message, tok));
    unlink(path);
}

/* JOURNAL_STREAM counts only when it names the log fd itself (systemd's
 * rule: compare st_dev:st_ino), never any value (issue 12). */
static void test_journal_stream(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct stat st;
    assert_int_equal(fstat(p[1], &st), 0);
    char mine[64], other[64], bad[80];
    snprintf(mine, sizeof mine, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    snprintf(other, sizeof other, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    assert_true(gw__log_journal_stream_is(mine, p[1]));
    assert_false(gw__log_journal_stream_is(other, p[1]));
    snprintf(bad, sizeof bad, "%s ", mine);
    assert_false(gw__log_journal_stream_is(bad, p[1]));
    snprintf(bad, sizeof bad, "-%s", mine);
    assert_false(gw__log_journal_stream_is(bad, p[1]));
    static const char *const junk[] = {"8:1234", "", ":", "1:", ":1", "x:y", "1:2:3", "nan:inf"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert_false(gw__log_journal_stream_is(junk[i], p[1]));
    assert_false(gw__log_journal_stream_is(NULL, p[1]));
    assert_false(gw__log_journal_stream_is(mine, 12345)); /* not open */
    gw__log log;
    setenv("JOURNAL_STREAM", "8:1234", 1);
    gw__log_init(&log, p[1], GW__LOG_INFO);
    assert_false(log.journal);
    setenv("JOURNAL_STREAM", mine, 1);
    gw__log_init(&log, p[1], GW__LOG_INFO);
    assert_true(log.journal);
    unsetenv("JOURNAL_STREAM");
    close(p[0]);
    close(p[1]);
}

static void test_config(void **state)
{
    (void)state;
    gw__serve_config c;
    gw__serve_config_default(&c);
    assert_string_equal(c.http.listen, "127.0.0.1:19400");
    assert_int_equal(c.sampler.interval_ms, 1000);
    gw_error err;
    assert_int_equal(gw__serve_config_set(&c, "interval_ms", "250", &err), GW_OK);
    assert_int_equal(c.sampler.interval_ms, 250);
    assert_int_equal(gw__serve_config_set(&c, "interval_ms", "5", &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "interval_ms"));
    assert_int_equal(c.sampler.interval_ms, 250); /* unchanged on error */
    assert_int_equal(gw__serve_config_set(&c, "bogus", "1", &err), GW_EINVAL);
    assert_int_equal(gw__serve_config_set(&c, "metrics_compat", "dcgm,nvidia_smi", &err), GW_OK);
    assert_int_equal(c.http.families, GW__PROM_NATIVE | GW__PROM_DCGM | GW__PROM_NVSMI);
    assert_int_equal(gw__serve_config_set(&c, "metrics_compat", "prom", &err), GW_EINVAL);
    /* metrics_processes: off unless asked (an unbounded pid label set) */
    assert_false(c.http.metrics_processes);
    assert_int_equal(gw__serve_config_set(&c, "metrics_processes", "true", &err), GW_OK);
    assert_true(c.http.metrics_processes);
    assert_int_equal(gw__serve_config_set(&c, "metrics_processes", "maybe", &err), GW_EINVAL);
    assert_true(c.http.metrics_processes);
    assert_int_equal(gw__serve_config_set(&c, "metrics_processes", "0", &err), GW_OK);
    assert_false(c.http.metrics_processes);

    char path[] = "/tmp/gw-serve-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\n\n  listen = 127.0.0.1:9500  \nhistory_seconds=60\nwhat\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    gw__serve_config_default(&c);
    assert_int_equal(gw__serve_config_load_file(&c, path, &err), GW_EINVAL);
    char want[128];
    snprintf(want, sizeof want, "%s:5:", path);
    assert_non_null(strstr(err.message, want));
    assert_string_equal(c.http.listen, "127.0.0.1:9500");
    assert_int_equal(c.sampler.history_seconds, 60);
    unlink(path);
    assert_int_equal(gw__serve_config_load_file(&c, path, &err), GW_ENOENT);

    setenv("GPUWATCH_DEADLINE_MS", "750", 1);
    assert_int_equal(gw__serve_config_apply_env(&c, &err), GW_OK);
    assert_int_equal(c.sampler.deadline_ms, 750);
    setenv("GPUWATCH_DEADLINE_MS", "soon", 1);
    assert_int_equal(gw__serve_config_apply_env(&c, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "GPUWATCH_DEADLINE_MS"));
    unsetenv("GPUWATCH_DEADLINE_MS");

    gw__serve_config_default(&c);
    assert_int_equal(gw__serve_config_set(&c, "listen", "0.0.0.0:19400", &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&c, &err), GW_EINVAL); /* no token */
    assert_int_equal(gw__serve_config_set(&c, "token", "t", &err), GW_OK);
    assert_int_equal(gw__serve_config_finish(&c, &err), GW_OK);
    assert_true(gw__listen_is_loopback("127.0.0.2:1"));
    assert_true(gw__listen_is_loopback("[::1]:80"));
    assert_false(gw__listen_is_loopback("[::]:80"));
    assert_false(gw__listen_is_loopback("10.0.0.1:80"));
    assert_false(gw__listen_is_loopback("localhost:80"));
}

/* ---------------------------------------------------------------- sampler */

typedef struct seen {
    pthread_mutex_t lock;
    int publications;
} seen;

static void on_pub(void *ctx, gw_snapshot *s, bool stale)
{
    (void)s;
    (void)stale;
    seen *x = ctx;
    pthread_mutex_lock(&x->lock);
    x->publications++;
    pthread_mutex_unlock(&x->lock);
}

static void test_sampler_lifecycle(void **state)
{
    (void)state;
    gw_config mc;
    gw_config_init(&mc);
    mc.sources = "host";
    gw_monitor *m;
    gw_error err;
    assert_int_equal(gw_monitor_open(&m, &mc, &err), GW_OK);
    gw__sampler_config sc;
    gw__sampler_config_default(&sc);
    sc.interval_ms = 20;
    seen x = {PTHREAD_MUTEX_INITIALIZER, 0};
    gw__sampler *s;
    assert_int_equal(gw__sampler_start(&s, m, NULL, &sc, on_pub, &x, NULL, &err), GW_OK);
    int n = 0;
    for (int i = 0; i < 12000 && n < 3; i++) { /* patience (2 min), no timing check */
        usleep(10000);
        pthread_mutex_lock(&x.lock);
        n = x.publications;
        pthread_mutex_unlock(&x.lock);
    }
    assert_true(n >= 3);
    gw_snapshot *cur = gw__sampler_current(s);
    assert_non_null(cur);
    assert_true(cur->cpu_only);
    gw_snapshot_release(cur);
    gw__sampler_stats st;
    gw__sampler_stats_get(s, &st);
    assert_true(st.rounds >= 3);
    assert_int_equal(st.overruns, 0);
    gw__sampler_stop(s, 1000);
    /* bad config: the monitor is closed for the caller, nothing leaks */
    assert_int_equal(gw_monitor_open(&m, &mc, &err), GW_OK);
    sc.interval_ms = 1;
    assert_int_equal(gw__sampler_start(&s, m, NULL, &sc, NULL, NULL, NULL, &err), GW_EINVAL);
    assert_null(s);
}

/* The fake NVML hangs in GPU 0's power call from its 4th call on, beside
 * the amdgpu source on a fixture sysfs tree: the NVIDIA GPUs go stale with
 * a reason naming nvml while the AMD GPU keeps being sampled (its sample
 * time advances), at the same indexes. Needs the fake NVML library and the
 * source tree (GPUWATCH_FAKE_NVML, GPUWATCH_SOURCE_ROOT; set by meson). */
static void test_sampler_hung_source_beside_a_healthy_one(void **state)
{
    (void)state;
    const char *lib = getenv("GPUWATCH_FAKE_NVML");
    const char *root = getenv("GPUWATCH_SOURCE_ROOT");
    if (!lib || !*lib || !root || !*root)
        skip();
    char scn[] = "/tmp/gw-hang-XXXXXX", two[1024], sys[1024], proc[1024], line[512];
    int fd = mkstemp(scn);
    assert_true(fd >= 0);
    FILE *out = fdopen(fd, "w");
    fputs("hang nvmlDeviceGetPowerUsage gpu=0 after=3\n", out);
    snprintf(two, sizeof two, "%s/tests/serve/scenarios/two.scn", root);
    FILE *in = fopen(two, "r");
    assert_non_null(in);
    while (fgets(line, sizeof line, in))
        fputs(line, out);
    fclose(in);
    fclose(out);
    setenv("GPUWATCH_FAKE_NVML_SCENARIO", scn, 1);
    snprintf(sys, sizeof sys, "%s/tests/fixtures/rdna3/sys", root);
    snprintf(proc, sizeof proc, "%s/tests/fixtures/rdna3/proc", root);
    gw_config mc;
    gw_config_init(&mc);
    mc.sources = "nvml,amdgpu,host";
    mc.nvml_library = lib;
    mc.sys_root = sys;
    mc.proc_root = proc;
    mc.processes = false;
    gw_monitor *m;
    gw_error err;
    assert_int_equal(gw_monitor_open(&m, &mc, &err), GW_OK);
    gw__sampler_config sc;
    gw__sampler_config_default(&sc);
    sc.interval_ms = 20; /* deadline: the default 2 s, ample for the healthy sources */
    gw__sampler *s;
    assert_int_equal(gw__sampler_start(&s, m, NULL, &sc, NULL, NULL, NULL, &err), GW_OK);
    /* patience (2 min each), no timing check: wait for the hang to show */
    gw_snapshot *hung = NULL;
    for (int i = 0; i < 12000 && !hung; i++) {
        gw_snapshot *cur = gw__sampler_current(s);
        if (cur && cur->n_sources && cur->sources[0].error == GW_ETIMEDOUT)
            hung = cur;
        else {
            gw_snapshot_release(cur);
            usleep(10000);
        }
    }
    assert_non_null(hung);
    assert_int_equal(hung->n_devices, 3); /* nvml's two, then amdgpu's one */
    assert_string_equal(hung->devices[2].info.source, "amdgpu");
    assert_int_equal(hung->devices[2].info.index, 2);
    int64_t amd_at = hung->devices[2].sampled_at_ns, nv_at = hung->devices[0].sampled_at_ns;
    /* later publications: the AMD GPU sampled again, NVIDIA still stale */
    gw_snapshot *later = NULL;
    for (int i = 0; i < 12000 && !later; i++) {
        usleep(10000);
        gw_snapshot *cur = gw__sampler_current(s);
        if (cur && cur->n_devices == 3 && cur->devices[2].sampled_at_ns > amd_at &&
            cur->devices[2].state == GW_DEVICE_OK)
            later = cur;
        else
            gw_snapshot_release(cur);
    }
    assert_non_null(later);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(later->devices[i].info.source, "nvml");
        assert_int_equal(later->devices[i].state, GW_DEVICE_STALE);
        assert_non_null(strstr(later->devices[i].state_reason, "source 'nvml' has not answered"));
    }
    assert_int_equal(later->devices[0].sampled_at_ns, nv_at); /* its age grows */
    assert_int_equal(later->devices[2].state, GW_DEVICE_OK);
    assert_int_equal(later->sources[0].state, GW_SOURCE_FAILED);
    assert_string_equal(later->sources[1].name, "amdgpu");
    assert_int_equal(later->sources[1].state, GW_SOURCE_OK);
    assert_string_equal(later->sources[2].name, "host");
    assert_int_equal(later->sources[2].state, GW_SOURCE_OK);
    gw__sampler_stats st;
    gw__sampler_stats_get(s, &st);
    assert_true(st.stalled);
    assert_int_equal(st.overruns, 1); /* one hang, however many rounds since */
    assert_true(st.stale_publications >= 2);
    assert_int_equal(gw__events_count(gw__sampler_events(s), GW__EV_SAMPLING_STALLED), 1);
    /* history has the AMD GPU's new rows, and not the NVIDIA copies */
    gw__history_point *pts;
    size_t n_amd = 0, n_nv = 0;
    char key[96];
    gw__history_key(&later->devices[2], key, sizeof key);
    assert_int_equal(gw__history_query(gw__sampler_history(s), key, GW_METRIC_MEM_USED, 0,
                                       INT64_MAX, 0, &pts, &n_amd, &err), GW_OK);
    free(pts);
    gw__history_key(&later->devices[0], key, sizeof key);
    assert_int_equal(gw__history_query(gw__sampler_history(s), key, GW_METRIC_MEM_USED, 0,
                                       INT64_MAX, 0, &pts, &n_nv, &err), GW_OK);
    free(pts);
    assert_true(n_amd > n_nv);
    gw_snapshot_release(hung);
    gw_snapshot_release(later);
    /* the hung worker is abandoned (logged), the rest stops */
    gw__sampler_stop(s, 100);
    unsetenv("GPUWATCH_FAKE_NVML_SCENARIO");
    unlink(scn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_ring),
        cmocka_unit_test(test_events_pressure_hysteresis),
        cmocka_unit_test(test_events_lost_thermal_processes),
        cmocka_unit_test(test_events_health),
        cmocka_unit_test(test_events_ring_wraps),
        cmocka_unit_test(test_part_stale_copy),
        cmocka_unit_test(test_assemble_parts),
        cmocka_unit_test(test_with_processes),
        cmocka_unit_test(test_prom_render),
        cmocka_unit_test(test_negotiate_encoding),
        cmocka_unit_test(test_negotiate_format),
        cmocka_unit_test(test_negotiate_html),
        cmocka_unit_test(test_etag_matches),
        cmocka_unit_test(test_assets_table),
        cmocka_unit_test(test_negotiate_garbage),
        cmocka_unit_test(test_gzip_roundtrip),
        cmocka_unit_test(test_openmetrics_rewrite),
        cmocka_unit_test(test_find_device),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_journal_stream),
        cmocka_unit_test(test_print_config_round_trip),
        cmocka_unit_test(test_sampler_lifecycle),
        cmocka_unit_test(test_sampler_hung_source_beside_a_healthy_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
