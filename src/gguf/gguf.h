/* gguf.h — bounds-checked GGUF reader and the ggml type table.
 *
 * Owns: reading a GGUF file (v2 and v3, little-endian) from an mmap'd file or
 * a caller's buffer into a read-only handle: its metadata key/value pairs and
 * its tensor table, plus the table of ggml tensor types (block sizes).
 *
 * Invariants of an open handle (all established by gw_gguf_open*, which fails
 * with a clear error when any does not hold):
 *  1. Every string, array and tensor info lies inside the buffer; every size
 *     was computed with overflow-checked arithmetic.
 *  2. Keys are unique; tensor names are unique and shorter than 64 bytes.
 *  3. Every tensor has n_dims <= 4, a known (non-removed) ggml type, ne[0] a
 *     multiple of its block size, nbytes = ne[1]*ne[2]*ne[3]*row_bytes(ne[0]),
 *     an offset that is a multiple of the alignment, lies within
 *     file_size - data_offset, and does not overlap another tensor.
 *  4. data_offset = align_up(end of tensor infos, alignment); alignment is
 *     general.alignment (a u32 power of two) or 32.
 *  5. Views (gw_gguf_str, kv and tensor pointers, value payloads) point into
 *     the mapping / the caller's buffer and stay valid until gw_gguf_close.
 *     Strings are NOT NUL-terminated and may hold any bytes (no UTF-8 check).
 *  6. A handle is immutable after open: every accessor is const and may be
 *     called from several threads at once.
 *
 * A mapped file must not shrink while open (as with any mmap, reading a page
 * past the new end raises SIGBUS); the reader itself touches only the header
 * pages, never tensor data.
 *
 * Worked example:
 *     gw_gguf *g; gw_error err;
 *     if (gw_gguf_open(&g, "model.gguf", &err) != GW_OK) {
 *         fprintf(stderr, "gpuwatch: %s\n", err.message);  // "model.gguf: ..."
 *         return 1;
 *     }
 *     gw_gguf_str arch; uint32_t n_layer; char key[128];
 *     if (gw_gguf_get_str(g, "general.architecture", &arch) &&
 *         gw_gguf_get_u32(g, gw_gguf_key(key, sizeof key, arch, "block_count"), &n_layer))
 *         ...;                                             // "llama.block_count"
 *     gw_gguf_close(g);
 */
#ifndef GW_GGUF_H
#define GW_GGUF_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ ggml types */

/* Number of ggml type ids known (0 .. GW_GGML_TYPE_COUNT-1; some removed). */
#define GW_GGML_TYPE_COUNT 43

typedef struct gw_ggml_type_info {
    uint32_t id;
    const char *name;     /* ggml's name, upper case: "F32", "Q4_K", "BF16" */
    uint32_t block_elems; /* elements per block (1 for plain types) */
    uint32_t block_bytes; /* bytes per block */
    bool quantized;       /* block_elems > 1 */
} gw_ggml_type_info;

/* The info of a current ggml type; NULL for removed and unknown ids. Static. */
const gw_ggml_type_info *gw_ggml_type(uint32_t id);

/* The former name of a removed type id (4 "Q4_2", 5 "Q4_3", 31 "Q4_0_4_4",
 * 32 "Q4_0_4_8", 33 "Q4_0_8_8", 36 "IQ4_NL_4_4", 37 "IQ4_NL_4_8",
 * 38 "IQ4_NL_8_8"); NULL for any other id. Static. */
const char *gw_ggml_type_removed_name(uint32_t id);

/* Looks a current type up by name, case-insensitive ("q8_0", "F16"); NULL when
 * there is none. Static. */
const gw_ggml_type_info *gw_ggml_type_by_name(const char *name);

/* Bytes of one row of ne0 elements: ne0 / block_elems * block_bytes.
 * Returns GW_OK, GW_EINVAL when ne0 is not a multiple of the block size, or
 * GW_ERANGE on overflow; *out is set only on GW_OK. */
int gw_ggml_row_bytes(const gw_ggml_type_info *t, uint64_t ne0, uint64_t *out);

/* Bytes of a tensor of shape ne[4] (unused dims 1): ne1*ne2*ne3*row_bytes(ne0).
 * Same returns as gw_ggml_row_bytes (GW_ERANGE also when the element count
 * exceeds INT64_MAX, as ggml requires). */
int gw_ggml_nbytes(const gw_ggml_type_info *t, const uint64_t ne[4], uint64_t *out);

/* ------------------------------------------------------------ GGUF types */

typedef enum gw_gguf_vtype {
    GW_GGUF_U8 = 0,
    GW_GGUF_I8 = 1,
    GW_GGUF_U16 = 2,
    GW_GGUF_I16 = 3,
    GW_GGUF_U32 = 4,
    GW_GGUF_I32 = 5,
    GW_GGUF_F32 = 6,
    GW_GGUF_BOOL = 7,
    GW_GGUF_STRING = 8,
    GW_GGUF_ARRAY = 9,
    GW_GGUF_U64 = 10,
    GW_GGUF_I64 = 11,
    GW_GGUF_F64 = 12,
    GW_GGUF_VTYPE_COUNT
} gw_gguf_vtype;

/* "u8", "i8", ..., "string", "array", "u64", "i64", "f64"; "?" otherwise. Static. */
const char *gw_gguf_vtype_name(uint32_t t);

/* A borrowed byte string inside the file: not NUL-terminated. */
typedef struct gw_gguf_str {
    const char *ptr;
    size_t len;
} gw_gguf_str;

/* One metadata pair. Read-only view; valid until gw_gguf_close. */
typedef struct gw_gguf_kv {
    gw_gguf_str key;
    gw_gguf_vtype type;      /* of the value */
    gw_gguf_vtype elem_type; /* arrays only: element type (never ARRAY) */
    uint64_t count;          /* arrays: element count; scalars: 1 */
    const uint8_t *data;     /* payload: the scalar, or the packed elements */
    uint64_t size;           /* payload bytes */
    uint64_t file_offset;    /* where the pair starts in the file */
} gw_gguf_kv;

/* One scalar value (a kv's value, or one element of an array kv). */
typedef struct gw_gguf_value {
    gw_gguf_vtype type;  /* never ARRAY */
    const uint8_t *data; /* the little-endian bytes; for strings, the text */
    uint64_t len;        /* strings: text length; others: byte size */
} gw_gguf_value;

/* One tensor info. Read-only view; valid until gw_gguf_close. */
typedef struct gw_gguf_tensor {
    gw_gguf_str name;              /* < 64 bytes, unique */
    uint32_t n_dims;               /* 0..4 */
    uint64_t ne[4];                /* dims; unused ones are 1 */
    uint32_t type;                 /* ggml type id */
    const gw_ggml_type_info *info; /* never NULL */
    uint64_t offset;               /* relative to the data section */
    uint64_t nbytes;
} gw_gguf_tensor;

/* Why a buffer was refused: one value per check, for tests and programs that
 * react to a cause. The gw_error message says the same in words. */
#define GW_GGUF_FAULT_LIST(X)                                                 \
    X(GW_GGUF_FAULT_NONE, "none")                                             \
    X(GW_GGUF_FAULT_IO, "cannot read the file")                               \
    X(GW_GGUF_FAULT_NOMEM, "out of memory")                                   \
    X(GW_GGUF_FAULT_MAGIC, "not a GGUF file")                                 \
    X(GW_GGUF_FAULT_VERSION_1, "GGUF version 1")                              \
    X(GW_GGUF_FAULT_BYTE_SWAPPED, "byte-swapped (big-endian) file")           \
    X(GW_GGUF_FAULT_VERSION, "unsupported GGUF version")                      \
    X(GW_GGUF_FAULT_TRUNCATED, "truncated")                                   \
    X(GW_GGUF_FAULT_COUNT, "count too large")                                 \
    X(GW_GGUF_FAULT_STRING_LENGTH, "string too long")                         \
    X(GW_GGUF_FAULT_VALUE_TYPE, "bad value type")                             \
    X(GW_GGUF_FAULT_ARRAY, "bad array")                                       \
    X(GW_GGUF_FAULT_DUPLICATE_KEY, "duplicate key")                           \
    X(GW_GGUF_FAULT_ALIGNMENT, "bad general.alignment")                       \
    X(GW_GGUF_FAULT_TENSOR_NAME, "bad tensor name")                           \
    X(GW_GGUF_FAULT_DUPLICATE_TENSOR, "duplicate tensor name")                \
    X(GW_GGUF_FAULT_N_DIMS, "too many dimensions")                            \
    X(GW_GGUF_FAULT_SHAPE, "bad tensor shape")                                \
    X(GW_GGUF_FAULT_TYPE_REMOVED, "removed ggml type")                        \
    X(GW_GGUF_FAULT_TYPE_UNKNOWN, "unknown ggml type")                        \
    X(GW_GGUF_FAULT_MISALIGNED, "misaligned tensor offset")                   \
    X(GW_GGUF_FAULT_OUT_OF_FILE, "tensor data past the end of the file")      \
    X(GW_GGUF_FAULT_OVERLAP, "overlapping tensors")

typedef enum gw_gguf_fault {
#define GW__GGUF_FAULT_ENUM(name, text) name,
    GW_GGUF_FAULT_LIST(GW__GGUF_FAULT_ENUM)
#undef GW__GGUF_FAULT_ENUM
    GW_GGUF_FAULT_KINDS /* number of faults above, not a fault */
} gw_gguf_fault;

/* Short static text of a fault ("duplicate tensor name"). */
const char *gw_gguf_fault_name(gw_gguf_fault f);

/* Limits applied to untrusted sizes on top of the file's own bounds. */
typedef struct gw_gguf_limits {
    uint64_t max_string;  /* any string value; default 64 MiB */
    uint64_t max_key;     /* key length; default 65535 (the GGUF spec) */
    uint64_t max_array;   /* elements of one array; default 1<<28 */
    uint64_t max_kv;      /* metadata pairs; default 1<<20 */
    uint64_t max_tensors; /* default 1<<20 */
} gw_gguf_limits;

/* Fills the defaults above. */
void gw_gguf_limits_init(gw_gguf_limits *l);

/* ------------------------------------------------------------- lifecycle */

typedef struct gw_gguf gw_gguf;

/* Maps path read-only (mmap, MAP_PRIVATE) and parses it. On GW_OK the caller
 * owns *out and closes it with gw_gguf_close. On failure *out is NULL,
 * nothing is left mapped or allocated, err->message is "<path>: <what is
 * wrong>" and the return is the error code:
 *   GW_EIO / GW_ENOENT / GW_EPERM   the file cannot be opened or mapped
 *   GW_ENOTSUP                      v1, byte-swapped, newer version, removed
 *                                   or unknown ggml type
 *   GW_EPARSE                       any other malformation (incl. truncation)
 *   GW_ENOMEM                       allocation failed
 * Tensor data is never read, so a sparse file is as cheap as its header. */
int gw_gguf_open(gw_gguf **out, const char *path, gw_error *err);

/* Parses a caller's buffer, which is borrowed: it must stay valid and
 * unchanged until gw_gguf_close. file_size is taken to be len. Returns and
 * errors as gw_gguf_open, with messages that have no "<path>: " prefix. */
int gw_gguf_open_memory(gw_gguf **out, const void *data, size_t len, gw_error *err);

/* gw_gguf_open_memory with explicit limits (NULL: defaults) and, when fault
 * is not NULL, the precise cause (GW_GGUF_FAULT_NONE on success). */
int gw_gguf_open_memory_ex(gw_gguf **out, const void *data, size_t len,
                                  const gw_gguf_limits *limits, gw_gguf_fault *fault,
                                  gw_error *err);

/* gw_gguf_open with explicit limits and fault, as gw_gguf_open_memory_ex. */
int gw_gguf_open_ex(gw_gguf **out, const char *path, const gw_gguf_limits *limits,
                           gw_gguf_fault *fault, gw_error *err);

/* Unmaps (when mapped) and frees the handle; every view dies. NULL is a no-op. */
void gw_gguf_close(gw_gguf *g);

/* ------------------------------------------------------------ file facts */

uint32_t gw_gguf_version(const gw_gguf *g);   /* 2 or 3 */
uint64_t gw_gguf_file_size(const gw_gguf *g); /* bytes (sparse holes count) */
uint64_t gw_gguf_alignment(const gw_gguf *g); /* power of two */
uint64_t gw_gguf_data_offset(const gw_gguf *g); /* start of tensor data */
/* Sum of every tensor's nbytes. */
uint64_t gw_gguf_tensor_bytes(const gw_gguf *g);

/* -------------------------------------------------------------- metadata */

size_t gw_gguf_kv_count(const gw_gguf *g);

/* The i-th pair in file order; NULL when i >= count. */
const gw_gguf_kv *gw_gguf_kv_at(const gw_gguf *g, size_t i);

/* The pair whose key equals key (a NUL-terminated string); NULL if none.
 * O(1) average (hash). */
const gw_gguf_kv *gw_gguf_find(const gw_gguf *g, const char *key);

/* Builds "<arch>.<suffix>" into buf[cap] (truncating, always NUL-terminated)
 * and returns buf: a helper for architecture keys. */
const char *gw_gguf_key(char *buf, size_t cap, gw_gguf_str arch, const char *suffix);

/* The scalar value of a kv; false for arrays. */
bool gw_gguf_kv_value(const gw_gguf_kv *kv, gw_gguf_value *out);

/* Element i of an array kv; false when kv is not an array or i >= count.
 * O(1) for fixed-size elements, O(i) for string arrays (use the iterator). */
bool gw_gguf_kv_elem(const gw_gguf_kv *kv, uint64_t i, gw_gguf_value *out);

/* Walks an array kv's elements in order, O(1) each:
 *     gw_gguf_iter it; gw_gguf_value v;
 *     gw_gguf_iter_init(&it, kv);
 *     while (gw_gguf_iter_next(&it, &v)) ...
 * A non-array kv yields nothing. */
typedef struct gw_gguf_iter {
    const gw_gguf_kv *kv;
    uint64_t index; /* of the next element */
    uint64_t pos;   /* byte offset of the next element in kv->data */
} gw_gguf_iter;
void gw_gguf_iter_init(gw_gguf_iter *it, const gw_gguf_kv *kv);
bool gw_gguf_iter_next(gw_gguf_iter *it, gw_gguf_value *out);

/* Typed reads of a value. Integer reads accept every integer type (u8..i64)
 * and fail when the value does not fit the requested type; f64 also accepts
 * f32 and integers; bool only bool; str only string. On false *out is
 * unchanged. */
bool gw_gguf_value_u32(const gw_gguf_value *v, uint32_t *out);
bool gw_gguf_value_u64(const gw_gguf_value *v, uint64_t *out);
bool gw_gguf_value_i64(const gw_gguf_value *v, int64_t *out);
bool gw_gguf_value_f64(const gw_gguf_value *v, double *out);
bool gw_gguf_value_bool(const gw_gguf_value *v, bool *out);
bool gw_gguf_value_str(const gw_gguf_value *v, gw_gguf_str *out);

/* By key: find + scalar value + typed read. False when the key is absent, is
 * an array, or the value does not convert (see above). */
bool gw_gguf_get_u32(const gw_gguf *g, const char *key, uint32_t *out);
bool gw_gguf_get_u64(const gw_gguf *g, const char *key, uint64_t *out);
bool gw_gguf_get_i64(const gw_gguf *g, const char *key, int64_t *out);
bool gw_gguf_get_f64(const gw_gguf *g, const char *key, double *out);
bool gw_gguf_get_bool(const gw_gguf *g, const char *key, bool *out);
bool gw_gguf_get_str(const gw_gguf *g, const char *key, gw_gguf_str *out);

/* The array kv at key: fills elem_type and count (either may be NULL) and
 * returns it; NULL when absent or not an array. */
const gw_gguf_kv *gw_gguf_get_array(const gw_gguf *g, const char *key,
                                           gw_gguf_vtype *elem_type, uint64_t *count);

/* True when s equals the NUL-terminated string c. */
bool gw_gguf_str_eq(gw_gguf_str s, const char *c);

/* --------------------------------------------------------------- tensors */

size_t gw_gguf_tensor_count(const gw_gguf *g);

/* The i-th tensor info in file order; NULL when i >= count. */
const gw_gguf_tensor *gw_gguf_tensor_at(const gw_gguf *g, size_t i);

/* The tensor named name (NUL-terminated); NULL if none. O(1) average. */
const gw_gguf_tensor *gw_gguf_find_tensor(const gw_gguf *g, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* GW_GGUF_H */
