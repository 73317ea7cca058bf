/* fetch.c — see fetch.h. One multi handle per run; each transfer carries
 * its index as CURLOPT_PRIVATE so completions map back to v[]. */
#include "fleet/fetch.h"
#include "fleet/plain_http.h"

#include <assert.h>
#include <poll.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ll
/* the straggler rule's slack (fetch.h): of the 5 ms the whole command is
 * allowed, 3 are left for the process around the poll */
#define STRAGGLER_SLACK_NS (2 * NS_PER_MS)

typedef struct xfer {
    CURL *easy;                  /* libcurl's transfers ... */
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    gw__plain_http plain;        /* ... and ours (plain_http.h) */
    bool is_plain;
    bool done;
} xfer;

bool gw__fetch_needs_curl(const char *url)
{
    return !gw__plain_http_handles(url);
}

void gw__fetch_init(gw__fetch *f)
{
    f->rc = GW_EIO;
    f->status = 0;
    gw__strbuf_release(&f->body);
    f->error[0] = '\0';
    f->elapsed_ns = 0;
}

void gw__fetch_release(gw__fetch *f)
{
    gw__strbuf_release(&f->body);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    gw_strbuf *sb = userp;
    size_t n = size * nmemb;
    gw__strbuf_append(sb, data, n);
    return sb->failed ? 0 : n; /* 0: curl fails the transfer (CURLE_WRITE_ERROR) */
}

/* Sets up x for v (index i). False when out of memory. */
static bool xfer_setup(const gw__curl_lib *lib, xfer *x, gw__fetch *v, size_t i,
                       const gw__fetch_opts *o, size_t max_body, long timeout_ms)
{
    x->easy = lib->easy_init();
    if (!x->easy)
        return false;
    gw__strbuf_init(&v->body, max_body);
    CURL *e = x->easy;
    lib->easy_setopt(e, CURLOPT_URL, v->url);
    lib->easy_setopt(e, CURLOPT_PRIVATE, (void *)(uintptr_t)i);
    lib->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    lib->easy_setopt(e, CURLOPT_WRITEDATA, &v->body);
    lib->easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    lib->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    lib->easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    lib->easy_setopt(e, CURLOPT_USERAGENT, "gpuwatch/" GW_VERSION_STRING);
    if (o->ca_file && *o->ca_file)
        lib->easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    x->headers = lib->slist_append(NULL, "Accept: application/json");
    if (v->token && *v->token) {
        char auth[600];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", v->token);
        struct curl_slist *h = lib->slist_append(x->headers, auth);
        if (h)
            x->headers = h;
    }
    if (v->post) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 v->content_type ? v->content_type : "application/json");
        struct curl_slist *h = lib->slist_append(x->headers, ct);
        if (h)
            x->headers = h;
        lib->easy_setopt(e, CURLOPT_POSTFIELDS, v->post);
    }
    if (!x->headers)
        return false;
    lib->easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    return true;
}

/* Records the end of transfer i from curl's result. */
static void xfer_finish(const gw__curl_lib *lib, xfer *x, gw__fetch *v, CURLcode res,
                        size_t max_body, long timeout_ms)
{
    if (res == CURLE_OK) {
        lib->easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &v->status);
        v->rc = GW_OK;
        if (!v->body.data) /* an empty body reads as "" */
            gw__strbuf_append(&v->body, "", 0);
        return;
    }
    const char *why = x->errbuf[0] ? x->errbuf : lib->easy_strerror(res);
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        v->rc = GW_ETIMEDOUT;
        snprintf(v->error, sizeof v->error, "no answer within %ld ms", timeout_ms);
        return;
    case CURLE_COULDNT_CONNECT:
        v->rc = GW_ENOENT;
        break;
    case CURLE_WRITE_ERROR:
        if (v->body.failed) {
            v->rc = GW_ERANGE;
            snprintf(v->error, sizeof v->error, "answer longer than %zu bytes", max_body);
            return;
        }
        v->rc = GW_EIO;
        break;
    case CURLE_OUT_OF_MEMORY:
        v->rc = GW_ENOMEM;
        break;
    default:
        v->rc = GW_EIO;
    }
    gw__strlcpy(v->error, why, sizeof v->error);
    size_t len = strlen(v->error);
    while (len && (v->error[len - 1] == '\n' || v->error[len - 1] == ' '))
        v->error[--len] = '\0';
}

/* One gw__fetch_run: its transfers and where the poll stands. */
typedef struct fetch_run {
    const gw__curl_lib *lib;
    CURLM *multi;          /* NULL until a transfer needs libcurl */
    int curl_running;      /* libcurl's transfers still running */
    xfer *xs;
    struct pollfd *pf;     /* the plain transfers' sockets of one wait ... */
    struct curl_waitfd *wf; /* ... as libcurl's poll takes them */
    size_t *of;            /* the transfer of each */
    gw__fetch *v;
    size_t n, open;        /* transfers; how many have not ended */
    const gw__fetch_opts *o;
    size_t max_body;
    long timeout_ms;
    int64_t t0;            /* the run's start */
    int64_t latest;        /* the latest answer's time since t0 */
    size_t answered;
} fetch_run;

/* Books the end of transfer i (its rc and error already set). */
static void transfer_ended(fetch_run *r, size_t i, int64_t now)
{
    xfer *x = &r->xs[i];
    gw__fetch *v = &r->v[i];
    x->done = true;
    r->open--;
    v->elapsed_ns = now - r->t0;
    if (v->rc == GW_OK) {
        r->answered++;
        if (v->elapsed_ns > r->latest)
            r->latest = v->elapsed_ns;
    }
    if (r->o->on_done)
        r->o->on_done(r->o->ctx, i);
}

/* Reads curl's completion messages. */
static void drain_curl(fetch_run *r)
{
    int left;
    for (CURLMsg *msg; (msg = r->lib->multi_info_read(r->multi, &left));) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        void *priv = NULL;
        r->lib->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        size_t i = (size_t)(uintptr_t)priv;
        xfer_finish(r->lib, &r->xs[i], &r->v[i], msg->data.result, r->max_body, r->timeout_ms);
        transfer_ended(r, i, gw__now_mono_ns());
    }
}

/* Abandons every transfer still running (the straggler rule). */
static void cut_stragglers(fetch_run *r, int64_t now)
{
    double elapsed_ms = (double)(now - r->t0) / 1e6, latest_ms = (double)r->latest / 1e6;
    size_t answered = r->answered;
    for (size_t i = 0; i < r->n; i++) {
        if (r->xs[i].done)
            continue;
        gw__plain_http_close(&r->xs[i].plain);
        r->v[i].rc = GW_ETIMEDOUT;
        snprintf(r->v[i].error, sizeof r->v[i].error,
                 "no answer within %.1f ms, while %zu other%s answered within %.1f ms (not "
                 "waited for: twice the slowest answer)",
                 elapsed_ms, answered, answered == 1 ? "" : "s", latest_ms);
        transfer_ended(r, i, now);
    }
}

/* Starts transfer i: ours when its URL is a plain one (plain_http.h),
 * libcurl's otherwise. False when out of memory setting up libcurl. */
static bool transfer_start(fetch_run *r, size_t i)
{
    xfer *x = &r->xs[i];
    gw__fetch *v = &r->v[i];
    if (gw__plain_http_handles(v->url)) {
        x->is_plain = true;
        if (!gw__plain_http_start(&x->plain, v, r->max_body))
            transfer_ended(r, i, gw__now_mono_ns());
        assert(x->done || x->plain.fd >= 0); /* plain_http.h invariant 1 */
        return true;
    }
    if (!r->lib || !r->lib->handle) {
        v->rc = GW_ELOAD;
        gw__strlcpy(v->error, "this URL needs libcurl (https or a host name), which was not "
                              "loaded", sizeof v->error);
        transfer_ended(r, i, gw__now_mono_ns());
        return true;
    }
    if (!r->multi && !(r->multi = r->lib->multi_init()))
        return false;
    if (!xfer_setup(r->lib, x, v, i, r->o, r->max_body, r->timeout_ms) ||
        r->lib->multi_add_handle(r->multi, x->easy) != CURLM_OK)
        return false;
    r->curl_running++;
    return true;
}

/* Ends the plain transfers past their deadline; returns how long until
 * the next one's (or max_ns). */
static int64_t plain_deadlines(fetch_run *r, int64_t now, int64_t max_ns)
{
    int64_t deadline = r->t0 + (int64_t)r->timeout_ms * NS_PER_MS;
    for (size_t i = 0; i < r->n; i++) {
        xfer *x = &r->xs[i];
        if (!x->is_plain || x->done)
            continue;
        if (now < deadline)
            return deadline - now < max_ns ? deadline - now : max_ns;
        gw__plain_http_close(&x->plain);
        r->v[i].rc = GW_ETIMEDOUT;
        snprintf(r->v[i].error, sizeof r->v[i].error, "no answer within %ld ms", r->timeout_ms);
        transfer_ended(r, i, now);
    }
    return max_ns;
}

/* Waits at most wait_ns for the sockets of every running transfer (ours
 * through libcurl's poll when it has transfers too, so one wait covers
 * both), then advances ours. False when libcurl's poll failed. */
static bool wait_and_step(fetch_run *r, int64_t wait_ns)
{
    struct pollfd *pf = r->pf;
    struct curl_waitfd *wf = r->wf;
    size_t *of = r->of, np = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->xs[i].is_plain && !r->xs[i].done) {
            pf[np] = (struct pollfd){.fd = r->xs[i].plain.fd,
                                     .events = gw__plain_http_events(&r->xs[i].plain)};
            of[np++] = i;
        }
    if (r->curl_running) {
        for (size_t k = 0; k < np; k++)
            wf[k] = (struct curl_waitfd){.fd = pf[k].fd, .events = pf[k].events};
        int ms = (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
        if (r->lib->multi_poll(r->multi, wf, (unsigned)np, ms, NULL) != CURLM_OK)
            return false;
        for (size_t k = 0; k < np; k++) /* libcurl passes POLLIN/OUT/PRI only: on Linux a
                                           failed or reset socket is also readable/writable */
            pf[k].revents = wf[k].revents;
    } else {
        struct timespec ts = {.tv_sec = wait_ns / 1000000000ll, .tv_nsec = wait_ns % 1000000000ll};
        if (ppoll(pf, np, &ts, NULL) < 0)
            np = 0; /* EINTR: the loop comes back */
    }
    for (size_t k = 0; k < np; k++)
        if (pf[k].revents && gw__plain_http_step(&r->xs[of[k]].plain, &r->v[of[k]], pf[k].revents))
            transfer_ended(r, of[k], gw__now_mono_ns());
    return true;
}

static void fail_all(gw__fetch *v, size_t n, int rc, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        v[i].rc = rc;
        gw__strlcpy(v[i].error, why, sizeof v[i].error);
    }
}

/* The poll loop: until every transfer has ended or the straggler rule
 * cuts the rest. */
static int run_loop(fetch_run *r, gw_error *err)
{
    while (r->open) {
        if (r->curl_running) {
            CURLMcode mc = r->lib->multi_perform(r->multi, &r->curl_running);
            if (mc != CURLM_OK)
                return gw__error_set(err, GW_EIO, "fetch: %s", r->lib->multi_strerror(mc));
            drain_curl(r);
        }
        int64_t now = gw__now_mono_ns();
        int64_t wait_ns = plain_deadlines(r, now, 100 * NS_PER_MS);
        if (!r->open)
            break;
        if (r->o->straggler_cut && r->answered) {
            int64_t cut_at = r->t0 + 2 * r->latest + STRAGGLER_SLACK_NS;
            if (now >= cut_at) {
                cut_stragglers(r, now);
                break;
            }
            if (cut_at - now < wait_ns)
                wait_ns = cut_at - now;
        }
        if (!wait_and_step(r, wait_ns))
            return gw__error_set(err, GW_EIO, "fetch: libcurl's poll failed");
    }
    return GW_OK;
}

int gw__fetch_run(const gw__curl_lib *lib, gw__fetch *v, size_t n, const gw__fetch_opts *o,
                  gw_error *err)
{
    if (n == 0)
        return GW_OK;
    fetch_run r = {.lib = lib, .v = v, .n = n, .open = n, .o = o,
                   .max_body = o->max_body ? o->max_body : (16u << 20),
                   .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000};
    r.t0 = o->start_ns ? o->start_ns : gw__now_mono_ns();
    r.xs = calloc(n, sizeof *r.xs);
    r.pf = calloc(n, sizeof *r.pf);
    r.wf = calloc(n, sizeof *r.wf);
    r.of = calloc(n, sizeof *r.of);
    if (!r.xs || !r.pf || !r.wf || !r.of) {
        free(r.xs);
        free(r.pf);
        free(r.wf);
        free(r.of);
        fail_all(v, n, GW_ENOMEM, "out of memory");
        return gw__error_set(err, GW_ENOMEM, "fetch: out of memory");
    }
    int rc = GW_OK;
    for (size_t i = 0; i < n; i++)
        r.xs[i].plain.fd = -1;
    for (size_t i = 0; i < n && rc == GW_OK; i++)
        if (!transfer_start(&r, i))
            rc = gw__error_set(err, GW_ENOMEM, "fetch: out of memory setting up %s", v[i].url);
    if (rc == GW_OK)
        rc = run_loop(&r, err);
    if (rc != GW_OK)
        fail_all(v, n, rc, err->message);
    for (size_t i = 0; i < n; i++) {
        gw__plain_http_close(&r.xs[i].plain);
        if (r.xs[i].easy) {
            lib->multi_remove_handle(r.multi, r.xs[i].easy);
            lib->easy_cleanup(r.xs[i].easy);
        }
        if (r.xs[i].headers)
            lib->slist_free_all(r.xs[i].headers);
    }
    if (r.multi)
        lib->multi_cleanup(r.multi);
    free(r.xs);
    free(r.pf);
    free(r.wf);
    free(r.of);
    return rc;
}
