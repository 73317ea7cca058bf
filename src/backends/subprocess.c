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
 */
#include "backends/subprocess.h"
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
        if (b->len + n + 1 > b->alloc) {
            size_t want = b->alloc ? b->alloc : 4096;
            while (want < b->len + n + 1)
                want *= 2;
            if (want > b->cap + 1)
                want = b->cap + 1;
            char *p = realloc(b->data, want);
            if (!p)
                return false;
            b->data = p;
            b->alloc = want;
        }
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

int gw__subprocess_run(const char *path, const char *const argv[], unsigned timeout_ms,
                       size_t out_cap, size_t err_cap, gw__reaper *reaper,
                       gw__subprocess_result *res, gw_error *err)
{
    memset(res, 0, sizeof *res);
    if (!timeout_ms)
        timeout_ms = 5000;
    if (!out_cap)
        out_cap = 1;
    if (!err_cap)
        err_cap = 1;
    if (reaper)
        gw__reaper_poll(reaper);

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
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM,
                                SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < GW__ARRAY_LEN(reset); i++)
        sigaddset(&defaults, reset[i]);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&at, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &empty);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &defaults);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid = -1;
    if (rc == 0)
        rc = posix_spawn(&pid, path, &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        return spawn_error(rc, path, err);
    }

    capture cout = {.cap = out_cap}, cerr = {.cap = err_cap};
    int pidfd = pidfd_open_(pid);
    int fds[2] = {po[0], pe[0]};
    capture *bufs[2] = {&cout, &cerr};
    bool exited = false, gone = false, memfail = false;
    int64_t deadline = gw__now_mono_ns() + (int64_t)timeout_ms * 1000000;
    int64_t stragglers_until = 0; /* after exit: how long we wait for pipe EOF */

    while (fds[0] >= 0 || fds[1] >= 0 || !exited) {
        int64_t now = gw__now_mono_ns();
        if (now >= deadline) {
            if (!exited)
                res->timed_out = true;
            break;
        }
        if (exited && stragglers_until && now >= stragglers_until)
            break; /* someone outside the group holds the pipes: stop reading */
        struct pollfd pf[3];
        int idx[3], np = 0;
        for (int k = 0; k < 2; k++)
            if (fds[k] >= 0) {
                pf[np] = (struct pollfd){.fd = fds[k], .events = POLLIN};
                idx[np++] = k;
            }
        if (!exited && pidfd >= 0) {
            pf[np] = (struct pollfd){.fd = pidfd, .events = POLLIN};
            idx[np++] = 2;
        }
        int64_t wait_ns = deadline - now;
        if (exited && stragglers_until && stragglers_until - now < wait_ns)
            wait_ns = stragglers_until - now;
        int wait_ms = (int)((wait_ns + 999999) / 1000000);
        if (!exited && pidfd < 0 && wait_ms > NO_PIDFD_TICK_MS)
            wait_ms = NO_PIDFD_TICK_MS;
        int n = poll(pf, (nfds_t)np, wait_ms);
        if (n < 0 && errno != EINTR)
            break;
        bool overflow = false;
        for (int i = 0; n > 0 && i < np; i++) {
            if (!pf[i].revents || idx[i] == 2)
                continue;
            int k = idx[i];
            int d = drain(fds[k], bufs[k]);
            if (d < 0) {
                if (bufs[k]->over)
                    overflow = true;
                else
                    memfail = true;
            } else if (d > 0) {
                close(fds[k]);
                fds[k] = -1;
            }
        }
        if (overflow || memfail) {
            res->overflow = overflow;
            break;
        }
        if (!exited && child_exited(pid, &gone)) {
            exited = true;
            if (!gone)
                kill(-pid, SIGKILL); /* its group must not outlive it */
            /* what is left in the pipes is readable; give writers outside
             * the group a short while, never past the deadline */
            stragglers_until = gw__now_mono_ns() + 100 * 1000000ll;
        }
    }
    for (int k = 0; k < 2; k++)
        if (fds[k] >= 0)
            close(fds[k]);

    int status = 0;
    bool have_status = false;
    if (!exited) {
        /* deadline, overflow or poll failure: kill the group, then reap */
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        if (!reap_within(pid, KILL_GRACE_MS, &status, &have_status)) {
            if (reaper && reaper->n < GW__REAPER_MAX) {
                reaper->pids[reaper->n++] = pid;
                res->unreaped = true;
            } else {
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                }
                have_status = true;
            }
        }
    } else if (!gone) {
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR)
                break;
        }
        have_status = true;
    }
    if (pidfd >= 0)
        close(pidfd);

    if (have_status && WIFEXITED(status) && !res->timed_out && !res->overflow) {
        res->exited = true;
        res->exit_code = WEXITSTATUS(status);
    } else if (have_status && WIFSIGNALED(status)) {
        res->signaled = true;
        res->term_signal = WTERMSIG(status);
    }
    res->out = capture_take(&cout, &res->out_len);
    res->err = capture_take(&cerr, &res->err_len);
    if (memfail || !res->out || !res->err) {
        gw__subprocess_result_release(res);
        return gw__error_set(err, GW_ENOMEM, "%s: out of memory reading its output", path);
    }
    return GW_OK;
}
