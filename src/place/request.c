/* request.c — the placement request shared by `place` and `run` (see
 * request.h): option parsing, devices (given or sampled), the memory need
 * (plain size, uniform layer profile, or a GGUF model through the
 * estimator) and the launch environment and llama.cpp flags.
 *
 * A GGUF model becomes a per-layer profile this way: one estimate with a
 * single CUDA device and every layer offloaded gives the KV cache, the
 * compute buffer and the host part; unit il = the layer's CUDA weight bytes
 * + its share of the KV cache by width (KV heads x cache length, the window
 * length for sliding-window layers), the output
 * unit = the output layer's weights (+ the tied token_embd copy); overhead
 * per device = compute buffer + the estimator's per-GPU overhead (unless
 * --overhead); host = what the estimate leaves on the host. Each split the
 * planner then chooses is re-estimated with exactly that split (refine_model),
 * so the expected use per GPU is the estimator's figure and a GPU whose real
 * compute buffer is larger than the profile said is never over-committed.
 */
#include "place/request.h"
#include "core/parse.h"
#include "estimate/estimate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char gw_place_request_help[] =
    "Memory need (one of):\n"
    "  --mem SIZE            a plain size (20GiB, 512MiB, 1.5G)\n"
    "  --model FILE.gguf     estimate a llama.cpp model (with --ctx N, --parallel N)\n"
    "  --layers N --layer-size SIZE [--output-size SIZE]\n"
    "                        a per-layer profile: N repeating layers + the output layer\n"
    "  --overhead SIZE       bytes per used GPU beyond its layers (model default: compute\n"
    "                        buffer + 512 MiB; else 0)\n"
    "  --host-size SIZE      bytes that always stay on the host (informational)\n"
    "  --host-cpu VARIANT    with --model: llama.cpp's CPU backend variant for the host\n"
    "                        part (default: the one llama.cpp loads here; see gpuwatch\n"
    "                        fit --help)\n"
    "  --no-partial          refuse instead of leaving layers on the host\n"
    "Placement:\n"
    "  --policy P            best-fit (default: one GPU first, smallest that fits),\n"
    "                        spread, pack, list\n"
    "  --gpus N              use exactly N GPUs\n"
    "  --devices LIST        only these GPUs, in this order (indexes or UUIDs; policy list)\n"
    "  --margin SIZE         keep SIZE free on every GPU (default 0; 512 MiB with --model)\n"
    "  --max-temp C          skip GPUs at or over C degrees (default: each GPU's slowdown)\n"
    "  --gpu SPEC            plan on a given GPU instead of this host's; repeatable.\n"
    "                        SPEC = FREE[,total=SIZE][,name=N][,uuid=U][,vendor=V]\n"
    "                        [,state=ok|lost|stale][,temp=C][,limit=C]\n"
    "Ledger:\n"
    "  --ledger PATH         reservations ledger (env GPUWATCH_LEDGER; default\n"
    "                        /var/lib/gpuwatch/ledger.db for root, else\n"
    "                        $XDG_STATE_HOME/gpuwatch/ledger.db or ~/.local/state/...)\n"
    "  --no-ledger           ignore reservations\n";

void gw_place_request_init(gw_place_request *r)
{
    memset(r, 0, sizeof *r);
    gw_config_init(&r->cfg);
    gw_place_opts_init(&r->opts);
}

void gw_place_request_release(gw_place_request *r)
{
    gw_est_model_free(r->est_model);
    free(r->est_params);
    r->est_model = NULL;
    r->est_params = NULL;
    free(r->devs);
    free(r->seen);
    free(r->units);
    r->devs = NULL;
    r->seen = NULL;
    r->units = NULL;
    r->n_devs = r->n_seen = 0;
    memset(&r->need, 0, sizeof r->need);
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out, gw_error *err)
{
    uint64_t v;
    int rc = gw__parse_uint(s, lo, hi, &v, err);
    if (rc == GW_OK)
        *out = (uint32_t)v;
    return rc;
}

/* Degrees C as millidegrees; -99.999..999.999. */
static int parse_celsius(const char *s, int32_t *mc, gw_error *err)
{
    double c;
    int rc = gw__parse_decimal(s, -99.999, 999.999, &c, err);
    if (rc == GW_OK)
        *mc = (int32_t)(c * 1000.0);
    return rc;
}

int gw_place_parse_gpu(const char *spec, size_t position, gw_place_device *d, gw_error *err)
{
    memset(d, 0, sizeof *d);
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return gw__error_set(err, GW_EINVAL, "--gpu '%.40s...': too long", spec);
    gw__strlcpy(buf, spec, sizeof buf);
    snprintf(d->uuid, sizeof d->uuid, "GPU-given-%zu", position);
    d->vendor = GW_VENDOR_NVIDIA;
    d->index = d->source_index = (uint32_t)position;
    d->state = GW_DEVICE_OK;
    d->has_free = true;
    bool total_set = false;
    char *save = NULL;
    int k = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
        char *eq = strchr(tok, '=');
        gw_error why;
        gw_error_clear(&why);
        if (k == 0 && !eq) {
            if (gw__parse_size(tok, &d->free, &why) != GW_OK)
                return gw__error_set(err, GW_EINVAL, "--gpu '%s': %s", spec, why.message);
            continue;
        }
        if (!eq)
            return gw__error_set(err, GW_EINVAL, "--gpu '%s': '%s' is not KEY=VALUE", spec, tok);
        *eq = '\0';
        const char *key = tok, *v = eq + 1;
        int rc = GW_OK;
        if (strcmp(key, "free") == 0) {
            rc = gw__parse_size(v, &d->free, &why);
        } else if (strcmp(key, "total") == 0) {
            rc = gw__parse_size(v, &d->total, &why);
            total_set = true;
        } else if (strcmp(key, "name") == 0) {
            gw__strlcpy(d->name, v, sizeof d->name);
        } else if (strcmp(key, "uuid") == 0) {
            if (!*v)
                rc = gw__error_set(&why, GW_EINVAL, "empty uuid");
            gw__strlcpy(d->uuid, v, sizeof d->uuid);
        } else if (strcmp(key, "index") == 0) {
            rc = parse_u32(v, 0, UINT32_MAX, &d->source_index, &why);
        } else if (strcmp(key, "vendor") == 0) {
            if (!gw__vendor_parse(v, &d->vendor))
                rc = gw__error_set(&why, GW_EINVAL, "'%s' is not nvidia, amd or intel", v);
        } else if (strcmp(key, "state") == 0) {
            if (!gw__device_state_parse(v, &d->state))
                rc = gw__error_set(&why, GW_EINVAL, "'%s' is not ok, lost, stale or error", v);
        } else if (strcmp(key, "temp") == 0) {
            rc = parse_celsius(v, &d->temp_mc, &why);
            d->has_temp = true;
        } else if (strcmp(key, "limit") == 0) {
            rc = parse_celsius(v, &d->temp_limit_mc, &why);
            d->has_temp_limit = true;
        } else {
            return gw__error_set(err, GW_EINVAL, "--gpu '%s': unknown key '%s'", spec, key);
        }
        if (rc != GW_OK)
            return gw__error_set(err, GW_EINVAL, "--gpu '%s': %s: %s", spec, key, why.message);
    }
    if (k == 0)
        return gw__error_set(err, GW_EINVAL, "--gpu: empty specification");
    if (!total_set)
        d->total = d->free;
    if (d->free > d->total)
        return gw__error_set(err, GW_EINVAL, "--gpu '%s': free is larger than total", spec);
    return GW_OK;
}

enum {
    O_MEM = GW_PLACE_OPT_BASE, O_MODEL, O_CTX, O_PARALLEL, O_LAYERS, O_LAYER_SIZE, O_OUTPUT_SIZE,
    O_OVERHEAD, O_HOST_SIZE, O_POLICY, O_GPUS, O_DEVICES, O_MARGIN, O_MAX_TEMP, O_GPU, O_LEDGER,
    O_HOST_CPU, O_NO_PARTIAL, O_NO_LEDGER, O_JSON, O_PRETTY
};

const gw_opt gw_place_request_opts[] = {
    {"--mem", NULL, "SIZE", O_MEM},
    {"--model", NULL, "FILE.gguf", O_MODEL},
    {"--ctx", NULL, "N", O_CTX},
    {"--parallel", NULL, "N", O_PARALLEL},
    {"--layers", NULL, "N", O_LAYERS},
    {"--layer-size", NULL, "SIZE", O_LAYER_SIZE},
    {"--output-size", NULL, "SIZE", O_OUTPUT_SIZE},
    {"--overhead", NULL, "SIZE", O_OVERHEAD},
    {"--host-size", NULL, "SIZE", O_HOST_SIZE},
    {"--policy", NULL, "P", O_POLICY},
    {"--gpus", NULL, "N", O_GPUS},
    {"--devices", NULL, "LIST", O_DEVICES},
    {"--margin", NULL, "SIZE", O_MARGIN},
    {"--max-temp", NULL, "C", O_MAX_TEMP},
    {"--gpu", NULL, "SPEC", O_GPU},
    {"--ledger", NULL, "PATH", O_LEDGER},
    {"--host-cpu", NULL, "VARIANT", O_HOST_CPU},
    {"--no-partial", NULL, NULL, O_NO_PARTIAL},
    {"--no-ledger", NULL, NULL, O_NO_LEDGER},
    {"--json", NULL, NULL, O_JSON},
    {"--pretty", NULL, NULL, O_PRETTY},
    {NULL, NULL, NULL, 0},
};

/* A size option that must not be 0 when nonzero is true. */
static int size_opt(const char *v, uint64_t *out, bool nonzero, gw_error *why)
{
    int rc = gw__parse_size(v, out, why);
    if (rc == GW_OK && nonzero && *out == 0)
        rc = gw__error_set(why, GW_EINVAL, "'%s' is zero", v);
    return rc;
}

int gw_place_request_apply(gw_place_request *r, int id, const char *v, gw_error *err)
{
    gw_error why;
    gw_error_clear(&why);
    int rc = GW_OK;
    switch (id) {
    case O_NO_PARTIAL: r->no_partial = true; break;
    case O_NO_LEDGER: r->no_ledger = true; break;
    case O_JSON: r->json = true; break;
    case O_PRETTY: r->pretty = true; break;
    case O_MEM: rc = size_opt(v, &r->mem, true, &why); break;
    case O_MODEL: r->model = v; break;
    case O_CTX: rc = parse_u32(v, 0, UINT32_MAX, &r->ctx, &why); break;
    case O_PARALLEL: rc = parse_u32(v, 1, UINT32_MAX, &r->parallel, &why); break;
    case O_LAYERS: rc = parse_u32(v, 1, 99999, &r->n_layers, &why); break;
    case O_LAYER_SIZE: rc = size_opt(v, &r->layer_bytes, true, &why); break;
    case O_OUTPUT_SIZE: rc = size_opt(v, &r->output_bytes, false, &why); break;
    case O_OVERHEAD:
        rc = size_opt(v, &r->overhead, false, &why);
        r->overhead_set = true;
        break;
    case O_HOST_SIZE: rc = size_opt(v, &r->host_bytes, false, &why); break;
    case O_POLICY:
        if (!gw_place_policy_parse(v, &r->opts.policy))
            rc = gw__error_set(&why, GW_EINVAL, "'%s' is not best-fit, spread, pack or list", v);
        r->policy_set = true;
        break;
    case O_GPUS: rc = parse_u32(v, 1, 4096, &r->opts.gpus, &why); break;
    case O_DEVICES: r->devices_arg = v; break;
    case O_MARGIN:
        rc = size_opt(v, &r->opts.margin, false, &why);
        r->margin_set = true;
        break;
    case O_MAX_TEMP:
        rc = parse_celsius(v, &r->opts.max_temp_mc, &why);
        if (rc == GW_OK && r->opts.max_temp_mc == 0)
            rc = gw__error_set(&why, GW_EINVAL, "'%s' is zero", v);
        break;
    case O_GPU:
        if (r->n_given >= GW_PLACE_MAX_GIVEN)
            return gw__error_set(err, GW_EINVAL, "--gpu: at most %d given GPUs", GW_PLACE_MAX_GIVEN);
        rc = gw_place_parse_gpu(v, r->n_given, &r->given[r->n_given], err);
        if (rc)
            return rc;
        r->n_given++;
        break;
    case O_LEDGER: r->ledger_path = v; break;
    case O_HOST_CPU: {
        gw_est_cpu_variant cv;
        if (gw_est_cpu_variant_parse(v, &cv, err) != GW_OK)
            return GW_EINVAL;
        r->host_cpu = (int)cv;
        r->host_cpu_set = true;
        break;
    }
    default: return 0;
    }
    if (rc != GW_OK) {
        const char *name = "?";
        for (const gw_opt *o = gw_place_request_opts; o->name; o++)
            if (o->id == id)
                name = o->name;
        return gw__error_set(err, GW_EINVAL, "%s: %s", name, why.message);
    }
    return 1;
}

const char *gw_place_request_ledger(gw_place_request *r)
{
    if (r->no_ledger)
        return NULL;
    if (r->ledger_path && *r->ledger_path)
        return r->ledger_path;
    return gw_ledger_default_path(r->ledger_buf, sizeof r->ledger_buf);
}

/* --------------------------------------------------------------- devices */

static int snapshot_devices(gw_place_request *r, const gw_snapshot *snap, gw_error *err)
{
    size_t n = snap->n_devices;
    r->devs = calloc(n ? n : 1, sizeof *r->devs);
    r->seen = calloc(snap->n_processes ? snap->n_processes : 1, sizeof *r->seen);
    if (!r->devs || !r->seen)
        return gw__error_set(err, GW_ENOMEM, "place: out of memory");
    gw_place_devices_from_snapshot(snap, r->devs);
    r->n_devs = n;
    r->n_seen = gw_place_seen_from_snapshot(snap, r->seen);
    return GW_OK;
}

static int sample_devices(gw_place_request *r, gw_error *err)
{
    gw_monitor *mon;
    int rc = gw_monitor_open(&mon, &r->cfg, err);
    if (rc)
        return rc;
    gw_snapshot *snap;
    rc = gw_monitor_sample(mon, &snap, err);
    gw_monitor_close(mon);
    if (rc)
        return rc;
    rc = snapshot_devices(r, snap, err);
    gw_snapshot_release(snap);
    return rc;
}

static int resolve_list(gw_place_request *r, gw_error *err)
{
    if (!r->devices_arg)
        return GW_OK;
    if (r->policy_set && r->opts.policy != GW_PLACE_LIST)
        return gw__error_set(err, GW_EINVAL, "--devices goes with the list policy, not %s",
                             gw_place_policy_name(r->opts.policy));
    char buf[2048];
    gw__strlcpy(buf, r->devices_arg, sizeof buf);
    size_t k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (k >= GW_PLACE_MAX_LIST)
            return gw__error_set(err, GW_EINVAL, "--devices: at most %d devices", GW_PLACE_MAX_LIST);
        uint32_t idx;
        bool found = false;
        for (size_t d = 0; d < r->n_devs && !found; d++)
            if (strcmp(r->devs[d].uuid, tok) == 0) {
                r->list[k++] = (uint32_t)d;
                found = true;
            }
        gw_error why;
        if (!found && parse_u32(tok, 0, UINT32_MAX, &idx, &why) == GW_OK)
            for (size_t d = 0; d < r->n_devs && !found; d++)
                if (r->devs[d].index == idx) {
                    r->list[k++] = (uint32_t)d;
                    found = true;
                }
        if (!found)
            return gw__error_set(err, GW_EINVAL, "--devices: no GPU '%s' here (%zu GPU%s)", tok,
                                 r->n_devs, r->n_devs == 1 ? "" : "s");
    }
    if (k == 0)
        return gw__error_set(err, GW_EINVAL, "--devices: empty list");
    r->opts.policy = GW_PLACE_LIST;
    r->opts.list = r->list;
    r->opts.n_list = k;
    return GW_OK;
}

/* ------------------------------------------------------------------ need */

/* gw_place_refine_fn for a model: the estimator's own figures for the split
 * the planner chose (its per-device compute buffers differ across a split,
 * which a layer profile cannot say). */
static int refine_model(void *ctx, const gw_place_device *devs, const gw_plan *plan,
                        uint64_t *bytes, gw_error *err)
{
    (void)devs;
    const gw_place_request *r = ctx;
    if (plan->n_used > GW_EST_MAX_DEVICES) { /* beyond the estimator: keep the profile's */
        for (size_t i = 0; i < plan->n_used; i++)
            bytes[i] = plan->used[i].bytes;
        return GW_OK;
    }
    gw_est_params *p = malloc(sizeof *p);
    gw_est_result *res = malloc(sizeof *res);
    if (!p || !res) {
        free(p);
        free(res);
        return gw__error_set(err, GW_ENOMEM, "place: out of memory");
    }
    memcpy(p, r->est_params, sizeof *p);
    p->n_devices = (uint32_t)plan->n_used;
    p->backend = GW_EST_CUDA;
    p->split_mode = GW_EST_SPLIT_LAYER;
    p->main_gpu = 0;
    p->margin = 0;
    p->n_gpu_layers = (int32_t)plan->ngl;
    for (size_t i = 0; i < GW_EST_MAX_DEVICES; i++) {
        p->tensor_split[i] = i < plan->n_used ? (double)plan->used[i].n_units : 0;
        p->device_free[i] = i < plan->n_used ? plan->used[i].usable : 0;
    }
    int rc = gw_est_estimate(r->est_model, p, res, err);
    if (rc == GW_OK)
        for (size_t i = 0; i < plan->n_used; i++)
            bytes[i] = res->device[i].total;
    free(p);
    free(res);
    return rc;
}

static int need_from_model(gw_place_request *r, gw_error *err)
{
    gw_gguf *g = NULL;
    int rc = gw_gguf_open(&g, r->model, err);
    if (rc)
        return rc;
    gw_est_model *m = NULL;
    rc = gw_est_model_read(g, &m, err);
    gw_gguf_close(g);
    if (rc) {
        char msg[sizeof err->message];
        gw__strlcpy(msg, err->message, sizeof msg);
        return gw__error_set(err, rc, "%s: %s", r->model, msg);
    }
    gw_est_params p;
    gw_est_params_init(&p);
    p.n_ctx = r->ctx;
    if (r->host_cpu_set)
        p.host_cpu = (gw_est_cpu_variant)r->host_cpu;
    r->host_cpu = (int)p.host_cpu;
    if (r->parallel)
        p.n_seq = r->parallel;
    p.n_devices = 1;
    p.backend = GW_EST_CUDA;
    p.device_free[0] = UINT64_MAX / 4;
    p.margin = 0;
    p.n_gpu_layers = -1;
    gw_est_result *res = malloc(sizeof *res);
    if (!res) {
        gw_est_model_free(m);
        return gw__error_set(err, GW_ENOMEM, "place: out of memory");
    }
    rc = gw_est_estimate(m, &p, res, err);
    if (rc) {
        free(res);
        gw_est_model_free(m);
        return rc;
    }
    size_t n = (size_t)m->n_layer + 1;
    r->units = calloc(n, sizeof *r->units);
    if (!r->units) {
        free(res);
        gw_est_model_free(m);
        return gw__error_set(err, GW_ENOMEM, "place: out of memory");
    }
    /* the KV cache shared out by each layer's width: KV heads x cache length
     * (the sliding-window length for SWA layers) */
    uint64_t kv = res->device[0].kv, given = 0;
    double wsum = 0;
    for (uint32_t il = 0; il < m->n_layer && il < GW_EST_MAX_LAYERS; il++)
        wsum += (double)(m->n_head_kv[il] ? m->n_head_kv[il] : 1) *
                (double)(m->n_swa && m->swa_layer[il] ? res->kv_size_swa : res->kv_size);
    for (uint32_t il = 0; il < m->n_layer; il++) {
        double w = il < GW_EST_MAX_LAYERS
                       ? (double)(m->n_head_kv[il] ? m->n_head_kv[il] : 1) *
                             (double)(m->n_swa && m->swa_layer[il] ? res->kv_size_swa : res->kv_size)
                       : 0;
        uint64_t share = wsum > 0 ? (uint64_t)((double)kv * w / wsum) : 0;
        if (share > kv - given || il + 1 == m->n_layer)
            share = kv - given;
        given += share;
        r->units[il] = m->layer_bytes_cuda[1 + il] + share;
    }
    r->units[m->n_layer] = m->layer_bytes_cuda[1 + m->n_layer] + (m->has_output ? 0 : m->embd_bytes_cuda);
    r->need.n_units = n;
    r->need.unit_bytes = r->units;
    r->need.overhead = r->overhead_set ? r->overhead : res->device[0].compute + res->device[0].overhead;
    r->need.host_bytes = r->host_bytes ? r->host_bytes : res->host.total;
    r->model_ctx = res->n_ctx;
    r->host_bufts = res->host_buffer_types;
    char bufts[64];
    gw_est_buffer_types_str(gw_est_cpu_variant_buffer_types(p.host_cpu), ", ", bufts, sizeof bufts);
    snprintf(r->model_note, sizeof r->model_note, "%s, %u layers, context %u%s, host CPU: %s (%s)",
             m->arch_name, m->n_layer, res->n_ctx, m->approximate ? " (approximate)" : "",
             gw_est_cpu_variant_name(p.host_cpu), bufts[0] ? bufts : "plain CPU buffers");
    free(res);
    if (r->overhead_set) { /* the user's overhead replaces the estimator's figures */
        gw_est_model_free(m);
        return GW_OK;
    }
    gw_est_params *kept = malloc(sizeof *kept);
    if (!kept) {
        gw_est_model_free(m);
        return gw__error_set(err, GW_ENOMEM, "place: out of memory");
    }
    memcpy(kept, &p, sizeof p);
    r->est_model = m;
    r->est_params = kept;
    r->need.refine = refine_model;
    r->need.refine_ctx = r;
    return GW_OK;
}

static int build_need(gw_place_request *r, gw_error *err)
{
    int kinds = (r->mem > 0) + (r->model != NULL) + (r->n_layers > 0);
    if (kinds == 0)
        return gw__error_set(err, GW_EINVAL, "no memory need: give --mem SIZE, --model FILE.gguf or "
                                             "--layers N --layer-size SIZE");
    if (kinds > 1)
        return gw__error_set(err, GW_EINVAL, "give only one of --mem, --model and --layers");
    if (r->host_cpu_set && !r->model)
        return gw__error_set(err, GW_EINVAL, "--host-cpu needs --model");
    if ((r->ctx || r->parallel) && !r->model)
        return gw__error_set(err, GW_EINVAL, "--ctx and --parallel need --model");
    memset(&r->need, 0, sizeof r->need);
    r->need.allow_partial = !r->no_partial;
    if (r->model) {
        if (!r->margin_set && r->opts.margin == 0)
            r->opts.margin = GW_EST_DEFAULT_MARGIN; /* as `gpuwatch fit` does */
        return need_from_model(r, err);
    }
    r->need.overhead = r->overhead;
    r->need.host_bytes = r->host_bytes;
    if (r->mem) {
        r->need.size = r->mem;
        return GW_OK;
    }
    if (!r->layer_bytes)
        return gw__error_set(err, GW_EINVAL, "--layers needs --layer-size");
    size_t n = (size_t)r->n_layers + 1;
    r->units = calloc(n, sizeof *r->units);
    if (!r->units)
        return gw__error_set(err, GW_ENOMEM, "place: out of memory");
    for (size_t j = 0; j + 1 < n; j++)
        r->units[j] = r->layer_bytes;
    r->units[n - 1] = r->output_bytes ? r->output_bytes : r->layer_bytes;
    r->need.n_units = n;
    r->need.unit_bytes = r->units;
    return GW_OK;
}

int gw_place_request_prepare_need(gw_place_request *r, gw_error *err)
{
    gw_place_request_release(r);
    if (r->n_layers == 0 && (r->layer_bytes || r->output_bytes))
        return gw__error_set(err, GW_EINVAL, "--layer-size and --output-size need --layers N");
    int rc = build_need(r, err);
    if (rc)
        gw_place_request_release(r);
    return rc;
}

int gw_place_request_prepare(gw_place_request *r, gw_error *err)
{
    return gw_place_request_prepare_snapshot(r, NULL, err);
}

int gw_place_request_prepare_snapshot(gw_place_request *r, const gw_snapshot *snap, gw_error *err)
{
    int rc = gw_place_request_prepare_need(r, err);
    if (rc)
        return rc;
    if (r->n_given) {
        r->devs = calloc(r->n_given, sizeof *r->devs);
        if (!r->devs) {
            rc = gw__error_set(err, GW_ENOMEM, "place: out of memory");
            goto fail;
        }
        memcpy(r->devs, r->given, r->n_given * sizeof *r->devs);
        r->n_devs = r->n_given;
        for (size_t a = 0; a < r->n_given; a++)
            for (size_t b = 0; b < a; b++)
                if (strcmp(r->devs[a].uuid, r->devs[b].uuid) == 0) {
                    rc = gw__error_set(err, GW_EINVAL, "--gpu: uuid '%s' given twice", r->devs[a].uuid);
                    goto fail;
                }
    } else {
        rc = snap ? snapshot_devices(r, snap, err) : sample_devices(r, err);
        if (rc)
            goto fail;
    }
    rc = resolve_list(r, err);
    if (rc)
        goto fail;
    return GW_OK;
fail:
    gw_place_request_release(r);
    return rc;
}

/* ------------------------------------------------------------ launching */

size_t gw_place_plan_env(const gw_plan *plan, const gw_place_device *devs, char *env[3])
{
    static const struct {
        gw_vendor vendor;
        const char *name;
        const char *prefix;
    } vars[] = {
        {GW_VENDOR_NVIDIA, "CUDA_VISIBLE_DEVICES", ""},
        {GW_VENDOR_AMD, "HIP_VISIBLE_DEVICES", ""},
        {GW_VENDOR_INTEL, "ONEAPI_DEVICE_SELECTOR", "level_zero:"},
    };
    size_t k = 0;
    for (size_t v = 0; v < GW__ARRAY_LEN(vars); v++) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        bool any = false;
        for (size_t i = 0; i < plan->n_used; i++) {
            const gw_place_device *d = &devs[plan->used[i].device];
            if (d->vendor != vars[v].vendor)
                continue;
            gw__strbuf_puts(&sb, any ? "," : "");
            if (!any)
                gw__strbuf_printf(&sb, "%s=%s", vars[v].name, vars[v].prefix);
            if (d->vendor == GW_VENDOR_NVIDIA && strncmp(d->uuid, "index:", 6) != 0)
                gw__strbuf_puts(&sb, d->uuid);
            else
                gw__strbuf_printf(&sb, "%u", d->source_index);
            any = true;
        }
        if (any && !sb.failed)
            env[k++] = gw__strbuf_detach(&sb, NULL);
        gw__strbuf_release(&sb);
    }
    return k;
}

bool gw_place_is_llama(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    return strcmp(base, "llama-server") == 0 || strcmp(base, "llama-cli") == 0;
}

static bool has_flag(int argc, char **argv, const char *const *names)
{
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; names[k]; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(argv[i], names[k], n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
                return true;
        }
    return false;
}

void gw_place_argv_free(char **v, int argc)
{
    if (!v)
        return;
    for (int i = argc; v[i]; i++)
        free(v[i]);
    free(v);
}

char **gw_place_build_argv(int argc, char **argv, const gw_plan *plan, uint32_t ctx)
{
    char **v = calloc((size_t)argc + 7, sizeof *v);
    if (!v)
        return NULL;
    for (int i = 0; i < argc; i++)
        v[i] = argv[i];
    if (argc == 0 || !gw_place_is_llama(argv[0]) || !plan->fits)
        return v;
    static const char *const ngl_names[] = {"-ngl", "--gpu-layers", "--n-gpu-layers", NULL};
    static const char *const ts_names[] = {"-ts", "--tensor-split", NULL};
    static const char *const c_names[] = {"-c", "--ctx-size", NULL};
    int k = argc;
    char num[32];
    bool oom = false;
    if (plan->n_units && !has_flag(argc, argv, ngl_names)) {
        snprintf(num, sizeof num, "%u", plan->ngl);
        v[k++] = strdup("-ngl");
        v[k++] = strdup(num);
    }
    if (plan->n_units && plan->n_used > 1 && !has_flag(argc, argv, ts_names)) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        for (size_t i = 0; i < plan->n_used; i++)
            gw__strbuf_printf(&sb, "%s%u", i ? "," : "", plan->used[i].n_units);
        v[k++] = strdup("--tensor-split");
        v[k] = gw__strbuf_detach(&sb, NULL);
        oom |= !v[k++];
    }
    if (ctx && !has_flag(argc, argv, c_names)) {
        snprintf(num, sizeof num, "%u", ctx);
        v[k++] = strdup("-c");
        v[k++] = strdup(num);
    }
    for (int i = argc; i < k; i++)
        oom |= !v[i];
    if (oom) {
        for (int i = argc; i < k; i++)
            free(v[i]);
        free(v);
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------ output */

int gw_place_request_pending(gw_place_request *r, gw_error *err)
{
    for (size_t i = 0; i < r->n_devs; i++)
        r->devs[i].pending = 0;
    const char *path = gw_place_request_ledger(r);
    if (!path)
        return GW_OK;
    gw_ledger_opts lo;
    gw_ledger_opts_init(&lo);
    lo.path = path;
    lo.read_only = true;
    lo.proc_root = r->cfg.proc_root;
    gw_ledger *l;
    int rc = gw_ledger_open(&l, &lo, err);
    if (rc)
        return rc;
    rc = gw_ledger_apply_pending(l, r->devs, r->n_devs, r->seen, r->n_seen, err);
    gw_ledger_close(l);
    return rc;
}

void gw_place_print_plan(FILE *out, const gw_plan *p, const gw_place_device *devs, const char *note)
{
    char a[32], b[32];
    if (!p->fits) {
        fprintf(out, "Does not fit (%s): %s\n", gw_place_policy_name(p->policy), p->reason);
        return;
    }
    fprintf(out, "Plan (%s)%s%s: %zu GPU%s, %s on GPUs", gw_place_policy_name(p->policy),
            note && *note ? " for " : "", note ? note : "", p->n_used, p->n_used == 1 ? "" : "s",
            gw_place_format_size(p->gpu_bytes, a, sizeof a));
    if (p->n_units)
        fprintf(out, ", %u of %u layers offloaded", p->ngl, p->n_units);
    fprintf(out, "\n");
    for (size_t i = 0; i < p->n_used; i++) {
        const gw_plan_device *u = &p->used[i];
        const gw_place_device *d = &devs[u->device];
        fprintf(out, "  GPU %u  %-24s %s of %s usable", d->index, d->name[0] ? d->name : d->uuid,
                gw_place_format_size(u->bytes, a, sizeof a),
                gw_place_format_size(u->usable, b, sizeof b));
        if (p->n_units)
            fprintf(out, "  layers %u-%u (%u)", u->first_unit, u->first_unit + u->n_units - 1,
                    u->n_units);
        fprintf(out, "\n");
    }
    if (p->n_units) {
        fprintf(out, "  llama.cpp: -ngl %u", p->ngl);
        if (p->n_used > 1) {
            fprintf(out, " --tensor-split ");
            for (size_t i = 0; i < p->n_used; i++)
                fprintf(out, "%s%u", i ? "," : "", p->used[i].n_units);
        }
        fprintf(out, "\n");
    }
    if (p->host_bytes || p->partial)
        fprintf(out, "  host: %s%s%s\n", gw_place_format_size(p->host_bytes, a, sizeof a),
                p->partial ? "; " : "", p->partial ? p->reason : "");
    for (size_t i = 0; i < p->n_excluded; i++)
        fprintf(out, "  skipped GPU %u: %s\n", devs[p->excluded[i].device].index,
                p->excluded[i].reason);
}
