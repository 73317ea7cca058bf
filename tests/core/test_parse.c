/* test_parse.c — core/parse.h: the one number and size grammar (garbage of
 * every kind refused with a reason naming the value, nothing written) and
 * the option scanner (--opt=value and --opt value alike). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/parse.h"

#include <string.h>

/* Text strtod/strtoull would take (or half-take) and a person never means. */
static const char *const garbage[] = {
    "", " ", "nan", "NaN", "-nan", "inf", "-inf", "infinity", "0x10", "1e3", "1E3", "+1",
    " 1", "1 ", "1\n", "1x", "1,5", "--1", "- 1", ".", "-", "1..2", "١", "1\xff", "0b1",
};

static void uint_refuses_garbage(void **state)
{
    (void)state;
    gw_error err;
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        uint64_t v = 7;
        assert_int_equal(gw__parse_uint(garbage[i], 0, UINT64_MAX, &v, &err), GW_EINVAL);
        assert_true(v == 7);
        assert_non_null(strstr(err.message, "'"));
    }
    uint64_t v = 7;
    assert_int_equal(gw__parse_uint("-1", 0, UINT64_MAX, &v, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "'-1' is negative"));
    assert_int_equal(gw__parse_uint("1.5", 0, 10, &v, &err), GW_EINVAL);
    assert_int_equal(gw__parse_uint("18446744073709551616", 0, UINT64_MAX, &v, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "too large"));
    assert_int_equal(gw__parse_uint("0", 1, 600000, &v, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "'0' is out of range 1..600000"));
    assert_int_equal(gw__parse_uint("600001", 1, 600000, &v, &err), GW_EINVAL);
    assert_true(v == 7);
    assert_int_equal(gw__parse_uint(NULL, 0, 1, &v, &err), GW_EINVAL);
    assert_int_equal(gw__parse_uint("18446744073709551615", 0, UINT64_MAX, &v, &err), GW_OK);
    assert_true(v == UINT64_MAX);
    assert_int_equal(gw__parse_uint("007", 0, 10, &v, &err), GW_OK);
    assert_true(v == 7);
}

static void decimal_refuses_garbage(void **state)
{
    (void)state;
    gw_error err;
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        double v = 7;
        assert_int_equal(gw__parse_decimal(garbage[i], -1e9, 1e9, &v, &err), GW_EINVAL);
        assert_true(v == 7);
    }
    double v = 7;
    assert_int_equal(gw__parse_decimal("1000", -100, 999.999, &v, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "out of range"));
    assert_int_equal(gw__parse_decimal("99999999999999999999", 0, 1e30, &v, &err), GW_EINVAL);
    assert_true(v == 7);
    assert_int_equal(gw__parse_decimal("83.5", 0, 1000, &v, &err), GW_OK);
    assert_true(v == 83.5);
    assert_int_equal(gw__parse_decimal("-5", -100, 100, &v, &err), GW_OK);
    assert_true(v == -5);
    assert_int_equal(gw__parse_decimal(".25", 0, 1, &v, &err), GW_OK);
    assert_true(v == 0.25);
    assert_int_equal(gw__parse_decimal("3.", 0, 10, &v, &err), GW_OK);
    assert_true(v == 3);
    assert_int_equal(gw__parse_decimal("0.000000000000000000001", 0, 1, &v, &err), GW_OK);
    assert_true(v >= 0 && v < 1e-17);
    assert_int_equal(gw__parse_decimal("1.0000000000000000000000000000001", 0, 2, &v, &err), GW_OK);
    assert_true(v == 1);
}

static void size_grammar(void **state)
{
    (void)state;
    gw_error err;
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        uint64_t v = 7;
        assert_int_equal(gw__parse_size(garbage[i], &v, &err), GW_EINVAL);
        assert_true(v == 7);
    }
    static const char *const bad[] = {"GiB", "nanGiB", "infG", "1.5", "1.5B", "12 parsecs",
                                      "1GiBx", "1  GiB", "1e3G", "0x1G", "1,5G", "20000000000GiB",
                                      "18446744073709551616", "17179869184GiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        assert_int_equal(gw__parse_size(bad[i], &v, &err), GW_EINVAL);
        assert_true(v == 7);
    }
    uint64_t v = 7;
    assert_int_equal(gw__parse_size("-1GiB", &v, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "'-1GiB' is negative"));
    assert_int_equal(gw__parse_size("nan", &v, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "'nan' is not a size"));
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},           {"1000", 1000},           {"12B", 12},
        {"20GiB", 20ull << 30}, {"20gib", 20ull << 30}, {"1.5G", 3ull << 29},
        {"512MiB", 512ull << 20}, {"512 MiB", 512ull << 20}, {"10GB", 10000000000ull},
        {"1T", 1ull << 40}, {"2k", 2048},             {"18446744073709551615", UINT64_MAX},
        {"16777215.999TiB", (16777215ull << 40) + (uint64_t)(0.999 * (1ull << 40))},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(gw__parse_size(good[i].s, &v, &err), GW_OK);
        assert_true(v == good[i].v);
    }
}

enum { O_LISTEN = 1, O_JSON, O_CTX };
static const gw_opt table[] = {
    {"--listen", NULL, "HOST:PORT", O_LISTEN},
    {"--json", NULL, NULL, O_JSON},
    {"--ctx-size", "-c", "N", O_CTX},
    {NULL, NULL, NULL, 0},
};
static const gw_opt *const tables[] = {table, NULL};

static gw_opt_scan scan_of(int argc, char **argv)
{
    gw_opt_scan s = {.argc = argc, .argv = argv, .tables = tables, .i = 1};
    return s;
}

static void scanner_takes_both_forms(void **state)
{
    (void)state;
    gw_error err;
    char *argv[] = {"serve", "--listen=1.2.3.4:5", "--listen", "6.7.8.9:0", "-c=8", "-c", "9",
                    "--ctx-size=", "--json", "file", "-", "--listen", "--json", NULL};
    gw_opt_scan s = scan_of(13, argv);
    static const struct {
        int id;
        const char *value;
    } want[] = {
        {O_LISTEN, "1.2.3.4:5"}, {O_LISTEN, "6.7.8.9:0"}, {O_CTX, "8"}, {O_CTX, "9"},
        {O_CTX, ""},             {O_JSON, NULL},          {GW_OPT_POSITIONAL, "file"},
        {GW_OPT_POSITIONAL, "-"}, {O_LISTEN, "--json"},   {GW_OPT_END, NULL},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        assert_int_equal(gw__opt_next(&s, &err), want[k].id);
        if (want[k].value)
            assert_string_equal(s.value, want[k].value);
        else
            assert_null(s.value);
    }
}

static void scanner_errors_name_the_argument(void **state)
{
    (void)state;
    gw_error err;
    char *a1[] = {"x", "--json=yes", NULL};
    gw_opt_scan s = scan_of(2, a1);
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_ERROR);
    assert_non_null(strstr(err.message, "--json takes no value"));
    char *a2[] = {"x", "--listen", NULL};
    s = scan_of(2, a2);
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_ERROR);
    assert_non_null(strstr(err.message, "--listen needs a value"));
    char *a3[] = {"x", "--listenx=1", NULL};
    s = scan_of(2, a3);
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_ERROR);
    assert_non_null(strstr(err.message, "unknown option '--listenx=1'"));
    char *a4[] = {"x", "--lis", NULL}; /* no abbreviations */
    s = scan_of(2, a4);
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_ERROR);
}

static void scanner_dashdash(void **state)
{
    (void)state;
    gw_error err;
    char *argv[] = {"run", "--json", "--", "cmd", "--json", NULL};
    gw_opt_scan s = scan_of(5, argv);
    s.stop_at_dashdash = true;
    assert_int_equal(gw__opt_next(&s, &err), O_JSON);
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_END);
    assert_true(s.dashdash);
    assert_int_equal(s.i, 3);
    s = scan_of(5, argv);
    assert_int_equal(gw__opt_next(&s, &err), O_JSON);
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_POSITIONAL);
    assert_string_equal(s.value, "cmd");
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_POSITIONAL);
    assert_string_equal(s.value, "--json");
    assert_int_equal(gw__opt_next(&s, &err), GW_OPT_END);
}

/* RFC 3339 times: UTC, offsets both ways, fractions of any length, and
 * what is not one. 1764772709 is 2025-12-03T14:38:29Z. */
static void rfc3339(void **state)
{
    (void)state;
    int64_t ns;
    assert_true(gw__parse_rfc3339("2025-12-03T14:38:29Z", &ns));
    assert_int_equal(ns, 1764772709LL * 1000000000LL);
    assert_true(gw__parse_rfc3339("2025-12-03T14:38:29.5Z", &ns));
    assert_int_equal(ns, 1764772709LL * 1000000000LL + 500000000);
    assert_true(gw__parse_rfc3339("2025-12-03T07:38:29.123456789123-07:00", &ns));
    assert_int_equal(ns, 1764772709LL * 1000000000LL + 123456789);
    assert_true(gw__parse_rfc3339("2025-12-03T16:08:29+01:30", &ns));
    assert_int_equal(ns, 1764772709LL * 1000000000LL);
    static const char *const bad[] = {
        "", "2025-12-03", "2025-12-03T14:38:29", "2025-12-03 14:38:29Z", "2025-13-03T14:38:29Z",
        "2025-12-03T14:38:29.Z", "2025-12-03T14:38:29+0100", "2025-12-03T14:38:29Zjunk",
        "yesterday", "1014-12-03T14:38:29Z", "2263-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gw__parse_rfc3339(bad[i], &ns))
            fail_msg("'%s' parsed", bad[i]);
    assert_false(gw__parse_rfc3339(NULL, &ns));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uint_refuses_garbage),
        cmocka_unit_test(decimal_refuses_garbage),
        cmocka_unit_test(size_grammar),
        cmocka_unit_test(scanner_takes_both_forms),
        cmocka_unit_test(scanner_errors_name_the_argument),
        cmocka_unit_test(scanner_dashdash),
        cmocka_unit_test(rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
