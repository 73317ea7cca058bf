/* daemon.c — see daemon.h. */
#include "http/daemon.h"
#include "fleet/cluster_poller.h"
#include "models/poller.h"
#include "place/api.h"
#include "place/ledger.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

int gw__serve_load_config(const gw__serve_options *opt, gw__serve_config *out, gw_error *err)
{
    gw__serve_config c;
    gw__serve_config_default(&c);
    const char *path = opt->config_path;
    if (path || access(GW__SERVE_DEFAULT_CONFIG, F_OK) == 0) {
        int rc = gw__serve_config_load_file(&c, path ? path : GW__SERVE_DEFAULT_CONFIG, err);
        if (rc)
            return rc;
    }
    int rc = gw__serve_config_apply_env(&c, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < opt->n_overrides; i++) {
        const char *kv = opt->overrides[i];
        const char *eq = strchr(kv, '=');
        char key[64];
        if (!eq || (size_t)(eq - kv) >= sizeof key)
            return gw__error_set(err, GW_EINVAL, "'%s' is not key=value", kv);
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        rc = gw__serve_config_set(&c, key, eq + 1, err);
        if (rc)
            return rc;
    }
    rc = gw__serve_config_finish(&c, err);
    if (rc)
        return rc;
    *out = c;
    return GW_OK;
}

static void monitor_config(const gw__serve_config *c, gw_config *mc)
{
    gw_config_init(mc);
    mc->sources = c->sources[0] ? c->sources : NULL;
    mc->nvml_library = c->nvml_library[0] ? c->nvml_library : NULL;
    mc->proc_root = c->proc_root[0] ? c->proc_root : NULL;
    mc->sys_root = c->sys_root[0] ? c->sys_root : NULL;
    mc->processes = c->processes;
    mc->call_timeout_ms = c->call_timeout_ms;
}

/* Opens the placement API from the configuration. On failure logs why and
 * returns NULL with the reason in why[cap]: the monitor still serves, the
 * placement routes answer 503 with it. */
static gw_place_api *open_placement(const gw__serve_config *c, gw__log *log, char *why, size_t cap)
{
    char path[512];
    const char *ledger = c->ledger[0] ? c->ledger : gw_ledger_default_path(path, sizeof path);
    if (!ledger) {
        snprintf(why, cap, "no ledger path: set 'ledger' (or HOME / GPUWATCH_LEDGER)");
        gw__logf(log, GW__LOG_ERROR, "placement API disabled: %s", why);
        return NULL;
    }
    char dirs[sizeof c->model_dirs];
    gw__strlcpy(dirs, c->model_dirs, sizeof dirs);
    const char *list[64];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(dirs, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
        if (n == GW__ARRAY_LEN(list)) {
            snprintf(why, cap, "model_dirs: more than %zu directories", GW__ARRAY_LEN(list));
            gw__logf(log, GW__LOG_ERROR, "placement API disabled: %s", why);
            return NULL;
        }
        list[n++] = t;
    }
    gw_place_api_config pc = {.ledger_path = ledger,
                              .proc_root = c->proc_root[0] ? c->proc_root : NULL,
                              .model_dirs = list,
                              .n_model_dirs = n,
                              .default_policy = c->place_policy,
                              .default_margin = c->place_margin,
                              .withhold_notes = c->http.read_only};
    gw_place_api *a = NULL;
    gw_error err;
    if (gw_place_api_open(&a, &pc, &err) != GW_OK) {
        gw__strlcpy(why, err.message, cap);
        gw__logf(log, GW__LOG_ERROR, "placement API disabled: %s", why);
        return NULL;
    }
    gw__logf(log, GW__LOG_INFO, "placement API: ledger %s, policy %s, %zu model director%s", ledger,
             gw_place_policy_name(c->place_policy), n, n == 1 ? "y" : "ies");
    return a;
}

static void request_reload(void *ctx)
{
    (void)ctx;
    kill(getpid(), SIGHUP); /* process-directed: the sigwaitinfo() thread takes it */
}

static void reload(const gw__serve_options *opt, gw__serve_config *cur, gw__log *log,
                   gw__sampler *sampler, gw__server *srv)
{
    gw__serve_config next;
    gw_error err;
    if (gw__serve_load_config(opt, &next, &err) != GW_OK) {
        gw__logf(log, GW__LOG_ERROR, "reload failed, keeping the running configuration: %s",
                 err.message);
        return;
    }
    const char *restart[8];
    _Static_assert(GW__ARRAY_LEN(restart) >= 6, "room for every restart reason");
    size_t n = 0;
    if (strcmp(next.http.listen, cur->http.listen) != 0)
        restart[n++] = "listen";
    if (next.http.threads != cur->http.threads || next.http.max_connections != cur->http.max_connections ||
        next.http.max_connections_per_ip != cur->http.max_connections_per_ip ||
        next.http.connection_timeout_s != cur->http.connection_timeout_s ||
        next.http.max_request_bytes != cur->http.max_request_bytes)
        restart[n++] = "HTTP limits";
    if (next.sampler.history_seconds != cur->sampler.history_seconds)
        restart[n++] = "history_seconds";
    if (strcmp(next.sources, cur->sources) || strcmp(next.nvml_library, cur->nvml_library) ||
        strcmp(next.proc_root, cur->proc_root) || strcmp(next.sys_root, cur->sys_root) ||
        next.processes != cur->processes || next.call_timeout_ms != cur->call_timeout_ms)
        restart[n++] = "sources";
    if (strcmp(next.ledger, cur->ledger) || strcmp(next.model_dirs, cur->model_dirs) ||
        next.place_policy != cur->place_policy || next.place_margin != cur->place_margin)
        restart[n++] = "placement (ledger, model_dirs, placement_*)";
    if (next.http.read_only != cur->http.read_only)
        restart[n++] = "read_only";
    for (size_t i = 0; i < n; i++)
        gw__logf(log, GW__LOG_WARNING, "reload: %s changed; it takes effect after a restart",
                 restart[i]);
    gw__log_set_level(log, next.log_level);
    gw__sampler_reconfigure(sampler, &next.sampler);
    next.http.on_reload = cur->http.on_reload;
    next.http.read_only = cur->http.read_only; /* the server keeps its own anyway */
    gw__server_reconfigure(srv, &next.http);
    /* Keep what did not change live, so the next reload compares right. */
    gw__strlcpy(next.http.listen, cur->http.listen, sizeof next.http.listen);
    next.http.threads = cur->http.threads;
    next.http.max_connections = cur->http.max_connections;
    next.http.max_connections_per_ip = cur->http.max_connections_per_ip;
    next.http.connection_timeout_s = cur->http.connection_timeout_s;
    next.http.max_request_bytes = cur->http.max_request_bytes;
    next.sampler.history_seconds = cur->sampler.history_seconds;
    memcpy(next.sources, cur->sources, sizeof next.sources);
    memcpy(next.nvml_library, cur->nvml_library, sizeof next.nvml_library);
    memcpy(next.proc_root, cur->proc_root, sizeof next.proc_root);
    memcpy(next.sys_root, cur->sys_root, sizeof next.sys_root);
    next.processes = cur->processes;
    next.call_timeout_ms = cur->call_timeout_ms;
    memcpy(next.ledger, cur->ledger, sizeof next.ledger);
    memcpy(next.model_dirs, cur->model_dirs, sizeof next.model_dirs);
    next.place_policy = cur->place_policy;
    next.place_margin = cur->place_margin;
    memcpy(next.ollama, cur->ollama, sizeof next.ollama);
    memcpy(next.llama_servers, cur->llama_servers, sizeof next.llama_servers);
    next.model_servers_interval_ms = cur->model_servers_interval_ms;
    /* the cluster poller's keys need a restart too */
    memcpy(next.peers, cur->peers, sizeof next.peers);
    memcpy(next.ollama_nodes, cur->ollama_nodes, sizeof next.ollama_nodes);
    memcpy(next.peer_token_file, cur->peer_token_file, sizeof next.peer_token_file);
    memcpy(next.peer_token, cur->peer_token, sizeof next.peer_token);
    memcpy(next.peer_ca_file, cur->peer_ca_file, sizeof next.peer_ca_file);
    memcpy(next.prometheus_url, cur->prometheus_url, sizeof next.prometheus_url);
    memcpy(next.prometheus_job, cur->prometheus_job, sizeof next.prometheus_job);
    next.cluster_interval_ms = cur->cluster_interval_ms;
    next.peer_timeout_ms = cur->peer_timeout_ms;
    next.http.cluster = cur->http.cluster;
    next.sampler.annotate = cur->sampler.annotate;
    next.sampler.annotate_ctx = cur->sampler.annotate_ctx;
    next.http.models = cur->http.models;
    next.http.read_only = cur->http.read_only;
    next.http.place = cur->http.place;
    memcpy(next.http.place_error, cur->http.place_error, sizeof next.http.place_error);
    *cur = next;
    gw__logf(log, GW__LOG_NOTICE, "configuration reloaded (interval %u ms, log level %s)",
             cur->sampler.interval_ms, gw__log_level_name(cur->log_level));
}

/* The model-server poller (models/poller.h) unless
 * model_servers_interval_ms is 0; NULL then, or when it cannot start (a
 * warning says why: the daemon runs without model servers). */
static gw__models_poller *start_models(const gw__serve_config *c, gw__log *log)
{
    if (!c->model_servers_interval_ms)
        return NULL;
    gw__models_poller_config mc = {
        .ollama = c->ollama[0] ? c->ollama : NULL,
        .llama = c->llama_servers[0] ? c->llama_servers : NULL,
        .interval_ms = c->model_servers_interval_ms,
    };
    gw__models_poller *p;
    gw_error err;
    gw_error_clear(&err);
    if (gw__models_poller_start(&p, &mc, &err) != GW_OK) {
        gw__logf(log, GW__LOG_WARNING, "model servers: %s", err.message);
        return NULL;
    }
    return p;
}

/* The cluster poller (fleet/cluster_poller.h) when peers, ollama_nodes or
 * prometheus_url is set; NULL otherwise, or when it cannot start (libcurl
 * missing: a warning says why, the daemon runs without the cluster view). */
static gw__cluster_poller *start_cluster(const gw__serve_config *c, gw__log *log)
{
    if (!c->peers[0] && !c->ollama_nodes[0] && !c->prometheus_url[0])
        return NULL;
    gw__cluster_poller_config pc = {
        .cluster = {
            .peers = c->peers,
            .ollama_nodes = c->ollama_nodes,
            .token = c->peer_token[0] ? c->peer_token : NULL,
            .ca_file = c->peer_ca_file[0] ? c->peer_ca_file : NULL,
            .prometheus = c->prometheus_url[0] ? c->prometheus_url : NULL,
            .prometheus_job = c->prometheus_job,
            .timeout_ms = (int)c->peer_timeout_ms,
        },
        .interval_ms = c->cluster_interval_ms,
    };
    gw__cluster_poller *p;
    gw_error err;
    gw_error_clear(&err);
    if (gw__cluster_poller_start(&p, &pc, &err) != GW_OK) {
        gw__logf(log, GW__LOG_WARNING, "cluster view: %s", err.message);
        return NULL;
    }
    return p;
}

int gw__serve_run(const gw__serve_options *opt, gw_error *err)
{
    gw__serve_config cfg;
    int rc = gw__serve_load_config(opt, &cfg, err);
    if (rc)
        return rc;
    gw__log log;
    gw__log_init(&log, STDERR_FILENO, cfg.log_level);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    gw_config mc;
    monitor_config(&cfg, &mc);
    /* Process lists on a slower cadence: a second monitor reads them, the
     * first one runs without (see gw__sampler_start). */
    gw_monitor *mon, *pmon = NULL;
    bool split = cfg.processes && cfg.sampler.process_interval_ms > cfg.sampler.interval_ms;
    if (split) {
        rc = gw_monitor_open(&pmon, &mc, err);
        mc.processes = false;
    }
    if (rc == GW_OK)
        rc = gw_monitor_open(&mon, &mc, err);
    if (rc) {
        gw_monitor_close(pmon);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    cfg.http.on_reload = request_reload;
    gw_place_api *place = open_placement(&cfg, &log, cfg.http.place_error, sizeof cfg.http.place_error);
    cfg.http.place = place;
    gw__models_poller *models = start_models(&cfg, &log);
    cfg.http.models = models;
    cfg.sampler.annotate = models ? gw__models_poller_annotate : NULL;
    cfg.sampler.annotate_ctx = models;
    gw__cluster_poller *cluster = start_cluster(&cfg, &log);
    cfg.http.cluster = cluster;
    gw__server *srv;
    rc = gw__server_create(&srv, &cfg.http, &log, err);
    if (rc) {
        gw__cluster_poller_stop(cluster);
        gw__models_poller_stop(models);
        gw_place_api_close(place);
        gw_monitor_close(mon);
        gw_monitor_close(pmon);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    gw__sampler *sampler;
    rc = gw__sampler_start(&sampler, mon, pmon, &cfg.sampler, gw__server_publish, srv, &log, err);
    if (rc) {
        gw__server_free(srv);
        gw__cluster_poller_stop(cluster);
        gw__models_poller_stop(models);
        gw_place_api_close(place);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    gw__server_attach_sampler(srv, sampler);
    const char *colon = strrchr(cfg.http.listen, ':');
    gw__logf(&log, GW__LOG_NOTICE, "gpuwatch %s listening on %s://%.*s:%u (interval %u ms%s)",
             GW_VERSION_STRING, gw__server_tls(srv) ? "https" : "http",
             colon ? (int)(colon - cfg.http.listen) : 0, cfg.http.listen, gw__server_port(srv),
             cfg.sampler.interval_ms, cfg.http.read_only ? ", read-only" : "");

    for (;;) {
        siginfo_t info;
        /* Wake every second to stop daemons left by a TLS reload once
         * their connections are gone (gw__server_reap). */
        const struct timespec tick = {1, 0};
        int sig = sigtimedwait(&set, &info, &tick);
        if (sig < 0) {
            gw__server_reap(srv); /* EAGAIN: the tick; EINTR */
            continue;
        }
        if (sig == SIGHUP) {
            gw__logf(&log, GW__LOG_NOTICE, "SIGHUP: reloading configuration");
            reload(opt, &cfg, &log, sampler, srv);
            continue;
        }
        if (sig == SIGPIPE)
            continue;
        gw__logf(&log, GW__LOG_NOTICE, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    gw__server_stop(srv);
    gw__sampler_stop(sampler, 2000);
    gw__server_free(srv);
    gw__models_poller_stop(models); /* after the sampler: no annotate call left */
    gw__cluster_poller_stop(cluster);
    gw_place_api_close(place);
    gw__logf(&log, GW__LOG_NOTICE, "stopped");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return GW_OK;
}
