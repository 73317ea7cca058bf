/* cluster.c — see cluster.h. Direct polling here; Prometheus in
 * prom_source.c; placement across nodes in cluster_place.c. */
#include "fleet/cluster.h"
#include "core/array.h"
#include "core/util.h"
#include "fleet/prom_source.h"

#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The host of a checked URL into buf (without brackets). */
static void url_host(const char *url, char *buf, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t len;
    if (*p == '[') {
        p++;
        len = strcspn(p, "]");
    } else {
        len = strcspn(p, ":/");
    }
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
}

/* Checks one URL of length len at u. */
static int check_url(const char *u, size_t len, const char *what, gw_error *err)
{
    char url[300];
    if (len == 0 || len >= sizeof url)
        return gw__error_set(err, GW_EINVAL, "%s: '%.*s' is %s", what, (int)(len > 80 ? 80 : len),
                             u, len ? "too long" : "an empty URL");
    memcpy(url, u, len);
    url[len] = '\0';
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strncmp(p, "https://", 8) == 0)
        p += 8;
    else
        return gw__error_set(err, GW_EINVAL, "%s: '%s' is not an http:// or https:// URL", what,
                             url);
    const char *host = p;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close == p + 1)
            return gw__error_set(err, GW_EINVAL, "%s: '%s' has a bad [IPv6] host", what, url);
        p = close + 1;
    } else {
        while (*p && (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
            p++;
        if (p == host)
            return gw__error_set(err, GW_EINVAL, "%s: '%s' has no host", what, url);
    }
    if (*p == ':') {
        const char *digits = ++p;
        unsigned long port = 0;
        while (isdigit((unsigned char)*p) && port <= 65535)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == digits || port == 0 || port > 65535)
            return gw__error_set(err, GW_EINVAL, "%s: '%s' has a bad port (1..65535)", what, url);
    }
    if (*p == '/' && p[1] == '\0')
        p++;
    if (*p)
        return gw__error_set(err, GW_EINVAL,
                             "%s: '%s': only scheme://host[:port] is accepted (found '%s')", what,
                             url, p);
    return GW_OK;
}

int gw__cluster_check_urls(const char *list, const char *what, gw_error *err)
{
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        int rc = check_url(p, len, what, err);
        if (rc)
            return rc;
        p += len;
        if (*p == ',')
            p++;
    }
    return GW_OK;
}

void gw__cluster_release(gw__cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        gw__node_clear(&c->nodes[i]);
    free(c->nodes);
    memset(c, 0, sizeof *c);
}

static int add_nodes(gw__cluster *c, const char *list, gw__node_kind kind, const char *token)
{
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (GW__ARRAY_RESERVE(c->nodes, c->nodes_cap, c->n_nodes + 1, GW__ARRAY_UNBOUNDED))
            return GW_ENOMEM;
        gw__node *n = &c->nodes[c->n_nodes++];
        memset(n, 0, sizeof *n);
        n->kind = kind;
        memcpy(n->url, p, len);
        n->url[len] = '\0';
        if (len && n->url[len - 1] == '/')
            n->url[len - 1] = '\0';
        if (kind == GW__NODE_GPUWATCH && token)
            gw__strlcpy(n->token, token, sizeof n->token);
        url_host(n->url, n->name, sizeof n->name);
        gw__strlcpy(n->error, "not polled yet", sizeof n->error);
        p += len;
        if (*p == ',')
            p++;
    }
    return GW_OK;
}

int gw__cluster_init(gw__cluster *c, const gw__cluster_config *cfg, gw_error *err)
{
    gw__cluster_release(c);
    if (cfg->prometheus && *cfg->prometheus) {
        int rc = gw__cluster_check_urls(cfg->prometheus, "--prometheus", err);
        if (rc)
            return rc;
        c->from_prometheus = true;
        gw__strlcpy(c->prometheus, cfg->prometheus, sizeof c->prometheus);
        return GW_OK;
    }
    int rc = gw__cluster_check_urls(cfg->peers, "peers", err);
    if (!rc)
        rc = gw__cluster_check_urls(cfg->ollama_nodes, "Ollama nodes", err);
    if (rc)
        return rc;
    if (add_nodes(c, cfg->peers, GW__NODE_GPUWATCH, cfg->token) ||
        add_nodes(c, cfg->ollama_nodes, GW__NODE_OLLAMA, NULL)) {
        gw__cluster_release(c);
        return gw__error_set(err, GW_ENOMEM, "cluster: out of memory");
    }
    if (c->n_nodes == 0)
        return gw__error_set(err, GW_EINVAL,
                             "no peers: name gpuwatch daemons (peers), Ollama servers (Ollama "
                             "nodes) or a Prometheus server");
    return GW_OK;
}

/* ------------------------------------------------------------ direct polling */

/* The outcome of one transfer as a node error; true when it answered 200. */
static bool answered(const gw__fetch *f, const char *path, gw__node *n)
{
    if (f->rc != GW_OK) {
        gw__strlcpy(n->error, f->error, sizeof n->error);
        return false;
    }
    if (f->status != 200) {
        snprintf(n->error, sizeof n->error, "GET %s answered HTTP %ld%s", path, f->status,
                 f->status == 401 || f->status == 403 ? " (the token was refused)" : "");
        return false;
    }
    return true;
}

/* Decodes node n's transfers f[0..] (1 for gpuwatch, 2 for Ollama). */
static void conclude(gw__node *n, gw__fetch *f, int64_t taken_ns)
{
    gw_error err;
    gw_error_clear(&err);
    n->up = false;
    n->answer_seconds = (double)f[0].elapsed_ns / 1e9;
    if (n->kind == GW__NODE_GPUWATCH) {
        if (!answered(&f[0], "/health", n))
            return;
        if (gw__node_decode_health(n, f[0].body.data, f[0].body.len, &err) != GW_OK) {
            gw__strlcpy(n->error, err.message, sizeof n->error);
            return;
        }
    } else {
        if (f[1].elapsed_ns > f[0].elapsed_ns)
            n->answer_seconds = (double)f[1].elapsed_ns / 1e9;
        if (!answered(&f[1], "/api/ps", n))
            return;
        bool has_version = f[0].rc == GW_OK && f[0].status == 200;
        if (gw__node_decode_ollama(n, has_version ? f[0].body.data : NULL,
                                   has_version ? f[0].body.len : 0, f[1].body.data,
                                   f[1].body.len, &err) != GW_OK) {
            snprintf(n->error, sizeof n->error, "/api/ps: %.200s", err.message);
            return;
        }
    }
    n->up = true;
    n->error[0] = '\0';
    n->fetched_ns = taken_ns;
}

/* --probe: every bare Ollama node that is up with no model loaded. */
static void probe_idle(gw__cluster *c, int timeout_ms)
{
    gw__model_server *v = calloc(c->n_nodes ? c->n_nodes : 1, sizeof *v);
    size_t *of = calloc(c->n_nodes ? c->n_nodes : 1, sizeof *of);
    size_t nv = 0;
    for (size_t i = 0; v && of && i < c->n_nodes; i++) {
        gw__node *n = &c->nodes[i];
        if (n->kind != GW__NODE_OLLAMA || !n->up || n->n_models || strncmp(n->url, "http://", 7))
            continue;
        v[nv].kind = GW__SERVER_OLLAMA;
        v[nv].up = true;
        gw__strlcpy(v[nv].url, n->url, sizeof v[nv].url);
        of[nv++] = i;
    }
    if (nv)
        gw__model_servers_probe(v, nv, timeout_ms);
    for (size_t k = 0; k < nv; k++) {
        gw__node *n = &c->nodes[of[k]];
        n->probed = v[k].probed;
        gw__strlcpy(n->probe_model, v[k].probe_model, sizeof n->probe_model);
        gw__strlcpy(n->probe_result, v[k].probe_result, sizeof n->probe_result);
        gw__strlcpy(n->probe_error, v[k].probe_error, sizeof n->probe_error);
        n->probe_seconds = v[k].probe_seconds;
        gw__model_server_release(&v[k]);
    }
    free(v);
    free(of);
}

/* A direct poll in flight: which transfers are whose, and what is left. */
typedef struct direct_poll {
    gw__cluster *c;
    gw__fetch *f;
    size_t *first;      /* node i's first transfer */
    size_t *node_of;    /* transfer k's node */
    unsigned char *left; /* node i's transfers still running */
} direct_poll;

static size_t n_transfers(const gw__node *n) { return n->kind == GW__NODE_OLLAMA ? 2 : 1; }

/* fetch.h on_done: a node is decoded as soon as its last transfer ends,
 * while the others still run (the poll ends right after the last one). */
static void transfer_done(void *ctx, size_t k)
{
    direct_poll *d = ctx;
    size_t i = d->node_of[k];
    if (d->left[i] && --d->left[i] == 0)
        conclude(&d->c->nodes[i], &d->f[d->first[i]], d->c->taken_ns);
}

static int poll_direct(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                       int64_t start_ns, gw_error *err)
{
    size_t n_fetch = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        n_fetch += n_transfers(&c->nodes[i]);
    direct_poll d = {.c = c};
    d.f = calloc(n_fetch ? n_fetch : 1, sizeof *d.f);
    d.first = calloc(c->n_nodes ? c->n_nodes : 1, sizeof *d.first);
    d.node_of = calloc(n_fetch ? n_fetch : 1, sizeof *d.node_of);
    d.left = calloc(c->n_nodes ? c->n_nodes : 1, 1);
    int rc = d.f && d.first && d.node_of && d.left
                 ? GW_OK
                 : gw__error_set(err, GW_ENOMEM, "cluster: out of memory");
    for (size_t i = 0, k = 0; rc == GW_OK && i < c->n_nodes; i++) {
        const gw__node *n = &c->nodes[i];
        d.first[i] = k;
        d.left[i] = (unsigned char)n_transfers(n);
        if (n->kind == GW__NODE_OLLAMA) {
            snprintf(d.f[k].url, sizeof d.f->url, "%s/api/version", n->url);
            d.node_of[k++] = i;
            snprintf(d.f[k].url, sizeof d.f->url, "%s/api/ps", n->url);
            d.node_of[k++] = i;
        } else {
            d.f[k].token = n->token;
            snprintf(d.f[k].url, sizeof d.f->url, "%s/health", n->url);
            d.node_of[k++] = i;
        }
    }
    gw__fetch_opts o = {.timeout_ms = cfg->timeout_ms, .straggler_cut = cfg->straggler_cut,
                        .ca_file = cfg->ca_file, .max_body = 8u << 20, .start_ns = start_ns,
                        .on_done = transfer_done, .ctx = &d};
    if (rc == GW_OK)
        rc = gw__fetch_run(lib, d.f, n_fetch, &o, err);
    for (size_t i = 0; d.left && d.first && i < c->n_nodes; i++)
        if (d.left[i]) /* curl itself failed: every transfer says why */
            conclude(&c->nodes[i], &d.f[d.first[i]], c->taken_ns);
    for (size_t k = 0; d.f && k < n_fetch; k++)
        gw__fetch_release(&d.f[k]);
    free(d.f);
    free(d.first);
    free(d.node_of);
    free(d.left);
    if (rc == GW_OK && cfg->probe)
        probe_idle(c, cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000);
    return rc;
}

int gw__cluster_poll(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                     gw_error *err)
{
    int64_t t0 = gw__now_mono_ns();
    c->taken_ns = gw__now_real_ns();
    int rc = c->from_prometheus ? gw__prom_source_poll(c, lib, cfg, err)
                                : poll_direct(c, lib, cfg, t0, err);
    c->poll_seconds = (double)(gw__now_mono_ns() - t0) / 1e9;
    for (size_t i = 0; i < c->n_nodes; i++)
        assert(gw__node_check(&c->nodes[i]));
    return rc;
}

bool gw__cluster_needs_curl(const gw__cluster *c)
{
    if (c->from_prometheus)
        return gw__fetch_needs_curl(c->prometheus);
    for (size_t i = 0; i < c->n_nodes; i++)
        if (gw__fetch_needs_curl(c->nodes[i].url))
            return true;
    return false;
}

void gw__cluster_totals_of(const gw__cluster *c, gw__cluster_totals *t)
{
    memset(t, 0, sizeof *t);
    t->nodes = c->n_nodes;
    for (size_t i = 0; i < c->n_nodes; i++) {
        const gw__node *n = &c->nodes[i];
        if (!n->up) {
            t->nodes_down++;
            continue;
        }
        t->nodes_up++;
        t->models += n->n_models;
        if (n->kind != GW__NODE_OLLAMA && n->n_gpus == 0)
            t->cpu_only_nodes++;
        if (n->has_ram) {
            t->ram_total += n->ram_total;
            t->ram_available += n->ram_available;
        }
        for (size_t g = 0; g < n->n_gpus; g++) {
            const gw__node_gpu *gpu = &n->gpus[g];
            t->gpus++;
            if (gpu->dev.state == GW_DEVICE_LOST)
                continue; /* its memory is no one's (as /gpu/metrics' aggregates) */
            t->vram_total += gpu->dev.total;
            if (gpu->dev.has_free)
                t->vram_free += gpu->dev.free;
            if (gpu->has_used)
                t->vram_used += gpu->used;
        }
    }
}
