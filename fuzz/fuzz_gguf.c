/* fuzz_gguf.c — libFuzzer target for the GGUF reader.
 *
 * Owns: one entry point, LLVMFuzzerTestOneInput, that parses the input with
 * gw_gguf_open_memory_ex and, when it is accepted, walks every accessor and
 * checks the invariants gguf.h promises (a violation traps, so the fuzzer
 * reports it). Built two ways: with clang -fsanitize=fuzzer (scripts/
 * fuzz-gguf.sh) and, with fuzz/replay.c as main, as a plain program that
 * replays the seed corpus in the normal test suite. */
#include "gguf/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                  \
    do {                          \
        if (!(c))                 \
            __builtin_trap();     \
    } while (0)

/* Reads every typed view of a value; results only need to be consistent. */
static void touch_value(const gw_gguf_value *v)
{
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    double f;
    bool b;
    gw_gguf_str s;
    bool ok32 = gw_gguf_value_u32(v, &u32), ok64 = gw_gguf_value_u64(v, &u64);
    CHECK(!ok32 || ok64);
    if (ok32)
        CHECK(u64 == u32);
    if (gw_gguf_value_i64(v, &i64) && ok64)
        CHECK((uint64_t)i64 == u64);
    (void)gw_gguf_value_f64(v, &f);
    (void)gw_gguf_value_bool(v, &b);
    if (gw_gguf_value_str(v, &s)) {
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < s.len; i++) /* every byte must be readable */
            sum ^= (unsigned char)s.ptr[i];
        (void)sum;
    }
}

/* A NUL-terminated copy of a view, for the by-name lookups; NULL if it holds
 * a NUL (such names cannot be looked up by C string). */
static char *cstr(gw_gguf_str s)
{
    if (memchr(s.ptr, 0, s.len))
        return NULL;
    char *c = malloc(s.len + 1);
    if (c) {
        memcpy(c, s.ptr, s.len);
        c[s.len] = '\0';
    }
    return c;
}

static void walk(const gw_gguf *g, const uint8_t *data, size_t size)
{
    uint64_t align = gw_gguf_alignment(g), data_off = gw_gguf_data_offset(g);
    CHECK(align && (align & (align - 1)) == 0);
    CHECK(gw_gguf_file_size(g) == size);
    CHECK(data_off % align == 0);

    for (size_t i = 0; i < gw_gguf_kv_count(g); i++) {
        const gw_gguf_kv *kv = gw_gguf_kv_at(g, i);
        CHECK(kv && (const uint8_t *)kv->key.ptr >= data &&
              (const uint8_t *)kv->key.ptr + kv->key.len <= data + size);
        CHECK(kv->data >= data && kv->size <= size && kv->data + kv->size <= data + size);
        char *k = cstr(kv->key);
        if (k) {
            CHECK(gw_gguf_find(g, k) == kv);
            uint32_t u32;
            uint64_t u64;
            int64_t i64;
            double f;
            bool b;
            gw_gguf_str s;
            gw_gguf_vtype et;
            uint64_t n;
            (void)gw_gguf_get_u32(g, k, &u32);
            (void)gw_gguf_get_u64(g, k, &u64);
            (void)gw_gguf_get_i64(g, k, &i64);
            (void)gw_gguf_get_f64(g, k, &f);
            (void)gw_gguf_get_bool(g, k, &b);
            (void)gw_gguf_get_str(g, k, &s);
            CHECK((gw_gguf_get_array(g, k, &et, &n) != NULL) == (kv->type == GW_GGUF_ARRAY));
            free(k);
        }
        gw_gguf_value v;
        if (gw_gguf_kv_value(kv, &v)) {
            touch_value(&v);
            continue;
        }
        gw_gguf_iter it;
        gw_gguf_iter_init(&it, kv);
        uint64_t n = 0;
        while (gw_gguf_iter_next(&it, &v)) {
            CHECK(v.data >= kv->data && v.data + v.len <= kv->data + kv->size);
            touch_value(&v);
            n++;
        }
        CHECK(n == kv->count);
        if (kv->count) {
            gw_gguf_value last;
            CHECK(gw_gguf_kv_elem(kv, kv->count - 1, &last) && last.data == v.data);
        }
        CHECK(!gw_gguf_kv_elem(kv, kv->count, &v));
    }
    CHECK(gw_gguf_kv_at(g, gw_gguf_kv_count(g)) == NULL);

    uint64_t total = 0;
    for (size_t i = 0; i < gw_gguf_tensor_count(g); i++) {
        const gw_gguf_tensor *t = gw_gguf_tensor_at(g, i);
        uint64_t nb;
        CHECK(t && t->info && t->n_dims <= 4 && t->name.len < 64);
        CHECK(gw_ggml_nbytes(t->info, t->ne, &nb) == GW_OK && nb == t->nbytes);
        CHECK(t->offset % align == 0);
        CHECK(data_off <= size && t->offset <= size - data_off &&
              t->nbytes <= size - data_off - t->offset);
        total += t->nbytes;
        char *name = cstr(t->name);
        if (name) {
            CHECK(gw_gguf_find_tensor(g, name) == t);
            free(name);
        }
    }
    CHECK(total == gw_gguf_tensor_bytes(g));
    CHECK(gw_gguf_tensor_at(g, gw_gguf_tensor_count(g)) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_gguf *g = NULL;
    gw_error err;
    gw_gguf_fault fault;
    /* Small limits too, so the limit paths are reached with small inputs. */
    gw_gguf_limits lim;
    gw_gguf_limits_init(&lim);
    if (size && data[size - 1] == 0x7f) {
        lim.max_string = 64;
        lim.max_array = 16;
        lim.max_kv = 8;
        lim.max_tensors = 8;
    }
    int rc = gw_gguf_open_memory_ex(&g, data, size, &lim, &fault, &err);
    if (rc == GW_OK) {
        CHECK(g && fault == GW_GGUF_FAULT_NONE);
        walk(g, data, size);
        gw_gguf_close(g);
    } else {
        CHECK(!g && fault != GW_GGUF_FAULT_NONE && err.code == rc && err.message[0]);
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    return 0;
}
