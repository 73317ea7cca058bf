/* subprocess.h — run a vendor command-line tool found on PATH, with a
 * deadline, and capture what it prints.
 *
 * Owns: starting one child (no shell: argv goes straight to execve), its
 * stdout/stderr pipes, the deadline, and reaping. The fallback backends
 * (nvidia-smi, rocm-smi, amd-smi) use it; nothing here knows about GPUs.
 *
 * Invariants:
 *  1. The child runs in a process group of its own, with stdin on /dev/null
 *     and no descriptor of ours but its stdout/stderr pipes (everything from
 *     3 up is closed in the child, whatever its close-on-exec flag says).
 *  2. When the deadline passes, or the output grows past its cap, the whole
 *     process group gets SIGKILL. When the child exits on its own, whatever
 *     it left running in its group is killed too: nothing outlives a call.
 *  3. The child is always reaped before gw__subprocess_run returns, except
 *     when it does not die within a grace period after SIGKILL (a process
 *     stuck inside a driver cannot die until the driver returns): then its
 *     pid goes to the caller's gw__reaper, which reaps it later without
 *     blocking. Either way, no zombie stays behind once the reaper is
 *     released.
 *  4. Captured output is NUL-terminated and never longer than its cap.
 */
#ifndef GW_BACKENDS_SUBPROCESS_H
#define GW_BACKENDS_SUBPROCESS_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Children that would not die in time, kept to be reaped later. Embed it in
 * a backend's state, zeroed (or gw__reaper_init). */
#define GW__REAPER_MAX 8
typedef struct gw__reaper {
    pid_t pids[GW__REAPER_MAX];
    size_t n;
} gw__reaper;

/* Empties r (no allocation). */
void gw__reaper_init(gw__reaper *r);
/* Reaps, without blocking, every child in r that has exited. */
void gw__reaper_poll(gw__reaper *r);
/* Sends SIGKILL to every child still in r, waits up to grace_ms for each,
 * and forgets them (a child that still has not died is left to init when
 * this process exits). Call it when the owning backend closes. */
void gw__reaper_release(gw__reaper *r, unsigned grace_ms);

/* How one run ended. Buffers are owned by the result: release with
 * gw__subprocess_result_release. */
typedef struct gw__subprocess_result {
    bool exited;      /* exited on its own: exit_code is valid */
    int exit_code;
    bool signaled;    /* killed by a signal (ours or someone's): term_signal */
    int term_signal;
    bool timed_out;   /* we killed it at the deadline */
    bool overflow;    /* we killed it: stdout or stderr passed its cap */
    bool unreaped;    /* would not die after SIGKILL; handed to the reaper */
    char *out;        /* stdout, NUL-terminated ("" when none) */
    size_t out_len;
    char *err;        /* stderr, NUL-terminated ("" when none) */
    size_t err_len;
} gw__subprocess_result;

/* Frees the buffers and zeroes res. Safe on a zeroed result. */
void gw__subprocess_result_release(gw__subprocess_result *res);

/* Finds program (a bare name) in the directories of $PATH, like execvp but
 * without running it: the first regular, executable file wins. Writes its
 * path into out[cap] and returns GW_OK, or GW_ENOENT when it is nowhere on
 * PATH (out is then ""). A name containing '/' is checked as it is. */
int gw__subprocess_find(const char *program, char *out, size_t cap);

/* Runs the executable at path with argv (argv[0] first, NULL-terminated;
 * the environment is ours) and waits for it to finish, for at most
 * timeout_ms (0 means 5000). stdout is kept up to out_cap bytes and stderr
 * up to err_cap bytes (each at least 1); more than that kills the child.
 *
 * Returns GW_OK when the child ran and ended, however it ended: look at res
 * (exited / signaled / timed_out / overflow). Returns a negative gw_status
 * with err set when it could not be started (GW_ENOENT, GW_EPERM, GW_EIO,
 * GW_ENOMEM); res is then zeroed. reaper may be NULL, in which case a child
 * that does not die after SIGKILL is waited for without limit. The caller
 * releases res in every case. */
int gw__subprocess_run(const char *path, const char *const argv[], unsigned timeout_ms,
                       size_t out_cap, size_t err_cap, gw__reaper *reaper,
                       gw__subprocess_result *res, gw_error *err);

#endif
