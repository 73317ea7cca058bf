/* nvml_abi.h — gpuwatch's own declarations of the slice of the NVML C ABI
 * that the NVML backend calls through dlsym.
 *
 * What it owns: return codes, enum values, buffer sizes, struct layouts and
 * function-pointer types, written from the documented facts (x86-64 / LP64,
 * see docs and the shared NVML reference), NOT from NVIDIA's nvml.h: the
 * product never includes nvml.h, so it builds on machines without it and is
 * never silently "auto-upgraded" by the header's versioned-name macros (the
 * header maps nvmlDeviceGetComputeRunningProcesses to _v3, the 535.x trap).
 *
 * Invariants:
 *  1. Every layout here equals NVIDIA's: tests/nvml/abi_test.c compiles this
 *     file next to the official nvml.h and checks sizes, offsets and
 *     constants with _Static_assert. Change one and that test must change.
 *  2. Names are prefixed gw_nvml_ / GW_NVML_ so both headers can be included
 *     in one translation unit (the ABI test does).
 *  3. Only append; nothing here is ever reordered.
 */
#ifndef GW_BACKENDS_NVML_ABI_H
#define GW_BACKENDS_NVML_ABI_H

/* nvmlReturn_t: a 4-byte enum; we keep it as int. */
typedef int gw_nvml_return;

#define GW_NVML_SUCCESS 0
#define GW_NVML_ERROR_UNINITIALIZED 1
#define GW_NVML_ERROR_INVALID_ARGUMENT 2
#define GW_NVML_ERROR_NOT_SUPPORTED 3
#define GW_NVML_ERROR_NO_PERMISSION 4
#define GW_NVML_ERROR_ALREADY_INITIALIZED 5
#define GW_NVML_ERROR_NOT_FOUND 6
#define GW_NVML_ERROR_INSUFFICIENT_SIZE 7
#define GW_NVML_ERROR_INSUFFICIENT_POWER 8
#define GW_NVML_ERROR_DRIVER_NOT_LOADED 9
#define GW_NVML_ERROR_TIMEOUT 10
#define GW_NVML_ERROR_IRQ_ISSUE 11
#define GW_NVML_ERROR_LIBRARY_NOT_FOUND 12
#define GW_NVML_ERROR_FUNCTION_NOT_FOUND 13
#define GW_NVML_ERROR_CORRUPTED_INFOROM 14
#define GW_NVML_ERROR_GPU_IS_LOST 15
#define GW_NVML_ERROR_RESET_REQUIRED 16
#define GW_NVML_ERROR_OPERATING_SYSTEM 17
#define GW_NVML_ERROR_LIB_RM_VERSION_MISMATCH 18
#define GW_NVML_ERROR_IN_USE 19
#define GW_NVML_ERROR_MEMORY 20
#define GW_NVML_ERROR_NO_DATA 21
#define GW_NVML_ERROR_VGPU_ECC_NOT_SUPPORTED 22
#define GW_NVML_ERROR_INSUFFICIENT_RESOURCES 23
#define GW_NVML_ERROR_FREQ_NOT_SUPPORTED 24
#define GW_NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define GW_NVML_ERROR_DEPRECATED 26
#define GW_NVML_ERROR_NOT_READY 27
#define GW_NVML_ERROR_GPU_NOT_FOUND 28
#define GW_NVML_ERROR_INVALID_STATE 29
#define GW_NVML_ERROR_UNKNOWN 999

/* nvmlClockType_t */
#define GW_NVML_CLOCK_GRAPHICS 0
#define GW_NVML_CLOCK_SM 1
#define GW_NVML_CLOCK_MEM 2
#define GW_NVML_CLOCK_VIDEO 3

/* nvmlTemperatureSensors_t / nvmlTemperatureThresholds_t */
#define GW_NVML_TEMPERATURE_GPU 0
#define GW_NVML_TEMPERATURE_THRESHOLD_SHUTDOWN 0
#define GW_NVML_TEMPERATURE_THRESHOLD_SLOWDOWN 1
#define GW_NVML_TEMPERATURE_THRESHOLD_MEM_MAX 2
#define GW_NVML_TEMPERATURE_THRESHOLD_GPU_MAX 3

/* nvmlPstates_t: 0..15, 32 = unknown */
#define GW_NVML_PSTATE_UNKNOWN 32

/* Buffer sizes (bytes, NUL included). */
#define GW_NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define GW_NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define GW_NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define GW_NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define GW_NVML_DEVICE_SERIAL_BUFFER_SIZE 30
#define GW_NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define GW_NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

/* usedGpuMemory == this: "not available" (WSL2, some containers). */
#define GW_NVML_VALUE_NOT_AVAILABLE_ULL 0xFFFFFFFFFFFFFFFFull

/* Opaque handle. */
typedef struct gw_nvml_device_st *gw_nvml_device;

/* nvmlPciInfo_t, 68 bytes. */
typedef struct gw_nvml_pci_info {
    char bus_id_legacy[GW_NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pci_device_id; /* device << 16 | vendor */
    unsigned int pci_subsystem_id;
    char bus_id[GW_NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} gw_nvml_pci_info;

/* nvmlMemory_t (v1), 24 bytes. Since R510 `used` includes reserved memory. */
typedef struct gw_nvml_memory_v1 {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} gw_nvml_memory_v1;

/* nvmlMemory_v2_t, 40 bytes. `version` MUST be GW_NVML_MEMORY_V2_VERSION. */
typedef struct gw_nvml_memory_v2 {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} gw_nvml_memory_v2;

/* NVML_STRUCT_VERSION(Memory, 2): sizeof | 2 << 24 = 0x02000028. Passing a
 * bare 2 fails with ARGUMENT_VERSION_MISMATCH (the nvtop bug). */
#define GW_NVML_MEMORY_V2_VERSION \
    ((unsigned int)(sizeof(gw_nvml_memory_v2) | (2u << 24)))

/* nvmlUtilization_t, 8 bytes. */
typedef struct gw_nvml_utilization {
    unsigned int gpu;
    unsigned int memory;
} gw_nvml_utilization;

/* nvmlProcessInfo_v1_t, 16 bytes. */
typedef struct gw_nvml_process_info_v1 {
    unsigned int pid;
    unsigned long long used_gpu_memory;
} gw_nvml_process_info_v1;

/* nvmlProcessInfo_v2_t, 24 bytes (what _v2 writes). The _v3 entry points of
 * drivers 530.41..535.86 write 32-byte entries instead: never call _v3. */
typedef struct gw_nvml_process_info_v2 {
    unsigned int pid;
    unsigned long long used_gpu_memory;
    unsigned int gpu_instance_id;     /* 0xFFFFFFFF without MIG */
    unsigned int compute_instance_id; /* 0xFFFFFFFF without MIG */
} gw_nvml_process_info_v2;

/* nvmlProcessUtilizationSample_t, 32 bytes. */
typedef struct gw_nvml_process_utilization_sample {
    unsigned int pid;
    unsigned long long time_stamp; /* CPU time, microseconds */
    unsigned int sm_util;
    unsigned int mem_util;
    unsigned int enc_util;
    unsigned int dec_util;
} gw_nvml_process_utilization_sample;

/* nvmlMemoryErrorType_t / nvmlEccCounterType_t */
#define GW_NVML_MEMORY_ERROR_TYPE_CORRECTED 0
#define GW_NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define GW_NVML_VOLATILE_ECC 0
#define GW_NVML_AGGREGATE_ECC 1

/* nvmlEventType bits */
#define GW_NVML_EVENT_TYPE_XID_CRITICAL_ERROR 0x8ull

/* nvmlEventSet_t: an opaque pointer. */
typedef struct gw_nvml_event_set_st *gw_nvml_event_set;

/* nvmlEventData_t, 32 bytes. */
typedef struct gw_nvml_event_data {
    gw_nvml_device device;
    unsigned long long event_type;
    unsigned long long event_data; /* the Xid number for Xid events */
    unsigned int gpu_instance_id;
    unsigned int compute_instance_id;
} gw_nvml_event_data;

/* nvmlDeviceAttributes_t (nvmlDeviceGetAttributes_v2), 40 bytes: a MIG
 * device's SM count, slice counts and memory. */
typedef struct gw_nvml_device_attributes {
    unsigned int multiprocessor_count;
    unsigned int shared_copy_engine_count;
    unsigned int shared_decoder_count;
    unsigned int shared_encoder_count;
    unsigned int shared_jpeg_count;
    unsigned int shared_ofa_count;
    unsigned int gpu_instance_slice_count;
    unsigned int compute_instance_slice_count;
    unsigned long long memory_size_mb;
} gw_nvml_device_attributes;

/* Function pointer types, one per prototype shape (dev = gw_nvml_device). */
typedef gw_nvml_return (*gw_nvml_fn_void)(void);
typedef const char *(*gw_nvml_fn_error_string)(gw_nvml_return);
typedef gw_nvml_return (*gw_nvml_fn_str)(char *, unsigned int);
typedef gw_nvml_return (*gw_nvml_fn_int)(int *);
typedef gw_nvml_return (*gw_nvml_fn_uint)(unsigned int *);
typedef gw_nvml_return (*gw_nvml_fn_handle_by_index)(unsigned int, gw_nvml_device *);
typedef gw_nvml_return (*gw_nvml_fn_dev_str)(gw_nvml_device, char *, unsigned int);
typedef gw_nvml_return (*gw_nvml_fn_dev_pci)(gw_nvml_device, gw_nvml_pci_info *);
typedef gw_nvml_return (*gw_nvml_fn_dev_int2)(gw_nvml_device, int *, int *);
typedef gw_nvml_return (*gw_nvml_fn_dev_uint)(gw_nvml_device, unsigned int *);
typedef gw_nvml_return (*gw_nvml_fn_dev_uint2)(gw_nvml_device, unsigned int *, unsigned int *);
typedef gw_nvml_return (*gw_nvml_fn_dev_int)(gw_nvml_device, int *);
typedef gw_nvml_return (*gw_nvml_fn_dev_ull)(gw_nvml_device, unsigned long long *);
/* (dev, enum type, unsigned *): clocks, temperature, thresholds */
typedef gw_nvml_return (*gw_nvml_fn_dev_enum_uint)(gw_nvml_device, int, unsigned int *);
typedef gw_nvml_return (*gw_nvml_fn_dev_mem_v1)(gw_nvml_device, gw_nvml_memory_v1 *);
typedef gw_nvml_return (*gw_nvml_fn_dev_mem_v2)(gw_nvml_device, gw_nvml_memory_v2 *);
typedef gw_nvml_return (*gw_nvml_fn_dev_util)(gw_nvml_device, gw_nvml_utilization *);
typedef gw_nvml_return (*gw_nvml_fn_dev_procs_v1)(gw_nvml_device, unsigned int *,
                                                  gw_nvml_process_info_v1 *);
typedef gw_nvml_return (*gw_nvml_fn_dev_procs_v2)(gw_nvml_device, unsigned int *,
                                                  gw_nvml_process_info_v2 *);
/* nvmlDeviceGetRemappedRows(dev, corrRows, uncRows, isPending, failureOccurred) */
typedef gw_nvml_return (*gw_nvml_fn_dev_uint4)(gw_nvml_device, unsigned int *, unsigned int *,
                                               unsigned int *, unsigned int *);
/* nvmlDeviceGetTotalEccErrors(dev, errorType, counterType, count) */
typedef gw_nvml_return (*gw_nvml_fn_dev_ecc)(gw_nvml_device, int, int, unsigned long long *);
typedef gw_nvml_return (*gw_nvml_fn_event_set_create)(gw_nvml_event_set *);
typedef gw_nvml_return (*gw_nvml_fn_register_events)(gw_nvml_device, unsigned long long,
                                                     gw_nvml_event_set);
typedef gw_nvml_return (*gw_nvml_fn_event_set_wait)(gw_nvml_event_set, gw_nvml_event_data *,
                                                    unsigned int);
typedef gw_nvml_return (*gw_nvml_fn_event_set_free)(gw_nvml_event_set);
typedef gw_nvml_return (*gw_nvml_fn_dev_uint_dev)(gw_nvml_device, unsigned int, gw_nvml_device *);
typedef gw_nvml_return (*gw_nvml_fn_dev_dev)(gw_nvml_device, gw_nvml_device *);
typedef gw_nvml_return (*gw_nvml_fn_dev_attributes)(gw_nvml_device, gw_nvml_device_attributes *);
typedef gw_nvml_return (*gw_nvml_fn_dev_proc_util)(gw_nvml_device,
                                                   gw_nvml_process_utilization_sample *,
                                                   unsigned int *, unsigned long long);

#endif
