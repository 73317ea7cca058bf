#!/usr/bin/env python3
"""test_amd_report.py — runs the real `gpuwatch report --json` on every AMD /
Intel fixture tree and compares each value with what the fixture files hold,
converted to the report's units (millidegrees -> Celsius, uW -> W, MHz/Hz ->
Hz, pwm 0-255 -> percent, KiB -> bytes).

Every fixture is copied to a temporary folder first and its pcie_bw files are
replaced by FIFOs: opening one would block, so a backend that touched pcie_bw
(which sleeps 1 s in the kernel) makes this test time out.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ.get("GPUWATCH_BIN", "gpuwatch")
SRC = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(SRC, "tests", "fixtures")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def eq(got, want, what):
    check(got == want, "%s: got %r, want %r" % (what, got, want))


def close(got, want, what, tol=1e-9):
    check(got is not None and abs(got - want) <= tol, "%s: got %r, want %r" % (what, got, want))


def read(path):
    with open(path) as f:
        return f.read()


def num(path):
    return int(read(path).split()[0], 0)


def opt(path):
    return num(path) if os.path.exists(path) else None


def copy_fixture(name, tmp):
    dst = os.path.join(tmp, name)
    shutil.copytree(os.path.join(FIX, name), dst, symlinks=True)
    for dirpath, _, files in os.walk(os.path.join(dst, "sys")):
        if "pcie_bw" in files:
            p = os.path.join(dirpath, "pcie_bw")
            os.remove(p)
            os.mkfifo(p)
    return dst


def report(root, extra=()):
    cmd = [BIN, "report", "--json", "--sys-root", os.path.join(root, "sys"),
           "--proc-root", os.path.join(root, "proc"), "--sources", "amdgpu,intel,host"] + list(extra)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if out.returncode not in (0, 3):
        print(out.stderr)
    check(out.returncode == 0, "%s exit status %d" % (" ".join(cmd), out.returncode))
    return json.loads(out.stdout)


def cards(root):
    """[(cardN, pci device folder)] as the kernel lays them out."""
    drm = os.path.join(root, "sys", "class", "drm")
    res = []
    for name in sorted(os.listdir(drm)):
        if name.startswith("card") and name[4:].isdigit():
            res.append((int(name[4:]), os.path.realpath(os.path.join(drm, name, "device"))))
    return res


def hwmon(dev):
    d = os.path.join(dev, "hwmon")
    if not os.path.isdir(d):
        return None
    return os.path.join(d, sorted(os.listdir(d))[0])


def labelled(h, label):
    for n in range(1, 9):
        p = os.path.join(h, "temp%d_label" % n)
        if os.path.exists(p) and read(p).strip() == label:
            return n
    return None


def dpm(path, star):
    best = None
    for line in read(path).splitlines():
        if ":" not in line or line.startswith("S:"):
            continue
        mhz = int(line.split(":")[1].strip().split("Mhz")[0])
        if star and "*" in line:
            return mhz
        if not star and (best is None or mhz > best):
            best = mhz
    return best


def check_amd_device(d, dev, what):
    h = hwmon(dev)
    m, t, p, c = d["memory"], d["temperature"], d["power"], d["clocks"]
    eq(d["vendor"], "amd", what + " vendor")
    eq(d["source"], "amdgpu", what + " source")
    eq(d["pci_bus_id"], os.path.basename(dev), what + " pci_bus_id")
    sysroot = dev.split("/sys/devices/")[0] + "/sys"
    mod = os.path.join(sysroot, "module/amdgpu/version")
    eq(d["driver_version"], read(mod if os.path.exists(mod) else
                                 os.path.join(os.path.dirname(sysroot), "proc/sys/kernel/osrelease")).strip(),
       what + " driver version")
    apu = h is not None and os.path.exists(os.path.join(h, "in1_label")) and \
        read(os.path.join(h, "in1_label")).strip() == "vddnb"
    vt, vu = num(os.path.join(dev, "mem_info_vram_total")), num(os.path.join(dev, "mem_info_vram_used"))
    gt, gu = num(os.path.join(dev, "mem_info_gtt_total")), num(os.path.join(dev, "mem_info_gtt_used"))
    total, used = (vt + gt, vu + gu) if apu else (vt, vu)
    eq(d["memory_api"], "gtt" if apu else "sysfs", what + " memory_api")
    eq(m["total_bytes"], total, what + " memory total")
    eq(m["used_bytes"], used, what + " memory used")
    eq(m["free_bytes"], total - used, what + " memory free")
    eq(m["gtt_total_bytes"], gt, what + " gtt total")
    eq(m["gtt_used_bytes"], gu, what + " gtt used")
    eq(m["visible_vram_total_bytes"], num(os.path.join(dev, "mem_info_vis_vram_total")), what + " vis")
    eq(m["visible_vram_used_bytes"], num(os.path.join(dev, "mem_info_vis_vram_used")), what + " vis used")
    eq(d["utilization"]["gpu_percent"], opt(os.path.join(dev, "gpu_busy_percent")), what + " gpu %")
    eq(d["utilization"]["memory_percent"], opt(os.path.join(dev, "mem_busy_percent")), what + " mem %")
    eq(d["utilization"]["encoder_percent"], None, what + " one-shot: no derived encoder %")
    eq(d["utilization"]["decoder_percent"], None, what + " one-shot: no derived decoder %")
    name = read(os.path.join(dev, "product_name")).strip() if os.path.exists(
        os.path.join(dev, "product_name")) else "AMD GPU [1002:%04x]" % num(os.path.join(dev, "device"))
    eq(d["name"], name, what + " name")
    uid = os.path.join(dev, "unique_id")
    eq(d["uuid"], read(uid).strip() if os.path.exists(uid) else None, what + " uuid")
    # clocks: hwmon Hz, else the starred pp_dpm line (MHz)
    for key, freq, table in (("graphics_hz", "freq1_input", "pp_dpm_sclk"),
                             ("memory_hz", "freq2_input", "pp_dpm_mclk")):
        f = os.path.join(h, freq) if h else None
        if f and os.path.exists(f):
            want = round(num(f) / 1e6) * 1000000
        elif os.path.exists(os.path.join(dev, table)):
            want = dpm(os.path.join(dev, table), True) * 1000000
        else:
            want = None
        eq(c[key], want, what + " " + key)
    eq(c["max_graphics_hz"], dpm(os.path.join(dev, "pp_dpm_sclk"), False) * 1000000, what + " max sclk")
    ras = os.path.join(dev, "ras", "umc_err_count")
    counts = dict(line.split(": ") for line in read(ras).splitlines()) if os.path.exists(ras) else {}
    eq(d["health"]["ecc_uncorrected"], int(counts["ue"]) if counts else None, what + " ECC ue")
    eq(d["health"]["ecc_corrected"], int(counts["ce"]) if counts else None, what + " ECC ce")
    eq(d["health"]["xid_last"], None, what + " no Xid on AMD")
    if h is None:
        return
    edge, junc, mem = labelled(h, "edge"), labelled(h, "junction"), labelled(h, "mem")

    def temp(n, suffix="input"):
        return num(os.path.join(h, "temp%d_%s" % (n, suffix))) / 1000.0 if n and os.path.exists(
            os.path.join(h, "temp%d_%s" % (n, suffix))) else None
    eq(t["gpu_celsius"], temp(edge) if edge else temp(junc), what + " gpu temp")
    eq(t["junction_celsius"], temp(junc), what + " junction temp")
    eq(t["memory_celsius"], temp(mem), what + " memory temp")
    eq(t["slowdown_celsius"], temp(edge, "crit") if temp(edge, "crit") is not None else temp(junc, "crit"),
       what + " slowdown")
    eq(t["shutdown_celsius"], temp(edge, "emergency") if temp(edge, "emergency") is not None
       else temp(junc, "emergency"), what + " shutdown")
    eq(t["memory_max_celsius"], temp(mem, "crit"), what + " memory max")
    pw = opt(os.path.join(h, "power1_average"))
    if pw is None:
        pw = opt(os.path.join(h, "power1_input"))
    eq(p["draw_watts"], None if pw is None else (pw // 1000) / 1000.0, what + " power")
    cap = opt(os.path.join(h, "power1_cap"))
    eq(p["limit_watts"], None if cap is None else (cap // 1000) / 1000.0, what + " power cap")
    eq(d["fan"]["rpm"], opt(os.path.join(h, "fan1_input")), what + " fan rpm")
    pwm = opt(os.path.join(h, "pwm1"))
    if pwm is None:
        eq(d["fan"]["speed_percent"], None, what + " fan %")
    else:
        close(d["fan"]["speed_percent"], pwm * 100.0 / 255.0, what + " fan %")


def fdinfo_clients(root, drivers):
    """Independent reading of the fixture fdinfo: {(pdev, id): (lowest pid, keys)}."""
    proc = os.path.join(root, "proc")
    clients = {}
    for pid in sorted(int(p) for p in os.listdir(proc) if p.isdigit()):
        fd_dir = os.path.join(proc, str(pid), "fd")
        for fd in sorted(os.listdir(fd_dir), key=int):
            if not os.readlink(os.path.join(fd_dir, fd)).startswith("/dev/dri/"):
                continue
            keys = {}
            for line in read(os.path.join(proc, str(pid), "fdinfo", fd)).splitlines():
                k, _, v = line.partition(":")
                keys[k] = v.strip()
            drv = keys.get("drm-driver", "amdgpu" if "pdev" in keys else None)
            if drv not in drivers:
                continue
            pdev = keys.get("drm-pdev", keys.get("pdev"))
            cid = keys.get("drm-client-id", keys.get("pasid"))
            clients.setdefault((pdev, cid), (pid, keys))
    return clients


def kib(v):
    n, _, unit = v.partition(" ")
    return int(n) * {"": 1, "KiB": 1024, "kB": 1024, "MiB": 1 << 20}[unit.strip()]


def region(keys, names):
    for prefix in ("drm-resident-", "drm-memory-", "drm-total-"):
        for n in names:
            if prefix + n in keys:
                return kib(keys[prefix + n])
    for legacy in names:
        if legacy + " mem" in keys:
            return kib(keys[legacy + " mem"])
    return None


def check_processes(doc, root, drivers, vram_names, gtt_names, what):
    devs = {d["pci_bus_id"]: d["index"] for d in doc["devices"]}
    want = {}
    for (pdev, _), (pid, keys) in fdinfo_clients(root, drivers).items():
        key = (pid, devs[pdev])
        v, g = region(keys, vram_names), region(keys, gtt_names)
        cur = want.setdefault(key, [None, None])
        if v is not None:
            cur[0] = (cur[0] or 0) + v
        if g is not None:
            cur[1] = (cur[1] or 0) + g
    got = {(p["pid"], p["device_index"]): p for p in doc["processes"]}
    eq(sorted(got), sorted(want), what + " processes (pid, device)")
    for key, (v, g) in want.items():
        p = got.get(key)
        if not p:
            continue
        eq(p["gpu_memory_bytes"], v, "%s pid %d gpu memory" % (what, key[0]))
        eq(p["gtt_memory_bytes"], g, "%s pid %d gtt memory" % (what, key[0]))
        eq(p["sm_percent"], None, "%s pid %d busy on a one-shot report" % (what, key[0]))
        eq(p["name"], read(os.path.join(root, "proc", str(key[0]), "comm")).strip(),
           "%s pid %d name" % (what, key[0]))


def client_list(rows):
    """A debugfs dri/<pci>/clients file in the kernel's column layout."""
    out = ["%20s %5s %3s master a %5s %10s %64s %20s" % ("command", "tgid", "dev", "uid", "magic",
                                                        "name", "id")]
    for comm, pid, minor, cid in rows:
        out.append("%20s %5d %3d   n    y  1000          0 %64s %20d" % (comm, pid, minor,
                                                                       "<unset>", cid))
    return "\n".join(out) + "\n"


def check_client_lists(tmp, plain):
    """two_amd as root sees it, with the kernel's DRM client lists under
    sys/kernel/debug: the first look lists only the processes named there,
    and the report is the one that listing every process gives."""
    root = copy_fixture("two_amd", os.path.join(tmp, "lists"))
    dri = os.path.join(root, "sys", "kernel", "debug", "dri")
    lists = {"0000:03:00.0": [("trainer", 100, 128, 21), ("game", 300, 128, 41)],
             "0000:43:00.0": [("trainer", 100, 129, 31), ("oldtool", 400, 129, 7)]}
    for minor, (pci, rows) in zip((0, 1), sorted(lists.items())):
        os.makedirs(os.path.join(dri, pci))
        with open(os.path.join(dri, pci, "clients"), "w") as f:
            f.write(client_list(rows))
        os.symlink(pci, os.path.join(dri, str(minor)))
    doc = report(root)
    eq(doc["processes"], plain["processes"], "two_amd with client lists: same processes")
    # the lists are what is read: a process they do not name is not listed
    # on the first look (it is on its back-off listing, within 30 s)
    with open(os.path.join(dri, "0000:03:00.0", "clients"), "w") as f:
        f.write(client_list(lists["0000:03:00.0"][:1]))
    doc = report(root)
    pids = sorted((p["pid"], p["device_index"]) for p in doc["processes"])
    eq(pids, [(100, 0), (100, 1), (400, 1)], "two_amd: only the listed processes on the first look")


def source(doc, name):
    return next(s for s in doc["sources"] if s["name"] == name)


def main():
    tmp = tempfile.mkdtemp(prefix="gw_amd_report_")
    try:
        for name in ("rdna3", "mi300", "apu", "two_amd", "oldkernel"):
            root = copy_fixture(name, tmp)
            doc = report(root)
            cs = cards(root)
            eq(len(doc["devices"]), len(cs), name + " device count")
            eq(doc["cpu_only"], False, name + " cpu_only")
            for (n, dev), d in zip(cs, doc["devices"]):
                eq(d["source_index"], n, name + " source_index")
                check_amd_device(d, dev, "%s card%d" % (name, n))
            check_processes(doc, root, ("amdgpu",), ("vram",), ("gtt",), name)
            eq(source(doc, "amdgpu")["state"], "ok", name + " amdgpu state")
            eq(source(doc, "intel")["state"], "unavailable", name + " intel state")
        doc = report(os.path.join(tmp, "oldkernel"))
        check("no drm-* keys" in source(doc, "amdgpu")["message"], "old kernel said plainly")
        doc = report(os.path.join(tmp, "two_amd"))
        pids = sorted((p["pid"], p["device_index"]) for p in doc["processes"])
        eq(pids, [(100, 0), (100, 1), (300, 0), (400, 1)], "two_amd: dedupe and matching by pdev")
        check_client_lists(tmp, doc)
        doc = report(os.path.join(tmp, "rdna3"), ["--no-processes"])
        eq(doc["processes"], [], "--no-processes")

        for name, drv in (("arc_xe", "xe"), ("igpu_i915", "i915")):
            root = copy_fixture(name, tmp)
            doc = report(root)
            (n, dev), = cards(root)
            d = doc["devices"][0]
            what = name
            eq(d["vendor"], "intel", what + " vendor")
            eq(d["source"], "intel", what + " source")
            eq(d["pci_bus_id"], os.path.basename(dev), what + " pci id")
            check(d["name"].endswith("(%s)" % drv), what + " names its driver")
            eq(d["driver_version"], read(os.path.join(root, "proc/sys/kernel/osrelease")).strip(),
               what + " driver version (in-tree: kernel release)")
            if drv == "xe":
                f = os.path.join(dev, "tile0/gt0/freq0")
                act, mx = num(os.path.join(f, "act_freq")), num(os.path.join(f, "max_freq"))
                total = num(os.path.join(dev, "tile0/physical_vram_size_bytes"))
            else:
                c = os.path.join(dev, "drm", "card%d" % n)
                act, mx = num(os.path.join(c, "gt_act_freq_mhz")), num(os.path.join(c, "gt_max_freq_mhz"))
                total = None
            eq(d["clocks"]["graphics_hz"], act * 1000000, what + " clock")
            eq(d["clocks"]["max_graphics_hz"], mx * 1000000, what + " max clock")
            eq(d["memory"]["total_bytes"], total, what + " vram total")
            clients = fdinfo_clients(root, (drv,))
            vram = sum(region(k, ("vram0", "local0")) or 0 for _, k in clients.values())
            gtt = sum(region(k, ("gtt", "system0")) or 0 for _, k in clients.values())
            eq(d["memory"]["used_bytes"], vram if total else None, what + " used from fdinfo")
            eq(d["memory"]["gtt_used_bytes"], gtt, what + " gtt from fdinfo")
            eq(d["utilization"]["gpu_percent"], None, what + " one-shot: no derived busy %")
            h = hwmon(dev)
            if h:
                eq(d["temperature"]["gpu_celsius"], num(os.path.join(h, "temp%d_input" % labelled(h, "pkg"))) / 1000.0,
                   what + " temp")
                eq(d["power"]["energy_joules"], (num(os.path.join(h, "energy1_input")) // 1000) / 1000.0,
                   what + " energy")
                eq(d["power"]["draw_watts"], None, what + " one-shot: no power from energy")
                eq(d["power"]["limit_watts"], (num(os.path.join(h, "power1_max")) // 1000) / 1000.0,
                   what + " power limit")
            else:
                eq(d["temperature"]["gpu_celsius"], None, what + " no hwmon: no temp")
            check_processes(doc, root, (drv,), ("vram0", "local0"), ("gtt", "system0"), what)
            check("derived from DRM fdinfo clients" in source(doc, "intel")["message"], what + " says derived")
            eq(source(doc, "amdgpu")["state"], "unavailable", what + " amdgpu absent")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
