/* array.c — overflow-checked array growth (see array.h).
 *
 * Owns: the capacity arithmetic and the realloc behind gw__array_reserve and
 * gw__array_reserve_exact. Both end in resize(), the only place that
 * multiplies a count by an element size, so the overflow check is in one
 * spot.
 *
 * Why memcpy for *items: callers pass &p for some T *p, cast to void **.
 * Reading or writing p through a void * lvalue would break the aliasing
 * rules (T * and void * are different types); memcpy of the pointer's bytes
 * is always allowed, and every object pointer has the same representation
 * on the platforms gpuwatch runs on (POSIX requires it for dlsym anyway).
 */
#include "core/array.h"

#include "core/model.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

bool gw__array_check(const void *items, size_t cap, size_t elem_size)
{
    if (elem_size == 0)
        return false;
    if (cap > 0 && !items)
        return false; /* invariant 1 */
    return cap <= (size_t)PTRDIFF_MAX / elem_size; /* invariant 2 */
}

/* The largest element count of elem_size bytes allowed by invariant 2. */
static size_t count_limit(size_t elem_size) { return (size_t)PTRDIFF_MAX / elem_size; }

/* The caller's array pointer (see the file comment for the memcpy). */
static void *load(void *const *itemsp)
{
    void *p;
    memcpy(&p, itemsp, sizeof p);
    return p;
}

/* Reallocs *itemsp to ncap elements (ncap <= count_limit: checked by the
 * callers); on failure nothing changes. */
static int resize(void **itemsp, size_t *cap, size_t ncap, size_t elem_size)
{
    assert(ncap > *cap && ncap <= count_limit(elem_size));
    void *p = realloc(load(itemsp), ncap * elem_size);
    if (!p)
        return GW_ENOMEM;
    memcpy(itemsp, &p, sizeof p);
    *cap = ncap;
    return GW_OK;
}

int gw__array_reserve_exact(void **items, size_t *cap, size_t need, size_t elem_size)
{
    if (elem_size == 0)
        return GW_EINVAL;
    assert(gw__array_check(load(items), *cap, elem_size));
    if (need <= *cap)
        return GW_OK;
    if (need > count_limit(elem_size))
        return GW_ERANGE;
    return resize(items, cap, need, elem_size);
}

int gw__array_reserve(void **items, size_t *cap, size_t need, size_t elem_size, size_t max)
{
    if (elem_size == 0)
        return GW_EINVAL;
    assert(gw__array_check(load(items), *cap, elem_size));
    if (need <= *cap)
        return GW_OK;
    size_t limit = count_limit(elem_size);
    if (need > max || need > limit)
        return GW_ERANGE;
    if (max > limit)
        max = limit;
    /* need <= max <= limit from here: every candidate below is clamped to max */
    size_t ncap = *cap == 0 ? GW__ARRAY_FIRST_CAP : *cap > max / 2 ? max : *cap * 2;
    if (ncap > max)
        ncap = max;
    if (ncap < need)
        ncap = need;
    return resize(items, cap, ncap, elem_size);
}
