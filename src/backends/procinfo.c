/* procinfo.c — see procinfo.h.
 *
 * Layout: an open-addressing hash table of entries keyed by pid (linear
 * probing, tombstone-free: eviction rebuilds the table). Invariants:
 *  1. n_used <= cap / 2 (the table grows before passing half full).
 *  2. An entry is valid for a pid only while /proc/PID/stat's start time
 *     equals entry->start_time; otherwise it is refreshed.
 *  3. uid -> user name lookups are cached in a small separate table.
 */
#include "backends/procinfo.h"
#include "core/util.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint32_t pid; /* 0 = empty slot */
    uint32_t last_round;
    uint64_t start_time;
    bool readable;
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
    uid_name uids[32];
    size_t n_uids;
};

int gw__procinfo_open(gw__procinfo **out, const char *proc_root)
{
    gw__procinfo *pc = calloc(1, sizeof *pc);
    if (!pc) {
        *out = NULL;
        return GW_ENOMEM;
    }
    gw__strlcpy(pc->root, proc_root ? proc_root : "/proc", sizeof pc->root);
    *out = pc;
    return GW_OK;
}

void gw__procinfo_close(gw__procinfo *pc)
{
    if (!pc)
        return;
    free(pc->table);
    free(pc);
}

static size_t slot_of(uint32_t pid, size_t cap) { return (pid * 2654435761u) & (cap - 1); }

/* Re-inserts every entry that passes keep() into a table of new_cap slots. */
static bool rehash(gw__procinfo *pc, size_t new_cap, uint32_t min_round)
{
    entry *t = calloc(new_cap, sizeof *t);
    if (!t)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < pc->cap; i++) {
        entry *e = &pc->table[i];
        if (!e->pid || e->last_round < min_round)
            continue;
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

void gw__procinfo_begin_round(gw__procinfo *pc)
{
    pc->round++;
    if (pc->cap && pc->round > 2)
        rehash(pc, pc->cap, pc->round - 2); /* on ENOMEM the old table stays */
}

/* Start time (clock ticks since boot) from /proc/PID/stat, field 22. The
 * comm field may hold spaces and parentheses: parse after the LAST ')'. */
static bool read_start_time(const char *root, uint32_t pid, uint64_t *out)
{
    char path[600], buf[1024];
    snprintf(path, sizeof path, "%s/%u/stat", root, pid);
    if (gw__read_file(path, buf, sizeof buf) <= 0)
        return false;
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    p++;
    /* fields 3.. follow; start time is field 22 -> the 20th after ')' */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return false;
    }
    char *end;
    unsigned long long v = strtoull(p + 1, &end, 10);
    if (end == p + 1)
        return false;
    *out = v;
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

static void read_entry(gw__procinfo *pc, entry *e)
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

void gw__procinfo_fill(gw__procinfo *pc, gw_process *p)
{
    uint64_t start;
    if (!p->pid || !read_start_time(pc->root, p->pid, &start))
        return; /* gone, or not ours to see */
    if (pc->n_used + 1 > pc->cap / 2 && !rehash(pc, pc->cap ? pc->cap * 2 : 64, 0))
        return;
    size_t j = slot_of(p->pid, pc->cap);
    while (pc->table[j].pid && pc->table[j].pid != p->pid)
        j = (j + 1) & (pc->cap - 1);
    entry *e = &pc->table[j];
    if (!e->pid || e->start_time != start) {
        if (!e->pid)
            pc->n_used++;
        e->pid = p->pid;
        e->start_time = start;
        read_entry(pc, e);
    }
    e->last_round = pc->round;
    if (!e->readable)
        return;
    gw__strlcpy(p->name, e->name, sizeof p->name);
    p->valid |= 1u << GW_PROC_NAME;
    if (e->user[0]) {
        gw__strlcpy(p->user, e->user, sizeof p->user);
        p->valid |= 1u << GW_PROC_USER;
    }
    if (e->cmdline[0]) {
        gw__strlcpy(p->cmdline, e->cmdline, sizeof p->cmdline);
        p->valid |= 1u << GW_PROC_CMDLINE;
    }
}
