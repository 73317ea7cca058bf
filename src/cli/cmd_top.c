/* cmd_top.c — `gpuwatch top`: the live dashboard.
 *
 * Owns: the command line, the sources of a frame (an in-process sampler
 * with its history rings and event stream, or a daemon read over HTTP with
 * --connect; job progress records), the main
 * loop (build a model, draw it, wait for a key or the next tick) and what
 * keys do to the UI state (sort, filter, selection, kill confirmation).
 * The frame's data is top/model.h, drawing top/render.h, keys top/input.h.
 *
 * Modes: a terminal that can address the cursor gets the full screen;
 * otherwise (stdout not a TTY, TERM=dumb) and with --once, plain lines, one
 * per GPU per interval (gw__top_print_plain), no escape codes.
 *
 * Invariants:
 *  1. The terminal is restored (gw__top_screen_close) on every way out of
 *     the screen loop; Ctrl-C arrives as a key (raw mode) and quits.
 *  2. A process is signalled only after a confirmation naming the pid, the
 *     signal and the command, and only when kill(pid, 0) says we may: the
 *     first confirmation sends SIGTERM, a later one for the same pid SIGKILL.
 *  3. The model is rebuilt once per interval (a new snapshot) or when the
 *     filter or the size changed; keys in between redraw the same model.
 *  4. Local sources sample no host figures (CPU %, resident memory) for
 *     processes: top reads them itself for the rows on screen (every row
 *     when sorting by one of them), one /proc read per row per new
 *     snapshot; --connect shows the daemon's. Reading every process every
 *     second was most of top's CPU time with a few hundred processes.
 */
#include "backends/procinfo.h"
#include "cli/cli.h"
#include "core/util.h"
#include "progress/progress.h"
#include "sampler/sampler.h"
#include "top/input.h"
#include "top/model.h"
#include "top/remote.h"
#include "top/render.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOP_EVENTS 64 /* events kept for the log pane */

static void top_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch top [--interval MS] [--once] [--no-color] [--connect URL] [OPTIONS]\n"
            "\n"
            "A live dashboard of every GPU: per GPU a header (name, index, utilisation\n"
            "and memory bars with used/total, temperature against its slowdown\n"
            "threshold, power against its limit, fan, clocks, P-state, lost/stale with\n"
            "the age of its last sample), history charts of utilisation and memory,\n"
            "job progress bars, the processes using the GPUs (pid, user, GPU, GPU\n"
            "memory, SM %%, CPU %%, host memory, model, command) and the event log\n"
            "(memory pressure, GPU lost, thermal slowdown, ...) with a banner for the\n"
            "newest.\n"
            "\n"
            "When standard output is not a terminal, or TERM is dumb, or with --once,\n"
            "prints one line per GPU per interval instead, with no escape codes:\n"
            "  gpu=0 name=\"...\" util=5%% mem=4096/24564MiB temp=38C slowdown=87C\n"
            "  power=35.1W limit=450.0W fan=30%% pstate=P8 state=ok age=0.0s procs=2\n"
            "(one line; N/A for what the GPU does not report).\n"
            "\n"
            "Options:\n"
            "  --interval MS         refresh (and sampling) interval in milliseconds\n"
            "                        (100..60000; default 1000)\n"
            "  --once                print one frame of plain lines and exit\n"
            "  --no-color            no colours (also when NO_COLOR is set)\n"
            "  --connect URL         read a running daemon (http://HOST:PORT, this machine)\n"
            "                        instead of the local sources: /gpu/metrics,\n"
            "                        /gpu/processes, and its /events stream followed\n"
            "%s"
            "  -h, --help            this text\n"
            "\n"
            "Keys: F1/? help, arrows/PgUp/PgDn/Home/End select, F6/s sort column,\n"
            "I invert the order, F4// filter, F9/k signal the selected process\n"
            "(SIGTERM, then SIGKILL; asks first), Ctrl-L redraw, F10/q quit.\n"
            "The mouse selects (click) and scrolls (wheel).\n"
            "\n"
            "Without UTF-8 in the locale (LANG=C) it draws with ASCII only.\n"
            "\n"
            "Exit status: 0 ok, 1 error, 2 usage; with --once 3 when a GPU is lost,\n"
            "in error or stale.\n",
            gw_cli_source_options_help);
}

typedef struct top_opts {
    gw_config cfg;
    unsigned interval_ms;
    bool once, no_color;
    const char *connect; /* daemon URL; NULL: local sources */
} top_opts;

/* Parses argv into o: GW_EXIT_OK to go on, else the exit code (-1 help). */
static int parse_args(int argc, char **argv, top_opts *o)
{
    memset(o, 0, sizeof *o);
    gw_config_init(&o->cfg);
    o->interval_ms = 1000;
    o->cfg.process_host_stats = false; /* invariant 4 */
    o->cfg.skip_host = true;           /* top shows no host CPU/RAM: not read each second */
    enum { O_INTERVAL = 1, O_ONCE, O_NO_COLOR, O_CONNECT };
    static const gw_opt opts[] = {
        {"--interval", NULL, "MS", O_INTERVAL},
        {"--connect", NULL, "URL", O_CONNECT},
        {"--once", NULL, NULL, O_ONCE},
        {"--no-color", NULL, NULL, O_NO_COLOR},
        {NULL, NULL, NULL, 0},
    };
    const gw_opt *const tables[] = {opts, gw_cli_source_opts, NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "top", argc, argv, tables, top_usage);
    for (int id; (id = gw_cli_next(&p)) != GW_CLI_DONE;) {
        if (id == GW_CLI_EXIT_OK)
            return -1;
        if (id == GW_CLI_EXIT_USAGE)
            return GW_EXIT_USAGE;
        int r = gw_cli_source_apply(&p, id, &o->cfg);
        if (r < 0)
            return GW_EXIT_USAGE;
        if (r > 0)
            continue;
        if (id == O_INTERVAL) {
            uint64_t v;
            gw_error why;
            if (gw__parse_uint(p.scan.value, 100, 60000, &v, &why) != GW_OK)
                return gw_cli_bad_value(&p, &why), GW_EXIT_USAGE;
            o->interval_ms = (unsigned)v;
        } else if (id == O_ONCE) {
            o->once = true;
        } else if (id == O_NO_COLOR) {
            o->no_color = true;
        } else if (id == O_CONNECT) {
            o->connect = p.scan.value;
        } else {
            fprintf(stderr, "gpuwatch top: unexpected argument '%s'\n", p.scan.value);
            return GW_EXIT_USAGE;
        }
    }
    const char *nc = getenv("NO_COLOR");
    if (nc && nc[0])
        o->no_color = true;
    return GW_EXIT_OK;
}

/* One snapshot for --once: a sample of the local sources, or the daemon's
 * current one. Returns an exit code; *out set on GW_EXIT_OK. */
static int once_snapshot(const top_opts *o, gw_snapshot **out)
{
    gw_error err;
    gw_error_clear(&err);
    if (o->connect) {
        gw__top_remote *r;
        if (gw__top_remote_open(&r, o->connect, NULL, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch top: --connect: %s\n", err.message);
            return GW_EXIT_USAGE;
        }
        int rc = gw__top_remote_snapshot(r, 10000, out, &err);
        gw__top_remote_free(r);
        if (rc != GW_OK)
            fprintf(stderr, "gpuwatch top: %s\n", err.message);
        return rc == GW_OK ? GW_EXIT_OK : GW_EXIT_ERROR;
    }
    gw_monitor *mon;
    if (gw_monitor_open(&mon, &o->cfg, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch top: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    int rc = gw_monitor_sample(mon, out, &err);
    gw_monitor_close(mon);
    if (rc != GW_OK) {
        fprintf(stderr, "gpuwatch top: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    return GW_EXIT_OK;
}

/* --once: one snapshot, one frame of plain lines. */
static int run_once(const top_opts *o)
{
    gw_snapshot *snap = NULL;
    int rc = once_snapshot(o, &snap);
    if (rc != GW_EXIT_OK)
        return rc;
    gw__top_inputs in = {.snap = snap, .now_ns = gw__now_real_ns()};
    gw__top_view view = {.sort = GW__TOP_COL_GPU_MEM};
    gw__top_model m;
    rc = gw__top_model_build(&m, &in, &view);
    int exit_code = GW_EXIT_OK;
    if (rc == GW_OK) {
        gw__top_print_plain(stdout, &m);
        for (size_t i = 0; i < m.n_gpus; i++)
            if (m.gpus[i].dev->state != GW_DEVICE_OK)
                exit_code = GW_EXIT_DEGRADED;
        gw__top_model_release(&m);
    } else {
        fprintf(stderr, "gpuwatch top: out of memory\n");
        exit_code = GW_EXIT_ERROR;
    }
    gw_snapshot_release(snap);
    return exit_code;
}

/* Starts the in-process sampler (the daemon's, with history and events). */
static int start_sampler(const top_opts *o, gw__sampler **out)
{
    gw_error err;
    gw_error_clear(&err);
    gw_monitor *mon;
    if (gw_monitor_open(&mon, &o->cfg, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch top: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    gw__sampler_config sc;
    gw__sampler_config_default(&sc);
    sc.interval_ms = o->interval_ms;
    sc.deadline_ms = o->interval_ms * 2 > 2000 ? o->interval_ms * 2 : 2000;
    sc.history_seconds = 600;
    if (gw__sampler_start(out, mon, NULL, &sc, NULL, NULL, NULL, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch top: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    return GW_EXIT_OK;
}

/* Where frames come from: the in-process sampler, or a daemon (--connect)
 * read each tick, whose snapshots feed history rings of our own (the
 * charts start when top does). */
typedef struct top_source {
    gw__sampler *sampler;   /* local */
    gw__top_remote *remote; /* --connect */
    gw__history *history;   /* remote: ours */
    gw_snapshot *last;      /* remote: the last snapshot read */
    unsigned timeout_ms;
    int64_t next_follow;    /* remote: when to (re)open the /events stream */
    char error[300];        /* remote: the last failure, "" none */
} top_source;

#define FOLLOW_RETRY_NS (5 * 1000000000LL)

/* The stream could not be opened or broke: say so, retry in 5 s. */
static void stream_failed(top_source *src, const char *why)
{
    snprintf(src->error, sizeof src->error, "events stream: %.240s (polling instead)", why);
    src->next_follow = gw__now_mono_ns() + FOLLOW_RETRY_NS;
}

/* Remote: opens the daemon's /events stream when it is not open and it is
 * time to try; a failure is said in src->error and retried in 5 s (frames
 * are then read every interval, events polled). */
static void source_follow(top_source *src)
{
    if (!src->remote || gw__top_remote_stream_fd(src->remote) >= 0 ||
        gw__now_mono_ns() < src->next_follow)
        return;
    gw_error err;
    gw_error_clear(&err);
    if (gw__top_remote_follow(src->remote, (int)src->timeout_ms, &err) != GW_OK)
        stream_failed(src, err.message);
}

static int source_open(const top_opts *o, top_source *src)
{
    memset(src, 0, sizeof *src);
    if (!o->connect)
        return start_sampler(o, &src->sampler);
    gw_error err;
    gw_error_clear(&err);
    src->timeout_ms = o->interval_ms * 2 > 2000 ? o->interval_ms * 2 : 2000;
    if (gw__top_remote_open(&src->remote, o->connect, NULL, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch top: --connect: %s\n", err.message);
        return GW_EXIT_USAGE;
    }
    if (gw__history_create(&src->history, 600000 / o->interval_ms + 1, &err) != GW_OK ||
        gw__top_remote_snapshot(src->remote, (int)src->timeout_ms, &src->last, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch top: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    gw__history_record(src->history, src->last);
    return GW_EXIT_OK;
}

static void source_close(top_source *src)
{
    gw__sampler_stop(src->sampler, 2000);
    gw__top_remote_free(src->remote);
    gw__history_free(src->history);
    gw_snapshot_release(src->last);
}

/* The newest snapshot (a new reference), or NULL. Local: waits for the
 * sampler's first round (after its deadline it publishes a stale copy
 * anyway). Remote: reads the daemon; on failure keeps the last snapshot,
 * its devices ageing, and src->error says why. */
static gw_snapshot *source_current(top_source *src)
{
    if (src->remote) {
        gw_error err;
        gw_error_clear(&err);
        gw_snapshot *snap;
        if (gw__top_remote_snapshot(src->remote, (int)src->timeout_ms, &snap, &err) == GW_OK) {
            gw__history_record(src->history, snap);
            gw_snapshot_release(src->last);
            src->last = snap;
            src->error[0] = '\0';
        } else {
            gw__strlcpy(src->error, err.message, sizeof src->error);
        }
        return src->last ? gw_snapshot_acquire(src->last) : NULL;
    }
    for (int i = 0; i < 6000; i++) {
        gw_snapshot *snap = gw__sampler_current(src->sampler);
        if (snap)
            return snap;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static gw__history *source_history(top_source *src)
{
    return src->remote ? src->history : gw__sampler_history(src->sampler);
}

static size_t source_events(top_source *src, uint64_t after, gw__event *out, size_t max)
{
    if (src->remote)
        return gw__top_remote_events(src->remote, (int)src->timeout_ms, after, out, max);
    return gw__events_since(gw__sampler_events(src->sampler), after, out, max);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Plain lines every interval until killed (not a terminal). */
static int run_plain(const top_opts *o, top_source *src)
{
    for (;;) {
        gw_snapshot *snap = source_current(src);
        if (!snap)
            return GW_EXIT_ERROR;
        {
            gw__top_inputs in = {.snap = snap, .now_ns = gw__now_real_ns()};
            gw__top_view view = {.sort = GW__TOP_COL_GPU_MEM};
            gw__top_model m;
            if (gw__top_model_build(&m, &in, &view) == GW_OK) {
                gw__top_print_plain(stdout, &m);
                gw__top_model_release(&m);
            }
        }
        gw_snapshot_release(snap);
        if (ferror(stdout))
            return GW_EXIT_ERROR;
        sleep_ms(o->interval_ms);
    }
}

/* The interactive session's state (the UI and what carries across frames). */
typedef struct top_session {
    const top_opts *o;
    top_source *src;
    gw__top_caps caps;
    gw__top_view view;
    gw__top_ui ui;
    gw__top_layout layout;
    gw__top_model model;
    gw__procinfo *host;   /* local: host figures of the rows shown */
    gw__event events[TOP_EVENTS]; /* newest last */
    size_t n_events;
    uint64_t last_event_seq, last_snap_seq;
    int64_t next_build_mono, last_build_mono;
    bool dirty;           /* rebuild the model at the next turn */
    bool events_primed;   /* the event history was read once */
    char filter_edit[64];
    char prompt[384];
    char status[256];
    uint32_t kill_pid;    /* the process the confirmation is about */
    int kill_sig;
    uint32_t termed_pid;  /* last pid sent SIGTERM: next time SIGKILL */
} top_session;

/* Appends events (oldest first) to the log, the oldest dropped when full. */
static void add_events(top_session *t, const gw__event *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i].seq <= t->last_event_seq)
            continue; /* the stream and a poll may both carry it */
        if (t->n_events == TOP_EVENTS) {
            memmove(t->events, t->events + 1, (TOP_EVENTS - 1) * sizeof *t->events);
            t->n_events--;
        }
        t->events[t->n_events++] = buf[i];
        t->last_event_seq = buf[i].seq;
    }
}

/* Events since the last one seen: from the sampler, or polled from the
 * daemon when its stream is not followed. */
static void pull_events(top_session *t)
{
    if (t->events_primed && t->src->remote && gw__top_remote_stream_fd(t->src->remote) >= 0)
        return; /* they come on the stream */
    t->events_primed = true;
    gw__event buf[TOP_EVENTS];
    size_t n = source_events(t->src, t->last_event_seq, buf, TOP_EVENTS);
    add_events(t, buf, n);
}

/* The /events stream has input: its events go to the log; a publication
 * schedules a rebuild (at most one per interval). Returns whether the
 * screen changed (events logged). */
static bool read_stream(top_session *t)
{
    gw__event buf[TOP_EVENTS];
    bool published = false;
    gw_error err;
    gw_error_clear(&err);
    size_t n = gw__top_remote_stream_read(t->src->remote, buf, TOP_EVENTS, &published, &err);
    add_events(t, buf, n);
    if (gw__top_remote_stream_fd(t->src->remote) < 0)
        stream_failed(t->src, err.message);
    if (published) {
        int64_t earliest = t->last_build_mono + (int64_t)t->o->interval_ms * 1000000LL;
        if (earliest < t->next_build_mono)
            t->next_build_mono = earliest;
    }
    return n > 0;
}

/* The live job progress records into a new array (*out, caller frees;
 * NULL when none): the daemon's (--connect), else the no-daemon store of
 * this user (docs/progress.md). A store that is missing, or unsafe (not
 * ours, group/other-writable), shows none: top only reads it. */
static void source_progress(top_source *src, gw_progress **out, size_t *n)
{
    gw_error err;
    gw_error_clear(&err);
    *out = NULL;
    *n = 0;
    if (src->remote) {
        gw__top_remote_progress(src->remote, (int)src->timeout_ms, out, n, &err);
        return;
    }
    char dir[1024], root[1024];
    uid_t uid = geteuid();
    if (gw_progress_dir_default(getenv("GPUWATCH_PROGRESS_DIR"), getenv("XDG_RUNTIME_DIR"), uid,
                                dir, root, sizeof dir, &err) != GW_OK ||
        gw_progress_dir_prepare(dir, root, uid, false, &err) != GW_OK)
        return;
    gw_progress_dir d = {.path = dir};
    gw_progress_dir_list(&d, gw__now_real_ns(), out, n, &err);
}

/* Host CPU % and memory of rows [from, to) that have none yet (invariant
 * 4). Returns whether any row gained them. */
static bool fill_host(top_session *t, size_t from, size_t to)
{
    bool filled = false;
    for (size_t i = from; t->host && i < to && i < t->model.n_procs; i++) {
        gw__top_proc *r = &t->model.procs[i];
        if (r->has_cpu || r->has_host_mem)
            continue;
        gw_process p = {.pid = r->pid};
        gw__procinfo_fill(t->host, &p);
        r->has_host_mem = gw_process_has(&p, GW_PROC_HOST_MEMORY);
        r->host_mem = p.host_memory;
        r->has_cpu = gw_process_has(&p, GW_PROC_CPU_UTIL);
        r->cpu = p.cpu_util;
        filled |= r->has_host_mem || r->has_cpu;
    }
    return filled;
}

/* The rows the last layout had on screen (a screen's height before the
 * first one). */
static bool fill_host_visible(top_session *t)
{
    int w, h;
    gw__top_screen_size(&w, &h);
    size_t rows = t->layout.table_rows > 0 ? (size_t)t->layout.table_rows : (size_t)(h > 0 ? h : 60);
    size_t top = t->ui.top > 0 ? (size_t)t->ui.top : 0;
    return fill_host(t, top, top + rows);
}

/* Sorts the rows by the view; sorting by a host figure reads it for every
 * row first (invariant 4). */
static void sort_model(top_session *t)
{
    if (t->view.sort == GW__TOP_COL_CPU || t->view.sort == GW__TOP_COL_HOST_MEM)
        fill_host(t, 0, t->model.n_procs);
    gw__top_model_sort(&t->model, &t->view);
}

/* Rebuilds the model from the source's newest snapshot. */
static void rebuild(top_session *t)
{
    gw_snapshot *snap = source_current(t->src);
    if (!snap)
        return;
    if (t->src->error[0])
        gw__strlcpy(t->status, t->src->error, sizeof t->status);
    pull_events(t);
    int w, h;
    gw__top_screen_size(&w, &h);
    gw_progress *prog = NULL;
    size_t n_prog = 0;
    source_progress(t->src, &prog, &n_prog);
    gw__top_inputs in = {
        .snap = snap,
        .history = source_history(t->src),
        .history_seconds = 300,
        .history_points = snap->n_devices >= GW__TOP_COMPACT_GPUS ? 0 : gw__top_chart_points(w),
        .events = t->events,
        .n_events = t->n_events,
        .progress = prog,
        .n_progress = n_prog,
        .now_ns = gw__now_real_ns(),
    };
    gw__top_model next;
    if (gw__top_model_build(&next, &in, &t->view) == GW_OK) {
        gw__top_model_release(&t->model);
        t->model = next;
    }
    if (t->host && snap->seq != t->last_snap_seq)
        gw__procinfo_begin_round(t->host); /* CPU % spans one sample interval */
    if (t->view.sort == GW__TOP_COL_CPU || t->view.sort == GW__TOP_COL_HOST_MEM)
        sort_model(t);
    t->last_snap_seq = snap->seq;
    gw_snapshot_release(snap);
    free(prog);
    t->dirty = false;
    /* following the daemon's stream, its publications bring the next
     * rebuild (read_stream); the timer is the fallback that shows a silent
     * daemon's data ageing */
    source_follow(t->src);
    bool following = t->src->remote && gw__top_remote_stream_fd(t->src->remote) >= 0;
    t->last_build_mono = gw__now_mono_ns();
    t->next_build_mono =
        t->last_build_mono + (int64_t)t->o->interval_ms * 1000000LL * (following ? 3 : 1);
}

/* k / F9: checks we may signal the selected process, then asks. */
static void ask_kill(top_session *t)
{
    if (t->model.n_procs == 0 || t->ui.selected < 0 ||
        (size_t)t->ui.selected >= t->model.n_procs) {
        snprintf(t->status, sizeof t->status, "no process selected");
        return;
    }
    const gw__top_proc *r = &t->model.procs[t->ui.selected];
    if (r->pid == 0 || kill((pid_t)r->pid, 0) != 0) {
        snprintf(t->status, sizeof t->status, "cannot signal PID %u: %s", r->pid,
                 errno == EPERM ? "not permitted (another user's process)"
                 : errno == ESRCH ? "no such process here"
                                  : strerror(errno));
        return;
    }
    t->kill_pid = r->pid;
    t->kill_sig = t->termed_pid == r->pid ? SIGKILL : SIGTERM;
    snprintf(t->prompt, sizeof t->prompt, "Send %s to PID %u (%.200s)?",
             t->kill_sig == SIGKILL ? "SIGKILL" : "SIGTERM", r->pid, r->command);
    t->ui.mode = GW__TOP_MODE_CONFIRM;
}

static void do_kill(top_session *t)
{
    const char *name = t->kill_sig == SIGKILL ? "SIGKILL" : "SIGTERM";
    if (kill((pid_t)t->kill_pid, t->kill_sig) == 0) {
        snprintf(t->status, sizeof t->status, "sent %s to PID %u%s", name, t->kill_pid,
                 t->kill_sig == SIGTERM ? " (k again for SIGKILL)" : "");
        t->termed_pid = t->kill_sig == SIGTERM ? t->kill_pid : 0;
    } else {
        snprintf(t->status, sizeof t->status, "%s to PID %u failed: %s", name, t->kill_pid,
                 strerror(errno));
    }
    t->dirty = true;
}

/* Keys of the filter prompt and the confirmation. */
static void prompt_action(top_session *t, gw__top_action a, int ch)
{
    size_t len = strlen(t->filter_edit);
    if (t->ui.mode == GW__TOP_MODE_CONFIRM) {
        if (a == GW__TOP_ACT_ACCEPT)
            do_kill(t);
        else if (a != GW__TOP_ACT_RESIZE)
            snprintf(t->status, sizeof t->status, "cancelled: PID %u not signalled", t->kill_pid);
        if (a != GW__TOP_ACT_RESIZE)
            t->ui.mode = GW__TOP_MODE_NORMAL;
        return;
    }
    if (a == GW__TOP_ACT_TEXT && len + 1 < sizeof t->filter_edit) {
        t->filter_edit[len] = (char)ch;
        t->filter_edit[len + 1] = '\0';
    } else if (a == GW__TOP_ACT_BACKSPACE && len) {
        t->filter_edit[len - 1] = '\0';
    } else if (a == GW__TOP_ACT_ACCEPT || a == GW__TOP_ACT_CANCEL) {
        if (a == GW__TOP_ACT_CANCEL)
            t->filter_edit[0] = '\0';
        gw__strlcpy(t->view.filter, t->filter_edit, sizeof t->view.filter);
        t->ui.mode = GW__TOP_MODE_NORMAL;
        t->ui.selected = t->ui.top = 0;
        t->dirty = true;
    }
}

/* Applies one key; returns false to quit. */
static bool handle_key(top_session *t, int key, int mouse_y)
{
    if (key == 3)
        return false; /* Ctrl-C in raw mode */
    if (key == GW__TOP_KEY_CLICK) {
        long row = gw__top_click_row(mouse_y, t->layout.table_y, t->ui.top,
                                     t->layout.table_rows, (long)t->model.n_procs);
        if (row >= 0)
            t->ui.selected = row;
        return true;
    }
    int ch = 0;
    gw__top_action a = gw__top_key_action(key, t->ui.mode, &ch);
    if (t->ui.mode == GW__TOP_MODE_FILTER || t->ui.mode == GW__TOP_MODE_CONFIRM) {
        prompt_action(t, a, ch);
        return true;
    }
    t->status[0] = '\0';
    switch (a) {
    case GW__TOP_ACT_QUIT: return false;
    case GW__TOP_ACT_HELP:
        t->ui.mode = t->ui.mode == GW__TOP_MODE_HELP ? GW__TOP_MODE_NORMAL : GW__TOP_MODE_HELP;
        break;
    case GW__TOP_ACT_SORT_NEXT:
    case GW__TOP_ACT_SORT_PREV:
        t->view.sort = (gw__top_column)((t->view.sort + (a == GW__TOP_ACT_SORT_NEXT ? 1 : -1) +
                                         GW__TOP_COL_COUNT) % GW__TOP_COL_COUNT);
        sort_model(t);
        break;
    case GW__TOP_ACT_SORT_REVERSE:
        t->view.reverse = !t->view.reverse;
        sort_model(t);
        break;
    case GW__TOP_ACT_FILTER:
        gw__strlcpy(t->filter_edit, t->view.filter, sizeof t->filter_edit);
        t->ui.mode = GW__TOP_MODE_FILTER;
        break;
    case GW__TOP_ACT_ESCAPE:
        if (t->view.filter[0]) {
            t->view.filter[0] = '\0';
            t->dirty = true;
        }
        break;
    case GW__TOP_ACT_KILL: ask_kill(t); break;
    case GW__TOP_ACT_RESIZE: t->dirty = true; break;
    default:
        t->ui.selected = gw__top_move(t->ui.selected, a, (long)t->model.n_procs,
                                      t->layout.table_rows);
        break;
    }
    return true;
}

static int run_screen(top_session *t)
{
    t->view.sort = GW__TOP_COL_GPU_MEM;
    t->ui.view = &t->view;
    t->ui.filter_edit = t->filter_edit;
    t->ui.prompt = t->prompt;
    t->ui.status = t->status;
    t->ui.source = t->src->remote ? gw__top_remote_url(t->src->remote) : "local";
    t->ui.interval_ms = t->o->interval_ms;
    const char *proc_root = t->o->cfg.proc_root ? t->o->cfg.proc_root : getenv("GPUWATCH_PROC_ROOT");
    if (!t->src->remote && gw__procinfo_open(&t->host, proc_root, GW__PROCINFO_HOST, NULL) != GW_OK)
        t->host = NULL; /* out of memory: N/A, as for a process we may not read */
    source_follow(t->src); /* before the first rebuild reads the event history: no gap */
    rebuild(t);
    for (bool running = true, redraw = true; running;) {
        if (t->dirty || gw__now_mono_ns() >= t->next_build_mono) {
            rebuild(t);
            redraw = true;
        }
        if (redraw) {
            fill_host_visible(t);
            gw__top_draw(&t->model, &t->ui, &t->caps, &t->layout);
            if (fill_host_visible(t)) /* the draw scrolled to rows not read yet */
                gw__top_draw(&t->model, &t->ui, &t->caps, &t->layout);
            redraw = false;
        }
        int64_t wait = (t->next_build_mono - gw__now_mono_ns()) / 1000000LL;
        int mouse_y = -1;
        int fd = t->src->remote ? gw__top_remote_stream_fd(t->src->remote) : -1;
        int key = gw__top_screen_key(wait < 0 ? 0 : (int)wait, fd, &mouse_y);
        if (key == GW__TOP_KEY_FD) {
            redraw = read_stream(t);
        } else if (key >= 0) {
            running = handle_key(t, key, mouse_y);
            redraw = true;
        }
    }
    gw__top_model_release(&t->model);
    gw__procinfo_close(t->host);
    return GW_EXIT_OK;
}

int gw_cmd_top(int argc, char **argv)
{
    top_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != GW_EXIT_OK)
        return rc < 0 ? GW_EXIT_OK : rc;
    if (o.once)
        return run_once(&o);
    top_source src;
    rc = source_open(&o, &src);
    if (rc != GW_EXIT_OK) {
        source_close(&src);
        return rc;
    }
    gw__top_caps caps;
    bool screen = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO) &&
                  gw__top_screen_open(o.no_color, &caps) == GW_OK;
    if (!screen) {
        rc = run_plain(&o, &src);
    } else {
        top_session *t = calloc(1, sizeof *t);
        if (t) {
            t->o = &o;
            t->src = &src;
            t->caps = caps;
            rc = run_screen(t);
            free(t);
        } else {
            rc = GW_EXIT_ERROR;
        }
        gw__top_screen_close();
    }
    source_close(&src);
    return rc;
}
