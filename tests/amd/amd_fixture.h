/* amd_fixture.h — helpers for the AMD / Intel / fdinfo tests: temporary
 * procfs trees written as the kernel lays them out (PID/fd/N symlinks to
 * /dev/dri/..., PID/fdinfo/N), and reading values back from the committed
 * fixture trees so tests compare with what the fixture files contain. */
#ifndef GW_TEST_AMD_FIXTURE_H
#define GW_TEST_AMD_FIXTURE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates every parent folder of path. */
static inline void fx_mkparents(char *path)
{
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
}

/* Writes text to root/rel in place (same inode when it exists, as sysfs and
 * procfs files keep theirs), creating parents. Returns 0 on success. */
static inline int fx_write(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    fx_mkparents(path);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static inline int fx_symlink(const char *root, const char *rel, const char *target)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    fx_mkparents(path);
    unlink(path);
    return symlink(target, path);
}

/* A process with comm and one fd: root/PID/fd/FD -> target, fdinfo text. */
static inline void fx_fd(const char *root, unsigned pid, int fd, const char *target,
                         const char *fdinfo)
{
    char rel[128], text[256];
    snprintf(rel, sizeof rel, "%u/comm", pid);
    snprintf(text, sizeof text, "proc%u\n", pid);
    fx_write(root, rel, text);
    snprintf(rel, sizeof rel, "%u/stat", pid);
    snprintf(text, sizeof text,
             "%u (proc%u) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
             "0 0 0 17 0 0 0 0 0 0\n",
             pid, pid);
    fx_write(root, rel, text);
    snprintf(rel, sizeof rel, "%u/fd/%d", pid, fd);
    fx_symlink(root, rel, target);
    snprintf(rel, sizeof rel, "%u/fdinfo/%d", pid, fd);
    fx_write(root, rel, fdinfo);
}

static inline void fx_unlink(const char *root, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    unlink(path);
}

static inline char *fx_tmpdir(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/gw_amd_XXXXXX");
    return mkdtemp(buf);
}

static inline void fx_rmrf(const char *root)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* Copies the committed fixture NAME into a fresh temporary folder (so a test
 * may change files); returns dst. */
static inline char *fx_copy_fixture(const char *name, char *dst, size_t cap)
{
    if (!fx_tmpdir(dst, cap))
        return NULL;
    const char *src = getenv("GPUWATCH_SOURCE_ROOT");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -a '%s/tests/fixtures/%s/.' '%s/'", src ? src : ".", name, dst);
    return system(cmd) == 0 ? dst : NULL;
}

/* Path of the committed fixture NAME. */
static inline const char *fx_fixture(const char *name, char *buf, size_t cap)
{
    const char *src = getenv("GPUWATCH_SOURCE_ROOT");
    snprintf(buf, cap, "%s/tests/fixtures/%s", src ? src : ".", name);
    return buf;
}

/* First integer in root/rel (a fixture file), or abort the test run. */
static inline long long fx_ll(const char *root, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    long long v = 0;
    if (!f || fscanf(f, "%lli", &v) != 1) {
        fprintf(stderr, "fixture value missing: %s\n", path);
        abort();
    }
    fclose(f);
    return v;
}

#endif
