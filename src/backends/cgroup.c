/* cgroup.c — see cgroup.h. */
#include "backends/cgroup.h"

#include "core/util.h"

#include <dirent.h>
#include <string.h>

/* Invariant 1: copies s[0..n) into dst[cap] when it fits and every byte is
 * allowed; false (dst untouched) otherwise. */
static bool copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '@' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool all_hex(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* seg[0..n) is PREFIX<hex>SUFFIX: the hex into the container id. */
static bool container_segment(gw_owner *o, const char *seg, size_t n, const char *prefix,
                              const char *runtime)
{
    size_t pl = strlen(prefix), sl = strlen(".scope");
    if (n <= pl + sl || strncmp(seg, prefix, pl) != 0 || memcmp(seg + n - sl, ".scope", sl) != 0)
        return false;
    if (!all_hex(seg + pl, n - pl - sl))
        return false;
    copy_field(o->container_id, sizeof o->container_id, seg + pl, n - pl - sl);
    gw__strlcpy(o->runtime, runtime, sizeof o->runtime);
    return true;
}

/* A pod UID from the systemd driver's "...pod<uid with _>.slice" or the
 * cgroupfs driver's "pod<uid>". */
static bool pod_segment(gw_owner *o, const char *seg, size_t n)
{
    const char *p = NULL;
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(seg + i, "pod", 3) == 0 && (i == 0 || seg[i - 1] == '-'))
            p = seg + i + 3;
    if (!p)
        return false;
    size_t len = (size_t)(seg + n - p);
    if (len > 6 && memcmp(seg + n - 6, ".slice", 6) == 0)
        len -= 6;
    char uid[sizeof o->pod_uid];
    if (!copy_field(uid, sizeof uid, p, len))
        return false;
    for (char *c = uid; *c; c++) {
        if (*c == '_')
            *c = '-';
        else if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == '-'))
            return false;
    }
    gw__strlcpy(o->pod_uid, uid, sizeof o->pod_uid);
    return true;
}

static bool starts(const char *seg, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n > pl && strncmp(seg, prefix, pl) == 0;
}

static bool ends(const char *seg, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    return n > sl && memcmp(seg + n - sl, suffix, sl) == 0;
}

/* Walks the path's segments (invariant 2 decides the kind after). */
static void walk(gw_owner *o, const char *path)
{
    bool kube = false, slurm = false, docker_dir = false;
    for (const char *s = path; *s;) {
        while (*s == '/')
            s++;
        size_t n = strcspn(s, "/");
        if (!n)
            break;
        if (n >= 8 && memcmp(s, "kubepods", 8) == 0)
            kube = true;
        if ((n == 5 && memcmp(s, "slurm", 5) == 0) || (n == 16 && memcmp(s, "slurmstepd.scope", 16) == 0))
            slurm = true;
        if (kube && !o->pod_uid[0] && pod_segment(o, s, n)) {
            /* the pod's slice; its containers come next */
        } else if (container_segment(o, s, n, "docker-", "docker") ||
                   container_segment(o, s, n, "cri-containerd-", "containerd") ||
                   container_segment(o, s, n, "crio-", "crio") ||
                   container_segment(o, s, n, "libpod-", "podman")) {
        } else if ((docker_dir || (kube && o->pod_uid[0])) && all_hex(s, n) && n >= 12) {
            copy_field(o->container_id, sizeof o->container_id, s, n);
            gw__strlcpy(o->runtime, docker_dir ? "docker" : "", sizeof o->runtime);
        } else if (slurm && starts(s, n, "job_")) {
            copy_field(o->slurm_job, sizeof o->slurm_job, s + 4, n - 4);
        } else if (slurm && starts(s, n, "step_")) {
            copy_field(o->slurm_step, sizeof o->slurm_step, s + 5, n - 5);
        } else if (!slurm && (ends(s, n, ".service") || ends(s, n, ".scope")) &&
                   !starts(s, n, "crio-conmon-")) {
            copy_field(o->unit, sizeof o->unit, s, n);
        }
        docker_dir = n == 6 && memcmp(s, "docker", 6) == 0;
        s += n;
    }
    o->kind = o->slurm_job[0]      ? GW_OWNER_SLURM
              : o->pod_uid[0]      ? GW_OWNER_KUBERNETES
              : o->container_id[0] ? GW_OWNER_CONTAINER
              : o->unit[0]         ? GW_OWNER_SYSTEMD
                                   : GW_OWNER_NONE;
}

bool gw__cgroup_owner_parse(const char *text, size_t len, gw_owner *o)
{
    memset(o, 0, sizeof *o);
    /* the v2 line "0::PATH", else v1's memory controller, else the first path */
    const char *best = NULL;
    size_t best_len = 0;
    int best_rank = 0;
    for (const char *line = text; line < text + len;) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        const char *c1 = memchr(line, ':', n);
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line + n - c1 - 1)) : NULL;
        if (c2 && c2 + 1 < line + n && c2[1] == '/') {
            size_t ctl_len = (size_t)(c2 - c1 - 1);
            bool v2 = c1 - line == 1 && line[0] == '0' && ctl_len == 0;
            bool memory = false;
            /* the controllers "cpu,memory" between the colons; the text
             * need not end with a NUL: every scan stops at c2 */
            for (const char *k = c1 + 1; k < c2;) {
                const char *e = k;
                while (e < c2 && *e != ',')
                    e++;
                memory |= e - k == 6 && memcmp(k, "memory", 6) == 0;
                k = e + 1;
            }
            int rank = v2 ? 3 : memory ? 2 : 1;
            if (rank > best_rank) {
                best = c2 + 1;
                best_len = (size_t)(line + n - best);
                best_rank = rank;
            }
        }
        line += n + 1;
    }
    if (!best)
        return false;
    char path[512];
    size_t n = best_len < sizeof path ? best_len : sizeof path - 1;
    memcpy(path, best, n);
    path[n] = '\0';
    if (strlen(path) != n) /* a NUL inside: not a path */
        return false;
    walk(o, path);
    return o->kind != GW_OWNER_NONE;
}

bool gw__cgroup_pod_name(const char *pods_dir, gw_owner *o)
{
    if (!pods_dir || !o->pod_uid[0])
        return false;
    DIR *d = opendir(pods_dir);
    if (!d)
        return false;
    size_t ul = strlen(o->pod_uid);
    bool found = false;
    for (struct dirent *de; !found && (de = readdir(d));) {
        const char *name = de->d_name;
        size_t n = strlen(name);
        /* NAMESPACE_NAME_UID: namespaces and pod names have no '_' */
        if (n <= ul + 2 || name[n - ul - 1] != '_' || strcmp(name + n - ul, o->pod_uid) != 0)
            continue;
        const char *sep = memchr(name, '_', n - ul - 1);
        if (!sep)
            continue;
        gw_owner t = *o;
        if (copy_field(t.pod_namespace, sizeof t.pod_namespace, name, (size_t)(sep - name)) &&
            copy_field(t.pod, sizeof t.pod, sep + 1, (size_t)(name + n - ul - 1 - sep - 1))) {
            *o = t;
            found = true;
        }
    }
    closedir(d);
    return found;
}
