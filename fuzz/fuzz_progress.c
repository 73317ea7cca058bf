/* fuzz_progress.c — libFuzzer target for the job progress JSON parser
 * (src/progress/progress.c): any byte string must parse or fail cleanly;
 * what parses is a valid record (gw_progress_check) that survives
 * gw_progress_to_json -> gw_progress_from_json unchanged, and the file
 * name of its (job, gpu) has no '/' (it names a file in the progress
 * directory). Built by scripts/fuzz-progress.sh; its corpus
 * (tests/progress/corpus/fuzz_progress) replays as a normal test. */
#include "progress/progress.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_error err;
    gw_progress p;
    if (gw_progress_from_json((const char *)data, size, &p, &err) != GW_OK)
        return 0;
    if (!gw_progress_check(&p))
        abort();
    (void)gw_progress_rate(&p);
    (void)gw_progress_eta(&p);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_progress_to_json(&p, true, &sb);
    gw_progress back;
    if (sb.failed || gw_progress_from_json(sb.data, sb.len, &back, &err) != GW_OK ||
        memcmp(&back, &p, sizeof p) != 0)
        abort();
    gw__strbuf_release(&sb);
    char name[256];
    if (gw_progress_file_name(p.job, p.gpu, name, sizeof name, &err) != GW_OK || strchr(name, '/'))
        abort();
    return 0;
}
