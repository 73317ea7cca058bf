/* snapshot_json.c — the report JSON (docs/report-json.md is its contract).
 *
 * Invariants: every key of the schema is always written; a value whose
 * valid bit is clear is null; numbers are base units (bytes, watts, joules,
 * degrees Celsius, hertz) or percent where the key says _percent.
 */
#include "render/snapshot_json.h"

#include <stdio.h>
#include <time.h>

#define S_HAS(d, m) gw_sample_has(&(d)->sample, GW_METRIC_##m)
#define I_HAS(d, f) gw_info_has(&(d)->info, GW_INFO_##f)

/* "health": the NVIDIA reliability counters (null each when not read). */
static void write_health(gw_json *j, const gw_device *d)
{
    const gw_sample *x = &d->sample;
    gw__json_key(j, "health");
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "pcie_replays", S_HAS(d, PCIE_REPLAYS), x->pcie_replays);
    gw__json_kv_u64(j, "ecc_corrected", S_HAS(d, ECC_ERRORS), x->ecc_corrected);
    gw__json_kv_u64(j, "ecc_uncorrected", S_HAS(d, ECC_ERRORS), x->ecc_uncorrected);
    gw__json_key(j, "remapped_rows");
    if (S_HAS(d, ROW_REMAP)) {
        gw__json_object_begin(j);
        gw__json_kv_u64(j, "correctable", true, x->remap_correctable);
        gw__json_kv_u64(j, "uncorrectable", true, x->remap_uncorrectable);
        gw__json_key(j, "pending");
        gw__json_bool(j, x->remap_pending);
        gw__json_key(j, "failure");
        gw__json_bool(j, x->remap_failure);
        gw__json_object_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_kv_u64(j, "xid_last", S_HAS(d, XID), x->xid_last);
    gw__json_kv_u64(j, "xid_events", S_HAS(d, XID), x->xid_events);
    gw__json_object_end(j);
}

/* "mig": null for a whole GPU; for a MIG device its GPU and instance. */
static void write_mig(gw_json *j, const gw_snapshot *s, const gw_device *d)
{
    const gw_device_info *in = &d->info;
    gw__json_key(j, "mig");
    if (!in->mig) {
        gw__json_null(j);
        return;
    }
    const gw_device *p = gw__device_mig_parent(s, d);
    gw__json_object_begin(j);
    gw__json_key(j, "parent_index");
    gw__json_u64(j, in->mig_parent);
    gw__json_kv_str(j, "parent_uuid", p && p->info.uuid[0] ? p->info.uuid : NULL);
    gw__json_key(j, "gpu_instance_id");
    gw__json_u64(j, in->mig_gpu_instance);
    gw__json_key(j, "compute_instance_id");
    gw__json_u64(j, in->mig_compute_instance);
    gw__json_kv_str(j, "profile", in->mig_profile[0] ? in->mig_profile : NULL);
    gw__json_kv_u64(j, "sm_count", in->mig_sm_count != 0, in->mig_sm_count);
    gw__json_kv_u64(j, "gpu_instance_slices", in->mig_gi_slices != 0, in->mig_gi_slices);
    gw__json_kv_u64(j, "compute_instance_slices", in->mig_ci_slices != 0, in->mig_ci_slices);
    gw__json_object_end(j);
}

void gw__render_device_json(gw_json *j, const gw_snapshot *s, const gw_device *d)
{
    const gw_sample *x = &d->sample;
    const gw_device_info *in = &d->info;
    gw__json_object_begin(j);
    gw__json_key(j, "index");
    gw__json_u64(j, in->index);
    gw__json_kv_str(j, "vendor", gw_vendor_name(in->vendor));
    gw__json_kv_str(j, "source", in->source);
    gw__json_key(j, "source_index");
    gw__json_u64(j, in->source_index);
    gw__json_kv_str(j, "name", in->name);
    gw__json_kv_str(j, "uuid", in->uuid);
    gw__json_kv_str(j, "pci_bus_id", in->pci_bus_id);
    gw__json_kv_str(j, "serial", in->serial);
    gw__json_kv_str(j, "state", gw_device_state_name(d->state));
    gw__json_kv_str(j, "state_reason", d->state_reason);
    double age = d->sampled_at_ns ? (double)(s->taken_ns - d->sampled_at_ns) / 1e9 : 0.0;
    gw__json_kv_double(j, "sample_age_seconds", d->sampled_at_ns != 0, age < 0 ? 0 : age);
    gw__json_kv_str(j, "driver_version", in->driver_version);
    gw__json_kv_str(j, "library_version", in->library_version);
    gw__json_kv_str(j, "cuda_version", in->cuda_version);
    gw__json_kv_str(j, "memory_api", in->memory_api);
    gw__json_key(j, "compute_capability");
    if (I_HAS(d, COMPUTE_CAP)) {
        gw__json_object_begin(j);
        gw__json_key(j, "major");
        gw__json_i64(j, in->cc_major);
        gw__json_key(j, "minor");
        gw__json_i64(j, in->cc_minor);
        gw__json_object_end(j);
    } else {
        gw__json_null(j);
    }

    gw__json_key(j, "memory");
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "total_bytes", S_HAS(d, MEM_TOTAL) || I_HAS(d, MEMORY_TOTAL),
           S_HAS(d, MEM_TOTAL) ? x->mem_total : in->memory_total);
    gw__json_kv_u64(j, "used_bytes", S_HAS(d, MEM_USED), x->mem_used);
    gw__json_kv_u64(j, "free_bytes", S_HAS(d, MEM_FREE), x->mem_free);
    gw__json_kv_u64(j, "reserved_bytes", S_HAS(d, MEM_RESERVED), x->mem_reserved);
    gw__json_kv_u64(j, "gtt_total_bytes", S_HAS(d, GTT_TOTAL), x->gtt_total);
    gw__json_kv_u64(j, "gtt_used_bytes", S_HAS(d, GTT_USED), x->gtt_used);
    gw__json_kv_u64(j, "visible_vram_total_bytes", S_HAS(d, VIS_VRAM_TOTAL), x->vis_vram_total);
    gw__json_kv_u64(j, "visible_vram_used_bytes", S_HAS(d, VIS_VRAM_USED), x->vis_vram_used);
    gw__json_object_end(j);

    gw__json_key(j, "utilization");
    gw__json_object_begin(j);
    gw__json_kv_double(j, "gpu_percent", S_HAS(d, UTIL_GPU), x->util_gpu);
    gw__json_kv_double(j, "memory_percent", S_HAS(d, UTIL_MEM), x->util_mem);
    gw__json_kv_double(j, "encoder_percent", S_HAS(d, UTIL_ENC), x->util_enc);
    gw__json_kv_double(j, "decoder_percent", S_HAS(d, UTIL_DEC), x->util_dec);
    gw__json_object_end(j);

    gw__json_key(j, "temperature");
    gw__json_object_begin(j);
    gw__json_kv_double(j, "gpu_celsius", S_HAS(d, TEMP), x->temp_mc / 1000.0);
    gw__json_kv_double(j, "junction_celsius", S_HAS(d, TEMP_JUNCTION), x->temp_junction_mc / 1000.0);
    gw__json_kv_double(j, "memory_celsius", S_HAS(d, TEMP_MEM), x->temp_mem_mc / 1000.0);
    gw__json_kv_double(j, "slowdown_celsius", I_HAS(d, TEMP_SLOWDOWN), in->temp_slowdown_mc / 1000.0);
    gw__json_kv_double(j, "shutdown_celsius", I_HAS(d, TEMP_SHUTDOWN), in->temp_shutdown_mc / 1000.0);
    gw__json_kv_double(j, "gpu_max_celsius", I_HAS(d, TEMP_GPU_MAX), in->temp_gpu_max_mc / 1000.0);
    gw__json_kv_double(j, "memory_max_celsius", I_HAS(d, TEMP_MEM_MAX), in->temp_mem_max_mc / 1000.0);
    gw__json_object_end(j);

    gw__json_key(j, "power");
    gw__json_object_begin(j);
    gw__json_kv_double(j, "draw_watts", S_HAS(d, POWER), x->power_mw / 1000.0);
    gw__json_kv_double(j, "limit_watts", S_HAS(d, POWER_LIMIT), x->power_limit_mw / 1000.0);
    gw__json_kv_double(j, "limit_min_watts", I_HAS(d, POWER_LIMIT_MIN), in->power_limit_min_mw / 1000.0);
    gw__json_kv_double(j, "limit_max_watts", I_HAS(d, POWER_LIMIT_MAX), in->power_limit_max_mw / 1000.0);
    gw__json_kv_double(j, "limit_default_watts", I_HAS(d, POWER_LIMIT_DEFAULT),
              in->power_limit_default_mw / 1000.0);
    gw__json_kv_double(j, "energy_joules", S_HAS(d, ENERGY), (double)x->energy_mj / 1000.0);
    gw__json_object_end(j);

    gw__json_key(j, "clocks");
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "sm_hz", S_HAS(d, CLOCK_SM), (uint64_t)x->clock_sm_mhz * 1000000);
    gw__json_kv_u64(j, "graphics_hz", S_HAS(d, CLOCK_GRAPHICS), (uint64_t)x->clock_graphics_mhz * 1000000);
    gw__json_kv_u64(j, "memory_hz", S_HAS(d, CLOCK_MEM), (uint64_t)x->clock_mem_mhz * 1000000);
    gw__json_kv_u64(j, "max_sm_hz", I_HAS(d, MAX_CLOCK_SM), (uint64_t)in->max_clock_sm_mhz * 1000000);
    gw__json_kv_u64(j, "max_graphics_hz", I_HAS(d, MAX_CLOCK_GRAPHICS),
           (uint64_t)in->max_clock_graphics_mhz * 1000000);
    gw__json_kv_u64(j, "max_memory_hz", I_HAS(d, MAX_CLOCK_MEM), (uint64_t)in->max_clock_mem_mhz * 1000000);
    gw__json_object_end(j);

    gw__json_key(j, "fan");
    gw__json_object_begin(j);
    gw__json_kv_double(j, "speed_percent", S_HAS(d, FAN), x->fan_pct);
    gw__json_kv_u64(j, "rpm", S_HAS(d, FAN_RPM), x->fan_rpm);
    gw__json_object_end(j);

    gw__json_kv_u64(j, "pstate", S_HAS(d, PSTATE), x->pstate);
    gw__json_key(j, "clock_event_reasons");
    if (S_HAS(d, CLOCK_EVENTS)) {
        gw__json_object_begin(j);
        gw__json_key(j, "mask");
        gw__json_u64(j, x->clock_events);
        gw__json_key(j, "active");
        gw__json_array_begin(j);
        for (size_t i = 0; i < GW__CLOCK_EVENT_REASONS; i++)
            if (x->clock_events & gw__clock_event_reasons[i].bit)
                gw__json_string(j, gw__clock_event_reasons[i].name);
        gw__json_array_end(j);
        gw__json_object_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_key(j, "pcie");
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "gen", S_HAS(d, PCIE_GEN), x->pcie_gen);
    gw__json_kv_u64(j, "width", S_HAS(d, PCIE_WIDTH), x->pcie_width);
    gw__json_kv_u64(j, "max_gen", I_HAS(d, PCIE_MAX_GEN), in->pcie_max_gen);
    gw__json_kv_u64(j, "max_width", I_HAS(d, PCIE_MAX_WIDTH), in->pcie_max_width);
    gw__json_object_end(j);
    gw__json_key(j, "mig_enabled");
    if (S_HAS(d, MIG_MODE))
        gw__json_bool(j, x->mig_mode != 0);
    else
        gw__json_null(j);
    gw__json_key(j, "mig_pending_enabled");
    if (S_HAS(d, MIG_MODE))
        gw__json_bool(j, x->mig_pending != 0);
    else
        gw__json_null(j);
    write_mig(j, s, d);
    write_health(j, d);
    gw__json_object_end(j);
}

/* The device a process is on: device_index is the GPU's index, which is its
 * position in a whole snapshot but not in a view of some GPUs (report --id). */
static const gw_device *process_device(const gw_snapshot *s, const gw_process *p)
{
    if (p->device_index < s->n_devices && s->devices[p->device_index].info.index == p->device_index)
        return &s->devices[p->device_index];
    for (size_t i = 0; i < s->n_devices; i++)
        if (s->devices[i].info.index == p->device_index)
            return &s->devices[i];
    return NULL;
}

static const char *or_null(const char *s)
{
    return s[0] ? s : NULL;
}

/* The "owner" object (docs/report-json.md), null when not read. */
static void write_owner(gw_json *j, const gw_process *p)
{
    gw__json_key(j, "owner");
    if (!gw_process_has(p, GW_PROC_OWNER)) {
        gw__json_null(j);
        return;
    }
    const gw_owner *o = &p->owner;
    gw__json_object_begin(j);
    gw__json_kv_str(j, "kind", gw_owner_kind_name(o->kind));
    gw__json_kv_str(j, "runtime", or_null(o->runtime));
    gw__json_kv_str(j, "container_id", or_null(o->container_id));
    gw__json_kv_str(j, "pod_uid", or_null(o->pod_uid));
    gw__json_kv_str(j, "pod", or_null(o->pod));
    gw__json_kv_str(j, "namespace", or_null(o->pod_namespace));
    gw__json_kv_str(j, "unit", or_null(o->unit));
    gw__json_kv_str(j, "slurm_job", or_null(o->slurm_job));
    gw__json_kv_str(j, "slurm_step", or_null(o->slurm_step));
    gw__json_object_end(j);
}

static void write_process(gw_json *j, const gw_snapshot *s, const gw_process *p)
{
    const gw_device *d = process_device(s, p);
    gw__json_object_begin(j);
    gw__json_key(j, "pid");
    gw__json_u64(j, p->pid);
    gw__json_key(j, "device_index");
    gw__json_u64(j, p->device_index);
    gw__json_kv_str(j, "device_uuid", d ? d->info.uuid : NULL);
    gw__json_kv_str(j, "kind", gw_process_kind_name(p->kind));
    gw__json_kv_u64(j, "gpu_memory_bytes", gw_process_has(p, GW_PROC_GPU_MEMORY), p->gpu_memory);
    gw__json_kv_u64(j, "gtt_memory_bytes", gw_process_has(p, GW_PROC_GTT_MEMORY), p->gtt_memory);
    gw__json_kv_double(j, "sm_percent", gw_process_has(p, GW_PROC_SM_UTIL), p->sm_util);
    gw__json_kv_double(j, "memory_percent", gw_process_has(p, GW_PROC_MEM_UTIL), p->mem_util);
    gw__json_kv_double(j, "encoder_percent", gw_process_has(p, GW_PROC_ENC_UTIL), p->enc_util);
    gw__json_kv_double(j, "decoder_percent", gw_process_has(p, GW_PROC_DEC_UTIL), p->dec_util);
    gw__json_kv_str(j, "name", gw_process_has(p, GW_PROC_NAME) ? p->name : NULL);
    gw__json_kv_str(j, "user", gw_process_has(p, GW_PROC_USER) ? p->user : NULL);
    gw__json_kv_str(j, "cmdline", gw_process_has(p, GW_PROC_CMDLINE) ? p->cmdline : NULL);
    gw__json_kv_u64(j, "host_memory_bytes", gw_process_has(p, GW_PROC_HOST_MEMORY),
                    p->host_memory);
    gw__json_kv_double(j, "cpu_percent", gw_process_has(p, GW_PROC_CPU_UTIL), p->cpu_util);
    write_owner(j, p);
    gw__json_kv_str(j, "model", gw_process_has(p, GW_PROC_MODEL) ? p->model : NULL);
    gw__json_object_end(j);
}

static void write_host(gw_json *j, const gw_host *h)
{
    gw__json_object_begin(j);
    gw__json_kv_str(j, "hostname", h->hostname);
    gw__json_kv_u64(j, "cpu_count", gw_host_has(h, GW_HOST_CPU_COUNT), h->cpu_count);
    gw__json_kv_double(j, "cpu_percent", gw_host_has(h, GW_HOST_CPU_UTIL), h->cpu_util);
    gw__json_key(j, "load_average");
    if (gw_host_has(h, GW_HOST_LOADAVG)) {
        gw__json_array_begin(j);
        gw__json_double(j, h->load1);
        gw__json_double(j, h->load5);
        gw__json_double(j, h->load15);
        gw__json_array_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_kv_u64(j, "memory_total_bytes", gw_host_has(h, GW_HOST_MEM_TOTAL), h->mem_total);
    gw__json_kv_u64(j, "memory_available_bytes", gw_host_has(h, GW_HOST_MEM_AVAILABLE), h->mem_available);
    gw__json_kv_u64(j, "swap_total_bytes", gw_host_has(h, GW_HOST_SWAP_TOTAL), h->swap_total);
    gw__json_kv_u64(j, "swap_free_bytes", gw_host_has(h, GW_HOST_SWAP_FREE), h->swap_free);
    gw__json_object_end(j);
}

/* The pool summary counts devices whose memory figures are valid; a lost
 * device counts in gpu_count but adds no memory. */
static void write_summary(gw_json *j, const gw_snapshot *s)
{
    uint64_t total = 0, used = 0, free_b = 0;
    size_t with_mem = 0, lost = 0, gpus = 0, migs = 0;
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        if (d->info.mig) { /* its memory is its GPU's: counted there */
            migs++;
            continue;
        }
        gpus++;
        if (d->state == GW_DEVICE_LOST)
            lost++;
        if (S_HAS(d, MEM_TOTAL) && S_HAS(d, MEM_USED) && S_HAS(d, MEM_FREE)) {
            total += d->sample.mem_total;
            used += d->sample.mem_used;
            free_b += d->sample.mem_free;
            with_mem++;
        }
    }
    gw__json_object_begin(j);
    gw__json_key(j, "gpu_count");
    gw__json_u64(j, gpus);
    gw__json_key(j, "mig_device_count");
    gw__json_u64(j, migs);
    gw__json_key(j, "gpus_lost");
    gw__json_u64(j, lost);
    gw__json_key(j, "gpus_with_memory");
    gw__json_u64(j, with_mem);
    gw__json_kv_u64(j, "memory_total_bytes", with_mem > 0, total);
    gw__json_kv_u64(j, "memory_used_bytes", with_mem > 0, used);
    gw__json_kv_u64(j, "memory_free_bytes", with_mem > 0, free_b);
    gw__json_kv_double(j, "memory_used_ratio", total > 0, total ? (double)used / (double)total : 0);
    gw__json_key(j, "process_count");
    gw__json_u64(j, s->n_processes);
    gw__json_object_end(j);
}

void gw__render_source_json(gw_json *j, const gw_source_status *st)
{
    gw__json_object_begin(j);
    gw__json_kv_str(j, "name", st->name);
    gw__json_kv_str(j, "state", gw_source_state_name(st->state));
    gw__json_key(j, "error");
    if (st->error) {
        gw__json_object_begin(j);
        gw__json_key(j, "code");
        gw__json_i64(j, st->error);
        gw__json_kv_str(j, "name", gw_strerror(st->error));
        gw__json_object_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_kv_str(j, "message", st->message);
    gw__json_kv_str(j, "driver_version", st->driver_version);
    gw__json_kv_str(j, "library_version", st->library_version);
    gw__json_key(j, "device_count");
    gw__json_u64(j, st->device_count);
    gw__json_key(j, "calls");
    gw__json_u64(j, st->calls);
    gw__json_object_end(j);
}

void gw__render_process_json(gw_json *j, const gw_snapshot *s, const gw_process *p)
{
    write_process(j, s, p);
}

void gw__render_host_json(gw_json *j, const gw_host *h)
{
    write_host(j, h);
}

void gw__render_summary_json(gw_json *j, const gw_snapshot *s)
{
    write_summary(j, s);
}

void gw__render_snapshot_json(gw_strbuf *sb, const gw_snapshot *s, bool pretty)
{
    gw__render_snapshot_json_with(sb, s, pretty, NULL, NULL);
}

void gw__render_snapshot_json_with(gw_strbuf *sb, const gw_snapshot *s, bool pretty,
                                   void (*more)(gw_json *j, void *arg), void *arg)
{
    gw_json j;
    gw__json_init(&j, sb, pretty);
    gw__json_object_begin(&j);
    gw__json_kv_str(&j, "schema", GW_REPORT_SCHEMA);
    gw__json_kv_str(&j, "gpuwatch_version", GW_VERSION_STRING);
    gw__json_kv_timestamp(&j, "timestamp", s->taken_ns);
    gw__json_key(&j, "sample_duration_seconds");
    gw__json_double(&j, (double)s->duration_ns / 1e9);
    gw__json_key(&j, "cpu_only");
    gw__json_bool(&j, s->cpu_only);
    gw__json_kv_str(&j, "cpu_only_reason", s->cpu_only ? s->cpu_only_reason : NULL);

    gw__json_key(&j, "sources");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_sources; i++)
        gw__render_source_json(&j, &s->sources[i]);
    gw__json_array_end(&j);

    gw__json_key(&j, "devices");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_devices; i++)
        gw__render_device_json(&j, s, &s->devices[i]);
    gw__json_array_end(&j);

    gw__json_key(&j, "processes");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_processes; i++)
        write_process(&j, s, &s->processes[i]);
    gw__json_array_end(&j);

    gw__json_key(&j, "host");
    write_host(&j, &s->host);
    gw__json_key(&j, "summary");
    write_summary(&j, s);
    if (more)
        more(&j, arg);
    gw__json_object_end(&j);
    gw__strbuf_putc(sb, '\n');
}
