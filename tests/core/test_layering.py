"""test_layering.py — the module graph of src/ (docs/ARCHITECTURE.md): a
module is a folder of src/, and a module depends on another when one of its
files includes "other/...". Checks that core depends on no other module,
that backends depend on core only, and that the graph has no cycle (a cycle
names its modules and the files that close it).

Environment (meson): GPUWATCH_SOURCE_ROOT.
"""
import os
import re
import sys

SRC = os.path.join(os.environ["GPUWATCH_SOURCE_ROOT"], "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def graph():
    deps, why = {}, {}
    for mod in sorted(os.listdir(SRC)):
        folder = os.path.join(SRC, mod)
        if not os.path.isdir(folder):
            continue
        deps[mod] = set()
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(folder, name)) as f:
                for other in INCLUDE.findall(f.read()):
                    if other != mod:
                        deps[mod].add(other)
                        why.setdefault((mod, other), "src/%s/%s" % (mod, name))
    return deps, why


def find_cycle(deps):
    state, path = {}, []

    def visit(u):
        state[u] = "open"
        path.append(u)
        for v in sorted(deps.get(u, ())):
            if state.get(v) == "open":
                return path[path.index(v):] + [v]
            if v not in state:
                c = visit(v)
                if c:
                    return c
        state[u] = "done"
        path.pop()
        return None

    for u in sorted(deps):
        if u not in state:
            c = visit(u)
            if c:
                return c
    return None


def main():
    deps, why = graph()
    fails = []
    if len(deps) < 10:
        fails.append("only %d modules found under %s" % (len(deps), SRC))
    for mod, allowed in (("core", set()), ("backends", {"core"})):
        extra = deps.get(mod, set()) - allowed
        if extra:
            fails.append("%s depends on %s (%s)" % (mod, ", ".join(sorted(extra)), ", ".join(
                why[(mod, o)] for o in sorted(extra))))
    cycle = find_cycle(deps)
    if cycle:
        fails.append("cycle: %s (%s)" % (" -> ".join(cycle), ", ".join(
            why[(a, b)] for a, b in zip(cycle, cycle[1:]))))
    for f in fails:
        print("FAIL:", f)
    print("%d passed, %d failed" % (0 if fails else 1, 1 if fails else 0))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
