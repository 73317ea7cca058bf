/* cmd_serve.c — `gpuwatch serve`: parses the command line into
 * configuration overrides and hands over to the daemon (src/http/daemon.c).
 * Every flag is a shorthand for `--set key=value`, so flags, the config file
 * and the environment share one set of keys (gpuwatch.conf(5)). */
#include "cli/cli.h"
#include "core/util.h"
#include "http/daemon.h"

#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 64

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch serve [OPTIONS]\n"
            "\n"
            "Runs the daemon: samples every GPU in the background and serves the JSON API\n"
            "and Prometheus /metrics over HTTP (default http://" GW_DEFAULT_LISTEN ").\n"
            "SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the configuration.\n"
            "\n"
            "Options:\n"
            "  -c, --config PATH     configuration file (default %s if it exists)\n"
            "  --listen HOST:PORT    address to serve on (key listen)\n"
            "  --interval-ms N       sampling interval (key interval_ms; default 1000)\n"
            "  --token-file PATH     bearer token file (key token_file)\n"
            "  --basic-auth-file PATH  'user:crypt-hash' lines for HTTP basic auth, e.g. from\n"
            "                        `htpasswd -nB USER` (key basic_auth_file)\n"
            "  --tls-cert-file PATH  PEM certificate: serve HTTPS (key tls_cert_file; with\n"
            "                        --tls-key-file; both re-read on SIGHUP)\n"
            "  --tls-key-file PATH   PEM private key, unencrypted (key tls_key_file)\n"
            "  --read-only           mutating routes answer 403, process command lines are\n"
            "                        withheld; reads beyond loopback need no credentials\n"
            "                        (key read_only)\n"
            "  --metrics-compat LIST extra /metrics families: dcgm,nvidia_smi (key metrics_compat)\n"
            "  --metrics-processes   per-process /metrics series too (key metrics_processes=true)\n"
            "  --log-level LEVEL     error, warning, notice, info, debug (key log_level)\n"
            "  --set KEY=VALUE       any configuration key (repeatable)\n"
            "  --print-config        print the resolved configuration and exit\n"
            "%s"
            "  -h, --help            this text\n"
            "\n"
            "Precedence: defaults < config file < GPUWATCH_<KEY> environment < options.\n"
            "Endpoints: /health /gpu/info /gpu/metrics[/ID] /gpu/processes /metrics\n"
            "           /api/v1/history /api/v1/events /events (SSE). See gpuwatch(1).\n"
            "\n"
            "Exit status: 0 stopped by a signal, 1 could not start, 2 usage.\n",
            GW__SERVE_DEFAULT_CONFIG, gw_cli_source_options_help);
}

typedef struct overrides {
    char *items[MAX_OVERRIDES];
    size_t n;
} overrides;

static int add(overrides *o, const char *key, const char *value)
{
    if (o->n >= MAX_OVERRIDES) {
        fprintf(stderr, "gpuwatch serve: too many options\n");
        return -1;
    }
    size_t len = strlen(key) + strlen(value) + 2;
    char *s = malloc(len);
    if (!s) {
        fprintf(stderr, "gpuwatch serve: out of memory\n");
        return -1;
    }
    snprintf(s, len, "%s=%s", key, value);
    o->items[o->n++] = s;
    return 0;
}

static void free_overrides(overrides *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->items[i]);
}

/* Every flag but --config / --set / --print-config is a shorthand for a
 * key; its id is GW_CLI_O_SHORTHAND + its index in this table. A shorthand
 * without a value (value NULL) sets its boolean key to true ("--read-only"). */
static const gw_cli_shorthand shorthand[] = {
    {"--listen", "HOST:PORT", "listen"},
    {"--interval-ms", "N", "interval_ms"},
    {"--token-file", "PATH", "token_file"},
    {"--metrics-compat", "LIST", "metrics_compat"},
    {"--metrics-processes", NULL, "metrics_processes"},
    {"--basic-auth-file", "PATH", "basic_auth_file"},
    {"--tls-cert-file", "PATH", "tls_cert_file"},
    {"--tls-key-file", "PATH", "tls_key_file"},
    {"--read-only", NULL, "read_only"},
    {"--log-level", "LEVEL", "log_level"},
};

/* The option table, built once from shorthand[] (single-threaded CLI). */
static const gw_opt *serve_opts(void)
{
    static gw_opt t[GW__ARRAY_LEN(shorthand) + 4];
    gw_cli_config_opts(t, shorthand, GW__ARRAY_LEN(shorthand));
    return t;
}

/* Parses argv into o, opt and src; returns 0, or GW_CLI_EXIT_OK /
 * GW_CLI_EXIT_USAGE (printed). */
static int parse_options(int argc, char **argv, overrides *o, gw__serve_options *opt,
                         gw_config *src)
{
    const gw_opt *const tables[] = {serve_opts(), gw_cli_source_opts, NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "serve", argc, argv, tables, serve_usage);
    for (;;) {
        int id = gw_cli_next(&p);
        if (id == GW_CLI_DONE)
            return 0;
        if (id < 0 && id != GW_CLI_ARG)
            return id;
        const char *v = p.scan.value;
        int r = gw_cli_source_apply(&p, id, src);
        if (r < 0)
            return r;
        if (r > 0)
            continue;
        if (id == GW_CLI_ARG) {
            fprintf(stderr, "gpuwatch serve: unexpected argument '%s' (see 'gpuwatch serve "
                            "--help')\n", v);
            return GW_CLI_EXIT_USAGE;
        } else if (id == GW_CLI_O_PRINT_CONFIG) {
            opt->print_config = true;
        } else if (id == GW_CLI_O_CONFIG) {
            opt->config_path = v;
        } else if (id == GW_CLI_O_SET) {
            if (gw_cli_check_set(&p, v))
                return GW_CLI_EXIT_USAGE;
            if (o->n >= MAX_OVERRIDES || !(o->items[o->n] = strdup(v))) {
                fprintf(stderr, "gpuwatch serve: too many options\n");
                return GW_CLI_EXIT_USAGE;
            }
            o->n++;
        } else if (add(o, shorthand[id - GW_CLI_O_SHORTHAND].key, v ? v : "true") < 0) {
            return GW_CLI_EXIT_USAGE;
        }
    }
}

int gw_cmd_serve(int argc, char **argv)
{
    overrides o = {.n = 0};
    gw__serve_options opt = {0};
    gw_config src;
    gw_config_init(&src);
    int code = GW_EXIT_USAGE;
    int s = parse_options(argc, argv, &o, &opt, &src);
    if (s) {
        code = s == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
        goto out;
    }
    if ((src.sources && add(&o, "sources", src.sources) < 0) ||
        (src.nvml_library && add(&o, "nvml_library", src.nvml_library) < 0) ||
        (src.proc_root && add(&o, "proc_root", src.proc_root) < 0) ||
        (src.sys_root && add(&o, "sys_root", src.sys_root) < 0) ||
        (!src.processes && add(&o, "processes", "false") < 0))
        goto out;
    char ms[16];
    snprintf(ms, sizeof ms, "%u", src.call_timeout_ms);
    if (src.call_timeout_ms && add(&o, "call_timeout_ms", ms) < 0)
        goto out;
    opt.overrides = (const char *const *)o.items;
    opt.n_overrides = o.n;

    gw_error err;
    gw_error_clear(&err);
    if (opt.print_config) {
        gw__serve_config cfg;
        if (gw__serve_load_config(&opt, &cfg, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch serve: %s\n", err.message);
            code = GW_EXIT_ERROR;
            goto out;
        }
        gw__serve_config_print(stdout, &cfg);
        code = GW_EXIT_OK;
        goto out;
    }
    if (gw__serve_run(&opt, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch serve: %s\n", err.message);
        code = GW_EXIT_ERROR;
        goto out;
    }
    code = GW_EXIT_OK;
out:
    free_overrides(&o);
    return code;
}
