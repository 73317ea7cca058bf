/* backend.h — the ops table every vendor source implements, and the collector
 * a source writes one sample into.
 *
 * Owns: the contract between the monitor (src/core/monitor.c) and a backend.
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
 *
 * Invariants: a backend never calls exit(), never prints, and reads the
 * machine only below cfg->proc_root / cfg->sys_root or through the library
 * path it was given, so tests can point it at fixtures.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include "gpuwatch.h"

#include <stddef.h>

/* The monitor's resolved configuration: every string non-NULL. */
typedef struct gw__config {
    char nvml_library[512];
    char proc_root[512];
    char sys_root[512];
    unsigned call_timeout_ms;
    bool processes;
} gw__config;

/* Where a backend writes one sample. Opaque outside snapshot.c. */
typedef struct gw__collect gw__collect;

/* Appends a zeroed device (state ok) and returns it, or NULL when out of
 * memory. The pointer is valid until the next add_device call. The device's
 * info.index is set by the monitor; backends fill everything else. */
gw_device *gw__collect_add_device(gw__collect *c);

/* Number of devices appended so far (by every backend): a backend records it
 * before appending its first device to know its devices' snapshot indexes. */
size_t gw__collect_device_count(const gw__collect *c);

/* The device at snapshot index i (i < device_count), for processes' lookup. */
gw_device *gw__collect_device(gw__collect *c, size_t i);

/* Appends a zeroed process and returns it, or NULL when out of memory. The
 * pointer is valid until the next add_process call. */
gw_process *gw__collect_add_process(gw__collect *c);

/* True when a device already in the collector has the same PCI address as
 * bus_id (compared after gw__pci_bus_id_normalize). Fallback sources call it
 * to skip devices a direct source already reports. */
bool gw__collect_has_pci_bus_id(const gw__collect *c, const char *bus_id);

/* Writes bus_id in one canonical form, "dddd:bb:dd.f" lowercase with a
 * 4-digit domain, into out[cap] (NVML's "00000000:01:00.0" and sysfs's
 * "0000:01:00.0" become equal). Returns false (out empty) when bus_id is not
 * a PCI address. */
bool gw__pci_bus_id_normalize(const char *bus_id, char *out, size_t cap);

/* Host figures (the host backend fills them). */
gw_host *gw__collect_host(gw__collect *c);

typedef struct gw__backend_ops {
    const char *name;    /* "nvml": used in JSON, flags and messages */
    gw_vendor vendor;    /* vendor it serves; UNKNOWN for host */
    int (*open)(void **state, const gw__config *cfg, gw_error *err);
    int (*sample)(void *state, gw__collect *c, gw_error *err);
    void (*status)(void *state, gw_source_status *st);
    void (*close)(void *state);
} gw__backend_ops;

/* The built-in backends in the order the monitor runs them (direct sources
 * first, fallbacks after); NULL-terminated. Defined in registry.c. */
extern const gw__backend_ops *const gw__backends[];

#endif
