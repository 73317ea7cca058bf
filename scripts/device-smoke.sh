#!/bin/bash
# device-smoke.sh BUILD OUTDIR — the real-hardware smoke check, on a machine
# with an NVIDIA GPU and its driver (docs/testing.md "Real hardware").
#
# The test suite runs on the fake libnvidia-ml (tests/nvml); this script runs
# the release binaries of BUILD against the driver's own library and
# compares what gpuwatch says with nvidia-smi and pynvml, which read the
# same driver:
#   1. scripts/gpu-smoke (docs/gpu-smoke.md): every field and compute
#      process of report --json against nvidia-smi, with a CUDA process
#      (PyTorch, when the machine has it) holding 2 GiB;
#   2. cost: `gpuwatch report --json`, `nvidia-smi --query-gpu` and a pynvml
#      script reading the same fields, medians of 20 runs each, and ratios;
#   3. bench/lib_bench.py --real-nvml: mem_get_info from C and Python
#      against pynvml's nvmlDeviceGetMemoryInfo;
#   4. gpuwatch serve: /metrics names the GPU by UUID, / answers;
#   5. gpuwatch fit of a small GGUF (tests/pool/inference.py): planned on
#      this GPU's free memory;
#   6. gpuwatch pool with tests/pool/fault_server.py as the model server: a
#      chat request loads it, the child runs with CUDA_VISIBLE_DEVICES set to
#      the GPU's UUID, its reservation names that UUID, and nothing is left
#      after the pool stops.
# Each check prints PASS or FAIL; exit status is the number of FAILs.
# LD_LIBRARY_PATH may point at carried copies of the shared libraries.
set -u
B=${1:?usage: device-smoke.sh BUILD OUTDIR}
OUT=${2:?usage: device-smoke.sh BUILD OUTDIR}
TOP=$(cd "$(dirname "$0")/.." && pwd)
GW=$B/src/cli/gpuwatch
mkdir -p "$OUT"
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
step() { echo; echo "== $*"; }

step "0. the machine"
nvidia-smi -L || fail "nvidia-smi -L"
"$GW" --version || { fail "gpuwatch does not run here"; exit "$fails"; }

step "1. report against nvidia-smi (scripts/gpu-smoke), with a CUDA process holding 2 GiB"
holder=
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    python3 -c "import torch, time; x = torch.empty(2 << 30, dtype=torch.uint8, device='cuda'); \
print('holding', flush=True); time.sleep(120)" >"$OUT/holder.log" 2>&1 &
    holder=$!
    for _ in $(seq 200); do grep -q holding "$OUT/holder.log" && break; sleep 0.1; done
fi
"$GW" report | tee "$OUT/report.txt"
"$GW" report --json >"$OUT/report.json" || fail "report --json exit $?"
"$TOP/scripts/gpu-smoke" --gpuwatch "$GW" && pass "gpu-smoke: every field and process matches nvidia-smi" ||
    fail "gpu-smoke"
[ -n "$holder" ] && { kill "$holder"; wait "$holder" 2>/dev/null; }

step "2. cost of one look: gpuwatch report --json, nvidia-smi, pynvml"
python3 - "$GW" <<'EOF' || fail "timing"
import statistics, subprocess, sys, time
PYNVML = ("import pynvml as n\nn.nvmlInit()\nfor i in range(n.nvmlDeviceGetCount()):\n"
          " h=n.nvmlDeviceGetHandleByIndex(i)\n n.nvmlDeviceGetName(h); n.nvmlDeviceGetUUID(h)\n"
          " n.nvmlDeviceGetMemoryInfo(h); n.nvmlDeviceGetUtilizationRates(h)\n"
          " n.nvmlDeviceGetTemperature(h,0); n.nvmlDeviceGetPowerUsage(h)\n"
          " n.nvmlDeviceGetEnforcedPowerLimit(h); n.nvmlDeviceGetClockInfo(h,1)\n"
          " n.nvmlDeviceGetComputeRunningProcesses(h)\nn.nvmlShutdown()\n")
cmds = [("gpuwatch report --json", [sys.argv[1], "report", "--json"]),
        ("nvidia-smi --query-gpu", ["nvidia-smi", "--query-gpu=index,uuid,name,memory.total,"
                                    "memory.used,utilization.gpu,temperature.gpu,power.draw,"
                                    "power.limit,clocks.sm", "--format=csv"]),
        ("python3 + pynvml", [sys.executable, "-c", PYNVML])]
res = {}
for name, cmd in cmds:
    for _ in range(3):
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    t = []
    for _ in range(20):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        t.append((time.perf_counter() - t0) * 1000)
    res[name] = statistics.median(t)
    print("  %-26s median %8.2f ms  min %8.2f ms" % (name, res[name], min(t)))
g = res["gpuwatch report --json"]
print("  nvidia-smi / gpuwatch: %.1fx; pynvml / gpuwatch: %.1fx" % (
    res["nvidia-smi --query-gpu"] / g, res["python3 + pynvml"] / g))
EOF

step "3. mem_get_info against pynvml (bench/lib_bench.py --real-nvml)"
python3 "$TOP/bench/lib_bench.py" --build "$B" --real-nvml --calls 200000 || fail "lib_bench"

step "4. gpuwatch serve"
port=19555
"$GW" serve --listen 127.0.0.1:$port >"$OUT/serve.log" 2>&1 &
spid=$!
python3 - $port "$OUT/report.json" <<'EOF' || fail "serve"
import json, sys, time, urllib.request
port, rep = int(sys.argv[1]), json.load(open(sys.argv[2]))
def get(path):
    return urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5).read().decode()
end = time.time() + 20
while True:
    try:
        metrics = get("/metrics")
        break
    except OSError:
        if time.time() > end:
            raise
        time.sleep(0.1)
uuids = [d["uuid"] for d in rep["devices"] if d["vendor"] == "nvidia"]
ok = all(u in metrics for u in uuids) and "gpuwatch_gpu_memory_used_bytes" in metrics
print("%s /metrics names every GPU by UUID (%d series lines)" % ("PASS" if ok else "FAIL", metrics.count("\n")))
ok2 = "endpoints" in json.loads(get("/"))
print("%s GET / answers JSON" % ("PASS" if ok2 else "FAIL"))
sys.exit(0 if ok and ok2 else 1)
EOF
kill $spid; wait $spid 2>/dev/null

step "5. fit a small GGUF on this GPU"
python3 -c "import sys; sys.path.insert(0, '$TOP/tests/pool'); import inference; \
inference.write_tiny_model('$OUT/m.gguf', seed=1, n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=512)" ||
    fail "writing the model"
"$GW" fit "$OUT/m.gguf" -c 4096 | tee "$OUT/fit.txt" && grep -q "^Fits: yes" "$OUT/fit.txt" &&
    pass "fit plans the model on this host" || fail "fit"

step "6. gpuwatch pool with a model server on this GPU"
ppt=19556
cat >"$OUT/pool.conf" <<EOF
ledger = $OUT/ledger.db
idle_ttl_s = 0
[m]
model = $OUT/m.gguf
command = python3 $TOP/tests/pool/fault_server.py --mode ok -m {model} --host {host} --port {port} -c {ctx} -np {parallel} --alias {name} {placement} --record $OUT/record.jsonl
EOF
"$GW" pool -c "$OUT/pool.conf" --listen 127.0.0.1:$ppt >"$OUT/pool.log" 2>&1 &
ppid=$!
python3 - $ppt "$OUT/report.json" "$OUT/record.jsonl" <<'EOF' || fail "pool"
import json, sys, time, urllib.request
port, rep, rec = int(sys.argv[1]), json.load(open(sys.argv[2])), sys.argv[3]
def req(path, body=None):
    r = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                               data=json.dumps(body).encode() if body else None,
                               headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(r, timeout=60).read())
end = time.time() + 20
while True:
    try:
        req("/health")
        break
    except OSError:
        if time.time() > end:
            raise
        time.sleep(0.1)
ans = req("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
print("PASS a chat request loaded the model and was answered" if ans.get("choices") else "FAIL chat")
pool = req("/api/v1/pool")
m = pool["models"][0]
print(json.dumps(m, indent=1)[:1500])
uuids = [d["uuid"] for d in rep["devices"] if d["vendor"] == "nvidia"]
start = [json.loads(l) for l in open(rec) if '"start"' in l][-1]
cvd = start["env"].get("CUDA_VISIBLE_DEVICES", "")
ok1 = cvd and all(u in uuids for u in cvd.split(","))
print("%s the server runs with CUDA_VISIBLE_DEVICES=%s (a GPU UUID of this host)" % ("PASS" if ok1 else "FAIL", cvd))
text = json.dumps(m)
ok2 = any(u in text for u in uuids) and m.get("state") in ("ready", "loaded")
print("%s /api/v1/pool shows the model ready with its reservation on that GPU" % ("PASS" if ok2 else "FAIL"))
sys.exit(0 if ans.get("choices") and ok1 and ok2 else 1)
EOF
kill -TERM $ppid; wait $ppid; rc=$?
[ $rc = 0 ] && pass "pool exits 0 on SIGTERM" || fail "pool exit $rc"
left=$(python3 -c "import json,os; pids=[json.loads(l)['pid'] for l in open('$OUT/record.jsonl') if '\"start\"' in l]; print(' '.join(str(p) for p in pids if os.path.exists('/proc/%d' % p)))")
[ -z "$left" ] && pass "no model server left" || fail "model servers left: $left"

echo
echo "$fails failed"
exit "$fails"
