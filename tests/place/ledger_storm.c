/* ledger_storm.c — a test client for the ledger's concurrency and crash
 * tests (driven by test_ledger_storm.py). It never decides pass/fail about
 * other processes; it reports what it was told, line by line, flushed:
 *
 *   ledger_storm reserve LEDGER SECONDS SEED OWNER_PID [RELEASE_PCT]
 *     random plan-and-reserve requests against the four test GPUs below, for
 *     SECONDS. Prints "ACK id" only after gw_ledger_reserve returned (the
 *     commit happened), "DUP id" for an idempotent replay, "REFUSED reason"
 *     for a plan that does not fit (exit 3 if the reason is empty),
 *     "RELEASING id" before and "RELEASED id" after releasing one of the
 *     reservations it can see (RELEASE_PCT % of the time after a grant, twice
 *     that after a refusal; default 35), and "SUMMARY attempts granted
 *     refused dup".
 *   ledger_storm check LEDGER
 *     gw_ledger_check, then the per-device sums of live reservations
 *     against usable memory; prints "LIVE id" per reservation and "OK", or
 *     "BAD why" and exits 1.
 *   ledger_storm watch LEDGER SECONDS
 *     check in a loop (each one a consistent read) while others write;
 *     prints "CHECKS n" and exits 1 at the first over-commit.
 */
#include "place/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GIB (1ull << 30)
#define MIB (1ull << 20)
#define MARGIN GIB

static const uint64_t gpu_free[4] = {24 * GIB, 24 * GIB, 16 * GIB, 8 * GIB};

static void test_gpus(gw_place_device d[4])
{
    memset(d, 0, 4 * sizeof *d);
    for (int i = 0; i < 4; i++) {
        snprintf(d[i].uuid, sizeof d[i].uuid, "GPU-storm-%d", i);
        d[i].index = (uint32_t)i;
        d[i].has_free = true;
        d[i].free = d[i].total = gpu_free[i];
        d[i].vendor = GW_VENDOR_NVIDIA;
    }
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static gw_ledger *open_at(const char *path, bool ro)
{
    gw_ledger_opts o;
    gw_ledger_opts_init(&o);
    o.path = path;
    o.read_only = ro;
    o.busy_timeout_ms = 60000;
    gw_ledger *l;
    gw_error err;
    gw_error_clear(&err);
    if (gw_ledger_open(&l, &o, &err) != GW_OK) {
        printf("ERR open: %s\n", err.message);
        fflush(stdout);
        exit(2);
    }
    return l;
}

/* 0 ok, 1 over-committed or inconsistent (printed). */
static int check(gw_ledger *l, bool print_live)
{
    gw_error err;
    gw_error_clear(&err);
    if (gw_ledger_check(l, &err) != GW_OK) {
        printf("BAD %s\n", err.message);
        return 1;
    }
    gw_reservation *v;
    size_t n;
    if (gw_ledger_list(l, &v, &n, &err) != GW_OK) {
        printf("BAD list: %s\n", err.message);
        return 1;
    }
    gw_place_device d[4];
    test_gpus(d);
    uint64_t sum[4] = {0};
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (print_live)
            printf("LIVE %lld\n", (long long)v[i].id);
        for (size_t k = 0; k < v[i].n_devices; k++) {
            int dev = -1;
            for (int g = 0; g < 4; g++)
                if (strcmp(v[i].devices[k].uuid, d[g].uuid) == 0)
                    dev = g;
            if (dev < 0) {
                printf("BAD reservation %lld on unknown device %s\n", (long long)v[i].id,
                       v[i].devices[k].uuid);
                bad = 1;
                continue;
            }
            sum[dev] += v[i].devices[k].bytes;
        }
    }
    for (int g = 0; g < 4; g++)
        if (sum[g] > gpu_free[g] - MARGIN) {
            printf("BAD over-commit on %s: %llu reserved > %llu usable\n", d[g].uuid,
                   (unsigned long long)sum[g], (unsigned long long)(gpu_free[g] - MARGIN));
            bad = 1;
        }
    gw_reservations_free(v, n);
    return bad;
}

static int storm(const char *path, double seconds, uint64_t seed, uint32_t owner,
                 unsigned release_pct)
{
    gw_ledger *l = open_at(path, false);
    uint64_t s = seed * 2654435761ull + 88172645463325252ull;
    gw_place_device d[4];
    uint64_t units[64];
    long attempts = 0, granted = 0, refused = 0, dup = 0;
    double end = now_s() + seconds;
    gw_plan plan;
    gw_plan_init(&plan);
    while (now_s() < end) {
        test_gpus(d);
        gw_place_need need = {0};
        if (rnd(&s) % 2) {
            need.size = GIB / 4 + rnd(&s) % (10 * GIB);
        } else {
            need.n_units = 8 + rnd(&s) % 40;
            for (size_t j = 0; j < need.n_units; j++)
                units[j] = 64 * MIB + rnd(&s) % (448 * MIB);
            need.unit_bytes = units;
            need.overhead = 256 * MIB;
            need.allow_partial = rnd(&s) % 2;
        }
        gw_place_opts o;
        gw_place_opts_init(&o);
        o.policy = (gw_place_policy)(rnd(&s) % 3);
        o.margin = MARGIN;
        o.gpus = (unsigned)(rnd(&s) % 3);
        char key[64];
        gw_reserve_req req = {.owner = "storm", .pid = owner};
        if (rnd(&s) % 10 == 0) {
            snprintf(key, sizeof key, "k-%llu", (unsigned long long)(rnd(&s) % 50));
            req.key = key;
        }
        gw_reservation r;
        bool existed = false;
        gw_error err;
        gw_error_clear(&err);
        attempts++;
        int rc = gw_ledger_reserve(l, d, 4, NULL, 0, &need, &o, &req, &plan, &r, &existed, &err);
        if (rc) {
            printf("ERR reserve: %s\n", err.message);
            fflush(stdout);
            return 2;
        }
        if (plan.fits && existed) {
            dup++;
            printf("DUP %lld\n", (long long)r.id);
        } else if (plan.fits) {
            granted++;
            printf("ACK %lld\n", (long long)r.id);
        } else {
            refused++;
            if (!plan.reason[0]) {
                printf("NOREASON\n");
                fflush(stdout);
                return 3;
            }
            printf("REFUSED %.80s\n", plan.reason);
        }
        fflush(stdout);
        gw_reservation_clear(&r);
        /* release one live reservation now and then (more when refused) */
        if (rnd(&s) % 100 < (plan.fits ? release_pct : 2 * release_pct)) {
            gw_reservation *v;
            size_t n;
            if (gw_ledger_list(l, &v, &n, &err) == GW_OK && n) {
                int64_t id = v[rnd(&s) % n].id;
                gw_reservations_free(v, n);
                printf("RELEASING %lld\n", (long long)id);
                fflush(stdout);
                rc = gw_ledger_release(l, id, &err);
                if (rc == GW_OK)
                    printf("RELEASED %lld\n", (long long)id);
                else if (rc != GW_ENOENT) { /* another client released it first */
                    printf("ERR release: %s\n", err.message);
                    fflush(stdout);
                    return 2;
                }
                fflush(stdout);
            }
        }
    }
    gw_plan_release(&plan);
    printf("SUMMARY %ld %ld %ld %ld\n", attempts, granted, refused, dup);
    gw_ledger_close(l);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "reserve") == 0)
        return storm(argv[2], atof(argv[3]), strtoull(argv[4], NULL, 10),
                     (uint32_t)strtoul(argv[5], NULL, 10),
                     argc >= 7 ? (unsigned)strtoul(argv[6], NULL, 10) : 35u);
    if (argc >= 3 && strcmp(argv[1], "check") == 0) {
        gw_ledger *l = open_at(argv[2], true);
        int bad = check(l, true);
        gw_ledger_close(l);
        printf("%s\n", bad ? "FAIL" : "OK");
        return bad;
    }
    if (argc >= 4 && strcmp(argv[1], "watch") == 0) {
        gw_ledger *l = open_at(argv[2], true);
        double end = now_s() + atof(argv[3]);
        long n = 0;
        int bad = 0;
        while (!bad && now_s() < end) {
            bad = check(l, false);
            n++;
            usleep(2000);
        }
        gw_ledger_close(l);
        printf("CHECKS %ld\n", n);
        return bad;
    }
    fprintf(stderr, "usage: ledger_storm reserve LEDGER SECONDS SEED OWNER_PID | check LEDGER | "
                    "watch LEDGER SECONDS\n");
    return 2;
}
