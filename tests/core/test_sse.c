/* test_sse.c — the Server-Sent Events parser (src/core/sse.c) against the
 * format's rules: line ends, fields, comments, multi-line data, what is
 * dispatched and what is not, streams split anywhere, the size limit and
 * stopping early. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sse.h"

#include <stdio.h>
#include <string.h>

typedef struct seen {
    int n;
    char type[8][48], id[8][48], data[8][128];
    int stop_after; /* 0: never stop */
} seen;

static bool collect(void *arg, const gw__sse_event *ev)
{
    seen *s = arg;
    assert_true(s->n < 8);
    assert_int_equal(strlen(ev->data), ev->data_len);
    strcpy(s->type[s->n], ev->type);
    strcpy(s->id[s->n], ev->id);
    snprintf(s->data[s->n], sizeof s->data[0], "%s", ev->data);
    s->n++;
    return !(s->stop_after && s->n >= s->stop_after);
}

/* Feeds text in pieces of step bytes (0: whole); returns the last code. */
static int feed(gw__sse_parser *p, const char *text, size_t step, seen *s)
{
    size_t len = strlen(text);
    if (!step)
        step = len ? len : 1;
    gw_error err;
    int rc = GW_OK;
    for (size_t off = 0; off < len && rc == GW_OK; off += step)
        rc = gw__sse_feed(p, text + off, len - off < step ? len - off : step, collect, s, &err);
    return rc;
}

static void fields_and_dispatch(void **state)
{
    (void)state;
    static const char stream[] = "retry: 2000\n"
                                 "\n"                       /* nothing: no data */
                                 ": a comment\n"
                                 "event: snapshot\n"
                                 "data: {\"a\":1}\n"
                                 "\n"
                                 "id: 42\n"
                                 "data:first\n"             /* no space: kept whole */
                                 "data:  two spaces\n"      /* one space dropped */
                                 "data\n"                   /* a name alone: empty line */
                                 "\n"
                                 "event: ignored\n"         /* no data: no event... */
                                 "\n"
                                 "data: x\n"                /* ...and the type is reset */
                                 "\n";
    for (size_t step = 0; step <= 5; step++) {
        gw__sse_parser p;
        gw__sse_init(&p, 0);
        seen s = {0};
        assert_int_equal(feed(&p, stream, step, &s), GW_OK);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.type[0], "snapshot");
        assert_string_equal(s.data[0], "{\"a\":1}");
        assert_string_equal(s.id[0], "");
        assert_string_equal(s.type[1], "message");
        assert_string_equal(s.id[1], "42");
        assert_string_equal(s.data[1], "first\n two spaces\n");
        assert_string_equal(s.type[2], "message");
        assert_string_equal(s.data[2], "x");
        gw__sse_release(&p);
    }
}

/* CRLF, CR and LF end lines alike, a CRLF split across feeds included. */
static void line_ends(void **state)
{
    (void)state;
    static const char *const streams[] = {
        "data: a\r\n\r\ndata: b\r\n\r\n",
        "data: a\r\rdata: b\r\r",
        "data: a\n\ndata: b\n\n",
        "data: a\r\n\ndata: b\n\r\n",
    };
    for (size_t i = 0; i < 4; i++)
        for (size_t step = 0; step <= 3; step++) {
            gw__sse_parser p;
            gw__sse_init(&p, 0);
            seen s = {0};
            assert_int_equal(feed(&p, streams[i], step, &s), GW_OK);
            assert_int_equal(s.n, 2);
            assert_string_equal(s.data[0], "a");
            assert_string_equal(s.data[1], "b");
            gw__sse_release(&p);
        }
}

/* An event's data over the limit fails the parser for good (until reset),
 * and so does a line over it; what came before was dispatched. */
static void limits(void **state)
{
    (void)state;
    gw__sse_parser p;
    gw__sse_init(&p, 16);
    seen s = {0};
    assert_int_equal(feed(&p, "data: ok\n\ndata: 0123456789\ndata: 0123456789\n\n", 0, &s),
                     GW_ERANGE);
    assert_int_equal(s.n, 1);
    assert_int_equal(feed(&p, "data: later\n\n", 0, &s), GW_ERANGE);
    assert_int_equal(s.n, 1);
    gw__sse_reset(&p);
    assert_int_equal(feed(&p, "data: later\n\n", 0, &s), GW_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(feed(&p, "data: 0123456789abcdefg", 4, &s), GW_ERANGE); /* one long line */
    gw__sse_release(&p);
}

/* The callback returning false stops the feed; long type and id are cut. */
static void stop_and_truncate(void **state)
{
    (void)state;
    gw__sse_parser p;
    gw__sse_init(&p, 0);
    seen s = {.stop_after = 1};
    char stream[512];
    snprintf(stream, sizeof stream, "event: %0100d\nid: %0100d\ndata: 1\n\ndata: 2\n\n", 7, 9);
    assert_int_equal(feed(&p, stream, 0, &s), GW_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(strlen(s.type[0]), 47);
    assert_int_equal(strlen(s.id[0]), 47);
    gw__sse_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_and_dispatch),
        cmocka_unit_test(line_ends),
        cmocka_unit_test(limits),
        cmocka_unit_test(stop_and_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
