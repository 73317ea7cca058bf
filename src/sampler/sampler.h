/* sampler.h — the daemon's background sampling: one monitor round per tick,
 * a deadline on every source's read, and atomic publication of immutable
 * snapshots.
 *
 * Owns: the monitor (taken over at start), the ticker thread and one worker
 * thread per source, each source's latest part (backends/monitor.h), the
 * published snapshot, the history rings and the event detector.
 *
 * Threads and why one per source: a source's read may block for as long
 * as a driver call hangs (an NVML call on a wedged GPU). Each source has a
 * worker that reads it (gw__monitor_sample_source); the ticker keeps time
 * and runs the round: it hands the sources to their workers one after the
 * other, in source order, and waits for each until deadline_ms. A source
 * that answers in time gives its part to the round as is. A source past its
 * deadline is *hung*: the round goes on without it, using a copy of the
 * part it last returned with its devices stale (reason: "source 'nvml' has
 * not answered for 3.4 s (deadline 2000 ms); showing the last sample",
 * sample time unchanged, so ages grow) and its status failed/ETIMEDOUT.
 * Later rounds do not ask a hung source again (its worker is still
 * blocked): they copy its last part at once, so the other sources stay
 * fresh every interval. When the hung read returns, a round runs at once
 * and takes that late part as the source's fresh one; the next round asks
 * the source again.
 *
 * Fallback sources (nvidia-smi, amd-smi, rocm-smi) run after the sources
 * they stand in for and see the devices this round holds for those, fresh
 * or stale copies: while NVML hangs, nvidia-smi sees its stale NVIDIA GPUs
 * and is not run (it would ask the same wedged driver and report the same
 * GPUs twice over); a source hung before it ever answered has no devices,
 * so the fallback runs as it would for a source that is absent.
 *
 * Invariants:
 *  1. A source is read by one thread at a time: its own worker, given a
 *     read only when idle (so a hung source is never asked again until it
 *     returns). Different sources may be read at once (monitor.h, inv. 2).
 *  2. The published snapshot only changes under the sampler's lock, by
 *     swapping the pointer; readers get their own reference.
 *  3. Listeners are called on the ticker thread, outside the lock, once per
 *     publication, in publication order.
 *  4. A publication is *stale* (listener flag, stale_publications) when at
 *     least one source's devices in it are copies from a hung source; its
 *     fresh sources' devices are real samples. Stale copies never enter
 *     history (history skips stale devices) and never make events (the
 *     detector sees their values unchanged).
 *  5. Devices keep their snapshot indexes while a source hangs: parts are
 *     assembled in source order and a hung source's copy has its last
 *     devices, in their order.
 */
#ifndef GW_SAMPLER_SAMPLER_H
#define GW_SAMPLER_SAMPLER_H

#include "sampler/events.h"
#include "sampler/history.h"
#include "sampler/log.h"
#include "core/snapshot_build.h"

typedef struct gw__sampler_config {
    unsigned interval_ms;           /* tick; default 1000 */
    unsigned deadline_ms;           /* a source's read running longer is hung: its
                                       devices are served stale; default 2000 */
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
    uint64_t rounds;          /* rounds assembled */
    uint64_t overruns;        /* source reads that missed their deadline */
    uint64_t stale_publications; /* publications with a hung source's copies */
    uint64_t failures;        /* rounds that failed (ENOMEM) */
    uint64_t publications;
    uint64_t process_rounds;  /* rounds that read process lists */
    double last_round_seconds;
    double cpu_seconds;       /* CPU time of the sampler's threads */
    bool stalled;             /* a source is hung now */
    double stalled_seconds;   /* for how long (the longest hung), when stalled */
    size_t history_bytes;
    unsigned interval_ms;
    unsigned history_seconds; /* what the history rings span at interval_ms */
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
 * only real changes; a hung source's devices keep the processes of the last
 * list too. process_mon must read the same sources as mon, in the same order
 * (one worker reads source i of either). process_mon NULL: mon every round.
 * listener may be NULL; it is called from the sampler's thread. log is
 * borrowed and must outlive the sampler. Returns GW_OK, GW_EINVAL (bad
 * config, or the two monitors' sources differ), GW_ENOMEM or GW_EIO (thread
 * creation failed); *out is NULL on failure. */
int gw__sampler_start(gw__sampler **out, gw_monitor *mon, gw_monitor *process_mon,
                      const gw__sampler_config *cfg,
                      gw__sampler_listener listener, void *listener_ctx, gw__log *log,
                      gw_error *err);

/* Stops the threads and frees everything. If a source is hanging in a
 * driver call, waits up to wait_ms for it, then abandons the sampler (the
 * blocked workers are detached; the monitors and the sampler itself are
 * deliberately not freed, since those threads still use them) and logs
 * which source is still blocked. NULL is a no-op. */
void gw__sampler_stop(gw__sampler *s, unsigned wait_ms);

/* The published snapshot with a new reference (caller releases), or NULL
 * before the first round has been published. */
gw_snapshot *gw__sampler_current(gw__sampler *s);

/* Applies a new interval, process interval, deadline and thresholds (reload).
 * history_seconds is fixed at start. */
void gw__sampler_reconfigure(gw__sampler *s, const gw__sampler_config *cfg);

void gw__sampler_stats_get(gw__sampler *s, gw__sampler_stats *out);

/* Borrowed; valid until gw__sampler_stop. Both are internally locked. */
gw__history *gw__sampler_history(gw__sampler *s);
gw__events *gw__sampler_events(gw__sampler *s);

/* Fills out (initialised, empty) with the part a round uses for source
 * `name` while its read hangs: a copy of last (the part it last returned;
 * NULL or empty when it never answered) whose devices are stale (lost ones
 * stay lost) with a reason naming the source and hung_seconds, keeping their
 * sample time (last_taken_ns when they had none); its status failed with
 * GW_ETIMEDOUT, saying so; its host figures; its processes only when
 * keep_processes. Returns GW_OK or GW_ENOMEM (out empty). Exposed for
 * tests. */
int gw__part_stale_copy(const gw__collect *last, const char *name, double hung_seconds,
                        unsigned deadline_ms, int64_t last_taken_ns, bool keep_processes,
                        gw__collect *out);

/* A new snapshot (one reference) with cheap's devices, sources and host,
 * and processes: for cheap's device i, cheap's own processes when
 * keep_own[i], else full's processes of the device with the same key (UUID,
 * else "index:N"), re-pointed at i (none when i is lost). keep_own NULL:
 * none kept (every process from full). Inputs are only read. NULL when out
 * of memory. Exposed for tests. */
gw_snapshot *gw__snapshot_with_processes(const gw_snapshot *cheap, const gw_snapshot *full,
                                         const bool *keep_own);

#endif
