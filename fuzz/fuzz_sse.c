/* fuzz_sse.c — libFuzzer target for the Server-Sent Events parser
 * (src/core/sse.c): any byte string, fed whole and fed in pieces whose
 * sizes come from the first byte, must give the same events and the same
 * verdict (sse.h invariant 3); each event's type and id are terminated
 * within their fields and its data is NUL-terminated at data_len
 * (invariant 2); nothing longer than the limit gets through (invariant 1).
 * Built by scripts/fuzz-sse.sh; its corpus (tests/core/corpus/fuzz_sse)
 * replays as a normal test. */
#include "core/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Appends each event to a strbuf as "type\0id\0len:data\0". */
static bool record(void *arg, const gw__sse_event *ev)
{
    gw_strbuf *sb = arg;
    if (strnlen(ev->type, sizeof ev->type) == sizeof ev->type ||
        strnlen(ev->id, sizeof ev->id) == sizeof ev->id || ev->data[ev->data_len] != '\0' ||
        ev->data_len > LIMIT)
        abort();
    gw__strbuf_append(sb, ev->type, strlen(ev->type) + 1);
    gw__strbuf_append(sb, ev->id, strlen(ev->id) + 1);
    gw__strbuf_printf(sb, "%zu:", ev->data_len);
    gw__strbuf_append(sb, ev->data, ev->data_len + 1);
    return true;
}

/* Feeds data in pieces of `step` bytes (0: whole); the events into *out,
 * the verdict returned. */
static int feed(const char *data, size_t size, size_t step, gw_strbuf *out)
{
    gw__sse_parser p;
    gw__sse_init(&p, LIMIT);
    gw_error err;
    int rc = GW_OK;
    if (!step)
        step = size ? size : 1;
    for (size_t off = 0; off < size && rc == GW_OK; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = gw__sse_feed(&p, data + off, n, record, out, &err);
    }
    if (rc == GW_OK && size == 0)
        rc = gw__sse_feed(&p, "", 0, record, out, &err);
    gw__sse_release(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = 1 + data[0] % 7;
    const char *text = (const char *)data + 1;
    size -= 1;
    gw_strbuf whole, pieces;
    gw__strbuf_init(&whole, 0);
    gw__strbuf_init(&pieces, 0);
    int a = feed(text, size, 0, &whole);
    int b = feed(text, size, step, &pieces);
    if (a != b || whole.len != pieces.len ||
        (whole.len && memcmp(whole.data, pieces.data, whole.len) != 0))
        abort();
    gw__strbuf_release(&whole);
    gw__strbuf_release(&pieces);
    return 0;
}
