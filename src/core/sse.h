/* sse.h — an incremental parser of a Server-Sent Events stream (the
 * text/event-stream format of the WHATWG HTML standard, "Server-sent
 * events", 9.2.6), for clients that follow a daemon's /events.
 *
 * Owns: the bytes of an unfinished line and the fields of the event being
 * read (its type, id and data lines); nothing else.
 *
 * Format: lines end with CRLF, LF or CR; an empty line dispatches the
 * event; ":" starts a comment; "NAME: VALUE" (one space after the colon is
 * dropped; a line without a colon is a NAME with an empty value). "event"
 * sets the type (default "message"), "id" the id, each "data" line adds a
 * line to the data (joined by '\n'), "retry" is read by the caller's
 * transport if at all and ignored here, like any unknown name. An event
 * whose data is empty is not dispatched.
 *
 * Invariants:
 *  1. The stream is untrusted: a line, or an event's data, longer than
 *     max_event bytes fails the parser (GW_ERANGE) instead of growing; a
 *     failed parser stays failed until gw__sse_reset.
 *  2. An event reaches the callback whole: type and id NUL-terminated and
 *     truncated to their fields, data NUL-terminated, data_len bytes.
 *  3. Bytes may arrive split anywhere (a CRLF across two feeds included):
 *     the events dispatched are the same as for the stream in one piece.
 */
#ifndef GW_CORE_SSE_H
#define GW_CORE_SSE_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct gw__sse_event {
    char type[48]; /* "message" unless the stream named one */
    char id[48];   /* "" when none was given */
    const char *data;
    size_t data_len;
} gw__sse_event;

/* Called for each complete event; return false to stop feeding (the rest
 * of the bytes given to that feed are dropped). The event is valid only
 * during the call. */
typedef bool (*gw__sse_fn)(void *arg, const gw__sse_event *ev);

typedef struct gw__sse_parser {
    gw_strbuf line;  /* the unfinished line */
    gw_strbuf data;  /* data lines so far, each followed by '\n' */
    char type[48], id[48];
    size_t max_event;
    bool after_cr;   /* the last byte was CR: a following LF ends nothing */
    bool failed;
} gw__sse_parser;

/* An empty parser; lines and events of up to max_event bytes (0: 1 MiB).
 * Release with gw__sse_release. */
void gw__sse_init(gw__sse_parser *p, size_t max_event);
void gw__sse_release(gw__sse_parser *p);

/* Back to the start of a stream (a new connection): partial line and event
 * dropped, failure cleared. */
void gw__sse_reset(gw__sse_parser *p);

/* Feeds buf[0..n). Returns GW_OK, GW_ERANGE (invariant 1: err names the
 * limit) or GW_ENOMEM; after an error the parser is failed and every later
 * feed returns the same code without calling fn. */
int gw__sse_feed(gw__sse_parser *p, const char *buf, size_t n, gw__sse_fn fn, void *arg,
                 gw_error *err);

#endif
