/* registry.c — the list of built-in backends, in the order the monitor runs
 * them: direct sources (NVML, sysfs) before command-line fallbacks, the host
 * (CPU/RAM) last. Adding a backend = one extern line and one entry. */
#include "backends/backend.h"

extern const gw__backend_ops gw__backend_host;
extern const gw__backend_ops gw__backend_nvml;
extern const gw__backend_ops gw__backend_amdgpu;
extern const gw__backend_ops gw__backend_intel;
extern const gw__backend_ops gw__backend_nvidia_smi;
extern const gw__backend_ops gw__backend_amd_smi;
extern const gw__backend_ops gw__backend_rocm_smi;

const gw__backend_ops *const gw__backends[] = {
    &gw__backend_nvml,
    &gw__backend_amdgpu, /* sysfs: direct sources, before the CLI fallbacks */
    &gw__backend_intel,
    &gw__backend_nvidia_smi, /* after nvml: fills only what nvml does not see */
    &gw__backend_amd_smi,    /* after amdgpu (register amdgpu above these two) */
    &gw__backend_rocm_smi,
    &gw__backend_host,
    NULL,
};
