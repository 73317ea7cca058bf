/* server.h — the HTTP server of `gpuwatch serve` (libmicrohttpd).
 *
 * Owns: the MHD daemon (internal thread pool, connection / per-IP limits,
 * timeouts, request size limit), the route table, the current publication
 * (the published snapshot with its bodies, each representation rendered
 * at most once and shared by every request), the Server-Sent Events clients, and request counters.
 *
 * Lifecycle: create (binds and serves: before a sampler is attached every
 * route but / answers 503 "starting") -> attach sampler -> publications
 * arrive through gw__server_publish (the sampler's listener) -> stop
 * (closes the socket, ends SSE streams, waits for requests in flight) ->
 * free. Stop before stopping the sampler; free after it.
 *
 * Invariants:
 *  1. A publication is immutable except for its lazily rendered bodies,
 *     each set once under the publication's lock: a kind's identity text
 *     first, then each representation (coding x format) made from it, at
 *     most once per publication, shared by every request that negotiates
 *     it (Accept-Encoding: gzip / identity; /metrics' Accept: Prometheus
 *     or OpenMetrics text, the same samples).
 *  2. A request holds a reference to the publication it answers from, so a
 *     swap never frees a body in use.
 *  3. Mutating endpoints (POST /api/v1/reload, POST /api/v1/reservations,
 *     DELETE /api/v1/reservations/{id}, POST .../renew) require
 *     "Authorization: Bearer <token>" when a token is configured; the daemon refuses to listen beyond loopback
 *     without one (checked in gw__server_create).
 */
#ifndef GW_HTTP_SERVER_H
#define GW_HTTP_SERVER_H

#include "http/prom.h"
#include "sampler/sampler.h"

typedef struct gw__server_config {
    char listen[128];                /* "HOST:PORT", "[V6]:PORT"; default GW_DEFAULT_LISTEN */
    char token[256];                 /* bearer token; empty: none */
    unsigned threads;                /* MHD thread pool size; default 2 */
    unsigned max_connections;        /* default 512 */
    unsigned max_connections_per_ip; /* default 256; 0 none */
    unsigned connection_timeout_s;   /* idle connection timeout; default 15 */
    unsigned max_request_bytes;      /* headers + body of one request; default 16384 */
    unsigned sse_max_clients;        /* concurrent /events streams; default 32 */
    unsigned families;               /* GW__PROM_* for /metrics; default native */
    bool metrics_processes;          /* per-process (pid) series on /metrics; default false */
    void (*on_reload)(void *ctx);    /* POST /api/v1/reload; NULL: 501 */
    void *on_reload_ctx;
    /* The placement/reservation routes (/api/v1/plan, /api/v1/reservations)
     * and /health's "placement" member; borrowed, must outlive the server.
     * NULL: those routes answer 503 with place_error. */
    struct gw_place_api *place;
    char place_error[256];
} gw__server_config;

void gw__server_config_default(gw__server_config *c);

typedef struct gw__server gw__server;

/* True when host:port in `listen` is a loopback address; false for others
 * and for unparsable text. */
bool gw__listen_is_loopback(const char *listen);

/* Binds and starts serving. log is borrowed (must outlive the server).
 * Returns GW_OK; GW_EINVAL (bad listen address or limits, or a non-loopback
 * address without a token: the message says so); GW_EIO (cannot bind: the
 * message names the address and why); GW_ENOMEM. *out NULL on failure. */
int gw__server_create(gw__server **out, const gw__server_config *cfg, gw__log *log,
                      gw_error *err);

/* The bound port (useful with port 0). */
uint16_t gw__server_port(const gw__server *srv);

/* Lets the server read history, events and stats; borrowed until stop. */
void gw__server_attach_sampler(gw__server *srv, gw__sampler *sampler);

/* gw__sampler_listener: makes snap (acquired here) the current publication
 * and wakes SSE clients. Thread-safe. */
void gw__server_publish(void *srv, gw_snapshot *snap, bool stale);

/* Applies the reloadable settings: token, families, metrics_processes, SSE
 * limit (the /metrics settings from the next publication on). The listen
 * address and pool/connection limits need a restart (the caller logs it). */
void gw__server_reconfigure(gw__server *srv, const gw__server_config *cfg);

/* Stops listening and ends every request and stream. NULL is a no-op. */
void gw__server_stop(gw__server *srv);

/* Frees the server (stopping it first if needed). NULL is a no-op. */
void gw__server_free(gw__server *srv);

#endif
