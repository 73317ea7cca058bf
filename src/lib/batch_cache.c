/* batch_cache.c — the batch-size finder's answers on disk.
 *
 * Owns: the file (default ~/.cache/gpuwatch/batch-sizes.json), its format
 * {"format":"gpuwatch-batch-sizes/1","entries":[{"key","device","dtype",
 * "batch","largest_ok","smallest_oom","hi","free_bytes","at"}]}, the lock file
 * beside it and the atomic replace.
 *
 * Invariants:
 *  1. The file is only ever replaced whole (write a temporary in the same
 *     folder, fsync, rename), under an exclusive flock of FILE.lock, after
 *     re-reading it under that lock: concurrent jobs lose no entry.
 *  2. A file that cannot be parsed as this format is never overwritten and
 *     never an error of the search: it becomes a note naming the file and
 *     the fault.
 *  3. At most MAX_ENTRIES entries; the oldest go first.
 */
#include "core/util.h"
#include "lib/batch.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT "gpuwatch-batch-sizes/1"
#define MAX_ENTRIES 1024

bool gw__batch_cache_path(const gw_batch_options *o, char *path, size_t cap, char *note,
                          size_t note_cap)
{
    const char *dir = getenv("GPUWATCH_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    int n;
    if (o->cache_path && *o->cache_path)
        n = snprintf(path, cap, "%s", o->cache_path);
    else if (dir && *dir)
        n = snprintf(path, cap, "%s/batch-sizes.json", dir);
    else if (xdg && *xdg == '/')
        n = snprintf(path, cap, "%s/gpuwatch/batch-sizes.json", xdg);
    else if (home && *home == '/')
        n = snprintf(path, cap, "%s/.cache/gpuwatch/batch-sizes.json", home);
    else {
        snprintf(note, note_cap, "no cache: neither GPUWATCH_CACHE_DIR, XDG_CACHE_HOME nor "
                                 "HOME is set");
        return false;
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(note, note_cap, "no cache: its path is too long");
        return false;
    }
    return true;
}

/* Reads and parses the file: 1 parsed (*root set), 0 no file, -1 not a
 * cache (note says why). */
static int load(const char *path, json_t **root, char *note, size_t note_cap)
{
    *root = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(note, note_cap, "cache %s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    const char *fmt = j ? json_string_value(json_object_get(j, "format")) : NULL;
    if (!j || !fmt || strcmp(fmt, FORMAT) != 0 || !json_is_array(json_object_get(j, "entries"))) {
        snprintf(note, note_cap, "cache %s is not a batch-size cache (%s): not used, not "
                                 "overwritten", path,
                 !j ? je.text : !fmt ? "no \"format\"" : strcmp(fmt, FORMAT) ? "another format"
                                                                  : "no \"entries\" list");
        json_decref(j);
        return -1;
    }
    *root = j;
    return 1;
}

static bool same(json_t *e, const char *key, const char *device, const char *dtype)
{
    const char *k = json_string_value(json_object_get(e, "key")),
               *d = json_string_value(json_object_get(e, "device")),
               *t = json_string_value(json_object_get(e, "dtype"));
    return k && d && t && !strcmp(k, key) && !strcmp(d, device) && !strcmp(t, dtype);
}

static bool u64_of(json_t *e, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(e, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

int gw__batch_cache_get(const char *path, const char *key, const char *device, const char *dtype,
                        gw__batch_entry *out, char *note, size_t note_cap)
{
    json_t *root;
    int rc = load(path, &root, note, note_cap);
    if (rc <= 0)
        return rc;
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(json_object_get(root, "entries"), i, e) {
        uint64_t at = 0;
        if (!same(e, key, device, dtype) || !u64_of(e, "batch", &out->batch) ||
            !u64_of(e, "largest_ok", &out->largest_ok) ||
            !u64_of(e, "smallest_oom", &out->smallest_oom) ||
            !u64_of(e, "free_bytes", &out->free_bytes) || !u64_of(e, "at", &at) ||
            !u64_of(e, "hi", &out->hi) ||
            out->batch == 0 || out->batch > out->largest_ok)
            continue;
        out->at_s = (int64_t)at;
        found = 1;
    }
    json_decref(root);
    return found;
}

/* mkdir -p of path's folder, mode 0700 for what it creates. */
static bool make_parent(const char *path)
{
    char dir[4096];
    gw__strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return true;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(dir, 0700) == 0 || errno == EEXIST;
}

static bool write_atomic(const char *path, json_t *root, char *note, size_t note_cap)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(note, note_cap, "cache %s not written: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    bool ok = json_dumpf(root, f, JSON_INDENT(1)) == 0 && fputc('\n', f) != EOF &&
              fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return true;
    e = errno ? errno : e;
    unlink(tmp);
    snprintf(note, note_cap, "cache %s not written: %s", path, strerror(e ? e : EIO));
    return false;
}

bool gw__batch_cache_put(const char *path, const char *key, const char *device, const char *dtype,
                         const gw__batch_entry *e, char *note, size_t note_cap)
{
    char lock_path[4200];
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    if (!make_parent(path)) {
        snprintf(note, note_cap, "cache %s not written: its folder: %s", path, strerror(errno));
        return false;
    }
    int lk = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk < 0 || flock(lk, LOCK_EX) != 0) {
        snprintf(note, note_cap, "cache %s not written: lock %s: %s", path, lock_path,
                 strerror(errno));
        if (lk >= 0)
            close(lk);
        return false;
    }
    json_t *root;
    bool ok = false;
    int rc = load(path, &root, note, note_cap);
    if (rc == 0) {
        root = json_pack("{s:s, s:[]}", "format", FORMAT, "entries");
        note[0] = '\0';
    }
    json_t *list = root ? json_object_get(root, "entries") : NULL;
    json_t *entry = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "key", key,
                              "device", device, "dtype", dtype, "batch", (json_int_t)e->batch,
                              "largest_ok", (json_int_t)e->largest_ok, "smallest_oom",
                              (json_int_t)e->smallest_oom, "hi", (json_int_t)e->hi,
                              "free_bytes", (json_int_t)e->free_bytes, "at",
                              (json_int_t)e->at_s);
    if (list && entry) {
        for (size_t i = json_array_size(list); i-- > 0;)
            if (same(json_array_get(list, i), key, device, dtype))
                json_array_remove(list, i);
        while (json_array_size(list) >= MAX_ENTRIES)
            json_array_remove(list, 0);
        ok = json_array_append(list, entry) == 0 && write_atomic(path, root, note, note_cap);
    } else if (rc >= 0) {
        snprintf(note, note_cap, "cache %s not written: out of memory", path);
    }
    json_decref(entry);
    json_decref(root);
    flock(lk, LOCK_UN);
    close(lk);
    return ok;
}
