/* array.h — growing a heap array, with every size overflow-checked (gw__ tier).
 *
 * Owns: the one way gpuwatch grows an array of fixed-size elements: the
 * capacity arithmetic (doubling, a caller's maximum, count * size without
 * overflow) and the realloc. The array itself (pointer, count, capacity)
 * stays in the caller's struct; nothing here keeps state.
 *
 * Invariants of an array (items, cap) these functions accept and keep:
 *  1. cap is the number of elements items has room for; cap > 0 implies
 *     items != NULL (cap == 0 with items != NULL is allowed: a caller may
 *     zero cap before reusing storage, and the next growth reallocs it).
 *  2. cap * elem_size never exceeds PTRDIFF_MAX, so any pointer difference
 *     or byte count inside the array is representable.
 *  3. Growth never shrinks: after GW_OK, *cap >= need and *cap >= the old
 *     *cap, and the first old-*cap elements are preserved (realloc).
 *
 * Errors: on any error *items and *cap are left exactly as they were (the
 * old storage still belongs to the caller, who frees it as usual):
 *   GW_ERANGE  need > max, or need * elem_size past PTRDIFF_MAX (the
 *              multiplication is checked: SIZE_MAX / elem_size + 1 fails
 *              here, never wraps to a small allocation);
 *   GW_ENOMEM  realloc failed;
 *   GW_EINVAL  elem_size == 0.
 * need <= *cap is GW_OK and touches nothing (need == 0 included).
 *
 * Worked example, appending one element to a struct's array:
 *
 *     if (GW__ARRAY_RESERVE(v->items, v->cap, v->n + 1, GW__ARRAY_UNBOUNDED))
 *         return GW_ENOMEM;          // v unchanged
 *     v->items[v->n++] = x;
 *
 * Ownership: items is the caller's, allocated with malloc/realloc (or NULL),
 * freed by the caller with free(); these functions only realloc it.
 */
#ifndef GW_CORE_ARRAY_H
#define GW_CORE_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No maximum beyond invariant 2. */
#define GW__ARRAY_UNBOUNDED SIZE_MAX
/* The capacity of an array's first allocation, unless need asks for more. */
#define GW__ARRAY_FIRST_CAP 8

/* Makes room for at least need elements of elem_size bytes, for arrays
 * appended to one element (or a batch) at a time: the capacity doubles
 * (GW__ARRAY_FIRST_CAP the first time), or grows to need when that is
 * more, and never past max elements nor PTRDIFF_MAX bytes (doubling is
 * clamped there, so it cannot overflow). *items is a pointer to
 * the caller's array pointer (any object type: it is read and written with
 * memcpy, never through a void * lvalue). Errors: see the header comment. */
int gw__array_reserve(void **items, size_t *cap, size_t need, size_t elem_size, size_t max);

/* Like gw__array_reserve, but grows to exactly need elements: for a buffer
 * whose capacity is handed to someone else as a count (NVML's "room for N
 * entries" arguments), where a larger capacity would change what they do. */
int gw__array_reserve_exact(void **items, size_t *cap, size_t need, size_t elem_size);

/* Invariants 1 and 2 for an array of cap elements of elem_size bytes;
 * cheap: for assert(). */
bool gw__array_check(const void *items, size_t cap, size_t elem_size);

/* The typed forms: arr is the array pointer lvalue (T *), cap a size_t
 * lvalue; the element size comes from the pointer's type, and a cap that is
 * not a size_t does not compile. */
#define GW__ARRAY_RESERVE(arr, cap, need, max) \
    gw__array_reserve((void **)&(arr), &(cap), (need), sizeof *(arr), (max))
#define GW__ARRAY_RESERVE_EXACT(arr, cap, need) \
    gw__array_reserve_exact((void **)&(arr), &(cap), (need), sizeof *(arr))

#endif
