/* nvidia_smi.h — the nvidia-smi CSV parsers, exposed for the unit tests and
 * the fuzz target; the backend itself is gw__backend_nvidia_smi (registry).
 *
 * Input is what `nvidia-smi --query-gpu=GW__NVSMI_GPU_FIELDS
 * --format=csv,noheader,nounits` (resp. --query-compute-apps=
 * GW__NVSMI_APP_FIELDS) prints: one line per GPU (process), values
 * separated by ", ", no quoting, the free-text field last so it may itself
 * hold ", ". A value starting with '[' ("[N/A]", "[Not Supported]",
 * "[Insufficient Permissions]", "[Unknown Error]") or equal to "N/A" is
 * absent: its valid bit stays clear, it is never read as 0.
 */
#ifndef GW_BACKENDS_NVIDIA_SMI_H
#define GW_BACKENDS_NVIDIA_SMI_H

#include "core/model.h"

#include <stddef.h>
#include <stdint.h>

#define GW__NVSMI_GPU_FIELDS                                                                 \
    "index,pci.bus_id,uuid,driver_version,memory.total,memory.reserved,memory.used,"         \
    "memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit," \
    "clocks.sm,clocks.gr,clocks.mem,fan.speed,pstate,name"
/* Drivers before R510 refuse memory.reserved ("is not a valid field", exit
 * 2): the same columns with memory.total standing in for it, that column's
 * value then dropped (gw__nvsmi_drop_reserved). */
#define GW__NVSMI_GPU_FIELDS_LEGACY                                                          \
    "index,pci.bus_id,uuid,driver_version,memory.total,memory.total,memory.used,"            \
    "memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit," \
    "clocks.sm,clocks.gr,clocks.mem,fan.speed,pstate,name"
#define GW__NVSMI_GPU_FIELD_COUNT 19
#define GW__NVSMI_APP_FIELDS "gpu_uuid,pid,used_memory,process_name"
#define GW__NVSMI_APP_FIELD_COUNT 4
/* At most this many GPU lines / process lines are accepted. */
#define GW__NVSMI_MAX_GPUS 256
#define GW__NVSMI_MAX_APPS 65536

/* One line of --query-compute-apps. */
typedef struct gw__nvsmi_app {
    char gpu_uuid[96];
    uint32_t pid;
    bool has_memory;
    uint64_t memory; /* bytes */
    char process_name[256];
} gw__nvsmi_app;

/* Parses --query-gpu output text[0..len) into a new array of devices (info
 * and sample filled: vendor, source "nvidia-smi", source_index, uuid, name,
 * pci_bus_id, driver_version, memory_api "smi", state ok). On success
 * returns GW_OK with *out (caller frees; NULL when there are no lines) and
 * *n. On malformed input returns GW_EPARSE (GW_ERANGE past the line cap,
 * GW_ENOMEM) with err naming the line, the field and the value; *out is
 * NULL and *n 0. */
int gw__nvsmi_parse_gpus(const char *text, size_t len, gw_device **out, size_t *n,
                         gw_error *err);

/* Same for --query-compute-apps output. */
int gw__nvsmi_parse_apps(const char *text, size_t len, gw__nvsmi_app **out, size_t *n,
                         gw_error *err);

#endif
