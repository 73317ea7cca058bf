/* test_util.c — the core helpers: parsing, bounded copies, strbuf limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void parse_u64_accepts_only_whole_numbers(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_true(gw__parse_u64("42\n", &v));
    assert_int_equal(v, 42);
    assert_true(gw__parse_u64("18446744073709551615", &v));
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_false(gw__parse_u64("18446744073709551616", &v)); /* overflow */
    assert_false(gw__parse_u64("", &v));
    assert_false(gw__parse_u64("12abc", &v));
    assert_false(gw__parse_u64("-1", &v));
    assert_false(gw__parse_u64("1 2", &v));
    assert_int_equal(v, 7); /* untouched on failure */
    int64_t s;
    assert_true(gw__parse_i64("-9223372036854775808", &s));
    assert_true(s == INT64_MIN);
    assert_false(gw__parse_i64("9223372036854775808", &s));
}

static void strlcpy_truncates_and_terminates(void **state)
{
    (void)state;
    char buf[4];
    gw__strlcpy(buf, "abcdef", sizeof buf);
    assert_string_equal(buf, "abc");
    gw__strlcpy(buf, NULL, sizeof buf);
    assert_string_equal(buf, "");
}

static void strbuf_grows_and_respects_max(void **state)
{
    (void)state;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 16);
    gw__strbuf_puts(&sb, "0123456789");
    gw__strbuf_printf(&sb, "%d", 12345);
    assert_false(sb.failed);
    assert_string_equal(sb.data, "012345678912345");
    gw__strbuf_putc(&sb, 'x'); /* 16 bytes + NUL > max 16 */
    assert_true(sb.failed);
    gw__strbuf_puts(&sb, "more"); /* no-op once failed */
    assert_int_equal(sb.len, 15);
    assert_null(gw__strbuf_detach(&sb, NULL));
    gw__strbuf_release(&sb);

    gw__strbuf_init(&sb, 0);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gw__strbuf_printf(&sb, "<%s>", big); /* longer than printf's stack buffer */
    assert_int_equal(sb.len, 1001);
    size_t len;
    char *out = gw__strbuf_detach(&sb, &len);
    assert_non_null(out);
    assert_int_equal(len, 1001);
    assert_true(out[0] == '<' && out[1000] == '>');
    free(out);
}

static void error_set_formats_and_returns_code(void **state)
{
    (void)state;
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw__error_set(&e, GW_EPARSE, "file %s: bad byte at %d", "x.gguf", 9), GW_EPARSE);
    assert_int_equal(e.code, GW_EPARSE);
    assert_string_equal(e.message, "file x.gguf: bad byte at 9");
    assert_string_equal(gw_strerror(GW_ENOMEM), "out of memory");
    assert_string_equal(gw_strerror(12345), "unknown error");
    assert_int_equal(gw__error_set(NULL, GW_EIO, "ignored"), GW_EIO);
}

static void read_file_caps_and_reports_errno(void **state)
{
    (void)state;
    char buf[8];
    assert_true(gw__read_file("/nonexistent/file", buf, sizeof buf) < 0);
    char path[] = "/tmp/gw_test_util_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    assert_int_equal(gw__read_file(path, buf, sizeof buf), 7);
    assert_string_equal(buf, "0123456");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_u64_accepts_only_whole_numbers),
        cmocka_unit_test(strlcpy_truncates_and_terminates),
        cmocka_unit_test(strbuf_grows_and_respects_max),
        cmocka_unit_test(error_set_formats_and_returns_code),
        cmocka_unit_test(read_file_caps_and_reports_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
