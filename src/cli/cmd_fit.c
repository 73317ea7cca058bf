/* cmd_fit.c — `gpuwatch fit MODEL.gguf`: memory breakdown of a model under
 * llama.cpp for the requested layout, whether it fits, and the best plan
 * with its llama.cpp flags. Options mirror llama.cpp's names. GPUs are the
 * live GPUs of this host (gw_monitor) unless --gpu SIZE (repeatable) or
 * --cpu says otherwise. Parsing and printing only: the work is in
 * src/estimate (gw_est_*). */
#include "cli/cli.h"
#include "cli/host_cpu.h"
#include "core/util.h"
#include "estimate/estimate.h"
#include "render/json_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void fit_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch fit MODEL.gguf [OPTIONS]\n"
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
            "%s"
            "  -h, --help\n"
            "\n"
            "Exit status: 0 it fits (or CPU-only estimate), 1 error or it does not fit,\n"
            "2 usage.\n",
            gw_cli_source_options_help);
}

/* "24GiB", "8000MiB", "24G", "1.5GB", plain bytes. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return false;
    double mul = 1;
    if (*end == '\0' || strcasecmp(end, "b") == 0)
        mul = 1;
    else if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0)
        mul = 1024.0;
    else if (strcasecmp(end, "kb") == 0)
        mul = 1e3;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0)
        mul = 1024.0 * 1024;
    else if (strcasecmp(end, "mb") == 0)
        mul = 1e6;
    else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gib") == 0)
        mul = 1024.0 * 1024 * 1024;
    else if (strcasecmp(end, "gb") == 0)
        mul = 1e9;
    else if (strcasecmp(end, "t") == 0 || strcasecmp(end, "tib") == 0)
        mul = 1024.0 * 1024 * 1024 * 1024;
    else
        return false;
    double b = v * mul;
    if (b >= 1.8e19)
        return false;
    *out = (uint64_t)b;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!gw__parse_u64(s, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
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
    p->n_devices = 0;
    for (size_t i = 0; i < s->n_devices && p->n_devices < GW_EST_MAX_DEVICES; i++) {
        const gw_device *d = &s->devices[i];
        if (d->state != GW_DEVICE_OK || !gw_sample_has(&d->sample, GW_METRIC_MEM_FREE))
            continue;
        p->device_free[p->n_devices++] = d->sample.mem_free;
    }
    gw_snapshot_release(s);
    gw_monitor_close(mon);
    return (int)p->n_devices;
}

/* `gpuwatch fit`: argv[0] is "fit". Returns an exit code (GW_EXIT_*);
 * prints to stdout/stderr only; owns nothing after it returns. */
int gw_cmd_fit(int argc, char **argv)
{
    gw_est_params p;
    gw_est_params_init(&p);
    gw_config cfg;
    gw_config_init(&cfg);
    const char *model = NULL, *mmproj = NULL;
    bool json = false, pretty = false, cpu = false, gpus_given = false, ts_given = false;
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        int src = gw_cli_source_option(argc, argv, &i, &cfg);
        if (src < 0)
            return GW_EXIT_USAGE;
        if (src > 0)
            continue;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fit_usage(stdout);
            return GW_EXIT_OK;
        }
#define FLAG(s, l) (strcmp(a, s) == 0 || strcmp(a, l) == 0)
        if (FLAG("--json", "--json")) {
            json = true;
            i++;
            continue;
        }
        if (FLAG("--pretty", "--pretty")) {
            json = pretty = true;
            i++;
            continue;
        }
        if (FLAG("--cpu", "--cpu")) {
            cpu = true;
            i++;
            continue;
        }
        if (FLAG("--kv-unified", "-kvu")) {
            p.kv_unified = true;
            i++;
            continue;
        }
        if (FLAG("--swa-full", "--swa-full")) {
            p.swa_full = true;
            i++;
            continue;
        }
        if (FLAG("--no-op-offload", "--no-op-offload")) {
            p.no_op_offload = true;
            i++;
            continue;
        }
        if (FLAG("--no-host", "--no-host")) {
            p.no_host = true;
            i++;
            continue;
        }
        if (FLAG("--no-mmproj-offload", "--no-mmproj-offload")) {
            p.no_mmproj_offload = true;
            i++;
            continue;
        }
        if (FLAG("--embeddings", "--embedding")) {
            p.embeddings = true;
            i++;
            continue;
        }
        if (a[0] != '-') {
            if (model) {
                fprintf(stderr, "gpuwatch: fit: one model only ('%s' and '%s')\n", model, a);
                return GW_EXIT_USAGE;
            }
            model = a;
            i++;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gpuwatch: fit: option %s needs a value (or is unknown; see --help)\n",
                    a);
            return GW_EXIT_USAGE;
        }
        const char *v = argv[i + 1];
        bool ok = true;
        if (FLAG("-c", "--ctx-size"))
            ok = parse_u32(v, &p.n_ctx);
        else if (FLAG("-b", "--batch-size"))
            ok = parse_u32(v, &p.n_batch) && p.n_batch > 0;
        else if (FLAG("-ub", "--ubatch-size"))
            ok = parse_u32(v, &p.n_ubatch) && p.n_ubatch > 0;
        else if (FLAG("-np", "--parallel"))
            ok = parse_u32(v, &p.n_seq) && p.n_seq > 0;
        else if (FLAG("-ctk", "--cache-type-k"))
            ok = parse_cache_type(v, &p.type_k);
        else if (FLAG("-ctv", "--cache-type-v"))
            ok = parse_cache_type(v, &p.type_v);
        else if (FLAG("-fa", "--flash-attn")) {
            if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0)
                p.flash_attn = GW_EST_FA_ON;
            else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
                p.flash_attn = GW_EST_FA_OFF;
            else if (strcmp(v, "auto") == 0)
                p.flash_attn = GW_EST_FA_AUTO;
            else
                ok = false;
        } else if (FLAG("-ngl", "--n-gpu-layers") || FLAG("--gpu-layers", "--gpu-layers")) {
            uint32_t n = 0;
            ok = parse_u32(v, &n) || strcmp(v, "all") == 0 || strcmp(v, "auto") == 0;
            p.n_gpu_layers = (strcmp(v, "all") == 0 || strcmp(v, "auto") == 0) ? -1
                             : n > 100000                                       ? -1
                                                                                : (int32_t)n;
        } else if (FLAG("-ts", "--tensor-split")) {
            char buf[256];
            gw__strlcpy(buf, v, sizeof buf);
            uint32_t k = 0;
            for (char *save = NULL, *tok = strtok_r(buf, ",/", &save); tok && ok;
                 tok = strtok_r(NULL, ",/", &save)) {
                char *end;
                double d = strtod(tok, &end);
                if (*end || d < 0 || k >= GW_EST_MAX_DEVICES)
                    ok = false;
                else
                    p.tensor_split[k++] = d;
            }
            ts_given = true;
        } else if (FLAG("-sm", "--split-mode")) {
            if (strcmp(v, "none") == 0)
                p.split_mode = GW_EST_SPLIT_NONE;
            else if (strcmp(v, "layer") == 0)
                p.split_mode = GW_EST_SPLIT_LAYER;
            else if (strcmp(v, "row") == 0)
                p.split_mode = GW_EST_SPLIT_ROW;
            else
                ok = false;
        } else if (FLAG("-mg", "--main-gpu"))
            ok = parse_u32(v, &p.main_gpu);
        else if (FLAG("--mmproj", "-mm"))
            mmproj = v;
        else if (FLAG("--host-cpu", "--host-cpu")) {
            gw_error perr;
            if (gw_est_cpu_variant_parse(v, &p.host_cpu, &perr) != GW_OK) {
                fprintf(stderr, "gpuwatch: fit: --host-cpu: %s\n", perr.message);
                return GW_EXIT_USAGE;
            }
        }
        else if (FLAG("--gpu", "--gpu")) {
            if (p.n_devices >= GW_EST_MAX_DEVICES)
                ok = false;
            else
                ok = parse_size(v, &p.device_free[p.n_devices++]);
            gpus_given = true;
        } else if (FLAG("--overhead", "--overhead"))
            ok = parse_size(v, &p.overhead);
        else if (FLAG("--margin", "--margin"))
            ok = parse_size(v, &p.margin);
        else {
            fprintf(stderr, "gpuwatch: fit: unknown option '%s' (see 'gpuwatch fit --help')\n", a);
            return GW_EXIT_USAGE;
        }
#undef FLAG
        if (!ok) {
            fprintf(stderr, "gpuwatch: fit: bad value '%s' for %s\n", v, a);
            return GW_EXIT_USAGE;
        }
        i += 2;
    }
    (void)ts_given;
    if (!model) {
        fprintf(stderr, "gpuwatch: fit: which model? (usage: gpuwatch fit MODEL.gguf)\n");
        return GW_EXIT_USAGE;
    }
    if (cpu) {
        p.n_devices = 0;
    } else if (!gpus_given) {
        if (live_gpus(&cfg, &p) < 0)
            return GW_EXIT_ERROR;
    }

    gw_error err;
    gw_error_clear(&err);
    gw_gguf *g = NULL;
    if (gw_gguf_open(&g, model, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: fit: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    gw_est_model *m = NULL;
    if (gw_est_model_read(g, &m, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", model, err.message);
        gw_gguf_close(g);
        return GW_EXIT_ERROR;
    }
    gw_gguf_close(g);
    gw_est_mmproj mp; /* borrowed by p.mmproj until we return */
    memset(&mp, 0, sizeof mp);
    if (mmproj) {
        gw_gguf *pg = NULL;
        if (gw_gguf_open(&pg, mmproj, &err) != GW_OK) {
            fprintf(stderr, "gpuwatch: fit: --mmproj: %s\n", err.message);
            gw_est_model_free(m);
            return GW_EXIT_ERROR;
        }
        int mrc = gw_est_mmproj_read(pg, &mp, &err);
        gw_gguf_close(pg);
        if (mrc != GW_OK) {
            fprintf(stderr, "gpuwatch: fit: --mmproj %s: %s\n", mmproj, err.message);
            gw_est_model_free(m);
            return GW_EXIT_ERROR;
        }
        p.mmproj_bytes = mp.weight_bytes;
        p.mmproj = &mp;
    }
    int rc = GW_EXIT_OK;
    gw_est_result *asked = malloc(sizeof *asked);
    gw_est_plan *plan = malloc(sizeof *plan);
    if (!asked || !plan) {
        fprintf(stderr, "gpuwatch: fit: out of memory\n");
        rc = GW_EXIT_ERROR;
        goto out;
    }
    /* CPU only: the plan is the requested layout itself, estimate it once */
    if ((p.n_devices > 0 && gw_est_estimate(m, &p, asked, &err) != GW_OK) ||
        gw_est_plan_fit(m, &p, plan, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: fit: %s: %s\n", model, err.message);
        rc = GW_EXIT_ERROR;
        goto out;
    }
    if (p.n_devices == 0)
        *asked = plan->result;
    bool fits = p.n_devices == 0 || asked->fits;
    if (json) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        gw_json j;
        gw__json_init(&j, &sb, pretty);
        gw__json_object_begin(&j);
        gw__json_key(&j, "schema");
        gw__json_string(&j, "gpuwatch.fit/1");
        gw__json_key(&j, "model");
        gw__json_object_begin(&j);
        gw__json_key(&j, "path");
        gw__json_string(&j, model);
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
        gw_cli_host_cpu_json(&j, p.host_cpu, asked->host_buffer_types);
        if (mmproj)
            json_mmproj(&j, mmproj, &mp);
        gw__json_key(&j, "overhead");
        gw__json_u64(&j, p.overhead);
        gw__json_key(&j, "margin");
        gw__json_u64(&j, p.margin);
        gw__json_key(&j, "requested");
        json_result(&j, &p, asked);
        gw__json_key(&j, "plan");
        gw__json_object_begin(&j);
        gw__json_key(&j, "kind");
        gw__json_string(&j, gw_est_plan_kind_name(plan->kind));
        gw__json_key(&j, "fits");
        gw__json_bool(&j, plan->result.fits || p.n_devices == 0);
        gw__json_key(&j, "llama_flags");
        gw__json_string(&j, plan->flags);
        gw__json_key(&j, "estimate");
        json_result(&j, &plan->params, &plan->result);
        gw__json_object_end(&j);
        gw__json_object_end(&j);
        if (sb.failed) {
            fprintf(stderr, "gpuwatch: fit: out of memory\n");
            rc = GW_EXIT_ERROR;
        } else {
            fwrite(sb.data, 1, sb.len, stdout);
            fputc('\n', stdout);
        }
        gw__strbuf_release(&sb);
    } else {
        printf("%s: %s, %u layers, %s%s\n", model, m->arch_name, m->n_layer,
               p.n_devices ? "" : "CPU only",
               m->approximate ? " (approximate: no exact rules for this architecture)" : "");
        char cpu_text[160];
        printf("host CPU: %s%s\n", gw_cli_host_cpu_text(p.host_cpu, cpu_text, sizeof cpu_text),
               p.n_devices && !asked->host_buffer_types && gw_est_cpu_variant_buffer_types(p.host_cpu)
                   ? "; host weights in the GPU's pinned host buffer (--no-host to change)"
                   : "");
        if (mmproj)
            print_mmproj(mmproj, &mp);
        printf("Requested layout:\n");
        print_result(m, &p, asked);
        if (p.n_devices) {
            printf("Fits: %s\n", asked->fits ? "yes" : "no");
            printf("Best plan: %s%s\n", gw_est_plan_kind_name(plan->kind),
                   plan->result.fits ? "" : " (nothing fits on the GPUs)");
            if (plan->kind != GW_EST_PLAN_CPU)
                print_result(m, &plan->params, &plan->result);
        }
        printf("llama.cpp flags: %s\n", plan->flags);
        printf("(MiB; per-GPU overhead %.0f MiB and margin %.0f MiB are settable with "
               "--overhead/--margin)\n",
               (double)p.overhead / MIB, (double)p.margin / MIB);
    }
    if (!fits)
        rc = GW_EXIT_ERROR;
out:
    free(asked);
    free(plan);
    gw_est_model_free(m);
    return rc;
}
