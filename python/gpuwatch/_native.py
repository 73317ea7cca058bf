"""_native.py — loads libgpuwatch with ctypes and declares its functions.

Owns: finding the library ($GPUWATCH_LIBRARY, then the folder it was
installed into, then the dynamic linker's search for the SONAME), the
ctypes prototypes of include/gpuwatch.h, and GpuwatchError.
"""
import ctypes
import os

try:
    from . import _paths  # written by meson at install (python/meson.build)
    _LIBDIR = _paths.LIBDIR
except ImportError:  # the source tree: GPUWATCH_LIBRARY or the linker's path
    _LIBDIR = None

SONAME = "libgpuwatch.so.1"


class GpuwatchError(RuntimeError):
    """An error libgpuwatch reported: .code is its gw_status (negative),
    str() its message naming what was wrong."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 512)]


def _load():
    tried = []
    for cand in (os.environ.get("GPUWATCH_LIBRARY"),
                 os.path.join(_LIBDIR, SONAME) if _LIBDIR else None, SONAME):
        if not cand:
            continue
        try:
            return ctypes.CDLL(cand)
        except OSError as e:
            tried.append("%s (%s)" % (cand, e))
    raise ImportError("gpuwatch: libgpuwatch not found; tried " + "; ".join(tried) +
                      ". Install gpuwatch or set GPUWATCH_LIBRARY to libgpuwatch.so.1.")


lib = _load()

c_void_p, c_int, c_uint32, c_uint64, c_double = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32,
                                                 ctypes.c_uint64, ctypes.c_double)
c_char_p, c_size_t, c_int64, c_bool = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64,
                                       ctypes.c_bool)
ErrorP = ctypes.POINTER(Error)


class Config(ctypes.Structure):
    """gw_config (size-versioned: gw_config_init_size records our size)."""
    _fields_ = [("size", c_uint32), ("nvml_library", c_char_p), ("proc_root", c_char_p),
                ("sys_root", c_char_p), ("pods_dir", c_char_p), ("sources", c_char_p),
                ("call_timeout_ms", ctypes.c_uint), ("processes", c_bool),
                ("process_host_stats", c_bool), ("skip_host", c_bool)]


class PressureEvent(ctypes.Structure):
    """gw_pressure_event (only its known prefix: the struct only grows)."""
    _fields_ = [("device", c_uint32), ("uuid", c_char_p), ("level", c_int),
                ("previous", c_int), ("used_bytes", c_uint64), ("total_bytes", c_uint64),
                ("ratio", c_double), ("at_ns", c_int64)]


PRESSURE_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(PressureEvent), c_void_p)
TRY_FN = ctypes.CFUNCTYPE(c_int, c_uint64, c_void_p)
CLEANUP_FN = ctypes.CFUNCTYPE(None, c_void_p)


class BatchOptions(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("lo", c_uint64), ("hi", c_uint64), ("try_fn", TRY_FN),
                ("cleanup", CLEANUP_FN), ("user", c_void_p), ("margin", c_double),
                ("monitor", c_void_p), ("device", ctypes.c_int32), ("use_model", c_bool),
                ("max_trials", c_uint32), ("cache_key", c_char_p), ("dtype", c_char_p),
                ("cache_path", c_char_p), ("refresh", c_bool)]


class BatchResult(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("batch", c_uint64), ("largest_ok", c_uint64),
                ("smallest_oom", c_uint64), ("trials", c_uint32), ("ooms", c_uint32),
                ("from_cache", c_bool), ("bytes_per_sample", c_double),
                ("fixed_bytes", c_uint64), ("note", ctypes.c_char * 256), ("measured", c_int)]


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


U64P = ctypes.POINTER(c_uint64)
gw_version = _fn("gw_version", c_char_p)
gw_strerror = _fn("gw_strerror", c_char_p, c_int)
gw_config_init_size = _fn("gw_config_init_size", None, ctypes.POINTER(Config), c_size_t)
gw_monitor_open = _fn("gw_monitor_open", c_int, ctypes.POINTER(c_void_p), ctypes.POINTER(Config),
                      ErrorP)
gw_monitor_close = _fn("gw_monitor_close", None, c_void_p)
gw_monitor_sample = _fn("gw_monitor_sample", c_int, c_void_p, ctypes.POINTER(c_void_p), ErrorP)
gw_monitor_memory_table = _fn("gw_monitor_memory_table", ctypes.POINTER(c_uint64), c_void_p,
                              ctypes.POINTER(c_size_t))
gw_monitor_latest = _fn("gw_monitor_latest", c_void_p, c_void_p)
gw_snapshot_release = _fn("gw_snapshot_release", None, c_void_p)
gw_snapshot_device_count = _fn("gw_snapshot_device_count", c_size_t, c_void_p)
gw_snapshot_device = _fn("gw_snapshot_device", c_void_p, c_void_p, c_size_t)
gw_snapshot_cpu_only_reason = _fn("gw_snapshot_cpu_only_reason", c_char_p, c_void_p)
gw_device_text_of = _fn("gw_device_text_of", c_char_p, c_void_p, c_int)
gw_device_vendor = _fn("gw_device_vendor", c_int, c_void_p)
gw_vendor_name = _fn("gw_vendor_name", c_char_p, c_int)
gw_device_state_of = _fn("gw_device_state_of", c_int, c_void_p)
gw_device_state_name = _fn("gw_device_state_name", c_char_p, c_int)
gw_device_metric = _fn("gw_device_metric", c_int, c_void_p, c_int, ctypes.POINTER(c_double))
gw_device_compute_capability = _fn("gw_device_compute_capability", c_int, c_void_p,
                                   ctypes.POINTER(c_int), ctypes.POINTER(c_int))
gw_mem_get_info = _fn("gw_mem_get_info", c_int, c_void_p, c_uint32, c_int, U64P, U64P, ErrorP)
gw_device_supports_bf16 = _fn("gw_device_supports_bf16", c_int, c_void_p, c_uint32, c_char_p,
                              c_size_t)
gw_watcher_start = _fn("gw_watcher_start", c_int, ctypes.POINTER(c_void_p), c_void_p, ctypes.c_uint,
                       c_double, c_double, c_double, PRESSURE_FN, c_void_p, ErrorP)
gw_watcher_level = _fn("gw_watcher_level", c_int, c_void_p, c_uint32)
gw_watcher_samples = _fn("gw_watcher_samples", c_uint64, c_void_p)
gw_watcher_stop = _fn("gw_watcher_stop", None, c_void_p)
gw_batch_options_init_size = _fn("gw_batch_options_init_size", None, ctypes.POINTER(BatchOptions),
                                 c_size_t)
gw_find_batch_size = _fn("gw_find_batch_size", c_int, ctypes.POINTER(BatchOptions),
                         ctypes.POINTER(BatchResult), ErrorP)
gw_progress_report = _fn("gw_progress_report", c_int, c_char_p, c_char_p, c_uint64, c_uint64,
                         c_char_p, c_char_p, ErrorP)


def check(rc, err):
    """Raises GpuwatchError for a non-zero rc with err's message."""
    if rc != 0:
        msg = err.message.decode("utf-8", "replace") or gw_strerror(rc).decode()
        raise GpuwatchError(rc, msg)
