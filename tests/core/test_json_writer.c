/* test_json_writer.c — nesting, commas and escaping of the JSON writer. The
 * expected strings are written by hand from the JSON grammar (RFC 8259). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "render/json_writer.h"

#include <math.h>

static void nested_values_get_commas(void **state)
{
    (void)state;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    gw__json_object_begin(&j);
    gw__json_key(&j, "a");
    gw__json_u64(&j, 18446744073709551615ull);
    gw__json_key(&j, "b");
    gw__json_array_begin(&j);
    gw__json_i64(&j, -5);
    gw__json_double(&j, 0.5);
    gw__json_null(&j);
    gw__json_bool(&j, true);
    gw__json_array_begin(&j);
    gw__json_array_end(&j);
    gw__json_array_end(&j);
    gw__json_key(&j, "c");
    gw__json_string(&j, NULL);
    gw__json_key(&j, "d");
    gw__json_double(&j, NAN);
    gw__json_object_end(&j);
    assert_false(sb.failed);
    assert_string_equal(sb.data, "{\"a\":18446744073709551615,\"b\":[-5,0.5,null,true,[]],\"c\":null,\"d\":null}");
    gw__strbuf_release(&sb);
}

static void strings_are_escaped(void **state)
{
    (void)state;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__json_escape(&sb, "q\"b\\n\nt\tc\x01 \xc3\xa9 bad\xff end \xe2\x82");
    assert_string_equal(sb.data, "\"q\\\"b\\\\n\\nt\\tc\\u0001 \xc3\xa9 bad\\ufffd end \\ufffd\\ufffd\"");
    gw__strbuf_release(&sb);
}

static void doubles_round_trip(void **state)
{
    (void)state;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    gw__json_array_begin(&j);
    gw__json_double(&j, 0.1);
    gw__json_double(&j, 1e300);
    gw__json_double(&j, 85.3);
    gw__json_array_end(&j);
    assert_string_equal(sb.data, "[0.1,1e+300,85.3]");
    gw__strbuf_release(&sb);
}

static void keyed_helpers_write_null_when_unknown(void **state)
{
    (void)state;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    gw__json_object_begin(&j);
    gw__json_kv_u64(&j, "a", true, 7);
    gw__json_kv_u64(&j, "b", false, 7);
    gw__json_kv_double(&j, "c", false, 1.5);
    gw__json_kv_str(&j, "d", "");
    gw__json_kv_str(&j, "e", "x");
    /* 2001-09-09T01:46:40Z is 1e9 s after the epoch */
    gw__json_kv_timestamp(&j, "t", 1000000000ll * 1000000000ll + 123456789);
    gw__json_object_end(&j);
    assert_string_equal(sb.data, "{\"a\":7,\"b\":null,\"c\":null,\"d\":null,\"e\":\"x\","
                                 "\"t\":\"2001-09-09T01:46:40.123Z\"}");
    gw__strbuf_release(&sb);
}

static void too_deep_marks_failed(void **state)
{
    (void)state;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    for (int i = 0; i <= GW__JSON_MAX_DEPTH; i++)
        gw__json_array_begin(&j);
    assert_true(sb.failed);
    gw__strbuf_release(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nested_values_get_commas),
        cmocka_unit_test(strings_are_escaped),
        cmocka_unit_test(doubles_round_trip),
        cmocka_unit_test(keyed_helpers_write_null_when_unknown),
        cmocka_unit_test(too_deep_marks_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
