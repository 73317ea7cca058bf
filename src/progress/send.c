/* send.c — delivering one progress record (send.h). */
#include "progress/send.h"
#include "place/daemon_client.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a report waits for the daemon: a job must not stall on it. */
#define SEND_TIMEOUT_MS 2000

int gw_progress_send_daemon(const char *url, const char *token, const gw_progress *rec,
                            gw_error *err)
{
    char base[512];
    gw__strlcpy(base, url, sizeof base);
    size_t bl = strlen(base), pl = strlen(GW_PROGRESS_PATH);
    if (bl > pl && strcmp(base + bl - pl, GW_PROGRESS_PATH) == 0)
        base[bl - pl] = '\0';
    gw_daemon_url u;
    if (gw_daemon_url_parse(base, &u, err) != GW_OK)
        return GW_EINVAL;
    gw_strbuf sb;
    gw__strbuf_init(&sb, GW_PROGRESS_MAX_JSON);
    gw_progress_to_json(rec, false, &sb);
    gw_daemon_response resp = {0};
    gw_error e;
    gw_error_clear(&e);
    int rc = sb.failed ? gw__error_set(&e, GW_ENOMEM, "out of memory")
                       : gw_daemon_request(&u, "POST", GW_PROGRESS_PATH, token, sb.data, sb.len,
                                           SEND_TIMEOUT_MS, &resp, &e);
    gw__strbuf_release(&sb);
    if (rc != GW_OK)
        return gw__error_set(err, GW_EIO, "daemon %s: %s", u.text, e.message);
    rc = GW_OK;
    if (resp.status != 200) {
        char msg[400];
        rc = gw__error_set(err, resp.status == 400 ? GW_EINVAL : GW_EIO,
                           "daemon %s: POST " GW_PROGRESS_PATH ": HTTP %d: %s", u.text,
                           resp.status, gw_daemon_error_message(&resp, msg, sizeof msg));
    }
    gw_daemon_response_release(&resp);
    return rc;
}

int gw_progress_send_dir(const char *dir, const char *root, const gw_progress *rec,
                         gw_error *err)
{
    gw_progress_dir d = {.path = dir};
    int rc = gw_progress_dir_prepare(dir, root, geteuid(), true, err);
    if (rc == GW_OK)
        rc = gw_progress_dir_write(&d, rec, gw__now_real_ns(), NULL, err);
    return rc;
}

int gw_progress_send_default_dir(const gw_progress *rec, gw_error *err)
{
    char dir[4096], root[4096];
    int rc = gw_progress_dir_default(getenv("GPUWATCH_PROGRESS_DIR"), getenv("XDG_RUNTIME_DIR"),
                                     geteuid(), dir, root, sizeof dir, err);
    return rc ? rc : gw_progress_send_dir(dir, root, rec, err);
}
