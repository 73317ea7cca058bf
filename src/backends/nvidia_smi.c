/* nvidia_smi.c — the nvidia-smi fallback: NVIDIA GPUs read through the
 * nvidia-smi program when NVML itself cannot be used by us.
 *
 * Owns: the path of nvidia-smi found on PATH at open, the two calls per
 * sample (--query-gpu, then --query-compute-apps), the strict CSV parsers
 * (nvidia_smi.h), the last good devices (replayed as stale when a call
 * fails), and the back-off while nvidia-smi says the driver is absent.
 *
 * Selection (why it cannot double-count): the registry runs it after nvml.
 *  1. When the collector already holds an NVIDIA device (nvml answered),
 *     nvidia-smi is not run at all: it costs 10 ms to seconds a call.
 *  2. Otherwise every GPU whose PCI bus id is already in the collector is
 *     skipped (with its processes), so it only fills what others miss.
 *
 * Outcomes of a sample:
 *  - answered: devices ok; a failed process call makes the source degraded.
 *  - nvidia-smi says the driver is not loaded (exit 9), NVML is missing
 *    (exit 12) or no GPU exists: no device, source unavailable with that
 *    reason (status() reports it; sample returns GW_OK because this is an
 *    absence, not a failure), retried with back-off 1 s .. 60 s.
 *  - timeout, kill, garbage, other exit codes: the last good devices are
 *    appended as stale with the reason; with none, sample fails with it.
 */
#include "backends/nvidia_smi.h"
#include "backends/backend.h"
#include "backends/procinfo.h"
#include "backends/smi_common.h"
#include "backends/subprocess.h"
#include "core/array.h"
#include "core/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "nvidia-smi"
#define OUT_CAP (1u << 20) /* 256 GPUs x ~200 B, or 65536 apps: far below */
#define ERR_CAP (16u << 10)
#define MIB 1048576ull

enum gpu_field {
    F_INDEX,
    F_BUS,
    F_UUID,
    F_DRIVER,
    F_MEM_TOTAL,
    F_MEM_RESERVED,
    F_MEM_USED,
    F_MEM_FREE,
    F_UTIL_GPU,
    F_UTIL_MEM,
    F_TEMP,
    F_POWER,
    F_POWER_LIMIT,
    F_CLOCK_SM,
    F_CLOCK_GR,
    F_CLOCK_MEM,
    F_FAN,
    F_PSTATE,
    F_NAME,
    F_GPU_COUNT
};
_Static_assert(F_GPU_COUNT == GW__NVSMI_GPU_FIELD_COUNT, "field list and enum differ");

static const char *const gpu_field_names[F_GPU_COUNT] = {
    "index",        "pci.bus_id",      "uuid",        "driver_version",  "memory.total",
    "memory.reserved", "memory.used",  "memory.free", "utilization.gpu", "utilization.memory",
    "temperature.gpu", "power.draw",   "power.limit", "clocks.sm",       "clocks.gr",
    "clocks.mem",   "fan.speed",       "pstate",      "name",
};
static const char *const app_field_names[GW__NVSMI_APP_FIELD_COUNT] = {
    "gpu_uuid", "pid", "used_memory", "process_name"};

/* ------------------------------------------------------------- parsing */

typedef struct field {
    const char *s;
    size_t len;
} field;

typedef struct line_ctx {
    const char *query; /* "--query-gpu" */
    size_t lineno;
    const char *const *names;
} line_ctx;

static int field_error(const line_ctx *lc, int idx, const field *f, const char *what,
                       gw_error *err)
{
    char val[48];
    size_t n = f->len < sizeof val - 1 ? f->len : sizeof val - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)f->s[i];
        val[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    val[n] = '\0';
    return gw__error_set(err, GW_EPARSE, TOOL ": %s line %zu, field %d (%s): %s: '%s'%s",
                         lc->query, lc->lineno, idx + 1, lc->names[idx], what, val,
                         f->len > n ? "..." : "");
}

/* Splits one line into exactly nf fields on ", "; the last field takes the
 * rest of the line (free text). */
static int split_line(const line_ctx *lc, const char *line, size_t len, field *f, size_t nf,
                      gw_error *err)
{
    size_t pos = 0;
    for (size_t i = 0; i + 1 < nf; i++) {
        const char *sep = NULL;
        for (size_t j = pos; j + 1 < len; j++)
            if (line[j] == ',' && line[j + 1] == ' ') {
                sep = line + j;
                break;
            }
        if (!sep)
            return gw__error_set(err, GW_EPARSE,
                                 TOOL ": %s line %zu: expected %zu fields separated by \", \", "
                                      "found %zu",
                                 lc->query, lc->lineno, nf, i + 1);
        f[i].s = line + pos;
        f[i].len = (size_t)(sep - (line + pos));
        pos = (size_t)(sep - line) + 2;
    }
    f[nf - 1].s = line + pos;
    f[nf - 1].len = len - pos;
    return GW_OK;
}

static bool is_absent(const field *f)
{
    return (f->len > 0 && f->s[0] == '[') || (f->len == 3 && memcmp(f->s, "N/A", 3) == 0);
}

/* Copies a text field, refusing control bytes; absent values give "". */
static int text_field(const line_ctx *lc, int idx, const field *f, char *out, size_t cap,
                      gw_error *err)
{
    out[0] = '\0';
    if (is_absent(f))
        return GW_OK;
    if (f->len >= cap)
        return field_error(lc, idx, f, "too long", err);
    for (size_t i = 0; i < f->len; i++)
        if ((unsigned char)f->s[i] < 0x20 || f->s[i] == 0x7f)
            return field_error(lc, idx, f, "control character", err);
    memcpy(out, f->s, f->len);
    out[f->len] = '\0';
    return GW_OK;
}

/* An unsigned integer field; *have false when absent. */
static int uint_field(const line_ctx *lc, int idx, const field *f, uint64_t max, bool *have,
                      uint64_t *v, gw_error *err)
{
    *have = false;
    if (is_absent(f))
        return GW_OK;
    if (!gw__smi_parse_uint(f->s, f->len, v) || *v > max)
        return field_error(lc, idx, f, "not an integer in range", err);
    *have = true;
    return GW_OK;
}

/* A decimal field in thousandths (watts -> mW, % -> milli-%). */
static int milli_field(const line_ctx *lc, int idx, const field *f, bool neg, int64_t min,
                       int64_t max, bool *have, int64_t *v, gw_error *err)
{
    *have = false;
    if (is_absent(f))
        return GW_OK;
    if (!gw__smi_parse_milli(f->s, f->len, neg, v) || *v < min || *v > max)
        return field_error(lc, idx, f, "not a number in range", err);
    *have = true;
    return GW_OK;
}

#define SET(s, m) ((s)->valid |= 1ull << GW_METRIC_##m)

/* Memory in MiB -> bytes into *dst, setting the metric bit. */
static int mib_field(const line_ctx *lc, int idx, const field *f, gw_sample *s, gw_metric m,
                     uint64_t *dst, gw_error *err)
{
    bool have;
    uint64_t v;
    int rc = uint_field(lc, idx, f, UINT64_MAX / MIB, &have, &v, err);
    if (rc || !have)
        return rc;
    *dst = v * MIB;
    s->valid |= 1ull << m;
    return GW_OK;
}

static int mhz_field(const line_ctx *lc, int idx, const field *f, gw_sample *s, gw_metric m,
                     uint32_t *dst, gw_error *err)
{
    bool have;
    uint64_t v;
    int rc = uint_field(lc, idx, f, UINT32_MAX, &have, &v, err);
    if (rc || !have)
        return rc;
    *dst = (uint32_t)v;
    s->valid |= 1ull << m;
    return GW_OK;
}

static int pct_field(const line_ctx *lc, int idx, const field *f, double max, gw_sample *s,
                     gw_metric m, double *dst, gw_error *err)
{
    bool have;
    int64_t v;
    int rc = milli_field(lc, idx, f, false, 0, (int64_t)(max * 1000), &have, &v, err);
    if (rc || !have)
        return rc;
    *dst = (double)v / 1000.0;
    s->valid |= 1ull << m;
    return GW_OK;
}

static int parse_gpu_line(const line_ctx *lc, const field *f, gw_device *d, gw_error *err)
{
    gw_device_info *in = &d->info;
    gw_sample *s = &d->sample;
    int rc;
    bool have;
    uint64_t u;
    int64_t mv;

    in->vendor = GW_VENDOR_NVIDIA;
    gw__strlcpy(in->source, TOOL, sizeof in->source);
    gw__strlcpy(in->memory_api, "smi", sizeof in->memory_api);
    d->state = GW_DEVICE_OK;

    if ((rc = uint_field(lc, F_INDEX, &f[F_INDEX], UINT32_MAX, &have, &u, err)))
        return rc;
    if (!have)
        return field_error(lc, F_INDEX, &f[F_INDEX], "missing", err);
    in->source_index = (uint32_t)u;
    if ((rc = text_field(lc, F_BUS, &f[F_BUS], in->pci_bus_id, sizeof in->pci_bus_id, err)))
        return rc;
    char canon[32];
    if (in->pci_bus_id[0] && !gw__pci_bus_id_normalize(in->pci_bus_id, canon, sizeof canon))
        return field_error(lc, F_BUS, &f[F_BUS], "not a PCI address", err);
    if ((rc = text_field(lc, F_UUID, &f[F_UUID], in->uuid, sizeof in->uuid, err)) ||
        (rc = text_field(lc, F_DRIVER, &f[F_DRIVER], in->driver_version,
                         sizeof in->driver_version, err)) ||
        (rc = text_field(lc, F_NAME, &f[F_NAME], in->name, sizeof in->name, err)))
        return rc;

    if ((rc = mib_field(lc, F_MEM_TOTAL, &f[F_MEM_TOTAL], s, GW_METRIC_MEM_TOTAL, &s->mem_total,
                        err)) ||
        (rc = mib_field(lc, F_MEM_RESERVED, &f[F_MEM_RESERVED], s, GW_METRIC_MEM_RESERVED,
                        &s->mem_reserved, err)) ||
        (rc = mib_field(lc, F_MEM_USED, &f[F_MEM_USED], s, GW_METRIC_MEM_USED, &s->mem_used,
                        err)) ||
        (rc = mib_field(lc, F_MEM_FREE, &f[F_MEM_FREE], s, GW_METRIC_MEM_FREE, &s->mem_free,
                        err)))
        return rc;
    if (gw_sample_has(s, GW_METRIC_MEM_TOTAL)) {
        in->memory_total = s->mem_total;
        in->valid |= 1ull << GW_INFO_MEMORY_TOTAL;
    }
    if ((rc = pct_field(lc, F_UTIL_GPU, &f[F_UTIL_GPU], 100, s, GW_METRIC_UTIL_GPU, &s->util_gpu,
                        err)) ||
        (rc = pct_field(lc, F_UTIL_MEM, &f[F_UTIL_MEM], 100, s, GW_METRIC_UTIL_MEM, &s->util_mem,
                        err)) ||
        (rc = pct_field(lc, F_FAN, &f[F_FAN], 1000, s, GW_METRIC_FAN, &s->fan_pct, err)))
        return rc;

    /* whole degrees C, may be negative in a cold room outdoors */
    if ((rc = milli_field(lc, F_TEMP, &f[F_TEMP], true, -273000, 1000000, &have, &mv, err)))
        return rc;
    if (have) {
        s->temp_mc = (int32_t)mv;
        SET(s, TEMP);
    }
    if ((rc = milli_field(lc, F_POWER, &f[F_POWER], false, 0, UINT32_MAX, &have, &mv, err)))
        return rc;
    if (have) {
        s->power_mw = (uint32_t)mv; /* W -> mW: the parser already gives thousandths */
        SET(s, POWER);
    }
    if ((rc = milli_field(lc, F_POWER_LIMIT, &f[F_POWER_LIMIT], false, 0, UINT32_MAX, &have, &mv,
                          err)))
        return rc;
    if (have) {
        s->power_limit_mw = (uint32_t)mv;
        SET(s, POWER_LIMIT);
    }
    if ((rc = mhz_field(lc, F_CLOCK_SM, &f[F_CLOCK_SM], s, GW_METRIC_CLOCK_SM, &s->clock_sm_mhz,
                        err)) ||
        (rc = mhz_field(lc, F_CLOCK_GR, &f[F_CLOCK_GR], s, GW_METRIC_CLOCK_GRAPHICS,
                        &s->clock_graphics_mhz, err)) ||
        (rc = mhz_field(lc, F_CLOCK_MEM, &f[F_CLOCK_MEM], s, GW_METRIC_CLOCK_MEM,
                        &s->clock_mem_mhz, err)))
        return rc;

    const field *p = &f[F_PSTATE];
    if (!is_absent(p)) {
        if (p->len < 2 || p->s[0] != 'P' || !gw__smi_parse_uint(p->s + 1, p->len - 1, &u) ||
            u > 32)
            return field_error(lc, F_PSTATE, p, "not a performance state P0..P15", err);
        if (u <= 15) { /* P32 is NVML's "unknown" */
            s->pstate = (uint32_t)u;
            SET(s, PSTATE);
        }
    }
    return GW_OK;
}

/* Calls fn for every non-empty line of text; the line excludes '\n' and a
 * trailing '\r'. A NUL byte anywhere is an error. */
typedef int (*line_fn)(void *ctx, const line_ctx *lc, const char *line, size_t len,
                       gw_error *err);

static int for_each_line(const char *text, size_t len, line_ctx *lc, line_fn fn, void *ctx,
                         gw_error *err)
{
    if (memchr(text, '\0', len))
        return gw__error_set(err, GW_EPARSE, TOOL ": %s output holds a NUL byte", lc->query);
    size_t pos = 0;
    lc->lineno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t l = end - pos;
        lc->lineno++;
        if (l && text[pos + l - 1] == '\r')
            l--;
        if (l) {
            int rc = fn(ctx, lc, text + pos, l, err);
            if (rc)
                return rc;
        }
        pos = end + 1;
    }
    return GW_OK;
}

typedef struct vec {
    void *items;
    size_t n, cap, size, max;
} vec;

/* Appends a zeroed item; NULL when out of memory or past max (*over). */
static void *vec_add(vec *v, bool *over)
{
    *over = false;
    if (v->n >= v->max) {
        *over = true;
        return NULL;
    }
    if (gw__array_reserve(&v->items, &v->cap, v->n + 1, v->size, v->max))
        return NULL;
    void *it = (char *)v->items + v->n++ * v->size;
    memset(it, 0, v->size);
    return it;
}

static int gpu_line(void *ctx, const line_ctx *lc, const char *line, size_t len, gw_error *err)
{
    vec *v = ctx;
    field f[F_GPU_COUNT];
    int rc = split_line(lc, line, len, f, F_GPU_COUNT, err);
    if (rc)
        return rc;
    bool over;
    gw_device *d = vec_add(v, &over);
    if (!d)
        return over ? gw__error_set(err, GW_ERANGE, TOOL ": more than %d GPUs listed",
                                    GW__NVSMI_MAX_GPUS)
                    : gw__error_set(err, GW_ENOMEM, TOOL ": out of memory");
    return parse_gpu_line(lc, f, d, err);
}

int gw__nvsmi_parse_gpus(const char *text, size_t len, gw_device **out, size_t *n, gw_error *err)
{
    vec v = {.size = sizeof(gw_device), .max = GW__NVSMI_MAX_GPUS};
    line_ctx lc = {.query = "--query-gpu", .names = gpu_field_names};
    *out = NULL;
    *n = 0;
    int rc = for_each_line(text, len, &lc, gpu_line, &v, err);
    if (rc) {
        free(v.items);
        return rc;
    }
    *out = v.items;
    *n = v.n;
    return GW_OK;
}

static int app_line(void *ctx, const line_ctx *lc, const char *line, size_t len, gw_error *err)
{
    vec *v = ctx;
    field f[GW__NVSMI_APP_FIELD_COUNT];
    int rc = split_line(lc, line, len, f, GW__NVSMI_APP_FIELD_COUNT, err);
    if (rc)
        return rc;
    bool over, have;
    gw__nvsmi_app *a = vec_add(v, &over);
    if (!a)
        return over ? gw__error_set(err, GW_ERANGE, TOOL ": more than %d processes listed",
                                    GW__NVSMI_MAX_APPS)
                    : gw__error_set(err, GW_ENOMEM, TOOL ": out of memory");
    uint64_t u;
    if ((rc = text_field(lc, 0, &f[0], a->gpu_uuid, sizeof a->gpu_uuid, err)))
        return rc;
    if (!a->gpu_uuid[0])
        return field_error(lc, 0, &f[0], "missing", err);
    if ((rc = uint_field(lc, 1, &f[1], INT32_MAX, &have, &u, err)))
        return rc;
    if (!have || u == 0)
        return field_error(lc, 1, &f[1], "missing", err);
    a->pid = (uint32_t)u;
    if ((rc = uint_field(lc, 2, &f[2], UINT64_MAX / MIB, &have, &u, err)))
        return rc;
    a->has_memory = have;
    a->memory = have ? u * MIB : 0;
    return text_field(lc, 3, &f[3], a->process_name, sizeof a->process_name, err);
}

int gw__nvsmi_parse_apps(const char *text, size_t len, gw__nvsmi_app **out, size_t *n,
                         gw_error *err)
{
    vec v = {.size = sizeof(gw__nvsmi_app), .max = GW__NVSMI_MAX_APPS};
    line_ctx lc = {.query = "--query-compute-apps", .names = app_field_names};
    *out = NULL;
    *n = 0;
    int rc = for_each_line(text, len, &lc, app_line, &v, err);
    if (rc) {
        free(v.items);
        return rc;
    }
    *out = v.items;
    *n = v.n;
    return GW_OK;
}

/* ------------------------------------------------------------- backend */

typedef struct nvsmi {
    gw__smi_source src; /* reaper, last good devices, back-off, status */
    char path[PATH_MAX];
    unsigned timeout_ms;
    bool processes;
    gw__procinfo *procinfo;
    char driver[32];
    bool legacy; /* the driver refused memory.reserved: legacy field list */
} nvsmi;

/* What an exit code / output of nvidia-smi means. absent: the hardware or
 * driver is not there (source unavailable) rather than failing. */
static int classify_exit(const gw__subprocess_result *r, bool *absent, gw_error *err)
{
    char said[160];
    gw__smi_excerpt(r->out, r->out_len, said, sizeof said);
    if (!said[0])
        gw__smi_excerpt(r->err, r->err_len, said, sizeof said);
    const char *all_out = r->out, *all_err = r->err;
    *absent = false;
    if (r->exit_code == 9 || strstr(all_out, "couldn't communicate with the NVIDIA driver") ||
        strstr(all_err, "couldn't communicate with the NVIDIA driver")) {
        *absent = true;
        return gw__error_set(err, GW_EDRIVER, TOOL ": NVIDIA driver not loaded (exit %d)",
                             r->exit_code);
    }
    if (strstr(all_out, "No devices were found") || strstr(all_err, "No devices were found")) {
        *absent = true;
        return gw__error_set(err, GW_ENODEV, TOOL ": no NVIDIA GPU found (exit %d)",
                             r->exit_code);
    }
    if (r->exit_code == 12) {
        *absent = true;
        return gw__error_set(err, GW_ELOAD, TOOL ": NVML library not found (exit 12)%s%s",
                             said[0] ? ": " : "", said);
    }
    if (strstr(all_out, "version mismatch") || strstr(all_err, "version mismatch"))
        return gw__error_set(err, GW_EDRIVER,
                             TOOL ": driver/library version mismatch, reload the driver or "
                                  "reboot (exit %d)",
                             r->exit_code);
    static const struct {
        int code, status;
        const char *what;
    } known[] = {
        {2, GW_EINVAL, "refused the query's arguments"},
        {3, GW_ENOTSUP, "operation not available on this GPU"},
        {4, GW_EPERM, "insufficient permissions"},
        {6, GW_ENOENT, "query found nothing"},
        {8, GW_EDRIVER, "GPU external power cables not attached"},
        {10, GW_EDRIVER, "kernel detected an interrupt issue with a GPU"},
        {13, GW_ENOTSUP, "NVML does not implement this function"},
        {14, GW_EDRIVER, "infoROM is corrupted"},
        {15, GW_ELOST, "a GPU has fallen off the bus"},
        {255, GW_EDRIVER, "internal driver error"},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(known); i++)
        if (known[i].code == r->exit_code)
            return gw__error_set(err, known[i].status, TOOL ": %s (exit %d)%s%s", known[i].what,
                                 r->exit_code, said[0] ? ": " : "", said);
    return gw__error_set(err, GW_EIO, TOOL ": failed (exit %d)%s%s", r->exit_code,
                         said[0] ? ": " : "", said);
}

/* Runs nvidia-smi with one query. GW_OK: exit 0, res holds the output.
 * Otherwise err says why; *absent tells "not there" from "failing". */
static int run_query(nvsmi *s, const char *query, gw__subprocess_result *res, bool *absent,
                     gw_error *err)
{
    const char *argv[] = {TOOL, query, "--format=csv,noheader,nounits", NULL};
    *absent = false;
    s->src.calls++;
    int rc = gw__subprocess_run(s->path, argv, s->timeout_ms, OUT_CAP, ERR_CAP, &s->src.reaper, res,
                                err);
    if (rc) {
        char why[300];
        gw__strlcpy(why, err->message, sizeof why);
        return gw__error_set(err, rc, TOOL ": %s", why);
    }
    if ((rc = gw__smi_run_failure(TOOL, res, s->timeout_ms, err)))
        return rc;
    if (res->exit_code != 0)
        return classify_exit(res, absent, err);
    return GW_OK;
}

static int nvsmi_open(void **state, const gw__config *cfg, gw_error *err)
{
    nvsmi *s = calloc(1, sizeof *s);
    if (!s)
        return gw__error_set(err, GW_ENOMEM, TOOL ": out of memory");
    if (gw__subprocess_find(TOOL, s->path, sizeof s->path) != GW_OK) {
        free(s);
        return gw__error_set(err, GW_ENODEV, TOOL ": not found on PATH");
    }
    s->timeout_ms = cfg->call_timeout_ms ? cfg->call_timeout_ms : 5000;
    s->processes = cfg->processes;
    if (s->processes && gw__procinfo_open(&s->procinfo, cfg->proc_root, gw__procinfo_what(cfg),
                          cfg->pods_dir) != GW_OK) {
        free(s);
        return gw__error_set(err, GW_ENOMEM, TOOL ": out of memory");
    }
    s->src.tool = TOOL;
    s->src.vendor = GW_VENDOR_NVIDIA;
    gw__reaper_init(&s->src.reaper);
    *state = s;
    return GW_OK;
}

static void nvsmi_close(void *state)
{
    nvsmi *s = state;
    if (!s)
        return;
    gw__smi_source_release(&s->src, 1000);
    gw__procinfo_close(s->procinfo);
    free(s);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* Second call: processes, matched to this round's devices by UUID. */
static void sample_apps(nvsmi *s, gw__collect *c, size_t first, size_t count)
{
    gw_error err;
    gw_error_clear(&err);
    gw__subprocess_result res;
    bool absent;
    int rc = run_query(s, "--query-compute-apps=" GW__NVSMI_APP_FIELDS, &res, &absent, &err);
    gw__nvsmi_app *apps = NULL;
    size_t n = 0;
    if (rc == GW_OK)
        rc = gw__nvsmi_parse_apps(res.out, res.out_len, &apps, &n, &err);
    gw__subprocess_result_release(&res);
    if (rc) {
        s->src.state = GW_SOURCE_DEGRADED;
        s->src.error = rc;
        snprintf(s->src.message, sizeof s->src.message, "processes not read: %.340s", err.message);
        return;
    }
    if (s->procinfo)
        gw__procinfo_begin_round(s->procinfo);
    for (size_t i = 0; i < n; i++) {
        size_t dev = SIZE_MAX;
        for (size_t k = first; k < first + count; k++)
            if (strcmp(gw__collect_device(c, k)->info.uuid, apps[i].gpu_uuid) == 0)
                dev = k;
        if (dev == SIZE_MAX)
            continue; /* a GPU another source reports, or one gone between the calls */
        gw_process *p = gw__collect_add_process(c);
        if (!p) {
            s->src.state = GW_SOURCE_DEGRADED;
            s->src.error = GW_ENOMEM;
            gw__strlcpy(s->src.message, TOOL ": out of memory listing processes",
                        sizeof s->src.message);
            break;
        }
        p->pid = apps[i].pid;
        p->device_index = (uint32_t)dev;
        p->kind = GW_PROCESS_COMPUTE;
        if (apps[i].has_memory) {
            p->gpu_memory = apps[i].memory;
            p->valid |= 1u << GW_PROC_GPU_MEMORY;
        }
        if (apps[i].process_name[0]) {
            gw__strlcpy(p->name, base_name(apps[i].process_name), sizeof p->name);
            p->valid |= 1u << GW_PROC_NAME;
        }
        if (s->procinfo)
            gw__procinfo_fill(s->procinfo, p); /* user, cmdline; name from /proc when visible */
    }
    free(apps);
}

static int nvsmi_sample(void *state, gw__collect *c, gw_error *err)
{
    nvsmi *s = state;
    int64_t now;
    if (!gw__smi_source_begin(&s->src, c, &now))
        return GW_OK;

    gw__subprocess_result res;
    bool absent;
    int rc = run_query(s, s->legacy ? "--query-gpu=" GW__NVSMI_GPU_FIELDS_LEGACY
                                    : "--query-gpu=" GW__NVSMI_GPU_FIELDS,
                       &res, &absent, err);
    if (rc == GW_EINVAL && !s->legacy &&
        (strstr(res.out, "\"memory.reserved\"") || strstr(res.err, "\"memory.reserved\""))) {
        /* a pre-R510 driver: ask again without memory.reserved, from now on */
        s->legacy = true;
        gw__subprocess_result_release(&res);
        rc = run_query(s, "--query-gpu=" GW__NVSMI_GPU_FIELDS_LEGACY, &res, &absent, err);
    }
    gw_device *devs = NULL;
    size_t n = 0;
    if (rc == GW_OK)
        rc = gw__nvsmi_parse_gpus(res.out, res.out_len, &devs, &n, err);
    gw__subprocess_result_release(&res);
    if (rc == GW_OK && n == 0) {
        rc = gw__error_set(err, GW_ENODEV, TOOL ": no NVIDIA GPU listed");
        absent = true;
    }
    if (rc && absent) {
        gw__smi_source_absent(&s->src, rc, err->message, now);
        return GW_OK;
    }
    if (rc)
        return gw__smi_source_failed(&s->src, c, rc, err);
    for (size_t i = 0; s->legacy && i < n; i++) {
        devs[i].sample.valid &= ~(1ull << GW_METRIC_MEM_RESERVED); /* that column was total */
        devs[i].sample.mem_reserved = 0;
    }
    gw__strlcpy(s->driver, devs[0].info.driver_version, sizeof s->driver);
    size_t first, added;
    if ((rc = gw__smi_source_add(&s->src, c, devs, n, &first, &added, err)) != GW_OK)
        return rc;
    if (s->processes && added)
        sample_apps(s, c, first, added);
    return GW_OK;
}

static void nvsmi_status(void *state, gw_source_status *st)
{
    nvsmi *s = state;
    gw__smi_source_status(&s->src, st);
    gw__strlcpy(st->driver_version, s->driver, sizeof st->driver_version);
}

const gw__backend_ops gw__backend_nvidia_smi = {
    .name = TOOL,
    .vendor = GW_VENDOR_NVIDIA,
    .open = nvsmi_open,
    .sample = nvsmi_sample,
    .status = nvsmi_status,
    .close = nvsmi_close,
};
