/* cmd_run.c — `gpuwatch run [OPTIONS] -- CMD ARGS...`: plans, reserves in
 * the local ledger, starts CMD on the chosen GPUs and releases when it ends.
 *
 * Sequence (each step's failure is reported and nothing is left behind):
 *   1. plan and reserve in one ledger transaction, owner = this process;
 *   2. block the forwarded signals, fork; the child restores the mask, sets
 *      CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES / ONEAPI_DEVICE_SELECTOR,
 *      GPUWATCH_RESERVATION and the job progress variables (GPUWATCH_JOB,
 *      GPUWATCH_PROGRESS, GPUWATCH_GPUS: progress_env), and execs CMD (with -ngl / --tensor-split / -c
 *      added for llama-server and llama-cli unless given);
 *   3. the reservation is handed to the child's pid, so it stays held while
 *      CMD runs even if this process is killed, and is auto-released once
 *      CMD is gone;
 *   4. signals (INT, TERM, HUP, QUIT, USR1, USR2, WINCH) are forwarded to
 *      the child through sigwaitinfo (no handler, no global state);
 *      With --lease, run renews the lease every third of it while waiting, so
 *      the reservation lapses only when run itself is gone or stuck;
 *   5. when the child ends, however it ends, the reservation is released
 *      and run exits with CMD's status (128 + signal when it was killed).
 * --dry-run prints the plan, the environment and the command, and stops.
 *
 * Where it reserves: through the daemon (`gpuwatch serve`, its placement API)
 * when one answers at --daemon URL / GPUWATCH_DAEMON / GW_DAEMON_DEFAULT_URL
 * (http://127.0.0.1:19400), else in the local ledger (the daemon's ledger is
 * the same kind of file, so both paths see each other's reservations when
 * they share it). Nothing listening (connection refused), or a server there
 * that is not gpuwatch (remote.h: its /health lacks "service": "gpuwatch"),
 * falls back to the local ledger with one line on stderr saying which; a
 * gpuwatch daemon that answers with an error (401, 400, 5xx) or a server
 * that does not answer in time is reported and run stops, as the local path
 * does for the same failure. --local, --gpu and --ledger keep run on the
 * local ledger. Through the daemon the plan comes back as JSON and is mapped
 * onto this host's devices (remote.h), so the environment and flags below
 * are the same code for both paths.
 *
 * Pid hand-over (step 3) is the same on both paths: the reservation is made
 * with run's own pid as owner, and right after fork launch() hands it to
 * CMD's pid (gw_ledger_set_pid locally; through the daemon POST
 * /api/v1/reservations/{id}/renew {"pid": N}, gw_place_remote_set_pid). From
 * then on the reservation lives exactly as long as CMD, even if run is
 * SIGKILLed. Only if the hand-over fails (printed as a warning) does it stay
 * owned by run's pid, and then a SIGKILLed run releases it while CMD may
 * still run.
 */
#include "cli/cli.h"
#include "cli/host_cpu.h"
#include "place/remote.h"
#include "place/request.h"
#include "progress/progress.h"
#include "render/json_writer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch run (--mem SIZE | --model FILE.gguf [--ctx N] | --layers N\n"
            "                     --layer-size SIZE) [OPTIONS] -- CMD [ARGS...]\n"
            "\n"
            "Plans where CMD goes, reserves that memory in the ledger, runs CMD with\n"
            "CUDA_VISIBLE_DEVICES (by UUID) / HIP_VISIBLE_DEVICES / ONEAPI_DEVICE_SELECTOR\n"
            "set to the chosen GPUs (and -ngl / --tensor-split / -c for llama-server and\n"
            "llama-cli unless given), forwards signals, and releases the reservation when\n"
            "CMD exits, fails or is killed.\n"
            "\n"
            "%s"
            "Run:\n"
            "  --dry-run             print the plan, environment and command; run nothing\n"
            "  --json                with --dry-run: print them as JSON\n"
            "  --key KEY             idempotency key of the reservation\n"
            "  --owner NAME          owner name recorded with the reservation\n"
            "  --lease SECONDS       the reservation also lapses SECONDS after run stops\n"
            "                        renewing it (run renews it every SECONDS/3)\n"
            "  --quiet               do not print the plan line before running\n"
            "Daemon:\n"
            "  --daemon URL          reserve through the daemon at URL (http://HOST:PORT on\n"
            "                        this host; default $GPUWATCH_DAEMON, else\n"
            "                        " GW_DAEMON_DEFAULT_URL "); nothing listening: the local ledger\n"
            "  --token TOKEN         the daemon's bearer token (default $GPUWATCH_TOKEN)\n"
            "  --local               use the local ledger, not the daemon (also implied by\n"
            "                        --gpu and --ledger)\n"
            "Sources (when no --gpu is given):\n"
            "%s"
            "  -h, --help            this text\n"
            "\n"
            "Exit status: CMD's own status (128+N when killed by signal N); 1 when it\n"
            "does not fit or the ledger fails; 2 usage; 127 when CMD cannot be started.\n",
            gw_place_request_help, gw_cli_source_options_help);
}

typedef struct run_opts {
    bool dry_run, quiet, local;
    const char *key, *owner, *daemon, *token;
    int64_t lease_ns;
} run_opts;

enum { O_DRY_RUN = 1, O_QUIET, O_LOCAL, O_DAEMON, O_TOKEN, O_KEY, O_OWNER, O_LEASE };

static const gw_opt run_opts_table[] = {
    {"--dry-run", NULL, NULL, O_DRY_RUN},  {"--quiet", NULL, NULL, O_QUIET},
    {"--local", NULL, NULL, O_LOCAL},      {"--daemon", NULL, "URL", O_DAEMON},
    {"--token", NULL, "TOKEN", O_TOKEN},   {"--key", NULL, "KEY", O_KEY},
    {"--owner", NULL, "NAME", O_OWNER},    {"--lease", NULL, "SECONDS", O_LEASE},
    {NULL, NULL, NULL, 0},
};

/* Applies one of run's own options; GW_CLI_EXIT_USAGE after printing. */
static int run_option(const gw_cli_parse *p, int id, run_opts *ro)
{
    const char *v = p->scan.value;
    switch (id) {
    case O_DRY_RUN: ro->dry_run = true; break;
    case O_QUIET: ro->quiet = true; break;
    case O_LOCAL: ro->local = true; break;
    case O_DAEMON: ro->daemon = v; break;
    case O_TOKEN: ro->token = v; break;
    case O_KEY: ro->key = v; break;
    case O_OWNER: ro->owner = v; break;
    case O_LEASE: {
        uint64_t sec;
        gw_error why;
        if (gw__parse_uint(v, 1, 10ull * 365 * 86400, &sec, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        ro->lease_ns = (int64_t)sec * 1000000000;
        break;
    }
    }
    return 0;
}

/* Parses the options before "--"; returns 0 with *cmd_at the index of CMD
 * (argc when none), or GW_CLI_EXIT_OK / GW_CLI_EXIT_USAGE (printed). */
static int parse_options(int argc, char **argv, gw_place_request *r, run_opts *ro, int *cmd_at)
{
    const gw_opt *const tables[] = {run_opts_table, gw_place_request_opts, gw_cli_source_opts,
                                    NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "run", argc, argv, tables, run_usage);
    p.scan.stop_at_dashdash = true;
    for (int id; (id = gw_cli_next(&p)) != GW_CLI_DONE;) {
        if (id == GW_CLI_EXIT_OK || id == GW_CLI_EXIT_USAGE)
            return id;
        if (id == GW_CLI_ARG) {
            fprintf(stderr, "gpuwatch run: unexpected argument '%s': put the command after '--' "
                            "(gpuwatch run --mem 8GiB -- CMD ...)\n", p.scan.value);
            return GW_CLI_EXIT_USAGE;
        }
        if (id <= O_LEASE) { /* run's own */
            if (run_option(&p, id, ro))
                return GW_CLI_EXIT_USAGE;
            continue;
        }
        int s = gw_cli_source_apply(&p, id, &r->cfg);
        if (s < 0)
            return s;
        if (s > 0)
            continue;
        gw_error err;
        gw_error_clear(&err);
        if (gw_place_request_apply(r, id, p.scan.value, &err) < 0) {
            fprintf(stderr, "gpuwatch run: %s\n", err.message);
            return GW_CLI_EXIT_USAGE;
        }
    }
    *cmd_at = p.scan.dashdash ? p.scan.i : argc;
    return 0;
}

static void print_dry_json(const gw_plan *plan, const gw_place_request *r, char **env, size_t n_env,
                           char **cmd, const char *via)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, r->pretty);
    gw__json_object_begin(&j);
    gw__json_key(&j, "schema");
    gw__json_string(&j, "gpuwatch.run/1");
    gw__json_key(&j, "via");
    gw__json_string(&j, via);
    gw__json_key(&j, "model");
    gw__json_string(&j, r->model_note[0] ? r->model_note : NULL);
    if (r->model) {
        gw__json_key(&j, "host_cpu");
        gw_cli_host_cpu_json(&j, (gw_est_cpu_variant)r->host_cpu, r->host_bufts);
    }
    gw__json_key(&j, "plan");
    gw_place_plan_json(&j, plan, r->devs);
    gw__json_key(&j, "env");
    gw__json_object_begin(&j);
    for (size_t i = 0; i < n_env; i++) {
        char name[64];
        const char *eq = strchr(env[i], '=');
        size_t n = (size_t)(eq - env[i]);
        gw__strlcpy(name, env[i], n + 1 < sizeof name ? n + 1 : sizeof name);
        gw__json_key(&j, name);
        gw__json_string(&j, eq + 1);
    }
    gw__json_object_end(&j);
    gw__json_key(&j, "argv");
    gw__json_array_begin(&j);
    for (size_t i = 0; cmd && cmd[i]; i++)
        gw__json_string(&j, cmd[i]);
    gw__json_array_end(&j);
    gw__json_object_end(&j);
    if (!sb.failed) {
        fwrite(sb.data, 1, sb.len, stdout);
        fputc('\n', stdout);
    }
    gw__strbuf_release(&sb);
}

/* Joins argv into one line for the reservation's note. */
static void join_args(char **argv, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; argv[i] && len + 1 < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", i ? " " : "", argv[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* Where the reservation is held: the local ledger (l) or the daemon (d). */
typedef struct holder {
    gw_ledger *l;
    const gw_place_remote *d;
    int64_t id;
} holder;

static int hold_renew(const holder *h, int64_t lease_ns, gw_error *err)
{
    return h->d ? gw_place_remote_renew(h->d, h->id, lease_ns, err)
                : gw_ledger_renew(h->l, h->id, lease_ns, err);
}

static int hold_release(const holder *h, gw_error *err)
{
    return h->d ? gw_place_remote_release(h->d, h->id, err) : gw_ledger_release(h->l, h->id, err);
}

/* Forks and execs; waits forwarding signals, renewing a lease every third
 * of it. Returns the exit code. */
static int launch(char **cmd, char **env, size_t n_env, const holder *h, int64_t lease_ns)
{
    int64_t res_id = h->id;
    static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    sigset_t set, old;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&set, forwarded[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "gpuwatch run: cannot start '%s': %s\n", cmd[0], strerror(e));
        return GW_EXIT_ERROR;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        for (size_t i = 0; i < n_env; i++)
            putenv(env[i]);
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)res_id);
        setenv("GPUWATCH_RESERVATION", id, 1);
        execvp(cmd[0], cmd);
        fprintf(stderr, "gpuwatch run: cannot run '%s': %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    gw_error err;
    gw_error_clear(&err);
    int handed = h->d   ? gw_place_remote_set_pid(h->d, res_id, (uint32_t)child, &err)
                 : h->l ? gw_ledger_set_pid(h->l, res_id, (uint32_t)child, &err)
                        : GW_OK;
    if (handed != GW_OK)
        fprintf(stderr, "gpuwatch run: warning: reservation %lld stays owned by gpuwatch: %s\n",
                (long long)res_id, err.message);
    int status = 0;
    for (;;) {
        siginfo_t si;
        int sig;
        if (lease_ns > 0) {
            int64_t third = lease_ns / 3;
            struct timespec ts = {.tv_sec = third / 1000000000, .tv_nsec = third % 1000000000};
            sig = sigtimedwait(&set, &si, &ts);
            if (sig < 0 && errno == EAGAIN) {
                if (hold_renew(h, lease_ns, &err) != GW_OK)
                    fprintf(stderr, "gpuwatch run: warning: could not renew the lease of "
                                    "reservation %lld: %s\n", (long long)res_id, err.message);
                continue;
            }
        } else {
            sig = sigwaitinfo(&set, &si);
        }
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (sig != SIGCHLD) {
            /* a terminal's ^C / ^\\ already reached the child's process
             * group (si_code SI_KERNEL); forward only what was sent to us */
            if (si.si_code != SI_KERNEL)
                kill(child, sig);
            continue;
        }
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return GW_EXIT_ERROR;
}

/* Plans (--dry-run) or plans and reserves, through the daemon d (not NULL)
 * or the local ledger (opened into *l; the caller closes it). Fills plan and
 * res (its id; the local ledger's whole row). Returns GW_EXIT_OK, or an exit
 * code after printing why. */
static int plan_and_hold(gw_place_request *r, const run_opts *ro, const gw_place_remote *d,
                         const char *owner, const char *note, const char *via, gw_plan *plan,
                         gw_reservation *res, gw_ledger **l)
{
    gw_error err;
    gw_error_clear(&err);
    if (d && ro->dry_run) {
        if (gw_place_remote_plan(d, r, plan, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch run: %s\n", err.message);
            return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
        }
    } else if (d) {
        gw_reserve_req req = {.key = ro->key, .owner = owner, .pid = (uint32_t)getpid(),
                              .lease_ns = ro->lease_ns, .note = note};
        bool replayed = false;
        if (gw_place_remote_reserve(d, r, &req, plan, &res->id, &replayed, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch run: %s\n", err.message);
            return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
        }
        if (replayed) {
            fprintf(stderr, "gpuwatch run: reservation %lld with key '%s' is already held (%s)\n",
                    (long long)res->id, ro->key ? ro->key : "", via);
            return GW_EXIT_ERROR;
        }
    } else if (ro->dry_run) {
        if (gw_place_request_pending(r, &err) != GW_OK ||
            gw_place(r->devs, r->n_devs, &r->need, &r->opts, plan, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch run: %s\n", err.message);
            return GW_EXIT_ERROR;
        }
    } else {
        const char *path = gw_place_request_ledger(r);
        if (!path) {
            fprintf(stderr, "gpuwatch run: no ledger to reserve in (set --ledger PATH or "
                            "GPUWATCH_LEDGER; --no-ledger works only with --dry-run)\n");
            return GW_EXIT_USAGE;
        }
        gw_ledger_opts lo;
        gw_ledger_opts_init(&lo);
        lo.path = path;
        lo.proc_root = r->cfg.proc_root;
        if (gw_ledger_open(l, &lo, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch run: %s\n", err.message);
            return GW_EXIT_ERROR;
        }
        gw_reserve_req req = {.key = ro->key, .owner = owner, .pid = (uint32_t)getpid(),
                              .lease_ns = ro->lease_ns, .note = note};
        bool existed = false;
        if (gw_ledger_reserve(*l, r->devs, r->n_devs, r->seen, r->n_seen, &r->need, &r->opts, &req,
                              plan, res, &existed, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch run: %s\n", err.message);
            return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
        }
        if (existed) {
            fprintf(stderr, "gpuwatch run: reservation %lld with key '%s' is already held (by pid %u)\n",
                    (long long)res->id, res->key, res->pid);
            return GW_EXIT_ERROR;
        }
    }
    return GW_EXIT_OK;
}

/* The job progress variables (docs/progress.md) appended to env at n;
 * returns the new count. GPUWATCH_JOB: the caller's own when it is a valid
 * job id (a pipeline naming its job), else the reservation id ("run-PID"
 * without a ledger); the
 * destination: the daemon's route when run reserved through one, else the
 * no-daemon folder; GPUWATCH_GPUS: the placed GPUs' UUIDs (the vendor index
 * where a device has none). Heap strings (caller frees); one that cannot
 * be made is left out. Not in --dry-run: the job id is the reservation's. */
static size_t progress_env(const gw_plan *plan, const gw_place_request *r, int64_t res_id,
                           const gw_place_remote *d, char **env, size_t n)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    const char *job = getenv("GPUWATCH_JOB");
    if (!gw_progress_job_valid(job)) {
        if (res_id > 0)
            gw__strbuf_printf(&sb, "GPUWATCH_JOB=%lld", (long long)res_id);
        else
            gw__strbuf_printf(&sb, "GPUWATCH_JOB=run-%d", (int)getpid());
        env[n] = gw__strbuf_detach(&sb, NULL);
        n += env[n] != NULL;
    }
    if (d) {
        size_t l = strlen(d->url.text);
        if (l && d->url.text[l - 1] == '/')
            l--;
        gw__strbuf_printf(&sb, "GPUWATCH_PROGRESS=%.*s/api/v1/progress", (int)l, d->url.text);
    } else {
        char dir[4096], root[4096];
        if (gw_progress_dir_default(getenv("GPUWATCH_PROGRESS_DIR"), getenv("XDG_RUNTIME_DIR"),
                                    geteuid(), dir, root, sizeof dir, NULL) == GW_OK)
            gw__strbuf_printf(&sb, "GPUWATCH_PROGRESS=dir:%s", dir);
    }
    if (sb.len) {
        env[n] = gw__strbuf_detach(&sb, NULL);
        n += env[n] != NULL;
    }
    gw__strbuf_reset(&sb);
    gw__strbuf_puts(&sb, "GPUWATCH_GPUS=");
    for (size_t i = 0; i < plan->n_used; i++) {
        const gw_place_device *dev = &r->devs[plan->used[i].device];
        gw__strbuf_puts(&sb, i ? "," : "");
        if (strncmp(dev->uuid, "index:", 6) != 0)
            gw__strbuf_puts(&sb, dev->uuid);
        else
            gw__strbuf_printf(&sb, "%u", dev->source_index);
    }
    env[n] = gw__strbuf_detach(&sb, NULL);
    n += env[n] != NULL;
    gw__strbuf_release(&sb);
    return n;
}

/* --dry-run's output: the plan, via, environment and command (or JSON). */
static void print_dry(const gw_plan *plan, const gw_place_request *r, char **env, size_t n_env,
                      char **cmd, const char *via)
{
    if (r->json) {
        print_dry_json(plan, r, env, n_env, cmd, via);
        return;
    }
    gw_place_print_plan(stdout, plan, r->devs, r->model_note);
    printf("  via %s\n", via);
    for (size_t i = 0; i < n_env; i++)
        printf("  env %s\n", env[i]);
    printf("  command:");
    for (size_t i = 0; cmd[i]; i++)
        printf(" %s", cmd[i]);
    printf("\n");
}

int gw_cmd_run(int argc, char **argv)
{
    gw_place_request r;
    gw_place_request_init(&r);
    run_opts ro = {0};
    int cmd_at = argc;
    int s = parse_options(argc, argv, &r, &ro, &cmd_at);
    if (s)
        return s == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
    if (r.json && !ro.dry_run) {
        fprintf(stderr, "gpuwatch run: --json goes with --dry-run\n");
        return GW_EXIT_USAGE;
    }
    if (cmd_at >= argc) {
        fprintf(stderr, "gpuwatch run: no command: put it after '--' (gpuwatch run --mem 8GiB -- CMD ...)\n");
        return GW_EXIT_USAGE;
    }
    int cmd_argc = argc - cmd_at;
    char **cmd_argv = argv + cmd_at;

    gw_error err;
    gw_error_clear(&err);
    if (gw_place_request_prepare(&r, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch run: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    int rc = GW_EXIT_OK;
    gw_plan plan;
    gw_plan_init(&plan);
    gw_ledger *l = NULL;
    gw_reservation res = {0};
    char *env[6] = {0}; /* the plan's 3, then progress_env's 3 */
    size_t n_env = 0;
    char **cmd = NULL;
    char note[256], owner[64], via[1100];
    join_args(cmd_argv, note, sizeof note);
    if (ro.owner)
        gw__strlcpy(owner, ro.owner, sizeof owner);
    else
        snprintf(owner, sizeof owner, "gpuwatch run %s", cmd_argv[0]);

    gw_place_remote d;
    bool use_daemon = false;
    char fallback[600];
    if (gw_place_remote_select(ro.daemon, ro.token, ro.local, &r, &d, &use_daemon, fallback,
                               sizeof fallback, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch run: %s (--local uses the local ledger)\n", err.message);
        rc = err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
        goto out;
    }
    if (fallback[0])
        fprintf(stderr, "gpuwatch run: %s; using the local ledger\n", fallback);
    if (use_daemon) {
        snprintf(via, sizeof via, "daemon %s", d.url.text);
    } else {
        const char *lp = gw_place_request_ledger(&r);
        snprintf(via, sizeof via, "local ledger %s", lp ? lp : "(none)");
    }

    rc = plan_and_hold(&r, &ro, use_daemon ? &d : NULL, owner, note, via, &plan, &res, &l);
    if (rc != GW_EXIT_OK)
        goto out;
    if (!plan.fits) {
        if (ro.dry_run && r.json)
            print_dry_json(&plan, &r, NULL, 0, NULL, via);
        else
            gw_place_print_plan(ro.dry_run ? stdout : stderr, &plan, r.devs, r.model_note);
        rc = GW_EXIT_ERROR;
        goto out;
    }
    n_env = gw_place_plan_env(&plan, r.devs, env);
    cmd = gw_place_build_argv(cmd_argc, cmd_argv, &plan, r.model ? r.model_ctx : 0);
    if (!cmd) {
        fprintf(stderr, "gpuwatch run: out of memory\n");
        rc = GW_EXIT_ERROR;
        goto out;
    }
    if (ro.dry_run) {
        print_dry(&plan, &r, env, n_env, cmd, via);
        goto out;
    }
    n_env = progress_env(&plan, &r, res.id, use_daemon ? &d : NULL, env, n_env);
    if (!ro.quiet) {
        fprintf(stderr, "gpuwatch run: reservation %lld (via %s):", (long long)res.id, via);
        char a[32];
        for (size_t i = 0; i < plan.n_used; i++)
            fprintf(stderr, "%s GPU %u %s", i ? "," : "", r.devs[plan.used[i].device].index,
                    gw_place_format_size(plan.used[i].bytes, a, sizeof a));
        for (size_t i = 0; i < n_env; i++)
            fprintf(stderr, "; %s", env[i]);
        fprintf(stderr, "\n");
    }
    holder h = {.l = l, .d = use_daemon ? &d : NULL, .id = res.id};
    rc = launch(cmd, env, n_env, &h, ro.lease_ns);
    gw_error_clear(&err);
    if (hold_release(&h, &err) != GW_OK && err.code != GW_ENOENT)
        fprintf(stderr, "gpuwatch run: warning: could not release reservation %lld (%s); it is "
                        "released automatically now that its owner is gone\n",
                (long long)res.id, err.message);
out:
    gw_place_argv_free(cmd, cmd_argc);
    for (size_t i = 0; i < n_env; i++)
        free(env[i]);
    gw_reservation_clear(&res);
    gw_ledger_close(l);
    gw_plan_release(&plan);
    gw_place_request_release(&r);
    fflush(stdout);
    return rc;
}
