/* progress_dir.c — STOPGAP reader of the no-daemon progress store
 * (progress_dir.h); replaced by src/progress/'s store at merge. */
#include "top/progress_dir.h"

#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gw__top_progress_dir(char *out, size_t cap)
{
    const char *d = getenv("GPUWATCH_PROGRESS_DIR");
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (d && d[0])
        snprintf(out, cap, "%s", d);
    else if (x && x[0])
        snprintf(out, cap, "%s/gpuwatch/progress", x);
    else
        snprintf(out, cap, "/tmp/gpuwatch-%u/progress", (unsigned)getuid());
}

static bool get_str(json_t *o, const char *k, char *dst, size_t cap, bool required)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        dst[0] = '\0';
        return !required;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return false;
    gw__strlcpy(dst, json_string_value(v), cap);
    return required ? dst[0] != '\0' : true;
}

static bool get_u64(json_t *o, const char *k, uint64_t *dst)
{
    json_t *v = json_object_get(o, k);
    *dst = 0;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *dst = (uint64_t)json_integer_value(v);
    return true;
}

static bool get_time(json_t *o, const char *k, int64_t *dst)
{
    json_t *v = json_object_get(o, k);
    if (!v || !json_is_number(v))
        return false;
    double s = json_number_value(v);
    if (!isfinite(s) || s < 0 || s > 1e11)
        return false;
    *dst = (int64_t)llround(s * 1e9);
    return true;
}

/* Decodes one record file; false when unreadable or malformed. */
static bool decode(const char *path, gw_progress *p)
{
    json_error_t jerr;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return false;
    memset(p, 0, sizeof *p);
    uint64_t pid = 0;
    bool ok = json_is_object(o) && get_str(o, "job", p->job, sizeof p->job, true) &&
              get_str(o, "gpu", p->gpu, sizeof p->gpu, true) && get_u64(o, "done", &p->done) &&
              get_u64(o, "total", &p->total) && get_u64(o, "start_done", &p->start_done) &&
              get_str(o, "unit", p->unit, sizeof p->unit, false) &&
              get_str(o, "message", p->message, sizeof p->message, false) &&
              get_time(o, "started", &p->started_ns) && get_time(o, "updated", &p->updated_ns) &&
              get_u64(o, "pid", &pid) && pid <= INT32_MAX;
    p->pid = (int32_t)pid;
    json_decref(o);
    return ok;
}

static int cmp_progress(const void *a, const void *b)
{
    const gw_progress *x = a, *y = b;
    int c = strcmp(x->job, y->job);
    return c ? c : strcmp(x->gpu, y->gpu);
}

void gw__top_progress_read(const char *dir, int64_t now_ns, double ttl_s, gw_progress **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    gw_progress *v = NULL;
    size_t len = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && len < GW__TOP_PROGRESS_MAX;) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' || nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        char path[4096];
        gw_progress p;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!decode(path, &p))
            continue;
        if ((double)(now_ns - p.updated_ns) / 1e9 > ttl_s)
            continue; /* stale */
        if (p.pid > 0 && kill(p.pid, 0) != 0 && errno == ESRCH)
            continue; /* its reporter is gone */
        if (len % 16 == 0) {
            gw_progress *grown = realloc(v, (len + 16) * sizeof *v);
            if (!grown)
                break;
            v = grown;
        }
        v[len++] = p;
    }
    closedir(d);
    if (len)
        qsort(v, len, sizeof *v, cmp_progress);
    *out = v;
    *n = len;
    if (!len) {
        free(v);
        *out = NULL;
    }
}
