/* test_procinfo.c — pid -> name/user/cmdline/host memory/CPU % through a
 * fixture /proc and the real one: values, pid reuse detected by start time,
 * caching, one stat reading per round, gone processes, held descriptors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backends/procinfo.h"
#include "fixture_proc.h"

#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char cmd_python[] = "python3\0train.py\0--epochs\0003";

static void fills_name_user_and_cmdline(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_process(root, 4242, "python3", 777, 0, cmd_python, sizeof cmd_python);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root, GW__PROCINFO_IDENTITY | GW__PROCINFO_HOST, NULL), GW_OK);
    gw__procinfo_begin_round(pc);
    gw_process p = {.pid = 4242};
    gw__procinfo_fill(pc, &p);
    assert_true(gw_process_has(&p, GW_PROC_NAME));
    assert_string_equal(p.name, "python3");
    assert_true(gw_process_has(&p, GW_PROC_USER));
    /* uid 0's name as this machine's user database has it (no entry: the
     * number) */
    const struct passwd *pw = getpwuid(0);
    assert_string_equal(p.user, pw ? pw->pw_name : "0");
    assert_true(gw_process_has(&p, GW_PROC_CMDLINE));
    assert_string_equal(p.cmdline, "python3 train.py --epochs 3");
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

static void odd_comm_and_unknown_uid(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    unsigned uid = 4000123; /* one without a user on this machine */
    while (getpwuid(uid))
        uid++;
    fixture_process(root, 7, "a) b (c", 5, uid, "x", 1);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root, GW__PROCINFO_IDENTITY | GW__PROCINFO_HOST, NULL), GW_OK);
    gw_process p = {.pid = 7};
    gw__procinfo_fill(pc, &p);
    assert_string_equal(p.name, "a) b (c");
    char want[16];
    snprintf(want, sizeof want, "%u", uid);
    assert_string_equal(p.user, want); /* no passwd entry: the number */
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

static void caches_until_pid_is_reused(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_process(root, 100, "first", 1000, 0, "first", 5);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root, GW__PROCINFO_IDENTITY | GW__PROCINFO_HOST, NULL), GW_OK);
    gw__procinfo_begin_round(pc);
    gw_process p = {.pid = 100};
    gw__procinfo_fill(pc, &p);
    assert_string_equal(p.name, "first");

    /* same start time, new comm: the cache answers (no re-read) */
    char rel[32];
    snprintf(rel, sizeof rel, "100/comm");
    fixture_write(root, rel, "renamed\n");
    gw__procinfo_begin_round(pc);
    gw_process q = {.pid = 100};
    gw__procinfo_fill(pc, &q);
    assert_string_equal(q.name, "first");

    /* new start time = a new process with the recycled pid: re-read, but
     * only in the next round (one stat reading per pid per round) */
    fixture_process(root, 100, "second", 2000, 0, "second", 6);
    gw_process same_round = {.pid = 100};
    gw__procinfo_fill(pc, &same_round);
    assert_string_equal(same_round.name, "first");
    gw__procinfo_begin_round(pc);
    gw_process r = {.pid = 100};
    gw__procinfo_fill(pc, &r);
    assert_string_equal(r.name, "second");
    assert_string_equal(r.cmdline, "second");

    /* gone: nothing filled */
    fixture_rmrf(root);
    gw__procinfo_begin_round(pc);
    gw_process s = {.pid = 100};
    gw__procinfo_fill(pc, &s);
    assert_false(gw_process_has(&s, GW_PROC_NAME));
    gw__procinfo_close(pc);
}

static void many_pids_grow_and_evict(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    for (unsigned pid = 1; pid <= 300; pid++)
        fixture_process(root, pid, "worker", pid, 0, "w", 1);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root, GW__PROCINFO_IDENTITY | GW__PROCINFO_HOST, NULL), GW_OK);
    for (int round = 0; round < 4; round++) {
        gw__procinfo_begin_round(pc);
        /* only the first 10 pids stay in use after round 0 */
        unsigned last = round == 0 ? 300 : 10;
        for (unsigned pid = 1; pid <= last; pid++) {
            gw_process p = {.pid = pid};
            gw__procinfo_fill(pc, &p);
            assert_string_equal(p.name, "worker");
        }
        assert_true(gw__procinfo_check(pc));
    }
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

/* stat's rss (field 24, pages) is the host memory; utime+stime (fields
 * 14, 15) against the previous round's reading is the CPU %, bounded by
 * the wall time the test measured around the two rounds. */
static void host_memory_and_cpu_from_stat(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_process(root, 55, "trainer", 900, 0, "t", 1); /* utime 5 stime 3 rss 100 */
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root, GW__PROCINFO_IDENTITY | GW__PROCINFO_HOST, NULL), GW_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gw__procinfo_begin_round(pc);
    gw_process a = {.pid = 55};
    gw__procinfo_fill(pc, &a);
    long page = sysconf(_SC_PAGESIZE);
    assert_true(gw_process_has(&a, GW_PROC_HOST_MEMORY));
    assert_int_equal(a.host_memory, 100 * (uint64_t)page);
    assert_false(gw_process_has(&a, GW_PROC_CPU_UTIL)); /* one reading: no rate */

    /* 50 more ticks of CPU (30 user, 20 system), 200 pages */
    fixture_write(root, "55/stat",
                  "55 (trainer) S 1 1 1 0 -1 4194560 100 0 0 0 35 23 0 0 20 0 1 0 900 "
                  "1000000 200 18446744073709551615 0\n");
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    gw__procinfo_begin_round(pc);
    gw_process b = {.pid = 55};
    gw__procinfo_fill(pc, &b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(b.host_memory, 200 * (uint64_t)page);
    assert_true(gw_process_has(&b, GW_PROC_CPU_UTIL));
    double hz = (double)sysconf(_SC_CLK_TCK);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu_s = 50.0 / hz;
    assert_true(b.cpu_util >= 100.0 * cpu_s / wall);  /* the rounds were <= wall apart */
    assert_true(b.cpu_util <= 100.0 * cpu_s / 0.050); /* and >= the 50 ms pause */
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

static int open_fds(void)
{
    int n = 0;
    char path[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

/* The real-/proc tests' child, killed by the teardown whatever happens. */
static pid_t live_child = -1;

static int kill_child(void **state)
{
    (void)state;
    if (live_child > 0) {
        kill(live_child, SIGKILL);
        waitpid(live_child, NULL, 0);
    }
    live_child = -1;
    return 0;
}

/* A live child on the real /proc read for three rounds by a cache of
 * `what`: its name always; host figures (CPU % from the second round on)
 * only with GW__PROCINFO_HOST; `held` descriptors open while it lives.
 * Once it is killed and reaped nothing is filled for its pid and every
 * descriptor is closed. */
static void real_child_rounds(unsigned what, int held)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        for (;;)
            pause();
    }
    live_child = child;
    bool host = what & GW__PROCINFO_HOST;
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, NULL, what, NULL), GW_OK);
    int fds_before = open_fds();
    for (int round = 0; round < 3; round++) {
        gw__procinfo_begin_round(pc);
        gw_process p = {.pid = (uint32_t)child};
        gw__procinfo_fill(pc, &p);
        assert_true(gw_process_has(&p, GW_PROC_NAME));
        assert_int_equal(gw_process_has(&p, GW_PROC_HOST_MEMORY), host);
        assert_int_equal(gw_process_has(&p, GW_PROC_CPU_UTIL), host && round > 0);
        if (host)
            assert_true(p.host_memory > 0);
        if (host && round > 0)
            assert_true(p.cpu_util >= 0 && p.cpu_util < 50); /* it sleeps */
        assert_int_equal(open_fds(), fds_before + held);
        assert_true(gw__procinfo_check(pc));
    }
    kill_child(NULL);
    gw__procinfo_begin_round(pc);
    gw_process gone = {.pid = (uint32_t)child};
    gw__procinfo_fill(pc, &gone);
    assert_false(gw_process_has(&gone, GW_PROC_NAME));
    assert_false(gw_process_has(&gone, GW_PROC_HOST_MEMORY));
    assert_int_equal(open_fds(), fds_before);
    gw__procinfo_close(pc);
}

/* Host figures: schedstat and statm held (two descriptors). */
static void real_proc_child_then_gone(void **state)
{
    (void)state;
    real_child_rounds(GW__PROCINFO_IDENTITY | GW__PROCINFO_HOST, 2);
}

/* Identity only: one pidfd, the exit noticed through it. */
static void identity_only_guarded_by_pidfd(void **state)
{
    (void)state;
    real_child_rounds(GW__PROCINFO_IDENTITY, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fills_name_user_and_cmdline),
        cmocka_unit_test(odd_comm_and_unknown_uid),
        cmocka_unit_test(caches_until_pid_is_reused),
        cmocka_unit_test(many_pids_grow_and_evict),
        cmocka_unit_test(host_memory_and_cpu_from_stat),
        cmocka_unit_test_teardown(real_proc_child_then_gone, kill_child),
        cmocka_unit_test_teardown(identity_only_guarded_by_pidfd, kill_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
