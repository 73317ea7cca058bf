/* remote.h — `gpuwatch top --connect URL`: a frame's data from a running
 * daemon instead of the local sources.
 *
 * Owns: decoding the daemon's JSON (GET /gpu/metrics and /gpu/processes,
 * the report schema of docs/report-json.md; GET /api/v1/events?after=SEQ,
 * the JSON twin of the /events SSE stream, same records) into the data
 * model: a gw_snapshot and gw__event records. Transport: place's minimal
 * HTTP client (place/daemon_client.h: loopback http:// only, deadline on
 * every call).
 *
 * Invariants:
 *  1. The daemon's answer is untrusted: every field is type-checked; a
 *     missing or null field leaves its valid bit clear (never 0 shown as a
 *     value); strings are truncated to their fields.
 *  2. On failure nothing is returned and err names the URL and what failed.
 */
#ifndef GW_TOP_REMOTE_H
#define GW_TOP_REMOTE_H

#include "gpuwatch.h"
#include "progress/progress.h"
#include "sampler/events.h"

typedef struct gw__top_remote gw__top_remote;

/* Parses url ("http://HOST:PORT") and keeps it. GW_EINVAL with err naming
 * it, GW_ENOMEM. Caller frees with gw__top_remote_free. */
int gw__top_remote_open(gw__top_remote **out, const char *url, const char *token,
                        gw_error *err);
void gw__top_remote_free(gw__top_remote *r);

/* One snapshot from the daemon (one reference: caller releases), taken_ns
 * = now. GW_EIO (unreachable, bad status), GW_EPARSE, GW_ENOMEM. */
int gw__top_remote_snapshot(gw__top_remote *r, int timeout_ms, gw_snapshot **out,
                            gw_error *err);

/* Events with seq > after (at most max, oldest first) into out; returns
 * the count (0 on any failure). */
size_t gw__top_remote_events(gw__top_remote *r, int timeout_ms, uint64_t after, gw__event *out,
                             size_t max);

/* The daemon's live job progress records (GET /api/v1/progress) into a
 * new array *out (caller frees; NULL when none). GW_EIO (unreachable, bad
 * status), GW_EPARSE (not the progress list), GW_ENOMEM. */
int gw__top_remote_progress(gw__top_remote *r, int timeout_ms, gw_progress **out, size_t *n,
                            gw_error *err);

/* The URL as given (for the title line). */
const char *gw__top_remote_url(const gw__top_remote *r);

#endif
