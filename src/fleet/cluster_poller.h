/* cluster_poller.h — the daemon's cluster view: every interval it polls
 * the configured peers, bare Ollama nodes or Prometheus server (cluster.h)
 * and keeps the result for GET /api/v1/cluster and POST
 * /api/v1/plan?scope=cluster.
 *
 * Owns: one thread, libcurl (loaded at start), the cluster (behind a
 * mutex) and the copied configuration.
 *
 * Invariants:
 *  1. Polling happens on the poller's thread, on a cluster of its own;
 *     readers see the previous complete poll until the new one is swapped
 *     in. A peer that hangs delays only the poller, by at most its deadline
 *     (every peer is asked at once).
 *  2. A node that stops answering keeps its last good figures and their
 *     time (node.h invariant 3): the view says how old they are.
 */
#ifndef GW_FLEET_CLUSTER_POLLER_H
#define GW_FLEET_CLUSTER_POLLER_H

#include "fleet/cluster.h"
#include "place/plan.h"

typedef struct gw__cluster_poller gw__cluster_poller;

typedef struct gw__cluster_poller_config {
    gw__cluster_config cluster; /* strings copied at start */
    unsigned interval_ms;       /* between polls; default 5000 */
} gw__cluster_poller_config;

/* Checks the configuration (URLs), loads libcurl and starts the thread
 * (its first poll at once). GW_EINVAL (bad URL, no peers), GW_ELOAD (no
 * libcurl), GW_ENOMEM, GW_EIO (no thread); err says which. */
int gw__cluster_poller_start(gw__cluster_poller **out, const gw__cluster_poller_config *cfg,
                             gw_error *err);

/* Stops the thread (waits for its poll: at most the deadline), unloads
 * libcurl and frees everything. NULL is a no-op. */
void gw__cluster_poller_stop(gw__cluster_poller *p);

/* The latest view as gpuwatch.cluster/1 JSON appended to out; polls counts
 * the finished polls (0: none yet). */
void gw__cluster_poller_json(gw__cluster_poller *p, gw_strbuf *out, uint64_t *polls);

/* gw_place_cluster_fn (place/api.h) on the latest view: ctx is the poller.
 * GW_ENODEV before the first poll. */
int gw__cluster_poller_plan(void *ctx, const gw_place_need *need, const gw_place_opts *opts,
                            gw_json *j, bool *fits, gw_error *err);

#endif
