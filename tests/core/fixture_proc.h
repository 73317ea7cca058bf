/* fixture_proc.h — builds small procfs trees in a temporary folder for the
 * core tests (the real boundary: files laid out as the kernel does). */
#ifndef GW_TEST_FIXTURE_PROC_H
#define GW_TEST_FIXTURE_PROC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes text to root/rel, creating parent folders. Returns 0 on success. */
static inline int fixture_write(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Writes a /proc/PID entry: stat with the given start time, comm, status with
 * the uid, and a NUL-separated cmdline from argv-style words. */
static inline void fixture_process(const char *root, unsigned pid, const char *comm,
                                   unsigned long long start, unsigned uid, const char *cmd_nul,
                                   size_t cmd_len)
{
    char rel[64], text[512];
    snprintf(rel, sizeof rel, "%u/stat", pid);
    /* comm with a space and ')' to exercise the last-')' rule */
    snprintf(text, sizeof text,
             "%u (%s) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %llu 1000000 100 "
             "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
             pid, comm, start);
    fixture_write(root, rel, text);
    snprintf(rel, sizeof rel, "%u/comm", pid);
    snprintf(text, sizeof text, "%s\n", comm);
    fixture_write(root, rel, text);
    snprintf(rel, sizeof rel, "%u/status", pid);
    snprintf(text, sizeof text, "Name:\t%s\nUmask:\t0022\nState:\tS\nUid:\t%u\t%u\t%u\t%u\n", comm,
             uid, uid, uid, uid);
    fixture_write(root, rel, text);
    char path[1024];
    snprintf(path, sizeof path, "%s/%u/cmdline", root, pid);
    FILE *f = fopen(path, "w");
    if (f) {
        fwrite(cmd_nul, 1, cmd_len, f);
        fclose(f);
    }
}

/* mkdtemp wrapper: fills buf with a fresh folder under /tmp. */
static inline char *fixture_tmpdir(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/gw_fixture_XXXXXX");
    return mkdtemp(buf);
}

static inline void fixture_rmrf(const char *root)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

#endif
