/* subprocess.c — one child process with a deadline (see subprocess.h).
 *
 * How: posix_spawn (glibc clones with CLONE_VFORK, so it is cheap and safe in
 * a threaded daemon, and reports exec failures as its return value) with a
 * new process group, a default signal mask and dispositions, stdin from
 * /dev/null, stdout/stderr on pipes, and every other descriptor closed
 * (posix_spawn_file_actions_addclosefrom_np). The parent polls both pipes
 * and a pidfd of the child (Linux >= 5.3; without it, a 10 ms tick checks
 * the child with waitid) until the pipes reach EOF and the child has exited,
 * or the deadline passes.
 *
 * The child's exit is first observed with waitid(WNOWAIT): the zombie keeps
 * its pid, so killing its process group afterwards (stragglers holding the
 * pipes) can never hit a recycled pid. Only then is it reaped.
 *
 * gw__subprocess_run is four stages, each a section below:
 *   spawn  spawn_child: pipes, attributes (spawn_setup), posix_spawn;
 *   watch  watch_until_done: poll rounds (watch_round) reading the pipes
 *          into capped captures (watch_read) until EOF and exit, the
 *          deadline or a cap;
 *   reap   reap_child: kill the group if it had not exited, reap within a
 *          grace period or hand it to the gw__reaper;
 *   result result_set_end and capture_take fill gw__subprocess_result.
 */
#include "backends/subprocess.h"
#include "core/array.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define KILL_GRACE_MS 2000
#define NO_PIDFD_TICK_MS 10

void gw__reaper_init(gw__reaper *r) { memset(r, 0, sizeof *r); }

void gw__reaper_poll(gw__reaper *r)
{
    size_t keep = 0;
    for (size_t i = 0; i < r->n; i++) {
        pid_t got = waitpid(r->pids[i], NULL, WNOHANG);
        if (got == 0)
            r->pids[keep++] = r->pids[i]; /* still running */
        /* reaped, or ECHILD (someone else reaped it): forget it */
    }
    r->n = keep;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits up to grace_ms for pid to exit, then reaps it. True when reaped (or
 * not ours any more); status gets the wait status when reaped here. */
static bool reap_within(pid_t pid, unsigned grace_ms, int *status, bool *have_status)
{
    int64_t end = gw__now_mono_ns() + (int64_t)grace_ms * 1000000;
    *have_status = false;
    for (;;) {
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            *status = st;
            *have_status = true;
            return true;
        }
        if (got < 0 && errno != EINTR)
            return true; /* ECHILD: already reaped (SIGCHLD ignored) */
        if (gw__now_mono_ns() >= end)
            return false;
        sleep_ms(5);
    }
}

void gw__reaper_release(gw__reaper *r, unsigned grace_ms)
{
    for (size_t i = 0; i < r->n; i++) {
        int st;
        bool have;
        kill(-r->pids[i], SIGKILL);
        kill(r->pids[i], SIGKILL);
        reap_within(r->pids[i], grace_ms, &st, &have);
    }
    r->n = 0;
}

void gw__subprocess_result_release(gw__subprocess_result *res)
{
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof *res);
}

int gw__subprocess_find(const char *program, char *out, size_t cap)
{
    struct stat sb;
    if (cap)
        out[0] = '\0';
    if (!program || !*program)
        return GW_ENOENT;
    if (strchr(program, '/')) {
        if (stat(program, &sb) == 0 && S_ISREG(sb.st_mode) && access(program, X_OK) == 0) {
            gw__strlcpy(out, program, cap);
            return strlen(program) < cap ? GW_OK : GW_ENOENT;
        }
        return GW_ENOENT;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        /* an empty PATH entry means the current directory */
        int n = len ? snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, program)
                    : snprintf(cand, sizeof cand, "./%s", program);
        if (n > 0 && (size_t)n < sizeof cand && (size_t)n < cap && stat(cand, &sb) == 0 &&
            S_ISREG(sb.st_mode) && access(cand, X_OK) == 0) {
            gw__strlcpy(out, cand, cap);
            return GW_OK;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return GW_ENOENT;
}

/* A growing capture buffer with a hard cap. */
typedef struct capture {
    char *data;
    size_t len, alloc, cap;
    bool over;
} capture;

/* Appends n bytes; false (and over set) once the cap would be passed. */
static bool capture_add(capture *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
        n = b->cap - b->len;
        b->over = true;
    }
    if (n) {
        size_t max = b->cap < SIZE_MAX ? b->cap + 1 : SIZE_MAX; /* the text and its NUL */
        if (GW__ARRAY_RESERVE(b->data, b->alloc, b->len + n + 1, max))
            return false;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
    }
    return !b->over;
}

/* Hands the buffer over as a NUL-terminated string ("" when empty). */
static char *capture_take(capture *b, size_t *len)
{
    char *s = b->data ? b->data : calloc(1, 1);
    *len = b->data ? b->len : 0;
    b->data = NULL;
    return s;
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* True when pid has exited (it stays a zombie: WNOWAIT). */
static bool child_exited(pid_t pid, bool *gone)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    *gone = false;
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == ECHILD) { /* reaped behind our back (SIGCHLD ignored) */
            *gone = true;
            return true;
        }
        return false;
    }
    return si.si_pid == pid;
}

/* Drains one readable pipe into b. Returns 1 on EOF, 0 on data, -1 when the
 * buffer passed its cap (or memory ran out). */
static int drain(int fd, capture *b)
{
    char chunk[8192];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0)
        return (errno == EINTR || errno == EAGAIN) ? 0 : 1;
    if (n == 0)
        return 1;
    return capture_add(b, chunk, (size_t)n) ? 0 : -1;
}

static int spawn_error(int e, const char *path, gw_error *err)
{
    int code = e == ENOENT ? GW_ENOENT
             : (e == EACCES || e == EPERM) ? GW_EPERM
             : e == ENOMEM ? GW_ENOMEM
                           : GW_EIO;
    return gw__error_set(err, code, "%s: cannot run: %s", path, strerror(e));
}

/* ------------------------------------------------------------ spawn */

/* Fills the spawn attributes and file actions of invariant 1: a process
 * group of its own, an empty signal mask, default dispositions for the
 * signals a daemon handles or ignores, stdin from /dev/null, stdout/stderr
 * onto the pipes' write ends, everything from 3 up closed. Returns 0 or an
 * errno value. */
static int spawn_setup(posix_spawnattr_t *at, posix_spawn_file_actions_t *fa, int out_w,
                       int err_w)
{
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM,
                                SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < GW__ARRAY_LEN(reset); i++)
        sigaddset(&defaults, reset[i]);
    int rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(at, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(at, &empty);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(at, &defaults);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, out_w, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, err_w, 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    return rc;
}

/* Starts path with argv on two new pipes. On GW_OK, *pid is the child and
 * rd[0] / rd[1] the read ends of its stdout / stderr (ours to close); on
 * error nothing is left open and err says why. */
static int spawn_child(const char *path, const char *const argv[], pid_t *pid, int rd[2],
                       gw_error *err)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) != 0)
        return spawn_error(errno, path, err);
    if (pipe2(pe, O_CLOEXEC) != 0) {
        int e = errno;
        close(po[0]);
        close(po[1]);
        return spawn_error(e, path, err);
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0 && (rc = posix_spawnattr_init(&at)) != 0)
        posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return spawn_error(rc, path, err);
    }
    rc = spawn_setup(&at, &fa, po[1], pe[1]);
    *pid = -1;
    if (rc == 0)
        rc = posix_spawn(pid, path, &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        return spawn_error(rc, path, err);
    }
    rd[0] = po[0];
    rd[1] = pe[0];
    return GW_OK;
}

/* ------------------------------------------------------------ watch */

/* The parent's view of a running child, from spawn to reaping.
 * Invariants:
 *  1. fds[k] is an open read end until its pipe reaches EOF (then -1);
 *     buf[k] holds what came through it (0: stdout, 1: stderr).
 *  2. exited is set once, when waitid(WNOWAIT) first sees the child gone
 *     (gone: it was reaped behind our back); from then on the pid is a
 *     zombie of ours (or not ours at all), never a recycled one.
 *  3. stragglers_until is 0 until exited, then the moment reading stops
 *     even if someone outside the group still holds a pipe open. */
typedef struct watch {
    pid_t pid;
    int pidfd; /* -1 without pidfd_open: a NO_PIDFD_TICK_MS tick instead */
    int fds[2];
    capture buf[2];
    bool exited, gone, memfail;
    int64_t deadline, stragglers_until;
} watch;

/* Fills pf with the open pipes and (until exit) the pidfd; idx[i] names
 * what pf[i] is (0, 1: a pipe; 2: the pidfd). Returns the count. */
static int watch_pollset(const watch *w, struct pollfd pf[3], int idx[3])
{
    int np = 0;
    for (int k = 0; k < 2; k++)
        if (w->fds[k] >= 0) {
            pf[np] = (struct pollfd){.fd = w->fds[k], .events = POLLIN};
            idx[np++] = k;
        }
    if (!w->exited && w->pidfd >= 0) {
        pf[np] = (struct pollfd){.fd = w->pidfd, .events = POLLIN};
        idx[np++] = 2;
    }
    return np;
}

/* How long poll may sleep at now: to the deadline, or the stragglers'
 * end, whichever is first; at most a tick while exit is polled for. */
static int watch_timeout_ms(const watch *w, int64_t now)
{
    int64_t wait_ns = w->deadline - now;
    if (w->exited && w->stragglers_until && w->stragglers_until - now < wait_ns)
        wait_ns = w->stragglers_until - now;
    int wait_ms = (int)((wait_ns + 999999) / 1000000);
    if (!w->exited && w->pidfd < 0 && wait_ms > NO_PIDFD_TICK_MS)
        wait_ms = NO_PIDFD_TICK_MS;
    return wait_ms;
}

/* Reads every pipe poll found ready (n: poll's answer); closes those at
 * EOF. Returns false when a capture passed its cap (*overflow) or memory
 * ran out (w->memfail). */
static bool watch_read(watch *w, const struct pollfd *pf, const int *idx, int np, int n,
                       bool *overflow)
{
    for (int i = 0; n > 0 && i < np; i++) {
        if (!pf[i].revents || idx[i] == 2)
            continue;
        int k = idx[i];
        int d = drain(w->fds[k], &w->buf[k]);
        if (d < 0) {
            if (w->buf[k].over)
                *overflow = true;
            else
                w->memfail = true;
        } else if (d > 0) {
            close(w->fds[k]);
            w->fds[k] = -1;
        }
    }
    return !*overflow && !w->memfail;
}

/* One poll round. Returns false when the loop must stop: deadline
 * (res->timed_out unless the child had exited), the stragglers' time up,
 * poll failing, a capture over its cap (res->overflow) or out of memory. */
static bool watch_round(watch *w, gw__subprocess_result *res)
{
    int64_t now = gw__now_mono_ns();
    if (now >= w->deadline) {
        if (!w->exited)
            res->timed_out = true;
        return false;
    }
    if (w->exited && w->stragglers_until && now >= w->stragglers_until)
        return false; /* someone outside the group holds the pipes: stop reading */
    struct pollfd pf[3];
    int idx[3];
    int np = watch_pollset(w, pf, idx);
    int n = poll(pf, (nfds_t)np, watch_timeout_ms(w, now));
    if (n < 0 && errno != EINTR)
        return false;
    bool overflow = false;
    if (!watch_read(w, pf, idx, np, n, &overflow)) {
        res->overflow = overflow;
        return false;
    }
    if (!w->exited && child_exited(w->pid, &w->gone)) {
        w->exited = true;
        if (!w->gone)
            kill(-w->pid, SIGKILL); /* its group must not outlive it */
        /* what is left in the pipes is readable; give writers outside
         * the group a short while, never past the deadline */
        w->stragglers_until = gw__now_mono_ns() + 100 * 1000000ll;
    }
    return true;
}

/* Reads both pipes until they reach EOF and the child has exited, or
 * watch_round says stop; then closes the pipes. */
static void watch_until_done(watch *w, gw__subprocess_result *res)
{
    while ((w->fds[0] >= 0 || w->fds[1] >= 0 || !w->exited) && watch_round(w, res)) {
    }
    for (int k = 0; k < 2; k++)
        if (w->fds[k] >= 0)
            close(w->fds[k]);
}

/* ------------------------------------------------------------ reap */

/* Invariant 3: reaps the child, first killing its group when it had not
 * exited (deadline, overflow, poll failure); a child that outlives the
 * grace period goes to reaper (res->unreaped), or is waited for without
 * limit when there is no room there. Returns true with *status set when
 * the wait status was collected here. */
static bool reap_child(const watch *w, gw__reaper *reaper, gw__subprocess_result *res,
                       int *status)
{
    bool have_status = false;
    if (!w->exited) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL);
        if (!reap_within(w->pid, KILL_GRACE_MS, status, &have_status)) {
            if (reaper && reaper->n < GW__REAPER_MAX) {
                reaper->pids[reaper->n++] = w->pid;
                res->unreaped = true;
            } else {
                while (waitpid(w->pid, status, 0) < 0 && errno == EINTR) {
                }
                have_status = true;
            }
        }
    } else if (!w->gone) {
        while (waitpid(w->pid, status, 0) < 0) {
            if (errno != EINTR)
                break;
        }
        have_status = true;
    }
    return have_status;
}

/* How it ended, from the wait status: exited only when we did not kill it. */
static void result_set_end(gw__subprocess_result *res, bool have_status, int status)
{
    if (have_status && WIFEXITED(status) && !res->timed_out && !res->overflow) {
        res->exited = true;
        res->exit_code = WEXITSTATUS(status);
    } else if (have_status && WIFSIGNALED(status)) {
        res->signaled = true;
        res->term_signal = WTERMSIG(status);
    }
}

/* ------------------------------------------------------------ run */

int gw__subprocess_run(const char *path, const char *const argv[], unsigned timeout_ms,
                       size_t out_cap, size_t err_cap, gw__reaper *reaper,
                       gw__subprocess_result *res, gw_error *err)
{
    memset(res, 0, sizeof *res);
    if (!timeout_ms)
        timeout_ms = 5000;
    if (reaper)
        gw__reaper_poll(reaper);
    watch w = {.buf = {{.cap = out_cap ? out_cap : 1}, {.cap = err_cap ? err_cap : 1}}};
    int rc = spawn_child(path, argv, &w.pid, w.fds, err);
    if (rc)
        return rc;
    w.pidfd = pidfd_open_(w.pid);
    w.deadline = gw__now_mono_ns() + (int64_t)timeout_ms * 1000000;

    watch_until_done(&w, res);
    int status = 0;
    bool have_status = reap_child(&w, reaper, res, &status);
    if (w.pidfd >= 0)
        close(w.pidfd);

    result_set_end(res, have_status, status);
    res->out = capture_take(&w.buf[0], &res->out_len);
    res->err = capture_take(&w.buf[1], &res->err_len);
    if (w.memfail || !res->out || !res->err) {
        gw__subprocess_result_release(res);
        return gw__error_set(err, GW_ENOMEM, "%s: out of memory reading its output", path);
    }
    return GW_OK;
}
