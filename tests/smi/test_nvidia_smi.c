/* test_nvidia_smi.c — the nvidia-smi CSV parsers, and the backend driven
 * through its ops table against fixture nvidia-smi programs on PATH (and the
 * real nvidia-smi on this driverless machine). Expected values are the
 * fixture's own numbers (tests/smi/fixtures/fake-nvidia-smi), converted here.
 */
#include "backends/backend.h"
#include "backends/nvidia_smi.h"
#include "core/snapshot_build.h"
#include "core/util.h"
#include "smi_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

extern const gw__backend_ops gw__backend_nvidia_smi;

#define MIB 1048576ull
#define HAS(d, m) gw_sample_has(&(d)->sample, GW_METRIC_##m)

static const char LINE0[] =
    "0, 00000000:17:00.0, GPU-11111111-2222-3333-4444-555555555555, 535.104.05, 81559, 579, "
    "40963, 40017, 87, 45, 61, 312.47, 700.00, 1980, 1965, 2619, 0, P0, NVIDIA H100 80GB HBM3";

/* ---------------------------------------------------------------- parsers */

static void test_parse_one_gpu(void **state)
{
    (void)state;
    gw_device *d;
    size_t n;
    gw_error err;
    assert_int_equal(gw__nvsmi_parse_gpus(LINE0, strlen(LINE0), &d, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d->info.vendor, GW_VENDOR_NVIDIA);
    assert_string_equal(d->info.source, "nvidia-smi");
    assert_int_equal(d->info.source_index, 0);
    assert_string_equal(d->info.pci_bus_id, "00000000:17:00.0");
    assert_string_equal(d->info.uuid, "GPU-11111111-2222-3333-4444-555555555555");
    assert_string_equal(d->info.driver_version, "535.104.05");
    assert_string_equal(d->info.name, "NVIDIA H100 80GB HBM3");
    assert_true(gw_info_has(&d->info, GW_INFO_MEMORY_TOTAL));
    assert_int_equal(d->info.memory_total, 81559 * MIB);
    assert_int_equal(d->sample.mem_total, 81559 * MIB);
    assert_int_equal(d->sample.mem_reserved, 579 * MIB);
    assert_int_equal(d->sample.mem_used, 40963 * MIB);
    assert_int_equal(d->sample.mem_free, 40017 * MIB);
    assert_true(d->sample.util_gpu == 87.0);
    assert_true(d->sample.util_mem == 45.0);
    assert_int_equal(d->sample.temp_mc, 61000);
    assert_int_equal(d->sample.power_mw, 312470);
    assert_int_equal(d->sample.power_limit_mw, 700000);
    assert_int_equal(d->sample.clock_sm_mhz, 1980);
    assert_int_equal(d->sample.clock_graphics_mhz, 1965);
    assert_int_equal(d->sample.clock_mem_mhz, 2619);
    assert_true(HAS(d, FAN) && d->sample.fan_pct == 0.0); /* a real 0 stays a 0 */
    assert_true(HAS(d, PSTATE));
    assert_int_equal(d->sample.pstate, 0);
    free(d);
}

static void test_bracket_values_are_absent(void **state)
{
    (void)state;
    const char *line = "3, [N/A], GPU-x, 535.1, 16384, [N/A], 2048, 14336, 5, [Not Supported], "
                       "[N/A], [Insufficient Permissions], [Not Supported], 1005, [Unknown Error], "
                       "5001, N/A, [N/A], Tesla T4\r\n";
    gw_device *d;
    size_t n;
    gw_error err;
    assert_int_equal(gw__nvsmi_parse_gpus(line, strlen(line), &d, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d->info.pci_bus_id, "");
    assert_string_equal(d->info.name, "Tesla T4"); /* the \r is not part of it */
    assert_true(HAS(d, MEM_TOTAL) && HAS(d, MEM_USED) && HAS(d, MEM_FREE));
    assert_false(HAS(d, MEM_RESERVED));
    assert_true(HAS(d, UTIL_GPU));
    assert_false(HAS(d, UTIL_MEM));
    assert_false(HAS(d, TEMP));
    assert_false(HAS(d, POWER));
    assert_false(HAS(d, POWER_LIMIT));
    assert_true(HAS(d, CLOCK_SM));
    assert_false(HAS(d, CLOCK_GRAPHICS));
    assert_true(HAS(d, CLOCK_MEM));
    assert_false(HAS(d, FAN));
    assert_false(HAS(d, PSTATE));
    /* absent fields hold 0 but are never valid */
    assert_int_equal(d->sample.power_mw, 0);
    free(d);
}

static void expect_error(const char *text, int code, const char *const *needles)
{
    gw_device *d = (gw_device *)1;
    size_t n = 99;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw__nvsmi_parse_gpus(text, strlen(text), &d, &n, &err);
    if (rc != code)
        fail_msg("rc %d for '%s': %s", rc, text, err.message);
    assert_null(d);
    assert_int_equal(n, 0);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.message, needles[i]))
            fail_msg("'%s' not in '%s'", needles[i], err.message);
}

static void test_errors_name_line_and_field(void **state)
{
    (void)state;
    char text[2048];
    /* a good line, then one with too few fields */
    snprintf(text, sizeof text, "%s\n1, 00000000:65:00.0, GPU-y\n", LINE0);
    expect_error(text, GW_EPARSE,
                 (const char *const[]){"nvidia-smi", "line 2", "expected 19", "found 3", NULL});
    /* a non-number in memory.used */
    snprintf(text, sizeof text,
             "0, 00000000:17:00.0, GPU-x, 535, 81559, 579, lots, 40017, 87, 45, 61, 312.47, "
             "700.00, 1980, 1965, 2619, 0, P0, X\n");
    expect_error(text, GW_EPARSE,
                 (const char *const[]){"line 1", "field 7", "memory.used", "'lots'", NULL});
    /* numbers that are not plain decimals */
    const char *bad[] = {"-5", "1e3", " 5", "0x10", "5.", ".5", "99999999999999999999999"};
    for (size_t i = 0; i < GW__ARRAY_LEN(bad); i++) {
        snprintf(text, sizeof text,
                 "0, 00000000:17:00.0, GPU-x, 535, 81559, 579, 1, 40017, %s, 45, 61, 312.47, "
                 "700.00, 1980, 1965, 2619, 0, P0, X\n",
                 bad[i]);
        expect_error(text, GW_EPARSE, (const char *const[]){"utilization.gpu", NULL});
    }
    /* utilisation over 100 %, a bad pstate, a bad bus id, a missing index */
    snprintf(text, sizeof text,
             "0, 00000000:17:00.0, GPU-x, 535, 81559, 579, 1, 40017, 101, 45, 61, 312.47, "
             "700.00, 1980, 1965, 2619, 0, P0, X\n");
    expect_error(text, GW_EPARSE, (const char *const[]){"utilization.gpu", "'101'", NULL});
    snprintf(text, sizeof text,
             "0, 00000000:17:00.0, GPU-x, 535, 81559, 579, 1, 40017, 1, 45, 61, 312.47, "
             "700.00, 1980, 1965, 2619, 0, Q0, X\n");
    expect_error(text, GW_EPARSE, (const char *const[]){"pstate", NULL});
    snprintf(text, sizeof text,
             "0, not-a-bus, GPU-x, 535, 81559, 579, 1, 40017, 1, 45, 61, 312.47, "
             "700.00, 1980, 1965, 2619, 0, P0, X\n");
    expect_error(text, GW_EPARSE, (const char *const[]){"pci.bus_id", NULL});
    snprintf(text, sizeof text,
             "[N/A], 00000000:17:00.0, GPU-x, 535, 81559, 579, 1, 40017, 1, 45, 61, 312.47, "
             "700.00, 1980, 1965, 2619, 0, P0, X\n");
    expect_error(text, GW_EPARSE, (const char *const[]){"index", "missing", NULL});
    /* a NUL byte inside the output */
    gw_device *d;
    size_t n;
    gw_error err;
    assert_int_equal(gw__nvsmi_parse_gpus("0,\0 x", 5, &d, &n, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "NUL"));
}

static void test_line_cap(void **state)
{
    (void)state;
    size_t lines = GW__NVSMI_MAX_GPUS + 1, cap = lines * (sizeof LINE0 + 1) + 1;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < lines; i++) {
        memcpy(text + len, LINE0, sizeof LINE0 - 1);
        len += sizeof LINE0 - 1;
        text[len++] = '\n';
    }
    gw_device *d;
    size_t n;
    gw_error err;
    assert_int_equal(gw__nvsmi_parse_gpus(text, len, &d, &n, &err), GW_ERANGE);
    /* exactly the cap is fine */
    len -= sizeof LINE0;
    assert_int_equal(gw__nvsmi_parse_gpus(text, len, &d, &n, &err), GW_OK);
    assert_int_equal(n, GW__NVSMI_MAX_GPUS);
    free(d);
    free(text);
}

/* Every prefix of valid output, copied to an exact-size heap block so that
 * ASan sees any read past its end: parses or fails cleanly. */
static void test_every_prefix(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text, "%s\n%s\n", LINE0, LINE0);
    size_t full = strlen(text);
    for (size_t len = 0; len <= full; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, text, len);
        gw_device *d;
        size_t n;
        gw_error err;
        int rc = gw__nvsmi_parse_gpus(copy, len, &d, &n, &err);
        assert_true(rc == GW_OK || rc == GW_EPARSE);
        if (rc == GW_OK)
            free(d);
        gw__nvsmi_app *a;
        rc = gw__nvsmi_parse_apps(copy, len, &a, &n, &err);
        assert_true(rc == GW_OK || rc == GW_EPARSE);
        if (rc == GW_OK)
            free(a);
        free(copy);
    }
}

static void test_parse_apps(void **state)
{
    (void)state;
    const char *text = "GPU-a, 4242, 40000, /usr/bin/python3\n"
                       "GPU-b, 5151, [N/A], ./train, with, commas\n"
                       "\n";
    gw__nvsmi_app *a;
    size_t n;
    gw_error err;
    assert_int_equal(gw__nvsmi_parse_apps(text, strlen(text), &a, &n, &err), GW_OK);
    assert_int_equal(n, 2);
    assert_string_equal(a[0].gpu_uuid, "GPU-a");
    assert_int_equal(a[0].pid, 4242);
    assert_true(a[0].has_memory);
    assert_int_equal(a[0].memory, 40000 * MIB);
    assert_string_equal(a[0].process_name, "/usr/bin/python3");
    assert_false(a[1].has_memory);
    assert_string_equal(a[1].process_name, "./train, with, commas");
    free(a);
    const char *bad = "GPU-a, -1, 5, x\n";
    assert_int_equal(gw__nvsmi_parse_apps(bad, strlen(bad), &a, &n, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "--query-compute-apps line 1, field 2 (pid)"));
    assert_int_equal(gw__nvsmi_parse_apps("", 0, &a, &n, &err), GW_OK);
    assert_int_equal(n, 0);
    assert_null(a);
}

/* ---------------------------------------------------------------- backend */

typedef struct fx {
    char dir[64];  /* scratch folder: empty proc root, log, flags */
    char proc[128];
    char log[128];
    char flag[128];
    char pids[128];
    gw__config cfg;
    void *state;
    gw__collect c;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gw-nvsmi-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    mkdir(f->proc, 0700);
    snprintf(f->log, sizeof f->log, "%s/log", f->dir);
    snprintf(f->flag, sizeof f->flag, "%s/hang", f->dir);
    snprintf(f->pids, sizeof f->pids, "%s/pids", f->dir);
    setenv("GW_FIXTURE_LOG", f->log, 1);
    setenv("GW_FIXTURE_HANG_FLAG", f->flag, 1);
    setenv("GW_FIXTURE_PIDS", f->pids, 1);
    gw__strlcpy(f->cfg.proc_root, f->proc, sizeof f->cfg.proc_root);
    gw__strlcpy(f->cfg.sys_root, f->dir, sizeof f->cfg.sys_root);
    gw__strlcpy(f->cfg.nvml_library, "/nonexistent", sizeof f->cfg.nvml_library);
    f->cfg.call_timeout_ms = SMI_NO_DEADLINE_MS;
    f->cfg.processes = true;
    gw__collect_init(&f->c);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (f->state)
        gw__backend_nvidia_smi.close(f->state);
    gw__collect_release(&f->c);
    unlink(f->log);
    unlink(f->flag);
    unlink(f->pids);
    rmdir(f->proc);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int log_lines(const fx *f)
{
    FILE *fp = fopen(f->log, "r");
    if (!fp)
        return 0;
    int n = 0, ch;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

static void open_ok(fx *f)
{
    gw_error err;
    gw_error_clear(&err);
    int rc = gw__backend_nvidia_smi.open(&f->state, &f->cfg, &err);
    if (rc)
        fail_msg("open: %s", err.message);
}

static gw_source_status status_of(fx *f)
{
    gw_source_status st;
    memset(&st, 0, sizeof st);
    gw__backend_nvidia_smi.status(f->state, &st);
    return st;
}

/* The two fixture GPUs as the fixture prints them. */
static void check_normal_gpus(gw__collect *c, size_t first)
{
    gw_device *a = gw__collect_device(c, first), *b = gw__collect_device(c, first + 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a->info.uuid, "GPU-11111111-2222-3333-4444-555555555555");
    assert_int_equal(a->sample.mem_used, 40963 * MIB);
    assert_int_equal(a->sample.power_mw, 312470);
    assert_string_equal(b->info.name, "NVIDIA RTX A6000, custom, build");
    assert_string_equal(b->info.pci_bus_id, "00000000:65:00.0");
    assert_int_equal(b->sample.mem_total, 49140 * MIB);
    assert_int_equal(b->sample.mem_free, 47618 * MIB);
    assert_int_equal(b->sample.temp_mc, 38000);
    assert_int_equal(b->sample.power_mw, 27910);
    assert_int_equal(b->sample.power_limit_mw, 300000);
    assert_true(b->sample.fan_pct == 30.0);
    assert_int_equal(b->sample.pstate, 8);
}

static void test_backend_normal(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-normal");
    open_ok(f);
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&f->c), 2);
    check_normal_gpus(&f->c, 0);
    assert_int_equal(gw__collect_device(&f->c, 0)->state, GW_DEVICE_OK);
    assert_true(gw__collect_device(&f->c, 0)->sampled_at_ns > 0);
    /* processes: the ghost on an unknown GPU is dropped */
    assert_int_equal(f->c.n_processes, 3);
    assert_int_equal(f->c.processes[0].pid, 4242);
    assert_int_equal(f->c.processes[0].device_index, 0);
    assert_int_equal(f->c.processes[0].gpu_memory, 40000 * MIB);
    assert_string_equal(f->c.processes[0].name, "python3");
    assert_int_equal(f->c.processes[1].pid, 4243);
    assert_int_equal(f->c.processes[1].gpu_memory, 900 * MIB);
    assert_int_equal(f->c.processes[2].pid, 5151);
    assert_int_equal(f->c.processes[2].device_index, 1);
    assert_false(gw_process_has(&f->c.processes[2], GW_PROC_GPU_MEMORY));
    gw_source_status st = status_of(f);
    assert_int_equal(st.state, GW_SOURCE_OK);
    assert_int_equal(st.calls, 2);
    assert_string_equal(st.driver_version, "535.104.05");
    assert_int_equal(log_lines(f), 2); /* one --query-gpu, one --query-compute-apps */
    assert_true(smi_no_children());
}

static void test_backend_not_run_when_nvml_has_gpus(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-normal");
    open_ok(f);
    gw_device *d = gw__collect_add_device(&f->c);
    d->info.vendor = GW_VENDOR_NVIDIA;
    gw__strlcpy(d->info.source, "nvml", sizeof d->info.source);
    gw__strlcpy(d->info.pci_bus_id, "00000000:17:00.0", sizeof d->info.pci_bus_id);
    gw_error err;
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&f->c), 1);
    assert_int_equal(f->c.n_processes, 0);
    assert_int_equal(log_lines(f), 0); /* nvidia-smi was not even started */
    gw_source_status st = status_of(f);
    assert_int_equal(st.state, GW_SOURCE_OK);
    assert_int_equal(st.calls, 0);
    assert_non_null(strstr(st.message, "nvml"));
}

static void test_backend_skips_known_bus_ids(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-normal");
    open_ok(f);
    /* another source (not NVIDIA-labelled) already holds GPU 0's address,
     * written the sysfs way */
    gw_device *d = gw__collect_add_device(&f->c);
    gw__strlcpy(d->info.source, "other", sizeof d->info.source);
    gw__strlcpy(d->info.pci_bus_id, "0000:17:00.0", sizeof d->info.pci_bus_id);
    gw_error err;
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&f->c), 2);
    assert_string_equal(gw__collect_device(&f->c, 1)->info.uuid,
                        "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    /* only the kept GPU's process, pointing at its snapshot index */
    assert_int_equal(f->c.n_processes, 1);
    assert_int_equal(f->c.processes[0].pid, 5151);
    assert_int_equal(f->c.processes[0].device_index, 1);
    gw_source_status st = status_of(f);
    assert_non_null(strstr(st.message, "1 GPU skipped"));
}

static void test_backend_hang_makes_devices_stale(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-normal");
    /* one backend for the good sample and the hang: the good one must
     * finish within the short deadline too, or is tried with a longer one */
    unsigned ms = SMI_HANG_MS;
    gw_error err;
    int rc;
    do {
        if (f->state)
            gw__backend_nvidia_smi.close(f->state);
        f->state = NULL;
        gw__collect_release(&f->c);
        f->cfg.call_timeout_ms = ms;
        open_ok(f);
        rc = gw__backend_nvidia_smi.sample(f->state, &f->c, &err);
    } while (smi_retry_deadline(rc, GW_ETIMEDOUT, &ms));
    assert_int_equal(rc, GW_OK);
    char want[64];
    snprintf(want, sizeof want, "timed out after %u ms", ms);
    int64_t first_at = gw__collect_device(&f->c, 0)->sampled_at_ns;
    gw__collect_release(&f->c);

    FILE *flag = fopen(f->flag, "w"); /* from now on the fixture hangs */
    assert_non_null(flag);
    fclose(flag);
    gw_error_clear(&err);
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&f->c), 2);
    for (size_t i = 0; i < 2; i++) {
        gw_device *d = gw__collect_device(&f->c, i);
        assert_int_equal(d->state, GW_DEVICE_STALE);
        assert_non_null(strstr(d->state_reason, want));
        assert_true(d->sampled_at_ns == first_at); /* the age of the values shows */
    }
    check_normal_gpus(&f->c, 0); /* the last good values */
    assert_int_equal(f->c.n_processes, 0);
    gw_source_status st = status_of(f);
    assert_int_equal(st.state, GW_SOURCE_DEGRADED);
    assert_int_equal(st.error, GW_ETIMEDOUT);
    assert_int_equal(st.calls, 1); /* no process call after a timed-out GPU call */
    assert_true(smi_hang_left_nothing(f->pids));
    assert_true(smi_no_children());
}

static void test_backend_hang_without_history_fails(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-hang");
    f->cfg.call_timeout_ms = SMI_HANG_MS;
    open_ok(f);
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_ETIMEDOUT);
    assert_non_null(strstr(err.message, "nvidia-smi: timed out after 400 ms"));
    assert_int_equal(gw__collect_device_count(&f->c), 0);
    assert_true(smi_hang_left_nothing(f->pids));
    assert_true(smi_no_children());
}

static void test_backend_garbage_fails_with_reason(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-garbage");
    open_ok(f);
    gw_error err;
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "memory.used"));
    assert_int_equal(gw__collect_device_count(&f->c), 0);
}

static void test_backend_exit_codes(void **state)
{
    fx *f = *state;
    static const struct {
        const char *scenario;
        int rc, error;
        gw_source_state st;
        const char *text;
    } cases[] = {
        {"nv-noperm", GW_EPERM, GW_EPERM, GW_SOURCE_OK, "insufficient permissions (exit 4)"},
        {"nv-lost", GW_ELOST, GW_ELOST, GW_SOURCE_OK, "fallen off the bus (exit 15)"},
        {"nv-nodevice", GW_OK, GW_ENODEV, GW_SOURCE_UNAVAILABLE, "no NVIDIA GPU found (exit 6)"},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(cases); i++) {
        smi_use_fixture(cases[i].scenario);
        void *st = NULL;
        gw_error err;
        gw_error_clear(&err);
        assert_int_equal(gw__backend_nvidia_smi.open(&st, &f->cfg, &err), GW_OK);
        gw__collect c;
        gw__collect_init(&c);
        int rc = gw__backend_nvidia_smi.sample(st, &c, &err);
        assert_int_equal(rc, cases[i].rc);
        gw_source_status s;
        memset(&s, 0, sizeof s);
        gw__backend_nvidia_smi.status(st, &s);
        const char *msg = rc ? err.message : s.message;
        if (!strstr(msg, cases[i].text))
            fail_msg("%s: '%s'", cases[i].scenario, msg);
        if (rc == GW_OK) {
            assert_int_equal(s.state, cases[i].st);
            assert_int_equal(s.error, cases[i].error);
        }
        assert_int_equal(gw__collect_device_count(&c), 0);
        gw__collect_release(&c);
        gw__backend_nvidia_smi.close(st);
    }
}

static void test_backend_real_nvidia_smi_without_driver(void **state)
{
    fx *f = *state;
    const char *real = getenv("NVIDIA_SMI_REAL");
    if (!real || access(real, X_OK) != 0)
        skip(); /* .deps not unpacked (scripts/deps.sh does it) */
    smi_use_fixture("nv-real");
    open_ok(f);
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&f->c), 0);
    gw_source_status st = status_of(f);
    assert_int_equal(st.state, GW_SOURCE_UNAVAILABLE);
    assert_int_equal(st.error, GW_EDRIVER);
    assert_string_equal(st.message, "nvidia-smi: NVIDIA driver not loaded (exit 9)");
    assert_int_equal(st.calls, 1);
    /* right after, the back-off repeats the verdict without running it */
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    st = status_of(f);
    assert_int_equal(st.state, GW_SOURCE_UNAVAILABLE);
    assert_string_equal(st.message, "nvidia-smi: NVIDIA driver not loaded (exit 9)");
    assert_int_equal(st.calls, 0);
    assert_true(smi_no_children());
}

static void test_backend_old_driver_without_memory_reserved(void **state)
{
    fx *f = *state;
    smi_use_fixture("nv-old");
    open_ok(f);
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&f->c), 1);
    gw_device *d = gw__collect_device(&f->c, 0);
    assert_string_equal(d->info.name, "NVIDIA GeForce GTX 1080 Ti");
    assert_int_equal(d->sample.mem_total, 11264 * MIB);
    assert_int_equal(d->sample.mem_used, 5000 * MIB);
    assert_false(HAS(d, MEM_RESERVED)); /* the stand-in column is not reserved memory */
    assert_int_equal(d->sample.mem_reserved, 0);
    gw_source_status st = status_of(f);
    assert_int_equal(st.state, GW_SOURCE_OK);
    assert_int_equal(st.calls, 3); /* refused, legacy, processes */
    gw__collect_release(&f->c);
    assert_int_equal(gw__backend_nvidia_smi.sample(f->state, &f->c, &err), GW_OK);
    assert_int_equal(status_of(f).calls, 2); /* the legacy list is remembered */
    assert_int_equal(gw__collect_device_count(&f->c), 1);
}

static void test_backend_not_on_path(void **state)
{
    fx *f = *state;
    const char *old = getenv("PATH");
    char *saved = strdup(old);
    setenv("PATH", f->dir, 1); /* an empty folder */
    gw_error err;
    gw_error_clear(&err);
    void *st = NULL;
    assert_int_equal(gw__backend_nvidia_smi.open(&st, &f->cfg, &err), GW_ENODEV);
    assert_null(st);
    assert_string_equal(err.message, "nvidia-smi: not found on PATH");
    setenv("PATH", saved, 1);
    free(saved);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_one_gpu),
        cmocka_unit_test(test_bracket_values_are_absent),
        cmocka_unit_test(test_errors_name_line_and_field),
        cmocka_unit_test(test_line_cap),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_parse_apps),
        FX(test_backend_normal),
        FX(test_backend_not_run_when_nvml_has_gpus),
        FX(test_backend_skips_known_bus_ids),
        FX(test_backend_hang_makes_devices_stale),
        FX(test_backend_hang_without_history_fails),
        FX(test_backend_garbage_fails_with_reason),
        FX(test_backend_exit_codes),
        FX(test_backend_real_nvidia_smi_without_driver),
        FX(test_backend_old_driver_without_memory_reserved),
        FX(test_backend_not_on_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
