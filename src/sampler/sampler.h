/* sampler.h — the daemon's background sampling: one monitor round per tick,
 * a deadline on every round, and atomic publication of immutable snapshots.
 *
 * Owns: the monitor (taken over at start), two threads, the published
 * snapshot, the history rings and the event detector.
 *
 * Threads and why two: the worker runs gw_monitor_sample(), which may block
 * for as long as a driver call hangs; the ticker keeps time. Each tick the
 * ticker asks the worker for a round and waits for it until the deadline.
 * A round that returns in time is published as is (history and events are
 * updated from it). A round that overruns leaves the worker blocked; the
 * ticker then publishes, every tick, a copy of the last good snapshot with
 * every device marked stale, its reason saying for how long sampling has
 * hung, and its sample time unchanged, so its age keeps growing. When the
 * round finally returns its snapshot is published and sampling goes on.
 *
 * Invariants:
 *  1. At most one round runs at a time (the monitor is not thread-safe).
 *  2. The published snapshot only changes under the sampler's lock, by
 *     swapping the pointer; readers get their own reference.
 *  3. Listeners are called on the ticker thread, outside the lock, once per
 *     publication, in publication order.
 *  4. Stale copies never enter history or the event detector.
 */
#ifndef GW_SAMPLER_SAMPLER_H
#define GW_SAMPLER_SAMPLER_H

#include "sampler/events.h"
#include "sampler/history.h"
#include "sampler/log.h"

typedef struct gw__sampler_config {
    unsigned interval_ms;           /* tick; default 1000 */
    unsigned deadline_ms;           /* a round running longer is stale; default 2000 */
    unsigned history_seconds;       /* ring length in time; default 3600 */
    unsigned process_interval_ms;   /* process lists at most this often when a
                                       process monitor is given; default 5000 */
    gw__event_thresholds thresholds;
    /* Called on the ticker thread with each new snapshot before anyone
     * else sees it (it may still write it: e.g. a process's model); NULL:
     * none. Must not block. */
    void (*annotate)(void *ctx, gw_snapshot *snap);
    void *annotate_ctx;
} gw__sampler_config;

/* Fills the defaults above. */
void gw__sampler_config_default(gw__sampler_config *c);

/* Called once per publication with a borrowed snapshot (acquire it to keep
 * it) and whether it is a stale copy. */
typedef void (*gw__sampler_listener)(void *ctx, gw_snapshot *snap, bool stale);

typedef struct gw__sampler gw__sampler;

/* Counters for self metrics; a consistent copy. */
typedef struct gw__sampler_stats {
    uint64_t rounds;          /* rounds that returned */
    uint64_t overruns;        /* rounds that missed their deadline */
    uint64_t stale_publications;
    uint64_t failures;        /* rounds that returned an error (ENOMEM) */
    uint64_t publications;
    uint64_t process_rounds;  /* rounds that read process lists */
    double last_round_seconds;
    double cpu_seconds;       /* CPU time of both sampler threads */
    bool stalled;             /* a round is overrunning now */
    double stalled_seconds;   /* for how long, when stalled */
    size_t history_bytes;
    unsigned interval_ms;
    size_t n_sources;         /* per-source failed rounds since start */
    struct {
        char name[16];
        uint64_t errors;
    } sources[8];
} gw__sampler_stats;

/* Starts sampling with mon, which the sampler now owns (it closes it in
 * gw__sampler_stop; on failure mon is closed too).
 *
 * Slow cadence for costly per-process lists: with process_mon (a second
 * monitor opened with processes on, mon with them off; also owned), a round
 * due for processes (every process_interval_ms) samples process_mon, the
 * others sample mon and carry the last process list forward (matched to
 * devices by UUID), so every snapshot has processes and process events see
 * only real changes. process_mon NULL: mon every round. listener may be NULL;
 * it is called from the sampler's thread. log is borrowed and must outlive
 * the sampler. Returns GW_OK, GW_EINVAL (bad config), GW_ENOMEM or GW_EIO
 * (thread creation failed); *out is NULL on failure. */
int gw__sampler_start(gw__sampler **out, gw_monitor *mon, gw_monitor *process_mon,
                      const gw__sampler_config *cfg,
                      gw__sampler_listener listener, void *listener_ctx, gw__log *log,
                      gw_error *err);

/* Stops the threads and frees everything. If a round is hanging in a driver
 * call, waits up to wait_ms for it, then abandons the worker (its thread is
 * detached and the monitor deliberately not closed, since the thread still
 * uses it) and logs that. NULL is a no-op. */
void gw__sampler_stop(gw__sampler *s, unsigned wait_ms);

/* The published snapshot with a new reference (caller releases), or NULL
 * before the first round has returned or been declared stale. */
gw_snapshot *gw__sampler_current(gw__sampler *s);

/* Applies a new interval, process interval, deadline and thresholds (reload).
 * history_seconds is fixed at start. */
void gw__sampler_reconfigure(gw__sampler *s, const gw__sampler_config *cfg);

void gw__sampler_stats_get(gw__sampler *s, gw__sampler_stats *out);

/* Borrowed; valid until gw__sampler_stop. Both are internally locked. */
gw__history *gw__sampler_history(gw__sampler *s);
gw__events *gw__sampler_events(gw__sampler *s);

/* Makes a copy of snap with every device stale (lost ones stay lost; none is
 * fresh, since the round that would refresh them has not returned), taken_ns
 * = now_real_ns. With hung_source (the source the round is stuck in, or
 * NULL when unknown): that source is failed with GW_ETIMEDOUT and its
 * devices' reason says it has not answered for `hung_seconds`; the other
 * sources with devices are degraded and their devices' reason names the
 * source blocking the round. Without it every source with a device is
 * failed. Devices keep their sample time (the snapshot's time when they had
 * none). NULL when out of memory. Exposed for tests. */
gw_snapshot *gw__snapshot_stale_copy(const gw_snapshot *snap, const char *hung_source,
                                     double hung_seconds, unsigned deadline_ms,
                                     int64_t now_real_ns);

/* A new snapshot (one reference) with cheap's devices, sources and host and
 * full's processes, each re-pointed at cheap's device with the same key
 * (UUID, else "index:N"); processes of devices absent or lost in cheap are
 * dropped. Inputs are only read. NULL when out of memory. Exposed for
 * tests. */
gw_snapshot *gw__snapshot_with_processes(const gw_snapshot *cheap, const gw_snapshot *full);

#endif
