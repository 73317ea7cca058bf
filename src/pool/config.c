/* config.c — `gpuwatch pool`'s configuration (config.h says the grammar,
 * the precedence and the invariants). */
#include "pool/config.h"

#include "core/array.h"
#include "core/parse.h"
#include "core/util.h"
#include "http/server.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const gw_pool_config_key gw_pool_config_keys[] = {
    {"listen", GW_POOL_DEFAULT_LISTEN, "address of the OpenAI-compatible front"},
    {"models_dir", "", "every *.gguf file in it is a model named after the file"},
    {"command", GW_POOL_DEFAULT_COMMAND, "the model server's command template"},
    {"gpu_allocation_strategy", "single_gpu_first", "single_gpu_first, spread or pack"},
    {"enable_gpu_monitoring", "true", "false: read no GPU, load every model on the CPU"},
    {"idle_ttl_s", "600", "unload a model idle this long; 0 never"},
    {"load_timeout_s", "120", "a child not ready this long is stopped"},
    {"health_interval_s", "5", "health check of ready children; 0 none"},
    {"request_timeout_s", "600", "most seconds a child may stay silent in an answer"},
    {"stop_grace_s", "10", "SIGTERM, then SIGKILL after this"},
    {"queue_max", "64", "requests waiting per model; more get 429"},
    {"max_connections", "512", "concurrent client connections"},
    {"max_body_bytes", "16MiB", "largest request body; more get 413"},
    {"ctx", "4096", "context size of a model without its own"},
    {"parallel", "1", "slots (concurrent requests) of a model without its own"},
    {"allow_partial", "false", "let layers stay on the CPU when a model does not fit"},
    {"margin", "512MiB", "bytes kept free on every GPU"},
    {"ports", "", "LO-HI: the children's ports; empty: any free port"},
    {"ledger", "", "reservations ledger; empty: the default (as gpuwatch run)"},
    {"token_file", "", "bearer token every request must carry"},
    {"log_bytes", "65536", "each child's stderr kept for /api/v1/pool/NAME/log"},
    {NULL, NULL, NULL},
};

static const char *const placeholders[] = {"{model}", "{name}", "{host}",     "{port}",
                                           "{ctx}",   "{parallel}", "{ngl}", "{placement}"};

void gw_pool_config_default(gw_pool_config *c)
{
    memset(c, 0, sizeof *c);
    gw__strlcpy(c->listen, GW_POOL_DEFAULT_LISTEN, sizeof c->listen);
    gw__strlcpy(c->command, GW_POOL_DEFAULT_COMMAND, sizeof c->command);
    c->policy = GW_PLACE_BEST_FIT;
    c->gpu_monitoring = true;
    c->idle_ttl_s = 600;
    c->load_timeout_s = 120;
    c->health_interval_s = 5;
    c->request_timeout_s = 600;
    c->stop_grace_s = 10;
    c->queue_max = 64;
    c->max_connections = 512;
    c->max_body_bytes = 16u << 20;
    c->default_ctx = 4096;
    c->default_parallel = 1;
    c->margin = 512u << 20;
    c->log_bytes = 65536;
    gw_config_init(&c->source);
}

void gw_pool_config_release(gw_pool_config *c)
{
    free(c->models);
    c->models = NULL;
    c->n_models = 0;
}

bool gw_pool_strategy_parse(const char *s, gw_place_policy *out)
{
    if (strcmp(s, "single_gpu_first") == 0 || strcmp(s, "best-fit") == 0)
        *out = GW_PLACE_BEST_FIT;
    else if (strcmp(s, "spread") == 0)
        *out = GW_PLACE_SPREAD;
    else if (strcmp(s, "pack") == 0)
        *out = GW_PLACE_PACK;
    else
        return false;
    return true;
}

const char *gw_pool_strategy_name(gw_place_policy p)
{
    return p == GW_PLACE_SPREAD ? "spread" : p == GW_PLACE_PACK ? "pack" : "single_gpu_first";
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
        *out = false;
    else
        return false;
    return true;
}

static int bad(gw_error *err, const char *key, const char *value, const char *why)
{
    return gw__error_set(err, GW_EINVAL, "%s = '%s': %s", key, value, why);
}

static int set_uint(unsigned *dst, const char *key, const char *v, uint64_t lo, uint64_t hi,
                    gw_error *err)
{
    uint64_t n;
    gw_error why;
    if (gw__parse_uint(v, lo, hi, &n, &why) != GW_OK)
        return bad(err, key, v, why.message);
    *dst = (unsigned)n;
    return GW_OK;
}

static int set_ports(gw_pool_config *c, const char *v, gw_error *err)
{
    if (!*v) {
        c->port_lo = c->port_hi = 0;
        return GW_OK;
    }
    char lo[16], *dash = strchr(v, '-');
    uint64_t a, b;
    gw_error why;
    if (!dash || (size_t)(dash - v) >= sizeof lo)
        return bad(err, "ports", v, "expected LO-HI, e.g. 41000-41099");
    memcpy(lo, v, (size_t)(dash - v));
    lo[dash - v] = '\0';
    if (gw__parse_uint(lo, 1, 65535, &a, &why) != GW_OK ||
        gw__parse_uint(dash + 1, 1, 65535, &b, &why) != GW_OK)
        return bad(err, "ports", v, why.message);
    if (b < a)
        return bad(err, "ports", v, "the range is empty");
    c->port_lo = (uint32_t)a;
    c->port_hi = (uint32_t)b;
    return GW_OK;
}

static int set_string(char *dst, size_t cap, const char *key, const char *v, gw_error *err)
{
    if (strlen(v) >= cap)
        return bad(err, key, v, "too long");
    gw__strlcpy(dst, v, cap);
    return GW_OK;
}

static int set_size(uint64_t *dst, const char *key, const char *v, gw_error *err)
{
    gw_error why;
    if (gw__parse_size(v, dst, &why) != GW_OK)
        return bad(err, key, v, why.message);
    return GW_OK;
}

/* Applies one pool key to t (a scratch copy). */
static int set_key(gw_pool_config *t, const char *key, const char *v, gw_error *err)
{
    unsigned u;
    if (!strcmp(key, "listen"))
        return set_string(t->listen, sizeof t->listen, key, v, err);
    if (!strcmp(key, "models_dir"))
        return set_string(t->models_dir, sizeof t->models_dir, key, v, err);
    if (!strcmp(key, "command"))
        return set_string(t->command, sizeof t->command, key, v, err);
    if (!strcmp(key, "ledger"))
        return set_string(t->ledger, sizeof t->ledger, key, v, err);
    if (!strcmp(key, "token_file"))
        return set_string(t->token_file, sizeof t->token_file, key, v, err);
    if (!strcmp(key, "gpu_allocation_strategy"))
        return gw_pool_strategy_parse(v, &t->policy)
                   ? GW_OK
                   : bad(err, key, v, "expected single_gpu_first, spread or pack");
    if (!strcmp(key, "enable_gpu_monitoring"))
        return parse_bool(v, &t->gpu_monitoring) ? GW_OK : bad(err, key, v, "expected true or false");
    if (!strcmp(key, "allow_partial"))
        return parse_bool(v, &t->allow_partial) ? GW_OK : bad(err, key, v, "expected true or false");
    if (!strcmp(key, "idle_ttl_s"))
        return set_uint(&t->idle_ttl_s, key, v, 0, 30u * 86400, err);
    if (!strcmp(key, "load_timeout_s"))
        return set_uint(&t->load_timeout_s, key, v, 1, 86400, err);
    if (!strcmp(key, "health_interval_s"))
        return set_uint(&t->health_interval_s, key, v, 0, 3600, err);
    if (!strcmp(key, "request_timeout_s"))
        return set_uint(&t->request_timeout_s, key, v, 1, 86400, err);
    if (!strcmp(key, "stop_grace_s"))
        return set_uint(&t->stop_grace_s, key, v, 0, 600, err);
    if (!strcmp(key, "queue_max"))
        return set_uint(&t->queue_max, key, v, 1, 100000, err);
    if (!strcmp(key, "max_connections"))
        return set_uint(&t->max_connections, key, v, 1, 100000, err);
    if (!strcmp(key, "log_bytes"))
        return set_uint(&t->log_bytes, key, v, 1024, 64u << 20, err);
    if (!strcmp(key, "ctx")) {
        int rc = set_uint(&u, key, v, 1, 1u << 24, err);
        t->default_ctx = rc ? t->default_ctx : u;
        return rc;
    }
    if (!strcmp(key, "parallel")) {
        int rc = set_uint(&u, key, v, 1, 1024, err);
        t->default_parallel = rc ? t->default_parallel : u;
        return rc;
    }
    if (!strcmp(key, "max_body_bytes"))
        return set_size(&t->max_body_bytes, key, v, err);
    if (!strcmp(key, "margin"))
        return set_size(&t->margin, key, v, err);
    if (!strcmp(key, "ports"))
        return set_ports(t, v, err);
    return gw__error_set(err, GW_EINVAL,
                         "unknown key '%s' (docs/pool.md and gpuwatch pool --print-config list "
                         "them)", key);
}

int gw_pool_config_set(gw_pool_config *c, const char *key, const char *value, gw_error *err)
{
    gw_pool_config t = *c;
    int rc = set_key(&t, key, value, err);
    if (rc == GW_OK)
        *c = t;
    return rc;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 127)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._:/-", *s))
            return false;
    return true;
}

static gw_pool_model_config *find_model(gw_pool_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    return NULL;
}

/* Appends a model named name with "use the pool's" settings; NULL when out
 * of memory or over GW_POOL_MAX_MODELS (err says which). */
static gw_pool_model_config *add_model(gw_pool_config *c, size_t *cap, const char *name,
                                       gw_error *err)
{
    if (c->n_models >= GW_POOL_MAX_MODELS) {
        gw__error_set(err, GW_EINVAL, "more than %d models", GW_POOL_MAX_MODELS);
        return NULL;
    }
    if (GW__ARRAY_RESERVE(c->models, *cap, c->n_models + 1, GW_POOL_MAX_MODELS) != GW_OK) {
        gw__error_set(err, GW_ENOMEM, "out of memory");
        return NULL;
    }
    gw_pool_model_config *m = &c->models[c->n_models++];
    memset(m, 0, sizeof *m);
    gw__strlcpy(m->name, name, sizeof m->name);
    m->idle_ttl_s = -1;
    m->allow_partial = -1;
    return m;
}

static int set_model_key(gw_pool_model_config *m, const char *key, const char *v, gw_error *err)
{
    uint64_t n;
    gw_error why;
    bool b;
    if (!strcmp(key, "model") || !strcmp(key, "m"))
        return set_string(m->path, sizeof m->path, key, v, err);
    if (!strcmp(key, "command"))
        return set_string(m->command, sizeof m->command, key, v, err);
    if (!strcmp(key, "ctx") || !strcmp(key, "c") || !strcmp(key, "ctx-size")) {
        if (gw__parse_uint(v, 1, 1u << 24, &n, &why) != GW_OK)
            return bad(err, key, v, why.message);
        m->ctx = (uint32_t)n;
        return GW_OK;
    }
    if (!strcmp(key, "parallel") || !strcmp(key, "np")) {
        if (gw__parse_uint(v, 1, 1024, &n, &why) != GW_OK)
            return bad(err, key, v, why.message);
        m->parallel = (uint32_t)n;
        return GW_OK;
    }
    if (!strcmp(key, "queue_max")) {
        if (gw__parse_uint(v, 1, 100000, &n, &why) != GW_OK)
            return bad(err, key, v, why.message);
        m->queue_max = (unsigned)n;
        return GW_OK;
    }
    if (!strcmp(key, "idle_ttl_s")) {
        if (gw__parse_uint(v, 0, 30u * 86400, &n, &why) != GW_OK)
            return bad(err, key, v, why.message);
        m->idle_ttl_s = (int64_t)n;
        return GW_OK;
    }
    if (!strcmp(key, "pinned") || !strcmp(key, "preload") || !strcmp(key, "allow_partial")) {
        if (!parse_bool(v, &b))
            return bad(err, key, v, "expected true or false");
        if (key[0] == 'p' && key[1] == 'i')
            m->pinned = b;
        else if (key[0] == 'p')
            m->preload = b;
        else
            m->allow_partial = b;
        return GW_OK;
    }
    /* llama-server arguments the placement computes itself */
    if (!strcmp(key, "n-gpu-layers") || !strcmp(key, "ngl") || !strcmp(key, "tensor-split") ||
        !strcmp(key, "split-mode"))
        return GW_OK;
    return gw__error_set(err, GW_EINVAL, "model [%s]: unknown key '%s'", m->name, key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* One line of a file into t; *model is the open section (NULL: pool keys). */
static int load_line(gw_pool_config *t, size_t *cap, char *s, gw_pool_model_config **model,
                     gw_error *err)
{
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (!end || end[1])
            return gw__error_set(err, GW_EINVAL, "bad section line '%s'", s);
        *end = '\0';
        char *name = trim(s + 1);
        if (!strcmp(name, "*")) {
            *model = NULL;
            return GW_OK;
        }
        if (!name_ok(name))
            return gw__error_set(err, GW_EINVAL, "bad model name '%s' (1-127 of A-Z a-z 0-9 . _ : / -)",
                                 name);
        if (find_model(t, name))
            return gw__error_set(err, GW_EINVAL, "model [%s] given twice", name);
        *model = add_model(t, cap, name, err);
        return *model ? GW_OK : err->code;
    }
    char *eq = strchr(s, '=');
    if (!eq)
        return gw__error_set(err, GW_EINVAL, "expected 'key = value', got '%s'", s);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    return *model ? set_model_key(*model, key, val, err) : set_key(t, key, val, err);
}

int gw_pool_config_load_file(gw_pool_config *c, const char *path, gw_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return gw__error_set(err, errno == ENOENT ? GW_ENOENT : GW_EIO, "%s: %s", path,
                             strerror(errno));
    gw_pool_config t = *c;
    size_t cap = t.n_models;
    t.models = NULL;
    if (c->n_models) {
        t.models = malloc(c->n_models * sizeof *t.models);
        if (!t.models) {
            fclose(f);
            return gw__error_set(err, GW_ENOMEM, "out of memory");
        }
        memcpy(t.models, c->models, c->n_models * sizeof *t.models);
    }
    char line[4096];
    unsigned lineno = 0;
    int rc = GW_OK;
    gw_pool_model_config *model = NULL;
    while (rc == GW_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        gw_error why;
        gw_error_clear(&why);
        rc = load_line(&t, &cap, s, &model, &why);
        if (rc != GW_OK)
            gw__error_set(err, rc, "%s:%u: %s", path, lineno, why.message);
    }
    if (rc == GW_OK && ferror(f))
        rc = gw__error_set(err, GW_EIO, "%s: read error", path);
    fclose(f);
    if (rc != GW_OK) {
        free(t.models);
        return rc;
    }
    free(c->models);
    *c = t;
    return GW_OK;
}

int gw_pool_config_apply_env(gw_pool_config *c, gw_error *err)
{
    for (const gw_pool_config_key *k = gw_pool_config_keys; k->name; k++) {
        char var[96];
        const char *v = getenv(gw__env_name(var, sizeof var, "GPUWATCH_POOL_", k->name));
        if (!v)
            continue;
        gw_error why;
        if (gw_pool_config_set(c, k->name, v, &why) != GW_OK)
            return gw__error_set(err, GW_EINVAL, "%s: %s", var, why.message);
    }
    return GW_OK;
}

int gw_pool_template_split(char *buf, char **words, gw_error *err)
{
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
        if (n >= GW_POOL_MAX_WORDS)
            return gw__error_set(err, GW_EINVAL, "command: more than %d words", GW_POOL_MAX_WORDS);
        for (const char *p = strchr(w, '{'); p; p = strchr(p + 1, '{')) {
            bool known = false;
            for (size_t i = 0; i < GW__ARRAY_LEN(placeholders) && !known; i++)
                known = strncmp(p, placeholders[i], strlen(placeholders[i])) == 0;
            if (!known)
                return gw__error_set(err, GW_EINVAL, "command: unknown placeholder in '%s' "
                                                     "(known: {model} {name} {host} {port} {ctx} "
                                                     "{parallel} {ngl} {placement})", w);
        }
        if (strstr(w, "{placement}") && strcmp(w, "{placement}") != 0)
            return gw__error_set(err, GW_EINVAL, "command: {placement} must be a word of its own");
        words[n++] = w;
    }
    if (n == 0)
        return gw__error_set(err, GW_EINVAL, "command: empty");
    return n;
}

/* Adds every *.gguf of models_dir that no section names (by name or path). */
static int scan_models_dir(gw_pool_config *c, size_t *cap, gw_error *err)
{
    DIR *d = opendir(c->models_dir);
    if (!d)
        return gw__error_set(err, GW_EINVAL, "models_dir '%s': %s", c->models_dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, ncap = 0;
    int rc = GW_OK;
    for (struct dirent *e; rc == GW_OK && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".gguf") != 0 ||
            strncmp(e->d_name, "mmproj", 6) == 0)
            continue;
        if (GW__ARRAY_RESERVE(names, ncap, n + 1, GW_POOL_MAX_MODELS * 4) != GW_OK ||
            !(names[n] = strdup(e->d_name)))
            rc = gw__error_set(err, GW_ENOMEM, "models_dir: out of memory or too many files");
        else
            n++;
    }
    closedir(d);
    /* readdir order is the filesystem's: sort so model order is stable */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char *t = names[k];
            names[k] = names[k - 1];
            names[k - 1] = t;
        }
    for (size_t i = 0; i < n && rc == GW_OK; i++) {
        char path[1024], name[128];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", c->models_dir, names[i]) >= sizeof path)
            continue; /* a path this long cannot be a model's */
        gw__strlcpy(name, names[i], sizeof name);
        name[strlen(name) > 5 ? strlen(name) - 5 : 0] = '\0';
        bool named = find_model(c, name) != NULL;
        char real[PATH_MAX];
        for (size_t k = 0; k < c->n_models && !named && realpath(path, real); k++) {
            char other[PATH_MAX];
            named = realpath(c->models[k].path, other) && strcmp(real, other) == 0;
        }
        if (named || !name_ok(name))
            continue;
        gw_pool_model_config *m = add_model(c, cap, name, err);
        if (!m)
            rc = err->code;
        else
            gw__strlcpy(m->path, path, sizeof m->path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int finish_model(const gw_pool_config *c, gw_pool_model_config *m, gw_error *err)
{
    if (!m->path[0])
        return gw__error_set(err, GW_EINVAL, "model [%s]: no 'model = PATH'", m->name);
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(m->path, real) || stat(real, &st) != 0)
        return gw__error_set(err, GW_EINVAL, "model [%s]: %s: %s", m->name, m->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return gw__error_set(err, GW_EINVAL, "model [%s]: %s is not a file", m->name, m->path);
    if (strlen(real) >= sizeof m->path)
        return gw__error_set(err, GW_EINVAL, "model [%s]: path too long", m->name);
    gw__strlcpy(m->path, real, sizeof m->path);
    m->ctx = m->ctx ? m->ctx : c->default_ctx;
    m->parallel = m->parallel ? m->parallel : c->default_parallel;
    m->queue_max = m->queue_max ? m->queue_max : c->queue_max;
    if (m->idle_ttl_s < 0)
        m->idle_ttl_s = c->idle_ttl_s;
    if (m->allow_partial < 0)
        m->allow_partial = c->allow_partial;
    if (!m->command[0])
        gw__strlcpy(m->command, c->command, sizeof m->command);
    char buf[sizeof m->command];
    char *words[GW_POOL_MAX_WORDS];
    gw__strlcpy(buf, m->command, sizeof buf);
    gw_error why;
    if (gw_pool_template_split(buf, words, &why) < 0)
        return gw__error_set(err, GW_EINVAL, "model [%s]: %s", m->name, why.message);
    return GW_OK;
}

int gw_pool_config_finish(gw_pool_config *c, gw_error *err)
{
    size_t cap = c->n_models;
    if (c->models_dir[0]) {
        int rc = scan_models_dir(c, &cap, err);
        if (rc != GW_OK)
            return rc;
    }
    for (size_t i = 0; i < c->n_models; i++) {
        int rc = finish_model(c, &c->models[i], err);
        if (rc != GW_OK)
            return rc;
    }
    if (c->token_file[0]) {
        int rc = gw__read_token_file("token_file", c->token_file, c->token, sizeof c->token, err);
        if (rc != GW_OK)
            return rc;
    }
    if (!c->token[0] && !gw__listen_is_loopback(c->listen))
        return gw__error_set(err, GW_EINVAL, "listen = %s is beyond loopback: set token_file "
                                             "(every request then needs the bearer token)",
                             c->listen);
    return GW_OK;
}

void gw_pool_config_print(FILE *out, const gw_pool_config *c)
{
    fprintf(out, "listen = %s\nmodels_dir = %s\ncommand = %s\n", c->listen, c->models_dir,
            c->command);
    fprintf(out, "gpu_allocation_strategy = %s\nenable_gpu_monitoring = %s\n",
            gw_pool_strategy_name(c->policy), c->gpu_monitoring ? "true" : "false");
    fprintf(out, "idle_ttl_s = %u\nload_timeout_s = %u\nhealth_interval_s = %u\n", c->idle_ttl_s,
            c->load_timeout_s, c->health_interval_s);
    fprintf(out, "request_timeout_s = %u\nstop_grace_s = %u\nqueue_max = %u\n",
            c->request_timeout_s, c->stop_grace_s, c->queue_max);
    fprintf(out, "max_connections = %u\nmax_body_bytes = %llu\n", c->max_connections,
            (unsigned long long)c->max_body_bytes);
    fprintf(out, "ctx = %u\nparallel = %u\nallow_partial = %s\n", c->default_ctx,
            c->default_parallel, c->allow_partial ? "true" : "false");
    fprintf(out, "margin = %llu\n", (unsigned long long)c->margin);
    if (c->port_lo)
        fprintf(out, "ports = %u-%u\n", c->port_lo, c->port_hi);
    else
        fprintf(out, "ports =\n");
    fprintf(out, "ledger = %s\ntoken_file = %s\nlog_bytes = %u\n", c->ledger, c->token_file,
            c->log_bytes);
    for (size_t i = 0; i < c->n_models; i++) {
        const gw_pool_model_config *m = &c->models[i];
        fprintf(out, "\n[%s]\nmodel = %s\nctx = %u\nparallel = %u\npinned = %s\npreload = %s\n",
                m->name, m->path, m->ctx, m->parallel, m->pinned ? "true" : "false",
                m->preload ? "true" : "false");
        fprintf(out, "idle_ttl_s = %lld\nallow_partial = %s\nqueue_max = %u\ncommand = %s\n",
                (long long)m->idle_ttl_s, m->allow_partial > 0 ? "true" : "false", m->queue_max,
                m->command);
    }
}
