"""batch_size.py — find the largest batch that fits, the way a PyTorch job
would, then run with a dashboard and a memory-pressure warning.

With torch installed, step() would run a real forward/backward pass and the
finder would recover from torch.OutOfMemoryError; here a stand-in raises the
same kind of error above a memory limit so the example runs anywhere.

    python3 batch_size.py [DEVICE]
"""
import sys
import time

import gpuwatch


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.OutOfMemoryError (recognised by its name)."""


LIMIT_SAMPLES = 1500  # the stand-in model fits up to this many samples


def step(batch):
    if batch > LIMIT_SAMPLES:
        raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


device = int(sys.argv[1]) if len(sys.argv) > 1 and gpuwatch.devices() else None
r = gpuwatch.find_batch_size(step, lo=8, hi=8192, device=device)
print("batch=%d largest_ok=%d smallest_oom=%s trials=%d ooms=%d" % (
    r.batch, r.largest_ok, r.smallest_oom, r.trials, r.ooms))


def warn(ev):
    print("memory pressure on GPU %d: %s (%.0f%% used)" % (ev["device"], ev["level"],
                                                          ev["ratio"] * 100), file=sys.stderr)


with gpuwatch.Watcher(warn, interval=0.5), gpuwatch.Dashboard(interval=0.2, unit="batch") as dash:
    steps = 5
    for i in range(1, steps + 1):
        step(r.batch)
        for d in gpuwatch.devices():
            dash.update(d.index, i, steps)
        time.sleep(0.05)
