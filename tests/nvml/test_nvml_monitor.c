/* test_nvml_monitor.c — the NVML backend across several samples, through the
 * public monitor API (gw_monitor_open / gw_monitor_sample) and the fake
 * libnvidia-ml.so.1 serving scenario files.
 *
 * What it owns: behaviours a one-shot `report` cannot show — a lost GPU stays
 * lost and is not called again, NOT_SUPPORTED metrics are not asked again,
 * the per-process utilisation cursor (lastSeen) advances, and the exact
 * open-failure message. Expected values come from the scenario files (quoted
 * in each test), never from gpuwatch's own output.
 *
 * Usage (meson passes both): test_nvml_monitor FAKE_LIB SCENARIO_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_lib, *g_scenarios;
static gw_monitor *g_open; /* closed by teardown even when a test fails */

static gw_monitor *open_with(const char *scenario)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_scenarios, scenario);
    setenv("GPUWATCH_FAKE_NVML_SCENARIO", path, 1);
    unsetenv("GPUWATCH_FAKE_NVML_CALL_LOG");
    gw_config cfg;
    gw_config_init(&cfg);
    cfg.nvml_library = g_lib;
    cfg.sources = "nvml";
    cfg.proc_root = "/nonexistent-proc"; /* names are not under test here */
    gw_monitor *m = NULL;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw_monitor_open(&m, &cfg, &err), GW_OK);
    assert_non_null(m);
    g_open = m;
    return m;
}

static gw_snapshot *sample(gw_monitor *m)
{
    gw_snapshot *s = NULL;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw_monitor_sample(m, &s, &err), GW_OK);
    assert_non_null(s);
    return s;
}

static const gw_source_status *nvml_source(const gw_snapshot *s)
{
    for (size_t i = 0; i < s->n_sources; i++)
        if (strcmp(s->sources[i].name, "nvml") == 0)
            return &s->sources[i];
    fail_msg("no nvml source");
    return NULL;
}

static const gw_process *find_proc(const gw_snapshot *s, uint32_t dev, uint32_t pid)
{
    for (size_t i = 0; i < s->n_processes; i++)
        if (s->processes[i].device_index == dev && s->processes[i].pid == pid)
            return &s->processes[i];
    return NULL;
}

/* lost.scn: GPU 1 answers GPU_IS_LOST after 25 calls (during sample 1).
 * GPU 0: memory.used 1073741824, process 5000100 with 536870912 bytes. */
static void test_lost_gpu_stays_lost(void **state)
{
    (void)state;
    gw_monitor *m = open_with("lost.scn");
    for (int round = 0; round < 3; round++) {
        gw_snapshot *s = sample(m);
        assert_int_equal(s->n_devices, 2);
        assert_int_equal(s->devices[0].state, GW_DEVICE_OK);
        assert_true(gw_sample_has(&s->devices[0].sample, GW_METRIC_MEM_USED));
        assert_int_equal(s->devices[0].sample.mem_used, 1073741824ull);
        assert_int_equal(s->devices[1].state, GW_DEVICE_LOST);
        assert_non_null(strstr(s->devices[1].state_reason, "GPU is lost (15)"));
        assert_int_equal(s->devices[1].sample.valid, 0);
        const gw_process *p = find_proc(s, 0, 5000100);
        assert_non_null(p);
        assert_int_equal(p->gpu_memory, 536870912ull);
        assert_null(find_proc(s, 1, 5000200)); /* a lost GPU lists no process */
        assert_int_equal(nvml_source(s)->state, GW_SOURCE_DEGRADED);
        gw_snapshot_release(s);
    }
}

/* two.scn: NOT_SUPPORTED answers in sample 1, not asked again in sample 2.
 * GPU 0 lacks: mig (1). GPU 1 lacks: util.encoder, util.decoder,
 * power.usage, power.limit, energy, clock.sm, clock.graphics, clock.mem,
 * fan, clock_events, mig (11). Both lack the health counters: PCIe replays,
 * ECC (one call: the second is not made), remapped rows (3 each, 6). Sample
 * 1 also sized GPU 0's compute list (count=0 query, then fill: 1 extra
 * call) while sample 2 reuses the buffer. So sample 2 makes 12 + 6 + 1 calls
 * fewer, and every value is the same. */
static void test_unsupported_not_asked_again(void **state)
{
    (void)state;
    gw_monitor *m = open_with("two.scn");
    gw_snapshot *s1 = sample(m);
    gw_snapshot *s2 = sample(m);
    assert_int_equal(nvml_source(s1)->calls - nvml_source(s2)->calls, 12 + 6 + 1);
    for (int k = 0; k < 2; k++) {
        gw_snapshot *s = k ? s2 : s1;
        assert_int_equal(s->n_devices, 2);
        assert_int_equal(s->devices[0].sample.temp_mc, 38000);
        assert_int_equal(s->devices[0].sample.power_mw, 35123);
        assert_int_equal(s->devices[0].sample.mem_used, 4294967296ull);
        assert_false(gw_sample_has(&s->devices[0].sample, GW_METRIC_MIG_MODE));
        assert_true(gw_sample_has(&s->devices[1].sample, GW_METRIC_TEMP));
        assert_int_equal(s->devices[1].sample.temp_mc, 33000);
        assert_false(gw_sample_has(&s->devices[1].sample, GW_METRIC_POWER));
        assert_false(gw_sample_has(&s->devices[1].sample, GW_METRIC_FAN));
        assert_false(gw_sample_has(&s->devices[1].sample, GW_METRIC_CLOCK_SM));
        assert_int_equal(s->devices[1].sample.pcie_width, 8);
        /* GPU 0 is registered for Xid events and none came; GPU 1 refused */
        assert_true(gw_sample_has(&s->devices[0].sample, GW_METRIC_XID));
        assert_int_equal(s->devices[0].sample.xid_last, 0);
        assert_int_equal(s->devices[0].sample.xid_events, 0);
        assert_false(gw_sample_has(&s->devices[1].sample, GW_METRIC_XID));
        assert_false(gw_sample_has(&s->devices[1].sample, GW_METRIC_ECC_ERRORS));
    }
    gw_snapshot_release(s1);
    gw_snapshot_release(s2);
}

/* one.scn: pid 5004242's newest sample (ts 1700000000500000) says sm 75; pid
 * 5005150's sample is garbage (sm 4294967295) and its memory unavailable. Once
 * read, lastSeen is the newest timestamp: sample 2 gets NOT_FOUND (no newer
 * samples), which is not an error: NVML only returns samples of busy
 * processes, so every listed process was idle (0 %) since sample 1 — 5005150
 * too: its garbage sample is older than lastSeen. */
static void test_process_util_cursor(void **state)
{
    (void)state;
    gw_monitor *m = open_with("one.scn");
    gw_snapshot *s1 = sample(m);
    const gw_process *p = find_proc(s1, 0, 5004242);
    assert_non_null(p);
    assert_true(gw_process_has(p, GW_PROC_SM_UTIL));
    assert_true(p->sm_util == 75.0 && p->mem_util == 33.0);
    assert_int_equal(p->gpu_memory, 17179869184ull);
    p = find_proc(s1, 0, 5005150);
    assert_non_null(p);
    assert_false(gw_process_has(p, GW_PROC_SM_UTIL));
    assert_false(gw_process_has(p, GW_PROC_GPU_MEMORY));
    assert_null(find_proc(s1, 0, 5099999)); /* sampled, but not on the GPU */
    gw_snapshot *s2 = sample(m);
    assert_int_equal(nvml_source(s2)->state, GW_SOURCE_OK);
    p = find_proc(s2, 0, 5004242);
    assert_non_null(p);
    assert_true(gw_process_has(p, GW_PROC_SM_UTIL));
    assert_true(p->sm_util == 0.0 && p->mem_util == 0.0);
    assert_true(gw_process_has(p, GW_PROC_GPU_MEMORY));
    p = find_proc(s2, 0, 5005150);
    assert_non_null(p);
    assert_true(gw_process_has(p, GW_PROC_SM_UTIL));
    assert_true(p->sm_util == 0.0);
    assert_int_equal(s2->n_processes, 4); /* 5004242 (both lists), 5005150, 5000777, 5031337 */
    gw_snapshot_release(s1);
    gw_snapshot_release(s2);
}

/* transient.scn: GPU 0 answers UNKNOWN to one call of sample 1: lost in
 * sample 1, whole in sample 2 (memory.used 2000000000, temp 52 C, power
 * 180000 mW, process 5000900 with 2000000000 bytes). */
/* one.scn's health lines: the counters as the scenario gives them, and the
 * two queued Xids (63, then 94) taken by the first sample: last 94, 2 seen.
 * They stay in later samples (nothing new arrives); a real GPU adds more. */
static void test_health_counters_and_xid_events(void **state)
{
    (void)state;
    gw_monitor *m = open_with("one.scn");
    for (int k = 0; k < 2; k++) {
        gw_snapshot *s = sample(m);
        const gw_sample *x = &s->devices[0].sample;
        assert_true(gw_sample_has(x, GW_METRIC_PCIE_REPLAYS));
        assert_int_equal(x->pcie_replays, 3);
        assert_true(gw_sample_has(x, GW_METRIC_ECC_ERRORS));
        assert_int_equal(x->ecc_corrected, 17);
        assert_int_equal(x->ecc_uncorrected, 0);
        assert_true(gw_sample_has(x, GW_METRIC_ROW_REMAP));
        assert_int_equal(x->remap_correctable, 2);
        assert_int_equal(x->remap_uncorrectable, 1);
        assert_true(x->remap_pending);
        assert_false(x->remap_failure);
        assert_true(gw_sample_has(x, GW_METRIC_XID));
        assert_int_equal(x->xid_last, 94);
        assert_int_equal(x->xid_events, 2);
        gw_snapshot_release(s);
    }
}

static void test_unknown_is_retried(void **state)
{
    (void)state;
    gw_monitor *m = open_with("transient.scn");
    gw_snapshot *s1 = sample(m);
    assert_int_equal(s1->n_devices, 1);
    assert_int_equal(s1->devices[0].state, GW_DEVICE_LOST);
    assert_non_null(strstr(s1->devices[0].state_reason, "Unknown Error (999)"));
    assert_int_equal(s1->devices[0].sample.valid, 0);
    gw_snapshot *s2 = sample(m);
    assert_int_equal(s2->devices[0].state, GW_DEVICE_OK);
    assert_string_equal(s2->devices[0].state_reason, "");
    assert_int_equal(s2->devices[0].sample.mem_used, 2000000000ull);
    assert_int_equal(s2->devices[0].sample.temp_mc, 52000);
    assert_int_equal(s2->devices[0].sample.power_mw, 180000);
    const gw_process *p = find_proc(s2, 0, 5000900);
    assert_non_null(p);
    assert_int_equal(p->gpu_memory, 2000000000ull);
    assert_int_equal(nvml_source(s2)->state, GW_SOURCE_OK);
    gw_snapshot_release(s1);
    gw_snapshot_release(s2);
}

/* initfail.scn: nvmlInit_v2 answers DRIVER_NOT_LOADED (9). */
static void test_init_failure(void **state)
{
    (void)state;
    gw_monitor *m = open_with("initfail.scn");
    gw_snapshot *s = sample(m);
    const gw_source_status *st = nvml_source(s);
    assert_int_equal(st->state, GW_SOURCE_UNAVAILABLE);
    assert_int_equal(st->error, GW_EDRIVER);
    assert_string_equal(st->message, "NVML: nvmlInit_v2 failed: Driver Not Loaded (9)");
    assert_true(s->cpu_only);
    assert_non_null(strstr(s->cpu_only_reason, "Driver Not Loaded"));
    gw_snapshot_release(s);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One run of the back-off check below. The monitor reads its clock at the
 * start of each sample; this side brackets every sample with its own
 * readings, so "inside the back-off" is known for certain only while the
 * whole span since the attempt's start is under it. Returns false when this
 * machine was too slow to tell (the caller runs it again); a wrong answer
 * inside a span that is certain fails the test. */
static bool backoff_run(const char *log)
{
    gw_monitor *m = open_with("initfail.scn");
    setenv("GPUWATCH_FAKE_NVML_CALL_LOG", log, 1);
    unlink(log);
    int64_t b0 = mono_ns();
    gw_snapshot *s = sample(m); /* first attempt */
    gw_snapshot_release(s);
    int64_t a0 = mono_ns();
    assert_int_equal(access(log, F_OK), 0);
    unlink(log);
    bool certain = true;
    for (int i = 0; i < 5 && certain; i++) { /* inside the 1 s back-off: no attempt */
        s = sample(m);
        certain = mono_ns() - b0 < 1000000000;
        if (certain) {
            assert_int_equal(nvml_source(s)->state, GW_SOURCE_UNAVAILABLE);
            assert_non_null(strstr(nvml_source(s)->message, "Driver Not Loaded"));
            assert_int_equal(access(log, F_OK), -1);
        }
        gw_snapshot_release(s);
    }
    if (certain) {
        while (mono_ns() - a0 < 1100000000) /* back-off expired: one new attempt */
            usleep(10 * 1000);
        int64_t b1 = mono_ns();
        s = sample(m);
        gw_snapshot_release(s);
        assert_int_equal(access(log, F_OK), 0);
        unlink(log);
        s = sample(m); /* next back-off is 2 s: no attempt right away */
        gw_snapshot_release(s);
        certain = mono_ns() - b1 < 2000000000;
        if (certain)
            assert_int_equal(access(log, F_OK), -1);
    }
    unsetenv("GPUWATCH_FAKE_NVML_CALL_LOG");
    gw_monitor_close(m);
    g_open = NULL;
    unlink(log);
    return certain;
}

/* initfail.scn again: a failed open is remembered and retried only after the
 * back-off (1 s, then doubling), never per sample. Each open attempt loads
 * and unloads the library, and the fake writes its call log when unloaded:
 * the log appearing is the observable "an init was attempted". */
static void test_init_failure_backs_off(void **state)
{
    (void)state;
    char log[] = "/tmp/gw_nvml_backoff_XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    int runs = 0;
    while (!backoff_run(log))
        assert_true(++runs < 20); /* never certain in 20 runs: report it */
}

/* Closing the monitor unloads the fake library, so the next test's scenario
 * is read afresh even after a failed test. */
static int teardown(void **state)
{
    (void)state;
    gw_monitor_close(g_open);
    g_open = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s FAKE_LIB SCENARIO_DIR\n", argv[0]);
        return 2;
    }
    g_lib = argv[1];
    g_scenarios = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_lost_gpu_stays_lost, teardown),
        cmocka_unit_test_teardown(test_unsupported_not_asked_again, teardown),
        cmocka_unit_test_teardown(test_process_util_cursor, teardown),
        cmocka_unit_test_teardown(test_health_counters_and_xid_events, teardown),
        cmocka_unit_test_teardown(test_unknown_is_retried, teardown),
        cmocka_unit_test_teardown(test_init_failure, teardown),
        cmocka_unit_test_teardown(test_init_failure_backs_off, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
