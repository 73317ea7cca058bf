/* snapshot_build.h — the collector's layout and lifecycle, for the code that
 * builds snapshots (the monitor, the sampler's stale copies) and tests.
 * Backends use the functions in core/collect.h and never see inside.
 */
#ifndef GW_CORE_SNAPSHOT_BUILD_H
#define GW_CORE_SNAPSHOT_BUILD_H

#include "core/collect.h"

struct gw__collect {
    gw_device *devices;
    size_t n_devices, cap_devices;
    gw_process *processes;
    size_t n_processes, cap_processes;
    gw_source_status *sources;
    size_t n_sources, cap_sources;
    gw_host host;
};

/* Initialises an empty collector (no allocation). */
void gw__collect_init(gw__collect *c);
/* Frees whatever the collector holds and empties it. */
void gw__collect_release(gw__collect *c);
/* Appends a zeroed source status; NULL when out of memory. */
gw_source_status *gw__collect_add_source(gw__collect *c);
/* Moves the contents into a new snapshot with one reference (processes
 * sorted); the collector is left empty. NULL when out of memory, in which
 * case the collector is unchanged and still owns its contents. */
gw_snapshot *gw__collect_finish(gw__collect *c);

#endif
