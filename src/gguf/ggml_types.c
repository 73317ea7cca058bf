/* ggml_types.c — the ggml tensor type table (see gguf.h).
 *
 * Owns: block sizes of every ggml type id 0..42, the names of removed ids,
 * and row/tensor byte sizes with overflow checks. The table is the
 * on-disk contract: ids never change meaning, removed ids are never reused. */
#include "gguf.h"

#include "core/util.h"

#include <strings.h>

#define T(i, n, e, b) [i] = {i, n, e, b, (e) > 1}

/* Index = id; entries with name == NULL are removed or unknown ids. */
static const gw_ggml_type_info types[GW_GGML_TYPE_COUNT] = {
    T(0, "F32", 1, 4),          T(1, "F16", 1, 2),
    T(2, "Q4_0", 32, 18),       T(3, "Q4_1", 32, 20),
    T(6, "Q5_0", 32, 22),       T(7, "Q5_1", 32, 24),
    T(8, "Q8_0", 32, 34),       T(9, "Q8_1", 32, 36),
    T(10, "Q2_K", 256, 84),     T(11, "Q3_K", 256, 110),
    T(12, "Q4_K", 256, 144),    T(13, "Q5_K", 256, 176),
    T(14, "Q6_K", 256, 210),    T(15, "Q8_K", 256, 292),
    T(16, "IQ2_XXS", 256, 66),  T(17, "IQ2_XS", 256, 74),
    T(18, "IQ3_XXS", 256, 98),  T(19, "IQ1_S", 256, 50),
    T(20, "IQ4_NL", 32, 18),    T(21, "IQ3_S", 256, 110),
    T(22, "IQ2_S", 256, 82),    T(23, "IQ4_XS", 256, 136),
    T(24, "I8", 1, 1),          T(25, "I16", 1, 2),
    T(26, "I32", 1, 4),         T(27, "I64", 1, 8),
    T(28, "F64", 1, 8),         T(29, "IQ1_M", 256, 56),
    T(30, "BF16", 1, 2),        T(34, "TQ1_0", 256, 54),
    T(35, "TQ2_0", 256, 66),    T(39, "MXFP4", 32, 17),
    T(40, "NVFP4", 64, 36),     T(41, "Q1_0", 128, 18),
    T(42, "Q2_0", 64, 18),
};
#undef T

const gw_ggml_type_info *gw_ggml_type(uint32_t id)
{
    if (id >= GW_GGML_TYPE_COUNT || !types[id].name)
        return NULL;
    return &types[id];
}

const char *gw_ggml_type_removed_name(uint32_t id)
{
    switch (id) {
    case 4: return "Q4_2";
    case 5: return "Q4_3";
    case 31: return "Q4_0_4_4";
    case 32: return "Q4_0_4_8";
    case 33: return "Q4_0_8_8";
    case 36: return "IQ4_NL_4_4";
    case 37: return "IQ4_NL_4_8";
    case 38: return "IQ4_NL_8_8";
    }
    return NULL;
}

const gw_ggml_type_info *gw_ggml_type_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (uint32_t i = 0; i < GW_GGML_TYPE_COUNT; i++)
        if (types[i].name && strcasecmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

int gw_ggml_row_bytes(const gw_ggml_type_info *t, uint64_t ne0, uint64_t *out)
{
    if (!t || ne0 % t->block_elems != 0)
        return GW_EINVAL;
    uint64_t v;
    if (!gw__mul_u64(ne0 / t->block_elems, t->block_bytes, &v))
        return GW_ERANGE;
    *out = v;
    return GW_OK;
}

int gw_ggml_nbytes(const gw_ggml_type_info *t, const uint64_t ne[4], uint64_t *out)
{
    /* ggml keeps ne as int64_t: the element count must fit it. */
    uint64_t elems = 1;
    for (int i = 0; i < 4; i++)
        if (ne[i] > (uint64_t)INT64_MAX || !gw__mul_u64(elems, ne[i], &elems) ||
            elems > (uint64_t)INT64_MAX)
            return GW_ERANGE;
    uint64_t row, rows = 1, total;
    int rc = gw_ggml_row_bytes(t, ne[0], &row);
    if (rc != GW_OK)
        return rc;
    for (int i = 1; i < 4; i++)
        if (!gw__mul_u64(rows, ne[i], &rows))
            return GW_ERANGE;
    if (!gw__mul_u64(rows, row, &total))
        return GW_ERANGE;
    *out = total;
    return GW_OK;
}
