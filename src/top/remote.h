/* remote.h — `gpuwatch top --connect URL`: a frame's data from a running
 * daemon instead of the local sources.
 *
 * Owns: decoding the daemon's JSON (GET /gpu/metrics and /gpu/processes,
 * the report schema of docs/report-json.md; GET /api/v1/events?after=SEQ,
 * the JSON twin of the /events SSE stream, same records) into the data
 * model: a gw_snapshot and gw__event records; and following the /events
 * stream itself (core/sse.h), whose "snapshot" records say when the daemon
 * published a new sample and whose other records are its events.
 * Transport: place's minimal HTTP client (place/daemon_client.h: loopback
 * http:// only, deadline on every call; the stream's socket is read
 * without blocking).
 *
 * Invariants:
 *  1. The daemon's answer is untrusted: every field is type-checked; a
 *     missing or null field leaves its valid bit clear (never 0 shown as a
 *     value); strings are truncated to their fields.
 *  2. On failure nothing is returned and err names the URL and what failed.
 */
#ifndef GW_TOP_REMOTE_H
#define GW_TOP_REMOTE_H

#include "core/model.h"
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

/* Opens the daemon's /events stream (closing one already open). GW_OK, or
 * the transport's errors (GW_ENOENT nothing listens, GW_EIO a status other
 * than 200 such as 503 over sse_max_clients, GW_EPARSE not a stream). */
int gw__top_remote_follow(gw__top_remote *r, int timeout_ms, gw_error *err);

/* Closes the stream; a no-op when none is open. */
void gw__top_remote_unfollow(gw__top_remote *r);

/* The stream's socket to poll for input, -1 when none is open. */
int gw__top_remote_stream_fd(const gw__top_remote *r);

/* Reads what the stream holds now, never blocking: its events into out
 * (the newest max, oldest first; returns the count) and *published true
 * when a "snapshot" record came. When the daemon closed the stream, or it
 * broke the SSE format or its limits, the stream is closed (fd -1) and err
 * says why; the events read before still count. */
size_t gw__top_remote_stream_read(gw__top_remote *r, gw__event *out, size_t max, bool *published,
                                  gw_error *err);

/* The URL as given (for the title line). */
const char *gw__top_remote_url(const gw__top_remote *r);

#endif
