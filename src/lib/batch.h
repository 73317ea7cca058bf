/* batch.h — the batch-size finder's cache on disk (batch_cache.c), shared
 * with the search (batch.c). gw__ tier: not installed.
 *
 * Owns: nothing beyond the entry type; batch_cache.c owns the file.
 */
#ifndef GW_LIB_BATCH_H
#define GW_LIB_BATCH_H

#include "core/model.h"

#include <stdint.h>

/* One cached answer: what was found for (key, device, dtype). */
typedef struct gw__batch_entry {
    uint64_t batch, largest_ok, smallest_oom;
    uint64_t hi;         /* the top of the range searched (no OOM: the search's cap) */
    uint64_t free_bytes; /* free device memory before the search; 0 unknown */
    int64_t at_s;        /* Unix time it was found */
} gw__batch_entry;

/* The cache file for o (cache_path, else $GPUWATCH_CACHE_DIR, else
 * $XDG_CACHE_HOME/gpuwatch, else $HOME/.cache/gpuwatch, + "/batch-sizes.json")
 * into path[cap]. false when no folder can be named (note says why). */
bool gw__batch_cache_path(const gw_batch_options *o, char *path, size_t cap, char *note,
                          size_t note_cap);

/* Looks (key, device, dtype) up in the file at path. 1 found (*out set),
 * 0 not there (or no file), -1 the file is unreadable or not a cache
 * (note names the file and the fault). */
int gw__batch_cache_get(const char *path, const char *key, const char *device, const char *dtype,
                        gw__batch_entry *out, char *note, size_t note_cap);

/* Stores e for (key, device, dtype), replacing an older entry, under a lock
 * file and by atomic rename, creating the folder (0700). A file that is not
 * a cache is left as it is. false with a note on any failure. */
bool gw__batch_cache_put(const char *path, const char *key, const char *device, const char *dtype,
                         const gw__batch_entry *e, char *note, size_t note_cap);

#endif
