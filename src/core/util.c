/* util.c — see util.h. Stateless helpers; every function is reentrant. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int gw__error_set(gw_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gw__now_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t gw__now_real_ns(void) { return clock_ns(CLOCK_REALTIME); }

char *gw__strlcpy(char *dst, const char *src, size_t cap)
{
    if (cap == 0)
        return dst;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

char *gw__env_name(char *dst, size_t cap, const char *prefix, const char *key)
{
    gw__strlcpy(dst, prefix, cap);
    size_t n = strlen(dst);
    for (const char *p = key; *p && n + 1 < cap; p++)
        dst[n++] = (char)toupper((unsigned char)*p);
    if (cap)
        dst[n] = '\0';
    return dst;
}

long gw__read_at(int dirfd, const char *rel, char *buf, size_t cap)
{
    if (cap == 0)
        return -EINVAL;
    buf[0] = '\0';
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            buf[got] = '\0';
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (long)got;
}

long gw__read_file(const char *path, char *buf, size_t cap)
{
    return gw__read_at(AT_FDCWD, path, buf, cap);
}

int gw__read_token_file(const char *what, const char *path, char *buf, size_t cap,
                        gw_error *err)
{
    char line[1024]; /* more than any token: a longer first line is refused below */
    long n = gw__read_file(path, line, sizeof line);
    if (n < 0)
        return gw__error_set(err, GW_EIO, "%s %s: %s", what, path, strerror((int)-n));
    line[strcspn(line, "\r\n")] = '\0';
    size_t len = strlen(line);
    if (len == 0 || len >= cap)
        return gw__error_set(err, GW_EINVAL, "%s %s: first line must hold 1..%zu characters", what,
                             path, cap - 1);
    memcpy(buf, line, len + 1);
    return GW_OK;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

bool gw__parse_u64(const char *s, uint64_t *out)
{
    s = skip_space(s);
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        if (!gw__mul_u64(v, 10, &v) || !gw__add_u64(v, (uint64_t)(*s - '0'), &v))
            return false;
        s++;
    }
    if (*skip_space(s) != '\0')
        return false;
    *out = v;
    return true;
}

bool gw__parse_i64(const char *s, int64_t *out)
{
    s = skip_space(s);
    bool neg = *s == '-';
    if (neg || *s == '+')
        s++;
    uint64_t u;
    if (!gw__parse_u64(s, &u))
        return false;
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

/* ------------------------------------------------------------- strbuf */

void gw__strbuf_init(gw_strbuf *sb, size_t max)
{
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->max = max ? max : (size_t)64 << 20;
    sb->failed = false;
}

void gw__strbuf_release(gw_strbuf *sb)
{
    free(sb->data);
    gw__strbuf_init(sb, sb->max);
}

void gw__strbuf_reset(gw_strbuf *sb)
{
    sb->len = 0;
    sb->failed = false;
    if (sb->data)
        sb->data[0] = '\0';
}

static bool strbuf_reserve(gw_strbuf *sb, size_t extra)
{
    if (sb->failed)
        return false;
    size_t need;
    if (__builtin_add_overflow(sb->len, extra + 1, &need) || need > sb->max) {
        sb->failed = true;
        return false;
    }
    if (need <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need)
        cap = cap > sb->max / 2 ? sb->max : cap * 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = true;
        return false;
    }
    sb->data = p;
    sb->cap = cap;
    return true;
}

void gw__strbuf_append(gw_strbuf *sb, const char *s, size_t n)
{
    if (!strbuf_reserve(sb, n))
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void gw__strbuf_puts(gw_strbuf *sb, const char *s) { gw__strbuf_append(sb, s, strlen(s)); }

void gw__strbuf_putc(gw_strbuf *sb, char c)
{
    if (!strbuf_reserve(sb, 1))
        return;
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void gw__strbuf_printf(gw_strbuf *sb, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        gw__strbuf_append(sb, small, (size_t)n);
        return;
    }
    if (!strbuf_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

char *gw__strbuf_detach(gw_strbuf *sb, size_t *len)
{
    if (sb->failed) {
        gw__strbuf_release(sb);
        return NULL;
    }
    if (!sb->data && !strbuf_reserve(sb, 0))
        return NULL;
    if (sb->len == 0)
        sb->data[0] = '\0';
    char *p = sb->data;
    if (len)
        *len = sb->len;
    gw__strbuf_init(sb, sb->max);
    return p;
}
