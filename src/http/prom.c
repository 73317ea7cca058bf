/* prom.c — see prom.h. Per-device families come from tables (name, help,
 * getter) so every family is written the same way: header once, then one
 * line per device that has the value. OpenMetrics is a rewrite of the
 * rendered text (gw__prom_to_openmetrics), so both formats always carry
 * the same samples. */
#include "http/prom.h"
#include "models/servers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void gw__prom_escape(gw_strbuf *sb, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            gw__strbuf_puts(sb, "\\\\");
        else if (*p == '"')
            gw__strbuf_puts(sb, "\\\"");
        else if (*p == '\n')
            gw__strbuf_puts(sb, "\\n");
        else
            gw__strbuf_putc(sb, *p);
    }
}

static void header(gw_strbuf *sb, const char *name, const char *type, const char *help)
{
    gw__strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value(gw_strbuf *sb, double v)
{
    if (isnan(v))
        gw__strbuf_puts(sb, " NaN\n");
    else if (v == floor(v) && fabs(v) < 1e15)
        gw__strbuf_printf(sb, " %.0f\n", v);
    else
        gw__strbuf_printf(sb, " %.15g\n", v);
}

static void label(gw_strbuf *sb, bool *first, const char *k, const char *v)
{
    gw__strbuf_putc(sb, *first ? '{' : ',');
    *first = false;
    gw__strbuf_puts(sb, k);
    gw__strbuf_puts(sb, "=\"");
    gw__prom_escape(sb, v);
    gw__strbuf_putc(sb, '"');
}

static void end_labels(gw_strbuf *sb, bool first)
{
    if (!first)
        gw__strbuf_putc(sb, '}');
}

/* ----------------------------------------------------------------- native */

typedef bool (*getter)(const gw_device *d, double *v);

#define S(d, m) gw_sample_has(&(d)->sample, GW_METRIC_##m)
#define I(d, f) gw_info_has(&(d)->info, GW_INFO_##f)
#define GET(fn, cond, expr)                            \
    static bool fn(const gw_device *d, double *v)      \
    {                                                  \
        if (d->state == GW_DEVICE_LOST || !(cond))     \
            return false;                              \
        *v = (expr);                                   \
        return true;                                   \
    }

GET(g_mem_total, S(d, MEM_TOTAL) || I(d, MEMORY_TOTAL),
    (double)(S(d, MEM_TOTAL) ? d->sample.mem_total : d->info.memory_total))
GET(g_mem_used, S(d, MEM_USED), (double)d->sample.mem_used)
GET(g_mem_free, S(d, MEM_FREE), (double)d->sample.mem_free)
GET(g_mem_reserved, S(d, MEM_RESERVED), (double)d->sample.mem_reserved)
GET(g_util_gpu, S(d, UTIL_GPU), d->sample.util_gpu / 100.0)
GET(g_util_mem, S(d, UTIL_MEM), d->sample.util_mem / 100.0)
GET(g_util_enc, S(d, UTIL_ENC), d->sample.util_enc / 100.0)
GET(g_util_dec, S(d, UTIL_DEC), d->sample.util_dec / 100.0)
GET(g_temp, S(d, TEMP), d->sample.temp_mc / 1000.0)
GET(g_temp_mem, S(d, TEMP_MEM), d->sample.temp_mem_mc / 1000.0)
GET(g_temp_junction, S(d, TEMP_JUNCTION), d->sample.temp_junction_mc / 1000.0)
GET(g_temp_slowdown, I(d, TEMP_SLOWDOWN), d->info.temp_slowdown_mc / 1000.0)
GET(g_temp_shutdown, I(d, TEMP_SHUTDOWN), d->info.temp_shutdown_mc / 1000.0)
GET(g_power, S(d, POWER), d->sample.power_mw / 1000.0)
GET(g_power_limit, S(d, POWER_LIMIT), d->sample.power_limit_mw / 1000.0)
GET(g_energy, S(d, ENERGY), (double)d->sample.energy_mj / 1000.0)
GET(g_clock_sm, S(d, CLOCK_SM), d->sample.clock_sm_mhz * 1e6)
GET(g_clock_gfx, S(d, CLOCK_GRAPHICS), d->sample.clock_graphics_mhz * 1e6)
GET(g_clock_mem, S(d, CLOCK_MEM), d->sample.clock_mem_mhz * 1e6)
GET(g_fan, S(d, FAN), d->sample.fan_pct / 100.0)
GET(g_pstate, S(d, PSTATE), (double)d->sample.pstate)
GET(g_pcie_gen, S(d, PCIE_GEN), (double)d->sample.pcie_gen)
GET(g_pcie_width, S(d, PCIE_WIDTH), (double)d->sample.pcie_width)
GET(g_gtt_total, S(d, GTT_TOTAL), (double)d->sample.gtt_total)
GET(g_gtt_used, S(d, GTT_USED), (double)d->sample.gtt_used)
GET(g_pcie_replays, S(d, PCIE_REPLAYS), (double)d->sample.pcie_replays)
GET(g_ecc_corrected, S(d, ECC_ERRORS), (double)d->sample.ecc_corrected)
GET(g_ecc_uncorrected, S(d, ECC_ERRORS), (double)d->sample.ecc_uncorrected)
GET(g_remap_corr, S(d, ROW_REMAP), (double)d->sample.remap_correctable)
GET(g_remap_unc, S(d, ROW_REMAP), (double)d->sample.remap_uncorrectable)
GET(g_remap_pending, S(d, ROW_REMAP), d->sample.remap_pending ? 1.0 : 0.0)
GET(g_remap_failure, S(d, ROW_REMAP), d->sample.remap_failure ? 1.0 : 0.0)
GET(g_xid_last, S(d, XID), (double)d->sample.xid_last)
GET(g_xid_events, S(d, XID), (double)d->sample.xid_events)
/* dcgm-exporter units */
GET(g_mib_free, S(d, MEM_FREE), floor((double)d->sample.mem_free / 1048576.0))
GET(g_mib_used, S(d, MEM_USED), floor((double)d->sample.mem_used / 1048576.0))
GET(g_mib_reserved, S(d, MEM_RESERVED), floor((double)d->sample.mem_reserved / 1048576.0))
GET(g_mhz_sm, S(d, CLOCK_SM), (double)d->sample.clock_sm_mhz)
GET(g_mhz_mem, S(d, CLOCK_MEM), (double)d->sample.clock_mem_mhz)
GET(g_pct_gpu, S(d, UTIL_GPU), d->sample.util_gpu)
GET(g_pct_mem, S(d, UTIL_MEM), d->sample.util_mem)
GET(g_pct_enc, S(d, UTIL_ENC), d->sample.util_enc)
GET(g_pct_dec, S(d, UTIL_DEC), d->sample.util_dec)
GET(g_energy_mj, S(d, ENERGY), (double)d->sample.energy_mj)
GET(g_clock_events, S(d, CLOCK_EVENTS), (double)d->sample.clock_events)

typedef struct family {
    const char *name, *type, *help;
    getter get;
} family;

/* Writes `name{...labels}` of one device's sample of a family, the label set
 * closed; each exposition (native, dcgm, nvidia_smi) has its own labels. */
typedef void (*series_start)(gw_strbuf *sb, const char *name, const gw_device *d,
                             const gw_snapshot *s);

/* Every family of fams[0..n): its HELP/TYPE when any device has the value,
 * then one sample per such device. */
static void family_rows(gw_strbuf *sb, const gw_snapshot *s, const family *fams, size_t n,
                        series_start start)
{
    for (size_t f = 0; f < n; f++) {
        bool any = false;
        for (size_t i = 0; i < s->n_devices; i++) {
            double v;
            if (!fams[f].get(&s->devices[i], &v))
                continue;
            if (!any)
                header(sb, fams[f].name, fams[f].type, fams[f].help);
            any = true;
            start(sb, fams[f].name, &s->devices[i], s);
            value(sb, v);
        }
    }
}

static const family native_gpu[] = {
    {"gpuwatch_gpu_memory_total_bytes", "gauge", "Total GPU memory (VRAM) in bytes.", g_mem_total},
    {"gpuwatch_gpu_memory_used_bytes", "gauge", "Used GPU memory in bytes.", g_mem_used},
    {"gpuwatch_gpu_memory_free_bytes", "gauge", "Free GPU memory in bytes.", g_mem_free},
    {"gpuwatch_gpu_memory_reserved_bytes", "gauge", "GPU memory reserved by the driver in bytes.",
     g_mem_reserved},
    {"gpuwatch_gpu_gtt_total_bytes", "gauge", "GTT (system memory mapped for the GPU) size in bytes.",
     g_gtt_total},
    {"gpuwatch_gpu_gtt_used_bytes", "gauge", "Used GTT memory in bytes.", g_gtt_used},
    {"gpuwatch_gpu_utilization_ratio", "gauge",
     "Fraction of the last sample period the GPU was busy (0..1).", g_util_gpu},
    {"gpuwatch_gpu_memory_utilization_ratio", "gauge",
     "Fraction of the last sample period device memory was being read or written (0..1).",
     g_util_mem},
    {"gpuwatch_gpu_encoder_utilization_ratio", "gauge", "Video encoder utilization (0..1).",
     g_util_enc},
    {"gpuwatch_gpu_decoder_utilization_ratio", "gauge", "Video decoder utilization (0..1).",
     g_util_dec},
    {"gpuwatch_gpu_temperature_celsius", "gauge", "GPU core temperature in degrees Celsius.", g_temp},
    {"gpuwatch_gpu_memory_temperature_celsius", "gauge", "GPU memory temperature in degrees Celsius.",
     g_temp_mem},
    {"gpuwatch_gpu_junction_temperature_celsius", "gauge",
     "GPU junction (hotspot) temperature in degrees Celsius.", g_temp_junction},
    {"gpuwatch_gpu_slowdown_temperature_celsius", "gauge",
     "Temperature at which the GPU starts to slow down, in degrees Celsius.", g_temp_slowdown},
    {"gpuwatch_gpu_shutdown_temperature_celsius", "gauge",
     "Temperature at which the GPU shuts down, in degrees Celsius.", g_temp_shutdown},
    {"gpuwatch_gpu_power_watts", "gauge", "GPU power draw in watts.", g_power},
    {"gpuwatch_gpu_power_limit_watts", "gauge", "Enforced GPU power limit in watts.", g_power_limit},
    {"gpuwatch_gpu_energy_joules_total", "counter",
     "Energy consumed by the GPU since the driver loaded, in joules.", g_energy},
    {"gpuwatch_gpu_sm_clock_hertz", "gauge", "Current SM clock in hertz.", g_clock_sm},
    {"gpuwatch_gpu_graphics_clock_hertz", "gauge", "Current graphics clock in hertz.", g_clock_gfx},
    {"gpuwatch_gpu_memory_clock_hertz", "gauge", "Current memory clock in hertz.", g_clock_mem},
    {"gpuwatch_gpu_fan_speed_ratio", "gauge",
     "Fan speed as a fraction of its maximum (may exceed 1 on NVIDIA).", g_fan},
    {"gpuwatch_gpu_performance_state", "gauge", "Performance state (0 = P0, fastest, .. 15).",
     g_pstate},
    {"gpuwatch_gpu_pcie_link_generation", "gauge", "Current PCIe link generation.", g_pcie_gen},
    {"gpuwatch_gpu_pcie_link_width", "gauge", "Current PCIe link width in lanes.", g_pcie_width},
    {"gpuwatch_gpu_pcie_replays_total", "counter",
     "PCIe link replays (retransmissions) since the driver loaded.", g_pcie_replays},
    {"gpuwatch_gpu_ecc_corrected_errors_total", "counter",
     "Corrected ECC memory errors since the driver loaded (volatile count).", g_ecc_corrected},
    {"gpuwatch_gpu_ecc_uncorrected_errors_total", "counter",
     "Uncorrected ECC memory errors since the driver loaded (volatile count).",
     g_ecc_uncorrected},
    {"gpuwatch_gpu_remapped_rows_correctable", "gauge",
     "Memory rows remapped because of correctable errors.", g_remap_corr},
    {"gpuwatch_gpu_remapped_rows_uncorrectable", "gauge",
     "Memory rows remapped because of uncorrectable errors.", g_remap_unc},
    {"gpuwatch_gpu_row_remap_pending", "gauge",
     "1 when a row remap waits for a GPU reset.", g_remap_pending},
    {"gpuwatch_gpu_row_remap_failure", "gauge",
     "1 when a row remap failed: the GPU needs service.", g_remap_failure},
    {"gpuwatch_gpu_xid_last", "gauge",
     "Number of the last critical Xid error seen since gpuwatch started (0: none).", g_xid_last},
    {"gpuwatch_gpu_xid_errors_total", "counter",
     "Critical Xid error events seen since gpuwatch started.", g_xid_events},
};

/* Writes `name{gpu="N",uuid="..."` (the set left open for more labels). */
static void gpu_labels(gw_strbuf *sb, const char *name, const gw_device *d)
{
    gw__strbuf_printf(sb, "%s{gpu=\"%u\",uuid=\"", name, d->info.index);
    gw__prom_escape(sb, d->info.uuid);
    gw__strbuf_puts(sb, "\"");
}

static void native_start(gw_strbuf *sb, const char *name, const gw_device *d,
                         const gw_snapshot *s)
{
    (void)s;
    gpu_labels(sb, name, d);
    gw__strbuf_putc(sb, '}');
}

/* gpuwatch_gpu_placement_blocked: a series only for a GPU the placement
 * engine would not use (not ok, or at or over its slowdown temperature),
 * with the reason. Sparse on purpose: a fleet's cluster view asks
 * Prometheus for these exceptions without it scanning a series per GPU
 * (docs/cluster.md). */
static void placement_blocked(gw_strbuf *sb, const gw_snapshot *s)
{
    header(sb, "gpuwatch_gpu_placement_blocked", "gauge",
           "1 for a GPU no placement would use, with the reason (lost, error, stale, "
           "temperature); absent for a GPU that can take one.");
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        const char *why = d->state != GW_DEVICE_OK ? gw_device_state_name(d->state) : NULL;
        if (!why && S(d, TEMP) && I(d, TEMP_SLOWDOWN) &&
            d->sample.temp_mc >= d->info.temp_slowdown_mc)
            why = "temperature";
        if (!why)
            continue;
        gpu_labels(sb, "gpuwatch_gpu_placement_blocked", d);
        gw__strbuf_printf(sb, ",reason=\"%s\"} 1\n", why);
    }
}

static void native_devices(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self)
{
    header(sb, "gpuwatch_gpu_info", "gauge",
           "Identity of each GPU; the value is always 1.");
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        gpu_labels(sb, "gpuwatch_gpu_info", d);
        bool first = false;
        label(sb, &first, "name", d->info.name);
        label(sb, &first, "vendor", gw_vendor_name(d->info.vendor));
        label(sb, &first, "source", d->info.source);
        label(sb, &first, "pci_bus_id", d->info.pci_bus_id);
        label(sb, &first, "driver_version", d->info.driver_version);
        char cc[24] = "";
        if (I(d, COMPUTE_CAP))
            snprintf(cc, sizeof cc, "%d.%d", d->info.cc_major, d->info.cc_minor);
        label(sb, &first, "compute_capability", cc);
        gw__strbuf_puts(sb, "} 1\n");
    }
    bool any_mig = false;
    for (size_t i = 0; i < s->n_devices; i++)
        any_mig |= s->devices[i].info.mig;
    if (any_mig) {
        header(sb, "gpuwatch_mig_device_info", "gauge",
               "Each MIG device (a partition of a GPU in MIG mode, which a job sees as its GPU) "
               "and its GPU; the value is always 1.");
        for (size_t i = 0; i < s->n_devices; i++) {
            const gw_device *d = &s->devices[i];
            if (!d->info.mig)
                continue;
            const gw_device *p = gw__device_mig_parent(s, d);
            gpu_labels(sb, "gpuwatch_mig_device_info", d);
            bool first = false;
            char n[3][16];
            snprintf(n[0], sizeof n[0], "%u", d->info.mig_parent);
            snprintf(n[1], sizeof n[1], "%u", d->info.mig_gpu_instance);
            snprintf(n[2], sizeof n[2], "%u", d->info.mig_compute_instance);
            label(sb, &first, "parent_gpu", n[0]);
            label(sb, &first, "parent_uuid", p ? p->info.uuid : "");
            label(sb, &first, "profile", d->info.mig_profile);
            label(sb, &first, "gpu_instance", n[1]);
            label(sb, &first, "compute_instance", n[2]);
            gw__strbuf_puts(sb, "} 1\n");
        }
    }
    header(sb, "gpuwatch_gpu_state", "gauge",
           "1 for the GPU's current state (ok, lost, error, stale), 0 for the others.");
    static const gw_device_state states[] = {GW_DEVICE_OK, GW_DEVICE_LOST, GW_DEVICE_ERROR,
                                             GW_DEVICE_STALE};
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        for (size_t k = 0; k < GW__ARRAY_LEN(states); k++) {
            gpu_labels(sb, "gpuwatch_gpu_state", d);
            gw__strbuf_printf(sb, ",state=\"%s\"} %d\n", gw_device_state_name(states[k]),
                              d->state == states[k]);
        }
    }
    header(sb, "gpuwatch_gpu_up", "gauge",
           "1 when the GPU's latest sample is current and valid, 0 when lost, in error or stale.");
    for (size_t i = 0; i < s->n_devices; i++) {
        gpu_labels(sb, "gpuwatch_gpu_up", &s->devices[i]);
        gw__strbuf_printf(sb, "} %d\n", s->devices[i].state == GW_DEVICE_OK);
    }
    placement_blocked(sb, s);
    header(sb, "gpuwatch_gpu_sample_age_seconds", "gauge",
           "Seconds between the GPU's latest sample and this snapshot; grows while sampling hangs.");
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        int64_t at = d->sampled_at_ns ? d->sampled_at_ns : s->taken_ns;
        int64_t now = self && self->now_ns ? self->now_ns : s->taken_ns;
        double age = (double)(now - at) / 1e9;
        gpu_labels(sb, "gpuwatch_gpu_sample_age_seconds", d);
        gw__strbuf_putc(sb, '}');
        value(sb, age < 0 ? 0 : age);
    }
    family_rows(sb, s, native_gpu, GW__ARRAY_LEN(native_gpu), native_start);
}

/* gpuwatch_gpu_clock_event_active: one 0/1 series per reason bit for each
 * GPU whose clock-event mask was read. */
static void native_clock_events(gw_strbuf *sb, const gw_snapshot *s)
{
    bool any = false;
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        if (d->state == GW_DEVICE_LOST || !S(d, CLOCK_EVENTS))
            continue;
        if (!any)
            header(sb, "gpuwatch_gpu_clock_event_active", "gauge",
                   "1 while the clock-event (throttle) reason holds the GPU's clocks down, 0 otherwise.");
        any = true;
        for (size_t k = 0; k < GW__CLOCK_EVENT_REASONS; k++) {
            gpu_labels(sb, "gpuwatch_gpu_clock_event_active", d);
            gw__strbuf_printf(sb, ",reason=\"%s\"} %d\n", gw__clock_event_reasons[k].name,
                              (d->sample.clock_events & gw__clock_event_reasons[k].bit) != 0);
        }
    }
}

/* Process count per GPU (always), then per-process memory (pid label) only
 * with GW__PROM_PROCESSES: an unbounded label set on a busy host. */
static void native_processes(gw_strbuf *sb, const gw_snapshot *s, unsigned families)
{
    header(sb, "gpuwatch_gpu_processes", "gauge", "Number of processes using the GPU.");
    for (size_t i = 0; i < s->n_devices; i++) {
        size_t n = 0;
        for (size_t k = 0; k < s->n_processes; k++)
            n += s->processes[k].device_index == i;
        gpu_labels(sb, "gpuwatch_gpu_processes", &s->devices[i]);
        gw__strbuf_printf(sb, "} %zu\n", n);
    }
    if (!(families & GW__PROM_PROCESSES))
        return;
    bool any = false;
    for (size_t k = 0; k < s->n_processes; k++) {
        const gw_process *p = &s->processes[k];
        if (!gw_process_has(p, GW_PROC_GPU_MEMORY) || p->device_index >= s->n_devices)
            continue;
        if (!any)
            header(sb, "gpuwatch_gpu_process_memory_bytes", "gauge",
                   "GPU memory used by one process on one GPU, in bytes.");
        any = true;
        gpu_labels(sb, "gpuwatch_gpu_process_memory_bytes", &s->devices[p->device_index]);
        gw__strbuf_printf(sb, ",pid=\"%u\"", p->pid);
        bool first = false;
        label(sb, &first, "name", gw_process_has(p, GW_PROC_NAME) ? p->name : "");
        label(sb, &first, "kind", gw_process_kind_name(p->kind));
        /* who owns it (as dcgm-exporter labels pods): "" is no label */
        const gw_owner *o = &p->owner;
        bool own = gw_process_has(p, GW_PROC_OWNER);
        label(sb, &first, "owner", own ? gw_owner_kind_name(o->kind) : "");
        label(sb, &first, "namespace", own ? o->pod_namespace : "");
        label(sb, &first, "pod", own ? o->pod : "");
        label(sb, &first, "pod_uid", own ? o->pod_uid : "");
        label(sb, &first, "container_id", own ? o->container_id : "");
        label(sb, &first, "slurm_job", own ? o->slurm_job : "");
        label(sb, &first, "unit", own ? o->unit : "");
        label(sb, &first, "model", gw_process_has(p, GW_PROC_MODEL) ? p->model : "");
        gw__strbuf_putc(sb, '}');
        value(sb, (double)p->gpu_memory);
    }
}

/* The "uuid" label of a progress record: its gpu when that is a UUID of s,
 * else the UUID of the device with that index, else "". */
static const char *progress_uuid(const gw_snapshot *s, const char *gpu)
{
    for (size_t i = 0; i < s->n_devices; i++)
        if (strcmp(s->devices[i].info.uuid, gpu) == 0)
            return s->devices[i].info.uuid;
    char idx[16];
    for (size_t i = 0; i < s->n_devices; i++) {
        snprintf(idx, sizeof idx, "%u", s->devices[i].info.index);
        if (strcmp(idx, gpu) == 0)
            return s->devices[i].info.uuid;
    }
    return "";
}

/* llama-servers' own llamacpp:* families, one HELP/TYPE per family (from
 * the first server that has it) and every server's samples with a server
 * label: what each server's /metrics said, taken apart and written again
 * (models/servers.c) so a server cannot inject a line. */
static void reexport_llamacpp(gw_strbuf *sb, const gw__prom_self *self)
{
    for (size_t i = 0; i < self->n_models; i++)
        for (size_t k = 0; k < self->models[i].n_samples; k++) {
            const gw__server_sample *first = &self->models[i].samples[k];
            bool seen = false; /* the family is written where it first appears */
            for (size_t pi = 0; pi <= i && !seen; pi++)
                for (size_t pk = 0; pk < self->models[pi].n_samples && !seen; pk++) {
                    if (pi == i && pk == k)
                        break;
                    seen = strcmp(self->models[pi].samples[pk].name, first->name) == 0;
                }
            if (seen)
                continue;
            header(sb, first->name, first->type, first->help[0] ? first->help : first->name);
            for (size_t j = i; j < self->n_models; j++)
                for (size_t q = 0; q < self->models[j].n_samples; q++) {
                    const gw__server_sample *m = &self->models[j].samples[q];
                    if (strcmp(m->name, first->name) != 0 || (j == i && q < k))
                        continue;
                    bool lf = true;
                    gw__strbuf_puts(sb, m->name);
                    label(sb, &lf, "server", self->models[j].url);
                    if (m->labels[0]) {
                        gw__strbuf_putc(sb, ',');
                        gw__strbuf_puts(sb, m->labels);
                    }
                    end_labels(sb, lf);
                    value(sb, m->value);
                }
        }
}

/* Model servers (models/servers.h): up, slots, and each loaded model's
 * size and VRAM. */
static void native_models(gw_strbuf *sb, const gw__prom_self *self)
{
    if (!self || !self->models || !self->n_models)
        return;
    header(sb, "gpuwatch_model_server_up", "gauge",
           "1 when the model server answered with its models, else 0.");
    for (size_t i = 0; i < self->n_models; i++) {
        const gw__model_server *m = &self->models[i];
        bool first = true;
        gw__strbuf_puts(sb, "gpuwatch_model_server_up");
        label(sb, &first, "kind", gw__server_kind_name(m->kind));
        label(sb, &first, "url", m->url);
        end_labels(sb, first);
        value(sb, m->up ? 1 : 0);
    }
    header(sb, "gpuwatch_model_server_slots", "gauge",
           "Request slots of a llama.cpp server: total, and busy when it says.");
    for (size_t i = 0; i < self->n_models; i++) {
        const gw__model_server *m = &self->models[i];
        for (int busy = 0; busy < 2 && m->has_slots; busy++) {
            if (busy && !m->has_busy)
                continue;
            bool first = true;
            gw__strbuf_puts(sb, "gpuwatch_model_server_slots");
            label(sb, &first, "kind", gw__server_kind_name(m->kind));
            label(sb, &first, "url", m->url);
            label(sb, &first, "state", busy ? "busy" : "total");
            end_labels(sb, first);
            value(sb, busy ? m->slots_busy : m->slots_total);
        }
    }
    static const struct {
        const char *name, *help;
        bool vram;
    } fams[] = {
        {"gpuwatch_model_size_bytes", "Memory a loaded model takes, GPU and host, in bytes.", false},
        {"gpuwatch_model_vram_bytes", "GPU memory a loaded model takes, in bytes.", true},
    };
    for (size_t f = 0; f < GW__ARRAY_LEN(fams); f++) {
        header(sb, fams[f].name, "gauge", fams[f].help);
        for (size_t i = 0; i < self->n_models; i++)
            for (size_t k = 0; k < self->models[i].n_models; k++) {
                const gw__model_server *m = &self->models[i];
                const gw__loaded_model *lm = &m->models[k];
                if (!(fams[f].vram ? lm->has_vram : lm->has_size))
                    continue;
                bool first = true;
                gw__strbuf_puts(sb, fams[f].name);
                label(sb, &first, "kind", gw__server_kind_name(m->kind));
                label(sb, &first, "url", m->url);
                label(sb, &first, "model", lm->name);
                end_labels(sb, first);
                value(sb, (double)(fams[f].vram ? lm->size_vram : lm->size));
            }
    }
    reexport_llamacpp(sb, self);
}

/* Job progress: done, total (when known) and the last report's time per
 * (job, gpu). */
static void native_progress(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self)
{
    if (!self || !self->progress || !self->n_progress)
        return;
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"gpuwatch_job_progress_done", "Units of work a job reported done on the GPU."},
        {"gpuwatch_job_progress_total_units",
         "Units of work of the job on the GPU, when it reported a total."},
        {"gpuwatch_job_progress_updated_timestamp_seconds",
         "Unix time of the job's last progress report for the GPU."},
    };
    for (size_t f = 0; f < GW__ARRAY_LEN(fams); f++) {
        header(sb, fams[f].name, "gauge", fams[f].help);
        for (size_t i = 0; i < self->n_progress; i++) {
            const gw_progress *p = &self->progress[i];
            if (f == 1 && p->total == 0)
                continue;
            bool first = true;
            gw__strbuf_puts(sb, fams[f].name);
            label(sb, &first, "job", p->job);
            label(sb, &first, "gpu", p->gpu);
            label(sb, &first, "uuid", progress_uuid(s, p->gpu));
            end_labels(sb, first);
            value(sb, f == 0 ? (double)p->done
                      : f == 1 ? (double)p->total
                               : (double)(p->updated_ns / 1000000) / 1e3);
        }
    }
}

/* The placement ledger's live reservations per GPU, when there is a ledger. */
static void native_placement(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self)
{
    if (!self || !self->place_reservations || !self->place_bytes || !self->place_pending)
        return;
    header(sb, "gpuwatch_placement_reservations", "gauge",
           "Live reservations in the placement ledger that hold memory on the GPU.");
    for (size_t i = 0; i < s->n_devices; i++) {
        gpu_labels(sb, "gpuwatch_placement_reservations", &s->devices[i]);
        gw__strbuf_printf(sb, "} %llu\n", (unsigned long long)self->place_reservations[i]);
    }
    header(sb, "gpuwatch_gpu_placement_reserved_bytes", "gauge",
           "GPU memory held by live placement reservations, in bytes.");
    for (size_t i = 0; i < s->n_devices; i++) {
        gpu_labels(sb, "gpuwatch_gpu_placement_reserved_bytes", &s->devices[i]);
        gw__strbuf_printf(sb, "} %llu\n", (unsigned long long)self->place_bytes[i]);
    }
    header(sb, "gpuwatch_gpu_placement_pending_bytes", "gauge",
           "Reserved GPU memory not yet in use by the reserving processes, in bytes: what a "
           "plan counts on top of used memory; absent when none (sparse, as "
           "gpuwatch_gpu_placement_blocked).");
    for (size_t i = 0; i < s->n_devices; i++) {
        if (!self->place_pending[i])
            continue;
        gpu_labels(sb, "gpuwatch_gpu_placement_pending_bytes", &s->devices[i]);
        gw__strbuf_printf(sb, "} %llu\n", (unsigned long long)self->place_pending[i]);
    }
}

static void host_families(gw_strbuf *sb, const gw_host *h)
{
    static const struct {
        gw_host_field f;
        const char *name, *help;
    } fams[] = {
        {GW_HOST_MEM_TOTAL, "gpuwatch_host_memory_total_bytes", "Host RAM in bytes."},
        {GW_HOST_MEM_AVAILABLE, "gpuwatch_host_memory_available_bytes",
         "Host RAM available for new allocations, in bytes."},
        {GW_HOST_SWAP_TOTAL, "gpuwatch_host_swap_total_bytes", "Host swap size in bytes."},
        {GW_HOST_SWAP_FREE, "gpuwatch_host_swap_free_bytes", "Free host swap in bytes."},
        {GW_HOST_CPU_COUNT, "gpuwatch_host_cpus", "Number of online CPUs."},
        {GW_HOST_LOADAVG, "gpuwatch_host_load1", "One-minute load average."},
        {GW_HOST_CPU_UTIL, "gpuwatch_host_cpu_utilization_ratio",
         "Host CPU utilization over the last sample period (0..1)."},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(fams); i++) {
        if (!gw_host_has(h, fams[i].f))
            continue;
        header(sb, fams[i].name, "gauge", fams[i].help);
        gw__strbuf_puts(sb, fams[i].name);
        double v = 0;
        switch (fams[i].f) {
        case GW_HOST_MEM_TOTAL: v = (double)h->mem_total; break;
        case GW_HOST_MEM_AVAILABLE: v = (double)h->mem_available; break;
        case GW_HOST_SWAP_TOTAL: v = (double)h->swap_total; break;
        case GW_HOST_SWAP_FREE: v = (double)h->swap_free; break;
        case GW_HOST_CPU_COUNT: v = h->cpu_count; break;
        case GW_HOST_LOADAVG: v = h->load1; break;
        case GW_HOST_CPU_UTIL: v = h->cpu_util / 100.0; break;
        default: break;
        }
        value(sb, v);
    }
}

static void simple(gw_strbuf *sb, const char *name, const char *type, const char *help, double v)
{
    header(sb, name, type, help);
    gw__strbuf_puts(sb, name);
    value(sb, v);
}

static void self_families(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self)
{
    header(sb, "gpuwatch_build_info", "gauge", "gpuwatch version; the value is always 1.");
    gw__strbuf_puts(sb, "gpuwatch_build_info{version=\"" GW_VERSION_STRING "\"} 1\n");
    simple(sb, "gpuwatch_cpu_only", "gauge", "1 when no GPU source produced a device.",
           s->cpu_only);
    simple(sb, "gpuwatch_gpus", "gauge",
           "Number of GPUs in the latest snapshot, lost ones included (MIG devices not counted).",
           (double)gw__snapshot_gpu_count(s));
    simple(sb, "gpuwatch_sample_duration_seconds", "gauge",
           "How long the latest completed sampling round took.", (double)s->duration_ns / 1e9);
    int64_t good = self && self->last_good_ns ? self->last_good_ns : s->taken_ns;
    simple(sb, "gpuwatch_sample_timestamp_seconds", "gauge",
           "Unix time of the latest completed sampling round.", (double)good / 1e9);
    if (self && self->now_ns) {
        double age = (double)(self->now_ns - good) / 1e9;
        simple(sb, "gpuwatch_sample_age_seconds", "gauge",
               "Age of the latest completed sample when this page was rendered.", age < 0 ? 0 : age);
    }
    header(sb, "gpuwatch_source_up", "gauge",
           "1 when a source answered in the latest round (possibly degraded), 0 otherwise.");
    for (size_t i = 0; i < s->n_sources; i++) {
        const gw_source_status *st = &s->sources[i];
        gw__strbuf_puts(sb, "gpuwatch_source_up");
        bool first = true;
        label(sb, &first, "source", st->name);
        end_labels(sb, first);
        value(sb, st->state == GW_SOURCE_OK || st->state == GW_SOURCE_DEGRADED);
    }
    header(sb, "gpuwatch_source_state", "gauge",
           "1 for the source's current state (ok, unavailable, failed, degraded), 0 for the others.");
    static const gw_source_state sst[] = {GW_SOURCE_OK, GW_SOURCE_UNAVAILABLE, GW_SOURCE_FAILED,
                                          GW_SOURCE_DEGRADED};
    for (size_t i = 0; i < s->n_sources; i++)
        for (size_t k = 0; k < GW__ARRAY_LEN(sst); k++) {
            gw__strbuf_puts(sb, "gpuwatch_source_state");
            bool first = true;
            label(sb, &first, "source", s->sources[i].name);
            label(sb, &first, "state", gw_source_state_name(sst[k]));
            end_labels(sb, first);
            value(sb, s->sources[i].state == sst[k]);
        }
    if (!self)
        return;
    const gw__sampler_stats *st = self->sampler;
    if (st) {
        header(sb, "gpuwatch_source_errors_total", "counter",
               "Sampling rounds in which the source failed, since start.");
        for (size_t i = 0; i < st->n_sources; i++) {
            gw__strbuf_puts(sb, "gpuwatch_source_errors_total");
            bool first = true;
            label(sb, &first, "source", st->sources[i].name);
            end_labels(sb, first);
            value(sb, (double)st->sources[i].errors);
        }
        simple(sb, "gpuwatch_sampling_stalled", "gauge",
               "1 while a source is past its read deadline (its GPUs are stale).", st->stalled);
        simple(sb, "gpuwatch_sampling_interval_seconds", "gauge", "Configured sampling interval.",
               st->interval_ms / 1000.0);
        simple(sb, "gpuwatch_sampling_rounds_total", "counter", "Sampling rounds completed.",
               (double)st->rounds);
        simple(sb, "gpuwatch_sampling_overruns_total", "counter",
               "Source reads that missed their deadline.", (double)st->overruns);
        simple(sb, "gpuwatch_sampling_failures_total", "counter",
               "Sampling rounds that failed as a whole.", (double)st->failures);
        simple(sb, "gpuwatch_sampler_cpu_seconds_total", "counter",
               "CPU time used by the sampler threads.", st->cpu_seconds);
        simple(sb, "gpuwatch_history_memory_bytes", "gauge", "Memory held by the history rings.",
               (double)st->history_bytes);
    }
    if (self->event_counts) {
        header(sb, "gpuwatch_events_total", "counter", "Events detected since start, by type.");
        for (int t = 0; t < GW__EV_COUNT; t++)
            gw__strbuf_printf(sb, "gpuwatch_events_total{type=\"%s\"} %llu\n",
                              gw__event_type_name((gw__event_type)t),
                              (unsigned long long)self->event_counts[t]);
    }
    if (self->http_requests) {
        header(sb, "gpuwatch_http_requests_total", "counter",
               "HTTP requests answered, by route (the route table's pattern, or \"other\") and "
               "status code (counted when this page was rendered).");
        for (size_t i = 0; i < self->n_http_requests; i++) {
            const gw__prom_http_count *h = &self->http_requests[i];
            gw__strbuf_puts(sb, "gpuwatch_http_requests_total{route=\"");
            gw__prom_escape(sb, h->route);
            gw__strbuf_puts(sb, "\",code=\"");
            gw__prom_escape(sb, h->code);
            gw__strbuf_printf(sb, "\"} %llu\n", (unsigned long long)h->count);
        }
    }
    header(sb, "gpuwatch_scrapes_total", "counter",
           "Answers to /metrics by format and content coding (counted when this page was rendered).");
    for (int f = 0; f < GW__FMT_COUNT; f++)
        for (int e = 0; e < GW__ENC_COUNT; e++)
            gw__strbuf_printf(sb, "gpuwatch_scrapes_total{format=\"%s\",encoding=\"%s\"} %llu\n",
                              gw__format_name((gw__format)f), gw__encoding_name((gw__encoding)e),
                              (unsigned long long)self->scrapes[f][e]);
    simple(sb, "gpuwatch_log_lines_dropped_total", "counter",
           "Log lines dropped because the log reader (journal, pipe) was not reading.",
           (double)self->log_dropped);
    if (self->process_cpu_seconds >= 0)
        simple(sb, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", self->process_cpu_seconds);
    if (self->resident_bytes >= 0)
        simple(sb, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               self->resident_bytes);
    if (self->start_time_seconds > 0)
        simple(sb, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", self->start_time_seconds);
}

/* ------------------------------------------------------------ compat: dcgm */

static const family dcgm_fams[] = {
    {"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", g_mhz_sm},
    {"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", g_mhz_mem},
    {"DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", g_temp_mem},
    {"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", g_temp},
    {"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", g_power},
    {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ).", g_energy_mj},
    {"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", g_pct_gpu},
    {"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", g_pct_mem},
    {"DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", g_pct_enc},
    {"DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", g_pct_dec},
    {"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", g_mib_free},
    {"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", g_mib_used},
    {"DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", g_mib_reserved},
    {"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.",
     g_pcie_replays},
    {"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", g_xid_last},
    {"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for uncorrectable errors", g_remap_unc},
    {"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for correctable errors", g_remap_corr},
    {"DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed",
     g_remap_failure},
    {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons (bitmask).",
     g_clock_events},
};

/* dcgm-exporter's labels. A MIG device's series are labelled as that
 * exporter labels them: its GPU's gpu, UUID, device and modelName, plus
 * GPU_I_ID (the GPU instance) and GPU_I_PROFILE; whole GPUs have neither. */
static void dcgm_labels(gw_strbuf *sb, const gw_device *d, const gw_snapshot *s)
{
    const gw_device *g = gw__device_mig_parent(s, d);
    const gw_device *id = g ? g : d; /* whose identity the series carries */
    gw__strbuf_printf(sb, "{gpu=\"%u\"", id->info.index);
    bool first = false;
    label(sb, &first, "UUID", id->info.uuid);
    label(sb, &first, "pci_bus_id", id->info.pci_bus_id);
    char dev[32];
    snprintf(dev, sizeof dev, "%s%u", id->info.vendor == GW_VENDOR_NVIDIA ? "nvidia" : "card",
             id->info.source_index);
    label(sb, &first, "device", dev);
    label(sb, &first, "modelName", id->info.name);
    if (d->info.mig) {
        char gi[16];
        snprintf(gi, sizeof gi, "%u", d->info.mig_gpu_instance);
        label(sb, &first, "GPU_I_PROFILE", d->info.mig_profile);
        label(sb, &first, "GPU_I_ID", gi);
    }
    label(sb, &first, "Hostname", s->host.hostname);
    label(sb, &first, "hostname", s->host.hostname);
    label(sb, &first, "DCGM_FI_DRIVER_VERSION", d->info.driver_version);
    gw__strbuf_putc(sb, '}');
}

static void dcgm_start(gw_strbuf *sb, const char *name, const gw_device *d, const gw_snapshot *s)
{
    gw__strbuf_puts(sb, name);
    dcgm_labels(sb, d, s);
}

static void dcgm_families(gw_strbuf *sb, const gw_snapshot *s)
{
    family_rows(sb, s, dcgm_fams, GW__ARRAY_LEN(dcgm_fams), dcgm_start);
}

/* ---------------------------------------------- compat: nvidia_gpu_exporter */

static const family nvsmi_fams[] = {
    {"nvidia_smi_utilization_gpu_ratio", "gauge", "utilization.gpu [%]", g_util_gpu},
    {"nvidia_smi_utilization_memory_ratio", "gauge", "utilization.memory [%]", g_util_mem},
    {"nvidia_smi_memory_total_bytes", "gauge", "memory.total [MiB]", g_mem_total},
    {"nvidia_smi_memory_used_bytes", "gauge", "memory.used [MiB]", g_mem_used},
    {"nvidia_smi_memory_free_bytes", "gauge", "memory.free [MiB]", g_mem_free},
    {"nvidia_smi_temperature_gpu", "gauge", "temperature.gpu", g_temp},
    {"nvidia_smi_temperature_memory", "gauge", "temperature.memory", g_temp_mem},
    {"nvidia_smi_power_draw_watts", "gauge", "power.draw [W]", g_power},
    {"nvidia_smi_enforced_power_limit_watts", "gauge", "enforced.power.limit [W]", g_power_limit},
    {"nvidia_smi_fan_speed_ratio", "gauge", "fan.speed [%]", g_fan},
    {"nvidia_smi_clocks_current_sm_clock_hz", "gauge", "clocks.current.sm [MHz]", g_clock_sm},
    {"nvidia_smi_clocks_current_graphics_clock_hz", "gauge", "clocks.current.graphics [MHz]",
     g_clock_gfx},
    {"nvidia_smi_clocks_current_memory_clock_hz", "gauge", "clocks.current.memory [MHz]",
     g_clock_mem},
    {"nvidia_smi_pstate", "gauge", "pstate", g_pstate},
};

/* nvidia_gpu_exporter's uuid label: lowercase, without the "GPU-" prefix. */
static void nvsmi_uuid(char *out, size_t cap, const char *uuid)
{
    if (strncmp(uuid, "GPU-", 4) == 0)
        uuid += 4;
    size_t i = 0;
    for (; uuid[i] && i + 1 < cap; i++)
        out[i] = (char)(uuid[i] >= 'A' && uuid[i] <= 'Z' ? uuid[i] + 32 : uuid[i]);
    out[i] = '\0';
}

static void nvsmi_start(gw_strbuf *sb, const char *name, const gw_device *d,
                        const gw_snapshot *s)
{
    (void)s;
    char u[96];
    nvsmi_uuid(u, sizeof u, d->info.uuid);
    gw__strbuf_puts(sb, name);
    bool first = true;
    label(sb, &first, "uuid", u);
    gw__strbuf_putc(sb, '}');
}

static void nvsmi_families(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self)
{
    char u[96];
    header(sb, "nvidia_smi_gpu_info", "gauge",
           "A metric with a constant '1' value labeled by gpu uuid, name, driver_version.");
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        nvsmi_uuid(u, sizeof u, d->info.uuid);
        gw__strbuf_puts(sb, "nvidia_smi_gpu_info");
        bool first = true;
        label(sb, &first, "uuid", u);
        label(sb, &first, "name", d->info.name);
        label(sb, &first, "driver_version", d->info.driver_version);
        label(sb, &first, "pci_bus_id", d->info.pci_bus_id);
        char idx[16];
        snprintf(idx, sizeof idx, "%u", d->info.index);
        label(sb, &first, "index", idx);
        gw__strbuf_puts(sb, "} 1\n");
    }
    family_rows(sb, s, nvsmi_fams, GW__ARRAY_LEN(nvsmi_fams), nvsmi_start);
    bool ok = !s->cpu_only && !(self && self->stale);
    simple(sb, "nvidia_smi_last_collect_success", "gauge",
           "Whether the last collection was successful.", ok);
    simple(sb, "nvidia_smi_last_collect_duration_seconds", "gauge",
           "Duration of the last collection in seconds.", (double)s->duration_ns / 1e9);
    if (self && self->sampler)
        simple(sb, "nvidia_smi_failed_scrapes_total", "counter", "Number of failed collections.",
               (double)(self->sampler->failures + self->sampler->overruns));
}

/* ------------------------------------------------------------ OpenMetrics */

/* The family name OpenMetrics gives name[0..n) of Prometheus type
 * type[0..tn): a counter's without "_total"; *om_type gets the type to
 * write ("unknown" for a counter named without the suffix). */
static size_t om_family(const char *name, size_t n, const char *type, size_t tn,
                        const char **om_type, size_t *om_tn)
{
    *om_type = type;
    *om_tn = tn;
    if (tn != 7 || memcmp(type, "counter", 7) != 0)
        return n;
    if (n > 6 && memcmp(name + n - 6, "_total", 6) == 0)
        return n - 6;
    *om_type = "unknown";
    *om_tn = 7;
    return n;
}

/* Line [p, le) is "# KIND NAME REST": sets name and rest; false otherwise. */
static bool meta_line(const char *p, const char *le, const char *kind, const char **name,
                      size_t *n, const char **rest)
{
    size_t k = strlen(kind);
    if ((size_t)(le - p) < k + 1 || memcmp(p, kind, k) != 0)
        return false;
    *name = p + k;
    const char *sp = memchr(*name, ' ', (size_t)(le - *name));
    *n = (size_t)((sp ? sp : le) - *name);
    *rest = sp ? sp + 1 : le;
    return true;
}

void gw__prom_to_openmetrics(gw_strbuf *out, const char *prom, size_t len)
{
    const char *p = prom, *end = prom + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        const char *name, *rest, *tname, *type, *om_type;
        size_t n, tn, om_tn;
        if (meta_line(p, le, "# HELP ", &name, &n, &rest)) {
            /* The type is on the next line (header() writes HELP, TYPE). */
            const char *q = nl ? nl + 1 : end, *qe = memchr(q, '\n', (size_t)(end - q));
            if (!qe)
                qe = end;
            bool typed = meta_line(q, qe, "# TYPE ", &tname, &tn, &type) && tn == n &&
                         memcmp(tname, name, n) == 0;
            size_t fn = typed ? om_family(name, n, type, (size_t)(qe - type), &om_type, &om_tn) : n;
            gw__strbuf_puts(out, "# HELP ");
            gw__strbuf_append(out, name, fn);
            gw__strbuf_putc(out, ' ');
            for (const char *c = rest; c < le; c++) {
                if (*c == '"')
                    gw__strbuf_putc(out, '\\');
                gw__strbuf_putc(out, *c);
            }
        } else if (meta_line(p, le, "# TYPE ", &name, &n, &type)) {
            size_t fn = om_family(name, n, type, (size_t)(le - type), &om_type, &om_tn);
            gw__strbuf_puts(out, "# TYPE ");
            gw__strbuf_append(out, name, fn);
            gw__strbuf_putc(out, ' ');
            gw__strbuf_append(out, om_type, om_tn);
        } else {
            gw__strbuf_append(out, p, (size_t)(le - p));
        }
        gw__strbuf_putc(out, '\n');
        p = le + 1;
    }
    gw__strbuf_puts(out, "# EOF\n");
}

void gw__render_prometheus(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self,
                           unsigned families)
{
    if (families & GW__PROM_NATIVE) {
        native_devices(sb, s, self);
        native_clock_events(sb, s);
        native_processes(sb, s, families);
        native_placement(sb, s, self);
        native_progress(sb, s, self);
        native_models(sb, self);
        host_families(sb, &s->host);
        self_families(sb, s, self);
    }
    if (families & GW__PROM_DCGM)
        dcgm_families(sb, s);
    if (families & GW__PROM_NVSMI)
        nvsmi_families(sb, s, self);
}
