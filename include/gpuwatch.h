/* gpuwatch.h — the public API of libgpuwatch.
 *
 * What it owns: the data model every reader of gpuwatch uses (device info, a
 * sample with a valid bit per metric, processes, host figures, source status,
 * the immutable snapshot), the error codes, and the monitor that opens the
 * vendor sources and takes snapshots.
 *
 * Invariants:
 *  1. Units inside: bytes, milliwatts, millijoules, millidegrees C, MHz,
 *     percent as double 0..100. Conversion happens only at the edges.
 *  2. Every metric has a valid bit. A field whose bit is clear holds 0 and
 *     MUST NOT be shown; renderers write null / "N/A" / nothing instead.
 *  3. A snapshot is immutable once returned; it is freed when the last
 *     reference is released.
 *  4. Errors are negative codes from GW_ERROR_LIST; a message naming what
 *     went wrong goes into a caller-owned gw_error.
 */
#ifndef GPUWATCH_H
#define GPUWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GW_VERSION_STRING "0.1.0"
#define GW_API __attribute__((visibility("default")))

/* The daemon's TCP port by default: `gpuwatch serve` listens on it and
 * `place` / `run` look for a daemon there. 19400 is outside Prometheus's
 * default-port allocation list (9100-9999, every number an exporter's; 9400
 * is dcgm-exporter's), below Linux's ephemeral range (32768+) and not in
 * /etc/services. The only place the number is written in the code. */
#define GW_DEFAULT_PORT 19400
#define GW__STR_(x) #x
#define GW__STR(x) GW__STR_(x)
#define GW_DEFAULT_PORT_STR GW__STR(GW_DEFAULT_PORT)      /* "19400" */
#define GW_DEFAULT_LISTEN "127.0.0.1:" GW_DEFAULT_PORT_STR /* serve's listen */

/* ---------------------------------------------------------------- errors */

/* Error codes. Only ever append: the numbers are part of the ABI and of the
 * JSON output ("error.code"). */
#define GW_ERROR_LIST(X)                                                     \
    X(GW_OK, 0, "success")                                                   \
    X(GW_ENOMEM, -1, "out of memory")                                        \
    X(GW_EINVAL, -2, "invalid argument")                                     \
    X(GW_EIO, -3, "input/output error")                                      \
    X(GW_ENOENT, -4, "not found")                                            \
    X(GW_ENOTSUP, -5, "not supported")                                       \
    X(GW_ELOAD, -6, "library could not be loaded")                           \
    X(GW_EDRIVER, -7, "driver error")                                        \
    X(GW_ETIMEDOUT, -8, "timed out")                                         \
    X(GW_EPARSE, -9, "malformed input")                                      \
    X(GW_ELOST, -10, "device lost")                                          \
    X(GW_EPERM, -11, "permission denied")                                    \
    X(GW_ERANGE, -12, "value out of range")                                  \
    X(GW_EBACKOFF, -13, "source is backing off after a failure")             \
    X(GW_ENODEV, -14, "no device")

typedef enum gw_status {
#define GW__ERR_ENUM(name, value, text) name = value,
    GW_ERROR_LIST(GW__ERR_ENUM)
#undef GW__ERR_ENUM
} gw_status;

/* Static text for a code; never NULL ("unknown error" for unknown codes). */
GW_API const char *gw_strerror(int code);

/* Caller-owned error context. Functions that fail fill it (code + a message
 * naming the input and what was wrong) and return the same code. */
typedef struct gw_error {
    int code;
    char message[512];
} gw_error;

/* Clears an error context to GW_OK and an empty message. */
GW_API void gw_error_clear(gw_error *err);

/* ------------------------------------------------------------ data model */

typedef enum gw_vendor {
    GW_VENDOR_UNKNOWN = 0,
    GW_VENDOR_NVIDIA,
    GW_VENDOR_AMD,
    GW_VENDOR_INTEL,
} gw_vendor;

/* "nvidia", "amd", "intel" or "unknown"; static. */
GW_API const char *gw_vendor_name(gw_vendor v);

typedef enum gw_device_state {
    GW_DEVICE_OK = 0,
    GW_DEVICE_LOST,  /* fell off the bus / GPU_IS_LOST: no metric is valid */
    GW_DEVICE_ERROR, /* the source answered with an error for this device */
    GW_DEVICE_STALE, /* the source did not answer in time; sample is old */
} gw_device_state;

/* "ok", "lost", "error", "stale"; static. */
GW_API const char *gw_device_state_name(gw_device_state s);

/* Valid bits of gw_device_info (bit = 1u << field). */
typedef enum gw_info_field {
    GW_INFO_SERIAL = 0,
    GW_INFO_MEMORY_TOTAL,
    GW_INFO_COMPUTE_CAP,
    GW_INFO_MAX_CLOCK_SM,
    GW_INFO_MAX_CLOCK_GRAPHICS,
    GW_INFO_MAX_CLOCK_MEM,
    GW_INFO_POWER_LIMIT_MIN,
    GW_INFO_POWER_LIMIT_MAX,
    GW_INFO_POWER_LIMIT_DEFAULT,
    GW_INFO_TEMP_SHUTDOWN,
    GW_INFO_TEMP_SLOWDOWN,
    GW_INFO_TEMP_MEM_MAX,
    GW_INFO_TEMP_GPU_MAX,
    GW_INFO_PCIE_MAX_GEN,
    GW_INFO_PCIE_MAX_WIDTH,
    GW_INFO_FIELD_COUNT
} gw_info_field;

/* Static facts about one device, read once when the source opens. Strings
 * are NUL-terminated; an empty string means "not available". */
typedef struct gw_device_info {
    gw_vendor vendor;
    uint32_t index;        /* position in the snapshot, 0..n_devices-1 */
    uint32_t source_index; /* the source's own index (NVML index, DRM card) */
    char source[16];       /* backend that reads it: "nvml", "amdgpu", ... */
    char uuid[96];
    char name[96];
    char pci_bus_id[32]; /* "00000000:01:00.0" as NVML prints it */
    char serial[32];
    char driver_version[32];
    char library_version[32]; /* NVML version for NVIDIA */
    char cuda_version[16];    /* "12.4"; empty when not NVIDIA */
    char memory_api[8];       /* how memory is read: "v2", "v1", "sysfs", ... */
    uint64_t valid;           /* 1 << gw_info_field */
    uint64_t memory_total;    /* bytes */
    int cc_major, cc_minor;   /* CUDA compute capability */
    uint32_t max_clock_sm_mhz, max_clock_graphics_mhz, max_clock_mem_mhz;
    uint32_t power_limit_min_mw, power_limit_max_mw, power_limit_default_mw;
    int32_t temp_shutdown_mc, temp_slowdown_mc, temp_mem_max_mc, temp_gpu_max_mc;
    uint32_t pcie_max_gen, pcie_max_width;
} gw_device_info;

static inline bool gw_info_has(const gw_device_info *i, gw_info_field f)
{
    return (i->valid >> f) & 1u;
}

/* Valid bits of gw_sample (bit = 1 << metric). */
typedef enum gw_metric {
    GW_METRIC_MEM_TOTAL = 0,
    GW_METRIC_MEM_USED,
    GW_METRIC_MEM_FREE,
    GW_METRIC_MEM_RESERVED,
    GW_METRIC_UTIL_GPU,
    GW_METRIC_UTIL_MEM,
    GW_METRIC_UTIL_ENC,
    GW_METRIC_UTIL_DEC,
    GW_METRIC_TEMP,
    GW_METRIC_POWER,
    GW_METRIC_POWER_LIMIT,
    GW_METRIC_ENERGY,
    GW_METRIC_CLOCK_SM,
    GW_METRIC_CLOCK_GRAPHICS,
    GW_METRIC_CLOCK_MEM,
    GW_METRIC_FAN,
    GW_METRIC_PSTATE,
    GW_METRIC_CLOCK_EVENTS,
    GW_METRIC_PCIE_GEN,
    GW_METRIC_PCIE_WIDTH,
    GW_METRIC_MIG_MODE,
    GW_METRIC_GTT_TOTAL,
    GW_METRIC_GTT_USED,
    GW_METRIC_VIS_VRAM_TOTAL,
    GW_METRIC_VIS_VRAM_USED,
    GW_METRIC_TEMP_JUNCTION,
    GW_METRIC_TEMP_MEM,
    GW_METRIC_FAN_RPM,
    GW_METRIC_PCIE_REPLAYS,  /* pcie_replays */
    GW_METRIC_ECC_ERRORS,    /* ecc_corrected, ecc_uncorrected */
    GW_METRIC_ROW_REMAP,     /* remap_* (one call fills the four) */
    GW_METRIC_XID,           /* xid_last, xid_events */
    GW_METRIC_COUNT
} gw_metric;

/* Stable snake_case name of a metric ("mem_used"); static. */
GW_API const char *gw_metric_name(gw_metric m);

/* Clock-event (throttle) reason bits, as NVML defines them. */
#define GW_CLOCK_EVENT_GPU_IDLE 0x1ull
#define GW_CLOCK_EVENT_APP_CLOCKS 0x2ull
#define GW_CLOCK_EVENT_SW_POWER_CAP 0x4ull
#define GW_CLOCK_EVENT_HW_SLOWDOWN 0x8ull
#define GW_CLOCK_EVENT_SYNC_BOOST 0x10ull
#define GW_CLOCK_EVENT_SW_THERMAL 0x20ull
#define GW_CLOCK_EVENT_HW_THERMAL 0x40ull
#define GW_CLOCK_EVENT_HW_POWER_BRAKE 0x80ull

/* One reading of one device's dynamic metrics. */
typedef struct gw_sample {
    uint64_t valid; /* 1 << gw_metric */
    uint64_t mem_total, mem_used, mem_free, mem_reserved; /* bytes */
    double util_gpu, util_mem, util_enc, util_dec;         /* percent */
    int32_t temp_mc;                                        /* millidegrees C */
    uint32_t power_mw, power_limit_mw;
    uint64_t energy_mj; /* since driver load */
    uint32_t clock_sm_mhz, clock_graphics_mhz, clock_mem_mhz;
    double fan_pct;       /* may exceed 100 on NVIDIA */
    uint32_t pstate;      /* 0..15 */
    uint64_t clock_events; /* GW_CLOCK_EVENT_* bits */
    uint32_t pcie_gen, pcie_width;
    uint32_t mig_mode; /* 0 off, 1 on */
    uint64_t gtt_total, gtt_used;           /* bytes (AMD) */
    uint64_t vis_vram_total, vis_vram_used; /* bytes (AMD) */
    int32_t temp_junction_mc, temp_mem_mc;
    uint32_t fan_rpm;
    /* health (NVIDIA): counters since the driver loaded, except the Xid
     * figures, which count what this monitor has seen since it opened */
    uint64_t pcie_replays;                   /* PCIe replays (link retries) */
    uint64_t ecc_corrected, ecc_uncorrected; /* volatile ECC error totals */
    uint32_t remap_correctable, remap_uncorrectable; /* remapped rows */
    bool remap_pending; /* a remap waits for a GPU reset */
    bool remap_failure; /* a remap failed: the GPU needs service */
    uint32_t xid_last;  /* last critical Xid seen; 0: none */
    uint64_t xid_events; /* critical Xid events seen */
} gw_sample;

static inline bool gw_sample_has(const gw_sample *s, gw_metric m)
{
    return (s->valid >> m) & 1u;
}

/* One device in a snapshot: its static info, its latest sample, its state. */
typedef struct gw_device {
    gw_device_info info;
    gw_sample sample;
    gw_device_state state;
    char state_reason[160]; /* why not ok; empty when ok */
    int64_t sampled_at_ns;  /* CLOCK_REALTIME of the sample */
} gw_device;

/* Valid bits of gw_process (bit = 1 << field). */
typedef enum gw_process_field {
    GW_PROC_GPU_MEMORY = 0,
    GW_PROC_SM_UTIL,
    GW_PROC_MEM_UTIL,
    GW_PROC_ENC_UTIL,
    GW_PROC_DEC_UTIL,
    GW_PROC_NAME,
    GW_PROC_USER,
    GW_PROC_CMDLINE,
    GW_PROC_GTT_MEMORY,
    GW_PROC_HOST_MEMORY,
    GW_PROC_CPU_UTIL,
    GW_PROC_OWNER,
    GW_PROC_MODEL,
    GW_PROC_FIELD_COUNT
} gw_process_field;

typedef enum gw_process_kind {
    GW_PROCESS_COMPUTE = 0,
    GW_PROCESS_GRAPHICS,
    GW_PROCESS_OTHER,
} gw_process_kind;

/* "compute", "graphics", "other"; static. */
GW_API const char *gw_process_kind_name(gw_process_kind k);

/* Who owns a process on a shared host, from its cgroup. */
typedef enum gw_owner_kind {
    GW_OWNER_NONE = 0,   /* none of the kinds below */
    GW_OWNER_SYSTEMD,    /* a systemd unit: unit */
    GW_OWNER_CONTAINER,  /* a container outside Kubernetes: runtime, container_id */
    GW_OWNER_KUBERNETES, /* a pod: pod_uid (pod, pod_namespace when known), container_id */
    GW_OWNER_SLURM,      /* a Slurm job: slurm_job (slurm_step) */
} gw_owner_kind;

/* "none", "systemd", "container", "kubernetes", "slurm"; static. */
GW_API const char *gw_owner_kind_name(gw_owner_kind k);

/* Every string "" when not known (or longer than its field); only
 * [A-Za-z0-9_.@:-]. Sized for what these names are (a 64-hex container id,
 * a 36-character UID, Kubernetes' 63-character names): a process carries
 * one, so it stays small. */
typedef struct gw_owner {
    gw_owner_kind kind;
    char runtime[12];       /* "docker", "containerd", "crio", "podman" */
    char container_id[65];  /* hex */
    char pod_uid[37];
    char pod[64], pod_namespace[64];
    char unit[64];          /* "ollama.service", "session-3.scope" */
    char slurm_job[16], slurm_step[16];
} gw_owner;

/* One process using one device (a process on two GPUs appears twice). */
typedef struct gw_process {
    uint32_t pid;
    uint32_t device_index; /* index into snapshot->devices */
    uint32_t valid;        /* 1 << gw_process_field */
    gw_process_kind kind;
    uint64_t gpu_memory; /* bytes */
    uint64_t gtt_memory; /* bytes (AMD/Intel system-memory region) */
    double sm_util, mem_util, enc_util, dec_util; /* percent */
    char name[64];
    char user[32];
    char cmdline[256]; /* arguments joined by spaces, truncated */
    uint64_t host_memory; /* resident set in host RAM, bytes */
    double cpu_util;      /* percent of one CPU core over the last interval */
    gw_owner owner;       /* GW_PROC_OWNER: read, kind may still be NONE */
    char model[96];       /* GW_PROC_MODEL: the model it serves (a model server said) */
} gw_process;

static inline bool gw_process_has(const gw_process *p, gw_process_field f)
{
    return (p->valid >> f) & 1u;
}

/* Valid bits of gw_host. */
typedef enum gw_host_field {
    GW_HOST_MEM_TOTAL = 0,
    GW_HOST_MEM_AVAILABLE,
    GW_HOST_SWAP_TOTAL,
    GW_HOST_SWAP_FREE,
    GW_HOST_CPU_COUNT,
    GW_HOST_LOADAVG,
    GW_HOST_CPU_UTIL,
    GW_HOST_FIELD_COUNT
} gw_host_field;

/* The host's CPU and RAM: the whole picture on a CPU-only machine. */
typedef struct gw_host {
    uint32_t valid; /* 1 << gw_host_field */
    char hostname[64];
    uint64_t mem_total, mem_available, swap_total, swap_free; /* bytes */
    uint32_t cpu_count;
    double load1, load5, load15;
    double cpu_util; /* percent over the interval since the previous sample */
} gw_host;

static inline bool gw_host_has(const gw_host *h, gw_host_field f)
{
    return (h->valid >> f) & 1u;
}

typedef enum gw_source_state {
    GW_SOURCE_OK = 0,      /* opened and answered */
    GW_SOURCE_UNAVAILABLE, /* not present here (no library, no driver, no device) */
    GW_SOURCE_FAILED,      /* present but failing; see error/message */
    GW_SOURCE_DEGRADED,    /* answering, with some devices lost/stale/skipped */
} gw_source_state;

/* "ok", "unavailable", "failed", "degraded"; static. */
GW_API const char *gw_source_state_name(gw_source_state s);

/* What one backend did in this snapshot. */
typedef struct gw_source_status {
    char name[16]; /* "nvml", "host", ... */
    gw_source_state state;
    int error;          /* gw_status of the last failure, GW_OK when none */
    char message[384];  /* plain sentence naming the reason / notes */
    char driver_version[32];
    char library_version[32];
    uint32_t device_count;
    uint64_t calls;     /* library/driver calls made for this snapshot */
} gw_source_status;

/* An immutable picture of the host at one moment. */
typedef struct gw_snapshot {
    uint64_t seq;      /* increases by one per snapshot of a monitor */
    int64_t taken_ns;  /* CLOCK_REALTIME when sampling started */
    int64_t duration_ns; /* how long sampling took */
    size_t n_devices;
    gw_device *devices;
    size_t n_processes;
    gw_process *processes; /* sorted by device_index, then pid */
    size_t n_sources;
    gw_source_status *sources;
    gw_host host;
    bool cpu_only;              /* no GPU source answered with a device */
    char cpu_only_reason[512];  /* one plain line, e.g. "NVML: driver not loaded" */
    int refcount__;             /* private: use acquire/release */
} gw_snapshot;

/* Takes one more reference; returns s. Thread-safe. */
GW_API gw_snapshot *gw_snapshot_acquire(gw_snapshot *s);

/* Drops a reference; frees the snapshot when it was the last. NULL is a no-op. */
GW_API void gw_snapshot_release(gw_snapshot *s);

/* --------------------------------------------------------------- monitor */

/* Where and how to read. Strings are borrowed for the call to gw_monitor_open
 * and copied. NULL fields take the environment or the default. */
typedef struct gw_config {
    const char *nvml_library; /* $GPUWATCH_NVML_LIBRARY, else "libnvidia-ml.so.1" */
    const char *proc_root;    /* $GPUWATCH_PROC_ROOT, else "/proc" */
    const char *sys_root;     /* $GPUWATCH_SYS_ROOT, else "/sys" */
    const char *pods_dir;     /* $GPUWATCH_PODS_DIR, else "/var/log/pods" (pod names) */
    const char *sources;      /* comma list of backends to use; NULL: all */
    unsigned call_timeout_ms; /* deadline for a fallback CLI; 0: $GPUWATCH_CALL_TIMEOUT_MS, else 5000 */
    bool processes;           /* read per-process use (default true) */
    bool process_host_stats;  /* and each process's CPU % and resident memory from
                                 /proc, a read per process per sample (default true) */
    bool skip_host;           /* without a sources list: leave the host source out
                                 (its CPU and RAM figures; default false) */
} gw_config;

/* Fills defaults (all NULL, processes and their host figures on). */
GW_API void gw_config_init(gw_config *cfg);

typedef struct gw_monitor gw_monitor;

/* Opens every configured source. A source that cannot open is not an error:
 * it is recorded (and retried with back-off on later samples) and shows up in
 * the snapshot's sources[] with its reason. Fails only for bad configuration
 * (GW_EINVAL) or memory (GW_ENOMEM). Caller closes *out with gw_monitor_close. */
GW_API int gw_monitor_open(gw_monitor **out, const gw_config *cfg, gw_error *err);

/* Reads every source once and returns a new snapshot with one reference, which
 * the caller releases. On failure (GW_ENOMEM only) *out is NULL. Not
 * thread-safe on the same monitor. */
GW_API int gw_monitor_sample(gw_monitor *m, gw_snapshot **out, gw_error *err);

/* The name of the source gw_monitor_sample is reading at this moment (static
 * string), or NULL between sources. The one call that may run on another
 * thread while a sample is in progress: it lets a caller that gave up waiting
 * name the source that hangs. */
GW_API const char *gw_monitor_busy_source(gw_monitor *m);

/* Closes every source and frees the monitor. NULL is a no-op. */
GW_API void gw_monitor_close(gw_monitor *m);

#ifdef __cplusplus
}
#endif
#endif /* GPUWATCH_H */
