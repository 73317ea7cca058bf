/* history.h — in-memory rings of recent samples, per device and metric.
 *
 * Owns: one ring per device (keyed by UUID, or "index:N" when a device has
 * no UUID) holding the last `capacity` samples of a fixed set of metrics
 * (gw__history_metrics), converted to the API's units at record time
 * (bytes, percent, degrees Celsius, watts, hertz, joules).
 *
 * Invariants:
 *  1. A row is (timestamp, one value per recorded metric); an invalid
 *     metric is stored as NaN and reported as null, never as 0.
 *  2. Rows of one ring are in increasing time order; the oldest row is
 *     overwritten when the ring is full.
 *  3. At most GW__HISTORY_MAX_DEVICES rings; devices beyond are ignored.
 *  4. All operations lock one internal mutex: record and query may run on
 *     different threads.
 *  5. Only new samples are rows: a stale device (a copy of an earlier
 *     sample, e.g. of a source that hangs) and a sample time already
 *     recorded are skipped.
 */
#ifndef GW_SAMPLER_HISTORY_H
#define GW_SAMPLER_HISTORY_H

#include "core/util.h"

#include <pthread.h>

#define GW__HISTORY_MAX_DEVICES 64

typedef struct gw__history gw__history;

/* The metrics that have history, in ring column order; n_out gets the count.
 * Static. */
const gw_metric *gw__history_metrics(size_t *n_out);

/* Unit of a recorded metric as it appears in the API ("bytes", "percent",
 * "celsius", "watts", "hertz", "joules"); NULL when m has no history. */
const char *gw__history_unit(gw_metric m);

/* Creates empty history keeping `capacity` rows per device (>= 1).
 * Returns GW_OK, GW_EINVAL (capacity 0 or too large) or GW_ENOMEM; caller
 * frees *out with gw__history_free. */
int gw__history_create(gw__history **out, size_t capacity, gw_error *err);

/* Frees everything. NULL is a no-op. */
void gw__history_free(gw__history *h);

/* Appends one row per device of s at the device's sample time (the
 * snapshot's time when the device has none), stale devices and samples
 * already recorded excepted (invariant 5). Out of memory for a new
 * device's ring drops that device's row and returns GW_ENOMEM; the others
 * are recorded. */
int gw__history_record(gw__history *h, const gw_snapshot *s);

/* One point of a query: unix time in seconds and value (valid false: null). */
typedef struct gw__history_point {
    double t;
    double v;
    bool valid;
} gw__history_point;

/* Points of device `key` (UUID or "index:N" as recorded) and metric m with
 * since_ns <= time <= until_ns (CLOCK_REALTIME ns), averaged over buckets of
 * step_ns aligned to the epoch (step_ns 0: every row). A bucket whose rows
 * are all invalid yields one invalid point. *out is malloc'd (caller frees),
 * *n its length (0 with *out NULL when nothing matches).
 * Returns GW_OK, GW_ENOENT (no such device), GW_EINVAL (m has no history)
 * or GW_ENOMEM; on error *out is NULL. */
int gw__history_query(gw__history *h, const char *key, gw_metric m, int64_t since_ns,
                      int64_t until_ns, int64_t step_ns, gw__history_point **out, size_t *n,
                      gw_error *err);

/* Bytes held by the rings (for the self metric and the RSS budget). */
size_t gw__history_bytes(gw__history *h);

/* The ring key of a device: its UUID, or "index:N". */
void gw__history_key(const gw_device *d, char *out, size_t cap);

#endif
