/* test_chunked.c — the chunked transfer coding decoder (src/pool/chunked.c)
 * on untrusted input:
 *  - valid bodies (one chunk, many, extensions, either hex case and leading
 *    zeros, trailers, an empty body) decode to their data, and the bytes
 *    after the final CRLF are left for the next response;
 *  - the same input fed whole, one byte at a time, cut once at every
 *    position, and in random pieces gives the same data, result, count of
 *    bytes consumed and message (chunked.h invariant 4); each piece is
 *    copied into an exact-size heap buffer so ASan catches a read past it;
 *  - every proper prefix of a valid body is incomplete (GW_OK, all of it
 *    consumed, not done);
 *  - each malformed body is refused with a message naming what was wrong,
 *    at the same offset however it is split; limits hold at their edges;
 *  - a failed decoder stays failed, a finished one consumes nothing more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/chunked.h"

/* What one feeding of an input gave. */
typedef struct outcome {
    int rc;          /* GW_OK (input ran out first), 1 (done) or the error */
    gw_strbuf data;  /* the data, concatenated */
    size_t consumed; /* bytes consumed in all */
    char message[512];
} outcome;

/* The next piece's length: mode 0 whole, mode 1 `step` bytes, mode 2
 * random 1..step bytes (state *x). */
static size_t piece_len(int mode, size_t step, uint32_t *x, size_t left)
{
    size_t n = left;
    if (mode == 1)
        n = step;
    else if (mode == 2) {
        *x = *x * 1103515245u + 12345u;
        n = 1 + (*x >> 16) % step;
    }
    return n < left ? n : left;
}

/* Feeds in[0..len) in pieces (see piece_len; mode 3: two pieces cut at
 * step) into a fresh decoder. */
static void feed(const char *in, size_t len, int mode, size_t step, uint32_t seed, outcome *o)
{
    gw_chunked c;
    gw_chunked_init(&c);
    assert_true(gw_chunked_check(&c));
    gw__strbuf_init(&o->data, 0);
    o->rc = GW_OK;
    o->consumed = 0;
    o->message[0] = '\0';
    size_t off = 0;
    while (off < len && o->rc == GW_OK) {
        size_t n = mode == 3 ? (off == 0 && step < len ? step : len - off)
                             : piece_len(mode, step, &seed, len - off);
        char *buf = malloc(n);
        assert_non_null(buf);
        memcpy(buf, in + off, n);
        size_t p = 0;
        while (p < n && o->rc == GW_OK) {
            size_t used = 99;
            const char *d = NULL;
            size_t dl = 99;
            gw_error err;
            gw_error_clear(&err);
            o->rc = gw_chunked_next(&c, buf + p, n - p, &used, &d, &dl, &err);
            assert_true(gw_chunked_check(&c));
            if (o->rc < 0) {
                assert_true(used < n - p); /* the offending byte is not consumed */
                assert_int_equal(dl, 0);
                assert_true(err.message[0] != '\0');
                memcpy(o->message, err.message, sizeof o->message);
                p += used;
                break;
            }
            assert_true(used <= n - p);
            assert_true(o->rc == 1 || used > 0);
            assert_true(d >= buf + p && dl <= used && d + dl <= buf + p + used);
            assert_true(o->rc != 1 || dl == 0);
            gw__strbuf_append(&o->data, d, dl);
            p += used;
        }
        free(buf);
        off += p;
    }
    o->consumed = off;
    assert_false(o->data.failed);
    assert_int_equal(gw_chunked_done(&c), o->rc == 1);
}

static void outcome_equal(const outcome *a, const outcome *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->data.len, b->data.len);
    if (a->data.len)
        assert_memory_equal(a->data.data, b->data.data, a->data.len);
    assert_string_equal(a->message, b->message);
}

/* Feeds in whole, then every other way (one byte at a time, cut once at
 * each position, random pieces), checks they agree; *whole keeps the
 * first outcome (caller releases its data). */
static void feed_all_ways(const char *in, size_t len, outcome *whole)
{
    feed(in, len, 0, 0, 0, whole);
    outcome o;
    feed(in, len, 1, 1, 0, &o);
    outcome_equal(whole, &o);
    gw__strbuf_release(&o.data);
    for (size_t k = 1; k < len; k++) {
        feed(in, len, 3, k, 0, &o);
        outcome_equal(whole, &o);
        gw__strbuf_release(&o.data);
    }
    for (uint32_t seed = 1; seed <= 40; seed++) {
        feed(in, len, 2, 1 + seed % 13, seed, &o);
        outcome_equal(whole, &o);
        gw__strbuf_release(&o.data);
    }
}

static void expect_valid(const char *in, size_t len, const char *want, size_t want_len,
                         size_t consumed)
{
    outcome o;
    feed_all_ways(in, len, &o);
    if (o.rc != 1)
        fail_msg("not decoded (%d: %s): %s", o.rc, o.message, in);
    assert_int_equal(o.consumed, consumed);
    assert_int_equal(o.data.len, want_len);
    if (want_len)
        assert_memory_equal(o.data.data, want, want_len);
    gw__strbuf_release(&o.data);
    /* every proper prefix: incomplete, all of it consumed */
    for (size_t k = 0; k < consumed; k++) {
        feed(in, k, 0, 0, 0, &o);
        assert_int_equal(o.rc, GW_OK);
        assert_int_equal(o.consumed, k);
        gw__strbuf_release(&o.data);
    }
}

#define S(lit) lit, sizeof(lit) - 1

static void test_valid(void **state)
{
    (void)state;
    expect_valid(S("5\r\nhello\r\n0\r\n\r\n"), S("hello"), 15);
    expect_valid(S("0\r\n\r\n"), S(""), 5);
    expect_valid(S("3\r\nabc\r\n1\r\nd\r\nA\r\n0123456789\r\n0\r\n\r\n"),
                 S("abcd0123456789"), 34);
    /* extensions (with BWS, quoted strings, on the last chunk too): ignored */
    expect_valid(S("5;name=value\r\nhello\r\n5 ; a=\"q;x\"\t\r\nworld\r\n0;last\r\n\r\n"),
                 S("helloworld"), 52);
    /* either hex case, leading zeros */
    expect_valid(S("0000a\r\n0123456789\r\n00B\r\nabcdefghijk\r\n000\r\n\r\n"),
                 S("0123456789abcdefghijk"), 44);
    /* data holding CR, LF and NUL is data */
    expect_valid(S("4\r\n\r\n\0\n\r\n0\r\n\r\n"), S("\r\n\0\n"), 14);
    /* trailer fields read and dropped */
    expect_valid(S("2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n"), S("hi"), 39);
}

/* The bytes after the final CRLF are the next response's. */
static void test_keep_alive(void **state)
{
    (void)state;
    static const char two[] = "2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    expect_valid(two, sizeof two - 1, S("hi"), 12);
    gw_chunked c;
    gw_chunked_init(&c);
    size_t used, dl;
    const char *d;
    gw_error err;
    size_t off = 0;
    int rc;
    while ((rc = gw_chunked_next(&c, two + off, sizeof two - 1 - off, &used, &d, &dl, &err)) ==
           GW_OK)
        off += used;
    assert_int_equal(rc, 1);
    assert_int_equal(off + used, 12);
    assert_true(gw_chunked_done(&c));
    /* a finished decoder consumes nothing more */
    assert_int_equal(gw_chunked_next(&c, two + 12, 5, &used, &d, &dl, &err), 1);
    assert_int_equal(used, 0);
    assert_int_equal(dl, 0);
    /* nothing in: nothing consumed */
    gw_chunked_init(&c);
    assert_int_equal(gw_chunked_next(&c, NULL, 0, &used, &d, &dl, &err), GW_OK);
    assert_int_equal(used, 0);
    assert_int_equal(dl, 0);
}

/* A realistic stream: SSE events in a chunk each, as llama-server sends. */
static void test_sse_stream(void **state)
{
    (void)state;
    static const char *const events[] = {
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
        "data: [DONE]\n\n",
    };
    gw_strbuf in, want;
    gw__strbuf_init(&in, 0);
    gw__strbuf_init(&want, 0);
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        gw__strbuf_printf(&in, "%zx\r\n%s\r\n", strlen(events[i]), events[i]);
        gw__strbuf_puts(&want, events[i]);
    }
    gw__strbuf_puts(&in, "0\r\n\r\n");
    expect_valid(in.data, in.len, want.data, want.len, in.len);
    gw__strbuf_release(&in);
    gw__strbuf_release(&want);
}

typedef struct bad_case {
    const char *in;
    size_t len;
    const char *says; /* in the message */
    const char *at;   /* "at byte N" in the message, or NULL */
} bad_case;

static void expect_refused(const char *in, size_t len, const char *says, const char *at)
{
    outcome o;
    feed_all_ways(in, len, &o);
    if (o.rc != GW_EPARSE)
        fail_msg("not refused (%d): %.60s", o.rc, in);
    if (!strstr(o.message, says))
        fail_msg("message '%s' does not say '%s'", o.message, says);
    if (at && !strstr(o.message, at))
        fail_msg("message '%s' does not say '%s'", o.message, at);
    gw__strbuf_release(&o.data);
}

static void test_refused(void **state)
{
    (void)state;
    static const bad_case bad[] = {
        {S("\r\n"), "empty chunk size", "at byte 0"},
        {S(";x\r\n"), "empty chunk size", "at byte 0"},
        {S(" 5\r\n"), "empty chunk size", "at byte 0"},
        {S("x\r\n"), "is not a hex digit", "at byte 0"},
        {S("5g\r\n"), "'g' is not a hex digit", "at byte 1"},
        {S("-5\r\n"), "is not a hex digit", NULL},
        {S("0x5\r\n"), "'x' is not a hex digit", "at byte 1"},
        {S("5 x\r\n"), "after a chunk size", "at byte 2"},
        {S("5 5\r\n"), "after a chunk size", NULL},
        {S("5\nhello\r\n"), "bare LF", "at byte 1"},
        {S("5;a\nhello\r\n"), "bare LF", "at byte 3"},
        {S("5\rhello"), "CR without LF after a chunk size", "at byte 2"},
        {S("5;a\x01\r\nhello"), "control byte) in a chunk extension", "at byte 3"},
        {S("5;a\x7f\r\nhello"), "0x7f", NULL},
        {S("5\r\nhelloX\r\n"), "after a chunk's data (expected CRLF)", "at byte 8"},
        {S("5\r\nhello\n0\r\n\r\n"), "bare LF", "at byte 8"},
        {S("5\r\nhello\rX"), "CR without LF after a chunk's data", "at byte 9"},
        {S("5\r\nhello\r\n\r\n"), "empty chunk size", "at byte 10"},
        {S("40000001\r\n"), "over 1073741824 bytes (1 GiB)", "at byte 7"},
        {S("fffffffffffffffffffffffff\r\n"), "1 GiB", "at byte 7"},
        {S("0\r\nBad Name: x\r\n\r\n"), "in a trailer field name", "at byte 6"},
        {S("0\r\n folded\r\n\r\n"), "in a trailer field name", "at byte 3"},
        {S("0\r\n: novalue\r\n\r\n"), "in a trailer field name", "at byte 3"},
        {S("0\r\nNoColon\r\n\r\n"), "in a trailer field name", "at byte 10"},
        {S("0\r\nX: a\x01\r\n\r\n"), "control byte) in a trailer field", "at byte 7"},
        {S("0\r\nX: y\n\r\n"), "bare LF", "at byte 7"},
        {S("0\r\nX: y\rZ"), "CR without LF in a trailer", "at byte 8"},
        {S("0\r\n\rX"), "CR without LF at the end of the body", "at byte 4"},
        {S("0\r\n\n"), "bare LF", "at byte 3"},
        {S("0\r\n\r\r"), "CR without LF at the end", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i].in, bad[i].len, bad[i].says, bad[i].at);
}

static void test_limits(void **state)
{
    (void)state;
    /* a chunk of exactly 1 GiB is accepted (the data is still to come) */
    outcome o;
    feed(S("40000000\r\nabc"), 0, 0, 0, &o);
    assert_int_equal(o.rc, GW_OK);
    assert_int_equal(o.consumed, 13);
    assert_int_equal(o.data.len, 3);
    gw__strbuf_release(&o.data);
    /* a size line of exactly GW_CHUNKED_MAX_LINE bytes; one more is refused */
    size_t cap = GW_CHUNKED_MAX_LINE + 64;
    char *b = malloc(cap);
    assert_non_null(b);
    memset(b, 'a', cap);
    memcpy(b, "1;", 2);
    memcpy(b + GW_CHUNKED_MAX_LINE, "\r\nx\r\n0\r\n\r\n", 10);
    expect_valid(b, GW_CHUNKED_MAX_LINE + 10, S("x"), GW_CHUNKED_MAX_LINE + 10);
    memset(b, '0', GW_CHUNKED_MAX_LINE + 1); /* leading zeros count too */
    memcpy(b + GW_CHUNKED_MAX_LINE + 1, "\r\n", 2);
    expect_refused(b, GW_CHUNKED_MAX_LINE + 3, "chunk size line over 4096 bytes", "at byte 4096");
    free(b);
}

/* Trailer lines of n bytes each (CRLF not counted) until the section is
 * about total bytes, then the final CRLF. */
static char *trailers(size_t line, size_t count, size_t *len)
{
    size_t cap = 3 + count * (line + 2) + 2;
    char *b = malloc(cap);
    assert_non_null(b);
    memcpy(b, "0\r\n", 3);
    size_t p = 3;
    for (size_t i = 0; i < count; i++) {
        memset(b + p, 'v', line);
        memcpy(b + p, "X:", 2);
        memcpy(b + p + line, "\r\n", 2);
        p += line + 2;
    }
    memcpy(b + p, "\r\n", 2);
    *len = p + 2;
    return b;
}

static void test_trailer_limits(void **state)
{
    (void)state;
    size_t len;
    /* a section of exactly 8192 bytes: 4 lines of 2046 + CRLF */
    char *b = trailers(2046, 4, &len);
    expect_valid(b, len, "", 0, len);
    free(b);
    b = trailers(2047, 4, &len); /* 8196 */
    expect_refused(b, len, "trailer section over 8192 bytes", "at byte 8195");
    free(b);
    /* a line of exactly 4096 bytes; one more is refused */
    b = trailers(GW_CHUNKED_MAX_LINE, 1, &len);
    expect_valid(b, len, "", 0, len);
    free(b);
    b = trailers(GW_CHUNKED_MAX_LINE + 1, 1, &len);
    expect_refused(b, len, "trailer line over 4096 bytes", "at byte 4099");
    free(b);
}

/* A failed decoder stays failed until initialised again. */
static void test_sticky(void **state)
{
    (void)state;
    gw_chunked c;
    gw_chunked_init(&c);
    size_t used, dl;
    const char *d;
    gw_error err;
    assert_int_equal(gw_chunked_next(&c, S("z\r\n"), &used, &d, &dl, &err), GW_EPARSE);
    assert_true(gw_chunked_check(&c));
    assert_false(gw_chunked_done(&c));
    assert_int_equal(gw_chunked_next(&c, S("0\r\n\r\n"), &used, &d, &dl, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "failed earlier"));
    assert_int_equal(used, 0);
    gw_chunked_init(&c);
    assert_int_equal(gw_chunked_next(&c, S("0\r\n\r\n"), &used, &d, &dl, &err), 1);
    assert_int_equal(used, 5);
}

/* Deterministic garbage from the grammar's alphabet: fed whole and in
 * pieces it agrees, and never reads past a piece (ASan). */
static void test_garbage(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789abcdefABCDEF;= \t\r\n\r\n:xX\x01";
    uint32_t x = 777;
    for (int iter = 0; iter < 3000; iter++) {
        char buf[64];
        x = x * 1103515245u + 12345u;
        size_t len = (x >> 16) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        outcome whole, o;
        feed(buf, len, 0, 0, 0, &whole);
        feed(buf, len, 2, 1 + iter % 5, x, &o);
        outcome_equal(&whole, &o);
        gw__strbuf_release(&whole.data);
        gw__strbuf_release(&o.data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),         cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_sse_stream),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_trailer_limits),
        cmocka_unit_test(test_sticky),        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
