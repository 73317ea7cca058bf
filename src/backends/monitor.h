/* monitor.h — the monitor read one source at a time (gw__ tier), for the
 * daemon's sampler, which gives every source its own deadline.
 *
 * Owns: the contract of a *part*: one source's share of a round, kept in a
 * collector of its own, and the assembly of parts into a snapshot. The
 * one-shot gw_monitor_sample() (report, top, the library) does not use
 * parts: it reads every source into one collector on the caller's thread,
 * with no thread and no copy (its cost is benchmarked).
 *
 * A part (a gw__collect filled by gw__monitor_sample_source) holds:
 *   - the source's devices, in the order the source appended them;
 *   - their processes, device_index counted within the part's devices;
 *   - exactly one source status (sources[0]);
 *   - the host figures, when the source gives them (the host source).
 *
 * Invariants:
 *  1. Fallback sources (nvidia-smi, amd-smi, rocm-smi) decide from the
 *     devices earlier sources reported (skip a vendor a direct source
 *     covers, drop a PCI address already listed). With parts, the caller
 *     hands those devices in as `ctx`; gw__monitor_sample_source seeds the
 *     source's collector with them and strips them off again, so a backend
 *     sees exactly what it would in gw_monitor_sample.
 *  2. Different sources of one monitor may be read at the same time on
 *     different threads (each source's state is its own, the monitor's
 *     configuration is read-only); the same source never is.
 *  3. gw__snapshot_assemble orders devices by part order, then by each
 *     part's own order, and numbers them 0..n-1: the same indexes
 *     gw_monitor_sample gives when the parts are in source order.
 */
#ifndef GW_BACKENDS_MONITOR_H
#define GW_BACKENDS_MONITOR_H

#include "core/snapshot_build.h"
#include "core/model.h"

/* Number of sources m reads, in reading order (fixed at open). */
size_t gw__monitor_source_count(const gw_monitor *m);

/* Name of source i (i < count); static storage. */
const char *gw__monitor_source_name(const gw_monitor *m, size_t i);

/* Reads source i of m (opening it first when closed and its back-off has
 * expired) into part, which must be initialised and empty. ctx[0..n_ctx):
 * the devices earlier sources reported this round (invariant 1); only read.
 * The source's own failures are in part->sources[0], not in the return
 * value. Returns GW_OK, or GW_ENOMEM with part empty. Blocks as long as the
 * source does: call it where a hang is survivable (a worker thread). Does
 * not touch gw_monitor_busy_source's record. */
int gw__monitor_sample_source(gw_monitor *m, size_t i, const gw_device *ctx, size_t n_ctx,
                              gw__collect *part, gw_error *err);

/* Concatenates parts[0..n) into a new snapshot (one reference): devices in
 * part order, renumbered (invariant 3), processes re-pointed at them, one
 * status per part, the host figures of the last part that has them (the
 * hostname filled in when none did), taken_ns / duration_ns as given, seq 0
 * (the caller numbers its snapshots) and the CPU-only verdict and reason as
 * gw_monitor_sample gives them. Parts are only read. NULL when out of
 * memory. */
gw_snapshot *gw__snapshot_assemble(const gw__collect *const *parts, size_t n, int64_t taken_ns,
                                   int64_t duration_ns);

/* Reads the memory of snapshot device d afresh through its source's
 * read_memory op into out, under the monitor's sample lock. GW_ENOTSUP when
 * the source has no such op or is not open (the caller samples instead);
 * the op's errors otherwise. */
int gw__monitor_read_memory(gw_monitor *m, const gw_device *d, gw_sample *out, gw_error *err);

/* The memory process pid holds on snapshot device d, read now through its
 * source's read_process_memory op under the sample lock. GW_ENOTSUP when
 * the source has no such op or is not open; the op's errors otherwise. */
int gw__monitor_read_process_memory(gw_monitor *m, const gw_device *d, uint32_t pid,
                                    uint64_t *bytes, gw_error *err);

#endif
