/* remote.c — see remote.h: gw_place_request -> the placement API's JSON
 * request; the API's JSON answer -> gw_plan over the caller's devices.
 * jansson reads the answers (already a dependency of api.c); the request is
 * written with the project's JSON writer.
 */
#include "place/remote.h"
#include "render/json_writer.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends r's need and placement options (and req's reservation fields when
 * req is not NULL) as the API's request object. */
static void request_json(gw_strbuf *sb, const gw_place_request *r, const gw_reserve_req *req)
{
    gw_json j;
    gw__json_init(&j, sb, false);
    gw__json_object_begin(&j);
    if (r->model) {
        char *real = realpath(r->model, NULL);
        gw__json_key(&j, "model");
        gw__json_string(&j, real ? real : r->model);
        free(real);
        if (r->ctx) {
            gw__json_key(&j, "ctx");
            gw__json_u64(&j, r->ctx);
        }
        if (r->parallel) {
            gw__json_key(&j, "parallel");
            gw__json_u64(&j, r->parallel);
        }
    } else if (r->n_layers) {
        gw__json_key(&j, "layers");
        gw__json_u64(&j, r->n_layers);
        gw__json_key(&j, "layer_size");
        gw__json_u64(&j, r->layer_bytes);
        if (r->output_bytes) {
            gw__json_key(&j, "output_size");
            gw__json_u64(&j, r->output_bytes);
        }
    } else {
        gw__json_key(&j, "mem");
        gw__json_u64(&j, r->mem);
    }
    if (r->overhead_set) {
        gw__json_key(&j, "overhead");
        gw__json_u64(&j, r->overhead);
    }
    if (r->host_bytes) {
        gw__json_key(&j, "host_size");
        gw__json_u64(&j, r->host_bytes);
    }
    if (r->no_partial) {
        gw__json_key(&j, "allow_partial");
        gw__json_bool(&j, false);
    }
    if (r->policy_set) {
        gw__json_key(&j, "policy");
        gw__json_string(&j, gw_place_policy_name(r->opts.policy));
    }
    if (r->opts.gpus) {
        gw__json_key(&j, "gpus");
        gw__json_u64(&j, r->opts.gpus);
    }
    if (r->margin_set) {
        gw__json_key(&j, "margin");
        gw__json_u64(&j, r->opts.margin);
    }
    if (r->opts.max_temp_mc > 0) {
        gw__json_key(&j, "max_temp_c");
        gw__json_double(&j, r->opts.max_temp_mc / 1000.0);
    }
    if (r->devices_arg) {
        gw__json_key(&j, "devices");
        gw__json_array_begin(&j);
        const char *s = r->devices_arg;
        while (*s) {
            size_t n = strcspn(s, ",");
            char one[128];
            gw__strlcpy(one, s, n + 1 < sizeof one ? n + 1 : sizeof one);
            uint64_t v;
            if (gw__parse_u64(one, &v))
                gw__json_u64(&j, v);
            else
                gw__json_string(&j, one);
            s += n;
            if (*s == ',')
                s++;
        }
        gw__json_array_end(&j);
    }
    if (req) {
        if (req->owner) {
            gw__json_key(&j, "owner");
            gw__json_string(&j, req->owner);
        }
        if (req->pid) {
            gw__json_key(&j, "pid");
            gw__json_u64(&j, req->pid);
        }
        if (req->lease_ns > 0) {
            gw__json_key(&j, "lease_s");
            gw__json_i64(&j, (req->lease_ns + 999999999) / 1000000000);
        }
        if (req->key) {
            gw__json_key(&j, "key");
            gw__json_string(&j, req->key);
        }
        if (req->note) {
            gw__json_key(&j, "note");
            gw__json_string(&j, req->note);
        }
    }
    gw__json_object_end(&j);
}

static bool get_u64(const json_t *o, const char *k, uint64_t *out)
{
    const json_t *v = json_object_get(o, k);
    if (json_is_null(v) || !v) {
        *out = 0;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static int find_dev(const gw_place_device *devs, size_t n, const json_t *o, uint32_t *pos)
{
    const char *uuid = json_string_value(json_object_get(o, "uuid"));
    for (size_t i = 0; uuid && i < n; i++)
        if (strcmp(devs[i].uuid, uuid) == 0) {
            *pos = (uint32_t)i;
            return 0;
        }
    return -1;
}

static int plan_from(const json_t *o, const gw_place_device *devs, size_t n, gw_plan *p,
                     gw_error *err)
{
    gw_plan_release(p);
    const json_t *used = json_object_get(o, "devices"), *ex = json_object_get(o, "excluded");
    if (!json_is_object(o) || !json_is_boolean(json_object_get(o, "fits")) || !json_is_array(used) ||
        !json_is_array(ex))
        return gw__error_set(err, GW_EPARSE, "daemon plan: not a plan object (fits, devices, "
                                             "excluded)");
    size_t nu = json_array_size(used), nx = json_array_size(ex);
    if (nu > n || nx > n)
        return gw__error_set(err, GW_EPARSE, "daemon plan: more devices than this host has");
    size_t cap = n ? n : 1;
    p->used = calloc(cap, sizeof *p->used);
    p->excluded = calloc(cap, sizeof *p->excluded);
    if (!p->used || !p->excluded) {
        gw_plan_release(p);
        return gw__error_set(err, GW_ENOMEM, "daemon plan: out of memory");
    }
    p->cap_ = cap;
    p->fits = json_is_true(json_object_get(o, "fits"));
    p->partial = json_is_true(json_object_get(o, "partial"));
    const char *pol = json_string_value(json_object_get(o, "policy"));
    if (pol && !gw_place_policy_parse(pol, &p->policy))
        return gw__error_set(err, GW_EPARSE, "daemon plan: unknown policy '%s'", pol);
    const char *reason = json_string_value(json_object_get(o, "reason"));
    gw__strlcpy(p->reason, reason ? reason : "", sizeof p->reason);
    uint64_t nl, ngl;
    if (!get_u64(o, "need_bytes", &p->need_bytes) || !get_u64(o, "gpu_bytes", &p->gpu_bytes) ||
        !get_u64(o, "host_bytes", &p->host_bytes) || !get_u64(o, "n_layers", &nl) ||
        !get_u64(o, "ngl", &ngl) || nl > UINT32_MAX || ngl > nl)
        return gw__error_set(err, GW_EPARSE, "daemon plan: bad sizes or layer counts");
    p->n_units = (uint32_t)nl;
    p->ngl = (uint32_t)ngl;
    size_t i;
    const json_t *e;
    json_array_foreach(used, i, e) {
        gw_plan_device *u = &p->used[i];
        uint64_t layers, first;
        if (find_dev(devs, n, e, &u->device) != 0)
            return gw__error_set(err, GW_EPARSE, "daemon plan: device '%s' is not one of this "
                                                 "host's GPUs",
                                 json_string_value(json_object_get(e, "uuid")) ?: "?");
        if (!get_u64(e, "bytes", &u->bytes) || !get_u64(e, "usable_bytes", &u->usable) ||
            !get_u64(e, "layers", &layers) || !get_u64(e, "first_layer", &first) ||
            layers > nl || first > nl)
            return gw__error_set(err, GW_EPARSE, "daemon plan: bad device entry %zu", i);
        u->n_units = (uint32_t)layers;
        u->first_unit = (uint32_t)first;
        p->n_used++;
    }
    json_array_foreach(ex, i, e) {
        gw_plan_excluded *x = &p->excluded[i];
        if (find_dev(devs, n, e, &x->device) != 0)
            return gw__error_set(err, GW_EPARSE, "daemon plan: excluded device is not one of "
                                                 "this host's GPUs");
        const char *why = json_string_value(json_object_get(e, "reason"));
        gw__strlcpy(x->reason, why ? why : "", sizeof x->reason);
        p->n_excluded++;
    }
    return GW_OK;
}

int gw_place_remote_plan_from_json(const char *text, size_t len, const gw_place_device *devs,
                                   size_t n, gw_plan *plan, gw_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    if (!doc)
        return gw__error_set(err, GW_EPARSE, "daemon plan: not JSON: %s", je.text);
    int rc = plan_from(doc, devs, n, plan, err);
    json_decref(doc);
    return rc;
}

/* Turns a non-2xx answer into an error naming the daemon and status. */
static int answer_error(const gw_place_remote *d, const char *what, const gw_daemon_response *resp,
                        gw_error *err)
{
    char msg[400];
    gw_daemon_error_message(resp, msg, sizeof msg);
    int code = resp->status == 400 ? GW_EINVAL
               : resp->status == 401 || resp->status == 403 ? GW_EPERM
               : resp->status == 404 ? GW_ENOENT
                                     : GW_EIO;
    const char *hint = resp->status == 401 ? " (give the daemon's token with --token or "
                                             "GPUWATCH_TOKEN)" : "";
    return gw__error_set(err, code, "daemon %s: %s: HTTP %d: %s%s", d->url.text, what,
                         resp->status, msg, hint);
}

/* Whether a /health body is gpuwatch's: a JSON object whose "service" is
 * "gpuwatch" (src/http/api.c writes it first). */
static bool is_gpuwatch_health(const gw_daemon_response *resp)
{
    json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
    bool yes = json_is_object(doc) &&
               json_is_string(json_object_get(doc, "service")) &&
               strcmp(json_string_value(json_object_get(doc, "service")), "gpuwatch") == 0;
    json_decref(doc);
    return yes;
}

/* Fills note with "HOST:PORT answers but is not gpuwatch (WHAT)". */
static void not_gpuwatch(const gw_place_remote *d, char *note, size_t cap, const char *fmt, ...)
    GW__PRINTF(4, 5);
static void not_gpuwatch(const gw_place_remote *d, char *note, size_t cap, const char *fmt, ...)
{
    char authority[300], what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    for (char *c = what; *c; c++) /* another server's bytes: printable only */
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    snprintf(note, cap, "%s answers but is not gpuwatch (%s)",
             gw_daemon_authority(&d->url, authority, sizeof authority), what);
}

int gw_place_remote_probe(const gw_place_remote *d, gw_place_probe *what, char *note, size_t cap,
                          gw_error *err)
{
    *what = GW_PROBE_NOTHING;
    if (cap)
        note[0] = '\0';
    gw_daemon_response resp;
    int rc = gw_daemon_request(&d->url, "GET", "/health", d->token, NULL, 0,
                               GW_REMOTE_TIMEOUT_MS, &resp, err);
    if (rc == GW_ENOENT) { /* connection refused */
        snprintf(note, cap, "no daemon at %s (connection refused)", d->url.text);
        gw_error_clear(err);
        return GW_OK;
    }
    if (rc == GW_EPARSE || rc == GW_ERANGE) {
        /* something answered, and not in HTTP a gpuwatch would speak */
        char prefix[sizeof d->url.text + 16];
        const char *m = err->message;
        snprintf(prefix, sizeof prefix, "daemon %s: ", d->url.text);
        if (strncmp(m, prefix, strlen(prefix)) == 0)
            m += strlen(prefix);
        else if (strncmp(m, "daemon response: ", 17) == 0)
            m += 17;
        not_gpuwatch(d, note, cap, "%s", m);
        *what = GW_PROBE_OTHER;
        gw_error_clear(err);
        return GW_OK;
    }
    if (rc) /* a timeout, a host that is not loopback, no memory */
        return rc;
    char msg[200];
    bool ours = is_gpuwatch_health(&resp);
    if (ours && resp.status == 200) {
        *what = GW_PROBE_GPUWATCH;
    } else if (ours || resp.status == 401 || resp.status == 403 || resp.status >= 500) {
        /* ours in trouble, or maybe ours behind credentials: never guess */
        rc = answer_error(d, "GET /health", &resp, err);
    } else {
        gw_daemon_error_message(&resp, msg, sizeof msg);
        if (resp.status == 200)
            not_gpuwatch(d, note, cap, "GET /health: HTTP 200 without \"service\": \"gpuwatch\": "
                                       "'%.120s'", msg);
        else
            not_gpuwatch(d, note, cap, "GET /health: HTTP %d: '%.120s'", resp.status, msg);
        *what = GW_PROBE_OTHER;
    }
    gw_daemon_response_release(&resp);
    return rc;
}

int gw_place_remote_select(const char *url_opt, const char *token_opt, bool local,
                           const gw_place_request *r, gw_place_remote *d, bool *use,
                           char *fallback, size_t cap, gw_error *err)
{
    *use = false;
    if (cap)
        fallback[0] = '\0';
    memset(d, 0, sizeof *d);
    if (local || r->n_given || r->ledger_path || r->no_ledger)
        return GW_OK;
    const char *url = url_opt && *url_opt ? url_opt : getenv("GPUWATCH_DAEMON");
    if (!url || !*url)
        url = GW_DAEMON_DEFAULT_URL;
    int rc = gw_daemon_url_parse(url, &d->url, err);
    if (rc)
        return rc;
    d->token = token_opt && *token_opt ? token_opt : getenv("GPUWATCH_TOKEN");
    gw_place_probe what;
    rc = gw_place_remote_probe(d, &what, fallback, cap, err);
    if (rc)
        return rc;
    *use = what == GW_PROBE_GPUWATCH;
    return GW_OK;
}

/* POSTs r (and req) to path; on 2xx or 409 fills plan from the "plan"
 * member and, when id is not NULL, *id from "reservation"."id". */
static int post_place(const gw_place_remote *d, const char *path, const gw_place_request *r,
                      const gw_reserve_req *req, gw_plan *plan, int64_t *id, bool *replayed,
                      gw_error *err)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    request_json(&sb, r, req);
    if (sb.failed) {
        gw__strbuf_release(&sb);
        return gw__error_set(err, GW_ENOMEM, "daemon request: out of memory");
    }
    gw_daemon_response resp;
    int rc = gw_daemon_request(&d->url, "POST", path, d->token, sb.data, sb.len,
                               GW_REMOTE_TIMEOUT_MS, &resp, err);
    gw__strbuf_release(&sb);
    if (rc)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "POST %s", path);
    if (resp.status != 200 && resp.status != 201 && resp.status != 409) {
        rc = answer_error(d, what, &resp, err);
        gw_daemon_response_release(&resp);
        return rc;
    }
    json_error_t je;
    json_t *doc = json_loadb(resp.body, resp.body_len, 0, &je);
    if (!doc) {
        rc = gw__error_set(err, GW_EPARSE, "daemon %s: %s: answer is not JSON: %s", d->url.text,
                           what, je.text);
    } else {
        rc = plan_from(json_object_get(doc, "plan"), r->devs, r->n_devs, plan, err);
        if (!rc && id) {
            const json_t *res = json_object_get(doc, "reservation");
            const json_t *jid = json_object_get(res, "id");
            *id = 0;
            if (replayed)
                *replayed = json_is_true(json_object_get(doc, "replayed"));
            if (plan->fits && (!json_is_integer(jid) || json_integer_value(jid) <= 0))
                rc = gw__error_set(err, GW_EPARSE, "daemon %s: %s: no reservation id in the "
                                                   "answer", d->url.text, what);
            else if (plan->fits)
                *id = (int64_t)json_integer_value(jid);
        }
        if (!rc && resp.status == 409 && plan->fits)
            rc = gw__error_set(err, GW_EPARSE, "daemon %s: %s: 409 with a plan that fits",
                               d->url.text, what);
    }
    json_decref(doc);
    gw_daemon_response_release(&resp);
    return rc;
}

int gw_place_remote_reserve(const gw_place_remote *d, const gw_place_request *r,
                            const gw_reserve_req *req, gw_plan *plan, int64_t *id, bool *replayed,
                            gw_error *err)
{
    *replayed = false;
    return post_place(d, "/api/v1/reservations", r, req, plan, id, replayed, err);
}

int gw_place_remote_plan(const gw_place_remote *d, const gw_place_request *r, gw_plan *plan,
                         gw_error *err)
{
    return post_place(d, "/api/v1/plan", r, NULL, plan, NULL, NULL, err);
}

int gw_place_remote_release(const gw_place_remote *d, int64_t id, gw_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/reservations/%lld", (long long)id);
    gw_daemon_response resp;
    int rc = gw_daemon_request(&d->url, "DELETE", path, d->token, NULL, 0, GW_REMOTE_TIMEOUT_MS,
                               &resp, err);
    if (rc)
        return rc;
    if (resp.status != 200)
        rc = answer_error(d, "DELETE", &resp, err);
    gw_daemon_response_release(&resp);
    return rc;
}

/* POSTs body to /api/v1/reservations/ID/renew; what says what for errors. */
static int renew_post(const gw_place_remote *d, int64_t id, const char *body, size_t n,
                      const char *what, gw_error *err)
{
    char path[80];
    snprintf(path, sizeof path, "/api/v1/reservations/%lld/renew", (long long)id);
    gw_daemon_response resp;
    int rc = gw_daemon_request(&d->url, "POST", path, d->token, body, n, GW_REMOTE_TIMEOUT_MS,
                               &resp, err);
    if (rc)
        return rc;
    if (resp.status != 200)
        rc = answer_error(d, what, &resp, err);
    gw_daemon_response_release(&resp);
    return rc;
}

int gw_place_remote_renew(const gw_place_remote *d, int64_t id, int64_t lease_ns, gw_error *err)
{
    char body[64];
    int n = snprintf(body, sizeof body, "{\"lease_s\":%lld}",
                     (long long)((lease_ns + 999999999) / 1000000000));
    return renew_post(d, id, body, (size_t)n, "renew", err);
}

int gw_place_remote_set_pid(const gw_place_remote *d, int64_t id, uint32_t pid, gw_error *err)
{
    char body[48];
    int n = snprintf(body, sizeof body, "{\"pid\":%u}", pid);
    return renew_post(d, id, body, (size_t)n, "hand over", err);
}
