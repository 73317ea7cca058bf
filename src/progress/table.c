/* table.c — see progress.h. Owns the daemon's bounded in-memory set of
 * progress records: a plain array searched linearly (at most 4096 records
 * of a few hundred bytes; a report is one strcmp pass), grown through
 * core/array.h up to its maximum.
 *
 * Invariants (gw_progress_table_check):
 *  1. n <= cap, n <= max (max 0 counts as GW_PROGRESS_MAX_RECORDS).
 *  2. Every record is valid (gw_progress_check) and (job, gpu) pairs are
 *     unique.
 */
#include "progress/progress.h"
#include "core/array.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static size_t table_max(const gw_progress_table *t)
{
    return t->max ? t->max : GW_PROGRESS_MAX_RECORDS;
}

__attribute__((unused)) static bool table_check(const gw_progress_table *t)
{
    if (t->n > t->cap || t->n > table_max(t))
        return false;
    for (size_t i = 0; i < t->n; i++)
        if (!gw_progress_check(&t->items[i]))
            return false;
    return true;
}

static gw_progress *find(gw_progress_table *t, const char *job, const char *gpu)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].job, job) == 0 && strcmp(t->items[i].gpu, gpu) == 0)
            return &t->items[i];
    return NULL;
}

size_t gw_progress_table_expire(gw_progress_table *t, int64_t now_ns, int64_t ttl_ns)
{
    size_t k = 0, gone = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (gw_progress_expired(&t->items[i], now_ns, ttl_ns)) {
            gone++;
            continue;
        }
        if (k != i)
            t->items[k] = t->items[i];
        k++;
    }
    t->n = k;
    return gone;
}

int gw_progress_table_put(gw_progress_table *t, const gw_progress *p, int64_t now_ns,
                          int64_t ttl_ns, gw_progress *stored, gw_error *err)
{
    int rc = gw_progress_validate(p, err);
    if (rc != GW_OK)
        return rc;
    gw_progress rec = *p;
    gw_progress *slot = find(t, p->job, p->gpu);
    if (slot) {
        gw_progress_stamp(&rec, gw_progress_expired(slot, now_ns, ttl_ns) ? NULL : slot, now_ns);
    } else {
        if (t->n >= table_max(t))
            gw_progress_table_expire(t, now_ns, ttl_ns);
        if (t->n >= table_max(t))
            return gw__error_set(err, GW_ERANGE,
                                 "progress table full: %zu jobs x GPUs reporting (the limit); "
                                 "records expire after %lld s without a report",
                                 table_max(t), (long long)(ttl_ns / 1000000000));
        if (gw__array_reserve((void **)&t->items, &t->cap, t->n + 1, sizeof *t->items,
                              table_max(t)) != GW_OK)
            return gw__error_set(err, GW_ENOMEM, "progress table: out of memory");
        gw_progress_stamp(&rec, NULL, now_ns);
        slot = &t->items[t->n++];
    }
    *slot = rec;
    if (stored)
        *stored = rec;
    assert(table_check(t));
    return GW_OK;
}

int gw_progress_table_list(const gw_progress_table *t, int64_t now_ns, int64_t ttl_ns,
                           gw_progress **out, size_t *n, gw_error *err)
{
    *out = NULL;
    *n = 0;
    size_t live = 0;
    for (size_t i = 0; i < t->n; i++)
        live += !gw_progress_expired(&t->items[i], now_ns, ttl_ns);
    if (!live)
        return GW_OK;
    gw_progress *v = malloc(live * sizeof *v);
    if (!v)
        return gw__error_set(err, GW_ENOMEM, "progress list: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!gw_progress_expired(&t->items[i], now_ns, ttl_ns))
            v[k++] = t->items[i];
    qsort(v, k, sizeof *v, gw_progress_cmp);
    *out = v;
    *n = k;
    return GW_OK;
}

void gw_progress_table_release(gw_progress_table *t)
{
    free(t->items);
    t->items = NULL;
    t->n = t->cap = 0;
}
