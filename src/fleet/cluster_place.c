/* cluster_place.c — see cluster_place.h. */
#include "fleet/cluster_place.h"
#include "core/util.h"
#include "place/request.h"

#include <stdlib.h>
#include <string.h>

void gw__cluster_plan_release(gw__cluster_plan *p)
{
    for (size_t i = 0; i < p->n_nodes; i++) {
        free(p->nodes[i].devs);
        gw_plan_release(&p->nodes[i].plan);
    }
    free(p->nodes);
    memset(p, 0, sizeof *p);
    p->chosen = -1;
}

/* Sum of usable memory of the plan's GPUs. */
static uint64_t used_usable(const gw_plan *p)
{
    uint64_t s = 0;
    for (size_t i = 0; i < p->n_used; i++)
        s += p->used[i].usable;
    return s;
}

/* True when plan a is better than b (invariant 2); both fit. */
static bool better(const gw_plan *a, const gw_plan *b, gw_place_policy policy)
{
    if (a->partial != b->partial)
        return !a->partial;
    if (a->n_used != b->n_used)
        return a->n_used < b->n_used;
    uint64_t ua = used_usable(a), ub = used_usable(b);
    return policy == GW_PLACE_SPREAD ? ua > ub : ua < ub;
}

static int plan_node(const gw__node *n, gw__node_plan *np, const gw_place_need *need,
                     const gw_place_opts *opts, gw_error *err)
{
    gw_plan_init(&np->plan);
    if (!n->up) {
        snprintf(np->why_not, sizeof np->why_not, "unreachable: %.140s", n->error);
        return GW_OK;
    }
    if (n->kind == GW__NODE_OLLAMA) {
        gw__strlcpy(np->why_not, "a bare Ollama node: its GPUs are not known",
                    sizeof np->why_not);
        return GW_OK;
    }
    if (n->n_gpus == 0) {
        gw__strlcpy(np->why_not, "CPU-only", sizeof np->why_not);
        return GW_OK;
    }
    np->devs = calloc(n->n_gpus, sizeof *np->devs);
    if (!np->devs)
        return gw__error_set(err, GW_ENOMEM, "cluster plan: out of memory");
    for (size_t g = 0; g < n->n_gpus; g++)
        np->devs[g] = n->gpus[g].dev;
    np->n_devs = n->n_gpus;
    np->planned = true;
    return gw_place(np->devs, np->n_devs, need, opts, &np->plan, err);
}

int gw__cluster_place(const gw__cluster *c, const gw_place_need *need, const gw_place_opts *opts,
                      gw__cluster_plan *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    out->chosen = -1;
    if (opts->policy == GW_PLACE_LIST)
        return gw__error_set(err, GW_EINVAL, "a device list is per host: it cannot go with a "
                                             "cluster plan (use --gpus N or a policy)");
    out->nodes = calloc(c->n_nodes ? c->n_nodes : 1, sizeof *out->nodes);
    if (!out->nodes)
        return gw__error_set(err, GW_ENOMEM, "cluster plan: out of memory");
    out->n_nodes = c->n_nodes;
    for (size_t i = 0; i < c->n_nodes; i++) {
        gw__node_plan *np = &out->nodes[i];
        int rc = plan_node(&c->nodes[i], np, need, opts, err);
        if (rc != GW_OK) {
            gw__cluster_plan_release(out);
            return rc;
        }
        if (!np->planned || !np->plan.fits)
            continue;
        if (out->chosen < 0 ||
            better(&np->plan, &out->nodes[out->chosen].plan, opts->policy))
            out->chosen = (long)i;
    }
    return GW_OK;
}

static const char *node_reason(const gw__node_plan *np)
{
    if (!np->planned)
        return np->why_not;
    return np->plan.reason[0] ? np->plan.reason : NULL;
}

void gw__cluster_plan_json(gw_json *j, const gw__cluster *c, const gw__cluster_plan *p)
{
    gw__json_object_begin(j);
    gw__json_kv_str(j, "schema", "gpuwatch.cluster_plan/1");
    gw__json_key(j, "fits");
    gw__json_bool(j, p->chosen >= 0);
    gw__json_key(j, "node");
    if (p->chosen >= 0) {
        const gw__node *n = &c->nodes[p->chosen];
        gw__json_object_begin(j);
        gw__json_kv_str(j, "name", n->name);
        gw__json_kv_str(j, "url", n->url);
        gw__json_object_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_key(j, "plan");
    if (p->chosen >= 0)
        gw_place_plan_json(j, &p->nodes[p->chosen].plan, p->nodes[p->chosen].devs);
    else
        gw__json_null(j);
    gw__json_key(j, "nodes");
    gw__json_array_begin(j);
    for (size_t i = 0; i < p->n_nodes; i++) {
        const gw__node_plan *np = &p->nodes[i];
        gw__json_object_begin(j);
        gw__json_kv_str(j, "name", c->nodes[i].name);
        gw__json_kv_str(j, "url", c->nodes[i].url);
        gw__json_key(j, "up");
        gw__json_bool(j, c->nodes[i].up);
        gw__json_key(j, "fits");
        gw__json_bool(j, np->planned && np->plan.fits);
        gw__json_key(j, "partial");
        gw__json_bool(j, np->planned && np->plan.partial);
        gw__json_kv_u64(j, "gpus", np->planned && np->plan.fits, np->plan.n_used);
        gw__json_kv_u64(j, "gpu_bytes", np->planned && np->plan.fits, np->plan.gpu_bytes);
        gw__json_kv_str(j, "reason", node_reason(np));
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_object_end(j);
}

void gw__cluster_plan_print(FILE *out, const gw__cluster *c, const gw__cluster_plan *p,
                            const char *note)
{
    if (p->chosen >= 0) {
        const gw__node *n = &c->nodes[p->chosen];
        fprintf(out, "Node %s (%s)\n", n->name, n->url);
        gw_place_print_plan(out, &p->nodes[p->chosen].plan, p->nodes[p->chosen].devs, note);
    } else {
        fprintf(out, "Does not fit on any node\n");
    }
    fprintf(out, "\nNodes:\n");
    char a[32];
    for (size_t i = 0; i < p->n_nodes; i++) {
        const gw__node_plan *np = &p->nodes[i];
        const gw__node *n = &c->nodes[i];
        fprintf(out, "  %s%-20s %-28s ", (long)i == p->chosen ? "* " : "  ", n->name, n->url);
        if (np->planned && np->plan.fits)
            fprintf(out, "fits%s on %zu GPU%s (%s)\n", np->plan.partial ? " partly" : "",
                    np->plan.n_used, np->plan.n_used == 1 ? "" : "s",
                    gw_place_format_size(np->plan.gpu_bytes, a, sizeof a));
        else
            fprintf(out, "no: %s\n", node_reason(np) ? node_reason(np) : "does not fit");
    }
}
