/* json_read.h — typed, bounded reads of members of decoded JSON (jansson):
 * the one place every decoder of a peer's answer (model servers, `top
 * --connect`, the fleet) turns a member into a C value.
 *
 * Owns: nothing but the rules: a member that is absent, null or of another
 * type is "not there" (false / ""), never 0 passed off as a reading; numbers
 * must be finite; sizes must be non-negative integers (a real with no
 * fraction is accepted: some servers print 1e9).
 */
#ifndef GW_RENDER_JSON_READ_H
#define GW_RENDER_JSON_READ_H

#include "core/model.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The string at o.k into dst[cap] (truncated, terminated); "" when absent
 * or not a string. o may be NULL or not an object. */
void gw__jr_str(const json_t *o, const char *k, char *dst, size_t cap);

/* The non-negative integer at o.k (below 2^64); false when not one. */
bool gw__jr_u64(const json_t *o, const char *k, uint64_t *out);

/* The finite number at o.a (or o.a.b when b is not NULL); false when not
 * one. */
bool gw__jr_num(const json_t *o, const char *a, const char *b, double *out);

/* The device object of docs/report-json.md (a daemon's /health and
 * /gpu/metrics gpus[]) into *d (zeroed first): identity, vendor, state,
 * memory, utilization, temperatures, power, clocks, fan, pstate, each
 * with its valid bit only when present and in range; the sample time from
 * sample_age_seconds against now_ns (0: unknown). Returns whether the
 * state was one gpuwatch names (d->state is GW_DEVICE_OK otherwise: the
 * caller decides what an unknown state means). One reader for every
 * client of that object (top --connect, the cluster view). */
bool gw__device_read(const json_t *g, gw_device *d, int64_t now_ns);

#endif
