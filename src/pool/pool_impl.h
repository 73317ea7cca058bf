/* pool_impl.h — the pool object shared by pool.c (state, requests,
 * supervisor), load.c (placement, eviction, children) and report.c (JSON,
 * metrics). Not installed, not for other modules. pool.h has the
 * invariants and the lock order. */
#ifndef GW_POOL_POOL_IMPL_H
#define GW_POOL_POOL_IMPL_H

#include "pool/pool.h"
#include "pool/upstream.h"

#include <stdatomic.h>

struct gw_pool {
    gw_pool_config cfg;
    pthread_mutex_t lock;       /* the model table */
    pthread_cond_t cond;        /* any model's state, slots, queues changed */
    unsigned waiting;           /* threads in gw__pool_wait_ms: wake only when some */
    pthread_cond_t sup_cond;    /* the supervisor's own (stop), so requests never wake it */
    pthread_mutex_t place_lock; /* load decisions (pool.h invariant 2) */
    pthread_mutex_t ledger_lock;
    gw_pool_model *models;
    size_t n_models;
    gw_monitor *mon;            /* NULL: enable_gpu_monitoring = false */
    gw_ledger *ledger;
    gw_child_launcher *launcher;
    pthread_t supervisor;
    bool supervisor_started;
    atomic_bool stopping;
    uint32_t next_port;
    uint64_t evictions;         /* models unloaded to make room */
    uint64_t no_fit;            /* loads refused: nowhere to fit */
};

/* load.c */
/* Loads m (its state already LOADING, set by the caller under p->lock):
 * plans, evicts, reserves, launches, waits for /health. On return the state
 * is READY (GW_OK; with take_slot the caller already holds one of its
 * slots, taken as it became READY, so no eviction can slip in between) or
 * FAILED / UNLOADED with *why filled (GW_EIO). */
int gw__pool_load(gw_pool *p, gw_pool_model *m, bool take_slot, gw_pool_refusal *why);
/* Stops m's child and releases its reservation; m is UNLOADING (set by the
 * caller under p->lock, with no request in flight). Ends UNLOADED. */
void gw__pool_unload(gw_pool *p, gw_pool_model *m, uint64_t *counter);
/* Releases m's reservation (under ledger_lock); logs a failure. */
void gw__pool_release_reservation(gw_pool *p, gw_pool_model *m);
/* Prepares m's estimate (once); marks it broken on failure. */
void gw__pool_prepare(gw_pool *p, gw_pool_model *m);
/* GET /health on the child within timeout_ms: true when 200. */
bool gw__pool_child_healthy(uint32_t port, int timeout_ms, char *why, size_t cap);
/* Closes m's kept-alive connections (under p->lock). */
void gw__pool_close_idle(gw_pool_model *m);
/* Records a failure of m: state FAILED, back-off, message (under p->lock). */
void gw__pool_fail(gw_pool *p, gw_pool_model *m, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Waits on p->cond at most ms (under p->lock), counted in p->waiting. */
void gw__pool_wait_ms(gw_pool *p, int ms);
/* Wakes the threads in gw__pool_wait_ms, if any (under p->lock). */
void gw__pool_wake(gw_pool *p);

/* One line on stderr: "gpuwatch pool: ..." with a timestamp. */
void gw__pool_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
