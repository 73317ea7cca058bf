/* prom.h — a snapshot as Prometheus text exposition format 0.0.4, and that
 * text rewritten as OpenMetrics 1.0.0.
 *
 * Owns: the metric names. Native families are gpuwatch_* in base units
 * (bytes, seconds, joules, celsius, watts, hertz, ratios 0..1) and pass
 * `promtool check metrics` without lint warnings; opt-in compatibility
 * families reuse dcgm-exporter's (DCGM_FI_DEV_*) and nvidia_gpu_exporter's
 * (nvidia_smi_*) names, labels and units so existing dashboards work.
 *
 * Invariants: one HELP and one TYPE per family, before its samples, all of
 * a family's lines together; a name + label set appears once; a metric whose
 * valid bit is clear is absent (never 0); a lost GPU still has its
 * gpuwatch_gpu_state and gpuwatch_gpu_info series; label values escaped;
 * series with a pid label only with GW__PROM_PROCESSES. The OpenMetrics
 * text has exactly the Prometheus text's samples (it is made from it).
 */
#ifndef GW_HTTP_PROM_H
#define GW_HTTP_PROM_H

#include "http/negotiate.h"
#include "progress/progress.h"
#include "sampler/sampler.h"

#define GW__PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define GW__OPENMETRICS_CONTENT_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

enum {
    GW__PROM_NATIVE = 1u << 0,
    GW__PROM_DCGM = 1u << 1,   /* dcgm-exporter compatible */
    GW__PROM_NVSMI = 1u << 2,  /* nvidia_gpu_exporter compatible */
    GW__PROM_PROCESSES = 1u << 3, /* per-process series (pid label): metrics_processes */
};

/* One cell of gpuwatch_http_requests_total{route,code}. */
typedef struct gw__prom_http_count {
    const char *route, *code; /* label values (static) */
    uint64_t count;
} gw__prom_http_count;

/* Figures about the daemon itself; any pointer may be NULL (family absent). */
typedef struct gw__prom_self {
    const gw__sampler_stats *sampler;
    const uint64_t *event_counts; /* GW__EV_COUNT entries */
    bool stale;                   /* the snapshot is a stale copy */
    int64_t last_good_ns;         /* CLOCK_REALTIME of the last real sample; 0 unknown */
    int64_t now_ns;               /* render time, CLOCK_REALTIME */
    const gw__prom_http_count *http_requests; /* non-zero cells; NULL: family absent */
    size_t n_http_requests;
    uint64_t scrapes[GW__FMT_COUNT][GW__ENC_COUNT]; /* /metrics answers by format, coding */
    /* The placement ledger's live reservations per device of the snapshot
     * (s->n_devices entries each): count and bytes. NULL: no ledger, the
     * families are absent. */
    const uint64_t *place_reservations, *place_bytes, *place_pending;
    uint64_t log_dropped;         /* log lines lost to a stalled log reader */
    double process_cpu_seconds;   /* < 0: unknown */
    double resident_bytes;        /* < 0: unknown */
    double start_time_seconds;    /* unix time; <= 0: unknown */
    /* Live job progress records (POST /api/v1/progress), sorted by (job,
     * gpu); NULL or none: the gpuwatch_job_progress_* families are absent. */
    const gw_progress *progress;
    size_t n_progress;
    /* The model servers the daemon asks (models/poller.h); NULL or none:
     * the gpuwatch_model_* families are absent. */
    const struct gw__model_server *models;
    size_t n_models;
} gw__prom_self;

/* Appends the families selected by `families` (GW__PROM_* bits) for s to
 * sb. Check sb->failed once afterwards (ENOMEM or over the buffer's max). */
void gw__render_prometheus(gw_strbuf *sb, const gw_snapshot *s, const gw__prom_self *self,
                           unsigned families);

/* Appends the OpenMetrics 1.0.0 form of Prometheus text prom[0..len) (as
 * gw__render_prometheus writes it) to out: a counter family's HELP/TYPE name
 * loses its _total suffix (a counter named without one is typed unknown, so
 * its sample names stay those dashboards know), HELP text escapes '"', and
 * "# EOF" ends it. Check out->failed once afterwards. */
void gw__prom_to_openmetrics(gw_strbuf *out, const char *prom, size_t len);

/* Appends v as a Prometheus label value body (escaping \ " and newline). */
void gw__prom_escape(gw_strbuf *sb, const char *v);

#endif
