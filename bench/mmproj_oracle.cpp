// mmproj_oracle.cpp — prints the compute buffer llama.cpp's CLIP (libmtmd)
// reserves for a projector GGUF, to compare with `gpuwatch fit --mmproj`.
//
// Owns nothing beyond one run: loads FILE with clip_init (CPU backend,
// no_alloc, warm-up on) and prints "compute BYTES" = the clip context's
// memory usage minus the projector's tensor bytes, per device.
// Invariants: 1. read-only on FILE; 2. exit status 0 only when a vision
// context was created; 3. not part of the test suite (bench/mmproj_oracle.sh
// builds it against a local llama.cpp build).
// Usage: mmproj_oracle FILE on|off
#include "clip.h"
#include "gguf.h"

#include <cstdio>
#include <cstring>

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MMPROJ.gguf on|off\n", argv[0]);
        return 2;
    }
    gguf_init_params gp = {/*no_alloc*/ true, /*ctx*/ nullptr};
    gguf_context *g = gguf_init_from_file(argv[1], gp);
    if (!g) {
        std::fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    size_t weights = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++)
        weights += gguf_get_tensor_size(g, i);
    gguf_free(g);

    clip_context_params p = {};
    p.use_gpu = false;
    p.device = nullptr;
    p.flash_attn_type = std::strcmp(argv[2], "on") == 0 ? CLIP_FLASH_ATTN_TYPE_ENABLED
                                                        : CLIP_FLASH_ATTN_TYPE_DISABLED;
    p.image_min_tokens = -1;
    p.image_max_tokens = -1;
    p.warmup = true;
    p.no_alloc = true;
    clip_init_result r = clip_init(argv[1], p);
    if (!r.ctx_v) {
        std::fprintf(stderr, "no vision context for %s\n", argv[1]);
        return 1;
    }
    size_t total = 0;
    for (auto &kv : clip_get_mem_usage(r.ctx_v))
        total += kv.second;
    std::printf("weights %zu\ncompute %zu\n", weights, total - weights);
    clip_free(r.ctx_v);
    if (r.ctx_a)
        clip_free(r.ctx_a);
    return 0;
}
