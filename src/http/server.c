/* server.c — see server.h for the lifecycle and invariants.
 *
 * Request path: MHD calls on_request at least twice per request; we answer
 * once the whole request is in (keep-alive stays possible). Bodies are
 * discarded (over 64 KiB is 413) except for the placement routes that take
 * one (POST /api/v1/plan, /api/v1/reservations...), whose body is collected
 * (at most 64 KiB, 413 beyond) and handed to src/place/api.h. *con_cls is
 * either an odd counter (1 + 2 * bytes discarded, no allocation) or a
 * body_req (malloc'd, so even), freed in on_completed. Cached bodies are MHD response
 * objects owned by the publication and queued for every request: MHD counts
 * its own references, so the bytes are shared, never copied per request.
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
 * in while holding its own.
 */
#include "http/server.h"
#include "http/api.h"
#include "http/mhd_lib.h"
#include "http/negotiate.h"
#include "place/api.h"

#include <arpa/inet.h>
#include <errno.h>
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

/* A collected request body (placement routes). */
typedef struct body_req {
    char *data;
    size_t len, cap;
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
} sse_client;

struct gw__server {
    gw__server_config cfg;
    gw__mhd_lib lib; /* libmicrohttpd, loaded by gw__server_start */
    gw__log *log;
    struct MHD_Daemon *mhd;
    uint16_t port;
    int64_t started_real_ns, started_mono_ns;

    pthread_mutex_t lock; /* pub, gen, sampler, waiting, sse count, cfg reloadables */
    pub *pub;
    uint64_t gen;
    int64_t last_good_ns;
    gw__sampler *sampler;
    sse_client *waiting;
    unsigned sse_clients;
    bool stopping;

    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t scrapes[GW__FMT_COUNT][GW__ENC_COUNT]; /* /metrics answers */
    /* Bumped after every reservation change made through the API: a cached
     * /health rendered before it is not served (its placement member is old). */
    atomic_uint_fast64_t place_gen;
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
    c->families = GW__PROM_NATIVE;
}

/* ------------------------------------------------------------- addresses */

typedef struct addr {
    struct sockaddr_storage ss;
    bool v6;
} addr;

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

static void api_ctx(gw__server *srv, const pub *p, gw__api_ctx *ctx, gw__sampler_stats *st)
{
    memset(ctx, 0, sizeof *ctx);
    if (srv->cfg.place) {
        ctx->placement = placement_health;
        ctx->placement_cls = srv->cfg.place;
    }
    ctx->stale = p->stale;
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

/* /metrics as Prometheus text: the snapshot plus the daemon's own figures
 * and, with a placement API, its ledger's reservations per GPU. */
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
    self.http_requests = atomic_load(&srv->requests);
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
    /* One allocation for both per-GPU arrays; without it (or a readable
     * ledger) the placement families are left out. */
    size_t n = p->snap->n_devices;
    uint64_t *place = srv->cfg.place && n ? calloc(2 * n, sizeof *place) : NULL;
    if (place && gw_place_api_device_totals(srv->cfg.place, p->snap, place, place + n) == GW_OK) {
        self.place_reservations = place;
        self.place_bytes = place + n;
    }
    gw__render_prometheus(sb, p->snap, &self, p->families);
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

/* Under p->lock: renders text[kind] unless it is there. False: out of
 * memory (nothing stored). */
static bool ensure_text(gw__server *srv, pub *p, int kind)
{
    if (p->text[kind])
        return true;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    uint64_t place_gen = atomic_load(&srv->place_gen);
    unsigned status;
    if (kind == B_OPENMETRICS) {
        /* The Prometheus text of this publication, rewritten: both formats
         * show the same values (counters, ages) within one snapshot. */
        if (!ensure_text(srv, p, B_PROM))
            return false;
        gw__prom_to_openmetrics(&sb, p->text[B_PROM], p->len[B_PROM]);
        status = p->status[B_PROM];
        place_gen = p->place_gen[B_PROM];
    } else {
        status = render(srv, p, kind, &sb);
    }
    p->text[kind] = gw__strbuf_detach(&sb, &p->len[kind]);
    gw__strbuf_release(&sb);
    if (!p->text[kind])
        return false;
    p->status[kind] = status;
    /* Written once, with the text it describes; published to readers of
     * resp[kind][*] by the atomic store that follows. */
    p->place_gen[kind] = place_gen;
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

static enum MHD_Result send_text(const gw__mhd_lib *lib, struct MHD_Connection *conn,
                                 unsigned status, gw_strbuf *sb, const char *type,
                                 const char *allow)
{
    struct MHD_Response *r = make_response(lib, sb->failed || !sb->data ? "" : sb->data,
                                           sb->failed ? 0 : sb->len, type);
    gw__strbuf_release(sb);
    if (!r)
        return MHD_NO;
    if (allow)
        lib->add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = lib->queue_response(conn, status, r);
    lib->destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(const gw__mhd_lib *lib, struct MHD_Connection *conn,
                                  unsigned status, const char *allow, const char *msg)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__api_error(&sb, status, "%s", msg);
    return send_text(lib, conn, status, &sb, GW__JSON_CONTENT_TYPE, allow);
}

/* Reservations changed since p's cached body `kind` was rendered: that body
 * shows an old placement (/health's member, /metrics' reservation gauges),
 * so this request gets its own rendering, until the next publication. */
static enum MHD_Result send_fresh(gw__server *srv, struct MHD_Connection *conn, pub *p, int kind,
                                  gw__encoding enc)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    unsigned status = render(srv, p, kind, &sb);
    struct MHD_Response *r =
        sb.failed ? NULL : make_variant(&srv->lib, kind, enc, sb.data ? sb.data : "", sb.len);
    gw__strbuf_release(&sb);
    if (!r)
        return send_error(&srv->lib, conn, 500, NULL, "out of memory rendering the response");
    enum MHD_Result ret = srv->lib.queue_response(conn, status, r);
    srv->lib.destroy_response(r);
    return ret;
}

/* A cached body in the representation the request negotiates: coding from
 * Accept-Encoding (406 when neither gzip nor identity is acceptable) and,
 * for /metrics (B_PROM), the format from Accept. */
static enum MHD_Result send_body(gw__server *srv, struct MHD_Connection *conn, int kind)
{
    const gw__mhd_lib *lib = &srv->lib;
    gw__encoding enc = gw__negotiate_encoding(
        lib->lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    if (enc == GW__ENC_NONE)
        return send_error(lib, conn, MHD_HTTP_NOT_ACCEPTABLE, NULL,
                          "no acceptable content coding: this server offers gzip and identity");
    bool metrics = kind == B_PROM;
    if (metrics && gw__negotiate_format(lib->lookup_connection_value(
                       conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT)) == GW__FMT_OPENMETRICS)
        kind = B_OPENMETRICS;
    pub *p = current_pub(srv);
    if (!p)
        return send_error(lib, conn, 503, NULL, "starting: no snapshot has been taken yet");
    if (metrics)
        atomic_fetch_add(&srv->scrapes[kind == B_OPENMETRICS][enc], 1);
    struct MHD_Response *r = body(srv, p, kind, enc);
    enum MHD_Result ret;
    if (r && srv->cfg.place && (kind == B_HEALTH || metrics) &&
        p->place_gen[kind] != atomic_load(&srv->place_gen))
        ret = send_fresh(srv, conn, p, kind, enc);
    else
        ret = r ? lib->queue_response(conn, p->status[kind], r)
                : send_error(lib, conn, 500, NULL, "out of memory rendering the response");
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
            if (body(srv, p, B_HEALTH, GW__ENC_IDENTITY) && p->text[B_HEALTH]) {
                size_t len = p->len[B_HEALTH];
                while (len && p->text[B_HEALTH][len - 1] == '\n')
                    len--;
                gw__strbuf_puts(&c->pending, "event: snapshot\ndata: ");
                gw__strbuf_append(&c->pending, p->text[B_HEALTH], len);
                gw__strbuf_puts(&c->pending, "\n\n");
            }
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

static enum MHD_Result start_sse(gw__server *srv, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&srv->lock);
    bool full = srv->sse_clients >= srv->cfg.sse_max_clients;
    gw__sampler *s = srv->sampler;
    if (!full)
        srv->sse_clients++;
    pthread_mutex_unlock(&srv->lock);
    if (full)
        return send_error(&srv->lib, conn, 503, NULL, "too many /events streams open; try again later");
    sse_client *c = calloc(1, sizeof *c);
    struct MHD_Response *r = NULL;
    if (c) {
        c->srv = srv;
        c->conn = conn;
        gw__strbuf_init(&c->pending, 1u << 20);
        c->event_seq = s ? gw__events_last_seq(gw__sampler_events(s)) : 0;
        r = srv->lib.create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
    }
    if (!r) {
        free(c);
        pthread_mutex_lock(&srv->lock);
        srv->sse_clients--;
        pthread_mutex_unlock(&srv->lock);
        return send_error(&srv->lib, conn, 500, NULL, "out of memory");
    }
    srv->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    srv->lib.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    srv->lib.add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = srv->lib.queue_response(conn, 200, r);
    srv->lib.destroy_response(r);
    return ret;
}

/* ---------------------------------------------------------------- routes */

static bool token_ok(gw__server *srv, struct MHD_Connection *conn)
{
    char token[sizeof srv->cfg.token];
    pthread_mutex_lock(&srv->lock);
    memcpy(token, srv->cfg.token, sizeof token);
    pthread_mutex_unlock(&srv->lock);
    if (!token[0])
        return true;
    const char *h = srv->lib.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t n = strlen(token), m = strlen(h);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(token[i] ^ (i < m ? h[i] : 0));
    return diff == 0;
}

static enum MHD_Result route_history(gw__server *srv, struct MHD_Connection *conn)
{
    gw__sampler *s = sampler_of(srv);
    pub *p = current_pub(srv);
    if (!s || !p) {
        pub_release(p);
        return send_error(&srv->lib, conn, 503, NULL, "starting: no snapshot has been taken yet");
    }
    gw__api_ctx ctx;
    gw__sampler_stats st;
    api_ctx(srv, p, &ctx, &st);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
#define ARG(k) srv->lib.lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, k)
    unsigned status = gw__api_history(&sb, p->snap, gw__sampler_history(s), ARG("gpu"),
                                      ARG("metric"), ARG("since"), ARG("step"), &ctx);
    pub_release(p);
    return send_text(&srv->lib, conn, status, &sb, GW__JSON_CONTENT_TYPE, NULL);
}

static enum MHD_Result route_events_json(gw__server *srv, struct MHD_Connection *conn)
{
    gw__sampler *s = sampler_of(srv);
    if (!s)
        return send_error(&srv->lib, conn, 503, NULL, "starting: no snapshot has been taken yet");
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    unsigned status = gw__api_events(&sb, gw__sampler_events(s), ARG("after"));
    return send_text(&srv->lib, conn, status, &sb, GW__JSON_CONTENT_TYPE, NULL);
}

static enum MHD_Result route_gpu_one(gw__server *srv, struct MHD_Connection *conn, const char *id)
{
    pub *p = current_pub(srv);
    if (!p)
        return send_error(&srv->lib, conn, 503, NULL, "starting: no snapshot has been taken yet");
    gw__api_ctx ctx;
    gw__sampler_stats st;
    api_ctx(srv, p, &ctx, &st);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    unsigned status = p->snap->cpu_only
                          ? gw__api_error(&sb, 503, "no GPU source is available: %s",
                                          p->snap->cpu_only_reason)
                          : gw__api_metrics_one(&sb, p->snap, id, &ctx);
    pub_release(p);
    return send_text(&srv->lib, conn, status, &sb, GW__JSON_CONTENT_TYPE, NULL);
}

static enum MHD_Result route_index(gw__server *srv, struct MHD_Connection *conn)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb,
                    "{\"name\":\"gpuwatch\",\"version\":\"" GW_VERSION_STRING "\",\"endpoints\":["
                    "\"/health\",\"/gpu/info\",\"/gpu/metrics\",\"/gpu/metrics/{index|uuid}\","
                    "\"/gpu/processes\",\"/api/v1/history?gpu=&metric=&since=&step=\","
                    "\"/api/v1/events?after=\",\"/events\",\"/metrics\",\"/api/v1/plan\","
                    "\"/api/v1/reservations\",\"/api/v1/reservations/{id}\","
                    "\"/api/v1/reservations/{id}/renew\"]}\n");
    return send_text(&srv->lib, conn, 200, &sb, GW__JSON_CONTENT_TYPE, NULL);
}

static enum MHD_Result route_reload(gw__server *srv, struct MHD_Connection *conn)
{
    if (!token_ok(srv, conn))
        return send_error(&srv->lib, conn, 401, NULL, "this endpoint needs 'Authorization: Bearer <token>'");
    if (!srv->cfg.on_reload)
        return send_error(&srv->lib, conn, 501, NULL, "reload is not available in this process");
    srv->cfg.on_reload(srv->cfg.on_reload_ctx);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb, "{\"status\":\"reloading\"}\n");
    return send_text(&srv->lib, conn, 202, &sb, GW__JSON_CONTENT_TYPE, NULL);
}

/* ------------------------------------------------------------- placement */

#define PLACE_PREFIX "/api/v1/reservations"

/* True for the requests whose body is collected for src/place/api.h. */
static bool takes_body(const char *url, const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_POST) == 0 &&
           (strcmp(url, "/api/v1/plan") == 0 || strncmp(url, PLACE_PREFIX, strlen(PLACE_PREFIX)) == 0);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    uintptr_t v = (uintptr_t)*con_cls;
    if (v && !(v & 1)) {
        body_req *b = *con_cls;
        free(b->data);
        free(b);
    }
    *con_cls = NULL;
}

static enum MHD_Result send_place(gw__server *srv, struct MHD_Connection *conn, int status,
                                  gw_strbuf *sb, bool mutated)
{
    if (mutated && status >= 200 && status < 300)
        atomic_fetch_add(&srv->place_gen, 1);
    gw__strbuf_putc(sb, '\n');
    if (sb->failed) {
        gw__strbuf_release(sb);
        return send_error(&srv->lib, conn, 500, NULL, "out of memory rendering the response");
    }
    return send_text(&srv->lib, conn, (unsigned)status, sb, GW__JSON_CONTENT_TYPE, NULL);
}

/* /api/v1/plan and /api/v1/reservations[/{id}[/renew]]. rest: the URL after
 * PLACE_PREFIX (NULL for /api/v1/plan). */
static enum MHD_Result route_place(gw__server *srv, struct MHD_Connection *conn, const char *rest,
                                   const char *method, const body_req *b)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    bool del = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
    enum { PLAN, COLLECTION, ONE, RENEW } kind;
    char id[32] = "";
    const char *allow;
    if (!rest) {
        kind = PLAN;
        allow = "POST";
    } else if (!*rest) {
        kind = COLLECTION;
        allow = "GET, HEAD, POST";
    } else {
        /* "/{id}" or "/{id}/renew" */
        const char *s = rest + 1, *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (rest[0] != '/' || n == 0 || n >= sizeof id || (slash && strcmp(slash, "/renew") != 0)) {
            gw_strbuf sb;
            gw__strbuf_init(&sb, 4096);
            gw__api_error(&sb, 404, "no such endpoint '%.200s%.200s' (see / for the list)",
                          PLACE_PREFIX, rest);
            return send_text(&srv->lib, conn, 404, &sb, GW__JSON_CONTENT_TYPE, NULL);
        }
        memcpy(id, s, n);
        id[n] = '\0';
        kind = slash ? RENEW : ONE;
        allow = slash ? "POST" : "GET, HEAD, DELETE";
    }
    bool ok_method = kind == PLAN || kind == RENEW ? post
                     : kind == COLLECTION          ? get || post
                                                   : get || del;
    if (!ok_method) {
        char msg[128];
        snprintf(msg, sizeof msg, "method %.16s not allowed; use %s", method, allow);
        return send_error(&srv->lib, conn, 405, allow, msg);
    }
    bool mutating = kind != PLAN && !get;
    if (mutating && !token_ok(srv, conn))
        return send_error(&srv->lib, conn, 401, NULL, "this endpoint needs 'Authorization: Bearer <token>'");
    gw_place_api *a = srv->cfg.place;
    if (!a) {
        char msg[320];
        snprintf(msg, sizeof msg, "placement is not available: %s",
                 srv->cfg.place_error[0] ? srv->cfg.place_error : "not configured");
        return send_error(&srv->lib, conn, 503, NULL, msg);
    }
    const char *data = b ? b->data : NULL;
    size_t len = b ? b->len : 0;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    if (kind == PLAN || (kind == COLLECTION && post)) {
        pub *p = current_pub(srv);
        if (!p) {
            gw__strbuf_release(&sb);
            return send_error(&srv->lib, conn, 503, NULL, "starting: no snapshot has been taken yet");
        }
        int status;
        if (kind == PLAN) {
            status = gw_place_api_plan(a, p->snap, data, len, &sb);
        } else {
            const char *key = srv->lib.lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
            status = gw_place_api_reserve(a, p->snap, data, len, key, &sb);
        }
        pub_release(p);
        return send_place(srv, conn, status, &sb, kind != PLAN);
    }
    int status;
    switch (kind) {
    case COLLECTION: status = gw_place_api_list(a, &sb); break;
    case RENEW: status = gw_place_api_renew(a, id, data, len, &sb); break;
    default: status = del ? gw_place_api_delete(a, id, &sb) : gw_place_api_get(a, id, &sb); break;
    }
    return send_place(srv, conn, status, &sb, mutating);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    gw__server *srv = cls;
    /* Answer only once the whole request is in: a response queued on the
     * first call (headers only) makes MHD close the connection afterwards,
     * which would cost every keep-alive scraper a new TCP connection per
     * request. *con_cls is an odd counter, 1 + 2 * body bytes discarded (no
     * allocation), or for the routes that take a body a body_req collecting
     * it; either way up to a cap. */
    uintptr_t state = (uintptr_t)*con_cls;
    if (state == 0) {
        if (takes_body(url, method)) {
            body_req *b = calloc(1, sizeof *b);
            if (!b) {
                atomic_fetch_add(&srv->requests, 1);
                return send_error(&srv->lib, conn, 500, NULL, "out of memory");
            }
            *con_cls = b;
        } else {
            *con_cls = (void *)(uintptr_t)1;
        }
        return MHD_YES;
    }
    body_req *b = (state & 1) ? NULL : (body_req *)*con_cls;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        size_t seen;
        if (b) {
            seen = b->len + n;
            if (seen <= GW__MAX_BODY_BYTES) {
                if (seen + 1 > b->cap) {
                    size_t cap = b->cap ? b->cap : 1024;
                    while (cap < seen + 1)
                        cap *= 2;
                    char *d = realloc(b->data, cap);
                    if (!d) {
                        atomic_fetch_add(&srv->requests, 1);
                        return send_error(&srv->lib, conn, 500, NULL, "out of memory");
                    }
                    b->data = d;
                    b->cap = cap;
                }
                memcpy(b->data + b->len, upload_data, n);
                b->len = seen;
                b->data[b->len] = '\0';
            } else {
                b->len = seen; /* over the cap: counted, not kept */
            }
            if (seen <= GW__DRAIN_BODY_BYTES)
                return MHD_YES; /* a body over the cap gets its 413 once it is in */
        } else {
            seen = (state - 1) / 2 + n;
            if (seen > GW__MAX_BODY_BYTES)
                seen = GW__MAX_BODY_BYTES + 1; /* the counter never grows past the cap */
            *con_cls = (void *)(uintptr_t)(1 + 2 * (uintptr_t)seen);
        }
        if (seen > GW__MAX_BODY_BYTES) {
            atomic_fetch_add(&srv->requests, 1);
            char msg[96];
            snprintf(msg, sizeof msg, "request body too large (at most %u bytes)", GW__MAX_BODY_BYTES);
            return send_error(&srv->lib, conn, 413, NULL, msg);
        }
        return MHD_YES;
    }
    atomic_fetch_add(&srv->requests, 1);
    if (b && b->len > GW__MAX_BODY_BYTES) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body too large (at most %u bytes)", GW__MAX_BODY_BYTES);
        return send_error(&srv->lib, conn, 413, NULL, msg);
    }
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    static const char read_only[] = "GET, HEAD";

    if (strcmp(url, "/api/v1/reload") == 0) {
        if (!post)
            return send_error(&srv->lib, conn, 405, "POST", "method not allowed; use POST");
        return route_reload(srv, conn);
    }
    if (strcmp(url, "/api/v1/plan") == 0)
        return route_place(srv, conn, NULL, method, b);
    if (strncmp(url, PLACE_PREFIX, strlen(PLACE_PREFIX)) == 0 &&
        (url[strlen(PLACE_PREFIX)] == '\0' || url[strlen(PLACE_PREFIX)] == '/'))
        return route_place(srv, conn, url + strlen(PLACE_PREFIX), method, b);
    static const struct {
        const char *path;
        int kind; /* body kind, or -1 for handled below */
    } fixed[] = {
        {"/health", B_HEALTH},       {"/gpu/info", B_INFO},  {"/gpu/metrics", B_METRICS},
        {"/gpu/processes", B_PROCESSES}, {"/metrics", B_PROM}, {"/api/v1/history", -1},
        {"/api/v1/events", -2},      {"/events", -3},        {"/", -4},
    };
    int route = -100;
    for (size_t i = 0; i < GW__ARRAY_LEN(fixed); i++)
        if (strcmp(url, fixed[i].path) == 0)
            route = fixed[i].kind;
    bool gpu_one = route == -100 && strncmp(url, "/gpu/metrics/", 13) == 0;
    if (route == -100 && !gpu_one) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 4096);
        gw__api_error(&sb, 404, "no such endpoint '%.200s' (see / for the list)", url);
        return send_text(&srv->lib, conn, 404, &sb, GW__JSON_CONTENT_TYPE, NULL);
    }
    if (!get) {
        char msg[128];
        snprintf(msg, sizeof msg, "method %.16s not allowed; use GET or HEAD", method);
        return send_error(&srv->lib, conn, 405, read_only, msg);
    }
    if (gpu_one)
        return route_gpu_one(srv, conn, url + 13);
    switch (route) {
    case -1: return route_history(srv, conn);
    case -2: return route_events_json(srv, conn);
    case -3: return start_sse(srv, conn);
    case -4: return route_index(srv, conn);
    default: return send_body(srv, conn, route); /* /metrics counts its scrapes there */
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    gw__logf(cls, GW__LOG_WARNING, "http: %s", line);
}

/* ------------------------------------------------------------- lifecycle */

int gw__server_create(gw__server **out, const gw__server_config *cfg, gw__log *log,
                      gw_error *err)
{
    *out = NULL;
    addr a;
    if (!parse_listen(cfg->listen, &a))
        return gw__error_set(err, GW_EINVAL,
                             "listen address '%s' is not HOST:PORT (IPv4, or [IPv6]:PORT; port 0-65535)",
                             cfg->listen);
    if (!gw__listen_is_loopback(cfg->listen) && !cfg->token[0])
        return gw__error_set(err, GW_EINVAL,
                             "refusing to listen on '%s' (beyond loopback) without a bearer token: "
                             "set 'token' or 'token_file' in the configuration",
                             cfg->listen);
    if (cfg->threads < 1 || cfg->threads > 64 || cfg->max_connections < 1 ||
        cfg->max_request_bytes < 2048)
        return gw__error_set(err, GW_EINVAL,
                             "http limits out of range: threads 1..64, max_connections >= 1, "
                             "max_request_bytes >= 2048");
    gw__server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return gw__error_set(err, GW_ENOMEM, "http: out of memory");
    srv->cfg = *cfg;
    srv->log = log;
    int lrc = gw__mhd_load(&srv->lib, getenv("GPUWATCH_MHD_LIBRARY"), err);
    if (lrc != GW_OK) {
        free(srv);
        return lrc;
    }
    srv->started_real_ns = gw__now_real_ns();
    srv->started_mono_ns = gw__now_mono_ns();
    pthread_mutex_init(&srv->lock, NULL);
    /* TURBO: read/write/accept opportunistically before asking epoll (fewer
     * syscalls for keep-alive scrapers); safe with a thread pool. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO;
    if (a.v6)
        flags |= MHD_USE_IPv6;
    srv->mhd = srv->lib.start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, log,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a.ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)NULL,
        /* a "pool" of one is the plain internal thread */
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 1 ? cfg->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)cfg->max_request_bytes, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_END);
    if (!srv->mhd) {
        int e = errno;
        pthread_mutex_destroy(&srv->lock);
        gw__mhd_unload(&srv->lib);
        free(srv);
        return gw__error_set(err, GW_EIO, "cannot listen on %s: %s", cfg->listen,
                             e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = srv->lib.get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    *out = srv;
    return GW_OK;
}

uint16_t gw__server_port(const gw__server *srv) { return srv->port; }

void gw__server_attach_sampler(gw__server *srv, gw__sampler *sampler)
{
    pthread_mutex_lock(&srv->lock);
    srv->sampler = sampler;
    pthread_mutex_unlock(&srv->lock);
}

void gw__server_reconfigure(gw__server *srv, const gw__server_config *cfg)
{
    pthread_mutex_lock(&srv->lock);
    memcpy(srv->cfg.token, cfg->token, sizeof srv->cfg.token);
    srv->cfg.families = cfg->families;
    srv->cfg.metrics_processes = cfg->metrics_processes;
    srv->cfg.sse_max_clients = cfg->sse_max_clients;
    pthread_mutex_unlock(&srv->lock);
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
    gw__mhd_unload(&srv->lib);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}
