/* ledger.h — the reservations ledger: who holds how many bytes on which
 * device, kept in SQLite (WAL) so that concurrent planners never hand the
 * same free memory out twice and a crash loses nothing acknowledged.
 *
 * What it owns: the ledger file's schema, the atomic "plan and reserve"
 * transaction, release / renew / list, and the rules that decide which
 * reservations are alive and how much of them planning must still subtract.
 *
 * Invariants:
 *  1. A reservation is a row in `reservations` plus one row per device in
 *     `reservation_devices` (bytes > 0), written in ONE transaction. A
 *     reservation is acknowledged (gw_ledger_reserve returns GW_OK) only
 *     after that transaction committed, so a crash at any point leaves
 *     either no trace or the whole reservation.
 *  2. Plan-and-reserve runs under BEGIN IMMEDIATE (SQLite's single writer
 *     lock): the reservations it subtracts are exactly those committed
 *     before it, so the sum of reservations on a device never exceeds what
 *     planning called usable (free - margin), whatever the number of
 *     processes sharing the file.
 *  3. A reservation is alive while (a) its lease has not expired (expires_ns
 *     0 = no lease) and (b) its owner pid, when it has one, still runs:
 *     <proc_root>/<pid>/stat exists, is not a zombie, and its start time
 *     (field 22) equals the one recorded when the pid was set, so a recycled
 *     pid does not keep a dead owner's memory. Dead reservations are ignored
 *     by every reader and deleted by the next writer (auto-release).
 *  4. "Visible as used": the memory a live reservation still takes from
 *     planning on device d is max(0, bytes - what its owner pid is seen
 *     using on d in the snapshot's process list). Once the owner has
 *     allocated, the driver's own free figure already shows it; counting it
 *     again would double-book. A pid using less than reserved keeps the rest
 *     held. (Limit: a process in another pid namespace is not recognised, so
 *     its reservation stays fully counted until released: safe, not tight.)
 *  5. An idempotency key names at most one live reservation: reserving again
 *     with the key of a live reservation returns that reservation unchanged
 *     (`existed` true) instead of booking twice.
 * Bad input (unknown id, empty plan) changes nothing and names the problem.
 *
 * Thread-safety: one gw_ledger per thread; any number of handles and
 * processes may share one file.
 */
#ifndef GW_PLACE_LEDGER_H
#define GW_PLACE_LEDGER_H

#include "place/plan.h"

typedef struct gw_ledger gw_ledger;

typedef struct gw_ledger_opts {
    const char *path;      /* the SQLite file; required */
    const char *proc_root; /* owner liveness: NULL -> $GPUWATCH_PROC_ROOT, else /proc */
    int64_t (*now_ns)(void *clock_ctx); /* CLOCK_REALTIME when NULL (test seam) */
    void *clock_ctx;
    bool read_only;        /* never create or write; a missing file is an empty ledger */
    bool sync_full;        /* PRAGMA synchronous=FULL: fsync per commit (power-loss safe);
                              also on with env GPUWATCH_LEDGER_SYNC=full. Default NORMAL:
                              a commit survives any process crash (SIGKILL included) but
                              the last commits may be lost on power loss / kernel crash */
    unsigned busy_timeout_ms; /* wait for the writer lock; 0: 10000 */
} gw_ledger_opts;

/* Fills defaults: no path (required), /proc, the real clock, read-write,
 * synchronous=NORMAL, 10 s busy timeout. */
void gw_ledger_opts_init(gw_ledger_opts *o);

/* The default ledger path into buf[cap]: $GPUWATCH_LEDGER, else
 * /var/lib/gpuwatch/ledger.db for root, else $XDG_STATE_HOME/gpuwatch/ledger.db,
 * else $HOME/.local/state/gpuwatch/ledger.db. Returns buf, or NULL when no
 * home is known. */
const char *gw_ledger_default_path(char *buf, size_t cap);

/* Opens (creating the file, its folder and the schema unless read_only).
 * Errors: GW_EIO (cannot open/create, not a ledger), GW_EINVAL (no path),
 * GW_ENOMEM. Caller closes *out with gw_ledger_close. */
int gw_ledger_open(gw_ledger **out, const gw_ledger_opts *o, gw_error *err);
/* Closes the file and frees the handle (nothing is written). NULL is a no-op. */
void gw_ledger_close(gw_ledger *l);

/* A process seen using device memory (from the snapshot). */
typedef struct gw_place_seen {
    uint32_t pid;
    uint32_t device; /* position in the device array */
    uint64_t bytes;
} gw_place_seen;

/* Fills out[] (caller allocates snap->n_processes entries) with processes
 * whose GPU memory is known; returns how many. Device positions are the
 * snapshot indexes (gw_place_devices_from_snapshot's order). */
size_t gw_place_seen_from_snapshot(const gw_snapshot *snap, gw_place_seen *out);

/* Sets devs[i].pending to the live reservations' bytes not yet visible as
 * used (invariant 4). Reads only. */
int gw_ledger_apply_pending(gw_ledger *l, gw_place_device *devs, size_t n,
                            const gw_place_seen *seen, size_t n_seen, gw_error *err);

typedef struct gw_reserve_req {
    const char *key;   /* idempotency key, NULL for none */
    const char *owner; /* a name, NULL for none */
    uint32_t pid;      /* owner pid, 0 for none (then only the lease ends it) */
    int64_t lease_ns;  /* 0: no expiry */
    const char *note;  /* free text (the command line), may be NULL */
} gw_reserve_req;

typedef struct gw_reservation_dev {
    char uuid[96];
    uint64_t bytes;
} gw_reservation_dev;

typedef struct gw_reservation {
    int64_t id;
    char key[128];
    char owner[64];
    uint32_t pid;
    int64_t pid_start; /* clock ticks since boot, 0 when unknown */
    int64_t created_ns, expires_ns, lease_ns;
    char note[256];
    size_t n_devices;
    gw_reservation_dev *devices; /* heap; in plan order */
    char *plan_json;             /* heap; the plan as JSON when reserved */
} gw_reservation;

/* Frees what a reservation holds (not the struct). */
void gw_reservation_clear(gw_reservation *r);
/* Frees an array returned by gw_ledger_list. */
void gw_reservations_free(gw_reservation *v, size_t n);

/* Plans and reserves atomically (invariants 1, 2, 5): releases dead
 * reservations, computes devs[].pending, plans into *plan, and when it fits
 * inserts the reservation and commits. devs[].pending is overwritten.
 * Returns GW_OK with plan->fits false (and nothing reserved) when it does not
 * fit. On GW_OK with a fit, *out holds the reservation (caller clears it);
 * *existed says it was an earlier one with the same key (then the plan is
 * not recomputed: plan->fits is true, out->plan_json has the original).
 * Errors (nothing changed): GW_EINVAL from the planner, GW_EIO from SQLite
 * (GW_ETIMEDOUT when the writer lock stayed busy past the timeout). */
int gw_ledger_reserve(gw_ledger *l, gw_place_device *devs, size_t n,
                      const gw_place_seen *seen, size_t n_seen, const gw_place_need *need,
                      const gw_place_opts *opts, const gw_reserve_req *req, gw_plan *plan,
                      gw_reservation *out, bool *existed, gw_error *err);

/* Deletes reservation id. GW_ENOENT when no such reservation. */
int gw_ledger_release(gw_ledger *l, int64_t id, gw_error *err);

/* Sets a new lease (from now; 0 = no expiry). GW_ENOENT when unknown. */
int gw_ledger_renew(gw_ledger *l, int64_t id, int64_t lease_ns, gw_error *err);

/* Hands the reservation to another owner pid (gpuwatch run gives it to the
 * child it started); records that pid's start time. GW_ENOENT when unknown. */
int gw_ledger_set_pid(gw_ledger *l, int64_t id, uint32_t pid, gw_error *err);

/* Deletes dead reservations now; *released (may be NULL) gets how many. */
int gw_ledger_reap(gw_ledger *l, size_t *released, gw_error *err);

/* Live reservations, oldest first. *out is a heap array (gw_reservations_free). */
int gw_ledger_list(gw_ledger *l, gw_reservation **out, size_t *n, gw_error *err);

/* One reservation, alive or not yet reaped. GW_ENOENT when unknown. */
int gw_ledger_get(gw_ledger *l, int64_t id, gw_reservation *out, gw_error *err);

/* Consistency check for tests and `doctor`: SQLite's integrity check, no
 * device row without its reservation, no reservation without devices, all
 * bytes > 0. Returns GW_OK, or GW_EIO with err naming the first problem. */
int gw_ledger_check(gw_ledger *l, gw_error *err);

/* Whether pid is alive under proc_root, and its start time (test helper and
 * the rule of invariant 3). */
bool gw__ledger_pid_alive(const char *proc_root, uint32_t pid, int64_t *start);

#endif
