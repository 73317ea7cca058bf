/* drm_clients.c — see drm_clients.h for the file format and the layout. */
#include "backends/drm_clients.h"
#include "core/array.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_COLUMNS 32
#define MAX_LIST_BYTES (4u << 20) /* ~40,000 clients per device */
#define MAX_PIDS (1u << 22)

/* Splits one line (no '\n') at blanks; returns the column count, at most
 * MAX_COLUMNS (a longer line reports MAX_COLUMNS + 1 and is not used). */
static size_t split_columns(const char *s, size_t len, const char **col, size_t *col_len)
{
    size_t n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && s[i] != ' ' && s[i] != '\t')
            i++;
        if (n == MAX_COLUMNS)
            return MAX_COLUMNS + 1;
        col[n] = s + start;
        col_len[n] = i - start;
        n++;
    }
    return n;
}

static bool column_is(const char *c, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(c, word, len) == 0;
}

/* A decimal pid of 1..UINT32_MAX. */
static bool column_pid(const char *c, size_t len, uint32_t *out)
{
    if (len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (c[i] < '0' || c[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(c[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Appends pid; GW_ERANGE past MAX_PIDS (the set would be incomplete). */
static int push_pid(gw__drm_clients *dc, uint32_t pid)
{
    int rc = GW__ARRAY_RESERVE(dc->pids, dc->cap, dc->n + 1, MAX_PIDS);
    if (rc) /* GW_ERANGE or GW_ENOMEM */
        return rc;
    dc->pids[dc->n++] = pid;
    return GW_OK;
}

int gw__drm_clients_parse(gw__drm_clients *dc, const char *text, size_t len)
{
    const char *col[MAX_COLUMNS];
    size_t col_len[MAX_COLUMNS];
    const char *end = text + len;
    const char *nl = memchr(text, '\n', len);
    const char *line_end = nl ? nl : end;
    size_t n_head = split_columns(text, (size_t)(line_end - text), col, col_len);
    if (n_head < 2 || n_head > MAX_COLUMNS || !column_is(col[0], col_len[0], "command"))
        return GW_EPARSE;
    size_t from_end = 0; /* the tgid column's distance from the last column */
    for (size_t i = 1; i < n_head; i++)
        if (column_is(col[i], col_len[i], "tgid")) {
            from_end = n_head - i;
            break;
        }
    if (from_end == 0)
        return GW_EPARSE; /* includes the "pid" lists of older kernels */
    for (const char *s = nl ? nl + 1 : end; s < end;) {
        nl = memchr(s, '\n', (size_t)(end - s));
        line_end = nl ? nl : end;
        size_t n = split_columns(s, (size_t)(line_end - s), col, col_len);
        s = nl ? nl + 1 : end;
        if (n == 0)
            continue; /* a blank line */
        /* an empty command leaves its column out: one fewer is fine */
        uint32_t pid;
        if (n + 1 < n_head || n > MAX_COLUMNS ||
            !column_pid(col[n - from_end], col_len[n - from_end], &pid))
            return GW_ERANGE; /* a client we cannot name: the set is incomplete */
        int rc = push_pid(dc, pid);
        if (rc != GW_OK)
            return rc;
    }
    return GW_OK;
}

/* Reads dirfd/rel whole into dc->buf (growing it up to MAX_LIST_BYTES);
 * returns the length or a negative errno (-EFBIG when longer). */
static long read_list(gw__drm_clients *dc, int dirfd, const char *rel, uint64_t *syscalls)
{
    (*syscalls)++;
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    long len = 0;
    for (;;) {
        if ((size_t)len == dc->buf_cap && dc->buf_cap < MAX_LIST_BYTES) {
            size_t ncap = dc->buf_cap ? dc->buf_cap * 2 : 16384;
            char *t = realloc(dc->buf, ncap);
            if (!t) {
                len = -ENOMEM;
                break;
            }
            dc->buf = t;
            dc->buf_cap = ncap;
        }
        char probe;
        bool full = (size_t)len == dc->buf_cap; /* at the cap: only end of file fits */
        (*syscalls)++;
        ssize_t r = full ? read(fd, &probe, 1) : read(fd, dc->buf + len, dc->buf_cap - (size_t)len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            len = -errno;
            break;
        }
        if (r == 0)
            break;
        if (full) {
            len = -EFBIG;
            break;
        }
        len += r;
    }
    (*syscalls)++;
    close(fd);
    return len;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int gw__drm_clients_read(gw__drm_clients *dc, const char *debugfs_root, uint64_t *syscalls)
{
    uint64_t ignored = 0;
    if (!syscalls)
        syscalls = &ignored;
    dc->n = 0;
    dc->lists = 0;
    char path[4096];
    size_t pl = strlen(debugfs_root);
    if (pl + sizeof "/dri" > sizeof path)
        return GW_ENOENT;
    memcpy(path, debugfs_root, pl);
    memcpy(path + pl, "/dri", sizeof "/dri");
    (*syscalls)++;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return GW_ENOENT;
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        int e = errno;
        close(dfd);
        return e == ENOMEM ? GW_ENOMEM : GW_ENOENT;
    }
    int rc = GW_OK;
    struct dirent *d;
    (*syscalls) += 2; /* getdents until the end */
    errno = 0;
    while ((d = readdir(dir)) != NULL) {
        /* symbolic links are the minor numbers of per-device folders;
         * client-N folders hold no list */
        if (d->d_name[0] == '.' || d->d_type == DT_LNK || strncmp(d->d_name, "client-", 7) == 0)
            continue;
        char rel[320];
        if ((size_t)snprintf(rel, sizeof rel, "%s/clients", d->d_name) >= sizeof rel) {
            rc = GW_ENOENT;
            break;
        }
        long len = read_list(dc, dfd, rel, syscalls);
        if (len == -ENOENT)
            continue; /* a folder without a list */
        if (len < 0) {
            rc = len == -ENOMEM ? GW_ENOMEM : GW_ENOENT; /* a list we cannot read */
            break;
        }
        int prc = gw__drm_clients_parse(dc, dc->buf, (size_t)len);
        if (prc != GW_OK) {
            rc = prc == GW_ENOMEM ? GW_ENOMEM : GW_ENOENT; /* refused or incomplete */
            break;
        }
        dc->lists++;
        errno = 0;
    }
    if (rc == GW_OK && errno != 0)
        rc = GW_ENOENT; /* the folder could not be listed to its end */
    (*syscalls)++;
    closedir(dir);
    if (rc == GW_OK && dc->lists == 0)
        rc = GW_ENOENT;
    if (rc != GW_OK) {
        dc->n = 0;
        dc->lists = 0;
        return rc;
    }
    if (dc->n > 1) {
        qsort(dc->pids, dc->n, sizeof *dc->pids, cmp_u32);
        size_t w = 1;
        for (size_t i = 1; i < dc->n; i++)
            if (dc->pids[i] != dc->pids[w - 1])
                dc->pids[w++] = dc->pids[i];
        dc->n = w;
    }
    return GW_OK;
}

bool gw__drm_clients_has(const gw__drm_clients *dc, uint32_t pid)
{
    return dc->n > 0 && bsearch(&pid, dc->pids, dc->n, sizeof *dc->pids, cmp_u32) != NULL;
}

void gw__drm_clients_release(gw__drm_clients *dc)
{
    free(dc->pids);
    free(dc->buf);
    memset(dc, 0, sizeof *dc);
}
