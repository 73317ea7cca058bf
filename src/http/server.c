/* server.c — see server.h for the lifecycle and invariants.
 *
 * Owns: the MHD daemons on the listening socket, the per-request state
 * machine (headers -> body -> answer), dispatch through the route table
 * (routes.h) and the access rules, the publication's cached bodies and the
 * SSE clients.
 *
 * Request path: MHD calls on_request at least twice per request; we answer
 * once the whole request is in (keep-alive stays possible). Every call
 * matches (method, path) against the route table (a few string compares):
 * the operation says whether the body is collected (GW__OPF_BODY: into a
 * gw_strbuf capped at GW__MAX_BODY_BYTES, 413 beyond) or discarded (a body
 * over the cap is 413 too). *con_cls is either an odd counter (1 + 2 *
 * bytes discarded, no allocation) or a body_req (malloc'd, so even), freed
 * in on_completed. Then the access rules (admitted()), then the operation's
 * handler. Every answer goes through reply(), which counts it in
 * srv->counts[route][code]. Cached bodies are MHD response objects owned by
 * the publication and queued for every request: MHD counts its own
 * references, so the bytes are shared, never copied per request.
 *
 * Daemons and reload: the listening socket outlives any one MHD daemon. A
 * reload that changes the TLS certificate starts a new daemon on a dup() of
 * the socket with the new PEM (MHD owns that descriptor from then on, also
 * when it fails: it closes it), and only once it runs quiesces the old one
 * (it stops accepting; connections it holds finish on the old certificate)
 * and moves it to srv->retired. A retired daemon is stopped once it holds
 * no connection (gw__server_reap), or at stop. So a bad certificate never
 * costs the running one, and the socket never stops accepting.
 *
 * Representations: each cached body exists per content coding (identity,
 * gzip) and /metrics also as OpenMetrics; send_body picks one from the
 * request's Accept-Encoding / Accept (negotiate.h). A publication renders a
 * kind's identity text once (text[kind]), and every other representation is
 * made from that text, once, on its first request: OpenMetrics from the
 * Prometheus text (so both carry the same samples), gzip by compressing it.
 *
 * SSE (/events): each client gets a callback response. When the client is
 * up to date its reader suspends the connection (MHD_suspend_connection, the
 * documented way to wait inside a content reader) and joins srv->waiting;
 * every publication resumes all waiting clients. Lock order: srv->lock, then
 * a publication's lock, then the sampler's locks; the sampler never calls
 * in while holding its own. srv->cap_lock, srv->progress_lock (the job
 * progress table, taken alone by its routes and under a publication's lock
 * by /metrics rendering) and a gw__basic_auth's lock are leaves.
 */
#include "http/server.h"
#include "fleet/cluster_poller.h"
#include "models/poller.h"
#include "http/api.h"
#include "http/assets.h"
#include "http/auth.h"
#include "http/mhd_lib.h"
#include "http/negotiate.h"
#include "http/routes.h"
#include "http/tls.h"
#include "place/api.h"
#include "progress/progress.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum body_kind { B_HEALTH, B_INFO, B_METRICS, B_PROCESSES, B_PROM, B_OPENMETRICS, B_COUNT };

#define GW__MAX_BODY_BYTES 65536u /* request bodies beyond this: 413 */
/* A collected body over the cap is still read (and dropped) up to this, so
 * the 413 reaches a client that sends its whole body before reading (closing
 * with unread input resets the connection, losing the answer); beyond it the
 * server answers at once and closes. */
#define GW__DRAIN_BODY_BYTES (1u << 20)
/* Daemons kept serving connections opened before a certificate reload. */
#define GW__MAX_RETIRED 8

/* A collected request body (operations with GW__OPF_BODY). */
typedef struct body_req {
    gw_strbuf sb; /* capped at GW__MAX_BODY_BYTES + 1 (the NUL) */
    size_t seen;  /* bytes received, kept or not */
} body_req;

typedef struct pub {
    atomic_int refs;
    gw_snapshot *snap;
    const gw__mhd_lib *lib; /* the server's, for destroying resp[] */
    bool stale;
    int64_t last_good_ns;
    unsigned families;
    pthread_mutex_t lock;
    struct MHD_Response *_Atomic resp[B_COUNT][GW__ENC_COUNT];
    unsigned status[B_COUNT];
    /* The identity bytes of each rendered kind, set under lock before any
     * resp[kind][*] is stored: the source of the other representations, and
     * B_HEALTH's is SSE's snapshot event. */
    char *text[B_COUNT];
    size_t len[B_COUNT];
    uint64_t place_gen[B_COUNT]; /* srv->place_gen when text[kind] was rendered */
    uint64_t procs_hash; /* procs_hash of text[B_PROCESSES], set with it: what
                            an /events client compares with what it sent */
    uint64_t progress_gen[B_COUNT]; /* srv->progress_gen likewise */
} pub;

typedef struct sse_client {
    struct gw__server *srv;
    struct MHD_Connection *conn;
    uint64_t event_seq; /* newest event sent */
    uint64_t gen_sent;  /* publication generation sent */
    gw_strbuf pending;
    size_t off;
    bool suspended;     /* in srv->waiting (under srv->lock); a client is
                           in the list exactly when this is true */
    struct sse_client *next;
    bool hello;
    bool with_processes; /* "/events?include=processes": a processes event
                            (the /gpu/processes body) after a snapshot whose
                            process list differs from the last one sent */
    uint64_t procs_sent; /* hash of that list (procs_hash); 0: none sent */
} sse_client;

/* The credentials in force: replaced whole on reload (a request holds a
 * reference to the set it checks against). */
typedef struct creds {
    atomic_int refs;
    char token[256];        /* empty: no bearer token */
    gw__basic_auth *basic;  /* NULL: no basic_auth_file */
} creds;

typedef struct addr {
    struct sockaddr_storage ss;
    bool v6;
} addr;

/* A daemon that stopped accepting at a reload and still serves the
 * connections it had, with the PEM it was started with. */
typedef struct retired {
    struct MHD_Daemon *mhd;
    gw__tls_pem pem;
} retired;

struct gw__server {
    gw__server_config cfg;
    gw__mhd_lib lib; /* libmicrohttpd, loaded by gw__server_start */
    gw__log *log;
    addr addr;
    bool beyond_loopback; /* the listen address is not a loopback one */
    uint16_t port;
    int64_t started_real_ns, started_mono_ns;

    /* Lifecycle (create, reconfigure, reap, stop: one thread at a time). */
    struct MHD_Daemon *mhd; /* the accepting daemon */
    gw__tls_pem pem;        /* its certificate and key; NULLs: plain HTTP */
    retired retired[GW__MAX_RETIRED];
    size_t n_retired;

    pthread_mutex_t lock; /* pub, gen, sampler, waiting, sse count, cfg reloadables, creds */
    pub *pub;
    uint64_t gen;
    int64_t last_good_ns;
    gw__sampler *sampler;
    sse_client *waiting;
    unsigned sse_clients;
    bool stopping;
    creds *creds;

    /* MHD's messages while a daemon starts: the first is the reason a start
     * failed (GnuTLS's word on a certificate). */
    pthread_mutex_t cap_lock;
    bool capturing;
    char cap_msg[256];

    atomic_uint_fast64_t scrapes[GW__FMT_COUNT][GW__ENC_COUNT]; /* /metrics answers */
    gw__http_counts counts; /* answers by route and status */
    /* Bumped after every reservation change made through the API: a cached
     * /health rendered before it is not served (its placement member is old). */
    atomic_uint_fast64_t place_gen;

    /* Job progress (POST /api/v1/progress): a bounded table under its own
     * lock (a leaf); progress_gen is bumped after every accepted report, so
     * a /metrics body rendered before it is not served (as place_gen). */
    pthread_mutex_t progress_lock;
    gw_progress_table progress;
    atomic_uint_fast64_t progress_gen;
    atomic_uint progress_ttl_s; /* cfg.progress_ttl_s, changed by a reload */

    gw__asset_cache assets; /* the web page's files, as responses */
};

void gw__server_config_default(gw__server_config *c)
{
    memset(c, 0, sizeof *c);
    gw__strlcpy(c->listen, GW_DEFAULT_LISTEN, sizeof c->listen);
    c->threads = 2;
    c->max_connections = 512;
    c->max_connections_per_ip = 256;
    c->connection_timeout_s = 15;
    c->max_request_bytes = 16384;
    c->sse_max_clients = 32;
    c->progress_ttl_s = GW_PROGRESS_DEFAULT_TTL_S;
    c->families = GW__PROM_NATIVE;
}

/* ------------------------------------------------------------- addresses */

static bool parse_listen(const char *listen, addr *a)
{
    memset(a, 0, sizeof *a);
    char host[96];
    const char *port_s;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host)
            return false;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        port_s = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host || strchr(listen, ':') != colon)
            return false;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port_s = colon + 1;
    }
    uint64_t port;
    if (!*port_s || !gw__parse_u64(port_s, &port) || port > 65535)
        return false;
    if (!*host)
        gw__strlcpy(host, "0.0.0.0", sizeof host);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        a->v6 = true;
        return true;
    }
    return false;
}

bool gw__listen_parse(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
    addr a;
    if (!parse_listen(listen, &a))
        return false;
    *ss = a.ss;
    *v6 = a.v6;
    return true;
}

bool gw__listen_is_loopback(const char *listen)
{
    addr a;
    if (!parse_listen(listen, &a))
        return false;
    if (!a.v6)
        return (ntohl(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a.ss)->sin6_addr);
}

/* ---------------------------------------------------------- publications */

static pub *pub_ref(pub *p)
{
    if (p)
        atomic_fetch_add(&p->refs, 1);
    return p;
}

static void pub_release(pub *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (int k = 0; k < B_COUNT; k++) {
        for (int e = 0; e < GW__ENC_COUNT; e++)
            if (p->resp[k][e])
                p->lib->destroy_response(p->resp[k][e]);
        free(p->text[k]);
    }
    gw_snapshot_release(p->snap);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* The current publication with a reference, or NULL. */
static pub *current_pub(gw__server *srv)
{
    pthread_mutex_lock(&srv->lock);
    pub *p = pub_ref(srv->pub);
    pthread_mutex_unlock(&srv->lock);
    return p;
}

static gw__sampler *sampler_of(gw__server *srv)
{
    pthread_mutex_lock(&srv->lock);
    gw__sampler *s = srv->sampler;
    pthread_mutex_unlock(&srv->lock);
    return s;
}

static void placement_health(void *cls, const gw_snapshot *s, gw_json *j)
{
    gw_place_api_health(cls, s, j);
}

static void models_json(void *arg, const gw__server_list *l, uint64_t rounds)
{
    (void)rounds;
    gw__model_servers_json(arg, l->v, l->n);
}

static void models_health(void *cls, gw_json *j)
{
    gw__models_poller_read(cls, models_json, j);
}

static void api_ctx(gw__server *srv, const pub *p, gw__api_ctx *ctx, gw__sampler_stats *st)
{
    memset(ctx, 0, sizeof *ctx);
    if (srv->cfg.place) {
        ctx->placement = placement_health;
        ctx->placement_cls = srv->cfg.place;
    }
    if (srv->cfg.models) {
        ctx->models = models_health;
        ctx->models_cls = srv->cfg.models;
    }
    ctx->stale = p->stale;
    ctx->withhold_cmdline = srv->cfg.read_only;
    ctx->cluster_view = srv->cfg.cluster != NULL;
    ctx->now_ns = gw__now_real_ns();
    ctx->last_good_ns = p->last_good_ns;
    ctx->uptime_seconds = (double)(gw__now_mono_ns() - srv->started_mono_ns) / 1e9;
    gw__sampler *s = sampler_of(srv);
    if (s) {
        gw__sampler_stats_get(s, st);
        ctx->sampler = st;
    }
}

static double self_rss(void)
{
    char buf[128];
    if (gw__read_file("/proc/self/statm", buf, sizeof buf) <= 0)
        return -1;
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return -1;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static int64_t progress_ttl_ns(gw__server *srv)
{
    unsigned s = atomic_load(&srv->progress_ttl_s);
    return (int64_t)(s ? s : GW_PROGRESS_DEFAULT_TTL_S) * 1000000000;
}

/* /metrics as Prometheus text: the snapshot plus the daemon's own figures
 * and, with a placement API, its ledger's reservations per GPU. */
/* The page with the model servers' families: rendered while the poller's
 * list is held (models/poller.h). */
typedef struct prom_job {
    gw_strbuf *sb;
    const pub *p;
    gw__prom_self *self;
} prom_job;

static void prom_with_models(void *arg, const gw__server_list *l, uint64_t rounds)
{
    prom_job *job = arg;
    (void)rounds;
    job->self->models = l->v;
    job->self->n_models = l->n;
    gw__render_prometheus(job->sb, job->p->snap, job->self, job->p->families);
}

static void render_prom(gw__server *srv, pub *p, const gw__api_ctx *ctx, gw_strbuf *sb)
{
    gw__prom_self self;
    memset(&self, 0, sizeof self);
    uint64_t counts[GW__EV_COUNT];
    gw__sampler *s = sampler_of(srv);
    if (s) {
        for (int t = 0; t < GW__EV_COUNT; t++)
            counts[t] = gw__events_count(gw__sampler_events(s), (gw__event_type)t);
        self.event_counts = counts;
        self.sampler = ctx->sampler;
    }
    self.stale = p->stale;
    self.last_good_ns = p->last_good_ns;
    self.now_ns = ctx->now_ns;
    gw__prom_http_count hc[GW__ROUTE_COUNT * GW__CODE_COUNT];
    size_t nh = 0;
    for (unsigned r = 0; r < GW__ROUTE_COUNT; r++)
        for (unsigned c = 0; c < GW__CODE_COUNT; c++) {
            uint64_t v = atomic_load_explicit(&srv->counts.n[r][c], memory_order_relaxed);
            if (v)
                hc[nh++] = (gw__prom_http_count){gw__route_name((gw__route)r),
                                                 gw__http_code_name(c), v};
        }
    self.http_requests = hc;
    self.n_http_requests = nh;
    for (int f = 0; f < GW__FMT_COUNT; f++)
        for (int e = 0; e < GW__ENC_COUNT; e++)
            self.scrapes[f][e] = atomic_load(&srv->scrapes[f][e]);
    self.log_dropped = srv->log ? atomic_load(&srv->log->dropped) : 0;
    struct rusage ru;
    self.process_cpu_seconds = -1;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        self.process_cpu_seconds = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                                   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    self.resident_bytes = self_rss();
    self.start_time_seconds = (double)srv->started_real_ns / 1e9;
    /* One allocation for the three per-GPU arrays; without it (or a readable
     * ledger) the placement families are left out. */
    size_t n = p->snap->n_devices;
    uint64_t *place = srv->cfg.place && n ? calloc(3 * n, sizeof *place) : NULL;
    if (place && gw_place_api_device_totals(srv->cfg.place, p->snap, place, place + n,
                                            place + 2 * n) == GW_OK) {
        self.place_reservations = place;
        self.place_bytes = place + n;
        self.place_pending = place + 2 * n;
    }
    gw_progress *prog = NULL;
    size_t n_prog = 0;
    pthread_mutex_lock(&srv->progress_lock);
    int prc = gw_progress_table_list(&srv->progress, ctx->now_ns, progress_ttl_ns(srv), &prog,
                                     &n_prog, NULL);
    pthread_mutex_unlock(&srv->progress_lock);
    if (prc == GW_OK) {
        self.progress = prog;
        self.n_progress = n_prog;
    }
    if (srv->cfg.models) {
        prom_job job = {sb, p, &self};
        gw__models_poller_read(srv->cfg.models, prom_with_models, &job);
    } else {
        gw__render_prometheus(sb, p->snap, &self, p->families);
    }
    free(prog);
    free(place);
}

/* Renders body `kind` (identity bytes) of p into sb; returns its status. */
static unsigned render(gw__server *srv, pub *p, int kind, gw_strbuf *sb)
{
    gw__api_ctx ctx;
    gw__sampler_stats st;
    api_ctx(srv, p, &ctx, &st);
    switch (kind) {
    case B_HEALTH: return gw__api_health(sb, p->snap, &ctx);
    case B_INFO: return gw__api_info(sb, p->snap, &ctx);
    case B_METRICS: return gw__api_metrics(sb, p->snap, &ctx);
    case B_PROCESSES: return gw__api_processes(sb, p->snap, &ctx);
    case B_PROM: render_prom(srv, p, &ctx, sb); return 200;
    case B_OPENMETRICS: {
        gw_strbuf prom;
        gw__strbuf_init(&prom, 0);
        render_prom(srv, p, &ctx, &prom);
        gw__prom_to_openmetrics(sb, prom.data ? prom.data : "", prom.len);
        if (prom.failed)
            sb->failed = true;
        gw__strbuf_release(&prom);
        return 200;
    }
    }
    return 500;
}

static struct MHD_Response *make_response(const gw__mhd_lib *lib, const char *data, size_t len,
                                          const char *type)
{
    struct MHD_Response *r =
        lib->create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return NULL;
    lib->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    lib->add_response_header(r, "X-Content-Type-Options", "nosniff");
    lib->add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return r;
}

/* A response holding text[0..len) of body `kind` in coding enc (compressed
 * here for gzip), with the headers of that representation. NULL: out of
 * memory. The caller owns it (destroy_response). */
static struct MHD_Response *make_variant(const gw__mhd_lib *lib, int kind, gw__encoding enc,
                                         const char *text, size_t len)
{
    gw_strbuf z;
    gw__strbuf_init(&z, 0);
    if (enc == GW__ENC_GZIP && gw__gzip(&z, text, len) != GW_OK) {
        gw__strbuf_release(&z);
        return NULL;
    }
    const char *type = kind == B_PROM          ? GW__PROM_CONTENT_TYPE
                       : kind == B_OPENMETRICS ? GW__OPENMETRICS_CONTENT_TYPE
                                               : GW__JSON_CONTENT_TYPE;
    struct MHD_Response *r = enc == GW__ENC_GZIP ? make_response(lib, z.data, z.len, type)
                                                 : make_response(lib, text, len, type);
    gw__strbuf_release(&z);
    if (!r)
        return NULL;
    if (enc == GW__ENC_GZIP)
        lib->add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    /* /metrics also varies with Accept (Prometheus or OpenMetrics text). */
    lib->add_response_header(r, MHD_HTTP_HEADER_VARY,
                             kind == B_PROM || kind == B_OPENMETRICS ? "Accept-Encoding, Accept"
                                                                     : "Accept-Encoding");
    return r;
}

/* FNV-1a of a /gpu/processes body from its "process_count" member on: the
 * list without the timestamp and age every publication changes. Never 0. */
static uint64_t procs_hash(const char *text, size_t len)
{
    const char *from = memmem(text, len, "\"process_count\"", 15);
    if (from)
        len -= (size_t)(from - text), text = from;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Under p->lock: renders text[kind] unless it is there. False: out of
 * memory (nothing stored). */
static bool ensure_text(gw__server *srv, pub *p, int kind)
{
    if (p->text[kind])
        return true;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    uint64_t place_gen = atomic_load(&srv->place_gen);
    uint64_t progress_gen = atomic_load(&srv->progress_gen);
    unsigned status;
    if (kind == B_OPENMETRICS) {
        /* The Prometheus text of this publication, rewritten: both formats
         * show the same values (counters, ages) within one snapshot. */
        if (!ensure_text(srv, p, B_PROM))
            return false;
        gw__prom_to_openmetrics(&sb, p->text[B_PROM], p->len[B_PROM]);
        status = p->status[B_PROM];
        place_gen = p->place_gen[B_PROM];
        progress_gen = p->progress_gen[B_PROM];
    } else {
        status = render(srv, p, kind, &sb);
    }
    p->text[kind] = gw__strbuf_detach(&sb, &p->len[kind]);
    gw__strbuf_release(&sb);
    if (!p->text[kind])
        return false;
    p->status[kind] = status;
    if (kind == B_PROCESSES)
        p->procs_hash = procs_hash(p->text[kind], p->len[kind]);
    /* Written once, with the text it describes; published to readers of
     * resp[kind][*] by the atomic store that follows. */
    p->place_gen[kind] = place_gen;
    p->progress_gen[kind] = progress_gen;
    return true;
}

/* Body `kind` of p in coding enc, made at most once per publication;
 * returns the shared response (borrowed from p) or NULL when out of
 * memory. */
static struct MHD_Response *body(gw__server *srv, pub *p, int kind, gw__encoding enc)
{
    struct MHD_Response *r = atomic_load(&p->resp[kind][enc]);
    if (r)
        return r;
    pthread_mutex_lock(&p->lock);
    r = atomic_load(&p->resp[kind][enc]);
    if (!r && ensure_text(srv, p, kind)) {
        r = make_variant(&srv->lib, kind, enc, p->text[kind], p->len[kind]);
        if (r)
            atomic_store(&p->resp[kind][enc], r);
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

void gw__server_publish(void *ctx, gw_snapshot *snap, bool stale)
{
    gw__server *srv = ctx;
    pub *p = calloc(1, sizeof *p);
    if (!p) {
        gw__logf(srv->log, GW__LOG_ERROR, "http: out of memory publishing a snapshot");
        return;
    }
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->lock, NULL);
    p->snap = gw_snapshot_acquire(snap);
    p->lib = &srv->lib;
    p->stale = stale;
    pthread_mutex_lock(&srv->lock);
    if (!stale)
        srv->last_good_ns = snap->taken_ns;
    p->last_good_ns = srv->last_good_ns ? srv->last_good_ns : snap->taken_ns;
    p->families = srv->cfg.families | (srv->cfg.metrics_processes ? GW__PROM_PROCESSES : 0);
    pub *old = srv->pub;
    srv->pub = p;
    srv->gen++;
    for (sse_client *c = srv->waiting; c; c = c->next) {
        c->suspended = false;
        srv->lib.resume_connection(c->conn);
    }
    srv->waiting = NULL;
    pthread_mutex_unlock(&srv->lock);
    pub_release(old);
}

/* ------------------------------------------------------------- responses */

/* One request being answered: what the handlers need, and what reply()
 * counts the answer under. id / body are views valid during the call. */
typedef struct req {
    gw__server *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    gw__route route;
    const char *id; /* the "{id}" segment, id_len bytes, not NUL-terminated */
    size_t id_len;
    const char *body; /* collected body (GW__OPF_BODY), NUL-terminated; may be NULL */
    size_t body_len;
} req;

/* Every answer goes through here: queued, then counted. */
static enum MHD_Result reply(req *rq, unsigned status, struct MHD_Response *r)
{
    enum MHD_Result ret = rq->srv->lib.queue_response(rq->conn, status, r);
    if (ret == MHD_YES)
        gw__http_count(&rq->srv->counts, rq->route, status);
    return ret;
}

/* Answers sb (released here) with status; allow / www (WWW-Authenticate
 * values, NULL-terminated list) may be NULL. */
static enum MHD_Result send_text_h(req *rq, unsigned status, gw_strbuf *sb, const char *type,
                                   const char *allow, const char *const *www)
{
    const gw__mhd_lib *lib = &rq->srv->lib;
    struct MHD_Response *r = make_response(lib, sb->failed || !sb->data ? "" : sb->data,
                                           sb->failed ? 0 : sb->len, type);
    gw__strbuf_release(sb);
    if (!r)
        return MHD_NO;
    if (allow)
        lib->add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    for (size_t i = 0; www && www[i]; i++)
        lib->add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, www[i]);
    enum MHD_Result ret = reply(rq, status, r);
    lib->destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(req *rq, unsigned status, gw_strbuf *sb, const char *type)
{
    return send_text_h(rq, status, sb, type, NULL, NULL);
}

static enum MHD_Result send_error(req *rq, unsigned status, const char *allow, const char *msg)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__api_error(&sb, status, "%s", msg);
    return send_text_h(rq, status, &sb, GW__JSON_CONTENT_TYPE, allow, NULL);
}

/* The content coding the request's Accept-Encoding asks for;
 * GW__ENC_NONE when neither gzip nor identity is acceptable. */
static gw__encoding request_encoding(req *rq)
{
    return gw__negotiate_encoding(rq->srv->lib.lookup_connection_value(
        rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
}

static enum MHD_Result send_not_acceptable(req *rq)
{
    return send_error(rq, MHD_HTTP_NOT_ACCEPTABLE, NULL,
                      "no acceptable content coding: this server offers gzip and identity");
}

/* Answers sb (released here), rendered for this request, as body `kind`
 * in coding enc (make_variant: its type and headers). */
static enum MHD_Result send_variant(req *rq, unsigned status, int kind, gw__encoding enc,
                                    gw_strbuf *sb)
{
    const gw__mhd_lib *lib = &rq->srv->lib;
    struct MHD_Response *r =
        sb->failed ? NULL : make_variant(lib, kind, enc, sb->data ? sb->data : "", sb->len);
    gw__strbuf_release(sb);
    if (!r)
        return send_error(rq, 500, NULL, "out of memory rendering the response");
    enum MHD_Result ret = reply(rq, status, r);
    lib->destroy_response(r);
    return ret;
}

/* Answers the JSON in sb (released here) in the coding the request
 * negotiates: a history series is tens of KiB that gzip makes a few. A
 * request that accepts neither coding gets identity (as every JSON answer
 * but the cached ones: the body may be an error worth reading). B_INFO
 * stands for any JSON body: the kind only picks the Content-Type. */
static enum MHD_Result send_json_coded(req *rq, unsigned status, gw_strbuf *sb)
{
    gw__encoding enc = request_encoding(rq);
    return send_variant(rq, status, B_INFO, enc == GW__ENC_NONE ? GW__ENC_IDENTITY : enc, sb);
}

/* Reservations changed since p's cached body `kind` was rendered: that body
 * shows an old placement (/health's member, /metrics' reservation gauges),
 * so this request gets its own rendering, until the next publication. */
static enum MHD_Result send_fresh(req *rq, pub *p, int kind, gw__encoding enc)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    unsigned status = render(rq->srv, p, kind, &sb);
    return send_variant(rq, status, kind, enc, &sb);
}

static enum MHD_Result send_starting(req *rq)
{
    return send_error(rq, 503, NULL, "starting: no snapshot has been taken yet");
}

/* A cached body in the representation the request negotiates: coding from
 * Accept-Encoding (406 when neither gzip nor identity is acceptable) and,
 * for /metrics (B_PROM), the format from Accept. */
static enum MHD_Result send_body(req *rq, int kind)
{
    gw__server *srv = rq->srv;
    const gw__mhd_lib *lib = &srv->lib;
    gw__encoding enc = request_encoding(rq);
    if (enc == GW__ENC_NONE)
        return send_not_acceptable(rq);
    bool metrics = kind == B_PROM;
    if (metrics && gw__negotiate_format(lib->lookup_connection_value(
                       rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT)) == GW__FMT_OPENMETRICS)
        kind = B_OPENMETRICS;
    pub *p = current_pub(srv);
    if (!p)
        return send_starting(rq);
    struct MHD_Response *r = body(srv, p, kind, enc);
    enum MHD_Result ret;
    bool place_old = srv->cfg.place && (kind == B_HEALTH || metrics) &&
                     p->place_gen[kind] != atomic_load(&srv->place_gen);
    bool progress_old = metrics && p->progress_gen[kind] != atomic_load(&srv->progress_gen);
    if (r && (place_old || progress_old))
        ret = send_fresh(rq, p, kind, enc);
    else
        ret = r ? reply(rq, p->status[kind], r)
                : send_error(rq, 500, NULL, "out of memory rendering the response");
    /* Counted once answered, as reply() counts every request: a page never
     * counts its own scrape, and the request counter is never behind. */
    if (metrics && r && ret == MHD_YES)
        atomic_fetch_add(&srv->scrapes[kind == B_OPENMETRICS][enc], 1);
    pub_release(p);
    return ret;
}

/* ------------------------------------------------------------------- SSE */

static void sse_event_text(gw_strbuf *sb, const gw__event *e)
{
    gw__strbuf_printf(sb, "id: %llu\nevent: %s\ndata: ", (unsigned long long)e->seq,
                      gw__event_type_name(e->type));
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__api_event_json(&j, e);
    gw__strbuf_puts(sb, "\n\n");
}

/* Appends publication p's cached body `kind` (one line of JSON) to c's
 * pending bytes as an event called name. The process list is sent only
 * when it changed (it is read every process_interval_ms, 5 s by default;
 * rounds between carry it over): a page then gets 14 KB a second less on
 * 8 GPUs with 40 processes. */
static void sse_body_event(sse_client *c, pub *p, int kind, const char *name)
{
    if (!body(c->srv, p, kind, GW__ENC_IDENTITY) || !p->text[kind])
        return;
    if (kind == B_PROCESSES) {
        if (p->procs_hash == c->procs_sent)
            return;
        c->procs_sent = p->procs_hash;
    }
    size_t len = p->len[kind];
    while (len && p->text[kind][len - 1] == '\n')
        len--;
    gw__strbuf_printf(&c->pending, "event: %s\ndata: ", name);
    gw__strbuf_append(&c->pending, p->text[kind], len);
    gw__strbuf_puts(&c->pending, "\n\n");
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_client *c = cls;
    gw__server *srv = c->srv;
    for (;;) {
        if (c->off < c->pending.len) {
            size_t n = c->pending.len - c->off;
            if (n > max)
                n = max;
            memcpy(buf, c->pending.data + c->off, n);
            c->off += n;
            return (ssize_t)n;
        }
        gw__strbuf_reset(&c->pending);
        c->off = 0;
        if (!c->hello) {
            c->hello = true;
            gw__strbuf_puts(&c->pending, "retry: 2000\n\n");
            continue;
        }
        pthread_mutex_lock(&srv->lock);
        if (srv->stopping) {
            pthread_mutex_unlock(&srv->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (c->suspended) {
            /* MHD may call the reader again before the suspension it was
             * asked for takes effect: c is already in srv->waiting, and
             * pushing it twice would make the list a cycle. */
            pthread_mutex_unlock(&srv->lock);
            return 0;
        }
        gw__events *ev = srv->sampler ? gw__sampler_events(srv->sampler) : NULL;
        uint64_t last = ev ? gw__events_last_seq(ev) : 0;
        uint64_t gen = srv->gen;
        if (last <= c->event_seq && (gen == c->gen_sent || !srv->pub)) {
            c->suspended = true;
            c->next = srv->waiting;
            srv->waiting = c;
            srv->lib.suspend_connection(c->conn);
            pthread_mutex_unlock(&srv->lock);
            return 0;
        }
        pub *p = pub_ref(srv->pub);
        pthread_mutex_unlock(&srv->lock);
        if (ev && last > c->event_seq) {
            gw__event evs[32];
            size_t n = gw__events_since(ev, c->event_seq, evs, GW__ARRAY_LEN(evs));
            for (size_t i = 0; i < n; i++)
                sse_event_text(&c->pending, &evs[i]);
            c->event_seq = n ? evs[n - 1].seq : last;
        }
        if (p && gen != c->gen_sent) {
            c->gen_sent = gen;
            sse_body_event(c, p, B_HEALTH, "snapshot");
            if (c->with_processes)
                sse_body_event(c, p, B_PROCESSES, "processes");
        }
        pub_release(p);
        if (c->pending.failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void sse_free(void *cls)
{
    sse_client *c = cls;
    gw__server *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    if (c->suspended)
        for (sse_client **pp = &srv->waiting; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
    srv->sse_clients--;
    pthread_mutex_unlock(&srv->lock);
    gw__strbuf_release(&c->pending);
    free(c);
}

/* "/events?include=A,B": what each snapshot brings along. False when the
 * list (NULL: empty) names something unknown. */
static bool sse_include(const char *list, bool *processes)
{
    *processes = false;
    for (const char *p = list; p && *p;) {
        size_t k = strcspn(p, ",");
        if (k == 9 && strncmp(p, "processes", 9) == 0)
            *processes = true;
        else if (k)
            return false;
        p += k + (p[k] == ',');
    }
    return true;
}

static enum MHD_Result start_sse(req *rq)
{
    gw__server *srv = rq->srv;
    struct MHD_Connection *conn = rq->conn;
    bool processes;
    if (!sse_include(srv->lib.lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "include"),
                     &processes))
        return send_error(rq, 400, NULL,
                          "parameter 'include' lists what /events adds to each snapshot; "
                          "known: processes");
    pthread_mutex_lock(&srv->lock);
    bool full = srv->sse_clients >= srv->cfg.sse_max_clients;
    gw__sampler *s = srv->sampler;
    if (!full)
        srv->sse_clients++;
    pthread_mutex_unlock(&srv->lock);
    if (full)
        return send_error(rq, 503, NULL, "too many /events streams open; try again later");
    sse_client *c = calloc(1, sizeof *c);
    struct MHD_Response *r = NULL;
    if (c) {
        c->srv = srv;
        c->conn = conn;
        c->with_processes = processes;
        gw__strbuf_init(&c->pending, 1u << 20);
        c->event_seq = s ? gw__events_last_seq(gw__sampler_events(s)) : 0;
        r = srv->lib.create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
    }
    if (!r) {
        free(c);
        pthread_mutex_lock(&srv->lock);
        srv->sse_clients--;
        pthread_mutex_unlock(&srv->lock);
        return send_error(rq, 500, NULL, "out of memory");
    }
    srv->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    srv->lib.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    srv->lib.add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = reply(rq, 200, r);
    srv->lib.destroy_response(r);
    return ret;
}

/* ---------------------------------------------------------------- access */

static creds *creds_ref(gw__server *srv)
{
    pthread_mutex_lock(&srv->lock);
    creds *c = srv->creds;
    atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&srv->lock);
    return c;
}

static void creds_put(creds *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    explicit_bzero(c->token, sizeof c->token);
    gw__basic_auth_free(c->basic);
    free(c);
}

/* The credentials cfg names (the token, basic_auth_file read now). On
 * failure returns the error (naming the file and line) and *out is NULL. */
static int creds_load(const gw__server_config *cfg, creds **out, gw_error *err)
{
    *out = NULL;
    creds *c = calloc(1, sizeof *c);
    if (!c)
        return gw__error_set(err, GW_ENOMEM, "http: out of memory");
    atomic_init(&c->refs, 1);
    memcpy(c->token, cfg->token, sizeof c->token);
    c->token[sizeof c->token - 1] = '\0';
    if (cfg->basic_auth_file[0]) {
        int rc = gw__basic_auth_load(cfg->basic_auth_file, &c->basic, err);
        if (rc != GW_OK) {
            creds_put(c);
            return rc;
        }
    }
    *out = c;
    return GW_OK;
}

static bool creds_any(const creds *c) { return c->token[0] || c->basic; }

/* True when the request's Authorization header carries a configured
 * credential: the bearer token or a basic-auth user's password. */
static bool authorized(req *rq, creds *c)
{
    const char *h = rq->srv->lib.lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_AUTHORIZATION);
    char buf[1024];
    const char *user, *cred;
    size_t ulen, clen;
    gw__authz_scheme s = gw__authz_parse(h, buf, sizeof buf, &user, &ulen, &cred, &clen);
    bool ok = false;
    if (s == GW__AUTHZ_BEARER && c->token[0])
        ok = gw__ct_equal(c->token, strlen(c->token), cred, clen);
    else if (s == GW__AUTHZ_BASIC && c->basic)
        ok = gw__basic_auth_verify(c->basic, user, ulen, cred, clen);
    explicit_bzero(buf, sizeof buf);
    return ok;
}

static enum MHD_Result send_unauthorized(req *rq, const creds *c)
{
    const char *www[3];
    size_t n = 0;
    if (c->token[0])
        www[n++] = "Bearer realm=\"gpuwatch\"";
    if (c->basic)
        www[n++] = "Basic realm=\"gpuwatch\", charset=\"UTF-8\"";
    www[n] = NULL;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__api_error(&sb, 401, "this endpoint needs %s",
                  c->token[0] && c->basic ? "'Authorization: Bearer <token>' or HTTP basic auth"
                  : c->token[0]           ? "'Authorization: Bearer <token>'"
                                          : "HTTP basic auth (a user of basic_auth_file)");
    return send_text_h(rq, 401, &sb, GW__JSON_CONTENT_TYPE, NULL, www);
}

/* The access rules (docs/serve.md "Access"):
 *  - read_only: mutating operations answer 403, whoever asks;
 *  - credentials configured: mutating operations need one; beyond loopback
 *    every request does, unless read_only (reads are then open);
 *  - no credentials: open (gw__server_create refuses beyond loopback then,
 *    unless read_only).
 * flags: the operation's (0 for an unknown path or method). Returns true to
 * go on; otherwise the answer is queued and *ret holds MHD's result. */
static bool admitted(req *rq, unsigned flags, enum MHD_Result *ret)
{
    gw__server *srv = rq->srv;
    bool mutating = flags & GW__OPF_MUTATING;
    if (mutating && srv->cfg.read_only) {
        *ret = send_error(rq, 403, NULL, "read-only daemon: read_only = true");
        return false;
    }
    creds *c = creds_ref(srv);
    bool need = creds_any(c) && (mutating || (srv->beyond_loopback && !srv->cfg.read_only));
    bool ok = !need || authorized(rq, c);
    if (!ok)
        *ret = send_unauthorized(rq, c);
    creds_put(c);
    return ok;
}

/* -------------------------------------------------------------- handlers */

typedef enum MHD_Result (*handler_fn)(req *rq);

static enum MHD_Result h_health(req *rq) { return send_body(rq, B_HEALTH); }
static enum MHD_Result h_gpu_info(req *rq) { return send_body(rq, B_INFO); }
static enum MHD_Result h_gpu_metrics(req *rq) { return send_body(rq, B_METRICS); }
static enum MHD_Result h_gpu_processes(req *rq) { return send_body(rq, B_PROCESSES); }

/* Scrapes are counted in send_body, by negotiated format and coding. */
static enum MHD_Result h_metrics(req *rq) { return send_body(rq, B_PROM); }

static enum MHD_Result h_events(req *rq) { return start_sse(rq); }

#define ARG(k) srv->lib.lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, k)

static enum MHD_Result h_history(req *rq)
{
    gw__server *srv = rq->srv;
    gw__sampler *s = sampler_of(srv);
    pub *p = current_pub(srv);
    if (!s || !p) {
        pub_release(p);
        return send_starting(rq);
    }
    gw__api_ctx ctx;
    gw__sampler_stats st;
    api_ctx(srv, p, &ctx, &st);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    unsigned status = gw__api_history(&sb, p->snap, gw__sampler_history(s), ARG("gpu"),
                                      ARG("metric"), ARG("since"), ARG("step"), &ctx);
    pub_release(p);
    return send_json_coded(rq, status, &sb);
}

static enum MHD_Result h_events_json(req *rq)
{
    gw__server *srv = rq->srv;
    gw__sampler *s = sampler_of(srv);
    if (!s)
        return send_starting(rq);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    unsigned status = gw__api_events(&sb, gw__sampler_events(s), ARG("after"));
    return send_text(rq, status, &sb, GW__JSON_CONTENT_TYPE);
}

static enum MHD_Result h_gpu_one(req *rq)
{
    gw__server *srv = rq->srv;
    pub *p = current_pub(srv);
    if (!p)
        return send_starting(rq);
    gw__api_ctx ctx;
    gw__sampler_stats st;
    api_ctx(srv, p, &ctx, &st);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    char id[256];
    unsigned status;
    if (p->snap->cpu_only) {
        status = gw__api_error(&sb, 503, "no GPU source is available: %s", p->snap->cpu_only_reason);
    } else if (rq->id_len >= sizeof id) {
        status = gw__api_error(&sb, 400, "GPU id longer than %zu bytes", sizeof id - 1);
    } else {
        memcpy(id, rq->id, rq->id_len);
        id[rq->id_len] = '\0';
        status = gw__api_metrics_one(&sb, p->snap, id, &ctx);
    }
    pub_release(p);
    return send_text(rq, status, &sb, GW__JSON_CONTENT_TYPE);
}

/* One of the page's files (docs/web.md): 304 when the client's copy is
 * current, else the negotiated coding's shared response. */
static enum MHD_Result send_asset(req *rq, const gw__asset *a)
{
    gw__server *srv = rq->srv;
    const gw__mhd_lib *lib = &srv->lib;
    gw__encoding enc = request_encoding(rq);
    if (enc == GW__ENC_NONE)
        return send_not_acceptable(rq);
    char etag[GW__ETAG_MAX];
    gw__asset_etag(a, enc, etag);
    if (gw__etag_matches(lib->lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_IF_NONE_MATCH),
                         etag)) {
        /* a 304 carries what the 200 would have said of the cache */
        struct MHD_Response *r = lib->create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        lib->add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        lib->add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        lib->add_response_header(r, MHD_HTTP_HEADER_VARY, gw__asset_vary(a));
        enum MHD_Result ret = reply(rq, MHD_HTTP_NOT_MODIFIED, r);
        lib->destroy_response(r);
        return ret;
    }
    struct MHD_Response *r = gw__assets_response(&srv->assets, a, enc);
    return r ? reply(rq, 200, r) : send_error(rq, 500, NULL, "out of memory");
}

/* "/ui/NAME" ("/ui/" is the page). */
static enum MHD_Result h_ui(req *rq)
{
    const gw__asset *a = rq->id_len ? gw__asset_find(rq->id, rq->id_len)
                                    : gw__asset_find("index.html", 10);
    if (!a)
        return send_error(rq, 404, NULL, "no such file of the web page");
    return send_asset(rq, a);
}

/* "/": the web page for a browser (Accept prefers HTML), the JSON index of
 * the endpoints for everyone else. */
static enum MHD_Result h_index(req *rq)
{
    const gw__mhd_lib *lib = &rq->srv->lib;
    if (gw__negotiate_html(lib->lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_ACCEPT)))
        return send_asset(rq, gw__asset_find("index.html", 10));
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb,
                    "{\"name\":\"gpuwatch\",\"version\":\"" GW_VERSION_STRING "\",\"endpoints\":["
                    "\"/health\",\"/gpu/info\",\"/gpu/metrics\",\"/gpu/metrics/{index|uuid}\","
                    "\"/gpu/processes\",\"/api/v1/history?gpu=&metric=&since=&step=\","
                    "\"/api/v1/events?after=\",\"/events\",\"/metrics\",\"/api/v1/plan\","
                    "\"/api/v1/reservations\",\"/api/v1/reservations/{id}\","
                    "\"/api/v1/reservations/{id}/renew\",\"/api/v1/progress\",\"/api/v1/cluster\","
                    "\"/ui/\"]}\n");
    struct MHD_Response *r = sb.failed ? NULL : make_response(lib, sb.data, sb.len,
                                                              GW__JSON_CONTENT_TYPE);
    gw__strbuf_release(&sb);
    if (!r)
        return send_error(rq, 500, NULL, "out of memory");
    lib->add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
    enum MHD_Result ret = reply(rq, 200, r);
    lib->destroy_response(r);
    return ret;
}

static enum MHD_Result h_reload(req *rq)
{
    gw__server *srv = rq->srv;
    if (!srv->cfg.on_reload)
        return send_error(rq, 501, NULL, "reload is not available in this process");
    srv->cfg.on_reload(srv->cfg.on_reload_ctx);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb, "{\"status\":\"reloading\"}\n");
    return send_text(rq, 202, &sb, GW__JSON_CONTENT_TYPE);
}

/* ------------------------------------------------------------- placement */

/* The placement API, or NULL with the 503 answered in *ret. */
static gw_place_api *place_api(req *rq, enum MHD_Result *ret)
{
    gw__server *srv = rq->srv;
    if (srv->cfg.place)
        return srv->cfg.place;
    char msg[320];
    snprintf(msg, sizeof msg, "placement is not available: %s",
             srv->cfg.place_error[0] ? srv->cfg.place_error : "not configured");
    *ret = send_error(rq, 503, NULL, msg);
    return NULL;
}

/* Answers a placement result; a successful mutation invalidates /health. */
static enum MHD_Result send_place(req *rq, int status, gw_strbuf *sb, bool mutated)
{
    if (mutated && status >= 200 && status < 300)
        atomic_fetch_add(&rq->srv->place_gen, 1);
    gw__strbuf_putc(sb, '\n');
    if (sb->failed) {
        gw__strbuf_release(sb);
        return send_error(rq, 500, NULL, "out of memory rendering the response");
    }
    return send_text(rq, (unsigned)status, sb, GW__JSON_CONTENT_TYPE);
}

/* The reservation id of /api/v1/reservations/{id}[/renew] into id[32], or
 * false with a 404 answered in *ret (empty or longer than an id can be). */
static bool reservation_id(req *rq, char id[32], enum MHD_Result *ret)
{
    if (rq->id_len == 0 || rq->id_len >= 32) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 4096);
        gw__api_error(&sb, 404, "no such endpoint '/api/v1/reservations/%.*s' (see / for the list)",
                      (int)(rq->id_len > 200 ? 200 : rq->id_len), rq->id);
        *ret = send_text(rq, 404, &sb, GW__JSON_CONTENT_TYPE);
        return false;
    }
    memcpy(id, rq->id, rq->id_len);
    id[rq->id_len] = '\0';
    return true;
}

#define NO_CLUSTER                                                                     \
    "no cluster view: configure peers, ollama_nodes or prometheus_url (docs/cluster.md)"

/* POST /api/v1/plan and POST /api/v1/reservations: against the current
 * publication; POST /api/v1/plan?scope=cluster on the cluster view. */
static enum MHD_Result place_with_snapshot(req *rq, bool reserve)
{
    enum MHD_Result ret;
    gw_place_api *a = place_api(rq, &ret);
    if (!a)
        return ret;
    pub *p = current_pub(rq->srv);
    if (!p)
        return send_starting(rq);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    int status;
    gw__server *srv = rq->srv;
    const char *scope = reserve ? NULL : ARG("scope");
    if (scope && strcmp(scope, "cluster") != 0 && strcmp(scope, "node") != 0) {
        pub_release(p);
        gw__strbuf_release(&sb);
        return send_error(rq, 400, NULL, "scope must be node (this host) or cluster");
    }
    if (scope && strcmp(scope, "cluster") == 0) {
        pub_release(p);
        if (!srv->cfg.cluster) {
            gw__strbuf_release(&sb);
            return send_error(rq, 404, NULL, NO_CLUSTER);
        }
        status = gw_place_api_plan_cluster(a, rq->body, rq->body_len, gw__cluster_poller_plan,
                                           srv->cfg.cluster, &sb);
        return send_place(rq, status, &sb, false);
    }
    if (!reserve) {
        status = gw_place_api_plan(a, p->snap, rq->body, rq->body_len, &sb);
    } else {
        const char *key = rq->srv->lib.lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                               "Idempotency-Key");
        status = gw_place_api_reserve(a, p->snap, rq->body, rq->body_len, key, &sb);
    }
    pub_release(p);
    return send_place(rq, status, &sb, reserve);
}

static enum MHD_Result h_plan(req *rq) { return place_with_snapshot(rq, false); }

/* GET /api/v1/cluster: the cluster poller's latest view. */
static enum MHD_Result h_cluster(req *rq)
{
    gw__server *srv = rq->srv;
    if (!srv->cfg.cluster)
        return send_error(rq, 404, NULL, NO_CLUSTER);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    uint64_t polls;
    gw__cluster_poller_json(srv->cfg.cluster, &sb, &polls);
    gw__strbuf_putc(&sb, '\n');
    if (polls == 0) {
        gw__strbuf_release(&sb);
        return send_error(rq, 503, NULL, "the cluster view has not been polled yet");
    }
    return send_text(rq, 200, &sb, GW__JSON_CONTENT_TYPE);
}
static enum MHD_Result h_res_create(req *rq) { return place_with_snapshot(rq, true); }

static enum MHD_Result h_res_list(req *rq)
{
    enum MHD_Result ret;
    gw_place_api *a = place_api(rq, &ret);
    if (!a)
        return ret;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    return send_place(rq, gw_place_api_list(a, &sb), &sb, false);
}

/* GET, DELETE /api/v1/reservations/{id} and POST .../{id}/renew. */
static enum MHD_Result reservation_op(req *rq, gw__op op)
{
    enum MHD_Result ret;
    char id[32];
    if (!reservation_id(rq, id, &ret))
        return ret;
    gw_place_api *a = place_api(rq, &ret);
    if (!a)
        return ret;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    int status = op == GW__OP_RES_GET      ? gw_place_api_get(a, id, &sb)
                 : op == GW__OP_RES_DELETE ? gw_place_api_delete(a, id, &sb)
                                           : gw_place_api_renew(a, id, rq->body, rq->body_len, &sb);
    return send_place(rq, status, &sb, op != GW__OP_RES_GET);
}

static enum MHD_Result h_res_get(req *rq) { return reservation_op(rq, GW__OP_RES_GET); }
static enum MHD_Result h_res_delete(req *rq) { return reservation_op(rq, GW__OP_RES_DELETE); }
static enum MHD_Result h_res_renew(req *rq) { return reservation_op(rq, GW__OP_RES_RENEW); }

/* --------------------------------------------------------------- progress */

/* GET /api/v1/progress: {"progress": [records...]}, live records sorted by
 * (job, gpu), each with its derived "rate" and "eta_seconds". */
static enum MHD_Result h_progress_list(req *rq)
{
    gw__server *srv = rq->srv;
    gw_progress *v = NULL;
    size_t n = 0;
    gw_error err;
    pthread_mutex_lock(&srv->progress_lock);
    int rc = gw_progress_table_list(&srv->progress, gw__now_real_ns(), progress_ttl_ns(srv), &v,
                                    &n, &err);
    pthread_mutex_unlock(&srv->progress_lock);
    if (rc != GW_OK)
        return send_error(rq, 500, NULL, err.message);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb, "{\"progress\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            gw__strbuf_putc(&sb, ',');
        gw_progress_to_json(&v[i], true, &sb);
    }
    gw__strbuf_puts(&sb, "]}\n");
    free(v);
    if (sb.failed) {
        gw__strbuf_release(&sb);
        return send_error(rq, 500, NULL, "out of memory rendering the response");
    }
    return send_text(rq, 200, &sb, GW__JSON_CONTENT_TYPE);
}

/* POST /api/v1/progress: one record (docs/progress.md). 400 naming what is
 * wrong with it, 413 over its size, 503 when the table is full; 200 with
 * the record as stored (its start kept from earlier reports). */
static enum MHD_Result h_progress_report(req *rq)
{
    gw__server *srv = rq->srv;
    gw_progress rec, stored;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_progress_from_json(rq->body, rq->body ? rq->body_len : 0, &rec, &err);
    if (rc != GW_OK)
        return send_error(rq, rc == GW_ERANGE ? 413 : 400, NULL, err.message);
    pthread_mutex_lock(&srv->progress_lock);
    rc = gw_progress_table_put(&srv->progress, &rec, gw__now_real_ns(), progress_ttl_ns(srv),
                               &stored, &err);
    pthread_mutex_unlock(&srv->progress_lock);
    if (rc != GW_OK)
        return send_error(rq, rc == GW_ERANGE ? 503 : rc == GW_EINVAL ? 400 : 500, NULL,
                          err.message);
    atomic_fetch_add(&srv->progress_gen, 1);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_progress_to_json(&stored, true, &sb);
    gw__strbuf_putc(&sb, '\n');
    if (sb.failed) {
        gw__strbuf_release(&sb);
        return send_error(rq, 500, NULL, "out of memory rendering the response");
    }
    return send_text(rq, 200, &sb, GW__JSON_CONTENT_TYPE);
}

/* One handler per operation of routes.h (gw__server_check: none missing). */
static const handler_fn handlers[GW__OP_COUNT] = {
    [GW__OP_INDEX] = h_index,
    [GW__OP_HEALTH] = h_health,
    [GW__OP_GPU_INFO] = h_gpu_info,
    [GW__OP_GPU_METRICS] = h_gpu_metrics,
    [GW__OP_GPU_ONE] = h_gpu_one,
    [GW__OP_GPU_PROCESSES] = h_gpu_processes,
    [GW__OP_METRICS] = h_metrics,
    [GW__OP_HISTORY] = h_history,
    [GW__OP_EVENTS_JSON] = h_events_json,
    [GW__OP_EVENTS] = h_events,
    [GW__OP_RELOAD] = h_reload,
    [GW__OP_PLAN] = h_plan,
    [GW__OP_CLUSTER] = h_cluster,
    [GW__OP_UI] = h_ui,
    [GW__OP_RES_LIST] = h_res_list,
    [GW__OP_RES_CREATE] = h_res_create,
    [GW__OP_RES_GET] = h_res_get,
    [GW__OP_RES_DELETE] = h_res_delete,
    [GW__OP_RES_RENEW] = h_res_renew,
    [GW__OP_PROGRESS_LIST] = h_progress_list,
    [GW__OP_PROGRESS_REPORT] = h_progress_report,
};

/* ---------------------------------------------------------- request path */

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    uintptr_t v = (uintptr_t)*con_cls;
    if (v && !(v & 1)) {
        body_req *b = *con_cls;
        gw__strbuf_release(&b->sb);
        free(b);
    }
    *con_cls = NULL;
}

static enum MHD_Result send_too_large(req *rq)
{
    char msg[96];
    snprintf(msg, sizeof msg, "request body too large (at most %u bytes)", GW__MAX_BODY_BYTES);
    return send_error(rq, 413, NULL, msg);
}

/* First call (headers in): picks how the body is handled. */
static enum MHD_Result begin(req *rq, bool keep_body, void **con_cls)
{
    if (!keep_body) {
        *con_cls = (void *)(uintptr_t)1;
        return MHD_YES;
    }
    body_req *b = calloc(1, sizeof *b);
    if (!b)
        return send_error(rq, 500, NULL, "out of memory");
    gw__strbuf_init(&b->sb, GW__MAX_BODY_BYTES + 1);
    *con_cls = b;
    return MHD_YES;
}

/* A chunk of body: kept (b) or counted and dropped; 413 once over the cap
 * (for a kept body only after draining up to GW__DRAIN_BODY_BYTES). */
static enum MHD_Result upload(req *rq, body_req *b, void **con_cls, const char *data, size_t *size)
{
    size_t n = *size, seen;
    *size = 0;
    if (b) {
        seen = b->seen + n; /* b->seen <= GW__DRAIN_BODY_BYTES: no overflow */
        if (seen <= GW__MAX_BODY_BYTES)
            gw__strbuf_append(&b->sb, data, n); /* failure lands in sb.failed: 500 at the end */
        b->seen = seen;
        if (seen <= GW__DRAIN_BODY_BYTES)
            return MHD_YES; /* a body over the cap gets its 413 once it is in */
    } else {
        seen = ((uintptr_t)*con_cls - 1) / 2 + n;
        if (seen > GW__MAX_BODY_BYTES)
            seen = GW__MAX_BODY_BYTES + 1; /* the counter never grows past the cap */
        *con_cls = (void *)(uintptr_t)(1 + 2 * (uintptr_t)seen);
    }
    return seen > GW__MAX_BODY_BYTES ? send_too_large(rq) : MHD_YES;
}

/* The whole request is in: access rules, then the operation's handler. */
static enum MHD_Result dispatch(req *rq, gw__match_result m, gw__op op)
{
    enum MHD_Result ret;
    if (!admitted(rq, m == GW__MATCH_OK ? gw__op_get(op)->flags : 0, &ret))
        return ret;
    if (m == GW__MATCH_OK)
        return handlers[op](rq);
    if (m == GW__MATCH_BAD_METHOD) {
        const char *allow = gw__route_allow(rq->route);
        char msg[128];
        snprintf(msg, sizeof msg, "method %.16s not allowed; use %s", rq->method, allow);
        return send_error(rq, 405, allow, msg);
    }
    gw_strbuf sb;
    gw__strbuf_init(&sb, 4096);
    gw__api_error(&sb, 404, "no such endpoint '%.200s' (see / for the list)", rq->url);
    return send_text(rq, 404, &sb, GW__JSON_CONTENT_TYPE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    /* Answer only once the whole request is in: a response queued on the
     * first call (headers only) makes MHD close the connection afterwards,
     * which would cost every keep-alive scraper a new TCP connection per
     * request. */
    req rq = {.srv = cls, .conn = conn, .method = method, .url = url};
    gw__op op = GW__OP_COUNT;
    gw__match_result m = gw__route_match(method, url, &rq.route, &op, &rq.id, &rq.id_len);
    uintptr_t state = (uintptr_t)*con_cls;
    if (state == 0)
        return begin(&rq, m == GW__MATCH_OK && (gw__op_get(op)->flags & GW__OPF_BODY), con_cls);
    body_req *b = (state & 1) ? NULL : (body_req *)*con_cls;
    if (*upload_data_size)
        return upload(&rq, b, con_cls, upload_data, upload_data_size);
    if (b && b->seen > GW__MAX_BODY_BYTES)
        return send_too_large(&rq);
    if (b && b->sb.failed)
        return send_error(&rq, 500, NULL, "out of memory");
    if (b) {
        rq.body = b->sb.data;
        rq.body_len = b->sb.len;
    }
    return dispatch(&rq, m, op);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    gw__server *srv = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    pthread_mutex_lock(&srv->cap_lock);
    if (srv->capturing && !srv->cap_msg[0]) {
        gw__strlcpy(srv->cap_msg, line, sizeof srv->cap_msg);
        size_t n = strlen(srv->cap_msg);
        if (n && srv->cap_msg[n - 1] == '.') /* it is quoted inside a sentence */
            srv->cap_msg[n - 1] = '\0';
    }
    pthread_mutex_unlock(&srv->cap_lock);
    gw__logf(srv->log, GW__LOG_WARNING, "http: %s", line);
}

/* ------------------------------------------------------------- lifecycle */

/* Starts one MHD daemon: on srv->addr (fd < 0) or on the listening socket
 * fd, which MHD then owns whatever happens (it closes it on failure and at
 * stop); with TLS when pem holds a certificate (kept alive by the caller as
 * long as the daemon runs). NULL on failure with the reason in why[cap]
 * (MHD's first message while starting, e.g. GnuTLS's on the certificate). */
static struct MHD_Daemon *start_mhd(gw__server *srv, int fd, const gw__tls_pem *pem, char *why,
                                    size_t cap)
{
    const gw__server_config *cfg = &srv->cfg;
    /* TURBO: read/write/accept opportunistically before asking epoll (fewer
     * syscalls for keep-alive scrapers); safe with a thread pool. */
    unsigned flags = MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    /* A TLS daemon may be quiesced by a reload. libmicrohttpd 0.9.75's
     * MHD_quiesce_daemon races an epoll worker that is awake: both remove
     * the listening socket from the worker's epoll set, and the loser
     * aborts the process ("Failed to remove listen FD from epoll set"; seen
     * in serve-door-tlsreload). With poll() quiescing only flags the
     * workers. Plain-HTTP daemons are never quiesced and keep epoll. */
    flags |= pem && pem->cert ? MHD_USE_POLL_INTERNAL_THREAD : MHD_USE_AUTO_INTERNAL_THREAD;
    if (srv->addr.v6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem where[4], *w = where;
    if (fd >= 0)
        *w++ = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
    else
        *w++ = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)&srv->addr.ss};
    if (pem && pem->cert) {
        flags |= MHD_USE_TLS;
        *w++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, pem->key};
        *w++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, pem->cert};
    }
    *w = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    pthread_mutex_lock(&srv->cap_lock);
    srv->capturing = true;
    srv->cap_msg[0] = '\0';
    pthread_mutex_unlock(&srv->cap_lock);
    errno = 0;
    struct MHD_Daemon *d = srv->lib.start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)NULL,
        /* a "pool" of one is the plain internal thread */
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 1 ? cfg->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_request_bytes,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_ARRAY, where, MHD_OPTION_END);
    int e = errno;
    pthread_mutex_lock(&srv->cap_lock);
    srv->capturing = false;
    gw__strlcpy(why, srv->cap_msg, cap);
    pthread_mutex_unlock(&srv->cap_lock);
    if (!d && !why[0])
        snprintf(why, cap, "%s", e ? strerror(e) : "libmicrohttpd refused to start");
    return d;
}

/* The access and TLS settings of cfg are consistent; GW_EINVAL says why. */
static int check_config(const gw__server_config *cfg, bool beyond, gw_error *err)
{
    if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0])
        return gw__error_set(err, GW_EINVAL, "TLS needs both tls_cert_file and tls_key_file (%s is unset)",
                             cfg->tls_cert_file[0] ? "tls_key_file" : "tls_cert_file");
    if (beyond && !cfg->token[0] && !cfg->basic_auth_file[0] && !cfg->read_only)
        return gw__error_set(err, GW_EINVAL,
                             "refusing to listen on '%s' (beyond loopback) without credentials: set "
                             "'token' / 'token_file' or 'basic_auth_file' (every route then needs "
                             "one), or 'read_only = true' (--read-only: reads open, mutating routes "
                             "refused, command lines withheld)",
                             cfg->listen);
    if (cfg->threads < 1 || cfg->threads > 64 || cfg->max_connections < 1 ||
        cfg->max_request_bytes < 2048)
        return gw__error_set(err, GW_EINVAL,
                             "http limits out of range: threads 1..64, max_connections >= 1, "
                             "max_request_bytes >= 2048");
    return GW_OK;
}

/* Reads the TLS files of cfg into *pem (NULLs when TLS is off) and checks
 * the library can serve TLS. */
static int load_tls(gw__server *srv, const gw__server_config *cfg, gw__tls_pem *pem, gw_error *err)
{
    memset(pem, 0, sizeof *pem);
    if (!cfg->tls_cert_file[0])
        return GW_OK;
    if (srv->lib.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return gw__error_set(err, GW_EINVAL,
                             "tls_cert_file is set but this libmicrohttpd was built without TLS "
                             "(MHD_FEATURE_TLS): install one built with GnuTLS (Debian's "
                             "libmicrohttpd12 is), or unset tls_cert_file and tls_key_file");
    return gw__tls_pem_load(cfg->tls_cert_file, cfg->tls_key_file, pem, err);
}

static void server_free_parts(gw__server *srv)
{
    creds_put(srv->creds);
    gw__tls_pem_release(&srv->pem);
    gw__assets_free(&srv->assets); /* before the library that made them */
    gw__mhd_unload(&srv->lib);
    pthread_mutex_destroy(&srv->cap_lock);
    pthread_mutex_destroy(&srv->lock);
    pthread_mutex_destroy(&srv->progress_lock);
    gw_progress_table_release(&srv->progress);
    free(srv);
}

/* Handlers cover the route table (invariant of routes.h). */
__attribute__((unused)) static bool handlers_check(void)
{
    for (unsigned i = 0; i < GW__OP_COUNT; i++)
        if (!handlers[i])
            return false;
    return gw__routes_check();
}

int gw__server_create(gw__server **out, const gw__server_config *cfg, gw__log *log,
                      gw_error *err)
{
    *out = NULL;
    assert(handlers_check());
    assert(gw__assets_check());
    addr a;
    if (!parse_listen(cfg->listen, &a))
        return gw__error_set(err, GW_EINVAL,
                             "listen address '%s' is not HOST:PORT (IPv4, or [IPv6]:PORT; port 0-65535)",
                             cfg->listen);
    bool beyond = !gw__listen_is_loopback(cfg->listen);
    int rc = check_config(cfg, beyond, err);
    if (rc != GW_OK)
        return rc;
    gw__server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return gw__error_set(err, GW_ENOMEM, "http: out of memory");
    srv->cfg = *cfg;
    srv->log = log;
    srv->addr = a;
    srv->beyond_loopback = beyond;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_mutex_init(&srv->cap_lock, NULL);
    pthread_mutex_init(&srv->progress_lock, NULL);
    srv->progress.max = GW_PROGRESS_MAX_RECORDS;
    atomic_init(&srv->progress_ttl_s, cfg->progress_ttl_s);
    rc = creds_load(cfg, &srv->creds, err);
    if (rc == GW_OK)
        rc = gw__mhd_load(&srv->lib, getenv("GPUWATCH_MHD_LIBRARY"), err);
    if (rc == GW_OK)
        rc = load_tls(srv, cfg, &srv->pem, err);
    if (rc == GW_OK)
        rc = gw__assets_init(&srv->assets, &srv->lib, err);
    if (rc != GW_OK) {
        server_free_parts(srv);
        return rc;
    }
    srv->started_real_ns = gw__now_real_ns();
    srv->started_mono_ns = gw__now_mono_ns();
    char why[256];
    srv->mhd = start_mhd(srv, -1, &srv->pem, why, sizeof why);
    if (!srv->mhd) {
        /* With TLS on, a start can fail on the certificate (GnuTLS says so
         * in MHD's first message) or on the socket, like without. */
        if (srv->pem.cert && (strstr(why, "TLS") || strstr(why, "certificate") || strstr(why, "key")))
            rc = gw__error_set(err, GW_EINVAL, "cannot serve TLS on %s with tls_cert_file %s and "
                               "tls_key_file %s: %s", cfg->listen, cfg->tls_cert_file,
                               cfg->tls_key_file, why);
        else
            rc = gw__error_set(err, GW_EIO, "cannot listen on %s: %s", cfg->listen, why);
        server_free_parts(srv);
        return rc;
    }
    const union MHD_DaemonInfo *info = srv->lib.get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    *out = srv;
    return GW_OK;
}

uint16_t gw__server_port(const gw__server *srv) { return srv->port; }

bool gw__server_tls(const gw__server *srv) { return srv->pem.cert != NULL; }

void gw__server_attach_sampler(gw__server *srv, gw__sampler *sampler)
{
    pthread_mutex_lock(&srv->lock);
    srv->sampler = sampler;
    pthread_mutex_unlock(&srv->lock);
}

/* Serves cfg's TLS files from now on: a new daemon on the same socket, the
 * old one retired. Anything wrong keeps the running daemon and logs why. */
static void tls_reload(gw__server *srv, const gw__server_config *cfg)
{
    gw__tls_pem pem;
    gw_error e;
    if (load_tls(srv, cfg, &pem, &e) != GW_OK) {
        gw__logf(srv->log, GW__LOG_ERROR, "reload: %s; keeping the running %s", e.message,
                 srv->pem.cert ? "certificate" : "listener (plain HTTP)");
        return;
    }
    if (gw__tls_pem_equal(&pem, &srv->pem)) {
        gw__tls_pem_release(&pem);
        return; /* same files, same bytes: nothing to do */
    }
    if (!pem.cert != !srv->pem.cert) {
        /* Only TLS daemons are ever quiesced (start_mhd says why). */
        gw__logf(srv->log, GW__LOG_WARNING, "reload: TLS turned %s; it takes effect after a restart",
                 pem.cert ? "on" : "off");
        gw__tls_pem_release(&pem);
        return;
    }
    gw__server_reap(srv);
    const union MHD_DaemonInfo *fi = srv->lib.get_daemon_info(srv->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    int fd = fi ? fcntl(fi->listen_fd, F_DUPFD_CLOEXEC, 0) : -1;
    const char *why_not = srv->n_retired == GW__MAX_RETIRED
                              ? "too many daemons from earlier reloads still hold connections"
                          : fd < 0 ? "cannot duplicate the listening socket"
                                   : NULL;
    char why[256];
    struct MHD_Daemon *d = NULL;
    if (!why_not) {
        d = start_mhd(srv, fd, &pem, why, sizeof why); /* fd is MHD's now */
        why_not = d ? NULL : why;
    } else if (fd >= 0) {
        close(fd);
    }
    if (!d) {
        gw__logf(srv->log, GW__LOG_ERROR,
                 "reload: cannot serve tls_cert_file %s / tls_key_file %s: %s; keeping the running %s",
                 cfg->tls_cert_file, cfg->tls_key_file, why_not,
                 srv->pem.cert ? "certificate" : "listener (plain HTTP)");
        gw__tls_pem_release(&pem);
        return;
    }
    /* The new daemon accepts; the old one stops accepting (the descriptor
     * it hands back is ours to close: the new daemon has its own dup). */
    int old_fd = srv->lib.quiesce_daemon(srv->mhd);
    if (old_fd >= 0)
        close(old_fd);
    srv->retired[srv->n_retired++] = (retired){srv->mhd, srv->pem};
    srv->mhd = d;
    srv->pem = pem;
    gw__logf(srv->log, GW__LOG_NOTICE, "reload: serving %s", pem.cert ? cfg->tls_cert_file : "plain HTTP");
}

void gw__server_reconfigure(gw__server *srv, const gw__server_config *cfg)
{
    pthread_mutex_lock(&srv->lock);
    srv->cfg.families = cfg->families;
    srv->cfg.metrics_processes = cfg->metrics_processes;
    srv->cfg.sse_max_clients = cfg->sse_max_clients;
    pthread_mutex_unlock(&srv->lock);
    atomic_store(&srv->progress_ttl_s, cfg->progress_ttl_s);
    creds *c = NULL;
    gw_error e;
    int rc = check_config(cfg, srv->beyond_loopback, &e);
    if (rc == GW_OK)
        rc = creds_load(cfg, &c, &e);
    if (rc != GW_OK) {
        gw__logf(srv->log, GW__LOG_ERROR, "reload: %s; keeping the running credentials and TLS",
                 e.message);
        return;
    }
    pthread_mutex_lock(&srv->lock);
    creds *old = srv->creds;
    srv->creds = c;
    memcpy(srv->cfg.token, cfg->token, sizeof srv->cfg.token); /* kept equal to creds' */
    pthread_mutex_unlock(&srv->lock);
    creds_put(old);
    tls_reload(srv, cfg);
}

void gw__server_reap(gw__server *srv)
{
    size_t k = 0;
    for (size_t i = 0; i < srv->n_retired; i++) {
        retired *r = &srv->retired[i];
        const union MHD_DaemonInfo *ci =
            srv->lib.get_daemon_info(r->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (ci && ci->num_connections == 0) {
            srv->lib.stop_daemon(r->mhd);
            gw__tls_pem_release(&r->pem);
        } else {
            srv->retired[k++] = *r;
        }
    }
    srv->n_retired = k;
}

void gw__server_stop(gw__server *srv)
{
    if (!srv || !srv->mhd)
        return;
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    for (sse_client *c = srv->waiting; c; c = c->next) {
        c->suspended = false;
        srv->lib.resume_connection(c->conn);
    }
    srv->waiting = NULL;
    pthread_mutex_unlock(&srv->lock);
    srv->lib.stop_daemon(srv->mhd);
    srv->mhd = NULL;
    for (size_t i = 0; i < srv->n_retired; i++) {
        srv->lib.stop_daemon(srv->retired[i].mhd);
        gw__tls_pem_release(&srv->retired[i].pem);
    }
    srv->n_retired = 0;
    pthread_mutex_lock(&srv->lock);
    srv->sampler = NULL;
    pthread_mutex_unlock(&srv->lock);
}

void gw__server_free(gw__server *srv)
{
    if (!srv)
        return;
    gw__server_stop(srv);
    pub_release(srv->pub);
    server_free_parts(srv);
}
