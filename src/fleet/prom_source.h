/* prom_source.h — the cluster view read from a Prometheus server's query
 * API instead of polling every node: for fleets where Prometheus already
 * scrapes each node's gpuwatch daemon (docs/cluster.md has the scrape
 * config).
 *
 * Owns: the instant queries (GET /api/v1/query, all sent at once), decoding
 * their vector answers, and turning the series of each scrape target
 * (`instance` label, filtered by the `job` label) into nodes: nodes from
 * gpuwatch_build_info (answering) and `up == 0` (not); GPUs from
 * gpuwatch_gpu_info's identity, gpuwatch_gpu_memory_total_bytes,
 * _memory_used_bytes and _memory_free_bytes; only the exceptions of the
 * rest: GPUs whose gpuwatch_gpu_state is not ok, GPUs at or over their
 * slowdown temperature, GPUs with gpuwatch_gpu_placement_pending_bytes;
 * host RAM from gpuwatch_host_memory_*; models from
 * gpuwatch_model_{size,vram}_bytes. What Prometheus spends on a query is
 * mostly selecting and encoding series: a 1,000-node fleet answers in
 * four GPU-sized vectors, not twelve. So, unlike direct polling, utilization
 * is not shown and a GPU's temperature is known only when it is at or over
 * its slowdown limit (enough for the engine's default temperature rule;
 * a --max-temp below it is not honoured here).
 *
 * Invariants:
 *  1. The answers are untrusted: a body that is not a Prometheus
 *     "success" vector fails the poll naming the query; a series whose
 *     labels or value do not parse is skipped; GPU numbers past
 *     GW__PROM_MAX_GPUS per node are skipped, never allocated.
 *  2. The node list is rebuilt each poll, sorted by instance; a target
 *     whose `up` is 0 is a node that is down ("Prometheus could not scrape
 *     it").
 *  3. An answer is decoded in one streaming pass (no JSON tree, no
 *     allocation per value: one scratch buffer for the strings of the
 *     series at hand), reading only body[0..len) (no NUL needed at len).
 *     Series are reported as they end, before the whole answer is known to
 *     be good: a caller keeps nothing of an answer that fails (decode_all
 *     drops the nodes a failed node query made, and a failed poll marks
 *     every node down).
 *  4. The decoder accepts only what a strict JSON parser accepts (RFC 8259:
 *     UTF-8, no lone surrogates, no control characters in strings, nothing
 *     after the top-level object but whitespace), nested at most
 *     GW__PROM_MAX_DEPTH levels; members come in any order, and the last
 *     of a repeated member wins (as in a JSON object).
 */
#ifndef GW_FLEET_PROM_SOURCE_H
#define GW_FLEET_PROM_SOURCE_H

#include "fleet/cluster.h"

#include <stddef.h>

#define GW__PROM_MAX_GPUS 256
/* A series with more labels than this is skipped (invariant 1). */
#define GW__PROM_MAX_LABELS 64
/* Arrays and objects nested deeper than this fail the answer (invariant 4). */
#define GW__PROM_MAX_DEPTH 64

/* Replaces c's nodes with what Prometheus at c->prometheus says. GW_OK;
 * GW_EIO / GW_ETIMEDOUT / GW_EPARSE naming the query when Prometheus could
 * not be read (c->error says the same; the old nodes are kept, marked
 * down). */
int gw__prom_source_poll(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                         gw_error *err);

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
 * 3). Exposed for the fuzz target. */
int gw__prom_vector_parse(const char *body, size_t len, gw__prom_series_fn fn, void *ctx,
                          gw_error *err);

/* The value of the (last) label called name; NULL when there is none. */
const char *gw__prom_label_get(const gw__prom_label *labels, size_t n, const char *name);

#endif
