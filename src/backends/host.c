/* host.c — the host backend: CPU and RAM from /proc (meminfo, loadavg, stat,
 * sys/kernel/hostname), the whole picture on a CPU-only machine.
 *
 * Owns: the previous /proc/stat totals, so CPU utilisation is the busy share
 * of the interval between two samples (not valid on the first sample).
 * Produces no devices; it fills the collector's host record. Every file is
 * optional: a missing one leaves its fields invalid, never fails the source.
 */
#include "backends/backend.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct host_state {
    char root[512];
    bool have_prev;
    uint64_t prev_total, prev_idle;
    uint64_t calls;
} host_state;

static int host_open(void **state, const gw__config *cfg, gw_error *err)
{
    host_state *h = calloc(1, sizeof *h);
    if (!h)
        return gw__error_set(err, GW_ENOMEM, "host: out of memory");
    gw__strlcpy(h->root, cfg->proc_root, sizeof h->root);
    *state = h;
    return GW_OK;
}

static void host_close(void *state) { free(state); }

/* Value in kB of "Key:   N kB" in meminfo text; false when absent. */
static bool meminfo_kb(const char *text, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            unsigned long long v;
            if (sscanf(p + klen + 1, "%llu", &v) != 1)
                return false;
            return gw__mul_u64(v, 1024, out);
        }
    }
    return false;
}

static void read_meminfo(host_state *h, gw_host *host)
{
    char path[600], buf[8192];
    snprintf(path, sizeof path, "%s/meminfo", h->root);
    h->calls++;
    if (gw__read_file(path, buf, sizeof buf) <= 0)
        return;
    if (meminfo_kb(buf, "MemTotal", &host->mem_total))
        host->valid |= 1u << GW_HOST_MEM_TOTAL;
    if (meminfo_kb(buf, "MemAvailable", &host->mem_available))
        host->valid |= 1u << GW_HOST_MEM_AVAILABLE;
    if (meminfo_kb(buf, "SwapTotal", &host->swap_total))
        host->valid |= 1u << GW_HOST_SWAP_TOTAL;
    if (meminfo_kb(buf, "SwapFree", &host->swap_free))
        host->valid |= 1u << GW_HOST_SWAP_FREE;
}

static void read_loadavg(host_state *h, gw_host *host)
{
    char path[600], buf[256];
    snprintf(path, sizeof path, "%s/loadavg", h->root);
    h->calls++;
    if (gw__read_file(path, buf, sizeof buf) <= 0)
        return;
    if (sscanf(buf, "%lf %lf %lf", &host->load1, &host->load5, &host->load15) == 3)
        host->valid |= 1u << GW_HOST_LOADAVG;
}

/* /proc/stat: the aggregate "cpu" line gives busy/idle jiffies; each "cpuN"
 * line is one online CPU. */
static void read_stat(host_state *h, gw_host *host)
{
    char path[600];
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    if (!buf)
        return;
    snprintf(path, sizeof path, "%s/stat", h->root);
    h->calls++;
    if (gw__read_file(path, buf, cap) <= 0) {
        free(buf);
        return;
    }
    uint32_t cpus = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, "cpu", 3) != 0)
            continue;
        if (line[3] >= '0' && line[3] <= '9') {
            cpus++;
            continue;
        }
        unsigned long long v[10] = {0};
        int n = sscanf(line + 3, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
        if (n < 4)
            continue;
        /* guest and guest_nice (8, 9) are already counted in user/nice */
        uint64_t total = 0;
        for (int i = 0; i < n && i < 8; i++)
            total += v[i];
        uint64_t idle = v[3] + (n > 4 ? v[4] : 0); /* idle + iowait */
        if (h->have_prev && total > h->prev_total && idle >= h->prev_idle) {
            uint64_t dt = total - h->prev_total, di = idle - h->prev_idle;
            if (di <= dt) {
                host->cpu_util = 100.0 * (double)(dt - di) / (double)dt;
                host->valid |= 1u << GW_HOST_CPU_UTIL;
            }
        }
        h->prev_total = total;
        h->prev_idle = idle;
        h->have_prev = true;
    }
    if (cpus) {
        host->cpu_count = cpus;
        host->valid |= 1u << GW_HOST_CPU_COUNT;
    }
    free(buf);
}

static int host_sample(void *state, gw__collect *c, gw_error *err)
{
    (void)err;
    host_state *h = state;
    gw_host *host = gw__collect_host(c);
    h->calls = 0;
    read_meminfo(h, host);
    read_loadavg(h, host);
    read_stat(h, host);
    char path[600], buf[128];
    snprintf(path, sizeof path, "%s/sys/kernel/hostname", h->root);
    if (gw__read_file(path, buf, sizeof buf) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        gw__strlcpy(host->hostname, buf, sizeof host->hostname);
    }
    return GW_OK;
}

static void host_status(void *state, gw_source_status *st)
{
    host_state *h = state;
    st->state = GW_SOURCE_OK;
    st->calls = h->calls;
}

const gw__backend_ops gw__backend_host = {
    .name = "host",
    .vendor = GW_VENDOR_UNKNOWN,
    .open = host_open,
    .sample = host_sample,
    .status = host_status,
    .close = host_close,
};
