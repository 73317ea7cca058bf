/* cmd_fit.c — `gpuwatch fit MODEL.gguf`: memory breakdown of a model under
 * llama.cpp for the requested layout, whether it fits, and the best plan
 * with its llama.cpp flags. Options mirror llama.cpp's names. GPUs are the
 * live GPUs of this host (gw_monitor) unless --gpu SIZE (repeatable) or
 * --cpu says otherwise. Parsing and printing only: the work is in
 * src/estimate (gw_est_*). */
#include "cli/cli.h"
#include "cli/fit_preset.h"
#include "cli/host_cpu.h"
#include "core/array.h"
#include "core/util.h"
#include "estimate/estimate.h"
#include "render/json_writer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fit_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch fit MODEL.gguf [OPTIONS]\n"
            "       gpuwatch fit --router-preset FILE MODEL.gguf|DIR... [OPTIONS]\n"
            "\n"
            "Memory llama.cpp needs for MODEL (weights / KV cache / compute / output, per GPU\n"
            "and for the host), whether it fits, and the best plan with its llama.cpp flags:\n"
            "one GPU if possible, else a layer split proportional to free memory, else the\n"
            "largest -ngl that fits, else the largest context that fits.\n"
            "\n"
            "llama.cpp options (same names and defaults):\n"
            "  -c, --ctx-size N          context (0: the model's training context)\n"
            "  -b, --batch-size N        logical batch (2048)\n"
            "  -ub, --ubatch-size N      physical batch (512)\n"
            "  -np, --parallel N         parallel sequences (1)\n"
            "  --kv-unified              one KV buffer shared by all sequences\n"
            "  --swa-full                full-size sliding-window cache\n"
            "  -ctk, --cache-type-k T    K cache type (f16, q8_0, q4_0, ...)\n"
            "  -ctv, --cache-type-v T    V cache type (quantized needs -fa on)\n"
            "  -fa, --flash-attn on|off|auto   (auto: on)\n"
            "  -ngl, --n-gpu-layers N    layers on the GPUs (default all)\n"
            "  -ts, --tensor-split A,B   split proportions (default: by free memory)\n"
            "  -sm, --split-mode none|layer|row\n"
            "  -mg, --main-gpu N\n"
            "  --mmproj FILE             vision projector GGUF: its weights and the compute\n"
            "                            buffer CLIP reserves, on the first GPU\n"
            "  --no-mmproj-offload       keep the projector on the host\n"
            "  --embeddings              output buffer also holds embeddings\n"
            "  --no-op-offload           keep host layers' big ops on the CPU\n"
            "  --no-host                 with GPUs: host weights skip the GPU's pinned host\n"
            "                            buffer and use the CPU's AMX / CPU_REPACK buffers\n"
            "Host CPU:\n"
            "  --host-cpu VARIANT|none   estimate for llama.cpp's CPU backend VARIANT (x64,\n"
            "                            sse42, haswell, skylakex, icelake, zen4, alderlake,\n"
            "                            sapphirerapids, armv8.2_1, armv8.6_1, ...; 'none':\n"
            "                            no extra buffer types, as llama.cpp --no-repack).\n"
            "                            Default: the variant llama.cpp loads on this host\n"
            "GPUs:\n"
            "  --gpu SIZE                a GPU with SIZE free (e.g. 24GiB, 8000MiB); repeat\n"
            "  --cpu                     no GPU: CPU-only estimate\n"
            "  (default: the live GPUs of this host, free memory now)\n"
            "  --overhead SIZE           per-GPU runtime overhead (default 512MiB)\n"
            "  --margin SIZE             per-GPU safety margin kept free (default 512MiB)\n"
            "Output:\n"
            "  --json, --pretty          machine-readable (schema gpuwatch.fit/1)\n"
            "  --router-preset FILE      write llama-server's models preset INI (router\n"
            "                            mode) for every MODEL given, files or folders:\n"
            "                            each planned alone on these GPUs; - for stdout\n"
            "%s"
            "  -h, --help\n"
            "\n"
            "Exit status: 0 it fits (or CPU-only estimate), 1 error or it does not fit,\n"
            "2 usage.\n",
            gw_cli_source_options_help);
}

static bool parse_cache_type(const char *s, uint32_t *out)
{
    static const char *ok[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"};
    for (size_t i = 0; i < GW__ARRAY_LEN(ok); i++)
        if (strcasecmp(s, ok[i]) == 0) {
            *out = gw_ggml_type_by_name(s)->id;
            return true;
        }
    return false;
}

#define MIB (1024.0 * 1024.0)

static void print_mem(const char *name, const gw_est_mem *x)
{
    printf("  %-8s weights %9.1f  KV %9.1f  compute %8.1f  output %7.1f", name,
           (double)x->weights / MIB, (double)x->kv / MIB, (double)x->compute / MIB,
           (double)x->output / MIB);
    if (x->mmproj || x->mmproj_compute)
        printf("  mmproj %7.1f + compute %7.1f", (double)x->mmproj / MIB,
               (double)x->mmproj_compute / MIB);
    if (x->overhead)
        printf("  overhead %6.1f", (double)x->overhead / MIB);
    printf("  = %9.1f MiB\n", (double)x->total / MIB);
}

static void print_result(const gw_est_model *m, const gw_est_params *p, const gw_est_result *r)
{
    printf("  context: n_ctx %u (per sequence %u), batch %u, ubatch %u, %u sequence%s%s, "
           "flash attention %s, KV %s/%s, -ngl %d\n",
           r->n_ctx, r->n_ctx_seq, r->n_batch, r->n_ubatch, r->n_seq, r->n_seq == 1 ? "" : "s",
           p->kv_unified ? " (unified KV)" : "", r->flash_attn ? "on" : "off",
           gw_ggml_type(p->type_k)->name, gw_ggml_type(p->type_v)->name,
           r->n_gpu_layers > (int32_t)m->n_layer ? (int32_t)m->n_layer + 1 : r->n_gpu_layers);
    for (uint32_t d = 0; d < r->n_devices; d++) {
        char name[16];
        snprintf(name, sizeof name, "GPU %u", d);
        print_mem(name, &r->device[d]);
        printf("  %-8s free %.1f MiB, needs %.1f MiB with margin: %s\n", "",
               (double)p->device_free[d] / MIB, (double)(r->device[d].total + p->margin) / MIB,
               r->device[d].total + p->margin <= p->device_free[d] ? "fits" : "DOES NOT FIT");
    }
    print_mem("host", &r->host);
}

static void json_mem(gw_json *j, const gw_est_mem *x)
{
    gw__json_object_begin(j);
    gw__json_key(j, "weights");
    gw__json_u64(j, x->weights);
    gw__json_key(j, "kv");
    gw__json_u64(j, x->kv);
    gw__json_key(j, "compute");
    gw__json_u64(j, x->compute);
    gw__json_key(j, "output");
    gw__json_u64(j, x->output);
    gw__json_key(j, "mmproj");
    gw__json_u64(j, x->mmproj);
    gw__json_key(j, "mmproj_compute");
    gw__json_u64(j, x->mmproj_compute);
    gw__json_key(j, "overhead");
    gw__json_u64(j, x->overhead);
    gw__json_key(j, "total");
    gw__json_u64(j, x->total);
    gw__json_object_end(j);
}

static void json_result(gw_json *j, const gw_est_params *p, const gw_est_result *r)
{
    gw__json_object_begin(j);
    gw__json_key(j, "n_ctx");
    gw__json_u64(j, r->n_ctx);
    gw__json_key(j, "n_ctx_seq");
    gw__json_u64(j, r->n_ctx_seq);
    gw__json_key(j, "n_batch");
    gw__json_u64(j, r->n_batch);
    gw__json_key(j, "n_ubatch");
    gw__json_u64(j, r->n_ubatch);
    gw__json_key(j, "n_seq");
    gw__json_u64(j, r->n_seq);
    gw__json_key(j, "kv_size");
    gw__json_u64(j, r->kv_size);
    gw__json_key(j, "kv_size_swa");
    gw__json_u64(j, r->kv_size_swa);
    gw__json_key(j, "flash_attn");
    gw__json_bool(j, r->flash_attn);
    gw__json_key(j, "n_gpu_layers");
    gw__json_i64(j, r->n_gpu_layers);
    gw__json_key(j, "kv_k");
    gw__json_u64(j, r->kv_k);
    gw__json_key(j, "kv_v");
    gw__json_u64(j, r->kv_v);
    gw__json_key(j, "devices");
    gw__json_array_begin(j);
    for (uint32_t d = 0; d < r->n_devices; d++) {
        gw__json_object_begin(j);
        gw__json_key(j, "index");
        gw__json_u64(j, d);
        gw__json_key(j, "free");
        gw__json_u64(j, p->device_free[d]);
        gw__json_key(j, "margin");
        gw__json_u64(j, p->margin);
        gw__json_key(j, "memory");
        json_mem(j, &r->device[d]);
        gw__json_object_end(j);
    }
    gw__json_array_end(j);
    gw__json_key(j, "host");
    json_mem(j, &r->host);
    gw__json_key(j, "fits");
    gw__json_bool(j, r->fits);
    gw__json_object_end(j);
}

static void print_mmproj(const char *path, const gw_est_mmproj *mp)
{
    if (!mp->vision) {
        printf("projector %s: %s, audio only: compute buffer not estimated (approximate)\n", path,
               mp->projector);
        return;
    }
    printf("projector %s: %s, warm-up image %ux%u%s\n", path, mp->projector, mp->warmup_size,
           mp->warmup_size,
           mp->approximate ? " (approximate compute buffer: no exact rules for this projector)"
                           : "");
}

static void json_mmproj(gw_json *j, const char *path, const gw_est_mmproj *mp)
{
    gw__json_key(j, "mmproj");
    gw__json_object_begin(j);
    gw__json_key(j, "path");
    gw__json_string(j, path);
    gw__json_key(j, "projector");
    gw__json_string(j, mp->projector);
    gw__json_key(j, "vision");
    gw__json_bool(j, mp->vision);
    gw__json_key(j, "approximate");
    gw__json_bool(j, mp->approximate);
    gw__json_key(j, "warmup_image");
    gw__json_u64(j, mp->warmup_size);
    gw__json_key(j, "weights");
    gw__json_u64(j, mp->weight_bytes);
    gw__json_object_end(j);
}

/* Free memory of the live GPUs; returns the count, or -1 after an error. */
static int live_gpus(const gw_config *cfg, gw_est_params *p)
{
    gw_monitor *mon;
    gw_error err;
    gw_error_clear(&err);
    if (gw_monitor_open(&mon, cfg, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: %s\n", err.message);
        return -1;
    }
    gw_snapshot *s;
    if (gw_monitor_sample(mon, &s, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: %s\n", err.message);
        gw_monitor_close(mon);
        return -1;
    }
    /* MIG (docs/mig.md): a GPU in MIG mode is no device of its own, and a
     * process sees one MIG device: fit plans on the whole GPUs; on a host
     * of MIG devices only, on the one with the most free memory. */
    p->n_devices = 0;
    const gw_device *best_mig = NULL;
    for (size_t i = 0; i < s->n_devices && p->n_devices < GW_EST_MAX_DEVICES; i++) {
        const gw_device *d = &s->devices[i];
        if (d->state != GW_DEVICE_OK || !gw_sample_has(&d->sample, GW_METRIC_MEM_FREE))
            continue;
        if (d->info.mig) {
            if (!best_mig || d->sample.mem_free > best_mig->sample.mem_free)
                best_mig = d;
            continue;
        }
        if (gw_sample_has(&d->sample, GW_METRIC_MIG_MODE) && d->sample.mig_mode == 1)
            continue;
        p->device_free[p->n_devices++] = d->sample.mem_free;
    }
    if (p->n_devices == 0 && best_mig)
        p->device_free[p->n_devices++] = best_mig->sample.mem_free;
    gw_snapshot_release(s);
    gw_monitor_close(mon);
    return (int)p->n_devices;
}

/* ------------------------------------------------------------ options */

/* What the command line asked for. Strings borrowed from argv. */
typedef struct fit_args {
    gw_est_params p;
    gw_config cfg;
    const char *model, *mmproj;
    const char *preset;  /* --router-preset FILE ("-": stdout) */
    const char **models; /* every model argument (more than one: --router-preset) */
    size_t n_models;
    bool json, pretty, cpu, gpus_given;
} fit_args;

enum {
    F_CTX = 1, F_BATCH, F_UBATCH, F_PARALLEL, F_KV_UNIFIED, F_SWA_FULL, F_CTK, F_CTV, F_FA,
    F_NGL, F_TS, F_SM, F_MG, F_MMPROJ, F_NO_MMPROJ_OFFLOAD, F_EMBEDDINGS, F_NO_OP_OFFLOAD,
    F_NO_HOST, F_HOST_CPU, F_GPU, F_CPU, F_OVERHEAD, F_MARGIN, F_JSON, F_PRETTY, F_PRESET
};

/* llama.cpp's spellings: the long name, its short alias. */
static const gw_opt fit_opts[] = {
    {"--ctx-size", "-c", "N", F_CTX},
    {"--batch-size", "-b", "N", F_BATCH},
    {"--ubatch-size", "-ub", "N", F_UBATCH},
    {"--parallel", "-np", "N", F_PARALLEL},
    {"--kv-unified", "-kvu", NULL, F_KV_UNIFIED},
    {"--swa-full", NULL, NULL, F_SWA_FULL},
    {"--cache-type-k", "-ctk", "T", F_CTK},
    {"--cache-type-v", "-ctv", "T", F_CTV},
    {"--flash-attn", "-fa", "on|off|auto", F_FA},
    {"--n-gpu-layers", "-ngl", "N", F_NGL},
    {"--gpu-layers", NULL, "N", F_NGL},
    {"--tensor-split", "-ts", "A,B", F_TS},
    {"--split-mode", "-sm", "none|layer|row", F_SM},
    {"--main-gpu", "-mg", "N", F_MG},
    {"--mmproj", "-mm", "FILE", F_MMPROJ},
    {"--no-mmproj-offload", NULL, NULL, F_NO_MMPROJ_OFFLOAD},
    {"--embeddings", "--embedding", NULL, F_EMBEDDINGS},
    {"--no-op-offload", NULL, NULL, F_NO_OP_OFFLOAD},
    {"--no-host", NULL, NULL, F_NO_HOST},
    {"--host-cpu", NULL, "VARIANT", F_HOST_CPU},
    {"--gpu", NULL, "SIZE", F_GPU},
    {"--cpu", NULL, NULL, F_CPU},
    {"--overhead", NULL, "SIZE", F_OVERHEAD},
    {"--margin", NULL, "SIZE", F_MARGIN},
    {"--json", NULL, NULL, F_JSON},
    {"--pretty", NULL, NULL, F_PRETTY},
    {"--router-preset", NULL, "FILE", F_PRESET},
    {NULL, NULL, NULL, 0},
};

static int u32_value(const char *v, uint32_t lo, uint32_t *out, gw_error *why)
{
    uint64_t x;
    int rc = gw__parse_uint(v, lo, UINT32_MAX, &x, why);
    if (rc == GW_OK)
        *out = (uint32_t)x;
    return rc;
}

/* -ts 3,1 or 3/1: non-negative proportions, one per device. */
static int tensor_split_value(const char *v, gw_est_params *p, gw_error *why)
{
    char buf[256];
    if (strlen(v) >= sizeof buf)
        return gw__error_set(why, GW_EINVAL, "'%.40s...' is too long", v);
    gw__strlcpy(buf, v, sizeof buf);
    uint32_t k = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",/", &save); tok;
         tok = strtok_r(NULL, ",/", &save)) {
        if (k >= GW_EST_MAX_DEVICES)
            return gw__error_set(why, GW_EINVAL, "more than %d proportions", GW_EST_MAX_DEVICES);
        int rc = gw__parse_decimal(tok, 0, 1e12, &p->tensor_split[k++], why);
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* One of the words in names (NULL-terminated) into *out (its index). */
static int word_value(const char *v, const char *const *names, const char *say, int *out,
                      gw_error *why)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return GW_OK;
        }
    return gw__error_set(why, GW_EINVAL, "'%s' is not %s", v, say);
}

/* Applies a valued option of fit_opts; GW_EINVAL with why saying what. */
static int fit_value(fit_args *a, int id, const char *v, gw_error *why)
{
    if (id == F_PRESET) {
        a->preset = v;
        return GW_OK;
    }
    gw_est_params *p = &a->p;
    static const char *const fa[] = {"on", "1", "off", "0", "auto", NULL};
    static const char *const sm[] = {"none", "layer", "row", NULL};
    int w = 0, rc = GW_OK;
    switch (id) {
    case F_CTX: return u32_value(v, 0, &p->n_ctx, why);
    case F_BATCH: return u32_value(v, 1, &p->n_batch, why);
    case F_UBATCH: return u32_value(v, 1, &p->n_ubatch, why);
    case F_PARALLEL: return u32_value(v, 1, &p->n_seq, why);
    case F_MG: return u32_value(v, 0, &p->main_gpu, why);
    case F_CTK:
    case F_CTV:
        if (!parse_cache_type(v, id == F_CTK ? &p->type_k : &p->type_v))
            return gw__error_set(why, GW_EINVAL, "'%s' is not a KV cache type", v);
        return GW_OK;
    case F_FA:
        rc = word_value(v, fa, "on, off or auto", &w, why);
        p->flash_attn = w < 2 ? GW_EST_FA_ON : w < 4 ? GW_EST_FA_OFF : GW_EST_FA_AUTO;
        return rc;
    case F_SM:
        rc = word_value(v, sm, "none, layer or row", &w, why);
        p->split_mode = w == 0 ? GW_EST_SPLIT_NONE : w == 1 ? GW_EST_SPLIT_LAYER : GW_EST_SPLIT_ROW;
        return rc;
    case F_NGL: {
        uint32_t n = 0;
        if (strcmp(v, "all") == 0 || strcmp(v, "auto") == 0)
            n = UINT32_MAX;
        else if ((rc = u32_value(v, 0, &n, why)) != GW_OK)
            return rc;
        p->n_gpu_layers = n > 100000 ? -1 : (int32_t)n;
        return GW_OK;
    }
    case F_TS: return tensor_split_value(v, p, why);
    case F_MMPROJ: a->mmproj = v; return GW_OK;
    case F_HOST_CPU: return gw_est_cpu_variant_parse(v, &p->host_cpu, why);
    case F_GPU:
        a->gpus_given = true;
        if (p->n_devices >= GW_EST_MAX_DEVICES)
            return gw__error_set(why, GW_EINVAL, "at most %d GPUs", GW_EST_MAX_DEVICES);
        return gw__parse_size(v, &p->device_free[p->n_devices++], why);
    case F_OVERHEAD: return gw__parse_size(v, &p->overhead, why);
    case F_MARGIN: return gw__parse_size(v, &p->margin, why);
    }
    return GW_OK;
}

/* Applies a flag of fit_opts. */
static void fit_flag(fit_args *a, int id)
{
    switch (id) {
    case F_KV_UNIFIED: a->p.kv_unified = true; break;
    case F_SWA_FULL: a->p.swa_full = true; break;
    case F_NO_MMPROJ_OFFLOAD: a->p.no_mmproj_offload = true; break;
    case F_EMBEDDINGS: a->p.embeddings = true; break;
    case F_NO_OP_OFFLOAD: a->p.no_op_offload = true; break;
    case F_NO_HOST: a->p.no_host = true; break;
    case F_CPU: a->cpu = true; break;
    case F_JSON: a->json = true; break;
    case F_PRETTY: a->json = a->pretty = true; break;
    }
}

/* Parses argv into a; 0, or GW_CLI_EXIT_OK / GW_CLI_EXIT_USAGE (printed). */
static int parse_fit_options(int argc, char **argv, fit_args *a)
{
    const gw_opt *const tables[] = {fit_opts, gw_cli_source_opts, NULL};
    gw_cli_parse cp;
    gw_cli_parse_init(&cp, "fit", argc, argv, tables, fit_usage);
    for (int id; (id = gw_cli_next(&cp)) != GW_CLI_DONE;) {
        if (id == GW_CLI_EXIT_OK || id == GW_CLI_EXIT_USAGE)
            return id;
        if (id == GW_CLI_ARG) {
            a->models[a->n_models++] = cp.scan.value;
            continue;
        }
        int s = gw_cli_source_apply(&cp, id, &a->cfg);
        if (s < 0)
            return s;
        if (s > 0)
            continue;
        if (!cp.scan.opt->value) {
            fit_flag(a, id);
            continue;
        }
        gw_error why;
        gw_error_clear(&why);
        if (fit_value(a, id, cp.scan.value, &why) != GW_OK)
            return gw_cli_bad_value(&cp, &why);
    }
    if (a->n_models == 0) {
        fprintf(stderr, "gpuwatch fit: which model? (usage: gpuwatch fit MODEL.gguf)\n");
        return GW_CLI_EXIT_USAGE;
    }
    if (a->n_models > 1 && !a->preset) {
        fprintf(stderr, "gpuwatch fit: one model only ('%s' and '%s'; several go with "
                        "--router-preset)\n", a->models[0], a->models[1]);
        return GW_CLI_EXIT_USAGE;
    }
    if (a->preset && (a->json || a->mmproj)) {
        fprintf(stderr, "gpuwatch fit: --router-preset writes an INI file: not with %s\n",
                a->json ? "--json" : "--mmproj (fit each model with its projector alone)");
        return GW_CLI_EXIT_USAGE;
    }
    a->model = a->models[0];
    return 0;
}

/* ------------------------------------------------------------- inputs */

/* Reads the model and, with --mmproj, the projector into *mp (p->mmproj
 * then points at mp: keep mp alive while p is used). On failure prints and
 * returns GW_EXIT_ERROR with nothing held. */
static int load_model(fit_args *a, gw_est_mmproj *mp, gw_est_model **out)
{
    gw_error err;
    gw_error_clear(&err);
    gw_gguf *g = NULL;
    if (gw_gguf_open(&g, a->model, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: fit: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    gw_est_model *m = NULL;
    int rc = gw_est_model_read(g, &m, &err);
    gw_gguf_close(g);
    if (rc != GW_OK) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", a->model, err.message);
        return GW_EXIT_ERROR;
    }
    memset(mp, 0, sizeof *mp);
    if (a->mmproj) {
        gw_gguf *pg = NULL;
        if (gw_gguf_open(&pg, a->mmproj, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch: fit: --mmproj: %s\n", err.message);
            gw_est_model_free(m);
            return GW_EXIT_ERROR;
        }
        int mrc = gw_est_mmproj_read(pg, mp, &err);
        gw_gguf_close(pg);
        if (mrc != GW_OK) {
            fprintf(stderr, "gpuwatch: fit: --mmproj %s: %s\n", a->mmproj, err.message);
            gw_est_model_free(m);
            return GW_EXIT_ERROR;
        }
        a->p.mmproj_bytes = mp->weight_bytes;
        a->p.mmproj = mp;
    }
    *out = m;
    return GW_EXIT_OK;
}

/* ------------------------------------------------------------- output */

static void fit_json(const fit_args *a, const gw_est_model *m, const gw_est_mmproj *mp,
                     const gw_est_result *asked, const gw_est_plan *plan, gw_strbuf *sb)
{
    const gw_est_params *p = &a->p;
    gw_json j;
    gw__json_init(&j, sb, a->pretty);
    gw__json_object_begin(&j);
    gw__json_key(&j, "schema");
    gw__json_string(&j, "gpuwatch.fit/1");
    gw__json_key(&j, "model");
    gw__json_object_begin(&j);
    gw__json_key(&j, "path");
    gw__json_string(&j, a->model);
    gw__json_key(&j, "architecture");
    gw__json_string(&j, m->arch_name);
    gw__json_key(&j, "approximate");
    gw__json_bool(&j, m->approximate);
    gw__json_key(&j, "n_layer");
    gw__json_u64(&j, m->n_layer);
    gw__json_key(&j, "n_ctx_train");
    gw__json_u64(&j, m->n_ctx_train);
    gw__json_object_end(&j);
    gw__json_key(&j, "host_cpu");
    gw_cli_host_cpu_json(&j, p->host_cpu, asked->host_buffer_types);
    if (a->mmproj)
        json_mmproj(&j, a->mmproj, mp);
    gw__json_key(&j, "overhead");
    gw__json_u64(&j, p->overhead);
    gw__json_key(&j, "margin");
    gw__json_u64(&j, p->margin);
    gw__json_key(&j, "requested");
    json_result(&j, p, asked);
    gw__json_key(&j, "plan");
    gw__json_object_begin(&j);
    gw__json_key(&j, "kind");
    gw__json_string(&j, gw_est_plan_kind_name(plan->kind));
    gw__json_key(&j, "fits");
    gw__json_bool(&j, plan->result.fits || p->n_devices == 0);
    gw__json_key(&j, "llama_flags");
    gw__json_string(&j, plan->flags);
    gw__json_key(&j, "estimate");
    json_result(&j, &plan->params, &plan->result);
    gw__json_object_end(&j);
    gw__json_object_end(&j);
}

static void fit_text(const fit_args *a, const gw_est_model *m, const gw_est_mmproj *mp,
                     const gw_est_result *asked, const gw_est_plan *plan)
{
    const gw_est_params *p = &a->p;
    printf("%s: %s, %u layers, %s%s\n", a->model, m->arch_name, m->n_layer,
           p->n_devices ? "" : "CPU only",
           m->approximate ? " (approximate: no exact rules for this architecture)" : "");
    char cpu_text[160];
    printf("host CPU: %s%s\n", gw_cli_host_cpu_text(p->host_cpu, cpu_text, sizeof cpu_text),
           p->n_devices && !asked->host_buffer_types && gw_est_cpu_variant_buffer_types(p->host_cpu)
               ? "; host weights in the GPU's pinned host buffer (--no-host to change)"
               : "");
    if (a->mmproj)
        print_mmproj(a->mmproj, mp);
    printf("Requested layout:\n");
    print_result(m, p, asked);
    if (p->n_devices) {
        printf("Fits: %s\n", asked->fits ? "yes" : "no");
        printf("Best plan: %s%s\n", gw_est_plan_kind_name(plan->kind),
               plan->result.fits ? "" : " (nothing fits on the GPUs)");
        if (plan->kind != GW_EST_PLAN_CPU)
            print_result(m, &plan->params, &plan->result);
    }
    printf("llama.cpp flags: %s\n", plan->flags);
    printf("(MiB; per-GPU overhead %.0f MiB and margin %.0f MiB are settable with "
           "--overhead/--margin)\n",
           (double)p->overhead / MIB, (double)p->margin / MIB);
}

/* Estimates the requested layout and the best plan, prints them; returns
 * the exit code. */
static int estimate_and_print(const fit_args *a, const gw_est_model *m, const gw_est_mmproj *mp)
{
    gw_error err;
    gw_error_clear(&err);
    int rc = GW_EXIT_OK;
    gw_est_result *asked = malloc(sizeof *asked);
    gw_est_plan *plan = malloc(sizeof *plan);
    if (!asked || !plan) {
        fprintf(stderr, "gpuwatch: fit: out of memory\n");
        rc = GW_EXIT_ERROR;
        goto out;
    }
    /* CPU only: the plan is the requested layout itself, estimate it once */
    if ((a->p.n_devices > 0 && gw_est_estimate(m, &a->p, asked, &err) != GW_OK) ||
        gw_est_plan_fit(m, &a->p, plan, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", a->model, err.message);
        rc = GW_EXIT_ERROR;
        goto out;
    }
    if (a->p.n_devices == 0)
        *asked = plan->result;
    if (a->json) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        fit_json(a, m, mp, asked, plan, &sb);
        if (sb.failed) {
            fprintf(stderr, "gpuwatch: fit: out of memory\n");
            rc = GW_EXIT_ERROR;
        } else {
            fwrite(sb.data, 1, sb.len, stdout);
            fputc('\n', stdout);
        }
        gw__strbuf_release(&sb);
    } else {
        fit_text(a, m, mp, asked, plan);
    }
    if (a->p.n_devices > 0 && !asked->fits)
        rc = GW_EXIT_ERROR;
out:
    free(asked);
    free(plan);
    return rc;
}

/* ------------------------------------------------------ router preset */

/* Adds path to list (a .gguf file as given; a folder: its *.gguf files in
 * name order, without the vision projectors "mmproj*"). false with a
 * message printed when path cannot be read. */
static bool add_models(const char *path, char ***list, size_t *n, size_t *cap)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", path, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        char *copy = strdup(path);
        if (!copy || GW__ARRAY_RESERVE(*list, *cap, *n + 1, GW__ARRAY_UNBOUNDED)) {
            free(copy);
            fprintf(stderr, "gpuwatch: fit: out of memory\n");
            return false;
        }
        (*list)[(*n)++] = copy;
        return true;
    }
    struct dirent **names = NULL;
    int k = scandir(path, &names, NULL, alphasort);
    if (k < 0) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = true;
    for (int i = 0; i < k; i++) {
        const char *nm = names[i]->d_name;
        size_t len = strlen(nm);
        if (ok && len > 5 && strcmp(nm + len - 5, ".gguf") == 0 && strncmp(nm, "mmproj", 6) != 0) {
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", path, nm);
            ok = add_models(full, list, n, cap);
        }
        free(names[i]);
    }
    free(names);
    return ok;
}

/* One model's section: planned alone on a's devices. */
static bool preset_model(fit_args *a, const char *path, gw_strbuf *sb)
{
    char name[256], abs[4096];
    if (!gw_fit_preset_name(path, name, sizeof name)) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", path, name);
        return false;
    }
    if (!realpath(path, abs)) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", path, strerror(errno));
        return false;
    }
    a->model = path;
    gw_est_mmproj mp;
    gw_est_model *m = NULL;
    if (load_model(a, &mp, &m) != GW_EXIT_OK)
        return false;
    gw_est_plan *plan = malloc(sizeof *plan);
    gw_error err;
    gw_error_clear(&err);
    bool ok = plan && gw_est_plan_fit(m, &a->p, plan, &err) == GW_OK;
    if (!ok)
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", path, plan ? err.message : "out of memory");
    if (ok) {
        char comment[512];
        snprintf(comment, sizeof comment, "%s: %s, %u layers, plan %s%s", name, m->arch_name,
                 m->n_layer, gw_est_plan_kind_name(plan->kind),
                 a->p.n_devices && !plan->result.fits ? " (does not fit on the GPUs)" : "");
        ok = gw_fit_preset_section(sb, name, abs, plan->flags, comment, fit_opts);
        if (!ok)
            fprintf(stderr, "gpuwatch: fit: %s: the plan's flags (%s) have no preset form\n",
                    path, plan->flags);
    }
    free(plan);
    gw_est_model_free(m);
    return ok;
}

/* Writes sb to path atomically (a temporary beside it, then rename), or to
 * stdout for "-". */
static bool write_whole(const char *path, const gw_strbuf *sb)
{
    if (strcmp(path, "-") == 0)
        return fwrite(sb->data, 1, sb->len, stdout) == sb->len && fflush(stdout) == 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    bool ok = f && fwrite(sb->data, 1, sb->len, f) == sb->len;
    ok = f && fclose(f) == 0 && ok && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "gpuwatch: fit: --router-preset %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

/* --router-preset: every model planned alone on these devices, one section
 * each; nothing is written unless every model has its section. */
static int write_preset(fit_args *a)
{
    char **list = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < a->n_models; i++)
        ok = add_models(a->models[i], &list, &n, &cap);
    if (ok && n == 0) {
        fprintf(stderr, "gpuwatch: fit: --router-preset: no .gguf model in what was given\n");
        ok = false;
    }
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    gw__strbuf_printf(&sb,
                      "; llama-server models preset (router mode), written by gpuwatch %s at %s\n"
                      "; Each model is planned alone on this host's %u GPU(s) with the memory "
                      "free then;\n"
                      "; --models-max counts models, not bytes: load no more at once than the "
                      "GPUs hold.\n"
                      "; Run: CUDA_DEVICE_ORDER=PCI_BUS_ID llama-server --models-preset FILE\n"
                      "; (PCI order numbers the GPUs as gpuwatch does: main-gpu and "
                      "tensor-split follow it.)\n\n",
                      GW_VERSION_STRING, when, a->p.n_devices);
    for (size_t i = 0; ok && i < n; i++) {
        char name[256];
        for (size_t k = 0; k < i && gw_fit_preset_name(list[i], name, sizeof name); k++) {
            char other[256];
            if (gw_fit_preset_name(list[k], other, sizeof other) && strcmp(name, other) == 0) {
                fprintf(stderr, "gpuwatch: fit: %s and %s would both be [%s]\n", list[k],
                        list[i], name);
                ok = false;
                break;
            }
        }
        ok = ok && preset_model(a, list[i], &sb);
    }
    if (ok && sb.failed) {
        fprintf(stderr, "gpuwatch: fit: out of memory\n");
        ok = false;
    }
    ok = ok && write_whole(a->preset, &sb);
    gw__strbuf_release(&sb);
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return ok ? GW_EXIT_OK : GW_EXIT_ERROR;
}

/* The command once its options are read. */
static int fit_command(fit_args *a_in)
{
    fit_args a = *a_in;
    if (a.cpu)
        a.p.n_devices = 0;
    else if (!a.gpus_given && live_gpus(&a.cfg, &a.p) < 0)
        return GW_EXIT_ERROR;
    if (a.preset)
        return write_preset(&a);
    gw_est_mmproj mp; /* borrowed by a.p.mmproj until we return */
    gw_est_model *m = NULL;
    int rc = load_model(&a, &mp, &m);
    if (rc != GW_EXIT_OK)
        return rc;
    rc = estimate_and_print(&a, m, &mp);
    gw_est_model_free(m);
    return rc;
}

/* `gpuwatch fit`: argv[0] is "fit". Returns an exit code (GW_EXIT_*);
 * prints to stdout/stderr only; owns nothing after it returns. */
int gw_cmd_fit(int argc, char **argv)
{
    fit_args a = {.model = NULL};
    gw_est_params_init(&a.p);
    gw_config_init(&a.cfg);
    a.models = calloc((size_t)argc + 1, sizeof *a.models);
    if (!a.models) {
        fprintf(stderr, "gpuwatch: fit: out of memory\n");
        return GW_EXIT_ERROR;
    }
    int s = parse_fit_options(argc, argv, &a);
    if (s) {
        free(a.models);
        return s == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
    }
    int rc = fit_command(&a);
    free(a.models);
    return rc;
}
