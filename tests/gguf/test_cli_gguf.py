#!/usr/bin/env python3
"""Integration test of `gpuwatch gguf`: writes files with gguf_writer.py, runs
the real binary ($GPUWATCH_BIN) and compares its output with what the writer
was told to write (its manifest), plus exit codes and error messages."""

import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

BIN = os.environ.get("GPUWATCH_BIN")
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    p = subprocess.run([BIN, "gguf", *args], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected_value(vtype, value):
    return f32(value) if vtype == gw.F32 else value


def compare(path, manifest, writer, max_array=16, full=False):
    args = ["--json", "--tensors", path]
    if full:
        args.insert(0, "--full")
    rc, out, err = run(*args)
    check(rc == 0, "%s: exit %d (%s)" % (path, rc, err))
    doc = json.loads(out)
    check(doc["version"] == manifest["version"], "version")
    check(doc["alignment"] == manifest["alignment"], "alignment")
    check(doc["data_offset"] == manifest["data_offset"], "data_offset %r" % doc["data_offset"])
    check(doc["file_size"] == manifest["file_size"] == os.path.getsize(path), "file_size")
    check(doc["tensor_count"] == len(manifest["tensors"]), "tensor_count")
    check(doc["tensor_bytes"] == sum(t["nbytes"] for t in manifest["tensors"]), "tensor_bytes")
    # metadata: same keys in the same order, each value as written
    check(list(doc["metadata"]) == [k for k, _, _, _ in writer.kv], "metadata keys")
    for key, vtype, value, etype in writer.kv:
        got = doc["metadata"][key]
        if vtype == gw.ARRAY:
            n = len(value) if full else min(len(value), max_array)
            check(got["type"] == "array" and got["count"] == len(value), "%s count" % key)
            want = [expected_value(etype, v) for v in value[:n]]
            check(got["values"] == want, "%s values %r != %r" % (key, got["values"][:4], want[:4]))
            check(got["truncated"] == (n < len(value)), "%s truncated" % key)
        else:
            check(got["value"] == expected_value(vtype, value),
                  "%s = %r, want %r" % (key, got["value"], value))
    # tensors: name, type, shape, offset, bytes, in file order
    for got, want in zip(doc["tensors"], manifest["tensors"]):
        for field, wfield in (("name", "name"), ("type", "type"), ("type_id", "type_id"),
                              ("shape", "shape"), ("offset", "offset"), ("nbytes", "nbytes")):
            check(got[field] == want[wfield], "%s.%s = %r, want %r" % (want["name"], field,
                                                                       got[field], want[wfield]))
    by_type = {}
    for t in manifest["tensors"]:
        c = by_type.setdefault(t["type"], {"count": 0, "bytes": 0})
        c["count"] += 1
        c["bytes"] += t["nbytes"]
    check(doc["tensor_types"] == by_type, "tensor_types %r" % doc["tensor_types"])
    return doc


def main():
    if not BIN or not os.access(BIN, os.X_OK):
        print("GPUWATCH_BIN not set or not executable")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        # A 70B-shaped llama (sparse: a few MB on disk).
        path = os.path.join(tmp, "llama70b.gguf")
        params = dict(n_layer=80, n_embd=8192, n_head=64, n_head_kv=8, n_ff=28672,
                      n_vocab=128256, ftype="q4_k", n_ctx_train=131072, rope_freq_base=500000.0)
        w = gw.build_model(**params)
        m = w.write(path)
        doc = compare(path, m, w)
        check(len(doc["tensors"]) == 1 + 9 * 80 + 2, "70B tensor count")
        check(doc["metadata"]["llama.block_count"] == {"type": "u32", "value": 80}, "block_count")

        # A tied, v2, 64-aligned model, with every array in full.
        path = os.path.join(tmp, "tied.gguf")
        params = dict(n_layer=2, n_embd=512, n_head=8, n_head_kv=2, n_ff=1024, n_vocab=300,
                      tied_output=True, version=2, alignment=64, ftype="q8_0")
        w = gw.build_model(**params)
        m = w.write(path)
        compare(path, m, w, full=True)
        rc, out, _ = run("--max-array", "3", "--json", path)
        doc = json.loads(out)
        check(doc["metadata"]["tokenizer.ggml.tokens"]["values"] == ["<unk>", "<s>", "</s>"],
              "--max-array 3")
        check("tensors" not in doc, "no tensor table without --tensors")

        # Every value type, and strings that are not clean UTF-8 / hold NULs.
        path = os.path.join(tmp, "values.gguf")
        w = gw.GGUFWriter()
        w.add("u8", 255, gw.U8)
        w.add("i8", -128, gw.I8)
        w.add("u64", (1 << 64) - 1, gw.U64)
        w.add("i64", -(1 << 63), gw.I64)
        w.add("f32", 0.1, gw.F32)
        w.add("f64", 0.1, gw.F64)
        w.add("b", False, gw.BOOL)
        w.add("s", "tab\tquote\"back\\slash \u00e9 \u4e2d", gw.STRING)
        w.add_tensor("x", [64, 2], "f16")
        m = w.write(path)
        compare(path, m, w)
        w2 = gw.GGUFWriter()
        w2.add("bytes", b"a\x00b\xffc", gw.STRING)
        path2 = os.path.join(tmp, "nul.gguf")
        w2.write(path2)
        rc, out, err = run("--json", path2)
        check(rc == 0, "NUL string: exit %d %s" % (rc, err))
        check(json.loads(out)["metadata"]["bytes"]["value"] == "a\ufffdb\ufffdc", "NUL/0xff string")
        rc, out, err = run(path2)
        check(rc == 0 and '"a\\x00b\\xffc"' in out, "human escapes: %r" % out)

        # Human output: the header line, metadata lines and the type summary.
        rc, out, err = run(os.path.join(tmp, "llama70b.gguf"))
        check(rc == 0, "human exit")
        check("GGUF v3, " in out and "723 tensors" in out, "human header: %r" % out[:200])
        check("llama.block_count" in out and "u32 = 80" in out, "human metadata")
        check("string[128256] = [\"<unk>\", \"<s>\"" in out and "128240 more]" in out,
              "human array summary")
        check("Q4_K" in out and "F32" in out, "human type summary")

    # Errors: exit 1 with "gpuwatch: FILE: <what>", usage exit 2, --help exit 0.
    for name, says in (("bad_v1.gguf", "GGUF version 1 is not supported"),
                       ("bad_type_removed4.gguf", "ggml type 4 (Q4_2) was removed"),
                       ("bad_magic.gguf", "not a GGUF file"),
                       ("bad_truncated.gguf", "truncated")):
        path = os.path.join(CORPUS, name)
        rc, out, err = run(path)
        check(rc == 1, "%s: exit %d" % (name, rc))
        check(err.startswith("gpuwatch: %s: " % path) and says in err, "%s: %r" % (name, err))
        check(out == "", "%s: nothing on stdout" % name)
    rc, _, err = run("/nonexistent.gguf")
    check(rc == 1 and err.startswith("gpuwatch: /nonexistent.gguf: "), "missing file: %r" % err)
    rc, _, err = run()
    check(rc == 2 and "no FILE" in err, "no file: %d %r" % (rc, err))
    rc, _, err = run("--bogus", "x")
    check(rc == 2 and "unknown option '--bogus'" in err, "bad option")
    rc, _, err = run("a.gguf", "b.gguf")
    check(rc == 2, "two files")
    rc, _, err = run("--max-array", "x", "a.gguf")
    check(rc == 2, "bad --max-array")
    # Every corpus input (hand-made and fuzzer-found: odd bytes, NULs, invalid
    # UTF-8 in keys and strings) gives valid JSON and exit 0, or exit 1 with
    # the message, never anything else.
    for d in (CORPUS, os.path.join(CORPUS, "fuzz")):
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not os.path.isfile(path):
                continue
            variants = [["--json", "--full", "--tensors"]]
            if d == CORPUS:  # the human output too, on the hand-made ones
                variants.append(["--full", "--tensors"])
            for args in variants:
                p = subprocess.run([BIN, "gguf", *args, path], capture_output=True, timeout=60)
                if p.returncode == 0:
                    if "--json" in args:
                        try:
                            json.loads(p.stdout.decode("utf-8"))
                        except ValueError as e:
                            check(False, "%s: invalid JSON: %s" % (name, e))
                    check(p.stderr == b"", "%s: stderr on success" % name)
                else:
                    check(p.returncode == 1 and p.stdout == b"" and
                          p.stderr.startswith(("gpuwatch: %s: " % path).encode()),
                          "%s %s: exit %d %r" % (name, args, p.returncode, p.stderr[:200]))
    rc, out, _ = run("--help")
    check(rc == 0 and out.startswith("usage: gpuwatch gguf FILE"), "--help")

    if failures:
        print("%d failures" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
