/* events.h — what changed between two snapshots that people care about:
 * memory pressure (with hysteresis), GPU lost / recovered, temperature at or
 * over the slowdown threshold, processes started / exited, sampling stalled /
 * resumed, and the health counters: new critical Xids, new uncorrected ECC
 * errors, a row remap that became pending (warning) or failed (critical).
 *
 * Owns: the detector state per device (keyed like history: UUID or
 * "index:N"), a ring of the last GW__EVENTS_RING events with increasing
 * sequence numbers, and a counter per event type since start.
 *
 * Invariants:
 *  1. Event seq starts at 1 and increases by one per event; the ring keeps
 *     the newest GW__EVENTS_RING events.
 *  2. Memory pressure levels go normal -> warning -> critical when used/total
 *     reaches the warn / critical ratio, and come back down only when the
 *     ratio falls below threshold - hysteresis: a level change is one event.
 *  3. The first snapshot observed announces lost GPUs, pressure/thermal
 *     states and health counters already non-zero, never the processes
 *     already running. A health counter that goes down (driver reloaded) is
 *     taken as the new base without an event.
 *  4. All functions lock one internal mutex.
 */
#ifndef GW_SAMPLER_EVENTS_H
#define GW_SAMPLER_EVENTS_H

#include "core/util.h"

#include <pthread.h>

#define GW__EVENTS_RING 1024

#define GW__EVENT_TYPES(X)                                      \
    X(GW__EV_MEMORY_WARNING, "memory_pressure_warning")        \
    X(GW__EV_MEMORY_CRITICAL, "memory_pressure_critical")      \
    X(GW__EV_MEMORY_NORMAL, "memory_pressure_cleared")         \
    X(GW__EV_GPU_LOST, "gpu_lost")                             \
    X(GW__EV_GPU_RECOVERED, "gpu_recovered")                   \
    X(GW__EV_THERMAL_SLOWDOWN, "thermal_slowdown")             \
    X(GW__EV_THERMAL_NORMAL, "thermal_cleared")                \
    X(GW__EV_PROCESS_STARTED, "process_started")               \
    X(GW__EV_PROCESS_EXITED, "process_exited")                 \
    X(GW__EV_SAMPLING_STALLED, "sampling_stalled")             \
    X(GW__EV_SAMPLING_RESUMED, "sampling_resumed")             \
    X(GW__EV_XID_ERROR, "xid_error")                           \
    X(GW__EV_ECC_UNCORRECTED, "ecc_uncorrected_errors")        \
    X(GW__EV_ROW_REMAP, "row_remap")

typedef enum gw__event_type {
#define GW__EV_ENUM(id, name) id,
    GW__EVENT_TYPES(GW__EV_ENUM)
#undef GW__EV_ENUM
    GW__EV_COUNT
} gw__event_type;

typedef enum gw__event_severity {
    GW__SEV_INFO = 0,
    GW__SEV_WARNING,
    GW__SEV_CRITICAL,
} gw__event_severity;

typedef struct gw__event {
    uint64_t seq;
    int64_t time_ns; /* CLOCK_REALTIME */
    gw__event_type type;
    gw__event_severity severity;
    int gpu;          /* snapshot index; -1 when not about one GPU */
    char uuid[96];    /* empty when none */
    uint32_t pid;     /* process events; 0 otherwise */
    double value;     /* ratio, celsius or seconds depending on type; NaN none */
    char message[384];
} gw__event;

/* Thresholds of the detector. */
typedef struct gw__event_thresholds {
    double memory_warn;       /* used/total ratio, default 0.90 */
    double memory_critical;   /* default 0.97 */
    double memory_hysteresis; /* default 0.05 */
    double thermal_hysteresis_celsius; /* default 2 */
} gw__event_thresholds;

void gw__event_thresholds_default(gw__event_thresholds *t);

/* Static names. */
const char *gw__event_type_name(gw__event_type t);
const char *gw__event_severity_name(gw__event_severity s);

typedef struct gw__events gw__events;

/* Creates an empty detector. GW_OK or GW_ENOMEM; caller frees with
 * gw__events_free. */
int gw__events_create(gw__events **out, const gw__event_thresholds *t, gw_error *err);
void gw__events_free(gw__events *ev);

/* Replaces the thresholds (reload). */
void gw__events_set_thresholds(gw__events *ev, const gw__event_thresholds *t);

/* Compares s with the previous observed snapshot and appends the events it
 * implies. Returns how many were appended. Out of memory for the process
 * set only skips process events this round. */
size_t gw__events_observe(gw__events *ev, const gw_snapshot *s);

/* Appends one event not derived from a snapshot (sampling stalled/resumed);
 * message is copied. Returns its seq. */
uint64_t gw__events_add(gw__events *ev, gw__event_type type, gw__event_severity sev,
                        double value, const char *message);

/* Copies up to max events with seq > after_seq, oldest first, into out;
 * returns the count. Events that fell out of the ring are skipped. */
size_t gw__events_since(gw__events *ev, uint64_t after_seq, gw__event *out, size_t max);

/* Seq of the newest event (0 when none). */
uint64_t gw__events_last_seq(gw__events *ev);

/* How many events of type t happened since creation. */
uint64_t gw__events_count(gw__events *ev, gw__event_type t);

#endif
