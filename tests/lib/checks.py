"""checks.py — what the script-style tests of tests/lib share: a failure
list that does not stop at the first check, a command runner that shows a
failed command's output, and the summary line.
"""
import shlex
import subprocess
import sys

failures = []


def check(cond, msg):
    """Records msg as a failure when cond is false; returns cond."""
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def run(cmd, **kw):
    """Runs cmd (list) with captured text output and a 300 s deadline; a
    non-zero exit is printed with the end of its output."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    if r.returncode:
        print("$", " ".join(map(shlex.quote, cmd)), "->", r.returncode, r.stdout[-2000:],
              r.stderr[-2000:])
    return r


def finish():
    """Prints the suite's summary line and exits non-zero on any failure."""
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    sys.exit(1 if failures else 0)
