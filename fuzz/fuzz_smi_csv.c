/* fuzz_smi_csv.c — libFuzzer target for the nvidia-smi CSV parsers
 * (src/backends/nvidia_smi.c): any byte string must parse or fail cleanly,
 * and a successful parse must respect the parser's own limits. Built by
 * scripts/fuzz-smi.sh; its corpus (tests/smi/corpus/fuzz_smi_csv) replays as
 * a normal test through fuzz/replay.c. */
#include "backends/nvidia_smi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_error err;
    gw_device *d = NULL;
    size_t n = 0;
    if (gw__nvsmi_parse_gpus((const char *)data, size, &d, &n, &err) == GW_OK) {
        if (n > GW__NVSMI_MAX_GPUS)
            abort();
        for (size_t i = 0; i < n; i++)
            if (d[i].info.vendor != GW_VENDOR_NVIDIA || d[i].sample.util_gpu > 100.0 ||
                memchr(d[i].info.name, '\0', sizeof d[i].info.name) == NULL)
                abort();
        free(d);
    } else if (d || n || !err.message[0]) {
        abort(); /* a failure leaves nothing behind and says why */
    }
    gw__nvsmi_app *a = NULL;
    if (gw__nvsmi_parse_apps((const char *)data, size, &a, &n, &err) == GW_OK) {
        for (size_t i = 0; i < n; i++)
            if (a[i].pid == 0 || !a[i].gpu_uuid[0])
                abort();
        free(a);
    } else if (a || n || !err.message[0]) {
        abort();
    }
    return 0;
}
