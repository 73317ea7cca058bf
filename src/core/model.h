/* model.h — the data model inside gpuwatch: the layouts behind the public
 * header's opaque handles.
 *
 * Owns: gw_device_info, gw_sample, gw_device, gw_owner, gw_process, gw_host,
 * gw_source_status and gw_snapshot as every module reads and writes them.
 * None of these layouts is part of libgpuwatch's ABI: applications see
 * gw_snapshot, gw_device, gw_process and gw_source_status only as opaque
 * handles and read them through the accessors of include/gpuwatch.h
 * (src/lib/access.c), so a field appended here never breaks a linked caller.
 * Never installed.
 *
 * Invariants: those of include/gpuwatch.h (units, valid bits, immutable
 * snapshots) hold for every struct here.
 */
#ifndef GW_CORE_MODEL_H
#define GW_CORE_MODEL_H

#include "gpuwatch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    char arch[16];            /* "sm_80", "gfx90a", "xe-hpg"; "" unknown (lib/bf16.c reads it) */
    uint64_t valid;           /* 1 << gw_info_field */
    uint64_t memory_total;    /* bytes */
    int cc_major, cc_minor;   /* CUDA compute capability */
    uint32_t max_clock_sm_mhz, max_clock_graphics_mhz, max_clock_mem_mhz;
    uint32_t power_limit_min_mw, power_limit_max_mw, power_limit_default_mw;
    int32_t temp_shutdown_mc, temp_slowdown_mc, temp_mem_max_mc, temp_gpu_max_mc;
    uint32_t pcie_max_gen, pcie_max_width;
    /* MIG (NVIDIA, docs/mig.md): this device is a MIG instance of the GPU
     * at index mig_parent of the same snapshot (which comes before it);
     * what a job sees as its GPU with CUDA_VISIBLE_DEVICES=<its uuid>. */
    bool mig;
    uint32_t mig_parent;
    uint32_t mig_gpu_instance, mig_compute_instance; /* NVML's GI / CI ids */
    char mig_profile[24];        /* "3g.40gb" (from the name NVML gives it); "" unknown */
    uint32_t mig_sm_count;       /* streaming multiprocessors; 0: not known */
    uint32_t mig_gi_slices, mig_ci_slices; /* slice counts; 0: not known */
} gw_device_info;

static inline bool gw_info_has(const gw_device_info *i, gw_info_field f)
{
    return (i->valid >> f) & 1u;
}

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
    uint32_t mig_mode;    /* 0 off, 1 on */
    uint32_t mig_pending; /* after the next reset; valid with GW_METRIC_MIG_MODE */
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
struct gw_device {
    gw_device_info info;
    gw_sample sample;
    gw_device_state state;
    char state_reason[160]; /* why not ok; empty when ok */
    int64_t sampled_at_ns;  /* CLOCK_REALTIME of the sample */
};

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
struct gw_process {
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
};

static inline bool gw_process_has(const gw_process *p, gw_process_field f)
{
    return (p->valid >> f) & 1u;
}

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

/* What one backend did in this snapshot. */
struct gw_source_status {
    char name[16]; /* "nvml", "host", ... */
    gw_source_state state;
    int error;          /* gw_status of the last failure, GW_OK when none */
    char message[384];  /* plain sentence naming the reason / notes */
    char driver_version[32];
    char library_version[32];
    uint32_t device_count;
    uint64_t calls;     /* library/driver calls made for this snapshot */
};

/* An immutable picture of the host at one moment. */
struct gw_snapshot {
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
};

/* The GPU a MIG device belongs to; NULL for a whole GPU, or when its GPU
 * is not in s (a view of some devices, as report --id makes). */
static inline const gw_device *gw__device_mig_parent(const gw_snapshot *s, const gw_device *d)
{
    if (!d->info.mig)
        return NULL;
    for (size_t i = 0; i < s->n_devices; i++)
        if (!s->devices[i].info.mig && s->devices[i].info.index == d->info.mig_parent)
            return &s->devices[i];
    return NULL;
}

/* Whole GPUs in s: its devices less the MIG devices (whose memory and
 * count belong to their GPU). */
static inline size_t gw__snapshot_gpu_count(const gw_snapshot *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_devices; i++)
        n += !s->devices[i].info.mig;
    return n;
}

/* A sample's free and total memory: free is the source's free figure, else
 * total - used (never below 0). false when the sample has no total or
 * neither free nor used. One rule for gw_mem_get_info and the memory
 * table. */
static inline bool gw__sample_free_total(const gw_sample *x, uint64_t *freeb, uint64_t *total)
{
    if (!gw_sample_has(x, GW_METRIC_MEM_TOTAL) ||
        (!gw_sample_has(x, GW_METRIC_MEM_FREE) && !gw_sample_has(x, GW_METRIC_MEM_USED)))
        return false;
    *freeb = gw_sample_has(x, GW_METRIC_MEM_FREE) ? x->mem_free
             : x->mem_used < x->mem_total         ? x->mem_total - x->mem_used
                                                  : 0;
    *total = x->mem_total;
    return true;
}

#endif
