/* routes.c — see routes.h. Owns the route and operation tables and the
 * request counter's code buckets. */
#include "http/routes.h"

#include <string.h>

static const struct {
    const char *name; /* pattern and label value */
    const char *allow;
} routes[GW__ROUTE_COUNT] = {
    [GW__ROUTE_INDEX] = {"/", "GET, HEAD"},
    [GW__ROUTE_HEALTH] = {"/health", "GET, HEAD"},
    [GW__ROUTE_GPU_INFO] = {"/gpu/info", "GET, HEAD"},
    [GW__ROUTE_GPU_METRICS] = {"/gpu/metrics", "GET, HEAD"},
    [GW__ROUTE_GPU_ONE] = {"/gpu/metrics/{id}", "GET, HEAD"},
    [GW__ROUTE_GPU_PROCESSES] = {"/gpu/processes", "GET, HEAD"},
    [GW__ROUTE_METRICS] = {"/metrics", "GET, HEAD"},
    [GW__ROUTE_HISTORY] = {"/api/v1/history", "GET, HEAD"},
    [GW__ROUTE_EVENTS_JSON] = {"/api/v1/events", "GET, HEAD"},
    [GW__ROUTE_EVENTS] = {"/events", "GET, HEAD"},
    [GW__ROUTE_RELOAD] = {"/api/v1/reload", "POST"},
    [GW__ROUTE_PLAN] = {"/api/v1/plan", "POST"},
    [GW__ROUTE_RESERVATIONS] = {"/api/v1/reservations", "GET, HEAD, POST"},
    [GW__ROUTE_RESERVATION] = {"/api/v1/reservations/{id}", "GET, HEAD, DELETE"},
    [GW__ROUTE_RENEW] = {"/api/v1/reservations/{id}/renew", "POST"},
    [GW__ROUTE_PROGRESS] = {"/api/v1/progress", "GET, HEAD, POST"},
    [GW__ROUTE_CLUSTER] = {"/api/v1/cluster", "GET, HEAD"},
    [GW__ROUTE_UI] = {"/ui/{id}", "GET, HEAD"},
    [GW__ROUTE_OTHER] = {"other", ""},
};

#define M GW__OPF_MUTATING
#define B GW__OPF_BODY
static const gw__op_info ops[GW__OP_COUNT] = {
    {GW__OP_INDEX, GW__ROUTE_INDEX, "GET", 0},
    {GW__OP_HEALTH, GW__ROUTE_HEALTH, "GET", 0},
    {GW__OP_GPU_INFO, GW__ROUTE_GPU_INFO, "GET", 0},
    {GW__OP_GPU_METRICS, GW__ROUTE_GPU_METRICS, "GET", 0},
    {GW__OP_GPU_ONE, GW__ROUTE_GPU_ONE, "GET", 0},
    {GW__OP_GPU_PROCESSES, GW__ROUTE_GPU_PROCESSES, "GET", 0},
    {GW__OP_METRICS, GW__ROUTE_METRICS, "GET", 0},
    {GW__OP_HISTORY, GW__ROUTE_HISTORY, "GET", 0},
    {GW__OP_EVENTS_JSON, GW__ROUTE_EVENTS_JSON, "GET", 0},
    {GW__OP_EVENTS, GW__ROUTE_EVENTS, "GET", GW__OPF_STREAM},
    {GW__OP_RELOAD, GW__ROUTE_RELOAD, "POST", M},
    /* a plan is a dry run: it reads the ledger, changes nothing */
    {GW__OP_PLAN, GW__ROUTE_PLAN, "POST", B},
    {GW__OP_RES_LIST, GW__ROUTE_RESERVATIONS, "GET", 0},
    {GW__OP_RES_CREATE, GW__ROUTE_RESERVATIONS, "POST", M | B},
    {GW__OP_RES_GET, GW__ROUTE_RESERVATION, "GET", 0},
    {GW__OP_RES_DELETE, GW__ROUTE_RESERVATION, "DELETE", M},
    {GW__OP_RES_RENEW, GW__ROUTE_RENEW, "POST", M | B},
    {GW__OP_PROGRESS_LIST, GW__ROUTE_PROGRESS, "GET", 0},
    /* a job's report changes the daemon's state: token when configured */
    {GW__OP_PROGRESS_REPORT, GW__ROUTE_PROGRESS, "POST", M | B},
    {GW__OP_CLUSTER, GW__ROUTE_CLUSTER, "GET", 0},
    /* the page's files: read like every other GET (docs/web.md "Access") */
    {GW__OP_UI, GW__ROUTE_UI, "GET", 0},
};
#undef M
#undef B

const char *gw__route_name(gw__route r)
{
    return (unsigned)r < GW__ROUTE_COUNT ? routes[r].name : "other";
}

const char *gw__route_allow(gw__route r)
{
    return (unsigned)r < GW__ROUTE_COUNT ? routes[r].allow : "";
}

const gw__op_info *gw__op_get(gw__op op)
{
    return (unsigned)op < GW__OP_COUNT ? &ops[op] : NULL;
}

/* Matches path against one pattern; on success sets the {id} view. */
static bool pattern_match(const char *pat, const char *path, const char **id, size_t *id_len)
{
    *id = NULL;
    *id_len = 0;
    while (*pat) {
        if (strncmp(pat, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/");
            *id = path;
            *id_len = n;
            path += n;
            pat += 4;
            continue;
        }
        if (*pat != *path)
            return false;
        pat++;
        path++;
    }
    return *path == '\0';
}

static bool method_is(const char *have, const char *row)
{
    if (strcmp(row, "GET") == 0)
        return strcmp(have, "GET") == 0 || strcmp(have, "HEAD") == 0;
    return strcmp(have, row) == 0;
}

gw__match_result gw__route_match(const char *method, const char *path, gw__route *route,
                                 gw__op *op, const char **id, size_t *id_len)
{
    *route = GW__ROUTE_OTHER;
    *id = NULL;
    *id_len = 0;
    if (!path || !method)
        return GW__MATCH_NO_ROUTE;
    for (unsigned r = 0; r < GW__ROUTE_OTHER; r++) {
        const char *v;
        size_t n;
        if (!pattern_match(routes[r].name, path, &v, &n))
            continue;
        *route = (gw__route)r;
        for (unsigned o = 0; o < GW__OP_COUNT; o++)
            if (ops[o].route == (gw__route)r && method_is(method, ops[o].method)) {
                *op = (gw__op)o;
                *id = v;
                *id_len = n;
                return GW__MATCH_OK;
            }
        return GW__MATCH_BAD_METHOD;
    }
    return GW__MATCH_NO_ROUTE;
}

bool gw__routes_check(void)
{
    for (unsigned r = 0; r < GW__ROUTE_COUNT; r++) {
        if (!routes[r].name || !routes[r].allow)
            return false;
        for (unsigned k = 0; k < r; k++)
            if (strcmp(routes[k].name, routes[r].name) == 0)
                return false;
        /* invariant 3: at most one {id} per pattern */
        if (r < GW__ROUTE_OTHER && strstr(routes[r].name, "{id}") &&
            strstr(strstr(routes[r].name, "{id}") + 4, "{id}"))
            return false;
    }
    for (unsigned o = 0; o < GW__OP_COUNT; o++) {
        if (ops[o].op != (gw__op)o || ops[o].route >= GW__ROUTE_OTHER || !ops[o].method)
            return false;
        if (!strstr(routes[ops[o].route].allow, ops[o].method))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ counting */

static const unsigned codes[] = {
#define GW__X(c) c,
    GW__HTTP_CODES(GW__X)
#undef GW__X
};
static const char *const code_names[] = {
#define GW__X(c) #c,
    GW__HTTP_CODES(GW__X)
#undef GW__X
    "other",
};
_Static_assert(sizeof codes / sizeof codes[0] == GW__CODE_OTHER, "one code per slot");
_Static_assert(sizeof code_names / sizeof code_names[0] == GW__CODE_COUNT, "one name per slot");

unsigned gw__http_code_index(unsigned status)
{
    for (unsigned i = 0; i < GW__CODE_OTHER; i++)
        if (codes[i] == status)
            return i;
    return GW__CODE_OTHER;
}

const char *gw__http_code_name(unsigned index)
{
    return index < GW__CODE_COUNT ? code_names[index] : "other";
}

void gw__http_count(gw__http_counts *c, gw__route route, unsigned status)
{
    if ((unsigned)route >= GW__ROUTE_COUNT)
        route = GW__ROUTE_OTHER;
    atomic_fetch_add_explicit(&c->n[route][gw__http_code_index(status)], 1, memory_order_relaxed);
}
