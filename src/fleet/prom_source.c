/* prom_source.c — see prom_source.h. */
#include "fleet/prom_source.h"
#include "core/array.h"
#include "core/util.h"
#include "render/json_read.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum query_kind {
    Q_UP = 0, Q_INFO, Q_TOTAL, Q_USED, Q_FREE, Q_STATE, Q_UTIL, Q_TEMP, Q_SLOWDOWN, Q_PENDING,
    Q_RAM_TOTAL, Q_RAM_AVAIL, Q_MODEL_SIZE, Q_MODEL_VRAM, Q_BUILD, Q_COUNT
} query_kind;

/* PromQL of each query; %s is the job selector ( job="gpuwatch" ). The
 * aggregations keep only the labels used, which keeps the answers small. */
static const char *const queries[Q_COUNT] = {
    [Q_UP] = "up{%s}",
    [Q_INFO] = "max by (instance,gpu,uuid,name,vendor) (gpuwatch_gpu_info{%s})",
    [Q_TOTAL] = "max by (instance,gpu) (gpuwatch_gpu_memory_total_bytes{%s})",
    [Q_USED] = "max by (instance,gpu) (gpuwatch_gpu_memory_used_bytes{%s})",
    [Q_FREE] = "max by (instance,gpu) (gpuwatch_gpu_memory_free_bytes{%s})",
    [Q_STATE] = "max by (instance,gpu,state) (gpuwatch_gpu_state{%s}) == 1",
    [Q_UTIL] = "max by (instance,gpu) (gpuwatch_gpu_utilization_ratio{%s})",
    [Q_TEMP] = "max by (instance,gpu) (gpuwatch_gpu_temperature_celsius{%s})",
    [Q_SLOWDOWN] = "max by (instance,gpu) (gpuwatch_gpu_slowdown_temperature_celsius{%s})",
    [Q_PENDING] = "max by (instance,gpu) (gpuwatch_gpu_placement_pending_bytes{%s})",
    [Q_RAM_TOTAL] = "max by (instance) (gpuwatch_host_memory_total_bytes{%s})",
    [Q_RAM_AVAIL] = "max by (instance) (gpuwatch_host_memory_available_bytes{%s})",
    [Q_MODEL_SIZE] = "max by (instance,kind,url,model) (gpuwatch_model_size_bytes{%s})",
    [Q_MODEL_VRAM] = "max by (instance,kind,url,model) (gpuwatch_model_vram_bytes{%s})",
    [Q_BUILD] = "max by (instance,version) (gpuwatch_build_info{%s})",
};

int gw__prom_vector_parse(const char *body, size_t len, gw__prom_series_fn fn, void *ctx,
                          gw_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    if (!doc)
        return gw__error_set(err, GW_EPARSE, "not JSON: %s (at byte %d)", je.text, je.position);
    int rc = GW_OK;
    char status[16], type[16];
    gw__jr_str(doc, "status", status, sizeof status);
    json_t *data = json_object_get(doc, "data");
    gw__jr_str(data, "resultType", type, sizeof type);
    json_t *result = json_object_get(data, "result");
    if (strcmp(status, "success") != 0) {
        char why[200];
        gw__jr_str(doc, "error", why, sizeof why);
        rc = gw__error_set(err, GW_EPARSE, "status is not success%s%s", why[0] ? ": " : "", why);
    } else if (strcmp(type, "vector") != 0 || !json_is_array(result)) {
        rc = gw__error_set(err, GW_EPARSE, "the answer is not an instant vector");
    } else {
        size_t i;
        json_t *s;
        json_array_foreach(result, i, s) {
            json_t *labels = json_object_get(s, "metric");
            json_t *value = json_object_get(s, "value");
            json_t *v = json_array_get(value, 1);
            if (!json_is_object(labels) || json_array_size(value) != 2 || !json_is_string(v))
                continue;
            char *end;
            double x = strtod(json_string_value(v), &end);
            if (*end || end == json_string_value(v) || !isfinite(x))
                continue;
            fn(ctx, labels, x);
        }
    }
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------ building nodes */

typedef struct build {
    gw__cluster *c;
    query_kind q;
    size_t *order;      /* node positions sorted by url (instance) */
    size_t n_order;
    bool oom;
} build;

static int by_url(const void *a, const void *b, void *ctx)
{
    const gw__node *nodes = ctx;
    return strcmp(nodes[*(const size_t *)a].url, nodes[*(const size_t *)b].url);
}

static gw__node *find_node(build *b, const json_t *labels)
{
    const char *inst = json_string_value(json_object_get(labels, "instance"));
    if (!inst)
        return NULL;
    size_t lo = 0, hi = b->n_order;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        gw__node *n = &b->c->nodes[b->order[mid]];
        int cmp = strcmp(inst, n->url);
        if (cmp == 0)
            return n;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* The GPU of labels' "gpu" on n, created (state unknown until gpuwatch_gpu_state
 * says) when new; NULL for a bad or too large number. */
static gw__node_gpu *find_gpu(build *b, gw__node *n, const json_t *labels)
{
    const char *g = json_string_value(json_object_get(labels, "gpu"));
    uint64_t idx;
    if (!g || !gw__parse_u64(g, &idx) || idx >= GW__PROM_MAX_GPUS)
        return NULL;
    while (n->n_gpus <= idx) {
        gw__node_gpu fresh;
        memset(&fresh, 0, sizeof fresh);
        fresh.dev.index = (uint32_t)n->n_gpus;
        fresh.dev.state = GW_DEVICE_ERROR;
        if (gw__node_add_gpu(n, &fresh)) {
            b->oom = true;
            return NULL;
        }
    }
    return &n->gpus[idx];
}

static bool is_byte_count(double v) { return v >= 0 && v < 1.8e19; }

/* The model of labels on n (matched by server url and name), created. */
static gw__node_model *find_model(build *b, gw__node *n, const json_t *labels)
{
    char name[128], url[300], kind[16];
    gw__jr_str(labels, "model", name, sizeof name);
    gw__jr_str(labels, "url", url, sizeof url);
    gw__jr_str(labels, "kind", kind, sizeof kind);
    if (!name[0])
        return NULL;
    for (size_t i = 0; i < n->n_models; i++)
        if (strcmp(n->models[i].m.name, name) == 0 && strcmp(n->models[i].server, url) == 0)
            return &n->models[i];
    gw__node_model m;
    memset(&m, 0, sizeof m);
    gw__strlcpy(m.m.name, name, sizeof m.m.name);
    gw__strlcpy(m.server, url, sizeof m.server);
    m.kind = strcmp(kind, "llama.cpp") == 0 ? GW__SERVER_LLAMACPP : GW__SERVER_OLLAMA;
    if (gw__node_add_model(n, &m)) {
        b->oom = true;
        return NULL;
    }
    return &n->models[n->n_models - 1];
}

static void on_gpu_series(build *b, gw__node_gpu *g, const json_t *labels, double v)
{
    switch (b->q) {
    case Q_INFO:
        gw__jr_str(labels, "uuid", g->dev.uuid, sizeof g->dev.uuid);
        gw__jr_str(labels, "name", g->dev.name, sizeof g->dev.name);
        char vendor[16];
        gw__jr_str(labels, "vendor", vendor, sizeof vendor);
        if (!gw__vendor_parse(vendor, &g->dev.vendor))
            g->dev.vendor = GW_VENDOR_UNKNOWN;
        break;
    case Q_TOTAL:
        if (is_byte_count(v))
            g->dev.total = (uint64_t)v;
        break;
    case Q_USED:
        g->has_used = is_byte_count(v);
        g->used = g->has_used ? (uint64_t)v : 0;
        break;
    case Q_FREE:
        g->dev.has_free = is_byte_count(v);
        g->dev.free = g->dev.has_free ? (uint64_t)v : 0;
        break;
    case Q_STATE: {
        char state[16];
        gw__jr_str(labels, "state", state, sizeof state);
        if (!gw__device_state_parse(state, &g->dev.state))
            g->dev.state = GW_DEVICE_ERROR;
        break;
    }
    case Q_UTIL:
        g->has_util = v >= 0 && v <= 10;
        g->util_percent = g->has_util ? v * 100 : 0;
        break;
    case Q_TEMP:
        g->dev.has_temp = fabs(v) < 1e6;
        g->dev.temp_mc = g->dev.has_temp ? (int32_t)lround(v * 1000) : 0;
        break;
    case Q_SLOWDOWN:
        g->dev.has_temp_limit = fabs(v) < 1e6;
        g->dev.temp_limit_mc = g->dev.has_temp_limit ? (int32_t)lround(v * 1000) : 0;
        break;
    case Q_PENDING:
        g->dev.pending = is_byte_count(v) ? (uint64_t)v : 0;
        break;
    default:
        break;
    }
}

static void on_series(void *ctx, const json_t *labels, double v)
{
    build *b = ctx;
    gw__node *n = find_node(b, labels);
    if (!n)
        return;
    switch (b->q) {
    case Q_RAM_TOTAL:
        n->ram_total = is_byte_count(v) ? (uint64_t)v : 0;
        n->has_ram = true;
        return;
    case Q_RAM_AVAIL:
        n->ram_available = is_byte_count(v) ? (uint64_t)v : 0;
        return;
    case Q_BUILD:
        gw__jr_str(labels, "version", n->version, sizeof n->version);
        return;
    case Q_MODEL_SIZE:
    case Q_MODEL_VRAM: {
        gw__node_model *m = find_model(b, n, labels);
        if (!m || !is_byte_count(v))
            return;
        if (b->q == Q_MODEL_SIZE) {
            m->m.has_size = true;
            m->m.size = (uint64_t)v;
        } else {
            m->m.has_vram = true;
            m->m.size_vram = (uint64_t)v;
        }
        return;
    }
    default: {
        gw__node_gpu *g = find_gpu(b, n, labels);
        if (g)
            on_gpu_series(b, g, labels, v);
    }
    }
}

/* `up`: one node per instance (a new list). */
static void on_up(void *ctx, const json_t *labels, double v)
{
    build *b = ctx;
    const char *inst = json_string_value(json_object_get(labels, "instance"));
    gw__cluster *c = b->c;
    if (!inst || !*inst || b->oom)
        return;
    if (GW__ARRAY_RESERVE(c->nodes, c->nodes_cap, c->n_nodes + 1, GW__ARRAY_UNBOUNDED)) {
        b->oom = true;
        return;
    }
    gw__node *n = &c->nodes[c->n_nodes++];
    memset(n, 0, sizeof *n);
    n->kind = GW__NODE_PROMETHEUS;
    gw__strlcpy(n->url, inst, sizeof n->url);
    gw__strlcpy(n->name, inst, sizeof n->name);
    char *colon = strrchr(n->name, ':');
    if (colon && !strchr(n->name, ']') && colon == strchr(n->name, ':'))
        *colon = '\0'; /* "host:port" -> "host" */
    n->up = v == 1;
    n->fetched_ns = n->up ? c->taken_ns : 0;
    if (!n->up)
        gw__strlcpy(n->error, "Prometheus could not scrape it (up == 0)", sizeof n->error);
}

/* Sets every node's status from its GPUs (the daemon's own verdict is not
 * among the series). */
static void finish_nodes(gw__cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        gw__node *n = &c->nodes[i];
        bool degraded = false;
        for (size_t g = 0; g < n->n_gpus; g++) {
            if (!n->gpus[g].dev.uuid[0])
                snprintf(n->gpus[g].dev.uuid, sizeof n->gpus[g].dev.uuid, "index:%zu", g);
            degraded |= n->gpus[g].dev.state != GW_DEVICE_OK;
        }
        if (n->up)
            gw__strlcpy(n->status, n->n_gpus == 0 ? "cpu-only" : degraded ? "degraded" : "ok",
                        sizeof n->status);
    }
}

/* Appends s percent-encoded (RFC 3986 unreserved kept). */
static void url_encode(char *dst, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(dst);
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            dst[n++] = (char)ch;
        } else {
            dst[n++] = '%';
            dst[n++] = hex[ch >> 4];
            dst[n++] = hex[ch & 15];
        }
    }
    dst[n] = '\0';
}

static int fail(gw__cluster *c, gw_error *err, int rc, const char *fmt, const char *q,
                const char *why)
{
    gw__error_set(err, rc, fmt, c->prometheus, q, why);
    gw__strlcpy(c->error, err->message, sizeof c->error);
    for (size_t i = 0; i < c->n_nodes; i++) {
        c->nodes[i].up = false;
        gw__strlcpy(c->nodes[i].error, err->message, sizeof c->nodes[i].error);
    }
    return rc;
}

static int decode_all(gw__cluster *c, gw__fetch *f, char promql[][400], gw_error *err)
{
    for (int q = 0; q < Q_COUNT; q++) {
        if (f[q].rc != GW_OK)
            return fail(c, err, f[q].rc, "Prometheus %s: query %s: %s", promql[q], f[q].error);
        if (f[q].status != 200) {
            char why[32];
            snprintf(why, sizeof why, "HTTP %ld", f[q].status);
            return fail(c, err, GW_EIO, "Prometheus %s: query %s: %s", promql[q], why);
        }
    }
    for (size_t i = 0; i < c->n_nodes; i++)
        gw__node_clear(&c->nodes[i]);
    c->n_nodes = 0;
    build b = {.c = c, .q = Q_UP};
    gw_error perr;
    gw_error_clear(&perr);
    int rc = gw__prom_vector_parse(f[Q_UP].body.data, f[Q_UP].body.len, on_up, &b, &perr);
    b.order = calloc(c->n_nodes ? c->n_nodes : 1, sizeof *b.order);
    if (rc == GW_OK && (b.oom || !b.order))
        rc = gw__error_set(&perr, GW_ENOMEM, "out of memory");
    for (size_t i = 0; rc == GW_OK && i < c->n_nodes; i++)
        b.order[b.n_order++] = i;
    if (rc == GW_OK)
        qsort_r(b.order, b.n_order, sizeof *b.order, by_url, c->nodes);
    for (int q = 1; rc == GW_OK && q < Q_COUNT; q++) {
        b.q = (query_kind)q;
        rc = gw__prom_vector_parse(f[q].body.data, f[q].body.len, on_series, &b, &perr);
        if (rc == GW_OK && b.oom)
            rc = gw__error_set(&perr, GW_ENOMEM, "out of memory");
        if (rc != GW_OK) {
            free(b.order);
            return fail(c, err, rc, "Prometheus %s: query %s: %s", promql[q], perr.message);
        }
    }
    free(b.order);
    if (rc != GW_OK)
        return fail(c, err, rc, "Prometheus %s: query %s: %s", promql[Q_UP], perr.message);
    finish_nodes(c);
    return GW_OK;
}

/* A job name safe inside a PromQL string literal. */
static bool job_ok(const char *job)
{
    if (!*job || strlen(job) > 120)
        return false;
    return strspn(job, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/") ==
           strlen(job);
}

int gw__prom_source_poll(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                         gw_error *err)
{
    const char *job = cfg->prometheus_job && *cfg->prometheus_job ? cfg->prometheus_job
                                                                   : "gpuwatch";
    c->error[0] = '\0';
    if (!job_ok(job))
        return gw__error_set(err, GW_EINVAL,
                             "Prometheus job '%s': use letters, digits and _-.:/ only", job);
    char selector[160];
    snprintf(selector, sizeof selector, "job=\"%s\"", job);
    gw__fetch f[Q_COUNT];
    char promql[Q_COUNT][400];
    memset(f, 0, sizeof f);
    for (int q = 0; q < Q_COUNT; q++) {
        snprintf(promql[q], sizeof promql[q], queries[q], selector);
        snprintf(f[q].url, sizeof f[q].url, "%s/api/v1/query?query=", c->prometheus);
        url_encode(f[q].url, sizeof f[q].url, promql[q]);
    }
    gw__fetch_opts o = {.timeout_ms = cfg->timeout_ms, .ca_file = cfg->ca_file,
                        .max_body = 256u << 20};
    int rc = gw__fetch_run(lib, f, Q_COUNT, &o, err);
    if (rc == GW_OK)
        rc = decode_all(c, f, promql, err);
    else
        gw__strlcpy(c->error, err->message, sizeof c->error);
    for (int q = 0; q < Q_COUNT; q++)
        gw__fetch_release(&f[q]);
    return rc;
}
