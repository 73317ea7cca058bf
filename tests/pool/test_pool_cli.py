#!/usr/bin/env python3
"""test_pool_cli.py — `gpuwatch pool`'s configuration and access rules.

- every key --print-config prints is documented in docs/pool.md (and the
  keys there are the ones the binary knows);
- --print-config's output loads again and prints the same (round trip);
- precedence: file < GPUWATCH_POOL_<KEY> < --set / flags;
- models from --models-dir (mmproj files left out), MODEL.gguf arguments and
  sections; errors name the file and line, the key, the model;
- beyond loopback without a token: refused; with a token: 401 without it,
  200 with it, /health open.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402
import pool_util as pu  # noqa: E402
from pool_util import check  # noqa: E402

ROOT = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(HERE, "..", ".."))


def run(args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_POOL_")}
    e.update(env or {})
    return subprocess.run([pu.BIN, "pool"] + args, capture_output=True, text=True, env=e)


def keys_of(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("[") or "=" not in line:
            if line.startswith("["):
                break
            continue
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def main():
    tmp = pu.tempdir()
    models = os.path.join(tmp, "models")
    os.mkdir(models)
    for name in ("a", "b", "mmproj-a"):
        inference.write_tiny_model(os.path.join(models, name + ".gguf"), seed=1)
    extra = os.path.join(tmp, "extra.gguf")
    inference.write_tiny_model(extra, seed=2)

    r = run(["--help"])
    check(r.returncode == 0 and "usage: gpuwatch pool" in r.stdout, "--help")

    r = run(["--models-dir", models, "--print-config"])
    printed = keys_of(r.stdout)
    with open(os.path.join(ROOT, "docs", "pool.md")) as f:
        doc = f.read()
    section = doc.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    check(r.returncode == 0 and set(printed) == table,
          "docs/pool.md documents exactly the keys --print-config prints (missing %s, extra %s)"
          % (sorted(set(printed) - table), sorted(table - set(printed))))
    names = re.findall(r"^\[(.+)\]$", r.stdout, re.M)
    check(names == ["a", "b"], "models from --models-dir, mmproj left out: %s" % names)

    conf = os.path.join(tmp, "round.conf")
    with open(conf, "w") as f:
        f.write(r.stdout)
    r2 = run(["-c", conf, "--print-config"])
    check(r2.returncode == 0 and r2.stdout == r.stdout, "--print-config output loads and "
          "prints the same")

    base = os.path.join(tmp, "base.conf")
    with open(base, "w") as f:
        f.write("idle_ttl_s = 100\nqueue_max = 7\nctx = 2048\n[x]\nmodel = %s\nctx = 8192\n"
                "pinned = true\n" % extra)
    r = run(["-c", base, "--set", "queue_max=9", "--print-config", models + "/a.gguf"],
            env={"GPUWATCH_POOL_IDLE_TTL_S": "200", "GPUWATCH_POOL_QUEUE_MAX": "8"})
    k = keys_of(r.stdout)
    check(k.get("idle_ttl_s") == "200" and k.get("queue_max") == "9" and k.get("ctx") == "2048",
          "file < environment < --set (idle_ttl_s %s, queue_max %s)" % (k.get("idle_ttl_s"),
                                                                      k.get("queue_max")))
    sect = r.stdout.split("[x]")[1] if "[x]" in r.stdout else ""
    check("ctx = 8192" in sect and "pinned = true" in sect and "[a]" in r.stdout,
          "a section's own keys, and a MODEL.gguf argument as a model")

    bad = [("nope = 1\n", "pool.conf:2: unknown key 'nope'"),
           ("idle_ttl_s = soon\n", "idle_ttl_s = 'soon'"),
           ("[x]\nmodel = %s\n[x]\nmodel = %s\n" % (extra, extra), "model [x] given twice"),
           ("[y]\nctx = 5\n", "model [y]: no 'model = PATH'"),
           ("[y]\nmodel = /nonexistent.gguf\n", "model [y]: /nonexistent.gguf"),
           ("[y]\nmodel = %s\nwhat = 1\n" % extra, "model [y]: unknown key 'what'"),
           ("command = srv {bogus}\n[y]\nmodel = %s\n" % extra, "unknown placeholder"),
           ("gpu_allocation_strategy = random\n", "single_gpu_first, spread or pack"),
           ("[bad name]\n", "bad model name"),
           ("queue_max = 0\n", "queue_max = '0'")]
    for text, want in bad:
        p = os.path.join(tmp, "pool.conf")
        with open(p, "w") as f:
            f.write("# a comment\n" + text)
        r = run(["-c", p, "--print-config"])
        check(r.returncode == 2 and want in r.stderr,
              "bad config refused naming it: %r -> %s" % (want, r.stderr.strip()[:160]))
    r = run(["--print-config"])
    check(r.returncode == 2 and "no models" in r.stderr, "no models: usage error")

    r = run(["--listen", "0.0.0.0:%d" % pu.free_port(), extra])
    check(r.returncode == 2 and "beyond loopback" in r.stderr and "token_file" in r.stderr,
          "listening beyond loopback without a token is refused")

    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("s3cret\n")
    sub = os.path.join(tmp, "auth")
    os.mkdir(sub)
    pool = pu.Pool(sub, "token_file = %s\ncommand = %s\n[m]\nmodel = %s\n"
                   % (token, pu.fault_command(), extra),
                   os.path.join(ROOT, "tests", "serve", "scenarios", "two.scn"))
    try:
        st, _, _ = pool.json("GET", "/health")
        check(st == 200, "/health needs no token")
        st, _, body = pool.chat("m")
        check(st == 401, "a request without the token: 401 (%s)" % st)
        st, _, _ = pool.chat("m", headers={"Authorization": "Bearer wrong"})
        check(st == 401, "a wrong token: 401")
        st, _, _ = pool.chat("m", headers={"Authorization": "Bearer s3cret"})
        check(st == 200, "the token: 200 (%s)" % st)
    finally:
        pool.stop()
    pu.finish()


if __name__ == "__main__":
    main()
