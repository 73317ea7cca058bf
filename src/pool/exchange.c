/* exchange.c — one request's exchange with its model server, driven by
 * the front's event loop (front.c has the design and the loop invariants
 * L1-L6): the child's connection (kept-alive or new), the request sent, the
 * answer's head and body read as the socket allows, a buffered answer
 * queued or a streamed one pulled by MHD's content callback, client
 * hang-ups, deadlines, and the worker threads for what waits (a load, a
 * slot, /models/load and /models/unload, learning why a child failed).
 *
 * Owns: every exchange from its request's routing to its request's end,
 * and the front's fd map and live list.
 */
#include "pool/front_impl.h"

#include "core/array.h"
#include "core/util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUFFERED_MAX (8u << 20) /* a Content-Length answer up to this is sent in one piece */
#define STREAM_BLOCK 16384u

static void start_answer(exchange *x);
static void drive(exchange *x);
static void build_head(exchange *x);

static __attribute__((unused)) bool exchange_check(const exchange *x)
{
    bool waits = x->phase >= X_CONNECT && x->phase <= X_BODY;
    const gw_pool_front *f = x->f;
    int fd = x->lease.fd;
    return (x->client.fd < 0 || x->suspended) &&                      /* L2 */
           (!x->live || x->suspended) &&                              /* L3 */
           (!x->live || x->unmapped ||
            (fd >= 0 && (size_t)fd < f->by_fd_cap && f->by_fd[fd] == x)) && /* L6 */
           (!waits || x->suspended) && (x->phase != X_WORKER || x->suspended) &&
           (!x->tail || x->phase == X_STREAM);
}

static void tag_set(gw_pool_front *f, tag *t, int fd, uint32_t events)
{
    if (t->fd == fd && t->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = t};
    int op = t->fd < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    assert(t->fd < 0 || t->fd == fd);
    if (epoll_ctl(f->ep, op, fd, &ev) == 0) {
        t->fd = fd;
        t->events = events;
    }
}

static void tag_clear(gw_pool_front *f, tag *t)
{
    if (t->fd >= 0)
        epoll_ctl(f->ep, EPOLL_CTL_DEL, t->fd, NULL);
    t->fd = -1;
    t->events = 0;
}

static void live_add(gw_pool_front *f, exchange *x)
{
    x->deadline_ns = gw__now_mono_ns() + (int64_t)f->cfg->request_timeout_s * 1000000000;
    if (x->live)
        return;
    x->live = true;
    x->next = f->live;
    if (f->live)
        f->live->prev = x;
    f->live = x;
}

static void live_remove(gw_pool_front *f, exchange *x)
{
    if (!x->live)
        return;
    x->live = false;
    if (x->prev)
        x->prev->next = x->next;
    else if (f->live == x)
        f->live = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Waits on the child's socket for events: the connection is suspended
 * (L3). The client's hang-up is watched from the next scan on (L2): most
 * exchanges end before it, and two epoll_ctl calls fewer per request is a
 * tenth of the front's CPU. */
static void wait_child(exchange *x)
{
    gw_pool_front *f = x->f;
    int fd = x->lease.fd;
    assert(x->suspended && fd >= 0);
    size_t old_cap = f->by_fd_cap;
    if (GW__ARRAY_RESERVE(f->by_fd, f->by_fd_cap, (size_t)fd + 1, GW__ARRAY_UNBOUNDED) != GW_OK) {
        x->unmapped = true; /* no room to map it: the next scan fails it (L3) */
        live_add(f, x);
        x->deadline_ns = 0;
        return;
    }
    memset(f->by_fd + old_cap, 0, (f->by_fd_cap - old_cap) * sizeof *f->by_fd);
    if (!x->child_registered) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.u64 = (uint64_t)fd * 2 + 1};
        x->child_registered = epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST;
    }
    f->by_fd[fd] = x;
    live_add(f, x);
}

/* Stops waiting on the child's socket and the client's. */
static void unwait(exchange *x)
{
    tag_clear(x->f, &x->client);
    live_remove(x->f, x);
}

/* x no longer holds its child socket (L6): kept alive, or about to close. */
static void child_unmap(exchange *x)
{
    gw_pool_front *f = x->f;
    int fd = x->lease.fd;
    if (fd >= 0 && (size_t)fd < f->by_fd_cap && f->by_fd[fd] == x)
        f->by_fd[fd] = NULL;
}

static void suspend(exchange *x)
{
    assert(!x->suspended);
    x->f->lib.suspend_connection(x->c);
    x->suspended = true;
}

/* L2, L4: the client's socket leaves the set before MHD has it back. */
static void resume(exchange *x)
{
    unwait(x);
    assert(x->suspended);
    x->suspended = false;
    x->f->lib.resume_connection(x->c);
    x->f->run_mhd = true;
}

/* Ends x's lease (L5): keep the child's connection for the next request
 * when keep, else close it; status is what the client got (0: it left). */
static void lease_end(exchange *x, bool keep, int status)
{
    if (!x->lease.m)
        return;
    live_remove(x->f, x);
    child_unmap(x);
    int fd = x->lease.fd;
    gw_pool_release(x->f->pool, &x->lease, keep ? fd : -1, status);
    if (!keep && fd >= 0)
        close(fd);
    x->lease.fd = -1;
}

/* Answers x's suspended connection with the pool's own error and resumes it. */
static void answer_refusal(exchange *x, const gw_pool_refusal *why)
{
    x->phase = X_ENDED;
    if (why->status == 499)
        x->client_left = true; /* resumed without an answer: the request ends */
    else
        gw__front_send_refusal(x->f, x->c, why);
    resume(x);
}

void gw__exchange_free(exchange *x)
{
    gw_pool_front *f = x->f;
    unwait(x);
    int status = x->finished ? x->status : x->child_failed ? 502 : 0;
    lease_end(x, x->finished && gw_upstream_reusable(&x->ans), status);
    if (x->ans_begun)
        gw_upstream_answer_release(&x->ans);
    gw__strbuf_release(&x->head);
    free(x->out);
    free(x->tail);
    free(x);
    (void)f;
}

static void *worker_main(void *arg)
{
    exchange *x = arg;
    gw_pool_front *f = x->f;
    switch (x->job) {
    case JOB_ACQUIRE:
        x->job_rc = gw_pool_acquire(f->pool, x->model, x->client_fd, &x->lease, &x->why);
        break;
    case JOB_LOAD:
        x->job_rc = gw_pool_load(f->pool, x->model, &x->why);
        break;
    case JOB_UNLOAD:
        x->job_rc = gw_pool_unload(f->pool, x->model, &x->why);
        break;
    case JOB_FAILED:
        gw_pool_upstream_failed(f->pool, &x->lease, x->err_text, &x->why);
        break;
    }
    pthread_mutex_lock(&f->done_lock);
    x->done_next = f->done;
    f->done = x;
    pthread_mutex_unlock(&f->done_lock);
    gw__front_wake(f);
    atomic_fetch_sub(&f->workers, 1); /* the last touch of f: stop waits for this */
    return NULL;
}

/* Hands x (suspended) to a worker thread for job. */
static void start_job(exchange *x, job_kind job)
{
    gw_pool_front *f = x->f;
    assert(x->suspended);
    unwait(x);
    x->phase = X_WORKER;
    x->job = job;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&f->workers, 1);
    int rc = pthread_create(&t, &attr, worker_main, x);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return;
    atomic_fetch_sub(&f->workers, 1);
    gw_pool_refusal why = {.status = 503, .retry_after_s = 1, .type = "unavailable_error"};
    snprintf(why.message, sizeof why.message, "the pool cannot start a thread: %s",
             strerror(rc));
    if (job == JOB_FAILED)
        lease_end(x, false, 502);
    if (job == JOB_FAILED && x->in_stream) {
        x->phase = X_STREAM; /* child_failed: the stream ends as an error, no event */
        resume(x);
        return;
    }
    answer_refusal(x, &why);
}

/* The child's side failed with err (rc): one retry on a new connection
 * when a kept-alive one turns out closed before any byte came back; else
 * a worker learns why (it may wait for the supervisor) and x answers. */
static void child_failed(exchange *x, int rc, const gw_error *err)
{
    if (rc == GW_EIO && x->lease.reused && !x->retried && x->ans.received == 0 &&
        (x->phase == X_SEND || x->phase == X_HEAD)) {
        x->retried = true;
        x->lease.reused = false;
        live_remove(x->f, x);
        child_unmap(x);
        close(x->lease.fd);
        x->child_registered = false;
        x->lease.fd = -1;
        if (x->ans_begun)
            gw_upstream_answer_release(&x->ans);
        x->ans_begun = false;
        x->sent = 0;
        x->phase = X_CONNECT;
        drive(x);
        return;
    }
    if (x->phase == X_CONNECT) {
        /* nothing reached the child: its server is not listening */
        gw_pool_refusal why = {.status = 502, .type = "server_error"};
        snprintf(why.message, sizeof why.message, "model '%.255s': cannot reach its server: %.400s",
                 x->model, err->message);
        lease_end(x, false, 502);
        answer_refusal(x, &why);
        return;
    }
    x->child_failed = true;
    x->in_stream = x->phase == X_STREAM;
    gw__strlcpy(x->err_text, err->message, sizeof x->err_text);
    start_job(x, JOB_FAILED);
}

/* One step of x's exchange: GW_OK when its phase moved on, 1 when it
 * waits on the child's socket (registered), an error from the child. */
static int step(exchange *x, gw_error *err)
{
    int rc;
    switch (x->phase) {
    case X_CONNECT:
        if (x->connecting) {
            x->connecting = false;
            rc = gw_upstream_connect_end(x->lease.fd, x->lease.port, err);
        } else {
            rc = gw_upstream_connect_start(x->lease.port, &x->lease.fd, err);
            if (rc == 1) {
                x->connecting = true;
                wait_child(x);
                return 1;
            }
        }
        if (rc == GW_OK)
            x->phase = X_SEND;
        return rc;
    case X_SEND:
        rc = gw_upstream_send_some(x->lease.fd, x->head.data, x->head.len, x->body,
                                   x->body_len, &x->sent, err);
        if (rc == 1) {
            x->send_waited = true;
            wait_child(x);
            return 1;
        }
        if (rc == GW_OK) {
            x->phase = X_HEAD;
            gw_upstream_answer_begin(&x->ans, x->lease.fd);
            x->ans_begun = true;
            if (x->send_waited) /* L6: an edge of the answer may have come meanwhile */
                return GW_OK;
            wait_child(x); /* the answer cannot be there yet */
            return 1;
        }
        return rc;
    case X_HEAD:
        rc = gw_upstream_head_step(&x->ans, err);
        if (rc == 1) {
            wait_child(x);
            return 1;
        }
        if (rc == GW_OK)
            start_answer(x);
        return rc;
    case X_BODY: {
        size_t n;
        do {
            rc = gw_upstream_body_step(&x->ans, x->out + x->out_len, x->out_want - x->out_len,
                                       &n, err);
            x->out_len += n;
        } while (rc == GW_OK && n && !x->ans.done);
        if (rc == 1) {
            wait_child(x);
            return 1;
        }
        if (rc != GW_OK)
            return rc;
        /* the whole answer: the child is free for the next request */
        x->finished = true;
        lease_end(x, gw_upstream_reusable(&x->ans), x->status);
        const char *type = x->ans.ctype[0] ? x->ans.ctype : "application/octet-stream";
        char *body = x->out;
        x->out = NULL;
        gw__front_queue(x->f, x->c, (unsigned)x->status, type, body, x->out_len, 0);
        x->phase = X_ENDED;
        resume(x);
        return GW_OK;
    }
    default:
        return GW_OK;
    }
}

/* Runs x's steps until it waits, fails or is answered. */
static void drive(exchange *x)
{
    while (x->phase >= X_CONNECT && x->phase <= X_BODY) {
        assert(exchange_check(x));
        gw_error err;
        gw_error_clear(&err);
        int rc = step(x, &err);
        if (rc == 1)
            return;
        if (rc != GW_OK) {
            child_failed(x, rc, &err);
            return;
        }
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    exchange *x = cls;
    assert(exchange_check(x));
    if (x->tail) {
        size_t n = x->tail_len - x->tail_off < max ? x->tail_len - x->tail_off : max;
        if (n == 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        memcpy(buf, x->tail + x->tail_off, n);
        x->tail_off += n;
        return (ssize_t)n;
    }
    if (x->child_failed || x->client_left)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = 0;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_upstream_body_step(&x->ans, buf, max, &n, &err);
    if (rc == GW_OK && n > 0)
        return (ssize_t)n;
    if (rc == GW_OK && x->ans.done) {
        x->finished = true;
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (rc == 1 && !atomic_load(&x->f->stop)) {
        suspend(x);
        wait_child(x);
        return 0;
    }
    /* no event to tell (or the front is stopping: nothing may be suspended
     * any more, L4): the answer ends as an error */
    if (rc == 1 || !x->event_stream || atomic_load(&x->f->stop)) {
        x->child_failed = true;
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    suspend(x);
    child_failed(x, rc, &err);
    return 0;
}

/* The child's head is in: a small framed answer is read whole, anything
 * else is streamed to the client as it comes. */
static void start_answer(exchange *x)
{
    gw_pool_front *f = x->f;
    const gw_http_head *h = &x->ans.head;
    x->status = h->status;
    x->event_stream = strncasecmp(x->ans.ctype, "text/event-stream", 17) == 0;
    if (x->ans.framing == GW_UP_NONE ||
        (x->ans.framing == GW_UP_LENGTH && h->length <= BUFFERED_MAX)) {
        x->out_want = x->ans.framing == GW_UP_NONE ? 0 : (size_t)h->length;
        x->out = malloc(x->out_want ? x->out_want : 1);
        x->phase = X_BODY;
        if (!x->out) {
            x->out_want = 0; /* ends below as an empty answer: cannot happen but for ENOMEM */
            x->phase = X_ENDED;
            x->client_left = true;
            resume(x);
        }
        return;
    }
    struct MHD_Response *r = f->lib.create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                                  stream_read, x, NULL);
    x->phase = X_STREAM;
    if (!r) {
        x->client_left = true;
        resume(x);
        return;
    }
    if (x->ans.ctype[0])
        f->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, x->ans.ctype);
    if (x->event_stream) {
        f->lib.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        f->lib.add_response_header(r, "X-Accel-Buffering", "no");
    }
    f->lib.queue_response(x->c, (unsigned)x->status, r);
    f->lib.destroy_response(r);
    resume(x);
}

/* A worker has finished x's job (in the loop). */
static void job_done(exchange *x)
{
    gw_pool_front *f = x->f;
    switch (x->job) {
    case JOB_ACQUIRE:
        if (x->job_rc != GW_OK) {
            answer_refusal(x, &x->why);
            return;
        }
        build_head(x);
        x->child_registered = x->lease.reused; /* L6 */
        x->phase = x->lease.fd >= 0 ? X_SEND : X_CONNECT;
        drive(x);
        return;
    case JOB_LOAD:
    case JOB_UNLOAD:
        x->phase = X_ENDED;
        if (x->job_rc != GW_OK) {
            answer_refusal(x, &x->why);
            return;
        }
        gw__front_queue(f, x->c, 200, "application/json", strdup("{\"success\":true}"), 16, 0);
        resume(x);
        return;
    case JOB_FAILED:
        lease_end(x, false, x->why.status);
        if (!x->in_stream) {
            answer_refusal(x, &x->why);
            return;
        }
        /* tell a stream's reader why it ends, then end it as an error */
        x->phase = X_STREAM;
        if (x->event_stream) {
            gw_strbuf sb;
            gw__strbuf_init(&sb, 0);
            gw__strbuf_puts(&sb, "data: ");
            gw__front_error_json(&sb, (unsigned)x->why.status, x->why.type, x->why.message);
            gw__strbuf_puts(&sb, "\n\n");
            if (!sb.failed)
                x->tail = gw__strbuf_detach(&sb, &x->tail_len);
            gw__strbuf_release(&sb);
        }
        resume(x);
        return;
    }
}

/* The answer while the front stops (the pool's own words for it). */
static gw_pool_refusal stopping_refusal(void)
{
    gw_pool_refusal why = {.status = 503, .retry_after_s = 5, .type = "unavailable_error"};
    gw__strlcpy(why.message, "the pool is shutting down", sizeof why.message);
    return why;
}

static exchange *exchange_new(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                              const char *model)
{
    exchange *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->f = f;
    x->c = c;
    x->lease.fd = -1;
    x->client = (tag){.kind = TAG_CLIENT, .x = x, .fd = -1};
    x->client_fd = gw__front_client_fd(f, c);
    gw__strbuf_init(&x->head, 0);
    gw__strlcpy(x->model, model, sizeof x->model);
    r->x = x;
    return x;
}

enum MHD_Result gw__exchange_proxy(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                                   const char *method, const char *url, const char *model,
                                   const char *body, size_t len)
{
    exchange *x = exchange_new(f, c, r, model);
    if (!x)
        return MHD_NO;
    x->method = method;
    x->url = url;
    x->body = body;
    x->body_len = len;
    int rc = gw_pool_try_acquire(f->pool, model, &x->lease, &x->why);
    if (rc != GW_OK && rc != 1) {
        x->phase = X_ENDED;
        return gw__front_send_refusal(f, c, &x->why);
    }
    suspend(x);
    if (rc == 1) {
        start_job(x, JOB_ACQUIRE);
        return MHD_YES;
    }
    build_head(x);
    x->child_registered = x->lease.reused; /* L6: a kept-alive socket is in the set */
    x->phase = x->lease.fd >= 0 ? X_SEND : X_CONNECT;
    drive(x);
    return MHD_YES;
}

/* The request head for x's child (its port is known once it has a lease). */
static void build_head(exchange *x)
{
    gw_pool_front *f = x->f;
    const char *ctype = f->lib.lookup_connection_value(x->c, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *accept = f->lib.lookup_connection_value(x->c, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_ACCEPT);
    bool has_body = strcmp(x->method, "POST") == 0;
    x->head.len = 0;
    gw_upstream_request_head(&x->head, x->method, x->url, x->lease.port,
                             has_body ? (ctype ? ctype : "application/json") : NULL, accept,
                             has_body, x->body_len);
    if (!has_body)
        x->body = NULL;
}

enum MHD_Result gw__exchange_load(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                                  const char *model, bool load)
{
    if (atomic_load(&f->draining)) { /* no new worker once stopping (L4) */
        gw_pool_refusal why = stopping_refusal();
        return gw__front_send_refusal(f, c, &why);
    }
    exchange *x = exchange_new(f, c, r, model);
    if (!x)
        return MHD_NO;
    suspend(x);
    start_job(x, load ? JOB_LOAD : JOB_UNLOAD);
    return MHD_YES;
}

/* The client hung up while its request waited on the child: the child's
 * connection closes now, which is how llama-server learns to stop
 * generating (front.h invariant 3). */
void gw__exchange_client_gone(exchange *x)
{
    x->client_left = true;
    unwait(x);
    lease_end(x, false, 0);
    if (x->phase != X_STREAM)
        x->phase = X_ENDED;
    resume(x);
}

/* An edge on a child's socket (L6): the exchange waiting on it goes on. */
void gw__exchange_child_event(gw_pool_front *f, int fd)
{
    exchange *x = (size_t)fd < f->by_fd_cap ? f->by_fd[fd] : NULL;
    if (!x || !x->live)
        return; /* idle, or its exchange is not waiting: nothing to do */
    assert(exchange_check(x));
    if (x->phase == X_STREAM) { /* MHD's callback reads it */
        resume(x);
        return;
    }
    drive(x);
}

void gw__exchange_take_done(gw_pool_front *f)
{
    uint64_t n;
    ssize_t rd = read(f->wake_fd, &n, sizeof n);
    (void)rd;
    pthread_mutex_lock(&f->done_lock);
    exchange *list = f->done;
    f->done = NULL;
    pthread_mutex_unlock(&f->done_lock);
    while (list) {
        exchange *x = list;
        list = x->done_next;
        x->done_next = NULL;
        job_done(x);
    }
}

static const char *waiting_for(const exchange *x)
{
    switch (x->phase) {
    case X_CONNECT:
        return "accepting the connection";
    case X_SEND:
        return "taking the request";
    case X_HEAD:
        return "preparing its answer";
    default:
        return "answering";
    }
}

/* L3: a live exchange past its deadline fails as a silent child; the
 * others have their client's hang-up watched from now on (L2). */
void gw__exchange_scan(gw_pool_front *f, int64_t now)
{
    exchange *x = f->live, *next;
    for (; x; x = next) {
        next = x->next;
        if (x->deadline_ns > now) {
            tag_set(f, &x->client, x->client_fd, EPOLLRDHUP);
            continue;
        }
        gw_error err;
        if (x->unmapped)
            gw__error_set(&err, GW_ENOMEM, "out of memory for the model server's socket");
        else
            gw__error_set(&err, GW_ETIMEDOUT, "the model server sent nothing for %u ms while %s",
                          f->cfg->request_timeout_s * 1000, waiting_for(x));
        unwait(x);
        child_failed(x, err.code, &err);
    }
}

/* Shutdown: every exchange still waiting on a child answers 503 (L4). */
void gw__exchange_abandon(gw_pool_front *f)
{
    while (f->live) {
        exchange *x = f->live;
        unwait(x);
        lease_end(x, false, 503);
        if (x->phase == X_STREAM) {
            x->child_failed = true;
            resume(x);
            continue;
        }
        gw_pool_refusal why = stopping_refusal();
        answer_refusal(x, &why);
    }
}
