/* progress.h — job progress records: what a job reports per GPU (done of
 * total, unit, message), its rate and ETA, the JSON form both the daemon's
 * POST /api/v1/progress and the no-daemon directory use, a bounded
 * in-memory table (the daemon's), and the per-user directory store that
 * works without a daemon. docs/progress.md is the protocol.
 *
 * Owns: the record type and its validation (gw_progress_check), rate/ETA,
 * the JSON codec, the merge rule that keeps a job's start across reports,
 * the table and the directory store (file names, atomic replace, ownership
 * checks, staleness). Depends on core only (and jansson for parsing).
 *
 * Invariants of a valid record (gw_progress_check; every function that
 * returns GW_OK with a record hands out a valid one):
 *  1. job matches [A-Za-z0-9._-]{1,63}; gpu matches [A-Za-z0-9._:/-]{1,95}
 *     (a UUID "GPU-...", "MIG-...", old MIG "MIG-GPU-.../1/0", or an index).
 *  2. unit (< 16 bytes) and message (< 128 bytes) are valid UTF-8 without
 *     control bytes (< 0x20, 0x7f); both may be empty.
 *  3. total == 0 (unknown) or done <= total; done, total <= INT64_MAX
 *     (JSON integers).
 *  4. 0 <= started_ns <= updated_ns <= GW_PROGRESS_MAX_TIME_NS, pid >= 0,
 *     start_done <= done.
 *
 * Time: CLOCK_REALTIME nanoseconds. In JSON, "started" and "updated" are
 * Unix seconds with a 6-digit fraction: the codec keeps microseconds (a
 * record survives to_json -> from_json unchanged once its times are whole
 * microseconds, which gw_progress_stamp makes them).
 *
 * Errors: negative codes from GW_ERROR_LIST with a message in the caller's
 * gw_error naming the field or file and what was wrong. No global state;
 * the table is not locked (its owner locks it).
 */
#ifndef GW_PROGRESS_PROGRESS_H
#define GW_PROGRESS_PROGRESS_H

#include "core/model.h"
#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ record */

typedef struct gw_progress {
    char job[64];        /* job id: [A-Za-z0-9._-]{1,63} */
    char gpu[96];        /* GPU UUID ("GPU-...", "MIG-...") or index text ("0") */
    uint64_t done, total;/* total 0: unknown */
    char unit[16];       /* "", "steps", "samples", "tokens", ... */
    char message[128];   /* free text, UTF-8, control bytes refused */
    int64_t started_ns;  /* CLOCK_REALTIME ns of the job's first report for this GPU */
    uint64_t start_done; /* done at started_ns */
    int64_t updated_ns;  /* CLOCK_REALTIME ns of the last report */
    int32_t pid;         /* reporter's pid, 0 unknown */
} gw_progress;

/* Seconds of silence after which a record is stale, by default. */
#define GW_PROGRESS_DEFAULT_TTL_S 600
/* The most records the daemon's table and a directory listing hold. */
#define GW_PROGRESS_MAX_RECORDS 4096
/* The longest JSON text of one record the parser accepts. */
#define GW_PROGRESS_MAX_JSON 4096
/* Times past this (2096-10-01, so microseconds stay exact in a double) are
 * refused. */
#define GW_PROGRESS_MAX_TIME_NS (4000000000LL * 1000000000LL)

/* Invariants 1-4; cheap, for assert(). */
bool gw_progress_check(const gw_progress *p);

/* Whether s is a valid job id / gpu text (invariant 1). */
bool gw_progress_job_valid(const char *s);
bool gw_progress_gpu_valid(const char *s);

/* Whether s (NUL-terminated) is valid UTF-8 without control bytes
 * (invariant 2's text rule). */
bool gw_progress_text_valid(const char *s);

/* Checks p against invariants 1-4; GW_EINVAL naming the first field that
 * breaks one ("job 'a b': only letters, digits, '.', '_' and '-'"). p is
 * not changed. */
int gw_progress_validate(const gw_progress *p, gw_error *err);

/* Fills a record for a report: copies job, gpu, unit (NULL: ""), message
 * (NULL: "") and done/total, sets pid; the times and start_done are left 0
 * (gw_progress_stamp sets them). GW_EINVAL naming the field when a string
 * is too long or invalid, or done > total > 0; *out is then zeroed. */
int gw_progress_fill(gw_progress *out, const char *job, const char *gpu, uint64_t done,
                     uint64_t total, const char *unit, const char *message, int32_t pid,
                     gw_error *err);

/* rate in units/s from (start_done, started_ns) to (done, updated_ns); <0 unknown */
double gw_progress_rate(const gw_progress *p);
/* seconds left at that rate; <0 unknown (total unknown, or no rate yet); 0 when done */
double gw_progress_eta(const gw_progress *p);

/* Stamps next as received at now_ns (rounded down to a microsecond):
 * updated_ns = now; the start (started_ns, start_done) is prev's when prev
 * is the same job and GPU and next did not go backwards (next->done >=
 * prev->start_done), else this report starts the job (started = now,
 * start_done = done). A continuing report that leaves unit empty or total
 * 0 keeps prev's (when done still fits in it): `gpuwatch progress 40` after
 * `gpuwatch progress --unit steps 0/100` is 40/100 steps. prev may be NULL. */
void gw_progress_stamp(gw_progress *next, const gw_progress *prev, int64_t now_ns);

/* Whether p is stale at now_ns: updated more than ttl_ns ago (or in the
 * future by more than ttl_ns: a clock that jumped). */
bool gw_progress_expired(const gw_progress *p, int64_t now_ns, int64_t ttl_ns);

/* -------------------------------------------------------------------- JSON */

/* Parses one JSON object text[0..len) into *out: "job", "gpu" and "done"
 * required; "total", "unit", "message", "pid", "start_done", "started",
 * "updated" optional (absent: 0 / ""); any other key, a wrong type, a
 * duplicate key, a negative or fractional count, or a record that fails
 * gw_progress_validate is GW_EINVAL naming it; text that is not one JSON
 * object is GW_EPARSE with jansson's line/column; over GW_PROGRESS_MAX_JSON
 * bytes GW_ERANGE. Extra members "rate" and "eta_seconds" (what
 * gw_progress_to_json adds) are accepted and ignored. *out is zeroed on
 * failure. Never reads outside text. */
int gw_progress_from_json(const char *text, size_t len, gw_progress *out, gw_error *err);

/* Parses the daemon's GET /api/v1/progress answer {"progress": [records]}
 * (what `top --connect` reads) into a new array *out (caller frees; NULL
 * when empty) and *n, each record as gw_progress_from_json would (rate and
 * eta_seconds ignored). Errors: GW_EPARSE (not JSON, no "progress" array),
 * GW_EINVAL naming the index of a bad record, GW_ERANGE over
 * GW_PROGRESS_MAX_RECORDS, GW_ENOMEM; nothing is returned then. */
int gw_progress_list_from_json(const char *text, size_t len, gw_progress **out, size_t *n,
                               gw_error *err);

/* Appends p as one JSON object (every field; "rate" and "eta_seconds" as
 * extra read-only members, null when unknown, when with_derived) to sb.
 * Check sb->failed. p must be valid. */
void gw_progress_to_json(const gw_progress *p, bool with_derived, gw_strbuf *sb);

/* ------------------------------------------------------------------- table */

/* A bounded set of records keyed by (job, gpu), for the daemon. Zero
 * initialise, set max (0: GW_PROGRESS_MAX_RECORDS), release with
 * gw_progress_table_release. Not thread-safe: the owner locks. */
typedef struct gw_progress_table {
    gw_progress *items;
    size_t n, cap, max;
} gw_progress_table;

/* Stamps p against the record it replaces (gw_progress_stamp) and stores it.
 * When the table is full, expired records (ttl_ns at now_ns) are dropped
 * first; still full: GW_ERANGE naming the limit, table unchanged. p must be
 * valid (GW_EINVAL otherwise). On GW_OK *stored (may be NULL) is a copy of
 * the stored record. */
int gw_progress_table_put(gw_progress_table *t, const gw_progress *p, int64_t now_ns,
                          int64_t ttl_ns, gw_progress *stored, gw_error *err);

/* Drops records expired at now_ns; returns how many. */
size_t gw_progress_table_expire(gw_progress_table *t, int64_t now_ns, int64_t ttl_ns);

/* Copies the live records, sorted by (job, gpu), into a new array *out
 * (caller frees; NULL when none) and *n. GW_ENOMEM (nothing returned). */
int gw_progress_table_list(const gw_progress_table *t, int64_t now_ns, int64_t ttl_ns,
                           gw_progress **out, size_t *n, gw_error *err);

/* Frees the storage; the table is empty (max kept). */
void gw_progress_table_release(gw_progress_table *t);

/* --------------------------------------------------------- directory store */

/* The directory without a daemon: env_dir ($GPUWATCH_PROGRESS_DIR) when set
 * and non-empty, else xdg ($XDG_RUNTIME_DIR)/gpuwatch/progress, else
 * /tmp/gpuwatch-UID/progress. *root is the first folder of it that gpuwatch
 * owns (env_dir itself; XDG/gpuwatch; /tmp/gpuwatch-UID): it and everything
 * below must belong to the user. GW_ERANGE when a path is over cap. */
int gw_progress_dir_default(const char *env_dir, const char *xdg, uid_t uid, char *dir,
                            char *root, size_t cap, gw_error *err);

/* Makes sure dir exists (when create: every missing folder from root down
 * is made 0700) and that root and every folder between it and dir is a
 * directory (not a symlink) owned by uid with no group/other write access.
 * GW_EPERM naming the folder and what is wrong with it; GW_ENOENT when
 * missing and !create; GW_EIO for other system errors. */
int gw_progress_dir_prepare(const char *dir, const char *root, uid_t uid, bool create,
                            gw_error *err);

/* How a record's reporter is judged gone (pid staleness). NULL: kill(pid,0)
 * answering ESRCH. A test seam, never global. */
typedef bool (*gw_progress_pid_gone_fn)(int32_t pid, void *cls);

typedef struct gw_progress_dir {
    const char *path;               /* the folder (prepared) */
    int64_t ttl_ns;                 /* 0: GW_PROGRESS_DEFAULT_TTL_S */
    gw_progress_pid_gone_fn pid_gone; /* NULL: kill(pid, 0) == ESRCH */
    void *pid_cls;
} gw_progress_dir;

/* File name of (job, gpu): "JOB@GPU.json" with '/' of the gpu written '+'
 * (no valid gpu has a '+', so names never collide). GW_EINVAL when job or
 * gpu is invalid. */
int gw_progress_file_name(const char *job, const char *gpu, char *buf, size_t cap,
                          gw_error *err);

/* Writes p (validated) as its file, stamped at now_ns against the file it
 * replaces (when that one is valid and not stale): a temporary file in the
 * folder, then rename(2), so a reader sees the old or the new record, never
 * a mix. Then removes stale records and abandoned temporary files. *stored
 * (may be NULL): the record written. Errors: GW_EINVAL (p), GW_EIO naming
 * the file and the system error; on failure the old file is untouched. */
int gw_progress_dir_write(const gw_progress_dir *d, const gw_progress *p, int64_t now_ns,
                          gw_progress *stored, gw_error *err);

/* Removes stale records (expired, or pid gone) and temporary files older
 * than the TTL; returns how many files went. Unreadable entries are left. */
size_t gw_progress_dir_sweep(const gw_progress_dir *d, int64_t now_ns);

/* The live records of the folder (files "*.json" that parse, are valid and
 * are not stale; others are skipped, never removed: readers do not write),
 * sorted by (job, gpu), at most GW_PROGRESS_MAX_RECORDS. *out: new array
 * (caller frees; NULL when none). A missing folder is GW_OK with none.
 * Errors: GW_EIO (cannot list), GW_ENOMEM. */
int gw_progress_dir_list(const gw_progress_dir *d, int64_t now_ns, gw_progress **out, size_t *n,
                         gw_error *err);

/* Orders records by (job, gpu) for qsort. */
int gw_progress_cmp(const void *a, const void *b);

#endif
