/* history.c — see history.h. Storage: per device one timestamp array and one
 * float column per metric (float: 24 bits of mantissa are plenty for
 * percent/celsius/watts and keep byte counts within 1 part in 16 million,
 * while halving the memory of an hour of 8 GPUs). Energy is stored as
 * double because a small change of a large counter must survive. */
#include "sampler/history.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gw_metric recorded[] = {
    GW_METRIC_MEM_USED,   GW_METRIC_MEM_FREE,  GW_METRIC_MEM_TOTAL,  GW_METRIC_UTIL_GPU,
    GW_METRIC_UTIL_MEM,   GW_METRIC_UTIL_ENC,  GW_METRIC_UTIL_DEC,   GW_METRIC_TEMP,
    GW_METRIC_POWER,      GW_METRIC_CLOCK_SM,  GW_METRIC_CLOCK_MEM,  GW_METRIC_FAN,
    GW_METRIC_GTT_USED,   GW_METRIC_ENERGY,
};
#define N_REC (sizeof recorded / sizeof recorded[0])
#define ENERGY_COL (N_REC - 1)

typedef struct ring {
    char key[96];
    int64_t *t;
    float *v[N_REC - 1];
    double *energy;
    size_t head, count; /* next slot to write; rows held */
} ring;

struct gw__history {
    pthread_mutex_t lock;
    size_t capacity;
    ring rings[GW__HISTORY_MAX_DEVICES];
    size_t n_rings;
};

const gw_metric *gw__history_metrics(size_t *n_out)
{
    *n_out = N_REC;
    return recorded;
}

static int column(gw_metric m)
{
    for (size_t i = 0; i < N_REC; i++)
        if (recorded[i] == m)
            return (int)i;
    return -1;
}

const char *gw__history_unit(gw_metric m)
{
    switch (m) {
    case GW_METRIC_MEM_USED:
    case GW_METRIC_MEM_FREE:
    case GW_METRIC_MEM_TOTAL:
    case GW_METRIC_GTT_USED: return "bytes";
    case GW_METRIC_UTIL_GPU:
    case GW_METRIC_UTIL_MEM:
    case GW_METRIC_UTIL_ENC:
    case GW_METRIC_UTIL_DEC:
    case GW_METRIC_FAN: return "percent";
    case GW_METRIC_TEMP: return "celsius";
    case GW_METRIC_POWER: return "watts";
    case GW_METRIC_CLOCK_SM:
    case GW_METRIC_CLOCK_MEM: return "hertz";
    case GW_METRIC_ENERGY: return "joules";
    default: return NULL;
    }
}

/* The value of m in API units, or NaN when not valid. */
static double value_of(const gw_device *d, gw_metric m)
{
    const gw_sample *s = &d->sample;
    if (d->state == GW_DEVICE_LOST || !gw_sample_has(s, m))
        return NAN;
    switch (m) {
    case GW_METRIC_MEM_USED: return (double)s->mem_used;
    case GW_METRIC_MEM_FREE: return (double)s->mem_free;
    case GW_METRIC_MEM_TOTAL: return (double)s->mem_total;
    case GW_METRIC_GTT_USED: return (double)s->gtt_used;
    case GW_METRIC_UTIL_GPU: return s->util_gpu;
    case GW_METRIC_UTIL_MEM: return s->util_mem;
    case GW_METRIC_UTIL_ENC: return s->util_enc;
    case GW_METRIC_UTIL_DEC: return s->util_dec;
    case GW_METRIC_FAN: return s->fan_pct;
    case GW_METRIC_TEMP: return s->temp_mc / 1000.0;
    case GW_METRIC_POWER: return s->power_mw / 1000.0;
    case GW_METRIC_CLOCK_SM: return (double)s->clock_sm_mhz * 1e6;
    case GW_METRIC_CLOCK_MEM: return (double)s->clock_mem_mhz * 1e6;
    case GW_METRIC_ENERGY: return (double)s->energy_mj / 1000.0;
    default: return NAN;
    }
}

void gw__history_key(const gw_device *d, char *out, size_t cap)
{
    if (d->info.uuid[0])
        gw__strlcpy(out, d->info.uuid, cap);
    else
        snprintf(out, cap, "index:%u", d->info.index);
}

int gw__history_create(gw__history **out, size_t capacity, gw_error *err)
{
    *out = NULL;
    if (capacity == 0 || capacity > 100u * 1000u * 1000u)
        return gw__error_set(err, GW_EINVAL, "history: %zu rows per device is out of range (1..100000000)",
                             capacity);
    gw__history *h = calloc(1, sizeof *h);
    if (!h)
        return gw__error_set(err, GW_ENOMEM, "history: out of memory");
    pthread_mutex_init(&h->lock, NULL);
    h->capacity = capacity;
    *out = h;
    return GW_OK;
}

static void ring_free(ring *r)
{
    free(r->t);
    for (size_t c = 0; c < N_REC - 1; c++)
        free(r->v[c]);
    free(r->energy);
}

void gw__history_free(gw__history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_rings; i++)
        ring_free(&h->rings[i]);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static ring *find(gw__history *h, const char *key)
{
    for (size_t i = 0; i < h->n_rings; i++)
        if (strcmp(h->rings[i].key, key) == 0)
            return &h->rings[i];
    return NULL;
}

static ring *add_ring(gw__history *h, const char *key)
{
    if (h->n_rings >= GW__HISTORY_MAX_DEVICES)
        return NULL;
    ring *r = &h->rings[h->n_rings];
    memset(r, 0, sizeof *r);
    gw__strlcpy(r->key, key, sizeof r->key);
    bool ok = (r->t = malloc(h->capacity * sizeof *r->t)) != NULL;
    for (size_t c = 0; ok && c < N_REC - 1; c++)
        ok = (r->v[c] = malloc(h->capacity * sizeof *r->v[c])) != NULL;
    ok = ok && (r->energy = malloc(h->capacity * sizeof *r->energy)) != NULL;
    if (!ok) {
        ring_free(r);
        return NULL;
    }
    h->n_rings++;
    return r;
}

int gw__history_record(gw__history *h, const gw_snapshot *s)
{
    int rc = GW_OK;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < s->n_devices; i++) {
        const gw_device *d = &s->devices[i];
        if (d->state == GW_DEVICE_STALE)
            continue; /* a copy of an earlier sample, not a new one */
        char key[96];
        gw__history_key(d, key, sizeof key);
        ring *r = find(h, key);
        if (!r && !(r = add_ring(h, key))) {
            rc = GW_ENOMEM;
            continue;
        }
        int64_t t = d->sampled_at_ns ? d->sampled_at_ns : s->taken_ns;
        if (r->count && r->t[(r->head + h->capacity - 1) % h->capacity] >= t)
            continue; /* same sample seen again (a re-published snapshot) */
        r->t[r->head] = t;
        for (size_t c = 0; c < N_REC - 1; c++)
            r->v[c][r->head] = (float)value_of(d, recorded[c]);
        r->energy[r->head] = value_of(d, GW_METRIC_ENERGY);
        r->head = (r->head + 1) % h->capacity;
        if (r->count < h->capacity)
            r->count++;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int gw__history_query(gw__history *h, const char *key, gw_metric m, int64_t since_ns,
                      int64_t until_ns, int64_t step_ns, gw__history_point **out, size_t *n,
                      gw_error *err)
{
    *out = NULL;
    *n = 0;
    int col = column(m);
    if (col < 0)
        return gw__error_set(err, GW_EINVAL, "metric '%s' has no history", gw_metric_name(m));
    if (step_ns < 0)
        step_ns = 0;
    pthread_mutex_lock(&h->lock);
    ring *r = find(h, key);
    if (!r) {
        pthread_mutex_unlock(&h->lock);
        return gw__error_set(err, GW_ENOENT, "no history for GPU '%s'", key);
    }
    gw__history_point *pts = r->count ? malloc(r->count * sizeof *pts) : NULL;
    if (r->count && !pts) {
        pthread_mutex_unlock(&h->lock);
        return gw__error_set(err, GW_ENOMEM, "history: out of memory");
    }
    size_t np = 0;
    size_t first = (r->head + h->capacity - r->count) % h->capacity;
    int64_t bucket = INT64_MIN;
    double sum = 0;
    size_t nvalid = 0;
    for (size_t k = 0; k < r->count; k++) {
        size_t i = (first + k) % h->capacity;
        int64_t t = r->t[i];
        if (t < since_ns || t > until_ns)
            continue;
        double v = (size_t)col == ENERGY_COL ? r->energy[i] : (double)r->v[col][i];
        int64_t b = step_ns ? t - (t % step_ns) : t;
        if (b != bucket) {
            if (bucket != INT64_MIN) {
                pts[np].valid = nvalid > 0;
                pts[np].v = nvalid ? sum / (double)nvalid : 0;
                np++;
            }
            bucket = b;
            sum = 0;
            nvalid = 0;
            pts[np].t = (double)b / 1e9;
        }
        if (!isnan(v)) {
            sum += v;
            nvalid++;
        }
    }
    if (bucket != INT64_MIN) {
        pts[np].valid = nvalid > 0;
        pts[np].v = nvalid ? sum / (double)nvalid : 0;
        np++;
    }
    pthread_mutex_unlock(&h->lock);
    if (np == 0) {
        free(pts);
        pts = NULL;
    }
    *out = pts;
    *n = np;
    return GW_OK;
}

size_t gw__history_bytes(gw__history *h)
{
    pthread_mutex_lock(&h->lock);
    size_t per = h->capacity * (sizeof(int64_t) + (N_REC - 1) * sizeof(float) + sizeof(double));
    size_t total = sizeof *h + h->n_rings * per;
    pthread_mutex_unlock(&h->lock);
    return total;
}
