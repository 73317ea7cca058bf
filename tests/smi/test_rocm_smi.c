/* test_rocm_smi.c — the rocm-smi / amd-smi JSON parsers (both amd-smi
 * shapes, string values, "N/A", units), and the two backends through their
 * ops tables against fixture programs on PATH. Expected values are the
 * fixture's numbers (tests/smi/fixtures/fake-amd-tools), converted here. */
#include "backends/backend.h"
#include "backends/rocm_smi.h"
#include "core/snapshot_build.h"
#include "core/util.h"
#include "smi_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

extern const gw__backend_ops gw__backend_amd_smi;
extern const gw__backend_ops gw__backend_rocm_smi;

#define MIB 1048576ull
#define HAS(d, m) gw_sample_has(&(d)->sample, GW_METRIC_##m)

static void test_rocm_parse(void **state)
{
    (void)state;
    const char *t =
        "{\"card0\": {\"VRAM Total Memory (B)\": \"25753026560\", \"VRAM Total Used Memory (B)\": "
        "\"1073741824\", \"GPU use (%)\": \"12\", \"Temperature (Sensor edge) (C)\": \"45.5\", "
        "\"Temperature (Sensor junction) (C)\": \"N/A\", \"Average Graphics Package Power (W)\": "
        "\"35.25\", \"Fan speed (%)\": \"N/A (Secondary die)\", \"sclk clock speed:\": "
        "\"(2482Mhz)\", \"PCI Bus\": \"0000:03:00.0\", \"Card Series\": \"Navi 31\"}, "
        "\"system\": {\"Driver version\": \"6.7.0\"}}";
    gw_device *d;
    size_t n;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw__rocmsmi_parse(t, strlen(t), &d, &n, &err);
    if (rc)
        fail_msg("%s", err.message);
    assert_int_equal(n, 1);
    assert_int_equal(d->info.vendor, GW_VENDOR_AMD);
    assert_string_equal(d->info.source, "rocm-smi");
    assert_int_equal(d->info.source_index, 0);
    assert_string_equal(d->info.name, "Navi 31");
    assert_string_equal(d->info.pci_bus_id, "0000:03:00.0");
    assert_int_equal(d->sample.mem_total, 25753026560ull);
    assert_int_equal(d->sample.mem_used, 1073741824ull);
    assert_true(HAS(d, MEM_FREE)); /* derived: total - used */
    assert_int_equal(d->sample.mem_free, 25753026560ull - 1073741824ull);
    assert_true(d->sample.util_gpu == 12.0);
    assert_int_equal(d->sample.temp_mc, 45500);
    assert_false(HAS(d, TEMP_JUNCTION));
    assert_int_equal(d->sample.power_mw, 35250);
    assert_false(HAS(d, FAN));
    assert_false(HAS(d, UTIL_MEM)); /* key missing: absent */
    assert_int_equal(d->sample.clock_graphics_mhz, 2482);
    assert_false(HAS(d, CLOCK_MEM));
    free(d);
}

static void expect_rocm_error(const char *t, const char *needle)
{
    gw_device *d;
    size_t n;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__rocmsmi_parse(t, strlen(t), &d, &n, &err), GW_EPARSE);
    assert_null(d);
    if (!strstr(err.message, needle))
        fail_msg("'%s' not in '%s'", needle, err.message);
}

static void test_rocm_errors(void **state)
{
    (void)state;
    expect_rocm_error("{\"card0\": {\"GPU use (%)\": \"lots\"}}", "card0: \"GPU use (%)\"");
    expect_rocm_error("{\"card0\": {\"GPU use (%)\": \"12\"", "not valid JSON");
    expect_rocm_error("[1, 2]", "expected a JSON object");
    expect_rocm_error("{\"card0\": 5}", "card0: not an object");
    expect_rocm_error("{\"cardX\": {}}", "unexpected key");
    expect_rocm_error("{\"card0\": {\"GPU use (%)\": \"150\"}}", "out of range");
    expect_rocm_error("{\"card0\": {\"PCI Bus\": \"elsewhere\"}}", "PCI address");
    expect_rocm_error("nothing here", "no JSON");
    expect_rocm_error("{\"card0\": {\"GPU use (%)\": \"1\", \"GPU use (%)\": \"2\"}}",
                      "not valid JSON"); /* duplicate keys refused */
}

static void test_amd_metric_list_shape(void **state)
{
    (void)state;
    const char *t = "[{\"gpu\": 0, \"usage\": {\"gfx_activity\": {\"value\": 67, \"unit\": \"%\"}},"
                    " \"power\": {\"socket_power\": {\"value\": 140.5, \"unit\": \"W\"}},"
                    " \"clock\": {\"gfx_0\": {\"clk\": {\"value\": 2100, \"unit\": \"MHz\"}},"
                    "             \"mem_0\": \"N/A\"},"
                    " \"temperature\": {\"edge\": \"N/A\", \"hotspot\": {\"value\": 58, \"unit\": "
                    "\"C\"}},"
                    " \"fan\": {\"rpm\": {\"value\": 900, \"unit\": \"RPM\"}},"
                    " \"mem_usage\": {\"total_vram\": {\"value\": 196592, \"unit\": \"MB\"},"
                    "   \"used_vram\": {\"value\": 1, \"unit\": \"GB\"},"
                    "   \"total_gtt\": {\"value\": 1024, \"unit\": \"KB\"}}}]";
    gw_device *d;
    size_t n;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw__amdsmi_parse_metric(t, strlen(t), &d, &n, &err);
    if (rc)
        fail_msg("%s", err.message);
    assert_int_equal(n, 1);
    assert_string_equal(d->info.source, "amd-smi");
    assert_true(d->sample.util_gpu == 67.0);
    assert_int_equal(d->sample.power_mw, 140500);
    assert_int_equal(d->sample.clock_graphics_mhz, 2100);
    assert_false(HAS(d, CLOCK_MEM));
    assert_false(HAS(d, TEMP));
    assert_int_equal(d->sample.temp_junction_mc, 58000);
    assert_int_equal(d->sample.fan_rpm, 900);
    assert_int_equal(d->sample.mem_total, 196592 * MIB);
    assert_int_equal(d->sample.mem_used, 1024 * MIB);
    assert_int_equal(d->sample.gtt_total, 1024 * 1024);
    free(d);
}

static void test_amd_metric_gpu_data_shape_strings(void **state)
{
    (void)state;
    const char *t = "{\"gpu_data\": [{\"gpu\": 3, \"usage\": {\"gfx_activity\": {\"value\": \"44\","
                    " \"unit\": \"%\"}, \"umc_activity\": {\"value\": \"N/A\", \"unit\": \"%\"}},"
                    " \"temperature\": {\"edge\": {\"value\": \"41\", \"unit\": \"C\"}},"
                    " \"mem_usage\": {\"total_vram\": {\"value\": \"65520\", \"unit\": \"MB\"}}}]}";
    gw_device *d;
    size_t n;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw__amdsmi_parse_metric(t, strlen(t), &d, &n, &err);
    if (rc)
        fail_msg("%s", err.message);
    assert_int_equal(n, 1);
    assert_int_equal(d->info.source_index, 3);
    assert_true(d->sample.util_gpu == 44.0);
    assert_false(HAS(d, UTIL_MEM));
    assert_int_equal(d->sample.temp_mc, 41000);
    assert_int_equal(d->sample.mem_total, 65520 * MIB);
    free(d);

    /* errors: wrong unit, no gpu index, wrong shape */
    const char *bad[][2] = {
        {"[{\"gpu\": 0, \"temperature\": {\"edge\": {\"value\": 41, \"unit\": \"F\"}}}]",
         "temperature.edge"},
        {"[{\"usage\": {}}]", "\"gpu\" index"},
        {"{\"gpus\": []}", "expected a list"},
        {"[{\"gpu\": 0, \"mem_usage\": {\"total_vram\": {\"value\": -5, \"unit\": \"MB\"}}}]",
         "negative"},
        {"[{\"gpu\": 0, \"power\": {\"socket_power\": {\"value\": [1], \"unit\": \"W\"}}}]",
         "power.socket_power"},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(bad); i++) {
        gw_error_clear(&err);
        assert_int_equal(gw__amdsmi_parse_metric(bad[i][0], strlen(bad[i][0]), &d, &n, &err),
                         GW_EPARSE);
        if (!strstr(err.message, bad[i][1]))
            fail_msg("'%s' not in '%s'", bad[i][1], err.message);
    }
}

static void test_amd_list(void **state)
{
    (void)state;
    const char *t = "{\"gpu_data\": [{\"gpu\": 0, \"bdf\": \"0000:c1:00.0\", \"uuid\": \"u0\"}]}";
    gw__amdsmi_list_entry *e;
    size_t n;
    gw_error err;
    assert_int_equal(gw__amdsmi_parse_list(t, strlen(t), &e, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].bdf, "0000:c1:00.0");
    assert_string_equal(e[0].uuid, "u0");
    free(e);
    const char *bad = "[{\"gpu\": 0, \"bdf\": \"pci-0\"}]";
    assert_int_equal(gw__amdsmi_parse_list(bad, strlen(bad), &e, &n, &err), GW_EPARSE);

    gw__amdsmi_list_entry two[2] = {{.gpu = 0}, {.gpu = 5}};
    const char *st = "[{\"gpu\": 5, \"asic\": {\"market_name\": \"W7900\"}}, {\"gpu\": 9}]";
    assert_int_equal(gw__amdsmi_parse_static_names(st, strlen(st), two, 2, &err), GW_OK);
    assert_string_equal(two[0].name, "");
    assert_string_equal(two[1].name, "W7900");
    /* an error changes nothing */
    const char *st_bad = "[{\"gpu\": 0, \"asic\": {\"market_name\": \"X\"}}, {\"gpu\": 5, "
                         "\"asic\": {\"market_name\": 7}}]";
    assert_int_equal(gw__amdsmi_parse_static_names(st_bad, strlen(st_bad), two, 2, &err),
                     GW_EPARSE);
    assert_non_null(strstr(err.message, "asic.market_name"));
    assert_string_equal(two[0].name, "");
    assert_string_equal(two[1].name, "W7900");
}

/* ---------------------------------------------------------------- backends */

typedef struct fx {
    char dir[64], log[128], pids[128], flag[128];
    gw__config cfg;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gw-rocm-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->log, sizeof f->log, "%s/log", f->dir);
    snprintf(f->pids, sizeof f->pids, "%s/pids", f->dir);
    snprintf(f->flag, sizeof f->flag, "%s/hang", f->dir);
    setenv("GW_FIXTURE_HANG_FLAG", f->flag, 1);
    setenv("GW_FIXTURE_LOG", f->log, 1);
    setenv("GW_FIXTURE_PIDS", f->pids, 1);
    gw__strlcpy(f->cfg.proc_root, f->dir, sizeof f->cfg.proc_root);
    gw__strlcpy(f->cfg.sys_root, f->dir, sizeof f->cfg.sys_root);
    f->cfg.call_timeout_ms = SMI_NO_DEADLINE_MS;
    f->cfg.processes = true;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    unlink(f->log);
    unlink(f->pids);
    unlink(f->flag);
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

static void test_rocm_backend_normal_then_hang(void **state)
{
    fx *f = *state;
    smi_use_fixture("rocm-normal");
    void *st = NULL;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_rocm_smi.open(&st, &f->cfg, &err), GW_OK);
    gw__collect c;
    gw__collect_init(&c);
    assert_int_equal(gw__backend_rocm_smi.sample(st, &c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&c), 2);
    gw_device *a = gw__collect_device(&c, 0), *b = gw__collect_device(&c, 1);
    assert_string_equal(a->info.name, "Navi 31 [Radeon RX 7900 XT/7900 XTX]");
    assert_int_equal(a->sample.mem_total, 25753026560ull);
    assert_int_equal(a->sample.temp_junction_mc, 52500);
    assert_int_equal(a->sample.power_limit_mw, 303000);
    assert_int_equal(a->sample.fan_rpm, 1100);
    assert_int_equal(a->sample.clock_mem_mhz, 1249);
    assert_string_equal(b->info.name, "AMD Instinct MI300X");
    assert_false(HAS(b, TEMP));
    assert_int_equal(b->sample.power_mw, 140000); /* "Current Socket ..." when no average */
    assert_false(HAS(b, FAN));
    gw__collect_release(&c);

    /* the tool now hangs (rocm-hang on PATH): the last good devices stale */
    smi_use_fixture("rocm-hang");
    gw__backend_rocm_smi.close(st);
    st = NULL;
    /* a fresh backend has no history: it fails */
    f->cfg.call_timeout_ms = SMI_HANG_MS;
    assert_int_equal(gw__backend_rocm_smi.open(&st, &f->cfg, &err), GW_OK);
    assert_int_equal(gw__backend_rocm_smi.sample(st, &c, &err), GW_ETIMEDOUT);
    assert_non_null(strstr(err.message, "rocm-smi: timed out after 400 ms"));
    assert_true(smi_hang_left_nothing(f->pids));
    assert_true(smi_no_children());
    gw__backend_rocm_smi.close(st);
    gw__collect_release(&c);
}

static void test_rocm_backend_stale_after_success(void **state)
{
    fx *f = *state;
    smi_use_fixture("rocm-normal");
    void *st = NULL;
    gw_error err;
    gw_error_clear(&err);
    gw__collect c;
    gw__collect_init(&c);
    /* one backend for the good sample and the hang: the good one must
     * finish within the short deadline too, or is tried with a longer one */
    unsigned ms = SMI_HANG_MS;
    int rc;
    do {
        if (st)
            gw__backend_rocm_smi.close(st);
        st = NULL;
        gw__collect_release(&c);
        f->cfg.call_timeout_ms = ms;
        assert_int_equal(gw__backend_rocm_smi.open(&st, &f->cfg, &err), GW_OK);
        rc = gw__backend_rocm_smi.sample(st, &c, &err);
    } while (smi_retry_deadline(rc, GW_ETIMEDOUT, &ms));
    assert_int_equal(rc, GW_OK);
    char want[64];
    snprintf(want, sizeof want, "rocm-smi: timed out after %u ms", ms);
    int64_t at = gw__collect_device(&c, 1)->sampled_at_ns;
    gw__collect_release(&c);

    FILE *flag = fopen(f->flag, "w"); /* from now on the fixture hangs */
    assert_non_null(flag);
    fclose(flag);
    assert_int_equal(gw__backend_rocm_smi.sample(st, &c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&c), 2);
    gw_device *b = gw__collect_device(&c, 1);
    assert_int_equal(b->state, GW_DEVICE_STALE);
    assert_non_null(strstr(b->state_reason, want));
    assert_true(b->sampled_at_ns == at);
    assert_int_equal(b->sample.mem_used, 285212672ull); /* the last good value */
    gw_source_status s;
    memset(&s, 0, sizeof s);
    gw__backend_rocm_smi.status(st, &s);
    assert_int_equal(s.state, GW_SOURCE_DEGRADED);
    assert_int_equal(s.error, GW_ETIMEDOUT);
    assert_true(smi_no_children());
    gw__backend_rocm_smi.close(st);
    gw__collect_release(&c);

    /* a crash of the tool: its own words in the reason */
    unlink(f->flag);
    smi_use_fixture("rocm-crash");
    f->cfg.call_timeout_ms = SMI_NO_DEADLINE_MS;
    assert_int_equal(gw__backend_rocm_smi.open(&st, &f->cfg, &err), GW_OK);
    assert_int_equal(gw__backend_rocm_smi.sample(st, &c, &err), GW_EIO);
    assert_non_null(strstr(err.message, "rocm-smi: failed (exit 1): "));
    assert_non_null(strstr(err.message, "Traceback")); /* first line of its stderr */
    gw__backend_rocm_smi.close(st);
    gw__collect_release(&c);
}

static void test_amd_backend_and_selection(void **state)
{
    fx *f = *state;
    smi_use_fixture("amd-list");
    void *st = NULL;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_amd_smi.open(&st, &f->cfg, &err), GW_OK);
    gw__collect c;
    gw__collect_init(&c);
    assert_int_equal(gw__backend_amd_smi.sample(st, &c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&c), 2);
    assert_string_equal(gw__collect_device(&c, 0)->info.pci_bus_id, "0000:11:00.0");
    assert_string_equal(gw__collect_device(&c, 1)->info.uuid,
                        "a1ff74a1-0000-1000-80ff-000000000021");
    assert_int_equal(gw__collect_device(&c, 0)->sample.mem_used, 98304 * MIB);
    assert_int_equal(gw__collect_device(&c, 0)->sample.gtt_used, 12 * MIB);
    assert_string_equal(gw__collect_device(&c, 0)->info.name, "AMD Instinct MI300X");
    assert_string_equal(gw__collect_device(&c, 1)->info.name, ""); /* "N/A" */
    assert_int_equal(log_lines(f), 3); /* metric + list + static */
    /* second sample: the list is cached */
    gw__collect_release(&c);
    assert_int_equal(gw__backend_amd_smi.sample(st, &c, &err), GW_OK);
    assert_int_equal(log_lines(f), 4);
    assert_string_equal(gw__collect_device(&c, 0)->info.name, "AMD Instinct MI300X");

    /* rocm-smi after it: AMD GPUs are already there, it does not run */
    smi_use_fixture("rocm-normal");
    void *rs = NULL;
    assert_int_equal(gw__backend_rocm_smi.open(&rs, &f->cfg, &err), GW_OK);
    assert_int_equal(gw__backend_rocm_smi.sample(rs, &c, &err), GW_OK);
    assert_int_equal(gw__collect_device_count(&c), 2);
    assert_int_equal(log_lines(f), 4);
    gw_source_status s;
    memset(&s, 0, sizeof s);
    gw__backend_rocm_smi.status(rs, &s);
    assert_non_null(strstr(s.message, "amd-smi already reports"));
    gw__backend_rocm_smi.close(rs);
    gw__backend_amd_smi.close(st);
    gw__collect_release(&c);
}

static void test_amd_backend_no_driver(void **state)
{
    fx *f = *state;
    smi_use_fixture("amd-nodriver");
    void *st = NULL;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(gw__backend_amd_smi.open(&st, &f->cfg, &err), GW_OK);
    gw__collect c;
    gw__collect_init(&c);
    assert_int_equal(gw__backend_amd_smi.sample(st, &c, &err), GW_OK);
    gw_source_status s;
    memset(&s, 0, sizeof s);
    gw__backend_amd_smi.status(st, &s);
    assert_int_equal(s.state, GW_SOURCE_UNAVAILABLE);
    assert_int_equal(s.error, GW_EDRIVER);
    assert_string_equal(s.message, "amd-smi: amdgpu driver not loaded (exit 1)");
    gw__backend_amd_smi.close(st);
    gw__collect_release(&c);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rocm_parse),
        cmocka_unit_test(test_rocm_errors),
        cmocka_unit_test(test_amd_metric_list_shape),
        cmocka_unit_test(test_amd_metric_gpu_data_shape_strings),
        cmocka_unit_test(test_amd_list),
        FX(test_rocm_backend_normal_then_hang),
        FX(test_rocm_backend_stale_after_success),
        FX(test_amd_backend_and_selection),
        FX(test_amd_backend_no_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
