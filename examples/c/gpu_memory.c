/* gpu_memory.c — libgpuwatch from a C program: every device with its free
 * memory (cached and fresh), its architecture and whether it does bf16,
 * then a memory-pressure watcher for a moment.
 *
 * Build against the installed library:
 *   cc gpu_memory.c $(pkg-config --cflags --libs gpuwatch) -o gpu_memory
 */
#include <gpuwatch.h>

#include <stdio.h>
#include <unistd.h>

static void on_pressure(const gw_pressure_event *ev, void *user)
{
    (void)user;
    printf("pressure gpu=%u %s -> %s used=%.1f%%\n", ev->device, gw_pressure_name(ev->previous),
           gw_pressure_name(ev->level), ev->ratio * 100);
}

int main(void)
{
    gw_error err;
    gw_error_clear(&err);
    gw_monitor *m = NULL;
    if (gw_monitor_open(&m, NULL, &err) != GW_OK) {
        fprintf(stderr, "gpu_memory: %s\n", err.message);
        return 1;
    }
    gw_snapshot *s = NULL;
    if (gw_monitor_sample(m, &s, &err) != GW_OK) {
        fprintf(stderr, "gpu_memory: %s\n", err.message);
        gw_monitor_close(m);
        return 1;
    }
    printf("libgpuwatch %s, %zu devices\n", gw_version(), gw_snapshot_device_count(s));
    if (gw_snapshot_cpu_only(s))
        printf("cpu-only: %s\n", gw_snapshot_cpu_only_reason(s));
    for (size_t i = 0; i < gw_snapshot_device_count(s); i++) {
        const gw_device *d = gw_snapshot_device(s, i);
        uint64_t cached_free = 0, fresh_free = 0, total = 0;
        char why[160];
        int bf16 = gw_device_supports_bf16(m, (uint32_t)i, why, sizeof why);
        int rc = gw_mem_get_info(m, (uint32_t)i, GW_READ_CACHED, &cached_free, &total, &err);
        if (rc == GW_OK)
            rc = gw_mem_get_info(m, (uint32_t)i, GW_READ_FRESH, &fresh_free, NULL, &err);
        if (rc != GW_OK) {
            printf("gpu=%zu name=\"%s\" error=\"%s\"\n", i, gw_device_text_of(d, GW_DEVICE_NAME),
                   err.message);
            continue;
        }
        printf("gpu=%zu name=\"%s\" uuid=%s arch=%s free=%llu fresh_free=%llu total=%llu "
               "bf16=%s\n",
               i, gw_device_text_of(d, GW_DEVICE_NAME), gw_device_text_of(d, GW_DEVICE_UUID),
               *gw_device_text_of(d, GW_DEVICE_ARCH) ? gw_device_text_of(d, GW_DEVICE_ARCH) : "-",
               (unsigned long long)cached_free, (unsigned long long)fresh_free,
               (unsigned long long)total, bf16 > 0 ? "yes" : bf16 == 0 ? "no" : "unknown");
    }
    gw_snapshot_release(s);

    gw_watcher *w = NULL;
    if (gw_watcher_start(&w, m, 50, 0.90, 0.97, 0.05, on_pressure, NULL, &err) != GW_OK) {
        fprintf(stderr, "gpu_memory: %s\n", err.message);
    } else {
        usleep(200000);
        gw_watcher_stop(w);
    }
    gw_monitor_close(m);
    return 0;
}
