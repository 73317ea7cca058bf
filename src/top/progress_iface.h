/* progress_iface.h — INTERFACE COPY, to be replaced by src/progress/progress.h
 * at merge (issue 13, helper "progress" owns the real module).
 *
 * Owns: nothing but the declarations below, copied verbatim from the shared
 * decisions (/work/issue13-decisions.md) so `top` can render job progress
 * before the progress module lands. At merge: delete this file, include
 * "progress/progress.h" in top/model.h, link gw_progress_dep, and drop the
 * two fallback definitions in top/model.c (gw__top_progress_rate/eta wrap
 * them; see the note there).
 */
#ifndef GW_TOP_PROGRESS_IFACE_H
#define GW_TOP_PROGRESS_IFACE_H

#include <stdint.h>

typedef struct gw_progress {
    char job[64];        /* job id: [A-Za-z0-9._-]{1,63} */
    char gpu[96];        /* GPU UUID ("GPU-...", "MIG-...") or index text ("0") */
    uint64_t done, total;/* total 0: unknown */
    char unit[16];       /* "", "steps", "samples", "tokens", ... */
    char message[128];   /* free text, UTF-8, control bytes refused */
    int64_t started_ns;  /* CLOCK_REALTIME ns of the job's first report for this GPU */
    uint64_t start_done; /* done at started_ns */
    int64_t updated_ns;  /* CLOCK_REALTIME ns of the last report */
    int32_t pid;         /* reporter's pid, 0 unknown */
} gw_progress;

#endif
