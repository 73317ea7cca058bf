/* test_estimate_robust.c — the estimator on hostile input: every file of
 * the GGUF corpus (tests/gguf/corpus, including the fuzzer's finds) and
 * thousands of deterministic mutations of the valid model files' metadata
 * values go through gw_gguf_open_memory, gw_est_model_read, gw_est_estimate
 * (CPU, one GPU, two GPUs) and gw_est_plan_fit. Every call must end in a
 * result or an error code with a message; never a crash, a hang, a
 * sanitizer report or a leak. Usage: test_estimate_robust CORPUS_DIR */
#include "estimate/estimate.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            if (nc > (64u << 20))
                break;
            unsigned char *b = realloc(buf, nc);
            if (!b)
                break;
            buf = b;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Runs the whole pipeline on one buffer; returns true when a model was read. */
static bool run_one(const unsigned char *data, size_t len)
{
    gw_gguf *g = NULL;
    gw_error err;
    gw_error_clear(&err);
    if (gw_gguf_open_memory(&g, data, len, &err) != GW_OK) {
        assert_true(err.message[0] != '\0');
        return false;
    }
    gw_est_model *m = NULL;
    int rc = gw_est_model_read(g, &m, &err);
    gw_gguf_close(g);
    if (rc != GW_OK) {
        assert_null(m);
        assert_true(rc < 0 && err.message[0] != '\0');
        return false;
    }
    gw_est_result *r = malloc(sizeof *r);
    gw_est_plan *plan = malloc(sizeof *plan);
    assert_non_null(r);
    assert_non_null(plan);
    gw_est_params p;
    for (int layout = 0; layout < 3; layout++) {
        gw_est_params_init(&p);
        p.n_ctx = 1024;
        p.n_devices = (uint32_t)layout;
        p.device_free[0] = 1ull << 30;
        p.device_free[1] = 1ull << 29;
        rc = gw_est_estimate(m, &p, r, &err);
        assert_true(rc == GW_OK || (rc < 0 && err.message[0] != '\0'));
    }
    rc = gw_est_plan_fit(m, &p, plan, &err);
    assert_true(rc == GW_OK || (rc < 0 && err.message[0] != '\0'));
    free(r);
    free(plan);
    gw_est_model_free(m);
    return true;
}

static void test_corpus(void **state)
{
    const char *corpus = *state;
    char dirs[2][1024];
    snprintf(dirs[0], sizeof dirs[0], "%s", corpus);
    snprintf(dirs[1], sizeof dirs[1], "%s/fuzz", corpus);
    int files = 0, models = 0;
    for (int k = 0; k < 2; k++) {
        DIR *d = opendir(dirs[k]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dirs[k], e->d_name);
            size_t len;
            unsigned char *buf = slurp(path, &len);
            if (!buf)
                continue;
            files++;
            models += run_one(buf, len);
            free(buf);
        }
        closedir(d);
    }
    printf("corpus: %d files, %d read as models\n", files, models);
    assert_true(files > 0);
    assert_true(models > 0);
}

/* xorshift: deterministic, no global state */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mutates 4-byte metadata values (u32 fields hold every hyper-parameter)
 * of the valid architecture files with extreme and random values. */
static void test_mutations(void **state)
{
    const char *corpus = *state;
    static const char *names[] = {"ok_v3_llama.gguf", "ok_arch_qwen3moe.gguf", "ok_arch_gemma2.gguf",
                                  "ok_arch_deepseek2.gguf", "ok_arch_gpt-oss.gguf",
                                  "ok_arch_phi3.gguf"};
    static const uint32_t extremes[] = {0, 1, 2, 3, 255, 256, 65535, 65536, 1u << 20, 1u << 24,
                                        1u << 30, 0x7fffffffu, 0xffffffffu};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int runs = 0, read = 0;
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", corpus, names[n]);
        size_t len;
        unsigned char *orig = slurp(path, &len);
        if (!orig)
            continue;
        unsigned char *buf = malloc(len);
        assert_non_null(buf);
        /* the header region: metadata lives in the first part of the file */
        size_t hdr = len < 4096 ? len : 4096;
        for (int it = 0; it < 400; it++) {
            memcpy(buf, orig, len);
            int edits = 1 + (int)(next_rand(&seed) % 3);
            for (int k = 0; k < edits; k++) {
                size_t off = 24 + (size_t)(next_rand(&seed) % (hdr > 28 ? hdr - 28 : 1));
                uint32_t v = (next_rand(&seed) & 1)
                                 ? extremes[next_rand(&seed) % (sizeof extremes / sizeof extremes[0])]
                                 : (uint32_t)next_rand(&seed);
                memcpy(buf + off, &v, sizeof v);
            }
            runs++;
            read += run_one(buf, len);
        }
        free(buf);
        free(orig);
    }
    printf("mutations: %d runs, %d read as models\n", runs, read);
    assert_true(runs > 0);
}

int main(int argc, char **argv)
{
    char *corpus = argc > 1 ? argv[1] : (char *)"tests/gguf/corpus";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_corpus, corpus),
        cmocka_unit_test_prestate(test_mutations, corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
