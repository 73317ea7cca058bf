/* snapshot.c — the collector backends write into, and the immutable,
 * reference-counted snapshot it turns into.
 *
 * Invariants:
 *  1. A collector only grows; gw__collect_finish moves its arrays into a new
 *     snapshot (refcount 1) and leaves the collector empty.
 *  2. A published snapshot is never written again; its refcount is atomic so
 *     any thread may acquire/release it.
 *  3. Processes in a snapshot are sorted by (device_index, pid).
 */
#include "core/snapshot_build.h"
#include "core/array.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw__collect_init(gw__collect *c)
{
    memset(c, 0, sizeof *c);
}

void gw__collect_release(gw__collect *c)
{
    free(c->devices);
    free(c->processes);
    free(c->sources);
    gw__collect_init(c);
}

gw_device *gw__collect_add_device(gw__collect *c)
{
    if (GW__ARRAY_RESERVE(c->devices, c->cap_devices, c->n_devices + 1, GW__ARRAY_UNBOUNDED))
        return NULL;
    gw_device *d = &c->devices[c->n_devices];
    memset(d, 0, sizeof *d);
    d->info.index = (uint32_t)c->n_devices;
    c->n_devices++;
    return d;
}

size_t gw__collect_device_count(const gw__collect *c) { return c->n_devices; }

gw_device *gw__collect_device(gw__collect *c, size_t i)
{
    return i < c->n_devices ? &c->devices[i] : NULL;
}

gw_process *gw__collect_add_process(gw__collect *c)
{
    if (GW__ARRAY_RESERVE(c->processes, c->cap_processes, c->n_processes + 1,
                          GW__ARRAY_UNBOUNDED))
        return NULL;
    gw_process *p = &c->processes[c->n_processes++];
    memset(p, 0, sizeof *p);
    return p;
}

bool gw__pci_bus_id_normalize(const char *bus_id, char *out, size_t cap)
{
    unsigned long long dom;
    unsigned bus, dev;
    int end = -1;
    if (cap)
        out[0] = '\0';
    /* the function is one digit 0-7 and nothing may follow it (a %x there
     * would accept "0x") */
    if (!bus_id || sscanf(bus_id, "%llx:%x:%x.%n", &dom, &bus, &dev, &end) != 3 || end < 0 ||
        bus_id[end] < '0' || bus_id[end] > '7' || bus_id[end + 1] != '\0' ||
        dom > 0xffffffffull || bus > 0xff || dev > 0x1f)
        return false;
    int n = snprintf(out, cap, "%04llx:%02x:%02x.%c", dom, bus, dev, bus_id[end]);
    return n > 0 && (size_t)n < cap;
}

bool gw__collect_has_pci_bus_id(const gw__collect *c, const char *bus_id)
{
    char want[32], have[32];
    if (!gw__pci_bus_id_normalize(bus_id, want, sizeof want))
        return false;
    for (size_t i = 0; i < c->n_devices; i++)
        if (gw__pci_bus_id_normalize(c->devices[i].info.pci_bus_id, have, sizeof have) &&
            strcmp(want, have) == 0)
            return true;
    return false;
}

gw_host *gw__collect_host(gw__collect *c) { return &c->host; }

gw_source_status *gw__collect_add_source(gw__collect *c)
{
    if (GW__ARRAY_RESERVE(c->sources, c->cap_sources, c->n_sources + 1, GW__ARRAY_UNBOUNDED))
        return NULL;
    gw_source_status *s = &c->sources[c->n_sources++];
    memset(s, 0, sizeof *s);
    return s;
}

static int process_cmp(const void *a, const void *b)
{
    const gw_process *x = a, *y = b;
    if (x->device_index != y->device_index)
        return x->device_index < y->device_index ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return 0;
}

gw_snapshot *gw__collect_finish(gw__collect *c)
{
    gw_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (c->n_processes > 1)
        qsort(c->processes, c->n_processes, sizeof *c->processes, process_cmp);
    s->devices = c->devices;
    s->n_devices = c->n_devices;
    s->processes = c->processes;
    s->n_processes = c->n_processes;
    s->sources = c->sources;
    s->n_sources = c->n_sources;
    s->host = c->host;
    s->refcount__ = 1;
    gw__collect_init(c);
    return s;
}

gw_snapshot *gw_snapshot_acquire(gw_snapshot *s)
{
    if (s)
        __atomic_add_fetch(&s->refcount__, 1, __ATOMIC_RELAXED);
    return s;
}

void gw_snapshot_release(gw_snapshot *s)
{
    if (!s || __atomic_sub_fetch(&s->refcount__, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(s->devices);
    free(s->processes);
    free(s->sources);
    free(s);
}
