/* fuzz_node.c — libFuzzer target for the cluster view's decoders of a
 * peer's answers (src/fleet/node.c): the input as a gpuwatch daemon's
 * /health body and as a bare Ollama server's /api/ps (and /api/version)
 * body. Any body must decode or fail cleanly; a failure leaves the node's
 * previous figures exactly as they were (node.h invariant 1); what decodes
 * has bounded strings, a uuid per GPU and pending within what was said.
 * Built by scripts/fuzz-node.sh; its corpus (tests/fleet/corpus/fuzz_node)
 * replays as a normal test. */
#include "fleet/node.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bounded(const char *s, size_t cap)
{
    if (strnlen(s, cap) == cap)
        abort();
}

/* A node with one GPU and one model already, as a daemon's cluster view
 * holds a node between polls. */
static void seed(gw__node *n)
{
    memset(n, 0, sizeof *n);
    gw__strlcpy(n->url, "http://peer:19400", sizeof n->url);
    gw__strlcpy(n->name, "peer", sizeof n->name);
    gw__node_gpu g;
    memset(&g, 0, sizeof g);
    gw__strlcpy(g.dev.uuid, "GPU-seed", sizeof g.dev.uuid);
    g.dev.free = 42;
    g.dev.has_free = true;
    gw__node_model m;
    memset(&m, 0, sizeof m);
    gw__strlcpy(m.m.name, "seed:1b", sizeof m.m.name);
    if (gw__node_add_gpu(n, &g) || gw__node_add_model(n, &m))
        abort();
    n->up = true;
}

static void check(const gw__node *n, int rc)
{
    if (rc != GW_OK) { /* untouched: the seed's one GPU and model */
        if (n->n_gpus != 1 || strcmp(n->gpus[0].dev.uuid, "GPU-seed") != 0 ||
            n->gpus[0].dev.free != 42 || n->n_models != 1)
            abort();
        return;
    }
    if (!gw__node_check(n))
        abort();
    bounded(n->name, sizeof n->name);
    bounded(n->version, sizeof n->version);
    bounded(n->status, sizeof n->status);
    for (size_t i = 0; i < n->n_gpus; i++) {
        bounded(n->gpus[i].dev.uuid, sizeof n->gpus[i].dev.uuid);
        bounded(n->gpus[i].dev.name, sizeof n->gpus[i].dev.name);
        if (!n->gpus[i].dev.uuid[0])
            abort(); /* every GPU has an identity ("index:N" at least) */
    }
    for (size_t i = 0; i < n->n_models; i++) {
        bounded(n->models[i].m.name, sizeof n->models[i].m.name);
        bounded(n->models[i].server, sizeof n->models[i].server);
        if (!n->models[i].m.name[0])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw__node n;
    gw_error err;
    seed(&n);
    check(&n, gw__node_decode_health(&n, (const char *)data, size, &err));
    gw__node_clear(&n);
    seed(&n);
    check(&n, gw__node_decode_ollama(&n, (const char *)data, size, (const char *)data, size, &err));
    gw__node_clear(&n);
    return 0;
}
