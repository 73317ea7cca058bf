#!/usr/bin/env python3
"""inference.py — what the pool's tests need to run a REAL inference server:
node-llama-cpp (real llama.cpp, CPU build), a tiny dense model that llama.cpp
can load and run, and the command that starts llama_double.mjs (a stand-in for
llama.cpp's llama-server with the same command line and routes).

Owns:
  ensure_node_modules()  installs node-llama-cpp (tests/estimate/matrix.py's
                         ensure_oracle) under $GPUWATCH_BUILD_ROOT once;
                         returns its node_modules, or None (after printing
                         "SKIP: why") when node/npm are missing or too old.
  write_tiny_model(path, seed=0, n_layer=2, n_embd=64, ...)
                         writes a dense llama-architecture GGUF with a
                         working byte-level BPE ("gpt2") tokenizer and
                         deterministic pseudo-random weights; returns a dict
                         (path, size, n_embd, n_vocab, ...). Different seeds
                         give different answers; n_layer/n_embd/n_ff/wtype
                         change the file size.
  double_command(node_modules)
                         the argv prefix that starts the double; append
                         llama-server flags (-m PATH --port N ...).

Invariants: nothing here is a binary in the repository (models are written at
test time); a model of the defaults is ~0.3 MB and loads in milliseconds.
Greedy generation never picks an end-of-generation or control token and only
picks printable ASCII tokens (their output rows are the only non-zero ones),
so an answer always has max_tokens tokens of readable text.

Usage (by hand): python3 inference.py OUT.gguf [JSON-KWARGS]
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
ESTIMATE = os.path.join(os.path.dirname(HERE), "estimate")
DOUBLE = os.path.join(HERE, "llama_double.mjs")

NODE_MIN_MAJOR = 20


# --------------------------------------------------------------------------
# node-llama-cpp

def node_major():
    """Node's major version, 0 when node is missing or unreadable."""
    if not shutil.which("node"):
        return 0
    try:
        ver = subprocess.run(["node", "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        return int(ver.lstrip("v").split(".")[0])
    except (ValueError, OSError, subprocess.SubprocessError):
        return 0


def ensure_node_modules(build_root=None):
    """node_modules holding node-llama-cpp (installed once under
    BUILD/tests/estimate/oracle, shared with the estimator's matrix), or None
    after printing the reason to skip."""
    if not shutil.which("node") or not shutil.which("npm"):
        print("SKIP: node/npm not installed (needed for node-llama-cpp)")
        return None
    major = node_major()
    if major < NODE_MIN_MAJOR:
        print(f"SKIP: node-llama-cpp 3.22.1 needs Node.js >= {NODE_MIN_MAJOR} (found {major or 'none'})")
        return None
    build = build_root or os.environ.get("GPUWATCH_BUILD_ROOT") or tempfile.gettempdir()
    sys.path.insert(0, ESTIMATE)
    try:
        import matrix  # noqa: E402  (tests/estimate/matrix.py)
    finally:
        sys.path.remove(ESTIMATE)
    try:
        return matrix.ensure_oracle(os.path.join(build, "tests", "estimate", "oracle"))
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"SKIP: could not install node-llama-cpp ({e})")
        return None


def double_command(node_modules):
    """argv prefix starting llama_double.mjs with node_modules: self-contained
    (GW_NODE_MODULES is set by env(1) in the command itself), so it works as
    a command template however the caller's environment looks."""
    env_bin = shutil.which("env") or "/usr/bin/env"
    node = shutil.which("node") or "node"
    return [env_bin, "GW_NODE_MODULES=" + os.path.abspath(node_modules), node, DOUBLE]


def double_env(node_modules, base=None):
    """An environment for running `node llama_double.mjs` directly."""
    env = dict(os.environ if base is None else base)
    env["GW_NODE_MODULES"] = os.path.abspath(node_modules)
    return env


# --------------------------------------------------------------------------
# GGUF writing (dense: every byte of tensor data is written)

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_F16 = 0, 1
ALIGN = 32

TOKEN_NORMAL, TOKEN_CONTROL = 1, 3
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Words whose prefixes become BPE merges (so tokenization really merges).
WORDS = [
    "Ġthe", "Ġand", "Ġhello", "Ġworld", "Ġmodel", "Ġtoken", "Ġserver", "Ġpool",
    "Ġgpu", "Ġof", "Ġto", "Ġin", "Ġis", "Ġit", "Ġa", "Ġs", "Ġw", "Ġc", "Ġb", "Ġm",
    "Ġf", "Ġp", "Ġd", "Ġre", "Ġon", "Ġyou", "Ġwhat", "Ġsay", "Ġtest", "Ġone",
    "Ġtwo", "Ġthree", "user", "system", "assistant", "hello", "ing", "er", "an",
    "re", "on", "en", "at", "ed", "es", "or", "ou", "is", "it", "al", "ar", "le",
    "st", "nd", "th", "he", "in", "ion", "tion", "ation", "ly", "ll", "ver", "ment",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _bytes_to_unicode():
    """GPT-2's byte-level alphabet: byte -> printable code point."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def build_vocab():
    """(tokens, token types, merges, generatable ids): specials, the 256
    byte tokens, then one token per merge."""
    b2u = _bytes_to_unicode()
    tokens = list(SPECIALS)
    types = [TOKEN_CONTROL] * len(SPECIALS)
    gen = []
    for b in range(256):
        if 0x20 <= b <= 0x7E:
            gen.append(len(tokens))
        tokens.append(b2u[b])
        types.append(TOKEN_NORMAL)
    have = set(tokens)
    merges = []
    for w in sorted(WORDS, key=len):
        for i in range(2, len(w) + 1):
            left, right, whole = w[:i - 1], w[i - 1], w[:i]
            if whole in have:
                continue
            merges.append(f"{left} {right}")
            have.add(whole)
            gen.append(len(tokens))
            tokens.append(whole)
            types.append(TOKEN_NORMAL)
    return tokens, types, merges, gen


class _Gguf:
    def __init__(self):
        self.kv = []
        self.tensors = []  # (name, ne, ggml type, raw bytes)

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    @staticmethod
    def _str(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value):
        if vtype == GGUF_U32:
            return struct.pack("<I", value)
        if vtype == GGUF_I32:
            return struct.pack("<i", value)
        if vtype == GGUF_F32:
            return struct.pack("<f", value)
        if vtype == GGUF_BOOL:
            return struct.pack("<B", 1 if value else 0)
        if vtype == GGUF_STRING:
            return self._str(value)
        if vtype == GGUF_ARRAY:
            etype, items = value
            if etype == GGUF_I32:
                return struct.pack("<IQ", etype, len(items)) + array("i", items).tobytes()
            return struct.pack("<IQ", etype, len(items)) + b"".join(self._value(etype, v) for v in items)
        raise ValueError(vtype)

    def tensor(self, name, ne, values, wtype="F32"):
        """values: a flat sequence of floats, ne[0] fastest."""
        n = 1
        for d in ne:
            n *= d
        if len(values) != n:
            raise ValueError(f"{name}: {len(values)} values for shape {ne}")
        if wtype == "F16" and len(ne) >= 2:
            raw, t = struct.pack(f"<{n}e", *values), GGML_F16
        else:  # norms (1-D) stay F32, as in real files
            raw, t = array("f", values).tobytes(), GGML_F32
        if sys.byteorder != "little":
            raise RuntimeError("big-endian host")
        self.tensors.append((name, list(ne), t, raw))

    def write(self, path):
        head = bytearray(b"GGUF")
        head += struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value in self.kv:
            head += self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value)
        offset = 0
        for name, ne, t, raw in self.tensors:
            head += self._str(name) + struct.pack("<I", len(ne))
            head += b"".join(struct.pack("<Q", d) for d in ne)
            head += struct.pack("<IQ", t, offset)
            offset += (len(raw) + ALIGN - 1) // ALIGN * ALIGN
        head += b"\0" * ((-len(head)) % ALIGN)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(head)
            for _, _, _, raw in self.tensors:
                f.write(raw)
                f.write(b"\0" * ((-len(raw)) % ALIGN))
        os.replace(tmp, path)  # readers never see a half-written model
        return len(head) + offset


def _uniform(rng, n, std):
    """n deterministic pseudo-random floats, uniform with the given std."""
    a = std * 3 ** 0.5 / 32768.0
    raw = array("h")
    raw.frombytes(rng.randbytes(2 * n))
    return [x * a for x in raw]


def write_tiny_model(path, seed=0, n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_ff=128,
                     n_ctx_train=4096, wtype="F32", name=None):
    """Writes a dense llama GGUF that llama.cpp loads, tokenizes with, and
    runs (generation and embeddings). Returns a dict describing it."""
    if n_embd % n_head or n_head % n_head_kv or (n_embd // n_head) % 2:
        raise ValueError("n_embd must split into n_head even-sized heads, n_head into n_head_kv groups")
    if wtype not in ("F32", "F16"):
        raise ValueError("wtype: F32 or F16")
    tokens, types, merges, gen = build_vocab()
    V, E, F = len(tokens), n_embd, n_ff
    D = E // n_head
    KV = D * n_head_kv
    rng = random.Random(seed)
    g = _Gguf()
    a = "llama"
    g.add("general.architecture", GGUF_STRING, a)
    g.add("general.name", GGUF_STRING, name or f"gpuwatch-tiny-s{seed}-l{n_layer}-e{n_embd}")
    g.add("general.file_type", GGUF_U32, 0 if wtype == "F32" else 1)
    g.add(f"{a}.vocab_size", GGUF_U32, V)
    g.add(f"{a}.context_length", GGUF_U32, n_ctx_train)
    g.add(f"{a}.embedding_length", GGUF_U32, E)
    g.add(f"{a}.block_count", GGUF_U32, n_layer)
    g.add(f"{a}.feed_forward_length", GGUF_U32, F)
    g.add(f"{a}.rope.dimension_count", GGUF_U32, D)
    g.add(f"{a}.attention.head_count", GGUF_U32, n_head)
    g.add(f"{a}.attention.head_count_kv", GGUF_U32, n_head_kv)
    g.add(f"{a}.attention.layer_norm_rms_epsilon", GGUF_F32, 1e-5)
    g.add(f"{a}.rope.freq_base", GGUF_F32, 10000.0)
    g.add("tokenizer.ggml.model", GGUF_STRING, "gpt2")
    g.add("tokenizer.ggml.pre", GGUF_STRING, "default")
    g.add("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, tokens))
    g.add("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, types))
    g.add("tokenizer.ggml.merges", GGUF_ARRAY, (GGUF_STRING, merges))
    g.add("tokenizer.ggml.bos_token_id", GGUF_U32, 0)
    g.add("tokenizer.ggml.eos_token_id", GGUF_U32, 2)
    g.add("tokenizer.ggml.padding_token_id", GGUF_U32, 0)
    g.add("tokenizer.ggml.add_bos_token", GGUF_BOOL, False)
    g.add("tokenizer.chat_template", GGUF_STRING, CHAT_TEMPLATE)

    g.tensor("token_embd.weight", [E, V], _uniform(rng, E * V, 1.0), wtype)
    for i in range(n_layer):
        p = f"blk.{i}."
        g.tensor(p + "attn_norm.weight", [E], [1.0] * E)
        g.tensor(p + "attn_q.weight", [E, E], _uniform(rng, E * E, E ** -0.5), wtype)
        g.tensor(p + "attn_k.weight", [E, KV], _uniform(rng, E * KV, E ** -0.5), wtype)
        g.tensor(p + "attn_v.weight", [E, KV], _uniform(rng, E * KV, E ** -0.5), wtype)
        g.tensor(p + "attn_output.weight", [E, E], _uniform(rng, E * E, E ** -0.5), wtype)
        g.tensor(p + "ffn_norm.weight", [E], [1.0] * E)
        g.tensor(p + "ffn_gate.weight", [E, F], _uniform(rng, E * F, E ** -0.5), wtype)
        g.tensor(p + "ffn_up.weight", [E, F], _uniform(rng, E * F, E ** -0.5), wtype)
        g.tensor(p + "ffn_down.weight", [F, E], _uniform(rng, F * E, F ** -0.5), wtype)
    g.tensor("output_norm.weight", [E], [1.0] * E)
    # output rows: random for printable tokens, zero (logit 0) for the rest,
    # so greedy decoding picks readable text and never stops early
    out = [0.0] * (E * V)
    allowed = set(gen)
    row = _uniform(rng, E * V, 1.0)
    for t in allowed:
        out[t * E:(t + 1) * E] = row[t * E:(t + 1) * E]
    g.tensor("output.weight", [E, V], out, wtype)
    size = g.write(path)
    return {"path": os.path.abspath(path), "size": size, "seed": seed, "n_layer": n_layer,
            "n_embd": E, "n_head": n_head, "n_head_kv": n_head_kv, "n_ff": F, "n_vocab": V,
            "n_ctx_train": n_ctx_train, "wtype": wtype}


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__.split("Usage (by hand): ")[1].strip(), file=sys.stderr)
        sys.exit(2)
    info = write_tiny_model(sys.argv[1], **(json.loads(sys.argv[2]) if len(sys.argv) == 3 else {}))
    print(json.dumps(info))
