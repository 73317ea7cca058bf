/* device_query.c — what a job asks about one device: its free and total
 * memory (gw_mem_get_info) and whether it computes in bfloat16
 * (gw_device_supports_bf16).
 *
 * Owns: the choice between the monitor's latest snapshot and a fresh
 * single-device read, and the bf16 table by vendor and architecture.
 *
 * Invariants:
 *  1. A cached read does no I/O once the monitor has a snapshot; the first
 *     call on a monitor without one samples it once.
 *  2. A fresh read goes through the source's read_memory op; a source
 *     without one is sampled whole (gw_monitor_sample), never guessed.
 *  3. free and total follow gw__sample_free_total (core/model.h); a device
 *     without them is GW_ENOENT, never 0.
 *  4. bf16 is answered yes / no only from a fact the source read (compute
 *     capability, gfx target, Intel architecture); otherwise unknown with
 *     the missing fact named.
 */
#include "backends/monitor.h"
#include "core/model.h"
#include "core/util.h"

#include <stdio.h>
#include <string.h>

/* The monitor's latest snapshot, sampling once when it has none. */
static gw_snapshot *latest_or_sample(gw_monitor *m, gw_error *err)
{
    gw_snapshot *s = gw_monitor_latest(m);
    if (!s && gw_monitor_sample(m, &s, err) != GW_OK)
        return NULL;
    return s;
}

/* The device at index i of s, or NULL with GW_ENODEV in err. */
static const gw_device *device_at(const gw_snapshot *s, uint32_t i, gw_error *err)
{
    if (i < s->n_devices)
        return &s->devices[i];
    if (s->n_devices == 0)
        gw__error_set(err, GW_ENODEV, "device %u: no GPU here (%s)", i,
                      s->cpu_only_reason[0] ? s->cpu_only_reason : "no GPU found");
    else
        gw__error_set(err, GW_ENODEV, "device %u: there are %zu devices (0..%zu)", i,
                      s->n_devices, s->n_devices - 1);
    return NULL;
}

static int memory_of(const gw_device *d, const gw_sample *x, uint64_t *freeb, uint64_t *total,
                     gw_error *err)
{
    uint64_t f, t;
    if (!gw__sample_free_total(x, &f, &t))
        return gw__error_set(err, GW_ENOENT, "device %u (%s): its source gives no memory figure",
                             d->info.index, d->info.name);
    if (freeb)
        *freeb = f;
    if (total)
        *total = t;
    return GW_OK;
}

/* A fresh reading of device i when its source has no single-device read: a
 * whole sample, in which the device must still be the same one. */
static int sample_memory(gw_monitor *m, uint32_t i, const char *uuid, uint64_t *freeb,
                         uint64_t *total, gw_error *err)
{
    gw_snapshot *s;
    int rc = gw_monitor_sample(m, &s, err);
    if (rc != GW_OK)
        return rc;
    const gw_device *d = device_at(s, i, err);
    if (!d)
        rc = GW_ENODEV;
    else if (strcmp(d->info.uuid, uuid) != 0)
        rc = gw__error_set(err, GW_ENODEV, "device %u changed since the last sample (was %s)", i,
                           uuid[0] ? uuid : "without a UUID");
    else if (d->state == GW_DEVICE_LOST || d->state == GW_DEVICE_ERROR)
        rc = gw__error_set(err, GW_ELOST, "device %u: %s", i, d->state_reason);
    else
        rc = memory_of(d, &d->sample, freeb, total, err);
    gw_snapshot_release(s);
    return rc;
}

int gw_mem_get_info(gw_monitor *m, uint32_t i, gw_read_mode mode, uint64_t *freeb,
                    uint64_t *total, gw_error *err)
{
    if (!m)
        return gw__error_set(err, GW_EINVAL, "gw_mem_get_info: no monitor");
    if (mode != GW_READ_CACHED && mode != GW_READ_FRESH)
        return gw__error_set(err, GW_EINVAL, "gw_mem_get_info: read mode %d", (int)mode);
    gw_snapshot *s = latest_or_sample(m, err);
    if (!s)
        return err ? err->code : GW_ENOMEM;
    int rc;
    const gw_device *d = device_at(s, i, err);
    if (!d) {
        rc = GW_ENODEV;
    } else if (d->state == GW_DEVICE_LOST || d->state == GW_DEVICE_ERROR) {
        rc = gw__error_set(err, GW_ELOST, "device %u: %s", i, d->state_reason);
    } else if (mode == GW_READ_CACHED) {
        rc = memory_of(d, &d->sample, freeb, total, err);
    } else {
        gw_sample x;
        rc = gw__monitor_read_memory(m, d, &x, err);
        if (rc == GW_OK)
            rc = memory_of(d, &x, freeb, total, err);
        else if (rc == GW_ENOTSUP)
            rc = sample_memory(m, i, d->info.uuid, freeb, total, err);
    }
    gw_snapshot_release(s);
    return rc;
}

/* ------------------------------------------------------------------ bf16 */

/* AMD: CDNA2 (gfx90a), CDNA3 (gfx94x, gfx95x), RDNA3 and later (gfx11xx,
 * gfx12xx) have bf16 in their matrix / dot instructions. */
static int amd_bf16(const char *gfx, char *why, size_t cap)
{
    unsigned v = 0;
    if (strncmp(gfx, "gfx", 3) == 0)
        sscanf(gfx + 3, "%x", &v); /* "gfx90a" -> 0x90a, "gfx1100" -> 0x1100 */
    if (v == 0x90a || (v >= 0x940 && v <= 0x95f) || (v >= 0x1100 && v <= 0x12ff)) {
        snprintf(why, cap, "%s (%s) has bf16 instructions", gfx,
                 v >= 0x1100 ? (v >= 0x1200 ? "RDNA4" : "RDNA3") : v == 0x90a ? "CDNA2" : "CDNA3");
        return 1;
    }
    if (v != 0 && v < 0x1100) {
        snprintf(why, cap, "%s is older than CDNA2 / RDNA3: no native bf16", gfx);
        return 0;
    }
    snprintf(why, cap, "gfx target '%s' is not one this library knows", gfx);
    return -1;
}

static int intel_bf16(const char *arch, char *why, size_t cap)
{
    static const char *const yes[] = {"xe-hpg", "xe-hpc", "xe-lpg-plus", "xe2-lpg", "xe2-hpg"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcmp(arch, yes[i]) == 0) {
            snprintf(why, cap, "%s has XMX matrix engines with bf16", arch);
            return 1;
        }
    snprintf(why, cap, "%s has no XMX matrix engines: bf16 only emulated", arch);
    return 0;
}

/* The verdict for one device (invariant 4). */
static int bf16_verdict(const gw_device *d, char *why, size_t cap)
{
    const gw_device_info *in = &d->info;
    switch (in->vendor) {
    case GW_VENDOR_NVIDIA:
        if (!gw_info_has(in, GW_INFO_COMPUTE_CAP))
            break;
        snprintf(why, cap, "compute capability %d.%d %s 8.0", in->cc_major, in->cc_minor,
                 in->cc_major >= 8 ? ">=" : "<");
        return in->cc_major >= 8;
    case GW_VENDOR_AMD:
        if (in->arch[0])
            return amd_bf16(in->arch, why, cap);
        snprintf(why, cap, "%s: no gfx target (the KFD topology under /sys/class/kfd is "
                           "missing)", in->name);
        return -1;
    case GW_VENDOR_INTEL:
        if (in->arch[0])
            return intel_bf16(in->arch, why, cap);
        snprintf(why, cap, "%s: architecture not known for this PCI device id", in->name);
        return -1;
    default:
        break;
    }
    snprintf(why, cap, "%s: no compute capability or architecture read (source %s)",
             in->name[0] ? in->name : "device", in->source);
    return -1;
}

int gw_device_supports_bf16(gw_monitor *m, uint32_t i, char *reason, size_t cap)
{
    char why[256];
    gw_error err;
    gw_error_clear(&err);
    int verdict = -1;
    gw_snapshot *s = m ? latest_or_sample(m, &err) : NULL;
    const gw_device *d = s ? device_at(s, i, &err) : NULL;
    if (d)
        verdict = bf16_verdict(d, why, sizeof why);
    else
        gw__strlcpy(why, m ? err.message : "no monitor", sizeof why);
    if (reason && cap)
        gw__strlcpy(reason, why, cap);
    gw_snapshot_release(s);
    return verdict;
}
