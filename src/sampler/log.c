/* log.c — see log.h. A line is formatted into a stack buffer (truncated at
 * 1 KiB) and written with a single write(2). */
#include "sampler/log.h"
#include "core/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const level_names[] = {
    [GW__LOG_ERROR] = "error", [GW__LOG_WARNING] = "warning", [GW__LOG_NOTICE] = "notice",
    [GW__LOG_INFO] = "info",   [GW__LOG_DEBUG] = "debug",
};

bool gw__log_journal_stream_is(const char *value, int fd)
{
    /* "DEV:INO", both decimal (systemd writes st_dev and st_ino so) */
    const char *colon = value ? strchr(value, ':') : NULL;
    char dev_s[24];
    if (!colon || (size_t)(colon - value) >= sizeof dev_s)
        return false;
    memcpy(dev_s, value, (size_t)(colon - value));
    dev_s[colon - value] = '\0';
    uint64_t dev, ino;
    gw_error why;
    struct stat st;
    return gw__parse_uint(dev_s, 0, UINT64_MAX, &dev, &why) == GW_OK &&
           gw__parse_uint(colon + 1, 0, UINT64_MAX, &ino, &why) == GW_OK &&
           fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

void gw__log_init(gw__log *log, int fd, gw__log_level level)
{
    atomic_init(&log->level, (int)level);
    log->fd = fd;
    log->journal = gw__log_journal_stream_is(getenv("JOURNAL_STREAM"), fd);
    atomic_init(&log->dropped, 0);
    struct stat st;
    if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
}

bool gw__log_level_parse(const char *s, gw__log_level *out)
{
    for (int l = GW__LOG_ERROR; l <= GW__LOG_DEBUG; l++)
        if (strcmp(s, level_names[l]) == 0) {
            *out = (gw__log_level)l;
            return true;
        }
    return false;
}

const char *gw__log_level_name(gw__log_level level)
{
    return level >= GW__LOG_ERROR && level <= GW__LOG_DEBUG ? level_names[level] : "unknown";
}

void gw__log_set_level(gw__log *log, gw__log_level level)
{
    atomic_store(&log->level, (int)level);
}

void gw__logf(gw__log *log, gw__log_level level, const char *fmt, ...)
{
    if (!log || (int)level > atomic_load(&log->level))
        return;
    char line[1024];
    size_t n = 0;
    if (log->journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", (int)level);
    } else {
        int64_t ns = gw__now_real_ns();
        time_t sec = (time_t)(ns / 1000000000);
        struct tm tm;
        gmtime_r(&sec, &tm);
        n = (size_t)snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ gpuwatch[%d]: %s: ",
                             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec, (int)((ns / 1000000) % 1000), (int)getpid(),
                             gw__log_level_name(level));
    }
    if (n >= sizeof line - 2)
        n = 0;
    size_t start = n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
    for (size_t i = start; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w;
    do
        w = write(log->fd, line, n);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        atomic_fetch_add(&log->dropped, 1);
}
