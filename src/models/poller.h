/* poller.h — the daemon's model-server poller: every interval it asks the
 * model servers (servers.h: the ones configured, the local Ollama probe,
 * the llama-servers among the GPU processes) and keeps what they said for
 * /health, /metrics and the processes' models.
 *
 * Owns: one thread, the latest server list (behind a mutex), and the
 * llama-server URLs seen among the last snapshot's processes.
 *
 * Invariants:
 *  1. Asking happens on the poller's thread, outside the lock, on a list of
 *     its own; readers see the previous complete list until the new one is
 *     swapped in whole. A server that hangs delays only the poller (each
 *     request has the timeout).
 *  2. gw__models_poller_annotate never blocks on a server: it only copies
 *     URLs out of the snapshot and models in from the latest list.
 */
#ifndef GW_MODELS_POLLER_H
#define GW_MODELS_POLLER_H

#include "models/servers.h"

typedef struct gw__models_poller gw__models_poller;

typedef struct gw__models_poller_config {
    const char *ollama;    /* URL list, "none"; NULL: the local probe (copied) */
    const char *llama;     /* URL list, "none"; NULL: only those found (copied) */
    unsigned interval_ms;  /* between rounds; default 5000 */
    unsigned timeout_ms;   /* per request; default 2000 */
} gw__models_poller_config;

/* Starts the thread (its first round at once). GW_ENOMEM, GW_EIO (no
 * thread). Stop with gw__models_poller_stop. */
int gw__models_poller_start(gw__models_poller **out, const gw__models_poller_config *cfg,
                            gw_error *err);

/* Stops the thread (waits for its round: at most the request timeouts)
 * and frees everything. NULL is a no-op. */
void gw__models_poller_stop(gw__models_poller *p);

/* The sampler's annotate hook (sampler.h): notes the llama-servers among
 * snap's processes for the next round and sets each process's model from
 * the latest list (invariant 2). ctx is the poller. */
void gw__models_poller_annotate(void *ctx, gw_snapshot *snap);

/* Calls fn with the latest shown list under the lock (fn must not block);
 * rounds counts the finished rounds (0: nothing asked yet). */
void gw__models_poller_read(gw__models_poller *p,
                            void (*fn)(void *arg, const gw__server_list *l, uint64_t rounds),
                            void *arg);

#endif
