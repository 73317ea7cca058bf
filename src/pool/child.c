/* child.c — a model-server process (child.h says what it owns and its
 * invariants). Everything the forked process needs (path, argv, envp) is
 * built before fork: between fork and exec only async-signal-safe calls. */
#include "pool/child.h"

#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The program's path: argv0 itself when it has a '/', else the first
 * executable PATH entry; false when none. */
static bool resolve_program(const char *argv0, char *out, size_t cap)
{
    if (strchr(argv0, '/')) {
        gw__strlcpy(out, argv0, cap);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && len + strlen(argv0) + 2 <= cap) {
            memcpy(out, p, len);
            out[len] = '/';
            strcpy(out + len + 1, argv0);
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return true;
        }
        p = end ? end + 1 : p + len;
    }
    return false;
}

/* environ with set_env's names replaced or added; heap array of borrowed
 * strings (free the array only). */
static char **build_env(char *const *set_env, size_t n_set)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + n_set + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t s = 0; s < n_set && !replaced; s++) {
            const char *eq = strchr(set_env[s], '=');
            size_t nl = eq ? (size_t)(eq - set_env[s]) : strlen(set_env[s]);
            replaced = strncmp(environ[i], set_env[s], nl) == 0 && environ[i][nl] == '=';
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t s = 0; s < n_set; s++)
        env[k++] = set_env[s];
    env[k] = NULL;
    return env;
}

static void log_append(gw_child *c, const char *buf, size_t n)
{
    pthread_mutex_lock(&c->log_lock);
    c->log_total += n;
    if (n >= c->log_cap) {
        memcpy(c->log, buf + n - c->log_cap, c->log_cap);
        c->log_head = 0;
        c->log_len = c->log_cap;
    } else {
        size_t first = c->log_cap - c->log_head < n ? c->log_cap - c->log_head : n;
        memcpy(c->log + c->log_head, buf, first);
        memcpy(c->log, buf + first, n - first);
        c->log_head = (c->log_head + n) % c->log_cap;
        c->log_len = c->log_len + n > c->log_cap ? c->log_cap : c->log_len + n;
    }
    pthread_mutex_unlock(&c->log_lock);
}

static void *drain_main(void *arg)
{
    gw_child *c = arg;
    char buf[4096];
    /* a grandchild may keep the pipe open after the child is gone: poll so
     * that gw_child_free's stop flag ends the thread anyway */
    while (!atomic_load_explicit(&c->drain_stop, memory_order_acquire)) {
        struct pollfd p = {.fd = c->out_fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r == 0 || (r < 0 && errno == EINTR))
            continue;
        ssize_t n = read(c->out_fd, buf, sizeof buf);
        if (n > 0)
            log_append(c, buf, (size_t)n);
        else if (n == 0 || errno != EINTR)
            break;
    }
    return NULL;
}

/* In the forked process: async-signal-safe calls only. */
static void exec_child(const char *path, char *const *argv, char *const *envp, int out_w,
                       pid_t parent)
{
    dup2(out_w, STDOUT_FILENO);
    dup2(out_w, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0 && devnull != STDIN_FILENO) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    /* nothing of the pool's but stdio: not its sockets, not the driver's
     * fds a library opened without O_CLOEXEC */
    close_range(3, ~0U, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL); /* the pool ignores it; its child must not */
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the pool died before prctl */
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, envp);
    static const char msg[] = "gpuwatch pool: exec failed\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

int gw_child_start(gw_child **out, char *const *argv, char *const *set_env, size_t n_set_env,
                   size_t log_cap, gw_error *err)
{
    *out = NULL;
    char path[4096];
    if (!argv[0] || !resolve_program(argv[0], path, sizeof path))
        return gw__error_set(err, GW_ENOENT, "cannot run '%s': not found in PATH or not "
                                             "executable", argv[0] ? argv[0] : "");
    gw_child *c = calloc(1, sizeof *c);
    char **envp = build_env(set_env, n_set_env);
    if (c)
        c->log = malloc(log_cap ? log_cap : 1);
    if (!c || !envp || !c->log) {
        free(envp);
        if (c)
            free(c->log);
        free(c);
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    c->log_cap = log_cap ? log_cap : 1;
    c->out_fd = -1;
    pthread_mutex_init(&c->log_lock, NULL);
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        int e = errno;
        free(envp);
        gw_child_free(c);
        return gw__error_set(err, GW_EIO, "pipe: %s", strerror(e));
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        exec_child(path, argv, envp, pipefd[1], parent);
    int e = errno;
    close(pipefd[1]);
    free(envp);
    c->out_fd = pipefd[0];
    if (pid < 0) {
        close(c->out_fd);
        c->out_fd = -1;
        gw_child_free(c);
        return gw__error_set(err, GW_EIO, "fork: %s", strerror(e));
    }
    c->pid = pid;
    c->started_ns = gw__now_mono_ns();
    c->drain_started = pthread_create(&c->drain, NULL, drain_main, c) == 0;
    *out = c;
    return GW_OK;
}

bool gw_child_poll(gw_child *c)
{
    if (c->exited)
        return true;
    int status;
    pid_t w = waitpid(c->pid, &status, WNOHANG);
    if (w == c->pid) {
        c->exited = true;
        c->status = status;
        kill(-c->pid, SIGKILL); /* helpers it started (its session's group) go with it */
    } else if (w < 0 && errno == ECHILD) {
        c->exited = true; /* reaped elsewhere: nothing more to learn */
        c->status = 0;
    }
    return c->exited;
}

void gw_child_stop(gw_child *c, unsigned grace_ms)
{
    if (gw_child_poll(c))
        return;
    kill(-c->pid, SIGTERM); /* its session's group: helpers it started too */
    kill(c->pid, SIGTERM);
    int64_t end = gw__now_mono_ns() + (int64_t)grace_ms * 1000000;
    while (!gw_child_poll(c) && gw__now_mono_ns() < end) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (!c->exited) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
        int status;
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
            ;
        c->exited = true;
        c->status = status;
    }
}

void gw_child_free(gw_child *c)
{
    if (!c)
        return;
    if (c->pid > 0 && !c->exited)
        gw_child_stop(c, 0);
    atomic_store_explicit(&c->drain_stop, true, memory_order_release);
    if (c->drain_started)
        pthread_join(c->drain, NULL);
    if (c->out_fd >= 0)
        close(c->out_fd);
    pthread_mutex_destroy(&c->log_lock);
    free(c->log);
    free(c);
}

size_t gw_child_log_tail(gw_child *c, char *buf, size_t cap)
{
    if (!cap)
        return 0;
    pthread_mutex_lock(&c->log_lock);
    size_t n = c->log_len < cap - 1 ? c->log_len : cap - 1;
    size_t start = (c->log_head + c->log_cap - n) % c->log_cap;
    for (size_t i = 0; i < n; i++)
        buf[i] = c->log[(start + i) % c->log_cap];
    uint64_t total = c->log_total;
    pthread_mutex_unlock(&c->log_lock);
    buf[n] = '\0';
    /* cut to whole lines when the ring or cap cut one */
    if (n && n < total) {
        char *nl = memchr(buf, '\n', n);
        if (nl && nl + 1 < buf + n) {
            size_t skip = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, n - skip + 1);
            n -= skip;
        }
    }
    return n;
}

const char *gw_child_log_last_lines(gw_child *c, unsigned n_lines, char *buf, size_t cap)
{
    char tail[2048];
    gw_child_log_tail(c, tail, sizeof tail);
    const char *lines[8];
    size_t lens[8], k = 0;
    n_lines = n_lines > 8 ? 8 : n_lines;
    for (char *end = tail + strlen(tail); end > tail && k < n_lines;) {
        while (end > tail && (end[-1] == '\n' || end[-1] == '\r'))
            end--;
        char *start = end;
        while (start > tail && start[-1] != '\n')
            start--;
        if (end > start) {
            lines[k] = start;
            lens[k++] = (size_t)(end - start);
        }
        end = start;
    }
    size_t n = 0;
    buf[0] = '\0';
    while (k-- > 0 && n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "%.*s%s", (int)lens[k], lines[k], k ? " | " : "");
    return buf[0] ? buf : "(nothing)";
}

const char *gw_child_describe_exit(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "stopped (wait status %d)", status);
    return buf;
}

/* Whether 127.0.0.1:port can be bound now; the port in *port when 0. */
static bool try_bind(uint32_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    socklen_t len = sizeof a;
    if (ok && *port == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        *port = ntohs(a.sin_port);
    close(fd);
    return ok;
}

int gw_child_pick_port(uint32_t lo, uint32_t hi, uint32_t *next, uint32_t *port, gw_error *err)
{
    if (lo == 0) {
        *port = 0;
        if (!try_bind(port))
            return gw__error_set(err, GW_EIO, "no free loopback port: %s", strerror(errno));
        return GW_OK;
    }
    uint32_t span = hi - lo + 1;
    for (uint32_t i = 0; i < span; i++) {
        uint32_t p = lo + (*next + i) % span;
        uint32_t q = p;
        if (try_bind(&q)) {
            *next = (p - lo + 1) % span;
            *port = p;
            return GW_OK;
        }
    }
    return gw__error_set(err, GW_ERANGE, "every port of %u-%u is taken", lo, hi);
}

/* ------------------------------------------------------------- launcher */

struct gw_child_launcher {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool stop;
    /* the one job in hand (callers take turns under `turn`) */
    pthread_mutex_t turn;
    bool has_job, job_done;
    char *const *argv;
    char *const *env;
    size_t n_env, log_cap;
    gw_child *result;
    int rc;
    gw_error err;
};

static void *launcher_main(void *arg)
{
    gw_child_launcher *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->stop && !(l->has_job && !l->job_done))
            pthread_cond_wait(&l->cond, &l->lock);
        if (l->stop)
            break;
        gw_error_clear(&l->err);
        l->rc = gw_child_start(&l->result, l->argv, l->env, l->n_env, l->log_cap, &l->err);
        l->job_done = true;
        pthread_cond_broadcast(&l->cond);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int gw_child_launcher_start(gw_child_launcher **out, gw_error *err)
{
    gw_child_launcher *l = calloc(1, sizeof *l);
    if (!l)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    pthread_mutex_init(&l->lock, NULL);
    pthread_mutex_init(&l->turn, NULL);
    pthread_cond_init(&l->cond, NULL);
    int e = pthread_create(&l->thread, NULL, launcher_main, l);
    if (e) {
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->turn);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return gw__error_set(err, GW_EIO, "launcher thread: %s", strerror(e));
    }
    *out = l;
    return GW_OK;
}

void gw_child_launcher_stop(gw_child_launcher *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->turn);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int gw_child_launch(gw_child_launcher *l, gw_child **out, char *const *argv,
                    char *const *set_env, size_t n_set_env, size_t log_cap, gw_error *err)
{
    pthread_mutex_lock(&l->turn);
    pthread_mutex_lock(&l->lock);
    l->argv = argv;
    l->env = set_env;
    l->n_env = n_set_env;
    l->log_cap = log_cap;
    l->result = NULL;
    l->has_job = true;
    l->job_done = false;
    pthread_cond_broadcast(&l->cond);
    while (!l->job_done && !l->stop)
        pthread_cond_wait(&l->cond, &l->lock);
    int rc = l->job_done ? l->rc : gw__error_set(&l->err, GW_EIO, "the pool is stopping");
    *out = l->result;
    if (rc != GW_OK && err)
        *err = l->err;
    l->has_job = false;
    pthread_mutex_unlock(&l->lock);
    pthread_mutex_unlock(&l->turn);
    return rc;
}
