"""simjob.py — a simulated training job on a fake-NVML GPU, for the batch
finder's tests (test_python.py) and benchmark (bench/lib_bench.py).

Owns: SimJob, whose step at a batch size needs need(batch) bytes on top of
what the GPU already holds (a base and, optionally, a neighbour whose use
changes between trials), writes the device's used bytes into the scenario's
memory.used.file (tests/nvml/SCENARIOS.md) so gpuwatch measures them, keeps
them until cleanup() (a framework's cache), and raises the out-of-memory
error of torch, jax or HIP when the step does not fit.
"""
import os

GIB = 1 << 30


def set_used(path, n):
    """Writes n into path atomically (the fake NVML never reads half a number)."""
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % n)
    os.replace(tmp, path)


class OutOfMemoryError(RuntimeError):
    """Named like torch.OutOfMemoryError: recognised by its class name."""


class XlaRuntimeError(Exception):
    """jax's error type: recognised by its message."""


class SimJob:
    """A training step on GPU 0 of the scenario: it needs need(batch) bytes
    on top of what is used; when that passes the device's total it raises an
    out-of-memory error the way a framework does. Its memory stays allocated
    (a framework's cache) until cleanup(). A neighbour may take memory
    between trials."""

    NEIGHBOUR_PID = 5000001  # above PID_MAX_LIMIT: never a live process

    def __init__(self, used_file, total, need, error="torch", neighbour=None, procs_file=None):
        """procs_file: the scenario's processes.file, listing this process
        (os.getpid()) with what the job holds and the neighbour with its
        memory, as NVML's process list does; None: no process list."""
        self.used_file, self.total, self.need = used_file, total, need
        self.procs_file = procs_file
        self.base = 4 * GIB
        self.neighbour = neighbour or (lambda: 0)
        self.held = 0
        self.trials = []
        self.dirty = False
        self.order_errors = 0
        self.error = error
        self.flush()

    def flush(self):
        set_used(self.used_file, self.base + self.nb + self.held)
        if self.procs_file:
            tmp = self.procs_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d %d\n%d %d\n" % (os.getpid(), self.held, self.NEIGHBOUR_PID,
                                             self.nb))
            os.replace(tmp, self.procs_file)

    def fits(self, batch, neighbour=None):
        nb = self.nb if neighbour is None else neighbour
        return self.base + nb + self.need(batch) <= self.total

    def step(self, batch):
        if self.dirty:
            self.order_errors += 1
        self.dirty = True
        self.nb = self.neighbour()
        ok = self.fits(batch)
        self.trials.append((batch, ok))
        if not ok:
            self.flush()
            if self.error == "torch":
                raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if self.error == "jax":
                raise XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                      "allocate 17179869184 bytes.")
            raise RuntimeError("HIP out of memory. Tried to allocate 1.50 GiB")
        self.held = self.need(batch)
        self.flush()

    def cleanup(self):
        self.dirty = False
        self.held = 0
        self.flush()

    nb = 0


