/* progress_dir.h — STOPGAP reader of the no-daemon progress store, until
 * src/progress/ (helper "progress", issue 13) lands with its own store
 * reader and JSON codec; at merge `top` calls that instead and this file
 * and progress_dir.c are deleted.
 *
 * Owns: listing the store directory and decoding its records as the shared
 * decisions define them (one JSON object per file JOB@GPU.json: job, gpu,
 * done, total, unit, message, started, updated (Unix seconds, fractions),
 * start_done, pid).
 *
 * Invariants:
 *  1. Only reads: never creates, changes or removes a file (writers remove
 *     stale files).
 *  2. A record that is stale (updated more than ttl_s ago, or its pid gone),
 *     unreadable or malformed is skipped, never an error.
 *  3. At most GW__TOP_PROGRESS_MAX records, sorted by job then GPU.
 */
#ifndef GW_TOP_PROGRESS_DIR_H
#define GW_TOP_PROGRESS_DIR_H

#include "top/progress_iface.h"

#include <stdbool.h>
#include <stddef.h>

#define GW__TOP_PROGRESS_MAX 256

/* The store directory: $GPUWATCH_PROGRESS_DIR, else
 * $XDG_RUNTIME_DIR/gpuwatch/progress, else /tmp/gpuwatch-$UID/progress. */
void gw__top_progress_dir(char *out, size_t cap);

/* Reads the live records of dir into a malloc'd array (*out, caller frees;
 * NULL with *n 0 when there are none or out of memory). */
void gw__top_progress_read(const char *dir, int64_t now_ns, double ttl_s, gw_progress **out,
                           size_t *n);

#endif
