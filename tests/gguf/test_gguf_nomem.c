/* test_gguf_nomem.c — the reader under allocation failure ("fail the Nth
 * allocation", as curl's torture tests do).
 *
 * The seam is the linker: this test is linked with -Wl,--wrap=malloc and
 * --wrap=calloc, so every allocation the reader makes goes through the
 * wrappers below, which fail the Nth one while armed. For every N until the
 * open succeeds, gw_gguf_open_memory_ex must return GW_ENOMEM with fault
 * NOMEM, leave *out NULL and leak nothing (the ASan build checks leaks).
 * argv[1]: a valid GGUF file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

static long countdown = -1; /* < 0: disarmed; 0: the next allocation fails */
static long allocations;

static bool should_fail(void)
{
    allocations++;
    if (countdown < 0)
        return false;
    return countdown-- == 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }

static const char *model_path;

static void test_fail_each_allocation(void **state)
{
    (void)state;
    FILE *f = fopen(model_path, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 0 && len < sizeof buf);

    gw_gguf *g;
    gw_error err;
    gw_gguf_fault fault;
    allocations = 0;
    assert_int_equal(gw_gguf_open_memory(&g, buf, len, &err), GW_OK);
    long needed = allocations;
    gw_gguf_close(g);
    assert_true(needed >= 5); /* handle, kv table and index, tensor table and index */

    for (long n = 0; n < needed; n++) {
        countdown = n;
        g = (gw_gguf *)buf;
        int rc = gw_gguf_open_memory_ex(&g, buf, len, NULL, &fault, &err);
        countdown = -1;
        if (rc != GW_ENOMEM || fault != GW_GGUF_FAULT_NOMEM || g != NULL)
            fail_msg("allocation %ld failed: rc %d fault '%s' (%s)", n, rc,
                     gw_gguf_fault_name(fault), err.message);
        assert_non_null(strstr(err.message, "out of memory"));
    }
    countdown = needed; /* one more than needed: succeeds */
    assert_int_equal(gw_gguf_open_memory(&g, buf, len, &err), GW_OK);
    countdown = -1;
    gw_gguf_close(g);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_gguf_nomem FILE.gguf\n");
        return 2;
    }
    model_path = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fail_each_allocation)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
