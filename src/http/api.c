/* api.c — see api.h. */
#include "http/api.h"
#include "render/snapshot_json.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>


static void finish(gw_strbuf *sb)
{
    gw__strbuf_putc(sb, '\n');
}

unsigned gw__api_error(gw_strbuf *sb, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "error");
    gw__json_object_begin(&j);
    gw__json_key(&j, "code");
    gw__json_u64(&j, status);
    gw__json_kv_str(&j, "message", msg);
    gw__json_object_end(&j);
    gw__json_object_end(&j);
    finish(sb);
    return status;
}

/* Age of the data: seconds since the last real sample. */
static double data_age(const gw_snapshot *s, const gw__api_ctx *ctx)
{
    int64_t good = ctx && ctx->last_good_ns ? ctx->last_good_ns : s->taken_ns;
    int64_t now = ctx && ctx->now_ns ? ctx->now_ns : s->taken_ns;
    double a = (double)(now - good) / 1e9;
    return a < 0 ? 0 : a;
}

static void snapshot_meta(gw_json *j, const gw_snapshot *s, const gw__api_ctx *ctx)
{
    gw__json_kv_timestamp(j, "timestamp", s->taken_ns);
    gw__json_key(j, "stale");
    gw__json_bool(j, ctx && ctx->stale);
    gw__json_key(j, "data_age_seconds");
    gw__json_double(j, data_age(s, ctx));
}

/* The health verdict and its reason (one line). */
static const char *verdict(const gw_snapshot *s, const gw__api_ctx *ctx, gw_strbuf *why)
{
    if (s->cpu_only) {
        gw__strbuf_puts(why, s->cpu_only_reason);
        return ctx && ctx->stale ? "degraded" : "cpu-only";
    }
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        if (d->state == GW_DEVICE_OK)
            continue;
        gw__strbuf_printf(why, "%sGPU %u %s%s%s", why->len ? "; " : "", d->info.index,
                          gw_device_state_name(d->state), d->state_reason[0] ? ": " : "",
                          d->state_reason);
    }
    for (size_t i = 0; i < s->n_sources; i++) {
        const gw_source_status *st = &s->sources[i];
        if (st->state != GW_SOURCE_FAILED || st->device_count > 0)
            continue; /* failures with devices are already named above */
        gw__strbuf_printf(why, "%ssource %s failed%s%s", why->len ? "; " : "", st->name,
                          st->message[0] ? ": " : "", st->message);
    }
    return why->len ? "degraded" : "ok";
}

unsigned gw__api_health(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx)
{
    gw_strbuf why;
    gw__strbuf_init(&why, 4096);
    const char *status = verdict(s, ctx, &why);
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    /* how `place` / `run` tell gpuwatch from another server on the port */
    gw__json_kv_str(&j, "service", "gpuwatch");
    gw__json_kv_str(&j, "status", status);
    gw__json_kv_str(&j, "reason", why.failed ? "(reason too long)" : why.data);
    gw__strbuf_release(&why);
    gw__json_kv_str(&j, "version", GW_VERSION_STRING);
    gw__json_kv_double(&j, "uptime_seconds", ctx != NULL, ctx ? ctx->uptime_seconds : 0);
    snapshot_meta(&j, s, ctx);
    gw__json_key(&j, "sampling");
    gw__json_object_begin(&j);
    const gw__sampler_stats *st = ctx ? ctx->sampler : NULL;
    gw__json_kv_double(&j, "interval_seconds", st != NULL, st ? st->interval_ms / 1000.0 : 0);
    gw__json_kv_double(&j, "history_seconds", st != NULL, st ? st->history_seconds : 0);
    gw__json_key(&j, "stalled");
    gw__json_bool(&j, st ? st->stalled : (ctx && ctx->stale));
    gw__json_kv_double(&j, "stalled_seconds", st && st->stalled, st ? st->stalled_seconds : 0);
    gw__json_kv_double(&j, "last_round_seconds", true, (double)s->duration_ns / 1e9);
    gw__json_object_end(&j);
    gw__json_key(&j, "gpus");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_devices; i++)
        gw__render_device_json(&j, s, &s->devices[i]);
    gw__json_array_end(&j);
    gw__json_key(&j, "pool");
    gw__render_summary_json(&j, s);
    gw__json_key(&j, "host"); /* what a cluster view shows of a CPU-only node */
    gw__render_host_json(&j, &s->host);
    gw__json_key(&j, "sources");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_sources; i++)
        gw__render_source_json(&j, &s->sources[i]);
    gw__json_array_end(&j);
    if (ctx && ctx->placement) {
        gw__json_key(&j, "placement");
        ctx->placement(ctx->placement_cls, s, &j);
    }
    if (ctx && ctx->models) {
        gw__json_key(&j, "model_servers");
        ctx->models(ctx->models_cls, &j);
    }
    gw__json_key(&j, "cluster_view");
    gw__json_bool(&j, ctx && ctx->cluster_view);
    gw__json_object_end(&j);
    finish(sb);
    return 200;
}

unsigned gw__api_info(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx)
{
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "available");
    gw__json_bool(&j, !s->cpu_only);
    size_t gpus = gw__snapshot_gpu_count(s); /* whole GPUs: docs/mig.md */
    gw__json_key(&j, "gpu_count");
    gw__json_u64(&j, gpus);
    gw__json_key(&j, "mig_device_count");
    gw__json_u64(&j, s->n_devices - gpus);
    gw__json_kv_str(&j, "cpu_only_reason", s->cpu_only ? s->cpu_only_reason : NULL);
    gw__json_kv_str(&j, "gpuwatch_version", GW_VERSION_STRING);
    gw__json_kv_str(&j, "hostname", s->host.hostname);
    snapshot_meta(&j, s, ctx);
    gw__json_key(&j, "gpus");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        gw__json_object_begin(&j);
        gw__json_key(&j, "index");
        gw__json_u64(&j, d->info.index);
        gw__json_kv_str(&j, "name", d->info.name);
        gw__json_kv_str(&j, "uuid", d->info.uuid);
        gw__json_kv_str(&j, "vendor", gw_vendor_name(d->info.vendor));
        gw__json_kv_str(&j, "source", d->info.source);
        gw__json_kv_str(&j, "pci_bus_id", d->info.pci_bus_id);
        gw__json_kv_str(&j, "driver_version", d->info.driver_version);
        gw__json_kv_str(&j, "state", gw_device_state_name(d->state));
        gw__json_object_end(&j);
    }
    gw__json_array_end(&j);
    gw__json_key(&j, "sources");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_sources; i++)
        gw__render_source_json(&j, &s->sources[i]);
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    finish(sb);
    return 200;
}

#define S_HAS(d, m) gw_sample_has(&(d)->sample, GW_METRIC_##m)

static void aggregates(gw_json *j, const gw_snapshot *s)
{
    double used = 0, total = 0, util = 0, mutil = 0, temp = 0, power = 0;
    size_t n_mem = 0, n_util = 0, n_mutil = 0, n_temp = 0, n_power = 0;
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        if (d->state == GW_DEVICE_LOST || d->info.mig) /* a MIG device's figures are its GPU's */
            continue;
        if (S_HAS(d, MEM_USED) && S_HAS(d, MEM_TOTAL)) {
            used += (double)d->sample.mem_used;
            total += (double)d->sample.mem_total;
            n_mem++;
        }
        if (S_HAS(d, UTIL_GPU))
            util += d->sample.util_gpu, n_util++;
        if (S_HAS(d, UTIL_MEM))
            mutil += d->sample.util_mem, n_mutil++;
        if (S_HAS(d, TEMP))
            temp += d->sample.temp_mc / 1000.0, n_temp++;
        if (S_HAS(d, POWER))
            power += d->sample.power_mw / 1000.0, n_power++;
    }
    gw__json_object_begin(j);
    gw__json_key(j, "gpu_count");
    gw__json_u64(j, gw__snapshot_gpu_count(s));
    gw__json_kv_double(j, "memory_used_bytes", n_mem > 0, used);
    gw__json_kv_double(j, "memory_total_bytes", n_mem > 0, total);
    gw__json_kv_double(j, "memory_free_bytes", n_mem > 0, total - used);
    gw__json_kv_double(j, "memory_used_ratio", n_mem > 0 && total > 0, total > 0 ? used / total : 0);
    gw__json_kv_double(j, "utilization_gpu_mean_percent", n_util > 0, n_util ? util / (double)n_util : 0);
    gw__json_kv_double(j, "utilization_memory_mean_percent", n_mutil > 0, n_mutil ? mutil / (double)n_mutil : 0);
    gw__json_kv_double(j, "temperature_mean_celsius", n_temp > 0, n_temp ? temp / (double)n_temp : 0);
    gw__json_kv_double(j, "power_total_watts", n_power > 0, power);
    gw__json_object_end(j);
}

unsigned gw__api_metrics(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx)
{
    if (s->cpu_only)
        return gw__api_error(sb, 503, "no GPU source is available: %s", s->cpu_only_reason);
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    snapshot_meta(&j, s, ctx);
    gw__json_key(&j, "aggregates");
    aggregates(&j, s);
    gw__json_key(&j, "gpus");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_devices; i++)
        gw__render_device_json(&j, s, &s->devices[i]);
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    finish(sb);
    return 200;
}

unsigned gw__api_find_device(const gw_snapshot *s, const char *id, size_t *index)
{
    size_t n = strlen(id);
    if (n == 0 || n > 95)
        return 400;
    bool digits = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isdigit(c))
            digits = false;
        if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':')
            return 400;
    }
    if (!isalnum((unsigned char)id[0]))
        return 400;
    /* A UUID first: AMD's unique_id is hex, so it may start with a digit
     * (or be all digits). */
    for (size_t i = 0; i < s->n_devices; i++)
        if (s->devices[i].info.uuid[0] && strcasecmp(s->devices[i].info.uuid, id) == 0) {
            *index = i;
            return 200;
        }
    if (!digits || n > 9)
        return 404;
    size_t v = (size_t)strtoul(id, NULL, 10);
    if (v >= s->n_devices)
        return 404;
    *index = v;
    return 200;
}

unsigned gw__api_metrics_one(gw_strbuf *sb, const gw_snapshot *s, const char *id,
                             const gw__api_ctx *ctx)
{
    size_t idx = 0;
    unsigned st = gw__api_find_device(s, id, &idx);
    if (st == 400)
        return gw__api_error(sb, 400,
                             "'%.96s' is not a GPU id: use a decimal index or a UUID "
                             "(letters, digits, '-', '_', '.', ':'; at most 95 characters)",
                             id);
    if (st == 404)
        return gw__api_error(sb, 404, "no GPU with index or UUID '%s' (this host has %zu)", id,
                             s->n_devices);
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    snapshot_meta(&j, s, ctx);
    gw__json_key(&j, "gpu");
    gw__render_device_json(&j, s, &s->devices[idx]);
    gw__json_object_end(&j);
    finish(sb);
    return 200;
}

unsigned gw__api_processes(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx)
{
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    snapshot_meta(&j, s, ctx);
    gw__json_key(&j, "process_count");
    gw__json_u64(&j, s->n_processes);
    gw__json_key(&j, "processes");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < s->n_processes; i++) {
        gw_process p = s->processes[i];
        if (ctx->withhold_cmdline) { /* read_only: "cmdline": null, the text never copied out */
            p.valid &= ~(1u << GW_PROC_CMDLINE);
            memset(p.cmdline, 0, sizeof p.cmdline);
        }
        gw__render_process_json(&j, s, &p);
    }
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    finish(sb);
    return 200;
}

/* Parses a non-negative finite decimal number; false for anything else. */
static bool parse_seconds(const char *v, double *out)
{
    if (!v || !*v || strlen(v) > 32)
        return false;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d) || d < 0 || d > 1e9 || !isdigit((unsigned char)v[0]))
        return false;
    *out = d;
    return true;
}

unsigned gw__api_history(gw_strbuf *sb, const gw_snapshot *s, gw__history *h, const char *gpu,
                         const char *metric, const char *since, const char *step,
                         const gw__api_ctx *ctx)
{
    size_t n_metrics;
    const gw_metric *metrics = gw__history_metrics(&n_metrics);
    char names[512] = "";
    for (size_t i = 0; i < n_metrics; i++) {
        if (i)
            strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, gw_metric_name(metrics[i]), sizeof names - strlen(names) - 1);
    }
    if (!gpu || !*gpu)
        return gw__api_error(sb, 400, "parameter 'gpu' (index or UUID) is required");
    if (!metric || !*metric)
        return gw__api_error(sb, 400, "parameter 'metric' is required; one of: %s", names);
    gw_metric m = GW_METRIC_COUNT;
    for (size_t i = 0; i < n_metrics; i++)
        if (strcmp(metric, gw_metric_name(metrics[i])) == 0)
            m = metrics[i];
    if (m == GW_METRIC_COUNT)
        return gw__api_error(sb, 400, "metric '%.64s' has no history; one of: %s", metric, names);
    double since_s = 0, step_s = 0;
    if (since && !parse_seconds(since, &since_s))
        return gw__api_error(sb, 400, "parameter 'since' must be a number of seconds back (got '%.32s')",
                             since);
    if (step && !parse_seconds(step, &step_s))
        return gw__api_error(sb, 400, "parameter 'step' must be a number of seconds (got '%.32s')",
                             step);
    size_t idx = 0;
    unsigned st = gw__api_find_device(s, gpu, &idx);
    if (st == 400)
        return gw__api_error(sb, 400, "'%.96s' is not a GPU id", gpu);
    if (st == 404)
        return gw__api_error(sb, 404, "no GPU with index or UUID '%s'", gpu);
    char key[96];
    gw__history_key(&s->devices[idx], key, sizeof key);
    int64_t now = ctx && ctx->now_ns ? ctx->now_ns : gw__now_real_ns();
    int64_t from = since ? now - (int64_t)(since_s * 1e9) : INT64_MIN;
    gw__history_point *pts = NULL;
    size_t np = 0;
    gw_error err;
    int rc = gw__history_query(h, key, m, from, INT64_MAX, (int64_t)(step_s * 1e9), &pts, &np, &err);
    if (rc == GW_ENOENT)
        np = 0; /* not sampled yet: an empty series */
    else if (rc != GW_OK)
        return gw__api_error(sb, 500, "%s", err.message);
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "gpu");
    gw__json_u64(&j, idx);
    gw__json_kv_str(&j, "uuid", s->devices[idx].info.uuid);
    gw__json_kv_str(&j, "metric", gw_metric_name(m));
    gw__json_kv_str(&j, "unit", gw__history_unit(m));
    gw__json_key(&j, "step_seconds");
    gw__json_double(&j, step_s);
    gw__json_key(&j, "points");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < np; i++) {
        gw__json_array_begin(&j);
        gw__json_double(&j, pts[i].t);
        if (pts[i].valid)
            gw__json_double(&j, pts[i].v);
        else
            gw__json_null(&j);
        gw__json_array_end(&j);
    }
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    finish(sb);
    free(pts);
    return 200;
}

void gw__api_event_json(gw_json *j, const gw__event *e)
{
    gw__json_object_begin(j);
    gw__json_key(j, "seq");
    gw__json_u64(j, e->seq);
    gw__json_kv_timestamp(j, "time", e->time_ns);
    gw__json_kv_str(j, "type", gw__event_type_name(e->type));
    gw__json_kv_str(j, "severity", gw__event_severity_name(e->severity));
    gw__json_key(j, "gpu");
    if (e->gpu >= 0)
        gw__json_i64(j, e->gpu);
    else
        gw__json_null(j);
    gw__json_kv_str(j, "uuid", e->uuid);
    gw__json_key(j, "pid");
    if (e->pid)
        gw__json_u64(j, e->pid);
    else
        gw__json_null(j);
    gw__json_kv_double(j, "value", !isnan(e->value), e->value);
    gw__json_kv_str(j, "message", e->message);
    gw__json_object_end(j);
}

unsigned gw__api_events(gw_strbuf *sb, gw__events *ev, const char *after)
{
    uint64_t a = 0;
    if (after && !gw__parse_u64(after, &a))
        return gw__api_error(sb, 400, "parameter 'after' must be an event sequence number (got '%.32s')",
                             after);
    gw__event *buf = malloc(GW__EVENTS_RING * sizeof *buf);
    if (!buf)
        return gw__api_error(sb, 500, "out of memory");
    size_t n = gw__events_since(ev, a, buf, GW__EVENTS_RING);
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "last_seq");
    gw__json_u64(&j, n ? buf[n - 1].seq : gw__events_last_seq(ev));
    gw__json_key(&j, "counts");
    gw__json_object_begin(&j);
    for (int t = 0; t < GW__EV_COUNT; t++) {
        gw__json_key(&j, gw__event_type_name((gw__event_type)t));
        gw__json_u64(&j, gw__events_count(ev, (gw__event_type)t));
    }
    gw__json_object_end(&j);
    gw__json_key(&j, "events");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < n; i++)
        gw__api_event_json(&j, &buf[i]);
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    finish(sb);
    free(buf);
    return 200;
}
