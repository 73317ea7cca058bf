/* front_impl.h — what the pool's front (front.c: libmicrohttpd, routes,
 * the event loop) and its exchanges with the children (exchange.c) share.
 * Not installed, not for other modules; front.c's header comment has the
 * design and the loop invariants L1-L6 these types keep.
 */
#ifndef GW_POOL_FRONT_IMPL_H
#define GW_POOL_FRONT_IMPL_H

#include "http/mhd_lib.h"
#include "pool/front.h"
#include "pool/upstream.h"

#include <pthread.h>
#include <stdatomic.h>

#define SCAN_MS 50 /* how often the live exchanges are checked (deadline, client) */

typedef struct exchange exchange;

/* What an epoll event points at: a tag, or (an odd value) a child's
 * socket, fd * 2 + 1, looked up in the front's fd map (L6). */
typedef enum { TAG_MHD, TAG_WAKE, TAG_CLIENT } tag_kind;

typedef struct tag {
    tag_kind kind;
    exchange *x;
    int fd;            /* registered in the loop's epoll set; -1: not */
    uint32_t events;   /* what it is registered for */
} tag;

struct gw_pool_front {
    gw__mhd_lib lib;
    struct MHD_Daemon *d;
    gw_pool *pool;
    const gw_pool_config *cfg;
    unsigned port;
    int ep;                    /* the loop's epoll */
    tag mhd_tag, wake_tag;     /* MHD's epoll fd; wake_fd */
    int wake_fd;               /* eventfd: a worker finished, or stop */
    pthread_t loop;
    bool loop_started;
    atomic_bool draining;      /* stop accepting */
    atomic_bool stop;          /* end the loop */
    atomic_uint active;        /* requests between their first call and completion */
    atomic_uint workers;       /* worker threads running */
    pthread_mutex_t done_lock;
    exchange *done;            /* exchanges whose worker has finished */
    /* loop-owned */
    exchange *live;            /* L3 */
    exchange **by_fd;          /* L6: the exchange holding each child socket */
    size_t by_fd_cap;
    bool run_mhd;              /* MHD has work: a resumed connection */
    int64_t next_scan_ns;
};

/* One request: its body as it arrives, and its exchange once it has one. */
typedef struct preq {
    char *body;
    size_t len, cap;
    bool too_big;
    exchange *x;
} preq;

typedef enum {
    X_WORKER,  /* a worker thread runs its job */
    X_CONNECT, /* the loop waits on the child's socket: connecting */
    X_SEND,    /* ... sending the request */
    X_HEAD,    /* ... for the answer's head */
    X_BODY,    /* ... for the rest of a buffered answer */
    X_STREAM,  /* a streamed answer is queued: MHD's callback pulls it */
    X_ENDED,   /* answered (or the client left): waits for its request's end */
} x_phase;

typedef enum { JOB_ACQUIRE, JOB_LOAD, JOB_UNLOAD, JOB_FAILED } job_kind;

struct exchange {
    gw_pool_front *f;
    struct MHD_Connection *c;
    x_phase phase;
    bool suspended;
    exchange *prev, *next;      /* the live list (L3) */
    exchange *done_next;        /* the done list */
    int64_t deadline_ns;
    /* the request */
    char model[256];
    const char *method, *url;   /* MHD's, valid until the request ends */
    const char *body;           /* the preq's */
    size_t body_len;
    gw_strbuf head;
    size_t sent;
    int client_fd;
    tag client;
    bool live;                  /* in the live list (L3) */
    bool child_registered;      /* lease.fd is in the loop's epoll set (L6) */
    bool unmapped;              /* no memory to map lease.fd: fails at the next scan */
    /* the child */
    gw_pool_lease lease;
    bool connecting;            /* X_CONNECT: a connect in progress on lease.fd */
    bool retried;
    bool send_waited;           /* the request's send waited for EPOLLOUT */
    gw_upstream_answer ans;
    bool ans_begun;
    char *out;                  /* a buffered answer's body */
    size_t out_len, out_want;
    /* a streamed answer */
    bool event_stream;
    bool finished;              /* the child's body ended cleanly */
    bool child_failed;          /* the child's side failed */
    bool client_left;
    char *tail;                 /* an error event still to send, then the end */
    size_t tail_len, tail_off;
    int status;
    /* the worker's job */
    job_kind job;
    bool in_stream;             /* JOB_FAILED for a stream already under way */
    int job_rc;
    gw_pool_refusal why;
    char err_text[512];
};

/* front.c */
/* Queues a buffered answer (body taken over, freed by MHD) with its
 * Content-Type and, when retry_after, a Retry-After header. */
enum MHD_Result gw__front_queue(gw_pool_front *f, struct MHD_Connection *c, unsigned status,
                                const char *type, char *body, size_t len, unsigned retry_after);
/* OpenAI's error object {"error": {"code", "message", "type"}}, appended to sb. */
void gw__front_error_json(gw_strbuf *sb, unsigned status, const char *type, const char *msg);
/* Answers a refusal in that shape (499: the client left, nothing to answer). */
enum MHD_Result gw__front_send_refusal(gw_pool_front *f, struct MHD_Connection *c,
                                       const gw_pool_refusal *why);
/* The client's socket of a connection (-1 when MHD does not say). */
int gw__front_client_fd(gw_pool_front *f, struct MHD_Connection *c);
/* Wakes the loop (a worker finished, or stop). */
void gw__front_wake(gw_pool_front *f);

/* exchange.c: all in the loop thread (L1) */
/* Forwards METHOD URL with body to model's child (r's exchange from now
 * on); the answer comes later on the suspended connection. */
enum MHD_Result gw__exchange_proxy(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                                   const char *method, const char *url, const char *model,
                                   const char *body, size_t len);
/* POST /models/load (load) or /models/unload of model, in a worker. */
enum MHD_Result gw__exchange_load(gw_pool_front *f, struct MHD_Connection *c, preq *r,
                                  const char *model, bool load);
/* Frees x at its request's end, releasing what it still holds (L5). */
void gw__exchange_free(exchange *x);
/* An edge on child socket fd (L6). */
void gw__exchange_child_event(gw_pool_front *f, int fd);
/* The client of a waiting exchange hung up. */
void gw__exchange_client_gone(exchange *x);
/* Takes the exchanges whose worker finished and carries each on. */
void gw__exchange_take_done(gw_pool_front *f);
/* L3: fails the live exchanges past their deadline; watches the others'
 * clients. */
void gw__exchange_scan(gw_pool_front *f, int64_t now);
/* Shutdown: every exchange still waiting on a child answers 503 (L4). */
void gw__exchange_abandon(gw_pool_front *f);

#endif
