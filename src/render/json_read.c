/* json_read.c — see json_read.h. */
#include "render/json_read.h"
#include "core/util.h"

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
