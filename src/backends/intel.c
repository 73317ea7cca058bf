/* intel.c — the Intel backend: i915 and xe GPUs through sysfs and hwmon, with
 * memory used and engine busy derived from DRM fdinfo (fdinfo.h).
 *
 * Owns: one intel_dev per /sys/class/drm/cardN with vendor 0x8086 and driver
 * i915 or xe, its dynamic attribute files held open (pread per sample), the
 * previous energy reading per device, the fdinfo sweep filtered to i915 + xe,
 * and the process-name cache.
 *
 * What is read (every file optional):
 *  - frequencies: i915 cardN/gt_act_freq_mhz (else gt_cur_freq_mhz), max
 *    gt_max_freq_mhz; xe device/tile0/gt0/freq0/act_freq (else cur_freq),
 *    max max_freq. MHz. An idle GT reports 0 MHz, which is a real value.
 *  - hwmon (i915 and xe dGPUs; integrated i915 GPUs have none): temperature
 *    from the temp*_input labelled "pkg" (else the lowest-numbered one), the
 *    one labelled "vram" as memory temperature; power from energy1_input
 *    deltas (uJ, 64-bit: power = delta energy / delta monotonic time; the
 *    first sample and a counter that went backwards give no power); the
 *    energy itself (since driver load); power1_max (else power1_cap) as
 *    the power limit.
 *  - VRAM total: xe device/tileN/physical_vram_size_bytes summed over tiles.
 *    i915 gives VRAM only through an ioctl, so it stays unknown there.
 *  - from fdinfo (sum over the device's clients; the sysfs has no device
 *    figure): memory used (local/vram regions), GTT (system0 / gtt), and
 *    utilisation of the render+compute, video engines. Busy % needs two
 *    samples. The status message always says the utilisation is derived.
 */
#include "backends/backend.h"
#include "backends/fdinfo.h"
#include "backends/procinfo.h"
#include "backends/sysfs.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { I_ACT, I_CUR, I_TEMP, I_TEMP_MEM, I_ENERGY, I_POWER_MAX, I_COUNT };

typedef struct intel_dev {
    gw__drm_card card;
    bool xe;
    int hwmon;
    bool has_vram_total;
    uint64_t vram_total;
    gw_device_info info;
    gw__attr attr[I_COUNT];
    bool have_energy;
    uint64_t prev_energy_uj;
    int64_t prev_energy_ns;
} intel_dev;

typedef struct intel_state {
    gw__config cfg;
    intel_dev *devs;
    size_t n_devs;
    gw__fdinfo *fdinfo;
    char fdinfo_error[160];
    gw__procinfo *names;
    uint64_t calls;
    uint32_t samples;
    char message[384];
} intel_state;

static void intel_close(void *state)
{
    intel_state *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_devs; i++) {
        intel_dev *d = &s->devs[i];
        for (int a = 0; a < I_COUNT; a++)
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

static void open_hwmon(intel_dev *d)
{
    int h = d->hwmon;
    int pkg = 0, vram = 0, lowest = 0;
    for (int n = 1; n <= 8; n++) {
        char rel[32], label[32];
        snprintf(rel, sizeof rel, "temp%d_input", n);
        if (!gw__exists_at(h, rel))
            continue;
        if (!lowest)
            lowest = n;
        snprintf(rel, sizeof rel, "temp%d_label", n);
        if (gw__read_line_at(h, rel, label, sizeof label)) {
            if (!pkg && strcmp(label, "pkg") == 0)
                pkg = n;
            if (!vram && strcmp(label, "vram") == 0)
                vram = n;
        }
    }
    int gpu = pkg ? pkg : lowest != vram ? lowest : 0;
    char rel[32];
    if (gpu) {
        snprintf(rel, sizeof rel, "temp%d_input", gpu);
        gw__attr_open(&d->attr[I_TEMP], h, rel);
    }
    if (vram) {
        snprintf(rel, sizeof rel, "temp%d_input", vram);
        gw__attr_open(&d->attr[I_TEMP_MEM], h, rel);
    }
    gw__attr_open(&d->attr[I_ENERGY], h, "energy1_input");
    if (!gw__attr_open(&d->attr[I_POWER_MAX], h, "power1_max"))
        gw__attr_open(&d->attr[I_POWER_MAX], h, "power1_cap");
}

/* The graphics architecture of an Intel GPU from its PCI device id (the
 * kernel's i915 / xe PCI id lists), as gw_device_supports_bf16 reads it;
 * NULL for an id not listed here (older generations, newer parts). */
static const char *intel_arch(uint32_t id)
{
    static const struct {
        uint16_t lo, hi;
        const char *arch;
    } ranges[] = {
        {0x4680, 0x46D4, "xe-lp"},       /* Alder Lake S/P/N */
        {0x4905, 0x4909, "xe-lp"},       /* DG1 */
        {0x4C8A, 0x4C9A, "xe-lp"},       /* Rocket Lake */
        {0x9A40, 0x9AF8, "xe-lp"},       /* Tiger Lake */
        {0xA780, 0xA7AD, "xe-lp"},       /* Raptor Lake */
        {0x5690, 0x56C1, "xe-hpg"},      /* DG2: Arc A-series, Flex */
        {0x0BD0, 0x0BDB, "xe-hpc"},      /* Ponte Vecchio: Data Center GPU Max */
        {0x7D40, 0x7D45, "xe-lpg"},      /* Meteor Lake, Arrow Lake U */
        {0x7D51, 0x7D51, "xe-lpg-plus"}, /* Arrow Lake H (with XMX) */
        {0x7D55, 0x7D67, "xe-lpg"},
        {0x7DD1, 0x7DD1, "xe-lpg-plus"},
        {0x7DD5, 0x7DD5, "xe-lpg"},
        {0x6420, 0x64B0, "xe2-lpg"},     /* Lunar Lake */
        {0xE202, 0xE223, "xe2-hpg"},     /* Battlemage: Arc B-series */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (id >= ranges[i].lo && id <= ranges[i].hi)
            return ranges[i].arch;
    return NULL;
}

static void open_device(intel_dev *d)
{
    gw_device_info *in = &d->info;
    int dev = d->card.dev_dirfd, card = d->card.card_dirfd;
    d->xe = strcmp(d->card.driver, "xe") == 0;
    in->vendor = GW_VENDOR_INTEL;
    in->source_index = d->card.card;
    gw__strlcpy(in->source, "intel", sizeof in->source);
    gw__strlcpy(in->pci_bus_id, d->card.pci_bus_id, sizeof in->pci_bus_id);
    snprintf(in->name, sizeof in->name, "Intel GPU [8086:%04x] (%s)", d->card.device_id,
             d->card.driver);
    gw__strlcpy(in->memory_api, "fdinfo", sizeof in->memory_api);
    const char *arch = intel_arch(d->card.device_id);
    if (arch)
        gw__strlcpy(in->arch, arch, sizeof in->arch);
    uint64_t v;
    if (d->xe) {
        gw__attr_open(&d->attr[I_ACT], dev, "tile0/gt0/freq0/act_freq");
        gw__attr_open(&d->attr[I_CUR], dev, "tile0/gt0/freq0/cur_freq");
        if (gw__read_u64_at(dev, "tile0/gt0/freq0/max_freq", &v) && v <= UINT32_MAX) {
            in->max_clock_graphics_mhz = (uint32_t)v;
            in->valid |= 1ull << GW_INFO_MAX_CLOCK_GRAPHICS;
        }
        for (int t = 0; t < 4; t++) {
            char rel[48];
            snprintf(rel, sizeof rel, "tile%d/physical_vram_size_bytes", t);
            if (gw__read_u64_at(dev, rel, &v)) {
                if (!gw__add_u64(d->vram_total, v, &d->vram_total))
                    d->vram_total = UINT64_MAX;
                d->has_vram_total = true;
            }
        }
    } else {
        gw__attr_open(&d->attr[I_ACT], card, "gt_act_freq_mhz");
        gw__attr_open(&d->attr[I_CUR], card, "gt_cur_freq_mhz");
        if (gw__read_u64_at(card, "gt_max_freq_mhz", &v) && v <= UINT32_MAX) {
            in->max_clock_graphics_mhz = (uint32_t)v;
            in->valid |= 1ull << GW_INFO_MAX_CLOCK_GRAPHICS;
        }
    }
    if (d->has_vram_total) {
        in->memory_total = d->vram_total;
        in->valid |= 1ull << GW_INFO_MEMORY_TOTAL;
    }
    d->hwmon = gw__hwmon_open(dev, d->xe ? "xe" : "i915");
    if (d->hwmon >= 0)
        open_hwmon(d);
}

static int intel_open(void **state, const gw__config *cfg, gw_error *err)
{
    *state = NULL;
    intel_state *s = calloc(1, sizeof *s);
    if (!s)
        return gw__error_set(err, GW_ENOMEM, "intel: out of memory");
    s->cfg = *cfg;
    static const char *const drivers[] = {"i915", "xe", NULL};
    gw__drm_card *cards = NULL;
    size_t n = 0;
    gw_error e;
    gw_error_clear(&e);
    int rc = gw__drm_cards_list(cfg->sys_root, 0x8086, drivers, &cards, &n, &e);
    if (rc != GW_OK) {
        free(s);
        return gw__error_set(err, rc, "intel: %s", e.message);
    }
    /* a card without a driver link cannot be told i915 from xe: skip it */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (cards[i].driver[0]) {
            cards[w++] = cards[i];
        } else {
            close(cards[i].card_dirfd);
            close(cards[i].dev_dirfd);
        }
    }
    n = w;
    if (n == 0) {
        gw__drm_cards_free(cards, 0);
        free(s);
        return gw__error_set(err, GW_ENODEV, "intel: no Intel GPU with the i915 or xe driver in %s/class/drm",
                             cfg->sys_root);
    }
    s->devs = calloc(n, sizeof *s->devs);
    if (!s->devs) {
        gw__drm_cards_free(cards, n);
        free(s);
        return gw__error_set(err, GW_ENOMEM, "intel: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        intel_dev *d = &s->devs[i];
        d->card = cards[i];
        d->hwmon = -1;
        for (int a = 0; a < I_COUNT; a++)
            d->attr[a].fd = -1;
        open_device(d);
        gw__driver_version(cfg->sys_root, cfg->proc_root, d->card.driver, d->info.driver_version,
                           sizeof d->info.driver_version);
    }
    s->n_devs = n;
    free(cards);
    if (gw__procinfo_open(&s->names, cfg->proc_root, gw__procinfo_what(cfg),
                          cfg->pods_dir) != GW_OK) {
        intel_close(s);
        return gw__error_set(err, GW_ENOMEM, "intel: out of memory");
    }
    if (cfg->processes && gw__fdinfo_open_for_backend(&s->fdinfo, cfg, GW__DRM_I915 | GW__DRM_XE, s->fdinfo_error,
                                                      sizeof s->fdinfo_error) != GW_OK) {
        intel_close(s);
        return gw__error_set(err, GW_ENOMEM, "intel: out of memory");
    }
    *state = s;
    return GW_OK;
}

#define SET(x, m) ((x)->valid |= 1ull << (m))

static int32_t mc_clamp(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static void sample_device(intel_state *s, intel_dev *d, gw_device *out)
{
    out->info = d->info;
    out->sampled_at_ns = gw__now_real_ns();
    gw_sample *x = &out->sample;
    uint64_t v;
    int64_t t;
    int tried = 0, failed = 0, gone = 0, last = 0;
#define READ_U64(a, dst)                                                                  \
    (d->attr[a].fd >= 0 && (tried++, s->calls++, 1) &&                                    \
     (gw__attr_u64(&d->attr[a], dst, &last) ||                                            \
      (failed++, gone += (last == ENODEV || last == ENOENT || last == ENXIO), 0)))
#define READ_I64(a, dst)                                                                  \
    (d->attr[a].fd >= 0 && (tried++, s->calls++, 1) &&                                    \
     (gw__attr_i64(&d->attr[a], dst, &last) ||                                            \
      (failed++, gone += (last == ENODEV || last == ENOENT || last == ENXIO), 0)))
    if ((READ_U64(I_ACT, &v) || READ_U64(I_CUR, &v)) && v <= UINT32_MAX) {
        x->clock_graphics_mhz = (uint32_t)v;
        SET(x, GW_METRIC_CLOCK_GRAPHICS);
    }
    if (READ_I64(I_TEMP, &t)) {
        x->temp_mc = mc_clamp(t);
        SET(x, GW_METRIC_TEMP);
    }
    if (READ_I64(I_TEMP_MEM, &t)) {
        x->temp_mem_mc = mc_clamp(t);
        SET(x, GW_METRIC_TEMP_MEM);
    }
    int64_t now = gw__now_mono_ns();
    if (READ_U64(I_ENERGY, &v)) {
        x->energy_mj = v / 1000;
        SET(x, GW_METRIC_ENERGY);
        if (d->have_energy && v >= d->prev_energy_uj && now > d->prev_energy_ns) {
            /* uJ / ns * 1e9 = uW; / 1000 = mW  ->  uJ * 1e6 / ns */
            double mw = (double)(v - d->prev_energy_uj) * 1e6 / (double)(now - d->prev_energy_ns);
            if (mw <= (double)UINT32_MAX) {
                x->power_mw = (uint32_t)(mw + 0.5);
                SET(x, GW_METRIC_POWER);
            }
        }
        d->have_energy = true;
        d->prev_energy_uj = v;
        d->prev_energy_ns = now;
    }
    if (READ_U64(I_POWER_MAX, &v)) {
        uint64_t mw = v / 1000;
        x->power_limit_mw = mw > UINT32_MAX ? UINT32_MAX : (uint32_t)mw;
        SET(x, GW_METRIC_POWER_LIMIT);
    }
#undef READ_U64
#undef READ_I64
    if (d->has_vram_total) {
        x->mem_total = d->vram_total;
        SET(x, GW_METRIC_MEM_TOTAL);
    }
    gw__fdinfo_usage u;
    if (s->fdinfo && gw__fdinfo_device_usage(s->fdinfo, d->card.pci_bus_id, &u)) {
        if (u.valid & (1u << GW__USE_VRAM)) {
            x->mem_used = u.vram_bytes;
            SET(x, GW_METRIC_MEM_USED);
            if (d->has_vram_total && u.vram_bytes <= d->vram_total) {
                x->mem_free = d->vram_total - u.vram_bytes;
                SET(x, GW_METRIC_MEM_FREE);
            }
        }
        if (u.valid & (1u << GW__USE_GTT)) {
            x->gtt_used = u.gtt_bytes;
            SET(x, GW_METRIC_GTT_USED);
        }
        if (u.valid & (1u << GW__USE_GFX)) {
            x->util_gpu = u.gfx_pct;
            SET(x, GW_METRIC_UTIL_GPU);
        }
        if (u.valid & (1u << GW__USE_ENC)) {
            x->util_enc = u.enc_pct;
            SET(x, GW_METRIC_UTIL_ENC);
        }
        if (u.valid & (1u << GW__USE_DEC)) {
            x->util_dec = u.dec_pct;
            SET(x, GW_METRIC_UTIL_DEC);
        }
    } else if (s->fdinfo && d->has_vram_total && gw__fdinfo_get_stats(s->fdinfo)->drm_fds_keys) {
        /* fdinfo works and no client uses this GPU: nothing allocated */
        x->mem_used = 0;
        x->mem_free = d->vram_total;
        SET(x, GW_METRIC_MEM_USED);
        SET(x, GW_METRIC_MEM_FREE);
    }
    if (tried > 0 && failed == tried) {
        bool lost = gone == failed;
        out->state = lost ? GW_DEVICE_LOST : GW_DEVICE_ERROR;
        snprintf(out->state_reason, sizeof out->state_reason, "intel: card%u (%s) %s: %s",
                 d->card.card, d->card.pci_bus_id,
                 lost ? "is gone from sysfs" : "answers no sysfs read",
                 strerror(last ? last : EIO));
        x->valid = 0;
    }
}

static int intel_sample(void *state, gw__collect *c, gw_error *err)
{
    intel_state *s = state;
    s->calls = 0;
    s->samples++;
    gw_strbuf sb;
    gw__strbuf_init(&sb, sizeof s->message);
    gw__strbuf_puts(&sb, "utilization and memory used derived from DRM fdinfo clients");
    int rc = GW_OK;
    gw_error fe;
    gw_error_clear(&fe);
    if (!s->cfg.processes) {
        gw__strbuf_puts(&sb, "; per-process use off, so no utilization or memory used");
    } else if (!s->fdinfo) {
        gw__strbuf_printf(&sb, "; unavailable: %s", s->fdinfo_error);
    } else {
        rc = gw__fdinfo_sweep(s->fdinfo, gw__now_mono_ns(), &fe);
        s->calls += gw__fdinfo_get_stats(s->fdinfo)->syscalls;
        if (rc == GW_ENOMEM) {
            gw__strbuf_release(&sb);
            return gw__error_set(err, rc, "intel: %s", fe.message);
        }
        char note[384];
        gw__fdinfo_describe(s->fdinfo, note, sizeof note);
        if (rc != GW_OK)
            gw__strbuf_printf(&sb, "; unavailable: %s", fe.message);
        else if (note[0])
            gw__strbuf_printf(&sb, "; %s", note);
        if (rc == GW_OK && s->samples == 1 && gw__fdinfo_get_stats(s->fdinfo)->clients > 0)
            gw__strbuf_puts(&sb, "; busy % needs two samples (none on the first)");
    }
    gw__strlcpy(s->message, sb.len && !sb.failed ? sb.data : "", sizeof s->message);
    gw__strbuf_release(&sb);
    gw__fdinfo *fd_ok = rc == GW_OK ? s->fdinfo : NULL;
    gw__fdinfo *saved = s->fdinfo;
    s->fdinfo = fd_ok; /* devices read usage only from a good sweep */
    size_t first = gw__collect_device_count(c);
    for (size_t i = 0; i < s->n_devs; i++) {
        gw_device *d = gw__collect_add_device(c);
        if (!d) {
            s->fdinfo = saved;
            return gw__error_set(err, GW_ENOMEM, "intel: out of memory");
        }
        sample_device(s, &s->devs[i], d);
    }
    if (s->fdinfo)
        gw__fdinfo_add_processes(s->fdinfo, s->names, c, first, s->n_devs);
    s->fdinfo = saved;
    return GW_OK;
}

static void intel_status(void *state, gw_source_status *st)
{
    intel_state *s = state;
    st->state = GW_SOURCE_OK;
    st->calls = s->calls;
    gw__strlcpy(st->message, s->message, sizeof st->message);
    if (s->n_devs)
        gw__strlcpy(st->driver_version, s->devs[0].info.driver_version, sizeof st->driver_version);
}

/* The read_process_memory op: the process's i915 / xe clients of the card,
 * device-local memory, from its fdinfo (as the device's used figure). */
static int intel_read_process_memory(void *state, uint32_t card, uint32_t pid, uint64_t *bytes,
                                     gw_error *err)
{
    intel_state *s = state;
    for (size_t i = 0; i < s->n_devs; i++)
        if (s->devs[i].card.card == card)
            return gw__fdinfo_pid_memory(s->cfg.proc_root, pid, s->devs[i].card.pci_bus_id,
                                         GW__DRM_I915 | GW__DRM_XE, false, bytes, err);
    return gw__error_set(err, GW_ENODEV, "intel: no card%u", card);
}

const gw__backend_ops gw__backend_intel = {
    .name = "intel",
    .vendor = GW_VENDOR_INTEL,
    .open = intel_open,
    .sample = intel_sample,
    .status = intel_status,
    .close = intel_close,
    .read_process_memory = intel_read_process_memory,
};
