/* node.h — one node of the cluster view: a gpuwatch daemon (its /health),
 * a bare Ollama server (/api/version, /api/ps), or a daemon as a
 * Prometheus server scraped it.
 *
 * Owns: the node record (identity, reachability and the age of its last
 * good data, GPUs as the placement engine sees them, host RAM, the models
 * its model servers hold) and decoding a peer's answers into it.
 *
 * Invariants:
 *  1. Answers are untrusted: a body that is not the documented shape
 *     leaves the node's previous figures untouched and marks it down with
 *     the reason (GW_EPARSE); a missing member is unknown, never 0.
 *  2. gpus[].dev.pending holds the node's placement reservations not yet
 *     visible as used (its /health placement.devices[].pending_bytes), so
 *     planning on a node counts them exactly as the node itself does.
 *  3. up is true only when the latest fetch succeeded; fetched_ns is the
 *     realtime clock of the last good data (0: never), kept across failures.
 */
#ifndef GW_FLEET_NODE_H
#define GW_FLEET_NODE_H

#include "core/model.h"
#include "models/servers.h"
#include "place/plan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw__node_kind {
    GW__NODE_GPUWATCH = 0,   /* a gpuwatch daemon: GET /health */
    GW__NODE_OLLAMA,     /* a bare Ollama server: GET /api/version, /api/ps */
    GW__NODE_PROMETHEUS, /* a gpuwatch daemon as Prometheus scraped it */
} gw__node_kind;

typedef struct gw__node_gpu {
    gw_place_device dev;   /* identity, state, free/total, pending, temperatures */
    bool has_used;
    uint64_t used;
    bool has_util;
    double util_percent;
} gw__node_gpu;

typedef struct gw__node_model {
    gw__loaded_model m;
    char server[300];      /* the model server's URL */
    gw__server_kind kind;
} gw__node_model;

typedef struct gw__node {
    gw__node_kind kind;
    char url[300];         /* as configured (Prometheus: the instance label) */
    char token[256];       /* bearer token for a gpuwatch peer; "" none */
    char name[128];        /* the node's hostname; else the URL's host */
    bool up;
    char error[256];       /* why not up */
    int64_t fetched_ns;    /* realtime of the last good data; 0: never */
    double answer_seconds; /* how long the latest answer took */
    char version[48];      /* gpuwatch / Ollama version; "" unknown */
    char status[16];       /* gpuwatch's verdict: ok, degraded, cpu-only; "" */
    gw__node_gpu *gpus;
    size_t n_gpus, gpus_cap;
    bool has_ram;
    uint64_t ram_total, ram_available;
    gw__node_model *models;
    size_t n_models, models_cap;
    /* --probe of a bare Ollama node with no model loaded */
    bool probed;
    char probe_model[128], probe_result[24], probe_error[200];
    double probe_seconds;
} gw__node;

/* "gpuwatch", "ollama", "prometheus"; static. */
const char *gw__node_kind_name(gw__node_kind k);

/* Replaces n's GPUs, RAM, version, status, name and models with what a
 * gpuwatch daemon's /health body says (docs/serve.md). GW_OK; GW_EPARSE
 * naming what is wrong (invariant 1); GW_ENOMEM. Does not touch up /
 * error / fetched_ns (the caller sets them). */
int gw__node_decode_health(gw__node *n, const char *body, size_t len, gw_error *err);

/* The same from a bare Ollama server's /api/version and /api/ps bodies
 * (version may be NULL: unknown). A node with no GPU figures: its models'
 * size_vram say where they live. */
int gw__node_decode_ollama(gw__node *n, const char *version_body, size_t version_len,
                           const char *ps_body, size_t ps_len, gw_error *err);

/* Appends one GPU / model (GW_ENOMEM when out of memory). */
int gw__node_add_gpu(gw__node *n, const gw__node_gpu *g);
int gw__node_add_model(gw__node *n, const gw__node_model *m);

/* Frees the GPUs and models (the identity stays). */
void gw__node_clear(gw__node *n);

/* Checks invariants that hold for any node: counts match arrays, a down
 * node has a reason, names terminated. For assert(). */
bool gw__node_check(const gw__node *n);

#endif
