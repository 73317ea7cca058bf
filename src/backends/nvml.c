/* nvml.c — the NVIDIA source: NVML loaded at run time with dlopen.
 *
 * What it owns: the loaded library and its resolved entry points, the NVML
 * init reference (taken once in open, dropped in close: never re-initialised
 * per query), one record per GPU (handle, static info read once at open,
 * lost flag, per-process-utilisation lastSeen, Xid counts), the per-sample
 * call counter, the Xid event set, and a procinfo cache for PID -> name/user/
 * command line.
 *
 * Invariants:
 *  1. Only init, count and handle-by-index are required; every other symbol
 *     is optional and a missing one only leaves its metric absent. Versioned
 *     names are tried first (nvmlInit_v2, ..._v2, PciInfo_v3), then the older
 *     names. The process-list _v3 names are NEVER used (535.x 32-byte stride).
 *  2. Memory is read with nvmlDeviceGetMemoryInfo_v2 and the version word
 *     sizeof|2<<24; v1 only when _v2 is absent or answers NOT_SUPPORTED /
 *     ARGUMENT_VERSION_MISMATCH / FUNCTION_NOT_FOUND; the host's meminfo only
 *     when NVML has no figure (unified memory). info.memory_api says which
 *     ("v2"/"v1"/"meminfo"); the choice is made once per device.
 *  3. A device that answers GPU_IS_LOST or UNKNOWN to any call is lost: it
 *     stays in the snapshot as GW_DEVICE_LOST with the reason, no metric of
 *     it is valid, and the other devices go on. GPU_IS_LOST is final for the
 *     life of this state (the GPU fell off the bus; it is not called again);
 *     UNKNOWN is retried on the next sample.
 *  4. NOT_SUPPORTED (or any other failure of a metric call) leaves that
 *     metric's valid bit clear: never a 0 that looks like a reading.
 *  5. A GPU whose handle answers NO_PERMISSION is skipped (not in the
 *     snapshot) and named in the source status message.
 *  6. Every value copied out of the library is bounds-checked: counts are
 *     capped by the buffer we passed, strings are NUL-terminated.
 *  7. A per-sample metric that answered NOT_SUPPORTED is not asked again
 *     (the answer cannot change while NVML stays initialised).
 *  8. Processes: Compute and Graphics lists (_v2, else v1) merged by pid;
 *     usedGpuMemory == ULLONG_MAX is "unavailable". Per-process utilisation
 *     comes from samples newer than the device's lastSeen; samples with a
 *     value over 100 or an unlisted pid are garbage; NVML samples only busy
 *     processes, so after a query that worked a listed process without a
 *     sample is idle (0 %), one with only garbage samples unknown. Not read
 *     under MIG (NVML has none).
 *  9. Calls are counted per sample (gw_source_status.calls); open's calls
 *     are not part of any sample.
 * 10. Health: PCIe replays, volatile ECC totals and remapped rows are read
 *     per sample like any metric. Critical Xid events come through one event
 *     set registered at open (the GPUs that accept it); each sample takes
 *     what is pending with a zero timeout, so it never waits; the Xid
 *     figures of a GPU are valid only when it is registered.
 * 11. MIG (docs/mig.md): at open, every GPU whose current MIG mode is on
 *     has its MIG devices enumerated (nvmlDeviceGetMaxMigDeviceCount, then
 *     the handle of each slot; empty slots answer NOT_FOUND). They follow
 *     every whole GPU in devs[] (so NVML's GPU indexes stay the snapshot's
 *     first indexes), each after the ones of lower GPUs, with source_index
 *     1000 * (its GPU's NVML index + 1) + its slot. A MIG device is sampled
 *     for memory and utilisation only (NVML answers the rest for the whole
 *     GPU); its processes are read on its own handle, and its GPU's are not
 *     read (every process runs on an instance). A MIG device of a lost GPU
 *     is lost. Without the MIG entry points (old drivers) a GPU in MIG mode
 *     is reported alone, mig_enabled true. The layout is read once: a MIG
 *     reconfiguration shows after a restart (docs/mig.md says so).
 */
#include "backends/nvml.h"

#include "backends/nvml_abi.h"
#include "backends/procinfo.h"
#include "core/array.h"
#include "core/util.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_MAX_DEVICES 64u
#define NVML_MAX_PROCS 65536u /* per list per device: more is a broken driver */

/* The resolved entry points. Field names are the NVML names without the
 * "nvml" prefix so messages can name the call; NULL = not exported. */
typedef struct nvml_fns {
    gw_nvml_fn_void Init;
    gw_nvml_fn_void Shutdown;
    gw_nvml_fn_error_string ErrorString;
    gw_nvml_fn_uint DeviceGetCount;
    gw_nvml_fn_handle_by_index DeviceGetHandleByIndex;
    gw_nvml_fn_str SystemGetDriverVersion;
    gw_nvml_fn_str SystemGetNVMLVersion;
    gw_nvml_fn_int SystemGetCudaDriverVersion;
    gw_nvml_fn_dev_str DeviceGetName;
    gw_nvml_fn_dev_str DeviceGetUUID;
    gw_nvml_fn_dev_str DeviceGetSerial;
    gw_nvml_fn_dev_pci DeviceGetPciInfo;
    gw_nvml_fn_dev_int2 DeviceGetCudaComputeCapability;
    gw_nvml_fn_dev_uint2 DeviceGetMigMode;
    gw_nvml_fn_dev_mem_v2 DeviceGetMemoryInfo_v2;
    gw_nvml_fn_dev_mem_v1 DeviceGetMemoryInfo;
    gw_nvml_fn_dev_util DeviceGetUtilizationRates;
    gw_nvml_fn_dev_uint2 DeviceGetEncoderUtilization;
    gw_nvml_fn_dev_uint2 DeviceGetDecoderUtilization;
    gw_nvml_fn_dev_enum_uint DeviceGetTemperature;
    gw_nvml_fn_dev_enum_uint DeviceGetTemperatureThreshold;
    gw_nvml_fn_dev_uint DeviceGetPowerUsage;
    gw_nvml_fn_dev_uint DeviceGetEnforcedPowerLimit;
    gw_nvml_fn_dev_uint2 DeviceGetPowerManagementLimitConstraints;
    gw_nvml_fn_dev_uint DeviceGetPowerManagementDefaultLimit;
    gw_nvml_fn_dev_ull DeviceGetTotalEnergyConsumption;
    gw_nvml_fn_dev_enum_uint DeviceGetClockInfo;
    gw_nvml_fn_dev_enum_uint DeviceGetMaxClockInfo;
    gw_nvml_fn_dev_uint DeviceGetFanSpeed;
    gw_nvml_fn_dev_int DeviceGetPerformanceState;
    gw_nvml_fn_dev_ull DeviceGetCurrentClocksEventReasons;
    gw_nvml_fn_dev_uint DeviceGetCurrPcieLinkGeneration;
    gw_nvml_fn_dev_uint DeviceGetCurrPcieLinkWidth;
    gw_nvml_fn_dev_uint DeviceGetMaxPcieLinkGeneration;
    gw_nvml_fn_dev_uint DeviceGetMaxPcieLinkWidth;
    gw_nvml_fn_dev_procs_v2 DeviceGetComputeRunningProcesses_v2;
    gw_nvml_fn_dev_procs_v1 DeviceGetComputeRunningProcesses;
    gw_nvml_fn_dev_procs_v2 DeviceGetGraphicsRunningProcesses_v2;
    gw_nvml_fn_dev_procs_v1 DeviceGetGraphicsRunningProcesses;
    gw_nvml_fn_dev_proc_util DeviceGetProcessUtilization;
    gw_nvml_fn_dev_uint DeviceGetPcieReplayCounter;
    gw_nvml_fn_dev_ecc DeviceGetTotalEccErrors;
    gw_nvml_fn_dev_uint4 DeviceGetRemappedRows;
    gw_nvml_fn_event_set_create EventSetCreate;
    gw_nvml_fn_register_events DeviceRegisterEvents;
    gw_nvml_fn_event_set_wait EventSetWait_v2;
    gw_nvml_fn_event_set_free EventSetFree;
    gw_nvml_fn_dev_uint DeviceGetMaxMigDeviceCount;
    gw_nvml_fn_dev_uint_dev DeviceGetMigDeviceHandleByIndex;
    gw_nvml_fn_dev_uint DeviceGetGpuInstanceId;
    gw_nvml_fn_dev_uint DeviceGetComputeInstanceId;
    gw_nvml_fn_dev_attributes DeviceGetAttributes_v2;
} nvml_fns;

typedef struct nvml_dev {
    gw_nvml_device handle; /* NULL when the handle could not be had */
    gw_device_info info;   /* static, read once at open */
    bool lost;             /* see invariant 3 */
    gw_nvml_return lost_code; /* GPU_IS_LOST (final) or UNKNOWN (retried) */
    bool error;            /* no handle (other than NO_PERMISSION) */
    char reason[160];
    enum { MEM_V2 = 0, MEM_V1, MEM_HOST } mem_src; /* see read_memory */
    uint64_t unsupported; /* 1 << gw_metric: answered NOT_SUPPORTED, not asked again */
    unsigned long long last_seen_us; /* per-process utilisation cursor */
    bool xid_registered; /* Xid events of this GPU reach the event set */
    uint32_t xid_last;   /* last critical Xid seen (0: none) */
    uint64_t xid_events; /* critical Xid events seen since open */
    bool is_mig;         /* a MIG device (invariant 11) */
    unsigned parent;     /* is_mig: its GPU's position in devs[] */
    unsigned n_mig;      /* a GPU: how many MIG devices of it follow in devs[] */
    uint32_t snap_index; /* index in the snapshot being made (nvml_sample) */
} nvml_dev;

/* One process row while merging the two lists of one device. */
typedef struct proc_row {
    uint32_t pid;
    gw_process_kind kind;
    bool mem_valid;
    uint64_t mem;
    bool util_valid;
    bool util_garbage; /* only unusable samples seen: unknown, not idle */
    unsigned long long util_ts;
    unsigned sm, memu, enc, dec;
} proc_row;

typedef struct nvml_state {
    void *lib;
    nvml_fns fn;
    const char *init_name, *count_name, *handle_name; /* symbols in use */
    nvml_dev *devs;
    unsigned n_devs;
    size_t devs_cap;
    char driver_version[32], library_version[32], cuda_version[16];
    char notes[256];   /* open-time notes: skipped GPUs */
    bool any_skipped;
    bool processes;
    char proc_root[512];
    gw__procinfo *pc;
    uint64_t calls; /* NVML calls in the last sample */
    gw_nvml_event_set events; /* Xid events of every GPU; NULL: none */
    /* scratch buffers reused across samples */
    gw_nvml_process_info_v2 *raw;
    size_t raw_cap; /* entries of v2 size (v1 entries are smaller) */
    gw_nvml_process_utilization_sample *util;
    size_t util_cap;
    proc_row *rows;
    size_t rows_cap;
} nvml_state;

/* ------------------------------------------------------------- helpers */

static const char *nvml_errstr(const nvml_state *s, gw_nvml_return r)
{
    const char *t = s->fn.ErrorString ? s->fn.ErrorString(r) : NULL;
    return t && *t ? t : "error";
}

static bool is_lost_code(gw_nvml_return r)
{
    return r == GW_NVML_ERROR_GPU_IS_LOST || r == GW_NVML_ERROR_UNKNOWN;
}

static void mark_lost(nvml_state *s, nvml_dev *d, gw_nvml_return r, const char *fn)
{
    if (d->lost)
        return;
    d->lost = true;
    d->lost_code = r;
    snprintf(d->reason, sizeof d->reason, "nvml%s: %s (%d)", fn, nvml_errstr(s, r), r);
}

/* Classifies a result for device d: true on SUCCESS; GPU_IS_LOST / UNKNOWN
 * mark d lost. Does not count. */
static bool classify(nvml_state *s, nvml_dev *d, gw_nvml_return r, const char *fn)
{
    if (r == GW_NVML_SUCCESS)
        return true;
    if (is_lost_code(r))
        mark_lost(s, d, r, fn);
    return false;
}

/* Counts one call and classifies its result (see classify). */
static bool check(nvml_state *s, nvml_dev *d, gw_nvml_return r, const char *fn)
{
    s->calls++;
    return classify(s, d, r, fn);
}

/* check() for a per-sample metric m: NOT_SUPPORTED / FUNCTION_NOT_FOUND is
 * remembered so the metric is not asked again (it cannot become supported
 * while the driver stays loaded), saving a call per metric per sample on
 * consumer cards. */
static bool check_metric(nvml_state *s, nvml_dev *d, gw_metric m, gw_nvml_return r,
                         const char *fn)
{
    if (r == GW_NVML_ERROR_NOT_SUPPORTED || r == GW_NVML_ERROR_FUNCTION_NOT_FOUND)
        d->unsupported |= 1ull << m;
    return check(s, d, r, fn);
}

/* Calls an optional entry point f on a live device; true on SUCCESS. */
#define CALL(s, d, f, ...) \
    ((s)->fn.f && !(d)->lost && check((s), (d), (s)->fn.f(__VA_ARGS__), #f))

/* CALL for per-sample metric m (skipped once m answered NOT_SUPPORTED). */
#define CALLM(s, d, m, f, ...)                                                   \
    (!(((d)->unsupported >> (m)) & 1u) && (s)->fn.f && !(d)->lost &&            \
     check_metric((s), (d), (m), (s)->fn.f(__VA_ARGS__), #f))

/* The buffer size to ask for after the library said it needs `count`
 * entries: count*2+5 (processes start between the two calls), capped. */
static unsigned retry_size(unsigned count)
{
    uint64_t n = (uint64_t)count * 2u + 5u;
    return n > NVML_MAX_PROCS ? NVML_MAX_PROCS : (unsigned)n;
}

static void *sym(void *lib, const char *name)
{
    return dlsym(lib, name);
}

/* Resolves the first exported name of a NULL-terminated list; *used gets it. */
static void *sym_first(void *lib, const char *const *names, const char **used)
{
    for (; *names; names++) {
        void *p = dlsym(lib, *names);
        if (p) {
            if (used)
                *used = *names;
            return p;
        }
    }
    return NULL;
}

#define SYM(s, field) ((s)->fn.field = (__typeof__((s)->fn.field))sym((s)->lib, "nvml" #field))
#define SYM2(s, field, n1, n2)                                                        \
    ((s)->fn.field = (__typeof__((s)->fn.field))sym_first(                            \
         (s)->lib, (const char *const[]){n1, n2, NULL}, NULL))

static void resolve(nvml_state *s)
{
    static const char *const init_names[] = {"nvmlInit_v2", "nvmlInit", NULL};
    static const char *const count_names[] = {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount",
                                              NULL};
    static const char *const handle_names[] = {"nvmlDeviceGetHandleByIndex_v2",
                                               "nvmlDeviceGetHandleByIndex", NULL};
    static const char *const pci_names[] = {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2",
                                            "nvmlDeviceGetPciInfo", NULL};
    s->fn.Init = (gw_nvml_fn_void)sym_first(s->lib, init_names, &s->init_name);
    s->fn.DeviceGetCount = (gw_nvml_fn_uint)sym_first(s->lib, count_names, &s->count_name);
    s->fn.DeviceGetHandleByIndex =
        (gw_nvml_fn_handle_by_index)sym_first(s->lib, handle_names, &s->handle_name);
    s->fn.DeviceGetPciInfo = (gw_nvml_fn_dev_pci)sym_first(s->lib, pci_names, NULL);
    SYM(s, Shutdown);
    SYM(s, ErrorString);
    SYM(s, SystemGetDriverVersion);
    SYM(s, SystemGetNVMLVersion);
    SYM2(s, SystemGetCudaDriverVersion, "nvmlSystemGetCudaDriverVersion_v2",
         "nvmlSystemGetCudaDriverVersion");
    SYM(s, DeviceGetName);
    SYM(s, DeviceGetUUID);
    SYM(s, DeviceGetSerial);
    SYM(s, DeviceGetCudaComputeCapability);
    SYM(s, DeviceGetMigMode);
    SYM(s, DeviceGetMemoryInfo_v2);
    SYM(s, DeviceGetMemoryInfo);
    SYM(s, DeviceGetUtilizationRates);
    SYM(s, DeviceGetEncoderUtilization);
    SYM(s, DeviceGetDecoderUtilization);
    SYM(s, DeviceGetTemperature);
    SYM(s, DeviceGetTemperatureThreshold);
    SYM(s, DeviceGetPowerUsage);
    SYM(s, DeviceGetEnforcedPowerLimit);
    SYM(s, DeviceGetPowerManagementLimitConstraints);
    SYM(s, DeviceGetPowerManagementDefaultLimit);
    SYM(s, DeviceGetTotalEnergyConsumption);
    SYM(s, DeviceGetClockInfo);
    SYM(s, DeviceGetMaxClockInfo);
    SYM(s, DeviceGetFanSpeed);
    SYM(s, DeviceGetPerformanceState);
    /* R535 renamed throttle reasons to clock-event reasons; same ABI. */
    SYM2(s, DeviceGetCurrentClocksEventReasons, "nvmlDeviceGetCurrentClocksEventReasons",
         "nvmlDeviceGetCurrentClocksThrottleReasons");
    SYM(s, DeviceGetCurrPcieLinkGeneration);
    SYM(s, DeviceGetCurrPcieLinkWidth);
    SYM(s, DeviceGetMaxPcieLinkGeneration);
    SYM(s, DeviceGetMaxPcieLinkWidth);
    SYM(s, DeviceGetComputeRunningProcesses_v2);
    SYM(s, DeviceGetComputeRunningProcesses);
    SYM(s, DeviceGetGraphicsRunningProcesses_v2);
    SYM(s, DeviceGetGraphicsRunningProcesses);
    SYM(s, DeviceGetProcessUtilization);
    SYM(s, DeviceGetPcieReplayCounter);
    SYM(s, DeviceGetTotalEccErrors);
    SYM(s, DeviceGetRemappedRows);
    SYM(s, EventSetCreate);
    SYM(s, DeviceRegisterEvents);
    SYM(s, EventSetWait_v2);
    SYM(s, EventSetFree);
    SYM(s, DeviceGetMaxMigDeviceCount);
    SYM(s, DeviceGetMigDeviceHandleByIndex);
    SYM(s, DeviceGetGpuInstanceId);
    SYM(s, DeviceGetComputeInstanceId);
    SYM(s, DeviceGetAttributes_v2);
}

/* Copies a string the library wrote into buf[cap] (forcing a NUL). */
static void copy_out(char *dst, size_t dcap, char *buf, size_t cap)
{
    buf[cap - 1] = 0;
    gw__strlcpy(dst, buf, dcap);
}

static bool memory_v1_fallback(gw_nvml_return r)
{
    return r == GW_NVML_ERROR_NOT_SUPPORTED || r == GW_NVML_ERROR_ARGUMENT_VERSION_MISMATCH ||
           r == GW_NVML_ERROR_FUNCTION_NOT_FOUND;
}

/* Stores one memory reading in the sample (when out) and the static total. */
static void set_memory(nvml_dev *d, gw_sample *out, const char *api, uint64_t total,
                       uint64_t used, uint64_t freeb, const uint64_t *reserved)
{
    gw__strlcpy(d->info.memory_api, api, sizeof d->info.memory_api);
    d->info.memory_total = total;
    d->info.valid |= 1ull << GW_INFO_MEMORY_TOTAL;
    if (!out)
        return;
    out->mem_total = total;
    out->mem_used = used;
    out->mem_free = freeb;
    out->valid |= 1ull << GW_METRIC_MEM_TOTAL | 1ull << GW_METRIC_MEM_USED |
                  1ull << GW_METRIC_MEM_FREE;
    if (reserved) {
        out->mem_reserved = *reserved;
        out->valid |= 1ull << GW_METRIC_MEM_RESERVED;
    }
}

/* "Key:   N kB" of a meminfo text, in bytes. */
static bool meminfo_bytes(const char *text, const char *key, uint64_t *out)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, n) != 0 || p[n] != ':')
            continue;
        char num[32];
        size_t i = 0;
        for (p += n + 1; *p == ' ' || *p == '\t'; p++) {
        }
        while (i + 1 < sizeof num && *p >= '0' && *p <= '9')
            num[i++] = *p++;
        num[i] = 0;
        uint64_t kb;
        return gw__parse_u64(num, &kb) && gw__mul_u64(kb, 1024, out);
    }
    return false;
}

/* Reads memory into out (may be NULL), choosing the call once per device
 * (invariant 2): _v2 with its version word; v1 when _v2 is absent or answers
 * NOT_SUPPORTED / ARGUMENT_VERSION_MISMATCH / FUNCTION_NOT_FOUND; and when
 * NVML has no memory figure at all (NOT_SUPPORTED, or a total of 0: a
 * unified-memory GPU such as GB10) the host's memory from <proc>/meminfo,
 * which is the memory such a GPU allocates from ("meminfo"). */
static bool read_memory(nvml_state *s, nvml_dev *d, gw_sample *out)
{
    gw_nvml_return r = GW_NVML_ERROR_FUNCTION_NOT_FOUND;
    if (d->lost)
        return false;
    if (d->mem_src == MEM_V2 && !s->fn.DeviceGetMemoryInfo_v2)
        d->mem_src = MEM_V1;
    if (d->mem_src == MEM_V2) {
        gw_nvml_memory_v2 m;
        memset(&m, 0, sizeof m);
        m.version = GW_NVML_MEMORY_V2_VERSION;
        r = s->fn.DeviceGetMemoryInfo_v2(d->handle, &m);
        s->calls++;
        if (r == GW_NVML_SUCCESS && m.total > 0) {
            uint64_t reserved = m.reserved;
            set_memory(d, out, "v2", m.total, m.used, m.free, &reserved);
            return true;
        }
        if (r == GW_NVML_SUCCESS)
            r = GW_NVML_ERROR_NOT_SUPPORTED; /* total 0: unified memory */
        else if (!memory_v1_fallback(r))
            return classify(s, d, r, "DeviceGetMemoryInfo_v2");
        d->mem_src = MEM_V1;
    }
    if (d->mem_src == MEM_V1) {
        if (s->fn.DeviceGetMemoryInfo) {
            gw_nvml_memory_v1 m;
            memset(&m, 0, sizeof m);
            r = s->fn.DeviceGetMemoryInfo(d->handle, &m);
            s->calls++;
            if (r == GW_NVML_SUCCESS && m.total > 0) {
                /* v1 has no reserved figure; its used includes it (R510+) */
                set_memory(d, out, "v1", m.total, m.used, m.free, NULL);
                return true;
            }
            if (r == GW_NVML_SUCCESS)
                r = GW_NVML_ERROR_NOT_SUPPORTED;
        }
        if (r != GW_NVML_ERROR_NOT_SUPPORTED)
            return classify(s, d, r, "DeviceGetMemoryInfo");
        d->mem_src = MEM_HOST;
    }
    char path[600], buf[8192];
    uint64_t total, avail;
    snprintf(path, sizeof path, "%s/meminfo", s->proc_root);
    if (gw__read_file(path, buf, sizeof buf) <= 0 || !meminfo_bytes(buf, "MemTotal", &total) ||
        !meminfo_bytes(buf, "MemAvailable", &avail) || avail > total || total == 0)
        return false;
    set_memory(d, out, "meminfo", total, total - avail, avail, NULL);
    return true;
}

/* ------------------------------------------------------------------ open */

static void read_static(nvml_state *s, nvml_dev *d, unsigned index)
{
    gw_device_info *in = &d->info;
    gw_nvml_device h = d->handle;
    char buf[128];
    unsigned a, b;
    int ia, ib;

    in->vendor = GW_VENDOR_NVIDIA;
    in->source_index = index;
    gw__strlcpy(in->source, "nvml", sizeof in->source);
    gw__strlcpy(in->driver_version, s->driver_version, sizeof in->driver_version);
    gw__strlcpy(in->library_version, s->library_version, sizeof in->library_version);
    gw__strlcpy(in->cuda_version, s->cuda_version, sizeof in->cuda_version);

    if (CALL(s, d, DeviceGetName, h, buf, GW_NVML_DEVICE_NAME_V2_BUFFER_SIZE))
        copy_out(in->name, sizeof in->name, buf, GW_NVML_DEVICE_NAME_V2_BUFFER_SIZE);
    if (CALL(s, d, DeviceGetUUID, h, buf, GW_NVML_DEVICE_UUID_V2_BUFFER_SIZE))
        copy_out(in->uuid, sizeof in->uuid, buf, GW_NVML_DEVICE_UUID_V2_BUFFER_SIZE);
    if (CALL(s, d, DeviceGetSerial, h, buf, sizeof in->serial)) {
        copy_out(in->serial, sizeof in->serial, buf, sizeof in->serial);
        if (in->serial[0])
            in->valid |= 1ull << GW_INFO_SERIAL;
    }
    gw_nvml_pci_info pci;
    memset(&pci, 0, sizeof pci);
    if (CALL(s, d, DeviceGetPciInfo, h, &pci))
        /* built from the numbers: the legacy call wrote a 4-digit domain */
        snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "%08X:%02X:%02X.0", pci.domain,
                 pci.bus & 0xFFu, pci.device & 0xFFu);
    if (CALL(s, d, DeviceGetCudaComputeCapability, h, &ia, &ib) && ia >= 0 && ib >= 0) {
        in->cc_major = ia;
        in->cc_minor = ib;
        in->valid |= 1ull << GW_INFO_COMPUTE_CAP;
        if (ia < 100 && ib < 10)
            snprintf(in->arch, sizeof in->arch, "sm_%d%d", ia, ib);
    }
    static const struct {
        int type;
        gw_info_field field;
        size_t off;
    } clocks[] = {
        {GW_NVML_CLOCK_SM, GW_INFO_MAX_CLOCK_SM, offsetof(gw_device_info, max_clock_sm_mhz)},
        {GW_NVML_CLOCK_GRAPHICS, GW_INFO_MAX_CLOCK_GRAPHICS,
         offsetof(gw_device_info, max_clock_graphics_mhz)},
        {GW_NVML_CLOCK_MEM, GW_INFO_MAX_CLOCK_MEM, offsetof(gw_device_info, max_clock_mem_mhz)},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(clocks); i++)
        if (CALL(s, d, DeviceGetMaxClockInfo, h, clocks[i].type, &a)) {
            memcpy((char *)in + clocks[i].off, &a, sizeof a);
            in->valid |= 1ull << clocks[i].field;
        }
    if (CALL(s, d, DeviceGetPowerManagementLimitConstraints, h, &a, &b)) {
        in->power_limit_min_mw = a;
        in->power_limit_max_mw = b;
        in->valid |= 1ull << GW_INFO_POWER_LIMIT_MIN | 1ull << GW_INFO_POWER_LIMIT_MAX;
    }
    if (CALL(s, d, DeviceGetPowerManagementDefaultLimit, h, &a)) {
        in->power_limit_default_mw = a;
        in->valid |= 1ull << GW_INFO_POWER_LIMIT_DEFAULT;
    }
    static const struct {
        int type;
        gw_info_field field;
        size_t off;
    } temps[] = {
        {GW_NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, GW_INFO_TEMP_SHUTDOWN,
         offsetof(gw_device_info, temp_shutdown_mc)},
        {GW_NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, GW_INFO_TEMP_SLOWDOWN,
         offsetof(gw_device_info, temp_slowdown_mc)},
        {GW_NVML_TEMPERATURE_THRESHOLD_MEM_MAX, GW_INFO_TEMP_MEM_MAX,
         offsetof(gw_device_info, temp_mem_max_mc)},
        {GW_NVML_TEMPERATURE_THRESHOLD_GPU_MAX, GW_INFO_TEMP_GPU_MAX,
         offsetof(gw_device_info, temp_gpu_max_mc)},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(temps); i++)
        if (CALL(s, d, DeviceGetTemperatureThreshold, h, temps[i].type, &a) && a < 1000000u) {
            int32_t mc = (int32_t)a * 1000;
            memcpy((char *)in + temps[i].off, &mc, sizeof mc);
            in->valid |= 1ull << temps[i].field;
        }
    if (CALL(s, d, DeviceGetMaxPcieLinkGeneration, h, &a)) {
        in->pcie_max_gen = a;
        in->valid |= 1ull << GW_INFO_PCIE_MAX_GEN;
    }
    if (CALL(s, d, DeviceGetMaxPcieLinkWidth, h, &a)) {
        in->pcie_max_width = a;
        in->valid |= 1ull << GW_INFO_PCIE_MAX_WIDTH;
    }
    read_memory(s, d, NULL); /* decides v2/v1/meminfo and the total */
}

static void add_note(nvml_state *s, const char *fmt, unsigned idx, const char *what,
                     gw_nvml_return r)
{
    size_t len = strlen(s->notes);
    if (len + 1 >= sizeof s->notes)
        return;
    snprintf(s->notes + len, sizeof s->notes - len, fmt, len ? "; " : "", idx, what,
             nvml_errstr(s, r), r);
}

static void nvml_close(void *state);
static void open_xid_events(nvml_state *s);

/* The MIG profile in a MIG device's name: NVML names one "<GPU name> MIG
 * 3g.40gb"; "" when the name does not say. */
static void mig_profile(const char *name, char *out, size_t cap)
{
    const char *p = strstr(name, "MIG ");
    out[0] = '\0';
    if (p)
        snprintf(out, cap, "%.*s", (int)strcspn(p + 4, " "), p + 4);
}

/* Static facts of the MIG device m in slot `slot` of GPU devs[parent]. */
static void read_mig_static(nvml_state *s, nvml_dev *m, unsigned parent, unsigned slot)
{
    const gw_device_info *pi = &s->devs[parent].info;
    gw_device_info *in = &m->info;
    char buf[128];
    unsigned a;
    in->vendor = GW_VENDOR_NVIDIA;
    in->source_index = 1000u * (pi->source_index + 1u) + slot;
    gw__strlcpy(in->source, "nvml", sizeof in->source);
    gw__strlcpy(in->driver_version, pi->driver_version, sizeof in->driver_version);
    gw__strlcpy(in->library_version, pi->library_version, sizeof in->library_version);
    gw__strlcpy(in->cuda_version, pi->cuda_version, sizeof in->cuda_version);
    gw__strlcpy(in->pci_bus_id, pi->pci_bus_id, sizeof in->pci_bus_id);
    gw__strlcpy(in->arch, pi->arch, sizeof in->arch);
    in->cc_major = pi->cc_major;
    in->cc_minor = pi->cc_minor;
    in->valid |= pi->valid & (1ull << GW_INFO_COMPUTE_CAP);
    if (CALL(s, m, DeviceGetName, m->handle, buf, GW_NVML_DEVICE_NAME_V2_BUFFER_SIZE))
        copy_out(in->name, sizeof in->name, buf, GW_NVML_DEVICE_NAME_V2_BUFFER_SIZE);
    if (CALL(s, m, DeviceGetUUID, m->handle, buf, GW_NVML_DEVICE_UUID_V2_BUFFER_SIZE))
        copy_out(in->uuid, sizeof in->uuid, buf, GW_NVML_DEVICE_UUID_V2_BUFFER_SIZE);
    in->mig = true;
    mig_profile(in->name, in->mig_profile, sizeof in->mig_profile);
    if (CALL(s, m, DeviceGetGpuInstanceId, m->handle, &a))
        in->mig_gpu_instance = a;
    if (CALL(s, m, DeviceGetComputeInstanceId, m->handle, &a))
        in->mig_compute_instance = a;
    gw_nvml_device_attributes at;
    memset(&at, 0, sizeof at);
    if (CALL(s, m, DeviceGetAttributes_v2, m->handle, &at)) {
        in->mig_sm_count = at.multiprocessor_count;
        in->mig_gi_slices = at.gpu_instance_slice_count;
        in->mig_ci_slices = at.compute_instance_slice_count;
    }
    read_memory(s, m, NULL);
}

/* Invariant 11: appends the MIG devices of every GPU in MIG mode. GW_OK or
 * GW_ENOMEM. */
static int open_mig_devices(nvml_state *s)
{
    if (!s->fn.DeviceGetMaxMigDeviceCount || !s->fn.DeviceGetMigDeviceHandleByIndex ||
        !s->fn.DeviceGetMigMode)
        return GW_OK;
    unsigned n_gpus = s->n_devs;
    for (unsigned p = 0; p < n_gpus; p++) {
        unsigned cur, pending, max = 0;
        if (!s->devs[p].handle || s->devs[p].lost ||
            !CALL(s, &s->devs[p], DeviceGetMigMode, s->devs[p].handle, &cur, &pending) ||
            cur != 1 ||
            !CALL(s, &s->devs[p], DeviceGetMaxMigDeviceCount, s->devs[p].handle, &max))
            continue;
        if (max > 16) /* 7 on every MIG GPU so far; more is a broken driver */
            max = 16;
        for (unsigned slot = 0; slot < max; slot++) {
            gw_nvml_device h = NULL;
            if (s->fn.DeviceGetMigDeviceHandleByIndex(s->devs[p].handle, slot, &h) !=
                    GW_NVML_SUCCESS ||
                !h)
                continue; /* an empty slot: NOT_FOUND */
            if (GW__ARRAY_RESERVE(s->devs, s->devs_cap, s->n_devs + 1, GW__ARRAY_UNBOUNDED))
                return GW_ENOMEM;
            nvml_dev *m = &s->devs[s->n_devs++];
            memset(m, 0, sizeof *m);
            m->handle = h;
            m->is_mig = true;
            m->parent = p;
            s->devs[p].n_mig++;
            read_mig_static(s, m, p, slot);
        }
    }
    return GW_OK;
}

/* Opens NVML: dlopen + init once + static info of every GPU.
 * On success *out owns the library and the init reference (nvml_close drops
 * them). On failure returns GW_ELOAD (library or required symbol missing),
 * GW_EDRIVER (init/count failed, message has nvmlErrorString's text and the
 * code) or GW_ENOMEM, and nothing is left loaded or initialised. */
static int nvml_open(void **out, const gw__config *cfg, gw_error *err)
{
    *out = NULL;
    nvml_state *s = calloc(1, sizeof *s);
    if (!s)
        return gw__error_set(err, GW_ENOMEM, "NVML: out of memory");
    s->processes = cfg->processes;
    gw__strlcpy(s->proc_root, cfg->proc_root, sizeof s->proc_root);
    s->lib = dlopen(cfg->nvml_library, RTLD_NOW | RTLD_LOCAL);
    if (!s->lib) {
        const char *why = dlerror();
        free(s);
        return gw__error_set(err, GW_ELOAD, "NVML: cannot load %s: %s", cfg->nvml_library,
                             why ? why : "unknown dlopen error");
    }
    resolve(s);
    const char *missing = !s->fn.Init                   ? "nvmlInit_v2/nvmlInit"
                          : !s->fn.DeviceGetCount         ? "nvmlDeviceGetCount_v2/nvmlDeviceGetCount"
                          : !s->fn.DeviceGetHandleByIndex ? "nvmlDeviceGetHandleByIndex_v2"
                                                            "/nvmlDeviceGetHandleByIndex"
                                                          : NULL;
    if (missing) {
        int rc = gw__error_set(err, GW_ELOAD, "NVML: %s does not export %s", cfg->nvml_library,
                               missing);
        dlclose(s->lib);
        free(s);
        return rc;
    }
    gw_nvml_return r = s->fn.Init();
    if (r != GW_NVML_SUCCESS) {
        int rc = gw__error_set(err, GW_EDRIVER, "NVML: %s failed: %s (%d)", s->init_name,
                               nvml_errstr(s, r), r);
        dlclose(s->lib);
        free(s);
        return rc;
    }

    char buf[GW_NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    if (s->fn.SystemGetDriverVersion && s->fn.SystemGetDriverVersion(buf, sizeof buf) == 0)
        copy_out(s->driver_version, sizeof s->driver_version, buf, sizeof buf);
    if (s->fn.SystemGetNVMLVersion && s->fn.SystemGetNVMLVersion(buf, sizeof buf) == 0)
        copy_out(s->library_version, sizeof s->library_version, buf, sizeof buf);
    int cuda = 0;
    if (s->fn.SystemGetCudaDriverVersion && s->fn.SystemGetCudaDriverVersion(&cuda) == 0 &&
        cuda > 0)
        snprintf(s->cuda_version, sizeof s->cuda_version, "%d.%d", cuda / 1000,
                 (cuda % 1000) / 10);

    unsigned n = 0;
    r = s->fn.DeviceGetCount(&n);
    if (r != GW_NVML_SUCCESS) {
        int rc = gw__error_set(err, GW_EDRIVER, "NVML: %s failed: %s (%d)", s->count_name,
                               nvml_errstr(s, r), r);
        nvml_close(s);
        return rc;
    }
    if (n > NVML_MAX_DEVICES)
        n = NVML_MAX_DEVICES;
    s->devs = calloc(n ? n : 1, sizeof *s->devs);
    s->devs_cap = n ? n : 1;
    if (!s->devs) {
        nvml_close(s);
        return gw__error_set(err, GW_ENOMEM, "NVML: out of memory");
    }
    for (unsigned i = 0; i < n; i++) {
        gw_nvml_device h = NULL;
        r = s->fn.DeviceGetHandleByIndex(i, &h);
        if (r == GW_NVML_ERROR_NO_PERMISSION) {
            s->any_skipped = true;
            add_note(s, "%sGPU %u skipped: %s: %s (%d)", i, s->handle_name, r);
            continue;
        }
        nvml_dev *d = &s->devs[s->n_devs++];
        d->info.vendor = GW_VENDOR_NVIDIA;
        d->info.source_index = i;
        gw__strlcpy(d->info.source, "nvml", sizeof d->info.source);
        if (r != GW_NVML_SUCCESS || !h) {
            /* no handle: the device is there but unusable */
            d->lost = is_lost_code(r);
            d->error = !d->lost;
            snprintf(d->reason, sizeof d->reason, "%s: %s (%d)", s->handle_name,
                     nvml_errstr(s, r), r);
            continue;
        }
        d->handle = h;
        read_static(s, d, i);
    }
    if (open_mig_devices(s) != GW_OK) {
        nvml_close(s);
        return gw__error_set(err, GW_ENOMEM, "NVML: out of memory");
    }
    open_xid_events(s);
    s->calls = 0; /* calls are counted per sample */
    if (s->processes) {
        int rc = gw__procinfo_open(&s->pc, cfg->proc_root, gw__procinfo_what(cfg),
                          cfg->pods_dir);
        if (rc != GW_OK) {
            nvml_close(s);
            return gw__error_set(err, rc, "NVML: out of memory");
        }
    }
    *out = s;
    return GW_OK;
}

/* ---------------------------------------------------------------- sample */

/* Registers every usable GPU for critical Xid events in one event set.
 * Without the entry points, or when no GPU accepts (NOT_SUPPORTED on
 * consumer cards and under some hypervisors), there is no set and the Xid
 * figures stay unknown. */
static void open_xid_events(nvml_state *s)
{
    if (!s->fn.EventSetCreate || !s->fn.DeviceRegisterEvents || !s->fn.EventSetWait_v2 ||
        !s->fn.EventSetFree || s->fn.EventSetCreate(&s->events) != GW_NVML_SUCCESS)
        return;
    bool any = false;
    for (unsigned i = 0; i < s->n_devs; i++) {
        nvml_dev *d = &s->devs[i];
        /* Xids are the GPU's: a MIG device is not registered */
        if (d->handle && !d->lost && !d->error && !d->is_mig &&
            s->fn.DeviceRegisterEvents(d->handle, GW_NVML_EVENT_TYPE_XID_CRITICAL_ERROR,
                                       s->events) == GW_NVML_SUCCESS)
            any = d->xid_registered = true;
    }
    if (!any) {
        s->fn.EventSetFree(s->events);
        s->events = NULL;
    }
}

/* Takes every pending event without waiting (timeout 0) and counts the
 * Xids per GPU. At most 256 per sample: a storm is drained over samples. */
static void drain_xid_events(nvml_state *s)
{
    if (!s->events)
        return;
    for (int k = 0; k < 256; k++) {
        gw_nvml_event_data ev;
        memset(&ev, 0, sizeof ev);
        s->calls++;
        if (s->fn.EventSetWait_v2(s->events, &ev, 0) != GW_NVML_SUCCESS)
            return; /* TIMEOUT: nothing pending; anything else: next sample */
        if (!(ev.event_type & GW_NVML_EVENT_TYPE_XID_CRITICAL_ERROR))
            continue;
        for (unsigned i = 0; i < s->n_devs; i++)
            if (s->devs[i].handle == ev.device) {
                s->devs[i].xid_last =
                    ev.event_data > UINT32_MAX ? UINT32_MAX : (uint32_t)ev.event_data;
                s->devs[i].xid_events++;
                break;
            }
    }
}

/* The health counters: PCIe replays, volatile ECC totals, remapped rows,
 * and the Xids drain_xid_events counted. */
static void read_health(nvml_state *s, nvml_dev *d, gw_sample *sm)
{
    gw_nvml_device h = d->handle;
    unsigned a, b, c, e;
    unsigned long long corr, unc;
    if (CALLM(s, d, GW_METRIC_PCIE_REPLAYS, DeviceGetPcieReplayCounter, h, &a)) {
        sm->pcie_replays = a;
        sm->valid |= 1ull << GW_METRIC_PCIE_REPLAYS;
    }
    /* ECC off (or not on this GPU) answers NOT_SUPPORTED: like any metric,
     * not asked again while this source stays open (ECC turned on and the
     * GPU reset shows after gpuwatch reopens NVML, e.g. a restart) */
    if (CALLM(s, d, GW_METRIC_ECC_ERRORS, DeviceGetTotalEccErrors, h,
              GW_NVML_MEMORY_ERROR_TYPE_CORRECTED, GW_NVML_VOLATILE_ECC, &corr) &&
        CALLM(s, d, GW_METRIC_ECC_ERRORS, DeviceGetTotalEccErrors, h,
              GW_NVML_MEMORY_ERROR_TYPE_UNCORRECTED, GW_NVML_VOLATILE_ECC, &unc)) {
        sm->ecc_corrected = corr;
        sm->ecc_uncorrected = unc;
        sm->valid |= 1ull << GW_METRIC_ECC_ERRORS;
    }
    if (CALLM(s, d, GW_METRIC_ROW_REMAP, DeviceGetRemappedRows, h, &a, &b, &c, &e)) {
        sm->remap_correctable = a;
        sm->remap_uncorrectable = b;
        sm->remap_pending = c != 0;
        sm->remap_failure = e != 0;
        sm->valid |= 1ull << GW_METRIC_ROW_REMAP;
    }
    if (d->xid_registered) {
        sm->xid_last = d->xid_last;
        sm->xid_events = d->xid_events;
        sm->valid |= 1ull << GW_METRIC_XID;
    }
}

static void read_sample(nvml_state *s, nvml_dev *d, gw_sample *sm)
{
    gw_nvml_device h = d->handle;
    unsigned a, b;
    int ia;
    unsigned long long ull;

    read_memory(s, d, sm);
    gw_nvml_utilization u;
    if (CALLM(s, d, GW_METRIC_UTIL_GPU, DeviceGetUtilizationRates, h, &u)) {
        sm->util_gpu = u.gpu;
        sm->util_mem = u.memory;
        sm->valid |= 1ull << GW_METRIC_UTIL_GPU | 1ull << GW_METRIC_UTIL_MEM;
    }
    if (CALLM(s, d, GW_METRIC_UTIL_ENC, DeviceGetEncoderUtilization, h, &a, &b)) {
        sm->util_enc = a;
        sm->valid |= 1ull << GW_METRIC_UTIL_ENC;
    }
    if (CALLM(s, d, GW_METRIC_UTIL_DEC, DeviceGetDecoderUtilization, h, &a, &b)) {
        sm->util_dec = a;
        sm->valid |= 1ull << GW_METRIC_UTIL_DEC;
    }
    if (CALLM(s, d, GW_METRIC_TEMP, DeviceGetTemperature, h, GW_NVML_TEMPERATURE_GPU, &a) && a < 1000000u) {
        sm->temp_mc = (int32_t)a * 1000;
        sm->valid |= 1ull << GW_METRIC_TEMP;
    }
    if (CALLM(s, d, GW_METRIC_POWER, DeviceGetPowerUsage, h, &a)) {
        sm->power_mw = a;
        sm->valid |= 1ull << GW_METRIC_POWER;
    }
    if (CALLM(s, d, GW_METRIC_POWER_LIMIT, DeviceGetEnforcedPowerLimit, h, &a)) {
        sm->power_limit_mw = a;
        sm->valid |= 1ull << GW_METRIC_POWER_LIMIT;
    }
    if (CALLM(s, d, GW_METRIC_ENERGY, DeviceGetTotalEnergyConsumption, h, &ull)) {
        sm->energy_mj = ull;
        sm->valid |= 1ull << GW_METRIC_ENERGY;
    }
    if (CALLM(s, d, GW_METRIC_CLOCK_SM, DeviceGetClockInfo, h, GW_NVML_CLOCK_SM, &a)) {
        sm->clock_sm_mhz = a;
        sm->valid |= 1ull << GW_METRIC_CLOCK_SM;
    }
    if (CALLM(s, d, GW_METRIC_CLOCK_GRAPHICS, DeviceGetClockInfo, h, GW_NVML_CLOCK_GRAPHICS, &a)) {
        sm->clock_graphics_mhz = a;
        sm->valid |= 1ull << GW_METRIC_CLOCK_GRAPHICS;
    }
    if (CALLM(s, d, GW_METRIC_CLOCK_MEM, DeviceGetClockInfo, h, GW_NVML_CLOCK_MEM, &a)) {
        sm->clock_mem_mhz = a;
        sm->valid |= 1ull << GW_METRIC_CLOCK_MEM;
    }
    if (CALLM(s, d, GW_METRIC_FAN, DeviceGetFanSpeed, h, &a)) {
        sm->fan_pct = a;
        sm->valid |= 1ull << GW_METRIC_FAN;
    }
    if (CALLM(s, d, GW_METRIC_PSTATE, DeviceGetPerformanceState, h, &ia) && ia >= 0 && ia <= 15) {
        sm->pstate = (uint32_t)ia;
        sm->valid |= 1ull << GW_METRIC_PSTATE;
    }
    if (CALLM(s, d, GW_METRIC_CLOCK_EVENTS, DeviceGetCurrentClocksEventReasons, h, &ull)) {
        sm->clock_events = ull;
        sm->valid |= 1ull << GW_METRIC_CLOCK_EVENTS;
    }
    if (CALLM(s, d, GW_METRIC_PCIE_GEN, DeviceGetCurrPcieLinkGeneration, h, &a)) {
        sm->pcie_gen = a;
        sm->valid |= 1ull << GW_METRIC_PCIE_GEN;
    }
    if (CALLM(s, d, GW_METRIC_PCIE_WIDTH, DeviceGetCurrPcieLinkWidth, h, &a)) {
        sm->pcie_width = a;
        sm->valid |= 1ull << GW_METRIC_PCIE_WIDTH;
    }
    if (CALLM(s, d, GW_METRIC_MIG_MODE, DeviceGetMigMode, h, &a, &b) && a <= 1) {
        sm->mig_mode = a;
        sm->mig_pending = b <= 1 ? b : a;
        sm->valid |= 1ull << GW_METRIC_MIG_MODE;
    }
    read_health(s, d, sm);
}

/* A MIG device's sample (invariant 11): its own memory, and utilisation
 * where the driver gives it (most answer NOT_SUPPORTED: not asked again). */
static void read_mig_sample(nvml_state *s, nvml_dev *d, gw_sample *sm)
{
    read_memory(s, d, sm);
    gw_nvml_utilization u;
    if (CALLM(s, d, GW_METRIC_UTIL_GPU, DeviceGetUtilizationRates, d->handle, &u)) {
        sm->util_gpu = u.gpu;
        sm->util_mem = u.memory;
        sm->valid |= 1ull << GW_METRIC_UTIL_GPU | 1ull << GW_METRIC_UTIL_MEM;
    }
}

static int cmp_row(const void *a, const void *b)
{
    uint32_t x = ((const proc_row *)a)->pid, y = ((const proc_row *)b)->pid;
    return x < y ? -1 : x > y;
}

static proc_row *find_row(proc_row *rows, size_t n, uint32_t pid)
{
    proc_row key = {.pid = pid};
    return bsearch(&key, rows, n, sizeof *rows, cmp_row);
}

/* Reads one process list of d (count=0 first, then count*2+5) into s->raw
 * as v2 entries; *n gets the count. Uses f2 (24-byte entries) when the
 * library has it, else f1 (16-byte). Returns GW_OK (n may be 0 when the
 * list is unsupported or failed: not an error of the source) or GW_ENOMEM. */
static int read_list(nvml_state *s, nvml_dev *d, gw_nvml_fn_dev_procs_v2 f2,
                     gw_nvml_fn_dev_procs_v1 f1, const char *name, unsigned *n)
{
    *n = 0;
    if ((!f2 && !f1) || d->lost)
        return GW_OK;
    /* First call into the buffer kept from earlier samples (one call while
     * the list still fits); on the first sample that is the count=0 size
     * query. Then count*2+5 while the library says INSUFFICIENT_SIZE. */
    unsigned cap = s->raw_cap > NVML_MAX_PROCS ? NVML_MAX_PROCS : (unsigned)s->raw_cap;
    unsigned count = cap;
    void *buf = cap ? (void *)s->raw : NULL;
    gw_nvml_return r = f2 ? f2(d->handle, &count, buf) : f1(d->handle, &count, buf);
    s->calls++;
    if (r == GW_NVML_ERROR_FUNCTION_NOT_FOUND && f2 && f1) {
        f2 = NULL;
        count = cap;
        r = f1(d->handle, &count, buf);
        s->calls++;
    }
    if (r == GW_NVML_SUCCESS && !buf) /* nothing written into a NULL buffer */
        return GW_OK;
    for (int attempt = 0; attempt < 4 && r == GW_NVML_ERROR_INSUFFICIENT_SIZE; attempt++) {
        cap = retry_size(count);
        /* a v2-sized buffer holds cap entries of either size; exactly cap:
         * the next sample's first call offers the library raw_cap entries */
        if (GW__ARRAY_RESERVE_EXACT(s->raw, s->raw_cap, cap))
            return GW_ENOMEM;
        count = cap;
        r = f2 ? f2(d->handle, &count, s->raw)
               : f1(d->handle, &count, (gw_nvml_process_info_v1 *)(void *)s->raw);
        s->calls++;
    }
    if (!classify(s, d, r, name))
        return GW_OK;
    if (count > cap)
        count = cap; /* never trust a count past our buffer */
    if (!f2) { /* widen v1 entries in place, from the back */
        gw_nvml_process_info_v1 *v1 = (gw_nvml_process_info_v1 *)(void *)s->raw;
        for (unsigned i = count; i-- > 0;) {
            gw_nvml_process_info_v1 e = v1[i];
            s->raw[i].pid = e.pid;
            s->raw[i].used_gpu_memory = e.used_gpu_memory;
            s->raw[i].gpu_instance_id = 0xFFFFFFFFu;
            s->raw[i].compute_instance_id = 0xFFFFFFFFu;
        }
    }
    *n = count;
    return GW_OK;
}

/* Adds the entries in s->raw[0..n) to s->rows (n_rows so far), merging a
 * pid already listed (a process with both compute and graphics contexts). */
static int merge_rows(nvml_state *s, size_t *n_rows, unsigned n, gw_process_kind kind)
{
    size_t base = *n_rows;
    if (GW__ARRAY_RESERVE(s->rows, s->rows_cap, base + n, GW__ARRAY_UNBOUNDED))
        return GW_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        const gw_nvml_process_info_v2 *e = &s->raw[i];
        bool mem_ok = e->used_gpu_memory != GW_NVML_VALUE_NOT_AVAILABLE_ULL;
        proc_row *old = base ? find_row(s->rows, base, e->pid) : NULL;
        if (!old) /* duplicates inside one list are merged below too */
            for (size_t j = base; j < *n_rows; j++)
                if (s->rows[j].pid == e->pid)
                    old = &s->rows[j];
        if (old) {
            if (!old->mem_valid && mem_ok) {
                old->mem = e->used_gpu_memory;
                old->mem_valid = true;
            }
            continue;
        }
        proc_row *row = &s->rows[(*n_rows)++];
        memset(row, 0, sizeof *row);
        row->pid = e->pid;
        row->kind = kind;
        row->mem_valid = mem_ok;
        row->mem = mem_ok ? e->used_gpu_memory : 0;
    }
    if (*n_rows > 1) /* rows is NULL while no GPU had a process */
        qsort(s->rows, *n_rows, sizeof *s->rows, cmp_row);
    return GW_OK;
}

/* Per-process utilisation since d->last_seen_us, filtered: samples with any
 * value over 100 or a pid not in the rows are garbage and dropped; the
 * newest sample of a pid wins. NVML returns a sample only for processes that
 * were busy, so after a query that worked (SUCCESS, or NOT_FOUND = nothing
 * newer than lastSeen) a listed process without a sample was idle: 0 %.
 * A process whose only samples were garbage stays unknown, as does every
 * process when the query failed. */
static void idle_unsampled(proc_row *rows, size_t n_rows)
{
    for (size_t i = 0; i < n_rows; i++)
        if (!rows[i].util_valid && !rows[i].util_garbage) {
            rows[i].util_valid = true;
            rows[i].sm = rows[i].memu = rows[i].enc = rows[i].dec = 0;
        }
}

static int read_process_util(nvml_state *s, nvml_dev *d, size_t n_rows)
{
    if (!s->fn.DeviceGetProcessUtilization || d->lost || n_rows == 0)
        return GW_OK;
    const char *name = "DeviceGetProcessUtilization";
    unsigned cap = s->util_cap > NVML_MAX_PROCS ? NVML_MAX_PROCS : (unsigned)s->util_cap;
    unsigned count = cap;
    gw_nvml_process_utilization_sample *buf = cap ? s->util : NULL;
    gw_nvml_return r = s->fn.DeviceGetProcessUtilization(d->handle, buf, &count, d->last_seen_us);
    s->calls++;
    if (r == GW_NVML_ERROR_NOT_FOUND || (r == GW_NVML_SUCCESS && (!buf && count == 0))) {
        idle_unsampled(s->rows, n_rows); /* no samples newer than last_seen */
        return GW_OK;
    }
    /* some drivers answer a NULL buffer with SUCCESS and the count */
    bool fill = r == GW_NVML_ERROR_INSUFFICIENT_SIZE || (r == GW_NVML_SUCCESS && !buf);
    for (int attempt = 0; attempt < 4 && fill; attempt++) {
        cap = retry_size(count);
        if (GW__ARRAY_RESERVE_EXACT(s->util, s->util_cap, cap)) /* offered as-is next time */
            return GW_ENOMEM;
        count = cap;
        r = s->fn.DeviceGetProcessUtilization(d->handle, s->util, &count, d->last_seen_us);
        s->calls++;
        fill = r == GW_NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (r == GW_NVML_ERROR_NOT_FOUND) {
        idle_unsampled(s->rows, n_rows);
        return GW_OK;
    }
    if (!classify(s, d, r, name))
        return GW_OK;
    if (count > cap)
        count = cap;
    unsigned long long newest = d->last_seen_us;
    for (unsigned i = 0; i < count; i++) {
        const gw_nvml_process_utilization_sample *u = &s->util[i];
        proc_row *row = find_row(s->rows, n_rows, u->pid);
        if (!row)
            continue;
        if (u->sm_util > 100 || u->mem_util > 100 || u->enc_util > 100 || u->dec_util > 100) {
            row->util_garbage = true;
            continue;
        }
        if (row->util_valid && row->util_ts > u->time_stamp)
            continue;
        row->util_valid = true;
        row->util_ts = u->time_stamp;
        row->sm = u->sm_util;
        row->memu = u->mem_util;
        row->enc = u->enc_util;
        row->dec = u->dec_util;
        if (u->time_stamp > newest)
            newest = u->time_stamp;
    }
    d->last_seen_us = newest;
    idle_unsampled(s->rows, n_rows);
    return GW_OK;
}

/* Reads and appends the processes of device d (snapshot index dev_index). */
static int sample_processes(nvml_state *s, nvml_dev *d, uint32_t dev_index, bool mig_on,
                            gw__collect *c)
{
    unsigned n;
    size_t n_rows = 0;
    int rc = read_list(s, d, s->fn.DeviceGetComputeRunningProcesses_v2,
                       s->fn.DeviceGetComputeRunningProcesses, "DeviceGetComputeRunningProcesses",
                       &n);
    if (rc == GW_OK)
        rc = merge_rows(s, &n_rows, n, GW_PROCESS_COMPUTE);
    if (rc == GW_OK)
        rc = read_list(s, d, s->fn.DeviceGetGraphicsRunningProcesses_v2,
                       s->fn.DeviceGetGraphicsRunningProcesses,
                       "DeviceGetGraphicsRunningProcesses", &n);
    if (rc == GW_OK)
        rc = merge_rows(s, &n_rows, n, GW_PROCESS_GRAPHICS);
    if (rc == GW_OK && !mig_on) /* NVML has no per-process utilisation under MIG */
        rc = read_process_util(s, d, n_rows);
    if (rc != GW_OK || d->lost)
        return rc;
    for (size_t i = 0; i < n_rows; i++) {
        const proc_row *row = &s->rows[i];
        gw_process *p = gw__collect_add_process(c);
        if (!p)
            return GW_ENOMEM;
        p->pid = row->pid;
        p->device_index = dev_index;
        p->kind = row->kind;
        if (row->mem_valid) {
            p->gpu_memory = row->mem;
            p->valid |= 1u << GW_PROC_GPU_MEMORY;
        }
        if (row->util_valid) {
            p->sm_util = row->sm;
            p->mem_util = row->memu;
            p->enc_util = row->enc;
            p->dec_util = row->dec;
            p->valid |= 1u << GW_PROC_SM_UTIL | 1u << GW_PROC_MEM_UTIL |
                        1u << GW_PROC_ENC_UTIL | 1u << GW_PROC_DEC_UTIL;
        }
        if (s->pc)
            gw__procinfo_fill(s->pc, p);
    }
    return GW_OK;
}

static void set_lost(gw_device *gd, const nvml_dev *d)
{
    gd->state = d->lost ? GW_DEVICE_LOST : GW_DEVICE_ERROR;
    gw__strlcpy(gd->state_reason, d->reason, sizeof gd->state_reason);
    memset(&gd->sample, 0, sizeof gd->sample); /* invariant 3: nothing valid */
}

/* Appends every GPU (lost ones with their reason) and its processes.
 * Returns GW_OK, or GW_ENOMEM (err filled) when the collector or a scratch
 * buffer could not grow. */
static int nvml_sample(void *state, gw__collect *c, gw_error *err)
{
    nvml_state *s = state;
    s->calls = 0;
    if (s->pc)
        gw__procinfo_begin_round(s->pc);
    drain_xid_events(s);
    for (unsigned i = 0; i < s->n_devs; i++) {
        nvml_dev *d = &s->devs[i];
        gw_device *gd = gw__collect_add_device(c);
        if (!gd)
            return gw__error_set(err, GW_ENOMEM, "NVML: out of memory");
        uint32_t index = gd->info.index;
        if (d->lost && d->lost_code == GW_NVML_ERROR_UNKNOWN && d->handle) {
            d->lost = false; /* UNKNOWN may pass: ask again, lost again if not */
            d->reason[0] = 0;
        }
        const nvml_dev *gpu = d->is_mig ? &s->devs[d->parent] : NULL;
        if (gpu && (gpu->lost || gpu->error) && !d->lost) {
            /* invariant 11: the instance of a lost GPU is lost with it */
            d->lost = true;
            d->lost_code = gpu->lost ? gpu->lost_code : GW_NVML_ERROR_UNKNOWN;
            snprintf(d->reason, sizeof d->reason, "its GPU is lost: %.120s", gpu->reason);
        }
        if (!d->lost && !d->error)
            d->is_mig ? read_mig_sample(s, d, &gd->sample) : read_sample(s, d, &gd->sample);
        gd->info = d->info; /* after the sample: memory_api may have changed */
        gd->info.index = index;
        d->snap_index = index;
        if (gpu)
            gd->info.mig_parent = gpu->snap_index; /* sampled before it (invariant 11) */
        gd->sampled_at_ns = gw__now_real_ns();
        if (d->lost || d->error) {
            set_lost(gd, d);
            continue;
        }
        bool mig_on = d->is_mig || (gw_sample_has(&gd->sample, GW_METRIC_MIG_MODE) &&
                                    gd->sample.mig_mode);
        /* a GPU whose MIG devices are listed: its processes are theirs
         * (whether or not this sample's MIG-mode call answered) */
        bool own = d->n_mig == 0;
        int rc = s->processes && own ? sample_processes(s, d, index, mig_on, c) : GW_OK;
        if (rc != GW_OK)
            return gw__error_set(err, rc, "NVML: out of memory reading processes");
        if (d->lost) /* lost while listing processes; gd is still valid */
            set_lost(gd, d);
    }
    return GW_OK;
}

static void nvml_status(void *state, gw_source_status *st)
{
    nvml_state *s = state;
    gw__strlcpy(st->driver_version, s->driver_version, sizeof st->driver_version);
    gw__strlcpy(st->library_version, s->library_version, sizeof st->library_version);
    st->calls = s->calls;
    st->error = GW_OK;
    st->state = s->any_skipped ? GW_SOURCE_DEGRADED : GW_SOURCE_OK;
    gw_strbuf sb;
    gw__strbuf_init(&sb, sizeof st->message);
    if (s->notes[0])
        gw__strbuf_printf(&sb, "NVML: %s", s->notes);
    for (unsigned i = 0; i < s->n_devs; i++)
        if (s->devs[i].lost || s->devs[i].error) {
            gw__strbuf_printf(&sb, "%sGPU %u %s: %s", sb.len ? "; " : "NVML: ",
                              s->devs[i].info.source_index, s->devs[i].lost ? "lost" : "error",
                              s->devs[i].reason);
        }
    if (s->n_devs == 0 && !s->notes[0])
        gw__strbuf_printf(&sb, "NVML: no NVIDIA GPU found (driver %s)",
                          s->driver_version[0] ? s->driver_version : "unknown");
    if (sb.failed) /* over the message size: keep the open-time notes */
        snprintf(st->message, sizeof st->message, "NVML: %s", s->notes[0] ? s->notes : "GPUs lost");
    else
        gw__strlcpy(st->message, sb.len ? sb.data : "", sizeof st->message);
    gw__strbuf_release(&sb);
}

/* Shuts NVML down (the one init reference), unloads the library, frees all. */
static void nvml_close(void *state)
{
    nvml_state *s = state;
    if (!s)
        return;
    if (s->events)
        s->fn.EventSetFree(s->events);
    if (s->fn.Shutdown)
        s->fn.Shutdown();
    if (s->lib)
        dlclose(s->lib);
    gw__procinfo_close(s->pc);
    free(s->devs);
    free(s->raw);
    free(s->util);
    free(s->rows);
    free(s);
}

/* The read_memory op: one memory call on the device NVML numbers idx. */
static int nvml_read_memory(void *state, uint32_t idx, gw_sample *out, gw_error *err)
{
    nvml_state *s = state;
    for (unsigned i = 0; i < s->n_devs; i++) {
        nvml_dev *d = &s->devs[i];
        if (d->info.source_index != idx)
            continue;
        if (!d->handle || d->error)
            return gw__error_set(err, GW_ELOST, "NVML: GPU %u: %s", idx, d->reason);
        if (read_memory(s, d, out))
            return GW_OK;
        if (d->lost)
            return gw__error_set(err, GW_ELOST, "NVML: GPU %u: %s", idx, d->reason);
        return gw__error_set(err, GW_ENOENT, "NVML: GPU %u gives no memory figure", idx);
    }
    return gw__error_set(err, GW_ENODEV, "NVML: no GPU %u", idx);
}

/* The read_process_memory op: the compute list of the device NVML numbers
 * idx, searched for pid. */
static int nvml_read_process_memory(void *state, uint32_t idx, uint32_t pid, uint64_t *bytes,
                                    gw_error *err)
{
    nvml_state *s = state;
    for (unsigned i = 0; i < s->n_devs; i++) {
        nvml_dev *d = &s->devs[i];
        if (d->info.source_index != idx)
            continue;
        if (!d->handle || d->error || d->lost)
            return gw__error_set(err, GW_ELOST, "NVML: GPU %u: %s", idx, d->reason);
        unsigned n;
        if (read_list(s, d, s->fn.DeviceGetComputeRunningProcesses_v2,
                      s->fn.DeviceGetComputeRunningProcesses, "DeviceGetComputeRunningProcesses",
                      &n) != GW_OK)
            return gw__error_set(err, GW_ENOMEM, "NVML: out of memory");
        for (unsigned k = 0; k < n; k++) {
            if (s->raw[k].pid != pid)
                continue;
            if (s->raw[k].used_gpu_memory == GW_NVML_VALUE_NOT_AVAILABLE_ULL)
                return gw__error_set(err, GW_ENOTSUP, "NVML: GPU %u gives no memory figure "
                                     "for process %u", idx, pid);
            *bytes = s->raw[k].used_gpu_memory;
            return GW_OK;
        }
        return gw__error_set(err, GW_ENOENT, "NVML: process %u is not on GPU %u", pid, idx);
    }
    return gw__error_set(err, GW_ENODEV, "NVML: no GPU %u", idx);
}

const gw__backend_ops gw__backend_nvml = {
    .name = "nvml",
    .vendor = GW_VENDOR_NVIDIA,
    .open = nvml_open,
    .sample = nvml_sample,
    .status = nvml_status,
    .close = nvml_close,
    .read_memory = nvml_read_memory,
    .read_process_memory = nvml_read_process_memory,
};
