/* test_gguf.c — unit tests of the GGUF reader and the ggml type table.
 *
 * Inputs (argv): 1. a llama model written by gguf_writer.py with the
 * parameters in MODEL_* below (tests/gguf/meson.build passes the same ones to
 * the writer), 2. a tied-output v2 model (TIED_*), 3. the seed corpus folder
 * (tests/gguf/corpus, made by make_corpus.py; bad_* files break one rule each).
 * Expected values come from those parameters and from the type table in the
 * shared reference (gguf-and-llama-memory.md), re-typed here, never from the
 * reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gguf/gguf.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* What tests/gguf/meson.build tells gguf_writer.py to write. */
#define MODEL_N_LAYER 3
#define MODEL_N_EMBD 4096
#define MODEL_N_HEAD 32
#define MODEL_N_HEAD_KV 8
#define MODEL_N_FF 11008
#define MODEL_N_VOCAB 32000
#define MODEL_N_CTX 8192
#define MODEL_ROPE_BASE 500000.0
#define MODEL_RMS_EPS 1e-5
#define MODEL_Q4_K 12 /* --ftype q4_k: every matrix here has ne0 % 256 == 0 */

#define TIED_N_EMBD 320 /* 320 % 256 != 0: matrices fall back to Q8_0 */
#define TIED_N_FF 640
#define TIED_N_VOCAB 260
#define TIED_ALIGN 64

static const char *model_path, *tied_path, *corpus_dir;

/* -------------------------------------------------------------- helpers */

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob;

static blob slurp(const char *path)
{
    blob b = {0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    assert_true(n >= 0);
    fseek(f, 0, SEEK_SET);
    b.len = (size_t)n;
    b.data = malloc(b.len ? b.len : 1);
    assert_non_null(b.data);
    assert_int_equal(fread(b.data, 1, b.len, f), b.len);
    fclose(f);
    return b;
}

static blob corpus(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", corpus_dir, name);
    return slurp(path);
}

/* A buffer whose last byte is followed by a PROT_NONE page: a one-byte
 * overread faults. */
typedef struct guarded {
    uint8_t *map, *at;
    size_t span;
} guarded;

static guarded guard_copy(const uint8_t *data, size_t len)
{
    guarded g;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    g.span = (len + page - 1) / page * page + page;
    g.map = mmap(NULL, g.span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g.map != MAP_FAILED);
    assert_int_equal(mprotect(g.map + g.span - page, page, PROT_NONE), 0);
    g.at = g.map + g.span - page - len;
    memcpy(g.at, data, len);
    return g;
}

static void guard_free(guarded *g) { munmap(g->map, g->span); }

static uint64_t pad(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

/* The reference's type table: id, elements per block, bytes per block. */
static const struct {
    uint32_t id;
    const char *name;
    uint32_t blk, bytes;
} ref_types[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},     {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},  {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110}, {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},       {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},   {40, "NVFP4", 64, 36},
    {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
};

static uint64_t ref_nbytes(uint32_t type, const uint64_t ne[4])
{
    for (size_t i = 0; i < sizeof ref_types / sizeof ref_types[0]; i++)
        if (ref_types[i].id == type)
            return ne[0] / ref_types[i].blk * ref_types[i].bytes * ne[1] * ne[2] * ne[3];
    fail_msg("type %u not in the reference table", type);
    return 0;
}

static void assert_str(gw_gguf_str s, const char *want)
{
    if (!gw_gguf_str_eq(s, want))
        fail_msg("got '%.*s', want '%s'", (int)s.len, s.ptr, want);
}

/* ---------------------------------------------------------- type table */

static void test_type_table(void **state)
{
    (void)state;
    size_t known = 0;
    for (size_t i = 0; i < sizeof ref_types / sizeof ref_types[0]; i++) {
        const gw_ggml_type_info *t = gw_ggml_type(ref_types[i].id);
        assert_non_null(t);
        assert_int_equal(t->id, ref_types[i].id);
        assert_string_equal(t->name, ref_types[i].name);
        assert_int_equal(t->block_elems, ref_types[i].blk);
        assert_int_equal(t->block_bytes, ref_types[i].bytes);
        assert_ptr_equal(gw_ggml_type_by_name(ref_types[i].name), t);
        known++;
    }
    uint32_t removed[] = {4, 5, 31, 32, 33, 36, 37, 38};
    const char *removed_names[] = {"Q4_2",     "Q4_3",       "Q4_0_4_4",   "Q4_0_4_8",
                                   "Q4_0_8_8", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8"};
    for (size_t i = 0; i < 8; i++) {
        assert_null(gw_ggml_type(removed[i]));
        assert_string_equal(gw_ggml_type_removed_name(removed[i]), removed_names[i]);
    }
    /* 0..42 is exactly the known ids plus the removed ones. */
    assert_int_equal(known + 8, GW_GGML_TYPE_COUNT);
    assert_null(gw_ggml_type(43));
    assert_null(gw_ggml_type(99));
    assert_null(gw_ggml_type(UINT32_MAX));
    assert_null(gw_ggml_type_removed_name(0));
    assert_ptr_equal(gw_ggml_type_by_name("q4_k"), gw_ggml_type(12));
    assert_null(gw_ggml_type_by_name("q4_2"));

    uint64_t v;
    assert_int_equal(gw_ggml_row_bytes(gw_ggml_type(12), 4096, &v), GW_OK);
    assert_int_equal(v, 4096 / 256 * 144);
    assert_int_equal(gw_ggml_row_bytes(gw_ggml_type(12), 4000, &v), GW_EINVAL);
    assert_int_equal(gw_ggml_row_bytes(gw_ggml_type(0), UINT64_MAX / 2, &v), GW_ERANGE);
    uint64_t ne[4] = {4096, 11008, 1, 1};
    assert_int_equal(gw_ggml_nbytes(gw_ggml_type(8), ne, &v), GW_OK);
    assert_int_equal(v, (uint64_t)4096 / 32 * 34 * 11008);
    uint64_t big[4] = {1u << 31, 1u << 31, 1u << 31, 1};
    assert_int_equal(gw_ggml_nbytes(gw_ggml_type(0), big, &v), GW_ERANGE);
    /* ggml's ne are int64_t: a dim past INT64_MAX is refused even when
     * another dim is 0 and the product would be 0. */
    uint64_t neg[4] = {0, ((uint64_t)1 << 63) + 5, 1, 1};
    assert_int_equal(gw_ggml_nbytes(gw_ggml_type(0), neg, &v), GW_ERANGE);
}

/* --------------------------------------------------------- valid models */

static void check_tensor(const gw_gguf *g, const char *name, uint64_t ne0, uint64_t ne1,
                         uint32_t n_dims, uint32_t type)
{
    const gw_gguf_tensor *t = gw_gguf_find_tensor(g, name);
    if (!t)
        fail_msg("tensor %s missing", name);
    assert_str(t->name, name);
    assert_int_equal(t->n_dims, n_dims);
    assert_int_equal(t->ne[0], ne0);
    assert_int_equal(t->ne[1], ne1);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->ne[3], 1);
    assert_int_equal(t->type, type);
    assert_int_equal(t->nbytes, ref_nbytes(type, t->ne));
}

/* Offsets are the running sum of PAD(nbytes, align), as ggml writes them;
 * the file ends where the last tensor's padded data ends. */
static void check_layout(const gw_gguf *g, uint64_t align)
{
    uint64_t off = 0, total = 0;
    for (size_t i = 0; i < gw_gguf_tensor_count(g); i++) {
        const gw_gguf_tensor *t = gw_gguf_tensor_at(g, i);
        assert_int_equal(t->offset, off);
        off += pad(t->nbytes, align);
        total += t->nbytes;
    }
    assert_int_equal(gw_gguf_alignment(g), align);
    assert_int_equal(gw_gguf_data_offset(g) % align, 0);
    assert_int_equal(gw_gguf_tensor_bytes(g), total);
    assert_int_equal(gw_gguf_file_size(g), gw_gguf_data_offset(g) + off);
    assert_null(gw_gguf_tensor_at(g, gw_gguf_tensor_count(g)));
}

static void test_model(void **state)
{
    (void)state;
    gw_gguf *g;
    gw_error err;
    int rc = gw_gguf_open(&g, model_path, &err);
    if (rc != GW_OK)
        fail_msg("%s", err.message);
    assert_int_equal(gw_gguf_version(g), 3);
    struct stat st;
    assert_int_equal(stat(model_path, &st), 0);
    assert_int_equal(gw_gguf_file_size(g), (uint64_t)st.st_size);
    assert_true(st.st_blocks * 512 < st.st_size / 10); /* really sparse */

    gw_gguf_str s;
    uint32_t u32;
    uint64_t u64;
    double f;
    assert_true(gw_gguf_get_str(g, "general.architecture", &s));
    assert_str(s, "llama");
    char key[128];
    assert_true(gw_gguf_get_u32(g, gw_gguf_key(key, sizeof key, s, "block_count"), &u32));
    assert_string_equal(key, "llama.block_count");
    assert_int_equal(u32, MODEL_N_LAYER);
    assert_true(gw_gguf_get_u64(g, "llama.embedding_length", &u64));
    assert_int_equal(u64, MODEL_N_EMBD);
    assert_true(gw_gguf_get_u32(g, "llama.attention.head_count", &u32));
    assert_int_equal(u32, MODEL_N_HEAD);
    assert_true(gw_gguf_get_u32(g, "llama.attention.head_count_kv", &u32));
    assert_int_equal(u32, MODEL_N_HEAD_KV);
    assert_true(gw_gguf_get_u32(g, "llama.feed_forward_length", &u32));
    assert_int_equal(u32, MODEL_N_FF);
    assert_true(gw_gguf_get_u32(g, "llama.context_length", &u32));
    assert_int_equal(u32, MODEL_N_CTX);
    assert_true(gw_gguf_get_f64(g, "llama.rope.freq_base", &f));
    assert_true(f == MODEL_ROPE_BASE);
    assert_true(gw_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &f));
    assert_true(fabs(f - MODEL_RMS_EPS) < 1e-12); /* stored as f32 */
    assert_false(gw_gguf_get_u32(g, "llama.no_such_key", &u32));
    assert_false(gw_gguf_get_u32(g, "general.architecture", &u32)); /* a string */
    assert_false(gw_gguf_get_str(g, "llama.block_count", &s));       /* a u32 */

    /* The vocabulary: <unk> <s> </s> <0x00>..<0xFF> then filler pieces. */
    gw_gguf_vtype et;
    uint64_t n;
    const gw_gguf_kv *tok = gw_gguf_get_array(g, "tokenizer.ggml.tokens", &et, &n);
    assert_non_null(tok);
    assert_int_equal(et, GW_GGUF_STRING);
    assert_int_equal(n, MODEL_N_VOCAB);
    gw_gguf_value v;
    assert_true(gw_gguf_kv_elem(tok, 1, &v));
    assert_true(gw_gguf_value_str(&v, &s));
    assert_str(s, "<s>");
    assert_true(gw_gguf_kv_elem(tok, 3 + 0x0A, &v));
    assert_true(gw_gguf_value_str(&v, &s));
    assert_str(s, "<0x0A>");
    assert_false(gw_gguf_kv_elem(tok, MODEL_N_VOCAB, &v));
    gw_gguf_iter it;
    gw_gguf_iter_init(&it, tok);
    uint64_t count = 0;
    while (gw_gguf_iter_next(&it, &v))
        count++;
    assert_int_equal(count, MODEL_N_VOCAB);
    const gw_gguf_kv *scores = gw_gguf_get_array(g, "tokenizer.ggml.scores", &et, &n);
    assert_non_null(scores);
    assert_int_equal(et, GW_GGUF_F32);
    assert_true(gw_gguf_kv_elem(scores, 500, &v));
    assert_true(gw_gguf_value_f64(&v, &f));
    assert_true(f == -500.0);
    const gw_gguf_kv *types = gw_gguf_get_array(g, "tokenizer.ggml.token_type", &et, &n);
    assert_int_equal(et, GW_GGUF_I32);
    int64_t i64 = 0;
    assert_true(gw_gguf_kv_elem(types, 3, &v) && gw_gguf_value_i64(&v, &i64));
    assert_int_equal(i64, 6); /* byte token */

    /* Tensors: token_embd, 9 per layer, output_norm, output. */
    assert_int_equal(gw_gguf_tensor_count(g), 2 + 9 * MODEL_N_LAYER + 1);
    uint64_t head_dim = MODEL_N_EMBD / MODEL_N_HEAD, kv = head_dim * MODEL_N_HEAD_KV;
    check_tensor(g, "token_embd.weight", MODEL_N_EMBD, MODEL_N_VOCAB, 2, MODEL_Q4_K);
    for (int l = 0; l < MODEL_N_LAYER; l++) {
        char name[64];
#define T(suffix, a, b, nd, ty)                                       \
    snprintf(name, sizeof name, "blk.%d.%s", l, suffix);              \
    check_tensor(g, name, a, b, nd, ty)
        T("attn_norm.weight", MODEL_N_EMBD, 1, 1, 0);
        T("attn_q.weight", MODEL_N_EMBD, MODEL_N_EMBD, 2, MODEL_Q4_K);
        T("attn_k.weight", MODEL_N_EMBD, kv, 2, MODEL_Q4_K);
        T("attn_v.weight", MODEL_N_EMBD, kv, 2, MODEL_Q4_K);
        T("attn_output.weight", MODEL_N_EMBD, MODEL_N_EMBD, 2, MODEL_Q4_K);
        T("ffn_norm.weight", MODEL_N_EMBD, 1, 1, 0);
        T("ffn_gate.weight", MODEL_N_EMBD, MODEL_N_FF, 2, MODEL_Q4_K);
        T("ffn_down.weight", MODEL_N_FF, MODEL_N_EMBD, 2, MODEL_Q4_K);
        T("ffn_up.weight", MODEL_N_EMBD, MODEL_N_FF, 2, MODEL_Q4_K);
#undef T
    }
    check_tensor(g, "output_norm.weight", MODEL_N_EMBD, 1, 1, 0);
    check_tensor(g, "output.weight", MODEL_N_EMBD, MODEL_N_VOCAB, 2, MODEL_Q4_K);
    assert_null(gw_gguf_find_tensor(g, "blk.3.attn_q.weight"));
    assert_ptr_equal(gw_gguf_tensor_at(g, 0), gw_gguf_find_tensor(g, "token_embd.weight"));
    check_layout(g, 32);
    gw_gguf_close(g);
}

static void test_tied_v2_model(void **state)
{
    (void)state;
    gw_gguf *g;
    gw_error err;
    int rc = gw_gguf_open(&g, tied_path, &err);
    if (rc != GW_OK)
        fail_msg("%s", err.message);
    assert_int_equal(gw_gguf_version(g), 2);
    uint32_t u32;
    assert_true(gw_gguf_get_u32(g, "general.alignment", &u32));
    assert_int_equal(u32, TIED_ALIGN);
    assert_null(gw_gguf_find_tensor(g, "output.weight"));
    assert_int_equal(gw_gguf_tensor_count(g), 2 + 9);
    check_tensor(g, "token_embd.weight", TIED_N_EMBD, TIED_N_VOCAB, 2, 8 /* Q8_0 */);
    check_tensor(g, "blk.0.ffn_down.weight", TIED_N_FF, TIED_N_EMBD, 2, 8);
    check_layout(g, TIED_ALIGN);
    gw_gguf_close(g);
}

/* --------------------------------------------------- typed value reads */

static void test_value_types(void **state)
{
    (void)state;
    blob b = corpus("ok_value_types.gguf");
    gw_gguf *g;
    gw_error err;
    assert_int_equal(gw_gguf_open_memory(&g, b.data, b.len, &err), GW_OK);
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    double f;
    bool bo;
    gw_gguf_str s;
    /* v.<type id>: u8 200, i8 -100, u16 60000, i16 -30000, u32 4e9,
     * i32 -2e9, f32 1.5, bool true, string "héllo", u64 2^40, i64 -2^40, f64 2.25 */
    assert_true(gw_gguf_get_u32(g, "v.0", &u32) && u32 == 200);
    assert_false(gw_gguf_get_u64(g, "v.1", &u64)); /* negative */
    assert_true(gw_gguf_get_i64(g, "v.1", &i64) && i64 == -100);
    assert_true(gw_gguf_get_f64(g, "v.1", &f) && f == -100.0);
    assert_true(gw_gguf_get_u32(g, "v.2", &u32) && u32 == 60000);
    assert_true(gw_gguf_get_i64(g, "v.3", &i64) && i64 == -30000);
    assert_true(gw_gguf_get_u32(g, "v.4", &u32) && u32 == 4000000000u);
    assert_true(gw_gguf_get_i64(g, "v.5", &i64) && i64 == -2000000000);
    assert_true(gw_gguf_get_f64(g, "v.6", &f) && f == 1.5);
    assert_false(gw_gguf_get_u32(g, "v.6", &u32)); /* a float is no integer */
    assert_true(gw_gguf_get_bool(g, "v.7", &bo) && bo);
    assert_false(gw_gguf_get_u32(g, "v.7", &u32));
    assert_true(gw_gguf_get_str(g, "v.8", &s));
    assert_str(s, "h\xc3\xa9llo");
    u32 = 7;
    assert_false(gw_gguf_get_u32(g, "v.10", &u32)); /* 2^40 does not fit */
    assert_int_equal(u32, 7);                       /* untouched */
    assert_true(gw_gguf_get_u64(g, "v.10", &u64) && u64 == (uint64_t)1 << 40);
    assert_true(gw_gguf_get_i64(g, "v.11", &i64) && i64 == -((int64_t)1 << 40));
    assert_true(gw_gguf_get_f64(g, "v.12", &f) && f == 2.25);

    /* a.<id>: two copies of the value; e.<id>: empty. */
    gw_gguf_vtype et;
    uint64_t n;
    const gw_gguf_kv *kv = gw_gguf_get_array(g, "a.3", &et, &n);
    assert_non_null(kv);
    assert_int_equal(et, GW_GGUF_I16);
    assert_int_equal(n, 2);
    gw_gguf_value v;
    assert_true(gw_gguf_kv_elem(kv, 1, &v) && gw_gguf_value_i64(&v, &i64) && i64 == -30000);
    assert_false(gw_gguf_kv_value(kv, &v)); /* an array has no scalar value */
    assert_false(gw_gguf_get_i64(g, "a.3", &i64));
    kv = gw_gguf_get_array(g, "a.8", &et, &n);
    assert_true(kv && et == GW_GGUF_STRING && n == 2);
    assert_true(gw_gguf_kv_elem(kv, 1, &v) && gw_gguf_value_str(&v, &s));
    assert_str(s, "h\xc3\xa9llo");
    for (int t = 0; t <= 12; t++) {
        if (t == GW_GGUF_ARRAY)
            continue;
        char key[16];
        snprintf(key, sizeof key, "e.%d", t);
        kv = gw_gguf_get_array(g, key, &et, &n);
        assert_non_null(kv);
        assert_int_equal(et, t);
        assert_int_equal(n, 0);
        assert_false(gw_gguf_kv_elem(kv, 0, &v));
        gw_gguf_iter it;
        gw_gguf_iter_init(&it, kv);
        assert_false(gw_gguf_iter_next(&it, &v));
    }
    assert_null(gw_gguf_get_array(g, "v.0", &et, &n));
    assert_int_equal(gw_gguf_kv_count(g), 12 * 3);
    assert_non_null(gw_gguf_kv_at(g, 35));
    assert_null(gw_gguf_kv_at(g, 36));
    gw_gguf_close(g);
    free(b.data);
}

/* ------------------------------------------------------ malformed files */

static const struct {
    const char *file;
    int code;
    gw_gguf_fault fault;
    const char *says; /* the message must contain this */
} bad_files[] = {
    {"bad_magic.gguf", GW_EPARSE, GW_GGUF_FAULT_MAGIC, "not a GGUF file (bad magic 47 47 4d 4c"},
    {"bad_legacy_ggjt.gguf", GW_EPARSE, GW_GGUF_FAULT_MAGIC, "legacy GGML/GGJT"},
    {"bad_v1.gguf", GW_ENOTSUP, GW_GGUF_FAULT_VERSION_1, "GGUF version 1 is not supported"},
    {"bad_byteswapped.gguf", GW_ENOTSUP, GW_GGUF_FAULT_BYTE_SWAPPED, "byte-swapped"},
    {"bad_v4.gguf", GW_ENOTSUP, GW_GGUF_FAULT_VERSION, "unsupported GGUF version 4"},
    {"bad_truncated.gguf", GW_EPARSE, GW_GGUF_FAULT_TRUNCATED, "truncated"},
    {"bad_string_length.gguf", GW_EPARSE, GW_GGUF_FAULT_STRING_LENGTH,
     "length 1099511627776 exceeds the limit"},
    {"bad_array_overflow.gguf", GW_EPARSE, GW_GGUF_FAULT_ARRAY,
     "array count 2305843009213693953 at offset 43 overflows"},
    {"bad_string_array_elem.gguf", GW_EPARSE, GW_GGUF_FAULT_STRING_LENGTH,
     "string array element at offset 62: length 4611686018427387904 exceeds the limit"},
    {"bad_nested_array.gguf", GW_EPARSE, GW_GGUF_FAULT_ARRAY, "arrays of arrays"},
    {"bad_value_type.gguf", GW_EPARSE, GW_GGUF_FAULT_VALUE_TYPE, "unknown value type 13"},
    {"bad_duplicate_key.gguf", GW_EPARSE, GW_GGUF_FAULT_DUPLICATE_KEY, "key 'k' appears twice"},
    {"bad_n_dims5.gguf", GW_EPARSE, GW_GGUF_FAULT_N_DIMS, "tensor 'x': n_dims 5"},
    {"bad_duplicate_tensor.gguf", GW_EPARSE, GW_GGUF_FAULT_DUPLICATE_TENSOR,
     "tensor name 'x' appears twice"},
    {"bad_tensor_name.gguf", GW_EPARSE, GW_GGUF_FAULT_TENSOR_NAME, "length 64 exceeds the limit of 63"},
    {"bad_type_removed4.gguf", GW_ENOTSUP, GW_GGUF_FAULT_TYPE_REMOVED,
     "ggml type 4 (Q4_2) was removed"},
    {"bad_type_unknown99.gguf", GW_ENOTSUP, GW_GGUF_FAULT_TYPE_UNKNOWN, "unknown ggml type 99"},
    {"bad_misaligned.gguf", GW_EPARSE, GW_GGUF_FAULT_MISALIGNED,
     "tensor 'y': offset 420 is not a multiple of the alignment 32"},
    {"bad_past_end.gguf", GW_EPARSE, GW_GGUF_FAULT_OUT_OF_FILE,
     "tensor 'x': data at offset 1048576 + 128 bytes runs past the end"},
    {"bad_overlap.gguf", GW_EPARSE, GW_GGUF_FAULT_OVERLAP, "tensors 'x' and 'y' overlap"},
    {"bad_shape_block.gguf", GW_EPARSE, GW_GGUF_FAULT_SHAPE,
     "ne[0] = 33 is not a multiple of the Q4_0 block size 32"},
    {"bad_alignment_48.gguf", GW_EPARSE, GW_GGUF_FAULT_ALIGNMENT,
     "general.alignment 48 is not a power of two"},
    {"bad_alignment_type.gguf", GW_EPARSE, GW_GGUF_FAULT_ALIGNMENT,
     "general.alignment has type u64, expected u32"},
    {"bad_count.gguf", GW_EPARSE, GW_GGUF_FAULT_COUNT, "tensor count 1099511627776 exceeds"},
};

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        blob b = corpus(bad_files[i].file);
        guarded gb = guard_copy(b.data, b.len);
        gw_gguf *g = (gw_gguf *)&gb; /* must be reset to NULL */
        gw_error err;
        gw_gguf_fault fault;
        int rc = gw_gguf_open_memory_ex(&g, gb.at, b.len, NULL, &fault, &err);
        if (rc != bad_files[i].code || fault != bad_files[i].fault ||
            !strstr(err.message, bad_files[i].says))
            fail_msg("%s: rc %d fault '%s' message '%s'", bad_files[i].file, rc,
                     gw_gguf_fault_name(fault), err.message);
        assert_null(g);
        assert_int_equal(err.code, rc);
        guard_free(&gb);
        free(b.data);

        /* Through the file path too: the message names the file. */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", corpus_dir, bad_files[i].file);
        assert_int_equal(gw_gguf_open(&g, path, &err), bad_files[i].code);
        assert_null(g);
        assert_true(strncmp(err.message, path, strlen(path)) == 0);
        assert_non_null(strstr(err.message, bad_files[i].says));
    }
}

/* Every proper prefix of a valid file is refused: as truncated while the
 * cut falls before the data section, as data past the end after it. Each
 * prefix sits against a guard page, so an overread would crash. A file
 * without tensors needs no data section: there, exactly the prefixes that
 * hold every metadata pair parse (llama.cpp accepts them too), and they all
 * lie within the last alignment's worth of padding. */
static void check_prefixes(const char *file)
{
    blob b = corpus(file);
    gw_gguf *g;
    gw_error err;
    assert_int_equal(gw_gguf_open_memory(&g, b.data, b.len, &err), GW_OK);
    uint64_t data_off = gw_gguf_data_offset(g), need = data_off, align = gw_gguf_alignment(g);
    size_t n_tensors = gw_gguf_tensor_count(g);
    for (size_t i = 0; i < n_tensors; i++) {
        const gw_gguf_tensor *t = gw_gguf_tensor_at(g, i);
        if (t->offset + t->nbytes + data_off > need)
            need = t->offset + t->nbytes + data_off;
    }
    gw_gguf_close(g);
    assert_true(need <= b.len);
    size_t first_ok = SIZE_MAX;
    for (size_t len = 0; len < b.len; len++) {
        guarded gb = guard_copy(b.data, len);
        gw_gguf_fault fault;
        int rc = gw_gguf_open_memory_ex(&g, gb.at, len, NULL, &fault, &err);
        guard_free(&gb);
        if (rc == GW_OK) {
            gw_gguf_close(g);
            if (first_ok == SIZE_MAX)
                first_ok = len;
            continue;
        }
        if (first_ok != SIZE_MAX)
            fail_msg("%s prefix %zu fails after prefix %zu parsed", file, len, first_ok);
        gw_gguf_fault want = len < data_off ? GW_GGUF_FAULT_TRUNCATED : GW_GGUF_FAULT_OUT_OF_FILE;
        if (rc != GW_EPARSE || fault != want || g != NULL)
            fail_msg("%s prefix %zu: rc %d fault '%s' (%s)", file, len, rc,
                     gw_gguf_fault_name(fault), err.message);
    }
    if (n_tensors > 0)
        assert_int_equal(first_ok == SIZE_MAX ? b.len : first_ok, need);
    else
        assert_true(first_ok + align > data_off && first_ok <= data_off);
    free(b.data);
}

static void test_prefixes(void **state)
{
    (void)state;
    check_prefixes("ok_v3_llama.gguf");
    check_prefixes("ok_v2_llama.gguf");
    check_prefixes("ok_value_types.gguf");
    check_prefixes("ok_unordered.gguf");
    check_prefixes("ok_align64.gguf");
}

static void test_limits(void **state)
{
    (void)state;
    blob b = corpus("ok_v3_llama.gguf");
    gw_gguf *g;
    gw_error err;
    gw_gguf_fault fault;
    gw_gguf_limits lim;

    gw_gguf_limits_init(&lim);
    lim.max_array = 7; /* the vocabulary has 8 tokens */
    assert_int_equal(gw_gguf_open_memory_ex(&g, b.data, b.len, &lim, &fault, &err), GW_EPARSE);
    assert_int_equal(fault, GW_GGUF_FAULT_ARRAY);
    assert_non_null(strstr(err.message, "'tokenizer.ggml.tokens': array count 8 exceeds the limit of 7"));

    gw_gguf_limits_init(&lim);
    lim.max_string = 3; /* general.name is "tiny" */
    assert_int_equal(gw_gguf_open_memory_ex(&g, b.data, b.len, &lim, &fault, &err), GW_EPARSE);
    assert_int_equal(fault, GW_GGUF_FAULT_STRING_LENGTH);

    gw_gguf_limits_init(&lim);
    lim.max_kv = 2;
    assert_int_equal(gw_gguf_open_memory_ex(&g, b.data, b.len, &lim, &fault, &err), GW_EPARSE);
    assert_int_equal(fault, GW_GGUF_FAULT_COUNT);

    gw_gguf_limits_init(&lim);
    lim.max_key = 10; /* "general.architecture" is 20 bytes */
    assert_int_equal(gw_gguf_open_memory_ex(&g, b.data, b.len, &lim, &fault, &err), GW_EPARSE);
    assert_int_equal(fault, GW_GGUF_FAULT_STRING_LENGTH);
    assert_non_null(strstr(err.message, "metadata key at offset 24: length 20"));
    free(b.data);
}

static void test_open_errors(void **state)
{
    (void)state;
    gw_gguf *g;
    gw_error err;
    gw_gguf_fault fault;
    assert_int_equal(gw_gguf_open(&g, "/nonexistent/model.gguf", &err), GW_ENOENT);
    assert_null(g);
    assert_non_null(strstr(err.message, "/nonexistent/model.gguf: cannot open"));
    assert_int_equal(gw_gguf_open_ex(&g, corpus_dir, NULL, &fault, &err), GW_EIO);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(fault, GW_GGUF_FAULT_IO);

    /* A FIFO without a writer: refused at once, not waited on. */
    char fifo[] = "/tmp/gw-gguf-fifo-XXXXXX";
    int tmpfd = mkstemp(fifo);
    assert_true(tmpfd >= 0);
    close(tmpfd);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(gw_gguf_open(&g, fifo, &err), GW_EIO);
    assert_non_null(strstr(err.message, "not a regular file"));
    unlink(fifo);

    char path[] = "/tmp/gw-gguf-empty-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gw_gguf_open_ex(&g, path, NULL, &fault, &err), GW_EPARSE);
    assert_int_equal(fault, GW_GGUF_FAULT_TRUNCATED);
    assert_non_null(strstr(err.message, "the file is empty"));
    unlink(path);

    assert_int_equal(gw_gguf_open_memory(&g, "GGU", 3, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "truncated"));
    assert_int_equal(gw_gguf_open_memory(&g, "XYZ", 3, &err), GW_EPARSE);
    assert_non_null(strstr(err.message, "not a GGUF file"));
    gw_gguf_close(NULL);
}

/* Valid corpus files: each opens against a guard page and every tensor lies
 * in the file. */
static void test_ok_corpus(void **state)
{
    (void)state;
    const char *ok[] = {"ok_v3_llama.gguf", "ok_v2_llama.gguf", "ok_align64.gguf",
                        "ok_align1.gguf",   "ok_empty.gguf",    "ok_ggml_types.gguf",
                        "ok_unordered.gguf", "ok_arch_qwen3moe.gguf", "ok_arch_gpt-oss.gguf"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        blob b = corpus(ok[i]);
        guarded gb = guard_copy(b.data, b.len);
        gw_gguf *g;
        gw_error err;
        if (gw_gguf_open_memory(&g, gb.at, b.len, &err) != GW_OK)
            fail_msg("%s: %s", ok[i], err.message);
        gw_gguf_close(g);
        guard_free(&gb);
        free(b.data);
    }
    /* one tensor of every current type, 256 x 1 each */
    blob b = corpus("ok_ggml_types.gguf");
    gw_gguf *g;
    gw_error err;
    assert_int_equal(gw_gguf_open_memory(&g, b.data, b.len, &err), GW_OK);
    assert_int_equal(gw_gguf_tensor_count(g), sizeof ref_types / sizeof ref_types[0]);
    for (size_t i = 0; i < sizeof ref_types / sizeof ref_types[0]; i++) {
        const gw_gguf_tensor *t = gw_gguf_tensor_at(g, i);
        assert_int_equal(t->type, ref_types[i].id);
        assert_int_equal(t->nbytes, 256 / ref_types[i].blk * ref_types[i].bytes);
    }
    gw_gguf_close(g);
    free(b.data);
    /* out-of-order offsets and a zero-size tensor are fine */
    b = corpus("ok_unordered.gguf");
    assert_int_equal(gw_gguf_open_memory(&g, b.data, b.len, &err), GW_OK);
    assert_int_equal(gw_gguf_find_tensor(g, "a")->offset, 256);
    assert_int_equal(gw_gguf_find_tensor(g, "z")->nbytes, 0);
    assert_int_equal(gw_gguf_find_tensor(g, "d4")->n_dims, 4);
    assert_int_equal(gw_gguf_find_tensor(g, "d4")->nbytes, 16 * 4);
    gw_gguf_close(g);
    free(b.data);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_gguf MODEL.gguf TIED.gguf CORPUS_DIR\n");
        return 2;
    }
    model_path = argv[1];
    tied_path = argv[2];
    corpus_dir = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),  cmocka_unit_test(test_model),
        cmocka_unit_test(test_tied_v2_model), cmocka_unit_test(test_value_types),
        cmocka_unit_test(test_bad_files),   cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_ok_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
