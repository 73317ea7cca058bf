#!/usr/bin/env python3
"""MIG (docs/mig.md) on the fake NVML library: the MIG devices of the
scenario files (read here, never from gpuwatch) in `report` (text and
JSON), the daemon's API and /metrics (promtool clean, native and
dcgm-exporter labels), placement on MIG devices (fits on one, refused
naming the largest, never two), `run` with the MIG UUID, reservations per
MIG device, a mixed host, and a driver without the MIG entry points.

    test_mig.py CASE     CASE: report | vendors | daemon | place | olddriver
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(SRC, "tests", "serve"))
import serve_util as su  # noqa: E402
from serve_util import check  # noqa: E402

BIN = os.environ.get("GPUWATCH_BIN", "gpuwatch")
BUILD = os.path.abspath(os.environ.get("GPUWATCH_BUILD_ROOT", "."))
LIB = {v: os.path.join(BUILD, "tests", "nvml", "lib-" + v, "libnvidia-ml.so.1")
       for v in ("full", "v1")}
SCN = os.path.join(HERE, "scenarios")
A100, H100, MIXED = (os.path.join(SCN, n + ".scn") for n in ("mig_a100", "mig_h100", "mig_mixed"))
MIB, GIB = 1 << 20, 1 << 30


def scenario(path):
    """[{name, uuid, mig (bool), mig_pending, used, migs: [...], procs: [(pid, mem, gi, ci)]}]
    from the file itself."""
    gpus = []
    for line in open(path):
        w = line.split()
        if not w or w[0].startswith("#"):
            continue
        if w[0] == "gpu":
            gpus.append({"migs": [], "procs": [], "mig": None, "mig_pending": None})
        elif not gpus:
            continue
        elif w[0] in ("name", "uuid"):
            gpus[-1][w[0]] = line.split(None, 1)[1].strip()
        elif w[0] == "mig":
            gpus[-1]["mig"] = w[1] == "1"
        elif w[0] == "mig.pending":
            gpus[-1]["mig_pending"] = w[1] == "1"
        elif w[0] == "memory.used":
            gpus[-1]["used"] = int(w[1])
        elif w[0] == "memory.free":
            gpus[-1]["total_free"] = int(w[1])
        elif w[0] == "mig.device":
            m = {"uuid": w[1], "gi": int(w[2]), "ci": int(w[3]), "profile": w[4],
                 "total": int(w[5]), "used": int(w[6])}
            if len(w) == 10:
                m.update(sms=int(w[7]), gis=int(w[8]), cis=int(w[9]))
            gpus[-1]["migs"].append(m)
        elif w[0] == "process":
            gi, ci = (int(w[4]), int(w[5])) if len(w) == 6 else (None, None)
            gpus[-1]["procs"].append((int(w[2]), int(w[3]), gi, ci))
    for g in gpus:
        if g["mig_pending"] is None:
            g["mig_pending"] = g["mig"]
    return gpus


def expected_devices(gpus):
    """(whole GPUs, MIG devices) in snapshot order: every GPU first (its NVML
    index), then the MIG devices of each, in order."""
    migs = []
    for gi, g in enumerate(gpus):
        if g["mig"]:
            for m in g["migs"]:
                migs.append(dict(m, parent=gi, index=len(gpus) + len(migs)))
    return migs


def env(path, lib="full"):
    e = dict(os.environ)
    e["GPUWATCH_NVML_LIBRARY"] = LIB[lib]
    e["GPUWATCH_FAKE_NVML_SCENARIO"] = path
    return e


def report(path, lib="full", json_out=True):
    cmd = [BIN, "report", "--sources", "nvml"] + (["--json"] if json_out else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env(path, lib), timeout=60)
    check(r.returncode == 0, "%s on %s: exit %d: %s" % (cmd, path, r.returncode, r.stderr))
    return json.loads(r.stdout) if json_out else r.stdout


def check_report(path):
    gpus = scenario(path)
    migs = expected_devices(gpus)
    doc = report(path)
    name = os.path.basename(path)
    check(doc["schema"] == "gpuwatch.report/2", "%s: schema %r" % (name, doc["schema"]))
    devs = doc["devices"]
    check(len(devs) == len(gpus) + len(migs), "%s: %d devices, want %d GPUs + %d MIG"
          % (name, len(devs), len(gpus), len(migs)))
    for i, g in enumerate(gpus):
        d = devs[i]
        check(d["uuid"] == g["uuid"] and d["mig"] is None, "%s GPU %d: %r" % (name, i, d["uuid"]))
        check(d["mig_enabled"] is g["mig"] and d["mig_pending_enabled"] is g["mig_pending"],
              "%s GPU %d: mig %r pending %r" % (name, i, d["mig_enabled"], d["mig_pending_enabled"]))
    for m in migs:
        d = devs[m["index"]]
        p = gpus[m["parent"]]
        what = "%s MIG %s" % (name, m["uuid"])
        check(d["uuid"] == m["uuid"], "%s: uuid %r at index %d" % (what, d["uuid"], m["index"]))
        check(d["name"] == p["name"] + " MIG " + m["profile"], "%s: name %r" % (what, d["name"]))
        x = d["mig"]
        check(x and x["parent_index"] == m["parent"] and x["parent_uuid"] == p["uuid"]
              and x["gpu_instance_id"] == m["gi"] and x["compute_instance_id"] == m["ci"]
              and x["profile"] == m["profile"], "%s: mig %r" % (what, x))
        if "sms" in m:
            check(x["sm_count"] == m["sms"] and x["gpu_instance_slices"] == m["gis"]
                  and x["compute_instance_slices"] == m["cis"], "%s: slices %r" % (what, x))
        mem = d["memory"]
        check(mem["total_bytes"] == m["total"] and mem["used_bytes"] == m["used"]
              and mem["free_bytes"] == m["total"] - m["used"], "%s: memory %r" % (what, mem))
        check(d["utilization"]["gpu_percent"] is None, "%s: utilisation %r (the fake has none: "
              "N/A)" % (what, d["utilization"]))
        # the processes of its GPU and compute instance, on it
        want = sorted((pid, mem_) for pid, mem_, gi, ci in p["procs"] if (gi, ci) == (m["gi"], m["ci"]))
        got = sorted((q["pid"], q["gpu_memory_bytes"]) for q in doc["processes"]
                     if q["device_index"] == m["index"])
        check(got == want, "%s: processes %r, want %r" % (what, got, want))
        check(all(q["device_uuid"] == m["uuid"] for q in doc["processes"]
                  if q["device_index"] == m["index"]), "%s: process device_uuid" % what)
    # a GPU whose MIG devices are listed has no process of its own
    for i, g in enumerate(gpus):
        if g["mig"] and g["migs"]:
            check(not [q for q in doc["processes"] if q["device_index"] == i],
                  "%s GPU %d: processes listed on the GPU as well as its MIG devices" % (name, i))
        elif not g["mig"]:
            want = sorted(pid for pid, _, _, _ in g["procs"])
            got = sorted(q["pid"] for q in doc["processes"] if q["device_index"] == i)
            check(got == want, "%s GPU %d: processes %r want %r" % (name, i, got, want))
    s = doc["summary"]
    check(s["gpu_count"] == len(gpus) and s["mig_device_count"] == len(migs),
          "%s: summary %r" % (name, s))
    check(s["memory_used_bytes"] == sum(g["used"] for g in gpus),
          "%s: summary memory counts MIG devices twice: %r" % (name, s))
    # text: each MIG device under its GPU, the summary says both counts
    text = report(path, json_out=False)
    blocks = re.split(r"(?m)^GPU ", text)
    for m in migs:
        block = blocks[m["parent"] + 1]
        line = "    MIG %d  %s  GI %d CI %d" % (m["index"], m["profile"], m["gi"], m["ci"])
        check(line in block and m["uuid"] in block, "%s text: %r not under GPU %d:\n%s"
              % (name, line, m["parent"], text))
    want = "Summary: %d GPU%s" % (len(gpus), "" if len(gpus) == 1 else "s")
    if migs:
        want += " (%d MIG device%s)" % (len(migs), "" if len(migs) == 1 else "s")
    check(want in text, "%s text: no %r:\n%s" % (name, want, text))
    # a view of one MIG device (--id): it, and a summary of it alone
    if migs:
        m = migs[-1]
        r = subprocess.run([BIN, "report", "--sources", "nvml", "--id", m["uuid"]],
                           capture_output=True, text=True, env=env(path), timeout=60)
        want = "Summary: 1 MIG device, VRAM used %.2f / %.2f GiB" % (m["used"] / GIB, m["total"] / GIB)
        check(r.returncode == 0 and want in r.stdout and m["uuid"] in r.stdout,
              "%s --id %s: no %r in\n%s" % (name, m["uuid"], want, r.stdout))
    # top's plain lines: a MIG device says which part of which GPU it is
    r = subprocess.run([BIN, "top", "--once", "--sources", "nvml"], capture_output=True,
                       text=True, env=env(path), timeout=60)
    check(r.returncode == 0, "%s top: exit %d %s" % (name, r.returncode, r.stderr))
    for m in migs:
        line = 'gpu=%d name="MIG %s of GPU %d, GI %d" util=N/A mem=%d/%dMiB' % (
            m["index"], m["profile"], m["parent"], m["gi"], round(m["used"] / MIB),
            round(m["total"] / MIB))
        check(line in r.stdout, "%s top: no %r in\n%s" % (name, line, r.stdout))


def case_report():
    for path in (A100, H100, MIXED):
        check_report(path)


def case_daemon():
    gpus = scenario(H100)
    migs = expected_devices(gpus)
    # 12 GiB: only the 2g.20gb holds it (the 3g.40gb has 19.8 GiB free, more)
    best_h100_12 = min((m for m in migs if m["total"] - m["used"] >= 12 * GIB),
                       key=lambda m: m["total"] - m["used"])["uuid"]
    d = su.Daemon(scenario=H100)
    rc, out = su.promtool(d.get("/metrics")[2].decode())
    check(rc == 0, "promtool on MIG /metrics (native families): %s" % out)
    d.stop()
    d = su.Daemon(scenario=H100, args=["--metrics-compat", "dcgm"])
    for m in migs:
        one = d.json("/gpu/metrics/" + m["uuid"])["gpu"]
        check(one["index"] == m["index"] and one["mig"]["profile"] == m["profile"]
              and one["memory"]["used_bytes"] == m["used"], "API %s: %r" % (m["uuid"], one))
    h = d.json("/health")
    check(h["pool"]["gpu_count"] == 1 and h["pool"]["mig_device_count"] == 3,
          "/health pool %r" % h["pool"])
    st, _, body = d.get("/metrics")
    text = body.decode()
    samples, _ = su.parse_prom(text)

    def prom_value(name, labels):
        return su.series(samples, name, **labels)
    for m in migs:
        v = prom_value("gpuwatch_gpu_memory_used_bytes",
                       {"gpu": str(m["index"]), "uuid": m["uuid"]})
        check(v == m["used"], "native memory of %s: %r" % (m["uuid"], v))
        info = prom_value("gpuwatch_mig_device_info",
                          {"uuid": m["uuid"], "parent_gpu": "0", "parent_uuid": gpus[0]["uuid"],
                           "profile": m["profile"], "gpu_instance": str(m["gi"]),
                           "compute_instance": str(m["ci"])})
        check(info == 1, "gpuwatch_mig_device_info of %s: %r" % (m["uuid"], info))
        # dcgm-exporter: the GPU's gpu/UUID, the instance in GPU_I_ID / GPU_I_PROFILE
        v = prom_value("DCGM_FI_DEV_FB_USED",
                       {"gpu": "0", "UUID": gpus[0]["uuid"], "GPU_I_PROFILE": m["profile"],
                        "GPU_I_ID": str(m["gi"])})
        check(v is not None and abs(v - m["used"] / MIB) < 1, "DCGM FB_USED of %s: %r" % (m["uuid"], v))
    # the whole GPU's own series: its used memory, and no GPU_I_* label
    whole = [v for (n, ls), v in samples.items() if n == "DCGM_FI_DEV_FB_USED"
             and ("UUID", gpus[0]["uuid"]) in ls and not any(k.startswith("GPU_I_") for k, _ in ls)]
    check(len(whole) == 1 and abs(whole[0] - gpus[0]["used"] / MIB) < 1,
          "the whole GPU's dcgm series: %r" % whole)
    # (before any reservation) the cluster view plans on a peer's MIG devices as on this host's: the
    # GPU in MIG mode is no target, never two MIG devices
    for args, want in ((["--mem", "30GiB"], None), (["--mem", "12GiB", "--gpus", "2"], None),
                       (["--mem", "12GiB"], best_h100_12)):
        r = subprocess.run([BIN, "place", "--cluster", "--peers", "http://127.0.0.1:%d" % d.port,
                            "--json"] + args, capture_output=True, text=True, timeout=60)
        doc = json.loads(r.stdout)
        used = [x["uuid"] for x in (doc.get("plan") or {}).get("devices", [])]
        check(doc["fits"] == (want is not None) and used == ([want] if want else []),
              "cluster %s: fits %r on %r" % (" ".join(args), doc["fits"], used))
    # reservations per MIG device: two 8 GiB reservations land on two instances
    got = []
    for _ in range(2):
        st, _, body = d.call("POST", "/api/v1/reservations", {"mem": "8GiB", "owner": "mig"})
        check(st == 201, "reserve on MIG: %d %r" % (st, body))
        devs = body["reservation"]["devices"]
        check(len(devs) == 1 and devs[0]["uuid"].startswith("MIG-"), "reserved on %r" % devs)
        got.append(devs[0]["uuid"])
    free = {m["uuid"]: m["total"] - m["used"] for m in migs}
    check(got[0] != got[1] or free[got[0]] >= 16 * GIB,
          "two 8 GiB reservations on one MIG device of %d free: %r" % (free[got[0]], got))
    pl = {x["uuid"]: x for x in d.json("/health")["placement"]["devices"]}
    for u in set(got):
        check(pl[u]["reservations"], "/health placement has no reservation on %s: %r" % (u, pl[u]))
    # the aggregates count the GPU once (a MIG device's memory is its GPU's)
    info, agg = d.json("/gpu/info"), d.json("/gpu/metrics")["aggregates"]
    check(info["gpu_count"] == 1 and info["mig_device_count"] == 3 and agg["gpu_count"] == 1
          and agg["memory_used_bytes"] == gpus[0]["used"], "aggregates %r / %r" % (info, agg))
    check(su.series(samples, "gpuwatch_gpus") == 1, "gpuwatch_gpus")
    d.stop()
    # memory pressure per MIG device: the 1g.10gb nearly full, its GPU not
    small = [m for m in migs if m["profile"] == "1g.10gb"][0]
    full = int(small["total"] * 0.93)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pressure.scn")
        with open(path, "w") as f:
            for line in open(H100):
                if line.startswith("mig.device " + small["uuid"]):
                    w = line.split()
                    w[6] = str(full)
                    line = " ".join(w) + "\n"
                f.write(line)
        d = su.Daemon(scenario=path, args=["--interval-ms", "100"])
        ev = su.wait_for(lambda: [e for e in d.json("/api/v1/events")["events"]
                                  if e["type"] == "memory_pressure_warning"] or None,
                         "a memory pressure event", d)
        check(len(ev) == 1 and ev[0]["gpu"] == small["index"] and ev[0]["uuid"] == small["uuid"],
              "memory pressure on the MIG device: %r" % ev)
        check(abs(ev[0]["value"] - full / small["total"]) < 1e-6, "pressure value %r" % ev[0])
        d.stop()


def place(path, *args, lib="full"):
    e = env(path, lib)
    e["GPUWATCH_LEDGER"] = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                        "gw-mig-%d.db" % os.getpid())
    e["GPUWATCH_DAEMON_URL"] = "http://127.0.0.1:1"  # never the user's daemon
    r = subprocess.run([BIN, "place", "--sources", "nvml", "--json"] + list(args),
                       capture_output=True, text=True, env=e, timeout=60)
    return r.returncode, json.loads(r.stdout)["plan"] if r.stdout.strip() else None, r.stderr


def case_place():
    # (scenario, need, expected MIG device UUID | None for refused, words of the reason)
    a_migs = expected_devices(scenario(A100))
    h_migs = expected_devices(scenario(H100))
    x_gpus = scenario(MIXED)
    x_migs = expected_devices(x_gpus)
    def best(ms, need):
        """The best fit the rule asks for: the least free memory that holds
        need, the lower index on a tie."""
        ok = [m for m in ms if m["total"] - m["used"] >= need]
        return min(ok, key=lambda m: (m["total"] - m["used"], m["index"]))["uuid"]

    by_profile = lambda ms, p, used=None: [m for m in ms if m["profile"] == p and (used is None or m["used"] == used)]  # noqa: E731,E501
    table = [
        # fits on one instance: the best fit (smallest room that holds it)
        (A100, ["--mem", "6GiB"], best(a_migs, 6 * GIB), None),
        (A100, ["--mem", "9GiB"], best(a_migs, 9 * GIB), None),
        (H100, ["--mem", "2GiB"], best(h_migs, 2 * GIB), None),
        (H100, ["--mem", "12GiB"], best(h_migs, 12 * GIB), None),
        (H100, ["--mem", "19GiB"], best(h_migs, 19 * GIB), None),
        # refused though the GPU's total would hold it: names the largest
        (A100, ["--mem", "12GiB"], None, ["MIG 1g.10gb", "cannot span MIG devices"]),
        (H100, ["--mem", "30GiB"], None, ["MIG 3g.40gb", "cannot span MIG devices"]),
        # never two instances, whatever is asked
        (A100, ["--mem", "12GiB", "--gpus", "2"], None, ["cannot span MIG devices"]),
        (A100, ["--mem", "12GiB", "--policy", "spread"], None, ["cannot span MIG devices"]),
        (H100, ["--mem", "4GiB", "--devices", "1,2"], None, ["cannot span MIG devices"]),
        # mixed host: an instance when one holds it, a whole GPU otherwise
        (MIXED, ["--mem", "30GiB"], best(x_migs, 30 * GIB), None),
        # no MIG device holds 50 GiB: the best-fitting whole GPU (GPU 0, 60.8 GiB free)
        (MIXED, ["--mem", "50GiB"], x_gpus[0]["uuid"], None),
    ]
    for path, args, want, words in table:
        rc, plan, err = place(path, *args)
        what = "%s %s" % (os.path.basename(path), " ".join(args))
        check(plan is not None, "%s: no plan (exit %d): %s" % (what, rc, err))
        if want:
            used = [x["uuid"] for x in plan["devices"]]
            check(plan["fits"] and used == [want], "%s: placed on %r, want %s (%s)"
                  % (what, used, want, plan["reason"]))
        else:
            check(not plan["fits"] and rc != 0, "%s: fits %r exit %d" % (what, plan["fits"], rc))
            for w in words:
                check(w in (plan["reason"] or ""), "%s: reason lacks %r: %r" % (what, w, plan["reason"]))
        # in no plan two MIG devices, nor a GPU in MIG mode
        mig_uuids = {m["uuid"] for m in a_migs + h_migs + x_migs}
        on = [x["uuid"] for x in plan["devices"] if x["uuid"] in mig_uuids]
        check(len(on) <= 1 and (not on or len(plan["devices"]) == 1),
              "%s: a plan spans MIG devices: %r" % (what, plan["devices"]))
    # a MIG device has its GPU's temperature: over the slowdown threshold,
    # none of them is a target
    with tempfile.TemporaryDirectory() as tmp:
        hot = os.path.join(tmp, "hot.scn")
        with open(hot, "w") as f:
            f.write(open(A100).read().replace("\ntemp 45\n", "\ntemp 95\n"))
        rc, plan, err = place(hot, "--mem", "1GiB")
        check(plan and not plan["fits"] and "temperature 95 C" in plan["reason"],
              "a hot GPU's MIG devices: %r" % (plan and plan["reason"]))
    # fit: the devices llama.cpp would see — the whole GPUs (a GPU in MIG
    # mode is none), or on a host of MIG devices only the one with the most room
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "m.gguf")
        shape = {"arch": "llama", "n_layer": 12, "n_embd": 2048, "n_head": 16, "n_head_kv": 4,
                 "n_ff": 5632, "n_vocab": 32000, "wtype": "Q4_K", "n_ctx_train": 16384}
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "estimate", "model_writer.py"),
                        model, json.dumps(shape)], check=True, capture_output=True, timeout=120)
        for path, want in ((A100, [max(m["total"] - m["used"] for m in a_migs)]),
                           (MIXED, [g["total_free"] for g in x_gpus if not g["mig"]])):
            r = subprocess.run([BIN, "fit", model, "-c", "4096", "--sources", "nvml", "--json"],
                               capture_output=True, text=True, env=env(path), timeout=60)
            check(r.returncode in (0, 1), "fit on %s: exit %d %s" % (path, r.returncode, r.stderr))
            got = [x["free"] for x in json.loads(r.stdout)["requested"]["devices"]]
            check(got == want, "fit on %s plans on %r, want %r" % (os.path.basename(path), got, want))
    # run: the command gets the MIG device as its GPU
    e = env(H100)
    e["GPUWATCH_LEDGER"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gw-mig-run-%d.db" % os.getpid())
    e["GPUWATCH_DAEMON_URL"] = "http://127.0.0.1:1"
    r = subprocess.run([BIN, "run", "--sources", "nvml", "--mem", "12GiB", "--",
                        "sh", "-c", 'echo "CVD=$CUDA_VISIBLE_DEVICES"'],
                       capture_output=True, text=True, env=e, timeout=60)
    want = by_profile(h_migs, "2g.20gb")[0]["uuid"]
    check(r.returncode == 0 and ("CVD=%s\n" % want) in r.stdout,
          "run on MIG: exit %d, out %r, err %r" % (r.returncode, r.stdout, r.stderr))


def case_olddriver():
    """lib-v1 has nvmlDeviceGetMigMode but none of the MIG device entry
    points (a pre-R450 driver): the GPU alone, MIG on, nothing placed on it."""
    gpus = scenario(H100)
    doc = report(H100, lib="v1")
    check(len(doc["devices"]) == 1 and doc["devices"][0]["mig_enabled"] is True
          and doc["devices"][0]["mig"] is None, "old driver: %r" % [
              (d["uuid"], d["mig_enabled"]) for d in doc["devices"]])
    check(doc["devices"][0]["uuid"] == gpus[0]["uuid"], "old driver: the GPU")
    rc, plan, err = place(H100, "--mem", "1GiB", lib="v1")
    check(plan and not plan["fits"] and "MIG mode" in plan["reason"],
          "old driver: plan %r %s" % (plan, err))


def case_mixed_vendors():
    """NVML beside another vendor's source (an AMD sysfs fixture): the MIG
    devices still name their GPU, in report and in the daemon (which samples
    each source apart and joins the parts), and the AMD GPU is no MIG
    device's parent."""
    sys.path.insert(0, os.path.join(SRC, "tests", "amd"))
    import test_amd_report as amd
    gpus = scenario(H100)
    n_mig = len(gpus[0]["migs"])
    with tempfile.TemporaryDirectory() as tmp:
        root = amd.copy_fixture("rdna3", tmp)
        args = ["--sources", "amdgpu,nvml", "--sys-root", os.path.join(root, "sys"),
                "--proc-root", os.path.join(root, "proc")]
        r = subprocess.run([BIN, "report", "--json"] + args, capture_output=True, text=True,
                           env=env(H100), timeout=60)
        check(r.returncode == 0, "report: %s" % r.stderr)
        d = su.Daemon(scenario=H100, args=args)
        for what, devs in (("report", json.loads(r.stdout)["devices"]),
                           ("daemon", d.json("/gpu/metrics")["gpus"])):
            nv = [x for x in devs if x["uuid"] == gpus[0]["uuid"]]
            migs = [x for x in devs if x["mig"]]
            check(len(nv) == 1 and len(migs) == n_mig and len(devs) == 1 + n_mig + 1,
                  "%s: devices %r" % (what, [(x["index"], x["uuid"]) for x in devs]))
            for m in migs:
                check(m["mig"]["parent_index"] == nv[0]["index"]
                      and m["mig"]["parent_uuid"] == gpus[0]["uuid"],
                      "%s: %s names GPU %r, want %d" % (what, m["uuid"], m["mig"], nv[0]["index"]))
        d.stop()


CASES = {"report": case_report, "vendors": case_mixed_vendors, "daemon": case_daemon, "place": case_place,
         "olddriver": case_olddriver}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        sys.exit("usage: test_mig.py %s" % "|".join(CASES))
    CASES[sys.argv[1]]()
    print("ok")
