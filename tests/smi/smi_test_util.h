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

/* The deadline of fixture calls that answer by themselves: never reached, so
 * no test depends on how fast this machine runs a fixture script. */
#define SMI_NO_DEADLINE_MS 120000u
/* The deadline a hanging fixture runs into: short, so the suite stays quick.
 * A test that also needs a normal call to finish within it (the same
 * backend, opened once) retries with a longer one: see smi_retry_deadline. */
#define SMI_HANG_MS 400u

/* For a call that timed out where it must not have: true (and *ms
 * quadrupled) while a longer deadline is left to try, when this machine was
 * merely too busy to run the fixture within *ms. */
static inline bool smi_retry_deadline(int rc, int timed_out_code, unsigned *ms)
{
    if (rc != timed_out_code || *ms >= SMI_NO_DEADLINE_MS)
        return false;
    *ms *= 4;
    return true;
}

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
    for (int i = 0; i < 6000; i++) { /* up to a minute */
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

/* After a hang fixture was killed at its deadline: true when its shell and
 * the sleep it started in the background are both dead (the whole process
 * group went). When the deadline came before the shell had written their
 * pids, it had started nothing to leave behind (test_subprocess.c checks
 * the group kill itself without that condition). */
static inline bool smi_hang_left_nothing(const char *pidfile)
{
    long a, b;
    if (!smi_read_pids(pidfile, &a, &b))
        return true;
    return smi_pid_dead(a) && smi_pid_dead(b);
}

#endif
