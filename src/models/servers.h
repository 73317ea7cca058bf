/* servers.h — model servers on this host and the models they hold:
 * Ollama (GET /api/version, GET /api/ps) and llama.cpp's llama-server (GET
 * /health, /props, /slots), and which GPU process runs which model (issue
 * 14, items 1 to 3).
 *
 * Owns: the model-server records (the URL, up or why not, version, the
 * loaded models), decoding Ollama's answers, fetching several servers at
 * once (a thread each, every request under a deadline), the JSON of
 * docs/report-json.md's "model_servers", and attributing a process to a
 * model. Transport: place/daemon_client.h (plain HTTP; any host for these
 * servers, which get no token).
 *
 * Facts (../shared/reference/exporters-and-apis.md): /api/ps lists
 * {"models":[{"name","model","size","digest","details":{"family",
 * "parameter_size","quantization_level",...},"expires_at","size_vram",
 * "context_length"}]}; size_vram == size: all on GPU, 0: all on CPU. An
 * Ollama runner is started as "ollama runner --model
 * .../blobs/sha256-<digest> ...": the digest ties the process to its model.
 * llama-server: /health is 200 {"status":"ok"}, 503 while loading; /props
 * has model_path, total_slots, default_generation_settings.n_ctx; /slots
 * lists slots with is_processing (501 when disabled). Its port is --port
 * (default 8080), its host --host (default 127.0.0.1): a llama-server among
 * the GPU processes is found there, and tied to the model it serves.
 *
 * Invariants:
 *  1. Answers are untrusted: every field is type-checked and bounded; a
 *     missing or malformed field is unknown (never 0 shown as a size); a
 *     body that is not the documented shape makes the server "down" with
 *     the reason, never a partial model list.
 *  2. A server that does not answer within the deadline is down with the
 *     reason; it never delays the others beyond that deadline.
 */
#ifndef GW_MODELS_SERVERS_H
#define GW_MODELS_SERVERS_H

#include "core/model.h"
#include "render/json_writer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW__OLLAMA_DEFAULT_URL "http://127.0.0.1:11434"

typedef struct gw__loaded_model {
    char name[128];              /* "llama3.1:8b" */
    char digest[72];             /* sha256 hex; "" unknown */
    char family[32], parameter_size[24], quantization[24];
    uint64_t size, size_vram;    /* bytes */
    bool has_size, has_vram;
    uint32_t context_length;     /* 0: unknown */
    int64_t expires_ns;          /* CLOCK_REALTIME; 0: unknown */
} gw__loaded_model;

/* One sample of a llama-server's own /metrics (llamacpp:* families), to be
 * re-exported with a server label. */
typedef struct gw__server_sample {
    char name[80];        /* "llamacpp_prompt_tokens_total" (its ':' as '_') */
    char type[12];        /* "counter", "gauge", ... ("" untyped) */
    char help[160];
    char labels[256];     /* re-rendered 'k="v",...' (escaped), "" none */
    double value;
} gw__server_sample;

#define GW__SERVER_MAX_SAMPLES 256

typedef enum gw__server_kind {
    GW__SERVER_OLLAMA = 0,
    GW__SERVER_LLAMACPP,
} gw__server_kind;

typedef struct gw__model_server {
    gw__server_kind kind;
    char url[300];
    bool configured;             /* named by the user; else the local probe */
    bool up;
    char error[256];             /* why not up */
    char version[48];            /* "" unknown */
    gw__loaded_model *models;    /* n_models, owned */
    size_t n_models;
    uint32_t pid;                /* llama-server found among the processes; 0 */
    uint32_t slots_total, slots_busy; /* llama-server: has_slots, has_busy */
    bool has_slots, has_busy;
    gw__server_sample *samples;  /* llama-server's llamacpp:* samples, owned */
    size_t n_samples;
    /* --probe (gw__model_servers_probe) of an Ollama server with no model
     * loaded: the model asked, how long it took, "GPU (inferred)" or
     * "CPU (inferred)"; or why it failed. probed false: not probed. */
    bool probed;
    char probe_model[128], probe_result[24], probe_error[200];
    double probe_seconds;
} gw__model_server;

/* "ollama", "llama.cpp"; static. */
const char *gw__server_kind_name(gw__server_kind k);

/* Decodes an /api/ps body into s->models (replacing them). GW_OK, GW_EPARSE
 * naming what is wrong (invariant 1: s->models then empty), GW_ENOMEM. */
int gw__ollama_ps_parse(const char *body, size_t len, gw__model_server *s, gw_error *err);

/* Decodes llama-server's /props body into one model (name: the file name
 * of model_path; context: n_ctx) and s->slots_total. GW_OK, GW_EPARSE,
 * GW_ENOMEM as gw__ollama_ps_parse. */
int gw__llamacpp_props_parse(const char *body, size_t len, gw__model_server *s, gw_error *err);

/* Decodes a llama-server's /metrics text (Prometheus exposition 0.0.4)
 * into s->samples: only the counter and gauge families named llamacpp:*
 * (renamed llamacpp_*: a ':' is for recording rules), labels re-rendered
 * from a strict parse (a line that does not parse is skipped), at most
 * GW__SERVER_MAX_SAMPLES; never fails on content (GW_ENOMEM only). */
int gw__llamacpp_metrics_parse(const char *text, size_t len, gw__model_server *s, gw_error *err);

/* The URL a llama-server with this command line listens on
 * ("http://127.0.0.1:8080" by default; --host 0.0.0.0 / :: mean this host)
 * into buf[cap]; false when the command is not a llama-server. */
bool gw__llamacpp_url_of(const char *cmdline, char *buf, size_t cap);

/* Fetches every server in v[0..n) at once: up, version, models, or down
 * with the reason (invariant 2: each request waits at most timeout_ms). */
void gw__model_servers_fetch(gw__model_server *v, size_t n, int timeout_ms);

/* For each Ollama server of v that is up with no model loaded: its
 * smallest model (GET /api/tags) asked for one embedding (POST /api/embed,
 * timed, at most timeout_ms), then GET /api/ps says where that model went:
 * probe_result "GPU (inferred)" when it holds VRAM, else "CPU (inferred)".
 * Inferred, never measured: it says where one model landed once. Servers
 * are probed at once; the models lists are left as fetched. */
void gw__model_servers_probe(gw__model_server *v, size_t n, int timeout_ms);

/* Frees the models; the record can be fetched again. */
void gw__model_server_release(gw__model_server *s);

/* Where a model lives: "GPU", "CPU", "41% GPU" (split), "unknown". Into
 * buf[cap]; returns buf. */
const char *gw__loaded_model_location(const gw__loaded_model *m, char *buf, size_t cap);

/* The model a process with this command line runs: an Ollama runner whose
 * --model names blobs/sha256-DIGEST of a loaded model, or a llama-server
 * listening where one of v answers. NULL when none. */
const gw__loaded_model *gw__model_servers_find(const gw__model_server *v, size_t n,
                                               const char *cmdline);

/* A growable list of servers (what report and the daemon ask). */
typedef struct gw__server_list {
    gw__model_server *v;
    size_t n, cap;
} gw__server_list;

/* Appends the servers of a comma list of URLs (already valid) of kind; a
 * URL already there is not added twice (it gains pid when it had none).
 * Out of memory: the servers so far. */
void gw__server_list_add(gw__server_list *l, gw__server_kind kind, const char *urls,
                         bool configured, uint32_t pid);

/* The servers to ask: ollama (a URL list; "none"; NULL: the local probe,
 * GW__OLLAMA_DEFAULT_URL), llama (a URL list; "none": none at all; NULL:
 * none named), and, unless llama is "none", every llama-server among
 * snap's processes (snap may be NULL). */
void gw__server_list_plan(gw__server_list *l, const char *ollama, const char *llama,
                          const gw_snapshot *snap);

/* Keeps what is shown: servers named, found among the processes, or up
 * (the local probe only when it answered). */
void gw__server_list_keep_shown(gw__server_list *l);

/* Sets the model of each process of snap that runs one of l's models
 * (gw__model_servers_find; GW_PROC_MODEL). */
void gw__server_list_attribute(const gw__server_list *l, gw_snapshot *snap);

/* Frees every server and the list; it is empty after. */
void gw__server_list_release(gw__server_list *l);

/* Checks a --ollama / --llama-server value: "none", or a comma list of
 * http://HOST:PORT URLs. GW_EINVAL naming what is wrong. */
int gw__server_list_check(const char *list, gw_error *err);

/* The members of one model object of docs/report-json.md's
 * model_servers[].models[] (name, digest, sizes, location, details,
 * expires_at), written into an object the caller opened. */
void gw__loaded_model_members(gw_json *j, const gw__loaded_model *m);

/* The inverse of gw__loaded_model_members: a model object of that shape
 * (a peer daemon's /health model_servers[].models[]; untrusted: every
 * member type-checked, a digest that is not 64 hex digits dropped) into
 * *out. A member absent or malformed is unknown. */
struct json_t;
void gw__loaded_model_read(const struct json_t *m, gw__loaded_model *out);

/* The "model_servers" array of docs/report-json.md. */
void gw__model_servers_json(gw_json *j, const gw__model_server *v, size_t n);

#endif
