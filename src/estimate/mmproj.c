/* mmproj.c — the vision projector (--mmproj): its hyper-parameters from the
 * projector GGUF and the compute buffer llama.cpp's CLIP reserves for it.
 *
 * Owns: the mapping from clip.* keys and v.* / mm.* tensor names to
 * gw_est_mmproj, the warm-up image size of each projector type, and the
 * graph builders of the projector types with exact rules (the same ops in
 * the same ggml_build_forward_expand order as tools/mtmd/clip.cpp and
 * tools/mtmd/models/{llava,siglip,qwen2vl,pixtral}.cpp). The allocation is
 * graph.c's simulator (sim.h).
 *
 * What clip.cpp does, and this file follows (llama.cpp as bundled by
 * node-llama-cpp 3.22.1):
 *   - at load it builds the graph for one square dummy image of side
 *     warmup_image_size: image_size by default; qwen2/2.5-VL 46x46 merged
 *     tokens (side 46 * patch * merge); pixtral 16x16 tokens;
 *   - flash attention follows llama.cpp's -fa: auto tries it first and
 *     keeps it where the backend supports it (the CPU always does);
 *   - ggml_backend_sched_reserve on [GPU, CPU] (or [CPU]), weights on the
 *     first backend, graph inputs on the CPU, 1 copy (no pipeline
 *     parallelism), op offload on; the buffer sizes are the scheduler's.
 *
 * Invariants:
 *  1. gw_est_mmproj_read either fills *out completely or zeroes it and
 *     returns an error naming the missing or bad key / tensor.
 *  2. Every shape comes from the file's validated hyper-parameters or its
 *     tensor infos (no dimension 0, at most 2^40 elements); sizes are
 *     overflow-checked by the simulator (GW_ERANGE).
 *  3. gw_est_mmproj_compute is a pure function of its inputs.
 */
#include "estimate/sim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define T_F32 0u
#define T_F16 1u
#define T_BF16 30u
#define T_I32 26u
#define NONE GW__SIM_NONE

/* ------------------------------------------------------------ reading */

static const char *const slot_names[GW_EST_MM_SLOTS] = {
    [GW_EST_MM_PATCH] = "v.patch_embd.weight",
    [GW_EST_MM_PATCH_1] = "v.patch_embd.weight.1",
    [GW_EST_MM_PATCH_B] = "v.patch_embd.bias",
    [GW_EST_MM_CLASS] = "v.class_embd",
    [GW_EST_MM_POS] = "v.position_embd.weight",
    [GW_EST_MM_PRE_LN] = "v.pre_ln.weight",
    [GW_EST_MM_PRE_LN_B] = "v.pre_ln.bias",
    [GW_EST_MM_POST_LN] = "v.post_ln.weight",
    [GW_EST_MM_POST_LN_B] = "v.post_ln.bias",
    [GW_EST_MM_QKV] = "v.blk.0.attn_qkv.weight",
    [GW_EST_MM_QKV_B] = "v.blk.0.attn_qkv.bias",
    [GW_EST_MM_Q] = "v.blk.0.attn_q.weight",
    [GW_EST_MM_Q_B] = "v.blk.0.attn_q.bias",
    [GW_EST_MM_K] = "v.blk.0.attn_k.weight",
    [GW_EST_MM_K_B] = "v.blk.0.attn_k.bias",
    [GW_EST_MM_V] = "v.blk.0.attn_v.weight",
    [GW_EST_MM_V_B] = "v.blk.0.attn_v.bias",
    [GW_EST_MM_O] = "v.blk.0.attn_out.weight",
    [GW_EST_MM_O_B] = "v.blk.0.attn_out.bias",
    [GW_EST_MM_Q_NORM] = "v.blk.0.attn_q_norm.weight",
    [GW_EST_MM_K_NORM] = "v.blk.0.attn_k_norm.weight",
    [GW_EST_MM_LN1] = "v.blk.0.ln1.weight",
    [GW_EST_MM_LN1_B] = "v.blk.0.ln1.bias",
    [GW_EST_MM_LN2] = "v.blk.0.ln2.weight",
    [GW_EST_MM_LN2_B] = "v.blk.0.ln2.bias",
    [GW_EST_MM_UP] = "v.blk.0.ffn_up.weight",
    [GW_EST_MM_UP_B] = "v.blk.0.ffn_up.bias",
    [GW_EST_MM_GATE] = "v.blk.0.ffn_gate.weight",
    [GW_EST_MM_GATE_B] = "v.blk.0.ffn_gate.bias",
    [GW_EST_MM_DOWN] = "v.blk.0.ffn_down.weight",
    [GW_EST_MM_DOWN_B] = "v.blk.0.ffn_down.bias",
    [GW_EST_MM_LS1] = "v.blk.0.ls1.weight",
    [GW_EST_MM_LS2] = "v.blk.0.ls2.weight",
    [GW_EST_MM_ATTN_POST_NORM] = "v.blk.0.attn_post_norm.weight",
    [GW_EST_MM_FFN_POST_NORM] = "v.blk.0.ffn_post_norm.weight",
    [GW_EST_MM_MOE] = "v.blk.0.ffn_gate_exps.weight",
    [GW_EST_MM_0] = "mm.0.weight",
    [GW_EST_MM_0_B] = "mm.0.bias",
    [GW_EST_MM_1] = "mm.1.weight",
    [GW_EST_MM_1_B] = "mm.1.bias",
    [GW_EST_MM_2] = "mm.2.weight",
    [GW_EST_MM_2_B] = "mm.2.bias",
    [GW_EST_MM_3] = "mm.3.weight",
    [GW_EST_MM_INP_PROJ] = "mm.input_projection.weight",
    [GW_EST_MM_SOFT_EMB_NORM] = "mm.soft_emb_norm.weight",
    [GW_EST_MM_FC] = "mm.model.fc.weight",
    [GW_EST_MM_PATCH_MERGER] = "mm.patch_merger.weight",
    [GW_EST_MM_INP_NORM] = "mm.input_norm.weight",
    [GW_EST_MM_IMG_BREAK] = "v.token_embd.img_break",
};

/* Projector types: exact kinds, and the warm-up preset clip.cpp applies
 * (set_warmup_n_tokens: side = tokens_per_side * patch * merge; 0: the
 * image size). merge_key/merge_default: where n_merge comes from. */
static const struct proj_info {
    const char *name;
    gw_est_proj kind;
    uint32_t warmup_tokens_side;
    const char *merge_key;
    uint32_t merge_default;
} projs[] = {
    {"mlp", GW_EST_PROJ_MLP, 0, NULL, 1},
    {"gemma3", GW_EST_PROJ_GEMMA3, 0, "clip.vision.projector.scale_factor", 4},
    {"idefics3", GW_EST_PROJ_IDEFICS3, 0, "clip.vision.projector.scale_factor", 1},
    {"qwen2vl_merger", GW_EST_PROJ_QWEN2VL, 46, "clip.vision.spatial_merge_size", 2},
    {"qwen2.5vl_merger", GW_EST_PROJ_QWEN25VL, 46, "clip.vision.spatial_merge_size", 2},
    {"qwen2.5o", GW_EST_PROJ_QWEN25VL, 46, "clip.vision.spatial_merge_size", 2},
    {"pixtral", GW_EST_PROJ_PIXTRAL, 16, "clip.vision.spatial_merge_size", 1},
    /* approximate: plain ViT at the same warm-up size */
    {"qwen3vl_merger", GW_EST_PROJ_OTHER, 46, "clip.vision.spatial_merge_size", 2},
    {"glm4v", GW_EST_PROJ_OTHER, 46, "clip.vision.spatial_merge_size", 2},
    {"lightonocr", GW_EST_PROJ_OTHER, 16, "clip.vision.spatial_merge_size", 1},
    {"kimivl", GW_EST_PROJ_OTHER, 16, "clip.vision.projector.scale_factor", 1},
    {"gemma4v", GW_EST_PROJ_OTHER, 16, "clip.vision.projector.scale_factor", 3},
    {"phi4", GW_EST_PROJ_OTHER, 16, NULL, 1},
    {"youtuvl", GW_EST_PROJ_OTHER, 16, "clip.vision.spatial_merge_size", 2},
    {"paddleocr", GW_EST_PROJ_OTHER, 28, NULL, 2},
};

static const struct proj_info *find_proj(const char *name)
{
    for (size_t i = 0; i < GW__ARRAY_LEN(projs); i++)
        if (strcmp(projs[i].name, name) == 0)
            return &projs[i];
    return NULL;
}

static int need_u32(const gw_gguf *g, const char *key, uint32_t *out, gw_error *err)
{
    if (!gw_gguf_get_u32(g, key, out))
        return gw__error_set(err, GW_EPARSE, "mmproj: missing or non-integer %s", key);
    return GW_OK;
}

/* The most elements of a tensor the graph takes a shape from: every
 * product of its dimensions the builders form stays far inside int64. */
#define MAX_ELEMS (1ull << 40)

/* Shapes of the slot tensors. A dimension of 0 leaves the other ones
 * unbounded by the file size, so it is refused like an oversized tensor. */
static int read_slots(const gw_gguf *g, gw_est_mmproj *mp, gw_error *err)
{
    for (int i = 0; i < GW_EST_MM_SLOTS; i++) {
        const gw_gguf_tensor *t = gw_gguf_find_tensor(g, slot_names[i]);
        gw_est_mm_tensor *d = &mp->t[i];
        d->present = t != NULL;
        if (!t)
            continue;
        d->type = t->type;
        uint64_t n = 1;
        for (int k = 0; k < 4; k++) {
            if (t->ne[k] == 0 || !gw__mul_u64(n, t->ne[k], &n) || n > MAX_ELEMS)
                return gw__error_set(err, GW_EPARSE,
                                     "mmproj: tensor %s: shape %llu x %llu x %llu x %llu has a "
                                     "zero dimension or more than 2^40 elements",
                                     slot_names[i], (unsigned long long)t->ne[0],
                                     (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                                     (unsigned long long)t->ne[3]);
            d->ne[k] = (int64_t)t->ne[k];
        }
    }
    return GW_OK;
}

/* clip.cpp swaps ffn_up/ffn_down of old conversions (down.ne0 == n_embd). */
static void unswap_ffn(gw_est_mmproj *mp)
{
    gw_est_mm_tensor *up = &mp->t[GW_EST_MM_UP], *down = &mp->t[GW_EST_MM_DOWN];
    if (mp->kind == GW_EST_PROJ_PIXTRAL || mp->kind == GW_EST_PROJ_OTHER || !up->present ||
        !down->present || down->ne[0] != (int64_t)mp->n_embd)
        return;
    gw_est_mm_tensor x = *up;
    *up = *down;
    *down = x;
    x = mp->t[GW_EST_MM_UP_B];
    mp->t[GW_EST_MM_UP_B] = mp->t[GW_EST_MM_DOWN_B];
    mp->t[GW_EST_MM_DOWN_B] = x;
}

/* Tensors the exact graph of mp->kind cannot do without (llama.cpp
 * refuses the file, or its graph would crash, without them). */
static int check_required(const gw_est_mmproj *mp, gw_error *err)
{
    static const struct {
        gw_est_proj kind;
        gw_est_mm_slot slot;
    } req[] = {
        {GW_EST_PROJ_MLP, GW_EST_MM_0},           {GW_EST_PROJ_MLP, GW_EST_MM_0_B},
        {GW_EST_PROJ_MLP, GW_EST_MM_POS},         {GW_EST_PROJ_GEMMA3, GW_EST_MM_INP_PROJ},
        {GW_EST_PROJ_GEMMA3, GW_EST_MM_SOFT_EMB_NORM}, {GW_EST_PROJ_IDEFICS3, GW_EST_MM_FC},
        {GW_EST_PROJ_QWEN2VL, GW_EST_MM_PATCH_1}, {GW_EST_PROJ_QWEN2VL, GW_EST_MM_0},
        {GW_EST_PROJ_QWEN2VL, GW_EST_MM_2},       {GW_EST_PROJ_QWEN25VL, GW_EST_MM_PATCH_1},
        {GW_EST_PROJ_QWEN25VL, GW_EST_MM_0},      {GW_EST_PROJ_QWEN25VL, GW_EST_MM_2},
        {GW_EST_PROJ_PIXTRAL, GW_EST_MM_1},       {GW_EST_PROJ_PIXTRAL, GW_EST_MM_2},
        {GW_EST_PROJ_PIXTRAL, GW_EST_MM_IMG_BREAK},
    };
    if (!mp->t[GW_EST_MM_PATCH].present)
        return gw__error_set(err, GW_EPARSE, "mmproj: no tensor %s (not a vision projector?)",
                             slot_names[GW_EST_MM_PATCH]);
    if (mp->n_layer > 0 && !mp->t[GW_EST_MM_O].present)
        return gw__error_set(err, GW_EPARSE, "mmproj: no tensor %s", slot_names[GW_EST_MM_O]);
    for (size_t i = 0; i < GW__ARRAY_LEN(req); i++)
        if (req[i].kind == mp->kind && !mp->t[req[i].slot].present)
            return gw__error_set(err, GW_EPARSE, "mmproj: projector %s needs tensor %s",
                                 mp->projector, slot_names[req[i].slot]);
    return GW_OK;
}

/* Variants the exact graphs do not cover: flagged approximate. */
static bool is_variant(const gw_est_mmproj *mp)
{
    static const gw_est_mm_slot odd[] = {GW_EST_MM_Q_NORM, GW_EST_MM_K_NORM, GW_EST_MM_LS1,
                                         GW_EST_MM_LS2, GW_EST_MM_ATTN_POST_NORM,
                                         GW_EST_MM_FFN_POST_NORM, GW_EST_MM_MOE};
    for (size_t i = 0; i < GW__ARRAY_LEN(odd); i++)
        if (mp->t[odd[i]].present)
            return true;
    if (mp->kind == GW_EST_PROJ_MLP && (mp->t[GW_EST_MM_3].present || mp->n_feature_layers > 0))
        return true; /* Yi-style MLP_NORM, granite feature stacks */
    if (mp->n_layer > 0 && mp->kind != GW_EST_PROJ_OTHER && !mp->t[GW_EST_MM_Q].present)
        return true; /* fused QKV only in build_vit graphs; treat as a variant */
    return mp->n_head_kv != mp->n_head;
}

/* The vision hyper-parameters; out->projector and kind already set. */
static int read_vision(const gw_gguf *g, gw_est_mmproj *mp, const struct proj_info *pi,
                       gw_error *err)
{
    int rc;
    if ((rc = need_u32(g, "clip.vision.image_size", &mp->image_size, err)) ||
        (rc = need_u32(g, "clip.vision.patch_size", &mp->patch_size, err)) ||
        (rc = need_u32(g, "clip.vision.embedding_length", &mp->n_embd, err)) ||
        (rc = need_u32(g, "clip.vision.feed_forward_length", &mp->n_ff, err)) ||
        (rc = need_u32(g, "clip.vision.block_count", &mp->n_layer, err)) ||
        (rc = need_u32(g, "clip.vision.projection_dim", &mp->projection_dim, err)) ||
        (rc = need_u32(g, "clip.vision.attention.head_count", &mp->n_head, err)))
        return rc;
    mp->n_head_kv = mp->n_head;
    gw_gguf_get_u32(g, "clip.vision.attention.head_count_kv", &mp->n_head_kv);
    if (!gw_gguf_get_u32(g, "clip.vision.attention.head_dim", &mp->head_dim) || !mp->head_dim)
        mp->head_dim = mp->n_head ? mp->n_embd / mp->n_head : 0;
    mp->n_merge = pi ? pi->merge_default : 1;
    if (pi && pi->merge_key)
        gw_gguf_get_u32(g, pi->merge_key, &mp->n_merge);
    if (mp->kind == GW_EST_PROJ_QWEN25VL &&
        (rc = need_u32(g, "clip.vision.n_wa_pattern", &mp->n_wa_pattern, err)))
        return rc;
    gw_gguf_get_u32(g, "clip.vision.n_wa_pattern", &mp->n_wa_pattern);
    uint64_t nf = 0;
    if (gw_gguf_get_array(g, "clip.vision.feature_layer", NULL, &nf))
        mp->n_feature_layers = nf > UINT32_MAX ? UINT32_MAX : (uint32_t)nf;
    if (mp->image_size > 8192)
        return gw__error_set(err, GW_EPARSE, "mmproj: clip.vision.image_size %u is too large (max 8192)",
                             mp->image_size);
    if (mp->patch_size == 0 || mp->patch_size >= 65536)
        return gw__error_set(err, GW_EPARSE, "mmproj: clip.vision.patch_size %u out of range",
                             mp->patch_size);
    if (mp->n_embd == 0 || mp->n_head == 0 || mp->head_dim == 0 || mp->n_head_kv == 0)
        return gw__error_set(err, GW_EPARSE,
                             "mmproj: clip.vision.embedding_length / attention.head_count must be > 0");
    if (mp->n_layer > GW_EST_MAX_LAYERS)
        return gw__error_set(err, GW_EPARSE, "mmproj: clip.vision.block_count %u is too large",
                             mp->n_layer);
    if (mp->n_merge == 0 || mp->n_merge >= 65536)
        return gw__error_set(err, GW_EPARSE, "mmproj: merge size %u out of range", mp->n_merge);
    uint64_t side = pi && pi->warmup_tokens_side
                        ? (uint64_t)pi->warmup_tokens_side * mp->patch_size * mp->n_merge
                        : mp->image_size;
    if (side == 0) /* dynamic size without a preset: a 896-pixel guess */
        side = 896;
    if (side / mp->patch_size == 0 || side > 46000)
        return gw__error_set(err, GW_EPARSE, "mmproj: warm-up image side %llu vs patch size %u",
                             (unsigned long long)side, mp->patch_size);
    mp->warmup_size = (uint32_t)side;
    return GW_OK;
}

int gw_est_mmproj_read(const gw_gguf *g, gw_est_mmproj *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    gw_gguf_str s = {0};
    if (!gw_gguf_get_str(g, "clip.projector_type", &s) &&
        !gw_gguf_get_str(g, "clip.vision.projector_type", &s) &&
        !gw_gguf_get_str(g, "clip.audio.projector_type", &s))
        return gw__error_set(err, GW_EPARSE, "mmproj: no clip.projector_type (not a projector GGUF)");
    if (s.len == 0 || s.len >= sizeof out->projector || memchr(s.ptr, 0, s.len))
        return gw__error_set(err, GW_EPARSE,
                             "mmproj: bad clip.projector_type (empty, over 39 bytes or with a NUL)");
    memcpy(out->projector, s.ptr, s.len);
    bool audio = false;
    gw_gguf_get_bool(g, "clip.has_vision_encoder", &out->vision);
    gw_gguf_get_bool(g, "clip.has_audio_encoder", &audio);
    if (!out->vision && !audio) {
        memset(out, 0, sizeof *out);
        return gw__error_set(err, GW_EPARSE,
                             "mmproj: neither clip.has_vision_encoder nor clip.has_audio_encoder is set");
    }
    out->weight_bytes = gw_gguf_tensor_bytes(g);
    const struct proj_info *pi = find_proj(out->projector);
    out->kind = pi ? pi->kind : GW_EST_PROJ_OTHER;
    out->approximate = true;
    if (!out->vision)
        return GW_OK; /* audio only: no vision graph to estimate */
    int rc = read_slots(g, out, err);
    if (rc == GW_OK)
        rc = read_vision(g, out, pi, err);
    if (rc == GW_OK)
        rc = check_required(out, err);
    if (rc != GW_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    unswap_ffn(out);
    out->approximate = out->kind == GW_EST_PROJ_OTHER || is_variant(out);
    return GW_OK;
}

/* ------------------------------------------------------ graph builders */

/* Builder state: the simulator, the projector, the warm-up image. */
typedef struct pb {
    gw__sim *s;
    const gw_est_mmproj *mp;
    bool fa;
    int64_t nx;     /* image side in pixels */
    int64_t px, py; /* patches per side */
    int64_t P;      /* patches */
    int64_t E, H, D;
} pb;

static int op(pb *b, gw__sim_kind k, gw__sim_class c, uint32_t type, int64_t n0, int64_t n1,
              int64_t n2, int64_t n3, int s0, int s1, int s2, int s3)
{
    int64_t ne[4] = {n0, n1, n2, n3};
    return gw__sim_op(b->s, k, c, type, ne, s0, s1, s2, s3);
}

static const int64_t *ne_of(pb *b, int t)
{
    return gw__sim_ne(b->s, t);
}

/* A weight of the projector, or NONE when the file has no such tensor. */
static int W(pb *b, gw_est_mm_slot slot)
{
    const gw_est_mm_tensor *t = &b->mp->t[slot];
    return t->present ? gw__sim_weight(b->s, t->type, t->ne) : NONE;
}

static int view(pb *b, int a, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    return op(b, GW__SIM_VIEW, GW__SIM_OP_PLAIN, gw__sim_type(b->s, a), n0, n1, n2, n3, a, NONE,
              NONE, NONE);
}

/* ggml_permute(a, p0, p1, p2, p3): axis i of a becomes axis p_i. */
static int permute(pb *b, int a, int p0, int p1, int p2, int p3)
{
    const int64_t *n = ne_of(b, a);
    int64_t r[4];
    int p[4] = {p0, p1, p2, p3};
    for (int i = 0; i < 4; i++)
        r[p[i]] = n[i];
    return view(b, a, r[0], r[1], r[2], r[3]);
}

static int transpose(pb *b, int a)
{
    return permute(b, a, 1, 0, 2, 3);
}

static int cont(pb *b, int a, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    return op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, gw__sim_type(b->s, a), n0, n1, n2, n3, a, NONE,
              NONE, NONE);
}

static int cont_same(pb *b, int a)
{
    const int64_t *n = ne_of(b, a);
    return cont(b, a, n[0], n[1], n[2], n[3]);
}

/* ggml_cast: a new contiguous tensor of another type. ggml also points its
 * src[1] at itself; that changes nothing for the allocator. */
static int cast(pb *b, int a, uint32_t type)
{
    const int64_t *n = ne_of(b, a);
    return op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, type, n[0], n[1], n[2], n[3], a, NONE, NONE, NONE);
}

/* A result of a's type and shape: in place (add, mul, rms_norm, unary,
 * soft_max, scale, rope) or not (norm, GLU). */
static int like(pb *b, gw__sim_kind k, gw__sim_class c, int a, int s1)
{
    const int64_t *n = ne_of(b, a);
    return op(b, k, c, gw__sim_type(b->s, a), n[0], n[1], n[2], n[3], a, s1, NONE, NONE);
}

/* ggml_add / ggml_mul with an optional second operand (NONE: a itself). */
static int add(pb *b, int a, int c)
{
    return c == NONE ? a : like(b, GW__SIM_INPLACE, GW__SIM_OP_PLAIN, a, c);
}

/* ggml_mul: the same in-place rule as ggml_add. */
static int mul(pb *b, int a, int c)
{
    return add(b, a, c);
}

static int unary(pb *b, int a)
{
    return like(b, GW__SIM_INPLACE, GW__SIM_OP_PLAIN, a, NONE);
}

static int mm(pb *b, int a, int x)
{
    const int64_t *na = ne_of(b, a), *nx = ne_of(b, x);
    return op(b, GW__SIM_OTHER, GW__SIM_OP_MUL_MAT, T_F32, na[1], nx[1], nx[2], nx[3], a, x, NONE,
              NONE);
}

static int get_rows(pb *b, int a, int idx)
{
    const int64_t *na = ne_of(b, a), *ni = ne_of(b, idx);
    return op(b, GW__SIM_OTHER, GW__SIM_OP_GET_ROWS, T_F32, na[0], ni[0], ni[1], ni[2], a, idx, NONE,
              NONE);
}

static int input(pb *b, uint32_t type, int64_t n0, int64_t n1)
{
    int64_t ne[4] = {n0, n1, 1, 1};
    return gw__sim_input(b->s, type, ne);
}

/* build_norm: (rms_)norm, then * weight and + bias when the file has them. */
static int norm(pb *b, int x, gw_est_mm_slot w, gw_est_mm_slot bias, bool rms)
{
    int cur = rms ? like(b, GW__SIM_INPLACE, GW__SIM_OP_PLAIN, x, NONE)
                  : like(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, x, NONE);
    cur = mul(b, cur, W(b, w));
    return add(b, cur, W(b, bias));
}

/* build_ffn: up (+bias), gate (+bias) and GLU, or the activation in place;
 * down (+bias). */
static int ffn(pb *b, int x, gw_est_mm_slot up, gw_est_mm_slot up_b, gw_est_mm_slot gate,
               gw_est_mm_slot gate_b, gw_est_mm_slot down, gw_est_mm_slot down_b)
{
    int wu = W(b, up);
    int tmp = wu == NONE ? x : mm(b, wu, x);
    tmp = add(b, tmp, W(b, up_b));
    int cur;
    int wg = gate < GW_EST_MM_SLOTS ? W(b, gate) : NONE;
    if (wg != NONE) {
        cur = mm(b, wg, x);
        cur = add(b, cur, W(b, gate_b));
        cur = like(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, cur, tmp); /* *glu_split */
    } else {
        cur = unary(b, tmp);
    }
    int wd = W(b, down);
    if (wd != NONE)
        cur = mm(b, wd, cur);
    return add(b, cur, W(b, down_b));
}

/* ggml_conv_2d(w, x, stride s, no padding): im2col, one matrix product,
 * a permute made contiguous; [OW, OH, OC, N]. */
static int conv2d(pb *b, int w, int x, int64_t s)
{
    const int64_t *nw = ne_of(b, w), *nx = ne_of(b, x);
    int64_t kw = nw[0], kh = nw[1], ic = nw[2], oc = nw[3];
    int64_t ow = (nx[0] - kw) / s + 1, oh = (nx[1] - kh) / s + 1, n = nx[3];
    uint32_t ty = gw__sim_type(b->s, w) == T_BF16 ? T_F32 : T_F16;
    int im = op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, ty, ic * kh * kw, ow, oh, n, w, x, NONE, NONE);
    int a = view(b, im, ic * kh * kw, n * oh * ow, 1, 1);
    int wr = view(b, w, kw * kh * ic, oc, 1, 1);
    int r = mm(b, a, wr);
    r = view(b, r, ow, oh, n, oc);
    r = permute(b, r, 0, 1, 3, 2);
    return cont_same(b, r);
}

/* build_inp: the patch embeddings [E, P]. */
static int build_inp(pb *b, int raw)
{
    int cur = conv2d(b, W(b, GW_EST_MM_PATCH), raw, b->mp->patch_size);
    cur = view(b, cur, b->P, b->E, 1, 1);
    cur = transpose(b, cur);
    cur = cont_same(b, cur);
    return add(b, cur, W(b, GW_EST_MM_PATCH_B));
}

/* build_attn: q/k/v [D, H, P] ordered first, then flash attention (k, v
 * and the mask cast to F16) or KQ, soft_max, KQV; the output projection. */
static int attn(pb *b, int q, int k, int v, int mask)
{
    gw__sim_expand(b->s, q);
    gw__sim_expand(b->s, k);
    gw__sim_expand(b->s, v);
    q = permute(b, q, 0, 2, 1, 3);
    k = permute(b, k, 0, 2, 1, 3);
    int cur;
    if (b->fa) {
        v = permute(b, v, 0, 2, 1, 3);
        k = cast(b, k, T_F16);
        v = cast(b, v, T_F16);
        if (mask != NONE)
            mask = cast(b, mask, T_F16);
        const int64_t *nq = ne_of(b, q);
        int64_t d0 = ne_of(b, v)[0], q1 = nq[1], q2 = nq[2], q3 = nq[3];
        cur = op(b, GW__SIM_OTHER, GW__SIM_OP_FA, T_F32, d0, q2, q1, q3, q, k, v, mask);
        cur = view(b, cur, d0 * q2, q1 * q3, 1, 1);
    } else {
        v = permute(b, v, 1, 2, 0, 3);
        v = cont_same(b, v);
        int kq = mm(b, k, q);
        kq = like(b, GW__SIM_INPLACE, GW__SIM_OP_PLAIN, kq, mask); /* soft_max_ext */
        int kqv = mm(b, v, kq);
        cur = permute(b, kqv, 0, 2, 1, 3);
        const int64_t *n = ne_of(b, cur);
        cur = cont(b, cur, n[0] * n[1], n[2] * n[3], 1, 1);
    }
    cur = mm(b, W(b, GW_EST_MM_O), cur);
    return add(b, cur, W(b, GW_EST_MM_O_B));
}

/* Q, K, V of one block: separate projections (+ biases), viewed as heads. */
static void qkv(pb *b, int cur, int *q, int *k, int *v)
{
    *q = add(b, mm(b, W(b, GW_EST_MM_Q), cur), W(b, GW_EST_MM_Q_B));
    *k = add(b, mm(b, W(b, GW_EST_MM_K), cur), W(b, GW_EST_MM_K_B));
    *v = add(b, mm(b, W(b, GW_EST_MM_V), cur), W(b, GW_EST_MM_V_B));
    *q = view(b, *q, b->D, b->H, b->P, 1);
    *k = view(b, *k, b->D, b->H, b->P, 1);
    *v = view(b, *v, b->D, b->H, b->P, 1);
}

/* pixtral's 2D RoPE: two ropes over half the head each (the second in place). */
static int rope_2d(pb *b, int x, int pos_h, int pos_w)
{
    const int64_t *n = ne_of(b, x);
    int r = op(b, GW__SIM_INPLACE, GW__SIM_OP_ROPE, T_F32, n[0], n[1], n[2], n[3], x, pos_h, NONE,
               NONE);
    n = ne_of(b, r);
    return op(b, GW__SIM_INPLACE, GW__SIM_OP_ROPE, T_F32, n[0], n[1], n[2], n[3], r, pos_w, NONE,
              NONE);
}

/* How a ViT block rotates q and k: not at all (siglip, llava), 2D RoPE from
 * row/column positions (pixtral), or RoPE over 4 position rows (Qwen2-VL's
 * M-RoPE). */
typedef struct vit_rope {
    enum { ROPE_NONE, ROPE_2D, ROPE_M } kind;
    int pos_h, pos_w, positions;
} vit_rope;

static int rotate(pb *b, int x, const vit_rope *r)
{
    if (r->kind == ROPE_2D)
        return rope_2d(b, x, r->pos_h, r->pos_w);
    if (r->kind == ROPE_M)
        return op(b, GW__SIM_INPLACE, GW__SIM_OP_ROPE, T_F32, b->D, b->H, b->P, 1, x, r->positions,
                  NONE, NONE);
    return x;
}

/* One pre-norm transformer block of clip.cpp's build_vit: attention (with
 * mask when not NONE) and the FFN, each added to its input. */
static int vit_block(pb *b, int inpL, bool rms, const vit_rope *r, int mask)
{
    int cur = norm(b, inpL, GW_EST_MM_LN1, GW_EST_MM_LN1_B, rms);
    int q, k, v;
    qkv(b, cur, &q, &k, &v);
    q = rotate(b, q, r);
    k = rotate(b, k, r);
    cur = attn(b, q, k, v, mask);
    inpL = add(b, cur, inpL);
    cur = norm(b, inpL, GW_EST_MM_LN2, GW_EST_MM_LN2_B, rms);
    cur = ffn(b, cur, GW_EST_MM_UP, GW_EST_MM_UP_B, GW_EST_MM_GATE, GW_EST_MM_GATE_B,
              GW_EST_MM_DOWN, GW_EST_MM_DOWN_B);
    return add(b, inpL, cur);
}

/* build_vit (siglip, pixtral): optional learned positions, pre-norm,
 * n_layer blocks, post-norm. pos_h/pos_w: pixtral's 2D RoPE, else NONE. */
static int build_vit(pb *b, int inp, bool rms, int pos_h, int pos_w)
{
    inp = add(b, inp, W(b, GW_EST_MM_POS));
    int inpL = view(b, inp, b->E, b->P, 1, 1);
    if (b->mp->t[GW_EST_MM_PRE_LN].present)
        inpL = norm(b, inpL, GW_EST_MM_PRE_LN, GW_EST_MM_PRE_LN_B, rms);
    vit_rope r = {pos_h != NONE ? ROPE_2D : ROPE_NONE, pos_h, pos_w, NONE};
    for (uint32_t il = 0; il < b->mp->n_layer; il++)
        inpL = vit_block(b, inpL, rms, &r, NONE);
    if (b->mp->t[GW_EST_MM_POST_LN].present)
        inpL = norm(b, inpL, GW_EST_MM_POST_LN, GW_EST_MM_POST_LN_B, rms);
    return view(b, inpL, b->E, b->P, 1, 1);
}

/* build_patch_merge_permute (pixel shuffle) by factor f. */
static int patch_merge(pb *b, int cur, int64_t f)
{
    int64_t w = b->px, h = b->py, E = b->E;
    cur = view(b, cur, E, w, h, 1);
    int64_t pw = (w + f - 1) / f * f - w, ph = (h + f - 1) / f * f - h;
    if (pw || ph) { /* ggml_pad */
        cur = op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, gw__sim_type(b->s, cur), E, w + pw, h + ph, 1,
                 cur, NONE, NONE, NONE);
        w += pw;
        h += ph;
    }
    cur = view(b, cur, E * f, w / f, h, 1);
    cur = permute(b, cur, 0, 2, 1, 3);
    cur = cont(b, cur, E * f * f, h / f, w / f, 1);
    cur = permute(b, cur, 0, 2, 1, 3);
    const int64_t *n = ne_of(b, cur);
    return cont(b, cur, n[0], n[1] * n[2], 1, 1);
}

/* clip_graph_siglip: gemma3 (average pool, norm, projection), idefics3
 * (pixel shuffle, fc); other projectors: the ViT alone (approximate). */
static int build_siglip(pb *b)
{
    const gw_est_mmproj *mp = b->mp;
    int64_t ne[4] = {b->nx, b->nx, 3, 1};
    int inp = build_inp(b, gw__sim_input(b->s, T_F32, ne));
    int cur = build_vit(b, inp, false, NONE, NONE);
    if (mp->kind == GW_EST_PROJ_GEMMA3) {
        int64_t k = mp->n_merge, p = b->px, q = (p - k) / k + 1;
        cur = transpose(b, cur);
        cur = cont(b, cur, p, p, b->E, 1);
        cur = op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, T_F32, q, q, b->E, 1, cur, NONE, NONE, NONE);
        cur = view(b, cur, q * q, b->E, 1, 1);
        cur = cont_same(b, transpose(b, cur));
        cur = unary(b, cur); /* rms_norm */
        cur = mul(b, cur, W(b, GW_EST_MM_SOFT_EMB_NORM));
        int wt = cont_same(b, transpose(b, W(b, GW_EST_MM_INP_PROJ)));
        cur = mm(b, wt, cur);
    } else if (mp->kind == GW_EST_PROJ_IDEFICS3) {
        if (mp->n_merge > 1)
            cur = patch_merge(b, cur, mp->n_merge);
        cur = mm(b, W(b, GW_EST_MM_FC), cur);
    }
    return cur;
}

/* clip_graph_llava with the "mlp" projector: class token, learned
 * positions by get_rows, n_layer - 1 blocks (the second-to-last layer's
 * output feeds the projector), patch rows, mm.0 + GELU (+ mm.2). */
static int build_llava(pb *b)
{
    const gw_est_mmproj *mp = b->mp;
    bool cls = mp->t[GW_EST_MM_CLASS].present;
    int64_t n_pos = b->P + (cls ? 1 : 0);
    int64_t ne[4] = {b->nx, b->nx, 3, 1};
    int inp = build_inp(b, gw__sim_input(b->s, T_F32, ne));
    if (cls) /* ggml_concat along dim 1 */
        inp = op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, T_F32, b->E, n_pos, 1, 1, inp,
                 W(b, GW_EST_MM_CLASS), NONE, NONE);
    int positions = input(b, T_I32, n_pos, 1);
    inp = add(b, inp, get_rows(b, W(b, GW_EST_MM_POS), positions));
    int inpL = inp;
    if (mp->t[GW_EST_MM_PRE_LN].present)
        inpL = norm(b, inpL, GW_EST_MM_PRE_LN, GW_EST_MM_PRE_LN_B, false);
    int64_t P = b->P;
    b->P = n_pos; /* the blocks see the class token too */
    vit_rope r = {ROPE_NONE, NONE, NONE, NONE};
    for (uint32_t il = 0; il + 1 < mp->n_layer; il++)
        inpL = vit_block(b, inpL, false, &r, NONE);
    b->P = P;
    if (mp->t[GW_EST_MM_POST_LN].present)
        inpL = norm(b, inpL, GW_EST_MM_POST_LN, GW_EST_MM_POST_LN_B, false);
    const int64_t *n = ne_of(b, inpL);
    int emb = view(b, inpL, n[0], n[1], 1, 1);
    emb = get_rows(b, emb, input(b, T_I32, P, 1));
    emb = add(b, mm(b, W(b, GW_EST_MM_0), emb), W(b, GW_EST_MM_0_B));
    emb = unary(b, emb); /* gelu */
    int w2 = W(b, GW_EST_MM_2);
    if (w2 != NONE)
        emb = add(b, mm(b, w2, emb), W(b, GW_EST_MM_2_B));
    return emb;
}

/* Qwen2-VL's input: two patch convolutions added, then 2x2 patch groups
 * made adjacent. */
static int qwen_inp(pb *b)
{
    int64_t ne[4] = {b->nx, b->nx, 3, 1};
    int raw = gw__sim_input(b->s, T_F32, ne);
    int64_t s = b->mp->patch_size, E = b->E;
    int c0 = conv2d(b, W(b, GW_EST_MM_PATCH), raw, s);
    int c1 = conv2d(b, W(b, GW_EST_MM_PATCH_1), raw, s);
    int inp = add(b, c0, c1);
    inp = permute(b, inp, 1, 2, 0, 3);
    inp = cont(b, inp, E * 2, b->px / 2, b->py, 1);
    inp = view(b, inp, E * 2, b->px / 2, 2, b->py / 2);
    inp = permute(b, inp, 0, 2, 1, 3);
    return cont(b, inp, E, b->px * b->py, 1, 1);
}

/* clip_graph_qwen2vl: M-RoPE blocks; 2.5-VL adds RMS norms, window
 * attention (a [P, P] mask, token reordering) with every n_wa_pattern-th
 * block full. */
static int build_qwen2vl(pb *b)
{
    const gw_est_mmproj *mp = b->mp;
    bool rms = mp->kind == GW_EST_PROJ_QWEN25VL, wa = mp->n_wa_pattern > 0;
    int64_t P = b->P, E = b->E;
    int inpL = qwen_inp(b);
    int positions = input(b, T_I32, P * 4, 1);
    if (mp->t[GW_EST_MM_PRE_LN].present)
        inpL = norm(b, inpL, GW_EST_MM_PRE_LN, GW_EST_MM_PRE_LN_B, rms);
    int mask = NONE;
    if (wa) {
        int inv_idx = input(b, T_I32, P / 4, 1);
        mask = input(b, T_F32, P, P);
        if (b->fa)
            mask = cast(b, mask, T_F16);
        inpL = view(b, inpL, E * 4, P / 4, 1, 1);
        inpL = get_rows(b, inpL, inv_idx);
        inpL = view(b, inpL, E, P, 1, 1);
    }
    vit_rope r = {ROPE_M, NONE, NONE, positions};
    for (uint32_t il = 0; il < mp->n_layer; il++) {
        bool full = !wa || (il + 1) % mp->n_wa_pattern == 0;
        inpL = vit_block(b, inpL, rms, &r, full ? NONE : mask);
    }
    if (mp->t[GW_EST_MM_POST_LN].present)
        inpL = norm(b, inpL, GW_EST_MM_POST_LN, GW_EST_MM_POST_LN_B, rms);
    int emb = view(b, inpL, E * 4, P / 4, 1, 1);
    emb = ffn(b, emb, GW_EST_MM_0, GW_EST_MM_0_B, GW_EST_MM_SLOTS, GW_EST_MM_SLOTS, GW_EST_MM_2,
              GW_EST_MM_2_B);
    if (wa) {
        int idx = input(b, T_I32, P / 4, 1);
        emb = view(b, emb, mp->projection_dim, P / 4, 1, 1);
        emb = get_rows(b, emb, idx);
        emb = view(b, emb, mp->projection_dim, P / 4, 1, 1);
    }
    return emb;
}

/* clip_graph_pixtral: 2D RoPE ViT with RMS norms; Mistral Small 3.1's
 * patch merger (unfold by im2col, projection); the MLP; one [IMG_BREAK]
 * row end per image row (a zeroed scratch tensor plus the embedding,
 * concatenated). */
static int build_pixtral(pb *b)
{
    const gw_est_mmproj *mp = b->mp;
    int64_t P = b->P, E = b->E, m = mp->n_merge;
    int pos_h = input(b, T_I32, P, 1), pos_w = input(b, T_I32, P, 1);
    int64_t ne[4] = {b->nx, b->nx, 3, 1};
    int inp = build_inp(b, gw__sim_input(b->s, T_F32, ne));
    int cur = build_vit(b, inp, true, pos_h, pos_w);
    if (mp->t[GW_EST_MM_PATCH_MERGER].present) {
        cur = mul(b, unary(b, cur), W(b, GW_EST_MM_INP_NORM)); /* rms_norm, * weight */
        cur = view(b, cur, E, b->px, b->py, 1);
        cur = cont_same(b, permute(b, cur, 2, 0, 1, 3));
        int kernel = view(b, cur, m, m, ne_of(b, cur)[2], 1);
        const int64_t *n = ne_of(b, cur);
        int64_t ow = (n[0] - m) / m + 1, oh = (n[1] - m) / m + 1;
        cur = op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, T_F32, n[2] * m * m, ow, oh, n[3], kernel, cur,
                 NONE, NONE);
        cur = view(b, cur, ne_of(b, cur)[0], ow * oh, 1, 1);
        cur = mm(b, W(b, GW_EST_MM_PATCH_MERGER), cur);
    }
    cur = ffn(b, cur, GW_EST_MM_1, GW_EST_MM_1_B, GW_EST_MM_SLOTS, GW_EST_MM_SLOTS, GW_EST_MM_2,
              GW_EST_MM_2_B);
    int64_t py = b->py / m, px = b->px / m, nt = ne_of(b, cur)[0];
    int tmp = view(b, cur, nt, px, py, 1);
    int64_t tne[4] = {nt, 1, py, 1};
    int tok = gw__sim_scratch(b->s, T_F32, tne);
    tok = unary(b, tok); /* scale by 0 */
    tok = add(b, tok, W(b, GW_EST_MM_IMG_BREAK));
    tmp = op(b, GW__SIM_OTHER, GW__SIM_OP_PLAIN, T_F32, nt, px + 1, py, 1, tmp, tok, NONE, NONE);
    return view(b, tmp, nt, px * py + py - 1, 1, 1);
}

int gw_est_mmproj_compute(const gw_est_mmproj *mp, bool flash_attn, bool gpu, bool cuda,
                          uint64_t out[2], gw_error *err)
{
    out[0] = out[1] = 0;
    if (!mp->vision)
        return GW_OK;
    gw__sim *s = gw__sim_new(gpu ? 1 : 0, cuda);
    if (!s)
        return gw__error_set(err, GW_ENOMEM, "mmproj: out of memory simulating the projector graph");
    gw__sim_place(s, gpu ? 0 : -1);
    pb b = {.s = s, .mp = mp, .fa = flash_attn, .nx = mp->warmup_size};
    b.px = b.py = b.nx / mp->patch_size;
    b.P = b.px * b.py;
    b.E = mp->n_embd;
    b.H = mp->n_head;
    b.D = mp->head_dim;
    int root;
    switch (mp->kind) {
    case GW_EST_PROJ_MLP:
        root = build_llava(&b);
        break;
    case GW_EST_PROJ_QWEN2VL:
    case GW_EST_PROJ_QWEN25VL:
        root = build_qwen2vl(&b);
        break;
    case GW_EST_PROJ_PIXTRAL:
        root = build_pixtral(&b);
        break;
    default: /* gemma3, idefics3; any other projector: the ViT alone */
        root = build_siglip(&b);
        break;
    }
    gw__sim_expand(s, root);
    uint64_t sizes[2] = {0, 0};
    int rc = gw__sim_run(s, true, 1, sizes, err);
    gw__sim_free(s);
    if (rc != GW_OK)
        return rc;
    if (gpu) {
        out[0] = sizes[0];
        out[1] = sizes[1];
    } else {
        out[1] = sizes[0];
    }
    return GW_OK;
}
