/* ledger_mirror.c — the ledger's in-memory copy of its live rows
 * (ledger_mirror.h). */
#include "place/ledger_mirror.h"
#include "core/array.h"
#include "core/model.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

void gw__mirror_clear(gw__mirror *m)
{
    m->valid = false;
    m->n = m->n_dead = m->n_volatile = m->n_perm = 0;
}

void gw__mirror_release(gw__mirror *m)
{
    free(m->rows);
    free(m->perm);
    memset(m, 0, sizeof *m);
}

/* The permanent total of uuid, created (0 bytes) when absent; NULL when out
 * of memory. */
static gw__mirror_total *total_of(gw__mirror *m, const char *uuid)
{
    for (size_t i = 0; i < m->n_perm; i++)
        if (strcmp(m->perm[i].uuid, uuid) == 0)
            return &m->perm[i];
    if (GW__ARRAY_RESERVE(m->perm, m->cap_perm, m->n_perm + 1, GW__ARRAY_UNBOUNDED))
        return NULL;
    gw__mirror_total *t = &m->perm[m->n_perm++];
    gw__strlcpy(t->uuid, uuid, sizeof t->uuid);
    t->bytes = 0;
    return t;
}

/* Adds (sign +1) or takes away (-1) a live row from the aggregates. */
static int account(gw__mirror *m, const gw__mirror_row *r, int sign)
{
    if (gw__mirror_row_volatile(r)) {
        m->n_volatile += sign > 0 ? 1 : (size_t)-1;
        return GW_OK;
    }
    gw__mirror_total *t = total_of(m, r->uuid);
    if (!t)
        return GW_ENOMEM;
    t->bytes = sign > 0 ? t->bytes + r->bytes : t->bytes - r->bytes;
    return GW_OK;
}

int gw__mirror_add(gw__mirror *m, const gw__mirror_row *r)
{
    if (GW__ARRAY_RESERVE(m->rows, m->cap, m->n + 1, GW__ARRAY_UNBOUNDED) ||
        account(m, r, +1) != GW_OK) {
        gw__mirror_clear(m);
        return GW_ENOMEM;
    }
    m->rows[m->n] = *r;
    m->rows[m->n++].dead = false;
    return GW_OK;
}

/* The first row of id (rows are in id order), or m->n. */
static size_t first_of(const gw__mirror *m, int64_t id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->rows[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Drops the dead rows once they are more than half. */
static void compact(gw__mirror *m)
{
    if (m->n_dead * 2 <= m->n)
        return;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!m->rows[i].dead)
            m->rows[k++] = m->rows[i];
    m->n = k;
    m->n_dead = 0;
}

void gw__mirror_remove(gw__mirror *m, int64_t id)
{
    for (size_t i = first_of(m, id); i < m->n && m->rows[i].id == id; i++) {
        if (m->rows[i].dead)
            continue;
        account(m, &m->rows[i], -1); /* the total exists: no allocation */
        m->rows[i].dead = true;
        m->n_dead++;
    }
    compact(m);
}

/* Applies a change of pid / expiry to the rows of id, moving them between
 * the permanent totals and the volatile count as they change kind. */
static void change(gw__mirror *m, int64_t id, bool owner, uint32_t pid, int64_t a)
{
    for (size_t i = first_of(m, id); i < m->n && m->rows[i].id == id; i++) {
        gw__mirror_row *r = &m->rows[i];
        if (r->dead)
            continue;
        account(m, r, -1);
        if (owner) {
            r->pid = pid;
            r->pid_start = a;
        } else {
            r->expires_ns = a;
        }
        if (account(m, r, +1) != GW_OK)
            gw__mirror_clear(m); /* out of memory: the caller reloads */
    }
}

void gw__mirror_set_expiry(gw__mirror *m, int64_t id, int64_t expires_ns)
{
    change(m, id, false, 0, expires_ns);
}

void gw__mirror_set_owner(gw__mirror *m, int64_t id, uint32_t pid, int64_t pid_start)
{
    change(m, id, true, pid, pid_start);
}

bool gw__mirror_check(const gw__mirror *m)
{
    size_t dead = 0, vol = 0;
    for (size_t i = 0; i < m->n; i++) {
        const gw__mirror_row *r = &m->rows[i];
        if (i && r->id < m->rows[i - 1].id)
            return false;
        dead += r->dead;
        vol += !r->dead && gw__mirror_row_volatile(r);
    }
    if (dead != m->n_dead || vol != m->n_volatile)
        return false;
    for (size_t k = 0; k < m->n_perm; k++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < m->n; i++) {
            const gw__mirror_row *r = &m->rows[i];
            if (!r->dead && !gw__mirror_row_volatile(r) && strcmp(r->uuid, m->perm[k].uuid) == 0)
                sum += r->bytes;
        }
        if (sum != m->perm[k].bytes)
            return false;
    }
    return true;
}
