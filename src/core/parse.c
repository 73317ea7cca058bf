/* parse.c — see parse.h. Digits are read by hand (invariant 1): strtod
 * accepts "nan", "inf", "0x1p3" and the locale's decimal point, strtoull a
 * sign and wraps "-1" to 2^64-1, and both skip leading space — each of which
 * once turned a typo into a huge number. */
#include "core/parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads DIGITS at *p into *v (overflow: false). */
static bool read_digits(const char **p, uint64_t *v, bool *any)
{
    for (; is_digit(**p); (*p)++, *any = true)
        if (!gw__mul_u64(*v, 10, v) || !gw__add_u64(*v, (uint64_t)(**p - '0'), v))
            return false;
    return true;
}

int gw__parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out, gw_error *err)
{
    if (!s)
        return gw__error_set(err, GW_EINVAL, "missing number");
    const char *p = s;
    uint64_t v = 0;
    bool any = false;
    if (*p == '-' && is_digit(p[1]))
        return gw__error_set(err, GW_EINVAL, "'%s' is negative", s);
    if (!read_digits(&p, &v, &any))
        return gw__error_set(err, GW_EINVAL, "'%s' is too large (over %llu)", s,
                             (unsigned long long)hi);
    if (!any || *p)
        return gw__error_set(err, GW_EINVAL, "'%s' is not a whole number", s);
    if (v < lo || v > hi)
        return gw__error_set(err, GW_EINVAL, "'%s' is out of range %llu..%llu", s,
                             (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return GW_OK;
}

int gw__parse_decimal(const char *s, double lo, double hi, double *out, gw_error *err)
{
    if (!s)
        return gw__error_set(err, GW_EINVAL, "missing number");
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    uint64_t mant = 0, scale = 1;
    int sig = 0;
    bool any = false;
    for (; is_digit(*p); p++, any = true) {
        if (sig == 0 && *p == '0')
            continue;
        if (++sig > 18)
            return gw__error_set(err, GW_EINVAL, "'%s' is out of range %g..%g", s, lo, hi);
        mant = mant * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++, any = true) {
            if (sig >= 18 || scale >= 1000000000000000000ull)
                continue; /* beyond double's precision anyway; scale stays in range */
            if (sig || *p != '0')
                sig++;
            mant = mant * 10 + (uint64_t)(*p - '0');
            scale *= 10;
        }
    }
    if (!any || *p)
        return gw__error_set(err, GW_EINVAL, "'%s' is not a decimal number", s);
    double v = (double)mant / (double)scale;
    if (neg)
        v = -v;
    if (!(v >= lo && v <= hi))
        return gw__error_set(err, GW_EINVAL, "'%s' is out of range %g..%g", s, lo, hi);
    *out = v;
    return GW_OK;
}

int gw__parse_size(const char *s, uint64_t *out, gw_error *err)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},           {"B", 1},          {"K", 1ull << 10},       {"KiB", 1ull << 10},
        {"KB", 1000},      {"M", 1ull << 20}, {"MiB", 1ull << 20},     {"MB", 1000000},
        {"G", 1ull << 30}, {"GiB", 1ull << 30}, {"GB", 1000000000},    {"T", 1ull << 40},
        {"TiB", 1ull << 40}, {"TB", 1000000000000ull},
    };
    static const char grammar[] = "is not a size (NUMBER[.FRACTION][UNIT]: 24GiB, 512MiB, "
                                  "1.5G, 10GB, or a byte count)";
    if (!s)
        return gw__error_set(err, GW_EINVAL, "missing size");
    const char *q = s;
    if (*q == '-' && (is_digit(q[1]) || q[1] == '.'))
        return gw__error_set(err, GW_EINVAL, "'%s' is negative", s);
    uint64_t whole = 0, frac_num = 0, frac_den = 1;
    bool digits = false;
    if (!read_digits(&q, &whole, &digits))
        return gw__error_set(err, GW_EINVAL, "'%s' is too large", s);
    if (*q == '.') {
        for (q++; is_digit(*q); q++, digits = true)
            if (frac_den < 1000000000ull) {
                frac_num = frac_num * 10 + (uint64_t)(*q - '0');
                frac_den *= 10;
            }
    }
    if (!digits)
        return gw__error_set(err, GW_EINVAL, "'%s' %s", s, grammar);
    if (*q == ' ' && q[1] != '\0')
        q++; /* "512 MiB": one space before a unit, none after the number alone */
    for (size_t i = 0; i < GW__ARRAY_LEN(units); i++) {
        if (strcasecmp(q, units[i].suffix) != 0)
            continue;
        if (units[i].mult == 1 && frac_num)
            return gw__error_set(err, GW_EINVAL, "'%s' is not a whole number of bytes", s);
        uint64_t v;
        unsigned __int128 f = (unsigned __int128)frac_num * units[i].mult / frac_den;
        if (!gw__mul_u64(whole, units[i].mult, &v) || !gw__add_u64(v, (uint64_t)f, &v))
            return gw__error_set(err, GW_EINVAL, "'%s' is too large (over 16 EiB)", s);
        *out = v;
        return GW_OK;
    }
    return gw__error_set(err, GW_EINVAL, "'%s' %s", s, grammar);
}

/* ------------------------------------------------------------- options */

/* The entry arg names: "--name", "--name=...", alias likewise. *eq is set
 * to the '=' in arg, or NULL. */
static const gw_opt *find(const gw_opt *const *tables, const char *arg, const char **eq)
{
    const char *e = strchr(arg, '=');
    size_t n = e ? (size_t)(e - arg) : strlen(arg);
    for (size_t t = 0; tables[t]; t++)
        for (const gw_opt *o = tables[t]; o->name; o++) {
            if ((strlen(o->name) == n && strncmp(arg, o->name, n) == 0) ||
                (o->alias && strlen(o->alias) == n && strncmp(arg, o->alias, n) == 0)) {
                *eq = e;
                return o;
            }
        }
    return NULL;
}

int gw__opt_next(gw_opt_scan *s, gw_error *err)
{
    s->opt = NULL;
    s->value = NULL;
    if (s->i >= s->argc)
        return GW_OPT_END;
    const char *a = s->argv[s->i];
    if (s->only_positional || a[0] != '-' || a[1] == '\0') {
        s->value = a;
        s->i++;
        return GW_OPT_POSITIONAL;
    }
    if (strcmp(a, "--") == 0) {
        s->i++;
        s->dashdash = true;
        if (s->stop_at_dashdash)
            return GW_OPT_END;
        s->only_positional = true;
        return gw__opt_next(s, err);
    }
    const char *eq = NULL;
    const gw_opt *o = find(s->tables, a, &eq);
    if (!o)
        return gw__error_set(err, GW_OPT_ERROR, "unknown option '%s'", a);
    s->opt = o;
    if (!o->value) {
        if (eq)
            return gw__error_set(err, GW_OPT_ERROR, "option %s takes no value (got '%s')",
                                 o->name, a);
        s->i++;
        return o->id;
    }
    if (eq) {
        s->value = eq + 1;
        s->i++;
        return o->id;
    }
    if (s->i + 1 >= s->argc)
        return gw__error_set(err, GW_OPT_ERROR, "option %s needs a value (%s %s)", a, o->name,
                             o->value);
    s->value = s->argv[s->i + 1];
    s->i += 2;
    return o->id;
}

bool gw__parse_rfc3339(const char *s, int64_t *ns)
{
    if (!s)
        return false;
    int y, mo, d, h, mi, sec, used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        used != 19 || y < 1970 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return false; /* the years int64 nanoseconds since 1970 hold */
    const char *p = s + used;
    int64_t frac = 0;
    if (*p == '.') {
        int64_t scale = 100000000;
        if (!(p[1] >= '0' && p[1] <= '9'))
            return false;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += scale ? (*p - '0') * scale : 0;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
            return false;
        offset = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = sec};
    *ns = ((int64_t)timegm(&tm) - offset) * 1000000000LL + frac;
    return true;
}

const char *gw__cmdline_flag(const char *cmdline, const char *flag, size_t *len)
{
    size_t fl = strlen(flag);
    for (const char *p = cmdline; p && *p;) {
        while (*p == ' ')
            p++;
        size_t wl = strcspn(p, " ");
        if (wl == fl && strncmp(p, flag, fl) == 0 && p[wl] == ' ') {
            const char *v = p + wl + 1;
            *len = strcspn(v, " ");
            return *len ? v : NULL;
        }
        if (wl > fl + 1 && strncmp(p, flag, fl) == 0 && p[fl] == '=') {
            *len = wl - fl - 1;
            return p + fl + 1;
        }
        p += wl;
    }
    return NULL;
}
