/* fdinfo.h — per-process GPU use from DRM fdinfo (/proc/PID/fdinfo/FD), for
 * the amdgpu, i915 and xe drivers (gw__ tier).
 *
 * What it owns: one sweep object per backend (the amdgpu backend keeps one
 * filtered to amdgpu, the Intel backend one filtered to i915 + xe; there is
 * no global state, so two backends never share a cache). The object caches,
 * per pid, which descriptors are DRM descriptors, keeps the previous engine
 * counters per client for busy %, and after each sweep holds the usage per
 * (pid, pdev) and per pdev until the next sweep.
 *
 * How a DRM descriptor is recognised (fixtures and real machines alike):
 *  1. readlinkat(/proc/PID/fd/N) starts with "/dev/dri/" (a cheap prefix
 *     check; the target need not exist, which is the case on fixtures and in
 *     containers), then
 *  2. its fdinfo holds drm-* keys (drm-driver, drm-pdev, ...) or the amdgpu
 *     keys of kernels 5.14-5.18 ("pdev", "pasid", "vram mem"). A /dev/dri
 *     descriptor whose fdinfo has neither is counted as "no fdinfo keys": the
 *     kernel is older than 5.14, and the status message says so.
 *  A "/dev/kfd" descriptor marks the process as a compute (ROCm) process.
 *
 * Keeping the sweep cheap (nvtop#139/#238/#365): readdir(/proc) once per
 * sweep; a pid is recognised as the same process when the d_ino of its
 * /proc/PID entry is unchanged (procfs gives a new inode to a new process
 * with a recycled pid).
 * When the kernel's DRM client lists can be read (opts.debugfs_root; root
 * only, see drm_clients.h), they are read at the start of every sweep and,
 * when complete, only the processes they name are listed at once: new ones, and known ones
 * that just appeared in a list while no DRM descriptor of theirs is known.
 * Every other new process is treated like one there before the first sweep
 * (first listing spread over [rescan_min, rescan_max]), so a DRM file the
 * lists attribute to another process (an inherited or passed descriptor
 * whose opener exited, on kernels that do not update the owner) is still
 * found within rescan_max. Without the lists, every new pid is listed at
 * once. Either way, a known pid's fd
 * folder is listed again on a per-pid back-off (rescan_min, doubling to
 * rescan_max, reset when its DRM descriptors change, jittered so rescans
 * spread over time; processes already there at the first sweep are not
 * young and get their first rescan spread evenly over [rescan_min,
 * rescan_max]) — so a long-lived process that opens a GPU late is seen
 * within rescan_max. Between listings only the fdinfo of the pid's known DRM
 * descriptors of the wanted drivers is re-read, through descriptors held open
 * (pread at offset 0; up to max_held of them) — one system call each.
 *
 * Accounting rules:
 *  - memory per region class: amdgpu vram / i915 localN / xe vramN -> VRAM;
 *    amdgpu gtt / i915 system0 / xe gtt -> GTT; other regions (cpu, stolen,
 *    system on xe) are ignored. Value: drm-resident-<r>, else drm-memory-<r>,
 *    else drm-total-<r>; units none, KiB (kB), MiB, GiB.
 *  - a client is (drm-pdev, drm-client-id); the same client seen through
 *    several descriptors or processes counts once, for the lowest pid.
 *    Clients without an id (legacy amdgpu without pasid) are not merged.
 *  - busy % per engine = delta drm-engine ns / delta wall ns / capacity, or
 *    for xe delta drm-cycles / delta drm-total-cycles / capacity; it needs
 *    the client in the previous sweep, so the first sweep has none. A counter
 *    that went backwards makes that category invalid for the round (and is
 *    counted in stats). Categories: gfx (gfx+compute, render+compute,
 *    rcs+ccs), enc (amdgpu enc*, Intel video/vcs), dec (amdgpu dec*, jpeg,
 *    Intel video/vcs: Intel's video engine does both, so it counts in both).
 *    Each category is clamped to 0..100 per client, per process and per
 *    device.
 */
#ifndef GW_BACKENDS_FDINFO_H
#define GW_BACKENDS_FDINFO_H

#include "backends/backend.h"
#include "backends/procinfo.h"
#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Driver bits (a mask selects which clients a sweep keeps). */
#define GW__DRM_AMDGPU 1u
#define GW__DRM_I915 2u
#define GW__DRM_XE 4u

#define GW__FDINFO_MAX_ENGINES 16
#define GW__FDINFO_MAX_REGIONS 8

/* Parsed engine / region entries of one fdinfo. */
#define GW__ENG_NS 1u
#define GW__ENG_CYCLES 2u
#define GW__ENG_TOTAL_CYCLES 4u
typedef struct gw__fdinfo_engine {
    char name[24];
    uint32_t flags; /* GW__ENG_* */
    uint32_t capacity; /* >= 1 */
    uint64_t ns, cycles, total_cycles;
} gw__fdinfo_engine;

#define GW__REG_TOTAL 1u
#define GW__REG_RESIDENT 2u
#define GW__REG_MEMORY 4u
typedef struct gw__fdinfo_region {
    char name[24];
    uint32_t flags; /* GW__REG_* */
    uint64_t total, resident, memory; /* bytes */
} gw__fdinfo_region;

/* One fdinfo file, parsed. */
typedef struct gw__fdinfo_client {
    unsigned driver;      /* GW__DRM_* bit; 0 for another driver */
    char driver_name[16]; /* drm-driver value ("amdgpu" for legacy keys) */
    bool has_keys;        /* drm-* keys or legacy amdgpu keys present */
    bool legacy;          /* amdgpu keys of kernels 5.14-5.18 */
    bool has_pdev, has_id;
    char pdev[16];        /* normalised "0000:03:00.0" */
    uint64_t client_id;   /* drm-client-id (legacy: pasid) */
    uint32_t n_engines, n_regions;
    gw__fdinfo_engine engines[GW__FDINFO_MAX_ENGINES];
    gw__fdinfo_region regions[GW__FDINFO_MAX_REGIONS];
} gw__fdinfo_client;

/* Parses fdinfo text (len bytes, need not be NUL-terminated) into *out.
 * Returns GW_OK when it holds DRM keys, GW_ENOENT when it holds none (not a
 * DRM descriptor, or a kernel without DRM fdinfo). Never reads past len;
 * malformed lines are skipped. */
int gw__fdinfo_parse(const char *text, size_t len, gw__fdinfo_client *out);

/* Memory of a parsed client by region class; false when it has none. */
bool gw__fdinfo_client_vram(const gw__fdinfo_client *c, uint64_t *bytes);
bool gw__fdinfo_client_gtt(const gw__fdinfo_client *c, uint64_t *bytes);

/* The VRAM (with gtt_too, VRAM + GTT: an APU's memory) process pid holds
 * on the device at PCI address pdev through drivers (GW__DRM_* bits), read
 * now from <proc_root>/<pid>/fd and fdinfo:
 * the sum over its DRM clients of that device, each client counted once
 * (a client reached through several descriptors). A client another process
 * shares (inherited) counts for this pid too: the question is what this
 * process holds. GW_OK with *bytes; GW_ENOENT when the process has no
 * client on that device; GW_EIO (err names why) when its descriptors
 * cannot be read (gone, another user's). The library's batch-size finder
 * asks it of its own process. */
int gw__fdinfo_pid_memory(const char *proc_root, uint32_t pid, const char *pdev, unsigned drivers,
                          bool gtt_too, uint64_t *bytes, gw_error *err);

typedef struct gw__fdinfo_opts {
    unsigned drivers;      /* GW__DRM_* mask of clients to keep */
    int64_t rescan_min_ns; /* 0: 1 s */
    int64_t rescan_max_ns; /* 0: 30 s */
    unsigned max_held;     /* fdinfo descriptors kept open; 0: 256 */
    const char *debugfs_root; /* NULL: no DRM client lists; else where
                                 debugfs is ("/sys/kernel/debug"); copied */
} gw__fdinfo_opts;

/* Valid bits of gw__fdinfo_usage. */
enum {
    GW__USE_VRAM = 0,
    GW__USE_GTT,
    GW__USE_GFX,
    GW__USE_ENC,
    GW__USE_DEC,
};

/* Use of one GPU (pdev) by one process, or (pid 0) by all its clients. */
typedef struct gw__fdinfo_usage {
    uint32_t pid;
    char pdev[16];
    unsigned driver;
    uint32_t valid; /* 1 << GW__USE_* */
    uint64_t vram_bytes, gtt_bytes;
    double gfx_pct, enc_pct, dec_pct;
    uint32_t clients;
    bool compute;  /* a compute engine was used, or /dev/kfd is open */
    bool graphics; /* a graphics / render engine was used */
} gw__fdinfo_usage;

typedef struct gw__fdinfo_stats {
    uint32_t pids;          /* processes in the proc root */
    uint32_t pids_listed;   /* fd folders listed this sweep */
    uint32_t client_lists;  /* DRM client lists read (0: not used) */
    uint32_t pids_hinted;   /* processes those lists name */
    uint32_t pids_unreadable; /* fd folders we may not read (not root) */
    uint32_t drm_fds;       /* /dev/dri descriptors known */
    uint32_t drm_fds_keys;  /* ... whose fdinfo has DRM keys (any driver) */
    uint32_t drm_fds_nokeys; /* ... whose fdinfo has none (old kernel) */
    uint32_t legacy_fds;    /* ... with pre-5.19 amdgpu keys */
    uint32_t clients;       /* unique clients of the wanted drivers */
    uint32_t no_pdev;       /* clients without drm-pdev (cannot be matched) */
    uint32_t backwards;     /* engine counters that went backwards */
    uint64_t syscalls;      /* system calls made by the sweep */
} gw__fdinfo_stats;

typedef struct gw__fdinfo gw__fdinfo;

/* Opens a sweep reading below proc_root (copied). opts NULL: all three
 * drivers and defaults. Errors: GW_ENOMEM; GW_ENOENT when proc_root cannot be
 * opened (message names it). On error *out is NULL. Caller closes with
 * gw__fdinfo_close. */
int gw__fdinfo_open(gw__fdinfo **out, const char *proc_root, const gw__fdinfo_opts *opts,
                    gw_error *err);

/* The sweep of a GPU backend: below cfg->proc_root, keeping the clients of
 * `drivers`, with the DRM client lists of <cfg->sys_root>/kernel/debug and
 * the default back-off. Returns GW_OK (*out set) or GW_ENOMEM; any other
 * failure (no proc root) also returns GW_OK with *out NULL and its message
 * in why (the backend then has no per-process use and says why). */
int gw__fdinfo_open_for_backend(gw__fdinfo **out, const gw__config *cfg, unsigned drivers,
                                char *why, size_t why_cap);

/* Sweeps /proc once; now_ns is the CLOCK_MONOTONIC time used for busy %
 * (a seam: tests pass fixed times). Replaces the previous results. Errors:
 * GW_ENOMEM (results are then empty, the cache stays consistent), GW_EIO when
 * the proc root cannot be read. */
int gw__fdinfo_sweep(gw__fdinfo *f, int64_t now_ns, gw_error *err);

/* Results of the last sweep, borrowed until the next sweep or close.
 * Per-process usages are sorted by pdev, then pid. */
size_t gw__fdinfo_usage_count(const gw__fdinfo *f);
const gw__fdinfo_usage *gw__fdinfo_usage_at(const gw__fdinfo *f, size_t i);

/* Appends one process per usage row whose pdev is the PCI address of one of
 * the n_devices devices at snapshot indexes first..first+n_devices-1 of c
 * (the calling backend's own), with every figure the row has (VRAM, GTT,
 * gfx/enc/dec busy) and its valid bit, and the name/user/cmdline from names
 * (whose round it begins). Rows of other devices are skipped. Stops quietly
 * when the collector is out of memory. */
void gw__fdinfo_add_processes(const gw__fdinfo *f, gw__procinfo *names, gw__collect *c,
                              size_t first, size_t n_devices);

/* Sum over every client of one pdev (pid 0); false when none was seen. */
bool gw__fdinfo_device_usage(const gw__fdinfo *f, const char *pdev, gw__fdinfo_usage *out);

/* Counters of the last sweep; borrowed. */
const gw__fdinfo_stats *gw__fdinfo_get_stats(const gw__fdinfo *f);

/* Writes one plain sentence about the last sweep for a source status
 * message ("" when there is nothing to say): no fdinfo keys on this kernel,
 * legacy keys, unreadable processes. Returns out. */
char *gw__fdinfo_describe(const gw__fdinfo *f, char *out, size_t cap);

/* Closes every held descriptor and frees the object. NULL is a no-op. */
void gw__fdinfo_close(gw__fdinfo *f);

#endif
