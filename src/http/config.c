/* config.c — see config.h. */
#include "http/config.h"
#include "fleet/cluster.h"
#include "models/servers.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const gw__config_key gw__serve_config_keys[] = {
    {"listen", GW_DEFAULT_LISTEN,
     "HOST:PORT or [IPV6]:PORT to serve on. Beyond loopback: credentials or read_only."},
    {"token", "", "Bearer token for mutating endpoints (prefer token_file)."},
    {"token_file", "", "File whose first line is the bearer token."},
    {"basic_auth_file", "",
     "File of 'user:crypt-hash' lines (bcrypt, yescrypt, SHA-crypt) for HTTP basic auth; re-read "
     "on reload."},
    {"tls_cert_file", "", "PEM certificate (chain) to serve HTTPS with; needs tls_key_file; re-read "
     "on reload."},
    {"tls_key_file", "", "PEM private key (unencrypted) of tls_cert_file; re-read on reload."},
    {"read_only", "false",
     "Mutating routes answer 403 and process command lines are withheld; beyond loopback, reads "
     "then need no credentials (restart to change)."},
    {"interval_ms", "1000", "Sampling interval in milliseconds (10..3600000)."},
    {"deadline_ms", "2000",
     "A source's read running longer than this marks that source's GPUs stale (10..3600000)."},
    {"history_seconds", "3600", "How much history the in-memory rings keep (restart to change)."},
    {"process_interval_ms", "5000",
     "Per-process GPU use is read at most this often (0: every round); the list carries over."},
    {"memory_warn_ratio", "0.9", "Used/total VRAM ratio that raises a memory pressure warning."},
    {"memory_critical_ratio", "0.97", "Used/total VRAM ratio that raises a critical event."},
    {"memory_hysteresis_ratio", "0.05",
     "How far below a threshold the ratio must fall before the level drops."},
    {"thermal_hysteresis_celsius", "2",
     "How far below the slowdown temperature a GPU must cool before the event clears."},
    {"metrics_compat", "none",
     "Extra /metrics families: comma list of dcgm, nvidia_smi; or none."},
    {"metrics_processes", "false",
     "Per-process /metrics series (pid label) as well as the per-GPU ones (true/false)."},
    {"threads", "2", "HTTP worker threads (1..64; restart to change)."},
    {"max_connections", "512", "Concurrent HTTP connections (restart to change)."},
    {"max_connections_per_ip", "256", "Concurrent connections from one address; 0 no limit."},
    {"connection_timeout_s", "15", "Idle connection timeout in seconds (slow clients)."},
    {"max_request_bytes", "16384", "Largest request (line + headers) accepted (>= 2048)."},
    {"sse_max_clients", "32", "Concurrent /events streams."},
    {"progress_ttl_seconds", "600",
     "A job's progress record (POST /api/v1/progress) is dropped this long after its last "
     "report (1..604800)."},
    {"log_level", "info", "error, warning, notice, info or debug."},
    {"sources", "", "Comma list of sources to use (nvml, host, ...); empty: all."},
    {"nvml_library", "libnvidia-ml.so.1", "NVML library to load."},
    {"proc_root", "/proc", "procfs root."},
    {"sys_root", "/sys", "sysfs root."},
    {"processes", "true", "Read per-process GPU use (true/false)."},
    {"call_timeout_ms", "5000", "Deadline of one nvidia-smi / amd-smi / rocm-smi call."},
    {"ledger", "",
     "Reservations ledger (SQLite) of the placement API; empty: the path `gpuwatch run` uses."},
    {"model_dirs", "",
     "':'-separated directories a placement request may name GGUF files under; empty: none."},
    {"placement_policy", "best-fit", "Default placement policy: best-fit, spread, pack or list."},
    {"placement_margin", "0", "Bytes kept free per GPU unless a request says (e.g. 512MiB)."},
    {"ollama", "",
     "Ollama servers to ask for their loaded models (comma list of http://HOST:PORT); empty: "
     "http://127.0.0.1:11434, shown when it answers; none: none (restart to change)."},
    {"llama_servers", "",
     "llama.cpp servers to ask besides the llama-servers among the GPU processes (comma list "
     "of http://HOST:PORT); none: none at all (restart to change)."},
    {"model_servers_interval_ms", "5000",
     "How often the model servers are asked (0: never; else 100..3600000; restart to change)."},
    {"peers", "",
     "gpuwatch daemons of the cluster view (comma list of http(s)://HOST:PORT; GET "
     "/api/v1/cluster; restart to change)."},
    {"ollama_nodes", "", "Bare Ollama servers of the cluster view (comma list of URLs)."},
    {"peer_token_file", "", "File whose first line is the bearer token sent to every peer."},
    {"peer_ca_file", "", "CA bundle that signed the https:// peers' certificates."},
    {"prometheus_url", "",
     "Read the cluster view from this Prometheus server's query API instead of the peers."},
    {"prometheus_job", "gpuwatch", "The job label of the gpuwatch targets in Prometheus."},
    {"cluster_interval_ms", "5000", "How often the cluster view is polled (100..3600000)."},
    {"peer_timeout_ms", "2000", "Deadline of each peer (and Prometheus query), 10..600000."},
    {NULL, NULL, NULL},
};

void gw__serve_config_default(gw__serve_config *c)
{
    memset(c, 0, sizeof *c);
    gw__server_config_default(&c->http);
    gw__sampler_config_default(&c->sampler);
    c->log_level = GW__LOG_INFO;
    c->processes = true;
    c->model_servers_interval_ms = 5000;
    c->cluster_interval_ms = 5000;
    c->peer_timeout_ms = 2000;
    gw__strlcpy(c->prometheus_job, "gpuwatch", sizeof c->prometheus_job);
}

static bool parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t x;
    if (!gw__parse_u64(v, &x) || x < lo || x > hi)
        return false;
    *out = (unsigned)x;
    return true;
}

static bool parse_ratio(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d) || d < lo || d > hi)
        return false;
    *out = d;
    return true;
}

static bool parse_compat(const char *v, unsigned *out)
{
    unsigned f = GW__PROM_NATIVE;
    if (strcmp(v, "none") == 0 || !*v) {
        *out = f;
        return true;
    }
    char buf[128];
    gw__strlcpy(buf, v, sizeof buf);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (strcmp(t, "dcgm") == 0)
            f |= GW__PROM_DCGM;
        else if (strcmp(t, "nvidia_smi") == 0)
            f |= GW__PROM_NVSMI;
        else
            return false;
    }
    *out = f;
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

static bool set_str(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return false;
    gw__strlcpy(dst, v, cap);
    return true;
}

/* A cluster URL list key: empty, or URLs gw__cluster_check_urls accepts. */
static bool cluster_urls(const char *key, const char *v, char *dst, size_t cap)
{
    gw_error why;
    return (!v[0] || gw__cluster_check_urls(v, key, &why) == GW_OK) && set_str(dst, cap, v);
}

int gw__serve_config_set(gw__serve_config *c, const char *key, const char *v, gw_error *err)
{
    gw__serve_config t = *c;
    bool ok = true, known = true;
    const char *want = "";
    if (strcmp(key, "listen") == 0) {
        ok = set_str(t.http.listen, sizeof t.http.listen, v);
        want = "HOST:PORT";
    } else if (strcmp(key, "token") == 0) {
        ok = set_str(t.http.token, sizeof t.http.token, v);
        want = "at most 255 characters";
    } else if (strcmp(key, "token_file") == 0) {
        ok = set_str(t.token_file, sizeof t.token_file, v);
        want = "a path";
    } else if (strcmp(key, "interval_ms") == 0) {
        ok = parse_uint(v, 10, 3600000, &t.sampler.interval_ms);
        want = "an integer 10..3600000";
    } else if (strcmp(key, "deadline_ms") == 0) {
        ok = parse_uint(v, 10, 3600000, &t.sampler.deadline_ms);
        want = "an integer 10..3600000";
    } else if (strcmp(key, "history_seconds") == 0) {
        ok = parse_uint(v, 1, 7 * 86400, &t.sampler.history_seconds);
        want = "an integer 1..604800";
    } else if (strcmp(key, "process_interval_ms") == 0) {
        ok = parse_uint(v, 0, 86400000, &t.sampler.process_interval_ms);
        want = "an integer 0..86400000";
    } else if (strcmp(key, "memory_warn_ratio") == 0) {
        ok = parse_ratio(v, 0.01, 1, &t.sampler.thresholds.memory_warn);
        want = "a number 0.01..1";
    } else if (strcmp(key, "memory_critical_ratio") == 0) {
        ok = parse_ratio(v, 0.01, 1, &t.sampler.thresholds.memory_critical);
        want = "a number 0.01..1";
    } else if (strcmp(key, "memory_hysteresis_ratio") == 0) {
        ok = parse_ratio(v, 0, 0.5, &t.sampler.thresholds.memory_hysteresis);
        want = "a number 0..0.5";
    } else if (strcmp(key, "thermal_hysteresis_celsius") == 0) {
        ok = parse_ratio(v, 0, 50, &t.sampler.thresholds.thermal_hysteresis_celsius);
        want = "a number 0..50";
    } else if (strcmp(key, "metrics_compat") == 0) {
        ok = parse_compat(v, &t.http.families);
        want = "none, or a comma list of dcgm, nvidia_smi";
    } else if (strcmp(key, "metrics_processes") == 0) {
        ok = parse_bool(v, &t.http.metrics_processes);
        want = "true or false";
    } else if (strcmp(key, "threads") == 0) {
        ok = parse_uint(v, 1, 64, &t.http.threads);
        want = "an integer 1..64";
    } else if (strcmp(key, "max_connections") == 0) {
        ok = parse_uint(v, 1, 100000, &t.http.max_connections);
        want = "an integer 1..100000";
    } else if (strcmp(key, "max_connections_per_ip") == 0) {
        ok = parse_uint(v, 0, 100000, &t.http.max_connections_per_ip);
        want = "an integer 0..100000";
    } else if (strcmp(key, "connection_timeout_s") == 0) {
        ok = parse_uint(v, 1, 3600, &t.http.connection_timeout_s);
        want = "an integer 1..3600";
    } else if (strcmp(key, "max_request_bytes") == 0) {
        ok = parse_uint(v, 2048, 1u << 20, &t.http.max_request_bytes);
        want = "an integer 2048..1048576";
    } else if (strcmp(key, "sse_max_clients") == 0) {
        ok = parse_uint(v, 0, 10000, &t.http.sse_max_clients);
        want = "an integer 0..10000";
    } else if (strcmp(key, "progress_ttl_seconds") == 0) {
        ok = parse_uint(v, 1, 604800, &t.http.progress_ttl_s);
        want = "an integer 1..604800";
    } else if (strcmp(key, "log_level") == 0) {
        ok = gw__log_level_parse(v, &t.log_level);
        want = "error, warning, notice, info or debug";
    } else if (strcmp(key, "sources") == 0) {
        ok = set_str(t.sources, sizeof t.sources, v);
        want = "a comma list";
    } else if (strcmp(key, "nvml_library") == 0) {
        ok = set_str(t.nvml_library, sizeof t.nvml_library, v);
        want = "a path";
    } else if (strcmp(key, "proc_root") == 0) {
        ok = set_str(t.proc_root, sizeof t.proc_root, v);
        want = "a path";
    } else if (strcmp(key, "sys_root") == 0) {
        ok = set_str(t.sys_root, sizeof t.sys_root, v);
        want = "a path";
    } else if (strcmp(key, "call_timeout_ms") == 0) {
        ok = parse_uint(v, 1, 600000, &t.call_timeout_ms);
        want = "an integer 1..600000";
    } else if (strcmp(key, "ledger") == 0) {
        ok = set_str(t.ledger, sizeof t.ledger, v);
        want = "a path";
    } else if (strcmp(key, "model_dirs") == 0) {
        ok = set_str(t.model_dirs, sizeof t.model_dirs, v);
        want = "':'-separated directories (at most 2047 characters)";
    } else if (strcmp(key, "placement_policy") == 0) {
        ok = gw_place_policy_parse(v, &t.place_policy);
        want = "best-fit, spread, pack or list";
    } else if (strcmp(key, "placement_margin") == 0) {
        ok = gw_place_parse_size(v, &t.place_margin);
        want = "a size (bytes, or like 512MiB)";
    } else if (strcmp(key, "ollama") == 0 || strcmp(key, "llama_servers") == 0) {
        gw_error why;
        bool ollama = strcmp(key, "ollama") == 0;
        ok = (!v[0] || gw__server_list_check(v, &why) == GW_OK) &&
             set_str(ollama ? t.ollama : t.llama_servers, sizeof t.ollama, v);
        want = "none, or a comma list of http://HOST:PORT";
    } else if (strcmp(key, "model_servers_interval_ms") == 0) {
        ok = parse_uint(v, 0, 3600000, &t.model_servers_interval_ms) &&
             (t.model_servers_interval_ms == 0 || t.model_servers_interval_ms >= 100);
        want = "0, or an integer 100..3600000";
    } else if (strcmp(key, "peers") == 0) {
        ok = cluster_urls(key, v, t.peers, sizeof t.peers);
        want = "a comma list of http://HOST:PORT or https://HOST:PORT";
    } else if (strcmp(key, "ollama_nodes") == 0) {
        ok = cluster_urls(key, v, t.ollama_nodes, sizeof t.ollama_nodes);
        want = "a comma list of http://HOST:PORT or https://HOST:PORT";
    } else if (strcmp(key, "prometheus_url") == 0) {
        ok = !strchr(v, ',') && cluster_urls(key, v, t.prometheus_url, sizeof t.prometheus_url);
        want = "one http://HOST:PORT or https://HOST:PORT";
    } else if (strcmp(key, "peer_token_file") == 0) {
        ok = set_str(t.peer_token_file, sizeof t.peer_token_file, v);
        want = "a path";
    } else if (strcmp(key, "peer_ca_file") == 0) {
        ok = set_str(t.peer_ca_file, sizeof t.peer_ca_file, v);
        want = "a path";
    } else if (strcmp(key, "prometheus_job") == 0) {
        ok = v[0] && set_str(t.prometheus_job, sizeof t.prometheus_job, v);
        want = "a job name";
    } else if (strcmp(key, "cluster_interval_ms") == 0) {
        ok = parse_uint(v, 100, 3600000, &t.cluster_interval_ms);
        want = "an integer 100..3600000";
    } else if (strcmp(key, "peer_timeout_ms") == 0) {
        ok = parse_uint(v, 10, 600000, &t.peer_timeout_ms);
        want = "an integer 10..600000";
    } else if (strcmp(key, "basic_auth_file") == 0) {
        ok = set_str(t.http.basic_auth_file, sizeof t.http.basic_auth_file, v);
        want = "a path";
    } else if (strcmp(key, "tls_cert_file") == 0) {
        ok = set_str(t.http.tls_cert_file, sizeof t.http.tls_cert_file, v);
        want = "a path";
    } else if (strcmp(key, "tls_key_file") == 0) {
        ok = set_str(t.http.tls_key_file, sizeof t.http.tls_key_file, v);
        want = "a path";
    } else if (strcmp(key, "read_only") == 0) {
        ok = parse_bool(v, &t.http.read_only);
        want = "true or false";
    } else if (strcmp(key, "processes") == 0) {
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
            t.processes = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
            t.processes = false;
        else
            ok = false;
        want = "true or false";
    } else {
        known = false;
    }
    if (!known)
        return gw__error_set(err, GW_EINVAL, "unknown key '%s' (see gpuwatch.conf(5))", key);
    if (!ok)
        return gw__error_set(err, GW_EINVAL, "%s: '%s' is not valid; expected %s", key, v, want);
    *c = t;
    return GW_OK;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int gw__serve_config_load_file(gw__serve_config *c, const char *path, gw_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return gw__error_set(err, errno == ENOENT ? GW_ENOENT : GW_EIO, "%s: %s", path,
                             strerror(errno));
    char line[2048];
    unsigned no = 0;
    int rc = GW_OK;
    while (rc == GW_OK && fgets(line, sizeof line, f)) {
        no++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            rc = gw__error_set(err, GW_EINVAL, "%s:%u: line longer than %zu bytes", path, no,
                               sizeof line - 2);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = gw__error_set(err, GW_EINVAL, "%s:%u: expected 'key = value'", path, no);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        gw_error e;
        if (gw__serve_config_set(c, key, val, &e) != GW_OK)
            rc = gw__error_set(err, GW_EINVAL, "%s:%u: %s", path, no, e.message);
    }
    if (rc == GW_OK && ferror(f))
        rc = gw__error_set(err, GW_EIO, "%s: read error", path);
    fclose(f);
    return rc;
}

int gw__serve_config_apply_env(gw__serve_config *c, gw_error *err)
{
    for (const gw__config_key *k = gw__serve_config_keys; k->name; k++) {
        char var[96];
        const char *v = getenv(gw__env_name(var, sizeof var, "GPUWATCH_", k->name));
        if (!v)
            continue;
        gw_error e;
        if (gw__serve_config_set(c, k->name, v, &e) != GW_OK)
            return gw__error_set(err, GW_EINVAL, "environment %s: %s", var, e.message);
    }
    return GW_OK;
}

int gw__serve_config_finish(gw__serve_config *c, gw_error *err)
{
    int rc;
    if (c->token_file[0] && (rc = gw__read_token_file("token_file", c->token_file, c->http.token,
                                                      sizeof c->http.token, err)) != GW_OK)
        return rc;
    if (c->peer_token_file[0] &&
        (rc = gw__read_token_file("peer_token_file", c->peer_token_file, c->peer_token,
                                  sizeof c->peer_token, err)) != GW_OK)
        return rc;
    const gw__event_thresholds *t = &c->sampler.thresholds;
    if (t->memory_warn > t->memory_critical)
        return gw__error_set(err, GW_EINVAL, "memory_warn_ratio (%g) is above memory_critical_ratio (%g)",
                             t->memory_warn, t->memory_critical);
    if (t->memory_hysteresis >= t->memory_warn)
        return gw__error_set(err, GW_EINVAL,
                             "memory_hysteresis_ratio (%g) must be below memory_warn_ratio (%g)",
                             t->memory_hysteresis, t->memory_warn);
    if (!c->http.tls_cert_file[0] != !c->http.tls_key_file[0])
        return gw__error_set(err, GW_EINVAL, "TLS needs both tls_cert_file and tls_key_file (%s is unset)",
                             c->http.tls_cert_file[0] ? "tls_key_file" : "tls_cert_file");
    if (!gw__listen_is_loopback(c->http.listen) && !c->http.token[0] && !c->http.basic_auth_file[0] &&
        !c->http.read_only)
        return gw__error_set(err, GW_EINVAL,
                             "listen = %s is beyond loopback: set token / token_file or "
                             "basic_auth_file (every route then needs a credential), or read_only = "
                             "true (--read-only: reads open, mutating routes refused, command lines "
                             "withheld)",
                             c->http.listen);
    return GW_OK;
}

void gw__serve_config_print(FILE *out, const gw__serve_config *c)
{
    const char *compat = (c->http.families & GW__PROM_DCGM) && (c->http.families & GW__PROM_NVSMI)
                             ? "dcgm,nvidia_smi"
                         : c->http.families & GW__PROM_DCGM  ? "dcgm"
                         : c->http.families & GW__PROM_NVSMI ? "nvidia_smi"
                                                             : "none";
    fprintf(out, "listen = %s\n", c->http.listen);
    /* The token itself is never printed, and no placeholder a config file
     * would read back as the token (it printed "(set)", which loaded as the
     * token "(set)"): from token_file it comes back with that line; set
     * inline, the line is a comment saying this output does not carry it. */
    if (c->token_file[0])
        fprintf(out, "# token = (the first line of token_file)\n");
    else if (c->http.token[0])
        fprintf(out, "# token = (set, not printed: this output does not carry it; give it with "
                     "token_file, GPUWATCH_TOKEN or --set token=...)\n");
    else
        fprintf(out, "token = \n");
    fprintf(out, "token_file = %s\n", c->token_file);
    fprintf(out, "basic_auth_file = %s\n", c->http.basic_auth_file);
    fprintf(out, "tls_cert_file = %s\n", c->http.tls_cert_file);
    fprintf(out, "tls_key_file = %s\n", c->http.tls_key_file);
    fprintf(out, "read_only = %s\n", c->http.read_only ? "true" : "false");
    fprintf(out, "interval_ms = %u\n", c->sampler.interval_ms);
    fprintf(out, "deadline_ms = %u\n", c->sampler.deadline_ms);
    fprintf(out, "history_seconds = %u\n", c->sampler.history_seconds);
    fprintf(out, "process_interval_ms = %u\n", c->sampler.process_interval_ms);
    fprintf(out, "memory_warn_ratio = %g\n", c->sampler.thresholds.memory_warn);
    fprintf(out, "memory_critical_ratio = %g\n", c->sampler.thresholds.memory_critical);
    fprintf(out, "memory_hysteresis_ratio = %g\n", c->sampler.thresholds.memory_hysteresis);
    fprintf(out, "thermal_hysteresis_celsius = %g\n",
            c->sampler.thresholds.thermal_hysteresis_celsius);
    fprintf(out, "metrics_compat = %s\n", compat);
    fprintf(out, "metrics_processes = %s\n", c->http.metrics_processes ? "true" : "false");
    fprintf(out, "threads = %u\n", c->http.threads);
    fprintf(out, "max_connections = %u\n", c->http.max_connections);
    fprintf(out, "max_connections_per_ip = %u\n", c->http.max_connections_per_ip);
    fprintf(out, "connection_timeout_s = %u\n", c->http.connection_timeout_s);
    fprintf(out, "max_request_bytes = %u\n", c->http.max_request_bytes);
    fprintf(out, "sse_max_clients = %u\n", c->http.sse_max_clients);
    fprintf(out, "progress_ttl_seconds = %u\n", c->http.progress_ttl_s);
    fprintf(out, "log_level = %s\n", gw__log_level_name(c->log_level));
    fprintf(out, "sources = %s\n", c->sources);
    fprintf(out, "nvml_library = %s\n", c->nvml_library[0] ? c->nvml_library : "libnvidia-ml.so.1");
    fprintf(out, "proc_root = %s\n", c->proc_root[0] ? c->proc_root : "/proc");
    fprintf(out, "sys_root = %s\n", c->sys_root[0] ? c->sys_root : "/sys");
    fprintf(out, "processes = %s\n", c->processes ? "true" : "false");
    fprintf(out, "call_timeout_ms = %u\n", c->call_timeout_ms ? c->call_timeout_ms : 5000);
    fprintf(out, "ledger = %s\n", c->ledger);
    fprintf(out, "model_dirs = %s\n", c->model_dirs);
    fprintf(out, "placement_policy = %s\n", gw_place_policy_name(c->place_policy));
    fprintf(out, "placement_margin = %llu\n", (unsigned long long)c->place_margin);
    fprintf(out, "ollama = %s\n", c->ollama);
    fprintf(out, "llama_servers = %s\n", c->llama_servers);
    fprintf(out, "model_servers_interval_ms = %u\n", c->model_servers_interval_ms);
    fprintf(out, "peers = %s\n", c->peers);
    fprintf(out, "ollama_nodes = %s\n", c->ollama_nodes);
    fprintf(out, "peer_token_file = %s\n", c->peer_token_file);
    fprintf(out, "peer_ca_file = %s\n", c->peer_ca_file);
    fprintf(out, "prometheus_url = %s\n", c->prometheus_url);
    fprintf(out, "prometheus_job = %s\n", c->prometheus_job);
    fprintf(out, "cluster_interval_ms = %u\n", c->cluster_interval_ms);
    fprintf(out, "peer_timeout_ms = %u\n", c->peer_timeout_ms);
}
