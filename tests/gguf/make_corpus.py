#!/usr/bin/env python3
"""make_corpus.py -- (re)writes the GGUF seed corpus in tests/gguf/corpus/.

The corpus seeds the fuzzer (scripts/fuzz-gguf.sh) and is replayed through
the reader by the test suite (fuzz/replay.c). Files named ok_* are valid;
bad_* each break one rule (tests/gguf/test_gguf.c names the expected fault
of each). Every file is small and written in full (no sparse holes), so the
replay reads real bytes.

    make_corpus.py [DIR]          write the corpus into DIR (default: corpus/)
    make_corpus.py --check DIR    exit 1 if DIR differs from what would be written
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402


def tiny_vocab(w, n=8):
    w.add("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>"] + ["t%d" % i for i in range(n - 3)],
                gw.STRING)
    w.add_array("tokenizer.ggml.scores", [float(-i) for i in range(n)], gw.F32)
    w.add_array("tokenizer.ggml.token_type", [2, 3, 3] + [1] * (n - 3), gw.I32)
    w.add("tokenizer.ggml.bos_token_id", 1, gw.U32)


def tiny_llama(version=3, arch="llama", alignment=32):
    w = gw.GGUFWriter(alignment=alignment, version=version)
    w.add("general.architecture", arch)
    w.add("general.name", "tiny")
    if alignment != 32:
        w.add("general.alignment", alignment, gw.U32)
    for k, v in (("context_length", 128), ("embedding_length", 32), ("block_count", 1),
                 ("feed_forward_length", 64), ("attention.head_count", 4),
                 ("attention.head_count_kv", 2)):
        w.add("%s.%s" % (arch, k), v, gw.U32)
    w.add(arch + ".attention.layer_norm_rms_epsilon", 1e-5, gw.F32)
    w.add(arch + ".rope.freq_base", 10000.0, gw.F32)
    tiny_vocab(w)
    w.add_tensor("token_embd.weight", [32, 8], "q8_0")
    w.add_tensor("blk.0.attn_norm.weight", [32], "f32")
    w.add_tensor("blk.0.attn_q.weight", [32, 32], "f16")
    w.add_tensor("blk.0.attn_k.weight", [32, 16], "f16")
    w.add_tensor("blk.0.attn_v.weight", [32, 16], "f16")
    w.add_tensor("blk.0.attn_output.weight", [32, 32], "q4_0")
    w.add_tensor("blk.0.ffn_norm.weight", [32], "f32")
    w.add_tensor("blk.0.ffn_gate.weight", [32, 64], "q8_0")
    w.add_tensor("blk.0.ffn_down.weight", [64, 32], "q8_0")
    w.add_tensor("blk.0.ffn_up.weight", [32, 64], "q8_0")
    w.add_tensor("output_norm.weight", [32], "f32")
    return w


# Per-architecture metadata headers (the keys llama.cpp reads), one tensor each.
ARCH_KEYS = {
    "qwen2": {"context_length": 32768, "embedding_length": 64, "block_count": 2,
              "feed_forward_length": 128, "attention.head_count": 4, "attention.head_count_kv": 2},
    "qwen3": {"context_length": 40960, "embedding_length": 64, "block_count": 2,
              "feed_forward_length": 128, "attention.head_count": 4, "attention.head_count_kv": 2,
              "attention.key_length": 32, "attention.value_length": 32},
    "qwen3moe": {"context_length": 40960, "embedding_length": 64, "block_count": 2,
                 "feed_forward_length": 128, "expert_feed_forward_length": 32,
                 "expert_count": 8, "expert_used_count": 2, "attention.head_count": 4,
                 "attention.head_count_kv": 2},
    "gemma2": {"context_length": 8192, "embedding_length": 64, "block_count": 2,
               "feed_forward_length": 128, "attention.head_count": 4,
               "attention.head_count_kv": 2, "attention.sliding_window": 4096},
    "gemma3": {"context_length": 131072, "embedding_length": 64, "block_count": 2,
               "feed_forward_length": 128, "attention.head_count": 4,
               "attention.head_count_kv": 1, "attention.sliding_window": 1024},
    "phi3": {"context_length": 4096, "embedding_length": 64, "block_count": 2,
             "feed_forward_length": 128, "attention.head_count": 4, "attention.head_count_kv": 4},
    "command-r": {"context_length": 131072, "embedding_length": 64, "block_count": 2,
                  "feed_forward_length": 128, "attention.head_count": 4,
                  "attention.head_count_kv": 4},
    "deepseek2": {"context_length": 163840, "embedding_length": 64, "block_count": 2,
                  "feed_forward_length": 128, "attention.head_count": 4,
                  "attention.head_count_kv": 4, "attention.q_lora_rank": 32,
                  "attention.kv_lora_rank": 16, "attention.key_length": 24,
                  "attention.value_length": 16, "expert_count": 8, "expert_used_count": 2,
                  "expert_shared_count": 1, "leading_dense_block_count": 1},
    "gpt-oss": {"context_length": 131072, "embedding_length": 64, "block_count": 2,
                "feed_forward_length": 128, "expert_count": 4, "expert_used_count": 2,
                "attention.head_count": 4, "attention.head_count_kv": 2,
                "attention.sliding_window": 128},
}


def arch_header(arch):
    w = gw.GGUFWriter()
    w.add("general.architecture", arch)
    for k, v in ARCH_KEYS[arch].items():
        w.add("%s.%s" % (arch, k), v, gw.U32)
    w.add(arch + ".attention.layer_norm_rms_epsilon", 1e-6, gw.F32)
    if arch == "gemma2":
        w.add_array(arch + ".attention.sliding_window_pattern", [True, False], gw.BOOL)
    if arch == "gemma3":
        w.add(arch + ".rope.scaling.factor", 8.0, gw.F32)
    tiny_vocab(w)
    w.add_tensor("token_embd.weight", [64, 8], "f16")
    return w


def all_value_types():
    w = gw.GGUFWriter()
    vals = {gw.U8: 200, gw.I8: -100, gw.U16: 60000, gw.I16: -30000, gw.U32: 4000000000,
            gw.I32: -2000000000, gw.F32: 1.5, gw.BOOL: True, gw.STRING: "h\u00e9llo",
            gw.U64: 1 << 40, gw.I64: -(1 << 40), gw.F64: 2.25}
    for t, v in vals.items():
        w.add("v.%d" % t, v, t)
        w.add_array("a.%d" % t, [v, v], t)
        w.add_array("e.%d" % t, [], t)
    return w


def every_ggml_type():
    w = gw.GGUFWriter()
    for name in sorted(gw.GGML_TYPES, key=lambda n: gw.GGML_TYPES[n][0]):
        w.add_tensor("t." + name, [256, 1], name)
    return w


def raw_kv(key, vtype, payload):
    return gw._str(key) + struct.pack("<I", vtype) + payload


def corpus():
    """name -> bytes"""
    c = {}

    def full(w):
        head, m = w.header_bytes()
        return head + b"\0" * m["data_size"]

    c["ok_v3_llama.gguf"] = full(tiny_llama(3))
    c["ok_v2_llama.gguf"] = full(tiny_llama(2))
    c["ok_align64.gguf"] = full(tiny_llama(3, alignment=64))
    c["ok_align1.gguf"] = full(tiny_llama(3, alignment=1))
    for arch in ARCH_KEYS:
        c["ok_arch_%s.gguf" % arch] = full(arch_header(arch))
    c["ok_empty.gguf"] = full(gw.GGUFWriter())
    c["ok_value_types.gguf"] = full(all_value_types())
    c["ok_ggml_types.gguf"] = full(every_ggml_type())
    w = gw.GGUFWriter()  # reversed offsets, a zero-size tensor, a 4-D tensor
    w.add_tensor("b", [32, 2], "f32", offset=0)
    w.add_tensor("a", [32, 2], "f32", offset=256)
    w.add_tensor("z", [0, 4], "f32", offset=0)
    w.add_tensor("d4", [2, 2, 2, 2], "f32", offset=512)
    c["ok_unordered.gguf"] = full(w)

    # --- malformed: one rule broken each (see test_gguf.c for the faults)
    c["bad_magic.gguf"] = b"GGML" + c["ok_v3_llama.gguf"][4:]
    c["bad_legacy_ggjt.gguf"] = b"tjgg" + c["ok_v3_llama.gguf"][4:]
    c["bad_v1.gguf"] = full(tiny_llama(1))
    c["bad_byteswapped.gguf"] = b"GGUF" + struct.pack(">IQQ", 3, 0, 0)
    c["bad_v4.gguf"] = full(tiny_llama(4))
    c["bad_truncated.gguf"] = c["ok_v3_llama.gguf"][:200]
    w = gw.GGUFWriter()
    w.add_raw(gw._str("big") + struct.pack("<I", gw.STRING) + struct.pack("<Q", 1 << 40) + b"x")
    c["bad_string_length.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_raw(raw_kv("arr", gw.ARRAY, struct.pack("<IQ", gw.U64, (1 << 61) + 1)))
    c["bad_array_overflow.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_raw(raw_kv("strs", gw.ARRAY, struct.pack("<IQ", gw.STRING, 3) + gw._str("ok") +
                     struct.pack("<Q", 1 << 62) + b"\0" * 16))
    c["bad_string_array_elem.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_raw(raw_kv("nest", gw.ARRAY, struct.pack("<IQ", gw.ARRAY, 1)))
    c["bad_nested_array.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_raw(raw_kv("t", 13, b"\0" * 8))
    c["bad_value_type.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add("k", 1, gw.U32)
    w.add("k", 2, gw.U32)
    c["bad_duplicate_key.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [32, 1, 1, 1, 1], "f32")
    c["bad_n_dims5.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [32], "f32")
    w.add_tensor("x", [32], "f32")
    c["bad_duplicate_tensor.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("n" * 64, [32], "f32")
    c["bad_tensor_name.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [32], 4)
    c["bad_type_removed4.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [32], 99)
    c["bad_type_unknown99.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [100], "f32")
    w.add_tensor("y", [32], "f32", offset=420)
    c["bad_misaligned.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [32], "f32", offset=1 << 20)
    c["bad_past_end.gguf"] = w.header_bytes()[0] + b"\0" * 64
    w = gw.GGUFWriter()
    w.add_tensor("x", [64], "f32", offset=0)
    w.add_tensor("y", [64], "f32", offset=128)
    c["bad_overlap.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add_tensor("x", [33], 2)  # Q4_0 rows hold multiples of 32
    c["bad_shape_block.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add("general.alignment", 48, gw.U32)
    c["bad_alignment_48.gguf"] = full(w)
    w = gw.GGUFWriter()
    w.add("general.alignment", 32, gw.U64)
    c["bad_alignment_type.gguf"] = full(w)
    c["bad_count.gguf"] = b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0)
    return c


def main(argv):
    check = len(argv) > 1 and argv[1] == "--check"
    args = argv[2:] if check else argv[1:]
    out = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    c = corpus()
    if check:
        bad = [n for n, b in c.items()
               if not os.path.exists(os.path.join(out, n)) or open(os.path.join(out, n), "rb").read() != b]
        if bad:
            print("corpus out of date (run tests/gguf/make_corpus.py): %s" % ", ".join(bad))
            return 1
        print("corpus: %d files up to date" % len(c))
        return 0
    os.makedirs(out, exist_ok=True)
    for n, b in c.items():
        with open(os.path.join(out, n), "wb") as f:
            f.write(b)
    print("corpus: wrote %d files to %s" % (len(c), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
