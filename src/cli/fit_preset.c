/* fit_preset.c — llama-server's models preset INI (fit_preset.h).
 *
 * Invariants:
 *  1. Every key is a llama-server argument's long name without its dashes
 *     (llama.cpp's preset files use them so: "ctx-size = 8192").
 *  2. A value is written only when it holds no newline, '[' or ';' (the
 *     plan's flags never do; the check keeps a broken plan out of the file).
 */
#include "cli/fit_preset.h"

#include <stdio.h>
#include <string.h>

static bool ini_safe(const char *s, const char *extra)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || strchr(extra, *p))
            return false;
    return true;
}

bool gw_fit_preset_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    if (n == 0 || n >= cap) {
        snprintf(out, cap, "no usable name");
        return false;
    }
    memcpy(out, base, n);
    out[n] = '\0';
    if (!ini_safe(out, "[]=;#")) {
        snprintf(out, cap, "a name with '[', ']', '=', ';', '#' or a control byte");
        return false;
    }
    return true;
}

/* The long name (without dashes) of flag, by fit's option table. */
static const char *long_name(const gw_opt *opts, const char *flag)
{
    for (const gw_opt *o = opts; o->name; o++)
        if (strcmp(o->name, flag) == 0 || (o->alias && strcmp(o->alias, flag) == 0))
            return o->name + 2;
    return NULL;
}

bool gw_fit_preset_section(gw_strbuf *sb, const char *name, const char *path, const char *flags,
                           const char *comment, const gw_opt *opts)
{
    for (const char *c = comment; c && *c;) {
        size_t n = strcspn(c, "\n");
        gw__strbuf_printf(sb, "; %.*s\n", (int)n, c);
        c += n + (c[n] == '\n');
    }
    gw__strbuf_printf(sb, "[%s]\nmodel = %s\n", name, path);
    char tok[2][128];
    const char *p = flags;
    while (*p) {
        size_t n = strspn(p, " ");
        p += n;
        if (!*p)
            break;
        n = strcspn(p, " ");
        if (n >= sizeof tok[0] || p[0] != '-')
            return false;
        memcpy(tok[0], p, n);
        tok[0][n] = '\0';
        p += n;
        p += strspn(p, " ");
        const char *key = long_name(opts, tok[0]);
        if (!key)
            return false;
        bool has_value = *p && (*p != '-' || (p[1] >= '0' && p[1] <= '9'));
        if (has_value) {
            n = strcspn(p, " ");
            if (n >= sizeof tok[1])
                return false;
            memcpy(tok[1], p, n);
            tok[1][n] = '\0';
            p += n;
            if (!ini_safe(tok[1], "[;"))
                return false;
        }
        gw__strbuf_printf(sb, "%s = %s\n", key, has_value ? tok[1] : "true");
    }
    gw__strbuf_puts(sb, "\n");
    return true;
}
