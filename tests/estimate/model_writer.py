#!/usr/bin/env python3
"""model_writer.py — writes structurally valid GGUF models of chosen shapes for
the estimator's tests and benchmark.

Owns: the tensor layout of each architecture the estimator knows (names and
shapes as llama.cpp's loader expects them), the metadata llama.cpp needs to
load such a file, and a sparse data section (the tensor data is a hole made by
truncate(), so a 70B-shaped file costs a few MB of disk).

Invariants: every file written here loads in llama.cpp (node-llama-cpp) with
no_alloc; tensor offsets are the running sum of PAD(nbytes, alignment); the
vocabulary is a "none" tokenizer with <arch>.vocab_size dummy tokens, which
llama.cpp accepts and which costs no header space.

Usage:
    python3 model_writer.py OUT.gguf '{"arch": "llama", "n_layer": 4, ...}'
    python3 model_writer.py --preset llama-70b OUT.gguf
Every shape key has a default (see DEFAULTS); "wtype" is the ggml type of
the weight matrices ("F16", "Q8_0", "Q4_0", "Q4_K", ...).
"""
import json
import os
import struct
import sys

# ggml type id -> (name, block elements, block bytes)
GGML_TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84),
    "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210), "IQ4_NL": (20, 32, 18), "IQ4_XS": (23, 256, 136),
    "BF16": (30, 1, 2), "MXFP4": (39, 32, 17),
}

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_U64 = 4, 5, 6, 7, 8, 9, 10

DEFAULTS = {
    "arch": "llama",
    "n_layer": 4,
    "n_embd": 512,
    "n_head": 8,
    "n_head_kv": 4,        # int, or a list with one entry per layer
    "head_dim": None,      # None: n_embd / n_head
    "n_ff": 1024,
    "n_vocab": 32000,
    "n_ctx_train": 8192,
    "wtype": "F16",
    "embd_type": None,     # token_embd type; None: wtype
    "out_type": None,      # output.weight type; None: wtype
    "tied": False,         # no output.weight: llama.cpp duplicates token_embd
    "n_expert": 0,
    "n_expert_used": 0,
    "n_ff_exp": None,      # expert FFN width; None: n_ff
    "n_swa": 0,            # sliding window (gemma2/3, gpt-oss)
    "swa_pattern": None,   # every n-th layer is dense (gemma3: 6, gemma2: 2)
    # deepseek2 (MLA)
    "q_lora_rank": 0,
    "kv_lora_rank": 512,
    "rope_dim": 64,
    "head_k_mla": 192,
    "head_v_mla": 128,
    "n_expert_shared": 1,
    "n_dense_lead": 1,
    # recurrent state (mamba2, granitehybrid, qwen3next): <arch>.ssm.*
    "ssm_d_conv": 4,
    "ssm_d_inner": 0,      # 0: 2 * n_embd
    "ssm_d_state": 128,
    "ssm_n_group": 1,
    "ssm_dt_rank": 0,      # mamba2: number of SSM heads; 0: ssm_d_inner / 64
    "shortconv_l_cache": 3,  # lfm2
    "full_attention_interval": 4,  # qwen3next: every n-th layer is attention
    "n_ff_shexp": 0,       # qwen3next shared expert width; 0: n_ff_exp
    "ssm_in_legacy": False,  # qwen3next: one ssm_in (q|k|v|z) instead of attn_qkv + attn_gate
    "alignment": 32,
    "tensor_types": {},    # base name ("attn_q", "ffn_down", "output") -> ggml type
}

PRESETS = {
    "llama-70b": {"arch": "llama", "n_layer": 80, "n_embd": 8192, "n_head": 64, "n_head_kv": 8,
                  "n_ff": 28672, "n_vocab": 128256, "wtype": "Q4_K", "n_ctx_train": 131072},
    "qwen3moe-30b": {"arch": "qwen3moe", "n_layer": 48, "n_embd": 2048, "n_head": 32, "n_head_kv": 4,
                     "head_dim": 128, "n_ff": 6144, "n_ff_exp": 768, "n_expert": 128, "n_expert_used": 8,
                     "n_vocab": 151936, "wtype": "Q4_K", "n_ctx_train": 40960},
}


class Writer:

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def __init__(self, overrides=None):
        self.kv = []
        self.tensors = []
        self.overrides = overrides or {}

    def tensor(self, name, ne, tname):
        # "tensor_types" of the spec: a type per base name ("ffn_down") for
        # the matrices, to mix quantizations as real files do
        base = name[:-len(".weight")] if name.endswith(".weight") else None
        if base and base.startswith("blk."):
            base = base.split(".", 2)[2]
        if base in self.overrides and len(ne) >= 2:
            tname = self.overrides[base]
        self.tensors.append((name, list(ne), tname))

    @staticmethod
    def _str(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value):
        if vtype == GGUF_U32:
            return struct.pack("<I", value)
        if vtype == GGUF_I32:
            return struct.pack("<i", value)
        if vtype == GGUF_U64:
            return struct.pack("<Q", value)
        if vtype == GGUF_F32:
            return struct.pack("<f", value)
        if vtype == GGUF_BOOL:
            return struct.pack("<B", 1 if value else 0)
        if vtype == GGUF_STRING:
            return self._str(value)
        if vtype == GGUF_ARRAY:
            etype, items = value
            out = struct.pack("<IQ", etype, len(items))
            return out + b"".join(self._value(etype, v) for v in items)
        raise ValueError(vtype)

    def write(self, path, alignment=32, header_only=False):
        """Writes the file (data section sparse) and returns its size;
        header_only: stop at the data section (the fuzz corpus' seeds)."""
        head = bytearray(b"GGUF")
        head += struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value in self.kv:
            head += self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value)
        offset = 0
        for name, ne, tname in self.tensors:
            tid, be, bb = GGML_TYPES[tname]
            if ne[0] % be:
                raise ValueError(f"{name}: ne0 {ne[0]} not a multiple of {tname} block {be}")
            n = ne[0] // be * bb
            for d in ne[1:]:
                n *= d
            head += self._str(name) + struct.pack("<I", len(ne))
            head += b"".join(struct.pack("<Q", d) for d in ne)
            head += struct.pack("<IQ", tid, offset)
            offset += (n + alignment - 1) // alignment * alignment
        pad = (-len(head)) % alignment
        head += b"\0" * pad
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(len(head) + (0 if header_only else offset))
        return len(head) + (0 if header_only else offset)


def _spec(d):
    s = dict(DEFAULTS)
    unknown = set(d) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown shape keys: {sorted(unknown)}")
    s.update(d)
    if s["head_dim"] is None:
        s["head_dim"] = s["n_embd"] // s["n_head"]
    for k in ("embd_type", "out_type"):
        if s[k] is None:
            s[k] = s["wtype"]
    if s["n_ff_exp"] is None:
        s["n_ff_exp"] = s["n_ff"]
    if not s["ssm_d_inner"]:
        s["ssm_d_inner"] = 2 * s["n_embd"]
    if not s["ssm_dt_rank"]:
        s["ssm_dt_rank"] = s["ssm_d_inner"] // 64
    return s


def build(d):
    """Returns a Writer holding the metadata and tensor table of spec d."""
    s = _spec(d)
    a = s["arch"]
    w = Writer()
    L, E, H, V = s["n_layer"], s["n_embd"], s["n_head"], s["n_vocab"]
    D = s["head_dim"]
    hkv = s["n_head_kv"]
    hkv_l = hkv if isinstance(hkv, list) else [hkv] * L
    wt, f32 = s["wtype"], "F32"
    w.overrides = s["tensor_types"]

    w.add("general.architecture", GGUF_STRING, a)
    w.add("general.name", GGUF_STRING, f"gpuwatch-test-{a}")
    if s["alignment"] != 32:
        w.add("general.alignment", GGUF_U32, s["alignment"])
    w.add(f"{a}.vocab_size", GGUF_U32, V)
    w.add(f"{a}.context_length", GGUF_U32, s["n_ctx_train"])
    w.add(f"{a}.embedding_length", GGUF_U32, E)
    w.add(f"{a}.block_count", GGUF_U32, L)
    w.add(f"{a}.feed_forward_length", GGUF_U32, s["n_ff"])
    if a in ("mamba2", "granitehybrid", "qwen3next"):
        w.add(f"{a}.ssm.conv_kernel", GGUF_U32, s["ssm_d_conv"])
        w.add(f"{a}.ssm.inner_size", GGUF_U32, s["ssm_d_inner"])
        w.add(f"{a}.ssm.state_size", GGUF_U32, s["ssm_d_state"])
        w.add(f"{a}.ssm.time_step_rank", GGUF_U32, s["ssm_dt_rank"])
        w.add(f"{a}.ssm.group_count", GGUF_U32, s["ssm_n_group"])
    if a == "lfm2":
        w.add(f"{a}.shortconv.l_cache", GGUF_U32, s["shortconv_l_cache"])
    if a == "qwen3next":
        w.add(f"{a}.full_attention_interval", GGUF_U32, s["full_attention_interval"])
        w.add(f"{a}.expert_shared_feed_forward_length", GGUF_U32, s["n_ff_shexp"] or s["n_ff_exp"])
    if a == "mamba2":  # attention-free: no head counts, no rope
        w.add(f"{a}.attention.layer_norm_rms_epsilon", GGUF_F32, 1e-5)
        w.add("tokenizer.ggml.model", GGUF_STRING, "none")
        return _mamba2(w, s)
    w.add(f"{a}.attention.head_count", GGUF_U32, H)
    if isinstance(hkv, list):
        w.add(f"{a}.attention.head_count_kv", GGUF_ARRAY, (GGUF_U32, hkv))
    else:
        w.add(f"{a}.attention.head_count_kv", GGUF_U32, hkv)
    if a == "command-r":
        w.add(f"{a}.attention.layer_norm_epsilon", GGUF_F32, 1e-5)
    else:
        w.add(f"{a}.attention.layer_norm_rms_epsilon", GGUF_F32, 1e-6)
    w.add(f"{a}.rope.freq_base", GGUF_F32, 10000.0)
    if a != "deepseek2":
        w.add(f"{a}.attention.key_length", GGUF_U32, D)
        w.add(f"{a}.attention.value_length", GGUF_U32, D)
        w.add(f"{a}.rope.dimension_count", GGUF_U32, D)
    if s["n_expert"]:
        w.add(f"{a}.expert_count", GGUF_U32, s["n_expert"])
        w.add(f"{a}.expert_used_count", GGUF_U32, s["n_expert_used"])
        if a in ("qwen3moe", "deepseek2", "gpt-oss", "qwen3next"):
            w.add(f"{a}.expert_feed_forward_length", GGUF_U32, s["n_ff_exp"])
    if s["n_swa"]:
        w.add(f"{a}.attention.sliding_window", GGUF_U32, s["n_swa"])
    w.add("tokenizer.ggml.model", GGUF_STRING, "none")

    w.tensor("token_embd.weight", [E, V], s["embd_type"])
    w.tensor("token_embd_norm.weight" if a == "lfm2" else "output_norm.weight", [E], f32)
    if not s["tied"] and a not in ("gemma2", "command-r"):
        w.tensor("output.weight", [E, V], s["out_type"])

    def qkv(i, nq, nk, nv, bias=False):
        w.tensor(f"blk.{i}.attn_q.weight", [E, nq], wt)
        w.tensor(f"blk.{i}.attn_k.weight", [E, nk], wt)
        w.tensor(f"blk.{i}.attn_v.weight", [E, nv], wt)
        if bias:
            w.tensor(f"blk.{i}.attn_q.bias", [nq], f32)
            w.tensor(f"blk.{i}.attn_k.bias", [nk], f32)
            w.tensor(f"blk.{i}.attn_v.bias", [nv], f32)

    def dense_ffn(i, ff):
        w.tensor(f"blk.{i}.ffn_gate.weight", [E, ff], wt)
        w.tensor(f"blk.{i}.ffn_down.weight", [ff, E], wt)
        w.tensor(f"blk.{i}.ffn_up.weight", [E, ff], wt)

    def moe_ffn(i, ff, X, bias=False):
        w.tensor(f"blk.{i}.ffn_gate_inp.weight", [E, X], f32)
        w.tensor(f"blk.{i}.ffn_gate_exps.weight", [E, ff, X], wt)
        w.tensor(f"blk.{i}.ffn_down_exps.weight", [ff, E, X], wt)
        w.tensor(f"blk.{i}.ffn_up_exps.weight", [E, ff, X], wt)
        if bias:
            w.tensor(f"blk.{i}.ffn_gate_inp.bias", [X], f32)
            w.tensor(f"blk.{i}.ffn_gate_exps.bias", [ff, X], f32)
            w.tensor(f"blk.{i}.ffn_down_exps.bias", [E, X], f32)
            w.tensor(f"blk.{i}.ffn_up_exps.bias", [ff, X], f32)

    if a in ("gemma2", "gemma3") and s["n_swa"] and s["swa_pattern"]:
        # gemma: every swa_pattern-th layer is dense (the loader's default pattern)
        pass

    for i in range(L):
        kv = hkv_l[i]
        w.tensor(f"blk.{i}.attn_norm.weight", [E], f32)
        if a in ("llama", "mistral", "qwen2", "qwen3", "qwen3moe", "gemma2", "gemma3", "command-r"):
            qkv(i, H * D, kv * D, kv * D, bias=(a == "qwen2"))
            w.tensor(f"blk.{i}.attn_output.weight", [H * D, E], wt)
            if a in ("qwen3", "qwen3moe", "gemma3"):
                w.tensor(f"blk.{i}.attn_k_norm.weight", [D], f32)
                w.tensor(f"blk.{i}.attn_q_norm.weight", [D], f32)
            if a == "command-r" and L >= 64:
                w.tensor(f"blk.{i}.attn_q_norm.weight", [D, H], f32)
                w.tensor(f"blk.{i}.attn_k_norm.weight", [D, kv], f32)
            if a in ("gemma2", "gemma3"):
                w.tensor(f"blk.{i}.post_attention_norm.weight", [E], f32)
                w.tensor(f"blk.{i}.post_ffw_norm.weight", [E], f32)
            if a != "command-r":
                w.tensor(f"blk.{i}.ffn_norm.weight", [E], f32)
            if a == "qwen3moe" or (a in ("llama", "mistral") and s["n_expert"]):
                moe_ffn(i, s["n_ff_exp"] if a == "qwen3moe" else s["n_ff"], s["n_expert"])
            else:
                dense_ffn(i, s["n_ff"])
        elif a == "phi3":
            w.tensor(f"blk.{i}.attn_qkv.weight", [E, H * D + 2 * kv * D], wt)
            w.tensor(f"blk.{i}.attn_output.weight", [E, E], wt)
            w.tensor(f"blk.{i}.ffn_norm.weight", [E], f32)
            w.tensor(f"blk.{i}.ffn_down.weight", [s["n_ff"], E], wt)
            w.tensor(f"blk.{i}.ffn_up.weight", [E, 2 * s["n_ff"]], wt)
        elif a == "gpt-oss":
            w.tensor(f"blk.{i}.post_attention_norm.weight", [E], f32)
            qkv(i, H * D, kv * D, kv * D, bias=True)
            w.tensor(f"blk.{i}.attn_output.weight", [H * D, E], wt)
            w.tensor(f"blk.{i}.attn_output.bias", [E], f32)
            w.tensor(f"blk.{i}.attn_sinks.weight", [H], f32)
            moe_ffn(i, s["n_ff_exp"], s["n_expert"], bias=True)
        elif a == "deepseek2":
            ql, kvl, rd = s["q_lora_rank"], s["kv_lora_rank"], s["rope_dim"]
            hk, hv = s["head_k_mla"], s["head_v_mla"]
            if ql:
                w.tensor(f"blk.{i}.attn_q_a_norm.weight", [ql], f32)
                w.tensor(f"blk.{i}.attn_q_a.weight", [E, ql], wt)
                w.tensor(f"blk.{i}.attn_q_b.weight", [ql, H * hk], wt)
            else:
                w.tensor(f"blk.{i}.attn_q.weight", [E, H * hk], wt)
            w.tensor(f"blk.{i}.attn_kv_a_norm.weight", [kvl], f32)
            w.tensor(f"blk.{i}.attn_kv_a_mqa.weight", [E, kvl + rd], wt)
            w.tensor(f"blk.{i}.attn_k_b.weight", [hk - rd, kvl, H], wt)
            w.tensor(f"blk.{i}.attn_v_b.weight", [kvl, hv, H], wt)
            w.tensor(f"blk.{i}.attn_output.weight", [H * hv, E], wt)
            w.tensor(f"blk.{i}.ffn_norm.weight", [E], f32)
            if i < s["n_dense_lead"]:
                dense_ffn(i, s["n_ff"])
            else:
                fe, sh = s["n_ff_exp"], s["n_expert_shared"]
                w.tensor(f"blk.{i}.ffn_gate_inp.weight", [E, s["n_expert"]], f32)
                w.tensor(f"blk.{i}.ffn_down_exps.weight", [fe, E, s["n_expert"]], wt)
                w.tensor(f"blk.{i}.ffn_gate_exps.weight", [E, fe, s["n_expert"]], wt)
                w.tensor(f"blk.{i}.ffn_up_exps.weight", [E, fe, s["n_expert"]], wt)
                w.tensor(f"blk.{i}.ffn_gate_shexp.weight", [E, fe * sh], wt)
                w.tensor(f"blk.{i}.ffn_down_shexp.weight", [fe * sh, E], wt)
                w.tensor(f"blk.{i}.ffn_up_shexp.weight", [E, fe * sh], wt)
        elif a == "granitehybrid":
            if kv == 0:
                _mamba2_mixer(w, s, i)
            else:
                qkv(i, H * D, kv * D, kv * D)
                w.tensor(f"blk.{i}.attn_output.weight", [H * D, E], wt)
            w.tensor(f"blk.{i}.ffn_norm.weight", [E], f32)
            dense_ffn(i, s["n_ff"])
        elif a == "qwen3next":
            _qwen3next_block(w, s, i)
        elif a == "lfm2":
            if kv == 0:
                w.tensor(f"blk.{i}.shortconv.conv.weight", [s["shortconv_l_cache"], E], f32)
                w.tensor(f"blk.{i}.shortconv.in_proj.weight", [E, 3 * E], wt)
                w.tensor(f"blk.{i}.shortconv.out_proj.weight", [E, E], wt)
            else:
                w.tensor(f"blk.{i}.attn_q_norm.weight", [D], f32)
                w.tensor(f"blk.{i}.attn_k_norm.weight", [D], f32)
                qkv(i, E, kv * D, kv * D)
                w.tensor(f"blk.{i}.attn_output.weight", [E, E], wt)
            w.tensor(f"blk.{i}.ffn_norm.weight", [E], f32)
            dense_ffn(i, s["n_ff"])
        else:
            raise ValueError(f"model_writer: no layout for architecture {a!r}")

    if a == "deepseek2":
        w.add(f"{a}.attention.kv_lora_rank", GGUF_U32, s["kv_lora_rank"])
        if s["q_lora_rank"]:
            w.add(f"{a}.attention.q_lora_rank", GGUF_U32, s["q_lora_rank"])
        w.add(f"{a}.attention.key_length", GGUF_U32, s["kv_lora_rank"] + s["rope_dim"])
        w.add(f"{a}.attention.value_length", GGUF_U32, s["kv_lora_rank"])
        w.add(f"{a}.attention.key_length_mla", GGUF_U32, s["head_k_mla"])
        w.add(f"{a}.attention.value_length_mla", GGUF_U32, s["head_v_mla"])
        w.add(f"{a}.rope.dimension_count", GGUF_U32, s["rope_dim"])
        w.add(f"{a}.leading_dense_block_count", GGUF_U32, s["n_dense_lead"])
        w.add(f"{a}.expert_shared_count", GGUF_U32, s["n_expert_shared"])
    return w, s


def _mamba2_mixer(w, s, i):
    """The Mamba-2 mixer of layer i (llama.cpp's mamba2 / granitehybrid
    tensors): in_proj to z, xBC, dt; depthwise conv over xBC; A, D, dt bias
    per head; grouped RMS norm; out_proj."""
    E, wt = s["n_embd"], s["wtype"]
    di, ds, ng, nh = s["ssm_d_inner"], s["ssm_d_state"], s["ssm_n_group"], s["ssm_dt_rank"]
    conv_dim = di + 2 * ng * ds
    w.tensor(f"blk.{i}.ssm_in.weight", [E, di + conv_dim + nh], wt)
    w.tensor(f"blk.{i}.ssm_conv1d.weight", [s["ssm_d_conv"], conv_dim], "F32")
    w.tensor(f"blk.{i}.ssm_conv1d.bias", [conv_dim], "F32")
    w.tensor(f"blk.{i}.ssm_dt.bias", [nh], "F32")
    w.tensor(f"blk.{i}.ssm_a", [1, nh], "F32")
    w.tensor(f"blk.{i}.ssm_d", [1, nh], "F32")
    w.tensor(f"blk.{i}.ssm_norm.weight", [di // ng, ng], "F32")
    w.tensor(f"blk.{i}.ssm_out.weight", [di, E], wt)


def _qwen3next_block(w, s, i):
    """One qwen3next block: gated attention every full_attention_interval-th
    layer, gated delta net otherwise; routed + shared-expert FFN."""
    E, wt, f32 = s["n_embd"], s["wtype"], "F32"
    H, kv, D = s["n_head"], s["n_head_kv"], s["head_dim"]
    hk, nkh, nvh, di = s["ssm_d_state"], s["ssm_n_group"], s["ssm_dt_rank"], s["ssm_d_inner"]
    w.tensor(f"blk.{i}.post_attention_norm.weight", [E], f32)
    if (i + 1) % s["full_attention_interval"] == 0:
        w.tensor(f"blk.{i}.attn_q.weight", [E, 2 * H * D], wt)
        w.tensor(f"blk.{i}.attn_k.weight", [E, kv * D], wt)
        w.tensor(f"blk.{i}.attn_v.weight", [E, kv * D], wt)
        w.tensor(f"blk.{i}.attn_output.weight", [H * D, E], wt)
        w.tensor(f"blk.{i}.attn_q_norm.weight", [D], f32)
        w.tensor(f"blk.{i}.attn_k_norm.weight", [D], f32)
    else:
        if s["ssm_in_legacy"]:
            w.tensor(f"blk.{i}.ssm_in.weight", [E, 2 * hk * nkh + 2 * di], wt)
        else:
            w.tensor(f"blk.{i}.attn_qkv.weight", [E, 2 * hk * nkh + di], wt)
            w.tensor(f"blk.{i}.attn_gate.weight", [E, di], wt)
        w.tensor(f"blk.{i}.ssm_conv1d.weight", [s["ssm_d_conv"], 2 * hk * nkh + di], f32)
        w.tensor(f"blk.{i}.ssm_dt.bias", [nvh], f32)
        w.tensor(f"blk.{i}.ssm_a", [nvh], f32)
        w.tensor(f"blk.{i}.ssm_ba.weight", [E, 2 * nvh], wt)
        w.tensor(f"blk.{i}.ssm_norm.weight", [di // nvh], f32)
        w.tensor(f"blk.{i}.ssm_out.weight", [di, E], wt)
    fe, X, sh = s["n_ff_exp"], s["n_expert"], s["n_ff_shexp"] or s["n_ff_exp"]
    w.tensor(f"blk.{i}.ffn_gate_inp.weight", [E, X], f32)
    w.tensor(f"blk.{i}.ffn_gate_exps.weight", [E, fe, X], wt)
    w.tensor(f"blk.{i}.ffn_down_exps.weight", [fe, E, X], wt)
    w.tensor(f"blk.{i}.ffn_up_exps.weight", [E, fe, X], wt)
    w.tensor(f"blk.{i}.ffn_gate_inp_shexp.weight", [E], f32)
    w.tensor(f"blk.{i}.ffn_gate_shexp.weight", [E, sh], wt)
    w.tensor(f"blk.{i}.ffn_up_shexp.weight", [E, sh], wt)
    w.tensor(f"blk.{i}.ffn_down_shexp.weight", [sh, E], wt)


def _mamba2(w, s):
    E, V = s["n_embd"], s["n_vocab"]
    w.tensor("token_embd.weight", [E, V], s["embd_type"])
    w.tensor("output_norm.weight", [E], "F32")
    if not s["tied"]:
        w.tensor("output.weight", [E, V], s["out_type"])
    for i in range(s["n_layer"]):
        w.tensor(f"blk.{i}.attn_norm.weight", [E], "F32")
        _mamba2_mixer(w, s, i)
    return w, s


def write_model(path, d):
    """Writes spec d (a dict of DEFAULTS keys) to path; returns the file size."""
    w, s = build(d)
    return w.write(path, s["alignment"])


def main(argv):
    if len(argv) == 4 and argv[1] == "--preset":
        print(write_model(argv[3], PRESETS[argv[2]]))
        return 0
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    print(write_model(argv[1], json.loads(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
