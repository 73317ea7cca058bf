/* monitor.c — opens the configured backends and turns one round of their
 * samples into a snapshot: all at once on the caller's thread
 * (gw_monitor_sample), or one source at a time into parts that the daemon's
 * sampler reads under a deadline each and assembles (monitor.h).
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
 *  4. A source's read is the same code on both paths (sample_source); only
 *     gw_monitor_sample records the source being read (busy), since on the
 *     part path several sources may be read at once.
 *  5. gw_monitor_sample and the read_memory path hold sample_lock, so a
 *     watcher thread and the application may both use one monitor; the
 *     newest snapshot becomes `latest` and its memory figures the table
 *     (a seqlock: even seq when stable) under latest_lock, taken inside
 *     sample_lock (never the other way round), so latest never goes back.
 */
#include "backends/monitor.h"
#include "backends/backend.h"
#include "backends/procinfo.h"
#include "core/snapshot_build.h"
#include "core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
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
    pthread_mutex_t sample_lock; /* one reading of the sources at a time */
    pthread_mutex_t latest_lock; /* guards latest only (held for a pointer copy) */
    gw_snapshot *latest;         /* newest gw_monitor_sample snapshot, one reference */
    uint64_t table[3 + 3 * GW_MEMORY_TABLE_DEVICES]; /* gw_monitor_memory_table; written
                                                        under latest_lock */
};

void gw_config_init_size(gw_config *cfg, size_t size)
{
    gw_config d;
    memset(&d, 0, sizeof d);
    d.processes = true;
    d.process_host_stats = true;
    if (size > sizeof d)
        size = sizeof d; /* a newer caller: its extra fields stay as they are */
    d.size = (uint32_t)size;
    memcpy(cfg, &d, size);
}

/* cfg_in as this library's gw_config: the caller's first cfg_in->size bytes
 * over the defaults (a caller built against an older header has fewer). */
static int config_from_caller(gw_config *out, const gw_config *cfg_in, gw_error *err)
{
    gw_config_init(out);
    if (!cfg_in)
        return GW_OK;
    size_t size = cfg_in->size;
    if (size < offsetof(gw_config, nvml_library))
        return gw__error_set(err, GW_EINVAL,
                             "monitor: gw_config.size is %zu: set it up with gw_config_init",
                             size);
    memcpy(out, cfg_in, size < sizeof *out ? size : sizeof *out);
    out->size = sizeof *out;
    return GW_OK;
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
    gw_config given;
    int rc = config_from_caller(&given, cfg_in, err);
    if (rc)
        return rc;
    cfg_in = &given;
    rc = check_source_list(cfg_in->sources, err);
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
    pthread_mutex_init(&m->sample_lock, NULL);
    pthread_mutex_init(&m->latest_lock, NULL);
    m->table[1] = 1; /* layout version; no device until the first sample */
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
    gw_snapshot_release(m->latest);
    pthread_mutex_destroy(&m->sample_lock);
    pthread_mutex_destroy(&m->latest_lock);
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

/* Numbers the devices, fills the hostname when no source did, and turns c
 * into a snapshot with the CPU-only verdict; NULL when out of memory (c
 * unchanged). */
static gw_snapshot *finish(gw__collect *c, int64_t taken_ns, int64_t duration_ns)
{
    for (size_t i = 0; i < c->n_devices; i++)
        c->devices[i].info.index = (uint32_t)i;
    if (!c->host.hostname[0])
        gethostname(c->host.hostname, sizeof c->host.hostname - 1);
    gw_snapshot *s = gw__collect_finish(c);
    if (!s)
        return NULL;
    s->taken_ns = taken_ns;
    s->duration_ns = duration_ns;
    s->cpu_only = s->n_devices == 0;
    if (s->cpu_only)
        cpu_only_reason(s, s->cpu_only_reason, sizeof s->cpu_only_reason);
    return s;
}

static int sample_locked(gw_monitor *m, gw_snapshot **out, gw_error *err)
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
        atomic_store(&m->busy, m->sources[i].ops->name);
        sample_source(m, &m->sources[i], &c, st);
        atomic_store(&m->busy, NULL);
    }
    gw_snapshot *s = finish(&c, taken, gw__now_mono_ns() - t0);
    if (!s) {
        gw__collect_release(&c);
        return gw__error_set(err, GW_ENOMEM, "monitor: out of memory");
    }
    s->seq = ++m->seq;
    *out = s;
    return GW_OK;
}

/* Writes s's memory figures into the table as a seqlock writer (caller
 * holds latest_lock, which orders writers): seq made odd by an acq_rel
 * increment; every word a release store, so a reader whose acquire load
 * sees a new word also sees the odd seq (and retries); seq made even by a
 * release store after them. */
static void table_write(gw_monitor *m, const gw_snapshot *s)
{
    uint64_t *t = m->table;
    size_t n = s->n_devices < GW_MEMORY_TABLE_DEVICES ? s->n_devices : GW_MEMORY_TABLE_DEVICES;
    uint64_t seq = __atomic_add_fetch(&t[0], 1, __ATOMIC_ACQ_REL); /* odd: being written */
    __atomic_store_n(&t[1], 1, __ATOMIC_RELEASE);
    __atomic_store_n(&t[2], n, __ATOMIC_RELEASE);
    for (size_t i = 0; i < n; i++) {
        const gw_device *d = &s->devices[i];
        uint64_t f = 0, total = 0;
        bool ok = d->state != GW_DEVICE_LOST && d->state != GW_DEVICE_ERROR &&
                  gw__sample_free_total(&d->sample, &f, &total);
        __atomic_store_n(&t[3 + 3 * i], ok ? f : 0, __ATOMIC_RELEASE);
        __atomic_store_n(&t[4 + 3 * i], ok ? total : 0, __ATOMIC_RELEASE);
        __atomic_store_n(&t[5 + 3 * i], ok ? 1 : 0, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&t[0], seq + 1, __ATOMIC_RELEASE); /* even: stable */
}

int gw_monitor_sample(gw_monitor *m, gw_snapshot **out, gw_error *err)
{
    if (!m) {
        *out = NULL;
        return gw__error_set(err, GW_EINVAL, "monitor: NULL");
    }
    pthread_mutex_lock(&m->sample_lock);
    int rc = sample_locked(m, out, err);
    gw_snapshot *old = NULL;
    if (rc == GW_OK) { /* published under sample_lock: latest only moves forward */
        gw_snapshot_acquire(*out);
        pthread_mutex_lock(&m->latest_lock);
        old = m->latest;
        m->latest = *out;
        table_write(m, *out);
        pthread_mutex_unlock(&m->latest_lock);
    }
    pthread_mutex_unlock(&m->sample_lock);
    gw_snapshot_release(old);
    return rc;
}

const uint64_t *gw_monitor_memory_table(gw_monitor *m, size_t *n_words)
{
    if (n_words)
        *n_words = sizeof m->table / sizeof m->table[0];
    return m->table;
}

gw_snapshot *gw_monitor_latest(gw_monitor *m)
{
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->latest_lock);
    gw_snapshot *s = m->latest ? gw_snapshot_acquire(m->latest) : NULL;
    pthread_mutex_unlock(&m->latest_lock);
    return s;
}

/* The open source that reads device d, or NULL (caller holds sample_lock). */
static source *source_of(gw_monitor *m, const gw_device *d)
{
    for (size_t i = 0; i < m->n_sources; i++)
        if (strcmp(m->sources[i].ops->name, d->info.source) == 0)
            return m->sources[i].state ? &m->sources[i] : NULL;
    return NULL;
}

int gw__monitor_read_memory(gw_monitor *m, const gw_device *d, gw_sample *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->sample_lock);
    source *s = source_of(m, d);
    int rc = s && s->ops->read_memory
                 ? s->ops->read_memory(s->state, d->info.source_index, out, err)
                 : GW_ENOTSUP;
    pthread_mutex_unlock(&m->sample_lock);
    return rc;
}

int gw__monitor_read_process_memory(gw_monitor *m, const gw_device *d, uint32_t pid,
                                    uint64_t *bytes, gw_error *err)
{
    pthread_mutex_lock(&m->sample_lock);
    source *s = source_of(m, d);
    int rc = s && s->ops->read_process_memory
                 ? s->ops->read_process_memory(s->state, d->info.source_index, pid, bytes, err)
                 : GW_ENOTSUP;
    pthread_mutex_unlock(&m->sample_lock);
    return rc;
}

/* ------------------------------------------------------ one source: parts */

size_t gw__monitor_source_count(const gw_monitor *m) { return m->n_sources; }

const char *gw__monitor_source_name(const gw_monitor *m, size_t i)
{
    return i < m->n_sources ? m->sources[i].ops->name : "";
}

/* Drops ctx's n_ctx devices from the front of c and re-points the
 * processes (and MIG devices' parents) at the source's own devices (any
 * process pointing into ctx, which no backend writes, is dropped). */
static void strip_context(gw__collect *c, size_t n_ctx)
{
    if (n_ctx == 0)
        return; /* nothing to drop (and devices may be NULL) */
    memmove(c->devices, c->devices + n_ctx, (c->n_devices - n_ctx) * sizeof *c->devices);
    c->n_devices -= n_ctx;
    for (size_t i = 0; i < c->n_devices; i++)
        if (c->devices[i].info.mig && c->devices[i].info.mig_parent >= n_ctx)
            c->devices[i].info.mig_parent -= (uint32_t)n_ctx;
    size_t k = 0;
    for (size_t i = 0; i < c->n_processes; i++) {
        if (c->processes[i].device_index < n_ctx ||
            c->processes[i].device_index - n_ctx >= c->n_devices)
            continue;
        c->processes[k] = c->processes[i];
        c->processes[k++].device_index -= (uint32_t)n_ctx;
    }
    c->n_processes = k;
}

int gw__monitor_sample_source(gw_monitor *m, size_t i, const gw_device *ctx, size_t n_ctx,
                              gw__collect *part, gw_error *err)
{
    gw__collect_release(part);
    if (i >= m->n_sources)
        return gw__error_set(err, GW_EINVAL, "monitor: no source %zu", i);
    for (size_t k = 0; k < n_ctx; k++) {
        gw_device *d = gw__collect_add_device(part);
        if (!d)
            goto nomem;
        *d = ctx[k];
        d->info.index = (uint32_t)k;
    }
    gw_source_status *st = gw__collect_add_source(part);
    if (!st)
        goto nomem;
    sample_source(m, &m->sources[i], part, st);
    strip_context(part, n_ctx);
    return GW_OK;
nomem:
    gw__collect_release(part);
    return gw__error_set(err, GW_ENOMEM, "monitor: out of memory");
}

/* True when a source wrote host figures (the host source). */
static bool host_given(const gw_host *h) { return h->valid != 0 || h->hostname[0]; }

/* Appends part p to c: devices (renumbered later), processes re-pointed,
 * its status, its host figures when it has some. */
static int append_part(gw__collect *c, const gw__collect *p)
{
    size_t base = c->n_devices;
    for (size_t i = 0; i < p->n_devices; i++) {
        gw_device *d = gw__collect_add_device(c);
        if (!d)
            return GW_ENOMEM;
        *d = p->devices[i];
        if (d->info.mig) /* its GPU is in the same part */
            d->info.mig_parent += (uint32_t)base;
    }
    for (size_t i = 0; i < p->n_processes; i++) {
        gw_process *q = gw__collect_add_process(c);
        if (!q)
            return GW_ENOMEM;
        *q = p->processes[i];
        q->device_index += (uint32_t)base;
    }
    for (size_t i = 0; i < p->n_sources; i++) {
        gw_source_status *st = gw__collect_add_source(c);
        if (!st)
            return GW_ENOMEM;
        *st = p->sources[i];
    }
    if (host_given(&p->host))
        c->host = p->host;
    return GW_OK;
}

gw_snapshot *gw__snapshot_assemble(const gw__collect *const *parts, size_t n, int64_t taken_ns,
                                   int64_t duration_ns)
{
    gw__collect c;
    gw__collect_init(&c);
    for (size_t i = 0; i < n; i++)
        if (append_part(&c, parts[i]) != GW_OK) {
            gw__collect_release(&c);
            return NULL;
        }
    gw_snapshot *s = finish(&c, taken_ns, duration_ns);
    if (!s)
        gw__collect_release(&c);
    return s;
}
