/* fuzz_prom_vector.c — libFuzzer target for the decoder of Prometheus's
 * instant-query answers (gw__prom_vector_parse, src/fleet/prom_vector.c).
 *
 * Owns: the checks below, nothing else (no state between inputs). Built by
 * scripts/fuzz-prom-vector.sh; its corpus (tests/fleet/corpus/
 * fuzz_prom_vector) replays as a normal test (fuzz_prom_vector_replay).
 *
 * Invariants checked on every input (abort() when broken):
 *  1. The decoder reads only data[0..size) (ASan; the replay puts a guard
 *     page right after it) and never crashes, whatever the input.
 *  2. What it reports is sane: at most GW__PROM_MAX_LABELS labels, each
 *     name and value a NUL-terminated string of well-formed UTF-8, the
 *     value finite; an error comes with a message.
 *  3. It accepts only JSON: when it says GW_OK, jansson reads the input
 *     too (but for numbers too large for jansson's integers or doubles).
 *  4. It agrees with the jansson decoder it replaced (reference() below):
 *     for an input jansson reads with no repeated member names, no NUL
 *     (escaped or not) and no nesting past GW__PROM_MAX_DEPTH, both succeed or
 *     both fail, with the same series in the same order (same string
 *     labels, same value). */
#include "fleet/prom_vector.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ref_series {
    json_t *labels;
    double value;
} ref_series;

typedef struct compare {
    ref_series *ref; /* NULL: no reference for this input */
    size_t n_ref, seen;
} compare;

/* The decoder that gw__prom_vector_parse replaced, over a tree: the series
 * it would have reported (*out, malloc'd; labels borrowed from doc).
 * 0: a Prometheus error or not a vector; 1: a vector. */
static int reference(json_t *doc, ref_series **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *data = json_object_get(doc, "data"), *result = json_object_get(data, "result");
    const char *status = json_string_value(json_object_get(doc, "status"));
    const char *type = json_string_value(json_object_get(data, "resultType"));
    if (!status || strcmp(status, "success") != 0 || !type || strcmp(type, "vector") != 0 ||
        !json_is_array(result))
        return 0;
    *out = malloc((json_array_size(result) + 1) * sizeof **out);
    if (!*out)
        abort();
    size_t i;
    json_t *s;
    json_array_foreach(result, i, s) {
        json_t *labels = json_object_get(s, "metric"), *value = json_object_get(s, "value");
        json_t *v = json_array_get(value, 1);
        if (!json_is_object(labels) || json_array_size(value) != 2 || !json_is_string(v))
            continue;
        char *end;
        double x = strtod(json_string_value(v), &end);
        if (*end || end == json_string_value(v) || !isfinite(x))
            continue;
        size_t strings = 0;
        const char *k;
        json_t *lv;
        json_object_foreach(labels, k, lv) strings += json_is_string(lv);
        if (strings > GW__PROM_MAX_LABELS)
            continue; /* too many labels: skipped (prom_vector.h invariant 3) */
        (*out)[(*n)++] = (ref_series){labels, x};
    }
    return 1;
}

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t len = *p < 0x80 ? 1 : *p >= 0xC2 && *p <= 0xDF ? 2 : *p >= 0xE0 && *p <= 0xEF ? 3
                   : *p >= 0xF0 && *p <= 0xF4 ? 4 : 0;
        if (!len)
            return false;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += len;
    }
    return true;
}

static void on_series(void *ctx, const gw__prom_label *l, size_t n, double value)
{
    compare *c = ctx;
    if (n > GW__PROM_MAX_LABELS || !isfinite(value))
        abort();
    for (size_t i = 0; i < n; i++)
        if (!utf8_ok(l[i].name) || !utf8_ok(l[i].value) ||
            gw__prom_label_get(l, n, l[i].name) == NULL)
            abort();
    size_t k = c->seen++;
    if (!c->ref)
        return;
    if (k >= c->n_ref || c->ref[k].value != value || json_object_size(c->ref[k].labels) < n)
        abort();
    size_t strings = 0;
    const char *name;
    json_t *v;
    json_object_foreach(c->ref[k].labels, name, v) {
        if (!json_is_string(v))
            continue;
        strings++;
        const char *mine = gw__prom_label_get(l, n, name);
        if (!mine || strcmp(mine, json_string_value(v)) != 0)
            abort();
    }
    if (strings != n)
        abort();
}

/* "\u0000" (which jansson refuses without JSON_ALLOW_NUL and the decoder
 * takes as a label that does not parse) or a NUL byte (which jansson 2.14
 * skips after a number: its lookahead buffer takes an ungot NUL for empty). */
static bool has_nul(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size))
        return true;
    for (size_t i = 0; i + 6 <= size; i++)
        if (data[i] == '\\' && data[i + 1] == 'u' && memcmp(data + i + 2, "0000", 4) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *doc = has_nul(data, size)
                      ? NULL
                      : json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    compare c = {NULL, 0, 0};
    ref_series *ref = NULL;
    int want = doc ? reference(doc, &ref, &c.n_ref) : -1;
    if (want == 1)
        c.ref = ref; /* series compared one by one (invariant 4) */
    gw_error err;
    gw_error_clear(&err);
    int rc = gw__prom_vector_parse((const char *)data, size, on_series, &c, &err);
    if (rc != GW_OK && (rc != err.code || !err.message[0]))
        abort();
    bool too_deep = strstr(err.message, "nested too deep") != NULL;
    if (want >= 0 && !too_deep &&
        ((rc == GW_OK) != (want == 1) || (rc == GW_OK && c.seen != c.n_ref)))
        abort();
    if (rc == GW_OK && !doc) { /* invariant 3 */
        json_t *any = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &je);
        if (!any && !strstr(je.text, "too big") && !strstr(je.text, "overflow") &&
            !strstr(je.text, "NUL byte"))
            abort();
        json_decref(any);
    }
    free(ref);
    json_decref(doc);
    return 0;
}
