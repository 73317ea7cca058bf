/* test_lib.c — libgpuwatch's public API as an application sees it: linked
 * against the shared library and only include/gpuwatch.h (no internal
 * header), reading the fake libnvidia-ml.so.1 (tests/nvml).
 *
 * What it owns: accessors, mem_get_info cached / fresh and the memory
 * table, bf16 answers for NVIDIA compute capabilities, size-versioned
 * structs, the watcher's levels with hysteresis (a thread: TSan runs this
 * file), the batch finder on a simulated job whose memory grows linearly,
 * its recovery and its cache, AMD and Intel fixture trees (tests/fixtures:
 * fresh reads, gfx target, architecture), and progress reports into a
 * folder. The
 * scenario each test writes is its input; expected values are computed from
 * that input, never read back from the library.
 *
 * Usage (meson passes it): test_lib FAKE_NVML_LIB
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gpuwatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

static const char *g_lib;
static char g_dir[256];        /* this run's scratch folder */
static char g_used[3][300];    /* memory.used.file of GPUs 0..2 */
static gw_monitor *g_open;     /* closed by teardown even when a test fails */

static void write_used(int gpu, uint64_t bytes)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_used[gpu]);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%llu\n", (unsigned long long)bytes);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, g_used[gpu]), 0); /* the fake never reads half a number */
}

/* Three GPUs: an A100 80GB (cc 8.0), a V100 16GB (cc 7.0) and a GPU without
 * a compute capability; the first two take used memory from a file. */
#define A100_TOTAL (80 * GIB)
#define V100_TOTAL (16 * GIB)
static gw_monitor *open_scenario(void)
{
    char scn[300];
    snprintf(scn, sizeof scn, "%s/lib.scn", g_dir);
    FILE *f = fopen(scn, "w");
    assert_non_null(f);
    fprintf(f, "driver 550.54.15\nnvml 12.550.54.15\ncuda 12040\n"
               "gpu\nname NVIDIA A100-SXM4-80GB\nuuid GPU-aaaaaaaa-0000-4000-8000-000000000000\n"
               "pci.bus_id 00000000:07:00.0\ncc.major 8\ncc.minor 0\n"
               "memory.total %llu\nmemory.reserved 0\nmemory.used 0\nmemory.free %llu\n"
               "memory.used.file %s\nutil.gpu 40\nutil.memory 10\ntemp 55\n"
               "gpu\nname Tesla V100-SXM2-16GB\nuuid GPU-bbbbbbbb-0000-4000-8000-000000000000\n"
               "pci.bus_id 00000000:17:00.0\ncc.major 7\ncc.minor 0\n"
               "memory.total %llu\nmemory.reserved 0\nmemory.used 0\nmemory.free %llu\n"
               "memory.used.file %s\n"
               "gpu\nname Mystery GPU\nuuid GPU-cccccccc-0000-4000-8000-000000000000\n"
               "pci.bus_id 00000000:27:00.0\n"
               "memory.total %llu\nmemory.reserved 0\nmemory.used 0\nmemory.free %llu\n",
            (unsigned long long)A100_TOTAL, (unsigned long long)A100_TOTAL, g_used[0],
            (unsigned long long)V100_TOTAL, (unsigned long long)V100_TOTAL, g_used[1],
            (unsigned long long)(8 * GIB), (unsigned long long)(8 * GIB));
    assert_int_equal(fclose(f), 0);
    setenv("GPUWATCH_FAKE_NVML_SCENARIO", scn, 1);
    gw_config cfg;
    gw_config_init(&cfg);
    cfg.nvml_library = g_lib;
    cfg.sources = "nvml";
    cfg.proc_root = "/nonexistent-proc";
    gw_error err;
    gw_error_clear(&err);
    gw_monitor *m = NULL;
    assert_int_equal(gw_monitor_open(&m, &cfg, &err), GW_OK);
    g_open = m;
    return m;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/gw-test-lib-%ld", (long)getpid());
    mkdir(g_dir, 0700);
    for (int i = 0; i < 3; i++)
        snprintf(g_used[i], sizeof g_used[i], "%s/used%d", g_dir, i);
    write_used(0, 2 * GIB);
    write_used(1, 1 * GIB);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gw_monitor_close(g_open);
    g_open = NULL;
    return 0;
}

static gw_snapshot *sample(gw_monitor *m)
{
    gw_snapshot *s = NULL;
    gw_error err;
    assert_int_equal(gw_monitor_sample(m, &s, &err), GW_OK);
    return s;
}

static void test_accessors(void **state)
{
    (void)state;
    gw_monitor *m = open_scenario();
    gw_snapshot *s = sample(m);
    assert_int_equal(gw_snapshot_device_count(s), 3);
    assert_false(gw_snapshot_cpu_only(s));
    const gw_device *d = gw_snapshot_device(s, 0);
    assert_string_equal(gw_device_text_of(d, GW_DEVICE_NAME), "NVIDIA A100-SXM4-80GB");
    assert_string_equal(gw_device_text_of(d, GW_DEVICE_UUID),
                        "GPU-aaaaaaaa-0000-4000-8000-000000000000");
    assert_string_equal(gw_device_text_of(d, GW_DEVICE_ARCH), "sm_80");
    assert_string_equal(gw_device_text_of(d, GW_DEVICE_SOURCE), "nvml");
    assert_null(gw_device_text_of(d, (gw_device_text)999));
    assert_int_equal(gw_device_vendor(d), GW_VENDOR_NVIDIA);
    assert_int_equal(gw_device_state_of(d), GW_DEVICE_OK);
    double v;
    assert_int_equal(gw_device_metric(d, GW_METRIC_MEM_TOTAL, &v), GW_OK);
    assert_true(v == (double)A100_TOTAL);
    assert_int_equal(gw_device_metric(d, GW_METRIC_MEM_USED, &v), GW_OK);
    assert_true(v == (double)(2 * GIB));
    assert_int_equal(gw_device_metric(d, GW_METRIC_UTIL_GPU, &v), GW_OK);
    assert_true(v == 40.0);
    assert_int_equal(gw_device_metric(d, GW_METRIC_TEMP, &v), GW_OK);
    assert_true(v == 55000.0); /* millidegrees */
    assert_int_equal(gw_device_metric(d, GW_METRIC_FAN, &v), GW_ENOENT); /* not in scenario */
    assert_int_equal(gw_device_metric(d, (gw_metric)GW_METRIC_COUNT, &v), GW_EINVAL);
    int ma = -1, mi = -1;
    assert_int_equal(gw_device_compute_capability(d, &ma, &mi), GW_OK);
    assert_int_equal(ma, 8);
    assert_int_equal(mi, 0);
    assert_int_equal(gw_device_compute_capability(gw_snapshot_device(s, 2), &ma, &mi),
                     GW_ENOENT);
    assert_null(gw_snapshot_device(s, 3));
    assert_null(gw_snapshot_process(s, 0));
    assert_int_equal(gw_snapshot_source_count(s), 1);
    assert_string_equal(gw_source_name(gw_snapshot_source(s, 0)), "nvml");
    assert_int_equal(gw_source_state_of(gw_snapshot_source(s, 0)), GW_SOURCE_OK);
    assert_string_equal(gw_version(), GW_VERSION_STRING);
    gw_snapshot_release(s);
}

/* Reads device i of the memory table as the header says (seqlock). */
static int table_read(gw_monitor *m, size_t i, uint64_t *freeb, uint64_t *total)
{
    size_t n = 0;
    const uint64_t *t = gw_monitor_memory_table(m, &n);
    assert_true(n >= 3 + 3 * GW_MEMORY_TABLE_DEVICES);
    for (;;) {
        uint64_t seq = __atomic_load_n(&t[0], __ATOMIC_ACQUIRE);
        if (seq & 1)
            continue;
        int ok = __atomic_load_n(&t[1], __ATOMIC_ACQUIRE) == 1 &&
                 i < __atomic_load_n(&t[2], __ATOMIC_ACQUIRE) &&
                 (__atomic_load_n(&t[5 + 3 * i], __ATOMIC_ACQUIRE) & 1);
        *freeb = __atomic_load_n(&t[3 + 3 * i], __ATOMIC_ACQUIRE);
        *total = __atomic_load_n(&t[4 + 3 * i], __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&t[0], __ATOMIC_RELAXED) == seq)
            return ok;
    }
}

static void test_mem_get_info(void **state)
{
    (void)state;
    write_used(0, 10 * GIB);
    gw_monitor *m = open_scenario();
    uint64_t f = 0, t = 0;
    assert_int_equal(table_read(m, 0, &f, &t), 0); /* no sample yet */
    gw_error err;
    gw_error_clear(&err);
    /* the first cached read samples once */
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_CACHED, &f, &t, &err), GW_OK);
    assert_true(t == A100_TOTAL && f == A100_TOTAL - 10 * GIB);
    write_used(0, 30 * GIB);
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_CACHED, &f, &t, &err), GW_OK);
    assert_true(f == A100_TOTAL - 10 * GIB); /* cached: the sample's figure */
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_FRESH, &f, &t, &err), GW_OK);
    assert_true(f == A100_TOTAL - 30 * GIB); /* fresh: the device now */
    assert_int_equal(table_read(m, 0, &f, &t), 1);
    assert_true(f == A100_TOTAL - 10 * GIB && t == A100_TOTAL);
    gw_snapshot_release(sample(m));
    assert_int_equal(table_read(m, 0, &f, &t), 1);
    assert_true(f == A100_TOTAL - 30 * GIB);
    assert_int_equal(gw_mem_get_info(m, 1, GW_READ_CACHED, &f, &t, NULL), GW_OK);
    assert_true(t == V100_TOTAL && f == V100_TOTAL - 1 * GIB);
    assert_int_equal(gw_mem_get_info(m, 7, GW_READ_CACHED, &f, &t, &err), GW_ENODEV);
    assert_non_null(strstr(err.message, "there are 3 devices"));
    assert_int_equal(gw_mem_get_info(m, 0, (gw_read_mode)5, &f, &t, &err), GW_EINVAL);
    assert_int_equal(gw_mem_get_info(NULL, 0, GW_READ_CACHED, &f, &t, &err), GW_EINVAL);
    gw_snapshot *none = NULL;
    assert_int_equal(gw_monitor_sample(NULL, &none, &err), GW_EINVAL);
    assert_null(none);
    assert_null(gw_monitor_latest(NULL));
}

static void test_bf16(void **state)
{
    (void)state;
    gw_monitor *m = open_scenario();
    char why[256];
    assert_int_equal(gw_device_supports_bf16(m, 0, why, sizeof why), 1);  /* A100 8.0 */
    assert_non_null(strstr(why, "8.0"));
    assert_int_equal(gw_device_supports_bf16(m, 1, why, sizeof why), 0);  /* V100 7.0 */
    assert_non_null(strstr(why, "7.0"));
    assert_int_equal(gw_device_supports_bf16(m, 2, why, sizeof why), -1); /* no cc */
    assert_non_null(strstr(why, "compute capability"));
    assert_int_equal(gw_device_supports_bf16(m, 9, why, sizeof why), -1);
    assert_non_null(strstr(why, "device 9"));
}

/* An older caller's gw_config (without skip_host) and gw_batch_result
 * (without note): the library must read and write only what they hold. */
static void test_sized_structs(void **state)
{
    (void)state;
    struct {
        gw_config cfg;
        unsigned char canary[64];
    } old;
    memset(&old, 0xAB, sizeof old);
    gw_config_init_size(&old.cfg, offsetof(gw_config, skip_host));
    for (size_t i = offsetof(gw_config, skip_host); i < sizeof old.cfg; i++)
        assert_int_equal(((unsigned char *)&old.cfg)[i], 0xAB);
    old.cfg.sources = "nvml";
    old.cfg.nvml_library = g_lib;
    gw_monitor *m = NULL;
    gw_error err;
    assert_int_equal(gw_monitor_open(&m, &old.cfg, &err), GW_OK);
    g_open = m;
    old.cfg.size = 2; /* no caller's struct is that small */
    gw_monitor *bad = NULL;
    assert_int_equal(gw_monitor_open(&bad, &old.cfg, &err), GW_EINVAL);
    assert_null(bad);
    assert_non_null(strstr(err.message, "gw_config_init"));
}

/* ------------------------------------------------------------- watcher */

typedef struct seen {
    pthread_mutex_t lock;
    gw_pressure level[16], previous[16];
    uint32_t device[16];
    int n;
} seen;

static void on_pressure(const gw_pressure_event *ev, void *user)
{
    seen *s = user;
    pthread_mutex_lock(&s->lock);
    if (s->n < 16) {
        s->level[s->n] = ev->level;
        s->previous[s->n] = ev->previous;
        s->device[s->n++] = ev->device;
    }
    pthread_mutex_unlock(&s->lock);
}

static int events(seen *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Sets GPU 0's used memory to ratio of its total and waits for two more
 * samples of the watcher, so the level has seen it. */
static void settle(gw_watcher *w, double ratio)
{
    write_used(0, (uint64_t)(ratio * (double)A100_TOTAL));
    uint64_t n0 = gw_watcher_samples(w);
    for (int i = 0; i < 2000 && gw_watcher_samples(w) < n0 + 2; i++)
        usleep(5000);
    assert_true(gw_watcher_samples(w) >= n0 + 2);
}

static void test_watcher(void **state)
{
    (void)state;
    write_used(0, (uint64_t)(0.30 * (double)A100_TOTAL));
    write_used(1, 1 * GIB);
    gw_monitor *m = open_scenario();
    seen s = {.n = 0};
    pthread_mutex_init(&s.lock, NULL);
    gw_watcher *w = NULL;
    gw_error err;
    assert_int_equal(gw_watcher_start(&w, m, 10, 0.5, 0.8, 0.1, on_pressure, &s, &err), GW_OK);
    settle(w, 0.30);
    assert_int_equal(events(&s), 0);
    settle(w, 0.60); /* warning */
    assert_int_equal(events(&s), 1);
    settle(w, 0.45); /* above warn - hysteresis (0.40): stays */
    assert_int_equal(events(&s), 1);
    assert_int_equal(gw_watcher_level(w, 0), GW_PRESSURE_WARNING);
    settle(w, 0.85); /* critical */
    settle(w, 0.75); /* above 0.70: stays critical */
    assert_int_equal(events(&s), 2);
    settle(w, 0.65); /* back to warning */
    settle(w, 0.35); /* back to normal */
    assert_int_equal(events(&s), 4);
    gw_watcher_stop(w);
    const gw_pressure want[4][2] = {{GW_PRESSURE_WARNING, GW_PRESSURE_NORMAL},
                                    {GW_PRESSURE_CRITICAL, GW_PRESSURE_WARNING},
                                    {GW_PRESSURE_WARNING, GW_PRESSURE_CRITICAL},
                                    {GW_PRESSURE_NORMAL, GW_PRESSURE_WARNING}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.device[i], 0); /* GPU 1 stays at 1 GiB of 16 */
        assert_int_equal(s.level[i], want[i][0]);
        assert_int_equal(s.previous[i], want[i][1]);
    }
    /* the watcher's samples keep the cached read current */
    uint64_t f;
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_CACHED, &f, NULL, NULL), GW_OK);
    assert_true(f == A100_TOTAL - (uint64_t)(0.35 * (double)A100_TOTAL));
    assert_int_equal(gw_watcher_start(&w, m, 10, 0.9, 0.8, 0.0, on_pressure, &s, &err),
                     GW_EINVAL);
    assert_non_null(strstr(err.message, "warn"));
    pthread_mutex_destroy(&s.lock);
}

/* A callback that stops its own watcher: no callback after it, and the
 * thread frees the watcher as it ends (ASan / TSan watch the rest). */
typedef struct self_stop {
    gw_watcher *w;
    pthread_mutex_t lock;
    int calls;
} self_stop;

static void stop_myself(const gw_pressure_event *ev, void *user)
{
    (void)ev;
    self_stop *st = user;
    pthread_mutex_lock(&st->lock);
    int first = st->calls++ == 0;
    gw_watcher *w = st->w;
    pthread_mutex_unlock(&st->lock);
    if (first)
        gw_watcher_stop(w);
}

static void test_watcher_stops_itself(void **state)
{
    (void)state;
    write_used(0, (uint64_t)(0.95 * (double)A100_TOTAL)); /* both GPUs over warn */
    write_used(1, (uint64_t)(0.95 * (double)V100_TOTAL));
    gw_monitor *m = open_scenario();
    self_stop st = {.calls = 0};
    pthread_mutex_init(&st.lock, NULL);
    gw_error err;
    pthread_mutex_lock(&st.lock);
    assert_int_equal(gw_watcher_start(&st.w, m, 10, 0.5, 0.99, 0.1, stop_myself, &st, &err),
                     GW_OK);
    pthread_mutex_unlock(&st.lock);
    for (int i = 0; i < 400; i++) { /* flip the level: a running watcher would call again */
        write_used(0, (uint64_t)((i % 2 ? 0.95 : 0.10) * (double)A100_TOTAL));
        usleep(2000);
    }
    pthread_mutex_lock(&st.lock);
    int calls = st.calls;
    pthread_mutex_unlock(&st.lock);
    assert_int_equal(calls, 1); /* GPU 1's event of the same round was not delivered */
    pthread_mutex_destroy(&st.lock);
    write_used(1, 1 * GIB);
}

/* ------------------------------------------------------- batch finder */

/* A job on GPU 0 whose step needs fixed + per * batch bytes on top of base,
 * out of memory when that passes the device's total. */
typedef struct sim {
    uint64_t base, fixed, per;
    int oom_pending; /* an OOM not yet cleaned up */
    int dirty;       /* a trial ran without cleanup since */
    int bad_order;   /* a trial started before the last one was cleaned up */
    int fail_at;     /* batch that answers GW_TRIAL_ERROR; 0 none */
} sim;

static gw_trial sim_try(uint64_t batch, void *user)
{
    sim *s = user;
    if (s->dirty)
        s->bad_order++;
    s->dirty = 1;
    if (s->fail_at && batch == (uint64_t)s->fail_at)
        return GW_TRIAL_ERROR;
    uint64_t need = s->fixed + s->per * batch;
    if (s->base + need > A100_TOTAL) {
        s->oom_pending = 1;
        return GW_TRIAL_OOM;
    }
    write_used(0, s->base + need); /* a framework cache keeps it until cleanup */
    return GW_TRIAL_OK;
}

static void sim_cleanup(void *user)
{
    sim *s = user;
    s->dirty = 0;
    s->oom_pending = 0;
    write_used(0, s->base);
}

static void batch_options(gw_batch_options *o, gw_monitor *m, sim *s)
{
    gw_batch_options_init(o);
    o->lo = 1;
    o->hi = 1u << 20;
    o->try_fn = sim_try;
    o->cleanup = sim_cleanup;
    o->user = s;
    o->monitor = m;
    o->device = 0;
}

static void test_batch_linear(void **state)
{
    (void)state;
    sim s = {.base = 2 * GIB, .fixed = 3 * GIB, .per = 37 * MIB};
    write_used(0, s.base);
    gw_monitor *m = open_scenario();
    uint64_t limit = (A100_TOTAL - s.base - s.fixed) / s.per; /* largest that fits */
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache/batch-sizes.json", g_dir);
    unlink(cache);
    gw_batch_options o;
    batch_options(&o, m, &s);
    o.cache_key = "sim-linear";
    o.dtype = "bf16";
    o.cache_path = cache;
    gw_batch_result r = {.size = sizeof r};
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_OK);
    assert_true(r.largest_ok == limit);
    assert_true(r.smallest_oom == limit + 1);
    assert_true(r.batch == (uint64_t)((double)limit * 0.95));
    assert_true(r.trials <= 4); /* lo, a jump on one point, one on two, the limit + 1 */
    assert_int_equal(r.ooms, 1);
    assert_int_equal(s.bad_order, 0);
    assert_false(r.from_cache);
    assert_true(r.bytes_per_sample > 0.99 * (double)s.per && r.bytes_per_sample < 1.01 * (double)s.per);
    assert_int_equal(r.measured, GW_BATCH_MEASURED_DEVICE); /* no process list in this scenario */
    assert_int_equal(access(cache, F_OK), 0);

    gw_batch_result again = {.size = sizeof again};
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_true(again.from_cache && again.trials == 0 && again.batch == r.batch);
    o.dtype = "fp32"; /* another dtype: not the cached entry */
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_false(again.from_cache);
    assert_true(again.largest_ok == limit);

    /* a neighbour took memory since: the cached answer is not reused */
    s.base = 20 * GIB;
    write_used(0, s.base);
    o.dtype = "bf16";
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_false(again.from_cache);
    assert_true(again.largest_ok == (A100_TOTAL - s.base - s.fixed) / s.per);
    assert_non_null(strstr(again.note, "free now"));

    /* another margin: the cached search answers with this call's margin */
    o.margin = 0.2;
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_true(again.from_cache);
    assert_true(again.batch == (uint64_t)((double)again.largest_ok * 0.8));
    /* a range the cached answer is not in: searched again */
    o.margin = 0.05;
    uint64_t cached_largest = again.largest_ok;
    o.hi = cached_largest - 10;
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_false(again.from_cache);
    assert_true(again.largest_ok == cached_largest - 10 && again.smallest_oom == 0);
    assert_non_null(strstr(again.note, "not one for"));
    /* ... and that capped answer (no OOM reached) does not serve a wider range */
    o.hi = 1u << 20;
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_false(again.from_cache);
    assert_true(again.largest_ok == cached_largest);

    /* a file that is not a cache: searched, the file left as it was */
    FILE *f = fopen(cache, "w");
    assert_non_null(f);
    fputs("{\"not\": \"ours\"}\n", f);
    fclose(f);
    assert_int_equal(gw_find_batch_size(&o, &again, &err), GW_OK);
    assert_false(again.from_cache);
    assert_non_null(strstr(again.note, "not a batch-size cache"));
    char buf[64] = "";
    f = fopen(cache, "r");
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "{\"not\": \"ours\"}\n");
}

static void test_batch_without_model(void **state)
{
    (void)state;
    sim s = {.base = 2 * GIB, .fixed = 1 * GIB, .per = 300 * MIB};
    write_used(0, s.base);
    gw_monitor *m = open_scenario();
    uint64_t limit = (A100_TOTAL - s.base - s.fixed) / s.per;
    gw_batch_options o;
    batch_options(&o, m, &s);
    o.device = -1; /* nothing measured: doubling and bisection */
    o.margin = 0;
    gw_batch_result r = {.size = sizeof r};
    gw_error err;
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_OK);
    assert_true(r.largest_ok == limit && r.batch == limit && r.smallest_oom == limit + 1);
    assert_true(r.bytes_per_sample == 0);
    assert_int_equal(r.measured, GW_BATCH_MEASURED_NONE);
    assert_int_equal(s.bad_order, 0);

    o.hi = limit / 2; /* the whole range fits: hi is the answer, no OOM */
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_OK);
    assert_true(r.largest_ok == limit / 2 && r.smallest_oom == 0 && r.ooms == 0);

    o.hi = 1u << 20;
    o.lo = limit + 5; /* lo itself does not fit */
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_ERANGE);
    assert_non_null(strstr(err.message, "(lo)"));
    o.lo = 1;
    s.fail_at = 4; /* an error that is not OOM stops the search */
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_EIO);
    assert_non_null(strstr(err.message, "batch size 4"));
    o.lo = 0;
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_EINVAL);
    gw_batch_result small = {.size = 2};
    o.lo = 1;
    assert_int_equal(gw_find_batch_size(&o, &small, &err), GW_EINVAL);
}

/* Opens a monitor on one fixture tree (tests/fixtures) with one source. */
static gw_monitor *open_fixture(const char *root, const char *source)
{
    char sys_root[640], proc_root[640];
    snprintf(sys_root, sizeof sys_root, "%s/sys", root);
    snprintf(proc_root, sizeof proc_root, "%s/proc", root);
    gw_config cfg;
    gw_config_init(&cfg);
    cfg.sources = source;
    cfg.sys_root = sys_root;
    cfg.proc_root = proc_root;
    gw_monitor *m = NULL;
    gw_error err;
    assert_int_equal(gw_monitor_open(&m, &cfg, &err), GW_OK);
    g_open = m;
    return m;
}

static uint64_t read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long v = 0;
    assert_int_equal(fscanf(f, "%llu", &v), 1);
    fclose(f);
    return v;
}

/* AMD (amdgpu sysfs + KFD gfx target) in a copy of the rdna3 fixture whose
 * used VRAM changes under the monitor: the fresh read sees it (the
 * read_memory op), the cached one does not. */
static void test_amd_fixture(void **state)
{
    (void)state;
    const char *src = getenv("GPUWATCH_SOURCE_ROOT");
    assert_non_null(src);
    char root[300], cmd[1200], dev[700];
    snprintf(root, sizeof root, "%s/rdna3", g_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s/tests/fixtures/rdna3' '%s'", root, src, root);
    assert_int_equal(system(cmd), 0);
    snprintf(dev, sizeof dev, "%s/sys/class/drm/card0/device", root);
    char path[800];
    snprintf(path, sizeof path, "%s/mem_info_vram_total", dev);
    uint64_t total = read_number(path);
    snprintf(path, sizeof path, "%s/mem_info_vram_used", dev);
    uint64_t used = read_number(path);
    gw_monitor *m = open_fixture(root, "amdgpu");
    uint64_t f = 0, t = 0;
    gw_error err;
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_CACHED, &f, &t, &err), GW_OK);
    assert_true(t == total && f == total - used);
    FILE *w = fopen(path, "w"); /* the GPU fills up */
    assert_non_null(w);
    fprintf(w, "%llu\n", (unsigned long long)(used + 4 * GIB));
    fclose(w);
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_CACHED, &f, &t, &err), GW_OK);
    assert_true(f == total - used);
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_FRESH, &f, &t, &err), GW_OK);
    assert_true(f == total - used - 4 * GIB);
    char why[200];
    assert_int_equal(gw_device_supports_bf16(m, 0, why, sizeof why), 1); /* gfx1100 */
    assert_non_null(strstr(why, "gfx1100"));
    assert_int_equal(gw_mem_get_info(m, 1, GW_READ_FRESH, &f, &t, &err), GW_ENODEV);
}

/* The batch finder on an AMD card (a copy of the rdna3 tree) measuring the
 * job's own memory through its fdinfo, while a neighbour's memory moves
 * the card's used figure at every trial: the model stays exact. */
typedef struct amd_sim {
    char used_path[700], fdinfo_path[800];
    uint64_t total, base, fixed, per, neighbour;
    unsigned step;
} amd_sim;

static void amd_sim_write(amd_sim *s, uint64_t own)
{
    FILE *f = fopen(s->used_path, "w"); /* same inode: the backend holds it open */
    assert_non_null(f);
    fprintf(f, "%llu\n", (unsigned long long)(s->base + s->neighbour + own));
    fclose(f);
    f = fopen(s->fdinfo_path, "w");
    assert_non_null(f);
    fprintf(f, "pos:\t0\nflags:\t02100002\ndrm-driver:\tamdgpu\ndrm-pdev:\t0000:03:00.0\n"
               "drm-client-id:\t77\ndrm-memory-vram:\t%llu KiB\ndrm-memory-gtt:\t0 KiB\n",
            (unsigned long long)(own / 1024));
    fclose(f);
}

static gw_trial amd_sim_try(uint64_t batch, void *user)
{
    amd_sim *s = user;
    s->neighbour = (uint64_t)(s->step++ % 3) * GIB; /* 0, 1, 2 GiB */
    uint64_t need = s->fixed + s->per * batch;
    if (s->base + s->neighbour + need > s->total) {
        amd_sim_write(s, 0);
        return GW_TRIAL_OOM;
    }
    amd_sim_write(s, need);
    return GW_TRIAL_OK;
}

static void amd_sim_cleanup(void *user) { amd_sim_write(user, 0); }

static void test_batch_amd_own_memory(void **state)
{
    (void)state;
    const char *src = getenv("GPUWATCH_SOURCE_ROOT");
    assert_non_null(src);
    char root[300], cmd[4096];
    snprintf(root, sizeof root, "%s/rdna3-own", g_dir);
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s' && cp -a '%s/tests/fixtures/rdna3' '%s' && mkdir -p '%s/proc/%ld/fd' "
             "'%s/proc/%ld/fdinfo' && ln -s /dev/dri/renderD128 '%s/proc/%ld/fd/9'",
             root, src, root, root, (long)getpid(), root, (long)getpid(), root, (long)getpid());
    assert_int_equal(system(cmd), 0);
    amd_sim s = {.fixed = 1 * GIB, .per = 40 * MIB};
    snprintf(s.used_path, sizeof s.used_path, "%s/sys/class/drm/card0/device/mem_info_vram_used",
             root);
    snprintf(s.fdinfo_path, sizeof s.fdinfo_path, "%s/proc/%ld/fdinfo/9", root, (long)getpid());
    char path[800];
    snprintf(path, sizeof path, "%s/sys/class/drm/card0/device/mem_info_vram_total", root);
    s.total = read_number(path);
    s.base = read_number(s.used_path);
    amd_sim_write(&s, 0);
    gw_monitor *m = open_fixture(root, "amdgpu");
    gw_batch_options o;
    gw_batch_options_init(&o);
    o.lo = 1;
    o.hi = 1u << 16;
    o.try_fn = amd_sim_try;
    o.cleanup = amd_sim_cleanup;
    o.user = &s;
    o.monitor = m;
    o.device = 0;
    o.margin = 0;
    gw_batch_result r = {.size = sizeof r};
    gw_error err;
    assert_int_equal(gw_find_batch_size(&o, &r, &err), GW_OK);
    assert_int_equal(r.measured, GW_BATCH_MEASURED_PROCESS); /* through the card's fdinfo */
    /* exact bytes per sample: the neighbour's 0-2 GiB never entered the model */
    assert_true(r.bytes_per_sample > 0.999 * (double)s.per &&
                r.bytes_per_sample < 1.001 * (double)s.per);
    uint64_t worst = (s.total - s.base - 2 * GIB - s.fixed) / s.per; /* neighbour at 2 GiB */
    uint64_t best = (s.total - s.base - s.fixed) / s.per;            /* at 0 */
    assert_true(r.largest_ok >= worst && r.largest_ok <= best);
    assert_true(r.trials <= 12);
}

/* Intel (xe sysfs + fdinfo): no single-device read, so a fresh read is a
 * whole sample; the architecture comes from the PCI id. */
static void test_intel_fixture(void **state)
{
    (void)state;
    const char *src = getenv("GPUWATCH_SOURCE_ROOT");
    assert_non_null(src);
    char root[600], path[800];
    snprintf(root, sizeof root, "%s/tests/fixtures/arc_xe", src);
    snprintf(path, sizeof path, "%s/sys/class/drm/card0/device/tile0/physical_vram_size_bytes",
             root);
    uint64_t total = read_number(path);
    gw_monitor *m = open_fixture(root, "intel");
    uint64_t f1 = 0, t1 = 0, f2 = 0, t2 = 0;
    gw_error err;
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_CACHED, &f1, &t1, &err), GW_OK);
    assert_int_equal(gw_mem_get_info(m, 0, GW_READ_FRESH, &f2, &t2, &err), GW_OK);
    assert_true(t1 == total && t2 == total && f1 <= total && f2 == f1);
    gw_snapshot *s = gw_monitor_latest(m);
    assert_non_null(s);
    assert_true(gw_snapshot_seq(s) == 2); /* the fresh read sampled */
    assert_string_equal(gw_device_text_of(gw_snapshot_device(s, 0), GW_DEVICE_ARCH), "xe-hpg");
    gw_snapshot_release(s);
    char why[200];
    assert_int_equal(gw_device_supports_bf16(m, 0, why, sizeof why), 1);
}

static void test_progress_report(void **state)
{
    (void)state;
    char dir[300], route[320];
    snprintf(dir, sizeof dir, "%s/progress", g_dir);
    snprintf(route, sizeof route, "dir:%s", dir);
    setenv("GPUWATCH_PROGRESS", route, 1);
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw_progress_report("embed-1", "GPU-aaaaaaaa-0000-4000-8000-000000000000",
                                        40, 100, "seqs", "shard 3", &err), GW_OK);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(gw_progress_report("bad job", "0", 1, 2, NULL, NULL, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "job"));
    assert_int_equal(gw_progress_report("j", "0", 5, 2, NULL, NULL, &err), GW_EINVAL);
    setenv("GPUWATCH_PROGRESS", "ftp://x", 1);
    assert_int_equal(gw_progress_report("j", "0", 1, 2, NULL, NULL, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "GPUWATCH_PROGRESS"));
    unsetenv("GPUWATCH_PROGRESS");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_lib FAKE_NVML_LIB\n");
        return 2;
    }
    g_lib = argv[1];
    setup(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_accessors, teardown),
        cmocka_unit_test_teardown(test_mem_get_info, teardown),
        cmocka_unit_test_teardown(test_bf16, teardown),
        cmocka_unit_test_teardown(test_sized_structs, teardown),
        cmocka_unit_test_teardown(test_watcher, teardown),
        cmocka_unit_test_teardown(test_watcher_stops_itself, teardown),
        cmocka_unit_test_teardown(test_batch_linear, teardown),
        cmocka_unit_test_teardown(test_batch_without_model, teardown),
        cmocka_unit_test_teardown(test_amd_fixture, teardown),
        cmocka_unit_test_teardown(test_intel_fixture, teardown),
        cmocka_unit_test_teardown(test_batch_amd_own_memory, teardown),
        cmocka_unit_test_teardown(test_progress_report, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_lib: could not remove %s\n", g_dir);
    return rc;
}
