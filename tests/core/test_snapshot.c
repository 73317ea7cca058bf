/* test_snapshot.c — the collector, snapshot lifetime, PCI id matching, and
 * the monitor over the host backend on a fixture /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/snapshot_build.h"
#include "core/util.h"
#include "fixture_proc.h"

static void finish_sorts_processes_and_counts_refs(void **state)
{
    (void)state;
    gw__collect c;
    gw__collect_init(&c);
    for (int i = 0; i < 20; i++) /* force several reallocations */
        assert_non_null(gw__collect_add_device(&c));
    assert_int_equal(gw__collect_device_count(&c), 20);
    assert_int_equal(gw__collect_device(&c, 19)->info.index, 19);
    assert_null(gw__collect_device(&c, 20));
    const uint32_t order[][2] = {{1, 30}, {0, 20}, {1, 10}, {0, 40}};
    for (size_t i = 0; i < 4; i++) {
        gw_process *p = gw__collect_add_process(&c);
        p->device_index = order[i][0];
        p->pid = order[i][1];
    }
    gw_snapshot *s = gw__collect_finish(&c);
    assert_non_null(s);
    assert_int_equal(c.n_devices, 0); /* moved out */
    assert_int_equal(s->n_processes, 4);
    const uint32_t want[][2] = {{0, 20}, {0, 40}, {1, 10}, {1, 30}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s->processes[i].device_index, want[i][0]);
        assert_int_equal(s->processes[i].pid, want[i][1]);
    }
    assert_ptr_equal(gw_snapshot_acquire(s), s);
    gw_snapshot_release(s);
    gw_snapshot_release(s); /* last reference: ASan reports a leak otherwise */
    gw_snapshot_release(NULL);
}

static void pci_ids_match_across_formats(void **state)
{
    (void)state;
    char out[32];
    assert_true(gw__pci_bus_id_normalize("00000000:0A:00.0", out, sizeof out));
    assert_string_equal(out, "0000:0a:00.0");
    assert_true(gw__pci_bus_id_normalize("0000:0a:00.0", out, sizeof out));
    assert_string_equal(out, "0000:0a:00.0");
    assert_false(gw__pci_bus_id_normalize("GPU-1234", out, sizeof out));
    assert_false(gw__pci_bus_id_normalize("0000:0a:00.0x", out, sizeof out));
    assert_false(gw__pci_bus_id_normalize("0000:100:00.0", out, sizeof out));
    gw__collect c;
    gw__collect_init(&c);
    gw__strlcpy(gw__collect_add_device(&c)->info.pci_bus_id, "00000000:65:00.0", 32);
    assert_true(gw__collect_has_pci_bus_id(&c, "0000:65:00.0"));
    assert_false(gw__collect_has_pci_bus_id(&c, "0000:66:00.0"));
    gw__collect_release(&c);
}

static const char meminfo[] = "MemTotal:       16384000 kB\n"
                              "MemFree:         1000000 kB\n"
                              "MemAvailable:    8192000 kB\n"
                              "SwapTotal:       2048000 kB\n"
                              "SwapFree:        1024000 kB\n";

static void monitor_host_only_is_cpu_only(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_write(root, "meminfo", meminfo);
    fixture_write(root, "loadavg", "1.50 0.75 0.25 2/300 12345\n");
    fixture_write(root, "stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n"
                                "cpu1 50 0 50 400 0 0 0 0 0 0\nintr 0\n");
    fixture_write(root, "sys/kernel/hostname", "gpu-node-7\n");

    gw_config cfg;
    gw_config_init(&cfg);
    cfg.sources = "host";
    cfg.proc_root = root;
    gw_monitor *m;
    gw_error err;
    assert_int_equal(gw_monitor_open(&m, &cfg, &err), GW_OK);
    gw_snapshot *s;
    assert_int_equal(gw_monitor_sample(m, &s, &err), GW_OK);
    assert_true(s->cpu_only);
    assert_string_equal(s->cpu_only_reason, "no GPU found");
    assert_int_equal(s->n_sources, 1);
    assert_string_equal(s->sources[0].name, "host");
    assert_int_equal(s->sources[0].state, GW_SOURCE_OK);
    const gw_host *h = &s->host;
    assert_string_equal(h->hostname, "gpu-node-7");
    assert_true(h->mem_total == 16384000ull * 1024);
    assert_true(h->mem_available == 8192000ull * 1024);
    assert_true(h->swap_free == 1024000ull * 1024);
    assert_int_equal(h->cpu_count, 2);
    assert_true(h->load1 == 1.5 && h->load15 == 0.25);
    assert_false(gw_host_has(h, GW_HOST_CPU_UTIL)); /* needs two samples */
    assert_int_equal(s->seq, 1);
    gw_snapshot_release(s);

    /* 100 more busy and 300 more idle jiffies: 25% busy */
    fixture_write(root, "stat", "cpu  150 0 150 1100 0 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n");
    assert_int_equal(gw_monitor_sample(m, &s, &err), GW_OK);
    assert_true(gw_host_has(&s->host, GW_HOST_CPU_UTIL));
    assert_true(s->host.cpu_util > 24.999 && s->host.cpu_util < 25.001);
    assert_int_equal(s->seq, 2);
    gw_snapshot_release(s);
    gw_monitor_close(m);

    /* missing files: fields invalid, source still ok */
    fixture_rmrf(root);
    assert_int_equal(gw_monitor_open(&m, &cfg, &err), GW_OK);
    assert_int_equal(gw_monitor_sample(m, &s, &err), GW_OK);
    assert_false(gw_host_has(&s->host, GW_HOST_MEM_TOTAL));
    assert_int_equal(s->sources[0].state, GW_SOURCE_OK);
    gw_snapshot_release(s);
    gw_monitor_close(m);
}

static void monitor_rejects_unknown_source(void **state)
{
    (void)state;
    gw_config cfg;
    gw_config_init(&cfg);
    cfg.sources = "host,cuda-magic";
    gw_monitor *m = (gw_monitor *)1;
    gw_error err;
    assert_int_equal(gw_monitor_open(&m, &cfg, &err), GW_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err.message, "cuda-magic"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finish_sorts_processes_and_counts_refs),
        cmocka_unit_test(pci_ids_match_across_formats),
        cmocka_unit_test(monitor_host_only_is_cpu_only),
        cmocka_unit_test(monitor_rejects_unknown_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
