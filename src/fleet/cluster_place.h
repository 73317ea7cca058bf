/* cluster_place.h — placement across nodes: which node (and which of its
 * GPUs) a memory need goes to, with the placement engine every node uses
 * for itself (place/plan.h), on each node's GPUs as the cluster view holds
 * them (free memory minus the node's pending reservations: node.h
 * invariant 2).
 *
 * Owns: one plan per node and the choice among them:
 *  1. Only nodes that are up are planned on; a node that is down, or a
 *     bare Ollama node (its GPUs are not known), is listed with the reason.
 *  2. A plan that puts every layer on GPUs beats a partial one; then the
 *     fewest GPUs; then, under best-fit and pack, the node whose used GPUs
 *     have the least usable memory (big free areas elsewhere stay free),
 *     under spread the most; then configuration order.
 *  3. Nothing is reserved: the chosen node's own POST
 *     /api/v1/reservations does that (its ledger is the truth).
 */
#ifndef GW_FLEET_CLUSTER_PLAN_H
#define GW_FLEET_CLUSTER_PLAN_H

#include "fleet/cluster.h"
#include "place/plan.h"

typedef struct gw__node_plan {
    bool planned;            /* up with GPUs known: plan is filled */
    char why_not[160];       /* when not planned */
    gw_place_device *devs;   /* the node's GPUs as planned on (owned) */
    size_t n_devs;
    gw_plan plan;
} gw__node_plan;

typedef struct gw__cluster_plan {
    gw__node_plan *nodes;    /* one per cluster node, same order */
    size_t n_nodes;
    long chosen;             /* index of the chosen node; -1: none fits */
} gw__cluster_plan;

/* Plans need on every node of c with opts (policy, margin, gpus; a LIST
 * policy is refused: device lists are per host). GW_OK with out filled
 * (chosen -1 when nothing fits anywhere), GW_EINVAL / GW_ENOMEM naming
 * the problem. Caller releases out. */
int gw__cluster_place(const gw__cluster *c, const gw_place_need *need, const gw_place_opts *opts,
                      gw__cluster_plan *out, gw_error *err);

void gw__cluster_plan_release(gw__cluster_plan *p);

/* {"schema": "gpuwatch.cluster_plan/1", "fits", "node": {name, url} |
 * null, "plan": (docs/placement.md's plan) | null, "nodes": [{"name",
 * "url", "up", "fits", "partial", "gpus", "gpu_bytes", "reason"}]}. */
void gw__cluster_plan_json(gw_json *j, const gw__cluster *c, const gw__cluster_plan *p);

/* The same for people: the chosen node and its plan, then one line per
 * other node. note as gw_place_print_plan's. */
void gw__cluster_plan_print(FILE *out, const gw__cluster *c, const gw__cluster_plan *p,
                            const char *note);

#endif
