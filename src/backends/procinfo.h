/* procinfo.h — PID -> name, user, command line, resident memory and CPU %
 * through /proc, cached.
 *
 * Owns: a per-backend cache keyed by pid and validated by the process start
 * time (field 22 of /proc/PID/stat), so a recycled pid is never given the
 * old process's name. Entries not used for two rounds are evicted. On
 * procfs, host figures come from descriptors held open (no path walk, and
 * bound to that process): /proc/PID/schedstat's CPU time every round (its
 * delta against the previous round is the CPU %), statm's resident set
 * every 4th; a cache without host figures holds a pidfd instead and reads
 * nothing per round at all. Name, user and command line are read once per process.
 * Reads only below the proc root it was opened with (a test seam;
 * descriptors are held only when that root is procfs).
 */
#ifndef GW_BACKENDS_PROCINFO_H
#define GW_BACKENDS_PROCINFO_H

#include "core/model.h"

typedef struct gw__procinfo gw__procinfo;

/* What a cache reads (gw__procinfo_open's what, OR-ed). */
enum {
    GW__PROCINFO_IDENTITY = 1u, /* name, user, command line, owner: once per process */
    GW__PROCINFO_HOST = 2u,     /* resident memory, CPU %: a stat read per round */
};

struct gw__config;

/* The what of a backend's cache under cfg: identity, and host figures
 * unless cfg->process_host_stats is off. */
unsigned gw__procinfo_what(const struct gw__config *cfg);

/* Opens a cache reading what (GW__PROCINFO_*) below proc_root (copied);
 * pods_dir (copied; NULL: none) is the kubelet's pod log folder that names
 * a pod owner (cgroup.h). Returns GW_OK or GW_ENOMEM (then *out is NULL).
 * Caller closes with gw__procinfo_close. */
int gw__procinfo_open(gw__procinfo **out, const char *proc_root, unsigned what,
                      const char *pods_dir);

/* Grows the process's descriptor table to what caches may hold (a few
 * hundred), so that holding them later costs no RCU grace period per
 * doubling. Call while single-threaded (gw_monitor_open does); caches
 * opened later call it too (then it may wait once). */
void gw__procinfo_reserve_fds(void);

/* Starts a sampling round: entries unused in the previous two rounds go
 * (and their descriptors are closed). Call once per sample, before its
 * fills: a pid's figures are read at most once per round. */
void gw__procinfo_begin_round(gw__procinfo *pc);

/* Fills, for p->pid and as the cache's what says, p->name, p->user,
 * p->cmdline, p->owner (IDENTITY), p->host_memory and, from the second round a
 * process is seen in, p->cpu_util (HOST), with their valid bits. A process
 * that is gone or unreadable leaves those fields unset; never fails
 * otherwise. An identity-only cache on /proc reads nothing for a process it
 * knows while that process runs (a pidfd tells when it exits). */
void gw__procinfo_fill(gw__procinfo *pc, gw_process *p);

/* True when pc's invariants hold (procinfo.c: table load, held
 * descriptors counted and within the budget, only on procfs). */
bool gw__procinfo_check(const gw__procinfo *pc);

/* Frees the cache and closes its descriptors. NULL is a no-op. */
void gw__procinfo_close(gw__procinfo *pc);

#endif
