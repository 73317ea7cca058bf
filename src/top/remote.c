/* remote.c — a frame's data from a daemon (remote.h). */
#include "top/remote.h"

#include "core/parse.h"
#include "core/sse.h"
#include "core/util.h"
#include "place/daemon_client.h"
#include "render/json_read.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STREAM_MAX_EVENT (1u << 20) /* an /events record: a /health body at most */

struct gw__top_remote {
    gw_daemon_url url;
    char token[256];
    int stream_fd;         /* the /events stream, -1 when not following */
    gw__sse_parser sse;
    gw_strbuf pending;     /* stream bytes that came with the response head */
};

int gw__top_remote_open(gw__top_remote **out, const char *url, const char *token,
                        gw_error *err)
{
    *out = NULL;
    gw__top_remote *r = calloc(1, sizeof *r);
    if (!r)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    int rc = gw_daemon_url_parse(url, &r->url, err);
    if (rc != GW_OK) {
        free(r);
        return rc;
    }
    gw__strlcpy(r->token, token ? token : "", sizeof r->token);
    r->stream_fd = -1;
    gw__sse_init(&r->sse, STREAM_MAX_EVENT);
    gw__strbuf_init(&r->pending, GW_DAEMON_MAX_HEAD);
    *out = r;
    return GW_OK;
}

void gw__top_remote_free(gw__top_remote *r)
{
    if (!r)
        return;
    if (r->stream_fd >= 0)
        close(r->stream_fd);
    gw__sse_release(&r->sse);
    gw__strbuf_release(&r->pending);
    free(r);
}

const char *gw__top_remote_url(const gw__top_remote *r)
{
    return r->url.text;
}

/* GET path: a 200 answer in *resp (caller releases); GW_EIO naming the
 * URL and status otherwise. */
static int get_ok(gw__top_remote *r, const char *path, int timeout_ms, gw_daemon_response *resp,
                  gw_error *err)
{
    memset(resp, 0, sizeof *resp);
    if (gw_daemon_request(&r->url, "GET", path, r->token[0] ? r->token : NULL, NULL, 0,
                          timeout_ms, resp, err) != GW_OK)
        return err->code ? err->code : GW_EIO;
    if (resp->status != 200) {
        gw__error_set(err, GW_EIO, "%s%s: HTTP %d", r->url.text, path, resp->status);
        gw_daemon_response_release(resp);
        return GW_EIO;
    }
    return GW_OK;
}

/* GET path as parsed JSON (caller decrefs); NULL with err on failure. */
static json_t *get_json(gw__top_remote *r, const char *path, int timeout_ms, gw_error *err)
{
    gw_daemon_response resp;
    if (get_ok(r, path, timeout_ms, &resp, err) != GW_OK)
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(resp.body, resp.body_len, 0, &jerr);
    gw_daemon_response_release(&resp);
    if (!doc)
        gw__error_set(err, GW_EPARSE, "%s%s: not JSON (%s)", r->url.text, path, jerr.text);
    return doc;
}

int gw__top_remote_progress(gw__top_remote *r, int timeout_ms, gw_progress **out, size_t *n,
                            gw_error *err)
{
    *out = NULL;
    *n = 0;
    gw_daemon_response resp;
    int rc = get_ok(r, "/api/v1/progress", timeout_ms, &resp, err);
    if (rc != GW_OK)
        return rc;
    rc = gw_progress_list_from_json(resp.body, resp.body_len, out, n, err);
    gw_daemon_response_release(&resp);
    return rc;
}


/* A device object; an unknown state reads as ok (what top showed before
 * it knew the word; the reason, if any, is still shown). */
static void decode_device(json_t *g, gw_device *d, int64_t now)
{
    if (!gw__device_read(g, d, now))
        d->state = GW_DEVICE_OK;
}

static void decode_process(json_t *o, gw_process *p)
{
    double v = 0;
    p->pid = gw__jr_num(o, "pid", NULL, &v) && v > 0 && v < 4294967296.0 ? (uint32_t)v : 0;
    p->device_index = gw__jr_num(o, "device_index", NULL, &v) && v >= 0 ? (uint32_t)v : 0;
    if (gw__jr_num(o, "gpu_memory_bytes", NULL, &v) && v >= 0) {
        p->valid |= 1u << GW_PROC_GPU_MEMORY;
        p->gpu_memory = (uint64_t)v;
    }
    if (gw__jr_num(o, "sm_percent", NULL, &p->sm_util))
        p->valid |= 1u << GW_PROC_SM_UTIL;
    if (gw__jr_num(o, "host_memory_bytes", NULL, &v) && v >= 0) {
        p->valid |= 1u << GW_PROC_HOST_MEMORY;
        p->host_memory = (uint64_t)v;
    }
    if (gw__jr_num(o, "cpu_percent", NULL, &p->cpu_util))
        p->valid |= 1u << GW_PROC_CPU_UTIL;
    gw__jr_str(o, "user", p->user, sizeof p->user);
    gw__jr_str(o, "name", p->name, sizeof p->name);
    gw__jr_str(o, "cmdline", p->cmdline, sizeof p->cmdline);
    gw__jr_str(o, "model", p->model, sizeof p->model);
    p->valid |= (p->user[0] ? 1u << GW_PROC_USER : 0) | (p->name[0] ? 1u << GW_PROC_NAME : 0) |
                (p->cmdline[0] ? 1u << GW_PROC_CMDLINE : 0) |
                (p->model[0] ? 1u << GW_PROC_MODEL : 0);
}

/* A snapshot allocated the way gw_snapshot_release frees one. */
static gw_snapshot *decode_snapshot(json_t *gpus, json_t *procs, int64_t now)
{
    gw_snapshot *s = calloc(1, sizeof *s);
    size_t nd = json_array_size(gpus), np = json_array_size(procs);
    if (!s)
        return NULL;
    s->refcount__ = 1;
    s->taken_ns = now;
    s->devices = nd ? calloc(nd, sizeof *s->devices) : NULL;
    s->processes = np ? calloc(np, sizeof *s->processes) : NULL;
    if ((nd && !s->devices) || (np && !s->processes)) {
        gw_snapshot_release(s);
        return NULL;
    }
    for (size_t i = 0; i < nd; i++)
        if (json_is_object(json_array_get(gpus, i)))
            decode_device(json_array_get(gpus, i), &s->devices[s->n_devices++], now);
    for (size_t i = 0; i < np; i++) {
        gw_process *p = &s->processes[s->n_processes];
        decode_process(json_array_get(procs, i), p);
        if (p->pid && p->device_index < s->n_devices)
            s->n_processes++;
    }
    return s;
}

int gw__top_remote_snapshot(gw__top_remote *r, int timeout_ms, gw_snapshot **out,
                            gw_error *err)
{
    *out = NULL;
    json_t *m = get_json(r, "/gpu/metrics", timeout_ms, err);
    if (!m)
        return err->code ? err->code : GW_EIO;
    json_t *p = get_json(r, "/gpu/processes", timeout_ms, err);
    if (!p) {
        json_decref(m);
        return err->code ? err->code : GW_EIO;
    }
    json_t *gpus = json_object_get(m, "gpus"), *procs = json_object_get(p, "processes");
    int rc = GW_OK;
    if (!json_is_array(gpus)) {
        rc = gw__error_set(err, GW_EPARSE, "%s/gpu/metrics: no \"gpus\" array", r->url.text);
    } else {
        *out = decode_snapshot(gpus, json_is_array(procs) ? procs : NULL, gw__now_real_ns());
        if (!*out)
            rc = gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    json_decref(m);
    json_decref(p);
    return rc;
}

static gw__event_severity severity_of(const char *s)
{
    return strcmp(s, "critical") == 0 ? GW__SEV_CRITICAL
           : strcmp(s, "warning") == 0 ? GW__SEV_WARNING
                                       : GW__SEV_INFO;
}

/* One event object (the records of /api/v1/events and of the /events
 * stream) into o; e's "seq" already checked. */
static void decode_event(json_t *e, gw__event *o)
{
    double v = 0;
    memset(o, 0, sizeof *o);
    o->seq = gw__jr_num(e, "seq", NULL, &v) && v > 0 ? (uint64_t)v : 0;
    char buf[32];
    gw__jr_str(e, "time", buf, sizeof buf);
    if (!gw__parse_rfc3339(buf, &o->time_ns))
        o->time_ns = 0;
    gw__jr_str(e, "severity", buf, sizeof buf);
    o->severity = severity_of(buf);
    gw__jr_str(e, "type", buf, sizeof buf);
    for (int t = 0; t < GW__EV_COUNT; t++)
        if (strcmp(buf, gw__event_type_name((gw__event_type)t)) == 0)
            o->type = (gw__event_type)t;
    o->gpu = gw__jr_num(e, "gpu", NULL, &v) ? (int)v : -1;
    o->value = gw__jr_num(e, "value", NULL, &v) ? v : NAN;
    gw__jr_str(e, "uuid", o->uuid, sizeof o->uuid);
    gw__jr_str(e, "message", o->message, sizeof o->message);
}

size_t gw__top_remote_events(gw__top_remote *r, int timeout_ms, uint64_t after, gw__event *out,
                             size_t max)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/events?after=%llu", (unsigned long long)after);
    gw_error err;
    gw_error_clear(&err);
    json_t *doc = get_json(r, path, timeout_ms, &err);
    json_t *evs = json_object_get(doc, "events");
    size_t n = 0, total = json_array_size(evs);
    /* the newest `max` of them */
    for (size_t i = total > max ? total - max : 0; i < total; i++) {
        json_t *e = json_array_get(evs, i);
        double v = 0;
        if (!json_is_object(e) || !gw__jr_num(e, "seq", NULL, &v) || v <= (double)after)
            continue;
        decode_event(e, &out[n++]);
    }
    json_decref(doc);
    return n;
}

/* --------------------------------------------------------- the stream */

/* What one read of the stream collected (the parser's callback fills it). */
typedef struct stream_ctx {
    gw__event *out;
    size_t max, n;
    bool published;
} stream_ctx;

/* "snapshot" marks a publication; any other record is an event object
 * (the daemon's gw__api_event_json). A record that is not one is skipped
 * (invariant 1). Keeps the newest max events. */
static bool on_stream_event(void *arg, const gw__sse_event *ev)
{
    stream_ctx *c = arg;
    if (strcmp(ev->type, "snapshot") == 0) {
        c->published = true;
        return true;
    }
    json_t *e = json_loadb(ev->data, ev->data_len, 0, NULL);
    double v = 0;
    if (c->max && json_is_object(e) && gw__jr_num(e, "seq", NULL, &v) && v >= 1) {
        if (c->n == c->max) {
            memmove(c->out, c->out + 1, (c->max - 1) * sizeof *c->out);
            c->n--;
        }
        decode_event(e, &c->out[c->n++]);
    }
    json_decref(e);
    return true;
}

int gw__top_remote_follow(gw__top_remote *r, int timeout_ms, gw_error *err)
{
    gw__top_remote_unfollow(r);
    gw__strbuf_reset(&r->pending);
    int rc = gw_daemon_stream_open(&r->url, "/events", r->token[0] ? r->token : NULL, timeout_ms,
                                   &r->stream_fd, &r->pending, err);
    if (rc == GW_OK && r->pending.failed) {
        gw__top_remote_unfollow(r);
        rc = gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    return rc;
}

void gw__top_remote_unfollow(gw__top_remote *r)
{
    if (r->stream_fd >= 0)
        close(r->stream_fd);
    r->stream_fd = -1;
    gw__sse_reset(&r->sse);
}

int gw__top_remote_stream_fd(const gw__top_remote *r)
{
    return r->stream_fd;
}

size_t gw__top_remote_stream_read(gw__top_remote *r, gw__event *out, size_t max, bool *published,
                                  gw_error *err)
{
    stream_ctx c = {.out = out, .max = max};
    int rc = GW_OK;
    if (r->stream_fd >= 0 && r->pending.len) {
        rc = gw__sse_feed(&r->sse, r->pending.data, r->pending.len, on_stream_event, &c, err);
        gw__strbuf_reset(&r->pending);
    }
    char buf[16384];
    for (int reads = 0; rc == GW_OK && r->stream_fd >= 0 && reads < 64; reads++) {
        ssize_t n = read(r->stream_fd, buf, sizeof buf);
        if (n > 0) {
            rc = gw__sse_feed(&r->sse, buf, (size_t)n, on_stream_event, &c, err);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            rc = gw__error_set(err, GW_EIO, "%s/events: %s", r->url.text,
                               n == 0 ? "the daemon closed the stream" : strerror(errno));
        }
    }
    if (rc != GW_OK) {
        if (rc != GW_EIO) { /* the parser's message: say which stream */
            char why[sizeof err->message];
            gw__strlcpy(why, err->message, sizeof why);
            gw__error_set(err, rc, "%s/events: %s", r->url.text, why);
        }
        gw__top_remote_unfollow(r);
    }
    *published = c.published;
    return c.n;
}
