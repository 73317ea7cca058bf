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
            "and Prometheus /metrics over HTTP (default http://127.0.0.1:9400).\n"
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

int gw_cmd_serve(int argc, char **argv)
{
    static const struct {
        const char *flag, *key;
    } shorthand[] = {
        {"--listen", "listen"},         {"--interval-ms", "interval_ms"},
        {"--token-file", "token_file"}, {"--metrics-compat", "metrics_compat"},
        {"--log-level", "log_level"},
        {"--basic-auth-file", "basic_auth_file"},
        {"--tls-cert-file", "tls_cert_file"},
        {"--tls-key-file", "tls_key_file"},
    };
    overrides o = {.n = 0};
    gw__serve_options opt = {0};
    gw_config src;
    gw_config_init(&src);
    int code = GW_EXIT_USAGE;
    for (int i = 1; i < argc;) {
        int r = gw_cli_source_option(argc, argv, &i, &src);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            serve_usage(stdout);
            code = GW_EXIT_OK;
            goto out;
        }
        if (strcmp(a, "--print-config") == 0) {
            opt.print_config = true;
            i++;
            continue;
        }
        if (strcmp(a, "--read-only") == 0) {
            if (add(&o, "read_only", "true") < 0)
                goto out;
            i++;
            continue;
        }
        bool takes = strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0 || strcmp(a, "--set") == 0;
        const char *key = NULL;
        for (size_t k = 0; k < GW__ARRAY_LEN(shorthand); k++)
            if (strcmp(a, shorthand[k].flag) == 0)
                key = shorthand[k].key;
        if (!takes && !key) {
            fprintf(stderr, "gpuwatch serve: unknown option '%s'\n", a);
            serve_usage(stderr);
            goto out;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gpuwatch serve: option %s needs a value\n", a);
            goto out;
        }
        const char *v = argv[i + 1];
        i += 2;
        if (key) {
            if (add(&o, key, v) < 0)
                goto out;
        } else if (strcmp(a, "--set") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "gpuwatch serve: --set needs KEY=VALUE, got '%s'\n", v);
                goto out;
            }
            if (o.n >= MAX_OVERRIDES || !(o.items[o.n] = strdup(v))) {
                fprintf(stderr, "gpuwatch serve: too many options\n");
                goto out;
            }
            o.n++;
        } else {
            opt.config_path = v;
        }
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
