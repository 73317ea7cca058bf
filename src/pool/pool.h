/* pool.h — the model-server pool: which models exist, which child serves
 * each, where each child's memory is reserved, and who may send it a
 * request now. The HTTP front (front.h) only routes through it.
 *
 * Owns: one record per configured model and its state machine
 *
 *     UNLOADED --request--> LOADING --/health 200--> READY
 *        ^                     | fails                 | idle TTL, eviction,
 *        |                     v                       | unload, shutdown
 *        +--- back-off over -- FAILED <-- crash, hang --+--> UNLOADING --> UNLOADED
 *
 * the placement of a load (the model's exact estimate, prepared once, on a
 * fresh snapshot, through the reservations ledger), eviction, the children
 * (launched, health-checked, reaped, stopped), the per-model request queue
 * and the counters behind /api/v1/pool, /health and /metrics.
 *
 * Invariants:
 *  1. A model holds a reservation exactly while it has a child that is
 *     LOADING or READY; whoever takes it out of those states (crash, hang,
 *     unload, eviction, a failed load) releases the reservation before the
 *     state is visible to anyone else, so freed memory is never counted
 *     twice and held memory never forgotten.
 *  2. Load decisions (plan, eviction, reserve) are serialised by one lock
 *     and go through gw_ledger_reserve, whose transaction never hands out
 *     more than a device's usable memory: the sum of the pool's
 *     reservations on a GPU never exceeds its usable memory.
 *  3. A model with requests in flight or queued, or pinned, is never
 *     chosen for eviction or idle unload; eviction takes idle models
 *     least recently used first and only as many as the need requires.
 *  4. in_flight <= parallel; queued <= queue_max; every acquire that
 *     returned GW_OK is matched by exactly one gw_pool_release.
 *  5. Each child is reaped once (child.h invariant 3), by the thread that
 *     owns its state: the loader while LOADING, the supervisor after.
 * Lock order: place_lock, then ledger_lock; `lock` (the model table) is
 * never held while taking either, nor during I/O.
 */
#ifndef GW_POOL_POOL_H
#define GW_POOL_POOL_H

#include "place/ledger.h"
#include "place/request.h"
#include "pool/child.h"
#include "pool/config.h"
#include "render/json_writer.h"

#include <pthread.h>

typedef enum gw_pool_state {
    GW_PM_UNLOADED = 0,
    GW_PM_LOADING,
    GW_PM_READY,
    GW_PM_UNLOADING,
    GW_PM_FAILED,
} gw_pool_state;

const char *gw_pool_state_name(gw_pool_state s);

#define GW_POOL_IDLE_CONNS 32
#define GW_POOL_REFINE_MEMO 16
#define GW_POOL_REFINE_GPUS 8

/* The estimator's exact figures for one split of one model: they depend
 * only on the split (GPU count, -ngl, layers per GPU), so a pool that keeps
 * placing the same models asks the estimator once per split. */
typedef struct gw_pool_refine_memo {
    uint32_t n_used, ngl;
    uint32_t units[GW_POOL_REFINE_GPUS];
    uint64_t bytes[GW_POOL_REFINE_GPUS];
} gw_pool_refine_memo;
#define GW_POOL_LATENCY_BUCKETS 12

typedef struct gw_pool_model {
    gw_pool_model_config cfg;
    gw_pool_state state;
    uint64_t generation;       /* +1 per child started */
    gw_child *child;
    uint32_t port;
    int64_t res_id;            /* 0: no reservation */
    gw_reservation res;        /* its devices and bytes */
    bool cpu_only;             /* this load: no GPU layer */
    uint32_t ngl, n_gpus;
    char placement[128];       /* "-ngl 33 --tensor-split 20,13" / "cpu" */
    unsigned in_flight, queued;
    bool unload_pending;       /* an unload waits: new requests queue, take no slot */
    int64_t last_used_ns, ready_ns, load_started_ns, last_health_ns;
    unsigned health_failures;
    /* failures */
    unsigned failures;         /* consecutive failed loads or crashes */
    int64_t retry_at_ns;       /* FAILED: no restart before */
    bool broken;               /* the model file cannot be estimated: never loads */
    int fail_status;           /* HTTP status in-flight requests get for the last failure */
    char last_error[512];
    /* kept-alive connections to the child */
    int idle_fds[GW_POOL_IDLE_CONNS];
    size_t n_idle;
    /* the estimate, prepared once; its refine step memoised per split
     * (used under place_lock only) */
    gw_place_request req;
    bool req_ready;
    gw_place_refine_fn base_refine;
    void *base_refine_ctx;
    gw_pool_refine_memo memo[GW_POOL_REFINE_MEMO];
    size_t n_memo, memo_next;
    /* counters */
    uint64_t loads, load_failures, crashes, unloads_idle, unloads_evicted, unloads_asked;
    double load_seconds_sum, last_load_seconds;
    uint64_t requests[6];      /* by status class: 1xx..5xx (index 1..5), 0: client gone */
    uint64_t latency_buckets[GW_POOL_LATENCY_BUCKETS];
    uint64_t latency_count;
    double latency_sum;
} gw_pool_model;

typedef struct gw_pool gw_pool;

/* Opens the pool over a finished configuration (taken over: the pool
 * releases it): the GPU monitor (unless enable_gpu_monitoring is false),
 * the ledger, each model's estimate (a model whose file cannot be
 * estimated is marked broken, with the estimator's message), the launcher
 * and supervisor threads; preloads the models that ask for it (their
 * failures are logged, not fatal). Errors: the ledger's, GW_ENOMEM. */
int gw_pool_open(gw_pool **out, gw_pool_config *cfg, gw_error *err);

/* Starts stopping: every wait (a queue, a load, an unload) ends at once
 * with 503. Call before stopping the front, so its threads can end. */
void gw_pool_begin_stop(gw_pool *p);

/* Stops every child (SIGTERM, stop_grace_s, SIGKILL), releases every
 * reservation, joins the threads, frees. Requests must have ended. */
void gw_pool_close(gw_pool *p);

const gw_pool_config *gw_pool_config_of(const gw_pool *p);

/* Why a request could not be given a child: HTTP status and message. */
typedef struct gw_pool_refusal {
    int status;             /* 404 unknown model, 429 queue full, 503 failed or
                               stopping, 507 does not fit, 500 broken model,
                               499 the client left while waiting */
    unsigned retry_after_s; /* 0: no Retry-After */
    const char *type;       /* OpenAI error "type" */
    char message[768];
} gw_pool_refusal;

typedef struct gw_pool_lease {
    gw_pool_model *m;
    uint64_t generation;
    uint32_t port;
    int fd;                 /* a connection to the child (kept-alive or new) */
    bool reused;            /* fd was kept alive: the child may have closed it since */
    int64_t start_ns;
} gw_pool_lease;

/* Gets model `name` a child ready for one request: loads it when needed
 * (this thread does the load; others wait in the model's queue), waits for
 * a free slot, and watches watch_fd (the client's socket, -1 none) while it
 * waits. GW_OK with *lease filled, its fd a kept-alive connection to the
 * child or -1 (the caller connects to lease->port); else *why says the
 * answer to give (and the function returns GW_EIO). */
int gw_pool_acquire(gw_pool *p, const char *name, int watch_fd, gw_pool_lease *lease,
                    gw_pool_refusal *why);

/* The same without waiting, for an event loop: GW_OK with a slot taken
 * and *lease filled as above; 1 when the model must load or its slots are
 * taken (call gw_pool_acquire from a thread that may wait); GW_EIO with
 * *why for an answer now (unknown model, back-off, stopping). */
int gw_pool_try_acquire(gw_pool *p, const char *name, gw_pool_lease *lease,
                        gw_pool_refusal *why);

/* Ends a lease: keep_fd >= 0 returns that connection to the child's idle
 * list (when the child is still the same), status is the HTTP status the
 * client got (0: it left). */
void gw_pool_release(gw_pool *p, gw_pool_lease *lease, int keep_fd, int status);

/* After the child's connection failed during a lease (err_text: how):
 * waits up to 1 s for the supervisor to learn whether the child died or
 * hung, then fills *why with 502 (it crashed / answered garbage) or 503
 * (stopped answering) and a message naming the model, the child's end and
 * the last line of its log. */
void gw_pool_upstream_failed(gw_pool *p, const gw_pool_lease *lease, const char *err_text,
                             gw_pool_refusal *why);

/* Asks for a model to be loaded now (POST /models/load) or unloaded
 * (POST /models/unload: waits for requests in flight). GW_OK, or GW_EIO
 * with *why. */
int gw_pool_load(gw_pool *p, const char *name, gw_pool_refusal *why);
int gw_pool_unload(gw_pool *p, const char *name, gw_pool_refusal *why);

/* Whether `name` is a configured model. */
bool gw_pool_has_model(gw_pool *p, const char *name);

/* JSON of GET /api/v1/pool, GET /health, GET /v1/models, GET /models;
 * Prometheus text of /metrics (appended to out). */
void gw_pool_json(gw_pool *p, gw_json *j);
void gw_pool_health_json(gw_pool *p, gw_json *j);
void gw_pool_models_json(gw_pool *p, gw_json *j, bool router_shape);
void gw_pool_metrics(gw_pool *p, gw_strbuf *out);

/* The last bytes of a model's child log (the current or last child);
 * GW_ENOENT for an unknown model. */
int gw_pool_log(gw_pool *p, const char *name, gw_strbuf *out);

/* Placement for a load, without I/O (what the benchmark times): the plan
 * for model i on devs (pending already applied), evicting from the
 * candidates given (cand[k] = model index, LRU first) only what the need
 * requires: *n_evict gets how many of cand are chosen, written to
 * evict[]. Returns GW_OK with plan->fits, or an error. */
int gw_pool_decide(gw_pool *p, size_t i, gw_place_device *devs, size_t n_devs,
                   const size_t *cand, size_t n_cand, const gw_place_seen *seen, size_t n_seen,
                   gw_plan *plan, size_t *evict, size_t *n_evict, gw_error *err);

/* The latency histogram's upper bounds in seconds (GW_POOL_LATENCY_BUCKETS). */
extern const double gw_pool_latency_bounds[GW_POOL_LATENCY_BUCKETS];

#endif
