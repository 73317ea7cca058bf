/* model.h — the data of one `gpuwatch top` frame, independent of any
 * terminal: per-GPU facts (from a snapshot), history series (from the
 * sampler's rings), the process table with host CPU % and memory (from
 * the snapshot's processes), sorted and filtered, recent events, and job
 * progress records.
 *
 * Owns: a reference on the frame's snapshot, the history series, the
 * process rows, a copy of the events shown, a copy of the progress records.
 *
 * Invariants:
 *  1. A model is built whole by gw__top_model_build and only read after;
 *     every pointer in it is owned by it (or by its snapshot reference) and
 *     freed by gw__top_model_release.
 *  2. A fact whose valid bit is clear is shown as "N/A" or left out, never
 *     as 0 (gpuwatch.h invariant 2); rows carry a has_* flag per figure.
 *  3. procs[] holds only the rows that pass the filter, in sort order;
 *     n_procs_total counts them all.
 *  4. Text that reaches the terminal (names, commands, messages) has had
 *     its control bytes replaced (gw__top_sanitize), so a process title
 *     cannot inject escape sequences.
 */
#ifndef GW_TOP_MODEL_H
#define GW_TOP_MODEL_H

#include "core/model.h"
#include "sampler/events.h"
#include "sampler/history.h"
#include "progress/progress.h"

#include <stdio.h>

/* Columns of the process table, in display order. */
#define GW__TOP_COLUMNS(X)          \
    X(GW__TOP_COL_PID, "PID")       \
    X(GW__TOP_COL_USER, "USER")     \
    X(GW__TOP_COL_GPU, "GPU")       \
    X(GW__TOP_COL_GPU_MEM, "GPU-MEM") \
    X(GW__TOP_COL_SM, "SM%")        \
    X(GW__TOP_COL_CPU, "CPU%")      \
    X(GW__TOP_COL_HOST_MEM, "HOST-MEM") \
    X(GW__TOP_COL_MODEL, "MODEL")   \
    X(GW__TOP_COL_COMMAND, "COMMAND")

typedef enum gw__top_column {
#define GW__TOP_COL_ENUM(id, name) id,
    GW__TOP_COLUMNS(GW__TOP_COL_ENUM)
#undef GW__TOP_COL_ENUM
    GW__TOP_COL_COUNT
} gw__top_column;

/* The model a process serves or runs, from its command line: the file
 * name of the value of -m / --model / --model-path (space or '='
 * separated), e.g. "llama-3-8b.Q4_K_M.gguf" for "llama-server -m
 * /models/llama-3-8b.Q4_K_M.gguf --port 8080". Ollama's content-addressed
 * blobs (".../blobs/sha256-...") name no model: none. Into out[cap]
 * (sanitized, truncated); "" when none. Returns out. */
char *gw__top_model_of(const char *cmdline, char *out, size_t cap);

/* Header text of a column ("GPU-MEM"); static. */
const char *gw__top_column_name(gw__top_column c);

/* One process row (a process on two GPUs is two rows). */
typedef struct gw__top_proc {
    uint32_t pid;
    uint32_t gpu;
    bool has_gpu_mem, has_sm, has_cpu, has_host_mem;
    uint64_t gpu_mem;  /* bytes */
    double sm;         /* percent */
    double cpu;        /* percent of one core over the last interval */
    uint64_t host_mem; /* resident bytes */
    char user[32];     /* "N/A" when unknown */
    char model[64];    /* a model server's word, else gw__top_model_of the command
                          line; "-" when none */
    char command[256]; /* command line, else name, else "N/A"; sanitized */
} gw__top_proc;

/* One GPU: borrowed device (from the model's snapshot) and its history. */
typedef struct gw__top_gpu {
    const gw_device *dev;
    double age_s;          /* now - sample time; < 0 when unknown */
    size_t n_procs;        /* processes on it (unfiltered) */
    double *util_hist;     /* percent, oldest first, NaN = no value */
    double *mem_hist;      /* used/total percent, same */
    size_t n_hist;         /* length of both */
    char name[96];         /* sanitized */
} gw__top_gpu;

/* How to sort and filter. */
typedef struct gw__top_view {
    gw__top_column sort;
    bool reverse;       /* against the column's natural order */
    char filter[64];    /* case-insensitive substring of pid/user/command; "" all */
} gw__top_view;

/* Where a frame's data comes from. Everything is borrowed for the call. */
typedef struct gw__top_inputs {
    gw_snapshot *snap;            /* required; the model takes a reference */
    gw__history *history;         /* may be NULL (no charts) */
    unsigned history_seconds;     /* span of the charts */
    size_t history_points;        /* points per chart (its width) */
    const gw__event *events;      /* newest last; may be NULL */
    size_t n_events;
    const gw_progress *progress;  /* may be NULL */
    size_t n_progress;
    int64_t now_ns;               /* CLOCK_REALTIME */
} gw__top_inputs;

typedef struct gw__top_model {
    gw_snapshot *snap;          /* one reference */
    int64_t now_ns;
    gw__top_gpu *gpus;
    size_t n_gpus;
    gw__top_proc *procs;
    size_t n_procs, n_procs_total;
    gw__event *events;
    size_t n_events;
    gw_progress *progress;
    size_t n_progress;
} gw__top_model;

/* Builds m from in, sorted and filtered by view. On GW_ENOMEM m is left
 * empty (released) and nothing is leaked; otherwise GW_OK. The previous
 * content of m is not looked at: release it first. */
int gw__top_model_build(gw__top_model *m, const gw__top_inputs *in, const gw__top_view *view);

/* Re-sorts and re-filters the rows already built (after a key press).
 * Rows dropped by an earlier filter are not recovered: rebuild for that. */
void gw__top_model_sort(gw__top_model *m, const gw__top_view *view);

/* Frees what m owns and zeroes it. Safe on a zeroed model. */
void gw__top_model_release(gw__top_model *m);

/* Copies src into dst (cap bytes, always terminated), replacing control
 * bytes (< 0x20, 0x7f) by '?'; with ascii, every non-ASCII byte too. */
void gw__top_sanitize(char *dst, size_t cap, const char *src, bool ascii);

/* One plain line per GPU (non-TTY mode and --once): "key=value" words,
 * no escape codes, "N/A" for what is unknown:
 *   gpu=0 name="NVIDIA ..." util=5% mem=4096/24564MiB temp=38C/87C
 *   power=35.1W/450.0W fan=30% pstate=P8 state=ok age=0.0s procs=2
 * (one line; the facts in this order, units attached). */
void gw__top_print_plain(FILE *out, const gw__top_model *m);

/* "1.5 GiB", "512 MiB" style text of a byte count into buf; returns buf. */
const char *gw__top_bytes(char *buf, size_t cap, uint64_t bytes);

#endif
