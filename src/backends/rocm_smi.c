/* rocm_smi.c — the AMD command-line fallbacks: amd-smi (ROCm >= 6) and the
 * older rocm-smi, for AMD GPUs the amdgpu sysfs backend cannot see (some
 * containers have the tools but no /sys/class/drm).
 *
 * Owns: two backends sharing one implementation ("amd-smi", "rocm-smi"),
 * the tools' paths found on PATH at open, their JSON parsers (rocm_smi.h),
 * amd-smi's gpu -> PCI address, UUID and name table (`amd-smi list` and
 * `amd-smi static --asic`, cached until a GPU index it does not know shows
 * up), the last good devices (replayed as
 * stale when a call fails) and the back-off while the tool says the driver
 * or the GPUs are absent.
 *
 * Selection: the registry runs amdgpu, then amd-smi, then rocm-smi. Each
 * fallback does not run its tool at all when the collector already holds an
 * AMD device (the direct source, or the other tool, answered), and skips any
 * GPU whose PCI address is already there. Per-process use is not read here:
 * the DRM fdinfo sweep covers AMD processes.
 *
 * Outcomes are those of nvidia_smi.c: answered -> ok devices; driver/GPUs
 * absent -> no device, source unavailable with the reason, back-off;
 * timeout, garbage, other exit codes -> last good devices stale, else the
 * source fails with the reason.
 */
#include "backends/rocm_smi.h"
#include "backends/backend.h"
#include "backends/smi_common.h"
#include "backends/subprocess.h"
#include "core/array.h"
#include "core/util.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CAP (4u << 20) /* amd-smi metric is ~10 KiB per GPU */
#define ERR_CAP (16u << 10)
#define MIB 1048576ull

/* ----------------------------------------------------------- conversion */

typedef enum unit_kind { K_PCT, K_POWER, K_TEMP, K_MHZ, K_BYTES, K_RPM } unit_kind;

typedef struct where {
    const char *tool; /* "rocm-smi" */
    const char *card; /* "card0", "gpu 0" */
} where;

static int bad_value(const where *w, const char *key, const char *what, const json_t *v,
                     gw_error *err)
{
    char shown[48] = "";
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t i = 0;
        for (; s[i] && i + 1 < sizeof shown; i++)
            shown[i] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) ? '?' : s[i];
        shown[i] = '\0';
    } else {
        gw__strlcpy(shown, json_is_object(v) ? "{...}" : json_is_array(v) ? "[...]" : "?",
                    sizeof shown);
    }
    return gw__error_set(err, GW_EPARSE, "%s: %s: \"%s\": %s: '%s'", w->tool, w->card, key, what,
                         shown);
}

/* Reads a number leaf in thousandths of its unit: a JSON number, a numeric
 * string, or {"value": <either>, "unit": "..."}. *have false for "N/A"
 * (also "N/A (Secondary die)") and null. *unit gets the unit string or
 * NULL. */
static int leaf_milli(const where *w, const char *key, const json_t *v, bool *have, int64_t *out,
                      const char **unit, gw_error *err)
{
    *have = false;
    *unit = NULL;
    if (json_is_object(v)) {
        const json_t *u = json_object_get(v, "unit");
        if (u && !json_is_string(u))
            return bad_value(w, key, "unit is not a string", u, err);
        const json_t *val = json_object_get(v, "value");
        if (!val)
            return bad_value(w, key, "object without \"value\"", v, err);
        const char *ignored;
        int rc = leaf_milli(w, key, val, have, out, &ignored, err);
        if (rc == GW_OK && json_is_object(val))
            return bad_value(w, key, "nested value object", val, err);
        *unit = u ? json_string_value(u) : NULL;
        return rc;
    }
    if (json_is_null(v))
        return GW_OK;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strncmp(s, "N/A", 3) == 0)
            return GW_OK;
        if (!gw__smi_parse_milli(s, strlen(s), true, out))
            return bad_value(w, key, "not a number", v, err);
        *have = true;
        return GW_OK;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > INT64_MAX / 1000 || i < INT64_MIN / 1000)
            return bad_value(w, key, "number out of range", v, err);
        *out = (int64_t)i * 1000;
        *have = true;
        return GW_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* no libm: the range check keeps the cast defined, rounding by hand */
        if (!(d >= -9.0e15 && d <= 9.0e15)) /* also false for NaN */
            return bad_value(w, key, "number out of range", v, err);
        *out = (int64_t)(d * 1000.0 + (d >= 0 ? 0.5 : -0.5));
        *have = true;
        return GW_OK;
    }
    return bad_value(w, key, "not a number", v, err);
}

static bool unit_is(const char *unit, const char *a)
{
    return unit && strcasecmp(unit, a) == 0;
}

/* Converts a leaf to the internal unit of kind k (percent as milli-%,
 * mW, mC, MHz, bytes, RPM) into *out. */
static int leaf_convert(const where *w, const char *key, const json_t *v, unit_kind k, bool *have,
                        int64_t *out, gw_error *err)
{
    const char *unit;
    int64_t m;
    int rc = leaf_milli(w, key, v, have, &m, &unit, err);
    if (rc || !*have)
        return rc;
    bool none = !unit || !*unit;
    uint64_t mult = 0, div = 1;
    switch (k) {
    case K_PCT:
        if (none || unit_is(unit, "%"))
            mult = 1;
        break;
    case K_POWER:
        if (none || unit_is(unit, "W"))
            mult = 1;
        else if (unit_is(unit, "mW"))
            mult = 1, div = 1000;
        break;
    case K_TEMP:
        if (none || unit_is(unit, "C") || strcmp(unit, "\xc2\xb0" "C") == 0)
            mult = 1;
        break;
    case K_MHZ:
        if (none || unit_is(unit, "MHz"))
            mult = 1, div = 1000;
        else if (unit_is(unit, "GHz"))
            mult = 1;
        else if (unit_is(unit, "KHz"))
            mult = 1, div = 1000000;
        break;
    case K_BYTES:
        if (none || unit_is(unit, "B"))
            mult = 1, div = 1000;
        else if (unit_is(unit, "KB") || unit_is(unit, "KiB"))
            mult = 1024, div = 1000;
        else if (unit_is(unit, "MB") || unit_is(unit, "MiB")) /* amd-smi's MB is MiB */
            mult = MIB, div = 1000;
        else if (unit_is(unit, "GB") || unit_is(unit, "GiB"))
            mult = MIB * 1024, div = 1000;
        break;
    case K_RPM:
        if (none || unit_is(unit, "RPM"))
            mult = 1, div = 1000;
        break;
    }
    if (!mult) {
        *have = false;
        return bad_value(w, key, "unexpected unit", json_object_get(v, "unit"), err);
    }
    if (m < 0 && k != K_TEMP) {
        *have = false;
        return bad_value(w, key, "negative", json_is_object(v) ? json_object_get(v, "value") : v,
                         err);
    }
    uint64_t mag = m < 0 ? (uint64_t)(-(m + 1)) + 1 : (uint64_t)m, r;
    if (!gw__mul_u64(mag, mult, &r) || r / div > (uint64_t)INT64_MAX) {
        *have = false;
        return bad_value(w, key, "number out of range",
                         json_is_object(v) ? json_object_get(v, "value") : v, err);
    }
    *out = m < 0 ? -(int64_t)(r / div) : (int64_t)(r / div);
    return GW_OK;
}

/* Stores a converted leaf into the sample (range-checked for its field). */
static int put_metric(const where *w, const char *key, const json_t *v, gw_device *d,
                      gw_metric m, gw_error *err)
{
    if (!v)
        return GW_OK;
    gw_sample *s = &d->sample;
    unit_kind k;
    switch (m) {
    case GW_METRIC_UTIL_GPU:
    case GW_METRIC_UTIL_MEM:
    case GW_METRIC_FAN:
        k = K_PCT;
        break;
    case GW_METRIC_POWER:
    case GW_METRIC_POWER_LIMIT:
        k = K_POWER;
        break;
    case GW_METRIC_TEMP:
    case GW_METRIC_TEMP_JUNCTION:
    case GW_METRIC_TEMP_MEM:
        k = K_TEMP;
        break;
    case GW_METRIC_CLOCK_GRAPHICS:
    case GW_METRIC_CLOCK_MEM:
    case GW_METRIC_CLOCK_SM:
        k = K_MHZ;
        break;
    case GW_METRIC_FAN_RPM:
        k = K_RPM;
        break;
    default:
        k = K_BYTES;
        break;
    }
    bool have;
    int64_t x = 0;
    int rc = leaf_convert(w, key, v, k, &have, &x, err);
    if (rc || !have)
        return rc;
    bool ok = true;
    switch (m) {
    case GW_METRIC_UTIL_GPU:
        ok = x <= 100000, s->util_gpu = (double)x / 1000.0;
        break;
    case GW_METRIC_UTIL_MEM:
        ok = x <= 100000, s->util_mem = (double)x / 1000.0;
        break;
    case GW_METRIC_FAN:
        ok = x <= 1000000, s->fan_pct = (double)x / 1000.0;
        break;
    case GW_METRIC_POWER:
        ok = x <= UINT32_MAX, s->power_mw = (uint32_t)x;
        break;
    case GW_METRIC_POWER_LIMIT:
        ok = x <= UINT32_MAX, s->power_limit_mw = (uint32_t)x;
        break;
    case GW_METRIC_TEMP:
        ok = x >= -273000 && x <= 1000000, s->temp_mc = (int32_t)x;
        break;
    case GW_METRIC_TEMP_JUNCTION:
        ok = x >= -273000 && x <= 1000000, s->temp_junction_mc = (int32_t)x;
        break;
    case GW_METRIC_TEMP_MEM:
        ok = x >= -273000 && x <= 1000000, s->temp_mem_mc = (int32_t)x;
        break;
    case GW_METRIC_CLOCK_GRAPHICS:
        ok = x <= UINT32_MAX, s->clock_graphics_mhz = (uint32_t)x;
        break;
    case GW_METRIC_CLOCK_MEM:
        ok = x <= UINT32_MAX, s->clock_mem_mhz = (uint32_t)x;
        break;
    case GW_METRIC_CLOCK_SM:
        ok = x <= UINT32_MAX, s->clock_sm_mhz = (uint32_t)x;
        break;
    case GW_METRIC_FAN_RPM:
        ok = x <= UINT32_MAX, s->fan_rpm = (uint32_t)x;
        break;
    case GW_METRIC_MEM_TOTAL:
        s->mem_total = (uint64_t)x;
        break;
    case GW_METRIC_MEM_USED:
        s->mem_used = (uint64_t)x;
        break;
    case GW_METRIC_MEM_FREE:
        s->mem_free = (uint64_t)x;
        break;
    case GW_METRIC_GTT_TOTAL:
        s->gtt_total = (uint64_t)x;
        break;
    case GW_METRIC_GTT_USED:
        s->gtt_used = (uint64_t)x;
        break;
    case GW_METRIC_VIS_VRAM_TOTAL:
        s->vis_vram_total = (uint64_t)x;
        break;
    case GW_METRIC_VIS_VRAM_USED:
        s->vis_vram_used = (uint64_t)x;
        break;
    default:
        ok = false;
        break;
    }
    if (!ok)
        return bad_value(w, key, "out of range", json_is_object(v) ? json_object_get(v, "value") : v,
                         err);
    s->valid |= 1ull << m;
    return GW_OK;
}

/* Copies a string leaf ("N/A" and absent keys give ""). */
static int put_text(const where *w, const char *key, const json_t *v, char *out, size_t cap,
                    gw_error *err)
{
    out[0] = '\0';
    if (!v || json_is_null(v))
        return GW_OK;
    if (!json_is_string(v))
        return bad_value(w, key, "not a string", v, err);
    const char *s = json_string_value(v);
    if (strncmp(s, "N/A", 3) == 0)
        return GW_OK;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad_value(w, key, "control character", v, err);
    gw__strlcpy(out, s, cap);
    return GW_OK;
}

static void finish_device(gw_device *d, const char *tool)
{
    gw_sample *s = &d->sample;
    d->info.vendor = GW_VENDOR_AMD;
    gw__strlcpy(d->info.source, tool, sizeof d->info.source);
    gw__strlcpy(d->info.memory_api, "smi", sizeof d->info.memory_api);
    d->state = GW_DEVICE_OK;
    if (gw_sample_has(s, GW_METRIC_MEM_TOTAL)) {
        d->info.memory_total = s->mem_total;
        d->info.valid |= 1ull << GW_INFO_MEMORY_TOTAL;
        if (gw_sample_has(s, GW_METRIC_MEM_USED) && !gw_sample_has(s, GW_METRIC_MEM_FREE) &&
            s->mem_used <= s->mem_total) {
            s->mem_free = s->mem_total - s->mem_used;
            s->valid |= 1ull << GW_METRIC_MEM_FREE;
        }
    }
}

/* Loads JSON from tool output; tolerates warning lines printed before the
 * document (rocm-smi does that), nothing after it. */
static json_t *load_json(const char *tool, const char *text, size_t len, gw_error *err)
{
    size_t pos = 0;
    while (pos < len && text[pos] != '{' && text[pos] != '[') {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) {
            pos = len;
            break;
        }
        pos = (size_t)(nl - text) + 1;
    }
    if (pos >= len) {
        gw__error_set(err, GW_EPARSE, "%s: output holds no JSON document", tool);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(text + pos, len - pos, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char msg[100];
        gw__smi_excerpt(je.text, strlen(je.text), msg, sizeof msg);
        gw__error_set(err, GW_EPARSE, "%s: output is not valid JSON: line %d column %d: %s", tool,
                      je.line, je.column, msg);
    }
    return root;
}

typedef struct devvec {
    gw_device *d;
    size_t n, cap;
} devvec;

static gw_device *devvec_add(devvec *v, const char *tool, gw_error *err)
{
    if (v->n >= GW__ROCM_MAX_GPUS) {
        gw__error_set(err, GW_ERANGE, "%s: more than %d GPUs listed", tool, GW__ROCM_MAX_GPUS);
        return NULL;
    }
    if (GW__ARRAY_RESERVE(v->d, v->cap, v->n + 1, GW__ROCM_MAX_GPUS)) {
        gw__error_set(err, GW_ENOMEM, "%s: out of memory", tool);
        return NULL;
    }
    memset(&v->d[v->n], 0, sizeof *v->d);
    return &v->d[v->n++];
}

/* ------------------------------------------------------------- rocm-smi */

/* "(1800Mhz)" or "1800Mhz" or "1800" -> 1800 into a synthetic leaf. */
static int rocm_clock(const where *w, const char *key, const json_t *v, gw_device *d, gw_metric m,
                      gw_error *err)
{
    if (!v)
        return GW_OK;
    if (!json_is_string(v))
        return bad_value(w, key, "not a string", v, err);
    const char *s = json_string_value(v);
    if (strncmp(s, "N/A", 3) == 0)
        return GW_OK;
    size_t len = strlen(s), b = 0;
    if (len >= 2 && s[0] == '(' && s[len - 1] == ')')
        b = 1, len -= 2;
    if (len >= 3 && strncasecmp(s + b + len - 3, "mhz", 3) == 0)
        len -= 3;
    uint64_t mhz;
    if (!gw__smi_parse_uint(s + b, len, &mhz) || mhz > UINT32_MAX)
        return bad_value(w, key, "not a clock in MHz", v, err);
    if (m == GW_METRIC_CLOCK_GRAPHICS)
        d->sample.clock_graphics_mhz = (uint32_t)mhz;
    else
        d->sample.clock_mem_mhz = (uint32_t)mhz;
    d->sample.valid |= 1ull << m;
    return GW_OK;
}

/* First present key of a NULL-terminated list. */
static const json_t *first_of(const json_t *o, const char *const *keys, const char **which)
{
    for (size_t i = 0; keys[i]; i++) {
        const json_t *v = json_object_get(o, keys[i]);
        if (v) {
            *which = keys[i];
            return v;
        }
    }
    *which = keys[0];
    return NULL;
}

static int rocm_card(const char *card, const json_t *o, gw_device *d, gw_error *err)
{
    where w = {"rocm-smi", card};
    static const struct {
        const char *key;
        gw_metric m;
    } simple[] = {
        {"VRAM Total Memory (B)", GW_METRIC_MEM_TOTAL},
        {"VRAM Total Used Memory (B)", GW_METRIC_MEM_USED},
        {"GPU use (%)", GW_METRIC_UTIL_GPU},
        {"GPU memory use (%)", GW_METRIC_UTIL_MEM},
        {"Temperature (Sensor edge) (C)", GW_METRIC_TEMP},
        {"Temperature (Sensor junction) (C)", GW_METRIC_TEMP_JUNCTION},
        {"Temperature (Sensor memory) (C)", GW_METRIC_TEMP_MEM},
        {"Max Graphics Package Power (W)", GW_METRIC_POWER_LIMIT},
        {"Fan speed (%)", GW_METRIC_FAN},
        {"Fan RPM", GW_METRIC_FAN_RPM},
    };
    int rc;
    for (size_t i = 0; i < GW__ARRAY_LEN(simple); i++)
        if ((rc = put_metric(&w, simple[i].key, json_object_get(o, simple[i].key), d, simple[i].m,
                             err)))
            return rc;
    static const char *const power_keys[] = {"Average Graphics Package Power (W)",
                                             "Current Socket Graphics Package Power (W)", NULL};
    static const char *const name_keys[] = {"Card Series", "Card series", "Device Name",
                                            "Card Model", "Card model", NULL};
    const char *which;
    const json_t *v = first_of(o, power_keys, &which);
    if ((rc = put_metric(&w, which, v, d, GW_METRIC_POWER, err)))
        return rc;
    v = first_of(o, name_keys, &which);
    if ((rc = put_text(&w, which, v, d->info.name, sizeof d->info.name, err)) ||
        (rc = put_text(&w, "PCI Bus", json_object_get(o, "PCI Bus"), d->info.pci_bus_id,
                       sizeof d->info.pci_bus_id, err)) ||
        (rc = put_text(&w, "Unique ID", json_object_get(o, "Unique ID"), d->info.uuid,
                       sizeof d->info.uuid, err)) ||
        (rc = rocm_clock(&w, "sclk clock speed:", json_object_get(o, "sclk clock speed:"), d,
                         GW_METRIC_CLOCK_GRAPHICS, err)) ||
        (rc = rocm_clock(&w, "mclk clock speed:", json_object_get(o, "mclk clock speed:"), d,
                         GW_METRIC_CLOCK_MEM, err)))
        return rc;
    char canon[32];
    if (d->info.pci_bus_id[0] &&
        !gw__pci_bus_id_normalize(d->info.pci_bus_id, canon, sizeof canon))
        return bad_value(&w, "PCI Bus", "not a PCI address", json_object_get(o, "PCI Bus"), err);
    finish_device(d, "rocm-smi");
    return GW_OK;
}

int gw__rocmsmi_parse(const char *text, size_t len, gw_device **out, size_t *n, gw_error *err)
{
    *out = NULL;
    *n = 0;
    json_t *root = load_json("rocm-smi", text, len, err);
    if (!root)
        return GW_EPARSE;
    int rc = GW_OK;
    devvec v = {0};
    if (!json_is_object(root)) {
        rc = gw__error_set(err, GW_EPARSE, "rocm-smi: expected a JSON object of cards");
        goto out;
    }
    const char *key;
    json_t *card;
    json_object_foreach(root, key, card)
    {
        unsigned idx;
        char tail;
        if (strncmp(key, "card", 4) != 0)
            continue; /* "system" and the like */
        if (sscanf(key + 4, "%u%c", &idx, &tail) != 1 || !isdigit((unsigned char)key[4])) {
            rc = gw__error_set(err, GW_EPARSE, "rocm-smi: unexpected key \"%.40s\"", key);
            goto out;
        }
        if (!json_is_object(card)) {
            rc = gw__error_set(err, GW_EPARSE, "rocm-smi: %s: not an object", key);
            goto out;
        }
        gw_device *d = devvec_add(&v, "rocm-smi", err);
        if (!d) {
            rc = err->code;
            goto out;
        }
        d->info.source_index = idx;
        if ((rc = rocm_card(key, card, d, err)))
            goto out;
    }
out:
    json_decref(root);
    if (rc) {
        free(v.d);
        return rc;
    }
    *out = v.d;
    *n = v.n;
    return GW_OK;
}

/* -------------------------------------------------------------- amd-smi */

/* The array of GPUs in either shape: [...] or {"gpu_data": [...]}. */
static const json_t *gpu_array(const json_t *root)
{
    if (json_is_array(root))
        return root;
    if (json_is_object(root)) {
        const json_t *a = json_object_get(root, "gpu_data");
        if (json_is_array(a))
            return a;
    }
    return NULL;
}

static int gpu_index(const char *what, const json_t *el, size_t pos, uint32_t *idx,
                     gw_error *err)
{
    const json_t *g = json_object_get(el, "gpu");
    if (!json_is_integer(g) || json_integer_value(g) < 0 ||
        json_integer_value(g) > (json_int_t)UINT32_MAX)
        return gw__error_set(err, GW_EPARSE, "amd-smi: %s: element %zu has no valid \"gpu\" index",
                             what, pos);
    *idx = (uint32_t)json_integer_value(g);
    return GW_OK;
}

/* obj.a.b (b may be NULL) or NULL. */
static const json_t *path2(const json_t *o, const char *a, const char *b)
{
    const json_t *x = json_object_get(o, a);
    if (!x || !b)
        return x;
    return json_is_object(x) ? json_object_get(x, b) : NULL;
}

static int amd_gpu(const json_t *el, gw_device *d, gw_error *err)
{
    char card[24];
    snprintf(card, sizeof card, "gpu %u", d->info.source_index);
    where w = {"amd-smi", card};
    static const struct {
        const char *a, *b, *b2; /* b2: older name of the same leaf */
        gw_metric m;
    } map[] = {
        {"usage", "gfx_activity", NULL, GW_METRIC_UTIL_GPU},
        {"usage", "umc_activity", NULL, GW_METRIC_UTIL_MEM},
        {"power", "socket_power", "average_socket_power", GW_METRIC_POWER},
        {"clock", "gfx_0", NULL, GW_METRIC_CLOCK_GRAPHICS}, /* .clk, below */
        {"clock", "mem_0", NULL, GW_METRIC_CLOCK_MEM},
        {"temperature", "edge", NULL, GW_METRIC_TEMP},
        {"temperature", "hotspot", "junction", GW_METRIC_TEMP_JUNCTION},
        {"temperature", "mem", NULL, GW_METRIC_TEMP_MEM},
        {"fan", "usage", NULL, GW_METRIC_FAN},
        {"fan", "rpm", NULL, GW_METRIC_FAN_RPM},
        {"mem_usage", "total_vram", NULL, GW_METRIC_MEM_TOTAL},
        {"mem_usage", "used_vram", NULL, GW_METRIC_MEM_USED},
        {"mem_usage", "free_vram", NULL, GW_METRIC_MEM_FREE},
        {"mem_usage", "total_visible_vram", NULL, GW_METRIC_VIS_VRAM_TOTAL},
        {"mem_usage", "used_visible_vram", NULL, GW_METRIC_VIS_VRAM_USED},
        {"mem_usage", "total_gtt", NULL, GW_METRIC_GTT_TOTAL},
        {"mem_usage", "used_gtt", NULL, GW_METRIC_GTT_USED},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(map); i++) {
        char key[64];
        const char *leaf = map[i].b;
        const json_t *v = path2(el, map[i].a, map[i].b);
        if (!v && map[i].b2) {
            leaf = map[i].b2;
            v = path2(el, map[i].a, map[i].b2);
        }
        if (v && map[i].a[0] == 'c') { /* clock.gfx_0.clk */
            if (!json_is_object(v))
                continue; /* "N/A" */
            v = json_object_get(v, "clk");
            snprintf(key, sizeof key, "%s.%s.clk", map[i].a, leaf);
        } else {
            snprintf(key, sizeof key, "%s.%s", map[i].a, leaf);
        }
        int rc = put_metric(&w, key, v, d, map[i].m, err);
        if (rc)
            return rc;
    }
    finish_device(d, "amd-smi");
    return GW_OK;
}

int gw__amdsmi_parse_metric(const char *text, size_t len, gw_device **out, size_t *n,
                            gw_error *err)
{
    *out = NULL;
    *n = 0;
    json_t *root = load_json("amd-smi", text, len, err);
    if (!root)
        return GW_EPARSE;
    int rc = GW_OK;
    devvec v = {0};
    const json_t *arr = gpu_array(root);
    if (!arr) {
        rc = gw__error_set(err, GW_EPARSE,
                           "amd-smi: metric: expected a list of GPUs or {\"gpu_data\": [...]}");
        goto out;
    }
    size_t i;
    const json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (!json_is_object(el)) {
            rc = gw__error_set(err, GW_EPARSE, "amd-smi: metric: element %zu is not an object", i);
            goto out;
        }
        gw_device *d = devvec_add(&v, "amd-smi", err);
        if (!d) {
            rc = err->code;
            goto out;
        }
        if ((rc = gpu_index("metric", el, i, &d->info.source_index, err)) ||
            (rc = amd_gpu(el, d, err)))
            goto out;
    }
out:
    json_decref(root);
    if (rc) {
        free(v.d);
        return rc;
    }
    *out = v.d;
    *n = v.n;
    return GW_OK;
}

int gw__amdsmi_parse_list(const char *text, size_t len, gw__amdsmi_list_entry **out, size_t *n,
                          gw_error *err)
{
    *out = NULL;
    *n = 0;
    json_t *root = load_json("amd-smi", text, len, err);
    if (!root)
        return GW_EPARSE;
    int rc = GW_OK;
    gw__amdsmi_list_entry *e = NULL;
    size_t cnt = 0;
    const json_t *arr = gpu_array(root);
    if (!arr) {
        rc = gw__error_set(err, GW_EPARSE,
                           "amd-smi: list: expected a list of GPUs or {\"gpu_data\": [...]}");
        goto out;
    }
    if (json_array_size(arr) > GW__ROCM_MAX_GPUS) {
        rc = gw__error_set(err, GW_ERANGE, "amd-smi: list: more than %d GPUs", GW__ROCM_MAX_GPUS);
        goto out;
    }
    e = calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof *e);
    if (!e) {
        rc = gw__error_set(err, GW_ENOMEM, "amd-smi: out of memory");
        goto out;
    }
    size_t i;
    const json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (!json_is_object(el)) {
            rc = gw__error_set(err, GW_EPARSE, "amd-smi: list: element %zu is not an object", i);
            goto out;
        }
        char card[32];
        snprintf(card, sizeof card, "gpu %zu", i);
        where w = {"amd-smi", card};
        char canon[32];
        if ((rc = gpu_index("list", el, i, &e[cnt].gpu, err)) ||
            (rc = put_text(&w, "bdf", json_object_get(el, "bdf"), e[cnt].bdf, sizeof e[cnt].bdf,
                           err)) ||
            (rc = put_text(&w, "uuid", json_object_get(el, "uuid"), e[cnt].uuid,
                           sizeof e[cnt].uuid, err)))
            goto out;
        if (e[cnt].bdf[0] && !gw__pci_bus_id_normalize(e[cnt].bdf, canon, sizeof canon)) {
            rc = bad_value(&w, "bdf", "not a PCI address", json_object_get(el, "bdf"), err);
            goto out;
        }
        cnt++;
    }
out:
    json_decref(root);
    if (rc) {
        free(e);
        return rc;
    }
    if (!cnt) {
        free(e);
        e = NULL;
    }
    *out = e;
    *n = cnt;
    return GW_OK;
}

int gw__amdsmi_parse_static_names(const char *text, size_t len, gw__amdsmi_list_entry *list,
                                  size_t n, gw_error *err)
{
    json_t *root = load_json("amd-smi", text, len, err);
    if (!root)
        return GW_EPARSE;
    int rc = GW_OK;
    const json_t *arr = gpu_array(root);
    char(*names)[96] = NULL;
    if (!arr) {
        rc = gw__error_set(err, GW_EPARSE,
                           "amd-smi: static: expected a list of GPUs or {\"gpu_data\": [...]}");
        goto out;
    }
    names = calloc(n ? n : 1, sizeof *names); /* staged: nothing changes on error */
    if (!names) {
        rc = gw__error_set(err, GW_ENOMEM, "amd-smi: out of memory");
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        memcpy(names[k], list[k].name, sizeof names[k]);
    size_t i;
    const json_t *el;
    json_array_foreach(arr, i, el)
    {
        uint32_t gpu = 0; /* set by gpu_index; -O3 cannot see it */
        if (!json_is_object(el)) {
            rc = gw__error_set(err, GW_EPARSE, "amd-smi: static: element %zu is not an object", i);
            goto out;
        }
        if ((rc = gpu_index("static", el, i, &gpu, err)))
            goto out;
        char card[24];
        snprintf(card, sizeof card, "gpu %u", gpu);
        where w = {"amd-smi", card};
        char name[96];
        if ((rc = put_text(&w, "asic.market_name", path2(el, "asic", "market_name"), name,
                           sizeof name, err)))
            goto out;
        for (size_t k = 0; k < n; k++)
            if (list[k].gpu == gpu)
                gw__strlcpy(names[k], name, sizeof names[k]);
    }
    for (size_t k = 0; k < n; k++)
        memcpy(list[k].name, names[k], sizeof list[k].name);
out:
    free(names);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------- backends */

typedef struct rsmi {
    gw__smi_source src; /* tool, reaper, last good devices, back-off, status */
    char path[PATH_MAX];
    unsigned timeout_ms;
    gw__amdsmi_list_entry *list; /* amd-smi only: gpu -> bdf, uuid */
    size_t n_list;
} rsmi;

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

static bool said(const gw__subprocess_result *r, const char *needle)
{
    return contains_ci(r->out, needle) || contains_ci(r->err, needle);
}

/* Runs the tool with argv; GW_OK means exit 0 with output in res. */
static int run_tool(rsmi *s, const char *const *argv, gw__subprocess_result *res, bool *absent,
                    gw_error *err)
{
    *absent = false;
    s->src.calls++;
    int rc = gw__subprocess_run(s->path, argv, s->timeout_ms, OUT_CAP, ERR_CAP, &s->src.reaper, res,
                                err);
    if (rc) {
        char why[300];
        gw__strlcpy(why, err->message, sizeof why);
        return gw__error_set(err, rc, "%s: %s", s->src.tool, why);
    }
    if ((rc = gw__smi_run_failure(s->src.tool, res, s->timeout_ms, err)))
        return rc;
    if (res->exit_code == 0)
        return GW_OK;
    char line[160];
    gw__smi_excerpt(res->err, res->err_len, line, sizeof line);
    if (!line[0])
        gw__smi_excerpt(res->out, res->out_len, line, sizeof line);
    if (said(res, "driver not loaded") || said(res, "driver not initialized") ||
        said(res, "amdgpu not found") || said(res, "DRIVER_NOT_LOADED")) {
        *absent = true;
        return gw__error_set(err, GW_EDRIVER, "%s: amdgpu driver not loaded (exit %d)", s->src.tool,
                             res->exit_code);
    }
    if (said(res, "no gpus") || said(res, "no amd gpu") || said(res, "no devices")) {
        *absent = true;
        return gw__error_set(err, GW_ENODEV, "%s: no AMD GPU found (exit %d)", s->src.tool,
                             res->exit_code);
    }
    if (said(res, "permission denied"))
        return gw__error_set(err, GW_EPERM, "%s: permission denied (exit %d)%s%s", s->src.tool,
                             res->exit_code, line[0] ? ": " : "", line);
    return gw__error_set(err, GW_EIO, "%s: failed (exit %d)%s%s", s->src.tool, res->exit_code,
                         line[0] ? ": " : "", line);
}

static int open_tool(void **state, const gw__config *cfg, const char *tool, gw_error *err)
{
    rsmi *s = calloc(1, sizeof *s);
    if (!s)
        return gw__error_set(err, GW_ENOMEM, "%s: out of memory", tool);
    s->src.tool = tool;
    s->src.vendor = GW_VENDOR_AMD;
    if (gw__subprocess_find(tool, s->path, sizeof s->path) != GW_OK) {
        free(s);
        return gw__error_set(err, GW_ENODEV, "%s: not found on PATH", tool);
    }
    s->timeout_ms = cfg->call_timeout_ms ? cfg->call_timeout_ms : 5000;
    gw__reaper_init(&s->src.reaper);
    *state = s;
    return GW_OK;
}

static int amdsmi_open(void **state, const gw__config *cfg, gw_error *err)
{
    return open_tool(state, cfg, "amd-smi", err);
}

static int rocmsmi_open(void **state, const gw__config *cfg, gw_error *err)
{
    return open_tool(state, cfg, "rocm-smi", err);
}

static void rsmi_close(void *state)
{
    rsmi *s = state;
    if (!s)
        return;
    gw__smi_source_release(&s->src, 1000);
    free(s->list);
    free(s);
}

/* amd-smi: fills PCI address and UUID from `amd-smi list`, running it when
 * a GPU index is not in the cached table. A failure leaves them empty and
 * notes it in the status message. */
static void amd_fill_identity(rsmi *s, gw_device *devs, size_t n)
{
    bool missing = false;
    for (size_t i = 0; i < n && !missing; i++) {
        missing = true;
        for (size_t k = 0; k < s->n_list; k++)
            if (s->list[k].gpu == devs[i].info.source_index)
                missing = false;
    }
    if (missing) {
        static const char *const argv[] = {"amd-smi", "list", "--json", NULL};
        gw__subprocess_result res;
        gw_error err;
        gw_error_clear(&err);
        bool absent;
        gw__amdsmi_list_entry *list = NULL;
        size_t nl = 0;
        int rc = run_tool(s, argv, &res, &absent, &err);
        if (rc == GW_OK)
            rc = gw__amdsmi_parse_list(res.out, res.out_len, &list, &nl, &err);
        gw__subprocess_result_release(&res);
        if (rc) {
            snprintf(s->src.message, sizeof s->src.message, "PCI addresses not read: %.340s",
                     err.message);
        } else {
            free(s->list);
            s->list = list;
            s->n_list = nl;
            /* names, once per table: amd-smi metric does not carry them */
            static const char *const sargv[] = {"amd-smi", "static", "--asic", "--json", NULL};
            gw_error_clear(&err);
            rc = run_tool(s, sargv, &res, &absent, &err);
            if (rc == GW_OK)
                rc = gw__amdsmi_parse_static_names(res.out, res.out_len, s->list, s->n_list, &err);
            gw__subprocess_result_release(&res);
            if (rc)
                snprintf(s->src.message, sizeof s->src.message, "GPU names not read: %.340s",
                         err.message);
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < s->n_list; k++)
            if (s->list[k].gpu == devs[i].info.source_index) {
                gw__strlcpy(devs[i].info.pci_bus_id, s->list[k].bdf,
                            sizeof devs[i].info.pci_bus_id);
                gw__strlcpy(devs[i].info.uuid, s->list[k].uuid, sizeof devs[i].info.uuid);
                gw__strlcpy(devs[i].info.name, s->list[k].name, sizeof devs[i].info.name);
            }
}

static int rsmi_sample(void *state, gw__collect *c, gw_error *err)
{
    rsmi *s = state;
    int64_t now;
    if (!gw__smi_source_begin(&s->src, c, &now))
        return GW_OK;

    static const char *const amd_argv[] = {"amd-smi", "metric", "--json", NULL};
    static const char *const rocm_argv[] = {
        "rocm-smi",  "--showmeminfo", "vram",          "--showuse",   "--showmemuse",
        "--showtemp", "--showpower",  "--showmaxpower", "--showfan",   "--showclocks",
        "--showuniqueid", "--showbus", "--showproductname", "--json", NULL};
    bool amd = strcmp(s->src.tool, "amd-smi") == 0;
    gw__subprocess_result res;
    bool absent;
    int rc = run_tool(s, amd ? amd_argv : rocm_argv, &res, &absent, err);
    gw_device *devs = NULL;
    size_t n = 0;
    if (rc == GW_OK)
        rc = amd ? gw__amdsmi_parse_metric(res.out, res.out_len, &devs, &n, err)
                 : gw__rocmsmi_parse(res.out, res.out_len, &devs, &n, err);
    gw__subprocess_result_release(&res);
    if (rc == GW_OK && n == 0) {
        rc = gw__error_set(err, GW_ENODEV, "%s: no AMD GPU listed", s->src.tool);
        absent = true;
    }
    if (rc && absent) {
        gw__smi_source_absent(&s->src, rc, err->message, now);
        return GW_OK;
    }
    if (rc)
        return gw__smi_source_failed(&s->src, c, rc, err);
    if (amd)
        amd_fill_identity(s, devs, n);
    size_t first, added;
    return gw__smi_source_add(&s->src, c, devs, n, &first, &added, err);
}

static void rsmi_status(void *state, gw_source_status *st)
{
    rsmi *s = state;
    gw__smi_source_status(&s->src, st);
}

const gw__backend_ops gw__backend_amd_smi = {
    .name = "amd-smi",
    .vendor = GW_VENDOR_AMD,
    .open = amdsmi_open,
    .sample = rsmi_sample,
    .status = rsmi_status,
    .close = rsmi_close,
};

const gw__backend_ops gw__backend_rocm_smi = {
    .name = "rocm-smi",
    .vendor = GW_VENDOR_AMD,
    .open = rocmsmi_open,
    .sample = rsmi_sample,
    .status = rsmi_status,
    .close = rsmi_close,
};
