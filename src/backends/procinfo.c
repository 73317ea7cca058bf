/* procinfo.c — see procinfo.h.
 *
 * Layout: an open-addressing hash table of entries keyed by pid (linear
 * probing, tombstone-free: eviction rebuilds the table). Invariants:
 *  1. n_used <= cap / 2 (the table grows before passing half full).
 *  2. An entry is valid for a pid only while /proc/PID/stat's start time
 *     equals entry->start_time; otherwise it is refreshed (name, user,
 *     command line re-read, CPU baseline dropped).
 *  3. /proc/PID/stat is read at most once per pid per round; a second fill
 *     in the same round (a process on two GPUs) answers from that reading.
 *  4. Held descriptors exist only on procfs, where they stay bound to the
 *     process they were opened for: a stat_fd (with GW__PROCINFO_HOST; its
 *     reads fail with ESRCH once that process is gone, even when the pid
 *     is reused) or else a pidfd in the epoll set (it turns readable when
 *     the process exits). An entry whose guard still holds is the same
 *     process without reading anything. At most fd_budget are held; every
 *     one is closed when its entry goes.
 *  5. uid -> user name lookups are cached in a small separate table.
 */
#include "backends/procinfo.h"
#include "backends/backend.h"
#include "core/util.h"

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

typedef struct entry {
    uint32_t pid; /* 0 = empty slot */
    uint32_t last_round; /* the round of the last stat reading */
    int stat_fd;         /* held /proc/PID/stat, -1 none (invariant 4) */
    int pidfd;           /* held pidfd in pc->epfd, -1 none (invariant 4) */
    bool alive;          /* the last reading worked */
    bool readable;       /* comm could be read */
    bool has_rss, has_cpu, has_base;
    uint64_t start_time;
    uint64_t ticks;      /* utime + stime at ticks_ns (the CPU baseline) */
    int64_t ticks_ns;
    uint64_t rss_bytes;
    double cpu_util;     /* percent of one core over the last round */
    char name[64];
    char user[32];
    char cmdline[256];
} entry;

typedef struct uid_name {
    uint32_t uid;
    char name[32];
} uid_name;

struct gw__procinfo {
    char root[512];
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

int gw__procinfo_open(gw__procinfo **out, const char *proc_root, unsigned what)
{
    gw__procinfo *pc = calloc(1, sizeof *pc);
    if (!pc) {
        *out = NULL;
        return GW_ENOMEM;
    }
    gw__strlcpy(pc->root, proc_root ? proc_root : "/proc", sizeof pc->root);
    pc->what = what;
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
    close_held(pc, &e->stat_fd);
    close_held(pc, &e->pidfd);
}

void gw__procinfo_close(gw__procinfo *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < pc->cap; i++)
        if (pc->table[i].pid)
            drop_fds(pc, &pc->table[i]);
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

void gw__procinfo_begin_round(gw__procinfo *pc)
{
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

/* Reads e's /proc/PID/stat into f: through its held descriptor, else by
 * path (then held when on procfs and within the budget). False when the
 * process is gone or cannot be read. */
static bool read_stat(gw__procinfo *pc, entry *e, stat_fields *f)
{
    char buf[2048];
    ssize_t n = -1;
    if (e->stat_fd >= 0) {
        n = pread(e->stat_fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            close_held(pc, &e->stat_fd); /* gone (ESRCH): the pid may be reused */
    }
    if (n <= 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/%u/stat", pc->root, e->pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            return false;
        n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0 && pc->hold_fds && (pc->what & GW__PROCINFO_HOST) &&
            pc->n_fds < pc->fd_budget) {
            e->stat_fd = fd;
            pc->n_fds++;
        } else {
            close(fd);
        }
        if (n <= 0)
            return false;
    }
    buf[n] = '\0';
    return parse_stat(buf, f);
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
    e->name[0] = e->user[0] = e->cmdline[0] = '\0';

    snprintf(path, sizeof path, "%s/%u/comm", pc->root, e->pid);
    long n = gw__read_file(path, buf, sizeof buf);
    if (n > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        gw__strlcpy(e->name, buf, sizeof e->name);
        e->readable = true;
    }
    snprintf(path, sizeof path, "%s/%u/status", pc->root, e->pid);
    if (gw__read_file(path, buf, sizeof buf) > 0) {
        char *uid = strstr(buf, "\nUid:");
        unsigned long v;
        if (uid && sscanf(uid + 5, "%lu", &v) == 1)
            lookup_user(pc, (uint32_t)v, e->user, sizeof e->user);
    }
    snprintf(path, sizeof path, "%s/%u/cmdline", pc->root, e->pid);
    n = gw__read_file(path, buf, sizeof e->cmdline);
    if (n > 0) {
        while (n > 0 && buf[n - 1] == '\0')
            n--;
        for (long i = 0; i < n; i++)
            if (buf[i] == '\0' || buf[i] == '\n')
                buf[i] = ' ';
        buf[n] = '\0';
        gw__strlcpy(e->cmdline, buf, sizeof e->cmdline);
    }
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
 * changed), resident memory and CPU % against the previous reading. An
 * identity-only entry still guarded by its pidfd reads nothing. */
static void refresh(gw__procinfo *pc, entry *e, bool is_new)
{
    stat_fields f;
    e->last_round = pc->round;
    if (!is_new && e->alive && e->pidfd >= 0)
        return; /* the same process, still running */
    guard(pc, e);
    e->alive = read_stat(pc, e, &f);
    if (!e->alive)
        close_held(pc, &e->pidfd);
    if (!e->alive) {
        e->has_base = false;
        return;
    }
    int64_t now = gw__now_mono_ns();
    if (is_new || f.start_time != e->start_time) {
        e->start_time = f.start_time;
        e->has_base = false;
        if (pc->what & GW__PROCINFO_IDENTITY)
            read_identity(pc, e);
        else
            e->readable = true;
    }
    if (!(pc->what & GW__PROCINFO_HOST))
        return;
    e->has_rss = f.has_rss;
    e->rss_bytes = f.rss_pages * (uint64_t)pc->page;
    e->has_cpu = e->has_base && pc->hz > 0 && now > e->ticks_ns && f.ticks >= e->ticks;
    if (e->has_cpu)
        e->cpu_util = 100.0 * (double)(f.ticks - e->ticks) / (double)pc->hz /
                      ((double)(now - e->ticks_ns) / 1e9);
    e->ticks = f.ticks;
    e->ticks_ns = now;
    e->has_base = true;
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
        e->stat_fd = e->pidfd = -1;
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
    if (e->name[0]) {
        gw__strlcpy(p->name, e->name, sizeof p->name);
        p->valid |= 1u << GW_PROC_NAME;
    }
    if (e->user[0]) {
        gw__strlcpy(p->user, e->user, sizeof p->user);
        p->valid |= 1u << GW_PROC_USER;
    }
    if (e->cmdline[0]) {
        gw__strlcpy(p->cmdline, e->cmdline, sizeof p->cmdline);
        p->valid |= 1u << GW_PROC_CMDLINE;
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
