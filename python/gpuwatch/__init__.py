"""gpuwatch — GPU memory, bf16 support, memory-pressure callbacks, an adaptive
batch-size finder and a progress dashboard for ML jobs, over libgpuwatch
(ctypes, no compiled extension). Every vendor libgpuwatch reads works here:
NVIDIA (NVML), AMD and Intel (sysfs / DRM fdinfo), the CLI fallbacks.

    import gpuwatch
    for d in gpuwatch.devices():
        print(d.index, d.name, gpuwatch.mem_get_info(d.index))
    dtype = "bf16" if gpuwatch.supports_bf16(0) else "fp16"

Device indexes are gpuwatch's (the order of `gpuwatch report`), not CUDA's.
Reference: docs/library.md.
"""
import atexit
import collections
import os
import platform
import threading
import weakref

from . import _native as _n
from ._native import GpuwatchError
from .batch import find_batch_size, is_oom_error
from .dashboard import Dashboard

__all__ = ["Monitor", "Device", "devices", "mem_get_info", "supports_bf16", "bf16_support",
           "Watcher", "find_batch_size", "is_oom_error", "report_progress", "Dashboard",
           "GpuwatchError", "library_version", "NORMAL", "WARNING", "CRITICAL"]

NORMAL, WARNING, CRITICAL = 0, 1, 2
_LEVELS = ("normal", "warning", "critical")

# gw_metric values used here (include/gpuwatch.h; tests/lib compares them).
METRIC_MEM_TOTAL, METRIC_MEM_USED, METRIC_UTIL_GPU, METRIC_TEMP = 0, 1, 4, 8
_TEXT_UUID, _TEXT_NAME, _TEXT_PCI, _TEXT_ARCH = 0, 1, 2, 6

Device = collections.namedtuple(
    "Device", "index name uuid vendor pci_bus_id arch compute_capability memory_total "
              "memory_used utilization state")


def library_version():
    """The version of the libgpuwatch loaded."""
    return _n.gw_version().decode()


class Monitor:
    """An open libgpuwatch monitor (gw_monitor). The module-level functions
    use one shared default monitor; open your own to read other sources or
    roots, or to close it explicitly. Thread-safe.

    sources: "nvml,amdgpu" etc. (None: all); nvml_library, sys_root,
    proc_root: as `gpuwatch report`'s options (None: the environment, else
    the defaults); processes: read per-process use (off by default here: a
    job asking about memory does not need every process's command line)."""

    def __init__(self, sources=None, nvml_library=None, sys_root=None, proc_root=None,
                 processes=False):
        self._h = _n.c_void_p()
        cfg = _n.Config()
        _n.gw_config_init_size(_n.ctypes.byref(cfg), _n.ctypes.sizeof(cfg))
        enc = lambda v: None if v is None else os.fsencode(v)
        cfg.sources, cfg.nvml_library = enc(sources), enc(nvml_library)
        cfg.sys_root, cfg.proc_root = enc(sys_root), enc(proc_root)
        cfg.processes = cfg.process_host_stats = bool(processes)
        err = _n.Error()
        _n.check(_n.gw_monitor_open(_n.ctypes.byref(self._h), _n.ctypes.byref(cfg),
                                    _n.ctypes.byref(err)), err)
        # reused out-parameters of the cached read (the hot path)
        self._free, self._total = _n.c_uint64(), _n.c_uint64()
        self._pfree, self._ptotal = _n.ctypes.pointer(self._free), _n.ctypes.pointer(self._total)
        self._err = _n.Error()
        self._perr = _n.ctypes.pointer(self._err)
        self._lock = threading.Lock()
        # the memory table (gw_monitor_memory_table): cached reads without a
        # call. Python's loads carry no ordering, so the lock-free read is
        # used only where the CPU keeps loads in order (x86, TSO); elsewhere
        # every read is the C call, which reads the table as the header says.
        words = _n.c_size_t()
        ptr = _n.gw_monitor_memory_table(self._h, _n.ctypes.byref(words))
        arr = (_n.c_uint64 * words.value).from_address(_n.ctypes.addressof(ptr.contents))
        self._table = memoryview(arr).cast("B").cast("Q") if _ORDERED_LOADS else _NO_TABLE
        self._table_owner = arr

    @property
    def handle(self):
        return self._h.value

    def close(self):
        """Closes the monitor. Stop its watchers first; no other call of this
        monitor may run meanwhile."""
        with self._lock:
            if self._h:
                self._table = _NO_TABLE  # later reads take the call, which refuses
                _n.gw_monitor_close(self._h)
                self._h = _n.c_void_p()

    def _open_handle(self):
        if not self._h:
            raise GpuwatchError(-2, "gpuwatch: the monitor is closed")
        return self._h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def sample(self):
        """Reads every device now; returns devices()."""
        snap = _n.c_void_p()
        err = _n.Error()
        _n.check(_n.gw_monitor_sample(self._open_handle(), _n.ctypes.byref(snap),
                                      _n.ctypes.byref(err)), err)
        try:
            return _devices_of(snap)
        finally:
            _n.gw_snapshot_release(snap)

    def devices(self):
        """The devices of the latest sample (sampling once when there is none)."""
        snap = _n.gw_monitor_latest(self._open_handle())
        if not snap:
            return self.sample()
        try:
            return _devices_of(snap)
        finally:
            _n.gw_snapshot_release(snap)

    def mem_get_info(self, index, fresh=False):
        """(free, total) bytes of device index, like torch.cuda.mem_get_info.
        fresh=False reads the latest sample (no I/O); fresh=True reads the
        device now."""
        if not fresh:
            t = self._table  # seqlock read of the table (layout 1)
            seq = t[0]
            if not seq & 1 and 0 <= index < t[2]:
                base = 3 + 3 * index
                free, total, flags = t[base], t[base + 1], t[base + 2]
                if flags & 1 and t[0] == seq:
                    return free, total
        with self._lock:  # no sample yet, a write in progress, or an error to name
            rc = _n.gw_mem_get_info(self._h, index, 1 if fresh else 0, self._pfree,
                                    self._ptotal, self._perr)
            if rc:
                _n.check(rc, self._err)
            return self._free.value, self._total.value

    def bf16_support(self, index):
        """(True / False / None when not known, reason)."""
        buf = _n.ctypes.create_string_buffer(256)
        v = _n.gw_device_supports_bf16(self._open_handle(), index, buf, len(buf))
        return (None if v < 0 else bool(v)), buf.value.decode("utf-8", "replace")


def _devices_of(snap):
    out = []
    for i in range(_n.gw_snapshot_device_count(snap)):
        d = _n.gw_snapshot_device(snap, i)
        text = lambda f: _n.gw_device_text_of(d, f).decode("utf-8", "replace")

        def metric(m):
            v = _n.c_double()
            return v.value if _n.gw_device_metric(d, m, _n.ctypes.byref(v)) == 0 else None

        ma, mi = _n.c_int(), _n.c_int()
        cc = ((ma.value, mi.value) if _n.gw_device_compute_capability(
            d, _n.ctypes.byref(ma), _n.ctypes.byref(mi)) == 0 else None)
        total, used = metric(METRIC_MEM_TOTAL), metric(METRIC_MEM_USED)
        out.append(Device(
            index=i, name=text(_TEXT_NAME), uuid=text(_TEXT_UUID),
            vendor=_n.gw_vendor_name(_n.gw_device_vendor(d)).decode(),
            pci_bus_id=text(_TEXT_PCI), arch=text(_TEXT_ARCH) or None, compute_capability=cc,
            memory_total=None if total is None else int(total),
            memory_used=None if used is None else int(used), utilization=metric(METRIC_UTIL_GPU),
            state=_n.gw_device_state_name(_n.gw_device_state_of(d)).decode()))
    return out


# Python's loads are ordered on these (TSO): the table's lock-free read is safe
_ORDERED_LOADS = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_NO_TABLE = memoryview(b"\0" * 24).cast("Q")  # zero devices: every read takes the call

_default = None
_default_lock = threading.Lock()


def default_monitor():
    """The shared monitor the module-level functions use (opened on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Monitor()
    return _default


def devices():
    """Every device gpuwatch sees (an empty list on a CPU-only host)."""
    return default_monitor().devices()


def mem_get_info(index, fresh=False):
    """(free, total) bytes of device index; see Monitor.mem_get_info."""
    return (_default or default_monitor()).mem_get_info(index, fresh)


def bf16_support(index):
    """(True / False / None, reason) for device index."""
    return default_monitor().bf16_support(index)


def supports_bf16(index):
    """True when device index computes in bfloat16 natively (NVIDIA compute
    capability >= 8.0, AMD CDNA2/CDNA3/RDNA3+, Intel Xe-HPG/Xe-HPC/Xe2);
    False when it does not or when that is not known (bf16_support says
    why)."""
    return bf16_support(index)[0] is True


class Watcher:
    """A background thread that samples the devices every interval seconds
    and calls callback(event) when a device's memory pressure changes level:
    event is a dict with device, uuid, level and previous ("normal",
    "warning", "critical"), used, total, ratio. Levels are entered at warn /
    critical (fractions of memory used) and left below the threshold minus
    hysteresis. The callback runs on the watcher's thread; an exception in
    it is kept in .errors, never lost and never raised there.

        with gpuwatch.Watcher(on_pressure, warn=0.9, critical=0.97):
            train()
    """

    def __init__(self, callback, interval=1.0, warn=0.90, critical=0.97, hysteresis=0.05,
                 monitor=None):
        self.callback = callback
        self.errors = []
        self._monitor = monitor or default_monitor()
        self._cb = _n.PRESSURE_FN(self._on_event)  # kept alive while the thread runs
        self._h = _n.c_void_p()
        err = _n.Error()
        _n.check(_n.gw_watcher_start(_n.ctypes.byref(self._h), self._monitor._open_handle(),
                                     int(round(interval * 1000)), warn, critical, hysteresis,
                                     self._cb, None, _n.ctypes.byref(err)), err)
        _live_watchers.add(self)

    def _on_event(self, ev, _user):
        e = ev.contents
        event = {"device": e.device, "uuid": (e.uuid or b"").decode("utf-8", "replace"),
                 "level": _LEVELS[e.level], "previous": _LEVELS[e.previous],
                 "used": e.used_bytes, "total": e.total_bytes, "ratio": e.ratio,
                 "at_ns": e.at_ns}
        try:
            self.callback(event)
        except Exception as exc:  # noqa: BLE001 -- reported through .errors
            self.errors.append(exc)

    def level(self, index):
        """The current level of device index: "normal", "warning" or "critical"."""
        if not self._h:
            raise GpuwatchError(-2, "gpuwatch: the watcher is stopped")
        return _LEVELS[_n.gw_watcher_level(self._h, index)]

    @property
    def samples(self):
        return _n.gw_watcher_samples(self._h) if self._h else 0

    def stop(self):
        """Stops the thread. From the watcher's own callback it ends after
        that callback returns; otherwise it has ended when stop returns."""
        if self._h:
            h, self._h = self._h, _n.c_void_p()
            _live_watchers.discard(self)
            _n.gw_watcher_stop(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass


# Watchers still running when the interpreter exits are stopped first: their
# threads call into Python, which must not happen during finalisation.
_live_watchers = weakref.WeakSet()


@atexit.register
def _stop_watchers():
    for w in list(_live_watchers):
        w.stop()


def report_progress(job, gpu, done, total=0, unit="", message=""):
    """Reports a job's progress on one GPU the way `gpuwatch progress` does,
    so `gpuwatch top` and the daemon show it (docs/progress.md)."""
    err = _n.Error()
    enc = lambda s: None if s is None else str(s).encode()
    _n.check(_n.gw_progress_report(enc(job), enc(gpu), int(done), int(total or 0), enc(unit),
                                   enc(message), _n.ctypes.byref(err)), err)
