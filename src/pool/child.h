/* child.h — one model-server process of the pool: started from an argument
 * vector and environment, its stderr and stdout kept in a bounded log, its
 * exit observed, and stopped gracefully.
 *
 * Owns: the process (pid), the pipe of its output and the thread that
 * drains it into the log ring, and the port-choosing rule.
 *
 * Invariants:
 *  1. A started child runs in its own session (setsid: a terminal's ^C to
 *     the pool does not reach it; the pool stops it) and gets SIGKILL when
 *     the thread that forked it dies (PR_SET_PDEATHSIG; gw_child_launch
 *     forks on a thread that lives as long as the pool), so no child
 *     outlives a killed pool.
 *  2. The log holds the last `cap` bytes the child wrote, never more; the
 *     drain thread ends when the child's output closes and is joined by
 *     gw_child_free.
 *  3. The pid is reaped exactly once, by gw_child_poll / gw_child_stop
 *     (never by a waitpid(-1)): after that `exited` is true and `status`
 *     holds the wait status.
 * Thread-safety: the log is read under its own lock (any thread);
 * poll/stop/free by one thread at a time (the pool's lock).
 */
#ifndef GW_POOL_CHILD_H
#define GW_POOL_CHILD_H

#include "core/model.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct gw_child {
    pid_t pid;
    bool exited;
    int status;           /* wait status once exited */
    int64_t started_ns;   /* monotonic */
    /* the log ring */
    pthread_mutex_t log_lock;
    char *log;
    size_t log_cap, log_len, log_head; /* head: where the next byte goes */
    uint64_t log_total;                /* bytes ever written */
    int out_fd;                        /* read end of the output pipe */
    pthread_t drain;
    atomic_bool drain_stop;
    bool drain_started;
} gw_child;

/* Starts argv[0] (searched in PATH when it has no '/') with argv and the
 * environment of this process plus set_env ("NAME=VALUE", overriding).
 * Keeps the last log_cap bytes of stdout+stderr. On GW_OK *out is a heap
 * child (gw_child_free). Errors: GW_ENOENT naming a program not found or
 * not executable, GW_EIO (pipe/fork), GW_ENOMEM. */
int gw_child_start(gw_child **out, char *const *argv, char *const *set_env, size_t n_set_env,
                   size_t log_cap, gw_error *err);

/* Reaps the child if it has exited (no wait); returns whether it has. */
bool gw_child_poll(gw_child *c);

/* SIGTERM, then SIGKILL after grace_ms; returns once reaped. */
void gw_child_stop(gw_child *c, unsigned grace_ms);

/* Stops (SIGKILL) a child still running, joins the drain thread, frees.
 * NULL is a no-op. */
void gw_child_free(gw_child *c);

/* The log's last bytes (at most cap-1, a whole line first when cut) into
 * buf, NUL-terminated; returns the length. */
size_t gw_child_log_tail(gw_child *c, char *buf, size_t cap);

/* The last n_lines (at most 8) non-empty lines of the log joined with
 * " | " into buf (cut to cap); "(nothing)" when the log is empty. Returns
 * the text. */
const char *gw_child_log_last_lines(gw_child *c, unsigned n_lines, char *buf, size_t cap);

/* "exited with status N" / "killed by signal N (SIGKILL)" into buf. */
const char *gw_child_describe_exit(int status, char *buf, size_t cap);

/* Picks a loopback TCP port nobody listens on: in [lo, hi] starting after
 * *next (round robin, skipping ports that cannot be bound), or any free
 * port from the kernel when lo is 0. GW_ERANGE when every port of
 * the range is taken. */
int gw_child_pick_port(uint32_t lo, uint32_t hi, uint32_t *next, uint32_t *port, gw_error *err);

/* The launcher: one long-lived thread that forks every child, because
 * PR_SET_PDEATHSIG follows the thread that forked, and the pool's request
 * threads come and go. gw_child_launch runs gw_child_start on it (same
 * arguments, results and errors) and waits; callers take turns. */
typedef struct gw_child_launcher gw_child_launcher;
int gw_child_launcher_start(gw_child_launcher **out, gw_error *err);
/* Joins the thread; no launch may be in progress. NULL is a no-op. */
void gw_child_launcher_stop(gw_child_launcher *l);
int gw_child_launch(gw_child_launcher *l, gw_child **out, char *const *argv,
                    char *const *set_env, size_t n_set_env, size_t log_cap, gw_error *err);

#endif
