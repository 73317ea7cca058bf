/* cluster_opts.c — see cluster_opts.h. */
#include "cli/cluster_opts.h"
#include "core/util.h"
#include "fleet/curl_lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    CL_CLUSTER = GW_CLI_ID_CLUSTER, CL_PEERS, CL_OLLAMA_NODES, CL_TOKEN_FILE, CL_CA,
    CL_PROMETHEUS, CL_PROMETHEUS_JOB, CL_TIMEOUT, CL_WAIT,
};

const gw_opt gw_cli_cluster_opts[] = {
    {"--cluster", NULL, NULL, CL_CLUSTER},
    {"--peers", NULL, "URL[,URL]", CL_PEERS},
    {"--ollama-nodes", NULL, "URL[,URL]", CL_OLLAMA_NODES},
    {"--peer-token-file", NULL, "FILE", CL_TOKEN_FILE},
    {"--peer-ca", NULL, "FILE", CL_CA},
    {"--prometheus", NULL, "URL", CL_PROMETHEUS},
    {"--prometheus-job", NULL, "JOB", CL_PROMETHEUS_JOB},
    {"--peer-timeout", NULL, "MS", CL_TIMEOUT},
    {"--wait", NULL, NULL, CL_WAIT},
    {NULL, NULL, NULL, 0},
};

const char gw_cli_cluster_options_help[] =
    "Cluster (with --cluster):\n"
    "  --cluster             every node instead of this host (docs/cluster.md)\n"
    "  --peers URL[,URL]     gpuwatch daemons to ask (GET /health), http:// or\n"
    "                        https://HOST:PORT (default $GPUWATCH_PEERS)\n"
    "  --ollama-nodes URL[,URL]\n"
    "                        bare Ollama servers to ask (GET /api/ps)\n"
    "  --peer-token-file FILE\n"
    "                        first line: the bearer token sent to every peer\n"
    "                        (default $GPUWATCH_PEER_TOKEN)\n"
    "  --peer-ca FILE        CA bundle that signed the https:// peers' certificates\n"
    "  --prometheus URL      read every node's gpuwatch series from this\n"
    "                        Prometheus server instead of asking the nodes\n"
    "  --prometheus-job JOB  the job label of the gpuwatch targets (default gpuwatch)\n"
    "  --peer-timeout MS     deadline of each peer (default 2000)\n"
    "  --wait                wait for every peer up to its deadline (default: a peer\n"
    "                        still silent at twice the slowest answer + 2 ms is\n"
    "                        shown unreachable)\n";

void gw_cli_cluster_init(gw_cli_cluster *c)
{
    memset(c, 0, sizeof *c);
    c->cfg.timeout_ms = 2000;
    c->cfg.straggler_cut = true;
}

static int check_list(const gw_cli_parse *p, const char *what)
{
    gw_error why;
    gw_error_clear(&why);
    if (gw__cluster_check_urls(p->scan.value, what, &why) != GW_OK)
        return gw_cli_bad_value(p, &why);
    return 1;
}

int gw_cli_cluster_apply(const gw_cli_parse *p, int id, gw_cli_cluster *c)
{
    const char *v = p->scan.value;
    switch (id) {
    case CL_CLUSTER: c->on = true; return 1;
    case CL_WAIT: c->cfg.straggler_cut = false; return 1;
    case CL_PEERS: c->cfg.peers = v; return check_list(p, "peer");
    case CL_OLLAMA_NODES: c->cfg.ollama_nodes = v; return check_list(p, "Ollama node");
    case CL_PROMETHEUS: c->cfg.prometheus = v; return check_list(p, "Prometheus");
    case CL_TOKEN_FILE: c->token_file = v; return 1;
    case CL_CA: c->cfg.ca_file = v; return 1;
    case CL_PROMETHEUS_JOB: c->cfg.prometheus_job = v; return 1;
    case CL_TIMEOUT: {
        gw_error why;
        uint64_t ms;
        if (gw__parse_uint(v, 10, 600000, &ms, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        c->cfg.timeout_ms = (int)ms;
        return 1;
    }
    default: return 0;
    }
}

int gw_cli_cluster_finish(gw_cli_cluster *c, const char *cmd)
{
    gw_error why;
    gw_error_clear(&why);
    if (!c->cfg.peers && !c->cfg.ollama_nodes && !c->cfg.prometheus) {
        const char *env = getenv("GPUWATCH_PEERS");
        if (env && *env) {
            if (gw__cluster_check_urls(env, "GPUWATCH_PEERS", &why) != GW_OK) {
                fprintf(stderr, "gpuwatch %s: %s\n", cmd, why.message);
                return GW_EXIT_USAGE;
            }
            c->cfg.peers = env;
        }
    }
    const char *env_token = getenv("GPUWATCH_PEER_TOKEN");
    if (c->token_file) {
        if (gw__read_token_file("--peer-token-file", c->token_file, c->token, sizeof c->token,
                                &why) != GW_OK) {
            fprintf(stderr, "gpuwatch %s: %s\n", cmd, why.message);
            return why.code == GW_EIO ? GW_EXIT_ERROR : GW_EXIT_USAGE;
        }
    } else if (env_token && *env_token) {
        if (strlen(env_token) >= sizeof c->token) { /* never truncated (as the files') */
            fprintf(stderr, "gpuwatch %s: GPUWATCH_PEER_TOKEN: must hold 1..%zu characters\n",
                    cmd, sizeof c->token - 1);
            return GW_EXIT_USAGE;
        }
        gw__strlcpy(c->token, env_token, sizeof c->token);
    }
    c->cfg.token = c->token[0] ? c->token : NULL;
    return 0;
}

int gw_cli_cluster_poll(const gw_cli_cluster *c, const char *cmd, gw__cluster *cl)
{
    gw_error err;
    gw_error_clear(&err);
    memset(cl, 0, sizeof *cl);
    if (gw__cluster_init(cl, &c->cfg, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch %s: %s (see 'gpuwatch %s --help')\n", cmd, err.message, cmd);
        return GW_EXIT_USAGE;
    }
    gw__curl_lib lib = {0};
    if (gw__cluster_needs_curl(cl) && gw__curl_load(&lib, NULL, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch %s: %s\n", cmd, err.message);
        return GW_EXIT_ERROR;
    }
    int rc = gw__cluster_poll(cl, &lib, &c->cfg, &err);
    gw__curl_unload(&lib);
    if (rc != GW_OK) {
        fprintf(stderr, "gpuwatch %s: %s\n", cmd, err.message);
        return GW_EXIT_ERROR;
    }
    return 0;
}

bool gw_cli_cluster_print_json(bool pretty, void (*write)(gw_json *j, const void *arg),
                               const void *arg)
{
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, pretty);
    write(&j, arg);
    gw__strbuf_putc(&sb, '\n');
    bool ok = !sb.failed;
    if (ok)
        fwrite(sb.data, 1, sb.len, stdout);
    gw__strbuf_release(&sb);
    return ok;
}
