/* api.h — the JSON bodies of the HTTP API (docs/serve.md is the contract).
 *
 * Owns: the shape of /health, /gpu/info, /gpu/metrics(/id), /gpu/processes,
 * /api/v1/history, /api/v1/events and error bodies. Device, process, source
 * and host objects come from the report renderer (render/snapshot_json.h)
 * so the API and `report --json` never disagree.
 *
 * Every function appends one JSON document (plus a newline) to sb and
 * returns the HTTP status it implies; check sb->failed afterwards. Inputs
 * are only read.
 */
#ifndef GW_HTTP_API_H
#define GW_HTTP_API_H

#include "render/json_writer.h"
#include "sampler/sampler.h"

#define GW__JSON_CONTENT_TYPE "application/json"

/* What a body may say about the daemon besides the snapshot. */
typedef struct gw__api_ctx {
    bool stale;            /* the snapshot is a stale copy */
    int64_t now_ns;        /* CLOCK_REALTIME */
    int64_t last_good_ns;  /* time of the last real sample; 0: the snapshot's */
    double uptime_seconds;
    const gw__sampler_stats *sampler; /* may be NULL */
    /* /health's "placement" member: writes one JSON value into j (the
     * placement API's gw_place_api_health). NULL: no member. */
    void (*placement)(void *cls, const gw_snapshot *s, gw_json *j);
    void *placement_cls;
    /* /health's "model_servers" member: writes one JSON value into j.
     * NULL: no member. */
    void (*models)(void *cls, gw_json *j);
    void *models_cls;
    /* read_only: process command lines are written as null (/gpu/processes;
     * the placement member withholds reservation notes itself). */
    bool withhold_cmdline;
    /* /health's "cluster_view": whether GET /api/v1/cluster has a view to
     * answer (peers configured) — the web page asks for it only then. */
    bool cluster_view;
} gw__api_ctx;

/* {"error":{"code":status,"message":msg}}; returns status. */
unsigned gw__api_error(gw_strbuf *sb, unsigned status, const char *fmt, ...) GW__PRINTF(3, 4);

/* Overall status ("ok", "degraded", "cpu-only") with the reason, the GPUs,
 * the pool summary and the sources. 200. */
unsigned gw__api_health(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx);

/* Availability, GPU count, sources and versions. 200. */
unsigned gw__api_info(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx);

/* Every GPU plus aggregates; 503 with an error body in CPU-only mode. */
unsigned gw__api_metrics(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx);

/* Finds a GPU by id: UUID (case-insensitive; AMD's hex unique_id may start
 * with a digit), else a decimal index. Returns 200 with *index set, 404 for
 * a well-formed unknown id, 400 for garbage. */
unsigned gw__api_find_device(const gw_snapshot *s, const char *id, size_t *index);

/* One GPU (its device object with "timestamp"); status as find_device,
 * with an error body when not 200. */
unsigned gw__api_metrics_one(gw_strbuf *sb, const gw_snapshot *s, const char *id,
                             const gw__api_ctx *ctx);

/* Processes of every GPU. 200. */
unsigned gw__api_processes(gw_strbuf *sb, const gw_snapshot *s, const gw__api_ctx *ctx);

/* /api/v1/history?gpu=&metric=&since=&step= ; gpu and metric required,
 * since = seconds back from now (default: everything), step = bucket width
 * in seconds (default 0: every sample). 400 for bad parameters, 404 for an
 * unknown GPU. Any parameter may be NULL (absent). */
unsigned gw__api_history(gw_strbuf *sb, const gw_snapshot *s, gw__history *h, const char *gpu,
                         const char *metric, const char *since, const char *step,
                         const gw__api_ctx *ctx);

/* One event as a JSON object into j. */
void gw__api_event_json(gw_json *j, const gw__event *e);

/* /api/v1/events?after=SEQ: events newer than SEQ (default 0), oldest first,
 * at most the ring. 400 for a bad after. */
unsigned gw__api_events(gw_strbuf *sb, gw__events *ev, const char *after);

#endif
