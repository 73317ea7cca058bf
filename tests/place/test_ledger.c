/* test_ledger.c — the reservations ledger: reserve / release / renew,
 * idempotency keys, leases under a fake clock, owner liveness through a
 * fixture proc tree (gone, zombie, recycled pid), "visible as used"
 * accounting, no partial writes on refusal or bad input, restart, and the
 * consistency check catching a broken file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "place/ledger.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB (1ull << 30)

typedef struct fx {
    char dir[256];
    char db[300];
    char proc[300];
    int64_t now;
} fx;

static int64_t fake_now(void *ctx) { return ((fx *)ctx)->now; }

static void write_stat(fx *f, unsigned pid, char state, unsigned long long start)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%u", f->proc, pid);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%u/stat", f->proc, pid);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "%u (my (odd) name) %c 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %llu 1000 100\n",
            pid, state, start);
    fclose(fp);
}

static void remove_pid(fx *f, unsigned pid)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%u/stat", f->proc, pid);
    unlink(path);
    snprintf(path, sizeof path, "%s/%u", f->proc, pid);
    rmdir(path);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gw-ledger-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/sub/dir/ledger.db", f->dir);
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    mkdir(f->proc, 0755);
    f->now = 1000000000000ll;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static gw_ledger *open_ledger(fx *f, bool ro)
{
    gw_ledger_opts o;
    gw_ledger_opts_init(&o);
    o.path = f->db;
    o.proc_root = f->proc;
    o.now_ns = fake_now;
    o.clock_ctx = f;
    o.read_only = ro;
    gw_ledger *l = NULL;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_ledger_open(&l, &o, &err);
    if (rc)
        fail_msg("open: %s", err.message);
    return l;
}

static void two_gpus(gw_place_device d[2], uint64_t free0, uint64_t free1)
{
    memset(d, 0, 2 * sizeof *d);
    for (int i = 0; i < 2; i++) {
        snprintf(d[i].uuid, sizeof d[i].uuid, "GPU-%d", i);
        d[i].index = (uint32_t)i;
        d[i].has_free = true;
    }
    d[0].free = free0;
    d[1].free = free1;
}

/* Reserves size bytes; returns the id (0 when it did not fit). */
static int64_t reserve(gw_ledger *l, gw_place_device *d, size_t n, uint64_t size,
                       const gw_reserve_req *req, const gw_place_seen *seen, size_t n_seen)
{
    gw_place_need need = {.size = size};
    gw_plan plan;
    gw_plan_init(&plan);
    gw_reservation r;
    bool existed;
    gw_error err;
    gw_error_clear(&err);
    int rc = gw_ledger_reserve(l, d, n, seen, n_seen, &need, NULL, req, &plan, &r, &existed, &err);
    if (rc)
        fail_msg("reserve: %s", err.message);
    int64_t id = plan.fits ? r.id : 0;
    if (plan.fits) {
        assert_true(r.n_devices >= 1);
        assert_non_null(r.plan_json);
    }
    gw_reservation_clear(&r);
    gw_plan_release(&plan);
    return id;
}

static size_t live_count(gw_ledger *l)
{
    gw_reservation *v;
    size_t n;
    gw_error err;
    assert_int_equal(gw_ledger_list(l, &v, &n, &err), GW_OK);
    gw_reservations_free(v, n);
    return n;
}

static void reserve_subtract_release(void **state)
{
    fx *f = *state;
    gw_ledger *l = open_ledger(f, false);
    gw_place_device d[2];
    two_gpus(d, 24 * GIB, 12 * GIB);
    gw_reserve_req req = {.owner = "test"};
    /* best fit: 10 GiB goes to the 12 */
    int64_t a = reserve(l, d, 2, 10 * GIB, &req, NULL, 0);
    assert_true(a > 0);
    /* now the 12 has 2 left: 10 more goes to the 24 */
    int64_t b = reserve(l, d, 2, 10 * GIB, &req, NULL, 0);
    assert_true(b > 0);
    assert_true(d[0].pending == 0 && d[1].pending == 10 * GIB); /* seen when b was planned */
    /* 15 GiB fits nowhere any more (14 and 2 left), and nothing is written */
    assert_int_equal(reserve(l, d, 2, 15 * GIB, &req, NULL, 0), 0);
    assert_int_equal(live_count(l), 2);
    gw_error err;
    assert_int_equal(gw_ledger_apply_pending(l, d, 2, NULL, 0, &err), GW_OK);
    assert_true(d[0].pending == 10 * GIB && d[1].pending == 10 * GIB);
    gw_reservation r;
    assert_int_equal(gw_ledger_get(l, a, &r, &err), GW_OK);
    assert_int_equal(r.n_devices, 1);
    assert_string_equal(r.devices[0].uuid, "GPU-1");
    assert_true(r.devices[0].bytes == 10 * GIB);
    assert_string_equal(r.owner, "test");
    gw_reservation_clear(&r);
    /* release frees; releasing again is ENOENT and changes nothing */
    assert_int_equal(gw_ledger_release(l, a, &err), GW_OK);
    assert_int_equal(gw_ledger_release(l, a, &err), GW_ENOENT);
    assert_int_equal(gw_ledger_renew(l, 999, GIB, &err), GW_ENOENT);
    assert_int_equal(live_count(l), 1);
    assert_int_equal(reserve(l, d, 2, 15 * GIB, &req, NULL, 0), 0); /* 14 + 12: still no single */
    assert_true(reserve(l, d, 2, 12 * GIB, &req, NULL, 0) > 0);
    assert_int_equal(gw_ledger_check(l, &err), GW_OK);
    gw_ledger_close(l);

    /* restart: everything still there */
    l = open_ledger(f, false);
    assert_int_equal(live_count(l), 2);
    gw_ledger_close(l);
}

static void idempotency_key_books_once(void **state)
{
    fx *f = *state;
    gw_ledger *l = open_ledger(f, false);
    gw_place_device d[2];
    two_gpus(d, 24 * GIB, 12 * GIB);
    gw_reserve_req req = {.key = "job-42"};
    int64_t a = reserve(l, d, 2, 8 * GIB, &req, NULL, 0);
    int64_t b = reserve(l, d, 2, 8 * GIB, &req, NULL, 0);
    assert_true(a > 0);
    assert_true(a == b);
    assert_int_equal(live_count(l), 1);
    gw_error err;
    assert_int_equal(gw_ledger_release(l, a, &err), GW_OK);
    /* once released, the key may book again */
    assert_true(reserve(l, d, 2, 8 * GIB, &req, NULL, 0) > a);
    gw_ledger_close(l);
}

static void lease_expires_and_renews(void **state)
{
    fx *f = *state;
    gw_ledger *l = open_ledger(f, false);
    gw_place_device d[2];
    two_gpus(d, 10 * GIB, 0);
    gw_reserve_req req = {.lease_ns = 60ll * 1000000000};
    int64_t a = reserve(l, d, 1, 8 * GIB, &req, NULL, 0);
    assert_true(a > 0);
    f->now += 30ll * 1000000000;
    assert_int_equal(reserve(l, d, 1, 8 * GIB, &req, NULL, 0), 0); /* still held */
    gw_error err;
    assert_int_equal(gw_ledger_renew(l, a, 60ll * 1000000000, &err), GW_OK);
    f->now += 45ll * 1000000000; /* 75 s after start, 45 after renewal */
    assert_int_equal(live_count(l), 1);
    f->now += 20ll * 1000000000; /* 65 s after renewal: expired */
    assert_int_equal(live_count(l), 0);
    assert_int_equal(gw_ledger_apply_pending(l, d, 1, NULL, 0, &err), GW_OK);
    assert_true(d[0].pending == 0);
    size_t released = 0;
    assert_int_equal(gw_ledger_reap(l, &released, &err), GW_OK);
    assert_int_equal(released, 1);
    assert_int_equal(gw_ledger_get(l, a, &(gw_reservation){0}, &err), GW_ENOENT);
    gw_ledger_close(l);
}

static void dead_owner_releases(void **state)
{
    fx *f = *state;
    write_stat(f, 4242, 'S', 777);
    write_stat(f, 5000, 'S', 900);
    gw_ledger *l = open_ledger(f, false);
    gw_place_device d[2];
    two_gpus(d, 24 * GIB, 0);
    gw_reserve_req by_4242 = {.pid = 4242}, by_5000 = {.pid = 5000}, by_gone = {.pid = 6000};
    int64_t a = reserve(l, d, 1, 4 * GIB, &by_4242, NULL, 0);
    int64_t b = reserve(l, d, 1, 4 * GIB, &by_5000, NULL, 0);
    assert_true(a > 0 && b > 0);
    gw_reservation r;
    gw_error err;
    /* an owner that is not running is bad input: refused, nothing written */
    {
        gw_place_need need = {.size = GIB};
        gw_plan plan;
        gw_plan_init(&plan);
        bool existed;
        assert_int_equal(gw_ledger_reserve(l, d, 1, NULL, 0, &need, NULL, &by_gone, &plan, &r,
                                           &existed, &err),
                         GW_EINVAL);
        assert_non_null(strstr(err.message, "6000"));
        gw_plan_release(&plan);
    }
    assert_int_equal(gw_ledger_get(l, a, &r, &err), GW_OK);
    assert_int_equal(r.pid_start, 777);
    gw_reservation_clear(&r);
    assert_int_equal(live_count(l), 2);
    /* 4242 exits and its pid is recycled by a newer process: dead */
    write_stat(f, 4242, 'S', 12345);
    /* 5000 is a zombie: dead */
    write_stat(f, 5000, 'Z', 900);
    assert_int_equal(live_count(l), 0);
    assert_int_equal(gw_ledger_apply_pending(l, d, 1, NULL, 0, &err), GW_OK);
    assert_true(d[0].pending == 0);
    /* the next reservation's transaction deletes them (auto-release) */
    write_stat(f, 7000, 'R', 1);
    assert_true(reserve(l, d, 1, 20 * GIB, &(gw_reserve_req){.pid = 7000}, NULL, 0) > 0);
    gw_ledger_close(l);
    l = open_ledger(f, false);
    gw_reservation *v;
    size_t n;
    assert_int_equal(gw_ledger_list(l, &v, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].pid, 7000);
    gw_reservations_free(v, n);
    /* handing over to another pid, then that pid goes */
    write_stat(f, 7100, 'S', 5);
    int64_t id;
    {
        gw_reservation *w;
        size_t m;
        assert_int_equal(gw_ledger_list(l, &w, &m, &err), GW_OK);
        id = w[0].id;
        gw_reservations_free(w, m);
    }
    assert_int_equal(gw_ledger_set_pid(l, id, 7100, &err), GW_OK);
    remove_pid(f, 7000);
    assert_int_equal(live_count(l), 1);
    remove_pid(f, 7100);
    assert_int_equal(live_count(l), 0);
    gw_ledger_close(l);
}

static void visible_as_used_is_not_counted_twice(void **state)
{
    fx *f = *state;
    write_stat(f, 300, 'S', 1);
    gw_ledger *l = open_ledger(f, false);
    gw_place_device d[2];
    two_gpus(d, 24 * GIB, 24 * GIB);
    int64_t a = reserve(l, d, 2, 10 * GIB, &(gw_reserve_req){.pid = 300}, NULL, 0);
    assert_true(a > 0); /* on GPU-0 (first of equal best fits) */
    gw_error err;
    /* the owner is seen using 6 GiB on GPU-0: 4 GiB still pending there */
    gw_place_seen seen[2] = {{300, 0, 6 * GIB}, {300, 1, 9 * GIB}};
    assert_int_equal(gw_ledger_apply_pending(l, d, 2, seen, 2, &err), GW_OK);
    assert_true(d[0].pending == 4 * GIB);
    assert_true(d[1].pending == 0); /* use elsewhere does not count */
    /* using more than reserved: nothing pending */
    seen[0].bytes = 11 * GIB;
    assert_int_equal(gw_ledger_apply_pending(l, d, 2, seen, 2, &err), GW_OK);
    assert_true(d[0].pending == 0);
    /* another pid's use on the same GPU does not count for this owner */
    gw_place_seen other = {301, 0, 10 * GIB};
    assert_int_equal(gw_ledger_apply_pending(l, d, 2, &other, 1, &err), GW_OK);
    assert_true(d[0].pending == 10 * GIB);
    gw_ledger_close(l);
}

static void read_only_and_bad_input(void **state)
{
    fx *f = *state;
    /* a missing file read-only is an empty ledger, and is not created */
    gw_ledger *l = open_ledger(f, true);
    gw_place_device d[2];
    two_gpus(d, 24 * GIB, 24 * GIB);
    d[0].pending = 5;
    gw_error err;
    assert_int_equal(gw_ledger_apply_pending(l, d, 2, NULL, 0, &err), GW_OK);
    assert_true(d[0].pending == 0);
    gw_place_need need = {.size = GIB};
    gw_plan plan;
    gw_plan_init(&plan);
    gw_reservation r;
    bool existed;
    assert_int_equal(gw_ledger_reserve(l, d, 2, NULL, 0, &need, NULL, NULL, &plan, &r, &existed, &err),
                     GW_EPERM);
    gw_ledger_close(l);
    assert_int_not_equal(access(f->db, F_OK), 0);

    l = open_ledger(f, false);
    gw_place_need empty = {0};
    assert_int_equal(gw_ledger_reserve(l, d, 2, NULL, 0, &empty, NULL, NULL, &plan, &r, &existed, &err),
                     GW_EINVAL);
    gw_reserve_req neg = {.lease_ns = -1};
    assert_int_equal(gw_ledger_reserve(l, d, 2, NULL, 0, &need, NULL, &neg, &plan, &r, &existed, &err),
                     GW_EINVAL);
    assert_int_equal(live_count(l), 0);
    gw_plan_release(&plan);
    gw_ledger_close(l);

    /* an empty file (another process is creating the ledger) reads as empty */
    char blank[400];
    snprintf(blank, sizeof blank, "%s/blank.db", f->dir);
    fclose(fopen(blank, "w"));
    gw_ledger_opts bo;
    gw_ledger_opts_init(&bo);
    bo.path = blank;
    bo.read_only = true;
    assert_int_equal(gw_ledger_open(&l, &bo, &err), GW_OK);
    assert_int_equal(live_count(l), 0);
    gw_ledger_close(l);

    /* not a ledger */
    char junk[400];
    snprintf(junk, sizeof junk, "%s/junk.db", f->dir);
    FILE *fp = fopen(junk, "w");
    fputs("this is not sqlite, just text long enough to be a header..........................."
          "..................................................................................",
          fp);
    fclose(fp);
    gw_ledger_opts o;
    gw_ledger_opts_init(&o);
    o.path = junk;
    assert_int_not_equal(gw_ledger_open(&l, &o, &err), GW_OK);
    assert_null(l);
    assert_non_null(strstr(err.message, "junk.db"));
}

static void check_catches_broken_rows(void **state)
{
    fx *f = *state;
    gw_ledger *l = open_ledger(f, false);
    gw_place_device d[2];
    two_gpus(d, 24 * GIB, 24 * GIB);
    assert_true(reserve(l, d, 2, GIB, NULL, NULL, 0) > 0);
    gw_error err;
    assert_int_equal(gw_ledger_check(l, &err), GW_OK);
    gw_ledger_close(l);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    /* a device row whose reservation is gone (foreign keys off here) */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO reservation_devices VALUES(999, 0, 'GPU-0', 5)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    l = open_ledger(f, false);
    assert_int_equal(gw_ledger_check(l, &err), GW_EIO);
    assert_non_null(strstr(err.message, "without their reservation"));
    gw_ledger_close(l);
}

static void default_path_rules(void **state)
{
    (void)state;
    char buf[512];
    setenv("GPUWATCH_LEDGER", "/x/y.db", 1);
    assert_string_equal(gw_ledger_default_path(buf, sizeof buf), "/x/y.db");
    unsetenv("GPUWATCH_LEDGER");
    if (geteuid() == 0) {
        assert_string_equal(gw_ledger_default_path(buf, sizeof buf), "/var/lib/gpuwatch/ledger.db");
    } else {
        setenv("XDG_STATE_HOME", "/st", 1);
        assert_string_equal(gw_ledger_default_path(buf, sizeof buf), "/st/gpuwatch/ledger.db");
    }
}

/* The pending bytes per GPU handle l sees now. */
static void pending_of(gw_ledger *l, uint64_t out[2])
{
    gw_place_device d[2];
    two_gpus(d, 80 * GIB, 80 * GIB);
    gw_error err;
    assert_int_equal(gw_ledger_apply_pending(l, d, 2, NULL, 0, &err), GW_OK);
    out[0] = d[0].pending;
    out[1] = d[1].pending;
}

static void expect_pending(gw_ledger *l, uint64_t g0, uint64_t g1)
{
    uint64_t p[2];
    pending_of(l, p);
    if (p[0] != g0 || p[1] != g1)
        fail_msg("pending %llu/%llu, expected %llu/%llu", (unsigned long long)p[0],
                 (unsigned long long)p[1], (unsigned long long)g0, (unsigned long long)g1);
}

/* Two handles on one file (two processes, in effect): each one's writes
 * reach the other's next plan, whatever kind of reservation (permanent,
 * leased, owned by a process that then dies), through the other's cached
 * rows. Expected figures are this test's own sums of what it reserved. */
static void two_handles_stay_coherent(void **state)
{
    fx *f = *state;
    gw_ledger *a = open_ledger(f, false), *b = open_ledger(f, false);
    gw_ledger *ro = open_ledger(f, true);
    gw_place_device d[2];
    gw_reserve_req plain = {.owner = "t"};
    gw_error err;
    /* GPU-1 has less free: best fit puts small reservations there */
    two_gpus(d, 80 * GIB, 40 * GIB);
    int64_t r1 = reserve(a, d, 2, 10 * GIB, &plain, NULL, 0);
    expect_pending(b, 0, 10 * GIB);
    int64_t r2 = reserve(b, d, 2, 5 * GIB, &plain, NULL, 0);
    expect_pending(a, 0, 15 * GIB);
    expect_pending(ro, 0, 15 * GIB);
    assert_int_equal(gw_ledger_release(a, r2, &err), GW_OK); /* b's, released by a */
    expect_pending(b, 0, 10 * GIB);
    /* a lease from b: counted until it expires, for both */
    gw_reserve_req leased = {.owner = "t", .lease_ns = 10ll * 1000000000};
    int64_t r3 = reserve(b, d, 2, 2 * GIB, &leased, NULL, 0);
    assert_true(r3 > 0);
    expect_pending(a, 0, 12 * GIB);
    f->now += 11ll * 1000000000;
    expect_pending(a, 0, 10 * GIB);
    expect_pending(b, 0, 10 * GIB);
    /* a permanent reservation given an owner, whose process then dies */
    write_stat(f, 7200, 'S', 500);
    assert_int_equal(gw_ledger_set_pid(b, r1, 7200, &err), GW_OK);
    expect_pending(a, 0, 10 * GIB);
    remove_pid(f, 7200);
    expect_pending(a, 0, 0);
    expect_pending(b, 0, 0);
    /* many at once, from both, then half released from the other side */
    int64_t ids[200];
    uint64_t sum = 0;
    two_gpus(d, 80 * GIB, 80 * GIB - 1);
    for (int i = 0; i < 200; i++) {
        uint64_t size = (uint64_t)(i % 7 + 1) << 20;
        ids[i] = reserve(i % 2 ? a : b, d, 2, size, &plain, NULL, 0);
        assert_true(ids[i] > 0);
        sum += size;
    }
    expect_pending(a, 0, sum);
    expect_pending(b, 0, sum);
    for (int i = 0; i < 200; i += 2) {
        assert_int_equal(gw_ledger_release(i % 4 ? b : a, ids[i], &err), GW_OK);
        sum -= (uint64_t)(i % 7 + 1) << 20;
    }
    expect_pending(a, 0, sum);
    expect_pending(b, 0, sum);
    expect_pending(ro, 0, sum);
    assert_int_equal(gw_ledger_check(a, &err), GW_OK);
    gw_ledger_close(ro);
    gw_ledger_close(a);
    gw_ledger_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reserve_subtract_release, setup, teardown),
        cmocka_unit_test_setup_teardown(idempotency_key_books_once, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_expires_and_renews, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_owner_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(visible_as_used_is_not_counted_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(read_only_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(check_catches_broken_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(two_handles_stay_coherent, setup, teardown),
        cmocka_unit_test(default_path_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
