/* gpuwatch-1.0.h — FROZEN copy of include/gpuwatch.h as libgpuwatch 1.0 shipped it
 * (tests/lib/abi/old_client.c is built against it). Never edit. Originally:
 * gpuwatch.h — the public API of libgpuwatch (installed; docs/library.md).
 *
 * What it owns: the error codes, the names of metrics and states, the monitor
 * that opens the vendor sources and takes snapshots, read-only access to a
 * snapshot through opaque handles, and what an ML job calls inside its own
 * process: free memory per device, bf16 support, a memory-pressure watcher,
 * an adaptive batch-size finder and job progress reports.
 *
 * ABI rules (the library's SONAME is libgpuwatch.so.1, symbols versioned
 * GPUWATCH_1):
 *  - gw_snapshot, gw_device, gw_process, gw_source_status, gw_monitor and
 *    gw_watcher are opaque: their layouts may change in any release.
 *  - Enums and GW_ERROR_LIST only ever gain values at the end; an accessor
 *    given a value it does not know answers GW_EINVAL / NULL.
 *  - The structs a caller allocates (gw_config, gw_batch_options,
 *    gw_batch_result) start with their own size, which the _init macros set
 *    from the caller's header: a library newer than the caller reads and
 *    writes only that many bytes and takes defaults for the rest.
 *  - Structs the library hands to a callback (gw_pressure_event) only grow
 *    at the end.
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

/* The library's version ("0.1.0"); static. May differ from
 * GW_VERSION_STRING, the version of the header a caller was built with. */
GW_API const char *gw_version(void);

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

/* Opaque handles (layouts in src/core/model.h, never part of the ABI). */
typedef struct gw_snapshot gw_snapshot;           /* one immutable picture */
typedef struct gw_device gw_device;               /* a device in a snapshot */
typedef struct gw_process gw_process;             /* a process in a snapshot */
typedef struct gw_source_status gw_source_status; /* a source in a snapshot */



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


typedef enum gw_source_state {
    GW_SOURCE_OK = 0,      /* opened and answered */
    GW_SOURCE_UNAVAILABLE, /* not present here (no library, no driver, no device) */
    GW_SOURCE_FAILED,      /* present but failing; see error/message */
    GW_SOURCE_DEGRADED,    /* answering, with some devices lost/stale/skipped */
} gw_source_state;

/* "ok", "unavailable", "failed", "degraded"; static. */
GW_API const char *gw_source_state_name(gw_source_state s);



/* Takes one more reference; returns s. Thread-safe. */
GW_API gw_snapshot *gw_snapshot_acquire(gw_snapshot *s);

/* Drops a reference; frees the snapshot when it was the last. NULL is a no-op. */
GW_API void gw_snapshot_release(gw_snapshot *s);

/* Snapshot accessors. Pointers returned are borrowed from the snapshot and
 * valid while the caller holds a reference to it; an index out of range
 * gives NULL. None of them allocates or fails otherwise. */
GW_API uint64_t gw_snapshot_seq(const gw_snapshot *s);
GW_API int64_t gw_snapshot_taken_ns(const gw_snapshot *s); /* CLOCK_REALTIME */
GW_API bool gw_snapshot_cpu_only(const gw_snapshot *s);
/* Why no GPU was found (one line; "" when one was). */
GW_API const char *gw_snapshot_cpu_only_reason(const gw_snapshot *s);
GW_API size_t gw_snapshot_device_count(const gw_snapshot *s);
GW_API const gw_device *gw_snapshot_device(const gw_snapshot *s, size_t i);
GW_API size_t gw_snapshot_process_count(const gw_snapshot *s);
GW_API const gw_process *gw_snapshot_process(const gw_snapshot *s, size_t i);
GW_API size_t gw_snapshot_source_count(const gw_snapshot *s);
GW_API const gw_source_status *gw_snapshot_source(const gw_snapshot *s, size_t i);
/* A host figure (units of invariant 1; GW_HOST_LOADAVG is the 1-minute
 * load): GW_OK, GW_ENOENT when not read, GW_EINVAL for an unknown field. */
GW_API int gw_snapshot_host_value(const gw_snapshot *s, gw_host_field f, double *out);
GW_API const char *gw_snapshot_hostname(const gw_snapshot *s);

/* Text fields of a device: "" when not available, NULL for an unknown field. */
typedef enum gw_device_text {
    GW_DEVICE_UUID = 0,     /* "GPU-...", the AMD unique_id, ... */
    GW_DEVICE_NAME,
    GW_DEVICE_PCI_BUS_ID,
    GW_DEVICE_SERIAL,
    GW_DEVICE_DRIVER_VERSION,
    GW_DEVICE_SOURCE,       /* "nvml", "amdgpu", "intel", "nvidia-smi", ... */
    GW_DEVICE_ARCH,         /* "sm_80", AMD gfx target "gfx90a", Intel "xe-hpg" */
    GW_DEVICE_STATE_REASON, /* why the state is not ok */
    GW_DEVICE_MEMORY_API,   /* how memory is read: "v2", "sysfs", "fdinfo", ... */
} gw_device_text;

GW_API const char *gw_device_text_of(const gw_device *d, gw_device_text f);
GW_API uint32_t gw_device_index(const gw_device *d); /* position in the snapshot */
GW_API gw_vendor gw_device_vendor(const gw_device *d);
GW_API gw_device_state gw_device_state_of(const gw_device *d);
/* One metric of the device's sample in the units of invariant 1:
 * GW_OK; GW_ENOENT when the device did not give it (its valid bit is clear);
 * GW_EINVAL for a metric this library does not know. */
GW_API int gw_device_metric(const gw_device *d, gw_metric m, double *out);
/* One static fact (max clocks, power limits, thresholds, ...), same rules. */
GW_API int gw_device_info_value(const gw_device *d, gw_info_field f, double *out);
/* CUDA compute capability: GW_OK, or GW_ENOENT (not NVIDIA, or not read). */
GW_API int gw_device_compute_capability(const gw_device *d, int *major, int *minor);

GW_API uint32_t gw_process_pid(const gw_process *p);
GW_API uint32_t gw_process_device_index(const gw_process *p);
GW_API gw_process_kind gw_process_kind_of(const gw_process *p);
/* A numeric field (GW_PROC_GPU_MEMORY, _GTT_MEMORY, _HOST_MEMORY in bytes;
 * the utilisations and _CPU_UTIL in percent): same rules as
 * gw_device_metric. */
GW_API int gw_process_value(const gw_process *p, gw_process_field f, double *out);
/* A text field (GW_PROC_NAME, _USER, _CMDLINE, _MODEL): NULL when not read
 * or not a text field. */
GW_API const char *gw_process_text(const gw_process *p, gw_process_field f);

GW_API const char *gw_source_name(const gw_source_status *st);
GW_API gw_source_state gw_source_state_of(const gw_source_status *st);
GW_API const char *gw_source_message(const gw_source_status *st);

/* --------------------------------------------------------------- monitor */

/* Where and how to read. Strings are borrowed for the call to gw_monitor_open
 * and copied. NULL fields take the environment or the default. Set up with
 * gw_config_init (which records the caller's size), then change fields. */
typedef struct gw_config {
    uint32_t size;            /* sizeof (gw_config) as the caller knows it */
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

/* Fills defaults (all NULL, processes and their host figures on) into the
 * first `size` bytes of cfg and records size. Use the macro. */
GW_API void gw_config_init_size(gw_config *cfg, size_t size);
#define gw_config_init(cfg) gw_config_init_size((cfg), sizeof *(cfg))

typedef struct gw_monitor gw_monitor;

/* Opens every configured source (cfg NULL: every default). A source that cannot open is not an error:
 * it is recorded (and retried with back-off on later samples) and shows up in
 * the snapshot's sources[] with its reason. Fails only for bad configuration
 * (GW_EINVAL, also for a cfg->size this library cannot read) or memory
 * (GW_ENOMEM). Caller closes *out with gw_monitor_close. */
GW_API int gw_monitor_open(gw_monitor **out, const gw_config *cfg, gw_error *err);

/* Reads every source once and returns a new snapshot with one reference, which
 * the caller releases; the monitor keeps it as its latest (gw_monitor_latest).
 * On failure (GW_ENOMEM only) *out is NULL. Thread-safe: samples of one
 * monitor are serialised (a watcher thread and the caller may both sample). */
GW_API int gw_monitor_sample(gw_monitor *m, gw_snapshot **out, gw_error *err);

/* The name of the source gw_monitor_sample is reading at this moment (static
 * string), or NULL between sources. The one call that may run on another
 * thread while a sample is in progress: it lets a caller that gave up waiting
 * name the source that hangs. */
GW_API const char *gw_monitor_busy_source(gw_monitor *m);

/* The newest snapshot gw_monitor_sample took, with one more reference (the
 * caller releases it), or NULL before the first. Thread-safe, no I/O. */
GW_API gw_snapshot *gw_monitor_latest(gw_monitor *m);

/* Closes every source and frees the monitor; stop its watchers first. NULL
 * is a no-op. */
GW_API void gw_monitor_close(gw_monitor *m);

/* ------------------------------------------------------------ for ML jobs */

typedef enum gw_read_mode {
    GW_READ_CACHED = 0, /* from the monitor's latest snapshot (sampled once
                           first when there is none): no I/O, ~100 ns */
    GW_READ_FRESH = 1,  /* a new reading of this one device's memory (one
                           NVML call or two sysfs reads; a whole sample for
                           sources without a single-device read) */
} gw_read_mode;

/* Free and total memory of device `device` (its snapshot index) in bytes,
 * like cudaMemGetInfo / torch.cuda.mem_get_info but for every vendor and
 * without a CUDA context. free_bytes or total_bytes may be NULL. Errors:
 * GW_ENODEV (no such device; the message says how many there are),
 * GW_ELOST (the device is lost / in error), GW_ENOENT (the source gives no
 * memory figure for it), GW_ENOMEM. Thread-safe. */
GW_API int gw_mem_get_info(gw_monitor *m, uint32_t device, gw_read_mode mode,
                           uint64_t *free_bytes, uint64_t *total_bytes, gw_error *err);

/* The monitor's memory table: free and total bytes of every device as of
 * the latest sample, readable without a call (what the Python binding's
 * cached mem_get_info reads). An array of *n_words uint64_t that lives as
 * long as the monitor, layout version 1:
 *   [0] seq: odd while a sample is being written, even when stable
 *   [1] layout version (1)    [2] number of devices in the table
 *   [3 + 3i], [4 + 3i], [5 + 3i]: device i's free bytes, total bytes, and
 *        flags (bit 0: the figures are valid; clear when the device is
 *        lost, in error or gives no memory figure)
 * Read it as a seqlock: load [0] (acquire), load the words you need
 * (acquire), load [0] again; retry when the two differ or are odd. The
 * writer stores every word with release ordering. Holds at most GW_MEMORY_TABLE_DEVICES
 * devices; gw_mem_get_info answers for the rest. Never NULL. */
#define GW_MEMORY_TABLE_DEVICES 256
GW_API const uint64_t *gw_monitor_memory_table(gw_monitor *m, size_t *n_words);

/* Whether the device computes in bfloat16 natively: NVIDIA compute
 * capability >= 8.0; AMD CDNA2 / CDNA3 (gfx90a, gfx94x, gfx95x) and RDNA3+
 * (gfx11xx, gfx12xx); Intel Xe-HPG, Xe-HPC and Xe2. 1 yes, 0 no, -1 not
 * known (what is missing, e.g. no compute capability or an unknown gfx
 * target, is in reason). reason (may be NULL) receives one line saying why,
 * in both cases. Reads the latest snapshot (sampling once when none). */
GW_API int gw_device_supports_bf16(gw_monitor *m, uint32_t device, char *reason,
                                   size_t reason_cap);

/* Memory-pressure levels of a watcher. */
typedef enum gw_pressure {
    GW_PRESSURE_NORMAL = 0,
    GW_PRESSURE_WARNING,
    GW_PRESSURE_CRITICAL,
} gw_pressure;

/* "normal", "warning", "critical"; static. */
GW_API const char *gw_pressure_name(gw_pressure p);

/* What a watcher callback receives; valid for the call only. Only grows at
 * the end. */
typedef struct gw_pressure_event {
    uint32_t device;     /* snapshot index */
    const char *uuid;    /* "" when the device has none */
    gw_pressure level;   /* the new level */
    gw_pressure previous;
    uint64_t used_bytes, total_bytes;
    double ratio;        /* used / total */
    int64_t at_ns;       /* CLOCK_REALTIME of the sample */
} gw_pressure_event;

typedef void (*gw_pressure_fn)(const gw_pressure_event *ev, void *user);

typedef struct gw_watcher gw_watcher;

/* Starts a thread that samples m every interval_ms (>= 10) and calls fn
 * (on that thread) each time a device's level changes. A level is entered
 * when used/total reaches warn (critical), and left only when the ratio
 * falls below the threshold minus hysteresis, so a device hovering at a
 * threshold calls once. 0 < warn <= critical <= 1, 0 <= hysteresis < warn.
 * Levels start normal: a device already under pressure calls at the first
 * sample. fn must not stop its own watcher. Errors: GW_EINVAL (naming the
 * bad value), GW_ENOMEM, GW_EIO (no thread). */
GW_API int gw_watcher_start(gw_watcher **out, gw_monitor *m, unsigned interval_ms, double warn,
                            double critical, double hysteresis, gw_pressure_fn fn, void *user,
                            gw_error *err);

/* The current level of a device (GW_PRESSURE_NORMAL before its first sample
 * or for an unknown index). Thread-safe. */
GW_API gw_pressure gw_watcher_level(gw_watcher *w, uint32_t device);

/* How many samples the watcher has taken. Thread-safe. */
GW_API uint64_t gw_watcher_samples(gw_watcher *w);

/* Stops the thread (waiting for a callback in progress) and frees w. NULL is
 * a no-op. */
GW_API void gw_watcher_stop(gw_watcher *w);

/* What a batch-size trial answers. */
typedef enum gw_trial {
    GW_TRIAL_OK = 0,    /* the batch ran */
    GW_TRIAL_OOM = 1,   /* out of device memory: smaller batches are tried */
    GW_TRIAL_ERROR = 2, /* any other failure: the search stops with GW_EIO */
} gw_trial;

typedef gw_trial (*gw_batch_try_fn)(uint64_t batch, void *user);
typedef void (*gw_batch_cleanup_fn)(void *user);

/* Options of gw_find_batch_size; set up with gw_batch_options_init. */
typedef struct gw_batch_options {
    uint32_t size;             /* sizeof as the caller knows it */
    uint64_t lo, hi;           /* the range; lo must fit (default 1 .. 65536) */
    gw_batch_try_fn try_fn;    /* runs one step at a batch size (required) */
    gw_batch_cleanup_fn cleanup; /* after every trial, e.g. empty a framework's
                                    cache; may be NULL */
    void *user;                /* passed to both */
    double margin;             /* fraction kept back from the largest batch
                                  that ran (default 0.05) */
    gw_monitor *monitor;       /* memory is measured on it; NULL: no model */
    int32_t device;            /* snapshot index measured; -1: none */
    bool use_model;            /* fit bytes per sample from the trials and
                                  jump near the limit (default true) */
    uint32_t max_trials;       /* default 64 */
    const char *cache_key;     /* NULL: no cache; else e.g. "esm2-650M/seq1024" */
    const char *dtype;         /* part of the cache key ("bf16"); NULL: "" */
    const char *cache_path;    /* NULL: $GPUWATCH_CACHE_DIR, else
                                  $XDG_CACHE_HOME/gpuwatch, else
                                  ~/.cache/gpuwatch; file batch-sizes.json */
    bool refresh;              /* search even when a cached answer exists */
} gw_batch_options;

GW_API void gw_batch_options_init_size(gw_batch_options *o, size_t size);
#define gw_batch_options_init(o) gw_batch_options_init_size((o), sizeof *(o))

/* How gw_find_batch_size measured the memory its model is fitted to. */
typedef enum gw_batch_measured {
    GW_BATCH_MEASURED_NONE = 0, /* nothing (no monitor or device): no model */
    GW_BATCH_MEASURED_DEVICE,   /* the device's used memory (a neighbour's moves in it) */
    GW_BATCH_MEASURED_PROCESS,  /* this process's own memory on the device */
} gw_batch_measured;

typedef struct gw_batch_result {
    uint32_t size;           /* set by the caller: sizeof (gw_batch_result) */
    uint64_t batch;          /* the answer: largest_ok less the margin, >= lo */
    uint64_t largest_ok;     /* the largest batch that ran */
    uint64_t smallest_oom;   /* the smallest that did not; 0: none hit */
    uint32_t trials, ooms;   /* calls of try_fn, and how many were OOM */
    bool from_cache;         /* answered from the cache, no trial run */
    double bytes_per_sample; /* the fitted model; 0 when none */
    uint64_t fixed_bytes;    /* the model's memory at batch 0 */
    char note[256];          /* e.g. why the cache was not used or written */
    gw_batch_measured measured; /* what the model was fitted to */
} gw_batch_result;

/* Finds the largest batch size in [lo, hi] that runs: a trial at lo, then
 * (with a memory model) a jump to the predicted limit, else doubling, then
 * a search between the largest batch that ran and the smallest that did
 * not, guided by the model and falling back to bisection; cleanup runs after
 * every trial so an OOM is recovered from. The answer is cached per
 * (cache_key, device UUID, dtype) and reused while the device has at least
 * the free memory it had when it was found. Errors: GW_EINVAL (bad
 * options), GW_ERANGE (lo itself is out of memory), GW_EIO (try_fn answered
 * GW_TRIAL_ERROR or something else), GW_ENOMEM; res holds the trials made.
 * A cache that cannot be read or written is a note, never an error, and a
 * cache file that is not ours is never overwritten. */
GW_API int gw_find_batch_size(const gw_batch_options *o, gw_batch_result *res, gw_error *err);

/* Reports a job's progress on one GPU (the protocol of docs/progress.md,
 * what `gpuwatch progress` sends): to $GPUWATCH_PROGRESS when set
 * ("http://HOST:PORT" or "dir:PATH"), else to the daemon at
 * $GPUWATCH_DAEMON when set, else into the per-user progress folder that
 * `gpuwatch top` reads. total 0: unknown; unit and message may be NULL.
 * Errors: GW_EINVAL (naming the bad field), GW_EIO (daemon or folder, with
 * the reason). */
GW_API int gw_progress_report(const char *job, const char *gpu, uint64_t done, uint64_t total,
                              const char *unit, const char *message, gw_error *err);

#ifdef __cplusplus
}
#endif
#endif /* GPUWATCH_H */
