/* monitor.c — opens the configured backends and turns one round of their
 * samples into a snapshot.
 *
 * Owns: per-source lifecycle (closed -> open -> sampling), the back-off of a
 * source that could not open (1 s doubling to 60 s; never re-opened per
 * query), the source status list, and the CPU-only verdict.
 *
 * Invariants:
 *  1. Backends run in gw__backends order: direct sources before fallbacks.
 *  2. A source that failed to open is retried only after its back-off
 *     expired; until then its status repeats the last failure.
 *  3. The snapshot's cpu_only is true exactly when no source produced a
 *     device; cpu_only_reason then names why in one line.
 */
#include "backends/backend.h"
#include "backends/procinfo.h"
#include "core/snapshot_build.h"
#include "core/util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_NS (1000000000ll)
#define BACKOFF_MAX_NS (60ll * 1000000000ll)

typedef struct source {
    const gw__backend_ops *ops;
    void *state;     /* non-NULL when open */
    gw_error open_error;
    int64_t retry_at_ns;
    int64_t backoff_ns;
} source;

struct gw_monitor {
    gw__config cfg;
    source *sources;
    size_t n_sources;
    uint64_t seq;
    const char *_Atomic busy; /* name of the source being read, or NULL */
};

void gw_config_init(gw_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->processes = true;
    cfg->process_host_stats = true;
}

static const char *pick(const char *given, const char *env, const char *fallback)
{
    if (given && *given)
        return given;
    const char *e = getenv(env);
    return e && *e ? e : fallback;
}

/* True when name is in the comma-separated list (NULL/empty list: all). */
static bool source_enabled(const char *list, const char *name)
{
    if (!list || !*list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Checks every name in the list is a known backend. */
static int check_source_list(const char *list, gw_error *err)
{
    if (!list || !*list)
        return GW_OK;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool known = false;
        for (size_t i = 0; gw__backends[i]; i++)
            if (strlen(gw__backends[i]->name) == len && strncmp(gw__backends[i]->name, p, len) == 0)
                known = true;
        if (!known)
            return gw__error_set(err, GW_EINVAL, "unknown source '%.*s' in source list '%s'",
                                 (int)len, p, list);
        if (!end)
            break;
        p = end + 1;
    }
    return GW_OK;
}

int gw_monitor_open(gw_monitor **out, const gw_config *cfg_in, gw_error *err)
{
    *out = NULL;
    gw_config defaults;
    if (!cfg_in) {
        gw_config_init(&defaults);
        cfg_in = &defaults;
    }
    int rc = check_source_list(cfg_in->sources, err);
    if (rc)
        return rc;
    gw_monitor *m = calloc(1, sizeof *m);
    if (!m)
        return gw__error_set(err, GW_ENOMEM, "monitor: out of memory");
    gw__strlcpy(m->cfg.nvml_library,
                pick(cfg_in->nvml_library, "GPUWATCH_NVML_LIBRARY", "libnvidia-ml.so.1"),
                sizeof m->cfg.nvml_library);
    gw__strlcpy(m->cfg.proc_root, pick(cfg_in->proc_root, "GPUWATCH_PROC_ROOT", "/proc"),
                sizeof m->cfg.proc_root);
    gw__strlcpy(m->cfg.sys_root, pick(cfg_in->sys_root, "GPUWATCH_SYS_ROOT", "/sys"),
                sizeof m->cfg.sys_root);
    gw__strlcpy(m->cfg.pods_dir, pick(cfg_in->pods_dir, "GPUWATCH_PODS_DIR", "/var/log/pods"),
                sizeof m->cfg.pods_dir);
    m->cfg.call_timeout_ms = cfg_in->call_timeout_ms;
    uint64_t env_ms;
    const char *env_timeout = getenv("GPUWATCH_CALL_TIMEOUT_MS");
    if (!m->cfg.call_timeout_ms && env_timeout && gw__parse_u64(env_timeout, &env_ms) &&
        env_ms > 0 && env_ms <= 600000)
        m->cfg.call_timeout_ms = (unsigned)env_ms;
    if (!m->cfg.call_timeout_ms)
        m->cfg.call_timeout_ms = 5000;
    m->cfg.processes = cfg_in->processes;
    m->cfg.process_host_stats = cfg_in->process_host_stats;

    size_t n = 0;
    while (gw__backends[n])
        n++;
    m->sources = calloc(n ? n : 1, sizeof *m->sources);
    if (!m->sources) {
        free(m);
        return gw__error_set(err, GW_ENOMEM, "monitor: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!source_enabled(cfg_in->sources, gw__backends[i]->name))
            continue;
        if (cfg_in->skip_host && !cfg_in->sources && strcmp(gw__backends[i]->name, "host") == 0)
            continue; /* the caller shows no host figures (top): not read */
        source *s = &m->sources[m->n_sources++];
        s->ops = gw__backends[i];
        s->backoff_ns = BACKOFF_MIN_NS;
        s->retry_at_ns = 0; /* open on the first sample */
    }
    if (m->cfg.processes)
        gw__procinfo_reserve_fds(); /* sources open later, maybe on a sampler thread */
    *out = m;
    return GW_OK;
}

void gw_monitor_close(gw_monitor *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_sources; i++)
        if (m->sources[i].state)
            m->sources[i].ops->close(m->sources[i].state);
    free(m->sources);
    free(m);
}

/* Tries to open s if it is closed and its back-off expired. */
static void maybe_open(gw_monitor *m, source *s, int64_t now)
{
    if (s->state || now < s->retry_at_ns)
        return;
    gw_error_clear(&s->open_error);
    void *state = NULL;
    int rc = s->ops->open(&state, &m->cfg, &s->open_error);
    if (rc == GW_OK && state) {
        s->state = state;
        s->backoff_ns = BACKOFF_MIN_NS;
        return;
    }
    if (rc == GW_OK) /* a backend must hand back state on success */
        gw__error_set(&s->open_error, GW_EINVAL, "%s: opened without state", s->ops->name);
    s->retry_at_ns = now + s->backoff_ns;
    s->backoff_ns = s->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : s->backoff_ns * 2;
}

const char *gw_monitor_busy_source(gw_monitor *m)
{
    return atomic_load(&m->busy);
}

static void sample_source(gw_monitor *m, source *s, gw__collect *c, gw_source_status *st)
{
    gw__strlcpy(st->name, s->ops->name, sizeof st->name);
    atomic_store(&m->busy, s->ops->name);
    maybe_open(m, s, gw__now_mono_ns());
    if (!s->state) {
        st->state = GW_SOURCE_UNAVAILABLE;
        st->error = s->open_error.code;
        gw__strlcpy(st->message, s->open_error.message, sizeof st->message);
        return;
    }
    size_t first = gw__collect_device_count(c);
    gw_error err;
    gw_error_clear(&err);
    int rc = s->ops->sample(s->state, c, &err);
    s->ops->status(s->state, st);
    gw__strlcpy(st->name, s->ops->name, sizeof st->name); /* status must not rename */
    size_t last = gw__collect_device_count(c);
    st->device_count = (uint32_t)(last - first);
    if (rc != GW_OK) {
        st->state = GW_SOURCE_FAILED;
        st->error = rc;
        gw__strlcpy(st->message, err.message, sizeof st->message);
        return;
    }
    bool degraded = false;
    for (size_t i = first; i < last; i++)
        if (gw__collect_device(c, i)->state != GW_DEVICE_OK)
            degraded = true;
    if (degraded && st->state == GW_SOURCE_OK)
        st->state = GW_SOURCE_DEGRADED;
}

/* Writes the one-line CPU-only reason: the failures of GPU sources that are
 * present but not working, else of sources that are absent, else "no GPU". */
static void cpu_only_reason(const gw_snapshot *s, char *out, size_t cap)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, cap);
    for (int pass = 0; pass < 2 && sb.len == 0; pass++) {
        for (size_t i = 0; i < s->n_sources; i++) {
            const gw_source_status *st = &s->sources[i];
            if (strcmp(st->name, "host") == 0 || !st->message[0])
                continue;
            bool absent = st->error == GW_ENODEV || st->error == GW_ENOENT;
            if ((pass == 0) == absent)
                continue;
            if (sb.len)
                gw__strbuf_puts(&sb, "; ");
            gw__strbuf_puts(&sb, st->message);
        }
    }
    gw__strlcpy(out, sb.len && !sb.failed ? sb.data : "no GPU found", cap);
    gw__strbuf_release(&sb);
}

int gw_monitor_sample(gw_monitor *m, gw_snapshot **out, gw_error *err)
{
    *out = NULL;
    int64_t t0 = gw__now_mono_ns();
    int64_t taken = gw__now_real_ns();
    gw__collect c;
    gw__collect_init(&c);
    for (size_t i = 0; i < m->n_sources; i++) {
        gw_source_status *st = gw__collect_add_source(&c);
        if (!st) {
            gw__collect_release(&c);
            return gw__error_set(err, GW_ENOMEM, "monitor: out of memory");
        }
        sample_source(m, &m->sources[i], &c, st);
        atomic_store(&m->busy, NULL);
    }
    for (size_t i = 0; i < c.n_devices; i++)
        c.devices[i].info.index = (uint32_t)i;
    if (!c.host.hostname[0])
        gethostname(c.host.hostname, sizeof c.host.hostname - 1);
    gw_snapshot *s = gw__collect_finish(&c);
    if (!s) {
        gw__collect_release(&c);
        return gw__error_set(err, GW_ENOMEM, "monitor: out of memory");
    }
    s->seq = ++m->seq;
    s->taken_ns = taken;
    s->duration_ns = gw__now_mono_ns() - t0;
    s->cpu_only = s->n_devices == 0;
    if (s->cpu_only)
        cpu_only_reason(s, s->cpu_only_reason, sizeof s->cpu_only_reason);
    *out = s;
    return GW_OK;
}
