/* api.h — the placement endpoints of the daemon's HTTP API, as plain
 * functions of (request body, current snapshot) -> (HTTP status, JSON body),
 * so the HTTP server only routes and the logic is tested without sockets.
 *
 * Routes they implement (docs/placement.md has the request/response shapes):
 *   POST   /api/v1/plan                      gw_place_api_plan      (dry run)
 *   POST   /api/v1/reservations              gw_place_api_reserve   (plan + reserve
 *                                            atomically; Idempotency-Key header)
 *   GET    /api/v1/reservations              gw_place_api_list
 *   GET    /api/v1/reservations/{id}         gw_place_api_get
 *   DELETE /api/v1/reservations/{id}         gw_place_api_delete
 *   POST   /api/v1/reservations/{id}/renew   gw_place_api_renew
 *   /health's "placement" member             gw_place_api_health
 * The server keeps the bearer-token rule (mutating calls need it when one is
 * configured) and request size limits; this module enforces that a request
 * naming a GGUF file names one under a configured model directory (after
 * resolving symlinks and "..").
 *
 * Invariants:
 *  1. Every handler writes exactly one JSON value into `out` and returns its
 *     HTTP status: 200/201 with the result, 4xx/5xx with
 *     {"error": {"code": HTTP status, "message": "..."}} (the daemon's
 *     error shape, docs/serve.md); "does not fit" is 409
 *     with the plan (its reason) in the body.
 *  2. One gw_place_api is thread-safe: its ledger handle is used under its
 *     own mutex (the ledger serialises writers anyway).
 */
#ifndef GW_PLACE_API_H
#define GW_PLACE_API_H

#include "place/request.h"
#include "render/json_writer.h"

typedef struct gw_place_api_config {
    const char *ledger_path;            /* required */
    const char *proc_root;              /* owner liveness; NULL: /proc */
    const char *const *model_dirs;      /* GGUF files must be under one of these */
    size_t n_model_dirs;
    gw_place_policy default_policy;     /* "allocation strategy" shown in /health */
    uint64_t default_margin;            /* bytes kept free per GPU unless asked */
    /* A read-only daemon: every reservation's "note" (`gpuwatch run` puts
     * the command line there) is written as null in every answer. */
    bool withhold_notes;
} gw_place_api_config;

typedef struct gw_place_api gw_place_api;

/* Opens the ledger (creating it) and resolves the model directories (each
 * must exist: GW_EINVAL naming it). Errors as gw_ledger_open; on failure *out
 * is NULL. Strings in cfg are borrowed for the call. Caller closes. */
int gw_place_api_open(gw_place_api **out, const gw_place_api_config *cfg, gw_error *err);
/* Closes the ledger and frees everything; no request may be in flight.
 * NULL is a no-op. */
void gw_place_api_close(gw_place_api *a);

/* snap: the current publication (borrowed for the call). body/len: the
 * request body (JSON object). out: the response body is appended. */
int gw_place_api_plan(gw_place_api *a, const gw_snapshot *snap, const char *body, size_t len,
                      gw_strbuf *out);
/* POST /api/v1/plan?scope=cluster: the body parsed and its need built as
 * for gw_place_api_plan (same members, same model directories), then
 * handed to plan(ctx, need, opts, j, fits, err), which plans it on the
 * cluster's nodes and writes the answer object into j (fleet's
 * cluster_place.h; place knows nothing of nodes). Returns the HTTP status:
 * 200 fits, 409 fits nowhere, 400 for a bad request (plan's GW_EINVAL
 * too), 503 when plan says GW_ENODEV (no cluster view yet). */
typedef int (*gw_place_cluster_fn)(void *ctx, const gw_place_need *need, const gw_place_opts *opts,
                                   gw_json *j, bool *fits, gw_error *err);
int gw_place_api_plan_cluster(gw_place_api *a, const char *body, size_t len,
                              gw_place_cluster_fn plan, void *ctx, gw_strbuf *out);
int gw_place_api_reserve(gw_place_api *a, const gw_snapshot *snap, const char *body, size_t len,
                         const char *idempotency_key, gw_strbuf *out);
int gw_place_api_list(gw_place_api *a, gw_strbuf *out);
int gw_place_api_get(gw_place_api *a, const char *id, gw_strbuf *out);
int gw_place_api_delete(gw_place_api *a, const char *id, gw_strbuf *out);
int gw_place_api_renew(gw_place_api *a, const char *id, const char *body, size_t len,
                       gw_strbuf *out);

/* Live reservations per device of snap, for /metrics: counts[i], bytes[i]
 * and pending[i] (the part of bytes not yet visible as used by the
 * reserving processes: what a plan counts on top of used; ledger.h
 * invariant 4) — caller's arrays of snap->n_devices, for the device with
 * snap's i-th UUID, zeroed first. Returns GW_OK, or the ledger's error
 * (arrays left zero). */
int gw_place_api_device_totals(gw_place_api *a, const gw_snapshot *snap, uint64_t *counts,
                               uint64_t *bytes, uint64_t *pending);

/* Writes {"strategy": ..., "devices": [{"index", "uuid", "pending_bytes",
 * "reservations": [{"id", "owner", "pid", "bytes", "note"}]}]} as a value
 * into j (pending_bytes as in gw_place_api_device_totals; what a cluster
 * plan on this node counts). */
void gw_place_api_health(gw_place_api *a, const gw_snapshot *snap, gw_json *j);

#endif
