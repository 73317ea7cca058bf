/* names.c — the static text of every enum in gpuwatch.h (error messages,
 * vendor/state/metric names). These strings appear in JSON and in metrics,
 * so they only ever get appended to, never renamed. */
#include "core/model.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

const char *gw_strerror(int code)
{
    switch (code) {
#define GW__ERR_CASE(name, value, text) \
    case value:                         \
        return text;
        GW_ERROR_LIST(GW__ERR_CASE)
#undef GW__ERR_CASE
    }
    return "unknown error";
}

void gw_error_clear(gw_error *err)
{
    if (err) {
        err->code = GW_OK;
        err->message[0] = '\0';
    }
}

const char *gw_vendor_name(gw_vendor v)
{
    switch (v) {
    case GW_VENDOR_NVIDIA: return "nvidia";
    case GW_VENDOR_AMD: return "amd";
    case GW_VENDOR_INTEL: return "intel";
    case GW_VENDOR_UNKNOWN: break;
    }
    return "unknown";
}

bool gw__vendor_parse(const char *s, gw_vendor *out)
{
    for (gw_vendor v = GW_VENDOR_NVIDIA; v <= GW_VENDOR_INTEL; v++)
        if (s && strcmp(s, gw_vendor_name(v)) == 0) {
            *out = v;
            return true;
        }
    return false;
}

bool gw__device_state_parse(const char *s, gw_device_state *out)
{
    for (gw_device_state d = GW_DEVICE_OK; d <= GW_DEVICE_STALE; d++)
        if (s && strcmp(s, gw_device_state_name(d)) == 0) {
            *out = d;
            return true;
        }
    return false;
}

const char *gw_device_state_name(gw_device_state s)
{
    switch (s) {
    case GW_DEVICE_OK: return "ok";
    case GW_DEVICE_LOST: return "lost";
    case GW_DEVICE_ERROR: return "error";
    case GW_DEVICE_STALE: return "stale";
    }
    return "unknown";
}

const char *gw_source_state_name(gw_source_state s)
{
    switch (s) {
    case GW_SOURCE_OK: return "ok";
    case GW_SOURCE_UNAVAILABLE: return "unavailable";
    case GW_SOURCE_FAILED: return "failed";
    case GW_SOURCE_DEGRADED: return "degraded";
    }
    return "unknown";
}

const char *gw_process_kind_name(gw_process_kind k)
{
    switch (k) {
    case GW_PROCESS_COMPUTE: return "compute";
    case GW_PROCESS_GRAPHICS: return "graphics";
    case GW_PROCESS_OTHER: break;
    }
    return "other";
}

const char *gw_owner_kind_name(gw_owner_kind k)
{
    switch (k) {
    case GW_OWNER_SYSTEMD: return "systemd";
    case GW_OWNER_CONTAINER: return "container";
    case GW_OWNER_KUBERNETES: return "kubernetes";
    case GW_OWNER_SLURM: return "slurm";
    case GW_OWNER_NONE: break;
    }
    return "none";
}

const char *gw__owner_short(const gw_owner *o, char *buf, size_t cap)
{
    switch (o->kind) {
    case GW_OWNER_SLURM:
        snprintf(buf, cap, "slurm:%s%s%s", o->slurm_job, o->slurm_step[0] ? "." : "",
                 o->slurm_step);
        break;
    case GW_OWNER_KUBERNETES:
        if (o->pod[0])
            snprintf(buf, cap, "pod:%s/%s", o->pod_namespace, o->pod);
        else
            snprintf(buf, cap, "pod:%.8s", o->pod_uid);
        break;
    case GW_OWNER_CONTAINER:
        snprintf(buf, cap, "%s:%.12s", o->runtime[0] ? o->runtime : "container", o->container_id);
        break;
    case GW_OWNER_SYSTEMD: snprintf(buf, cap, "%s", o->unit); break;
    case GW_OWNER_NONE: snprintf(buf, cap, "-"); break;
    }
    return buf;
}

static const char *const metric_names[GW_METRIC_COUNT] = {
    [GW_METRIC_MEM_TOTAL] = "memory_total",
    [GW_METRIC_MEM_USED] = "memory_used",
    [GW_METRIC_MEM_FREE] = "memory_free",
    [GW_METRIC_MEM_RESERVED] = "memory_reserved",
    [GW_METRIC_UTIL_GPU] = "utilization_gpu",
    [GW_METRIC_UTIL_MEM] = "utilization_memory",
    [GW_METRIC_UTIL_ENC] = "utilization_encoder",
    [GW_METRIC_UTIL_DEC] = "utilization_decoder",
    [GW_METRIC_TEMP] = "temperature",
    [GW_METRIC_POWER] = "power",
    [GW_METRIC_POWER_LIMIT] = "power_limit",
    [GW_METRIC_ENERGY] = "energy",
    [GW_METRIC_CLOCK_SM] = "clock_sm",
    [GW_METRIC_CLOCK_GRAPHICS] = "clock_graphics",
    [GW_METRIC_CLOCK_MEM] = "clock_memory",
    [GW_METRIC_FAN] = "fan",
    [GW_METRIC_PSTATE] = "pstate",
    [GW_METRIC_CLOCK_EVENTS] = "clock_events",
    [GW_METRIC_PCIE_GEN] = "pcie_gen",
    [GW_METRIC_PCIE_WIDTH] = "pcie_width",
    [GW_METRIC_MIG_MODE] = "mig_mode",
    [GW_METRIC_GTT_TOTAL] = "gtt_total",
    [GW_METRIC_GTT_USED] = "gtt_used",
    [GW_METRIC_VIS_VRAM_TOTAL] = "visible_vram_total",
    [GW_METRIC_VIS_VRAM_USED] = "visible_vram_used",
    [GW_METRIC_TEMP_JUNCTION] = "temperature_junction",
    [GW_METRIC_TEMP_MEM] = "temperature_memory",
    [GW_METRIC_FAN_RPM] = "fan_rpm",
    [GW_METRIC_PCIE_REPLAYS] = "pcie_replays",
    [GW_METRIC_ECC_ERRORS] = "ecc_errors",
    [GW_METRIC_ROW_REMAP] = "row_remap",
    [GW_METRIC_XID] = "xid",
};

const gw__clock_event_reason gw__clock_event_reasons[GW__CLOCK_EVENT_REASONS] = {
    {GW_CLOCK_EVENT_GPU_IDLE, "gpu_idle"},
    {GW_CLOCK_EVENT_APP_CLOCKS, "applications_clocks"},
    {GW_CLOCK_EVENT_SW_POWER_CAP, "sw_power_cap"},
    {GW_CLOCK_EVENT_HW_SLOWDOWN, "hw_slowdown"},
    {GW_CLOCK_EVENT_SYNC_BOOST, "sync_boost"},
    {GW_CLOCK_EVENT_SW_THERMAL, "sw_thermal"},
    {GW_CLOCK_EVENT_HW_THERMAL, "hw_thermal"},
    {GW_CLOCK_EVENT_HW_POWER_BRAKE, "hw_power_brake"},
};

const char *gw_metric_name(gw_metric m)
{
    return (unsigned)m < GW_METRIC_COUNT ? metric_names[m] : "unknown";
}
