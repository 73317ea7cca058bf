#!/usr/bin/env python3
"""Every command accepts `--opt=value` and `--opt value` alike (issue 12:
`serve --listen=HOST:PORT` exited 2 while `--sources=X` worked).

The commands come from `gpuwatch --help`, each command's options from its
own table (`gpuwatch CMD --list-options`, printed by the shared scanner),
cross-checked against its --help text: every option the help names is in
the table. Then, for every valued option of every command, both spellings
followed by an unknown option must end at that unknown option with the
same message (the value was taken in both forms, nothing ran). Flags given
a value (`--json=1`) are refused. No hard-coded list of options here.

Against a binary without --list-options (before the fix) the valued
options are read from the help lines instead, so the form check still runs
and shows which spellings fail."""
import os, re, subprocess, sys

BIN = os.environ["GPUWATCH_BIN"]
failures = []
UNKNOWN = "--zz-not-an-option"

# Words in a help text that look like options but are another program's:
# llama.cpp's, named where fit explains --host-cpu and run the flags it adds.
NOT_OURS = {"fit": {"--no-repack"}, "run": {"--tensor-split"}}


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env["GPUWATCH_DAEMON"] = "http://127.0.0.1:1"  # never a real daemon
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


# A value of the kind the metavar says, so the scan goes on past it.
SAMPLE = {"SIZE": "1GiB", "N": "1", "SEC": "1", "SECONDS": "1", "MS": "100",
          "PATH": "/nonexistent", "DIR": "/nonexistent", "FILE": "/nonexistent",
          "FILE.gguf": "/nonexistent.gguf", "LIST": "host", "URL": "http://127.0.0.1:1",
          "URL[,URL]": "http://127.0.0.1:1", "TOKEN": "t", "KEY": "k", "NAME": "n", "HOST:PORT": "127.0.0.1:1",
          "KEY=VALUE": "interval_ms=5", "P": "spread", "C": "80", "SPEC": "8GiB",
          "VARIANT": "x64", "T": "f16", "on|off|auto": "on", "none|layer|row": "layer",
          "A,B": "1,1", "LEVEL": "info"}


def commands():
    r = run("--help")
    out = r.stdout.split("Commands:")[1].split("\n\n")[0]
    return [line.split()[0] for line in out.strip().splitlines()]


def table(cmd):
    """[(name, alias or None, value or None)] from --list-options, or None."""
    r = run(cmd, "--list-options")
    if r.returncode != 0:
        return None
    rows = []
    for line in r.stdout.splitlines():
        name, alias, value = line.split("\t")
        rows.append((name, None if alias == "-" else alias, None if value == "-" else value))
    return rows


def from_help(text):
    """Valued options from option lines "  [-x, ]--name VALUE   text"."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"  (?:-[a-z]+, )?(--[a-z][a-z0-9-]*) (\S+)", line)
        if m and not m.group(2).startswith("-"):
            rows.append((m.group(1), None, m.group(2)))
    return rows


def forms(cmd, name, value):
    a = run(cmd, "%s=%s" % (name, value), UNKNOWN)
    b = run(cmd, name, value, UNKNOWN)
    what = "%s %s=%s vs %s %s" % (cmd, name, value, name, value)
    check(a.returncode == b.returncode == 2, "%s: exit %d / %d (%s)" % (what, a.returncode,
                                                                          b.returncode, a.stderr))
    check(a.stderr == b.stderr, "%s: different messages:\n  %s  %s" % (what, a.stderr, b.stderr))
    check(UNKNOWN in a.stderr, "%s: the scan did not reach the next option: %s" % (what, a.stderr))


cmds = commands()
check({"report", "serve", "place", "run", "fit", "gguf"} <= set(cmds), "commands %r" % cmds)
tested = 0
for cmd in cmds:
    help_text = run(cmd, "--help").stdout
    rows = table(cmd)
    check(rows is not None, "%s --list-options: no option table" % cmd)
    if rows is None:
        rows = from_help(help_text)
    else:
        known = {n for n, _, _ in rows} | {a for _, a, _ in rows if a}
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)) - NOT_OURS.get(cmd, set())
        check(named <= known, "%s: --help names options its table lacks: %s"
              % (cmd, sorted(named - known)))
        for name, alias, value in rows:
            if value is None and name != "--help":
                r = run(cmd, name + "=1")
                check(r.returncode == 2 and "takes no value" in r.stderr,
                      "%s %s=1: %d %s" % (cmd, name, r.returncode, r.stderr))
    for name, alias, value in rows:
        if value is None:
            continue
        v = SAMPLE.get(value, "1")
        forms(cmd, name, v)
        if alias:
            forms(cmd, alias, v)
        tested += 1
check(tested >= 40, "only %d valued options found" % tested)

# The issue's own example, end to end.
r = run("serve", "--listen=127.0.0.1:1234", "--print-config")
check(r.returncode == 0 and "listen = 127.0.0.1:1234\n" in r.stdout,
      "serve --listen=HOST:PORT: %d %s" % (r.returncode, r.stderr))

print("%d valued options in both forms" % tested)
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
