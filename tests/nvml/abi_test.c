/* abi_test.c — checks gpuwatch's own NVML declarations (src/backends/nvml_abi.h)
 * against NVIDIA's official nvml.h: sizes, field offsets and constants.
 *
 * What it owns: nothing at run time; almost every check is a _Static_assert,
 * so a layout drift breaks the build of this test (and the test run fails).
 * The run-time part prints the figures and re-checks the version word.
 */
#define NVML_NO_UNVERSIONED_FUNC_DEFS 1
#include <nvml.h>

#include "backends/nvml_abi.h"

#include <stddef.h>
#include <stdio.h>

#define SAME_SIZE(ours, theirs) \
    _Static_assert(sizeof(ours) == sizeof(theirs), "sizeof " #ours " != sizeof " #theirs)
#define SAME_OFF(ours, of, theirs, tf)                                    \
    _Static_assert(offsetof(ours, of) == offsetof(theirs, tf) &&          \
                       sizeof(((ours *)0)->of) == sizeof(((theirs *)0)->tf), \
                   #ours "." #of " != " #theirs "." #tf)
#define SAME_VAL(ours, theirs) _Static_assert((ours) == (theirs), #ours " != " #theirs)

/* handles */
SAME_SIZE(gw_nvml_device, nvmlDevice_t);
SAME_SIZE(gw_nvml_return, nvmlReturn_t);
SAME_SIZE(int, nvmlClockType_t);
SAME_SIZE(int, nvmlTemperatureSensors_t);
SAME_SIZE(int, nvmlTemperatureThresholds_t);
SAME_SIZE(int, nvmlPstates_t);

/* nvmlPciInfo_t (68 bytes) */
SAME_SIZE(gw_nvml_pci_info, nvmlPciInfo_t);
_Static_assert(sizeof(gw_nvml_pci_info) == 68, "pci info is 68 bytes");
SAME_OFF(gw_nvml_pci_info, bus_id_legacy, nvmlPciInfo_t, busIdLegacy);
SAME_OFF(gw_nvml_pci_info, domain, nvmlPciInfo_t, domain);
SAME_OFF(gw_nvml_pci_info, bus, nvmlPciInfo_t, bus);
SAME_OFF(gw_nvml_pci_info, device, nvmlPciInfo_t, device);
SAME_OFF(gw_nvml_pci_info, pci_device_id, nvmlPciInfo_t, pciDeviceId);
SAME_OFF(gw_nvml_pci_info, pci_subsystem_id, nvmlPciInfo_t, pciSubSystemId);
SAME_OFF(gw_nvml_pci_info, bus_id, nvmlPciInfo_t, busId);

/* memory v1 (24) and v2 (40) */
SAME_SIZE(gw_nvml_memory_v1, nvmlMemory_t);
_Static_assert(sizeof(gw_nvml_memory_v1) == 24, "memory v1 is 24 bytes");
SAME_OFF(gw_nvml_memory_v1, total, nvmlMemory_t, total);
SAME_OFF(gw_nvml_memory_v1, free, nvmlMemory_t, free);
SAME_OFF(gw_nvml_memory_v1, used, nvmlMemory_t, used);
SAME_SIZE(gw_nvml_memory_v2, nvmlMemory_v2_t);
_Static_assert(sizeof(gw_nvml_memory_v2) == 40, "memory v2 is 40 bytes");
SAME_OFF(gw_nvml_memory_v2, version, nvmlMemory_v2_t, version);
SAME_OFF(gw_nvml_memory_v2, total, nvmlMemory_v2_t, total);
SAME_OFF(gw_nvml_memory_v2, reserved, nvmlMemory_v2_t, reserved);
SAME_OFF(gw_nvml_memory_v2, free, nvmlMemory_v2_t, free);
SAME_OFF(gw_nvml_memory_v2, used, nvmlMemory_v2_t, used);
SAME_VAL(GW_NVML_MEMORY_V2_VERSION, nvmlMemory_v2);
SAME_VAL(GW_NVML_MEMORY_V2_VERSION, 0x02000028u);
SAME_VAL(GW_NVML_MEMORY_V2_VERSION, (unsigned)(sizeof(nvmlMemory_v2_t) | 2u << 24));

/* utilisation (8) */
SAME_SIZE(gw_nvml_utilization, nvmlUtilization_t);
SAME_OFF(gw_nvml_utilization, gpu, nvmlUtilization_t, gpu);
SAME_OFF(gw_nvml_utilization, memory, nvmlUtilization_t, memory);

/* process info v1 (16), v2 (24) */
SAME_SIZE(gw_nvml_process_info_v1, nvmlProcessInfo_v1_t);
_Static_assert(sizeof(gw_nvml_process_info_v1) == 16, "process v1 is 16 bytes");
SAME_OFF(gw_nvml_process_info_v1, pid, nvmlProcessInfo_v1_t, pid);
SAME_OFF(gw_nvml_process_info_v1, used_gpu_memory, nvmlProcessInfo_v1_t, usedGpuMemory);
SAME_SIZE(gw_nvml_process_info_v2, nvmlProcessInfo_v2_t);
_Static_assert(sizeof(gw_nvml_process_info_v2) == 24, "process v2 is 24 bytes");
SAME_OFF(gw_nvml_process_info_v2, pid, nvmlProcessInfo_v2_t, pid);
SAME_OFF(gw_nvml_process_info_v2, used_gpu_memory, nvmlProcessInfo_v2_t, usedGpuMemory);
SAME_OFF(gw_nvml_process_info_v2, gpu_instance_id, nvmlProcessInfo_v2_t, gpuInstanceId);
SAME_OFF(gw_nvml_process_info_v2, compute_instance_id, nvmlProcessInfo_v2_t,
         computeInstanceId);

/* per-process utilisation sample (32) */
SAME_SIZE(gw_nvml_process_utilization_sample, nvmlProcessUtilizationSample_t);
_Static_assert(sizeof(gw_nvml_process_utilization_sample) == 32, "sample is 32 bytes");
SAME_OFF(gw_nvml_process_utilization_sample, pid, nvmlProcessUtilizationSample_t, pid);
SAME_OFF(gw_nvml_process_utilization_sample, time_stamp, nvmlProcessUtilizationSample_t,
         timeStamp);
SAME_OFF(gw_nvml_process_utilization_sample, sm_util, nvmlProcessUtilizationSample_t, smUtil);
SAME_OFF(gw_nvml_process_utilization_sample, mem_util, nvmlProcessUtilizationSample_t,
         memUtil);
SAME_OFF(gw_nvml_process_utilization_sample, enc_util, nvmlProcessUtilizationSample_t,
         encUtil);
SAME_OFF(gw_nvml_process_utilization_sample, dec_util, nvmlProcessUtilizationSample_t,
         decUtil);

_Static_assert(sizeof(gw_nvml_device_attributes) == 40, "attributes are 40 bytes");
SAME_SIZE(gw_nvml_device_attributes, nvmlDeviceAttributes_t);
SAME_OFF(gw_nvml_device_attributes, multiprocessor_count, nvmlDeviceAttributes_t,
         multiprocessorCount);
SAME_OFF(gw_nvml_device_attributes, gpu_instance_slice_count, nvmlDeviceAttributes_t,
         gpuInstanceSliceCount);
SAME_OFF(gw_nvml_device_attributes, compute_instance_slice_count, nvmlDeviceAttributes_t,
         computeInstanceSliceCount);
SAME_OFF(gw_nvml_device_attributes, memory_size_mb, nvmlDeviceAttributes_t, memorySizeMB);

_Static_assert(sizeof(gw_nvml_event_data) == 32, "event data is 32 bytes");
SAME_SIZE(gw_nvml_event_data, nvmlEventData_t);
SAME_OFF(gw_nvml_event_data, device, nvmlEventData_t, device);
SAME_OFF(gw_nvml_event_data, event_type, nvmlEventData_t, eventType);
SAME_OFF(gw_nvml_event_data, event_data, nvmlEventData_t, eventData);
SAME_OFF(gw_nvml_event_data, gpu_instance_id, nvmlEventData_t, gpuInstanceId);
SAME_OFF(gw_nvml_event_data, compute_instance_id, nvmlEventData_t, computeInstanceId);
SAME_VAL(GW_NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_MEMORY_ERROR_TYPE_CORRECTED);
SAME_VAL(GW_NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_MEMORY_ERROR_TYPE_UNCORRECTED);
SAME_VAL(GW_NVML_VOLATILE_ECC, NVML_VOLATILE_ECC);
SAME_VAL(GW_NVML_AGGREGATE_ECC, NVML_AGGREGATE_ECC);
SAME_VAL(GW_NVML_EVENT_TYPE_XID_CRITICAL_ERROR, nvmlEventTypeXidCriticalError);

/* return codes (the header of this Debian release stops at 25) */
SAME_VAL(GW_NVML_SUCCESS, NVML_SUCCESS);
SAME_VAL(GW_NVML_ERROR_UNINITIALIZED, NVML_ERROR_UNINITIALIZED);
SAME_VAL(GW_NVML_ERROR_INVALID_ARGUMENT, NVML_ERROR_INVALID_ARGUMENT);
SAME_VAL(GW_NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NOT_SUPPORTED);
SAME_VAL(GW_NVML_ERROR_NO_PERMISSION, NVML_ERROR_NO_PERMISSION);
SAME_VAL(GW_NVML_ERROR_ALREADY_INITIALIZED, NVML_ERROR_ALREADY_INITIALIZED);
SAME_VAL(GW_NVML_ERROR_NOT_FOUND, NVML_ERROR_NOT_FOUND);
SAME_VAL(GW_NVML_ERROR_INSUFFICIENT_SIZE, NVML_ERROR_INSUFFICIENT_SIZE);
SAME_VAL(GW_NVML_ERROR_INSUFFICIENT_POWER, NVML_ERROR_INSUFFICIENT_POWER);
SAME_VAL(GW_NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_DRIVER_NOT_LOADED);
SAME_VAL(GW_NVML_ERROR_TIMEOUT, NVML_ERROR_TIMEOUT);
SAME_VAL(GW_NVML_ERROR_IRQ_ISSUE, NVML_ERROR_IRQ_ISSUE);
SAME_VAL(GW_NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_LIBRARY_NOT_FOUND);
SAME_VAL(GW_NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_FUNCTION_NOT_FOUND);
SAME_VAL(GW_NVML_ERROR_CORRUPTED_INFOROM, NVML_ERROR_CORRUPTED_INFOROM);
SAME_VAL(GW_NVML_ERROR_GPU_IS_LOST, NVML_ERROR_GPU_IS_LOST);
SAME_VAL(GW_NVML_ERROR_RESET_REQUIRED, NVML_ERROR_RESET_REQUIRED);
SAME_VAL(GW_NVML_ERROR_OPERATING_SYSTEM, NVML_ERROR_OPERATING_SYSTEM);
SAME_VAL(GW_NVML_ERROR_LIB_RM_VERSION_MISMATCH, NVML_ERROR_LIB_RM_VERSION_MISMATCH);
SAME_VAL(GW_NVML_ERROR_IN_USE, NVML_ERROR_IN_USE);
SAME_VAL(GW_NVML_ERROR_MEMORY, NVML_ERROR_MEMORY);
SAME_VAL(GW_NVML_ERROR_NO_DATA, NVML_ERROR_NO_DATA);
SAME_VAL(GW_NVML_ERROR_VGPU_ECC_NOT_SUPPORTED, NVML_ERROR_VGPU_ECC_NOT_SUPPORTED);
SAME_VAL(GW_NVML_ERROR_INSUFFICIENT_RESOURCES, NVML_ERROR_INSUFFICIENT_RESOURCES);
SAME_VAL(GW_NVML_ERROR_FREQ_NOT_SUPPORTED, NVML_ERROR_FREQ_NOT_SUPPORTED);
SAME_VAL(GW_NVML_ERROR_ARGUMENT_VERSION_MISMATCH, NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
SAME_VAL(GW_NVML_ERROR_UNKNOWN, NVML_ERROR_UNKNOWN);

/* enums */
SAME_VAL(GW_NVML_CLOCK_GRAPHICS, NVML_CLOCK_GRAPHICS);
SAME_VAL(GW_NVML_CLOCK_SM, NVML_CLOCK_SM);
SAME_VAL(GW_NVML_CLOCK_MEM, NVML_CLOCK_MEM);
SAME_VAL(GW_NVML_CLOCK_VIDEO, NVML_CLOCK_VIDEO);
SAME_VAL(GW_NVML_TEMPERATURE_GPU, NVML_TEMPERATURE_GPU);
SAME_VAL(GW_NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN);
SAME_VAL(GW_NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN);
SAME_VAL(GW_NVML_TEMPERATURE_THRESHOLD_MEM_MAX, NVML_TEMPERATURE_THRESHOLD_MEM_MAX);
SAME_VAL(GW_NVML_TEMPERATURE_THRESHOLD_GPU_MAX, NVML_TEMPERATURE_THRESHOLD_GPU_MAX);
SAME_VAL(GW_NVML_PSTATE_UNKNOWN, NVML_PSTATE_UNKNOWN);

/* buffer sizes */
SAME_VAL(GW_NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
SAME_VAL(GW_NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE, NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE);
SAME_VAL(GW_NVML_DEVICE_NAME_V2_BUFFER_SIZE, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
SAME_VAL(GW_NVML_DEVICE_UUID_V2_BUFFER_SIZE, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
SAME_VAL(GW_NVML_DEVICE_SERIAL_BUFFER_SIZE, NVML_DEVICE_SERIAL_BUFFER_SIZE);
SAME_VAL(GW_NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE, NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE);
SAME_VAL(GW_NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE, NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE);

/* clock-event bits: the public GW_CLOCK_EVENT_* values are NVML's */
SAME_VAL(0x1ull, (unsigned long long)nvmlClocksThrottleReasonGpuIdle);
SAME_VAL(0x2ull, (unsigned long long)nvmlClocksThrottleReasonApplicationsClocksSetting);
SAME_VAL(0x4ull, (unsigned long long)nvmlClocksThrottleReasonSwPowerCap);
SAME_VAL(0x8ull, (unsigned long long)nvmlClocksThrottleReasonHwSlowdown);
SAME_VAL(0x10ull, (unsigned long long)nvmlClocksThrottleReasonSyncBoost);
SAME_VAL(0x20ull, (unsigned long long)nvmlClocksThrottleReasonSwThermalSlowdown);
SAME_VAL(0x40ull, (unsigned long long)nvmlClocksThrottleReasonHwThermalSlowdown);
SAME_VAL(0x80ull, (unsigned long long)nvmlClocksThrottleReasonHwPowerBrakeSlowdown);

int main(void)
{
    printf("nvmlMemory_v2 version word: 0x%08X (ours 0x%08X)\n", (unsigned)nvmlMemory_v2,
           GW_NVML_MEMORY_V2_VERSION);
    printf("sizes: pci %zu, memory %zu/%zu, utilization %zu, process %zu/%zu, sample %zu\n",
           sizeof(gw_nvml_pci_info), sizeof(gw_nvml_memory_v1), sizeof(gw_nvml_memory_v2),
           sizeof(gw_nvml_utilization), sizeof(gw_nvml_process_info_v1),
           sizeof(gw_nvml_process_info_v2), sizeof(gw_nvml_process_utilization_sample));
    /* nvmlMemory_v2 is a sizeof expression: check it at run time too. */
    return nvmlMemory_v2 == GW_NVML_MEMORY_V2_VERSION && GW_NVML_MEMORY_V2_VERSION == 0x02000028u
               ? 0
               : 1;
}
