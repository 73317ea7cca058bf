/* chunked.c — see chunked.h: the chunked transfer coding decoded one byte
 * of framing at a time, the chunk data handed back as views.
 *
 * Owns: the state machine below and its messages; nothing is allocated and
 * nothing outside the gw_chunked is written but the caller's out-params.
 *
 * Invariants (chunked.h 1-4, and how this file keeps them):
 *  1. Framing bytes go through frame_byte() one at a time, and a chunk's
 *     data is taken as min(left, bytes at hand): neither looks at where the
 *     caller's input was split, which is what makes any split give the
 *     same result (chunked.h invariant 4).
 *  2. The offset a message names is pos + the index in this call, counted
 *     from the first byte of the body, so it too is split-independent.
 *  3. Sizes: a size digit is added only while the size stays at most
 *     GW_CHUNKED_MAX_CHUNK (2^30), so size * 16 + 15 < 2^35 never overflows;
 *     line_len and trailer_len are checked against their caps before they
 *     grow past them.
 *  4. Any error moves the decoder to CK_FAILED, which answers every later
 *     call with GW_EPARSE; CK_DONE answers 1 and consumes nothing.
 *
 * Transitions (state, byte -> state; the function doing it):
 *   CK_SIZE     HEXDIG -> CK_SIZE; BWS -> CK_SIZE_WS; ";" -> CK_EXT;
 *               CR -> CK_SIZE_LF (all needing a digit first)   size_byte
 *   CK_SIZE_WS  BWS -> CK_SIZE_WS; ";" -> CK_EXT; CR -> CK_SIZE_LF
 *                                                               size_byte
 *   CK_EXT      text -> CK_EXT; CR -> CK_SIZE_LF                size_byte
 *   CK_SIZE_LF  LF -> CK_DATA (size > 0) or CK_TRAILER (size 0) frame_byte
 *   CK_DATA     data bytes -> CK_DATA_CR when left reaches 0 gw_chunked_next
 *   CK_DATA_CR  CR -> CK_DATA_LF                                frame_byte
 *   CK_DATA_LF  LF -> CK_SIZE                                   frame_byte
 *   CK_TRAILER  CR -> CK_FINAL_LF; tchar -> CK_TNAME         trailer_byte
 *   CK_TNAME    tchar -> CK_TNAME; ":" -> CK_TVALUE            trailer_byte
 *   CK_TVALUE   text -> CK_TVALUE; CR -> CK_TRAILER_LF         trailer_byte
 *   CK_TRAILER_LF LF -> CK_TRAILER                             trailer_byte
 *   CK_FINAL_LF LF -> CK_DONE                                   frame_byte
 *   any other byte                 -> CK_FAILED            gw_chunked_next
 */
#include "pool/chunked.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

enum {
    CK_SIZE,
    CK_SIZE_WS,
    CK_EXT,
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TRAILER,
    CK_TNAME,
    CK_TVALUE,
    CK_TRAILER_LF,
    CK_FINAL_LF,
    CK_DONE,
    CK_FAILED,
};

void gw_chunked_init(gw_chunked *c)
{
    memset(c, 0, sizeof *c);
    c->state = CK_SIZE;
}

bool gw_chunked_done(const gw_chunked *c)
{
    return c->state == CK_DONE;
}

bool gw_chunked_check(const gw_chunked *c)
{
    if (!c || c->state > CK_FAILED)
        return false;
    if (c->left > c->size || c->size > GW_CHUNKED_MAX_CHUNK)
        return false;
    if ((c->left > 0) != (c->state == CK_DATA))
        return false;
    return c->line_len <= GW_CHUNKED_MAX_LINE && c->trailer_len <= GW_CHUNKED_MAX_TRAILER;
}

static bool is_tchar(unsigned char b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
           (b && strchr("!#$%&'*+-.^_`|~", b));
}

/* Visible text of an extension or a trailer value: no control byte but HTAB. */
static bool is_text(unsigned char b)
{
    return b == '\t' || (b >= 0x20 && b != 0x7f);
}

static int hex_value(unsigned char b)
{
    if (b >= '0' && b <= '9')
        return b - '0';
    if (b >= 'a' && b <= 'f')
        return b - 'a' + 10;
    if (b >= 'A' && b <= 'F')
        return b - 'A' + 10;
    return -1;
}

/* A byte for a message: 'x' when printable, 0xNN otherwise. */
static const char *show(unsigned char b, char buf[8])
{
    if (b > 0x20 && b < 0x7f && b != '\'')
        snprintf(buf, 8, "'%c'", b);
    else
        snprintf(buf, 8, "0x%02x", b);
    return buf;
}

/* A byte that ends nothing where it stands: bare LF, or anything else the
 * caller did not expect (what names it). */
static int refuse(unsigned char b, const char *what, uint64_t at, gw_error *err)
{
    char s[8];
    if (b == '\n')
        return gw__error_set(err, GW_EPARSE, "chunked body: bare LF at byte %llu (lines end "
                                             "in CRLF)", (unsigned long long)at);
    return gw__error_set(err, GW_EPARSE, "chunked body: %s %s at byte %llu", show(b, s), what,
                         (unsigned long long)at);
}

/* One byte of a chunk size line (CK_SIZE, CK_SIZE_WS, CK_EXT). */
static int size_byte(gw_chunked *c, unsigned char b, uint64_t at, gw_error *err)
{
    if (b == '\r') {
        if (c->state == CK_SIZE && c->line_len == 0)
            return gw__error_set(err, GW_EPARSE, "chunked body: empty chunk size at byte %llu",
                                 (unsigned long long)at);
        c->state = CK_SIZE_LF;
        return GW_OK;
    }
    if (c->line_len == GW_CHUNKED_MAX_LINE)
        return gw__error_set(err, GW_EPARSE, "chunked body: chunk size line over %u bytes at "
                                             "byte %llu", GW_CHUNKED_MAX_LINE,
                             (unsigned long long)at);
    if (c->state == CK_EXT) {
        if (!is_text(b))
            return refuse(b, "(a control byte) in a chunk extension", at, err);
    } else if (b == ';') {
        if (c->line_len == 0)
            return gw__error_set(err, GW_EPARSE, "chunked body: empty chunk size at byte %llu",
                                 (unsigned long long)at);
        c->state = CK_EXT;
    } else if (b == ' ' || b == '\t') {
        if (c->line_len == 0)
            return gw__error_set(err, GW_EPARSE, "chunked body: empty chunk size at byte %llu",
                                 (unsigned long long)at);
        c->state = CK_SIZE_WS;
    } else if (c->state == CK_SIZE_WS) {
        return refuse(b, "after a chunk size (expected ';' or CRLF)", at, err);
    } else {
        int d = hex_value(b);
        if (d < 0)
            return refuse(b, "is not a hex digit in a chunk size", at, err);
        uint64_t size = c->size * 16 + (uint64_t)d;
        if (size > GW_CHUNKED_MAX_CHUNK)
            return gw__error_set(err, GW_EPARSE, "chunked body: a chunk over %llu bytes (1 GiB) "
                                                 "at byte %llu",
                                 (unsigned long long)GW_CHUNKED_MAX_CHUNK,
                                 (unsigned long long)at);
        c->size = size;
    }
    c->line_len++;
    return GW_OK;
}

/* One byte of the trailer section (CK_TRAILER, CK_TNAME, CK_TVALUE,
 * CK_TRAILER_LF): field lines read, checked and dropped. */
static int trailer_byte(gw_chunked *c, unsigned char b, uint64_t at, gw_error *err)
{
    if (c->state == CK_TRAILER && b == '\r') {
        c->state = CK_FINAL_LF; /* the final CRLF: not part of the section's count */
        return GW_OK;
    }
    if (c->trailer_len == GW_CHUNKED_MAX_TRAILER)
        return gw__error_set(err, GW_EPARSE, "chunked body: trailer section over %u bytes at "
                                             "byte %llu", GW_CHUNKED_MAX_TRAILER,
                             (unsigned long long)at);
    switch (c->state) {
    case CK_TRAILER_LF:
        if (b != '\n')
            return gw__error_set(err, GW_EPARSE, "chunked body: CR without LF in a trailer at "
                                                 "byte %llu", (unsigned long long)at);
        c->state = CK_TRAILER;
        c->line_len = 0;
        break;
    case CK_TVALUE:
        if (b == '\r') {
            c->state = CK_TRAILER_LF;
        } else if (!is_text(b)) {
            return refuse(b, "(a control byte) in a trailer field", at, err);
        }
        break;
    default: /* CK_TRAILER (a line starts), CK_TNAME */
        if (b == ':' && c->state == CK_TNAME) {
            c->state = CK_TVALUE;
        } else if (is_tchar(b)) {
            c->state = CK_TNAME;
        } else {
            return refuse(b, "in a trailer field name (expected NAME: VALUE CRLF)", at, err);
        }
    }
    if (b != '\r' && b != '\n') {
        if (c->line_len == GW_CHUNKED_MAX_LINE)
            return gw__error_set(err, GW_EPARSE, "chunked body: trailer line over %u bytes at "
                                                 "byte %llu", GW_CHUNKED_MAX_LINE,
                                 (unsigned long long)at);
        c->line_len++;
    }
    c->trailer_len++;
    return GW_OK;
}

/* One byte of framing: anywhere but inside a chunk's data. */
static int frame_byte(gw_chunked *c, unsigned char b, uint64_t at, gw_error *err)
{
    switch (c->state) {
    case CK_SIZE:
    case CK_SIZE_WS:
    case CK_EXT:
        return size_byte(c, b, at, err);
    case CK_SIZE_LF:
        if (b != '\n')
            return gw__error_set(err, GW_EPARSE, "chunked body: CR without LF after a chunk "
                                                 "size at byte %llu", (unsigned long long)at);
        c->line_len = 0;
        c->left = c->size;
        c->state = c->size ? CK_DATA : CK_TRAILER;
        return GW_OK;
    case CK_DATA_CR:
        if (b != '\r')
            return refuse(b, "after a chunk's data (expected CRLF)", at, err);
        c->state = CK_DATA_LF;
        return GW_OK;
    case CK_DATA_LF:
        if (b != '\n')
            return gw__error_set(err, GW_EPARSE, "chunked body: CR without LF after a chunk's "
                                                 "data at byte %llu", (unsigned long long)at);
        c->size = 0;
        c->state = CK_SIZE;
        return GW_OK;
    case CK_FINAL_LF:
        if (b != '\n')
            return gw__error_set(err, GW_EPARSE, "chunked body: CR without LF at the end of "
                                                 "the body at byte %llu", (unsigned long long)at);
        c->state = CK_DONE;
        return GW_OK;
    default: /* the trailer section */
        return trailer_byte(c, b, at, err);
    }
}

int gw_chunked_next(gw_chunked *c, const char *in, size_t len, size_t *used, const char **data,
                    size_t *data_len, gw_error *err)
{
    assert(gw_chunked_check(c));
    *used = 0;
    *data = in;
    *data_len = 0;
    if (c->state == CK_FAILED)
        return gw__error_set(err, GW_EPARSE, "chunked body: the decoder failed earlier (it "
                                             "must be initialised again)");
    if (c->state == CK_DONE)
        return 1;
    size_t i = 0;
    while (i < len && c->state != CK_DONE) {
        if (c->state == CK_DATA) { /* one span of data, then back to the caller */
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            *data = in + i;
            *data_len = n;
            c->left -= n;
            if (c->left == 0)
                c->state = CK_DATA_CR;
            i += n;
            break;
        }
        int rc = frame_byte(c, (unsigned char)in[i], c->pos + i, err);
        if (rc != GW_OK) {
            c->state = CK_FAILED;
            c->left = 0;
            c->pos += i;
            *used = i; /* the framing before the offending byte */
            assert(gw_chunked_check(c));
            return rc;
        }
        i++;
    }
    c->pos += i;
    *used = i;
    assert(gw_chunked_check(c));
    return c->state == CK_DONE ? 1 : GW_OK;
}
