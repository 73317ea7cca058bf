/* poller.c — see poller.h. */
#include "models/poller.h"

#include "core/periodic.h"
#include "core/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct gw__models_poller {
    gw__periodic per;          /* the thread; per.lock guards what follows */
    char *ollama, *llama;      /* NULL: defaults */
    unsigned interval_ms, timeout_ms;
    gw__server_list latest;    /* shown; swapped whole (invariant 1) */
    uint64_t rounds;
    gw__server_list found;     /* llama-servers among the last processes (URL, pid) */
};

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

/* One round: the servers to ask (configured + found), asked outside the
 * lock, then swapped in. */
static void round_once(void *arg)
{
    gw__models_poller *p = arg;
    gw__server_list next = {0};
    pthread_mutex_lock(&p->per.lock);
    gw__server_list_plan(&next, p->ollama, p->llama, NULL);
    bool llama_none = p->llama && strcmp(p->llama, "none") == 0;
    for (size_t i = 0; !llama_none && i < p->found.n; i++)
        gw__server_list_add(&next, GW__SERVER_LLAMACPP, p->found.v[i].url, false,
                            p->found.v[i].pid);
    pthread_mutex_unlock(&p->per.lock);
    gw__model_servers_fetch(next.v, next.n, (int)p->timeout_ms);
    gw__server_list_keep_shown(&next);
    pthread_mutex_lock(&p->per.lock);
    gw__server_list old = p->latest;
    p->latest = next;
    p->rounds++;
    pthread_mutex_unlock(&p->per.lock);
    gw__server_list_release(&old);
}

int gw__models_poller_start(gw__models_poller **out, const gw__models_poller_config *cfg,
                            gw_error *err)
{
    *out = NULL;
    gw__models_poller *p = calloc(1, sizeof *p);
    if (!p)
        return gw__error_set(err, GW_ENOMEM, "model servers: out of memory");
    bool failed = false;
    p->ollama = dup_or_null(cfg->ollama, &failed);
    p->llama = dup_or_null(cfg->llama, &failed);
    p->interval_ms = cfg->interval_ms ? cfg->interval_ms : 5000;
    p->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    if (failed || gw__periodic_start(&p->per, p->interval_ms, round_once, p, "model servers",
                                     err) != GW_OK) {
        free(p->ollama);
        free(p->llama);
        free(p);
        return failed ? gw__error_set(err, GW_ENOMEM, "model servers: out of memory") : GW_EIO;
    }
    *out = p;
    return GW_OK;
}

void gw__models_poller_stop(gw__models_poller *p)
{
    if (!p)
        return;
    gw__periodic_stop(&p->per);
    gw__server_list_release(&p->latest);
    gw__server_list_release(&p->found);
    free(p->ollama);
    free(p->llama);
    free(p);
}

void gw__models_poller_annotate(void *ctx, gw_snapshot *snap)
{
    gw__models_poller *p = ctx;
    gw__server_list found = {0};
    gw__server_list_plan(&found, "none", NULL, snap); /* the llama-servers only */
    pthread_mutex_lock(&p->per.lock);
    gw__server_list old = p->found;
    p->found = found;
    gw__server_list_attribute(&p->latest, snap);
    pthread_mutex_unlock(&p->per.lock);
    gw__server_list_release(&old);
}

void gw__models_poller_read(gw__models_poller *p,
                            void (*fn)(void *arg, const gw__server_list *l, uint64_t rounds),
                            void *arg)
{
    pthread_mutex_lock(&p->per.lock);
    fn(arg, &p->latest, p->rounds);
    pthread_mutex_unlock(&p->per.lock);
}
