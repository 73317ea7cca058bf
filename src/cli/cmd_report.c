/* cmd_report.c — `gpuwatch report`: one sample of every source, printed for
 * people (default) or as JSON (--json, schema in docs/report-json.md).
 * Unavailable values print as "N/A", never as 0.
 *
 * Owns: report's options, the human text, the sample under a deadline, and
 * --watch (nvidia-smi -l): frames from one monitor until SIGINT/SIGTERM,
 * the model servers asked each frame (--ollama; models/servers.h) and
 * their models tied to processes. Which GPUs --id shows is
 * cli/gpu_select.c. --cluster prints the cluster view instead
 * (cli/cluster_opts.h, fleet/cluster.h). */
#include "cli/cli.h"
#include "cli/cluster_opts.h"
#include "cli/gpu_select.h"
#include "core/util.h"
#include "models/servers.h"
#include "render/snapshot_json.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void report_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch report [--json] [--pretty] [--watch SEC] [--id GPU[,GPU]]\n"
            "                       [OPTIONS]\n"
            "\n"
            "Reads every GPU once and prints, per GPU: name, VRAM total/used/free,\n"
            "utilisation, temperature, power, clocks and the processes using it;\n"
            "then a summary of the pool, the host's CPU and RAM, and the sources\n"
            "read (with the reason any of them failed). Without a usable GPU it\n"
            "says \"CPU-only mode\" with the reason and exits 0.\n"
            "\n"
            "Options:\n"
            "  --json                machine-readable output (schema gpuwatch.report/2)\n"
            "  --pretty              indent the JSON\n"
            "  --timeout SEC         give up when the sources have not answered after SEC\n"
            "                        seconds, naming the one that hangs (default 15;\n"
            "                        0 waits for ever)\n"
            "  -l, --watch SEC       report again every SEC seconds (decimals allowed,\n"
            "                        at least 0.1) until Ctrl-C / SIGTERM (exit 0);\n"
            "                        a terminal is cleared between frames, elsewhere\n"
            "                        frames are separated by a blank line; with\n"
            "                        --json one document per line (JSON Lines)\n"
            "  -i, --id GPU[,GPU]    only these GPUs: index, UUID or PCI bus id\n"
            "                        (\"0,2\", \"GPU-5e1c...\", \"07:00.0\"); one that\n"
            "                        is not here is a usage error (exit 2)\n"
            "  --ollama URL[,URL]    Ollama servers whose loaded models to list (GET\n"
            "                        /api/ps: size, VRAM, GPU/CPU/split, expiry) and\n"
            "                        tie to the runner processes; each one that does\n"
            "                        not answer within 2 s is listed as down with the\n"
            "                        reason. Default: " GW__OLLAMA_DEFAULT_URL ", listed\n"
            "                        only when it answers; \"none\": ask none\n"
            "  --llama-server URL[,URL]\n"
            "                        llama.cpp servers to ask (GET /health, /props,\n"
            "                        /slots: model, context, slots busy), besides every\n"
            "                        llama-server among the GPU processes (at the host\n"
            "                        and port of its command line); \"none\": ask\n"
            "                        none, not even those\n"
            "  --probe               an Ollama server with no model loaded is asked for\n"
            "                        one embedding with its smallest model (POST\n"
            "                        /api/embed, up to 30 s), then says where that model\n"
            "                        went: \"GPU (inferred)\" or \"CPU (inferred)\", timed;\n"
            "                        it loads a model on that server (off by default)\n"
            "%s"
            "  -h, --help            this text\n"
            "%s"
            "\n"
            "Exit status: 0 ok (CPU-only included; --watch stopped by a signal),\n"
            "1 error, 2 usage, 3 a GPU shown is lost, in error or stale (--cluster:\n"
            "or a node is unreachable).\n",
            gw_cli_source_options_help, gw_cli_cluster_options_help);
}

#define MODEL_SERVER_TIMEOUT_MS 2000
#define PROBE_TIMEOUT_MS 30000 /* loading a model for the probe takes seconds */
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)

/* Formats a value or "N/A" into buf; returns buf. */
static const char *fmt_or_na(char *buf, size_t cap, bool ok, const char *fmt, double v)
{
    if (ok)
        snprintf(buf, cap, fmt, v);
    else
        gw__strlcpy(buf, "N/A", cap);
    return buf;
}

/* in: the indent of the device's lines ("  "; a MIG device's "      ") */
static void print_memory(const gw_device *d, const char *in)
{
    const gw_sample *s = &d->sample;
    bool t = gw_sample_has(s, GW_METRIC_MEM_TOTAL), u = gw_sample_has(s, GW_METRIC_MEM_USED),
         f = gw_sample_has(s, GW_METRIC_MEM_FREE);
    char a[32], b[32], c[32], e[32], g[32], h[32];
    printf("%sVRAM     used %s / total %s MiB (%s / %s GiB), free %s MiB (%s GiB)", in,
           fmt_or_na(a, sizeof a, u, "%.0f", (double)s->mem_used / MIB),
           fmt_or_na(b, sizeof b, t, "%.0f", (double)s->mem_total / MIB),
           fmt_or_na(c, sizeof c, u, "%.2f", (double)s->mem_used / GIB),
           fmt_or_na(e, sizeof e, t, "%.2f", (double)s->mem_total / GIB),
           fmt_or_na(g, sizeof g, f, "%.0f", (double)s->mem_free / MIB),
           fmt_or_na(h, sizeof h, f, "%.2f", (double)s->mem_free / GIB));
    if (gw_sample_has(s, GW_METRIC_MEM_RESERVED))
        printf(", reserved %.0f MiB", (double)s->mem_reserved / MIB);
    if (d->info.memory_api[0])
        printf(" [%s]", d->info.memory_api);
    printf("\n");
    if (gw_sample_has(s, GW_METRIC_GTT_TOTAL))
        printf("%sGTT      used %s / total %.0f MiB\n", in,
               fmt_or_na(a, sizeof a, gw_sample_has(s, GW_METRIC_GTT_USED), "%.0f",
                         (double)s->gtt_used / MIB),
               (double)s->gtt_total / MIB);
}

/* One HEALTH line, only when a reliability counter says something is wrong
 * (a critical Xid, an uncorrected ECC error, a pending or failed row remap);
 * the figures themselves are in --json. */
static void print_health(const gw_sample *s)
{
    char line[256];
    gw_strbuf sb;
    gw__strbuf_init(&sb, sizeof line);
    if (gw_sample_has(s, GW_METRIC_XID) && s->xid_events > 0)
        gw__strbuf_printf(&sb, "last Xid %u (%llu seen)", s->xid_last,
                          (unsigned long long)s->xid_events);
    if (gw_sample_has(s, GW_METRIC_ECC_ERRORS) && s->ecc_uncorrected > 0)
        gw__strbuf_printf(&sb, "%s%llu uncorrected ECC errors", sb.len ? "; " : "",
                          (unsigned long long)s->ecc_uncorrected);
    if (gw_sample_has(s, GW_METRIC_ROW_REMAP) && s->remap_failure)
        gw__strbuf_printf(&sb, "%srow remap FAILED (the GPU needs service)", sb.len ? "; " : "");
    else if (gw_sample_has(s, GW_METRIC_ROW_REMAP) && s->remap_pending)
        gw__strbuf_printf(&sb, "%srow remap pending (reset the GPU)", sb.len ? "; " : "");
    if (sb.len && !sb.failed)
        printf("  HEALTH   %s\n", sb.data);
    gw__strbuf_release(&sb);
}

static void print_processes(const gw_snapshot *snap, const gw_device *d, const char *in);

static void print_device(const gw_snapshot *snap, const gw_device *d)
{
    const gw_sample *s = &d->sample;
    char a[32], b[32], c[32], e[32];
    printf("GPU %u  %s  [%s]  %s\n", d->info.index, d->info.name[0] ? d->info.name : "(unnamed)",
           d->info.source, d->info.pci_bus_id[0] ? d->info.pci_bus_id : "");
    if (d->state != GW_DEVICE_OK)
        printf("  STATE    %s%s%s\n", gw_device_state_name(d->state), d->state_reason[0] ? ": " : "",
               d->state_reason);
    if (d->state == GW_DEVICE_LOST)
        return;
    print_memory(d, "  ");
    printf("  util     GPU %s  MEM %s  ENC %s  DEC %s\n",
           fmt_or_na(a, sizeof a, gw_sample_has(s, GW_METRIC_UTIL_GPU), "%.0f%%", s->util_gpu),
           fmt_or_na(b, sizeof b, gw_sample_has(s, GW_METRIC_UTIL_MEM), "%.0f%%", s->util_mem),
           fmt_or_na(c, sizeof c, gw_sample_has(s, GW_METRIC_UTIL_ENC), "%.0f%%", s->util_enc),
           fmt_or_na(e, sizeof e, gw_sample_has(s, GW_METRIC_UTIL_DEC), "%.0f%%", s->util_dec));
    printf("  temp     %s", fmt_or_na(a, sizeof a, gw_sample_has(s, GW_METRIC_TEMP), "%.0f C",
                                      s->temp_mc / 1000.0));
    if (gw_info_has(&d->info, GW_INFO_TEMP_SLOWDOWN))
        printf(" (slowdown %.0f C)", d->info.temp_slowdown_mc / 1000.0);
    printf("   power %s / %s",
           fmt_or_na(a, sizeof a, gw_sample_has(s, GW_METRIC_POWER), "%.1f W", s->power_mw / 1000.0),
           fmt_or_na(b, sizeof b, gw_sample_has(s, GW_METRIC_POWER_LIMIT), "%.1f W",
                     s->power_limit_mw / 1000.0));
    printf("   fan %s   pstate %s\n",
           fmt_or_na(a, sizeof a, gw_sample_has(s, GW_METRIC_FAN), "%.0f%%", s->fan_pct),
           fmt_or_na(b, sizeof b, gw_sample_has(s, GW_METRIC_PSTATE), "P%.0f", s->pstate));
    printf("  clocks   SM %s  GFX %s  MEM %s\n",
           fmt_or_na(a, sizeof a, gw_sample_has(s, GW_METRIC_CLOCK_SM), "%.0f MHz", s->clock_sm_mhz),
           fmt_or_na(b, sizeof b, gw_sample_has(s, GW_METRIC_CLOCK_GRAPHICS), "%.0f MHz",
                     s->clock_graphics_mhz),
           fmt_or_na(c, sizeof c, gw_sample_has(s, GW_METRIC_CLOCK_MEM), "%.0f MHz",
                     s->clock_mem_mhz));
    print_health(s);
    if (gw_sample_has(s, GW_METRIC_MIG_MODE) && (s->mig_mode || s->mig_pending))
        printf("  MIG      %s%s\n", s->mig_mode ? "on" : "off",
               s->mig_pending != s->mig_mode ? (s->mig_pending ? " (on after the next reset)"
                                                               : " (off after the next reset)")
                                             : "");
    bool instances = false; /* then the processes are listed on them */
    for (size_t i = 0; i < snap->n_devices; i++)
        instances |= gw__device_mig_parent(snap, &snap->devices[i]) == d;
    if (!instances)
        print_processes(snap, d, "  ");
}

/* A MIG device, under its GPU: its instance, memory and processes (the
 * GPU's lines give temperature, power and clocks: NVML has them only for
 * the whole GPU). */
static void print_mig_device(const gw_snapshot *snap, const gw_device *d)
{
    const gw_device_info *in = &d->info;
    char sm[32] = "";
    if (in->mig_sm_count)
        snprintf(sm, sizeof sm, "  %u SMs", in->mig_sm_count);
    printf("    MIG %u  %s  GI %u CI %u%s  %s\n", in->index,
           in->mig_profile[0] ? in->mig_profile : "(profile unknown)", in->mig_gpu_instance,
           in->mig_compute_instance, sm, in->uuid);
    if (d->state != GW_DEVICE_OK)
        printf("      STATE    %s%s%s\n", gw_device_state_name(d->state),
               d->state_reason[0] ? ": " : "", d->state_reason);
    if (d->state == GW_DEVICE_LOST)
        return;
    print_memory(d, "      ");
    char a[32], b[32];
    if (gw_sample_has(&d->sample, GW_METRIC_UTIL_GPU))
        printf("      util     GPU %s  MEM %s\n",
               fmt_or_na(a, sizeof a, true, "%.0f%%", d->sample.util_gpu),
               fmt_or_na(b, sizeof b, gw_sample_has(&d->sample, GW_METRIC_UTIL_MEM), "%.0f%%",
                         d->sample.util_mem));
    print_processes(snap, d, "      ");
}

/* The process table of device d, each line indented by in. */
static void print_processes(const gw_snapshot *snap, const gw_device *d, const char *in)
{
    char a[32], b[32];
    bool header = false;
    for (size_t i = 0; i < snap->n_processes; i++) {
        const gw_process *p = &snap->processes[i];
        if (p->device_index != d->info.index)
            continue;
        if (!header) {
            printf("%s%8s %-10s %10s %5s  %-24s %-20s %s\n", in, "PID", "USER", "VRAM", "SM",
                   "OWNER", "MODEL", "COMMAND");
            header = true;
        }
        char owner[128];
        printf("%s%8u %-10s %10s %5s  %-24s %-20s %s\n", in, p->pid,
               gw_process_has(p, GW_PROC_USER) ? p->user : "N/A",
               fmt_or_na(a, sizeof a, gw_process_has(p, GW_PROC_GPU_MEMORY), "%.0f MiB",
                         (double)p->gpu_memory / MIB),
               fmt_or_na(b, sizeof b, gw_process_has(p, GW_PROC_SM_UTIL), "%.0f%%", p->sm_util),
               gw_process_has(p, GW_PROC_OWNER) ? gw__owner_short(&p->owner, owner, sizeof owner)
                                                : "N/A",
               gw_process_has(p, GW_PROC_MODEL) ? p->model : "-",
               gw_process_has(p, GW_PROC_CMDLINE) ? p->cmdline
               : gw_process_has(p, GW_PROC_NAME)  ? p->name
                                                  : "N/A");
    }
    if (!header)
        printf("%sno processes\n", in);
}

static void print_human(const gw_snapshot *s)
{
    if (s->cpu_only)
        printf("CPU-only mode: %s\n", s->cpu_only_reason);
    /* every GPU, its MIG devices under it; a MIG device whose GPU is not in
     * this view (report --id MIG-...) on its own */
    size_t gpus = 0, migs = 0;
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        if (d->info.mig) {
            migs++;
            if (!gw__device_mig_parent(s, d))
                print_mig_device(s, d);
            continue;
        }
        gpus++;
        print_device(s, d);
        for (size_t k = 0; k < s->n_devices; k++)
            if (gw__device_mig_parent(s, &s->devices[k]) == d)
                print_mig_device(s, &s->devices[k]);
    }

    uint64_t total = 0, used = 0, free_b = 0;
    for (size_t i = 0; i < s->n_devices; i++) {
        /* a MIG device's memory is its GPU's: counted there, unless its GPU
         * is not in this view (--id MIG-...) */
        if (gw__device_mig_parent(s, &s->devices[i]))
            continue;
        const gw_sample *x = &s->devices[i].sample;
        if (gw_sample_has(x, GW_METRIC_MEM_TOTAL) && gw_sample_has(x, GW_METRIC_MEM_USED) &&
            gw_sample_has(x, GW_METRIC_MEM_FREE)) {
            total += x->mem_total;
            used += x->mem_used;
            free_b += x->mem_free;
        }
    }
    char mig_note[48] = "";
    if (migs)
        snprintf(mig_note, sizeof mig_note, " (%zu MIG device%s)", migs, migs == 1 ? "" : "s");
    if (gpus == 0 && migs) /* only MIG devices in this view */
        printf("Summary: %zu MIG device%s, VRAM used %.2f / %.2f GiB (%.1f%%), free %.2f GiB\n",
               migs, migs == 1 ? "" : "s", (double)used / GIB, (double)total / GIB,
               total ? 100.0 * (double)used / (double)total : 0.0, (double)free_b / GIB);
    if (gpus)
        printf("Summary: %zu GPU%s%s, VRAM used %.2f / %.2f GiB (%.1f%%), free %.2f GiB\n",
               gpus, gpus == 1 ? "" : "s", mig_note, (double)used / GIB, (double)total / GIB,
               total ? 100.0 * (double)used / (double)total : 0.0, (double)free_b / GIB);
    const gw_host *h = &s->host;
    char a[32], b[32], c[32], e[32];
    printf("Host: %s, %s CPUs, RAM available %s / %s GiB, load %s\n",
           h->hostname[0] ? h->hostname : "N/A",
           fmt_or_na(a, sizeof a, gw_host_has(h, GW_HOST_CPU_COUNT), "%.0f", h->cpu_count),
           fmt_or_na(b, sizeof b, gw_host_has(h, GW_HOST_MEM_AVAILABLE), "%.2f",
                     (double)h->mem_available / GIB),
           fmt_or_na(c, sizeof c, gw_host_has(h, GW_HOST_MEM_TOTAL), "%.2f",
                     (double)h->mem_total / GIB),
           fmt_or_na(e, sizeof e, gw_host_has(h, GW_HOST_LOADAVG), "%.2f", h->load1));
    printf("Sources:");
    for (size_t i = 0; i < s->n_sources; i++) {
        const gw_source_status *st = &s->sources[i];
        printf("%s %s %s", i ? ";" : "", st->name, gw_source_state_name(st->state));
        if (st->driver_version[0])
            printf(" (driver %s)", st->driver_version);
        if (st->message[0] && st->state != GW_SOURCE_UNAVAILABLE)
            printf(" - %s", st->message);
    }
    printf("\n");
}

/* One sample on a worker thread, so a driver call that never returns (a
 * wedged NVML) cannot hang the command: the caller waits until the deadline
 * and then gives up naming the source that is stuck. The job is shared with
 * the worker; when the caller gives up, the worker still owns it (and the
 * monitor) and the process exits around it. */
typedef struct sample_job {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gw_monitor *mon;
    gw_snapshot *snap;
    gw_error err;
    int rc;
    bool done;
} sample_job;

static void *sample_worker(void *arg)
{
    sample_job *job = arg;
    gw_snapshot *snap = NULL;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_monitor_sample(job->mon, &snap, &err);
    pthread_mutex_lock(&job->lock);
    job->snap = snap;
    job->err = err;
    job->rc = rc;
    job->done = true;
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

/* Samples mon within timeout_s seconds (0: no limit). Returns GW_OK with
 * *out set, the sample's own error, or GW_ETIMEDOUT (err names the source
 * that did not answer; the monitor then stays with the worker and must not
 * be touched again). */
static int sample_with_deadline(gw_monitor *mon, unsigned timeout_s, gw_snapshot **out,
                                gw_error *err)
{
    if (timeout_s == 0)
        return gw_monitor_sample(mon, out, err);
    sample_job *job = calloc(1, sizeof *job);
    if (!job)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&job->lock, NULL);
    job->mon = mon;
    pthread_t tid;
    if (pthread_create(&tid, NULL, sample_worker, job) != 0) {
        free(job);
        return gw_monitor_sample(mon, out, err);
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)timeout_s;
    pthread_mutex_lock(&job->lock);
    while (!job->done)
        if (pthread_cond_timedwait(&job->cond, &job->lock, &until) != 0 && !job->done)
            break;
    bool done = job->done;
    pthread_mutex_unlock(&job->lock);
    if (!done) {
        const char *busy = gw_monitor_busy_source(mon);
        pthread_detach(tid);
        return gw__error_set(err, GW_ETIMEDOUT,
                             "source '%s' did not answer within %u s (a hung driver call?)",
                             busy ? busy : "?", timeout_s);
    }
    pthread_join(tid, NULL);
    int rc = job->rc;
    *out = job->snap;
    *err = job->err;
    pthread_cond_destroy(&job->cond);
    pthread_mutex_destroy(&job->lock);
    free(job);
    return rc;
}

/* What the command line asked for. Strings are borrowed from argv. */
typedef struct report_opts {
    gw_config cfg;
    bool json, pretty;
    unsigned timeout_s;
    double watch_s;  /* --watch: seconds between frames; 0: one report */
    const char *ids; /* --id list (gpu_select.h); NULL: every GPU */
    const char *ollama; /* --ollama list, "none"; NULL: the local probe */
    const char *llama;  /* --llama-server list, "none"; NULL: none but those found */
    bool probe;         /* --probe: idle Ollama servers get one embedding request */
    gw_cli_cluster cluster; /* --cluster and its options */
    bool cluster_opt;   /* a cluster option other than --cluster was given */
} report_opts;

enum { O_JSON = 1, O_PRETTY, O_TIMEOUT, O_WATCH, O_ID, O_OLLAMA, O_LLAMA, O_PROBE };

static const gw_opt report_opts_table[] = {
    {"--json", NULL, NULL, O_JSON},
    {"--pretty", NULL, NULL, O_PRETTY},
    {"--timeout", NULL, "SEC", O_TIMEOUT},
    {"--watch", "-l", "SEC", O_WATCH},
    {"--id", "-i", "GPU[,GPU]", O_ID},
    {"--ollama", NULL, "URL[,URL]", O_OLLAMA},
    {"--llama-server", NULL, "URL[,URL]", O_LLAMA},
    {"--probe", NULL, NULL, O_PROBE},
    {NULL, NULL, NULL, 0},
};

/* Applies one of report's own options; GW_CLI_EXIT_USAGE after printing. */
static int apply_option(const gw_cli_parse *p, int id, report_opts *o)
{
    gw_error why;
    uint64_t v;
    switch (id) {
    case O_JSON: o->json = true; return GW_OK;
    case O_PROBE: o->probe = true; return GW_OK;
    case O_PRETTY: o->pretty = true; return GW_OK;
    case O_TIMEOUT:
        if (gw__parse_uint(p->scan.value, 0, 86400, &v, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        o->timeout_s = (unsigned)v;
        return GW_OK;
    case O_WATCH:
        /* 0.1 s: below that the sample itself is most of the interval */
        if (gw__parse_decimal(p->scan.value, 0.1, 86400, &o->watch_s, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        return GW_OK;
    case O_ID:
        if (gw__gpu_ids_check(p->scan.value, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        o->ids = p->scan.value;
        return GW_OK;
    case O_OLLAMA:
    case O_LLAMA: {
        const char *list = p->scan.value;
        if (gw__server_list_check(list, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        *(id == O_OLLAMA ? &o->ollama : &o->llama) = list;
        return GW_OK;
    }
    default:
        fprintf(stderr, "gpuwatch report: unexpected argument '%s'\n", p->scan.value);
        return GW_CLI_EXIT_USAGE;
    }
}

/* Fills *o from argv. Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, report_opts *o)
{
    memset(o, 0, sizeof *o);
    gw_config_init(&o->cfg);
    o->timeout_s = 15;
    gw_cli_cluster_init(&o->cluster);
    const gw_opt *const tables[] = {report_opts_table, gw_cli_source_opts, gw_cli_cluster_opts,
                                    NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "report", argc, argv, tables, report_usage);
    for (int id; (id = gw_cli_next(&p)) != GW_CLI_DONE;) {
        if (id == GW_CLI_EXIT_OK || id == GW_CLI_EXIT_USAGE)
            return id == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
        int r = gw_cli_source_apply(&p, id, &o->cfg);
        if (r == 0) {
            r = gw_cli_cluster_apply(&p, id, &o->cluster);
            o->cluster_opt |= r > 0 && id != GW_CLI_ID_CLUSTER;
        }
        if (r < 0)
            return GW_EXIT_USAGE;
        if (r == 0 && apply_option(&p, id, o) != GW_OK)
            return GW_EXIT_USAGE;
    }
    if (o->cluster_opt && !o->cluster.on) {
        fprintf(stderr, "gpuwatch report: the peer and Prometheus options go with --cluster\n");
        return GW_EXIT_USAGE;
    }
    if (o->cluster.on && (o->watch_s > 0 || o->ids)) {
        fprintf(stderr, "gpuwatch report: --cluster takes no --watch or --id (for a live view: "
                        "watch gpuwatch report --cluster, or a daemon's GET /api/v1/cluster)\n");
        return GW_EXIT_USAGE;
    }
    if (o->cluster.on) {
        o->cluster.cfg.probe = o->probe;
        int rc = gw_cli_cluster_finish(&o->cluster, "report");
        if (rc)
            return rc;
    }
    if (o->watch_s > 0 && o->json && o->pretty) {
        fprintf(stderr, "gpuwatch report: --pretty cannot go with --watch: --json --watch "
                        "prints one document per line (JSON Lines)\n");
        return GW_EXIT_USAGE;
    }
    return -1;
}

static void json_servers(gw_json *j, void *arg)
{
    const gw__server_list *l = arg;
    gw__json_key(j, "model_servers");
    gw__model_servers_json(j, l->v, l->n);
}

/* --probe's line, when the server was probed. */
static void print_probe(const gw__model_server *s)
{
    if (s->probed && s->probe_result[0])
        printf("  probe: %s answered in %.2f s: %s\n", s->probe_model, s->probe_seconds,
               s->probe_result);
    else if (s->probed)
        printf("  probe failed: %s\n", s->probe_error);
}

static void print_servers(const gw__server_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const gw__model_server *s = &l->v[i];
        if (!s->up) {
            printf("Model server: %s %s%s down - %s\n", gw__server_kind_name(s->kind), s->url,
                   s->pid ? " (a llama-server process)" : "", s->error);
            continue;
        }
        char pid[32] = "", slots[64] = "";
        if (s->pid)
            snprintf(pid, sizeof pid, " pid %u", s->pid);
        if (s->has_slots && s->has_busy)
            snprintf(slots, sizeof slots, ", slots %u/%u busy", s->slots_busy, s->slots_total);
        else if (s->has_slots)
            snprintf(slots, sizeof slots, ", %u slots", s->slots_total);
        printf("Model server: %s %s%s%s%s%s, %zu model%s loaded%s\n",
               gw__server_kind_name(s->kind), s->url, pid, s->version[0] ? " (version " : "",
               s->version, s->version[0] ? ")" : "", s->n_models, s->n_models == 1 ? "" : "s",
               slots);
        print_probe(s);
        for (size_t k = 0; k < s->n_models; k++) {
            const gw__loaded_model *m = &s->models[k];
            char where[24], size[32], vram[32], ctx[32] = "", until[64] = "";
            if (m->context_length)
                snprintf(ctx, sizeof ctx, ", ctx %u", m->context_length);
            if (m->expires_ns) {
                time_t t = (time_t)(m->expires_ns / 1000000000);
                struct tm tm;
                if (localtime_r(&t, &tm))
                    strftime(until, sizeof until, ", until %Y-%m-%d %H:%M:%S", &tm);
            }
            printf("  %-32s %s  size %s GiB, VRAM %s GiB%s%s%s%s%s%s%s\n", m->name,
                   gw__loaded_model_location(m, where, sizeof where),
                   fmt_or_na(size, sizeof size, m->has_size, "%.2f", (double)m->size / GIB),
                   fmt_or_na(vram, sizeof vram, m->has_vram, "%.2f", (double)m->size_vram / GIB),
                   m->parameter_size[0] ? ", " : "", m->parameter_size,
                   m->quantization[0] ? " " : "", m->quantization,
                   m->family[0] ? " " : "", m->family, ctx);
            if (until[0])
                printf("  %-32s %s\n", "", until + 2);
        }
    }
}

/* Prints one report of snap (only the GPUs of --id). Returns its exit
 * code: OK, DEGRADED (a GPU shown is not ok), USAGE (an --id names no GPU
 * here), ERROR (memory). */
static int print_report(const gw_snapshot *snap, const report_opts *o,
                        gw__server_list *servers)
{
    gw_snapshot view;
    gw_error err;
    gw_error_clear(&err);
    if (o->ids) {
        if (gw__gpu_view_init(&view, snap, o->ids, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch report: --id: %s\n", err.message);
            return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
        }
        snap = &view;
    }
    int exit_code = GW_EXIT_OK;
    for (size_t i = 0; i < snap->n_devices; i++)
        if (snap->devices[i].state != GW_DEVICE_OK)
            exit_code = GW_EXIT_DEGRADED;
    if (o->json) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        gw__render_snapshot_json_with(&sb, snap, o->pretty, json_servers, servers);
        if (sb.failed) {
            fprintf(stderr, "gpuwatch report: out of memory rendering JSON\n");
            exit_code = GW_EXIT_ERROR;
        } else {
            fwrite(sb.data, 1, sb.len, stdout);
        }
        gw__strbuf_release(&sb);
    } else {
        print_human(snap);
        print_servers(servers);
    }
    if (o->ids)
        gw__gpu_view_release(&view);
    if (fflush(stdout) != 0)
        exit_code = GW_EXIT_ERROR;
    return exit_code;
}

/* One sample of mon, printed. The monitor is the caller's unless the
 * sample timed out (then the stuck worker keeps it: *abandoned). */
static int report_frame(gw_monitor *mon, const report_opts *o, bool *abandoned)
{
    gw_error err;
    gw_error_clear(&err);
    gw_snapshot *snap = NULL;
    int rc = sample_with_deadline(mon, o->timeout_s, &snap, &err);
    *abandoned = rc == GW_ETIMEDOUT;
    if (rc != GW_OK) {
        fprintf(stderr, "gpuwatch report: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    gw__server_list servers = {0};
    gw__server_list_plan(&servers, o->ollama, o->llama, snap);
    gw__model_servers_fetch(servers.v, servers.n, MODEL_SERVER_TIMEOUT_MS);
    gw__server_list_keep_shown(&servers);
    if (o->probe)
        gw__model_servers_probe(servers.v, servers.n, PROBE_TIMEOUT_MS);
    gw__server_list_attribute(&servers, snap);
    int exit_code = print_report(snap, o, &servers);
    gw__server_list_release(&servers);
    gw_snapshot_release(snap);
    return exit_code;
}

/* The line above a --watch frame, like watch(1)'s. */
static void print_watch_header(const report_opts *o, bool clear)
{
    if (clear)
        fputs("\033[H\033[2J", stdout);
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    printf("Every %gs: gpuwatch report%s%s   %s\n", o->watch_s, o->ids ? " --id " : "",
           o->ids ? o->ids : "", when);
}

/* Waits until deadline (CLOCK_MONOTONIC) for SIGINT/SIGTERM, which stop
 * blocks. Returns true when one came. */
static bool wait_for_stop(const sigset_t *stop, const struct timespec *deadline)
{
    for (;;) {
        struct timespec now, left;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ns = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 +
                     (deadline->tv_nsec - now.tv_nsec);
        if (ns < 0)
            ns = 0; /* still look at a signal already pending */
        left.tv_sec = (time_t)(ns / 1000000000);
        left.tv_nsec = (long)(ns % 1000000000);
        int sig = sigtimedwait(stop, NULL, &left);
        if (sig > 0)
            return true;
        if (errno == EAGAIN)
            return false;
        /* EINTR: another signal's handler ran; wait for the rest */
    }
}

/* --watch: a frame every o->watch_s seconds on one monitor until SIGINT or
 * SIGTERM (exit 0). Both are blocked in every thread (they are blocked
 * before the monitor and the sampling workers start, which inherit the
 * mask) and taken with sigtimedwait between frames, so no handler and no
 * global flag: a signal during a frame ends the loop after that frame. */
static int report_watch(const report_opts *o)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    bool tty = !o->json && isatty(STDOUT_FILENO);
    const char *term = getenv("TERM");
    bool clear = tty && !(term && strcmp(term, "dumb") == 0);
    if (tty)
        setvbuf(stdout, NULL, _IOFBF, 1 << 16); /* a frame in one write: no flicker */
    gw_error err;
    gw_error_clear(&err);
    gw_monitor *mon;
    if (gw_monitor_open(&mon, &o->cfg, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch report: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    int64_t step_ns = (int64_t)(o->watch_s * 1e9);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int exit_code = GW_EXIT_OK;
    for (uint64_t frame = 0;; frame++) {
        if (!o->json) {
            if (frame > 0 && !clear)
                putchar('\n');
            print_watch_header(o, clear);
        }
        bool abandoned;
        int rc = report_frame(mon, o, &abandoned);
        if (abandoned)
            return rc; /* the stuck worker keeps the monitor */
        if (rc != GW_EXIT_OK && rc != GW_EXIT_DEGRADED) {
            exit_code = rc;
            break;
        }
        /* the next frame on the schedule, or now + step after a late one */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t at = (int64_t)next.tv_sec * 1000000000 + next.tv_nsec + step_ns;
        int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        if (at < now_ns)
            at = now_ns + step_ns;
        next.tv_sec = (time_t)(at / 1000000000);
        next.tv_nsec = (long)(at % 1000000000);
        if (wait_for_stop(&stop, &next))
            break;
    }
    gw_monitor_close(mon);
    return exit_code;
}

static void write_cluster(gw_json *j, const void *arg)
{
    gw__cluster_json(j, arg, gw__now_real_ns());
}

/* --cluster: one poll of every node, printed. */
static int report_cluster(const report_opts *o)
{
    gw__cluster cl;
    int exit_code = gw_cli_cluster_poll(&o->cluster, "report", &cl);
    if (exit_code == GW_EXIT_OK) {
        int64_t now = gw__now_real_ns();
        if (o->json) {
            if (!gw_cli_cluster_print_json(o->pretty, write_cluster, &cl))
                exit_code = GW_EXIT_ERROR;
        } else {
            gw__cluster_print(stdout, &cl, now);
        }
        bool degraded = false; /* a node unreachable, or a GPU of one not ok */
        for (size_t i = 0; i < cl.n_nodes; i++) {
            degraded |= !cl.nodes[i].up;
            for (size_t g = 0; g < cl.nodes[i].n_gpus; g++)
                degraded |= cl.nodes[i].gpus[g].dev.state != GW_DEVICE_OK;
        }
        if (exit_code == GW_EXIT_OK && degraded)
            exit_code = GW_EXIT_DEGRADED;
        if (fflush(stdout) != 0)
            exit_code = GW_EXIT_ERROR;
    }
    gw__cluster_release(&cl);
    return exit_code;
}

int gw_cmd_report(int argc, char **argv)
{
    report_opts o;
    int r = parse_args(argc, argv, &o);
    if (r >= 0)
        return r;
    if (o.cluster.on)
        return report_cluster(&o);
    if (o.watch_s > 0)
        return report_watch(&o);
    gw_error err;
    gw_error_clear(&err);
    gw_monitor *mon;
    if (gw_monitor_open(&mon, &o.cfg, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch report: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    bool abandoned;
    int exit_code = report_frame(mon, &o, &abandoned);
    if (!abandoned)
        gw_monitor_close(mon);
    return exit_code;
}
