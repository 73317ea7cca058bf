/* chunked.h — an incremental decoder of the HTTP/1.1 chunked transfer
 * coding (RFC 9112 section 7.1), for the pool's upstream client: the
 * llama-server children answer a streamed completion as Server-Sent Events
 * in "Transfer-Encoding: chunked", and those answers are untrusted input.
 *
 * Owns: where the decoder is in the chunked-body grammar, the size of the
 * current chunk and how many of its data bytes are still to come, the
 * length of the line being read, the bytes of trailer section seen, and
 * the count of bytes consumed since gw_chunked_init (for messages). No
 * buffer and no allocation: the data comes back as views into the caller's
 * input, so the decoder costs nothing per byte of data beyond a copy the
 * caller chooses to make. The body's total size is the caller's to cap.
 *
 * Grammar (strict where RFC 9112 allows a choice):
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*"0" [ chunk-ext ] CRLF
 *   chunk-size   = 1*HEXDIG (either case, leading zeros allowed)
 *   chunk-ext    = BWS ";" then any visible text up to the CR (ignored)
 *   trailer line = 1*tchar ":" field text, CRLF (read and dropped)
 * Every line ends in CRLF: a bare LF, or a CR not followed by LF, is
 * refused, as is any control byte but HTAB in an extension or a trailer.
 *
 * Limits (all GW_EPARSE, the message naming the limit):
 *   GW_CHUNKED_MAX_CHUNK   a chunk over 1 GiB (refused as its size is read,
 *                          so the size arithmetic never overflows);
 *   GW_CHUNKED_MAX_LINE    a size line (with its extensions) or a trailer
 *                          line over 4096 bytes, CRLF not counted;
 *   GW_CHUNKED_MAX_TRAILER a trailer section over 8 KiB (its field lines
 *                          with their CRLFs; the final CRLF not counted).
 *
 * Invariants (gw_chunked_check; every call leaves the decoder valid):
 *  1. The state is one of the grammar's; a failed decoder stays failed and
 *     a finished one stays finished until gw_chunked_init.
 *  2. left <= size <= GW_CHUNKED_MAX_CHUNK; left > 0 exactly when the
 *     decoder is inside a chunk's data; line_len <= GW_CHUNKED_MAX_LINE;
 *     trailer_len <= GW_CHUNKED_MAX_TRAILER.
 *  3. A call never reads outside in[0..len), and the data it returns lies
 *     inside the bytes it reports consumed.
 *  4. Split-independence: the input split across calls in any way gives
 *     the same data (concatenated), the same result, the same total count
 *     of bytes consumed (on an error: the offset of the offending byte),
 *     and the same error message (which names the offending byte by that
 *     offset from the start of the chunked body).
 *
 * Worked example, the reading loop of a keep-alive client:
 *
 *     gw_chunked c;
 *     gw_chunked_init(&c);
 *     for (;;) {                         // buf[0..n): bytes after the head
 *         size_t used; const char *d; size_t dl;
 *         int rc = gw_chunked_next(&c, buf, n, &used, &d, &dl, &err);
 *         if (rc < 0) fail(err);
 *         deliver(d, dl);                // borrowed from buf
 *         buf += used; n -= used;
 *         if (rc == 1) break;            // buf[0..n): the next response
 *         if (n == 0) read_more(&buf, &n);
 *     }
 */
#ifndef GW_POOL_CHUNKED_H
#define GW_POOL_CHUNKED_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_CHUNKED_MAX_CHUNK (UINT64_C(1) << 30)
#define GW_CHUNKED_MAX_LINE 4096u
#define GW_CHUNKED_MAX_TRAILER 8192u

/* Embeddable: the caller allocates, gw_chunked_init initialises. The fields
 * are private (chunked.c reads and writes them; chunked.h invariant 2). */
typedef struct gw_chunked {
    uint8_t state;        /* where in the grammar (chunked.c's enum) */
    uint64_t size;        /* the current chunk's size (while its size line
                             is read: the digits so far) */
    uint64_t left;        /* data bytes of the current chunk still to come */
    uint32_t line_len;    /* bytes of the size or trailer line read so far */
    uint32_t trailer_len; /* bytes of the trailer section read so far */
    uint64_t pos;         /* bytes consumed since gw_chunked_init */
} gw_chunked;

/* Prepares c to decode one chunked body from its first byte. Cannot fail;
 * also the way to reuse a finished or failed decoder. */
void gw_chunked_init(gw_chunked *c);

/* Decodes the next part of in[0..len) (in may be NULL when len is 0).
 * Returns:
 *  - GW_OK after consuming *used bytes (0 < *used <= len, or 0 when len is
 *    0), with *data / *data_len the chunk data among them: a view into in
 *    (borrowed, valid while in is). At most one span of data comes back per
 *    call, so a call stops right after it; *data_len is 0 (and *data is in)
 *    when only framing was consumed. Call again with the rest.
 *  - 1 when the last chunk, its trailer section and the final CRLF have
 *    been consumed: *used stops right after the final CRLF (bytes after it
 *    belong to the next response on a keep-alive connection), *data_len is
 *    0. A finished decoder answers 1 with *used 0 until re-initialised.
 *  - GW_EPARSE with err naming what was wrong and its offset in the body
 *    (a bad hex digit, an empty chunk size, a chunk over
 *    GW_CHUNKED_MAX_CHUNK, a line over GW_CHUNKED_MAX_LINE, a bare LF or a
 *    CR without LF, no CRLF after a chunk's data, a bad trailer line, a
 *    trailer section over GW_CHUNKED_MAX_TRAILER, a control byte); *used is
 *    the count of bytes before the offending one (framing, so that the
 *    bytes consumed in all are the offset of the offending byte however
 *    the input was split), *data_len is 0. The decoder then stays failed:
 *    every later call answers GW_EPARSE, consuming nothing, until
 *    gw_chunked_init.
 * Never reads outside in[0..len). */
int gw_chunked_next(gw_chunked *c, const char *in, size_t len, size_t *used, const char **data,
                    size_t *data_len, gw_error *err);

/* Whether the whole chunked body has been consumed (the last call answered
 * 1). */
bool gw_chunked_done(const gw_chunked *c);

/* Whether c satisfies invariants 1-2; cheap, for assert(). */
bool gw_chunked_check(const gw_chunked *c);

#endif
