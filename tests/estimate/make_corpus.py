#!/usr/bin/env python3
"""make_corpus.py — writes the seed corpus of fuzz/fuzz_estimate.c.

Owns: the choice of seeds: the GGUF header (no tensor data: the fuzz target
reads such a file as the start of a sparse one) of every model in matrix.py
MODELS, of one model of an architecture without exact rules, and of every
projector preset of mmproj_writer.py with its blocks cut to two (the graph
reads block 0's shapes and clip.vision.block_count, not the other blocks'
tensors). tests/gguf/corpus is the fuzzer's other seed folder.

Usage: python3 make_corpus.py OUTDIR     (tests/estimate/corpus)
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix  # noqa: E402
import mmproj_writer  # noqa: E402
import model_writer  # noqa: E402


def renamed(w, old, new):
    """w with architecture old renamed to new (keys and general.architecture)."""
    kv = []
    for key, vtype, value in w.kv:
        if key == "general.architecture":
            value = new
        elif key.startswith(old + "."):
            key = new + key[len(old):]
        kv.append((key, vtype, value))
    w.kv = kv
    return w


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    total = 0
    for name, spec in matrix.MODELS.items():
        w, s = model_writer.build(spec)
        total += w.write(os.path.join(out, f"model_{name}.gguf"), s["alignment"], header_only=True)
    # an architecture without exact rules: the llama graph, approximate
    w, s = model_writer.build(matrix.MODELS["llama"])
    total += renamed(w, "llama", "starcoder2").write(os.path.join(out, "model_generic.gguf"),
                                                     s["alignment"], header_only=True)
    for preset in mmproj_writer.PRESETS:
        d = dict(mmproj_writer.PRESETS[preset], n_layer=2)
        total += mmproj_writer.build(d).write(os.path.join(out, f"mmproj_{preset}.gguf"),
                                              header_only=True)
    print(f"make_corpus: {total} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
