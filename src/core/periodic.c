/* periodic.c — see periodic.h. */
#include "core/periodic.h"
#include "core/util.h"

#include <errno.h>
#include <time.h>

/* Sleeps interval_ms or until stopped; returns whether stopped. */
static bool pause_or_stop(gw__periodic *p)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += p->interval_ms / 1000;
    until.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
        ;
    bool stop = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

static void *periodic_main(void *arg)
{
    gw__periodic *p = arg;
    do
        p->round(p->arg);
    while (!pause_or_stop(p));
    return NULL;
}

int gw__periodic_start(gw__periodic *p, unsigned interval_ms, void (*round)(void *arg), void *arg,
                       const char *what, gw_error *err)
{
    p->stopping = false;
    p->interval_ms = interval_ms;
    p->round = round;
    p->arg = arg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
        return gw__error_set(err, GW_EIO, "%s: cannot start a thread", what);
    }
    return GW_OK;
}

void gw__periodic_stop(gw__periodic *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
}
