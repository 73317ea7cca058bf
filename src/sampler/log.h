/* log.h — journal-friendly leveled logging to stderr for the daemon.
 *
 * Owns: one logger object (level, output fd, format). No global state: the
 * daemon creates one and hands a pointer to the sampler and the server.
 *
 * Format: when the log fd is the journal's stream (systemd's rule: the
 * fd's st_dev:st_ino equal $JOURNAL_STREAM, which a child inherits even
 * after its stderr was redirected elsewhere) every line starts with the
 * sd-daemon priority prefix "<N>" and carries no timestamp (the journal
 * adds one); otherwise "2026-01-02T03:04:05.678Z gpuwatch[PID]:
 * LEVEL: message". Each line is written with one write(2), so lines of
 * concurrent threads never interleave. Newlines inside a message are
 * replaced by spaces: one event, one line.
 *
 * A log reader that stops reading must never wedge the daemon (a thread
 * blocked in write(2) while holding a lock stalls everything behind it):
 * when the fd is a pipe or a socket it is made non-blocking, and a line
 * that does not fit is dropped and counted.
 */
#ifndef GW_SAMPLER_LOG_H
#define GW_SAMPLER_LOG_H

#include "core/util.h"

#include <stdatomic.h>

/* syslog priorities, so "<N>" prefixes are the numbers themselves. */
typedef enum gw__log_level {
    GW__LOG_ERROR = 3,
    GW__LOG_WARNING = 4,
    GW__LOG_NOTICE = 5,
    GW__LOG_INFO = 6,
    GW__LOG_DEBUG = 7,
} gw__log_level;

typedef struct gw__log {
    atomic_int level; /* lines above this priority number are dropped */
    int fd;           /* where lines go (2 = stderr) */
    bool journal;     /* "<N>" prefix instead of timestamp + level word */
    atomic_ulong dropped; /* lines lost because the reader was not reading */
} gw__log;

/* Initialises a logger writing to fd at level; journal format when
 * gw__log_journal_stream_is($JOURNAL_STREAM, fd); sets O_NONBLOCK on fd
 * when it is a pipe or a socket. Cannot fail. */
void gw__log_init(gw__log *log, int fd, gw__log_level level);

/* Whether value ("DEV:INO", decimal, as systemd sets $JOURNAL_STREAM) names
 * the file fd is open on (fstat's st_dev and st_ino). False for NULL,
 * malformed text, or another file. */
bool gw__log_journal_stream_is(const char *value, int fd);

/* Parses "error", "warning", "notice", "info", "debug"; false otherwise. */
bool gw__log_level_parse(const char *s, gw__log_level *out);

/* "error", ... ; static. */
const char *gw__log_level_name(gw__log_level level);

/* Changes the level; safe from any thread. */
void gw__log_set_level(gw__log *log, gw__log_level level);

/* Writes one line at level if enabled. log may be NULL (drops the line).
 * Never fails visibly: a failed write is ignored. */
void gw__logf(gw__log *log, gw__log_level level, const char *fmt, ...) GW__PRINTF(3, 4);

#endif
