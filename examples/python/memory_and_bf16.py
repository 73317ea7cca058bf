"""memory_and_bf16.py — what a training script asks gpuwatch before it
starts: the devices, their free memory, and whether to train in bf16.

    python3 memory_and_bf16.py
"""
import gpuwatch

for d in gpuwatch.devices():
    free, total = gpuwatch.mem_get_info(d.index)
    ok, why = gpuwatch.bf16_support(d.index)
    dtype = "bf16" if ok else "fp16"
    print("gpu=%d name=%r free=%d total=%d dtype=%s (%s)" % (d.index, d.name, free, total, dtype,
                                                            why))
if not gpuwatch.devices():
    print("no GPU: running on the CPU")
