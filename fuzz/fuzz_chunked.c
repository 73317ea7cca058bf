/* fuzz_chunked.c — libFuzzer target for the chunked transfer coding
 * decoder (src/pool/chunked.c), which the pool reads its children's
 * untrusted answers with. The first byte chooses how the rest is split;
 * the rest is fed to a fresh decoder three ways: whole, one byte at a
 * time, and in pieces whose sizes come from the first byte (fixed or
 * pseudo-random). Each piece is copied into a heap buffer of exactly its
 * size, so the sanitizers catch any read outside it. For any bytes:
 *  - every call keeps its contract (chunked.h): *used within the piece and
 *    non-zero on GW_OK, the data inside the bytes consumed, the offending
 *    byte not consumed on an error, no data with the final 1, invariants
 *    checked;
 *  - the three feedings give the same data, the same result, the same
 *    count of bytes consumed and the same message (invariant 4);
 *  - a finished decoder consumes nothing more, a failed one stays failed.
 * Built by scripts/fuzz-chunked.sh; its corpus
 * (tests/pool/corpus/fuzz_chunked) replays as a normal test. */
#include "pool/chunked.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct outcome {
    int rc;
    size_t consumed;
    gw_strbuf data;
    char message[512];
} outcome;

/* One call on in[0..len) with its contract checked; data appended to o. */
static int call(gw_chunked *c, const char *in, size_t len, size_t *used, outcome *o)
{
    const char *d = NULL;
    size_t dl = 7;
    gw_error err;
    gw_error_clear(&err);
    *used = 7;
    int rc = gw_chunked_next(c, in, len, used, &d, &dl, &err);
    if (!gw_chunked_check(c) || gw_chunked_done(c) != (rc == 1))
        abort();
    if (rc < 0) {
        if (rc != GW_EPARSE || *used >= (len ? len : 1) || dl || !err.message[0])
            abort();
        memcpy(o->message, err.message, sizeof o->message);
        return rc;
    }
    if ((rc != GW_OK && rc != 1) || *used > len || (rc == GW_OK && len && !*used) ||
        d < in || dl > *used || d + dl > in + *used || (rc == 1 && dl))
        abort();
    gw__strbuf_append(&o->data, d, dl);
    return rc;
}

/* Feeds in[0..len) to a fresh decoder in pieces: mode 0 whole, 1 `step`
 * bytes each, 2 pseudo-random 1..step bytes (state seed). */
static void feed(const char *in, size_t len, int mode, size_t step, uint32_t seed, outcome *o)
{
    gw_chunked c;
    gw_chunked_init(&c);
    gw__strbuf_init(&o->data, 0);
    o->rc = GW_OK;
    o->message[0] = '\0';
    size_t off = 0;
    while (off < len && o->rc == GW_OK) {
        size_t n = len - off, want = step;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            want = 1 + (seed >> 16) % step;
        }
        if (mode && want < n)
            n = want;
        char *buf = malloc(n);
        if (!buf)
            abort();
        memcpy(buf, in + off, n);
        size_t p = 0, used;
        while (p < n && o->rc == GW_OK) {
            o->rc = call(&c, buf + p, n - p, &used, o);
            p += used;
        }
        size_t more;
        outcome scratch;
        gw__strbuf_init(&scratch.data, 0);
        if (o->rc == 1 && (call(&c, buf + p, n - p, &more, &scratch) != 1 || more))
            abort(); /* finished: nothing more consumed */
        if (o->rc < 0 && (call(&c, buf, n, &more, &scratch) != GW_EPARSE || more))
            abort(); /* failed: stays failed */
        gw__strbuf_release(&scratch.data);
        free(buf);
        off += p;
    }
    o->consumed = off;
    if (o->data.failed || o->data.len > o->consumed)
        abort();
}

static void same(const outcome *a, const outcome *b)
{
    if (a->rc != b->rc || a->consumed != b->consumed || a->data.len != b->data.len ||
        (a->data.len && memcmp(a->data.data, b->data.data, a->data.len) != 0) ||
        strcmp(a->message, b->message) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t how = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    outcome whole, bytes, pieces;
    feed(in, len, 0, 0, 0, &whole);
    feed(in, len, 1, 1, 0, &bytes);
    if (how & 0x80)
        feed(in, len, 2, 1 + (how & 0x3f), how, &pieces);
    else
        feed(in, len, 1, 1 + how, 0, &pieces);
    same(&whole, &bytes);
    same(&whole, &pieces);
    gw__strbuf_release(&whole.data);
    gw__strbuf_release(&bytes.data);
    gw__strbuf_release(&pieces.data);
    return 0;
}
