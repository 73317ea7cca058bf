/* servers.c — see servers.h. */
#include "models/servers.h"

#include "core/array.h"
#include "core/parse.h"
#include "core/util.h"
#include "render/json_read.h"
#include "place/daemon_client.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gw__server_kind_name(gw__server_kind k)
{
    return k == GW__SERVER_LLAMACPP ? "llama.cpp" : "ollama";
}

void gw__model_server_release(gw__model_server *s)
{
    free(s->models);
    s->models = NULL;
    s->n_models = 0;
    free(s->samples);
    s->samples = NULL;
    s->n_samples = 0;
}


/* o.digest as 64 lower-case hex digits (an optional "sha256:" before
 * them) into out->digest; anything else leaves it "" (unknown). */
static void read_digest(const json_t *o, gw__loaded_model *out)
{
    char digest[128];
    gw__jr_str(o, "digest", digest, sizeof digest);
    const char *hex = strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
    if (strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64)
        gw__strlcpy(out->digest, hex, sizeof out->digest);
}

static void decode_model(json_t *m, gw__loaded_model *out)
{
    memset(out, 0, sizeof *out);
    gw__jr_str(m, "name", out->name, sizeof out->name);
    if (!out->name[0])
        gw__jr_str(m, "model", out->name, sizeof out->name);
    read_digest(m, out);
    out->has_size = gw__jr_u64(m, "size", &out->size);
    out->has_vram = gw__jr_u64(m, "size_vram", &out->size_vram);
    uint64_t ctx;
    if (gw__jr_u64(m, "context_length", &ctx) && ctx <= UINT32_MAX)
        out->context_length = (uint32_t)ctx;
    json_t *d = json_object_get(m, "details");
    gw__jr_str(d, "family", out->family, sizeof out->family);
    gw__jr_str(d, "parameter_size", out->parameter_size, sizeof out->parameter_size);
    gw__jr_str(d, "quantization_level", out->quantization, sizeof out->quantization);
    char when[64];
    gw__jr_str(m, "expires_at", when, sizeof when);
    if (!gw__parse_rfc3339(when, &out->expires_ns))
        out->expires_ns = 0;
}

int gw__ollama_ps_parse(const char *body, size_t len, gw__model_server *s, gw_error *err)
{
    gw__model_server_release(s);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    json_t *models = json_object_get(doc, "models");
    int rc = GW_OK;
    if (!doc) {
        rc = gw__error_set(err, GW_EPARSE, "/api/ps: not JSON (%s)", jerr.text);
    } else if (!json_is_array(models)) {
        rc = gw__error_set(err, GW_EPARSE, "/api/ps: no \"models\" array");
    } else {
        size_t n = json_array_size(models);
        s->models = n ? calloc(n, sizeof *s->models) : NULL;
        if (n && !s->models)
            rc = gw__error_set(err, GW_ENOMEM, "out of memory");
        for (size_t i = 0; rc == GW_OK && i < n; i++) {
            json_t *m = json_array_get(models, i);
            if (!json_is_object(m)) {
                rc = gw__error_set(err, GW_EPARSE, "/api/ps: models[%zu] is not an object", i);
                break;
            }
            decode_model(m, &s->models[s->n_models]);
            if (!s->models[s->n_models].name[0]) {
                rc = gw__error_set(err, GW_EPARSE, "/api/ps: models[%zu] has no name", i);
                break;
            }
            s->n_models++;
        }
    }
    json_decref(doc);
    if (rc != GW_OK)
        gw__model_server_release(s);
    return rc;
}

int gw__llamacpp_props_parse(const char *body, size_t len, gw__model_server *s, gw_error *err)
{
    gw__model_server_release(s);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    int rc = GW_OK;
    char path[512];
    gw__jr_str(doc, "model_path", path, sizeof path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!doc)
        rc = gw__error_set(err, GW_EPARSE, "/props: not JSON (%s)", jerr.text);
    else if (!json_is_object(doc) || !base[0])
        rc = gw__error_set(err, GW_EPARSE, "/props: no \"model_path\"");
    else if (!(s->models = calloc(1, sizeof *s->models)))
        rc = gw__error_set(err, GW_ENOMEM, "out of memory");
    if (rc == GW_OK) {
        gw__loaded_model *m = &s->models[0];
        s->n_models = 1;
        gw__strlcpy(m->name, base, sizeof m->name);
        uint64_t v;
        if (gw__jr_u64(json_object_get(doc, "default_generation_settings"), "n_ctx", &v) &&
            v <= UINT32_MAX)
            m->context_length = (uint32_t)v;
        if (gw__jr_u64(doc, "total_slots", &v) && v <= UINT32_MAX) {
            s->slots_total = (uint32_t)v;
            s->has_slots = true;
        }
        gw__jr_str(doc, "build_info", s->version, sizeof s->version);
    }
    json_decref(doc);
    return rc;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == ':';
}

/* [p, e): a metric or label name; returns its end (p when none). */
static const char *scan_name(const char *p, const char *e)
{
    const char *q = p;
    while (q < e && name_char(*q))
        q++;
    return q > p && !(*p >= '0' && *p <= '9') ? q : p;
}

/* {k="v",...} at p (within e) re-rendered into out[cap] with our own
 * escaping; returns the end of the block, NULL when it does not parse or
 * does not fit. */
static const char *scan_labels(const char *p, const char *e, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    p++; /* '{' */
    for (;;) {
        while (p < e && (*p == ' ' || *p == ','))
            p++;
        if (p < e && *p == '}')
            return p + 1;
        const char *ne = scan_name(p, e);
        if (ne == p || ne + 1 >= e || ne[0] != '=' || ne[1] != '"')
            return NULL;
        char val[160];
        size_t vl = 0;
        const char *q = ne + 2;
        for (; q < e && *q != '"'; q++) {
            char c = *q;
            if (c == '\\' && q + 1 < e) {
                c = *++q == 'n' ? '\n' : *q;
            }
            if ((unsigned char)c < 0x20 || c == 0x7f || vl + 1 >= sizeof val)
                return NULL; /* no control byte goes on (a CR, a NUL, a line break) */
            val[vl++] = c;
        }
        if (q >= e)
            return NULL;
        val[vl] = '\0';
        /* k="escaped v" */
        int n = snprintf(out + at, cap - at, "%s%.*s=\"", at ? "," : "", (int)(ne - p), p);
        if (n < 0 || (size_t)n >= cap - at)
            return NULL;
        at += (size_t)n;
        for (size_t i = 0; i < vl; i++) {
            const char *rep = val[i] == '\\' ? "\\\\" : val[i] == '"' ? "\\\"" : NULL;
            size_t rl = rep ? strlen(rep) : 1;
            if (at + rl + 2 >= cap)
                return NULL;
            if (rep)
                memcpy(out + at, rep, rl);
            else
                out[at] = val[i];
            at += rl;
        }
        out[at++] = '"';
        out[at] = '\0';
        p = q + 1;
    }
}

/* One exposition line [p, e) into *m (a sample) or the family's help/type
 * (held in *help / *type until the samples come). Returns whether *m is a
 * sample to keep. */
static bool scan_line(const char *p, const char *e, gw__server_sample *m, char *help,
                      size_t help_cap, char *type, size_t type_cap, char *fam, size_t fam_cap)
{
    if (p < e && *p == '#') {
        bool is_help = e - p > 7 && memcmp(p, "# HELP ", 7) == 0;
        bool is_type = e - p > 7 && memcmp(p, "# TYPE ", 7) == 0;
        if (!is_help && !is_type)
            return false;
        const char *n = p + 7, *ne = scan_name(n, e);
        if (ne == n || (size_t)(ne - n) >= fam_cap)
            return false;
        size_t nl = (size_t)(ne - n); /* the input has no NUL: compare within it */
        if (strlen(fam) != nl || memcmp(fam, n, nl) != 0) {
            snprintf(fam, fam_cap, "%.*s", (int)(ne - n), n);
            help[0] = type[0] = '\0';
        }
        const char *rest = ne < e && *ne == ' ' ? ne + 1 : ne;
        char *dst = is_help ? help : type;
        size_t cap = is_help ? help_cap : type_cap, k = 0;
        for (; rest < e && k + 1 < cap; rest++)
            dst[k++] = (*rest >= 0x20 && *rest < 0x7f && *rest != '\\') ? *rest : ' ';
        dst[k] = '\0';
        return false;
    }
    const char *ne = scan_name(p, e);
    if (ne == p || (size_t)(ne - p) >= sizeof m->name || ne - p < 9 ||
        memcmp(p, "llamacpp:", 9) != 0)
        return false;
    memset(m, 0, sizeof *m);
    memcpy(m->name, p, (size_t)(ne - p));
    const char *q = ne;
    if (q < e && *q == '{' && !(q = scan_labels(q, e, m->labels, sizeof m->labels)))
        return false;
    if (q >= e || *q != ' ')
        return false;
    char num[64];
    size_t k = 0;
    for (q++; q < e && *q != ' ' && k + 1 < sizeof num; q++)
        num[k++] = *q;
    num[k] = '\0';
    char *end;
    m->value = strtod(num, &end);
    if (end == num || *end)
        return false;
    /* only the counters and gauges their TYPE line declares (what
     * llama.cpp exports): re-exported whole, never half a histogram */
    if (strcmp(fam, m->name) != 0 || (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0))
        return false;
    gw__strlcpy(m->help, help, sizeof m->help);
    gw__strlcpy(m->type, type, sizeof m->type);
    for (char *c = m->name; *c; c++) /* ':' is for recording rules: llamacpp_* */
        if (*c == ':')
            *c = '_';
    return true;
}

int gw__llamacpp_metrics_parse(const char *text, size_t len, gw__model_server *s, gw_error *err)
{
    free(s->samples);
    s->samples = NULL;
    s->n_samples = 0;
    char help[160] = "", type[12] = "", fam[80] = "";
    size_t cap = 0;
    for (const char *p = text; p < text + len && s->n_samples < GW__SERVER_MAX_SAMPLES;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        const char *e = nl ? nl : text + len;
        gw__server_sample m;
        if (scan_line(p, e, &m, help, sizeof help, type, sizeof type, fam, sizeof fam)) {
            if (GW__ARRAY_RESERVE(s->samples, cap, s->n_samples + 1, GW__SERVER_MAX_SAMPLES) !=
                GW_OK)
                return gw__error_set(err, GW_ENOMEM, "out of memory");
            s->samples[s->n_samples++] = m;
        }
        p = e + 1;
    }
    return GW_OK;
}

/* The value of FLAG in a space-joined command line into buf; false when
 * absent or too long. */
static bool arg_value(const char *cmdline, const char *flag, char *buf, size_t cap)
{
    size_t vl;
    const char *v = gw__cmdline_flag(cmdline, flag, &vl);
    if (!v || vl >= cap)
        return false;
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    return true;
}

bool gw__llamacpp_url_of(const char *cmdline, char *buf, size_t cap)
{
    if (!cmdline)
        return false;
    size_t argv0 = strcspn(cmdline, " ");
    const char *prog = cmdline + argv0;
    while (prog > cmdline && prog[-1] != '/')
        prog--;
    if ((size_t)(cmdline + argv0 - prog) != 12 || strncmp(prog, "llama-server", 12) != 0)
        return false;
    char host[256] = "127.0.0.1", port[16] = "8080";
    arg_value(cmdline, "--host", host, sizeof host);
    arg_value(cmdline, "--port", port, sizeof port);
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "localhost") == 0)
        gw__strlcpy(host, "127.0.0.1", sizeof host);
    if (strspn(port, "0123456789") != strlen(port) || strchr(host, '/') || strchr(host, ' '))
        return false;
    snprintf(buf, cap, strchr(host, ':') ? "http://[%s]:%s" : "http://%s:%s", host, port);
    return true;
}

/* GET path of s into *resp (200 only). */
static int get(gw__model_server *s, const gw_daemon_url *u, const char *path, int timeout_ms,
               gw_daemon_response *resp, gw_error *err)
{
    if (gw_daemon_request(u, "GET", path, NULL, NULL, 0, timeout_ms, resp, err) != GW_OK)
        return err->code ? err->code : GW_EIO;
    if (resp->status != 200) {
        gw__error_set(err, GW_EIO, "%s%s: HTTP %d", s->url, path, resp->status);
        gw_daemon_response_release(resp);
        return GW_EIO;
    }
    return GW_OK;
}

/* GET path and decode its body into s with parse; false with s->error
 * saying why (the transport's error, or the URL and the decoder's). */
static bool get_parsed(gw__model_server *s, const gw_daemon_url *u, const char *path,
                       int timeout_ms,
                       int (*parse)(const char *, size_t, gw__model_server *, gw_error *))
{
    gw_error err;
    gw_error_clear(&err);
    gw_daemon_response resp;
    if (get(s, u, path, timeout_ms, &resp, &err) != GW_OK) {
        gw__strlcpy(s->error, err.message, sizeof s->error);
        return false;
    }
    int rc = parse(resp.body, resp.body_len, s, &err);
    gw_daemon_response_release(&resp);
    if (rc != GW_OK)
        snprintf(s->error, sizeof s->error, "%.100s: %.150s", s->url, err.message);
    return rc == GW_OK;
}

/* Ollama: version (optional), then the models. */
static void fetch_ollama(gw__model_server *s, const gw_daemon_url *u, int timeout_ms)
{
    gw_error err;
    gw_error_clear(&err);
    gw_daemon_response resp;
    if (get(s, u, "/api/version", timeout_ms, &resp, &err) == GW_OK) {
        json_t *doc = json_loadb(resp.body, resp.body_len, 0, NULL);
        gw__jr_str(doc, "version", s->version, sizeof s->version);
        json_decref(doc);
        gw_daemon_response_release(&resp);
    } else if (err.code == GW_ENOENT || err.code == GW_ETIMEDOUT) {
        gw__strlcpy(s->error, err.message, sizeof s->error);
        return; /* nothing there, or hung: do not wait twice */
    }
    s->up = get_parsed(s, u, "/api/ps", timeout_ms, gw__ollama_ps_parse);
}

/* llama-server: /health (503 while loading), /props, then /slots when the
 * server offers it. */
static void fetch_llamacpp(gw__model_server *s, const gw_daemon_url *u, int timeout_ms)
{
    gw_error err;
    gw_error_clear(&err);
    gw_daemon_response resp;
    if (gw_daemon_request(u, "GET", "/health", NULL, NULL, 0, timeout_ms, &resp, &err) != GW_OK) {
        gw__strlcpy(s->error, err.message, sizeof s->error);
        return;
    }
    int status = resp.status;
    gw_daemon_response_release(&resp);
    if (status != 200) {
        snprintf(s->error, sizeof s->error, "%.100s/health: HTTP %d%s", s->url, status,
                 status == 503 ? " (loading the model)" : "");
        return;
    }
    if (!(s->up = get_parsed(s, u, "/props", timeout_ms, gw__llamacpp_props_parse)))
        return;
    gw_error_clear(&err);
    if (get(s, u, "/slots", timeout_ms, &resp, &err) == GW_OK) { /* off with --no-slots */
        json_t *doc = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (json_is_array(doc)) {
            s->has_slots = s->has_busy = true;
            s->slots_total = (uint32_t)json_array_size(doc);
            s->slots_busy = 0;
            for (size_t i = 0; i < json_array_size(doc); i++)
                s->slots_busy +=
                    json_is_true(json_object_get(json_array_get(doc, i), "is_processing"));
        }
        json_decref(doc);
        gw_daemon_response_release(&resp);
    } else if (err.code == GW_ETIMEDOUT) {
        return; /* hung since /props: do not wait again */
    }
    gw_error_clear(&err);
    if (get(s, u, "/metrics", timeout_ms, &resp, &err) != GW_OK)
        return; /* without --metrics: nothing to re-export */
    gw__llamacpp_metrics_parse(resp.body, resp.body_len, s, &err);
    gw_daemon_response_release(&resp);
}

/* One server, whatever its kind: up with its models, or down with why. */
static void fetch_one(gw__model_server *s, int timeout_ms)
{
    gw_error err;
    gw_error_clear(&err);
    s->up = s->has_slots = s->has_busy = false;
    s->slots_total = s->slots_busy = 0;
    s->version[0] = s->error[0] = '\0';
    gw__model_server_release(s);
    gw_daemon_url u;
    if (gw_daemon_url_parse(s->url, &u, &err) != GW_OK) {
        gw__strlcpy(s->error, err.message, sizeof s->error);
        return;
    }
    u.any_host = true; /* no token is ever sent to a model server */
    if (s->kind == GW__SERVER_LLAMACPP)
        fetch_llamacpp(s, &u, timeout_ms);
    else
        fetch_ollama(s, &u, timeout_ms);
}

/* The smallest model /api/tags lists into name[cap]; false when none. */
static bool smallest_tag(gw__model_server *s, const gw_daemon_url *u, int timeout_ms, char *name,
                         size_t cap, gw_error *err)
{
    gw_daemon_response resp;
    if (get(s, u, "/api/tags", timeout_ms, &resp, err) != GW_OK)
        return false;
    json_t *doc = json_loadb(resp.body, resp.body_len, 0, NULL);
    gw_daemon_response_release(&resp);
    json_t *models = json_object_get(doc, "models");
    uint64_t best = UINT64_MAX;
    name[0] = '\0';
    for (size_t i = 0; i < json_array_size(models); i++) {
        json_t *m = json_array_get(models, i);
        uint64_t size;
        char n[128];
        gw__jr_str(m, "name", n, sizeof n);
        if (n[0] && gw__jr_u64(m, "size", &size) && size < best) {
            best = size;
            gw__strlcpy(name, n, cap);
        }
    }
    json_decref(doc);
    if (!name[0])
        gw__error_set(err, GW_ENOENT, "%s/api/tags: no model to probe with", s->url);
    return name[0] != '\0';
}

/* --probe of one server (see gw__model_servers_probe). */
static void probe_one(gw__model_server *s, int timeout_ms)
{
    if (s->kind != GW__SERVER_OLLAMA || !s->up || s->n_models)
        return;
    s->probed = true;
    gw_error err;
    gw_error_clear(&err);
    gw_daemon_url u;
    char model[128];
    if (gw_daemon_url_parse(s->url, &u, &err) != GW_OK) {
        gw__strlcpy(s->probe_error, err.message, sizeof s->probe_error);
        return;
    }
    u.any_host = true;
    if (!smallest_tag(s, &u, timeout_ms, model, sizeof model, &err)) {
        gw__strlcpy(s->probe_error, err.message, sizeof s->probe_error);
        return;
    }
    gw__strlcpy(s->probe_model, model, sizeof s->probe_model);
    json_t *req = json_pack("{s:s, s:s}", "model", model, "input", "gpuwatch probe");
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    gw_daemon_response resp;
    int64_t t0 = gw__now_mono_ns();
    int rc = body ? gw_daemon_request(&u, "POST", "/api/embed", NULL, body, strlen(body),
                                      timeout_ms, &resp, &err)
                  : gw__error_set(&err, GW_ENOMEM, "out of memory");
    free(body);
    s->probe_seconds = (double)(gw__now_mono_ns() - t0) / 1e9;
    if (rc != GW_OK) {
        gw__strlcpy(s->probe_error, err.message, sizeof s->probe_error);
        return;
    }
    int status = resp.status;
    gw_daemon_response_release(&resp);
    if (status != 200) {
        snprintf(s->probe_error, sizeof s->probe_error, "%.100s/api/embed: HTTP %d", s->url,
                 status);
        return;
    }
    gw__model_server after = {.kind = s->kind};
    gw__strlcpy(after.url, s->url, sizeof after.url);
    if (get(s, &u, "/api/ps", timeout_ms, &resp, &err) == GW_OK) {
        gw__ollama_ps_parse(resp.body, resp.body_len, &after, &err);
        gw_daemon_response_release(&resp);
    }
    for (size_t i = 0; i < after.n_models; i++)
        if (strcmp(after.models[i].name, model) == 0 && after.models[i].has_vram)
            gw__strlcpy(s->probe_result,
                        after.models[i].size_vram > 0 ? "GPU (inferred)" : "CPU (inferred)",
                        sizeof s->probe_result);
    if (!s->probe_result[0])
        snprintf(s->probe_error, sizeof s->probe_error,
                 "%.100s/api/ps: %.60s not listed after the probe", s->url, model);
    gw__model_server_release(&after);
}

typedef struct fetch_job {
    gw__model_server *s;
    int timeout_ms;
    void (*fn)(gw__model_server *s, int timeout_ms);
} fetch_job;

static void *fetch_main(void *arg)
{
    fetch_job *j = arg;
    j->fn(j->s, j->timeout_ms);
    return NULL;
}

/* fn on every server of v at once (a thread each; inline when none). */
static void each_at_once(gw__model_server *v, size_t n, int timeout_ms,
                         void (*fn)(gw__model_server *s, int timeout_ms))
{
    fetch_job *jobs = n ? calloc(n, sizeof *jobs) : NULL;
    pthread_t *th = n ? calloc(n, sizeof *th) : NULL;
    bool *started = n ? calloc(n, sizeof *started) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (!jobs || !th || !started) { /* no memory for threads: one after another */
            fn(&v[i], timeout_ms);
            continue;
        }
        jobs[i] = (fetch_job){&v[i], timeout_ms, fn};
        started[i] = pthread_create(&th[i], NULL, fetch_main, &jobs[i]) == 0;
        if (!started[i])
            fn(&v[i], timeout_ms);
    }
    for (size_t i = 0; i < n && jobs && th && started; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    free(jobs);
    free(th);
    free(started);
}

void gw__model_servers_fetch(gw__model_server *v, size_t n, int timeout_ms)
{
    each_at_once(v, n, timeout_ms, fetch_one);
}

void gw__model_servers_probe(gw__model_server *v, size_t n, int timeout_ms)
{
    each_at_once(v, n, timeout_ms, probe_one);
}

const char *gw__loaded_model_location(const gw__loaded_model *m, char *buf, size_t cap)
{
    if (!m->has_size || !m->has_vram || m->size == 0)
        snprintf(buf, cap, "unknown");
    else if (m->size_vram >= m->size)
        snprintf(buf, cap, "GPU");
    else if (m->size_vram == 0)
        snprintf(buf, cap, "CPU");
    else
        snprintf(buf, cap, "%.0f%% GPU", 100.0 * (double)m->size_vram / (double)m->size);
    return buf;
}

const gw__loaded_model *gw__model_servers_find(const gw__model_server *v, size_t n,
                                               const char *cmdline)
{
    char url[300];
    if (gw__llamacpp_url_of(cmdline, url, sizeof url)) {
        for (size_t i = 0; i < n; i++)
            if (v[i].kind == GW__SERVER_LLAMACPP && v[i].up && v[i].n_models &&
                strcmp(v[i].url, url) == 0)
                return &v[i].models[0];
        return NULL;
    }
    const char *b = cmdline ? strstr(cmdline, "/blobs/sha256-") : NULL;
    if (!b)
        return NULL;
    b += strlen("/blobs/sha256-");
    if (strspn(b, "0123456789abcdef") < 64)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; v[i].up && k < v[i].n_models; k++)
            if (v[i].models[k].digest[0] && strncmp(v[i].models[k].digest, b, 64) == 0)
                return &v[i].models[k];
    return NULL;
}

static const char *or_null(const char *s)
{
    return s[0] ? s : NULL;
}

void gw__loaded_model_read(const json_t *m, gw__loaded_model *out)
{
    memset(out, 0, sizeof *out);
    gw__jr_str(m, "name", out->name, sizeof out->name);
    read_digest(m, out);
    gw__jr_str(m, "family", out->family, sizeof out->family);
    gw__jr_str(m, "parameter_size", out->parameter_size, sizeof out->parameter_size);
    gw__jr_str(m, "quantization", out->quantization, sizeof out->quantization);
    out->has_size = gw__jr_u64(m, "size_bytes", &out->size);
    out->has_vram = gw__jr_u64(m, "vram_bytes", &out->size_vram);
    uint64_t ctx;
    if (gw__jr_u64(m, "context_length", &ctx) && ctx <= UINT32_MAX)
        out->context_length = (uint32_t)ctx;
    char when[64];
    gw__jr_str(m, "expires_at", when, sizeof when);
    if (!gw__parse_rfc3339(when, &out->expires_ns))
        out->expires_ns = 0;
}

void gw__loaded_model_members(gw_json *j, const gw__loaded_model *m)
{
    char where[24];
    gw__json_kv_str(j, "name", m->name);
    gw__json_kv_str(j, "digest", or_null(m->digest));
    gw__json_kv_u64(j, "size_bytes", m->has_size, m->size);
    gw__json_kv_u64(j, "vram_bytes", m->has_vram, m->size_vram);
    gw__json_kv_str(j, "location", gw__loaded_model_location(m, where, sizeof where));
    gw__json_kv_str(j, "family", or_null(m->family));
    gw__json_kv_str(j, "parameter_size", or_null(m->parameter_size));
    gw__json_kv_str(j, "quantization", or_null(m->quantization));
    gw__json_kv_u64(j, "context_length", m->context_length > 0, m->context_length);
    if (m->expires_ns)
        gw__json_kv_timestamp(j, "expires_at", m->expires_ns);
    else
        gw__json_kv_str(j, "expires_at", NULL);
}

void gw__model_servers_json(gw_json *j, const gw__model_server *v, size_t n)
{
    gw__json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        const gw__model_server *s = &v[i];
        gw__json_object_begin(j);
        gw__json_kv_str(j, "kind", gw__server_kind_name(s->kind));
        gw__json_kv_str(j, "url", s->url);
        gw__json_key(j, "up");
        gw__json_bool(j, s->up);
        gw__json_kv_str(j, "error", s->up ? NULL : or_null(s->error));
        gw__json_kv_str(j, "version", or_null(s->version));
        gw__json_kv_u64(j, "pid", s->pid != 0, s->pid);
        gw__json_key(j, "probe");
        if (s->probed) {
            gw__json_object_begin(j);
            gw__json_kv_str(j, "model", or_null(s->probe_model));
            gw__json_kv_double(j, "seconds", s->probe_model[0] && !s->probe_error[0],
                               s->probe_seconds);
            gw__json_kv_str(j, "result", or_null(s->probe_result));
            gw__json_kv_str(j, "error", or_null(s->probe_error));
            gw__json_object_end(j);
        } else {
            gw__json_null(j);
        }
        gw__json_key(j, "slots");
        if (s->has_slots) {
            gw__json_object_begin(j);
            gw__json_kv_u64(j, "total", true, s->slots_total);
            gw__json_kv_u64(j, "busy", s->has_busy, s->slots_busy);
            gw__json_object_end(j);
        } else {
            gw__json_null(j);
        }
        gw__json_key(j, "models");
        gw__json_array_begin(j);
        for (size_t k = 0; k < s->n_models; k++) {
            gw__json_object_begin(j);
            gw__loaded_model_members(j, &s->models[k]);
            gw__json_object_end(j);
        }
        gw__json_array_end(j);
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
}

/* ------------------------------------------------------------- lists */

void gw__server_list_add(gw__server_list *l, gw__server_kind kind, const char *urls,
                         bool configured, uint32_t pid)
{
    for (const char *u = urls; *u;) {
        size_t len = strcspn(u, ",");
        char url[sizeof l->v[0].url];
        snprintf(url, sizeof url, "%.*s", (int)len, u);
        u += len + (u[len] == ',');
        bool dup = false;
        for (size_t i = 0; i < l->n; i++)
            if (l->v[i].kind == kind && strcmp(l->v[i].url, url) == 0) {
                dup = true;
                if (pid && !l->v[i].pid)
                    l->v[i].pid = pid;
            }
        if (dup || !len)
            continue;
        if (GW__ARRAY_RESERVE(l->v, l->cap, l->n + 1, 4096) != GW_OK)
            return;
        gw__model_server *s = &l->v[l->n++];
        memset(s, 0, sizeof *s);
        s->kind = kind;
        s->configured = configured;
        s->pid = pid;
        gw__strlcpy(s->url, url, sizeof s->url);
    }
}

void gw__server_list_plan(gw__server_list *l, const char *ollama, const char *llama,
                          const gw_snapshot *snap)
{
    const char *o = ollama ? ollama : GW__OLLAMA_DEFAULT_URL;
    if (strcmp(o, "none") != 0)
        gw__server_list_add(l, GW__SERVER_OLLAMA, o, ollama != NULL, 0);
    if (llama && strcmp(llama, "none") == 0)
        return;
    if (llama)
        gw__server_list_add(l, GW__SERVER_LLAMACPP, llama, true, 0);
    for (size_t i = 0; snap && i < snap->n_processes; i++) {
        const gw_process *p = &snap->processes[i];
        char url[300];
        if (gw_process_has(p, GW_PROC_CMDLINE) && gw__llamacpp_url_of(p->cmdline, url, sizeof url))
            gw__server_list_add(l, GW__SERVER_LLAMACPP, url, false, p->pid);
    }
}

void gw__server_list_keep_shown(gw__server_list *l)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!l->v[i].configured && !l->v[i].up && !l->v[i].pid) {
            gw__model_server_release(&l->v[i]);
            continue;
        }
        l->v[k++] = l->v[i];
    }
    l->n = k;
}

void gw__server_list_attribute(const gw__server_list *l, gw_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_processes; i++) {
        gw_process *p = &snap->processes[i];
        const gw__loaded_model *m = gw_process_has(p, GW_PROC_CMDLINE)
                                        ? gw__model_servers_find(l->v, l->n, p->cmdline)
                                        : NULL;
        if (m) {
            gw__strlcpy(p->model, m->name, sizeof p->model);
            p->valid |= 1u << GW_PROC_MODEL;
        }
    }
}

void gw__server_list_release(gw__server_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        gw__model_server_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int gw__server_list_check(const char *list, gw_error *err)
{
    if (!list[0])
        return gw__error_set(err, GW_EINVAL, "an empty list (\"none\" asks no server)");
    if (strcmp(list, "none") == 0)
        return GW_OK;
    for (const char *u = list; *u;) {
        size_t n = strcspn(u, ",");
        char url[300];
        gw_daemon_url parsed;
        if (n == 0 || n >= sizeof url)
            return gw__error_set(err, GW_EINVAL, "'%s' is not a URL list", list);
        snprintf(url, sizeof url, "%.*s", (int)n, u);
        if (gw_daemon_url_parse(url, &parsed, err) != GW_OK)
            return err->code;
        u += n + (u[n] == ',');
    }
    return GW_OK;
}
