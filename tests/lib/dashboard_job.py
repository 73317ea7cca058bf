"""dashboard_job.py — a job that shows its progress with gpuwatch.Dashboard:
GPU 0 and GPU 1 each go from 0 to TOTAL in STEPS steps over about a second,
drawn every INTERVAL seconds to stdout (a terminal in tmux, or a pipe).
Then it writes DONE_FILE and, on a terminal, waits for it to be removed so
the screen can be read.

Usage: dashboard_job.py TOTAL STEPS INTERVAL DONE_FILE
Environment: the fake NVML scenario (GPUWATCH_FAKE_NVML_SCENARIO,
GPUWATCH_NVML_LIBRARY), GPUWATCH_LIBRARY, PYTHONPATH with python/.
"""
import os
import sys
import time

import gpuwatch

total, steps, interval, done_file = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                                     sys.argv[4])
mon = gpuwatch.Monitor(sources="nvml")
with gpuwatch.Dashboard(interval=interval, stream=sys.stdout, unit="seq", monitor=mon,
                        job=os.environ.get("DASH_JOB")) as dash:
    for i in range(1, steps + 1):
        for g in (0, 1):
            dash.update(g, i * total // steps, total)
        time.sleep(1.0 / steps)
with open(done_file, "w") as f:
    f.write("%d\n" % len(dash.errors))
if sys.stdout.isatty():
    while os.path.exists(done_file):
        time.sleep(0.05)
