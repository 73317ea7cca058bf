/* cmd_progress.c — `gpuwatch progress DONE[/TOTAL]`: a job (a shell script,
 * a training loop calling out) reports how far it is, per GPU, so `gpuwatch
 * top`, the daemon's /api/v1/progress and /metrics show a bar, a rate and
 * an ETA. docs/progress.md is the protocol.
 *
 * Owns: the command line and the choice of destination, nothing else (the
 * record, its JSON and the directory store are src/progress/; the HTTP
 * client is src/place/daemon_client.h).
 *
 * Where it goes, first match wins:
 *   1. --daemon URL, --dir PATH (--local: the default folder);
 *   2. $GPUWATCH_PROGRESS: "http://HOST:PORT[/api/v1/progress]" (what
 *      `gpuwatch run` exports when it reserved through a daemon) or
 *      "dir:PATH" (what it exports otherwise);
 *   3. the daemon at $GPUWATCH_DAEMON (default http://127.0.0.1:19400) when
 *      gpuwatch answers there, discovered as `run` / `place` do;
 *   4. the folder: $GPUWATCH_PROGRESS_DIR, else
 *      $XDG_RUNTIME_DIR/gpuwatch/progress, else /tmp/gpuwatch-UID/progress.
 * The job is --job, else $GPUWATCH_JOB; the GPU --gpu, else the first entry
 * of $GPUWATCH_GPUS, $CUDA_VISIBLE_DEVICES or $HIP_VISIBLE_DEVICES.
 *
 * Exit status: 0 stored; 1 the daemon or the folder refused or failed (the
 * message says which and why); 2 bad command line (including a job id, GPU,
 * unit or message the protocol refuses). Nothing is printed on success.
 */
#include "cli/cli.h"
#include "place/remote.h"
#include "progress/progress.h"
#include "progress/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void progress_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch progress [--job ID] [--gpu GPU] [--unit UNIT] [--message TEXT]\n"
            "                         [--pid PID] [--daemon URL [--token TOKEN] | --dir PATH |\n"
            "                         --local] DONE[/TOTAL]\n"
            "\n"
            "Reports a job's progress on one GPU: DONE units of work out of TOTAL (omit\n"
            "/TOTAL when unknown). `gpuwatch top` shows one bar per job and GPU with its\n"
            "rate and ETA (from the job's first report to this one); the daemon shows it at\n"
            "/api/v1/progress and as gpuwatch_job_progress_* on /metrics. A record not\n"
            "renewed within the TTL (600 s by default) disappears.\n"
            "\n"
            "Record:\n"
            "  --job ID              job id, 1-63 of [A-Za-z0-9._-] (default $GPUWATCH_JOB,\n"
            "                        which `gpuwatch run` sets)\n"
            "  --gpu GPU             GPU UUID or index (default the first of $GPUWATCH_GPUS,\n"
            "                        $CUDA_VISIBLE_DEVICES, $HIP_VISIBLE_DEVICES)\n"
            "  --unit UNIT           what is counted: steps, samples, tokens ... (< 16 bytes)\n"
            "  --message TEXT        a short status line (< 128 bytes, no control characters)\n"
            "  --pid PID             the job's process: the record goes stale once it exits\n"
            "                        (e.g. --pid $$ in a shell script; default none)\n"
            "Destination (default $GPUWATCH_PROGRESS, else the daemon when one answers,\n"
            "else the folder):\n"
            "  --daemon URL          POST to the daemon at http://HOST:PORT (on this host)\n"
            "  --token TOKEN         the daemon's bearer token (default $GPUWATCH_TOKEN)\n"
            "  --dir PATH            write into the folder PATH (created 0700)\n"
            "  --local               write into the default folder: $GPUWATCH_PROGRESS_DIR,\n"
            "                        else $XDG_RUNTIME_DIR/gpuwatch/progress, else\n"
            "                        /tmp/gpuwatch-UID/progress\n"
            "  -h, --help            this text\n"
            "\n"
            "Examples:\n"
            "  gpuwatch progress --job embed-42 --gpu 0 --unit docs 1200/50000\n"
            "  # inside a command `gpuwatch run` started (it sets GPUWATCH_JOB,\n"
            "  # GPUWATCH_PROGRESS and GPUWATCH_GPUS):\n"
            "  for i in 1 2 3; do work $i; gpuwatch progress $i/3; done\n"
            "\n"
            "Exit status: 0 stored; 1 the daemon or folder failed or refused it; 2 bad\n"
            "command line or a value the protocol refuses.\n");
}

typedef struct progress_opts {
    const char *job, *gpu, *unit, *message, *daemon, *token, *dir, *amount;
    bool local;
    int32_t pid;
} progress_opts;

enum { O_JOB = 1, O_GPU, O_UNIT, O_MESSAGE, O_PID, O_DAEMON, O_TOKEN, O_DIR, O_LOCAL };

static const gw_opt progress_opts_table[] = {
    {"--job", NULL, "ID", O_JOB},           {"--gpu", NULL, "GPU", O_GPU},
    {"--unit", NULL, "UNIT", O_UNIT},       {"--message", NULL, "TEXT", O_MESSAGE},
    {"--pid", NULL, "PID", O_PID},          {"--daemon", NULL, "URL", O_DAEMON},
    {"--token", NULL, "TOKEN", O_TOKEN},    {"--dir", NULL, "PATH", O_DIR},
    {"--local", NULL, NULL, O_LOCAL},       {NULL, NULL, NULL, 0},
};

/* Returns 0, or GW_CLI_EXIT_OK / GW_CLI_EXIT_USAGE (printed). */
static int parse_options(int argc, char **argv, progress_opts *o)
{
    const gw_opt *const tables[] = {progress_opts_table, NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "progress", argc, argv, tables, progress_usage);
    for (int id; (id = gw_cli_next(&p)) != GW_CLI_DONE;) {
        const char *v = p.scan.value;
        uint64_t u;
        gw_error why;
        switch (id) {
        case GW_CLI_EXIT_OK:
        case GW_CLI_EXIT_USAGE: return id;
        case GW_CLI_ARG:
            if (o->amount) {
                fprintf(stderr, "gpuwatch progress: one DONE[/TOTAL] only ('%s' and '%s')\n",
                        o->amount, v);
                return GW_CLI_EXIT_USAGE;
            }
            o->amount = v;
            break;
        case O_JOB: o->job = v; break;
        case O_GPU: o->gpu = v; break;
        case O_UNIT: o->unit = v; break;
        case O_MESSAGE: o->message = v; break;
        case O_DAEMON: o->daemon = v; break;
        case O_TOKEN: o->token = v; break;
        case O_DIR: o->dir = v; break;
        case O_LOCAL: o->local = true; break;
        case O_PID:
            if (gw__parse_uint(v, 0, INT32_MAX, &u, &why) != GW_OK)
                return gw_cli_bad_value(&p, &why);
            o->pid = (int32_t)u;
            break;
        }
    }
    if (!o->amount) {
        fprintf(stderr, "gpuwatch progress: missing DONE[/TOTAL] (e.g. 40/100)\n");
        return GW_CLI_EXIT_USAGE;
    }
    if ((o->daemon != NULL) + (o->dir != NULL) + o->local > 1) {
        fprintf(stderr, "gpuwatch progress: --daemon, --dir and --local exclude each other\n");
        return GW_CLI_EXIT_USAGE;
    }
    return 0;
}

/* "DONE" or "DONE/TOTAL" (whole numbers). */
static int parse_amount(const char *s, uint64_t *done, uint64_t *total)
{
    char head[32];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    gw_error why;
    *total = 0;
    if (n >= sizeof head)
        n = sizeof head - 1;
    memcpy(head, s, n);
    head[n] = '\0';
    if (gw__parse_uint(head, 0, INT64_MAX, done, &why) != GW_OK ||
        (slash && gw__parse_uint(slash + 1, 0, INT64_MAX, total, &why) != GW_OK)) {
        fprintf(stderr, "gpuwatch progress: '%s': DONE[/TOTAL] as whole numbers (%s)\n", s,
                why.message);
        return GW_EXIT_USAGE;
    }
    return GW_EXIT_OK;
}

/* The first comma-separated entry of the first set variable into buf. */
static const char *default_gpu(char *buf, size_t cap)
{
    static const char *const vars[] = {"GPUWATCH_GPUS", "CUDA_VISIBLE_DEVICES",
                                       "HIP_VISIBLE_DEVICES"};
    for (size_t i = 0; i < GW__ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v)
            continue;
        size_t n = strcspn(v, ",");
        if (n >= cap)
            n = cap - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
        return buf;
    }
    return NULL;
}

/* gw_progress_send_daemon, its error on stderr; the exit status. */
static int send_daemon(const char *url, const char *token, const gw_progress *rec)
{
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_progress_send_daemon(url, token, rec, &err);
    if (rc != GW_OK)
        fprintf(stderr, "gpuwatch progress: %s\n", err.message);
    return rc == GW_OK ? GW_EXIT_OK : rc == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
}

/* gw_progress_send_dir (dir NULL: the default folder), its error on stderr. */
static int send_dir(const char *dir, const char *root, const gw_progress *rec)
{
    gw_error err;
    gw_error_clear(&err);
    int rc = dir ? gw_progress_send_dir(dir, root, rec, &err)
                 : gw_progress_send_default_dir(rec, &err);
    if (rc != GW_OK)
        fprintf(stderr, "gpuwatch progress: %s\n", err.message);
    return rc == GW_OK ? GW_EXIT_OK : GW_EXIT_ERROR;
}

/* Steps 2-4 of the header: $GPUWATCH_PROGRESS, a daemon that answers, the
 * default folder. */
static int send_discovered(const progress_opts *o, const gw_progress *rec)
{
    const char *token = o->token && *o->token ? o->token : getenv("GPUWATCH_TOKEN");
    const char *env = getenv("GPUWATCH_PROGRESS");
    if (env && strncmp(env, "dir:", 4) == 0 && env[4])
        return send_dir(env + 4, env + 4, rec);
    if (env && strncmp(env, "http://", 7) == 0)
        return send_daemon(env, token, rec);
    if (env && *env) {
        fprintf(stderr, "gpuwatch progress: GPUWATCH_PROGRESS='%s': expected http://HOST:PORT"
                        GW_PROGRESS_PATH " or dir:PATH\n", env);
        return GW_EXIT_USAGE;
    }
    const char *url = getenv("GPUWATCH_DAEMON");
    gw_place_remote d = {.token = token};
    gw_error err;
    gw_error_clear(&err);
    if (gw_daemon_url_parse(url && *url ? url : GW_DAEMON_DEFAULT_URL, &d.url, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch progress: GPUWATCH_DAEMON: %s\n", err.message);
        return GW_EXIT_USAGE;
    }
    gw_place_probe what;
    char note[600];
    if (gw_place_remote_probe(&d, &what, note, sizeof note, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch progress: %s (--local writes into the folder instead)\n",
                err.message);
        return GW_EXIT_ERROR;
    }
    if (what == GW_PROBE_GPUWATCH)
        return send_daemon(d.url.text, token, rec);
    return send_dir(NULL, NULL, rec);
}

int gw_cmd_progress(int argc, char **argv)
{
    progress_opts o = {0};
    int s = parse_options(argc, argv, &o);
    if (s)
        return s == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
    uint64_t done, total;
    if (parse_amount(o.amount, &done, &total) != GW_EXIT_OK)
        return GW_EXIT_USAGE;
    const char *job = o.job ? o.job : getenv("GPUWATCH_JOB");
    char gpu_buf[128];
    const char *gpu = o.gpu ? o.gpu : default_gpu(gpu_buf, sizeof gpu_buf);
    if (!job || !*job) {
        fprintf(stderr, "gpuwatch progress: no job: give --job ID or set GPUWATCH_JOB\n");
        return GW_EXIT_USAGE;
    }
    if (!gpu || !*gpu) {
        fprintf(stderr, "gpuwatch progress: no GPU: give --gpu GPU or set GPUWATCH_GPUS / "
                        "CUDA_VISIBLE_DEVICES\n");
        return GW_EXIT_USAGE;
    }
    gw_progress rec;
    gw_error err;
    gw_error_clear(&err);
    if (gw_progress_fill(&rec, job, gpu, done, total, o.unit, o.message, o.pid, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch progress: %s\n", err.message);
        return GW_EXIT_USAGE;
    }
    if (o.daemon)
        return send_daemon(o.daemon, o.token && *o.token ? o.token : getenv("GPUWATCH_TOKEN"),
                           &rec);
    if (o.dir)
        return send_dir(o.dir, o.dir, &rec);
    if (o.local) {
        const char *env = getenv("GPUWATCH_PROGRESS");
        if (env && strncmp(env, "dir:", 4) == 0 && env[4])
            return send_dir(env + 4, env + 4, &rec);
        return send_dir(NULL, NULL, &rec);
    }
    return send_discovered(&o, &rec);
}
