/* fuzz_rocm_json.c — libFuzzer target for the rocm-smi / amd-smi JSON
 * parsers (src/backends/rocm_smi.c): any byte string must parse or fail
 * cleanly through all four. Built by scripts/fuzz-smi.sh; its corpus
 * (tests/smi/corpus/fuzz_rocm_json) replays as a normal test. */
#include "backends/rocm_smi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_error err;
    gw_device *d = NULL;
    size_t n = 0;
    int rc = gw__rocmsmi_parse((const char *)data, size, &d, &n, &err);
    if (rc == GW_OK) {
        for (size_t i = 0; i < n; i++)
            if (d[i].info.vendor != GW_VENDOR_AMD || d[i].sample.util_gpu > 100.0)
                abort();
        free(d);
    } else if (d || n || !err.message[0]) {
        abort();
    }
    rc = gw__amdsmi_parse_metric((const char *)data, size, &d, &n, &err);
    if (rc == GW_OK) {
        if (n > GW__ROCM_MAX_GPUS)
            abort();
        free(d);
    } else if (d || n || !err.message[0]) {
        abort();
    }
    gw__amdsmi_list_entry *e = NULL;
    rc = gw__amdsmi_parse_list((const char *)data, size, &e, &n, &err);
    if (rc == GW_OK)
        free(e);
    else if (e || n || !err.message[0])
        abort();
    gw__amdsmi_list_entry two[2] = {{.gpu = 0}, {.gpu = 1}};
    rc = gw__amdsmi_parse_static_names((const char *)data, size, two, 2, &err);
    if (rc != GW_OK && (two[0].name[0] || two[1].name[0]))
        abort(); /* an error changes nothing */
    if (memchr(two[0].name, '\0', sizeof two[0].name) == NULL)
        abort();
    return 0;
}
