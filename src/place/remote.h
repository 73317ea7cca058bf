/* remote.h — planning and reserving through the daemon (`gpuwatch serve`'s
 * placement API, docs/placement.md) for `gpuwatch run` and `place`, so both
 * paths end in the same gw_plan over the same devices and the launch code
 * (environment, llama.cpp flags) is shared.
 *
 * How: the caller prepares its gw_place_request as for the local path (its
 * devices from this host's monitor; the daemon samples the same GPUs). The
 * request is sent as the API's JSON object; the plan in the answer is mapped
 * back onto the request's devices by UUID. A daemon that plans a device this
 * host does not list is an error, never a guess.
 *
 * Invariants:
 *  1. Does not fit (409 with a plan) is GW_OK with plan->fits false, like
 *     gw_ledger_reserve; every other non-2xx answer is an error whose message
 *     names the daemon, the status and the daemon's own message. Nothing
 *     falls back to the local ledger here: the caller decides.
 *  2. No global state; strings are borrowed for the call.
 */
#ifndef GW_PLACE_REMOTE_H
#define GW_PLACE_REMOTE_H

#include "place/daemon_client.h"
#include "place/request.h"

#define GW_REMOTE_TIMEOUT_MS 5000

typedef struct gw_place_remote {
    gw_daemon_url url;
    const char *token; /* NULL or empty: no Authorization header */
} gw_place_remote;

/* What answers at the daemon's URL. */
typedef enum gw_place_probe {
    GW_PROBE_GPUWATCH, /* gpuwatch's /health: 200 with "service": "gpuwatch" */
    GW_PROBE_NOTHING,  /* connection refused */
    GW_PROBE_OTHER,    /* a server that is not gpuwatch (dcgm-exporter on 9400, ...) */
} gw_place_probe;

/* Chooses the path for place / run. local, or a request with --gpu /
 * --ledger / --no-ledger: *use false, fallback empty. Else the URL is
 * url_opt, else $GPUWATCH_DAEMON, else GW_DAEMON_DEFAULT_URL; the token
 * token_opt, else $GPUWATCH_TOKEN (borrowed: d points at them). The daemon
 * is probed: gpuwatch answers: *use true. Nothing listens, or a server that
 * is not gpuwatch answers: *use false and fallback[cap] says which, in one
 * line for the caller to print ("no daemon at URL (connection refused)",
 * "127.0.0.1:19400 answers but is not gpuwatch (GET /health: HTTP 404:
 * ...)"). Errors, with no fallback: a bad URL (GW_EINVAL), and the probe's
 * errors. */
int gw_place_remote_select(const char *url_opt, const char *token_opt, bool local,
                           const gw_place_request *r, gw_place_remote *d, bool *use,
                           char *fallback, size_t cap, gw_error *err);

/* GET /health (with the token, if any) and what answered it. GW_OK with
 * *what: GW_PROBE_GPUWATCH (200 and a JSON object whose "service" is
 * "gpuwatch"), GW_PROBE_NOTHING (connection refused; note says so) or
 * GW_PROBE_OTHER (an answer that is not HTTP, ends early or is over the
 * caps; or an HTTP status other than 401 / 403 / 5xx from a server whose
 * body is not gpuwatch's: note[cap] says what it answered). Errors, never
 * "not gpuwatch": a timeout (GW_ETIMEDOUT: a stuck daemon could be ours),
 * gpuwatch answering other than 200, and 401 / 403 / 5xx from anyone
 * (answer_error's codes), a host that is not loopback (GW_EPERM). */
int gw_place_remote_probe(const gw_place_remote *d, gw_place_probe *what, char *note, size_t cap,
                          gw_error *err);

/* POST /api/v1/reservations with r's need and placement options and req's
 * owner / pid / lease / key / note; fills plan (over r->devs) and *id (0 when
 * it does not fit). *replayed: the key named an existing reservation.
 * Errors: GW_EINVAL (400: the daemon rejected the request), GW_EPERM (401,
 * 403), GW_EIO (other statuses, transport), GW_EPARSE (an answer that is not
 * the documented shape). Plan must be gw_plan_init'ed; caller releases. */
int gw_place_remote_reserve(const gw_place_remote *d, const gw_place_request *r,
                            const gw_reserve_req *req, gw_plan *plan, int64_t *id, bool *replayed,
                            gw_error *err);

/* POST /api/v1/plan: the same without reserving. Errors as above. */
int gw_place_remote_plan(const gw_place_remote *d, const gw_place_request *r, gw_plan *plan,
                         gw_error *err);

/* DELETE /api/v1/reservations/{id}; GW_ENOENT when the daemon no longer
 * holds it. */
int gw_place_remote_release(const gw_place_remote *d, int64_t id, gw_error *err);

/* POST /api/v1/reservations/{id}/renew with the lease in seconds. */
int gw_place_remote_renew(const gw_place_remote *d, int64_t id, int64_t lease_ns, gw_error *err);
/* Hands reservation id to owner pid on the daemon (the command run started),
 * so it lives exactly as long as that process. Errors as renew. */
int gw_place_remote_set_pid(const gw_place_remote *d, int64_t id, uint32_t pid, gw_error *err);

/* Fills plan from the API's plan object (text, len) over devs[n], matching
 * devices by UUID. GW_EPARSE naming what is missing or unknown. Exposed for
 * tests. */
int gw_place_remote_plan_from_json(const char *text, size_t len, const gw_place_device *devs,
                                   size_t n, gw_plan *plan, gw_error *err);

#endif
