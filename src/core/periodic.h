/* periodic.h — a background thread that runs a round, then sleeps an
 * interval, until stopped: the life of the daemon's pollers (model
 * servers, the cluster view).
 *
 * Owns: the thread, its stop flag, and a mutex + condition variable
 * (CLOCK_MONOTONIC) the round's owner also uses to guard what the round
 * publishes (gw__periodic_lock / unlock).
 *
 * Invariants:
 *  1. round(arg) runs on the thread only, never under the lock, first at
 *     once, then every interval_ms after the previous round ended.
 *  2. gw__periodic_stop wakes a sleeping thread at once and returns after
 *     the round in progress (if any) ended and the thread exited.
 */
#ifndef GW_CORE_PERIODIC_H
#define GW_CORE_PERIODIC_H

#include "core/model.h"

#include <pthread.h>
#include <stdbool.h>

typedef struct gw__periodic {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    unsigned interval_ms;
    void (*round)(void *arg);
    void *arg;
} gw__periodic;

/* Initialises *p and starts the thread. GW_EIO naming what (caller's
 * what: "model servers") when no thread could be started; *p is then
 * destroyed (nothing to stop). p must stay at its address until stopped. */
int gw__periodic_start(gw__periodic *p, unsigned interval_ms, void (*round)(void *arg), void *arg,
                       const char *what, gw_error *err);

/* Stops the thread (invariant 2) and destroys the lock and condition. */
void gw__periodic_stop(gw__periodic *p);

#endif
