/* daemon_client.h — a minimal HTTP/1.0 client for the gpuwatch daemon, so
 * `gpuwatch run` / `place` can reserve through `gpuwatch serve` when one runs
 * (no libcurl: it would drag a TLS stack into every command).
 *
 * Scope: plain TCP to "http://HOST:PORT" where HOST resolves to a loopback
 * address (the daemon's placement API is meant for this machine; anything
 * else is refused, so a token never leaves the host in clear text; model
 * servers may be elsewhere: any_host). One request per connection (a
 * request body with its Content-Length), an optional "Authorization:
 * Bearer TOKEN"; the answer's body ends at its Content-Length or where the
 * connection does. Every
 * connect / write / read waits at most the deadline (poll). HTTP/1.0, so
 * that no server answers in chunked coding: Go's net/http (Ollama) does
 * for an HTTP/1.1 request whose answer outgrows its 2 KB buffer, and ends
 * the body by closing the connection for an HTTP/1.0 one.
 *
 * The response is untrusted input: gw_http_head_parse and
 * gw_http_body_frame are strict and bounds-checked (status line "HTTP/1.x
 * NNN ...", CRLF header lines, a Content-Length unique and decimal, or the
 * body ending with the connection; headers at most 16 KiB, body at most
 * GW_DAEMON_MAX_BODY here). The fleet's HTTP/1.0 client
 * (fleet/plain_http.h) reads with the same two. The head grammar also
 * reads "Transfer-Encoding: chunked" (for the pool's HTTP/1.1 client,
 * which decodes such a body with pool/chunked.h), but gw_http_body_frame
 * refuses a chunked head, so every reader built on it takes no chunked
 * body.
 *
 * Invariants:
 *  1. No global state; each call owns its socket and closes it.
 *  2. On failure err names what was wrong (the URL, the syscall, the part of
 *     the response); a gw_daemon_response is filled only on GW_OK.
 */
#ifndef GW_PLACE_DAEMON_CLIENT_H
#define GW_PLACE_DAEMON_CLIENT_H

#include "core/model.h"
#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_DAEMON_DEFAULT_URL "http://" GW_DEFAULT_LISTEN
#define GW_DAEMON_MAX_BODY (1u << 20)
#define GW_DAEMON_MAX_HEAD (16u << 10)

typedef struct gw_daemon_url {
    char host[256];
    char port[8];
    char text[300]; /* "http://HOST:PORT" as given (for messages) */
    bool any_host;  /* false (as parsed): loopback only. A caller that never
                       sends a token (model servers) may set it */
} gw_daemon_url;

typedef struct gw_daemon_response {
    int status;   /* 100..599 */
    char *body;   /* heap, NUL-terminated (body_len bytes before the NUL) */
    size_t body_len;
} gw_daemon_response;

/* Parses "http://HOST:PORT" (HOST: name, IPv4, or [IPv6]; PORT 1..65535;
 * an optional trailing "/"). GW_EINVAL naming the URL otherwise.
 * out->any_host is false. */
int gw_daemon_url_parse(const char *text, gw_daemon_url *out, gw_error *err);

/* "HOST:PORT" of u as an HTTP Host header and messages write it: an IPv6
 * address in brackets ("[::1]:19400", RFC 7230 5.4 / RFC 3986 3.2.2),
 * anything else as is. Into buf[cap] (truncated, always terminated);
 * returns buf. */
const char *gw_daemon_authority(const gw_daemon_url *u, char *buf, size_t cap);

typedef struct gw_http_head {
    int status;          /* 100..599 */
    size_t head_len;     /* bytes up to and including the empty line */
    bool has_length;     /* a Content-Length was given ... */
    uint64_t length;     /* ... and said this */
    bool chunked;        /* "Transfer-Encoding: chunked" (never with has_length) */
    bool close;          /* the server closes after this answer: a "close"
                            Connection option, or an HTTP/1.0 status line
                            without a "keep-alive" one */
    size_t ctype_off;    /* the Content-Type value (OWS trimmed) is
                            buf[ctype_off..+ctype_len); 0/0 when absent */
    size_t ctype_len;
} gw_http_head;

/* Parses the head of a response at the start of buf[0..len) (the one
 * grammar every client here reads: status line, CRLF header lines,
 * Content-Length at most once and decimal; Transfer-Encoding at most once
 * and exactly "chunked" (case-insensitive), never with a Content-Length
 * nor in an HTTP/1.0 answer (RFC 9112 6.1); Content-Type at most once;
 * Connection a comma-separated list of options; the head at most
 * GW_DAEMON_MAX_HEAD bytes). Returns GW_OK with *h filled, 1 when the head
 * is not complete yet, GW_EPARSE naming the offending part (any other
 * Transfer-Encoding included), GW_ERANGE for a head over its cap. Never
 * reads outside buf; does not look at the body. */
int gw_http_head_parse(const char *buf, size_t len, gw_http_head *h, gw_error *err);

/* Where the body of a response of len bytes so far ends, given its parsed
 * head h: a chunked head is GW_EPARSE (chunked coding is not accepted by
 * this reader; the pool decodes it itself, pool/chunked.h); with a
 * Content-Length, exactly that many bytes after the head;
 * without one, everything after the head once the connection has closed
 * (eof: how an HTTP/1.0 answer may end); a 204 / 304 has none whatever a
 * length says, and a 1xx (never an answer to HTTP/1.0) is GW_EPARSE. Returns GW_OK with *body_len
 * (the body starts at h->head_len), 1 when more must be read, GW_ERANGE when
 * the body is or will be over max_body, GW_EPARSE for bytes after the body
 * or a connection closed before its end. */
int gw_http_body_frame(size_t len, const gw_http_head *h, bool eof, size_t max_body,
                       size_t *body_len, gw_error *err);

/* Parses one complete response in buf[0..len) (eof: the connection has
 * closed after it, which ends a body that has no Content-Length, as in an
 * answer to HTTP/1.0). Returns GW_OK with *out filled (caller releases), 1
 * when buf is a valid but incomplete prefix (read more), GW_EPARSE naming
 * the offending part, GW_ERANGE when the head or the body is over its cap.
 * Never reads outside buf. */
int gw_daemon_response_parse(const char *buf, size_t len, bool eof, gw_daemon_response *out,
                             gw_error *err);

/* Frees the body; NULL and a cleared response are no-ops. */
void gw_daemon_response_release(gw_daemon_response *r);

/* Sends METHOD PATH (PATH starts with '/') with body[0..len) (JSON; NULL: no
 * body) and token (NULL/empty: none), waits for the whole response at most
 * timeout_ms per step. Errors: GW_ENOENT when nothing listens (connection
 * refused), GW_EPERM when HOST is not a loopback address, GW_ETIMEDOUT,
 * GW_EIO (socket errors), and GW_EPARSE / GW_ERANGE when what came back is
 * not one complete HTTP response within the caps (the parser's errors, and
 * a connection closed before the end). *out is filled only on GW_OK
 * (caller releases). */
int gw_daemon_request(const gw_daemon_url *u, const char *method, const char *path,
                      const char *token, const char *body, size_t len, int timeout_ms,
                      gw_daemon_response *out, gw_error *err);

/* Appends the whole request gw_daemon_request sends (head and body) to req
 * (caller's strbuf; check req->failed). Exposed for tests. */
void gw_daemon_request_text(gw_strbuf *req, const gw_daemon_url *u, const char *method,
                            const char *path, const char *token, const char *body, size_t len);

/* Opens a Server-Sent Events stream: GET PATH over HTTP/1.0 (so the body
 * is the raw stream until the daemon closes it, no chunked coding) with
 * "Accept: text/event-stream" and token (NULL/empty: none); waits at most
 * timeout_ms per step for the response head, which must say 200 and
 * text/event-stream. On GW_OK *fd_out is the connected non-blocking
 * socket (caller closes; read it as the stream) and the body bytes that
 * came with the head are appended to early. Errors as gw_daemon_request,
 * GW_EIO naming a status other than 200, GW_EPARSE for a head that is not
 * an event stream's; *fd_out is -1 then. */
int gw_daemon_stream_open(const gw_daemon_url *u, const char *path, const char *token,
                          int timeout_ms, int *fd_out, gw_strbuf *early, gw_error *err);

/* The "message" of the daemon's error body {"error":{"code":..,"message":..}}
 * copied into buf (the body itself, shortened, when it is not that shape). */
const char *gw_daemon_error_message(const gw_daemon_response *r, char *buf, size_t cap);

#endif
