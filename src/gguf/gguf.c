/* gguf.c — the GGUF reader (see gguf.h for the invariants it establishes).
 *
 * Owns: the parse of an untrusted buffer into kv and tensor tables, the two
 * hash indexes (keys, tensor names), the mapping of a file, and the typed
 * value reads.
 *
 * How the parse stays safe: a cursor (struct rd) is the only thing that
 * touches the buffer; every read first asks rd_need() whether that many bytes
 * remain, with the remaining length computed as len - pos (never pos + n,
 * which could overflow). Counts from the file are bounded twice before
 * anything is allocated: by the caller's limits and by what the remaining
 * bytes could possibly hold (a kv needs at least 13 bytes, a tensor info 24,
 * a string 8), so a forged count can neither exhaust memory nor loop long.
 * Every size product goes through gw__mul_u64. The first failed check wins:
 * it records a fault, a gw_status and a message, and the parse unwinds.
 *
 * Tensor data is never touched, so a sparse 70B-shaped file parses from its
 * first few megabytes. */
#include "gguf.h"

#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_NAME 64u /* ggml's GGML_MAX_NAME, NUL included */
#define MIN_KV_BYTES 13u     /* key length (8) + type (4) + a 1-byte value */
#define MIN_TENSOR_BYTES 24u /* name length (8) + n_dims (4) + type (4) + offset (8) */

struct gw_gguf {
    const uint8_t *base;
    size_t size;
    void *map; /* non-NULL when gw_gguf_open mapped the file */
    uint32_t version;
    uint64_t alignment, data_offset, tensor_bytes;
    size_t n_kv, n_tensors;
    gw_gguf_kv *kvs;
    gw_gguf_tensor *tensors;
    /* Open-addressing hash indexes: slot holds index + 1, 0 = empty. The
     * hash is seeded per handle, so a file cannot be crafted to make every
     * name collide. */
    uint32_t *kv_index, *tensor_index;
    size_t kv_mask, tensor_mask;
    uint64_t seed;
};

/* ------------------------------------------------------------ small helpers */

static const uint8_t vtype_size[GW_GGUF_VTYPE_COUNT] = {
    [GW_GGUF_U8] = 1,  [GW_GGUF_I8] = 1,  [GW_GGUF_U16] = 2, [GW_GGUF_I16] = 2,
    [GW_GGUF_U32] = 4, [GW_GGUF_I32] = 4, [GW_GGUF_F32] = 4, [GW_GGUF_BOOL] = 1,
    [GW_GGUF_U64] = 8, [GW_GGUF_I64] = 8, [GW_GGUF_F64] = 8,
};

const char *gw_gguf_vtype_name(uint32_t t)
{
    static const char *const names[GW_GGUF_VTYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
    };
    return t < GW_GGUF_VTYPE_COUNT ? names[t] : "?";
}

const char *gw_gguf_fault_name(gw_gguf_fault f)
{
    switch (f) {
#define GW__GGUF_FAULT_CASE(name, text) \
    case name:                          \
        return text;
        GW_GGUF_FAULT_LIST(GW__GGUF_FAULT_CASE)
#undef GW__GGUF_FAULT_CASE
    default:
        break;
    }
    return "?";
}

void gw_gguf_limits_init(gw_gguf_limits *l)
{
    l->max_string = (uint64_t)64 << 20;
    l->max_key = 65535;
    l->max_array = (uint64_t)1 << 28;
    l->max_kv = (uint64_t)1 << 20;
    l->max_tensors = (uint64_t)1 << 20;
}

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

static uint64_t hash_bytes(uint64_t seed, const void *s, size_t n)
{
    const uint8_t *p = s;
    uint64_t h = 1469598103934665603ull ^ seed; /* FNV-1a, seeded */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Prints s into buf for a message: at most 48 bytes, non-printables as '?'. */
static const char *show(char *buf, size_t cap, gw_gguf_str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 4 < cap; i++) {
        if (i == 48) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char c = (unsigned char)s.ptr[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ cursor */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
    const gw_gguf_limits *lim;
    gw_gguf_fault fault;
    int code;
    gw_error *err;
} rd;

static int fail(rd *r, gw_gguf_fault f, int code, const char *fmt, ...) GW__PRINTF(4, 5);
static int fail(rd *r, gw_gguf_fault f, int code, const char *fmt, ...)
{
    r->fault = f;
    r->code = code;
    if (r->err) {
        va_list ap;
        va_start(ap, fmt);
        r->err->code = code;
        vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static size_t rd_left(const rd *r) { return r->len - r->pos; }

/* GW_OK when n more bytes remain; else a truncation error naming what. */
static int rd_need(rd *r, uint64_t n, const char *what)
{
    if (n <= rd_left(r))
        return GW_OK;
    return fail(r, GW_GGUF_FAULT_TRUNCATED, GW_EPARSE,
                "truncated: %s at offset %zu needs %llu bytes, only %zu remain", what, r->pos,
                (unsigned long long)n, rd_left(r));
}

static int rd_u32(rd *r, uint32_t *v, const char *what)
{
    int rc = rd_need(r, 4, what);
    if (rc == GW_OK) {
        *v = ld32(r->p + r->pos);
        r->pos += 4;
    }
    return rc;
}

static int rd_u64(rd *r, uint64_t *v, const char *what)
{
    int rc = rd_need(r, 8, what);
    if (rc == GW_OK) {
        *v = ld64(r->p + r->pos);
        r->pos += 8;
    }
    return rc;
}

/* Reads a u64-length string of at most max bytes (limit_fault otherwise). */
static int rd_str(rd *r, gw_gguf_str *s, uint64_t max, gw_gguf_fault limit_fault,
                  const char *what)
{
    uint64_t n;
    size_t at = r->pos;
    int rc = rd_u64(r, &n, what);
    if (rc != GW_OK)
        return rc;
    if (n > max)
        return fail(r, limit_fault, GW_EPARSE,
                    "%s at offset %zu: length %llu exceeds the limit of %llu bytes", what, at,
                    (unsigned long long)n, (unsigned long long)max);
    if (n > rd_left(r))
        return fail(r, GW_GGUF_FAULT_TRUNCATED, GW_EPARSE,
                    "truncated: %s at offset %zu has length %llu but only %zu bytes remain",
                    what, at, (unsigned long long)n, rd_left(r));
    s->ptr = (const char *)r->p + r->pos;
    s->len = (size_t)n;
    r->pos += (size_t)n;
    return GW_OK;
}

/* ---------------------------------------------------------------- metadata */

static int parse_kv(rd *r, gw_gguf_kv *kv, size_t i)
{
    char kb[64];
    kv->file_offset = r->pos;
    int rc = rd_str(r, &kv->key, r->lim->max_key, GW_GGUF_FAULT_STRING_LENGTH, "metadata key");
    if (rc != GW_OK)
        return rc;
    uint32_t t;
    if ((rc = rd_u32(r, &t, "metadata value type")) != GW_OK)
        return rc;
    if (t >= GW_GGUF_VTYPE_COUNT)
        return fail(r, GW_GGUF_FAULT_VALUE_TYPE, GW_EPARSE,
                    "metadata key '%s' (pair %zu): unknown value type %u",
                    show(kb, sizeof kb, kv->key), i, t);
    kv->type = (gw_gguf_vtype)t;
    kv->elem_type = kv->type;
    kv->count = 1;
    if (t == GW_GGUF_STRING) {
        gw_gguf_str s;
        if ((rc = rd_str(r, &s, r->lim->max_string, GW_GGUF_FAULT_STRING_LENGTH,
                         "string value")) != GW_OK)
            return rc;
        kv->data = (const uint8_t *)s.ptr;
        kv->size = s.len;
        return GW_OK;
    }
    if (t != GW_GGUF_ARRAY) {
        if ((rc = rd_need(r, vtype_size[t], "metadata value")) != GW_OK)
            return rc;
        kv->data = r->p + r->pos;
        kv->size = vtype_size[t];
        r->pos += vtype_size[t];
        return GW_OK;
    }

    uint32_t et;
    uint64_t count;
    if ((rc = rd_u32(r, &et, "array element type")) != GW_OK)
        return rc;
    if (et == GW_GGUF_ARRAY)
        return fail(r, GW_GGUF_FAULT_ARRAY, GW_EPARSE,
                    "metadata key '%s': arrays of arrays are not supported",
                    show(kb, sizeof kb, kv->key));
    if (et >= GW_GGUF_VTYPE_COUNT)
        return fail(r, GW_GGUF_FAULT_VALUE_TYPE, GW_EPARSE,
                    "metadata key '%s': unknown array element type %u",
                    show(kb, sizeof kb, kv->key), et);
    size_t count_at = r->pos;
    if ((rc = rd_u64(r, &count, "array count")) != GW_OK)
        return rc;
    kv->elem_type = (gw_gguf_vtype)et;
    kv->count = count;
    /* Each element needs at least esize bytes (8 for a string's length). */
    uint64_t esize = et == GW_GGUF_STRING ? 8 : vtype_size[et], bytes;
    if (!gw__mul_u64(count, esize, &bytes))
        return fail(r, GW_GGUF_FAULT_ARRAY, GW_EPARSE,
                    "metadata key '%s': array count %llu at offset %zu overflows (%llu x %s)",
                    show(kb, sizeof kb, kv->key), (unsigned long long)count, count_at,
                    (unsigned long long)esize, gw_gguf_vtype_name(et));
    if (count > r->lim->max_array)
        return fail(r, GW_GGUF_FAULT_ARRAY, GW_EPARSE,
                    "metadata key '%s': array count %llu exceeds the limit of %llu",
                    show(kb, sizeof kb, kv->key), (unsigned long long)count,
                    (unsigned long long)r->lim->max_array);
    if ((rc = rd_need(r, bytes, "array elements")) != GW_OK)
        return rc;
    kv->data = r->p + r->pos;
    if (et != GW_GGUF_STRING) {
        r->pos += (size_t)bytes;
    } else {
        /* The hot loop of a big vocabulary (100k+ strings): lengths are
         * checked inline; rd_str() reports the first bad one. */
        size_t pos = r->pos, len = r->len;
        uint64_t max = r->lim->max_string;
        for (uint64_t j = 0; j < count; j++) {
            uint64_t n;
            if (len - pos < 8 || (n = ld64(r->p + pos)) > max || n > len - pos - 8) {
                gw_gguf_str s;
                r->pos = pos;
                return rd_str(r, &s, max, GW_GGUF_FAULT_STRING_LENGTH, "string array element");
            }
            pos += 8 + (size_t)n;
        }
        r->pos = pos;
    }
    kv->size = (uint64_t)(r->p + r->pos - kv->data);
    return GW_OK;
}

/* ------------------------------------------------------------- hash index */

static size_t index_slots(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s *= 2;
    return s;
}

static uint32_t *index_alloc(size_t n, size_t *mask)
{
    size_t slots = index_slots(n);
    *mask = slots - 1;
    return calloc(slots, sizeof(uint32_t));
}

static const gw_gguf_str *entry_name(const void *entries, size_t stride, size_t name_off,
                                     size_t i)
{
    return (const gw_gguf_str *)((const char *)entries + i * stride + name_off);
}

/* Inserts entry i (its name at name_off inside each stride-sized entry);
 * returns the index of an earlier entry with the same name (and inserts
 * nothing), or SIZE_MAX when inserted. */
static size_t index_insert(uint32_t *table, size_t mask, uint64_t seed, const void *entries,
                           size_t stride, size_t name_off, size_t i)
{
    const gw_gguf_str *s = entry_name(entries, stride, name_off, i);
    for (size_t h = (size_t)hash_bytes(seed, s->ptr, s->len) & mask;; h = (h + 1) & mask) {
        uint32_t e = table[h];
        if (e == 0) {
            table[h] = (uint32_t)i + 1;
            return SIZE_MAX;
        }
        const gw_gguf_str *o = entry_name(entries, stride, name_off, e - 1);
        if (o->len == s->len && memcmp(o->ptr, s->ptr, s->len) == 0)
            return e - 1;
    }
}

static long index_find(const uint32_t *table, size_t mask, uint64_t seed, const char *name,
                       const void *entries, size_t stride, size_t name_off)
{
    if (!table || !name)
        return -1;
    size_t n = strlen(name);
    for (size_t h = (size_t)hash_bytes(seed, name, n) & mask;; h = (h + 1) & mask) {
        uint32_t e = table[h];
        if (e == 0)
            return -1;
        const gw_gguf_str *o = entry_name(entries, stride, name_off, e - 1);
        if (o->len == n && memcmp(o->ptr, name, n) == 0)
            return (long)(e - 1);
    }
}

/* ------------------------------------------------------------------ tensors */

static int parse_tensor(rd *r, gw_gguf_tensor *t)
{
    char nb[64];
    int rc;
    if ((rc = rd_str(r, &t->name, GGUF_MAX_NAME - 1, GW_GGUF_FAULT_TENSOR_NAME,
                     "tensor name")) != GW_OK)
        return rc;
    const char *nm = show(nb, sizeof nb, t->name);
    if ((rc = rd_u32(r, &t->n_dims, "tensor n_dims")) != GW_OK)
        return rc;
    if (t->n_dims > 4)
        return fail(r, GW_GGUF_FAULT_N_DIMS, GW_EPARSE,
                    "tensor '%s': n_dims %u exceeds the maximum of 4", nm, t->n_dims);
    for (uint32_t d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && (rc = rd_u64(r, &t->ne[d], "tensor dimension")) != GW_OK)
            return rc;
    }
    if ((rc = rd_u32(r, &t->type, "tensor type")) != GW_OK)
        return rc;
    const char *old = gw_ggml_type_removed_name(t->type);
    if (old)
        return fail(r, GW_GGUF_FAULT_TYPE_REMOVED, GW_ENOTSUP,
                    "tensor '%s': ggml type %u (%s) was removed from ggml and is not supported",
                    nm, t->type, old);
    t->info = gw_ggml_type(t->type);
    if (!t->info)
        return fail(r, GW_GGUF_FAULT_TYPE_UNKNOWN, GW_ENOTSUP,
                    "tensor '%s': unknown ggml type %u", nm, t->type);
    if ((rc = rd_u64(r, &t->offset, "tensor offset")) != GW_OK)
        return rc;
    rc = gw_ggml_nbytes(t->info, t->ne, &t->nbytes);
    if (rc == GW_EINVAL)
        return fail(r, GW_GGUF_FAULT_SHAPE, GW_EPARSE,
                    "tensor '%s': ne[0] = %llu is not a multiple of the %s block size %u", nm,
                    (unsigned long long)t->ne[0], t->info->name, t->info->block_elems);
    if (rc != GW_OK)
        return fail(r, GW_GGUF_FAULT_SHAPE, GW_EPARSE,
                    "tensor '%s': shape [%llu, %llu, %llu, %llu] overflows", nm,
                    (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
    return GW_OK;
}

typedef struct span {
    uint64_t start, end;
    size_t i;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Offsets aligned, inside the data section, no two tensors overlapping. */
static int check_placement(rd *r, gw_gguf *g)
{
    char nb[64], nb2[64];
    if (g->n_tensors == 0)
        return GW_OK;
    if (g->data_offset > r->len)
        return fail(r, GW_GGUF_FAULT_TRUNCATED, GW_EPARSE,
                    "truncated: the tensor data section starts at offset %llu but the file "
                    "has %zu bytes",
                    (unsigned long long)g->data_offset, r->len);
    uint64_t room = r->len - g->data_offset, total = 0;
    bool sorted = true;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const gw_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (t->offset % g->alignment != 0)
            return fail(r, GW_GGUF_FAULT_MISALIGNED, GW_EPARSE,
                        "tensor '%s': offset %llu is not a multiple of the alignment %llu",
                        show(nb, sizeof nb, t->name), (unsigned long long)t->offset,
                        (unsigned long long)g->alignment);
        if (!gw__add_u64(t->offset, t->nbytes, &end) || end > room)
            return fail(r, GW_GGUF_FAULT_OUT_OF_FILE, GW_EPARSE,
                        "tensor '%s': data at offset %llu + %llu bytes runs past the end of "
                        "the file (the data section holds %llu bytes)",
                        show(nb, sizeof nb, t->name), (unsigned long long)t->offset,
                        (unsigned long long)t->nbytes, (unsigned long long)room);
        total += t->nbytes; /* cannot overflow: each end <= room <= SIZE_MAX */
        if (i > 0 && t->offset < g->tensors[i - 1].offset)
            sorted = false;
    }
    g->tensor_bytes = total;

    /* Overlap check on the tensors that hold bytes, in offset order. Files
     * written by ggml are already in order, so sorting is rarely needed. */
    span *s = malloc(g->n_tensors * sizeof *s);
    if (!s)
        return fail(r, GW_GGUF_FAULT_NOMEM, GW_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].nbytes)
            s[n++] = (span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].nbytes, i};
    if (!sorted)
        qsort(s, n, sizeof *s, span_cmp);
    int rc = GW_OK;
    for (size_t k = 1; k < n; k++) {
        if (s[k].start < s[k - 1].end) {
            rc = fail(r, GW_GGUF_FAULT_OVERLAP, GW_EPARSE,
                      "tensors '%s' and '%s' overlap in the data section (offsets %llu and %llu)",
                      show(nb, sizeof nb, g->tensors[s[k - 1].i].name),
                      show(nb2, sizeof nb2, g->tensors[s[k].i].name),
                      (unsigned long long)s[k - 1].start, (unsigned long long)s[k].start);
            break;
        }
    }
    free(s);
    return rc;
}

/* ---------------------------------------------------------------- the parse */

static int parse_header(rd *r, gw_gguf *g, uint64_t *n_tensors, uint64_t *n_kv)
{
    static const char magic[4] = {'G', 'G', 'U', 'F'};
    if (r->len < 4) {
        if (r->len == 0)
            return fail(r, GW_GGUF_FAULT_TRUNCATED, GW_EPARSE, "truncated: the file is empty");
        if (memcmp(r->p, magic, r->len) == 0)
            return fail(r, GW_GGUF_FAULT_TRUNCATED, GW_EPARSE,
                        "truncated: %zu bytes, shorter than the GGUF magic", r->len);
    }
    if (r->len < 4 || memcmp(r->p, magic, 4) != 0) {
        if (r->len >= 4 && (memcmp(r->p, "lmgg", 4) == 0 || memcmp(r->p, "fmgg", 4) == 0 ||
                            memcmp(r->p, "tjgg", 4) == 0))
            return fail(r, GW_GGUF_FAULT_MAGIC, GW_EPARSE,
                        "not a GGUF file: a legacy GGML/GGJT model (convert it to GGUF)");
        unsigned char b[4] = {0};
        memcpy(b, r->p, r->len < 4 ? r->len : 4);
        return fail(r, GW_GGUF_FAULT_MAGIC, GW_EPARSE,
                    "not a GGUF file (bad magic %02x %02x %02x %02x, expected 47 47 55 46)", b[0],
                    b[1], b[2], b[3]);
    }
    r->pos = 4;
    int rc = rd_u32(r, &g->version, "version");
    if (rc != GW_OK)
        return rc;
    if (g->version == 1)
        return fail(r, GW_GGUF_FAULT_VERSION_1, GW_ENOTSUP,
                    "GGUF version 1 is not supported (only v2 and v3; re-convert the model "
                    "with a current llama.cpp)");
    if ((g->version & 0xffffu) == 0)
        return fail(r, GW_GGUF_FAULT_BYTE_SWAPPED, GW_ENOTSUP,
                    "the file is byte-swapped (version field 0x%08x): a big-endian GGUF; only "
                    "little-endian files are supported",
                    g->version);
    if (g->version != 2 && g->version != 3)
        return fail(r, GW_GGUF_FAULT_VERSION, GW_ENOTSUP,
                    "unsupported GGUF version %u (only v2 and v3)", g->version);
    if ((rc = rd_u64(r, n_tensors, "tensor count")) != GW_OK ||
        (rc = rd_u64(r, n_kv, "metadata count")) != GW_OK)
        return rc;
    if (*n_kv > r->lim->max_kv)
        return fail(r, GW_GGUF_FAULT_COUNT, GW_EPARSE,
                    "metadata count %llu exceeds the limit of %llu", (unsigned long long)*n_kv,
                    (unsigned long long)r->lim->max_kv);
    if (*n_tensors > r->lim->max_tensors)
        return fail(r, GW_GGUF_FAULT_COUNT, GW_EPARSE,
                    "tensor count %llu exceeds the limit of %llu",
                    (unsigned long long)*n_tensors, (unsigned long long)r->lim->max_tensors);
    /* Both products are small now (limits are capped below 2^32). */
    uint64_t least = *n_kv * MIN_KV_BYTES + *n_tensors * MIN_TENSOR_BYTES;
    if (least > rd_left(r))
        return fail(r, GW_GGUF_FAULT_TRUNCATED, GW_EPARSE,
                    "truncated: %llu metadata pairs and %llu tensor infos need at least %llu "
                    "bytes, only %zu remain",
                    (unsigned long long)*n_kv, (unsigned long long)*n_tensors,
                    (unsigned long long)least, rd_left(r));
    return GW_OK;
}

static int parse_alignment(rd *r, gw_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gw_gguf_kv *kv = gw_gguf_find(g, "general.alignment");
    if (!kv)
        return GW_OK;
    if (kv->type != GW_GGUF_U32)
        return fail(r, GW_GGUF_FAULT_ALIGNMENT, GW_EPARSE,
                    "general.alignment has type %s, expected u32", gw_gguf_vtype_name(kv->type));
    uint32_t a = ld32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(r, GW_GGUF_FAULT_ALIGNMENT, GW_EPARSE,
                    "general.alignment %u is not a power of two", a);
    g->alignment = a;
    return GW_OK;
}

static int parse(rd *r, gw_gguf *g)
{
    uint64_t n_tensors, n_kv;
    int rc = parse_header(r, g, &n_tensors, &n_kv);
    if (rc != GW_OK)
        return rc;
    char nb[64];
    size_t dup;

    g->n_kv = (size_t)n_kv;
    g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    g->kv_index = index_alloc(g->n_kv, &g->kv_mask);
    if (!g->kvs || !g->kv_index)
        return fail(r, GW_GGUF_FAULT_NOMEM, GW_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_kv; i++) {
        if ((rc = parse_kv(r, &g->kvs[i], i)) != GW_OK)
            return rc;
        dup = index_insert(g->kv_index, g->kv_mask, g->seed, g->kvs, sizeof *g->kvs,
                           offsetof(gw_gguf_kv, key), i);
        if (dup != SIZE_MAX)
            return fail(r, GW_GGUF_FAULT_DUPLICATE_KEY, GW_EPARSE,
                        "metadata key '%s' appears twice (pairs %zu and %zu)",
                        show(nb, sizeof nb, g->kvs[i].key), dup, i);
    }
    if ((rc = parse_alignment(r, g)) != GW_OK)
        return rc;

    g->n_tensors = (size_t)n_tensors;
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    g->tensor_index = index_alloc(g->n_tensors, &g->tensor_mask);
    if (!g->tensors || !g->tensor_index)
        return fail(r, GW_GGUF_FAULT_NOMEM, GW_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) {
        if ((rc = parse_tensor(r, &g->tensors[i])) != GW_OK)
            return rc;
        dup = index_insert(g->tensor_index, g->tensor_mask, g->seed, g->tensors,
                           sizeof *g->tensors,
                           offsetof(gw_gguf_tensor, name), i);
        if (dup != SIZE_MAX)
            return fail(r, GW_GGUF_FAULT_DUPLICATE_TENSOR, GW_EPARSE,
                        "tensor name '%s' appears twice (tensors %zu and %zu)",
                        show(nb, sizeof nb, g->tensors[i].name), dup, i);
    }
    /* align_up cannot overflow: pos <= len < 2^63 and alignment <= 2^31. */
    g->data_offset = ((uint64_t)r->pos + g->alignment - 1) / g->alignment * g->alignment;
    return check_placement(r, g);
}

/* ---------------------------------------------------------------- lifecycle */

static gw_gguf_limits effective_limits(const gw_gguf_limits *in)
{
    gw_gguf_limits l;
    if (in)
        l = *in;
    else
        gw_gguf_limits_init(&l);
    /* Indexes are uint32_t: cap the counts well below that. */
    if (l.max_kv > (uint64_t)1 << 30)
        l.max_kv = (uint64_t)1 << 30;
    if (l.max_tensors > (uint64_t)1 << 30)
        l.max_tensors = (uint64_t)1 << 30;
    return l;
}

/* Parses data[len] into a new handle; the caller sets map afterwards. */
static int open_buffer(gw_gguf **out, const void *data, size_t len, const gw_gguf_limits *limits,
                       gw_gguf_fault *fault, gw_error *err)
{
    *out = NULL;
    gw_gguf_limits lim = effective_limits(limits);
    rd r = {.p = data, .len = len, .lim = &lim, .err = err};
    if (fault)
        *fault = GW_GGUF_FAULT_NONE;
    gw_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (fault)
            *fault = GW_GGUF_FAULT_NOMEM;
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    g->base = data;
    g->size = len;
    g->seed = hash_bytes((uint64_t)gw__now_mono_ns(), &g, sizeof g);
    int rc = parse(&r, g);
    if (rc != GW_OK) {
        if (fault)
            *fault = r.fault;
        gw_gguf_close(g);
        return rc;
    }
    *out = g;
    return GW_OK;
}

int gw_gguf_open_memory_ex(gw_gguf **out, const void *data, size_t len,
                           const gw_gguf_limits *limits, gw_gguf_fault *fault, gw_error *err)
{
    if (!data && len)
        return gw__error_set(err, GW_EINVAL, "no buffer");
    static const uint8_t empty[1];
    return open_buffer(out, data ? data : empty, len, limits, fault, err);
}

int gw_gguf_open_memory(gw_gguf **out, const void *data, size_t len, gw_error *err)
{
    return gw_gguf_open_memory_ex(out, data, len, NULL, NULL, err);
}

static int errno_status(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR: return GW_ENOENT;
    case EACCES:
    case EPERM: return GW_EPERM;
    case ENOMEM: return GW_ENOMEM;
    default: return GW_EIO;
    }
}

int gw_gguf_open_ex(gw_gguf **out, const char *path, const gw_gguf_limits *limits,
                    gw_gguf_fault *fault, gw_error *err)
{
    *out = NULL;
    if (fault)
        *fault = GW_GGUF_FAULT_IO;
    if (!path)
        return gw__error_set(err, GW_EINVAL, "no path");
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
     * refused as not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return gw__error_set(err, errno_status(e), "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return gw__error_set(err, errno_status(e), "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return gw__error_set(err, GW_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return gw__error_set(err, errno_status(e), "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    gw_error local;
    gw_error_clear(&local);
    int rc = gw_gguf_open_memory_ex(out, map, len, limits, fault, &local);
    if (rc != GW_OK) {
        if (map)
            munmap(map, len);
        return gw__error_set(err, rc, "%s: %s", path, local.message);
    }
    (*out)->map = map;
    return GW_OK;
}

int gw_gguf_open(gw_gguf **out, const char *path, gw_error *err)
{
    return gw_gguf_open_ex(out, path, NULL, NULL, err);
}

void gw_gguf_close(gw_gguf *g)
{
    if (!g)
        return;
    if (g->map)
        munmap(g->map, g->size);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index);
    free(g->tensor_index);
    free(g);
}

/* --------------------------------------------------------------- accessors */

uint32_t gw_gguf_version(const gw_gguf *g) { return g->version; }
uint64_t gw_gguf_file_size(const gw_gguf *g) { return g->size; }
uint64_t gw_gguf_alignment(const gw_gguf *g) { return g->alignment; }
uint64_t gw_gguf_data_offset(const gw_gguf *g) { return g->data_offset; }
uint64_t gw_gguf_tensor_bytes(const gw_gguf *g) { return g->tensor_bytes; }
size_t gw_gguf_kv_count(const gw_gguf *g) { return g->n_kv; }
size_t gw_gguf_tensor_count(const gw_gguf *g) { return g->n_tensors; }

const gw_gguf_kv *gw_gguf_kv_at(const gw_gguf *g, size_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const gw_gguf_tensor *gw_gguf_tensor_at(const gw_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gw_gguf_kv *gw_gguf_find(const gw_gguf *g, const char *key)
{
    long i = index_find(g->kv_index, g->kv_mask, g->seed, key, g->kvs, sizeof *g->kvs,
                        offsetof(gw_gguf_kv, key));
    return i < 0 ? NULL : &g->kvs[i];
}

const gw_gguf_tensor *gw_gguf_find_tensor(const gw_gguf *g, const char *name)
{
    long i = index_find(g->tensor_index, g->tensor_mask, g->seed, name, g->tensors,
                        sizeof *g->tensors, offsetof(gw_gguf_tensor, name));
    return i < 0 ? NULL : &g->tensors[i];
}

const char *gw_gguf_key(char *buf, size_t cap, gw_gguf_str arch, const char *suffix)
{
    if (cap == 0)
        return buf;
    snprintf(buf, cap, "%.*s.%s", (int)(arch.len < 256 ? arch.len : 256), arch.ptr ? arch.ptr : "",
             suffix);
    return buf;
}

bool gw_gguf_str_eq(gw_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

bool gw_gguf_kv_value(const gw_gguf_kv *kv, gw_gguf_value *out)
{
    if (!kv || kv->type == GW_GGUF_ARRAY)
        return false;
    *out = (gw_gguf_value){kv->type, kv->data, kv->size};
    return true;
}

void gw_gguf_iter_init(gw_gguf_iter *it, const gw_gguf_kv *kv)
{
    *it = (gw_gguf_iter){kv, 0, 0};
}

bool gw_gguf_iter_next(gw_gguf_iter *it, gw_gguf_value *out)
{
    const gw_gguf_kv *kv = it->kv;
    if (!kv || kv->type != GW_GGUF_ARRAY || it->index >= kv->count)
        return false;
    /* The parse proved every element lies within kv->data[0..size). */
    if (kv->elem_type == GW_GGUF_STRING) {
        uint64_t n = ld64(kv->data + it->pos);
        *out = (gw_gguf_value){GW_GGUF_STRING, kv->data + it->pos + 8, n};
        it->pos += 8 + n;
    } else {
        uint64_t sz = vtype_size[kv->elem_type];
        *out = (gw_gguf_value){kv->elem_type, kv->data + it->pos, sz};
        it->pos += sz;
    }
    it->index++;
    return true;
}

bool gw_gguf_kv_elem(const gw_gguf_kv *kv, uint64_t i, gw_gguf_value *out)
{
    if (!kv || kv->type != GW_GGUF_ARRAY || i >= kv->count)
        return false;
    if (kv->elem_type != GW_GGUF_STRING) {
        uint64_t sz = vtype_size[kv->elem_type];
        *out = (gw_gguf_value){kv->elem_type, kv->data + i * sz, sz};
        return true;
    }
    gw_gguf_iter it;
    gw_gguf_iter_init(&it, kv);
    while (gw_gguf_iter_next(&it, out))
        if (it.index == i + 1)
            return true;
    return false;
}

/* Integer value as sign + magnitude; false for non-integers. */
static bool int_of(const gw_gguf_value *v, bool *neg, uint64_t *mag)
{
    int64_t s;
    *neg = false;
    switch (v->type) {
    case GW_GGUF_U8: *mag = v->data[0]; return true;
    case GW_GGUF_U16: *mag = ld16(v->data); return true;
    case GW_GGUF_U32: *mag = ld32(v->data); return true;
    case GW_GGUF_U64: *mag = ld64(v->data); return true;
    case GW_GGUF_I8: s = (int8_t)v->data[0]; break;
    case GW_GGUF_I16: s = (int16_t)ld16(v->data); break;
    case GW_GGUF_I32: s = (int32_t)ld32(v->data); break;
    case GW_GGUF_I64: s = (int64_t)ld64(v->data); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = *neg ? 0 - (uint64_t)s : (uint64_t)s;
    return true;
}

bool gw_gguf_value_u64(const gw_gguf_value *v, uint64_t *out)
{
    bool neg;
    uint64_t m;
    if (!int_of(v, &neg, &m) || neg)
        return false;
    *out = m;
    return true;
}

bool gw_gguf_value_u32(const gw_gguf_value *v, uint32_t *out)
{
    uint64_t m;
    if (!gw_gguf_value_u64(v, &m) || m > UINT32_MAX)
        return false;
    *out = (uint32_t)m;
    return true;
}

bool gw_gguf_value_i64(const gw_gguf_value *v, int64_t *out)
{
    bool neg;
    uint64_t m;
    if (!int_of(v, &neg, &m))
        return false;
    if (neg) {
        *out = m == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)m;
        return true;
    }
    if (m > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)m;
    return true;
}

bool gw_gguf_value_f64(const gw_gguf_value *v, double *out)
{
    if (v->type == GW_GGUF_F32) {
        uint32_t b = ld32(v->data);
        float f;
        memcpy(&f, &b, sizeof f);
        *out = f;
        return true;
    }
    if (v->type == GW_GGUF_F64) {
        uint64_t b = ld64(v->data);
        memcpy(out, &b, sizeof *out);
        return true;
    }
    bool neg;
    uint64_t m;
    if (!int_of(v, &neg, &m))
        return false;
    *out = neg ? -(double)m : (double)m;
    return true;
}

bool gw_gguf_value_bool(const gw_gguf_value *v, bool *out)
{
    if (v->type != GW_GGUF_BOOL)
        return false;
    *out = v->data[0] != 0;
    return true;
}

bool gw_gguf_value_str(const gw_gguf_value *v, gw_gguf_str *out)
{
    if (v->type != GW_GGUF_STRING)
        return false;
    *out = (gw_gguf_str){(const char *)v->data, (size_t)v->len};
    return true;
}

#define GETTER(T, ctype)                                                      \
    bool gw_gguf_get_##T(const gw_gguf *g, const char *key, ctype *out)       \
    {                                                                         \
        gw_gguf_value v;                                                      \
        return gw_gguf_kv_value(gw_gguf_find(g, key), &v) && gw_gguf_value_##T(&v, out); \
    }
GETTER(u32, uint32_t)
GETTER(u64, uint64_t)
GETTER(i64, int64_t)
GETTER(f64, double)
GETTER(bool, bool)
GETTER(str, gw_gguf_str)
#undef GETTER

const gw_gguf_kv *gw_gguf_get_array(const gw_gguf *g, const char *key, gw_gguf_vtype *elem_type,
                                    uint64_t *count)
{
    const gw_gguf_kv *kv = gw_gguf_find(g, key);
    if (!kv || kv->type != GW_GGUF_ARRAY)
        return NULL;
    if (elem_type)
        *elem_type = kv->elem_type;
    if (count)
        *count = kv->count;
    return kv;
}
