/* prom_source.h — the cluster view read from a Prometheus server's query
 * API instead of polling every node: for fleets where Prometheus already
 * scrapes each node's gpuwatch daemon (docs/cluster.md has the scrape
 * config).
 *
 * Owns: the instant queries (GET /api/v1/query, all sent at once), decoding
 * their vector answers, and turning the series of each scrape target
 * (`instance` label, filtered by the `job` label) into nodes: GPUs from
 * gpuwatch_gpu_info / _memory_{total,used,free}_bytes / _state /
 * _utilization_ratio / _temperature_celsius / _slowdown_temperature_celsius
 * / _placement_pending_bytes, host RAM from gpuwatch_host_memory_*,
 * models from gpuwatch_model_{size,vram}_bytes, the version from
 * gpuwatch_build_info, reachability from `up`.
 *
 * Invariants:
 *  1. The answers are untrusted: a body that is not a Prometheus
 *     "success" vector fails the poll naming the query; a series whose
 *     labels or value do not parse is skipped; GPU numbers past
 *     GW__PROM_MAX_GPUS per node are skipped, never allocated.
 *  2. The node list is rebuilt each poll, in the order of the `up`
 *     answer's instances sorted by name; a target whose `up` is 0 is a
 *     node that is down ("Prometheus could not scrape it").
 */
#ifndef GW_FLEET_PROM_SOURCE_H
#define GW_FLEET_PROM_SOURCE_H

#include "fleet/cluster.h"

#include <jansson.h>

#define GW__PROM_MAX_GPUS 256

/* Replaces c's nodes with what Prometheus at c->prometheus says. GW_OK;
 * GW_EIO / GW_ETIMEDOUT / GW_EPARSE naming the query when Prometheus could
 * not be read (c->error says the same; the old nodes are kept, marked
 * down). */
int gw__prom_source_poll(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                         gw_error *err);

/* Decodes one query answer ({"status":"success","data":{"resultType":
 * "vector","result":[{"metric":{...},"value":[t,"v"]}]}}) and calls fn for
 * each series with its labels (a jansson object, borrowed) and value.
 * GW_EPARSE naming what is wrong. Exposed for the fuzz target. */
typedef void (*gw__prom_series_fn)(void *ctx, const json_t *labels, double value);
int gw__prom_vector_parse(const char *body, size_t len, gw__prom_series_fn fn, void *ctx,
                          gw_error *err);

#endif
