/* test_amd_backends.c — the amdgpu and intel backends driven through their
 * ops tables into a collector, on the committed fixture trees (or temporary
 * copies where a test changes files between samples). Every expected value
 * is read from the fixture files and converted here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "amd_fixture.h"
#include "backends/backend.h"
#include "core/snapshot_build.h"
#include "core/util.h"

extern const gw__backend_ops gw__backend_amdgpu;
extern const gw__backend_ops gw__backend_intel;

#define RDNA3_DEV "sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0/0000:02:00.0/0000:03:00.0"
#define MI300_DEV "sys/devices/pci0000:00/0000:00:03.1/0000:0b:00.0/0000:0c:00.0"
#define APU_DEV "sys/devices/pci0000:00/0000:00:08.1/0000:05:00.0"
#define ARC_DEV "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0/0000:03:00.0"
#define IGPU_DEV "sys/devices/pci0000:00/0000:00:02.0"

typedef struct run {
    const gw__backend_ops *ops;
    void *state;
    gw__collect c;
    gw_source_status st;
} run;

static void cfg_for(gw__config *cfg, const char *root, bool processes)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->sys_root, sizeof cfg->sys_root, "%.400s/sys", root);
    snprintf(cfg->proc_root, sizeof cfg->proc_root, "%.400s/proc", root);
    cfg->processes = processes;
    cfg->call_timeout_ms = 5000;
}

static void run_open(run *r, const gw__backend_ops *ops, const char *root, bool processes)
{
    memset(r, 0, sizeof *r);
    r->ops = ops;
    gw__config cfg;
    cfg_for(&cfg, root, processes);
    gw_error err;
    gw_error_clear(&err);
    int rc = ops->open(&r->state, &cfg, &err);
    if (rc != GW_OK)
        fail_msg("open %s on %s: %s", ops->name, root, err.message);
    gw__collect_init(&r->c);
}

/* One sample into a fresh collector. */
static void run_sample(run *r)
{
    gw__collect_release(&r->c);
    gw__collect_init(&r->c);
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(r->ops->sample(r->state, &r->c, &err), GW_OK);
    memset(&r->st, 0, sizeof r->st);
    r->ops->status(r->state, &r->st);
}

static void run_close(run *r)
{
    gw__collect_release(&r->c);
    r->ops->close(r->state);
}

#define HAS(d, m) gw_sample_has(&(d)->sample, GW_METRIC_##m)
#define IHAS(d, f) gw_info_has(&(d)->info, GW_INFO_##f)

/* "key:<ws>N KiB" from a fixture fdinfo file, in bytes. */
static uint64_t fdinfo_kib(const char *root, const char *rel, const char *key)
{
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long v = 0;
    bool found = false;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            found = sscanf(line + strlen(key) + 1, " %llu", &v) == 1;
            break;
        }
    fclose(f);
    assert_true(found);
    return v * 1024;
}

/* MHz of the starred (star) or highest (!star) level of a pp_dpm file. */
static uint32_t dpm_mhz(const char *root, const char *rel, bool star)
{
    char path[1024], line[128];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned best = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned level, mhz;
        if (sscanf(line, "%u: %uMhz", &level, &mhz) != 2)
            continue;
        if (star ? strchr(line, '*') != NULL : mhz > best)
            best = mhz;
    }
    fclose(f);
    return best;
}

static const gw_process *proc_of(const run *r, uint32_t pid, uint32_t dev)
{
    for (size_t i = 0; i < r->c.n_processes; i++)
        if (r->c.processes[i].pid == pid && r->c.processes[i].device_index == dev)
            return &r->c.processes[i];
    return NULL;
}

static void rdna3_every_value(void **state)
{
    (void)state;
    char root[512];
    fx_fixture("rdna3", root, sizeof root);
    char dev[700], hw[800];
    snprintf(dev, sizeof dev, "%s/" RDNA3_DEV, root);
    snprintf(hw, sizeof hw, "%s/hwmon/hwmon2", dev);
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    assert_int_equal(r.c.n_devices, 1);
    const gw_device *d = &r.c.devices[0];
    assert_int_equal(d->state, GW_DEVICE_OK);
    assert_int_equal(d->info.vendor, GW_VENDOR_AMD);
    assert_string_equal(d->info.source, "amdgpu");
    assert_string_equal(d->info.pci_bus_id, "0000:03:00.0"); /* the folder's name */
    assert_string_equal(d->info.uuid, "5a1c0e2fb8e31d2a");  /* unique_id's text */
    assert_string_equal(d->info.memory_api, "sysfs");
    char want_name[64];
    snprintf(want_name, sizeof want_name, "AMD GPU [1002:%04llx]", fx_ll(dev, "device"));
    assert_string_equal(d->info.name, want_name);
    const gw_sample *x = &d->sample;
    long long vt = fx_ll(dev, "mem_info_vram_total"), vu = fx_ll(dev, "mem_info_vram_used");
    assert_true(HAS(d, MEM_TOTAL) && HAS(d, MEM_USED) && HAS(d, MEM_FREE));
    assert_int_equal(x->mem_total, vt);
    assert_int_equal(x->mem_used, vu);
    assert_int_equal(x->mem_free, vt - vu);
    assert_int_equal(x->gtt_total, fx_ll(dev, "mem_info_gtt_total"));
    assert_int_equal(x->gtt_used, fx_ll(dev, "mem_info_gtt_used"));
    assert_int_equal(x->vis_vram_total, fx_ll(dev, "mem_info_vis_vram_total"));
    assert_int_equal(x->vis_vram_used, fx_ll(dev, "mem_info_vis_vram_used"));
    assert_float_equal(x->util_gpu, (double)fx_ll(dev, "gpu_busy_percent"), 0);
    assert_float_equal(x->util_mem, (double)fx_ll(dev, "mem_busy_percent"), 0);
    /* Hz -> MHz */
    assert_int_equal(x->clock_graphics_mhz, fx_ll(hw, "freq1_input") / 1000000);
    assert_int_equal(x->clock_sm_mhz, fx_ll(hw, "freq1_input") / 1000000);
    assert_int_equal(x->clock_mem_mhz, fx_ll(hw, "freq2_input") / 1000000);
    assert_int_equal(d->info.max_clock_graphics_mhz, dpm_mhz(dev, "pp_dpm_sclk", false));
    assert_int_equal(d->info.max_clock_mem_mhz, dpm_mhz(dev, "pp_dpm_mclk", false));
    /* millidegrees stay millidegrees inside; labels pick the sensors */
    assert_int_equal(x->temp_mc, fx_ll(hw, "temp1_input"));
    assert_int_equal(x->temp_junction_mc, fx_ll(hw, "temp2_input"));
    assert_int_equal(x->temp_mem_mc, fx_ll(hw, "temp3_input"));
    assert_int_equal(d->info.temp_slowdown_mc, fx_ll(hw, "temp1_crit"));
    assert_int_equal(d->info.temp_shutdown_mc, fx_ll(hw, "temp1_emergency"));
    assert_int_equal(d->info.temp_gpu_max_mc, fx_ll(hw, "temp2_crit"));
    assert_int_equal(d->info.temp_mem_max_mc, fx_ll(hw, "temp3_crit"));
    /* uW -> mW; the average wins over the instant reading */
    assert_int_equal(x->power_mw, fx_ll(hw, "power1_average") / 1000);
    assert_int_equal(x->power_limit_mw, fx_ll(hw, "power1_cap") / 1000);
    assert_int_equal(d->info.power_limit_max_mw, fx_ll(hw, "power1_cap_max") / 1000);
    assert_int_equal(d->info.power_limit_default_mw, fx_ll(hw, "power1_cap_default") / 1000);
    assert_int_equal(x->fan_rpm, fx_ll(hw, "fan1_input"));
    assert_float_equal(x->fan_pct, (double)fx_ll(hw, "pwm1") * 100.0 / 255.0, 1e-9);
    assert_int_equal(x->pcie_width, fx_ll(dev, "current_link_width"));
    assert_int_equal(x->pcie_gen, 4); /* "16.0 GT/s PCIe" */
    /* the process, from its fdinfo */
    assert_int_equal(r.c.n_processes, 1);
    const gw_process *p = proc_of(&r, 1234, 0);
    assert_non_null(p);
    assert_int_equal(p->gpu_memory, fdinfo_kib(root, "proc/1234/fdinfo/5", "drm-memory-vram"));
    assert_int_equal(p->gtt_memory, fdinfo_kib(root, "proc/1234/fdinfo/5", "drm-memory-gtt"));
    assert_false(gw_process_has(p, GW_PROC_SM_UTIL)); /* one sample: no busy % */
    assert_int_equal(p->kind, GW_PROCESS_COMPUTE);   /* /dev/kfd open, compute engine */
    assert_string_equal(p->name, "python3");
    assert_string_equal(p->cmdline, "python3 train.py --epochs 3");
    assert_int_equal(r.st.state, GW_SOURCE_OK);
    assert_true(r.st.calls > 0);
    run_close(&r);
}

static void mi300_without_edge_sensor(void **state)
{
    (void)state;
    char root[512], dev[700], hw[800];
    fx_fixture("mi300", root, sizeof root);
    snprintf(dev, sizeof dev, "%s/" MI300_DEV, root);
    snprintf(hw, sizeof hw, "%s/hwmon/hwmon5", dev);
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    assert_int_equal(r.c.n_devices, 1);
    const gw_device *d = &r.c.devices[0];
    assert_string_equal(d->info.name, "AMD Instinct MI300X"); /* product_name */
    assert_string_equal(d->info.serial, "692251001124");
    assert_string_equal(d->info.driver_version, "6.8.5"); /* sys/module/amdgpu/version */
    assert_int_equal(d->info.source_index, 1); /* card1 */
    assert_int_equal(d->sample.temp_junction_mc, fx_ll(hw, "temp2_input"));
    assert_int_equal(d->sample.temp_mc, fx_ll(hw, "temp2_input")); /* junction stands in */
    assert_int_equal(d->sample.temp_mem_mc, fx_ll(hw, "temp3_input"));
    assert_int_equal(d->info.temp_slowdown_mc, fx_ll(hw, "temp2_crit"));
    assert_false(IHAS(d, TEMP_SHUTDOWN)); /* no emergency files */
    assert_int_equal(d->sample.power_mw, fx_ll(hw, "power1_input") / 1000);
    assert_false(HAS(d, FAN) || HAS(d, FAN_RPM));
    /* no hwmon freq files: the starred pp_dpm lines, the S: line skipped */
    assert_int_equal(d->sample.clock_graphics_mhz, dpm_mhz(dev, "pp_dpm_sclk", true));
    assert_int_equal(d->sample.clock_mem_mhz, dpm_mhz(dev, "pp_dpm_mclk", true));
    assert_int_equal(d->info.max_clock_graphics_mhz, dpm_mhz(dev, "pp_dpm_sclk", false));
    assert_int_equal(d->sample.mem_total, fx_ll(dev, "mem_info_vram_total"));
    assert_int_equal(d->sample.pcie_gen, 5);
    run_close(&r);
}

static void apu_counts_gtt(void **state)
{
    (void)state;
    char root[512], dev[700], hw[800];
    fx_fixture("apu", root, sizeof root);
    snprintf(dev, sizeof dev, "%s/" APU_DEV, root);
    snprintf(hw, sizeof hw, "%s/hwmon/hwmon4", dev);
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    const gw_device *d = &r.c.devices[0];
    assert_string_equal(d->info.memory_api, "gtt");
    long long total = fx_ll(dev, "mem_info_vram_total") + fx_ll(dev, "mem_info_gtt_total");
    long long used = fx_ll(dev, "mem_info_vram_used") + fx_ll(dev, "mem_info_gtt_used");
    assert_int_equal(d->sample.mem_total, total);
    assert_int_equal(d->sample.mem_used, used);
    assert_int_equal(d->sample.mem_free, total - used);
    assert_int_equal(d->info.memory_total, total);
    assert_false(HAS(d, FAN) || HAS(d, FAN_RPM));
    assert_false(HAS(d, UTIL_MEM));
    assert_false(HAS(d, POWER_LIMIT));
    assert_int_equal(d->sample.power_mw, fx_ll(hw, "power1_average") / 1000);
    assert_int_equal(d->sample.clock_mem_mhz, dpm_mhz(dev, "pp_dpm_mclk", true)); /* no freq2 */
    assert_non_null(strstr(r.st.message, "APU"));
    const gw_process *p = proc_of(&r, 2222, 0);
    assert_non_null(p);
    assert_int_equal(p->gtt_memory, fdinfo_kib(root, "proc/2222/fdinfo/9", "drm-memory-gtt"));
    assert_int_equal(p->kind, GW_PROCESS_GRAPHICS);
    run_close(&r);
}

static void two_cards_processes_matched_by_pdev(void **state)
{
    (void)state;
    char root[512];
    fx_fixture("two_amd", root, sizeof root);
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    assert_int_equal(r.c.n_devices, 2);
    assert_string_equal(r.c.devices[0].info.pci_bus_id, "0000:03:00.0");
    assert_string_equal(r.c.devices[1].info.pci_bus_id, "0000:43:00.0");
    /* pid 100: client 21 (fds 5 and 6) on card0, client 31 on card1 */
    const gw_process *p = proc_of(&r, 100, 0);
    assert_non_null(p);
    assert_int_equal(p->gpu_memory, fdinfo_kib(root, "proc/100/fdinfo/5", "drm-memory-vram"));
    p = proc_of(&r, 100, 1);
    assert_non_null(p);
    assert_int_equal(p->gpu_memory, fdinfo_kib(root, "proc/100/fdinfo/7", "drm-memory-vram"));
    /* pid 200 shares client 21 with pid 100: counted once, for pid 100 */
    assert_null(proc_of(&r, 200, 0));
    p = proc_of(&r, 300, 0);
    assert_non_null(p);
    assert_int_equal(p->kind, GW_PROCESS_GRAPHICS);
    /* pid 400: pre-5.19 keys, memory only */
    p = proc_of(&r, 400, 1);
    assert_non_null(p);
    assert_int_equal(p->gpu_memory, fdinfo_kib(root, "proc/400/fdinfo/3", "vram mem"));
    assert_false(gw_process_has(p, GW_PROC_SM_UTIL));
    assert_null(proc_of(&r, 500, 0));
    assert_int_equal(r.c.n_processes, 4);
    assert_non_null(strstr(r.st.message, "before 5.19"));
    run_close(&r);
}

static void busy_needs_two_samples_and_ignores_backwards(void **state)
{
    (void)state;
    char root[128];
    assert_non_null(fx_copy_fixture("rdna3", root, sizeof root));
    char proc[256];
    snprintf(proc, sizeof proc, "%s/proc", root);
    const char *fmt = "drm-driver:\tamdgpu\ndrm-pdev:\t0000:03:00.0\ndrm-client-id:\t11\n"
                      "drm-memory-vram:\t1048576 KiB\ndrm-engine-gfx:\t%llu ns\n"
                      "drm-engine-enc:\t%llu ns\ndrm-engine-dec:\t7 ns\n";
    char t[256];
    snprintf(t, sizeof t, fmt, 5000000000000ull, 0ull);
    fx_write(proc, "1234/fdinfo/5", t);
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    assert_false(gw_process_has(proc_of(&r, 1234, 0), GW_PROC_SM_UTIL));
    assert_false(HAS(&r.c.devices[0], UTIL_ENC)); /* one sample: no delta */
    snprintf(t, sizeof t, fmt, 4000000000000ull, 0ull); /* backwards */
    fx_write(proc, "1234/fdinfo/5", t);
    run_sample(&r);
    assert_false(gw_process_has(proc_of(&r, 1234, 0), GW_PROC_SM_UTIL));
    /* +1000 s of gfx and encoder time: more than the wall time between two
     * samples, so the figures are valid and clamped to 100 */
    snprintf(t, sizeof t, fmt, 5000000000000ull, 1000000000000ull);
    fx_write(proc, "1234/fdinfo/5", t);
    run_sample(&r);
    const gw_process *p = proc_of(&r, 1234, 0);
    assert_true(gw_process_has(p, GW_PROC_SM_UTIL));
    assert_float_equal(p->sm_util, 100.0, 0);
    assert_float_equal(p->enc_util, 100.0, 0);
    const gw_device *d = &r.c.devices[0];
    assert_true(HAS(d, UTIL_ENC) && HAS(d, UTIL_DEC));
    assert_float_equal(d->sample.util_enc, 100.0, 0); /* summed over clients */
    assert_float_equal(d->sample.util_dec, 0.0, 0);   /* dec did not move */
    assert_float_equal(d->sample.util_gpu, (double)fx_ll(root, RDNA3_DEV "/gpu_busy_percent"), 0);
    run_close(&r);
    fx_rmrf(root);
}

static void arc_on_xe_derives_use_from_clients(void **state)
{
    (void)state;
    char root[128], dev[700], hw[800];
    assert_non_null(fx_copy_fixture("arc_xe", root, sizeof root));
    snprintf(dev, sizeof dev, "%s/" ARC_DEV, root);
    snprintf(hw, sizeof hw, "%s/hwmon/hwmon3", dev);
    run r;
    run_open(&r, &gw__backend_intel, root, true);
    run_sample(&r);
    assert_int_equal(r.c.n_devices, 1);
    const gw_device *d = &r.c.devices[0];
    assert_int_equal(d->info.vendor, GW_VENDOR_INTEL);
    assert_string_equal(d->info.source, "intel");
    assert_non_null(strstr(d->info.name, "(xe)"));
    char rel[256];
    FILE *f;
    snprintf(rel, sizeof rel, "%s/proc/sys/kernel/osrelease", root);
    assert_non_null(f = fopen(rel, "r"));
    char want[64] = "";
    assert_non_null(fgets(want, sizeof want, f));
    fclose(f);
    want[strcspn(want, "\n")] = '\0';
    assert_string_equal(d->info.driver_version, want); /* in-tree: the kernel's */
    assert_int_equal(d->sample.clock_graphics_mhz, fx_ll(dev, "tile0/gt0/freq0/act_freq"));
    assert_int_equal(d->info.max_clock_graphics_mhz, fx_ll(dev, "tile0/gt0/freq0/max_freq"));
    long long total = fx_ll(dev, "tile0/physical_vram_size_bytes");
    uint64_t used = fdinfo_kib(root, "proc/4321/fdinfo/7", "drm-resident-vram0");
    assert_int_equal(d->sample.mem_total, total);
    assert_int_equal(d->sample.mem_used, used);
    assert_int_equal(d->sample.mem_free, total - (long long)used);
    assert_int_equal(d->sample.gtt_used, fdinfo_kib(root, "proc/4321/fdinfo/7", "drm-resident-gtt"));
    assert_int_equal(d->sample.temp_mc, fx_ll(hw, "temp2_input")); /* "pkg" */
    assert_int_equal(d->sample.temp_mem_mc, fx_ll(hw, "temp3_input")); /* "vram" */
    assert_int_equal(d->sample.power_limit_mw, fx_ll(hw, "power1_max") / 1000);
    assert_true(HAS(d, ENERGY));
    assert_int_equal(d->sample.energy_mj, fx_ll(hw, "energy1_input") / 1000);
    assert_false(HAS(d, POWER));    /* first sample: no energy delta */
    assert_false(HAS(d, UTIL_GPU)); /* first sample: no counter delta */
    assert_non_null(strstr(r.st.message, "derived from DRM fdinfo clients"));
    /* second sample: energy +5 J, rcs +500 of 1000 cycles, ccs +0 */
    char t[64];
    snprintf(t, sizeof t, "%lld\n", fx_ll(hw, "energy1_input") + 5000000);
    fx_write(hw, "energy1_input", t);
    char fi[1024];
    snprintf(fi, sizeof fi,
             "drm-driver:\txe\ndrm-client-id:\t7\ndrm-pdev:\t0000:03:00.0\n"
             "drm-resident-vram0:\t1048576 KiB\ndrm-resident-gtt:\t6144 KiB\n"
             "drm-cycles-rcs:\t%llu\ndrm-total-cycles-rcs:\t%llu\n"
             "drm-cycles-ccs:\t0\ndrm-total-cycles-ccs:\t%llu\ndrm-engine-capacity-ccs:\t4\n",
             28257900ull + 500, 7655183225ull + 1000, 7655183225ull + 1000);
    fx_write(root, "proc/4321/fdinfo/7", fi);
    run_sample(&r);
    d = &r.c.devices[0];
    assert_true(HAS(d, POWER));
    assert_true(d->sample.power_mw > 0);
    assert_true(HAS(d, UTIL_GPU));
    assert_float_equal(d->sample.util_gpu, 50.0, 1e-9); /* GPU-clock domain: exact */
    const gw_process *p = proc_of(&r, 4321, 0);
    assert_non_null(p);
    assert_float_equal(p->sm_util, 50.0, 1e-9);
    /* energy going backwards: no power, energy still reported */
    fx_write(hw, "energy1_input", "1000\n");
    run_sample(&r);
    d = &r.c.devices[0];
    assert_false(HAS(d, POWER));
    assert_true(HAS(d, ENERGY));
    run_close(&r);
    fx_rmrf(root);
}

static void igpu_on_i915(void **state)
{
    (void)state;
    char root[512], dev[700];
    fx_fixture("igpu_i915", root, sizeof root);
    snprintf(dev, sizeof dev, "%s/" IGPU_DEV, root);
    run r;
    run_open(&r, &gw__backend_intel, root, true);
    run_sample(&r);
    const gw_device *d = &r.c.devices[0];
    assert_string_equal(d->info.pci_bus_id, "0000:00:02.0");
    assert_non_null(strstr(d->info.name, "(i915)"));
    assert_int_equal(d->sample.clock_graphics_mhz, fx_ll(dev, "drm/card0/gt_act_freq_mhz"));
    assert_int_equal(d->info.max_clock_graphics_mhz, fx_ll(dev, "drm/card0/gt_max_freq_mhz"));
    assert_false(HAS(d, MEM_TOTAL) || HAS(d, MEM_USED)); /* i915 VRAM is ioctl-only */
    assert_false(HAS(d, TEMP) || HAS(d, POWER));        /* no hwmon on an iGPU */
    uint64_t sys = fdinfo_kib(root, "proc/777/fdinfo/12", "drm-resident-system0");
    assert_int_equal(d->sample.gtt_used, sys);
    const gw_process *p = proc_of(&r, 777, 0);
    assert_non_null(p);
    assert_int_equal(p->gtt_memory, sys);
    assert_false(gw_process_has(p, GW_PROC_GPU_MEMORY));
    run_close(&r);
}

static void old_kernel_and_processes_off(void **state)
{
    (void)state;
    char root[512];
    fx_fixture("oldkernel", root, sizeof root);
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    assert_int_equal(r.c.n_devices, 1);
    assert_int_equal(r.c.n_processes, 0);
    assert_non_null(strstr(r.st.message, "no drm-* keys"));
    run_close(&r);
    fx_fixture("rdna3", root, sizeof root);
    run_open(&r, &gw__backend_amdgpu, root, false);
    run_sample(&r);
    assert_int_equal(r.c.n_processes, 0);
    assert_non_null(strstr(r.st.message, "per-process use off"));
    run_close(&r);
}

static void absent_hardware_is_unavailable(void **state)
{
    (void)state;
    char root[512];
    gw__config cfg;
    gw_error err;
    void *st = (void *)1;
    fx_fixture("arc_xe", root, sizeof root);
    cfg_for(&cfg, root, true);
    assert_int_equal(gw__backend_amdgpu.open(&st, &cfg, &err), GW_ENODEV);
    assert_null(st);
    assert_true(strncmp(err.message, "amdgpu: ", 8) == 0);
    fx_fixture("rdna3", root, sizeof root);
    cfg_for(&cfg, root, true);
    assert_int_equal(gw__backend_intel.open(&st, &cfg, &err), GW_ENODEV);
    assert_true(strncmp(err.message, "intel: ", 7) == 0);
    cfg_for(&cfg, "/nonexistent", true);
    assert_int_equal(gw__backend_amdgpu.open(&st, &cfg, &err), GW_ENODEV);
    assert_non_null(strstr(err.message, "/nonexistent/sys/class/drm"));
}

static void garbage_sysfs_values_are_absent(void **state)
{
    (void)state;
    char root[128], dev[700], hw[800];
    assert_non_null(fx_copy_fixture("rdna3", root, sizeof root));
    snprintf(dev, sizeof dev, "%s/" RDNA3_DEV, root);
    snprintf(hw, sizeof hw, "%s/hwmon/hwmon2", dev);
    fx_write(dev, "mem_info_vram_used", "lots\n");
    fx_write(dev, "gpu_busy_percent", "250\n");
    fx_write(dev, "pp_dpm_sclk", "0: Mhz *\ngarbage\n");
    fx_write(hw, "freq1_input", "18446744073709551616\n"); /* 2^64 */
    fx_write(hw, "temp1_input", "-\n");
    fx_write(hw, "pwm1", "300\n");
    fx_write(hw, "power1_average", "");
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    const gw_device *d = &r.c.devices[0];
    assert_int_equal(d->state, GW_DEVICE_OK);
    assert_false(HAS(d, MEM_USED) || HAS(d, MEM_FREE));
    assert_true(HAS(d, MEM_TOTAL));
    assert_false(HAS(d, UTIL_GPU));
    assert_false(HAS(d, CLOCK_GRAPHICS));
    assert_false(HAS(d, TEMP));
    assert_false(HAS(d, FAN));
    assert_true(HAS(d, POWER)); /* the instant reading stands in */
    assert_int_equal(d->sample.power_mw, fx_ll(hw, "power1_input") / 1000);
    run_close(&r);
    fx_rmrf(root);
}

static void device_without_hwmon(void **state)
{
    (void)state;
    char root[128], dir[800];
    assert_non_null(fx_copy_fixture("rdna3", root, sizeof root));
    snprintf(dir, sizeof dir, "%s/" RDNA3_DEV "/hwmon", root);
    fx_rmrf(dir); /* the MI250 case of nvtop#300: no hwmon at all */
    run r;
    run_open(&r, &gw__backend_amdgpu, root, true);
    run_sample(&r);
    const gw_device *d = &r.c.devices[0];
    assert_int_equal(d->state, GW_DEVICE_OK);
    assert_false(HAS(d, TEMP) || HAS(d, POWER) || HAS(d, FAN) || HAS(d, FAN_RPM));
    assert_false(IHAS(d, TEMP_SLOWDOWN));
    assert_true(HAS(d, MEM_USED) && HAS(d, UTIL_GPU));
    /* clocks fall back to the starred pp_dpm lines */
    char dev[700];
    snprintf(dev, sizeof dev, "%s/" RDNA3_DEV, root);
    assert_int_equal(d->sample.clock_graphics_mhz, dpm_mhz(dev, "pp_dpm_sclk", true));
    assert_int_equal(d->sample.clock_mem_mhz, dpm_mhz(dev, "pp_dpm_mclk", true));
    run_close(&r);
    fx_rmrf(root);
}

static void device_answering_nothing_is_in_error(void **state)
{
    (void)state;
    char root[128], dev[700], path[800];
    assert_non_null(fx_copy_fixture("rdna3", root, sizeof root));
    snprintf(dev, sizeof dev, "%s/" RDNA3_DEV, root);
    snprintf(path, sizeof path, "%s/hwmon", dev);
    fx_rmrf(path);
    /* every per-sample attribute opens but fails to read (EISDIR) */
    static const char *const files[] = {
        "mem_info_vram_used", "mem_info_vis_vram_used", "mem_info_gtt_used", "gpu_busy_percent",
        "mem_busy_percent", "pp_dpm_sclk", "pp_dpm_mclk", "current_link_speed",
        "current_link_width"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dev, files[i]);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    run r;
    run_open(&r, &gw__backend_amdgpu, root, false);
    run_sample(&r);
    const gw_device *d = &r.c.devices[0];
    assert_int_equal(d->state, GW_DEVICE_ERROR);
    assert_non_null(strstr(d->state_reason, "card0 (0000:03:00.0)"));
    assert_int_equal(d->sample.valid, 0);
    run_close(&r);
    fx_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rdna3_every_value),
        cmocka_unit_test(mi300_without_edge_sensor),
        cmocka_unit_test(apu_counts_gtt),
        cmocka_unit_test(two_cards_processes_matched_by_pdev),
        cmocka_unit_test(busy_needs_two_samples_and_ignores_backwards),
        cmocka_unit_test(arc_on_xe_derives_use_from_clients),
        cmocka_unit_test(igpu_on_i915),
        cmocka_unit_test(old_kernel_and_processes_off),
        cmocka_unit_test(absent_hardware_is_unavailable),
        cmocka_unit_test(garbage_sysfs_values_are_absent),
        cmocka_unit_test(device_without_hwmon),
        cmocka_unit_test(device_answering_nothing_is_in_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
