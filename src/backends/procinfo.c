/* procinfo.c — see procinfo.h.
 *
 * Layout: an open-addressing hash table of entries keyed by pid (linear
 * probing, tombstone-free: eviction rebuilds the table). Invariants:
 *  1. n_used <= cap / 2 (the table grows before passing half full).
 *  2. An entry is valid for a pid only while /proc/PID/stat's start time
 *     equals entry->start_time; otherwise it is refreshed (name, user,
 *     command line re-read, CPU baseline dropped).
 *  3. A pid is read at most once per round; a second fill in the same
 *     round (a process on two GPUs) answers from that reading.
 *  4. Held descriptors exist only on procfs, where they stay bound to the
 *     process they were opened for: with GW__PROCINFO_HOST its
 *     /proc/PID/schedstat (cpu_fd) and statm (mem_fd), whose reads fail
 *     with ESRCH once that process is gone, even when the pid is reused;
 *     else a pidfd in the epoll set (it turns readable when the process
 *     exits). An entry whose guard still holds is the same process, known
 *     without reading stat. At most fd_budget are held; every one is
 *     closed when its entry goes.
 *  5. uid -> user name lookups are cached in a small separate table.
 *  6. The CPU baseline is CPU time in ns: schedstat's exact figure, or
 *     stat's ticks converted (fixture roots, no descriptor to spare); a
 *     rate is only taken between two figures of the same kind.
 * gw__procinfo_check verifies 1 and 4's count (asserted every round).
 */
#include "backends/procinfo.h"
#include "backends/backend.h"
#include "backends/cgroup.h"
#include "core/util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#define PROC_SUPER_MAGIC_ 0x9fa0 /* linux/magic.h's PROC_SUPER_MAGIC */
#define RSS_EVERY 4              /* rounds between statm reads of a held process */

typedef struct entry {
    uint32_t pid; /* 0 = empty slot */
    uint32_t last_round; /* the round of the last stat reading */
    int cpu_fd;          /* held /proc/PID/schedstat, -1 none (invariant 4) */
    int mem_fd;          /* held /proc/PID/statm, -1 none */
    int pidfd;           /* held pidfd in pc->epfd, -1 none (invariant 4) */
    bool alive;          /* the last reading worked */
    bool readable;       /* comm could be read */
    bool has_rss, has_cpu, has_base, base_exact;
    uint64_t start_time;
    uint64_t cpu_ns;     /* CPU time at cpu_at_ns (the baseline, invariant 6) */
    int64_t cpu_at_ns;
    uint64_t rss_bytes;
    double cpu_util;     /* percent of one core over the last round */
    struct ident *id;    /* name, user, command line, owner: IDENTITY caches only */
} entry;

/* What an identity cache knows of a process, read once (invariant 2); out
 * of line so the table stays small (a host-figures cache has none). */
typedef struct ident {
    char name[64];
    char user[32];
    char cmdline[256];
    bool has_owner;
    gw_owner owner;      /* from /proc/PID/cgroup */
} ident;

typedef struct uid_name {
    uint32_t uid;
    char name[32];
} uid_name;

struct gw__procinfo {
    char root[512];
    char pods_dir[512];      /* the kubelet's pod log folder; "" none */
    entry *table;
    size_t cap, n_used;
    uint32_t round;
    unsigned what;           /* GW__PROCINFO_* */
    bool hold_fds;           /* the root is procfs */
    int epfd;                /* the pidfds' epoll set, -1 none */
    size_t n_fds, fd_budget; /* invariant 4 */
    long hz, page;
    uid_name uids[32];
    size_t n_uids;
};

/* One reading of /proc/PID/stat: the fields procinfo uses. */
typedef struct stat_fields {
    uint64_t start_time; /* field 22, clock ticks since boot */
    uint64_t ticks;      /* fields 14 + 15 */
    uint64_t rss_pages;  /* field 24 */
    bool has_rss;
} stat_fields;

static size_t fd_budget(void)
{
    struct rlimit rl;
    rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    return soft == RLIM_INFINITY || soft / 4 > 4096 ? 4096 : (size_t)(soft / 4);
}

/* Grows this process's descriptor table now to hold about n more: growing
 * it later, once other threads share it, waits for an RCU grace period
 * (10+ ms per doubling, seen as a slow first frame in `top`). Best effort;
 * fast when the table is already that large. */
static void reserve_fd_table(size_t n)
{
    int probe = open("/", O_PATH | O_CLOEXEC);
    if (probe < 0)
        return;
    int high = fcntl(probe, F_DUPFD_CLOEXEC, probe + (int)n);
    if (high >= 0)
        close(high);
    close(probe);
}

void gw__procinfo_reserve_fds(void)
{
    size_t n = fd_budget();
    reserve_fd_table(n < 448 ? n : 448);
}

unsigned gw__procinfo_what(const gw__config *cfg)
{
    return GW__PROCINFO_IDENTITY | (cfg->process_host_stats ? GW__PROCINFO_HOST : 0u);
}

int gw__procinfo_open(gw__procinfo **out, const char *proc_root, unsigned what,
                      const char *pods_dir)
{
    gw__procinfo *pc = calloc(1, sizeof *pc);
    if (!pc) {
        *out = NULL;
        return GW_ENOMEM;
    }
    gw__strlcpy(pc->root, proc_root ? proc_root : "/proc", sizeof pc->root);
    pc->what = what;
    gw__strlcpy(pc->pods_dir, pods_dir ? pods_dir : "", sizeof pc->pods_dir);
    struct statfs fs;
    pc->hold_fds = statfs(pc->root, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC_;
    /* pidfds name processes of our own pid namespace: only for the real
     * /proc, not for another procfs mounted elsewhere */
    pc->epfd = pc->hold_fds && !(what & GW__PROCINFO_HOST) && strcmp(pc->root, "/proc") == 0
                   ? epoll_create1(EPOLL_CLOEXEC)
                   : -1;
    pc->fd_budget = fd_budget();
    if (pc->hold_fds)
        gw__procinfo_reserve_fds();
    pc->hz = sysconf(_SC_CLK_TCK);
    pc->page = sysconf(_SC_PAGESIZE);
    if (pc->page <= 0)
        pc->page = 4096;
    *out = pc;
    return GW_OK;
}

static void close_held(gw__procinfo *pc, int *fd)
{
    if (*fd >= 0) {
        close(*fd); /* a pidfd leaves the epoll set with its last close */
        *fd = -1;
        pc->n_fds--;
    }
}

static void drop_fds(gw__procinfo *pc, entry *e)
{
    close_held(pc, &e->cpu_fd);
    close_held(pc, &e->mem_fd);
    close_held(pc, &e->pidfd);
}

void gw__procinfo_close(gw__procinfo *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < pc->cap; i++)
        if (pc->table[i].pid) {
            drop_fds(pc, &pc->table[i]);
            free(pc->table[i].id);
        }
    if (pc->epfd >= 0)
        close(pc->epfd);
    free(pc->table);
    free(pc);
}

static size_t slot_of(uint32_t pid, size_t cap) { return (pid * 2654435761u) & (cap - 1); }

/* Re-inserts every entry used since min_round into a table of new_cap
 * slots; the others lose their descriptor. False (nothing changed) when
 * out of memory. */
static bool rehash(gw__procinfo *pc, size_t new_cap, uint32_t min_round)
{
    entry *t = calloc(new_cap, sizeof *t);
    if (!t)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < pc->cap; i++) {
        entry *e = &pc->table[i];
        if (!e->pid)
            continue;
        if (e->last_round < min_round) {
            drop_fds(pc, e);
            free(e->id);
            continue;
        }
        size_t j = slot_of(e->pid, new_cap);
        while (t[j].pid)
            j = (j + 1) & (new_cap - 1);
        t[j] = *e;
        used++;
    }
    free(pc->table);
    pc->table = t;
    pc->cap = new_cap;
    pc->n_used = used;
    return true;
}

static entry *find(gw__procinfo *pc, uint32_t pid)
{
    if (!pc->cap)
        return NULL;
    for (size_t j = slot_of(pid, pc->cap); pc->table[j].pid; j = (j + 1) & (pc->cap - 1))
        if (pc->table[j].pid == pid)
            return &pc->table[j];
    return NULL;
}

/* Closes the pidfds of processes that exited since the last round: their
 * entries are read again when next filled (invariant 4). */
static void reap_exited(gw__procinfo *pc)
{
    struct epoll_event ev[64];
    int n;
    do {
        n = epoll_wait(pc->epfd, ev, (int)GW__ARRAY_LEN(ev), 0);
        for (int i = 0; i < n; i++) {
            entry *e = find(pc, ev[i].data.u32);
            if (e)
                close_held(pc, &e->pidfd);
        }
    } while (n == (int)GW__ARRAY_LEN(ev));
}

bool gw__procinfo_check(const gw__procinfo *pc)
{
    size_t used = 0, held = 0;
    for (size_t i = 0; i < pc->cap; i++) {
        const entry *e = &pc->table[i];
        if (!e->pid)
            continue;
        used++;
        held += (e->cpu_fd >= 0) + (e->mem_fd >= 0) + (e->pidfd >= 0);
        if ((e->cpu_fd >= 0 || e->mem_fd >= 0 || e->pidfd >= 0) && !pc->hold_fds)
            return false;
    }
    return used == pc->n_used && used <= pc->cap / 2 && held == pc->n_fds &&
           pc->n_fds <= pc->fd_budget;
}

void gw__procinfo_begin_round(gw__procinfo *pc)
{
    assert(gw__procinfo_check(pc));
    pc->round++;
    if (pc->epfd >= 0)
        reap_exited(pc);
    if (!pc->cap || pc->round <= 2)
        return;
    for (size_t i = 0; i < pc->cap; i++)
        if (pc->table[i].pid && pc->table[i].last_round < pc->round - 2) {
            rehash(pc, pc->cap, pc->round - 2); /* on ENOMEM the old table stays */
            return;
        }
}

/* Parses the fields after the LAST ')' (comm may hold spaces and
 * parentheses). False when the start time is not there. */
static bool parse_stat(const char *buf, stat_fields *out)
{
    const char *p = strrchr(buf, ')');
    if (!p)
        return false;
    p++;
    uint64_t v[25] = {0};
    int last = 2;
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0' || *p == '\n')
            break;
        if (field == 3) { /* the state letter */
            p++;
        } else {
            char *end;
            v[field] = strtoull(p, &end, 10); /* "-1" fields are never used */
            if (end == p)
                return false;
            p = end;
        }
        last = field;
    }
    if (last < 22)
        return false;
    out->start_time = v[22];
    out->ticks = v[14] + v[15];
    out->has_rss = last >= 24;
    out->rss_pages = v[24];
    return true;
}

/* Reads e's /proc/PID/stat into f (by path: it is read when a process is
 * new or its guard failed). False when the process is gone or cannot be
 * read. */
static bool read_stat(gw__procinfo *pc, entry *e, stat_fields *f)
{
    char path[600], buf[2048];
    snprintf(path, sizeof path, "%s/%u/stat", pc->root, e->pid);
    return gw__read_file(path, buf, sizeof buf) > 0 && parse_stat(buf, f);
}

/* Opens /proc/PID/NAME to hold (procfs, within the budget); -1 otherwise. */
static int hold_file(gw__procinfo *pc, uint32_t pid, const char *name)
{
    if (!pc->hold_fds || pc->n_fds >= pc->fd_budget)
        return -1;
    char path[600];
    snprintf(path, sizeof path, "%s/%u/%s", pc->root, pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0)
        pc->n_fds++;
    return fd;
}

/* The first number of a held file (opening it as NAME when not held yet):
 * schedstat's CPU ns, statm's size; *second the next one when not NULL.
 * False (and the descriptor closed) when it cannot be read: the process is
 * gone, or the kernel has no such file. */
static bool read_held(gw__procinfo *pc, entry *e, int *fd, const char *name, uint64_t *first,
                      uint64_t *second)
{
    if (*fd < 0)
        *fd = hold_file(pc, e->pid, name);
    if (*fd < 0)
        return false;
    char buf[256];
    ssize_t n = pread(*fd, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        close_held(pc, fd);
        return false;
    }
    buf[n] = '\0';
    char *end;
    *first = strtoull(buf, &end, 10);
    if (end == buf)
        return false;
    if (second) {
        char *p = end;
        *second = strtoull(p, &end, 10);
        if (end == p)
            return false;
    }
    return true;
}

/* CPU % from the baseline to ns at now (invariant 6), then the new baseline. */
static void cpu_sample(entry *e, uint64_t ns, bool exact, int64_t now)
{
    e->has_cpu = e->has_base && e->base_exact == exact && now > e->cpu_at_ns && ns >= e->cpu_ns;
    if (e->has_cpu)
        e->cpu_util = 100.0 * (double)(ns - e->cpu_ns) / (double)(now - e->cpu_at_ns);
    e->cpu_ns = ns;
    e->cpu_at_ns = now;
    e->base_exact = exact;
    e->has_base = true;
}

/* Host figures of a known process from its held descriptors (no stat):
 * CPU every round, resident memory every RSS_EVERY rounds. False when the
 * process is gone (the caller reads stat to find out what the pid is). */
static bool host_from_held(gw__procinfo *pc, entry *e)
{
    uint64_t ns = 0, size = 0, resident = 0;
    if (!read_held(pc, e, &e->cpu_fd, "schedstat", &ns, NULL))
        return false;
    if (!e->has_rss || (pc->round + e->pid) % RSS_EVERY == 0) {
        if (!read_held(pc, e, &e->mem_fd, "statm", &size, &resident))
            return false;
        e->has_rss = true;
        e->rss_bytes = resident * (uint64_t)pc->page;
    }
    cpu_sample(e, ns, true, gw__now_mono_ns());
    return true;
}

static void lookup_user(gw__procinfo *pc, uint32_t uid, char *out, size_t cap)
{
    for (size_t i = 0; i < pc->n_uids; i++)
        if (pc->uids[i].uid == uid) {
            gw__strlcpy(out, pc->uids[i].name, cap);
            return;
        }
    struct passwd pw, *res = NULL;
    char buf[1024];
    char name[32];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        gw__strlcpy(name, res->pw_name, sizeof name);
    else
        snprintf(name, sizeof name, "%u", uid);
    if (pc->n_uids < GW__ARRAY_LEN(pc->uids)) {
        pc->uids[pc->n_uids].uid = uid;
        gw__strlcpy(pc->uids[pc->n_uids].name, name, sizeof pc->uids[0].name);
        pc->n_uids++;
    }
    gw__strlcpy(out, name, cap);
}

/* Name, user and command line: read once per process (invariant 2). */
static void read_identity(gw__procinfo *pc, entry *e)
{
    char path[600], buf[4096];
    e->readable = false;
    if (!e->id && !(e->id = malloc(sizeof *e->id)))
        return; /* out of memory: not readable, tried again with the next pid reuse */
    ident *d = e->id;
    d->name[0] = d->user[0] = d->cmdline[0] = '\0';
    d->has_owner = false;

    snprintf(path, sizeof path, "%s/%u/comm", pc->root, e->pid);
    long n = gw__read_file(path, buf, sizeof buf);
    if (n > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        gw__strlcpy(d->name, buf, sizeof d->name);
        e->readable = true;
    }
    snprintf(path, sizeof path, "%s/%u/status", pc->root, e->pid);
    if (gw__read_file(path, buf, sizeof buf) > 0) {
        char *uid = strstr(buf, "\nUid:");
        unsigned long v;
        if (uid && sscanf(uid + 5, "%lu", &v) == 1)
            lookup_user(pc, (uint32_t)v, d->user, sizeof d->user);
    }
    snprintf(path, sizeof path, "%s/%u/cmdline", pc->root, e->pid);
    n = gw__read_file(path, buf, sizeof d->cmdline);
    if (n > 0) {
        while (n > 0 && buf[n - 1] == '\0')
            n--;
        for (long i = 0; i < n; i++)
            if (buf[i] == '\0' || buf[i] == '\n')
                buf[i] = ' ';
        buf[n] = '\0';
        gw__strlcpy(d->cmdline, buf, sizeof d->cmdline);
    }
    snprintf(path, sizeof path, "%s/%u/cgroup", pc->root, e->pid);
    n = gw__read_file(path, buf, sizeof buf);
    d->has_owner = n > 0;
    if (n > 0 && gw__cgroup_owner_parse(buf, (size_t)n, &d->owner) &&
        d->owner.kind == GW_OWNER_KUBERNETES && pc->pods_dir[0])
        gw__cgroup_pod_name(pc->pods_dir, &d->owner);
}

/* Guards e with a pidfd in the epoll set (identity-only caches on the real
 * /proc). Taken before the stat reading, so what is read is of the process
 * the pidfd names; a kernel without pidfd_open just reads every round. */
static void guard(gw__procinfo *pc, entry *e)
{
    if (pc->epfd < 0 || e->pidfd >= 0 || pc->n_fds >= pc->fd_budget)
        return;
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)e->pid, 0u);
    if (fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = e->pid};
    if (epoll_ctl(pc->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return;
    }
    e->pidfd = fd;
    pc->n_fds++;
}

/* This round's reading of e: identity (re-read when the start time
 * changed), resident memory and CPU % against the previous reading. A
 * known process still guarded (invariant 4) reads no stat. */
static void refresh(gw__procinfo *pc, entry *e, bool is_new)
{
    e->last_round = pc->round;
    if (!is_new && e->alive && e->pidfd >= 0)
        return; /* identity only: the same process, still running */
    if (!is_new && e->alive && e->cpu_fd >= 0 && host_from_held(pc, e))
        return;
    /* new, gone, or without a guard: the descriptors are taken before stat
     * is read, so they name the process it describes (or fail next round
     * if that one is already gone) */
    close_held(pc, &e->cpu_fd);
    close_held(pc, &e->mem_fd);
    guard(pc, e);
    if (pc->what & GW__PROCINFO_HOST) {
        e->cpu_fd = hold_file(pc, e->pid, "schedstat");
        e->mem_fd = hold_file(pc, e->pid, "statm");
    }
    stat_fields f;
    e->alive = read_stat(pc, e, &f);
    if (!e->alive) {
        drop_fds(pc, e);
        e->has_base = false;
        return;
    }
    if (is_new || f.start_time != e->start_time) {
        e->start_time = f.start_time;
        e->has_base = e->has_rss = e->has_cpu = false;
        if (pc->what & GW__PROCINFO_IDENTITY)
            read_identity(pc, e);
        else
            e->readable = true;
    }
    if (!(pc->what & GW__PROCINFO_HOST))
        return;
    uint64_t size = 0, resident = 0, ns = 0;
    bool statm = read_held(pc, e, &e->mem_fd, "statm", &size, &resident);
    e->has_rss = statm || f.has_rss; /* statm's resident set, as the held reads give it */
    e->rss_bytes = (statm ? resident : f.rss_pages) * (uint64_t)pc->page;
    int64_t now = gw__now_mono_ns();
    if (read_held(pc, e, &e->cpu_fd, "schedstat", &ns, NULL))
        cpu_sample(e, ns, true, now);
    else if (pc->hz > 0)
        cpu_sample(e, f.ticks * (1000000000ull / (uint64_t)pc->hz), false, now);
}

/* The entry of pid, inserted (empty) when new; NULL when out of memory. */
static entry *find_slot(gw__procinfo *pc, uint32_t pid, bool *is_new)
{
    if (pc->n_used + 1 > pc->cap / 2 && !rehash(pc, pc->cap ? pc->cap * 2 : 64, 0))
        return NULL;
    size_t j = slot_of(pid, pc->cap);
    while (pc->table[j].pid && pc->table[j].pid != pid)
        j = (j + 1) & (pc->cap - 1);
    entry *e = &pc->table[j];
    *is_new = e->pid == 0;
    if (*is_new) {
        memset(e, 0, sizeof *e);
        e->pid = pid;
        e->cpu_fd = e->mem_fd = e->pidfd = -1;
        pc->n_used++;
    }
    return e;
}

void gw__procinfo_fill(gw__procinfo *pc, gw_process *p)
{
    bool is_new;
    entry *e = p->pid ? find_slot(pc, p->pid, &is_new) : NULL;
    if (!e)
        return;
    if (is_new || e->last_round != pc->round)
        refresh(pc, e, is_new);
    if (!e->alive || !e->readable)
        return; /* gone, or not ours to see */
    const ident *d = e->id;
    if (d && d->name[0]) {
        gw__strlcpy(p->name, d->name, sizeof p->name);
        p->valid |= 1u << GW_PROC_NAME;
    }
    if (d && d->user[0]) {
        gw__strlcpy(p->user, d->user, sizeof p->user);
        p->valid |= 1u << GW_PROC_USER;
    }
    if (d && d->cmdline[0]) {
        gw__strlcpy(p->cmdline, d->cmdline, sizeof p->cmdline);
        p->valid |= 1u << GW_PROC_CMDLINE;
    }
    if (d && d->has_owner) {
        p->owner = d->owner;
        p->valid |= 1u << GW_PROC_OWNER;
    }
    if (e->has_rss) {
        p->host_memory = e->rss_bytes;
        p->valid |= 1u << GW_PROC_HOST_MEMORY;
    }
    if (e->has_cpu) {
        p->cpu_util = e->cpu_util;
        p->valid |= 1u << GW_PROC_CPU_UTIL;
    }
}
