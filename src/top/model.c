/* model.c — builds the data of a `top` frame (model.h).
 *
 * Owns: the per-frame copies (process rows, history series, events,
 * progress). Reads nothing from the machine: CPU % and host memory of a
 * process come with the snapshot (the sampler's procinfo reads /proc once
 * per round for every reader of it).
 */
#include "top/model.h"

#include "core/parse.h"
#include "core/util.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)

static const char *const column_names[] = {
#define GW__TOP_COL_NAME(id, name) name,
    GW__TOP_COLUMNS(GW__TOP_COL_NAME)
#undef GW__TOP_COL_NAME
};

const char *gw__top_column_name(gw__top_column c)
{
    return (unsigned)c < GW__TOP_COL_COUNT ? column_names[c] : "?";
}

void gw__top_sanitize(char *dst, size_t cap, const char *src, bool ascii)
{
    if (cap == 0)
        return;
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c == 0x7f || (ascii && c >= 0x80)) ? '?' : (char)c;
    }
    dst[i] = '\0';
    /* never end inside a UTF-8 sequence cut by the cap */
    size_t k = i;
    while (k > 0 && ((unsigned char)dst[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && (unsigned char)dst[k - 1] >= 0xC0) {
        unsigned char lead = (unsigned char)dst[k - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (i - (k - 1) < need)
            dst[k - 1] = '\0';
    }
}

char *gw__top_model_of(const char *cmdline, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!cmdline)
        return out;
    /* "python3 -m MODULE" runs a module: only the long flags name a model */
    size_t argv0 = strcspn(cmdline, " ");
    const char *prog = cmdline + argv0;
    while (prog > cmdline && prog[-1] != '/')
        prog--;
    bool python = strncmp(prog, "python", 6) == 0;
    static const char *const flags[] = {"--model", "--model-path", "-m"};
    for (size_t f = 0; f < GW__ARRAY_LEN(flags); f++) {
        size_t vlen;
        const char *v = python && f == 2 ? NULL : gw__cmdline_flag(cmdline, flags[f], &vlen);
        if (!v)
            continue;
        const char *base = v + vlen;
        while (base > v && base[-1] != '/')
            base--;
        size_t blen = (size_t)(v + vlen - base);
        if (!blen || (base - v >= 7 && strncmp(base - 7, "/blobs/", 7) == 0))
            return out; /* a folder, or Ollama's content-addressed blob */
        char name[256];
        size_t n = blen < sizeof name ? blen : sizeof name - 1;
        memcpy(name, base, n);
        name[n] = '\0';
        gw__top_sanitize(out, cap, name, false);
        return out;
    }
    return out;
}

const char *gw__top_bytes(char *buf, size_t cap, uint64_t bytes)
{
    if ((double)bytes >= 10.0 * GIB)
        snprintf(buf, cap, "%.0fG", (double)bytes / GIB);
    else if ((double)bytes >= GIB)
        snprintf(buf, cap, "%.1fG", (double)bytes / GIB);
    else
        snprintf(buf, cap, "%.0fM", (double)bytes / MIB);
    return buf;
}

/* ------------------------------------------------------------ sorting */

static int cmp_num(double a, double b, bool has_a, bool has_b)
{
    if (has_a != has_b)
        return has_a ? -1 : 1; /* unknown last */
    return (a < b) - (a > b);  /* larger first */
}

static int cmp_rows(const gw__top_proc *a, const gw__top_proc *b, gw__top_column col)
{
    switch (col) {
    case GW__TOP_COL_PID: return (a->pid > b->pid) - (a->pid < b->pid);
    case GW__TOP_COL_USER: return strcmp(a->user, b->user);
    case GW__TOP_COL_GPU: return (a->gpu > b->gpu) - (a->gpu < b->gpu);
    case GW__TOP_COL_GPU_MEM:
        return cmp_num((double)a->gpu_mem, (double)b->gpu_mem, a->has_gpu_mem, b->has_gpu_mem);
    case GW__TOP_COL_SM: return cmp_num(a->sm, b->sm, a->has_sm, b->has_sm);
    case GW__TOP_COL_CPU: return cmp_num(a->cpu, b->cpu, a->has_cpu, b->has_cpu);
    case GW__TOP_COL_HOST_MEM:
        return cmp_num((double)a->host_mem, (double)b->host_mem, a->has_host_mem,
                       b->has_host_mem);
    case GW__TOP_COL_MODEL: return strcmp(a->model, b->model);
    case GW__TOP_COL_COMMAND: return strcmp(a->command, b->command);
    default: return 0;
    }
}

/* The view's order: its column, then pid, then GPU (a total order, so the
 * unstable qsort_r never swaps two rows between frames), reversed as asked. */
static int cmp_view(const void *pa, const void *pb, void *arg)
{
    const gw__top_proc *a = pa, *b = pb;
    const gw__top_view *view = arg;
    int c = cmp_rows(a, b, view->sort);
    if (c == 0)
        c = (a->pid > b->pid) - (a->pid < b->pid);
    if (c == 0)
        c = (a->gpu > b->gpu) - (a->gpu < b->gpu);
    return view->reverse ? -c : c;
}

static void sort_rows(gw__top_proc *v, size_t n, const gw__top_view *view)
{
    if (n > 1)
        qsort_r(v, n, sizeof *v, cmp_view, (void *)view);
}

static bool row_matches(const gw__top_proc *r, const char *filter)
{
    if (!filter[0])
        return true;
    char pid[16];
    snprintf(pid, sizeof pid, "%u", r->pid);
    return strcasestr(r->command, filter) || strcasestr(r->user, filter) ||
           strcasestr(r->model, filter) || strstr(pid, filter);
}

void gw__top_model_sort(gw__top_model *m, const gw__top_view *view)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_procs; i++)
        if (row_matches(&m->procs[i], view->filter))
            m->procs[k++] = m->procs[i];
    m->n_procs = k;
    sort_rows(m->procs, m->n_procs, view);
}

/* ------------------------------------------------------------ building */

/* One chart series of n points over the last `seconds`, NaN where there
 * is no value; scale divides the values (memory: total bytes / 100). */
static double *query_series(gw__history *h, const char *key, gw_metric metric, size_t n,
                            unsigned seconds, int64_t now, double scale)
{
    double *out = malloc(n * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = NAN;
    int64_t step = (int64_t)seconds * 1000000000LL / (int64_t)n;
    if (step <= 0)
        step = 1;
    int64_t since = now - step * (int64_t)n;
    gw__history_point *pts = NULL;
    size_t np = 0;
    gw_error err;
    if (gw__history_query(h, key, metric, since, now, step, &pts, &np, &err) != GW_OK)
        return out;
    for (size_t i = 0; i < np; i++) {
        double idx = (pts[i].t * 1e9 - (double)since) / (double)step;
        if (pts[i].valid && idx >= 0 && idx < (double)n && scale > 0)
            out[(size_t)idx] = pts[i].v / scale;
    }
    free(pts);
    return out;
}

static int build_gpus(gw__top_model *m, const gw__top_inputs *in)
{
    const gw_snapshot *s = m->snap;
    m->gpus = s->n_devices ? calloc(s->n_devices, sizeof *m->gpus) : NULL;
    if (s->n_devices && !m->gpus)
        return GW_ENOMEM;
    m->n_gpus = s->n_devices;
    for (size_t i = 0; i < s->n_devices; i++) {
        gw__top_gpu *g = &m->gpus[i];
        const gw_device *d = &s->devices[i];
        g->dev = d;
        g->age_s = d->sampled_at_ns ? (double)(in->now_ns - d->sampled_at_ns) / 1e9 : -1;
        if (g->age_s < 0 && d->sampled_at_ns)
            g->age_s = 0;
        char mig[96];
        if (d->info.mig) /* docs/mig.md: which part of which GPU */
            snprintf(mig, sizeof mig, "MIG %s of GPU %u, GI %u",
                     d->info.mig_profile[0] ? d->info.mig_profile : "device", d->info.mig_parent,
                     d->info.mig_gpu_instance);
        gw__top_sanitize(g->name, sizeof g->name,
                         d->info.mig             ? mig
                         : d->info.name[0] ? d->info.name
                                           : "(unnamed)",
                         false);
        for (size_t p = 0; p < s->n_processes; p++)
            g->n_procs += s->processes[p].device_index == d->info.index;
        if (!in->history || in->history_points == 0)
            continue;
        char key[128];
        gw__history_key(d, key, sizeof key);
        double total = gw_sample_has(&d->sample, GW_METRIC_MEM_TOTAL) ? (double)d->sample.mem_total
                       : gw_info_has(&d->info, GW_INFO_MEMORY_TOTAL) ? (double)d->info.memory_total
                                                                      : 0;
        unsigned secs = in->history_seconds ? in->history_seconds : 300;
        g->util_hist = query_series(in->history, key, GW_METRIC_UTIL_GPU, in->history_points,
                                    secs, in->now_ns, 1.0);
        g->mem_hist = query_series(in->history, key, GW_METRIC_MEM_USED, in->history_points,
                                   secs, in->now_ns, total / 100.0);
        if (!g->util_hist || !g->mem_hist)
            return GW_ENOMEM;
        g->n_hist = in->history_points;
    }
    return GW_OK;
}

static void build_row(gw__top_proc *r, const gw_process *p)
{
    memset(r, 0, sizeof *r);
    r->pid = p->pid;
    r->gpu = p->device_index;
    r->has_gpu_mem = gw_process_has(p, GW_PROC_GPU_MEMORY);
    r->gpu_mem = p->gpu_memory;
    r->has_sm = gw_process_has(p, GW_PROC_SM_UTIL);
    r->sm = p->sm_util;
    r->has_cpu = gw_process_has(p, GW_PROC_CPU_UTIL);
    r->cpu = p->cpu_util;
    r->has_host_mem = gw_process_has(p, GW_PROC_HOST_MEMORY);
    r->host_mem = p->host_memory;
    gw__top_sanitize(r->user, sizeof r->user, gw_process_has(p, GW_PROC_USER) ? p->user : "N/A",
                     false);
    const char *cmd = gw_process_has(p, GW_PROC_CMDLINE) && p->cmdline[0] ? p->cmdline
                      : gw_process_has(p, GW_PROC_NAME) && p->name[0] ? p->name
                                                                       : "N/A";
    gw__top_sanitize(r->command, sizeof r->command, cmd, false);
    if (gw_process_has(p, GW_PROC_MODEL) && p->model[0]) /* a model server said */
        gw__top_sanitize(r->model, sizeof r->model, p->model, false);
    else if (!gw__top_model_of(gw_process_has(p, GW_PROC_CMDLINE) ? p->cmdline : "", r->model,
                               sizeof r->model)[0])
        gw__strlcpy(r->model, "-", sizeof r->model);
}

static int build_procs(gw__top_model *m)
{
    const gw_snapshot *s = m->snap;
    if (!s->n_processes)
        return GW_OK;
    m->procs = calloc(s->n_processes, sizeof *m->procs);
    if (!m->procs)
        return GW_ENOMEM;
    for (size_t i = 0; i < s->n_processes; i++)
        build_row(&m->procs[i], &s->processes[i]);
    m->n_procs = m->n_procs_total = s->n_processes;
    return GW_OK;
}

static void *copy_array(const void *src, size_t n, size_t size)
{
    if (!src || !n)
        return NULL;
    void *dst = malloc(n * size);
    if (dst)
        memcpy(dst, src, n * size);
    return dst;
}

int gw__top_model_build(gw__top_model *m, const gw__top_inputs *in, const gw__top_view *view)
{
    memset(m, 0, sizeof *m);
    m->snap = gw_snapshot_acquire(in->snap);
    m->now_ns = in->now_ns;
    int rc = build_gpus(m, in);
    if (rc == GW_OK)
        rc = build_procs(m);
    if (rc == GW_OK && in->n_events) {
        m->events = copy_array(in->events, in->n_events, sizeof *in->events);
        m->n_events = m->events ? in->n_events : 0;
        for (size_t i = 0; i < m->n_events; i++)
            gw__top_sanitize(m->events[i].message, sizeof m->events[i].message,
                             in->events[i].message, false);
        rc = m->events ? GW_OK : GW_ENOMEM;
    }
    if (rc == GW_OK && in->n_progress) {
        m->progress = copy_array(in->progress, in->n_progress, sizeof *in->progress);
        m->n_progress = m->progress ? in->n_progress : 0;
        for (size_t i = 0; i < m->n_progress; i++)
            gw__top_sanitize(m->progress[i].message, sizeof m->progress[i].message,
                             in->progress[i].message, false);
        rc = m->progress ? GW_OK : GW_ENOMEM;
    }
    if (rc != GW_OK) {
        gw__top_model_release(m);
        return rc;
    }
    gw__top_model_sort(m, view);
    return GW_OK;
}

void gw__top_model_release(gw__top_model *m)
{
    for (size_t i = 0; i < m->n_gpus; i++) {
        free(m->gpus[i].util_hist);
        free(m->gpus[i].mem_hist);
    }
    free(m->gpus);
    free(m->procs);
    free(m->events);
    free(m->progress);
    gw_snapshot_release(m->snap);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------- plain text */

static void plain_gpu(FILE *out, const gw__top_gpu *g)
{
    const gw_device *d = g->dev;
    const gw_sample *s = &d->sample;
    char name[96];
    gw__top_sanitize(name, sizeof name, g->name, false);
    for (char *c = name; *c; c++)
        if (*c == '"')
            *c = '\'';
    fprintf(out, "gpu=%u name=\"%s\"", d->info.index, name);
    bool ok = d->state != GW_DEVICE_LOST;
    if (ok && gw_sample_has(s, GW_METRIC_UTIL_GPU))
        fprintf(out, " util=%.0f%%", s->util_gpu);
    else
        fprintf(out, " util=N/A");
    if (ok && gw_sample_has(s, GW_METRIC_MEM_USED) && gw_sample_has(s, GW_METRIC_MEM_TOTAL))
        fprintf(out, " mem=%.0f/%.0fMiB", (double)s->mem_used / MIB, (double)s->mem_total / MIB);
    else
        fprintf(out, " mem=N/A");
    if (ok && gw_sample_has(s, GW_METRIC_TEMP))
        fprintf(out, " temp=%.0fC", s->temp_mc / 1000.0);
    else
        fprintf(out, " temp=N/A");
    if (gw_info_has(&d->info, GW_INFO_TEMP_SLOWDOWN))
        fprintf(out, " slowdown=%.0fC", d->info.temp_slowdown_mc / 1000.0);
    else
        fprintf(out, " slowdown=N/A");
    fprintf(out, ok && gw_sample_has(s, GW_METRIC_POWER) ? " power=%.1fW" : " power=N/A",
            s->power_mw / 1000.0);
    fprintf(out, ok && gw_sample_has(s, GW_METRIC_POWER_LIMIT) ? " limit=%.1fW" : " limit=N/A",
            s->power_limit_mw / 1000.0);
    fprintf(out, ok && gw_sample_has(s, GW_METRIC_FAN) ? " fan=%.0f%%" : " fan=N/A", s->fan_pct);
    if (ok && gw_sample_has(s, GW_METRIC_PSTATE))
        fprintf(out, " pstate=P%u", s->pstate);
    else
        fprintf(out, " pstate=N/A");
    fprintf(out, " state=%s", gw_device_state_name(d->state));
    if (g->age_s >= 0)
        fprintf(out, " age=%.1fs", g->age_s);
    else
        fprintf(out, " age=N/A");
    fprintf(out, " procs=%zu\n", g->n_procs);
}

void gw__top_print_plain(FILE *out, const gw__top_model *m)
{
    if (m->n_gpus == 0)
        fprintf(out, "gpus=0 cpu_only=%s\n", m->snap && m->snap->cpu_only ? "yes" : "no");
    for (size_t i = 0; i < m->n_gpus; i++)
        plain_gpu(out, &m->gpus[i]);
    fflush(out);
}
