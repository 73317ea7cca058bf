/* plan.c — the placement engine (see plan.h for the policies and the
 * invariants of a plan).
 *
 * Shape of one gw_place call:
 *   1. eligibility: every device gets cap = usable - overhead, or is
 *      excluded with a reason (state, no reading, temperature, no room);
 *   2. the policy picks an ordered device set (best fit / spread / pack /
 *      list), trying full placement first;
 *   3. the split: proportional to cap (falling back to in-order filling when
 *      layer granularity overflows a device), or in-order filling for PACK;
 *   4. partial offload when allowed: the largest -ngl whose last units fit
 *      (found by binary search: fill-feasibility is monotone in ngl);
 *   5. otherwise fits = false with a reason built from the same figures.
 * MIG (docs/mig.md): a GPU in MIG mode is excluded in step 1 (its MIG
 * devices are the targets); before step 2, a MIG device that holds the
 * whole need alone is taken (the best fit among them; MIG devices are there
 * to be used, whole GPUs kept for what needs one), and from then on the
 * policy sees the whole GPUs only: a model never spans MIG devices.
 * Nothing is allocated per call for up to STACK_DEVICES devices except the
 * plan's own arrays (grown once and reused), so planning 8 GPUs costs a few
 * microseconds.
 */
#include "place/plan.h"
#include "core/array.h"
#include "core/parse.h"
#include "render/json_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STACK_DEVICES 64
#define GIB (1024.0 * 1024.0 * 1024.0)

/* ------------------------------------------------------------ names */

static const char *const policy_names[] = {"best-fit", "spread", "pack", "list"};

const char *gw_place_policy_name(gw_place_policy p)
{
    return (unsigned)p < GW__ARRAY_LEN(policy_names) ? policy_names[p] : "unknown";
}

bool gw_place_policy_parse(const char *s, gw_place_policy *out)
{
    for (size_t i = 0; i < GW__ARRAY_LEN(policy_names); i++)
        if (strcmp(s, policy_names[i]) == 0) {
            *out = (gw_place_policy)i;
            return true;
        }
    if (strcmp(s, "bestfit") == 0 || strcmp(s, "single") == 0) {
        *out = GW_PLACE_BEST_FIT;
        return true;
    }
    return false;
}

void gw_place_opts_init(gw_place_opts *o)
{
    memset(o, 0, sizeof *o);
    o->policy = GW_PLACE_BEST_FIT;
}

/* ------------------------------------------------------------ sizes */

bool gw_place_parse_size(const char *s, uint64_t *out)
{
    gw_error why;
    return gw__parse_size(s, out, &why) == GW_OK;
}

const char *gw_place_format_size(uint64_t bytes, char *buf, size_t cap)
{
    if (bytes >= (1ull << 30))
        snprintf(buf, cap, "%.2f GiB", (double)bytes / GIB);
    else if (bytes >= (1ull << 20))
        snprintf(buf, cap, "%.1f MiB", (double)bytes / 1048576.0);
    else if (bytes >= 1024)
        snprintf(buf, cap, "%.1f KiB", (double)bytes / 1024.0);
    else
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    return buf;
}

/* ------------------------------------------------------------ devices */

void gw_place_device_of(const gw_device *d, gw_place_device *p)
{
    memset(p, 0, sizeof *p);
    if (d->info.uuid[0])
        gw__strlcpy(p->uuid, d->info.uuid, sizeof p->uuid);
    else
        snprintf(p->uuid, sizeof p->uuid, "index:%u", d->info.index);
    gw__strlcpy(p->name, d->info.name, sizeof p->name);
    p->vendor = d->info.vendor;
    p->index = d->info.index;
    p->source_index = d->info.source_index;
    p->state = d->state;
    p->has_free = gw_sample_has(&d->sample, GW_METRIC_MEM_FREE);
    p->free = p->has_free ? d->sample.mem_free : 0;
    if (gw_sample_has(&d->sample, GW_METRIC_MEM_TOTAL))
        p->total = d->sample.mem_total;
    else if (gw_info_has(&d->info, GW_INFO_MEMORY_TOTAL))
        p->total = d->info.memory_total;
    p->has_temp = gw_sample_has(&d->sample, GW_METRIC_TEMP);
    p->temp_mc = d->sample.temp_mc;
    p->has_temp_limit = gw_info_has(&d->info, GW_INFO_TEMP_SLOWDOWN);
    p->temp_limit_mc = d->info.temp_slowdown_mc;
    p->mig_gpu = gw_sample_has(&d->sample, GW_METRIC_MIG_MODE) && d->sample.mig_mode == 1;
    p->mig_instance = d->info.mig;
}

void gw_place_devices_from_snapshot(const gw_snapshot *snap, gw_place_device *devs)
{
    for (size_t i = 0; i < snap->n_devices; i++) {
        gw_place_device_of(&snap->devices[i], &devs[i]);
        /* a MIG device has no temperature of its own: its GPU's is the one
         * that throttles it, and a GPU that is not ok takes it along */
        const gw_device *g = gw__device_mig_parent(snap, &snap->devices[i]);
        if (!g)
            continue;
        gw_place_device *p = &devs[i];
        p->has_temp = gw_sample_has(&g->sample, GW_METRIC_TEMP);
        p->temp_mc = g->sample.temp_mc;
        p->has_temp_limit = gw_info_has(&g->info, GW_INFO_TEMP_SLOWDOWN);
        p->temp_limit_mc = g->info.temp_slowdown_mc;
        if (g->state != GW_DEVICE_OK && p->state == GW_DEVICE_OK)
            p->state = g->state;
    }
}

uint64_t gw_place_usable(const gw_place_device *d, uint64_t margin)
{
    uint64_t taken;
    if (!d->has_free || !gw__add_u64(d->pending, margin, &taken) || taken >= d->free)
        return 0;
    return d->free - taken;
}

/* ------------------------------------------------------------ plan storage */

void gw_plan_init(gw_plan *p) { memset(p, 0, sizeof *p); }

void gw_plan_release(gw_plan *p)
{
    free(p->used);
    free(p->excluded);
    gw_plan_init(p);
}

/* Empties the plan and makes room for n devices. */
static int plan_reset(gw_plan *p, size_t n, gw_error *err)
{
    /* used and excluded share cap_: each grows on its own (exactly: a plan's
     * device count is known), and cap_ moves only once both have room */
    size_t c = n ? n : 1, cap_used = p->cap_, cap_excluded = p->cap_;
    if (GW__ARRAY_RESERVE_EXACT(p->used, cap_used, c) ||
        GW__ARRAY_RESERVE_EXACT(p->excluded, cap_excluded, c))
        return gw__error_set(err, GW_ENOMEM, "place: out of memory for %zu devices", n);
    if (c > p->cap_)
        p->cap_ = c;
    gw_plan_device *u = p->used;
    gw_plan_excluded *x = p->excluded;
    size_t cap = p->cap_;
    memset(p, 0, sizeof *p);
    p->used = u;
    p->excluded = x;
    p->cap_ = cap;
    return GW_OK;
}

/* ------------------------------------------------------------ planning */

/* Everything one call works with. */
typedef struct ctx {
    const gw_place_device *devs;
    size_t n;
    const gw_place_need *need;
    const gw_place_opts *opts;
    gw_plan *plan;
    uint64_t *cap;    /* cap per input device; 0 when excluded */
    uint64_t *extra;  /* per device: held back after a refine round found it short */
    bool *ok;         /* eligible */
    uint32_t *cand;   /* eligible devices, sorted as a policy needs */
    size_t n_cand;
    uint32_t *set;    /* the device set being tried */
    uint64_t total;   /* units sum or size */
    uint32_t mig_largest; /* the MIG device with the most room; UINT32_MAX: none */
} ctx;

static void dev_label(const gw_place_device *d, char *buf, size_t cap)
{
    if (d->name[0])
        snprintf(buf, cap, "GPU %u (%s)", d->index, d->name);
    else
        snprintf(buf, cap, "GPU %u", d->index);
}

static void exclude(ctx *c, uint32_t i, const char *fmt, ...) GW__PRINTF(3, 4);
static void exclude(ctx *c, uint32_t i, const char *fmt, ...)
{
    gw_plan_excluded *x = &c->plan->excluded[c->plan->n_excluded++];
    x->device = i;
    x->reason[0] = '\0';
    if (c->opts->terse)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->reason, sizeof x->reason, fmt, ap);
    va_end(ap);
}

static void classify(ctx *c)
{
    const gw_place_opts *o = c->opts;
    c->n_cand = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const gw_place_device *d = &c->devs[i];
        c->cap[i] = 0;
        c->ok[i] = false;
        if (d->state != GW_DEVICE_OK) {
            exclude(c, i, "%s", gw_device_state_name(d->state));
            continue;
        }
        if (d->mig_gpu) {
            exclude(c, i, "MIG mode: its MIG devices are the targets");
            continue;
        }
        if (!d->has_free) {
            exclude(c, i, "no free-memory reading");
            continue;
        }
        int32_t limit = o->max_temp_mc;
        bool has_limit = limit != 0;
        if (!has_limit && d->has_temp_limit) {
            limit = d->temp_limit_mc;
            has_limit = true;
        }
        if (has_limit && d->has_temp && d->temp_mc >= limit) {
            exclude(c, i, "temperature %.0f C at or over the limit %.0f C", d->temp_mc / 1000.0,
                    limit / 1000.0);
            continue;
        }
        uint64_t usable = gw_place_usable(d, o->margin);
        uint64_t held = c->need->overhead;
        if (!gw__add_u64(held, c->extra[i], &held))
            held = UINT64_MAX;
        if (usable <= held && o->terse) {
            exclude(c, i, "no room");
            continue;
        }
        if (usable <= held) {
            char a[32], b[32], e[32], f[32], g[32];
            exclude(c, i, "no room: %s free - %s reserved - %s margin leaves %s, overhead is %s",
                    gw_place_format_size(d->free, a, sizeof a),
                    gw_place_format_size(d->pending, b, sizeof b),
                    gw_place_format_size(o->margin, e, sizeof e),
                    gw_place_format_size(usable, f, sizeof f),
                    gw_place_format_size(c->need->overhead, g, sizeof g));
            continue;
        }
        c->cap[i] = usable - held;
        c->ok[i] = true;
        c->cand[c->n_cand++] = i;
    }
}

/* Candidate order: by cap ascending or descending; equal caps keep the
 * lower position first either way (deterministic, stable plans). */
static bool before(const ctx *c, uint32_t a, uint32_t b, bool descending)
{
    if (c->cap[a] != c->cap[b])
        return descending ? c->cap[a] > c->cap[b] : c->cap[a] < c->cap[b];
    return a < b;
}

/* Shell sort: the comparator needs the context and qsort has no argument
 * for it; fine up to thousands of devices. */
static void sort_cand(ctx *c, uint32_t *v, size_t n, bool descending)
{
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < GW__ARRAY_LEN(gaps); g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            uint32_t x = v[i];
            size_t j = i;
            while (j >= gap && before(c, x, v[j - gap], descending)) {
                v[j] = v[j - gap];
                j -= gap;
            }
            v[j] = x;
        }
    }
}

static void sort_by_position(uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static uint64_t units_sum(const gw_place_need *need, size_t from)
{
    uint64_t s = 0;
    for (size_t j = from; j < need->n_units; j++)
        s += need->unit_bytes[j]; /* checked against overflow in validate() */
    return s;
}

/* Splits units [L-ngl, L) (or the plain size) over set[k], writing the plan's
 * used[] when out is true. proportional: by cap; else fill in order. Returns
 * false when it does not fit. */
static bool split(ctx *c, const uint32_t *set, size_t k, uint32_t ngl, bool proportional, bool out)
{
    const gw_place_need *need = c->need;
    gw_plan *p = c->plan;
    if (k == 0)
        return false;
    double ucap = 0;
    for (size_t i = 0; i < k; i++)
        ucap += (double)c->cap[set[i]];
    size_t n_out = 0;

    if (need->n_units == 0) {
        uint64_t left = need->size;
        uint64_t share[STACK_DEVICES];
        uint64_t *sh = k <= STACK_DEVICES ? share : malloc(k * sizeof *sh);
        if (!sh)
            return false;
        if (proportional) {
            unsigned __int128 sum = 0;
            for (size_t i = 0; i < k; i++)
                sum += c->cap[set[i]];
            if (sum < need->size) {
                if (sh != share)
                    free(sh);
                return false;
            }
            for (size_t i = 0; i < k; i++) {
                sh[i] = (uint64_t)(((unsigned __int128)need->size * c->cap[set[i]]) / sum);
                left -= sh[i];
            }
            for (size_t i = 0; i < k && left; i++) {
                uint64_t room = c->cap[set[i]] - sh[i];
                uint64_t add = room < left ? room : left;
                sh[i] += add;
                left -= add;
            }
        } else {
            for (size_t i = 0; i < k; i++) {
                sh[i] = c->cap[set[i]] < left ? c->cap[set[i]] : left;
                left -= sh[i];
            }
        }
        bool fits = left == 0;
        if (fits && out)
            for (size_t i = 0; i < k; i++) {
                if (!sh[i])
                    continue;
                gw_plan_device *u = &p->used[n_out++];
                u->device = set[i];
                u->first_unit = 0;
                u->n_units = 0;
                u->bytes = sh[i] + need->overhead;
                u->usable = gw_place_usable(&c->devs[set[i]], c->opts->margin);
            }
        if (sh != share)
            free(sh);
        if (fits && out)
            p->n_used = n_out;
        return fits;
    }

    uint32_t L = (uint32_t)need->n_units;
    uint32_t start = L - ngl;
    double total = (double)units_sum(need, start);
    size_t i = 0;
    uint64_t on_dev = 0;
    double cum = 0, target = total * (double)c->cap[set[0]] / ucap;
    uint32_t first = start, count = 0;
    for (uint32_t j = start; j < L; j++) {
        uint64_t b = need->unit_bytes[j];
        for (;;) {
            bool last = i == k - 1;
            bool room = on_dev + b <= c->cap[set[i]];
            if (room && (!proportional || last || cum + (double)b / 2.0 <= target))
                break;
            if (last)
                return false;
            if (out && count) {
                gw_plan_device *u = &p->used[n_out++];
                u->device = set[i];
                u->first_unit = first;
                u->n_units = count;
                u->bytes = on_dev + need->overhead;
                u->usable = gw_place_usable(&c->devs[set[i]], c->opts->margin);
            }
            i++;
            on_dev = 0;
            first = j;
            count = 0;
            target += total * (double)c->cap[set[i]] / ucap;
        }
        on_dev += b;
        cum += (double)b;
        count++;
    }
    if (out) {
        if (count) {
            gw_plan_device *u = &p->used[n_out++];
            u->device = set[i];
            u->first_unit = first;
            u->n_units = count;
            u->bytes = on_dev + need->overhead;
            u->usable = gw_place_usable(&c->devs[set[i]], c->opts->margin);
        }
        p->n_used = n_out;
    }
    return true;
}

/* Full or partial placement of ngl units on set[k]: proportional, falling
 * back to filling in order (PACK always fills). */
static bool place_on(ctx *c, const uint32_t *set, size_t k, uint32_t ngl, bool out)
{
    bool prop = c->opts->policy != GW_PLACE_PACK;
    if (prop && split(c, set, k, ngl, true, out))
        return true;
    return split(c, set, k, ngl, false, out);
}

static bool fits_fully(ctx *c, const uint32_t *set, size_t k)
{
    double sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += (double)c->cap[set[i]];
    if (sum < (double)c->total)
        return false;
    /* filling in order is feasible whenever any contiguous split is */
    return split(c, set, k, (uint32_t)c->need->n_units, false, false);
}

/* Commits a full placement on set[k] (already ordered). */
static void commit_full(ctx *c, const uint32_t *set, size_t k)
{
    gw_plan *p = c->plan;
    place_on(c, set, k, (uint32_t)c->need->n_units, true);
    p->fits = true;
    p->ngl = (uint32_t)c->need->n_units;
}

/* Largest ngl placeable on set[k] by filling; 0 when not even one unit. */
static uint32_t max_ngl(ctx *c, const uint32_t *set, size_t k)
{
    uint32_t lo = 0, hi = (uint32_t)c->need->n_units;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (split(c, set, k, mid, false, false))
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Partial offload on set[k] when allowed; true when at least one unit fits. */
static bool try_partial(ctx *c, const uint32_t *set, size_t k)
{
    const gw_place_need *need = c->need;
    if (need->n_units == 0 || !need->allow_partial || k == 0)
        return false;
    uint32_t ngl = max_ngl(c, set, k);
    if (ngl == 0)
        return false;
    gw_plan *p = c->plan;
    place_on(c, set, k, ngl, true);
    p->fits = true;
    p->partial = true;
    p->ngl = ngl;
    return true;
}

/* Builds the "does not fit" sentence. */
static void explain(ctx *c, const char *lead)
{
    gw_plan *p = c->plan;
    if (c->opts->terse) {
        gw__strlcpy(p->reason, "does not fit", sizeof p->reason);
        return;
    }
    const gw_place_need *need = c->need;
    gw_strbuf sb;
    gw__strbuf_init(&sb, sizeof p->reason);
    char a[32], b[32], e[32];
    gw__strbuf_printf(&sb, "%s", lead);
    gw__strbuf_printf(&sb, "needs %s", gw_place_format_size(c->total, a, sizeof a));
    if (need->overhead)
        gw__strbuf_printf(&sb, " + %s per GPU", gw_place_format_size(need->overhead, a, sizeof a));
    if (c->n_cand == 0) {
        gw__strbuf_printf(&sb, "; no usable GPU%s", c->n == 0 ? " (no GPU found)" : "");
    } else {
        uint32_t best = c->cand[0];
        double sum = 0;
        for (size_t i = 0; i < c->n_cand; i++) {
            if (c->cap[c->cand[i]] > c->cap[best])
                best = c->cand[i];
            sum += (double)c->cap[c->cand[i]];
        }
        const gw_place_device *d = &c->devs[best];
        char label[128];
        dev_label(d, label, sizeof label);
        gw__strbuf_printf(&sb, "; largest room: %s with %s (%s free",
                          label, gw_place_format_size(c->cap[best], a, sizeof a),
                          gw_place_format_size(d->free, b, sizeof b));
        if (d->pending)
            gw__strbuf_printf(&sb, " - %s reserved", gw_place_format_size(d->pending, e, sizeof e));
        if (c->opts->margin)
            gw__strbuf_printf(&sb, " - %s margin", gw_place_format_size(c->opts->margin, e, sizeof e));
        if (need->overhead)
            gw__strbuf_printf(&sb, " - overhead");
        gw__strbuf_printf(&sb, ")");
        if (c->n_cand > 1 && !d->mig_instance)
            gw__strbuf_printf(&sb, "; all %zu usable GPUs together: %s", c->n_cand,
                              gw_place_format_size((uint64_t)sum, a, sizeof a));
        if (c->mig_largest != UINT32_MAX && c->mig_largest != best) {
            dev_label(&c->devs[c->mig_largest], label, sizeof label);
            gw__strbuf_printf(&sb, "; largest MIG device: %s with %s", label,
                              gw_place_format_size(c->cap[c->mig_largest], a, sizeof a));
        }
        if (c->mig_largest != UINT32_MAX)
            gw__strbuf_printf(&sb, " (a model cannot span MIG devices)");
        if (need->n_units && !need->allow_partial)
            gw__strbuf_printf(&sb, "; partial offload not allowed");
        else if (need->n_units)
            gw__strbuf_printf(&sb, "; not even one layer fits");
    }
    for (size_t i = 0; i < p->n_excluded; i++) {
        char label[128];
        dev_label(&c->devs[p->excluded[i].device], label, sizeof label);
        gw__strbuf_printf(&sb, "%s%s: %s", i ? "; " : "; excluded ", label, p->excluded[i].reason);
    }
    if (sb.failed && sb.data) /* over the cap: keep what fit */
        sb.failed = false;
    gw__strlcpy(p->reason, sb.data ? sb.data : lead, sizeof p->reason);
    gw__strbuf_release(&sb);
}

/* MIG (see the top): takes the best-fitting MIG device that holds the
 * whole need alone, when the policy may use one device. Otherwise leaves
 * only the whole GPUs in c->cand for the policy; when there are none, tries
 * partial offload on the largest MIG device alone, else explains. Returns
 * true when the plan is decided (placed or explained). */
static bool place_mig(ctx *c)
{
    size_t w = 0, n_mig = 0;
    uint32_t best = UINT32_MAX;
    c->mig_largest = UINT32_MAX;
    for (size_t i = 0; i < c->n_cand; i++) {
        uint32_t d = c->cand[i];
        if (!c->devs[d].mig_instance) {
            c->cand[w++] = d;
            continue;
        }
        n_mig++;
        if (c->mig_largest == UINT32_MAX || c->cap[d] > c->cap[c->mig_largest])
            c->mig_largest = d;
        if (fits_fully(c, &d, 1) && (best == UINT32_MAX || before(c, d, best, false)))
            best = d;
    }
    if (n_mig == 0)
        return false;
    if (best != UINT32_MAX && c->opts->gpus <= 1) {
        c->set[0] = best;
        commit_full(c, c->set, 1);
        return true;
    }
    if (w > 0) {
        c->n_cand = w; /* the whole GPUs; explain names the largest MIG device */
        return false;
    }
    c->set[0] = c->mig_largest;
    if (c->opts->gpus <= 1 && try_partial(c, c->set, 1))
        return true;
    explain(c, c->opts->gpus > 1 ? "does not fit: a model cannot span MIG devices; "
                                 : "does not fit on any MIG device: ");
    return true;
}

static bool splittable(const ctx *c)
{
    const gw_place_opts *o = c->opts;
    return c->need->n_units > 0 || o->policy != GW_PLACE_BEST_FIT || o->gpus >= 2;
}

/* BEST_FIT without a device count. */
static void best_fit(ctx *c)
{
    /* single device: smallest cap that holds everything */
    uint32_t pick = UINT32_MAX;
    for (size_t i = 0; i < c->n_cand; i++) {
        uint32_t d = c->cand[i];
        if (c->cap[d] >= c->total && (pick == UINT32_MAX || c->cap[d] < c->cap[pick]) &&
            fits_fully(c, &d, 1))
            pick = d;
    }
    if (pick != UINT32_MAX) {
        commit_full(c, &pick, 1);
        return;
    }
    if (c->n_cand == 0) {
        explain(c, "does not fit: ");
        return;
    }
    if (!splittable(c)) {
        explain(c, "does not fit on one GPU (a plain size is not split without --gpus N or a "
                   "spread/pack/list policy): ");
        return;
    }
    /* fewest devices: largest caps first */
    sort_cand(c, c->cand, c->n_cand, true);
    for (size_t k = 2; k <= c->n_cand; k++) {
        memcpy(c->set, c->cand, k * sizeof *c->set);
        sort_by_position(c->set, k);
        if (fits_fully(c, c->set, k)) {
            commit_full(c, c->set, k);
            return;
        }
    }
    memcpy(c->set, c->cand, c->n_cand * sizeof *c->set);
    sort_by_position(c->set, c->n_cand);
    if (try_partial(c, c->set, c->n_cand))
        return;
    explain(c, "does not fit: ");
}

/* Exactly N devices: the first window of N in ascending cap order that
 * holds the need; else partial on the N largest. */
static void exact_count(ctx *c, unsigned n_gpus)
{
    if (c->n_cand < n_gpus) {
        char lead[96];
        snprintf(lead, sizeof lead, "needs %u GPUs, only %zu usable: ", n_gpus, c->n_cand);
        explain(c, lead);
        return;
    }
    sort_cand(c, c->cand, c->n_cand, false);
    bool fill_order = c->opts->policy == GW_PLACE_PACK;
    for (size_t w = 0; w + n_gpus <= c->n_cand; w++) {
        memcpy(c->set, c->cand + w, n_gpus * sizeof *c->set);
        if (!fill_order)
            sort_by_position(c->set, n_gpus);
        if (fits_fully(c, c->set, n_gpus)) {
            commit_full(c, c->set, n_gpus);
            return;
        }
    }
    memcpy(c->set, c->cand + (c->n_cand - n_gpus), n_gpus * sizeof *c->set);
    if (!fill_order)
        sort_by_position(c->set, n_gpus);
    if (try_partial(c, c->set, n_gpus))
        return;
    char lead[64];
    snprintf(lead, sizeof lead, "does not fit on %u GPUs: ", n_gpus);
    explain(c, lead);
}

/* SPREAD / PACK / LIST over c->set[k] in its order. */
static void over_set(ctx *c, size_t k, const char *lead)
{
    if (k && fits_fully(c, c->set, k)) {
        commit_full(c, c->set, k);
        return;
    }
    if (try_partial(c, c->set, k))
        return;
    explain(c, lead);
}

static int validate(const gw_place_need *need, const gw_place_opts *o, size_t n, gw_error *err,
                    uint64_t *total)
{
    if (need->n_units == 0) {
        if (need->size == 0)
            return gw__error_set(err, GW_EINVAL, "place: the memory need is empty (size 0 and no layers)");
        *total = need->size;
    } else {
        if (!need->unit_bytes)
            return gw__error_set(err, GW_EINVAL, "place: %zu layers given without their sizes",
                                 need->n_units);
        if (need->n_units > UINT32_MAX / 2)
            return gw__error_set(err, GW_EINVAL, "place: %zu layers is too many", need->n_units);
        uint64_t s = 0;
        for (size_t j = 0; j < need->n_units; j++)
            if (!gw__add_u64(s, need->unit_bytes[j], &s))
                return gw__error_set(err, GW_ERANGE, "place: layer sizes overflow 64 bits");
        *total = s;
    }
    if (o->policy > GW_PLACE_LIST)
        return gw__error_set(err, GW_EINVAL, "place: unknown policy %d", (int)o->policy);
    if (o->policy == GW_PLACE_LIST) {
        if (o->n_list == 0 || !o->list)
            return gw__error_set(err, GW_EINVAL, "place: the list policy needs a device list");
        if (o->gpus && o->gpus != o->n_list)
            return gw__error_set(err, GW_EINVAL,
                                 "place: %u GPUs asked for with a list of %zu devices", o->gpus,
                                 o->n_list);
        for (size_t i = 0; i < o->n_list; i++) {
            if (o->list[i] >= n)
                return gw__error_set(err, GW_EINVAL,
                                     "place: device %u in the device list does not exist (%zu devices)",
                                     o->list[i], n);
            for (size_t j = 0; j < i; j++)
                if (o->list[j] == o->list[i])
                    return gw__error_set(err, GW_EINVAL,
                                         "place: device %u appears twice in the device list", o->list[i]);
        }
    }
    if (n > UINT32_MAX / 2)
        return gw__error_set(err, GW_EINVAL, "place: too many devices (%zu)", n);
    return GW_OK;
}

/* One planning round with need as given: classify, run the policy, fill
 * the totals. The plan was reset by the caller. */
static void plan_round(ctx *c)
{
    const gw_place_opts *opts = c->opts;
    const gw_place_need *need = c->need;
    const gw_place_device *devs = c->devs;
    gw_plan *plan = c->plan;
    plan->policy = opts->policy;
    plan->n_units = (uint32_t)need->n_units;
    plan->need_bytes = c->total;
    classify(c);
    c->mig_largest = UINT32_MAX;
    if (opts->policy != GW_PLACE_LIST && place_mig(c))
        goto done;

    switch (opts->policy) {
    case GW_PLACE_BEST_FIT:
        if (opts->gpus)
            exact_count(c, opts->gpus);
        else
            best_fit(c);
        break;
    case GW_PLACE_SPREAD:
        if (opts->gpus) {
            if (c->n_cand < opts->gpus) {
                exact_count(c, opts->gpus); /* explains */
                break;
            }
            sort_cand(c, c->cand, c->n_cand, true);
            memcpy(c->set, c->cand, opts->gpus * sizeof *c->set);
            sort_by_position(c->set, opts->gpus);
            over_set(c, opts->gpus, "does not fit: ");
        } else {
            memcpy(c->set, c->cand, c->n_cand * sizeof *c->set);
            over_set(c, c->n_cand, "does not fit: ");
        }
        break;
    case GW_PLACE_PACK:
        if (opts->gpus) {
            exact_count(c, opts->gpus);
        } else {
            memcpy(c->set, c->cand, c->n_cand * sizeof *c->set);
            sort_cand(c, c->set, c->n_cand, false);
            over_set(c, c->n_cand, "does not fit: ");
        }
        break;
    case GW_PLACE_LIST: {
        size_t k = 0;
        for (size_t i = 0; i < opts->n_list; i++) {
            uint32_t d = opts->list[i];
            if (!c->ok[d]) {
                const char *why = "not usable";
                for (size_t x = 0; x < plan->n_excluded; x++)
                    if (plan->excluded[x].device == d)
                        why = plan->excluded[x].reason;
                char lead[400], label[128];
                dev_label(&devs[d], label, sizeof label);
                snprintf(lead, sizeof lead, "%s in the device list cannot be used (%s): ", label, why);
                explain(c, lead);
                goto done;
            }
            c->set[k++] = d;
        }
        for (size_t i = 0; k > 1 && i < k; i++)
            if (devs[c->set[i]].mig_instance) {
                char lead[256], label[128];
                dev_label(&devs[c->set[i]], label, sizeof label);
                snprintf(lead, sizeof lead, "%s in the device list is a MIG device, and a model "
                         "cannot span MIG devices: ", label);
                explain(c, lead);
                goto done;
            }
        over_set(c, k, "does not fit on the listed GPUs: ");
        break;
    }
    }
done:
    if (plan->fits) {
        plan->gpu_bytes = 0;
        for (size_t i = 0; i < plan->n_used; i++)
            plan->gpu_bytes += plan->used[i].bytes;
        plan->host_bytes = need->host_bytes;
        if (need->n_units)
            for (size_t j = 0; j < need->n_units - plan->ngl; j++)
                plan->host_bytes += need->unit_bytes[j];
        if (plan->partial) {
            char a[32];
            snprintf(plan->reason, sizeof plan->reason,
                     "partial offload: %u of %u layers on GPUs, %u on the host (%s on the host)",
                     plan->ngl, plan->n_units, plan->n_units - plan->ngl,
                     gw_place_format_size(plan->host_bytes, a, sizeof a));
        }
    } else {
        plan->n_used = 0;
        plan->ngl = 0;
        plan->host_bytes = need->host_bytes;
    }
}

#define REFINE_ROUNDS 8

int gw_place(const gw_place_device *devs, size_t n, const gw_place_need *need,
             const gw_place_opts *opts, gw_plan *plan, gw_error *err)
{
    gw_place_opts defaults;
    if (!opts) {
        gw_place_opts_init(&defaults);
        opts = &defaults;
    }
    int rc = plan_reset(plan, n, err);
    if (rc)
        return rc;
    uint64_t total = 0;
    rc = validate(need, opts, n, err, &total);
    if (rc)
        return rc;

    uint64_t cap_s[STACK_DEVICES], exact_s[STACK_DEVICES], extra_s[STACK_DEVICES];
    bool ok_s[STACK_DEVICES];
    uint32_t cand_s[STACK_DEVICES], set_s[STACK_DEVICES];
    void *heap = NULL;
    uint64_t *exact = exact_s;
    ctx c = {.devs = devs, .n = n, .need = need, .opts = opts, .plan = plan, .total = total};
    if (n <= STACK_DEVICES) {
        c.cap = cap_s;
        c.extra = extra_s;
        c.ok = ok_s;
        c.cand = cand_s;
        c.set = set_s;
    } else {
        heap = malloc(n * (3 * sizeof(uint64_t) + sizeof(bool) + 2 * sizeof(uint32_t)));
        if (!heap)
            return gw__error_set(err, GW_ENOMEM, "place: out of memory for %zu devices", n);
        c.cap = heap;
        exact = c.cap + n;
        c.extra = exact + n;
        c.cand = (uint32_t *)(c.extra + n);
        c.set = c.cand + n;
        c.ok = (bool *)(c.set + n);
    }
    memset(c.extra, 0, n * sizeof *c.extra);
    for (int round = 0;; round++) {
        plan_round(&c);
        if (!plan->fits || !need->refine)
            break;
        /* the exact per-device figures of this split (the estimator's) */
        rc = need->refine(need->refine_ctx, devs, plan, exact, err);
        if (rc) {
            plan_reset(plan, n, NULL);
            break;
        }
        uint64_t excess = 0;
        uint32_t worst = 0;
        for (size_t i = 0; i < plan->n_used; i++)
            if (exact[i] > plan->used[i].usable && exact[i] - plan->used[i].usable > excess) {
                excess = exact[i] - plan->used[i].usable;
                worst = plan->used[i].device;
            }
        if (excess == 0) {
            plan->gpu_bytes = 0;
            for (size_t i = 0; i < plan->n_used; i++) {
                plan->used[i].bytes = exact[i];
                plan->gpu_bytes += exact[i];
            }
            break;
        }
        if (round + 1 == REFINE_ROUNDS ||
            !gw__add_u64(c.extra[worst], excess, &c.extra[worst])) {
            char a[32], label[128];
            dev_label(&devs[worst], label, sizeof label);
            plan_reset(plan, n, NULL);
            plan->policy = opts->policy;
            plan->n_units = (uint32_t)need->n_units;
            plan->need_bytes = total;
            plan->host_bytes = need->host_bytes;
            snprintf(plan->reason, sizeof plan->reason,
                     "does not fit: the exact estimate of the best split still needs %s more on %s",
                     gw_place_format_size(excess, a, sizeof a), label);
            break;
        }
        plan_reset(plan, n, NULL); /* again, holding the excess back on that device */
    }
    free(heap);
    return rc;
}

/* ------------------------------------------------------------ JSON */

void gw_place_plan_json(struct gw_json *j, const gw_plan *p, const gw_place_device *devs)
{
    gw__json_object_begin(j);
    gw__json_key(j, "fits");
    gw__json_bool(j, p->fits);
    gw__json_key(j, "partial");
    gw__json_bool(j, p->partial);
    gw__json_key(j, "policy");
    gw__json_string(j, gw_place_policy_name(p->policy));
    gw__json_key(j, "reason");
    gw__json_string(j, p->reason[0] ? p->reason : NULL);
    gw__json_key(j, "need_bytes");
    gw__json_u64(j, p->need_bytes);
    gw__json_key(j, "gpu_bytes");
    gw__json_u64(j, p->gpu_bytes);
    gw__json_key(j, "host_bytes");
    gw__json_u64(j, p->host_bytes);
    gw__json_key(j, "n_layers");
    if (p->n_units)
        gw__json_u64(j, p->n_units);
    else
        gw__json_null(j);
    gw__json_key(j, "ngl");
    if (p->n_units && p->fits)
        gw__json_u64(j, p->ngl);
    else
        gw__json_null(j);
    gw__json_key(j, "tensor_split");
    if (p->n_units && p->fits) {
        gw__json_array_begin(j);
        for (size_t i = 0; i < p->n_used; i++)
            gw__json_u64(j, p->used[i].n_units);
        gw__json_array_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_key(j, "devices");
    gw__json_array_begin(j);
    for (size_t i = 0; i < p->n_used; i++) {
        const gw_plan_device *u = &p->used[i];
        const gw_place_device *d = &devs[u->device];
        gw__json_object_begin(j);
        gw__json_key(j, "index");
        gw__json_u64(j, d->index);
        gw__json_key(j, "uuid");
        gw__json_string(j, d->uuid);
        gw__json_key(j, "name");
        gw__json_string(j, d->name[0] ? d->name : NULL);
        gw__json_key(j, "bytes");
        gw__json_u64(j, u->bytes);
        gw__json_key(j, "usable_bytes");
        gw__json_u64(j, u->usable);
        gw__json_key(j, "layers");
        if (p->n_units)
            gw__json_u64(j, u->n_units);
        else
            gw__json_null(j);
        gw__json_key(j, "first_layer");
        if (p->n_units)
            gw__json_u64(j, u->first_unit);
        else
            gw__json_null(j);
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_key(j, "excluded");
    gw__json_array_begin(j);
    for (size_t i = 0; i < p->n_excluded; i++) {
        const gw_place_device *d = &devs[p->excluded[i].device];
        gw__json_object_begin(j);
        gw__json_key(j, "index");
        gw__json_u64(j, d->index);
        gw__json_key(j, "uuid");
        gw__json_string(j, d->uuid);
        gw__json_key(j, "reason");
        gw__json_string(j, p->excluded[i].reason);
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_object_end(j);
}
