/* backend.h — the ops table every vendor source implements.
 *
 * Owns: the contract between the monitor (backends/monitor.c) and a backend,
 * and the monitor's resolved configuration. A source writes one sample into
 * the collector of core/collect.h (included here). Which backends exist and
 * in which order: registry.c; the map of every module: docs/ARCHITECTURE.md.
 *
 * Lifecycle of a backend, driven only by the monitor:
 *   open  -> GW_OK: the source is present; state is the backend's own.
 *            any error: the source is unavailable (GW_ENODEV, GW_ELOAD,
 *            GW_EDRIVER, ...) with err->message naming the reason in one line
 *            that starts with the source's display name ("NVML: driver not
 *            loaded"). The monitor retries open later with back-off; a
 *            backend must not keep retrying inside open.
 *   sample -> appends its devices, then its processes, to the collector.
 *            Returns GW_OK, or an error that marks the whole source failed for
 *            this round (devices it already appended stay, with their state).
 *            A single bad device is NOT a source error: set that device's
 *            state (lost/error) and reason, and go on with the others.
 *   status -> fills versions, notes and the call count for the last sample.
 *   close  -> frees everything; state is not used again.
 *   read_memory (optional) -> one device's memory now (gw_mem_get_info's
 *            fresh read), never a whole sample.
 *
 * Invariants: a backend never calls exit(), never prints, and reads the
 * machine only below cfg->proc_root / cfg->sys_root, through the library
 * path it was given, or through programs found on PATH (the CLI fallbacks),
 * so tests can point it at fixtures.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include "core/collect.h"
#include "core/model.h"

#include <stddef.h>

/* The monitor's resolved configuration: every string non-NULL. */
typedef struct gw__config {
    char nvml_library[512];
    char proc_root[512];
    char sys_root[512];
    char pods_dir[512];
    unsigned call_timeout_ms;
    bool processes;
    bool process_host_stats;
} gw__config;

typedef struct gw__backend_ops {
    const char *name;    /* "nvml": used in JSON, flags and messages */
    gw_vendor vendor;    /* vendor it serves; UNKNOWN for host */
    int (*open)(void **state, const gw__config *cfg, gw_error *err);
    int (*sample)(void *state, gw__collect *c, gw_error *err);
    void (*status)(void *state, gw_source_status *st);
    void (*close)(void *state);
    /* Optional (NULL: the source has no single-device read). Reads the
     * memory of the device the source numbers source_index into out (mem_*
     * fields and their valid bits) with as few calls as the source allows,
     * between two samples, on the sampling thread's lock. GW_ENODEV: no such
     * device; GW_ELOST: it answered lost. */
    int (*read_memory)(void *state, uint32_t source_index, gw_sample *out, gw_error *err);
    /* Optional. The device memory process pid holds on the device the
     * source numbers source_index, read now: GW_OK; GW_ENOENT when pid is
     * not listed there; GW_ENOTSUP when the source gives no per-process
     * figure for it. Same calling rules as read_memory. */
    int (*read_process_memory)(void *state, uint32_t source_index, uint32_t pid, uint64_t *bytes,
                               gw_error *err);
} gw__backend_ops;

/* The built-in backends in the order the monitor runs them (direct sources
 * first, fallbacks after); NULL-terminated. Defined in registry.c. */
extern const gw__backend_ops *const gw__backends[];

#endif
