/* amdgpu.c — the amdgpu backend: AMD GPUs through sysfs and hwmon only (no
 * libdrm), and per-process use through DRM fdinfo (fdinfo.h).
 *
 * Owns: one amd_dev per /sys/class/drm/cardN whose vendor is 0x1002 and
 * whose driver is amdgpu, with its dynamic attribute files held open
 * (pread per sample, see sysfs.h); the fdinfo sweep filtered to amdgpu; the
 * process-name cache.
 *
 * What is read (every file optional; a missing file leaves its metric
 * invalid, never fails the source; pcie_bw is never read: it sleeps 1 s):
 *  - memory: mem_info_vram_total/used, mem_info_vis_vram_total/used,
 *    mem_info_gtt_total/used (bytes). Totals are read once at open.
 *  - busy: gpu_busy_percent, mem_busy_percent.
 *  - clocks: hwmon freq1_input (sclk) / freq2_input (mclk) in Hz, else the
 *    starred line of pp_dpm_sclk / pp_dpm_mclk; the highest pp_dpm level is
 *    the maximum clock. sclk fills both the graphics and the SM clock.
 *  - temperatures by hwmon temp*_label: "edge" -> temperature, "junction" ->
 *    junction, "mem" -> memory (no label: temp1 is edge). A card without an
 *    edge sensor (MI300) reports its junction as the GPU temperature too.
 *    Thresholds: slowdown = edge crit (else junction crit), shutdown = edge
 *    emergency (else junction emergency), gpu max = junction crit (else edge
 *    crit), memory max = mem crit. amdgpu documents *_crit as the maximum
 *    operating temperature (throttling) and *_emergency as ASIC shutdown.
 *  - power: power1_average, else power1_input (uW; APUs: whole SoC);
 *    power1_cap (sample limit) and power1_cap_min/max/default (info).
 *  - fan: fan1_input (rpm), pwm1 (0-255 -> percent).
 *  - identity: PCI bus id from the device link, vendor/device ids,
 *    product_name (server cards), unique_id (GFX9+) as uuid, serial_number;
 *    PCIe current/max link speed and width.
 *  - memory ECC (RAS-capable cards, e.g. MI200/MI300): ras/umc_err_count,
 *    "ue: N" uncorrected and "ce: N" corrected errors of the memory
 *    controllers since the driver loaded.
 *  - encoder / decoder use: summed over the device's DRM fdinfo clients
 *    (enc* / dec*, jpeg engines), from the second sample on.
 *  - APUs: recognised by the hwmon voltage in1 labelled "vddnb", which
 *    amdgpu exposes only on APUs (other than MI300A). On an APU the GTT
 *    counts as usable memory: memory total/used are VRAM + GTT and
 *    memory_api is "gtt" (dGPUs: "sysfs"); the source message says so.
 *
 * A device whose every held attribute fails to read is lost (ENODEV/ENOENT:
 * unplugged) or in error (anything else, e.g. a GPU reset); the others go on.
 */
#include "backends/backend.h"
#include "backends/fdinfo.h"
#include "backends/procinfo.h"
#include "backends/sysfs.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    A_VRAM_USED,
    A_VIS_USED,
    A_GTT_USED,
    A_BUSY,
    A_MEM_BUSY,
    A_SCLK,
    A_MCLK,
    A_DPM_SCLK,
    A_DPM_MCLK,
    A_TEMP_EDGE,
    A_TEMP_JUNCTION,
    A_TEMP_MEM,
    A_POWER_AVG,
    A_POWER_INPUT,
    A_POWER_CAP,
    A_FAN_RPM,
    A_PWM,
    A_LINK_SPEED,
    A_LINK_WIDTH,
    A_RAS_UMC,
    A_COUNT
};

typedef struct amd_dev {
    gw__drm_card card;
    int hwmon; /* -1 when the device has no hwmon */
    bool apu;
    bool has_vram_total, has_vis_total, has_gtt_total;
    uint64_t vram_total, vis_total, gtt_total;
    gw_device_info info;
    gw__attr attr[A_COUNT];
} amd_dev;

typedef struct amd_state {
    gw__config cfg;
    amd_dev *devs;
    size_t n_devs;
    gw__fdinfo *fdinfo; /* NULL when processes are off or /proc is unreadable */
    char fdinfo_error[160];
    gw__procinfo *names;
    uint64_t calls;
    uint32_t samples;
    char message[384];
} amd_state;

static void amd_close(void *state)
{
    amd_state *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_devs; i++) {
        amd_dev *d = &s->devs[i];
        for (int a = 0; a < A_COUNT; a++)
            gw__attr_close(&d->attr[a]);
        if (d->hwmon >= 0)
            close(d->hwmon);
        if (d->card.card_dirfd >= 0)
            close(d->card.card_dirfd);
        if (d->card.dev_dirfd >= 0)
            close(d->card.dev_dirfd);
    }
    free(s->devs);
    gw__fdinfo_close(s->fdinfo);
    gw__procinfo_close(s->names);
    free(s);
}

/* Value in MHz of the starred line of a pp_dpm_* table ("1: 1800Mhz *"), or
 * (want_max) the highest level; false when there is none. */
static bool parse_dpm(const char *text, bool want_max, uint32_t *mhz)
{
    bool found = false;
    uint64_t best = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[96];
        if (len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            char *colon = strchr(buf, ':');
            bool deep_sleep = buf[0] == 'S';
            if (colon) {
                char *p = colon + 1;
                while (*p == ' ' || *p == '\t')
                    p++;
                uint64_t v = 0;
                int digits = 0;
                while (*p >= '0' && *p <= '9' && digits < 9) {
                    v = v * 10 + (uint64_t)(*p - '0');
                    p++;
                    digits++;
                }
                bool unit = digits > 0 && (strncmp(p, "Mhz", 3) == 0 || strncmp(p, "MHz", 3) == 0);
                if (unit) {
                    bool star = strchr(p, '*') != NULL;
                    if (want_max && !deep_sleep && v >= best) {
                        best = v;
                        found = true;
                    } else if (!want_max && star) {
                        best = v;
                        found = true;
                    }
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (found)
        *mhz = (uint32_t)best;
    return found;
}

/* "ue: N\nce: N\n" (newer kernels add "de: N", deferred) of a RAS
 * <block>_err_count file; false for anything else, e.g. "Query currently
 * inaccessible" while the GPU resets. */
static bool parse_ras_count(const char *text, uint64_t *ue, uint64_t *ce)
{
    bool has_ue = false, has_ce = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        char buf[64];
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            if (strncmp(buf, "ue: ", 4) == 0)
                has_ue = gw__parse_u64(buf + 4, ue);
            else if (strncmp(buf, "ce: ", 4) == 0)
                has_ce = gw__parse_u64(buf + 4, ce);
        }
        line = nl ? nl + 1 : NULL;
    }
    return has_ue && has_ce;
}

static uint32_t mw_from_uw(uint64_t uw)
{
    uint64_t mw = uw / 1000;
    return mw > UINT32_MAX ? UINT32_MAX : (uint32_t)mw;
}

/* Clamps millidegrees into int32. */
static int32_t mc_clamp(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Finds hwmon temp sensors by label and fills the thresholds into info. */
static void open_temps(amd_dev *d)
{
    int idx[3] = {0, 0, 0}; /* edge, junction, mem: tempN index */
    static const char *const labels[3] = {"edge", "junction", "mem"};
    for (int n = 1; n <= 8; n++) {
        char rel[32], label[32];
        snprintf(rel, sizeof rel, "temp%d_label", n);
        if (gw__read_line_at(d->hwmon, rel, label, sizeof label)) {
            for (int k = 0; k < 3; k++)
                if (!idx[k] && strcmp(label, labels[k]) == 0)
                    idx[k] = n;
        } else if (n == 1) {
            snprintf(rel, sizeof rel, "temp1_input");
            if (gw__exists_at(d->hwmon, rel))
                idx[0] = 1; /* older kernels: temp1 without a label is edge */
        }
    }
    int64_t crit[3], emerg[3];
    bool has_crit[3] = {false, false, false}, has_emerg[3] = {false, false, false};
    for (int k = 0; k < 3; k++) {
        if (!idx[k])
            continue;
        char rel[32];
        snprintf(rel, sizeof rel, "temp%d_input", idx[k]);
        gw__attr_open(&d->attr[A_TEMP_EDGE + k], d->hwmon, rel);
        snprintf(rel, sizeof rel, "temp%d_crit", idx[k]);
        has_crit[k] = gw__read_i64_at(d->hwmon, rel, &crit[k]);
        snprintf(rel, sizeof rel, "temp%d_emergency", idx[k]);
        has_emerg[k] = gw__read_i64_at(d->hwmon, rel, &emerg[k]);
    }
    gw_device_info *in = &d->info;
    int slow = has_crit[0] ? 0 : has_crit[1] ? 1 : -1;
    if (slow >= 0) {
        in->temp_slowdown_mc = mc_clamp(crit[slow]);
        in->valid |= 1ull << GW_INFO_TEMP_SLOWDOWN;
    }
    int shut = has_emerg[0] ? 0 : has_emerg[1] ? 1 : -1;
    if (shut >= 0) {
        in->temp_shutdown_mc = mc_clamp(emerg[shut]);
        in->valid |= 1ull << GW_INFO_TEMP_SHUTDOWN;
    }
    int gmax = has_crit[1] ? 1 : has_crit[0] ? 0 : -1;
    if (gmax >= 0) {
        in->temp_gpu_max_mc = mc_clamp(crit[gmax]);
        in->valid |= 1ull << GW_INFO_TEMP_GPU_MAX;
    }
    if (has_crit[2]) {
        in->temp_mem_max_mc = mc_clamp(crit[2]);
        in->valid |= 1ull << GW_INFO_TEMP_MEM_MAX;
    }
}

static void open_device(amd_dev *d)
{
    int dev = d->card.dev_dirfd;
    gw_device_info *in = &d->info;
    in->vendor = GW_VENDOR_AMD;
    in->source_index = d->card.card;
    gw__strlcpy(in->source, "amdgpu", sizeof in->source);
    gw__strlcpy(in->pci_bus_id, d->card.pci_bus_id, sizeof in->pci_bus_id);
    if (!gw__read_line_at(dev, "product_name", in->name, sizeof in->name))
        snprintf(in->name, sizeof in->name, "AMD GPU [1002:%04x]", d->card.device_id);
    gw__read_line_at(dev, "unique_id", in->uuid, sizeof in->uuid);
    if (gw__read_line_at(dev, "serial_number", in->serial, sizeof in->serial))
        in->valid |= 1ull << GW_INFO_SERIAL;

    d->has_vram_total = gw__read_u64_at(dev, "mem_info_vram_total", &d->vram_total);
    d->has_vis_total = gw__read_u64_at(dev, "mem_info_vis_vram_total", &d->vis_total);
    d->has_gtt_total = gw__read_u64_at(dev, "mem_info_gtt_total", &d->gtt_total);
    gw__attr_open(&d->attr[A_VRAM_USED], dev, "mem_info_vram_used");
    gw__attr_open(&d->attr[A_VIS_USED], dev, "mem_info_vis_vram_used");
    gw__attr_open(&d->attr[A_GTT_USED], dev, "mem_info_gtt_used");
    gw__attr_open(&d->attr[A_BUSY], dev, "gpu_busy_percent");
    gw__attr_open(&d->attr[A_MEM_BUSY], dev, "mem_busy_percent");
    gw__attr_open(&d->attr[A_LINK_SPEED], dev, "current_link_speed");
    gw__attr_open(&d->attr[A_LINK_WIDTH], dev, "current_link_width");
    gw__attr_open(&d->attr[A_RAS_UMC], dev, "ras/umc_err_count");

    char buf[1024];
    uint32_t mhz;
    if (gw__read_at(dev, "pp_dpm_sclk", buf, sizeof buf) > 0) {
        gw__attr_open(&d->attr[A_DPM_SCLK], dev, "pp_dpm_sclk");
        if (parse_dpm(buf, true, &mhz)) {
            in->max_clock_graphics_mhz = in->max_clock_sm_mhz = mhz;
            in->valid |= (1ull << GW_INFO_MAX_CLOCK_GRAPHICS) | (1ull << GW_INFO_MAX_CLOCK_SM);
        }
    }
    if (gw__read_at(dev, "pp_dpm_mclk", buf, sizeof buf) > 0) {
        gw__attr_open(&d->attr[A_DPM_MCLK], dev, "pp_dpm_mclk");
        if (parse_dpm(buf, true, &mhz)) {
            in->max_clock_mem_mhz = mhz;
            in->valid |= 1ull << GW_INFO_MAX_CLOCK_MEM;
        }
    }
    uint64_t v;
    if (gw__read_line_at(dev, "max_link_speed", buf, 64) &&
        (in->pcie_max_gen = gw__pcie_gen_from_speed(buf)) != 0)
        in->valid |= 1ull << GW_INFO_PCIE_MAX_GEN;
    if (gw__read_u64_at(dev, "max_link_width", &v) && v > 0 && v <= 64) {
        in->pcie_max_width = (uint32_t)v;
        in->valid |= 1ull << GW_INFO_PCIE_MAX_WIDTH;
    }

    d->hwmon = gw__hwmon_open(dev, "amdgpu");
    if (d->hwmon >= 0) {
        int h = d->hwmon;
        char label[32];
        d->apu = gw__read_line_at(h, "in1_label", label, sizeof label) &&
                 strcmp(label, "vddnb") == 0;
        gw__attr_open(&d->attr[A_SCLK], h, "freq1_input");
        gw__attr_open(&d->attr[A_MCLK], h, "freq2_input");
        open_temps(d);
        gw__attr_open(&d->attr[A_POWER_AVG], h, "power1_average");
        gw__attr_open(&d->attr[A_POWER_INPUT], h, "power1_input");
        gw__attr_open(&d->attr[A_POWER_CAP], h, "power1_cap");
        gw__attr_open(&d->attr[A_FAN_RPM], h, "fan1_input");
        gw__attr_open(&d->attr[A_PWM], h, "pwm1");
        static const struct {
            const char *file;
            gw_info_field field;
        } caps[] = {
            {"power1_cap_min", GW_INFO_POWER_LIMIT_MIN},
            {"power1_cap_max", GW_INFO_POWER_LIMIT_MAX},
            {"power1_cap_default", GW_INFO_POWER_LIMIT_DEFAULT},
        };
        uint32_t *dst[] = {&in->power_limit_min_mw, &in->power_limit_max_mw,
                           &in->power_limit_default_mw};
        for (size_t k = 0; k < GW__ARRAY_LEN(caps); k++)
            if (gw__read_u64_at(h, caps[k].file, &v)) {
                *dst[k] = mw_from_uw(v);
                in->valid |= 1ull << caps[k].field;
            }
    }
    gw__strlcpy(in->memory_api, d->apu ? "gtt" : "sysfs", sizeof in->memory_api);
    if (d->has_vram_total) {
        uint64_t total = d->vram_total;
        if (d->apu && d->has_gtt_total && !gw__add_u64(total, d->gtt_total, &total))
            total = UINT64_MAX;
        in->memory_total = total;
        in->valid |= 1ull << GW_INFO_MEMORY_TOTAL;
    }
}

/* The render node minor of a card (128 for renderD128): the renderD*
 * entry of its device's drm folder; -1 when there is none. */
static long render_minor(int dev_dirfd)
{
    int fd = openat(dev_dirfd, "drm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    long minor = -1;
    struct dirent *e;
    uint64_t v;
    while ((e = readdir(dir)) != NULL)
        if (strncmp(e->d_name, "renderD", 7) == 0 && gw__parse_u64(e->d_name + 7, &v) &&
            v < 1u << 20)
            minor = (long)v;
    closedir(dir);
    return minor;
}

/* The value of "key N" in a KFD properties text. */
static bool kfd_property(const char *text, const char *key, uint64_t *out)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, n) != 0 || p[n] != ' ')
            continue;
        char num[24];
        size_t len = strcspn(p + n + 1, "\n");
        if (len == 0 || len >= sizeof num)
            return false;
        memcpy(num, p + n + 1, len);
        num[len] = 0;
        return gw__parse_u64(num, out);
    }
    return false;
}

/* Sets in->arch to the card's gfx target ("gfx90a") from the KFD topology:
 * the node of <sys>/class/kfd/kfd/topology/nodes/N/properties whose
 * drm_render_minor is the card's, its gfx_target_version being major *
 * 10000 + minor * 100 + stepping, written gfx<major><minor hex><stepping
 * hex> as LLVM names targets. Left empty without KFD (no ROCm kernel
 * driver, an old kernel): bf16 support is then unknown, never guessed. */
static void read_gfx_target(const char *sys_root, amd_dev *d)
{
    long minor = render_minor(d->card.dev_dirfd);
    if (minor < 0)
        return;
    char path[700], buf[4096];
    for (unsigned node = 0; node < 256; node++) {
        snprintf(path, sizeof path, "%s/class/kfd/kfd/topology/nodes/%u/properties", sys_root,
                 node);
        long n = gw__read_file(path, buf, sizeof buf);
        if (n < 0 && node > 0)
            break; /* nodes are numbered from 0 without holes */
        uint64_t m, v;
        if (n <= 0 || !kfd_property(buf, "drm_render_minor", &m) || m != (uint64_t)minor ||
            !kfd_property(buf, "gfx_target_version", &v) || v == 0)
            continue;
        unsigned major = (unsigned)(v / 10000), mi = (unsigned)(v / 100 % 100),
                 step = (unsigned)(v % 100);
        if (major < 100 && mi < 16 && step < 16)
            snprintf(d->info.arch, sizeof d->info.arch, "gfx%u%x%x", major, mi, step);
        return;
    }
}

static int amd_open(void **state, const gw__config *cfg, gw_error *err)
{
    *state = NULL;
    amd_state *s = calloc(1, sizeof *s);
    if (!s)
        return gw__error_set(err, GW_ENOMEM, "amdgpu: out of memory");
    s->cfg = *cfg;
    static const char *const drivers[] = {"amdgpu", NULL};
    gw__drm_card *cards = NULL;
    size_t n = 0;
    gw_error e;
    gw_error_clear(&e);
    int rc = gw__drm_cards_list(cfg->sys_root, 0x1002, drivers, &cards, &n, &e);
    if (rc != GW_OK) {
        free(s);
        return gw__error_set(err, rc, "amdgpu: %s", e.message);
    }
    if (n == 0) {
        free(s);
        return gw__error_set(err, GW_ENODEV, "amdgpu: no AMD GPU with the amdgpu driver in %s/class/drm",
                             cfg->sys_root);
    }
    s->devs = calloc(n, sizeof *s->devs);
    if (!s->devs) {
        gw__drm_cards_free(cards, n);
        free(s);
        return gw__error_set(err, GW_ENOMEM, "amdgpu: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        amd_dev *d = &s->devs[i];
        d->card = cards[i];
        d->hwmon = -1;
        for (int a = 0; a < A_COUNT; a++)
            d->attr[a].fd = -1;
        open_device(d);
        read_gfx_target(cfg->sys_root, d);
        gw__driver_version(cfg->sys_root, cfg->proc_root, "amdgpu", d->info.driver_version,
                           sizeof d->info.driver_version);
    }
    s->n_devs = n;
    free(cards); /* descriptors now belong to devs */
    if (gw__procinfo_open(&s->names, cfg->proc_root, gw__procinfo_what(cfg),
                          cfg->pods_dir) != GW_OK) {
        amd_close(s);
        return gw__error_set(err, GW_ENOMEM, "amdgpu: out of memory");
    }
    if (cfg->processes && gw__fdinfo_open_for_backend(&s->fdinfo, cfg, GW__DRM_AMDGPU, s->fdinfo_error,
                                                      sizeof s->fdinfo_error) != GW_OK) {
        amd_close(s);
        return gw__error_set(err, GW_ENOMEM, "amdgpu: out of memory");
    }
    *state = s;
    return GW_OK;
}

/* Reading context of one device in one sample. */
typedef struct rd {
    amd_state *s;
    amd_dev *d;
    int tried, failed, gone;
    int last_errno;
} rd;

/* Counts one read of an open attribute: ok, or failed with errno e (0: the
 * text was not a number); a device gone from sysfs answers ENODEV/ENOENT/
 * ENXIO. Returns ok. */
static bool rd_count(rd *r, bool ok, int e)
{
    r->tried++;
    r->s->calls++;
    if (ok)
        return true;
    r->failed++;
    if (e == ENODEV || e == ENOENT || e == ENXIO)
        r->gone++;
    if (e)
        r->last_errno = e;
    return false;
}

static bool rd_u64(rd *r, int a, uint64_t *out)
{
    if (r->d->attr[a].fd < 0)
        return false;
    int e = 0;
    bool ok = gw__attr_u64(&r->d->attr[a], out, &e);
    return rd_count(r, ok, e);
}

static bool rd_i64(rd *r, int a, int64_t *out)
{
    if (r->d->attr[a].fd < 0)
        return false;
    int e = 0;
    bool ok = gw__attr_i64(&r->d->attr[a], out, &e);
    return rd_count(r, ok, e);
}

static bool rd_text(rd *r, int a, char *buf, size_t cap)
{
    if (r->d->attr[a].fd < 0)
        return false;
    long n = gw__attr_read(&r->d->attr[a], buf, cap);
    return rd_count(r, n > 0, n < 0 ? (int)-n : 0);
}

#define SET(x, m) ((x)->valid |= 1ull << (m))

static uint32_t mhz_from_hz(uint64_t hz)
{
    uint64_t mhz = (hz + 500000) / 1000000;
    return mhz > UINT32_MAX ? UINT32_MAX : (uint32_t)mhz;
}

/* The memory figures of one device into x: VRAM (plus GTT on an APU, see
 * invariant of the header), GTT and CPU-visible VRAM. One code for a sample
 * and for the read_memory op. */
static void read_memory(rd *r, amd_dev *d, gw_sample *x)
{
    uint64_t v, vram_used = 0, gtt_used = 0;
    bool has_vram_used = rd_u64(r, A_VRAM_USED, &vram_used);
    bool has_gtt_used = rd_u64(r, A_GTT_USED, &gtt_used);
    if (d->has_gtt_total) {
        x->gtt_total = d->gtt_total;
        SET(x, GW_METRIC_GTT_TOTAL);
    }
    if (has_gtt_used) {
        x->gtt_used = gtt_used;
        SET(x, GW_METRIC_GTT_USED);
    }
    if (d->has_vis_total) {
        x->vis_vram_total = d->vis_total;
        SET(x, GW_METRIC_VIS_VRAM_TOTAL);
    }
    if (rd_u64(r, A_VIS_USED, &v)) {
        x->vis_vram_used = v;
        SET(x, GW_METRIC_VIS_VRAM_USED);
    }
    if (d->has_vram_total) {
        bool ok = true;
        uint64_t total = d->vram_total, used = vram_used;
        if (d->apu)
            ok = d->has_gtt_total && gw__add_u64(total, d->gtt_total, &total);
        x->mem_total = total;
        if (ok)
            SET(x, GW_METRIC_MEM_TOTAL);
        if (d->apu)
            ok = ok && has_vram_used && has_gtt_used && gw__add_u64(used, gtt_used, &used);
        else
            ok = has_vram_used;
        if (ok) {
            x->mem_used = used;
            SET(x, GW_METRIC_MEM_USED);
            if (used <= total) {
                x->mem_free = total - used;
                SET(x, GW_METRIC_MEM_FREE);
            }
        }
    }
}

static void sample_device(amd_state *s, amd_dev *d, gw_device *out)
{
    out->info = d->info;
    out->sampled_at_ns = gw__now_real_ns();
    gw_sample *x = &out->sample;
    rd r = {.s = s, .d = d};
    uint64_t v;
    int64_t t;
    read_memory(&r, d, x);
    if (rd_u64(&r, A_BUSY, &v) && v <= 100) {
        x->util_gpu = (double)v;
        SET(x, GW_METRIC_UTIL_GPU);
    }
    if (rd_u64(&r, A_MEM_BUSY, &v) && v <= 100) {
        x->util_mem = (double)v;
        SET(x, GW_METRIC_UTIL_MEM);
    }
    char buf[1024];
    uint32_t mhz;
    if (rd_u64(&r, A_SCLK, &v)) {
        x->clock_graphics_mhz = x->clock_sm_mhz = mhz_from_hz(v);
        SET(x, GW_METRIC_CLOCK_GRAPHICS);
        SET(x, GW_METRIC_CLOCK_SM);
    } else if (rd_text(&r, A_DPM_SCLK, buf, sizeof buf) && parse_dpm(buf, false, &mhz)) {
        x->clock_graphics_mhz = x->clock_sm_mhz = mhz;
        SET(x, GW_METRIC_CLOCK_GRAPHICS);
        SET(x, GW_METRIC_CLOCK_SM);
    }
    if (rd_u64(&r, A_MCLK, &v)) {
        x->clock_mem_mhz = mhz_from_hz(v);
        SET(x, GW_METRIC_CLOCK_MEM);
    } else if (rd_text(&r, A_DPM_MCLK, buf, sizeof buf) && parse_dpm(buf, false, &mhz)) {
        x->clock_mem_mhz = mhz;
        SET(x, GW_METRIC_CLOCK_MEM);
    }
    bool edge = rd_i64(&r, A_TEMP_EDGE, &t);
    if (edge) {
        x->temp_mc = mc_clamp(t);
        SET(x, GW_METRIC_TEMP);
    }
    if (rd_i64(&r, A_TEMP_JUNCTION, &t)) {
        x->temp_junction_mc = mc_clamp(t);
        SET(x, GW_METRIC_TEMP_JUNCTION);
        if (!edge && d->attr[A_TEMP_EDGE].fd < 0) {
            x->temp_mc = mc_clamp(t);
            SET(x, GW_METRIC_TEMP);
        }
    }
    if (rd_i64(&r, A_TEMP_MEM, &t)) {
        x->temp_mem_mc = mc_clamp(t);
        SET(x, GW_METRIC_TEMP_MEM);
    }
    if (rd_u64(&r, A_POWER_AVG, &v) || rd_u64(&r, A_POWER_INPUT, &v)) {
        x->power_mw = mw_from_uw(v);
        SET(x, GW_METRIC_POWER);
    }
    if (rd_u64(&r, A_POWER_CAP, &v)) {
        x->power_limit_mw = mw_from_uw(v);
        SET(x, GW_METRIC_POWER_LIMIT);
    }
    if (rd_u64(&r, A_FAN_RPM, &v) && v <= UINT32_MAX) {
        x->fan_rpm = (uint32_t)v;
        SET(x, GW_METRIC_FAN_RPM);
    }
    if (rd_u64(&r, A_PWM, &v) && v <= 255) {
        x->fan_pct = (double)v * 100.0 / 255.0;
        SET(x, GW_METRIC_FAN);
    }
    if (rd_text(&r, A_LINK_SPEED, buf, 64) && (v = gw__pcie_gen_from_speed(buf)) != 0) {
        x->pcie_gen = (uint32_t)v;
        SET(x, GW_METRIC_PCIE_GEN);
    }
    if (rd_u64(&r, A_LINK_WIDTH, &v) && v > 0 && v <= 64) {
        x->pcie_width = (uint32_t)v;
        SET(x, GW_METRIC_PCIE_WIDTH);
    }
    uint64_t ue, ce;
    if (rd_text(&r, A_RAS_UMC, buf, 128) && parse_ras_count(buf, &ue, &ce)) {
        x->ecc_uncorrected = ue;
        x->ecc_corrected = ce;
        SET(x, GW_METRIC_ECC_ERRORS);
    }
    if (r.tried > 0 && r.failed == r.tried) {
        bool gone = r.gone == r.failed;
        out->state = gone ? GW_DEVICE_LOST : GW_DEVICE_ERROR;
        snprintf(out->state_reason, sizeof out->state_reason,
                 "amdgpu: card%u (%s) %s: %s", d->card.card, d->card.pci_bus_id,
                 gone ? "is gone from sysfs" : "answers no sysfs read",
                 strerror(r.last_errno ? r.last_errno : EIO));
        x->valid = 0;
    }
}

/* Encoder / decoder use of a device: the sum over its DRM clients (the sysfs
 * has no device figure for the video engines). Needs two samples. */
static void add_video_use(amd_state *s, amd_dev *d, gw_device *out)
{
    gw__fdinfo_usage u;
    if (!s->fdinfo || out->state != GW_DEVICE_OK ||
        !gw__fdinfo_device_usage(s->fdinfo, d->card.pci_bus_id, &u))
        return;
    if (u.valid & (1u << GW__USE_ENC)) {
        out->sample.util_enc = u.enc_pct;
        SET(&out->sample, GW_METRIC_UTIL_ENC);
    }
    if (u.valid & (1u << GW__USE_DEC)) {
        out->sample.util_dec = u.dec_pct;
        SET(&out->sample, GW_METRIC_UTIL_DEC);
    }
}

static int amd_sample(void *state, gw__collect *c, gw_error *err)
{
    amd_state *s = state;
    s->calls = 0;
    s->samples++;
    gw_strbuf sb;
    gw__strbuf_init(&sb, sizeof s->message);
    for (size_t i = 0; i < s->n_devs; i++)
        if (s->devs[i].apu)
            gw__strbuf_printf(&sb, "%scard%u is an APU: GTT counts as usable memory (memory_api gtt)",
                              sb.len ? "; " : "", s->devs[i].card.card);
    bool swept = false;
    if (!s->cfg.processes) {
        gw__strbuf_printf(&sb, "%sper-process use off", sb.len ? "; " : "");
    } else if (!s->fdinfo) {
        gw__strbuf_printf(&sb, "%sno per-process use: %s", sb.len ? "; " : "", s->fdinfo_error);
    } else {
        gw_error fe;
        gw_error_clear(&fe);
        int rc = gw__fdinfo_sweep(s->fdinfo, gw__now_mono_ns(), &fe);
        s->calls += gw__fdinfo_get_stats(s->fdinfo)->syscalls;
        if (rc == GW_ENOMEM) {
            gw__strbuf_release(&sb);
            return gw__error_set(err, rc, "amdgpu: %s", fe.message);
        }
        swept = rc == GW_OK;
        char note[384];
        gw__fdinfo_describe(s->fdinfo, note, sizeof note);
        if (rc != GW_OK)
            gw__strbuf_printf(&sb, "%sno per-process use: %s", sb.len ? "; " : "", fe.message);
        else if (note[0])
            gw__strbuf_printf(&sb, "%s%s", sb.len ? "; " : "", note);
        if (swept && s->samples == 1 && gw__fdinfo_get_stats(s->fdinfo)->clients > 0)
            gw__strbuf_printf(&sb, "%sprocess busy %% and encoder/decoder use come from DRM "
                                   "fdinfo counters between two samples (none on the first)",
                              sb.len ? "; " : "");
    }
    gw__strlcpy(s->message, sb.len && !sb.failed ? sb.data : "", sizeof s->message);
    gw__strbuf_release(&sb);
    size_t first = gw__collect_device_count(c);
    for (size_t i = 0; i < s->n_devs; i++) {
        gw_device *d = gw__collect_add_device(c);
        if (!d)
            return gw__error_set(err, GW_ENOMEM, "amdgpu: out of memory");
        sample_device(s, &s->devs[i], d);
        if (swept)
            add_video_use(s, &s->devs[i], d);
    }
    if (swept)
        gw__fdinfo_add_processes(s->fdinfo, s->names, c, first, s->n_devs);
    return GW_OK;
}

static void amd_status(void *state, gw_source_status *st)
{
    amd_state *s = state;
    st->state = GW_SOURCE_OK;
    st->calls = s->calls;
    gw__strlcpy(st->message, s->message, sizeof st->message);
    if (s->n_devs)
        gw__strlcpy(st->driver_version, s->devs[0].info.driver_version, sizeof st->driver_version);
}

/* The read_memory op: the device's memory files only. */
static int amd_read_memory(void *state, uint32_t card, gw_sample *out, gw_error *err)
{
    amd_state *s = state;
    for (size_t i = 0; i < s->n_devs; i++) {
        amd_dev *d = &s->devs[i];
        if (d->card.card != card)
            continue;
        rd r = {.s = s, .d = d};
        read_memory(&r, d, out);
        if (r.tried > 0 && r.failed == r.tried)
            return gw__error_set(err, GW_ELOST, "amdgpu: card%u (%s) answers no memory read: %s",
                                 card, d->card.pci_bus_id,
                                 strerror(r.last_errno ? r.last_errno : EIO));
        if (!gw_sample_has(out, GW_METRIC_MEM_TOTAL) || !gw_sample_has(out, GW_METRIC_MEM_USED))
            return gw__error_set(err, GW_ENOENT, "amdgpu: card%u gives no memory figure", card);
        return GW_OK;
    }
    return gw__error_set(err, GW_ENODEV, "amdgpu: no card%u", card);
}

/* The read_process_memory op: the process's DRM clients of the card, from
 * its fdinfo (an APU's GTT counts, as in the device's own figure). */
static int amd_read_process_memory(void *state, uint32_t card, uint32_t pid, uint64_t *bytes,
                                   gw_error *err)
{
    amd_state *s = state;
    for (size_t i = 0; i < s->n_devs; i++)
        if (s->devs[i].card.card == card)
            return gw__fdinfo_pid_memory(s->cfg.proc_root, pid, s->devs[i].card.pci_bus_id,
                                         GW__DRM_AMDGPU, s->devs[i].apu, bytes, err);
    return gw__error_set(err, GW_ENODEV, "amdgpu: no card%u", card);
}

const gw__backend_ops gw__backend_amdgpu = {
    .name = "amdgpu",
    .vendor = GW_VENDOR_AMD,
    .open = amd_open,
    .sample = amd_sample,
    .status = amd_status,
    .close = amd_close,
    .read_memory = amd_read_memory,
    .read_process_memory = amd_read_process_memory,
};
