/* json_writer.c — see json_writer.h. */
#include "render/json_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void gw__json_init(gw_json *j, gw_strbuf *sb, bool pretty)
{
    memset(j, 0, sizeof *j);
    j->sb = sb;
    j->pretty = pretty;
}

static void newline_indent(gw_json *j)
{
    if (!j->pretty)
        return;
    gw__strbuf_putc(j->sb, '\n');
    for (int i = 0; i < j->depth; i++)
        gw__strbuf_append(j->sb, "  ", 2);
}

/* Called before every value or key: writes the separating comma. */
static void before_item(gw_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (j->need_comma[j->depth - 1])
            gw__strbuf_putc(j->sb, ',');
        j->need_comma[j->depth - 1] = true;
        newline_indent(j);
    }
}

static void open_container(gw_json *j, char c)
{
    before_item(j);
    gw__strbuf_putc(j->sb, c);
    if (j->depth >= GW__JSON_MAX_DEPTH) {
        j->sb->failed = true;
        return;
    }
    j->need_comma[j->depth++] = false;
}

static void close_container(gw_json *j, char c)
{
    if (j->depth == 0) {
        j->sb->failed = true;
        return;
    }
    bool had_items = j->need_comma[--j->depth];
    if (had_items)
        newline_indent(j);
    gw__strbuf_putc(j->sb, c);
}

void gw__json_object_begin(gw_json *j) { open_container(j, '{'); }
void gw__json_object_end(gw_json *j) { close_container(j, '}'); }
void gw__json_array_begin(gw_json *j) { open_container(j, '['); }
void gw__json_array_end(gw_json *j) { close_container(j, ']'); }

/* Length of a valid UTF-8 sequence at s, or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void gw__json_escape(gw_strbuf *sb, const char *s)
{
    gw__strbuf_putc(sb, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            gw__strbuf_append(sb, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        if (*p == '"' || *p == '\\') {
            gw__strbuf_putc(sb, '\\');
            gw__strbuf_putc(sb, (char)*p++);
        } else if (*p < 0x20) {
            switch (*p) {
            case '\n': gw__strbuf_puts(sb, "\\n"); break;
            case '\t': gw__strbuf_puts(sb, "\\t"); break;
            case '\r': gw__strbuf_puts(sb, "\\r"); break;
            default: gw__strbuf_printf(sb, "\\u%04x", *p); break;
            }
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n) {
                gw__strbuf_append(sb, (const char *)p, n);
                p += n;
            } else {
                gw__strbuf_puts(sb, "\\ufffd");
                p++;
            }
        }
    }
    gw__strbuf_putc(sb, '"');
}

void gw__json_key(gw_json *j, const char *key)
{
    before_item(j);
    gw__json_escape(j->sb, key);
    gw__strbuf_putc(j->sb, ':');
    if (j->pretty)
        gw__strbuf_putc(j->sb, ' ');
    j->after_key = true;
}

void gw__json_string(gw_json *j, const char *s)
{
    before_item(j);
    if (s)
        gw__json_escape(j->sb, s);
    else
        gw__strbuf_append(j->sb, "null", 4);
}

void gw__json_u64(gw_json *j, uint64_t v)
{
    before_item(j);
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    gw__strbuf_append(j->sb, buf, (size_t)n);
}

void gw__json_i64(gw_json *j, int64_t v)
{
    before_item(j);
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    gw__strbuf_append(j->sb, buf, (size_t)n);
}

void gw__json_double(gw_json *j, double v)
{
    before_item(j);
    if (!isfinite(v)) {
        gw__strbuf_append(j->sb, "null", 4);
        return;
    }
    char buf[32];
    /* %.17g round-trips; shorter forms are tried first for readability */
    int n = snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v)
        n = snprintf(buf, sizeof buf, "%.17g", v);
    gw__strbuf_append(j->sb, buf, (size_t)n);
}

void gw__json_bool(gw_json *j, bool v)
{
    before_item(j);
    gw__strbuf_puts(j->sb, v ? "true" : "false");
}

void gw__json_null(gw_json *j)
{
    before_item(j);
    gw__strbuf_append(j->sb, "null", 4);
}

void gw__json_kv_u64(gw_json *j, const char *key, bool ok, uint64_t v)
{
    gw__json_key(j, key);
    if (ok)
        gw__json_u64(j, v);
    else
        gw__json_null(j);
}

void gw__json_kv_double(gw_json *j, const char *key, bool ok, double v)
{
    gw__json_key(j, key);
    if (ok)
        gw__json_double(j, v);
    else
        gw__json_null(j);
}

void gw__json_kv_str(gw_json *j, const char *key, const char *s)
{
    gw__json_key(j, key);
    gw__json_string(j, s && *s ? s : NULL);
}

void gw__json_kv_timestamp(gw_json *j, const char *key, int64_t ns)
{
    char buf[48];
    time_t sec = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)((ns / 1000000) % 1000));
    gw__json_kv_str(j, key, buf);
}
