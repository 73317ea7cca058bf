/* fdinfo.c — see fdinfo.h for the strategy and the accounting rules.
 *
 * Layout:
 *  - pids: open-addressing table keyed by pid (linear probing, rebuilt
 *    without the entries not seen in a sweep). Each entry holds the d_ino of
 *    /proc/PID, its back-off schedule and its DRM descriptor slots.
 *  - recs: the fdinfo of every wanted-driver descriptor read in this sweep.
 *  - hist: the previous sweep's unique clients (sorted by pdev, id) with
 *    their engine counters and the sweep time, for busy %.
 *  - usage / dev: the results (per pid and pdev; per pdev).
 *
 * Invariants:
 *  1. n_pids <= cap_pids / 2; cap_pids is 0 or a power of two.
 *  2. held descriptors (slot.held >= 0) number n_held <= max_held.
 *  3. After gw__fdinfo_sweep returns, usage/dev describe that sweep only.
 */
#include "backends/fdinfo.h"
#include "backends/backend.h"
#include "backends/drm_clients.h"
#include "backends/procinfo.h"
#include "core/array.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FDS_PER_PID 256
#define FDINFO_BUF 8192
/* client records per sweep (and so usage rows): more is a runaway */
#define MAX_RECS 65536

/* ------------------------------------------------------------- parser */

static void copy_n(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) >= 24)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* Leading unsigned decimal of s; *rest points after it. */
static bool lead_u64(const char *s, uint64_t *out, const char **rest)
{
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        if (!gw__mul_u64(v, 10, &v) || !gw__add_u64(v, (uint64_t)(*s - '0'), &v))
            return false;
        s++;
    }
    *out = v;
    *rest = s;
    return true;
}

/* "N", "N KiB", "N kB", "N MiB", "N GiB" -> bytes. */
static bool parse_mem(const char *v, uint64_t *out)
{
    uint64_t n;
    const char *rest;
    if (!lead_u64(v, &n, &rest))
        return false;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    uint64_t mul;
    if (!*rest || strcmp(rest, "B") == 0)
        mul = 1;
    else if (strcmp(rest, "KiB") == 0 || strcmp(rest, "kB") == 0 || strcmp(rest, "KB") == 0)
        mul = 1024;
    else if (strcmp(rest, "MiB") == 0)
        mul = 1024 * 1024;
    else if (strcmp(rest, "GiB") == 0)
        mul = 1024ull * 1024 * 1024;
    else
        return false;
    return gw__mul_u64(n, mul, out);
}

/* "N ns" -> N. */
static bool parse_ns(const char *v, uint64_t *out)
{
    const char *rest;
    if (!lead_u64(v, out, &rest))
        return false;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return strcmp(rest, "ns") == 0;
}

static gw__fdinfo_engine *engine_slot(gw__fdinfo_client *c, const char *name)
{
    if (!valid_name(name))
        return NULL;
    for (uint32_t i = 0; i < c->n_engines; i++)
        if (strcmp(c->engines[i].name, name) == 0)
            return &c->engines[i];
    if (c->n_engines >= GW__FDINFO_MAX_ENGINES)
        return NULL;
    gw__fdinfo_engine *e = &c->engines[c->n_engines++];
    memset(e, 0, sizeof *e);
    gw__strlcpy(e->name, name, sizeof e->name);
    e->capacity = 1;
    return e;
}

static gw__fdinfo_region *region_slot(gw__fdinfo_client *c, const char *name)
{
    if (!valid_name(name))
        return NULL;
    for (uint32_t i = 0; i < c->n_regions; i++)
        if (strcmp(c->regions[i].name, name) == 0)
            return &c->regions[i];
    if (c->n_regions >= GW__FDINFO_MAX_REGIONS)
        return NULL;
    gw__fdinfo_region *r = &c->regions[c->n_regions++];
    memset(r, 0, sizeof *r);
    gw__strlcpy(r->name, name, sizeof r->name);
    return r;
}

static bool has_prefix(const char *s, const char *p, const char **rest)
{
    size_t n = strlen(p);
    if (strncmp(s, p, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

static unsigned driver_bit(const char *name)
{
    if (strcmp(name, "amdgpu") == 0)
        return GW__DRM_AMDGPU;
    if (strcmp(name, "i915") == 0)
        return GW__DRM_I915;
    if (strcmp(name, "xe") == 0)
        return GW__DRM_XE;
    return 0;
}

typedef struct parse_extra {
    bool has_pasid, has_driver;
    uint64_t pasid;
} parse_extra;

static void set_region(gw__fdinfo_client *c, const char *name, uint32_t flag, const char *v)
{
    uint64_t bytes;
    if (!parse_mem(v, &bytes))
        return;
    gw__fdinfo_region *r = region_slot(c, name);
    if (!r)
        return;
    r->flags |= flag;
    if (flag == GW__REG_TOTAL)
        r->total = bytes;
    else if (flag == GW__REG_RESIDENT)
        r->resident = bytes;
    else
        r->memory = bytes;
}

static void parse_kv(gw__fdinfo_client *c, parse_extra *x, const char *k, const char *v)
{
    const char *rest;
    uint64_t n;
    if (strncmp(k, "drm-", 4) == 0)
        c->has_keys = true;
    if (strcmp(k, "drm-driver") == 0) {
        if (valid_name(v)) {
            gw__strlcpy(c->driver_name, v, sizeof c->driver_name);
            c->driver = driver_bit(v);
            x->has_driver = true;
        }
    } else if (strcmp(k, "drm-pdev") == 0 || strcmp(k, "pdev") == 0) {
        if (k[0] == 'p') {
            c->legacy = true;
            c->has_keys = true;
        }
        c->has_pdev = gw__pci_bus_id_normalize(v, c->pdev, sizeof c->pdev);
    } else if (strcmp(k, "drm-client-id") == 0) {
        if (gw__parse_u64(v, &n)) {
            c->client_id = n;
            c->has_id = true;
        }
    } else if (strcmp(k, "pasid") == 0) {
        if (gw__parse_u64(v, &n)) {
            x->pasid = n;
            x->has_pasid = true;
        }
    } else if (has_prefix(k, "drm-engine-capacity-", &rest)) {
        gw__fdinfo_engine *e;
        if (gw__parse_u64(v, &n) && n > 0 && n <= 1024 && (e = engine_slot(c, rest)))
            e->capacity = (uint32_t)n;
    } else if (has_prefix(k, "drm-engine-", &rest)) {
        gw__fdinfo_engine *e;
        if (parse_ns(v, &n) && (e = engine_slot(c, rest))) {
            /* a name printed twice (amdgpu maps two IPs to "dec") adds up */
            if (!(e->flags & GW__ENG_NS) || !gw__add_u64(e->ns, n, &e->ns))
                e->ns = n;
            e->flags |= GW__ENG_NS;
        }
    } else if (has_prefix(k, "drm-total-cycles-", &rest)) {
        gw__fdinfo_engine *e;
        if (gw__parse_u64(v, &n) && (e = engine_slot(c, rest))) {
            e->total_cycles = n;
            e->flags |= GW__ENG_TOTAL_CYCLES;
        }
    } else if (has_prefix(k, "drm-cycles-", &rest)) {
        gw__fdinfo_engine *e;
        if (gw__parse_u64(v, &n) && (e = engine_slot(c, rest))) {
            e->cycles = n;
            e->flags |= GW__ENG_CYCLES;
        }
    } else if (has_prefix(k, "drm-total-", &rest)) {
        set_region(c, rest, GW__REG_TOTAL, v);
    } else if (has_prefix(k, "drm-resident-", &rest)) {
        set_region(c, rest, GW__REG_RESIDENT, v);
    } else if (has_prefix(k, "drm-memory-", &rest)) {
        set_region(c, rest, GW__REG_MEMORY, v);
    } else if (strcmp(k, "vram mem") == 0 || strcmp(k, "gtt mem") == 0) {
        c->legacy = true;
        c->has_keys = true;
        set_region(c, k[0] == 'v' ? "vram" : "gtt", GW__REG_MEMORY, v);
    }
}

int gw__fdinfo_parse(const char *text, size_t len, gw__fdinfo_client *c)
{
    memset(c, 0, sizeof *c);
    parse_extra x = {0};
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p && colon - p < 64) {
            char key[64], val[128];
            copy_n(key, sizeof key, p, (size_t)(colon - p));
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                ve--;
            if (ve - v < (long)sizeof val && memchr(p, '\0', (size_t)(le - p)) == NULL) {
                copy_n(val, sizeof val, v, (size_t)(ve - v));
                parse_kv(c, &x, key, val);
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (c->legacy && !x.has_driver) {
        c->driver = GW__DRM_AMDGPU;
        gw__strlcpy(c->driver_name, "amdgpu", sizeof c->driver_name);
    }
    if (!c->has_id && x.has_pasid && c->driver == GW__DRM_AMDGPU) {
        c->client_id = x.pasid;
        c->has_id = true;
    }
    return c->has_keys ? GW_OK : GW_ENOENT;
}

enum { CLASS_NONE = 0, CLASS_VRAM, CLASS_GTT };

static int region_class(unsigned driver, const char *name)
{
    const char *rest;
    switch (driver) {
    case GW__DRM_AMDGPU:
        return strcmp(name, "vram") == 0 ? CLASS_VRAM : strcmp(name, "gtt") == 0 ? CLASS_GTT
                                                                                  : CLASS_NONE;
    case GW__DRM_I915:
        if (has_prefix(name, "local", &rest) && *rest >= '0' && *rest <= '9')
            return CLASS_VRAM;
        if (has_prefix(name, "system", &rest) && *rest >= '0' && *rest <= '9')
            return CLASS_GTT;
        return CLASS_NONE;
    case GW__DRM_XE:
        if (has_prefix(name, "vram", &rest) && *rest >= '0' && *rest <= '9')
            return CLASS_VRAM;
        return strcmp(name, "gtt") == 0 ? CLASS_GTT : CLASS_NONE;
    }
    return CLASS_NONE;
}

static bool region_value(const gw__fdinfo_region *r, uint64_t *out)
{
    if (r->flags & GW__REG_RESIDENT)
        *out = r->resident;
    else if (r->flags & GW__REG_MEMORY)
        *out = r->memory;
    else if (r->flags & GW__REG_TOTAL)
        *out = r->total;
    else
        return false;
    return true;
}

static bool client_class_bytes(const gw__fdinfo_client *c, int cls, uint64_t *bytes)
{
    bool any = false;
    uint64_t sum = 0, v;
    for (uint32_t i = 0; i < c->n_regions; i++)
        if (region_class(c->driver, c->regions[i].name) == cls &&
            region_value(&c->regions[i], &v)) {
            if (!gw__add_u64(sum, v, &sum))
                sum = UINT64_MAX;
            any = true;
        }
    if (any)
        *bytes = sum;
    return any;
}

bool gw__fdinfo_client_vram(const gw__fdinfo_client *c, uint64_t *bytes)
{
    return client_class_bytes(c, CLASS_VRAM, bytes);
}

bool gw__fdinfo_client_gtt(const gw__fdinfo_client *c, uint64_t *bytes)
{
    return client_class_bytes(c, CLASS_GTT, bytes);
}

int gw__fdinfo_pid_memory(const char *proc_root, uint32_t pid, const char *pdev, unsigned drivers,
                          bool gtt_too, uint64_t *bytes, gw_error *err)
{
    char path[600], want[16];
    *bytes = 0;
    if (!gw__pci_bus_id_normalize(pdev, want, sizeof want))
        return gw__error_set(err, GW_EINVAL, "fdinfo: '%s' is not a PCI address", pdev);
    snprintf(path, sizeof path, "%s/%u/fd", proc_root, pid);
    DIR *dir = opendir(path);
    if (!dir)
        return gw__error_set(err, GW_EIO, "fdinfo: %s: %s", path, strerror(errno));
    uint64_t seen[64];
    size_t n_seen = 0;
    bool found = false;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        uint64_t fdn;
        char target[32], link[1000], text[4096];
        if (!gw__parse_u64(d->d_name, &fdn))
            continue;
        snprintf(link, sizeof link, "%s/%s", path, d->d_name);
        ssize_t tl = readlink(link, target, sizeof target - 1);
        if (tl <= 0)
            continue;
        target[tl] = '\0';
        if (strncmp(target, "/dev/dri/", 9) != 0)
            continue;
        snprintf(link, sizeof link, "%s/%u/fdinfo/%s", proc_root, pid, d->d_name);
        long len = gw__read_file(link, text, sizeof text);
        gw__fdinfo_client c;
        uint64_t v;
        if (len <= 0 || gw__fdinfo_parse(text, (size_t)len, &c) != GW_OK ||
            !(c.driver & drivers) || !c.has_pdev || strcmp(c.pdev, want) != 0)
            continue;
        bool dup = false;
        for (size_t i = 0; c.has_id && i < n_seen; i++)
            dup |= seen[i] == c.client_id;
        if (dup)
            continue;
        if (c.has_id && n_seen < sizeof seen / sizeof seen[0])
            seen[n_seen++] = c.client_id;
        found = true;
        if (gw__fdinfo_client_vram(&c, &v) && !gw__add_u64(*bytes, v, bytes))
            *bytes = UINT64_MAX;
        if (gtt_too && gw__fdinfo_client_gtt(&c, &v) && !gw__add_u64(*bytes, v, bytes))
            *bytes = UINT64_MAX;
    }
    closedir(dir);
    return found ? GW_OK
                 : gw__error_set(err, GW_ENOENT, "fdinfo: process %u has no client on %s", pid,
                                 want);
}

/* Engine categories. */
#define CAT_GFX 1u
#define CAT_ENC 2u
#define CAT_DEC 4u
#define KIND_COMPUTE 8u
#define KIND_GRAPHICS 16u

static unsigned engine_class(unsigned driver, const char *name)
{
    static const struct {
        unsigned driver;
        const char *name;
        unsigned bits;
    } table[] = {
        {GW__DRM_AMDGPU, "gfx", CAT_GFX | KIND_GRAPHICS},
        {GW__DRM_AMDGPU, "compute", CAT_GFX | KIND_COMPUTE},
        {GW__DRM_AMDGPU, "enc", CAT_ENC},
        {GW__DRM_AMDGPU, "enc_1", CAT_ENC},
        {GW__DRM_AMDGPU, "dec", CAT_DEC},
        {GW__DRM_AMDGPU, "dec_1", CAT_DEC},
        {GW__DRM_AMDGPU, "jpeg", CAT_DEC},
        {GW__DRM_I915, "render", CAT_GFX | KIND_GRAPHICS},
        {GW__DRM_I915, "compute", CAT_GFX | KIND_COMPUTE},
        {GW__DRM_I915, "video", CAT_ENC | CAT_DEC},
        {GW__DRM_XE, "rcs", CAT_GFX | KIND_GRAPHICS},
        {GW__DRM_XE, "ccs", CAT_GFX | KIND_COMPUTE},
        {GW__DRM_XE, "vcs", CAT_ENC | CAT_DEC},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(table); i++)
        if (table[i].driver == driver && strcmp(table[i].name, name) == 0)
            return table[i].bits;
    return 0;
}

/* ------------------------------------------------------------- sweep */

enum { SLOT_NEW = 0, SLOT_OURS, SLOT_OTHER, SLOT_NOKEYS };

typedef struct fd_slot {
    int32_t fd;
    uint8_t kind;
    bool legacy;
    int held; /* descriptor on PID/fdinfo/FD, or -1 */
} fd_slot;

typedef struct pid_ent {
    uint32_t pid; /* 0: empty */
    uint32_t seen_round;
    uint64_t ino;
    int64_t next_scan_ns, interval_ns;
    bool kfd, unreadable, listed;
    bool hinted; /* in the DRM client lists of the last sweep */
    uint32_t n_fds, cap_fds;
    fd_slot *fds;
} pid_ent;

typedef struct rec {
    uint32_t pid;
    bool kfd;
    gw__fdinfo_client c;
} rec;

typedef struct hist_ent {
    char pdev[16];
    uint64_t id;
    unsigned driver;
    uint32_t n_engines;
    gw__fdinfo_engine engines[GW__FDINFO_MAX_ENGINES];
} hist_ent;

struct gw__fdinfo {
    char root[512];
    char debugfs[512]; /* "" when client lists are not used */
    gw__drm_clients hint;
    int procfd;
    DIR *procdir;
    gw__fdinfo_opts opts;
    uint32_t round;
    pid_ent *pids;
    size_t cap_pids, n_pids;
    unsigned n_held;
    rec *recs;
    size_t n_recs, cap_recs;
    hist_ent *hist, *hist_next;
    size_t n_hist, n_hist_next, cap_hist, cap_hist_next;
    int64_t hist_at_ns;
    bool have_hist;
    bool have_swept; /* a sweep completed: pids seen after it are new */
    gw__fdinfo_usage *usage, *dev;
    size_t n_usage, cap_usage, n_dev, cap_dev;
    gw__fdinfo_stats stats;
    char *buf; /* FDINFO_BUF bytes */
};

int gw__fdinfo_open(gw__fdinfo **out, const char *proc_root, const gw__fdinfo_opts *opts,
                    gw_error *err)
{
    *out = NULL;
    gw__fdinfo *f = calloc(1, sizeof *f);
    if (!f || !(f->buf = malloc(FDINFO_BUF))) {
        free(f);
        return gw__error_set(err, GW_ENOMEM, "fdinfo: out of memory");
    }
    gw__strlcpy(f->root, proc_root ? proc_root : "/proc", sizeof f->root);
    if (opts) {
        f->opts = *opts;
        if (opts->debugfs_root && strlen(opts->debugfs_root) < sizeof f->debugfs)
            gw__strlcpy(f->debugfs, opts->debugfs_root, sizeof f->debugfs); /* else: none */
        f->opts.debugfs_root = NULL; /* borrowed: f->debugfs is the copy */
    } else
        f->opts.drivers = GW__DRM_AMDGPU | GW__DRM_I915 | GW__DRM_XE;
    if (f->opts.rescan_min_ns <= 0)
        f->opts.rescan_min_ns = 1000000000ll;
    if (f->opts.rescan_max_ns < f->opts.rescan_min_ns)
        f->opts.rescan_max_ns = f->opts.rescan_min_ns > 30000000000ll ? f->opts.rescan_min_ns
                                                                       : 30000000000ll;
    if (f->opts.max_held == 0)
        f->opts.max_held = 256;
    f->procfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->procfd >= 0) {
        int dupfd = fcntl(f->procfd, F_DUPFD_CLOEXEC, 0);
        f->procdir = dupfd >= 0 ? fdopendir(dupfd) : NULL;
        if (!f->procdir && dupfd >= 0)
            close(dupfd);
    }
    if (!f->procdir) {
        int e = errno;
        gw__fdinfo_close(f);
        return gw__error_set(err, GW_ENOENT, "fdinfo: cannot open %s: %s",
                             proc_root ? proc_root : "/proc", strerror(e));
    }
    *out = f;
    return GW_OK;
}

int gw__fdinfo_open_for_backend(gw__fdinfo **out, const gw__config *cfg, unsigned drivers,
                                char *why, size_t why_cap)
{
    char debugfs[sizeof cfg->sys_root + 16];
    snprintf(debugfs, sizeof debugfs, "%s/kernel/debug", cfg->sys_root);
    gw__fdinfo_opts o = {.drivers = drivers, .debugfs_root = debugfs};
    gw_error fe;
    gw_error_clear(&fe);
    int rc = gw__fdinfo_open(out, cfg->proc_root, &o, &fe);
    if (rc == GW_ENOMEM)
        return rc;
    if (rc != GW_OK)
        gw__strlcpy(why, fe.message, why_cap);
    return GW_OK;
}

static void slot_release(gw__fdinfo *f, fd_slot *s)
{
    if (s->held >= 0) {
        close(s->held);
        s->held = -1;
        f->n_held--;
    }
}

static void pid_release(gw__fdinfo *f, pid_ent *p)
{
    for (uint32_t i = 0; i < p->n_fds; i++)
        slot_release(f, &p->fds[i]);
    free(p->fds);
    p->fds = NULL;
    p->n_fds = p->cap_fds = 0;
}

void gw__fdinfo_close(gw__fdinfo *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->cap_pids; i++)
        if (f->pids[i].pid)
            pid_release(f, &f->pids[i]);
    free(f->pids);
    if (f->procdir)
        closedir(f->procdir);
    if (f->procfd >= 0)
        close(f->procfd);
    free(f->recs);
    free(f->hist);
    free(f->hist_next);
    free(f->usage);
    free(f->dev);
    free(f->buf);
    gw__drm_clients_release(&f->hint);
    free(f);
}

static size_t slot_of(uint32_t pid, size_t cap) { return (pid * 2654435761u) & (cap - 1); }

/* Rebuilds the pid table with new_cap slots, dropping (and releasing)
 * entries not seen in keep_round when drop is set. False on ENOMEM (table
 * unchanged). */
static bool pids_rehash(gw__fdinfo *f, size_t new_cap, bool drop, uint32_t keep_round)
{
    pid_ent *t = calloc(new_cap, sizeof *t);
    if (!t)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < f->cap_pids; i++) {
        pid_ent *e = &f->pids[i];
        if (!e->pid)
            continue;
        if (drop && e->seen_round != keep_round) {
            pid_release(f, e);
            continue;
        }
        size_t j = slot_of(e->pid, new_cap);
        while (t[j].pid)
            j = (j + 1) & (new_cap - 1);
        t[j] = *e;
        used++;
    }
    free(f->pids);
    f->pids = t;
    f->cap_pids = new_cap;
    f->n_pids = used;
    return true;
}

static pid_ent *pid_lookup(gw__fdinfo *f, uint32_t pid, bool *fresh)
{
    *fresh = false;
    if (f->n_pids + 1 > f->cap_pids / 2) {
        if (f->cap_pids >= ((size_t)1 << 23) ||
            !pids_rehash(f, f->cap_pids ? f->cap_pids * 2 : 1024, false, 0))
            return NULL;
    }
    size_t j = slot_of(pid, f->cap_pids);
    while (f->pids[j].pid && f->pids[j].pid != pid)
        j = (j + 1) & (f->cap_pids - 1);
    pid_ent *e = &f->pids[j];
    if (!e->pid) {
        memset(e, 0, sizeof *e);
        e->pid = pid;
        f->n_pids++;
        *fresh = true;
    }
    return e;
}

/* 64-bit finaliser (murmur3 fmix64): spreads pid/inode over jitter ranges
 * of tens of seconds in nanoseconds. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Schedules the next listing of a process that is not young (there before
 * the first sweep, or passed over because the DRM client lists do not name
 * it) anywhere in [rescan_min, rescan_max], at the longest interval: the
 * listings of a whole /proc spread evenly instead of coming back together. */
static void schedule_spread(const gw__fdinfo *f, pid_ent *p, int64_t now)
{
    int64_t span = f->opts.rescan_max_ns - f->opts.rescan_min_ns;
    p->interval_ns = f->opts.rescan_max_ns;
    p->next_scan_ns =
        now + f->opts.rescan_min_ns +
        (span > 0 ? (int64_t)(mix(((uint64_t)p->pid << 32) ^ p->ino) % (uint64_t)span) : 0);
}

/* Lists /proc/PID/fd: keeps the /dev/dri descriptors as slots (existing
 * slots keep their held descriptor), notes /dev/kfd, and schedules the next
 * listing. */
static void pid_scan(gw__fdinfo *f, pid_ent *p, int64_t now)
{
    char path[32];
    snprintf(path, sizeof path, "%u/fd", p->pid);
    f->stats.pids_listed++;
    f->stats.syscalls++;
    int dfd = openat(f->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool changed = false;
    fd_slot found[MAX_FDS_PER_PID];
    uint32_t n_found = 0;
    bool kfd = false;
    p->unreadable = false;
    if (dfd < 0) {
        p->unreadable = errno == EACCES || errno == EPERM;
    } else {
        char dbuf[8192];
        for (;;) {
            f->stats.syscalls++;
            ssize_t n = getdents64(dfd, dbuf, sizeof dbuf);
            if (n <= 0)
                break;
            /* filesystems (procfs, ext4, tmpfs) fill the buffer until it
             * is full or the folder ends: when room for two more entries
             * was left, the folder has ended and a second call (which
             * would return 0) is saved */
            bool ended = (size_t)n + 2 * (sizeof(struct dirent64) + 256) <= sizeof dbuf;
            for (ssize_t off = 0; off < n;) {
                struct dirent64 *d = (struct dirent64 *)(void *)(dbuf + off);
                off += d->d_reclen;
                if (d->d_reclen == 0)
                    break;
                uint64_t fdn;
                if (d->d_name[0] < '0' || d->d_name[0] > '9' || !gw__parse_u64(d->d_name, &fdn) ||
                    fdn > INT32_MAX)
                    continue;
                char target[32];
                f->stats.syscalls++;
                ssize_t tl = readlinkat(dfd, d->d_name, target, sizeof target - 1);
                if (tl <= 0)
                    continue;
                target[tl] = '\0';
                if (strncmp(target, "/dev/dri/", 9) == 0) {
                    if (n_found < MAX_FDS_PER_PID)
                        found[n_found++] = (fd_slot){.fd = (int32_t)fdn, .kind = SLOT_NEW,
                                                     .held = -1};
                } else if (strcmp(target, "/dev/kfd") == 0) {
                    kfd = true;
                }
            }
            if (ended)
                break;
        }
        close(dfd);
    }
    /* merge with the old slots: a descriptor still there keeps its held fd
     * and (for our driver) its kind; others are re-read once */
    for (uint32_t i = 0; i < n_found; i++) {
        bool old = false;
        for (uint32_t k = 0; k < p->n_fds; k++) {
            if (p->fds[k].fd != found[i].fd)
                continue;
            found[i] = p->fds[k];
            if (found[i].kind != SLOT_OURS)
                found[i].kind = SLOT_NEW;
            p->fds[k].held = -1; /* moved */
            old = true;
            break;
        }
        if (!old)
            changed = true;
    }
    if (n_found != p->n_fds)
        changed = true;
    for (uint32_t k = 0; k < p->n_fds; k++)
        slot_release(f, &p->fds[k]);
    p->n_fds = 0;
    size_t cap_fds = p->cap_fds; /* <= n_found afterwards: fits uint32_t */
    if (GW__ARRAY_RESERVE_EXACT(p->fds, cap_fds, n_found)) {
        for (uint32_t i = 0; i < n_found; i++)
            slot_release(f, &found[i]);
        n_found = 0;
    }
    p->cap_fds = (uint32_t)cap_fds;
    if (n_found)
        memcpy(p->fds, found, n_found * sizeof *found);
    p->n_fds = n_found;
    if (kfd != p->kfd)
        changed = true;
    p->kfd = kfd;
    p->listed = true;
    if (!f->have_swept) {
        /* a process that was there before the first sweep is not young */
        schedule_spread(f, p, now);
        return;
    }
    if (changed || p->interval_ns <= 0)
        p->interval_ns = f->opts.rescan_min_ns;
    else if (p->interval_ns < f->opts.rescan_max_ns / 2)
        p->interval_ns *= 2;
    else
        p->interval_ns = f->opts.rescan_max_ns;
    /* jitter: the next listing falls in [interval/2, interval] */
    int64_t half = p->interval_ns / 2;
    int64_t jitter = half > 0 ? (int64_t)(mix(((uint64_t)p->pid << 32) ^ p->ino) % (uint64_t)half)
                              : 0;
    p->next_scan_ns = now + p->interval_ns - jitter;
}

static rec *rec_push(gw__fdinfo *f)
{
    if (GW__ARRAY_RESERVE(f->recs, f->cap_recs, f->n_recs + 1, MAX_RECS))
        return NULL;
    return &f->recs[f->n_recs++];
}

/* Reads one slot's fdinfo into buf; returns bytes or a negative errno. */
static long slot_read(gw__fdinfo *f, pid_ent *p, fd_slot *s)
{
    long n;
    if (s->held >= 0) {
        f->stats.syscalls++;
        ssize_t r = pread(s->held, f->buf, FDINFO_BUF - 1, 0);
        n = r < 0 ? -errno : (long)r;
    } else {
        char path[48];
        snprintf(path, sizeof path, "%u/fdinfo/%d", p->pid, s->fd);
        f->stats.syscalls++;
        int fd = openat(f->procfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        f->stats.syscalls++;
        ssize_t r = read(fd, f->buf, FDINFO_BUF - 1);
        n = r < 0 ? -errno : (long)r;
        if (n >= 0 && f->n_held < f->opts.max_held) {
            s->held = fd;
            f->n_held++;
        } else {
            f->stats.syscalls++;
            close(fd);
        }
    }
    if (n >= 0) {
        /* a full buffer may end inside a line ("drm-total-vram0: 10" of
         * "1048576 KiB"): keep complete lines only */
        if (n == FDINFO_BUF - 1) {
            char *nl = memrchr(f->buf, '\n', (size_t)n);
            n = nl ? (long)(nl - f->buf) + 1 : 0;
        }
        f->buf[n] = '\0';
    }
    return n;
}

/* Reads the slots of p that need reading; appends wanted clients to recs. */
static int pid_read_slots(gw__fdinfo *f, pid_ent *p)
{
    uint32_t w = 0;
    bool oom = false;
    for (uint32_t i = 0; i < p->n_fds; i++) {
        fd_slot *s = &p->fds[i];
        bool keep = true;
        if (!oom && (s->kind == SLOT_NEW || s->kind == SLOT_OURS)) {
            long n = slot_read(f, p, s);
            rec *r = NULL;
            if (n >= 0 && !(r = rec_push(f)))
                oom = true; /* keep the slot as it is; the sweep fails */
            if (oom) {
                /* nothing */
            } else if (n < 0) {
                keep = false; /* closed since the listing */
            } else {
                int prc = gw__fdinfo_parse(f->buf, (size_t)n, &r->c);
                bool ours = prc == GW_OK && (r->c.driver & f->opts.drivers);
                if (prc != GW_OK && s->kind == SLOT_OURS) {
                    keep = false; /* the number now names another file */
                } else {
                    s->kind = prc != GW_OK ? SLOT_NOKEYS : ours ? SLOT_OURS : SLOT_OTHER;
                    s->legacy = prc == GW_OK && r->c.legacy;
                }
                if (ours && keep) {
                    r->pid = p->pid;
                    r->kfd = p->kfd;
                } else {
                    f->n_recs--;
                }
            }
            if (!keep) {
                slot_release(f, s);
                p->next_scan_ns = 0; /* list it again next sweep */
            } else if (s->kind != SLOT_OURS) {
                slot_release(f, s); /* not re-read until the next listing */
            }
        }
        if (keep)
            p->fds[w++] = *s;
    }
    p->n_fds = w;
    if (oom)
        return GW_ENOMEM;
    for (uint32_t i = 0; i < p->n_fds; i++) {
        const fd_slot *s = &p->fds[i];
        f->stats.drm_fds++;
        if (s->kind == SLOT_NOKEYS)
            f->stats.drm_fds_nokeys++;
        else
            f->stats.drm_fds_keys++;
        if (s->legacy)
            f->stats.legacy_fds++;
    }
    return GW_OK;
}

static int rec_cmp(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    int c = strcmp(x->c.pdev, y->c.pdev);
    if (c)
        return c;
    if (x->c.has_id != y->c.has_id)
        return x->c.has_id ? -1 : 1;
    if (x->c.has_id && x->c.client_id != y->c.client_id)
        return x->c.client_id < y->c.client_id ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static const hist_ent *hist_find(const gw__fdinfo *f, const gw__fdinfo_client *c)
{
    size_t lo = 0, hi = f->n_hist;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const hist_ent *h = &f->hist[mid];
        int cmp = strcmp(h->pdev, c->pdev);
        if (!cmp)
            cmp = h->id < c->client_id ? -1 : h->id > c->client_id;
        if (!cmp)
            return h->driver == c->driver ? h : NULL;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const gw__fdinfo_engine *hist_engine(const hist_ent *h, const char *name)
{
    for (uint32_t i = 0; i < h->n_engines; i++)
        if (strcmp(h->engines[i].name, name) == 0)
            return &h->engines[i];
    return NULL;
}

static double clamp_pct(double v) { return v < 0 ? 0 : v > 100 ? 100 : v; }

/* Fills u (one client) from c and its previous counters. */
static void client_usage(gw__fdinfo *f, const rec *r, int64_t now, gw__fdinfo_usage *u)
{
    const gw__fdinfo_client *c = &r->c;
    memset(u, 0, sizeof *u);
    u->pid = r->pid;
    gw__strlcpy(u->pdev, c->pdev, sizeof u->pdev);
    u->driver = c->driver;
    u->clients = 1;
    u->compute = r->kfd;
    if (gw__fdinfo_client_vram(c, &u->vram_bytes))
        u->valid |= 1u << GW__USE_VRAM;
    if (gw__fdinfo_client_gtt(c, &u->gtt_bytes))
        u->valid |= 1u << GW__USE_GTT;
    for (uint32_t i = 0; i < c->n_engines; i++) {
        const gw__fdinfo_engine *e = &c->engines[i];
        unsigned cls = engine_class(c->driver, e->name);
        if ((cls & KIND_COMPUTE) && (e->ns || e->cycles))
            u->compute = true;
        if ((cls & KIND_GRAPHICS) && (e->ns || e->cycles))
            u->graphics = true;
    }
    const hist_ent *h = c->has_id && f->have_hist ? hist_find(f, c) : NULL;
    int64_t dt = now - f->hist_at_ns;
    if (!h || c->legacy)
        return;
    unsigned bad = 0;
    double sum[3] = {0, 0, 0};
    for (uint32_t i = 0; i < c->n_engines; i++) {
        const gw__fdinfo_engine *e = &c->engines[i];
        unsigned cls = engine_class(c->driver, e->name) & (CAT_GFX | CAT_ENC | CAT_DEC);
        if (!cls)
            continue;
        const gw__fdinfo_engine *p = hist_engine(h, e->name);
        double frac = 0;
        if ((e->flags & GW__ENG_CYCLES) && (e->flags & GW__ENG_TOTAL_CYCLES)) {
            if (!p || !(p->flags & GW__ENG_CYCLES) || !(p->flags & GW__ENG_TOTAL_CYCLES))
                continue;
            if (e->cycles < p->cycles || e->total_cycles < p->total_cycles) {
                bad |= cls;
                f->stats.backwards++;
                continue;
            }
            uint64_t dtot = e->total_cycles - p->total_cycles;
            if (dtot == 0)
                continue;
            frac = (double)(e->cycles - p->cycles) / (double)dtot / (double)e->capacity;
        } else if (e->flags & GW__ENG_NS) {
            uint64_t prev;
            if (p && (p->flags & GW__ENG_NS))
                prev = p->ns;
            else if (c->driver == GW__DRM_AMDGPU)
                prev = 0; /* amdgpu omits engines it has not used yet */
            else
                continue;
            if (e->ns < prev) {
                bad |= cls;
                f->stats.backwards++;
                continue;
            }
            if (dt <= 0)
                continue;
            frac = (double)(e->ns - prev) / (double)dt / (double)e->capacity;
        } else {
            continue;
        }
        if (cls & CAT_GFX)
            sum[0] += frac * 100.0;
        if (cls & CAT_ENC)
            sum[1] += frac * 100.0;
        if (cls & CAT_DEC)
            sum[2] += frac * 100.0;
    }
    if (!(bad & CAT_GFX)) {
        u->gfx_pct = clamp_pct(sum[0]);
        u->valid |= 1u << GW__USE_GFX;
    }
    if (!(bad & CAT_ENC)) {
        u->enc_pct = clamp_pct(sum[1]);
        u->valid |= 1u << GW__USE_ENC;
    }
    if (!(bad & CAT_DEC)) {
        u->dec_pct = clamp_pct(sum[2]);
        u->valid |= 1u << GW__USE_DEC;
    }
}

/* Adds b into a (same pdev). */
static void usage_add(gw__fdinfo_usage *a, const gw__fdinfo_usage *b)
{
    static const int bits[] = {GW__USE_VRAM, GW__USE_GTT};
    uint64_t *av[] = {&a->vram_bytes, &a->gtt_bytes};
    const uint64_t bv[] = {b->vram_bytes, b->gtt_bytes};
    for (int i = 0; i < 2; i++)
        if (b->valid & (1u << bits[i])) {
            if (!gw__add_u64(*av[i], bv[i], av[i]))
                *av[i] = UINT64_MAX;
            a->valid |= 1u << bits[i];
        }
    static const int pbits[] = {GW__USE_GFX, GW__USE_ENC, GW__USE_DEC};
    double *ap[] = {&a->gfx_pct, &a->enc_pct, &a->dec_pct};
    const double bp[] = {b->gfx_pct, b->enc_pct, b->dec_pct};
    for (int i = 0; i < 3; i++)
        if (b->valid & (1u << pbits[i])) {
            *ap[i] = clamp_pct(*ap[i] + bp[i]);
            a->valid |= 1u << pbits[i];
        }
    a->clients += b->clients;
    a->compute |= b->compute;
    a->graphics |= b->graphics;
}

static int usage_cmp(const void *a, const void *b)
{
    const gw__fdinfo_usage *x = a, *y = b;
    int c = strcmp(x->pdev, y->pdev);
    return c ? c : x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Dedupes recs, computes busy against hist, builds usage/dev and the next
 * history. */
static int build_results(gw__fdinfo *f, int64_t now)
{
    if (f->n_recs > 1)
        qsort(f->recs, f->n_recs, sizeof *f->recs, rec_cmp);
    if (GW__ARRAY_RESERVE(f->usage, f->cap_usage, f->n_recs, MAX_RECS) ||
        GW__ARRAY_RESERVE(f->hist_next, f->cap_hist_next, f->n_recs, MAX_RECS))
        return GW_ENOMEM;
    f->n_hist_next = 0;
    size_t n_clients = 0;
    for (size_t i = 0; i < f->n_recs; i++) {
        const rec *r = &f->recs[i];
        if (!r->c.has_pdev) {
            f->stats.no_pdev++;
            continue;
        }
        if (i > 0 && r->c.has_id && f->recs[i - 1].c.has_id &&
            f->recs[i - 1].c.client_id == r->c.client_id &&
            strcmp(f->recs[i - 1].c.pdev, r->c.pdev) == 0)
            continue; /* same client through another fd or a higher pid */
        client_usage(f, r, now, &f->usage[n_clients++]);
        if (r->c.has_id) {
            hist_ent *h = &f->hist_next[f->n_hist_next++];
            gw__strlcpy(h->pdev, r->c.pdev, sizeof h->pdev);
            h->id = r->c.client_id;
            h->driver = r->c.driver;
            h->n_engines = r->c.n_engines;
            memcpy(h->engines, r->c.engines, r->c.n_engines * sizeof *h->engines);
        }
    }
    f->stats.clients = (uint32_t)n_clients;
    /* per device totals: the clients are in pdev order already */
    if (GW__ARRAY_RESERVE(f->dev, f->cap_dev, n_clients, MAX_RECS))
        return GW_ENOMEM;
    f->n_dev = 0;
    for (size_t i = 0; i < n_clients; i++) {
        const gw__fdinfo_usage *u = &f->usage[i];
        if (!f->n_dev || strcmp(f->dev[f->n_dev - 1].pdev, u->pdev) != 0) {
            gw__fdinfo_usage *d = &f->dev[f->n_dev++];
            *d = *u;
            d->pid = 0;
        } else {
            usage_add(&f->dev[f->n_dev - 1], u);
        }
    }
    /* per (pdev, pid): sort clients by pdev then pid and fold */
    if (n_clients > 1)
        qsort(f->usage, n_clients, sizeof *f->usage, usage_cmp);
    size_t w = 0;
    for (size_t i = 0; i < n_clients; i++) {
        if (w && f->usage[w - 1].pid == f->usage[i].pid &&
            strcmp(f->usage[w - 1].pdev, f->usage[i].pdev) == 0)
            usage_add(&f->usage[w - 1], &f->usage[i]);
        else
            f->usage[w++] = f->usage[i];
    }
    f->n_usage = w;
    /* the next history, sorted like hist_find expects (recs were sorted by
     * pdev then id, so it already is) */
    hist_ent *t = f->hist;
    size_t tcap = f->cap_hist;
    f->hist = f->hist_next;
    f->cap_hist = f->cap_hist_next;
    f->n_hist = f->n_hist_next;
    f->hist_next = t;
    f->cap_hist_next = tcap;
    f->n_hist_next = 0;
    f->hist_at_ns = now;
    f->have_hist = true;
    return GW_OK;
}

int gw__fdinfo_sweep(gw__fdinfo *f, int64_t now, gw_error *err)
{
    memset(&f->stats, 0, sizeof f->stats);
    f->n_recs = 0;
    f->n_usage = 0;
    f->n_dev = 0;
    f->round++;
    bool hint = false;
    if (f->debugfs[0]) {
        /* without the lists (any error) every new fd folder is listed */
        hint = gw__drm_clients_read(&f->hint, f->debugfs, &f->stats.syscalls) == GW_OK;
        f->stats.client_lists = f->hint.lists;
    }
    rewinddir(f->procdir);
    f->stats.syscalls += 2;
    int rc = GW_OK;
    struct dirent *d;
    errno = 0;
    while ((d = readdir(f->procdir)) != NULL) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        uint64_t pid;
        if (!gw__parse_u64(d->d_name, &pid) || pid > UINT32_MAX)
            continue;
        f->stats.pids++;
        bool fresh;
        pid_ent *p = pid_lookup(f, (uint32_t)pid, &fresh);
        if (!p) {
            rc = GW_ENOMEM;
            break;
        }
        if (!fresh && p->ino != (uint64_t)d->d_ino) {
            pid_release(f, p); /* a new process with a recycled pid */
            uint32_t keep = p->pid;
            memset(p, 0, sizeof *p);
            p->pid = keep;
            fresh = true;
        }
        p->ino = (uint64_t)d->d_ino;
        p->seen_round = f->round;
        bool hinted = hint && gw__drm_clients_has(&f->hint, p->pid);
        if (hinted)
            f->stats.pids_hinted++;
        if (hint && fresh && !hinted)
            schedule_spread(f, p, now); /* no DRM file: the back-off finds a miss */
        else if (fresh || now >= p->next_scan_ns || (hinted && !p->hinted && p->n_fds == 0))
            pid_scan(f, p, now);
        if (hint) /* a sweep without the lists says nothing about them */
            p->hinted = hinted;
        if (p->unreadable)
            f->stats.pids_unreadable++;
        if (p->n_fds && (rc = pid_read_slots(f, p)) != GW_OK)
            break;
    }
    if (rc == GW_OK && f->n_pids > f->stats.pids)
        pids_rehash(f, f->cap_pids, true, f->round); /* on ENOMEM: next time */
    if (rc == GW_OK)
        rc = build_results(f, now);
    if (rc == GW_OK)
        f->have_swept = true;
    if (rc != GW_OK) {
        f->n_usage = f->n_dev = 0;
        f->have_hist = false;
        return gw__error_set(err, rc, "fdinfo: out of memory sweeping %s", f->root);
    }
    return GW_OK;
}

size_t gw__fdinfo_usage_count(const gw__fdinfo *f) { return f->n_usage; }

const gw__fdinfo_usage *gw__fdinfo_usage_at(const gw__fdinfo *f, size_t i)
{
    return i < f->n_usage ? &f->usage[i] : NULL;
}

bool gw__fdinfo_device_usage(const gw__fdinfo *f, const char *pdev, gw__fdinfo_usage *out)
{
    char norm[16];
    if (!gw__pci_bus_id_normalize(pdev, norm, sizeof norm))
        return false;
    for (size_t i = 0; i < f->n_dev; i++)
        if (strcmp(f->dev[i].pdev, norm) == 0) {
            *out = f->dev[i];
            return true;
        }
    return false;
}

const gw__fdinfo_stats *gw__fdinfo_get_stats(const gw__fdinfo *f) { return &f->stats; }

char *gw__fdinfo_describe(const gw__fdinfo *f, char *out, size_t cap)
{
    const gw__fdinfo_stats *s = &f->stats;
    gw_strbuf sb;
    gw__strbuf_init(&sb, cap);
    if (s->drm_fds > 0 && s->drm_fds_keys == 0)
        gw__strbuf_puts(&sb, "DRM fdinfo has no drm-* keys on this kernel (older than 5.14?): "
                             "no per-process GPU use");
    else if (s->legacy_fds > 0)
        gw__strbuf_puts(&sb, "DRM fdinfo uses the amdgpu keys of kernels before 5.19: "
                             "per-process memory only, no busy %");
    if (s->pids_unreadable > 0)
        gw__strbuf_printf(&sb, "%s%u processes' descriptors unreadable (not root): their GPU use "
                               "is not counted",
                          sb.len ? "; " : "", s->pids_unreadable);
    if (s->no_pdev > 0)
        gw__strbuf_printf(&sb, "%s%u DRM clients without drm-pdev cannot be matched to a GPU",
                          sb.len ? "; " : "", s->no_pdev);
    gw__strlcpy(out, sb.len && !sb.failed ? sb.data : "", cap);
    gw__strbuf_release(&sb);
    return out;
}

static void usage_to_process(const gw__fdinfo_usage *u, uint32_t device_index, gw_process *p)
{
    p->pid = u->pid;
    p->device_index = device_index;
    p->kind = u->compute ? GW_PROCESS_COMPUTE : u->graphics ? GW_PROCESS_GRAPHICS
                                                            : GW_PROCESS_OTHER;
    if (u->valid & (1u << GW__USE_VRAM)) {
        p->gpu_memory = u->vram_bytes;
        p->valid |= 1u << GW_PROC_GPU_MEMORY;
    }
    if (u->valid & (1u << GW__USE_GTT)) {
        p->gtt_memory = u->gtt_bytes;
        p->valid |= 1u << GW_PROC_GTT_MEMORY;
    }
    if (u->valid & (1u << GW__USE_GFX)) {
        p->sm_util = u->gfx_pct;
        p->valid |= 1u << GW_PROC_SM_UTIL;
    }
    if (u->valid & (1u << GW__USE_ENC)) {
        p->enc_util = u->enc_pct;
        p->valid |= 1u << GW_PROC_ENC_UTIL;
    }
    if (u->valid & (1u << GW__USE_DEC)) {
        p->dec_util = u->dec_pct;
        p->valid |= 1u << GW_PROC_DEC_UTIL;
    }
}

void gw__fdinfo_add_processes(const gw__fdinfo *f, gw__procinfo *names, gw__collect *c,
                              size_t first, size_t n_devices)
{
    size_t n = gw__fdinfo_usage_count(f);
    gw__procinfo_begin_round(names);
    for (size_t i = 0; i < n; i++) {
        const gw__fdinfo_usage *u = gw__fdinfo_usage_at(f, i);
        size_t k;
        for (k = 0; k < n_devices; k++)
            if (strcmp(gw__collect_device(c, first + k)->info.pci_bus_id, u->pdev) == 0)
                break;
        if (k == n_devices)
            continue;
        gw_process *p = gw__collect_add_process(c);
        if (!p)
            return;
        usage_to_process(u, (uint32_t)(first + k), p);
        gw__procinfo_fill(names, p);
    }
}
