#!/usr/bin/env python3
"""mmproj_writer.py — writes vision projector GGUF files (llama.cpp's mtmd
"mmproj") of chosen shapes for the estimator's tests and bench/mmproj_oracle.sh.

Owns: the clip.* keys and v.* / mm.* tensors llama.cpp's clip.cpp needs to
load each projector type written here (mlp, gemma3, idefics3, qwen2vl_merger,
qwen2.5vl_merger, pixtral), with a sparse data section (model_writer.Writer).

Invariants: every file written here loads in llama.cpp's clip_init (checked
by bench/mmproj_oracle.sh); tensor shapes are ggml's ne order (ne0 first);
PRESETS are the shapes of real projectors people download.

Usage:
    python3 mmproj_writer.py OUT.gguf PRESET ['{"n_layer": 2, ...}']
"""
import json
import sys

from model_writer import GGUF_ARRAY, GGUF_BOOL, GGUF_F32, GGUF_STRING, GGUF_U32, Writer

PRESETS = {
    # google/gemma-3-4b-it mmproj: SigLIP-so400m 896/14, 4x4 pool, text 2560
    "gemma3": {"projector": "gemma3", "image_size": 896, "patch_size": 14, "n_embd": 1152,
               "n_head": 16, "n_ff": 4304, "n_layer": 27, "n_text": 2560, "act": "gelu"},
    # SmolVLM-256M: SigLIP 512/16, pixel shuffle 4, text 576
    "idefics3": {"projector": "idefics3", "image_size": 512, "patch_size": 16, "n_embd": 768,
                 "n_head": 12, "n_ff": 3072, "n_layer": 12, "n_text": 576, "merge": 4,
                 "act": "gelu"},
    # llava-1.5-7b: CLIP ViT-L/14 336, 23 blocks kept, MLP to 4096
    "mlp": {"projector": "mlp", "image_size": 336, "patch_size": 14, "n_embd": 1024,
            "n_head": 16, "n_ff": 4096, "n_layer": 23, "n_text": 4096, "act": "gelu"},
    # Qwen2-VL-2B: 32 blocks, merger to 1536
    "qwen2vl": {"projector": "qwen2vl_merger", "image_size": 560, "patch_size": 14,
                "n_embd": 1280, "n_head": 16, "n_ff": 5120, "n_layer": 32, "n_text": 1536,
                "act": "gelu_quick"},
    # Qwen2.5-VL-7B: RMS norms, SwiGLU, window attention every 8th full
    "qwen25vl": {"projector": "qwen2.5vl_merger", "image_size": 560, "patch_size": 14,
                 "n_embd": 1280, "n_head": 16, "n_ff": 3420, "n_layer": 32, "n_text": 3584,
                 "wa_pattern": 8, "act": "silu"},
    # Mistral-Small-3.1-24B: pixtral ViT 1540/14, 2x2 patch merger, text 5120
    "pixtral": {"projector": "pixtral", "image_size": 1540, "patch_size": 14, "n_embd": 1024,
                "n_head": 16, "n_ff": 4096, "n_layer": 24, "n_text": 5120, "merge": 2,
                "act": "silu"},
}


def _layers(w, d, rms, bias, gate):
    E, F = d["n_embd"], d["n_ff"]
    for i in range(d["n_layer"]):
        p = f"v.blk.{i}."
        for n in ("ln1", "ln2"):
            w.tensor(p + n + ".weight", [E], "F32")
            if not rms:
                w.tensor(p + n + ".bias", [E], "F32")
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.tensor(p + n + ".weight", [E, E], d.get("wtype", "F16"))
            if bias:
                w.tensor(p + n + ".bias", [E], "F32")
        ffn = [("ffn_up", E, F), ("ffn_down", F, E)] + ([("ffn_gate", E, F)] if gate else [])
        for n, a, b in ffn:
            w.tensor(p + n + ".weight", [a, b], d.get("wtype", "F16"))
            if bias:
                w.tensor(p + n + ".bias", [b], "F32")


def build(d):
    """Writer for spec d (a preset, possibly with keys overridden)."""
    kind = d["projector"]
    E, T, ps = d["n_embd"], d["n_text"], d["patch_size"]
    w = Writer()
    w.add("general.architecture", GGUF_STRING, "clip")
    w.add("clip.has_vision_encoder", GGUF_BOOL, True)
    w.add("clip.projector_type", GGUF_STRING, kind)
    for key, val in (("image_size", d["image_size"]), ("patch_size", ps),
                     ("embedding_length", E), ("feed_forward_length", d["n_ff"]),
                     ("block_count", d["n_layer"]), ("projection_dim", T),
                     ("attention.head_count", d["n_head"])):
        w.add("clip.vision." + key, GGUF_U32, val)
    w.add("clip.vision.attention.layer_norm_epsilon", GGUF_F32, 1e-6)
    w.add("clip.vision.image_mean", GGUF_ARRAY, (GGUF_F32, [0.5, 0.5, 0.5]))
    w.add("clip.vision.image_std", GGUF_ARRAY, (GGUF_F32, [0.5, 0.5, 0.5]))
    if d.get("act") == "gelu":
        w.add("clip.use_gelu", GGUF_BOOL, True)
    if d.get("act") == "silu":
        w.add("clip.use_silu", GGUF_BOOL, True)
    n_side = d["image_size"] // ps
    w.tensor("v.patch_embd.weight", [ps, ps, 3, E], "F16")
    rms = kind in ("qwen2.5vl_merger", "pixtral")
    bias = kind != "pixtral"
    gate = kind in ("qwen2.5vl_merger", "pixtral")
    if kind in ("gemma3", "idefics3", "mlp"):
        w.tensor("v.patch_embd.bias", [E], "F32")
        n_pos = n_side * n_side + (1 if kind == "mlp" else 0)
        w.tensor("v.position_embd.weight", [E, n_pos], "F32")
    if kind == "mlp":
        w.tensor("v.class_embd", [E], "F32")
        w.tensor("v.pre_ln.weight", [E], "F32")
        w.tensor("v.pre_ln.bias", [E], "F32")
        w.tensor("mm.0.weight", [E, T], "F16")
        w.tensor("mm.0.bias", [T], "F32")
        w.tensor("mm.2.weight", [T, T], "F16")
        w.tensor("mm.2.bias", [T], "F32")
    if kind in ("gemma3", "idefics3", "qwen2vl_merger", "qwen2.5vl_merger"):
        w.tensor("v.post_ln.weight", [E], "F32")
        if not rms:
            w.tensor("v.post_ln.bias", [E], "F32")
    if kind == "gemma3":
        w.tensor("mm.input_projection.weight", [T, E], "F16")
        w.tensor("mm.soft_emb_norm.weight", [E], "F32")
    if kind == "idefics3":
        m = d["merge"]
        w.add("clip.vision.projector.scale_factor", GGUF_U32, m)
        w.tensor("mm.model.fc.weight", [E * m * m, T], "F16")
    if kind in ("qwen2vl_merger", "qwen2.5vl_merger"):
        w.tensor("v.patch_embd.weight.1", [ps, ps, 3, E], "F16")
        w.tensor("mm.0.weight", [4 * E, 4 * E], "F16")
        w.tensor("mm.0.bias", [4 * E], "F32")
        w.tensor("mm.2.weight", [4 * E, T], "F16")
        w.tensor("mm.2.bias", [T], "F32")
        if "wa_pattern" in d:
            w.add("clip.vision.n_wa_pattern", GGUF_U32, d["wa_pattern"])
    if kind == "pixtral":
        m = d.get("merge", 1)
        w.tensor("v.pre_ln.weight", [E], "F32")
        if m > 1:
            w.add("clip.vision.spatial_merge_size", GGUF_U32, m)
            w.tensor("mm.input_norm.weight", [E], "F32")
            w.tensor("mm.patch_merger.weight", [E * m * m, E], "F16")
        w.tensor("mm.1.weight", [E, T], "F16")
        w.tensor("mm.1.bias", [T], "F32")
        w.tensor("mm.2.weight", [T, T], "F16")
        w.tensor("mm.2.bias", [T], "F32")
        w.tensor("v.token_embd.img_break", [T], "F32")
    _layers(w, d, rms, bias, gate)
    return w


def write_mmproj(path, preset, **overrides):
    d = dict(PRESETS[preset])
    d.update(overrides)
    return build(d).write(path)


def main(argv):
    if len(argv) not in (3, 4) or argv[2] not in PRESETS:
        sys.stderr.write(__doc__ + "presets: " + ", ".join(PRESETS) + "\n")
        return 2
    over = json.loads(argv[3]) if len(argv) == 4 else {}
    print(write_mmproj(argv[1], argv[2], **over))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
