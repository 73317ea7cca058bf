/* request.h — what `gpuwatch place` and `gpuwatch run` share: parsing the
 * placement options, turning them into devices and a memory need, and the
 * environment / llama.cpp flags a plan implies. (The HTTP API can build the
 * same request from JSON and use the same prepare step.)
 *
 * What it owns: the option table (--mem, --model/--ctx, --layers,
 * --policy, --gpus, --devices, --margin, --gpu SPEC, --ledger, ...), the
 * given-device syntax, the conversion of an estimator result into a
 * per-layer profile, and the launch environment.
 *
 * Invariants:
 *  1. gw_place_request_apply never prints; it returns 1 (applied), 0 (not
 *     a placement option) or GW_EINVAL with err naming the option and value.
 *  2. After gw_place_request_prepare succeeds, devs/n_devs, seen/n_seen and
 *     need are filled and owned by the request until release; nothing is
 *     reserved yet.
 */
#ifndef GW_PLACE_REQUEST_H
#define GW_PLACE_REQUEST_H

#include "core/parse.h"
#include "place/ledger.h"

#include <stdio.h>

#define GW_PLACE_MAX_GIVEN 64
#define GW_PLACE_MAX_LIST 64

typedef struct gw_place_request {
    /* --- parsed options */
    gw_config cfg;          /* source options (the CLI's gw_cli_source_option fills it) */
    gw_place_opts opts;
    bool policy_set;
    bool margin_set;         /* --margin given (else a model gets the estimator's 512 MiB) */
    const char *devices_arg; /* --devices 0,2 or uuids */
    uint64_t mem;            /* --mem */
    const char *model;       /* --model FILE.gguf */
    uint32_t ctx, parallel;  /* --ctx, --parallel (model only) */
    uint32_t n_layers;       /* --layers N (uniform profile) */
    uint64_t layer_bytes, output_bytes; /* --layer-size, --output-size */
    uint64_t overhead;       /* --overhead */
    bool overhead_set;
    uint64_t host_bytes;     /* --host-size */
    bool no_partial;         /* --no-partial */
    const char *ledger_path; /* --ledger PATH */
    bool no_ledger;          /* --no-ledger */
    bool json, pretty;
    size_t n_given;
    gw_place_device given[GW_PLACE_MAX_GIVEN]; /* --gpu SPEC */

    /* --- prepared (owned) */
    gw_place_device *devs;
    size_t n_devs;
    gw_place_seen *seen;
    size_t n_seen;
    uint64_t *units;
    gw_place_need need;
    uint32_t list[GW_PLACE_MAX_LIST];
    uint32_t model_ctx;      /* the context the estimate used (for -c) */
    void *est_model;         /* gw_est_model of --model (refines each split) */
    void *est_params;        /* gw_est_params it was estimated with */
    char model_note[256];    /* "llama, 32 layers, context 8192, host CPU: ..." */
    int host_cpu;            /* gw_est_cpu_variant of --host-cpu (default: this host's) */
    bool host_cpu_set;
    unsigned host_bufts;     /* GW_EST_BUFT_* holding host weights in the estimate */
    char ledger_buf[1024];
} gw_place_request;

/* Defaults: best fit, partial allowed, the ledger at its default path. */
void gw_place_request_init(gw_place_request *r);
/* Frees what prepare allocated; the request can be prepared again. */
void gw_place_request_release(gw_place_request *r);

/* The placement options (ids from GW_PLACE_OPT_BASE), for the CLI's option
 * scanner (core/parse.h) next to each command's own table. */
#define GW_PLACE_OPT_BASE 2000
extern const gw_opt gw_place_request_opts[];

/* Applies option id of gw_place_request_opts with its value v (borrowed
 * for as long as r: --model, --devices, --ledger keep the pointer; NULL for
 * options without a value). See invariant 1; on error r may hold a partly
 * applied value of that option only. */
int gw_place_request_apply(gw_place_request *r, int id, const char *v, gw_error *err);

/* The options' help lines. */
extern const char gw_place_request_help[];

/* Reads the devices (the --gpu list, else one snapshot through gw_monitor),
 * builds the need (--model through the estimator, --layers, or --mem) and
 * resolves --devices. Errors: GW_EINVAL (no need given, two given, bad
 * --devices), errors of the estimator or the monitor; err names them. */
int gw_place_request_prepare(gw_place_request *r, gw_error *err);

/* Only the need (--model through the estimator, --layers, or --mem), for
 * devices that are not this host's (a cluster plan): r->need is filled,
 * no device is read. Errors as gw_place_request_prepare's. */
int gw_place_request_prepare_need(gw_place_request *r, gw_error *err);

/* The same on a snapshot the caller already has (the daemon's current
 * publication; borrowed for the call) instead of sampling. */
int gw_place_request_prepare_snapshot(gw_place_request *r, const gw_snapshot *snap, gw_error *err);

/* The ledger path the request uses (its --ledger, else the default), or
 * NULL with --no-ledger / no home. */
const char *gw_place_request_ledger(gw_place_request *r);

/* Parses "--gpu" text: SIZE[,free=SIZE][,total=SIZE][,name=N][,uuid=U]
 * [,vendor=nvidia|amd|intel][,state=ok|lost|stale|error][,temp=C][,limit=C]
 * [,index=N]. SIZE is the free memory (and the total unless given). */
int gw_place_parse_gpu(const char *spec, size_t position, gw_place_device *out, gw_error *err);

/* Sets devs[].pending from the request's ledger, opened read-only (a
 * missing file is an empty ledger; --no-ledger: all 0). */
int gw_place_request_pending(gw_place_request *r, gw_error *err);

/* Prints a plan for people (the lines of `gpuwatch place`); note, when not
 * empty, says what was placed ("llama, 32 layers, context 4096"). */
void gw_place_print_plan(FILE *out, const gw_plan *p, const gw_place_device *devs, const char *note);

/* The environment a plan implies, as NAME=VALUE strings in env[3]
 * (CUDA_VISIBLE_DEVICES by UUID, HIP_VISIBLE_DEVICES and
 * ONEAPI_DEVICE_SELECTOR by vendor index); returns how many were written.
 * Each string is heap-allocated (caller frees). Devices of one vendor only
 * set that vendor's variable. */
size_t gw_place_plan_env(const gw_plan *plan, const gw_place_device *devs, char *env[3]);

/* Whether argv0's basename is a llama.cpp program that takes -ngl /
 * --tensor-split / -c (llama-server, llama-cli). */
bool gw_place_is_llama(const char *argv0);

/* Builds the argument vector to execute: argv[0..argc) plus, for llama.cpp
 * programs and a layer plan, -ngl N (unless -ngl/--gpu-layers/--n-gpu-layers
 * given), --tensor-split a,b (several devices, unless -ts/--tensor-split
 * given) and -c N (when ctx > 0, unless -c/--ctx-size given). Returns a heap
 * NULL-terminated array whose added strings are heap too; free with
 * gw_place_argv_free(v, argc). NULL when out of memory. */
char **gw_place_build_argv(int argc, char **argv, const gw_plan *plan, uint32_t ctx);
void gw_place_argv_free(char **v, int argc);

#endif
