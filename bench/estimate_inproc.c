/* estimate_inproc.c — in-process timing of parse + estimate for one GGUF:
 * gw_gguf_open, gw_est_model_read and gw_est_estimate (CPU backend), best
 * of N rounds and the mean, in microseconds, as one JSON line. Used by
 * bench/estimate_bench.py next to the whole-process and node-llama-cpp
 * timings. Usage: estimate_inproc FILE [ROUNDS] [N_CTX] */
#include "estimate/estimate.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: estimate_inproc FILE [ROUNDS] [N_CTX]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    uint32_t n_ctx = argc > 3 ? (uint32_t)atoi(argv[3]) : 8192;
    double best[3] = {1e30, 1e30, 1e30}, sum[3] = {0, 0, 0};
    uint64_t total = 0;
    for (int i = 0; i < rounds; i++) {
        gw_error err;
        gw_gguf *g;
        gw_est_model *m;
        gw_est_result r;
        gw_est_params p;
        double t0 = now_us();
        if (gw_gguf_open(&g, argv[1], &err) != GW_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t1 = now_us();
        if (gw_est_model_read(g, &m, &err) != GW_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t2 = now_us();
        gw_est_params_init(&p);
        p.n_ctx = n_ctx;
        if (gw_est_estimate(m, &p, &r, &err) != GW_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t3 = now_us();
        total = r.host.total;
        gw_est_model_free(m);
        gw_gguf_close(g);
        double d[3] = {t1 - t0, t2 - t1, t3 - t2};
        for (int k = 0; k < 3; k++) {
            sum[k] += d[k];
            if (d[k] < best[k])
                best[k] = d[k];
        }
    }
    printf("{\"file\": \"%s\", \"rounds\": %d, \"open_us\": %.1f, \"model_us\": %.1f, "
           "\"estimate_us\": %.1f, \"total_best_us\": %.1f, \"total_mean_us\": %.1f, "
           "\"host_total\": %llu}\n",
           argv[1], rounds, best[0], best[1], best[2], best[0] + best[1] + best[2],
           (sum[0] + sum[1] + sum[2]) / rounds, (unsigned long long)total);
    return 0;
}
