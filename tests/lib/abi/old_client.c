/* old_client.c — a program built against the header libgpuwatch 1.0
 * shipped (gpuwatch-1.0.h, frozen here: never edit it), run by test_abi.py
 * against the library built now. What it does must keep working in every
 * later 1.x library: open with its own gw_config size, sample, read
 * devices through the accessors, mem_get_info, the batch finder with its
 * own options and result sizes. Prints key=value lines test_abi.py reads.
 */
#include "gpuwatch-1.0.h"

#include <stdio.h>
#include <string.h>

static gw_trial fits_below_100(uint64_t batch, void *user)
{
    (void)user;
    return batch < 100 ? GW_TRIAL_OK : GW_TRIAL_OOM;
}

int main(void)
{
    gw_error err;
    gw_error_clear(&err);
    gw_config cfg;
    gw_config_init(&cfg);
    gw_monitor *m = NULL;
    if (gw_monitor_open(&m, &cfg, &err) != GW_OK) {
        printf("error=%d %s\n", err.code, err.message);
        return 1;
    }
    gw_snapshot *s = NULL;
    if (gw_monitor_sample(m, &s, &err) != GW_OK) {
        printf("error=%d %s\n", err.code, err.message);
        return 1;
    }
    printf("library=%s header=%s devices=%zu\n", gw_version(), GW_VERSION_STRING,
           gw_snapshot_device_count(s));
    for (size_t i = 0; i < gw_snapshot_device_count(s); i++) {
        const gw_device *d = gw_snapshot_device(s, i);
        uint64_t f = 0, t = 0;
        int rc = gw_mem_get_info(m, (uint32_t)i, GW_READ_CACHED, &f, &t, &err);
        printf("gpu=%zu uuid=%s rc=%d free=%llu total=%llu\n", i,
               gw_device_text_of(d, GW_DEVICE_UUID), rc, (unsigned long long)f,
               (unsigned long long)t);
    }
    gw_snapshot_release(s);
    gw_batch_options o;
    gw_batch_options_init(&o);
    o.try_fn = fits_below_100;
    o.margin = 0;
    gw_batch_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    int rc = gw_find_batch_size(&o, &r, &err);
    printf("batch_rc=%d batch=%llu oom=%llu\n", rc, (unsigned long long)r.batch,
           (unsigned long long)r.smallest_oom);
    gw_monitor_close(m);
    return 0;
}
