/* fuzz_drm_text.c — libFuzzer target for the two parsers of DRM kernel text
 * (src/backends/fdinfo.c's fdinfo parser, src/backends/drm_clients.c's
 * debugfs client list parser): any byte string must parse or be refused
 * cleanly, and what parses must respect the parsers' own limits. Built by
 * scripts/fuzz-smi.sh; its corpus (tests/amd/corpus/fuzz_drm_text) replays as
 * a normal test through fuzz/replay.c. */
#include "backends/drm_clients.h"
#include "backends/fdinfo.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw__fdinfo_client c;
    if (gw__fdinfo_parse((const char *)data, size, &c) == GW_OK) {
        if (c.n_engines > GW__FDINFO_MAX_ENGINES || c.n_regions > GW__FDINFO_MAX_REGIONS ||
            !memchr(c.pdev, '\0', sizeof c.pdev) || !memchr(c.driver_name, '\0', sizeof c.driver_name))
            abort();
        for (uint32_t i = 0; i < c.n_engines; i++)
            if (c.engines[i].capacity < 1 || !memchr(c.engines[i].name, '\0', sizeof c.engines[i].name))
                abort();
        uint64_t b;
        (void)gw__fdinfo_client_vram(&c, &b);
        (void)gw__fdinfo_client_gtt(&c, &b);
    }
    gw__drm_clients dc = {0};
    int rc = gw__drm_clients_parse(&dc, (const char *)data, size);
    if (rc == GW_EPARSE && dc.n != 0)
        abort(); /* a refused list appends nothing */
    for (size_t i = 0; i < dc.n; i++)
        if (dc.pids[i] == 0)
            abort();
    gw__drm_clients_release(&dc);
    return 0;
}
