/* cluster.h — the cluster view: every node's GPUs (or CPU-only host RAM),
 * reachability and loaded models, from the nodes themselves (direct
 * polling: gpuwatch peers' /health, bare Ollama servers' /api/ps) or from
 * a Prometheus server that scrapes the gpuwatch daemons (prom_source.h).
 *
 * Owns: the node list and its configuration (which URLs, which token), one
 * poll of every node at once (fetch.h: each under a deadline, a node that
 * does not answer never delays the others), the cluster totals, and the
 * two renderings: JSON (schema gpuwatch.cluster/1, docs/cluster.md) and
 * the "Distributed Nodes Report" for people.
 *
 * Invariants:
 *  1. Nodes keep the order of the configuration (peers, then Ollama
 *     nodes; Prometheus: instance order); a poll never adds or drops one.
 *  2. A node that failed keeps its last good figures and fetched_ns; the
 *     totals count only nodes that are up.
 *  3. Every node satisfies gw__node_check after a poll.
 */
#ifndef GW_FLEET_CLUSTER_H
#define GW_FLEET_CLUSTER_H

#include "fleet/fetch.h"
#include "fleet/node.h"
#include "render/json_writer.h"

#include <stdio.h>

typedef struct gw__cluster_config {
    const char *peers;        /* comma list of gpuwatch URLs (http:// or https://) */
    const char *ollama_nodes; /* comma list of bare Ollama URLs */
    const char *token;        /* bearer token sent to every gpuwatch peer; NULL none */
    const char *ca_file;      /* TLS: CA bundle for https:// peers; NULL: system's */
    const char *prometheus;   /* read every node from this Prometheus instead */
    const char *prometheus_job; /* its job label of the gpuwatch targets; NULL: "gpuwatch" */
    int timeout_ms;           /* per node (and per Prometheus query); 0: 2000 */
    bool straggler_cut;       /* one-shot: see fetch.h */
    bool probe;               /* --probe idle bare Ollama nodes (servers.h) */
} gw__cluster_config;

typedef struct gw__cluster {
    gw__node *nodes;
    size_t n_nodes, nodes_cap;
    bool from_prometheus;
    char prometheus[300];     /* its URL when from_prometheus */
    char error[256];          /* Prometheus could not be read; "" */
    int64_t taken_ns;         /* realtime when the latest poll started */
    double poll_seconds;      /* how long it took */
    double source_seconds;    /* Prometheus: its slowest answer (of the queries sent at once) */
} gw__cluster;

typedef struct gw__cluster_totals {
    size_t nodes, nodes_up, nodes_down, cpu_only_nodes, gpus, models;
    uint64_t vram_total, vram_used, vram_free;  /* over GPUs of nodes up, lost ones excluded */
    uint64_t ram_total, ram_available;          /* over nodes up that said */
} gw__cluster_totals;

/* Checks a comma list of peer URLs: http://HOST[:PORT] or https://...,
 * with an optional path-less trailing '/'. GW_EINVAL naming the bad one. */
int gw__cluster_check_urls(const char *list, const char *what, gw_error *err);

/* Builds the node list of cfg (URLs checked as above; none at all is
 * GW_EINVAL: "no peers"). Prometheus mode starts empty (the instances
 * come from the server). c is released first. */
int gw__cluster_init(gw__cluster *c, const gw__cluster_config *cfg, gw_error *err);

/* True when some URL of c needs libcurl (fetch.h's gw__fetch_needs_curl):
 * only then has a caller to load it before gw__cluster_poll. */
bool gw__cluster_needs_curl(const gw__cluster *c);

/* Polls every node once (or Prometheus). Returns GW_OK when the poll ran,
 * whatever each node said (each node's up / error); an error only when
 * curl could not be set up, or Prometheus mode could not be read at all
 * (c->error says why too). */
int gw__cluster_poll(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                     gw_error *err);

void gw__cluster_totals_of(const gw__cluster *c, gw__cluster_totals *t);

/* The cluster as docs/cluster.md's object; ages relative to now_ns
 * (realtime). */
void gw__cluster_json(gw_json *j, const gw__cluster *c, int64_t now_ns);

/* The Distributed Nodes Report for people. */
void gw__cluster_print(FILE *out, const gw__cluster *c, int64_t now_ns);

/* Frees every node; c is empty after. */
void gw__cluster_release(gw__cluster *c);

#endif
