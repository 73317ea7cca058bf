/* config.h — the configuration of `gpuwatch serve`: defaults, the config
 * file, environment overrides and command-line overrides, in that order of
 * precedence (later wins).
 *
 * File format (docs/gpuwatch.conf.md, man/gpuwatch.conf.5): one
 * "key = value" per line; '#' starts a comment line; blank lines ignored;
 * values are taken verbatim after trimming blanks (no quoting). Every key
 * can also be set with the environment variable GPUWATCH_<KEY> (upper case)
 * and with `--set key=value`.
 *
 * Invariants: every key is in one table (gw__serve_config_keys) that drives
 * parsing, printing and the documentation test; a config that failed to
 * load is never partially applied by the caller (load into a copy).
 */
#ifndef GW_HTTP_CONFIG_H
#define GW_HTTP_CONFIG_H

#include "http/server.h"
#include "place/plan.h"

#include <stdio.h>

#define GW__SERVE_DEFAULT_CONFIG "/etc/gpuwatch/gpuwatch.conf"

typedef struct gw__serve_config {
    gw__server_config http;
    gw__sampler_config sampler;
    gw__log_level log_level;
    char sources[256];
    char nvml_library[512];
    char proc_root[512];
    char sys_root[512];
    bool processes;
    unsigned call_timeout_ms; /* 0: the monitor's default */
    char token_file[512];
    /* Placement API (src/place/api.h). */
    char ledger[512];            /* empty: gw_ledger_default_path(), as `gpuwatch run` */
    char model_dirs[2048];       /* ':'-separated; empty: model files refused */
    gw_place_policy place_policy;
    uint64_t place_margin;
    /* Model servers (models/poller.h): URL lists, "none", or "" for the
     * defaults (the local Ollama probe; the llama-servers found). */
    char ollama[1024];
    char llama_servers[1024];
    unsigned model_servers_interval_ms; /* 0: no poller */
    /* The cluster view (fleet/cluster_poller.h): no poller without peers,
     * Ollama nodes or a Prometheus URL. */
    char peers[2048];            /* comma list of gpuwatch URLs */
    char ollama_nodes[1024];     /* comma list of bare Ollama URLs */
    char peer_token_file[512];   /* first line: the peers' bearer token */
    char peer_token[256];        /* read from peer_token_file by finish */
    char peer_ca_file[512];      /* CA bundle of https:// peers */
    char prometheus_url[300];    /* read the nodes from this Prometheus */
    char prometheus_job[128];    /* its job label of gpuwatch targets */
    unsigned cluster_interval_ms;
    unsigned peer_timeout_ms;
} gw__serve_config;

typedef struct gw__config_key {
    const char *name;
    const char *default_text; /* as documented */
    const char *help;
} gw__config_key;

/* The keys, NULL-name terminated. Static. */
extern const gw__config_key gw__serve_config_keys[];

void gw__serve_config_default(gw__serve_config *c);

/* Sets one key from text. GW_EINVAL (unknown key or bad value: the message
 * names both) leaves c unchanged. */
int gw__serve_config_set(gw__serve_config *c, const char *key, const char *value, gw_error *err);

/* Reads a config file. GW_ENOENT when it does not exist, GW_EIO when it
 * cannot be read, GW_EINVAL with "PATH:LINE: ..." for a bad line. On error
 * c may hold the keys before the bad line: load into a scratch copy. */
int gw__serve_config_load_file(gw__serve_config *c, const char *path, gw_error *err);

/* Applies GPUWATCH_<KEY> variables that are set. Errors as _set, naming
 * the variable. */
int gw__serve_config_apply_env(gw__serve_config *c, gw_error *err);

/* Reads token_file (if set) into http.token and checks cross-key rules
 * (TLS files both or neither; listen beyond loopback needs token /
 * token_file, basic_auth_file or read_only). The credential and TLS files
 * themselves are read by the server (gw__server_create, _reconfigure). */
int gw__serve_config_finish(gw__serve_config *c, gw_error *err);

/* Prints every key = current value in file format, so the output loaded
 * with --config gives the same configuration (and prints the same again),
 * with one exception said in the output itself: a token set inline is
 * never printed, its line is a comment. A token from token_file comes back
 * through token_file. */
void gw__serve_config_print(FILE *out, const gw__serve_config *c);

#endif
