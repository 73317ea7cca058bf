#!/usr/bin/env python3
"""`serve --print-config` round-trips (issue 12: it printed the token as
`token = (set)`, and that output loaded as a config made the token the
literal "(set)"). `serve --config <(serve ... --print-config) --print-config`
prints the same text for the defaults, other keys, a token from token_file
and a token from the environment; a token set inline is never printed and
its line is a comment that says so; no output ever holds a token line a
config would read back as a token."""
import os, subprocess, sys, tempfile

BIN = os.environ["GPUWATCH_BIN"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


BASE = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}


def round_trip(args, env=None):
    """(first print, print of the first loaded as --config) via bash's <(...)."""
    e = dict(BASE)
    e.update(env or {})
    e["GW"] = BIN
    q = " ".join("'%s'" % a for a in args)
    first = subprocess.run(["bash", "-c", '"$GW" serve --config /dev/null %s --print-config' % q],
                           capture_output=True, text=True, env=e, timeout=60)
    second = subprocess.run(["bash", "-c", '"$GW" serve --config <("$GW" serve --config /dev/null '
                             '%s --print-config) --print-config' % q],
                            capture_output=True, text=True, env=e, timeout=60)
    check(first.returncode == 0, "%s: %s" % (args, first.stderr))
    return first.stdout, second


def token_lines(text):
    return [l for l in text.splitlines() if l.split("=")[0].strip() == "token"]


with tempfile.TemporaryDirectory() as tmp:
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    for args, env in (([], None),
                      (["--set", "interval_ms=250", "--metrics-compat=dcgm", "--set",
                        "placement_margin=512MiB", "--log-level", "debug"], None),
                      (["--token-file", tok, "--listen=0.0.0.0:19400"], None),
                      ([], {"GPUWATCH_TOKEN": "s3cret-token"})):
        first, second = round_trip(args, env)
        check(second.returncode == 0 and second.stdout == first,
              "%s %s: not the same after loading:\n%s\n---\n%s%s"
              % (args, env, first, second.stdout, second.stderr))
        check("s3cret" not in first, "%s: the token is printed" % args)
        check(all(l.split("=", 1)[1].strip() == "" for l in token_lines(first)),
              "%s: a token line a config would load: %r" % (args, token_lines(first)))
    first, second = round_trip(["--set", "token=s3cret-token"])
    check("s3cret" not in first and "(set)" not in first.replace("(set, not printed", ""),
          "inline token printed: %r" % first)
    check("# token = (set, not printed" in first, "inline token: no comment saying so: %r" % first)
    check(token_lines(first) == [] and token_lines(second.stdout) == ["token = "],
          "inline token: loads as no token: %r / %r" % (token_lines(first), second.stdout))

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
