#!/usr/bin/env python3
"""test_fit_cli.py — `gpuwatch fit` behaviour: clear errors for a file that
is not GGUF, truncated, or of an unknown architecture; usage errors; the
plan kinds on given GPU sizes (one GPU, split, partial offload, reduced
context) and the llama.cpp flags printed for them."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_writer  # noqa: E402
import mmproj_writer  # noqa: E402

GW = os.environ.get("GPUWATCH_BIN")
fails = []


def run(*args):
    return subprocess.run([GW, "fit", *args], capture_output=True, text=True, errors="replace", timeout=60)


def check(cond, what):
    if not cond:
        fails.append(what)


def plain_bytes(w):
    """Bytes of every tensor in a plain CPU buffer: each padded to 32."""
    total = 0
    for _, ne, tname in w.tensors:
        _, be, bb = model_writer.GGML_TYPES[tname]
        n = 1
        for x in ne:
            n *= x
        total += (n // be * bb + 31) // 32 * 32
    return total


def host_cpu_checks(t):
    """--host-cpu / --no-host and the host CPU in the output. A tied Q4_0
    model: token_embd (GET_ROWS) stays in the plain buffer; the output
    (MUL_MAT of the same tensor) goes to CPU_REPACK on an AVX2 variant
    (32000 rows % 8 == 0), which makes it a second copy; a variant without
    AVX2 (sse42) has no Q4_0 kernel and shares token_embd; with a GPU, host
    weights sit in its pinned host buffer (no copy) unless --no-host."""
    spec = {"arch": "llama", "n_layer": 2, "n_embd": 512, "n_head": 8, "n_head_kv": 4,
            "n_ff": 1024, "n_vocab": 32000, "wtype": "Q4_0", "tied": True}
    path = os.path.join(t, "tied.gguf")
    model_writer.write_model(path, spec)
    w, _ = model_writer.build(spec)
    plain = plain_bytes(w)
    embd = (512 * 32000 // 32 * 18 + 31) // 32 * 32

    def host_weights(*args):
        r = run(path, "--json", "-c", "512", *args)
        if r.returncode != 0:
            fails.append(f"fit {args}: exit {r.returncode}: {r.stderr}")
            return None, {}
        d = json.loads(r.stdout)
        return d["requested"]["host"]["weights"], d["host_cpu"]

    hw, cpu = host_weights("--cpu", "--host-cpu", "none")
    check(hw == plain, f"--host-cpu none: host weights {hw}, plain buffer {plain}")
    check(cpu.get("variant") == "none" and cpu.get("buffer_types") == [], f"none: {cpu}")
    hw, cpu = host_weights("--cpu", "--host-cpu", "sse42")
    check(hw == plain, f"--host-cpu sse42: host weights {hw}, plain buffer {plain}")
    hw, cpu = host_weights("--cpu", "--host-cpu", "haswell")
    check(hw == plain + embd, f"--host-cpu haswell: host weights {hw}, expected {plain + embd}")
    check(cpu.get("variant") == "haswell" and cpu.get("buffer_types") == ["CPU_REPACK"] and
          cpu.get("host_weights_buffer_types") == ["CPU_REPACK"], f"haswell: {cpu}")
    hw, cpu = host_weights("--gpu", "100GiB", "-ngl", "0", "--host-cpu", "haswell")
    check(hw == plain, f"GPU layout, pinned host buffer: host weights {hw}, expected {plain}")
    check(cpu.get("host_weights_buffer_types") == [], f"GPU layout: {cpu}")
    hw, cpu = host_weights("--gpu", "100GiB", "-ngl", "0", "--host-cpu", "haswell", "--no-host")
    check(hw == plain + embd, f"GPU layout --no-host: host weights {hw}, expected {plain + embd}")
    # the detected variant by default, said in words
    r = run(path, "--cpu", "-c", "512")
    check(r.returncode == 0 and "host CPU: " in r.stdout and "given with --host-cpu" not in r.stdout,
          f"human host CPU line: {r.stdout}")
    r = run(path, "--cpu", "-c", "512", "--host-cpu", "haswell")
    check("host CPU: haswell (CPU_REPACK)" in r.stdout, f"human --host-cpu line: {r.stdout}")
    r = run(path, "--cpu", "--host-cpu", "skylake")
    check(r.returncode == 2 and "unknown CPU variant 'skylake'" in r.stderr and "skylakex" in r.stderr,
          f"bad --host-cpu: {r.returncode} {r.stderr}")
    # place: the note and the JSON name the host CPU too
    env = dict(os.environ, GPUWATCH_DAEMON="http://127.0.0.1:1")
    r = subprocess.run([GW, "place", "--model", path, "--gpu", "8GiB", "--no-ledger", "--json",
                        "--host-cpu", "zen4"], capture_output=True, text=True, env=env, timeout=60)
    d = json.loads(r.stdout) if r.returncode == 0 and r.stdout.startswith("{") else {}
    check(d.get("host_cpu", {}).get("variant") == "zen4" and "host CPU: zen4" in (d.get("model") or ""),
          f"place --host-cpu: {r.returncode} {r.stderr} {r.stdout[:300]}")
    r = subprocess.run([GW, "run", "--model", path, "--gpu", "8GiB", "--no-ledger", "--dry-run",
                        "--json", "--host-cpu", "haswell", "--", "true"], capture_output=True,
                       text=True, env=env, timeout=60)
    d = json.loads(r.stdout) if r.returncode == 0 and r.stdout.startswith("{") else {}
    check(d.get("host_cpu", {}).get("variant") == "haswell" and "host CPU: haswell" in (d.get("model") or ""),
          f"run --dry-run --json --host-cpu: {r.returncode} {r.stderr} {r.stdout[:300]}")
    r = subprocess.run([GW, "place", "--mem", "1GiB", "--gpu", "8GiB", "--no-ledger", "--host-cpu",
                        "zen4"], capture_output=True, text=True, env=env, timeout=60)
    check(r.returncode == 2 and "--host-cpu needs --model" in r.stderr,
          f"place --host-cpu without --model: {r.returncode} {r.stderr}")


def mmproj_checks(t, model):
    """The projector: its tensor bytes and its compute buffer on the first
    GPU (inputs in the host buffer), on the host with --cpu or
    --no-mmproj-offload; malformed files refused with the key named. The
    figures are the worked examples of test_mmproj.c (llava "mlp", one
    block: clip.cpp runs none; 56608 bytes on the CPU, 56704 + 37792 with a
    GPU), written as a real GGUF here."""
    proj = os.path.join(t, "mmproj.gguf")
    small = {"n_layer": 1, "image_size": 56, "patch_size": 14, "n_embd": 64, "n_head": 4,
             "n_ff": 128, "n_text": 96}
    size = mmproj_writer.write_mmproj(proj, "mlp", **small)
    r = run(model, "--gpu", "24GiB", "-mg", "0", "--mmproj", proj, "--json")
    d = json.loads(r.stdout)
    dev, host = d["requested"]["devices"][0]["memory"], d["requested"]["host"]
    check(d["mmproj"]["projector"] == "mlp" and not d["mmproj"]["approximate"]
          and d["mmproj"]["warmup_image"] == 56, f"mmproj json: {d.get('mmproj')}")
    check(0 < dev["mmproj"] <= size, f"mmproj weights: {dev}")
    check(dev["mmproj_compute"] == 56704 and host["mmproj_compute"] == 37792,
          f"mmproj compute gpu: {dev} {host}")
    check(dev["total"] == sum(dev[k] for k in ("weights", "kv", "compute", "output", "mmproj",
                                               "overhead", "mmproj_compute")), f"total: {dev}")
    r = run(model, "--cpu", "--mmproj", proj, "--json")
    h = json.loads(r.stdout)["requested"]["host"]
    check(h["mmproj_compute"] == 56608 and h["mmproj"] == dev["mmproj"], f"mmproj cpu: {h}")
    r = run(model, "--gpu", "24GiB", "--no-mmproj-offload", "--mmproj", proj, "--json")
    d = json.loads(r.stdout)["requested"]
    check(d["devices"][0]["memory"]["mmproj_compute"] == 0 and d["host"]["mmproj_compute"] == 56608,
          f"no-mmproj-offload: {d}")
    r = run(model, "--cpu", "--mmproj", proj)
    check("projector" in r.stdout and "mlp" in r.stdout and "compute" in r.stdout,
          f"mmproj human: {r.stdout}")
    # a projector type without exact rules: a figure, flagged approximate
    other = os.path.join(t, "other.gguf")
    w = mmproj_writer.build(dict(mmproj_writer.PRESETS["gemma3"], **small, projector="glm4v"))
    w.write(other)
    r = run(model, "--cpu", "--mmproj", other, "--json")
    d = json.loads(r.stdout)
    check(d["mmproj"]["approximate"] and d["requested"]["host"]["mmproj_compute"] > 0,
          f"approximate projector: {d.get('mmproj')}")
    r = run(model, "--cpu", "--mmproj", other)
    check("approximate" in r.stdout, f"approximate human: {r.stdout}")
    # malformed: not a projector, a missing key
    bad = os.path.join(t, "bad.gguf")
    w = model_writer.Writer()
    w.add("general.architecture", model_writer.GGUF_STRING, "clip")
    w.tensor("v.patch_embd.weight", [1024, 1024], "F16")
    w.write(bad)
    r = run(model, "--cpu", "--mmproj", bad)
    check(r.returncode == 1 and "clip.projector_type" in r.stderr, f"bad mmproj: {r.stderr}")
    w = mmproj_writer.build(dict(mmproj_writer.PRESETS["gemma3"], **small))
    w.kv = [kv for kv in w.kv if kv[0] != "clip.vision.patch_size"]
    w.write(bad)
    r = run(model, "--cpu", "--mmproj", bad)
    check(r.returncode == 1 and "clip.vision.patch_size" in r.stderr, f"no patch size: {r.stderr}")


def garbage_checks(model):
    """Issue 12: `fit --gpu nan` became 8796093022208 MiB free. fit shares
    place's size grammar and integer parser: NaN, infinities, negatives,
    overflow and trailing junk are usage errors naming the option and the
    value, never a number."""
    bad_sizes = ["nan", "NaN", "inf", "-inf", "infinity", "-1GiB", "-0.5G", "1e30", "0x10G",
                 "24GiBx", "18446744073709551616", "20000000000GiB", "1.5", " 8G", "8G ", ""]
    for opt in ("--gpu", "--overhead", "--margin"):
        for v in bad_sizes:
            for args in ([opt, v], [f"{opt}={v}"]):
                r = run(model, *args)
                check(r.returncode == 2 and opt in r.stderr and f"'{v}'" in r.stderr
                      and not r.stdout, f"fit {args}: {r.returncode} {r.stderr!r} {r.stdout[:80]!r}")
    bad_ints = ["nan", "-1", "1.5", "1e3", "0x10", "+4", "4294967296", "99999999999999999999",
                "4k", ""]
    for opt in ("-c", "--batch-size", "-ub", "-np", "-mg", "-ngl"):
        for v in bad_ints:
            r = run(model, "--cpu", opt, v)
            check(r.returncode == 2 and f"'{v}'" in r.stderr, f"fit {opt} {v!r}: {r.returncode} {r.stderr!r}")
    for v in ("nan", "1,inf", "-1,1", "1,,x", "0x1,1"):
        r = run(model, "--gpu", "8GiB", "--gpu", "8GiB", "-ts", v)
        check(r.returncode == 2 and "--tensor-split" in r.stderr, f"fit -ts {v}: {r.returncode} {r.stderr!r}")
    r = run(model, "--gpu", "24GiB", "--json")
    d = json.loads(r.stdout) if r.stdout else {}
    free = d.get("requested", {}).get("devices", [{}])[0].get("free")
    check(free == 24 << 30, f"--gpu 24GiB is 24 GiB free: {free}")


# llama-server's long argument names (its --help) for the short flags fit
# prints: what a models preset INI's keys must be.
LLAMA_LONG = {"-c": "ctx-size", "-ngl": "n-gpu-layers", "-b": "batch-size", "-ub": "ubatch-size",
              "-np": "parallel", "--kv-unified": "kv-unified", "-fa": "flash-attn",
              "-ctk": "cache-type-k", "-ctv": "cache-type-v", "-sm": "split-mode",
              "-mg": "main-gpu", "-ts": "tensor-split"}


def flags_as_keys(flags):
    """fit's llama.cpp flags as the preset keys they must become."""
    out, words, i = {}, flags.split(), 0
    while i < len(words):
        key = LLAMA_LONG[words[i]]
        if i + 1 < len(words) and not words[i + 1].startswith("-"):
            out[key] = words[i + 1]
            i += 2
        else:
            out[key] = "true"
            i += 1
    return out


def router_preset_checks(t):
    """--router-preset: a folder of two models (and a projector it must
    skip) and a third file, parsed back with configparser; each section
    holds the model's absolute path and the flags fit --json plans for it
    alone on the same GPUs. Errors write nothing."""
    import configparser
    d = os.path.join(t, "models")
    os.makedirs(d)
    specs = {"alpha": {"arch": "llama", "n_layer": 8, "n_embd": 1024, "n_head": 8,
                       "n_head_kv": 4, "n_ff": 2816, "wtype": "Q8_0"},
             "beta": {"arch": "llama", "n_layer": 24, "n_embd": 2048, "n_head": 16,
                      "n_head_kv": 4, "n_ff": 5632, "wtype": "F16"}}
    for name, spec in specs.items():
        model_writer.write_model(os.path.join(d, name + ".gguf"), spec)
    with open(os.path.join(d, "mmproj-alpha.gguf"), "wb") as f:
        f.write(b"not read: projectors are skipped")
    gamma = os.path.join(t, "gamma.gguf")
    model_writer.write_model(gamma, specs["alpha"])
    gpus = ["--gpu", "3GiB", "--gpu", "1500MiB", "-c", "4096"]
    out = os.path.join(t, "preset.ini")
    r = run("--router-preset", out, d, gamma, *gpus)
    check(r.returncode == 0, f"router preset: {r.returncode} {r.stderr}")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(out)
    check(ini.sections() == ["alpha", "beta", "gamma"], f"sections {ini.sections()}")
    for name in ini.sections():
        path = gamma if name == "gamma" else os.path.join(d, name + ".gguf")
        sec = dict(ini[name])
        check(sec.pop("model", None) == os.path.realpath(path), f"{name} model path {sec}")
        alone = run(path, "--json", *gpus)
        want = flags_as_keys(json.loads(alone.stdout)["plan"]["llama_flags"])
        check(sec == want, f"{name}: {sec} != {want}")
    kinds = {json.loads(run(p, "--json", *gpus).stdout)["plan"]["kind"]
             for p in (os.path.join(d, "alpha.gguf"), os.path.join(d, "beta.gguf"))}
    check(len(kinds) == 2, f"the two models should plan differently here: {kinds}")
    r = run("--router-preset", "-", gamma, *gpus)
    check(r.returncode == 0 and "[gamma]" in r.stdout, f"preset to stdout: {r.stdout}")
    # errors: nothing written
    before = open(out).read()
    bad = os.path.join(t, "bad.gguf")
    with open(bad, "wb") as f:
        f.write(b"GGUF broken")
    r = run("--router-preset", out, d, bad, *gpus)
    check(r.returncode == 1 and "bad.gguf" in r.stderr and open(out).read() == before,
          f"a bad model: {r.returncode} {r.stderr}")
    other = os.path.join(t, "other")
    os.makedirs(other)
    model_writer.write_model(os.path.join(other, "alpha.gguf"), specs["alpha"])
    r = run("--router-preset", out, d, other, *gpus)
    check(r.returncode == 1 and "[alpha]" in r.stderr and open(out).read() == before,
          f"two models named alpha: {r.returncode} {r.stderr}")
    r = run("--router-preset", out, other + "-missing", *gpus)
    check(r.returncode == 1 and "No such file" in r.stderr, f"missing: {r.stderr}")
    r = run("--router-preset", out, d, "--json", *gpus)
    check(r.returncode == 2, f"--json with a preset: {r.returncode}")
    r = run(gamma, os.path.join(d, "alpha.gguf"), *gpus)
    check(r.returncode == 2 and "--router-preset" in r.stderr, f"two models: {r.stderr}")


def main():
    with tempfile.TemporaryDirectory() as t:
        notgguf = os.path.join(t, "x.gguf")
        with open(notgguf, "wb") as f:
            f.write(b"hello world, not a model at all" * 10)
        r = run(notgguf, "--cpu")
        check(r.returncode == 1 and "not a GGUF" in r.stderr, f"not-gguf: {r.returncode} {r.stderr}")

        model = os.path.join(t, "m.gguf")
        model_writer.write_model(model, {"arch": "llama", "n_layer": 16, "n_embd": 2048, "n_head": 16,
                                         "n_head_kv": 4, "n_ff": 5632, "wtype": "Q8_0"})
        with open(model, "rb") as f:
            head = f.read(2000)
        trunc = os.path.join(t, "trunc.gguf")
        with open(trunc, "wb") as f:
            f.write(head)
        r = run(trunc, "--cpu")
        check(r.returncode == 1 and "truncated" in r.stderr, f"truncated: {r.returncode} {r.stderr}")

        unknown = os.path.join(t, "u.gguf")
        w = model_writer.Writer()
        w.add("general.architecture", model_writer.GGUF_STRING, "clip")
        w.tensor("v.patch_embd.weight", [32, 32], "F16")
        w.write(unknown)
        r = run(unknown, "--cpu")
        check(r.returncode == 1 and "clip" in r.stderr and "not a language model" in r.stderr,
              f"unknown arch: {r.returncode} {r.stderr}")

        # an architecture without exact rules: the generic estimate, flagged
        generic = os.path.join(t, "g.gguf")
        w, _ = model_writer.build({"arch": "llama", "n_layer": 2})
        w.kv = [(k.replace("llama.", "mysterymodel."), vt,
                 "mysterymodel" if k == "general.architecture" else v) for k, vt, v in w.kv]
        w.write(generic)
        r = run(generic, "--cpu", "--json")
        d = json.loads(r.stdout) if r.returncode == 0 else {}
        check(d.get("model", {}).get("approximate") is True and d["requested"]["host"]["compute"] > 0,
              f"generic: {r.returncode} {r.stderr} {d.get('model')}")
        r = run(generic, "--cpu")
        check("approximate" in r.stdout, f"generic human: {r.stdout}")

        mmproj_checks(t, model)

        r = run(model, "--cpu", "-c", "abc")
        check(r.returncode == 2 and "-c" in r.stderr, f"bad -c: {r.returncode} {r.stderr}")
        r = run(model, "--cpu", "-ctv", "q8_0", "-fa", "off")
        check(r.returncode == 1 and "flash attention" in r.stderr, f"quantized V: {r.stderr}")
        r = run(model, "--cpu", "--bogus")
        check(r.returncode == 2, f"unknown option: {r.returncode}")
        garbage_checks(model)

        def fit(*gpus, extra=()):
            args = [model, "--json", "-c", "8192", "--overhead", "100MiB", "--margin", "100MiB"]
            for g in gpus:
                args += ["--gpu", g]
            r = run(*args, *extra)
            check(r.returncode in (0, 1), f"fit {gpus}: {r.returncode} {r.stderr}")
            return json.loads(r.stdout) if r.stdout else None

        big = fit("24GiB")
        check(big and big["plan"]["kind"] == "one-gpu" and big["requested"]["fits"], f"one gpu: {big}")
        need = big["requested"]["devices"][0]["memory"]["total"]
        # two GPUs, each too small alone, together enough
        half = (need + 300 * 2**20) // 2 // 2**20 + 120
        two = fit(f"{half}MiB", f"{half}MiB")
        check(two and two["plan"]["kind"] == "split" and "-ts" in two["plan"]["llama_flags"],
              f"split: {two and two['plan']}")
        # one GPU far too small for everything: partial offload
        small = fit(f"{need * 7 // 10 // 2**20}MiB")
        check(small and small["plan"]["kind"] == "partial" and "-ngl" in small["plan"]["llama_flags"],
              f"partial: {small and small['plan']}")
        if small:
            ngl = small["plan"]["estimate"]["n_gpu_layers"]
            check(0 < ngl <= 16, f"partial ngl {ngl}")
        # CPU only: host holds everything, logits buffer on the host
        cpu = run(model, "--cpu", "--json")
        d = json.loads(cpu.stdout)
        check(d["requested"]["host"]["output"] == 4 * 32000, f"output buffer {d['requested']['host']}")
        human = run(model, "--gpu", "24GiB", "-c", "4096")
        check("llama.cpp flags: -c 4096 -ngl 999" in human.stdout, f"human: {human.stdout}")
        # default GPUs: the live GPUs of this host (gw_monitor), here NVIDIA's
        # library replaced by the project's fake NVML serving two GPUs
        lib = os.path.join(os.environ.get("GPUWATCH_BUILD_ROOT", ""), "tests", "nvml", "lib-full",
                           "libnvidia-ml.so.1")
        scn = os.path.join(os.environ.get("GPUWATCH_SOURCE_ROOT", ""), "tests", "nvml", "scenarios",
                           "two.scn")
        if os.path.exists(lib) and os.path.exists(scn):
            env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=scn)
            r = subprocess.run([GW, "fit", model, "--json", "--sources", "nvml", "--nvml-library", lib],
                               capture_output=True, text=True, errors="replace", env=env, timeout=60)
            d = json.loads(r.stdout) if r.stdout else {}
            devs = d.get("requested", {}).get("devices", [])
            check([x["free"] for x in devs] == [21128806400, 4139778048],
                  f"live GPUs: {r.returncode} {r.stderr} {devs}")
        else:
            print("note: fake NVML not built, live-GPU path not checked")
        host_cpu_checks(t)
        router_preset_checks(t)
    if fails:
        print("\n".join(fails))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    if not GW:
        sys.exit(1)
    sys.exit(main())
