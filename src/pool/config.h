/* config.h — the configuration of `gpuwatch pool`: pool-wide keys and one
 * section per model, from a file, GPUWATCH_POOL_<KEY> variables and the
 * command line, in that order of precedence (later wins).
 *
 * Owns: the key table (gw_pool_config_keys: name, default, help), the file
 * grammar, the models directory scan and the command template's words.
 *
 * File grammar (docs/pool.md, gpuwatch-pool(1)): "key = value" lines; '#'
 * or ';' starts a comment line; keys before the first "[NAME]" line are
 * pool keys; each "[NAME]" line opens a model whose keys follow (model,
 * ctx, parallel, pinned, idle_ttl_s, command, allow_partial, queue_max).
 * A model NAME is what clients put in "model": 1..127 bytes of
 * [A-Za-z0-9._:/-]. The same shape as llama.cpp's models preset ("[*]" is
 * read as the pool section), so a preset written by `gpuwatch fit
 * --router-preset` loads here too; keys this pool does not know in a model
 * section are refused by name.
 *
 * Invariants:
 *  1. Every pool key is in gw_pool_config_keys, which drives parsing,
 *     printing and the documentation test.
 *  2. A failed load or set leaves the config unchanged (each entry point
 *     works on a scratch copy and commits it whole).
 *  3. After gw_pool_config_finish succeeds: every model has an absolute
 *     path to an existing regular file, a unique name, ctx > 0,
 *     parallel > 0, and its command template parses into 1..64 words.
 */
#ifndef GW_POOL_CONFIG_H
#define GW_POOL_CONFIG_H

#include "core/model.h"
#include "place/plan.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define GW_POOL_DEFAULT_LISTEN "127.0.0.1:8081"
#define GW_POOL_MAX_MODELS 256
#define GW_POOL_MAX_WORDS 64
#define GW_POOL_DEFAULT_COMMAND                                                             \
    "llama-server --model {model} --host {host} --port {port} --ctx-size {ctx} "            \
    "--parallel {parallel} --alias {name} {placement}"

typedef struct gw_pool_model_config {
    char name[128];
    char path[1024];
    uint32_t ctx;          /* 0 until finish: the pool's default_ctx */
    uint32_t parallel;     /* 0 until finish: the pool's default_parallel */
    bool pinned;           /* never unloaded for memory or idleness */
    bool preload;          /* loaded when the pool starts */
    int64_t idle_ttl_s;    /* -1: the pool's idle_ttl_s; 0: never idle-unloaded */
    int allow_partial;     /* -1: the pool's; 0/1 */
    unsigned queue_max;    /* 0: the pool's */
    char command[2048];    /* empty: the pool's */
} gw_pool_model_config;

typedef struct gw_pool_config {
    char listen[128];
    char models_dir[1024];      /* every *.gguf in it (not mmproj-*) is a model */
    char command[2048];         /* the child's command template */
    gw_place_policy policy;     /* gpu_allocation_strategy */
    bool gpu_monitoring;        /* enable_gpu_monitoring: false = CPU only */
    unsigned idle_ttl_s;        /* 0: never */
    unsigned load_timeout_s;
    unsigned health_interval_s; /* health checks of ready children; 0: none */
    unsigned request_timeout_s; /* most seconds without a byte from a child */
    unsigned stop_grace_s;      /* SIGTERM, then SIGKILL after this */
    unsigned queue_max;
    unsigned max_connections;
    uint64_t max_body_bytes;
    uint32_t default_ctx, default_parallel;
    bool allow_partial;
    uint64_t margin;            /* bytes kept free per GPU */
    uint32_t port_lo, port_hi;  /* children's ports; 0-0: any free port */
    char ledger[512];           /* empty: the default ledger path */
    char token_file[512];
    char token[256];            /* read from token_file by finish */
    unsigned log_bytes;         /* each child's stderr kept */
    gw_config source;           /* how GPUs are read (the CLI's source options) */
    size_t n_models;
    gw_pool_model_config *models; /* heap */
} gw_pool_config;

typedef struct gw_pool_config_key {
    const char *name;
    const char *default_text;
    const char *help;
} gw_pool_config_key;

extern const gw_pool_config_key gw_pool_config_keys[];

/* Defaults (docs/pool.md); no models. Release with gw_pool_config_release. */
void gw_pool_config_default(gw_pool_config *c);
void gw_pool_config_release(gw_pool_config *c);

/* Sets a pool key. GW_EINVAL naming key and value (c unchanged). */
int gw_pool_config_set(gw_pool_config *c, const char *key, const char *value, gw_error *err);

/* Reads a file (grammar above). GW_ENOENT / GW_EIO naming the path,
 * GW_EINVAL "PATH:LINE: ..." (c unchanged on any error). */
int gw_pool_config_load_file(gw_pool_config *c, const char *path, gw_error *err);

/* Applies GPUWATCH_POOL_<KEY> variables. Errors as _set naming the variable. */
int gw_pool_config_apply_env(gw_pool_config *c, gw_error *err);

/* Adds the models of models_dir not already named, fills per-model
 * defaults, resolves paths, reads token_file and checks invariant 3 and the
 * listen rule (beyond loopback needs a token). Errors name the model/key. */
int gw_pool_config_finish(gw_pool_config *c, gw_error *err);

/* Prints the resolved configuration in file format (the token never). */
void gw_pool_config_print(FILE *out, const gw_pool_config *c);

/* The pool's policy names: "single_gpu_first", "spread", "pack". */
bool gw_pool_strategy_parse(const char *s, gw_place_policy *out);
const char *gw_pool_strategy_name(gw_place_policy p);

/* Splits a command template into words (blanks separate; no quoting),
 * each a pointer into buf (caller's copy of the template, modified).
 * Returns the count (0..GW_POOL_MAX_WORDS) or GW_EINVAL when there are
 * more words or a "{...}" placeholder is unknown. Placeholders: {model}
 * {name} {host} {port} {ctx} {parallel} {ngl} {placement}; {placement}
 * must be a whole word. */
int gw_pool_template_split(char *buf, char **words, gw_error *err);

#endif
