/* nvml.h — the NVIDIA backend (NVML loaded at run time with dlopen).
 *
 * Owns nothing but the declaration of its ops table; see nvml.c.
 */
#ifndef GW_BACKENDS_NVML_H
#define GW_BACKENDS_NVML_H

#include "backends/backend.h"

/* The NVML source: open dlopen()s cfg->nvml_library and initialises NVML
 * once (a failure is returned, never retried inside); sample reads every
 * GPU; close shuts NVML down and unloads the library. State is owned by the
 * backend and freed by close. */
extern const gw__backend_ops gw__backend_nvml;

#endif
