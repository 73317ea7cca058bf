/* api.c — the placement endpoints (see api.h): JSON request -> request.c's
 * gw_place_request -> gw_place / gw_ledger_reserve -> JSON response.
 *
 * Request object (POST /api/v1/plan and /api/v1/reservations); sizes are a
 * byte count or a string like "20GiB":
 *   need:      "mem" | "model" (+ "ctx", "parallel") | "layers" + "layer_size"
 *              (+ "output_size"), "overhead", "host_size", "allow_partial"
 *   placement: "policy", "gpus", "devices" [index or uuid...], "margin",
 *              "max_temp_c"
 *   reserve:   "owner", "pid", "lease_s", "key" (the Idempotency-Key header wins)
 * Unknown members are a 400 naming them: a typo never silently changes a plan.
 */
#include "place/api.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct gw_place_api {
    pthread_mutex_t lock;
    gw_ledger *ledger;
    char proc_root[512];
    char **model_dirs; /* resolved with realpath */
    size_t n_model_dirs;
    gw_place_policy policy;
    uint64_t margin;
    bool withhold_notes; /* read-only daemon: notes (command lines) written as null */
};

int gw_place_api_open(gw_place_api **out, const gw_place_api_config *cfg, gw_error *err)
{
    *out = NULL;
    gw_place_api *a = calloc(1, sizeof *a);
    if (!a)
        return gw__error_set(err, GW_ENOMEM, "placement API: out of memory");
    gw_ledger_opts lo;
    gw_ledger_opts_init(&lo);
    lo.path = cfg->ledger_path;
    lo.proc_root = cfg->proc_root;
    int rc = gw_ledger_open(&a->ledger, &lo, err);
    if (rc) {
        free(a);
        return rc;
    }
    gw__strlcpy(a->proc_root, cfg->proc_root ? cfg->proc_root : "", sizeof a->proc_root);
    a->policy = cfg->default_policy;
    a->margin = cfg->default_margin;
    a->withhold_notes = cfg->withhold_notes;
    if (cfg->n_model_dirs) {
        a->model_dirs = calloc(cfg->n_model_dirs, sizeof *a->model_dirs);
        if (!a->model_dirs) {
            gw_place_api_close(a);
            return gw__error_set(err, GW_ENOMEM, "placement API: out of memory");
        }
        for (size_t i = 0; i < cfg->n_model_dirs; i++) {
            char *real = realpath(cfg->model_dirs[i], NULL);
            if (!real) {
                rc = gw__error_set(err, GW_EINVAL, "model directory %s: %s", cfg->model_dirs[i],
                                   strerror(errno));
                gw_place_api_close(a);
                return rc;
            }
            a->model_dirs[a->n_model_dirs++] = real;
        }
    }
    pthread_mutex_init(&a->lock, NULL);
    *out = a;
    return GW_OK;
}

void gw_place_api_close(gw_place_api *a)
{
    if (!a)
        return;
    gw_ledger_close(a->ledger);
    for (size_t i = 0; i < a->n_model_dirs; i++)
        free(a->model_dirs[i]);
    free(a->model_dirs);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ------------------------------------------------------------ helpers */

static int http_of(int code)
{
    switch (code) {
    case GW_EINVAL:
    case GW_EPARSE:
    case GW_ERANGE:
    case GW_ENOTSUP:
        return 400;
    case GW_EPERM:
        return 403;
    case GW_ENOENT:
        return 404;
    case GW_ETIMEDOUT:
    case GW_ENODEV: /* nothing to plan on yet (a cluster view not polled) */
        return 503;
    default:
        return 500;
    }
}

/* The daemon's error shape (docs/serve.md): "code" is the HTTP status. */
static int error_body(gw_strbuf *out, int code, const char *message)
{
    int status = http_of(code);
    gw_json j;
    gw__json_init(&j, out, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "error");
    gw__json_object_begin(&j);
    gw__json_key(&j, "code");
    gw__json_i64(&j, status);
    gw__json_key(&j, "message");
    gw__json_string(&j, message);
    gw__json_object_end(&j);
    gw__json_object_end(&j);
    return status;
}

static void reservation_json(gw_json *j, const gw_reservation *r, bool withhold_note)
{
    gw__json_object_begin(j);
    gw__json_key(j, "id");
    gw__json_i64(j, r->id);
    gw__json_key(j, "key");
    gw__json_string(j, r->key[0] ? r->key : NULL);
    gw__json_key(j, "owner");
    gw__json_string(j, r->owner[0] ? r->owner : NULL);
    gw__json_key(j, "pid");
    if (r->pid)
        gw__json_u64(j, r->pid);
    else
        gw__json_null(j);
    gw__json_key(j, "created_ns");
    gw__json_i64(j, r->created_ns);
    gw__json_key(j, "expires_ns");
    if (r->expires_ns)
        gw__json_i64(j, r->expires_ns);
    else
        gw__json_null(j);
    gw__json_key(j, "note");
    gw__json_string(j, r->note[0] && !withhold_note ? r->note : NULL);
    gw__json_key(j, "devices");
    gw__json_array_begin(j);
    for (size_t i = 0; i < r->n_devices; i++) {
        gw__json_object_begin(j);
        gw__json_key(j, "uuid");
        gw__json_string(j, r->devices[i].uuid);
        gw__json_key(j, "bytes");
        gw__json_u64(j, r->devices[i].bytes);
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_object_end(j);
}

static bool json_size(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && gw_place_parse_size(json_string_value(v), out);
}

static bool json_u32(const json_t *v, uint32_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return false;
    *out = (uint32_t)json_integer_value(v);
    return true;
}

/* Reservation-only fields parsed from the request. */
typedef struct extra {
    const char *owner, *key, *note;
    uint32_t pid;
    int64_t lease_ns;
    char devices[2048];
    char model[PATH_MAX]; /* the resolved model path actually opened */
} extra;

/* Fills r (and x) from the request object; GW_EINVAL naming the member. */
static int parse_request(gw_place_api *a, const json_t *o, bool reserving, gw_place_request *r,
                         extra *x, gw_error *err)
{
    if (!json_is_object(o))
        return gw__error_set(err, GW_EINVAL, "the request body must be a JSON object");
    r->opts.policy = a->policy;
    r->opts.margin = a->margin;
    if (a->proc_root[0])
        r->cfg.proc_root = a->proc_root;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        bool ok = true;
        if (strcmp(k, "mem") == 0) {
            ok = json_size(v, &r->mem) && r->mem > 0;
        } else if (strcmp(k, "model") == 0) {
            ok = json_is_string(v);
            r->model = json_string_value(v);
        } else if (strcmp(k, "ctx") == 0) {
            ok = json_u32(v, &r->ctx);
        } else if (strcmp(k, "parallel") == 0) {
            ok = json_u32(v, &r->parallel) && r->parallel > 0;
        } else if (strcmp(k, "layers") == 0) {
            ok = json_u32(v, &r->n_layers) && r->n_layers > 0 && r->n_layers < 100000;
        } else if (strcmp(k, "layer_size") == 0) {
            ok = json_size(v, &r->layer_bytes) && r->layer_bytes > 0;
        } else if (strcmp(k, "output_size") == 0) {
            ok = json_size(v, &r->output_bytes);
        } else if (strcmp(k, "overhead") == 0) {
            ok = json_size(v, &r->overhead);
            r->overhead_set = true;
        } else if (strcmp(k, "host_size") == 0) {
            ok = json_size(v, &r->host_bytes);
        } else if (strcmp(k, "allow_partial") == 0) {
            ok = json_is_boolean(v);
            r->no_partial = !json_is_true(v);
        } else if (strcmp(k, "policy") == 0) {
            ok = json_is_string(v) && gw_place_policy_parse(json_string_value(v), &r->opts.policy);
            r->policy_set = true;
        } else if (strcmp(k, "gpus") == 0) {
            ok = json_u32(v, &r->opts.gpus) && r->opts.gpus > 0 && r->opts.gpus <= 4096;
        } else if (strcmp(k, "margin") == 0) {
            ok = json_size(v, &r->opts.margin);
            r->margin_set = true;
        } else if (strcmp(k, "max_temp_c") == 0) {
            ok = json_is_number(v) && json_number_value(v) > 0 && json_number_value(v) < 1000;
            r->opts.max_temp_mc = (int32_t)(json_number_value(v) * 1000);
        } else if (strcmp(k, "devices") == 0) {
            ok = json_is_array(v) && json_array_size(v) > 0;
            size_t idx;
            json_t *e;
            size_t len = 0;
            json_array_foreach(v, idx, e) {
                char one[128];
                if (json_is_integer(e) && json_integer_value(e) >= 0)
                    snprintf(one, sizeof one, "%lld", (long long)json_integer_value(e));
                else if (json_is_string(e) && !strchr(json_string_value(e), ','))
                    gw__strlcpy(one, json_string_value(e), sizeof one);
                else
                    ok = false;
                int n = snprintf(x->devices + len, sizeof x->devices - len, "%s%s",
                                 idx ? "," : "", one);
                if (n < 0 || (size_t)n >= sizeof x->devices - len)
                    ok = false;
                else
                    len += (size_t)n;
            }
            r->devices_arg = x->devices;
        } else if (reserving && strcmp(k, "owner") == 0) {
            ok = json_is_string(v);
            x->owner = json_string_value(v);
        } else if (reserving && strcmp(k, "note") == 0) {
            ok = json_is_string(v);
            x->note = json_string_value(v);
        } else if (reserving && strcmp(k, "key") == 0) {
            ok = json_is_string(v);
            x->key = json_string_value(v);
        } else if (reserving && strcmp(k, "pid") == 0) {
            ok = json_u32(v, &x->pid) && x->pid > 0;
        } else if (reserving && strcmp(k, "lease_s") == 0) {
            ok = json_is_integer(v) && json_integer_value(v) > 0 &&
                 json_integer_value(v) < 10ll * 365 * 86400;
            x->lease_ns = (int64_t)json_integer_value(v) * 1000000000;
        } else {
            return gw__error_set(err, GW_EINVAL, "unknown member \"%s\" in the request", k);
        }
        if (!ok)
            return gw__error_set(err, GW_EINVAL, "bad value for \"%s\"", k);
    }
    if (r->model) {
        if (a->n_model_dirs == 0)
            return gw__error_set(err, GW_EPERM, "model files are not allowed: no model directory "
                                                "is configured");
        char *real = realpath(r->model, NULL);
        bool inside = false;
        for (size_t i = 0; real && i < a->n_model_dirs && !inside; i++) {
            size_t n = strlen(a->model_dirs[i]);
            inside = strncmp(real, a->model_dirs[i], n) == 0 && real[n] == '/';
        }
        if (inside) {
            gw__strlcpy(x->model, real, sizeof x->model);
            r->model = x->model; /* open what was checked, not the name given */
        }
        free(real);
        if (!inside)
            return gw__error_set(err, GW_EPERM, "model \"%s\" is not under a configured model "
                                                "directory", r->model);
    }
    return GW_OK;
}

/* Parses body and prepares the request on snap. */
static int prepare(gw_place_api *a, const gw_snapshot *snap, const char *body, size_t len,
                   bool reserving, gw_place_request *r, extra *x, json_t **doc, gw_error *err)
{
    json_error_t jerr;
    *doc = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!*doc)
        return gw__error_set(err, GW_EINVAL, "request body is not JSON: %s (line %d)", jerr.text,
                             jerr.line);
    int rc = parse_request(a, *doc, reserving, r, x, err);
    if (rc)
        return rc;
    return gw_place_request_prepare_snapshot(r, snap, err);
}

/* ------------------------------------------------------------ handlers */

int gw_place_api_plan(gw_place_api *a, const gw_snapshot *snap, const char *body, size_t len,
                      gw_strbuf *out)
{
    gw_place_request r;
    gw_place_request_init(&r);
    extra x = {0};
    json_t *doc = NULL;
    gw_error err;
    gw_error_clear(&err);
    gw_plan plan;
    gw_plan_init(&plan);
    int status;
    int rc = prepare(a, snap, body, len, false, &r, &x, &doc, &err);
    if (!rc) {
        pthread_mutex_lock(&a->lock);
        rc = gw_ledger_apply_pending(a->ledger, r.devs, r.n_devs, r.seen, r.n_seen, &err);
        pthread_mutex_unlock(&a->lock);
    }
    if (!rc)
        rc = gw_place(r.devs, r.n_devs, &r.need, &r.opts, &plan, &err);
    if (rc) {
        status = error_body(out, rc, err.message);
    } else {
        gw_json j;
        gw__json_init(&j, out, false);
        gw__json_object_begin(&j);
        gw__json_key(&j, "plan");
        gw_place_plan_json(&j, &plan, r.devs);
        gw__json_object_end(&j);
        status = plan.fits ? 200 : 409;
    }
    gw_plan_release(&plan);
    gw_place_request_release(&r);
    json_decref(doc);
    return status;
}

int gw_place_api_plan_cluster(gw_place_api *a, const char *body, size_t len,
                              gw_place_cluster_fn plan, void *ctx, gw_strbuf *out)
{
    gw_place_request r;
    gw_place_request_init(&r);
    extra x = {0};
    gw_error err;
    gw_error_clear(&err);
    json_error_t jerr;
    json_t *doc = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    int rc = doc ? GW_OK
                 : gw__error_set(&err, GW_EINVAL, "request body is not JSON: %s (line %d)",
                                 jerr.text, jerr.line);
    if (!rc)
        rc = parse_request(a, doc, false, &r, &x, &err);
    if (!rc)
        rc = gw_place_request_prepare_need(&r, &err);
    int status;
    bool fits = false;
    if (!rc) {
        gw_strbuf answer;
        gw__strbuf_init(&answer, 0);
        gw_json j;
        gw__json_init(&j, &answer, false);
        rc = plan(ctx, &r.need, &r.opts, &j, &fits, &err);
        if (!rc && answer.failed)
            rc = gw__error_set(&err, GW_ENOMEM, "out of memory");
        if (!rc)
            gw__strbuf_append(out, answer.data, answer.len);
        gw__strbuf_release(&answer);
    }
    status = rc ? error_body(out, rc, err.message) : fits ? 200 : 409;
    gw_place_request_release(&r);
    json_decref(doc);
    return status;
}

int gw_place_api_reserve(gw_place_api *a, const gw_snapshot *snap, const char *body, size_t len,
                         const char *idempotency_key, gw_strbuf *out)
{
    gw_place_request r;
    gw_place_request_init(&r);
    extra x = {0};
    json_t *doc = NULL;
    gw_error err;
    gw_error_clear(&err);
    gw_plan plan;
    gw_plan_init(&plan);
    gw_reservation res = {0};
    bool existed = false;
    int status;
    int rc = prepare(a, snap, body, len, true, &r, &x, &doc, &err);
    if (!rc) {
        gw_reserve_req req = {.key = idempotency_key && *idempotency_key ? idempotency_key : x.key,
                              .owner = x.owner, .pid = x.pid, .lease_ns = x.lease_ns,
                              .note = x.note};
        pthread_mutex_lock(&a->lock);
        rc = gw_ledger_reserve(a->ledger, r.devs, r.n_devs, r.seen, r.n_seen, &r.need, &r.opts, &req,
                               &plan, &res, &existed, &err);
        pthread_mutex_unlock(&a->lock);
    }
    if (rc) {
        status = error_body(out, rc, err.message);
    } else {
        gw__strbuf_puts(out, "{\"plan\":");
        if (existed) {
            gw__strbuf_puts(out, res.plan_json ? res.plan_json : "null");
        } else {
            gw_json j;
            gw__json_init(&j, out, false);
            gw_place_plan_json(&j, &plan, r.devs);
        }
        gw__strbuf_puts(out, ",\"replayed\":");
        gw__strbuf_puts(out, existed ? "true" : "false");
        gw__strbuf_puts(out, ",\"reservation\":");
        if (plan.fits) {
            gw_json j;
            gw__json_init(&j, out, false);
            reservation_json(&j, &res, a->withhold_notes);
        } else {
            gw__strbuf_puts(out, "null");
        }
        gw__strbuf_putc(out, '}');
        status = !plan.fits ? 409 : existed ? 200 : 201;
    }
    gw_reservation_clear(&res);
    gw_plan_release(&plan);
    gw_place_request_release(&r);
    json_decref(doc);
    return status;
}

int gw_place_api_list(gw_place_api *a, gw_strbuf *out)
{
    gw_reservation *v = NULL;
    size_t n = 0;
    gw_error err;
    gw_error_clear(&err);
    pthread_mutex_lock(&a->lock);
    int rc = gw_ledger_list(a->ledger, &v, &n, &err);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        return error_body(out, rc, err.message);
    gw_json j;
    gw__json_init(&j, out, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "reservations");
    gw__json_array_begin(&j);
    for (size_t i = 0; i < n; i++)
        reservation_json(&j, &v[i], a->withhold_notes);
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    gw_reservations_free(v, n);
    return 200;
}

static bool parse_id(const char *s, int64_t *id)
{
    return s && gw__parse_i64(s, id) && *id > 0;
}

int gw_place_api_get(gw_place_api *a, const char *id_text, gw_strbuf *out)
{
    int64_t id;
    if (!parse_id(id_text, &id))
        return error_body(out, GW_EINVAL, "a reservation id is a positive integer");
    gw_reservation r;
    gw_error err;
    gw_error_clear(&err);
    pthread_mutex_lock(&a->lock);
    int rc = gw_ledger_get(a->ledger, id, &r, &err);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        return error_body(out, rc, err.message);
    gw_json j;
    gw__json_init(&j, out, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "reservation");
    reservation_json(&j, &r, a->withhold_notes);
    gw__json_object_end(&j);
    gw_reservation_clear(&r);
    return 200;
}

int gw_place_api_delete(gw_place_api *a, const char *id_text, gw_strbuf *out)
{
    int64_t id;
    if (!parse_id(id_text, &id))
        return error_body(out, GW_EINVAL, "a reservation id is a positive integer");
    gw_error err;
    gw_error_clear(&err);
    pthread_mutex_lock(&a->lock);
    int rc = gw_ledger_release(a->ledger, id, &err);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        return error_body(out, rc, err.message);
    gw__strbuf_printf(out, "{\"released\":%lld}", (long long)id);
    return 200;
}

int gw_place_api_renew(gw_place_api *a, const char *id_text, const char *body, size_t len,
                       gw_strbuf *out)
{
    int64_t id;
    if (!parse_id(id_text, &id))
        return error_body(out, GW_EINVAL, "a reservation id is a positive integer");
    /* {"lease_s": SECONDS} renews; {"pid": N} hands the reservation to
     * another owner process (gpuwatch run gives it to the command it
     * started); both may come together. Nothing else is accepted. */
    json_error_t jerr;
    json_t *doc = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    json_t *lease = doc ? json_object_get(doc, "lease_s") : NULL;
    json_t *pid = doc ? json_object_get(doc, "pid") : NULL;
    size_t known = (lease != NULL) + (pid != NULL);
    if (!doc || !json_is_object(doc) || known == 0 || json_object_size(doc) != known ||
        (lease && (!json_is_integer(lease) || json_integer_value(lease) < 0 ||
                   json_integer_value(lease) > 10ll * 365 * 86400)) ||
        (pid && (!json_is_integer(pid) || json_integer_value(pid) <= 0 ||
                 json_integer_value(pid) > UINT32_MAX))) {
        json_decref(doc);
        return error_body(out, GW_EINVAL,
                          "renew takes {\"lease_s\": SECONDS} (0: no expiry) and/or "
                          "{\"pid\": OWNER_PID}");
    }
    int64_t ns = lease ? (int64_t)json_integer_value(lease) * 1000000000 : 0;
    uint32_t owner = pid ? (uint32_t)json_integer_value(pid) : 0;
    json_decref(doc);
    gw_error err;
    gw_error_clear(&err);
    pthread_mutex_lock(&a->lock);
    int rc = GW_OK;
    if (owner)
        rc = gw_ledger_set_pid(a->ledger, id, owner, &err);
    if (rc == GW_OK && lease)
        rc = gw_ledger_renew(a->ledger, id, ns, &err);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        return error_body(out, rc, err.message);
    return gw_place_api_get(a, id_text, out);
}

/* A device's name in the ledger: its UUID, or "index:N" without one. */
static void ledger_uuid(const gw_device *dev, char *uuid, size_t cap)
{
    if (dev->info.uuid[0])
        gw__strlcpy(uuid, dev->info.uuid, cap);
    else
        snprintf(uuid, cap, "index:%u", dev->info.index);
}

/* pending[i] for snap's devices (zeroed on error): reservations not yet
 * visible as used, as a plan counts them. Takes a->lock. */
static int device_pending(gw_place_api *a, const gw_snapshot *snap, uint64_t *pending)
{
    memset(pending, 0, snap->n_devices * sizeof *pending);
    gw_place_device *devs = calloc(snap->n_devices ? snap->n_devices : 1, sizeof *devs);
    gw_place_seen *seen = calloc(snap->n_processes ? snap->n_processes : 1, sizeof *seen);
    int rc = GW_ENOMEM;
    if (devs && seen) {
        gw_place_devices_from_snapshot(snap, devs);
        size_t n_seen = gw_place_seen_from_snapshot(snap, seen);
        gw_error err;
        pthread_mutex_lock(&a->lock);
        rc = gw_ledger_apply_pending(a->ledger, devs, snap->n_devices, seen, n_seen, &err);
        pthread_mutex_unlock(&a->lock);
        for (size_t i = 0; rc == GW_OK && i < snap->n_devices; i++)
            pending[i] = devs[i].pending;
    }
    free(devs);
    free(seen);
    return rc;
}

int gw_place_api_device_totals(gw_place_api *a, const gw_snapshot *snap, uint64_t *counts,
                               uint64_t *bytes, uint64_t *pending)
{
    memset(counts, 0, snap->n_devices * sizeof *counts);
    memset(bytes, 0, snap->n_devices * sizeof *bytes);
    gw_reservation *v = NULL;
    size_t n = 0;
    gw_error err;
    pthread_mutex_lock(&a->lock);
    int rc = gw_ledger_list(a->ledger, &v, &n, &err);
    pthread_mutex_unlock(&a->lock);
    if (rc == GW_OK)
        rc = device_pending(a, snap, pending);
    if (rc != GW_OK) {
        gw_reservations_free(v, n);
        return rc;
    }
    for (size_t d = 0; d < snap->n_devices; d++) {
        char uuid[96];
        ledger_uuid(&snap->devices[d], uuid, sizeof uuid);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < v[i].n_devices; k++)
                if (strcmp(v[i].devices[k].uuid, uuid) == 0) {
                    counts[d]++;
                    bytes[d] += v[i].devices[k].bytes;
                }
    }
    gw_reservations_free(v, n);
    return GW_OK;
}

void gw_place_api_health(gw_place_api *a, const gw_snapshot *snap, gw_json *j)
{
    gw_reservation *v = NULL;
    size_t n = 0;
    gw_error err;
    pthread_mutex_lock(&a->lock);
    if (gw_ledger_list(a->ledger, &v, &n, &err) != GW_OK)
        n = 0;
    pthread_mutex_unlock(&a->lock);
    size_t nd = snap ? snap->n_devices : 0;
    uint64_t *pending = calloc(nd ? nd : 1, sizeof *pending);
    if (pending && snap && device_pending(a, snap, pending) != GW_OK)
        memset(pending, 0, nd * sizeof *pending);
    gw__json_object_begin(j);
    gw__json_key(j, "strategy");
    gw__json_string(j, gw_place_policy_name(a->policy));
    gw__json_key(j, "devices");
    gw__json_array_begin(j);
    for (size_t d = 0; snap && d < snap->n_devices; d++) {
        const gw_device *dev = &snap->devices[d];
        char uuid[96];
        ledger_uuid(dev, uuid, sizeof uuid);
        gw__json_object_begin(j);
        gw__json_key(j, "index");
        gw__json_u64(j, dev->info.index);
        gw__json_key(j, "uuid");
        gw__json_string(j, uuid);
        gw__json_kv_u64(j, "pending_bytes", pending != NULL, pending ? pending[d] : 0);
        gw__json_key(j, "reservations");
        gw__json_array_begin(j);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < v[i].n_devices; k++) {
                if (strcmp(v[i].devices[k].uuid, uuid) != 0)
                    continue;
                gw__json_object_begin(j);
                gw__json_key(j, "id");
                gw__json_i64(j, v[i].id);
                gw__json_key(j, "owner");
                gw__json_string(j, v[i].owner[0] ? v[i].owner : NULL);
                gw__json_key(j, "pid");
                if (v[i].pid)
                    gw__json_u64(j, v[i].pid);
                else
                    gw__json_null(j);
                gw__json_key(j, "bytes");
                gw__json_u64(j, v[i].devices[k].bytes);
                gw__json_key(j, "note");
                gw__json_string(j, v[i].note[0] && !a->withhold_notes ? v[i].note : NULL);
                gw__json_object_end(j);
            }
        gw__json_array_end(j);
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_object_end(j);
    free(pending);
    gw_reservations_free(v, n);
}
