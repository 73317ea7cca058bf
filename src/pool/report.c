/* report.c — what the pool shows: GET /api/v1/pool, /health (seed 004's
 * shape: GPU status with the models on each GPU, pool status, allocation
 * strategy, CPU-only status), /v1/models and llama.cpp's /models, the pool
 * families of /metrics (docs/pool.md lists them) and a model's log. Every
 * figure is read under the pool's lock, so one answer is one consistent
 * moment. */
#include "pool/pool_impl.h"

#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GPU_REFRESH_NS 2000000000LL

/* The monitor's latest snapshot, re-sampled when older than 2 s; NULL
 * without GPU monitoring. Caller releases. */
static gw_snapshot *gpu_snapshot(gw_pool *p)
{
    if (!p->mon)
        return NULL;
    gw_snapshot *s = gw_monitor_latest(p->mon);
    if (s && gw__now_real_ns() - s->taken_ns < GPU_REFRESH_NS)
        return s;
    gw_snapshot_release(s);
    gw_error err;
    if (gw_monitor_sample(p->mon, &s, &err) != GW_OK)
        return NULL;
    return s;
}

static uint64_t reserved_on(const gw_pool_model *m, const char *uuid)
{
    for (size_t k = 0; k < m->res.n_devices; k++)
        if (strcmp(m->res.devices[k].uuid, uuid) == 0)
            return m->res.devices[k].bytes;
    return 0;
}

/* What m's child is seen using on the GPUs (bool: any reading). */
static bool used_by(const gw_pool_model *m, const gw_snapshot *s, uint64_t *bytes)
{
    *bytes = 0;
    bool any = false;
    if (!s || !m->child || m->state != GW_PM_READY) /* READY: the supervisor owns it */
        return false;
    for (size_t i = 0; i < s->n_processes; i++) {
        const gw_process *pr = &s->processes[i];
        if (pr->pid == (uint32_t)m->child->pid && gw_process_has(pr, GW_PROC_GPU_MEMORY)) {
            *bytes += pr->gpu_memory;
            any = true;
        }
    }
    return any;
}

static double secs_since(int64_t then_ns)
{
    return then_ns ? (double)(gw__now_mono_ns() - then_ns) / 1e9 : 0;
}

static void model_json(const gw_pool *p, const gw_pool_model *m, const gw_snapshot *s, gw_json *j)
{
    (void)p;
    gw__json_object_begin(j);
    gw__json_kv_str(j, "name", m->cfg.name);
    gw__json_kv_str(j, "path", m->cfg.path);
    gw__json_kv_str(j, "state", gw_pool_state_name(m->state));
    gw__json_key(j, "pinned");
    gw__json_bool(j, m->cfg.pinned);
    gw__json_kv_u64(j, "ctx", true, m->cfg.ctx);
    gw__json_kv_u64(j, "parallel", true, m->cfg.parallel);
    bool live = m->state == GW_PM_READY || m->state == GW_PM_LOADING;
    gw__json_kv_u64(j, "pid", live && m->child, live && m->child ? (uint64_t)m->child->pid : 0);
    gw__json_kv_u64(j, "port", live, m->port);
    gw__json_kv_str(j, "placement", live ? m->placement : NULL);
    gw__json_key(j, "cpu_only");
    gw__json_bool(j, live && m->cpu_only);
    gw__json_kv_u64(j, "reservation", m->res_id != 0, (uint64_t)m->res_id);
    uint64_t total = 0, used = 0;
    gw__json_key(j, "gpus");
    gw__json_array_begin(j);
    for (size_t k = 0; k < m->res.n_devices; k++) {
        gw__json_object_begin(j);
        gw__json_kv_str(j, "uuid", m->res.devices[k].uuid);
        for (size_t d = 0; s && d < s->n_devices; d++)
            if (strcmp(s->devices[d].info.uuid, m->res.devices[k].uuid) == 0)
                gw__json_kv_u64(j, "index", true, s->devices[d].info.index);
        gw__json_kv_u64(j, "reserved_bytes", true, m->res.devices[k].bytes);
        gw__json_object_end(j);
        total += m->res.devices[k].bytes;
    }
    gw__json_array_end(j);
    gw__json_kv_u64(j, "reserved_bytes", true, total);
    bool has_used = used_by(m, s, &used);
    gw__json_kv_u64(j, "used_bytes", has_used, used);
    gw__json_kv_u64(j, "in_flight", true, m->in_flight);
    gw__json_kv_u64(j, "queued", true, m->queued);
    gw__json_kv_double(j, "idle_seconds", m->state == GW_PM_READY, secs_since(m->last_used_ns));
    gw__json_kv_double(j, "last_load_seconds", m->loads > 0, m->last_load_seconds);
    gw__json_kv_u64(j, "loads", true, m->loads);
    gw__json_kv_u64(j, "load_failures", true, m->load_failures);
    gw__json_kv_u64(j, "crashes", true, m->crashes);
    gw__json_kv_u64(j, "unloads_idle", true, m->unloads_idle);
    gw__json_kv_u64(j, "unloads_evicted", true, m->unloads_evicted);
    gw__json_kv_str(j, "last_error", m->last_error[0] ? m->last_error : NULL);
    int64_t wait = m->state == GW_PM_FAILED && !m->broken ? m->retry_at_ns - gw__now_mono_ns() : 0;
    gw__json_kv_double(j, "retry_in_seconds", wait > 0, (double)wait / 1e9);
    gw__json_object_end(j);
}

void gw_pool_json(gw_pool *p, gw_json *j)
{
    gw_snapshot *s = gpu_snapshot(p);
    pthread_mutex_lock(&p->lock);
    gw__json_object_begin(j);
    gw__json_kv_str(j, "allocation_strategy", gw_pool_strategy_name(p->cfg.policy));
    gw__json_key(j, "gpu_monitoring");
    gw__json_bool(j, p->mon != NULL);
    gw__json_kv_u64(j, "evictions", true, p->evictions);
    gw__json_kv_u64(j, "no_fit", true, p->no_fit);
    gw__json_key(j, "models");
    gw__json_array_begin(j);
    for (size_t i = 0; i < p->n_models; i++)
        model_json(p, &p->models[i], s, j);
    gw__json_array_end(j);
    gw__json_object_end(j);
    pthread_mutex_unlock(&p->lock);
    gw_snapshot_release(s);
}

static void gpu_json(const gw_pool *p, const gw_device *d, gw_json *j)
{
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "index", true, d->info.index);
    gw__json_kv_str(j, "uuid", d->info.uuid);
    gw__json_kv_str(j, "name", d->info.name);
    gw__json_kv_str(j, "state", gw_device_state_name(d->state));
    const gw_sample *sm = &d->sample;
    gw__json_kv_u64(j, "memory_total_bytes", gw_sample_has(sm, GW_METRIC_MEM_TOTAL), sm->mem_total);
    gw__json_kv_u64(j, "memory_used_bytes", gw_sample_has(sm, GW_METRIC_MEM_USED), sm->mem_used);
    gw__json_kv_u64(j, "memory_free_bytes", gw_sample_has(sm, GW_METRIC_MEM_FREE), sm->mem_free);
    gw__json_kv_double(j, "utilization_percent", gw_sample_has(sm, GW_METRIC_UTIL_GPU),
                       sm->util_gpu);
    gw__json_kv_double(j, "temperature_celsius", gw_sample_has(sm, GW_METRIC_TEMP),
                       sm->temp_mc / 1000.0);
    uint64_t reserved = 0;
    gw__json_key(j, "models");
    gw__json_array_begin(j);
    for (size_t i = 0; i < p->n_models; i++) {
        uint64_t b = reserved_on(&p->models[i], d->info.uuid);
        if (!b)
            continue;
        reserved += b;
        gw__json_string(j, p->models[i].cfg.name);
    }
    gw__json_array_end(j);
    gw__json_kv_u64(j, "pool_reserved_bytes", true, reserved);
    gw__json_object_end(j);
}

void gw_pool_health_json(gw_pool *p, gw_json *j)
{
    gw_snapshot *s = gpu_snapshot(p);
    pthread_mutex_lock(&p->lock);
    unsigned n[5] = {0}, flight = 0, queued = 0, cpu_models = 0;
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *m = &p->models[i];
        n[m->state]++;
        flight += m->in_flight;
        queued += m->queued;
        cpu_models += m->state == GW_PM_READY && m->cpu_only;
    }
    bool cpu_only = !p->mon || !s || s->n_devices == 0;
    gw__json_object_begin(j);
    gw__json_kv_str(j, "status", p->stopping ? "stopping" : "ok");
    gw__json_key(j, "gpu_monitoring");
    gw__json_bool(j, p->mon != NULL);
    gw__json_kv_str(j, "allocation_strategy", gw_pool_strategy_name(p->cfg.policy));
    gw__json_key(j, "cpu_only");
    gw__json_bool(j, cpu_only);
    gw__json_kv_str(j, "cpu_only_reason", !p->mon ? "enable_gpu_monitoring is false"
                                          : cpu_only ? "no GPU found"
                                                     : NULL);
    gw__json_key(j, "gpus");
    gw__json_array_begin(j);
    for (size_t d = 0; s && d < s->n_devices; d++)
        gpu_json(p, &s->devices[d], j);
    gw__json_array_end(j);
    gw__json_key(j, "pool");
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "models", true, p->n_models);
    gw__json_kv_u64(j, "loaded", true, n[GW_PM_READY]);
    gw__json_kv_u64(j, "loading", true, n[GW_PM_LOADING]);
    gw__json_kv_u64(j, "failed", true, n[GW_PM_FAILED]);
    gw__json_kv_u64(j, "loaded_on_cpu", true, cpu_models);
    gw__json_kv_u64(j, "requests_in_flight", true, flight);
    gw__json_kv_u64(j, "requests_queued", true, queued);
    gw__json_key(j, "assigned");
    gw__json_object_begin(j);
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *m = &p->models[i];
        if (m->state != GW_PM_READY && m->state != GW_PM_LOADING)
            continue;
        gw__json_kv_str(j, m->cfg.name, m->cpu_only ? "cpu" : m->placement);
    }
    gw__json_object_end(j);
    gw__json_object_end(j);
    gw__json_object_end(j);
    pthread_mutex_unlock(&p->lock);
    gw_snapshot_release(s);
}

void gw_pool_models_json(gw_pool *p, gw_json *j, bool router_shape)
{
    pthread_mutex_lock(&p->lock);
    gw__json_object_begin(j);
    if (!router_shape)
        gw__json_kv_str(j, "object", "list");
    gw__json_key(j, "data");
    gw__json_array_begin(j);
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *m = &p->models[i];
        gw__json_object_begin(j);
        gw__json_kv_str(j, "id", m->cfg.name);
        gw__json_kv_str(j, "object", "model");
        gw__json_kv_u64(j, "created", true, 0);
        gw__json_kv_str(j, "owned_by", "gpuwatch-pool");
        if (router_shape) {
            gw__json_key(j, "status");
            gw__json_object_begin(j);
            gw__json_kv_str(j, "value", gw_pool_state_name(m->state));
            gw__json_object_end(j);
        }
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_object_end(j);
    pthread_mutex_unlock(&p->lock);
}

/* Prometheus label value: backslash, quote and newline escaped. */
static void label(gw_strbuf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            gw__strbuf_putc(out, '\\');
        if (*s == '\n') {
            gw__strbuf_puts(out, "\\n");
            continue;
        }
        gw__strbuf_putc(out, *s);
    }
}

static void family(gw_strbuf *out, const char *name, const char *type, const char *help)
{
    gw__strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One series per model: name{model="M"} value, for a value picked by f. */
static void per_model(gw_pool *p, gw_strbuf *out, const char *name, const char *type,
                      const char *help, double (*f)(const gw_pool_model *))
{
    family(out, name, type, help);
    for (size_t i = 0; i < p->n_models; i++) {
        gw__strbuf_printf(out, "%s{model=\"", name);
        label(out, p->models[i].cfg.name);
        gw__strbuf_printf(out, "\"} %.17g\n", f(&p->models[i]));
    }
}

static double f_loaded(const gw_pool_model *m) { return m->state == GW_PM_READY; }
static double f_loads(const gw_pool_model *m) { return (double)m->loads; }
static double f_load_failures(const gw_pool_model *m) { return (double)m->load_failures; }
static double f_crashes(const gw_pool_model *m) { return (double)m->crashes; }
static double f_load_sum(const gw_pool_model *m) { return m->load_seconds_sum; }
static double f_queue(const gw_pool_model *m) { return m->queued; }
static double f_flight(const gw_pool_model *m) { return m->in_flight; }
static double f_reserved(const gw_pool_model *m)
{
    uint64_t b = 0;
    for (size_t k = 0; k < m->res.n_devices; k++)
        b += m->res.devices[k].bytes;
    return (double)b;
}

static void unload_series(gw_pool *p, gw_strbuf *out)
{
    family(out, "gpuwatch_pool_unloads_total", "counter",
           "Models unloaded, by reason (idle TTL, evicted for another model, asked).");
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *m = &p->models[i];
        const uint64_t v[3] = {m->unloads_idle, m->unloads_evicted, m->unloads_asked};
        static const char *const why[3] = {"idle", "evicted", "asked"};
        for (int k = 0; k < 3; k++) {
            gw__strbuf_puts(out, "gpuwatch_pool_unloads_total{model=\"");
            label(out, m->cfg.name);
            gw__strbuf_printf(out, "\",reason=\"%s\"} %llu\n", why[k], (unsigned long long)v[k]);
        }
    }
}

static void request_series(gw_pool *p, gw_strbuf *out)
{
    family(out, "gpuwatch_pool_requests_total", "counter",
           "Requests answered through the pool, by model and status class (client_gone: the "
           "client left first).");
    static const char *const cls[6] = {"client_gone", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t i = 0; i < p->n_models; i++)
        for (int k = 0; k < 6; k++) {
            gw__strbuf_puts(out, "gpuwatch_pool_requests_total{model=\"");
            label(out, p->models[i].cfg.name);
            gw__strbuf_printf(out, "\",code=\"%s\"} %llu\n", cls[k],
                              (unsigned long long)p->models[i].requests[k]);
        }
    family(out, "gpuwatch_pool_request_duration_seconds", "histogram",
           "Time from a request's arrival to the end of its answer, by model.");
    for (size_t i = 0; i < p->n_models; i++) {
        const gw_pool_model *m = &p->models[i];
        for (int b = 0; b <= GW_POOL_LATENCY_BUCKETS; b++) {
            gw__strbuf_puts(out, "gpuwatch_pool_request_duration_seconds_bucket{model=\"");
            label(out, m->cfg.name);
            if (b < GW_POOL_LATENCY_BUCKETS)
                gw__strbuf_printf(out, "\",le=\"%g\"} %llu\n", gw_pool_latency_bounds[b],
                                  (unsigned long long)m->latency_buckets[b]);
            else
                gw__strbuf_printf(out, "\",le=\"+Inf\"} %llu\n",
                                  (unsigned long long)m->latency_count);
        }
        gw__strbuf_puts(out, "gpuwatch_pool_request_duration_seconds_sum{model=\"");
        label(out, m->cfg.name);
        gw__strbuf_printf(out, "\"} %.17g\n", m->latency_sum);
        gw__strbuf_puts(out, "gpuwatch_pool_request_duration_seconds_count{model=\"");
        label(out, m->cfg.name);
        gw__strbuf_printf(out, "\"} %llu\n", (unsigned long long)m->latency_count);
    }
}

void gw_pool_metrics(gw_pool *p, gw_strbuf *out)
{
    pthread_mutex_lock(&p->lock);
    per_model(p, out, "gpuwatch_pool_model_loaded", "gauge",
              "1 while the model's server is loaded and ready.", f_loaded);
    per_model(p, out, "gpuwatch_pool_loads_total", "counter",
              "Loads that ended ready.", f_loads);
    per_model(p, out, "gpuwatch_pool_load_failures_total", "counter",
              "Loads that failed (the server exited, was not ready in time, could not start).",
              f_load_failures);
    per_model(p, out, "gpuwatch_pool_crashes_total", "counter",
              "Ready servers that exited or stopped answering /health.", f_crashes);
    per_model(p, out, "gpuwatch_pool_load_seconds_total", "counter",
              "Seconds spent in loads that ended ready (with loads_total: the mean).",
              f_load_sum);
    per_model(p, out, "gpuwatch_pool_queue_depth", "gauge",
              "Requests waiting for the model (loading or all slots busy).", f_queue);
    per_model(p, out, "gpuwatch_pool_requests_in_flight", "gauge",
              "Requests the model's server is answering.", f_flight);
    per_model(p, out, "gpuwatch_pool_reserved_bytes", "gauge",
              "GPU memory reserved for the model's server in the ledger.", f_reserved);
    unload_series(p, out);
    request_series(p, out);
    family(out, "gpuwatch_pool_evictions_total", "counter",
           "Models unloaded to make room for another.");
    gw__strbuf_printf(out, "gpuwatch_pool_evictions_total %llu\n",
                      (unsigned long long)p->evictions);
    family(out, "gpuwatch_pool_no_fit_total", "counter",
           "Loads refused because the model fits on no GPU (HTTP 507).");
    gw__strbuf_printf(out, "gpuwatch_pool_no_fit_total %llu\n", (unsigned long long)p->no_fit);
    pthread_mutex_unlock(&p->lock);
}

int gw_pool_log(gw_pool *p, const char *name, gw_strbuf *out)
{
    int rc = GW_ENOENT;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_models; i++) {
        gw_pool_model *m = &p->models[i];
        if (strcmp(m->cfg.name, name) != 0)
            continue;
        rc = GW_OK;
        if (m->child) {
            size_t cap = p->cfg.log_bytes + 1;
            char *buf = malloc(cap);
            if (buf) {
                size_t n = gw_child_log_tail(m->child, buf, cap);
                gw__strbuf_append(out, buf, n);
                free(buf);
            }
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}
