/* prom_source.c — the cluster view from Prometheus; see prom_source.h.
 *
 * Owns: the PromQL of each query and the callbacks that turn the series
 * of their answers (prom_vector.h decodes them) into nodes.
 * Invariants: prom_source.h's. */
#include "fleet/prom_source.h"
#include "core/array.h"
#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum query_kind {
    Q_DOWN = 0, Q_BUILD, Q_INFO, Q_TOTAL, Q_FREE, Q_BLOCKED, Q_PENDING, Q_RAM_TOTAL,
    Q_RAM_AVAIL, Q_MODEL_SIZE, Q_MODEL_VRAM, Q_COUNT,
    Q_TEMPS = Q_COUNT /* the follow-up: temperatures of the nodes with a hot GPU */
} query_kind;

/* PromQL of each query; %s is the job selector ( job="gpuwatch" ). What
 * Prometheus spends on a query is mostly selecting series (about 4 us a
 * series on a busy 2-core machine) and encoding its answer, so a GPU-wide
 * vector is asked only for identity, total and free (used is total - free:
 * driver-reserved memory counts as used here; a join costs more than two
 * plain queries); the exceptions come from the sparse
 * series the daemon keeps for them: gpuwatch_gpu_placement_blocked (a GPU
 * not ok or too hot, with the reason) and
 * gpuwatch_gpu_placement_pending_bytes (a GPU with reservations not yet in
 * use). Nodes: the targets that answer (gpuwatch_build_info) and those
 * that do not (up == 0). The temperatures of a GPU blocked for its
 * temperature come from one follow-up query over those nodes only. */
static const char *const queries[Q_COUNT] = {
    [Q_DOWN] = "up{%s} == 0",
    [Q_BUILD] = "max by (instance,version) (gpuwatch_build_info{%s})",
    [Q_INFO] = "max by (instance,gpu,uuid,name,vendor) (gpuwatch_gpu_info{%s})",
    [Q_TOTAL] = "sum by (instance,gpu) (gpuwatch_gpu_memory_total_bytes{%s})",
    [Q_FREE] = "sum by (instance,gpu) (gpuwatch_gpu_memory_free_bytes{%s})",
    [Q_BLOCKED] = "gpuwatch_gpu_placement_blocked{%s}",
    [Q_PENDING] = "gpuwatch_gpu_placement_pending_bytes{%s}",
    [Q_RAM_TOTAL] = "max by (instance) (gpuwatch_host_memory_total_bytes{%s})",
    [Q_RAM_AVAIL] = "max by (instance) (gpuwatch_host_memory_available_bytes{%s})",
    [Q_MODEL_SIZE] = "max by (instance,kind,url,model) (gpuwatch_model_size_bytes{%s})",
    [Q_MODEL_VRAM] = "max by (instance,kind,url,model) (gpuwatch_model_vram_bytes{%s})",
};

/* ------------------------------------------------------------ building nodes */

typedef struct build {
    gw__cluster *c;
    query_kind q;
    size_t n_down;      /* nodes[0..n_down) came from Q_DOWN */
    bool oom;
} build;

/* One series' labels, as the callbacks pass them along. */
typedef struct series {
    const gw__prom_label *l;
    size_t n;
} series;

static const char *label(const series *s, const char *name)
{
    return gw__prom_label_get(s->l, s->n, name);
}

/* The label's value into dst ("" when absent). */
static void label_copy(const series *s, const char *name, char *dst, size_t cap)
{
    const char *v = label(s, name);
    gw__strlcpy(dst, v ? v : "", cap);
}

static int by_url(const void *a, const void *b)
{
    return strcmp(((const gw__node *)a)->url, ((const gw__node *)b)->url);
}

/* The node of labels' instance (c->nodes is sorted by it). */
static gw__node *find_node(build *b, const series *labels)
{
    const char *inst = label(labels, "instance");
    if (!inst)
        return NULL;
    size_t lo = 0, hi = b->c->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        gw__node *n = &b->c->nodes[mid];
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

/* The GPU of labels' "gpu" on n, created when new (ok unless the state
 * query names it); NULL for a bad or too large number. */
static gw__node_gpu *find_gpu(build *b, gw__node *n, const series *labels)
{
    const char *g = label(labels, "gpu");
    uint64_t idx;
    if (!g || !gw__parse_u64(g, &idx) || idx >= GW__PROM_MAX_GPUS)
        return NULL;
    while (n->n_gpus <= idx) {
        gw__node_gpu fresh;
        memset(&fresh, 0, sizeof fresh);
        fresh.dev.index = (uint32_t)n->n_gpus;
        fresh.dev.state = GW_DEVICE_OK; /* Q_STATE names the others */
        if (gw__node_add_gpu(n, &fresh)) {
            b->oom = true;
            return NULL;
        }
    }
    return &n->gpus[idx];
}

static bool is_byte_count(double v) { return v >= 0 && v < 1.8e19; }

/* The model of labels on n (matched by server url and name), created. */
static gw__node_model *find_model(build *b, gw__node *n, const series *labels)
{
    char name[128], url[300], kind[16];
    label_copy(labels, "model", name, sizeof name);
    label_copy(labels, "url", url, sizeof url);
    label_copy(labels, "kind", kind, sizeof kind);
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

static void on_gpu_series(build *b, gw__node_gpu *g, const series *labels, double v)
{
    switch (b->q) {
    case Q_INFO: {
        label_copy(labels, "uuid", g->dev.uuid, sizeof g->dev.uuid);
        label_copy(labels, "name", g->dev.name, sizeof g->dev.name);
        char vendor[16];
        label_copy(labels, "vendor", vendor, sizeof vendor);
        if (!gw__vendor_parse(vendor, &g->dev.vendor))
            g->dev.vendor = GW_VENDOR_UNKNOWN;
        break;
    }
    case Q_TOTAL:
        if (is_byte_count(v))
            g->dev.total = (uint64_t)v;
        break;
    case Q_FREE:
        g->dev.has_free = is_byte_count(v);
        g->dev.free = g->dev.has_free ? (uint64_t)v : 0;
        break;
    case Q_BLOCKED: {
        char why[16];
        label_copy(labels, "reason", why, sizeof why);
        if (strcmp(why, "temperature") == 0) {
            /* excluded by the engine's rule until the follow-up says the
             * figures: at its limit */
            g->dev.has_temp = g->dev.has_temp_limit = true;
            g->dev.temp_mc = g->dev.temp_limit_mc = 0;
        } else if (!gw__device_state_parse(why, &g->dev.state) || g->dev.state == GW_DEVICE_OK) {
            g->dev.state = GW_DEVICE_ERROR; /* blocked for a reason we do not know */
        }
        break;
    }
    case Q_TEMPS: {
        char name[64];
        label_copy(labels, "__name__", name, sizeof name);
        bool limit = strstr(name, "slowdown") != NULL;
        if (fabs(v) < 1e6) {
            *(limit ? &g->dev.has_temp_limit : &g->dev.has_temp) = true;
            *(limit ? &g->dev.temp_limit_mc : &g->dev.temp_mc) = (int32_t)lround(v * 1000);
        }
        break;
    }
    case Q_PENDING:
        g->dev.pending = is_byte_count(v) ? (uint64_t)v : 0;
        break;
    default:
        break;
    }
}

static void on_series(void *ctx, const gw__prom_label *l, size_t n_labels, double v)
{
    build *b = ctx;
    const series s = {l, n_labels}, *labels = &s;
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

/* Q_DOWN (v 0) and Q_BUILD: one node per instance (a new list); a target
 * both down and with series left is down. */
static void on_node(void *ctx, const gw__prom_label *l, size_t n_labels, double v)
{
    build *b = ctx;
    const series s = {l, n_labels}, *labels = &s;
    const char *inst = label(labels, "instance");
    gw__cluster *c = b->c;
    if (!inst || !*inst || b->oom)
        return;
    bool up = b->q == Q_BUILD;
    (void)v;
    gw__node *n;
    for (size_t i = 0; up && i < b->n_down; i++)
        if (strcmp(c->nodes[i].url, inst) == 0)
            return; /* down: its last series are stale */
    if (GW__ARRAY_RESERVE(c->nodes, c->nodes_cap, c->n_nodes + 1, GW__ARRAY_UNBOUNDED)) {
        b->oom = true;
        return;
    }
    n = &c->nodes[c->n_nodes++];
    memset(n, 0, sizeof *n);
    n->kind = GW__NODE_PROMETHEUS;
    gw__strlcpy(n->url, inst, sizeof n->url);
    gw__strlcpy(n->name, inst, sizeof n->name);
    char *colon = strrchr(n->name, ':');
    if (colon && !strchr(n->name, ']') && colon == strchr(n->name, ':'))
        *colon = '\0'; /* "host:port" -> "host" */
    n->up = up;
    n->fetched_ns = up ? c->taken_ns : 0;
    if (up)
        label_copy(labels, "version", n->version, sizeof n->version);
    else
        gw__strlcpy(n->error, "Prometheus could not scrape it (up == 0)", sizeof n->error);
}

/* Sets every node's status from its GPUs (the daemon's own verdict is not
 * among the series) and each GPU's used memory (total - free). */
static void finish_nodes(gw__cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        gw__node *n = &c->nodes[i];
        bool degraded = false;
        for (size_t g = 0; g < n->n_gpus; g++) {
            gw__node_gpu *gpu = &n->gpus[g];
            if (!gpu->dev.uuid[0])
                snprintf(gpu->dev.uuid, sizeof gpu->dev.uuid, "index:%zu", g);
            degraded |= gpu->dev.state != GW_DEVICE_OK;
            /* used: what is not free (driver-reserved memory included) */
            gpu->has_used = gpu->dev.total && gpu->dev.has_free && gpu->dev.free <= gpu->dev.total;
            gpu->used = gpu->has_used ? gpu->dev.total - gpu->dev.free : 0;
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

/* Query q of the poll failed (why): the poll's error, every node down. */
static int fail(gw__cluster *c, gw_error *err, int rc, const char *q, const char *why)
{
    gw__error_set(err, rc, "Prometheus %s: query %s: %s", c->prometheus, q, why);
    gw__strlcpy(c->error, err->message, sizeof c->error);
    for (size_t i = 0; i < c->n_nodes; i++) {
        c->nodes[i].up = false;
        gw__strlcpy(c->nodes[i].error, err->message, sizeof c->nodes[i].error);
    }
    return rc;
}

/* Whether query q's transfer brought a 200 answer; else fail() with why. */
static int answered(gw__cluster *c, const gw__fetch *f, const char *q, gw_error *err)
{
    if (f->rc != GW_OK)
        return fail(c, err, f->rc, q, f->error);
    if (f->status != 200) {
        char why[32];
        snprintf(why, sizeof why, "HTTP %ld", f->status);
        return fail(c, err, GW_EIO, q, why);
    }
    return GW_OK;
}

/* Decodes f's answer to q with fn into b; fail() naming what is wrong. */
static int decode(gw__cluster *c, const gw__fetch *f, const char *q, gw__prom_series_fn fn,
                  build *b, gw_error *err)
{
    gw_error perr;
    gw_error_clear(&perr);
    int rc = gw__prom_vector_parse(f->body.data, f->body.len, fn, b, &perr);
    if (rc == GW_OK && b->oom)
        rc = gw__error_set(&perr, GW_ENOMEM, "out of memory");
    return rc == GW_OK ? GW_OK : fail(c, err, rc, q, perr.message);
}

static void drop_nodes_from(gw__cluster *c, size_t keep)
{
    for (size_t i = keep; i < c->n_nodes; i++)
        gw__node_clear(&c->nodes[i]);
    if (c->n_nodes > keep)
        c->n_nodes = keep;
}

static int decode_all(gw__cluster *c, gw__fetch *f, char promql[][400], gw_error *err)
{
    for (int q = 0; q < Q_COUNT; q++)
        if (answered(c, &f[q], promql[q], err) != GW_OK)
            return err->code;
    for (size_t i = 0; i < c->n_nodes; i++)
        gw__node_clear(&c->nodes[i]);
    c->n_nodes = 0;
    build b = {.c = c, .q = Q_DOWN};
    if (decode(c, &f[Q_DOWN], promql[Q_DOWN], on_node, &b, err) != GW_OK) {
        drop_nodes_from(c, 0); /* prom_source.h invariant 3 */
        return err->code;
    }
    b.n_down = c->n_nodes;
    b.q = Q_BUILD;
    if (decode(c, &f[Q_BUILD], promql[Q_BUILD], on_node, &b, err) != GW_OK) {
        drop_nodes_from(c, b.n_down);
        return err->code;
    }
    qsort(c->nodes, c->n_nodes, sizeof *c->nodes, by_url); /* invariant 2; find_node relies on it */
    for (int q = Q_INFO; q < Q_COUNT; q++) {
        b.q = (query_kind)q;
        if (decode(c, &f[q], promql[q], on_series, &b, err) != GW_OK)
            return err->code;
    }
    finish_nodes(c);
    return GW_OK;
}

/* Appends inst as a regular expression matching it literally, inside a
 * PromQL double-quoted string (so a regex escape is written "\\\\."). */
static void regex_literal(gw_strbuf *sb, const char *inst)
{
    for (const char *p = inst; *p; p++) {
        if (strchr(".+*?()[]{}|^$\\", *p))
            gw__strbuf_puts(sb, "\\\\");
        if (*p == '"')
            gw__strbuf_putc(sb, '\\');
        gw__strbuf_putc(sb, *p);
    }
}

/* The temperatures of the nodes that have a GPU blocked for its
 * temperature (Q_BLOCKED left it at "0 C, limit 0 C"): one query over those
 * nodes only; none (and no query) when no GPU is too hot. */
static int temperatures_of_hot_nodes(gw__cluster *c, const gw__curl_lib *lib,
                                     const gw__fetch_opts *o, const char *selector, gw_error *err)
{
    gw_strbuf re;
    gw__strbuf_init(&re, 4096);
    for (size_t i = 0; i < c->n_nodes; i++)
        for (size_t g = 0; g < c->nodes[i].n_gpus; g++) {
            const gw_place_device *d = &c->nodes[i].gpus[g].dev;
            if (d->has_temp_limit && d->temp_limit_mc == 0 && d->has_temp && d->temp_mc == 0) {
                if (re.len)
                    gw__strbuf_putc(&re, '|');
                regex_literal(&re, c->nodes[i].url);
                break;
            }
        }
    if (re.len == 0) {
        gw__strbuf_release(&re);
        return GW_OK;
    }
    static const char names[] =
        "__name__=~\"gpuwatch_gpu_temperature_celsius|gpuwatch_gpu_slowdown_temperature_celsius\"";
    char promql[5000];
    snprintf(promql, sizeof promql, "{%s,%s,%s%s%s}", names, selector,
             re.failed ? "" : "instance=~\"", re.failed ? "" : re.data, re.failed ? "" : "\"");
    gw__strbuf_release(&re); /* over 4 KiB of node names: all of them */
    gw__fetch f;
    memset(&f, 0, sizeof f);
    snprintf(f.url, sizeof f.url, "%s/api/v1/query?query=", c->prometheus);
    size_t base = strlen(f.url);
    url_encode(f.url, sizeof f.url, promql);
    if (strlen(f.url) + 8 >= sizeof f.url) { /* a long node list: every node's */
        snprintf(promql, sizeof promql, "{%s,%s}", names, selector);
        f.url[base] = '\0';
        url_encode(f.url, sizeof f.url, promql);
    }
    int rc = gw__fetch_run(lib, &f, 1, o, err);
    build b = {.c = c, .q = Q_TEMPS};
    if (rc == GW_OK)
        rc = answered(c, &f, promql, err);
    if (rc == GW_OK)
        rc = decode(c, &f, promql, on_series, &b, err);
    gw__fetch_release(&f);
    return rc;
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
        snprintf(promql[q], sizeof promql[q], queries[q], selector, selector);
        snprintf(f[q].url, sizeof f[q].url, "%s/api/v1/query?query=", c->prometheus);
        url_encode(f[q].url, sizeof f[q].url, promql[q]);
    }
    gw__fetch_opts o = {.timeout_ms = cfg->timeout_ms, .ca_file = cfg->ca_file,
                        .max_body = 256u << 20};
    int rc = gw__fetch_run(lib, f, Q_COUNT, &o, err);
    c->source_seconds = 0;
    for (int q = 0; q < Q_COUNT; q++)
        if ((double)f[q].elapsed_ns / 1e9 > c->source_seconds)
            c->source_seconds = (double)f[q].elapsed_ns / 1e9;
    if (rc == GW_OK)
        rc = decode_all(c, f, promql, err);
    else
        gw__strlcpy(c->error, err->message, sizeof c->error);
    for (int q = 0; q < Q_COUNT; q++)
        gw__fetch_release(&f[q]);
    if (rc == GW_OK)
        rc = temperatures_of_hot_nodes(c, lib, &o, selector, err);
    return rc;
}
