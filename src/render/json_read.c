/* json_read.c — see json_read.h. */
#include "render/json_read.h"
#include "core/util.h"

#include <string.h>

#include <math.h>

void gw__jr_str(const json_t *o, const char *k, char *dst, size_t cap)
{
    const json_t *x = json_object_get(o, k);
    gw__strlcpy(dst, json_is_string(x) ? json_string_value(x) : "", cap);
}

bool gw__jr_u64(const json_t *o, const char *k, uint64_t *out)
{
    const json_t *x = json_object_get(o, k);
    if (json_is_integer(x) && json_integer_value(x) >= 0) {
        *out = (uint64_t)json_integer_value(x);
        return true;
    }
    if (json_is_real(x)) {
        double v = json_real_value(x);
        if (isfinite(v) && v >= 0 && v < 1.8e19 && v == floor(v)) {
            *out = (uint64_t)v;
            return true;
        }
    }
    return false;
}

bool gw__jr_num(const json_t *o, const char *a, const char *b, double *out)
{
    const json_t *x = json_object_get(o, a);
    if (b)
        x = json_object_get(x, b);
    if (!json_is_number(x))
        return false;
    double v = json_number_value(x);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

static void set_valid(gw_sample *s, gw_metric m, bool ok)
{
    if (ok)
        s->valid |= 1ull << m;
}

/* o.a.b as thousandths in an int32 (temperatures: millidegrees). */
static bool milli(const json_t *o, const char *a, const char *b, int32_t *out)
{
    double v;
    if (!gw__jr_num(o, a, b, &v) || fabs(v) >= 1e6)
        return false;
    *out = (int32_t)lround(v * 1000);
    return true;
}

/* o.a.b, non-negative and below hi, scaled by mul into a uint32. */
static bool scaled_u32(const json_t *o, const char *a, const char *b, double hi, double mul,
                       uint32_t *out)
{
    double v;
    if (!gw__jr_num(o, a, b, &v) || v < 0 || v >= hi)
        return false;
    *out = (uint32_t)lround(v * mul);
    return true;
}

static void read_sample(const json_t *g, gw_sample *s)
{
    const json_t *mem = json_object_get(g, "memory");
    set_valid(s, GW_METRIC_MEM_TOTAL, gw__jr_u64(mem, "total_bytes", &s->mem_total));
    set_valid(s, GW_METRIC_MEM_USED, gw__jr_u64(mem, "used_bytes", &s->mem_used));
    set_valid(s, GW_METRIC_MEM_FREE, gw__jr_u64(mem, "free_bytes", &s->mem_free));
    set_valid(s, GW_METRIC_UTIL_GPU, gw__jr_num(g, "utilization", "gpu_percent", &s->util_gpu));
    set_valid(s, GW_METRIC_UTIL_MEM, gw__jr_num(g, "utilization", "memory_percent", &s->util_mem));
    set_valid(s, GW_METRIC_TEMP, milli(g, "temperature", "gpu_celsius", &s->temp_mc));
    set_valid(s, GW_METRIC_POWER, scaled_u32(g, "power", "draw_watts", 4e6, 1e3, &s->power_mw));
    set_valid(s, GW_METRIC_POWER_LIMIT,
              scaled_u32(g, "power", "limit_watts", 4e6, 1e3, &s->power_limit_mw));
    set_valid(s, GW_METRIC_CLOCK_SM, scaled_u32(g, "clocks", "sm_hz", 4e15, 1e-6, &s->clock_sm_mhz));
    set_valid(s, GW_METRIC_CLOCK_MEM,
              scaled_u32(g, "clocks", "memory_hz", 4e15, 1e-6, &s->clock_mem_mhz));
    set_valid(s, GW_METRIC_FAN, gw__jr_num(g, "fan", "speed_percent", &s->fan_pct));
    set_valid(s, GW_METRIC_PSTATE, scaled_u32(g, "pstate", NULL, 15.5, 1, &s->pstate));
}

/* MIG (docs/mig.md): the GPU's mode ("mig_enabled") and a MIG device's
 * "mig" object, so a peer's MIG devices are planned on as this host's are
 * (a GPU in MIG mode no target, a MIG device alone). */
static void read_mig(const json_t *g, gw_device *d)
{
    const json_t *on = json_object_get(g, "mig_enabled");
    if (json_is_boolean(on)) {
        d->sample.mig_mode = json_is_true(on);
        d->sample.mig_pending = d->sample.mig_mode;
        d->sample.valid |= 1ull << GW_METRIC_MIG_MODE;
    }
    const json_t *m = json_object_get(g, "mig");
    uint64_t v;
    if (!json_is_object(m) || !gw__jr_u64(m, "parent_index", &v) || v > UINT32_MAX)
        return;
    d->info.mig = true;
    d->info.mig_parent = (uint32_t)v;
    if (gw__jr_u64(m, "gpu_instance_id", &v) && v <= UINT32_MAX)
        d->info.mig_gpu_instance = (uint32_t)v;
    if (gw__jr_u64(m, "compute_instance_id", &v) && v <= UINT32_MAX)
        d->info.mig_compute_instance = (uint32_t)v;
    gw__jr_str(m, "profile", d->info.mig_profile, sizeof d->info.mig_profile);
}

bool gw__device_read(const json_t *g, gw_device *d, int64_t now_ns)
{
    memset(d, 0, sizeof *d);
    uint64_t v;
    double age;
    d->info.index = gw__jr_u64(g, "index", &v) && v <= UINT32_MAX ? (uint32_t)v : 0;
    d->info.source_index = gw__jr_u64(g, "source_index", &v) && v <= UINT32_MAX ? (uint32_t)v : 0;
    gw__jr_str(g, "name", d->info.name, sizeof d->info.name);
    gw__jr_str(g, "uuid", d->info.uuid, sizeof d->info.uuid);
    gw__jr_str(g, "source", d->info.source, sizeof d->info.source);
    gw__jr_str(g, "state_reason", d->state_reason, sizeof d->state_reason);
    char text[24];
    gw__jr_str(g, "vendor", text, sizeof text);
    if (!gw__vendor_parse(text, &d->info.vendor))
        d->info.vendor = GW_VENDOR_UNKNOWN;
    if (milli(g, "temperature", "slowdown_celsius", &d->info.temp_slowdown_mc))
        d->info.valid |= 1ull << GW_INFO_TEMP_SLOWDOWN;
    if (now_ns && gw__jr_num(g, "sample_age_seconds", NULL, &age) && age >= 0 && age < 1e9)
        d->sampled_at_ns = now_ns - (int64_t)(age * 1e9);
    read_sample(g, &d->sample);
    read_mig(g, d);
    gw__jr_str(g, "state", text, sizeof text);
    return gw__device_state_parse(text, &d->state);
}
