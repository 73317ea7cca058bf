/* plain_http.h — one HTTP/1.0 request to a literal IP address over a
 * non-blocking socket, advanced by fetch.c's poll loop: how fetch talks to
 * every http:// URL whose host is an IPv4 address or a [IPv6] one.
 *
 * Why not libcurl for those: loading libcurl costs a one-shot `report
 * --cluster` about 5 ms (its 30 libraries, curl_lib.h), more than a whole
 * poll of a rack's peers. HTTPS and host names (a resolver that may block)
 * stay with libcurl; a numeric http:// peer or Prometheus needs neither.
 * Why HTTP/1.0: the server ends the body with a Content-Length or by
 * closing the connection; it never sends chunked coding or keeps the
 * connection open. The response is untrusted: its head goes through the one
 * HTTP head parser (place/daemon_client.h) and its body is capped.
 *
 * Owns: the socket and the request text of one transfer; the answer goes
 * into the caller's gw__fetch (body, status, rc, error).
 * Invariants:
 *  1. fd >= 0 exactly while the transfer runs; gw__plain_http_close closes
 *     it, and any step that ends the transfer closes it too.
 *  2. An ended transfer has v->rc set: GW_OK with a status and the body
 *     alone (the head removed) in v->body, or < 0 with v->error saying why.
 *  3. v->body never holds more than GW_DAEMON_MAX_HEAD + max_body bytes.
 */
#ifndef GW_FLEET_PLAIN_HTTP_H
#define GW_FLEET_PLAIN_HTTP_H

#include "fleet/fetch.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct gw__plain_http {
    int fd;           /* -1: not running */
    bool connected;
    gw_strbuf req;    /* the request, sent up to sent */
    size_t sent;
    size_t max_body;
} gw__plain_http;

/* True when url is http://IPV4[:PORT][/...] or http://[IPV6][:PORT][/...]
 * (what this module serves); false for anything else (libcurl's). */
bool gw__plain_http_handles(const char *url);

/* Starts v's request (v->url must satisfy gw__plain_http_handles): builds
 * it (v->token as a bearer token, v->post as the body) and connects.
 * Returns true while it runs (wait for gw__plain_http_events on p->fd),
 * false when it has already ended (v->rc says how: refused at once, out of
 * memory). */
bool gw__plain_http_start(gw__plain_http *p, gw__fetch *v, size_t max_body);

/* The poll events p waits for: POLLOUT while connecting and sending,
 * POLLIN after. */
short gw__plain_http_events(const gw__plain_http *p);

/* Advances p after poll reported revents on p->fd. Returns true when the
 * transfer has ended (invariant 2), false while it runs. */
bool gw__plain_http_step(gw__plain_http *p, gw__fetch *v, short revents);

/* Ends a running transfer without an answer (its deadline or the straggler
 * rule): closes the socket, frees the request; v is the caller's to fill.
 * A no-op on an ended one. */
void gw__plain_http_close(gw__plain_http *p);

#endif
