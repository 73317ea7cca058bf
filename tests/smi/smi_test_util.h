/* smi_test_util.h — helpers shared by the smi unit tests: fixture folders,
 * "is this pid dead", "do we have any child left". Header-only, static. */
#ifndef GW_TESTS_SMI_TEST_UTIL_H
#define GW_TESTS_SMI_TEST_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Puts tests/smi/fixtures/<scenario> first on PATH (the rest of PATH kept
 * from the test's start). */
static inline void smi_use_fixture(const char *scenario)
{
    static char base_path[4096];
    if (!base_path[0]) {
        const char *p = getenv("PATH");
        snprintf(base_path, sizeof base_path, "%s", p ? p : "/usr/bin:/bin");
    }
    const char *root = getenv("GPUWATCH_SOURCE_ROOT");
    char path[8192];
    snprintf(path, sizeof path, "%s/tests/smi/fixtures/%s:%s", root ? root : ".", scenario,
             base_path);
    setenv("PATH", path, 1);
}

/* True when pid no longer runs: gone, or a zombie waiting for its (new)
 * parent. Waits a bounded while for a SIGKILLed process to finish dying;
 * this is no timing assertion, only patience. */
static inline bool smi_pid_dead(long pid)
{
    for (int i = 0; i < 1000; i++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
            return true;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* True when this process has no child at all (running or zombie). */
static inline bool smi_no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

/* Reads "PID1 PID2" written by a hang fixture; false when absent. */
static inline bool smi_read_pids(const char *file, long *a, long *b)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return false;
    int n = fscanf(f, "%ld %ld", a, b);
    fclose(f);
    return n == 2;
}

#endif
