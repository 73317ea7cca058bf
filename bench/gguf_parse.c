/* gguf_parse.c — how long the GGUF reader takes on a file, in process.
 *
 *   gguf_parse FILE [ITERATIONS]      (default 2000)
 *
 * Prints, in microseconds (median, 10th and 90th percentile, minimum):
 *   open+parse+close  gw_gguf_open on the path (open, fstat, mmap, parse,
 *                     munmap): what a caller pays per model
 *   parse only        gw_gguf_open_memory on the mapped bytes (the header
 *                     pages are warm): the parser itself
 * A 70B-shaped file (sparse, ~3 MB on disk):
 *   python3 tests/gguf/gguf_writer.py --n-layer 80 --n-embd 8192 --n-head 64 \
 *       --n-head-kv 8 --n-ff 28672 --n-vocab 128256 --ftype q4_k /tmp/llama70b.gguf
 *   build/bench/gguf_parse /tmp/llama70b.gguf */
#include "gguf/gguf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    printf("%-18s median %9.1f us   p10 %9.1f   p90 %9.1f   min %9.1f   (%d runs)\n", what,
           t[n / 2], t[n / 10], t[n * 9 / 10], t[0], n);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gguf_parse FILE [ITERATIONS]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    if (n < 10)
        n = 10;
    double *t = malloc((size_t)n * sizeof *t);
    if (!t)
        return 1;
    gw_gguf *g;
    gw_error err;
    if (gw_gguf_open(&g, argv[1], &err) != GW_OK) {
        fprintf(stderr, "gguf_parse: %s\n", err.message);
        return 1;
    }
    printf("%s: %zu metadata pairs, %zu tensors, header %llu bytes, file %llu bytes\n", argv[1],
           gw_gguf_kv_count(g), gw_gguf_tensor_count(g),
           (unsigned long long)gw_gguf_data_offset(g), (unsigned long long)gw_gguf_file_size(g));
    gw_gguf_close(g);

    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (gw_gguf_open(&g, argv[1], &err) != GW_OK)
            return 1;
        gw_gguf_close(g);
        t[i] = now_us() - t0;
    }
    report("open+parse+close", t, n);

    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 1;
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return 1;
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (gw_gguf_open_memory(&g, map, (size_t)st.st_size, &err) != GW_OK)
            return 1;
        gw_gguf_close(g);
        t[i] = now_us() - t0;
    }
    report("parse only", t, n);
    munmap(map, (size_t)st.st_size);
    free(t);
    return 0;
}
