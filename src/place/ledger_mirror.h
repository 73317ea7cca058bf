/* ledger_mirror.h — the ledger's in-memory copy of its live reservation
 * rows (gw__ tier, ledger.c's only).
 *
 * Owns: the rows (one per reservation and device, in id order), the bytes
 * per device of the permanent ones (no owner pid, no lease: nothing can
 * end them but a release), and the count of the others. With it a plan
 * reads the permanent reservations as a few totals instead of every row,
 * which is what keeps reservations fast when thousands are live.
 *
 * Invariants (gw__mirror_check):
 *  1. rows are in non-decreasing id order; the rows of one id are adjacent.
 *  2. perm[k].bytes is the sum of bytes of the rows not dead, not volatile
 *     (gw__mirror_row_volatile) with that uuid; n_volatile counts the rows
 *     not dead and volatile; n_dead the dead ones, which are dropped when
 *     they are more than half.
 * Whether the copy is current is the caller's business (valid, version:
 * ledger.c compares SQLite's data_version).
 */
#ifndef GW_PLACE_LEDGER_MIRROR_H
#define GW_PLACE_LEDGER_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw__mirror_row {
    int64_t id;
    int64_t pid_start, expires_ns; /* expires 0: no lease */
    uint64_t bytes;
    uint32_t pid;                  /* 0: no owner process */
    bool dead;                     /* removed; dropped at the next compaction */
    char uuid[96];
} gw__mirror_row;

typedef struct gw__mirror_total {
    char uuid[96];
    uint64_t bytes;
} gw__mirror_total;

typedef struct gw__mirror {
    bool valid;      /* the caller's: the rows are the database's */
    int64_t version; /* the caller's: data_version they were read at */
    gw__mirror_row *rows;
    size_t n, cap, n_dead, n_volatile;
    gw__mirror_total *perm;
    size_t n_perm, cap_perm;
} gw__mirror;

/* A row that can end without a release: an owner process or a lease. */
static inline bool gw__mirror_row_volatile(const gw__mirror_row *r)
{
    return r->pid != 0 || r->expires_ns != 0;
}

/* Empties m and marks it invalid (keeps its memory). */
void gw__mirror_clear(gw__mirror *m);

/* Frees m's memory; m is then empty and invalid. */
void gw__mirror_release(gw__mirror *m);

/* Appends r (its id at least the last one's). GW_ENOMEM leaves m invalid. */
int gw__mirror_add(gw__mirror *m, const gw__mirror_row *r);

/* Marks the rows of id dead (none: nothing happens). */
void gw__mirror_remove(gw__mirror *m, int64_t id);

/* Sets the lease expiry / the owner of the rows of id. */
void gw__mirror_set_expiry(gw__mirror *m, int64_t id, int64_t expires_ns);
void gw__mirror_set_owner(gw__mirror *m, int64_t id, uint32_t pid, int64_t pid_start);

/* Invariants 1-2; O(rows x devices). */
bool gw__mirror_check(const gw__mirror *m);

#endif
