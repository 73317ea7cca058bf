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
 * Recurrent and hybrid graphs (mamba2, granitehybrid, lfm2, qwen3next) add
 * the state ops: the cached rows gathered per sequence (get_rows, or ssm_scan whose
 * one output vector holds y and the new states), concat, ssm_conv,
 * gated_delta_net (one output: per-token output rows, then the new
 * states), and copies into the state cache (views of it: nothing
 * allocated).
 * Invariants: tensors are append-only in one array and refer to each other
 * by index; every size is overflow-checked (a graph whose bytes overflow is
 * GW_ERANGE); a graph of more than GW__SIM_MAX_TENSORS tensors is GW_ERANGE
 * too, so time and memory stay O(GW__SIM_MAX_TENSORS); the simulation
 * allocates O(nodes) memory and frees it all.
 */
#include "core/array.h"
#include "core/util.h"
#include "estimate/estimate_impl.h"
#include "estimate/sim.h"

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

/* The ggml op classes the backend scheduler treats differently. */
enum op_class {
    O_NONE = 0, O_VIEW, O_SET_ROWS, O_MUL_MAT, O_MUL_MAT_ID, O_GET_ROWS, O_ROPE, O_FA, O_COPY,
    O_OTHER,
};

#define MAX_DEV (GW_EST_MAX_DEVICES + 1)
/* sources per op: ggml's GGML_MAX_SRC is 10; ssm_scan uses 7 */
#define MAX_SRC 8

typedef struct sim_tensor {
    int64_t ne[4];
    uint32_t type;
    uint8_t kind, op;
    bool input, output, external, weight;
    int dev; /* backend: 0..n_dev-1 GPUs, n_dev the host; -1 unassigned */
    int next_copy; /* scheduler copies of one split, chained */
    int src[MAX_SRC];
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

typedef struct gw__sim {
    sim_tensor *t;
    size_t n, cap;
    int *nodes, *leafs;
    size_t n_nodes, n_leafs, cap_nodes, cap_leafs;
    /* one allocator per backend (GPUs, then the host) */
    blk *free_[MAX_DEV];
    size_t nfree_[MAX_DEV], capfree_[MAX_DEV];
    uint64_t max_size[MAX_DEV];
    uint64_t align[MAX_DEV];
    bool cuda[MAX_DEV];
    /* builder state: where new weights / caches live, their matrix type */
    int n_dev, host, cur_dev;
    uint32_t wtype;
    bool failed;   /* ENOMEM, or too_big: constructors return 0 */
    bool overflow; /* ERANGE */
    bool too_big;  /* ERANGE: GW__SIM_MAX_TENSORS reached */
} sim;

/* ------------------------------------------------------------ tensors */

static int t_add(sim *s, uint32_t type, uint8_t kind, const int64_t ne[4], int a, int b, int c,
                 int d, int e)
{
    if (s->failed)
        return 0;
    int64_t shape[4] = {ne[0], ne[1], ne[2], ne[3]}; /* ne may point into s->t */
    if (s->n == GW__SIM_MAX_TENSORS) {
        s->failed = s->too_big = true;
        return 0;
    }
    if (GW__ARRAY_RESERVE(s->t, s->cap, s->n + 1, GW__SIM_MAX_TENSORS)) {
        s->failed = true;
        return 0;
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
    for (int k = 5; k < MAX_SRC; k++)
        t->src[k] = NONE;
    t->view_src = NONE;
    t->dev = -1;
    t->op = kind == K_VIEW ? O_VIEW : kind == K_LEAF ? O_NONE : O_OTHER;
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
        s->t[t].dev = input ? s->host : s->cur_dev;
    }
    return t;
}

/* A weight: matrices have the model's matrix type, vectors are F32. It
 * lives on the backend of the layer being built. */
static int W(sim *s, int64_t n0, int64_t n1, int64_t n2)
{
    int t = leaf(s, (n1 == 1 && n2 == 1) ? T_F32 : s->wtype, n0, n1, n2, 1, false);
    if (!s->failed)
        s->t[t].weight = true;
    return t;
}

/* An F32 weight whatever its shape: the SSM parameters (conv kernels, A,
 * D, grouped norms) that GGUF files keep in F32. */
static int Wf32(sim *s, int64_t n0, int64_t n1, int64_t n2)
{
    int t = W(s, n0, n1, n2);
    if (!s->failed)
        s->t[t].type = T_F32;
    return t;
}

static int set_op(sim *s, int t, uint8_t op)
{
    if (!s->failed)
        s->t[t].op = op;
    return t;
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
static int rope(sim *s, int a, int pos) { return set_op(s, same(s, K_INPLACE, a, pos, NONE), O_ROPE); }
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
    return set_op(s, new_op(s, T_F32, s->t[a].ne[1], s->t[b].ne[1], s->t[b].ne[2], s->t[b].ne[3], a, b,
                            NONE, NONE, NONE),
                  O_MUL_MAT);
}

static int mul_mat_id(sim *s, int as, int b, int ids)
{
    if (s->failed)
        return 0;
    return set_op(s, new_op(s, T_F32, s->t[as].ne[1], s->t[ids].ne[0], s->t[b].ne[2], 1, as, b, ids,
                            NONE, NONE),
                  O_MUL_MAT_ID);
}

static int get_rows(sim *s, int a, int idx)
{
    if (s->failed)
        return 0;
    return set_op(s, new_op(s, T_F32, s->t[a].ne[0], s->t[idx].ne[0], s->t[idx].ne[1],
                            s->t[idx].ne[2], a, idx, NONE, NONE, NONE),
                  O_GET_ROWS);
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
    return set_op(s, t_add(s, s->t[dst].type, K_VIEW, ne, dst, src, idx, NONE, NONE), O_SET_ROWS);
}

/* ------------------------------------------------------ graph order */

static void order_push(sim *s, bool is_leaf, int v)
{
    int **arr = is_leaf ? &s->leafs : &s->nodes;
    size_t *n = is_leaf ? &s->n_leafs : &s->n_nodes;
    size_t *cap = is_leaf ? &s->cap_leafs : &s->cap_nodes;
    if (GW__ARRAY_RESERVE(*arr, *cap, *n + 1, GW__ARRAY_UNBOUNDED)) {
        s->failed = true;
        return;
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
        if (next_src[n - 1] < MAX_SRC) {
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
    int d = t->dev < 0 ? s->host : t->dev;
    if (s->cuda[d]) { /* CUDA get_alloc_size: quantized row padding */
        uint64_t ne[4] = {(uint64_t)t->ne[0], (uint64_t)t->ne[1], (uint64_t)t->ne[2],
                          (uint64_t)t->ne[3]};
        n = gw__est_cuda_tensor_size(ti, ne, n);
    }
    uint64_t a;
    if (!gw__est_pad(n, s->align[d], &a)) {
        s->overflow = true;
        return 0;
    }
    return a;
}

static void free_insert(sim *s, int d, size_t pos, uint64_t off, uint64_t size)
{
    if (GW__ARRAY_RESERVE(s->free_[d], s->capfree_[d], s->nfree_[d] + 1, GW__ARRAY_UNBOUNDED)) {
        s->failed = true;
        return;
    }
    blk *f = s->free_[d];
    memmove(&f[pos + 1], &f[pos], (s->nfree_[d] - pos) * sizeof *f);
    f[pos].offset = off;
    f[pos].size = size;
    s->nfree_[d]++;
}

static void free_remove(sim *s, int d, size_t i)
{
    blk *f = s->free_[d];
    memmove(&f[i], &f[i + 1], (s->nfree_[d] - i - 1) * sizeof *f);
    s->nfree_[d]--;
}

/* ggml_dyn_tallocr_alloc: best fit among all blocks but the last, else the
 * (unbounded) last block. */
static uint64_t dyn_alloc(sim *s, int d, uint64_t size)
{
    blk *f = s->free_[d];
    size_t n = s->nfree_[d];
    size_t best = SIZE_MAX;
    uint64_t best_size = UINT64_MAX;
    for (size_t i = 0; i + 1 < n; i++)
        if (f[i].size >= size && f[i].size <= best_size) {
            best = i;
            best_size = f[i].size;
        }
    if (best == SIZE_MAX)
        best = n - 1;
    if (f[best].size < size) { /* past the last block's 2^63 bytes: ERANGE, no wrap */
        s->overflow = true;
        return 0;
    }
    uint64_t off = f[best].offset;
    f[best].offset += size;
    f[best].size -= size;
    if (f[best].size == 0)
        free_remove(s, d, best);
    if (off + size > s->max_size[d])
        s->max_size[d] = off + size;
    return off;
}

/* ggml_dyn_tallocr_free_bytes: merge with a neighbour or insert sorted. */
static void dyn_free(sim *s, int d, uint64_t off, uint64_t size)
{
    blk *f = s->free_[d];
    size_t n = s->nfree_[d];
    for (size_t i = 0; i < n; i++) {
        blk *b = &f[i];
        if (b->offset + b->size == off) {
            b->size += size;
            if (i + 1 < n && b->offset + b->size == f[i + 1].offset) {
                b->size += f[i + 1].size;
                free_remove(s, d, i + 1);
            }
            return;
        }
        if (off + size == b->offset) {
            b->offset = off;
            b->size += size;
            if (i > 0 && f[i - 1].offset + f[i - 1].size == b->offset) {
                f[i - 1].size += b->size;
                free_remove(s, d, i);
            }
            return;
        }
    }
    size_t pos = 0;
    while (pos < n && f[pos].offset < off)
        pos++;
    free_insert(s, d, pos, off, size);
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
    if (t->dev < 0)
        t->dev = s->host;
    if (t->kind == K_INPLACE) {
        for (int k = 0; k < MAX_SRC; k++) {
            int p = t->src[k];
            if (p == NONE)
                continue;
            sim_tensor *pt = &s->t[p];
            if (!pt->allocated || pt->output || !same_layout(t, pt))
                continue;
            if (pt->n_children == 1 && pt->n_views == 0) {
                t->offset = pt->offset;
                t->dev = pt->dev;
                t->allocated = true;
                pt->allocated = false;
                return;
            }
        }
    }
    t->offset = dyn_alloc(s, t->dev, t_bytes(s, t));
    t->allocated = true;
}

static void free_tensor(sim *s, int i)
{
    sim_tensor *t = &s->t[i];
    if (t->output)
        return;
    dyn_free(s, t->dev, t->offset, t_bytes(s, t));
    t->allocated = false;
}

static void run_alloc(sim *s)
{
    for (int d = 0; d <= s->n_dev; d++)
        free_insert(s, d, 0, 0, UINT64_MAX / 2);
    for (size_t i = 0; i < s->n_leafs && !s->failed; i++)
        alloc_node(s, s->leafs[i]);
    for (size_t i = 0; i < s->n_nodes && !s->failed; i++) {
        sim_tensor *t = &s->t[s->nodes[i]];
        if (t->kind == K_VIEW)
            s->t[t->view_src].n_views++;
        if (t->input) /* graph inputs (pipeline copies) first */
            alloc_node(s, s->nodes[i]);
        for (int k = 0; k < MAX_SRC; k++)
            if (t->src[k] != NONE)
                s->t[t->src[k]].n_children++;
    }
    for (size_t i = 0; i < s->n_nodes && !s->failed; i++) {
        int ni = s->nodes[i];
        for (int k = 0; k < MAX_SRC; k++)
            if (s->t[ni].src[k] != NONE)
                alloc_node(s, s->t[ni].src[k]);
        alloc_node(s, ni);
        for (int k = 0; k < MAX_SRC; k++) {
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
}

/* ----------------------------------------------- backend scheduler */

/* ggml-cuda's get_op_batch_size: ops on host weights are offloaded to the
 * first GPU when the batch is at least 32 (get_rows never). */
static int64_t op_batch(const sim_tensor *t)
{
    switch (t->op) {
    case O_GET_ROWS:
        return 0;
    case O_MUL_MAT:
        return t->ne[1];
    case O_MUL_MAT_ID:
    case O_ROPE:
        return t->ne[2];
    default:
        return t->ne[1] * t->ne[2] * t->ne[3];
    }
}

static bool is_view_op(const sim_tensor *t)
{
    return t->op == O_VIEW;
}

/* ggml_backend_sched passes 1, 2 and 4: every node gets a backend. */
static void assign_backends(sim *s, bool op_offload)
{
    int host = s->host;
    /* pass 1: pre-allocated tensors, inputs, ops with weights */
    for (size_t i = 0; i < s->n_nodes; i++) {
        sim_tensor *t = &s->t[s->nodes[i]];
        if (t->view_src != NONE && s->t[t->view_src].external) {
            t->dev = s->t[t->view_src].dev;
            continue;
        }
        if (t->op == O_ROPE || t->op == O_FA)
            continue;
        for (int k = 0; k < MAX_SRC; k++) {
            int p = t->src[k];
            if (p == NONE || !s->t[p].weight)
                continue;
            int d = s->t[p].dev;
            if (op_offload && d == host && s->n_dev > 0 && op_batch(t) >= 32)
                d = 0;
            t->dev = d;
            break;
        }
    }
    /* pass 2: expand GPU assignments down and up, then all down and up */
    for (int round = 0; round < 4; round++) {
        bool gpu_only = round < 2, down = round % 2 == 0;
        int cur = -1;
        for (size_t k = 0; k < s->n_nodes; k++) {
            size_t i = down ? k : s->n_nodes - 1 - k;
            sim_tensor *t = &s->t[s->nodes[i]];
            if (is_view_op(t))
                continue;
            if (t->dev != -1)
                cur = (gpu_only && t->dev == host) ? -1 : t->dev;
            else if (cur != -1)
                t->dev = cur;
        }
    }
    /* pass 4: views follow their base, remaining sources their consumer */
    for (size_t i = 0; i < s->n_nodes; i++) {
        sim_tensor *t = &s->t[s->nodes[i]];
        if (t->view_src != NONE && t->dev == -1)
            t->dev = s->t[t->view_src].dev;
        for (int k = 0; k < MAX_SRC; k++) {
            int p = t->src[k];
            if (p == NONE || s->t[p].dev != -1)
                continue;
            s->t[p].dev = s->t[p].view_src != NONE ? s->t[s->t[p].view_src].dev : t->dev;
        }
        if (t->dev == -1)
            t->dev = s->n_dev > 0 ? 0 : host;
    }
}

static int view_dev(const sim *s, int i)
{
    const sim_tensor *t = &s->t[i];
    return t->view_src != NONE ? s->t[t->view_src].dev : t->dev;
}

/* ggml_backend_sched pass 5: a source on another backend (or in a buffer the
 * backend cannot read) is copied into the consumer's backend once, at the
 * start of the split that first needs it. With pipeline parallelism
 * (n_copies > 1) every copy and every graph input exists n_copies times and
 * is never freed. */
static void insert_copies(sim *s, int n_copies)
{
    size_t n_old = s->n_nodes;
    int *old = s->nodes;
    s->nodes = NULL;
    s->n_nodes = s->cap_nodes = 0;
    /* copy[src * MAX_DEV + dev] */
    size_t nt = s->n;
    int *copy = malloc(nt * MAX_DEV * sizeof *copy);
    if (!copy) {
        s->failed = true;
        free(old);
        return;
    }
    for (size_t i = 0; i < nt * MAX_DEV; i++)
        copy[i] = NONE;
    size_t n_leafs0 = s->n_leafs;
    if (n_copies > 1) /* host graph inputs: n_copies - 1 more copies each */
        for (size_t i = 0; i < n_leafs0 && !s->failed; i++) {
            int l = s->leafs[i];
            if (!s->t[l].input)
                continue;
            s->t[l].output = true;
            for (int c = 1; c < n_copies && !s->failed; c++) {
                int x = t_add(s, s->t[l].type, K_LEAF, s->t[l].ne, NONE, NONE, NONE, NONE, NONE);
                if (s->failed)
                    break;
                s->t[x].input = s->t[x].output = true;
                s->t[x].dev = s->t[l].dev;
                order_push(s, true, x);
            }
        }
    /* splits: runs of consecutive (non-view) nodes on one backend; the
     * copies a split needs are allocated at its start, before its nodes */
    int *copies_of = malloc((n_old + 1) * sizeof *copies_of); /* first copy list per split */
    size_t *split_of = malloc((n_old + 1) * sizeof *split_of);
    if (!copies_of || !split_of) {
        s->failed = true;
        free(copies_of);
        free(split_of);
        free(copy);
        free(old);
        return;
    }
    size_t n_split = 0;
    int cur_dev = -2;
    for (size_t i = 0; i < n_old; i++) {
        const sim_tensor *t = &s->t[old[i]];
        if (!is_view_op(t) && t->dev != cur_dev) {
            cur_dev = t->dev;
            copies_of[n_split++] = NONE;
        }
        split_of[i] = n_split ? n_split - 1 : 0;
    }
    if (n_split == 0)
        copies_of[n_split++] = NONE;
    /* pass A: find and create the copies, chained per split (newest first) */
    for (size_t i = 0; i < n_old && !s->failed; i++) {
        int ni = old[i];
        if (is_view_op(&s->t[ni]) || s->t[ni].op == O_SET_ROWS)
            continue;
        int d = s->t[ni].dev;
        for (int k = 0; k < MAX_SRC && !s->failed; k++) {
            int p = s->t[ni].src[k];
            if (p == NONE || (size_t)p >= nt)
                continue;
            int pd = view_dev(s, p);
            if (pd == d)
                continue;
            int *slot = &copy[(size_t)p * MAX_DEV + (size_t)d];
            if (*slot == NONE) {
                int c = t_add(s, s->t[p].type, K_OTHER, s->t[p].ne, p, NONE, NONE, NONE, NONE);
                if (s->failed)
                    break;
                s->t[c].op = O_COPY;
                s->t[c].dev = d;
                if (n_copies > 1) {
                    s->t[c].input = s->t[c].output = true;
                    for (int e = 1; e < n_copies && !s->failed; e++) {
                        int x = t_add(s, s->t[p].type, K_LEAF, s->t[p].ne, NONE, NONE, NONE, NONE,
                                      NONE);
                        if (s->failed)
                            break;
                        s->t[x].input = s->t[x].output = true;
                        s->t[x].dev = d;
                        order_push(s, true, x);
                    }
                }
                size_t sp = split_of[i];
                s->t[c].next_copy = copies_of[sp];
                copies_of[sp] = c;
                *slot = c;
            }
            s->t[ni].src[k] = *slot;
        }
    }
    /* pass B: emit every split's copies, then its nodes */
    size_t sp_done = SIZE_MAX;
    for (size_t i = 0; i < n_old && !s->failed; i++) {
        size_t sp = split_of[i];
        if (sp != sp_done) {
            /* copies were chained newest first: reverse, then emit */
            int prev = NONE, c = copies_of[sp];
            while (c != NONE) {
                int nx = s->t[c].next_copy;
                s->t[c].next_copy = prev;
                prev = c;
                c = nx;
            }
            for (c = prev; c != NONE; c = s->t[c].next_copy)
                order_push(s, false, c);
            sp_done = sp;
        }
        order_push(s, false, old[i]);
    }
    free(copies_of);
    free(split_of);
    free(copy);
    free(old);
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
    /* recurrent state (build_rs_inp): the s_copy input and its two views;
     * n_rs cells (max(1, n_seq)), n_seqs sequences in the ubatch */
    int s_copy, s_copy_main, s_copy_extra;
    int64_t n_rs, n_seqs;
    bool embeddings; /* --embeddings (lfm2 then builds no logits) */
} gctx;

static int64_t head_k(const gctx *g) { return g->m->head_k; }
static int64_t head_v(const gctx *g) { return g->m->head_v; }

/* Widest V row of any layer; both factors may be 2^16 (model.c's bounds),
 * so the product is formed in 64 bits. */
static int64_t n_embd_v_gqa_max(const gw_est_model *m)
{
    int64_t mx = 0;
    for (uint32_t il = 0; il < m->n_layer; il++)
        if ((int64_t)m->n_head_kv[il] * m->head_v > mx)
            mx = (int64_t)m->n_head_kv[il] * m->head_v;
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

/* build_attn with a KV cache: store K/V, attend, output projection (none
 * when wo is NONE). */
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
        cur = set_op(s, new_op(s, T_F32, dv, H, g->T / g->ns, g->ns, qq, kk, vv, g->mask[w], sinks),
                     O_FA);
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
    if (wo == NONE) /* qwen3next gates the output before projecting it */
        return cur;
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
        out = set_op(s, new_op(s, T_F32, kvl, H, T / g->ns, g->ns, qq, kk, vv, g->mask[0], NONE),
                     O_FA);
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

/* Backend of layer il (il == n_layer: the output layer). */
static int layer_dev(const gctx *g, uint32_t il)
{
    uint32_t d = g->c->layer_device[il + 1];
    return d == UINT32_MAX || (int)d >= g->s->n_dev ? g->s->host : (int)d;
}

/* build_inp_embd: the token ids and embedding inputs, the token_embd rows
 * (token_embd always lives on the host); the selected path is expanded. */
static int inp_embd(gctx *g)
{
    sim *s = g->s;
    int64_t E = g->m->n_embd, T = g->T, V = g->m->n_vocab;
    s->cur_dev = s->host;
    s->wtype = g->m->embd_type;
    int tokens = input(s, T_I32, T, 1, 1, 1);
    int embd_in = input(s, T_F32, E, T, 1, 1);
    int inpL = get_rows(s, W(s, E, V, 1), tokens);
    expand(s, inpL);
    expand(s, embd_in);
    expand(s, inpL);
    return inpL;
}

/* One transformer-block graph for every supported architecture. */
static void build(gctx *g)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    gw_est_arch a = m->arch;
    int64_t E = m->n_embd, T = g->T, V = m->n_vocab;

    int inpL = inp_embd(g);
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
        s->cur_dev = layer_dev(g, il);
        s->wtype = m->mat_type;
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
    s->cur_dev = layer_dev(g, m->n_layer);
    s->wtype = m->output_type;
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

/* ------------------------------------- recurrent and hybrid graphs */

/* ggml_concat(a, b, 0): a's type, ne0 summed. */
static int concat0(sim *s, int a, int b)
{
    if (s->failed)
        return 0;
    const int64_t *x = s->t[a].ne;
    return new_op(s, s->t[a].type, x[0] + s->t[b].ne[0], x[1], x[2], x[3], a, b, NONE, NONE,
                  NONE);
}

/* ggml_cpy(a, b) into a view b of a cache: the result is a view of the
 * cache (nothing allocated), its sources (a, b). */
static int cpy_to(sim *s, int a, int b)
{
    if (s->failed)
        return 0;
    int t = t_add(s, s->t[b].type, K_VIEW, s->t[b].ne, a, b, NONE, NONE, NONE);
    if (!s->failed) {
        s->t[t].view_src = s->t[b].view_src != NONE ? s->t[b].view_src : b;
        s->t[t].op = O_SET_ROWS;
    }
    return t;
}

/* ggml_ssm_conv(sx, c): F32 [c.ne1, sx.ne0 - c.ne0 + 1, sx.ne2]. */
static int ssm_conv(sim *s, int sx, int c)
{
    if (s->failed)
        return 0;
    int64_t n_t = s->t[sx].ne[0] - s->t[c].ne[0] + 1;
    return new_op(s, T_F32, s->t[c].ne[1], n_t, s->t[sx].ne[2], 1, sx, c, NONE, NONE, NONE);
}

/* ggml_ssm_scan(s, x, dt, A, B, C, ids), K = 1: one F32 vector holding y
 * (nelements(x)) followed by the final states (s.ne0 * s.ne1 * s.ne2 per
 * sequence of ids). */
static int ssm_scan(sim *s, int st, int x, int dt, int A, int B, int C, int ids)
{
    if (s->failed)
        return 0;
    const int64_t *xn = s->t[x].ne, *sn = s->t[st].ne;
    int64_t n = xn[0] * xn[1] * xn[2] * xn[3] + sn[0] * sn[1] * sn[2] * s->t[ids].ne[0];
    int t = new_op(s, T_F32, n, 1, 1, 1, st, x, dt, A, B);
    if (!s->failed) {
        s->t[t].src[5] = C;
        s->t[t].src[6] = ids;
    }
    return t;
}

/* build_rs_inp: s_copy (I32 [n_rs]) viewed as the ubatch's sequences and
 * the extra cells. */
static void rs_inputs(gctx *g)
{
    sim *s = g->s;
    g->s_copy = input(s, T_I32, g->n_rs, 1, 1, 1);
    g->s_copy_main = view(s, g->s_copy, g->n_seqs, 1, 1, 1);
    g->s_copy_extra = view(s, g->s_copy, g->n_rs - g->n_seqs, 1, 1, 1);
}

/* build_rs, first half: the cache as [width, n_rs] rows; the cleared row
 * (scale_inplace: a view, nothing allocated) is expanded. */
static int rs_states(gctx *g, int cache, int64_t width)
{
    sim *s = g->s;
    int states = view(s, cache, width, g->n_rs, 1, 1);
    int zero = view(s, states, width, 1, 1, 1);
    expand(s, set_op(s, view(s, zero, width, 1, 1, 1), O_SET_ROWS));
    return states;
}

/* build_rs, second half: the rows of the cells beyond the ubatch's
 * sequences (none in the reserve graph: a zero-row get_rows) copied back. */
static void rs_extra(gctx *g, int cache, int states, int64_t width)
{
    sim *s = g->s;
    int extra = get_rows(s, states, g->s_copy_extra);
    int dst = view(s, cache, width, g->n_rs - g->n_seqs, 1, 1);
    expand(s, cpy_to(s, extra, dst));
}

/* build_rs with ggml_get_rows as the gather: [width, n_seqs]. */
static int build_rs(gctx *g, int cache, int64_t width)
{
    sim *s = g->s;
    int states = rs_states(g, cache, width);
    int out = get_rows(s, states, g->s_copy_main);
    expand(s, out);
    rs_extra(g, cache, states, width);
    return out;
}

/* build_mamba2_layer (mamba-base.cpp): in_proj to z | xBC | dt, causal
 * conv over the conv state and xBC, the selective scan over the SSM
 * state, D skip, gate, grouped RMS norm, out_proj. */
static int mamba2_layer(gctx *g, int cur)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, T = g->T, ns = g->n_seqs, nst = T / ns;
    int64_t dc = m->ssm_d_conv, di = m->ssm_d_inner, ds = m->ssm_d_state;
    int64_t ng = m->ssm_n_group, nh = m->ssm_dt_rank, hd = di / nh;
    int64_t conv_dim = di + 2 * ng * ds, d_in_proj = di + conv_dim + nh;
    int rc = leaf(s, T_F32, m->n_embd_r, g->n_rs, 1, 1, false);
    int sc = leaf(s, T_F32, m->n_embd_s, g->n_rs, 1, 1, false);
    int conv = build_rs(g, rc, m->n_embd_r);
    conv = view(s, conv, dc - 1, conv_dim, ns, 1);
    int zx = mul_mat(s, W(s, E, d_in_proj, 1), cur);
    zx = view(s, zx, d_in_proj, nst, ns, 1);
    int z = view(s, zx, hd, nh, nst, ns);
    int xbc = view(s, zx, conv_dim, nst, ns, 1);
    int dt = view(s, zx, nh, nst, ns, 1);
    int conv_x = concat0(s, conv, transpose(s, xbc));
    int last = view(s, conv_x, dc - 1, conv_dim, ns, 1);
    expand(s, cpy_to(s, last, view(s, rc, (dc - 1) * conv_dim, ns, 1, 1)));
    xbc = ssm_conv(s, conv_x, Wf32(s, dc, conv_dim, 1));
    xbc = add(s, xbc, W(s, conv_dim, 1, 1));
    xbc = unary(s, xbc); /* silu */
    int x = view(s, xbc, hd, nh, nst, ns);
    int B = view(s, xbc, ds, ng, nst, ns);
    int C = view(s, xbc, ds, ng, nst, ns);
    dt = add(s, cont(s, dt, nh, nst, ns, 1), W(s, nh, 1, 1));
    int A = Wf32(s, 1, nh, 1);
    /* build_rs with the scan as the gather */
    int states = rs_states(g, sc, m->n_embd_s);
    int ssm = view(s, states, ds, hd, nh, g->n_rs);
    int y_ssm = ssm_scan(s, ssm, x, dt, A, B, C, g->s_copy_main);
    expand(s, y_ssm);
    rs_extra(g, sc, states, m->n_embd_s);
    expand(s, cpy_to(s, view(s, y_ssm, ds * di, ns, 1, 1), view(s, sc, ds * di, ns, 1, 1)));
    int y = view(s, y_ssm, hd, nh, nst, ns);
    y = add(s, y, mul(s, x, Wf32(s, 1, nh, 1)));
    y = glu_split(s, cont(s, z, hd, nh, nst, ns), y);
    y = view(s, y, di / ng, ng, nst, ns);
    y = norm_w(g, y, di / ng); /* grouped RMS norm (weight [di/ng, ng]) */
    y = view(s, y, di, T, 1, 1);
    return mul_mat(s, W(s, di, E, 1), y);
}

/* lfm2's short convolution block: in_proj to b | c | x, b*x convolved
 * with the conv state prepended, gated by c, out_proj. */
static int shortconv_layer(gctx *g, int cur)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, T = g->T, ns = g->n_seqs, nst = T / ns;
    int64_t dc = m->shortconv_l_cache - 1;
    int rc = leaf(s, T_F32, m->n_embd_r, g->n_rs, 1, 1, false);
    cur = view(s, cur, E, nst, ns, 1);
    int bcx = mul_mat(s, W(s, E, 3 * E, 1), cur);
    int b = view(s, bcx, E, nst, ns, 1);
    int c = view(s, bcx, E, nst, ns, 1);
    int x = view(s, bcx, E, nst, ns, 1);
    int bx = transpose(s, mul(s, b, x));
    int conv = build_rs(g, rc, m->n_embd_r);
    conv = view(s, conv, dc, E, ns, 1);
    bx = concat0(s, conv, bx);
    int snap = view(s, bx, dc, E, ns, 1);
    expand(s, cpy_to(s, snap, view(s, rc, dc * E, ns, 1, 1)));
    int conv_out = ssm_conv(s, bx, Wf32(s, m->shortconv_l_cache, E, 1));
    int y = mul(s, c, conv_out);
    y = mul_mat(s, W(s, E, E, 1), y);
    return view(s, y, E, T, 1, 1);
}

/* The attention layer of a hybrid (granitehybrid, lfm2): separate Q, K, V
 * projections, lfm2's Q/K RMS norms, rope, build_attn with the output
 * projection. */
static int hybrid_attn(gctx *g, int cur, uint32_t il)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, T = g->T, H = m->n_head, hkv = m->n_head_kv[il];
    int64_t Dk = m->head_k, Dv = m->head_v;
    int q = mul_mat(s, W(s, E, H * Dk, 1), cur);
    int k = mul_mat(s, W(s, E, hkv * Dk, 1), cur);
    int v = mul_mat(s, W(s, E, hkv * Dv, 1), cur);
    q = view(s, q, Dk, H, T, 1);
    k = view(s, k, Dk, hkv, T, 1);
    v = view(s, v, Dv, hkv, T, 1);
    if (m->arch == GW_EST_ARCH_LFM2) {
        q = norm_w(g, q, Dk);
        k = norm_w(g, k, Dk);
    }
    q = rope(s, q, g->inp_pos);
    k = rope(s, k, g->inp_pos);
    return attn(g, (int)il, q, k, v, W(s, H * Dv, E, 1), NONE, NONE);
}

/* qwen3next's build_qkvz: the mixed Q|K|V ([conv channels, nst, ns]) and
 * the gate z, from attn_qkv + attn_gate, or from the legacy ssm_in split
 * per K head and concatenated back. Returns qkv, sets *z. */
static int qwen3next_qkvz(gctx *g, int cur, int *z)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, ns = g->n_seqs, nst = g->T / ns;
    int64_t hk = m->ssm_d_state, nkh = m->ssm_n_group, nvh = m->ssm_dt_rank;
    int64_t di = m->ssm_d_inner, hv = di / nvh, vper = hv * (nvh / nkh);
    if (m->fused_qkv) {
        int qkv = mul_mat(s, W(s, E, 2 * hk * nkh + di, 1), cur);
        qkv = view(s, qkv, 2 * hk * nkh + di, nst, ns, 1);
        *z = mul_mat(s, W(s, E, di, 1), cur);
        return qkv;
    }
    int mixed = mul_mat(s, W(s, E, 2 * hk * nkh + 2 * di, 1), cur);
    mixed = view(s, mixed, 2 * hk + 2 * vper, nkh, nst, ns);
    int q = view(s, mixed, hk, nkh, nst, ns);
    int k = view(s, mixed, hk, nkh, nst, ns);
    int v = view(s, mixed, vper, nkh, nst, ns);
    *z = cont(s, view(s, mixed, vper, nkh, nst, ns), vper, nkh, nst, ns);
    q = cont(s, q, hk * nkh, nst, ns, 1);
    k = cont(s, k, hk * nkh, nst, ns, 1);
    v = cont(s, v, hv * nvh, nst, ns, 1);
    return concat0(s, concat0(s, q, k), v);
}

/* build_gdn_l2_norm (rms_norm, scale), then the K heads repeated up to the
 * V heads when they differ. */
static int gdn_qk(gctx *g, int x)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t hk = m->ssm_d_state, nkh = m->ssm_n_group, nvh = m->ssm_dt_rank;
    int64_t ns = g->n_seqs, nst = g->T / ns;
    x = unary(s, rms_norm(s, x));
    if (nkh == nvh)
        return x;
    int r = view(s, x, hk, 1, nkh, nst * ns);
    r = new_op(s, T_F32, hk, nvh / nkh, nkh, nst * ns, r, NONE, NONE, NONE, NONE); /* repeat */
    return view(s, r, hk, nvh, nst, ns);
}

/* qwen3next's linear-attention layer (gated delta net, the fused op that
 * llama.cpp uses by default): projections, beta / gate, causal conv over
 * the conv state, L2-normed Q and K, ggml_gated_delta_net over the SSM
 * state, gated RMS norm, out_proj. */
static int qwen3next_linear(gctx *g, int cur)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, T = g->T, ns = g->n_seqs, nst = T / ns;
    int64_t hk = m->ssm_d_state, nkh = m->ssm_n_group, nvh = m->ssm_dt_rank;
    int64_t di = m->ssm_d_inner, hv = di / nvh, kc = m->ssm_d_conv;
    int64_t conv_ch = di + 2 * nkh * hk;
    int z;
    int qkv = qwen3next_qkvz(g, cur, &z);
    int ba = mul_mat(s, W(s, E, 2 * nvh, 1), cur);
    ba = view(s, ba, 2 * nvh / nkh, nkh, nst, ns);
    int b = view(s, ba, nvh / nkh, nkh, nst, ns);
    int a = view(s, ba, nvh / nkh, nkh, nst, ns);
    int beta = unary(s, cont(s, b, nvh / nkh, nkh, nst, ns)); /* sigmoid */
    int alpha = cont(s, a, nvh, nst, ns, 1);
    int gate = unary(s, add(s, alpha, W(s, nvh, 1, 1))); /* softplus */
    gate = mul(s, gate, W(s, nvh, 1, 1));
    beta = view(s, beta, 1, nvh, nst, ns);
    gate = view(s, gate, 1, nvh, nst, ns);
    int rc = leaf(s, T_F32, m->n_embd_r, g->n_rs, 1, 1, false);
    int sc = leaf(s, T_F32, m->n_embd_s, g->n_rs, 1, 1, false);
    /* build_conv_state */
    int conv = view(s, build_rs(g, rc, m->n_embd_r), kc - 1, conv_ch, ns, 1);
    int conv_in = concat0(s, conv, transpose(s, qkv));
    expand(s, cpy_to(s, view(s, conv_in, kc - 1, conv_ch, ns, 1),
                     view(s, rc, (kc - 1) * conv_ch, ns, 1, 1)));
    int state = view(s, build_rs(g, sc, m->n_embd_s), hv, hv, nvh, ns);
    int conv_out = unary(s, ssm_conv(s, conv_in, Wf32(s, kc, conv_ch, 1))); /* silu */
    int q = gdn_qk(g, view(s, conv_out, hk, nkh, nst, ns));
    int k = gdn_qk(g, view(s, conv_out, hk, nkh, nst, ns));
    int v = view(s, conv_out, hv, nvh, nst, ns);
    /* ggml_gated_delta_net, K = 1: [S_v * H, nst * ns + S_v * ns] */
    int gdn = new_op(s, T_F32, hv * nvh, nst * ns + hv * ns, 1, 1, q, k, v, gate, beta);
    if (!s->failed)
        s->t[gdn].src[5] = state;
    int out = view(s, gdn, hv, nvh, nst, ns);
    expand(s, cpy_to(s, view(s, gdn, hv, hv, nvh, ns), view(s, sc, m->n_embd_s, ns, 1, 1)));
    /* build_norm_gated: rms_norm(out) * w * silu(z) */
    int normed = norm_w(g, out, hv);
    int y = mul(s, normed, unary(s, view(s, z, hv, nvh, nst, ns)));
    y = view(s, y, hv * nvh, nst, ns, 1);
    y = mul_mat(s, W(s, di, E, 1), y);
    return view(s, y, E, T, 1, 1);
}

/* qwen3next's gated full attention: Q and its gate from one projection,
 * Q/K RMS norms, rope, attention, sigmoid gate, output projection. */
static int qwen3next_attn(gctx *g, int cur, uint32_t il)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, T = g->T, H = m->n_head, hkv = m->n_head_kv[il], D = m->head_k;
    int qf = mul_mat(s, W(s, E, 2 * D * H, 1), cur);
    int k = mul_mat(s, W(s, E, hkv * D, 1), cur);
    int v = mul_mat(s, W(s, E, hkv * D, 1), cur);
    qf = view(s, qf, 2 * D, H, T, 1);
    int q = view(s, qf, D, H, T, 1);
    int gate = view(s, qf, D, H, T, 1);
    k = view(s, k, D, hkv, T, 1);
    v = view(s, v, D, hkv, T, 1);
    q = rope(s, norm_w(g, q, D), g->inp_pos);
    k = rope(s, norm_w(g, k, D), g->inp_pos);
    cur = attn(g, (int)il, q, k, v, NONE, NONE, NONE);
    gate = unary(s, cont(s, gate, D * H, T, 1, 1)); /* sigmoid */
    cur = mul(s, cur, gate);
    return mul_mat(s, W(s, D * H, E, 1), cur);
}

/* qwen3next's FFN: routed experts plus the sigmoid-gated shared expert. */
static int qwen3next_ffn(gctx *g, int cur)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int moe_out = moe(g, cur, false, true, false);
    int sh = ffn(g, cur, m->n_ff_shexp ? m->n_ff_shexp : m->n_ff);
    int sg = unary(s, mul_mat(s, W(s, m->n_embd, 1, 1), cur)); /* sigmoid */
    sh = mul(s, sh, sg);
    return add(s, moe_out, sh);
}

/* llama_model_qwen3next::graph: the last layer keeps every token (the
 * hidden state after the output norm is an output of its own, t_h_nextn);
 * the rows for the outputs are taken after the norm. */
static void build_qwen3next(gctx *g)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    int64_t E = m->n_embd, V = m->n_vocab;
    int inpL = inp_embd(g);
    rs_inputs(g);
    attn_inputs(g, 0);
    g->inp_pos = input(s, T_I32, g->T, 1, 1, 1);
    g->out_ids = input(s, T_I32, g->n_out, 1, 1, 1);
    for (uint32_t il = 0; il < m->n_layer && !s->failed; il++) {
        s->cur_dev = layer_dev(g, il);
        s->wtype = m->mat_type;
        int cur = norm_w(g, inpL, E);
        expand(s, cur);
        cur = m->recr_layer[il] ? qwen3next_linear(g, cur) : qwen3next_attn(g, cur, il);
        int res = add(s, cur, inpL);
        cur = qwen3next_ffn(g, norm_w(g, res, E));
        inpL = add(s, cur, res);
    }
    s->cur_dev = layer_dev(g, m->n_layer);
    s->wtype = m->output_type;
    int cur = norm_w(g, inpL, E);
    if (!s->failed)
        s->t[cur].output = true; /* t_h_nextn */
    cur = get_rows(s, cur, g->out_ids);
    if (!s->failed)
        s->t[cur].output = true; /* t_embd */
    cur = mul_mat(s, W(s, E, V, 1), cur);
    if (!s->failed)
        s->t[cur].output = true; /* t_logits */
    expand(s, cur);
}

/* The graphs of mamba2 (llama_model_mamba::graph), granitehybrid and
 * lfm2: embeddings, one block per layer (recurrent mixer or attention,
 * then the FFN for the hybrids), output norm and logits. */
static void build_recurrent(gctx *g)
{
    sim *s = g->s;
    const gw_est_model *m = g->m;
    gw_est_arch a = m->arch;
    int64_t E = m->n_embd, V = m->n_vocab;
    int inpL = inp_embd(g);
    rs_inputs(g);
    if (a != GW_EST_ARCH_MAMBA2) {
        attn_inputs(g, 0);
        g->inp_pos = input(s, T_I32, g->T, 1, 1, 1);
    }
    g->out_ids = input(s, T_I32, g->n_out, 1, 1, 1);
    for (uint32_t il = 0; il < m->n_layer && !s->failed; il++) {
        s->cur_dev = layer_dev(g, il);
        s->wtype = m->mat_type;
        int inpSA = inpL;
        int cur = norm_w(g, inpL, E);
        if (!m->recr_layer[il])
            cur = hybrid_attn(g, cur, il);
        else if (a == GW_EST_ARCH_LFM2)
            cur = shortconv_layer(g, cur);
        else
            cur = mamba2_layer(g, cur);
        if (il + 1 == m->n_layer) {
            cur = get_rows(s, cur, g->out_ids);
            inpSA = get_rows(s, inpSA, g->out_ids);
        }
        if (a == GW_EST_ARCH_MAMBA2) {
            inpL = add(s, cur, inpSA);
            continue;
        }
        /* granite: ffn_inp = cur + inpSA; lfm2: prev + cur (same shapes) */
        int ffn_inp = a == GW_EST_ARCH_LFM2 ? add(s, inpSA, cur) : add(s, cur, inpSA);
        cur = ffn(g, norm_w(g, ffn_inp, E), m->n_ff);
        inpL = a == GW_EST_ARCH_LFM2 ? add(s, ffn_inp, cur) : add(s, cur, ffn_inp);
    }
    s->cur_dev = layer_dev(g, m->n_layer);
    s->wtype = m->output_type;
    int cur = norm_w(g, inpL, E);
    if (!s->failed)
        s->t[cur].output = true; /* t_embd */
    if (!(a == GW_EST_ARCH_LFM2 && g->embeddings)) {
        cur = mul_mat(s, W(s, E, V, 1), cur);
        if (!s->failed)
            s->t[cur].output = true; /* t_logits */
    }
    expand(s, cur);
}

/* An empty simulator for n_dev GPUs and the host (s zeroed by the caller). */
static void sim_setup(sim *s, int n_dev, bool cuda)
{
    s->n_dev = n_dev;
    s->host = n_dev;
    s->cur_dev = n_dev;
    for (int d = 0; d <= n_dev; d++) {
        s->cuda[d] = d < n_dev && cuda;
        s->align[d] = s->cuda[d] ? GW__EST_CUDA_ALIGN : GW__EST_CPU_ALIGN;
    }
}

/* Scheduler passes (with GPUs) and the allocator; out[d] per backend. */
static int sim_finish(sim *s, bool op_offload, int n_copies, uint64_t *out, gw_error *err)
{
    if (!s->failed && s->n_dev > 0) {
        assign_backends(s, op_offload);
        insert_copies(s, n_copies);
    }
    if (!s->failed)
        run_alloc(s);
    if (s->too_big)
        return gw__error_set(err, GW_ERANGE,
                             "estimate: the compute graph needs more than %u tensors (block count "
                             "or experts used far beyond any real model)",
                             GW__SIM_MAX_TENSORS);
    if (s->failed)
        return gw__error_set(err, GW_ENOMEM, "estimate: out of memory simulating the compute graph");
    if (s->overflow)
        return gw__error_set(err, GW_ERANGE, "estimate: compute graph bytes overflow");
    for (int d = 0; d <= s->n_dev; d++)
        out[d] = s->max_size[d];
    return GW_OK;
}

static void sim_release(sim *s)
{
    free(s->t);
    free(s->nodes);
    free(s->leafs);
    for (int d = 0; d <= s->n_dev; d++)
        free(s->free_[d]);
}

int gw__est_compute_bytes(const gw_est_model *m, const gw_est_result *c,
                          const gw_est_params *p, gw_error *err, uint64_t *out)
{
    sim s;
    memset(&s, 0, sizeof s);
    sim_setup(&s, (int)c->n_devices, p->backend == GW_EST_CUDA);
    gctx g;
    memset(&g, 0, sizeof g);
    g.s = &s;
    g.m = m;
    g.c = c;
    g.type_k = p->type_k;
    g.type_v = p->type_v;
    uint32_t n_seqs = c->n_seq;
    uint32_t n_tokens = c->n_ctx < c->n_ubatch ? c->n_ctx : c->n_ubatch;
    /* n_outputs = min(n_tokens, n_outputs_max = n_batch), taken before
     * graph_reserve rounds n_tokens up to a multiple of the sequences */
    g.n_out = n_tokens < c->n_batch ? n_tokens : c->n_batch;
    if (n_tokens % n_seqs)
        n_tokens = (n_tokens + n_seqs - 1) / n_seqs * n_seqs;
    g.T = n_tokens;
    g.ns = c->n_stream;
    g.n_kv[0] = c->kv_size;
    g.n_kv[1] = c->kv_size_swa;
    g.v_trans = !c->flash_attn;
    g.n_rs = n_seqs;  /* mem_size = max(1, n_seq_max); the reserve ubatch has them all */
    g.n_seqs = n_seqs;
    g.embeddings = p->embeddings;
    if (m->arch == GW_EST_ARCH_QWEN3NEXT)
        build_qwen3next(&g);
    else if (m->has_recr)
        build_recurrent(&g);
    else
        build(&g);
    /* pipeline parallelism: several GPUs, everything offloaded, layer split */
    bool pp = s.n_dev > 1 && c->n_gpu_layers > (int32_t)m->n_layer &&
              p->split_mode == GW_EST_SPLIT_LAYER;
    int rc = sim_finish(&s, !p->no_op_offload, pp ? 4 : 1, out, err);
    sim_release(&s);
    return rc;
}

/* ------------------------------------ the simulator for other builders */

gw__sim *gw__sim_new(uint32_t n_dev, bool cuda)
{
    if (n_dev > GW_EST_MAX_DEVICES)
        return NULL;
    sim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    sim_setup(s, (int)n_dev, cuda);
    return s;
}

void gw__sim_free(gw__sim *s)
{
    if (!s)
        return;
    sim_release(s);
    free(s);
}

void gw__sim_place(gw__sim *s, int dev)
{
    s->cur_dev = dev < 0 || dev >= s->n_dev ? s->host : dev;
}

int gw__sim_input(gw__sim *s, uint32_t type, const int64_t ne[4])
{
    return input(s, type, ne[0], ne[1], ne[2], ne[3]);
}

int gw__sim_weight(gw__sim *s, uint32_t type, const int64_t ne[4])
{
    int t = leaf(s, type, ne[0], ne[1], ne[2], ne[3], false);
    if (!s->failed)
        s->t[t].weight = true;
    return t;
}

int gw__sim_scratch(gw__sim *s, uint32_t type, const int64_t ne[4])
{
    int t = t_add(s, type, K_LEAF, ne, NONE, NONE, NONE, NONE, NONE);
    return t; /* neither input nor external: allocated with the leafs */
}

int gw__sim_op(gw__sim *s, gw__sim_kind kind, gw__sim_class op, uint32_t type, const int64_t ne[4],
               int a, int b, int c, int d)
{
    static const uint8_t kinds[] = {[GW__SIM_VIEW] = K_VIEW, [GW__SIM_INPLACE] = K_INPLACE,
                                    [GW__SIM_OTHER] = K_OTHER};
    static const uint8_t ops[] = {[GW__SIM_OP_PLAIN] = O_OTHER, [GW__SIM_OP_MUL_MAT] = O_MUL_MAT,
                                  [GW__SIM_OP_GET_ROWS] = O_GET_ROWS, [GW__SIM_OP_ROPE] = O_ROPE,
                                  [GW__SIM_OP_FA] = O_FA};
    uint8_t k = kind >= GW__SIM_VIEW && kind <= GW__SIM_OTHER ? kinds[kind] : K_OTHER;
    int t = t_add(s, type, k, ne, a, b, c, d, NONE);
    if (!s->failed && k != K_VIEW && op >= GW__SIM_OP_PLAIN && op <= GW__SIM_OP_FA)
        s->t[t].op = ops[op];
    return t;
}

const int64_t *gw__sim_ne(const gw__sim *s, int t)
{
    static const int64_t zero[4] = {0, 0, 0, 0};
    return s->failed || t < 0 || (size_t)t >= s->n ? zero : s->t[t].ne;
}

uint32_t gw__sim_type(const gw__sim *s, int t)
{
    return s->failed || t < 0 || (size_t)t >= s->n ? T_F32 : s->t[t].type;
}

void gw__sim_expand(gw__sim *s, int t)
{
    expand(s, t);
}

int gw__sim_run(gw__sim *s, bool op_offload, int n_copies, uint64_t *out, gw_error *err)
{
    return sim_finish(s, op_offload, n_copies, out, err);
}
