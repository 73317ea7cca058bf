/* drm_clients.h — which processes the kernel lists as DRM clients, read from
 * debugfs (<debugfs>/dri/<dir>/clients) (gw__ tier).
 *
 * What it owns: a set of pids (the "tgid" column of every client list) and
 * the buffer the lists are read into. The fdinfo sweep uses the set to list
 * at once only the fd folders of processes that hold a DRM file, instead of
 * every process's (see fdinfo.h); it is a hint, never the only source.
 *
 * The file (drivers/gpu/drm/drm_debugfs.c) is a header line and one line per
 * open DRM file of the device:
 *        command   tgid dev master a   uid      magic     name     id
 *            Xorg   1370   0   y    y     0          0  <unset>     3
 * Newer kernels add the "name"/"id" columns. The command (the task's comm,
 * which may contain spaces, or be empty and leave its column out) is the
 * only free-text column and comes first, so the tgid is found at its header
 * position counted from the end of the line.
 *
 * The set is used only when it is complete, since a process it leaves out
 * is listed up to rescan_max later. So these make it unusable: a list whose
 * header names the column "pid" instead of "tgid" (older kernels, which may
 * record the opening thread, not its process), a client line whose tgid
 * cannot be read or is 0 (a process outside our pid namespace), a list that
 * cannot be read, and a dri folder that cannot be listed to its end.
 *
 * Layout under <debugfs>/dri: kernels before 6.8 have one folder per minor
 * ("0", "128", both listing the device's clients); later ones one folder per
 * device named by its PCI address, with the minor numbers as symbolic links
 * to it (skipped, so a list is read once) and "client-N" folders (skipped).
 * debugfs is root-only: without it the set is simply not there.
 *
 * Invariants: after gw__drm_clients_read returns GW_OK, pids[0..n) is sorted
 * and without duplicates.
 */
#ifndef GW_BACKENDS_DRM_CLIENTS_H
#define GW_BACKENDS_DRM_CLIENTS_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw__drm_clients {
    uint32_t *pids; /* owned */
    size_t n, cap;
    unsigned lists;  /* client lists read by the last gw__drm_clients_read */
    char *buf;       /* owned read buffer */
    size_t buf_cap;
} gw__drm_clients;

/* Appends the tgid of every client line of one client list (text, len bytes,
 * need not be NUL-terminated) to dc->pids, unsorted; blank lines are
 * skipped. Returns GW_OK; GW_EPARSE when the first line is not a client
 * list header with a "tgid" column (nothing is appended then); GW_ERANGE
 * when a client line has no readable non-zero tgid, or the set is full
 * (the list is incomplete); GW_ENOMEM. What was appended before an error
 * stays. */
int gw__drm_clients_parse(gw__drm_clients *dc, const char *text, size_t len);

/* Replaces dc's set with the clients of every list under
 * <debugfs_root>/dri. *syscalls (may be NULL) is increased by the system
 * calls made. Returns GW_OK when every list was read whole and at least one
 * was there (the set may be empty: no process holds a DRM file); GW_ENOENT
 * when the set is not complete: no dri folder, not root, no list, or any of
 * the reasons above; GW_ENOMEM. On an error the set is empty. */
int gw__drm_clients_read(gw__drm_clients *dc, const char *debugfs_root, uint64_t *syscalls);

/* Whether pid is in the set read last. */
bool gw__drm_clients_has(const gw__drm_clients *dc, uint32_t pid);

/* Frees what dc owns and empties it; dc itself is the caller's. */
void gw__drm_clients_release(gw__drm_clients *dc);

#endif
