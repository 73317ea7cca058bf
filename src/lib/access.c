/* access.c — the public accessors of a snapshot, its devices, processes and
 * sources (include/gpuwatch.h), over the layouts of core/model.h.
 *
 * Owns: the mapping from the public enums to the fields of the internal
 * structs, which is what keeps those structs out of the ABI.
 *
 * Invariants:
 *  1. No accessor allocates, locks or fails other than by its documented
 *     return: NULL / GW_EINVAL for an index or enum value it does not know,
 *     GW_ENOENT for a value whose valid bit is clear.
 *  2. A value is read only when its valid bit is set (model invariant 2).
 */
#include "core/model.h"

#include <stddef.h>

const char *gw_version(void) { return GW_VERSION_STRING; }

uint64_t gw_snapshot_seq(const gw_snapshot *s) { return s->seq; }
int64_t gw_snapshot_taken_ns(const gw_snapshot *s) { return s->taken_ns; }
bool gw_snapshot_cpu_only(const gw_snapshot *s) { return s->cpu_only; }
const char *gw_snapshot_cpu_only_reason(const gw_snapshot *s)
{
    return s->cpu_only ? s->cpu_only_reason : "";
}
size_t gw_snapshot_device_count(const gw_snapshot *s) { return s->n_devices; }
size_t gw_snapshot_process_count(const gw_snapshot *s) { return s->n_processes; }
size_t gw_snapshot_source_count(const gw_snapshot *s) { return s->n_sources; }
const char *gw_snapshot_hostname(const gw_snapshot *s) { return s->host.hostname; }

const gw_device *gw_snapshot_device(const gw_snapshot *s, size_t i)
{
    return i < s->n_devices ? &s->devices[i] : NULL;
}

const gw_process *gw_snapshot_process(const gw_snapshot *s, size_t i)
{
    return i < s->n_processes ? &s->processes[i] : NULL;
}

const gw_source_status *gw_snapshot_source(const gw_snapshot *s, size_t i)
{
    return i < s->n_sources ? &s->sources[i] : NULL;
}

int gw_snapshot_host_value(const gw_snapshot *s, gw_host_field f, double *out)
{
    const gw_host *h = &s->host;
    if ((unsigned)f >= GW_HOST_FIELD_COUNT)
        return GW_EINVAL;
    if (!gw_host_has(h, f))
        return GW_ENOENT;
    switch (f) {
    case GW_HOST_MEM_TOTAL: *out = (double)h->mem_total; break;
    case GW_HOST_MEM_AVAILABLE: *out = (double)h->mem_available; break;
    case GW_HOST_SWAP_TOTAL: *out = (double)h->swap_total; break;
    case GW_HOST_SWAP_FREE: *out = (double)h->swap_free; break;
    case GW_HOST_CPU_COUNT: *out = h->cpu_count; break;
    case GW_HOST_LOADAVG: *out = h->load1; break;
    case GW_HOST_CPU_UTIL: *out = h->cpu_util; break;
    default: return GW_EINVAL;
    }
    return GW_OK;
}

const char *gw_device_text_of(const gw_device *d, gw_device_text f)
{
    const gw_device_info *in = &d->info;
    switch (f) {
    case GW_DEVICE_UUID: return in->uuid;
    case GW_DEVICE_NAME: return in->name;
    case GW_DEVICE_PCI_BUS_ID: return in->pci_bus_id;
    case GW_DEVICE_SERIAL: return in->serial;
    case GW_DEVICE_DRIVER_VERSION: return in->driver_version;
    case GW_DEVICE_SOURCE: return in->source;
    case GW_DEVICE_ARCH: return in->arch;
    case GW_DEVICE_STATE_REASON: return d->state_reason;
    case GW_DEVICE_MEMORY_API: return in->memory_api;
    }
    return NULL;
}

uint32_t gw_device_index(const gw_device *d) { return d->info.index; }
gw_vendor gw_device_vendor(const gw_device *d) { return d->info.vendor; }
gw_device_state gw_device_state_of(const gw_device *d) { return d->state; }

int gw_device_metric(const gw_device *d, gw_metric m, double *out)
{
    const gw_sample *x = &d->sample;
    if ((unsigned)m >= GW_METRIC_COUNT)
        return GW_EINVAL;
    if (!gw_sample_has(x, m))
        return GW_ENOENT;
    double v;
    switch (m) {
    case GW_METRIC_MEM_TOTAL: v = (double)x->mem_total; break;
    case GW_METRIC_MEM_USED: v = (double)x->mem_used; break;
    case GW_METRIC_MEM_FREE: v = (double)x->mem_free; break;
    case GW_METRIC_MEM_RESERVED: v = (double)x->mem_reserved; break;
    case GW_METRIC_UTIL_GPU: v = x->util_gpu; break;
    case GW_METRIC_UTIL_MEM: v = x->util_mem; break;
    case GW_METRIC_UTIL_ENC: v = x->util_enc; break;
    case GW_METRIC_UTIL_DEC: v = x->util_dec; break;
    case GW_METRIC_TEMP: v = x->temp_mc; break;
    case GW_METRIC_POWER: v = x->power_mw; break;
    case GW_METRIC_POWER_LIMIT: v = x->power_limit_mw; break;
    case GW_METRIC_ENERGY: v = (double)x->energy_mj; break;
    case GW_METRIC_CLOCK_SM: v = x->clock_sm_mhz; break;
    case GW_METRIC_CLOCK_GRAPHICS: v = x->clock_graphics_mhz; break;
    case GW_METRIC_CLOCK_MEM: v = x->clock_mem_mhz; break;
    case GW_METRIC_FAN: v = x->fan_pct; break;
    case GW_METRIC_PSTATE: v = x->pstate; break;
    case GW_METRIC_CLOCK_EVENTS: v = (double)x->clock_events; break;
    case GW_METRIC_PCIE_GEN: v = x->pcie_gen; break;
    case GW_METRIC_PCIE_WIDTH: v = x->pcie_width; break;
    case GW_METRIC_MIG_MODE: v = x->mig_mode; break;
    case GW_METRIC_GTT_TOTAL: v = (double)x->gtt_total; break;
    case GW_METRIC_GTT_USED: v = (double)x->gtt_used; break;
    case GW_METRIC_VIS_VRAM_TOTAL: v = (double)x->vis_vram_total; break;
    case GW_METRIC_VIS_VRAM_USED: v = (double)x->vis_vram_used; break;
    case GW_METRIC_TEMP_JUNCTION: v = x->temp_junction_mc; break;
    case GW_METRIC_TEMP_MEM: v = x->temp_mem_mc; break;
    case GW_METRIC_FAN_RPM: v = x->fan_rpm; break;
    case GW_METRIC_PCIE_REPLAYS: v = (double)x->pcie_replays; break;
    case GW_METRIC_ECC_ERRORS: v = (double)x->ecc_uncorrected; break;
    case GW_METRIC_ROW_REMAP: v = x->remap_uncorrectable; break;
    case GW_METRIC_XID: v = x->xid_last; break;
    default: return GW_EINVAL;
    }
    *out = v;
    return GW_OK;
}

int gw_device_info_value(const gw_device *d, gw_info_field f, double *out)
{
    const gw_device_info *in = &d->info;
    if ((unsigned)f >= GW_INFO_FIELD_COUNT)
        return GW_EINVAL;
    if (!gw_info_has(in, f))
        return GW_ENOENT;
    switch (f) {
    case GW_INFO_MEMORY_TOTAL: *out = (double)in->memory_total; break;
    case GW_INFO_COMPUTE_CAP: *out = in->cc_major + in->cc_minor / 10.0; break;
    case GW_INFO_MAX_CLOCK_SM: *out = in->max_clock_sm_mhz; break;
    case GW_INFO_MAX_CLOCK_GRAPHICS: *out = in->max_clock_graphics_mhz; break;
    case GW_INFO_MAX_CLOCK_MEM: *out = in->max_clock_mem_mhz; break;
    case GW_INFO_POWER_LIMIT_MIN: *out = in->power_limit_min_mw; break;
    case GW_INFO_POWER_LIMIT_MAX: *out = in->power_limit_max_mw; break;
    case GW_INFO_POWER_LIMIT_DEFAULT: *out = in->power_limit_default_mw; break;
    case GW_INFO_TEMP_SHUTDOWN: *out = in->temp_shutdown_mc; break;
    case GW_INFO_TEMP_SLOWDOWN: *out = in->temp_slowdown_mc; break;
    case GW_INFO_TEMP_MEM_MAX: *out = in->temp_mem_max_mc; break;
    case GW_INFO_TEMP_GPU_MAX: *out = in->temp_gpu_max_mc; break;
    case GW_INFO_PCIE_MAX_GEN: *out = in->pcie_max_gen; break;
    case GW_INFO_PCIE_MAX_WIDTH: *out = in->pcie_max_width; break;
    default: return GW_EINVAL; /* GW_INFO_SERIAL is text: gw_device_text_of */
    }
    return GW_OK;
}

int gw_device_compute_capability(const gw_device *d, int *major, int *minor)
{
    if (!gw_info_has(&d->info, GW_INFO_COMPUTE_CAP))
        return GW_ENOENT;
    *major = d->info.cc_major;
    *minor = d->info.cc_minor;
    return GW_OK;
}

uint32_t gw_process_pid(const gw_process *p) { return p->pid; }
uint32_t gw_process_device_index(const gw_process *p) { return p->device_index; }
gw_process_kind gw_process_kind_of(const gw_process *p) { return p->kind; }

int gw_process_value(const gw_process *p, gw_process_field f, double *out)
{
    if ((unsigned)f >= GW_PROC_FIELD_COUNT)
        return GW_EINVAL;
    double v;
    switch (f) {
    case GW_PROC_GPU_MEMORY: v = (double)p->gpu_memory; break;
    case GW_PROC_SM_UTIL: v = p->sm_util; break;
    case GW_PROC_MEM_UTIL: v = p->mem_util; break;
    case GW_PROC_ENC_UTIL: v = p->enc_util; break;
    case GW_PROC_DEC_UTIL: v = p->dec_util; break;
    case GW_PROC_GTT_MEMORY: v = (double)p->gtt_memory; break;
    case GW_PROC_HOST_MEMORY: v = (double)p->host_memory; break;
    case GW_PROC_CPU_UTIL: v = p->cpu_util; break;
    default: return GW_EINVAL; /* text fields and the owner */
    }
    if (!gw_process_has(p, f))
        return GW_ENOENT;
    *out = v;
    return GW_OK;
}

const char *gw_process_text(const gw_process *p, gw_process_field f)
{
    const char *t;
    switch (f) {
    case GW_PROC_NAME: t = p->name; break;
    case GW_PROC_USER: t = p->user; break;
    case GW_PROC_CMDLINE: t = p->cmdline; break;
    case GW_PROC_MODEL: t = p->model; break;
    default: return NULL;
    }
    return gw_process_has(p, f) ? t : NULL;
}

const char *gw_source_name(const gw_source_status *st) { return st->name; }
gw_source_state gw_source_state_of(const gw_source_status *st) { return st->state; }
const char *gw_source_message(const gw_source_status *st) { return st->message; }
