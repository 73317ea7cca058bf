/* lib_memget.c — gw_mem_get_info per call from C, through the shared
 * library as an application links it (bench/lib_bench.py runs it).
 *
 * Usage: lib_memget N   (the fake NVML's scenario comes from the
 * environment). Prints "cached_ns X fresh_ns Y table_ns Z" per call, each
 * the best of 5 rounds of N calls over the devices in turn.
 */
#include "gpuwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static volatile uint64_t sink;

/* ns per gw_mem_get_info call in mode over n calls: best of 5 rounds. */
static double time_calls(gw_monitor *m, uint32_t ndev, gw_read_mode mode, long n)
{
    double best = 1e300;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            uint64_t f = 0, t = 0;
            if (gw_mem_get_info(m, (uint32_t)(i % ndev), mode, &f, &t, NULL) != GW_OK)
                abort();
            sink += f;
        }
        double per = (now_ns() - t0) / (double)n;
        best = per < best ? per : best;
    }
    return best;
}

/* ns per seqlock read of the memory table (what the Python binding does). */
static double time_table(gw_monitor *m, uint32_t ndev, long n)
{
    const uint64_t *t = gw_monitor_memory_table(m, NULL);
    double best = 1e300;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            size_t d = (size_t)(i % ndev);
            uint64_t seq, f;
            do {
                seq = __atomic_load_n(&t[0], __ATOMIC_ACQUIRE);
                f = __atomic_load_n(&t[3 + 3 * d], __ATOMIC_ACQUIRE);
            } while ((seq & 1) || __atomic_load_n(&t[0], __ATOMIC_RELAXED) != seq);
            sink += f;
        }
        double per = (now_ns() - t0) / (double)n;
        best = per < best ? per : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    gw_config cfg;
    gw_config_init(&cfg);
    cfg.sources = "nvml";
    cfg.processes = false;
    gw_monitor *m = NULL;
    gw_error err;
    gw_snapshot *s = NULL;
    if (gw_monitor_open(&m, &cfg, &err) != GW_OK || gw_monitor_sample(m, &s, &err) != GW_OK) {
        fprintf(stderr, "lib_memget: %s\n", err.message);
        return 1;
    }
    uint32_t ndev = (uint32_t)gw_snapshot_device_count(s);
    gw_snapshot_release(s);
    if (ndev == 0) {
        fprintf(stderr, "lib_memget: no device\n");
        return 1;
    }
    double cached = time_calls(m, ndev, GW_READ_CACHED, n);
    double fresh = time_calls(m, ndev, GW_READ_FRESH, n / 10 ? n / 10 : 1);
    double table = time_table(m, ndev, n);
    printf("devices %u cached_ns %.1f fresh_ns %.1f table_ns %.1f\n", ndev, cached, fresh, table);
    gw_monitor_close(m);
    return 0;
}
