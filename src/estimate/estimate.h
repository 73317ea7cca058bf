/* estimate.h — memory estimate of a GGUF model under llama.cpp, per device
 * and for the host, following llama.cpp's own allocation rules.
 *
 * Owns: the model description read from a GGUF header (gw_est_model), the
 * context parameters with llama.cpp's names and defaults (gw_est_params),
 * the breakdown of one layout (gw_est_result: weights / KV / compute /
 * output per device and host) and the fit planner (gw_est_plan_fit).
 *
 * How each figure is obtained (docs/estimate.md has the detail):
 *  - weights: the tensors' own bytes, grouped by layer (input layer
 *    token_embd on the host, blk.N.* on layer N, output* on the output
 *    layer); each device buffer padded like its backend pads it (CPU:
 *    32-byte tensor alignment; CUDA: MATRIX_ROW_PADDING for quantized rows
 *    and 128-byte buffer alignment); a tied output adds a copy of
 *    token_embd on the output layer's device when that is a GPU.
 *  - KV cache: per layer, K = row(type_k, n_embd_k_gqa(il)) * kv_size *
 *    n_stream, V likewise (widest layer when V is transposed, i.e. without
 *    flash attention); sliding-window layers get their own smaller cache;
 *    MLA (deepseek2) keeps only the compressed K.
 *  - compute: a simulation of ggml-alloc (best-fit allocator, in-place
 *    reuse, free-after-last-use) over the worst-case graph llama.cpp
 *    reserves (n_tokens = min(n_ctx, n_ubatch), full KV); exact for the
 *    architectures listed in gw_est_arch, "approximate" otherwise.
 *  - output: 4 * n_vocab * n_seq (+ n_embd when embeddings) on the host.
 *  - projector (--mmproj): its tensor bytes, and the compute buffer of
 *    clip.cpp's warm-up graph (mmproj.c over the same simulator), on the
 *    first GPU or the host (gw_est_mmproj, gw_est_mem.mmproj_compute).
 *
 * Invariants:
 *  1. A gw_est_model is immutable once read; it owns its arrays and is
 *     freed with gw_est_model_free. It never borrows the gw_gguf handle.
 *  2. Every byte count is computed with overflow-checked arithmetic; a
 *     result that does not fit in 64 bits is GW_ERANGE, never a wrap.
 *  3. gw_est_estimate is a pure function of (model, params): same inputs,
 *     same bytes; no I/O, no global state, thread-safe.
 */
#ifndef GW_ESTIMATE_H
#define GW_ESTIMATE_H

#include "gguf/gguf.h"
#include "core/model.h"

#include <stdbool.h>
#include <stdint.h>

#define GW_EST_MAX_DEVICES 16
#define GW_EST_MAX_LAYERS 1024

/* Architectures with exact rules. Anything else is GW_EST_ARCH_GENERIC
 * (estimated with the llama graph, flagged approximate). */
typedef enum gw_est_arch {
    GW_EST_ARCH_GENERIC = 0,
    GW_EST_ARCH_LLAMA,     /* llama, mistral; mixtral-style MoE when experts */
    GW_EST_ARCH_QWEN2,
    GW_EST_ARCH_QWEN3,
    GW_EST_ARCH_QWEN3MOE,
    GW_EST_ARCH_GEMMA2,
    GW_EST_ARCH_GEMMA3,
    GW_EST_ARCH_PHI3,
    GW_EST_ARCH_COMMAND_R,
    GW_EST_ARCH_DEEPSEEK2,
    GW_EST_ARCH_GPT_OSS,
    GW_EST_ARCH_MAMBA2,        /* recurrent: Mamba-2 state only, no KV cache */
    GW_EST_ARCH_GRANITE_HYBRID, /* Mamba-2 layers + attention layers (head_count_kv 0: Mamba) */
    GW_EST_ARCH_LFM2,          /* short-convolution layers + attention layers */
    GW_EST_ARCH_QWEN3NEXT,     /* gated delta net layers + gated attention every n-th layer */
} gw_est_arch;

/* What the estimator knows of a model: hyper-parameters and weight bytes. */
typedef struct gw_est_model {
    char arch_name[32];
    gw_est_arch arch;
    bool approximate; /* architecture without exact rules */
    uint32_t n_layer, n_embd, n_head, n_ff, n_vocab, n_ctx_train;
    uint32_t n_head_kv[GW_EST_MAX_LAYERS]; /* per layer */
    uint32_t head_k, head_v;               /* per-head K and V lengths */
    uint32_t n_expert, n_expert_used, n_ff_exp, n_expert_shared, n_dense_lead;
    uint32_t n_swa;                  /* sliding window; 0: none */
    bool swa_layer[GW_EST_MAX_LAYERS]; /* layer il uses the sliding window */
    uint32_t kv_lora_rank, q_lora_rank, rope_dim, head_k_mla, head_v_mla; /* MLA */
    bool has_output;      /* output.weight present (else tied to token_embd) */
    bool attn_softcap;    /* gemma2 */
    bool qkv_bias, qk_norm, fused_qkv, post_norms, parallel_ffn, sinks;
    bool expert_weights_norm; /* MoE router weights renormalised (deepseek2: key) */
    uint32_t embd_type, output_type; /* ggml types of token_embd / output */
    uint32_t mat_type;               /* type of the block matrices (blk.0.attn_output) */
    /* Weight bytes: [0] input layer (token_embd...), [1 + il] layer il,
     * [1 + n_layer] output layer; raw nbytes and CUDA-padded bytes. */
    uint64_t *layer_bytes;
    uint64_t *layer_bytes_cuda;
    uint64_t *layer_tensors; /* tensor count per layer (for alignment padding) */
    uint64_t *layer_bytes_amx; /* CPU-aligned bytes when the host CPU has AMX: the
                                  MUL_MAT weights AMX takes at AMX's size */
    uint64_t embd_bytes, embd_bytes_cuda; /* token_embd (the tied copy) */
    uint64_t embd_bytes_amx;  /* its size in the AMX buffer; 0: AMX does not take it */
    uint64_t embd_rows;       /* token_embd ne1 (repack needs it divisible) */
    uint64_t file_size;
    /* Recurrent state (recurrent.c). recr_layer[il]: layer il keeps a
     * recurrent state (conv state r + SSM state s, F32, one row per
     * sequence) instead of a KV cache. n_embd_r / n_embd_s: floats per
     * sequence and layer, llama_hparams::n_embd_r() / n_embd_s(). */
    bool recr_layer[GW_EST_MAX_LAYERS];
    bool has_recr;                          /* some layer is recurrent */
    uint32_t ssm_d_conv, ssm_d_inner, ssm_d_state, ssm_n_group, ssm_dt_rank;
    uint32_t shortconv_l_cache;             /* lfm2 */
    uint32_t n_embd_r, n_embd_s;
    uint32_t n_ff_shexp; /* shared-expert FFN width (qwen3next); 0: n_ff */
} gw_est_model;

/* Reads the estimator's model from an open GGUF. On success the caller owns
 * *out (gw_est_model_free). Errors: GW_ENOTSUP for a file that is not a
 * language model it can read (no general.architecture, unknown layout),
 * GW_EPARSE for missing or inconsistent hyper-parameters (message names the
 * key), GW_ENOMEM. On failure *out is NULL. */
int gw_est_model_read(const gw_gguf *g, gw_est_model **out, gw_error *err);

/* Frees a model from gw_est_model_read; NULL is a no-op. */
void gw_est_model_free(gw_est_model *m);

typedef enum gw_est_backend { GW_EST_CPU = 0, GW_EST_CUDA } gw_est_backend;

/* ggml's CPU backend variants (libggml-cpu-<name>.so of a build with
 * GGML_CPU_ALL_VARIANTS, as llama.cpp releases and node-llama-cpp ship):
 * llama.cpp loads the one with the highest score among those the host can
 * run. The variant decides which extra buffer types hold host weights.
 * GW_EST_CPUV_NONE: no extra buffer type (llama.cpp --no-repack, or a
 * build without them). */
typedef enum gw_est_cpu_variant {
    GW_EST_CPUV_NONE = 0,
    GW_EST_CPUV_X64, GW_EST_CPUV_SSE42, GW_EST_CPUV_SANDYBRIDGE, GW_EST_CPUV_IVYBRIDGE,
    GW_EST_CPUV_PILEDRIVER, GW_EST_CPUV_HASWELL, GW_EST_CPUV_SKYLAKEX, GW_EST_CPUV_CANNONLAKE,
    GW_EST_CPUV_CASCADELAKE, GW_EST_CPUV_ICELAKE, GW_EST_CPUV_COOPERLAKE, GW_EST_CPUV_ZEN4,
    GW_EST_CPUV_ALDERLAKE, GW_EST_CPUV_SAPPHIRERAPIDS,
    GW_EST_CPUV_ARMV8_0_1, GW_EST_CPUV_ARMV8_2_1, GW_EST_CPUV_ARMV8_2_2, GW_EST_CPUV_ARMV8_2_3,
    GW_EST_CPUV_ARMV8_6_1, GW_EST_CPUV_ARMV8_6_2, GW_EST_CPUV_ARMV9_2_1, GW_EST_CPUV_ARMV9_2_2,
    GW_EST_CPUV_COUNT
} gw_est_cpu_variant;

/* Extra weight buffer types of a CPU variant (bits). */
#define GW_EST_BUFT_AMX 1u    /* "AMX": Intel AMX packed weights */
#define GW_EST_BUFT_REPACK 2u /* "CPU_REPACK": interleaved quantized weights */

/* The variant's file name part ("sapphirerapids", "armv8.2_1"), or "none";
 * "unknown" for a value out of range. Static storage. */
const char *gw_est_cpu_variant_name(gw_est_cpu_variant v);

/* Parses a --host-cpu value into *out: a name of gw_est_cpu_variant_name,
 * or "host" for gw_est_cpu_variant_host(). GW_OK, or GW_EINVAL with a
 * message listing the valid names (*out untouched). err may be NULL. */
int gw_est_cpu_variant_parse(const char *name, gw_est_cpu_variant *out, gw_error *err);

/* The variant llama.cpp's backend loader picks on this host (cpuid on
 * x86-64, HWCAP on arm64; scored as ggml's cpu-feats do). NONE on other
 * architectures. Pure: same machine, same answer; thread-safe. */
gw_est_cpu_variant gw_est_cpu_variant_host(void);

/* GW_EST_BUFT_* bits of the extra buffer types that take weights on v
 * (REPACK only where some weight type has a repacked kernel). */
unsigned gw_est_cpu_variant_buffer_types(gw_est_cpu_variant v);

/* Names of the GW_EST_BUFT_* bits in bufts, llama.cpp's spelling, joined by
 * sep ("AMX, CPU_REPACK"); "" for none. Writes at most n bytes (always
 * terminated when n > 0); returns buf. */
char *gw_est_buffer_types_str(unsigned bufts, const char *sep, char *buf, size_t n);
typedef enum gw_est_split { GW_EST_SPLIT_LAYER = 0, GW_EST_SPLIT_NONE, GW_EST_SPLIT_ROW } gw_est_split;
typedef enum gw_est_fa { GW_EST_FA_AUTO = -1, GW_EST_FA_OFF = 0, GW_EST_FA_ON = 1 } gw_est_fa;

/* Context and placement parameters, with llama.cpp's meaning. */
typedef struct gw_est_params {
    uint32_t n_ctx;    /* -c; 0: the model's training context */
    uint32_t n_batch;  /* -b; default 2048 */
    uint32_t n_ubatch; /* -ub; default 512 */
    uint32_t n_seq;    /* -np; default 1 */
    bool kv_unified;   /* --kv-unified */
    bool swa_full;     /* --swa-full */
    bool embeddings;   /* --embeddings: output buffer also holds embeddings */
    uint32_t type_k, type_v; /* ggml type ids; default F16 */
    gw_est_fa flash_attn;    /* -fa; AUTO means on for GPU layouts, off on CPU */
    int32_t n_gpu_layers;    /* -ngl; -1: all */
    gw_est_split split_mode; /* -sm */
    uint32_t main_gpu;       /* -mg */
    double tensor_split[GW_EST_MAX_DEVICES]; /* -ts; all 0: by free memory */
    /* Devices to place on (GPUs); 0 devices: CPU only. */
    uint32_t n_devices;
    gw_est_backend backend;               /* of every device */
    uint64_t device_free[GW_EST_MAX_DEVICES]; /* bytes usable now */
    uint64_t overhead;  /* per GPU runtime overhead outside llama.cpp's buffers */
    uint64_t margin;    /* per GPU safety margin kept free */
    uint64_t mmproj_bytes; /* vision projector weights (first GPU, or host) */
    bool no_op_offload;    /* --no-op-offload: host weights' big ops stay on the CPU */
    gw_est_cpu_variant host_cpu; /* --host-cpu: the CPU variant whose extra buffer
                                    types hold host weights; default: this host's */
    bool no_host;          /* --no-host: with GPUs, host weights skip the GPU's pinned
                              host buffer and go to the CPU's extra buffer types */
    /* The vision projector (--mmproj), borrowed: its compute buffer is
     * estimated when set (NULL: weights only, from mmproj_bytes). */
    const struct gw_est_mmproj *mmproj;
    bool no_mmproj_offload; /* --no-mmproj-offload: the projector stays on the host */
} gw_est_params;

/* Default overhead and margin per GPU (docs/estimate.md explains them). */
#define GW_EST_DEFAULT_OVERHEAD (512ull << 20)
#define GW_EST_DEFAULT_MARGIN (512ull << 20)

/* Fills llama.cpp's defaults (n_ctx 0 = train, batch 2048, ubatch 512,
 * 1 sequence, F16 KV, flash attention auto, all layers on GPU, layer split),
 * gpuwatch's overhead/margin defaults and this host's CPU variant
 * (gw_est_cpu_variant_host); no devices. */
void gw_est_params_init(gw_est_params *p);

/* Bytes of one device (or the host). */
typedef struct gw_est_mem {
    uint64_t weights, kv, compute, output, mmproj, overhead;
    uint64_t total; /* sum of all the fields */
    uint64_t mmproj_compute; /* the projector's compute buffer (mmproj: its weights) */
} gw_est_mem;

typedef struct gw_est_result {
    /* Context as llama.cpp resolves it. */
    uint32_t n_ctx, n_ctx_seq, n_batch, n_ubatch, n_seq, n_stream;
    uint32_t kv_size, kv_size_swa;
    bool flash_attn;
    int32_t n_gpu_layers;   /* resolved (layers offloaded incl. output) */
    uint32_t layer_device[GW_EST_MAX_LAYERS + 2]; /* per layer il+1 (0: input):
                                                      device index, or UINT32_MAX = host */
    uint32_t n_devices;
    gw_est_mem device[GW_EST_MAX_DEVICES];
    gw_est_mem host;
    uint64_t kv_k, kv_v; /* all KV bytes split into K and V */
    bool approximate;
    bool fits;          /* every device: total + margin <= free */
    gw_est_cpu_variant host_cpu;  /* the variant assumed (params' host_cpu) */
    unsigned host_buffer_types;   /* GW_EST_BUFT_* that hold host weights in this
                                     layout: the variant's, or 0 when a GPU's pinned
                                     host buffer takes them (GPUs without no_host) */
    bool mmproj_approximate; /* the projector's compute buffer has no exact rules */
} gw_est_result;

/* Estimates model m under params p. Returns GW_OK and fills *r, or
 * GW_EINVAL (bad parameter: message names it, e.g. quantized V cache
 * without flash attention) / GW_ERANGE (byte count overflow, or a compute
 * graph too large to simulate: hyper-parameters far beyond any real model).
 * On error *r is zeroed. */
int gw_est_estimate(const gw_est_model *m, const gw_est_params *p, gw_est_result *r,
                    gw_error *err);

/* The plan the planner chose. */
typedef enum gw_est_plan_kind {
    GW_EST_PLAN_ONE_GPU = 0,   /* whole model on one GPU */
    GW_EST_PLAN_SPLIT,         /* layer split over several GPUs */
    GW_EST_PLAN_PARTIAL,       /* partial offload (-ngl < all) */
    GW_EST_PLAN_REDUCED_CTX,   /* full offload only with a smaller context */
    GW_EST_PLAN_CPU,           /* nothing fits on a GPU: CPU only */
    GW_EST_PLAN_AS_GIVEN,      /* the user's own layout fits */
} gw_est_plan_kind;

/* "one-gpu", "split", "partial", "reduced-context", "cpu", "as-given". */
const char *gw_est_plan_kind_name(gw_est_plan_kind k);

typedef struct gw_est_plan {
    gw_est_plan_kind kind;
    gw_est_params params; /* the layout chosen (devices as given) */
    gw_est_result result;
    char flags[512];      /* llama.cpp flags for it: "-ngl 99 -c 8192 -ts 3,1 ..." */
} gw_est_plan;

/* Finds the best plan for m on p's devices: one GPU if possible (largest
 * free first), else a layer split proportional to free memory, else the
 * largest -ngl that fits, else the largest context (multiple of 256, at
 * least 256) that fits fully offloaded... in that order. p's own context
 * parameters are kept except where the plan changes them. Returns GW_OK or
 * an error from gw_est_estimate. */
int gw_est_plan_fit(const gw_est_model *m, const gw_est_params *p, gw_est_plan *plan,
                    gw_error *err);

/* ------------------------------------------------ building blocks (tests) */

/* KV cache bytes of m under p as llama.cpp allocates them (all on one
 * buffer); fills k and v (either may be NULL). */
int gw__est_kv_bytes(const gw_est_model *m, const gw_est_params *p, const gw_est_result *ctx,
                     uint64_t *k, uint64_t *v, gw_error *err);

/* Compute-buffer bytes of the worst-case graph per backend: out[0..n_dev-1]
 * the GPUs of ctx (layer placement ctx->layer_device), out[n_dev] the host.
 * Backends are assigned as ggml_backend_sched does (weights' device, op
 * offload of host weights to GPU 0 at batch >= 32, expansion), with copies
 * of sources from other backends and, for pipeline parallelism, 4 copies of
 * every graph input. */
int gw__est_compute_bytes(const gw_est_model *m, const gw_est_result *ctx,
                          const gw_est_params *p, gw_error *err, uint64_t *out);

/* Recurrent-state bytes of layer il under p (llama_memory_recurrent): r =
 * F32 [n_embd_r, max(1, n_seq)], s = F32 [n_embd_s, max(1, n_seq)], each
 * padded to the buffer alignment (CUDA 128, CPU 32); both 0 for a layer
 * without a recurrent state. False on overflow. */
bool gw__est_state_bytes(const gw_est_model *m, uint32_t n_seq, uint32_t il, bool cuda, uint64_t *r,
                         uint64_t *s);

/* CUDA's allocation size of a weight tensor: nbytes plus, for quantized
 * types with ne0 % 512 != 0, row_bytes(type, 512 - ne0 % 512) (llama.cpp's
 * MATRIX_ROW_PADDING). */
uint64_t gw__est_cuda_tensor_size(const gw_ggml_type_info *t, const uint64_t ne[4], uint64_t nbytes);

/* Layer placement: for n_layer layers plus the output layer and ngl
 * offloaded layers over n_dev devices with cumulative split fractions
 * cum[n_dev] (cum[n_dev-1] == 1), fills dev[il] (il = 0..n_layer, n_layer
 * being the output layer) with a device index or UINT32_MAX for the host:
 * i_gpu_start = max(n_layer + 1 - ngl, 0), layer il is on a GPU when
 * i_gpu_start <= il, device = upper_bound(cum, (il - i_gpu_start) / act). */
void gw__est_place_layers(uint32_t n_layer, int32_t ngl, uint32_t n_dev, const double *cum,
                          uint32_t *dev);

/* ------------------------------------------- vision projector (mmproj) */

/* Projector graphs with exact rules (clip.projector_type); anything else is
 * GW_EST_PROJ_OTHER, estimated as a plain ViT and flagged approximate. */
typedef enum gw_est_proj {
    GW_EST_PROJ_OTHER = 0,
    GW_EST_PROJ_MLP,      /* "mlp": llava 1.5 style (CLIP ViT + 2-layer MLP) */
    GW_EST_PROJ_GEMMA3,   /* "gemma3": SigLIP + 4x4 average pool */
    GW_EST_PROJ_IDEFICS3, /* "idefics3": SigLIP + pixel shuffle (SmolVLM) */
    GW_EST_PROJ_QWEN2VL,  /* "qwen2vl_merger" */
    GW_EST_PROJ_QWEN25VL, /* "qwen2.5vl_merger": window attention */
    GW_EST_PROJ_PIXTRAL,  /* "pixtral": 2D RoPE ViT (+ Mistral Small 3.1 patch merger) */
} gw_est_proj;

/* The projector tensors whose shapes the graph needs (block 0 stands for
 * every block). */
typedef enum gw_est_mm_slot {
    GW_EST_MM_PATCH = 0, GW_EST_MM_PATCH_1, GW_EST_MM_PATCH_B, GW_EST_MM_CLASS, GW_EST_MM_POS,
    GW_EST_MM_PRE_LN, GW_EST_MM_PRE_LN_B, GW_EST_MM_POST_LN, GW_EST_MM_POST_LN_B,
    GW_EST_MM_QKV, GW_EST_MM_QKV_B, GW_EST_MM_Q, GW_EST_MM_Q_B, GW_EST_MM_K, GW_EST_MM_K_B,
    GW_EST_MM_V, GW_EST_MM_V_B, GW_EST_MM_O, GW_EST_MM_O_B, GW_EST_MM_Q_NORM, GW_EST_MM_K_NORM,
    GW_EST_MM_LN1, GW_EST_MM_LN1_B, GW_EST_MM_LN2, GW_EST_MM_LN2_B, GW_EST_MM_UP, GW_EST_MM_UP_B,
    GW_EST_MM_GATE, GW_EST_MM_GATE_B, GW_EST_MM_DOWN, GW_EST_MM_DOWN_B, GW_EST_MM_LS1,
    GW_EST_MM_LS2, GW_EST_MM_ATTN_POST_NORM, GW_EST_MM_FFN_POST_NORM, GW_EST_MM_MOE,
    GW_EST_MM_0, GW_EST_MM_0_B, GW_EST_MM_1, GW_EST_MM_1_B, GW_EST_MM_2, GW_EST_MM_2_B,
    GW_EST_MM_3, GW_EST_MM_INP_PROJ, GW_EST_MM_SOFT_EMB_NORM, GW_EST_MM_FC, GW_EST_MM_PATCH_MERGER,
    GW_EST_MM_INP_NORM, GW_EST_MM_IMG_BREAK,
    GW_EST_MM_SLOTS /* count, not a slot */
} gw_est_mm_slot;

typedef struct gw_est_mm_tensor {
    bool present;
    uint32_t type; /* ggml type id */
    int64_t ne[4];
} gw_est_mm_tensor;

/* What the estimator knows of a projector GGUF (llama.cpp's clip.* keys). */
typedef struct gw_est_mmproj {
    char projector[40];  /* clip.projector_type as written */
    gw_est_proj kind;
    bool vision;         /* clip.has_vision_encoder; false: audio only (no compute estimate) */
    bool approximate;    /* no exact graph: kind OTHER, or a variant of a known kind */
    uint32_t image_size, patch_size, n_embd, n_head, n_head_kv, head_dim, n_ff, n_layer;
    uint32_t projection_dim, n_merge, n_wa_pattern, n_feature_layers;
    uint32_t warmup_size; /* side in pixels of the square warm-up image clip.cpp reserves for */
    uint64_t weight_bytes; /* all tensor bytes */
    gw_est_mm_tensor t[GW_EST_MM_SLOTS];
} gw_est_mmproj;

/* Reads a projector GGUF into *out (caller-allocated; nothing is borrowed
 * from g). Errors: GW_EPARSE for a file that is not a projector or lacks a
 * key or tensor llama.cpp requires (the message names it); *out is zeroed
 * then. */
int gw_est_mmproj_read(const gw_gguf *g, gw_est_mmproj *out, gw_error *err);

/* The projector's compute buffer as clip.cpp reserves it at warm-up:
 * out[0] on the GPU (when gpu; 0 otherwise), out[1] on the host. cuda
 * selects CUDA's 128-byte alignment for the GPU buffer. Returns GW_OK,
 * GW_ENOMEM or GW_ERANGE. An audio-only projector yields 0 and 0. */
int gw_est_mmproj_compute(const gw_est_mmproj *mp, bool flash_attn, bool gpu, bool cuda,
                                 uint64_t out[2], gw_error *err);

#endif /* GW_ESTIMATE_H */
