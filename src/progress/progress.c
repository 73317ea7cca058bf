/* progress.c — see progress.h. Owns the record's validation, rate/ETA, the
 * start-keeping stamp and the JSON codec (jansson parses; the writer is a
 * few printf calls, since every string but unit and message is from a
 * safe charset and those two are validated UTF-8 without control bytes). */
#include "progress/progress.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool charset_ok(const char *s, size_t cap, const char *extra)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr(extra, c))
            return false;
    }
    return true;
}

bool gw_progress_job_valid(const char *s) { return s && charset_ok(s, 64, "._-"); }
bool gw_progress_gpu_valid(const char *s) { return s && charset_ok(s, 96, "._:/-"); }

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or
 * code points past U+10FFFF), 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

bool gw_progress_text_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        size_t n = utf8_len(p);
        if (!n)
            return false;
        p += n;
    }
    return true;
}

static bool text_field_ok(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap && gw_progress_text_valid(s);
}

bool gw_progress_check(const gw_progress *p)
{
    return p && gw_progress_job_valid(p->job) && gw_progress_gpu_valid(p->gpu) &&
           text_field_ok(p->unit, sizeof p->unit) && text_field_ok(p->message, sizeof p->message) &&
           p->done <= INT64_MAX && p->total <= INT64_MAX && (p->total == 0 || p->done <= p->total) &&
           p->started_ns >= 0 && p->started_ns <= p->updated_ns &&
           p->updated_ns <= GW_PROGRESS_MAX_TIME_NS && p->pid >= 0 && p->start_done <= p->done;
}

int gw_progress_validate(const gw_progress *p, gw_error *err)
{
    if (!gw_progress_job_valid(p->job))
        return gw__error_set(err, GW_EINVAL,
                             "job '%.63s': 1 to 63 letters, digits, '.', '_' or '-'", p->job);
    if (!gw_progress_gpu_valid(p->gpu))
        return gw__error_set(err, GW_EINVAL,
                             "gpu '%.95s': a GPU UUID or index (1 to 95 letters, digits, '.', "
                             "'_', ':', '/' or '-')", p->gpu);
    if (!text_field_ok(p->unit, sizeof p->unit))
        return gw__error_set(err, GW_EINVAL,
                             "unit: at most 15 bytes of UTF-8 text without control characters");
    if (!text_field_ok(p->message, sizeof p->message))
        return gw__error_set(err, GW_EINVAL,
                             "message: at most 127 bytes of UTF-8 text without control characters");
    if (p->done > INT64_MAX || p->total > INT64_MAX)
        return gw__error_set(err, GW_EINVAL, "done and total: at most %" PRId64, INT64_MAX);
    if (p->total && p->done > p->total)
        return gw__error_set(err, GW_EINVAL, "done %" PRIu64 " is more than total %" PRIu64,
                             p->done, p->total);
    if (p->start_done > p->done)
        return gw__error_set(err, GW_EINVAL, "start_done %" PRIu64 " is more than done %" PRIu64,
                             p->start_done, p->done);
    if (p->started_ns < 0 || p->started_ns > p->updated_ns ||
        p->updated_ns > GW_PROGRESS_MAX_TIME_NS)
        return gw__error_set(err, GW_EINVAL,
                             "started and updated: 0 <= started <= updated <= 4000000000 seconds");
    if (p->pid < 0)
        return gw__error_set(err, GW_EINVAL, "pid %d: not a process id", (int)p->pid);
    return GW_OK;
}

static int copy_text(char *dst, size_t cap, const char *src, const char *what, gw_error *err)
{
    if (!src)
        src = "";
    if (strlen(src) >= cap)
        return gw__error_set(err, GW_EINVAL, "%s: longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, strlen(src) + 1);
    return GW_OK;
}

int gw_progress_fill(gw_progress *out, const char *job, const char *gpu, uint64_t done,
                     uint64_t total, const char *unit, const char *message, int32_t pid,
                     gw_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = copy_text(out->job, sizeof out->job, job, "job", err);
    if (rc == GW_OK)
        rc = copy_text(out->gpu, sizeof out->gpu, gpu, "gpu", err);
    if (rc == GW_OK)
        rc = copy_text(out->unit, sizeof out->unit, unit, "unit", err);
    if (rc == GW_OK)
        rc = copy_text(out->message, sizeof out->message, message, "message", err);
    if (rc == GW_OK) {
        out->done = done;
        out->total = total;
        out->pid = pid;
        rc = gw_progress_validate(out, err);
    }
    if (rc != GW_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

double gw_progress_rate(const gw_progress *p)
{
    if (p->updated_ns <= p->started_ns || p->done < p->start_done)
        return -1;
    return (double)(p->done - p->start_done) / ((double)(p->updated_ns - p->started_ns) / 1e9);
}

double gw_progress_eta(const gw_progress *p)
{
    if (p->total == 0)
        return -1;
    if (p->done >= p->total)
        return 0;
    double r = gw_progress_rate(p);
    if (!(r > 0))
        return -1;
    return (double)(p->total - p->done) / r;
}

void gw_progress_stamp(gw_progress *next, const gw_progress *prev, int64_t now_ns)
{
    now_ns -= now_ns % 1000;
    next->updated_ns = now_ns;
    if (prev && strcmp(prev->job, next->job) == 0 && strcmp(prev->gpu, next->gpu) == 0 &&
        next->done >= prev->start_done && prev->started_ns > 0 && prev->started_ns <= now_ns) {
        next->started_ns = prev->started_ns;
        next->start_done = prev->start_done;
        /* a report may leave out what does not change */
        if (!next->unit[0])
            memcpy(next->unit, prev->unit, sizeof next->unit);
        if (!next->total && prev->total >= next->done)
            next->total = prev->total;
    } else {
        next->started_ns = now_ns;
        next->start_done = next->done;
    }
}

bool gw_progress_expired(const gw_progress *p, int64_t now_ns, int64_t ttl_ns)
{
    int64_t age = now_ns - p->updated_ns;
    return age > ttl_ns || age < -ttl_ns;
}

/* ------------------------------------------------------------------ JSON */

static int bad_type(const char *key, const char *want, gw_error *err)
{
    return gw__error_set(err, GW_EINVAL, "\"%s\": must be %s", key, want);
}

static int get_count(json_t *v, const char *key, uint64_t *out, gw_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bad_type(key, "a whole number >= 0", err);
    *out = (uint64_t)json_integer_value(v);
    return GW_OK;
}

static int get_string(json_t *v, const char *key, char *dst, size_t cap, gw_error *err)
{
    if (!json_is_string(v))
        return bad_type(key, "a string", err);
    if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
        return gw__error_set(err, GW_EINVAL, "\"%s\": at most %zu bytes, no NUL", key, cap - 1);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return GW_OK;
}

/* Unix seconds (integer or real) to ns rounded to a microsecond. */
static int get_time(json_t *v, const char *key, int64_t *out, gw_error *err)
{
    double s;
    if (json_is_integer(v))
        s = (double)json_integer_value(v);
    else if (json_is_real(v))
        s = json_real_value(v);
    else
        return bad_type(key, "Unix seconds (a number)", err);
    if (!(s >= 0 && s <= (double)(GW_PROGRESS_MAX_TIME_NS / 1000000000)))
        return gw__error_set(err, GW_EINVAL, "\"%s\": Unix seconds from 0 to 4000000000", key);
    *out = llround(s * 1e6) * 1000;
    return GW_OK;
}

static int member(gw_progress *p, const char *key, json_t *v, unsigned *seen, gw_error *err)
{
    uint64_t u = 0;
    int rc;
    if (strcmp(key, "job") == 0)
        return *seen |= 1, get_string(v, key, p->job, sizeof p->job, err);
    if (strcmp(key, "gpu") == 0)
        return *seen |= 2, get_string(v, key, p->gpu, sizeof p->gpu, err);
    if (strcmp(key, "done") == 0)
        return *seen |= 4, get_count(v, key, &p->done, err);
    if (strcmp(key, "total") == 0)
        return get_count(v, key, &p->total, err);
    if (strcmp(key, "start_done") == 0)
        return get_count(v, key, &p->start_done, err);
    if (strcmp(key, "unit") == 0)
        return get_string(v, key, p->unit, sizeof p->unit, err);
    if (strcmp(key, "message") == 0)
        return get_string(v, key, p->message, sizeof p->message, err);
    if (strcmp(key, "started") == 0)
        return get_time(v, key, &p->started_ns, err);
    if (strcmp(key, "updated") == 0)
        return get_time(v, key, &p->updated_ns, err);
    if (strcmp(key, "pid") == 0) {
        if ((rc = get_count(v, key, &u, err)) != GW_OK)
            return rc;
        if (u > INT32_MAX)
            return gw__error_set(err, GW_EINVAL, "\"pid\": at most %d", INT32_MAX);
        p->pid = (int32_t)u;
        return GW_OK;
    }
    if (strcmp(key, "rate") == 0 || strcmp(key, "eta_seconds") == 0)
        return GW_OK; /* derived, written by gw_progress_to_json */
    return gw__error_set(err, GW_EINVAL,
                         "unknown member \"%.40s\" (known: job, gpu, done, total, unit, message, "
                         "pid, start_done, started, updated)", key);
}

/* One parsed JSON value (borrowed) into *out; see gw_progress_from_json. */
static int from_value(json_t *doc, gw_progress *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = GW_OK;
    unsigned seen = 0;
    if (!json_is_object(doc)) {
        rc = gw__error_set(err, GW_EINVAL, "progress record: must be a JSON object");
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(doc, key, v) {
            if ((rc = member(out, key, v, &seen, err)) != GW_OK)
                break;
        }
    }
    if (rc == GW_OK && seen != 7)
        rc = gw__error_set(err, GW_EINVAL, "progress record: missing \"%s\"",
                           !(seen & 1) ? "job" : !(seen & 2) ? "gpu" : "done");
    if (rc == GW_OK)
        rc = gw_progress_validate(out, err);
    if (rc != GW_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int gw_progress_from_json(const char *text, size_t len, gw_progress *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > GW_PROGRESS_MAX_JSON)
        return gw__error_set(err, GW_ERANGE, "progress record: %zu bytes, at most %d", len,
                             GW_PROGRESS_MAX_JSON);
    json_error_t je;
    json_t *doc = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return gw__error_set(err, GW_EPARSE, "progress record: not JSON: %s (line %d, column %d)",
                             je.text, je.line, je.column);
    int rc = from_value(doc, out, err);
    json_decref(doc);
    return rc;
}

int gw_progress_list_from_json(const char *text, size_t len, gw_progress **out, size_t *n,
                               gw_error *err)
{
    *out = NULL;
    *n = 0;
    json_error_t je;
    json_t *doc = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return gw__error_set(err, GW_EPARSE, "progress list: not JSON: %s (line %d, column %d)",
                             je.text, je.line, je.column);
    json_t *arr = json_object_get(doc, "progress");
    size_t k = json_is_array(arr) ? json_array_size(arr) : 0;
    int rc = GW_OK;
    gw_progress *v = NULL;
    if (!json_is_array(arr))
        rc = gw__error_set(err, GW_EPARSE, "progress list: no \"progress\" array");
    else if (k > GW_PROGRESS_MAX_RECORDS)
        rc = gw__error_set(err, GW_ERANGE, "progress list: %zu records, at most %d", k,
                           GW_PROGRESS_MAX_RECORDS);
    else if (k && !(v = calloc(k, sizeof *v)))
        rc = gw__error_set(err, GW_ENOMEM, "progress list: out of memory");
    for (size_t i = 0; rc == GW_OK && i < k; i++) {
        gw_error one;
        rc = from_value(json_array_get(arr, i), &v[i], &one);
        if (rc != GW_OK)
            gw__error_set(err, rc, "progress list: record %zu: %s", i, one.message);
    }
    json_decref(doc);
    if (rc != GW_OK) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return GW_OK;
}

/* s is valid text (no control bytes): only '"' and '\\' need escaping. */
static void put_string(gw_strbuf *sb, const char *s)
{
    gw__strbuf_putc(sb, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            gw__strbuf_putc(sb, '\\');
        gw__strbuf_putc(sb, *s);
    }
    gw__strbuf_putc(sb, '"');
}

static void put_time(gw_strbuf *sb, const char *key, int64_t ns)
{
    int64_t us = ns / 1000;
    gw__strbuf_printf(sb, ",\"%s\":%" PRId64 ".%06" PRId64, key, us / 1000000, us % 1000000);
}

static void put_number(gw_strbuf *sb, const char *key, double v)
{
    if (v < 0 || !isfinite(v))
        gw__strbuf_printf(sb, ",\"%s\":null", key);
    else
        gw__strbuf_printf(sb, ",\"%s\":%.6g", key, v);
}

void gw_progress_to_json(const gw_progress *p, bool with_derived, gw_strbuf *sb)
{
    assert(gw_progress_check(p));
    gw__strbuf_puts(sb, "{\"job\":");
    put_string(sb, p->job);
    gw__strbuf_puts(sb, ",\"gpu\":");
    put_string(sb, p->gpu);
    gw__strbuf_printf(sb, ",\"done\":%" PRIu64 ",\"total\":%" PRIu64 ",\"unit\":", p->done,
                      p->total);
    put_string(sb, p->unit);
    gw__strbuf_puts(sb, ",\"message\":");
    put_string(sb, p->message);
    gw__strbuf_printf(sb, ",\"pid\":%d,\"start_done\":%" PRIu64, (int)p->pid, p->start_done);
    put_time(sb, "started", p->started_ns);
    put_time(sb, "updated", p->updated_ns);
    if (with_derived) {
        put_number(sb, "rate", gw_progress_rate(p));
        put_number(sb, "eta_seconds", gw_progress_eta(p));
    }
    gw__strbuf_putc(sb, '}');
}

int gw_progress_cmp(const void *a, const void *b)
{
    const gw_progress *x = a, *y = b;
    int c = strcmp(x->job, y->job);
    return c ? c : strcmp(x->gpu, y->gpu);
}
