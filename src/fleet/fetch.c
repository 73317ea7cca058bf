/* fetch.c — see fetch.h. One multi handle per run; each transfer carries
 * its index as CURLOPT_PRIVATE so completions map back to v[]. */
#include "fleet/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ll
/* 5 ms promised (fetch.h): 2 of them for the poll's rounding and the end */
#define STRAGGLER_SLACK_NS (3 * NS_PER_MS)

typedef struct xfer {
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    bool done;
} xfer;

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
                        int64_t elapsed, size_t max_body, long timeout_ms)
{
    x->done = true;
    v->elapsed_ns = elapsed;
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

/* Reads curl's completion messages into v (telling o->on_done). Returns
 * how many answered. */
static size_t drain(const gw__curl_lib *lib, CURLM *multi, xfer *xs, gw__fetch *v, int64_t t0,
                    int64_t *latest_answer, const gw__fetch_opts *o, size_t max_body,
                    long timeout_ms)
{
    size_t answered = 0;
    int left;
    for (CURLMsg *msg; (msg = lib->multi_info_read(multi, &left));) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        void *priv = NULL;
        lib->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        size_t i = (size_t)(uintptr_t)priv;
        int64_t elapsed = gw__now_mono_ns() - t0;
        xfer_finish(lib, &xs[i], &v[i], msg->data.result, elapsed, max_body, timeout_ms);
        if (v[i].rc == GW_OK) {
            answered++;
            if (elapsed > *latest_answer)
                *latest_answer = elapsed;
        }
        if (o->on_done)
            o->on_done(o->ctx, i);
    }
    return answered;
}

/* Abandons every transfer still running (the straggler rule). */
static void cut_stragglers(xfer *xs, gw__fetch *v, size_t n, int64_t elapsed,
                           int64_t latest_answer, size_t n_answered, const gw__fetch_opts *o)
{
    for (size_t i = 0; i < n; i++) {
        if (xs[i].done)
            continue;
        xs[i].done = true;
        v[i].rc = GW_ETIMEDOUT;
        v[i].elapsed_ns = elapsed;
        snprintf(v[i].error, sizeof v[i].error,
                 "no answer within %.1f ms, while %zu other%s answered within %.1f ms (not "
                 "waited for: twice the slowest answer)",
                 (double)elapsed / 1e6, n_answered, n_answered == 1 ? "" : "s",
                 (double)latest_answer / 1e6);
        if (o->on_done)
            o->on_done(o->ctx, i);
    }
}

static void fail_all(gw__fetch *v, size_t n, int rc, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        v[i].rc = rc;
        gw__strlcpy(v[i].error, why, sizeof v[i].error);
    }
}

int gw__fetch_run(const gw__curl_lib *lib, gw__fetch *v, size_t n, const gw__fetch_opts *o,
                  gw_error *err)
{
    long timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    size_t max_body = o->max_body ? o->max_body : (16u << 20);
    if (n == 0)
        return GW_OK;
    xfer *xs = calloc(n, sizeof *xs);
    CURLM *multi = xs ? lib->multi_init() : NULL;
    if (!multi) {
        free(xs);
        fail_all(v, n, GW_ENOMEM, "out of memory");
        return gw__error_set(err, GW_ENOMEM, "fetch: out of memory");
    }
    int rc = GW_OK;
    for (size_t i = 0; i < n && rc == GW_OK; i++) {
        if (!xfer_setup(lib, &xs[i], &v[i], i, o, max_body, timeout_ms) ||
            lib->multi_add_handle(multi, xs[i].easy) != CURLM_OK)
            rc = gw__error_set(err, GW_ENOMEM, "fetch: out of memory setting up %s", v[i].url);
    }
    int64_t t0 = o->start_ns ? o->start_ns : gw__now_mono_ns(), latest = 0;
    size_t n_answered = 0;
    int running = rc == GW_OK ? 1 : 0;
    while (running) {
        CURLMcode mc = lib->multi_perform(multi, &running);
        if (mc != CURLM_OK) {
            rc = gw__error_set(err, GW_EIO, "fetch: %s", lib->multi_strerror(mc));
            break;
        }
        n_answered += drain(lib, multi, xs, v, t0, &latest, o, max_body, timeout_ms);
        if (!running)
            break;
        int wait_ms = 100;
        if (o->straggler_cut && n_answered) {
            int64_t now = gw__now_mono_ns() - t0, cut_at = 2 * latest + STRAGGLER_SLACK_NS;
            if (now >= cut_at) {
                cut_stragglers(xs, v, n, now, latest, n_answered, o);
                break;
            }
            int64_t left_ms = (cut_at - now + NS_PER_MS - 1) / NS_PER_MS;
            if (left_ms < wait_ms)
                wait_ms = (int)left_ms;
        }
        lib->multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
    if (rc != GW_OK)
        fail_all(v, n, rc, err->message);
    for (size_t i = 0; i < n; i++) {
        if (xs[i].easy) {
            lib->multi_remove_handle(multi, xs[i].easy);
            lib->easy_cleanup(xs[i].easy);
        }
        if (xs[i].headers)
            lib->slist_free_all(xs[i].headers);
    }
    lib->multi_cleanup(multi);
    free(xs);
    return rc;
}
