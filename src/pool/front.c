/* front.c — the pool's HTTP front (front.h says what it owns, its routes
 * and invariants). One libmicrohttpd thread per connection: a request may
 * block while its model loads or queues, and its answer is read from the
 * child inside MHD's content callback as the client takes it. */
#include "pool/front.h"

#include "core/array.h"
#include "core/util.h"
#include "http/mhd_lib.h"
#include "http/server.h"
#include "pool/upstream.h"

#include <jansson.h>
#include <stdatomic.h>
#include <time.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFERED_MAX (8u << 20) /* a Content-Length answer up to this is sent in one piece */
#define STREAM_BLOCK 16384u

struct gw_pool_front {
    gw__mhd_lib lib;
    atomic_uint active;      /* requests between their first call and completion */
    struct MHD_Daemon *d;
    gw_pool *pool;
    const gw_pool_config *cfg;
    unsigned port;
};

/* One request: its body as it arrives. */
typedef struct preq {
    char *body;
    size_t len, cap;
    bool too_big;
} preq;

/* One streamed answer, owned by its MHD response (freed with it). */
typedef struct stream {
    gw_pool_front *f;
    gw_pool_lease lease;
    gw_upstream_answer ans;
    bool event_stream;
    bool failed;      /* an error event was sent: end with an error next */
    bool finished;    /* the child's body ended cleanly */
    bool child_error; /* the child's side failed (else an unfinished answer: the client left) */
    int status;
} stream;

/* ------------------------------------------------------------- answers */

static enum MHD_Result queue(gw_pool_front *f, struct MHD_Connection *c, unsigned status,
                             const char *type, char *body, size_t len, unsigned retry_after)
{
    struct MHD_Response *r =
        f->lib.create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    f->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (retry_after) {
        char s[16];
        snprintf(s, sizeof s, "%u", retry_after);
        f->lib.add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    enum MHD_Result ret = f->lib.queue_response(c, status, r);
    f->lib.destroy_response(r);
    return ret;
}

static enum MHD_Result send_sb(gw_pool_front *f, struct MHD_Connection *c, unsigned status,
                               const char *type, gw_strbuf *sb)
{
    if (sb->failed) {
        gw__strbuf_release(sb);
        return MHD_NO;
    }
    size_t len;
    char *body = gw__strbuf_detach(sb, &len);
    gw__strbuf_release(sb);
    return queue(f, c, status, type, body ? body : strdup(""), body ? len : 0, 0);
}

static void error_json(gw_strbuf *sb, unsigned status, const char *type, const char *msg)
{
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "error");
    gw__json_object_begin(&j);
    gw__json_kv_u64(&j, "code", true, status);
    gw__json_kv_str(&j, "message", msg);
    gw__json_kv_str(&j, "type", type);
    gw__json_object_end(&j);
    gw__json_object_end(&j);
}

static enum MHD_Result send_error(gw_pool_front *f, struct MHD_Connection *c, unsigned status,
                                  const char *type, const char *msg, unsigned retry_after)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    error_json(&sb, status, type, msg);
    if (sb.failed) {
        gw__strbuf_release(&sb);
        return MHD_NO;
    }
    size_t len;
    char *body = gw__strbuf_detach(&sb, &len);
    gw__strbuf_release(&sb);
    return queue(f, c, status, "application/json", body, len, retry_after);
}

static enum MHD_Result send_refusal(gw_pool_front *f, struct MHD_Connection *c,
                                    const gw_pool_refusal *why)
{
    if (why->status == 499)
        return MHD_NO; /* the client is gone: nothing to answer */
    return send_error(f, c, (unsigned)why->status, why->type, why->message, why->retry_after_s);
}

/* ---------------------------------------------------------- streaming */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    if (s->failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = 0;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_upstream_read_body(&s->ans, buf, max, &n, &err);
    if (rc == GW_OK && n > 0)
        return (ssize_t)n;
    if (rc == GW_OK && s->ans.done) {
        s->finished = true;
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    s->child_error = !s->ans.client_gone;
    if (s->ans.client_gone || !s->event_stream)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    /* tell a stream's reader why it ends, then end it as an error */
    gw_pool_refusal why;
    gw_pool_upstream_failed(s->f->pool, &s->lease, err.message, &why);
    gw_strbuf sb;
    gw__strbuf_init(&sb, max);
    gw__strbuf_puts(&sb, "data: ");
    error_json(&sb, (unsigned)why.status, why.type, why.message);
    gw__strbuf_puts(&sb, "\n\n");
    s->failed = true;
    if (sb.failed || sb.len > max) {
        gw__strbuf_release(&sb);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    memcpy(buf, sb.data, sb.len);
    n = sb.len;
    gw__strbuf_release(&sb);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream *s = cls;
    bool keep = s->finished && gw_upstream_reusable(&s->ans);
    int status = s->finished ? s->status : s->child_error ? 502 : 0;
    gw_pool_release(s->f->pool, &s->lease, keep ? s->lease.fd : -1, status);
    if (!keep)
        close(s->lease.fd);
    gw_upstream_answer_release(&s->ans);
    free(s);
}

/* Passes the child's answer on: whole when it is small and framed, else
 * streamed. Takes over s (and its lease). */
static enum MHD_Result pass_answer(gw_pool_front *f, struct MHD_Connection *c, stream *s)
{
    const gw_http_head *h = &s->ans.head;
    s->status = h->status;
    s->event_stream = strncasecmp(s->ans.ctype, "text/event-stream", 17) == 0;
    if (s->ans.framing == GW_UP_NONE || (s->ans.framing == GW_UP_LENGTH &&
                                         h->length <= BUFFERED_MAX)) {
        size_t want = s->ans.framing == GW_UP_NONE ? 0 : (size_t)h->length;
        char *body = malloc(want ? want : 1);
        size_t got = 0;
        gw_error err;
        int rc = body ? GW_OK : gw__error_set(&err, GW_ENOMEM, "out of memory");
        while (rc == GW_OK && !s->ans.done) {
            size_t n;
            rc = gw_upstream_read_body(&s->ans, body + got, want - got, &n, &err);
            got += n;
        }
        if (rc != GW_OK) {
            free(body);
            bool gone = s->ans.client_gone;
            gw_pool_refusal why;
            if (!gone)
                gw_pool_upstream_failed(f->pool, &s->lease, err.message, &why);
            s->finished = false;
            s->child_error = !gone;
            stream_free(s);
            return gone ? MHD_NO : send_refusal(f, c, &why);
        }
        s->finished = true;
        const char *type = s->ans.ctype[0] ? s->ans.ctype : "application/octet-stream";
        char ctype[sizeof s->ans.ctype];
        gw__strlcpy(ctype, type, sizeof ctype);
        unsigned status = (unsigned)s->status;
        stream_free(s);
        return queue(f, c, status, ctype, body, got, 0);
    }
    struct MHD_Response *r = f->lib.create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                                  stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    if (s->ans.ctype[0])
        f->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, s->ans.ctype);
    if (s->event_stream) {
        f->lib.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        f->lib.add_response_header(r, "X-Accel-Buffering", "no");
    }
    enum MHD_Result ret = f->lib.queue_response(c, (unsigned)s->status, r);
    f->lib.destroy_response(r);
    return ret;
}

static int client_fd(gw_pool_front *f, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        f->lib.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* Sends the request on the lease's connection and reads the answer's
 * head; one retry on a new connection when a kept-alive one turns out
 * closed before any byte came back. */
static int exchange(gw_pool_front *f, stream *s, const gw_strbuf *head, const char *body,
                    size_t len, int watch, gw_error *err)
{
    int timeout = (int)f->cfg->request_timeout_s * 1000;
    for (int attempt = 0;; attempt++) {
        int rc = gw_upstream_send(s->lease.fd, head->data, head->len, body, len, timeout, err);
        if (rc == GW_OK)
            rc = gw_upstream_read_head(&s->ans, s->lease.fd, watch, timeout, err);
        /* only a kept-alive connection the child closed before this request
         * is tried again: never a timeout, never a request it may have seen */
        if (rc != GW_EIO || !s->lease.reused || s->ans.client_gone || s->ans.received ||
            attempt > 0)
            return rc;
        s->lease.reused = false;
        gw_upstream_answer_release(&s->ans);
        close(s->lease.fd);
        s->lease.fd = -1;
        rc = gw_upstream_connect(s->lease.port, 5000, &s->lease.fd, err);
        if (rc != GW_OK)
            return rc;
    }
}

/* Forwards METHOD URL with body to model's child and answers with its answer. */
static enum MHD_Result proxy(gw_pool_front *f, struct MHD_Connection *c, const char *method,
                             const char *url, const char *model, const char *body, size_t len)
{
    int watch = client_fd(f, c);
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->f = f;
    gw_pool_refusal why;
    if (gw_pool_acquire(f->pool, model, watch, &s->lease, &why) != GW_OK) {
        free(s);
        return send_refusal(f, c, &why);
    }
    const char *ctype = f->lib.lookup_connection_value(c, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *accept = f->lib.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    gw_strbuf head;
    gw__strbuf_init(&head, 0);
    bool has_body = strcmp(method, "POST") == 0;
    gw_upstream_request_head(&head, method, url, s->lease.port,
                             has_body ? (ctype ? ctype : "application/json") : NULL, accept,
                             has_body, len);
    gw_error err;
    gw_error_clear(&err);
    int rc = head.failed ? gw__error_set(&err, GW_ENOMEM, "out of memory")
                         : exchange(f, s, &head, has_body ? body : NULL, len, watch, &err);
    gw__strbuf_release(&head);
    if (rc != GW_OK) {
        bool gone = s->ans.client_gone;
        if (!gone)
            gw_pool_upstream_failed(f->pool, &s->lease, err.message, &why);
        s->child_error = !gone;
        stream_free(s);
        return gone ? MHD_NO : send_refusal(f, c, &why);
    }
    return pass_answer(f, c, s);
}

/* ------------------------------------------------------------- routes */

static const char *const model_routes[] = {
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank",
    "/completion",          "/completions",    "/chat/completions", "/embedding",
    "/embeddings",          "/rerank",         "/reranking",     "/infill",
    "/tokenize",            "/detokenize",     "/apply-template", NULL};

static bool is_model_route(const char *url)
{
    for (size_t i = 0; model_routes[i]; i++)
        if (strcmp(url, model_routes[i]) == 0)
            return true;
    return false;
}

/* The body's "model" (copied into out); false with why filled. */
static bool body_model(gw_pool_front *f, const preq *r, char *out, size_t cap, char *why,
                       size_t why_cap)
{
    json_error_t je;
    json_t *root = json_loadb(r->body ? r->body : "", r->len, 0, &je);
    if (!root) {
        snprintf(why, why_cap, "the request body is not JSON: %s (at byte %d)", je.text,
                 je.position);
        return false;
    }
    json_t *m = json_is_object(root) ? json_object_get(root, "model") : NULL;
    bool ok = false;
    if (!json_is_object(root))
        snprintf(why, why_cap, "the request body is not a JSON object");
    else if (m && !json_is_string(m))
        snprintf(why, why_cap, "\"model\" is not a string");
    else if (m)
        ok = (size_t)snprintf(out, cap, "%s", json_string_value(m)) < cap ||
             (snprintf(why, why_cap, "\"model\" is too long"), false);
    else if (f->cfg->n_models == 1)
        ok = (gw__strlcpy(out, f->cfg->models[0].name, cap), true);
    else
        snprintf(why, why_cap, "the request names no \"model\" (this pool serves %zu; "
                               "GET /v1/models lists them)", f->cfg->n_models);
    json_decref(root);
    return ok;
}

static enum MHD_Result send_json(gw_pool_front *f, struct MHD_Connection *c,
                                 void (*fill)(gw_pool *, gw_json *))
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    fill(f->pool, &j);
    return send_sb(f, c, 200, "application/json", &sb);
}

static void models_openai(gw_pool *p, gw_json *j) { gw_pool_models_json(p, j, false); }
static void models_router(gw_pool *p, gw_json *j) { gw_pool_models_json(p, j, true); }

static enum MHD_Result load_or_unload(gw_pool_front *f, struct MHD_Connection *c, const preq *r,
                                      bool load)
{
    char model[256], why_text[256];
    if (!body_model(f, r, model, sizeof model, why_text, sizeof why_text))
        return send_error(f, c, 400, "invalid_request_error", why_text, 0);
    gw_pool_refusal why;
    int rc = load ? gw_pool_load(f->pool, model, &why) : gw_pool_unload(f->pool, model, &why);
    if (rc != GW_OK)
        return send_refusal(f, c, &why);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb, "{\"success\":true}");
    return send_sb(f, c, 200, "application/json", &sb);
}

static enum MHD_Result get_route(gw_pool_front *f, struct MHD_Connection *c, const char *url)
{
    if (!strcmp(url, "/health"))
        return send_json(f, c, gw_pool_health_json);
    if (!strcmp(url, "/api/v1/pool"))
        return send_json(f, c, gw_pool_json);
    if (!strcmp(url, "/v1/models"))
        return send_json(f, c, models_openai);
    if (!strcmp(url, "/models"))
        return send_json(f, c, models_router);
    if (!strcmp(url, "/metrics")) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        gw_pool_metrics(f->pool, &sb);
        return send_sb(f, c, 200, "text/plain; version=0.0.4; charset=utf-8", &sb);
    }
    static const char logp[] = "/api/v1/pool/";
    size_t ul = strlen(url);
    if (!strncmp(url, logp, sizeof logp - 1) && ul > sizeof logp + 3 &&
        !strcmp(url + ul - 4, "/log")) {
        char name[256];
        size_t n = ul - (sizeof logp - 1) - 4;
        if (n >= sizeof name)
            return send_error(f, c, 404, "invalid_request_error", "no such model", 0);
        memcpy(name, url + sizeof logp - 1, n);
        name[n] = '\0';
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        if (gw_pool_log(f->pool, name, &sb) != GW_OK) {
            gw__strbuf_release(&sb);
            return send_error(f, c, 404, "invalid_request_error", "no such model", 0);
        }
        return send_sb(f, c, 200, "text/plain; charset=utf-8", &sb);
    }
    if (!strcmp(url, "/props") || !strcmp(url, "/slots")) {
        const char *m = f->lib.lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
        if (!m && f->cfg->n_models == 1)
            m = f->cfg->models[0].name;
        if (!m)
            return send_error(f, c, 400, "invalid_request_error",
                              "name the model: ?model=NAME", 0);
        return proxy(f, c, "GET", url, m, NULL, 0);
    }
    return send_error(f, c, 404, "invalid_request_error", "no such route", 0);
}

static enum MHD_Result post_route(gw_pool_front *f, struct MHD_Connection *c, const char *url,
                                  const preq *r)
{
    if (!strcmp(url, "/models/load") || !strcmp(url, "/models/unload"))
        return load_or_unload(f, c, r, url[8] == 'l');
    if (!is_model_route(url))
        return send_error(f, c, 404, "invalid_request_error", "no such route", 0);
    char model[256], why[256];
    if (!body_model(f, r, model, sizeof model, why, sizeof why))
        return send_error(f, c, 400, "invalid_request_error", why, 0);
    return proxy(f, c, "POST", url, model, r->body, r->len);
}

static bool authorized(gw_pool_front *f, struct MHD_Connection *c, const char *method,
                       const char *url)
{
    const char *token = f->cfg->token;
    if (!token[0] || (!strcmp(method, "GET") && !strcmp(url, "/health")))
        return true;
    const char *h = f->lib.lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t a = strlen(h), b = strlen(token);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

/* Appends an upload piece; too_big once the body is over the limit. */
static void take_upload(gw_pool_front *f, preq *r, const char *data, size_t n)
{
    if (r->too_big || r->len + n > f->cfg->max_body_bytes) {
        r->too_big = true;
        return;
    }
    if (GW__ARRAY_RESERVE(r->body, r->cap, r->len + n + 1, f->cfg->max_body_bytes + 1) != GW_OK) {
        r->too_big = true;
        return;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    gw_pool_front *f = cls;
    preq *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&f->active, 1);
        return MHD_YES;
    }
    if (*upload_size) {
        take_upload(f, r, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (!authorized(f, c, method, url))
        return send_error(f, c, 401, "authentication_error",
                          "this pool needs \"Authorization: Bearer TOKEN\"", 0);
    if (r->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is over max_body_bytes (%llu bytes)",
                 (unsigned long long)f->cfg->max_body_bytes);
        return send_error(f, c, 413, "invalid_request_error", msg, 0);
    }
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return get_route(f, c, url);
    if (!strcmp(method, "POST"))
        return post_route(f, c, url, r);
    return send_error(f, c, 405, "invalid_request_error", "method not allowed", 0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gw_pool_front *f = cls;
    (void)c;
    (void)toe;
    preq *r = *con_cls;
    if (r) {
        atomic_fetch_sub(&f->active, 1);
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    fprintf(stderr, "gpuwatch pool: http: %s\n", line);
}

int gw_pool_front_start(gw_pool_front **out, gw_pool *pool, gw_error *err)
{
    *out = NULL;
    gw_pool_front *f = calloc(1, sizeof *f);
    if (!f)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    f->pool = pool;
    f->cfg = gw_pool_config_of(pool);
    struct sockaddr_storage ss;
    bool v6;
    if (!gw__listen_parse(f->cfg->listen, &ss, &v6)) {
        free(f);
        return gw__error_set(err, GW_EINVAL, "listen = '%s': expected HOST:PORT or [V6]:PORT",
                             gw_pool_config_of(pool)->listen);
    }
    int rc = gw__mhd_load(&f->lib, NULL, err);
    if (rc != GW_OK) {
        free(f);
        return rc;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0);
    f->d = f->lib.start_daemon(flags, 0, NULL, NULL, on_request, f,
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)f,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)f->cfg->max_connections,
                               MHD_OPTION_CONNECTION_TIMEOUT,
                               (unsigned)(f->cfg->request_timeout_s + f->cfg->load_timeout_s + 60),
                               MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!f->d) {
        gw__mhd_unload(&f->lib);
        free(f);
        return gw__error_set(err, GW_EIO, "cannot listen on %s (in use, or not an address of "
                                          "this host)", gw_pool_config_of(pool)->listen);
    }
    const union MHD_DaemonInfo *di = f->lib.get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    f->port = di ? di->port : 0;
    *out = f;
    return GW_OK;
}

unsigned gw_pool_front_port(const gw_pool_front *f)
{
    return f->port;
}

void gw_pool_front_stop(gw_pool_front *f)
{
    if (!f)
        return;
    /* no new connection; requests that were waiting answer (the pool is
     * stopping: 503) within a moment; then every connection is closed */
    f->lib.quiesce_daemon(f->d);
    for (int i = 0; i < 200 && atomic_load(&f->active); i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    f->lib.stop_daemon(f->d);
    gw__mhd_unload(&f->lib);
    free(f);
}
