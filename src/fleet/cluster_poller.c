/* cluster_poller.c — see cluster_poller.h. */
#include "fleet/cluster_poller.h"
#include "core/array.h"
#include "core/periodic.h"
#include "core/util.h"
#include "fleet/cluster_place.h"
#include "fleet/curl_lib.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct gw__cluster_poller {
    gw__periodic per;          /* the thread; per.lock guards latest and polls */
    gw__curl_lib lib;
    gw__cluster_config cfg;    /* strings point into the copies below */
    char *peers, *ollama_nodes, *token, *ca_file, *prometheus, *prometheus_job;
    unsigned interval_ms;
    gw__cluster latest;        /* under lock */
    uint64_t polls;            /* under lock */
    gw__cluster work;          /* the poller thread's own */
};

/* Copies the latest view's nodes into the work cluster's nodes so a node
 * that fails this time keeps its last good figures (invariant 2); in
 * Prometheus mode, so the view survives Prometheus being unreadable. */
static int carry_over(gw__cluster *work, const gw__cluster *latest)
{
    if (work->from_prometheus) { /* its nodes come from the last answer */
        if (GW__ARRAY_RESERVE(work->nodes, work->nodes_cap, latest->n_nodes, GW__ARRAY_UNBOUNDED))
            return GW_ENOMEM;
        memset(work->nodes, 0, latest->n_nodes * sizeof *work->nodes);
        work->n_nodes = latest->n_nodes;
    }
    for (size_t i = 0; i < work->n_nodes && i < latest->n_nodes; i++) {
        gw__node *w = &work->nodes[i];
        const gw__node *l = &latest->nodes[i];
        gw__node_clear(w);
        gw__node copy = *l;
        copy.gpus = NULL;
        copy.models = NULL;
        copy.n_gpus = copy.gpus_cap = copy.n_models = copy.models_cap = 0;
        *w = copy;
        for (size_t g = 0; g < l->n_gpus; g++)
            if (gw__node_add_gpu(w, &l->gpus[g]))
                return GW_ENOMEM;
        for (size_t m = 0; m < l->n_models; m++)
            if (gw__node_add_model(w, &l->models[m]))
                return GW_ENOMEM;
    }
    return GW_OK;
}

static void poll_once(void *arg)
{
    gw__cluster_poller *p = arg;
    gw_error err;
    gw_error_clear(&err);
    gw__cluster_poll(&p->work, &p->lib, &p->cfg, &err);
    pthread_mutex_lock(&p->per.lock);
    gw__cluster old = p->latest;
    p->latest = p->work;
    p->polls++;
    pthread_mutex_unlock(&p->per.lock);
    /* the next poll starts from a copy of this one (same nodes, same order) */
    memset(&p->work, 0, sizeof p->work);
    gw__cluster_release(&old);
    if (gw__cluster_init(&p->work, &p->cfg, &err) == GW_OK) {
        pthread_mutex_lock(&p->per.lock);
        carry_over(&p->work, &p->latest);
        pthread_mutex_unlock(&p->per.lock);
    }
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static void free_copies(gw__cluster_poller *p)
{
    free(p->peers);
    free(p->ollama_nodes);
    free(p->token);
    free(p->ca_file);
    free(p->prometheus);
    free(p->prometheus_job);
}

int gw__cluster_poller_start(gw__cluster_poller **out, const gw__cluster_poller_config *cfg,
                             gw_error *err)
{
    *out = NULL;
    gw__cluster_poller *p = calloc(1, sizeof *p);
    if (!p)
        return gw__error_set(err, GW_ENOMEM, "cluster: out of memory");
    bool failed = false;
    p->cfg = cfg->cluster;
    p->cfg.peers = p->peers = dup_or_null(cfg->cluster.peers, &failed);
    p->cfg.ollama_nodes = p->ollama_nodes = dup_or_null(cfg->cluster.ollama_nodes, &failed);
    p->cfg.token = p->token = dup_or_null(cfg->cluster.token, &failed);
    p->cfg.ca_file = p->ca_file = dup_or_null(cfg->cluster.ca_file, &failed);
    p->cfg.prometheus = p->prometheus = dup_or_null(cfg->cluster.prometheus, &failed);
    p->cfg.prometheus_job = p->prometheus_job = dup_or_null(cfg->cluster.prometheus_job, &failed);
    p->cfg.straggler_cut = false; /* the daemon keeps last good data: full deadlines */
    p->interval_ms = cfg->interval_ms ? cfg->interval_ms : 5000;
    int rc = failed ? gw__error_set(err, GW_ENOMEM, "cluster: out of memory")
                    : gw__cluster_init(&p->work, &p->cfg, err);
    if (rc == GW_OK && gw__cluster_needs_curl(&p->work)) /* before the thread starts */
        rc = gw__curl_load(&p->lib, NULL, err);
    if (rc != GW_OK) {
        gw__cluster_release(&p->work);
        free_copies(p);
        free(p);
        return rc;
    }
    if (gw__periodic_start(&p->per, p->interval_ms, poll_once, p, "cluster", err) != GW_OK) {
        gw__cluster_release(&p->work);
        gw__curl_unload(&p->lib);
        free_copies(p);
        free(p);
        return GW_EIO;
    }
    *out = p;
    return GW_OK;
}

void gw__cluster_poller_stop(gw__cluster_poller *p)
{
    if (!p)
        return;
    gw__periodic_stop(&p->per);
    gw__cluster_release(&p->latest);
    gw__cluster_release(&p->work);
    gw__curl_unload(&p->lib);
    free_copies(p);
    free(p);
}

void gw__cluster_poller_json(gw__cluster_poller *p, gw_strbuf *out, uint64_t *polls)
{
    gw_json j;
    gw__json_init(&j, out, false);
    pthread_mutex_lock(&p->per.lock);
    gw__cluster_json(&j, &p->latest, gw__now_real_ns());
    *polls = p->polls;
    pthread_mutex_unlock(&p->per.lock);
}

int gw__cluster_poller_plan(void *ctx, const gw_place_need *need, const gw_place_opts *opts,
                            gw_json *j, bool *fits, gw_error *err)
{
    gw__cluster_poller *p = ctx;
    pthread_mutex_lock(&p->per.lock);
    int rc;
    if (p->polls == 0) {
        rc = gw__error_set(err, GW_ENODEV, "the cluster view has not been polled yet");
    } else {
        gw__cluster_plan cp;
        rc = gw__cluster_place(&p->latest, need, opts, &cp, err);
        if (rc == GW_OK) {
            *fits = cp.chosen >= 0;
            gw__cluster_plan_json(j, &p->latest, &cp);
            gw__cluster_plan_release(&cp);
        }
    }
    pthread_mutex_unlock(&p->per.lock);
    return rc;
}
