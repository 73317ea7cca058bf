/* test_daemon_client.c — the daemon client's response parser (untrusted
 * input) and URL parser, and the plan mapping of remote.c:
 *  - a valid response parses, and every proper prefix of it is "incomplete"
 *    (1) or an error, never GW_OK and never a read past the prefix (each
 *    prefix is copied into an exact-size heap buffer so ASan catches it);
 *  - malformed heads, lengths, caps and trailing bytes are refused;
 *  - deterministic garbage never crashes and never parses as complete with a
 *    body outside the buffer;
 *  - the body framing the fleet's HTTP/1.0 client reads with: a body without
 *    Content-Length ends where the connection does, a Content-Length answer
 *    cut short by the close is refused, caps hold either way;
 *  - the head fields the pool's HTTP/1.1 client reads: "Transfer-Encoding:
 *    chunked" (alone, never with a Content-Length or in HTTP/1.0) accepted
 *    by the head parser and refused by the body framing, the Connection
 *    options and HTTP/1.0's default close, the Content-Type value's place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "place/daemon_client.h"
#include "place/remote.h"

static int parse_copy(const char *s, size_t len, gw_daemon_response *r)
{
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    memcpy(b, s, len);
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_daemon_response_parse(b, len, false, r, &err);
    if (rc < 0)
        assert_true(err.message[0] != '\0');
    free(b);
    return rc;
}

static void test_valid_and_prefixes(void **state)
{
    (void)state;
    /* odd spacing and case in Content-Length, an empty header value */
    char msg[256];
    const char *body = "{\"released\":1}";
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                     "content-length:  %zu \r\nX-A:\r\n\r\n%s", strlen(body), body);
    gw_daemon_response r;
    assert_int_equal(parse_copy(msg, (size_t)n, &r), GW_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, strlen(body));
    assert_string_equal(r.body, body);
    gw_daemon_response_release(&r);
    for (int k = 0; k < n; k++) {
        int rc = parse_copy(msg, (size_t)k, &r);
        assert_int_equal(rc, 1);
    }
    /* one byte more is trailing garbage */
    char more[300];
    memcpy(more, msg, (size_t)n);
    more[n] = 'x';
    assert_int_equal(parse_copy(more, (size_t)n + 1, &r), GW_EPARSE);
}

static void test_no_body_status(void **state)
{
    (void)state;
    gw_daemon_response r;
    static const char s[] = "HTTP/1.0 204\r\n\r\n";
    assert_int_equal(parse_copy(s, sizeof s - 1, &r), GW_OK);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.body, "");
    gw_daemon_response_release(&r);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "XTTP/1.1 200 OK\r\n",
        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 099 x\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 600 x\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12345678901\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\n : x\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\rc\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\tfolded\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_daemon_response r;
        int rc = parse_copy(bad[i], strlen(bad[i]), &r);
        if (rc == GW_OK)
            fail_msg("case %zu parsed: %s", i, bad[i]);
        if (i > 0)
            assert_true(rc < 0);
    }
    /* body over the cap */
    char big[128];
    int n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
                     GW_DAEMON_MAX_BODY + 1);
    gw_daemon_response r;
    assert_int_equal(parse_copy(big, (size_t)n, &r), GW_ERANGE);
    /* a head that never ends */
    size_t hl = GW_DAEMON_MAX_HEAD + 10;
    char *head = malloc(hl);
    assert_non_null(head);
    memcpy(head, "HTTP/1.1 200 OK\r\n", 17);
    memset(head + 17, 'a', hl - 17);
    assert_int_equal(parse_copy(head, hl, &r), GW_ERANGE);
    free(head);
}

static void test_garbage(void **state)
{
    (void)state;
    static const char alphabet[] = "HTP/1. 0234\r\n:Content-Length;xa\t\x01";
    uint32_t x = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[96];
        size_t len = 0;
        /* half start with a valid prefix so the head parser is reached */
        if (iter & 1) {
            memcpy(buf, "HTTP/1.1 200 ", 13);
            len = 13;
        }
        size_t want = len + (x % (sizeof buf - len));
        while (len < want) {
            x = x * 1103515245u + 12345u;
            buf[len++] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        gw_daemon_response r;
        int rc = parse_copy(buf, len, &r);
        assert_true(rc == 1 || rc < 0 || rc == GW_OK);
        if (rc == GW_OK) {
            assert_true(r.body_len <= len);
            gw_daemon_response_release(&r);
        }
    }
}

static void test_url(void **state)
{
    (void)state;
    gw_daemon_url u;
    gw_error err;
    assert_int_equal(gw_daemon_url_parse("http://127.0.0.1:19400", &u, &err), GW_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "19400");
    assert_int_equal(gw_daemon_url_parse("http://[::1]:80/", &u, &err), GW_OK);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.text, "http://[::1]:80");
    static const char *const bad[] = {"https://127.0.0.1:1", "http://127.0.0.1", "http://:80",
                                      "http://h:0", "http://h:65536", "http://h:80/x",
                                      "http://u@h:80", "127.0.0.1:80", "http://[::1:80",
                                      "http://h: 80", "http://h:80 ", "http://h:+80",
                                      "http://h:-1", "http://h:0x50"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_error_clear(&err);
        if (gw_daemon_url_parse(bad[i], &u, &err) != GW_EINVAL)
            fail_msg("URL accepted: %s", bad[i]);
        assert_true(err.message[0] != '\0');
    }
}

/* The Host header names an IPv6 daemon in brackets (issue 12: it sent
 * "Host: ::1:PORT"); the default URL is the default port. */
static void test_host_header(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
    } cases[] = {
        {"http://[::1]:19400", "[::1]:19400"},
        {"http://[::ffff:127.0.0.1]:8/", "[::ffff:127.0.0.1]:8"},
        {"http://127.0.0.1:19400", "127.0.0.1:19400"},
        {"http://localhost:1", "localhost:1"},
        {GW_DAEMON_DEFAULT_URL, "127.0.0.1:" GW_DEFAULT_PORT_STR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_daemon_url u;
        gw_error err;
        assert_int_equal(gw_daemon_url_parse(cases[i].url, &u, &err), GW_OK);
        char a[300];
        assert_string_equal(gw_daemon_authority(&u, a, sizeof a), cases[i].host);
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        gw_daemon_request_text(&sb, &u, "GET", "/health", NULL, NULL, 0);
        assert_false(sb.failed);
        char want[400];
        snprintf(want, sizeof want, "GET /health HTTP/1.0\r\nHost: %s\r\n", cases[i].host);
        assert_memory_equal(sb.data, want, strlen(want));
        assert_non_null(strstr(sb.data, "\r\n\r\n"));
        gw__strbuf_release(&sb);
    }
    assert_int_equal(GW_DEFAULT_PORT, 19400);
}

static void test_error_message(void **state)
{
    (void)state;
    char b[64];
    gw_daemon_response r = {.status = 401,
                            .body = (char *)"{\"error\":{\"code\":401,\"message\":\"needs \\\"token\\\"\"}}"};
    assert_string_equal(gw_daemon_error_message(&r, b, sizeof b), "needs \"token\"");
    r.body = (char *)"plain\ntext";
    assert_string_equal(gw_daemon_error_message(&r, b, sizeof b), "plain");
}

static void test_plan_mapping(void **state)
{
    (void)state;
    gw_place_device devs[2] = {0};
    strcpy(devs[0].uuid, "GPU-a");
    strcpy(devs[1].uuid, "GPU-b");
    static const char plan[] =
        "{\"fits\":true,\"partial\":false,\"policy\":\"best-fit\",\"reason\":null,"
        "\"need_bytes\":100,\"gpu_bytes\":120,\"host_bytes\":0,\"n_layers\":10,\"ngl\":10,"
        "\"tensor_split\":[4,6],\"devices\":[{\"index\":1,\"uuid\":\"GPU-b\",\"bytes\":50,"
        "\"usable_bytes\":60,\"layers\":4,\"first_layer\":0},{\"index\":0,\"uuid\":\"GPU-a\","
        "\"bytes\":70,\"usable_bytes\":80,\"layers\":6,\"first_layer\":4}],"
        "\"excluded\":[]}";
    gw_plan p;
    gw_plan_init(&p);
    gw_error err;
    assert_int_equal(gw_place_remote_plan_from_json(plan, sizeof plan - 1, devs, 2, &p, &err),
                     GW_OK);
    assert_true(p.fits);
    assert_int_equal(p.n_used, 2);
    assert_int_equal(p.used[0].device, 1);
    assert_int_equal(p.used[0].n_units, 4);
    assert_int_equal(p.used[1].device, 0);
    assert_int_equal(p.used[1].bytes, 70);
    assert_int_equal(p.ngl, 10);
    /* a device this host does not list */
    strcpy(devs[1].uuid, "GPU-c");
    assert_int_equal(gw_place_remote_plan_from_json(plan, sizeof plan - 1, devs, 2, &p, &err),
                     GW_EPARSE);
    assert_non_null(strstr(err.message, "GPU-b"));
    assert_int_equal(gw_place_remote_plan_from_json("[1]", 3, devs, 2, &p, &err), GW_EPARSE);
    gw_plan_release(&p);
}

/* frame(): the head of s parsed, then its body framed as the plain client
 * does (length not required). */
static int frame(const char *s, bool eof, size_t cap, size_t *body_len)
{
    gw_http_head h;
    gw_error err;
    gw_error_clear(&err);
    size_t len = strlen(s);
    int rc = gw_http_head_parse(s, len, &h, &err);
    if (rc != GW_OK)
        return rc;
    *body_len = (size_t)-1;
    rc = gw_http_body_frame(len, &h, eof, cap, body_len, &err);
    if (rc < 0)
        assert_true(err.message[0] != '\0');
    if (rc == GW_OK)
        assert_true(h.head_len + *body_len == len);
    return rc;
}

static void test_body_framing(void **state)
{
    (void)state;
    size_t n;
    /* HTTP/1.0 without a length (Go's net/http past its buffer): the body is
     * what came before the close; before the close, read on */
    const char *eof = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
    assert_int_equal(frame(eof, false, 100, &n), 1);
    assert_int_equal(frame(eof, true, 100, &n), GW_OK);
    assert_int_equal(n, 7);
    assert_int_equal(frame(eof, true, 6, &n), GW_ERANGE);  /* over the cap */
    gw_daemon_response r; /* the daemon client reads it so too */
    assert_int_equal(parse_copy(eof, strlen(eof), &r), 1);
    char *b = strdup(eof);
    gw_error err;
    assert_int_equal(gw_daemon_response_parse(b, strlen(b), true, &r, &err), GW_OK);
    assert_string_equal(r.body, "{\"a\":1}");
    gw_daemon_response_release(&r);
    free(b);
    assert_int_equal(frame(eof, false, 6, &n), GW_ERANGE); /* known before the close */
    /* a Content-Length answer: complete without waiting for the close ... */
    const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    assert_int_equal(frame(cl, false, 100, &n), GW_OK);
    assert_int_equal(n, 2);
    /* ... and refused when the connection closes before its end */
    const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
    assert_int_equal(frame(cut, false, 100, &n), 1);
    assert_int_equal(frame(cut, true, 100, &n), GW_EPARSE);
    /* a length over the cap is refused before any of the body is read */
    assert_int_equal(frame("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", false, 4096, &n),
                     GW_ERANGE);
    /* 204 has no body even without a length and with the connection open */
    assert_int_equal(frame("HTTP/1.1 204 No Content\r\n\r\n", false, 100, &n), GW_OK);
    assert_int_equal(n, 0);
    /* a 204 / 304 has no body whatever its length says; a 1xx is no answer */
    assert_int_equal(frame("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false, 100, &n),
                     GW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(frame("HTTP/1.1 100 Continue\r\n\r\n", true, 100, &n), GW_EPARSE);
    /* chunked coding is refused, in any case */
    assert_int_equal(frame("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}", true,
                           100, &n), GW_EPARSE);
}

/* head(): s parsed as a head (an exact-size copy, so ASan sees a read past
 * it); every proper prefix of an accepted head is incomplete. */
static int head(const char *s, gw_http_head *h, gw_error *err)
{
    size_t len = strlen(s);
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    memcpy(b, s, len);
    gw_error_clear(err);
    int rc = gw_http_head_parse(b, len, h, err);
    if (rc < 0)
        assert_true(err->message[0] != '\0');
    if (rc == GW_OK)
        for (size_t k = 0; k < len; k++) {
            gw_http_head p;
            assert_int_equal(gw_http_head_parse(b, k, &p, err), 1);
        }
    free(b);
    return rc;
}

static void test_head_chunked(void **state)
{
    (void)state;
    gw_http_head h;
    gw_error err;
    static const char *const ok[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding:  CHUNKED \t\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: Chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(head(ok[i], &h, &err), GW_OK);
        assert_true(h.chunked);
        assert_false(h.has_length);
        assert_false(h.close);
        /* ... and every reader built on the body framing refuses it */
        size_t n = 99;
        gw_error_clear(&err);
        assert_int_equal(gw_http_body_frame(strlen(ok[i]) + 5, &h, true, 100, &n, &err),
                         GW_EPARSE);
        assert_non_null(strstr(err.message, "chunked transfer coding is not accepted"));
        gw_daemon_response r;
        char body[256];
        int len = snprintf(body, sizeof body, "%s2\r\n{}\r\n0\r\n\r\n", ok[i]);
        gw_error_clear(&err);
        assert_int_equal(gw_daemon_response_parse(body, (size_t)len, true, &r, &err), GW_EPARSE);
        assert_non_null(strstr(err.message, "chunked"));
    }
    static const struct {
        const char *head, *says;
    } bad[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "'gzip' is not supported"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "not supported"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "not supported"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "not supported"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunkedx\r\n\r\n", "not supported"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", "not supported"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Transfer-Encoding twice"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
         "both Transfer-Encoding: chunked and Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
         "both Transfer-Encoding: chunked and Content-Length"},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (head(bad[i].head, &h, &err) != GW_EPARSE)
            fail_msg("head accepted: %s", bad[i].head);
        if (!strstr(err.message, bad[i].says))
            fail_msg("'%s' does not say '%s'", err.message, bad[i].says);
    }
}

static void test_head_close(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        bool close;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nconnection:CLOSE \r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: closed, x-close\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: ,,\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", true},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive , close\r\n\r\n", true},
        {"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\n\r\n", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_http_head h;
        gw_error err;
        assert_int_equal(head(cases[i].head, &h, &err), GW_OK);
        if (h.close != cases[i].close)
            fail_msg("close %d for: %s", h.close, cases[i].head);
    }
}

static void test_head_content_type(void **state)
{
    (void)state;
    gw_http_head h;
    gw_error err;
    const char *s = "HTTP/1.1 200 OK\r\nX-A: b\r\ncontent-type:  application/json; "
                    "charset=utf-8 \t\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(head(s, &h, &err), GW_OK);
    assert_int_equal(h.ctype_off, strstr(s, "application/json") - s);
    assert_int_equal(h.ctype_len, strlen("application/json; charset=utf-8"));
    assert_memory_equal(s + h.ctype_off, "application/json; charset=utf-8", h.ctype_len);
    /* absent: 0/0 */
    assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &h, &err), GW_OK);
    assert_int_equal(h.ctype_off, 0);
    assert_int_equal(h.ctype_len, 0);
    /* empty: present, of length 0 */
    s = "HTTP/1.1 200 OK\r\nContent-Type:\r\n\r\n";
    assert_int_equal(head(s, &h, &err), GW_OK);
    assert_int_equal(h.ctype_off, strlen("HTTP/1.1 200 OK\r\nContent-Type:"));
    assert_int_equal(h.ctype_len, 0);
    /* the last header, an event stream */
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n";
    assert_int_equal(head(s, &h, &err), GW_OK);
    assert_int_equal(h.ctype_len, 17);
    assert_memory_equal(s + h.ctype_off, "text/event-stream", 17);
    /* twice is ambiguous */
    assert_int_equal(head("HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
                          &h, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "Content-Type twice"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_prefixes), cmocka_unit_test(test_no_body_status),
        cmocka_unit_test(test_refused),            cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_url),                cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_host_header),        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_plan_mapping),       cmocka_unit_test(test_head_chunked),
        cmocka_unit_test(test_head_close),         cmocka_unit_test(test_head_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
