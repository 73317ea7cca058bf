/* procinfo.h — PID -> name, user and command line through /proc, cached.
 *
 * Owns: a per-backend cache keyed by pid and validated by the process start
 * time (field 22 of /proc/PID/stat), so a recycled pid is never given the
 * old process's name. Entries not used for two rounds are evicted.
 * Reads only below the proc root it was opened with (a test seam).
 */
#ifndef GW_BACKENDS_PROCINFO_H
#define GW_BACKENDS_PROCINFO_H

#include "gpuwatch.h"

typedef struct gw__procinfo gw__procinfo;

/* Opens a cache reading below proc_root (copied). Returns GW_OK or GW_ENOMEM
 * (then *out is NULL). Caller closes with gw__procinfo_close. */
int gw__procinfo_open(gw__procinfo **out, const char *proc_root);

/* Starts a sampling round: entries unused in the previous two rounds go. */
void gw__procinfo_begin_round(gw__procinfo *pc);

/* Fills p->name, p->user, p->cmdline (and their valid bits) for p->pid.
 * A process that is gone or unreadable leaves those fields unset; never
 * fails otherwise. */
void gw__procinfo_fill(gw__procinfo *pc, gw_process *p);

/* Frees the cache. NULL is a no-op. */
void gw__procinfo_close(gw__procinfo *pc);

#endif
