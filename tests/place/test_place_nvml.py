#!/usr/bin/env python3
"""`place` and `run` on live devices: the real monitor reading the fake NVML
library (tests/nvml) with scenario files written here.

Scenario: GPU 0 24 GiB (22 free), GPU 1 16 GiB free but at 95 C over its
90 C slowdown threshold, GPU 2 lost. Checks that the plan skips the hot and
the lost GPU with their reasons, that CUDA_VISIBLE_DEVICES carries GPU 0's
UUID, and the "visible as used" rule: a 10 GiB reservation whose owner is
then seen using 6 GiB on GPU 0 (free drops to 16) still holds only 4 GiB, so
12 GiB fits there and 12.5 GiB does not.

    test_place_nvml.py LIBDIR   (LIBDIR/lib-full/libnvidia-ml.so.1)
"""
import json, os, signal, subprocess, sys, tempfile, time

BIN = os.environ["GPUWATCH_BIN"]
LIB = os.path.join(sys.argv[1], "lib-full", "libnvidia-ml.so.1")
GIB = 1 << 30
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def scenario(path, gpu0_free, gpu0_proc=None):
    gpus = [
        ("NVIDIA GeForce RTX 4090", "GPU-aaaaaaaa-0000-0000-0000-000000000000", "00000000:01:00.0",
         24 * GIB, gpu0_free, 50, gpu0_proc),
        ("NVIDIA RTX A4000", "GPU-bbbbbbbb-0000-0000-0000-000000000000", "00000000:02:00.0",
         16 * GIB, 16 * GIB, 95, None),
        ("NVIDIA H100 80GB HBM3", "GPU-cccccccc-0000-0000-0000-000000000000", "00000000:03:00.0",
         80 * GIB, 80 * GIB, 40, None),
    ]
    lines = ["driver 535.104.05", "nvml 12.535.104.05", "cuda 12020",
             "fault * GPU_IS_LOST gpu=2 after=25"]
    for name, uuid, bus, total, free, temp, proc in gpus:
        lines += ["", "gpu", f"name {name}", f"uuid {uuid}", f"pci.bus_id {bus}",
                  f"memory.total {total}", "memory.reserved 0", f"memory.used {total - free}",
                  f"memory.free {free}", f"temp {temp}", "temp.slowdown 90", "temp.shutdown 100"]
        if proc:
            lines.append(f"process compute {proc[0]} {proc[1]}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if not os.path.exists(LIB):
    print(f"skip: {LIB} not built")
    sys.exit(77)

with tempfile.TemporaryDirectory() as tmp:
    scn = os.path.join(tmp, "gpus.scn")
    ledger = os.path.join(tmp, "ledger.db")
    show = os.path.join(tmp, "show.json")
    job = os.path.join(tmp, "job")
    with open(job, "w") as f:
        f.write("#!/usr/bin/env python3\nimport json, os, time\n"
                "json.dump({'pid': os.getpid(), 'cuda': os.environ.get('CUDA_VISIBLE_DEVICES')},"
                " open(os.environ['SHOW_OUT'] + '.tmp', 'w'))\n"
                "os.rename(os.environ['SHOW_OUT'] + '.tmp', os.environ['SHOW_OUT'])\n"
                "time.sleep(600)\n")  # until the test's SIGTERM
    os.chmod(job, 0o755)
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=scn, GPUWATCH_LEDGER=ledger, SHOW_OUT=show)
    # --local: the ledger in tmp, never a daemon that may listen on the
    # default port (127.0.0.1:19400) of whatever machine runs the suite
    src = ["--sources", "nvml", "--nvml-library", LIB, "--local"]

    def gw(*args):
        return subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=120)

    scenario(scn, 22 * GIB)
    r = gw("place", "--mem", "10GiB", "--json", *src)
    check(r.returncode == 0, f"place exit 0 ({r.returncode} {r.stderr})")
    p = json.loads(r.stdout)["plan"]
    check([d["index"] for d in p["devices"]] == [0], f"only GPU 0 is usable: {p}")
    why = {x["index"]: x["reason"] for x in p["excluded"]}
    check(set(why) == {1, 2}, f"GPUs 1 and 2 excluded: {why}")
    check("temperature 95 C" in why.get(1, "") and "90 C" in why.get(1, ""), f"hot GPU reason {why}")
    check(why.get(2) == "lost", f"lost GPU reason {why}")

    proc = subprocess.Popen([BIN, "run", "--mem", "10GiB", *src, "--", job], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120  # only "never" may fail this, not a busy machine
    while not os.path.exists(show) and time.time() < deadline:
        time.sleep(0.02)
    check(os.path.exists(show), "the job started")
    s = json.load(open(show))
    check(s["cuda"] == "GPU-aaaaaaaa-0000-0000-0000-000000000000", f"CUDA_VISIBLE_DEVICES {s}")
    # before the job allocates: 22 free - 10 reserved = 12
    r = gw("place", "--mem", "12GiB", *src)
    check(r.returncode == 0, f"12 GiB fits beside the 10 GiB reservation: {r.stdout}")
    r = gw("place", "--mem", "12.5GiB", *src)
    check(r.returncode == 1, "12.5 GiB does not")
    # the job is seen using 6 GiB: free 16, still pending 4 -> 12 usable
    scenario(scn, 16 * GIB, (s["pid"], 6 * GIB))
    r = gw("place", "--mem", "12GiB", "--json", *src)
    check(r.returncode == 0 and json.loads(r.stdout)["plan"]["devices"][0]["usable_bytes"] == 12 * GIB,
          f"visible use is not counted twice: {r.stdout}")
    r = gw("place", "--mem", "12.5GiB", *src)
    check(r.returncode == 1 and "4.00 GiB reserved" in r.stdout,
          f"the part not yet visible still counts: {r.stdout}")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    check(proc.returncode == 128 + signal.SIGTERM, f"the job ended by the forwarded SIGTERM ({proc.returncode})")
    scenario(scn, 22 * GIB)
    r = gw("place", "--mem", "22GiB", *src)
    check(r.returncode == 0, "released: all 22 GiB usable again")

print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
