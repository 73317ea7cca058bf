"""dashboard.py — Dashboard: per-GPU progress bars with memory and
utilisation, redrawn in place on a terminal and written as one log line per
interval anywhere else (a pipe, a file, a batch system's log).

Owns: the task per GPU (done, total, rate, ETA), the drawing thread, the two
output forms, and the optional progress reports to gpuwatch (job=...), which
`gpuwatch top` and the daemon show.

Log line form (one per interval, fields key=value, GPUs separated by " | "):
    gpuwatch 2026-12-03T21:00:00Z gpu=0 done=512 total=1000 pct=51.2 rate=12.30 eta_s=40 \
mem_used=43046721536 mem_total=85899345920 util=93 | gpu=1 ...
A value that is not known is "-" (never 0).
"""
import shutil
import sys
import threading
import time


def _fmt_bytes(n):
    if n is None:
        return "N/A"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return "%.1f %s" % (n, unit) if unit != "B" else "%d B" % n
        n /= 1024.0


def _fmt_eta(s):
    if s is None:
        return "--:--"
    s = int(s)
    return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


class _Task:
    __slots__ = ("done", "total", "message", "t0", "done0", "t", "reported")

    def __init__(self, now):
        self.done, self.total, self.message = 0, None, ""
        self.t0, self.done0, self.t = now, 0, now
        self.reported = None

    def rate(self):
        dt = self.t - self.t0
        return (self.done - self.done0) / dt if dt > 0 and self.done > self.done0 else None

    def eta(self):
        r = self.rate()
        return (self.total - self.done) / r if r and self.total is not None else None


class Dashboard:
    """with Dashboard(unit="seq") as dash:  dash.update(gpu, done, total)

    gpu is a gpuwatch device index. On a TTY the bars are redrawn in place
    every interval seconds; otherwise one log line is written per interval
    (the module's docstring has its form). tty=None asks stream.isatty().
    job="name" also reports each GPU's progress to gpuwatch."""

    def __init__(self, interval=1.0, stream=None, tty=None, unit="it", job=None, monitor=None,
                 gpus=None):
        from . import default_monitor
        self.interval = float(interval)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else bool(tty)
        self.unit, self.job = unit, job
        self.errors = []
        self._monitor = monitor or default_monitor()
        self._tasks = {}
        self._gpus = list(gpus) if gpus is not None else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._drawn = 0
        enc = (getattr(self.stream, "encoding", None) or "").lower()
        self._bar = ("\u2588", "\u2591") if "utf" in enc else ("#", "-")

    # ---------------------------------------------------------------- tasks
    def update(self, gpu, done, total=None, message=None):
        """Sets GPU gpu's progress to done (of total, when known)."""
        now = time.monotonic()
        with self._lock:
            t = self._tasks.get(gpu)
            if t is None:
                t = self._tasks[gpu] = _Task(now)
                t.done0 = done
            t.done, t.t = done, now
            if total is not None:
                t.total = total
            if message is not None:
                t.message = str(message)

    def advance(self, gpu, n=1):
        """Adds n to GPU gpu's progress."""
        with self._lock:
            t = self._tasks.get(gpu)
            done = (t.done if t else 0) + n
        self.update(gpu, done)

    # -------------------------------------------------------------- drawing
    def _rows(self):
        devs = {d.index: d for d in self._monitor.sample()}
        with self._lock:
            tasks = {g: (t.done, t.total, t.rate(), t.eta(), t.message)
                     for g, t in self._tasks.items()}
        order = self._gpus if self._gpus is not None else sorted(set(tasks) | set(devs))
        return [(g, devs.get(g), tasks.get(g)) for g in order]

    def _tty_line(self, g, d, task, width):
        name = d.name if d else "?"
        head = "GPU %s %-18.18s" % (g, name)
        mem = "mem %s/%s" % (_fmt_bytes(d.memory_used if d else None),
                             _fmt_bytes(d.memory_total if d else None))
        util = "util %s" % ("%d%%" % round(d.utilization) if d and d.utilization is not None
                            else "N/A")
        if task is None:
            return "%s  %s  %s" % (head, mem, util)
        done, total, rate, eta, msg = task
        frac = done / total if total else None
        barw = 20
        fill = int(round(frac * barw)) if frac is not None else 0
        bar = "[" + self._bar[0] * fill + self._bar[1] * (barw - fill) + "]"
        count = "%d/%s" % (done, total if total is not None else "?")
        pct = "%5.1f%%" % (frac * 100) if frac is not None else "   ?%"
        r = "%.2f %s/s" % (rate, self.unit) if rate else "- %s/s" % self.unit
        line = "%s %s %s %s %s ETA %s  %s  %s" % (head, bar, count, pct, r, _fmt_eta(eta), mem,
                                                  util)
        return (line + ("  " + msg if msg else ""))[:width]

    @staticmethod
    def _num(v, fmt="%d"):
        return "-" if v is None else fmt % v

    def _log_line(self, rows):
        parts = []
        for g, d, task in rows:
            done, total, rate, eta, msg = task or (None, None, None, None, "")
            pct = done * 100.0 / total if task and total else None
            parts.append("gpu=%s done=%s total=%s pct=%s rate=%s eta_s=%s mem_used=%s "
                         "mem_total=%s util=%s" % (
                             g, self._num(done), self._num(total), self._num(pct, "%.1f"),
                             self._num(rate, "%.2f"), self._num(eta, "%d"),
                             self._num(d.memory_used if d else None),
                             self._num(d.memory_total if d else None),
                             self._num(d.utilization if d else None, "%.0f")))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return "gpuwatch %s %s" % (stamp, " | ".join(parts))

    def _report(self, rows):
        if not self.job:
            return
        for g, d, task in rows:
            if task is None:
                continue
            key = (task[0], task[1])
            t = self._tasks.get(g)
            if t is None or t.reported == key:
                continue
            try:
                from . import report_progress
                report_progress(self.job, (d.uuid if d and d.uuid else g), task[0],
                                task[1] or 0, self.unit, task[4][:120])
                t.reported = key
            except Exception as exc:  # noqa: BLE001 -- kept, the job goes on
                if len(self.errors) < 10:
                    self.errors.append(exc)

    def draw(self):
        """Draws once now (the thread calls it every interval)."""
        try:
            rows = self._rows()
        except Exception as exc:  # noqa: BLE001
            if len(self.errors) < 10:
                self.errors.append(exc)
            return
        self._report(rows)
        if not self.tty:
            self.stream.write(self._log_line(rows) + "\n")
            self.stream.flush()
            return
        width = max(40, shutil.get_terminal_size((120, 24)).columns - 1)
        out = []
        if self._drawn:
            out.append("\x1b[%dF" % self._drawn)  # back to the first line drawn
        for g, d, task in rows:
            out.append("\x1b[2K" + self._tty_line(g, d, task, width) + "\n")
        self._drawn = len(rows)
        self.stream.write("".join(out))
        self.stream.flush()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.draw()

    def __enter__(self):
        self.draw()
        self._thread = threading.Thread(target=self._loop, name="gpuwatch-dashboard",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.draw()
        return False
