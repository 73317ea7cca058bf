/* fake_nvml.c — a test double of NVIDIA's libnvidia-ml.so.1.
 *
 * What it owns: an implementation of the NVML entry points gpuwatch uses,
 * compiled against NVIDIA's official nvml.h (so every prototype and struct is
 * the real one), serving devices from the scenario file named by
 * $GPUWATCH_FAKE_NVML_SCENARIO (format: tests/nvml/SCENARIOS.md), with fault
 * injection (return codes, lost GPUs, slow/hanging calls) and a per-function
 * call counter written to $GPUWATCH_FAKE_NVML_CALL_LOG when the library is
 * unloaded. Variants of the library (minimal, v1-only, no-init) are built from
 * this same file with linker version scripts that hide symbols.
 *
 * Deliberate traps, always on, as real drivers have them:
 *  - nvmlDeviceGetComputeRunningProcesses_v3 / Graphics_v3 write 32-byte
 *    entries (drivers 530.41..535.86), while nvml.h's nvmlProcessInfo_t is
 *    24 bytes: a caller using _v3 reads garbage.
 *  - nvmlDeviceGetMemoryInfo_v2 rejects any version word other than
 *    sizeof(nvmlMemory_v2_t) | 2 << 24 with ARGUMENT_VERSION_MISMATCH.
 *
 * Invariants: it is a test double, so it has global state (the scenario, the
 * counters) guarded by the init refcount; it never exits the host process;
 * a scenario it cannot parse makes init fail with NVML_ERROR_UNKNOWN and a
 * line on stderr naming the file and line.
 */
#define NVML_NO_UNVERSIONED_FUNC_DEFS 1
#include <nvml.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

/* Not in the CUDA 11.8-era header: R535 names. */
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device,
                                                    unsigned long long *reasons);

/* ------------------------------------------------------------ functions */

#define FAKE_FUNCS(X)                                    \
    X(nvmlInit, 0)                                       \
    X(nvmlInit_v2, 0)                                    \
    X(nvmlInitWithFlags, 0)                              \
    X(nvmlShutdown, 0)                                   \
    X(nvmlErrorString, 0)                                \
    X(nvmlSystemGetDriverVersion, 0)                     \
    X(nvmlSystemGetNVMLVersion, 0)                       \
    X(nvmlSystemGetCudaDriverVersion, 0)                 \
    X(nvmlSystemGetCudaDriverVersion_v2, 0)              \
    X(nvmlSystemGetProcessName, 0)                       \
    X(nvmlDeviceGetCount, 0)                             \
    X(nvmlDeviceGetCount_v2, 0)                          \
    X(nvmlDeviceGetHandleByIndex, 1)                     \
    X(nvmlDeviceGetHandleByIndex_v2, 1)                  \
    X(nvmlDeviceGetName, 1)                              \
    X(nvmlDeviceGetUUID, 1)                              \
    X(nvmlDeviceGetSerial, 1)                            \
    X(nvmlDeviceGetPciInfo, 1)                           \
    X(nvmlDeviceGetPciInfo_v2, 1)                        \
    X(nvmlDeviceGetPciInfo_v3, 1)                        \
    X(nvmlDeviceGetCudaComputeCapability, 1)             \
    X(nvmlDeviceGetMigMode, 1)                           \
    X(nvmlDeviceGetMemoryInfo, 1)                        \
    X(nvmlDeviceGetMemoryInfo_v2, 1)                     \
    X(nvmlDeviceGetUtilizationRates, 1)                  \
    X(nvmlDeviceGetEncoderUtilization, 1)                \
    X(nvmlDeviceGetDecoderUtilization, 1)                \
    X(nvmlDeviceGetTemperature, 1)                       \
    X(nvmlDeviceGetTemperatureThreshold, 1)              \
    X(nvmlDeviceGetPowerUsage, 1)                        \
    X(nvmlDeviceGetEnforcedPowerLimit, 1)                \
    X(nvmlDeviceGetPowerManagementLimit, 1)              \
    X(nvmlDeviceGetPowerManagementLimitConstraints, 1)   \
    X(nvmlDeviceGetPowerManagementDefaultLimit, 1)       \
    X(nvmlDeviceGetTotalEnergyConsumption, 1)            \
    X(nvmlDeviceGetClockInfo, 1)                         \
    X(nvmlDeviceGetMaxClockInfo, 1)                      \
    X(nvmlDeviceGetFanSpeed, 1)                          \
    X(nvmlDeviceGetPerformanceState, 1)                  \
    X(nvmlDeviceGetCurrentClocksEventReasons, 1)         \
    X(nvmlDeviceGetCurrentClocksThrottleReasons, 1)      \
    X(nvmlDeviceGetCurrPcieLinkGeneration, 1)            \
    X(nvmlDeviceGetCurrPcieLinkWidth, 1)                 \
    X(nvmlDeviceGetMaxPcieLinkGeneration, 1)             \
    X(nvmlDeviceGetMaxPcieLinkWidth, 1)                  \
    X(nvmlDeviceGetPcieThroughput, 1)                    \
    X(nvmlDeviceGetComputeRunningProcesses, 1)           \
    X(nvmlDeviceGetComputeRunningProcesses_v2, 1)        \
    X(nvmlDeviceGetComputeRunningProcesses_v3, 1)        \
    X(nvmlDeviceGetGraphicsRunningProcesses, 1)          \
    X(nvmlDeviceGetGraphicsRunningProcesses_v2, 1)       \
    X(nvmlDeviceGetGraphicsRunningProcesses_v3, 1)       \
    X(nvmlDeviceGetProcessUtilization, 1)                \
    X(nvmlDeviceGetPcieReplayCounter, 1)                 \
    X(nvmlDeviceGetTotalEccErrors, 1)                    \
    X(nvmlDeviceGetRemappedRows, 1)                      \
    X(nvmlDeviceRegisterEvents, 1)                       \
    X(nvmlDeviceGetMaxMigDeviceCount, 1)                 \
    X(nvmlDeviceGetMigDeviceHandleByIndex, 1)            \
    X(nvmlDeviceIsMigDeviceHandle, 1)                    \
    X(nvmlDeviceGetGpuInstanceId, 1)                     \
    X(nvmlDeviceGetComputeInstanceId, 1)                 \
    X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, 1)   \
    X(nvmlDeviceGetAttributes_v2, 1)                     \
    X(nvmlEventSetCreate, 0)                             \
    X(nvmlEventSetWait_v2, 0)                            \
    X(nvmlEventSetFree, 0)

enum fake_fn {
#define X(name, dev) FN_##name,
    FAKE_FUNCS(X)
#undef X
    FN_COUNT,
    FN_ANY_DEVICE = FN_COUNT /* "*" in a fault: any per-device function */
};

static const char *const fn_names[FN_COUNT] = {
#define X(name, dev) #name,
    FAKE_FUNCS(X)
#undef X
};

static const bool fn_is_device[FN_COUNT] = {
#define X(name, dev) dev,
    FAKE_FUNCS(X)
#undef X
};

/* ------------------------------------------------------------- scenario */

/* Numeric per-GPU keys: the scenario's names, in one list. */
#define FAKE_KEYS(X)                                                         \
    X(PCI_DEVICE_ID, "pci.device_id") X(PCI_SUBSYSTEM_ID, "pci.subsystem_id") \
    X(CC_MAJOR, "cc.major") X(CC_MINOR, "cc.minor")                          \
    X(MEM_TOTAL, "memory.total") X(MEM_RESERVED, "memory.reserved")          \
    X(MEM_USED, "memory.used") X(MEM_FREE, "memory.free")                    \
    X(UTIL_GPU, "util.gpu") X(UTIL_MEM, "util.memory")                       \
    X(UTIL_ENC, "util.encoder") X(UTIL_DEC, "util.decoder")                  \
    X(TEMP, "temp") X(TEMP_SHUTDOWN, "temp.shutdown")                        \
    X(TEMP_SLOWDOWN, "temp.slowdown") X(TEMP_MEM_MAX, "temp.mem_max")        \
    X(TEMP_GPU_MAX, "temp.gpu_max")                                          \
    X(POWER_USAGE, "power.usage") X(POWER_LIMIT, "power.limit")              \
    X(POWER_MGMT_LIMIT, "power.management_limit")                            \
    X(POWER_MIN, "power.min") X(POWER_MAX, "power.max")                      \
    X(POWER_DEFAULT, "power.default") X(ENERGY, "energy")                    \
    X(CLOCK_GRAPHICS, "clock.graphics") X(CLOCK_SM, "clock.sm")              \
    X(CLOCK_MEM, "clock.mem") X(CLOCK_VIDEO, "clock.video")                  \
    X(MAX_CLOCK_GRAPHICS, "clock.max.graphics")                              \
    X(MAX_CLOCK_SM, "clock.max.sm") X(MAX_CLOCK_MEM, "clock.max.mem")        \
    X(MAX_CLOCK_VIDEO, "clock.max.video")                                    \
    X(FAN, "fan") X(PSTATE, "pstate") X(CLOCK_EVENTS, "clock_events")        \
    X(PCIE_GEN, "pcie.gen") X(PCIE_WIDTH, "pcie.width")                      \
    X(PCIE_MAX_GEN, "pcie.max_gen") X(PCIE_MAX_WIDTH, "pcie.max_width")      \
    X(MIG, "mig") X(MIG_PENDING, "mig.pending") X(PROCS_GROW, "procs.grow")  \
    X(PCIE_REPLAY, "pcie.replay")                                            \
    X(ECC_CORRECTED, "ecc.corrected") X(ECC_UNCORRECTED, "ecc.uncorrected")  \
    X(REMAP_CORR, "remap.correctable") X(REMAP_UNC, "remap.uncorrectable")   \
    X(REMAP_PENDING, "remap.pending") X(REMAP_FAILURE, "remap.failure")      \
    X(EVENTS, "events")

enum fake_key {
#define X(id, str) K_##id,
    FAKE_KEYS(X)
#undef X
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
#define X(id, str) str,
    FAKE_KEYS(X)
#undef X
};

struct fake_proc {
    unsigned pid;
    unsigned long long mem; /* ULLONG_MAX: unavailable */
    unsigned gi, ci;
};

struct fake_putil {
    unsigned pid;
    unsigned long long ts;
    unsigned sm, mem, enc, dec;
};

struct fake_list {
    void *items;
    unsigned n, cap;
};

/* The real struct behind nvmlDevice_t (nvml.h only forward-declares it). */
struct nvmlDevice_st {
    unsigned index;
    char name[128], uuid[128], serial[64], bus_id[64];
    bool has_name, has_uuid, has_serial, has_bus_id;
    char used_file[512]; /* memory.used.file: used bytes read at every memory call */
    char procs_file[512]; /* processes.file: the compute list read at every list call */
    char lost_file[512]; /* lost.file: GPU_IS_LOST to every call while this file exists */
    unsigned long long v[K_COUNT];
    bool has[K_COUNT];
    struct fake_list compute, graphics, putil; /* fake_proc / fake_putil */
    struct fake_list xid;   /* unsigned long long Xids, in order */
    unsigned xid_delivered; /* how many of them an event set has served */
    /* MIG: a MIG device is one of these in fake_state.migs, its parent one
     * of fake_state.gpus (mig_parent: that GPU's index) */
    bool is_mig;
    unsigned mig_parent, gi, ci;
    unsigned sm_count, gi_slices, ci_slices;
    char profile[32];
    unsigned n_migs;          /* a parent's MIG devices */
    struct nvmlDevice_st **migs; /* a parent's, in mig.device line order */
};

struct fake_fault {
    int fn;       /* enum fake_fn or FN_ANY_DEVICE */
    int gpu;      /* -1: every GPU */
    nvmlReturn_t code;
    unsigned long long after; /* matching calls that still succeed */
    unsigned long long times; /* 0: forever */
    unsigned long long seen;  /* matching calls so far */
    unsigned ms;              /* slow/hang: sleep instead of failing */
    bool sleep_only;
};

struct fake_state {
    char driver[96], nvml[96];
    bool has_driver, has_nvml, has_cuda;
    bool unterminated; /* strings fill the caller's buffer with no NUL */
    int cuda;
    struct nvmlDevice_st *gpus;
    unsigned n_gpus;
    struct nvmlDevice_st *migs; /* every GPU's MIG devices (mig.device lines) */
    unsigned n_migs;
    struct fake_fault *faults;
    unsigned n_faults;
    struct fake_list pnames; /* struct fake_pname */
};

struct fake_pname {
    unsigned pid;
    char name[64];
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_state *g_state; /* loaded at first init */
static int g_init_refs;
static unsigned long long g_calls[FN_COUNT];
static unsigned g_asleep; /* calls sleeping in a slow/hang rule (atomic) */

static void list_free(struct fake_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static void *list_push(struct fake_list *l, size_t size)
{
    if (l->n == l->cap) {
        unsigned cap = l->cap ? l->cap * 2 : 8;
        void *p = realloc(l->items, (size_t)cap * size);
        if (!p)
            return NULL;
        l->items = p;
        l->cap = cap;
    }
    void *slot = (char *)l->items + (size_t)l->n * size;
    memset(slot, 0, size);
    l->n++;
    return slot;
}

static void state_free(struct fake_state *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n_migs; i++) {
        list_free(&s->migs[i].compute);
        list_free(&s->migs[i].graphics);
    }
    free(s->migs);
    for (unsigned i = 0; i < s->n_gpus; i++) {
        free(s->gpus[i].migs);
        list_free(&s->gpus[i].compute);
        list_free(&s->gpus[i].graphics);
        list_free(&s->gpus[i].putil);
        list_free(&s->gpus[i].xid);
    }
    list_free(&s->pnames);
    free(s->gpus);
    free(s->faults);
    free(s);
}

static const struct {
    const char *name;
    nvmlReturn_t code;
} code_names[] = {
    {"SUCCESS", NVML_SUCCESS},
    {"UNINITIALIZED", NVML_ERROR_UNINITIALIZED},
    {"INVALID_ARGUMENT", NVML_ERROR_INVALID_ARGUMENT},
    {"NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED},
    {"NO_PERMISSION", NVML_ERROR_NO_PERMISSION},
    {"ALREADY_INITIALIZED", NVML_ERROR_ALREADY_INITIALIZED},
    {"NOT_FOUND", NVML_ERROR_NOT_FOUND},
    {"INSUFFICIENT_SIZE", NVML_ERROR_INSUFFICIENT_SIZE},
    {"INSUFFICIENT_POWER", NVML_ERROR_INSUFFICIENT_POWER},
    {"DRIVER_NOT_LOADED", NVML_ERROR_DRIVER_NOT_LOADED},
    {"TIMEOUT", NVML_ERROR_TIMEOUT},
    {"IRQ_ISSUE", NVML_ERROR_IRQ_ISSUE},
    {"LIBRARY_NOT_FOUND", NVML_ERROR_LIBRARY_NOT_FOUND},
    {"FUNCTION_NOT_FOUND", NVML_ERROR_FUNCTION_NOT_FOUND},
    {"CORRUPTED_INFOROM", NVML_ERROR_CORRUPTED_INFOROM},
    {"GPU_IS_LOST", NVML_ERROR_GPU_IS_LOST},
    {"RESET_REQUIRED", NVML_ERROR_RESET_REQUIRED},
    {"OPERATING_SYSTEM", NVML_ERROR_OPERATING_SYSTEM},
    {"LIB_RM_VERSION_MISMATCH", NVML_ERROR_LIB_RM_VERSION_MISMATCH},
    {"IN_USE", NVML_ERROR_IN_USE},
    {"MEMORY", NVML_ERROR_MEMORY},
    {"NO_DATA", NVML_ERROR_NO_DATA},
    {"ARGUMENT_VERSION_MISMATCH", NVML_ERROR_ARGUMENT_VERSION_MISMATCH},
    {"UNKNOWN", NVML_ERROR_UNKNOWN},
};

static bool parse_ull(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s)
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || *s == '-')
        return false;
    *out = v;
    return true;
}

static bool parse_code(const char *s, nvmlReturn_t *out)
{
    unsigned long long v;
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        if (!strcmp(s, code_names[i].name)) {
            *out = code_names[i].code;
            return true;
        }
    if (parse_ull(s, &v) && v <= 100000) {
        *out = (nvmlReturn_t)v;
        return true;
    }
    return false;
}

static int fn_lookup(const char *s)
{
    if (!strcmp(s, "*"))
        return FN_ANY_DEVICE;
    for (int i = 0; i < FN_COUNT; i++)
        if (!strcmp(s, fn_names[i]))
            return i;
    return -1;
}

/* "fault FN CODE [gpu=N] [after=N] [times=N]", "slow FN MS [gpu=N] ...",
 * "hang FN [gpu=N] [after=N]": the words after the verb. */
static bool parse_fault(struct fake_state *s, const char *verb, char *rest)
{
    char *save = NULL;
    char *fn = strtok_r(rest, " \t", &save);
    struct fake_fault f = {.gpu = -1};
    if (!fn || (f.fn = fn_lookup(fn)) < 0)
        return false;
    if (!strcmp(verb, "fault")) {
        char *code = strtok_r(NULL, " \t", &save);
        if (!code || !parse_code(code, &f.code))
            return false;
    } else if (!strcmp(verb, "slow")) {
        unsigned long long ms;
        char *w = strtok_r(NULL, " \t", &save);
        if (!w || !parse_ull(w, &ms) || ms > 86400000ull)
            return false;
        f.ms = (unsigned)ms;
        f.sleep_only = true;
    } else { /* hang: an hour is forever for a test */
        f.ms = 3600u * 1000u;
        f.sleep_only = true;
    }
    for (char *w; (w = strtok_r(NULL, " \t", &save));) {
        unsigned long long v;
        char *eq = strchr(w, '=');
        if (!eq || !parse_ull(eq + 1, &v))
            return false;
        *eq = 0;
        if (!strcmp(w, "gpu") && v < 1024)
            f.gpu = (int)v;
        else if (!strcmp(w, "after"))
            f.after = v;
        else if (!strcmp(w, "times"))
            f.times = v;
        else
            return false;
    }
    struct fake_fault *nf = realloc(s->faults, (s->n_faults + 1) * sizeof *nf);
    if (!nf)
        return false;
    s->faults = nf;
    s->faults[s->n_faults++] = f;
    return true;
}

/* "process compute|graphics PID MEM|unavailable [GI CI]" */
static bool parse_process(struct nvmlDevice_st *g, char *rest)
{
    char *save = NULL, *w[6] = {0};
    int n = 0;
    for (char *t; n < 6 && (t = strtok_r(n ? NULL : rest, " \t", &save));)
        w[n++] = t;
    if (n != 3 && n != 5)
        return false;
    struct fake_list *l = !strcmp(w[0], "compute")    ? &g->compute
                          : !strcmp(w[0], "graphics") ? &g->graphics
                                                      : NULL;
    unsigned long long pid, mem, gi = 0xFFFFFFFFu, ci = 0xFFFFFFFFu;
    if (!l || !parse_ull(w[1], &pid) || pid > UINT_MAX)
        return false;
    if (!strcmp(w[2], "unavailable"))
        mem = ULLONG_MAX;
    else if (!parse_ull(w[2], &mem))
        return false;
    if (n == 5 && (!parse_ull(w[3], &gi) || !parse_ull(w[4], &ci)))
        return false;
    struct fake_proc *p = list_push(l, sizeof *p);
    if (!p)
        return false;
    *p = (struct fake_proc){(unsigned)pid, mem, (unsigned)gi, (unsigned)ci};
    return true;
}

/* "putil PID TIMESTAMP_US SM MEM ENC DEC" (garbage values welcome) */
static bool parse_putil(struct nvmlDevice_st *g, char *rest)
{
    char *save = NULL;
    unsigned long long v[6];
    int n = 0;
    for (char *t; (t = strtok_r(n ? NULL : rest, " \t", &save));) {
        if (n == 6 || !parse_ull(t, &v[n]))
            return false;
        n++;
    }
    if (n != 6 || v[0] > UINT_MAX || v[2] > UINT_MAX || v[3] > UINT_MAX ||
        v[4] > UINT_MAX || v[5] > UINT_MAX)
        return false;
    struct fake_putil *u = list_push(&g->putil, sizeof *u);
    if (!u)
        return false;
    *u = (struct fake_putil){(unsigned)v[0], v[1], (unsigned)v[2],
                             (unsigned)v[3], (unsigned)v[4], (unsigned)v[5]};
    return true;
}

static void set_str(char *dst, size_t cap, const char *src, bool *has)
{
    snprintf(dst, cap, "%s", src);
    *has = true;
}

/* "mig.device UUID GI CI PROFILE MEM_TOTAL MEM_USED [SMS GI_SLICES CI_SLICES]":
 * a MIG device of the current GPU. Its name, lists and lost.file are made
 * from the parent's once the whole file is read (finish_migs). */
static bool parse_mig_device(struct fake_state *s, char *val)
{
    char *w[9], *save = NULL;
    unsigned n = 0;
    for (char *t = strtok_r(val, " \t", &save); t && n < 9; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    unsigned long long gi, ci, total, used, v[3] = {0, 0, 0};
    if ((n != 6 && n != 9) || !parse_ull(w[1], &gi) || !parse_ull(w[2], &ci) ||
        !parse_ull(w[4], &total) || !parse_ull(w[5], &used) || used > total)
        return false;
    for (unsigned i = 0; n == 9 && i < 3; i++)
        if (!parse_ull(w[6 + i], &v[i]))
            return false;
    struct nvmlDevice_st *nm = realloc(s->migs, (s->n_migs + 1) * sizeof *nm);
    if (!nm)
        return false;
    s->migs = nm;
    struct nvmlDevice_st *m = &s->migs[s->n_migs++];
    memset(m, 0, sizeof *m);
    m->is_mig = true;
    m->mig_parent = s->n_gpus - 1;
    m->index = s->n_gpus - 1; /* faults and lost.file of gpu=N reach its MIG devices */
    set_str(m->uuid, sizeof m->uuid, w[0], &m->has_uuid);
    snprintf(m->profile, sizeof m->profile, "%s", w[3]);
    m->gi = (unsigned)gi;
    m->ci = (unsigned)ci;
    m->sm_count = (unsigned)v[0];
    m->gi_slices = (unsigned)v[1];
    m->ci_slices = (unsigned)v[2];
    m->v[K_MEM_TOTAL] = total;
    m->v[K_MEM_USED] = used;
    m->v[K_MEM_FREE] = total - used;
    m->v[K_MEM_RESERVED] = 0;
    m->has[K_MEM_TOTAL] = m->has[K_MEM_USED] = m->has[K_MEM_FREE] = m->has[K_MEM_RESERVED] = true;
    return true;
}

/* After the file: each MIG device's name (its parent's + " MIG " +
 * profile, as NVML names them), its process lists (the parent's entries on
 * its GPU/compute instance), the parent's list of its MIG devices. */
static bool finish_migs(struct fake_state *s)
{
    for (unsigned i = 0; i < s->n_migs; i++) {
        struct nvmlDevice_st *m = &s->migs[i], *p = &s->gpus[m->mig_parent];
        snprintf(m->name, sizeof m->name, "%.90s MIG %.31s", p->name, m->profile);
        m->has_name = true;
        memcpy(m->lost_file, p->lost_file, sizeof m->lost_file);
        const struct fake_list *from[2] = {&p->compute, &p->graphics};
        struct fake_list *to[2] = {&m->compute, &m->graphics};
        for (int k = 0; k < 2; k++)
            for (unsigned j = 0; j < from[k]->n; j++) {
                const struct fake_proc *e = (const struct fake_proc *)from[k]->items + j;
                if (e->gi != m->gi || e->ci != m->ci)
                    continue;
                struct fake_proc *c = list_push(to[k], sizeof *c);
                if (!c)
                    return false;
                *c = *e;
            }
        struct nvmlDevice_st **pm = realloc(p->migs, (p->n_migs + 1) * sizeof *pm);
        if (!pm)
            return false;
        p->migs = pm;
        p->migs[p->n_migs++] = m;
    }
    return true;
}

static bool parse_line(struct fake_state *s, char *line)
{
    char *key = line, *val;
    while (*key == ' ' || *key == '\t')
        key++;
    if (!*key || *key == '#')
        return true;
    val = key + strcspn(key, " \t");
    if (*val)
        *val++ = 0;
    while (*val == ' ' || *val == '\t')
        val++;
    char *end = val + strlen(val);
    while (end > val && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;

    if (!strcmp(key, "fault") || !strcmp(key, "slow") || !strcmp(key, "hang"))
        return parse_fault(s, key, val);
    if (!strcmp(key, "driver")) {
        set_str(s->driver, sizeof s->driver, val, &s->has_driver);
        return true;
    }
    if (!strcmp(key, "nvml")) {
        set_str(s->nvml, sizeof s->nvml, val, &s->has_nvml);
        return true;
    }
    if (!strcmp(key, "unterminated")) {
        s->unterminated = strcmp(val, "0") != 0;
        return true;
    }
    if (!strcmp(key, "cuda")) {
        unsigned long long v;
        if (!parse_ull(val, &v) || v > INT_MAX)
            return false;
        s->cuda = (int)v;
        s->has_cuda = true;
        return true;
    }
    if (!strcmp(key, "procname")) {
        char *save = NULL, *pid = strtok_r(val, " \t", &save);
        char *name = strtok_r(NULL, "", &save);
        unsigned long long v;
        struct fake_pname *p;
        if (!pid || !name || !parse_ull(pid, &v) ||
            !(p = list_push(&s->pnames, sizeof *p)))
            return false;
        p->pid = (unsigned)v;
        snprintf(p->name, sizeof p->name, "%s", name);
        return true;
    }
    if (!strcmp(key, "gpu")) {
        struct nvmlDevice_st *ng = realloc(s->gpus, (s->n_gpus + 1) * sizeof *ng);
        if (!ng)
            return false;
        s->gpus = ng;
        memset(&s->gpus[s->n_gpus], 0, sizeof *ng);
        s->gpus[s->n_gpus].index = s->n_gpus;
        s->n_gpus++;
        return true;
    }
    if (!s->n_gpus)
        return false; /* every other key belongs to a GPU */
    struct nvmlDevice_st *g = &s->gpus[s->n_gpus - 1];
    if (!strcmp(key, "name"))
        set_str(g->name, sizeof g->name, val, &g->has_name);
    else if (!strcmp(key, "uuid"))
        set_str(g->uuid, sizeof g->uuid, val, &g->has_uuid);
    else if (!strcmp(key, "serial"))
        set_str(g->serial, sizeof g->serial, val, &g->has_serial);
    else if (!strcmp(key, "mig.device"))
        return parse_mig_device(s, val);
    else if (!strcmp(key, "memory.used.file")) {
        bool unused;
        set_str(g->used_file, sizeof g->used_file, val, &unused);
    } else if (!strcmp(key, "processes.file")) {
        bool unused;
        set_str(g->procs_file, sizeof g->procs_file, val, &unused);
    } else if (!strcmp(key, "lost.file")) {
        bool unused;
        set_str(g->lost_file, sizeof g->lost_file, val, &unused);
    }
    else if (!strcmp(key, "pci.bus_id")) {
        unsigned d, b, dev;
        if (sscanf(val, "%x:%x:%x.", &d, &b, &dev) != 3)
            return false;
        set_str(g->bus_id, sizeof g->bus_id, val, &g->has_bus_id);
    } else if (!strcmp(key, "process"))
        return parse_process(g, val);
    else if (!strcmp(key, "putil"))
        return parse_putil(g, val);
    else if (!strcmp(key, "xid")) {
        unsigned long long v;
        unsigned long long *x = parse_ull(val, &v) ? list_push(&g->xid, sizeof *x) : NULL;
        if (!x)
            return false;
        *x = v;
    }
    else {
        for (int k = 0; k < K_COUNT; k++)
            if (!strcmp(key, key_names[k])) {
                if (!strcmp(val, "unsupported")) {
                    g->has[k] = false;
                    return true;
                }
                if (!parse_ull(val, &g->v[k]))
                    return false;
                g->has[k] = true;
                return true;
            }
        return false;
    }
    return true;
}

static struct fake_state *state_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fake nvml: cannot open scenario %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct fake_state *s = calloc(1, sizeof *s);
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    bool ok = s != NULL;
    while (ok && getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!parse_line(s, line)) {
            fprintf(stderr, "fake nvml: %s:%u: cannot parse this line\n", path, lineno);
            ok = false;
        }
    }
    free(line);
    fclose(f);
    if (ok && !finish_migs(s)) {
        fprintf(stderr, "fake nvml: %s: out of memory for the MIG devices\n", path);
        ok = false;
    }
    if (!ok) {
        state_free(s);
        return NULL;
    }
    return s;
}

/* ---------------------------------------------------------------- seams */

static void count_call(int fn)
{
    __atomic_fetch_add(&g_calls[fn], 1, __ATOMIC_RELAXED);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Applies slow/hang/fault rules for a call of fn on GPU gpu (-1: none).
 * Returns the injected code, or NVML_SUCCESS to go on. */
static nvmlReturn_t apply_faults(int fn, int gpu)
{
    nvmlReturn_t code = NVML_SUCCESS;
    unsigned nap = 0;
    pthread_mutex_lock(&g_lock);
    struct fake_state *s = g_state;
    for (unsigned i = 0; s && i < s->n_faults; i++) {
        struct fake_fault *f = &s->faults[i];
        bool fn_match = f->fn == fn || (f->fn == FN_ANY_DEVICE && fn_is_device[fn]);
        if (!fn_match || (f->gpu >= 0 && f->gpu != gpu))
            continue;
        unsigned long long k = f->seen++;
        if (k < f->after || (f->times && k >= f->after + f->times))
            continue;
        if (f->sleep_only)
            nap += f->ms;
        else if (code == NVML_SUCCESS)
            code = f->code;
    }
    pthread_mutex_unlock(&g_lock);
    if (nap) {
        __atomic_fetch_add(&g_asleep, 1, __ATOMIC_SEQ_CST);
        sleep_ms(nap);
        __atomic_fetch_sub(&g_asleep, 1, __ATOMIC_SEQ_CST);
    }
    return code;
}

static nvmlReturn_t enter_sys(int fn)
{
    count_call(fn);
    if (!g_init_refs)
        return NVML_ERROR_UNINITIALIZED;
    return apply_faults(fn, -1);
}

/* Every per-device entry point starts here: counts, checks the handle is one
 * of ours, applies faults. */
static nvmlReturn_t enter_dev(int fn, nvmlDevice_t dev)
{
    count_call(fn);
    if (!g_init_refs)
        return NVML_ERROR_UNINITIALIZED;
    if (!dev || !g_state ||
        ((dev < g_state->gpus || dev >= g_state->gpus + g_state->n_gpus) &&
         (dev < g_state->migs || dev >= g_state->migs + g_state->n_migs)))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (dev->lost_file[0] && access(dev->lost_file, F_OK) == 0)
        return NVML_ERROR_GPU_IS_LOST;
    return apply_faults(fn, (int)dev->index);
}

#define ENTER_DEV(fn, dev)                          \
    do {                                            \
        nvmlReturn_t r_ = enter_dev(FN_##fn, dev);  \
        if (r_ != NVML_SUCCESS)                     \
            return r_;                              \
    } while (0)
#define ENTER_SYS(fn)                               \
    do {                                            \
        nvmlReturn_t r_ = enter_sys(FN_##fn);       \
        if (r_ != NVML_SUCCESS)                     \
            return r_;                              \
    } while (0)
#define NEED(dev, k)                                \
    do {                                            \
        if (!(dev)->has[k])                         \
            return NVML_ERROR_NOT_SUPPORTED;        \
    } while (0)

static nvmlReturn_t copy_str(char *dst, unsigned len, const char *src, bool has)
{
    if (!dst)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!has)
        return NVML_ERROR_NOT_SUPPORTED;
    if (g_state->unterminated) { /* a buggy driver: 'X' up to the end, no NUL */
        memset(dst, 'X', len);
        return NVML_SUCCESS;
    }
    if (strlen(src) + 1 > len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

/* ------------------------------------------------------------ lifecycle */

static nvmlReturn_t do_init(int fn)
{
    count_call(fn);
    pthread_mutex_lock(&g_lock);
    if (!g_state) {
        const char *path = getenv("GPUWATCH_FAKE_NVML_SCENARIO");
        if (!path || !*path) {
            pthread_mutex_unlock(&g_lock);
            return NVML_ERROR_DRIVER_NOT_LOADED; /* like a driverless machine */
        }
        g_state = state_load(path);
        if (!g_state) {
            pthread_mutex_unlock(&g_lock);
            return NVML_ERROR_UNKNOWN;
        }
    }
    pthread_mutex_unlock(&g_lock);
    nvmlReturn_t r = apply_faults(fn, -1);
    if (r == NVML_SUCCESS)
        g_init_refs++;
    return r;
}

nvmlReturn_t nvmlInit(void) { return do_init(FN_nvmlInit); }
nvmlReturn_t nvmlInit_v2(void) { return do_init(FN_nvmlInit_v2); }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return do_init(FN_nvmlInitWithFlags);
}

nvmlReturn_t nvmlShutdown(void)
{
    ENTER_SYS(nvmlShutdown);
    g_init_refs--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    count_call(FN_nvmlErrorString);
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Version mismatch";
    case NVML_ERROR_UNKNOWN: return "Unknown Error";
    default: return "Unknown Error";
    }
}

/* Writes "FUNCTION COUNT" lines (non-zero counts) and "total N" to
 * $GPUWATCH_FAKE_NVML_CALL_LOG, and frees the scenario, when unloaded.
 * A process may exit while one of its threads still sleeps in a hang rule
 * (the daemon abandons a hung sampling round): the scenario is then left to
 * the exit, since that thread would read it on waking. g_lock orders the
 * free after everything the other threads did before their last call. */
__attribute__((destructor)) static void fake_unload(void)
{
    const char *path = getenv("GPUWATCH_FAKE_NVML_CALL_LOG");
    if (path && *path) {
        FILE *f = fopen(path, "w");
        if (f) {
            unsigned long long total = 0;
            for (int i = 0; i < FN_COUNT; i++) {
                unsigned long long c = __atomic_load_n(&g_calls[i], __ATOMIC_RELAXED);
                if (c)
                    fprintf(f, "%s %llu\n", fn_names[i], c);
                total += c;
            }
            fprintf(f, "total %llu\n", total);
            fclose(f);
        }
    }
    pthread_mutex_lock(&g_lock);
    if (!__atomic_load_n(&g_asleep, __ATOMIC_SEQ_CST)) {
        state_free(g_state);
        g_state = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

/* --------------------------------------------------------------- system */

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    ENTER_SYS(nvmlSystemGetDriverVersion);
    return copy_str(version, length, g_state->driver, g_state->has_driver);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    ENTER_SYS(nvmlSystemGetNVMLVersion);
    return copy_str(version, length, g_state->nvml, g_state->has_nvml);
}

static nvmlReturn_t cuda_version(int *v)
{
    if (!v)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!g_state->has_cuda)
        return NVML_ERROR_NOT_SUPPORTED;
    *v = g_state->cuda;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v)
{
    ENTER_SYS(nvmlSystemGetCudaDriverVersion);
    return cuda_version(v);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    ENTER_SYS(nvmlSystemGetCudaDriverVersion_v2);
    return cuda_version(v);
}

nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length)
{
    ENTER_SYS(nvmlSystemGetProcessName);
    struct fake_pname *p = g_state->pnames.items;
    for (unsigned i = 0; i < g_state->pnames.n; i++)
        if (p[i].pid == pid)
            return copy_str(name, length, p[i].name, true);
    return NVML_ERROR_NOT_FOUND;
}

static nvmlReturn_t get_count(unsigned int *count)
{
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = g_state->n_gpus;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count)
{
    ENTER_SYS(nvmlDeviceGetCount);
    return get_count(count);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    ENTER_SYS(nvmlDeviceGetCount_v2);
    return get_count(count);
}

static nvmlReturn_t get_handle(int fn, unsigned int index, nvmlDevice_t *dev)
{
    count_call(fn);
    if (!g_init_refs)
        return NVML_ERROR_UNINITIALIZED;
    if (!dev || index >= g_state->n_gpus)
        return NVML_ERROR_INVALID_ARGUMENT;
    nvmlReturn_t r = apply_faults(fn, (int)index);
    if (r != NVML_SUCCESS)
        return r;
    *dev = &g_state->gpus[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *dev)
{
    return get_handle(FN_nvmlDeviceGetHandleByIndex, index, dev);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev)
{
    return get_handle(FN_nvmlDeviceGetHandleByIndex_v2, index, dev);
}

/* --------------------------------------------------------------- static */

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length)
{
    ENTER_DEV(nvmlDeviceGetName, d);
    return copy_str(name, length, d->name, d->has_name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length)
{
    ENTER_DEV(nvmlDeviceGetUUID, d);
    return copy_str(uuid, length, d->uuid, d->has_uuid);
}

nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t d, char *serial, unsigned int length)
{
    ENTER_DEV(nvmlDeviceGetSerial, d);
    return copy_str(serial, length, d->serial, d->has_serial);
}

/* legacy: the pre-v2 entry point wrote the 16-byte "%04X:%02X:%02X.0" form
 * into busId as well. */
static nvmlReturn_t pci_info(nvmlDevice_t d, nvmlPciInfo_t *pci, bool legacy)
{
    unsigned dom, bus, dev;
    if (!pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->has_bus_id || sscanf(d->bus_id, "%x:%x:%x.", &dom, &bus, &dev) != 3)
        return NVML_ERROR_NOT_SUPPORTED;
    memset(pci, 0, sizeof *pci);
    pci->domain = dom;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = (unsigned)d->v[K_PCI_DEVICE_ID];
    pci->pciSubSystemId = (unsigned)d->v[K_PCI_SUBSYSTEM_ID];
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0",
             dom & 0xFFFFu, bus & 0xFFu, dev & 0xFFu);
    if (legacy)
        memcpy(pci->busId, pci->busIdLegacy, sizeof pci->busIdLegacy);
    else
        snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.0", dom, bus & 0xFFu,
                 dev & 0xFFu);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    ENTER_DEV(nvmlDeviceGetPciInfo, d);
    return pci_info(d, pci, true);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    ENTER_DEV(nvmlDeviceGetPciInfo_v2, d);
    return pci_info(d, pci, false);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    ENTER_DEV(nvmlDeviceGetPciInfo_v3, d);
    return pci_info(d, pci, false);
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor)
{
    ENTER_DEV(nvmlDeviceGetCudaComputeCapability, d);
    if (!major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_CC_MAJOR);
    NEED(d, K_CC_MINOR);
    *major = (int)d->v[K_CC_MAJOR];
    *minor = (int)d->v[K_CC_MINOR];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pending)
{
    ENTER_DEV(nvmlDeviceGetMigMode, d);
    if (!cur || !pending)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_MIG);
    *cur = (unsigned)d->v[K_MIG];
    *pending = d->has[K_MIG_PENDING] ? (unsigned)d->v[K_MIG_PENDING] : *cur;
    return NVML_SUCCESS;
}

/* MIG: a GPU with a `mig` line can hold 7 MIG devices (an A100's and an
 * H100's most); its mig.device lines fill the first slots; the rest answer
 * NOT_FOUND, as NVML's empty slots do. */
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *count)
{
    ENTER_DEV(nvmlDeviceGetMaxMigDeviceCount, d);
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (d->is_mig || !d->has[K_MIG])
        return NVML_ERROR_NOT_SUPPORTED;
    *count = 7;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index,
                                                 nvmlDevice_t *mig)
{
    ENTER_DEV(nvmlDeviceGetMigDeviceHandleByIndex, d);
    if (!mig || d->is_mig || !d->has[K_MIG])
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->v[K_MIG] || index >= d->n_migs)
        return NVML_ERROR_NOT_FOUND;
    *mig = d->migs[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t d, unsigned int *is_mig)
{
    ENTER_DEV(nvmlDeviceIsMigDeviceHandle, d);
    if (!is_mig)
        return NVML_ERROR_INVALID_ARGUMENT;
    *is_mig = d->is_mig;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int *id)
{
    ENTER_DEV(nvmlDeviceGetGpuInstanceId, d);
    if (!id || !d->is_mig)
        return NVML_ERROR_INVALID_ARGUMENT;
    *id = d->gi;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int *id)
{
    ENTER_DEV(nvmlDeviceGetComputeInstanceId, d);
    if (!id || !d->is_mig)
        return NVML_ERROR_INVALID_ARGUMENT;
    *id = d->ci;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t d, nvmlDevice_t *parent)
{
    ENTER_DEV(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, d);
    if (!parent || !d->is_mig)
        return NVML_ERROR_INVALID_ARGUMENT;
    *parent = &g_state->gpus[d->mig_parent];
    return NVML_SUCCESS;
}

/* SM and slice counts and memory: a MIG device's own (when its mig.device
 * line gave them); a whole GPU's only memory (this fake knows no SM count). */
nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t d, nvmlDeviceAttributes_t *a)
{
    ENTER_DEV(nvmlDeviceGetAttributes_v2, d);
    if (!a)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->is_mig || !d->sm_count)
        return NVML_ERROR_NOT_SUPPORTED;
    memset(a, 0, sizeof *a);
    a->multiprocessorCount = d->sm_count;
    a->gpuInstanceSliceCount = d->gi_slices;
    a->computeInstanceSliceCount = d->ci_slices;
    a->memorySizeMB = d->v[K_MEM_TOTAL] >> 20;
    return NVML_SUCCESS;
}

/* One unsigned value from key k. */
static nvmlReturn_t get_u(nvmlDevice_t d, int k, unsigned int *out)
{
    if (!out)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, k);
    *out = (unsigned)d->v[k];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetMaxPcieLinkGeneration, d);
    return get_u(d, K_PCIE_MAX_GEN, v);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetMaxPcieLinkWidth, d);
    return get_u(d, K_PCIE_MAX_WIDTH, v);
}

/* Not read by gpuwatch; nvtop needs the symbol to load the library at all
 * (bench/top_bench.py). Always NOT_SUPPORTED, as on many boards. */
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, nvmlPcieUtilCounter_t counter,
                                         unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetPcieThroughput, d);
    if (!v || (unsigned)counter >= NVML_PCIE_UTIL_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetCurrPcieLinkGeneration, d);
    return get_u(d, K_PCIE_GEN, v);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetCurrPcieLinkWidth, d);
    return get_u(d, K_PCIE_WIDTH, v);
}

static int clock_key(nvmlClockType_t type, bool max)
{
    switch (type) {
    case NVML_CLOCK_GRAPHICS: return max ? K_MAX_CLOCK_GRAPHICS : K_CLOCK_GRAPHICS;
    case NVML_CLOCK_SM: return max ? K_MAX_CLOCK_SM : K_CLOCK_SM;
    case NVML_CLOCK_MEM: return max ? K_MAX_CLOCK_MEM : K_CLOCK_MEM;
    case NVML_CLOCK_VIDEO: return max ? K_MAX_CLOCK_VIDEO : K_CLOCK_VIDEO;
    default: return -1;
    }
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t type, unsigned int *clock)
{
    ENTER_DEV(nvmlDeviceGetClockInfo, d);
    int k = clock_key(type, false);
    return k < 0 ? NVML_ERROR_INVALID_ARGUMENT : get_u(d, k, clock);
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, nvmlClockType_t type, unsigned int *clock)
{
    ENTER_DEV(nvmlDeviceGetMaxClockInfo, d);
    int k = clock_key(type, true);
    return k < 0 ? NVML_ERROR_INVALID_ARGUMENT : get_u(d, k, clock);
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, nvmlTemperatureSensors_t sensor,
                                      unsigned int *temp)
{
    ENTER_DEV(nvmlDeviceGetTemperature, d);
    if (sensor != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    return get_u(d, K_TEMP, temp);
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t d,
                                               nvmlTemperatureThresholds_t type,
                                               unsigned int *temp)
{
    ENTER_DEV(nvmlDeviceGetTemperatureThreshold, d);
    switch (type) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: return get_u(d, K_TEMP_SHUTDOWN, temp);
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: return get_u(d, K_TEMP_SLOWDOWN, temp);
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX: return get_u(d, K_TEMP_MEM_MAX, temp);
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: return get_u(d, K_TEMP_GPU_MAX, temp);
    default: return NVML_ERROR_NOT_SUPPORTED;
    }
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t d, unsigned int *mn,
                                                          unsigned int *mx)
{
    ENTER_DEV(nvmlDeviceGetPowerManagementLimitConstraints, d);
    if (!mn || !mx)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_POWER_MIN);
    NEED(d, K_POWER_MAX);
    *mn = (unsigned)d->v[K_POWER_MIN];
    *mx = (unsigned)d->v[K_POWER_MAX];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetPowerManagementDefaultLimit, d);
    return get_u(d, K_POWER_DEFAULT, v);
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetPowerManagementLimit, d);
    return get_u(d, K_POWER_MGMT_LIMIT, v);
}

/* -------------------------------------------------------------- dynamic */

/* used and free of d now: the scenario's, or with memory.used.file the used
 * bytes that file holds at this moment (free = total - reserved - used, at
 * least 0; an unreadable file keeps the scenario's figures). */
static void memory_now(nvmlDevice_t d, unsigned long long *used, unsigned long long *freeb)
{
    *used = d->v[K_MEM_USED];
    *freeb = d->v[K_MEM_FREE];
    if (!d->used_file[0])
        return;
    FILE *f = fopen(d->used_file, "r");
    unsigned long long u;
    if (!f)
        return;
    if (fscanf(f, "%llu", &u) == 1) {
        unsigned long long cap = d->v[K_MEM_TOTAL] - d->v[K_MEM_RESERVED];
        *used = u;
        *freeb = u < cap ? cap - u : 0;
    }
    fclose(f);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    ENTER_DEV(nvmlDeviceGetMemoryInfo, d);
    if (!m)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_MEM_TOTAL);
    NEED(d, K_MEM_FREE);
    /* v1 semantics since R510: used = everything not free, reserved included */
    unsigned long long used, freeb;
    memory_now(d, &used, &freeb);
    m->total = d->v[K_MEM_TOTAL];
    m->free = freeb;
    m->used = d->v[K_MEM_TOTAL] - freeb;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m)
{
    ENTER_DEV(nvmlDeviceGetMemoryInfo_v2, d);
    if (!m)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (m->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    NEED(d, K_MEM_TOTAL);
    NEED(d, K_MEM_FREE);
    NEED(d, K_MEM_USED);
    NEED(d, K_MEM_RESERVED);
    unsigned long long used, freeb;
    memory_now(d, &used, &freeb);
    m->total = d->v[K_MEM_TOTAL];
    m->reserved = d->v[K_MEM_RESERVED];
    m->free = freeb;
    m->used = used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    ENTER_DEV(nvmlDeviceGetUtilizationRates, d);
    if (!u)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_UTIL_GPU);
    NEED(d, K_UTIL_MEM);
    u->gpu = (unsigned)d->v[K_UTIL_GPU];
    u->memory = (unsigned)d->v[K_UTIL_MEM];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned int *util,
                                             unsigned int *period_us)
{
    ENTER_DEV(nvmlDeviceGetEncoderUtilization, d);
    if (!period_us)
        return NVML_ERROR_INVALID_ARGUMENT;
    *period_us = 167000;
    return get_u(d, K_UTIL_ENC, util);
}

nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned int *util,
                                             unsigned int *period_us)
{
    ENTER_DEV(nvmlDeviceGetDecoderUtilization, d);
    if (!period_us)
        return NVML_ERROR_INVALID_ARGUMENT;
    *period_us = 167000;
    return get_u(d, K_UTIL_DEC, util);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetPowerUsage, d);
    return get_u(d, K_POWER_USAGE, v);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetEnforcedPowerLimit, d);
    return get_u(d, K_POWER_LIMIT, v);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *v)
{
    ENTER_DEV(nvmlDeviceGetTotalEnergyConsumption, d);
    if (!v)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_ENERGY);
    *v = d->v[K_ENERGY];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetFanSpeed, d);
    return get_u(d, K_FAN, v);
}

nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t d, nvmlPstates_t *p)
{
    ENTER_DEV(nvmlDeviceGetPerformanceState, d);
    if (!p)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_PSTATE);
    *p = (nvmlPstates_t)d->v[K_PSTATE];
    return NVML_SUCCESS;
}

static nvmlReturn_t clock_events(nvmlDevice_t d, unsigned long long *v)
{
    if (!v)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_CLOCK_EVENTS);
    *v = d->v[K_CLOCK_EVENTS];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *v)
{
    ENTER_DEV(nvmlDeviceGetCurrentClocksEventReasons, d);
    return clock_events(d, v);
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *v)
{
    ENTER_DEV(nvmlDeviceGetCurrentClocksThrottleReasons, d);
    return clock_events(d, v);
}

/* ------------------------------------------------------------ processes */

/* The three process-list ABIs, by entry size. */
enum proc_abi { ABI_V1 = 16, ABI_V2 = 24, ABI_V3_535 = 32 };

/* Serves one process list. With procs.grow = G, a size query (*count == 0)
 * reports G fewer processes than the fill call then returns, as when
 * processes start between the two calls: a caller that allocates exactly
 * the reported count gets INSUFFICIENT_SIZE again. */
static nvmlReturn_t serve_procs(nvmlDevice_t d, const struct fake_list *l, unsigned *count,
                                void *infos, enum proc_abi abi)
{
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    struct fake_proc from_file[64];
    struct fake_list file_list = {from_file, 0, 64};
    if (l == &d->compute && d->procs_file[0]) { /* processes.file: "PID MEM" lines, now */
        FILE *f = fopen(d->procs_file, "r");
        unsigned pid;
        unsigned long long mem;
        while (f && file_list.n < 64 && fscanf(f, "%u %llu", &pid, &mem) == 2)
            from_file[file_list.n++] = (struct fake_proc){pid, mem, 0xFFFFFFFFu, 0xFFFFFFFFu};
        if (f)
            fclose(f);
        l = &file_list;
    }
    unsigned n = l->n;
    if (*count == 0 && n > 0) {
        unsigned grow = d->has[K_PROCS_GROW] ? (unsigned)d->v[K_PROCS_GROW] : 0;
        *count = grow < n ? n - grow : 1;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (*count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (n && !infos)
        return NVML_ERROR_INVALID_ARGUMENT;
    const struct fake_proc *p = l->items;
    for (unsigned i = 0; i < n; i++) {
        unsigned char *e = (unsigned char *)infos + (size_t)i * abi;
        memset(e, 0, abi);
        memcpy(e, &p[i].pid, sizeof(unsigned));
        memcpy(e + 8, &p[i].mem, sizeof(unsigned long long));
        if (abi >= ABI_V2) {
            memcpy(e + 16, &p[i].gi, sizeof(unsigned));
            memcpy(e + 20, &p[i].ci, sizeof(unsigned));
        }
        if (abi == ABI_V3_535) { /* usedGpuCcProtectedMemory */
            unsigned long long cc = 0;
            memcpy(e + 24, &cc, sizeof cc);
        }
    }
    *count = n;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int *c,
                                                  nvmlProcessInfo_v1_t *i)
{
    ENTER_DEV(nvmlDeviceGetComputeRunningProcesses, d);
    return serve_procs(d, &d->compute, c, i, ABI_V1);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int *c,
                                                     nvmlProcessInfo_v2_t *i)
{
    ENTER_DEV(nvmlDeviceGetComputeRunningProcesses_v2, d);
    return serve_procs(d, &d->compute, c, i, ABI_V2);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *c,
                                                     nvmlProcessInfo_t *i)
{
    ENTER_DEV(nvmlDeviceGetComputeRunningProcesses_v3, d);
    return serve_procs(d, &d->compute, c, i, ABI_V3_535);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t d, unsigned int *c,
                                                   nvmlProcessInfo_v1_t *i)
{
    ENTER_DEV(nvmlDeviceGetGraphicsRunningProcesses, d);
    return serve_procs(d, &d->graphics, c, i, ABI_V1);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t d, unsigned int *c,
                                                      nvmlProcessInfo_v2_t *i)
{
    ENTER_DEV(nvmlDeviceGetGraphicsRunningProcesses_v2, d);
    return serve_procs(d, &d->graphics, c, i, ABI_V2);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int *c,
                                                      nvmlProcessInfo_t *i)
{
    ENTER_DEV(nvmlDeviceGetGraphicsRunningProcesses_v3, d);
    return serve_procs(d, &d->graphics, c, i, ABI_V3_535);
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d,
                                             nvmlProcessUtilizationSample_t *out,
                                             unsigned int *count,
                                             unsigned long long last_seen)
{
    ENTER_DEV(nvmlDeviceGetProcessUtilization, d);
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    const struct fake_putil *u = d->putil.items;
    unsigned n = 0;
    for (unsigned i = 0; i < d->putil.n; i++)
        n += u[i].ts > last_seen;
    if (n == 0) {
        *count = 0;
        return NVML_ERROR_NOT_FOUND;
    }
    if (!out || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    unsigned k = 0;
    for (unsigned i = 0; i < d->putil.n; i++)
        if (u[i].ts > last_seen)
            out[k++] = (nvmlProcessUtilizationSample_t){u[i].pid, u[i].ts, u[i].sm,
                                                         u[i].mem, u[i].enc, u[i].dec};
    *count = n;
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------- health */

nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t d, unsigned int *v)
{
    ENTER_DEV(nvmlDeviceGetPcieReplayCounter, d);
    return get_u(d, K_PCIE_REPLAY, v);
}

/* Volatile totals from ecc.corrected / ecc.uncorrected; the aggregate
 * (lifetime) counters are not served. */
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, nvmlMemoryErrorType_t type,
                                         nvmlEccCounterType_t counter, unsigned long long *v)
{
    ENTER_DEV(nvmlDeviceGetTotalEccErrors, d);
    if (!v || counter != NVML_VOLATILE_ECC)
        return counter == NVML_AGGREGATE_ECC ? NVML_ERROR_NOT_SUPPORTED
                                             : NVML_ERROR_INVALID_ARGUMENT;
    int k = type == NVML_MEMORY_ERROR_TYPE_CORRECTED     ? K_ECC_CORRECTED
            : type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED ? K_ECC_UNCORRECTED
                                                         : -1;
    if (k < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, k);
    *v = d->v[k];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc,
                                       unsigned int *pending, unsigned int *failure)
{
    ENTER_DEV(nvmlDeviceGetRemappedRows, d);
    if (!corr || !unc || !pending || !failure)
        return NVML_ERROR_INVALID_ARGUMENT;
    NEED(d, K_REMAP_CORR);
    NEED(d, K_REMAP_UNC);
    NEED(d, K_REMAP_PENDING);
    NEED(d, K_REMAP_FAILURE);
    *corr = (unsigned)d->v[K_REMAP_CORR];
    *unc = (unsigned)d->v[K_REMAP_UNC];
    *pending = (unsigned)d->v[K_REMAP_PENDING];
    *failure = (unsigned)d->v[K_REMAP_FAILURE];
    return NVML_SUCCESS;
}

/* An event set: which GPUs are registered for which event types. Each GPU's
 * scenario Xids ("xid N" lines) are served once, in order, to the first set
 * that waits while the GPU is registered for Xid events. */
struct nvmlEventSet_st {
    unsigned long long types[64];
};

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    ENTER_SYS(nvmlEventSetCreate);
    if (!set)
        return NVML_ERROR_INVALID_ARGUMENT;
    *set = calloc(1, sizeof **set);
    return *set ? NVML_SUCCESS : NVML_ERROR_MEMORY;
}

/* "events 0" on a GPU: registering answers NOT_SUPPORTED (consumer cards). */
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set)
{
    ENTER_DEV(nvmlDeviceRegisterEvents, d);
    if (!set || d->index >= 64)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (d->has[K_EVENTS] && d->v[K_EVENTS] == 0)
        return NVML_ERROR_NOT_SUPPORTED;
    set->types[d->index] |= types;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
    ENTER_SYS(nvmlEventSetWait_v2);
    if (!set || !data)
        return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&g_lock);
    for (unsigned i = 0; g_state && i < g_state->n_gpus && i < 64; i++) {
        struct nvmlDevice_st *g = &g_state->gpus[i];
        if (!(set->types[i] & nvmlEventTypeXidCriticalError) || g->xid_delivered >= g->xid.n)
            continue;
        const unsigned long long *x = g->xid.items;
        memset(data, 0, sizeof *data);
        data->device = g;
        data->eventType = nvmlEventTypeXidCriticalError;
        data->eventData = x[g->xid_delivered++];
        data->gpuInstanceId = data->computeInstanceId = 0xFFFFFFFFu;
        pthread_mutex_unlock(&g_lock);
        return NVML_SUCCESS;
    }
    pthread_mutex_unlock(&g_lock);
    if (timeout_ms)
        sleep_ms(timeout_ms < 50 ? timeout_ms : 50); /* nothing will come: a short wait */
    return NVML_ERROR_TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    ENTER_SYS(nvmlEventSetFree);
    free(set);
    return NVML_SUCCESS;
}
