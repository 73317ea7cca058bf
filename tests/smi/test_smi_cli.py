#!/usr/bin/env python3
"""gpuwatch report with the nvidia-smi / amd-smi / rocm-smi fallbacks.

Fixture programs (tests/smi/fixtures/<scenario>/) are put first on PATH; the
values expected in `report --json` are the fixture's own numbers, converted
here (MiB -> bytes, W, MHz -> Hz, C, %). NVML is kept out of the way with a
library path that does not exist (or the real libnvidia-ml, which fails
without a driver), and sysfs/procfs with empty roots.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ["GPUWATCH_BIN"]
ROOT = os.environ["GPUWATCH_SOURCE_ROOT"]
FIX = os.path.join(ROOT, "tests", "smi", "fixtures")
MIB = 1024 * 1024
# --fake-nvml DIR: the NVML engineer's fake libnvidia-ml.so.1 (tests/nvml),
# for the selection test; that test is skipped without it.
FAKE_NVML = None
if "--fake-nvml" in sys.argv:
    i = sys.argv.index("--fake-nvml")
    FAKE_NVML = os.path.join(sys.argv[i + 1], "libnvidia-ml.so.1")
    del sys.argv[i:i + 2]

# The fixture's numbers (tests/smi/fixtures/fake-nvidia-smi, scenario normal)
NV_GPUS = [
    dict(index=0, bus="00000000:17:00.0", uuid="GPU-11111111-2222-3333-4444-555555555555",
         name="NVIDIA H100 80GB HBM3", total=81559, reserved=579, used=40963, free=40017,
         util=87, mutil=45, temp=61, power=312.47, limit=700.00, sm=1980, gr=1965, mem=2619,
         fan=0, pstate=0),
    dict(index=1, bus="00000000:65:00.0", uuid="GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
         name="NVIDIA RTX A6000, custom, build", total=49140, reserved=498, used=1024,
         free=47618, util=3, mutil=1, temp=38, power=27.91, limit=300.00, sm=210, gr=210,
         mem=405, fan=30, pstate=8),
]
NV_APPS = [  # (gpu, pid, MiB or None, name); the ghost on an unknown GPU is dropped
    (0, 4242, 40000, "python3"),
    (0, 4243, 900, "llama-server"),
    (1, 5151, None, "train, with, commas"),
]


def pid_dead(pid):
    """Gone, or a zombie waiting for its new parent. Waits up to a minute for
    a SIGKILLed process to finish dying: patience, not a timing check."""
    end = time.time() + 60
    while True:
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            return True
        if stat[stat.rindex(")") + 2] in "ZX" or time.time() > end:
            return stat[stat.rindex(")") + 2] in "ZX"
        time.sleep(0.01)


def hang_pids(path):
    """The pids a hang fixture wrote (its shell, the sleep it started); none
    when its deadline came before it wrote them: it had started nothing to
    leave behind then (tests/smi/test_subprocess.c checks the group kill
    without that condition)."""
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


class SmiReport(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="gw-smi-cli-")
        self.empty = os.path.join(self.tmp.name, "empty")
        os.mkdir(self.empty)
        self.log = os.path.join(self.tmp.name, "calls.log")
        self.pids = os.path.join(self.tmp.name, "pids")

    def tearDown(self):
        self.tmp.cleanup()

    def run_report(self, scenarios, args, nvml="/nonexistent/libnvidia-ml.so.1", extra_env=None):
        env = dict(os.environ)
        env.update(extra_env or {})
        env["PATH"] = os.pathsep.join([os.path.join(FIX, s) for s in scenarios] +
                                      [os.environ.get("PATH", "/usr/bin:/bin")])
        env["GPUWATCH_NVML_LIBRARY"] = nvml
        env["GW_FIXTURE_LOG"] = self.log
        env["GW_FIXTURE_PIDS"] = self.pids
        env.pop("GW_FIXTURE_HANG_FLAG", None)
        cmd = [BIN, "report", "--proc-root", self.empty, "--sys-root", self.empty] + args
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        return p

    def report_json(self, scenarios, sources, **kw):
        p = self.run_report(scenarios, ["--json", "--sources", sources], **kw)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def source(self, doc, name):
        for s in doc["sources"]:
            if s["name"] == name:
                return s
        self.fail("source %s not listed: %r" % (name, doc["sources"]))

    def calls(self):
        try:
            with open(self.log) as f:
                return [line.split()[0] for line in f]
        except FileNotFoundError:
            return []

    # ------------------------------------------------------------ nvidia-smi

    def test_nvidia_smi_values_and_units(self):
        doc = self.report_json(["nv-normal"], "nvidia-smi,host")
        self.assertFalse(doc["cpu_only"])
        self.assertEqual(len(doc["devices"]), 2)
        for d, g in zip(doc["devices"], NV_GPUS):
            self.assertEqual(d["source"], "nvidia-smi")
            self.assertEqual(d["vendor"], "nvidia")
            self.assertEqual(d["state"], "ok")
            self.assertEqual(d["source_index"], g["index"])
            self.assertEqual(d["pci_bus_id"], g["bus"])
            self.assertEqual(d["uuid"], g["uuid"])
            self.assertEqual(d["name"], g["name"])
            self.assertEqual(d["driver_version"], "535.104.05")
            m = d["memory"]
            self.assertEqual(m["total_bytes"], g["total"] * MIB)
            self.assertEqual(m["used_bytes"], g["used"] * MIB)
            self.assertEqual(m["free_bytes"], g["free"] * MIB)
            self.assertEqual(m["reserved_bytes"], g["reserved"] * MIB)
            self.assertEqual(d["utilization"]["gpu_percent"], g["util"])
            self.assertEqual(d["utilization"]["memory_percent"], g["mutil"])
            self.assertIsNone(d["utilization"]["encoder_percent"])
            self.assertEqual(d["temperature"]["gpu_celsius"], g["temp"])
            self.assertAlmostEqual(d["power"]["draw_watts"], g["power"], places=6)
            self.assertAlmostEqual(d["power"]["limit_watts"], g["limit"], places=6)
            self.assertEqual(d["clocks"]["sm_hz"], g["sm"] * 1000000)
            self.assertEqual(d["clocks"]["graphics_hz"], g["gr"] * 1000000)
            self.assertEqual(d["clocks"]["memory_hz"], g["mem"] * 1000000)
            self.assertEqual(d["fan"]["speed_percent"], g["fan"])
            self.assertEqual(d["pstate"], g["pstate"])
        procs = [(p["device_index"], p["pid"], p["gpu_memory_bytes"], p["name"])
                 for p in doc["processes"]]
        self.assertEqual(procs, [(g, pid, None if mib is None else mib * MIB, name)
                                 for g, pid, mib, name in NV_APPS])
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "ok")
        self.assertEqual(s["device_count"], 2)
        self.assertEqual(s["calls"], 2)
        self.assertEqual(s["driver_version"], "535.104.05")
        self.assertEqual(self.calls(), ["nvidia-smi", "nvidia-smi"])

    def test_nvidia_smi_bracket_values_are_null(self):
        doc = self.report_json(["nv-na"], "nvidia-smi,host")
        (d,) = doc["devices"]
        self.assertEqual(d["name"], "Tesla T4")
        self.assertEqual(d["memory"]["total_bytes"], 16384 * MIB)
        self.assertEqual(d["memory"]["used_bytes"], 2048 * MIB)
        self.assertIsNone(d["memory"]["reserved_bytes"])
        self.assertEqual(d["utilization"]["gpu_percent"], 5)
        self.assertIsNone(d["utilization"]["memory_percent"])
        self.assertIsNone(d["temperature"]["gpu_celsius"])
        self.assertIsNone(d["power"]["draw_watts"])
        self.assertIsNone(d["power"]["limit_watts"])
        self.assertEqual(d["clocks"]["sm_hz"], 1005 * 1000000)
        self.assertIsNone(d["clocks"]["graphics_hz"])
        self.assertIsNone(d["fan"]["speed_percent"])
        self.assertIsNone(d["pstate"])
        (p,) = doc["processes"]
        self.assertEqual(p["pid"], 777)
        self.assertIsNone(p["gpu_memory_bytes"])
        self.assertIsNone(p["name"])

    def test_nvidia_smi_old_driver(self):
        # a pre-R510 nvidia-smi refuses memory.reserved: asked again without it
        doc = self.report_json(["nv-old"], "nvidia-smi,host")
        (d,) = doc["devices"]
        self.assertEqual(d["driver_version"], "470.256.02")
        self.assertEqual(d["memory"]["total_bytes"], 11264 * MIB)
        self.assertEqual(d["memory"]["used_bytes"], 5000 * MIB)
        self.assertEqual(d["memory"]["free_bytes"], 6264 * MIB)
        self.assertIsNone(d["memory"]["reserved_bytes"])
        self.assertAlmostEqual(d["power"]["draw_watts"], 150.25, places=6)
        self.assertEqual(self.source(doc, "nvidia-smi")["calls"], 3)

    def test_nvidia_smi_garbage(self):
        doc = self.report_json(["nv-garbage"], "nvidia-smi,host")
        self.assertTrue(doc["cpu_only"])
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "failed")
        self.assertEqual(s["error"]["name"], "malformed input")
        self.assertIn("line 1, field 7 (memory.used)", s["message"])
        self.assertIn("'lots'", s["message"])
        self.assertIn("memory.used", doc["cpu_only_reason"])

    def test_nvidia_smi_nonzero_exit(self):
        doc = self.report_json(["nv-noperm"], "nvidia-smi,host")
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "failed")
        self.assertEqual(s["message"],
                         "nvidia-smi: insufficient permissions (exit 4): Insufficient Permissions")
        doc = self.report_json(["nv-nodevice"], "nvidia-smi,host")
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "unavailable")
        self.assertEqual(s["message"], "nvidia-smi: no NVIDIA GPU found (exit 6)")

    def test_nvidia_smi_hang_is_killed_and_report_completes(self):
        doc = self.report_json(["nv-hang"], "nvidia-smi,host")
        self.assertTrue(doc["cpu_only"])
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "failed")
        self.assertEqual(s["error"]["name"], "timed out")
        self.assertIn("nvidia-smi: timed out after 5000 ms", s["message"])
        self.assertIsNotNone(doc["host"])
        for pid in hang_pids(self.pids):  # the shell and its sleep: the whole group
            self.assertTrue(pid_dead(pid))

    def test_real_nvidia_smi_without_driver(self):
        real = os.environ.get("NVIDIA_SMI_REAL", "")
        if not os.access(real, os.X_OK):
            self.skipTest("real nvidia-smi not unpacked under .deps")
        # every source, NVML pointed at the real library too: both fail cleanly
        nvml = os.environ.get("NVML_REAL_LIBRARY", "/nonexistent")
        p = self.run_report(["nv-real"], [], nvml=nvml)
        self.assertEqual(p.returncode, 0, p.stderr)
        first = p.stdout.splitlines()[0]
        self.assertTrue(first.startswith("CPU-only mode: "), p.stdout)
        self.assertIn("nvidia-smi: NVIDIA driver not loaded (exit 9)", first)
        p = self.run_report(["nv-real"], ["--json"], nvml=nvml)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertTrue(doc["cpu_only"])
        self.assertEqual(doc["devices"], [])
        self.assertIn("nvidia-smi: NVIDIA driver not loaded (exit 9)", doc["cpu_only_reason"])
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "unavailable")
        self.assertEqual(s["error"]["name"], "driver error")

    def test_nvml_wins_and_nvidia_smi_is_not_run(self):
        if not FAKE_NVML or not os.path.exists(FAKE_NVML):
            self.skipTest("fake NVML library not built")
        scn = os.path.join(ROOT, "tests", "nvml", "scenarios", "two.scn")
        p = self.run_report(["nv-normal"], ["--json", "--sources", "nvml,nvidia-smi,host"],
                            nvml=FAKE_NVML, extra_env={"GPUWATCH_FAKE_NVML_SCENARIO": scn})
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(len(doc["devices"]), 2)  # two.scn's GPUs, once each
        self.assertEqual({d["source"] for d in doc["devices"]}, {"nvml"})
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "ok")
        self.assertEqual(s["device_count"], 0)
        self.assertEqual(s["calls"], 0)
        self.assertIn("not run: nvml already reports the NVIDIA GPUs", s["message"])
        self.assertEqual(self.calls(), [])  # the fixture nvidia-smi never started
        # NVML without a driver (no scenario): nvidia-smi takes over
        p = self.run_report(["nv-normal"], ["--json", "--sources", "nvml,nvidia-smi,host"],
                            nvml=FAKE_NVML)
        doc = json.loads(p.stdout)
        self.assertEqual([d["source"] for d in doc["devices"]], ["nvidia-smi"] * 2)
        self.assertEqual(self.source(doc, "nvml")["state"], "unavailable")

    def test_nvidia_smi_absent(self):
        doc = self.report_json([], "nvidia-smi,host")
        s = self.source(doc, "nvidia-smi")
        self.assertEqual(s["state"], "unavailable")
        self.assertEqual(s["message"], "nvidia-smi: not found on PATH")

    # ---------------------------------------------------------- amd / rocm

    def test_rocm_smi_values(self):
        doc = self.report_json(["rocm-normal"], "rocm-smi,host")
        a, b = doc["devices"]
        for d in (a, b):
            self.assertEqual(d["source"], "rocm-smi")
            self.assertEqual(d["vendor"], "amd")
        self.assertEqual(a["name"], "Navi 31 [Radeon RX 7900 XT/7900 XTX]")
        self.assertEqual(a["pci_bus_id"], "0000:03:00.0")
        self.assertEqual(a["uuid"], "0x1234abcd5678ef90")
        self.assertEqual(a["memory"]["total_bytes"], 25753026560)
        self.assertEqual(a["memory"]["used_bytes"], 1073741824)
        self.assertEqual(a["memory"]["free_bytes"], 25753026560 - 1073741824)
        self.assertEqual(a["utilization"]["gpu_percent"], 12)
        self.assertEqual(a["utilization"]["memory_percent"], 4)
        self.assertEqual(a["temperature"]["gpu_celsius"], 45.0)
        self.assertEqual(a["temperature"]["junction_celsius"], 52.5)
        self.assertEqual(a["temperature"]["memory_celsius"], 60.0)
        self.assertEqual(a["power"]["draw_watts"], 35.0)
        self.assertEqual(a["power"]["limit_watts"], 303.0)
        self.assertEqual(a["fan"]["speed_percent"], 23)
        self.assertEqual(a["fan"]["rpm"], 1100)
        self.assertEqual(a["clocks"]["graphics_hz"], 2482 * 1000000)
        self.assertEqual(a["clocks"]["memory_hz"], 1249 * 1000000)
        self.assertEqual(b["name"], "AMD Instinct MI300X")
        self.assertEqual(b["pci_bus_id"], "0000:0C:00.0")
        self.assertEqual(b["memory"]["total_bytes"], 206141652992)
        self.assertIsNone(b["temperature"]["gpu_celsius"])  # "N/A"
        self.assertEqual(b["temperature"]["junction_celsius"], 40.0)
        self.assertEqual(b["power"]["draw_watts"], 140.0)
        self.assertIsNone(b["power"]["limit_watts"])  # key missing
        self.assertIsNone(b["fan"]["speed_percent"])  # "N/A (Secondary die)"
        self.assertEqual(self.source(doc, "rocm-smi")["state"], "ok")

    def test_amd_smi_list_shape(self):
        doc = self.report_json(["amd-list"], "amd-smi,host")
        a, b = doc["devices"]
        self.assertEqual((a["source"], a["pci_bus_id"]), ("amd-smi", "0000:11:00.0"))
        self.assertEqual(a["name"], "AMD Instinct MI300X")
        self.assertIsNone(b["name"])  # market_name "N/A"
        self.assertEqual(b["uuid"], "a1ff74a1-0000-1000-80ff-000000000021")
        self.assertEqual(a["utilization"]["gpu_percent"], 67)
        self.assertEqual(a["utilization"]["memory_percent"], 21)
        self.assertEqual(a["power"]["draw_watts"], 455)
        self.assertEqual(a["clocks"]["graphics_hz"], 2100 * 1000000)
        self.assertEqual(a["clocks"]["memory_hz"], 1300 * 1000000)
        self.assertIsNone(a["temperature"]["gpu_celsius"])
        self.assertEqual(a["temperature"]["junction_celsius"], 58)
        self.assertEqual(a["temperature"]["memory_celsius"], 49)
        self.assertEqual(a["memory"]["total_bytes"], 196592 * MIB)  # amd-smi "MB" is MiB
        self.assertEqual(a["memory"]["used_bytes"], 98304 * MIB)
        self.assertEqual(a["memory"]["free_bytes"], 98288 * MIB)
        self.assertEqual(a["memory"]["gtt_total_bytes"], 128000 * MIB)
        self.assertEqual(a["memory"]["gtt_used_bytes"], 12 * MIB)
        self.assertIsNone(a["fan"]["speed_percent"])
        self.assertAlmostEqual(b["power"]["draw_watts"], 140.5, places=6)
        self.assertEqual(b["fan"]["speed_percent"], 15)
        self.assertEqual(b["fan"]["rpm"], 900)
        self.assertIsNone(b["clocks"]["memory_hz"])
        self.assertEqual(b["memory"]["free_bytes"], (65520 - 10) * MIB)  # derived

    def test_amd_smi_gpu_data_shape_with_strings(self):
        doc = self.report_json(["amd-gpudata"], "amd-smi,host")
        (a,) = doc["devices"]
        self.assertEqual(a["source_index"], 1)
        self.assertEqual(a["pci_bus_id"], "0000:21:00.0")  # gpu 1 in the list
        self.assertEqual(a["name"], "AMD Radeon PRO W7900")
        self.assertEqual(a["utilization"]["gpu_percent"], 44)
        self.assertIsNone(a["utilization"]["memory_percent"])
        self.assertEqual(a["power"]["draw_watts"], 301)
        self.assertEqual(a["temperature"]["gpu_celsius"], 41)
        self.assertIsNone(a["temperature"]["junction_celsius"])
        self.assertEqual(a["memory"]["used_bytes"], 2048 * MIB)

    def test_fallback_order_and_no_double_count(self):
        # both tools present: amd-smi answers, rocm-smi is not even run
        doc = self.report_json(["amd-list", "rocm-normal"], "amd-smi,rocm-smi,host")
        self.assertEqual([d["source"] for d in doc["devices"]], ["amd-smi", "amd-smi"])
        r = self.source(doc, "rocm-smi")
        self.assertEqual(r["state"], "ok")
        self.assertEqual(r["device_count"], 0)
        self.assertIn("not run: amd-smi already reports the AMD GPUs", r["message"])
        self.assertEqual(self.calls(), ["amd-smi"] * 3)  # metric, list, static; no rocm-smi
        # amd-smi has no driver: rocm-smi fills in, amd-smi's reason is listed
        doc = self.report_json(["amd-nodriver", "rocm-normal"], "amd-smi,rocm-smi,host")
        self.assertEqual([d["source"] for d in doc["devices"]], ["rocm-smi", "rocm-smi"])
        a = self.source(doc, "amd-smi")
        self.assertEqual(a["state"], "unavailable")
        self.assertEqual(a["message"], "amd-smi: amdgpu driver not loaded (exit 1)")

    def test_amdgpu_wins_and_tools_are_not_run(self):
        tree = os.path.join(ROOT, "tests", "fixtures", "rdna3")
        if not os.path.isdir(os.path.join(tree, "sys")):
            self.skipTest("amdgpu fixture tree tests/fixtures/rdna3 not there")
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([os.path.join(FIX, "amd-list"),
                                       os.path.join(FIX, "rocm-normal"), env.get("PATH", "")])
        env["GW_FIXTURE_LOG"] = self.log
        p = subprocess.run([BIN, "report", "--json", "--sources", "amdgpu,amd-smi,rocm-smi,host",
                            "--sys-root", os.path.join(tree, "sys"),
                            "--proc-root", os.path.join(tree, "proc")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertTrue(doc["devices"])
        self.assertEqual({d["source"] for d in doc["devices"]}, {"amdgpu"})
        for name in ("amd-smi", "rocm-smi"):
            s = self.source(doc, name)
            self.assertEqual(s["device_count"], 0)
            self.assertIn("not run: amdgpu already reports the AMD GPUs", s["message"])
        self.assertEqual(self.calls(), [])

    def test_rocm_smi_failures(self):
        doc = self.report_json(["rocm-garbage"], "rocm-smi,host")
        s = self.source(doc, "rocm-smi")
        self.assertEqual(s["state"], "failed")
        self.assertIn("card0: \"GPU use (%)\": not a number: 'lots'", s["message"])
        doc = self.report_json(["rocm-notjson"], "rocm-smi,host")
        self.assertIn("not valid JSON", self.source(doc, "rocm-smi")["message"])
        doc = self.report_json(["rocm-nodriver"], "rocm-smi,host")
        s = self.source(doc, "rocm-smi")
        self.assertEqual(s["state"], "unavailable")
        self.assertEqual(s["message"], "rocm-smi: amdgpu driver not loaded (exit 1)")
        self.assertIn("rocm-smi: amdgpu driver not loaded", doc["cpu_only_reason"])

    def test_rocm_smi_hang(self):
        doc = self.report_json(["rocm-hang"], "rocm-smi,host")
        s = self.source(doc, "rocm-smi")
        self.assertEqual(s["state"], "failed")
        self.assertIn("rocm-smi: timed out after 5000 ms", s["message"])
        for pid in hang_pids(self.pids):
            self.assertTrue(pid_dead(pid))


if __name__ == "__main__":
    unittest.main(verbosity=2)
