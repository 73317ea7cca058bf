/* front.c — the pool's HTTP front (front.h says what it owns, its routes
 * and invariants).
 *
 * One event loop thread owns everything that touches a socket: it runs
 * libmicrohttpd in "external epoll" mode (MHD's epoll fd sits in the
 * loop's own epoll set), and the children's sockets sit beside it. A
 * proxied request suspends its MHD connection, and the loop drives the
 * exchange with the child step by step (connect, send, head, body) as the
 * child's socket allows; the answer is queued on the suspended connection,
 * which is then resumed. A streamed answer is pulled by MHD's content
 * callback: when the child has nothing yet, the callback suspends the
 * connection and the loop resumes it when the child's socket is readable.
 * What may block for long (waiting for a model to load or for a slot,
 * /models/load and /models/unload, learning why a child failed) runs in a
 * worker thread of its own, which hands the exchange back through a list
 * and an eventfd. So a busy front costs no thread switch per request, and
 * a request that waits never holds up another.
 *
 * Loop invariants (checked by exchange_check, exchange.c):
 *  L1. Only the loop thread calls into MHD or touches an exchange's
 *      sockets; a worker touches only its exchange's job fields and the
 *      pool, and hands the exchange back exactly once.
 *  L2. An exchange's client socket is in the loop's epoll set only while
 *      its connection is suspended, and is taken out before the resume (MHD
 *      may close it once resumed).
 *  L3. An exchange is in the live list exactly while the loop waits on its
 *      child's socket; every live exchange has a deadline, and one that
 *      passes it fails as a child that sent nothing in time.
 *  L4. A suspended connection is resumed exactly once per suspension, and
 *      none is suspended when the daemon stops (MHD forbids it).
 *  L5. An exchange's lease is released exactly once: when its answer is
 *      complete (buffered), when it fails, or when its request ends.
 *  L6. A child's socket enters the loop's epoll set once, edge-triggered,
 *      when the front first waits on it, and stays there while it is kept
 *      alive between requests (closing it takes it out): a kept-alive
 *      connection costs no epoll_ctl per request. by_fd[fd] names the
 *      exchange holding it, NULL while idle; an event for a socket whose
 *      exchange is not waiting on it is dropped (every step reads or
 *      writes until EAGAIN before it waits, so no edge is lost).
 */
#include "pool/front_impl.h"

#include "core/array.h"
#include "core/util.h"
#include "http/server.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOOP_EVENTS 64

enum MHD_Result gw__front_queue(gw_pool_front *f, struct MHD_Connection *c, unsigned status,
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
    return gw__front_queue(f, c, status, type, body ? body : strdup(""), body ? len : 0, 0);
}

void gw__front_error_json(gw_strbuf *sb, unsigned status, const char *type, const char *msg)
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
    gw__front_error_json(&sb, status, type, msg);
    if (sb.failed) {
        gw__strbuf_release(&sb);
        return MHD_NO;
    }
    size_t len;
    char *body = gw__strbuf_detach(&sb, &len);
    gw__strbuf_release(&sb);
    return gw__front_queue(f, c, status, "application/json", body, len, retry_after);
}

enum MHD_Result gw__front_send_refusal(gw_pool_front *f, struct MHD_Connection *c,
                                    const gw_pool_refusal *why)
{
    if (why->status == 499)
        return MHD_NO; /* the client is gone: nothing to answer */
    return send_error(f, c, (unsigned)why->status, why->type, why->message, why->retry_after_s);
}

int gw__front_client_fd(gw_pool_front *f, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        f->lib.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

void gw__front_wake(gw_pool_front *f)
{
    uint64_t one = 1;
    ssize_t w = write(f->wake_fd, &one, sizeof one);
    (void)w; /* a full counter still wakes the loop */
}

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

static enum MHD_Result load_or_unload(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                                      bool load)
{
    char model[256], why_text[256];
    if (!body_model(f, r, model, sizeof model, why_text, sizeof why_text))
        return send_error(f, c, 400, "invalid_request_error", why_text, 0);
    return gw__exchange_load(f, c, r, model, load);
}

static enum MHD_Result get_route(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                                 const char *url)
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
        return gw__exchange_proxy(f, c, r, "GET", url, m, NULL, 0);
    }
    return send_error(f, c, 404, "invalid_request_error", "no such route", 0);
}

static enum MHD_Result post_route(gw_pool_front *f, struct MHD_Connection *c, const char *url,
                                  preq *r)
{
    if (!strcmp(url, "/models/load") || !strcmp(url, "/models/unload"))
        return load_or_unload(f, c, r, url[8] == 'l');
    if (!is_model_route(url))
        return send_error(f, c, 404, "invalid_request_error", "no such route", 0);
    char model[256], why[256];
    if (!body_model(f, r, model, sizeof model, why, sizeof why))
        return send_error(f, c, 400, "invalid_request_error", why, 0);
    return gw__exchange_proxy(f, c, r, "POST", url, model, r->body, r->len);
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
    if (r->x) /* resumed without an answer: the client left, or no memory */
        return MHD_NO;
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
        return get_route(f, c, r, url);
    if (!strcmp(method, "POST"))
        return post_route(f, c, url, r);
    return send_error(f, c, 405, "invalid_request_error", "method not allowed", 0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gw_pool_front *f = cls;
    preq *r = *con_cls;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* MHD (0.9.75, external epoll) closes a connection it ends with an
         * error only at its next event or its timeout: the shutdown is that
         * event, and the client sees the cut at once (invariant 3) */
        int fd = gw__front_client_fd(f, c);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    if (!r)
        return;
    if (r->x)
        gw__exchange_free(r->x);
    atomic_fetch_sub(&f->active, 1);
    free(r->body);
    free(r);
    *con_cls = NULL;
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

static int loop_timeout(gw_pool_front *f, int64_t now)
{
    if (f->run_mhd)
        return 0;
    int t = -1;
    MHD_UNSIGNED_LONG_LONG mt;
    if (f->lib.get_timeout(f->d, &mt) == MHD_YES)
        t = mt > INT_MAX ? INT_MAX : (int)mt;
    if (f->live) {
        int64_t left = (f->next_scan_ns - now) / 1000000;
        int s = left < 0 ? 0 : (int)left + 1;
        if (t < 0 || s < t)
            t = s;
    }
    if (atomic_load(&f->draining) && (t < 0 || t > 10))
        t = 10;
    return t;
}

static void *loop_main(void *arg)
{
    gw_pool_front *f = arg;
    bool quiesced = false;
    struct epoll_event ev[LOOP_EVENTS];
    for (;;) {
        int64_t now = gw__now_mono_ns();
        int timeout = loop_timeout(f, now);
        int n = epoll_wait(f->ep, ev, LOOP_EVENTS, timeout);
        /* MHD runs when its timeout (0: work is pending, or a resume) or its
         * epoll fd says so, however many other events came */
        f->run_mhd = n == 0 || timeout == 0;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 & 1) {
                gw__exchange_child_event(f, (int)(ev[i].data.u64 >> 1));
                continue;
            }
            tag *t = ev[i].data.ptr;
            if (t->kind == TAG_MHD)
                f->run_mhd = true;
            else if (t->kind == TAG_WAKE)
                gw__exchange_take_done(f);
            else if (t->fd >= 0) /* an earlier event of this round may have cleared it */
                gw__exchange_client_gone(t->x);
        }
        if (f->run_mhd) {
            f->run_mhd = false;
            f->lib.run(f->d);
        }
        now = gw__now_mono_ns();
        if (f->live && now >= f->next_scan_ns) {
            gw__exchange_scan(f, now);
            f->next_scan_ns = now + SCAN_MS * 1000000LL;
        } else if (!f->live) {
            f->next_scan_ns = now + SCAN_MS * 1000000LL;
        }
        if (atomic_load(&f->draining) && !quiesced) {
            quiesced = true;
            int lfd = f->lib.quiesce_daemon(f->d);
            if (lfd >= 0)
                close(lfd);
        }
        if (atomic_load(&f->stop) && atomic_load(&f->workers) == 0) {
            gw__exchange_take_done(f);
            gw__exchange_abandon(f);
            if (atomic_load(&f->workers)) /* a finished job started another: wait for it */
                continue;
            for (int i = 0; i < 4; i++) /* the answers of the abandoned ones go out */
                f->lib.run(f->d);
            /* L4: nothing suspends once stop is set (stream_read and the
             * routes check it); should anything have, go round again */
            if (f->live || atomic_load(&f->workers))
                continue;
            return NULL;
        }
    }
}

static void front_free(gw_pool_front *f)
{
    if (f->d)
        f->lib.stop_daemon(f->d);
    gw__mhd_unload(&f->lib);
    if (f->ep >= 0)
        close(f->ep);
    if (f->wake_fd >= 0)
        close(f->wake_fd);
    free(f->by_fd);
    pthread_mutex_destroy(&f->done_lock);
    free(f);
}

static int start_mhd(gw_pool_front *f, gw_error *err)
{
    struct sockaddr_storage ss;
    bool v6;
    if (!gw__listen_parse(f->cfg->listen, &ss, &v6))
        return gw__error_set(err, GW_EINVAL, "listen = '%s': expected HOST:PORT or [V6]:PORT",
                             f->cfg->listen);
    int rc = gw__mhd_load(&f->lib, NULL, err);
    if (rc != GW_OK)
        return rc;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO | (v6 ? MHD_USE_IPv6 : 0);
    f->d = f->lib.start_daemon(flags, 0, NULL, NULL, on_request, f,
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)f,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)f->cfg->max_connections,
                               MHD_OPTION_CONNECTION_TIMEOUT,
                               (unsigned)(f->cfg->request_timeout_s + f->cfg->load_timeout_s + 60),
                               MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!f->d)
        return gw__error_set(err, GW_EIO, "cannot listen on %s (in use, or not an address of "
                                          "this host)", f->cfg->listen);
    const union MHD_DaemonInfo *di = f->lib.get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    f->port = di ? di->port : 0;
    di = f->lib.get_daemon_info(f->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!di || di->epoll_fd < 0)
        return gw__error_set(err, GW_EIO, "libmicrohttpd gave no epoll descriptor");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &f->mhd_tag};
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0)
        return gw__error_set(err, GW_EIO, "epoll_ctl: %s", strerror(errno));
    return GW_OK;
}

int gw_pool_front_start(gw_pool_front **out, gw_pool *pool, gw_error *err)
{
    *out = NULL;
    gw_pool_front *f = calloc(1, sizeof *f);
    if (!f)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    f->pool = pool;
    f->cfg = gw_pool_config_of(pool);
    pthread_mutex_init(&f->done_lock, NULL);
    f->mhd_tag = (tag){.kind = TAG_MHD, .fd = -1};
    f->wake_tag = (tag){.kind = TAG_WAKE, .fd = -1};
    f->ep = epoll_create1(EPOLL_CLOEXEC);
    f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &f->wake_tag};
    int rc = f->ep < 0 || f->wake_fd < 0 || epoll_ctl(f->ep, EPOLL_CTL_ADD, f->wake_fd, &ev)
                 ? gw__error_set(err, GW_EIO, "epoll/eventfd: %s", strerror(errno))
                 : start_mhd(f, err);
    if (rc == GW_OK) {
        rc = pthread_create(&f->loop, NULL, loop_main, f);
        rc = rc ? gw__error_set(err, GW_EIO, "cannot start the front's thread: %s",
                                strerror(rc))
                : GW_OK;
    }
    if (rc != GW_OK) {
        front_free(f);
        return rc;
    }
    f->loop_started = true;
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
    atomic_store(&f->draining, true);
    gw__front_wake(f);
    for (int i = 0; i < 200 && atomic_load(&f->active); i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&f->stop, true);
    gw__front_wake(f);
    if (f->loop_started)
        pthread_join(f->loop, NULL);
    front_free(f);
}
