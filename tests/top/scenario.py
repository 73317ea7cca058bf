"""The expected facts of a fake-NVML scenario (tests/nvml/SCENARIOS.md) as
`gpuwatch top` must show them. Its own reader of the scenario format; it
never looks at gpuwatch's code. Used by test_top.py."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "..", "nvml", "scenarios")
MIB = 1048576.0


def read(path):
    sc = {"gpus": [], "faults": []}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, val = line.partition(" ")
            val = val.strip()
            if key in ("fault", "slow", "hang"):
                sc["faults"].append((key, val))
            elif key == "gpu":
                sc["gpus"].append({"v": {}, "procs": []})
            elif sc["gpus"] and key == "process":
                w = val.split()
                sc["gpus"][-1]["procs"].append((w[0], int(w[1]), None if w[2] == "unavailable"
                                                 else int(w[2], 0)))
            elif sc["gpus"] and key in ("name", "uuid", "serial", "pci.bus_id"):
                sc["gpus"][-1]["v"][key] = val
            elif sc["gpus"] and val != "unsupported":
                try:
                    sc["gpus"][-1]["v"][key] = int(val.split()[0], 0)
                except ValueError:
                    pass
    return sc


def expected(gpu):
    """Plain-line facts of one GPU read through the full fake library."""
    v = gpu["v"]
    e = {"name": v.get("name", "(unnamed)")}
    e["util"] = "%d%%" % v["util.gpu"] if "util.gpu" in v and "util.memory" in v else "N/A"
    if all(k in v for k in ("memory.total", "memory.reserved", "memory.used", "memory.free")):
        used, total = v["memory.used"], v["memory.total"]
    elif "memory.total" in v and "memory.free" in v:
        used, total = v["memory.total"] - v["memory.free"], v["memory.total"]
    else:
        used = total = None
    e["mem"] = "N/A" if used is None else "%.0f/%.0fMiB" % (used / MIB, total / MIB)
    ok = (lambda k: k in v and v[k] < 1000000)
    e["temp"] = "%dC" % v["temp"] if ok("temp") else "N/A"
    e["slowdown"] = "%dC" % v["temp.slowdown"] if ok("temp.slowdown") else "N/A"
    e["power"] = "%.1fW" % (v["power.usage"] / 1000.0) if "power.usage" in v else "N/A"
    e["limit"] = "%.1fW" % (v["power.limit"] / 1000.0) if "power.limit" in v else "N/A"
    e["fan"] = "%d%%" % v["fan"] if "fan" in v else "N/A"
    e["pstate"] = "P%d" % v["pstate"] if 0 <= v.get("pstate", -1) <= 15 else "N/A"
    e["procs"] = str(len({pid for _, pid, _ in gpu["procs"]}))
    # the screen's shorter forms
    e["temp_screen"] = "%s/%s" % (e["temp"], e["slowdown"])
    e["power_screen"] = "%s/%s" % (
        "%.0fW" % (v["power.usage"] / 1000.0) if "power.usage" in v else "N/A",
        "%.0fW" % (v["power.limit"] / 1000.0) if "power.limit" in v else "N/A")
    return e


def bytes_short(n):
    """The process table's memory cell: 12G, 1.5G, 512M."""
    gib = 1024.0 ** 3
    if n >= 10 * gib:
        return "%.0fG" % (n / gib)
    if n >= gib:
        return "%.1fG" % (n / gib)
    return "%.0fM" % (n / MIB)
