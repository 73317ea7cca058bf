/* daemon.h — `gpuwatch serve` as a whole: configuration, signals, the
 * monitor, the sampler and the HTTP server, from start to graceful stop.
 *
 * Signals: SIGTERM and SIGINT stop gracefully (stop listening, end streams,
 * stop sampling, close sources); SIGHUP reloads the configuration (file +
 * environment + the command-line overrides again) and applies what can
 * change live; SIGPIPE is blocked. They are blocked in every thread and
 * taken synchronously with sigwaitinfo() by the calling thread: no signal
 * handler, no global state.
 */
#ifndef GW_HTTP_DAEMON_H
#define GW_HTTP_DAEMON_H

#include "http/config.h"

typedef struct gw__serve_options {
    const char *config_path;  /* NULL: GW__SERVE_DEFAULT_CONFIG if it exists */
    const char *const *overrides; /* "key=value" strings applied last */
    size_t n_overrides;
    bool print_config;        /* print the resolved config and return */
} gw__serve_options;

/* Builds the configuration (defaults, file, environment, overrides).
 * GW_EINVAL/GW_ENOENT/GW_EIO with a message naming the input. */
int gw__serve_load_config(const gw__serve_options *opt, gw__serve_config *out, gw_error *err);

/* Runs the daemon until SIGTERM/SIGINT. Returns GW_OK after a graceful
 * stop, or an error (bad configuration, cannot listen) with err filled
 * before anything was started. Must be called before any other thread
 * exists (it sets the signal mask that threads inherit). */
int gw__serve_run(const gw__serve_options *opt, gw_error *err);

#endif
