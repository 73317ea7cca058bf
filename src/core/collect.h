/* collect.h — the collector a backend writes one sample into (gw__ tier).
 *
 * Owns: the backends' side of the collector: appending devices and
 * processes, the host figures, and PCI bus id normalisation for fallback
 * sources' deduplication. Implemented in core/snapshot.c, which turns a
 * filled collector into a snapshot; declared here, in core, so that core
 * never includes a backend header (backends/backend.h includes this one).
 *
 * Ownership: everything appended belongs to the collector; the pointers
 * returned are borrowed, valid until the next append of the same kind.
 */
#ifndef GW_CORE_COLLECT_H
#define GW_CORE_COLLECT_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>

/* Where a backend writes one sample. Opaque outside snapshot.c (the monitor
 * and tests see its layout through core/snapshot_build.h). */
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

#endif
