/* prom_vector.c — see prom_vector.h. */
#include "fleet/prom_vector.h"
#include "core/array.h"
#include "core/util.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the vector parser
 *
 * One pass over the answer, no tree (prom_source.h invariants 3 and 4): a
 * recursive descent over the JSON grammar whose objects and arrays hand
 * their members / elements to a function of the level they are at (the
 * document, "data", a series, its "metric", its "value"); NULL skips them.
 * Every string a level needs (member names, labels, the value) is decoded
 * into one scratch buffer, each NUL-terminated, by offset (the buffer may
 * move as it grows); a level gives back what it no longer needs, so the
 * buffer holds at most one series' strings. */

#define SCRATCH_FIRST 4096

typedef struct vparser {
    const unsigned char *start, *p, *end;
    gw_error *err;
    int rc;                     /* the first error */
    char *buf;                  /* scratch: decoded strings */
    size_t len, cap;
    bool nul;                   /* the last string decoded held "\u0000" */
    /* the series at hand */
    size_t name_at[GW__PROM_MAX_LABELS], value_at[GW__PROM_MAX_LABELS], n_labels;
    bool labels_bad;            /* too many labels, or a NUL in one */
    bool metric_ok, value_ok;
    double value;
    gw__prom_label labels[GW__PROM_MAX_LABELS];
    /* the document */
    bool status_ok, type_vector, result_array;
    char why[200];              /* its "error" */
    gw__prom_series_fn fn;
    void *ctx;
} vparser;

/* Records the first error (what, at the current byte); false. */
static bool bad(vparser *v, const char *what)
{
    if (v->rc == GW_OK)
        v->rc = gw__error_set(v->err, GW_EPARSE, "not JSON: %s at byte %zu", what,
                              (size_t)(v->p - v->start));
    return false;
}

/* Room for n more bytes and a NUL in the scratch buffer. */
static bool room(vparser *v, size_t n)
{
    if (v->cap > v->len && v->cap - v->len > n)
        return true;
    size_t need = v->len + n + 1 > SCRATCH_FIRST ? v->len + n + 1 : SCRATCH_FIRST;
    if (GW__ARRAY_RESERVE(v->buf, v->cap, need, GW__ARRAY_UNBOUNDED) == GW_OK)
        return true;
    if (v->rc == GW_OK)
        v->rc = gw__error_set(v->err, GW_ENOMEM, "out of memory decoding the answer");
    return false;
}

static bool put(vparser *v, const void *s, size_t n)
{
    if (!room(v, n))
        return false;
    memcpy(v->buf + v->len, s, n);
    v->len += n;
    return true;
}

/* Skips whitespace; the next byte, or -1 at the end. */
static int peek(vparser *v)
{
    const unsigned char *q = v->p;
    while (q < v->end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
        q++;
    v->p = q;
    return q < v->end ? *q : -1;
}

static bool is_digit(const unsigned char *q, const unsigned char *end)
{
    return q < end && *q >= '0' && *q <= '9';
}

static int hex4(const unsigned char *q, const unsigned char *end)
{
    if (end - q < 4)
        return -1;
    int x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = q[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        x = x * 16 + d;
    }
    return x;
}

/* At a backslash: the escape's UTF-8 bytes into out (*n of them). */
static bool escape(vparser *v, unsigned char out[4], size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const unsigned char *q = v->p;
    if (v->end - q < 2)
        return bad(v, "unterminated string");
    const char *hit = memchr(from, q[1], 8);
    if (hit) {
        out[0] = (unsigned char)to[hit - from];
        *n = 1;
        v->p += 2;
        return true;
    }
    long cp = q[1] == 'u' ? hex4(q + 2, v->end) : -1;
    size_t used = 6;
    if (cp < 0)
        return bad(v, "invalid escape in a string");
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
        long lo = v->end - q >= 12 && q[6] == '\\' && q[7] == 'u' ? hex4(q + 8, v->end) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return bad(v, "lone surrogate in a \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return bad(v, "lone surrogate in a \\u escape");
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        *n = 1;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *n = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *n = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | cp >> 18);
        out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *n = 4;
    }
    v->nul |= cp == 0;
    v->p += used;
    return true;
}

/* At a byte >= 0x80: the length of a well-formed UTF-8 sequence there
 * (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8(vparser *v, size_t *n)
{
    const unsigned char *q = v->p;
    unsigned char c = q[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return bad(v, "invalid UTF-8");
    }
    if ((size_t)(v->end - q) < len || q[1] < lo || q[1] > hi)
        return bad(v, "invalid UTF-8");
    for (size_t i = 2; i < len; i++)
        if ((q[i] & 0xC0) != 0x80)
            return bad(v, "invalid UTF-8");
    *n = len;
    return true;
}

/* At '"': checks the string (escapes, UTF-8, no control characters) and,
 * when keep, appends it decoded and NUL-terminated to the scratch buffer.
 * v->nul: it held "\u0000". */
static bool str(vparser *v, bool keep)
{
    v->nul = false;
    v->p++;
    for (;;) {
        const unsigned char *q = v->p;
        while (q < v->end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            q++;
        if (keep && q > v->p && !put(v, v->p, (size_t)(q - v->p)))
            return false;
        v->p = q;
        if (q == v->end)
            return bad(v, "unterminated string");
        if (*q == '"') {
            v->p++;
            return !keep || put(v, "", 1);
        }
        unsigned char out[4];
        size_t n;
        if (*q < 0x20)
            return bad(v, "control character in a string");
        if (*q == '\\' ? !escape(v, out, &n) : !utf8(v, &n))
            return false;
        if (*q != '\\') {
            memcpy(out, q, n);
            v->p += n;
        }
        if (keep && !put(v, out, n))
            return false;
    }
}

static bool number(vparser *v)
{
    const unsigned char *q = v->p, *e = v->end;
    if (q < e && *q == '-')
        q++;
    if (!is_digit(q, e))
        return bad(v, "invalid number");
    if (*q == '0')
        q++;
    else
        while (is_digit(q, e))
            q++;
    if (q < e && *q == '.') {
        if (!is_digit(++q, e))
            return bad(v, "invalid number");
        while (is_digit(q, e))
            q++;
    }
    if (q < e && (*q | 0x20) == 'e') {
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(q, e))
            return bad(v, "invalid number");
        while (is_digit(q, e))
            q++;
    }
    v->p = q;
    return true;
}

static bool literal(vparser *v, const char *word, size_t n)
{
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, word, n) != 0)
        return bad(v, "invalid literal");
    v->p += n;
    return true;
}

/* Each member of an object: the key is in the scratch buffer at key (klen
 * bytes; v->nul: it held a NUL), v->p after the ':'; decodes or skips the
 * value. -1 error; 0 done (the scratch buffer goes back to before the key);
 * 1 done, keep the scratch buffer as it is. */
typedef int (*member_fn)(vparser *v, size_t key, size_t klen, int depth);
/* Each element of an array (the i-th): decodes or skips it. */
typedef bool (*elem_fn)(vparser *v, size_t i, int depth, void *arg);

static bool obj(vparser *v, int depth, member_fn member);
static bool arr(vparser *v, int depth, elem_fn elem, void *arg);

/* Any value, checked and skipped; depth is its container's. */
static bool skip(vparser *v, int depth)
{
    int c = peek(v);
    switch (c) {
    case '"':
        return str(v, false);
    case '{':
        return obj(v, depth + 1, NULL);
    case '[':
        return arr(v, depth + 1, NULL, NULL);
    case 't':
        return literal(v, "true", 4);
    case 'f':
        return literal(v, "false", 5);
    case 'n':
        return literal(v, "null", 4);
    case -1:
        return bad(v, "unexpected end");
    default:
        return c == '-' || (c >= '0' && c <= '9') ? number(v) : bad(v, "unexpected character");
    }
}

static int skip_member(vparser *v, int depth) { return skip(v, depth) ? 0 : -1; }

/* At '{': the object (at depth), each member given to member (NULL: skipped). */
static bool obj(vparser *v, int depth, member_fn member)
{
    if (depth > GW__PROM_MAX_DEPTH)
        return bad(v, "nested too deep");
    v->p++;
    if (peek(v) == '}') {
        v->p++;
        return true;
    }
    for (;;) {
        if (peek(v) != '"')
            return bad(v, "expected a member name");
        size_t mark = v->len;
        if (!str(v, member != NULL))
            return false;
        if (peek(v) != ':')
            return bad(v, "expected ':'");
        v->p++;
        int r = member ? member(v, mark, v->len - mark - 1, depth) : skip_member(v, depth);
        if (r < 0)
            return false;
        if (r == 0)
            v->len = mark;
        int c = peek(v);
        if (c != ',' && c != '}')
            return bad(v, "expected ',' or '}'");
        v->p++;
        if (c == '}')
            return true;
    }
}

/* At '[': the array (at depth), each element given to elem (NULL: skipped). */
static bool arr(vparser *v, int depth, elem_fn elem, void *arg)
{
    if (depth > GW__PROM_MAX_DEPTH)
        return bad(v, "nested too deep");
    v->p++;
    if (peek(v) == ']') {
        v->p++;
        return true;
    }
    for (size_t i = 0;; i++) {
        if (!(elem ? elem(v, i, depth, arg) : skip(v, depth)))
            return false;
        int c = peek(v);
        if (c != ',' && c != ']')
            return bad(v, "expected ',' or ']'");
        v->p++;
        if (c == ']')
            return true;
    }
}

static bool key_is(const vparser *v, size_t key, size_t klen, const char *word)
{
    return klen == strlen(word) && memcmp(v->buf + key, word, klen) == 0;
}

/* A string value compared with want (false when not a string). */
static bool string_is(vparser *v, int depth, const char *want, bool *is)
{
    *is = false;
    if (peek(v) != '"')
        return skip(v, depth);
    size_t at = v->len;
    if (!str(v, true))
        return false;
    *is = !v->nul && strcmp(v->buf + at, want) == 0;
    v->len = at;
    return true;
}

/* A label: kept when its value is a string (others are as if absent). */
static int label_member(vparser *v, size_t key, size_t klen, int depth)
{
    (void)klen;
    bool key_nul = v->nul;
    if (peek(v) != '"')
        return skip_member(v, depth);
    size_t at = v->len;
    if (!str(v, true))
        return -1;
    if (key_nul || v->nul || v->n_labels == GW__PROM_MAX_LABELS) {
        v->labels_bad = true;
        return 0;
    }
    v->name_at[v->n_labels] = key;
    v->value_at[v->n_labels++] = at;
    return 1;
}

typedef struct value_seen {
    size_t n;
    bool ok; /* the second element is a string holding a finite number */
} value_seen;

static bool value_elem(vparser *v, size_t i, int depth, void *arg)
{
    value_seen *seen = arg;
    seen->n = i + 1;
    if (i != 1 || peek(v) != '"')
        return skip(v, depth);
    size_t at = v->len;
    if (!str(v, true))
        return false;
    char *end;
    v->value = strtod(v->buf + at, &end);
    seen->ok = !v->nul && end != v->buf + at && end == v->buf + v->len - 1 && isfinite(v->value);
    v->len = at;
    return true;
}

static int series_member(vparser *v, size_t key, size_t klen, int depth)
{
    if (key_is(v, key, klen, "metric")) {
        v->n_labels = 0;
        v->labels_bad = false;
        v->metric_ok = peek(v) == '{';
        if (!v->metric_ok)
            return skip_member(v, depth);
        return obj(v, depth + 1, label_member) ? 1 : -1;
    }
    if (key_is(v, key, klen, "value")) {
        value_seen seen = {0, false};
        v->value_ok = false;
        if (peek(v) != '[')
            return skip_member(v, depth);
        if (!arr(v, depth + 1, value_elem, &seen))
            return -1;
        v->value_ok = seen.n == 2 && seen.ok;
        return 0;
    }
    return skip_member(v, depth);
}

/* One element of "result": a series is reported when it ends. */
static bool series_elem(vparser *v, size_t i, int depth, void *arg)
{
    (void)i;
    (void)arg;
    if (peek(v) != '{')
        return skip(v, depth);
    size_t mark = v->len;
    v->n_labels = 0;
    v->labels_bad = v->metric_ok = v->value_ok = false;
    if (!obj(v, depth + 1, series_member))
        return false;
    if (v->metric_ok && v->value_ok && !v->labels_bad) {
        for (size_t k = 0; k < v->n_labels; k++) {
            v->labels[k].name = v->buf + v->name_at[k];
            v->labels[k].value = v->buf + v->value_at[k];
        }
        v->fn(v->ctx, v->labels, v->n_labels, v->value);
    }
    v->len = mark;
    return true;
}

static int data_member(vparser *v, size_t key, size_t klen, int depth)
{
    if (key_is(v, key, klen, "resultType"))
        return string_is(v, depth, "vector", &v->type_vector) ? 0 : -1;
    if (key_is(v, key, klen, "result")) {
        v->result_array = peek(v) == '[';
        if (!v->result_array)
            return skip_member(v, depth);
        return arr(v, depth + 1, series_elem, NULL) ? 0 : -1;
    }
    return skip_member(v, depth);
}

static int top_member(vparser *v, size_t key, size_t klen, int depth)
{
    if (key_is(v, key, klen, "status"))
        return string_is(v, depth, "success", &v->status_ok) ? 0 : -1;
    if (key_is(v, key, klen, "error")) {
        v->why[0] = '\0';
        if (peek(v) != '"')
            return skip_member(v, depth);
        size_t at = v->len;
        if (!str(v, true))
            return -1;
        gw__strlcpy(v->why, v->buf + at, sizeof v->why);
        return 0;
    }
    if (key_is(v, key, klen, "data")) {
        v->type_vector = v->result_array = false;
        if (peek(v) != '{')
            return skip_member(v, depth);
        return obj(v, depth + 1, data_member) ? 0 : -1;
    }
    return skip_member(v, depth);
}

int gw__prom_vector_parse(const char *body, size_t len, gw__prom_series_fn fn, void *ctx,
                          gw_error *err)
{
    vparser parser, *v = &parser;
    memset(v, 0, sizeof *v);
    v->start = v->p = (const unsigned char *)(body ? body : "");
    v->end = v->start + (body ? len : 0);
    v->err = err;
    v->fn = fn;
    v->ctx = ctx;
    bool ok = peek(v) == '{' ? obj(v, 1, top_member) : bad(v, "expected '{'");
    if (ok && peek(v) != -1)
        ok = bad(v, "unexpected text after the answer");
    int rc = v->rc;
    if (ok && !v->status_ok)
        rc = gw__error_set(err, GW_EPARSE, "status is not success%s%s", v->why[0] ? ": " : "",
                           v->why);
    else if (ok && (!v->type_vector || !v->result_array))
        rc = gw__error_set(err, GW_EPARSE, "the answer is not an instant vector");
    free(v->buf);
    return rc;
}

const char *gw__prom_label_get(const gw__prom_label *labels, size_t n, const char *name)
{
    for (size_t i = n; i-- > 0;)
        if (strcmp(labels[i].name, name) == 0)
            return labels[i].value;
    return NULL;
}

