/* prom_vector.h — Prometheus's instant-query answer (GET /api/v1/query,
 * resultType "vector"), decoded in one streaming pass: the parser of what
 * a Prometheus server (untrusted input) says, for prom_source.c.
 *
 * Owns: the decoder and its scratch buffer (per call); nothing between
 * calls.
 *
 * Invariants:
 *  1. An answer is decoded in one streaming pass (no JSON tree, no
 *     allocation per value: one scratch buffer for the strings of the
 *     series at hand), reading only body[0..len) (no NUL needed at len).
 *     Series are reported as they end, before the whole answer is known to
 *     be good: a caller keeps nothing of an answer that fails (decode_all
 *     drops the nodes a failed node query made, and a failed poll marks
 *     every node down).
 *  2. The decoder accepts only what a strict JSON parser accepts (RFC 8259:
 *     UTF-8, no lone surrogates, no control characters in strings, nothing
 *     after the top-level object but whitespace), nested at most
 *     GW__PROM_MAX_DEPTH levels; members come in any order, and the last
 *     of a repeated member wins (as in a JSON object).
 *  3. A series with more than GW__PROM_MAX_LABELS labels, a label holding
 *     a NUL, a metric that is not an object or a value that is not
 *     [anything, "finite number"] is skipped, never an error.
 */
#ifndef GW_FLEET_PROM_VECTOR_H
#define GW_FLEET_PROM_VECTOR_H

#include "core/model.h"

#include <stddef.h>

/* A series with more labels than this is skipped (invariant 3). */
#define GW__PROM_MAX_LABELS 64
/* Arrays and objects nested deeper than this fail the answer (invariant 2). */
#define GW__PROM_MAX_DEPTH 64

/* One label of a series: name and value, NUL-terminated, UTF-8 (escapes
 * decoded; never holding a NUL). Borrowed: valid only during the callback. */
typedef struct gw__prom_label {
    const char *name, *value;
} gw__prom_label;

/* Called for each series with its labels (n of them, in the answer's
 * order; string-valued labels only) and its finite value. */
typedef void (*gw__prom_series_fn)(void *ctx, const gw__prom_label *labels, size_t n,
                                   double value);

/* Decodes one query answer ({"status":"success","data":{"resultType":
 * "vector","result":[{"metric":{...},"value":[t,"v"]}]}}, members in any
 * order, unknown members skipped) and calls fn for each series whose
 * metric is an object and whose value is [anything, "finite number"].
 * GW_OK; GW_EPARSE naming what is wrong ("not JSON: expected ':' at byte
 * 123", "status is not success: <error>", "the answer is not an instant
 * vector"); GW_ENOMEM. fn may have been called before an error (invariant
 * 1). Exposed for the fuzz target. */
int gw__prom_vector_parse(const char *body, size_t len, gw__prom_series_fn fn, void *ctx,
                          gw_error *err);

/* The value of the (last) label called name; NULL when there is none. */
const char *gw__prom_label_get(const gw__prom_label *labels, size_t n, const char *name);

#endif
