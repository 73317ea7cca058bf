/* test_prom_vector.c — the decoder of Prometheus's instant-query answers
 * (gw__prom_vector_parse, src/fleet/prom_source.c): labels with every
 * escape decoded, members in any order, a Prometheus error naming its
 * text, values that are not finite skipped, malformed series skipped, and
 * answers that are not JSON (trailing text, truncated, too deep, bad
 * escapes or UTF-8) failing with the byte where it went wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet/prom_vector.h"

#include <stdio.h>
#include <string.h>

typedef struct seen {
    size_t n;
    char text[8][512]; /* each series: "name=value,...|value" */
} seen;

static void collect(void *ctx, const gw__prom_label *l, size_t n, double value)
{
    seen *s = ctx;
    assert_true(s->n < 8);
    char *t = s->text[s->n++];
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(t + at, 512 - at, "%s=%s,", l[i].name, l[i].value);
    snprintf(t + at, 512 - at, "|%g", value);
}

static int parse(const char *body, seen *s, gw_error *err)
{
    memset(s, 0, sizeof *s);
    gw_error_clear(err);
    return gw__prom_vector_parse(body, strlen(body), collect, s, err);
}

static void labels_decoded(void **state)
{
    (void)state;
    seen s;
    gw_error err;
    const char *body =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
        "{\"metric\":{\"instance\":\"a\\\"b\\\\c\\/d\",\"ctl\":\"\\b\\f\\n\\r\\t\","
        "\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"raw\":\"\xc3\xa9\",\"n\":5},"
        "\"value\":[1796315157.112,\"123\"]}]},\"warnings\":[\"x\"]}";
    assert_int_equal(parse(body, &s, &err), GW_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text[0], "instance=a\"b\\c/d,ctl=\b\f\n\r\t,"
                                   "u=\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80,raw=\xc3\xa9,|123");
}

static void members_in_any_order(void **state)
{
    (void)state;
    seen s;
    gw_error err;
    const char *body =
        "{ \"warnings\": [{\"deep\": [1, -2.5e-3, true, false, null, {}]}],\n"
        "  \"data\": { \"result\": [ { \"value\": [ 1, \"7\" ], \"x\": {\"y\": []},"
        " \"metric\": { \"gpu\": \"1\", \"instance\": \"b:2\" } } ], \"resultType\": \"vector\" },"
        "  \"status\": \"success\" }\r\n";
    assert_int_equal(parse(body, &s, &err), GW_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text[0], "gpu=1,instance=b:2,|7");
    gw__prom_label l[2] = {{"a", "1"}, {"a", "2"}};
    assert_string_equal(gw__prom_label_get(l, 2, "a"), "2"); /* the last one wins */
    assert_null(gw__prom_label_get(l, 2, "b"));
}

static void prometheus_error(void **state)
{
    (void)state;
    seen s;
    gw_error err;
    assert_int_equal(parse("{\"status\":\"error\",\"errorType\":\"bad_data\","
                           "\"error\":\"parse error: \\\"x\\\"\"}", &s, &err), GW_EPARSE);
    assert_string_equal(err.message, "status is not success: parse error: \"x\"");
    assert_int_equal(parse("{\"data\":{\"resultType\":\"vector\",\"result\":[]}}", &s, &err),
                     GW_EPARSE);
    assert_string_equal(err.message, "status is not success");
    assert_int_equal(parse("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
                           "\"result\":[]}}", &s, &err), GW_EPARSE);
    assert_string_equal(err.message, "the answer is not an instant vector");
    assert_int_equal(parse("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\"}}", &s,
                           &err), GW_EPARSE);
    assert_string_equal(err.message, "the answer is not an instant vector");
}

static void bad_series_skipped(void **state)
{
    (void)state;
    seen s;
    gw_error err;
    const char *body =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
        "{\"metric\":{\"i\":\"nan\"},\"value\":[1,\"NaN\"]},"
        "{\"metric\":{\"i\":\"inf\"},\"value\":[1,\"+Inf\"]},"
        "{\"metric\":{\"i\":\"-inf\"},\"value\":[1,\"-Inf\"]},"
        "{\"metric\":{\"i\":\"junk\"},\"value\":[1,\"4 2\"]},"
        "{\"metric\":{\"i\":\"empty\"},\"value\":[1,\"\"]},"
        "{\"metric\":{\"i\":\"number\"},\"value\":[1,2]},"
        "{\"metric\":{\"i\":\"three\"},\"value\":[1,\"2\",3]},"
        "{\"metric\":[],\"value\":[1,\"2\"]},"
        "{\"metric\":{\"i\":\"nul\\u0000\"},\"value\":[1,\"2\"]},"
        "1,\"s\",null,"
        "{\"metric\":{\"i\":\"ok\"},\"value\":[1,\"-0.5\"]}]}}";
    assert_int_equal(parse(body, &s, &err), GW_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text[0], "i=ok,|-0.5");
}

static void not_json(void **state)
{
    (void)state;
    static const struct {
        const char *body, *message;
    } cases[] = {
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}} x",
         "not JSON: unexpected text after the answer at byte 64"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"i",
         "not JSON: unterminated string at byte 73"},
        {"{\"status\" \"success\"}", "not JSON: expected ':' at byte 10"},
        {"", "not JSON: expected '{' at byte 0"},
        {"[]", "not JSON: expected '{' at byte 0"},
        {"{\"a\":[1,]}", "not JSON: unexpected character at byte 8"},
        {"{\"a\":01}", "not JSON: expected ',' or '}' at byte 6"},
        {"{\"a\":\"\\x\"}", "not JSON: invalid escape in a string at byte 6"},
        {"{\"a\":\"\\udc00\"}", "not JSON: lone surrogate in a \\u escape at byte 6"},
        {"{\"a\":\"\xc0\xaf\"}", "not JSON: invalid UTF-8 at byte 6"},
        {"{\"a\":\"\t\"}", "not JSON: control character in a string at byte 6"},
        {"{\"a\":tru}", "not JSON: invalid literal at byte 5"},
    };
    seen s;
    gw_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(parse(cases[i].body, &s, &err), GW_EPARSE);
        assert_string_equal(err.message, cases[i].message);
    }
    char deep[400] = "{\"a\":";
    for (int i = 0; i < GW__PROM_MAX_DEPTH; i++)
        strcat(deep, "[");
    assert_int_equal(parse(deep, &s, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "nested too deep at byte"));
    /* not NUL-terminated: only len bytes are read */
    const char good[] = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
    assert_int_equal(gw__prom_vector_parse(good, sizeof good - 2, collect, &s, &err), GW_EPARSE);
    assert_int_equal(gw__prom_vector_parse(NULL, 0, collect, &s, &err), GW_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_decoded),     cmocka_unit_test(members_in_any_order),
        cmocka_unit_test(prometheus_error),   cmocka_unit_test(bad_series_skipped),
        cmocka_unit_test(not_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
