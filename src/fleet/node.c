/* node.c — see node.h. Decoding goes into a scratch node that replaces the
 * figures of the real one only when the whole body decoded (invariant 1). */
#include "fleet/node.h"
#include "core/array.h"
#include "core/util.h"
#include "render/json_read.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *gw__node_kind_name(gw__node_kind k)
{
    switch (k) {
    case GW__NODE_GPUWATCH: return "gpuwatch";
    case GW__NODE_OLLAMA: return "ollama";
    case GW__NODE_PROMETHEUS: return "prometheus";
    }
    return "unknown";
}

int gw__node_add_gpu(gw__node *n, const gw__node_gpu *g)
{
    if (GW__ARRAY_RESERVE(n->gpus, n->gpus_cap, n->n_gpus + 1, GW__ARRAY_UNBOUNDED))
        return GW_ENOMEM;
    n->gpus[n->n_gpus++] = *g;
    return GW_OK;
}

int gw__node_add_model(gw__node *n, const gw__node_model *m)
{
    if (GW__ARRAY_RESERVE(n->models, n->models_cap, n->n_models + 1, GW__ARRAY_UNBOUNDED))
        return GW_ENOMEM;
    n->models[n->n_models++] = *m;
    return GW_OK;
}

void gw__node_clear(gw__node *n)
{
    free(n->gpus);
    free(n->models);
    n->gpus = NULL;
    n->models = NULL;
    n->n_gpus = n->gpus_cap = n->n_models = n->models_cap = 0;
    n->has_ram = false;
}

bool gw__node_check(const gw__node *n)
{
    if ((n->n_gpus && !n->gpus) || n->n_gpus > n->gpus_cap)
        return false;
    if ((n->n_models && !n->models) || n->n_models > n->models_cap)
        return false;
    if (!n->up && !n->error[0])
        return false;
    return memchr(n->name, '\0', sizeof n->name) && memchr(n->url, '\0', sizeof n->url);
}

/* Moves scratch's figures into n (freeing n's old ones). */
static void adopt(gw__node *n, gw__node *scratch)
{
    gw__node_clear(n);
    n->gpus = scratch->gpus;
    n->n_gpus = scratch->n_gpus;
    n->gpus_cap = scratch->gpus_cap;
    n->models = scratch->models;
    n->n_models = scratch->n_models;
    n->models_cap = scratch->models_cap;
    n->has_ram = scratch->has_ram;
    n->ram_total = scratch->ram_total;
    n->ram_available = scratch->ram_available;
    memcpy(n->version, scratch->version, sizeof n->version);
    memcpy(n->status, scratch->status, sizeof n->status);
    if (scratch->name[0])
        memcpy(n->name, scratch->name, sizeof n->name);
}

/* One element of /health gpus[] (the device object of docs/report-json.md,
 * read by render/json_read's one reader) as the planner sees it. */
static void decode_gpu(const json_t *g, gw__node_gpu *o)
{
    gw_device d;
    if (!gw__device_read(g, &d, 0))
        d.state = GW_DEVICE_ERROR; /* a state we do not know: never planned on */
    memset(o, 0, sizeof *o);
    gw_place_device_of(&d, &o->dev);
    o->has_used = gw_sample_has(&d.sample, GW_METRIC_MEM_USED);
    o->used = o->has_used ? d.sample.mem_used : 0;
    o->has_util = gw_sample_has(&d.sample, GW_METRIC_UTIL_GPU);
    o->util_percent = o->has_util ? d.sample.util_gpu : 0;
}

/* placement.devices[] of /health: each device's reservations not yet
 * visible as used (pending_bytes), matched by uuid. */
static void decode_pending(const json_t *placement, gw__node *n)
{
    json_t *devs = json_object_get(placement, "devices");
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d) {
        char uuid[96];
        uint64_t pending;
        gw__jr_str(d, "uuid", uuid, sizeof uuid);
        if (!gw__jr_u64(d, "pending_bytes", &pending))
            continue;
        for (size_t k = 0; k < n->n_gpus; k++)
            if (strcmp(n->gpus[k].dev.uuid, uuid) == 0)
                n->gpus[k].dev.pending = pending;
    }
}

/* model_servers[] of /health (docs/report-json.md's shape). */
static int decode_model_servers(const json_t *servers, gw__node *n)
{
    size_t i, k;
    json_t *s, *m;
    json_array_foreach(servers, i, s) {
        gw__node_model nm;
        memset(&nm, 0, sizeof nm);
        gw__jr_str(s, "url", nm.server, sizeof nm.server);
        char kind[16];
        gw__jr_str(s, "kind", kind, sizeof kind);
        nm.kind = strcmp(kind, "llama.cpp") == 0 ? GW__SERVER_LLAMACPP : GW__SERVER_OLLAMA;
        json_array_foreach(json_object_get(s, "models"), k, m) {
            gw__loaded_model_read(m, &nm.m);
            if (!nm.m.name[0])
                continue;
            if (gw__node_add_model(n, &nm))
                return GW_ENOMEM;
        }
    }
    return GW_OK;
}

static int health_into(gw__node *t, const json_t *doc, gw_error *err)
{
    char service[32];
    gw__jr_str(doc, "service", service, sizeof service);
    if (strcmp(service, "gpuwatch") != 0)
        return gw__error_set(err, GW_EPARSE, "not a gpuwatch daemon (/health has no "
                                             "\"service\": \"gpuwatch\")");
    json_t *gpus = json_object_get(doc, "gpus");
    if (!json_is_array(gpus))
        return gw__error_set(err, GW_EPARSE, "/health has no \"gpus\" array");
    gw__jr_str(doc, "version", t->version, sizeof t->version);
    gw__jr_str(doc, "status", t->status, sizeof t->status);
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g) {
        if (!json_is_object(g))
            return gw__error_set(err, GW_EPARSE, "/health gpus[%zu] is not an object", i);
        gw__node_gpu ng;
        decode_gpu(g, &ng);
        if (gw__node_add_gpu(t, &ng))
            return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    decode_pending(json_object_get(doc, "placement"), t);
    json_t *host = json_object_get(doc, "host");
    gw__jr_str(host, "hostname", t->name, sizeof t->name);
    t->has_ram = gw__jr_u64(host, "memory_total_bytes", &t->ram_total) &&
                 gw__jr_u64(host, "memory_available_bytes", &t->ram_available);
    if (decode_model_servers(json_object_get(doc, "model_servers"), t))
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    return GW_OK;
}

static json_t *load(const char *body, size_t len, const char *what, gw_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        gw__error_set(err, GW_EPARSE, "%s is not JSON: %s (at byte %d)", what, je.text,
                      je.position);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        gw__error_set(err, GW_EPARSE, "%s is not a JSON object", what);
        return NULL;
    }
    return doc;
}

int gw__node_decode_health(gw__node *n, const char *body, size_t len, gw_error *err)
{
    json_t *doc = load(body, len, "/health", err);
    if (!doc)
        return GW_EPARSE;
    gw__node t;
    memset(&t, 0, sizeof t);
    int rc = health_into(&t, doc, err);
    json_decref(doc);
    if (rc != GW_OK) {
        gw__node_clear(&t);
        return rc;
    }
    adopt(n, &t);
    return GW_OK;
}

int gw__node_decode_ollama(gw__node *n, const char *version_body, size_t version_len,
                           const char *ps_body, size_t ps_len, gw_error *err)
{
    gw__model_server s;
    memset(&s, 0, sizeof s);
    int rc = gw__ollama_ps_parse(ps_body, ps_len, &s, err);
    if (rc != GW_OK)
        return rc;
    gw__node t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < s.n_models && rc == GW_OK; i++) {
        gw__node_model nm;
        memset(&nm, 0, sizeof nm);
        nm.m = s.models[i];
        nm.kind = GW__SERVER_OLLAMA;
        gw__strlcpy(nm.server, n->url, sizeof nm.server);
        rc = gw__node_add_model(&t, &nm);
    }
    gw__model_server_release(&s);
    if (rc != GW_OK) {
        gw__node_clear(&t);
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    json_t *v = version_body ? json_loadb(version_body, version_len, 0, NULL) : NULL;
    gw__jr_str(v, "version", t.version, sizeof t.version);
    json_decref(v);
    adopt(n, &t);
    return GW_OK;
}
