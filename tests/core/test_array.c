/* test_array.c — gw__array_reserve / _exact: growth policy, the maximum,
 * count * size overflow, zero, and realloc failure.
 *
 * The realloc seam is the linker, as in tests/gguf/test_gguf_nomem.c: this
 * test is linked with -Wl,--wrap=realloc, so array.c's realloc calls go
 * through __wrap_realloc below, which fails while `fail_realloc` is set and
 * counts every call, so a test can also check that a refused size never
 * reached the allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/array.h"
#include "core/model.h"

#include <stdlib.h>
#include <string.h>

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool fail_realloc;
static long realloc_calls;

void *__wrap_realloc(void *p, size_t n)
{
    realloc_calls++;
    return fail_realloc ? NULL : __real_realloc(p, n);
}

static void reset_seam(void)
{
    fail_realloc = false;
    realloc_calls = 0;
}

typedef struct big {
    char bytes[24];
} big;

static void appending_doubles_and_keeps_contents(void **state)
{
    (void)state;
    reset_seam();
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(GW__ARRAY_RESERVE(v, cap, n + 1, GW__ARRAY_UNBOUNDED), GW_OK);
        assert_true(cap >= n + 1);
        v[n++] = i;
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(v[i], i);
    /* 8, 16, ..., 1024: one realloc per doubling, not per element */
    assert_int_equal(cap, 1024);
    assert_int_equal(realloc_calls, 8);
    assert_true(gw__array_check(v, cap, sizeof *v));
    free(v);
}

static void first_capacity_and_batches(void **state)
{
    (void)state;
    reset_seam();
    big *v = NULL;
    size_t cap = 0;
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 1, GW__ARRAY_UNBOUNDED), GW_OK);
    assert_int_equal(cap, GW__ARRAY_FIRST_CAP);
    /* a batch larger than the doubling gets exactly what it needs */
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 100, GW__ARRAY_UNBOUNDED), GW_OK);
    assert_int_equal(cap, 100);
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 101, GW__ARRAY_UNBOUNDED), GW_OK);
    assert_int_equal(cap, 200);
    free(v);
}

static void zero_need_and_enough_room_touch_nothing(void **state)
{
    (void)state;
    reset_seam();
    int *v = NULL;
    size_t cap = 0;
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 0, GW__ARRAY_UNBOUNDED), GW_OK);
    assert_int_equal(GW__ARRAY_RESERVE_EXACT(v, cap, 0), GW_OK);
    assert_null(v);
    assert_int_equal(cap, 0);
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 0, 0), GW_OK); /* max 0, nothing asked */
    assert_int_equal(realloc_calls, 0);

    assert_int_equal(GW__ARRAY_RESERVE_EXACT(v, cap, 5), GW_OK);
    int *was = v;
    realloc_calls = 0;
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 5, 5), GW_OK);
    assert_int_equal(GW__ARRAY_RESERVE_EXACT(v, cap, 3), GW_OK); /* never shrinks */
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 5);
    assert_int_equal(realloc_calls, 0);
    free(v);
}

static void zero_element_size_is_refused(void **state)
{
    (void)state;
    reset_seam();
    void *v = NULL;
    size_t cap = 0;
    assert_int_equal(gw__array_reserve(&v, &cap, 1, 0, GW__ARRAY_UNBOUNDED), GW_EINVAL);
    assert_int_equal(gw__array_reserve_exact(&v, &cap, 1, 0), GW_EINVAL);
    assert_null(v);
    assert_int_equal(cap, 0);
    assert_int_equal(realloc_calls, 0);
    assert_false(gw__array_check(NULL, 0, 0));
}

static void exact_grows_to_need(void **state)
{
    (void)state;
    reset_seam();
    big *v = NULL;
    size_t cap = 0;
    assert_int_equal(GW__ARRAY_RESERVE_EXACT(v, cap, 3), GW_OK);
    assert_int_equal(cap, 3);
    memset(v, 'x', 3 * sizeof *v);
    assert_int_equal(GW__ARRAY_RESERVE_EXACT(v, cap, 4), GW_OK);
    assert_int_equal(cap, 4);
    assert_int_equal(v[2].bytes[23], 'x');
    free(v);
}

static void maximum_clamps_growth_and_refuses_more(void **state)
{
    (void)state;
    reset_seam();
    int *v = NULL;
    size_t cap = 0;
    for (size_t n = 0; n < 20; n++)
        assert_int_equal(GW__ARRAY_RESERVE(v, cap, n + 1, 20), GW_OK);
    assert_int_equal(cap, 20); /* 8, 16, then 20, not 32 */
    int *was = v;
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 21, 20), GW_ERANGE);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 20);
    /* a maximum below the first capacity is the capacity */
    int *w = NULL;
    size_t wcap = 0;
    assert_int_equal(GW__ARRAY_RESERVE(w, wcap, 1, 3), GW_OK);
    assert_int_equal(wcap, 3);
    free(w);
    free(v);
}

static void overflowing_sizes_are_refused_before_realloc(void **state)
{
    (void)state;
    reset_seam();
    const size_t sizes[] = {2, 3, sizeof(big), 4096}; /* 1: SIZE_MAX / 1 + 1 is 0 */
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t elem = sizes[i];
        void *v = NULL;
        size_t cap = 0;
        /* need * elem wraps around SIZE_MAX: would be a tiny allocation */
        assert_int_equal(gw__array_reserve(&v, &cap, SIZE_MAX / elem + 1, elem,
                                           GW__ARRAY_UNBOUNDED), GW_ERANGE);
        assert_int_equal(gw__array_reserve_exact(&v, &cap, SIZE_MAX / elem + 1, elem),
                         GW_ERANGE);
        assert_int_equal(gw__array_reserve(&v, &cap, SIZE_MAX, elem, GW__ARRAY_UNBOUNDED),
                         GW_ERANGE);
        /* fits in size_t but not in ptrdiff_t: refused too (invariant 2) */
        assert_int_equal(gw__array_reserve(&v, &cap, SIZE_MAX / elem, elem,
                                           GW__ARRAY_UNBOUNDED), GW_ERANGE);
        assert_int_equal(gw__array_reserve_exact(&v, &cap, (size_t)PTRDIFF_MAX / elem + 1, elem),
                         GW_ERANGE);
        assert_null(v);
        assert_int_equal(cap, 0);
    }
    void *b = NULL;
    size_t bcap = 0;
    assert_int_equal(gw__array_reserve(&b, &bcap, SIZE_MAX, 1, GW__ARRAY_UNBOUNDED), GW_ERANGE);
    assert_int_equal(gw__array_reserve_exact(&b, &bcap, (size_t)PTRDIFF_MAX + 1, 1), GW_ERANGE);
    assert_null(b);
    assert_int_equal(realloc_calls, 0);
    static char one[8];
    assert_false(gw__array_check(NULL, 1, 8));                         /* invariant 1 */
    assert_false(gw__array_check(one, (size_t)PTRDIFF_MAX / 8 + 1, 8)); /* invariant 2 */
    assert_true(gw__array_check(one, (size_t)PTRDIFF_MAX / 8, 8));
    assert_true(gw__array_check(NULL, 0, 8));
}

static void doubling_near_the_limit_is_clamped_not_wrapped(void **state)
{
    (void)state;
    reset_seam();
    /* A (fake, never dereferenced) array whose doubling would pass
     * PTRDIFF_MAX bytes: growth is clamped to the limit and only then
     * handed to realloc, which the seam refuses. The array is unchanged. */
    fail_realloc = true;
    size_t elem = 16, limit = (size_t)PTRDIFF_MAX / elem;
    static char storage[16];
    void *v = storage;
    size_t cap = limit / 2 + 1;
    assert_int_equal(gw__array_reserve(&v, &cap, cap + 1, elem, GW__ARRAY_UNBOUNDED),
                     GW_ENOMEM);
    assert_ptr_equal(v, storage);
    assert_int_equal(cap, limit / 2 + 1);
    assert_int_equal(realloc_calls, 1);
    fail_realloc = false;
}

static void realloc_failure_leaves_the_array_alone(void **state)
{
    (void)state;
    reset_seam();
    int *v = NULL;
    size_t cap = 0;
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 8, GW__ARRAY_UNBOUNDED), GW_OK);
    for (int i = 0; i < 8; i++)
        v[i] = i * 3;
    int *was = v;
    fail_realloc = true;
    assert_int_equal(GW__ARRAY_RESERVE(v, cap, 9, GW__ARRAY_UNBOUNDED), GW_ENOMEM);
    assert_int_equal(GW__ARRAY_RESERVE_EXACT(v, cap, 9), GW_ENOMEM);
    fail_realloc = false;
    assert_ptr_equal(v, was);
    assert_int_equal(cap, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(v[i], i * 3); /* still the caller's, intact */
    /* and from empty: still empty */
    int *w = NULL;
    size_t wcap = 0;
    fail_realloc = true;
    assert_int_equal(GW__ARRAY_RESERVE(w, wcap, 1, GW__ARRAY_UNBOUNDED), GW_ENOMEM);
    fail_realloc = false;
    assert_null(w);
    assert_int_equal(wcap, 0);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appending_doubles_and_keeps_contents),
        cmocka_unit_test(first_capacity_and_batches),
        cmocka_unit_test(zero_need_and_enough_room_touch_nothing),
        cmocka_unit_test(zero_element_size_is_refused),
        cmocka_unit_test(exact_grows_to_need),
        cmocka_unit_test(maximum_clamps_growth_and_refuses_more),
        cmocka_unit_test(overflowing_sizes_are_refused_before_realloc),
        cmocka_unit_test(doubling_near_the_limit_is_clamped_not_wrapped),
        cmocka_unit_test(realloc_failure_leaves_the_array_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
