/* front.h — the pool's HTTP front: an OpenAI-compatible API (and
 * llama-server's own routes) that routes each request to its model's child
 * by the "model" field, plus the pool's own status routes.
 *
 * Owns: the libmicrohttpd daemon, run by one event loop thread that also
 * drives every exchange with a child (front.c says how; a request that
 * must wait for a load or a slot waits in a worker thread of its own, so it
 * never holds up another), the route table, request body limits, the
 * bearer token check, and the streaming of children's answers to clients
 * as they arrive.
 *
 * Routes (docs/pool.md has the shapes):
 *   POST /v1/chat/completions /v1/completions /v1/embeddings /v1/rerank
 *        /completion /completions /chat/completions /embedding /embeddings
 *        /rerank /reranking /infill /tokenize /detokenize /apply-template
 *                                   routed by the body's "model"
 *   GET  /props?model=M /slots?model=M      routed by the query's model
 *   GET  /v1/models                          the pool's models (OpenAI list)
 *   GET  /models                             the same, with each state (llama.cpp router)
 *   POST /models/load /models/unload {"model": M}   load / unload now
 *   GET  /health                             GPUs, their models, pool status
 *   GET  /api/v1/pool                        every model's state and figures
 *   GET  /api/v1/pool/M/log                  the model server's recent output
 *   GET  /metrics                            Prometheus text
 *
 * Invariants:
 *  1. A request body over max_body_bytes is answered 413 and never
 *     forwarded; a body that is not a JSON object with a string "model"
 *     (where one is needed) is answered 400 naming what is wrong.
 *  2. Every answer the pool makes itself is JSON in OpenAI's error shape
 *     {"error": {"code", "message", "type"}} with the HTTP status; a
 *     child's answer is passed on with its own status, Content-Type and
 *     body, byte for byte.
 *  3. A client that disconnects ends its exchange with the child (the
 *     child's connection is closed, not reused): at the next write of a
 *     streamed answer, or within 50 ms while it waits on the child; a child
 *     that fails
 *     mid-answer ends the client's answer with an error event (streams)
 *     and a truncated body, never a clean end.
 *  4. With a token configured, every route but GET /health needs
 *     "Authorization: Bearer TOKEN" (401 otherwise).
 */
#ifndef GW_POOL_FRONT_H
#define GW_POOL_FRONT_H

#include "pool/pool.h"

typedef struct gw_pool_front gw_pool_front;

/* Loads libmicrohttpd and serves the pool on its configured listen
 * address (borrowed: the pool outlives the front). Errors: GW_ELOAD
 * (libmicrohttpd), GW_EINVAL (a listen address that does not parse),
 * GW_EIO (cannot bind: the message names the address). */
int gw_pool_front_start(gw_pool_front **out, gw_pool *pool, gw_error *err);

/* The TCP port it listens on (the kernel's choice for port 0). */
unsigned gw_pool_front_port(const gw_pool_front *f);

/* Stops accepting, gives requests in progress up to 2 s to end (call
 * gw_pool_begin_stop first, so that waiting ones answer 503 at once),
 * then closes every connection and frees. NULL is a no-op. */
void gw_pool_front_stop(gw_pool_front *f);

#endif
