/* plan.h — the placement engine: where a memory need goes on a set of
 * devices, or a clear reason why it goes nowhere.
 *
 * What it owns: turning (memory need, devices with their usable free memory,
 * policy) into a plan: which devices, how many layers on each (llama.cpp's
 * layer split), the tensor split that reproduces it, -ngl, the expected use
 * per device and what stays on the host. It never reads the machine and
 * never touches the ledger: callers hand it devices whose `pending` already
 * holds the reservations not yet visible as used (ledger.h computes it).
 *
 * Vocabulary:
 *  - usable(d) = free - pending - margin, saturating at 0.
 *  - cap(d)    = usable(d) - overhead (the per-device cost of using the
 *                device at all: CUDA context, compute buffer). A device with
 *                cap 0 cannot take even one byte of the need.
 *  - unit      = one offloadable layer of a per-layer profile, in llama.cpp's
 *                order: units 0..n-2 are the repeating layers, unit n-1 the
 *                output layer. -ngl K puts the LAST K units on GPUs
 *                (i_gpu_start = n - K), the first units stay on the host.
 *  - a plain size is one need of S bytes with no layers.
 *
 * Invariants of a plan that fits:
 *  1. For every used device: bytes = overhead + sum of its units' bytes (or
 *     its share of a plain size) and bytes <= usable(d). No device is
 *     over-committed, ever.
 *  2. Units on devices are contiguous, in the plan's device order, and cover
 *     exactly units [n_units - ngl, n_units); units below stay on the host.
 *     tensor_split[i] = layers on used device i reproduces that split in
 *     llama.cpp (cum-split upper bound rule).
 *  3. A device that is lost, stale, in error, without a free-memory reading
 *     or over its temperature limit is never used; it is listed in
 *     `excluded` with the reason.
 *  4. Splits are proportional to cap (usable free after overhead). There is
 *     no per-device minimum beyond "one layer fits": a small GPU takes its
 *     proportional share instead of being starved (ollama#8430). When layer
 *     granularity makes the proportional split overflow a device, the split
 *     falls back to filling devices in order, which fits whenever any
 *     contiguous split in that order does.
 *
 * Policies (the device set and order):
 *  - BEST_FIT (single-GPU first): the device with the smallest cap that holds
 *    the whole need, so big GPUs stay free for big needs. If none, the fewest
 *    devices (largest caps first) split proportionally; if even all of them
 *    cannot hold it, partial offload over all of them (if allowed).
 *    With gpus = N: the N devices whose caps are the smallest window (in cap
 *    order) that holds the need.
 *  - SPREAD: every eligible device (or the N largest) split proportionally.
 *  - PACK: devices in ascending cap order, each filled before the next,
 *    so the need lands in the smallest leftovers and large free areas stay.
 *  - LIST: exactly the listed devices in the listed order; a listed device
 *    that is not eligible makes the plan fail naming it.
 *  A plain size is split across devices only under SPREAD, PACK, LIST or
 *  gpus >= 2 (a job asking for 20 GiB is assumed to want them on one GPU).
 *
 * Failure: gw_place returns GW_EINVAL (bad need/options) or GW_ENOMEM; "it
 * does not fit" is not an error: the plan comes back with fits = false and a
 * reason naming the need, the best device and what was excluded.
 */
#ifndef GW_PLACE_PLAN_H
#define GW_PLACE_PLAN_H

#include "core/model.h"
#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw_place_policy {
    GW_PLACE_BEST_FIT = 0,
    GW_PLACE_SPREAD,
    GW_PLACE_PACK,
    GW_PLACE_LIST,
} gw_place_policy;

/* "best-fit", "spread", "pack", "list"; static. */
const char *gw_place_policy_name(gw_place_policy p);
/* Parses those names; false when unknown. */
bool gw_place_policy_parse(const char *s, gw_place_policy *out);

/* One device as the planner sees it. Strings are copied into the struct. */
typedef struct gw_place_device {
    char uuid[96];  /* identity in the ledger; never empty (see from_snapshot) */
    char name[96];
    gw_vendor vendor;
    uint32_t index;        /* snapshot index (what humans call GPU n) */
    uint32_t source_index; /* the vendor's index (HIP/oneAPI selectors) */
    gw_device_state state;
    bool has_free;      /* a free-memory reading exists */
    uint64_t total;     /* bytes (0 when unknown) */
    uint64_t free;      /* bytes, as the driver reports */
    uint64_t pending;   /* reservations not yet visible as used (ledger) */
    bool has_temp;
    int32_t temp_mc;
    bool has_temp_limit;
    int32_t temp_limit_mc; /* the device's slowdown threshold */
    /* MIG (docs/mig.md): a GPU in MIG mode is no target (its MIG devices
     * are); a MIG device holds a model alone, never in a split. */
    bool mig_gpu;      /* a GPU whose current MIG mode is on */
    bool mig_instance; /* a MIG device */
} gw_place_device;

struct gw_plan;

/* Optional exact figures for a chosen split (the estimator's, which knows
 * per-device compute buffers a profile cannot express): fills bytes[i], the
 * expected use of plan->used[i], for a plan that fits. Returns GW_OK or an
 * error (filling err), which gw_place returns. */
typedef int (*gw_place_refine_fn)(void *ctx, const gw_place_device *devs,
                                  const struct gw_plan *plan, uint64_t *bytes, gw_error *err);

/* The memory need. Either a plain size (n_units == 0, size > 0) or a
 * per-layer profile (unit_bytes[n_units], borrowed for the call).
 * With refine set, each fitting plan is checked against refine's exact
 * figures: they become the expected use, and when one exceeds its device's
 * usable memory, that excess is held back on that device and the plan made
 * again (at most 8 rounds; then it does not fit, saying by how much). */
typedef struct gw_place_need {
    uint64_t size;              /* plain size in bytes */
    size_t n_units;             /* offloadable layers incl. the output layer */
    const uint64_t *unit_bytes; /* bytes of each unit on a GPU (weights + KV) */
    uint64_t overhead;          /* bytes per used device beyond its units */
    uint64_t host_bytes;        /* always on the host (token_embd, output buffer) */
    bool allow_partial;         /* layers may stay on the host when short */
    gw_place_refine_fn refine;  /* NULL: the profile's figures are final */
    void *refine_ctx;
} gw_place_need;

typedef struct gw_place_opts {
    gw_place_policy policy;
    uint64_t margin;         /* bytes kept free on every device */
    int32_t max_temp_mc;     /* exclude above this; 0: each device's slowdown limit */
    unsigned gpus;           /* exact number of devices; 0: as the policy decides */
    const uint32_t *list;    /* LIST policy: device positions in the input array */
    size_t n_list;
    bool terse;              /* write no reason texts (the plan is the same): for a
                                search that plans many times and shows only its last */
} gw_place_opts;

/* Fills defaults: BEST_FIT, no margin, temperature limit from the device. */
void gw_place_opts_init(gw_place_opts *o);

typedef struct gw_plan_device {
    uint32_t device;      /* position in the input device array */
    uint32_t first_unit;  /* first unit on this device (layer profiles) */
    uint32_t n_units;     /* layers on this device; the tensor split entry */
    uint64_t bytes;       /* expected use: overhead + units (or size share) */
    uint64_t usable;      /* usable(d) when planned */
} gw_plan_device;

typedef struct gw_plan_excluded {
    uint32_t device;
    char reason[160];
} gw_plan_excluded;

typedef struct gw_plan {
    bool fits;
    bool partial;            /* some layers stay on the host */
    gw_place_policy policy;
    size_t n_used;
    gw_plan_device *used;    /* in split order (CUDA_VISIBLE_DEVICES order) */
    size_t n_excluded;
    gw_plan_excluded *excluded;
    uint32_t n_units;        /* 0 for a plain size */
    uint32_t ngl;            /* units on GPUs: llama.cpp -ngl */
    uint64_t need_bytes;     /* units (or size) without overhead */
    uint64_t gpu_bytes;      /* sum of used[].bytes */
    uint64_t host_bytes;     /* host_bytes + units left on the host */
    char reason[512];        /* why it does not fit; a note when partial */
    size_t cap_;             /* private: capacity of used/excluded */
} gw_plan;

/* Embeddable-struct lifecycle: init before use, release to free the arrays
 * (the plan is reusable after release or across gw_place calls). */
void gw_plan_init(gw_plan *p);
void gw_plan_release(gw_plan *p);

/* Plans need on devs[n] (read only). On GW_OK the plan is filled (fits or
 * not, see above). On error the plan is left empty (fits false) and err
 * names the bad input. The plan is owned by the caller (gw_plan_release). */
int gw_place(const gw_place_device *devs, size_t n, const gw_place_need *need,
             const gw_place_opts *opts, gw_plan *plan, gw_error *err);

/* Fills *p from one device as the planner sees it. A device without a
 * uuid gets "index:N"; pending starts at 0. */
void gw_place_device_of(const gw_device *d, gw_place_device *p);

/* gw_place_device_of for each of a snapshot's devices (caller allocates
 * snap->n_devices entries). */
void gw_place_devices_from_snapshot(const gw_snapshot *snap, gw_place_device *devs);

/* usable(d) = free - pending - margin, saturating at 0 (0 without a reading). */
uint64_t gw_place_usable(const gw_place_device *d, uint64_t margin);

/* Parses a byte size in the one size grammar (gw__parse_size, core/parse.h:
 * "20GiB", "512MiB", "1.5G" (G = GiB), "1000000" bytes, "10GB" decimal).
 * False for anything else, negatives or overflow; *out is then unchanged. */
bool gw_place_parse_size(const char *s, uint64_t *out);

/* Formats bytes as "23.50 GiB" / "512.0 MiB" / "100 B" into buf; returns buf. */
const char *gw_place_format_size(uint64_t bytes, char *buf, size_t cap);

/* Appends the plan as a JSON object (schema in docs/placement.md). */
struct gw_json;
void gw_place_plan_json(struct gw_json *j, const gw_plan *plan, const gw_place_device *devs);

#endif
