/* store.c — see progress.h. Owns the no-daemon directory: where it is, the
 * ownership rules of its folders, one file per (job, GPU) replaced with
 * rename(2), and staleness (TTL, reporter gone).
 *
 * Why the checks: the default folder may sit in /tmp, where another user
 * could create /tmp/gpuwatch-UID first (and read or forge records, or make
 * a writer follow a symlink). So every folder from the owned root down
 * must be a real directory of the user with no group/other write bit, and
 * files are opened relative to the folder's descriptor with O_NOFOLLOW.
 *
 * Invariants:
 *  1. A record file is only ever created by renameat() of a complete
 *     temporary file ("NAME.tmp.PID.N", never matched as "*.json"), so a
 *     reader sees a whole record or the previous one.
 *  2. Readers (gw_progress_dir_list) never modify the folder; writers
 *     (gw_progress_dir_write, gw_progress_dir_sweep) remove stale files.
 */
#include "progress/progress.h"
#include "core/array.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_MARK ".tmp."

int gw_progress_dir_default(const char *env_dir, const char *xdg, uid_t uid, char *dir,
                            char *root, size_t cap, gw_error *err)
{
    int n, m;
    if (env_dir && env_dir[0]) {
        n = snprintf(dir, cap, "%s", env_dir);
        m = snprintf(root, cap, "%s", env_dir);
    } else if (xdg && xdg[0] == '/') {
        n = snprintf(dir, cap, "%s/gpuwatch/progress", xdg);
        m = snprintf(root, cap, "%s/gpuwatch", xdg);
    } else {
        n = snprintf(dir, cap, "/tmp/gpuwatch-%u/progress", (unsigned)uid);
        m = snprintf(root, cap, "/tmp/gpuwatch-%u", (unsigned)uid);
    }
    if (n < 0 || m < 0 || (size_t)n >= cap || (size_t)m >= cap)
        return gw__error_set(err, GW_ERANGE, "progress directory: path longer than %zu bytes",
                             cap - 1);
    return GW_OK;
}

/* One folder of the chain: exists (made 0700 when create), is ours. */
static int prepare_one(const char *path, uid_t uid, bool create, gw_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return gw__error_set(err, GW_EIO, "%s: %s", path, strerror(errno));
        if (!create)
            return gw__error_set(err, GW_ENOENT, "%s: no such directory", path);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return gw__error_set(err, GW_EIO, "%s: cannot create: %s", path, strerror(errno));
        if (lstat(path, &st) != 0)
            return gw__error_set(err, GW_EIO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return gw__error_set(err, GW_EPERM, "%s: not a directory (a symlink or a file); refused",
                             path);
    if (st.st_uid != uid)
        return gw__error_set(err, GW_EPERM, "%s: owned by uid %u, not by uid %u; refused", path,
                             (unsigned)st.st_uid, (unsigned)uid);
    if (st.st_mode & 022)
        return gw__error_set(err, GW_EPERM,
                             "%s: writable by group or others (mode %03o); refused (chmod 700)",
                             path, (unsigned)(st.st_mode & 0777));
    return GW_OK;
}

int gw_progress_dir_prepare(const char *dir, const char *root, uid_t uid, bool create,
                            gw_error *err)
{
    size_t rl = strlen(root);
    if (strncmp(dir, root, rl) != 0 || (dir[rl] != '\0' && dir[rl] != '/'))
        return gw__error_set(err, GW_EINVAL, "%s: not under %s", dir, root);
    char path[4096];
    if (strlen(dir) >= sizeof path)
        return gw__error_set(err, GW_ERANGE, "%.200s...: path too long", dir);
    gw__strlcpy(path, dir, sizeof path);
    /* root, then each component below it, in order */
    size_t at = rl;
    for (;;) {
        char keep = path[at];
        path[at] = '\0';
        int rc = path[0] ? prepare_one(path, uid, create, err) : GW_OK;
        path[at] = keep;
        if (rc != GW_OK)
            return rc;
        if (keep == '\0')
            return GW_OK;
        at++;
        while (path[at] && path[at] != '/')
            at++;
    }
}

int gw_progress_file_name(const char *job, const char *gpu, char *buf, size_t cap,
                          gw_error *err)
{
    if (!gw_progress_job_valid(job) || !gw_progress_gpu_valid(gpu))
        return gw__error_set(err, GW_EINVAL, "job '%.63s' / gpu '%.95s': invalid", job, gpu);
    int n = snprintf(buf, cap, "%s@%s.json", job, gpu);
    if (n < 0 || (size_t)n >= cap)
        return gw__error_set(err, GW_ERANGE, "file name too long");
    for (char *p = strchr(buf, '@'); *p; p++)
        if (*p == '/')
            *p = '+';
    return GW_OK;
}

static int64_t ttl_of(const gw_progress_dir *d)
{
    return d->ttl_ns > 0 ? d->ttl_ns : (int64_t)GW_PROGRESS_DEFAULT_TTL_S * 1000000000;
}

static bool pid_gone(const gw_progress_dir *d, int32_t pid)
{
    if (pid <= 0)
        return false;
    if (d->pid_gone)
        return d->pid_gone(pid, d->pid_cls);
    return kill(pid, 0) != 0 && errno == ESRCH;
}

static bool stale(const gw_progress_dir *d, const gw_progress *p, int64_t now_ns)
{
    return gw_progress_expired(p, now_ns, ttl_of(d)) || pid_gone(d, p->pid);
}

/* Reads and parses name in dirfd (no symlinks, capped). GW_OK with *p. */
static int read_record(int dirfd, const char *name, gw_progress *p)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return GW_EIO;
    struct stat st;
    char buf[GW_PROGRESS_MAX_JSON + 1];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0 || n > GW_PROGRESS_MAX_JSON)
        return GW_EIO;
    return gw_progress_from_json(buf, (size_t)n, p, NULL);
}

static bool is_record_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0 && !strstr(name, TMP_MARK);
}

static int open_dir(const char *path, gw_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        gw__error_set(err, errno == ENOENT ? GW_ENOENT : GW_EIO, "%s: %s", path, strerror(errno));
    return fd;
}

/* Writes text to a new temporary file in dirfd and renames it over name. */
static int replace_file(int dirfd, const char *dir, const char *name, const char *text, size_t len,
                        gw_error *err)
{
    char tmp[300];
    int fd = -1;
    for (unsigned k = 0; k < 100 && fd < 0; k++) {
        snprintf(tmp, sizeof tmp, "%s" TMP_MARK "%d.%u", name, (int)getpid(), k);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return gw__error_set(err, GW_EIO, "%s/%s: cannot create: %s", dir, name, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int e = errno;
    if (close(fd) != 0 && off == len)
        e = errno, off = 0;
    if (off != len || renameat(dirfd, tmp, dirfd, name) != 0) {
        e = off == len ? errno : e;
        unlinkat(dirfd, tmp, 0);
        return gw__error_set(err, GW_EIO, "%s/%s: cannot write: %s", dir, name, strerror(e));
    }
    return GW_OK;
}

int gw_progress_dir_write(const gw_progress_dir *d, const gw_progress *p, int64_t now_ns,
                          gw_progress *stored, gw_error *err)
{
    int rc = gw_progress_validate(p, err);
    char name[256];
    if (rc == GW_OK)
        rc = gw_progress_file_name(p->job, p->gpu, name, sizeof name, err);
    if (rc != GW_OK)
        return rc;
    int dirfd = open_dir(d->path, err);
    if (dirfd < 0)
        return err ? err->code : GW_EIO;
    gw_progress prev, rec = *p;
    bool have = read_record(dirfd, name, &prev) == GW_OK && !stale(d, &prev, now_ns);
    gw_progress_stamp(&rec, have ? &prev : NULL, now_ns);
    gw_strbuf sb;
    gw__strbuf_init(&sb, GW_PROGRESS_MAX_JSON);
    gw_progress_to_json(&rec, false, &sb);
    gw__strbuf_putc(&sb, '\n');
    if (sb.failed)
        rc = gw__error_set(err, GW_ENOMEM, "progress record: out of memory");
    else
        rc = replace_file(dirfd, d->path, name, sb.data, sb.len, err);
    gw__strbuf_release(&sb);
    close(dirfd);
    if (rc == GW_OK) {
        gw_progress_dir_sweep(d, now_ns);
        if (stored)
            *stored = rec;
    }
    return rc;
}

/* A temporary file is abandoned once older than the TTL (a writer killed
 * between create and rename). */
static bool old_tmp(int dirfd, const char *name, int64_t now_ns, int64_t ttl_ns)
{
    struct stat st;
    if (!strstr(name, TMP_MARK) || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return now_ns - mtime > ttl_ns;
}

size_t gw_progress_dir_sweep(const gw_progress_dir *d, int64_t now_ns)
{
    int dirfd = open_dir(d->path, NULL);
    if (dirfd < 0)
        return 0;
    DIR *dir = fdopendir(dirfd);
    if (!dir) {
        close(dirfd);
        return 0;
    }
    size_t gone = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        gw_progress p;
        bool drop = is_record_name(e->d_name)
                        ? read_record(dirfd, e->d_name, &p) == GW_OK && stale(d, &p, now_ns)
                        : old_tmp(dirfd, e->d_name, now_ns, ttl_of(d));
        if (drop && unlinkat(dirfd, e->d_name, 0) == 0)
            gone++;
    }
    closedir(dir);
    return gone;
}

int gw_progress_dir_list(const gw_progress_dir *d, int64_t now_ns, gw_progress **out, size_t *n,
                         gw_error *err)
{
    *out = NULL;
    *n = 0;
    gw_error e2;
    int dirfd = open_dir(d->path, &e2);
    if (dirfd < 0) {
        if (e2.code == GW_ENOENT)
            return GW_OK;
        return gw__error_set(err, e2.code, "%s", e2.message);
    }
    DIR *dir = fdopendir(dirfd);
    if (!dir) {
        close(dirfd);
        return gw__error_set(err, GW_EIO, "%s: %s", d->path, strerror(errno));
    }
    gw_progress *v = NULL;
    size_t k = 0, cap = 0;
    int rc = GW_OK;
    struct dirent *e;
    while ((e = readdir(dir)) && k < GW_PROGRESS_MAX_RECORDS) {
        gw_progress p;
        if (!is_record_name(e->d_name) || read_record(dirfd, e->d_name, &p) != GW_OK ||
            stale(d, &p, now_ns))
            continue;
        if (gw__array_reserve((void **)&v, &cap, k + 1, sizeof *v, GW_PROGRESS_MAX_RECORDS)) {
            rc = gw__error_set(err, GW_ENOMEM, "progress list: out of memory");
            break;
        }
        v[k++] = p;
    }
    closedir(dir);
    if (rc != GW_OK) {
        free(v);
        return rc;
    }
    if (k)
        qsort(v, k, sizeof *v, gw_progress_cmp);
    *out = v;
    *n = k;
    return GW_OK;
}
