/* progress_report.c — gw_progress_report: a job's progress from inside its
 * own process, by the same route rules as `gpuwatch progress` minus the
 * daemon probe (a report in a training loop must not wait for a probe).
 *
 * Owns: the choice of route: $GPUWATCH_PROGRESS, else $GPUWATCH_DAEMON,
 * else the per-user folder; the record itself is progress/progress.c's.
 */
#include "core/util.h"
#include "progress/send.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int gw_progress_report(const char *job, const char *gpu, uint64_t done, uint64_t total,
                       const char *unit, const char *message, gw_error *err)
{
    gw_progress rec;
    gw_error e;
    gw_error_clear(&e);
    if (!job || !gpu)
        return gw__error_set(err, GW_EINVAL, "progress: %s is NULL", job ? "gpu" : "job");
    int rc = gw_progress_fill(&rec, job, gpu, done, total, unit ? unit : "",
                              message ? message : "", (int32_t)getpid(), &e);
    if (rc != GW_OK)
        return gw__error_set(err, rc, "progress: %s", e.message);
    const char *route = getenv("GPUWATCH_PROGRESS"), *daemon = getenv("GPUWATCH_DAEMON"),
               *token = getenv("GPUWATCH_TOKEN");
    if (route && strncmp(route, "dir:", 4) == 0 && route[4])
        rc = gw_progress_send_dir(route + 4, route + 4, &rec, &e);
    else if (route && strncmp(route, "http://", 7) == 0)
        rc = gw_progress_send_daemon(route, token, &rec, &e);
    else if (route && *route)
        rc = gw__error_set(&e, GW_EINVAL, "GPUWATCH_PROGRESS='%s': expected http://HOST:PORT"
                           GW_PROGRESS_PATH " or dir:PATH", route);
    else if (daemon && *daemon)
        rc = gw_progress_send_daemon(daemon, token, &rec, &e);
    else
        rc = gw_progress_send_default_dir(&rec, &e);
    if (rc != GW_OK)
        return gw__error_set(err, rc == GW_EINVAL ? GW_EINVAL : GW_EIO, "progress: %s",
                             e.message);
    return GW_OK;
}
