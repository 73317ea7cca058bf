/* send.h — delivering one progress record: to a daemon over HTTP or into
 * a progress folder. One code for `gpuwatch progress` and the library's
 * gw_progress_report.
 *
 * Owns: the POST of /api/v1/progress and the folder write with its
 * ownership checks; nothing is printed (errors name the daemon or folder).
 */
#ifndef GW_PROGRESS_SEND_H
#define GW_PROGRESS_SEND_H

#include "progress/progress.h"

#define GW_PROGRESS_PATH "/api/v1/progress"

/* POSTs rec to the daemon at url ("http://HOST:PORT"; an optional
 * "/api/v1/progress" at its end is the route itself). GW_OK when it
 * answered 200; GW_EINVAL for a bad URL or a 400 answer, GW_EIO for any
 * other failure, with the daemon and reason in err. */
int gw_progress_send_daemon(const char *url, const char *token, const gw_progress *rec,
                            gw_error *err);

/* Writes rec into the folder dir (root: the first folder that must be the
 * user's; see gw_progress_dir_prepare), creating it. */
int gw_progress_send_dir(const char *dir, const char *root, const gw_progress *rec,
                         gw_error *err);

/* Into the default per-user folder ($GPUWATCH_PROGRESS_DIR, else
 * $XDG_RUNTIME_DIR/gpuwatch/progress, ...). */
int gw_progress_send_default_dir(const gw_progress *rec, gw_error *err);

#endif
