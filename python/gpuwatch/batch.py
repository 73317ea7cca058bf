"""batch.py — find_batch_size: libgpuwatch's adaptive batch-size finder
with Python's out-of-memory errors recognised by duck typing.

Owns: the trial callback (a step at a batch size; an OOM exception becomes
GW_TRIAL_OOM, any other is re-raised after the search), the default
cleanup (garbage collection and the caches of the frameworks already
imported), and the result type.
"""
import collections
import gc
import sys

from . import _native as _n

BatchResult = collections.namedtuple(
    "BatchResult", "batch largest_ok smallest_oom trials ooms from_cache bytes_per_sample "
                   "fixed_bytes note measured")
_MEASURED = ("none", "device", "process")  # gw_batch_measured

# class names (or their endings) of the frameworks' out-of-memory errors
_OOM_NAMES = ("OutOfMemoryError", "OutOfMemory", "OOMError", "ResourceExhaustedError")
_OOM_TEXT = ("out of memory", "resource_exhausted", "failed to allocate", "hipErrorOutOfMemory",
             "cudaErrorMemoryAllocation", "CUDA_ERROR_OUT_OF_MEMORY")
_TRIAL_OK, _TRIAL_OOM, _TRIAL_ERROR = 0, 1, 2


def is_oom_error(exc):
    """True when exc is a device out-of-memory error of torch
    (torch.OutOfMemoryError / torch.cuda.OutOfMemoryError, or a RuntimeError
    "CUDA out of memory" / "HIP out of memory"), cupy
    (cupy.cuda.memory.OutOfMemoryError), jax / XLA (RESOURCE_EXHAUSTED),
    tensorflow (ResourceExhaustedError) or MemoryError. Judged by class name
    and message, so none of them is imported."""
    if isinstance(exc, MemoryError):
        return True
    for cls in type(exc).__mro__:
        if cls.__name__.endswith(_OOM_NAMES):
            return True
    text = str(exc).lower()
    return any(t.lower() in text for t in _OOM_TEXT)


def default_cleanup():
    """Frees what a failed step left: garbage, then torch's and cupy's
    caches when those modules are already loaded."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        try:
            cupy.get_default_memory_pool().free_all_blocks()
        except Exception:
            pass


def find_batch_size(fn, lo=1, hi=65536, device=None, margin=0.05, cleanup=None,
                    cache_key=None, dtype=None, cache_path=None, refresh=False, use_model=True,
                    max_trials=64, monitor=None):
    """The largest batch size in [lo, hi] for which fn(batch) runs, less a
    margin (a fraction of it). fn runs one training / inference step and
    raises the framework's out-of-memory error when the batch does not fit.

    device: the gpuwatch device index whose memory the finder measures to
    fit a bytes-per-sample model and jump near the limit (None: no model,
    plain doubling and bisection). cleanup: called after every trial (default:
    default_cleanup). cache_key / dtype: remember the answer per (key, device,
    dtype) on disk (~/.cache/gpuwatch/batch-sizes.json) and reuse it while the
    device has as much memory free as when it was found.

    Returns a BatchResult. Raises GpuwatchError when even lo runs out of
    memory, and re-raises any error of fn that is not an out-of-memory one.
    """
    from . import default_monitor
    mon = monitor or (default_monitor() if device is not None else None)
    failure = []

    # Nothing may escape a ctypes callback (ctypes would print it and carry
    # on): every exception, KeyboardInterrupt included, is kept and raised
    # again once the search has returned.
    def trial(batch, _user):
        if failure:
            return _TRIAL_ERROR
        try:
            fn(int(batch))
            return _TRIAL_OK
        except BaseException as exc:  # noqa: BLE001 -- sorted below
            if isinstance(exc, Exception) and is_oom_error(exc):
                return _TRIAL_OOM
            failure.append(exc)
            return _TRIAL_ERROR

    def clean(_user):
        try:
            (cleanup or default_cleanup)()
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)

    o = _n.BatchOptions()
    _n.gw_batch_options_init_size(_n.ctypes.byref(o), _n.ctypes.sizeof(o))
    o.lo, o.hi, o.margin, o.use_model, o.max_trials = lo, hi, margin, use_model, max_trials
    o.try_fn, o.cleanup = _n.TRY_FN(trial), _n.CLEANUP_FN(clean)
    o.monitor = mon.handle if mon else None
    o.device = -1 if device is None else int(device)
    enc = lambda s: None if s is None else str(s).encode()
    o.cache_key, o.dtype, o.cache_path, o.refresh = enc(cache_key), enc(dtype), enc(cache_path), \
        bool(refresh)
    r = _n.BatchResult()
    r.size = _n.ctypes.sizeof(r)
    err = _n.Error()
    rc = _n.gw_find_batch_size(_n.ctypes.byref(o), _n.ctypes.byref(r), _n.ctypes.byref(err))
    if failure:
        raise failure[0]
    _n.check(rc, err)
    return BatchResult(r.batch, r.largest_ok, r.smallest_oom or None, r.trials, r.ooms,
                       r.from_cache, r.bytes_per_sample, r.fixed_bytes,
                       r.note.decode("utf-8", "replace"), _MEASURED[r.measured])
