/* gpu_select.c — `--id GPU[,GPU]` (gpu_select.h).
 *
 * Owns: parsing an id list into gpu_id values, matching them against a
 * snapshot's devices, and the filtered view (its two arrays). Ids are
 * parsed again on every call: a list is short and this keeps no state. */
#include "cli/gpu_select.h"
#include "core/parse.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { ID_INDEX, ID_PCI, ID_UUID } id_kind;

typedef struct gpu_id {
    id_kind kind;
    uint32_t index;
    uint32_t pci[4]; /* domain, bus, device, function */
    char text[GW_GPU_ID_LEN];
} gpu_id;

/* Reads 1..max_digits hex digits, exactly [s, end), into *out (<= hi). */
static bool parse_hex(const char *s, const char *end, size_t max_digits, uint32_t hi,
                      uint32_t *out)
{
    size_t n = (size_t)(end - s);
    if (n == 0 || n > max_digits)
        return false;
    uint64_t v = 0;
    for (; s < end; s++) {
        char c = *s;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        v = v * 16 + (uint64_t)d;
    }
    if (v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* [DOMAIN:]BUS:DEVICE[.FUNCTION] into pci[4]; false when s is not one. */
static bool parse_pci(const char *s, uint32_t pci[4])
{
    const char *c1 = strchr(s, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || (c2 && strchr(c2 + 1, ':')))
        return false;
    const char *bus = s, *dev = c1 + 1;
    pci[0] = 0;
    if (c2) {
        if (!parse_hex(s, c1, 8, UINT32_MAX, &pci[0]))
            return false;
        bus = c1 + 1;
        dev = c2 + 1;
    }
    const char *bus_end = c2 ? c2 : c1;
    const char *dot = strchr(dev, '.');
    const char *dev_end = dot ? dot : dev + strlen(dev);
    pci[3] = 0;
    if (dot && !parse_hex(dot + 1, dot + 1 + strlen(dot + 1), 1, 7, &pci[3]))
        return false;
    return parse_hex(bus, bus_end, 2, 0xff, &pci[1]) && parse_hex(dev, dev_end, 2, 0x1f, &pci[2]);
}

static bool is_uuid(const char *s)
{
    bool digits_only = true;
    for (const char *p = s; *p; p++) {
        bool alnum = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= 'A' && *p <= 'Z');
        if (!alnum && (p == s || (*p != '-' && *p != '_')))
            return false;
        if (*p < '0' || *p > '9')
            digits_only = false;
    }
    return *s && !digits_only;
}

/* Parses [s, s+len) into *id. */
static int parse_id(const char *s, size_t len, gpu_id *id, gw_error *err)
{
    memset(id, 0, sizeof *id);
    if (len >= sizeof id->text)
        return gw__error_set(err, GW_EINVAL, "'%.*s...' is too long for a GPU id", 20, s);
    memcpy(id->text, s, len);
    id->text[len] = '\0';
    uint64_t v;
    if (len && strspn(id->text, "0123456789") == len) {
        if (gw__parse_uint(id->text, 0, UINT32_MAX, &v, err) != GW_OK)
            return GW_EINVAL;
        id->kind = ID_INDEX;
        id->index = (uint32_t)v;
        return GW_OK;
    }
    if (strchr(id->text, ':')) {
        id->kind = ID_PCI;
        if (parse_pci(id->text, id->pci))
            return GW_OK;
        return gw__error_set(err, GW_EINVAL,
                             "'%s' is not a PCI bus id ([DOMAIN:]BUS:DEVICE[.FUNCTION], hex)",
                             id->text);
    }
    id->kind = ID_UUID;
    if (is_uuid(id->text))
        return GW_OK;
    return gw__error_set(err, GW_EINVAL, "'%s' is not a GPU index, UUID or PCI bus id",
                         id->text);
}

/* Parses list into ids[]; *n their count. */
static int parse_list(const char *list, gpu_id *ids, size_t *n, gw_error *err)
{
    *n = 0;
    for (const char *p = list;; p++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n == GW_GPU_IDS_MAX)
            return gw__error_set(err, GW_EINVAL, "more than %d GPU ids", GW_GPU_IDS_MAX);
        if (parse_id(p, len, &ids[*n], err) != GW_OK)
            return GW_EINVAL;
        (*n)++;
        if (!comma)
            return GW_OK;
        p = comma;
    }
}

int gw__gpu_ids_check(const char *list, gw_error *err)
{
    gpu_id ids[GW_GPU_IDS_MAX];
    size_t n;
    return parse_list(list, ids, &n, err);
}

static bool id_matches(const gpu_id *id, const gw_device_info *d)
{
    uint32_t pci[4];
    switch (id->kind) {
    case ID_INDEX: return d->index == id->index;
    case ID_UUID: return d->uuid[0] && strcasecmp(d->uuid, id->text) == 0;
    case ID_PCI:
        return d->pci_bus_id[0] && parse_pci(d->pci_bus_id, pci) &&
               memcmp(pci, id->pci, sizeof pci) == 0;
    }
    return false;
}

/* keep[i] for every device an id names; GW_EINVAL naming an id naming none. */
static int mark_devices(const gw_snapshot *snap, const gpu_id *ids, size_t n, bool *keep,
                        gw_error *err)
{
    for (size_t k = 0; k < n; k++) {
        bool found = false;
        for (size_t i = 0; i < snap->n_devices; i++)
            if (id_matches(&ids[k], &snap->devices[i].info))
                found = keep[i] = true;
        if (found)
            continue;
        if (snap->n_devices == 0)
            return gw__error_set(err, GW_EINVAL, "no GPU '%s' here (no GPU found)", ids[k].text);
        return gw__error_set(err, GW_EINVAL, "no GPU '%s' here (GPUs: 0..%zu)", ids[k].text,
                             snap->n_devices - 1);
    }
    return GW_OK;
}

int gw__gpu_view_init(gw_snapshot *view, const gw_snapshot *snap, const char *list,
                      gw_error *err)
{
    gpu_id ids[GW_GPU_IDS_MAX];
    size_t n;
    if (parse_list(list, ids, &n, err) != GW_OK)
        return GW_EINVAL;
    bool *keep = calloc(snap->n_devices + 1, sizeof *keep);
    if (!keep)
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    if (mark_devices(snap, ids, n, keep, err) != GW_OK) {
        free(keep);
        return GW_EINVAL;
    }
    size_t nd = 0, np = 0;
    for (size_t i = 0; i < snap->n_devices; i++)
        nd += keep[i];
    for (size_t i = 0; i < snap->n_processes; i++) {
        uint32_t d = snap->processes[i].device_index;
        np += d < snap->n_devices && keep[d];
    }
    gw_device *devs = calloc(nd + 1, sizeof *devs);
    gw_process *procs = calloc(np + 1, sizeof *procs);
    if (!devs || !procs) {
        free(keep);
        free(devs);
        free(procs);
        return gw__error_set(err, GW_ENOMEM, "out of memory");
    }
    nd = np = 0;
    for (size_t i = 0; i < snap->n_devices; i++)
        if (keep[i])
            devs[nd++] = snap->devices[i];
    for (size_t i = 0; i < snap->n_processes; i++) {
        uint32_t d = snap->processes[i].device_index;
        if (d < snap->n_devices && keep[d])
            procs[np++] = snap->processes[i];
    }
    free(keep);
    *view = *snap;
    view->refcount__ = 0;
    view->devices = devs;
    view->n_devices = nd;
    view->processes = procs;
    view->n_processes = np;
    return GW_OK;
}

void gw__gpu_view_release(gw_snapshot *view)
{
    free(view->devices);
    free(view->processes);
    view->devices = NULL;
    view->processes = NULL;
    view->n_devices = view->n_processes = 0;
}
