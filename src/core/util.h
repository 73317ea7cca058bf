/* util.h — small internal helpers shared by every module (gw__ tier).
 *
 * Owns: error-context filling, clocks, bounded string copy, overflow-checked
 * arithmetic, whole-file reads with a size cap, and the growable string
 * buffer. Nothing here keeps state.
 */
#ifndef GW_CORE_UTIL_H
#define GW_CORE_UTIL_H

#include "core/model.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GW__PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Sets err (when not NULL) to code and a formatted message; returns code. */
int gw__error_set(gw_error *err, int code, const char *fmt, ...) GW__PRINTF(3, 4);

/* CLOCK_MONOTONIC / CLOCK_REALTIME in nanoseconds. */
int64_t gw__now_mono_ns(void);
int64_t gw__now_real_ns(void);

/* Copies src into dst[cap], always NUL-terminated, truncating; returns dst. */
char *gw__strlcpy(char *dst, const char *src, size_t cap);

/* The environment variable of a configuration key: prefix then the key in
 * upper case ("GPUWATCH_POOL_" + "idle_ttl_s"), in dst[cap], truncated;
 * returns dst. */
char *gw__env_name(char *dst, size_t cap, const char *prefix, const char *key);

/* Overflow-checked multiply/add: return false (and leave *out alone) on overflow. */
static inline bool gw__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool gw__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* Reads at most cap-1 bytes of path into buf, always NUL-terminated (also on
 * failure). Returns the byte count, or a negative errno. gw__read_at reads
 * rel relative to the directory descriptor dirfd (AT_FDCWD: the cwd). */
long gw__read_file(const char *path, char *buf, size_t cap);

/* A bearer token: the first line of path (up to CR or LF) into buf[cap].
 * GW_EIO "WHAT PATH: <errno text>" when it cannot be read, GW_EINVAL "WHAT
 * PATH: first line must hold 1..cap-1 characters" when that line is empty
 * or longer (never truncated). what names the setting (token_file). */
int gw__read_token_file(const char *what, const char *path, char *buf, size_t cap,
                        gw_error *err);
long gw__read_at(int dirfd, const char *rel, char *buf, size_t cap);

/* A short label of an owner for tables: "pod:NAMESPACE/NAME" (or
 * "pod:UID8"), "docker:ID12", "slurm:JOB.STEP", the unit, "-" for none.
 * Into buf[cap]; returns buf. */
const char *gw__owner_short(const gw_owner *o, char *buf, size_t cap);

/* Parses one unsigned decimal integer (leading/trailing whitespace allowed).
 * Returns false for anything else, including overflow. */
bool gw__parse_u64(const char *s, uint64_t *out);
bool gw__parse_i64(const char *s, int64_t *out);

/* The clock-event (throttle) reasons, GW__CLOCK_EVENT_REASONS entries in bit
 * order: each GW_CLOCK_EVENT_* bit and its stable snake_case name (the JSON's
 * clock_event_reasons.active and /metrics' reason label; append only). */
typedef struct gw__clock_event_reason {
    uint64_t bit;
    const char *name;
} gw__clock_event_reason;
#define GW__CLOCK_EVENT_REASONS 8
extern const gw__clock_event_reason gw__clock_event_reasons[GW__CLOCK_EVENT_REASONS];

/* The inverse of gw_vendor_name ("nvidia", "amd", "intel") and of
 * gw_device_state_name: false (and *out unchanged) for any other text. */
bool gw__vendor_parse(const char *s, gw_vendor *out);
bool gw__device_state_parse(const char *s, gw_device_state *out);

/* Growable byte buffer with a hard maximum (curl DYNBUF idea).
 * Invariants: data is NUL-terminated whenever len > 0 or after any append;
 * len < cap; once an append fails (ENOMEM or over max) the buffer is marked
 * failed and every later append is a no-op, so callers check once at the end. */
typedef struct gw_strbuf {
    char *data;
    size_t len, cap, max;
    bool failed;
} gw_strbuf;

/* Initialises an empty buffer that may grow to max bytes (0: 64 MiB). */
void gw__strbuf_init(gw_strbuf *sb, size_t max);
/* Frees the storage and re-initialises it empty. */
void gw__strbuf_release(gw_strbuf *sb);
/* Drops the contents, keeps the storage. */
void gw__strbuf_reset(gw_strbuf *sb);
void gw__strbuf_append(gw_strbuf *sb, const char *s, size_t n);
void gw__strbuf_puts(gw_strbuf *sb, const char *s);
void gw__strbuf_putc(gw_strbuf *sb, char c);
void gw__strbuf_printf(gw_strbuf *sb, const char *fmt, ...) GW__PRINTF(2, 3);
/* Hands the heap string to the caller (who frees it) and empties sb.
 * Returns NULL when the buffer failed. */
char *gw__strbuf_detach(gw_strbuf *sb, size_t *len);

#endif
