/* upstream.h — the pool's HTTP/1.1 client to its children (model servers
 * on 127.0.0.1:PORT): one request at a time per connection, connections
 * kept alive and reused, answers streamed as they arrive.
 *
 * Owns: the request text sent to a child, reading an answer's head with
 * the one response grammar (gw_http_head_parse, place/daemon_client.h), and
 * the body's three framings: Content-Length, chunked (pool/chunked.h) and
 * "until the connection closes". Each part comes as a step that never
 * waits (the front's event loop waits on the socket between steps: a step
 * answers 1 when the socket has nothing for it yet) and, for the pool's own
 * checks, as a blocking call (the steps with a poll between them).
 *
 * Invariants:
 *  1. A step never blocks; a blocking call waits at most timeout_ms without
 *     a byte from the child (GW_ETIMEDOUT).
 *  2. An answer is reusable (its connection may carry the next request)
 *     only when its body was read to its framed end, the child did not say
 *     "close", and no byte beyond the body arrived.
 *  3. What the child sends is untrusted: a head over 16 KiB, a bad status
 *     line or header, or bad chunk framing is GW_EPARSE naming the part.
 */
#ifndef GW_POOL_UPSTREAM_H
#define GW_POOL_UPSTREAM_H

#include "place/daemon_client.h"
#include "pool/chunked.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts a connection to 127.0.0.1:port (non-blocking, TCP_NODELAY):
 * GW_OK connected, 1 in progress (*fd set: wait until it is writable, then
 * gw_upstream_connect_end), GW_ENOENT refused (nothing listens), GW_EIO. */
int gw_upstream_connect_start(uint32_t port, int *fd, gw_error *err);
/* The result of a connection in progress once fd is writable: GW_OK, or
 * GW_ENOENT / GW_EIO naming why (fd stays the caller's to close). */
int gw_upstream_connect_end(int fd, uint32_t port, gw_error *err);
/* Both, waiting at most timeout_ms: GW_OK, GW_ENOENT, GW_ETIMEDOUT, GW_EIO. */
int gw_upstream_connect(uint32_t port, int timeout_ms, int *fd, gw_error *err);

/* The request head: METHOD PATH HTTP/1.1, Host, Content-Length (when body
 * is not NULL), Content-Type / Accept when given; appended to out. */
void gw_upstream_request_head(gw_strbuf *out, const char *method, const char *path,
                              uint32_t port, const char *ctype, const char *accept,
                              bool has_body, size_t body_len);

/* Writes what fits of head then body, from *sent bytes on (advanced):
 * GW_OK all sent, 1 when the socket is full (wait until writable), GW_EIO
 * naming the failure (a reused connection the child had closed fails here
 * or at the first read). gw_upstream_send does it all, waiting. */
int gw_upstream_send_some(int fd, const char *head, size_t head_len, const char *body,
                          size_t len, size_t *sent, gw_error *err);
int gw_upstream_send(int fd, const char *head, size_t head_len, const char *body, size_t len,
                     int timeout_ms, gw_error *err);

typedef enum { GW_UP_LENGTH, GW_UP_CHUNKED, GW_UP_CLOSE, GW_UP_NONE } gw_upstream_framing;

typedef struct gw_upstream_answer {
    int fd;              /* borrowed */
    gw_http_head head;
    char ctype[128];     /* the Content-Type, "" when none */
    gw_upstream_framing framing;
    uint64_t left;       /* GW_UP_LENGTH: body bytes still to come */
    gw_chunked chunked;
    char *buf;           /* bytes read, not yet delivered: buf[off..len) */
    size_t len, off, cap;
    uint64_t received;   /* bytes read from the child in all */
    bool done;           /* the body has ended */
    bool extra;          /* bytes after the body: not reusable */
} gw_upstream_answer;

/* Starts reading an answer on fd (no I/O). Release with
 * gw_upstream_answer_release whatever happens next. */
void gw_upstream_answer_begin(gw_upstream_answer *a, int fd);

/* Reads the answer's head as far as the socket allows. GW_OK: a->head,
 * a->ctype and the framing are set; 1: wait until readable. Errors: GW_EIO
 * (the child closed before a whole head: a->received says whether any byte
 * came), GW_EPARSE / GW_ERANGE naming the bad part, GW_ENOMEM. */
int gw_upstream_head_step(gw_upstream_answer *a, gw_error *err);

/* gw_upstream_answer_begin, then the head, waiting up to timeout_ms
 * between bytes (GW_ETIMEDOUT). */
int gw_upstream_read_head(gw_upstream_answer *a, int fd, int timeout_ms, gw_error *err);

/* The next body bytes into out[cap] (cap > 0): GW_OK with *n > 0, or *n 0
 * and a->done at the end; 1: nothing yet, wait until readable. Errors as
 * the head step (a child that closes inside a framed body is GW_EIO
 * "closed mid-answer"). */
int gw_upstream_body_step(gw_upstream_answer *a, char *out, size_t cap, size_t *n,
                          gw_error *err);

/* Invariant 2. */
bool gw_upstream_reusable(const gw_upstream_answer *a);

void gw_upstream_answer_release(gw_upstream_answer *a);

#endif
