#!/usr/bin/env python3
"""gguf_writer.py -- writes structurally valid GGUF model files for tests (stdlib only).

Tensor data is a sparse hole (the file is truncate()d past the header), so a
70B-shaped file costs a few MB of disk. llama.cpp loads these files (buffer
sizes depend only on shapes, types and context parameters).

Command line (stable):
    gguf_writer.py [--arch llama] --n-layer 32 --n-embd 4096 --n-head 32 \
        [--n-head-kv 8] --n-ff 14336 --n-vocab 32000 [--n-ctx-train 4096] \
        [--ftype q4_k] [--tied-output] [--rope-freq-base 10000] [--rms-eps 1e-5] \
        [--head-dim N] [--alignment 32] [--version 3] [--name NAME] \
        [--manifest out.json] out.gguf
  --manifest writes what was written (metadata and every tensor's name, shape,
  type, offset, nbytes) as JSON, for tests that compare a reader against it.

Python API (stable):
    import gguf_writer as gw
    m = gw.write_model("out.gguf", arch="llama", n_layer=2, n_embd=256, n_head=4,
                       n_head_kv=2, n_ff=512, n_vocab=300, ftype="q8_0")
    m["tensors"][0] -> {"name", "shape" (ne0 first), "type", "type_id", "offset", "nbytes"}
    m["metadata"]   -> {key: value}; m["data_offset"], m["file_size"], m["alignment"]
    w = gw.build_model(arch="llama", ...)  # the same, as a GGUFWriter to adjust first

  Lower level, for any layout (and for malformed files in tests):
    w = gw.GGUFWriter(alignment=32, version=3)
    w.add("general.architecture", "llama")          # type inferred: str, bool, int (u32 if
    w.add("x.count", 7, gw.U64)                      #   it fits, else u64/i64), float (f32)
    w.add_array("tokenizer.ggml.scores", [0.0] * 5, gw.F32)
    w.add_tensor("token_embd.weight", [256, 300], "q8_0")   # shape ne0 first
    manifest = w.write("out.gguf")

Tensor names and metadata keys follow llama.cpp (token_embd.weight,
blk.N.attn_q.weight, ..., output_norm.weight, output.weight; <arch>.block_count,
<arch>.attention.head_count_kv, tokenizer.ggml.*). Architectures: see ARCHS;
other modules may register more (ARCHS["qwen2"] = fn) from their own files.

Weight types follow --ftype for 2-D matrices; norms and 1-D tensors are F32.
A matrix whose ne0 is not a multiple of the type's block size falls back to
Q8_0 (ne0 % 32 == 0) or F16, as llama.cpp's quantizer does for K-quants.
"""

import argparse
import json
import struct
import sys

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
        BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}

# ggml types: name -> (id, block elements, block bytes)
GGML_TYPES = {
    "f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q4_1": (3, 32, 20),
    "q5_0": (6, 32, 22), "q5_1": (7, 32, 24), "q8_0": (8, 32, 34), "q8_1": (9, 32, 36),
    "q2_k": (10, 256, 84), "q3_k": (11, 256, 110), "q4_k": (12, 256, 144),
    "q5_k": (13, 256, 176), "q6_k": (14, 256, 210), "q8_k": (15, 256, 292),
    "iq2_xxs": (16, 256, 66), "iq2_xs": (17, 256, 74), "iq3_xxs": (18, 256, 98),
    "iq1_s": (19, 256, 50), "iq4_nl": (20, 32, 18), "iq3_s": (21, 256, 110),
    "iq2_s": (22, 256, 82), "iq4_xs": (23, 256, 136), "i8": (24, 1, 1), "i16": (25, 1, 2),
    "i32": (26, 1, 4), "i64": (27, 1, 8), "f64": (28, 1, 8), "iq1_m": (29, 256, 56),
    "bf16": (30, 1, 2), "tq1_0": (34, 256, 54), "tq2_0": (35, 256, 66),
    "mxfp4": (39, 32, 17), "nvfp4": (40, 64, 36), "q1_0": (41, 128, 18), "q2_0": (42, 64, 18),
}

# llama.cpp's general.file_type (LLAMA_FTYPE_*) for the main weight type.
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9,
             "q2_k": 10, "q3_k": 12, "q4_k": 15, "q5_k": 17, "q6_k": 18, "bf16": 32}


def pad(n, align):
    return (n + align - 1) // align * align


def nbytes(shape, type_name):
    _, blk, size = GGML_TYPES[type_name]
    if shape[0] % blk:
        raise ValueError("ne0=%d is not a multiple of the %s block size %d" % (shape[0], type_name, blk))
    rows = 1
    for d in shape[1:]:
        rows *= d
    return rows * (shape[0] // blk) * size


def _infer(value):
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        if 0 <= value < 1 << 32:
            return U32
        return U64 if value >= 0 else I64
    if isinstance(value, float):
        return F32
    if isinstance(value, str):
        return STRING
    raise TypeError("cannot infer a GGUF type for %r" % (value,))


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _scalar(vtype, value):
    if vtype == STRING:
        return _str(value)
    return struct.pack(_FMT[vtype], value)


class GGUFWriter:
    """Collects metadata and tensor infos, then writes one GGUF file."""

    def __init__(self, alignment=32, version=3):
        self.alignment = alignment
        self.version = version
        self.kv = []       # (key, vtype, value, elem_type or None)
        self.tensors = []  # dicts: name, shape, type, offset (None = running sum)

    def add(self, key, value, vtype=None):
        self.kv.append((key, _infer(value) if vtype is None else vtype, value, None))

    def add_array(self, key, values, etype=None):
        if etype is None:
            etype = _infer(values[0]) if values else U32
        self.kv.append((key, ARRAY, list(values), etype))

    def add_raw(self, raw):
        """Appends one metadata pair given as raw bytes (key, type and value), for
        malformed files; it counts as one pair in the header."""
        self.kv.append((None, None, bytes(raw), None))

    def add_tensor(self, name, shape, type_name, offset=None):
        """shape is ne0 first. type_name is a ggml type name, or an int id (any
        id, even a removed or unknown one, whose data size is then 0)."""
        if not isinstance(type_name, int):
            type_name = type_name.lower()
        self.tensors.append({"name": name, "shape": list(shape), "type": type_name,
                             "offset": offset})

    def header_bytes(self):
        """The bytes up to the data section, and the manifest of what they say."""
        a = self.alignment
        out = bytearray(b"GGUF")
        out += struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv))
        meta = {}
        for key, vtype, value, etype in self.kv:
            if key is None:
                out += value
                continue
            out += _str(key) + struct.pack("<I", vtype)
            if vtype == ARRAY:
                out += struct.pack("<IQ", etype, len(value))
                if etype == STRING:
                    for v in value:
                        out += _str(v)
                else:
                    out += struct.pack("<%d%s" % (len(value), _FMT[etype][1]), *value)
            else:
                out += _scalar(vtype, value)
            meta[key] = value
        infos = []
        running = 0
        for t in self.tensors:
            if isinstance(t["type"], int):
                type_id, type_name, nb = t["type"], "#%d" % t["type"], 0
            else:
                type_id, type_name = GGML_TYPES[t["type"]][0], t["type"].upper()
                nb = nbytes(t["shape"], t["type"])
            off = running if t["offset"] is None else t["offset"]
            running = max(running, pad(off + nb, a))
            out += _str(t["name"]) + struct.pack("<I", len(t["shape"]))
            out += struct.pack("<%dQ" % len(t["shape"]), *t["shape"])
            out += struct.pack("<IQ", type_id, off)
            infos.append({"name": t["name"], "shape": t["shape"], "type": type_name,
                          "type_id": type_id, "offset": off, "nbytes": nb})
        data_offset = pad(len(out), a)
        out += b"\0" * (data_offset - len(out))
        return bytes(out), {"version": self.version, "alignment": a, "metadata": meta,
                            "tensors": infos, "data_offset": data_offset,
                            "data_size": running, "file_size": data_offset + running}

    def write(self, path, sparse=True):
        """Writes path; tensor data is a hole (sparse) or zeros. Returns the manifest."""
        head, manifest = self.header_bytes()
        with open(path, "wb") as f:
            f.write(head)
            if sparse:
                f.truncate(manifest["file_size"])
            else:
                f.write(b"\0" * manifest["data_size"])
        return manifest


# ------------------------------------------------------------------ models

def weight_type(ftype, ne0):
    """The type of a weight matrix whose rows have ne0 elements."""
    _, blk, _ = GGML_TYPES[ftype]
    if ne0 % blk == 0:
        return ftype
    return "q8_0" if ne0 % 32 == 0 else "f16"


def llama_vocab(w, n_vocab):
    """A SentencePiece ("llama") vocabulary llama.cpp accepts: <unk>, <s>, </s>,
    the 256 byte tokens <0x00>..<0xFF>, then filler pieces."""
    if n_vocab < 259:
        raise ValueError("a llama vocabulary needs n_vocab >= 259 (3 specials + 256 bytes)")
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    tokens += ["\u2581t%d" % i for i in range(n_vocab - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259)
    w.add("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", tokens, STRING)
    w.add_array("tokenizer.ggml.scores", [float(-i) for i in range(n_vocab)], F32)
    w.add_array("tokenizer.ggml.token_type", types, I32)
    w.add("tokenizer.ggml.bos_token_id", 1, U32)
    w.add("tokenizer.ggml.eos_token_id", 2, U32)
    w.add("tokenizer.ggml.unknown_token_id", 0, U32)


def llama_model(w, p):
    """llama (and mistral-style GQA) metadata and tensors, named as llama.cpp does."""
    arch = p["arch"]
    n_embd, n_head, n_head_kv, n_ff = p["n_embd"], p["n_head"], p["n_head_kv"], p["n_ff"]
    head_dim = p["head_dim"] or n_embd // n_head
    w.add("general.architecture", arch)
    w.add("general.name", p["name"] or "gpuwatch-test-%s" % arch)
    if p["ftype"] in FILE_TYPE:
        w.add("general.file_type", FILE_TYPE[p["ftype"]], U32)
    if w.alignment != 32:
        w.add("general.alignment", w.alignment, U32)
    w.add(arch + ".vocab_size", p["n_vocab"], U32)
    w.add(arch + ".context_length", p["n_ctx_train"], U32)
    w.add(arch + ".embedding_length", n_embd, U32)
    w.add(arch + ".block_count", p["n_layer"], U32)
    w.add(arch + ".feed_forward_length", n_ff, U32)
    w.add(arch + ".rope.dimension_count", head_dim, U32)
    w.add(arch + ".attention.head_count", n_head, U32)
    w.add(arch + ".attention.head_count_kv", n_head_kv, U32)
    if p["head_dim"]:
        w.add(arch + ".attention.key_length", head_dim, U32)
        w.add(arch + ".attention.value_length", head_dim, U32)
    w.add(arch + ".attention.layer_norm_rms_epsilon", float(p["rms_eps"]), F32)
    w.add(arch + ".rope.freq_base", float(p["rope_freq_base"]), F32)
    llama_vocab(w, p["n_vocab"])

    ft = p["ftype"]
    n_vocab = p["n_vocab"]
    q_dim, kv_dim = head_dim * n_head, head_dim * n_head_kv
    w.add_tensor("token_embd.weight", [n_embd, n_vocab], weight_type(ft, n_embd))
    for i in range(p["n_layer"]):
        b = "blk.%d." % i
        w.add_tensor(b + "attn_norm.weight", [n_embd], "f32")
        w.add_tensor(b + "attn_q.weight", [n_embd, q_dim], weight_type(ft, n_embd))
        w.add_tensor(b + "attn_k.weight", [n_embd, kv_dim], weight_type(ft, n_embd))
        w.add_tensor(b + "attn_v.weight", [n_embd, kv_dim], weight_type(ft, n_embd))
        w.add_tensor(b + "attn_output.weight", [q_dim, n_embd], weight_type(ft, q_dim))
        w.add_tensor(b + "ffn_norm.weight", [n_embd], "f32")
        w.add_tensor(b + "ffn_gate.weight", [n_embd, n_ff], weight_type(ft, n_embd))
        w.add_tensor(b + "ffn_down.weight", [n_ff, n_embd], weight_type(ft, n_ff))
        w.add_tensor(b + "ffn_up.weight", [n_embd, n_ff], weight_type(ft, n_embd))
    w.add_tensor("output_norm.weight", [n_embd], "f32")
    if not p["tied_output"]:
        w.add_tensor("output.weight", [n_embd, n_vocab], weight_type(ft, n_embd))


# arch name -> function(writer, params). Other files may add entries.
ARCHS = {"llama": llama_model, "mistral": llama_model}

DEFAULTS = {"arch": "llama", "n_layer": 2, "n_embd": 256, "n_head": 4, "n_head_kv": None,
            "n_ff": 512, "n_vocab": 300, "n_ctx_train": 4096, "ftype": "f16",
            "tied_output": False, "rope_freq_base": 10000.0, "rms_eps": 1e-5, "head_dim": None,
            "alignment": 32, "version": 3, "name": None}


def build_model(**params):
    """A GGUFWriter holding the model of params (see DEFAULTS), not yet written."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError("unknown parameters: %s" % ", ".join(sorted(unknown)))
    p = dict(DEFAULTS, **params)
    if p["n_head_kv"] is None:
        p["n_head_kv"] = p["n_head"]
    p["ftype"] = p["ftype"].lower()
    if p["arch"] not in ARCHS:
        raise ValueError("unknown architecture %r (known: %s)" % (p["arch"], ", ".join(sorted(ARCHS))))
    w = GGUFWriter(alignment=p["alignment"], version=p["version"])
    ARCHS[p["arch"]](w, p)
    return w


def write_model(path, sparse=True, **params):
    """Writes a model of params (see DEFAULTS) to path; returns the manifest."""
    return build_model(**params).write(path, sparse=sparse)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a sparse GGUF model file for tests.")
    ap.add_argument("out")
    for k, v in DEFAULTS.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            ap.add_argument(flag, action="store_true")
        elif k in ("rope_freq_base", "rms_eps"):
            ap.add_argument(flag, type=float, default=v)
        elif k in ("arch", "ftype", "name"):
            ap.add_argument(flag, default=v)
        else:
            ap.add_argument(flag, type=int, default=v)
    ap.add_argument("--manifest", help="write the manifest (JSON) here")
    ap.add_argument("--dense", action="store_true", help="write zeros instead of a sparse hole")
    a = ap.parse_args(argv)
    params = {k: getattr(a, k) for k in DEFAULTS}
    try:
        m = write_model(a.out, sparse=not a.dense, **params)
    except (ValueError, TypeError) as e:
        print("gguf_writer: %s" % e, file=sys.stderr)
        return 2
    if a.manifest:
        with open(a.manifest, "w") as f:
            json.dump(m, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
