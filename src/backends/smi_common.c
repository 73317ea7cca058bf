/* smi_common.c — shared helpers of the command-line fallback backends (see
 * smi_common.h). No state of its own: the keeper lives in each backend. */
#include "backends/smi_common.h"
#include "core/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_NS 1000000000ll
#define BACKOFF_MAX_NS (60ll * 1000000000ll)

bool gw__smi_parse_uint(const char *s, size_t len, uint64_t *out)
{
    if (len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (!gw__mul_u64(v, 10, &v) || !gw__add_u64(v, (uint64_t)(s[i] - '0'), &v))
            return false;
    }
    *out = v;
    return true;
}

bool gw__smi_parse_milli(const char *s, size_t len, bool allow_negative, int64_t *out)
{
    bool neg = false;
    if (len && s[0] == '-' && allow_negative) {
        neg = true;
        s++;
        len--;
    }
    size_t dot = 0;
    while (dot < len && s[dot] != '.')
        dot++;
    uint64_t whole, frac = 0;
    if (!gw__smi_parse_uint(s, dot, &whole))
        return false;
    if (dot < len) {
        size_t fl = len - dot - 1;
        if (fl == 0)
            return false; /* "12." */
        for (size_t i = 0; i < fl; i++) {
            char ch = s[dot + 1 + i];
            if (ch < '0' || ch > '9')
                return false;
            if (i < 3)
                frac = frac * 10 + (uint64_t)(ch - '0');
        }
        for (size_t i = fl; i < 3; i++)
            frac *= 10;
    }
    uint64_t v;
    if (!gw__mul_u64(whole, 1000, &v) || !gw__add_u64(v, frac, &v) || v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

char *gw__smi_excerpt(const char *s, size_t len, char *out, size_t cap)
{
    if (!cap)
        return out;
    out[0] = '\0';
    size_t i = 0;
    while (i < len) {
        /* skip blank lines and leading spaces */
        while (i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t o = 0;
        while (i < len && s[i] != '\n' && o + 1 < cap) {
            unsigned char ch = (unsigned char)s[i++];
            out[o++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
        }
        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '?'))
            o--; /* trailing spaces, and a '\r' turned into '?' */
        out[o] = '\0';
        if (o)
            return out;
    }
    return out;
}

int gw__smi_run_failure(const char *tool, const gw__subprocess_result *res, unsigned timeout_ms,
                        gw_error *err)
{
    if (res->timed_out)
        return gw__error_set(err, GW_ETIMEDOUT, "%s: timed out after %u ms (killed)%s", tool,
                             timeout_ms, res->unreaped ? "; it has not died yet" : "");
    if (res->overflow)
        return gw__error_set(err, GW_ERANGE, "%s: printed more than its output limit (killed)",
                             tool);
    if (res->signaled)
        return gw__error_set(err, GW_EIO, "%s: killed by signal %d (%s)", tool, res->term_signal,
                             strsignal(res->term_signal));
    if (!res->exited)
        return gw__error_set(err, GW_EIO, "%s: ended with an unknown status", tool);
    return GW_OK;
}

int gw__smi_keeper_store(gw__smi_keeper *k, const gw_device *devs, size_t n)
{
    gw__smi_keeper_clear(k);
    if (!n)
        return GW_OK;
    gw_device *copy = malloc(n * sizeof *copy); /* n is bounded by the caller's device cap */
    if (!copy)
        return GW_ENOMEM;
    memcpy(copy, devs, n * sizeof *copy);
    k->devices = copy;
    k->n = n;
    return GW_OK;
}

long gw__smi_keeper_replay(gw__smi_keeper *k, gw__collect *c, const char *reason)
{
    long added = 0;
    for (size_t i = 0; i < k->n; i++) {
        const gw_device *old = &k->devices[i];
        if (old->info.pci_bus_id[0] && gw__collect_has_pci_bus_id(c, old->info.pci_bus_id))
            continue;
        gw_device *d = gw__collect_add_device(c);
        if (!d)
            return -1;
        uint32_t index = d->info.index;
        *d = *old;
        d->info.index = index;
        d->state = GW_DEVICE_STALE;
        gw__strlcpy(d->state_reason, reason, sizeof d->state_reason);
        added++;
    }
    return added;
}

void gw__smi_keeper_clear(gw__smi_keeper *k)
{
    free(k->devices);
    k->devices = NULL;
    k->n = 0;
}

void gw__smi_keeper_backoff(gw__smi_keeper *k, int64_t now_mono_ns)
{
    k->backoff_ns = k->backoff_ns ? k->backoff_ns * 2 : BACKOFF_MIN_NS;
    if (k->backoff_ns > BACKOFF_MAX_NS)
        k->backoff_ns = BACKOFF_MAX_NS;
    k->retry_at_ns = now_mono_ns + k->backoff_ns;
}

bool gw__smi_keeper_waiting(const gw__smi_keeper *k, int64_t now_mono_ns)
{
    return k->backoff_ns && now_mono_ns < k->retry_at_ns;
}

void gw__smi_keeper_reset_backoff(gw__smi_keeper *k)
{
    k->backoff_ns = 0;
    k->retry_at_ns = 0;
}

void gw__smi_keeper_release(gw__smi_keeper *k)
{
    gw__smi_keeper_clear(k);
    k->backoff_ns = k->retry_at_ns = 0;
}

bool gw__smi_collect_has_vendor(gw__collect *c, gw_vendor v, const char **source)
{
    size_t n = gw__collect_device_count(c);
    for (size_t i = 0; i < n; i++) {
        const gw_device *d = gw__collect_device(c, i);
        if (d && d->info.vendor == v) {
            if (source)
                *source = d->info.source;
            return true;
        }
    }
    return false;
}

bool gw__smi_source_begin(gw__smi_source *s, gw__collect *c, int64_t *now_mono_ns)
{
    s->calls = 0;
    s->state = GW_SOURCE_OK;
    s->error = GW_OK;
    s->message[0] = '\0';
    gw__reaper_poll(&s->reaper);
    const char *direct = NULL;
    if (gw__smi_collect_has_vendor(c, s->vendor, &direct)) {
        snprintf(s->message, sizeof s->message, "not run: %s already reports the %s GPUs",
                 direct && *direct ? direct : "another source",
                 s->vendor == GW_VENDOR_NVIDIA ? "NVIDIA" : s->vendor == GW_VENDOR_AMD ? "AMD"
                                                                                       : "other");
        return false;
    }
    *now_mono_ns = gw__now_mono_ns();
    if (gw__smi_keeper_waiting(&s->keep, *now_mono_ns)) {
        s->state = GW_SOURCE_UNAVAILABLE;
        s->error = s->unavail_error;
        gw__strlcpy(s->message, s->unavail_message, sizeof s->message);
        return false;
    }
    return true;
}

void gw__smi_source_absent(gw__smi_source *s, int rc, const char *why, int64_t now_mono_ns)
{
    gw__smi_keeper_clear(&s->keep);
    gw__smi_keeper_backoff(&s->keep, now_mono_ns);
    s->state = GW_SOURCE_UNAVAILABLE;
    s->error = s->unavail_error = rc;
    gw__strlcpy(s->message, why, sizeof s->message);
    gw__strlcpy(s->unavail_message, why, sizeof s->unavail_message);
}

int gw__smi_source_failed(gw__smi_source *s, gw__collect *c, int rc, gw_error *err)
{
    if (s->keep.n == 0)
        return rc;
    if (gw__smi_keeper_replay(&s->keep, c, err->message) < 0)
        return gw__error_set(err, GW_ENOMEM, "%s: out of memory", s->tool);
    s->state = GW_SOURCE_DEGRADED;
    s->error = rc;
    gw__strlcpy(s->message, err->message, sizeof s->message);
    return GW_OK;
}

int gw__smi_source_add(gw__smi_source *s, gw__collect *c, gw_device *devs, size_t n,
                       size_t *first, size_t *added, gw_error *err)
{
    gw__smi_keeper_reset_backoff(&s->keep);
    int64_t at = gw__now_real_ns();
    size_t skipped = 0;
    *first = gw__collect_device_count(c);
    *added = 0;
    for (size_t i = 0; i < n; i++) {
        if (devs[i].info.pci_bus_id[0] && gw__collect_has_pci_bus_id(c, devs[i].info.pci_bus_id)) {
            skipped++;
            continue;
        }
        gw_device *d = gw__collect_add_device(c);
        if (!d) {
            free(devs);
            return gw__error_set(err, GW_ENOMEM, "%s: out of memory", s->tool);
        }
        uint32_t index = d->info.index;
        *d = devs[i];
        d->info.index = index;
        d->sampled_at_ns = at;
        (*added)++;
    }
    free(devs);
    /* keep what this round reported (stable copies: the collector may move) */
    if (gw__smi_keeper_store(&s->keep, gw__collect_device(c, *first), *added) != GW_OK)
        gw__smi_keeper_clear(&s->keep);
    if (skipped && !s->message[0])
        snprintf(s->message, sizeof s->message,
                 "%zu GPU%s skipped: already reported by another source", skipped,
                 skipped == 1 ? "" : "s");
    return GW_OK;
}

void gw__smi_source_status(const gw__smi_source *s, gw_source_status *st)
{
    st->state = s->state;
    st->error = s->error;
    gw__strlcpy(st->message, s->message, sizeof st->message);
    st->calls = s->calls;
}

void gw__smi_source_release(gw__smi_source *s, unsigned grace_ms)
{
    gw__reaper_release(&s->reaper, grace_ms);
    gw__smi_keeper_release(&s->keep);
}
