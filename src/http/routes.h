/* routes.h — the daemon's route table: which (method, path) pairs exist,
 * what each needs (a body, credentials because it mutates), and the names
 * they are counted under in gpuwatch_http_requests_total{route,code}.
 *
 * Owns: the path patterns and methods (docs/serve.md lists the same), the
 * per-operation flags the access rules read, the fixed set of status codes
 * the request counter keeps apart, and the counter table itself. It does not
 * own the handlers: server.c maps each gw__op to one through a designated
 * initialiser table, so an operation without a handler is caught by
 * gw__routes_check at server start (an assert), never by a request.
 *
 * Patterns are literal segments plus at most one "{id}" segment, which
 * matches any run of characters up to the next '/' (possibly empty: the
 * handler says what an id must look like). Matching is on the decoded path
 * MHD hands over, without the query string.
 *
 * Invariants (checked by gw__routes_check):
 *  1. Every gw__route has exactly one pattern and name; names are the
 *     route label values and never change (dashboards select on them).
 *  2. Every gw__op has one row in the operation table, in enum order, and
 *     its route's Allow list names its method.
 *  3. A pattern holds at most one "{id}"; "other" (GW__ROUTE_OTHER) is
 *     never matched, it counts requests for unknown paths. Patterns are
 *     tried in table order and the first match wins (no two overlap today:
 *     door_test.c checks every route's sample paths land where expected).
 */
#ifndef GW_HTTP_ROUTES_H
#define GW_HTTP_ROUTES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw__route {
    GW__ROUTE_INDEX,        /* "/" */
    GW__ROUTE_HEALTH,       /* "/health" */
    GW__ROUTE_GPU_INFO,     /* "/gpu/info" */
    GW__ROUTE_GPU_METRICS,  /* "/gpu/metrics" */
    GW__ROUTE_GPU_ONE,      /* "/gpu/metrics/{id}" */
    GW__ROUTE_GPU_PROCESSES,/* "/gpu/processes" */
    GW__ROUTE_METRICS,      /* "/metrics" */
    GW__ROUTE_HISTORY,      /* "/api/v1/history" */
    GW__ROUTE_EVENTS_JSON,  /* "/api/v1/events" */
    GW__ROUTE_EVENTS,       /* "/events" (Server-Sent Events) */
    GW__ROUTE_RELOAD,       /* "/api/v1/reload" */
    GW__ROUTE_PLAN,         /* "/api/v1/plan" */
    GW__ROUTE_RESERVATIONS, /* "/api/v1/reservations" */
    GW__ROUTE_RESERVATION,  /* "/api/v1/reservations/{id}" */
    GW__ROUTE_RENEW,        /* "/api/v1/reservations/{id}/renew" */
    GW__ROUTE_PROGRESS,     /* "/api/v1/progress" (job progress, docs/progress.md) */
    GW__ROUTE_CLUSTER,      /* "/api/v1/cluster" (the cluster view, docs/cluster.md) */
    GW__ROUTE_UI,           /* "/ui/{id}" (the web dashboard's files, docs/web.md) */
    GW__ROUTE_OTHER,        /* no route: counted as route="other" */
    GW__ROUTE_COUNT
} gw__route;

/* One operation = one (route, method). GET rows also answer HEAD. */
typedef enum gw__op {
    GW__OP_INDEX,
    GW__OP_HEALTH,
    GW__OP_GPU_INFO,
    GW__OP_GPU_METRICS,
    GW__OP_GPU_ONE,
    GW__OP_GPU_PROCESSES,
    GW__OP_METRICS,
    GW__OP_HISTORY,
    GW__OP_EVENTS_JSON,
    GW__OP_EVENTS,
    GW__OP_RELOAD,
    GW__OP_PLAN,
    GW__OP_RES_LIST,
    GW__OP_RES_CREATE,
    GW__OP_RES_GET,
    GW__OP_RES_DELETE,
    GW__OP_RES_RENEW,
    GW__OP_PROGRESS_LIST,
    GW__OP_PROGRESS_REPORT,
    GW__OP_CLUSTER,
    GW__OP_UI,
    GW__OP_COUNT
} gw__op;

enum {
    GW__OPF_MUTATING = 1u << 0, /* changes state: credentials when configured; 403 read-only */
    GW__OPF_BODY = 1u << 1,     /* the request body is collected (capped) for the handler */
    GW__OPF_STREAM = 1u << 2,   /* a long-lived response (SSE) */
};

typedef struct gw__op_info {
    gw__op op;
    gw__route route;
    const char *method; /* "GET" (and HEAD), "POST", "DELETE" */
    unsigned flags;     /* GW__OPF_* */
} gw__op_info;

/* Static tables: route names (the label values, e.g. "/gpu/metrics/{id}")
 * and Allow header values; operation rows indexed by gw__op. */
const char *gw__route_name(gw__route r);
const char *gw__route_allow(gw__route r);
const gw__op_info *gw__op_get(gw__op op);

typedef enum gw__match_result {
    GW__MATCH_OK,         /* *op set */
    GW__MATCH_NO_ROUTE,   /* 404; *route = GW__ROUTE_OTHER */
    GW__MATCH_BAD_METHOD, /* 405; *route set: answer with its Allow list */
} gw__match_result;

/* The route and operation for (method, path). path must be NUL-terminated;
 * any bytes are accepted (garbage is simply no route). On OK and BAD_METHOD
 * *route is the path's route; on OK *op is the operation and *id / *id_len
 * a view into path of the "{id}" segment (NULL, 0 for routes without one).
 * Never allocates. */
gw__match_result gw__route_match(const char *method, const char *path, gw__route *route,
                                 gw__op *op, const char **id, size_t *id_len);

/* Invariants 1-3 hold; cheap, for assert(). */
bool gw__routes_check(void);

/* ------------------------------------------------------------ counting */

/* The status codes counted apart; any other lands in the last slot,
 * rendered as code="other". */
#define GW__HTTP_CODES(X)                                                                          \
    X(200) X(201) X(202) X(204) X(304) X(400) X(401) X(403) X(404) X(405) X(409) X(410) X(413)     \
    X(414) X(415) X(422) X(429) X(431) X(500) X(501) X(503)
enum {
#define GW__X(c) GW__CODE_##c,
    GW__HTTP_CODES(GW__X)
#undef GW__X
    GW__CODE_OTHER,
    GW__CODE_COUNT
};

/* Index of status in the counter table (GW__CODE_OTHER when not listed). */
unsigned gw__http_code_index(unsigned status);
/* "200", ..., "other". Static. */
const char *gw__http_code_name(unsigned index);

/* Requests answered, by route and status: relaxed atomic increments, read
 * one cell at a time at rendering (a page's counts may mix requests
 * finishing meanwhile; each cell is exact). Zero-initialise. */
typedef struct gw__http_counts {
    atomic_uint_fast64_t n[GW__ROUTE_COUNT][GW__CODE_COUNT];
} gw__http_counts;

void gw__http_count(gw__http_counts *c, gw__route route, unsigned status);

#endif
