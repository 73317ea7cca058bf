/* prom_source.h — the cluster view read from a Prometheus server's query
 * API instead of polling every node: for fleets where Prometheus already
 * scrapes each node's gpuwatch daemon (docs/cluster.md has the scrape
 * config).
 *
 * Owns: the instant queries (GET /api/v1/query, all sent at once), decoding
 * their vector answers, and turning the series of each scrape target
 * (`instance` label, filtered by the `job` label) into nodes: nodes from
 * gpuwatch_build_info (answering) and `up == 0` (not); GPUs from
 * gpuwatch_gpu_info's identity, gpuwatch_gpu_memory_total_bytes and
 * _memory_free_bytes (used is total - free: driver-reserved memory counts
 * as used, where direct polling shows NVML's used); the exceptions from the
 * sparse series the daemon keeps for them: gpuwatch_gpu_placement_blocked
 * (a GPU not ok or at or over its slowdown temperature, with the reason;
 * the temperatures of such a node from one follow-up query) and
 * gpuwatch_gpu_placement_pending_bytes; host RAM from
 * gpuwatch_host_memory_*; models from gpuwatch_model_{size,vram}_bytes.
 * What Prometheus spends on a query is mostly selecting and encoding
 * series: a 1,000-node fleet answers in three GPU-sized vectors, not twelve.
 * So, unlike direct polling, utilization is not shown and a GPU's
 * temperature is known only when it is at or over its slowdown limit
 * (enough for the engine's default temperature rule; a --max-temp below
 * it is not honoured here).
 *
 * Invariants:
 *  1. The answers are untrusted: a body that is not a Prometheus
 *     "success" vector fails the poll naming the query; a series whose
 *     labels or value do not parse is skipped; GPU numbers past
 *     GW__PROM_MAX_GPUS per node are skipped, never allocated.
 *  2. The node list is rebuilt each poll, sorted by instance; a target
 *     whose `up` is 0 is a node that is down ("Prometheus could not scrape
 *     it").
 *  3. Answers are decoded by prom_vector.h, whose series come before the
 *     answer is known to be good: nothing of an answer that fails is kept
 *     (decode_all drops the nodes a failed node query made, and a failed
 *     poll marks every node down).
 */
#ifndef GW_FLEET_PROM_SOURCE_H
#define GW_FLEET_PROM_SOURCE_H

#include "fleet/cluster.h"
#include "fleet/prom_vector.h"

#include <stddef.h>

#define GW__PROM_MAX_GPUS 256

/* Replaces c's nodes with what Prometheus at c->prometheus says. GW_OK;
 * GW_EIO / GW_ETIMEDOUT / GW_EPARSE naming the query when Prometheus could
 * not be read (c->error says the same; the old nodes are kept, marked
 * down). */
int gw__prom_source_poll(gw__cluster *c, const gw__curl_lib *lib, const gw__cluster_config *cfg,
                         gw_error *err);

#endif
