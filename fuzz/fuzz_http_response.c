/* fuzz_http_response.c — libFuzzer target for the one HTTP response
 * grammar (src/place/daemon_client.c: gw_http_head_parse,
 * gw_http_body_frame, gw_daemon_response_parse), which both the daemon
 * client and the fleet's plain HTTP/1.0 client (src/fleet/plain_http.c)
 * read untrusted answers with. For any bytes:
 *  - a head that parses lies inside the input, with a status in 100..599;
 *    every shorter prefix of it reads as incomplete (1), so reading in
 *    pieces, as the clients do, finds the same head;
 *  - a framed body lies inside the input and within the cap; reading on
 *    (not eof) never frames a body an eof read would not, and a
 *    Content-Length answer frames the same with or without eof;
 *  - gw_daemon_response_parse agrees with the framing it is built on;
 *  - the fields the pool's upstream reads (src/pool/upstream.c): chunked
 *    never with a Content-Length, and then never framed by
 *    gw_http_body_frame; a Content-Type value lies inside the head.
 * Built by scripts/fuzz-http-response.sh; its corpus
 * (tests/place/corpus/fuzz_http_response) replays as a normal test. */
#include "place/daemon_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: the sanitizers catch any read past it */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    gw_error err;
    gw_http_head h;
    int rc = gw_http_head_parse(buf, size, &h, &err);
    if (rc == GW_OK) {
        if (h.head_len > size || h.head_len < 12 || h.status < 100 || h.status > 599)
            abort();
        if (h.chunked && h.has_length)
            abort();
        if ((h.ctype_off || h.ctype_len) && h.ctype_off + h.ctype_len > h.head_len)
            abort();
        for (size_t k = 0; k < h.head_len; k += 1 + k / 8) {
            gw_http_head p;
            if (gw_http_head_parse(buf, k, &p, &err) != 1)
                abort();
        }
        size_t more = 0, eof = 0;
        int r_more = gw_http_body_frame(size, &h, false, CAP, &more, &err);
        int r_eof = gw_http_body_frame(size, &h, true, CAP, &eof, &err);
        if ((r_more == GW_OK && h.head_len + more > size) || (r_eof == GW_OK && h.head_len + eof > size) ||
            (r_more == GW_OK && more > CAP) || (r_eof == GW_OK && eof > CAP))
            abort();
        if (r_more == GW_OK && (r_eof != GW_OK || eof != more))
            abort();
        if (h.chunked && (r_more == GW_OK || r_eof == GW_OK))
            abort();
        if (h.has_length && r_eof == GW_OK && (r_more != GW_OK || more != eof))
            abort();
        gw_daemon_response r;
        size_t strict = 0;
        bool closed = size & 1; /* either way, by the input's length */
        int r_strict = gw_http_body_frame(size, &h, closed, GW_DAEMON_MAX_BODY, &strict, &err);
        int r_parse = gw_daemon_response_parse(buf, size, closed, &r, &err);
        if (r_parse != r_strict)
            abort();
        if (r_parse == GW_OK) {
            if (r.body_len != strict || memcmp(r.body, buf + h.head_len, strict) != 0 ||
                r.body[strict] != '\0' || r.status != h.status)
                abort();
            gw_daemon_response_release(&r);
        }
    } else if (rc != 1 && rc != GW_EPARSE && rc != GW_ERANGE) {
        abort();
    }
    free(buf);
    return 0;
}
