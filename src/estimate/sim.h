/* sim.h — graph.c's ggml-alloc simulator, opened to other graph builders
 * of the estimator (gw__ tier, not installed).
 *
 * Owns: the handle (gw__sim) and the few primitives a builder needs: leaf
 * tensors (graph inputs, weights, scratch leafs), op tensors with up to
 * four sources, ggml_build_forward_expand, and the run (backend assignment,
 * scheduler copies, the best-fit allocator) that yields the compute buffer
 * of each backend. graph.c documents the allocation rules.
 *
 * Invariants:
 *  1. Tensors are named by the int index a constructor returned; an index
 *     is valid until gw__sim_free. After an allocation failure, or once the
 *     graph holds GW__SIM_MAX_TENSORS tensors, every constructor returns 0
 *     and gw__sim_run reports GW_ENOMEM (GW_ERANGE for the size limit), so
 *     a builder needs no error checks between calls.
 *  2. Shapes are ggml's ne[4] (unused dimensions 1); op results are
 *     contiguous tensors of the given type; views share their base.
 *  3. gw__sim_run is called at most once; it leaves the handle to be freed.
 *
 * Example (a matrix product and an in-place add on the host):
 *     gw__sim *s = gw__sim_new(0, false);
 *     int64_t xe[4] = {64, 8, 1, 1}, we[4] = {64, 32, 1, 1}, ye[4] = {32, 8, 1, 1};
 *     int x = gw__sim_input(s, 0, xe), w = gw__sim_weight(s, 1, we);
 *     int y = gw__sim_op(s, GW__SIM_OTHER, GW__SIM_OP_MUL_MAT, 0, ye, w, x, -1, -1);
 *     gw__sim_expand(s, y);
 *     uint64_t out[1];
 *     gw__sim_run(s, true, 1, out, err);   out[0]: 64*8*4 + 32*8*4 bytes
 *     gw__sim_free(s);
 */
#ifndef GW_ESTIMATE_SIM_H
#define GW_ESTIMATE_SIM_H

#include "estimate/estimate_impl.h"

#define GW__SIM_NONE (-1)

/* The most tensors one simulation holds (ops, leafs, scheduler copies).
 * The graph of a real model is a few thousand (llama 70B: about 4000; a
 * 1024-layer dense model: about 45000); the simulation is linear in it, so
 * this bounds the time of one estimate (tens of milliseconds) against
 * hyper-parameters no real model has (1024 layers x 256 experts used). */
#define GW__SIM_MAX_TENSORS (1u << 17)

typedef struct gw__sim gw__sim;

/* How ggml-alloc treats an op's result. */
typedef enum gw__sim_kind {
    GW__SIM_VIEW = 1, /* reshape / permute / transpose / view: no memory */
    GW__SIM_INPLACE,  /* may take over its first fitting source (add, mul, rms_norm,
                         rope, soft_max, scale, unary) */
    GW__SIM_OTHER,    /* always new memory */
} gw__sim_kind;

/* The op classes the backend scheduler treats differently. */
typedef enum gw__sim_class {
    GW__SIM_OP_PLAIN = 0,
    GW__SIM_OP_MUL_MAT,
    GW__SIM_OP_GET_ROWS,
    GW__SIM_OP_ROPE,
    GW__SIM_OP_FA,
} gw__sim_class;

/* A simulator for n_dev GPUs (CUDA rules when cuda) plus the host. Returns
 * NULL when out of memory or n_dev > GW_EST_MAX_DEVICES. Free with
 * gw__sim_free. */
gw__sim *gw__sim_new(uint32_t n_dev, bool cuda);

/* Frees s and everything it holds; NULL is a no-op. */
void gw__sim_free(gw__sim *s);

/* Backend of the weights created next: 0..n_dev-1, or -1 for the host. */
void gw__sim_place(gw__sim *s, int dev);

/* A graph input (ggml_set_input): on the host, allocated first. */
int gw__sim_input(gw__sim *s, uint32_t type, const int64_t ne[4]);

/* A weight: lives in another buffer, costs nothing here. */
int gw__sim_weight(gw__sim *s, uint32_t type, const int64_t ne[4]);

/* A leaf that is neither input nor weight (ggml_new_tensor fed to an op):
 * ggml-alloc allocates it with the leafs. */
int gw__sim_scratch(gw__sim *s, uint32_t type, const int64_t ne[4]);

/* An op of the given kind and class with result type and shape ne and
 * sources a..d (GW__SIM_NONE for none), in ggml's src order. */
int gw__sim_op(gw__sim *s, gw__sim_kind kind, gw__sim_class op, uint32_t type, const int64_t ne[4],
               int a, int b, int c, int d);

/* Shape and type of tensor t (borrowed; a zero shape after a failure). */
const int64_t *gw__sim_ne(const gw__sim *s, int t);
uint32_t gw__sim_type(const gw__sim *s, int t);

/* ggml_build_forward_expand(t): depth-first over the sources. */
void gw__sim_expand(gw__sim *s, int t);

/* Assigns backends and scheduler copies (when there are GPUs; n_copies > 1
 * for pipeline parallelism) and runs the allocator. On GW_OK out[0..n_dev]
 * holds the compute buffer of each GPU and, last, the host. Errors:
 * GW_ENOMEM, GW_ERANGE (a size overflowed, or the graph outgrew
 * GW__SIM_MAX_TENSORS); out is untouched then. */
int gw__sim_run(gw__sim *s, bool op_offload, int n_copies, uint64_t *out, gw_error *err);

#endif /* GW_ESTIMATE_SIM_H */
