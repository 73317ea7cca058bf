/* cmd_pool.c — `gpuwatch pool`: the command line of the model-server pool.
 * Flags are shorthands for pool keys (docs/pool.md, gpuwatch-pool in
 * gpuwatch(1)), so flags, the file and GPUWATCH_POOL_* share one set; the
 * pool itself is src/pool/. Runs until SIGTERM/SIGINT, then stops every
 * model server and releases every reservation. */
#include "cli/cli.h"
#include "core/util.h"
#include "pool/front.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void pool_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch pool [OPTIONS] [MODEL.gguf ...]\n"
            "\n"
            "Serves an OpenAI-compatible API (default http://" GW_POOL_DEFAULT_LISTEN ") in front\n"
            "of one model server per model (llama-server by default). A model loads on its\n"
            "first request, on the GPUs gpuwatch's exact estimate and placement choose (one\n"
            "GPU first, split when needed, the CPU when there is no GPU), with its memory\n"
            "reserved in the ledger; idle models unload after idle_ttl_s, and idle models\n"
            "are unloaded least recently used first when a request needs their memory.\n"
            "SIGTERM/SIGINT stop every model server and release every reservation.\n"
            "\n"
            "Options:\n"
            "  -c, --config PATH     pool file: keys, then one [NAME] section per model\n"
            "  --models-dir DIR      every *.gguf in DIR is a model (key models_dir)\n"
            "  --listen HOST:PORT    address to serve on (key listen)\n"
            "  --command TEMPLATE    model server command (key command); placeholders\n"
            "                        {model} {name} {host} {port} {ctx} {parallel} {ngl}\n"
            "                        {placement} (llama.cpp's GPU layers and split flags)\n"
            "  --strategy NAME       single_gpu_first, spread or pack (key\n"
            "                        gpu_allocation_strategy)\n"
            "  --cpu-only            read no GPU; every model runs with -ngl 0 (key\n"
            "                        enable_gpu_monitoring=false)\n"
            "  --ctx N               context of a model without its own (key ctx)\n"
            "  --parallel N          slots of a model without its own (key parallel)\n"
            "  --idle-ttl S          unload a model idle S seconds; 0 never (key idle_ttl_s)\n"
            "  --ledger PATH         reservations ledger (key ledger)\n"
            "  --token-file PATH     bearer token every request needs (key token_file)\n"
            "  --set KEY=VALUE       any pool key (repeatable)\n"
            "  --print-config        print the resolved configuration and exit\n"
            "%s"
            "  -h, --help            this text\n"
            "\n"
            "A MODEL.gguf argument adds that file as a model named after it.\n"
            "Precedence: defaults < config file < GPUWATCH_POOL_<KEY> environment < options.\n"
            "Routes: /v1/chat/completions /v1/completions /v1/embeddings (and llama-server's),\n"
            "        /v1/models /models /models/load /models/unload /health /api/v1/pool\n"
            "        /api/v1/pool/NAME/log /metrics. See docs/pool.md.\n"
            "\n"
            "Exit status: 0 stopped by a signal, 1 could not start, 2 usage.\n",
            gw_cli_source_options_help);
}

static const gw_cli_shorthand shorthand[] = {
    {"--models-dir", "DIR", "models_dir"},
    {"--listen", "HOST:PORT", "listen"},
    {"--command", "TEMPLATE", "command"},
    {"--strategy", "NAME", "gpu_allocation_strategy"},
    {"--cpu-only", NULL, "enable_gpu_monitoring"},
    {"--ctx", "N", "ctx"},
    {"--parallel", "N", "parallel"},
    {"--idle-ttl", "S", "idle_ttl_s"},
    {"--ledger", "PATH", "ledger"},
    {"--token-file", "PATH", "token_file"},
};

static const gw_opt *pool_opts(void)
{
    static gw_opt t[GW__ARRAY_LEN(shorthand) + 4];
    gw_cli_config_opts(t, shorthand, GW__ARRAY_LEN(shorthand));
    return t;
}

typedef struct pool_args {
    const char *config;
    bool print_config;
    const char *sets[64][2];
    size_t n_sets;
    char *const *files;
    size_t n_files;
} pool_args;

static int parse_options(int argc, char **argv, pool_args *a, gw_config *src)
{
    const gw_opt *const tables[] = {pool_opts(), gw_cli_source_opts, NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "pool", argc, argv, tables, pool_usage);
    static char *files[GW_POOL_MAX_MODELS];
    a->files = files;
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
            if (a->n_files >= GW_POOL_MAX_MODELS) {
                fprintf(stderr, "gpuwatch pool: more than %d model files\n", GW_POOL_MAX_MODELS);
                return GW_CLI_EXIT_USAGE;
            }
            files[a->n_files++] = (char *)v;
            continue;
        }
        if (id == GW_CLI_O_CONFIG) {
            a->config = v;
            continue;
        }
        if (id == GW_CLI_O_PRINT_CONFIG) {
            a->print_config = true;
            continue;
        }
        if (a->n_sets >= GW__ARRAY_LEN(a->sets)) {
            fprintf(stderr, "gpuwatch pool: too many options\n");
            return GW_CLI_EXIT_USAGE;
        }
        if (id == GW_CLI_O_SET) {
            if (gw_cli_check_set(&p, v))
                return GW_CLI_EXIT_USAGE;
            a->sets[a->n_sets][0] = v; /* split when applied */
            a->sets[a->n_sets++][1] = NULL;
            continue;
        }
        const char *key = shorthand[id - GW_CLI_O_SHORTHAND].key;
        a->sets[a->n_sets][0] = key;
        a->sets[a->n_sets++][1] = v ? v : strcmp(key, "enable_gpu_monitoring") ? "true" : "false";
    }
}

/* Adds each MODEL.gguf argument as a section named after the file. */
static int add_files(gw_pool_config *c, const pool_args *a, gw_error *err)
{
    for (size_t i = 0; i < a->n_files; i++) {
        const char *base = strrchr(a->files[i], '/');
        base = base ? base + 1 : a->files[i];
        char name[128];
        gw__strlcpy(name, base, sizeof name);
        size_t n = strlen(name);
        if (n > 5 && !strcmp(name + n - 5, ".gguf"))
            name[n - 5] = '\0';
        gw_pool_model_config *grown = realloc(c->models, (c->n_models + 1) * sizeof *grown);
        if (!grown)
            return gw__error_set(err, GW_ENOMEM, "out of memory");
        c->models = grown;
        gw_pool_model_config *m = &c->models[c->n_models++];
        memset(m, 0, sizeof *m);
        gw__strlcpy(m->name, name, sizeof m->name);
        gw__strlcpy(m->path, a->files[i], sizeof m->path);
        m->idle_ttl_s = -1;
        m->allow_partial = -1;
    }
    return GW_OK;
}

/* Defaults < file < environment < options, then finish (config.h). */
static int resolve(gw_pool_config *c, const pool_args *a, const gw_config *src, gw_error *err)
{
    int rc = a->config ? gw_pool_config_load_file(c, a->config, err) : GW_OK;
    if (rc == GW_OK)
        rc = gw_pool_config_apply_env(c, err);
    for (size_t i = 0; rc == GW_OK && i < a->n_sets; i++) {
        if (a->sets[i][1]) {
            rc = gw_pool_config_set(c, a->sets[i][0], a->sets[i][1], err);
            continue;
        }
        char kv[4096];
        gw__strlcpy(kv, a->sets[i][0], sizeof kv);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        rc = gw_pool_config_set(c, kv, eq + 1, err);
    }
    if (rc == GW_OK)
        rc = add_files(c, a, err);
    c->source = *src;
    if (rc == GW_OK)
        rc = gw_pool_config_finish(c, err);
    if (rc == GW_OK && c->n_models == 0)
        rc = gw__error_set(err, GW_EINVAL, "no models: give MODEL.gguf files, --models-dir DIR "
                                           "or [NAME] sections in --config");
    return rc;
}

/* Serves until SIGTERM / SIGINT (blocked in every thread, taken here). */
static int serve(gw_pool_config *c)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    size_t n_models = c->n_models;
    gw_error err;
    gw_error_clear(&err);
    gw_pool *pool = NULL;
    gw_pool_front *front = NULL;
    if (gw_pool_open(&pool, c, &err) != GW_OK ||
        gw_pool_front_start(&front, pool, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch pool: %s\n", err.message);
        gw_pool_close(pool);
        return GW_EXIT_ERROR;
    }
    const gw_pool_config *cfg = gw_pool_config_of(pool);
    fprintf(stderr, "gpuwatch pool: serving %zu model%s on port %u (%s, %s)\n", n_models,
            n_models == 1 ? "" : "s", gw_pool_front_port(front), cfg->listen,
            cfg->gpu_monitoring ? gw_pool_strategy_name(cfg->policy) : "cpu only");
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
        fprintf(stderr, "gpuwatch pool: SIGHUP ignored (restart to change the configuration)\n");
    fprintf(stderr, "gpuwatch pool: signal %d: stopping the model servers\n", sig);
    gw_pool_begin_stop(pool); /* waiting requests end now, so the front can stop */
    gw_pool_front_stop(front);
    gw_pool_close(pool);
    return GW_EXIT_OK;
}

int gw_cmd_pool(int argc, char **argv)
{
    pool_args a;
    memset(&a, 0, sizeof a);
    gw_config src;
    gw_config_init(&src);
    int s = parse_options(argc, argv, &a, &src);
    if (s)
        return s == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
    gw_pool_config c;
    gw_pool_config_default(&c);
    gw_error err;
    gw_error_clear(&err);
    if (resolve(&c, &a, &src, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch pool: %s\n", err.message);
        gw_pool_config_release(&c);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    if (a.print_config) {
        gw_pool_config_print(stdout, &c);
        gw_pool_config_release(&c);
        return GW_EXIT_OK;
    }
    return serve(&c);
}
