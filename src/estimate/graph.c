/* graph.c — the compute buffer: a simulation of ggml-alloc over the
 * worst-case graph llama.cpp reserves.
 *
 * Owns: a tiny tensor graph (shapes, types, sources, views; no data), the
 * graph builders of the known architectures (the same op sequence and the
 * same ggml_build_forward_expand order as llama.cpp's model graphs), and an
 * allocator that follows ggml-alloc's rules:
 *   - graph order is ggml's depth-first visit of each expanded tensor's
 *     sources; ops without sources (inputs, weights, KV cache) are leafs;
 *   - every leaf that is an input is allocated first (weights and the KV
 *     cache live in other buffers and cost nothing here);
 *   - a node that can run in place (add, mul, norm, rope, softmax, scale,
 *     unary...) takes over the memory of a source it is the only child of,
 *     when that source is a tensor of this buffer with the same shape/type;
 *   - a tensor is freed after its last child ran (views keep their base);
 *     graph outputs (result_norm, logits) are never freed;
 *   - memory comes from a best-fit free list (the last block is unbounded)
 *     with TENSOR_ALIGNMENT (32) padding; the buffer size is the high-water
 *     mark.
 * Invariants: tensors are append-only in one array and refer to each other
 * by index; every size is overflow-checked (a graph whose bytes overflow is
 * GW_ERANGE); the simulation allocates O(nodes) memory and frees it all.
 */
#include "core/util.h"
#include "estimate/estimate_impl.h"

#include <stdlib.h>
#include <string.h>

#define T_F32 0u
#define T_F16 1u
#define T_I32 26u
#define T_I64 27u
#define ALIGN 32u
#define NONE (-1)

enum op_kind {
    K_LEAF = 0, /* no op: input, weight or KV cache */
    K_VIEW,     /* view / reshape / permute / transpose / set_rows / cpy */
    K_INPLACE,  /* may reuse a source's memory */
    K_OTHER,
};

typedef struct sim_tensor {
    int64_t ne[4];
    uint32_t type;
    uint8_t kind;
    bool input, output, external;
    int src[5];
    int view_src; /* base of a view */
    /* graph / allocation state */
    bool visited;
    int n_children, n_views;
    bool allocated;
    uint64_t offset;
} sim_tensor;

typedef struct blk {
    uint64_t offset, size;
} blk;

typedef struct sim {
    sim_tensor *t;
    size_t n, cap;
    int *nodes, *leafs;
    size_t n_nodes, n_leafs, cap_nodes, cap_leafs;
    blk *free;
    size_t n_free, cap_free;
    uint64_t max_size;
    bool failed;   /* ENOMEM */
    bool overflow; /* ERANGE */
} sim;

/* ------------------------------------------------------------ tensors */

static int t_add(sim *s, uint32_t type, uint8_t kind, const int64_t ne[4], int a, int b, int c,
                 int d, int e)
{
    if (s->failed)
        return 0;
    int64_t shape[4] = {ne[0], ne[1], ne[2], ne[3]}; /* ne may point into s->t */
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        sim_tensor *nt = realloc(s->t, nc * sizeof *nt);
        if (!nt) {
            s->failed = true;
            return 0;
        }
        s->t = nt;
        s->cap = nc;
    }
    sim_tensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    memcpy(t->ne, shape, sizeof t->ne);
    t->type = type;
    t->kind = kind;
    t->src[0] = a;
    t->src[1] = b;
    t->src[2] = c;
    t->src[3] = d;
    t->src[4] = e;
    t->view_src = NONE;
    if (kind == K_VIEW && a != NONE)
        t->view_src = s->t[a].view_src != NONE ? s->t[a].view_src : a;
    return (int)s->n++;
}

static int leaf(sim *s, uint32_t type, int64_t n0, int64_t n1, int64_t n2, int64_t n3, bool input)
{
    int64_t ne[4] = {n0, n1, n2, n3};
    int t = t_add(s, type, K_LEAF, ne, NONE, NONE, NONE, NONE, NONE);
    if (!s->failed) {
        s->t[t].input = input;
        s->t[t].external = !input;
    }
    return t;
}

/* An external tensor (weight or cache): only its shape matters. */
static int W(sim *s, int64_t n0, int64_t n1, int64_t n2)
{
    return leaf(s, T_F16, n0, n1, n2, 1, false);
}

static int input(sim *s, uint32_t type, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    return leaf(s, type, n0, n1, n2, n3, true);
}

static int view(sim *s, int a, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    int64_t ne[4] = {n0, n1, n2, n3};
    uint32_t ty = s->failed ? 0 : s->t[a].type;
    return t_add(s, ty, K_VIEW, ne, a, NONE, NONE, NONE, NONE);
}

static int permute0213(sim *s, int a)
{
    if (s->failed)
        return 0;
    int64_t *n = s->t[a].ne;
    return view(s, a, n[0], n[2], n[1], n[3]);
}

static int transpose(sim *s, int a)
{
    if (s->failed)
        return 0;
    int64_t *n = s->t[a].ne;
    return view(s, a, n[1], n[0], n[2], n[3]);
}

static int same(sim *s, uint8_t kind, int a, int b, int c)
{
    if (s->failed)
        return 0;
    return t_add(s, s->t[a].type, kind, s->t[a].ne, a, b, c, NONE, NONE);
}

/* In-place capable ops: add, mul, rms_norm, norm? (no), rope, softmax, scale, unary. */
static int add(sim *s, int a, int b) { return same(s, K_INPLACE, a, b, NONE); }
static int mul(sim *s, int a, int b) { return same(s, K_INPLACE, a, b, NONE); }
static int rms_norm(sim *s, int a) { return same(s, K_INPLACE, a, NONE, NONE); }
static int unary(sim *s, int a) { return same(s, K_INPLACE, a, NONE, NONE); }
static int rope(sim *s, int a, int pos) { return same(s, K_INPLACE, a, pos, NONE); }
static int softmax(sim *s, int a, int mask, int sinks)
{
    return same(s, K_INPLACE, a, mask, sinks);
}
/* ggml_norm is not in ggml-alloc's in-place list. */
static int layer_norm(sim *s, int a) { return same(s, K_OTHER, a, NONE, NONE); }

static int new_op(sim *s, uint32_t type, int64_t n0, int64_t n1, int64_t n2, int64_t n3, int a,
                  int b, int c, int d, int e)
{
    int64_t ne[4] = {n0, n1, n2, n3};
    return t_add(s, type, K_OTHER, ne, a, b, c, d, e);
}

static int mul_mat(sim *s, int a, int b)
{
    if (s->failed)
        return 0;
    return new_op(s, T_F32, s->t[a].ne[1], s->t[b].ne[1], s->t[b].ne[2], s->t[b].ne[3], a, b, NONE,
                  NONE, NONE);
}

static int mul_mat_id(sim *s, int as, int b, int ids)
{
    if (s->failed)
        return 0;
    return new_op(s, T_F32, s->t[as].ne[1], s->t[ids].ne[0], s->t[b].ne[2], 1, as, b, ids, NONE,
                  NONE);
}

static int get_rows(sim *s, int a, int idx)
{
    if (s->failed)
        return 0;
    return new_op(s, T_F32, s->t[a].ne[0], s->t[idx].ne[0], s->t[idx].ne[1], s->t[idx].ne[2], a,
                  idx, NONE, NONE, NONE);
}

static int cont(sim *s, int a, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    if (s->failed)
        return 0;
    return new_op(s, s->t[a].type, n0, n1, n2, n3, a, NONE, NONE, NONE, NONE);
}

static int glu_split(sim *s, int a, int b)
{
    return same(s, K_OTHER, a, b, NONE);
}

static int set_rows(sim *s, int dst, int src, int idx)
{
    if (s->failed)
        return 0;
    int64_t *n = s->t[dst].ne;
    int64_t ne[4] = {n[0], n[1], n[2], n[3]};
    return t_add(s, s->t[dst].type, K_VIEW, ne, dst, src, idx, NONE, NONE);
}

/* ------------------------------------------------------ graph order */

static void order_push(sim *s, bool is_leaf, int v)
{
    int **arr = is_leaf ? &s->leafs : &s->nodes;
    size_t *n = is_leaf ? &s->n_leafs : &s->n_nodes;
    size_t *cap = is_leaf ? &s->cap_leafs : &s->cap_nodes;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 512;
        int *a = realloc(*arr, nc * sizeof *a);
        if (!a) {
            s->failed = true;
            return;
        }
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
}

/* ggml_visit_parents: depth-first over sources, then the tensor itself.
 * Iterative, so deep graphs cannot overflow the stack. */
static void expand(sim *s, int root)
{
    if (s->failed || s->t[root].visited)
        return;
    int stack_small[256];
    int *stack = stack_small;
    size_t cap = 256, n = 0;
    int next_src_small[256];
    int *next_src = next_src_small;
    stack[n] = root;
    next_src[n] = 0;
    n++;
    s->t[root].visited = true;
    while (n > 0 && !s->failed) {
        int cur = stack[n - 1];
        if (next_src[n - 1] < 5) {
            int src = s->t[cur].src[next_src[n - 1]++];
            if (src != NONE && !s->t[src].visited) {
                if (n == cap) {
                    size_t nc = cap * 2;
                    int *ns = malloc(nc * sizeof *ns), *nx = malloc(nc * sizeof *nx);
                    if (!ns || !nx) {
                        free(ns);
                        free(nx);
                        s->failed = true;
                        break;
                    }
                    memcpy(ns, stack, n * sizeof *ns);
                    memcpy(nx, next_src, n * sizeof *nx);
                    if (stack != stack_small) {
                        free(stack);
                        free(next_src);
                    }
                    stack = ns;
                    next_src = nx;
                    cap = nc;
                }
                s->t[src].visited = true;
                stack[n] = src;
                next_src[n] = 0;
                n++;
            }
            continue;
        }
        n--;
        order_push(s, s->t[cur].kind == K_LEAF, cur);
    }
    if (stack != stack_small) {
        free(stack);
        free(next_src);
    }
}

/* ------------------------------------------------------- allocator */

static uint64_t t_bytes(sim *s, const sim_tensor *t)
{
    const gw_ggml_type_info *ti = gw_ggml_type(t->type);
    uint64_t row, n = 0;
    if (!ti || gw_ggml_row_bytes(ti, (uint64_t)t->ne[0], &row) != GW_OK ||
        !gw__mul_u64(row, (uint64_t)t->ne[1], &n) || !gw__mul_u64(n, (uint64_t)t->ne[2], &n) ||
        !gw__mul_u64(n, (uint64_t)t->ne[3], &n)) {
        s->overflow = true;
        return 0;
    }
    uint64_t a;
    if (!gw__add_u64(n, ALIGN - 1, &a)) {
        s->overflow = true;
        return 0;
    }
    return a / ALIGN * ALIGN;
}

static void free_insert(sim *s, size_t pos, uint64_t off, uint64_t size)
{
    if (s->n_free == s->cap_free) {
        size_t nc = s->cap_free ? s->cap_free * 2 : 64;
        blk *nb = realloc(s->free, nc * sizeof *nb);
        if (!nb) {
            s->failed = true;
            return;
        }
        s->free = nb;
        s->cap_free = nc;
    }
    memmove(&s->free[pos + 1], &s->free[pos], (s->n_free - pos) * sizeof *s->free);
    s->free[pos].offset = off;
    s->free[pos].size = size;
    s->n_free++;
}

static void free_remove(sim *s, size_t i)
{
    memmove(&s->free[i], &s->free[i + 1], (s->n_free - i - 1) * sizeof *s->free);
    s->n_free--;
}

static uint64_t dyn_alloc(sim *s, uint64_t size)
{
    size_t best = SIZE_MAX;
    uint64_t best_size = UINT64_MAX;
    for (size_t i = 0; i + 1 < s->n_free; i++)
        if (s->free[i].size >= size && s->free[i].size <= best_size) {
            best = i;
            best_size = s->free[i].size;
        }
    if (best == SIZE_MAX)
        best = s->n_free - 1; /* the unbounded last block */
    uint64_t off = s->free[best].offset;
    s->free[best].offset += size;
    s->free[best].size -= size;
    if (s->free[best].size == 0)
        free_remove(s, best);
    if (off + size > s->max_size)
        s->max_size = off + size;
    return off;
}

static void dyn_free(sim *s, uint64_t off, uint64_t size)
{
    for (size_t i = 0; i < s->n_free; i++) {
        blk *b = &s->free[i];
        if (b->offset + b->size == off) {
            b->size += size;
            if (i + 1 < s->n_free && b->offset + b->size == s->free[i + 1].offset) {
                b->size += s->free[i + 1].size;
                free_remove(s, i + 1);
            }
            return;
        }
        if (off + size == b->offset) {
            b->offset = off;
            b->size += size;
            if (i > 0 && s->free[i - 1].offset + s->free[i - 1].size == b->offset) {
                s->free[i - 1].size += b->size;
                free_remove(s, i);
            }
            return;
        }
    }
    size_t pos = 0;
    while (pos < s->n_free && s->free[pos].offset < off)
        pos++;
    free_insert(s, pos, off, size);
}

static bool same_layout(const sim_tensor *a, const sim_tensor *b)
{
    return a->type == b->type && memcmp(a->ne, b->ne, sizeof a->ne) == 0;
}

static void alloc_node(sim *s, int i)
{
    sim_tensor *t = &s->t[i];
    if (t->external || t->allocated || t->kind == K_VIEW)
        return;
    if (t->kind == K_INPLACE) {
        for (int k = 0; k < 5; k++) {
            int p = t->src[k];
            if (p == NONE)
                continue;
            sim_tensor *pt = &s->t[p];
            if (!pt->allocated || pt->output || !same_layout(t, pt))
                continue;
            if (pt->n_children == 1 && pt->n_views == 0) {
                t->offset = pt->offset;
                t->allocated = true;
                pt->allocated = false;
                return;
            }
        }
    }
    t->offset = dyn_alloc(s, t_bytes(s, t));
    t->allocated = true;
}

static void free_tensor(sim *s, int i)
{
    sim_tensor *t = &s->t[i];
    if (t->output)
        return;
    dyn_free(s, t->offset, t_bytes(s, t));
    t->allocated = false;
}

static uint64_t run_alloc(sim *s)
{
    free_insert(s, 0, 0, UINT64_MAX / 2);
    for (size_t i = 0; i < s->n_leafs && !s->failed; i++)
        alloc_node(s, s->leafs[i]);
    for (size_t i = 0; i < s->n_nodes; i++) {
        sim_tensor *t = &s->t[s->nodes[i]];
        if (t->kind == K_VIEW)
            s->t[t->view_src].n_views++;
        for (int k = 0; k < 5; k++)
            if (t->src[k] != NONE)
                s->t[t->src[k]].n_children++;
    }
    for (size_t i = 0; i < s->n_nodes && !s->failed; i++) {
        int ni = s->nodes[i];
        for (int k = 0; k < 5; k++)
            if (s->t[ni].src[k] != NONE)
                alloc_node(s, s->t[ni].src[k]);
        alloc_node(s, ni);
        for (int k = 0; k < 5; k++) {
            int p = s->t[ni].src[k];
            if (p == NONE)
                continue;
            sim_tensor *pt = &s->t[p];
            pt->n_children--;
            if (pt->n_children == 0 && pt->n_views == 0) {
                if (pt->kind == K_VIEW) {
                    sim_tensor *vs = &s->t[pt->view_src];
                    vs->n_views--;
                    if (vs->n_views == 0 && vs->n_children == 0 && vs->allocated)
                        free_tensor(s, pt->view_src);
                } else if (pt->allocated) {
                    free_tensor(s, p);
                }
            }
        }
    }
    return s->max_size;
}

/* ------------------------------------------------- graph builders */

typedef struct gctx {
    sim *s;
    const gw_est_model *m;
    const gw_est_result *c;
    uint32_t type_k, type_v;
    int64_t T;      /* tokens in the ubatch */
    int64_t n_out;  /* outputs */
    int64_t ns;     /* streams in the ubatch (mask/q split) */
    int inp_pos, out_ids;
    int k_idxs[2], v_idxs[2], mask[2], k_rot[2], v_rot[2];
    int64_t n_kv[2]; /* full cache, swa cache */
    bool v_trans;
} gctx;

static int64_t head_k(const gctx *g) { return g->m->head_k; }
static int64_t head_v(const gctx *g) { return g->m->head_v; }

static uint32_t n_embd_v_gqa_max(const gw_est_model *m)
{
    uint32_t mx = 0;
    for (uint32_t il = 0; il < m->n_layer; il++)
        if (m->n_head_kv[il] * m->head_v > mx)
            mx = m->n_head_kv[il] * m->head_v;
    return mx;
}

static bool is_quant(uint32_t type)
{
    const gw_ggml_type_info *t = gw_ggml_type(type);
    return t && t->quantized;
}

/* build_attn_inp_kv(_iswa): idxs, mask and Hadamard rotation inputs. */
static void attn_inputs(gctx *g, int which)
{
    sim *s = g->s;
    g->k_idxs[which] = input(s, T_I64, g->T, 1, 1, 1);
    g->v_idxs[which] = g->v_trans ? input(s, T_I64, g->T * n_embd_v_gqa_max(g->m), 1, 1, 1)
                                  : input(s, T_I64, g->T, 1, 1, 1);
    g->mask[which] = input(s, g->c->flash_attn ? T_F16 : T_F32, g->n_kv[which], g->T / g->ns, 1,
                           g->ns);
    g->k_rot[which] = g->v_rot[which] = NONE;
    if (is_quant(g->type_k) && head_k(g) % 64 == 0) {
        int64_t nrot = 64;
        do
            nrot *= 2;
        while (head_k(g) % nrot == 0);
        nrot /= 2;
        g->k_rot[which] = input(s, T_F32, nrot, nrot, 1, 1);
    }
    if (is_quant(g->type_v) && head_v(g) % 64 == 0)
        g->v_rot[which] = input(s, T_F32, 64, 64, 1, 1);
}

/* llama_mul_mat_hadamard: x viewed in rot-sized rows, multiplied, reshaped back. */
static int hadamard(gctx *g, int x, int rot)
{
    sim *s = g->s;
    if (s->failed)
        return 0;
    sim_tensor *t = &s->t[x];
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    int64_t r = s->t[rot].ne[0];
    int64_t ne0 = t->ne[0], ne1 = t->ne[1], ne2 = t->ne[2], ne3 = t->ne[3];
    int v = view(s, x, r, n / r, 1, 1);
    int y = mul_mat(s, rot, v);
    return view(s, y, ne0, ne1, ne2, ne3);
}

/* build_attn with a KV cache: store K/V, attend, output projection. */
static int attn(gctx *g, int il, int q, int k, int v, int wo, int wo_b,
                int sinks)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int w = m->swa_layer[il] ? 1 : 0;
    if (g->k_rot[w] != NONE) {
        q = hadamard(g, q, g->k_rot[w]);
        k = hadamard(g, k, g->k_rot[w]);
    }
    if (g->v_rot[w] != NONE)
        v = hadamard(g, v, g->v_rot[w]);
    expand(s, q);
    expand(s, v);
    expand(s, k);
    int64_t hkv = m->n_head_kv[il], dk = head_k(g), dv = head_v(g);
    int64_t kv_size = g->n_kv[w], nstream = g->c->n_stream;
    int64_t v_width = g->v_trans ? n_embd_v_gqa_max(m) : hkv * dv;
    int kc = leaf(s, g->type_k, hkv * dk, kv_size, nstream, 1, false);
    int vc = leaf(s, g->type_v, v_width, kv_size, nstream, 1, false);
    /* cpy_k */
    int kcur2 = view(s, k, hkv * dk, g->T, 1, 1);
    int kdst = nstream > 1 ? view(s, kc, hkv * dk, kv_size * nstream, 1, 1) : kc;
    expand(s, set_rows(s, kdst, kcur2, g->k_idxs[w]));
    /* cpy_v */
    if (!g->v_trans) {
        int vcur2 = view(s, v, hkv * dv, g->T, 1, 1);
        int vdst = nstream > 1 ? view(s, vc, hkv * dv, kv_size * nstream, 1, 1) : vc;
        expand(s, set_rows(s, vdst, vcur2, g->v_idxs[w]));
    } else {
        int vcur2 = view(s, v, hkv * dv, g->T, 1, 1);
        if (hkv * dv < v_width)
            vcur2 = new_op(s, T_F32, v_width, g->T, 1, 1, vcur2, NONE, NONE, NONE, NONE); /* pad */
        int vview = view(s, vc, 1, v_width * kv_size * nstream, 1, 1);
        int vcur3 = view(s, vcur2, 1, v_width * g->T, 1, 1);
        expand(s, set_rows(s, vview, vcur3, g->v_idxs[w]));
    }
    /* get_k / get_v: views of the cache */
    int kk = view(s, kc, dk, hkv, kv_size, nstream);
    int vv = g->v_trans ? view(s, vc, kv_size, hkv, dv, nstream) : view(s, vc, dv, hkv, kv_size, nstream);
    /* build_attn_mha */
    int64_t H = s->failed ? 1 : s->t[q].ne[1];
    int qq = view(s, q, dk, H, g->T / g->ns, g->ns);
    qq = permute0213(s, qq);
    kk = permute0213(s, kk);
    vv = permute0213(s, vv);
    int cur;
    if (g->c->flash_attn) {
        if (g->v_trans)
            vv = transpose(s, vv);
        cur = new_op(s, T_F32, dv, H, g->T / g->ns, g->ns, qq, kk, vv, g->mask[w], sinks);
        cur = view(s, cur, dv * H, g->T, 1, 1);
    } else {
        int kq = mul_mat(s, kk, qq);
        if (m->attn_softcap) {
            kq = unary(s, kq);
            kq = unary(s, kq);
            kq = unary(s, kq);
        }
        kq = softmax(s, kq, g->mask[w], sinks);
        if (!g->v_trans) {
            int vt = transpose(s, vv);
            vv = cont(s, vt, s->t[vt].ne[0], s->t[vt].ne[1], s->t[vt].ne[2], s->t[vt].ne[3]);
        }
        int kqv = mul_mat(s, vv, kq);
        int p = permute0213(s, kqv);
        cur = cont(s, p, dv * H, g->T, 1, 1);
    }
    expand(s, cur);
    if (g->v_rot[w] != NONE)
        cur = hadamard(g, cur, g->v_rot[w]);
    cur = mul_mat(s, wo, cur);
    if (wo_b != NONE)
        cur = add(s, cur, wo_b);
    return cur;
}

static int norm_w(gctx *g, int x, int64_t n);

/* deepseek2 with MLA: K-only cache of [kv_lora_rank + rope] per token, V a
 * view of K, the absorbed q_nope, and wv_b applied after attention. */
static int attn_mla(gctx *g, int cur)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, T = g->T, H = m->n_head;
    int64_t hk = m->head_k_mla, hv = m->head_v_mla, rd = m->rope_dim, nope = hk - rd;
    int64_t kvl = m->kv_lora_rank, kw = m->head_k; /* kw = kvl + rd */
    int64_t kv_size = g->n_kv[0], ns_c = g->c->n_stream;
    int q;
    if (m->q_lora_rank) {
        q = mul_mat(s, W(s, E, m->q_lora_rank, 1), cur);
        q = norm_w(g, q, m->q_lora_rank);
        q = mul_mat(s, W(s, m->q_lora_rank, H * hk, 1), q);
    } else {
        q = mul_mat(s, W(s, E, H * hk, 1), cur);
    }
    q = view(s, q, hk, H, T, 1);
    int kv_pe = mul_mat(s, W(s, E, kw, 1), cur);
    int kv_cmpr = view(s, kv_pe, kvl, T, 1, 1);
    int k_pe = view(s, kv_pe, rd, 1, T, 1);
    k_pe = rope(s, k_pe, g->inp_pos);
    kv_cmpr = norm_w(g, kv_cmpr, kvl);
    int q_nope = view(s, q, nope, H, T, 1);
    int q_pe = view(s, q, rd, H, T, 1);
    q_pe = rope(s, q_pe, g->inp_pos);
    q_nope = permute0213(s, q_nope);
    int q_abs = mul_mat(s, W(s, nope, kvl, H), q_nope);
    q_abs = permute0213(s, q_abs);
    int Q = new_op(s, T_F32, kw, H, T, 1, q_abs, q_pe, NONE, NONE, NONE); /* concat */
    int kv3 = view(s, kv_cmpr, kvl, 1, T, 1);
    int K = new_op(s, T_F32, kw, 1, T, 1, kv3, k_pe, NONE, NONE, NONE); /* concat */
    int Vc = kv3;
    expand(s, Q);
    expand(s, Vc);
    expand(s, K);
    int kc = leaf(s, g->type_k, kw, kv_size, ns_c, 1, false);
    int kcur2 = view(s, K, kw, T, 1, 1);
    int kdst = ns_c > 1 ? view(s, kc, kw, kv_size * ns_c, 1, 1) : kc;
    expand(s, set_rows(s, kdst, kcur2, g->k_idxs[0]));
    int kk = view(s, kc, kw, 1, kv_size, ns_c);
    int vv = view(s, kk, kvl, 1, kv_size, ns_c);
    int qq = view(s, Q, kw, H, T / g->ns, g->ns);
    qq = permute0213(s, qq);
    kk = permute0213(s, kk);
    vv = permute0213(s, vv);
    int wv_b = W(s, kvl, hv, H);
    int out;
    if (g->c->flash_attn) {
        out = new_op(s, T_F32, kvl, H, T / g->ns, g->ns, qq, kk, vv, g->mask[0], NONE);
        out = permute0213(s, out);
        out = mul_mat(s, wv_b, out);
        out = permute0213(s, out);
        out = cont(s, out, hv, H, T / g->ns, g->ns);
        out = view(s, out, hv * H, T, 1, 1);
    } else {
        int kq = mul_mat(s, kk, qq);
        kq = softmax(s, kq, g->mask[0], NONE);
        int vt = transpose(s, vv);
        vv = cont(s, vt, s->t[vt].ne[0], s->t[vt].ne[1], s->t[vt].ne[2], s->t[vt].ne[3]);
        int kqv = mul_mat(s, vv, kq);
        kqv = mul_mat(s, wv_b, kqv);
        int p = permute0213(s, kqv);
        out = cont(s, p, hv * H, T, 1, 1);
    }
    expand(s, out);
    return mul_mat(s, W(s, H * hv, E, 1), out);
}

static int norm_w(gctx *g, int x, int64_t n)
{
    sim *s = g->s;
    int y = g->m->arch == GW_EST_ARCH_COMMAND_R ? layer_norm(s, x) : rms_norm(s, x);
    return mul(s, y, W(s, n, 1, 1));
}

/* build_ffn: up, gate (parallel), swiglu_split, down. */
static int ffn(gctx *g, int x, int64_t n_ff)
{
    sim *s = g->s;
    int64_t E = g->m->n_embd;
    int tmp = mul_mat(s, W(s, E, n_ff, 1), x);
    int gate = mul_mat(s, W(s, E, n_ff, 1), x);
    int cur = glu_split(s, gate, tmp);
    return mul_mat(s, W(s, n_ff, E, 1), cur);
}

/* phi3: ffn_up gives [2 n_ff], then swiglu (GLU over halves), down. */
static int ffn_phi3(gctx *g, int x)
{
    sim *s = g->s;
    int64_t E = g->m->n_embd, F = g->m->n_ff;
    int up = mul_mat(s, W(s, E, 2 * F, 1), x);
    int cur = new_op(s, T_F32, F, s->failed ? 1 : s->t[up].ne[1], 1, 1, up, NONE, NONE, NONE, NONE);
    return mul_mat(s, W(s, F, E, 1), cur);
}

/* build_moe_ffn: router, top-k, experts, weighted sum. */
static int moe(gctx *g, int x, bool bias, bool norm_weights, bool oai)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, X = m->n_expert, U = m->n_expert_used, F = m->n_ff_exp;
    int64_t T = s->failed ? 1 : s->t[x].ne[1];
    int logits = mul_mat(s, W(s, E, X, 1), x);
    if (bias)
        logits = add(s, logits, W(s, X, 1, 1));
    int probs = oai ? logits : new_op(s, T_F32, X, T, 1, 1, logits, NONE, NONE, NONE, NONE); /* soft_max (no mask): in-place */
    if (!oai)
        s->t[probs].kind = K_INPLACE;
    int argsort = new_op(s, T_I32, X, T, 1, 1, probs, NONE, NONE, NONE, NONE);
    int sel = view(s, argsort, U, T, 1, 1);
    int probs3 = view(s, probs, 1, X, T, 1);
    int weights = get_rows(s, probs3, sel);
    if (oai) { /* SOFTMAX_WEIGHT: reshape, soft_max, reshape */
        int w2 = view(s, weights, U, T, 1, 1);
        w2 = softmax(s, w2, NONE, NONE);
        weights = view(s, w2, 1, U, T, 1);
    }
    if (norm_weights) {
        int w2 = view(s, weights, U, T, 1, 1);
        int sum = new_op(s, T_F32, 1, T, 1, 1, w2, NONE, NONE, NONE, NONE);
        sum = unary(s, sum); /* clamp */
        w2 = mul(s, w2, sum); /* div: in-place */
        weights = view(s, w2, 1, U, T, 1);
    }
    expand(s, weights);
    int cur = view(s, x, E, 1, T, 1);
    int up = mul_mat_id(s, W(s, E, F, X), cur, sel);
    if (bias)
        up = add(s, up, W(s, F, X, 1)); /* add_id */
    int gate = mul_mat_id(s, W(s, E, F, X), cur, sel);
    if (bias)
        gate = add(s, gate, W(s, F, X, 1));
    int act = glu_split(s, gate, up);
    int experts = mul_mat_id(s, W(s, F, E, X), act, sel);
    if (bias)
        experts = add(s, experts, W(s, E, X, 1));
    experts = mul(s, experts, weights);
    expand(s, experts);
    int out = view(s, experts, E, T, 1, 1);
    expand(s, out);
    for (int64_t i = 1; i < U && !s->failed; i++) {
        int v = view(s, experts, E, T, 1, 1);
        expand(s, v);
        out = add(s, out, v);
        expand(s, out);
    }
    if (U == 1)
        out = cont(s, out, E, T, 1, 1);
    return out;
}

/* One transformer-block graph for every supported architecture. */
static void build(gctx *g)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    gw_est_arch a = m->arch;
    int64_t E = m->n_embd, T = g->T, V = m->n_vocab;

    /* build_inp_embd */
    int tokens = input(s, T_I32, T, 1, 1, 1);
    int embd_in = input(s, T_F32, E, T, 1, 1);
    int inpL = get_rows(s, W(s, E, V, 1), tokens);
    expand(s, inpL);
    expand(s, embd_in);
    expand(s, inpL);
    if (a == GW_EST_ARCH_GEMMA2 || a == GW_EST_ARCH_GEMMA3)
        inpL = unary(s, inpL); /* scale by sqrt(n_embd) */
    g->inp_pos = input(s, T_I32, T, 1, 1, 1);
    bool iswa = m->n_swa > 0;
    bool mla = a == GW_EST_ARCH_DEEPSEEK2 && m->head_k_mla && m->head_v_mla;
    if (mla) { /* build_attn_inp_k: K indices and the mask only */
        g->k_idxs[0] = input(s, T_I64, g->T, 1, 1, 1);
        g->mask[0] = input(s, g->c->flash_attn ? T_F16 : T_F32, g->n_kv[0], g->T / g->ns, 1, g->ns);
        g->k_rot[0] = g->v_rot[0] = NONE;
    } else {
        attn_inputs(g, 0);
    }
    if (iswa)
        attn_inputs(g, 1);
    g->out_ids = input(s, T_I32, g->n_out, 1, 1, 1);

    int64_t H = m->n_head, Dk = head_k(g), Dv = head_v(g);
    for (uint32_t il = 0; il < m->n_layer && !s->failed; il++) {
        int64_t hkv = m->n_head_kv[il];
        int inpSA = inpL;
        int cur = norm_w(g, inpL, E);
        if (mla) {
            cur = attn_mla(g, cur);
            if (il + 1 == m->n_layer) {
                cur = get_rows(s, cur, g->out_ids);
                inpSA = get_rows(s, inpSA, g->out_ids);
            }
            int ffn_inp = add(s, cur, inpSA);
            cur = norm_w(g, ffn_inp, E);
            if (il < m->n_dense_lead) {
                cur = ffn(g, cur, m->n_ff);
            } else {
                int moe_out = moe(g, cur, false, m->expert_weights_norm, false);
                int sh = ffn(g, cur, (int64_t)m->n_ff_exp * m->n_expert_shared);
                cur = add(s, moe_out, sh);
            }
            inpL = add(s, cur, ffn_inp);
            continue;
        }
        int ffn_inp_cr = cur; /* command-r: parallel FFN input */
        int q, k, v;
        if (m->fused_qkv) {
            int qkv = mul_mat(s, W(s, E, H * Dk + 2 * hkv * Dk, 1), cur);
            q = view(s, qkv, Dk, H, T, 1);
            k = view(s, qkv, Dk, hkv, T, 1);
            v = view(s, qkv, Dv, hkv, T, 1);
        } else {
            q = mul_mat(s, W(s, E, H * Dk, 1), cur);
            if (m->qkv_bias)
                q = add(s, q, W(s, H * Dk, 1, 1));
            k = mul_mat(s, W(s, E, hkv * Dk, 1), cur);
            if (m->qkv_bias)
                k = add(s, k, W(s, hkv * Dk, 1, 1));
            v = mul_mat(s, W(s, E, hkv * Dv, 1), cur);
            if (m->qkv_bias)
                v = add(s, v, W(s, hkv * Dv, 1, 1));
            q = view(s, q, Dk, H, T, 1);
            k = view(s, k, Dk, hkv, T, 1);
            v = view(s, v, Dv, hkv, T, 1);
        }
        if (m->qk_norm) {
            q = norm_w(g, q, Dk);
        }
        q = rope(s, q, g->inp_pos);
        if (m->qk_norm)
            k = norm_w(g, k, Dk);
        k = rope(s, k, g->inp_pos);
        if (a == GW_EST_ARCH_GEMMA2 || a == GW_EST_ARCH_GEMMA3 || a == GW_EST_ARCH_PHI3)
            q = unary(s, q); /* scale */
        int sinks = m->sinks ? W(s, H, 1, 1) : NONE;
        int wo_b = m->sinks ? W(s, E, 1, 1) : NONE;
        cur = attn(g, (int)il, q, k, v, W(s, H * Dv, E, 1), wo_b, sinks);
        bool last = il + 1 == m->n_layer;
        if (last && a != GW_EST_ARCH_GPT_OSS) {
            cur = get_rows(s, cur, g->out_ids);
            inpSA = get_rows(s, inpSA, g->out_ids);
            if (a == GW_EST_ARCH_COMMAND_R)
                ffn_inp_cr = get_rows(s, ffn_inp_cr, g->out_ids);
        }
        if (a == GW_EST_ARCH_COMMAND_R) {
            int attn_out = cur;
            cur = ffn(g, ffn_inp_cr, m->n_ff);
            cur = add(s, cur, inpSA);
            cur = add(s, cur, attn_out);
        } else {
            if (m->post_norms && a != GW_EST_ARCH_GPT_OSS)
                cur = norm_w(g, cur, E);
            int ffn_inp = add(s, cur, inpSA);
            cur = norm_w(g, ffn_inp, E);
            if (a == GW_EST_ARCH_PHI3)
                cur = ffn_phi3(g, cur);
            else if (a == GW_EST_ARCH_GPT_OSS)
                cur = moe(g, cur, true, false, true);
            else if (m->n_expert > 0)
                cur = moe(g, cur, false, a == GW_EST_ARCH_QWEN3MOE ? true : true, false);
            else
                cur = ffn(g, cur, m->n_ff);
            if (m->post_norms && a != GW_EST_ARCH_GPT_OSS)
                cur = norm_w(g, cur, E);
            cur = a == GW_EST_ARCH_PHI3 ? add(s, ffn_inp, cur) : add(s, cur, ffn_inp);
        }
        inpL = cur;
    }
    int cur = inpL;
    if (a == GW_EST_ARCH_GPT_OSS) {
        if (!s->failed)
            s->t[cur].output = true; /* t_h_nextn: the last hidden state is kept */
        cur = get_rows(s, cur, g->out_ids);
    }
    cur = norm_w(g, cur, E);
    if (!s->failed)
        s->t[cur].output = true; /* t_embd */
    cur = mul_mat(s, W(s, E, V, 1), cur);
    if (a == GW_EST_ARCH_GEMMA2) {
        cur = unary(s, cur);
        cur = unary(s, cur);
        cur = unary(s, cur);
    } else if (a == GW_EST_ARCH_COMMAND_R) {
        cur = unary(s, cur);
    }
    if (!s->failed)
        s->t[cur].output = true; /* t_logits */
    expand(s, cur);
}

int gw__est_compute_bytes(const gw_est_model *m, const gw_est_result *c, uint32_t type_k,
                          uint32_t type_v, gw_error *err, uint64_t *out)
{
    sim s;
    memset(&s, 0, sizeof s);
    gctx g;
    memset(&g, 0, sizeof g);
    g.s = &s;
    g.m = m;
    g.c = c;
    g.type_k = type_k;
    g.type_v = type_v;
    uint32_t n_seqs = c->n_seq;
    uint32_t n_tokens = c->n_ctx < c->n_ubatch ? c->n_ctx : c->n_ubatch;
    if (n_tokens % n_seqs)
        n_tokens = (n_tokens + n_seqs - 1) / n_seqs * n_seqs;
    g.T = n_tokens;
    g.n_out = n_tokens; /* min(n_tokens, n_outputs_max = n_batch) */
    if (g.n_out > c->n_batch)
        g.n_out = c->n_batch;
    g.ns = c->n_stream;
    g.n_kv[0] = c->kv_size;
    g.n_kv[1] = c->kv_size_swa;
    g.v_trans = !c->flash_attn;
    build(&g);
    uint64_t size = s.failed ? 0 : run_alloc(&s);
    int rc = GW_OK;
    if (s.failed)
        rc = gw__error_set(err, GW_ENOMEM, "estimate: out of memory simulating the compute graph");
    else if (s.overflow)
        rc = gw__error_set(err, GW_ERANGE, "estimate: compute graph bytes overflow");
    else
        *out = size;
    free(s.t);
    free(s.nodes);
    free(s.leafs);
    free(s.free);
    return rc;
}
