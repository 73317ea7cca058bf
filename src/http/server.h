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
 *  3. Access (docs/serve.md "Access"): mutating operations (GW__OPF_MUTATING
 *     in routes.h: POST /api/v1/reload, POST /api/v1/reservations, DELETE
 *     /api/v1/reservations/{id}, POST .../renew) need a credential (the
 *     bearer token or a basic_auth_file user) when one is configured, and
 *     answer 403 under read_only; beyond loopback every request needs one
 *     unless read_only. gw__server_create refuses to listen beyond loopback
 *     with neither credentials nor read_only.
 *  4. read_only withholds process command lines from every answer (the
 *     /gpu/processes "cmdline", reservation "note"s through the placement
 *     API's own setting) for the server's whole life (restart to change).
 *  5. The listening socket is bound once, at create, and accepts until
 *     stop: a TLS reload starts the new daemon on it before the old one
 *     stops accepting (server.c says how); a failed reload changes nothing.
 */
#ifndef GW_HTTP_SERVER_H
#define GW_HTTP_SERVER_H

#include "http/prom.h"
#include "sampler/sampler.h"

typedef struct gw__server_config {
    char listen[128];                /* "HOST:PORT", "[V6]:PORT"; default GW_DEFAULT_LISTEN */
    char token[256];                 /* bearer token; empty: none */
    char basic_auth_file[512];       /* "user:crypt-hash" lines (auth.h); empty: none */
    char tls_cert_file[512];         /* PEM certificate (chain); both or neither */
    char tls_key_file[512];          /* PEM private key, unencrypted */
    bool read_only;                  /* mutating routes 403, command lines withheld */
    unsigned threads;                /* MHD thread pool size; default 2 */
    unsigned max_connections;        /* default 512 */
    unsigned max_connections_per_ip; /* default 256; 0 none */
    unsigned connection_timeout_s;   /* idle connection timeout; default 15 */
    unsigned max_request_bytes;      /* headers + body of one request; default 16384 */
    unsigned sse_max_clients;        /* concurrent /events streams; default 32 */
    unsigned progress_ttl_s;         /* job progress records expire; default 600 */
    unsigned families;               /* GW__PROM_* for /metrics; default native */
    bool metrics_processes;          /* per-process (pid) series on /metrics; default false */
    void (*on_reload)(void *ctx);    /* POST /api/v1/reload; NULL: 501 */
    void *on_reload_ctx;
    /* The placement/reservation routes (/api/v1/plan, /api/v1/reservations)
     * and /health's "placement" member; borrowed, must outlive the server.
     * NULL: those routes answer 503 with place_error. */
    struct gw_place_api *place;
    char place_error[256];
    /* The model-server poller (models/poller.h) behind /health's
     * model_servers and the gpuwatch_model_* families; borrowed, must
     * outlive the server. NULL: neither. */
    struct gw__models_poller *models;
    /* The cluster view's poller (fleet/cluster_poller.h) behind GET
     * /api/v1/cluster and POST /api/v1/plan?scope=cluster; borrowed, must
     * outlive the server. NULL: 404 naming the keys that enable it. */
    struct gw__cluster_poller *cluster;
} gw__server_config;

void gw__server_config_default(gw__server_config *c);

typedef struct gw__server gw__server;

/* True when host:port in `listen` is a loopback address; false for others
 * and for unparsable text. */
bool gw__listen_is_loopback(const char *listen);
/* Parses "HOST:PORT" / "[V6]:PORT" / ":PORT" (all IPv4 addresses) into *ss
 * (*v6: an IPv6 address); false when it is none of those. */
struct sockaddr_storage;
bool gw__listen_parse(const char *listen, struct sockaddr_storage *ss, bool *v6);

/* Binds and starts serving. log is borrowed (must outlive the server).
 * Returns GW_OK; GW_EINVAL (bad listen address or limits, only one of the
 * TLS files, a certificate GnuTLS refuses (its reason, e.g. the key does not
 * match), a non-loopback address with neither credentials nor read_only:
 * the message says so); GW_ENOENT / GW_EIO / GW_EINVAL for a TLS or
 * basic-auth file (the message names the key, the file and what is wrong,
 * FILE:LINE for a bad basic-auth line); GW_EIO (cannot bind: the message
 * names the address and why); GW_ELOAD (libmicrohttpd); GW_ENOMEM. *out
 * NULL on failure. */
int gw__server_create(gw__server **out, const gw__server_config *cfg, gw__log *log,
                      gw_error *err);

/* The bound port (useful with port 0). */
uint16_t gw__server_port(const gw__server *srv);

/* Lets the server read history, events and stats; borrowed until stop. */
void gw__server_attach_sampler(gw__server *srv, gw__sampler *sampler);

/* gw__sampler_listener: makes snap (acquired here) the current publication
 * and wakes SSE clients. Thread-safe. */
void gw__server_publish(void *srv, gw_snapshot *snap, bool stale);

/* True when serving HTTPS. */
bool gw__server_tls(const gw__server *srv);

/* Applies the reloadable settings: token, families, metrics_processes, SSE
 * limit (the /metrics settings from the next publication on), and re-reads
 * basic_auth_file and the TLS files. A credential file that fails to load
 * keeps the running credentials and TLS; TLS files that fail (or that
 * GnuTLS refuses) keep the running certificate; either way the reason is
 * logged (naming the file). Changed TLS files are served by a new daemon
 * on the same socket (no connection refused meanwhile). The listen address,
 * pool/connection limits and read_only need a restart (the caller logs
 * it). Call from one thread, as _reap and _stop. */
void gw__server_reconfigure(gw__server *srv, const gw__server_config *cfg);

/* Stops the daemons retired by TLS reloads that hold no connection any
 * more; call now and then (the daemon's signal loop does, every second). */
void gw__server_reap(gw__server *srv);

/* Stops listening and ends every request and stream. NULL is a no-op. */
void gw__server_stop(gw__server *srv);

/* Frees the server (stopping it first if needed). NULL is a no-op. */
void gw__server_free(gw__server *srv);

#endif
