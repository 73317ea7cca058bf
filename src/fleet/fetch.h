/* fetch.h — many HTTP requests at once, each under a deadline, on one
 * thread: how the fleet code asks its peers and Prometheus. A plain
 * http:// URL with an IP address is served by plain_http.h's HTTP/1.0
 * client; https:// and host names by libcurl multi (loaded only when some
 * URL needs it: gw__fetch_needs_curl). One poll covers both.
 *
 * Owns: the transfers of one gw__fetch_run call, their bodies (capped),
 * and the straggler rule below. Knows nothing of what the bodies mean.
 *
 * The straggler rule (opts.straggler_cut, what a one-shot `report
 * --cluster` uses): once some transfer has answered, a transfer still
 * running 2 x (the latest answer's time) + 2 ms after the start is
 * abandoned: its rc is GW_ETIMEDOUT and its error says it did not answer
 * while the others did. The wait for the cut is timed to the nanosecond
 * on a plain-HTTP poll (ppoll), to the millisecond (rounded up) when
 * libcurl has transfers too. So one hung peer costs a report at most twice
 * the slowest healthy peer's time plus 2-3 ms, never its own deadline: the
 * issue's bound for the whole command is 2 x + 5 ms, and the process around
 * the poll (start, output, exit) takes the rest. The price: a healthy peer
 * much slower than the others (a far one beside near ones) is cut too;
 * `--wait` is the way to see it. The daemon, which keeps each peer's last
 * good data, waits for the full deadline instead.
 *
 * Invariants:
 *  1. Every transfer ends: answered (rc GW_OK, status and body set) or
 *     failed (rc < 0, error names why), within opts.timeout_ms.
 *  2. A body never exceeds opts.max_body; a longer answer fails GW_ERANGE.
 *  3. Nothing here blocks longer than the deadline; no global state beyond
 *     what gw__curl_load set up.
 */
#ifndef GW_FLEET_FETCH_H
#define GW_FLEET_FETCH_H

#include "core/util.h"
#include "fleet/curl_lib.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw__fetch {
    /* in (set before gw__fetch_run) */
    char url[600];            /* http:// or https://, with path and query */
    const char *token;        /* bearer token; NULL/empty: none (borrowed) */
    const char *post;         /* body to POST; NULL: GET (borrowed) */
    const char *content_type; /* of post; NULL: application/json */
    /* out */
    int rc;                   /* GW_OK: an HTTP answer (any status) */
    long status;              /* HTTP status when rc == GW_OK */
    gw_strbuf body;           /* the answer's body (gw__fetch_release frees) */
    char error[256];          /* why not, when rc < 0 */
    int64_t elapsed_ns;       /* start of the run to answer or failure */
} gw__fetch;

typedef struct gw__fetch_opts {
    int timeout_ms;           /* deadline of every transfer; 0: 2000 */
    bool straggler_cut;       /* see above */
    const char *ca_file;      /* TLS: trust this CA bundle; NULL: the system's */
    size_t max_body;          /* 0: 16 MiB */
    int64_t start_ns;         /* CLOCK_MONOTONIC the times count from; 0: the call */
    /* Called (on the caller's thread) as soon as transfer i has ended,
     * answered or not, so its body can be used while others still run;
     * NULL: none. Transfers cut by the straggler rule are reported too. */
    void (*on_done)(void *ctx, size_t i);
    void *ctx;
} gw__fetch_opts;

/* True when url needs libcurl (https://, a host name); false for a plain
 * http:// URL with an IPv4 or [IPv6] address, which fetch serves itself. */
bool gw__fetch_needs_curl(const char *url);

/* Prepares v for a run: zeroes everything but url, token, post. */
void gw__fetch_init(gw__fetch *f);

/* Runs every transfer of v[0..n) at once and returns when all have ended
 * (invariant 1). lib may be NULL or unloaded when no URL needs curl; a URL
 * that does then fails GW_ELOAD on its own. Per-transfer outcomes are in v[i].rc / error. Returns
 * GW_OK, or GW_ENOMEM / GW_EIO when the run could not be set up (out of
 * memory) or libcurl's poll failed (err says why; every v[i].rc then says
 * the same). */
int gw__fetch_run(const gw__curl_lib *lib, gw__fetch *v, size_t n, const gw__fetch_opts *o,
                  gw_error *err);

/* Frees f's body; f can be run again after gw__fetch_init. */
void gw__fetch_release(gw__fetch *f);

#endif
